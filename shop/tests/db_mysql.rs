//! The database layer on a real MariaDB (`SHOP_TEST_DATABASE_URL`, started by
//! `tests/backends/start.sh`; `tests/run.sh` runs this with it). Without the variable there is no
//! server to test and each test says so and returns: SQLite cannot stall the way tested here.
//!
//! What is tested is what a stalled server does to pooled connections. When the Galera cluster
//! blocks for a few seconds (a node joins, a node dies), statements run into the shop's
//! statement timeout and are cancelled mid-flight. A connection that goes back to the pool with a
//! cancelled statement's answer still on its way must never serve another statement with it:
//! in the Galera-kill scenario that showed as an order acknowledged without lines, a logged-in
//! shopper answered 401 and a cancel answered "placed". The stall here is a table lock held by
//! another session, which blocks both the prepare and the execution of statements on the table.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{collections::HashMap, time::Duration};

use sea_orm::{ConnectionTrait, DatabaseConnection, Statement, Value};
use shop::{infra::db, settings::Settings};

#[path = "support/stall_proxy.rs"]
mod stall_proxy;
use stall_proxy::StallProxy;

fn server_url() -> Option<String> {
    let url = std::env::var("SHOP_TEST_DATABASE_URL").ok().filter(|s| !s.is_empty());
    if url.is_none() {
        eprintln!("SHOP_TEST_DATABASE_URL not set: no MariaDB to test against (tests/run.sh sets it)");
    }
    url
}

async fn raw(c: &DatabaseConnection, sql: &str) {
    c.execute_raw(Statement::from_string(c.get_database_backend(), sql.to_string())).await.expect(sql);
}

/// A database of its own with a table `probe(id, v)` holding v = id * 7 for id 1..=50, the
/// shop's pool on it (statement timeout 300 ms, no retries), and a second, separate connection
/// to hold locks with.
async fn setup(server: &str) -> (DatabaseConnection, DatabaseConnection) {
    setup_via(server, None, 4).await
}

/// The same, with the pool's connections going through `proxy` (its port) if given.
async fn setup_via(
    server: &str,
    proxy: Option<u16>,
    pool_size: u32,
) -> (DatabaseConnection, DatabaseConnection) {
    let mut url = url::Url::parse(server).expect("SHOP_TEST_DATABASE_URL");
    let name = format!("distshop_test_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    url.set_path("/mysql");
    let admin = sea_orm::Database::connect(url.as_str()).await.expect("connect");
    raw(&admin, &format!("CREATE DATABASE {name}")).await;
    url.set_path(&format!("/{name}"));
    let locker = sea_orm::Database::connect(url.as_str()).await.expect("connect");
    raw(&locker, "CREATE TABLE probe (id INT PRIMARY KEY, v INT NOT NULL)").await;
    let values: Vec<String> = (1..=50).map(|i| format!("({i}, {})", i * 7)).collect();
    raw(&locker, &format!("INSERT INTO probe VALUES {}", values.join(","))).await;

    let mut pool_url = url.clone();
    if let Some(port) = proxy {
        pool_url.set_host(Some("127.0.0.1")).expect("host");
        pool_url.set_port(Some(port)).expect("port");
    }
    let mut env = HashMap::new();
    for (k, v) in [
        ("SHOP_DATABASE_URL", pool_url.to_string()),
        ("SHOP_DB_TIMEOUT_MS", "300".to_string()),
        ("SHOP_DB_RETRY_MS", "0".to_string()),
        ("SHOP_DB_MAX_CONNECTIONS", pool_size.to_string()),
        ("SHOP_DB_SYNC_WAIT", "1".to_string()),
    ] {
        env.insert(k.to_string(), v);
    }
    let settings = Settings::from_map(&env).expect("settings");
    (db::connect(&settings).await.expect("pool"), locker)
}

/// `SELECT v FROM probe WHERE id = ?` through the shop's bounded, pooled read.
async fn probe(pool: &DatabaseConnection, id: i64, sql: &str) -> Result<Option<i64>, db::DbError> {
    let row = db::one(pool, sql, vec![Value::from(id)]).await?;
    row.map(|r| db::get::<i32>(&r, "v").map(i64::from)).transpose()
}

/// Statements cancelled by the timeout while the server holds them must leave no connection out
/// of step: every later answer is the answer to its own question.
#[tokio::test]
async fn statements_cancelled_during_a_stall_never_answer_later_ones() {
    let Some(server) = server_url() else { return };
    let (pool, locker) = setup(&server).await;
    // Several statement texts, so that some are prepared for the first time during the stall and
    // some were prepared before it.
    let queries = [
        "SELECT v FROM probe WHERE id = ?",
        "SELECT v FROM probe WHERE id = ? AND v >= 0",
        "SELECT v FROM probe WHERE id = ? AND v < 100000",
    ];
    assert_eq!(probe(&pool, 3, queries[0]).await.expect("before the stall"), Some(21));

    for round in 0..3 {
        // the stall: another session holds a write lock on the table
        let lock = locker.get_mysql_connection_pool().acquire().await.expect("locker connection");
        let mut lock = lock;
        use sea_orm::sqlx::Executor;
        lock.execute("LOCK TABLES probe WRITE").await.expect("lock");
        let mut stalled = Vec::new();
        for i in 0..8i64 {
            let pool = pool.clone();
            let sql = queries[(i as usize + round) % queries.len()];
            stalled.push(tokio::spawn(async move { probe(&pool, i + 1, sql).await }));
        }
        let mut cancelled = 0;
        for s in stalled {
            if s.await.expect("join").is_err() {
                cancelled += 1;
            }
        }
        assert!(cancelled > 0, "round {round}: no statement ran into the timeout: the stall did not stall");
        lock.execute("UNLOCK TABLES").await.expect("unlock");
        drop(lock);

        // every connection of the pool, many times over: each answer must be its own
        let mut wrong = Vec::new();
        for n in 0..200i64 {
            let id = n % 50 + 1;
            let sql = queries[n as usize % queries.len()];
            match probe(&pool, id, sql).await {
                Ok(Some(v)) if v == id * 7 => {}
                other => wrong.push(format!("id {id}: {other:?}")),
            }
        }
        assert!(wrong.is_empty(), "round {round}: answers to other statements after the stall: {wrong:?}");
    }
}

/// A transaction whose BEGIN ran on the server but whose answer came after the statement
/// timeout (what causal reads do during a Galera stall: `wsrep_sync_wait` holds BEGIN too)
/// must not leave its connection inside an open transaction. Such a connection reads from an
/// old snapshot (a just-placed order "vanished", a new account "does not exist") and its
/// autocommit writes are never committed.
#[tokio::test]
async fn a_begin_cancelled_by_the_timeout_leaves_no_open_transaction_behind() {
    let Some(server) = server_url() else { return };
    // answered 600 ms late: after the 300 ms statement timeout, within the release check's 1 s
    let proxy = StallProxy::start(&server, Duration::from_millis(600)).await;
    let (pool, locker) = setup_via(&server, Some(proxy.port), 2).await;
    let read = "SELECT v FROM probe WHERE id = ?";
    assert_eq!(probe(&pool, 1, read).await.expect("before"), Some(7));

    for round in 0..3 {
        // BEGIN reaches the server and runs; its OK comes after the statement timeout
        proxy.stall_next(b"BEGIN");
        let begun = db::begin(&pool).await;
        assert!(begun.is_err(), "round {round}: BEGIN was answered in time through a stalling proxy");
        tokio::time::sleep(Duration::from_millis(1500)).await;

        // both pooled connections read (a leaked transaction takes its snapshot here) ...
        for _ in 0..10 {
            let (a, b) = tokio::join!(probe(&pool, 1, read), probe(&pool, 1, read));
            a.expect("read");
            b.expect("read");
        }
        // ... then the row changes, committed by another session
        let value = 1000 + round as i64;
        raw(&locker, &format!("UPDATE probe SET v = {value} WHERE id = 1")).await;
        let mut stale = Vec::new();
        for _ in 0..20 {
            let (a, b) = tokio::join!(probe(&pool, 1, read), probe(&pool, 1, read));
            for v in [a.expect("read"), b.expect("read")] {
                if v != Some(value) {
                    stale.push(v);
                }
            }
        }
        assert!(
            stale.is_empty(),
            "round {round}: reads from an old snapshot after a cancelled BEGIN: {stale:?}"
        );

        // and autocommit writes through the pool are committed
        for i in 0..10 {
            db::exec(
                &pool,
                "UPDATE probe SET v = v + 1 WHERE id = ?",
                vec![Value::from(2 + round as i64 * 10 + i)],
            )
            .await
            .expect("write");
        }
        let rows = locker
            .query_all_raw(Statement::from_string(
                locker.get_database_backend(),
                format!(
                    "SELECT id FROM probe WHERE id BETWEEN {} AND {} AND v = id * 7 + 1",
                    2 + round * 10,
                    11 + round * 10
                ),
            ))
            .await
            .expect("count");
        assert_eq!(rows.len(), 10, "round {round}: autocommit writes through the pool were not committed");
    }
    raw(&locker, "UPDATE probe SET v = id * 7").await;
}
