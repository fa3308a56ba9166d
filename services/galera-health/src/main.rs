//! galera-health: answers `GET /` with 200 only while the local MariaDB Galera
//! node is Synced + Primary + ready, 503 otherwise, with a plain-text body
//! saying why. HAProxy's `option httpchk` and Docker health checks use it.
//!
//! Endpoints:
//! * `GET|HEAD|OPTIONS /` (and `/health`): the check. With
//!   `?available_when_donor=1` a donor node also passes (Docker's health
//!   check uses that, so a node busy feeding an SST to a joiner is not
//!   reported unhealthy; load balancers use the strict form).
//! * `GET /recovery`: the contents of `GALERA_HEALTH_STATE_FILE`, where the
//!   Galera entrypoint publishes its recovery state (phase, uuid, seqno,
//!   safe_to_bootstrap) so peers can agree which node bootstraps after a
//!   whole-cluster restart. 404 when there is none.
//!
//! `galera-health check` runs one check, prints the verdict and exits 0/1.
//!
//! Configuration (environment):
//! * `GALERA_HEALTH_MYSQL_URL` (default `mysql://health@127.0.0.1:3306`)
//! * `GALERA_HEALTH_LISTEN` (default `0.0.0.0:9200`)
//! * `GALERA_HEALTH_CONNECT_TIMEOUT_MS` (default 1000)
//! * `GALERA_HEALTH_QUERY_TIMEOUT_MS` (default 1000)
//! * `GALERA_HEALTH_STATE_FILE` (optional)
//! * `GALERA_HEALTH_AVAILABLE_WHEN_DONOR` (`true`/`false`, default false)

mod http;
mod verdict;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use verdict::{Policy, Verdict, WsrepStatus};

/// Connections handled at once; more wait for a slot.
const MAX_CONCURRENT: usize = 32;
const IO_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Clone)]
struct Config {
    mysql: mysql_async::Opts,
    listen: String,
    connect_timeout: Duration,
    query_timeout: Duration,
    state_file: Option<String>,
    policy: Policy,
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty()).unwrap_or_else(|| default.to_owned())
}

fn env_ms(name: &str, default: u64) -> Result<Duration, String> {
    let raw = env_or(name, &default.to_string());
    raw.trim()
        .parse::<u64>()
        .ok()
        .filter(|ms| *ms > 0)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("{name}={raw:?} is not a positive number of milliseconds"))
}

fn env_bool(name: &str) -> Result<bool, String> {
    match env_or(name, "false").trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        other => Err(format!("{name}={other:?} is not a boolean")),
    }
}

impl Config {
    fn from_env() -> Result<Self, String> {
        let url = env_or("GALERA_HEALTH_MYSQL_URL", "mysql://health@127.0.0.1:3306");
        let mysql = mysql_async::Opts::from_url(&url)
            .map_err(|e| format!("GALERA_HEALTH_MYSQL_URL is not a valid MySQL URL: {e}"))?;
        Ok(Config {
            mysql,
            listen: env_or("GALERA_HEALTH_LISTEN", "0.0.0.0:9200"),
            connect_timeout: env_ms("GALERA_HEALTH_CONNECT_TIMEOUT_MS", 1000)?,
            query_timeout: env_ms("GALERA_HEALTH_QUERY_TIMEOUT_MS", 1000)?,
            state_file: std::env::var("GALERA_HEALTH_STATE_FILE").ok().filter(|v| !v.trim().is_empty()),
            policy: Policy { available_when_donor: env_bool("GALERA_HEALTH_AVAILABLE_WHEN_DONOR")? },
        })
    }
}

/// Read the wsrep status of the local node, each step under its own timeout.
async fn read_status(cfg: &Config) -> Result<WsrepStatus, String> {
    let mut conn = tokio::time::timeout(cfg.connect_timeout, mysql_async::Conn::new(cfg.mysql.clone()))
        .await
        .map_err(|_| format!("connect timed out after {:?}", cfg.connect_timeout))?
        .map_err(|e| format!("connect failed: {e}"))?;
    let query = format!(
        "SHOW GLOBAL STATUS WHERE Variable_name IN ({})",
        verdict::VARIABLES.iter().map(|v| format!("'{v}'")).collect::<Vec<_>>().join(",")
    );
    let rows = tokio::time::timeout(cfg.query_timeout, conn.query::<(String, String), _>(query))
        .await
        .map_err(|_| format!("status query timed out after {:?}", cfg.query_timeout))?
        .map_err(|e| format!("status query failed: {e}"));
    // closing politely is best effort; a dropped Conn is closed anyway
    let _ = tokio::time::timeout(cfg.query_timeout, conn.disconnect()).await;
    rows.map(WsrepStatus::from_rows)
}

async fn check(cfg: &Config, policy: Policy) -> Verdict {
    match read_status(cfg).await {
        Ok(status) => verdict::evaluate(&status, policy),
        Err(e) => verdict::unreachable(&e),
    }
}

async fn route(cfg: &Config, req: &http::RequestLine) -> http::Response {
    match (req.method.as_str(), req.path.as_str()) {
        ("GET" | "HEAD" | "OPTIONS", "/" | "/health") => {
            let policy = Policy {
                available_when_donor: cfg.policy.available_when_donor || req.flag("available_when_donor"),
            };
            let v = check(cfg, policy).await;
            http::Response { status: if v.is_ready() { 200 } else { 503 }, body: format!("{}\n", v.text()) }
        }
        ("GET" | "HEAD", "/recovery") => match &cfg.state_file {
            None => http::Response { status: 404, body: "no recovery state file configured\n".into() },
            Some(path) => match tokio::fs::read_to_string(path).await {
                Ok(body) => http::Response { status: 200, body },
                Err(e) => http::Response { status: 404, body: format!("no recovery state published: {e}\n") },
            },
        },
        (_, "/" | "/health" | "/recovery") => {
            http::Response { status: 405, body: "method not allowed\n".into() }
        }
        _ => http::Response { status: 404, body: "not found; try GET /\n".into() },
    }
}

async fn serve_conn(cfg: Arc<Config>, mut stream: TcpStream) {
    let head = match http::read_head(&mut stream, IO_TIMEOUT).await {
        Ok(Some(head)) => head,
        _ => return,
    };
    let (resp, head_only) = match http::parse_request_line(&head) {
        Some(req) => (route(&cfg, &req).await, req.method == "HEAD"),
        None => (http::Response { status: 400, body: "bad request\n".into() }, false),
    };
    // the peer may have gone away; nothing useful to do about it
    let _ = http::write_response(&mut stream, &resp, head_only, IO_TIMEOUT).await;
}

async fn serve(cfg: Config) -> Result<(), String> {
    let listener =
        TcpListener::bind(&cfg.listen).await.map_err(|e| format!("cannot listen on {}: {e}", cfg.listen))?;
    eprintln!(
        "galera-health: listening on {} (connect timeout {:?}, query timeout {:?}, donor ok: {})",
        cfg.listen, cfg.connect_timeout, cfg.query_timeout, cfg.policy.available_when_donor
    );
    let cfg = Arc::new(cfg);
    let slots = Arc::new(Semaphore::new(MAX_CONCURRENT));
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| format!("cannot watch SIGTERM: {e}"))?;
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        eprintln!("galera-health: accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let Ok(permit) = slots.clone().acquire_owned().await else {
                    return Err("connection limiter closed".into());
                };
                let cfg = cfg.clone();
                tokio::spawn(async move {
                    serve_conn(cfg, stream).await;
                    drop(permit);
                });
            }
            _ = term.recv() => return Ok(()),
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}

fn main() -> ExitCode {
    let cfg = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("galera-health: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("galera-health: cannot start runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let once = std::env::args().nth(1).as_deref() == Some("check");
    rt.block_on(async move {
        if once {
            let v = check(&cfg, cfg.policy).await;
            println!("{}", v.text());
            if v.is_ready() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        } else {
            match serve(cfg).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("galera-health: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    })
}
