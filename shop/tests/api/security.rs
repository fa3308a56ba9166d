use reqwest::header;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn html_forms_need_the_csrf_token() {
    let app = spawn_app().await;
    let s = app.shopper();
    let p = app.product(10).await;
    let pid = p.to_string();
    let r = s.post_form("/cart/add", &[("product_id", &pid), ("quantity", "1")]).await;
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("expired"));
    let r =
        s.post_form("/cart/add", &[("product_id", &pid), ("quantity", "1"), ("csrf_token", "forged")]).await;
    assert_eq!(r.status(), 403);
    // A token from another session does not work either.
    let other = app.shopper();
    let foreign = other.csrf("/login").await;
    let r =
        s.post_form("/cart/add", &[("product_id", &pid), ("quantity", "1"), ("csrf_token", &foreign)]).await;
    assert_eq!(r.status(), 403);
    assert_eq!(s.cart().await["items"].as_array().unwrap().len(), 0);
    let token = s.csrf(&format!("/products/{p}")).await;
    let r =
        s.post_form("/cart/add", &[("product_id", &pid), ("quantity", "1"), ("csrf_token", &token)]).await;
    assert_eq!(r.status(), 303);
    assert_eq!(s.cart().await["items"][0]["quantity"], 1);
    for path in [
        "/login",
        "/register",
        "/logout",
        "/checkout",
        "/cart/update",
        "/cart/remove",
        "/orders/1/cancel",
        "/admin/orders/1/confirm",
    ] {
        assert_eq!(s.post_form(path, &[("x", "y")]).await.status(), 403, "{path}");
    }
}

#[tokio::test]
async fn api_refuses_foreign_origins_and_other_content_types() {
    let app = spawn_app().await;
    let s = app.customer().await;
    let p = app.product(10).await;
    let body = json!({"product_id": p, "quantity": 1}).to_string();
    let r = s
        .client
        .post(s.url("/api/cart/items"))
        .header(header::ORIGIN, "https://evil.example")
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    let (st, e) = error_of(r).await;
    assert_eq!(st, 403, "{e}");
    for ct in ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"] {
        let r = s
            .client
            .post(s.url("/api/cart/items"))
            .header(header::CONTENT_TYPE, ct)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let (st, _) = error_of(r).await;
        assert_eq!(st, 415, "{ct}");
    }
    let r = s.client.post(s.url("/api/cart/items")).body(body.clone()).send().await.unwrap();
    assert_eq!(r.status(), 415, "no content type");
    assert_eq!(s.cart().await["items"].as_array().unwrap().len(), 0);
    let same_origin = format!("http://{}", app.host);
    let r = s
        .client
        .post(s.url("/api/cart/items"))
        .header(header::ORIGIN, same_origin)
        .header(header::CONTENT_TYPE, "application/json; charset=utf-8")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn bodies_are_limited_and_must_be_json_objects() {
    let app = spawn_app().await;
    let s = app.shopper();
    let huge = json!({"email": "a@b.org", "password": "x".repeat(100 * 1024), "name": "X"});
    let (st, _) = error_of(s.post_json("/api/register", &huge).await).await;
    assert_eq!(st, 413);
    for raw in ["{not json", "[1,2,3]", "\"text\"", "{\"email\": \"a@b.org\",}"] {
        let r = s
            .client
            .post(s.url("/api/register"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(raw)
            .send()
            .await
            .unwrap();
        let (st, e) = error_of(r).await;
        assert_eq!(st, 400, "{raw}: {e}");
    }
    // Form posts are limited too.
    let big = "q".repeat(70 * 1024);
    assert_eq!(s.post_form("/login", &[("email", &big)]).await.status(), 413);
}

#[tokio::test]
async fn markup_in_user_input_is_escaped() {
    let app = spawn_app().await;
    let s = app.shopper();
    let evil = "<script>alert(1)</script>";
    s.register("xss@example.org", PASSWORD, evil).await;
    s.login("xss@example.org", PASSWORD).await;
    let html = s.get("/").await.text().await.unwrap();
    assert!(!html.contains(evil));
    assert!(html.contains("&lt;script&gt;"));
    let html = s.get(&format!("/?q={}", "%3Cb%3Ebold%3C%2Fb%3E")).await.text().await.unwrap();
    assert!(!html.contains("<b>bold</b>"));
}

#[tokio::test]
async fn unknown_routes_are_404_in_the_right_shape() {
    let app = spawn_app().await;
    let s = app.shopper();
    let (st, e) = error_of(s.get("/api/nothing/here").await).await;
    assert_eq!(st, 404, "{e}");
    let r = s.get("/nothing/here").await;
    assert_eq!(r.status(), 404);
    assert!(r.text().await.unwrap().contains("does not exist"));
    let r = s.get("/?page=0").await;
    assert_eq!(r.status(), 422, "bad query on a page is a 4xx page");
}
