use futures_util::StreamExt;

use crate::helpers::*;

#[tokio::test]
async fn health_readiness_and_request_ids() {
    let app = spawn_app().await;
    let s = app.shopper();
    let r = s.get("/healthz").await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("x-served-by").is_some());
    let generated = r.headers().get("x-request-id").unwrap().to_str().unwrap().to_string();
    assert!(generated.len() >= 16);
    let r = s.get("/readyz").await;
    assert_eq!(r.status(), 200);
    let r = s
        .client
        .get(s.url("/api/products?per_page=1"))
        .header("X-Request-Id", "from-nginx-1234")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers().get("x-request-id").unwrap(), "from-nginx-1234");
    // Errors carry them too.
    let r = s.client.get(s.url("/api/products/0")).header("X-Request-Id", "err-5678").send().await.unwrap();
    assert_eq!(
        (r.status().as_u16(), r.headers().get("x-request-id").unwrap().to_str().unwrap()),
        (404, "err-5678")
    );
}

#[tokio::test]
async fn metrics_count_requests_and_checkouts() {
    let app = spawn_app().await;
    let s = app.customer().await;
    let p = app.product(5).await;
    s.add(p, 1).await;
    assert_eq!(s.checkout(&key()).await.status(), 201);
    let body = s.get("/metrics").await.text().await.unwrap();
    assert!(
        body.contains("shop_http_requests_total{method=\"POST\",route=\"/api/cart/items\",status=\"200\"}"),
        "{body}"
    );
    assert!(body.contains("shop_http_request_duration_seconds_bucket"));
    assert!(body.contains("shop_checkouts_total{outcome=\"placed\"}"));
    assert!(body.contains("shop_session_store_errors_total"));
    // there before any 5xx: Prometheus' error rate needs the series before the first error
    assert!(body.lines().any(|l| l.starts_with("shop_http_server_errors_total ")), "{body}");
    assert!(body.contains("shop_db_pool_connections"));
    // types and buckets as the manager's autoscaler and the docs read them
    for t in [
        "# TYPE shop_http_requests_total counter",
        "# TYPE shop_http_server_errors_total counter",
        "# TYPE shop_http_request_duration_seconds histogram",
        "# TYPE shop_checkouts_total counter",
        "# TYPE shop_session_store_errors_total counter",
        "# TYPE shop_session_store_retries_total counter",
        "# TYPE shop_session_store_unreplicated_writes_total counter",
        "# TYPE shop_db_pool_connections gauge",
    ] {
        assert!(body.lines().any(|l| l == t), "{t}\n{body}");
    }
    let le: Vec<&str> = body
        .lines()
        .filter_map(|l| {
            l.strip_prefix("shop_http_request_duration_seconds_bucket{route=\"/api/cart/items\",le=\"")
        })
        .filter_map(|l| l.split_once('"').map(|(le, _)| le))
        .collect();
    assert_eq!(
        le,
        ["0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "+Inf"],
        "{body}"
    );
    for state in ["idle", "busy"] {
        assert!(body.contains(&format!("shop_db_pool_connections{{state=\"{state}\"}} ")), "{body}");
    }
}

#[tokio::test]
async fn heartbeat_streams_ok_events_with_status_first() {
    let app = spawn_app().await;
    let s = app.shopper();
    let r = s.get("/heartbeat?interval_ms=100").await;
    assert_eq!(r.headers().get("content-type").unwrap(), "text/event-stream");
    let mut stream = r.bytes_stream();
    let mut seen = String::new();
    let started = std::time::Instant::now();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while seen.matches("data: ").count() < 5 && tokio::time::Instant::now() < deadline {
        match tokio::time::timeout(std::time::Duration::from_secs(3), stream.next()).await {
            Ok(Some(Ok(chunk))) => seen.push_str(&String::from_utf8_lossy(&chunk)),
            _ => break,
        }
    }
    let events: Vec<&str> = seen.split("\n\n").filter(|e| !e.is_empty()).collect();
    assert!(events.len() >= 5, "{seen}");
    for e in &events {
        assert!(e.starts_with("data: {\"status\":\"OK\","), "status must be the first key: {e}");
        let v: serde_json::Value = serde_json::from_str(e.trim_start_matches("data: ")).unwrap();
        assert!(v["served_by"].is_string(), "{e}");
    }
    // five beats at 100 ms: well under the default 1 s rhythm
    assert!(started.elapsed() < std::time::Duration::from_secs(2), "{:?}", started.elapsed());
}

#[tokio::test]
async fn heartbeat_interval_out_of_range_is_a_400() {
    let app = spawn_app().await;
    let s = app.shopper();
    for q in ["interval_ms=5", "interval_ms=60000", "interval_ms=abc"] {
        let r = s.get(&format!("/heartbeat?{q}")).await;
        assert_eq!(r.status(), 400, "{q}");
    }
}

#[tokio::test]
async fn a_lost_database_is_a_503_not_a_hang() {
    let app = spawn_app().await;
    let s = app.shopper();
    assert_eq!(s.get("/readyz").await.status(), 200);
    app.db.clone().close().await.unwrap();
    let started = std::time::Instant::now();
    let r = s.get("/readyz").await;
    assert_eq!(r.status(), 503);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(body["reasons"]["database"].is_string(), "{body}");
    let (st, e) = error_of(s.get("/api/products").await).await;
    assert_eq!(st, 503, "{e}");
    let r = s.get("/").await;
    assert_eq!(r.status(), 503);
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

#[tokio::test]
async fn mysql_connections_get_causal_reads_when_configured() {
    let app = spawn_app().await;
    if app.settings.is_embedded_db() {
        return; // SQLite has no wsrep_sync_wait; the MariaDB run checks it.
    }
    // Every pooled connection, not just the first: hold several at once.
    let results =
        futures_util::future::join_all((0..6).map(|_| {
            app.sql("SELECT CAST(@@SESSION.wsrep_sync_wait AS SIGNED) AS n, SLEEP(0.05) AS s", vec![])
        }))
        .await;
    for rows in results {
        assert_eq!(rows[0].try_get::<i64>("", "n").unwrap(), 1);
    }
}

#[tokio::test]
async fn a_cancelled_statement_never_answers_a_later_one() {
    // Statements are bounded by cancelling their futures. Cancel hundreds of them at random
    // points (while the prepare, the execute or the rows are in flight) and check that every
    // later statement on the pool gets its own answer, never the leftover of a cancelled one.
    let app = spawn_app().await;
    if app.settings.is_embedded_db() {
        return; // the MariaDB run exercises the MySQL driver; SQLite runs in-process
    }
    let mut seed = uuid::Uuid::new_v4().as_u128() as u64 | 1;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for i in 0..300 {
        let cut = std::time::Duration::from_micros(next() % if i % 2 == 0 { 400 } else { 2500 });
        let v = (next() % 1_000_000_000) as i64;
        // A new statement text each time, so that prepares are cancelled too.
        let sql = format!("SELECT ? AS v, {i} AS k, SLEEP(0.001) AS s");
        let _ = tokio::time::timeout(cut, shop::infra::db::one(&app.db, &sql, vec![v.into()])).await;
        let w = (next() % 1_000_000_000) as i64;
        let row = shop::infra::db::one(&app.db, "SELECT ? AS w", vec![w.into()])
            .await
            .unwrap_or_else(|e| panic!("iteration {i}: {e}"))
            .expect("a row");
        let got: i64 = row.try_get("", "w").unwrap_or(-1);
        assert_eq!(got, w, "iteration {i}: a statement got another statement's answer");
    }
}

#[tokio::test]
async fn an_injected_http500_fault_fails_everything_but_the_probes() {
    let app = spawn_app_with(|env, _| {
        env.insert("SHOP_FAULT".into(), "http500".into());
    })
    .await;
    let s = app.shopper();
    for path in ["/", "/api/products", "/api/me", "/login"] {
        assert_eq!(s.get(path).await.status(), 500, "{path}");
    }
    for path in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(s.get(path).await.status(), 200, "{path}");
    }
    let r = s.get("/heartbeat?interval_ms=100").await;
    assert_eq!(r.status(), 200);
}

#[test]
fn an_unknown_fault_is_a_configuration_error() {
    let mut env = std::collections::HashMap::new();
    env.insert("SHOP_FAULT".to_string(), "explode".to_string());
    let e = shop::settings::Settings::from_map(&env).unwrap_err();
    assert!(e.to_string().contains("SHOP_FAULT"), "{e}");
}
