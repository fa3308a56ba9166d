//! State shared by all virtual shoppers of a run: the HTTP client, the recorder, the findings, the
//! pool of accounts, the acknowledged-orders log and the stop signal.

use std::{
    fs::File,
    io::{BufWriter, Write},
    path::Path,
    sync::{
        atomic::{AtomicU64, Ordering},
        Mutex, MutexGuard,
    },
    time::{Duration, Instant},
};

use rand::{rngs::StdRng, Rng};
use serde::Serialize;
use tokio::sync::watch;

use crate::{
    config::Profile,
    findings::Findings,
    http::{Http, Jar},
    metrics::Recorder,
    model::{CartModel, OrderBook, OrderLine},
};

/// Lock a mutex, recovering the data if a panicking task poisoned it (the simulator must still
/// write its report).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// One customer account the simulator owns. Only one journey uses it at a time (it is moved out
/// of the pool), so its model of cart and orders is exact.
#[derive(Debug, Clone)]
pub struct Account {
    /// Shopper number, shown in findings.
    pub n: u64,
    pub email: String,
    pub password: String,
    pub name: String,
    /// The shop definitely has this account (201, or 409 after an ambiguous register).
    pub registered: bool,
    pub jar: Jar,
    /// The shopper believes it is logged in (a 401 now is a lost session).
    pub logged_in: bool,
    pub cart: CartModel,
    pub orders: OrderBook,
    /// No more journeys (too many orders, or it could not be used); still verified at the end.
    pub retired: bool,
}

impl Account {
    pub fn new(run_id: &str, n: u64, rng: &mut StdRng) -> Self {
        let password: String =
            (0..20).map(|_| rng.sample(rand::distributions::Alphanumeric) as char).collect();
        Account {
            n,
            email: format!("sim-{run_id}-{n}@sim.distshop.test"),
            password,
            name: format!("Sim Shopper {n}"),
            registered: false,
            jar: Jar::default(),
            logged_in: false,
            cart: CartModel::default(),
            orders: OrderBook::default(),
            retired: false,
        }
    }

    /// Whether the final verification has something to look at.
    pub fn worth_verifying(&self) -> bool {
        self.registered
            && (!self.orders.known.is_empty()
                || !self.orders.pending.is_empty()
                || !self.cart.is_empty()
                || self.cart.uncertain
                || self.logged_in)
    }
}

/// Accounts not in use right now.
#[derive(Debug, Default)]
pub struct Pool {
    pub idle: Vec<Account>,
    pub created: u64,
    /// Accounts that were in use by a journey that had to be aborted (never verified).
    pub lost: u64,
}

impl Pool {
    /// A returning account (most of the time), or a new one.
    pub fn take(&mut self, run_id: &str, p_new: f64, rng: &mut StdRng) -> Account {
        let usable: Vec<usize> =
            self.idle.iter().enumerate().filter(|(_, a)| !a.retired).map(|(i, _)| i).collect();
        if !usable.is_empty() && !rng.gen_bool(p_new) {
            let i = usable[rng.gen_range(0..usable.len())];
            return self.idle.swap_remove(i);
        }
        self.created += 1;
        Account::new(run_id, self.created, rng)
    }

    pub fn put(&mut self, a: Account) {
        self.idle.push(a);
    }
}

/// One line of `acknowledged.jsonl`.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Ack {
    /// An order the shop acknowledged (201/200 to a checkout, or found in the order list for a
    /// checkout whose answer was lost).
    Order {
        email: String,
        shopper: u64,
        order_id: i64,
        idempotency_key: String,
        lines: Vec<OrderLine>,
        total_cents: i64,
        status: String,
        /// `response` or `order-list` (a lost answer, resolved by listing the orders).
        resolved_by: String,
        attempts: u32,
        t_s: f64,
    },
    /// A cancel the shopper sent; `acknowledged` false when its answer was lost.
    Cancel { email: String, shopper: u64, order_id: i64, acknowledged: bool, t_s: f64 },
}

/// The acknowledged-orders log, written line by line as acknowledgements come in (so a crashed
/// run still leaves what it saw).
pub struct AckLog {
    out: Option<BufWriter<File>>,
    pub orders: u64,
    pub cancels: u64,
    pub error: Option<String>,
}

impl AckLog {
    pub fn create(path: &Path) -> std::io::Result<Self> {
        Ok(AckLog { out: Some(BufWriter::new(File::create(path)?)), orders: 0, cancels: 0, error: None })
    }

    pub fn disabled() -> Self {
        AckLog { out: None, orders: 0, cancels: 0, error: None }
    }

    pub fn write(&mut self, a: &Ack) {
        match a {
            Ack::Order { .. } => self.orders += 1,
            Ack::Cancel { .. } => self.cancels += 1,
        }
        let Some(out) = self.out.as_mut() else { return };
        let res = serde_json::to_string(a)
            .map_err(std::io::Error::other)
            .and_then(|line| writeln!(out, "{line}"))
            .and_then(|_| out.flush());
        if let Err(e) = res {
            self.error.get_or_insert_with(|| format!("writing acknowledged.jsonl: {e}"));
        }
    }
}

/// Why the load stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StopReason {
    Duration,
    MaxRequests,
    Interrupted,
}

pub struct Shared {
    pub http: Http,
    pub profile: Profile,
    pub run_id: String,
    pub start: Instant,
    pub start_unix_ms: u64,
    pub recorder: Mutex<Recorder>,
    pub findings: Mutex<Findings>,
    pub pool: Mutex<Pool>,
    pub acks: Mutex<AckLog>,
    /// Product ids known at the start (for opening product pages by id).
    pub product_ids: Vec<i64>,
    pub requests: AtomicU64,
    pub max_requests: u64,
    pub active: AtomicU64,
    /// Answers checked against a shopper's model (every answer is; content where there is some).
    pub checked: AtomicU64,
    stop_tx: watch::Sender<bool>,
    pub stop_reason: Mutex<Option<StopReason>>,
    /// Messages for the progress output (lost sessions, violations, faults), drained each second.
    pub events: Mutex<Vec<String>>,
}

impl Shared {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        http: Http,
        profile: Profile,
        run_id: String,
        start: Instant,
        start_unix_ms: u64,
        acks: AckLog,
        product_ids: Vec<i64>,
        max_requests: u64,
    ) -> Self {
        let (stop_tx, _) = watch::channel(false);
        Shared {
            http,
            profile,
            run_id,
            start,
            start_unix_ms,
            recorder: Mutex::new(Recorder::new(start)),
            findings: Mutex::new(Findings::default()),
            pool: Mutex::new(Pool::default()),
            acks: Mutex::new(acks),
            product_ids,
            requests: AtomicU64::new(0),
            max_requests,
            active: AtomicU64::new(0),
            checked: AtomicU64::new(0),
            stop_tx,
            stop_reason: Mutex::new(None),
            events: Mutex::new(Vec::new()),
        }
    }

    pub fn stop(&self, reason: StopReason) {
        lock(&self.stop_reason).get_or_insert(reason);
        self.stop_tx.send_replace(true);
    }

    pub fn stopping(&self) -> bool {
        *self.stop_tx.borrow()
    }

    pub fn stop_signal(&self) -> watch::Receiver<bool> {
        self.stop_tx.subscribe()
    }

    /// Sleep, or return `false` early when the run is stopping.
    pub async fn sleep(&self, d: Duration) -> bool {
        let mut rx = self.stop_tx.subscribe();
        if *rx.borrow_and_update() {
            return false;
        }
        tokio::select! {
            _ = tokio::time::sleep(d) => true,
            _ = rx.wait_for(|s| *s) => false,
        }
    }

    /// Wait until the run is stopping.
    pub async fn stopped(&self) {
        let mut rx = self.stop_tx.subscribe();
        let _ = rx.wait_for(|s| *s).await;
    }

    pub fn t_s(&self, at: Instant) -> f64 {
        at.saturating_duration_since(self.start).as_secs_f64()
    }

    pub fn event(&self, msg: String) {
        let mut ev = lock(&self.events);
        if ev.len() < 1000 {
            ev.push(msg);
        }
    }

    /// Count one load request; stops the run when `--max-requests` is reached.
    pub fn count_request(&self) {
        let n = self.requests.fetch_add(1, Ordering::Relaxed) + 1;
        if n >= self.max_requests {
            self.stop(StopReason::MaxRequests);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn pool_returns_accounts_and_skips_retired_ones() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut p = Pool::default();
        let a = p.take("r", 0.0, &mut rng);
        assert_eq!(a.n, 1, "an empty pool makes a new account");
        assert!(a.email.starts_with("sim-r-1@"));
        assert!(a.password.len() >= 10);
        p.put(a);
        let b = p.take("r", 0.0, &mut rng);
        assert_eq!(b.n, 1, "p_new = 0 reuses the idle account");
        let mut b = b;
        b.retired = true;
        p.put(b);
        let c = p.take("r", 0.0, &mut rng);
        assert_eq!(c.n, 2, "a retired account is not handed out again");
        assert_eq!(p.idle.len(), 1);
        assert_eq!(p.take("r", 1.0, &mut rng).n, 3, "p_new = 1 always makes a new one");
    }

    #[test]
    fn ack_log_writes_tagged_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("acknowledged.jsonl");
        let mut log = AckLog::create(&path).unwrap();
        log.write(&Ack::Cancel { email: "e".into(), shopper: 1, order_id: 5, acknowledged: true, t_s: 1.0 });
        let text = std::fs::read_to_string(&path).unwrap();
        let back: Ack = serde_json::from_str(text.trim()).unwrap();
        assert!(text.contains("\"kind\":\"cancel\""));
        assert!(matches!(back, Ack::Cancel { order_id: 5, .. }));
        assert_eq!(log.cancels, 1);
    }
}
