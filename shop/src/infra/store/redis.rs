//! The session store in Redis: a Redis Cluster, or one Redis.
//!
//! One shared multiplexed connection (cluster-aware: follows MOVED/ASK, reconnects, bounded
//! retries) for reads and unacknowledged writes, explicit connect and response timeouts, and an
//! outer deadline on every call; a call that fails for a reason another attempt may cure is
//! retried with the shop's one back-off (`infra::retry`) within `SHOP_STORE_RETRY_MS`. Writes
//! that wait for a replica go over a small pool of their own connections, one write per
//! connection at a time: `WAIT` blocks the connection it is sent on, and on a shared multiplexed
//! connection every command behind it would queue (see [`RedisStore::write`]).
//!
//! The read-modify-write steps are the Lua scripts in `lua/`, each on keys of one slot, sent as
//! plain `EVAL` so they can be pipelined with `WAIT`.

use std::{collections::HashMap, time::Duration};

use redis::{
    aio::ConnectionManager,
    cluster_async::ClusterConnection,
    cluster_routing::{Route, SingleNodeRoutingInfo, Slot, SlotAddr},
    Cmd, FromRedisValue,
};

use super::{cart_lines, Backend, CartAdd, LineAdd, StoreError, StoreResult, OP_TTL};
use crate::{
    domain::{CartLine, ProductId},
    settings::Settings,
};

/// How long the operation key the shop makes for an add without one (so that its own retries
/// cannot add twice) is remembered: longer than any retry budget.
const INTERNAL_OP_TTL: Duration = Duration::from_secs(120);

// What each script takes and answers is at the top of its file.
const ADD_SCRIPT: &str = include_str!("lua/cart_add.lua");
const TAKE_SCRIPT: &str = include_str!("lua/cart_take.lua");
const PUT_SCRIPT: &str = include_str!("lua/hash_put.lua");
const SET_EXISTING_SCRIPT: &str = include_str!("lua/hash_set_existing.lua");
const SET_LINE_SCRIPT: &str = include_str!("lua/cart_set.lua");
const SET_ADD_SCRIPT: &str = include_str!("lua/set_add.lua");
const INCR_SCRIPT: &str = include_str!("lua/count_event.lua");
const UNCOUNT_SCRIPT: &str = include_str!("lua/count_undo.lua");

/// A connection: cluster-aware, or to one Redis (which reconnects by itself).
#[derive(Clone)]
enum Conn {
    Cluster(ClusterConnection),
    Single(ConnectionManager),
}

#[derive(Clone)]
pub struct RedisStore {
    conn: Conn,
    /// The deadline of one attempt (`SHOP_STORE_TIMEOUT_MS`).
    timeout: Duration,
    /// How long one call keeps retrying before it fails (`SHOP_STORE_RETRY_MS`).
    retry_budget: Duration,
    /// How session and cart writes wait for a replica; `None` when they do not.
    acked: Option<AckedWrites>,
    /// The nodes (`SHOP_REDIS_URLS`), for the product-change subscription.
    urls: std::sync::Arc<[String]>,
}

/// How often the product-change subscription asks its node for a sign of life.
const WATCH_PING_EVERY: Duration = Duration::from_secs(1);
/// How long the subscription waits between attempts while it has no node.
const WATCH_RETRY_EVERY: Duration = Duration::from_millis(500);

/// Writes acknowledged by replicas (Redis `WAIT`) before we answer.
#[derive(Clone)]
struct AckedWrites {
    /// Replicas that must acknowledge (`SHOP_REDIS_WAIT_REPLICAS`).
    replicas: u32,
    /// How long to wait for them (`SHOP_REDIS_WAIT_TIMEOUT_MS`).
    timeout: Duration,
    /// Connections of their own (`SHOP_REDIS_WRITE_CONNECTIONS`), one write each at a time.
    pool: deadpool::unmanaged::Pool<Conn>,
}

/// A Lua script on keys that all live in one slot, as a plain `EVAL` (so it can be pipelined).
fn eval(src: &str, keys: &[String], args: &[String]) -> Cmd {
    let mut c = redis::cmd("EVAL");
    c.arg(src).arg(keys.len()).arg(keys).arg(args);
    c
}

impl RedisStore {
    /// Connect from settings (`SHOP_REDIS_URLS` set), retrying for about 30 s while Redis starts.
    pub async fn connect(s: &Settings) -> anyhow::Result<Self> {
        let mut last = String::new();
        for attempt in 1..=30 {
            match Self::try_connect(s).await {
                Ok(store) => return Ok(store),
                Err(e) => last = e.to_string(),
            }
            tracing::warn!(attempt, error = %last, "session store not reachable yet");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        anyhow::bail!("could not connect to Redis: {last}")
    }

    async fn try_connect(s: &Settings) -> anyhow::Result<Self> {
        let conn = tokio::time::timeout(
            s.store_timeout * 3,
            connect_redis(&s.redis_urls, s.store_timeout, s.store_timeout / 2),
        )
        .await
        .map_err(|_| anyhow::anyhow!("connect timed out"))??;
        let default_wait = if matches!(conn, Conn::Cluster(_)) { 1 } else { 0 };
        let replicas = s.redis_wait_replicas.unwrap_or(default_wait);
        let acked = if replicas > 0 {
            Some(AckedWrites { replicas, timeout: s.redis_wait_timeout, pool: writer_pool(s).await? })
        } else {
            None
        };
        Ok(RedisStore {
            conn,
            timeout: s.store_timeout,
            retry_budget: s.store_retry,
            acked,
            urls: s.redis_urls.clone().into(),
        })
    }

    /// Run `f` again while it fails for a reason that another attempt may cure (see
    /// [`StoreError::is_retryable`]), with the shared back-off, within the retry budget. Every
    /// call that goes through here is safe to repeat: reads, writes that set a value, and
    /// increments that carry an operation key (see `cart_add`, `cart_take`).
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
            match &self.conn {
                Conn::Cluster(c) => cmd.query_async(&mut c.clone()).await,
                Conn::Single(c) => cmd.query_async(&mut c.clone()).await,
            }
        };
        match tokio::time::timeout(self.timeout, fut).await {
            Ok(r) => Ok(r?),
            Err(_) => Err(StoreError::Timeout(self.timeout)),
        }
    }

    async fn script<T: FromRedisValue>(&self, src: &str, key: &str, args: &[String]) -> StoreResult<T> {
        self.cmd(eval(src, &[key.to_string()], args)).await
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
                Conn::Cluster(c) => {
                    // the key's master: the same node as the write, wherever the cluster put it
                    let route = SingleNodeRoutingInfo::SpecificNode(Route::with_key(key, SlotAddr::Master));
                    c.clone().route_pipeline(p, 0, 2, route).await?
                }
                Conn::Single(c) => p.query_async::<Vec<redis::Value>>(&mut c.clone()).await?,
            };
            let mut it = values.into_iter();
            let (first, acked_by) = (it.next(), it.next());
            let acked_by: i64 = acked_by.and_then(|v| i64::from_redis_value(v).ok()).unwrap_or(0);
            if acked_by < i64::from(acked.replicas) {
                crate::infra::metrics::record_unreplicated_write();
                tracing::warn!(
                    key.slot = ?Slot::for_key(key),
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
}

impl RedisStore {
    /// `PUBLISH` on the connection of everything else (Redis Cluster passes it to every node).
    pub async fn publish(&self, channel: &str, payload: &str) -> StoreResult<()> {
        self.cmd::<i64>(redis::cmd("PUBLISH").arg(channel).arg(payload).clone()).await.map(|_| ())
    }

    /// See [`super::Store::watch_product_changes`].
    pub fn watch(&self, channel: String) -> tokio::sync::mpsc::UnboundedReceiver<super::ProductNews> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let (urls, timeout) = (self.urls.clone(), self.timeout);
        tokio::spawn(async move {
            // while it has no subscription: since when (logged when it begins and ends, not at
            // every attempt)
            let mut down: Option<std::time::Instant> = None;
            // node after node: any one hears every message of a cluster
            for url in urls.iter().cycle() {
                let node = crate::settings::redact_url(url);
                let ended = match subscribe(url, &channel, timeout).await {
                    Ok(pubsub) => {
                        match down.take() {
                            Some(t) => {
                                tracing::warn!(%node, down_ms = t.elapsed().as_millis() as u64, "listening for product changes again")
                            }
                            None => tracing::info!(%node, "listening for product changes"),
                        }
                        if tx.send(super::ProductNews::Unknown).is_err() {
                            return;
                        }
                        listen(pubsub, &tx, timeout).await
                    }
                    Err(e) => e,
                };
                if tx.is_closed() {
                    return;
                }
                if down.is_none() {
                    down = Some(std::time::Instant::now());
                    tracing::warn!(%node, error = %ended, "product-change subscription lost: every product is reread until it is back");
                } else {
                    tracing::debug!(%node, error = %ended, "no product-change subscription yet");
                }
                // nothing heard meanwhile: every product cached now may be stale
                if tx.send(super::ProductNews::Unknown).is_err() {
                    return;
                }
                tokio::time::sleep(WATCH_RETRY_EVERY).await;
            }
        });
        rx
    }
}

/// A subscription to `channel` on the node at `url`, within `timeout`.
async fn subscribe(url: &str, channel: &str, timeout: Duration) -> Result<redis::aio::PubSub, String> {
    let client = redis::Client::open(url).map_err(|e| e.to_string())?;
    let fut = async {
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.subscribe(channel).await?;
        Ok::<_, redis::RedisError>(pubsub)
    };
    match tokio::time::timeout(timeout, fut).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(_) => Err(format!("no subscription within {timeout:?}")),
    }
}

/// Pass on what the subscription hears until its node stops answering; why it stopped.
async fn listen(
    pubsub: redis::aio::PubSub,
    tx: &tokio::sync::mpsc::UnboundedSender<super::ProductNews>,
    timeout: Duration,
) -> String {
    use futures_util::StreamExt;
    let (mut sink, mut stream) = pubsub.split();
    let mut ping = tokio::time::interval(WATCH_PING_EVERY);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            msg = stream.next() => match msg {
                Some(m) => {
                    if tx.send(super::ProductNews::parse(m.get_payload_bytes())).is_err() {
                        return "the shop stopped listening".into();
                    }
                }
                None => return "the connection closed".into(),
            },
            _ = ping.tick() => match tokio::time::timeout(timeout, sink.ping::<redis::Value>()).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return format!("ping failed: {e}"),
                Err(_) => return format!("no answer to a ping within {timeout:?}"),
            },
            _ = tx.closed() => return "the shop stopped listening".into(),
        }
    }
}

impl Backend for RedisStore {
    fn kind(&self) -> &'static str {
        match self.conn {
            Conn::Cluster(_) => "redis-cluster",
            Conn::Single(_) => "redis",
        }
    }

    async fn ping(&self) -> StoreResult<()> {
        self.cmd::<String>(redis::cmd("PING")).await.map(|_| ())
    }

    async fn hash_get(&self, key: &str) -> StoreResult<HashMap<String, String>> {
        self.cmd(redis::cmd("HGETALL").arg(key).clone()).await
    }

    async fn hash_put(&self, key: &str, fields: &[(&str, String)], ttl: Duration) -> StoreResult<()> {
        let mut args = vec![ttl.as_millis().to_string()];
        for (k, v) in fields {
            args.push(k.to_string());
            args.push(v.clone());
        }
        self.write::<i64>(key, eval(PUT_SCRIPT, &[key.to_string()], &args)).await.map(|_| ())
    }

    async fn hash_set_existing(&self, key: &str, field: &str, value: &str) -> StoreResult<()> {
        let cmd = eval(SET_EXISTING_SCRIPT, &[key.to_string()], &[field.to_string(), value.to_string()]);
        self.write::<i64>(key, cmd).await.map(|_| ())
    }

    async fn delete(&self, key: &str) -> StoreResult<()> {
        self.write::<i64>(key, redis::cmd("DEL").arg(key).clone()).await.map(|_| ())
    }

    async fn set_add(&self, key: &str, member: &str, ttl: Duration) -> StoreResult<()> {
        let args = [ttl.as_millis().to_string(), member.to_string()];
        self.write::<i64>(key, eval(SET_ADD_SCRIPT, &[key.to_string()], &args)).await.map(|_| ())
    }

    async fn set_members(&self, key: &str) -> StoreResult<Vec<String>> {
        self.cmd(redis::cmd("SMEMBERS").arg(key).clone()).await
    }

    async fn set_remove(&self, key: &str, member: &str) -> StoreResult<()> {
        self.write::<i64>(key, redis::cmd("SREM").arg(key).arg(member).clone()).await.map(|_| ())
    }

    async fn cart_add(
        &self,
        key: &str,
        add: LineAdd,
        op_key: Option<String>,
    ) -> StoreResult<(CartAdd, Vec<CartLine>)> {
        // Without a client's key the add still gets one of its own, so that a retry of this call
        // (the master failed over before it answered) cannot add twice.
        let (op_key, op_ttl) = match op_key {
            Some(k) => (k, OP_TTL),
            None => (super::op_key(key, &format!("~{:016x}", rand::random::<u64>())), INTERNAL_OP_TTL),
        };
        let args = [
            add.product_id.to_string(),
            add.delta.to_string(),
            add.max.to_string(),
            add.ttl.as_millis().to_string(),
            if add.clamp { "1".into() } else { "0".into() },
            op_ttl.as_millis().to_string(),
        ];
        let cmd = eval(ADD_SCRIPT, &[key.to_string(), op_key], &args);
        let (ok, n, _replayed, cart): (i64, i64, i64, HashMap<String, String>) = self.write(key, cmd).await?;
        let outcome = if ok == 1 { CartAdd::Added(n.max(0)) } else { CartAdd::OverLimit(n) };
        Ok((outcome, cart_lines(cart)))
    }

    async fn cart_set(
        &self,
        key: &str,
        product_id: ProductId,
        quantity: i64,
        ttl: Duration,
    ) -> StoreResult<Vec<CartLine>> {
        let args = [product_id.to_string(), quantity.to_string(), ttl.as_millis().to_string()];
        let cmd = eval(SET_LINE_SCRIPT, &[key.to_string()], &args);
        self.write::<HashMap<String, String>>(key, cmd).await.map(cart_lines)
    }

    async fn cart_remove(&self, key: &str, product_id: ProductId) -> StoreResult<()> {
        self.write::<i64>(key, redis::cmd("HDEL").arg(key).arg(product_id.0).clone()).await.map(|_| ())
    }

    async fn cart_take(&self, key: &str, op_key: &str, lines: &[CartLine]) -> StoreResult<()> {
        let mut args = vec![OP_TTL.as_millis().to_string()];
        args.extend(lines.iter().flat_map(|l| [l.product_id.to_string(), l.quantity.to_string()]));
        let cmd = eval(TAKE_SCRIPT, &[key.to_string(), op_key.to_string()], &args);
        self.write::<i64>(key, cmd).await.map(|_| ())
    }

    async fn count_event(&self, key: &str, window: Duration, limit: i64) -> StoreResult<(i64, Duration)> {
        let args = [window.as_millis().to_string(), limit.to_string()];
        let (n, pttl): (i64, i64) = self.script(INCR_SCRIPT, key, &args).await?;
        Ok((n, Duration::from_millis(pttl.max(0) as u64)))
    }

    async fn count_undo(&self, key: &str) -> StoreResult<()> {
        self.script::<i64>(UNCOUNT_SCRIPT, key, &[]).await.map(|_| ())
    }
}

/// Connect to Redis. One URL: ask the node whether it is part of a cluster; several: a cluster's
/// seeds. `response` bounds the wait for one answer; `timeout` bounds connecting and, with the
/// client's own retries, a whole command.
async fn connect_redis(urls: &[String], timeout: Duration, response: Duration) -> anyhow::Result<Conn> {
    let first = urls.first().ok_or_else(|| anyhow::anyhow!("no Redis URL"))?;
    let cluster = if urls.len() > 1 {
        true
    } else {
        let client = redis::Client::open(first.as_str())?;
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
        Ok(Conn::Cluster(client.get_async_connection().await?))
    } else {
        let client = redis::Client::open(first.as_str())?;
        let cfg = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(response.max(timeout)))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(200));
        Ok(Conn::Single(client.get_connection_manager_with_config(cfg).await?))
    }
}

/// The connections for writes that wait for a replica, of the same kind as the main one. An
/// answer to a write may take the `WAIT` timeout longer than any other.
async fn writer_pool(s: &Settings) -> anyhow::Result<deadpool::unmanaged::Pool<Conn>> {
    let n = s.redis_write_connections;
    let (timeout, response) = (s.store_timeout, s.store_timeout / 2 + s.redis_wait_timeout);
    let pool = deadpool::unmanaged::Pool::new(n);
    for _ in 0..n {
        let conn = tokio::time::timeout(timeout * 3, connect_redis(&s.redis_urls, timeout, response))
            .await
            .map_err(|_| anyhow::anyhow!("connecting a writer connection timed out"))??;
        pool.add(conn).await.map_err(|(_, e)| anyhow::anyhow!("writer pool: {e}"))?;
    }
    Ok(pool)
}
