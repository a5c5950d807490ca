//! `rdpele fleet --plot FILE.svg`: CALs held by kind after each virtual day, and refusals per
//! day, as two charts in one SVG document.

use plotters::prelude::*;

use super::held::Held;
use super::summary::{date_text, FleetReport};
use crate::plot::{axes, line_panel, Axes, Line, PlotError, PANEL_HEIGHT, WIDTH};

/// One line of the CALs chart.
struct Kind {
    label: &'static str,
    color: RGBColor,
    count: fn(&Held) -> u64,
}

const KINDS: [Kind; 3] = [
    Kind {
        label: "per-device permanent",
        color: RGBColor(31, 119, 180),
        count: |held| held.per_device.permanent,
    },
    Kind {
        label: "per-device temporary",
        color: RGBColor(255, 127, 14),
        count: |held| held.per_device.temporary,
    },
    Kind {
        label: "per-user recorded (on the license server)",
        color: RGBColor(44, 160, 44),
        count: |held| held.per_user.recorded,
    },
];
const REFUSED: RGBColor = RGBColor(214, 39, 40);

/// The report's days as an SVG document. Kinds no device ever held are left out.
pub fn svg(report: &FleetReport) -> Result<String, PlotError> {
    let days = i64::try_from(report.days.len()).map_err(PlotError::TooManyDays)?;
    let x_max = days.max(1);
    let start = report.days.first().map(|day| day.date);
    let label = move |day: &i64| match start
        .and_then(|start| start.checked_add(time::Duration::days(*day)))
    {
        Some(date) => date_text(date),
        None => format!("day {day}"),
    };
    let held_max = report
        .days
        .iter()
        .flat_map(|day| KINDS.iter().map(|kind| (kind.count)(&day.held)))
        .max()
        .unwrap_or(0);
    let refused_max = report
        .days
        .iter()
        .map(|day| day.tally.refused)
        .max()
        .unwrap_or(0);
    let lines = KINDS
        .iter()
        .filter(|kind| report.days.iter().any(|day| (kind.count)(&day.held) > 0))
        .map(|kind| Line {
            label: kind.label,
            color: kind.color,
            points: (0..days).zip(report.days.iter().map(|day| (kind.count)(&day.held))),
        });

    let mut document = String::new();
    {
        let root = SVGBackend::with_string(&mut document, (WIDTH, PANEL_HEIGHT.saturating_mul(2)))
            .into_drawing_area();
        root.fill(&WHITE)?;
        let (top, bottom) = root.split_vertically(PANEL_HEIGHT);
        line_panel(
            &top,
            &Axes {
                caption: &format!(
                    "CALs held by {} devices after each virtual day",
                    report.devices
                ),
                days: 0..x_max,
                y_max: headroom(held_max),
                day_label: &label,
                x_desc: "virtual date (UTC)",
                y_desc: "CALs",
            },
            lines,
        )?;
        let mut chart = axes(
            &bottom,
            &Axes {
                caption: "Refusals per virtual day",
                days: 0..x_max,
                y_max: headroom(refused_max),
                day_label: &label,
                x_desc: "virtual date (UTC)",
                y_desc: "refused connections",
            },
        )?;
        chart.draw_series((0..days).zip(&report.days).map(|(x, day)| {
            Rectangle::new(
                [(x, 0), (x.saturating_add(1), day.tally.refused)],
                REFUSED.filled(),
            )
        }))?;
        root.present()?;
    }
    Ok(document)
}

/// A little room above the highest value.
fn headroom(max: u64) -> u64 {
    max.saturating_add(max / 10).saturating_add(1)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::fleet::held::PerDevice;
    use crate::fleet::summary::{DayReport, ServerTotals, Tally};

    fn day(day: u32, permanent: u64, temporary: u64, refused: u64) -> DayReport {
        DayReport {
            day,
            date: time::Date::from_calendar_date(2026, time::Month::March, 2)
                .unwrap()
                .checked_add(time::Duration::days(i64::from(day)))
                .unwrap(),
            tally: Tally {
                refused,
                ..Tally::default()
            },
            held: Held {
                per_device: PerDevice {
                    permanent,
                    temporary,
                },
                ..Held::default()
            },
        }
    }

    #[test]
    fn both_charts_are_drawn_with_the_kinds_held() {
        let days = vec![day(0, 0, 3, 0), day(1, 2, 1, 0), day(2, 2, 0, 1)];
        let report = FleetReport {
            connect: "127.0.0.1:3389".to_owned(),
            devices: 3,
            users: 3,
            pattern: "daily",
            seed: 1,
            concurrency: 1,
            held: days[2].held,
            days,
            totals: Tally::default(),
            server: ServerTotals::from_report(&rdpele_license_server::store::PoolReport {
                now: SystemTime::UNIX_EPOCH,
                packs: Vec::new(),
                temporary: Vec::new(),
                overused: Vec::new(),
            }),
            started_at: SystemTime::UNIX_EPOCH,
            ended_at: SystemTime::UNIX_EPOCH + Duration::from_secs(3 * 86_400),
            wall: Duration::from_secs(1),
        };
        let document = svg(&report).unwrap();
        assert!(document.starts_with("<svg"));
        assert!(document.contains("CALs held by 3 devices after each virtual day"));
        assert!(document.contains("Refusals per virtual day"));
        assert!(document.contains("per-device permanent"));
        // Kinds no device held stay out of the legend.
        assert!(!document.contains("OverUsed"));
        assert!(document.contains("2026-03-02"));
    }
}
