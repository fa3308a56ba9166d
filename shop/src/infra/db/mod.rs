//! The relational store: the connection pool (here), the errors ([`error`]), every statement
//! and transaction retry ([`query`]) and the schema's migrations ([`migrate`]).
//!
//! All SQL goes through [`all`], [`one`] and [`exec`], which bound every statement with the
//! process-wide statement timeout, so a dead database node costs a 503 within seconds instead of a
//! hung request. Queries take `&impl ConnectionTrait`, so the same function runs on the pool or
//! inside a transaction. The SQL is plain and portable (`?` placeholders work on MySQL/MariaDB and
//! SQLite alike); only the DDL differs per backend (`shop/migrations/{mysql,sqlite}/`).

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, QueryResult, Value};

use crate::{
    domain::{OrderId, ProductId, UserId},
    settings::Settings,
};

pub mod error;
pub mod migrate;
pub mod query;

pub use error::{DbError, TxError};
pub use migrate::{current_version, latest_version, migrate};
pub use query::{all, begin, commit, exec, get, now_ms, one, retry, stmt};

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
