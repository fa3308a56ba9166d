//! controlroom-journey: the control room (services/controlroom) in a real browser — headless
//! Chromium over WebDriver, as a lecturer would use it on a projector.
//!
//! It loads the page and sees three replica tiles `up` (the audience's read-only view: no
//! buttons), logs in with the operator token, presses "kill" on one replica, sees its tile
//! leave `up` and come back to `up` (the manager starts it again), sends a request with a
//! known `X-Request-Id` through nginx (from the shop's own page, so the browser sends it) and
//! finds that id in the page's log search, with nginx's and a shop replica's lines.
//!
//! Every step prints `ok   <step>` or `FAIL <step>: <why>`; the first failure ends the run
//! (exit 1) with a screenshot. Every wait is a condition with a deadline (`--wait-secs`, 60 s by
//! default: a killed replica is started again after 5 s and needs its first heartbeat).
//! `tests/browser/run.sh --control-room URL` starts chromedriver and runs it.

use std::{
    path::PathBuf,
    process::ExitCode,
    time::{Duration, Instant},
};

use anyhow::{anyhow, bail, Context, Result};
use clap::Parser;
use fantoccini::{error::CmdError, wd::Capabilities, Client, ClientBuilder, Locator};
use serde_json::{json, Value};

const CALL_TIMEOUT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(200);
const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--window-size=1600,2000",
    "--hide-scrollbars",
];

#[derive(Parser)]
#[command(about = "distshop's control room in headless Chromium over WebDriver")]
struct Args {
    /// The control room, e.g. http://127.0.0.1:8090
    #[arg(long)]
    control_room: String,
    /// nginx in front of the shop (the stack's HTTP port), e.g. http://127.0.0.1:8080
    #[arg(long)]
    shop: String,
    /// The operator token (better from the environment).
    #[arg(long, env = "CONTROL_TOKEN", hide_env_values = true)]
    token: String,
    #[arg(long, default_value = "http://127.0.0.1:9515")]
    webdriver: String,
    #[arg(long, default_value = "/usr/bin/chromium")]
    chromium: PathBuf,
    /// Replicas expected up at the start.
    #[arg(long, default_value_t = 3)]
    replicas: usize,
    /// Write DIR/controlroom-*.png.
    #[arg(long, value_name = "DIR")]
    screenshots: Option<PathBuf>,
    #[arg(long, default_value_t = 60)]
    wait_secs: u64,
}

struct B {
    c: Client,
    wait: Duration,
    shots: Option<PathBuf>,
}

impl B {
    async fn call<T>(
        &self,
        what: &str,
        f: impl std::future::Future<Output = Result<T, CmdError>>,
    ) -> Result<T> {
        match tokio::time::timeout(CALL_TIMEOUT, f).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(anyhow!("{what}: {e}")),
            Err(_) => Err(anyhow!("{what}: no answer from WebDriver within {CALL_TIMEOUT:?}")),
        }
    }

    async fn js(&self, script: &str, args: Vec<Value>) -> Result<Value> {
        self.call("run a script", self.c.execute(script, args)).await
    }

    async fn goto(&self, url: &str) -> Result<()> {
        self.call(&format!("open {url}"), self.c.goto(url)).await
    }

    /// Waits until the script returns a truthy value; returns it.
    async fn until(&self, what: &str, script: &str, args: Vec<Value>) -> Result<Value> {
        let deadline = Instant::now() + self.wait;
        loop {
            let v = self.js(script, args.clone()).await?;
            let truthy = !matches!(&v, Value::Null | Value::Bool(false))
                && v != json!("")
                && v != json!(0)
                && v != json!([]);
            if truthy {
                return Ok(v);
            }
            if Instant::now() >= deadline {
                bail!("gave up waiting for {what} after {:?} (last: {v})", self.wait);
            }
            tokio::time::sleep(POLL).await;
        }
    }

    async fn shot(&self, name: &str) -> Result<()> {
        let Some(dir) = &self.shots else { return Ok(()) };
        let png = self.call("take a screenshot", self.c.screenshot()).await?;
        let p = dir.join(format!("controlroom-{name}.png"));
        std::fs::write(&p, png).with_context(|| format!("write {}", p.display()))
    }

    /// The tiles are replaced on every SSE tick: find and click in one go, again if the element
    /// went stale in between.
    async fn click(&self, css: &str) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let r = async {
                let e = self.c.find(Locator::Css(css)).await?;
                e.click().await
            };
            match tokio::time::timeout(CALL_TIMEOUT, r).await {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(e)) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(POLL).await;
                }
                Ok(Err(e)) => bail!("click {css}: {e}"),
                Err(_) => bail!("click {css}: no answer within {CALL_TIMEOUT:?}"),
            }
        }
    }
}

const STATES: &str = "return Array.from(document.querySelectorAll('[data-replica]')).map(e => [e.dataset.replica, e.dataset.state]);";

macro_rules! step {
    ($n:expr, $name:expr, $body:expr) => {{
        let name: String = $name.into();
        match $body.await {
            Ok(v) => {
                println!("ok   {name}");
                $n += 1;
                v
            }
            Err(e) => return Err((name, e)),
        }
    }};
}

async fn journey(b: &B, a: &Args) -> Result<usize, (String, anyhow::Error)> {
    let base = a.control_room.trim_end_matches('/');
    let mut n = 0;
    step!(n, format!("open the control room at {base}"), b.goto(&format!("{base}/")));
    let want = a.replicas;
    step!(
        n,
        format!("{want} replica tiles up"),
        b.until(
            &format!("{want} replicas up"),
            "return document.querySelectorAll('[data-replica][data-state=\"up\"]').length >= arguments[0]",
            vec![json!(want)]
        )
    );
    step!(n, "the audience's view has no fault buttons", async {
        let v = b.js("return document.querySelectorAll('button[data-action]').length", vec![]).await?;
        if v != json!(0) {
            bail!("{v} fault buttons shown without the operator token");
        }
        b.shot("audience").await
    });
    step!(n, "log in as the operator", async {
        let field =
            b.call("find the token field", b.c.find(Locator::Css("#login input[name=token]"))).await?;
        b.call("type the token", field.send_keys(&a.token)).await?;
        b.click("#login button[type=submit]").await?;
        b.until("the operator badge", "return !!document.getElementById('operator-badge')", vec![]).await?;
        Ok::<_, anyhow::Error>(())
    });
    let victim: String = step!(n, "pick a replica that is up", async {
        let v = b
            .until(
                "a replica up with a kill button",
                "const t = Array.from(document.querySelectorAll('[data-replica][data-state=\"up\"]'));\
                 const r = t.find(e => e.dataset.replica.endsWith('-2')) || t[0];\
                 return r && r.querySelector('button[data-action=\"replica-kill\"]') ? r.dataset.replica : null;",
                vec![],
            )
            .await?;
        v.as_str().map(str::to_string).ok_or_else(|| anyhow!("no replica name: {v}"))
    });
    let t0 = Instant::now();
    step!(
        n,
        format!("press kill on {victim}"),
        b.click(&format!("[data-replica=\"{victim}\"] button[data-action=\"replica-kill\"]"))
    );
    let left = step!(
        n,
        format!("{victim}'s tile leaves up"),
        b.until(
            "the tile to leave up",
            "const e = document.querySelector('[data-replica=\"' + arguments[0] + '\"]');\
             return e && e.dataset.state !== 'up' ? e.dataset.state : null;",
            vec![json!(victim)]
        )
    );
    println!("     {victim} became {left} {:.1} s after the click", t0.elapsed().as_secs_f64());
    step!(n, "the fault is listed", async {
        b.until(
            "the fault record",
            "return !!document.querySelector('[data-fault=\"replica-kill\"][data-target=\"' + arguments[0] + '\"]')",
            vec![json!(victim)],
        )
        .await?;
        b.shot("kill").await
    });
    step!(
        n,
        format!("{victim}'s tile comes back up"),
        b.until(
            "the tile to be up again",
            "const e = document.querySelector('[data-replica=\"' + arguments[0] + '\"]');\
             return e && e.dataset.state === 'up';",
            vec![json!(victim)]
        )
    );
    println!("     {victim} up again {:.1} s after the click", t0.elapsed().as_secs_f64());
    let states = b.js(STATES, vec![]).await.unwrap_or(Value::Null);
    println!("     replicas now: {states}");
    step!(n, "the chart shows the fault", async {
        b.until(
            "a fault marker on the chart",
            "return document.querySelectorAll('#chart .fault-marker').length > 0",
            vec![],
        )
        .await?;
        b.shot("healed").await
    });

    let rid = format!("cr-journey-{}", uuid::Uuid::new_v4().simple());
    let shop = a.shop.trim_end_matches('/');
    step!(n, format!("a request through nginx with X-Request-Id: {rid}"), async {
        // with curl: the shop's Content-Security-Policy (connect-src 'none') keeps a page's
        // script from sending it, and a navigation cannot set a header
        let out = tokio::time::timeout(
            Duration::from_secs(15),
            tokio::process::Command::new("curl")
                .args(["-s", "-o", "/dev/null", "-D", "-", "--max-time", "10", "-H"])
                .arg(format!("X-Request-Id: {rid}"))
                .arg(format!("{shop}/"))
                .output(),
        )
        .await
        .map_err(|_| anyhow!("curl did not finish"))?
        .context("run curl")?;
        let head = String::from_utf8_lossy(&out.stdout).to_string();
        let status = head.lines().next().unwrap_or("").to_string();
        if !status.contains(" 200") {
            bail!("the shop answered {status:?}");
        }
        let by = head
            .lines()
            .find_map(|l| l.to_ascii_lowercase().strip_prefix("x-served-by:").map(|v| v.trim().to_string()))
            .unwrap_or_default();
        println!("     {status} from {by}");
        Ok(())
    });
    step!(n, "search it in the control room: nginx's and the shop's lines", async {
        // the log collector ships lines within a second or two, but under load and busy cores
        // it was seen a minute late: twice the usual deadline
        let deadline = Instant::now() + 2 * b.wait;
        for attempt in 1.. {
            // a new URL each time: the same URL with a fragment would not load the page again
            let url = format!("{base}/?request_id={rid}&attempt={attempt}#logs");
            b.goto(&url).await?;
            let found = b
                .js(
                    "return Array.from(document.querySelectorAll('#log-results tr[data-service]')).map(r => r.dataset.service);",
                    vec![],
                )
                .await?;
            let services: Vec<String> = found
                .as_array()
                .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
                .unwrap_or_default();
            let nginx = services.iter().any(|s| s.contains("nginx"));
            let shop = services.iter().any(|s| s.contains("shop"));
            if nginx && shop {
                println!("     lines from: {}", services.join(", "));
                break;
            }
            if Instant::now() >= deadline {
                bail!("after {:?} the search found lines of {services:?} only", 2 * b.wait);
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        // by the page's own form too
        b.goto(&format!("{base}/")).await?;
        let field = b
            .call("find the search field", b.c.find(Locator::Css("#log-search input[name=request_id]")))
            .await?;
        b.call("type the id", field.send_keys(&rid)).await?;
        b.click("#log-search button[type=submit]").await?;
        b.until(
            "results of the form",
            "return document.querySelectorAll('#log-results tr[data-service]').length >= 2",
            vec![],
        )
        .await?;
        b.shot("logs").await
    });
    // a full view for the README: back to the top, everything up
    step!(n, "every replica up at the end", async {
        b.goto(&format!("{base}/")).await?;
        b.until(
            "every replica up",
            "const t = document.querySelectorAll('[data-replica]');\
             return t.length >= arguments[0] && Array.from(t).every(e => e.dataset.state === 'up');",
            vec![json!(want)],
        )
        .await?;
        b.until("the chart", "return !!document.querySelector('#chart svg')", vec![]).await?;
        b.shot("overview").await
    });
    Ok(n)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let a = Args::parse();
    let started = Instant::now();
    let mut caps = Capabilities::new();
    caps.insert("browserName".into(), json!("chrome"));
    caps.insert("goog:chromeOptions".into(), json!({"binary": a.chromium, "args": CHROMIUM_FLAGS}));
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let mut builder = ClientBuilder::new(connector);
    builder.capabilities(caps);
    let c = match tokio::time::timeout(CALL_TIMEOUT, builder.connect(&a.webdriver)).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            println!("FAIL start a browser session at {}: {e}", a.webdriver);
            return ExitCode::FAILURE;
        }
        Err(_) => {
            println!("FAIL start a browser session at {}: no answer", a.webdriver);
            return ExitCode::FAILURE;
        }
    };
    if let Some(d) = &a.screenshots {
        if let Err(e) = std::fs::create_dir_all(d) {
            println!("FAIL create {}: {e}", d.display());
            return ExitCode::FAILURE;
        }
    }
    let b = B { c, wait: Duration::from_secs(a.wait_secs), shots: a.screenshots.clone() };
    println!("ok   start headless Chromium over WebDriver");
    let code = match journey(&b, &a).await {
        Ok(n) => {
            println!(
                "control room journey: all {} steps ok in {:.1} s",
                n + 1,
                started.elapsed().as_secs_f64()
            );
            ExitCode::SUCCESS
        }
        Err((step, why)) => {
            println!("FAIL {step}: {why:#}");
            let dir =
                std::env::temp_dir().join(format!("controlroom-journey-{}", uuid::Uuid::new_v4().simple()));
            if std::fs::create_dir_all(&dir).is_ok() {
                if let Ok(png) = b.call("screenshot", b.c.screenshot()).await {
                    let p = dir.join("FAIL.png");
                    if std::fs::write(&p, png).is_ok() {
                        println!("     screenshot of the failing page: {}", p.display());
                    }
                }
            }
            println!("control room journey: FAILED after {:.1} s", started.elapsed().as_secs_f64());
            ExitCode::FAILURE
        }
    };
    if let Err(e) = b.call("end the session", b.c.clone().close()).await {
        println!("     (ending the browser session: {e:#})");
    }
    code
}
