//! The virtual clock: now = real time + an offset kept in the store (`clock.offset_seconds`),
//! so the admin CLI and a running server on the same data directory always agree on the time.
//! `rdpele admin clock advance 30d` moves both at once; real time keeps running underneath.
//!
//! The offset is a signed number of seconds. It may be negative: `clock set` to a date before
//! today is allowed (to replay a scenario from a given day). Going back in time is the
//! administrator's choice and has the consequences it would have on a real server whose clock
//! is set back: licenses issued "later" look not yet issued, and expired ones valid again. The
//! store still refuses any change that would put a pack over its total.
//!
//! Times have one-second resolution: [`Clock::now`] rounds down, as the store does.

use std::time::{Duration, SystemTime};

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::store::{Store, StoreError};

/// Where the real time underneath the offset comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RealTime {
    System,
    Frozen(SystemTime),
}

/// A virtual clock over a store's offset. [`Clock::system`] in the server and the CLI;
/// [`Clock::frozen`] in tests and simulations, where real time must not move.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Clock {
    real: RealTime,
}

/// A clock failure: the store, or a time the clock cannot represent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClockError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the virtual time would be out of range")]
    OutOfRange,
}

/// An argument the CLI could not read as a duration or a time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseTimeError {
    #[error("invalid duration {input:?}: {reason} (expected e.g. 30d, 12h, 90m, 1d12h)")]
    Duration { input: String, reason: &'static str },
    #[error("invalid time {input:?}: expected RFC 3339, e.g. 2026-01-31T12:00:00Z")]
    Instant { input: String },
}

impl Clock {
    /// Real time from the system clock.
    pub fn system() -> Clock {
        Clock {
            real: RealTime::System,
        }
    }

    /// Real time standing still at `real`: the virtual time moves only by [`Clock::advance`]
    /// and [`Clock::set`].
    pub fn frozen(real: SystemTime) -> Clock {
        Clock {
            real: RealTime::Frozen(real),
        }
    }

    /// The real time underneath, rounded down to the second.
    pub fn real_now(&self) -> Result<SystemTime, ClockError> {
        let real = match self.real {
            RealTime::System => SystemTime::now(),
            RealTime::Frozen(at) => at,
        };
        let seconds = unix_seconds(real)?;
        from_unix_seconds(seconds)
    }

    /// The virtual now: real time plus the store's offset.
    pub fn now(&self, store: &Store) -> Result<SystemTime, ClockError> {
        let offset = store.clock_offset()?;
        shift(self.real_now()?, offset)
    }

    /// Moves the virtual clock forward by `by` (whole seconds; the fraction is dropped) and
    /// returns the new virtual now.
    pub fn advance(&self, store: &Store, by: Duration) -> Result<SystemTime, ClockError> {
        let by_seconds = i64::try_from(by.as_secs()).map_err(|_| ClockError::OutOfRange)?;
        let offset = store.add_clock_offset(by_seconds)?;
        shift(self.real_now()?, offset)
    }

    /// Sets the virtual clock so that now is `to` (rounded down to the second; may be before
    /// real time) and returns it.
    pub fn set(&self, store: &Store, to: SystemTime) -> Result<SystemTime, ClockError> {
        let real = unix_seconds(self.real_now()?)?;
        let target = unix_seconds(to)?;
        let offset = target.checked_sub(real).ok_or(ClockError::OutOfRange)?;
        store.set_clock_offset(offset)?;
        from_unix_seconds(target)
    }
}

fn unix_seconds(time: SystemTime) -> Result<i64, ClockError> {
    super::store::unix_seconds(time).map_err(|_| ClockError::OutOfRange)
}

fn from_unix_seconds(seconds: i64) -> Result<SystemTime, ClockError> {
    super::store::system_time(seconds).ok_or(ClockError::OutOfRange)
}

fn shift(real: SystemTime, offset_seconds: i64) -> Result<SystemTime, ClockError> {
    let seconds = unix_seconds(real)?
        .checked_add(offset_seconds)
        .ok_or(ClockError::OutOfRange)?;
    from_unix_seconds(seconds)
}

/// Reads a duration for `clock advance`: one or more `<number><unit>` with unit `w` (weeks),
/// `d`, `h`, `m` or `s` — `30d`, `12h`, `90m`, `1d12h`.
pub fn parse_duration(input: &str) -> Result<Duration, ParseTimeError> {
    let error = |reason| ParseTimeError::Duration {
        input: input.to_owned(),
        reason,
    };
    let text = input.trim();
    if text.is_empty() {
        return Err(error("empty"));
    }
    if text.starts_with('-') {
        return Err(error("negative; use `clock set` to go back"));
    }
    let mut total: u64 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(digits);
        if number.is_empty() {
            return Err(error("a unit without a number"));
        }
        let mut chars = after.chars();
        let unit: u64 = match chars.next() {
            Some('w') => 7 * 86_400,
            Some('d') => 86_400,
            Some('h') => 3_600,
            Some('m') => 60,
            Some('s') => 1,
            Some(_) => return Err(error("unknown unit")),
            None => return Err(error("a number without a unit")),
        };
        let number: u64 = number.parse().map_err(|_| error("number too large"))?;
        total = number
            .checked_mul(unit)
            .and_then(|seconds| total.checked_add(seconds))
            .ok_or_else(|| error("too long"))?;
        rest = chars.as_str();
    }
    Ok(Duration::from_secs(total))
}

/// Reads an RFC 3339 time for `clock set`, e.g. `2026-01-31T12:00:00Z` or
/// `2026-01-31T13:00:00+01:00`.
pub fn parse_instant(input: &str) -> Result<SystemTime, ParseTimeError> {
    OffsetDateTime::parse(input.trim(), &Rfc3339)
        .map(SystemTime::from)
        .map_err(|_| ParseTimeError::Instant {
            input: input.to_owned(),
        })
}

/// `time` as RFC 3339 in UTC, whole seconds (`2026-01-31T12:00:00Z`); `None` outside the years
/// RFC 3339 can write (0000–9999).
pub fn format_instant(time: SystemTime) -> Option<String> {
    let seconds = super::store::unix_seconds(time).ok()?;
    let utc = OffsetDateTime::from_unix_timestamp(seconds).ok()?;
    utc.format(&Rfc3339).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_the_cli_spellings() {
        assert_eq!(
            parse_duration("30d").unwrap(),
            Duration::from_secs(30 * 86_400)
        );
        assert_eq!(
            parse_duration("12h").unwrap(),
            Duration::from_secs(12 * 3_600)
        );
        assert_eq!(parse_duration("90m").unwrap(), Duration::from_secs(90 * 60));
        assert_eq!(parse_duration("45s").unwrap(), Duration::from_secs(45));
        assert_eq!(
            parse_duration("2w").unwrap(),
            Duration::from_secs(14 * 86_400)
        );
        assert_eq!(
            parse_duration("1d12h").unwrap(),
            Duration::from_secs(36 * 3_600)
        );
        assert_eq!(parse_duration("0d").unwrap(), Duration::ZERO);
    }

    #[test]
    fn malformed_durations_are_refused_with_a_reason() {
        for bad in [
            "",
            "30",
            "d",
            "-3d",
            "3x",
            "3 d",
            "1.5d",
            "99999999999999999999d",
            "3dd",
        ] {
            let err = parse_duration(bad).unwrap_err();
            assert!(
                err.to_string().starts_with("invalid duration"),
                "{bad:?}: {err}"
            );
        }
        let overflow = format!("{}w", u64::MAX / 604_800 + 1);
        assert!(parse_duration(&overflow).is_err());
    }

    #[test]
    fn rfc3339_round_trips_in_utc() {
        let t = parse_instant("2026-01-31T13:00:00+01:00").unwrap();
        assert_eq!(format_instant(t).unwrap(), "2026-01-31T12:00:00Z");
        assert!(parse_instant("2026-01-31").is_err());
        assert!(parse_instant("yesterday").is_err());
        let before_epoch = parse_instant("1969-12-31T23:59:59Z").unwrap();
        assert_eq!(
            format_instant(before_epoch).unwrap(),
            "1969-12-31T23:59:59Z"
        );
    }
}
