//! A whole run: snapshot, load (closed or open model), live progress, fault markers, the final
//! verification of every account, and the report.

use std::{
    io::{IsTerminal, Write},
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, AtomicU32, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use anyhow::Context;
use rand::{rngs::StdRng, Rng, SeedableRng};
use tokio::{sync::Semaphore, task::JoinSet};

use crate::{
    config::{Arrivals, FaultCommand, Profile, RunArgs},
    faults::{self, FaultEvent, PlacedFault, Tail},
    findings::{verdict, FailOn},
    http::Http,
    metrics::{percentiles, Phase},
    report::{self, FaultCommandResult, Summary, Verdict, Verification},
    shopper::Shopper,
    snapshot,
    state::{lock, AckLog, Shared, StopReason},
};

#[derive(Debug, Clone, PartialEq)]
pub enum LoadModel {
    /// N shoppers; each starts its next journey when the last one ends.
    Closed { shoppers: usize },
    /// Journeys start at `rate` per second whatever the shop's speed.
    Open { rate: f64, arrivals: Arrivals, max_in_flight: usize },
}

impl LoadModel {
    pub fn describe(&self) -> String {
        match self {
            LoadModel::Closed { shoppers } => format!("closed model, {shoppers} shoppers"),
            LoadModel::Open { rate, arrivals, max_in_flight } => format!(
                "open model, {rate} journeys/s ({} arrivals, at most {max_in_flight} in flight)",
                match arrivals {
                    Arrivals::Uniform => "uniform",
                    Arrivals::Poisson => "poisson",
                }
            ),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    Off,
    /// Rewritten line on a terminal, plain lines otherwise.
    Auto,
}

#[derive(Debug, Clone)]
pub struct RunConfig {
    pub base_urls: Vec<String>,
    pub model: LoadModel,
    pub duration: Duration,
    pub max_requests: u64,
    pub timeout: Duration,
    pub profile: Profile,
    pub report_dir: PathBuf,
    pub extra_faults_file: Option<PathBuf>,
    pub fault_commands: Vec<FaultCommand>,
    pub fail_on: Vec<FailOn>,
    pub seed: u64,
    pub database_url: Option<String>,
    pub verify: bool,
    pub verify_limit: usize,
    pub progress: Progress,
    pub handle_ctrl_c: bool,
    pub command_line: String,
}

/// `reports/<UTC timestamp>` — and whether it is the default location (then `reports/latest`
/// is pointed at it).
pub fn default_report_dir() -> PathBuf {
    let secs = faults::unix_ms_now() / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    PathBuf::from("reports").join(format!(
        "{y:04}{m:02}{d:02}-{:02}{:02}{:02}",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    ))
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

impl RunConfig {
    pub fn from_args(a: &RunArgs, command_line: String) -> anyhow::Result<Self> {
        let base_urls =
            crate::config::check_base_urls(&a.base_urls, a.allow_remote).map_err(anyhow::Error::msg)?;
        let mut profile = match &a.profile {
            Some(p) => {
                let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
                serde_json::from_str::<Profile>(&text).with_context(|| format!("profile {}", p.display()))?
            }
            None => Profile::default(),
        };
        if let Some(t) = a.think_ms {
            profile.think_ms = t;
        }
        profile.validate().map_err(anyhow::Error::msg)?;
        let model = match (a.rate, a.shoppers) {
            (Some(r), _) => {
                if !(r > 0.0 && r.is_finite()) {
                    anyhow::bail!("--rate must be a positive number of journeys per second");
                }
                LoadModel::Open { rate: r, arrivals: a.arrivals, max_in_flight: a.max_in_flight.max(1) }
            }
            (None, s) => LoadModel::Closed { shoppers: s.unwrap_or(10).max(1) },
        };
        if let Some(u) = &a.database_url {
            crate::config::check_database_url(u, a.allow_remote).map_err(anyhow::Error::msg)?;
        }
        Ok(RunConfig {
            base_urls,
            model,
            duration: a.duration,
            max_requests: a.max_requests.max(1),
            timeout: a.timeout.max(Duration::from_millis(100)),
            profile,
            report_dir: a.report.clone().unwrap_or_else(default_report_dir),
            extra_faults_file: a.faults.clone(),
            fault_commands: a.fault_commands.clone(),
            fail_on: a.fail_on.0.clone(),
            seed: a.seed.unwrap_or_else(|| rand::thread_rng().gen()),
            database_url: a.database_url.clone(),
            verify: !a.no_verify,
            verify_limit: a.verify_limit,
            progress: if a.quiet { Progress::Off } else { Progress::Auto },
            handle_ctrl_c: true,
            command_line,
        })
    }
}

pub struct RunOutcome {
    pub summary: Summary,
    pub report_dir: PathBuf,
}

impl RunOutcome {
    pub fn passed(&self) -> bool {
        self.summary.verdict.pass
    }
}

/// Point `reports/latest` at the run's folder (best effort; lets `distshop-sim mark` find it).
fn link_latest(dir: &Path) {
    #[cfg(unix)]
    {
        let (Some(parent), Some(name)) = (dir.parent(), dir.file_name()) else { return };
        let link = parent.join("latest");
        let _ = std::fs::remove_file(&link);
        let _ = std::os::unix::fs::symlink(name, &link);
    }
}

async fn run_fault_command(
    sh: Arc<Shared>,
    fc: FaultCommand,
    faults_file: PathBuf,
) -> Option<FaultCommandResult> {
    let due = sh.start + fc.at;
    let mut rx = sh.stop_signal();
    tokio::select! {
        _ = tokio::time::sleep_until(due.into()) => {}
        _ = rx.wait_for(|s| *s) => return None,
    }
    let label = fc.label.clone().unwrap_or_else(|| fc.command.clone());
    let ev = FaultEvent {
        t_unix_ms: faults::unix_ms_now(),
        label: label.clone(),
        source: "fault-command".into(),
        detail: None,
    };
    let mut result = FaultCommandResult {
        at_s: sh.t_s(Instant::now()),
        command: fc.command.clone(),
        label,
        exit_code: None,
        output_tail: String::new(),
        error: None,
    };
    if let Err(e) = faults::append(&faults_file, &ev) {
        result.error = Some(format!("marking the fault: {e}"));
    }
    let out = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::process::Command::new("sh").arg("-c").arg(&fc.command).kill_on_drop(true).output(),
    )
    .await;
    match out {
        Err(_) => result.error = Some("timed out after 120 s".into()),
        Ok(Err(e)) => result.error = Some(format!("could not run: {e}")),
        Ok(Ok(o)) => {
            result.exit_code = o.status.code();
            let mut text = String::from_utf8_lossy(&o.stdout).to_string();
            text.push_str(&String::from_utf8_lossy(&o.stderr));
            let tail: String = text.chars().rev().take(500).collect::<Vec<_>>().into_iter().rev().collect();
            result.output_tail = tail;
        }
    }
    sh.event(format!("fault command `{}` exited {:?}", fc.command, result.exit_code));
    Some(result)
}

/// The line printed each second.
fn progress_line(sh: &Shared, second: usize) -> String {
    let rec = lock(&sh.recorder);
    let findings = lock(&sh.findings);
    let (rps, errs, p99, reps) = match rec.seconds.get(second) {
        Some(s) => {
            let p = percentiles(&s.hist);
            let reps: Vec<String> = s.replicas.iter().map(|(k, v)| format!("{k}:{v}")).collect();
            (s.requests(), s.error_total(), p.p99_ms, reps.join(" "))
        }
        None => (0, 0, 0.0, String::new()),
    };
    let total_err: u64 = crate::metrics::ErrorClass::ALL
        .iter()
        .filter(|c| c.is_error() && **c != crate::metrics::ErrorClass::ContentViolation)
        .map(|c| rec.totals[c.index()])
        .sum();
    format!(
        "[{:>4}s] {:>5} req/s  err/s {:<4} p99 {:>7.1} ms | total {} req, {} err, {} orders, violations {} (lost sessions {}) | shoppers {} | {}",
        second + 1,
        rps,
        errs,
        p99,
        rec.requests(),
        total_err,
        findings.counter("orders_acknowledged"),
        findings.total(),
        findings.count(crate::findings::Kind::LostSession),
        sh.active.load(Ordering::Relaxed),
        if reps.is_empty() { "no replica answered".into() } else { reps }
    )
}

async fn progress_task(sh: Arc<Shared>, mode: Progress, tails: Vec<PathBuf>, done: Arc<AtomicBool>) {
    let tty = std::io::stdout().is_terminal();
    let mut tails: Vec<Tail> = tails.into_iter().map(Tail::new).collect();
    let mut tick =
        tokio::time::interval_at((sh.start + Duration::from_secs(1)).into(), Duration::from_secs(1));
    let mut second = 0usize;
    loop {
        tick.tick().await;
        lock(&sh.recorder).set_active(second, sh.active.load(Ordering::Relaxed));
        for t in &mut tails {
            for e in t.poll() {
                let p = PlacedFault::place(&e, sh.start_unix_ms);
                sh.event(format!("FAULT at t={:.1}s: {} ({})", p.t_s, p.label, p.source));
            }
        }
        let events: Vec<String> = std::mem::take(&mut *lock(&sh.events));
        if mode == Progress::Auto {
            let line = progress_line(&sh, second);
            let mut out = std::io::stdout().lock();
            if tty {
                let _ = write!(out, "\r\x1b[2K");
                for e in &events {
                    let _ = writeln!(out, "  ! {e}");
                }
                let _ = write!(out, "{line}");
            } else {
                for e in &events {
                    let _ = writeln!(out, "  ! {e}");
                }
                let _ = writeln!(out, "{line}");
            }
            let _ = out.flush();
        }
        second += 1;
        if done.load(Ordering::Relaxed) {
            if mode == Progress::Auto && tty {
                println!();
            }
            return;
        }
    }
}

/// Run the simulation and write the report.
pub async fn run(cfg: RunConfig) -> anyhow::Result<RunOutcome> {
    std::fs::create_dir_all(&cfg.report_dir)
        .with_context(|| format!("creating report folder {}", cfg.report_dir.display()))?;
    if cfg.report_dir.parent().is_some_and(|p| p.file_name().is_some_and(|n| n == "reports")) {
        link_latest(&cfg.report_dir);
    }
    let faults_file = cfg.report_dir.join("faults.jsonl");
    let http = Http::new(cfg.base_urls.clone(), cfg.timeout)?;

    // Stock at the start, for the checker.
    let api_snapshot = snapshot::from_api(&http).await.with_context(|| {
        format!("reading the catalog from {} (is the shop running?)", cfg.base_urls.join(", "))
    })?;
    api_snapshot.write(&cfg.report_dir.join("initial-stock.json"))?;
    if let Some(url) = &cfg.database_url {
        snapshot::from_database(url).await?.write(&cfg.report_dir.join("db-snapshot.json"))?;
    }
    let product_ids: Vec<i64> = api_snapshot.products.iter().map(|p| p.id).collect();

    let acks =
        AckLog::create(&cfg.report_dir.join("acknowledged.jsonl")).context("creating acknowledged.jsonl")?;
    let run_id = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
    let start = Instant::now();
    let start_unix_ms = faults::unix_ms_now();
    let sh = Arc::new(Shared::new(
        http,
        cfg.profile.clone(),
        run_id.clone(),
        start,
        start_unix_ms,
        acks,
        product_ids,
        cfg.max_requests,
    ));
    if cfg.progress == Progress::Auto {
        println!(
            "distshop-sim {run_id}: {} against {} for {:?} (max {} requests), seed {}, report {}",
            cfg.model.describe(),
            cfg.base_urls.join(", "),
            cfg.duration,
            cfg.max_requests,
            cfg.seed,
            cfg.report_dir.display()
        );
    }

    // Stop after --duration.
    {
        let sh = sh.clone();
        let d = cfg.duration;
        tokio::spawn(async move {
            if sh.sleep(d).await {
                sh.stop(StopReason::Duration);
            }
        });
    }
    // Ctrl-C: first stops the load (the report is still written), second skips the final
    // verification, third exits at once.
    let skip_verify = Arc::new(AtomicBool::new(false));
    if cfg.handle_ctrl_c {
        let sh = sh.clone();
        let skip = skip_verify.clone();
        let presses = Arc::new(AtomicU32::new(0));
        tokio::spawn(async move {
            while tokio::signal::ctrl_c().await.is_ok() {
                match presses.fetch_add(1, Ordering::SeqCst) {
                    0 => {
                        eprintln!("\ninterrupted: stopping the shoppers, then writing the report (Ctrl-C again to skip the final verification)");
                        sh.stop(StopReason::Interrupted);
                    }
                    1 => {
                        eprintln!("\nskipping the final verification");
                        skip.store(true, Ordering::SeqCst);
                    }
                    _ => std::process::exit(130),
                }
            }
        });
    }
    let fault_results: Arc<Mutex<Vec<FaultCommandResult>>> = Arc::default();
    let mut fault_tasks = JoinSet::new();
    for fc in cfg.fault_commands.clone() {
        let (sh, file, results) = (sh.clone(), faults_file.clone(), fault_results.clone());
        fault_tasks.spawn(async move {
            if let Some(r) = run_fault_command(sh, fc, file).await {
                lock(&results).push(r);
            }
        });
    }
    let progress_done = Arc::new(AtomicBool::new(false));
    let mut tails = vec![faults_file.clone()];
    tails.extend(cfg.extra_faults_file.clone());
    let progress =
        tokio::spawn(progress_task(sh.clone(), cfg.progress, tails.clone(), progress_done.clone()));

    // The load.
    let mut tasks: JoinSet<()> = JoinSet::new();
    match cfg.model.clone() {
        LoadModel::Closed { shoppers } => {
            for i in 0..shoppers {
                let sh = sh.clone();
                let seed = cfg.seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                tasks.spawn(async move {
                    let mut rng = StdRng::seed_from_u64(seed);
                    // Spread the first journeys over the first think interval.
                    let stagger = sh.profile.think_ms[1].min(1000);
                    if stagger > 0 && !sh.sleep(Duration::from_millis(rng.gen_range(0..=stagger))).await {
                        return;
                    }
                    while !sh.stopping() {
                        let acct = lock(&sh.pool).take(&sh.run_id, sh.profile.p_new_account, &mut rng);
                        sh.active.fetch_add(1, Ordering::Relaxed);
                        let mut s = Shopper::new(&sh, acct, rng, Phase::Load);
                        s.journey(Instant::now()).await;
                        let (acct, r) = s.into_parts();
                        rng = r;
                        sh.active.fetch_sub(1, Ordering::Relaxed);
                        lock(&sh.pool).put(acct);
                    }
                });
            }
            sh.stopped().await;
        }
        LoadModel::Open { rate, arrivals, max_in_flight } => {
            let sem = Arc::new(Semaphore::new(max_in_flight));
            let mut rng = StdRng::seed_from_u64(cfg.seed);
            let mut next = start;
            let mut i: u64 = 0;
            loop {
                let gap = match arrivals {
                    Arrivals::Uniform => 1.0 / rate,
                    Arrivals::Poisson => -(1.0 - rng.gen::<f64>()).ln() / rate,
                };
                next += Duration::from_secs_f64(gap);
                if next > start + cfg.duration {
                    break;
                }
                let mut rx = sh.stop_signal();
                if *rx.borrow_and_update() {
                    break;
                }
                tokio::select! {
                    _ = tokio::time::sleep_until(next.into()) => {}
                    _ = rx.wait_for(|s| *s) => break,
                }
                while tasks.try_join_next().is_some() {}
                i += 1;
                let (sh, sem) = (sh.clone(), sem.clone());
                let seed = cfg.seed ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
                let intended = next;
                tasks.spawn(async move {
                    // Waiting for a slot counts as latency of the journey's first request.
                    let permit = tokio::select! {
                        p = sem.acquire_owned() => p,
                        _ = sh.stopped() => {
                            lock(&sh.findings).bump("journeys_not_started");
                            return;
                        }
                    };
                    let Ok(_permit) = permit else { return };
                    let mut rng = StdRng::seed_from_u64(seed);
                    let acct = lock(&sh.pool).take(&sh.run_id, sh.profile.p_new_account, &mut rng);
                    sh.active.fetch_add(1, Ordering::Relaxed);
                    let mut s = Shopper::new(&sh, acct, rng, Phase::Load);
                    s.journey(intended).await;
                    let (acct, _) = s.into_parts();
                    sh.active.fetch_sub(1, Ordering::Relaxed);
                    lock(&sh.pool).put(acct);
                });
            }
            sh.stop(StopReason::Duration);
        }
    }
    // Let running journeys finish their step (a checkout finishes its retries), bounded.
    let grace = (cfg.timeout * (cfg.profile.checkout_attempts + 1) + Duration::from_secs(5))
        .min(Duration::from_secs(120));
    let drained = tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        let n = tasks.len() as u64;
        tasks.abort_all();
        lock(&sh.pool).lost += n;
        sh.event(format!(
            "{n} journeys still running after {grace:?} were cut off (their accounts are not verified)"
        ));
    }
    let load_end = Instant::now();
    fault_tasks.abort_all();
    progress_done.store(true, Ordering::Relaxed);
    let _ = progress.await;

    // Final verification: every account's cart, orders and session, after the dust settled.
    let verify_start = Instant::now();
    let mut verification = Verification::default();
    let accounts: Vec<_> = std::mem::take(&mut lock(&sh.pool).idle);
    let (mut worth, rest): (Vec<_>, Vec<_>) = accounts.into_iter().partition(|a| a.worth_verifying());
    verification.accounts_skipped = rest.len() as u64;
    if worth.len() > cfg.verify_limit {
        verification.accounts_skipped += (worth.len() - cfg.verify_limit) as u64;
        worth.truncate(cfg.verify_limit);
    }
    if cfg.verify && !skip_verify.load(Ordering::SeqCst) && !worth.is_empty() {
        if cfg.progress == Progress::Auto {
            println!("final verification of {} accounts …", worth.len());
        }
        let queue = Arc::new(Mutex::new(worth));
        let mut workers = JoinSet::new();
        for w in 0..8u64 {
            let (sh, queue, skip) = (sh.clone(), queue.clone(), skip_verify.clone());
            let seed = cfg.seed ^ 0xABCD ^ w;
            workers.spawn(async move {
                let mut rng = StdRng::seed_from_u64(seed);
                let mut n = 0u64;
                loop {
                    if skip.load(Ordering::SeqCst) {
                        break;
                    }
                    let Some(acct) = lock(&queue).pop() else { break };
                    let mut s = Shopper::new(&sh, acct, rng, Phase::Verify);
                    s.verify().await;
                    let (acct, r) = s.into_parts();
                    rng = r;
                    lock(&sh.pool).put(acct);
                    n += 1;
                }
                n
            });
        }
        let deadline = Duration::from_secs(180);
        let res = tokio::time::timeout(deadline, async {
            let mut n = 0;
            while let Some(r) = workers.join_next().await {
                n += r.unwrap_or(0);
            }
            n
        })
        .await;
        match res {
            Ok(n) => verification.accounts_verified = n,
            Err(_) => {
                workers.abort_all();
                verification.accounts_verified = lock(&sh.findings).counter("accounts_verified");
            }
        }
        verification.accounts_skipped += lock(&queue).len() as u64;
    } else {
        verification.accounts_skipped += worth.len() as u64;
    }
    verification.elapsed_s = verify_start.elapsed().as_secs_f64();
    verification.accounts_lost = lock(&sh.pool).lost;
    for e in std::mem::take(&mut *lock(&sh.events)) {
        if cfg.progress == Progress::Auto {
            println!("  ! {e}");
        }
    }

    // Faults, from every file, placed on the timeline.
    let mut placed = Vec::new();
    let mut fault_errors = Vec::new();
    for t in &tails {
        let (events, errors) = faults::read_all(t);
        placed.extend(events.iter().map(|e| PlacedFault::place(e, start_unix_ms)));
        fault_errors.extend(errors);
    }
    placed.sort_by(|a, b| a.t_s.total_cmp(&b.t_s));
    placed.dedup();

    // Summary.
    let elapsed = load_end.saturating_duration_since(start);
    let rec = lock(&sh.recorder);
    let findings = lock(&sh.findings).clone();
    let acks = lock(&sh.acks);
    if let Some(e) = &acks.error {
        fault_errors.push(e.clone());
    }
    let failed = verdict(&cfg.fail_on, &findings, &rec.totals);
    let mut summary = Summary {
        tool: "distshop-sim".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        run_id,
        command: cfg.command_line.clone(),
        started_at_unix_ms: start_unix_ms,
        base_urls: cfg.base_urls.clone(),
        load_model: cfg.model.describe(),
        configured_duration_s: cfg.duration.as_secs_f64(),
        elapsed_s: elapsed.as_secs_f64(),
        stop_reason: match *lock(&sh.stop_reason) {
            Some(StopReason::MaxRequests) => "max-requests",
            Some(StopReason::Interrupted) => "ctrl-c",
            _ => "duration",
        }
        .into(),
        requests: rec.requests(),
        ok: rec.ok,
        throughput_rps: rec.requests() as f64 / elapsed.as_secs_f64().max(0.001),
        errors: crate::metrics::ErrorClass::ALL
            .iter()
            .map(|c| (c.name().to_string(), rec.totals[c.index()]))
            .collect(),
        latency: percentiles(&rec.overall),
        endpoints: report::endpoint_summaries(&rec.endpoints),
        replicas: rec.replicas.clone(),
        violations: report::violation_map(&findings.counts),
        findings: findings.details.clone(),
        ambiguous: findings.ambiguous.clone(),
        unresolved: findings.unresolved.clone(),
        counters: findings.counters.clone(),
        accounts_created: lock(&sh.pool).created,
        orders_acknowledged: acks.orders,
        cancels_logged: acks.cancels,
        verification,
        faults: placed,
        fault_errors,
        fault_commands: lock(&fault_results).clone(),
        verdict: Verdict {
            pass: failed.is_empty(),
            fail_on: cfg.fail_on.iter().map(|f| f.name().to_string()).collect(),
            failed: failed.iter().map(|(f, n)| (f.name().to_string(), *n)).collect(),
        },
    };
    summary.verification.endpoints = report::endpoint_summaries(&rec.verify_endpoints);
    drop(acks);
    report::write_all(&cfg.report_dir, &summary, &rec)?;
    drop(rec);
    if cfg.progress == Progress::Auto {
        print!("{}", report::terminal(&summary, &cfg.report_dir));
    }
    Ok(RunOutcome { summary, report_dir: cfg.report_dir })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }

    #[test]
    fn load_model_descriptions() {
        assert_eq!(LoadModel::Closed { shoppers: 20 }.describe(), "closed model, 20 shoppers");
        let open = LoadModel::Open { rate: 5.0, arrivals: Arrivals::Poisson, max_in_flight: 100 }.describe();
        assert_eq!(open, "open model, 5 journeys/s (poisson arrivals, at most 100 in flight)");
    }
}
