//! The live report to the control room (`services/controlroom`): once a second, beside the
//! progress line, a `POST <url>/api/simulator` with the run's totals, and a last one with
//! `done: true` when the run is over. The run never waits for it: each report is a task of its own
//! with a 1 s timeout, a report that fails is dropped, and only the first failure is logged.

use std::sync::{
    atomic::{AtomicBool, Ordering},
    Arc,
};
use std::time::Duration;

use serde::Serialize;

use crate::{
    metrics::{ErrorClass, Recorder},
    state::{lock, Shared},
};

/// How long one report may take.
const TIMEOUT: Duration = Duration::from_secs(1);

/// Where to report (`--control-room` / `DISTSHOP_CONTROL_URL`) and the operator token
/// (`DISTSHOP_CONTROL_TOKEN`).
#[derive(Debug, Clone, PartialEq)]
pub struct ControlRoomConfig {
    pub url: String,
    pub token: Option<String>,
}

/// One report, as the control room reads it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LiveReport {
    /// The report folder's name (or the run id): which run this is.
    pub run: String,
    pub elapsed_s: f64,
    pub requests: u64,
    /// Requests that failed (no answer, 5xx, unexpected 4xx, …), not counting content violations.
    pub errors: u64,
    /// Content violations found (lost sessions, carts, orders, …).
    pub violations: u64,
    /// Answers checked against the shoppers' models.
    pub checks: u64,
    /// Requests in the last whole second.
    pub rps: f64,
    pub done: bool,
}

/// Requests that failed, over the whole run (the content violations are counted apart).
pub fn error_total(rec: &Recorder) -> u64 {
    ErrorClass::ALL
        .iter()
        .filter(|c| c.is_error() && **c != ErrorClass::ContentViolation)
        .map(|c| rec.totals[c.index()])
        .sum()
}

impl LiveReport {
    /// The run's totals now; `second` is the last whole second (its requests are the rate).
    pub fn sample(sh: &Shared, run: &str, second: usize, done: bool) -> Self {
        let rec = lock(&sh.recorder);
        let rps = rec.seconds.get(second).map(|s| s.requests()).unwrap_or(0);
        let (requests, errors) = (rec.requests(), error_total(&rec));
        drop(rec);
        LiveReport {
            run: run.to_string(),
            elapsed_s: (sh.start.elapsed().as_secs_f64() * 10.0).round() / 10.0,
            requests,
            errors,
            violations: lock(&sh.findings).total(),
            checks: sh.checked.load(Ordering::Relaxed),
            rps: rps as f64,
            done,
        }
    }
}

/// Sends the reports. Cheap to clone.
#[derive(Clone)]
pub struct ControlRoom {
    client: reqwest::Client,
    endpoint: String,
    token: Option<String>,
    failed_once: Arc<AtomicBool>,
}

impl ControlRoom {
    pub fn new(cfg: &ControlRoomConfig) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("distshop-sim/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(ControlRoom {
            client,
            endpoint: format!("{}/api/simulator", cfg.url.trim_end_matches('/')),
            token: cfg.token.clone(),
            failed_once: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Send `report` in a task of its own (at most 1 s); the handle may be awaited or dropped.
    pub fn send(&self, report: LiveReport) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let mut rb = me.client.post(&me.endpoint).json(&report);
            if let Some(t) = &me.token {
                rb = rb.bearer_auth(t);
            }
            let outcome = match rb.send().await {
                Ok(r) if r.status().is_success() => Ok(()),
                Ok(r) => Err(format!("answered {}", r.status())),
                Err(e) => Err(e.to_string()),
            };
            if let Err(e) = outcome {
                if !me.failed_once.swap(true, Ordering::Relaxed) {
                    eprintln!(
                        "distshop-sim: live report to {} failed: {e} (the run goes on; further failures are not logged)",
                        me.endpoint
                    );
                }
            }
        })
    }

    /// The last report: sent and waited for (at most about 1 s), so it leaves before the process.
    pub async fn finish(&self, report: LiveReport) {
        let _ = tokio::time::timeout(TIMEOUT + Duration::from_millis(200), self.send(report)).await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn the_report_has_the_fields_the_control_room_reads() {
        let r = LiveReport {
            run: "20261204-225500".into(),
            elapsed_s: 12.0,
            requests: 1234,
            errors: 0,
            violations: 0,
            checks: 5678,
            rps: 95.5,
            done: false,
        };
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            serde_json::json!({"run": "20261204-225500", "elapsed_s": 12.0, "requests": 1234, "errors": 0,
                "violations": 0, "checks": 5678, "rps": 95.5, "done": false})
        );
    }

    #[tokio::test]
    async fn a_report_is_a_json_post_with_the_bearer_token() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            while !String::from_utf8_lossy(&buf).contains("\"done\"") {
                let n = sock.read(&mut chunk).await.unwrap();
                assert!(n > 0, "connection closed early");
                buf.extend_from_slice(&chunk[..n]);
            }
            sock.write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n").await.unwrap();
            String::from_utf8(buf).unwrap()
        });
        let room = ControlRoom::new(&ControlRoomConfig { url, token: Some("sekret".into()) }).unwrap();
        let report = LiveReport {
            run: "r1".into(),
            elapsed_s: 1.0,
            requests: 2,
            errors: 0,
            violations: 0,
            checks: 2,
            rps: 2.0,
            done: false,
        };
        room.finish(report).await;
        let request = server.await.unwrap();
        let (head, body) = request.split_once("\r\n\r\n").unwrap();
        let head = head.to_ascii_lowercase();
        assert!(head.starts_with("post /api/simulator http/1.1"), "{head}");
        assert!(head.contains("authorization: bearer sekret"), "{head}");
        assert!(head.contains("content-type: application/json"), "{head}");
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(
            (v["run"].as_str(), v["checks"].as_u64(), v["done"].as_bool()),
            (Some("r1"), Some(2), Some(false))
        );
        assert!(!room.failed_once.load(Ordering::Relaxed));
    }

    #[tokio::test]
    async fn a_control_room_that_is_not_there_costs_at_most_a_second() {
        // a port nothing listens on (bound, then dropped)
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let cfg = ControlRoomConfig { url: format!("http://127.0.0.1:{port}/"), token: Some("t".into()) };
        let room = ControlRoom::new(&cfg).unwrap();
        assert_eq!(room.endpoint, format!("http://127.0.0.1:{port}/api/simulator"));
        let report = LiveReport {
            run: "r".into(),
            elapsed_s: 0.0,
            requests: 0,
            errors: 0,
            violations: 0,
            checks: 0,
            rps: 0.0,
            done: true,
        };
        let t0 = std::time::Instant::now();
        room.finish(report.clone()).await;
        room.finish(report).await;
        assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
        assert!(room.failed_once.load(Ordering::Relaxed));
    }
}
