//! browser-journey: distshop walked through in a real browser — headless Chromium driven over
//! WebDriver (chromedriver) with fantoccini.
//!
//! A shopper registers, sees the catalog with its pictures, searches, adds a product from a grid
//! card and another from its product page, checks out with a shipping address, finds the order
//! in the history and on the account page, changes the password and logs in again with it; then
//! the admin restocks the product bought, confirms the order and ships it, and the shopper sees
//! it shipped. With `--kill-replica` the replica that served the full cart is killed before the
//! checkout, and the journey must go on in the same browser session, on other replicas.
//!
//! Every step prints `ok   <step>` or `FAIL <step>: <why>`; the first failure ends the run
//! (exit 1) with a screenshot of the failing page in a temporary directory. Every WebDriver call
//! is bounded ([`CALL_TIMEOUT`]) and every wait is an explicit condition with a deadline
//! (`--wait-secs`), never a sleep. `tests/browser/run.sh` starts the shop and chromedriver.

use std::{
    future::Future,
    path::{Path, PathBuf},
    process::ExitCode,
    time::{Duration, Instant},
};

use anyhow::{anyhow, bail, Context, Result};
use clap::Parser;
use fantoccini::{elements::Element, error::CmdError, wd::Capabilities, Client, ClientBuilder, Locator};
use serde_json::{json, Value};

/// Bound on one WebDriver command (a page load is bounded tighter, by [`PAGE_LOAD_TIMEOUT`]).
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Chromium's own bound on a navigation (WebDriver `pageLoad` timeout).
const PAGE_LOAD_TIMEOUT: Duration = Duration::from_secs(20);
/// How often a wait looks at its condition again.
const POLL: Duration = Duration::from_millis(100);
/// Bound on the `--kill-replica` command.
const KILL_TIMEOUT: Duration = Duration::from_secs(60);
/// The restock the admin makes.
const RESTOCK_DELTA: i64 = 5;

/// Chromium's flags: no sandbox (CI runs as root), no GPU, nothing fetched but the shop.
const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--window-size=1280,900",
    "--hide-scrollbars",
];

#[derive(Parser)]
#[command(about = "distshop's shopper and admin journey in headless Chromium over WebDriver")]
struct Args {
    /// The shop: the embedded one (http://127.0.0.1:PORT) or nginx in front of the stack.
    #[arg(long)]
    base_url: String,
    /// chromedriver's URL.
    #[arg(long, default_value = "http://127.0.0.1:9515")]
    webdriver: String,
    /// The browser binary chromedriver starts.
    #[arg(long, default_value = "/usr/bin/chromium")]
    chromium: PathBuf,
    /// The admin account.
    #[arg(long, default_value = "admin@distshop.local")]
    admin_email: String,
    /// Its password (better from the environment than on a command line others can read).
    #[arg(long, env = "JOURNEY_ADMIN_PASSWORD", hide_env_values = true)]
    admin_password: String,
    /// Write screenshots of the main pages as DIR/shop-<page>.png (the README's pictures).
    #[arg(long, value_name = "DIR")]
    screenshots: Option<PathBuf>,
    /// A shell command run once, after the cart holds both products and before the checkout,
    /// with the name of the replica that served the cart (the page footer's "served by") as $1;
    /// every later page must then come from another replica.
    #[arg(long, value_name = "CMD")]
    kill_replica: Option<String>,
    /// Deadline of every explicit wait (an element, a page load after a click, a picture).
    #[arg(long, default_value_t = 15)]
    wait_secs: u64,
}

/// One step's failure: which step, and why.
struct Failed {
    step: String,
    why: anyhow::Error,
}

/// Runs one step: `ok   <step>` and its value, or a [`Failed`] that ends the journey.
macro_rules! step {
    ($name:expr, $body:expr) => {{
        let name: String = $name.into();
        match $body.await {
            Ok(v) => {
                println!("ok   {name}");
                v
            }
            Err(why) => return Err(Failed { step: name, why }),
        }
    }};
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = Args::parse();
    let started = Instant::now();
    let browser = match Browser::start(&args).await {
        Ok(b) => b,
        Err(e) => {
            println!("FAIL start a browser session at {}: {e:#}", args.webdriver);
            return ExitCode::FAILURE;
        }
    };
    println!("ok   start headless Chromium ({}) over WebDriver", args.chromium.display());
    let mut j = Journey::new(browser, &args);
    let result = j.run().await;
    let code = match result {
        Ok(steps) => {
            let replicas = j.b.served.join(", ");
            println!(
                "browser journey: all {steps} steps ok in {:.1} s (pages served by: {replicas})",
                started.elapsed().as_secs_f64()
            );
            ExitCode::SUCCESS
        }
        Err(Failed { step, why }) => {
            let url = j.b.url().await.unwrap_or_else(|e| format!("(unknown: {e:#})"));
            println!("FAIL {step}: {why:#} (page: {url})");
            match j.b.failure_screenshot(&step).await {
                Ok(path) => println!("     screenshot of the failing page: {}", path.display()),
                Err(e) => println!("     no screenshot of the failing page: {e:#}"),
            }
            println!("browser journey: FAILED after {:.1} s", started.elapsed().as_secs_f64());
            ExitCode::FAILURE
        }
    };
    // Always end the session: chromedriver would keep its Chromium otherwise.
    if let Err(e) = j.b.close().await {
        println!("     (ending the browser session: {e:#})");
    }
    code
}

/// A product the shopper put in the cart.
#[derive(Clone)]
struct Product {
    id: i64,
    name: String,
}

struct Journey {
    b: Browser,
    admin_email: String,
    admin_password: String,
    kill_replica: Option<String>,
    name: String,
    email: String,
    password: String,
    new_password: String,
}

impl Journey {
    fn new(b: Browser, args: &Args) -> Self {
        let tag = uuid::Uuid::new_v4().simple().to_string();
        Journey {
            b,
            admin_email: args.admin_email.clone(),
            admin_password: args.admin_password.clone(),
            kill_replica: args.kill_replica.clone(),
            name: "Ada Lovelace".into(),
            email: format!("browser-{}@example.org", &tag[..12]),
            password: format!("first-pw-{}", &tag[12..24]),
            new_password: format!("second-pw-{}", &tag[20..32]),
        }
    }

    /// The whole journey; the number of steps on success.
    async fn run(&mut self) -> Result<usize, Failed> {
        let mut n = 1; // starting the browser
        macro_rules! s {
            ($name:expr, $body:expr) => {{
                n += 1;
                step!($name, $body)
            }};
        }
        s!(format!("register a fresh shopper ({})", self.email), self.register());
        s!("catalog: a grid of products, a picture loaded", self.catalog());
        let word = s!("pick a search word from a product name", self.search_word());
        s!(format!("search for \"{word}\": the results contain it"), self.search(&word));
        let first = s!("add a product to the cart from a grid card", self.add_from_grid());
        let second = s!(
            format!("open another product page (not #{}) and add it with quantity 2", first.id),
            self.add_from_product_page(&first)
        );
        let served = s!(
            format!("cart holds both: 1 × \"{}\", 2 × \"{}\"", first.name, second.name),
            self.cart_holds(&first, &second)
        );
        if let Some(cmd) = self.kill_replica.clone() {
            s!(
                format!("kill the replica that served the cart ({served}) with --kill-replica"),
                self.kill(&cmd, &served)
            );
            let now = s!(
                "the same browser session goes on: the cart still holds both, on another replica",
                self.cart_holds(&first, &second)
            );
            println!("     (cart now served by {now})");
        }
        s!("checkout: an empty address field is refused with an error", self.checkout_refuses_empty_field());
        let order = s!("checkout with a shipping address: order placed", self.checkout());
        s!(format!("order #{order}: shows the address and status placed"), self.order_page(order, "placed"));
        s!(
            format!("order history lists #{order} (and its pager, if it has pages)"),
            self.order_history(order)
        );
        s!(format!("account page: profile, ≥ 1 order, a link to #{order}"), self.account(order));
        s!("change password: a wrong current password is refused", self.change_password_wrong());
        s!("change password", self.change_password());
        s!("log out", self.logout());
        s!(
            "log in with the old password fails",
            self.login_fails(&self.email.clone(), &self.password.clone())
        );
        s!("log in with the new password works", self.login(&self.email.clone(), &self.new_password.clone()));
        s!("log out", self.logout());
        s!(format!("admin logs in ({})", self.admin_email), self.admin_login());
        s!(
            format!("admin: the products list shows #{} with its stock", first.id),
            self.admin_products(&first)
        );
        s!(
            format!("admin restocks #{} by {RESTOCK_DELTA}: stock goes up, a history row", first.id),
            self.admin_restock(&first)
        );
        s!(format!("admin confirms order #{order}"), self.admin_act(order, "placed", "confirm", "confirmed"));
        s!(format!("admin ships order #{order}"), self.admin_act(order, "confirmed", "ship", "shipped"));
        s!("log out", self.logout());
        s!("shopper logs in again", self.login(&self.email.clone(), &self.new_password.clone()));
        s!(format!("shopper sees order #{order} shipped"), self.order_page(order, "shipped"));
        Ok(n)
    }

    async fn register(&mut self) -> Result<()> {
        let b = &mut self.b;
        b.open("/register").await?;
        b.fill("form[action='/register'] input[name=name]", &self.name).await?;
        b.fill("form[action='/register'] input[name=email]", &self.email).await?;
        b.fill("form[action='/register'] input[name=password]", &self.password).await?;
        b.submit("form[action='/register'] button[type=submit]").await?;
        b.expect_url("/?notice=welcome").await?;
        b.expect_logged_in().await
    }

    async fn catalog(&mut self) -> Result<()> {
        let b = &mut self.b;
        b.open("/").await?;
        let cards = b.count("ul.grid li.card").await?;
        if cards == 0 {
            bail!("no product card in the catalog grid");
        }
        // A picture really loaded (decoded, with a size), not just an <img> in the page.
        b.until("a product picture on the grid to load (img.naturalWidth > 0)", async |b: &Browser| {
            Ok(b.js_i64(
                "return Array.from(document.querySelectorAll('li.card img'))\
                 .filter(i => i.complete && i.naturalWidth > 0).length",
            )
            .await?
                > 0)
        })
        .await?;
        b.shot("catalog").await
    }

    /// The longest all-letter word (4 letters or more) of the first product name on the grid that
    /// has one. Not simply the first card's: other suites share the stack (the API fuzz run adds
    /// products named "0" or "\u{80}" as the admin), and those may come first.
    async fn search_word(&mut self) -> Result<String> {
        let names = self
            .b
            .js_strings(
                "return Array.from(document.querySelectorAll('ul.grid li.card h3')).map(h => h.textContent)",
            )
            .await?;
        names
            .iter()
            .find_map(|name| {
                name.split(|c: char| !c.is_alphanumeric())
                    .filter(|w| w.chars().count() >= 4 && w.chars().all(char::is_alphabetic))
                    .max_by_key(|w| w.chars().count())
            })
            .map(str::to_string)
            .ok_or_else(|| anyhow!("no word of 4 letters or more in any product name on the grid: {names:?}"))
    }

    async fn search(&mut self, word: &str) -> Result<()> {
        let b = &mut self.b;
        b.fill("header form.search input[name=q]", word).await?;
        b.submit("header form.search button[type=submit]").await?;
        let url = b.url().await?;
        if !url.contains(&format!("q={word}")) {
            bail!("the search did not go to ?q={word}");
        }
        let names = b
            .js_strings(
                "return Array.from(document.querySelectorAll('ul.grid li.card h3')).map(h => h.textContent)",
            )
            .await?;
        let lower = word.to_lowercase();
        if !names.iter().any(|n| n.to_lowercase().contains(&lower)) {
            bail!("{} results, none named with \"{word}\": {names:?}", names.len());
        }
        Ok(())
    }

    async fn add_from_grid(&mut self) -> Result<Product> {
        let b = &mut self.b;
        // the first card of the search results that can be added (in stock)
        let card = b
            .find_opt("ul.grid li.card:has(form.add)")
            .await?
            .ok_or_else(|| anyhow!("no card with an add-to-cart form in the results"))?;
        let id =
            b.call("read the product id", card.find(Locator::Css("form.add input[name=product_id]"))).await?;
        let id = b.call("read the product id", id.attr("value")).await?.unwrap_or_default();
        let id: i64 = id.parse().with_context(|| format!("product id \"{id}\""))?;
        let name = b.call("read the product name", card.find(Locator::Css("h3"))).await?;
        let name = b.call("read the product name", name.text()).await?;
        let button =
            b.call("find the add button", card.find(Locator::Css("form.add button[type=submit]"))).await?;
        b.click_and_wait(&button).await?;
        b.expect_url("/cart?notice=added").await?;
        Ok(Product { id, name })
    }

    async fn add_from_product_page(&mut self, not: &Product) -> Result<Product> {
        let b = &mut self.b;
        b.open("/").await?;
        // in-stock products other than the first, by their picture links
        let candidates = b
            .js_strings(
                "return Array.from(document.querySelectorAll('ul.grid li.card'))\
                 .filter(c => c.querySelector('form.add'))\
                 .map(c => c.querySelector('a.pic').getAttribute('href'))",
            )
            .await?;
        let own = format!("/products/{}", not.id);
        for href in candidates.iter().filter(|h| **h != own).take(10) {
            // click the picture, as a shopper would
            let link = b.find(&format!("ul.grid li.card a.pic[href='{href}']")).await?;
            b.click_and_wait(&link).await?;
            b.expect_url(href).await?;
            b.until("the product picture to load", async |b: &Browser| {
                Ok(b.js_i64("const i = document.querySelector('article.product img.pic'); return i && i.complete ? i.naturalWidth : 0").await? > 0)
            })
            .await?;
            let max = b.attr("article.product input[name=quantity]", "max").await?;
            if max.parse::<i64>().unwrap_or(0) < 2 {
                b.open("/").await?; // fewer than 2 in stock: the next one
                continue;
            }
            let id: i64 =
                href.trim_start_matches("/products/").parse().with_context(|| format!("link {href}"))?;
            let name = b.text("article.product h1").await?;
            b.fill("article.product input[name=quantity]", "2").await?;
            b.shot("product").await?;
            b.submit("article.product form[action='/cart/add'] button[type=submit]").await?;
            b.expect_url("/cart?notice=added").await?;
            return Ok(Product { id, name });
        }
        bail!("no other product on the first catalog page has 2 in stock ({} candidates)", candidates.len())
    }

    /// The cart page lists both products with their quantities; answers the replica that served it.
    async fn cart_holds(&mut self, first: &Product, second: &Product) -> Result<String> {
        let b = &mut self.b;
        b.open("/cart").await?;
        let lines = b
            .js_value(
                "return Array.from(document.querySelectorAll('table.lines tbody tr')).map(tr => {\
                   const a = tr.querySelector('a[href^=\"/products/\"]');\
                   const q = tr.querySelector('input[name=quantity]');\
                   return [a ? a.getAttribute('href') : '', q ? q.value : ''];})",
            )
            .await?;
        let want =
            json!([[format!("/products/{}", first.id), "1"], [format!("/products/{}", second.id), "2"]]);
        let mut got: Vec<Value> = lines.as_array().cloned().unwrap_or_default();
        got.sort_by_key(|v| v.to_string());
        let mut want: Vec<Value> = want.as_array().cloned().unwrap_or_default();
        want.sort_by_key(|v| v.to_string());
        if got != want {
            bail!("cart lines (product, quantity) {} instead of {}", Value::from(got), Value::from(want));
        }
        b.shot("cart").await?;
        b.served_by().await
    }

    async fn kill(&mut self, cmd: &str, replica: &str) -> Result<()> {
        let run = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .arg("kill-replica")
            .arg(replica)
            .kill_on_drop(true)
            .output();
        let out = tokio::time::timeout(KILL_TIMEOUT, run)
            .await
            .map_err(|_| anyhow!("the command did not end within {KILL_TIMEOUT:?}"))?
            .context("could not run sh")?;
        for line in
            String::from_utf8_lossy(&out.stdout).lines().chain(String::from_utf8_lossy(&out.stderr).lines())
        {
            println!("     | {line}");
        }
        if !out.status.success() {
            bail!("`{cmd}` {replica} failed ({})", out.status);
        }
        self.b.avoid = Some(replica.to_string());
        Ok(())
    }

    const ADDRESS: [(&'static str, &'static str); 5] = [
        ("ship_name", "Ada Lovelace"),
        ("ship_street", "12 Analytical Row"),
        ("ship_postcode", "10115"),
        ("ship_city", "Berlin"),
        ("ship_country", "Germany"),
    ];

    async fn fill_address(&mut self, leave_out: Option<&str>) -> Result<()> {
        for (field, value) in Self::ADDRESS {
            let css = format!("form[action='/checkout'] input[name={field}]");
            if self.b.find_opt(&css).await?.is_none() {
                bail!("the checkout form has no {field} input (no address form)");
            }
            self.b.fill(&css, if leave_out == Some(field) { "" } else { value }).await?;
        }
        Ok(())
    }

    async fn checkout_refuses_empty_field(&mut self) -> Result<()> {
        self.b.open("/checkout").await?;
        self.fill_address(Some("ship_city")).await?;
        // past the browser's own `required` check: the shop must refuse it too
        self.b
            .js_value("document.querySelector(\"form[action='/checkout']\").noValidate = true; return null")
            .await?;
        self.b.submit("form[action='/checkout'] button[type=submit]").await?;
        let path = self.b.path().await?;
        if path != "/checkout" {
            bail!("a checkout without a city went on to {path}");
        }
        if self.b.find_opt(".error").await?.is_none() {
            bail!("the checkout page came back without an .error");
        }
        Ok(())
    }

    async fn checkout(&mut self) -> Result<i64> {
        self.b.open("/checkout").await?;
        self.fill_address(None).await?;
        self.b.shot("checkout").await?;
        self.b.submit("form[action='/checkout'] button[type=submit]").await?;
        let path = self.b.path_and_query().await?;
        let Some(id) = path.strip_prefix("/orders/").and_then(|r| r.strip_suffix("?notice=placed")) else {
            bail!("the checkout answered {path}, not /orders/ID?notice=placed{}", self.b.error_text().await);
        };
        id.parse().with_context(|| format!("order id in {path}"))
    }

    async fn order_page(&mut self, order: i64, status: &str) -> Result<()> {
        let b = &mut self.b;
        if b.path().await? != format!("/orders/{order}") {
            b.open(&format!("/orders/{order}")).await?;
        }
        // (the badge is styled with text-transform: the rendered text is "Placed")
        let shown = b.text("h1 .status").await?;
        if !shown.eq_ignore_ascii_case(status) {
            bail!("status {shown}, not {status}");
        }
        let address = b.text("address.ship").await?;
        for (field, value) in Self::ADDRESS {
            if !address.contains(value) {
                bail!("the address shown lacks {field} \"{value}\": {address:?}");
            }
        }
        if status == "placed" {
            b.shot("order").await?;
        }
        Ok(())
    }

    async fn order_history(&mut self, order: i64) -> Result<()> {
        let b = &mut self.b;
        b.open("/orders").await?;
        b.find(&format!("table.lines a[href='/orders/{order}']")).await?;
        // a new account has one order, one page; an older one may have more: then Older → works
        if let Some(older) = b.find_xpath_opt("//nav[@class='pager']//a[contains(., 'Older')]").await? {
            b.click_and_wait(&older).await?;
            if !b.url().await?.contains("page=2") {
                bail!("\"Older\" did not lead to page 2");
            }
            b.find("table.lines tbody tr").await?;
            if b.find_xpath_opt("//nav[@class='pager']//a[contains(., 'Newer')]").await?.is_none() {
                bail!("page 2 of the history has no \"Newer\" link");
            }
        }
        Ok(())
    }

    async fn account(&mut self, order: i64) -> Result<()> {
        let b = &mut self.b;
        // as a shopper gets there: the header's Account link
        let link = b.find("header nav a[href='/account']").await?;
        b.click_and_wait(&link).await?;
        b.expect_url("/account").await?;
        let h1 = b.text("h1").await?;
        if h1 != "Your account" {
            bail!("h1 is \"{h1}\", not \"Your account\"");
        }
        let profile = b.text("dl.profile").await?;
        if !profile.contains(&self.email) || !profile.contains(&self.name) {
            bail!("dl.profile lacks the name or the email: {profile:?}");
        }
        let count = b.text("#order-count").await?;
        let n: i64 = count
            .split_whitespace()
            .zip(count.split_whitespace().skip(1))
            .find(|(_, w)| w.starts_with("order"))
            .and_then(|(n, _)| n.parse().ok())
            .ok_or_else(|| anyhow!("#order-count \"{count}\" does not say \"N orders\""))?;
        if n < 1 {
            bail!("#order-count says {n} orders");
        }
        b.find(&format!("main a[href='/orders/{order}']")).await?;
        b.find("main a[href='/orders']").await?;
        b.shot("account").await
    }

    async fn change_password_form(&mut self, current: &str, new: &str) -> Result<()> {
        let b = &mut self.b;
        if b.find_opt("form#password").await?.is_none() {
            b.open("/account").await?;
        }
        b.fill("form#password input[name=current_password]", current).await?;
        b.fill("form#password input[name=new_password]", new).await?;
        b.submit("form#password button[type=submit]").await
    }

    async fn change_password_wrong(&mut self) -> Result<()> {
        let wrong = format!("{}-wrong", self.password);
        let new = self.new_password.clone();
        self.change_password_form(&wrong, &new).await?;
        if self.b.url().await?.contains("notice=password_changed") {
            bail!("a wrong current password changed the password");
        }
        if self.b.find_opt(".error").await?.is_none() {
            bail!("no .error after a wrong current password");
        }
        self.b.find("form#password").await.map(|_| ())
    }

    async fn change_password(&mut self) -> Result<()> {
        let (old, new) = (self.password.clone(), self.new_password.clone());
        self.change_password_form(&old, &new).await?;
        self.b.expect_url("/account?notice=password_changed").await?;
        let notice = self.b.text(".notice").await?;
        if !notice.to_lowercase().contains("password has been changed") {
            bail!("the notice says \"{notice}\"");
        }
        Ok(())
    }

    async fn logout(&mut self) -> Result<()> {
        let b = &mut self.b;
        b.submit("header form[action='/logout'] button[type=submit]").await?;
        b.expect_url("/?notice=logged_out").await?;
        if b.find_opt("header a[href='/login']").await?.is_none() {
            bail!("still logged in after logging out (no \"Log in\" link)");
        }
        Ok(())
    }

    async fn login_form(&mut self, email: &str, password: &str) -> Result<()> {
        let b = &mut self.b;
        b.open("/login").await?;
        b.fill("form[action='/login'] input[name=email]", email).await?;
        b.fill("form[action='/login'] input[name=password]", password).await?;
        b.submit("form[action='/login'] button[type=submit]").await
    }

    async fn login(&mut self, email: &str, password: &str) -> Result<()> {
        self.login_form(email, password).await?;
        if self.b.path().await? == "/login" {
            bail!("still on /login{}", self.b.error_text().await);
        }
        self.b.expect_logged_in().await
    }

    async fn login_fails(&mut self, email: &str, password: &str) -> Result<()> {
        self.login_form(email, password).await?;
        if self.b.path().await? != "/login"
            || self.b.find_opt("header form[action='/logout']").await?.is_some()
        {
            bail!("logged in");
        }
        if self.b.find_opt(".error").await?.is_none() {
            bail!("the login page came back without an .error");
        }
        Ok(())
    }

    async fn admin_login(&mut self) -> Result<()> {
        let (email, password) = (self.admin_email.clone(), self.admin_password.clone());
        self.login(&email, &password).await?;
        self.b.find("header a[href='/admin/orders']").await.map(|_| ()).context("no Admin link in the header")
    }

    async fn admin_products(&mut self, product: &Product) -> Result<()> {
        let b = &mut self.b;
        b.open("/admin/products").await?;
        b.find("table.products").await?;
        b.shot("admin-products").await?;
        let row = format!("table.products tr[data-product-id='{}']", product.id);
        // the list may have pages: follow "Next"/"Older" until the row shows
        for _ in 0..30 {
            if b.find_opt(&row).await?.is_some() {
                break;
            }
            match b
                .find_xpath_opt(
                    "//nav[contains(@class,'pager')]//a[contains(., 'Next') or contains(., 'Older')]",
                )
                .await?
            {
                Some(next) => b.click_and_wait(&next).await?,
                None => bail!("no row {row} on any page of /admin/products"),
            }
        }
        let stock = b.text(&format!("{row} td.stock")).await?;
        stock.trim().parse::<i64>().with_context(|| format!("td.stock \"{stock}\" is not a number"))?;
        let name = b.text(&row).await?;
        if !name.contains(&product.name) {
            bail!("row {row} does not name \"{}\": {name:?}", product.name);
        }
        let edit = b.find(&format!("{row} a.edit")).await?;
        b.click_and_wait(&edit).await?;
        b.expect_url(&format!("/admin/products/{}", product.id)).await
    }

    async fn admin_restock(&mut self, product: &Product) -> Result<()> {
        let b = &mut self.b;
        let page = format!("/admin/products/{}", product.id);
        if b.path().await? != page {
            b.open(&page).await?;
        }
        let before = b.text("#stock").await?;
        let before: i64 = before.trim().parse().with_context(|| format!("#stock \"{before}\""))?;
        let note = format!("browser journey {}", self.email);
        b.fill("form#restock input[name=delta]", &RESTOCK_DELTA.to_string()).await?;
        b.fill("form#restock input[name=note]", &note).await?;
        b.submit("form#restock button[type=submit]").await?;
        let path = b.path().await?;
        if path != page {
            bail!("the restock went to {path}, not back to {page}{}", b.error_text().await);
        }
        let after = b.text("#stock").await?;
        let after: i64 = after.trim().parse().with_context(|| format!("#stock \"{after}\""))?;
        if after != before + RESTOCK_DELTA {
            bail!("stock {before} → {after}, not {}", before + RESTOCK_DELTA);
        }
        let rows = b.js_strings("return Array.from(document.querySelectorAll('table.stock-history tr')).map(r => r.textContent)").await?;
        let (delta, stock) = (format!("+{RESTOCK_DELTA}"), after.to_string());
        if !rows.iter().any(|r| r.contains(&note) && r.contains(&delta) && r.contains(&stock)) {
            bail!("no row in table.stock-history with {delta}, stock {after} and the note: {rows:?}");
        }
        Ok(())
    }

    /// On `/admin/orders?status=FROM`, press the ACTION button of the order (looking through the
    /// list's pages), and see the notice of its new status.
    async fn admin_act(&mut self, order: i64, from: &str, action: &str, to: &str) -> Result<()> {
        let b = &mut self.b;
        b.open(&format!("/admin/orders?status={from}")).await?;
        let button = format!("form[action='/admin/orders/{order}/{action}'] button[type=submit]");
        for _ in 0..10 {
            if b.find_opt(&button).await?.is_some() {
                b.submit(&button).await?;
                let url = b.url().await?;
                if !url.contains(&format!("notice={to}")) {
                    bail!("after {action}: {url}{}", b.error_text().await);
                }
                return Ok(());
            }
            match b.find_xpath_opt("//nav[@class='pager']//a[contains(., 'Older')]").await? {
                Some(older) => b.click_and_wait(&older).await?,
                None => break,
            }
        }
        bail!("no {action} button for order #{order} on /admin/orders?status={from}")
    }
}

/// The browser session, with bounded calls and explicit waits.
struct Browser {
    c: Client,
    base: String,
    wait: Duration,
    screenshots: Option<PathBuf>,
    /// The replica killed by `--kill-replica`: no page may come from it any more.
    avoid: Option<String>,
    /// Every replica that served a page, in order of first appearance.
    served: Vec<String>,
}

impl Browser {
    async fn start(args: &Args) -> Result<Browser> {
        let mut caps = Capabilities::new();
        caps.insert("browserName".into(), json!("chrome"));
        caps.insert("pageLoadStrategy".into(), json!("normal"));
        caps.insert("goog:chromeOptions".into(), json!({"binary": args.chromium, "args": CHROMIUM_FLAGS}));
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let mut builder = ClientBuilder::new(connector);
        builder.capabilities(caps);
        let c = tokio::time::timeout(CALL_TIMEOUT, builder.connect(&args.webdriver))
            .await
            .map_err(|_| anyhow!("no session within {CALL_TIMEOUT:?}"))??;
        let b = Browser {
            c,
            base: args.base_url.trim_end_matches('/').to_string(),
            wait: Duration::from_secs(args.wait_secs),
            screenshots: args.screenshots.clone(),
            avoid: None,
            served: Vec::new(),
        };
        let timeouts = fantoccini::wd::TimeoutConfiguration::new(
            Some(Duration::from_secs(10)),
            Some(PAGE_LOAD_TIMEOUT),
            Some(Duration::ZERO),
        );
        b.call("set the WebDriver timeouts", b.c.update_timeouts(timeouts)).await?;
        if let Some(dir) = &b.screenshots {
            std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        }
        Ok(b)
    }

    async fn close(&self) -> Result<()> {
        self.call("end the session", self.c.clone().close()).await
    }

    /// One WebDriver command, bounded.
    async fn call<T>(&self, what: &str, f: impl Future<Output = Result<T, CmdError>>) -> Result<T> {
        match tokio::time::timeout(CALL_TIMEOUT, f).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(anyhow!("{what}: {e}")),
            Err(_) => Err(anyhow!("{what}: no answer from WebDriver within {CALL_TIMEOUT:?}")),
        }
    }

    /// Waits until `cond` holds, looking every [`POLL`], for at most `--wait-secs`.
    async fn until(&self, what: &str, cond: impl AsyncFn(&Browser) -> Result<bool>) -> Result<()> {
        let deadline = Instant::now() + self.wait;
        loop {
            let last = match cond(self).await {
                Ok(true) => return Ok(()),
                Ok(false) => None,
                Err(e) => Some(e),
            };
            if Instant::now() >= deadline {
                return Err(match last {
                    Some(e) => e.context(format!("gave up waiting for {what} after {:?}", self.wait)),
                    None => anyhow!("gave up waiting for {what} after {:?}", self.wait),
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }

    async fn url(&self) -> Result<String> {
        Ok(self.call("read the URL", self.c.current_url()).await?.to_string())
    }

    async fn path(&self) -> Result<String> {
        Ok(self.call("read the URL", self.c.current_url()).await?.path().to_string())
    }

    async fn path_and_query(&self) -> Result<String> {
        let u = self.call("read the URL", self.c.current_url()).await?;
        Ok(match u.query() {
            Some(q) => format!("{}?{q}", u.path()),
            None => u.path().to_string(),
        })
    }

    /// The current page is PATH_AND_QUERY (a query in the pattern must match exactly).
    async fn expect_url(&self, want: &str) -> Result<()> {
        let got = if want.contains('?') { self.path_and_query().await? } else { self.path().await? };
        if got != want {
            bail!("on {got}, expected {want}{}", self.error_text().await);
        }
        Ok(())
    }

    /// ` (the page says: …)` when the page shows an `.error`, for failure messages.
    async fn error_text(&self) -> String {
        match self.find_opt(".error, .field-error").await {
            Ok(Some(e)) => match self.call("read the error", e.text()).await {
                Ok(t) => format!(" (the page says: {t})"),
                Err(_) => String::new(),
            },
            _ => String::new(),
        }
    }

    async fn expect_logged_in(&self) -> Result<()> {
        if self.find_opt("header form[action='/logout']").await?.is_none() {
            bail!("not logged in (no \"Log out\" in the header)");
        }
        Ok(())
    }

    /// Navigates to a path of the shop and waits for the page.
    async fn open(&mut self, path: &str) -> Result<()> {
        let url = format!("{}{path}", self.base);
        self.call(&format!("open {path}"), self.c.goto(&url)).await?;
        self.page_loaded().await
    }

    /// A page has loaded: complete, the shop's page (its footer), not its error page, and not
    /// from the killed replica.
    async fn page_loaded(&mut self) -> Result<()> {
        self.until("the page to load", async |b: &Browser| {
            Ok(b.js_value("return document.readyState").await? == json!("complete"))
        })
        .await?;
        if let Some(h) = self.find_opt(".error-page h1").await? {
            let title = self.call("read the error page", h.text()).await?;
            bail!("the shop answered an error page: {title}");
        }
        let by = self.served_by().await?;
        if self.avoid.as_deref() == Some(by.as_str()) {
            bail!("served by {by}, the replica that was killed");
        }
        if !self.served.contains(&by) {
            self.served.push(by);
        }
        Ok(())
    }

    /// The replica named in the footer ("served by <code>NAME</code>").
    async fn served_by(&self) -> Result<String> {
        let code = self.find("footer code").await.context("no \"served by\" in the footer")?;
        self.call("read the footer", code.text()).await
    }

    /// Clicks an element that leads to another page and waits for that page.
    async fn click_and_wait(&mut self, e: &Element) -> Result<()> {
        // a mark on the current document: the next document has none
        self.js_value("window.__journeyOldPage = true; return null").await?;
        self.call("click", e.click()).await?;
        self.until("the next page after the click", async |b: &Browser| {
            Ok(b.js_value("return !window.__journeyOldPage && document.readyState === 'complete'").await?
                == json!(true))
        })
        .await?;
        self.page_loaded().await
    }

    /// Clicks a form's submit button and waits for the page that answers.
    async fn submit(&mut self, button_css: &str) -> Result<()> {
        let button = self.find(button_css).await?;
        self.click_and_wait(&button).await
    }

    async fn find_opt(&self, css: &str) -> Result<Option<Element>> {
        match tokio::time::timeout(CALL_TIMEOUT, self.c.find(Locator::Css(css))).await {
            Ok(Ok(e)) => Ok(Some(e)),
            Ok(Err(e)) if e.is_no_such_element() => Ok(None),
            Ok(Err(e)) => Err(anyhow!("find {css}: {e}")),
            Err(_) => Err(anyhow!("find {css}: no answer from WebDriver within {CALL_TIMEOUT:?}")),
        }
    }

    async fn find_xpath_opt(&self, xpath: &str) -> Result<Option<Element>> {
        match tokio::time::timeout(CALL_TIMEOUT, self.c.find(Locator::XPath(xpath))).await {
            Ok(Ok(e)) => Ok(Some(e)),
            Ok(Err(e)) if e.is_no_such_element() => Ok(None),
            Ok(Err(e)) => Err(anyhow!("find {xpath}: {e}")),
            Err(_) => Err(anyhow!("find {xpath}: no answer from WebDriver within {CALL_TIMEOUT:?}")),
        }
    }

    /// The first element matching CSS, waited for.
    async fn find(&self, css: &str) -> Result<Element> {
        let deadline = Instant::now() + self.wait;
        loop {
            if let Some(e) = self.find_opt(css).await? {
                return Ok(e);
            }
            if Instant::now() >= deadline {
                bail!("no {css} on the page (waited {:?})", self.wait);
            }
            tokio::time::sleep(POLL).await;
        }
    }

    async fn count(&self, css: &str) -> Result<usize> {
        Ok(self.call(&format!("find {css}"), self.c.find_all(Locator::Css(css))).await?.len())
    }

    async fn text(&self, css: &str) -> Result<String> {
        let e = self.find(css).await?;
        self.call(&format!("read {css}"), e.text()).await
    }

    async fn attr(&self, css: &str, name: &str) -> Result<String> {
        let e = self.find(css).await?;
        Ok(self.call(&format!("read {css} {name}"), e.attr(name)).await?.unwrap_or_default())
    }

    /// Types VALUE into the field, replacing what it held.
    async fn fill(&self, css: &str, value: &str) -> Result<()> {
        let e = self.find(css).await?;
        self.call(&format!("clear {css}"), e.clear()).await?;
        if !value.is_empty() {
            self.call(&format!("type into {css}"), e.send_keys(value)).await?;
        }
        Ok(())
    }

    async fn js_value(&self, script: &str) -> Result<Value> {
        self.call("run a script in the page", self.c.execute(script, Vec::new())).await
    }

    async fn js_i64(&self, script: &str) -> Result<i64> {
        let v = self.js_value(script).await?;
        v.as_i64().ok_or_else(|| anyhow!("the script answered {v}, not a number"))
    }

    async fn js_strings(&self, script: &str) -> Result<Vec<String>> {
        let v = self.js_value(script).await?;
        let items = v.as_array().ok_or_else(|| anyhow!("the script answered {v}, not a list"))?;
        Ok(items.iter().map(|s| s.as_str().unwrap_or_default().to_string()).collect())
    }

    /// With `--screenshots DIR`: DIR/shop-NAME.png of the page as it is, once every picture in
    /// view has loaded.
    async fn shot(&self, name: &str) -> Result<()> {
        let Some(dir) = &self.screenshots else { return Ok(()) };
        self.until("the pictures in view to load", async |b: &Browser| {
            Ok(b.js_i64(
                "return Array.from(document.images).filter(i => {\
                   const r = i.getBoundingClientRect();\
                   return r.bottom > 0 && r.top < innerHeight && !(i.complete && i.naturalWidth > 0);\
                 }).length",
            )
            .await?
                == 0)
        })
        .await?;
        // no caret or focus ring of the field just typed into
        self.js_value("if (document.activeElement) document.activeElement.blur(); return null").await?;
        let path = dir.join(format!("shop-{name}.png"));
        self.write_screenshot(&path).await
    }

    async fn write_screenshot(&self, path: &Path) -> Result<()> {
        let png = self.call("take a screenshot", self.c.screenshot()).await?;
        std::fs::write(path, png).with_context(|| format!("write {}", path.display()))
    }

    /// A screenshot of the page a step failed on, in a new temporary directory.
    async fn failure_screenshot(&self, step: &str) -> Result<PathBuf> {
        let dir = std::env::temp_dir().join(format!("browser-journey-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        let slug: String = step
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' })
            .collect::<String>()
            .split('-')
            .filter(|s| !s.is_empty())
            .take(8)
            .collect::<Vec<_>>()
            .join("-");
        let path = dir.join(format!("FAIL-{slug}.png"));
        self.write_screenshot(&path).await?;
        Ok(path)
    }
}
