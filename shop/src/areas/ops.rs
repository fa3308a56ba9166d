//! Operations endpoints: liveness, readiness, metrics, and a heartbeat stream for live demos.

use std::time::Duration;

use actix_web::{web, HttpResponse};
use futures_util::stream;
use serde_json::json;

use crate::state::AppState;

/// How long readiness waits for each backend.
const READY_TIMEOUT: Duration = Duration::from_millis(1000);

async fn healthz(state: web::Data<AppState>) -> HttpResponse {
    // the host too: a replica's name and its container id, side by side
    HttpResponse::Ok().json(json!({"status": "alive", "served_by": state.replica_name, "host": state.host}))
}

/// Both backends answer within the bound, else the reasons.
pub async fn readiness(state: &AppState) -> Result<(), serde_json::Value> {
    let (db, store) = tokio::join!(crate::infra::db::ping(&state.db, READY_TIMEOUT), state.store.ping());
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
            json!({"status": "ready", "served_by": state.replica_name, "session_store": state.store.kind()}),
        ),
        Err(reasons) => HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", "1"))
            .json(json!({"status": "not_ready", "served_by": state.replica_name, "reasons": reasons})),
    }
}

async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let pool = crate::infra::db::pool_stats(&state.db);
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(crate::infra::metrics::render(pool))
}

/// Beat interval bounds for `/heartbeat?interval_ms=N` (default 1000).
const BEAT_DEFAULT_MS: u64 = 1000;
const BEAT_MIN_MS: u64 = 100;
const BEAT_MAX_MS: u64 = 10_000;

/// Heartbeat streams one replica serves at once: the manager holds one, a demo viewer or two more.
/// Each stream checks the backends every beat, so the number is capped (more: 503).
pub const MAX_BEAT_STREAMS: usize = 8;

/// One open heartbeat stream; its slot (in [`AppState::beat_streams`]) is given back when the
/// stream ends or the client leaves.
struct BeatSlot(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl BeatSlot {
    fn take(open: &std::sync::Arc<std::sync::atomic::AtomicUsize>) -> Option<BeatSlot> {
        use std::sync::atomic::Ordering;
        open.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < MAX_BEAT_STREAMS).then_some(n + 1))
            .ok()
            .map(|_| BeatSlot(open.clone()))
    }
}

impl Drop for BeatSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// One heartbeat event; `status` is the first key (the manager's contract).
#[derive(serde::Serialize)]
struct Beat<'a> {
    status: &'static str,
    served_by: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasons: Option<serde_json::Value>,
}

#[derive(serde::Deserialize)]
struct BeatQuery {
    interval_ms: Option<u64>,
}

/// One `data: {"status":"OK", …}` event per interval while ready (`UNAVAILABLE` with reasons when
/// a backend does not answer). The beat keeps its rhythm whatever the backends do: each readiness
/// check is bounded by 80 % of the interval, so a beat that does not come means this process is
/// not running (frozen, stopped, deadlocked), which is what the heartbeat manager acts on, never a
/// slow database.
async fn heartbeat(state: web::Data<AppState>, query: web::Query<BeatQuery>) -> HttpResponse {
    let ms = query.interval_ms.unwrap_or(BEAT_DEFAULT_MS);
    if !(BEAT_MIN_MS..=BEAT_MAX_MS).contains(&ms) {
        return HttpResponse::BadRequest().json(json!({
            "error": format!("interval_ms must be between {BEAT_MIN_MS} and {BEAT_MAX_MS}, got {ms}")
        }));
    }
    let Some(slot) = BeatSlot::take(&state.beat_streams) else {
        return HttpResponse::ServiceUnavailable().insert_header(("Retry-After", "5")).json(json!({
            "error": format!("this replica already serves {MAX_BEAT_STREAMS} heartbeat streams")
        }));
    };
    let period = Duration::from_millis(ms);
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let ticks = stream::unfold((state, ticker, slot), move |(state, mut ticker, slot)| async move {
        ticker.tick().await;
        // the process is stopping: end the stream, so the drain does not wait for it and the
        // manager sees a closed stream (a stop), not silence (a freeze)
        if *state.stopping.borrow() {
            return None;
        }
        let check = tokio::time::timeout(period.mul_f32(0.8), readiness(&state)).await;
        let event = match check {
            Ok(Ok(())) => Beat { status: "OK", served_by: &state.replica_name, reasons: None },
            Ok(Err(reasons)) => {
                Beat { status: "UNAVAILABLE", served_by: &state.replica_name, reasons: Some(reasons) }
            }
            Err(_) => Beat {
                status: "UNAVAILABLE",
                served_by: &state.replica_name,
                reasons: Some(json!({"readiness": "the backend checks took longer than the beat interval"})),
            },
        };
        // a struct, not json!: its fields serialise in this order, `status` first
        let event = serde_json::to_string(&event).unwrap_or_else(|_| r#"{"status":"UNAVAILABLE"}"#.into());
        let chunk = web::Bytes::from(format!("data: {event}\n\n"));
        Some((Ok::<_, actix_web::Error>(chunk), (state, ticker, slot)))
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

/// `SHOP_FAULT=http500`: every request but the probes (`/healthz`, `/readyz`, `/heartbeat`,
/// `/metrics`) answers 500, as a bad deploy would that still passes its health checks. The
/// heartbeat manager must notice from the replica's error share and replace it.
pub async fn injected_fault(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<actix_web::dev::ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    // installed only when SHOP_FAULT=http500 (startup.rs)
    let probe = matches!(req.path(), "/healthz" | "/readyz" | "/heartbeat" | "/metrics");
    if !probe {
        let r =
            HttpResponse::InternalServerError().json(json!({"error": "injected fault (SHOP_FAULT=http500)"}));
        return Ok(req.into_response(r));
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}
