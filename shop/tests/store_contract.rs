//! One set of cases for both session stores: every case runs on the in-process store, and on a
//! real Redis Cluster when `SHOP_TEST_REDIS_URLS` is set (`tests/run.sh` runs it so, after
//! `tests/backends/start.sh`). The two must answer alike: the shop's behaviour may not depend on
//! which one it runs on. Each store gets a fresh key prefix, so runs do not see each other.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{collections::HashMap, time::Duration};

use shop::{
    domain::{CartLine, OrderId, ProductId},
    infra::store::{CartAdd, Store},
    settings::Settings,
};

const TTL: Duration = Duration::from_secs(600);

/// The stores to run a case on: the in-process one, and Redis when there is one.
async fn stores() -> Vec<(&'static str, Store)> {
    let prefix = format!("contract:{}:", uuid::Uuid::new_v4().simple());
    let mut v = vec![("memory", Store::memory(&prefix))];
    if let Some(urls) = std::env::var("SHOP_TEST_REDIS_URLS").ok().filter(|s| !s.is_empty()) {
        let env: HashMap<String, String> = [
            ("SHOP_DATABASE_URL", "sqlite://unused.db".to_string()),
            ("SHOP_REDIS_URLS", urls),
            ("SHOP_SESSION_KEY", "test-session-key-that-is-long-enough-0123456789".to_string()),
            ("SHOP_REDIS_PREFIX", prefix),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let settings = Settings::from_map(&env).expect("settings");
        v.push(("redis", Store::from_settings(&settings).await.expect("connect to Redis")));
    } else {
        eprintln!("SHOP_TEST_REDIS_URLS not set: these cases ran on the in-process store only");
    }
    v
}

fn owner() -> String {
    format!("s:{}", uuid::Uuid::new_v4().simple())
}

fn lines(l: &[(i64, i64)]) -> Vec<CartLine> {
    l.iter().map(|&(p, q)| CartLine { product_id: ProductId(p), quantity: q }).collect()
}

/// `contract!(name, |store, kind| async { ... })`: a test running the body on every store.
macro_rules! contract {
    ($name:ident, |$store:ident, $kind:ident| $body:block) => {
        #[tokio::test]
        async fn $name() {
            for ($kind, $store) in stores().await {
                let $store = &$store;
                let _ = $kind;
                $body
            }
        }
    };
}

contract!(a_session_is_kept_replaced_and_deleted, |store, kind| {
    let id = uuid::Uuid::new_v4().simple().to_string();
    assert_eq!(store.session_get(&id).await.unwrap(), None, "{kind}: unknown session");
    store.session_put(&id, &[("uid", "7".into()), ("name", "Ann".into())], TTL).await.unwrap();
    let s = store.session_get(&id).await.unwrap().expect("the session");
    assert_eq!((s["uid"].as_str(), s["name"].as_str(), s.len()), ("7", "Ann", 2), "{kind}");
    store.session_set_field(&id, "listed", "1").await.unwrap();
    let s = store.session_get(&id).await.unwrap().expect("the session");
    assert_eq!((s["listed"].as_str(), s.len()), ("1", 3), "{kind}: one field set");
    store.session_put(&id, &[("uid", "8".into())], TTL).await.unwrap();
    let s = store.session_get(&id).await.unwrap().expect("the session");
    assert_eq!(s.len(), 1, "{kind}: a put replaces every field");
    store.session_delete(&id).await.unwrap();
    assert_eq!(store.session_get(&id).await.unwrap(), None, "{kind}: deleted");
    store.session_delete(&id).await.unwrap();
});

contract!(setting_a_field_does_not_bring_back_a_session_that_is_gone, |store, kind| {
    let id = uuid::Uuid::new_v4().simple().to_string();
    store.session_set_field(&id, "listed", "1").await.unwrap();
    assert_eq!(store.session_get(&id).await.unwrap(), None, "{kind}: never made");
    store.session_put(&id, &[("uid", "7".into())], TTL).await.unwrap();
    store.session_delete(&id).await.unwrap();
    store.session_set_field(&id, "listed", "1").await.unwrap();
    assert_eq!(store.session_get(&id).await.unwrap(), None, "{kind}: deleted");
});

contract!(a_session_ends_with_its_lifetime, |store, kind| {
    let id = uuid::Uuid::new_v4().simple().to_string();
    store.session_put(&id, &[("uid", "7".into())], Duration::from_millis(300)).await.unwrap();
    assert!(store.session_get(&id).await.unwrap().is_some(), "{kind}");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(store.session_get(&id).await.unwrap(), None, "{kind}: expired");
    store.session_set_field(&id, "listed", "1").await.unwrap();
    assert_eq!(store.session_get(&id).await.unwrap(), None, "{kind}: stays expired");
});

contract!(an_accounts_sessions_and_its_password_change, |store, kind| {
    let user = rand_user();
    assert!(store.account_sessions(&user).await.unwrap().is_empty(), "{kind}");
    store.account_session_add(&user, "a", TTL).await.unwrap();
    store.account_session_add(&user, "b", Duration::from_millis(1)).await.unwrap();
    store.account_session_add(&user, "a", TTL).await.unwrap();
    let mut ids = store.account_sessions(&user).await.unwrap();
    ids.sort();
    assert_eq!(ids, ["a", "b"], "{kind}: a set, kept as long as the longest lifetime asked");
    store.account_session_remove(&user, "a").await.unwrap();
    store.account_session_remove(&user, "never").await.unwrap();
    assert_eq!(store.account_sessions(&user).await.unwrap(), ["b"], "{kind}");

    assert!(!store.account_password_was_changed(&user).await.unwrap(), "{kind}");
    store.account_password_changed(&user, TTL).await.unwrap();
    assert!(store.account_password_was_changed(&user).await.unwrap(), "{kind}");
});

fn rand_user() -> i64 {
    i64::from(rand_u32())
}

fn rand_u32() -> u32 {
    (uuid::Uuid::new_v4().as_u128() & 0x7fff_ffff) as u32
}

contract!(adding_to_a_cart_within_its_limit, |store, kind| {
    let o = owner();
    let (p1, p2) = (ProductId(11), ProductId(5));
    let (r, cart) = store.cart_add(&o, p1, 2, 5, false, TTL, None).await.unwrap();
    assert_eq!((r, cart), (CartAdd::Added(2), lines(&[(11, 2)])), "{kind}");
    let (r, cart) = store.cart_add(&o, p2, 1, 5, false, TTL, None).await.unwrap();
    assert_eq!((r, cart), (CartAdd::Added(1), lines(&[(5, 1), (11, 2)])), "{kind}: sorted by product");
    let (r, cart) = store.cart_add(&o, p1, 4, 5, false, TTL, None).await.unwrap();
    assert_eq!((r, cart), (CartAdd::OverLimit(2), lines(&[(5, 1), (11, 2)])), "{kind}: refused, unchanged");
    let (r, _) = store.cart_add(&o, p1, 4, 5, true, TTL, None).await.unwrap();
    assert_eq!(r, CartAdd::Added(5), "{kind}: clamped to the limit");
    let (r, cart) = store.cart_add(&o, p2, -3, 5, false, TTL, None).await.unwrap();
    assert_eq!((r, cart), (CartAdd::Added(0), lines(&[(11, 5)])), "{kind}: down to nothing removes the line");
    assert_eq!(store.cart_get(&o).await.unwrap(), lines(&[(11, 5)]), "{kind}");
});

contract!(an_add_with_an_operation_key_happens_once, |store, kind| {
    let o = owner();
    let p = ProductId(3);
    let (r, _) = store.cart_add(&o, p, 2, 99, false, TTL, Some("op-1")).await.unwrap();
    assert_eq!(r, CartAdd::Added(2), "{kind}");
    store.cart_set(&o, ProductId(4), 1, TTL).await.unwrap();
    let (r, cart) = store.cart_add(&o, p, 2, 99, false, TTL, Some("op-1")).await.unwrap();
    assert_eq!(
        (r, cart),
        (CartAdd::Added(2), lines(&[(3, 2), (4, 1)])),
        "{kind}: the first outcome, the cart now"
    );
    let (r, _) = store.cart_add(&o, p, 2, 99, false, TTL, Some("op-2")).await.unwrap();
    assert_eq!(r, CartAdd::Added(4), "{kind}: another key adds");
    let (r, _) = store.cart_add(&o, p, 99, 99, false, TTL, Some("op-3")).await.unwrap();
    assert_eq!(r, CartAdd::OverLimit(4), "{kind}");
    let (r, _) = store.cart_add(&o, p, 1, 99, false, TTL, Some("op-3")).await.unwrap();
    assert_eq!(r, CartAdd::OverLimit(4), "{kind}: a refusal is remembered too");
    // the same key on another owner's cart is another operation
    let (r, _) = store.cart_add(&owner(), p, 1, 99, false, TTL, Some("op-1")).await.unwrap();
    assert_eq!(r, CartAdd::Added(1), "{kind}");
});

contract!(concurrent_adds_of_one_shopper_all_land, |store, kind| {
    let o = owner();
    let adds = (1..=10).map(|i| {
        let o = o.clone();
        async move { store.cart_add(&o, ProductId(1 + i % 2), 1, 99, false, TTL, None).await }
    });
    for r in futures_util::future::join_all(adds).await {
        r.unwrap();
    }
    assert_eq!(store.cart_get(&o).await.unwrap(), lines(&[(1, 5), (2, 5)]), "{kind}");
});

contract!(setting_and_removing_lines_are_idempotent, |store, kind| {
    let o = owner();
    assert_eq!(store.cart_set(&o, ProductId(8), 3, TTL).await.unwrap(), lines(&[(8, 3)]), "{kind}");
    assert_eq!(store.cart_set(&o, ProductId(8), 3, TTL).await.unwrap(), lines(&[(8, 3)]), "{kind}");
    assert_eq!(store.cart_set(&o, ProductId(2), 1, TTL).await.unwrap(), lines(&[(2, 1), (8, 3)]), "{kind}");
    store.cart_remove(&o, ProductId(8)).await.unwrap();
    store.cart_remove(&o, ProductId(8)).await.unwrap();
    assert_eq!(store.cart_get(&o).await.unwrap(), lines(&[(2, 1)]), "{kind}");
    store.cart_clear(&o).await.unwrap();
    assert!(store.cart_get(&o).await.unwrap().is_empty(), "{kind}");
    store.cart_remove(&o, ProductId(2)).await.unwrap();
    assert!(store.cart_get(&o).await.unwrap().is_empty(), "{kind}");
});

contract!(an_order_is_taken_out_of_its_cart_once, |store, kind| {
    let o = owner();
    store.cart_set(&o, ProductId(1), 3, TTL).await.unwrap();
    store.cart_set(&o, ProductId(2), 1, TTL).await.unwrap();
    let ordered = lines(&[(1, 2), (2, 1)]);
    store.cart_take(&o, OrderId(70), &ordered).await.unwrap();
    assert_eq!(store.cart_get(&o).await.unwrap(), lines(&[(1, 1)]), "{kind}: what was ordered is gone");
    store.cart_add(&o, ProductId(2), 2, 99, false, TTL, None).await.unwrap();
    store.cart_take(&o, OrderId(70), &ordered).await.unwrap();
    assert_eq!(store.cart_get(&o).await.unwrap(), lines(&[(1, 1), (2, 2)]), "{kind}: a repeat takes nothing");
    store.cart_take(&o, OrderId(71), &lines(&[(1, 5)])).await.unwrap();
    assert_eq!(store.cart_get(&o).await.unwrap(), lines(&[(2, 2)]), "{kind}: never below zero");
    store.cart_take(&owner(), OrderId(72), &ordered).await.unwrap();
    store.cart_take(&o, OrderId(73), &[]).await.unwrap();
});

contract!(counting_events_in_a_window_up_to_a_limit, |store, kind| {
    let name = format!("login:{}", uuid::Uuid::new_v4().simple());
    let window = Duration::from_secs(60);
    assert_eq!(store.count_get(&name).await.unwrap(), 0, "{kind}");
    for want in 1..=3 {
        let (n, left) = store.count_event(&name, window, 3).await.unwrap();
        assert_eq!(n, want, "{kind}");
        assert!(left <= window && left > Duration::from_secs(50), "{kind}: {left:?} left");
    }
    let (n, _) = store.count_event(&name, window, 3).await.unwrap();
    assert_eq!(n, 4, "{kind}: over the limit: limit + 1");
    assert_eq!(store.count_get(&name).await.unwrap(), 3, "{kind}: a refused event is not counted");
    store.count_undo(&name).await.unwrap();
    assert_eq!(store.count_get(&name).await.unwrap(), 2, "{kind}");
    for _ in 0..4 {
        store.count_undo(&name).await.unwrap();
    }
    assert_eq!(store.count_get(&name).await.unwrap(), 0, "{kind}: never below zero");
    store.count_reset(&name).await.unwrap();
    store.count_undo(&name).await.unwrap();
    let (n, left) = store.count_event(&name, window, 3).await.unwrap();
    assert_eq!(n, 1, "{kind}: an undo does not make the key again");
    assert!(left > Duration::from_secs(50), "{kind}: a new window");
});

contract!(a_counters_window_ends, |store, kind| {
    let name = format!("register:{}", uuid::Uuid::new_v4().simple());
    store.count_event(&name, Duration::from_millis(300), 1).await.unwrap();
    assert_eq!(store.count_event(&name, Duration::from_millis(300), 1).await.unwrap().0, 2, "{kind}");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(store.count_event(&name, Duration::from_millis(300), 1).await.unwrap().0, 1, "{kind}");
});

contract!(an_event_after_the_count_went_back_to_zero_starts_a_new_window, |store, kind| {
    let name = format!("login:{}", uuid::Uuid::new_v4().simple());
    store.count_event(&name, Duration::from_millis(400), 3).await.unwrap();
    store.count_undo(&name).await.unwrap();
    tokio::time::sleep(Duration::from_millis(250)).await;
    // the first event again (count 0 -> 1): its window is a new 60 s, not the old one's rest
    let (n, left) = store.count_event(&name, Duration::from_secs(60), 3).await.unwrap();
    assert_eq!(n, 1, "{kind}");
    assert!(left > Duration::from_secs(50), "{kind}: {left:?} left, not a new window");
});

contract!(the_store_answers_its_kind_and_a_ping, |store, kind| {
    assert!(store.ping().await.is_ok(), "{kind}");
    let k = store.kind();
    assert!(if kind == "memory" { k == "memory" } else { k.starts_with("redis") }, "{kind}: {k}");
});
