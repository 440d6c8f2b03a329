//! Drawing a trend with plotters: the expected band, the min–max envelope, the mean
//! line with gaps where data is missing, and anomaly spans. The same drawing goes to an
//! SVG string for the screen and to SVG or PNG files for export.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;
use serde::{Deserialize, Serialize};

use crate::trend::{Resolution, Trend, TrendPoint};

pub use app_core::chart::ChartError;
use app_core::chart::draw_err;

/// How the chart looks: its size, the theme, and the viewer's time zone for the axis.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ChartStyle {
    pub width: u32,
    pub height: u32,
    pub dark: bool,
    /// Minutes east of UTC of the viewer's clock (the axis shows local time).
    pub utc_offset_minutes: i32,
}

impl Default for ChartStyle {
    fn default() -> Self {
        ChartStyle { width: 640, height: 200, dark: false, utc_offset_minutes: 0 }
    }
}

/// Where the plot area sits in the picture and what it spans, so the screen can turn a
/// pointer position back into a time and a value.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Frame {
    pub left: i32,
    pub right: i32,
    pub top: i32,
    pub bottom: i32,
    pub from_ms: i64,
    pub to_ms: i64,
    pub y_min: f64,
    pub y_max: f64,
}

/// A chart for the screen.
#[derive(Debug, Clone, Serialize)]
pub struct RenderedChart {
    pub svg: String,
    pub frame: Frame,
}

struct Palette {
    background: RGBColor,
    grid: RGBColor,
    axis: RGBColor,
    text: RGBColor,
    band: RGBAColor,
    envelope: RGBAColor,
    line: RGBColor,
    anomaly: RGBAColor,
    anomaly_mark: RGBColor,
}

fn palette(dark: bool) -> Palette {
    if dark {
        Palette {
            background: RGBColor(0x1c, 0x22, 0x29),
            grid: RGBColor(0x2c, 0x34, 0x3d),
            axis: RGBColor(0x4a, 0x55, 0x61),
            text: RGBColor(0xa9, 0xb4, 0xc0),
            band: RGBColor(0x3f, 0xa3, 0x6b).mix(0.16),
            envelope: RGBColor(0x6c, 0xb4, 0xee).mix(0.25),
            line: RGBColor(0x7c, 0xc0, 0xf5),
            anomaly: RGBColor(0xe5, 0x5b, 0x4d).mix(0.22),
            anomaly_mark: RGBColor(0xff, 0x7a, 0x6b),
        }
    } else {
        Palette {
            background: RGBColor(0xff, 0xff, 0xff),
            grid: RGBColor(0xec, 0xef, 0xf2),
            axis: RGBColor(0xb5, 0xbd, 0xc6),
            text: RGBColor(0x4b, 0x55, 0x60),
            band: RGBColor(0x2e, 0x8b, 0x57).mix(0.12),
            envelope: RGBColor(0x1f, 0x6f, 0xb2).mix(0.18),
            line: RGBColor(0x1f, 0x5f, 0x9e),
            anomaly: RGBColor(0xc6, 0x28, 0x28).mix(0.14),
            anomaly_mark: RGBColor(0xc6, 0x28, 0x28),
        }
    }
}

/// The value axis: the data and the expected band, padded, never empty.
fn y_range(trend: &Trend) -> (f64, f64) {
    let s = &trend.sensor;
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    for p in &trend.points {
        lo = lo.min(p.min);
        hi = hi.max(p.max);
    }
    for m in &trend.marks {
        if let Some(v) = m.observed.filter(|v| v.is_finite()) {
            lo = lo.min(v);
            hi = hi.max(v);
        }
    }
    if s.normal_min.is_finite() && s.normal_max.is_finite() && s.normal_min <= s.normal_max {
        lo = lo.min(s.normal_min);
        hi = hi.max(s.normal_max);
    }
    if !lo.is_finite() || !hi.is_finite() {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.08).max(hi.abs().max(1.0) * 1e-3);
    (lo - pad, hi + pad)
}

fn time_label(ms: i64, span_ms: i64, offset_minutes: i32) -> String {
    let local = ms + i64::from(offset_minutes) * 60_000;
    let Some(t) = chrono::DateTime::from_timestamp_millis(local) else {
        return String::new();
    };
    if span_ms > 2 * 24 * 3_600_000 {
        t.format("%d %b").to_string()
    } else if span_ms > 12 * 3_600_000 {
        t.format("%a %H:%M").to_string()
    } else {
        t.format("%H:%M").to_string()
    }
}

fn value_label(v: f64) -> String {
    let a = v.abs();
    if a >= 1000.0 {
        format!("{v:.0}")
    } else if a >= 100.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// Splits points where the data has a hole, so the line does not bridge missing data.
fn segments(points: &[TrendPoint], resolution: Resolution, span_ms: i64, columns: i64) -> Vec<&[TrendPoint]> {
    // A gap is wider than three steps of the data and three columns of the picture.
    let column_ms = span_ms / columns.max(1);
    let gap = (resolution.step_ms() * 3).max(column_ms * 3);
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..points.len() {
        if points[i].ts_ms - points[i - 1].ts_ms > gap {
            out.push(&points[start..i]);
            start = i;
        }
    }
    if start < points.len() {
        out.push(&points[start..]);
    }
    out
}

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    trend: &Trend,
    style: &ChartStyle,
) -> Result<Frame, ChartError>
where
    DB::ErrorType: 'static,
{
    let p = palette(style.dark);
    root.fill(&p.background).map_err(draw_err)?;
    let (y_min, y_max) = y_range(trend);
    let w = trend.window;
    let span = w.span_ms();
    let font = ("sans-serif", 12).into_font().color(&p.text);
    let mut chart = ChartBuilder::on(&root)
        .margin_top(8)
        .margin_right(12)
        .margin_bottom(4)
        .margin_left(4)
        .x_label_area_size(22)
        .y_label_area_size(52)
        .build_cartesian_2d(w.from_ms..w.to_ms, y_min..y_max)
        .map_err(draw_err)?;
    chart
        .configure_mesh()
        .light_line_style(TRANSPARENT)
        .bold_line_style(p.grid)
        .axis_style(p.axis)
        .x_labels(if style.width < 420 { 4 } else { 7 })
        .y_labels(5)
        .x_label_style(font.clone())
        .y_label_style(font)
        .x_label_formatter(&|ms| time_label(*ms, span, style.utc_offset_minutes))
        .y_label_formatter(&|v| value_label(*v))
        .draw()
        .map_err(draw_err)?;

    let s = &trend.sensor;
    if s.normal_min.is_finite() && s.normal_max.is_finite() && s.normal_min <= s.normal_max {
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(w.from_ms, s.normal_min), (w.to_ms, s.normal_max)],
                p.band.filled(),
            )))
            .map_err(draw_err)?;
    }
    for m in &trend.marks {
        let start = m.start_ms.max(w.from_ms);
        let end = m.end_ms.unwrap_or(w.to_ms).min(w.to_ms).max(start + span / 400);
        chart
            .draw_series(std::iter::once(Rectangle::new([(start, y_min), (end, y_max)], p.anomaly.filled())))
            .map_err(draw_err)?;
    }

    let (x_px, _) = chart.plotting_area().get_pixel_range();
    let columns = i64::from((x_px.end - x_px.start).max(1));
    for seg in segments(&trend.points, trend.resolution, span, columns) {
        let banded = seg.iter().any(|q| q.max > q.min);
        if banded && seg.len() > 1 {
            let outline: Vec<(i64, f64)> =
                seg.iter().map(|q| (q.ts_ms, q.max)).chain(seg.iter().rev().map(|q| (q.ts_ms, q.min))).collect();
            chart.draw_series(std::iter::once(Polygon::new(outline, p.envelope.filled()))).map_err(draw_err)?;
        }
        if seg.len() == 1 {
            chart
                .draw_series(std::iter::once(Circle::new((seg[0].ts_ms, seg[0].mean), 2, p.line.filled())))
                .map_err(draw_err)?;
        } else {
            chart
                .draw_series(LineSeries::new(seg.iter().map(|q| (q.ts_ms, q.mean)), p.line.stroke_width(2)))
                .map_err(draw_err)?;
        }
    }
    if let Some(last) = trend.points.last() {
        chart
            .draw_series(std::iter::once(Circle::new((last.ts_ms, last.mean), 3, p.line.filled())))
            .map_err(draw_err)?;
    }
    for m in &trend.marks {
        if let Some(v) = m.observed.filter(|v| v.is_finite())
            && m.start_ms >= w.from_ms
        {
            chart
                .draw_series(std::iter::once(TriangleMarker::new((m.start_ms, v), 6, p.anomaly_mark.filled())))
                .map_err(draw_err)?;
        }
    }
    let (xr, yr) = chart.plotting_area().get_pixel_range();
    root.present().map_err(draw_err)?;
    Ok(Frame {
        left: xr.start,
        right: xr.end,
        top: yr.start,
        bottom: yr.end,
        from_ms: w.from_ms,
        to_ms: w.to_ms,
        y_min,
        y_max,
    })
}

fn check_size(style: &ChartStyle) -> Result<(), ChartError> {
    app_core::chart::check_size(style.width, style.height, (120, 60))
}

/// Draws the trend as an SVG document.
pub fn render_svg(trend: &Trend, style: &ChartStyle) -> Result<RenderedChart, ChartError> {
    check_size(style)?;
    let mut svg = String::new();
    let frame = {
        let root = SVGBackend::with_string(&mut svg, (style.width, style.height)).into_drawing_area();
        draw(root, trend, style)?
    };
    Ok(RenderedChart { svg, frame })
}

/// Writes the trend to `path` as `png` or `svg`.
pub fn export(trend: &Trend, style: &ChartStyle, path: &Path, format: &str) -> Result<(), ChartError> {
    check_size(style)?;
    match format {
        "svg" => {
            let root = SVGBackend::new(path, (style.width, style.height)).into_drawing_area();
            draw(root, trend, style)?;
        }
        "png" => {
            let root = BitMapBackend::new(path, (style.width, style.height)).into_drawing_area();
            draw(root, trend, style)?;
        }
        other => return Err(ChartError::Format { got: other.to_string(), allowed: "png or svg" }),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trend::{AnomalyMark, Window};
    use readmodel_contract::Sensor;

    fn trend(points: Vec<TrendPoint>) -> Trend {
        Trend {
            sensor: Sensor {
                sensor_id: 7,
                name: "P1-L01-M001-TEMP1".into(),
                machine_id: "P1-L01-M001".into(),
                kind: "temperature".into(),
                unit: "°C".into(),
                normal_min: 40.0,
                normal_max: 60.0,
                position: 1,
            },
            window: Window { from_ms: 0, to_ms: 900_000 },
            resolution: Resolution::Raw,
            points,
            marks: vec![AnomalyMark {
                anomaly_id: "A1".into(),
                severity: "critical".into(),
                start_ms: 600_000,
                end_ms: None,
                observed: Some(75.0),
            }],
        }
    }

    const LINE_LIGHT: &str = r##"stroke="#1F5F9E" stroke-width="2""##;

    fn pt(ts_ms: i64, v: f64) -> TrendPoint {
        TrendPoint { ts_ms, mean: v, min: v - 1.0, max: v + 1.0 }
    }

    #[test]
    fn an_svg_has_the_band_the_line_the_anomaly_and_a_usable_frame() {
        let points: Vec<TrendPoint> = (0..900).map(|i| pt(i * 1000, 50.0 + (i as f64 / 50.0).sin() * 5.0)).collect();
        let chart = render_svg(&trend(points), &ChartStyle::default()).unwrap();
        assert!(chart.svg.matches("<line").count() < 20, "only the main grid lines are drawn");
        assert!(chart.svg.starts_with("<svg"), "{}", &chart.svg[..50]);
        assert_eq!(chart.svg.matches(LINE_LIGHT).count(), 1, "the mean line is drawn once");
        assert!(chart.svg.contains(r##"opacity="0.12" fill="#2E8B57""##), "the expected band is drawn");
        assert!(chart.svg.contains(r##"opacity="0.14" fill="#C62828""##), "the anomaly span is drawn");
        let f = chart.frame;
        assert!(f.left > 0 && f.right <= 640 && f.left < f.right && f.top < f.bottom);
        assert!(f.y_min < 40.0 && f.y_max > 75.0, "the axis holds the band and the observed value");
    }

    #[test]
    fn a_hole_in_the_data_is_not_bridged() {
        let mut points: Vec<TrendPoint> = (0..100).map(|i| pt(i * 1000, 50.0)).collect();
        points.extend((500..600).map(|i| pt(i * 1000, 52.0)));
        let segs = segments(&points, Resolution::Raw, 900_000, 600);
        assert_eq!(segs.len(), 2);
        let chart = render_svg(&trend(points), &ChartStyle { dark: true, ..ChartStyle::default() }).unwrap();
        assert_eq!(chart.svg.matches(r##"stroke="#7CC0F5" stroke-width="2""##).count(), 2);
    }

    #[test]
    fn empty_data_and_silly_sizes_are_handled() {
        assert!(render_svg(&trend(vec![]), &ChartStyle::default()).is_ok());
        let tiny = ChartStyle { width: 10, ..ChartStyle::default() };
        assert!(matches!(render_svg(&trend(vec![]), &tiny), Err(ChartError::Size { width: 10, height: 200, .. })));
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            export(&trend(vec![]), &ChartStyle::default(), &dir.path().join("x.gif"), "gif"),
            Err(ChartError::Format { .. })
        ));
    }

    #[test]
    fn export_writes_png_and_svg_files() {
        let dir = tempfile::tempdir().unwrap();
        let points: Vec<TrendPoint> = (0..300).map(|i| pt(i * 3000, 45.0 + (i % 7) as f64)).collect();
        let t = trend(points);
        let png = dir.path().join("t.png");
        export(&t, &ChartStyle { width: 800, height: 300, ..ChartStyle::default() }, &png, "png").unwrap();
        let bytes = std::fs::read(&png).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        let svg = dir.path().join("t.svg");
        export(&t, &ChartStyle::default(), &svg, "svg").unwrap();
        assert!(std::fs::read_to_string(&svg).unwrap().contains("<svg"));
    }
}
