//! The run's report: `summary.json`, `summary.md`, `timeline.csv`, `chart.svg`, and the summary
//! printed on the terminal.

use std::{collections::BTreeMap, fmt::Write as _, path::Path};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::{
    chart::{self, Point},
    faults::PlacedFault,
    findings::{Finding, Kind},
    metrics::{percentiles, EndpointStats, ErrorClass, Percentiles, Recorder},
};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EndpointSummary {
    pub endpoint: String,
    pub count: u64,
    pub ok: u64,
    pub errors: BTreeMap<String, u64>,
    pub statuses: BTreeMap<String, u64>,
    pub latency: Percentiles,
}

fn class_map(c: &[u64; 6]) -> BTreeMap<String, u64> {
    ErrorClass::ALL.iter().map(|k| (k.name().to_string(), c[k.index()])).collect()
}

pub fn endpoint_summaries(m: &BTreeMap<&'static str, EndpointStats>) -> Vec<EndpointSummary> {
    m.iter()
        .map(|(ep, s)| EndpointSummary {
            endpoint: ep.to_string(),
            count: s.count,
            ok: s.ok,
            errors: class_map(&s.errors),
            statuses: s.statuses.clone(),
            latency: percentiles(&s.hist),
        })
        .collect()
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FaultCommandResult {
    pub at_s: f64,
    pub command: String,
    pub label: String,
    pub exit_code: Option<i32>,
    pub output_tail: String,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Verification {
    pub accounts_verified: u64,
    pub accounts_skipped: u64,
    /// Accounts whose journey was still running when the load had to be cut (not verified).
    pub accounts_lost: u64,
    pub elapsed_s: f64,
    pub endpoints: Vec<EndpointSummary>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Verdict {
    pub pass: bool,
    pub fail_on: Vec<String>,
    pub failed: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Summary {
    pub tool: String,
    pub version: String,
    pub run_id: String,
    pub command: String,
    pub started_at_unix_ms: u64,
    pub base_urls: Vec<String>,
    pub load_model: String,
    pub configured_duration_s: f64,
    pub elapsed_s: f64,
    pub stop_reason: String,
    pub requests: u64,
    pub ok: u64,
    pub throughput_rps: f64,
    pub errors: BTreeMap<String, u64>,
    pub latency: Percentiles,
    pub endpoints: Vec<EndpointSummary>,
    pub replicas: BTreeMap<String, u64>,
    /// Counts by kind (every kind present, 0 when none): what `check` requires to be 0.
    pub violations: BTreeMap<String, u64>,
    pub findings: Vec<Finding>,
    pub ambiguous: BTreeMap<String, u64>,
    pub unresolved: BTreeMap<String, u64>,
    pub counters: BTreeMap<String, u64>,
    pub accounts_created: u64,
    pub orders_acknowledged: u64,
    pub cancels_logged: u64,
    pub verification: Verification,
    pub faults: Vec<PlacedFault>,
    pub fault_errors: Vec<String>,
    pub fault_commands: Vec<FaultCommandResult>,
    pub verdict: Verdict,
}

impl Summary {
    pub fn violation_count(&self, k: Kind) -> u64 {
        self.violations.get(k.name()).copied().unwrap_or(0)
    }
}

pub fn violation_map(counts: &BTreeMap<Kind, u64>) -> BTreeMap<String, u64> {
    Kind::ALL.iter().map(|k| (k.name().to_string(), counts.get(k).copied().unwrap_or(0))).collect()
}

pub fn chart_points(rec: &Recorder) -> Vec<Point> {
    rec.seconds
        .iter()
        .map(|s| {
            let p = percentiles(&s.hist);
            Point {
                ok: s.ok,
                errors: s.errors,
                p50_ms: p.p50_ms,
                p99_ms: p.p99_ms,
                replicas: s.replicas.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            }
        })
        .collect()
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

pub fn timeline_csv(rec: &Recorder, faults: &[PlacedFault]) -> String {
    let mut replicas: Vec<&String> = rec.seconds.iter().flat_map(|s| s.replicas.keys()).collect();
    replicas.sort();
    replicas.dedup();
    let mut out = String::from(
        "second,requests,ok,err_network,err_timeout,err_4xx_expected,err_4xx_unexpected,err_5xx,content_violations,p50_ms,p90_ms,p99_ms,max_ms,active_shoppers",
    );
    for r in &replicas {
        out.push(',');
        out.push_str(&csv_field(&format!("replica:{r}")));
    }
    out.push_str(",faults\n");
    for (i, s) in rec.seconds.iter().enumerate() {
        let p = percentiles(&s.hist);
        let e = |c: ErrorClass| s.errors[c.index()];
        let _ = write!(
            out,
            "{i},{},{},{},{},{},{},{},{},{:.2},{:.2},{:.2},{:.2},{}",
            s.requests(),
            s.ok,
            e(ErrorClass::Network),
            e(ErrorClass::Timeout),
            e(ErrorClass::Expected4xx),
            e(ErrorClass::Unexpected4xx),
            e(ErrorClass::Server5xx),
            e(ErrorClass::ContentViolation),
            p.p50_ms,
            p.p90_ms,
            p.p99_ms,
            p.max_ms,
            s.active_shoppers
        );
        for r in &replicas {
            let _ = write!(out, ",{}", s.replicas.get(*r).copied().unwrap_or(0));
        }
        let here: Vec<&str> = faults
            .iter()
            .filter(|f| f.t_s >= i as f64 && f.t_s < (i + 1) as f64)
            .map(|f| f.label.as_str())
            .collect();
        let _ = writeln!(out, ",{}", csv_field(&here.join("; ")));
    }
    out
}

fn ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn err(m: &BTreeMap<String, u64>, c: ErrorClass) -> u64 {
    m.get(c.name()).copied().unwrap_or(0)
}

/// The per-endpoint table, as aligned text.
pub fn endpoint_table(eps: &[EndpointSummary]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<36} {:>7} {:>7} {:>5} {:>5} {:>6} {:>6} {:>5} {:>5} {:>8} {:>8} {:>8} {:>8}",
        "endpoint",
        "count",
        "ok",
        "net",
        "tmo",
        "4xx-ex",
        "4xx-un",
        "5xx",
        "viol",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "p99.9 ms"
    );
    for e in eps {
        let _ = writeln!(
            out,
            "{:<36} {:>7} {:>7} {:>5} {:>5} {:>6} {:>6} {:>5} {:>5} {:>8} {:>8} {:>8} {:>8}",
            e.endpoint,
            e.count,
            e.ok,
            err(&e.errors, ErrorClass::Network),
            err(&e.errors, ErrorClass::Timeout),
            err(&e.errors, ErrorClass::Expected4xx),
            err(&e.errors, ErrorClass::Unexpected4xx),
            err(&e.errors, ErrorClass::Server5xx),
            err(&e.errors, ErrorClass::ContentViolation),
            ms(e.latency.p50_ms),
            ms(e.latency.p90_ms),
            ms(e.latency.p99_ms),
            ms(e.latency.p999_ms),
        );
    }
    out
}

fn verdict_line(s: &Summary) -> String {
    if s.verdict.pass {
        format!("PASS — nothing lost (fail-on: {})", s.verdict.fail_on.join(", "))
    } else {
        let parts: Vec<String> = s.verdict.failed.iter().map(|(k, n)| format!("{n} {k}")).collect();
        format!("FAIL — {}", parts.join(", "))
    }
}

/// What the terminal shows at the end.
pub fn terminal(s: &Summary, report_dir: &Path) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "\n=== distshop-sim {} — {} ===", s.run_id, s.load_model);
    let _ = writeln!(
        out,
        "{} requests in {:.1}s ({:.0} req/s), stopped by {}; {} ok; latency p50 {} ms, p99 {} ms, p99.9 {} ms, max {} ms",
        s.requests,
        s.elapsed_s,
        s.throughput_rps,
        s.stop_reason,
        s.ok,
        ms(s.latency.p50_ms),
        ms(s.latency.p99_ms),
        ms(s.latency.p999_ms),
        ms(s.latency.max_ms)
    );
    let errs: Vec<String> =
        s.errors.iter().filter(|(_, n)| **n > 0).map(|(k, n)| format!("{k} {n}")).collect();
    let _ =
        writeln!(out, "errors by class: {}", if errs.is_empty() { "none".into() } else { errs.join(", ") });
    let reps: Vec<String> = s.replicas.iter().map(|(k, n)| format!("{k} {n}")).collect();
    let _ = writeln!(out, "served by: {}", reps.join(", "));
    out.push('\n');
    out.push_str(&endpoint_table(&s.endpoints));
    out.push('\n');
    let c = |k: &str| s.counters.get(k).copied().unwrap_or(0);
    let _ = writeln!(
        out,
        "journeys {}, accounts {} (registrations {}, logins {}, logouts {}), orders acknowledged {}, cancels {}, checkouts refused for stock {}",
        c("journeys"),
        s.accounts_created,
        c("registrations"),
        c("logins"),
        c("logouts"),
        s.orders_acknowledged,
        c("cancels"),
        c("checkouts_refused_stock")
    );
    let amb: Vec<String> = s.ambiguous.iter().map(|(k, n)| format!("{k} {n}")).collect();
    let unr: Vec<String> = s.unresolved.iter().map(|(k, n)| format!("{k} {n}")).collect();
    let _ = writeln!(
        out,
        "ambiguous outcomes resolved: {}; unresolved: {}",
        if amb.is_empty() { "none".into() } else { amb.join(", ") },
        if unr.is_empty() { "none".into() } else { unr.join(", ") }
    );
    let _ = writeln!(
        out,
        "final verification: {} accounts re-checked in {:.1}s ({} skipped, {} cut off)",
        s.verification.accounts_verified,
        s.verification.elapsed_s,
        s.verification.accounts_skipped,
        s.verification.accounts_lost
    );
    let v: Vec<String> = s.violations.iter().map(|(k, n)| format!("{k} {n}")).collect();
    let _ = writeln!(out, "violations: {}", v.join(", "));
    for f in s.findings.iter().take(20) {
        let _ = writeln!(
            out,
            "  - [{}] t={:.1}s shopper #{} {} {} (served by {}, request {}): {}",
            f.kind.name(),
            f.t_s,
            f.shopper,
            f.email,
            f.endpoint,
            f.served_by.as_deref().unwrap_or("?"),
            f.request_id.as_deref().unwrap_or("?"),
            f.detail
        );
    }
    if s.findings.len() > 20 {
        let _ = writeln!(out, "  … {} more in summary.json", s.findings.len() - 20);
    }
    for f in &s.faults {
        let _ = writeln!(out, "fault at t={:.1}s: {} ({})", f.t_s, f.label, f.source);
    }
    let _ = writeln!(out, "report: {}", report_dir.display());
    let _ = writeln!(out, "verdict: {}", verdict_line(s));
    out
}

pub fn markdown(s: &Summary) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# distshop-sim run {}\n", s.run_id);
    let _ = writeln!(out, "**Verdict: {}**\n", verdict_line(s));
    let _ = writeln!(out, "```\n{}\n```\n", s.command);
    markdown_table(&mut out, s);
    let _ = writeln!(out, "\n![chart](chart.svg)\n");
    let _ = writeln!(out, "## Per endpoint (load phase)\n\n```\n{}```\n", endpoint_table(&s.endpoints));
    if !s.verification.endpoints.is_empty() {
        let _ = writeln!(
            out,
            "## Final verification requests\n\n```\n{}```\n",
            endpoint_table(&s.verification.endpoints)
        );
    }
    markdown_findings(&mut out, s);
    markdown_faults(&mut out, s);
    let _ = writeln!(out, "\n## Counters\n");
    for (k, n) in &s.counters {
        let _ = writeln!(out, "- {k}: {n}");
    }
    let _ = writeln!(
        out,
        "\nFiles: `timeline.csv` (per second), `chart.svg`, `summary.json`, `acknowledged.jsonl` (input of \
         `distshop-sim check`), `initial-stock.json` (stock via the API at the start), `faults.jsonl`."
    );
    out
}

/// The run at a glance: target, model, duration, requests, latency, errors, orders, verdict parts.
fn markdown_table(out: &mut String, s: &Summary) {
    let _ = writeln!(out, "| | |\n|---|---|");
    let _ = writeln!(out, "| target | {} |", s.base_urls.join(", "));
    let _ = writeln!(out, "| load model | {} |", s.load_model);
    let _ = writeln!(
        out,
        "| duration | {:.1} s (configured {:.0} s), stopped by {} |",
        s.elapsed_s, s.configured_duration_s, s.stop_reason
    );
    let _ = writeln!(out, "| requests | {} ({:.0} req/s), {} ok |", s.requests, s.throughput_rps, s.ok);
    let _ = writeln!(
        out,
        "| latency | p50 {} ms, p90 {} ms, p99 {} ms, p99.9 {} ms, max {} ms |",
        ms(s.latency.p50_ms),
        ms(s.latency.p90_ms),
        ms(s.latency.p99_ms),
        ms(s.latency.p999_ms),
        ms(s.latency.max_ms)
    );
    let errs: Vec<String> = s.errors.iter().map(|(k, n)| format!("{k} {n}")).collect();
    let _ = writeln!(out, "| errors by class | {} |", errs.join(", "));
    let reps: Vec<String> = s.replicas.iter().map(|(k, n)| format!("{k} {n}")).collect();
    let _ = writeln!(out, "| served by | {} |", reps.join(", "));
    let _ = writeln!(out, "| accounts | {} created |", s.accounts_created);
    let _ = writeln!(
        out,
        "| orders acknowledged | {} (cancels logged: {}) |",
        s.orders_acknowledged, s.cancels_logged
    );
    let v: Vec<String> = s.violations.iter().map(|(k, n)| format!("{k} {n}")).collect();
    let _ = writeln!(out, "| violations | {} |", v.join(", "));
    let amb: Vec<String> = s.ambiguous.iter().map(|(k, n)| format!("{k} {n}")).collect();
    let _ = writeln!(
        out,
        "| ambiguous, resolved | {} |",
        if amb.is_empty() { "none".into() } else { amb.join(", ") }
    );
    let unr: Vec<String> = s.unresolved.iter().map(|(k, n)| format!("{k} {n}")).collect();
    let _ = writeln!(out, "| unresolved | {} |", if unr.is_empty() { "none".into() } else { unr.join(", ") });
    let _ = writeln!(
        out,
        "| final verification | {} accounts in {:.1} s ({} skipped, {} cut off) |",
        s.verification.accounts_verified,
        s.verification.elapsed_s,
        s.verification.accounts_skipped,
        s.verification.accounts_lost
    );
}

/// Every finding (the first 100), or the sentence saying there was none.
fn markdown_findings(out: &mut String, s: &Summary) {
    let _ = writeln!(out, "## Findings\n");
    if s.findings.is_empty() {
        let _ =
            writeln!(out, "None: every cart, session and order the shoppers checked was as acknowledged.\n");
    }
    for f in s.findings.iter().take(100) {
        let _ = writeln!(
            out,
            "- **{}** t={:.1}s shopper #{} `{}` `{}` served by `{}` (request `{}`): {}",
            f.kind.name(),
            f.t_s,
            f.shopper,
            f.email,
            f.endpoint,
            f.served_by.as_deref().unwrap_or("?"),
            f.request_id.as_deref().unwrap_or("?"),
            f.detail
        );
    }
}

/// The faults on the timeline and the fault commands' outcomes, when there were any.
fn markdown_faults(out: &mut String, s: &Summary) {
    if !s.faults.is_empty() || !s.fault_commands.is_empty() {
        let _ = writeln!(out, "\n## Faults\n");
        for f in &s.faults {
            let _ = writeln!(out, "- t={:.1}s **{}** ({})", f.t_s, f.label, f.source);
        }
        for c in &s.fault_commands {
            let _ = writeln!(
                out,
                "- command at {:.1}s `{}`: exit {:?}{}",
                c.at_s,
                c.command,
                c.exit_code,
                c.error.as_ref().map(|e| format!(", error: {e}")).unwrap_or_default()
            );
        }
    }
}

pub fn write_all(dir: &Path, s: &Summary, rec: &Recorder) -> anyhow::Result<()> {
    let w = |name: &str, text: &str| {
        std::fs::write(dir.join(name), text).with_context(|| format!("writing {}", dir.join(name).display()))
    };
    w("summary.json", &serde_json::to_string_pretty(s)?)?;
    w("summary.md", &markdown(s))?;
    w("timeline.csv", &timeline_csv(rec, &s.faults))?;
    let subtitle = format!(
        "{} · {} · {} requests, {:.0} req/s · violations: {}",
        s.base_urls.join(" "),
        s.load_model,
        s.requests,
        s.throughput_rps,
        s.violations.values().sum::<u64>()
    );
    w(
        "chart.svg",
        &chart::render(
            &format!("distshop-sim {} — {}", s.run_id, verdict_line(s)),
            &subtitle,
            &chart_points(rec),
            &s.faults,
        ),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::time::{Duration, Instant};

    use super::*;
    use crate::metrics::{Phase, Sample};

    #[test]
    fn timeline_has_a_row_per_second_replica_columns_and_faults() {
        let t0 = Instant::now();
        let mut r = Recorder::new(t0);
        for (ms, rep, class) in [(100, "a", None), (1200, "b", Some(ErrorClass::Timeout)), (1300, "a", None)]
        {
            r.record(
                Phase::Load,
                &Sample {
                    endpoint: "GET /api/cart",
                    status: if class.is_some() { None } else { Some(200) },
                    latency: Duration::from_millis(5),
                    served_by: Some(rep.into()),
                    class,
                    finished: t0 + Duration::from_millis(ms),
                },
            );
        }
        let faults = vec![PlacedFault {
            t_s: 1.5,
            label: "killed a, then b".into(),
            source: "t".into(),
            detail: None,
        }];
        let csv = timeline_csv(&r, &faults);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].ends_with(",replica:a,faults"), "{}", lines[0]);
        assert!(lines[1].starts_with("0,1,1,0,0,"), "{}", lines[1]);
        assert!(lines[2].starts_with("1,2,1,0,1,"), "{}", lines[2]);
        assert!(lines[2].ends_with(",1,\"killed a, then b\""), "{}", lines[2]);
        let cols = lines[0].split(',').count();
        assert_eq!(lines[1].split(',').count(), cols);
    }

    #[test]
    fn verdict_and_tables_render() {
        let mut s = Summary { run_id: "x".into(), ..Summary::default() };
        s.verdict = Verdict {
            pass: false,
            fail_on: vec!["lost-session".into()],
            failed: BTreeMap::from([("lost-session".into(), 3)]),
        };
        assert_eq!(verdict_line(&s), "FAIL — 3 lost-session");
        let md = markdown(&s);
        assert!(md.contains("**Verdict: FAIL — 3 lost-session**"));
        s.verdict.pass = true;
        assert!(verdict_line(&s).starts_with("PASS"));
    }
}
