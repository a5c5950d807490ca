//! The CAL pools over virtual time, per licensing mode: what `report --plot` draws.
//!
//! The counts are rebuilt from the store's event log (`license_events`: every status a license
//! took, and when) and each license's expiration date: a license counts in a series from the
//! event that gave it that status until its next event or its expiration date, whichever comes
//! first — a renewal supersedes a CAL before it expires, and only the log knows when. Installed
//! CALs count from their pack's installation. Each day is sampled at its end (the last one at
//! the virtual now), so the series show what RD Licensing Manager would have shown that night.

use std::time::SystemTime;

use crate::model::{IssuedLicense, KeyPack, LicenseStatus, LicensingMode};
use crate::store::{unix_seconds, LicenseEvent, StoreError};

pub const DAY_SECONDS: i64 = 86_400;
/// Past this many days the series sample every few days instead.
const MAX_SAMPLES: i64 = 2_000;

/// What a series counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Category {
    /// CALs in installed packs.
    Installed,
    /// Active licenses taken from a pack.
    InUse,
    /// Temporary CALs (per device).
    Temporary,
    /// Revoked licenses whose holder still uses them (back in the pool).
    Revoked,
    /// Active licenses taken from no pack (per user, pool exhausted).
    OverUsed,
}

impl Category {
    fn of(mode: LicensingMode) -> &'static [Category] {
        match mode {
            LicensingMode::PerDevice => &[
                Category::Installed,
                Category::InUse,
                Category::Temporary,
                Category::Revoked,
            ],
            LicensingMode::PerUser => &[Category::Installed, Category::InUse, Category::OverUsed],
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Category::Installed => "installed",
            Category::InUse => "in use",
            Category::Temporary => "temporary",
            Category::Revoked => "revoked, still held",
            Category::OverUsed => "OverUsed",
        }
    }
}

/// One series of a chart: a count per sample.
#[derive(Debug)]
pub struct Series {
    pub category: Category,
    pub values: Vec<u32>,
}

impl Series {
    pub fn label(&self) -> &'static str {
        self.category.label()
    }
}

/// One licensing mode's chart.
#[derive(Debug)]
pub struct Panel {
    pub mode: LicensingMode,
    pub series: Vec<Series>,
}

/// The pools sampled over virtual time.
#[derive(Debug)]
pub struct PoolPlot {
    /// Each sample's day, in days since the Unix epoch.
    pub days: Vec<i64>,
    pub panels: Vec<Panel>,
}

/// A change of one count at a time.
#[derive(Clone, Copy, Debug)]
struct Delta {
    at: i64,
    mode: LicensingMode,
    category: Category,
    by: i64,
}

/// The series a license counts in while it has `status`.
fn category(license: &IssuedLicense, status: LicenseStatus) -> Option<Category> {
    match status {
        LicenseStatus::Temporary => Some(Category::Temporary),
        LicenseStatus::Active if license.key_pack_id.is_some() => Some(Category::InUse),
        LicenseStatus::Active => Some(Category::OverUsed),
        LicenseStatus::Revoked => Some(Category::Revoked),
        LicenseStatus::Expired | LicenseStatus::Superseded => None,
    }
}

/// Every count change the packs, licenses and events imply.
fn deltas(
    packs: &[KeyPack],
    licenses: &[IssuedLicense],
    events: &[LicenseEvent],
) -> Result<Vec<Delta>, StoreError> {
    let mut deltas = Vec::new();
    for pack in packs {
        deltas.push(Delta {
            at: unix_seconds(pack.installed_at)?,
            mode: pack.key_pack_type,
            category: Category::Installed,
            by: i64::from(pack.total_licenses),
        });
    }
    // Events in commit order, grouped by license (licenses are sorted by id).
    let mut by_license: Vec<&LicenseEvent> = events.iter().collect();
    by_license.sort_by_key(|event| (event.license_id, event.event_id));
    let mut events = by_license.as_slice();
    for license in licenses {
        let split = events
            .iter()
            .position(|event| event.license_id > license.license_id)
            .unwrap_or(events.len());
        let (own, rest) = events.split_at(split);
        events = rest;
        let own: Vec<&&LicenseEvent> = own
            .iter()
            .filter(|event| event.license_id == license.license_id)
            .collect();
        let expires = unix_seconds(license.expiration_date)?;
        for (index, event) in own.iter().enumerate() {
            let Some(category) = category(license, event.status) else {
                continue;
            };
            let start = unix_seconds(event.at)?;
            let next = match own.get(index.saturating_add(1)) {
                Some(next) => unix_seconds(next.at)?,
                None => i64::MAX,
            };
            let end = next.min(expires);
            if end > start {
                let mode = license.license_type;
                deltas.push(Delta {
                    at: start,
                    mode,
                    category,
                    by: 1,
                });
                deltas.push(Delta {
                    at: end,
                    mode,
                    category,
                    by: -1,
                });
            }
        }
    }
    deltas.sort_by_key(|delta| delta.at);
    Ok(deltas)
}

/// The pools at the end of every day from the first pack or license to `now`.
pub fn pool_over_time(
    packs: &[KeyPack],
    licenses: &[IssuedLicense],
    events: &[LicenseEvent],
    now: SystemTime,
) -> Result<PoolPlot, StoreError> {
    let now = unix_seconds(now)?;
    let deltas = deltas(packs, licenses, events)?;
    let first = deltas
        .iter()
        .map(|delta| delta.at)
        .min()
        .unwrap_or(now)
        .min(now);
    let (first_day, last_day) = (first.div_euclid(DAY_SECONDS), now.div_euclid(DAY_SECONDS));
    let span = last_day.saturating_sub(first_day).saturating_add(1);
    let step = span.saturating_add(MAX_SAMPLES - 1) / MAX_SAMPLES;
    let modes: Vec<LicensingMode> = [LicensingMode::PerDevice, LicensingMode::PerUser]
        .into_iter()
        .filter(|mode| deltas.iter().any(|delta| delta.mode == *mode))
        .collect();
    let modes = if modes.is_empty() {
        vec![LicensingMode::PerDevice]
    } else {
        modes
    };
    let mut panels: Vec<Panel> = modes
        .iter()
        .map(|mode| Panel {
            mode: *mode,
            series: Category::of(*mode)
                .iter()
                .map(|category| Series {
                    category: *category,
                    values: Vec::new(),
                })
                .collect(),
        })
        .collect();
    let mut counts: Vec<(LicensingMode, Category, i64)> = Vec::new();
    let mut pending = deltas.iter().peekable();
    let mut days = Vec::new();
    let mut day = first_day;
    loop {
        let last = day >= last_day;
        let sample_at = if last {
            now
        } else {
            day.saturating_add(1)
                .saturating_mul(DAY_SECONDS)
                .saturating_sub(1)
        };
        while let Some(delta) = pending.next_if(|delta| delta.at <= sample_at) {
            match counts
                .iter_mut()
                .find(|(mode, category, _)| *mode == delta.mode && *category == delta.category)
            {
                Some((_, _, count)) => *count = count.saturating_add(delta.by),
                None => counts.push((delta.mode, delta.category, delta.by)),
            }
        }
        days.push(if last { last_day } else { day });
        for panel in &mut panels {
            for series in &mut panel.series {
                let count = counts
                    .iter()
                    .find(|(mode, category, _)| *mode == panel.mode && *category == series.category)
                    .map_or(0, |(_, _, count)| *count);
                series
                    .values
                    .push(u32::try_from(count.max(0)).unwrap_or(u32::MAX));
            }
        }
        if last {
            break;
        }
        day = day.saturating_add(step).min(last_day);
    }
    Ok(PoolPlot { days, panels })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use std::time::Duration;

    use super::*;
    use crate::model::WindowsVersion;

    fn at(day: u64, hour: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(day * 86_400 + hour * 3_600)
    }

    fn license(
        id: u32,
        pack: Option<u32>,
        issued: SystemTime,
        expires: SystemTime,
    ) -> IssuedLicense {
        IssuedLicense {
            license_id: id,
            key_pack_id: pack,
            license_type: LicensingMode::PerDevice,
            issued_to_user: "u".into(),
            issued_to_computer: "m".into(),
            hardware_id: [0; 20],
            issue_date: issued,
            expiration_date: expires,
            status: LicenseStatus::Active,
            revoked_at: None,
            product_version: WindowsVersion::V2019,
            validated_at: None,
        }
    }

    fn event(
        event_id: u64,
        license_id: u32,
        at: SystemTime,
        status: LicenseStatus,
    ) -> LicenseEvent {
        LicenseEvent {
            event_id,
            license_id,
            at,
            status,
        }
    }

    #[test]
    fn counts_follow_the_event_log_and_expiry() {
        let packs = [KeyPack {
            key_pack_id: 1,
            key_pack_type: LicensingMode::PerDevice,
            product_version: WindowsVersion::V2019,
            total_licenses: 5,
            installed_at: at(100, 1),
        }];
        // License 1: temporary on day 100, superseded on day 101 by license 2 (permanent,
        // expiring day 103 noon); license 2 revoked on day 102.
        let licenses = [
            license(1, None, at(100, 2), at(190, 2)),
            license(2, Some(1), at(101, 2), at(103, 12)),
        ];
        let events = [
            event(1, 1, at(100, 2), LicenseStatus::Temporary),
            event(2, 1, at(101, 2), LicenseStatus::Superseded),
            event(3, 2, at(101, 2), LicenseStatus::Active),
            event(4, 2, at(102, 2), LicenseStatus::Revoked),
        ];
        let plot = pool_over_time(&packs, &licenses, &events, at(104, 6)).unwrap();
        assert_eq!(plot.days, [100, 101, 102, 103, 104]);
        assert_eq!(plot.panels.len(), 1);
        let values: Vec<(&str, &[u32])> = plot.panels[0]
            .series
            .iter()
            .map(|series| (series.label(), series.values.as_slice()))
            .collect();
        assert_eq!(
            values,
            [
                ("installed", &[5, 5, 5, 5, 5][..]),
                ("in use", &[0, 1, 0, 0, 0][..]),
                ("temporary", &[1, 0, 0, 0, 0][..]),
                ("revoked, still held", &[0, 0, 1, 0, 0][..]),
            ]
        );
    }

    #[test]
    fn a_long_history_is_sampled_every_few_days() {
        let licenses = [license(1, None, at(0, 0), at(10_000, 0))];
        let events = [event(1, 1, at(0, 0), LicenseStatus::Temporary)];
        let plot = pool_over_time(&[], &licenses, &events, at(9_999, 0)).unwrap();
        assert!(plot.days.len() <= usize::try_from(MAX_SAMPLES).unwrap() + 1);
        assert_eq!(plot.days.first(), Some(&0));
        assert_eq!(plot.days.last(), Some(&9_999));
        assert!(plot.panels[0].series[2]
            .values
            .iter()
            .all(|count| *count == 1));
    }
}
