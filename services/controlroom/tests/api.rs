//! The control room's HTTP contract, against the real application on 127.0.0.1:0: with every
//! backend down (closed ports), and with a stand-in manager that records what it is asked.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    io::Write,
    net::TcpListener,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use distshop_controlroom::{settings::Settings, startup};
use serde_json::{json, Value};

const TOKEN: &str = "operator-token-for-tests-0123";
const MANAGER_TOKEN: &str = "manager-token-for-tests-4567";

struct TestApp {
    base: String,
    client: reqwest::Client,
    _logs: tempfile::TempDir,
}

fn settings(manager: &str, logs: &std::path::Path, token: Option<&str>) -> Settings {
    let manager = manager.to_string();
    let logs = logs.display().to_string();
    let token = token.map(str::to_string);
    Settings::from_lookup(move |k| {
        Some(match k {
            "CONTROL_LISTEN" => "127.0.0.1:0".into(),
            "CONTROL_TOKEN" => return token.clone(),
            "CONTROL_MANAGER_URL" => manager.clone(),
            "CONTROL_MANAGER_TOKEN" => MANAGER_TOKEN.into(),
            // nothing listens on port 1: every backend is down
            "CONTROL_PROMETHEUS_URL" => "http://127.0.0.1:1".into(),
            "CONTROL_LOG_DIR" => logs.clone(),
            "CONTROL_GALERA" => "127.0.0.1".into(),
            "CONTROL_GALERA_HEALTH_PORT" => "1".into(),
            "CONTROL_REDIS" => "127.0.0.1:1".into(),
            "CONTROL_NGINX_URL" => "http://127.0.0.1:1/nginx-health".into(),
            "CONTROL_HAPROXY_URL" => "http://127.0.0.1:1".into(),
            "CONTROL_BACKEND_TIMEOUT_MS" => "300".into(),
            _ => return None,
        })
    })
    .unwrap()
}

async fn spawn(manager: &str, token: Option<&str>) -> TestApp {
    let logs = tempfile::tempdir().unwrap();
    let mut f = std::fs::File::create(logs.path().join("all.log")).unwrap();
    for (ts, svc, line) in [
        (
            "2026-12-04T22:10:01.100000+00:00",
            "distshop-shop-2",
            r#"{"request_id":"rid-test-1","message":"request finished"}"#,
        ),
        (
            "2026-12-04T22:10:01.000000+00:00",
            "distshop-nginx-1",
            r#"{"request_id":"rid-test-1","status":200}"#,
        ),
        ("2026-12-04T22:10:02.000000+00:00", "distshop-nginx-1", r#"{"request_id":"rid-other"}"#),
    ] {
        writeln!(f, "{}", json!({"ts": ts, "service": svc, "line": line})).unwrap();
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (server, _) = startup::run(listener, settings(manager, logs.path(), token)).unwrap();
    tokio::spawn(server);
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    TestApp { base: format!("http://127.0.0.1:{port}"), client, _logs: logs }
}

/// A stand-in for the heartbeat manager: `/state` with three replicas (one killed), and
/// `/api/faults` that remembers what it was asked and with which token.
async fn fake_manager() -> (String, Arc<Mutex<Vec<(String, Value)>>>) {
    let asked: Arc<Mutex<Vec<(String, Value)>>> = Arc::default();
    let a = asked.clone();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = HttpServer::new(move || {
        let a = a.clone();
        App::new()
            .route(
                "/state",
                web::get().to(|| async {
                    HttpResponse::Ok().json(json!({
                        "replicas": [
                            {"name": "t-shop-1", "number": 1, "ip": "10.9.0.2", "docker_state": "running", "verdict": "alive"},
                            {"name": "t-shop-2", "number": 2, "ip": "10.9.0.3", "docker_state": "paused", "verdict": "alive"},
                        ],
                        "stopped": [{"name": "t-shop-3", "number": 3, "docker_state": "exited"}],
                        "actions": [{"at_unix_ms": 1, "action": "restart", "replica": "t-shop-2", "reason": "no heartbeat", "outcome": "ok"}],
                    }))
                }),
            )
            .route(
                "/api/faults",
                web::post().to(move |req: HttpRequest, body: web::Json<Value>| {
                    let a = a.clone();
                    async move {
                        let auth = req.headers().get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                        a.lock().unwrap().push((auth, body.into_inner()));
                        HttpResponse::Ok().json(json!({"outcome": "ok", "detail": "SIGKILL; started again in 5 s"}))
                    }
                }),
            )
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    (format!("http://127.0.0.1:{port}"), asked)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_every_backend_down_the_tiles_say_down_and_nothing_fails() {
    let app = spawn("http://127.0.0.1:1", Some(TOKEN)).await;
    let t0 = Instant::now();
    let r = app.client.get(format!("{}/api/status", app.base)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let s: Value = r.json().await.unwrap();
    assert!(t0.elapsed() < Duration::from_secs(5), "took {:?}", t0.elapsed());
    assert_eq!(s["replicas"], json!([]));
    assert_eq!(s["galera"][0]["state"], "down");
    assert_eq!(s["galera"][0]["writer"], false);
    assert!(s["galera"][0].get("cluster_size").is_some());
    assert_eq!(s["redis"][0]["role"], "down");
    for e in s["edge"].as_array().unwrap() {
        assert_eq!(e["state"], "down", "{e}");
    }
    let names: Vec<&str> =
        s["edge"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"nginx") && names.contains(&"haproxy"), "{names:?}");
    assert_eq!(s["load"], json!({"rps": null, "errors_per_s": null, "p99_ms": null}));

    // the page renders too, read-only: a login form and no working buttons
    let page = app.client.get(format!("{}/", app.base)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("id=\"login\""));
    assert!(!html.contains("action=\"/faults\""), "buttons shown to the audience");

    // the chart's data without Prometheus
    let c: Value =
        app.client.get(format!("{}/api/chart", app.base)).send().await.unwrap().json().await.unwrap();
    assert_eq!(c["prometheus"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_tiles_come_from_the_manager() {
    let (manager, _) = fake_manager().await;
    let app = spawn(&manager, Some(TOKEN)).await;
    let s: Value =
        app.client.get(format!("{}/api/status", app.base)).send().await.unwrap().json().await.unwrap();
    let got: Vec<(String, String)> = s["replicas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["name"].as_str().unwrap().to_string(), r["state"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("shop-1".into(), "up".into()),
            ("shop-2".into(), "frozen".into()),
            ("shop-3".into(), "down".into())
        ]
    );
    assert_eq!(s["manager_actions"][0]["action"], "restart");
    let html = app.client.get(format!("{}/", app.base)).send().await.unwrap().text().await.unwrap();
    assert!(html.contains(r#"data-replica="shop-2" data-state="frozen""#), "{html}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_need_the_token_and_a_real_target_and_go_to_the_manager() {
    let (manager, asked) = fake_manager().await;
    let app = spawn(&manager, Some(TOKEN)).await;
    let url = format!("{}/api/faults", app.base);
    let kill = json!({"action": "replica-kill", "target": "shop-1"});

    let r = app.client.post(&url).json(&kill).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.json::<Value>().await.unwrap()["error"].as_str().unwrap().contains("token"));
    let r = app.client.post(&url).bearer_auth("wrong-token-0123456789").json(&kill).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(asked.lock().unwrap().is_empty());

    let r = app
        .client
        .post(&url)
        .bearer_auth(TOKEN)
        .json(&json!({"action": "rm-rf", "target": "shop-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = app
        .client
        .post(&url)
        .bearer_auth(TOKEN)
        .json(&json!({"action": "replica-kill", "target": "shop-9"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = app.client.post(&url).bearer_auth(TOKEN).body("not json").send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(asked.lock().unwrap().is_empty());

    let r = app.client.post(&url).bearer_auth(TOKEN).json(&kill).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let a = r.json::<Value>().await.unwrap();
    assert_eq!(a["outcome"], "ok");
    {
        let asked = asked.lock().unwrap();
        assert_eq!(asked.len(), 1);
        assert_eq!(asked[0].0, format!("Bearer {MANAGER_TOKEN}"));
        assert_eq!(asked[0].1["action"], "replica-kill");
        assert_eq!(asked[0].1["target"], "shop-1");
    }
    // recorded, for the page and the chart
    let s: Value =
        app.client.get(format!("{}/api/status", app.base)).send().await.unwrap().json().await.unwrap();
    assert_eq!(s["faults"][0]["action"], "replica-kill");
    assert_eq!(s["faults"][0]["target"], "shop-1");
    assert_eq!(s["faults"][0]["outcome"], "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_logs_in_on_the_page_and_its_forms_need_the_csrf_token() {
    let (manager, asked) = fake_manager().await;
    let app = spawn(&manager, Some(TOKEN)).await;
    let r = app
        .client
        .post(format!("{}/login", app.base))
        .form(&[("token", "wrong-token-0123456789")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert!(r.headers().get("set-cookie").is_none());
    let r = app.client.post(format!("{}/login", app.base)).form(&[("token", TOKEN)]).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let set = r.headers().get("set-cookie").unwrap().to_str().unwrap().to_string();
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict"), "{set}");
    let cookie = set.split(';').next().unwrap().to_string();

    let html = app
        .client
        .get(format!("{}/", app.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("id=\"operator-badge\""));
    assert!(html.contains(r#"data-action="replica-kill" data-target="shop-1""#));
    let csrf = html.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
    assert_eq!(csrf.len(), 64);

    // the cookie alone does not act
    let form = [("action", "replica-freeze"), ("target", "shop-1")];
    let r = app
        .client
        .post(format!("{}/faults", app.base))
        .header("cookie", &cookie)
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = app
        .client
        .post(format!("{}/api/faults", app.base))
        .header("cookie", &cookie)
        .json(&json!({"action": "replica-freeze", "target": "shop-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(asked.lock().unwrap().is_empty());
    // with its CSRF token: the form, and the script's header
    let form = [("action", "replica-freeze"), ("target", "shop-1"), ("csrf", csrf.as_str())];
    let r = app
        .client
        .post(format!("{}/faults", app.base))
        .header("cookie", &cookie)
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let r = app
        .client
        .post(format!("{}/api/faults", app.base))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .json(&json!({"action": "replica-stop", "target": "shop-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(asked.lock().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_token_configured_everything_is_read_only() {
    let app = spawn("http://127.0.0.1:1", None).await;
    let r = app
        .client
        .post(format!("{}/api/faults", app.base))
        .bearer_auth("")
        .json(&json!({"action": "scale", "replicas": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let html = app.client.get(format!("{}/", app.base)).send().await.unwrap().text().await.unwrap();
    assert!(!html.contains("id=\"login\""));
    assert!(html.contains("read-only"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_ids_are_found_in_the_central_logs() {
    let app = spawn("http://127.0.0.1:1", Some(TOKEN)).await;
    let r = app.client.get(format!("{}/api/logs?request_id=rid-test-1", app.base)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let lines: Value = r.json().await.unwrap();
    let services: Vec<&str> =
        lines.as_array().unwrap().iter().map(|l| l["service"].as_str().unwrap()).collect();
    assert_eq!(services, vec!["distshop-nginx-1", "distshop-shop-2"]);
    assert!(lines[0]["ts"].as_str().unwrap().starts_with("2026-12-04T22:10:01"));
    for bad in ["", "GET", "has%20space", "quote%22quote1", &"x".repeat(129)] {
        let r = app.client.get(format!("{}/api/logs?request_id={bad}", app.base)).send().await.unwrap();
        assert_eq!(r.status(), 400, "{bad}");
    }
    // the page's search, without JavaScript
    let html = app
        .client
        .get(format!("{}/?request_id=rid-test-1", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains(r#"<tr data-service="distshop-shop-2">"#), "{html}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulator_reports_with_the_token_and_its_run_is_shown() {
    let app = spawn("http://127.0.0.1:1", Some(TOKEN)).await;
    let run = json!({"run":"demo","elapsed_s":12.0,"requests":1234,"errors":0,"violations":0,"checks":5678,"rps":95.5,"done":false});
    let url = format!("{}/api/simulator", app.base);
    assert_eq!(app.client.post(&url).json(&run).send().await.unwrap().status(), 401);
    assert_eq!(app.client.post(&url).bearer_auth(TOKEN).body("{}").send().await.unwrap().status(), 400);
    assert_eq!(app.client.post(&url).bearer_auth(TOKEN).json(&run).send().await.unwrap().status(), 204);
    let s: Value =
        app.client.get(format!("{}/api/status", app.base)).send().await.unwrap().json().await.unwrap();
    assert_eq!(s["simulator"]["run"], "demo");
    assert_eq!(s["simulator"]["checks"], 5678);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_stream_sends_status_and_tiles() {
    let app = spawn("http://127.0.0.1:1", Some(TOKEN)).await;
    let mut r = app.client.get(format!("{}/api/events", app.base)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers().get("content-type").unwrap(), "text/event-stream");
    let mut got = String::new();
    let deadline = Instant::now() + Duration::from_secs(8);
    while !(got.contains("event: status") && got.contains("event: tiles\n") && got.contains("data-edge=")) {
        assert!(Instant::now() < deadline, "no status and tiles events: {got}");
        match tokio::time::timeout(Duration::from_secs(4), r.chunk()).await {
            Ok(Ok(Some(c))) => got.push_str(&String::from_utf8_lossy(&c)),
            other => panic!("stream ended: {other:?}"),
        }
    }
}
