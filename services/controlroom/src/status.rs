//! The control room's picture of the stack (`GET /api/status`, the SSE stream, the tiles), and
//! the pure readings that build it from what each backend answered: the manager's `/state`,
//! galera-health's text, Redis' `CLUSTER NODES`, HAProxy's metrics, Prometheus' JSON. No I/O
//! here (probe.rs asks), so every reading is unit-tested.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Replica states, as the contract names them.
pub const UP: &str = "up";
pub const FROZEN: &str = "frozen";
pub const DOWN: &str = "down";
pub const STARTING: &str = "starting";

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Status {
    pub replicas: Vec<Replica>,
    pub galera: Vec<GaleraNode>,
    pub redis: Vec<RedisNode>,
    pub edge: Vec<Edge>,
    pub load: Load,
    /// When this picture was taken (ms since the epoch).
    pub at_unix_ms: u64,
    /// The heartbeat manager's own recent actions (restarts of frozen replicas, scaling, the
    /// faults it carried out), newest first.
    pub manager_actions: Vec<ManagerAction>,
    /// The faults injected from this control room, newest first.
    pub faults: Vec<FaultRecord>,
    /// The shopper simulator's latest run, while fresh.
    pub simulator: Option<SimRun>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Replica {
    /// The name it serves under (`shop-2`: X-Served-By, the footer).
    pub name: String,
    /// up / frozen / down / starting
    pub state: String,
    pub container: String,
    pub rps: Option<f64>,
    /// The manager's verdict or Docker's state, in words.
    pub detail: String,
    pub restarts: u64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct GaleraNode {
    pub name: String,
    /// wsrep_local_state_comment in lower case (synced, donor/desynced, joining, …), or `down`.
    pub state: String,
    pub cluster_size: Option<u32>,
    /// HAProxy sends the writes here.
    pub writer: bool,
    /// Ready for HAProxy (galera-health answered 200).
    pub ready: bool,
    pub detail: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct RedisNode {
    pub name: String,
    /// master / replica / down
    pub role: String,
    /// The hash slots a master serves (`0-5460`).
    pub slots: String,
    /// A replica's master.
    pub master: Option<String>,
    pub detail: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Edge {
    pub name: String,
    /// up / down
    pub state: String,
    pub detail: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Load {
    pub rps: Option<f64>,
    pub errors_per_s: Option<f64>,
    pub p99_ms: Option<f64>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ManagerAction {
    pub at_unix_ms: u64,
    /// HH:MM:SS UTC, for the page.
    pub at: String,
    pub action: String,
    pub target: String,
    pub reason: String,
    pub outcome: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct FaultRecord {
    pub at_unix_ms: u64,
    /// HH:MM:SS UTC, for the page.
    pub at: String,
    pub action: String,
    pub target: String,
    /// `ok`, or what went wrong.
    pub outcome: String,
    pub detail: String,
}

/// What the simulator sends every second (`POST /api/simulator`).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct SimRun {
    pub run: String,
    pub elapsed_s: f64,
    pub requests: u64,
    pub errors: u64,
    pub violations: u64,
    pub checks: u64,
    pub rps: f64,
    pub done: bool,
    /// Set on receipt (ms since the epoch).
    #[serde(default)]
    pub received_unix_ms: u64,
}

/// `22:10:01` (UTC) of a time in ms since the epoch.
pub fn hms(ms: u64) -> String {
    let s = (ms / 1000) % 86_400;
    format!("{:02}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
}

/// `shop-2` from the container's compose number, else from its name (`p_shop_2`, `p-shop-2`).
pub fn replica_name(container: &str, number: u64, service: &str) -> String {
    if number > 0 {
        return format!("{service}-{number}");
    }
    let tail = container.rsplit(['_', '-']).next().unwrap_or("");
    if !tail.is_empty() && tail.bytes().all(|b| b.is_ascii_digit()) {
        format!("{service}-{tail}")
    } else {
        container.to_string()
    }
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

/// A tracked replica's state from the manager's view of it.
pub fn replica_state(r: &Value) -> (&'static str, String) {
    let docker = s(r, "docker_state");
    let verdict = s(r, "verdict");
    let action = r.get("action_in_progress").and_then(Value::as_str);
    if docker == "paused" {
        return (FROZEN, "paused (docker pause)".into());
    }
    if verdict.starts_with("silent") {
        return (FROZEN, format!("no heartbeat: {verdict}"));
    }
    if matches!(docker, "restarting" | "created") {
        return (STARTING, format!("docker: {docker}"));
    }
    if let Some(a) = action {
        return (STARTING, format!("manager: {a}"));
    }
    // A replica that was beating, whose stream just closed while Docker (listed a moment ago)
    // still calls it running and healthy: killed or crashed, not starting (Docker's "exited"
    // follows within a listing; a restarted container's health reads "starting" at once).
    let beats = r.get("beats").and_then(Value::as_u64).unwrap_or(0);
    if verdict == "waiting" && beats > 0 && docker == "running" && s(r, "docker_health") != "starting" {
        return (DOWN, "heartbeat stream closed".into());
    }
    match verdict {
        "alive" => (UP, "beating".into()),
        "waiting" | "" => (STARTING, "waiting for its first heartbeat".into()),
        other => (UP, other.to_string()),
    }
}

/// The replicas from the manager's `/state`, with their request rates (by address).
pub fn replicas_from_manager(state: &Value, service: &str, rps_by_ip: &HashMap<String, f64>) -> Vec<Replica> {
    let mut out = Vec::new();
    let empty = Vec::new();
    for r in state.get("replicas").and_then(Value::as_array).unwrap_or(&empty) {
        let container = s(r, "name").to_string();
        let number = r.get("number").and_then(Value::as_u64).unwrap_or(0);
        let (state, detail) = replica_state(r);
        let mut ips: Vec<&str> = r
            .get("ips")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if let Some(ip) = r.get("ip").and_then(Value::as_str) {
            ips.push(ip);
        }
        let rps = ips.iter().find_map(|ip| rps_by_ip.get(*ip).copied());
        out.push(Replica {
            name: replica_name(&container, number, service),
            state: state.into(),
            container,
            rps: if state == UP || state == FROZEN { rps } else { None },
            detail,
            restarts: r.get("restarts").and_then(Value::as_u64).unwrap_or(0),
        });
    }
    for r in state.get("stopped").and_then(Value::as_array).unwrap_or(&empty) {
        let container = s(r, "name").to_string();
        let number = r.get("number").and_then(Value::as_u64).unwrap_or(0);
        let name = replica_name(&container, number, service);
        if out.iter().any(|o| o.name == name) {
            continue;
        }
        out.push(Replica {
            name,
            state: DOWN.into(),
            container,
            rps: None,
            detail: format!("docker: {}", s(r, "docker_state")),
            restarts: 0,
        });
    }
    out.sort_by_key(|r| (r.name.len(), r.name.clone()));
    out
}

/// The manager's recent actions (`/state` `actions`, newest first).
pub fn manager_actions(state: &Value) -> Vec<ManagerAction> {
    let empty = Vec::new();
    state
        .get("actions")
        .and_then(Value::as_array)
        .unwrap_or(&empty)
        .iter()
        .map(|a| ManagerAction {
            at_unix_ms: a.get("at_unix_ms").and_then(Value::as_u64).unwrap_or(0),
            at: hms(a.get("at_unix_ms").and_then(Value::as_u64).unwrap_or(0)),
            action: s(a, "action").into(),
            target: s(a, "replica").into(),
            reason: s(a, "reason").into(),
            outcome: s(a, "outcome").into(),
        })
        .collect()
}

/// galera-health's answer: `ready: wsrep_local_state=4 (Synced) wsrep_cluster_status=Primary …
/// wsrep_cluster_size=3` (200) or `not ready: <why>; seen: …` (503).
/// → (state, cluster size, ready).
pub fn galera_from_health(status: u16, body: &str) -> (String, Option<u32>, bool) {
    let after = |key: &str| body.split(key).nth(1).map(|rest| rest.split_whitespace().next().unwrap_or(""));
    let comment = body
        .split("wsrep_local_state=")
        .nth(1)
        .and_then(|r| r.split_once('(').and_then(|(_, c)| c.split_once(')')).map(|(c, _)| c.to_string()));
    let size = after("wsrep_cluster_size=").and_then(|v| v.trim_end_matches(';').parse().ok());
    let primary = after("wsrep_cluster_status=").map(|v| v.trim_end_matches(';').to_string());
    let state = match (&comment, primary.as_deref()) {
        (Some(c), Some(p)) if !p.eq_ignore_ascii_case("Primary") && !p.starts_with('<') => {
            format!("{} (non-primary)", c.to_lowercase())
        }
        (Some(c), _) if !c.starts_with('<') && c != "?" => c.to_lowercase(),
        _ if status == 200 => "synced".into(),
        _ => "not ready".into(),
    };
    (state, size, status == 200)
}

/// One node's own line of `CLUSTER NODES` → (role, slots, its master's name).
pub fn redis_myself(nodes: &str) -> Option<(String, String, Option<String>)> {
    let lines: Vec<Vec<&str>> =
        nodes.lines().map(|l| l.split_whitespace().collect()).filter(|f: &Vec<&str>| f.len() >= 8).collect();
    let me = lines.iter().find(|f| f[2].split(',').any(|x| x == "myself"))?;
    let flags: Vec<&str> = me[2].split(',').collect();
    let role = if flags.contains(&"master") {
        "master"
    } else if flags.contains(&"slave") || flags.contains(&"replica") {
        "replica"
    } else {
        "unknown"
    };
    let slots = me[8..].iter().filter(|s| !s.starts_with('[')).copied().collect::<Vec<_>>().join(" ");
    let master = (me[3] != "-").then(|| {
        lines
            .iter()
            .find(|f| f[0] == me[3])
            .map(|f| {
                // ip:port@cport,hostname
                let addr = f[1];
                match addr.split_once(',') {
                    Some((_, host)) if !host.is_empty() => host.to_string(),
                    _ => addr.split('@').next().unwrap_or(addr).to_string(),
                }
            })
            .unwrap_or_else(|| me[3].chars().take(8).collect())
    });
    Some((role.to_string(), slots, master))
}

/// The Galera servers HAProxy considers up, from its Prometheus exporter
/// (`haproxy_server_status{proxy="galera",server="galera-1",state="UP"} 1`, or the older
/// `haproxy_server_status{proxy="galera",server="galera-1"} 1`) or its stats CSV.
pub fn haproxy_up_servers(text: &str, backend: &str) -> Option<Vec<String>> {
    let mut up = Vec::new();
    let mut seen = false;
    if text.starts_with("# pxname") {
        let header: Vec<&str> = text.lines().next()?.trim_start_matches("# ").split(',').collect();
        let col = |n: &str| header.iter().position(|h| *h == n);
        let (px, sv, st) = (col("pxname")?, col("svname")?, col("status")?);
        for l in text.lines().skip(1) {
            let f: Vec<&str> = l.split(',').collect();
            if f.len() > st && f[px] == backend && f[sv] != "BACKEND" && f[sv] != "FRONTEND" {
                seen = true;
                if f[st].starts_with("UP") {
                    up.push(f[sv].to_string());
                }
            }
        }
        return seen.then_some(up);
    }
    for l in text.lines() {
        let Some(rest) = l.strip_prefix("haproxy_server_status{") else { continue };
        let Some((labels, value)) = rest.split_once("} ") else { continue };
        let label = |k: &str| {
            labels
                .split(',')
                .find_map(|kv| kv.strip_prefix(&format!("{k}=\"")))
                .map(|v| v.trim_end_matches('"'))
        };
        if label("proxy") != Some(backend) {
            continue;
        }
        let Some(server) = label("server") else { continue };
        seen = true;
        let v: f64 = value.trim().parse().unwrap_or(0.0);
        let is_up = match label("state") {
            Some(state) => state == "UP" && v == 1.0,
            None => v == 1.0,
        };
        if is_up && !up.iter().any(|u| u == server) {
            up.push(server.to_string());
        }
    }
    seen.then_some(up)
}

/// Which node takes the writes: HAProxy's policy (compose/haproxy/haproxy.cfg) is the first node
/// in order that is up — galera-1, else galera-2, else galera-3. From HAProxy's own view when it
/// answered, else from the nodes' readiness.
pub fn writer(order: &[String], haproxy_up: Option<&[String]>, ready: &[String]) -> Option<String> {
    let up = haproxy_up.unwrap_or(ready);
    order.iter().find(|n| up.iter().any(|u| u == *n)).cloned()
}

/// Prometheus' answer to an instant query whose result is one number.
pub fn prom_scalar(v: &Value) -> Option<f64> {
    let r = v.pointer("/data/result")?.as_array()?;
    let first = r.first()?;
    let x = first.pointer("/value/1")?.as_str()?.parse::<f64>().ok()?;
    x.is_finite().then_some(x)
}

/// Prometheus' vector answer by one label.
pub fn prom_by(v: &Value, label: &str) -> HashMap<String, f64> {
    let mut out = HashMap::new();
    let empty = Vec::new();
    for e in v.pointer("/data/result").and_then(Value::as_array).unwrap_or(&empty) {
        let (Some(k), Some(x)) = (
            e.pointer(&format!("/metric/{label}")).and_then(Value::as_str),
            e.pointer("/value/1").and_then(Value::as_str).and_then(|x| x.parse::<f64>().ok()),
        ) else {
            continue;
        };
        if x.is_finite() {
            out.insert(k.to_string(), x);
        }
    }
    out
}

/// `10.0.1.5:8080` → `10.0.1.5` (IPv6 in brackets too).
pub fn instance_host(instance: &str) -> &str {
    let h = instance.rsplit_once(':').map(|(h, _)| h).unwrap_or(instance);
    h.trim_start_matches('[').trim_end_matches(']')
}

/// A range query's series: [(t_unix_s, value)].
pub fn prom_series(v: &Value) -> Vec<(f64, f64)> {
    let empty = Vec::new();
    v.pointer("/data/result")
        .and_then(Value::as_array)
        .and_then(|r| r.first())
        .and_then(|s| s.get("values"))
        .and_then(Value::as_array)
        .unwrap_or(&empty)
        .iter()
        .filter_map(|p| {
            let t = p.get(0)?.as_f64()?;
            let x = p.get(1)?.as_str()?.parse::<f64>().ok()?;
            x.is_finite().then_some((t, x))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn replica_states_from_the_managers_view() {
        let state = json!({
            "replicas": [
                {"name": "ds13-shop-1", "number": 1, "ip": "10.0.2.3", "ips": ["10.0.1.3", "10.0.2.3"],
                 "docker_state": "running", "verdict": "alive", "restarts": 0},
                {"name": "ds13-shop-2", "number": 2, "docker_state": "paused", "verdict": "alive"},
                {"name": "ds13-shop-3", "number": 3, "docker_state": "running", "verdict": "silent for 1200 ms"},
                {"name": "ds13_shop_4", "number": 0, "docker_state": "running", "verdict": "waiting"},
                {"name": "ds13-shop-5", "number": 5, "docker_state": "running", "verdict": "alive",
                 "action_in_progress": "restart"},
                // beat before, stream closed, Docker not yet listing it exited: killed
                {"name": "ds13-shop-7", "number": 7, "docker_state": "running", "docker_health": "healthy",
                 "verdict": "waiting", "beats": 40},
                // beat before, restarted by Docker: its health check starts again
                {"name": "ds13-shop-8", "number": 8, "docker_state": "running", "docker_health": "starting",
                 "verdict": "waiting", "beats": 40},
            ],
            "stopped": [{"name": "ds13-shop-6", "number": 6, "docker_state": "exited"}],
        });
        let rps: HashMap<String, f64> = [("10.0.1.3".to_string(), 12.5)].into();
        let r = replicas_from_manager(&state, "shop", &rps);
        let got: Vec<(&str, &str)> = r.iter().map(|r| (r.name.as_str(), r.state.as_str())).collect();
        assert_eq!(
            got,
            vec![
                ("shop-1", UP),
                ("shop-2", FROZEN),
                ("shop-3", FROZEN),
                ("shop-4", STARTING),
                ("shop-5", STARTING),
                ("shop-6", DOWN),
                ("shop-7", DOWN),
                ("shop-8", STARTING)
            ]
        );
        assert_eq!(r[0].rps, Some(12.5));
        assert_eq!(replica_name("p_shop_12", 0, "shop"), "shop-12");
        assert_eq!(replica_name("weird", 0, "shop"), "weird");
    }

    #[test]
    fn galera_health_text_is_read() {
        let ok = "ready: wsrep_local_state=4 (Synced) wsrep_cluster_status=Primary wsrep_ready=ON wsrep_connected=ON wsrep_cluster_size=3\n";
        assert_eq!(galera_from_health(200, ok), ("synced".into(), Some(3), true));
        let donor = "not ready: wsrep_local_state is 2 (Donor/Desynced), want 4 (Synced); seen: wsrep_local_state=2 (Donor/Desynced) wsrep_cluster_status=Primary wsrep_ready=ON wsrep_connected=ON wsrep_cluster_size=3\n";
        assert_eq!(galera_from_health(503, donor), ("donor/desynced".into(), Some(3), false));
        let cut = "not ready: wsrep_cluster_status is non-Primary, want Primary; seen: wsrep_local_state=4 (Synced) wsrep_cluster_status=non-Primary wsrep_ready=OFF wsrep_connected=ON wsrep_cluster_size=1\n";
        assert_eq!(galera_from_health(503, cut), ("synced (non-primary)".into(), Some(1), false));
        let dead = "not ready: cannot query the local node: connect failed: refused\n";
        assert_eq!(galera_from_health(503, dead), ("not ready".into(), None, false));
    }

    #[test]
    fn cluster_nodes_give_role_slots_and_master() {
        let nodes = "\
a1 10.0.1.2:6379@16379,redis-1 myself,master - 0 0 1 connected 0-5460
b2 10.0.1.3:6379@16379,redis-2 master - 0 1700000000000 2 connected 5461-10922
d4 10.0.1.5:6379@16379,redis-4 slave a1 0 1700000000000 1 connected
";
        assert_eq!(redis_myself(nodes), Some(("master".into(), "0-5460".into(), None)));
        let replica = nodes
            .replace("myself,master", "master")
            .replace("d4 10.0.1.5:6379@16379,redis-4 slave", "d4 10.0.1.5:6379@16379,redis-4 myself,slave");
        assert_eq!(redis_myself(&replica), Some(("replica".into(), "".into(), Some("redis-1".into()))));
        assert_eq!(redis_myself("garbage"), None);
    }

    #[test]
    fn haproxy_says_which_galera_servers_are_up() {
        let metrics = r#"# TYPE haproxy_server_status gauge
haproxy_server_status{proxy="galera",server="galera-1",state="DOWN"} 1
haproxy_server_status{proxy="galera",server="galera-1",state="UP"} 0
haproxy_server_status{proxy="galera",server="galera-2",state="UP"} 1
haproxy_server_status{proxy="galera",server="galera-3",state="UP"} 1
haproxy_server_status{proxy="stats",server="x",state="UP"} 1
"#;
        let up = haproxy_up_servers(metrics, "galera").unwrap();
        assert_eq!(up, vec!["galera-2", "galera-3"]);
        let order: Vec<String> = ["galera-1", "galera-2", "galera-3"].map(String::from).to_vec();
        assert_eq!(writer(&order, Some(&up), &[]), Some("galera-2".into()));
        let csv = "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight\n\
galera,galera-1,0,0,0,0,,0,0,0,,0,,0,0,0,0,UP,1\n\
galera,galera-2,0,0,0,0,,0,0,0,,0,,0,0,0,0,DOWN,1\n\
galera,BACKEND,0,0,0,0,,0,0,0,,0,,0,0,0,0,UP,1\n";
        assert_eq!(haproxy_up_servers(csv, "galera").unwrap(), vec!["galera-1"]);
        assert_eq!(haproxy_up_servers("nothing", "galera"), None);
        // HAProxy silent: the nodes' own readiness decides
        let ready: Vec<String> = vec!["galera-3".into(), "galera-1".into()];
        assert_eq!(writer(&order, None, &ready), Some("galera-1".into()));
    }

    #[test]
    fn prometheus_answers_are_read() {
        let v = json!({"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1.0,"95.5"]}]}});
        assert_eq!(prom_scalar(&v), Some(95.5));
        let nan = json!({"data":{"result":[{"metric":{},"value":[1.0,"NaN"]}]}});
        assert_eq!(prom_scalar(&nan), None);
        let by = json!({"data":{"result":[{"metric":{"instance":"10.0.1.3:8080"},"value":[1.0,"3"]}]}});
        assert_eq!(prom_by(&by, "instance").get("10.0.1.3:8080"), Some(&3.0));
        assert_eq!(instance_host("10.0.1.3:8080"), "10.0.1.3");
        assert_eq!(instance_host("[fd00::3]:8080"), "fd00::3");
        let range = json!({"data":{"result":[{"metric":{},"values":[[1.0,"1"],[3.0,"2"]]}]}});
        assert_eq!(prom_series(&range), vec![(1.0, 1.0), (3.0, 2.0)]);
    }
}
