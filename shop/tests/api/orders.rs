use serde_json::{json, Value};

use crate::helpers::*;

#[tokio::test]
async fn the_whole_journey() {
    let app = spawn_app().await;
    let s = app.customer().await;
    let a = app.product(10).await;
    let b = app.product(10).await;
    s.add(a, 2).await;
    s.add(b, 1).await;
    let r = s.checkout(&key()).await;
    assert_eq!(r.status(), 201);
    let order: Value = r.json().await.unwrap();
    assert_eq!(order["status"], "placed");
    assert_eq!(order["total_cents"], 7500);
    assert_eq!(order["items"].as_array().unwrap().len(), 2);
    assert_eq!((app.stock(a).await, app.stock(b).await), (8, 9));
    assert_eq!(s.cart().await["items"].as_array().unwrap().len(), 0, "cart emptied after commit");
    let (st, list) = s.get_json("/api/orders").await;
    assert_eq!(st, 200);
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert_eq!(list["items"][0]["id"], order["id"]);
    let (st, one) = s.get_json(&format!("/api/orders/{}", order["id"])).await;
    assert_eq!(st, 200);
    assert_eq!(one["items"], order["items"]);
}

/// A product hidden after it went into the cart is left out of the order (the order holds what
/// the shopper can still buy, its total without it) and its stock is not taken; the stored order
/// reads back the same.
#[tokio::test]
async fn a_hidden_product_is_left_out_of_the_order() {
    let app = spawn_app().await;
    let s = app.customer().await;
    let (a, b, c) = (app.product(10).await, app.product(10).await, app.product(10).await);
    s.add(a, 1).await;
    s.add(b, 2).await;
    s.add(c, 3).await;
    app.sql("UPDATE products SET hidden = 1 WHERE id = ?", vec![b.into()]).await;
    let r = s.checkout(&key()).await;
    assert_eq!(r.status(), 201);
    let order: Value = r.json().await.unwrap();
    let ids: Vec<i64> =
        order["items"].as_array().unwrap().iter().map(|i| i["product_id"].as_i64().unwrap()).collect();
    assert_eq!(ids, vec![a, c]);
    assert_eq!(order["total_cents"], 4 * 2500);
    assert_eq!((app.stock(a).await, app.stock(b).await, app.stock(c).await), (9, 10, 7));
    let (_, stored) = s.get_json(&format!("/api/orders/{}", order["id"])).await;
    assert_eq!(
        (stored["total_cents"].clone(), stored["items"].clone()),
        (order["total_cents"].clone(), order["items"].clone())
    );

    // every product hidden: nothing to order, nothing written
    let t = app.customer().await;
    t.add(a, 1).await;
    app.sql("UPDATE products SET hidden = 1 WHERE id = ?", vec![a.into()]).await;
    let (st, e) = error_of(t.checkout(&key()).await).await;
    assert_eq!((st.as_u16(), e["error"]["code"].as_str()), (422, Some("empty_cart")));
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM orders", vec![]).await, 1);
}

/// The commit of a checkout runs, but its answer comes after the statement timeout (a Galera
/// stall, a connection cut right after COMMIT): the shop retries, finds the order its own first
/// attempt made, and answers as for a new order — 201, once, stock taken once, cart emptied —
/// not 200 "replay" to a key the client never sent before. MariaDB only: the stall is a proxy in
/// front of the server.
#[tokio::test]
async fn a_checkout_whose_commit_answer_is_lost_is_answered_as_created() {
    let Some((app, proxy)) = spawn_app_behind_proxy(
        std::time::Duration::from_millis(1500),
        &[("SHOP_DB_TIMEOUT_MS", "500"), ("SHOP_DB_RETRY_MS", "6000")],
    )
    .await
    else {
        eprintln!("SHOP_TEST_DATABASE_URL not set: no MariaDB to stall (tests/run.sh sets it)");
        return;
    };
    let s = app.customer().await;
    let p = app.product(10).await;
    s.add(p, 3).await;
    let k = key();
    proxy.stall_next(b"COMMIT");
    let r = s.checkout(&k).await;
    assert_eq!(r.status(), 201, "a fresh key whose first commit lost its answer");
    let order: Value = r.json().await.unwrap();
    assert_eq!(order["items"].as_array().unwrap().len(), 1);
    assert_eq!(app.stock(p).await, 7, "stock taken once");
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM orders", vec![]).await, 1);
    assert_eq!(s.cart().await["items"].as_array().unwrap().len(), 0, "cart emptied");
    // the client's own retry of the same key is a replay
    assert_eq!(s.checkout(&k).await.status(), 200);
}

#[tokio::test]
async fn the_same_key_never_makes_a_second_order() {
    let app = spawn_app().await;
    let s = app.customer().await;
    let p = app.product(10).await;
    s.add(p, 2).await;
    let k = key();
    let first = s.checkout(&k).await;
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    // The cart is empty now, but a retry with the same key still gets the order.
    let again = s.checkout(&k).await;
    assert_eq!(again.status(), 200);
    let again: Value = again.json().await.unwrap();
    assert_eq!(first["id"], again["id"]);
    // Even when the cart is full again, and with concurrent retries.
    s.add(p, 1).await;
    let retries = futures_util::future::join_all((0..6).map(|_| s.checkout(&k))).await;
    for r in retries {
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["id"], first["id"]);
    }
    assert_eq!(app.stock(p).await, 8, "stock taken once");
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM orders", vec![]).await, 1);
    // A new key is a new order (of the line added meanwhile).
    let r = s.checkout(&key()).await;
    assert_eq!(r.status(), 201);
    assert_eq!(app.stock(p).await, 7);
}

#[tokio::test]
async fn a_replay_empties_the_cart_a_crashed_first_attempt_left_full() {
    // A replica committed the order and died before it emptied the cart: the row is there, the
    // cart still holds the lines. The client's retry (same key, any replica) finishes the job,
    // once: a further replay after the shopper filled the cart again leaves the new lines alone.
    let app = spawn_app().await;
    let s = app.customer().await;
    let p = app.product(10).await;
    assert_eq!(s.add(p, 2).await.status(), 200);
    let user = app.count("SELECT MAX(id) AS n FROM users", vec![]).await;
    let k = key();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    app.sql(
        "INSERT INTO orders (user_id, idempotency_key, status, total_cents, currency, created_at, updated_at)
         VALUES (?, ?, 'placed', 5000, 'EUR', ?, ?)",
        vec![user.into(), k.clone().into(), now.into(), now.into()],
    )
    .await;
    let order = app.count("SELECT MAX(id) AS n FROM orders", vec![]).await;
    app.sql(
        "INSERT INTO order_items (order_id, product_id, sku, name, unit_price_cents, quantity, line_total_cents)
         VALUES (?, ?, 'T', 'T', 2500, 2, 5000)",
        vec![order.into(), p.into()],
    )
    .await;
    let r = s.checkout(&k).await;
    assert_eq!(r.status(), 200, "a replay");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["id"], order);
    assert_eq!(s.cart().await["items"].as_array().unwrap().len(), 0, "the replay emptied the cart");
    assert_eq!(s.add(p, 1).await.status(), 200);
    assert_eq!(s.checkout(&k).await.status(), 200);
    let cart = s.cart().await;
    assert_eq!(cart["items"][0]["quantity"], 1, "a second replay took nothing: {cart}");
}

#[tokio::test]
async fn concurrent_first_checkouts_with_one_key_make_one_order() {
    let app = spawn_app().await;
    let s = app.customer().await;
    let p = app.product(10).await;
    s.add(p, 3).await;
    let k = key();
    let results = futures_util::future::join_all((0..5).map(|_| s.checkout(&k))).await;
    let mut ids = std::collections::HashSet::new();
    let mut created = 0;
    for r in results {
        let st = r.status().as_u16();
        assert!(st == 200 || st == 201, "{st}");
        created += (st == 201) as u32;
        let v: Value = r.json().await.unwrap();
        ids.insert(v["id"].as_i64().unwrap());
    }
    assert_eq!((created, ids.len()), (1, 1));
    assert_eq!(app.stock(p).await, 7);
}

#[tokio::test]
async fn two_shoppers_race_for_the_last_units() {
    let app = spawn_app().await;
    let p = app.product(3).await;
    let one = app.customer().await;
    let two = app.customer().await;
    one.add(p, 3).await;
    two.add(p, 3).await;
    let (k1, k2) = (key(), key());
    let (r1, r2) = tokio::join!(one.checkout(&k1), two.checkout(&k2));
    let mut statuses = [r1.status().as_u16(), r2.status().as_u16()];
    statuses.sort();
    assert_eq!(statuses, [201, 409]);
    let loser = if r1.status() == 409 { r1 } else { r2 };
    let (_, e) = error_of(loser).await;
    assert_eq!(e["error"]["code"], "out_of_stock");
    assert!(e["error"]["message"].as_str().unwrap().contains("Test product"), "names the product: {e}");
    assert_eq!(app.stock(p).await, 0);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM orders", vec![]).await, 1);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM order_items", vec![]).await, 1, "nothing half-written");
}

#[tokio::test]
async fn checkout_refusals() {
    let app = spawn_app().await;
    let anon = app.shopper();
    let (st, _) = error_of(anon.checkout(&key()).await).await;
    assert_eq!(st, 401);
    let s = app.customer().await;
    let (st, e) = error_of(s.checkout(&key()).await).await;
    assert_eq!((st.as_u16(), e["error"]["code"].as_str()), (422, Some("empty_cart")));
    let p = app.product(5).await;
    let q = app.product(5).await;
    s.add(p, 1).await;
    s.add(q, 4).await;
    let r = s
        .client
        .post(s.url("/api/orders"))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    let (st, e) = error_of(r).await;
    assert!(st == 422 && e["error"]["fields"]["Idempotency-Key"].is_string(), "{e}");
    let (st, _) = error_of(s.checkout("short").await).await;
    assert_eq!(st, 422);
    let (st, _) = error_of(s.checkout("has spaces in it!").await).await;
    assert_eq!(st, 422);
    // Stock fell below the cart between adding and checking out: 409 naming it, nothing taken.
    app.set_stock(q, 2).await;
    let (st, e) = error_of(s.checkout(&key()).await).await;
    assert_eq!(st, 409);
    assert!(e["error"]["message"].as_str().unwrap().contains("only 2"), "{e}");
    assert_eq!((app.stock(p).await, app.stock(q).await), (5, 2), "all or nothing");
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM orders", vec![]).await, 0);
    assert_eq!(s.cart().await["items"].as_array().unwrap().len(), 2, "the cart is kept");
}

#[tokio::test]
async fn cancel_returns_stock_and_orders_are_private() {
    let app = spawn_app().await;
    let s = app.customer().await;
    let other = app.customer().await;
    let p = app.product(10).await;
    s.add(p, 4).await;
    let order: Value = s.checkout(&key()).await.json().await.unwrap();
    let id = order["id"].as_i64().unwrap();
    assert_eq!(app.stock(p).await, 6);
    // Another customer cannot see or cancel it.
    let (st, _) = error_of(other.get(&format!("/api/orders/{id}")).await).await;
    assert_eq!(st, 404);
    let (st, _) = error_of(other.post_json(&format!("/api/orders/{id}/cancel"), &json!({})).await).await;
    assert_eq!(st, 404);
    let (_, list) = other.get_json("/api/orders").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 0);
    let r = s.post_json(&format!("/api/orders/{id}/cancel"), &json!({})).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"], "cancelled");
    assert_eq!(app.stock(p).await, 10, "stock returned");
    // Cancelling again (a retry) is answered the same way and returns nothing twice.
    let r = s.post_json(&format!("/api/orders/{id}/cancel"), &json!({})).await;
    assert_eq!(r.status(), 200);
    assert_eq!(app.stock(p).await, 10, "returned once");
    let (st, _) = error_of(s.get("/api/orders/abc").await).await;
    assert_eq!(st, 404);
}

#[tokio::test]
async fn nginx_retrying_the_same_checkout_gets_the_first_answer() {
    // nginx sends a POST on to the next replica when the first dies after committing; the
    // retry keeps the request id. The client sent one request: it gets one 201. Its own
    // retry (another request id) is a replay: 200, the same order.
    let app = spawn_app().await;
    let s = app.customer().await;
    let p = app.product(10).await;
    assert_eq!(s.add(p, 1).await.status(), 200);
    let k = key();
    let send = |rid: &'static str| {
        s.client
            .post(s.url("/api/orders"))
            .header("Idempotency-Key", &k)
            .header("X-Request-Id", rid)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body("{}")
            .send()
    };
    let first = send("rid-nginx-1").await.unwrap();
    assert_eq!(first.status(), 201);
    let id = first.json::<serde_json::Value>().await.unwrap()["id"].clone();
    let proxy_retry = send("rid-nginx-1").await.unwrap();
    assert_eq!(proxy_retry.status(), 201, "the same request, sent again by the proxy");
    assert_eq!(proxy_retry.json::<serde_json::Value>().await.unwrap()["id"], id);
    let client_retry = send("rid-client-2").await.unwrap();
    assert_eq!(client_retry.status(), 200, "the client's own retry is a replay");
    assert_eq!(client_retry.json::<serde_json::Value>().await.unwrap()["id"], id);
    assert_eq!(app.stock(p).await, 9, "one order");
    // No look-up comes before the transaction: with the cart filled again, the key is found by
    // the order's unique key, and the answers are the same.
    assert_eq!(s.add(p, 1).await.status(), 200);
    let proxy_retry = send("rid-nginx-1").await.unwrap();
    assert_eq!(proxy_retry.status(), 201);
    assert_eq!(proxy_retry.json::<serde_json::Value>().await.unwrap()["id"], id);
    assert_eq!(send("rid-client-3").await.unwrap().status(), 200);
    assert_eq!(app.stock(p).await, 9, "still one order");
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM orders", vec![]).await, 1);
}

/// The order history has pages (the same shape as the catalog's): nothing a shopper ordered
/// drops out of it, however many orders they have.
#[tokio::test]
async fn the_order_history_pages_through_every_order() {
    let app = spawn_app().await;
    let s = app.customer().await;
    let other = app.customer().await;
    let p = app.product(100).await;
    let mut placed = Vec::new();
    for _ in 0..5 {
        assert_eq!(s.add(p, 1).await.status(), 200);
        let v: Value = s.checkout(&key()).await.json().await.unwrap();
        placed.push(v["id"].as_i64().unwrap());
    }
    assert_eq!(other.add(p, 1).await.status(), 200);
    assert_eq!(other.checkout(&key()).await.status(), 201);
    placed.reverse(); // newest first
                      // no parameters: one page of up to 200, as before pages existed
    let (st, all) = s.get_json("/api/orders").await;
    assert_eq!(st, 200);
    assert_eq!(
        (all["page"].as_u64(), all["per_page"].as_u64(), all["total"].as_i64()),
        (Some(1), Some(200), Some(5))
    );
    let ids = |v: &Value| {
        v["items"].as_array().unwrap().iter().map(|o| o["id"].as_i64().unwrap()).collect::<Vec<_>>()
    };
    assert_eq!(ids(&all), placed);
    // pages of 2: 2 + 2 + 1, newest first, every order once
    let mut seen = Vec::new();
    for page in 1..=3 {
        let (st, v) = s.get_json(&format!("/api/orders?page={page}&per_page=2")).await;
        assert_eq!(st, 200, "{v}");
        assert_eq!(v["total"], 5);
        seen.extend(ids(&v));
    }
    assert_eq!(seen, placed);
    let (_, past) = s.get_json("/api/orders?page=4&per_page=2").await;
    assert_eq!(
        (ids(&past).len(), past["total"].as_i64()),
        (0, Some(5)),
        "past the end: empty, total still there"
    );
    for bad in ["page=0", "per_page=0", "per_page=201", "page=x", "page=10001"] {
        let (st, e) = error_of(s.get(&format!("/api/orders?{bad}")).await).await;
        assert_eq!(st, 422, "{bad}: {e}");
        assert!(e["error"]["fields"].as_object().is_some_and(|f| f.len() == 1), "{bad}: {e}");
    }
    // the admin's list pages the same way, over all customers
    let admin = app.admin().await;
    let (st, v) = admin.get_json("/api/admin/orders?status=placed&per_page=4").await;
    assert_eq!(st, 200, "{v}");
    assert_eq!((ids(&v).len(), v["total"].as_i64()), (4, Some(6)));
    let (_, v2) = admin.get_json("/api/admin/orders?status=placed&per_page=4&page=2").await;
    assert_eq!(ids(&v2).len(), 2);
    // the pages: 20 a page, links between them
    let html = s.get("/orders").await.text().await.unwrap();
    assert!(html.contains("5 orders") && !html.contains("page=2\""), "one page only");
    for _ in 0..16 {
        assert_eq!(s.add(p, 1).await.status(), 200);
        assert_eq!(s.checkout(&key()).await.status(), 201);
    }
    let html = s.get("/orders").await.text().await.unwrap();
    assert!(html.contains("21 orders · page 1 of 2") && html.contains("orders?page=2\""), "{html}");
    let html = s.get("/orders?page=2").await.text().await.unwrap();
    assert!(html.contains(&format!("#{}", placed[4])), "the oldest order is on page 2");
    assert!(html.contains("orders?page=1\""), "a link back to page 1");
    assert_eq!(s.get("/orders?page=0").await.status(), 422);
    // the admin confirms from page 2 of a list and comes back to page 2 of it
    let token = admin.csrf("/admin/orders").await;
    let r = admin
        .post_form(
            &format!("/admin/orders/{}/confirm", placed[4]),
            &[("csrf_token", &token), ("status", "placed"), ("page", "2")],
        )
        .await;
    assert_eq!(r.headers()[reqwest::header::LOCATION], "/admin/orders?status=placed&page=2&notice=confirmed");
    // a page size the visitor chose is kept by the pager
    let html = s.get("/orders?per_page=5&page=2").await.text().await.unwrap();
    assert!(
        html.contains("orders?page=3&amp;per_page=5\"") && html.contains("orders?page=1&amp;per_page=5\""),
        "{html}"
    );
    let html = admin.get("/admin/orders?status=placed").await.text().await.unwrap();
    assert!(
        html.contains("21 orders · page 1 of 2") && html.contains("orders?status=placed&amp;page=2\""),
        "{html}"
    );
}

#[tokio::test]
async fn an_order_keeps_the_shipping_address_it_was_placed_with() {
    let app = spawn_app().await;
    let s = app.customer().await;
    let p = app.product(5).await;
    s.add(p, 2).await;
    let checkout = |body: serde_json::Value, k: String| {
        let s = &s;
        async move {
            s.client.post(s.url("/api/orders")).header("Idempotency-Key", k).json(&body).send().await.unwrap()
        }
    };
    // every bad part named, nothing placed
    let bad = json!({"shipping_address": {"name": "", "street": "x".repeat(201), "postcode": "<b>", "city": "Berlin"}});
    let (st, e) = error_of(checkout(bad, key()).await).await;
    assert_eq!(st, 422, "{e}");
    for part in ["name", "street", "postcode", "country"] {
        assert!(e["error"]["fields"][format!("shipping_address.{part}")].is_string(), "{part}: {e}");
    }
    assert!(e["error"]["fields"].get("shipping_address.city").is_none(), "{e}");
    let (st, e) = error_of(checkout(json!({"shipping_address": "Berlin"}), key()).await).await;
    assert_eq!(
        (st.as_u16(), e["error"]["fields"]["shipping_address"].as_str()),
        (422, Some("must be an object"))
    );
    assert_eq!(app.stock(p).await, 5);
    let address = json!({"name": " Ada Lovelace ", "street": "Unter den Linden 1", "postcode": "10117", "city": "Berlin", "country": "Germany"});
    let k = key();
    let r = checkout(json!({"shipping_address": address}), k.clone()).await;
    assert_eq!(r.status(), 201);
    let order: serde_json::Value = r.json().await.unwrap();
    assert_eq!(order["shipping_address"]["name"], "Ada Lovelace", "trimmed");
    assert_eq!(order["shipping_address"]["city"], "Berlin");
    let (_, read) = s.get_json(&format!("/api/orders/{}", order["id"])).await;
    assert_eq!(read["shipping_address"], order["shipping_address"]);
    // a replay answers the first order, with its address
    let (_, replay) = (0, checkout(json!({}), k).await.json::<serde_json::Value>().await.unwrap());
    assert_eq!(replay["shipping_address"], order["shipping_address"]);
    // the admin sees where it goes
    let admin = app.admin().await;
    let page = admin.get("/admin/orders").await.text().await.unwrap();
    assert!(page.contains("Unter den Linden 1, 10117 Berlin, Germany"), "{page}");
    // an API checkout without an address still works (the API does not require one)
    s.add(p, 1).await;
    let r = s.checkout(&key()).await;
    assert_eq!(r.status(), 201);
    assert!(r.json::<serde_json::Value>().await.unwrap().get("shipping_address").is_none());
}

#[tokio::test]
async fn nobody_pays_a_total_they_were_not_shown() {
    let app = spawn_app().await;
    let s = app.customer().await;
    let p = app.product(5).await; // 2500 cents
    s.add(p, 2).await;
    // the checkout page shows €50.00; the admin raises the price before the order is placed
    let page = s.get("/checkout").await.text().await.unwrap();
    assert!(page.contains(r#"name="expected_total_cents" value="5000""#), "{page}");
    app.sql("UPDATE products SET price_cents = 2600 WHERE id = ?", vec![p.into()]).await;
    let token = csrf_in(&page);
    let k = hidden_in(&page, "idempotency_key");
    let form = [
        ("csrf_token", token.as_str()),
        ("idempotency_key", k.as_str()),
        ("expected_total_cents", "5000"),
        ("ship_name", "Ada Lovelace"),
        ("ship_street", "1 Main Street"),
        ("ship_postcode", "12345"),
        ("ship_city", "Town"),
        ("ship_country", "Country"),
    ];
    let r = s.post_form("/checkout", &form).await;
    assert_eq!(r.status(), 409);
    let html = r.text().await.unwrap();
    assert!(html.contains("the total is now €52.00"), "{html}");
    assert_eq!(app.stock(p).await, 5, "no order");
    // the API the same, when the client says what it showed; a total that is not a number is a 422
    let post = |body: Value| {
        let s = &s;
        async move {
            s.client
                .post(s.url("/api/orders"))
                .header("Idempotency-Key", key())
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    let (st, e) = error_of(post(json!({"expected_total_cents": 5000})).await).await;
    assert_eq!((st.as_u16(), e["error"]["code"].as_str()), (409, Some("cart_changed")));
    let (st, e) = error_of(post(json!({"expected_total_cents": "5000"})).await).await;
    assert_eq!((st.as_u16(), e["error"]["fields"]["expected_total_cents"].is_string()), (422, true));
    assert_eq!(post(json!({"expected_total_cents": 5200})).await.status(), 201);
}
