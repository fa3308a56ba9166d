use serde_json::{json, Value};

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

#[tokio::test]
async fn catalog_pages_of_a_visitor_without_a_session_set_no_cookie() {
    // A page that sets no cookie and carries no per-visitor token is the same for every such
    // visitor: nginx and the replica may serve it from a cache.
    let app = spawn_app().await;
    let s = app.shopper();
    let p = app.product(7).await;
    for path in ["/".to_string(), "/?q=mug&page=1".to_string(), format!("/products/{p}")] {
        let r = s.get(&path).await;
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(session_cookie(&r), None, "{path} set a session cookie");
        let html = r.text().await.unwrap();
        if html.contains("name=\"csrf_token\"") {
            assert_eq!(csrf_in(&html), "", "{path}: a token without a session");
        }
    }
    // The pages that need a token start the session.
    for path in ["/login", "/register"] {
        let r = app.shopper().get(path).await;
        assert!(session_cookie(&r).is_some(), "{path} must start a session");
        assert_ne!(csrf_in(&r.text().await.unwrap()), "", "{path}");
    }
    // With a session, the page is the visitor's own (cart badge).
    let c = app.customer().await;
    assert_eq!(c.add(p, 2).await.status(), 200);
    let html = c.get("/").await.text().await.unwrap();
    assert!(html.contains("<span class=\"badge\">2</span>"), "the customer's cart count is shown");
}

#[tokio::test]
async fn a_visitor_without_a_session_adds_from_a_cached_product_page() {
    let app = spawn_app().await;
    let p = app.product(7).await;
    let pid = p.to_string();
    let s = app.shopper();
    let html = s.get(&format!("/products/{p}")).await.text().await.unwrap();
    let op = hidden_in(&html, "op");
    let form = [("csrf_token", ""), ("product_id", pid.as_str()), ("quantity", "2"), ("op", op.as_str())];
    // Not from this site (or not saying where from): refused, nothing added.
    for origin in [Some("http://evil.example"), None] {
        let mut rq = s.client.post(s.url("/cart/add")).form(&form);
        if let Some(o) = origin {
            rq = rq.header("Origin", o);
        }
        let r = rq.send().await.unwrap();
        assert_eq!(r.status(), 403, "origin {origin:?}");
        assert_eq!(session_cookie(&r), None);
    }
    // From this site: added, and the visitor now has a session with that cart.
    let origin = app.base.clone();
    let r = s.client.post(s.url("/cart/add")).header("Origin", &origin).form(&form).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert!(session_cookie(&r).is_some(), "the add starts a session");
    assert_eq!(s.cart().await["items"][0]["quantity"], 2);
    // Once there is a session the token is required again, Origin or not.
    let r = s.client.post(s.url("/cart/add")).header("Origin", &origin).form(&form).send().await.unwrap();
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn cached_stock_lags_at_most_the_cache_life_and_a_checkout_here_refreshes_it() {
    // A long cache life makes the lag observable without timing races.
    let app = spawn_app_with(|env, _| {
        env.insert("SHOP_CATALOG_CACHE_MS".into(), "60000".into());
    })
    .await;
    let p = app.product(9).await;
    let s = app.shopper();
    let stock = |v: Value| v["stock"].as_i64();
    assert_eq!(stock(s.get_json(&format!("/api/products/{p}")).await.1), Some(9));
    app.set_stock(p, 8).await; // a change made elsewhere (another replica, an operator)
    assert_eq!(stock(s.get_json(&format!("/api/products/{p}")).await.1), Some(9), "served from the cache");
    // A checkout on this replica takes stock from the database (the authority) and refreshes
    // the cache: the buyer sees the new figure at once.
    let c = app.customer().await;
    assert_eq!(c.add(p, 3).await.status(), 200);
    assert_eq!(c.checkout(&key()).await.status(), 201);
    assert_eq!(stock(s.get_json(&format!("/api/products/{p}")).await.1), Some(5));
    let html = s.get(&format!("/products/{p}")).await.text().await.unwrap();
    assert!(html.contains("max=\"5\""), "the product page shows the new stock");
}

/// Replicas keep single products (cart pricing, the cart's advisory stock) for
/// `SHOP_PRODUCT_CACHE_MS`, long, because each change made on one is heard by all (Redis
/// pub/sub). Only with Redis (`tests/run.sh` runs this suite on a Redis Cluster): the in-process
/// store serves one process, whose own changes are all there is.
#[tokio::test]
async fn a_product_changed_on_one_replica_is_reread_by_the_others_at_once() {
    let app = spawn_app_with(|env, _| {
        env.insert("SHOP_PRODUCT_CACHE_MS".into(), "60000".into());
        env.insert("SHOP_CATALOG_CACHE_MS".into(), "60000".into());
    })
    .await;
    if app.settings.redis_urls.is_empty() {
        eprintln!("SHOP_TEST_REDIS_URLS not set: one process, nothing to hear from another replica");
        return;
    }
    let other = app.start_instance().await; // a second replica, same database and Redis
                                            // both replicas subscribed (a subscription's first news, "anything may have changed", must
                                            // not land in the middle of what follows)
    let channel = format!("{}products-changed", app.settings.redis_prefix);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while subscribers(&app.settings.redis_urls, &channel).await < 2 {
        assert!(std::time::Instant::now() < deadline, "the two replicas did not subscribe within 10 s");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let p = app.product(9).await;
    let c = app.customer().await;
    let on_other = c.at(&other);
    assert_eq!(on_other.add(p, 1).await.status(), 200);
    let line =
        |cart: Value| (cart["items"][0]["unit_price_cents"].as_i64(), cart["items"][0]["stock"].as_i64());
    assert_eq!(line(on_other.cart().await), (Some(2500), Some(9)));

    // a change nobody announces (made in the database by hand): the other replica keeps its copy
    app.set_stock(p, 7).await;
    assert_eq!(line(on_other.cart().await), (Some(2500), Some(9)), "the product is cached there");

    // an admin's change on the first replica: the other one rereads the product at once
    let admin = app.admin().await;
    let body = json!({"name": "Renamed", "description": "", "category": "Test", "price_cents": 1999});
    assert_eq!(admin.put_json(&format!("/api/admin/products/{p}"), &body).await.status(), 200);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    loop {
        let now = line(on_other.cart().await);
        if now == (Some(1999), Some(7)) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "after 3 s the other replica still prices the line {now:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    // a checkout on the other replica: the first one hears of the stock it took
    let on_first = app.customer().await;
    assert_eq!(on_first.add(p, 1).await.status(), 200); // cached on the first replica: 7 in stock
    assert_eq!(on_other.checkout(&key()).await.status(), 201); // takes 1 there: 6 left
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    loop {
        let now = line(on_first.cart().await);
        if now.1 == Some(6) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "after 3 s the first replica still shows {now:?}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// How many connections listen on `channel`, over the given Redis nodes.
async fn subscribers(urls: &[String], channel: &str) -> i64 {
    let mut n = 0;
    for url in urls {
        let mut c = redis::Client::open(url.as_str())
            .expect("a Redis URL")
            .get_multiplexed_async_connection()
            .await
            .expect("connect to a Redis node");
        let (_, k): (String, i64) =
            redis::cmd("PUBSUB").arg("NUMSUB").arg(channel).query_async(&mut c).await.expect("PUBSUB NUMSUB");
        n += k;
    }
    n
}

#[tokio::test]
async fn caching_can_be_turned_off() {
    let app = spawn_app_with(|env, _| {
        env.insert("SHOP_CATALOG_CACHE_MS".into(), "0".into());
    })
    .await;
    let p = app.product(9).await;
    let s = app.shopper();
    assert_eq!(s.get_json(&format!("/api/products/{p}")).await.1["stock"], 9);
    app.set_stock(p, 4).await;
    assert_eq!(s.get_json(&format!("/api/products/{p}")).await.1["stock"], 4);
}

/// Every product has a picture (SVG drawn from its category and name), shown on the grid and its
/// page, and the grid adds to the cart without JavaScript.
#[tokio::test]
async fn products_have_pictures_and_the_grid_adds_to_the_cart() {
    let app = spawn_app().await;
    let s = app.shopper();
    let p = app.product(3).await;
    let r = s.get(&format!("/products/{p}/picture.svg")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()[reqwest::header::CONTENT_TYPE], "image/svg+xml");
    assert!(r.headers()[reqwest::header::CACHE_CONTROL].to_str().unwrap().contains("max-age="));
    assert!(r.headers()[reqwest::header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .starts_with("default-src 'none'"));
    let body = r.text().await.unwrap();
    assert!(body.starts_with("<svg") && body.ends_with("</svg>"), "{body}");
    assert_eq!(
        s.get(&format!("/products/{p}/picture.svg")).await.text().await.unwrap(),
        body,
        "the same picture every time"
    );
    // revalidation: the same ETag again is a 304 without a body
    let url = s.url(&format!("/products/{p}/picture.svg"));
    let etag = s.get(&format!("/products/{p}/picture.svg")).await.headers()[reqwest::header::ETAG]
        .to_str()
        .unwrap()
        .to_string();
    let r = s.client.get(&url).header("If-None-Match", &etag).send().await.unwrap();
    assert_eq!(r.status(), 304);
    let r = s.client.get(&url).header("If-None-Match", "\"other\"").send().await.unwrap();
    assert_eq!(r.status(), 200);
    for bad in ["/products/999999/picture.svg", "/products/abc/picture.svg", "/products/0/picture.svg"] {
        assert_eq!(s.get(bad).await.status(), 404, "{bad}");
    }
    // the product page and the grid show it; the grid has an add button for what is in stock
    let page = s.get(&format!("/products/{p}")).await.text().await.unwrap();
    assert!(page.contains(&format!("/products/{p}/picture.svg")), "product page");
    let (_, listing) = s.get_json("/api/products?per_page=100").await;
    let sold_out = listing["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["stock"] == 0)
        .map(|x| x["id"].as_i64().unwrap());
    let grid = s.get("/?per_page=100").await.text().await.unwrap();
    assert!(grid.contains("alt=\"") && grid.contains("/picture.svg\""), "the grid shows pictures");
    assert!(grid.contains("action=\"/cart/add\""), "add buttons on the grid");
    if let Some(id) = sold_out {
        assert!(
            !grid.contains(&format!("name=\"product_id\" value=\"{id}\"")),
            "no add button for a sold-out product"
        );
    }
    // a visitor without a session adds from the grid (same origin, no token on a cacheable page)
    let r = s
        .client
        .post(s.url("/cart/add"))
        .header("Origin", &app.base)
        .form(&[("csrf_token", ""), ("product_id", &p.to_string()), ("quantity", "1")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(s.cart().await["items"][0]["product_id"], p);
}

/// The catalog sorts by name or price and filters by a price range, in the API and on the page,
/// and the page's links keep both.
#[tokio::test]
async fn sorting_and_a_price_range() {
    let app = spawn_app().await;
    let s = app.shopper();
    let prices = |v: &Value| {
        v["items"].as_array().unwrap().iter().map(|p| p["price_cents"].as_i64().unwrap()).collect::<Vec<_>>()
    };
    let (st, cheap) = s.get_json("/api/products?sort=price&per_page=100").await;
    assert_eq!(st, 200);
    let p = prices(&cheap);
    assert!(p.windows(2).all(|w| w[0] <= w[1]), "cheapest first: {p:?}");
    let (_, dear) = s.get_json("/api/products?sort=price_desc&per_page=100").await;
    let d = prices(&dear);
    assert!(d.windows(2).all(|w| w[0] >= w[1]), "dearest first: {d:?}");
    let (_, named) = s.get_json("/api/products?sort=name&per_page=100").await;
    let names: Vec<String> =
        named["items"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap().to_string()).collect();
    // SQLite compares bytes, MariaDB by its collation (case and punctuation weigh differently):
    // both agree on the order of the first letters
    let firsts: Vec<String> =
        names.iter().map(|n| n.chars().take(1).collect::<String>().to_lowercase()).collect();
    assert!(firsts.windows(2).all(|w| w[0] <= w[1]), "by name: {names:?}");
    // a range in euros: both ends included, the total counts only what is in it
    let (_, all) = s.get_json("/api/products?per_page=1").await;
    let (st, mid) = s.get_json("/api/products?price_min=10&price_max=25.5&per_page=100").await;
    assert_eq!(st, 200);
    assert!(prices(&mid).iter().all(|c| (1000..=2550).contains(c)), "{:?}", prices(&mid));
    assert!(mid["total"].as_i64().unwrap() > 0 && mid["total"].as_i64() < all["total"].as_i64());
    let (_, exact) = s.get_json(&format!("/api/products?price_min={0}&price_max={0}", "25.50")).await;
    assert!(prices(&exact).iter().all(|c| *c == 2550));
    for (bad, field) in [
        ("sort=cheap", "sort"),
        ("price_min=abc", "price_min"),
        ("price_min=1.234", "price_min"),
        ("price_min=-1", "price_min"),
        ("price_max=1e3", "price_max"),
        ("price_min=30&price_max=20", "price_max"),
    ] {
        let (st, e) = error_of(s.get(&format!("/api/products?{bad}")).await).await;
        assert!(st == 422 && e["error"]["fields"][field].is_string(), "{bad}: {e}");
    }
    // the page: the form shows the choice, the pager keeps it
    let html = s.get("/?sort=price_desc&price_min=5&per_page=10").await.text().await.unwrap();
    assert!(html.contains(r#"<option value="price_desc" selected>"#), "the sort is selected");
    assert!(html.contains(r#"name="price_min" value="5.00""#), "the range is shown");
    assert!(html.contains(r#"name="per_page" value="10""#), "the form keeps the page size");
    assert!(
        html.contains("sort=price_desc&amp;price_min=5.00&amp;per_page=10&amp;page=2"),
        "the pager keeps sort, range and page size"
    );
    assert_eq!(s.get("/?price_min=x").await.status(), 422);
}
