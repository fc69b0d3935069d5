//! The report's three charts as PNG images: requests by topic (bars), business days to response
//! (a histogram) and the last twelve months (a trend line).
//!
//! Drawn with plotters into an RGB buffer (its bitmap backend), with text through `ab_glyph` and
//! the DejaVu Sans font embedded by the `dejavu` crate, so nothing depends on the system's fonts,
//! fontconfig or freetype; the buffer is encoded with the `png` crate. Each bar and line has a
//! colour of its own ([`TOPIC_BAR`], [`DAYS_BAR`], [`RECEIVED_LINE`], [`ANSWERED_LINE`]), which
//! the tests look for in the pixels. Talks to: [`super::Figures`] only.

use std::sync::OnceLock;

use plotters::backend::RGBPixel;
use plotters::chart::MeshStyle;
use plotters::coord::Shift;
use plotters::coord::ranged1d::{IntoSegmentedCoord, Ranged, SegmentValue};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::Figures;

/// Every chart's size in pixels.
pub const WIDTH: u32 = 760;
pub const HEIGHT: u32 = 380;
/// The bars of the topic chart.
pub const TOPIC_BAR: RGBColor = RGBColor(0x1f, 0x5f, 0xa8);
/// The bars of the days-to-response histogram.
pub const DAYS_BAR: RGBColor = RGBColor(0xd9, 0x6c, 0x1e);
/// The trend's questions received.
pub const RECEIVED_LINE: RGBColor = RGBColor(0x1f, 0x5f, 0xa8);
/// The trend's responses and referrals.
pub const ANSWERED_LINE: RGBColor = RGBColor(0x2b, 0x9a, 0x4f);
const INK: RGBColor = RGBColor(0x22, 0x22, 0x22);
const FONT: &str = "sans-serif";

/// One chart: what the mail and the HTML call it, and its PNG bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chart {
    /// `topics`, `days` or `trend`: a part of its file name and Content-ID.
    pub name: &'static str,
    pub title: String,
    /// The chart in words, for the image's alt text.
    pub alt: String,
    pub png: Vec<u8>,
}

/// The three charts of `f`, in the order the report shows them.
pub fn draw_all(f: &Figures) -> anyhow::Result<Vec<Chart>> {
    Ok(vec![topics(f)?, days(f)?, trend(f)?])
}

/// Registers the embedded font with plotters, once per process.
fn font() -> anyhow::Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED
        .get_or_init(|| plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular()).is_ok());
    anyhow::ensure!(ok, "the embedded DejaVu Sans font could not be read");
    Ok(())
}

type Area<'a> = DrawingArea<BitMapBackend<'a, RGBPixel>, Shift>;

/// Draws with `paint` on a white canvas and returns the PNG.
fn png(paint: impl FnOnce(&Area<'_>) -> anyhow::Result<()>) -> anyhow::Result<Vec<u8>> {
    font()?;
    let mut buf = vec![255u8; (WIDTH * HEIGHT * 3) as usize];
    {
        let backend = BitMapBackend::<RGBPixel>::with_buffer_and_format(&mut buf, (WIDTH, HEIGHT))
            .map_err(|e| anyhow::anyhow!("chart canvas: {e}"))?;
        let root = backend.into_drawing_area();
        root.fill(&WHITE)?;
        paint(&root)?;
        root.present()?;
    }
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, WIDTH, HEIGHT);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(&buf)?;
    writer.finish()?;
    Ok(out)
}

/// An empty chart's message, in the middle of the canvas.
fn nothing(root: &Area<'_>, title: &str, why: &str) -> anyhow::Result<()> {
    root.draw(&Text::new(title.to_string(), (20, 16), (FONT, 22).into_font().color(&INK)))?;
    let style = (FONT, 18).into_font().color(&RGBColor(0x77, 0x77, 0x77)).pos(Pos::new(HPos::Center, VPos::Center));
    root.draw(&Text::new(why.to_string(), ((WIDTH / 2) as i32, (HEIGHT / 2) as i32), style))?;
    Ok(())
}

/// A chart's frame: its title, margins and the room for each axis's labels.
fn frame<'a, 'b>(
    root: &'a Area<'b>,
    title: &str,
    bottom: u32,
    left: u32,
) -> ChartBuilder<'a, 'b, BitMapBackend<'b, RGBPixel>> {
    let mut builder = ChartBuilder::on(root);
    builder
        .caption(title, (FONT, 22).into_font().color(&INK))
        .margin(14)
        .x_label_area_size(bottom)
        .y_label_area_size(left);
    builder
}

/// The look every chart's axes share: dark labels, light grid lines.
fn house_style<'m, 'a, 'b, X: Ranged, Y: Ranged, DB: DrawingBackend>(
    mesh: &'m mut MeshStyle<'a, 'b, X, Y, DB>,
    label_size: u32,
) -> &'m mut MeshStyle<'a, 'b, X, Y, DB> {
    mesh.label_style((FONT, label_size).into_font().color(&INK))
        .axis_desc_style((FONT, 14).into_font().color(&INK))
        .light_line_style(RGBColor(0xee, 0xee, 0xee))
}

/// An axis's top: room above the largest value for its label.
fn headroom(max: i64) -> i64 {
    (max + max / 6 + 1).max(2)
}

/// Horizontal bars, most requests on top, each with its count at its end.
fn topics(f: &Figures) -> anyhow::Result<Chart> {
    let title = format!("Requests by topic, {}", f.label);
    let alt = if f.by_topic.is_empty() {
        "No requests this month.".to_string()
    } else {
        f.by_topic.iter().map(|c| format!("{}: {}", c.name, c.count)).collect::<Vec<_>>().join("; ")
    };
    let bars = &f.by_topic;
    let png = png(|root| {
        if bars.is_empty() {
            return nothing(root, &title, "No requests this month");
        }
        let n = bars.len() as i64;
        let max = bars.iter().map(|c| c.count).max().unwrap_or(1);
        let longest = bars.iter().map(|c| c.name.chars().count()).max().unwrap_or(8) as u32;
        // The row of bar `i` (0 = most requests), counted from the bottom.
        let row = |i: usize| n - 1 - i as i64;
        let mut chart = frame(root, &title, 44, (longest * 8 + 16).clamp(90, 320))
            .build_cartesian_2d(0..headroom(max), (0..n - 1).into_segmented())?;
        let names = |v: &SegmentValue<i64>| match v {
            SegmentValue::CenterOf(r) => bars.get((n - 1 - *r) as usize).map(|c| c.name.clone()).unwrap_or_default(),
            _ => String::new(),
        };
        let whole = |v: &i64| v.to_string();
        house_style(&mut chart.configure_mesh(), 14)
            .disable_y_mesh()
            .y_labels(bars.len())
            .y_label_formatter(&names)
            .x_labels((headroom(max) as usize).min(10))
            .x_label_formatter(&whole)
            .x_desc("Requests")
            .draw()?;
        chart.draw_series(
            Histogram::horizontal(&chart)
                .style(TOPIC_BAR.filled())
                .margin(6)
                .data(bars.iter().enumerate().map(|(i, c)| (row(i), c.count))),
        )?;
        let label = (FONT, 15).into_font().color(&INK).pos(Pos::new(HPos::Left, VPos::Center));
        chart.draw_series(bars.iter().enumerate().map(|(i, c)| {
            EmptyElement::at((c.count, SegmentValue::CenterOf(row(i))))
                + Text::new(c.count.to_string(), (6, 0), label.clone())
        }))?;
        Ok(())
    })?;
    Ok(Chart { name: "topics", title, alt, png })
}

/// One bar per business day count, from 0 to the largest, each with its count on top.
fn days(f: &Figures) -> anyhow::Result<Chart> {
    let d = &f.days_to_response;
    let title = format!("Business days to response, {}", f.label);
    let alt = if d.histogram.is_empty() {
        "No request was resolved by a response or referral this month.".to_string()
    } else {
        d.histogram
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(days, n)| format!("{days} business days: {n}"))
            .collect::<Vec<_>>()
            .join("; ")
    };
    let png = png(|root| {
        if d.histogram.is_empty() {
            return nothing(root, &title, "No request was resolved by a response or referral");
        }
        let last = d.histogram.last().map_or(0, |(days, _)| *days);
        let max = d.histogram.iter().map(|(_, n)| *n).max().unwrap_or(1);
        let mut chart = frame(root, &title, 48, 56).build_cartesian_2d((0..last).into_segmented(), 0..headroom(max))?;
        let days_label = |v: &SegmentValue<i64>| match v {
            SegmentValue::CenterOf(x) => x.to_string(),
            _ => String::new(),
        };
        let whole = |v: &i64| v.to_string();
        house_style(&mut chart.configure_mesh(), 14)
            .disable_x_mesh()
            .x_labels(d.histogram.len().min(31))
            .x_label_formatter(&days_label)
            .y_labels((headroom(max) as usize).min(10))
            .y_label_formatter(&whole)
            .x_desc("Business days from arrival to response or referral")
            .y_desc("Requests")
            .draw()?;
        chart.draw_series(
            Histogram::vertical(&chart).style(DAYS_BAR.filled()).margin(4).data(d.histogram.iter().copied()),
        )?;
        let label = (FONT, 15).into_font().color(&INK).pos(Pos::new(HPos::Center, VPos::Bottom));
        chart.draw_series(d.histogram.iter().filter(|(_, n)| *n > 0).map(|(days, n)| {
            EmptyElement::at((SegmentValue::CenterOf(*days), *n)) + Text::new(n.to_string(), (0, -4), label.clone())
        }))?;
        Ok(())
    })?;
    Ok(Chart { name: "days", title, alt, png })
}

/// Two lines over the last twelve months: questions received, and responses plus referrals.
fn trend(f: &Figures) -> anyhow::Result<Chart> {
    let first = f.trend.first().map(|t| t.month.short_label()).unwrap_or_default();
    let title = format!("The last 12 months, {first} to {}", f.month.short_label());
    let alt = f
        .trend
        .iter()
        .map(|t| format!("{}: {} received, {} answered", t.month.short_label(), t.received, t.answered))
        .collect::<Vec<_>>()
        .join("; ");
    let points = &f.trend;
    let png = png(|root| {
        let n = points.len() as i64;
        let max = points.iter().map(|t| t.received.max(t.answered)).max().unwrap_or(0);
        let mut chart =
            frame(root, &title, 48, 56).build_cartesian_2d((0..n - 1).into_segmented(), 0..headroom(max))?;
        let month_label = |v: &SegmentValue<i64>| match v {
            SegmentValue::CenterOf(i) => points
                .get(*i as usize)
                .map(|t| {
                    let label = t.month.short_label();
                    // The year only where it starts and at January.
                    if *i == 0 || label.starts_with("Jan") { label } else { label[..3].to_string() }
                })
                .unwrap_or_default(),
            _ => String::new(),
        };
        let whole = |v: &i64| v.to_string();
        house_style(&mut chart.configure_mesh(), 13)
            .disable_x_mesh()
            .x_labels(points.len())
            .x_label_formatter(&month_label)
            .y_labels((headroom(max) as usize).min(10))
            .y_label_formatter(&whole)
            .x_desc("Month")
            .y_desc("Requests")
            .draw()?;
        let series = [
            ("Questions received", RECEIVED_LINE, points.iter().map(|t| t.received).collect::<Vec<_>>()),
            ("Responses and referrals", ANSWERED_LINE, points.iter().map(|t| t.answered).collect::<Vec<_>>()),
        ];
        for (i, (name, color, values)) in series.iter().enumerate() {
            let color = *color;
            let at = |(x, v): (usize, &i64)| (SegmentValue::CenterOf(x as i64), *v);
            chart
                // The received line is the wider, so where both lines meet it still shows.
                .draw_series(LineSeries::new(values.iter().enumerate().map(at), color.stroke_width(5 - 2 * i as u32)))?
                .label(*name)
                .legend(move |(x, y)| Rectangle::new([(x, y - 3), (x + 18, y + 3)], color.filled()));
            chart.draw_series(values.iter().enumerate().map(|p| Circle::new(at(p), 4, color.filled())))?;
            // Counts (but zeros) above the received line and below the other, so they do not overlap.
            let (dy, vpos) = if i == 0 { (-8, VPos::Bottom) } else { (8, VPos::Top) };
            let label = (FONT, 13).into_font().color(&color).pos(Pos::new(HPos::Center, vpos));
            chart.draw_series(
                values
                    .iter()
                    .enumerate()
                    .filter(|(_, v)| **v > 0)
                    .map(|p| EmptyElement::at(at(p)) + Text::new(p.1.to_string(), (0, dy), label.clone())),
            )?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.9))
            .border_style(RGBColor(0xcc, 0xcc, 0xcc))
            .label_font((FONT, 14).into_font().color(&INK))
            .draw()?;
        Ok(())
    })?;
    Ok(Chart { name: "trend", title, alt, png })
}
