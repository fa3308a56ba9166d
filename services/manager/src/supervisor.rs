//! The loops: discovery (Docker, every `discover_every`), one heartbeat watcher per replica, and
//! the judge (every 100 ms) that restarts what is silent or unhealthy, within the budget.

use std::{collections::BTreeSet, sync::Arc, time::Duration};

use tokio::time::Instant;

use crate::{
    beat,
    config::Config,
    docker::Engine,
    state::{decide, Shared, Tracked, Verdict},
};

#[derive(Clone)]
pub struct Manager {
    pub cfg: Arc<Config>,
    pub engine: Engine,
    pub shared: Arc<Shared>,
}

impl Manager {
    /// Brings the tracked set in line with Docker's list; starts and stops watchers.
    pub async fn discover(&self) {
        let (list, stopped): (Vec<_>, Vec<_>) = match self.engine.all_replicas().await {
            Ok(l) => l.into_iter().partition(|c| c.is_up()),
            Err(e) => {
                let msg = format!("{e:#}");
                let mut g = self.shared.lock();
                if g.docker_error.as_deref() != Some(&msg) {
                    tracing::warn!(error = %msg, "cannot list the replicas");
                }
                g.docker_error = Some(msg);
                return;
            }
        };
        let now = Instant::now();
        let mut g = self.shared.lock();
        g.docker_error = None;
        g.stopped = stopped;
        let seen: BTreeSet<String> = list.iter().map(|c| c.id.clone()).collect();
        let gone: Vec<String> = g.replicas.keys().filter(|id| !seen.contains(*id)).cloned().collect();
        for id in gone {
            if let Some(t) = g.replicas.remove(&id) {
                if let Some(w) = t.watcher {
                    w.abort();
                }
                tracing::info!(replica = %t.c.name, "replica gone");
            }
        }
        for c in list {
            let t = g.replicas.entry(c.id.clone()).or_insert_with(|| {
                tracing::info!(replica = %c.name, ip = ?c.ip, state = %c.state, "replica found");
                Tracked {
                    c: c.clone(),
                    since: now,
                    last_beat: None,
                    status: None,
                    status_since: now,
                    beats: 0,
                    error_share: None,
                    failing_since: None,
                    action: None,
                    restarts: 0,
                    watcher: None,
                    watched_ip: None,
                }
            });
            if t.c.health != c.health {
                tracing::info!(replica = %c.name, from = ?t.c.health, to = ?c.health, "docker health changed");
            }
            t.c = c;
            // a new address (restart, reconnect): a new stream
            if t.watched_ip != t.c.ip {
                if let Some(w) = t.watcher.take() {
                    w.abort();
                }
                if let Some(ip) = t.c.ip.clone() {
                    let h = tokio::spawn(beat::watch(
                        self.shared.clone(),
                        t.c.id.clone(),
                        ip.clone(),
                        self.cfg.replica_port,
                        self.cfg.beat_interval,
                        self.cfg.dead_after(),
                    ));
                    t.watcher = Some(h.abort_handle());
                }
                t.watched_ip = t.c.ip.clone();
            }
        }
    }

    pub async fn discovery_loop(self) {
        loop {
            self.discover().await;
            tokio::time::sleep(self.cfg.discover_every).await;
        }
    }

    /// Every 100 ms: what is silent or unhealthy gets restarted (in its own task).
    pub async fn judge_loop(self) {
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let now = Instant::now();
            let todo = {
                let mut g = self.shared.lock();
                // an action whose replica never beat again is given up after the start grace
                for t in g.replicas.values_mut() {
                    if let Some((what, when)) = &t.action {
                        if now.saturating_duration_since(*when)
                            > self.cfg.start_grace + Duration::from_secs(5)
                        {
                            tracing::warn!(replica = %t.c.name, action = %what, "no beat since the action: judging it again");
                            t.action = None;
                        }
                    }
                }
                let todo = decide(now, &self.cfg, &g.replicas);
                for (id, _) in &todo {
                    if let Some(t) = g.replicas.get_mut(id) {
                        t.action = Some(("restarting".into(), now));
                    }
                }
                todo.into_iter()
                    .filter_map(|(id, v)| {
                        g.replicas.get(&id).map(|t| (id, t.c.name.clone(), t.c.state.clone(), v))
                    })
                    .collect::<Vec<_>>()
            };
            for (id, name, docker_state, verdict) in todo {
                let m = self.clone();
                tokio::spawn(async move { m.replace(id, name, docker_state, verdict).await });
            }
        }
    }

    /// Restart one replica: SIGKILL at once when it is silent (a frozen process cannot take
    /// SIGTERM; the kill resets its connections, so nginx retries them elsewhere at once and its
    /// DNS name stops resolving to it), a short grace when it is merely unhealthy. Docker starts
    /// it again in place (same container, same name); Swarm replaces a killed task.
    async fn replace(&self, id: String, name: String, docker_state: String, verdict: Verdict) {
        let (reason, grace) = match &verdict {
            Verdict::Silent(d) => (
                format!(
                    "no heartbeat for {} ms (limit {} ms = {} missed beats of {} ms); docker says {docker_state}",
                    d.as_millis(),
                    self.cfg.dead_after().as_millis(),
                    self.cfg.missed_beats,
                    self.cfg.beat_interval.as_millis()
                ),
                Duration::ZERO,
            ),
            Verdict::Unhealthy => ("Docker reports it unhealthy".to_string(), Duration::from_secs(2)),
            Verdict::Failing => {
                let share = self.shared.lock().replicas.get(&id).and_then(|t| t.error_share).unwrap_or(1.0);
                (
                    format!(
                        "{:.0} % of its answers were 5xx for two windows of 2 s while the other replicas' stayed under 5 %",
                        share * 100.0
                    ),
                    Duration::from_secs(10),
                )
            }
            Verdict::Unavailable(d) => (
                format!(
                    "its heartbeat has said its backends are unavailable for {} ms while other replicas' work",
                    d.as_millis()
                ),
                Duration::from_secs(2),
            ),
            _ => return,
        };
        let t0 = Instant::now();
        let (action, result) = if verdict == Verdict::Failing && self.engine.can_scale() {
            // a restart keeps what is wrong with it (its config, its image): a fresh copy of a
            // replica that works takes its place, then it is drained and removed
            tracing::warn!(replica = %name, reason = %reason, "replica fails its requests: replacing it");
            ("replace", self.replace_with_copy(&id).await)
        } else if self.engine.can_scale() {
            tracing::warn!(replica = %name, reason = %reason, "replica declared dead: restarting it");
            ("restart", self.engine.restart(&id, grace).await)
        } else {
            tracing::warn!(replica = %name, reason = %reason, "replica declared dead: killing it for Swarm to replace");
            ("kill-for-replacement", self.engine.kill(&id).await)
        };
        let outcome = match &result {
            Ok(()) => "ok".to_string(),
            Err(e) => format!("error: {e:#}"),
        };
        self.shared.record(action, &name, &reason, &outcome, t0.elapsed());
        let mut g = self.shared.lock();
        if let Some(t) = g.replicas.get_mut(&id) {
            if result.is_ok() {
                t.restarts += 1;
                // the start grace counts again from now; the action ends with the first new beat
                t.since = Instant::now();
                t.status = None;
                t.status_since = t.since;
                t.action = Some((action.to_string(), t.since));
            } else {
                t.action = None;
            }
        }
    }

    /// A fresh replica copied from a healthy one, then the given one drained and removed.
    async fn replace_with_copy(&self, id: &str) -> anyhow::Result<()> {
        let list = self.engine.replicas().await?;
        let template = {
            let g = self.shared.lock();
            list.iter()
                .find(|c| {
                    c.id != id
                        && c.state == "running"
                        && g.replicas
                            .get(&c.id)
                            .is_some_and(|t| t.failing_since.is_none() && t.status.as_deref() == Some("OK"))
                })
                .cloned()
        };
        let Some(template) = template else {
            anyhow::bail!("no working replica to copy");
        };
        let next = list.iter().map(|c| c.number).max().unwrap_or(0) + 1;
        let name = self.engine.clone_replica(&template, next).await?;
        tracing::info!(new = %name, copied_from = %template.name, "replacement started");
        self.engine.stop_and_remove(id, Duration::from_secs(10)).await
    }
}
