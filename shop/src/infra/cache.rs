//! A short-lived, per-replica cache of catalog responses (`SHOP_CATALOG_CACHE_MS`, default 1 s).
//!
//! The catalog is read-mostly and the same for every visitor without a session, so its rendered
//! bytes are kept for a moment instead of asking the database three times per page. Concurrent
//! misses for one key are coalesced (one database round trip, the others wait for it), errors
//! are never cached, and a stock change made through this replica (checkout, cancel) empties the
//! cache at once. Other replicas may show a stock figure up to one lifetime old; checkout never
//! relies on it (the conditional `UPDATE … WHERE stock >= ?` stays the authority).
//!
//! The same cache keeps single products longer (`SHOP_PRODUCT_CACHE_MS`), because every replica
//! hears of each change ([`crate::state::AppState::hear`]). For that an invalidation must also
//! win over a miss already on its way: a value read from the database before the change would
//! otherwise be stored after it and live a whole lifetime. Each invalidation moves a stamp on
//! (one for everything, one per stripe of keys), and a value made while its key's stamp moved is
//! handed to its callers but not kept.

use std::{
    future::Future,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use actix_web::web::Bytes;

use crate::error::AppError;

/// At most this many bytes of cached bodies per replica (keeps RSS bounded whatever the keys).
const MAX_BYTES: u64 = 16 * 1024 * 1024;

/// What an entry costs, for the byte bound.
pub trait Weight {
    fn weight(&self) -> usize;
}

impl Weight for Bytes {
    fn weight(&self) -> usize {
        self.len()
    }
}

impl<T: Weight> Weight for Arc<T> {
    fn weight(&self) -> usize {
        (**self).weight()
    }
}

/// Rendered responses (the common case).
pub type ResponseCache = TtlCache<Bytes>;

#[derive(Clone)]
pub struct TtlCache<V> {
    inner: Option<moka::future::Cache<String, V>>,
    /// Move on with every invalidation (see the module's comment).
    stamps: Arc<Stamps>,
}

/// Invalidation counters: one for "everything", and 64 stripes for single keys (a key's stripe
/// by its hash), so a change to one product rarely throws away a read of another.
struct Stamps {
    all: AtomicU64,
    keyed: [AtomicU64; STRIPES],
    hasher: std::collections::hash_map::RandomState,
}

const STRIPES: usize = 64;

impl Stamps {
    fn stripe(&self, key: &str) -> &AtomicU64 {
        use std::hash::BuildHasher;
        &self.keyed[(self.hasher.hash_one(key) % STRIPES as u64) as usize]
    }

    /// Changes whenever `key` or everything is invalidated (both counters only grow).
    fn of(&self, key: &str) -> u64 {
        self.all.load(Ordering::Acquire).wrapping_add(self.stripe(key).load(Ordering::Acquire))
    }
}

impl<V: Weight + Clone + Send + Sync + 'static> TtlCache<V> {
    /// A cache whose entries live `ttl`; a zero `ttl` turns caching off.
    pub fn new(ttl: Duration) -> Self {
        let inner = (!ttl.is_zero()).then(|| {
            moka::future::Cache::builder()
                .time_to_live(ttl)
                .weigher(|k: &String, v: &V| (k.len() + v.weight()).try_into().unwrap_or(u32::MAX))
                .max_capacity(MAX_BYTES)
                .build()
        });
        let stamps = Stamps {
            all: AtomicU64::new(0),
            keyed: std::array::from_fn(|_| AtomicU64::new(0)),
            hasher: Default::default(),
        };
        TtlCache { inner, stamps: Arc::new(stamps) }
    }

    /// `key`'s invalidation stamp now: read before a database read whose result goes to
    /// [`insert`](TtlCache::insert).
    pub fn stamp(&self, key: &str) -> u64 {
        self.stamps.of(key)
    }

    pub fn enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// Drop `key` when its stamp moved from `before`: what was stored may predate the change.
    /// In a task of its own, so that a request dropped right here (its client gone) cannot leave
    /// that value behind.
    fn drop_if_moved(&self, c: &moka::future::Cache<String, V>, key: String, before: u64) {
        if self.stamps.of(&key) != before {
            let c = c.clone();
            tokio::spawn(async move { c.invalidate(&key).await });
        }
    }

    /// The cached body for `key`, or the one `make` produces (then cached). With several callers
    /// missing the same key at once, `make` runs once.
    pub async fn get_or_make<F>(&self, key: String, make: F) -> Result<V, AppError>
    where
        F: Future<Output = Result<V, AppError>>,
    {
        match &self.inner {
            None => make.await,
            Some(c) => {
                let before = self.stamps.of(&key);
                let v = c.try_get_with_by_ref(&key, make).await.map_err(unshare)?;
                self.drop_if_moved(c, key, before);
                Ok(v)
            }
        }
    }

    /// The entry for `key`, if cached and fresh.
    pub async fn get(&self, key: &str) -> Option<V> {
        match &self.inner {
            None => None,
            Some(c) => c.get(key).await,
        }
    }

    /// Keep `value`, read from the database when `key`'s [`stamp`](TtlCache::stamp) was
    /// `read_at`; not kept when an invalidation came since.
    pub async fn insert(&self, key: String, value: V, read_at: u64) {
        if let Some(c) = &self.inner {
            if self.stamps.of(&key) == read_at {
                c.insert(key.clone(), value).await;
                self.drop_if_moved(c, key, read_at);
            }
        }
    }

    /// Forget everything (after this replica changed stock).
    pub fn invalidate_all(&self) {
        self.stamps.all.fetch_add(1, Ordering::AcqRel);
        if let Some(c) = &self.inner {
            c.invalidate_all();
        }
    }

    /// Forget these keys.
    pub async fn invalidate(&self, keys: impl IntoIterator<Item = String>) {
        for k in keys {
            // the stamp first: a read under way sees it move once it is done
            self.stamps.stripe(&k).fetch_add(1, Ordering::AcqRel);
            if let Some(c) = &self.inner {
                c.invalidate(&k).await;
            }
        }
    }
}

/// The error of a coalesced miss is shared by every waiter; each gets an equivalent one.
fn unshare(e: Arc<AppError>) -> AppError {
    Arc::try_unwrap(e).unwrap_or_else(|e| match &*e {
        AppError::NotFound(m) => AppError::NotFound(m.clone()),
        AppError::BadRequest(m) => AppError::BadRequest(m.clone()),
        AppError::Unavailable(m) => AppError::Unavailable(m.clone()),
        other => AppError::Unavailable(format!("catalog lookup failed: {}", other.public_message())),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test]
    async fn caches_coalesces_and_invalidates() {
        let cache = ResponseCache::new(Duration::from_secs(60));
        let calls = Arc::new(AtomicUsize::new(0));
        let make = |calls: Arc<AtomicUsize>| async move {
            calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(20)).await;
            Ok::<_, AppError>(Bytes::from_static(b"page"))
        };
        let (a, b) = tokio::join!(
            cache.get_or_make("k".into(), make(calls.clone())),
            cache.get_or_make("k".into(), make(calls.clone()))
        );
        assert_eq!((a.ok(), b.ok()), (Some(Bytes::from_static(b"page")), Some(Bytes::from_static(b"page"))));
        assert_eq!(calls.load(Ordering::SeqCst), 1, "two concurrent misses ran the query once");
        let _ = cache.get_or_make("k".into(), make(calls.clone())).await;
        assert_eq!(calls.load(Ordering::SeqCst), 1, "a hit runs nothing");
        cache.invalidate_all();
        let _ = cache.get_or_make("k".into(), make(calls.clone())).await;
        assert_eq!(calls.load(Ordering::SeqCst), 2, "invalidated: made again");
    }

    #[tokio::test]
    async fn errors_are_not_cached_and_zero_ttl_disables() {
        let cache = ResponseCache::new(Duration::from_secs(60));
        let r = cache.get_or_make("k".into(), async { Err(AppError::NotFound("gone".into())) }).await;
        assert!(matches!(r, Err(AppError::NotFound(m)) if m == "gone"));
        let r = cache.get_or_make("k".into(), async { Ok(Bytes::from_static(b"back")) }).await;
        assert_eq!(r.ok(), Some(Bytes::from_static(b"back")));

        let off = ResponseCache::new(Duration::ZERO);
        assert!(!off.enabled());
        let _ = off.get_or_make("k".into(), async { Ok(Bytes::from_static(b"1")) }).await;
        let r = off.get_or_make("k".into(), async { Ok(Bytes::from_static(b"2")) }).await;
        assert_eq!(r.ok(), Some(Bytes::from_static(b"2")));
    }

    #[tokio::test]
    async fn an_invalidation_during_a_miss_is_not_undone_by_the_miss() {
        let cache = ResponseCache::new(Duration::from_secs(60));
        let (started_tx, started_rx) = tokio::sync::oneshot::channel();
        let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
        let slow = cache.get_or_make("k".into(), async move {
            let _ = started_tx.send(());
            let _ = go_rx.await; // the database answers with what it read before the change
            Ok(Bytes::from_static(b"old"))
        });
        let change = async {
            let _ = started_rx.await;
            cache.invalidate(["k".to_string()]).await; // the change is heard now
            let _ = go_tx.send(());
        };
        let (old, ()) = tokio::join!(slow, change);
        assert_eq!(old.ok(), Some(Bytes::from_static(b"old")), "its caller still gets its answer");
        // (dropped by a task of its own: let it run)
        for _ in 0..1000 {
            if cache.get("k").await.is_none() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let r = cache.get_or_make("k".into(), async { Ok(Bytes::from_static(b"new")) }).await;
        assert_eq!(r.ok(), Some(Bytes::from_static(b"new")), "but it was not kept");

        // the same for a value read first and inserted afterwards
        let read_at = cache.stamp("j");
        cache.invalidate(["j".to_string()]).await;
        cache.insert("j".into(), Bytes::from_static(b"old"), read_at).await;
        assert_eq!(cache.get("j").await, None);
        let read_at = cache.stamp("j");
        cache.insert("j".into(), Bytes::from_static(b"new"), read_at).await;
        assert_eq!(cache.get("j").await, Some(Bytes::from_static(b"new")));
        cache.invalidate(["j".to_string(), "k".to_string()]).await;
        assert_eq!((cache.get("j").await, cache.get("k").await), (None, None));
    }

    #[tokio::test]
    async fn a_change_to_one_key_leaves_the_others_reads_alone() {
        let cache = ResponseCache::new(Duration::from_secs(60));
        let before: Vec<u64> = (0..100).map(|i| cache.stamp(&format!("p{i}"))).collect();
        cache.invalidate(["k".to_string()]).await;
        let moved = (0..100).filter(|i| cache.stamp(&format!("p{i}")) != before[*i]).count();
        assert!(moved < 20, "{moved} of 100 other keys' stamps moved with one key's change");
        let before = cache.stamp("p1");
        cache.invalidate_all();
        assert_ne!(cache.stamp("p1"), before, "everything: every key's stamp moves");
    }

    #[tokio::test]
    async fn entries_expire() {
        let cache = ResponseCache::new(Duration::from_millis(50));
        let _ = cache.get_or_make("k".into(), async { Ok(Bytes::from_static(b"old")) }).await;
        tokio::time::sleep(Duration::from_millis(120)).await;
        let r = cache.get_or_make("k".into(), async { Ok(Bytes::from_static(b"new")) }).await;
        assert_eq!(r.ok(), Some(Bytes::from_static(b"new")));
    }
}
