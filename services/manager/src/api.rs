//! HTTP: state as JSON (`/state`), Prometheus (`/metrics`), liveness (`/healthz`), and the
//! authenticated actions (`/api/…`, `Authorization: Bearer $MANAGER_TOKEN`): the only way for
//! another service to act on containers, since only the manager holds the Docker socket.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;
use tokio::time::Instant;

use crate::supervisor::Manager;

fn error(status: actix_web::http::StatusCode, msg: impl Into<String>) -> HttpResponse {
    HttpResponse::build(status).json(json!({"error": msg.into()}))
}

/// Whether a request with this `Authorization` header may act, given the configured token.
fn check_bearer(token: Option<&str>, header: Option<&str>) -> Result<(), actix_web::http::StatusCode> {
    use actix_web::http::StatusCode;
    let Some(token) = token else { return Err(StatusCode::FORBIDDEN) };
    let given = header.and_then(|v| v.strip_prefix("Bearer ")).unwrap_or("");
    if constant_time_eq::constant_time_eq(given.as_bytes(), token.as_bytes()) {
        Ok(())
    } else {
        Err(StatusCode::UNAUTHORIZED)
    }
}

/// None when the request may act; else the answer to give.
fn authorize(m: &Manager, req: &HttpRequest) -> Option<HttpResponse> {
    use actix_web::http::StatusCode;
    let header = req.headers().get("authorization").and_then(|v| v.to_str().ok());
    match check_bearer(m.cfg.token.as_deref(), header) {
        Ok(()) => None,
        Err(StatusCode::FORBIDDEN) => {
            Some(error(StatusCode::FORBIDDEN, "the manager's API is disabled: set MANAGER_TOKEN"))
        }
        Err(_) => Some(
            HttpResponse::Unauthorized()
                .insert_header(("WWW-Authenticate", "Bearer"))
                .json(json!({"error": "missing or wrong bearer token"})),
        ),
    }
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "alive"}))
}

async fn state(m: web::Data<Manager>) -> HttpResponse {
    HttpResponse::Ok().json(m.shared.snapshot(&m.cfg))
}

async fn metrics(m: web::Data<Manager>) -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(m.shared.metrics(&m.cfg))
}

/// A replica by container name, compose number, or id prefix (at least 6 characters).
fn find(m: &Manager, key: &str) -> Option<(String, String)> {
    let g = m.shared.lock();
    g.replicas
        .values()
        .find(|t| {
            t.c.name == key
                || key.parse::<u32>().is_ok_and(|n| n == t.c.number && key.len() < 6)
                || (key.len() >= 6 && t.c.id.starts_with(key))
        })
        .map(|t| (t.c.id.clone(), t.c.name.clone()))
}

async fn replica_action(
    m: web::Data<Manager>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    use actix_web::http::StatusCode;
    if let Some(r) = authorize(&m, &req) {
        return r;
    }
    let (key, action) = path.into_inner();
    let Some((id, name)) = find(&m, &key) else {
        return error(
            StatusCode::NOT_FOUND,
            format!("no replica `{key}` (use a name, a number or an id prefix)"),
        );
    };
    let t0 = Instant::now();
    let result = match action.as_str() {
        "restart" => m.engine.restart(&id, std::time::Duration::from_secs(5)).await,
        "pause" => m.engine.pause(&id).await,
        "unpause" => m.engine.unpause(&id).await,
        "sigstop" => m.engine.signal(&id, "SIGSTOP").await,
        "sigcont" => m.engine.signal(&id, "SIGCONT").await,
        other => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("unknown action `{other}`: restart, pause, unpause, sigstop or sigcont"),
            )
        }
    };
    let outcome = match &result {
        Ok(()) => "ok".to_string(),
        Err(e) => format!("error: {e:#}"),
    };
    m.shared.record(&format!("api:{action}"), &name, "asked through the API", &outcome, t0.elapsed());
    match result {
        Ok(()) => HttpResponse::Ok().json(json!({"replica": name, "action": action, "outcome": "ok"})),
        Err(e) => error(StatusCode::BAD_GATEWAY, format!("docker: {e:#}")),
    }
}

#[derive(Deserialize)]
struct ScaleBody {
    replicas: usize,
}

async fn scale(m: web::Data<Manager>, req: HttpRequest, body: web::Json<ScaleBody>) -> HttpResponse {
    use actix_web::http::StatusCode;
    if let Some(r) = authorize(&m, &req) {
        return r;
    }
    let want = body.replicas;
    if want == 0 || want > 64 {
        return error(StatusCode::BAD_REQUEST, format!("replicas must be between 1 and 64, got {want}"));
    }
    if let Some(a) = &m.cfg.autoscale {
        if want < a.min || want > a.max {
            return error(
                StatusCode::CONFLICT,
                format!("the autoscaler keeps the shop between {} and {} replicas", a.min, a.max),
            );
        }
    }
    match m.scale_to(want, "asked through the API").await {
        Ok(()) => HttpResponse::Ok().json(json!({"replicas": want})),
        Err(e) => error(StatusCode::BAD_GATEWAY, format!("{e:#}")),
    }
}

/// `POST /api/faults` `{"action","target","replicas"?,"down_s"?}`: the control room's buttons
/// (faults.rs).
async fn fault(
    m: web::Data<Manager>,
    req: HttpRequest,
    body: web::Json<crate::faults::FaultRequest>,
) -> HttpResponse {
    if let Some(r) = authorize(&m, &req) {
        return r;
    }
    match m.fault(body.into_inner()).await {
        Ok(done) => HttpResponse::Ok().json(done),
        Err(e) => error(e.status, e.message),
    }
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/state", web::get().to(state))
        .route("/metrics", web::get().to(metrics))
        .route("/api/replicas/{replica}/{action}", web::post().to(replica_action))
        .route("/api/scale", web::post().to(scale))
        .route("/api/faults", web::post().to(fault));
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::StatusCode;

    #[test]
    fn only_the_exact_bearer_token_may_act() {
        let t = Some("0123456789abcdef-token");
        assert_eq!(check_bearer(t, Some("Bearer 0123456789abcdef-token")), Ok(()));
        assert_eq!(check_bearer(t, Some("Bearer 0123456789abcdef-toke")), Err(StatusCode::UNAUTHORIZED));
        assert_eq!(check_bearer(t, Some("0123456789abcdef-token")), Err(StatusCode::UNAUTHORIZED));
        assert_eq!(check_bearer(t, Some("Bearer ")), Err(StatusCode::UNAUTHORIZED));
        assert_eq!(check_bearer(t, None), Err(StatusCode::UNAUTHORIZED));
        // no token configured: the API is off, whatever is sent
        assert_eq!(check_bearer(None, Some("Bearer ")), Err(StatusCode::FORBIDDEN));
        assert_eq!(check_bearer(None, None), Err(StatusCode::FORBIDDEN));
    }
}
