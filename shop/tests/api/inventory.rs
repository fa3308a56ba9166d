//! The admin's product management: create, edit, hide, restock with a history — and stock
//! changes beside checkouts of the same product.

use serde_json::{json, Value};

use crate::helpers::*;

async fn create(admin: &Shopper, body: Value) -> (u16, Value) {
    let r = admin.post_json("/api/admin/products", &body).await;
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_admin_creates_edits_and_restocks_a_product_with_its_history() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let body = json!({"name": "Espresso cup", "description": "Thick walls.", "category": "Kitchen", "price_cents": 1250, "stock": 3});
    // only the admin
    assert_eq!(app.shopper().post_json("/api/admin/products", &body).await.status(), 401);
    let customer = app.customer().await;
    assert_eq!(customer.post_json("/api/admin/products", &body).await.status(), 403);
    assert_eq!(customer.get_json("/api/admin/products").await.0, 403);
    // every bad field named, nothing created
    let before = app.count("SELECT COUNT(*) AS n FROM products", vec![]).await;
    let (st, e) = error_of(
        admin
            .post_json(
                "/api/admin/products",
                &json!({"name": " ", "category": "x".repeat(65), "price_cents": -1, "stock": 2_000_000, "sku": "a b", "hidden": "yes"}),
            )
            .await,
    )
    .await;
    assert_eq!(st, 422, "{e}");
    for field in ["name", "category", "price_cents", "stock", "sku", "hidden"] {
        assert!(e["error"]["fields"][field].is_string(), "{field}: {e}");
    }
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM products", vec![]).await, before);

    let (st, p) = create(&admin, json!({"name": "Espresso cup", "description": "Thick walls.", "category": "Kitchen", "price_cents": 1250, "stock": 3, "sku": "CUP-1"})).await;
    assert_eq!(st, 201, "{p}");
    let id = p["id"].as_i64().unwrap();
    assert_eq!(
        (p["sku"].as_str(), p["stock"].as_i64(), p["hidden"].as_bool()),
        (Some("CUP-1"), Some(3), Some(false))
    );
    let (st, e) = create(
        &admin,
        json!({"name": "Another", "category": "Kitchen", "price_cents": 1, "stock": 0, "sku": "CUP-1"}),
    )
    .await;
    assert_eq!((st, e["error"]["code"].as_str()), (409, Some("sku_taken")));
    let (st, made_up) =
        create(&admin, json!({"name": "No SKU", "category": "Kitchen", "price_cents": 1, "stock": 0})).await;
    assert_eq!(st, 201);
    assert!(made_up["sku"].as_str().unwrap().starts_with("P-"), "{made_up}");
    // shoppers see it at once (the admin's replica drops its catalog cache)
    let (st, shown) = app.shopper().get_json(&format!("/api/products/{id}")).await;
    assert_eq!((st.as_u16(), shown["price_cents"].as_i64()), (200, Some(1250)));

    // edit: all fields written, the stock untouched
    let r = admin
        .put_json(
            &format!("/api/admin/products/{id}"),
            &json!({"name": "Espresso cup, blue", "category": "Kitchen", "price_cents": 1400}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let saved: Value = r.json().await.unwrap();
    assert_eq!(
        (saved["name"].as_str(), saved["stock"].as_i64(), saved["description"].as_str()),
        (Some("Espresso cup, blue"), Some(3), Some(""))
    );
    assert_eq!(
        admin
            .put_json("/api/admin/products/999999", &json!({"name": "x", "category": "y", "price_cents": 1}))
            .await
            .status(),
        404
    );

    // restock and take away, each recorded with who and why; never below zero
    let stock = |delta: i64, note: &str| {
        let admin = &admin;
        let body = json!({"delta": delta, "note": note});
        async move { admin.post_json(&format!("/api/admin/products/{id}/stock"), &body).await }
    };
    let r = stock(10, "delivery 42").await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["product"]["stock"], 13);
    let (st, e) = error_of(stock(-14, "count").await).await;
    assert_eq!((st.as_u16(), e["error"]["code"].as_str()), (409, Some("stock_below_zero")));
    let (st, e) = error_of(stock(0, "").await).await;
    assert_eq!((st.as_u16(), e["error"]["fields"]["delta"].as_str()), (422, Some("must not be 0")));
    assert_eq!(stock(-2, "broken in the store").await.status(), 200);
    assert_eq!(app.stock(id).await, 11);
    let (_, v) = admin.get_json(&format!("/api/admin/products/{id}")).await;
    let history = v["stock_changes"].as_array().unwrap();
    let seen: Vec<(i64, i64, &str, &str)> = history
        .iter()
        .map(|c| {
            (
                c["delta"].as_i64().unwrap(),
                c["stock_after"].as_i64().unwrap(),
                c["reason"].as_str().unwrap(),
                c["note"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            (-2, 11, "correction", "broken in the store"),
            (10, 13, "restock", "delivery 42"),
            (3, 3, "created", "")
        ]
    );
    assert!(history.iter().all(|c| c["by"] == ADMIN_EMAIL && c["created_at"].as_i64().unwrap() > 0), "{v}");
    // the list holds it
    // by id: its page, one product a page, is its place among the ids
    let place = app.count("SELECT COUNT(*) AS n FROM products WHERE id <= ?", vec![id.into()]).await;
    let (_, list) = admin.get_json(&format!("/api/admin/products?per_page=1&page={place}")).await;
    assert!(list["items"].as_array().unwrap().iter().any(|p| p["id"] == id), "{list}");
}

#[tokio::test]
async fn a_hidden_product_is_not_sold() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let (_, p) = create(
        &admin,
        json!({"name": "Seasonal mug zqx", "category": "Seasonal", "price_cents": 900, "stock": 5}),
    )
    .await;
    let id = p["id"].as_i64().unwrap();
    let keep = app.product(5).await;
    let s = app.customer().await;
    assert_eq!(s.add(id, 1).await.status(), 200);
    assert_eq!(s.add(keep, 1).await.status(), 200);
    let hide = |hidden: bool| {
        let admin = &admin;
        async move {
            admin
                .put_json(&format!("/api/admin/products/{id}"), &json!({"name": "Seasonal mug zqx", "category": "Seasonal", "price_cents": 900, "hidden": hidden}))
                .await
                .status()
        }
    };
    assert_eq!(hide(true).await, 200);
    let anon = app.shopper();
    assert_eq!(anon.get_json(&format!("/api/products/{id}")).await.0, 404);
    assert_eq!(anon.get(&format!("/products/{id}")).await.status(), 404);
    let (_, found) = anon.get_json("/api/products?q=zqx").await;
    assert_eq!(found["total"], 0, "{found}");
    let (_, cats) = anon.get_json("/api/categories").await;
    assert!(!cats.to_string().contains("Seasonal"), "{cats}");
    let (st, e) = error_of(anon.add(id, 1).await).await;
    assert_eq!(st, 422, "{e}");
    // the cart leaves it out, and so does the order: the shopper buys what they saw
    assert_eq!(s.cart().await["items"].as_array().unwrap().len(), 1);
    let r = s.checkout(&key()).await;
    assert_eq!(r.status(), 201);
    let order: Value = r.json().await.unwrap();
    let items = order["items"].as_array().unwrap();
    assert_eq!((items.len(), items[0]["product_id"].as_i64()), (1, Some(keep)));
    assert_eq!(app.stock(id).await, 5);
    // the cart page says why the header still counts it, and lets the shopper remove it
    let page = s.get("/cart").await.text().await.unwrap();
    assert!(page.contains("No longer sold") && page.contains(&format!("1 × product #{id}")), "{page}");
    // back on sale: found again, and still in the cart it was in
    assert_eq!(hide(false).await, 200);
    assert_eq!(anon.get_json(&format!("/api/products/{id}")).await.0, 200);
    assert_eq!(s.cart().await["items"][0]["product_id"], id);
}

#[tokio::test]
async fn restocking_beside_checkouts_of_the_same_product_loses_no_update() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let p = app.product(20).await;
    let mut shoppers = Vec::new();
    for _ in 0..8 {
        let s = app.customer().await;
        assert_eq!(s.add(p, 2).await.status(), 200);
        shoppers.push(s);
    }
    let checkouts = shoppers.iter().map(|s| async move { s.checkout(&key()).await.status().as_u16() });
    let restocks = (0..6).map(|i| {
        let admin = &admin;
        async move {
            admin
                .post_json(
                    &format!("/api/admin/products/{p}/stock"),
                    &json!({"delta": 5, "note": format!("delivery {i}")}),
                )
                .await
                .status()
                .as_u16()
        }
    });
    let (placed, restocked) =
        tokio::join!(futures_util::future::join_all(checkouts), futures_util::future::join_all(restocks));
    assert!(restocked.iter().all(|s| *s == 200), "{restocked:?}");
    assert!(placed.iter().all(|s| *s == 201), "{placed:?}");
    // 20 + 6 × 5 − 8 × 2
    assert_eq!(app.stock(p).await, 34);
    let (_, v) = admin.get_json(&format!("/api/admin/products/{p}")).await;
    assert_eq!(v["stock_changes"].as_array().unwrap().len(), 6);
}

#[tokio::test]
async fn the_admin_pages_manage_products_without_javascript() {
    let app = spawn_app().await;
    // a customer is refused, a visitor is sent to log in
    let r = app.shopper().get("/admin/products").await;
    assert_eq!(r.headers()["location"], "/login?next=%2Fadmin%2Fproducts");
    assert_eq!(app.customer().await.get("/admin/products").await.status(), 403);
    let admin = app.admin().await;
    let page = admin.get("/admin/products/new").await.text().await.unwrap();
    let token = csrf_in(&page);
    // a bad form comes back with what was entered and each error
    let r = admin
        .post_form(
            "/admin/products",
            &[
                ("csrf_token", &token),
                ("name", "Tea pot"),
                ("category", "Kitchen"),
                ("price", "12,50"),
                ("stock", "4"),
            ],
        )
        .await;
    assert_eq!(r.status(), 422);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("Price must be an amount in euros") && html.contains(r#"value="Tea pot""#),
        "{html}"
    );
    let r = admin
        .post_form(
            "/admin/products",
            &[
                ("csrf_token", &token),
                ("name", "Tea pot"),
                ("category", "Kitchen"),
                ("price", "12.50"),
                ("stock", "4"),
            ],
        )
        .await;
    assert_eq!(r.status(), 303);
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    assert!(loc.ends_with("?notice=product_created"), "{loc}");
    let id: i64 = loc.trim_start_matches("/admin/products/").split('?').next().unwrap().parse().unwrap();
    let html = admin.get(&loc).await.text().await.unwrap();
    assert!(html.contains(r#"<span id="stock">4</span>"#) && html.contains("Product created."), "{html}");
    // restock through the form
    let r = admin
        .post_form(
            &format!("/admin/products/{id}/stock"),
            &[("csrf_token", &token), ("delta", "6"), ("note", "delivery")],
        )
        .await;
    assert_eq!(r.status(), 303);
    let html = admin.get(&format!("/admin/products/{id}")).await.text().await.unwrap();
    assert!(
        html.contains(r#"<span id="stock">10</span>"#)
            && html.contains("restock: delivery")
            && html.contains(ADMIN_EMAIL),
        "{html}"
    );
    let r = admin
        .post_form(&format!("/admin/products/{id}/stock"), &[("csrf_token", &token), ("delta", "-11")])
        .await;
    assert_eq!(r.status(), 409);
    assert!(r.text().await.unwrap().contains("only 10 in stock"));
    // hide it through the form
    let r = admin
        .post_form(
            &format!("/admin/products/{id}"),
            &[
                ("csrf_token", &token),
                ("name", "Tea pot"),
                ("category", "Kitchen"),
                ("price", "13"),
                ("hidden", "on"),
            ],
        )
        .await;
    assert_eq!(r.status(), 303);
    assert_eq!(app.shopper().get(&format!("/products/{id}")).await.status(), 404);
    let (_, all) = admin.get_json("/api/admin/products?per_page=1").await;
    let list =
        admin.get(&format!("/admin/products?per_page=1&page={}", all["total"])).await.text().await.unwrap();
    assert!(list.contains(&format!(r#"<tr data-product-id="{id}" class="hidden-product">"#)), "{list}");
    // no token, no change
    let r = admin.post_form(&format!("/admin/products/{id}/stock"), &[("delta", "5")]).await;
    assert_eq!(r.status(), 403);
    assert_eq!(app.stock(id).await, 10);
}

#[tokio::test]
async fn a_stock_change_or_a_product_sent_again_is_made_once() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let p = app.product(5).await;
    // the API: the same Idempotency-Key again changes nothing and answers the product as it is
    let k = key();
    for _ in 0..3 {
        let r = admin
            .client
            .post(admin.url(&format!("/api/admin/products/{p}/stock")))
            .header("Idempotency-Key", &k)
            .json(&json!({"delta": 7, "note": "delivery"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.json::<Value>().await.unwrap()["product"]["stock"], 12);
    }
    let (_, v) = admin.get_json(&format!("/api/admin/products/{p}")).await;
    assert_eq!(v["stock_changes"].as_array().unwrap().len(), 1, "{v}");
    // the form: its operation key makes a double click one change
    let page = admin.get(&format!("/admin/products/{p}")).await.text().await.unwrap();
    let (token, op) = (csrf_in(&page), hidden_in(&page, "op_key"));
    for _ in 0..2 {
        let r = admin
            .post_form(
                &format!("/admin/products/{p}/stock"),
                &[("csrf_token", &token), ("op_key", &op), ("delta", "3")],
            )
            .await;
        assert_eq!(r.status(), 303);
    }
    assert_eq!(app.stock(p).await, 15);
    // a product sent again under its SKU is the product made the first time; another one is a 409
    let body = json!({"name": "Jug", "category": "Kitchen", "price_cents": 900, "stock": 2, "sku": "JUG-1"});
    let (st1, first) = create(&admin, body.clone()).await;
    let (st2, again) = create(&admin, body).await;
    assert_eq!((st1, st2, first["id"].clone()), (201, 201, again["id"].clone()));
    let (st, e) = create(
        &admin,
        json!({"name": "Another jug", "category": "Kitchen", "price_cents": 900, "stock": 2, "sku": "JUG-1"}),
    )
    .await;
    assert_eq!((st, e["error"]["code"].as_str()), (409, Some("sku_taken")));
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM products WHERE sku = 'JUG-1'", vec![]).await, 1);
    // the new-product form comes with a SKU made up for it
    let page = admin.get("/admin/products/new").await.text().await.unwrap();
    assert!(page.contains(r#"name="sku" value="P-"#), "{page}");
}
