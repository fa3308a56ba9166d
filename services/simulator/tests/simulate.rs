//! The simulator against the real shop, in-process: two replicas on one database (SQLite in a
//! temp dir, or a fresh MySQL database when `SHOP_TEST_DATABASE_URL` is set, as in CI's
//! real-backends phase). A clean run must pass with zero violations and a complete report whose
//! acknowledged orders satisfy the checker's invariants in the database; broken replicas and
//! tampered data must be caught.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{collections::HashMap, path::Path, time::Duration};

use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use shop::{infra::store::Store, settings::Settings, startup::Application};
use simulator::{
    check::{self, DbItem, DbOrder, DbProduct, DbState},
    config::{Arrivals, FaultCommand, Profile},
    findings::{FailOn, Kind},
    model::OrderLine,
    runner::{self, LoadModel, Progress, RunConfig},
    snapshot::{ProductStock, SnapshotSource, StockSnapshot},
};

struct TestShop {
    settings: Settings,
    db: DatabaseConnection,
    store: Store,
    mysql_url: Option<String>,
    _dir: tempfile::TempDir,
}

fn unique() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_string()
}

async fn mysql_database(server_url: &str) -> String {
    let mut url = reqwest::Url::parse(server_url).unwrap();
    let name = format!("distshop_sim_test_{}", unique());
    url.set_path("/mysql");
    let admin = sea_orm::Database::connect(url.as_str()).await.unwrap();
    admin
        .execute_raw(Statement::from_string(admin.get_database_backend(), format!("CREATE DATABASE {name}")))
        .await
        .unwrap();
    admin.close().await.ok();
    url.set_path(&format!("/{name}"));
    url.to_string()
}

async fn shop() -> TestShop {
    let dir = tempfile::tempdir().unwrap();
    let mut env: HashMap<String, String> = HashMap::new();
    let mysql_url = match std::env::var("SHOP_TEST_DATABASE_URL").ok().filter(|s| !s.is_empty()) {
        Some(server) => Some(mysql_database(&server).await),
        None => None,
    };
    let db_url = mysql_url.clone().unwrap_or_else(|| format!("sqlite://{}/shop.db", dir.path().display()));
    env.insert("SHOP_DATABASE_URL".into(), db_url);
    if let Some(urls) = std::env::var("SHOP_TEST_REDIS_URLS").ok().filter(|s| !s.is_empty()) {
        env.insert("SHOP_REDIS_URLS".into(), urls);
    }
    env.insert("SHOP_LISTEN".into(), "127.0.0.1:0".into());
    env.insert("SHOP_SESSION_KEY".into(), "simulator-test-session-key-0123456789abcdef".into());
    env.insert("SHOP_REDIS_PREFIX".into(), format!("simtest:{}:", unique()));
    env.insert("SHOP_ADMIN_PASSWORD".into(), "admin-password-123".into());
    env.insert("SHOP_WORKERS".into(), "2".into());
    let settings = Settings::from_map(&env).unwrap();
    shop::edge::web::init_templates().unwrap();
    let db = shop::infra::db::connect(&settings).await.unwrap();
    shop::infra::db::migrate(&db).await.unwrap();
    shop::areas::seed::run(&db, &settings).await.unwrap();
    let store = Store::from_settings(&settings).await.unwrap();
    TestShop { settings, db, store, mysql_url, _dir: dir }
}

impl TestShop {
    /// One more replica on the same database; `store` None = the shared session store.
    fn replica(&self, store: Option<Store>) -> String {
        let app = Application::build_with(
            self.settings.clone(),
            self.db.clone(),
            store.unwrap_or_else(|| self.store.clone()),
        )
        .unwrap();
        let base = format!("http://127.0.0.1:{}", app.port());
        tokio::spawn(app.server());
        base
    }

    async fn exec(&self, sql: &str) {
        self.db
            .execute_raw(Statement::from_string(self.db.get_database_backend(), sql.to_string()))
            .await
            .unwrap();
    }

    async fn rows(&self, sql: &str) -> Vec<sea_orm::QueryResult> {
        self.db
            .query_all_raw(Statement::from_string(self.db.get_database_backend(), sql.to_string()))
            .await
            .unwrap()
    }

    /// The checker's view of the database, read through the shop's own connection (works for
    /// SQLite too, where the checker's MySQL client cannot go).
    async fn db_state(&self) -> DbState {
        let mut s = DbState::default();
        for r in self.rows("SELECT id, email FROM users").await {
            s.users.insert(r.try_get("", "id").unwrap(), r.try_get("", "email").unwrap());
        }
        for r in self.rows("SELECT id, user_id, idempotency_key, status, total_cents, created_at, updated_at FROM orders").await {
            s.orders.push(DbOrder {
                id: r.try_get("", "id").unwrap(),
                user_id: r.try_get("", "user_id").unwrap(),
                key: r.try_get("", "idempotency_key").unwrap(),
                status: r.try_get("", "status").unwrap(),
                total_cents: r.try_get("", "total_cents").unwrap(),
                created_at: r.try_get("", "created_at").unwrap(),
                updated_at: r.try_get("", "updated_at").unwrap(),
            });
        }
        for r in self
            .rows("SELECT order_id, product_id, sku, name, quantity, unit_price_cents, line_total_cents FROM order_items")
            .await
        {
            s.items.push(DbItem {
                order_id: r.try_get("", "order_id").unwrap(),
                line: OrderLine {
                    product_id: r.try_get("", "product_id").unwrap(),
                    sku: r.try_get("", "sku").unwrap(),
                    name: r.try_get("", "name").unwrap(),
                    quantity: r.try_get("", "quantity").unwrap(),
                    unit_price_cents: r.try_get("", "unit_price_cents").unwrap(),
                    line_total_cents: r.try_get("", "line_total_cents").unwrap(),
                },
            });
        }
        for r in self.rows("SELECT id, sku, stock FROM products").await {
            s.products.push(DbProduct {
                id: r.try_get("", "id").unwrap(),
                sku: r.try_get("", "sku").unwrap(),
                stock: r.try_get("", "stock").unwrap(),
            });
        }
        s
    }

    /// `stock + reserved` per product, like `distshop-sim snapshot` takes it.
    async fn snapshot(&self) -> StockSnapshot {
        let products = self
            .rows(simulator::snapshot::RESERVED_SQL)
            .await
            .iter()
            .map(|r| ProductStock {
                id: r.try_get("", "id").unwrap(),
                sku: r.try_get("", "sku").unwrap(),
                stock: r.try_get("", "stock").unwrap(),
                reserved: Some(r.try_get("", "reserved").unwrap()),
            })
            .collect();
        StockSnapshot {
            source: SnapshotSource::Database,
            taken_at_unix_ms: 0,
            taken_until_unix_ms: 0,
            origin: "test".into(),
            products,
        }
    }
}

/// Fast journeys that always fill the cart, check out and look at the orders.
fn busy_profile() -> Profile {
    Profile {
        think_ms: [0, 20],
        p_new_account: 0.3,
        cart_adds: [1, 3],
        p_checkout: 0.9,
        p_view_orders: 0.8,
        p_cancel: 0.3,
        p_logout: 0.3,
        ..Profile::default()
    }
}

fn config(bases: Vec<String>, report: &Path, model: LoadModel, secs: u64) -> RunConfig {
    RunConfig {
        base_urls: bases,
        model,
        duration: Duration::from_secs(secs),
        max_requests: 100_000,
        timeout: Duration::from_secs(15),
        profile: busy_profile(),
        report_dir: report.to_path_buf(),
        extra_faults_file: None,
        fault_commands: vec![],
        fail_on: FailOn::DEFAULT.to_vec(),
        seed: 7,
        database_url: None,
        verify: true,
        verify_limit: 1000,
        progress: Progress::Off,
        handle_ctrl_c: false,
        command_line: "integration test".into(),
        control_room: None,
    }
}

fn failed_invariants(results: &[check::Invariant]) -> Vec<String> {
    results.iter().filter(|i| !i.ok()).map(|i| format!("{}: {:?}", i.name, i.violations)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn clean_runs_pass_and_their_orders_hold_in_the_database() {
    let shop = shop().await;
    let bases = vec![shop.replica(None), shop.replica(None)];
    let before = shop.snapshot().await;
    let out = tempfile::tempdir().unwrap();

    // Closed model over two replicas, with a fault command marked on the timeline.
    let report = out.path().join("closed");
    let mut cfg = config(bases.clone(), &report, LoadModel::Closed { shoppers: 3 }, 3);
    cfg.fault_commands = vec![FaultCommand {
        at: Duration::from_secs(1),
        command: "true".into(),
        label: Some("test fault".into()),
    }];
    let run = runner::run(cfg).await.unwrap();
    let s = &run.summary;
    assert!(run.passed(), "verdict {:?}, findings {:#?}", s.verdict, s.findings);
    for k in Kind::ALL {
        assert_eq!(s.violation_count(k), 0, "{k:?}: {:#?}", s.findings);
    }
    assert!(s.requests > 50, "only {} requests", s.requests);
    assert!(s.orders_acknowledged > 0, "no order was placed: {:?}", s.counters);
    assert!(s.counters.get("logins").copied().unwrap_or(0) > 0);
    assert!(s.verification.accounts_verified > 0, "{:?}", s.verification);
    assert_eq!(s.errors["5xx"] + s.errors["network"] + s.errors["timeout"], 0, "{:?}", s.errors);
    assert!(s.endpoints.iter().any(|e| e.endpoint == "POST /api/orders" && e.count > 0));
    assert_eq!(s.faults.len(), 1, "{:?}", s.faults);
    assert_eq!(s.faults[0].label, "test fault");
    assert!((0.9..2.0).contains(&s.faults[0].t_s), "{:?}", s.faults);
    assert_eq!(s.fault_commands[0].exit_code, Some(0));

    // The report is complete.
    for f in [
        "summary.json",
        "summary.md",
        "timeline.csv",
        "chart.svg",
        "acknowledged.jsonl",
        "initial-stock.json",
        "faults.jsonl",
    ] {
        assert!(report.join(f).metadata().map(|m| m.len() > 0).unwrap_or(false), "{f} missing or empty");
    }
    let timeline = std::fs::read_to_string(report.join("timeline.csv")).unwrap();
    assert!(timeline.lines().count() >= 3, "{timeline}");
    assert!(timeline.contains("test fault"));
    let chart = std::fs::read_to_string(report.join("chart.svg")).unwrap();
    assert!(chart.contains("test fault") && chart.contains("</svg>"));
    let md = std::fs::read_to_string(report.join("summary.md")).unwrap();
    assert!(md.contains("**Verdict: PASS"), "{md}");
    let acks = check::read_acks(&report.join("acknowledged.jsonl")).unwrap();
    let acked_orders = acks.iter().filter(|a| matches!(a, simulator::state::Ack::Order { .. })).count();
    assert_eq!(acked_orders as u64, s.orders_acknowledged);
    let initial = StockSnapshot::read(&report.join("initial-stock.json")).unwrap();
    assert_eq!(initial.products.len(), before.products.len(), "the API snapshot saw every product");

    // Open model on the same shop.
    let report2 = out.path().join("open");
    let cfg = config(
        bases,
        &report2,
        LoadModel::Open { rate: 4.0, arrivals: Arrivals::Poisson, max_in_flight: 50 },
        3,
    );
    let run2 = runner::run(cfg).await.unwrap();
    assert!(run2.passed(), "{:#?}", run2.summary.findings);
    assert!(run2.summary.counters.get("journeys").copied().unwrap_or(0) >= 5, "{:?}", run2.summary.counters);

    // The invariants hold in the database, for both runs' acknowledged orders.
    let mut all_acks = acks;
    all_acks.extend(check::read_acks(&report2.join("acknowledged.jsonl")).unwrap());
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(report2.join("summary.json")).unwrap()).unwrap();
    let state = shop.db_state().await;
    let results = check::evaluate(&state, &all_acks, Some(&before), Some(&summary));
    assert!(failed_invariants(&results).is_empty(), "{:#?}", failed_invariants(&results));

    // With MySQL, the real checker (its own client, SQL and snapshot) agrees, and catches a
    // corrupted stock and a second order for a key.
    if let Some(url) = &shop.mysql_url {
        let db_before = report.join("db-before.json");
        before.write(&db_before).unwrap();
        let args = simulator::config::CheckArgs {
            database_url: url.clone(),
            report: report.clone(),
            initial_stock: Some(db_before.clone()),
            compare_urls: vec![url.clone()],
            allow_remote: false,
        };
        // Only the first run's acks are in this folder; the second run's orders are covered by
        // conservation and the key invariant.
        assert!(check::run(&args).await.unwrap(), "check failed on a clean database");
        let live = check::load(url).await.unwrap();
        assert_eq!(live.orders.len(), state.orders.len());

        shop.exec("UPDATE products SET stock = stock + 1 WHERE id = (SELECT MIN(id) FROM (SELECT id FROM products) p)").await;
        assert!(!check::run(&args).await.unwrap(), "a changed stock must fail the check");
        let results =
            check::evaluate(&check::load(url).await.unwrap(), &all_acks, Some(&before), Some(&summary));
        assert_eq!(failed_invariants(&results).len(), 1, "{:#?}", failed_invariants(&results));
        assert!(failed_invariants(&results)[0].starts_with(check::INV_CONSERVATION));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_without_the_shared_session_store_loses_sessions() {
    let shop = shop().await;
    // The classic mistake: the second replica keeps sessions in its own memory.
    let bases = vec![shop.replica(None), shop.replica(Some(Store::memory("elsewhere:")))];
    let out = tempfile::tempdir().unwrap();
    let run = runner::run(config(bases, out.path(), LoadModel::Closed { shoppers: 2 }, 3)).await.unwrap();
    let s = &run.summary;
    assert!(!run.passed());
    assert!(s.violation_count(Kind::LostSession) > 0, "{:#?}", s.findings);
    assert!(s.verdict.failed.contains_key("lost-session"), "{:?}", s.verdict);
    let f = s.findings.iter().find(|f| f.kind == Kind::LostSession).unwrap();
    assert!(f.email.starts_with("sim-") && f.shopper > 0, "the finding names the shopper: {f:?}");
    assert!(f.request_id.as_deref().is_some_and(|r| r.starts_with("sim-")), "{f:?}");
    // And the checker refuses the run on the simulator's own counts.
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("summary.json")).unwrap()).unwrap();
    let results = check::evaluate(&shop.db_state().await, &[], None, Some(&summary));
    assert!(failed_invariants(&results).iter().any(|m| m.starts_with(check::INV_SUMMARY)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lost_orders_and_tampered_carts_are_caught() {
    let shop = shop().await;
    let bases = vec![shop.replica(None)];
    let out = tempfile::tempdir().unwrap();
    let cfg = config(bases, out.path(), LoadModel::Closed { shoppers: 3 }, 6);
    let tamper = {
        let db = shop.db.clone();
        let store = shop.store.clone();
        async move {
            // once the shoppers have placed an order (polled: a loaded CI machine is slower),
            // with seconds of the run left for them to look at their carts
            tokio::time::sleep(Duration::from_millis(1500)).await;
            let b = db.get_database_backend();
            let q = |sql: &str| Statement::from_string(b, sql.to_string());
            let mut newest = None;
            for _ in 0..30 {
                let rows = db.query_all_raw(q("SELECT MAX(id) AS id FROM orders")).await.unwrap();
                newest = rows[0].try_get::<Option<i64>>("", "id").unwrap();
                if newest.is_some() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            // Lose the newest order.
            let id = newest.expect("the shoppers placed an order within 4.5 s");
            db.execute_raw(q(&format!("DELETE FROM order_items WHERE order_id = {id}"))).await.unwrap();
            db.execute_raw(q(&format!("DELETE FROM orders WHERE id = {id}"))).await.unwrap();
            // Slip a product into every shopper's cart.
            let users = db.query_all_raw(q("SELECT id FROM users WHERE email LIKE 'sim-%'")).await.unwrap();
            for u in users {
                let uid: i64 = u.try_get("", "id").unwrap();
                store
                    .cart_set(&format!("u:{uid}"), shop::domain::ProductId(1), 1, Duration::from_secs(3600))
                    .await
                    .unwrap();
            }
            id
        }
    };
    let (run, lost_id) = tokio::join!(runner::run(cfg), tamper);
    let s = run.unwrap().summary;
    assert!(!s.verdict.pass);
    let lost = s.findings.iter().find(|f| f.kind == Kind::LostOrder);
    assert!(
        lost.is_some_and(|f| f.detail.contains(&format!("order {lost_id} "))),
        "order {lost_id} was deleted: {:#?}",
        s.findings
    );
    assert!(
        s.findings.iter().any(|f| f.kind == Kind::Content && f.detail.contains("product 1")),
        "the slipped-in cart line: {:#?}",
        s.findings
    );
}
