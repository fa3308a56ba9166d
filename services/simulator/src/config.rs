//! Command line and the journey profile (the mix of actions and the think times).

use std::{net::IpAddr, path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::{Deserialize, Serialize};

use crate::findings::FailOn;

/// `30`, `30s`, `1500ms`, `2m`, `1h` → a duration (a bare number is seconds).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: f64 = num.parse().map_err(|_| format!("`{s}` is not a duration like 30s, 500ms or 2m"))?;
    let secs = match unit.trim() {
        "ms" => n / 1000.0,
        "s" | "" => n,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        other => return Err(format!("unknown unit `{other}` in `{s}` (use ms, s, m or h)")),
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("`{s}` is not a valid duration"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// `AT=COMMAND`: run COMMAND with `sh -c` AT after the start, and mark it as a fault.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultCommand {
    #[serde(with = "secs_f64")]
    pub at: Duration,
    pub command: String,
    /// Label on the chart; the command itself when absent.
    #[serde(default)]
    pub label: Option<String>,
}

mod secs_f64 {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        match &v {
            serde_json::Value::Number(n) => Ok(Duration::from_secs_f64(n.as_f64().unwrap_or(0.0).max(0.0))),
            serde_json::Value::String(s) => super::parse_duration(s).map_err(serde::de::Error::custom),
            _ => Err(serde::de::Error::custom("a duration is a number of seconds or a string like \"10s\"")),
        }
    }
}

pub fn parse_fault_command(s: &str) -> Result<FaultCommand, String> {
    let (at, command) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}`: expected AT=COMMAND, e.g. 10s='docker kill shop-2'"))?;
    if command.trim().is_empty() {
        return Err(format!("`{s}`: the command is empty"));
    }
    Ok(FaultCommand { at: parse_duration(at)?, command: command.trim().to_string(), label: None })
}

/// The `--fail-on` list (a newtype so clap takes it as one value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailOnList(pub Vec<FailOn>);

fn parse_fail_on(s: &str) -> Result<FailOnList, String> {
    FailOn::parse_list(s).map(FailOnList)
}

/// `MIN-MAX` or `N` milliseconds.
pub fn parse_range_ms(s: &str) -> Result<[u64; 2], String> {
    let bad = || format!("`{s}`: expected milliseconds as N or MIN-MAX, e.g. 100-800");
    let (a, b) = match s.split_once('-') {
        Some((a, b)) => (a.trim().parse().map_err(|_| bad())?, b.trim().parse().map_err(|_| bad())?),
        None => {
            let n = s.trim().parse().map_err(|_| bad())?;
            (n, n)
        }
    };
    if a > b {
        return Err(bad());
    }
    Ok([a, b])
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arrivals {
    /// Evenly spaced journey starts.
    Uniform,
    /// Exponential gaps (a Poisson process) with the same mean rate.
    Poisson,
}

#[derive(Debug, Parser)]
#[command(
    name = "distshop-sim",
    version,
    about = "Virtual shoppers for distshop that check content, not only status codes — plus the \
             database invariant checker.",
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub run: RunArgs,
}

// parsed once per process: the size of the largest variant costs nothing worth a Box
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the shoppers (also what `distshop-sim [OPTIONS]` does).
    Run(RunArgs),
    /// Check the invariants in the database against a run's report.
    Check(CheckArgs),
    /// Record every product's stock and reserved quantity, for `check --initial-stock`.
    Snapshot(SnapshotArgs),
    /// Append a fault marker ("killed shop-2") to a run's timeline.
    Mark(MarkArgs),
    /// Cluster suite: one shopper's journey through nginx, checked step by step (JSON on stdout).
    Journey(JourneyArgs),
    /// Cluster suite: the order ids of an account (JSON on stdout).
    Orders(OrdersArgs),
    /// Cluster suite: a steady bounded load where any unexpected answer fails (JSON on stdout).
    Load(LoadArgs),
    /// Cluster suite: wait until a replica not yet known answers (JSON on stdout).
    NewReplica(NewReplicaArgs),
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Shop to talk to; repeat to spread requests round-robin over several replicas.
    #[arg(long = "base-url", value_name = "URL", default_value = "http://127.0.0.1:8080")]
    pub base_urls: Vec<String>,
    /// Allow a base URL that is not on loopback (127.0.0.0/8, localhost, ::1).
    #[arg(long)]
    pub allow_remote: bool,
    /// Closed model: this many shoppers, each starting its next journey when the last ends.
    #[arg(long, value_name = "N", conflicts_with = "rate")]
    pub shoppers: Option<usize>,
    /// Open model: start this many journeys per second whatever the shop's speed; latency is
    /// measured from each journey's intended start.
    #[arg(long, value_name = "R")]
    pub rate: Option<f64>,
    /// Open model: spacing of journey starts.
    #[arg(long, value_enum, default_value = "uniform")]
    pub arrivals: Arrivals,
    /// Open model: journeys running at once at most; later ones wait (and their wait counts as
    /// latency).
    #[arg(long, value_name = "N", default_value_t = 500)]
    pub max_in_flight: usize,
    /// Stop starting new work after this long (e.g. 30s, 2m).
    #[arg(long, value_parser = parse_duration, default_value = "30s")]
    pub duration: Duration,
    /// Stop after this many requests (load phase).
    #[arg(long, value_name = "N", default_value_t = 200_000)]
    pub max_requests: u64,
    /// Per-request timeout.
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    pub timeout: Duration,
    /// Think time between a shopper's steps, in ms: N or MIN-MAX (overrides the profile).
    #[arg(long, value_name = "MS", value_parser = parse_range_ms)]
    pub think_ms: Option<[u64; 2]>,
    /// Journey profile (JSON): action mix, think times, retry bounds. See docs/simulator.md.
    #[arg(long, value_name = "FILE")]
    pub profile: Option<PathBuf>,
    /// Report folder [default: reports/<timestamp>, with reports/latest pointing at it].
    #[arg(long, value_name = "DIR")]
    pub report: Option<PathBuf>,
    /// Another JSON-lines file to poll for fault markers (besides <report>/faults.jsonl).
    #[arg(long, value_name = "FILE")]
    pub faults: Option<PathBuf>,
    /// AT=COMMAND: at AT after the start run COMMAND (sh -c) and mark it on the timeline.
    #[arg(long = "fault", value_name = "AT=COMMAND", value_parser = parse_fault_command)]
    pub fault_commands: Vec<FaultCommand>,
    /// What makes the exit code non-zero: a list of content, lost-session, lost-order,
    /// duplicate-order, 5xx, network, unexpected-4xx, unresolved — or default, all, none.
    #[arg(long, default_value = "default", value_parser = parse_fail_on)]
    pub fail_on: FailOnList,
    /// Random seed (journeys are reproducible up to timing).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Also take a database snapshot of stock at the start (preferred by `check`).
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    /// After the load: re-check at most this many accounts (cart, orders, session).
    #[arg(long, value_name = "N", default_value_t = 2000)]
    pub verify_limit: usize,
    /// Skip the final verification of every account.
    #[arg(long)]
    pub no_verify: bool,
    /// No live progress lines.
    #[arg(long)]
    pub quiet: bool,
    /// Report the run live to the control room at URL (POST URL/api/simulator each second, the
    /// bearer token from DISTSHOP_CONTROL_TOKEN) [env: DISTSHOP_CONTROL_URL].
    #[arg(long, value_name = "URL")]
    pub control_room: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    /// The shop's database (mysql://user:pass@host:port/db).
    #[arg(long, value_name = "URL")]
    pub database_url: String,
    /// The run's report folder (acknowledged.jsonl, summary.json, stock snapshots).
    #[arg(long, value_name = "DIR")]
    pub report: PathBuf,
    /// Stock snapshot to conserve against [default: <report>/db-snapshot.json if present, else
    /// <report>/initial-stock.json].
    #[arg(long, value_name = "FILE")]
    pub initial_stock: Option<PathBuf>,
    /// Another node's database URL (Galera): all must hold the same orders and stock.
    #[arg(long = "compare-url", value_name = "URL")]
    pub compare_urls: Vec<String>,
    /// Allow database hosts that are not on loopback.
    #[arg(long)]
    pub allow_remote: bool,
}

#[derive(Debug, Clone, Args)]
pub struct SnapshotArgs {
    #[arg(long, value_name = "URL")]
    pub database_url: String,
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    #[arg(long)]
    pub allow_remote: bool,
}

#[derive(Debug, Clone, Args)]
pub struct MarkArgs {
    /// Report folder of the running simulation (its faults.jsonl gets the marker).
    #[arg(long, value_name = "DIR", default_value = "reports/latest", conflicts_with = "file")]
    pub report: PathBuf,
    /// Append to this file instead (the run's --faults FILE).
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Where the label comes from, e.g. the fault runner's name.
    #[arg(long, default_value = "mark")]
    pub source: String,
    /// What happened, e.g. "killed shop-2".
    #[arg(required = true)]
    pub label: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct JourneyArgs {
    /// The shop (nginx), e.g. http://127.0.0.1:28080.
    pub base: String,
    /// Replicas that must each answer the session.
    #[arg(long, default_value_t = 3)]
    pub replicas: usize,
    #[arg(long)]
    pub allow_remote: bool,
}

#[derive(Debug, Clone, Args)]
pub struct OrdersArgs {
    pub base: String,
    pub email: String,
    pub password: String,
    #[arg(long)]
    pub allow_remote: bool,
}

#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    pub base: String,
    /// How long (at most 600).
    #[arg(long)]
    pub seconds: f64,
    /// Requests at most, over all workers (at most 200000).
    #[arg(long)]
    pub max_requests: u64,
    /// Workers sending one request each 10 ms or so (1 to 32).
    #[arg(long, default_value_t = 4)]
    pub workers: usize,
    /// One more worker checks out repeatedly (idempotent retries); the account's order count is
    /// verified at the end.
    #[arg(long)]
    pub checkouts: bool,
    #[arg(long)]
    pub allow_remote: bool,
}

#[derive(Debug, Clone, Args)]
pub struct NewReplicaArgs {
    pub base: String,
    /// The replicas answering already, comma-separated (their X-Served-By names).
    #[arg(long, default_value = "")]
    pub known: String,
    /// Give up after this many seconds (at most 600).
    #[arg(long, default_value_t = 60.0)]
    pub timeout: f64,
    #[arg(long)]
    pub allow_remote: bool,
}

/// The journey mix: probabilities are per journey, ranges are inclusive `[min, max]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Profile {
    /// Think time between steps, ms.
    pub think_ms: [u64; 2],
    /// Chance that a journey registers a new account although a known one is free.
    pub p_new_account: f64,
    /// Chance to look at the category list.
    pub p_categories: f64,
    /// Product list pages browsed.
    pub browse_pages: [u32; 2],
    /// Searches.
    pub searches: [u32; 2],
    /// Product pages opened.
    pub product_views: [u32; 2],
    /// Cart additions.
    pub cart_adds: [u32; 2],
    /// Largest quantity added at once.
    pub max_add_quantity: i64,
    /// Chance to change the quantity of a cart line.
    pub p_change_quantity: f64,
    /// Chance to remove a cart line.
    pub p_remove: f64,
    /// Chance to check out (when the cart is not empty).
    pub p_checkout: f64,
    /// Chance to look at the order list.
    pub p_view_orders: f64,
    /// Chance to cancel one of the shopper's open orders.
    pub p_cancel: f64,
    /// Chance to log out at the end (else the session is kept for the next journey).
    pub p_logout: f64,
    /// Attempts of one checkout (same Idempotency-Key) before giving up as unresolved.
    pub checkout_attempts: u32,
    /// Attempts of an idempotent request (GET, PUT, DELETE, login, logout, cancel).
    pub retry_attempts: u32,
    /// An account with this many orders is retired (the shop lists 200 at most).
    pub max_orders_per_account: usize,
    /// Words to search for.
    pub search_terms: Vec<String>,
}

impl Default for Profile {
    fn default() -> Self {
        Profile {
            think_ms: [100, 600],
            p_new_account: 0.3,
            p_categories: 0.5,
            browse_pages: [1, 3],
            searches: [0, 2],
            product_views: [1, 3],
            cart_adds: [1, 3],
            max_add_quantity: 3,
            p_change_quantity: 0.4,
            p_remove: 0.25,
            p_checkout: 0.5,
            p_view_orders: 0.5,
            p_cancel: 0.15,
            p_logout: 0.4,
            checkout_attempts: 6,
            retry_attempts: 4,
            max_orders_per_account: 150,
            search_terms: ["coffee", "book", "lamp", "wool", "steel", "garden", "kids", "pro", "set", "bag"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
        }
    }
}

impl Profile {
    pub fn validate(&self) -> Result<(), String> {
        let probs = [
            ("p_new_account", self.p_new_account),
            ("p_categories", self.p_categories),
            ("p_change_quantity", self.p_change_quantity),
            ("p_remove", self.p_remove),
            ("p_checkout", self.p_checkout),
            ("p_view_orders", self.p_view_orders),
            ("p_cancel", self.p_cancel),
            ("p_logout", self.p_logout),
        ];
        for (name, p) in probs {
            if !(0.0..=1.0).contains(&p) {
                return Err(format!("profile: {name} = {p} is not a probability in 0..1"));
            }
        }
        let ranges = [
            ("browse_pages", self.browse_pages),
            ("searches", self.searches),
            ("product_views", self.product_views),
            ("cart_adds", self.cart_adds),
        ];
        for (name, [a, b]) in ranges {
            if a > b {
                return Err(format!("profile: {name} = [{a}, {b}] has min > max"));
            }
        }
        if self.think_ms[0] > self.think_ms[1] {
            return Err("profile: think_ms has min > max".into());
        }
        if !(1..=99).contains(&self.max_add_quantity) {
            return Err("profile: max_add_quantity must be 1..=99".into());
        }
        if self.checkout_attempts == 0 || self.retry_attempts == 0 {
            return Err("profile: checkout_attempts and retry_attempts must be at least 1".into());
        }
        if self.search_terms.is_empty() {
            return Err("profile: search_terms is empty".into());
        }
        Ok(())
    }
}

/// Whether a URL's host is on loopback (our rule: test traffic only to this machine).
pub fn is_loopback_host(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    if h.eq_ignore_ascii_case("localhost") {
        return true;
    }
    h.parse::<IpAddr>().map(|ip| ip.is_loopback()).unwrap_or(false)
}

/// Check and normalise base URLs: http(s) only, no trailing slash, loopback unless allowed.
pub fn check_base_urls(urls: &[String], allow_remote: bool) -> Result<Vec<String>, String> {
    if urls.is_empty() {
        return Err("at least one --base-url is required".into());
    }
    urls.iter()
        .map(|u| {
            let parsed = reqwest::Url::parse(u).map_err(|e| format!("--base-url `{u}`: {e}"))?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(format!("--base-url `{u}`: only http and https"));
            }
            let host = parsed.host_str().ok_or_else(|| format!("--base-url `{u}` has no host"))?;
            if !allow_remote && !is_loopback_host(host) {
                return Err(format!(
                    "--base-url `{u}`: host `{host}` is not loopback (127.0.0.1, localhost, ::1); \
                     test traffic stays on this machine unless you pass --allow-remote"
                ));
            }
            Ok(u.trim_end_matches('/').to_string())
        })
        .collect()
}

/// Same rule for database URLs (`mysql://user:pass@HOST:port/db`).
pub fn check_database_url(url: &str, allow_remote: bool) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("database URL: {e}"))?;
    if parsed.scheme() != "mysql" {
        return Err(format!("database URL must start with mysql:// (got {}://)", parsed.scheme()));
    }
    let host = parsed.host_str().unwrap_or("");
    if !allow_remote && !is_loopback_host(host) {
        return Err(format!("database host `{host}` is not loopback; pass --allow-remote to allow it"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("1500ms").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("0.5s").unwrap(), Duration::from_millis(500));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("3d").is_err());
    }

    #[test]
    fn fault_commands_and_ranges() {
        let f = parse_fault_command("10s=docker kill shop-2").unwrap();
        assert_eq!(f.at, Duration::from_secs(10));
        assert_eq!(f.command, "docker kill shop-2");
        assert!(parse_fault_command("docker kill").is_err());
        assert!(parse_fault_command("10s=").is_err());
        assert_eq!(parse_range_ms("100-800").unwrap(), [100, 800]);
        assert_eq!(parse_range_ms("0").unwrap(), [0, 0]);
        assert!(parse_range_ms("9-1").is_err());
    }

    #[test]
    fn only_loopback_unless_allowed() {
        let ok = check_base_urls(
            &["http://127.0.0.1:8080/".into(), "http://localhost:1".into(), "http://[::1]:8080".into()],
            false,
        )
        .unwrap();
        assert_eq!(ok[0], "http://127.0.0.1:8080");
        assert!(check_base_urls(&["http://127.0.0.2:80".into()], false).is_ok(), "127/8 is loopback");
        for bad in ["http://10.0.0.5:8080", "http://example.org", "http://192.168.1.1", "ftp://127.0.0.1"] {
            assert!(check_base_urls(&[bad.into()], false).is_err(), "{bad}");
        }
        assert!(check_base_urls(&["http://shop.internal:8080".into()], true).is_ok());
        assert!(check_database_url("mysql://shop:shop@127.0.0.1:3307/x", false).is_ok());
        assert!(check_database_url("mysql://shop:shop@db.example:3306/x", false).is_err());
        assert!(check_database_url("postgres://127.0.0.1/x", false).is_err());
    }

    #[test]
    fn profile_json_with_defaults_and_validation() {
        let p: Profile = serde_json::from_str(r#"{"p_checkout": 1.0, "think_ms": [0, 0]}"#).unwrap();
        assert_eq!(p.p_checkout, 1.0);
        assert_eq!(p.cart_adds, Profile::default().cart_adds);
        assert!(p.validate().is_ok());
        assert!(serde_json::from_str::<Profile>(r#"{"p_chekout": 1.0}"#).is_err(), "typos are refused");
        let bad = Profile { p_cancel: 1.5, ..Profile::default() };
        assert!(bad.validate().is_err());
    }

    #[test]
    fn cli_parses_run_flags_without_a_subcommand_and_subcommands() {
        let c = Cli::try_parse_from(["distshop-sim", "--shoppers", "3", "--duration", "5s"]).unwrap();
        assert!(c.command.is_none());
        assert_eq!(c.run.shoppers, Some(3));
        assert_eq!(c.run.fail_on.0, FailOn::DEFAULT.to_vec());
        let c = Cli::try_parse_from(["distshop-sim", "mark", "killed", "shop-2"]).unwrap();
        assert!(matches!(c.command, Some(Command::Mark(m)) if m.label == ["killed", "shop-2"]));
        assert!(Cli::try_parse_from(["distshop-sim", "--shoppers", "3", "--rate", "5"]).is_err());
        let c = Cli::try_parse_from(["distshop-sim", "journey", "http://127.0.0.1:1", "--replicas", "1"])
            .unwrap();
        assert!(matches!(c.command, Some(Command::Journey(j)) if j.replicas == 1));
        let c = Cli::try_parse_from([
            "distshop-sim",
            "load",
            "http://127.0.0.1:1",
            "--seconds",
            "20",
            "--max-requests",
            "300",
            "--checkouts",
        ])
        .unwrap();
        assert!(
            matches!(c.command, Some(Command::Load(l)) if l.workers == 4 && l.checkouts && l.seconds == 20.0)
        );
        let c = Cli::try_parse_from(["distshop-sim", "new-replica", "http://127.0.0.1:1", "--known", "a,b"])
            .unwrap();
        assert!(matches!(c.command, Some(Command::NewReplica(n)) if n.known == "a,b" && n.timeout == 60.0));
        let c =
            Cli::try_parse_from(["distshop-sim", "orders", "http://127.0.0.1:1", "e@x.test", "pw"]).unwrap();
        assert!(matches!(c.command, Some(Command::Orders(o)) if o.email == "e@x.test"));
    }
}
