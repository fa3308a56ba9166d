//! Faults on request (`POST /api/faults`): the control room's buttons. Only the manager holds the
//! Docker socket, so the control room asks here, with the manager's token.
//!
//! A fault acts on one container **of this manager's own compose project**, and only of the
//! services a demo may break: the shop's replicas, `galera-N`, `redis-N` and HAProxy `db`. The
//! Docker query is already filtered by those labels; [`pick`] checks them again on what came
//! back, so a filter the daemon ignored (or a bug here) cannot reach another project's
//! containers. Kills are followed by a start after a short down time, as
//! `tests/failover/fault.sh` does: Docker treats `docker kill` as a manual stop and would not
//! restart the container, and the demo must heal by itself.

use std::{str::FromStr, time::Duration};

use actix_web::http::StatusCode;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::{
    docker::{Labelled, COMPOSE_PROJECT, COMPOSE_SERVICE},
    supervisor::Manager,
};

const COMPOSE_NUMBER: &str = "com.docker.compose.container-number";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    ReplicaKill,
    ReplicaStop,
    ReplicaFreeze,
    GaleraKill,
    GaleraDisconnect,
    GaleraReconnect,
    RedisMasterKill,
    HaproxyKill,
    Scale,
}

pub const ACTIONS: &str = "replica-kill, replica-stop, replica-freeze, galera-kill, galera-disconnect, \
                           galera-reconnect, redis-master-kill, haproxy-kill, scale";

impl FromStr for Action {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Ok(match s {
            "replica-kill" => Action::ReplicaKill,
            "replica-stop" => Action::ReplicaStop,
            "replica-freeze" => Action::ReplicaFreeze,
            "galera-kill" => Action::GaleraKill,
            "galera-disconnect" => Action::GaleraDisconnect,
            "galera-reconnect" => Action::GaleraReconnect,
            "redis-master-kill" => Action::RedisMasterKill,
            "haproxy-kill" => Action::HaproxyKill,
            "scale" => Action::Scale,
            _ => return Err(()),
        })
    }
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::ReplicaKill => "replica-kill",
            Action::ReplicaStop => "replica-stop",
            Action::ReplicaFreeze => "replica-freeze",
            Action::GaleraKill => "galera-kill",
            Action::GaleraDisconnect => "galera-disconnect",
            Action::GaleraReconnect => "galera-reconnect",
            Action::RedisMasterKill => "redis-master-kill",
            Action::HaproxyKill => "haproxy-kill",
            Action::Scale => "scale",
        }
    }

    /// How long a killed or stopped container stays down before it is started again (the
    /// values of tests/failover/fault.sh: long enough to be seen, short enough for a lecture).
    fn default_down(self) -> Option<Duration> {
        match self {
            Action::ReplicaKill | Action::ReplicaStop => Some(Duration::from_secs(5)),
            Action::GaleraKill => Some(Duration::from_secs(20)),
            Action::RedisMasterKill => Some(Duration::from_secs(12)),
            Action::HaproxyKill => Some(Duration::from_secs(2)),
            _ => None,
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct FaultRequest {
    pub action: String,
    #[serde(default)]
    pub target: String,
    pub replicas: Option<usize>,
    /// Seconds down before the start again (kills and stops), 0..=300.
    pub down_s: Option<u64>,
}

#[derive(Debug, PartialEq, Eq)]
pub struct FaultError {
    pub status: StatusCode,
    pub message: String,
}

fn bad(status: StatusCode, message: impl Into<String>) -> FaultError {
    FaultError { status, message: message.into() }
}

/// Which compose service (and which container number of it) a target names.
#[derive(Debug, PartialEq, Eq)]
pub struct Target {
    pub service: String,
    pub number: Option<u32>,
}

/// `<prefix>-<n>` with n in 1..=99 → n.
fn numbered(s: &str, prefix: &str) -> Option<u32> {
    let n = s.strip_prefix(prefix)?.strip_prefix('-')?;
    (!n.is_empty() && n.len() <= 2 && n.bytes().all(|b| b.is_ascii_digit()))
        .then(|| n.parse().ok())
        .flatten()
        .filter(|n| *n >= 1)
}

/// The target of an action: a replica as `shop-2` (the name it serves under) or `2`; a Galera
/// node or a Redis node as `galera-2` / `redis-4` (one compose service each); HAProxy as `db`.
pub fn parse_target(action: Action, target: &str, shop: &str) -> Result<Target, FaultError> {
    let t = target.trim();
    let nope =
        |what: &str| bad(StatusCode::BAD_REQUEST, format!("{}: target `{t}` is not {what}", action.as_str()));
    match action {
        Action::ReplicaKill | Action::ReplicaStop | Action::ReplicaFreeze => {
            let n = numbered(t, shop).or_else(|| numbered(&format!("{shop}-{t}"), shop));
            n.map(|n| Target { service: shop.to_string(), number: Some(n) })
                .ok_or_else(|| nope(&format!("a replica (`{shop}-N`)")))
        }
        Action::GaleraKill | Action::GaleraDisconnect | Action::GaleraReconnect => numbered(t, "galera")
            .map(|_| Target { service: t.to_string(), number: None })
            .ok_or_else(|| nope("a Galera node (`galera-N`)")),
        Action::RedisMasterKill => numbered(t, "redis")
            .map(|_| Target { service: t.to_string(), number: None })
            .ok_or_else(|| nope("a Redis node (`redis-N`)")),
        Action::HaproxyKill => match t {
            "" | "db" | "haproxy" => Ok(Target { service: "db".into(), number: None }),
            _ => Err(nope("HAProxy (`db`)")),
        },
        Action::Scale => Ok(Target { service: shop.to_string(), number: None }),
    }
}

/// May a fault touch this compose service at all?
pub fn breakable(service: &str, shop: &str) -> bool {
    service == shop
        || service == "db"
        || numbered(service, "galera").is_some()
        || numbered(service, "redis").is_some()
}

/// The one container the fault acts on, from what Docker listed — checked again against the
/// project, the service and the number, whatever the listing's filters were.
pub fn pick<'a>(
    project: &str,
    shop: &str,
    t: &Target,
    list: &'a [Labelled],
) -> Result<&'a Labelled, FaultError> {
    if !breakable(&t.service, shop) {
        return Err(bad(
            StatusCode::FORBIDDEN,
            format!("service `{}` is not one a fault may touch", t.service),
        ));
    }
    let label = |c: &'a Labelled, k: &str| c.labels.get(k).map(String::as_str);
    let mut mine = list.iter().filter(|c| {
        label(c, COMPOSE_PROJECT) == Some(project)
            && label(c, COMPOSE_SERVICE) == Some(t.service.as_str())
            && t.number.is_none_or(|n| label(c, COMPOSE_NUMBER).and_then(|v| v.parse().ok()) == Some(n))
    });
    let first = mine.next();
    match (first, t.number) {
        (Some(c), _) => Ok(c),
        (None, Some(n)) => Err(bad(
            StatusCode::NOT_FOUND,
            format!("no container `{}` number {n} in compose project `{project}`", t.service),
        )),
        (None, None) => Err(bad(
            StatusCode::NOT_FOUND,
            format!("no container `{}` in compose project `{project}`", t.service),
        )),
    }
}

/// The project's network a Galera node is cut off from: `<project>_<MANAGER_FAULT_NETWORK>`
/// (compose names networks so, v1 and v2 alike).
fn backend_network(project: &str) -> String {
    let net = std::env::var("MANAGER_FAULT_NETWORK").ok().filter(|v| !v.is_empty());
    format!("{project}_{}", net.as_deref().unwrap_or("backend"))
}

/// What a fault did, for the caller and for `/state`'s actions.
#[derive(Debug, Serialize)]
pub struct Done {
    pub action: &'static str,
    pub target: String,
    pub container: String,
    pub outcome: &'static str,
    pub detail: String,
}

impl Manager {
    pub async fn fault(&self, req: FaultRequest) -> Result<Done, FaultError> {
        let action: Action = req.action.parse().map_err(|_| {
            bad(StatusCode::BAD_REQUEST, format!("unknown action `{}`: use one of {ACTIONS}", req.action))
        })?;
        let shop = self.cfg.service.clone();
        let target = parse_target(action, &req.target, &shop)?;
        let Some(project) = self.engine.project().map(str::to_string) else {
            return Err(bad(
                StatusCode::CONFLICT,
                "faults act on a compose project; this manager runs in Swarm mode",
            ));
        };
        let down = match req.down_s {
            Some(s) if s > 300 => return Err(bad(StatusCode::BAD_REQUEST, "down_s must be at most 300")),
            Some(s) => Some(Duration::from_secs(s)),
            None => action.default_down(),
        };
        let t0 = Instant::now();
        if action == Action::Scale {
            let want = req.replicas.ok_or_else(|| bad(StatusCode::BAD_REQUEST, "scale needs `replicas`"))?;
            if want == 0 || want > 64 {
                return Err(bad(
                    StatusCode::BAD_REQUEST,
                    format!("replicas must be between 1 and 64, got {want}"),
                ));
            }
            if let Some(a) = &self.cfg.autoscale {
                if want < a.min || want > a.max {
                    return Err(bad(
                        StatusCode::CONFLICT,
                        format!("the autoscaler keeps the shop between {} and {} replicas", a.min, a.max),
                    ));
                }
            }
            // a replica killed or stopped a moment ago is started again by the task above; a scale
            // now would count without it (and might give a new replica its name): N+1 later
            let all = self
                .engine
                .all_replicas()
                .await
                .map_err(|e| bad(StatusCode::BAD_GATEWAY, format!("{e:#}")))?;
            if let Some(down) = all.iter().find(|c| !c.is_up()) {
                return Err(bad(
                    StatusCode::CONFLICT,
                    format!(
                        "{} is not running (a kill or stop starts it again after its down time): scale once it is up",
                        down.name
                    ),
                ));
            }
            return match self.scale_to(want, "fault API: scale").await {
                Ok(()) => Ok(Done {
                    action: action.as_str(),
                    target: shop,
                    container: String::new(),
                    outcome: "ok",
                    detail: format!("{want} replicas"),
                }),
                Err(e) => Err(bad(StatusCode::BAD_GATEWAY, format!("{e:#}"))),
            };
        }
        let list = self
            .engine
            .service_containers(&target.service)
            .await
            .map_err(|e| bad(StatusCode::BAD_GATEWAY, format!("{e:#}")))?;
        let c = pick(&project, &shop, &target, &list)?.clone();
        let net = backend_network(&project);
        let (result, detail) = match action {
            Action::ReplicaKill | Action::GaleraKill | Action::RedisMasterKill | Action::HaproxyKill => {
                (self.engine.kill(&c.id).await, "SIGKILL".to_string())
            }
            Action::ReplicaStop => {
                (self.engine.stop(&c.id, Duration::from_secs(10)).await, "SIGTERM (docker stop)".to_string())
            }
            Action::ReplicaFreeze => (
                self.engine.pause(&c.id).await,
                "docker pause: left frozen, for the heartbeat manager to find".to_string(),
            ),
            Action::GaleraDisconnect => {
                (self.engine.disconnect(&net, &c.id).await, format!("disconnected from network {net}"))
            }
            Action::GaleraReconnect => {
                if c.networks.contains(&net) {
                    return Err(bad(StatusCode::CONFLICT, format!("{} is on {net} already", c.name)));
                }
                (
                    self.engine.reconnect(&net, &c.id, vec![target.service.clone()]).await,
                    format!("connected to network {net} again"),
                )
            }
            Action::Scale => return Err(bad(StatusCode::BAD_REQUEST, "scale is not a container fault")),
        };
        let outcome = match &result {
            Ok(()) => "ok".to_string(),
            Err(e) => format!("error: {e:#}"),
        };
        self.shared.record(
            &format!("fault:{}", action.as_str()),
            &c.name,
            "asked through the fault API",
            &outcome,
            t0.elapsed(),
        );
        if let Err(e) = result {
            return Err(bad(StatusCode::BAD_GATEWAY, format!("docker: {e:#}")));
        }
        let detail = match down {
            Some(d)
                if matches!(
                    action,
                    Action::ReplicaKill
                        | Action::ReplicaStop
                        | Action::GaleraKill
                        | Action::RedisMasterKill
                        | Action::HaproxyKill
                ) =>
            {
                let m = self.clone();
                let (id, name) = (c.id.clone(), c.name.clone());
                tokio::spawn(async move {
                    tokio::time::sleep(d).await;
                    let t0 = Instant::now();
                    let r = m.engine.start(&id).await;
                    let outcome = match &r {
                        Ok(()) => "ok".to_string(),
                        Err(e) => format!("error: {e:#}"),
                    };
                    m.shared.record(
                        "fault:start-again",
                        &name,
                        &format!("after {} s down", d.as_secs()),
                        &outcome,
                        t0.elapsed(),
                    );
                });
                format!("{detail}; started again in {} s", d.as_secs())
            }
            _ => detail,
        };
        Ok(Done { action: action.as_str(), target: req.target, container: c.name, outcome: "ok", detail })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::collections::HashMap;

    fn c(id: &str, project: &str, service: &str, number: u32) -> Labelled {
        let labels: HashMap<String, String> = [
            (COMPOSE_PROJECT.to_string(), project.to_string()),
            (COMPOSE_SERVICE.to_string(), service.to_string()),
            (COMPOSE_NUMBER.to_string(), number.to_string()),
        ]
        .into();
        Labelled {
            id: id.into(),
            name: format!("{project}-{service}-{number}"),
            labels,
            running: true,
            networks: vec![],
        }
    }

    #[test]
    fn targets_name_a_replica_or_a_node_and_nothing_else() {
        let t = |a, s| parse_target(a, s, "shop");
        assert_eq!(
            t(Action::ReplicaKill, "shop-2").unwrap(),
            Target { service: "shop".into(), number: Some(2) }
        );
        assert_eq!(
            t(Action::ReplicaFreeze, "3").unwrap(),
            Target { service: "shop".into(), number: Some(3) }
        );
        assert_eq!(
            t(Action::GaleraKill, "galera-2").unwrap(),
            Target { service: "galera-2".into(), number: None }
        );
        assert_eq!(t(Action::RedisMasterKill, "redis-6").unwrap().service, "redis-6");
        assert_eq!(t(Action::HaproxyKill, "").unwrap().service, "db");
        for (a, s) in [
            (Action::ReplicaKill, "manager-1"),
            (Action::ReplicaKill, "shop-0"),
            (Action::ReplicaKill, "shop-2; rm"),
            (Action::ReplicaKill, "../shop-2"),
            (Action::GaleraKill, "galera"),
            (Action::GaleraKill, "redis-1"),
            (Action::GaleraKill, "galera-1x"),
            (Action::RedisMasterKill, "nginx"),
            (Action::HaproxyKill, "nginx"),
        ] {
            let e = t(a, s).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST, "{a:?} {s}");
        }
        assert!("docker-rm".parse::<Action>().is_err());
        assert_eq!("galera-reconnect".parse::<Action>(), Ok(Action::GaleraReconnect));
    }

    #[test]
    fn only_the_own_projects_container_of_that_service_and_number_is_picked() {
        let list = vec![
            c("other", "prod", "shop", 2),
            c("wrong-svc", "ds13", "nginx", 2),
            c("mine-1", "ds13", "shop", 1),
            c("mine-2", "ds13", "shop", 2),
        ];
        let t = Target { service: "shop".into(), number: Some(2) };
        assert_eq!(pick("ds13", "shop", &t, &list).unwrap().id, "mine-2");
        // another project's replica 2 only: not found, never the other project's
        let e = pick("ds13", "shop", &t, &list[..2]).unwrap_err();
        assert_eq!(e.status, StatusCode::NOT_FOUND);
        let t = Target { service: "shop".into(), number: Some(7) };
        assert_eq!(pick("ds13", "shop", &t, &list).unwrap_err().status, StatusCode::NOT_FOUND);
    }

    #[test]
    fn services_outside_the_demo_are_refused_even_if_listed() {
        let list = vec![
            c("nginx", "ds13", "nginx", 1),
            c("mgr", "ds13", "manager", 1),
            c("g", "ds13", "galera-1", 1),
        ];
        for svc in ["nginx", "manager", "prometheus", "controlroom"] {
            let t = Target { service: svc.into(), number: None };
            assert_eq!(pick("ds13", "shop", &t, &list).unwrap_err().status, StatusCode::FORBIDDEN, "{svc}");
        }
        let t = Target { service: "galera-1".into(), number: None };
        assert_eq!(pick("ds13", "shop", &t, &list).unwrap().id, "g");
        // a container without the project label at all
        let mut bare = c("bare", "ds13", "galera-1", 1);
        bare.labels.remove(COMPOSE_PROJECT);
        assert_eq!(pick("ds13", "shop", &t, &[bare]).unwrap_err().status, StatusCode::NOT_FOUND);
    }
}
