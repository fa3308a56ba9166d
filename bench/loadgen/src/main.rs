//! `distshop-bench`: the parts of `bench/run.sh` that wrk cannot do.
//!
//! * `shoppers`: register and log in shopper accounts, print their session cookies (wrk's cart
//!   scripts send them) — through the shop's own API, like a browser would.
//! * `peak`: a closed-loop run of a request mix (N connections, each sends its next request when
//!   the last one answered) — the most the shop serves of that mix.
//! * `rate`: an open-model run of the same mix at a fixed arrival rate. Latency is measured from
//!   the time each request was *scheduled*, not from when it could be sent, so a stall shows up
//!   in every request that queued behind it (no coordinated omission).
//! * `checkout`: shoppers each adding an item and placing an order in a loop: orders per second.
//!
//! Every command prints one JSON object on stdout. Hand-rolled rather than wrk2 (not packaged in
//! Debian) because the mix needs per-shopper cookies and request bodies.

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use hdrhistogram::Histogram;
use rand::{seq::SliceRandom, Rng};
use reqwest::{header, Client, StatusCode};
use serde_json::{json, Value};

#[derive(Parser)]
#[command(name = "distshop-bench", about = "load generator for bench/run.sh")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Register and log in N shoppers; print {"cookies":[…],"products":[…]}.
    Shoppers {
        #[arg(long)]
        base: String,
        #[arg(long, default_value_t = 16)]
        count: usize,
    },
    /// Closed loop: the highest rate of the mix with N connections.
    Peak {
        #[command(flatten)]
        run: RunArgs,
        #[arg(long, default_value_t = 32)]
        connections: usize,
    },
    /// Open model: the mix at a fixed rate, latency from the scheduled send time.
    Rate {
        #[command(flatten)]
        run: RunArgs,
        /// Requests per second.
        #[arg(long)]
        rate: f64,
    },
    /// Shoppers adding one item and checking out in a loop: orders per second.
    Checkout {
        #[command(flatten)]
        run: RunArgs,
        #[arg(long, default_value_t = 16)]
        connections: usize,
    },
}

#[derive(clap::Args, Clone)]
struct RunArgs {
    #[arg(long)]
    base: String,
    /// The file `shoppers` wrote.
    #[arg(long)]
    shoppers: String,
    #[arg(long, default_value = "browse")]
    mix: Mix,
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
}

#[derive(Clone, Copy, ValueEnum)]
enum Mix {
    /// Visitors browsing: catalog pages, product pages, the API, logged-in catalog views.
    Browse,
    /// Browse plus cart changes, cart views and checkouts.
    Shop,
}

#[derive(Clone)]
struct World {
    client: Client,
    base: String,
    cookies: Arc<Vec<String>>,
    products: Arc<Vec<i64>>,
}

#[derive(Clone, Copy, Debug)]
enum Op {
    Catalog,
    Product,
    ApiList,
    CatalogLoggedIn,
    CartSet,
    CartView,
    Checkout,
}

impl Mix {
    /// The mix as weights (percent).
    fn weights(self) -> &'static [(Op, u32)] {
        match self {
            Mix::Browse => {
                &[(Op::Catalog, 45), (Op::Product, 30), (Op::ApiList, 15), (Op::CatalogLoggedIn, 10)]
            }
            Mix::Shop => &[
                (Op::Catalog, 35),
                (Op::Product, 25),
                (Op::ApiList, 10),
                (Op::CatalogLoggedIn, 10),
                (Op::CartSet, 10),
                (Op::CartView, 8),
                (Op::Checkout, 2),
            ],
        }
    }

    fn pick(self, rng: &mut impl Rng) -> Op {
        let mut n = rng.gen_range(0..100);
        for (op, w) in self.weights() {
            if n < *w {
                return *op;
            }
            n -= w;
        }
        Op::Catalog
    }
}

#[derive(Default)]
struct Tally {
    sent: AtomicU64,
    ok: AtomicU64,
    client_errors: AtomicU64,
    server_errors: AtomicU64,
    transport_errors: AtomicU64,
    orders: AtomicU64,
    /// Orders placed (session cookie, order id), cancelled after the run to give the stock back.
    placed: Mutex<Vec<(String, i64)>>,
}

impl Tally {
    fn count(&self, r: &Result<StatusCode>) {
        self.sent.fetch_add(1, Ordering::Relaxed);
        let c = match r {
            Ok(s) if s.is_success() || s.is_redirection() => &self.ok,
            // 409 (out of stock) and 422 (an empty cart) are answers, not failures
            Ok(s) if s.is_client_error() => &self.client_errors,
            Ok(_) => &self.server_errors,
            Err(_) => &self.transport_errors,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    fn json(&self) -> Value {
        json!({
            "sent": self.sent.load(Ordering::Relaxed),
            "ok": self.ok.load(Ordering::Relaxed),
            "client_errors": self.client_errors.load(Ordering::Relaxed),
            "server_errors": self.server_errors.load(Ordering::Relaxed),
            "transport_errors": self.transport_errors.load(Ordering::Relaxed),
            "orders": self.orders.load(Ordering::Relaxed),
        })
    }
}

fn new_histogram() -> Result<Histogram<u64>> {
    // microseconds, 1 µs .. 120 s, 3 significant digits
    Histogram::new_with_bounds(1, 120_000_000, 3).context("histogram")
}

fn latency_json(h: &Histogram<u64>) -> Value {
    let ms = |q: f64| (h.value_at_quantile(q) as f64 / 1000.0 * 100.0).round() / 100.0;
    json!({
        "p50_ms": ms(0.50), "p90_ms": ms(0.90), "p99_ms": ms(0.99), "p999_ms": ms(0.999),
        "max_ms": (h.max() as f64 / 10.0).round() / 100.0, "samples": h.len(),
    })
}

fn client(pool: usize) -> Result<Client> {
    Client::builder()
        .timeout(Duration::from_secs(30))
        .connect_timeout(Duration::from_secs(5))
        .pool_max_idle_per_host(pool)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .context("http client")
}

impl World {
    fn load(base: &str, file: &str, pool: usize) -> Result<World> {
        let v: Value =
            serde_json::from_str(&std::fs::read_to_string(file).with_context(|| file.to_string())?)?;
        let strings = |k: &str| -> Vec<String> {
            v[k].as_array()
                .map(|a| a.iter().filter_map(|c| c.as_str().map(String::from)).collect())
                .unwrap_or_default()
        };
        let cookies = strings("cookies");
        let products: Vec<i64> = v["products"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_i64).collect())
            .unwrap_or_default();
        if cookies.is_empty() || products.is_empty() {
            bail!("{file} has no shoppers or no products: run `distshop-bench shoppers` first");
        }
        Ok(World {
            client: client(pool)?,
            base: base.trim_end_matches('/').to_string(),
            cookies: Arc::new(cookies),
            products: Arc::new(products),
        })
    }

    async fn send(&self, rb: reqwest::RequestBuilder) -> Result<StatusCode> {
        let r = rb.send().await?;
        let s = r.status();
        // read the body: a response counts once it is complete
        r.bytes().await?;
        Ok(s)
    }

    /// One operation of the mix; returns each request's status (a checkout is two requests).
    async fn run(&self, op: Op, tally: &Tally) -> Result<StatusCode> {
        let (cookie, product, page) = {
            let mut rng = rand::thread_rng();
            (
                self.cookies.choose(&mut rng).cloned().unwrap_or_default(),
                self.products.choose(&mut rng).copied().unwrap_or(1),
                rng.gen_range(1..=5),
            )
        };
        let c = &self.client;
        let b = &self.base;
        let with_cookie =
            |rb: reqwest::RequestBuilder| rb.header(header::COOKIE, format!("distshop_session={cookie}"));
        match op {
            Op::Catalog => self.send(c.get(format!("{b}/?page={page}"))).await,
            Op::Product => self.send(c.get(format!("{b}/products/{product}"))).await,
            Op::ApiList => self.send(c.get(format!("{b}/api/products?per_page=24&page={page}"))).await,
            Op::CatalogLoggedIn => self.send(with_cookie(c.get(format!("{b}/?page={page}")))).await,
            Op::CartView => self.send(with_cookie(c.get(format!("{b}/api/cart")))).await,
            Op::CartSet => {
                let q = rand::thread_rng().gen_range(1..=3);
                self.send(with_cookie(
                    c.put(format!("{b}/api/cart/items/{product}")).json(&json!({"quantity": q})),
                ))
                .await
            }
            Op::Checkout => {
                let add = self
                    .send(with_cookie(
                        c.post(format!("{b}/api/cart/items"))
                            .header("Idempotency-Key", uuid::Uuid::new_v4().to_string())
                            .json(&json!({"product_id": product, "quantity": 1})),
                    ))
                    .await;
                tally.count(&add);
                let r = with_cookie(
                    c.post(format!("{b}/api/orders"))
                        .header("Idempotency-Key", uuid::Uuid::new_v4().to_string())
                        .header(header::CONTENT_TYPE, "application/json")
                        .body("{}"),
                )
                .send()
                .await
                .map_err(anyhow::Error::from);
                match r {
                    Ok(resp) => {
                        let status = resp.status();
                        let body: Value = resp.json().await.unwrap_or(Value::Null);
                        if status == StatusCode::CREATED {
                            tally.orders.fetch_add(1, Ordering::Relaxed);
                            if let (Some(id), Ok(mut placed)) = (body["id"].as_i64(), tally.placed.lock()) {
                                placed.push((cookie.clone(), id));
                            }
                        }
                        Ok(status)
                    }
                    Err(e) => Err(e),
                }
            }
        }
    }
}

/// Register and log in `count` shoppers; collect product ids.
async fn shoppers(base: &str, count: usize) -> Result<Value> {
    let c = client(8)?;
    let base = base.trim_end_matches('/');
    let mut cookies = vec![];
    let run = uuid::Uuid::new_v4().simple().to_string();
    for i in 0..count {
        let email = format!("bench-{}-{i}@example.org", &run[..12]);
        let password = "bench-password-123";
        let r = c
            .post(format!("{base}/api/register"))
            .json(&json!({"email": email, "password": password, "name": format!("Bench {i}")}))
            .send()
            .await?;
        if r.status() != StatusCode::CREATED {
            bail!("register {email}: {} {}", r.status(), r.text().await.unwrap_or_default());
        }
        let r = c
            .post(format!("{base}/api/login"))
            .json(&json!({"email": email, "password": password}))
            .send()
            .await?;
        if r.status() != StatusCode::OK {
            bail!("login {email}: {}", r.status());
        }
        let cookie = r
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| v.strip_prefix("distshop_session="))
            .and_then(|v| v.split(';').next())
            .map(String::from)
            .context("login set no session cookie")?;
        cookies.push(cookie);
    }
    let mut products = vec![];
    for page in 1..=3 {
        let v: Value =
            c.get(format!("{base}/api/products?per_page=100&page={page}")).send().await?.json().await?;
        for p in v["items"].as_array().into_iter().flatten() {
            // well stocked: a run's cart lines (≤ 99) never hit the stock limit
            if p["stock"].as_i64().unwrap_or(0) >= 100 {
                products.extend(p["id"].as_i64());
            }
        }
    }
    Ok(json!({"cookies": cookies, "products": products}))
}

async fn peak(world: World, mix: Mix, connections: usize, seconds: f64, only: Option<Op>) -> Result<Value> {
    let tally = Arc::new(Tally::default());
    let hist = Arc::new(Mutex::new(new_histogram()?));
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let mut tasks = vec![];
    for i in 0..connections {
        let (mut world, tally, hist) = (world.clone(), tally.clone(), hist.clone());
        if only.is_some() {
            // one shopper per connection: two checkouts of one cart would race each other
            world.cookies = Arc::new(vec![world.cookies[i % world.cookies.len()].clone()]);
        }
        tasks.push(tokio::spawn(async move {
            let mut local = new_histogram().ok();
            while Instant::now() < deadline {
                let op = only.unwrap_or_else(|| mix.pick(&mut rand::thread_rng()));
                let t0 = Instant::now();
                let r = world.run(op, &tally).await;
                tally.count(&r);
                if let Some(h) = local.as_mut() {
                    let _ = h.record(t0.elapsed().as_micros().max(1) as u64);
                }
            }
            if let (Some(l), Ok(mut h)) = (local, hist.lock()) {
                let _ = h.add(l);
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let secs = started.elapsed().as_secs_f64();
    let cancelled = give_stock_back(&world, &tally).await;
    let h = hist.lock().map_err(|_| anyhow::anyhow!("histogram lock"))?.clone();
    let mut out = tally.json();
    out["cancelled_after"] = json!(cancelled);
    out["seconds"] = json!(secs);
    out["rps"] = json!((out["sent"].as_f64().unwrap_or(0.0) / secs).round());
    out["orders_per_s"] = json!((out["orders"].as_f64().unwrap_or(0.0) / secs * 10.0).round() / 10.0);
    out["connections"] = json!(connections);
    out["latency"] = latency_json(&h);
    Ok(out)
}

/// Cancel the orders a run placed (after the timed part), so repeated runs do not sell out.
async fn give_stock_back(world: &World, tally: &Tally) -> usize {
    let placed = tally.placed.lock().map(|mut p| std::mem::take(&mut *p)).unwrap_or_default();
    let mut n = 0;
    for (cookie, id) in placed {
        let r = world
            .client
            .post(format!("{}/api/orders/{id}/cancel", world.base))
            .header(header::COOKIE, format!("distshop_session={cookie}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body("{}")
            .send()
            .await;
        n += usize::from(r.is_ok_and(|r| r.status().is_success()));
    }
    n
}

async fn rate(world: World, mix: Mix, rate: f64, seconds: f64) -> Result<Value> {
    if !(rate > 0.0 && rate <= 100_000.0) {
        bail!("--rate must be in (0, 100000]");
    }
    let tally = Arc::new(Tally::default());
    let hist = Arc::new(Mutex::new(new_histogram()?));
    // the same latency per kind of request: which part of the mix the tail is made of
    let by_op: Arc<Mutex<std::collections::BTreeMap<String, Histogram<u64>>>> = Arc::default();
    let total = (rate * seconds).round() as u64;
    let start = tokio::time::Instant::now();
    let interval = Duration::from_secs_f64(1.0 / rate);
    let mut tasks = tokio::task::JoinSet::new();
    let late_sends = Arc::new(AtomicU64::new(0));
    for i in 0..total {
        let scheduled = start + interval.mul_f64(i as f64);
        tokio::time::sleep_until(scheduled).await;
        if scheduled.elapsed() > Duration::from_millis(5) {
            late_sends.fetch_add(1, Ordering::Relaxed);
        }
        let op = mix.pick(&mut rand::thread_rng());
        let (world, tally, hist, by_op) = (world.clone(), tally.clone(), hist.clone(), by_op.clone());
        tasks.spawn(async move {
            let r = world.run(op, &tally).await;
            // from the scheduled time: waiting for a connection or a stalled replica counts
            let us = scheduled.elapsed().as_micros().max(1) as u64;
            tally.count(&r);
            if let Ok(mut h) = hist.lock() {
                let _ = h.record(us);
            }
            if let Ok(mut m) = by_op.lock() {
                let h = match m.entry(format!("{op:?}")) {
                    std::collections::btree_map::Entry::Occupied(e) => Some(e.into_mut()),
                    std::collections::btree_map::Entry::Vacant(e) => {
                        new_histogram().ok().map(|h| e.insert(h))
                    }
                };
                if let Some(h) = h {
                    let _ = h.record(us);
                }
            }
        });
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    let secs = start.elapsed().as_secs_f64();
    let cancelled = give_stock_back(&world, &tally).await;
    let h = hist.lock().map_err(|_| anyhow::anyhow!("histogram lock"))?.clone();
    let mut out = tally.json();
    out["target_rps"] = json!(rate);
    out["seconds"] = json!(secs);
    out["rps"] = json!((out["sent"].as_f64().unwrap_or(0.0) / secs).round());
    out["late_sends"] = json!(late_sends.load(Ordering::Relaxed));
    out["cancelled_after"] = json!(cancelled);
    out["latency"] = latency_json(&h);
    if let Ok(m) = by_op.lock() {
        out["latency_by_op"] = m.iter().map(|(k, h)| (k.clone(), latency_json(h))).collect();
    }
    Ok(out)
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let out = match cli.command {
        Command::Shoppers { base, count } => shoppers(&base, count).await?,
        Command::Peak { run, connections } => {
            let w = World::load(&run.base, &run.shoppers, connections)?;
            peak(w, run.mix, connections, run.seconds, None).await?
        }
        Command::Rate { run, rate: r } => {
            let w = World::load(&run.base, &run.shoppers, 512)?;
            rate(w, run.mix, r, run.seconds).await?
        }
        Command::Checkout { run, connections } => {
            let w = World::load(&run.base, &run.shoppers, connections)?;
            peak(w, run.mix, connections, run.seconds, Some(Op::Checkout)).await?
        }
    };
    println!("{out}");
    Ok(())
}
