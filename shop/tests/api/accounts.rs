use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn register_login_me_logout() {
    let app = spawn_app().await;
    let s = app.shopper();
    let r = s.register("Grace@Example.org", PASSWORD, "Grace Hopper").await;
    assert_eq!(r.status(), 201);
    let acc: serde_json::Value = r.json().await.unwrap();
    assert_eq!(acc["email"], "grace@example.org");
    assert_eq!(acc["role"], "customer");
    assert!(acc.get("password_hash").is_none());
    let (st, e) = error_of(s.register("grace@example.org", PASSWORD, "Again").await).await;
    assert_eq!(st, 409, "{e}");
    let (st, _) = s.get_json("/api/me").await;
    assert_eq!(st, 401, "registering does not log in through the API");
    let r = s.login("grace@example.org", PASSWORD).await;
    assert_eq!(r.status(), 200);
    assert!(session_cookie(&r).is_some());
    let (st, me) = s.get_json("/api/me").await;
    assert_eq!((st.as_u16(), me["name"].as_str()), (200, Some("Grace Hopper")));
    let r = s.post_json("/api/logout", &json!({})).await;
    assert_eq!(r.status(), 200);
    let (st, _) = s.get_json("/api/me").await;
    assert_eq!(st, 401);
    // Passwords are stored as argon2id hashes.
    let rows = app.sql("SELECT password_hash FROM users WHERE email = 'grace@example.org'", vec![]).await;
    let hash: String = rows[0].try_get("", "password_hash").unwrap();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
}

#[tokio::test]
async fn wrong_credentials_are_401() {
    let app = spawn_app().await;
    let s = app.shopper();
    s.register("lin@example.org", PASSWORD, "Lin").await;
    for (email, pw) in [("lin@example.org", "wrong password!"), ("nobody@example.org", PASSWORD)] {
        let (st, e) = error_of(s.login(email, pw).await).await;
        assert_eq!(st, 401, "{e}");
    }
}

#[tokio::test]
async fn registration_validates_every_field() {
    let app = spawn_app().await;
    let s = app.shopper();
    let long = "n".repeat(101);
    let cases = [
        (json!({"email": "not-an-email", "password": PASSWORD, "name": "X"}), "email"),
        (json!({"email": "a@b.org", "password": "short", "name": "X"}), "password"),
        (json!({"email": "a@b.org", "password": PASSWORD}), "name"),
        (json!({"email": "a@b.org", "password": PASSWORD, "name": long}), "name"),
        (json!({"email": 42, "password": PASSWORD, "name": "X"}), "email"),
        (json!({"email": "a@b.org", "password": ["x"], "name": "X"}), "password"),
        (json!({"email": format!("{}@x.org", "e".repeat(260)), "password": PASSWORD, "name": "X"}), "email"),
    ];
    for (body, field) in cases {
        let (st, e) = error_of(s.post_json("/api/register", &body).await).await;
        assert_eq!(st, 422, "{body}: {e}");
        assert!(e["error"]["fields"][field].is_string(), "{body}: {e}");
    }
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM users WHERE role = 'customer'", vec![]).await,
        0,
        "nothing half-written"
    );
}

#[tokio::test]
async fn session_id_rotates_at_login_and_logout() {
    let app = spawn_app().await;
    let s = app.shopper();
    s.register("rot@example.org", PASSWORD, "Rot").await;
    let anon = session_cookie(&s.get("/login").await).expect("an anonymous id for the form");
    let r = s.login("rot@example.org", PASSWORD).await;
    let logged_in = session_cookie(&r).expect("new id at login");
    assert_ne!(anon, logged_in);
    let r = s.post_json("/api/logout", &json!({})).await;
    let after = session_cookie(&r).expect("new id at logout");
    assert_ne!(after, logged_in);
    // The old session is gone for good: replaying its cookie is anonymous.
    let replay = reqwest::Client::new()
        .get(s.url("/api/me"))
        .header("Cookie", format!("{}={logged_in}", shop::edge::session::COOKIE_NAME))
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 401);
}

#[tokio::test]
async fn a_session_is_valid_on_every_instance() {
    let app = spawn_app().await;
    let second = app.start_instance().await;
    let third = app.start_instance().await;
    let s = app.customer().await;
    s.add(app.product(10).await, 2).await;
    for base in [&second, &third] {
        let other = s.at(base);
        let (st, me) = other.get_json("/api/me").await;
        assert_eq!(st, 200, "{base}: {me}");
        assert_eq!(other.cart().await["items"][0]["quantity"], 2);
    }
}

#[tokio::test]
async fn repeated_failures_are_throttled_across_instances() {
    let app = spawn_app().await;
    let second = app.start_instance().await;
    let s = app.shopper();
    s.register("slow@example.org", PASSWORD, "Slow").await;
    for i in 0..5 {
        // Alternate instances: the count lives in the shared store.
        let who = if i % 2 == 0 { s.at(&app.base) } else { s.at(&second) };
        assert_eq!(who.login("slow@example.org", "wrong password!").await.status(), 401);
    }
    let (st, e) = error_of(s.login("slow@example.org", PASSWORD).await).await;
    assert_eq!(st, 429, "even the right password waits: {e}");
    let (st, _) = error_of(s.at(&second).login("slow@example.org", PASSWORD).await).await;
    assert_eq!(st, 429);
    // Another account is not affected.
    s.register("fast@example.org", PASSWORD, "Fast").await;
    assert_eq!(s.login("fast@example.org", PASSWORD).await.status(), 200);
}

#[tokio::test]
async fn changing_the_password_signs_out_every_other_session() {
    let app = spawn_app().await;
    let (laptop, phone, stranger) = (app.shopper(), app.shopper(), app.shopper());
    let email = "ken@example.org";
    assert_eq!(laptop.register(email, PASSWORD, "Ken").await.status(), 201);
    for s in [&laptop, &phone] {
        assert_eq!(s.login(email, PASSWORD).await.status(), 200);
    }
    let before = session_cookie(&laptop.login(email, PASSWORD).await).unwrap();
    // bad input first: each field named, nothing changed
    let (st, e) =
        error_of(laptop.post_json("/api/me/password", &json!({"new_password": "short"})).await).await;
    assert_eq!(st, 422, "{e}");
    assert!(
        e["error"]["fields"]["current_password"].is_string()
            && e["error"]["fields"]["new_password"].is_string()
    );
    let wrong = json!({"current_password": "not my password", "new_password": "a brand new secret"});
    let (st, e) = error_of(laptop.post_json("/api/me/password", &wrong).await).await;
    assert_eq!(
        (st.as_u16(), e["error"]["fields"]["current_password"].as_str()),
        (422, Some("is not your current password"))
    );
    let (st, _) = error_of(stranger.post_json("/api/me/password", &wrong).await).await;
    assert_eq!(st, 401);
    assert_eq!(phone.get_json("/api/me").await.0, 200, "a failed change ends nothing");

    let change = json!({"current_password": PASSWORD, "new_password": "a brand new secret"});
    let r = laptop.post_json("/api/me/password", &change).await;
    assert_eq!(r.status(), 200);
    let after = session_cookie(&r).expect("a new session id");
    assert_ne!(after, before, "the session is rotated");
    assert_eq!(laptop.get_json("/api/me").await.0, 200, "this browser stays logged in");
    assert_eq!(phone.get_json("/api/me").await.0, 401, "the other session is signed out");
    assert_eq!(stranger.login(email, PASSWORD).await.status(), 401, "the old password is gone");
    assert_eq!(stranger.login(email, "a brand new secret").await.status(), 200);
    // logging out takes the session off the account's list: the next change ends only the others
    assert_eq!(stranger.post_json("/api/logout", &json!({})).await.status(), 200);
    let back = json!({"current_password": "a brand new secret", "new_password": PASSWORD});
    assert_eq!(laptop.post_json("/api/me/password", &back).await.status(), 200);
    assert_eq!(laptop.get_json("/api/me").await.0, 200);
}

#[tokio::test]
async fn the_account_page_shows_the_profile_orders_and_changes_the_password() {
    let app = spawn_app().await;
    let s = app.customer().await;
    let other = app.shopper();
    assert_eq!(app.shopper().get("/account").await.headers()["location"], "/login?next=%2Faccount");
    let p = app.product(5).await;
    s.add(p, 1).await;
    assert_eq!(s.checkout(&key()).await.status(), 201);
    let (_, me) = s.get_json("/api/me").await;
    let email = me["email"].as_str().unwrap().to_string();
    assert_eq!(other.login(&email, PASSWORD).await.status(), 200);
    let page = s.get("/account").await.text().await.unwrap();
    assert!(page.contains("Ada Lovelace") && page.contains(&email), "{page}");
    assert!(page.contains(r#"<p id="order-count">1 order</p>"#), "{page}");
    let token = csrf_in(&page);
    // the wrong current password: the page again, with the error, and no change
    let r = s
        .post_form(
            "/account/password",
            &[
                ("csrf_token", &token),
                ("current_password", "nope nope nope"),
                ("new_password", "another secret 1"),
            ],
        )
        .await;
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("Current password is not your current password"));
    let r = s
        .post_form(
            "/account/password",
            &[("csrf_token", &token), ("current_password", PASSWORD), ("new_password", "another secret 1")],
        )
        .await;
    assert_eq!(
        (r.status().as_u16(), r.headers()["location"].to_str().unwrap()),
        (303, "/account?notice=password_changed")
    );
    let page = s.get("/account?notice=password_changed").await.text().await.unwrap();
    assert!(page.contains("Your password has been changed"));
    assert_eq!(other.get_json("/api/me").await.0, 401);
    // without the form's token, nothing happens
    let r = s
        .post_form("/account/password", &[("current_password", "another secret 1"), ("new_password", "x")])
        .await;
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn a_session_from_before_the_lists_is_ended_by_a_password_change_too() {
    let app = spawn_app().await;
    let (owner, old_device, idle_device) = (app.shopper(), app.shopper(), app.shopper());
    let email = "lin@example.org";
    assert_eq!(owner.register(email, PASSWORD, "Lin").await.status(), 201);
    assert_eq!(owner.login(email, PASSWORD).await.status(), 200);
    // two sessions as a build before the lists made them: no `listed` mark, on no list
    let (_, me) = owner.get_json("/api/me").await;
    let uid = me["id"].as_i64().unwrap();
    let mut ids = Vec::new();
    for s in [&old_device, &idle_device] {
        let r = s.login(email, PASSWORD).await;
        let id = session_cookie(&r).unwrap().split('.').next().unwrap().to_string();
        app.store
            .session_put(
                &id,
                &[("uid", uid.to_string()), ("name", "Lin".into()), ("role", "customer".into())],
                std::time::Duration::from_secs(600),
            )
            .await
            .unwrap();
        app.store.account_session_remove(&uid, &id).await.unwrap();
        ids.push(id);
    }
    // one is used before the change (and so put on the list), the other only after it
    assert_eq!(old_device.get_json("/api/me").await.0, 200);
    let change = json!({"current_password": PASSWORD, "new_password": "a brand new secret"});
    assert_eq!(owner.post_json("/api/me/password", &change).await.status(), 200);
    assert_eq!(old_device.get_json("/api/me").await.0, 401, "listed on first use, ended by the change");
    assert_eq!(idle_device.get_json("/api/me").await.0, 401, "unlisted and older than the change: ended");
    assert_eq!(owner.get_json("/api/me").await.0, 200);
}

/// nginx sends a registration whose replica died to the next replica with the same request id.
/// When the first had committed, the second finds the account its own request made: the client
/// sent one request and gets the answer of one (201, the same account), not "email taken". The
/// same body under another request id, or the same id with another password, is a taken email.
#[tokio::test]
async fn a_registration_sent_again_by_the_proxy_is_answered_as_made() {
    let app = spawn_app().await;
    let s = app.shopper();
    let send = |rid: &'static str, password: &'static str| {
        s.client
            .post(s.url("/api/register"))
            .header("X-Request-Id", rid)
            .json(&json!({"email": "ida@example.org", "password": password, "name": "Ida"}))
            .send()
    };
    let first = send("rid-register-1", PASSWORD).await.unwrap();
    assert_eq!(first.status(), 201);
    let made: serde_json::Value = first.json().await.unwrap();
    let again = send("rid-register-1", PASSWORD).await.unwrap();
    assert_eq!(again.status(), 201, "the same request, sent again by the proxy");
    assert_eq!(again.json::<serde_json::Value>().await.unwrap(), made);
    let (st, e) = error_of(send("rid-register-2", PASSWORD).await.unwrap()).await;
    assert_eq!((st.as_u16(), e["error"]["code"].as_str()), (409, Some("email_taken")), "{e}");
    let (st, e) = error_of(send("rid-register-1", "another password!").await.unwrap()).await;
    assert_eq!(st, 409, "a request id alone is no credential: {e}");
    let (st, _) = error_of(s.register("ida@example.org", PASSWORD, "Ida").await).await;
    assert_eq!(st, 409, "without a request id");
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM users WHERE email = 'ida@example.org'", vec![]).await, 1);
    assert_eq!(s.login("ida@example.org", PASSWORD).await.status(), 200);
}
