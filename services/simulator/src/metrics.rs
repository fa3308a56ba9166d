//! Request accounting: every request lands in HdrHistograms (overall, per endpoint, per second)
//! with its status, error class and the replica that served it.
//!
//! Latency is recorded in microseconds from the request's *intended* start (see
//! [`crate::http::Req::intended`]), which is what keeps the open load model free of coordinated
//! omission.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Highest latency a histogram tracks (values above are clamped): 5 minutes in µs.
const MAX_LATENCY_US: u64 = 300_000_000;

/// What went wrong with a request — or, for [`ErrorClass::ContentViolation`], with what a response
/// said. 4xx answers the journey expects (e.g. "over stock") are counted but are not errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorClass {
    Network,
    Timeout,
    #[serde(rename = "4xx-expected")]
    Expected4xx,
    #[serde(rename = "4xx-unexpected")]
    Unexpected4xx,
    #[serde(rename = "5xx")]
    Server5xx,
    ContentViolation,
}

impl ErrorClass {
    pub const ALL: [ErrorClass; 6] = [
        ErrorClass::Network,
        ErrorClass::Timeout,
        ErrorClass::Expected4xx,
        ErrorClass::Unexpected4xx,
        ErrorClass::Server5xx,
        ErrorClass::ContentViolation,
    ];

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn name(self) -> &'static str {
        match self {
            ErrorClass::Network => "network",
            ErrorClass::Timeout => "timeout",
            ErrorClass::Expected4xx => "4xx-expected",
            ErrorClass::Unexpected4xx => "4xx-unexpected",
            ErrorClass::Server5xx => "5xx",
            ErrorClass::ContentViolation => "content-violation",
        }
    }

    /// Whether this class is a failure (4xx the journey expects is not).
    pub fn is_error(self) -> bool {
        self != ErrorClass::Expected4xx
    }
}

/// Counts by error class, indexed by [`ErrorClass::index`].
pub type ClassCounts = [u64; 6];

/// 3 significant digits over 1 µs .. 5 min: ~0.1 % resolution.
#[allow(clippy::expect_used)] // constant, valid bounds: this cannot fail (a test proves it)
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("constant histogram bounds are valid")
}

fn record_us(h: &mut Histogram<u64>, d: Duration) {
    let us = (d.as_micros() as u64).clamp(1, MAX_LATENCY_US);
    h.saturating_record(us);
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Percentiles {
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

pub fn percentiles(h: &Histogram<u64>) -> Percentiles {
    if h.is_empty() {
        return Percentiles::default();
    }
    let ms = |us: u64| us as f64 / 1000.0;
    Percentiles {
        p50_ms: ms(h.value_at_quantile(0.50)),
        p90_ms: ms(h.value_at_quantile(0.90)),
        p99_ms: ms(h.value_at_quantile(0.99)),
        p999_ms: ms(h.value_at_quantile(0.999)),
        max_ms: ms(h.max()),
        mean_ms: h.mean() / 1000.0,
    }
}

/// One finished request, as the recorder needs it.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Route template, e.g. `GET /api/products/{id}`.
    pub endpoint: &'static str,
    /// HTTP status, `None` when no response came back.
    pub status: Option<u16>,
    pub latency: Duration,
    /// `X-Served-By` of the response.
    pub served_by: Option<String>,
    /// `None` = success.
    pub class: Option<ErrorClass>,
    pub finished: Instant,
}

#[derive(Debug, Clone)]
pub struct EndpointStats {
    pub count: u64,
    pub ok: u64,
    pub errors: ClassCounts,
    pub statuses: BTreeMap<String, u64>,
    pub hist: Histogram<u64>,
}

impl Default for EndpointStats {
    fn default() -> Self {
        EndpointStats { count: 0, ok: 0, errors: [0; 6], statuses: BTreeMap::new(), hist: new_histogram() }
    }
}

/// One second of the timeline.
#[derive(Debug, Clone)]
pub struct Second {
    pub ok: u64,
    pub errors: ClassCounts,
    pub hist: Histogram<u64>,
    pub replicas: BTreeMap<String, u64>,
    /// Shoppers busy in a journey when the second was closed (sampled by the progress task).
    pub active_shoppers: u64,
}

impl Default for Second {
    fn default() -> Self {
        Second { ok: 0, errors: [0; 6], hist: new_histogram(), replicas: BTreeMap::new(), active_shoppers: 0 }
    }
}

impl Second {
    pub fn requests(&self) -> u64 {
        // Content violations are findings about a response, not extra requests.
        self.ok + self.errors.iter().sum::<u64>() - self.errors[ErrorClass::ContentViolation.index()]
    }

    /// Failed requests and findings (expected 4xx excluded).
    pub fn error_total(&self) -> u64 {
        ErrorClass::ALL.iter().filter(|c| c.is_error()).map(|c| self.errors[c.index()]).sum()
    }
}

/// Which part of the run a request belongs to: the load itself, or the final verification of
/// every account after the load stopped (kept out of the timeline and the load figures).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Load,
    Verify,
}

#[derive(Debug)]
pub struct Recorder {
    pub start: Instant,
    pub seconds: Vec<Second>,
    pub endpoints: BTreeMap<&'static str, EndpointStats>,
    pub overall: Histogram<u64>,
    pub totals: ClassCounts,
    pub ok: u64,
    pub replicas: BTreeMap<String, u64>,
    pub verify_endpoints: BTreeMap<&'static str, EndpointStats>,
}

impl Recorder {
    pub fn new(start: Instant) -> Self {
        Recorder {
            start,
            seconds: Vec::new(),
            endpoints: BTreeMap::new(),
            overall: new_histogram(),
            totals: [0; 6],
            ok: 0,
            replicas: BTreeMap::new(),
            verify_endpoints: BTreeMap::new(),
        }
    }

    fn second_mut(&mut self, at: Instant) -> &mut Second {
        let idx = at.saturating_duration_since(self.start).as_secs() as usize;
        if self.seconds.len() <= idx {
            self.seconds.resize_with(idx + 1, Second::default);
        }
        &mut self.seconds[idx]
    }

    pub fn record(&mut self, phase: Phase, s: &Sample) {
        let status_key = s.status.map(|c| c.to_string()).unwrap_or_else(|| "none".into());
        let stats = match phase {
            Phase::Load => self.endpoints.entry(s.endpoint).or_default(),
            Phase::Verify => self.verify_endpoints.entry(s.endpoint).or_default(),
        };
        stats.count += 1;
        *stats.statuses.entry(status_key).or_default() += 1;
        record_us(&mut stats.hist, s.latency);
        match s.class {
            None => stats.ok += 1,
            Some(c) => stats.errors[c.index()] += 1,
        }
        if phase == Phase::Verify {
            return;
        }
        record_us(&mut self.overall, s.latency);
        match s.class {
            None => self.ok += 1,
            Some(c) => self.totals[c.index()] += 1,
        }
        let replica = s.served_by.clone().unwrap_or_else(|| "(none)".into());
        if s.status.is_some() {
            *self.replicas.entry(replica.clone()).or_default() += 1;
        }
        let sec = self.second_mut(s.finished);
        record_us(&mut sec.hist, s.latency);
        match s.class {
            None => sec.ok += 1,
            Some(c) => sec.errors[c.index()] += 1,
        }
        if s.status.is_some() {
            *sec.replicas.entry(replica).or_default() += 1;
        }
    }

    /// A failed content check, charged to the endpoint whose response revealed it.
    pub fn violation(&mut self, phase: Phase, endpoint: &'static str, at: Instant) {
        let i = ErrorClass::ContentViolation.index();
        match phase {
            Phase::Load => {
                self.endpoints.entry(endpoint).or_default().errors[i] += 1;
                self.totals[i] += 1;
                self.second_mut(at).errors[i] += 1;
            }
            Phase::Verify => self.verify_endpoints.entry(endpoint).or_default().errors[i] += 1,
        }
    }

    /// Shoppers busy at the end of second `idx` (sampled once per second by the progress task).
    pub fn set_active(&mut self, idx: usize, active: u64) {
        if self.seconds.len() <= idx {
            self.seconds.resize_with(idx + 1, Second::default);
        }
        self.seconds[idx].active_shoppers = active;
    }

    pub fn requests(&self) -> u64 {
        self.ok + self.totals.iter().sum::<u64>() - self.totals[ErrorClass::ContentViolation.index()]
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn sample(endpoint: &'static str, class: Option<ErrorClass>, ms: u64, at: Instant) -> Sample {
        Sample {
            endpoint,
            status: Some(if class.is_none() { 200 } else { 503 }),
            latency: Duration::from_millis(ms),
            served_by: Some("shop-1".into()),
            class,
            finished: at,
        }
    }

    #[test]
    fn seconds_endpoints_and_totals_add_up() {
        let t0 = Instant::now();
        let mut r = Recorder::new(t0);
        r.record(Phase::Load, &sample("GET /api/cart", None, 10, t0));
        r.record(Phase::Load, &sample("GET /api/cart", Some(ErrorClass::Server5xx), 30, t0));
        r.record(Phase::Load, &sample("GET /api/me", None, 20, t0 + Duration::from_millis(2500)));
        r.violation(Phase::Load, "GET /api/cart", t0 + Duration::from_millis(2600));
        r.record(Phase::Verify, &sample("GET /api/orders", None, 5, t0 + Duration::from_secs(9)));

        assert_eq!(r.seconds.len(), 3, "verify-phase requests stay out of the timeline");
        assert_eq!(r.seconds[0].ok, 1);
        assert_eq!(r.seconds[0].errors[ErrorClass::Server5xx.index()], 1);
        assert_eq!(r.seconds[0].requests(), 2);
        assert_eq!(r.seconds[1].requests(), 0);
        assert_eq!(r.seconds[2].requests(), 1, "a violation is not a request");
        assert_eq!(r.seconds[2].error_total(), 1);
        assert_eq!(r.requests(), 3);
        assert_eq!(r.endpoints["GET /api/cart"].count, 2);
        assert_eq!(r.endpoints["GET /api/cart"].errors[ErrorClass::ContentViolation.index()], 1);
        assert_eq!(r.verify_endpoints["GET /api/orders"].count, 1);
        assert_eq!(r.replicas["shop-1"], 3);
        let p = percentiles(&r.endpoints["GET /api/cart"].hist);
        assert!((p.p50_ms - 10.0).abs() < 0.1, "{p:?}");
        assert!((p.max_ms - 30.0).abs() < 0.1, "{p:?}");
    }

    #[test]
    fn expected_4xx_is_not_an_error() {
        let t0 = Instant::now();
        let mut s = Second::default();
        s.errors[ErrorClass::Expected4xx.index()] = 4;
        s.errors[ErrorClass::Timeout.index()] = 1;
        assert_eq!(s.error_total(), 1);
        assert_eq!(s.requests(), 5);
        let _ = t0;
    }
}
