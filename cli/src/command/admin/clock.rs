//! `rdpele admin clock show|advance|set`: the virtual clock ([`rdpele_license_server::clock`]),
//! shared through the store with every server on the same data directory.

use std::time::{Duration, SystemTime};

use anyhow::anyhow;
use clap::{Args, Subcommand};
use serde_json::json;

use super::args::instant;
use super::{answer, CommandResult, Context, Failure};
use rdpele_license_server::clock::{format_instant, parse_duration, parse_instant, Clock};
use rdpele_license_server::store::Store;

/// Show or move the virtual clock.
///
/// The virtual clock is real time plus an offset kept in the store: moving it moves every
/// server on the same data directory at once, and real time keeps running underneath.
#[derive(Debug, Subcommand)]
pub(super) enum ClockCommand {
    /// Show the virtual now, the real time under it and the offset between them.
    ///
    /// JSON: {"now", "real_now", "offset_seconds", "offset"}.
    Show,
    Advance(AdvanceArgs),
    Set(SetArgs),
}

/// Move the virtual clock forward, e.g. `clock advance 30d`.
///
/// Licenses age with it: a temporary CAL ends 90 days after its issue, a permanent one after
/// 52–89 days, and a CAL within 7 days of its end is renewed at the next connection.
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub(super) struct AdvanceArgs {
    /// How far: one or more NUMBER+UNIT, unit w (weeks), d, h, m or s — 30d, 12h, 1d12h.
    #[arg(value_name = "DURATION", value_parser = parse_duration, allow_hyphen_values = true)]
    by: Duration,
}

/// Set the virtual clock to a time, e.g. `clock set 2026-01-31T12:00:00Z`.
///
/// The time may be before the real one (to replay a scenario from a given day); as on a real
/// server whose clock goes back, licenses issued "later" then look not issued yet, and expired
/// ones valid again.
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub(super) struct SetArgs {
    /// The new virtual now, RFC 3339 (2026-01-31T12:00:00Z, 2026-01-31T13:00:00+01:00).
    #[arg(value_name = "RFC3339", value_parser = parse_instant)]
    to: SystemTime,
}

pub(super) fn run(context: &Context<'_>, command: &ClockCommand) -> CommandResult {
    let store = Store::open(context.data)?;
    let clock = Clock::system();
    match command {
        ClockCommand::Show => {}
        ClockCommand::Advance(args) => {
            let now = clock.now(&store)?;
            if now.checked_add(args.by).and_then(format_instant).is_none() {
                return Err(Failure::invalid(anyhow!(
                    "advancing by {} s would take the virtual clock past 9999-12-31",
                    args.by.as_secs()
                )));
            }
            clock.advance(&store, args.by)?;
        }
        ClockCommand::Set(args) => {
            clock.set(&store, args.to)?;
        }
    }
    show(context, &store, &clock)
}

fn show(context: &Context<'_>, store: &Store, clock: &Clock) -> CommandResult {
    let offset = store.clock_offset()?;
    let now = clock.now(store)?;
    let real = clock.real_now()?;
    let document = json!({
        "now": instant(now),
        "real_now": instant(real),
        "offset_seconds": offset,
        "offset": offset_text(offset),
    });
    answer(context, &document, || {
        format!(
            "virtual now {} (real time {}, offset {})\n",
            instant(now),
            instant(real),
            offset_text(offset)
        )
    });
    Ok(())
}

/// An offset in seconds as `+30d`, `-2d3h`, `+1d0h0m5s`, `0s`.
fn offset_text(seconds: i64) -> String {
    let sign = if seconds < 0 { "-" } else { "+" };
    let magnitude = seconds.unsigned_abs();
    let (days, rest) = (magnitude / 86_400, magnitude % 86_400);
    let (hours, rest) = (rest / 3_600, rest % 3_600);
    let (minutes, secs) = (rest / 60, rest % 60);
    let units = [(days, 'd'), (hours, 'h'), (minutes, 'm'), (secs, 's')];
    // From the first unit that is not zero to the last one that is not.
    let first = units.iter().position(|(value, _)| *value > 0);
    let last = units.iter().rposition(|(value, _)| *value > 0);
    let shown = match (first, last) {
        (Some(first), Some(last)) => units.get(first..=last).unwrap_or(&[]),
        _ => return "0s".to_owned(),
    };
    let text: String = shown
        .iter()
        .map(|(value, unit)| format!("{value}{unit}"))
        .collect();
    format!("{sign}{text}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_read_like_the_durations_advance_takes() {
        assert_eq!(offset_text(0), "0s");
        assert_eq!(offset_text(30 * 86_400), "+30d");
        assert_eq!(offset_text(-(2 * 86_400 + 3 * 3_600)), "-2d3h");
        assert_eq!(offset_text(86_400 + 5), "+1d0h0m5s");
        assert_eq!(offset_text(12 * 3_600), "+12h");
        assert_eq!(offset_text(10 * 3_600), "+10h");
        assert_eq!(offset_text(20), "+20s");
    }
}
