use serde_json::Value;

use crate::helpers::*;

#[tokio::test]
async fn products_paginate_with_a_total() {
    let app = spawn_app().await;
    let s = app.shopper();
    let (st, p1) = s.get_json("/api/products?per_page=5&page=1").await;
    assert_eq!(st, 200);
    let (_, p2) = s.get_json("/api/products?per_page=5&page=2").await;
    assert_eq!(p1["items"].as_array().unwrap().len(), 5);
    assert_eq!((p1["page"].as_i64(), p1["per_page"].as_i64()), (Some(1), Some(5)));
    assert!(p1["total"].as_i64().unwrap() >= 200, "seeded catalog: {}", p1["total"]);
    assert_ne!(p1["items"][0]["id"], p2["items"][0]["id"]);
    let item = &p1["items"][0];
    for field in ["id", "sku", "name", "description", "price_cents", "currency", "stock", "category"] {
        assert!(!item[field].is_null(), "missing {field}: {item}");
    }
    assert_eq!(item["currency"], "EUR");
    // Far beyond the last page: empty, not an error.
    let (st, far) = s.get_json("/api/products?per_page=100&page=9999").await;
    assert_eq!(st, 200);
    assert_eq!(far["items"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn search_and_category_filter() {
    let app = spawn_app().await;
    let s = app.shopper();
    let (_, r) = s.get_json("/api/products?q=skillet").await;
    let items = r["items"].as_array().unwrap();
    assert!(!items.is_empty());
    assert!(items.iter().all(|p| {
        let text = format!("{} {}", p["name"], p["description"]).to_lowercase();
        text.contains("skillet")
    }));
    // A wildcard is searched literally.
    let (_, r) = s.get_json("/api/products?q=%25%25%25").await;
    assert_eq!(r["total"], 0);
    let (st, cats) = s.get_json("/api/categories").await;
    assert_eq!(st, 200);
    let cats = cats["items"].as_array().unwrap().clone();
    assert!(cats.len() >= 5, "{cats:?}");
    let books = cats.iter().find(|c| c["name"] == "Books").expect("Books category");
    let (_, r) = s.get_json("/api/products?category=Books&per_page=100").await;
    assert_eq!(r["total"], books["product_count"]);
    assert!(r["items"].as_array().unwrap().iter().all(|p| p["category"] == "Books"));
}

#[tokio::test]
async fn one_product_and_unknown_ids() {
    let app = spawn_app().await;
    let s = app.shopper();
    let id = app.product(7).await;
    let (st, p) = s.get_json(&format!("/api/products/{id}")).await;
    assert_eq!(st, 200);
    assert_eq!(
        (p["id"].as_i64(), p["stock"].as_i64(), p["price_cents"].as_i64()),
        (Some(id), Some(7), Some(2500))
    );
    for bad in ["999999", "0", "-1", "abc", "1.5", "99999999999999999999999"] {
        let (st, e) = error_of(s.get(&format!("/api/products/{bad}")).await).await;
        assert_eq!(st, 404, "{bad}: {e}");
    }
}

#[tokio::test]
async fn bad_list_parameters_are_422_with_fields() {
    let app = spawn_app().await;
    let s = app.shopper();
    for (q, field) in [
        ("page=0", "page"),
        ("page=-3", "page"),
        ("page=abc", "page"),
        ("per_page=1000", "per_page"),
        ("per_page=0", "per_page"),
        (&*format!("q={}", "x".repeat(101)), "q"),
    ] {
        let (st, e) = error_of(s.get(&format!("/api/products?{q}")).await).await;
        assert_eq!(st, 422, "{q}");
        assert!(e["error"]["fields"][field].is_string(), "{q}: {e}");
    }
}

#[tokio::test]
async fn product_page_shows_stock() {
    let app = spawn_app().await;
    let s = app.shopper();
    let low = app.product(3).await;
    let out = app.product(0).await;
    let plenty = app.product(50).await;
    let html = s.get(&format!("/products/{low}")).await.text().await.unwrap();
    assert!(html.contains("Only 3 left"), "{html}");
    let r = s.get(&format!("/products/{out}")).await;
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(html.contains("Sold out") && !html.contains("Add to cart"));
    let html = s.get(&format!("/products/{plenty}")).await.text().await.unwrap();
    assert!(html.contains("In stock") && html.contains("€25.00") && html.contains("Add to cart"));
    // The catalog page lists, searches and paginates.
    let html = s.get("/?q=skillet").await.text().await.unwrap();
    assert!(html.to_lowercase().contains("skillet"));
    let html = s.get("/?category=Books&page=2").await.text().await.unwrap();
    assert!(html.contains("page 2 of"), "pagination");
    let r = s.get("/products/424242").await;
    assert_eq!(r.status(), 404);
    assert!(r.text().await.unwrap().contains("<html"));
    let v: Value = s.get("/api/products?per_page=1").await.json().await.unwrap();
    assert!(v["items"].is_array());
}
