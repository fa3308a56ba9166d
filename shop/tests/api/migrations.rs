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
    // back to what a build of schema 1 left: no `orders.placed_by`, version 1 recorded
    app.sql("ALTER TABLE orders DROP COLUMN placed_by", vec![]).await;
    app.sql("DELETE FROM schema_migrations WHERE version > 1", vec![]).await;
    assert_eq!(db::current_version(&app.db).await.unwrap(), 1);

    let latest = db::latest_version();
    assert!(latest >= 2);
    assert_eq!(db::migrate(&app.db).await.unwrap(), latest);
    assert_eq!(db::migrate(&app.db).await.unwrap(), latest, "a second run changes nothing");

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
