//! The look `report --plot` and `fleet --plot` share: captioned panels of one SVG document,
//! days along the x axis, counts up the y axis.

use std::io;
use std::num::TryFromIntError;
use std::ops::Range;

use plotters::coord::types::{RangedCoordi64, RangedCoordu64};
use plotters::coord::Shift;
use plotters::prelude::*;

pub const WIDTH: u32 = 960;
pub const PANEL_HEIGHT: u32 = 380;

/// Why a plot could not be drawn.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlotError {
    #[error("drawing the plot: {0}")]
    Draw(DrawingAreaErrorKind<io::Error>),
    #[error("drawing the plot: {0}")]
    TooManyDays(TryFromIntError),
}

impl From<DrawingAreaErrorKind<io::Error>> for PlotError {
    fn from(error: DrawingAreaErrorKind<io::Error>) -> Self {
        PlotError::Draw(error)
    }
}

/// A panel's frame: its caption and what its axes span and say.
pub struct Axes<'a> {
    pub caption: &'a str,
    pub days: Range<i64>,
    pub y_max: u64,
    pub day_label: &'a dyn Fn(&i64) -> String,
    pub x_desc: &'a str,
    pub y_desc: &'a str,
}

impl std::fmt::Debug for Axes<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Axes")
            .field("caption", &self.caption)
            .field("days", &self.days)
            .field("y_max", &self.y_max)
            .field("x_desc", &self.x_desc)
            .field("y_desc", &self.y_desc)
            .finish_non_exhaustive()
    }
}

/// One named, colored line of a panel.
#[derive(Debug)]
pub struct Line<P> {
    pub label: &'static str,
    pub color: RGBColor,
    pub points: P,
}

pub type Chart<'a, 'b> =
    ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordi64, RangedCoordu64>>;

/// Draws the caption, the axes and the mesh into `area`, for the caller's series.
pub fn axes<'a, 'b>(
    area: &'a DrawingArea<SVGBackend<'b>, Shift>,
    axes: &Axes<'_>,
) -> Result<Chart<'a, 'b>, PlotError> {
    let mut chart = ChartBuilder::on(area)
        .caption(axes.caption, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(56)
        .build_cartesian_2d(axes.days.clone(), 0..axes.y_max)?;
    chart
        .configure_mesh()
        .x_labels(8)
        .x_label_formatter(axes.day_label)
        .x_desc(axes.x_desc)
        .y_desc(axes.y_desc)
        .draw()?;
    Ok(chart)
}

/// Draws one captioned chart of `lines` into `area`, with their legend in the upper left.
pub fn line_panel<P>(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    frame: &Axes<'_>,
    lines: impl IntoIterator<Item = Line<P>>,
) -> Result<(), PlotError>
where
    P: IntoIterator<Item = (i64, u64)>,
{
    let mut chart = axes(area, frame)?;
    for line in lines {
        let color = line.color;
        chart
            .draw_series(LineSeries::new(line.points, color.stroke_width(2)))?
            .label(line.label)
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
        .draw()?;
    Ok(())
}
