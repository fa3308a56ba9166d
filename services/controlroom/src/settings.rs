//! Settings from the environment (`CONTROL_*`), checked at start with one line naming the
//! variable; the tokens are redacted in `Debug`.

use std::{fmt, net::SocketAddr, path::PathBuf, time::Duration};

/// The PromQL the page reads. The defaults are the recording rules of
/// compose/prometheus/rules.yml; each can be replaced (`CONTROL_PROM_*`) by raw PromQL over the
/// shop's own metrics, e.g. `sum(rate(shop_http_requests_total[10s]))`.
#[derive(Clone, Debug)]
pub struct Queries {
    pub rps: String,
    pub errors_per_s: String,
    pub p99_ms: String,
    /// By `instance` (`<replica address>:8080`).
    pub rps_by_instance: String,
}

#[derive(Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub token: Option<String>,
    pub manager_url: String,
    pub manager_token: Option<String>,
    pub prometheus_url: String,
    pub log_dir: PathBuf,
    /// Bytes of log files one search reads at most (newest files first).
    pub log_scan_bytes: u64,
    pub galera: Vec<String>,
    pub galera_health_port: u16,
    pub redis: Vec<String>,
    pub nginx_url: String,
    pub haproxy_url: String,
    pub log_json: bool,
    pub shop_service: String,
    pub queries: Queries,
    /// Bound on every call to a backend.
    pub backend_timeout: Duration,
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("listen", &self.listen)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("manager_url", &self.manager_url)
            .field("manager_token", &self.manager_token.as_ref().map(|_| "<redacted>"))
            .field("prometheus_url", &self.prometheus_url)
            .field("log_dir", &self.log_dir)
            .field("galera", &self.galera)
            .field("redis", &self.redis)
            .field("nginx_url", &self.nginx_url)
            .field("haproxy_url", &self.haproxy_url)
            .finish_non_exhaustive()
    }
}

fn list(v: &str) -> Vec<String> {
    v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
}

impl Settings {
    pub fn from_env() -> Result<Settings, String> {
        Self::from_lookup(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Settings, String> {
        let or = |k: &str, d: &str| get(k).unwrap_or_else(|| d.to_string());
        let listen = or("CONTROL_LISTEN", "0.0.0.0:8090");
        let listen = listen.parse().map_err(|_| format!("CONTROL_LISTEN=`{listen}`: expected host:port"))?;
        let token = get("CONTROL_TOKEN");
        if token.as_ref().is_some_and(|t| t.len() < 16) {
            return Err(
                "CONTROL_TOKEN: use at least 16 characters (it lets its holder break the stack)".into()
            );
        }
        let port = or("CONTROL_GALERA_HEALTH_PORT", "9200");
        let galera_health_port =
            port.parse().map_err(|_| format!("CONTROL_GALERA_HEALTH_PORT=`{port}`: expected a port"))?;
        let log_json = match get("CONTROL_LOG_FORMAT").as_deref() {
            None | Some("text") => false,
            Some("json") => true,
            Some(o) => return Err(format!("CONTROL_LOG_FORMAT=`{o}`: use `json` or `text`")),
        };
        let scan = or("CONTROL_LOG_SCAN_MB", "64");
        let log_scan_bytes = scan
            .parse::<u64>()
            .ok()
            .filter(|n| (1..=4096).contains(n))
            .ok_or_else(|| format!("CONTROL_LOG_SCAN_MB=`{scan}`: expected 1..=4096"))?
            * 1024
            * 1024;
        let ms = or("CONTROL_BACKEND_TIMEOUT_MS", "800");
        let backend_timeout = ms
            .parse::<u64>()
            .ok()
            .filter(|n| (50..=10_000).contains(n))
            .map(Duration::from_millis)
            .ok_or_else(|| format!("CONTROL_BACKEND_TIMEOUT_MS=`{ms}`: expected 50..=10000"))?;
        Ok(Settings {
            listen,
            token,
            manager_url: or("CONTROL_MANAGER_URL", "http://manager:9091").trim_end_matches('/').to_string(),
            manager_token: get("CONTROL_MANAGER_TOKEN"),
            prometheus_url: or("CONTROL_PROMETHEUS_URL", "http://prometheus:9090")
                .trim_end_matches('/')
                .to_string(),
            log_dir: PathBuf::from(or("CONTROL_LOG_DIR", "/var/log/distshop")),
            log_scan_bytes,
            galera: list(&or("CONTROL_GALERA", "galera-1,galera-2,galera-3")),
            galera_health_port,
            redis: list(&or(
                "CONTROL_REDIS",
                "redis-1:6379,redis-2:6379,redis-3:6379,redis-4:6379,redis-5:6379,redis-6:6379",
            )),
            nginx_url: or("CONTROL_NGINX_URL", "http://nginx/nginx-health"),
            haproxy_url: or("CONTROL_HAPROXY_URL", "http://db:8405").trim_end_matches('/').to_string(),
            log_json,
            shop_service: or("CONTROL_SHOP_SERVICE", "shop"),
            queries: Queries {
                rps: or("CONTROL_PROM_RPS", "job:shop_requests:rate10s"),
                errors_per_s: or("CONTROL_PROM_ERRORS", "job:shop_errors:rate10s"),
                p99_ms: or("CONTROL_PROM_P99_MS", "job:shop_latency_seconds:p99_10s * 1000"),
                rps_by_instance: or("CONTROL_PROM_RPS_BY_INSTANCE", "instance:shop_requests:rate10s"),
            },
            backend_timeout,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn defaults_and_bad_values() {
        let s = Settings::from_lookup(|_| None).unwrap();
        assert_eq!(s.listen.port(), 8090);
        assert_eq!(s.redis.len(), 6);
        assert!(s.token.is_none());
        let e = Settings::from_lookup(|k| (k == "CONTROL_TOKEN").then(|| "short".to_string())).err().unwrap();
        assert!(e.contains("CONTROL_TOKEN"), "{e}");
        let e =
            Settings::from_lookup(|k| (k == "CONTROL_LOG_FORMAT").then(|| "xml".to_string())).err().unwrap();
        assert!(e.contains("CONTROL_LOG_FORMAT"), "{e}");
        let s = Settings::from_lookup(|k| (k == "CONTROL_TOKEN").then(|| "0123456789abcdef0123".to_string()))
            .unwrap();
        assert!(!format!("{s:?}").contains("0123456789abcdef"));
    }
}
