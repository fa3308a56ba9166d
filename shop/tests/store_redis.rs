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

use shop::{infra::store::Store, settings::Settings};

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
    let mut env = HashMap::new();
    let prefix = format!("test:{}:", uuid::Uuid::new_v4().simple());
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
