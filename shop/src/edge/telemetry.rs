//! Logging and the per-request envelope: request id, `X-Served-By`, access log line, metrics.
//!
//! The request id is the incoming `X-Request-Id` (nginx sets `$request_id`) or a fresh UUID. It is
//! a field of the request's tracing span, so every log line of the request carries it, and it is
//! echoed in the response together with the replica's name (`X-Served-By: shop-2`, see
//! [`crate::replica`]) — which is what lets a student see which replica answered.

use std::time::Instant;

use actix_web::{
    body::{BoxBody, MessageBody},
    dev::{ServiceRequest, ServiceResponse},
    http::header::{HeaderName, HeaderValue},
    middleware::Next,
    Error,
};
use tracing::Instrument;
use tracing_subscriber::{layer::SubscriberExt, util::SubscriberInitExt, EnvFilter};

pub const REQUEST_ID: &str = "x-request-id";
pub const SERVED_BY: &str = "x-served-by";

/// Install the global subscriber: JSON lines (containers) or readable text. `RUST_LOG` overrides
/// the default level. Safe to call more than once (later calls install nothing).
///
/// Lines are written by a background thread through a buffer (`tracing-appender`), so a request
/// never waits for stdout (through Docker's log driver a write per line cost more than the
/// request); under a burst that outruns stdout, lines are dropped rather than requests slowed.
/// Keep the returned guard until the process ends: dropping it writes out what is queued.
#[must_use = "dropping the guard stops log output"]
pub fn init(json: bool) -> tracing_appender::non_blocking::WorkerGuard {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let registry = tracing_subscriber::registry().with(filter);
    let (writer, guard) = tracing_appender::non_blocking(std::io::BufWriter::new(std::io::stdout()));
    let _ = if json {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(writer)
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false),
            )
            .try_init()
    } else {
        registry.with(tracing_subscriber::fmt::layer().with_writer(writer).with_target(false)).try_init()
    };
    guard
}

fn valid_request_id(v: &HeaderValue) -> Option<String> {
    valid_request_id_str(v).map(str::to_string)
}

fn valid_request_id_str(v: &HeaderValue) -> Option<&str> {
    let s = v.to_str().ok()?;
    (!s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_graphic())).then_some(s)
}

/// The request's own `X-Request-Id` (nginx's, or the client's), when it is one this envelope
/// accepts; the id the envelope minted for a request without one is not a header.
pub fn incoming_request_id(req: &actix_web::HttpRequest) -> Option<&str> {
    req.headers().get(REQUEST_ID).and_then(valid_request_id_str)
}

/// Middleware: span with the request id, response headers, access log, request metrics.
pub async fn envelope(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let started = Instant::now();
    let request_id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(valid_request_id)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let served_by = req
        .app_data::<actix_web::web::Data<crate::state::AppState>>()
        .map(|s| s.replica_name.clone())
        .unwrap_or_default();
    // a label from a fixed set: a client inventing methods must not invent metric series
    let method = if crate::edge::security::KNOWN_METHODS.contains(req.method()) {
        req.method().to_string()
    } else {
        "OTHER".to_string()
    };
    let path = req.path().to_string();
    let span = tracing::info_span!("request", request_id = %request_id, method = %method, path = %path);
    // Inner middlewares answer errors as responses, so an `Err` here is actix's own and rare.
    let mut res = next.call(req).instrument(span.clone()).await?.map_into_boxed_body();
    let status = res.status().as_u16();
    let route = res.request().match_pattern().unwrap_or_else(|| "<unmatched>".into());
    let elapsed = started.elapsed();
    crate::infra::metrics::record_request(&method, &route, status, elapsed.as_secs_f64());
    let headers = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        headers.insert(HeaderName::from_static(REQUEST_ID), v);
    }
    if let Ok(v) = HeaderValue::from_str(&served_by) {
        headers.insert(HeaderName::from_static(SERVED_BY), v);
    }
    span.in_scope(|| {
        if status >= 500 {
            tracing::warn!(status, route = %route, latency_ms = elapsed.as_millis() as u64, "request failed");
        } else {
            tracing::info!(status, route = %route, latency_ms = elapsed.as_millis() as u64, "request finished");
        }
    });
    Ok(res)
}
