//! Typed configuration from `SHOP_*` environment variables.
//!
//! Everything the process needs is read and validated once, at start. A bad value stops the
//! process with one line that names the variable, so a misconfigured replica never half-starts.

use std::{collections::HashMap, fmt, net::SocketAddr, time::Duration};

/// Where the relational data lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DatabaseKind {
    Sqlite,
    Mysql,
}

/// Validated settings of one shop process.
#[derive(Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub database_url: String,
    /// Redis Cluster seed URLs; empty means the in-process session store.
    pub redis_urls: Vec<String>,
    /// Prefix of every key the shop writes to Redis (tests use one per test).
    pub redis_prefix: String,
    /// Secret that signs session cookies and CSRF tokens; shared by all replicas.
    pub session_key: Vec<u8>,
    /// True when the key was generated for this process (embedded mode only).
    pub session_key_generated: bool,
    pub cookie_secure: bool,
    pub admin_email: String,
    /// `None`: generate one (and print it) when the admin account is created.
    pub admin_password: Option<String>,
    pub log_json: bool,
    pub workers: usize,
    /// Bound on every single database statement and on acquiring a pooled connection.
    pub db_timeout: Duration,
    /// Bound on every session-store round trip.
    pub store_timeout: Duration,
    /// How long a database read or transaction keeps retrying a lost connection, a timeout or a
    /// conflict before the client gets a 503 (covers a Galera writer failover behind HAProxy).
    pub db_retry: Duration,
    /// How long a session-store call keeps retrying (covers a Redis Cluster master failover).
    pub store_retry: Duration,
    pub db_max_connections: u32,
    /// Session lifetime in the store.
    pub session_ttl: Duration,
    /// Replicas that must acknowledge a session/cart write (`None`: 1 on a cluster, 0 otherwise).
    pub redis_wait_replicas: Option<u32>,
    pub redis_wait_timeout: Duration,
    /// Connections reserved for writes that wait for a replica (`WAIT` blocks the connection it
    /// is sent on, so these never share one with reads or with each other).
    pub redis_write_connections: usize,
    /// MySQL/Galera: `wsrep_sync_wait` set on every pooled connection (causal reads), if any.
    pub db_sync_wait: Option<u8>,
    /// How long a replica keeps a rendered catalog response (0: not at all). Stock shown to
    /// visitors may lag by this much; checkout never reads it.
    pub catalog_cache: Duration,
    /// How long a replica keeps a single product (cart pricing, the cart's advisory stock check;
    /// 0: not at all). Longer than the catalog's, because a change made on any replica drops it
    /// on every replica within milliseconds (Redis pub/sub, [`crate::state::AppState::hear`]);
    /// this lifetime bounds only what a lost message could leave behind.
    pub product_cache: Duration,
    /// Fault injection for the failover suite (`SHOP_FAULT=http500`: "a bad deploy" that answers
    /// 500 to every request but its probes). Off unless set; logged loudly at start.
    pub fault_http500: bool,
    /// Peers whose `X-Real-IP` / `X-Forwarded-Proto` are believed (`SHOP_TRUSTED_PROXIES`: IPs,
    /// CIDRs or host names, re-resolved every few seconds). Empty: no header is believed and the
    /// client is the TCP peer.
    pub trusted_proxies: Vec<String>,
    /// Accounts one client address may register per hour (`SHOP_REGISTER_LIMIT`; 0: no limit).
    pub register_limit: u32,
    /// Password checks one client address may have queued or running at once, per replica.
    pub hash_per_client: usize,
    /// How long reading a request body may take before the client gets a 408.
    pub body_timeout: Duration,
    /// What `X-Served-By`, the footer and the probes call this replica (`SHOP_REPLICA_NAME`).
    /// `None`: the compose service and index when [`Self::service_name`] is set and Docker's DNS
    /// tells it, else the hostname ([`crate::replica`]).
    pub replica_name: Option<String>,
    /// The compose service this replica belongs to (`SHOP_SERVICE_NAME`, compose sets `shop`):
    /// with no `SHOP_REPLICA_NAME`, the replica is called `<service>-<n>` after its container.
    pub service_name: Option<String>,
}

impl fmt::Debug for Settings {
    // Secrets stay out of logs: the session key and admin password are redacted.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("listen", &self.listen)
            .field("database", &redact_url(&self.database_url))
            .field("redis_urls", &self.redis_urls.iter().map(|u| redact_url(u)).collect::<Vec<_>>())
            .field("redis_prefix", &self.redis_prefix)
            .field("session_key", &"<redacted>")
            .field("cookie_secure", &self.cookie_secure)
            .field("admin_email", &self.admin_email)
            .field("log_json", &self.log_json)
            .field("workers", &self.workers)
            .field("fault_http500", &self.fault_http500)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("register_limit", &self.register_limit)
            .field("replica_name", &self.replica_name)
            .field("service_name", &self.service_name)
            .finish()
    }
}

/// A configuration error: the variable and what is wrong with it.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {var}: {message}")]
pub struct ConfigError {
    pub var: &'static str,
    pub message: String,
}

fn err(var: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError { var, message: message.into() }
}

/// Replace the password of a URL with `***` for logging.
pub fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(u) => u.to_string(),
        Err(_) => "<unparsable>".to_string(),
    }
}

impl Settings {
    /// Read from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_map(&std::env::vars().collect())
    }

    /// Read from a map of variables (the environment, or a test's own).
    pub fn from_map(env: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let get = |k: &str| env.get(k).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());

        let listen = get("SHOP_LISTEN").unwrap_or_else(|| "127.0.0.1:8080".into());
        let listen: SocketAddr = listen
            .parse()
            .map_err(|_| err("SHOP_LISTEN", format!("`{listen}` is not an address like 127.0.0.1:8080")))?;

        let database_url = get("SHOP_DATABASE_URL").unwrap_or_else(|| "sqlite://distshop.db?mode=rwc".into());
        let database_url = normalize_database_url(&database_url)?;

        let redis_urls: Vec<String> = get("SHOP_REDIS_URLS")
            .map(|v| v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect())
            .unwrap_or_default();
        for u in &redis_urls {
            match url::Url::parse(u) {
                Ok(parsed) if parsed.scheme() == "redis" && parsed.host_str().is_some() => {}
                _ => {
                    return Err(err(
                        "SHOP_REDIS_URLS",
                        format!("`{}` is not a redis://host:port URL", redact_url(u)),
                    ))
                }
            }
        }

        let (session_key, session_key_generated) = match get("SHOP_SESSION_KEY") {
            Some(k) if k.len() >= 32 => (k.into_bytes(), false),
            Some(_) => return Err(err("SHOP_SESSION_KEY", "must be at least 32 characters")),
            None if !redis_urls.is_empty() => return Err(err(
                "SHOP_SESSION_KEY",
                "required when SHOP_REDIS_URLS is set: every replica must sign sessions with the same secret",
            )),
            None => {
                use rand::RngCore;
                let mut k = vec![0u8; 32];
                rand::thread_rng().fill_bytes(&mut k);
                (k, true)
            }
        };

        let admin_email = get("SHOP_ADMIN_EMAIL").unwrap_or_else(|| "admin@distshop.local".into());
        let admin_email =
            crate::domain::Email::parse(&admin_email).map_err(|m| err("SHOP_ADMIN_EMAIL", m))?.into_inner();
        let admin_password = get("SHOP_ADMIN_PASSWORD");
        if let Some(p) = &admin_password {
            crate::domain::Password::parse(p).map_err(|m| err("SHOP_ADMIN_PASSWORD", m))?;
        }

        let log_json = match get("SHOP_LOG_FORMAT").as_deref() {
            None | Some("text") => false,
            Some("json") => true,
            Some(other) => return Err(err("SHOP_LOG_FORMAT", format!("`{other}`: use `json` or `text`"))),
        };
        let cookie_secure = parse_bool(get("SHOP_COOKIE_SECURE"), "SHOP_COOKIE_SECURE", false)?;
        let workers = parse_num(get("SHOP_WORKERS"), "SHOP_WORKERS", 0, 1..=256)? as usize;
        let db_timeout = Duration::from_millis(parse_num(
            get("SHOP_DB_TIMEOUT_MS"),
            "SHOP_DB_TIMEOUT_MS",
            2000,
            50..=60_000,
        )?);
        let store_timeout = Duration::from_millis(parse_num(
            get("SHOP_STORE_TIMEOUT_MS"),
            "SHOP_STORE_TIMEOUT_MS",
            1000,
            50..=60_000,
        )?);
        let db_retry =
            Duration::from_millis(parse_num(get("SHOP_DB_RETRY_MS"), "SHOP_DB_RETRY_MS", 6000, 0..=60_000)?);
        let store_retry = Duration::from_millis(parse_num(
            get("SHOP_STORE_RETRY_MS"),
            "SHOP_STORE_RETRY_MS",
            8000,
            0..=60_000,
        )?);
        let db_max_connections =
            parse_num(get("SHOP_DB_MAX_CONNECTIONS"), "SHOP_DB_MAX_CONNECTIONS", 10, 1..=500)? as u32;
        let session_ttl = Duration::from_secs(parse_num(
            get("SHOP_SESSION_TTL_SECS"),
            "SHOP_SESSION_TTL_SECS",
            7 * 24 * 3600,
            60..=90 * 24 * 3600,
        )?);
        let db_sync_wait = match get("SHOP_DB_SYNC_WAIT") {
            None => None,
            Some(_) => Some(parse_num(get("SHOP_DB_SYNC_WAIT"), "SHOP_DB_SYNC_WAIT", 0, 0..=15)? as u8),
        };
        let redis_wait_replicas = match get("SHOP_REDIS_WAIT_REPLICAS") {
            None => None,
            v => Some(parse_num(v, "SHOP_REDIS_WAIT_REPLICAS", 0, 0..=5)? as u32),
        };
        let redis_wait_timeout = Duration::from_millis(parse_num(
            get("SHOP_REDIS_WAIT_TIMEOUT_MS"),
            "SHOP_REDIS_WAIT_TIMEOUT_MS",
            100,
            1..=5000,
        )?);
        let redis_write_connections =
            parse_num(get("SHOP_REDIS_WRITE_CONNECTIONS"), "SHOP_REDIS_WRITE_CONNECTIONS", 8, 1..=64)?
                as usize;
        let redis_prefix = get("SHOP_REDIS_PREFIX").unwrap_or_else(|| "distshop:".into());
        let catalog_cache = Duration::from_millis(parse_num(
            get("SHOP_CATALOG_CACHE_MS"),
            "SHOP_CATALOG_CACHE_MS",
            1000,
            0..=60_000,
        )?);
        let product_cache = Duration::from_millis(parse_num(
            get("SHOP_PRODUCT_CACHE_MS"),
            "SHOP_PRODUCT_CACHE_MS",
            10_000,
            0..=300_000,
        )?);
        let fault_http500 = match get("SHOP_FAULT").as_deref() {
            None | Some("none") => false,
            Some("http500") => true,
            Some(other) => return Err(err("SHOP_FAULT", format!("`{other}`: use `none` or `http500`"))),
        };
        let trusted_proxies: Vec<String> = get("SHOP_TRUSTED_PROXIES")
            .map(|v| v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect())
            .unwrap_or_default();
        for p in &trusted_proxies {
            if !crate::proxies::valid_proxy_entry(p) {
                return Err(err(
                    "SHOP_TRUSTED_PROXIES",
                    format!("`{p}` is not an IP address, a CIDR (10.0.0.0/8) or a host name"),
                ));
            }
        }
        let register_limit =
            parse_num(get("SHOP_REGISTER_LIMIT"), "SHOP_REGISTER_LIMIT", 20, 0..=1_000_000)? as u32;
        let hash_per_client =
            parse_num(get("SHOP_HASH_PER_CLIENT"), "SHOP_HASH_PER_CLIENT", 4, 1..=1024)? as usize;
        let body_timeout = Duration::from_millis(parse_num(
            get("SHOP_BODY_TIMEOUT_MS"),
            "SHOP_BODY_TIMEOUT_MS",
            10_000,
            100..=120_000,
        )?);
        let name = |var: &'static str| match get(var) {
            Some(n) if !crate::replica::valid_name(&n) => Err(err(
                var,
                format!(
                    "`{n}` must be 1 to 63 characters of letters, digits, `.`, `_` and `-` (like shop-2)"
                ),
            )),
            n => Ok(n),
        };
        let replica_name = name("SHOP_REPLICA_NAME")?;
        let service_name = name("SHOP_SERVICE_NAME")?;

        Ok(Settings {
            listen,
            database_url,
            redis_urls,
            redis_prefix,
            session_key,
            session_key_generated,
            cookie_secure,
            admin_email,
            admin_password,
            log_json,
            workers,
            db_timeout,
            store_timeout,
            db_retry,
            store_retry,
            db_max_connections,
            session_ttl,
            db_sync_wait,
            redis_wait_replicas,
            redis_wait_timeout,
            redis_write_connections,
            catalog_cache,
            product_cache,
            fault_http500,
            trusted_proxies,
            register_limit,
            hash_per_client,
            body_timeout,
            replica_name,
            service_name,
        })
    }

    pub fn database_kind(&self) -> DatabaseKind {
        if self.database_url.starts_with("mysql:") {
            DatabaseKind::Mysql
        } else {
            DatabaseKind::Sqlite
        }
    }

    /// Embedded mode: SQLite, which this process migrates and seeds by itself.
    pub fn is_embedded_db(&self) -> bool {
        self.database_kind() == DatabaseKind::Sqlite
    }
}

fn normalize_database_url(raw: &str) -> Result<String, ConfigError> {
    const VAR: &str = "SHOP_DATABASE_URL";
    if raw.starts_with("mysql://") {
        let u = url::Url::parse(raw).map_err(|e| err(VAR, format!("not a valid mysql:// URL: {e}")))?;
        if u.host_str().is_none() {
            return Err(err(VAR, "the mysql:// URL has no host"));
        }
        if u.path().trim_matches('/').is_empty() {
            return Err(err(
                VAR,
                "the mysql:// URL names no database (mysql://user:pass@host:3306/distshop)",
            ));
        }
        Ok(raw.to_string())
    } else if let Some(rest) = raw.strip_prefix("sqlite:") {
        let path = rest.trim_start_matches("//");
        if path.is_empty() {
            return Err(err(VAR, "the sqlite: URL names no file"));
        }
        // Create the file on first start.
        if raw.contains("mode=") {
            Ok(raw.to_string())
        } else if raw.contains('?') {
            Ok(format!("{raw}&mode=rwc"))
        } else {
            Ok(format!("{raw}?mode=rwc"))
        }
    } else {
        Err(err(VAR, "must start with mysql:// or sqlite://"))
    }
}

fn parse_bool(v: Option<String>, var: &'static str, default: bool) -> Result<bool, ConfigError> {
    match v.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None => Ok(default),
        Some("1" | "true" | "yes" | "on") => Ok(true),
        Some("0" | "false" | "no" | "off") => Ok(false),
        Some(other) => Err(err(var, format!("`{other}` is not a boolean (true/false)"))),
    }
}

fn parse_num(
    v: Option<String>,
    var: &'static str,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
) -> Result<u64, ConfigError> {
    match v {
        None => Ok(default),
        Some(s) => match s.parse::<u64>() {
            Ok(n) if range.contains(&n) => Ok(n),
            _ => {
                Err(err(var, format!("`{s}` must be a whole number in {}..={}", range.start(), range.end())))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults_are_embedded() -> Result<(), ConfigError> {
        let s = Settings::from_map(&env(&[]))?;
        assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
        assert!(s.is_embedded_db());
        assert!(s.redis_urls.is_empty());
        assert!(s.session_key_generated);
        Ok(())
    }

    #[test]
    fn redis_requires_a_session_key() {
        let e = Settings::from_map(&env(&[("SHOP_REDIS_URLS", "redis://127.0.0.1:7001")])).err();
        assert_eq!(e.map(|e| e.var), Some("SHOP_SESSION_KEY"));
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (k, v) in [
            ("SHOP_LISTEN", "nope"),
            ("SHOP_DATABASE_URL", "postgres://x/y"),
            ("SHOP_DATABASE_URL", "mysql://host"),
            ("SHOP_REDIS_URLS", "http://x"),
            ("SHOP_SESSION_KEY", "short"),
            ("SHOP_ADMIN_EMAIL", "not-an-email"),
            ("SHOP_ADMIN_PASSWORD", "short"),
            ("SHOP_LOG_FORMAT", "xml"),
            ("SHOP_DB_SYNC_WAIT", "16"),
            ("SHOP_DB_TIMEOUT_MS", "0"),
            ("SHOP_REPLICA_NAME", "shop 2"),
            ("SHOP_REPLICA_NAME", "shop-2<script>"),
            ("SHOP_REPLICA_NAME", "a-name-that-is-far-too-long-for-a-label-of-dns-and-so-for-a-name"),
            ("SHOP_SERVICE_NAME", "shop/web"),
        ] {
            let e = Settings::from_map(&env(&[(k, v)])).err();
            assert_eq!(e.map(|e| e.var), Some(k), "{k}={v}");
        }
    }

    #[test]
    fn replica_and_service_names() -> Result<(), ConfigError> {
        let s =
            Settings::from_map(&env(&[("SHOP_REPLICA_NAME", " shop-2 "), ("SHOP_SERVICE_NAME", "shop")]))?;
        assert_eq!((s.replica_name.as_deref(), s.service_name.as_deref()), (Some("shop-2"), Some("shop")));
        // empty is unset, as for every variable
        let s = Settings::from_map(&env(&[("SHOP_REPLICA_NAME", "")]))?;
        assert_eq!((s.replica_name, s.service_name), (None, None));
        Ok(())
    }

    #[test]
    fn debug_redacts_secrets() -> Result<(), ConfigError> {
        let s = Settings::from_map(&env(&[
            ("SHOP_DATABASE_URL", "mysql://shop:hunter2@db:3306/distshop"),
            ("SHOP_ADMIN_PASSWORD", "supersecret-1"),
        ]))?;
        let shown = format!("{s:?}");
        assert!(!shown.contains("hunter2") && !shown.contains("supersecret"), "{shown}");
        Ok(())
    }
}
