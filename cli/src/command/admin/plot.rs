//! `report --plot`: the CAL pools over virtual time ([`pool_over_time`]), one chart per
//! licensing mode, as SVG.

use anyhow::{anyhow, Result};
use plotters::prelude::*;

use crate::fleet::summary::date_text;
use crate::plot::{line_panel, Axes, Line, PlotError, PANEL_HEIGHT, WIDTH};
use rdpele_license_server::model::LicensingMode;
use rdpele_license_server::pool_over_time::{Category, PoolPlot, DAY_SECONDS};

/// A series' line color, the same for a category in every panel.
fn color(category: Category) -> RGBColor {
    match category {
        Category::Installed => RGBColor(40, 40, 40),
        Category::InUse => RGBColor(31, 119, 180),
        Category::Temporary => RGBColor(255, 127, 14),
        Category::Revoked => RGBColor(148, 103, 189),
        Category::OverUsed => RGBColor(214, 39, 40),
    }
}

/// `day` (days since the epoch) as `2026-01-31`.
fn date(day: i64) -> String {
    let seconds = day.saturating_mul(DAY_SECONDS);
    match time::OffsetDateTime::from_unix_timestamp(seconds) {
        Ok(at) => date_text(at.date()),
        Err(_) => format!("day {day}"),
    }
}

/// The plot as an SVG document.
pub(super) fn svg(plot: &PoolPlot) -> Result<String> {
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
        root.fill(&WHITE).map_err(PlotError::from)?;
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
            let lines = panel.series.iter().map(|series| Line {
                label: series.label(),
                color: color(series.category),
                points: plot
                    .days
                    .iter()
                    .copied()
                    .zip(series.values.iter().copied().map(u64::from)),
            });
            line_panel(
                area,
                &Axes {
                    caption: &format!("{mode} CALs over virtual time"),
                    days: first..last,
                    y_max: u64::from(y_max),
                    day_label: &|day| date(*day),
                    x_desc: "virtual date (UTC, end of day)",
                    y_desc: "CALs",
                },
                lines,
            )?;
        }
        root.present().map_err(PlotError::from)?;
    }
    Ok(document)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use rdpele_license_server::pool_over_time::{Panel, Series};

    use super::*;

    #[test]
    fn each_panel_is_captioned_with_its_mode() {
        let plot = PoolPlot {
            days: vec![100, 101, 102],
            panels: vec![Panel {
                mode: LicensingMode::PerDevice,
                series: vec![Series {
                    category: Category::Installed,
                    values: vec![5, 5, 5],
                }],
            }],
        };
        let document = svg(&plot).unwrap();
        assert!(document.starts_with("<svg"), "{}", &document[..40]);
        assert!(document.contains("Per-device CALs over virtual time"));
    }
}
