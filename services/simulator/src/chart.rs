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

const REPLICA_COLOURS: [&str; 8] =
    ["#1f77b4", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"];

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

struct Panel {
    y0: f64,
    title: &'static str,
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

pub fn render(title: &str, subtitle: &str, points: &[Point], faults: &[PlacedFault]) -> String {
    let n = points.len().max(1);
    let plot_w = W - LEFT - RIGHT;
    let height = TOP + 3.0 * PANEL_H + 2.0 * GAP + 60.0;
    let x = |i: f64| LEFT + plot_w * (i / n as f64);
    let panels = [
        Panel { y0: TOP, title: "throughput (requests/s)" },
        Panel { y0: TOP + PANEL_H + GAP, title: "errors (/s, by class; 4xx-expected not included)" },
        Panel { y0: TOP + 2.0 * (PANEL_H + GAP), title: "latency (ms, log scale)" },
    ];
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{height}" viewBox="0 0 {W} {height}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(s, r#"<text x="{LEFT}" y="22" font-size="15" font-weight="bold">{}</text>"#, esc(title));
    let _ = writeln!(s, r##"<text x="{LEFT}" y="40" fill="#555">{}</text>"##, esc(subtitle));

    // Frames, titles, time ticks.
    let tick_every =
        [1usize, 2, 5, 10, 15, 30, 60, 120, 300, 600].into_iter().find(|t| n / t <= 12).unwrap_or(1200);
    for p in &panels {
        let _ = writeln!(
            s,
            r##"<rect x="{LEFT}" y="{}" width="{plot_w}" height="{PANEL_H}" fill="#fafafa" stroke="#999"/>"##,
            p.y0
        );
        let _ = writeln!(s, r#"<text x="{LEFT}" y="{}" font-weight="bold">{}</text>"#, p.y0 - 6.0, p.title);
        let mut t = 0;
        while t <= n {
            let xx = x(t as f64);
            let _ = writeln!(
                s,
                r##"<line x1="{xx:.1}" y1="{}" x2="{xx:.1}" y2="{}" stroke="#e4e4e4"/>"##,
                p.y0,
                p.y0 + PANEL_H
            );
            let _ = writeln!(
                s,
                r##"<text x="{xx:.1}" y="{}" text-anchor="middle" fill="#555">{t}s</text>"##,
                p.y0 + PANEL_H + 13.0
            );
            t += tick_every;
        }
    }

    let y_lin = |p: &Panel, v: f64, max: f64| p.y0 + PANEL_H - PANEL_H * (v / max).clamp(0.0, 1.0);
    let y_ticks = |s: &mut String, p: &Panel, max: f64| {
        for k in 0..=4 {
            let v = max * k as f64 / 4.0;
            let yy = y_lin(p, v, max);
            let _ = writeln!(
                s,
                r##"<line x1="{LEFT}" y1="{yy:.1}" x2="{}" y2="{yy:.1}" stroke="#eee"/>"##,
                LEFT + plot_w
            );
            let _ = writeln!(
                s,
                r##"<text x="{}" y="{:.1}" text-anchor="end" fill="#555">{}</text>"##,
                LEFT - 5.0,
                yy + 4.0,
                fmt_num(v)
            );
        }
    };
    let mid = |i: usize| x(i as f64 + 0.5);

    // Panel 1: throughput, total and per replica.
    let p = &panels[0];
    let totals: Vec<f64> =
        points.iter().map(|pt| (pt.ok + pt.errors.iter().sum::<u64>() - pt.errors[5]) as f64).collect();
    let max = nice_max(totals.iter().cloned().fold(0.0, f64::max));
    y_ticks(&mut s, p, max);
    let mut replica_names: Vec<String> = Vec::new();
    for pt in points {
        for (r, _) in &pt.replicas {
            if !replica_names.contains(r) {
                replica_names.push(r.clone());
            }
        }
    }
    replica_names.sort();
    let mut legend: Vec<(String, String, bool)> =
        vec![("all requests".into(), "#999999".into(), false), ("ok".into(), "#2ca02c".into(), false)];
    for (ri, name) in replica_names.iter().enumerate() {
        let colour = REPLICA_COLOURS[ri % REPLICA_COLOURS.len()];
        let pts: Vec<(f64, f64)> = points
            .iter()
            .enumerate()
            .map(|(i, pt)| {
                let v = pt.replicas.iter().find(|(r, _)| r == name).map(|(_, c)| *c).unwrap_or(0);
                (mid(i), y_lin(p, v as f64, max))
            })
            .collect();
        polyline(&mut s, &pts, colour, 1.2, Some("4 2"));
        legend.push((format!("served by {name}"), colour.into(), true));
    }
    let pts: Vec<(f64, f64)> = totals.iter().enumerate().map(|(i, v)| (mid(i), y_lin(p, *v, max))).collect();
    polyline(&mut s, &pts, "#999999", 1.5, None);
    let pts: Vec<(f64, f64)> =
        points.iter().enumerate().map(|(i, pt)| (mid(i), y_lin(p, pt.ok as f64, max))).collect();
    polyline(&mut s, &pts, "#2ca02c", 2.0, None);
    draw_legend(&mut s, LEFT + plot_w + 10.0, p.y0 + 10.0, &legend);

    // Panel 2: errors, stacked bars by class.
    let p = &panels[1];
    let classes = [
        (ErrorClass::Network, "#d62728"),
        (ErrorClass::Timeout, "#ff9896"),
        (ErrorClass::Server5xx, "#9467bd"),
        (ErrorClass::Unexpected4xx, "#ff7f0e"),
        (ErrorClass::ContentViolation, "#000000"),
    ];
    let err_tot: Vec<u64> =
        points.iter().map(|pt| classes.iter().map(|(c, _)| pt.errors[c.index()]).sum()).collect();
    let max = nice_max(err_tot.iter().copied().max().unwrap_or(0) as f64);
    y_ticks(&mut s, p, max);
    let bw = (plot_w / n as f64 * 0.8).max(0.5);
    for (i, pt) in points.iter().enumerate() {
        let mut acc = 0.0;
        for (c, colour) in classes {
            let v = pt.errors[c.index()] as f64;
            if v <= 0.0 {
                continue;
            }
            let y_top = y_lin(p, acc + v, max);
            let y_bot = y_lin(p, acc, max);
            let _ = writeln!(
                s,
                r#"<rect x="{:.1}" y="{y_top:.1}" width="{bw:.1}" height="{:.1}" fill="{colour}"/>"#,
                x(i as f64) + (plot_w / n as f64 - bw) / 2.0,
                (y_bot - y_top).max(0.5)
            );
            acc += v;
        }
    }
    let legend: Vec<(String, String, bool)> =
        classes.iter().map(|(c, col)| (c.name().to_string(), col.to_string(), false)).collect();
    draw_legend(&mut s, LEFT + plot_w + 10.0, p.y0 + 10.0, &legend);
    let total_errors: u64 = err_tot.iter().sum();
    if total_errors == 0 {
        let _ = writeln!(
            s,
            r##"<text x="{}" y="{}" text-anchor="middle" fill="#2ca02c" font-size="14">no errors</text>"##,
            LEFT + plot_w / 2.0,
            p.y0 + PANEL_H / 2.0
        );
    }

    // Panel 3: latency, log scale.
    let p = &panels[2];
    let max_ms = points.iter().map(|pt| pt.p99_ms).fold(1.0, f64::max);
    let min_ms = points.iter().map(|pt| pt.p50_ms).filter(|v| *v > 0.0).fold(f64::INFINITY, f64::min);
    let lo = if min_ms.is_finite() { 10f64.powf(min_ms.log10().floor()) } else { 0.1 };
    let hi = 10f64.powf(max_ms.log10().ceil()).max(lo * 10.0);
    let y_log = |v: f64| {
        let v = v.max(lo);
        p.y0 + PANEL_H - PANEL_H * ((v.log10() - lo.log10()) / (hi.log10() - lo.log10())).clamp(0.0, 1.0)
    };
    let mut dec = lo;
    while dec <= hi * 1.0001 {
        let yy = y_log(dec);
        let _ = writeln!(
            s,
            r##"<line x1="{LEFT}" y1="{yy:.1}" x2="{}" y2="{yy:.1}" stroke="#eee"/>"##,
            LEFT + plot_w
        );
        let _ = writeln!(
            s,
            r##"<text x="{}" y="{:.1}" text-anchor="end" fill="#555">{}</text>"##,
            LEFT - 5.0,
            yy + 4.0,
            fmt_num(dec)
        );
        dec *= 10.0;
    }
    for (get, colour) in [
        (Box::new(|pt: &Point| pt.p50_ms) as Box<dyn Fn(&Point) -> f64>, "#1f77b4"),
        (Box::new(|pt: &Point| pt.p99_ms), "#d62728"),
    ] {
        let pts: Vec<(f64, f64)> = points
            .iter()
            .enumerate()
            .filter(|(_, pt)| get(pt) > 0.0)
            .map(|(i, pt)| (mid(i), y_log(get(pt))))
            .collect();
        polyline(&mut s, &pts, colour, 1.8, None);
    }
    draw_legend(
        &mut s,
        LEFT + plot_w + 10.0,
        p.y0 + 10.0,
        &[("p50".into(), "#1f77b4".into(), false), ("p99".into(), "#d62728".into(), false)],
    );

    // Faults: a dashed line through all panels, label on top.
    let bottom = panels[2].y0 + PANEL_H;
    for (k, f) in faults.iter().enumerate() {
        if f.t_s < 0.0 || f.t_s > n as f64 {
            continue;
        }
        let xx = x(f.t_s);
        let _ = writeln!(
            s,
            r##"<line x1="{xx:.1}" y1="{}" x2="{xx:.1}" y2="{bottom}" stroke="#c00" stroke-width="1.5" stroke-dasharray="6 3"/>"##,
            TOP - 4.0
        );
        // Labels in a band above the first panel, stacked so neighbours do not overlap.
        let ly = 62.0 + (k % 4) as f64 * 15.0;
        let mut label: String = f.label.chars().take(60).collect();
        if f.label.chars().count() > 60 {
            label.push('…');
        }
        let text = format!("⚡ {} (t={:.1}s)", label, f.t_s);
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
    let _ = writeln!(
        s,
        r##"<text x="{}" y="{}" text-anchor="middle" fill="#555">seconds since start</text>"##,
        LEFT + plot_w / 2.0,
        bottom + 32.0
    );
    s.push_str("</svg>\n");
    s
}

fn draw_legend(s: &mut String, x: f64, y: f64, items: &[(String, String, bool)]) {
    for (k, (label, colour, dashed)) in items.iter().enumerate() {
        let yy = y + 15.0 * k as f64;
        let dash = if *dashed { r#" stroke-dasharray="4 2""# } else { "" };
        let _ = writeln!(
            s,
            r#"<line x1="{x}" y1="{yy}" x2="{}" y2="{yy}" stroke="{colour}" stroke-width="3"{dash}/>"#,
            x + 18.0
        );
        let _ = writeln!(s, r#"<text x="{}" y="{}">{}</text>"#, x + 23.0, yy + 4.0, esc(label));
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
}
