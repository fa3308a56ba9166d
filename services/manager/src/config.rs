//! Settings from the environment (`MANAGER_*`), each checked with a clear message.

use std::{net::SocketAddr, time::Duration};

/// Where the replicas come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Containers labelled `com.docker.compose.project=<project>` and
    /// `com.docker.compose.service=<service>`; scaling creates and removes such containers.
    Compose { project: Option<String> },
    /// Tasks of the Swarm service `<service>` running on this node (the manager is a global
    /// service: one per node, each watching its node's replicas); Swarm replaces a killed task.
    Swarm,
}

#[derive(Clone, Debug)]
pub struct Autoscale {
    pub min: usize,
    pub max: usize,
    /// Scale out when the request rate per replica is above this…
    pub up_rps: f64,
    /// …or the p99 latency over the window is above this.
    pub up_p99: Duration,
    /// Scale in when one replica fewer would each take less than this.
    pub down_rps: f64,
    /// Consecutive windows a condition must hold (hysteresis).
    pub windows: u32,
    pub window: Duration,
    pub cooldown: Duration,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub listen: SocketAddr,
    pub mode: Mode,
    pub service: String,
    pub replica_port: u16,
    pub beat_interval: Duration,
    pub missed_beats: u32,
    pub start_grace: Duration,
    /// A replica beating UNAVAILABLE this long while another beats OK is restarted.
    pub unavailable_after: Duration,
    pub max_restart_share: f64,
    pub discover_every: Duration,
    pub docker_timeout: Duration,
    pub token: Option<String>,
    pub log_json: bool,
    pub autoscale: Option<Autoscale>,
}

impl Config {
    /// The silence after which a replica is declared dead.
    pub fn dead_after(&self) -> Duration {
        self.beat_interval * self.missed_beats
    }

    pub fn from_env() -> Result<Config, String> {
        Self::from_lookup(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, String> {
        let num = |key: &str, default: u64, range: std::ops::RangeInclusive<u64>| -> Result<u64, String> {
            match get(key) {
                None => Ok(default),
                Some(v) => match v.trim().parse::<u64>() {
                    Ok(n) if range.contains(&n) => Ok(n),
                    _ => Err(format!(
                        "{key}=`{v}`: expected a whole number in {}..={}",
                        range.start(),
                        range.end()
                    )),
                },
            }
        };
        let listen = get("MANAGER_LISTEN").unwrap_or_else(|| "0.0.0.0:9091".into());
        let listen = listen.parse().map_err(|_| format!("MANAGER_LISTEN=`{listen}`: expected host:port"))?;
        let mode = match get("MANAGER_MODE").as_deref() {
            None | Some("compose") => Mode::Compose { project: get("MANAGER_PROJECT") },
            Some("swarm") => Mode::Swarm,
            Some(other) => return Err(format!("MANAGER_MODE=`{other}`: use `compose` or `swarm`")),
        };
        let share = match get("MANAGER_MAX_RESTART_SHARE") {
            None => 0.34,
            Some(v) => match v.trim().parse::<f64>() {
                Ok(f) if f > 0.0 && f <= 1.0 => f,
                _ => return Err(format!("MANAGER_MAX_RESTART_SHARE=`{v}`: expected a fraction in (0, 1]")),
            },
        };
        let log_json = match get("MANAGER_LOG_FORMAT").as_deref() {
            None | Some("text") => false,
            Some("json") => true,
            Some(other) => return Err(format!("MANAGER_LOG_FORMAT=`{other}`: use `json` or `text`")),
        };
        let token = get("MANAGER_TOKEN");
        if let Some(t) = &token {
            if t.len() < 16 {
                return Err("MANAGER_TOKEN: use at least 16 characters (it guards the Docker socket)".into());
            }
        }
        let autoscale = match get("MANAGER_AUTOSCALE").as_deref() {
            None | Some("off") => None,
            Some("on") => {
                let min = num("MANAGER_MIN_REPLICAS", 2, 1..=64)? as usize;
                let max = num("MANAGER_MAX_REPLICAS", 6, 1..=64)? as usize;
                if max < min {
                    return Err(format!(
                        "MANAGER_MAX_REPLICAS ({max}) is below MANAGER_MIN_REPLICAS ({min})"
                    ));
                }
                let up_rps = num("MANAGER_SCALE_UP_RPS", 150, 1..=100_000)? as f64;
                let down_rps = num("MANAGER_SCALE_DOWN_RPS", 60, 0..=100_000)? as f64;
                if down_rps >= up_rps {
                    return Err(format!(
                        "MANAGER_SCALE_DOWN_RPS ({down_rps}) must be below MANAGER_SCALE_UP_RPS ({up_rps}): the gap is the hysteresis"
                    ));
                }
                Some(Autoscale {
                    min,
                    max,
                    up_rps,
                    up_p99: Duration::from_millis(num("MANAGER_SCALE_UP_P99_MS", 150, 1..=60_000)?),
                    down_rps,
                    windows: num("MANAGER_SCALE_WINDOWS", 2, 1..=60)? as u32,
                    window: Duration::from_millis(num("MANAGER_SCALE_WINDOW_MS", 3000, 500..=60_000)?),
                    cooldown: Duration::from_secs(num("MANAGER_SCALE_COOLDOWN_SECS", 20, 0..=3600)?),
                })
            }
            Some(other) => return Err(format!("MANAGER_AUTOSCALE=`{other}`: use `on` or `off`")),
        };
        Ok(Config {
            listen,
            mode,
            service: get("MANAGER_SERVICE").unwrap_or_else(|| "shop".into()),
            replica_port: num("MANAGER_REPLICA_PORT", 8080, 1..=65535)? as u16,
            beat_interval: Duration::from_millis(num("MANAGER_BEAT_INTERVAL_MS", 250, 100..=10_000)?),
            missed_beats: num("MANAGER_MISSED_BEATS", 4, 1..=100)? as u32,
            start_grace: Duration::from_secs(num("MANAGER_START_GRACE_SECS", 30, 1..=600)?),
            unavailable_after: Duration::from_secs(num("MANAGER_UNAVAILABLE_SECS", 5, 1..=3600)?),
            max_restart_share: share,
            discover_every: Duration::from_millis(num("MANAGER_DISCOVER_MS", 500, 100..=60_000)?),
            docker_timeout: Duration::from_millis(num("MANAGER_DOCKER_TIMEOUT_MS", 10_000, 100..=120_000)?),
            token,
            log_json,
            autoscale,
        })
    }

    /// How many replicas may be in the middle of a restart at once.
    pub fn restart_budget(&self, replicas: usize) -> usize {
        ((replicas as f64 * self.max_restart_share).floor() as usize).max(1)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::collections::HashMap;

    fn cfg(pairs: &[(&str, &str)]) -> Result<Config, String> {
        let m: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|k| m.get(k).cloned())
    }

    #[test]
    fn defaults_declare_a_replica_dead_after_a_second_of_silence() {
        let c = cfg(&[]).unwrap();
        assert_eq!(c.dead_after(), Duration::from_millis(1000));
        assert_eq!(c.mode, Mode::Compose { project: None });
        assert!(c.autoscale.is_none());
        assert!(c.token.is_none());
    }

    #[test]
    fn bad_values_are_named_in_the_error() {
        let e = cfg(&[("MANAGER_MISSED_BEATS", "0")]).unwrap_err();
        assert!(e.contains("MANAGER_MISSED_BEATS"), "{e}");
        let e = cfg(&[("MANAGER_TOKEN", "short")]).unwrap_err();
        assert!(e.contains("16"), "{e}");
        let e =
            cfg(&[("MANAGER_AUTOSCALE", "on"), ("MANAGER_MIN_REPLICAS", "5"), ("MANAGER_MAX_REPLICAS", "2")])
                .unwrap_err();
        assert!(e.contains("below"), "{e}");
        let e = cfg(&[("MANAGER_AUTOSCALE", "on"), ("MANAGER_SCALE_DOWN_RPS", "200")]).unwrap_err();
        assert!(e.contains("hysteresis"), "{e}");
        assert!(cfg(&[("MANAGER_MODE", "k8s")]).is_err());
    }

    #[test]
    fn the_restart_budget_is_a_share_but_never_zero() {
        let c = cfg(&[]).unwrap();
        assert_eq!(c.restart_budget(1), 1);
        assert_eq!(c.restart_budget(3), 1);
        assert_eq!(c.restart_budget(6), 2);
        assert_eq!(c.restart_budget(9), 3);
    }
}
