//! Drawing the managers' charts and tables with plotters, as the supervisor's trends are
//! drawn: one line per plant (or per period), gaps where a bucket has no value, a legend,
//! and a stamp (title, range, plants, the time it was made) on every picture. The same
//! drawing goes to an SVG string for the screen and to SVG or PNG files; the CSV of a
//! chart is written from the very series the drawing was made from.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;
use serde::{Deserialize, Serialize};

use crate::kpi::Series;
use crate::range::DAY_MS;

pub use app_core::chart::ChartError;
use app_core::chart::draw_err;

/// Size and theme of a picture.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Style {
    pub width: u32,
    pub height: u32,
    pub dark: bool,
}

impl Default for Style {
    fn default() -> Self {
        Style { width: 900, height: 360, dark: false }
    }
}

impl Style {
    fn check(&self) -> Result<(), ChartError> {
        app_core::chart::check_size(self.width, self.height, (240, 160))
    }
}

/// What every exported picture and file says about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stamp {
    pub title: String,
    pub range: String,
    pub plants: String,
    pub made_at_ms: i64,
}

impl Stamp {
    pub fn made_at(&self) -> String {
        chrono::DateTime::from_timestamp_millis(self.made_at_ms)
            .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
            .unwrap_or_default()
    }

    fn line(&self) -> String {
        format!("{} · {} · plants {} · made {}", self.title, self.range, self.plants, self.made_at())
    }
}

/// A chart ready to draw: the x span, its series and its stamp.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chart {
    pub stamp: Stamp,
    /// What the value axis is, e.g. "OEE".
    pub y_label: String,
    /// Values are shares, drawn as 0–100 %.
    pub share: bool,
    pub from_ms: i64,
    pub to_ms: i64,
    pub series: Vec<Series>,
}

/// A table ready to draw: its cells as shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Table {
    pub stamp: Stamp,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

struct Palette {
    background: RGBColor,
    grid: RGBColor,
    axis: RGBColor,
    text: RGBColor,
    lines: [RGBColor; 8],
}

fn palette(dark: bool) -> Palette {
    let lines = [
        RGBColor(0x1f, 0x77, 0xb4),
        RGBColor(0xe0, 0x6c, 0x00),
        RGBColor(0x2c, 0xa0, 0x2c),
        RGBColor(0xd6, 0x27, 0x28),
        RGBColor(0x94, 0x67, 0xbd),
        RGBColor(0x8c, 0x56, 0x4b),
        RGBColor(0xe3, 0x77, 0xc2),
        RGBColor(0x7f, 0x7f, 0x7f),
    ];
    if dark {
        Palette {
            background: RGBColor(0x1c, 0x22, 0x29),
            grid: RGBColor(0x2c, 0x34, 0x3d),
            axis: RGBColor(0x4a, 0x55, 0x61),
            text: RGBColor(0xa9, 0xb4, 0xc0),
            lines,
        }
    } else {
        Palette {
            background: RGBColor(0xff, 0xff, 0xff),
            grid: RGBColor(0xec, 0xef, 0xf2),
            axis: RGBColor(0xb5, 0xbd, 0xc6),
            text: RGBColor(0x4b, 0x55, 0x60),
            lines,
        }
    }
}

fn y_range(chart: &Chart) -> (f64, f64) {
    let values = chart.series.iter().flat_map(|s| s.points.iter().filter_map(|p| p.value));
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if chart.share {
        return (0.0, hi.clamp(1.0, 1.5));
    }
    if !lo.is_finite() || !hi.is_finite() {
        return (0.0, 1.0);
    }
    let lo = lo.min(0.0);
    let pad = ((hi - lo) * 0.08).max(1.0);
    (lo, hi + pad)
}

fn time_label(ms: i64, span_ms: i64) -> String {
    let Some(t) = chrono::DateTime::from_timestamp_millis(ms) else { return String::new() };
    if span_ms > 2 * DAY_MS { t.format("%d %b").to_string() } else { t.format("%d %b %H:%M").to_string() }
}

fn value_label(v: f64, share: bool) -> String {
    if share {
        return format!("{:.0} %", v * 100.0);
    }
    let a = v.abs();
    if a >= 100.0 { format!("{v:.0}") } else { format!("{v:.1}") }
}

fn draw_chart<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, chart: &Chart, style: &Style) -> Result<(), ChartError>
where
    DB::ErrorType: 'static,
{
    let p = palette(style.dark);
    root.fill(&p.background).map_err(draw_err)?;
    let (body, foot) = root.split_vertically(style.height.saturating_sub(22));
    let font = ("sans-serif", 12).into_font().color(&p.text);
    foot.draw(&Text::new(chart.stamp.line(), (8, 4), font.clone())).map_err(draw_err)?;
    let (y_min, y_max) = y_range(chart);
    let span = chart.to_ms - chart.from_ms;
    let share = chart.share;
    let mut c = ChartBuilder::on(&body)
        .caption(format!("{} — {}", chart.stamp.title, chart.y_label), ("sans-serif", 15).into_font().color(&p.text))
        .margin_top(6)
        .margin_right(16)
        .margin_left(6)
        .x_label_area_size(24)
        .y_label_area_size(56)
        .build_cartesian_2d(chart.from_ms..chart.to_ms.max(chart.from_ms + 1), y_min..y_max)
        .map_err(draw_err)?;
    c.configure_mesh()
        .light_line_style(TRANSPARENT)
        .bold_line_style(p.grid)
        .axis_style(p.axis)
        .x_labels(if style.width < 600 { 4 } else { 8 })
        .y_labels(6)
        .x_label_style(font.clone())
        .y_label_style(font.clone())
        .x_label_formatter(&|ms| time_label(*ms, span))
        .y_label_formatter(&|v| value_label(*v, share))
        .draw()
        .map_err(draw_err)?;
    for (i, s) in chart.series.iter().enumerate() {
        let color = p.lines[i % p.lines.len()];
        // Consecutive buckets with a value make one stroke; a bucket without one breaks it.
        let mut strokes: Vec<Vec<(i64, f64)>> = vec![Vec::new()];
        for q in &s.points {
            match q.value {
                Some(v) => strokes.last_mut().expect("one stroke at least").push((q.x_ms, v)),
                None if strokes.last().is_some_and(|l| !l.is_empty()) => strokes.push(Vec::new()),
                None => {}
            }
        }
        let mut labelled = false;
        for stroke in strokes.into_iter().filter(|s| !s.is_empty()) {
            let drawn = if stroke.len() == 1 {
                c.draw_series(std::iter::once(Circle::new(stroke[0], 3, color.filled()))).map_err(draw_err)?
            } else {
                c.draw_series(LineSeries::new(stroke, color.stroke_width(2))).map_err(draw_err)?
            };
            if !labelled {
                drawn
                    .label(s.label.clone())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(3)));
                labelled = true;
            }
        }
    }
    if !chart.series.is_empty() {
        c.configure_series_labels()
            .background_style(p.background.mix(0.85))
            .border_style(p.axis)
            .label_font(font)
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .map_err(draw_err)?;
    }
    root.present().map_err(draw_err)
}

fn draw_table<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, table: &Table, style: &Style) -> Result<(), ChartError>
where
    DB::ErrorType: 'static,
{
    let p = palette(style.dark);
    root.fill(&p.background).map_err(draw_err)?;
    let font = ("sans-serif", 13).into_font().color(&p.text);
    let bold = ("sans-serif", 15).into_font().color(&p.text);
    root.draw(&Text::new(table.stamp.title.clone(), (10, 8), bold)).map_err(draw_err)?;
    let cols = table.columns.len().max(1) as i32;
    let first = (style.width as i32 / 5).max(120);
    let rest = ((style.width as i32 - first - 20) / (cols - 1).max(1)).max(40);
    let x = |i: usize| if i == 0 { 10 } else { 10 + first + (i as i32 - 1) * rest };
    let row_h = 22;
    for (i, c) in table.columns.iter().enumerate() {
        root.draw(&Text::new(c.clone(), (x(i), 36), font.clone())).map_err(draw_err)?;
    }
    root.draw(&PathElement::new(vec![(10, 54), (style.width as i32 - 10, 54)], p.axis)).map_err(draw_err)?;
    for (r, cells) in table.rows.iter().enumerate() {
        let y = 60 + r as i32 * row_h;
        for (i, c) in cells.iter().enumerate() {
            root.draw(&Text::new(c.clone(), (x(i), y), font.clone())).map_err(draw_err)?;
        }
    }
    let foot = style.height as i32 - 20;
    root.draw(&Text::new(table.stamp.line(), (10, foot), ("sans-serif", 12).into_font().color(&p.text)))
        .map_err(draw_err)?;
    root.present().map_err(draw_err)
}

/// The chart as an SVG document.
pub fn chart_svg(chart: &Chart, style: &Style) -> Result<String, ChartError> {
    style.check()?;
    let mut svg = String::new();
    draw_chart(SVGBackend::with_string(&mut svg, (style.width, style.height)).into_drawing_area(), chart, style)?;
    Ok(svg)
}

/// The height a table needs for its rows.
pub fn table_style(table: &Table, width: u32, dark: bool) -> Style {
    Style { width, height: (100 + 22 * table.rows.len() as u32).clamp(160, 4000), dark }
}

pub fn table_svg(table: &Table, style: &Style) -> Result<String, ChartError> {
    style.check()?;
    let mut svg = String::new();
    draw_table(SVGBackend::with_string(&mut svg, (style.width, style.height)).into_drawing_area(), table, style)?;
    Ok(svg)
}

fn stamp_lines(stamp: &Stamp) -> Vec<Vec<String>> {
    // A name with a line break (a plant's, from the cloud) must not end the comment.
    let one_line = |s: &str| s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect::<String>();
    vec![
        vec![format!("# title: {}", one_line(&stamp.title))],
        vec![format!("# range: {}", one_line(&stamp.range))],
        vec![format!("# plants: {}", one_line(&stamp.plants))],
        vec![format!("# made: {}", stamp.made_at())],
    ]
}

fn csv_text(header: &[Vec<String>], columns: &[String], rows: &[Vec<String>]) -> Result<String, ChartError> {
    let mut out = String::new();
    for h in header {
        out.push_str(&h.join(","));
        out.push('\n');
    }
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(columns).map_err(draw_err)?;
    for r in rows {
        w.write_record(r).map_err(draw_err)?;
    }
    let bytes = w.into_inner().map_err(draw_err)?;
    out.push_str(&String::from_utf8_lossy(&bytes));
    Ok(out)
}

/// The chart's numbers: one row per drawn point (series, bucket start, value; empty where
/// nothing is drawn), values as the drawing got them, to the last digit.
pub fn chart_csv(chart: &Chart) -> Result<String, ChartError> {
    let columns = vec!["series".to_string(), "bucket_start".into(), "value".into()];
    let mut rows = Vec::new();
    for s in &chart.series {
        for q in &s.points {
            let t = chrono::DateTime::from_timestamp_millis(q.bucket_start_ms)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                .unwrap_or_default();
            rows.push(vec![s.label.clone(), t, q.value.map(|v| v.to_string()).unwrap_or_default()]);
        }
    }
    csv_text(&stamp_lines(&chart.stamp), &columns, &rows)
}

pub fn table_csv(table: &Table) -> Result<String, ChartError> {
    csv_text(&stamp_lines(&table.stamp), &table.columns, &table.rows)
}

/// What an export is of.
#[derive(Debug, Clone, Copy)]
pub enum Drawing<'a> {
    Chart(&'a Chart),
    Table(&'a Table),
    /// The one-page report of a view for a weekly review: its chart above its table.
    Report(&'a Chart, &'a Table),
}

fn draw_report<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    chart: &Chart,
    table: &Table,
    chart_style: &Style,
    table_style: &Style,
) -> Result<(), ChartError>
where
    DB::ErrorType: 'static,
{
    let (top, bottom) = root.split_vertically(chart_style.height);
    draw_chart(top, chart, chart_style)?;
    draw_table(bottom, table, table_style)
}

/// Writes a chart or a table to `path` as `png`, `svg` or `csv`.
pub fn export(drawing: Drawing<'_>, style: &Style, path: &Path, format: &str) -> Result<(), ChartError> {
    let write =
        |text: String| std::fs::write(path, text).map_err(|e| ChartError::Write(format!("{}: {e}", path.display())));
    let (style, below) = match drawing {
        Drawing::Table(t) => (table_style(t, style.width, style.dark), None),
        Drawing::Chart(_) => (*style, None),
        Drawing::Report(_, t) => {
            let below = table_style(t, style.width, style.dark);
            (Style { height: style.height + below.height, ..*style }, Some(below))
        }
    };
    style.check()?;
    let chart_part = Style { height: style.height - below.map_or(0, |b| b.height), ..style };
    match (format, drawing) {
        ("svg", Drawing::Report(c, t)) => {
            let mut svg = String::new();
            {
                let root = SVGBackend::with_string(&mut svg, (style.width, style.height)).into_drawing_area();
                draw_report(root, c, t, &chart_part, &below.unwrap_or(style))?;
            }
            write(svg)
        }
        ("csv", Drawing::Report(..)) => Err(ChartError::Format {
            got: "csv".into(),
            allowed: "png or svg for a report (a report is a picture: export its chart or table as CSV)",
        }),
        ("svg", Drawing::Chart(c)) => write(chart_svg(c, &style)?),
        ("svg", Drawing::Table(t)) => write(table_svg(t, &style)?),
        ("csv", Drawing::Chart(c)) => write(chart_csv(c)?),
        ("csv", Drawing::Table(t)) => write(table_csv(t)?),
        ("png", d) => {
            {
                let root = BitMapBackend::new(path, (style.width, style.height)).into_drawing_area();
                match d {
                    Drawing::Chart(c) => draw_chart(root, c, &style)?,
                    Drawing::Table(t) => draw_table(root, t, &style)?,
                    Drawing::Report(c, t) => draw_report(root, c, t, &chart_part, &below.unwrap_or(style))?,
                }
            }
            Ok(())
        }
        (other, _) => Err(ChartError::Format { got: other.to_string(), allowed: "png, svg or csv" }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kpi::SeriesPoint;

    fn chart() -> Chart {
        let t0 = 1_772_366_400_000;
        let pts = |vals: &[Option<f64>]| {
            vals.iter()
                .enumerate()
                .map(|(i, v)| SeriesPoint {
                    x_ms: t0 + i as i64 * 3_600_000,
                    bucket_start_ms: t0 + i as i64 * 3_600_000,
                    value: *v,
                })
                .collect()
        };
        Chart {
            stamp: Stamp {
                title: "OEE by plant".into(),
                range: "a day".into(),
                plants: "P1, P2".into(),
                made_at_ms: t0,
            },
            y_label: "OEE".into(),
            share: true,
            from_ms: t0,
            to_ms: t0 + 4 * 3_600_000,
            series: vec![
                Series {
                    label: "P1 Lyon, France".into(),
                    points: pts(&[Some(0.5), None, Some(0.812345678901), Some(0.7)]),
                },
                Series { label: "P2".into(), points: pts(&[Some(0.6), Some(0.61), None, None]) },
            ],
        }
    }

    #[test]
    fn the_csv_holds_exactly_the_drawn_numbers_under_its_stamp() {
        let c = chart();
        let text = chart_csv(&c).unwrap();
        assert!(
            text.starts_with(
                "# title: OEE by plant\n# range: a day\n# plants: P1, P2\n# made: 2026-03-01 12:00:00 UTC\n"
            )
        );
        let body: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(body[0], "series,bucket_start,value");
        assert_eq!(body[1], "\"P1 Lyon, France\",2026-03-01T12:00:00Z,0.5");
        assert_eq!(body[2], "\"P1 Lyon, France\",2026-03-01T13:00:00Z,");
        assert_eq!(body[3], "\"P1 Lyon, France\",2026-03-01T14:00:00Z,0.812345678901");
        assert_eq!(body.len(), 1 + 8);
    }

    #[test]
    fn pictures_carry_their_stamp_and_refuse_silly_sizes() {
        let c = chart();
        let svg = chart_svg(&c, &Style::default()).unwrap();
        assert!(svg.contains("<svg") && svg.contains("made 2026-03-01 12:00:00 UTC") && svg.contains("P1 Lyon"));
        assert!(matches!(
            chart_svg(&c, &Style { width: 10, height: 10, dark: false }),
            Err(ChartError::Size { width: 10, height: 10, .. })
        ));
        let dir = tempfile::tempdir().unwrap();
        let png = dir.path().join("c.png");
        export(Drawing::Chart(&c), &Style::default(), &png, "png").unwrap();
        assert_eq!(&std::fs::read(&png).unwrap()[..8], b"\x89PNG\r\n\x1a\n");
        assert!(matches!(export(Drawing::Chart(&c), &Style::default(), &png, "gif"), Err(ChartError::Format { .. })));
    }

    #[test]
    fn hostile_names_stay_text_in_every_format() {
        let mut c = chart();
        c.series[0].label = format!("<script>alert(1)</script>\u{0}\"{}", "x".repeat(100_000));
        c.stamp.plants = "P1,\nP2".into();
        let svg = chart_svg(&c, &Style::default()).unwrap();
        assert!(!svg.contains("<script>") && svg.contains("&lt;script&gt;"));
        let csv_text = chart_csv(&c).unwrap();
        assert_eq!(csv_text.lines().filter(|l| l.starts_with('#')).count(), 4);
        assert!(csv_text.contains("# plants: P1, P2\n"));
        let body: String = csv_text.lines().skip(4).map(|l| format!("{l}\n")).collect();
        let mut r = csv::Reader::from_reader(body.as_bytes());
        let first = r.records().next().unwrap().unwrap();
        assert!(first[0].starts_with("<script>"), "the label comes back whole from the CSV");
    }

    #[test]
    fn an_empty_chart_and_a_table_still_draw() {
        let mut c = chart();
        c.series.clear();
        assert!(chart_svg(&c, &Style::default()).unwrap().contains("<svg"));
        let t = Table {
            stamp: c.stamp.clone(),
            columns: vec!["Plant".into(), "OEE".into()],
            rows: vec![vec!["P1".into(), "81.2 %".into()]],
        };
        let svg = table_svg(&t, &table_style(&t, 900, true)).unwrap();
        assert!(svg.contains("81.2 %"));
        assert!(table_csv(&t).unwrap().ends_with("Plant,OEE\nP1,81.2 %\n"));
        let dir = tempfile::tempdir().unwrap();
        let report = dir.path().join("r.svg");
        export(Drawing::Report(&chart(), &t), &Style::default(), &report, "svg").unwrap();
        let text = std::fs::read_to_string(&report).unwrap();
        assert!(text.contains("P1 Lyon") && text.contains("81.2 %"), "chart and table on one page");
        assert!(export(Drawing::Report(&chart(), &t), &Style::default(), &report, "csv").is_err());
        let png = dir.path().join("r.png");
        export(Drawing::Report(&chart(), &t), &Style { width: 1220, height: 360, dark: false }, &png, "png").unwrap();
        assert_eq!(&std::fs::read(&png).unwrap()[..4], b"\x89PNG");
    }
}
