//! A replica that beats but fails requests: its share of 5xx answers, from its own `/metrics`,
//! against the other replicas' share over the same window. A bad deploy that passes its health
//! checks looks like this; the manager replaces such a replica with a fresh copy of a good one.

use std::{collections::HashMap, time::Duration};

use tokio::time::Instant;

use crate::{scale::Sample, supervisor::Manager};

/// Requests a replica must have answered in a window before its share counts.
const MIN_REQUESTS: f64 = 10.0;
/// Its share of 5xx at or above this…
const BAD_SHARE: f64 = 0.5;
/// …while the others' together stay below this.
const OTHERS_SHARE: f64 = 0.05;
/// Windows in a row.
const WINDOWS: u32 = 2;

/// Per replica: (requests, errors) in the window.
pub fn failing(window: &HashMap<String, (f64, f64)>) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    for (id, (req, err)) in window {
        if *req < MIN_REQUESTS || err / req < BAD_SHARE {
            continue;
        }
        let (oreq, oerr) =
            window.iter().filter(|(o, _)| *o != id).fold((0.0, 0.0), |(a, b), (_, (r, e))| (a + r, b + e));
        if oreq >= MIN_REQUESTS && oerr / oreq < OTHERS_SHARE {
            out.push((id.clone(), err / req));
        }
    }
    out
}

impl Manager {
    /// Every 2 s: scrape, compare, mark replicas failing for `WINDOWS` windows in a row (the
    /// judge acts on the mark, within the restart budget).
    pub async fn error_loop(self) {
        let client = match reqwest::Client::builder().timeout(Duration::from_secs(1)).build() {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "error watch: no HTTP client");
                return;
            }
        };
        let mut prev: HashMap<String, Sample> = HashMap::new();
        let mut streak: HashMap<String, u32> = HashMap::new();
        loop {
            tokio::time::sleep(Duration::from_secs(2)).await;
            let now = self.scrape(&client).await;
            let window: HashMap<String, (f64, f64)> = now
                .iter()
                .filter_map(|(id, s)| {
                    let p = prev.get(id).filter(|p| p.requests <= s.requests)?;
                    Some((id.clone(), (s.requests - p.requests, (s.errors - p.errors).max(0.0))))
                })
                .collect();
            prev = now;
            let bad = failing(&window);
            streak.retain(|id, _| bad.iter().any(|(b, _)| b == id));
            let at = Instant::now();
            let mut g = self.shared.lock();
            for t in g.replicas.values_mut() {
                t.error_share = window.get(&t.c.id).filter(|(r, _)| *r > 0.0).map(|(r, e)| e / r);
            }
            for (id, share) in bad {
                let n = streak.entry(id.clone()).or_default();
                *n += 1;
                if *n >= WINDOWS {
                    if let Some(t) = g.replicas.get_mut(&id) {
                        if t.failing_since.is_none() {
                            tracing::warn!(replica = %t.c.name, share_5xx = share, "replica fails its requests while the others do not");
                            t.failing_since = Some(at);
                        }
                    }
                }
            }
            for t in g.replicas.values_mut() {
                if !streak.contains_key(&t.c.id) {
                    t.failing_since = None;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_replica_failing_alone_is_found() {
        let w: HashMap<String, (f64, f64)> =
            [("a".into(), (40.0, 40.0)), ("b".into(), (40.0, 0.0)), ("c".into(), (40.0, 1.0))].into();
        let f = failing(&w);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].0, "a");
    }

    #[test]
    fn everyone_failing_or_too_little_traffic_is_not_a_replica_problem() {
        let all: HashMap<String, (f64, f64)> =
            [("a".into(), (40.0, 40.0)), ("b".into(), (40.0, 30.0))].into();
        assert!(failing(&all).is_empty());
        let few: HashMap<String, (f64, f64)> = [("a".into(), (5.0, 5.0)), ("b".into(), (40.0, 0.0))].into();
        assert!(failing(&few).is_empty());
        let alone: HashMap<String, (f64, f64)> = [("a".into(), (40.0, 40.0))].into();
        assert!(failing(&alone).is_empty());
    }
}
