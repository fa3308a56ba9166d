//! The session store on a real Redis Cluster (`SHOP_TEST_REDIS_URLS`, started by
//! `tests/backends/start.sh`; `tests/run.sh` runs this with it). Without the variable there is no
//! Redis to test and each test says so and returns: the embedded run has nothing to check here.
//!
//! What is tested is how writes that wait for a replica (`WAIT`) share connections. `WAIT`
//! blocks the connection it is sent on; while a master has no replica (right after a failover)
//! every `WAIT` to it takes its whole timeout. The tests make that state on purpose by asking for
//! two acknowledging replicas where each master has one, so every `WAIT` runs to its timeout.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{collections::HashMap, time::Duration};

use shop::{
    domain::ProductId,
    infra::store::{ProductNews, Store},
    settings::Settings,
};

const WAIT_MS: u64 = 700;

fn redis_urls() -> Option<String> {
    let urls = std::env::var("SHOP_TEST_REDIS_URLS").ok().filter(|s| !s.is_empty());
    if urls.is_none() {
        eprintln!("SHOP_TEST_REDIS_URLS not set: no Redis Cluster to test against (tests/run.sh sets it)");
    }
    urls
}

/// A store whose every write waits `WAIT_MS` for a replica it will never get, and never retries.
async fn store(urls: &str, write_connections: usize) -> Store {
    store_with_prefix(urls, write_connections, &format!("test:{}:", uuid::Uuid::new_v4().simple())).await
}

/// The same, with the key prefix (and so the channels) of a shop of our choice.
async fn store_with_prefix(urls: &str, write_connections: usize, prefix: &str) -> Store {
    let mut env = HashMap::new();
    let prefix = prefix.to_string();
    for (k, v) in [
        ("SHOP_DATABASE_URL", "sqlite://unused.db".to_string()),
        ("SHOP_REDIS_URLS", urls.to_string()),
        ("SHOP_SESSION_KEY", "test-session-key-that-is-long-enough-0123456789".to_string()),
        ("SHOP_REDIS_PREFIX", prefix),
        ("SHOP_REDIS_WAIT_REPLICAS", "2".to_string()),
        ("SHOP_REDIS_WAIT_TIMEOUT_MS", WAIT_MS.to_string()),
        ("SHOP_STORE_TIMEOUT_MS", "1000".to_string()),
        ("SHOP_STORE_RETRY_MS", "0".to_string()),
        ("SHOP_REDIS_WRITE_CONNECTIONS", write_connections.to_string()),
    ] {
        env.insert(k.to_string(), v);
    }
    let settings = Settings::from_map(&env).expect("settings");
    Store::from_settings(&settings).await.expect("connect to the Redis Cluster")
}

const TTL: Duration = Duration::from_secs(600);

/// A read of a key is answered while a write to the same key still waits for its replica: the
/// read does not queue behind the blocked `WAIT` on a shared connection.
#[tokio::test]
async fn a_read_does_not_wait_behind_a_write_waiting_for_its_replica() {
    let Some(urls) = redis_urls() else { return };
    let store = store(&urls, 4).await;
    let id = format!("s{}", uuid::Uuid::new_v4().simple());
    store.session_put(&id, &[("user", "1".to_string())], TTL).await.expect("first write");

    let writer = {
        let (store, id) = (store.clone(), id.clone());
        tokio::spawn(async move { store.session_put(&id, &[("user", "2".to_string())], TTL).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let read = store.session_get(&id).await.expect("read").expect("the session exists");
    assert!(
        !writer.is_finished(),
        "the write waiting {WAIT_MS} ms for a replica finished before the read was answered: \
         the read queued behind it"
    );
    // the master applied the write before WAIT: the read sees it
    assert_eq!(read.get("user").map(String::as_str), Some("2"));
    writer.await.expect("join").expect("the write is acknowledged (with a replica shortfall)");
}

/// Writes to one master that each wait for a replica run side by side, not one after another:
/// with no retries, four writes queued on one connection would overrun the store's deadline
/// (1 s + the 0.7 s wait) from the second one on.
#[tokio::test]
async fn writes_waiting_for_a_replica_do_not_queue_behind_each_other() {
    let Some(urls) = redis_urls() else { return };
    let store = store(&urls, 4).await;
    // one owner: one hash tag, so one slot and one master for all four carts lines
    let owner = format!("s:{}", uuid::Uuid::new_v4().simple());
    let mut writes = Vec::new();
    for product in 1..=4 {
        let (store, owner) = (store.clone(), owner.clone());
        writes.push(tokio::spawn(async move {
            store.cart_add(&owner, shop::domain::ProductId(product), 1, 99, false, TTL, None).await
        }));
    }
    for (i, w) in writes.into_iter().enumerate() {
        let r = w.await.expect("join");
        assert!(r.is_ok(), "write {} of 4 failed: {:?}", i + 1, r.err());
    }
    let lines = store.cart_get(&owner).await.expect("read the cart");
    assert_eq!(lines, vec![(1, 1), (2, 1), (3, 1), (4, 1)]);
}

/// What the subscription hears next, within `within`.
async fn next_news(
    news: &mut tokio::sync::mpsc::UnboundedReceiver<ProductNews>,
    within: Duration,
) -> Option<ProductNews> {
    tokio::time::timeout(within, news.recv()).await.ok().flatten()
}

/// Product changes one replica publishes reach another's subscription; when the subscription's
/// connection is cut (its node went away), it comes back by itself, and says `Unknown` on the way
/// so that nothing cached across the gap is trusted.
#[tokio::test]
async fn product_changes_reach_every_replica_and_the_subscription_comes_back() {
    let Some(urls) = redis_urls() else { return };
    let prefix = format!("test:{}:", uuid::Uuid::new_v4().simple());
    let one = store_with_prefix(&urls, 1, &prefix).await;
    let other = store_with_prefix(&urls, 1, &prefix).await;
    let mut news = other.watch_product_changes().expect("a Redis store has the channel");
    assert_eq!(next_news(&mut news, Duration::from_secs(5)).await, Some(ProductNews::Unknown), "subscribed");

    one.publish_product_changes(&[ProductId(3), ProductId(41)]).await.expect("publish");
    assert_eq!(
        next_news(&mut news, Duration::from_secs(2)).await,
        Some(ProductNews::Changed(vec![ProductId(3), ProductId(41)]))
    );

    // cut every subscription on every node, as a node's death would
    for url in urls.split(',') {
        let mut c = redis::Client::open(url)
            .expect("url")
            .get_multiplexed_async_connection()
            .await
            .expect("connect to a node");
        let _: i64 = redis::cmd("CLIENT")
            .arg("KILL")
            .arg("TYPE")
            .arg("pubsub")
            .query_async(&mut c)
            .await
            .expect("kill");
    }
    // it notices, says so, subscribes again and hears the next change
    let mut unknown = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        one.publish_product_changes(&[ProductId(7)]).await.expect("publish");
        match next_news(&mut news, Duration::from_millis(200)).await {
            Some(ProductNews::Unknown) => unknown += 1,
            Some(ProductNews::Changed(ids)) if unknown > 0 => {
                assert_eq!(ids, vec![ProductId(7)]);
                break;
            }
            Some(ProductNews::Changed(ids)) => panic!("{ids:?} heard before the cut was noticed"),
            None => {}
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no change heard 10 s after the cut ({unknown} × Unknown)"
        );
    }
    assert!(unknown >= 2, "Unknown when the subscription was lost and again when it was back: {unknown}");
}
