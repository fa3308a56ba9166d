//! The session store: sessions, carts and login-failure counters, in Redis (Cluster) or in-process.
//!
//! Everything here is keyed per owner and written per field (a Redis hash per session and per
//! cart, one field per product), so two concurrent requests of one shopper never overwrite each
//! other's changes the way a serialized session blob would. Read-modify-write steps that must be
//! atomic (add to cart within limits, take ordered items out of a cart) are Lua scripts on one
//! key, which is what Redis Cluster can run atomically.
//!
//! Redis: one shared multiplexed connection (cluster-aware: follows MOVED/ASK, reconnects, bounded
//! retries) for reads and unacknowledged writes, explicit connect and response timeouts, and an
//! outer deadline on every call. Writes that wait for a replica go over a small pool of their
//! own connections, one write per connection at a time: `WAIT` blocks the connection it is sent
//! on, and on a shared multiplexed connection every command behind it would queue (see
//! [`Store::write`]).

use std::{
    collections::HashMap,
    fmt::Display,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use redis::{aio::ConnectionManager, cluster_async::ClusterConnection, Cmd, FromRedisValue};

use crate::{
    domain::{CartLine, OrderId, ProductId},
    error::{AppError, HtmlError},
    settings::Settings,
};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("session store timed out after {0:?}")]
    Timeout(Duration),
    #[error("session store error: {0}")]
    Redis(#[from] redis::RedisError),
}

impl StoreError {
    /// Could another attempt, a moment later, succeed? True for timeouts, lost connections and
    /// the answers a cluster gives while it fails over (CLUSTERDOWN, TRYAGAIN, READONLY, …);
    /// false for script and type errors, which would fail the same way again.
    fn is_retryable(&self) -> bool {
        match self {
            StoreError::Timeout(_) => true,
            StoreError::Redis(e) => !matches!(e.retry_method(), redis::RetryMethod::NoRetry),
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
#[derive(Debug, PartialEq, Eq)]
pub enum CartAdd {
    /// The line now holds this quantity.
    Added(i64),
    /// Refused: the line would exceed the limit; it still holds this quantity.
    OverLimit(i64),
}

/// How long an operation key remembers its outcome.
const OP_TTL: Duration = Duration::from_secs(15 * 60);
/// How long the operation key the shop makes for an add without one (so that its own retries
/// cannot add twice) is remembered: longer than any retry budget.
const INTERNAL_OP_TTL: Duration = Duration::from_secs(120);

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

fn encode_outcome(o: &CartAdd) -> String {
    match o {
        CartAdd::Added(n) => format!("1:{n}"),
        CartAdd::OverLimit(n) => format!("0:{n}"),
    }
}

fn decode_outcome(s: &str) -> CartAdd {
    let (ok, n) = s.split_once(':').unwrap_or(("0", "0"));
    let n = n.parse().unwrap_or(0);
    if ok == "1" {
        CartAdd::Added(n)
    } else {
        CartAdd::OverLimit(n)
    }
}

/// The store the shop runs on. Cheap to clone (shared connection / shared map).
#[derive(Clone)]
pub struct Store {
    prefix: String,
    timeout: Duration,
    backend: Backend,
    /// How long one call keeps retrying before it fails (`SHOP_STORE_RETRY_MS`).
    retry_budget: Duration,
    /// How session and cart writes wait for a replica; `None` when they do not.
    acked: Option<AckedWrites>,
}

/// Writes acknowledged by replicas (Redis `WAIT`) before we answer.
#[derive(Clone)]
struct AckedWrites {
    /// Replicas that must acknowledge (`SHOP_REDIS_WAIT_REPLICAS`).
    replicas: u32,
    /// How long to wait for them (`SHOP_REDIS_WAIT_TIMEOUT_MS`).
    timeout: Duration,
    /// Connections of their own (`SHOP_REDIS_WRITE_CONNECTIONS`), one write each at a time.
    pool: deadpool::unmanaged::Pool<Backend>,
}

#[derive(Clone)]
enum Backend {
    Memory(Arc<Mutex<HashMap<String, Entry>>>),
    Cluster(ClusterConnection),
    Single(ConnectionManager),
}

struct Entry {
    fields: HashMap<String, String>,
    expires: Instant,
}

// The Lua scripts, each on keys of one slot (one cart, one counter), run with EVAL; what each
// takes and answers is at the top of its file.
const ADD_SCRIPT: &str = include_str!("lua/cart_add.lua");

const TAKE_SCRIPT: &str = include_str!("lua/cart_take.lua");

const PUT_SCRIPT: &str = include_str!("lua/hash_put.lua");

const SET_LINE_SCRIPT: &str = include_str!("lua/cart_set.lua");

const SET_ADD_SCRIPT: &str = include_str!("lua/set_add.lua");

const INCR_SCRIPT: &str = include_str!("lua/count_event.lua");

const UNCOUNT_SCRIPT: &str = include_str!("lua/count_undo.lua");

impl Store {
    /// In-process store for the embedded mode (one process only).
    pub fn memory(prefix: &str) -> Self {
        Store {
            prefix: prefix.to_string(),
            timeout: Duration::from_secs(1),
            backend: Backend::Memory(Arc::new(Mutex::new(HashMap::new()))),
            retry_budget: Duration::ZERO,
            acked: None,
        }
    }

    /// Connect from settings: Redis when `SHOP_REDIS_URLS` is set, else in-process.
    pub async fn from_settings(s: &Settings) -> anyhow::Result<Self> {
        if s.redis_urls.is_empty() {
            return Ok(Self::memory(&s.redis_prefix));
        }
        let mut last = String::new();
        for attempt in 1..=30 {
            match tokio::time::timeout(
                s.store_timeout * 3,
                connect_redis(&s.redis_urls, s.store_timeout, s.store_timeout / 2),
            )
            .await
            {
                Ok(Ok(backend)) => {
                    let default_wait = if matches!(backend, Backend::Cluster(_)) { 1 } else { 0 };
                    let replicas = s.redis_wait_replicas.unwrap_or(default_wait);
                    let acked = if replicas > 0 {
                        match writer_pool(s).await {
                            Ok(pool) => Some(AckedWrites { replicas, timeout: s.redis_wait_timeout, pool }),
                            Err(e) => {
                                last = e.to_string();
                                tracing::warn!(attempt, error = %last, "session store not reachable yet");
                                tokio::time::sleep(Duration::from_secs(1)).await;
                                continue;
                            }
                        }
                    } else {
                        None
                    };
                    return Ok(Store {
                        prefix: s.redis_prefix.clone(),
                        timeout: s.store_timeout,
                        backend,
                        retry_budget: s.store_retry,
                        acked,
                    });
                }
                Ok(Err(e)) => last = e.to_string(),
                Err(_) => last = "connect timed out".into(),
            }
            tracing::warn!(attempt, error = %last, "session store not reachable yet");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        anyhow::bail!("could not connect to Redis: {last}")
    }

    pub fn kind(&self) -> &'static str {
        match self.backend {
            Backend::Memory(_) => "memory",
            Backend::Cluster(_) => "redis-cluster",
            Backend::Single(_) => "redis",
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

    fn cart_op_key(&self, owner: &(impl Display + ?Sized), op: &str) -> String {
        format!("{}cart:{{{owner}}}:op:{op}", self.prefix)
    }

    /// Run `f` again while it fails for a reason that another attempt may cure (see
    /// [`StoreError::is_retryable`]), with jittered backoff, within the retry budget. Every call
    /// that goes through here is safe to repeat: reads, writes that set a value, and increments
    /// that carry an operation key (see [`Store::cart_add`], [`Store::cart_take`]).
    async fn retrying<T, F, Fut>(&self, f: F) -> StoreResult<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = StoreResult<T>>,
    {
        crate::infra::retry::within(
            self.retry_budget,
            StoreError::is_retryable,
            |attempt, e| {
                crate::infra::metrics::record_store_retry();
                tracing::info!(attempt, error = %e, "retrying session-store call");
            },
            f,
        )
        .await
    }

    async fn cmd<T: FromRedisValue>(&self, cmd: Cmd) -> StoreResult<T> {
        self.retrying(|| self.cmd_once(&cmd)).await
    }

    async fn cmd_once<T: FromRedisValue>(&self, cmd: &Cmd) -> StoreResult<T> {
        let fut = async {
            match &self.backend {
                Backend::Cluster(c) => cmd.query_async(&mut c.clone()).await,
                Backend::Single(c) => cmd.query_async(&mut c.clone()).await,
                Backend::Memory(_) => {
                    Err(redis::RedisError::from((redis::ErrorKind::Client, "memory store")))
                }
            }
        };
        match tokio::time::timeout(self.timeout, fut).await {
            Ok(r) => Ok(r?),
            Err(_) => Err(StoreError::Timeout(self.timeout)),
        }
    }

    /// A Lua script on keys that all live in one slot, as a plain `EVAL` (so it can be pipelined).
    fn eval(src: &str, keys: &[String], args: &[String]) -> Cmd {
        let mut c = redis::cmd("EVAL");
        c.arg(src).arg(keys.len()).arg(keys).arg(args);
        c
    }

    async fn script<T: FromRedisValue>(&self, src: &str, key: &str, args: &[String]) -> StoreResult<T> {
        self.cmd(Self::eval(src, &[key.to_string()], args)).await
    }

    /// A write that must survive the loss of the master that took it: it is followed, on the same
    /// node, by `WAIT <replicas> <timeout>`, so we only answer once a replica has it (a replica is
    /// what a failover promotes). A shortfall is counted and logged, not failed: the master keeps
    /// serving while its replica is down.
    ///
    /// `WAIT` blocks the connection it is sent on until the replica acknowledges or the timeout
    /// passes, so it runs on a connection of its own from the writer pool. On the shared
    /// multiplexed connection it was a queue: right after a failover the promoted master has no
    /// replica, every `WAIT` to it takes the full timeout, and everything behind it — reads and
    /// writes of other requests — waited in line; one replica's store calls timed out for 10 s
    /// in the Redis-master-kill scenario (docs/failover.md).
    async fn write<T: FromRedisValue>(&self, key: &str, cmd: Cmd) -> StoreResult<T> {
        let Some(acked) = &self.acked else {
            return self.cmd(cmd).await;
        };
        self.retrying(|| self.write_once(acked, key, &cmd)).await
    }

    async fn write_once<T: FromRedisValue>(
        &self,
        acked: &AckedWrites,
        key: &str,
        cmd: &Cmd,
    ) -> StoreResult<T> {
        let mut p = redis::pipe();
        p.add_command(cmd.clone());
        p.cmd("WAIT").arg(acked.replicas).arg(acked.timeout.as_millis() as u64);
        let fut = async {
            let conn = acked.pool.get().await.map_err(|e| {
                redis::RedisError::from((redis::ErrorKind::Io, "writer connection pool", e.to_string()))
            })?;
            let values = match &*conn {
                Backend::Cluster(c) => {
                    let route = redis::cluster_routing::SingleNodeRoutingInfo::SpecificNode(
                        redis::cluster_routing::Route::new(
                            key_slot(key.as_bytes()),
                            redis::cluster_routing::SlotAddr::Master,
                        ),
                    );
                    c.clone().route_pipeline(p, 0, 2, route).await?
                }
                Backend::Single(c) => p.query_async::<Vec<redis::Value>>(&mut c.clone()).await?,
                Backend::Memory(_) => {
                    return Err(redis::RedisError::from((redis::ErrorKind::Client, "memory store")))
                }
            };
            let mut it = values.into_iter();
            let (first, acked_by) = (it.next(), it.next());
            let acked_by: i64 = acked_by.and_then(|v| i64::from_redis_value(v).ok()).unwrap_or(0);
            if acked_by < i64::from(acked.replicas) {
                crate::infra::metrics::record_unreplicated_write();
                tracing::warn!(
                    key.slot = key_slot(key.as_bytes()),
                    acked = acked_by,
                    "session-store write not yet on a replica"
                );
            }
            let first =
                first.ok_or_else(|| redis::RedisError::from((redis::ErrorKind::Client, "empty reply")))?;
            T::from_redis_value(first).map_err(redis::RedisError::from)
        };
        let limit = self.timeout + acked.timeout;
        match tokio::time::timeout(limit, fut).await {
            Ok(r) => Ok(r?),
            Err(_) => Err(StoreError::Timeout(limit)),
        }
    }

    /// Run `f` on the live (unexpired) entry map of the memory store.
    fn mem<T>(map: &Mutex<HashMap<String, Entry>>, f: impl FnOnce(&mut HashMap<String, Entry>) -> T) -> T {
        let mut guard = map.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = Instant::now();
        if guard.len() > 10_000 {
            guard.retain(|_, e| e.expires > now);
        }
        guard.retain(|_, e| e.expires > now || e.fields.is_empty());
        f(&mut guard)
    }

    async fn hgetall(&self, key: &str) -> StoreResult<HashMap<String, String>> {
        match &self.backend {
            Backend::Memory(m) => Ok(Self::mem(m, |map| {
                map.get(key)
                    .filter(|e| e.expires > Instant::now())
                    .map(|e| e.fields.clone())
                    .unwrap_or_default()
            })),
            _ => self.cmd(redis::cmd("HGETALL").arg(key).clone()).await,
        }
    }

    async fn del(&self, key: &str) -> StoreResult<()> {
        match &self.backend {
            Backend::Memory(m) => {
                Self::mem(m, |map| map.remove(key));
                Ok(())
            }
            _ => self.write::<i64>(key, redis::cmd("DEL").arg(key).clone()).await.map(|_| ()),
        }
    }

    async fn put_hash(&self, key: &str, fields: &[(&str, String)], ttl: Duration) -> StoreResult<()> {
        match &self.backend {
            Backend::Memory(m) => {
                let fields = fields.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
                Self::mem(m, |map| {
                    map.insert(key.to_string(), Entry { fields, expires: Instant::now() + ttl })
                });
                Ok(())
            }
            _ => {
                let mut args = vec![ttl.as_millis().to_string()];
                for (k, v) in fields {
                    args.push(k.to_string());
                    args.push(v.clone());
                }
                self.write::<i64>(key, Self::eval(PUT_SCRIPT, &[key.to_string()], &args)).await.map(|_| ())
            }
        }
    }

    // --- sessions -------------------------------------------------------------------------

    /// The fields of a session, `None` if it does not exist (never created, expired or deleted).
    pub async fn session_get(&self, id: &str) -> StoreResult<Option<HashMap<String, String>>> {
        let h = self.hgetall(&self.key("sess", id)).await?;
        Ok(if h.is_empty() { None } else { Some(h) })
    }

    /// Create or replace a session.
    pub async fn session_put(&self, id: &str, fields: &[(&str, String)], ttl: Duration) -> StoreResult<()> {
        self.put_hash(&self.key("sess", id), fields, ttl).await
    }

    /// Set one field of an existing session (its lifetime unchanged).
    pub async fn session_set_field(&self, id: &str, field: &str, value: &str) -> StoreResult<()> {
        let key = self.key("sess", id);
        match &self.backend {
            Backend::Memory(m) => {
                Self::mem(m, |map| {
                    if let Some(e) = map.get_mut(&key) {
                        e.fields.insert(field.to_string(), value.to_string());
                    }
                });
                Ok(())
            }
            _ => self
                .write::<i64>(&key, redis::cmd("HSET").arg(&key).arg(field).arg(value).clone())
                .await
                .map(|_| ()),
        }
    }

    pub async fn session_delete(&self, id: &str) -> StoreResult<()> {
        self.del(&self.key("sess", id)).await
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
        match &self.backend {
            Backend::Memory(m) => {
                Self::mem(m, |map| {
                    let e = map
                        .entry(key)
                        .or_insert_with(|| Entry { fields: HashMap::new(), expires: Instant::now() });
                    e.fields.insert(id.to_string(), String::new());
                    e.expires = e.expires.max(Instant::now() + ttl);
                });
                Ok(())
            }
            _ => {
                let args = [ttl.as_millis().to_string(), id.to_string()];
                self.write::<i64>(&key, Self::eval(SET_ADD_SCRIPT, std::slice::from_ref(&key), &args))
                    .await
                    .map(|_| ())
            }
        }
    }

    /// The ids of the sessions the account `user` logged in to (some may have expired).
    pub async fn account_sessions(&self, user: &impl Display) -> StoreResult<Vec<String>> {
        let key = self.key("acct-sess", &user.to_string());
        match &self.backend {
            Backend::Memory(m) => Ok(Self::mem(m, |map| {
                map.get(&key).map(|e| e.fields.keys().cloned().collect()).unwrap_or_default()
            })),
            _ => self.cmd(redis::cmd("SMEMBERS").arg(&key).clone()).await,
        }
    }

    /// Remember, for `ttl`, that the account `user` changed its password: a session made before
    /// the accounts' lists of sessions existed (so on none) is refused from then on.
    pub async fn account_password_changed(&self, user: &impl Display, ttl: Duration) -> StoreResult<()> {
        self.put_hash(
            &self.key("acct-pw", &user.to_string()),
            &[("at", crate::infra::db::now_ms().to_string())],
            ttl,
        )
        .await
    }

    /// Whether the account `user` changed its password (within the `ttl` given then).
    pub async fn account_password_was_changed(&self, user: &impl Display) -> StoreResult<bool> {
        Ok(!self.hgetall(&self.key("acct-pw", &user.to_string())).await?.is_empty())
    }

    /// Forget session `id` of the account `user` (it logged out or was ended).
    pub async fn account_session_remove(&self, user: &impl Display, id: &str) -> StoreResult<()> {
        let key = self.key("acct-sess", &user.to_string());
        match &self.backend {
            Backend::Memory(m) => {
                Self::mem(m, |map| map.get_mut(&key).map(|e| e.fields.remove(id)));
                Ok(())
            }
            _ => self.write::<i64>(&key, redis::cmd("SREM").arg(&key).arg(id).clone()).await.map(|_| ()),
        }
    }

    // --- carts ----------------------------------------------------------------------------

    /// The cart lines of an owner, by product id. The owner is a [`CartOwner`](crate::domain::CartOwner) (displayed as
    /// its key, `u:<user id>` or `s:<session id>`) — or that key as a string.
    pub async fn cart_get(&self, owner: &(impl Display + Sync + ?Sized)) -> StoreResult<Vec<CartLine>> {
        Ok(cart_lines(self.hgetall(&self.cart_key(owner)).await?))
    }

    /// Atomically add `delta` to a line. Above `max` the add is refused, or with `clamp` the line
    /// is set to `max`. Refreshes the cart's TTL. With an operation key `op`, the add happens at
    /// most once: a repeat (a client or proxy retrying the same request) gets the first outcome.
    /// Answers the cart as the change left it too (read in the same script: no second round trip).
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
        let op_key = op.map(|o| self.cart_op_key(owner, o));
        match &self.backend {
            Backend::Memory(m) => Ok(Self::mem(m, |map| {
                let lines_of = |map: &HashMap<String, Entry>, key: &str| {
                    cart_lines(map.get(key).map(|e| e.fields.clone()).unwrap_or_default())
                };
                if let Some(done) = op_key.as_ref().and_then(|k| map.get(k)).and_then(|e| e.fields.get("r")) {
                    return (decode_outcome(done), lines_of(map, &key));
                }
                let e = map
                    .entry(key.clone())
                    .or_insert_with(|| Entry { fields: HashMap::new(), expires: Instant::now() + ttl });
                let field = product_id.to_string();
                let cur: i64 = e.fields.get(&field).and_then(|v| v.parse().ok()).unwrap_or(0);
                let mut new = cur + delta;
                let outcome = if new > max && !clamp {
                    CartAdd::OverLimit(cur)
                } else {
                    new = new.min(max);
                    if new <= 0 {
                        e.fields.remove(&field);
                    } else {
                        e.fields.insert(field, new.to_string());
                    }
                    e.expires = Instant::now() + ttl;
                    CartAdd::Added(new.max(0))
                };
                if let Some(k) = op_key {
                    let fields = HashMap::from([("r".to_string(), encode_outcome(&outcome))]);
                    map.insert(k, Entry { fields, expires: Instant::now() + OP_TTL });
                }
                (outcome, lines_of(map, &key))
            })),
            _ => {
                // Without a client's key the add still gets one of its own, so that a retry of
                // this call (the master failed over before it answered) cannot add twice.
                let (op_key, op_ttl) = match op_key {
                    Some(k) => (k, OP_TTL),
                    None => {
                        let internal = format!("~{:016x}", rand::random::<u64>());
                        (self.cart_op_key(owner, &internal), INTERNAL_OP_TTL)
                    }
                };
                let args = [
                    product_id.to_string(),
                    delta.to_string(),
                    max.to_string(),
                    ttl.as_millis().to_string(),
                    if clamp { "1".into() } else { "0".into() },
                    op_ttl.as_millis().to_string(),
                ];
                let keys = vec![key, op_key];
                let cmd = Self::eval(ADD_SCRIPT, &keys, &args);
                let (ok, n, _replayed, cart): (i64, i64, i64, HashMap<String, String>) =
                    self.write(&keys[0], cmd).await?;
                let outcome = if ok == 1 { CartAdd::Added(n.max(0)) } else { CartAdd::OverLimit(n) };
                Ok((outcome, cart_lines(cart)))
            }
        }
    }

    /// Set a line to exactly `quantity` (idempotent: repeating it changes nothing). Answers the
    /// cart as the change left it (read in the same script).
    pub async fn cart_set(
        &self,
        owner: &(impl Display + Sync + ?Sized),
        product_id: ProductId,
        quantity: i64,
        ttl: Duration,
    ) -> StoreResult<Vec<CartLine>> {
        let key = self.cart_key(owner);
        match &self.backend {
            Backend::Memory(m) => Ok(Self::mem(m, |map| {
                let e = map
                    .entry(key)
                    .or_insert_with(|| Entry { fields: HashMap::new(), expires: Instant::now() + ttl });
                e.fields.insert(product_id.to_string(), quantity.to_string());
                e.expires = Instant::now() + ttl;
                cart_lines(e.fields.clone())
            })),
            _ => {
                let args = [product_id.to_string(), quantity.to_string(), ttl.as_millis().to_string()];
                let cmd = Self::eval(SET_LINE_SCRIPT, std::slice::from_ref(&key), &args);
                self.write::<HashMap<String, String>>(&key, cmd).await.map(cart_lines)
            }
        }
    }

    /// Remove a line (idempotent).
    pub async fn cart_remove(
        &self,
        owner: &(impl Display + Sync + ?Sized),
        product_id: ProductId,
    ) -> StoreResult<()> {
        let key = self.cart_key(owner);
        match &self.backend {
            Backend::Memory(m) => {
                Self::mem(m, |map| map.get_mut(&key).map(|e| e.fields.remove(&product_id.to_string())));
                Ok(())
            }
            _ => self
                .write::<i64>(&key, redis::cmd("HDEL").arg(&key).arg(product_id.0).clone())
                .await
                .map(|_| ()),
        }
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
        let op_key = self.cart_op_key(owner, &format!("order:{order_id}"));
        match &self.backend {
            Backend::Memory(m) => {
                Self::mem(m, |map| {
                    if map.contains_key(&op_key) {
                        return;
                    }
                    let fields = HashMap::from([("r".to_string(), "1".to_string())]);
                    map.insert(op_key, Entry { fields, expires: Instant::now() + OP_TTL });
                    if let Some(e) = map.get_mut(&key) {
                        for &CartLine { product_id: pid, quantity: q } in lines {
                            let f = pid.to_string();
                            let cur: i64 = e.fields.get(&f).and_then(|v| v.parse().ok()).unwrap_or(0);
                            if cur - q <= 0 {
                                e.fields.remove(&f);
                            } else {
                                e.fields.insert(f, (cur - q).to_string());
                            }
                        }
                    }
                });
                Ok(())
            }
            _ => {
                let mut args = vec![OP_TTL.as_millis().to_string()];
                args.extend(lines.iter().flat_map(|l| [l.product_id.to_string(), l.quantity.to_string()]));
                let cmd = Self::eval(TAKE_SCRIPT, &[key.clone(), op_key], &args);
                self.write::<i64>(&key, cmd).await.map(|_| ())
            }
        }
    }

    pub async fn cart_clear(&self, owner: &(impl Display + Sync + ?Sized)) -> StoreResult<()> {
        self.del(&self.cart_key(owner)).await
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
        match &self.backend {
            Backend::Memory(m) => Ok(Self::mem(m, |map| {
                let e = map
                    .entry(key)
                    .or_insert_with(|| Entry { fields: HashMap::new(), expires: Instant::now() + window });
                let had = e.fields.get("n").and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
                let n = if had >= limit {
                    limit + 1
                } else {
                    e.fields.insert("n".into(), (had + 1).to_string());
                    had + 1
                };
                (n, e.expires.saturating_duration_since(Instant::now()))
            })),
            _ => {
                let args = [window.as_millis().to_string(), limit.to_string()];
                let (n, pttl): (i64, i64) = self.script(INCR_SCRIPT, &key, &args).await?;
                Ok((n, Duration::from_millis(pttl.max(0) as u64)))
            }
        }
    }

    /// Take back one counted event (never below zero; a key that expired stays gone).
    pub async fn count_undo(&self, name: &str) -> StoreResult<()> {
        let key = self.key("count", name);
        match &self.backend {
            Backend::Memory(m) => {
                Self::mem(m, |map| {
                    if let Some(e) = map.get_mut(&key) {
                        let n = e.fields.get("n").and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
                        e.fields.insert("n".into(), (n - 1).max(0).to_string());
                    }
                });
                Ok(())
            }
            _ => self.script::<i64>(UNCOUNT_SCRIPT, &key, &[]).await.map(|_| ()),
        }
    }

    pub async fn count_get(&self, name: &str) -> StoreResult<i64> {
        let h = self.hgetall(&self.key("count", name)).await?;
        Ok(h.get("n").and_then(|v| v.parse().ok()).unwrap_or(0))
    }

    pub async fn count_reset(&self, name: &str) -> StoreResult<()> {
        self.del(&self.key("count", name)).await
    }

    /// Reachability check for readiness.
    pub async fn ping(&self) -> Result<(), String> {
        match &self.backend {
            Backend::Memory(_) => Ok(()),
            _ => self.cmd::<String>(redis::cmd("PING")).await.map(|_| ()).map_err(|e| e.to_string()),
        }
    }
}

/// Connect to Redis. One URL: ask the node whether it is part of a cluster; several: a cluster's
/// seeds. `response` bounds the wait for one answer; `timeout` bounds connecting and, with the
/// client's own retries, a whole command.
async fn connect_redis(urls: &[String], timeout: Duration, response: Duration) -> anyhow::Result<Backend> {
    let cluster = if urls.len() > 1 {
        true
    } else {
        let client = redis::Client::open(urls[0].as_str())?;
        let cfg = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout));
        let mut c = client.get_multiplexed_async_connection_with_config(&cfg).await?;
        let info: String = redis::cmd("INFO").arg("cluster").query_async(&mut c).await?;
        info.contains("cluster_enabled:1")
    };
    if cluster {
        let client = redis::cluster::ClusterClientBuilder::new(urls.to_vec())
            .connection_timeout(timeout)
            .response_timeout(response)
            .overall_response_timeout(Some(timeout.max(response)))
            .retries(3)
            .min_retry_wait(20)
            .max_retry_wait(200)
            .build()?;
        Ok(Backend::Cluster(client.get_async_connection().await?))
    } else {
        let client = redis::Client::open(urls[0].as_str())?;
        let cfg = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(response.max(timeout)))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(200));
        Ok(Backend::Single(client.get_connection_manager_with_config(cfg).await?))
    }
}

/// The connections for writes that wait for a replica, of the same kind as the main one. An
/// answer to a write may take the `WAIT` timeout longer than any other.
async fn writer_pool(s: &Settings) -> anyhow::Result<deadpool::unmanaged::Pool<Backend>> {
    let n = s.redis_write_connections;
    let (timeout, response) = (s.store_timeout, s.store_timeout / 2 + s.redis_wait_timeout);
    let pool = deadpool::unmanaged::Pool::new(n);
    for _ in 0..n {
        let backend = tokio::time::timeout(timeout * 3, connect_redis(&s.redis_urls, timeout, response))
            .await
            .map_err(|_| anyhow::anyhow!("connecting a writer connection timed out"))??;
        pool.add(backend).await.map_err(|(_, e)| anyhow::anyhow!("writer pool: {e}"))?;
    }
    Ok(pool)
}

/// The Redis Cluster slot of a key (CRC16/XMODEM of the key or its `{hash tag}`, mod 16384).
pub fn key_slot(key: &[u8]) -> u16 {
    let tagged = key
        .iter()
        .position(|b| *b == b'{')
        .and_then(|open| {
            let rest = &key[open + 1..];
            rest.iter().position(|b| *b == b'}').filter(|close| *close > 0).map(|close| &rest[..close])
        })
        .unwrap_or(key);
    let mut crc: u16 = 0;
    for b in tagged {
        crc ^= u16::from(*b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
        }
    }
    crc % 16384
}

#[cfg(test)]
mod tests {
    use super::{key_slot, StoreError};
    use std::time::Duration;

    #[test]
    fn failover_answers_are_retried_script_errors_are_not() {
        use redis::{ErrorKind, RedisError, ServerErrorKind};
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
    fn slots_match_redis() {
        // Values from `redis-cli cluster keyslot`.
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"user:{a}"), key_slot(b"a"));
        assert_eq!(key_slot(b"{}x"), key_slot(b"{}x"));
        assert_eq!(key_slot(b"123456789"), 0x31C3, "the CRC16/XMODEM check value");
    }
}
