//! What can go wrong with the database, classified once: for retrying (a lost conflict or
//! connection may work on the next attempt), for the client (a 503 to retry, or a 500) and for
//! `/metrics` (`shop_db_errors_total{kind}`).

use std::time::Duration;

use sea_orm::{DbErr, SqlErr};

use crate::error::{AppError, HtmlError};

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

impl From<DbError> for HtmlError {
    fn from(e: DbError) -> Self {
        HtmlError(e.into())
    }
}
