//! Fault buttons: checked here (known action, a target this stack has), then carried out by the
//! heartbeat manager (`POST /api/faults` there), the only service holding the Docker socket.
//! Every attempt is recorded (time, action, target, outcome) and marked on the chart.

use std::time::Duration;

use actix_web::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::{
    state::AppState,
    status::{FaultRecord, Status},
};

pub const ACTIONS: [&str; 9] = [
    "replica-kill",
    "replica-stop",
    "replica-freeze",
    "galera-kill",
    "galera-disconnect",
    "galera-reconnect",
    "redis-master-kill",
    "haproxy-kill",
    "scale",
];

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct FaultRequest {
    pub action: String,
    #[serde(default)]
    pub target: String,
    #[serde(default)]
    pub replicas: Option<usize>,
}

#[derive(Debug, PartialEq, Eq)]
pub struct Refused {
    pub status: StatusCode,
    pub message: String,
}

fn refuse(status: StatusCode, message: impl Into<String>) -> Refused {
    Refused { status, message: message.into() }
}

/// Is the request one this stack can carry out? 400 for a malformed one, 404 for a target it
/// does not have, 409 for a Redis node that is not a master.
pub fn validate(
    r: &FaultRequest,
    galera: &[String],
    redis: &[String],
    status: &Status,
) -> Result<(), Refused> {
    if !ACTIONS.contains(&r.action.as_str()) {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            format!("unknown action `{}`: use one of {}", r.action, ACTIONS.join(", ")),
        ));
    }
    let t = r.target.trim();
    if t.len() > 64 || !t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        return Err(refuse(StatusCode::BAD_REQUEST, "target: letters, digits, - and _ only, at most 64"));
    }
    let host = |s: &String| s.split(':').next().unwrap_or(s).to_string();
    let missing = |what: &str| refuse(StatusCode::NOT_FOUND, format!("no {what} `{t}` in this stack"));
    match r.action.as_str() {
        "replica-kill" | "replica-stop" | "replica-freeze" => {
            if !status.replicas.iter().any(|x| x.name == t) {
                return Err(missing("replica"));
            }
        }
        "galera-kill" | "galera-disconnect" | "galera-reconnect" => {
            if !galera.iter().any(|g| g == t) {
                return Err(missing("Galera node"));
            }
        }
        "redis-master-kill" => {
            if !redis.iter().map(host).any(|h| h == t) {
                return Err(missing("Redis node"));
            }
            if let Some(n) = status.redis.iter().find(|n| n.name == t) {
                if n.role != "master" {
                    return Err(refuse(
                        StatusCode::CONFLICT,
                        format!("{t} is not a master now (it is {})", n.role),
                    ));
                }
            }
        }
        "haproxy-kill" => {
            if !matches!(t, "" | "db" | "haproxy") {
                return Err(missing("HAProxy"));
            }
        }
        _ => match r.replicas {
            Some(n) if (1..=64).contains(&n) => {}
            _ => return Err(refuse(StatusCode::BAD_REQUEST, "scale needs `replicas` between 1 and 64")),
        },
    }
    Ok(())
}

/// Validate, ask the manager, record. The answer to give: (status, JSON).
pub async fn inject(app: &AppState, r: FaultRequest) -> (StatusCode, Value) {
    let status = app.status().await;
    let s = &app.settings;
    if let Err(e) = validate(&r, &s.galera, &s.redis, &status) {
        return (e.status, json!({"error": e.message}));
    }
    let target = if r.action == "scale" {
        format!("{} × {}", s.shop_service, r.replicas.unwrap_or(0))
    } else {
        r.target.trim().to_string()
    };
    tracing::info!(fault.action = %r.action, fault.target = %target, "fault asked");
    let url = format!("{}/api/faults", s.manager_url);
    let mut req = app.probes.http.post(&url).timeout(Duration::from_secs(90)).json(&r);
    if let Some(t) = &s.manager_token {
        req = req.bearer_auth(t);
    }
    let (code, body) = match req.send().await {
        Ok(resp) => {
            let code = StatusCode::from_u16(resp.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
            let body: Value =
                resp.json().await.unwrap_or_else(|_| json!({"error": "the manager's answer was not JSON"}));
            (code, body)
        }
        Err(e) => (StatusCode::BAD_GATEWAY, json!({"error": format!("the manager did not answer: {e}")})),
    };
    let (outcome, detail) = if code.is_success() {
        ("ok".to_string(), body.get("detail").and_then(Value::as_str).unwrap_or("").to_string())
    } else {
        let msg = body.get("error").and_then(Value::as_str).unwrap_or("failed").to_string();
        (format!("failed: {msg}"), String::new())
    };
    if code.is_success() {
        tracing::info!(fault.action = %r.action, fault.target = %target, %detail, "fault injected");
    } else {
        tracing::warn!(fault.action = %r.action, fault.target = %target, %outcome, "fault not injected");
    }
    let now = crate::unix_ms();
    app.record_fault(FaultRecord {
        at_unix_ms: now,
        at: crate::status::hms(now),
        action: r.action.clone(),
        target: target.clone(),
        outcome: outcome.clone(),
        detail: detail.clone(),
    });
    let answer =
        json!({"action": r.action, "target": target, "outcome": outcome, "detail": detail, "manager": body});
    // a manager refusing (4xx) is passed on; its own failure is a bad gateway for us
    let code = if code.is_success() {
        StatusCode::OK
    } else if code.is_client_error() && code != StatusCode::UNAUTHORIZED && code != StatusCode::FORBIDDEN {
        code
    } else {
        StatusCode::BAD_GATEWAY
    };
    (code, answer)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::status::{RedisNode, Replica};

    fn req(action: &str, target: &str) -> FaultRequest {
        FaultRequest { action: action.into(), target: target.into(), replicas: None }
    }

    #[test]
    fn faults_are_checked_before_the_manager_is_asked() {
        let galera: Vec<String> = vec!["galera-1".into(), "galera-2".into()];
        let redis: Vec<String> = vec!["redis-1:6379".into(), "redis-4:6379".into()];
        let status = Status {
            replicas: vec![Replica { name: "shop-2".into(), state: "up".into(), ..Default::default() }],
            redis: vec![
                RedisNode { name: "redis-1".into(), role: "master".into(), ..Default::default() },
                RedisNode { name: "redis-4".into(), role: "replica".into(), ..Default::default() },
            ],
            ..Default::default()
        };
        let v = |r: &FaultRequest| validate(r, &galera, &redis, &status).map_err(|e| e.status);
        assert_eq!(v(&req("replica-kill", "shop-2")), Ok(()));
        assert_eq!(v(&req("replica-kill", "shop-9")), Err(StatusCode::NOT_FOUND));
        assert_eq!(v(&req("replica-kill", "shop-2; rm -rf")), Err(StatusCode::BAD_REQUEST));
        assert_eq!(v(&req("rm", "shop-2")), Err(StatusCode::BAD_REQUEST));
        assert_eq!(v(&req("galera-disconnect", "galera-2")), Ok(()));
        assert_eq!(v(&req("galera-kill", "galera-7")), Err(StatusCode::NOT_FOUND));
        assert_eq!(v(&req("redis-master-kill", "redis-1")), Ok(()));
        assert_eq!(v(&req("redis-master-kill", "redis-4")), Err(StatusCode::CONFLICT));
        assert_eq!(v(&req("haproxy-kill", "db")), Ok(()));
        assert_eq!(v(&req("haproxy-kill", "nginx")), Err(StatusCode::NOT_FOUND));
        assert_eq!(v(&req("scale", "")), Err(StatusCode::BAD_REQUEST));
        let mut s = req("scale", "");
        s.replicas = Some(4);
        assert_eq!(v(&s), Ok(()));
        s.replicas = Some(0);
        assert_eq!(v(&s), Err(StatusCode::BAD_REQUEST));
    }
}
