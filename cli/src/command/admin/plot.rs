//! `report --plot`: the CAL pools over virtual time, one chart per licensing mode, as SVG.
//!
//! The counts are rebuilt from the store's event log (`license_events`: every status a license
//! took, and when) and each license's expiration date: a license counts in a series from the
//! event that gave it that status until its next event or its expiration date, whichever comes
//! first — a renewal supersedes a CAL before it expires, and only the log knows when. Installed
//! CALs count from their pack's installation. Each day is sampled at its end (the last one at
//! the virtual now), so the chart shows what RD Licensing Manager would have shown that night.

use std::time::SystemTime;

use anyhow::{anyhow, Result};
use plotters::prelude::*;

use rdpele_license_server::model::{IssuedLicense, KeyPack, LicenseStatus, LicensingMode};
use rdpele_license_server::store::{unix_seconds, LicenseEvent};

const DAY_SECONDS: i64 = 86_400;
/// Past this many days the chart samples every few days instead.
const MAX_SAMPLES: i64 = 2_000;
const WIDTH: u32 = 960;
const PANEL_HEIGHT: u32 = 380;

/// What a series counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Category {
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

    fn label(self) -> &'static str {
        match self {
            Category::Installed => "installed",
            Category::InUse => "in use",
            Category::Temporary => "temporary",
            Category::Revoked => "revoked, still held",
            Category::OverUsed => "OverUsed",
        }
    }

    fn color(self) -> RGBColor {
        match self {
            Category::Installed => RGBColor(40, 40, 40),
            Category::InUse => RGBColor(31, 119, 180),
            Category::Temporary => RGBColor(255, 127, 14),
            Category::Revoked => RGBColor(148, 103, 189),
            Category::OverUsed => RGBColor(214, 39, 40),
        }
    }
}

/// One series of a chart: a count per sample.
#[derive(Debug)]
pub(super) struct Series {
    category: Category,
    pub(super) values: Vec<u32>,
}

impl Series {
    pub(super) fn label(&self) -> &'static str {
        self.category.label()
    }
}

/// One licensing mode's chart.
#[derive(Debug)]
pub(super) struct Panel {
    pub(super) mode: LicensingMode,
    pub(super) series: Vec<Series>,
}

/// The pools sampled over virtual time.
#[derive(Debug)]
pub(super) struct PoolPlot {
    /// Each sample's day, in days since the Unix epoch.
    pub(super) days: Vec<i64>,
    pub(super) panels: Vec<Panel>,
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
) -> Result<Vec<Delta>> {
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
pub(super) fn pool_over_time(
    packs: &[KeyPack],
    licenses: &[IssuedLicense],
    events: &[LicenseEvent],
    now: SystemTime,
) -> Result<PoolPlot> {
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

/// `day` (days since the epoch) as `2026-01-31`.
fn date(day: i64) -> String {
    let seconds = day.saturating_mul(DAY_SECONDS);
    match time::OffsetDateTime::from_unix_timestamp(seconds) {
        Ok(at) => format!(
            "{:04}-{:02}-{:02}",
            at.year(),
            u8::from(at.month()),
            at.day()
        ),
        Err(_) => format!("day {day}"),
    }
}

/// The plot as an SVG document.
pub(super) fn svg(plot: &PoolPlot) -> Result<String> {
    let failed = |error: &dyn std::fmt::Display| anyhow!("drawing the plot: {error}");
    let panels = u32::try_from(plot.panels.len()).map_err(|_| anyhow!("too many panels"))?;
    let height = PANEL_HEIGHT.saturating_mul(panels.max(1));
    let first = plot.days.first().copied().unwrap_or(0);
    let last = plot
        .days
        .last()
        .copied()
        .unwrap_or(first)
        .max(first.saturating_add(1));
    let mut document = String::new();
    {
        let root = SVGBackend::with_string(&mut document, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| failed(&e))?;
        let areas = root.split_evenly((plot.panels.len().max(1), 1));
        for (area, panel) in areas.iter().zip(&plot.panels) {
            let top = panel
                .series
                .iter()
                .flat_map(|series| series.values.iter().copied())
                .max()
                .unwrap_or(0);
            let y_max = top.saturating_add(top / 10).saturating_add(1);
            let mode = match panel.mode {
                LicensingMode::PerDevice => "Per-device",
                LicensingMode::PerUser => "Per-user",
            };
            let mut chart = ChartBuilder::on(area)
                .caption(format!("{mode} CALs over virtual time"), ("sans-serif", 20))
                .margin(12)
                .x_label_area_size(44)
                .y_label_area_size(56)
                .build_cartesian_2d(first..last, 0u32..y_max)
                .map_err(|e| failed(&e))?;
            chart
                .configure_mesh()
                .x_labels(8)
                .x_label_formatter(&|day| date(*day))
                .x_desc("virtual date (UTC, end of day)")
                .y_desc("CALs")
                .draw()
                .map_err(|e| failed(&e))?;
            for series in &panel.series {
                let color = series.category.color();
                let points = plot.days.iter().copied().zip(series.values.iter().copied());
                chart
                    .draw_series(LineSeries::new(points, color.stroke_width(2)))
                    .map_err(|e| failed(&e))?
                    .label(series.label())
                    .legend(move |(x, y)| {
                        PathElement::new(
                            vec![(x, y), (x.saturating_add(20), y)],
                            color.stroke_width(2),
                        )
                    });
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .draw()
                .map_err(|e| failed(&e))?;
        }
        root.present().map_err(|e| failed(&e))?;
    }
    Ok(document)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use std::time::Duration;

    use super::*;
    use rdpele_license_server::model::WindowsVersion;

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
        let document = svg(&plot).unwrap();
        assert!(document.starts_with("<svg"), "{}", &document[..40]);
        assert!(document.contains("Per-device CALs over virtual time"));
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
