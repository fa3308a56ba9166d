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
    control::{ControlRoom, ControlRoomConfig, LiveReport},
    faults::{self, FaultEvent, PlacedFault, Tail},
    findings::{verdict, FailOn},
    http::Http,
    metrics::{percentiles, Phase, Recorder},
    report::{self, FaultCommandResult, Summary, Verdict, Verification},
    shopper::Shopper,
    snapshot,
    state::{lock, Account, AckLog, Shared, StopReason},
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
    /// Where to send the live reports, if anywhere.
    pub control_room: Option<ControlRoomConfig>,
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
        let control_room = control_room_config(
            a.control_room.clone().or_else(|| env_var("DISTSHOP_CONTROL_URL")),
            env_var("DISTSHOP_CONTROL_TOKEN"),
            a.allow_remote,
        )?;
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
            control_room,
        })
    }
}

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The control room's URL, held to the base URLs' rule (http(s), loopback unless allowed).
fn control_room_config(
    url: Option<String>,
    token: Option<String>,
    allow_remote: bool,
) -> anyhow::Result<Option<ControlRoomConfig>> {
    let Some(url) = url else { return Ok(None) };
    let url = crate::config::check_base_urls(&[url], allow_remote)
        .map_err(|e| anyhow::anyhow!("--control-room: {}", e.trim_start_matches("--base-url ")))?
        .remove(0);
    if token.is_none() {
        eprintln!(
            "distshop-sim: DISTSHOP_CONTROL_TOKEN is not set: the control room will refuse the live reports"
        );
    }
    Ok(Some(ControlRoomConfig { url, token }))
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

/// Run the simulation and write the report: set-up, the load (with the fault commands and the
/// live progress beside it), the final verification, then the summary and the report files.
pub async fn run(cfg: RunConfig) -> anyhow::Result<RunOutcome> {
    let sh = set_up(&cfg).await?;
    if cfg.progress == Progress::Auto {
        println!("{}", banner(&cfg, &sh.run_id));
    }
    spawn_duration_limit(&sh, cfg.duration);
    let skip_verify = Arc::new(AtomicBool::new(false));
    if cfg.handle_ctrl_c {
        spawn_ctrl_c_handler(&sh, &skip_verify);
    }
    let faults_file = cfg.report_dir.join("faults.jsonl");
    let mut fault_files = vec![faults_file.clone()];
    fault_files.extend(cfg.extra_faults_file.clone());
    let (mut fault_tasks, fault_results) = spawn_fault_commands(&sh, &cfg.fault_commands, &faults_file);
    let live = match &cfg.control_room {
        Some(c) => {
            Some(LiveReports { room: ControlRoom::new(c)?, run: run_name(&cfg.report_dir, &sh.run_id) })
        }
        None => None,
    };
    let progress = ProgressTask::spawn(&sh, cfg.progress, fault_files.clone(), live.clone());

    let load_end = run_load(&cfg, &sh).await;
    fault_tasks.abort_all();
    progress.finish().await;

    let verification = final_verification(&cfg, &sh, &skip_verify).await;
    let events = std::mem::take(&mut *lock(&sh.events));
    if cfg.progress == Progress::Auto {
        for e in events {
            println!("  ! {e}");
        }
    }
    let (faults, fault_errors) = placed_faults(&fault_files, sh.start_unix_ms);
    let fault_commands = lock(&fault_results).clone();
    let after_load = AfterLoad { load_end, verification, faults, fault_errors, fault_commands };

    let summary = {
        let rec = lock(&sh.recorder);
        let summary = summarise(&cfg, &sh, &rec, after_load);
        report::write_all(&cfg.report_dir, &summary, &rec)?;
        summary
    };
    if cfg.progress == Progress::Auto {
        print!("{}", report::terminal(&summary, &cfg.report_dir));
    }
    if let Some(l) = &live {
        let last_second = sh.start.elapsed().as_secs().saturating_sub(1) as usize;
        l.room.finish(LiveReport::sample(&sh, &l.run, last_second, true)).await;
    }
    Ok(RunOutcome { summary, report_dir: cfg.report_dir })
}

// --- set-up ---------------------------------------------------------------------------------

/// The report folder, the stock at the start, the acknowledged-orders log, and the state all
/// shoppers share; the run's clock starts here.
async fn set_up(cfg: &RunConfig) -> anyhow::Result<Arc<Shared>> {
    std::fs::create_dir_all(&cfg.report_dir)
        .with_context(|| format!("creating report folder {}", cfg.report_dir.display()))?;
    if cfg.report_dir.parent().is_some_and(|p| p.file_name().is_some_and(|n| n == "reports")) {
        link_latest(&cfg.report_dir);
    }
    let http = Http::new(cfg.base_urls.clone(), cfg.timeout)?;
    let product_ids = snapshot_stock(cfg, &http).await?;
    let acks =
        AckLog::create(&cfg.report_dir.join("acknowledged.jsonl")).context("creating acknowledged.jsonl")?;
    let run_id = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
    let start = Instant::now();
    let start_unix_ms = faults::unix_ms_now();
    Ok(Arc::new(Shared::new(
        http,
        cfg.profile.clone(),
        run_id,
        start,
        start_unix_ms,
        acks,
        product_ids,
        cfg.max_requests,
    )))
}

/// The stock at the start, for the checker: `initial-stock.json` read through the shop's API
/// (which also proves the shop answers), and `db-snapshot.json` when a database URL is given.
/// Returns the catalog's product ids.
async fn snapshot_stock(cfg: &RunConfig, http: &Http) -> anyhow::Result<Vec<i64>> {
    let api_snapshot = snapshot::from_api(http).await.with_context(|| {
        format!("reading the catalog from {} (is the shop running?)", cfg.base_urls.join(", "))
    })?;
    api_snapshot.write(&cfg.report_dir.join("initial-stock.json"))?;
    if let Some(url) = &cfg.database_url {
        snapshot::from_database(url).await?.write(&cfg.report_dir.join("db-snapshot.json"))?;
    }
    Ok(api_snapshot.products.iter().map(|p| p.id).collect())
}

/// The first line a run prints.
fn banner(cfg: &RunConfig, run_id: &str) -> String {
    format!(
        "distshop-sim {run_id}: {} against {} for {:?} (max {} requests), seed {}, report {}",
        cfg.model.describe(),
        cfg.base_urls.join(", "),
        cfg.duration,
        cfg.max_requests,
        cfg.seed,
        cfg.report_dir.display()
    )
}

/// Stop the run after `--duration`.
fn spawn_duration_limit(sh: &Arc<Shared>, d: Duration) {
    let sh = sh.clone();
    tokio::spawn(async move {
        if sh.sleep(d).await {
            sh.stop(StopReason::Duration);
        }
    });
}

/// Ctrl-C: the first stops the load (the report is still written), the second skips the final
/// verification (sets `skip_verify`), the third exits at once.
fn spawn_ctrl_c_handler(sh: &Arc<Shared>, skip_verify: &Arc<AtomicBool>) {
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

// --- fault commands -------------------------------------------------------------------------

/// One task per `--fault-command`; each result is collected when its command has run.
fn spawn_fault_commands(
    sh: &Arc<Shared>,
    commands: &[FaultCommand],
    faults_file: &Path,
) -> (JoinSet<()>, Arc<Mutex<Vec<FaultCommandResult>>>) {
    let fault_results: Arc<Mutex<Vec<FaultCommandResult>>> = Arc::default();
    let mut fault_tasks = JoinSet::new();
    for fc in commands.iter().cloned() {
        let (sh, file, results) = (sh.clone(), faults_file.to_path_buf(), fault_results.clone());
        fault_tasks.spawn(async move {
            if let Some(r) = run_fault_command(sh, fc, file).await {
                lock(&results).push(r);
            }
        });
    }
    (fault_tasks, fault_results)
}

/// At its time, mark the fault on the timeline and run the command (`sh -c`, at most 120 s);
/// `None` when the run stopped first.
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
            result.output_tail = output_tail(&o.stdout, &o.stderr);
        }
    }
    sh.event(format!("fault command `{}` exited {:?}", fc.command, result.exit_code));
    Some(result)
}

/// The last 500 characters of a command's stdout followed by its stderr.
fn output_tail(stdout: &[u8], stderr: &[u8]) -> String {
    let mut text = String::from_utf8_lossy(stdout).to_string();
    text.push_str(&String::from_utf8_lossy(stderr));
    text.chars().rev().take(500).collect::<Vec<_>>().into_iter().rev().collect()
}

// --- live progress --------------------------------------------------------------------------

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
    let total_err = crate::control::error_total(&rec);
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

/// The task behind the live progress output: each second it samples the busy shoppers, turns
/// new lines in the fault files into events, and (unless `Progress::Off`) prints the events and
/// the progress line.
struct ProgressTask {
    done: Arc<AtomicBool>,
    handle: tokio::task::JoinHandle<()>,
}

/// The live reports of a run: where they go and the run's name in them.
#[derive(Clone)]
struct LiveReports {
    room: ControlRoom,
    run: String,
}

/// The run's name for the control room: its report folder's name, else its id.
fn run_name(report_dir: &Path, run_id: &str) -> String {
    report_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| !n.is_empty() && n.len() <= 200)
        .unwrap_or_else(|| run_id.to_string())
}

impl ProgressTask {
    fn spawn(sh: &Arc<Shared>, mode: Progress, fault_files: Vec<PathBuf>, live: Option<LiveReports>) -> Self {
        let done = Arc::new(AtomicBool::new(false));
        let handle = tokio::spawn(progress_task(sh.clone(), mode, fault_files, done.clone(), live));
        ProgressTask { done, handle }
    }

    /// Stop after the next tick (its line is the last one) and wait for it.
    async fn finish(self) {
        self.done.store(true, Ordering::Relaxed);
        let _ = self.handle.await;
    }
}

async fn progress_task(
    sh: Arc<Shared>,
    mode: Progress,
    tails: Vec<PathBuf>,
    done: Arc<AtomicBool>,
    live: Option<LiveReports>,
) {
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
            print_progress(tty, &events, &progress_line(&sh, second));
        }
        if let Some(l) = &live {
            // not awaited: a slow or absent control room never holds the run
            drop(l.room.send(LiveReport::sample(&sh, &l.run, second, false)));
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

/// The second's events (`  ! …`), then its progress line: on a terminal the line is rewritten
/// in place, otherwise each is a line of its own.
fn print_progress(tty: bool, events: &[String], line: &str) {
    let mut out = std::io::stdout().lock();
    if tty {
        let _ = write!(out, "\r\x1b[2K");
    }
    for e in events {
        let _ = writeln!(out, "  ! {e}");
    }
    if tty {
        let _ = write!(out, "{line}");
    } else {
        let _ = writeln!(out, "{line}");
    }
    let _ = out.flush();
}

// --- the load -------------------------------------------------------------------------------

/// The load, closed or open model, until the duration, `--max-requests` or Ctrl-C stops it;
/// then the journeys still running are let finish. Returns when the load ended.
async fn run_load(cfg: &RunConfig, sh: &Arc<Shared>) -> Instant {
    let mut tasks: JoinSet<()> = JoinSet::new();
    match cfg.model.clone() {
        LoadModel::Closed { shoppers } => closed_load(sh, shoppers, cfg.seed, &mut tasks).await,
        LoadModel::Open { rate, arrivals, max_in_flight } => {
            let sem = Arc::new(Semaphore::new(max_in_flight));
            open_load(sh, rate, arrivals, sem, cfg, &mut tasks).await;
        }
    }
    drain(sh, tasks, drain_grace(cfg)).await;
    Instant::now()
}

/// Shopper `i`'s (closed model) or journey `i`'s (open model) random seed.
fn journey_seed(seed: u64, i: u64) -> u64 {
    seed ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// Closed model: `shoppers` shoppers, each starting its next journey when the last one ends,
/// until the run stops.
async fn closed_load(sh: &Arc<Shared>, shoppers: usize, seed: u64, tasks: &mut JoinSet<()>) {
    for i in 0..shoppers {
        tasks.spawn(closed_shopper(sh.clone(), journey_seed(seed, i as u64)));
    }
    sh.stopped().await;
}

async fn closed_shopper(sh: Arc<Shared>, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    // Spread the first journeys over the first think interval.
    let stagger = sh.profile.think_ms[1].min(1000);
    if stagger > 0 && !sh.sleep(Duration::from_millis(rng.gen_range(0..=stagger))).await {
        return;
    }
    while !sh.stopping() {
        rng = pooled_journey(&sh, rng, None).await;
    }
}

/// The gap to the next arrival at `rate` per second: fixed, or exponentially distributed.
fn arrival_gap(arrivals: Arrivals, rate: f64, rng: &mut StdRng) -> f64 {
    match arrivals {
        Arrivals::Uniform => 1.0 / rate,
        Arrivals::Poisson => -(1.0 - rng.gen::<f64>()).ln() / rate,
    }
}

/// Open model: journeys start on the arrival schedule whatever the shop's speed, until the
/// duration is over or the run stops; at most `sem`'s permits run at once.
async fn open_load(
    sh: &Arc<Shared>,
    rate: f64,
    arrivals: Arrivals,
    sem: Arc<Semaphore>,
    cfg: &RunConfig,
    tasks: &mut JoinSet<()>,
) {
    let start = sh.start;
    let mut rng = StdRng::seed_from_u64(cfg.seed);
    let mut next = start;
    let mut i: u64 = 0;
    loop {
        next += Duration::from_secs_f64(arrival_gap(arrivals, rate, &mut rng));
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
        tasks.spawn(open_journey(sh.clone(), sem.clone(), journey_seed(cfg.seed, i), next));
    }
    sh.stop(StopReason::Duration);
}

/// One open-model journey, due at `intended`: waiting for a slot counts as latency of its first
/// request; a journey still waiting when the run stops is counted as not started.
async fn open_journey(sh: Arc<Shared>, sem: Arc<Semaphore>, seed: u64, intended: Instant) {
    let permit = tokio::select! {
        p = sem.acquire_owned() => p,
        _ = sh.stopped() => {
            lock(&sh.findings).bump("journeys_not_started");
            return;
        }
    };
    let Ok(_permit) = permit else { return };
    pooled_journey(&sh, StdRng::seed_from_u64(seed), Some(intended)).await;
}

/// One journey with an account from the pool (an idle one or a new one), counted as a busy
/// shopper while it runs; due at `intended`, or now. Returns the random generator.
async fn pooled_journey(sh: &Shared, mut rng: StdRng, intended: Option<Instant>) -> StdRng {
    let acct = lock(&sh.pool).take(&sh.run_id, sh.profile.p_new_account, &mut rng);
    sh.active.fetch_add(1, Ordering::Relaxed);
    let mut s = Shopper::new(sh, acct, rng, Phase::Load);
    s.journey(intended.unwrap_or_else(Instant::now)).await;
    let (acct, rng) = s.into_parts();
    sh.active.fetch_sub(1, Ordering::Relaxed);
    lock(&sh.pool).put(acct);
    rng
}

/// How long running journeys may take to finish their step after the load stopped: a checkout
/// with all its retries, plus 5 s, at most 2 minutes.
fn drain_grace(cfg: &RunConfig) -> Duration {
    (cfg.timeout * (cfg.profile.checkout_attempts + 1) + Duration::from_secs(5)).min(Duration::from_secs(120))
}

/// Let running journeys finish their step (a checkout finishes its retries), for at most
/// `grace`; journeys still running then are cut off and their accounts counted as lost.
async fn drain(sh: &Shared, mut tasks: JoinSet<()>, grace: Duration) {
    let drained = tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        let n = tasks.len() as u64;
        tasks.abort_all();
        lock(&sh.pool).lost += n;
        sh.event(format!(
            "{n} journeys still running after {grace:?} were cut off (their accounts are not verified)"
        ));
    }
}

// --- final verification ---------------------------------------------------------------------

/// The accounts worth verifying, at most `limit` of them, and how many are skipped.
fn accounts_to_verify(accounts: Vec<Account>, limit: usize) -> (Vec<Account>, u64) {
    let (mut worth, rest): (Vec<_>, Vec<_>) = accounts.into_iter().partition(|a| a.worth_verifying());
    let mut skipped = rest.len() as u64;
    if worth.len() > limit {
        skipped += (worth.len() - limit) as u64;
        worth.truncate(limit);
    }
    (worth, skipped)
}

/// Final verification: every account's cart, orders and session, after the dust settled (unless
/// `--no-verify` or a second Ctrl-C).
async fn final_verification(
    cfg: &RunConfig,
    sh: &Arc<Shared>,
    skip_verify: &Arc<AtomicBool>,
) -> Verification {
    let verify_start = Instant::now();
    let mut verification = Verification::default();
    let accounts: Vec<_> = std::mem::take(&mut lock(&sh.pool).idle);
    let (worth, skipped) = accounts_to_verify(accounts, cfg.verify_limit);
    verification.accounts_skipped = skipped;
    if cfg.verify && !skip_verify.load(Ordering::SeqCst) && !worth.is_empty() {
        if cfg.progress == Progress::Auto {
            println!("final verification of {} accounts …", worth.len());
        }
        let (verified, left) = verify_accounts(sh, worth, cfg.seed, skip_verify).await;
        verification.accounts_verified = verified;
        verification.accounts_skipped += left;
    } else {
        verification.accounts_skipped += worth.len() as u64;
    }
    verification.elapsed_s = verify_start.elapsed().as_secs_f64();
    verification.accounts_lost = lock(&sh.pool).lost;
    verification
}

/// Verify `accounts` with 8 workers, for at most 3 minutes; stops early when `skip` is set.
/// Returns how many were verified and how many were left unverified.
async fn verify_accounts(
    sh: &Arc<Shared>,
    accounts: Vec<Account>,
    seed: u64,
    skip: &Arc<AtomicBool>,
) -> (u64, u64) {
    let queue = Arc::new(Mutex::new(accounts));
    let mut workers = JoinSet::new();
    for w in 0..8u64 {
        workers.spawn(verify_worker(sh.clone(), queue.clone(), skip.clone(), seed ^ 0xABCD ^ w));
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
    let verified = match res {
        Ok(n) => n,
        Err(_) => {
            workers.abort_all();
            lock(&sh.findings).counter("accounts_verified")
        }
    };
    let left = lock(&queue).len() as u64;
    (verified, left)
}

/// Take accounts off the queue and verify each until the queue is empty or `skip` is set;
/// returns how many it verified.
async fn verify_worker(
    sh: Arc<Shared>,
    queue: Arc<Mutex<Vec<Account>>>,
    skip: Arc<AtomicBool>,
    seed: u64,
) -> u64 {
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
}

// --- the report -----------------------------------------------------------------------------

/// Faults from every file, placed on the run's timeline, in time order without duplicates; and
/// the files' read errors.
fn placed_faults(files: &[PathBuf], start_unix_ms: u64) -> (Vec<PlacedFault>, Vec<String>) {
    let mut placed = Vec::new();
    let mut fault_errors = Vec::new();
    for t in files {
        let (events, errors) = faults::read_all(t);
        placed.extend(events.iter().map(|e| PlacedFault::place(e, start_unix_ms)));
        fault_errors.extend(errors);
    }
    placed.sort_by(|a, b| a.t_s.total_cmp(&b.t_s));
    placed.dedup();
    (placed, fault_errors)
}

/// What the phases after the set-up produced, for the summary.
struct AfterLoad {
    load_end: Instant,
    verification: Verification,
    faults: Vec<PlacedFault>,
    fault_errors: Vec<String>,
    fault_commands: Vec<FaultCommandResult>,
}

fn stop_reason_name(reason: Option<StopReason>) -> &'static str {
    match reason {
        Some(StopReason::MaxRequests) => "max-requests",
        Some(StopReason::Interrupted) => "ctrl-c",
        _ => "duration",
    }
}

/// The run's summary (`summary.json`) from the shared state, the recorder and the later phases.
fn summarise(cfg: &RunConfig, sh: &Shared, rec: &Recorder, after: AfterLoad) -> Summary {
    let AfterLoad { load_end, mut verification, faults, mut fault_errors, fault_commands } = after;
    let elapsed = load_end.saturating_duration_since(sh.start);
    let findings = lock(&sh.findings).clone();
    let acks = lock(&sh.acks);
    if let Some(e) = &acks.error {
        fault_errors.push(e.clone());
    }
    let failed = verdict(&cfg.fail_on, &findings, &rec.totals);
    verification.endpoints = report::endpoint_summaries(&rec.verify_endpoints);
    Summary {
        tool: "distshop-sim".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        run_id: sh.run_id.clone(),
        command: cfg.command_line.clone(),
        started_at_unix_ms: sh.start_unix_ms,
        base_urls: cfg.base_urls.clone(),
        load_model: cfg.model.describe(),
        configured_duration_s: cfg.duration.as_secs_f64(),
        elapsed_s: elapsed.as_secs_f64(),
        stop_reason: stop_reason_name(*lock(&sh.stop_reason)).into(),
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
        faults,
        fault_errors,
        fault_commands,
        verdict: Verdict {
            pass: failed.is_empty(),
            fail_on: cfg.fail_on.iter().map(|f| f.name().to_string()).collect(),
            failed: failed.iter().map(|(f, n)| (f.name().to_string(), *n)).collect(),
        },
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::metrics::ErrorClass;

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

    #[test]
    fn the_control_room_is_held_to_the_base_urls_rule_and_named_by_the_report_folder() {
        let c = control_room_config(Some("http://127.0.0.1:9092/".into()), Some("t".into()), false).unwrap();
        assert_eq!(
            c,
            Some(ControlRoomConfig { url: "http://127.0.0.1:9092".into(), token: Some("t".into()) })
        );
        assert!(control_room_config(Some("http://controlroom:8080".into()), None, false).is_err());
        assert!(control_room_config(Some("http://controlroom:8080".into()), None, true).is_ok());
        assert_eq!(control_room_config(None, Some("t".into()), false).unwrap(), None);
        assert_eq!(run_name(Path::new("reports/20261204-225500"), "ab12cd34"), "20261204-225500");
        assert_eq!(run_name(Path::new("/"), "ab12cd34"), "ab12cd34");
    }

    fn config(report_dir: &str) -> RunConfig {
        RunConfig {
            base_urls: vec!["http://a:1".into(), "http://b:2".into()],
            model: LoadModel::Closed { shoppers: 3 },
            duration: Duration::from_secs(3),
            max_requests: 500,
            timeout: Duration::from_secs(2),
            profile: Profile::default(),
            report_dir: PathBuf::from(report_dir),
            extra_faults_file: None,
            fault_commands: vec![],
            fail_on: FailOn::DEFAULT.to_vec(),
            seed: 7,
            database_url: None,
            verify: true,
            verify_limit: 1000,
            progress: Progress::Auto,
            handle_ctrl_c: false,
            command_line: "test".into(),
            control_room: None,
        }
    }

    #[test]
    fn the_banner_names_the_model_targets_limits_seed_and_report() {
        assert_eq!(
            banner(&config("reports/x"), "ab12cd34"),
            "distshop-sim ab12cd34: closed model, 3 shoppers against http://a:1, http://b:2 for 3s \
             (max 500 requests), seed 7, report reports/x"
        );
    }

    #[test]
    fn running_journeys_get_one_checkout_with_its_retries_to_finish() {
        let mut cfg = config("r");
        cfg.profile.checkout_attempts = 6;
        assert_eq!(drain_grace(&cfg), Duration::from_secs(2 * 7 + 5));
        cfg.timeout = Duration::from_secs(30);
        assert_eq!(drain_grace(&cfg), Duration::from_secs(120), "at most 2 minutes");
    }

    #[test]
    fn uniform_arrivals_are_evenly_spaced_and_poisson_ones_average_the_rate() {
        let mut rng = StdRng::seed_from_u64(1);
        assert_eq!(arrival_gap(Arrivals::Uniform, 4.0, &mut rng), 0.25);
        let gaps: Vec<f64> = (0..20_000).map(|_| arrival_gap(Arrivals::Poisson, 4.0, &mut rng)).collect();
        assert!(gaps.iter().all(|g| *g >= 0.0 && g.is_finite()));
        let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
        assert!((mean - 0.25).abs() < 0.01, "mean gap {mean}");
        assert!(gaps.iter().any(|g| *g > 0.75), "exponential gaps have a long tail");
    }

    #[test]
    fn only_accounts_with_something_to_check_are_verified_up_to_the_limit() {
        let mut rng = StdRng::seed_from_u64(1);
        let account = |n, registered, logged_in, rng: &mut StdRng| {
            let mut a = Account::new("r", n, rng);
            a.registered = registered;
            a.logged_in = logged_in;
            a
        };
        let accounts = vec![
            account(1, true, true, &mut rng),
            account(2, false, true, &mut rng), // never registered: nothing to look up
            account(3, true, false, &mut rng), // nothing in its cart, no orders, logged out
            account(4, true, true, &mut rng),
            account(5, true, true, &mut rng),
        ];
        let (worth, skipped) = accounts_to_verify(accounts.clone(), 10);
        assert_eq!(worth.iter().map(|a| a.n).collect::<Vec<_>>(), [1, 4, 5]);
        assert_eq!(skipped, 2);
        let (worth, skipped) = accounts_to_verify(accounts, 2);
        assert_eq!(worth.iter().map(|a| a.n).collect::<Vec<_>>(), [1, 4]);
        assert_eq!(skipped, 3);
    }

    #[test]
    fn a_fault_commands_output_tail_is_its_last_500_characters() {
        assert_eq!(output_tail(b"out\n", b"err\n"), "out\nerr\n");
        let long = format!("{}{}", "a".repeat(10), "é".repeat(498));
        assert_eq!(output_tail(long.as_bytes(), b"!"), format!("a{}!", "é".repeat(498)));
    }

    #[test]
    fn faults_from_every_file_are_merged_in_time_order_without_duplicates() {
        let dir = tempfile::tempdir().unwrap();
        let (own, extra) = (dir.path().join("faults.jsonl"), dir.path().join("extra.jsonl"));
        let line =
            |t: u64, label: &str| format!(r#"{{"t_unix_ms": {t}, "label": "{label}", "source": "s"}}"#);
        std::fs::write(&own, format!("{}\n{}\n", line(13_000, "late"), line(11_000, "early"))).unwrap();
        std::fs::write(&extra, format!("{}\nnot json\n{}\n", line(12_000, "middle"), line(11_000, "early")))
            .unwrap();
        let missing = dir.path().join("missing.jsonl");
        let (placed, errors) = placed_faults(&[own, extra, missing], 10_000);
        let got: Vec<(f64, &str)> = placed.iter().map(|f| (f.t_s, f.label.as_str())).collect();
        assert_eq!(got, [(1.0, "early"), (2.0, "middle"), (3.0, "late")]);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].starts_with("line 2: "), "{errors:?}");
    }

    #[test]
    fn the_progress_line_shows_the_second_and_the_totals() {
        let dir = tempfile::tempdir().unwrap();
        let start = Instant::now();
        let sh = Shared::new(
            Http::new(vec!["http://127.0.0.1:9".into()], Duration::from_secs(1)).unwrap(),
            Profile::default(),
            "r".into(),
            start,
            0,
            AckLog::create(&dir.path().join("acknowledged.jsonl")).unwrap(),
            vec![],
            100,
        );
        let sample = |served_by: Option<&str>, class: Option<ErrorClass>, ms, at_ms| crate::metrics::Sample {
            endpoint: "GET /api/cart",
            status: served_by.map(|_| if class.is_some() { 503 } else { 200 }),
            latency: Duration::from_millis(ms),
            served_by: served_by.map(String::from),
            class,
            finished: start + Duration::from_millis(at_ms),
        };
        {
            let mut rec = lock(&sh.recorder);
            rec.record(Phase::Load, &sample(Some("shop-1"), None, 1, 100));
            rec.record(Phase::Load, &sample(Some("shop-2"), Some(ErrorClass::Server5xx), 2, 200));
            rec.violation(Phase::Load, "GET /api/cart", start + Duration::from_millis(300));
            rec.record(Phase::Load, &sample(None, Some(ErrorClass::Network), 1, 1500));
        }
        lock(&sh.findings).bump("orders_acknowledged");
        sh.active.store(2, Ordering::Relaxed);
        let totals = "total 3 req, 2 err, 1 orders, violations 0 (lost sessions 0) | shoppers 2";
        assert_eq!(
            progress_line(&sh, 0),
            format!("[   1s]     2 req/s  err/s 2    p99     2.0 ms | {totals} | shop-1:1 shop-2:1")
        );
        assert_eq!(
            progress_line(&sh, 1),
            format!("[   2s]     1 req/s  err/s 1    p99     1.0 ms | {totals} | no replica answered")
        );
        assert_eq!(
            progress_line(&sh, 7),
            format!("[   8s]     0 req/s  err/s 0    p99     0.0 ms | {totals} | no replica answered")
        );
    }
}
