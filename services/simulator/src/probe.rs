//! The probes of the cluster and swarm suites (`tests/cluster/run.sh`, `tests/swarm/run.sh`):
//! short conversations with the shop through nginx, each printing one JSON object that the
//! suites read, and exiting 1 when a check failed.
//!
//! * `journey BASE [--replicas N]` — register, log in, a cart add sent twice with one
//!   Idempotency-Key (counted once), checkout and its replay (the same order), the order list, the
//!   cart emptied, a keyless add (nginx keys it with its own request id, which the suite then
//!   finds in Redis), and the one session answered by every replica.
//! * `orders BASE EMAIL PASSWORD` — the ids of an account's orders.
//! * `load BASE --seconds S --max-requests N [--workers W] [--checkouts]` — a steady bounded load
//!   in which any unexpected answer is a failure; `--checkouts` adds a shopper checking out again
//!   and again with idempotent retries, whose account must then hold one order per key.
//! * `new-replica BASE --known a,b --timeout S` — how long until a replica not in the list answers.
//!
//! They use the simulator's HTTP client (`http.rs`: one cookie jar per shopper, timeouts, the
//! served-by header); unlike `run`, they do not model a shopper, they check one fixed script.
//! Every loop is bounded by a request count and a time limit.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use serde_json::{json, Map, Value};

use crate::{
    config::{JourneyArgs, LoadArgs, NewReplicaArgs, OrdersArgs},
    faults::unix_ms_now,
    http::{Http, Jar, Reply, Req},
    state::lock,
};

/// A check that did not hold: printed as `{"ok": false, "error": …, "status": …, "body": …}`.
#[derive(Debug)]
pub struct Failure(Map<String, Value>);

impl Failure {
    pub fn new(error: impl Into<String>) -> Self {
        let mut m = Map::new();
        m.insert("ok".into(), Value::Bool(false));
        m.insert("error".into(), Value::String(error.into()));
        Failure(m)
    }

    /// The failed answer: its status and body (or why there was none).
    fn reply(self, r: &Reply) -> Self {
        let body = match (&r.transport, &r.body_error) {
            (Some(_), _) => Value::String(r.describe()),
            (None, Some(e)) => Value::String(e.clone()),
            (None, None) => r.body.clone(),
        };
        self.with("status", json!(r.status)).with("body", body)
    }

    fn with(mut self, key: &str, value: Value) -> Self {
        self.0.insert(key.into(), value);
        self
    }

    pub fn to_json(&self) -> Value {
        Value::Object(self.0.clone())
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::new(format!("{e:#}"))
    }
}

/// `Err(failure)` naming `what` and the answer unless `cond`.
fn expect(cond: bool, what: &str, r: &Reply) -> Result<(), Failure> {
    if cond {
        Ok(())
    } else {
        Err(Failure::new(what).reply(r))
    }
}

/// Print a probe's outcome (one JSON line); whether it passed.
pub fn print_outcome(outcome: Result<(Value, bool), Failure>) -> bool {
    let (v, ok) = match outcome {
        Ok(v) => v,
        Err(f) => (f.to_json(), false),
    };
    println!("{v}");
    ok
}

fn http(args_base: &str, allow_remote: bool, timeout: Duration) -> Result<Arc<Http>, Failure> {
    let bases =
        crate::config::check_base_urls(&[args_base.to_string()], allow_remote).map_err(Failure::new)?;
    Ok(Arc::new(Http::new(bases, timeout)?))
}

/// One client: the shared HTTP pool and a cookie jar of its own.
#[derive(Clone)]
struct Client {
    http: Arc<Http>,
    jar: Jar,
}

impl Client {
    fn new(http: &Arc<Http>) -> Self {
        Client { http: http.clone(), jar: Jar::default() }
    }

    async fn call(&mut self, req: Req) -> Reply {
        self.http.send(&mut self.jar, &req).await
    }
}

/// The list of a list answer: `{"items": [...]}` or a bare array.
fn items(body: &Value) -> Option<&Vec<Value>> {
    body.get("items").unwrap_or(body).as_array()
}

fn short_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn unix_s() -> f64 {
    unix_ms_now() as f64 / 1000.0
}

fn round_to(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

/// A fresh account's email and password: `<who>-<12 hex>@example.test`, `<password><6 hex>`.
fn new_account(who: &str, password: &str) -> (String, String) {
    let id = short_id();
    (format!("{who}-{}@example.test", &id[..12]), format!("{password}{}", &id[12..18]))
}

/// Register an account and log in; `label` prefixes the name of a failed step.
async fn sign_up(
    c: &mut Client,
    email: &str,
    password: &str,
    name: &str,
    label: &str,
) -> Result<(), Failure> {
    let body = json!({"email": email, "password": password, "name": name});
    let r = c.call(Req::post("POST /api/register", "/api/register", body).without_request_id()).await;
    expect(r.is(201), &format!("{label}register"), &r)?;
    log_in(c, email, password, &format!("{label}login")).await
}

async fn log_in(c: &mut Client, email: &str, password: &str, what: &str) -> Result<(), Failure> {
    let body = json!({"email": email, "password": password});
    let r = c.call(Req::post("POST /api/login", "/api/login", body).without_request_id()).await;
    expect(r.is(200), what, &r)
}

// --- journey --------------------------------------------------------------------------------

pub async fn journey(a: &JourneyArgs) -> Result<(Value, bool), Failure> {
    let http = http(&a.base, a.allow_remote, Duration::from_secs(10))?;
    let mut c = Client::new(&http);
    // no request ids of ours: nginx mints them, as for a browser (the keyless add needs it)
    let get = |path: &str| Req::get("GET", path.to_string()).without_request_id();
    let (email, password) = new_account("shopper", "correct-horse-battery-");
    sign_up(&mut c, &email, &password, "Cluster Tester", "").await?;
    if c.jar.session.is_none() {
        return Err(Failure::new("login set no cookie"));
    }
    let r = c.call(get("/api/me")).await;
    expect(r.is(200) && r.body["email"] == email.as_str(), "me", &r)?;

    let product = pick_product(&mut c).await?;
    let pid = product["id"].clone();
    cart_add_twice(&mut c, &pid).await?;
    let order = checkout_and_replay(&mut c).await?;
    let r = c.call(get("/api/cart")).await;
    let cart_empty = items(&r.body).is_none_or(|v| v.is_empty());
    expect(r.is(200) && cart_empty, "cart emptied by checkout", &r)?;
    let keyless_rid = keyless_add(&mut c, &pid).await?;
    let (served, me) = session_on_every_replica(&mut c, a.replicas).await?;

    let per_replica: BTreeMap<&String, usize> = served.iter().map(|(k, v)| (k, v.len())).collect();
    let out = json!({
        "ok": true, "email": email, "password": password, "order_id": order["id"],
        "order_total_cents": order.get("total_cents"), "product_id": pid,
        "session_ok_on": served.keys().collect::<Vec<_>>(), "requests_per_replica": per_replica,
        "user_id": me.get("id"), "keyless_add_request_id": keyless_rid,
    });
    Ok((out, true))
}

/// A product of the first page with at least 2 in stock.
async fn pick_product(c: &mut Client) -> Result<Value, Failure> {
    let r = c.call(Req::get("GET", "/api/products?per_page=5").without_request_id()).await;
    expect(r.is(200) && items(&r.body).is_some_and(|v| !v.is_empty()), "products", &r)?;
    let found = items(&r.body).into_iter().flatten().find(|p| p["stock"].as_i64().unwrap_or(0) >= 2).cloned();
    found.ok_or_else(|| Failure::new("no product with stock >= 2").with("body", r.body.clone()))
}

/// The same add twice with one Idempotency-Key: the line must hold it once.
async fn cart_add_twice(c: &mut Client, pid: &Value) -> Result<(), Failure> {
    let key = uuid::Uuid::new_v4().to_string();
    for _ in 0..2 {
        let body = json!({"product_id": pid, "quantity": 2});
        let r = c.call(Req::post("POST", "/api/cart/items", body).key(&key).without_request_id()).await;
        expect(r.is(200), "add to cart", &r)?;
    }
    let r = c.call(Req::get("GET", "/api/cart").without_request_id()).await;
    let line = items(&r.body).into_iter().flatten().find(|i| i["product_id"] == *pid);
    let once = line.is_some_and(|l| l["quantity"] == 2);
    expect(r.is(200) && once, "cart after replayed add", &r)
}

/// Check out, send the checkout again with its key (the same order), and find it in the list.
async fn checkout_and_replay(c: &mut Client) -> Result<Value, Failure> {
    let key = uuid::Uuid::new_v4().to_string();
    let checkout = || Req::post("POST", "/api/orders", json!({})).key(&key).without_request_id();
    let r = c.call(checkout()).await;
    let has_id = !r.body["id"].is_null() && r.body["id"] != 0;
    expect(r.is(201) && has_id, "checkout", &r)?;
    let order = r.body.clone();
    let again = c.call(checkout()).await;
    expect(
        again.is(200) && again.body["id"] == order["id"],
        "checkout replay must return the same order",
        &again,
    )?;
    let r = c.call(Req::get("GET", "/api/orders").without_request_id()).await;
    let listed = items(&r.body).is_some_and(|v| v.iter().any(|o| o["id"] == order["id"]));
    expect(r.is(200) && listed, "order list", &r)?;
    Ok(order)
}

/// A cart add without a key: nginx gives it its request id as the key (so that its retry on
/// another replica cannot add twice); the suite finds that key in Redis. The line is removed again.
async fn keyless_add(c: &mut Client, pid: &Value) -> Result<String, Failure> {
    let body = json!({"product_id": pid, "quantity": 1});
    let r = c.call(Req::post("POST", "/api/cart/items", body).without_request_id()).await;
    expect(r.is(200), "keyless add to cart", &r)?;
    let rid = r.request_id.clone().unwrap_or_default();
    let path = format!("/api/cart/items/{pid}");
    let r = c.call(Req::delete("DELETE", path).without_request_id()).await;
    expect(r.is(200), "remove the line again", &r)?;
    Ok(rid)
}

/// `GET /api/me` until `replicas` replicas answered it 3 times each (at most 60 requests): every
/// answer must be 200. The statuses per replica, and the last answer's body.
async fn session_on_every_replica(
    c: &mut Client,
    replicas: usize,
) -> Result<(BTreeMap<String, Vec<u16>>, Value), Failure> {
    let mut served: BTreeMap<String, Vec<u16>> = BTreeMap::new();
    let mut me = Value::Null;
    for _ in 0..60 {
        let r = c.call(Req::get("GET", "/api/me").without_request_id()).await;
        let who = r.served_by.clone().unwrap_or_else(|| "?".into());
        served.entry(who).or_default().push(r.status.unwrap_or(0));
        me = r.body;
        if served.len() >= replicas && served.values().all(|v| v.len() >= 3) {
            break;
        }
    }
    let bad = served.values().any(|v| v.iter().any(|s| *s != 200));
    if bad {
        return Err(Failure::new("session rejected on some replica").with("served", json!(served)));
    }
    if served.len() < replicas {
        return Err(Failure::new("session not seen on every replica")
            .with("served", json!(served))
            .with("replicas_expected", json!(replicas)));
    }
    Ok((served, me))
}

// --- orders ---------------------------------------------------------------------------------

pub async fn orders(a: &OrdersArgs) -> Result<(Value, bool), Failure> {
    let http = http(&a.base, a.allow_remote, Duration::from_secs(10))?;
    let mut c = Client::new(&http);
    log_in(&mut c, &a.email, &a.password, "login").await?;
    let r = c.call(Req::get("GET", "/api/orders").without_request_id()).await;
    let list = items(&r.body).filter(|_| r.is(200));
    let Some(list) = list else { return Err(Failure::new("orders").reply(&r)) };
    let mut ids: Vec<Value> = list.iter().map(|o| o["id"].clone()).collect();
    ids.sort_by_key(|v| v.as_i64());
    Ok((json!({"ok": true, "order_ids": ids}), true))
}

// --- load -----------------------------------------------------------------------------------

/// The load's counts, as printed.
#[derive(Debug, Default)]
struct LoadStats {
    sent: u64,
    ok: u64,
    failed: u64,
    served_by: BTreeMap<String, u64>,
    failures: Vec<Value>,
    max_latency_ms: f64,
}

/// The checkout worker's counts, as printed.
#[derive(Debug, Default)]
struct CheckoutStats {
    keys_ok: u64,
    keys_failed: u64,
    attempts_failed: u64,
    errors: Vec<Value>,
}

/// The bounds of a load, clamped as the suites' old Python client clamped them.
#[derive(Debug, Clone, Copy)]
struct Bounds {
    deadline: Instant,
    max_requests: u64,
}

/// The requests of a load worker, in turn: `(path, anonymous)`. The anonymous `GET /api/me` (401,
/// never cached) is the cheapest request a replica answers itself, in place of `/healthz`, which
/// nginx keeps internal.
const LOAD_PATHS: [(&str, bool); 3] =
    [("/api/me", true), ("/api/products?per_page=5", false), ("/api/me", false)];

pub async fn load(a: &LoadArgs) -> Result<(Value, bool), Failure> {
    let seconds = a.seconds.clamp(0.0, 600.0);
    let max_requests = a.max_requests.min(200_000);
    let workers = a.workers.clamp(1, 32);
    let http = http(&a.base, a.allow_remote, Duration::from_secs(10))?;
    let mut login = Client::new(&http);
    let (email, password) = new_account("load", "load-test-password-");
    sign_up(&mut login, &email, &password, "Load", "load: ").await?;

    let bounds = Bounds { deadline: Instant::now() + Duration::from_secs_f64(seconds), max_requests };
    let stats = Arc::new(Mutex::new(LoadStats::default()));
    let checkout = Arc::new(Mutex::new(CheckoutStats::default()));
    let t0 = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for idx in 0..workers {
        let (session, anon) = (login.clone(), Client::new(&http));
        tasks.spawn(load_worker(idx, session, anon, bounds, stats.clone()));
    }
    if a.checkouts {
        tasks.spawn(checkout_worker(login.clone(), bounds, checkout.clone()));
    }
    let all = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(Duration::from_secs_f64(seconds + 30.0), all).await.is_err() {
        tasks.abort_all();
    }

    let (mut out, mut ok_flag) = {
        let s = lock(&stats);
        let out = json!({
            "sent": s.sent, "ok": s.ok, "failed": s.failed, "served_by": s.served_by,
            "failures": s.failures, "max_latency_ms": s.max_latency_ms,
            "seconds": round_to(t0.elapsed().as_secs_f64(), 1),
        });
        (out, s.failed == 0 && s.ok > 0)
    };
    if a.checkouts {
        let r = login.call(Req::get("GET", "/api/orders")).await;
        let in_account = items(&r.body).filter(|_| r.is(200)).map(|v| v.len() as u64);
        let c = lock(&checkout);
        let consistent = in_account == Some(c.keys_ok) && c.keys_failed == 0;
        ok_flag = ok_flag && consistent;
        out["checkout"] = json!({
            "keys_ok": c.keys_ok, "keys_failed": c.keys_failed, "attempts_failed": c.attempts_failed,
            "errors": c.errors, "orders_in_account": in_account, "consistent": consistent,
        });
    }
    out["ok_flag"] = json!(ok_flag);
    Ok((out, ok_flag))
}

/// One worker of the load: the paths in turn, starting at its own index, 10 ms apart, until the
/// deadline or the shared request budget ends it. Anything but a 2xx (a 401 for the anonymous
/// request) or no answer at all is a failure.
async fn load_worker(
    idx: usize,
    mut session: Client,
    mut anon: Client,
    b: Bounds,
    stats: Arc<Mutex<LoadStats>>,
) {
    let mut i = idx;
    while Instant::now() < b.deadline {
        {
            let mut s = lock(&stats);
            if s.sent >= b.max_requests {
                return;
            }
            s.sent += 1;
        }
        let (path, anonymous) = LOAD_PATHS[i % LOAD_PATHS.len()];
        i += 1;
        let t0 = Instant::now();
        let client = if anonymous { &mut anon } else { &mut session };
        let r = client.call(Req::get("GET load", path)).await;
        let ms = round_to(t0.elapsed().as_secs_f64() * 1000.0, 1);
        let (err, who) = match r.status {
            Some(st) => {
                let ok = if anonymous { st == 401 } else { r.success() };
                (
                    if ok { None } else { Some(format!("HTTP {st}")) },
                    r.served_by.unwrap_or_else(|| "?".into()),
                )
            }
            None => (Some(r.describe()), "-".into()),
        };
        {
            let mut s = lock(&stats);
            s.max_latency_ms = s.max_latency_ms.max(ms);
            match err {
                None => {
                    s.ok += 1;
                    *s.served_by.entry(who).or_default() += 1;
                }
                Some(e) => {
                    s.failed += 1;
                    if s.failures.len() < 20 {
                        s.failures.push(json!({"path": path, "error": e, "t": round_to(unix_s(), 3)}));
                    }
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Check out one item again and again; each order under its own Idempotency-Key, retried with
/// the SAME key (as a client should) up to 8 times. At the end the account must hold exactly one
/// order per key that succeeded: no order lost, none doubled by a retry.
async fn checkout_worker(mut c: Client, b: Bounds, stats: Arc<Mutex<CheckoutStats>>) {
    let r = c.call(Req::get("GET", "/api/products?per_page=50")).await;
    let best = items(&r.body)
        .filter(|_| r.is(200))
        .and_then(|v| v.iter().max_by_key(|p| p["stock"].as_i64().unwrap_or(0)))
        .map(|p| p["id"].clone());
    let Some(pid) = best else {
        let error = json!({"error": format!("products: {}", r.describe())});
        lock(&stats).errors.push(error);
        return;
    };
    let mut n = 0;
    while Instant::now() < b.deadline && n < (b.max_requests / 20).max(1) {
        n += 1;
        let key = uuid::Uuid::new_v4().to_string();
        let done = checkout_with_retries(&mut c, &pid, &key, &stats).await;
        {
            let mut s = lock(&stats);
            if done {
                s.keys_ok += 1;
            } else {
                s.keys_failed += 1;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Set the line to 1 and check out under `key`, up to 8 attempts 0.5 s apart; whether an order
/// came back.
async fn checkout_with_retries(c: &mut Client, pid: &Value, key: &str, stats: &Mutex<CheckoutStats>) -> bool {
    for _ in 0..8 {
        let mut r = c.call(Req::put("PUT", format!("/api/cart/items/{pid}"), json!({"quantity": 1}))).await;
        if r.is(200) {
            r = c.call(Req::post("POST", "/api/orders", json!({})).key(key)).await;
        }
        if r.is(200) || r.is(201) {
            return true;
        }
        let err = match r.status {
            Some(st) => format!("HTTP {st}"),
            None => r.describe(),
        };
        {
            let mut s = lock(stats);
            s.attempts_failed += 1;
            if s.errors.len() < 10 {
                s.errors.push(json!({"error": err, "t": round_to(unix_s(), 3)}));
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    false
}

// --- new-replica ----------------------------------------------------------------------------

pub async fn new_replica(a: &NewReplicaArgs) -> Result<(Value, bool), Failure> {
    let timeout = a.timeout.clamp(0.0, 600.0);
    let known: BTreeSet<&str> = a.known.split(',').filter(|s| !s.is_empty()).collect();
    let http = http(&a.base, a.allow_remote, Duration::from_secs(5))?;
    let mut c = Client::new(&http);
    let t0 = Instant::now();
    let mut n = 0;
    while t0.elapsed().as_secs_f64() < timeout && n < 100_000 {
        n += 1;
        // no session: 401, answered by a replica itself
        let r = c.call(Req::get("GET", "/api/me")).await;
        if let Some(who) = r.served_by.filter(|w| !known.contains(w.as_str())) {
            let secs = round_to(t0.elapsed().as_secs_f64(), 2);
            return Ok((json!({"ok": true, "seconds": secs, "replica": who}), true));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(Failure::new("no new replica answered").with("seconds", json!(timeout)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn a_failure_names_the_check_and_the_answer() {
        let r = Reply {
            status: Some(409),
            body: json!({"error": {"code": "cart_changed"}}),
            body_error: None,
            served_by: None,
            request_id: None,
            transport: None,
            retry_after: None,
            latency: Duration::ZERO,
            finished: Instant::now(),
        };
        let f = expect(false, "checkout", &r).unwrap_err().to_json();
        assert_eq!(f, json!({"ok": false, "error": "checkout", "status": 409, "body": r.body}));
        assert!(expect(true, "checkout", &r).is_ok());
    }

    #[test]
    fn lists_come_as_items_or_bare_arrays() {
        assert_eq!(items(&json!({"items": [1, 2]})).map(Vec::len), Some(2));
        assert_eq!(items(&json!([1])).map(Vec::len), Some(1));
        assert_eq!(items(&json!({"error": {}})), None);
        assert_eq!(round_to(12.345, 1), 12.3);
    }
}
