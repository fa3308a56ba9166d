//! The shop's one back-off: every retry (database reads and transactions, session-store calls)
//! pauses by the same policy and stops at a time budget rather than a count.
//!
//! The policy is `backon`'s exponential back-off: 25 ms doubling to at most 400 ms, with full
//! jitter on top (a pause of `d` becomes `d..2d`) so replicas that lost the same node do not come
//! back in lockstep. The loop is ours because the budget is wall time *including* the attempts
//! (a failover takes seconds whatever the count), which `backon`'s `total_delay` does not count.

use std::{future::Future, time::Duration};

use backon::{BackoffBuilder, ExponentialBuilder};

/// The pauses between attempts, without end (the budget ends them).
pub fn backoff() -> impl Iterator<Item = Duration> {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(25))
        .with_max_delay(Duration::from_millis(400))
        .with_jitter()
        .without_max_times()
        .build()
}

/// Run `f` again while its error is `retryable`, pausing by [`backoff`], for as long as the next
/// attempt would still start within `budget` of the first; then the last error. `on_retry` sees
/// each error that is retried (attempt number from 0), for the log and the metrics.
pub async fn within<T, E, F, Fut>(
    budget: Duration,
    retryable: impl Fn(&E) -> bool,
    mut on_retry: impl FnMut(u32, &E),
    mut f: F,
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    // tokio's clock: the same as std's in the shop, a paused one in the tests
    let start = tokio::time::Instant::now();
    let mut pauses = backoff();
    let mut attempt = 0u32;
    loop {
        match f().await {
            Err(e) if retryable(&e) => {
                let pause = pauses.next().unwrap_or(Duration::from_millis(400));
                if start.elapsed() + pause >= budget {
                    return Err(e);
                }
                on_retry(attempt, &e);
                tokio::time::sleep(pause).await;
                attempt += 1;
            }
            r => return r,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_grow_are_capped_and_jittered() {
        let mut base = 25u64;
        for (attempt, pause) in backoff().take(20).enumerate() {
            let d = pause.as_millis() as u64;
            assert!((base..2 * base).contains(&d), "{attempt}: {d} ms (base {base})");
            base = (base * 2).min(400);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn retries_within_the_budget_then_gives_the_last_error() {
        let mut calls = 0;
        let mut seen = Vec::new();
        let r: Result<(), u32> = within(
            Duration::from_millis(300),
            |e| *e < 100,
            |attempt, e| seen.push((attempt, *e)),
            || {
                calls += 1;
                let n = calls;
                async move { Err(n) }
            },
        )
        .await;
        // on tokio's paused clock only the pauses take time: 25..50, 50..100, 100..200 ms, then
        // the fourth pause (200..400 ms) never fits into 300 ms
        assert!((3..=4).contains(&calls), "{calls} calls");
        assert_eq!(r, Err(calls));
        assert_eq!(seen.len() as u32, calls - 1);
        assert_eq!(seen[0], (0, 1));
    }

    #[tokio::test]
    async fn an_error_that_is_not_retryable_ends_at_once() {
        let mut calls = 0;
        let r: Result<(), u32> = within(
            Duration::from_secs(5),
            |e| *e < 100,
            |_, _| (),
            || {
                calls += 1;
                async { Err(100) }
            },
        )
        .await;
        assert_eq!((calls, r), (1, Err(100)));
    }

    #[tokio::test]
    async fn success_after_a_retry_is_success() {
        let mut calls = 0;
        let r: Result<u32, u32> = within(
            Duration::from_secs(5),
            |_| true,
            |_, _| (),
            || {
                calls += 1;
                let n = calls;
                async move {
                    if n < 2 {
                        Err(n)
                    } else {
                        Ok(n)
                    }
                }
            },
        )
        .await;
        assert_eq!(r, Ok(2));
    }
}
