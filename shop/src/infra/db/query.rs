//! Every statement the shop runs: bounded by the statement timeout, reads retried on the pool,
//! whole transactions retried by [`retry`]. Queries take `&impl ConnectionTrait`, so the same
//! function runs on the pool or inside a transaction.

use std::future::Future;

use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, QueryResult, Statement, Value};

use super::{retry_budget, statement_timeout, DbError, TxError};
use crate::error::AppError;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_pool_retries_single_statements() {
        assert!(on_pool::<DatabaseConnection>());
        assert!(!on_pool::<sea_orm::DatabaseTransaction>());
    }
}
