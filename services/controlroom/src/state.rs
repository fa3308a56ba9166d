//! The control room's shared state, built once: settings, the probes, the templates, the latest
//! picture of the stack (a `watch` channel every SSE stream subscribes to), the faults it
//! injected and the simulator's latest run. The poller asks the backends once a second — only
//! while somebody looks (an open page, or a request in the last 30 s), so a stack at rest is not
//! polled for nobody.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::{
    sync::{watch, Notify},
    time::Instant,
};

use crate::{
    probe::Probes,
    settings::Settings,
    status::{FaultRecord, SimRun, Status},
};

/// How long after the last request the poller goes on without an open page.
const LINGER: Duration = Duration::from_secs(30);
/// A simulator run is shown this long after its last report (or, once done, its verdict for
/// [`DONE_SHOWN`]).
const SIM_FRESH_MS: u64 = 10_000;
const DONE_SHOWN_MS: u64 = 600_000;
const FAULTS_KEPT: usize = 100;

pub struct AppState {
    pub settings: Arc<Settings>,
    pub probes: Probes,
    pub tera: tera::Tera,
    pub latest: watch::Sender<Arc<Status>>,
    wake: Notify,
    demand: Mutex<Instant>,
    pub faults: Mutex<VecDeque<FaultRecord>>,
    pub simulator: Mutex<Option<SimRun>>,
    pub chart: Mutex<Option<(Instant, serde_json::Value)>>,
    /// Log searches that may run at once (each reads up to CONTROL_LOG_SCAN_MB).
    pub searches: tokio::sync::Semaphore,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl AppState {
    pub fn new(settings: Settings) -> anyhow::Result<Arc<AppState>> {
        let settings = Arc::new(settings);
        let (latest, _) = watch::channel(Arc::new(Status::default()));
        Ok(Arc::new(AppState {
            probes: Probes::new(settings.clone())?,
            tera: crate::web::templates()?,
            settings,
            latest,
            wake: Notify::new(),
            demand: Mutex::new(Instant::now()),
            faults: Mutex::new(VecDeque::new()),
            simulator: Mutex::new(None),
            chart: Mutex::new(None),
            searches: tokio::sync::Semaphore::new(2),
        }))
    }

    pub fn token(&self) -> Option<&str> {
        self.settings.token.as_deref()
    }

    /// The latest picture, fresh: if it is older than 2 s (the poller was idle), wait for the
    /// next one (at most 3 s; else the old one).
    pub async fn status(&self) -> Arc<Status> {
        *lock(&self.demand) = Instant::now();
        let mut rx = self.latest.subscribe();
        let age = crate::unix_ms().saturating_sub(rx.borrow().at_unix_ms);
        if age > 2_000 {
            self.wake.notify_one();
            let _ = tokio::time::timeout(Duration::from_secs(3), rx.changed()).await;
        }
        let s = rx.borrow().clone();
        s
    }

    /// Adds what the control room keeps itself, then publishes.
    pub fn publish(&self, mut s: Status) {
        s.faults = lock(&self.faults).iter().rev().cloned().collect();
        s.simulator = self.fresh_run();
        self.latest.send_replace(Arc::new(s));
    }

    /// Republish the latest picture with the current faults and simulator run (after a fault
    /// or a simulator report, so the page shows it at once).
    pub fn republish(&self) {
        let s = (**self.latest.borrow()).clone();
        self.publish(s);
    }

    pub fn record_fault(&self, f: FaultRecord) {
        let mut g = lock(&self.faults);
        g.push_back(f);
        while g.len() > FAULTS_KEPT {
            g.pop_front();
        }
        drop(g);
        self.republish();
    }

    pub fn simulator_report(&self, mut run: SimRun) {
        run.received_unix_ms = crate::unix_ms();
        *lock(&self.simulator) = Some(run);
        self.republish();
    }

    fn fresh_run(&self) -> Option<SimRun> {
        let g = lock(&self.simulator);
        let r = g.as_ref()?;
        let age = crate::unix_ms().saturating_sub(r.received_unix_ms);
        (age < SIM_FRESH_MS || (r.done && age < DONE_SHOWN_MS)).then(|| r.clone())
    }

    pub fn chart_cached(&self, max_age: Duration) -> Option<serde_json::Value> {
        let g = lock(&self.chart);
        g.as_ref().filter(|(at, _)| at.elapsed() < max_age).map(|(_, v)| v.clone())
    }

    pub fn chart_store(&self, v: serde_json::Value) {
        *lock(&self.chart) = Some((Instant::now(), v));
    }

    /// Once a second while somebody looks; asleep otherwise until a request wakes it.
    pub async fn poll_loop(self: Arc<Self>) {
        loop {
            let watched = self.latest.receiver_count() > 0 || lock(&self.demand).elapsed() < LINGER;
            if !watched {
                tokio::select! {
                    _ = self.wake.notified() => {}
                    _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                }
                continue;
            }
            let t0 = Instant::now();
            let s = self.probes.snapshot().await;
            self.publish(s);
            let rest = Duration::from_secs(1).saturating_sub(t0.elapsed());
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(rest) => {}
            }
        }
    }
}
