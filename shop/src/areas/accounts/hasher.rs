//! Password hashing (argon2id) on a small pool of its own, with admission control.

use std::{sync::LazyLock, time::Duration};

use argon2::{
    password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString},
    Argon2,
};

use crate::error::AppError;

/// Password hashing runs on a few dedicated threads, never on the request's.
///
/// Argon2id (default parameters) works in 19 MiB of memory per hash. On the general blocking
/// pool every concurrent login ran on a thread of its own, and the allocator kept each thread's
/// 19 MiB around: a replica under 40 simulated shoppers grew from 15 MB to 2.2 GB in three
/// minutes. One thread per core (at most 4) bounds both the CPU and the memory.
///
/// Under a flood of logins the pool answers at once instead of queueing (hand-rolled: a pool
/// with two lanes and per-client admission, which no crate we found offers):
/// * each client address may have [`Settings::hash_per_client`] checks queued or running; more
///   is a 429 (a single flooder cannot fill the queue);
/// * the queue holds a few checks per thread (well under a second of work); a full queue is a
///   503 with `Retry-After`, and a check that still waited [`MAX_QUEUE_WAIT`] is dropped (503);
/// * logins from a device that logged in to the account before go in a lane of their own that
///   the threads serve first, so a real shopper gets through while unknown clients flood.
///
/// [`Settings::hash_per_client`]: crate::settings::Settings::hash_per_client
struct HashPool {
    lanes: std::sync::Mutex<[std::collections::VecDeque<HashJob>; 2]>,
    ready: std::sync::Condvar,
    per_lane: usize,
    in_flight: std::sync::Mutex<std::collections::HashMap<String, usize>>,
}

struct HashJob {
    queued: std::time::Instant,
    run: Box<dyn FnOnce() + Send + 'static>,
}

/// Which lane of the [`HashPool`] a check waits in.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// A login from a device that logged in to this account before: served first.
    KnownDevice,
    /// Everything else.
    Other,
}

const MAX_QUEUE_WAIT: Duration = Duration::from_secs(2);

static HASHER: LazyLock<Option<std::sync::Arc<HashPool>>> = LazyLock::new(|| {
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).min(4);
    let pool = std::sync::Arc::new(HashPool {
        lanes: Default::default(),
        ready: std::sync::Condvar::new(),
        per_lane: threads * 8,
        in_flight: Default::default(),
    });
    for i in 0..threads {
        let pool = pool.clone();
        let spawned = std::thread::Builder::new().name(format!("password-hash-{i}")).spawn(move || loop {
            let job = {
                let mut lanes = pool.lanes.lock().unwrap_or_else(|p| p.into_inner());
                loop {
                    if let Some(job) = lanes[0].pop_front().or_else(|| lanes[1].pop_front()) {
                        break job;
                    }
                    lanes = pool.ready.wait(lanes).unwrap_or_else(|p| p.into_inner());
                }
            };
            // waited too long: its client has been told nothing yet, and dropping the job
            // answers it 503 now rather than a login that arrives after the client gave up
            if job.queued.elapsed() <= MAX_QUEUE_WAIT {
                (job.run)();
            }
        });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "could not start a password-hashing thread");
            return None;
        }
    }
    Some(pool)
});

/// One client's place among the checks in flight; given back when dropped (also when the
/// request is abandoned).
struct Admission<'a> {
    pool: &'a HashPool,
    client: Option<String>,
}

impl Drop for Admission<'_> {
    fn drop(&mut self) {
        if let Some(c) = &self.client {
            let mut m = self.pool.in_flight.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(n) = m.get_mut(c) {
                *n -= 1;
                if *n == 0 {
                    m.remove(c);
                }
            }
        }
    }
}

/// Run `f` on the hashing threads. `client`: the address and its limit of checks at once
/// (`None`: not a client's request, e.g. seeding).
pub(super) async fn on_hasher<T: Send + 'static>(
    lane: Lane,
    client: Option<(String, usize)>,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, AppError> {
    let pool = HASHER
        .as_ref()
        .ok_or_else(|| AppError::Unexpected(anyhow::anyhow!("no password-hashing threads")))?;
    // the admission goes with the job: given back when the hash has run or the job is dropped,
    // not when the request is (a client that hangs up does not free its place early)
    let admission = match client {
        Some((addr, limit)) => {
            let mut m = pool.in_flight.lock().unwrap_or_else(|p| p.into_inner());
            let n = m.entry(addr.clone()).or_default();
            // both lanes: a flood of known-device logins from one address is refused too
            if *n >= limit {
                return Err(AppError::TooManyRequests(
                    "too many password checks from your address at the same moment; retry in a second".into(),
                    1,
                ));
            }
            *n += 1;
            Admission { pool, client: Some(addr) }
        }
        None => Admission { pool, client: None },
    };
    let (tx, rx) = tokio::sync::oneshot::channel();
    {
        let mut lanes = pool.lanes.lock().unwrap_or_else(|p| p.into_inner());
        let queue = &mut lanes[if lane == Lane::KnownDevice { 0 } else { 1 }];
        if queue.len() >= pool.per_lane {
            return Err(AppError::Unavailable("too many logins at the same moment, please retry".into()));
        }
        queue.push_back(HashJob {
            queued: std::time::Instant::now(),
            run: Box::new(move || {
                // the request is gone (client left, or timed out): no hash for nobody
                if tx.is_closed() {
                    return;
                }
                let result = f();
                // the place is free before the answer goes out: the client's next request
                // must find it free
                drop(admission);
                drop(tx.send(result));
            }),
        });
    }
    pool.ready.notify_one();
    rx.await.map_err(|_| AppError::Unavailable("too many logins at the same moment, please retry".into()))
}

/// Hash a password (seeding, admin tools: no client to admit).
pub async fn hash_password(password: String) -> Result<String, AppError> {
    hash_password_for(None, password).await
}

pub(super) async fn hash_password_for(
    client: Option<(String, usize)>,
    password: String,
) -> Result<String, AppError> {
    on_hasher(Lane::Other, client, move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default().hash_password(password.as_bytes(), &salt).map(|h| h.to_string())
    })
    .await?
    .map_err(|e| AppError::Unexpected(anyhow::anyhow!("hashing: {e}")))
}

/// A hash to verify against when the account does not exist, so timing does not tell.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default().hash_password(b"not-a-real-password", &salt).map(|h| h.to_string()).unwrap_or_default()
});

pub(super) async fn verify_password(
    lane: Lane,
    client: (String, usize),
    password: String,
    hash: Option<String>,
) -> Result<bool, AppError> {
    on_hasher(lane, Some(client), move || {
        let hash = hash.unwrap_or_else(|| DUMMY_HASH.clone());
        PasswordHash::new(&hash)
            .map(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
            .unwrap_or(false)
    })
    .await
}
