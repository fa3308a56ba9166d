//! Asking every backend, all at once, each call bounded by `CONTROL_BACKEND_TIMEOUT_MS`: the
//! manager's `/state`, Prometheus, galera-health on each node, `CLUSTER NODES` on each Redis
//! node, nginx and HAProxy. A backend that does not answer becomes a tile state (`down`), never
//! an error of the page.

use std::{collections::HashMap, sync::Arc, time::Duration};

use futures_util::future::join_all;
use serde_json::Value;
use tokio::sync::Mutex;

use crate::{
    settings::Settings,
    status::{self, Edge, GaleraNode, Load, RedisNode, Status},
};

pub struct Probes {
    pub http: reqwest::Client,
    settings: Arc<Settings>,
    /// One kept connection per Redis node, dropped on any error.
    redis: Mutex<HashMap<String, redis::aio::MultiplexedConnection>>,
}

async fn bounded<T>(t: Duration, f: impl std::future::Future<Output = Option<T>>) -> Option<T> {
    tokio::time::timeout(t, f).await.ok().flatten()
}

impl Probes {
    pub fn new(settings: Arc<Settings>) -> anyhow::Result<Probes> {
        let http = reqwest::Client::builder()
            .timeout(settings.backend_timeout)
            .connect_timeout(settings.backend_timeout.min(Duration::from_millis(500)))
            .pool_idle_timeout(Duration::from_secs(30))
            .build()?;
        Ok(Probes { http, settings, redis: Mutex::new(HashMap::new()) })
    }

    /// GET url → (status, body); None when it did not answer in time.
    async fn get(&self, url: &str, bearer: Option<&str>) -> Option<(u16, String)> {
        let mut req = self.http.get(url);
        if let Some(t) = bearer {
            req = req.bearer_auth(t);
        }
        let f = async {
            let r = req.send().await.ok()?;
            let code = r.status().as_u16();
            Some((code, r.text().await.ok()?))
        };
        bounded(self.settings.backend_timeout, f).await
    }

    async fn get_json(&self, url: &str) -> Option<Value> {
        let (code, body) = self.get(url, None).await?;
        if code != 200 {
            return None;
        }
        serde_json::from_str(&body).ok()
    }

    /// Prometheus instant query.
    pub async fn prom(&self, q: &str) -> Option<Value> {
        let url = reqwest::Url::parse_with_params(
            &format!("{}/api/v1/query", self.settings.prometheus_url),
            &[("query", q)],
        )
        .ok()?;
        self.get_json(url.as_str()).await
    }

    /// Prometheus range query over the last `secs`, every `step` seconds.
    pub async fn prom_range(&self, q: &str, start: f64, end: f64, step: u32) -> Option<Value> {
        let url = reqwest::Url::parse_with_params(
            &format!("{}/api/v1/query_range", self.settings.prometheus_url),
            &[
                ("query", q),
                ("start", &format!("{start:.3}")),
                ("end", &format!("{end:.3}")),
                ("step", &format!("{step}s")),
            ],
        )
        .ok()?;
        self.get_json(url.as_str()).await
    }

    async fn galera_node(&self, name: &str) -> (String, Option<(u16, String)>) {
        let url = format!("http://{name}:{}/", self.settings.galera_health_port);
        (name.to_string(), self.get(&url, None).await)
    }

    async fn redis_node(&self, addr: &str) -> RedisNode {
        let name = addr.split(':').next().unwrap_or(addr).to_string();
        let t = self.settings.backend_timeout;
        let cached = self.redis.lock().await.get(addr).cloned();
        let conn = match cached {
            Some(c) => Some(c),
            None => {
                let cfg = redis::AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(t))
                    .set_response_timeout(Some(t));
                let f = async {
                    let client = redis::Client::open(format!("redis://{addr}/")).ok()?;
                    client.get_multiplexed_async_connection_with_config(&cfg).await.ok()
                };
                bounded(t, f).await
            }
        };
        let Some(mut conn) = conn else {
            return RedisNode {
                name,
                role: "down".into(),
                detail: "no connection".into(),
                ..Default::default()
            };
        };
        let answer: Option<String> = bounded(t, async {
            redis::cmd("CLUSTER").arg("NODES").query_async::<String>(&mut conn).await.ok()
        })
        .await;
        match answer.as_deref().and_then(status::redis_myself) {
            Some((role, slots, master)) => {
                self.redis.lock().await.insert(addr.to_string(), conn);
                RedisNode { name, role, slots, master, detail: String::new() }
            }
            None => {
                self.redis.lock().await.remove(addr);
                RedisNode {
                    name,
                    role: "down".into(),
                    detail: "no answer to CLUSTER NODES".into(),
                    ..Default::default()
                }
            }
        }
    }

    /// HAProxy's view of the Galera servers: its Prometheus exporter (`/metrics`), else its
    /// stats CSV (`;csv`). None when it answered neither. One time budget for all its URLs
    /// (one host and port): a hung HAProxy costs one timeout, not three, so the snapshot, and
    /// with it every tile, still changes within 2 s.
    async fn haproxy(&self) -> (bool, Option<Vec<String>>) {
        tokio::time::timeout(self.settings.backend_timeout, self.haproxy_urls())
            .await
            .unwrap_or((false, None))
    }

    async fn haproxy_urls(&self) -> (bool, Option<Vec<String>>) {
        let base = &self.settings.haproxy_url;
        let mut answered = false;
        for url in [format!("{base}/metrics"), format!("{base}/;csv")] {
            if let Some((code, body)) = self.get(&url, None).await {
                answered = true;
                if code == 200 {
                    if let Some(up) = status::haproxy_up_servers(&body, "galera") {
                        return (true, Some(up));
                    }
                }
            }
        }
        if !answered {
            // its monitor URI at least
            answered = self.get(&format!("{base}/healthz"), None).await.is_some_and(|(c, _)| c == 200);
        }
        (answered, None)
    }

    /// Everything at once; the parts the control room keeps itself (faults, simulator) are
    /// filled in by the caller.
    pub async fn snapshot(&self) -> Status {
        let s = &self.settings;
        let manager_url = format!("{}/state", s.manager_url);
        let manager = async {
            let (code, body) = self.get(&manager_url, None).await?;
            (code == 200).then(|| serde_json::from_str::<Value>(&body).ok()).flatten()
        };
        let q = &s.queries;
        let prom = join_all(
            [q.rps.as_str(), q.errors_per_s.as_str(), q.p99_ms.as_str(), q.rps_by_instance.as_str()]
                .map(|x| self.prom(x)),
        );
        let galera = join_all(s.galera.iter().map(|g| self.galera_node(g)));
        let redis = join_all(s.redis.iter().map(|r| self.redis_node(r)));
        let nginx = self.get(&s.nginx_url, None);
        let (manager, prom, galera, redis, nginx, (haproxy_answered, haproxy_up)) =
            tokio::join!(manager, prom, galera, redis, nginx, self.haproxy());

        let prom_up = prom.iter().any(Option::is_some);
        let by_instance = prom[3].as_ref().map(|v| status::prom_by(v, "instance")).unwrap_or_default();
        let rps_by_ip: HashMap<String, f64> =
            by_instance.iter().map(|(k, v)| (status::instance_host(k).to_string(), *v)).collect();
        let load = Load {
            rps: prom[0].as_ref().and_then(status::prom_scalar).or(prom[0].as_ref().map(|_| 0.0)),
            errors_per_s: prom[1].as_ref().and_then(status::prom_scalar).or(prom[1].as_ref().map(|_| 0.0)),
            p99_ms: prom[2].as_ref().and_then(status::prom_scalar),
        };
        let replicas = manager
            .as_ref()
            .map(|m| status::replicas_from_manager(m, &s.shop_service, &rps_by_ip))
            .unwrap_or_default();
        let manager_actions = manager.as_ref().map(status::manager_actions).unwrap_or_default();

        let mut nodes: Vec<GaleraNode> = galera
            .into_iter()
            .map(|(name, answer)| match answer {
                Some((code, body)) => {
                    let (state, cluster_size, ready) = status::galera_from_health(code, &body);
                    GaleraNode {
                        name,
                        state,
                        cluster_size,
                        writer: false,
                        ready,
                        detail: body.trim().to_string(),
                    }
                }
                None => GaleraNode {
                    name,
                    state: "down".into(),
                    detail: "galera-health did not answer".into(),
                    ..Default::default()
                },
            })
            .collect();
        let ready: Vec<String> = nodes.iter().filter(|n| n.ready).map(|n| n.name.clone()).collect();
        let w = status::writer(&s.galera, haproxy_up.as_deref(), &ready);
        for n in &mut nodes {
            n.writer = w.as_deref() == Some(n.name.as_str());
        }

        let up = |b: bool| if b { "up" } else { "down" }.to_string();
        let edge = vec![
            Edge {
                name: "nginx".into(),
                state: up(nginx.as_ref().is_some_and(|(c, _)| *c == 200)),
                detail: match &nginx {
                    Some((c, _)) => format!("{} answered {c}", s.nginx_url),
                    None => format!("{} did not answer", s.nginx_url),
                },
            },
            Edge {
                name: "haproxy".into(),
                state: up(haproxy_answered),
                detail: match (&haproxy_up, haproxy_answered) {
                    (Some(u), _) => format!(
                        "galera servers up: {}",
                        if u.is_empty() { "none".into() } else { u.join(", ") }
                    ),
                    (None, true) => "answering".into(),
                    (None, false) => "did not answer".into(),
                },
            },
            Edge {
                name: "manager".into(),
                state: up(manager.is_some()),
                detail: manager
                    .as_ref()
                    .and_then(|m| {
                        m.get("docker_error").and_then(Value::as_str).map(|e| format!("docker: {e}"))
                    })
                    .unwrap_or_else(|| {
                        if manager.is_some() {
                            "heartbeats".into()
                        } else {
                            "did not answer".into()
                        }
                    }),
            },
            Edge {
                name: "prometheus".into(),
                state: up(prom_up),
                detail: if prom_up { "answering".into() } else { "did not answer".into() },
            },
        ];
        Status {
            replicas,
            galera: nodes,
            redis,
            edge,
            load,
            at_unix_ms: crate::unix_ms(),
            manager_actions,
            faults: Vec::new(),
            simulator: None,
        }
    }
}
