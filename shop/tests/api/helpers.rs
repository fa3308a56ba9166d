//! Spawning the app and a cookie-keeping shopper client.

use std::collections::HashMap;

use reqwest::{header, redirect::Policy, Client, Response, StatusCode};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use serde_json::{json, Value};
use shop::{infra::store::Store, settings::Settings, startup::Application};

pub use crate::stall_proxy::StallProxy;

pub const ADMIN_EMAIL: &str = "admin@distshop.test";
pub const ADMIN_PASSWORD: &str = "admin-password-123";
pub const PASSWORD: &str = "correct horse battery";

pub struct TestApp {
    pub base: String,
    pub host: String,
    pub db: DatabaseConnection,
    pub store: Store,
    pub settings: Settings,
    _dir: Option<tempfile::TempDir>,
}

fn unique() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_string()
}

/// A MySQL database of its own for this test, on the server of `SHOP_TEST_DATABASE_URL`.
async fn mysql_database(server_url: &str) -> String {
    let mut url = url::Url::parse(server_url).expect("SHOP_TEST_DATABASE_URL");
    let name = format!("distshop_test_{}", unique());
    url.set_path("/mysql");
    let admin = sea_orm::Database::connect(url.as_str()).await.expect("connect to the test MySQL server");
    admin
        .execute_raw(Statement::from_string(admin.get_database_backend(), format!("CREATE DATABASE {name}")))
        .await
        .expect("create test database");
    admin.close().await.ok();
    url.set_path(&format!("/{name}"));
    url.to_string()
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_, _| {}).await
}

/// The app on a MariaDB (`SHOP_TEST_DATABASE_URL`) whose connections go through a
/// [`StallProxy`], with `env` on top of the usual test settings; `None` without a MariaDB.
pub async fn spawn_app_behind_proxy(
    stall: std::time::Duration,
    env: &[(&str, &str)],
) -> Option<(TestApp, StallProxy)> {
    let server = std::env::var("SHOP_TEST_DATABASE_URL").ok().filter(|s| !s.is_empty())?;
    let proxy = StallProxy::start(&server, stall).await;
    let port = proxy.port;
    let app = spawn_app_with(move |settings, db_url| {
        let mut u = url::Url::parse(db_url).expect("database url");
        u.set_host(Some("127.0.0.1")).expect("host");
        u.set_port(Some(port)).expect("port");
        *db_url = u.to_string();
        for (k, v) in env {
            settings.insert(k.to_string(), v.to_string());
        }
    })
    .await;
    Some((app, proxy))
}

/// The app with a last say over its settings and database URL (`adjust(env, database_url)`).
pub async fn spawn_app_with(adjust: impl FnOnce(&mut HashMap<String, String>, &mut String)) -> TestApp {
    let mut env: HashMap<String, String> = HashMap::new();
    let mut dir = None;
    let db_url = match std::env::var("SHOP_TEST_DATABASE_URL").ok().filter(|s| !s.is_empty()) {
        Some(server) => {
            // Causal reads, as on Galera; plain MariaDB accepts the variable too.
            env.insert("SHOP_DB_SYNC_WAIT".into(), "1".into());
            mysql_database(&server).await
        }
        None => {
            let d = tempfile::tempdir().expect("tempdir");
            let url = format!("sqlite://{}/shop.db", d.path().display());
            dir = Some(d);
            url
        }
    };
    env.insert("SHOP_DATABASE_URL".into(), db_url);
    if let Some(urls) = std::env::var("SHOP_TEST_REDIS_URLS").ok().filter(|s| !s.is_empty()) {
        env.insert("SHOP_REDIS_URLS".into(), urls);
    }
    env.insert("SHOP_LISTEN".into(), "127.0.0.1:0".into());
    env.insert("SHOP_SESSION_KEY".into(), "test-session-key-that-is-long-enough-0123456789".into());
    env.insert("SHOP_REDIS_PREFIX".into(), format!("test:{}:", unique()));
    env.insert("SHOP_ADMIN_EMAIL".into(), ADMIN_EMAIL.into());
    env.insert("SHOP_ADMIN_PASSWORD".into(), ADMIN_PASSWORD.into());
    env.insert("SHOP_WORKERS".into(), "2".into());
    // every test client is 127.0.0.1: per-address limits would make the suite's many accounts
    // and parallel logins throttle each other (tests/api/security.rs tests them at their defaults)
    env.insert("SHOP_REGISTER_LIMIT".into(), "0".into());
    env.insert("SHOP_HASH_PER_CLIENT".into(), "256".into());
    let mut db_url = env.remove("SHOP_DATABASE_URL").unwrap_or_default();
    adjust(&mut env, &mut db_url);
    env.insert("SHOP_DATABASE_URL".into(), db_url);
    let settings = Settings::from_map(&env).expect("test settings");
    shop::edge::web::init_templates().expect("templates");
    let db = shop::infra::db::connect(&settings).await.expect("connect");
    shop::infra::db::migrate(&db).await.expect("migrate");
    shop::areas::seed::run(&db, &settings).await.expect("seed");
    let store = Store::from_settings(&settings).await.expect("session store");
    let mut app = TestApp { base: String::new(), host: String::new(), db, store, settings, _dir: dir };
    app.base = app.start_instance().await;
    app.host = app.base.trim_start_matches("http://").to_string();
    app
}

impl TestApp {
    /// Start one more instance on the same database and session store (another "replica").
    pub async fn start_instance(&self) -> String {
        let app = Application::build_with(self.settings.clone(), self.db.clone(), self.store.clone())
            .expect("build app");
        let base = format!("http://127.0.0.1:{}", app.port());
        tokio::spawn(app.server());
        base
    }

    pub fn shopper(&self) -> Shopper {
        Shopper::new(&self.base)
    }

    /// A logged-in customer with a fresh account.
    pub async fn customer(&self) -> Shopper {
        let s = self.shopper();
        let email = format!("c{}@example.org", unique());
        assert_eq!(s.register(&email, PASSWORD, "Ada Lovelace").await.status(), 201);
        assert_eq!(s.login(&email, PASSWORD).await.status(), 200);
        s
    }

    pub async fn admin(&self) -> Shopper {
        let s = self.shopper();
        assert_eq!(s.login(ADMIN_EMAIL, ADMIN_PASSWORD).await.status(), 200);
        s
    }

    pub async fn sql(&self, sql: &str, values: Vec<sea_orm::Value>) -> Vec<sea_orm::QueryResult> {
        self.db
            .query_all_raw(Statement::from_sql_and_values(self.db.get_database_backend(), sql, values))
            .await
            .expect("sql")
    }

    /// A product of our own with a known stock and price (2500 cents).
    pub async fn product(&self, stock: i64) -> i64 {
        let sku = format!("T-{}", unique());
        let name = format!("Test product {sku}");
        self.db
            .execute_raw(Statement::from_sql_and_values(
                self.db.get_database_backend(),
                "INSERT INTO products (sku, name, description, price_cents, currency, stock, category, created_at)
                 VALUES (?, ?, 'A product made by a test.', 2500, 'EUR', ?, 'Test', 0)",
                vec![sku.clone().into(), name.into(), stock.into()],
            ))
            .await
            .expect("insert product");
        let rows = self.sql("SELECT id FROM products WHERE sku = ?", vec![sku.into()]).await;
        rows[0].try_get::<i64>("", "id").unwrap()
    }

    pub async fn stock(&self, product_id: i64) -> i64 {
        let rows = self.sql("SELECT stock FROM products WHERE id = ?", vec![product_id.into()]).await;
        rows[0].try_get::<i64>("", "stock").unwrap()
    }

    pub async fn set_stock(&self, product_id: i64, stock: i64) {
        self.sql("UPDATE products SET stock = ? WHERE id = ?", vec![stock.into(), product_id.into()]).await;
    }

    pub async fn count(&self, sql: &str, values: Vec<sea_orm::Value>) -> i64 {
        let rows = self.sql(sql, values).await;
        rows[0].try_get::<i64>("", "n").unwrap()
    }
}

/// One browser-like client with its own cookie jar.
pub struct Shopper {
    pub client: Client,
    pub base: String,
}

impl Shopper {
    pub fn new(base: &str) -> Self {
        let client = Client::builder()
            .cookie_store(true)
            .redirect(Policy::none())
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .unwrap();
        Shopper { client, base: base.to_string() }
    }

    /// A client whose connections come from another loopback address (another "client address"
    /// for per-address limits; Linux routes all of 127.0.0.0/8 to lo).
    pub fn from_address(base: &str, ip: &str) -> Self {
        let client = Client::builder()
            .cookie_store(true)
            .redirect(Policy::none())
            .local_address(Some(ip.parse().unwrap()))
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .unwrap();
        Shopper { client, base: base.to_string() }
    }

    /// The same cookie jar against another instance.
    pub fn at(&self, base: &str) -> Shopper {
        Shopper { client: self.client.clone(), base: base.to_string() }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    pub async fn get_json(&self, path: &str) -> (StatusCode, Value) {
        let r = self.get(path).await;
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.client.post(self.url(path)).json(body).send().await.unwrap()
    }

    pub async fn put_json(&self, path: &str, body: &Value) -> Response {
        self.client.put(self.url(path)).json(body).send().await.unwrap()
    }

    pub async fn delete(&self, path: &str) -> Response {
        self.client.delete(self.url(path)).send().await.unwrap()
    }

    pub async fn register(&self, email: &str, password: &str, name: &str) -> Response {
        self.post_json("/api/register", &json!({"email": email, "password": password, "name": name})).await
    }

    pub async fn login(&self, email: &str, password: &str) -> Response {
        self.post_json("/api/login", &json!({"email": email, "password": password})).await
    }

    pub async fn add(&self, product_id: i64, quantity: i64) -> Response {
        self.post_json("/api/cart/items", &json!({"product_id": product_id, "quantity": quantity})).await
    }

    pub async fn cart(&self) -> Value {
        let (s, v) = self.get_json("/api/cart").await;
        assert_eq!(s, 200, "{v}");
        v
    }

    pub async fn checkout(&self, key: &str) -> Response {
        self.client
            .post(self.url("/api/orders"))
            .header("Idempotency-Key", key)
            .header(header::CONTENT_TYPE, "application/json")
            .body("{}")
            .send()
            .await
            .unwrap()
    }

    /// The CSRF token of a page's forms.
    pub async fn csrf(&self, path: &str) -> String {
        let html = self.get(path).await.text().await.unwrap();
        csrf_in(&html)
    }

    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> Response {
        self.client.post(self.url(path)).form(fields).send().await.unwrap()
    }
}

pub fn csrf_in(html: &str) -> String {
    let marker = "name=\"csrf_token\" value=\"";
    let start = html.find(marker).expect("a form with a csrf token") + marker.len();
    html[start..].split('"').next().unwrap().to_string()
}

pub fn hidden_in(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).expect("hidden field") + marker.len();
    html[start..].split('"').next().unwrap().to_string()
}

pub fn session_cookie(r: &Response) -> Option<String> {
    r.cookies().find(|c| c.name() == shop::edge::session::COOKIE_NAME).map(|c| c.value().to_string())
}

pub fn key() -> String {
    uuid::Uuid::new_v4().to_string()
}

pub async fn error_of(r: Response) -> (StatusCode, Value) {
    let s = r.status();
    let v: Value = r.json().await.unwrap_or(Value::Null);
    assert!(v["error"]["code"].is_string() && v["error"]["message"].is_string(), "error shape: {v}");
    (s, v)
}
