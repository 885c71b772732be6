//! A line chart as SVG, written by hand: a few polylines and axis labels are all the benchmark
//! needs, and a plotting crate would bring a font stack into the build.

use std::fmt::Write;

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 400.0;
const LEFT: f64 = 70.0;
const BOTTOM: f64 = 50.0;
const TOP: f64 = 40.0;
const RIGHT: f64 = 170.0;

/// A line: its label, its colour and its points.
type Series = (&'static str, &'static str, Vec<(f64, f64)>);

/// Commit latency (p50 and p99, ms) against messages stored, as `(stored, p50, p99)` rows; the
/// rows of the old layout too when given.
pub(crate) fn latency_svg(after: &[(u64, f64, f64)], before: Option<&[(u64, f64, f64)]>) -> String {
    let series = latency_series(after, before);
    let frame = Frame::fitting(&series);
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = write!(svg, r#"<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>"#);
    let _ = write!(
        svg,
        r#"<text x="{LEFT}" y="22" font-size="14">Commit of 20,000 messages: latency against messages already stored</text>"#
    );
    frame.axes(&mut svg);
    frame.lines(&mut svg, &series);
    svg.push_str("</svg>\n");
    svg
}

/// The lines of the chart, the old layout's first: drawn first, they sit under the new ones,
/// and the legend lists them in the same order.
fn latency_series(after: &[(u64, f64, f64)], before: Option<&[(u64, f64, f64)]>) -> Vec<Series> {
    let mut series: Vec<Series> = Vec::new();
    let points = |rows: &[(u64, f64, f64)], p99: bool| -> Vec<(f64, f64)> {
        rows.iter().map(|&(x, p50, p99v)| (x as f64, if p99 { p99v } else { p50 })).collect()
    };
    if let Some(before) = before {
        series.push(("before: p99", "#d62728", points(before, true)));
        series.push(("before: p50", "#ff9896", points(before, false)));
    }
    series.push(("after: p99", "#1f77b4", points(after, true)));
    series.push(("after: p50", "#aec7e8", points(after, false)));
    series
}

/// The plot area and its scales: one for every series, so the lines compare at a glance.
struct Frame {
    max_x: f64,
    max_y: f64,
    plot_w: f64,
    plot_h: f64,
}

impl Frame {
    /// Scales from 0 to the largest value of any series (at least 1), the y axis rounded up to
    /// a round number so its ticks read well.
    fn fitting(series: &[Series]) -> Self {
        let max_x =
            series.iter().flat_map(|(_, _, p)| p.iter().map(|(x, _)| *x)).fold(1.0, f64::max);
        let max_y =
            series.iter().flat_map(|(_, _, p)| p.iter().map(|(_, y)| *y)).fold(1.0, f64::max);
        Self {
            max_x,
            max_y: nice_ceiling(max_y),
            plot_w: WIDTH - LEFT - RIGHT,
            plot_h: HEIGHT - TOP - BOTTOM,
        }
    }

    fn sx(&self, x: f64) -> f64 {
        LEFT + x / self.max_x * self.plot_w
    }

    fn sy(&self, y: f64) -> f64 {
        TOP + self.plot_h - y / self.max_y * self.plot_h
    }

    /// Six ticks on each axis with a grid line at each y tick, and the x axis's title: the
    /// values can be read off the chart, not only compared.
    fn axes(&self, svg: &mut String) {
        for tick in 0..=5 {
            let y = self.max_y * f64::from(tick) / 5.0;
            let (right, at, label_x, label_y) =
                (LEFT + self.plot_w, self.sy(y), LEFT - 6.0, self.sy(y) + 4.0);
            let _ = write!(
                svg,
                r##"<line x1="{LEFT}" x2="{right}" y1="{at}" y2="{at}" stroke="#ddd"/><text x="{label_x}" y="{label_y}" text-anchor="end">{y:.0} ms</text>"##,
            );
            let x = self.max_x * f64::from(tick) / 5.0;
            let _ = write!(
                svg,
                r#"<text x="{}" y="{}" text-anchor="middle">{:.1}M</text>"#,
                self.sx(x),
                TOP + self.plot_h + 18.0,
                x / 1e6
            );
        }
        let _ = write!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="middle">messages stored before the commit</text>"#,
            LEFT + self.plot_w / 2.0,
            HEIGHT - 10.0
        );
    }

    /// Each series as a polyline, with its legend entry right of the plot, one per 20 px: the
    /// colours say which line is which without labels on the lines.
    fn lines(&self, svg: &mut String, series: &[Series]) {
        for (index, (label, color, points)) in series.iter().enumerate() {
            let path: Vec<String> = points
                .iter()
                .map(|&(x, y)| format!("{:.1},{:.1}", self.sx(x), self.sy(y)))
                .collect();
            let _ = write!(
                svg,
                r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#,
                path.join(" ")
            );
            let ly = TOP + 20.0 * index as f64;
            let lx = LEFT + self.plot_w + 16.0;
            let _ = write!(
                svg,
                r#"<line x1="{lx}" x2="{}" y1="{ly}" y2="{ly}" stroke="{color}" stroke-width="2"/><text x="{}" y="{}">{label}</text>"#,
                lx + 20.0,
                lx + 26.0,
                ly + 4.0
            );
        }
    }
}

/// The smallest of 1, 2 or 5 times a power of ten at or above `value`.
fn nice_ceiling(value: f64) -> f64 {
    let power = 10f64.powf(value.log10().floor());
    [1.0, 2.0, 5.0, 10.0].into_iter().map(|m| m * power).find(|v| *v >= value).unwrap_or(value)
}
