//! The HTTP side: one shared connection pool, round-robin over the base URLs, one cookie jar per
//! virtual shopper (kept by the simulator, so a shopper's session is exactly the cookie it was
//! last given — nothing shared between shoppers).

use std::{
    sync::atomic::{AtomicUsize, Ordering},
    time::{Duration, Instant},
};

use reqwest::{header::HeaderMap, Method};
use serde_json::Value;

pub const SESSION_COOKIE: &str = "distshop_session";

/// The cookies of one shopper (the shop only uses its session cookie).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Jar {
    pub session: Option<String>,
}

impl Jar {
    /// Apply the `Set-Cookie` headers of a response.
    pub fn update(&mut self, headers: &HeaderMap) {
        for v in headers.get_all(reqwest::header::SET_COOKIE) {
            let Ok(s) = v.to_str() else { continue };
            self.apply(s);
        }
    }

    pub fn apply(&mut self, set_cookie: &str) {
        let mut parts = set_cookie.split(';').map(str::trim);
        let Some((name, value)) = parts.next().and_then(|nv| nv.split_once('=')) else { return };
        if name != SESSION_COOKIE {
            return;
        }
        let expired = parts.any(|a| {
            let a = a.to_ascii_lowercase();
            a == "max-age=0" || a.starts_with("max-age=-")
        });
        self.session = (!expired && !value.is_empty()).then(|| value.to_string());
    }

    pub fn header(&self) -> Option<String> {
        self.session.as_ref().map(|v| format!("{SESSION_COOKIE}={v}"))
    }
}

/// One request to make.
#[derive(Debug, Clone)]
pub struct Req {
    pub method: Method,
    /// Route template for the statistics, e.g. `GET /api/orders/{id}`.
    pub endpoint: &'static str,
    pub path: String,
    pub body: Option<Value>,
    pub idempotency_key: Option<String>,
    /// Send an `X-Request-Id` of our own (the default), or let the proxy mint one (nginx keys a
    /// cart add without an `Idempotency-Key` by the id *it* made; the cluster suite looks for it).
    pub request_id: bool,
    /// When the request *should* have started. Latency is measured from here, so time spent
    /// waiting to send (open model backlog, a starved runtime) counts — no coordinated omission.
    pub intended: Instant,
}

impl Req {
    pub fn new(method: Method, endpoint: &'static str, path: impl Into<String>) -> Self {
        Req {
            method,
            endpoint,
            path: path.into(),
            body: None,
            idempotency_key: None,
            request_id: true,
            intended: Instant::now(),
        }
    }

    pub fn get(endpoint: &'static str, path: impl Into<String>) -> Self {
        Req::new(Method::GET, endpoint, path)
    }

    pub fn post(endpoint: &'static str, path: impl Into<String>, body: Value) -> Self {
        Req::new(Method::POST, endpoint, path).body(body)
    }

    pub fn put(endpoint: &'static str, path: impl Into<String>, body: Value) -> Self {
        Req::new(Method::PUT, endpoint, path).body(body)
    }

    pub fn delete(endpoint: &'static str, path: impl Into<String>) -> Self {
        Req::new(Method::DELETE, endpoint, path)
    }

    pub fn body(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }

    pub fn key(mut self, key: &str) -> Self {
        self.idempotency_key = Some(key.to_string());
        self
    }

    /// No `X-Request-Id` from us: the proxy's own id comes back in the answer.
    pub fn without_request_id(mut self) -> Self {
        self.request_id = false;
        self
    }

    pub fn intended(mut self, at: Instant) -> Self {
        self.intended = at;
        self
    }
}

/// Why no response came back.
#[derive(Debug, Clone, PartialEq)]
pub enum Transport {
    Timeout,
    /// The connection could not be made: the request was certainly not delivered.
    Connect(String),
    /// The connection broke after the request may have been sent.
    Network(String),
}

/// What came back (or did not).
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: Option<u16>,
    /// The JSON body; `Null` when there was none or it was not JSON.
    pub body: Value,
    /// Set when a body came back but was not JSON.
    pub body_error: Option<String>,
    pub served_by: Option<String>,
    pub request_id: Option<String>,
    pub transport: Option<Transport>,
    /// `Retry-After` in seconds.
    pub retry_after: Option<u64>,
    pub latency: Duration,
    pub finished: Instant,
}

impl Reply {
    pub fn is(&self, code: u16) -> bool {
        self.status == Some(code)
    }

    pub fn success(&self) -> bool {
        matches!(self.status, Some(200..=299))
    }

    /// No answer or a 5xx: the request may or may not have been applied. A refused connection
    /// is not ambiguous (nothing was sent).
    pub fn ambiguous(&self) -> bool {
        matches!(self.transport, Some(Transport::Timeout | Transport::Network(_)))
            || matches!(self.status, Some(500..=599))
    }

    /// Not delivered at all: safe to retry even when not idempotent.
    pub fn undelivered(&self) -> bool {
        matches!(self.transport, Some(Transport::Connect(_)))
    }

    /// Worth retrying: ambiguous (for idempotent requests), not delivered, or throttled.
    pub fn retryable(&self) -> bool {
        self.ambiguous() || self.undelivered() || self.is(429)
    }

    /// `error.code` of an error body.
    pub fn error_code(&self) -> Option<&str> {
        self.body.pointer("/error/code").and_then(Value::as_str)
    }

    pub fn describe(&self) -> String {
        match (&self.transport, self.status) {
            (Some(Transport::Timeout), _) => "timeout".into(),
            (Some(Transport::Network(e)), _) => format!("network error: {e}"),
            (Some(Transport::Connect(e)), _) => format!("cannot connect: {e}"),
            (None, Some(s)) => match self.error_code() {
                Some(c) => format!("{s} {c}"),
                None => s.to_string(),
            },
            (None, None) => "no answer".into(),
        }
    }
}

pub struct Http {
    client: reqwest::Client,
    bases: Vec<String>,
    next: AtomicUsize,
    timeout: Duration,
}

fn root_cause(e: &reqwest::Error) -> String {
    let mut msg = e.to_string();
    let mut src: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(s) = src {
        msg = s.to_string();
        src = s.source();
    }
    msg
}

impl Http {
    pub fn new(bases: Vec<String>, timeout: Duration) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(2).min(timeout))
            .pool_idle_timeout(Duration::from_secs(30))
            .user_agent(concat!("distshop-sim/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Http { client, bases, next: AtomicUsize::new(0), timeout })
    }

    pub fn bases(&self) -> &[String] {
        &self.bases
    }

    /// Send one request (no retry), updating the shopper's cookie jar from the answer.
    pub async fn send(&self, jar: &mut Jar, req: &Req) -> Reply {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.bases.len().max(1);
        let base = self.bases.get(i).map(String::as_str).unwrap_or("");
        let request_id = req.request_id.then(|| format!("sim-{}", uuid::Uuid::new_v4().simple()));
        let mut rb = self
            .client
            .request(req.method.clone(), format!("{base}{}", req.path))
            .timeout(self.timeout)
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(id) = &request_id {
            rb = rb.header("X-Request-Id", id);
        }
        if let Some(c) = jar.header() {
            rb = rb.header(reqwest::header::COOKIE, c);
        }
        if let Some(k) = &req.idempotency_key {
            rb = rb.header("Idempotency-Key", k);
        }
        if let Some(b) = &req.body {
            rb = rb.json(b);
        }
        let mut reply = Reply {
            status: None,
            body: Value::Null,
            body_error: None,
            served_by: None,
            request_id,
            transport: None,
            retry_after: None,
            latency: Duration::ZERO,
            finished: Instant::now(),
        };
        let transport = |e: &reqwest::Error| {
            if e.is_timeout() {
                Transport::Timeout
            } else if e.is_connect() {
                Transport::Connect(root_cause(e))
            } else {
                Transport::Network(root_cause(e))
            }
        };
        match rb.send().await {
            Err(e) => reply.transport = Some(transport(&e)),
            Ok(resp) => {
                let h = resp.headers();
                jar.update(h);
                let header = |name: &str| h.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
                reply.served_by = header("x-served-by");
                if let Some(id) = header("x-request-id") {
                    reply.request_id = Some(id);
                }
                reply.retry_after = header("retry-after").and_then(|v| v.trim().parse().ok());
                let status = resp.status().as_u16();
                match resp.bytes().await {
                    Err(e) => reply.transport = Some(transport(&e)),
                    Ok(bytes) => {
                        reply.status = Some(status);
                        if !bytes.is_empty() {
                            match serde_json::from_slice(&bytes) {
                                Ok(v) => reply.body = v,
                                Err(e) => reply.body_error = Some(format!("body is not JSON: {e}")),
                            }
                        }
                    }
                }
            }
        }
        reply.finished = Instant::now();
        reply.latency = reply.finished.saturating_duration_since(req.intended);
        reply
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn jar_keeps_only_the_session_cookie_and_honours_expiry() {
        let mut j = Jar::default();
        j.apply("other=1; Path=/");
        assert_eq!(j.session, None);
        j.apply("distshop_session=abc.sig; Path=/; HttpOnly; SameSite=Lax");
        assert_eq!(j.header().unwrap(), "distshop_session=abc.sig");
        j.apply("distshop_session=def.sig; Path=/; Max-Age=86400");
        assert_eq!(j.session.as_deref(), Some("def.sig"), "rotation replaces the id");
        j.apply("distshop_session=; Path=/; Max-Age=0");
        assert_eq!(j.session, None);
    }

    #[test]
    fn ambiguity_and_retryability() {
        let mut r = Reply {
            status: Some(503),
            body: serde_json::json!({"error": {"code": "unavailable", "message": "x"}}),
            body_error: None,
            served_by: None,
            request_id: None,
            transport: None,
            retry_after: Some(1),
            latency: Duration::ZERO,
            finished: Instant::now(),
        };
        assert!(r.ambiguous() && r.retryable());
        assert_eq!(r.describe(), "503 unavailable");
        r.status = Some(429);
        assert!(!r.ambiguous() && r.retryable());
        r.status = Some(422);
        assert!(!r.retryable());
        r.status = None;
        r.transport = Some(Transport::Timeout);
        assert!(r.ambiguous());
        assert_eq!(r.describe(), "timeout");
        r.transport = Some(Transport::Connect("refused".into()));
        assert!(!r.ambiguous() && r.undelivered() && r.retryable(), "a refused connection sent nothing");
    }
}
