//! The routes: the page (server-rendered, works without JavaScript), its live parts (SSE, the
//! chart's data), the JSON API the tests use, the operator's login and the fault forms.

use std::{sync::Arc, time::Duration};

use actix_web::{
    cookie::Cookie,
    http::{header, StatusCode},
    web, HttpRequest, HttpResponse,
};
use futures_util::stream;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::{
    auth::{self, Caller},
    faults::{self, FaultRequest},
    logs,
    state::AppState,
    status::{self, SimRun, Status},
};

type App = web::Data<Arc<AppState>>;

pub fn templates() -> anyhow::Result<tera::Tera> {
    let mut t = tera::Tera::default();
    t.add_raw_templates([
        ("tiles.html", include_str!("../templates/tiles.html")),
        ("index.html", include_str!("../templates/index.html")),
    ])?;
    t.autoescape_on(vec![".html"]);
    Ok(t)
}

const CSS: &str = include_str!("../static/app.css");
const JS: &str = include_str!("../static/app.js");

fn error(status: StatusCode, msg: impl Into<String>) -> HttpResponse {
    HttpResponse::build(status).json(json!({"error": msg.into()}))
}

fn unauthorized() -> HttpResponse {
    HttpResponse::Unauthorized()
        .insert_header(("WWW-Authenticate", "Bearer"))
        .json(json!({"error": "operator token required: Authorization: Bearer <CONTROL_TOKEN>"}))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(page))
        .route("/healthz", web::get().to(healthz))
        .route("/static/app.css", web::get().to(|| async { asset("text/css; charset=utf-8", CSS) }))
        .route("/static/app.js", web::get().to(|| async { asset("text/javascript; charset=utf-8", JS) }))
        .route("/tiles", web::get().to(tiles))
        .route("/login", web::post().to(login))
        .route("/logout", web::post().to(logout))
        .route("/faults", web::post().to(fault_form))
        .route("/api/status", web::get().to(api_status))
        .route("/api/events", web::get().to(events))
        .route("/api/chart", web::get().to(chart))
        .route("/api/logs", web::get().to(api_logs))
        .route("/api/faults", web::post().to(api_faults))
        .route("/api/faults", web::get().to(api_fault_list))
        .route("/api/simulator", web::post().to(api_simulator));
}

fn asset(ct: &'static str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ct)
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .body(body)
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "alive"}))
}

// ------------------------------------------------------------------------ JSON API

async fn api_status(app: App) -> HttpResponse {
    HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-store")).json(&*app.status().await)
}

async fn api_fault_list(app: App) -> HttpResponse {
    HttpResponse::Ok().json(&app.status().await.faults)
}

#[derive(Deserialize)]
struct LogQuery {
    request_id: Option<String>,
}

/// Runs a search off the async workers. Err: the message for a 400 or 503.
async fn search_logs(app: &AppState, id: &str) -> Result<logs::Found, (StatusCode, String)> {
    if !logs::valid_request_id(id) {
        return Err((
            StatusCode::BAD_REQUEST,
            format!("request_id: {} to 128 letters, digits and . _ : -", logs::MIN_ID_LEN),
        ));
    }
    // each search reads up to CONTROL_LOG_SCAN_MB: a room of phones must not keep both cores
    // busy with them during the demo
    let Ok(_permit) = app.searches.try_acquire() else {
        return Err((
            StatusCode::SERVICE_UNAVAILABLE,
            "other searches are running: try again in a moment".into(),
        ));
    };
    let dir = app.settings.log_dir.clone();
    let cap = app.settings.log_scan_bytes;
    let id = id.to_string();
    match web::block(move || logs::search(&dir, &id, cap)).await {
        Ok(Ok(f)) => Ok(f),
        Ok(Err(e)) => Err((StatusCode::SERVICE_UNAVAILABLE, format!("cannot read the central logs: {e}"))),
        Err(_) => Err((StatusCode::SERVICE_UNAVAILABLE, "the log search did not finish".into())),
    }
}

async fn api_logs(app: App, q: web::Query<LogQuery>) -> HttpResponse {
    let id = q.request_id.as_deref().unwrap_or("");
    match search_logs(&app, id).await {
        Ok(f) => HttpResponse::Ok()
            .insert_header(("X-Scanned-Bytes", f.bytes_read.to_string()))
            .insert_header(("X-Scanned-Files", f.files_read.to_string()))
            .insert_header(("X-Truncated", f.truncated.to_string()))
            .json(&f.lines),
        Err((code, msg)) => error(code, msg),
    }
}

async fn api_faults(app: App, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    if !auth::may_act(app.token(), &req, None) {
        return unauthorized();
    }
    let r: FaultRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("expected {{\"action\",\"target\",\"replicas\"?}}: {e}"),
            )
        }
    };
    let (code, answer) = faults::inject(&app, r).await;
    HttpResponse::build(code).json(answer)
}

async fn api_simulator(app: App, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    if !auth::bearer_ok(app.token(), &req) {
        return unauthorized();
    }
    match serde_json::from_slice::<SimRun>(&body) {
        Ok(run) if run.run.len() <= 200 => {
            app.simulator_report(run);
            HttpResponse::NoContent().finish()
        }
        Ok(_) => error(StatusCode::BAD_REQUEST, "run: at most 200 characters"),
        Err(e) => error(StatusCode::BAD_REQUEST, format!("expected the simulator's report: {e}")),
    }
}

/// The chart's data: the last 5 minutes of throughput, errors and p99 every 2 s (Prometheus
/// query_range), and every fault and manager action in that window. Cached 2 s.
async fn chart(app: App) -> HttpResponse {
    if let Some(v) = app.chart_cached(Duration::from_secs(2)) {
        return HttpResponse::Ok().json(v);
    }
    let end = crate::unix_ms() as f64 / 1000.0;
    let start = end - 300.0;
    let q = &app.settings.queries;
    let (rps, errors, p99) = tokio::join!(
        app.probes.prom_range(&q.rps, start, end, 2),
        app.probes.prom_range(&q.errors_per_s, start, end, 2),
        app.probes.prom_range(&q.p99_ms, start, end, 2),
    );
    let st = app.status().await;
    let from_ms = (start * 1000.0) as u64;
    let faults: Vec<Value> = st
        .faults
        .iter()
        .filter(|f| f.at_unix_ms >= from_ms)
        .map(|f| json!({"t": f.at_unix_ms as f64 / 1000.0, "label": format!("{} {}", f.action, f.target), "ok": f.outcome == "ok"}))
        .collect();
    let manager: Vec<Value> = st
        .manager_actions
        .iter()
        .filter(|a| a.at_unix_ms >= from_ms && !a.action.starts_with("fault:"))
        .map(|a| json!({"t": a.at_unix_ms as f64 / 1000.0, "label": format!("manager: {} {}", a.action, a.target)}))
        .collect();
    let series = |v: &Option<Value>| v.as_ref().map(status::prom_series);
    let v = json!({
        "start": start, "end": end, "step_s": 2,
        "prometheus": rps.is_some(),
        "series": {"rps": series(&rps), "errors_per_s": series(&errors), "p99_ms": series(&p99)},
        "faults": faults,
        "manager": manager,
    });
    app.chart_store(v.clone());
    HttpResponse::Ok().json(v)
}

// ------------------------------------------------------------------------ the page

/// The page, or a plain 500 (a template that does not render is a bug of this program).
fn render(app: &AppState, name: &str, ctx: &tera::Context) -> HttpResponse {
    match app.tera.render(name, ctx) {
        Ok(b) => html(b),
        Err(e) => {
            tracing::error!(error = ?e, template = name, "template failed");
            HttpResponse::InternalServerError().content_type("text/plain").body("template error")
        }
    }
}

fn tiles_context(st: &Status, who: &Caller, token_set: bool) -> tera::Context {
    let mut ctx = tera::Context::new();
    ctx.insert("s", st);
    ctx.insert("operator", &who.is_operator());
    ctx.insert("csrf", who.csrf().unwrap_or(""));
    ctx.insert("token_set", &token_set);
    ctx.insert("up", &st.replicas.iter().filter(|r| r.state == status::UP).count());
    ctx
}

fn html(body: String) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ))
        .insert_header(("X-Frame-Options", "DENY"))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header(("Referrer-Policy", "no-referrer"))
        .body(body)
}

#[derive(Deserialize)]
struct PageQuery {
    request_id: Option<String>,
    msg: Option<String>,
}

async fn page(app: App, req: HttpRequest, q: web::Query<PageQuery>) -> HttpResponse {
    let who = auth::caller(app.token(), &req);
    let st = app.status().await;
    let mut ctx = tiles_context(&st, &who, app.token().is_some());
    ctx.insert("msg", &q.msg.as_deref().map(|m| m.chars().take(300).collect::<String>()));
    let id = q.request_id.as_deref().map(str::trim).filter(|s| !s.is_empty());
    ctx.insert("request_id", id.unwrap_or(""));
    if let Some(id) = id {
        match search_logs(&app, id).await {
            Ok(f) => {
                ctx.insert("log_lines", &f.lines);
                ctx.insert(
                    "log_note",
                    &format!(
                        "{} line(s); {} file(s), {:.1} MB read{}",
                        f.lines.len(),
                        f.files_read,
                        f.bytes_read as f64 / 1e6,
                        if f.truncated {
                            " (the search stopped at its cap: older lines were not read)"
                        } else {
                            ""
                        }
                    ),
                );
            }
            Err((_, msg)) => ctx.insert("log_error", &msg),
        }
    }
    render(&app, "index.html", &ctx)
}

async fn tiles(app: App, req: HttpRequest) -> HttpResponse {
    let who = auth::caller(app.token(), &req);
    let st = app.status().await;
    render(&app, "tiles.html", &tiles_context(&st, &who, app.token().is_some()))
}

/// SSE: for every new picture (once a second while the page is open) an `event: status` with the
/// JSON of `/api/status` and an `event: tiles` with the tiles rendered for this viewer.
async fn events(app: App, req: HttpRequest) -> HttpResponse {
    let who = auth::caller(app.token(), &req);
    let token_set = app.token().is_some();
    let rx = app.latest.subscribe();
    let state = app.get_ref().clone();
    let s = stream::unfold((rx, true), move |(mut rx, first)| {
        let app = state.clone();
        let who = who.clone();
        async move {
            if !first {
                // a comment every 15 s keeps proxies from closing an idle stream
                match tokio::time::timeout(Duration::from_secs(15), rx.changed()).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => return None,
                    Err(_) => {
                        return Some((
                            Ok::<_, actix_web::Error>(web::Bytes::from_static(b": keep-alive\n\n")),
                            (rx, false),
                        ))
                    }
                }
            }
            let st = rx.borrow_and_update().clone();
            let mut out = String::new();
            out.push_str("event: status\ndata: ");
            out.push_str(&serde_json::to_string(&*st).unwrap_or_else(|_| "{}".into()));
            out.push_str("\n\n");
            if let Ok(t) = app.tera.render("tiles.html", &tiles_context(&st, &who, token_set)) {
                out.push_str("event: tiles\n");
                for l in t.lines() {
                    out.push_str("data: ");
                    out.push_str(l);
                    out.push('\n');
                }
                out.push('\n');
            }
            Some((Ok(web::Bytes::from(out)), (rx, false)))
        }
    });
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(s)
}

// ------------------------------------------------------------------------ operator forms

fn see_other(msg: &str) -> HttpResponse {
    let q = serde_urlencoded::to_string([("msg", msg)]).unwrap_or_default();
    HttpResponse::SeeOther().insert_header((header::LOCATION, format!("/?{q}"))).finish()
}

#[derive(Deserialize)]
struct LoginForm {
    token: String,
}

async fn login(app: App, req: HttpRequest, form: web::Form<LoginForm>) -> HttpResponse {
    let Some(token) = app.token() else {
        return see_other("this control room has no operator token (CONTROL_TOKEN): it is read-only");
    };
    if !auth::token_matches(Some(token), &form.token) {
        tracing::warn!("operator login refused: wrong token");
        // a little slower, for whoever guesses
        tokio::time::sleep(Duration::from_millis(500)).await;
        return see_other("wrong operator token");
    }
    let secure = req.connection_info().scheme() == "https";
    HttpResponse::SeeOther()
        .cookie(auth::login_cookie(token, secure))
        .insert_header((header::LOCATION, "/"))
        .finish()
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: Option<String>,
}

async fn logout(app: App, req: HttpRequest, form: web::Form<CsrfForm>) -> HttpResponse {
    if !auth::may_act(app.token(), &req, form.csrf.as_deref()) {
        return see_other("not logged in");
    }
    let mut gone = Cookie::build(auth::COOKIE, "").path("/").finish();
    gone.make_removal();
    HttpResponse::SeeOther().cookie(gone).insert_header((header::LOCATION, "/")).finish()
}

#[derive(Deserialize)]
struct FaultForm {
    action: String,
    #[serde(default)]
    target: String,
    replicas: Option<String>,
    csrf: Option<String>,
}

/// The buttons without JavaScript: a form POST, then back to the page with the outcome.
async fn fault_form(app: App, req: HttpRequest, form: web::Form<FaultForm>) -> HttpResponse {
    if !auth::may_act(app.token(), &req, form.csrf.as_deref()) {
        return HttpResponse::Unauthorized()
            .content_type("text/plain")
            .body("operator login (and its form token) required\n");
    }
    let f = form.into_inner();
    let replicas = match f.replicas.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(n) => match n.parse() {
            Ok(n) => Some(n),
            Err(_) => return see_other("replicas: a whole number"),
        },
    };
    let (code, answer) =
        faults::inject(&app, FaultRequest { action: f.action, target: f.target, replicas }).await;
    let msg = if code.is_success() {
        format!(
            "{} {}: {}",
            answer.get("action").and_then(Value::as_str).unwrap_or(""),
            answer.get("target").and_then(Value::as_str).unwrap_or(""),
            answer.get("detail").and_then(Value::as_str).unwrap_or("ok")
        )
    } else {
        answer
            .get("error")
            .or_else(|| answer.get("outcome"))
            .and_then(Value::as_str)
            .unwrap_or("failed")
            .to_string()
    };
    see_other(&msg)
}
