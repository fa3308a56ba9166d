use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn add_change_remove_with_totals() {
    let app = spawn_app().await;
    let s = app.shopper(); // anonymous carts work too
    let a = app.product(20).await;
    let b = app.product(20).await;
    assert_eq!(s.add(a, 2).await.status(), 200);
    assert_eq!(s.add(b, 1).await.status(), 200);
    assert_eq!(s.add(a, 1).await.status(), 200);
    let cart = s.cart().await;
    let items = cart["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    let line_a = items.iter().find(|l| l["product_id"] == a).unwrap();
    assert_eq!(line_a["quantity"], 3);
    assert_eq!(line_a["unit_price_cents"], 2500);
    assert_eq!(line_a["line_total_cents"], 7500);
    assert!(line_a["name"].is_string());
    assert_eq!(cart["total_cents"], 10000);
    let r = s.put_json(&format!("/api/cart/items/{a}"), &json!({"quantity": 5})).await;
    assert_eq!(r.status(), 200);
    // PUT is idempotent.
    s.put_json(&format!("/api/cart/items/{a}"), &json!({"quantity": 5})).await;
    assert_eq!(s.cart().await["total_cents"], 15000);
    assert_eq!(s.delete(&format!("/api/cart/items/{b}")).await.status(), 200);
    assert_eq!(s.delete(&format!("/api/cart/items/{b}")).await.status(), 200, "removing twice is fine");
    let cart = s.cart().await;
    assert_eq!(cart["items"].as_array().unwrap().len(), 1);
    assert_eq!(cart["total_cents"], 12500);
}

#[tokio::test]
async fn quantities_are_checked() {
    let app = spawn_app().await;
    let s = app.shopper();
    let p = app.product(5).await;
    let big = app.product(500).await;
    let sold_out = app.product(0).await;
    for q in
        [json!(0), json!(-1), json!(100), json!(1e12), json!(i64::MAX), json!("3"), json!(1.5), json!(null)]
    {
        let (st, e) =
            error_of(s.post_json("/api/cart/items", &json!({"product_id": p, "quantity": q})).await).await;
        assert_eq!(st, 422, "quantity {q}: {e}");
        assert!(e["error"]["fields"]["quantity"].is_string(), "{e}");
    }
    let (st, e) = error_of(s.add(p, 6).await).await;
    assert_eq!(st, 422);
    assert!(e["error"]["fields"]["quantity"].as_str().unwrap().contains("only 5"), "{e}");
    let (st, e) = error_of(s.add(sold_out, 1).await).await;
    assert!(st == 422 && e["error"]["fields"]["quantity"].as_str().unwrap().contains("sold out"), "{e}");
    for pid in [json!(999999), json!(0), json!("x")] {
        let (st, e) =
            error_of(s.post_json("/api/cart/items", &json!({"product_id": pid, "quantity": 1})).await).await;
        assert_eq!(st, 422, "{pid}: {e}");
        assert!(e["error"]["fields"]["product_id"].is_string(), "{e}");
    }
    // Cumulative: 3 + 3 > 5 in stock; 60 + 60 > 99.
    assert_eq!(s.add(p, 3).await.status(), 200);
    let (st, e) = error_of(s.add(p, 3).await).await;
    assert!(
        st == 422 && e["error"]["fields"]["quantity"].as_str().unwrap().contains("already in your cart"),
        "{e}"
    );
    assert_eq!(s.add(big, 60).await.status(), 200);
    let (st, e) = error_of(s.add(big, 60).await).await;
    assert!(st == 422 && e["error"]["fields"]["quantity"].as_str().unwrap().contains("99"), "{e}");
    let (st, _) = error_of(s.put_json(&format!("/api/cart/items/{p}"), &json!({"quantity": 6})).await).await;
    assert_eq!(st, 422);
    let (st, _) = error_of(s.put_json("/api/cart/items/abc", &json!({"quantity": 1})).await).await;
    assert_eq!(st, 404);
    // Nothing of the refused changes stuck.
    let cart = s.cart().await;
    let q = |id: i64| {
        cart["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["product_id"] == id)
            .map(|l| l["quantity"].clone())
    };
    assert_eq!((q(p), q(big), q(sold_out)), (Some(json!(3)), Some(json!(60)), None));
}

#[tokio::test]
async fn anonymous_cart_merges_into_the_account_at_login() {
    let app = spawn_app().await;
    let a = app.product(10).await;
    let b = app.product(10).await;
    let c = app.product(4).await;
    let user = app.shopper();
    user.register("merge@example.org", PASSWORD, "Merge").await;
    user.login("merge@example.org", PASSWORD).await;
    user.add(a, 1).await;
    user.add(c, 3).await;
    user.post_json("/api/logout", &json!({})).await;
    // Later, anonymously, on another device.
    let anon = app.shopper();
    anon.add(a, 2).await;
    anon.add(b, 1).await;
    anon.add(c, 3).await;
    assert_eq!(anon.login("merge@example.org", PASSWORD).await.status(), 200);
    let cart = anon.cart().await;
    let q = |id: i64| {
        cart["items"].as_array().unwrap().iter().find(|l| l["product_id"] == id).unwrap()["quantity"].clone()
    };
    assert_eq!(q(a), 3);
    assert_eq!(q(b), 1);
    assert_eq!(q(c), 4, "capped at stock");
    // The anonymous cart is gone after logout.
    anon.post_json("/api/logout", &json!({})).await;
    assert_eq!(anon.cart().await["items"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn concurrent_changes_of_one_shopper_all_survive() {
    let app = spawn_app().await;
    let s = app.customer().await;
    let mut products = vec![];
    for _ in 0..12 {
        products.push(app.product(50).await);
    }
    let same = app.product(50).await;
    let mut tasks = vec![];
    for &p in &products {
        tasks.push(s.add(p, 2));
    }
    for _ in 0..15 {
        tasks.push(s.add(same, 1));
    }
    let results = futures_util::future::join_all(tasks).await;
    assert!(results.iter().all(|r| r.status() == 200));
    let cart = s.cart().await;
    let items = cart["items"].as_array().unwrap();
    assert_eq!(items.len(), 13, "{cart}");
    for l in items {
        let expected = if l["product_id"] == same { 15 } else { 2 };
        assert_eq!(l["quantity"], expected, "{l}");
    }
}

#[tokio::test]
async fn an_add_with_an_idempotency_key_happens_once() {
    let app = spawn_app().await;
    let s = app.customer().await;
    let p = app.product(50).await;
    let add = |k: String| {
        s.client
            .post(s.url("/api/cart/items"))
            .header("Idempotency-Key", k)
            .json(&json!({"product_id": p, "quantity": 2}))
            .send()
    };
    let k = key();
    let first = add(k.clone()).await.unwrap();
    assert_eq!(first.status(), 200);
    let first: serde_json::Value = first.json().await.unwrap();
    assert_eq!(first["items"][0]["quantity"], 2, "the answer is the cart after the add: {first}");
    // A retry (by the client or by nginx on another replica), also concurrent ones: each answers
    // the cart (read with the add, in the same store call), none adds again.
    let retries = futures_util::future::join_all((0..5).map(|_| add(k.clone()))).await;
    for r in retries {
        let r = r.unwrap();
        assert_eq!(r.status(), 200);
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["items"][0]["quantity"], 2, "{v}");
    }
    assert_eq!(s.cart().await["items"][0]["quantity"], 2, "applied once");
    assert_eq!(add(key()).await.unwrap().status(), 200);
    assert_eq!(s.cart().await["items"][0]["quantity"], 4, "a new key is a new add");
    let (st, e) = error_of(add("bad key!".into()).await.unwrap()).await;
    assert!(st == 422 && e["error"]["fields"]["Idempotency-Key"].is_string(), "{e}");
    // The HTML form carries one too: resubmitting the same page adds once.
    let page = s.get(&format!("/products/{p}")).await.text().await.unwrap();
    let (token, op) = (csrf_in(&page), hidden_in(&page, "op"));
    let pid = p.to_string();
    for _ in 0..2 {
        let r = s
            .post_form(
                "/cart/add",
                &[("csrf_token", &token), ("product_id", &pid), ("quantity", "1"), ("op", &op)],
            )
            .await;
        assert_eq!(r.status(), 303);
    }
    assert_eq!(s.cart().await["items"][0]["quantity"], 5);
}

/// When several inputs are bad, which error a client gets is part of the API (handlers check in
/// a fixed order; see `edge::extract` on why that order is not left to the extractors).
#[tokio::test]
async fn the_first_bad_input_decides_the_error() {
    let app = spawn_app().await;
    let s = app.customer().await;
    let send = |method: reqwest::Method, path: &str, key: Option<&str>, body: &'static str| {
        let mut r =
            s.client.request(method, s.url(path)).header("Content-Type", "application/json").body(body);
        if let Some(k) = key {
            r = r.header("Idempotency-Key", k);
        }
        r.send()
    };
    // a path that is not an id: 404, whatever the body
    let (st, _) =
        error_of(send(reqwest::Method::PUT, "/api/cart/items/abc", None, "{bad").await.unwrap()).await;
    assert_eq!(st, 404);
    // a body that is not JSON: 400, before the key
    let (st, _) =
        error_of(send(reqwest::Method::POST, "/api/cart/items", Some("bad key!"), "{bad").await.unwrap())
            .await;
    assert_eq!(st, 400);
    // the body's fields before the key
    let (st, e) = error_of(
        send(
            reqwest::Method::POST,
            "/api/cart/items",
            Some("bad key!"),
            r#"{"product_id": 1, "quantity": 0}"#,
        )
        .await
        .unwrap(),
    )
    .await;
    assert!(
        st == 422
            && e["error"]["fields"]["quantity"].is_string()
            && e["error"]["fields"].get("Idempotency-Key").is_none(),
        "{e}"
    );
    // checkout: not logged in is a 401 before a missing key's 422
    let anon = app.shopper();
    let r = anon
        .client
        .post(anon.url("/api/orders"))
        .header("Content-Type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = s
        .client
        .post(s.url("/api/orders"))
        .header("Content-Type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    let (st, e) = error_of(r).await;
    assert!(st == 422 && e["error"]["fields"]["Idempotency-Key"].is_string(), "{e}");
}
