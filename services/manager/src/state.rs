//! What the manager knows (replicas, their last beat, the actions it took) and the pure decision
//! of what to do about it. Nothing here must survive a restart of the manager: it is rebuilt
//! from Docker and the heartbeats within a second.

use std::{
    collections::{BTreeMap, VecDeque},
    fmt::Write,
    sync::Mutex,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use serde::Serialize;
use serde_json::json;
use tokio::time::Instant;

use crate::{config::Config, docker::Container};

/// A replica as tracked between discoveries.
#[derive(Debug)]
pub struct Tracked {
    pub c: Container,
    /// When we first saw it, or when we last restarted it (the start grace counts from here).
    pub since: Instant,
    pub last_beat: Option<Instant>,
    pub status: Option<String>,
    /// Since when `status` has had its current value.
    pub status_since: Instant,
    pub beats: u64,
    /// Share of 5xx answers in the last window (errors.rs).
    pub error_share: Option<f64>,
    /// Failing its requests while the others do not, since (errors.rs).
    pub failing_since: Option<Instant>,
    /// An action in progress or awaiting its first beat: (what, when).
    pub action: Option<(String, Instant)>,
    pub restarts: u64,
    pub watcher: Option<tokio::task::AbortHandle>,
    /// The address the watcher was started for.
    pub watched_ip: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ActionRecord {
    pub at_unix_ms: u128,
    pub action: String,
    pub replica: String,
    pub reason: String,
    pub outcome: String,
    pub took_ms: u128,
}

#[derive(Debug, Default, Serialize, Clone)]
pub struct LoadFigures {
    pub rps: f64,
    pub rps_per_replica: f64,
    pub p99_ms: Option<f64>,
    pub replicas_measured: usize,
    pub at_unix_ms: u128,
}

#[derive(Default)]
pub struct Inner {
    pub replicas: BTreeMap<String, Tracked>,
    /// Replica containers that exist but are not running (killed, stopped, exited): not
    /// watched, shown so a killed replica reads "down" rather than vanishing.
    pub stopped: Vec<Container>,
    pub actions: VecDeque<ActionRecord>,
    pub action_counts: BTreeMap<(String, String), u64>,
    pub docker_error: Option<String>,
    pub target: String,
    pub load: Option<LoadFigures>,
    pub autoscale_note: Option<String>,
}

#[derive(Default)]
pub struct Shared {
    inner: Mutex<Inner>,
}

pub fn unix_ms() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0)
}

/// What the supervisor should do about one replica.
#[derive(Debug, PartialEq, Eq, Clone)]
pub enum Verdict {
    Fine,
    /// Too young, or restarting: no judgement yet.
    Waiting,
    /// No beat for this long.
    Silent(Duration),
    /// Docker's health check says so.
    Unhealthy,
    /// Beating, but its own backend checks have failed for this long.
    Unavailable(Duration),
    /// Beating and healthy, but answering 5xx where the other replicas do not.
    Failing,
}

pub fn judge(now: Instant, cfg: &Config, t: &Tracked) -> Verdict {
    if matches!(t.c.state.as_str(), "restarting" | "created" | "removing" | "stopping") {
        return Verdict::Waiting;
    }
    // Not beating since it was found or since its stream last closed (it started, restarts or
    // is being stopped): only the start grace applies. Docker's "unhealthy" of a replica that
    // is draining for `docker stop` or a compose recreate is not ours to act on.
    if t.last_beat.is_none_or(|b| b < t.since) {
        let waited = now.saturating_duration_since(t.since);
        return if waited > cfg.start_grace { Verdict::Silent(waited) } else { Verdict::Waiting };
    }
    let silent = t.last_beat.map(|b| now.saturating_duration_since(b)).unwrap_or_default();
    if silent > cfg.dead_after() {
        return Verdict::Silent(silent);
    }
    if t.failing_since.is_some() {
        return Verdict::Failing;
    }
    if t.c.health.as_deref() == Some("unhealthy") {
        return Verdict::Unhealthy;
    }
    if t.status.as_deref().is_some_and(|s| s != "OK") {
        let d = now.saturating_duration_since(t.status_since);
        if d > cfg.unavailable_after {
            return Verdict::Unavailable(d);
        }
    }
    Verdict::Fine
}

/// The restarts to start now: each silent replica, each unhealthy one, within the budget (a share
/// of the replicas, at least one), counting those already being restarted. Unhealthy replicas
/// are left alone when none is healthy: then a backend is down, and restarting every replica
/// would only add an outage of the shop to it.
pub fn decide(now: Instant, cfg: &Config, replicas: &BTreeMap<String, Tracked>) -> Vec<(String, Verdict)> {
    let busy = replicas.values().filter(|t| t.action.is_some()).count();
    let budget = cfg.restart_budget(replicas.len()).saturating_sub(busy);
    let verdicts: Vec<(String, Verdict)> = replicas
        .iter()
        .filter(|(_, t)| t.action.is_none())
        .map(|(id, t)| (id.clone(), judge(now, cfg, t)))
        .collect();
    // healthy for Docker *and* for its own backend checks: then an unhealthy one has a problem of
    // its own
    let any_healthy = replicas.values().any(|t| {
        t.action.is_none()
            && t.c.health.as_deref() != Some("unhealthy")
            && t.status.as_deref() == Some("OK")
            && judge(now, cfg, t) == Verdict::Fine
    });
    let mut out: Vec<(String, Verdict)> = verdicts
        .into_iter()
        .filter(|(_, v)| match v {
            // errors.rs already compared it with the others
            Verdict::Silent(_) | Verdict::Failing => true,
            // a replica whose backends fail while another's work is stuck on something of its
            // own (a hung connection pool, a cut network path)
            Verdict::Unhealthy | Verdict::Unavailable(_) => any_healthy,
            _ => false,
        })
        .collect();
    // the longest silence first
    out.sort_by_key(|(_, v)| std::cmp::Reverse(if let Verdict::Silent(d) = v { *d } else { Duration::ZERO }));
    out.truncate(budget);
    out
}

impl Shared {
    pub fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn beat(&self, id: &str, status: &str, at: Instant) {
        let mut g = self.lock();
        if let Some(t) = g.replicas.get_mut(id) {
            // not while the Docker call is running: an unhealthy replica beats until it is stopped
            let first_after_action = t.action.as_ref().is_some_and(|(what, when)| {
                !matches!(what.as_str(), "restarting" | "scale-in") && at > *when
            });
            t.last_beat = Some(at);
            t.beats += 1;
            if t.status.as_deref() != Some(status) {
                tracing::info!(replica = %t.c.name, status, "heartbeat status changed");
            }
            if t.status.as_deref() != Some(status) {
                t.status_since = at;
            }
            t.status = Some(status.to_string());
            if first_after_action {
                if let Some((what, when)) = t.action.take() {
                    tracing::info!(
                        replica = %t.c.name, action = %what,
                        back_after_ms = at.saturating_duration_since(when).as_millis() as u64,
                        "replica beating again"
                    );
                }
            }
        }
    }

    /// The replica's stream closed after beating: its process exited or is restarting (a crash
    /// Docker restarts, a `docker restart`, a graceful stop). Not a freeze: its next start gets
    /// the start grace.
    pub fn stream_lost(&self, id: &str, at: Instant) {
        let mut g = self.lock();
        if let Some(t) = g.replicas.get_mut(id) {
            tracing::info!(replica = %t.c.name, "heartbeat stream closed: the process exited or restarts");
            t.since = at;
            t.status = None;
            t.status_since = at;
        }
    }

    pub fn record(&self, action: &str, replica: &str, reason: &str, outcome: &str, took: Duration) {
        let rec = ActionRecord {
            at_unix_ms: unix_ms(),
            action: action.into(),
            replica: replica.into(),
            reason: reason.into(),
            outcome: outcome.into(),
            took_ms: took.as_millis(),
        };
        let ok = outcome == "ok";
        if ok {
            tracing::info!(action, replica, reason, outcome, took_ms = rec.took_ms as u64, "action");
        } else {
            tracing::warn!(action, replica, reason, outcome, took_ms = rec.took_ms as u64, "action failed");
        }
        let mut g = self.lock();
        *g.action_counts
            .entry((action.to_string(), if ok { "ok" } else { "error" }.to_string()))
            .or_default() += 1;
        g.actions.push_back(rec);
        while g.actions.len() > 200 {
            g.actions.pop_front();
        }
    }

    /// The state as JSON (what the control room shows).
    pub fn snapshot(&self, cfg: &Config) -> serde_json::Value {
        let now = Instant::now();
        let g = self.lock();
        let replicas: Vec<serde_json::Value> = g
            .replicas
            .values()
            .map(|t| {
                json!({
                    "id": t.c.id.chars().take(12).collect::<String>(),
                    "name": t.c.name,
                    "number": t.c.number,
                    "ip": t.c.ip,
                    "ips": t.c.ips,
                    "docker_state": t.c.state,
                    "docker_health": t.c.health,
                    "heartbeat": t.status,
                    "last_beat_ms_ago": t.last_beat.map(|b| now.saturating_duration_since(b).as_millis() as u64),
                    "beats": t.beats,
                    "error_share_5xx": t.error_share,
                    "verdict": match judge(now, cfg, t) {
                        Verdict::Fine => "alive".to_string(),
                        Verdict::Waiting => "waiting".to_string(),
                        Verdict::Silent(d) => format!("silent for {} ms", d.as_millis()),
                        Verdict::Unhealthy => "unhealthy".to_string(),
                        Verdict::Unavailable(d) => format!("backends unavailable for {} ms", d.as_millis()),
                        Verdict::Failing => "failing its requests".to_string(),
                    },
                    "action_in_progress": t.action.as_ref().map(|(a, _)| a.clone()),
                    "restarts": t.restarts,
                })
            })
            .collect();
        json!({
            "target": g.target,
            "docker_error": g.docker_error,
            "config": {
                "beat_interval_ms": cfg.beat_interval.as_millis() as u64,
                "missed_beats": cfg.missed_beats,
                "dead_after_ms": cfg.dead_after().as_millis() as u64,
                "start_grace_s": cfg.start_grace.as_secs(),
                "max_restart_share": cfg.max_restart_share,
                "autoscale": cfg.autoscale.as_ref().map(|a| json!({
                    "min": a.min, "max": a.max, "up_rps_per_replica": a.up_rps,
                    "up_p99_ms": a.up_p99.as_millis() as u64, "down_rps_per_replica": a.down_rps,
                    "windows": a.windows, "window_ms": a.window.as_millis() as u64,
                    "cooldown_s": a.cooldown.as_secs(),
                })),
            },
            "replicas": replicas,
            "stopped": g.stopped.iter().map(|c| json!({
                "id": c.id.chars().take(12).collect::<String>(),
                "name": c.name,
                "number": c.number,
                "docker_state": c.state,
            })).collect::<Vec<_>>(),
            "load": g.load,
            "autoscale_note": g.autoscale_note,
            "actions": g.actions.iter().rev().take(50).collect::<Vec<_>>(),
        })
    }

    /// Prometheus text format.
    pub fn metrics(&self, cfg: &Config) -> String {
        let now = Instant::now();
        let g = self.lock();
        let mut out = String::new();
        let _ = writeln!(out, "# HELP distshop_manager_replicas Replicas the manager tracks.");
        let _ = writeln!(out, "# TYPE distshop_manager_replicas gauge");
        let _ = writeln!(out, "distshop_manager_replicas {}", g.replicas.len());
        let _ = writeln!(out, "# HELP distshop_manager_replica_alive 1 when the replica beats on time.");
        let _ = writeln!(out, "# TYPE distshop_manager_replica_alive gauge");
        for t in g.replicas.values() {
            let alive = u8::from(judge(now, cfg, t) == Verdict::Fine);
            let _ = writeln!(out, "distshop_manager_replica_alive{{replica=\"{}\"}} {alive}", t.c.name);
        }
        let _ = writeln!(out, "# HELP distshop_manager_beat_age_seconds Time since the replica's last beat.");
        let _ = writeln!(out, "# TYPE distshop_manager_beat_age_seconds gauge");
        for t in g.replicas.values() {
            if let Some(b) = t.last_beat {
                let _ = writeln!(
                    out,
                    "distshop_manager_beat_age_seconds{{replica=\"{}\"}} {:.3}",
                    t.c.name,
                    now.saturating_duration_since(b).as_secs_f64()
                );
            }
        }
        let _ = writeln!(out, "# HELP distshop_manager_beats_total Heartbeats received.");
        let _ = writeln!(out, "# TYPE distshop_manager_beats_total counter");
        for t in g.replicas.values() {
            let _ = writeln!(out, "distshop_manager_beats_total{{replica=\"{}\"}} {}", t.c.name, t.beats);
        }
        let _ = writeln!(out, "# HELP distshop_manager_actions_total Actions taken, by kind and outcome.");
        let _ = writeln!(out, "# TYPE distshop_manager_actions_total counter");
        for ((a, o), n) in &g.action_counts {
            let _ = writeln!(out, "distshop_manager_actions_total{{action=\"{a}\",outcome=\"{o}\"}} {n}");
        }
        if let Some(l) = &g.load {
            let _ =
                writeln!(out, "# HELP distshop_manager_load_rps Shop request rate the autoscaler measured.");
            let _ = writeln!(out, "# TYPE distshop_manager_load_rps gauge");
            let _ = writeln!(out, "distshop_manager_load_rps {:.1}", l.rps);
            if let Some(p) = l.p99_ms {
                let _ = writeln!(
                    out,
                    "# HELP distshop_manager_load_p99_seconds Shop p99 latency over the last window."
                );
                let _ = writeln!(out, "# TYPE distshop_manager_load_p99_seconds gauge");
                let _ = writeln!(out, "distshop_manager_load_p99_seconds {:.4}", p / 1000.0);
            }
        }
        let _ = writeln!(out, "# HELP distshop_manager_docker_up 1 when the last Docker call worked.");
        let _ = writeln!(out, "# TYPE distshop_manager_docker_up gauge");
        let _ = writeln!(out, "distshop_manager_docker_up {}", u8::from(g.docker_error.is_none()));
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn cfg() -> Config {
        Config::from_lookup(|_| None).unwrap()
    }

    fn tracked(id: &str, since: Instant, last: Option<Instant>, health: Option<&str>) -> Tracked {
        Tracked {
            c: Container {
                id: id.into(),
                name: id.into(),
                number: 1,
                ip: Some("10.0.0.2".into()),
                ips: vec!["10.0.0.2".into()],
                state: "running".into(),
                health: health.map(str::to_string),
            },
            since,
            last_beat: last,
            status: Some("OK".into()),
            status_since: since,
            beats: 1,
            error_share: None,
            failing_since: None,
            action: None,
            restarts: 0,
            watcher: None,
            watched_ip: None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_replica_silent_past_the_missed_beats_is_dead() {
        let c = cfg();
        let t0 = Instant::now();
        tokio::time::advance(Duration::from_secs(60)).await;
        let now = Instant::now();
        let fresh = tracked("a", t0, Some(now - Duration::from_millis(300)), Some("healthy"));
        assert_eq!(judge(now, &c, &fresh), Verdict::Fine);
        let frozen = tracked("b", t0, Some(now - Duration::from_millis(1200)), Some("healthy"));
        assert_eq!(judge(now, &c, &frozen), Verdict::Silent(Duration::from_millis(1200)));
        // never beat: the start grace (30 s) applies, then it is dead too
        let young = tracked("c", now - Duration::from_secs(10), None, None);
        assert_eq!(judge(now, &c, &young), Verdict::Waiting);
        let never = tracked("d", t0, None, None);
        assert!(matches!(judge(now, &c, &never), Verdict::Silent(_)));
    }

    #[tokio::test(start_paused = true)]
    async fn restarts_respect_the_budget_and_skip_a_backend_outage() {
        let c = cfg();
        let t0 = Instant::now();
        tokio::time::advance(Duration::from_secs(60)).await;
        let now = Instant::now();
        let ok = Some(now - Duration::from_millis(100));
        let silent = Some(now - Duration::from_secs(5));
        let mut m = BTreeMap::new();
        m.insert("a".to_string(), tracked("a", t0, silent, Some("healthy")));
        m.insert("b".to_string(), tracked("b", t0, Some(now - Duration::from_secs(9)), Some("healthy")));
        m.insert("c".to_string(), tracked("c", t0, ok, Some("healthy")));
        // 3 replicas, share 0.34: one at a time, the longest silence first
        let d = decide(now, &c, &m);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].0, "b");
        // one already in progress: nothing more
        if let Some(t) = m.get_mut("b") {
            t.action = Some(("restart".into(), now));
        }
        assert!(decide(now, &c, &m).is_empty());

        // every replica unhealthy but beating: a backend is down, restart none
        let mut m = BTreeMap::new();
        for id in ["a", "b", "c"] {
            m.insert(id.to_string(), tracked(id, t0, ok, Some("unhealthy")));
        }
        assert!(decide(now, &c, &m).is_empty());
        // one unhealthy among healthy ones: restart it
        if let Some(t) = m.get_mut("a") {
            t.c.health = Some("healthy".into());
        }
        if let Some(t) = m.get_mut("b") {
            t.c.health = Some("healthy".into());
        }
        let d = decide(now, &c, &m);
        assert_eq!(d, vec![("c".to_string(), Verdict::Unhealthy)]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_replica_whose_own_backends_fail_is_restarted_only_while_others_work() {
        let c = cfg();
        let t0 = Instant::now();
        tokio::time::advance(Duration::from_secs(60)).await;
        let now = Instant::now();
        let ok = Some(now - Duration::from_millis(100));
        let mut m = BTreeMap::new();
        for id in ["a", "b", "c"] {
            m.insert(id.to_string(), tracked(id, t0, ok, Some("healthy")));
        }
        if let Some(t) = m.get_mut("a") {
            t.status = Some("UNAVAILABLE".into());
            t.status_since = now - Duration::from_secs(2);
        }
        // 2 s: not yet (a failover of a backend looks like this for a moment)
        assert!(decide(now, &c, &m).is_empty());
        if let Some(t) = m.get_mut("a") {
            t.status_since = now - Duration::from_secs(6);
        }
        assert_eq!(
            decide(now, &c, &m),
            vec![("a".to_string(), Verdict::Unavailable(Duration::from_secs(6)))]
        );
        // every replica failing its backends: a backend is down, restart none
        for t in m.values_mut() {
            t.status = Some("UNAVAILABLE".into());
            t.status_since = now - Duration::from_secs(6);
        }
        assert!(decide(now, &c, &m).is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_restarted_replica_gets_the_start_grace_again() {
        let c = cfg();
        let t0 = Instant::now();
        tokio::time::advance(Duration::from_secs(60)).await;
        let now = Instant::now();
        // last beat before the restart (since = restart time): not silent until the grace ends
        let t = tracked("a", now - Duration::from_secs(2), Some(t0), Some("starting"));
        assert_eq!(judge(now, &c, &t), Verdict::Waiting);
        // its stream closed (docker stop, compose recreate) and Docker now says unhealthy: not ours
        let t =
            tracked("b", now - Duration::from_secs(5), Some(now - Duration::from_secs(6)), Some("unhealthy"));
        assert_eq!(judge(now, &c, &t), Verdict::Waiting);
        let t = tracked(
            "c",
            now - Duration::from_secs(31),
            Some(now - Duration::from_secs(32)),
            Some("unhealthy"),
        );
        assert!(matches!(judge(now, &c, &t), Verdict::Silent(_)));
    }
}
