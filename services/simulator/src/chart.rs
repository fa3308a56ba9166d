//! `chart.svg`, drawn by hand: three panels over the same time axis — throughput (total and per
//! replica), errors by class, latency (p50/p99, log scale) — with every fault as a dashed vertical
//! line and its label.

use std::fmt::Write;

use crate::{faults::PlacedFault, metrics::ErrorClass};

/// One second of data for the chart.
#[derive(Debug, Clone, Default)]
pub struct Point {
    pub ok: u64,
    pub errors: [u64; 6],
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub replicas: Vec<(String, u64)>,
}

const W: f64 = 1100.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 190.0;
const PANEL_H: f64 = 170.0;
const GAP: f64 = 46.0;
const TOP: f64 = 135.0;
/// Width of the plotting area, between the y labels and the legends.
const PLOT_W: f64 = W - LEFT - RIGHT;
const HEIGHT: f64 = TOP + 3.0 * PANEL_H + 2.0 * GAP + 60.0;
/// Where the legends start, right of the plots.
const LEGEND_X: f64 = LEFT + PLOT_W + 10.0;

const REPLICA_COLOURS: [&str; 8] =
    ["#1f77b4", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"];

/// The classes stacked in the errors panel, bottom up (4xx-expected is not an error).
const ERROR_CLASSES: [(ErrorClass, &str); 5] = [
    (ErrorClass::Network, "#d62728"),
    (ErrorClass::Timeout, "#ff9896"),
    (ErrorClass::Server5xx, "#9467bd"),
    (ErrorClass::Unexpected4xx, "#ff7f0e"),
    (ErrorClass::ContentViolation, "#000000"),
];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A "nice" axis maximum ≥ v (1, 2, 5 × 10^n).
pub fn nice_max(v: f64) -> f64 {
    if v <= 0.0 {
        return 1.0;
    }
    let mag = 10f64.powf(v.log10().floor());
    for m in [1.0, 2.0, 5.0, 10.0] {
        if m * mag >= v {
            return m * mag;
        }
    }
    10.0 * mag
}

/// The time axis shared by the panels: `n` seconds across the plotting width.
struct TimeAxis {
    n: usize,
}

impl TimeAxis {
    fn new(seconds: usize) -> Self {
        TimeAxis { n: seconds.max(1) }
    }

    /// x of `t` seconds since the start.
    fn x(&self, t: f64) -> f64 {
        LEFT + PLOT_W * (t / self.n as f64)
    }

    /// x of the middle of second `i`, where its data point goes.
    fn mid(&self, i: usize) -> f64 {
        self.x(i as f64 + 0.5)
    }

    /// Seconds between time ticks: the first step giving at most about a dozen ticks.
    fn tick_every(&self) -> usize {
        [1usize, 2, 5, 10, 15, 30, 60, 120, 300, 600].into_iter().find(|t| self.n / t <= 12).unwrap_or(1200)
    }
}

/// One of the three stacked panels.
struct Panel {
    y0: f64,
    title: &'static str,
}

const THROUGHPUT: Panel = Panel { y0: TOP, title: "throughput (requests/s)" };
const ERRORS: Panel =
    Panel { y0: TOP + PANEL_H + GAP, title: "errors (/s, by class; 4xx-expected not included)" };
const LATENCY: Panel = Panel { y0: TOP + 2.0 * (PANEL_H + GAP), title: "latency (ms, log scale)" };
const PANELS: [&Panel; 3] = [&THROUGHPUT, &ERRORS, &LATENCY];

impl Panel {
    /// y of `v` on a linear scale from 0 (bottom) to `max` (top), clamped to the panel.
    fn y_lin(&self, v: f64, max: f64) -> f64 {
        self.y0 + PANEL_H - PANEL_H * (v / max).clamp(0.0, 1.0)
    }

    /// Frame, title and the vertical time ticks.
    fn draw_frame(&self, s: &mut String, axis: &TimeAxis) {
        let _ = writeln!(
            s,
            r##"<rect x="{LEFT}" y="{}" width="{PLOT_W}" height="{PANEL_H}" fill="#fafafa" stroke="#999"/>"##,
            self.y0
        );
        let _ =
            writeln!(s, r#"<text x="{LEFT}" y="{}" font-weight="bold">{}</text>"#, self.y0 - 6.0, self.title);
        let mut t = 0;
        while t <= axis.n {
            let xx = axis.x(t as f64);
            let _ = writeln!(
                s,
                r##"<line x1="{xx:.1}" y1="{}" x2="{xx:.1}" y2="{}" stroke="#e4e4e4"/>"##,
                self.y0,
                self.y0 + PANEL_H
            );
            let _ = writeln!(
                s,
                r##"<text x="{xx:.1}" y="{}" text-anchor="middle" fill="#555">{t}s</text>"##,
                self.y0 + PANEL_H + 13.0
            );
            t += axis.tick_every();
        }
    }

    /// Five horizontal grid lines and labels from 0 to `max`.
    fn draw_linear_ticks(&self, s: &mut String, max: f64) {
        for k in 0..=4 {
            let v = max * k as f64 / 4.0;
            y_gridline(s, self.y_lin(v, max), v);
        }
    }
}

/// A horizontal grid line at `y` across the plot, labelled `v` on the left.
fn y_gridline(s: &mut String, yy: f64, v: f64) {
    let _ = writeln!(
        s,
        r##"<line x1="{LEFT}" y1="{yy:.1}" x2="{}" y2="{yy:.1}" stroke="#eee"/>"##,
        LEFT + PLOT_W
    );
    let _ = writeln!(
        s,
        r##"<text x="{}" y="{:.1}" text-anchor="end" fill="#555">{}</text>"##,
        LEFT - 5.0,
        yy + 4.0,
        fmt_num(v)
    );
}

fn polyline(out: &mut String, pts: &[(f64, f64)], colour: &str, width: f64, dash: Option<&str>) {
    if pts.is_empty() {
        return;
    }
    let mut d = String::new();
    for (x, y) in pts {
        let _ = write!(d, "{x:.1},{y:.1} ");
    }
    let dash = dash.map(|d| format!(" stroke-dasharray=\"{d}\"")).unwrap_or_default();
    let _ = writeln!(
        out,
        r#"<polyline fill="none" stroke="{colour}" stroke-width="{width}"{dash} points="{}"/>"#,
        d.trim_end()
    );
}

/// The whole SVG, in drawing order: header, the three panels' frames and time ticks, each panel's
/// data and legend, the fault markers over them, the time axis' caption.
pub fn render(title: &str, subtitle: &str, points: &[Point], faults: &[PlacedFault]) -> String {
    let axis = TimeAxis::new(points.len());
    let mut s = String::new();
    draw_header(&mut s, title, subtitle);
    for p in PANELS {
        p.draw_frame(&mut s, &axis);
    }
    draw_throughput(&mut s, &axis, points);
    draw_errors(&mut s, &axis, points);
    draw_latency(&mut s, &axis, points);
    draw_faults(&mut s, &axis, faults);
    let _ = writeln!(
        s,
        r##"<text x="{}" y="{}" text-anchor="middle" fill="#555">seconds since start</text>"##,
        LEFT + PLOT_W / 2.0,
        LATENCY.y0 + PANEL_H + 32.0
    );
    s.push_str("</svg>\n");
    s
}

/// The `<svg>` element, a white background, the title and the subtitle.
fn draw_header(s: &mut String, title: &str, subtitle: &str) {
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{HEIGHT}" viewBox="0 0 {W} {HEIGHT}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(s, r#"<text x="{LEFT}" y="22" font-size="15" font-weight="bold">{}</text>"#, esc(title));
    let _ = writeln!(s, r##"<text x="{LEFT}" y="40" fill="#555">{}</text>"##, esc(subtitle));
}

/// Requests in a second (content violations are findings about a response, not requests).
fn requests(pt: &Point) -> u64 {
    pt.ok + pt.errors.iter().sum::<u64>() - pt.errors[ErrorClass::ContentViolation.index()]
}

/// Every replica that served a request in any second, sorted.
fn replica_names(points: &[Point]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for pt in points {
        for (r, _) in &pt.replicas {
            if !names.contains(r) {
                names.push(r.clone());
            }
        }
    }
    names.sort();
    names
}

/// Panel 1: requests per second, all and ok, and per replica (dashed).
fn draw_throughput(s: &mut String, axis: &TimeAxis, points: &[Point]) {
    let p = &THROUGHPUT;
    let totals: Vec<f64> = points.iter().map(|pt| requests(pt) as f64).collect();
    let max = nice_max(totals.iter().cloned().fold(0.0, f64::max));
    p.draw_linear_ticks(s, max);
    let mut legend = vec![LegendItem::solid("all requests", "#999999"), LegendItem::solid("ok", "#2ca02c")];
    for (ri, name) in replica_names(points).iter().enumerate() {
        let colour = REPLICA_COLOURS[ri % REPLICA_COLOURS.len()];
        let pts: Vec<(f64, f64)> = points
            .iter()
            .enumerate()
            .map(|(i, pt)| {
                let v = pt.replicas.iter().find(|(r, _)| r == name).map(|(_, c)| *c).unwrap_or(0);
                (axis.mid(i), p.y_lin(v as f64, max))
            })
            .collect();
        polyline(s, &pts, colour, 1.2, Some("4 2"));
        legend.push(LegendItem { label: format!("served by {name}"), colour, dashed: true });
    }
    let pts: Vec<(f64, f64)> =
        totals.iter().enumerate().map(|(i, v)| (axis.mid(i), p.y_lin(*v, max))).collect();
    polyline(s, &pts, "#999999", 1.5, None);
    let pts: Vec<(f64, f64)> =
        points.iter().enumerate().map(|(i, pt)| (axis.mid(i), p.y_lin(pt.ok as f64, max))).collect();
    polyline(s, &pts, "#2ca02c", 2.0, None);
    draw_legend(s, p, &legend);
}

/// Panel 2: errors per second, stacked bars by class; "no errors" when there were none.
fn draw_errors(s: &mut String, axis: &TimeAxis, points: &[Point]) {
    let p = &ERRORS;
    let err_tot: Vec<u64> =
        points.iter().map(|pt| ERROR_CLASSES.iter().map(|(c, _)| pt.errors[c.index()]).sum()).collect();
    let max = nice_max(err_tot.iter().copied().max().unwrap_or(0) as f64);
    p.draw_linear_ticks(s, max);
    let slot = PLOT_W / axis.n as f64;
    let bw = (slot * 0.8).max(0.5);
    for (i, pt) in points.iter().enumerate() {
        let mut acc = 0.0;
        for (c, colour) in ERROR_CLASSES {
            let v = pt.errors[c.index()] as f64;
            if v <= 0.0 {
                continue;
            }
            let y_top = p.y_lin(acc + v, max);
            let y_bot = p.y_lin(acc, max);
            let _ = writeln!(
                s,
                r#"<rect x="{:.1}" y="{y_top:.1}" width="{bw:.1}" height="{:.1}" fill="{colour}"/>"#,
                axis.x(i as f64) + (slot - bw) / 2.0,
                (y_bot - y_top).max(0.5)
            );
            acc += v;
        }
    }
    let legend: Vec<LegendItem> =
        ERROR_CLASSES.iter().map(|(c, colour)| LegendItem::solid(c.name(), colour)).collect();
    draw_legend(s, p, &legend);
    if err_tot.iter().sum::<u64>() == 0 {
        let _ = writeln!(
            s,
            r##"<text x="{}" y="{}" text-anchor="middle" fill="#2ca02c" font-size="14">no errors</text>"##,
            LEFT + PLOT_W / 2.0,
            p.y0 + PANEL_H / 2.0
        );
    }
}

/// The latency panel's log scale: whole decades from below the lowest p50 to above the highest
/// p99 (at least one decade).
#[derive(Debug, PartialEq)]
struct LogScale {
    lo: f64,
    hi: f64,
}

impl LogScale {
    fn for_points(points: &[Point]) -> Self {
        let max_ms = points.iter().map(|pt| pt.p99_ms).fold(1.0, f64::max);
        let min_ms = points.iter().map(|pt| pt.p50_ms).filter(|v| *v > 0.0).fold(f64::INFINITY, f64::min);
        let lo = if min_ms.is_finite() { 10f64.powf(min_ms.log10().floor()) } else { 0.1 };
        let hi = 10f64.powf(max_ms.log10().ceil()).max(lo * 10.0);
        LogScale { lo, hi }
    }

    /// y of `v` in panel `p` (values below `lo` sit on the bottom).
    fn y(&self, p: &Panel, v: f64) -> f64 {
        let (lo, hi) = (self.lo, self.hi);
        let v = v.max(lo);
        p.y0 + PANEL_H - PANEL_H * ((v.log10() - lo.log10()) / (hi.log10() - lo.log10())).clamp(0.0, 1.0)
    }
}

/// Panel 3: p50 and p99 per second on a log scale (seconds without requests left out).
fn draw_latency(s: &mut String, axis: &TimeAxis, points: &[Point]) {
    let p = &LATENCY;
    let scale = LogScale::for_points(points);
    let mut dec = scale.lo;
    while dec <= scale.hi * 1.0001 {
        y_gridline(s, scale.y(p, dec), dec);
        dec *= 10.0;
    }
    let series = |get: fn(&Point) -> f64| -> Vec<(f64, f64)> {
        points
            .iter()
            .enumerate()
            .filter(|(_, pt)| get(pt) > 0.0)
            .map(|(i, pt)| (axis.mid(i), scale.y(p, get(pt))))
            .collect()
    };
    polyline(s, &series(|pt| pt.p50_ms), "#1f77b4", 1.8, None);
    polyline(s, &series(|pt| pt.p99_ms), "#d62728", 1.8, None);
    draw_legend(s, p, &[LegendItem::solid("p50", "#1f77b4"), LegendItem::solid("p99", "#d62728")]);
}

/// Every fault inside the run: a dashed line through all panels and its label in the band above
/// them, the labels stacked four deep so neighbours do not overlap.
fn draw_faults(s: &mut String, axis: &TimeAxis, faults: &[PlacedFault]) {
    let bottom = LATENCY.y0 + PANEL_H;
    for (k, f) in faults.iter().enumerate() {
        if f.t_s < 0.0 || f.t_s > axis.n as f64 {
            continue;
        }
        let xx = axis.x(f.t_s);
        let _ = writeln!(
            s,
            r##"<line x1="{xx:.1}" y1="{}" x2="{xx:.1}" y2="{bottom}" stroke="#c00" stroke-width="1.5" stroke-dasharray="6 3"/>"##,
            TOP - 4.0
        );
        let ly = 62.0 + (k % 4) as f64 * 15.0;
        let text = fault_label(f);
        // Labels that would run off the right edge end at their line instead.
        let est = text.chars().count() as f64 * 6.3;
        let (tx, anchor) = if xx + est > W - 5.0 { (xx - 3.0, "end") } else { (xx + 3.0, "start") };
        let _ = writeln!(
            s,
            r##"<line x1="{xx:.1}" y1="{:.1}" x2="{xx:.1}" y2="{}" stroke="#c00" stroke-width="1" stroke-dasharray="2 2"/>"##,
            ly - 9.0,
            TOP - 4.0
        );
        let _ = writeln!(
            s,
            r##"<text x="{tx:.1}" y="{ly:.1}" text-anchor="{anchor}" fill="#c00" font-weight="bold">{}</text>"##,
            esc(&text)
        );
    }
}

/// `⚡ <label, at most 60 characters> (t=<s>s)`, unescaped.
fn fault_label(f: &PlacedFault) -> String {
    let mut label: String = f.label.chars().take(60).collect();
    if f.label.chars().count() > 60 {
        label.push('…');
    }
    format!("⚡ {} (t={:.1}s)", label, f.t_s)
}

/// One line of a panel's legend.
struct LegendItem {
    label: String,
    colour: &'static str,
    dashed: bool,
}

impl LegendItem {
    fn solid(label: &str, colour: &'static str) -> Self {
        LegendItem { label: label.to_string(), colour, dashed: false }
    }
}

/// A panel's legend, right of its plot.
fn draw_legend(s: &mut String, p: &Panel, items: &[LegendItem]) {
    let (x, y) = (LEGEND_X, p.y0 + 10.0);
    for (k, item) in items.iter().enumerate() {
        let yy = y + 15.0 * k as f64;
        let dash = if item.dashed { r#" stroke-dasharray="4 2""# } else { "" };
        let _ = writeln!(
            s,
            r#"<line x1="{x}" y1="{yy}" x2="{}" y2="{yy}" stroke="{}" stroke-width="3"{dash}/>"#,
            x + 18.0,
            item.colour
        );
        let _ = writeln!(s, r#"<text x="{}" y="{}">{}</text>"#, x + 23.0, yy + 4.0, esc(&item.label));
    }
}

fn fmt_num(v: f64) -> String {
    if v >= 1000.0 && v.fract() == 0.0 {
        format!("{}k", v / 1000.0)
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn nice_axis_maxima() {
        assert_eq!(nice_max(0.0), 1.0);
        assert_eq!(nice_max(7.0), 10.0);
        assert_eq!(nice_max(120.0), 200.0);
        assert_eq!(nice_max(450.0), 500.0);
        assert_eq!(nice_max(1000.0), 1000.0);
    }

    #[test]
    fn chart_has_panels_replicas_and_fault_markers() {
        let points: Vec<Point> = (0..20)
            .map(|i| Point {
                ok: 100 + i,
                errors: if i == 10 { [2, 1, 0, 0, 5, 1] } else { [0; 6] },
                p50_ms: 3.0,
                p99_ms: if i == 10 { 900.0 } else { 20.0 },
                replicas: vec![("shop-1".into(), 50), ("shop-2".into(), 50 + i)],
            })
            .collect();
        let faults = vec![PlacedFault {
            t_s: 10.2,
            label: "killed <shop-2>".into(),
            source: "mark".into(),
            detail: None,
        }];
        let svg = render("distshop run", "20 shoppers", &points, &faults);
        assert!(svg.starts_with("<svg"));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("served by shop-2"));
        assert!(svg.contains("killed &lt;shop-2&gt; (t=10.2s)"), "labels are escaped");
        assert_eq!(svg.matches("stroke-dasharray=\"6 3\"").count(), 1, "one fault line");
        assert!(!svg.contains("no errors"));
        assert!(!svg.contains("NaN"));
        let quiet = render("t", "s", &points[..3], &[]);
        assert!(quiet.contains("no errors"));
        let empty = render("t", "s", &[], &[]);
        assert!(!empty.contains("NaN"));
    }

    fn fault(t_s: f64, label: &str) -> PlacedFault {
        PlacedFault { t_s, label: label.into(), source: "mark".into(), detail: None }
    }

    fn latency(p50_ms: f64, p99_ms: f64) -> Point {
        Point { p50_ms, p99_ms, ..Point::default() }
    }

    #[test]
    fn replicas_are_listed_once_each_sorted() {
        let at = |names: &[&str]| Point {
            replicas: names.iter().map(|n| (n.to_string(), 1)).collect(),
            ..Point::default()
        };
        let points = [at(&["shop-2"]), at(&[]), at(&["shop-3", "shop-1", "shop-2"])];
        assert_eq!(replica_names(&points), ["shop-1", "shop-2", "shop-3"]);
    }

    #[test]
    fn time_ticks_stay_about_a_dozen() {
        let every = |n| TimeAxis::new(n).tick_every();
        assert_eq!(every(0), 1, "an empty run still has a one-second axis");
        assert_eq!(every(12), 1);
        assert_eq!(every(20), 2);
        assert_eq!(every(700), 60);
        assert_eq!(every(100_000), 1200);
        let axis = TimeAxis::new(20);
        assert_eq!((axis.x(0.0), axis.x(20.0)), (LEFT, LEFT + PLOT_W));
    }

    #[test]
    fn the_latency_scale_spans_whole_decades() {
        let scale = LogScale::for_points(&[latency(3.0, 20.0), latency(0.0, 0.0), latency(4.0, 900.0)]);
        assert_eq!(scale, LogScale { lo: 1.0, hi: 1000.0 });
        assert_eq!(LogScale::for_points(&[latency(5.0, 5.0)]), LogScale { lo: 1.0, hi: 10.0 });
        assert_eq!(LogScale::for_points(&[]), LogScale { lo: 0.1, hi: 1.0 }, "no latency at all");
        let bottom = LATENCY.y0 + PANEL_H;
        assert_eq!(scale.y(&LATENCY, 1.0), bottom);
        assert_eq!(scale.y(&LATENCY, 0.01), bottom, "below the scale sits on the bottom");
        assert_eq!(scale.y(&LATENCY, 1000.0), LATENCY.y0);
        assert_eq!(scale.y(&LATENCY, 100.0), LATENCY.y0 + PANEL_H / 3.0);
    }

    #[test]
    fn fault_labels_are_cut_at_60_characters() {
        assert_eq!(fault_label(&fault(3.25, "killed shop-2")), "⚡ killed shop-2 (t=3.2s)");
        let long = fault(1.0, &"é".repeat(61));
        assert_eq!(fault_label(&long), format!("⚡ {}… (t=1.0s)", "é".repeat(60)));
        assert_eq!(fault_label(&fault(1.0, &"x".repeat(60))), format!("⚡ {} (t=1.0s)", "x".repeat(60)));
    }

    #[test]
    fn only_faults_inside_the_run_are_drawn_and_labels_stay_on_the_page() {
        let mut s = String::new();
        let faults = [
            fault(-1.0, "before"),
            fault(5.0, "early"),
            fault(25.0, "after"),
            fault(19.9, "late: the replica came back"),
        ];
        draw_faults(&mut s, &TimeAxis::new(20), &faults);
        assert_eq!(s.matches(r#"stroke-dasharray="6 3""#).count(), 2, "{s}");
        assert!(!s.contains("before") && !s.contains("after"), "{s}");
        assert!(s.contains(r##"text-anchor="start" fill="#c00" font-weight="bold">⚡ early"##), "{s}");
        assert!(s.contains(r##"text-anchor="end" fill="#c00" font-weight="bold">⚡ late"##), "{s}");
    }
}
