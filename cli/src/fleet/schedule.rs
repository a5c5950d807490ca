//! Who connects on which virtual day: the fleet's usage patterns. Each day's list comes from
//! the pattern, the virtual calendar and the seed alone, so a run can be repeated exactly and
//! any day computed on its own (a long run never holds the whole schedule in memory).

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use time::{Date, Weekday};

/// The chance that a device connects on a given day under [`Pattern::Random`].
pub const RANDOM_PROBABILITY: f64 = 0.7;

/// Mixed into the seed so the random schedule's stream differs from the hardware ids' one.
const SCHEDULE_STREAM: u64 = 0x5C4E_D01E_0000_0000;
/// An odd constant (2^64 / golden ratio) spreading day numbers over the seed space.
const DAY_SPREAD: u64 = 0x9E37_79B9_7F4A_7C15;

/// How often the devices connect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pattern {
    /// Every device, every day.
    Daily,
    /// Every device, Monday to Friday of the virtual calendar (office machines).
    Weekdays,
    /// Each device on each day with probability [`RANDOM_PROBABILITY`], drawn from the seed.
    Random,
}

impl Pattern {
    const NAMES: [(&'static str, Pattern); 3] = [
        ("daily", Pattern::Daily),
        ("weekdays", Pattern::Weekdays),
        ("random", Pattern::Random),
    ];

    pub fn name(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(_, pattern)| *pattern == self)
            .map_or("?", |(name, _)| name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown pattern {0:?}: one of daily, weekdays, random")]
pub struct UnknownPattern(pub String);

impl std::str::FromStr for Pattern {
    type Err = UnknownPattern;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::NAMES
            .iter()
            .find(|(name, _)| *name == text)
            .map(|(_, pattern)| *pattern)
            .ok_or_else(|| UnknownPattern(text.to_owned()))
    }
}

/// The fleet's schedule: `devices` devices over virtual days counted from `start`.
#[derive(Clone, Debug)]
pub struct Schedule {
    pub pattern: Pattern,
    pub devices: u32,
    pub seed: u64,
    /// The virtual date of day 0.
    pub start: Date,
}

impl Schedule {
    /// The virtual date of day `day`, if the calendar reaches it.
    pub fn date(&self, day: u32) -> Option<Date> {
        self.start.checked_add(time::Duration::days(i64::from(day)))
    }

    /// The devices (0-based) that connect on day `day`, in ascending order.
    pub fn devices_on(&self, day: u32) -> Vec<u32> {
        let all = 0..self.devices;
        match self.pattern {
            Pattern::Daily => all.collect(),
            Pattern::Weekdays => match self.date(day).map(Date::weekday) {
                Some(Weekday::Saturday | Weekday::Sunday) | None => Vec::new(),
                Some(_) => all.collect(),
            },
            Pattern::Random => {
                // One stream per day: a day's draws do not depend on the days before it.
                let day_seed = u64::from(day).wrapping_add(1).wrapping_mul(DAY_SPREAD);
                let mut rng = StdRng::seed_from_u64(self.seed ^ SCHEDULE_STREAM ^ day_seed);
                all.filter(|_| rng.random_bool(RANDOM_PROBABILITY))
                    .collect()
            }
        }
    }

    /// How many connections days `0..days` hold in all (for a progress bar).
    pub fn connections(&self, days: u32) -> u64 {
        (0..days)
            .map(|day| u64::try_from(self.devices_on(day).len()).unwrap_or(u64::MAX))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(pattern: Pattern) -> Schedule {
        Schedule {
            pattern,
            devices: 200,
            seed: 7,
            // A Monday.
            start: Date::from_calendar_date(2026, time::Month::March, 2).unwrap(),
        }
    }

    #[test]
    fn patterns_read_by_name() {
        for pattern in [Pattern::Daily, Pattern::Weekdays, Pattern::Random] {
            assert_eq!(pattern.name().parse::<Pattern>(), Ok(pattern));
        }
        let error = "hourly".parse::<Pattern>().unwrap_err();
        assert_eq!(
            error.to_string(),
            "unknown pattern \"hourly\": one of daily, weekdays, random"
        );
    }

    #[test]
    fn weekdays_skip_the_virtual_weekend() {
        let weekdays = schedule(Pattern::Weekdays);
        let counts: Vec<usize> = (0..7).map(|day| weekdays.devices_on(day).len()).collect();
        assert_eq!(counts, [200, 200, 200, 200, 200, 0, 0]);
        assert_eq!(weekdays.connections(14), 10 * 200);
        assert_eq!(schedule(Pattern::Daily).connections(3), 600);
    }

    #[test]
    fn random_days_repeat_with_the_seed_and_differ_between_days() {
        let random = schedule(Pattern::Random);
        let day_3 = random.devices_on(3);
        assert_eq!(day_3, random.devices_on(3));
        assert_ne!(day_3, random.devices_on(4));
        let other_seed = Schedule {
            seed: 8,
            ..random.clone()
        };
        assert_ne!(day_3, other_seed.devices_on(3));
        // 0.7 of 200 over 50 days, give or take: far from none and from all.
        let total = random.connections(50);
        assert!((6_000..8_000).contains(&total), "{total}");
        assert!(day_3.windows(2).all(|pair| pair[0] < pair[1]));
    }
}
