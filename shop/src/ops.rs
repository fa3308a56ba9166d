//! Operations endpoints: liveness, readiness, metrics, and a heartbeat stream for live demos.

use std::time::Duration;

use actix_web::{web, HttpResponse};
use futures_util::stream;
use serde_json::json;

use crate::startup::AppState;

/// How long readiness waits for each backend.
const READY_TIMEOUT: Duration = Duration::from_millis(1000);

async fn healthz(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "alive", "served_by": state.hostname}))
}

/// Both backends answer within the bound, else the reasons.
pub async fn readiness(state: &AppState) -> Result<(), serde_json::Value> {
    let (db, store) = tokio::join!(crate::db::ping(&state.db, READY_TIMEOUT), state.store.ping());
    if db.is_ok() && store.is_ok() {
        Ok(())
    } else {
        Err(json!({
            "database": db.err().unwrap_or_else(|| "ok".into()),
            "session_store": store.err().unwrap_or_else(|| "ok".into()),
        }))
    }
}

async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    match readiness(&state).await {
        Ok(()) => HttpResponse::Ok().json(
            json!({"status": "ready", "served_by": state.hostname, "session_store": state.store.kind()}),
        ),
        Err(reasons) => HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", "1"))
            .json(json!({"status": "not_ready", "served_by": state.hostname, "reasons": reasons})),
    }
}

async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let pool = crate::db::pool_stats(&state.db);
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(crate::metrics::render(pool))
}

/// One `data: {"status":"OK"}` event per second while ready (`UNAVAILABLE` with reasons when not).
async fn heartbeat(state: web::Data<AppState>) -> HttpResponse {
    let ticks = stream::unfold((state, true), |(state, first)| async move {
        if !first {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let event = match readiness(&state).await {
            Ok(()) => json!({"status": "OK", "served_by": state.hostname}),
            Err(reasons) => json!({"status": "UNAVAILABLE", "served_by": state.hostname, "reasons": reasons}),
        };
        let chunk = web::Bytes::from(format!("data: {event}\n\n"));
        Some((Ok::<_, actix_web::Error>(chunk), (state, false)))
    });
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(ticks)
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .route("/metrics", web::get().to(metrics))
        .route("/heartbeat", web::get().to(heartbeat));
}
