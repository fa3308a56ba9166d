//! Process metrics for `/metrics`, kept by the `metrics` facade and rendered in the Prometheus
//! text format by its exporter (`metrics-exporter-prometheus`).
//!
//! Counters that matter for a failover demo: requests by route and status, a latency histogram,
//! checkouts by outcome, transaction retries, database and session-store errors, and the database
//! pool's connections by state. They are process wide, so `/metrics` of one replica describes
//! that replica.
//!
//! Why a crate: the recorder keeps each series in its own atomic (no global mutex on the request
//! path) and writes the exposition format (escaping, histogram buckets, `_sum`/`_count`) itself.
//! `metrics` over `prometheus`: a call site names its metric and labels, no typed vectors to register.
//!
//! The names, labels and buckets are read elsewhere — the manager's autoscaler and 5xx watch
//! (`services/manager/src/scale.rs`), the cluster suite, the docs — so they stay as they are.
//! Labels come from fixed sets (the caller normalises methods and routes: see
//! `edge/telemetry.rs`), so no client can grow the number of series.

use std::{sync::OnceLock, time::Duration};

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

const REQUESTS: &str = "shop_http_requests_total";
const SERVER_ERRORS: &str = "shop_http_server_errors_total";
const LATENCY: &str = "shop_http_request_duration_seconds";
const CHECKOUTS: &str = "shop_checkouts_total";
const TX_RETRIES: &str = "shop_tx_retries_total";
const DB_ERRORS: &str = "shop_db_errors_total";
const STORE_ERRORS: &str = "shop_session_store_errors_total";
const STORE_RETRIES: &str = "shop_session_store_retries_total";
const UNREPLICATED_WRITES: &str = "shop_session_store_unreplicated_writes_total";
const POOL: &str = "shop_db_pool_connections";

/// The latency histogram's upper bounds (s); `+Inf` is added by the exporter.
const BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

/// How often recorded latencies are folded into the histogram between scrapes. Until then each
/// one is kept as a sample, so without it a replica nobody scrapes would grow.
const UPKEEP: Duration = Duration::from_secs(5);

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Install the process-wide recorder (once; later calls return the same handle), so the tests'
/// many apps in one process share it. Until it is installed, what is recorded goes nowhere.
pub fn install() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        // only refused for an empty list of buckets, which BUCKETS is not
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(LATENCY.into()), &BUCKETS)
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, "latency buckets refused: latency is a summary");
                PrometheusBuilder::new()
            })
            .build_recorder();
        let handle = recorder.handle();
        if let Err(e) = metrics::set_global_recorder(recorder) {
            tracing::warn!(error = %e, "another metrics recorder is installed: /metrics stays empty");
        }
        describe();
        let upkeep = handle.clone();
        let spawned = std::thread::Builder::new().name("metrics-upkeep".into()).spawn(move || loop {
            std::thread::sleep(UPKEEP);
            upkeep.run_upkeep();
        });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "no metrics upkeep thread: latencies are folded in at scrapes only");
        }
        handle
    })
}

/// The HELP lines, and the unlabelled counters at 0 so they are there before their first event.
fn describe() {
    describe_counter!(REQUESTS, "HTTP requests by method, route and status.");
    describe_counter!(
        SERVER_ERRORS,
        "5xx answers, probes (/metrics, /readyz, /healthz, /heartbeat) left out."
    );
    describe_histogram!(LATENCY, "Request latency by route.");
    describe_counter!(CHECKOUTS, "Checkouts by outcome.");
    describe_counter!(TX_RETRIES, "Transactions run again after a conflict or lost connection.");
    describe_counter!(DB_ERRORS, "Database errors by kind.");
    describe_counter!(STORE_ERRORS, "Failed session-store calls.");
    describe_counter!(STORE_RETRIES, "Session-store calls repeated after a retryable failure.");
    describe_counter!(UNREPLICATED_WRITES, "Writes a replica had not acknowledged within the WAIT timeout.");
    describe_gauge!(POOL, "Database pool connections by state.");
    // SERVER_ERRORS at 0 from the start: a series born with its first 5xx burst has one sample
    // holding the whole burst, which rate() cannot count, so the first errors of a replica (the
    // ones a failover demo is about) would never reach Prometheus' error rate
    for name in [SERVER_ERRORS, STORE_ERRORS, STORE_RETRIES, UNREPLICATED_WRITES] {
        counter!(name).increment(0);
    }
}

/// `method` is one of the known methods or `OTHER`, `route` the matched pattern or `<unmatched>`.
pub fn record_request(method: &str, route: &str, status: u16, seconds: f64) {
    if status >= 500 && !matches!(route, "/metrics" | "/readyz" | "/healthz" | "/heartbeat") {
        counter!(SERVER_ERRORS).increment(1);
    }
    let (method, route) = (method.to_owned(), route.to_owned());
    counter!(REQUESTS, "method" => method, "route" => route.clone(), "status" => status.to_string())
        .increment(1);
    histogram!(LATENCY, "route" => route).record(seconds);
}

/// `outcome`: placed, replayed, empty_cart, out_of_stock, failed.
pub fn record_checkout(outcome: &'static str) {
    counter!(CHECKOUTS, "outcome" => outcome).increment(1);
}

pub fn record_tx_retry(what: &'static str) {
    counter!(TX_RETRIES, "tx" => what).increment(1);
}

/// A database problem, by kind: a request's error (`timeout`, `unavailable`, `closed`,
/// `conflict`, `unique`, `other`, see `db::DbError::kind`) or one found elsewhere (e.g. a pooled
/// connection found out of step when it came back).
pub fn record_db_error_kind(kind: &'static str) {
    counter!(DB_ERRORS, "kind" => kind).increment(1);
}

pub fn record_unreplicated_write() {
    counter!(UNREPLICATED_WRITES).increment(1);
}

pub fn record_store_retry() {
    counter!(STORE_RETRIES).increment(1);
}

pub fn record_store_error() {
    counter!(STORE_ERRORS).increment(1);
}

/// Everything, in the Prometheus text exposition format; `pool` (size, idle) sets the pool gauges
/// first.
pub fn render(pool: Option<(u32, u32)>) -> String {
    let handle = install();
    if let Some((size, idle)) = pool {
        gauge!(POOL, "state" => "idle").set(f64::from(idle));
        gauge!(POOL, "state" => "busy").set(f64::from(size.saturating_sub(idle)));
    }
    handle.render()
}
