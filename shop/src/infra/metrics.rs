//! Process metrics in the Prometheus text format, without a metrics framework.
//!
//! Counters that matter for a failover demo: requests by route and status, a latency histogram,
//! checkouts by outcome, transaction retries, database and session-store errors. They are process
//! wide, so `/metrics` of one replica describes that replica.

use std::{
    collections::BTreeMap,
    fmt::Write,
    sync::{
        atomic::{AtomicU64, Ordering},
        LazyLock, Mutex,
    },
};

const BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

#[derive(Default)]
struct Histogram {
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
    checkouts: Mutex<BTreeMap<&'static str, u64>>,
    tx_retries: Mutex<BTreeMap<&'static str, u64>>,
    db_errors: Mutex<BTreeMap<&'static str, u64>>,
    store_errors: AtomicU64,
    store_retries: AtomicU64,
    unreplicated_writes: AtomicU64,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::default);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

pub fn record_request(method: &str, route: &str, status: u16, seconds: f64) {
    *lock(&METRICS.requests).entry((method.to_string(), route.to_string(), status)).or_default() += 1;
    let mut lat = lock(&METRICS.latency);
    let h = lat.entry(route.to_string()).or_default();
    for (i, b) in BUCKETS.iter().enumerate() {
        if seconds <= *b {
            h.buckets[i] += 1;
        }
    }
    h.count += 1;
    h.sum += seconds;
}

/// `outcome`: placed, replayed, empty_cart, out_of_stock, failed.
pub fn record_checkout(outcome: &'static str) {
    *lock(&METRICS.checkouts).entry(outcome).or_default() += 1;
}

pub fn record_tx_retry(what: &'static str) {
    *lock(&METRICS.tx_retries).entry(what).or_default() += 1;
}

/// A database problem, by kind: a request's error (`timeout`, `unavailable`, `closed`,
/// `conflict`, `unique`, `other`, see `db::DbError::kind`) or one found elsewhere (e.g. a pooled
/// connection found out of step when it came back).
pub fn record_db_error_kind(kind: &'static str) {
    *lock(&METRICS.db_errors).entry(kind).or_default() += 1;
}

pub fn record_unreplicated_write() {
    METRICS.unreplicated_writes.fetch_add(1, Ordering::Relaxed);
}

pub fn record_store_retry() {
    METRICS.store_retries.fetch_add(1, Ordering::Relaxed);
}

pub fn record_store_error() {
    METRICS.store_errors.fetch_add(1, Ordering::Relaxed);
}

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Everything, in the Prometheus text exposition format.
pub fn render(pool: Option<(u32, u32)>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# HELP shop_http_requests_total HTTP requests by method, route and status.");
    let _ = writeln!(out, "# TYPE shop_http_requests_total counter");
    for ((m, r, s), n) in lock(&METRICS.requests).iter() {
        let _ = writeln!(
            out,
            "shop_http_requests_total{{method=\"{m}\",route=\"{}\",status=\"{s}\"}} {n}",
            esc(r)
        );
    }
    let _ = writeln!(out, "# HELP shop_http_request_duration_seconds Request latency by route.");
    let _ = writeln!(out, "# TYPE shop_http_request_duration_seconds histogram");
    for (r, h) in lock(&METRICS.latency).iter() {
        let r = esc(r);
        for (i, b) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "shop_http_request_duration_seconds_bucket{{route=\"{r}\",le=\"{b}\"}} {}",
                h.buckets[i]
            );
        }
        let _ = writeln!(
            out,
            "shop_http_request_duration_seconds_bucket{{route=\"{r}\",le=\"+Inf\"}} {}",
            h.count
        );
        let _ = writeln!(out, "shop_http_request_duration_seconds_sum{{route=\"{r}\"}} {}", h.sum);
        let _ = writeln!(out, "shop_http_request_duration_seconds_count{{route=\"{r}\"}} {}", h.count);
    }
    let _ = writeln!(out, "# HELP shop_checkouts_total Checkouts by outcome.");
    let _ = writeln!(out, "# TYPE shop_checkouts_total counter");
    for (o, n) in lock(&METRICS.checkouts).iter() {
        let _ = writeln!(out, "shop_checkouts_total{{outcome=\"{o}\"}} {n}");
    }
    let _ = writeln!(
        out,
        "# HELP shop_tx_retries_total Transactions run again after a conflict or lost connection."
    );
    let _ = writeln!(out, "# TYPE shop_tx_retries_total counter");
    for (o, n) in lock(&METRICS.tx_retries).iter() {
        let _ = writeln!(out, "shop_tx_retries_total{{tx=\"{o}\"}} {n}");
    }
    let _ = writeln!(out, "# HELP shop_db_errors_total Database errors by kind.");
    let _ = writeln!(out, "# TYPE shop_db_errors_total counter");
    for (o, n) in lock(&METRICS.db_errors).iter() {
        let _ = writeln!(out, "shop_db_errors_total{{kind=\"{o}\"}} {n}");
    }
    let _ = writeln!(out, "# HELP shop_session_store_errors_total Failed session-store calls.");
    let _ = writeln!(out, "# TYPE shop_session_store_errors_total counter");
    let _ = writeln!(out, "shop_session_store_errors_total {}", METRICS.store_errors.load(Ordering::Relaxed));
    let _ = writeln!(
        out,
        "# HELP shop_session_store_retries_total Session-store calls repeated after a retryable failure."
    );
    let _ = writeln!(out, "# TYPE shop_session_store_retries_total counter");
    let _ =
        writeln!(out, "shop_session_store_retries_total {}", METRICS.store_retries.load(Ordering::Relaxed));
    let _ = writeln!(out, "# HELP shop_session_store_unreplicated_writes_total Writes a replica had not acknowledged within the WAIT timeout.");
    let _ = writeln!(out, "# TYPE shop_session_store_unreplicated_writes_total counter");
    let _ = writeln!(
        out,
        "shop_session_store_unreplicated_writes_total {}",
        METRICS.unreplicated_writes.load(Ordering::Relaxed)
    );
    if let Some((size, idle)) = pool {
        let _ = writeln!(out, "# HELP shop_db_pool_connections Database pool connections by state.");
        let _ = writeln!(out, "# TYPE shop_db_pool_connections gauge");
        let _ = writeln!(out, "shop_db_pool_connections{{state=\"idle\"}} {idle}");
        let _ = writeln!(out, "shop_db_pool_connections{{state=\"busy\"}} {}", size.saturating_sub(idle));
    }
    out
}
