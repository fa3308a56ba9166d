//! Schema migrations: a database an older build made is brought up to date, in place.

use crate::helpers::*;
use shop::infra::db;

#[tokio::test]
async fn a_database_of_schema_1_is_brought_up_to_date_and_keeps_its_orders() {
    let app = spawn_app().await;
    let s = app.customer().await;
    let p = app.product(10).await;
    assert_eq!(s.add(p, 1).await.status(), 200);
    let old_key = key();
    assert_eq!(s.checkout(&old_key).await.status(), 201);
    // back to what a build of schema 1 left, before the migrator: none of the columns and tables
    // of versions 2 to 4, and version 1 recorded in the older runner's `schema_migrations`
    for column in ["placed_by", "ship_name", "ship_street", "ship_postcode", "ship_city", "ship_country"] {
        app.sql(&format!("ALTER TABLE orders DROP COLUMN {column}"), vec![]).await;
    }
    app.sql("ALTER TABLE products DROP COLUMN hidden", vec![]).await;
    app.sql("ALTER TABLE users DROP COLUMN created_by", vec![]).await;
    app.sql("DROP TABLE stock_changes", vec![]).await;
    app.sql("DROP TABLE _sqlx_migrations", vec![]).await;
    app.sql("CREATE TABLE schema_migrations (version BIGINT NOT NULL PRIMARY KEY, name VARCHAR(200) NOT NULL, applied_at BIGINT NOT NULL)", vec![]).await;
    app.sql("INSERT INTO schema_migrations (version, name, applied_at) VALUES (1, 'catalog, accounts, orders', 0)", vec![]).await;
    assert_eq!(db::current_version(&app.db).await.unwrap(), 1);

    let latest = db::latest_version();
    assert!(latest >= 3);
    assert_eq!(db::migrate(&app.db).await.unwrap(), latest);
    assert_eq!(db::migrate(&app.db).await.unwrap(), latest, "a second run changes nothing");
    // the migrator has taken over: version 1 recorded as applied before, the rest run by it
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM _sqlx_migrations WHERE success = TRUE", vec![]).await,
        latest
    );

    // the order placed before is read as before (it names no request) and a replay of it is a 200
    let r = s.checkout(&old_key).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM orders WHERE placed_by IS NULL", vec![]).await,
        1,
        "the old order"
    );
    // a new order records the request that placed it
    assert_eq!(s.add(p, 1).await.status(), 200);
    let r = s
        .client
        .post(s.url("/api/orders"))
        .header("Idempotency-Key", key())
        .header("X-Request-Id", "rid-after-the-upgrade")
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(
        app.count(
            "SELECT COUNT(*) AS n FROM orders WHERE placed_by = ?",
            vec!["rid-after-the-upgrade".into()]
        )
        .await,
        1
    );
}

#[tokio::test]
async fn a_migration_file_changed_after_it_ran_is_refused() {
    let app = spawn_app().await;
    // what a file edited after it ran looks like to the migrator: another checksum on record
    app.sql("UPDATE _sqlx_migrations SET checksum = ? WHERE version = 2", vec![vec![0u8; 48].into()]).await;
    let e = db::migrate(&app.db).await.expect_err("a changed migration must stop the run");
    assert!(e.to_string().contains("2"), "{e}");
}

#[tokio::test]
async fn an_adoption_that_stopped_half_way_is_finished_by_the_next_run() {
    let app = spawn_app().await;
    // the older runner's table says 3; the migrator's table exists but is empty (a run stopped
    // after making it): the next run records 1 to 3 as applied and runs only what came after
    app.sql("CREATE TABLE schema_migrations (version BIGINT NOT NULL PRIMARY KEY, name VARCHAR(200) NOT NULL, applied_at BIGINT NOT NULL)", vec![]).await;
    for v in 1..=3i64 {
        app.sql(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, 'old', 0)",
            vec![v.into()],
        )
        .await;
    }
    app.sql("DELETE FROM _sqlx_migrations", vec![]).await;
    app.sql("ALTER TABLE users DROP COLUMN created_by", vec![]).await; // version 4
    assert_eq!(db::migrate(&app.db).await.unwrap(), db::latest_version());
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM _sqlx_migrations", vec![]).await, db::latest_version());
}

#[tokio::test]
async fn a_dirty_mariadb_migration_is_run_again_once() {
    let app = spawn_app().await;
    // what a MariaDB migration that failed after its implicit DDL commits leaves behind
    app.sql("UPDATE _sqlx_migrations SET success = FALSE WHERE version = 3", vec![]).await;
    let r = db::migrate(&app.db).await;
    if app.db.get_database_backend() == sea_orm::DbBackend::Sqlite {
        // SQLite migrations are transactional: a dirty one cannot happen, and is not guessed at
        assert!(r.is_err());
    } else {
        assert_eq!(r.unwrap(), db::latest_version());
        assert_eq!(
            app.count("SELECT COUNT(*) AS n FROM _sqlx_migrations WHERE success = TRUE", vec![]).await,
            db::latest_version()
        );
        // and the lock the dirty run took is given back: another run goes through at once
        let again = tokio::time::timeout(std::time::Duration::from_secs(10), db::migrate(&app.db)).await;
        assert_eq!(again.expect("no lock left behind").unwrap(), db::latest_version());
    }
}
