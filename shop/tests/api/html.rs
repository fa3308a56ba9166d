//! The shop as a browser without JavaScript uses it: forms, redirects, pages.

use crate::helpers::*;

#[tokio::test]
async fn a_shopper_buys_through_the_html_pages_and_the_admin_confirms() {
    let app = spawn_app().await;
    let p = app.product(5).await;
    let s = app.shopper();
    // Register through the form (logs in).
    let token = s.csrf("/register").await;
    let r = s
        .post_form(
            "/register",
            &[
                ("csrf_token", &token),
                ("name", "Form Shopper"),
                ("email", "form@example.org"),
                ("password", "short"),
            ],
        )
        .await;
    assert_eq!(r.status(), 422, "the form again, with the error");
    let html = r.text().await.unwrap();
    assert!(html.contains("at least 10 characters") && html.contains("form@example.org"));
    let r = s
        .post_form(
            "/register",
            &[
                ("csrf_token", &token),
                ("name", "Form Shopper"),
                ("email", "form@example.org"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.status(), 303);
    let html = s.get("/").await.text().await.unwrap();
    assert!(html.contains("Log out Form Shopper"));
    // Add to cart: too many is the product page with the message.
    let token = s.csrf(&format!("/products/{p}")).await;
    let pid = p.to_string();
    let r =
        s.post_form("/cart/add", &[("csrf_token", &token), ("product_id", &pid), ("quantity", "9")]).await;
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("only 5"));
    let r =
        s.post_form("/cart/add", &[("csrf_token", &token), ("product_id", &pid), ("quantity", "abc")]).await;
    assert_eq!(r.status(), 422);
    let r =
        s.post_form("/cart/add", &[("csrf_token", &token), ("product_id", &pid), ("quantity", "2")]).await;
    assert_eq!(r.status(), 303);
    let cart = s.get("/cart").await.text().await.unwrap();
    assert!(cart.contains("€50.00"));
    let r =
        s.post_form("/cart/update", &[("csrf_token", &token), ("product_id", &pid), ("quantity", "3")]).await;
    assert_eq!(r.status(), 303);
    // Checkout: the page mints the idempotency key; submitting twice makes one order.
    let page = s.get("/checkout").await.text().await.unwrap();
    assert!(page.contains("€75.00"));
    let k = hidden_in(&page, "idempotency_key");
    let token = csrf_in(&page);
    // the address form starts with the account's name; without the rest it is the form again
    assert!(page.contains(r#"name="ship_name" value="Form Shopper""#));
    let r = s.post_form("/checkout", &[("csrf_token", &token), ("idempotency_key", &k)]).await;
    assert_eq!(r.status(), 422);
    let again = r.text().await.unwrap();
    assert!(again.contains("Street is required") && again.contains("€75.00"), "{again}");
    assert_eq!(app.stock(p).await, 5, "no order without an address");
    let form = [
        ("csrf_token", token.as_str()),
        ("idempotency_key", k.as_str()),
        ("ship_name", "Ada Lovelace"),
        ("ship_street", "12 St James's Square"),
        ("ship_postcode", "SW1Y 4JH"),
        ("ship_city", "London"),
        ("ship_country", "United Kingdom"),
    ];
    let r1 = s.post_form("/checkout", &form).await;
    let r2 = s.post_form("/checkout", &form).await;
    assert_eq!((r1.status().as_u16(), r2.status().as_u16()), (303, 303));
    let loc = r1.headers().get("location").unwrap().to_str().unwrap().to_string();
    assert_eq!(loc, r2.headers().get("location").unwrap().to_str().unwrap());
    assert_eq!(app.stock(p).await, 2);
    let detail = s.get(&loc).await.text().await.unwrap();
    assert!(detail.contains("Your order is placed") && detail.contains("€75.00"));
    assert!(
        detail.contains(
            r#"<address class="ship">Ada Lovelace<br>12 St James&#x27;s Square<br>SW1Y 4JH London"#
        ),
        "{detail}"
    );
    let orders = s.get("/orders").await.text().await.unwrap();
    assert!(orders.contains("placed"));
    // Empty cart now: the checkout page says so.
    assert!(s.get("/checkout").await.text().await.unwrap().contains("Your cart is empty"));
    // The admin confirms through the admin page.
    let admin = app.shopper();
    let token = admin.csrf("/login").await;
    let r = admin
        .post_form(
            "/login",
            &[("csrf_token", &token), ("email", ADMIN_EMAIL), ("password", "wrong password")],
        )
        .await;
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("wrong email or password"));
    let r = admin
        .post_form(
            "/login",
            &[
                ("csrf_token", &token),
                ("email", ADMIN_EMAIL),
                ("password", ADMIN_PASSWORD),
                ("next", "/admin/orders"),
            ],
        )
        .await;
    assert_eq!(r.headers().get("location").unwrap(), "/admin/orders");
    let page = admin.get("/admin/orders?status=placed").await.text().await.unwrap();
    assert!(page.contains("form@example.org"));
    let order_id = loc.trim_start_matches("/orders/").split('?').next().unwrap().to_string();
    let token = csrf_in(&page);
    let r = admin
        .post_form(
            &format!("/admin/orders/{order_id}/confirm"),
            &[("csrf_token", &token), ("status", "placed")],
        )
        .await;
    assert_eq!(r.status(), 303);
    assert!(s.get(&loc).await.text().await.unwrap().contains("confirmed"));
    // Logging out through the form.
    let token = s.csrf("/").await;
    assert_eq!(s.post_form("/logout", &[("csrf_token", &token)]).await.status(), 303);
    assert!(s.get("/").await.text().await.unwrap().contains("Log in"));
    assert_eq!(s.get("/orders").await.status(), 303, "orders need a login");
    // each page that needs a login sends the visitor there, and the login comes back to it
    let order_page = format!("/orders/{order_id}");
    for (path, next) in [
        ("/orders", "%2Forders".to_string()),
        ("/checkout", "%2Fcheckout".to_string()),
        (loc.as_str(), format!("%2Forders%2F{order_id}")),
        (order_page.as_str(), format!("%2Forders%2F{order_id}")),
        ("/admin/orders?status=placed", "%2Fadmin%2Forders%3Fstatus%3Dplaced".to_string()),
    ] {
        let r = s.get(path).await;
        assert_eq!(r.status(), 303, "{path}");
        assert_eq!(r.headers()[reqwest::header::LOCATION], format!("/login?next={next}").as_str(), "{path}");
    }
}
