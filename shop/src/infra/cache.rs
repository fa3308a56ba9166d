//! A short-lived, per-replica cache of catalog responses (`SHOP_CATALOG_CACHE_MS`, default 1 s).
//!
//! The catalog is read-mostly and the same for every visitor without a session, so its rendered
//! bytes are kept for a moment instead of asking the database three times per page. Concurrent
//! misses for one key are coalesced (one database round trip, the others wait for it), errors
//! are never cached, and a stock change made through this replica (checkout, cancel) empties the
//! cache at once. Other replicas may show a stock figure up to one lifetime old; checkout never
//! relies on it (the conditional `UPDATE … WHERE stock >= ?` stays the authority).

use std::{future::Future, sync::Arc, time::Duration};

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

pub struct TtlCache<V> {
    inner: Option<moka::future::Cache<String, V>>,
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
        TtlCache { inner }
    }

    pub fn enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// The cached body for `key`, or the one `make` produces (then cached). With several callers
    /// missing the same key at once, `make` runs once.
    pub async fn get_or_make<F>(&self, key: String, make: F) -> Result<V, AppError>
    where
        F: Future<Output = Result<V, AppError>>,
    {
        match &self.inner {
            None => make.await,
            Some(c) => c.try_get_with(key, make).await.map_err(unshare),
        }
    }

    /// The entry for `key`, if cached and fresh.
    pub async fn get(&self, key: &str) -> Option<V> {
        match &self.inner {
            None => None,
            Some(c) => c.get(key).await,
        }
    }

    pub async fn insert(&self, key: String, value: V) {
        if let Some(c) = &self.inner {
            c.insert(key, value).await;
        }
    }

    /// Forget everything (after this replica changed stock).
    pub fn invalidate_all(&self) {
        if let Some(c) = &self.inner {
            c.invalidate_all();
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
    async fn entries_expire() {
        let cache = ResponseCache::new(Duration::from_millis(50));
        let _ = cache.get_or_make("k".into(), async { Ok(Bytes::from_static(b"old")) }).await;
        tokio::time::sleep(Duration::from_millis(120)).await;
        let r = cache.get_or_make("k".into(), async { Ok(Bytes::from_static(b"new")) }).await;
        assert_eq!(r.ok(), Some(Bytes::from_static(b"new")));
    }
}
