//! The session store: sessions, carts and login-failure counters, in Redis (Cluster) or in-process.
//!
//! Everything here is keyed per owner and written per field (a Redis hash per session and per
//! cart, one field per product), so two concurrent requests of one shopper never overwrite each
//! other's changes the way a serialized session blob would. Read-modify-write steps that must be
//! atomic (add to cart within limits, take ordered items out of a cart) are Lua scripts on one
//! key (`lua/*.lua`), which is what Redis Cluster can run atomically; the in-process store does
//! the same steps under its lock.
//!
//! Three parts: this module holds what both stores share — the key scheme, the error, the cart
//! types, the [`Backend`] trait with the operations each store implements — and [`Store`], the
//! handle the shop holds; `redis.rs` (Redis Cluster or one Redis: timeouts, retries with the
//! shared back-off, writes that wait for a replica) and `memory.rs` (embedded mode, one process)
//! implement the trait, and `tests/store_contract.rs` runs the same cases on both.
//!
//! Dispatch is an enum over the two stores, not `Arc<dyn Backend>`: the trait uses native `async
//! fn`, so no future is boxed on the hot path (every request reads its session) and no
//! `async-trait` crate is needed.

mod memory;
mod redis;

use std::{collections::HashMap, fmt::Display, time::Duration};

use crate::{
    domain::{CartLine, OrderId, ProductId},
    error::{AppError, HtmlError},
    settings::Settings,
};

pub use memory::MemoryStore;
pub use redis::RedisStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("session store timed out after {0:?}")]
    Timeout(Duration),
    #[error("session store error: {0}")]
    Redis(#[from] ::redis::RedisError),
}

impl StoreError {
    /// Could another attempt, a moment later, succeed? True for timeouts, lost connections and
    /// the answers a cluster gives while it fails over (CLUSTERDOWN, TRYAGAIN, READONLY, …);
    /// false for script and type errors, which would fail the same way again.
    fn is_retryable(&self) -> bool {
        match self {
            StoreError::Timeout(_) => true,
            StoreError::Redis(e) => !matches!(e.retry_method(), ::redis::RetryMethod::NoRetry),
        }
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        crate::infra::metrics::record_store_error();
        tracing::warn!(error = %e, "session store unavailable");
        AppError::Unavailable("the session store is temporarily unavailable, please retry".into())
    }
}

impl From<StoreError> for HtmlError {
    fn from(e: StoreError) -> Self {
        HtmlError(e.into())
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Outcome of adding to a cart line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CartAdd {
    /// The line now holds this quantity.
    Added(i64),
    /// Refused: the line would exceed the limit; it still holds this quantity.
    OverLimit(i64),
}

/// One add to a cart line, as [`Store::cart_add`] takes it.
#[derive(Debug, Clone, Copy)]
pub struct LineAdd {
    pub product_id: ProductId,
    pub delta: i64,
    /// Above this the add is refused, or with `clamp` the line is set to it.
    pub max: i64,
    pub clamp: bool,
    /// The cart's lifetime from now.
    pub ttl: Duration,
}

/// How long an operation key remembers its outcome.
const OP_TTL: Duration = Duration::from_secs(15 * 60);

/// A cart hash (product id → quantity) as lines, sorted by product id; junk fields are skipped.
fn cart_lines(h: HashMap<String, String>) -> Vec<CartLine> {
    let mut lines: Vec<CartLine> = h
        .into_iter()
        .filter_map(|(k, v)| {
            Some(CartLine { product_id: ProductId(k.parse().ok()?), quantity: v.parse().ok()? })
        })
        .filter(|l| l.quantity > 0)
        .collect();
    lines.sort_unstable();
    lines
}

/// The key of an operation marker of the cart `cart_key`: the same hash tag, so the same Redis
/// Cluster slot, and one Lua script may touch both.
fn op_key(cart_key: &str, op: &str) -> String {
    format!("{cart_key}:op:{op}")
}

/// What a store does, on keys the [`Store`] handle has built (so the key scheme is in one place
/// and both stores use it). Every operation is one atomic step on keys of one Redis Cluster slot.
/// Only called on the concrete stores through [`Store`]'s enum, so whether a future is `Send` is
/// always known (hence the allowed lint).
#[allow(async_fn_in_trait)]
pub trait Backend {
    /// `memory`, `redis-cluster` or `redis`, for `/readyz` and the start-up log.
    fn kind(&self) -> &'static str;
    async fn ping(&self) -> StoreResult<()>;

    /// All fields of a hash; empty when it does not exist.
    async fn hash_get(&self, key: &str) -> StoreResult<HashMap<String, String>>;
    /// Replace a hash with `fields`, living `ttl`.
    async fn hash_put(&self, key: &str, fields: &[(&str, String)], ttl: Duration) -> StoreResult<()>;
    /// Set one field of a hash that exists (its lifetime unchanged); nothing when it does not.
    async fn hash_set_existing(&self, key: &str, field: &str, value: &str) -> StoreResult<()>;
    async fn delete(&self, key: &str) -> StoreResult<()>;

    /// Add `member` to a set and let the set live at least `ttl` more.
    async fn set_add(&self, key: &str, member: &str, ttl: Duration) -> StoreResult<()>;
    async fn set_members(&self, key: &str) -> StoreResult<Vec<String>>;
    async fn set_remove(&self, key: &str, member: &str) -> StoreResult<()>;

    /// See [`Store::cart_add`]; `op_key` made with [`op_key`] from `key`.
    async fn cart_add(
        &self,
        key: &str,
        add: LineAdd,
        op_key: Option<String>,
    ) -> StoreResult<(CartAdd, Vec<CartLine>)>;
    async fn cart_set(
        &self,
        key: &str,
        product_id: ProductId,
        quantity: i64,
        ttl: Duration,
    ) -> StoreResult<Vec<CartLine>>;
    async fn cart_remove(&self, key: &str, product_id: ProductId) -> StoreResult<()>;
    /// See [`Store::cart_take`]; `op_key` marks it done.
    async fn cart_take(&self, key: &str, op_key: &str, lines: &[CartLine]) -> StoreResult<()>;

    /// See [`Store::count_event`].
    async fn count_event(&self, key: &str, window: Duration, limit: i64) -> StoreResult<(i64, Duration)>;
    async fn count_undo(&self, key: &str) -> StoreResult<()>;
}

#[derive(Clone)]
enum Kind {
    Memory(MemoryStore),
    Redis(RedisStore),
}

/// Run one [`Backend`] method on whichever store this is.
macro_rules! on_backend {
    ($self:ident . $method:ident ( $($arg:expr),* )) => {
        match &$self.backend {
            Kind::Memory(b) => b.$method($($arg),*).await,
            Kind::Redis(b) => b.$method($($arg),*).await,
        }
    };
}

/// What a replica hears about products changed by any replica ([`Store::watch_product_changes`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProductNews {
    /// These products changed (stock, price, name, hidden).
    Changed(Vec<ProductId>),
    /// The channel was (re)subscribed, or is down: anything may have changed meanwhile.
    Unknown,
}

impl ProductNews {
    /// A message's payload: product ids, comma-separated.
    fn payload(ids: &[ProductId]) -> String {
        ids.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
    }

    /// A payload read back; one that is not a list of ids says nothing certain.
    fn parse(payload: &[u8]) -> Self {
        std::str::from_utf8(payload)
            .ok()
            .and_then(|s| s.split(',').map(|id| id.parse().ok().map(ProductId)).collect::<Option<Vec<_>>>())
            .map_or(ProductNews::Unknown, ProductNews::Changed)
    }
}

/// The store the shop runs on: the key scheme over one of the two stores. Cheap to clone (a
/// shared connection or a shared map).
#[derive(Clone)]
pub struct Store {
    prefix: String,
    backend: Kind,
}

impl Store {
    /// In-process store for the embedded mode (one process only).
    pub fn memory(prefix: &str) -> Self {
        Store { prefix: prefix.to_string(), backend: Kind::Memory(MemoryStore::new()) }
    }

    /// Connect from settings: Redis when `SHOP_REDIS_URLS` is set, else in-process.
    pub async fn from_settings(s: &Settings) -> anyhow::Result<Self> {
        if s.redis_urls.is_empty() {
            return Ok(Self::memory(&s.redis_prefix));
        }
        let redis = RedisStore::connect(s).await?;
        Ok(Store { prefix: s.redis_prefix.clone(), backend: Kind::Redis(redis) })
    }

    pub fn kind(&self) -> &'static str {
        match &self.backend {
            Kind::Memory(b) => b.kind(),
            Kind::Redis(b) => b.kind(),
        }
    }

    fn key(&self, kind: &str, id: &str) -> String {
        format!("{}{kind}:{id}", self.prefix)
    }

    /// A cart's key. The owner is a hash tag, so the cart and its operation markers share a
    /// Redis Cluster slot and one Lua script may touch both.
    fn cart_key(&self, owner: &(impl Display + ?Sized)) -> String {
        format!("{}cart:{{{owner}}}", self.prefix)
    }

    // --- sessions -------------------------------------------------------------------------

    /// The fields of a session, `None` if it does not exist (never created, expired or deleted).
    pub async fn session_get(&self, id: &str) -> StoreResult<Option<HashMap<String, String>>> {
        let key = self.key("sess", id);
        let h = on_backend!(self.hash_get(&key))?;
        Ok(if h.is_empty() { None } else { Some(h) })
    }

    /// Create or replace a session.
    pub async fn session_put(&self, id: &str, fields: &[(&str, String)], ttl: Duration) -> StoreResult<()> {
        let key = self.key("sess", id);
        on_backend!(self.hash_put(&key, fields, ttl))
    }

    /// Set one field of an existing session (its lifetime unchanged). A session that expired or
    /// was deleted meanwhile stays gone.
    pub async fn session_set_field(&self, id: &str, field: &str, value: &str) -> StoreResult<()> {
        let key = self.key("sess", id);
        on_backend!(self.hash_set_existing(&key, field, value))
    }

    pub async fn session_delete(&self, id: &str) -> StoreResult<()> {
        let key = self.key("sess", id);
        on_backend!(self.delete(&key))
    }

    // --- an account's sessions -----------------------------------------------------------
    //
    // The ids of the sessions an account logged in to, so that a password change can end the
    // others. Kept beside the sessions (which stay one key each, read once per request): only
    // logging in, logging out and changing the password touch it. An id whose session expired
    // stays in the set until the set expires or the next password change; deleting it is harmless.

    /// Remember that session `id` belongs to the account `user`, for at least `ttl`.
    pub async fn account_session_add(&self, user: &impl Display, id: &str, ttl: Duration) -> StoreResult<()> {
        let key = self.key("acct-sess", &user.to_string());
        on_backend!(self.set_add(&key, id, ttl))
    }

    /// The ids of the sessions the account `user` logged in to (some may have expired).
    pub async fn account_sessions(&self, user: &impl Display) -> StoreResult<Vec<String>> {
        let key = self.key("acct-sess", &user.to_string());
        on_backend!(self.set_members(&key))
    }

    /// Forget session `id` of the account `user` (it logged out or was ended).
    pub async fn account_session_remove(&self, user: &impl Display, id: &str) -> StoreResult<()> {
        let key = self.key("acct-sess", &user.to_string());
        on_backend!(self.set_remove(&key, id))
    }

    /// Remember, for `ttl`, that the account `user` changed its password: a session made before
    /// the accounts' lists of sessions existed (so on none) is refused from then on.
    pub async fn account_password_changed(&self, user: &impl Display, ttl: Duration) -> StoreResult<()> {
        let key = self.key("acct-pw", &user.to_string());
        let fields = [("at", crate::infra::db::now_ms().to_string())];
        on_backend!(self.hash_put(&key, &fields, ttl))
    }

    /// Whether the account `user` changed its password (within the `ttl` given then).
    pub async fn account_password_was_changed(&self, user: &impl Display) -> StoreResult<bool> {
        let key = self.key("acct-pw", &user.to_string());
        Ok(!on_backend!(self.hash_get(&key))?.is_empty())
    }

    // --- carts ----------------------------------------------------------------------------

    /// The cart lines of an owner, by product id. The owner is a [`CartOwner`](crate::domain::CartOwner) (displayed as
    /// its key, `u:<user id>` or `s:<session id>`) — or that key as a string.
    pub async fn cart_get(&self, owner: &(impl Display + Sync + ?Sized)) -> StoreResult<Vec<CartLine>> {
        let key = self.cart_key(owner);
        Ok(cart_lines(on_backend!(self.hash_get(&key))?))
    }

    /// Atomically add `delta` to a line. Above `max` the add is refused, or with `clamp` the line
    /// is set to `max`. Refreshes the cart's TTL. With an operation key `op`, the add happens at
    /// most once: a repeat (a client or proxy retrying the same request) gets the first outcome.
    /// Answers the cart as the change left it too (read in the same step: no second round trip).
    #[allow(clippy::too_many_arguments)]
    pub async fn cart_add(
        &self,
        owner: &(impl Display + Sync + ?Sized),
        product_id: ProductId,
        delta: i64,
        max: i64,
        clamp: bool,
        ttl: Duration,
        op: Option<&str>,
    ) -> StoreResult<(CartAdd, Vec<CartLine>)> {
        let key = self.cart_key(owner);
        let op_key = op.map(|o| op_key(&key, o));
        let add = LineAdd { product_id, delta, max, clamp, ttl };
        on_backend!(self.cart_add(&key, add, op_key))
    }

    /// Set a line to exactly `quantity` (idempotent: repeating it changes nothing). Answers the
    /// cart as the change left it (read in the same step).
    pub async fn cart_set(
        &self,
        owner: &(impl Display + Sync + ?Sized),
        product_id: ProductId,
        quantity: i64,
        ttl: Duration,
    ) -> StoreResult<Vec<CartLine>> {
        let key = self.cart_key(owner);
        on_backend!(self.cart_set(&key, product_id, quantity, ttl))
    }

    /// Remove a line (idempotent).
    pub async fn cart_remove(
        &self,
        owner: &(impl Display + Sync + ?Sized),
        product_id: ProductId,
    ) -> StoreResult<()> {
        let key = self.cart_key(owner);
        on_backend!(self.cart_remove(&key, product_id))
    }

    /// Take an order's quantities out of a cart after its checkout committed; lines added
    /// meanwhile stay. Once per order: a replayed checkout calls it again, and a retry of this call
    /// may find it done, so the order id is an operation key that makes repeats no-ops.
    pub async fn cart_take(
        &self,
        owner: &(impl Display + Sync + ?Sized),
        order_id: OrderId,
        lines: &[CartLine],
    ) -> StoreResult<()> {
        if lines.is_empty() {
            return Ok(());
        }
        let key = self.cart_key(owner);
        let op_key = op_key(&key, &format!("order:{order_id}"));
        on_backend!(self.cart_take(&key, &op_key, lines))
    }

    pub async fn cart_clear(&self, owner: &(impl Display + Sync + ?Sized)) -> StoreResult<()> {
        let key = self.cart_key(owner);
        on_backend!(self.delete(&key))
    }

    // --- counters (login throttling) ------------------------------------------------------

    /// Count one event in a fixed window starting at the first event, unless `limit` events are
    /// counted already (then nothing is counted and the answer is `limit + 1`); returns the count
    /// with this event and how long until the window ends. One atomic step: parallel callers
    /// each get a different count, and refused ones do not inflate it.
    pub async fn count_event(
        &self,
        name: &str,
        window: Duration,
        limit: i64,
    ) -> StoreResult<(i64, Duration)> {
        let key = self.key("count", name);
        on_backend!(self.count_event(&key, window, limit))
    }

    /// Take back one counted event (never below zero; a key that expired stays gone).
    pub async fn count_undo(&self, name: &str) -> StoreResult<()> {
        let key = self.key("count", name);
        on_backend!(self.count_undo(&key))
    }

    pub async fn count_get(&self, name: &str) -> StoreResult<i64> {
        let key = self.key("count", name);
        let h = on_backend!(self.hash_get(&key))?;
        Ok(h.get("n").and_then(|v| v.parse().ok()).unwrap_or(0))
    }

    pub async fn count_reset(&self, name: &str) -> StoreResult<()> {
        let key = self.key("count", name);
        on_backend!(self.delete(&key))
    }

    /// Reachability check for readiness.
    pub async fn ping(&self) -> Result<(), String> {
        on_backend!(self.ping()).map_err(|e| e.to_string())
    }

    /// The channel every replica hears product changes on.
    fn products_channel(&self) -> String {
        format!("{}products-changed", self.prefix)
    }

    /// Tell every replica that these products changed (Redis `PUBLISH`, which a Redis Cluster
    /// passes to all its nodes); nothing for the in-process store, whose one process knows.
    pub async fn publish_product_changes(&self, ids: &[ProductId]) -> StoreResult<()> {
        match &self.backend {
            Kind::Memory(_) => Ok(()),
            Kind::Redis(r) => r.publish(&self.products_channel(), &ProductNews::payload(ids)).await,
        }
    }

    /// Product changes made by any replica, this one included, as they are published; `None` for
    /// the in-process store. A background task holds the subscription to one Redis node, pings it
    /// every second, and moves to the next node when it stops answering (noticed within about
    /// 2 s); it sends [`ProductNews::Unknown`] on every (re)subscription and at each attempt while
    /// it has none (every half second plus the connect timeout).
    /// It ends when the receiver is dropped.
    pub fn watch_product_changes(&self) -> Option<tokio::sync::mpsc::UnboundedReceiver<ProductNews>> {
        match &self.backend {
            Kind::Memory(_) => None,
            Kind::Redis(r) => Some(r.watch(self.products_channel())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{cart_lines, op_key, StoreError};
    use crate::domain::{CartLine, ProductId};
    use std::{collections::HashMap, time::Duration};

    #[test]
    fn product_news_travel_as_ids_and_garbage_means_unknown() {
        use super::ProductNews;
        let ids = [ProductId(3), ProductId(41)];
        assert_eq!(ProductNews::payload(&ids), "3,41");
        assert_eq!(ProductNews::parse(b"3,41"), ProductNews::Changed(ids.to_vec()));
        for bad in [&b""[..], b"3,,4", b"x", b"\xff"] {
            assert_eq!(ProductNews::parse(bad), ProductNews::Unknown, "{bad:?}");
        }
    }

    #[test]
    fn failover_answers_are_retried_script_errors_are_not() {
        use ::redis::{ErrorKind, RedisError, ServerErrorKind};
        let server = |k| StoreError::Redis(RedisError::from((ErrorKind::Server(k), "x")));
        assert!(StoreError::Timeout(Duration::from_secs(1)).is_retryable());
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        assert!(StoreError::Redis(RedisError::from(io)).is_retryable());
        for k in [ServerErrorKind::ClusterDown, ServerErrorKind::TryAgain, ServerErrorKind::ReadOnly] {
            assert!(server(k).is_retryable(), "{k:?}");
        }
        for k in [ServerErrorKind::ResponseError, ServerErrorKind::CrossSlot, ServerErrorKind::NoScript] {
            assert!(!server(k).is_retryable(), "{k:?}");
        }
        assert!(!StoreError::Redis(RedisError::from((ErrorKind::UnexpectedReturnType, "x"))).is_retryable());
    }

    #[test]
    fn a_carts_operation_keys_are_in_its_slot() {
        use ::redis::cluster_routing::Slot;
        let cart = "distshop:cart:{u:42}";
        for op in ["0b7d1c2e", "order:17", "~00000000deadbeef"] {
            assert_eq!(Slot::for_key(op_key(cart, op)), Slot::for_key(cart), "{op}");
        }
        assert_eq!(Slot::for_key(cart), Slot::for_key("u:42"), "the owner is the hash tag");
    }

    #[test]
    fn cart_hashes_become_sorted_lines_without_junk_or_empty_lines() {
        let h: HashMap<String, String> =
            [("7", "2"), ("3", "1"), ("x", "1"), ("5", "0"), ("9", "-1"), ("4", "y")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        let line = |p, q| CartLine { product_id: ProductId(p), quantity: q };
        assert_eq!(cart_lines(h), vec![line(3, 1), line(7, 2)]);
    }
}
