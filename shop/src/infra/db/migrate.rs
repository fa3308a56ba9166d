//! Schema migrations: `.sql` files, one set per dialect (`shop/migrations/mysql/` for MariaDB and
//! Galera, `shop/migrations/sqlite/` for the embedded mode), compiled into the binary and run by
//! sqlx's migrator, which records each in `_sqlx_migrations` with its checksum (a file changed
//! after it ran is refused) and holds a lock while it works (on MariaDB `GET_LOCK`).
//!
//! A database made by a build before the migrator kept its version in `schema_migrations`: a
//! run that finds the migrator's table empty records those versions as applied, in one
//! transaction (with the checksums of today's files, which hold the same statements), and
//! carries on from there.
//!
//! MariaDB commits DDL implicitly, so a migration that failed half-way stays "dirty" (recorded,
//! not successful). Every MariaDB statement here is `IF NOT EXISTS`, so running such a migration
//! again is safe: a dirty one is cleared and run again, once (see [`run`]).

use std::borrow::Cow;

use sea_orm::{
    sqlx::{
        migrate::{Migrate, MigrateError, Migration, MigrationType, Migrator},
        AssertSqlSafe, SqlSafeStr,
    },
    DatabaseConnection, DbBackend,
};

use super::{begin, commit, exec, get, one, DbError};

/// One version of the schema, in each dialect.
struct Step {
    version: i64,
    name: &'static str,
    mysql: &'static str,
    sqlite: &'static str,
}

macro_rules! step {
    ($version:literal, $name:literal, $file:literal) => {
        Step {
            version: $version,
            name: $name,
            mysql: include_str!(concat!("../../../migrations/mysql/", $file)),
            sqlite: include_str!(concat!("../../../migrations/sqlite/", $file)),
        }
    };
}

const STEPS: &[Step] = &[
    step!(1, "catalog, accounts, orders", "0001_catalog_accounts_orders.sql"),
    step!(2, "orders remember the request that placed them", "0002_orders_placed_by.sql"),
    step!(
        3,
        "shipping addresses, hidden products, the stock's history",
        "0003_addresses_hidden_products_stock_history.sql"
    ),
    step!(4, "accounts remember the request that created them", "0004_users_created_by.sql"),
];

const TABLE: &str = "_sqlx_migrations";

fn migrator(backend: DbBackend) -> Migrator {
    Migrator::with_migrations(
        STEPS
            .iter()
            .map(|s| {
                let sql = if backend == DbBackend::Sqlite { s.sqlite } else { s.mysql };
                Migration::new(
                    s.version,
                    Cow::Borrowed(s.name),
                    MigrationType::Simple,
                    AssertSqlSafe(sql).into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}

fn failed(e: MigrateError) -> DbError {
    DbError::Other(sea_orm::DbErr::Migration(e.to_string()))
}

/// The newest schema version this build knows.
pub fn latest_version() -> i64 {
    STEPS.iter().map(|s| s.version).max().unwrap_or(0)
}

async fn table_exists(db: &DatabaseConnection, name: &str) -> Result<bool, DbError> {
    let row = match db.get_database_backend() {
        DbBackend::Sqlite => {
            one(db, "SELECT name FROM sqlite_master WHERE type='table' AND name=?", vec![name.into()]).await?
        }
        _ => {
            one(
                db,
                "SELECT table_name FROM information_schema.tables
                 WHERE table_schema = DATABASE() AND table_name = ?",
                vec![name.into()],
            )
            .await?
        }
    };
    Ok(row.is_some())
}

/// The schema version the database is at (0: not migrated): the newest successful migration, or
/// for a database the migrator has not seen yet, the version the older runner recorded.
pub async fn current_version(db: &DatabaseConnection) -> Result<i64, DbError> {
    let sql = if table_exists(db, TABLE).await? {
        "SELECT COALESCE(MAX(version), 0) AS v FROM _sqlx_migrations WHERE success = TRUE"
    } else if table_exists(db, "schema_migrations").await? {
        "SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations"
    } else {
        return Ok(0);
    };
    let row = one(db, sql, vec![]).await?;
    row.map(|r| get::<i64>(&r, "v")).transpose().map(|v| v.unwrap_or(0))
}

/// Record the versions the older runner applied (`schema_migrations`) as the migrator's: when
/// the migrator has recorded nothing yet, all in one transaction (a run that stopped half-way
/// records them next time).
async fn adopt_older_runner(db: &DatabaseConnection, m: &Migrator) -> Result<(), DbError> {
    if !table_exists(db, "schema_migrations").await? {
        return Ok(());
    }
    ensure_table(db).await?;
    let recorded = one(db, "SELECT COUNT(*) AS n FROM _sqlx_migrations", vec![]).await?;
    if recorded.map(|r| get::<i64>(&r, "n")).transpose()?.unwrap_or(0) > 0 {
        return Ok(());
    }
    let done = one(db, "SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations", vec![])
        .await?
        .map(|r| get::<i64>(&r, "v"))
        .transpose()?
        .unwrap_or(0);
    let tx = begin(db).await?;
    for s in m.migrations.iter().filter(|s| s.version <= done) {
        tracing::info!(version = s.version, "recording a migration the older runner applied");
        exec(
            &tx,
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
             VALUES (?, ?, TRUE, ?, 0)",
            vec![s.version.into(), s.description.to_string().into(), s.checksum.to_vec().into()],
        )
        .await?;
    }
    commit(tx).await
}

fn unavailable(e: sea_orm::sqlx::Error) -> DbError {
    DbError::Unavailable(sea_orm::DbErr::Custom(e.to_string()))
}

/// The migrator's table, made the way the migrator makes it.
async fn ensure_table(db: &DatabaseConnection) -> Result<(), DbError> {
    match db.get_database_backend() {
        DbBackend::Sqlite => {
            let mut c = db.get_sqlite_connection_pool().acquire().await.map_err(unavailable)?;
            c.ensure_migrations_table(TABLE).await.map_err(failed)
        }
        _ => {
            let mut c = db.get_mysql_connection_pool().acquire().await.map_err(unavailable)?;
            c.ensure_migrations_table(TABLE).await.map_err(failed)
        }
    }
}

/// Run the migrations. On MariaDB a migration left half-done ("dirty": its DDL committed
/// implicitly before it failed) is cleared and run again once, on the same connection, which
/// holds the migrator's `GET_LOCK` throughout; the connection is closed after, which releases
/// the lock the failed run left taken.
async fn run(db: &DatabaseConnection, m: &Migrator) -> Result<(), DbError> {
    if db.get_database_backend() == DbBackend::Sqlite {
        // SQLite migrations are transactional: a failed one left nothing behind
        return m.run(db.get_sqlite_connection_pool()).await.map_err(failed);
    }
    let mut conn = db.get_mysql_connection_pool().acquire().await.map_err(unavailable)?;
    match m.run(&mut *conn).await {
        Err(MigrateError::Dirty(version)) => {
            tracing::warn!(version, "migration {version} stopped half-way before; running it again");
            sea_orm::sqlx::query("DELETE FROM _sqlx_migrations WHERE version = ? AND success = FALSE")
                .bind(version)
                .execute(&mut *conn)
                .await
                .map_err(unavailable)?;
            let again = m.run(&mut *conn).await;
            if let Err(e) = conn.close().await {
                tracing::warn!(error = %e, "closing the migration connection");
            }
            again.map_err(failed)
        }
        r => r.map_err(failed),
    }
}

/// Bring the schema up to date; answers the version it is at.
pub async fn migrate(db: &DatabaseConnection) -> Result<i64, DbError> {
    let m = migrator(db.get_database_backend());
    adopt_older_runner(db, &m).await?;
    run(db, &m).await?;
    current_version(db).await
}
