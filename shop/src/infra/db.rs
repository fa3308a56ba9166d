//! The relational store: connection pool, bounded statements, migrations and transaction retry.
//!
//! All SQL goes through [`all`], [`one`] and [`exec`], which bound every statement with the
//! process-wide statement timeout, so a dead database node costs a 503 within seconds instead of a
//! hung request. Queries take `&impl ConnectionTrait`, so the same function runs on the pool or
//! inside a transaction. The SQL is plain and portable (`?` placeholders work on MySQL/MariaDB and
//! SQLite alike); only the DDL differs per backend.

use std::{
    future::Future,
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr, QueryResult, SqlErr,
    Statement, Value,
};

use crate::{
    domain::{OrderId, ProductId, UserId},
    error::{AppError, HtmlError},
    settings::Settings,
};

/// A typed id is bound as its number and read from its number.
macro_rules! id_values {
    ($($id:ident),*) => {$(
        impl From<$id> for Value {
            fn from(id: $id) -> Self {
                id.0.into()
            }
        }

        impl sea_orm::TryGetable for $id {
            fn try_get_by<I: sea_orm::ColIdx>(res: &QueryResult, index: I) -> Result<Self, sea_orm::TryGetError> {
                i64::try_get_by(res, index).map($id)
            }
        }
    )*};
}
id_values!(OrderId, ProductId, UserId);

static STATEMENT_TIMEOUT_MS: AtomicU64 = AtomicU64::new(2000);
static RETRY_BUDGET_MS: AtomicU64 = AtomicU64::new(6000);

fn statement_timeout() -> Duration {
    Duration::from_millis(STATEMENT_TIMEOUT_MS.load(Ordering::Relaxed))
}

/// How long reads and transactions keep retrying (`SHOP_DB_RETRY_MS`).
fn retry_budget() -> Duration {
    Duration::from_millis(RETRY_BUDGET_MS.load(Ordering::Relaxed))
}

/// What went wrong with a database call, classified for retry and for the user.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database statement timed out after {0:?}")]
    Timeout(Duration),
    /// The connection could not be had or broke: another attempt (maybe another node) may work.
    #[error("database unavailable: {0}")]
    Unavailable(DbErr),
    /// The pool was closed (the process is shutting down): no attempt will work.
    #[error("database pool closed: {0}")]
    Closed(DbErr),
    /// A transaction lost a conflict (deadlock, Galera certification failure, SQLite busy).
    #[error("transaction conflict: {0}")]
    Conflict(DbErr),
    #[error("unique constraint violated: {0}")]
    Unique(String),
    #[error("database error: {0}")]
    Other(DbErr),
}

impl DbError {
    /// The metric label of this kind of failure (`shop_db_errors_total{kind}`).
    pub fn kind(&self) -> &'static str {
        match self {
            DbError::Timeout(_) => "timeout",
            DbError::Unavailable(_) => "unavailable",
            DbError::Closed(_) => "closed",
            DbError::Conflict(_) => "conflict",
            DbError::Unique(_) => "unique",
            DbError::Other(_) => "other",
        }
    }
}

impl DbError {
    /// Worth running the whole transaction again?
    pub fn is_retryable(&self) -> bool {
        matches!(self, DbError::Timeout(_) | DbError::Unavailable(_) | DbError::Conflict(_))
    }
}

impl From<DbErr> for DbError {
    fn from(e: DbErr) -> Self {
        if let Some(SqlErr::UniqueConstraintViolation(m)) = e.sql_err() {
            return DbError::Unique(m);
        }
        match &e {
            DbErr::ConnectionAcquire(sea_orm::ConnAcquireErr::ConnectionClosed) => DbError::Closed(e),
            DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => DbError::Unavailable(e),
            DbErr::Exec(sea_orm::RuntimeErr::SqlxError(inner))
            | DbErr::Query(sea_orm::RuntimeErr::SqlxError(inner)) => classify_sqlx(inner, e.clone()),
            _ => DbError::Other(e),
        }
    }
}

fn classify_sqlx(inner: &sea_orm::sqlx::Error, e: DbErr) -> DbError {
    use sea_orm::sqlx::Error as X;
    match inner {
        X::PoolClosed => DbError::Closed(e),
        X::Io(_) | X::PoolTimedOut | X::WorkerCrashed | X::Tls(_) | X::Protocol(_) => DbError::Unavailable(e),
        X::Database(db) => {
            if let Some(my) = db.try_downcast_ref::<sea_orm::sqlx::mysql::MySqlDatabaseError>() {
                return match my.number() {
                    // 1213 deadlock / Galera certification failure, 1205 lock wait timeout.
                    1205 | 1213 => DbError::Conflict(e),
                    // 1047 WSREP not ready, 1053 shutdown in progress, 2006/2013 gone away, 1927 killed.
                    1047 | 1053 | 1927 | 2006 | 2013 => DbError::Unavailable(e),
                    _ => DbError::Other(e),
                };
            }
            match db.code().as_deref() {
                // SQLITE_BUSY, SQLITE_LOCKED, SQLITE_BUSY_SNAPSHOT; SQLSTATE serialization failure.
                Some("5" | "6" | "517" | "40001") => DbError::Conflict(e),
                _ => DbError::Other(e),
            }
        }
        _ => DbError::Other(e),
    }
}

impl From<DbError> for AppError {
    fn from(e: DbError) -> Self {
        crate::infra::metrics::record_db_error_kind(e.kind());
        match e {
            DbError::Timeout(_) | DbError::Unavailable(_) | DbError::Conflict(_) | DbError::Closed(_) => {
                tracing::warn!(error = %e, "database unavailable");
                AppError::Unavailable("the database is temporarily unavailable, please retry".into())
            }
            other => AppError::Unexpected(anyhow::Error::new(other)),
        }
    }
}

/// `SET SESSION wsrep_sync_wait = N` for N in 0..=15, as static statements.
const SYNC_WAIT_SQL: [&str; 16] = [
    "SET SESSION wsrep_sync_wait = 0",
    "SET SESSION wsrep_sync_wait = 1",
    "SET SESSION wsrep_sync_wait = 2",
    "SET SESSION wsrep_sync_wait = 3",
    "SET SESSION wsrep_sync_wait = 4",
    "SET SESSION wsrep_sync_wait = 5",
    "SET SESSION wsrep_sync_wait = 6",
    "SET SESSION wsrep_sync_wait = 7",
    "SET SESSION wsrep_sync_wait = 8",
    "SET SESSION wsrep_sync_wait = 9",
    "SET SESSION wsrep_sync_wait = 10",
    "SET SESSION wsrep_sync_wait = 11",
    "SET SESSION wsrep_sync_wait = 12",
    "SET SESSION wsrep_sync_wait = 13",
    "SET SESSION wsrep_sync_wait = 14",
    "SET SESSION wsrep_sync_wait = 15",
];

/// Open the pool. Waits (bounded) for the database to come up, so replicas may start first.
pub async fn connect(settings: &Settings) -> anyhow::Result<DatabaseConnection> {
    STATEMENT_TIMEOUT_MS.store(settings.db_timeout.as_millis() as u64, Ordering::Relaxed);
    RETRY_BUDGET_MS.store(settings.db_retry.as_millis() as u64, Ordering::Relaxed);
    let mut opts = ConnectOptions::new(settings.database_url.clone());
    opts.max_connections(settings.db_max_connections)
        .min_connections(1)
        .connect_timeout(settings.db_timeout)
        .acquire_timeout(settings.db_timeout)
        .idle_timeout(Duration::from_secs(60))
        .max_lifetime(Duration::from_secs(1800))
        .sqlx_logging(false);
    if settings.is_embedded_db() {
        opts.max_connections(settings.db_max_connections.min(8)).map_sqlx_sqlite_opts(|o| {
            o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .busy_timeout(Duration::from_secs(5))
                .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                .foreign_keys(true)
        });
    }
    if !settings.is_embedded_db() {
        let sync_wait = settings.db_sync_wait;
        opts.map_sqlx_mysql_pool_opts(move |o| {
            o.after_connect(move |conn, _meta| {
                Box::pin(async move {
                    use sea_orm::sqlx::{Executor, Row};
                    // MariaDB reports an open transaction in @@in_transaction (see release_check)
                    let version: String = conn.fetch_one("SELECT VERSION()").await?.try_get(0)?;
                    IS_MARIADB.store(version.contains("MariaDB"), Ordering::Relaxed);
                    // Causal reads on Galera: a read waits until this node has applied every
                    // write the cluster committed before it, so a page right after checkout sees
                    // the order wherever it was written. Set per connection, so every pooled
                    // connection has it.
                    if let Some(level) = sync_wait {
                        conn.execute(SYNC_WAIT_SQL[usize::from(level) & 15]).await?;
                    }
                    Ok(())
                })
            })
            .after_release(|conn, _meta| Box::pin(release_check(conn)))
        });
    }
    let mut last = None;
    for attempt in 1..=30 {
        match tokio::time::timeout(settings.db_timeout * 2, Database::connect(opts.clone())).await {
            Ok(Ok(db)) => return Ok(db),
            Ok(Err(e)) => last = Some(e.to_string()),
            Err(_) => last = Some("connect timed out".into()),
        }
        tracing::warn!(attempt, error = last.as_deref().unwrap_or(""), "database not reachable yet");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    anyhow::bail!("could not connect to the database: {}", last.unwrap_or_default())
}

/// Whether the server is MariaDB (it has `@@in_transaction`); set when a connection is made.
static IS_MARIADB: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Decide whether a connection that comes back to the pool may serve again.
///
/// A statement bounded by the statement timeout is cancelled by dropping its future, and the
/// connection goes back to the pool with the server's answer still on its way. Two things can
/// then be wrong with it:
///
/// * It is out of step: the driver drains what it knows is pending, but not every point of
///   cancellation is tracked (a cancelled prepare, for one), and the next statement reads the
///   previous one's answer. Seen in the Galera failover scenario as an order acknowledged without
///   its lines and a login refused. So every returned connection answers a question only it can
///   answer — a random number, over the text protocol — within a second, or it is closed.
/// * It is inside a transaction nobody owns: a BEGIN that ran on the server but was cancelled
///   before its answer came (the driver then never learns the transaction began, so dropping the
///   transaction rolls nothing back). Causal reads make that likely during a Galera stall:
///   `wsrep_sync_wait` holds BEGIN too. Such a connection reads from one old snapshot from then
///   on — in the scenario a just-placed order "vanished", a cancelled order read back as placed,
///   a logged-in shopper got 401 — and its autocommit writes are never committed. So a returned
///   connection found in a transaction is rolled back (MariaDB says so in `@@in_transaction`;
///   on other servers every returned connection gets a ROLLBACK, which is a no-op outside one).
///
/// `shop/tests/db_mysql.rs` reproduces both against a real MariaDB.
async fn release_check(conn: &mut sea_orm::sqlx::MySqlConnection) -> Result<bool, sea_orm::sqlx::Error> {
    use sea_orm::sqlx::{AssertSqlSafe, Executor, Row};
    let nonce = rand::random::<u32>() as i64;
    let mariadb = IS_MARIADB.load(Ordering::Relaxed);
    let check = async {
        if mariadb {
            conn.fetch_one(AssertSqlSafe(format!(
                "SELECT {nonce} AS nonce, CAST(@@in_transaction AS SIGNED) AS in_tx"
            )))
            .await
        } else {
            conn.execute("ROLLBACK").await?;
            conn.fetch_one(AssertSqlSafe(format!("SELECT {nonce} AS nonce, 0 AS in_tx"))).await
        }
    };
    let answer = tokio::time::timeout(Duration::from_secs(1), check).await;
    match answer {
        Ok(Ok(row)) if row.try_get::<i64, _>(0).ok() == Some(nonce) => {
            if row.try_get::<i64, _>(1).unwrap_or(1) != 0 {
                crate::infra::metrics::record_db_error_kind("leaked-transaction");
                tracing::warn!(
                    "pooled connection came back inside a transaction (a cancelled BEGIN); rolling it back"
                );
                tokio::time::timeout(Duration::from_secs(1), conn.execute("ROLLBACK")).await.map_err(
                    |_| sea_orm::sqlx::Error::Protocol("no answer to ROLLBACK within 1 s".into()),
                )??;
            }
            Ok(true)
        }
        Ok(Ok(_)) => {
            crate::infra::metrics::record_db_error_kind("desynchronized");
            tracing::warn!("pooled connection answered another statement's result; closing it");
            Err(sea_orm::sqlx::Error::Protocol("connection out of step with the server".into()))
        }
        Ok(Err(e)) => Err(e),
        Err(_) => Err(sea_orm::sqlx::Error::Protocol("no answer to the release check within 1 s".into())),
    }
}

pub fn stmt(c: &impl ConnectionTrait, sql: &str, values: Vec<Value>) -> Statement {
    Statement::from_sql_and_values(c.get_database_backend(), sql, values)
}

async fn bounded<T>(f: impl Future<Output = Result<T, DbErr>>) -> Result<T, DbError> {
    let limit = statement_timeout();
    match tokio::time::timeout(limit, f).await {
        Ok(r) => r.map_err(DbError::from),
        Err(_) => Err(DbError::Timeout(limit)),
    }
}

/// Is `C` the pool (not a transaction)? A statement on the pool may be run again on another
/// connection; inside a transaction only the whole transaction may (see [`retry`]).
fn on_pool<C: 'static>() -> bool {
    std::any::TypeId::of::<C>() == std::any::TypeId::of::<DatabaseConnection>()
}

/// Run a read on the pool again, on a fresh connection, while it fails for a reason another
/// attempt can cure (a node that died under a pooled connection, a failover in progress), within
/// the retry budget. Inside a transaction it runs once.
async fn read<C, T, F, Fut>(_on: &C, what: &'static str, mut f: F) -> Result<T, DbError>
where
    C: ConnectionTrait + 'static,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, DbErr>>,
{
    if !on_pool::<C>() {
        return bounded(f()).await;
    }
    crate::infra::retry::within(
        retry_budget(),
        DbError::is_retryable,
        |attempt, e| {
            crate::infra::metrics::record_tx_retry(what);
            tracing::info!(what, attempt, error = %e, "retrying read");
        },
        || bounded(f()),
    )
    .await
}

/// All rows of a query (retried on the pool, see [`read`]).
pub async fn all<C: ConnectionTrait + 'static>(
    c: &C,
    sql: &str,
    values: Vec<Value>,
) -> Result<Vec<QueryResult>, DbError> {
    let s = stmt(c, sql, values);
    read(c, "read", || c.query_all_raw(s.clone())).await
}

/// The first row of a query, if any (retried on the pool, see [`read`]).
pub async fn one<C: ConnectionTrait + 'static>(
    c: &C,
    sql: &str,
    values: Vec<Value>,
) -> Result<Option<QueryResult>, DbError> {
    let s = stmt(c, sql, values);
    read(c, "read", || c.query_one_raw(s.clone())).await
}

/// Run a statement; returns (rows affected, last insert id).
pub async fn exec(c: &impl ConnectionTrait, sql: &str, values: Vec<Value>) -> Result<(u64, u64), DbError> {
    bounded(c.execute_raw(stmt(c, sql, values))).await.map(|r| (r.rows_affected(), r.last_insert_id()))
}

/// Begin a transaction, bounded like a statement.
pub async fn begin(db: &DatabaseConnection) -> Result<sea_orm::DatabaseTransaction, DbError> {
    use sea_orm::TransactionTrait;
    bounded(db.begin()).await
}

pub async fn commit(tx: sea_orm::DatabaseTransaction) -> Result<(), DbError> {
    bounded(tx.commit()).await
}

/// Read a column, turning a decoding problem into an internal error.
pub fn get<T: sea_orm::TryGetable>(row: &QueryResult, col: &str) -> Result<T, DbError> {
    row.try_get::<T>("", col).map_err(DbError::Other)
}

/// Either a database failure (maybe retryable) or a domain answer that ends the attempt.
#[derive(Debug)]
pub enum TxError {
    Db(DbError),
    App(AppError),
}

impl From<DbError> for TxError {
    fn from(e: DbError) -> Self {
        TxError::Db(e)
    }
}

impl From<AppError> for TxError {
    fn from(e: AppError) -> Self {
        TxError::App(e)
    }
}

impl From<TxError> for AppError {
    fn from(e: TxError) -> Self {
        match e {
            TxError::Db(d) => d.into(),
            TxError::App(a) => a,
        }
    }
}

/// Run a whole transaction again when it lost a conflict or its connection, with jittered
/// backoff, for as long as the retry budget (`SHOP_DB_RETRY_MS`) allows; then the client gets a
/// 503. Only for work that is safe to repeat: the closure starts from scratch each time, and a
/// commit whose answer was lost is recognised by the next attempt (checkout's idempotency key).
pub async fn retry<T, F, Fut>(what: &'static str, f: F) -> Result<T, AppError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, TxError>>,
{
    crate::infra::retry::within(
        retry_budget(),
        |e| matches!(e, TxError::Db(d) if d.is_retryable()),
        |attempt, e| {
            crate::infra::metrics::record_tx_retry(what);
            if let TxError::Db(e) = e {
                tracing::info!(tx = what, attempt, error = %e, "retrying transaction");
            }
        },
        f,
    )
    .await
    .map_err(AppError::from)
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// One schema migration: the same tables, in each backend's dialect.
struct Migration {
    version: i64,
    name: &'static str,
    mysql: &'static [&'static str],
    sqlite: &'static [&'static str],
}

const MYSQL_TABLE: &str = "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci";

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "catalog, accounts, orders",
        mysql: &[
            "CREATE TABLE IF NOT EXISTS products (
            id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
            sku VARCHAR(32) NOT NULL,
            name VARCHAR(200) NOT NULL,
            description TEXT NOT NULL,
            price_cents BIGINT NOT NULL,
            currency CHAR(3) NOT NULL DEFAULT 'EUR',
            stock BIGINT NOT NULL,
            category VARCHAR(64) NOT NULL,
            created_at BIGINT NOT NULL,
            UNIQUE KEY uq_products_sku (sku),
            KEY ix_products_category (category, id),
            CONSTRAINT ck_products_stock CHECK (stock >= 0),
            CONSTRAINT ck_products_price CHECK (price_cents >= 0)
        ) $TABLE",
            "CREATE TABLE IF NOT EXISTS users (
            id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
            email VARCHAR(254) NOT NULL,
            name VARCHAR(100) NOT NULL,
            password_hash VARCHAR(255) NOT NULL,
            role VARCHAR(16) NOT NULL DEFAULT 'customer',
            created_at BIGINT NOT NULL,
            UNIQUE KEY uq_users_email (email)
        ) $TABLE",
            "CREATE TABLE IF NOT EXISTS orders (
            id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
            user_id BIGINT NOT NULL,
            idempotency_key VARCHAR(64) NOT NULL,
            status VARCHAR(16) NOT NULL,
            total_cents BIGINT NOT NULL,
            currency CHAR(3) NOT NULL DEFAULT 'EUR',
            created_at BIGINT NOT NULL,
            updated_at BIGINT NOT NULL,
            UNIQUE KEY uq_orders_idempotency (user_id, idempotency_key),
            KEY ix_orders_status (status, id),
            CONSTRAINT fk_orders_user FOREIGN KEY (user_id) REFERENCES users (id)
        ) $TABLE",
            "CREATE TABLE IF NOT EXISTS order_items (
            id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
            order_id BIGINT NOT NULL,
            product_id BIGINT NOT NULL,
            sku VARCHAR(32) NOT NULL,
            name VARCHAR(200) NOT NULL,
            unit_price_cents BIGINT NOT NULL,
            quantity BIGINT NOT NULL,
            line_total_cents BIGINT NOT NULL,
            KEY ix_order_items_order (order_id),
            KEY ix_order_items_product (product_id),
            CONSTRAINT fk_order_items_order FOREIGN KEY (order_id) REFERENCES orders (id)
        ) $TABLE",
        ],
        sqlite: &[
            "CREATE TABLE IF NOT EXISTS products (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            sku TEXT NOT NULL UNIQUE,
            name TEXT NOT NULL,
            description TEXT NOT NULL,
            price_cents INTEGER NOT NULL CHECK (price_cents >= 0),
            currency TEXT NOT NULL DEFAULT 'EUR',
            stock INTEGER NOT NULL CHECK (stock >= 0),
            category TEXT NOT NULL,
            created_at INTEGER NOT NULL
        )",
            "CREATE INDEX IF NOT EXISTS ix_products_category ON products (category, id)",
            "CREATE TABLE IF NOT EXISTS users (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            email TEXT NOT NULL UNIQUE,
            name TEXT NOT NULL,
            password_hash TEXT NOT NULL,
            role TEXT NOT NULL DEFAULT 'customer',
            created_at INTEGER NOT NULL
        )",
            "CREATE TABLE IF NOT EXISTS orders (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            user_id INTEGER NOT NULL REFERENCES users (id),
            idempotency_key TEXT NOT NULL,
            status TEXT NOT NULL,
            total_cents INTEGER NOT NULL,
            currency TEXT NOT NULL DEFAULT 'EUR',
            created_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL,
            UNIQUE (user_id, idempotency_key)
        )",
            "CREATE INDEX IF NOT EXISTS ix_orders_status ON orders (status, id)",
            "CREATE TABLE IF NOT EXISTS order_items (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            order_id INTEGER NOT NULL REFERENCES orders (id),
            product_id INTEGER NOT NULL,
            sku TEXT NOT NULL,
            name TEXT NOT NULL,
            unit_price_cents INTEGER NOT NULL,
            quantity INTEGER NOT NULL,
            line_total_cents INTEGER NOT NULL
        )",
            "CREATE INDEX IF NOT EXISTS ix_order_items_order ON order_items (order_id)",
            "CREATE INDEX IF NOT EXISTS ix_order_items_product ON order_items (product_id)",
        ],
    },
    Migration {
        version: 2,
        name: "orders remember the request that placed them",
        // nullable: orders placed before, and without a request id, have none
        mysql: &["ALTER TABLE orders ADD COLUMN IF NOT EXISTS placed_by VARCHAR(128) NULL"],
        sqlite: &["ALTER TABLE orders ADD COLUMN placed_by TEXT"],
    },
    Migration {
        version: 3,
        name: "shipping addresses, hidden products, the stock's history",
        // the address columns are nullable: orders placed before, and API checkouts without an
        // address, have none; `stock_changes` is append-only (who changed a stock, when, by how much)
        mysql: &[
            "ALTER TABLE orders ADD COLUMN IF NOT EXISTS ship_name VARCHAR(100) NULL,
            ADD COLUMN IF NOT EXISTS ship_street VARCHAR(200) NULL,
            ADD COLUMN IF NOT EXISTS ship_postcode VARCHAR(16) NULL,
            ADD COLUMN IF NOT EXISTS ship_city VARCHAR(100) NULL,
            ADD COLUMN IF NOT EXISTS ship_country VARCHAR(56) NULL",
            "ALTER TABLE products ADD COLUMN IF NOT EXISTS hidden BOOLEAN NOT NULL DEFAULT FALSE",
            "CREATE TABLE IF NOT EXISTS stock_changes (
            id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
            product_id BIGINT NOT NULL,
            delta BIGINT NOT NULL,
            stock_after BIGINT NOT NULL,
            reason VARCHAR(16) NOT NULL,
            note VARCHAR(200) NOT NULL DEFAULT '',
            user_id BIGINT NULL,
            created_at BIGINT NOT NULL,
            KEY ix_stock_changes_product (product_id, id)
        ) $TABLE",
        ],
        sqlite: &[
            "ALTER TABLE orders ADD COLUMN ship_name TEXT",
            "ALTER TABLE orders ADD COLUMN ship_street TEXT",
            "ALTER TABLE orders ADD COLUMN ship_postcode TEXT",
            "ALTER TABLE orders ADD COLUMN ship_city TEXT",
            "ALTER TABLE orders ADD COLUMN ship_country TEXT",
            "ALTER TABLE products ADD COLUMN hidden INTEGER NOT NULL DEFAULT 0",
            "CREATE TABLE IF NOT EXISTS stock_changes (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            product_id INTEGER NOT NULL,
            delta INTEGER NOT NULL,
            stock_after INTEGER NOT NULL,
            reason TEXT NOT NULL,
            note TEXT NOT NULL DEFAULT '',
            user_id INTEGER,
            created_at INTEGER NOT NULL
        )",
            "CREATE INDEX IF NOT EXISTS ix_stock_changes_product ON stock_changes (product_id, id)",
        ],
    },
];

/// The newest schema version this build knows.
pub fn latest_version() -> i64 {
    MIGRATIONS.iter().map(|m| m.version).max().unwrap_or(0)
}

/// The schema version the database is at (0: not migrated).
pub async fn current_version(db: &DatabaseConnection) -> Result<i64, DbError> {
    let table_exists = match db.get_database_backend() {
        DbBackend::Sqlite => {
            one(db, "SELECT name FROM sqlite_master WHERE type='table' AND name='schema_migrations'", vec![])
                .await?
        }
        _ => {
            one(
                db,
                "SELECT table_name FROM information_schema.tables
                 WHERE table_schema = DATABASE() AND table_name = 'schema_migrations'",
                vec![],
            )
            .await?
        }
    };
    if table_exists.is_none() {
        return Ok(0);
    }
    let row = one(db, "SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations", vec![]).await?;
    row.map(|r| get::<i64>(&r, "v")).transpose().map(|v| v.unwrap_or(0))
}

/// Bring the schema up to date. Every statement is `IF NOT EXISTS` and the version insert ignores
/// duplicates, so two concurrent runs (which a deployment should avoid anyway) cannot break it.
pub async fn migrate(db: &DatabaseConnection) -> Result<i64, DbError> {
    let backend = db.get_database_backend();
    let (create, record) = match backend {
        DbBackend::Sqlite => (
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)",
            "INSERT OR IGNORE INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
        ),
        _ => (
            "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT NOT NULL PRIMARY KEY, name VARCHAR(200) NOT NULL, applied_at BIGINT NOT NULL) ENGINE=InnoDB",
            "INSERT IGNORE INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
        ),
    };
    exec(db, create, vec![]).await?;
    let current = current_version(db).await?;
    for m in MIGRATIONS.iter().filter(|m| m.version > current) {
        tracing::info!(version = m.version, name = m.name, "applying migration");
        let statements = if backend == DbBackend::Sqlite { m.sqlite } else { m.mysql };
        for s in statements {
            match exec(db, &s.replace("$TABLE", MYSQL_TABLE), vec![]).await {
                // SQLite has no `ADD COLUMN IF NOT EXISTS`: a column added by a run that stopped
                // before it recorded the version is there already
                Err(e) if backend == DbBackend::Sqlite && e.to_string().contains("duplicate column name") => {
                }
                r => {
                    r?;
                }
            }
        }
        exec(db, record, vec![m.version.into(), m.name.into(), now_ms().into()]).await?;
    }
    current_version(db).await
}

/// Ping with a short bound, for readiness.
pub async fn ping(db: &DatabaseConnection, limit: Duration) -> Result<(), String> {
    match tokio::time::timeout(limit, db.query_one_raw(stmt(db, "SELECT 1", vec![]))).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {limit:?}")),
    }
}

/// (connections open, idle) of the pool, for `/metrics`.
pub fn pool_stats(db: &DatabaseConnection) -> Option<(u32, u32)> {
    match db.get_database_backend() {
        DbBackend::MySql => {
            let p = db.get_mysql_connection_pool();
            Some((p.size(), p.num_idle() as u32))
        }
        DbBackend::Sqlite => {
            let p = db.get_sqlite_connection_pool();
            Some((p.size(), p.num_idle() as u32))
        }
        _ => None,
    }
}

impl From<DbError> for HtmlError {
    fn from(e: DbError) -> Self {
        HtmlError(e.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_pool_retries_single_statements() {
        assert!(on_pool::<DatabaseConnection>());
        assert!(!on_pool::<sea_orm::DatabaseTransaction>());
    }
}
