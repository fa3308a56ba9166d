//! One virtual shopper on one journey: log in (or register), browse, search, fill the cart, check
//! out, look at orders, cancel, log out — checking every answer against its own model.

use std::{
    collections::BTreeSet,
    time::{Duration, Instant},
};

use rand::{rngs::StdRng, seq::SliceRandom, Rng};
use serde_json::{json, Value};

use crate::{
    findings::{Finding, Kind},
    http::{Reply, Req, Transport},
    metrics::{ErrorClass, Phase, Sample},
    model::{
        backoff_ms, check_new_order, parse_cart, parse_order, parse_order_page, resolve_ambiguous_add,
        AddOutcome, KnownOrder, KnownStatus, ListCheck, OrderView, ServerCart, MAX_ORDER_PAGES,
        ORDER_LIST_LIMIT,
    },
    state::{lock, Account, Ack, Shared},
};

pub const EP_REGISTER: &str = "POST /api/register";
pub const EP_LOGIN: &str = "POST /api/login";
pub const EP_LOGOUT: &str = "POST /api/logout";
pub const EP_ME: &str = "GET /api/me";
pub const EP_CATEGORIES: &str = "GET /api/categories";
pub const EP_PRODUCTS: &str = "GET /api/products";
pub const EP_SEARCH: &str = "GET /api/products?q=";
pub const EP_PRODUCT: &str = "GET /api/products/{id}";
pub const EP_CART: &str = "GET /api/cart";
pub const EP_CART_ADD: &str = "POST /api/cart/items";
pub const EP_CART_SET: &str = "PUT /api/cart/items/{product_id}";
pub const EP_CART_REMOVE: &str = "DELETE /api/cart/items/{product_id}";
pub const EP_CHECKOUT: &str = "POST /api/orders";
pub const EP_ORDERS: &str = "GET /api/orders";
pub const EP_ORDER: &str = "GET /api/orders/{id}";
pub const EP_CANCEL: &str = "POST /api/orders/{id}/cancel";

/// Endpoints that answer 401 without a logged-in session (the cart works anonymously).
fn requires_login(endpoint: &str) -> bool {
    endpoint == EP_ME || endpoint.contains("/api/orders")
}

/// The error class of one answer, given the 4xx statuses the journey expects here.
pub fn classify(r: &Reply, expected: &[u16]) -> Option<ErrorClass> {
    match (&r.transport, r.status) {
        (Some(Transport::Timeout), _) => Some(ErrorClass::Timeout),
        (Some(Transport::Network(_) | Transport::Connect(_)), _) | (None, None) => Some(ErrorClass::Network),
        (None, Some(s)) if (200..300).contains(&s) => None,
        (None, Some(s)) if s >= 500 => Some(ErrorClass::Server5xx),
        (None, Some(s)) if expected.contains(&s) => Some(ErrorClass::Expected4xx),
        (None, Some(_)) => Some(ErrorClass::Unexpected4xx),
    }
}

/// Percent-encode a query value.
pub fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The journey gave up (the run is stopping, or the account cannot be used).
pub struct Abort;

/// A checkout that an order came back for.
struct Placed {
    reply: Reply,
    /// Attempts it took.
    attempts: u32,
    /// Whether an earlier attempt had no clear answer (it may have placed the order).
    ambiguous_before: bool,
}
type Step = Result<(), Abort>;

pub struct Shopper<'a> {
    sh: &'a Shared,
    pub acct: Account,
    rng: StdRng,
    phase: Phase,
    /// Latency of the next request is measured from this instant (open model: the journey's
    /// scheduled start).
    first_intended: Option<Instant>,
    /// Products seen on this journey, with the stock they showed.
    seen: Vec<(i64, i64)>,
    categories: Vec<String>,
}

impl<'a> Shopper<'a> {
    pub fn new(sh: &'a Shared, acct: Account, rng: StdRng, phase: Phase) -> Self {
        Shopper { sh, acct, rng, phase, first_intended: None, seen: Vec::new(), categories: Vec::new() }
    }

    pub fn into_parts(self) -> (Account, StdRng) {
        (self.acct, self.rng)
    }

    // --- plumbing -------------------------------------------------------------------------

    async fn call(&mut self, mut req: Req, expected: &[u16]) -> Reply {
        if let Some(t) = self.first_intended.take() {
            req.intended = t;
        }
        if self.phase == Phase::Load {
            self.sh.count_request();
        }
        let reply = self.sh.http.send(&mut self.acct.jar, &req).await;
        let class = classify(&reply, expected);
        if reply.status.is_some() {
            self.sh.checked.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        lock(&self.sh.recorder).record(
            self.phase,
            &Sample {
                endpoint: req.endpoint,
                status: reply.status,
                latency: reply.latency,
                served_by: reply.served_by.clone(),
                class,
                finished: reply.finished,
            },
        );
        if reply.is(401) && self.acct.logged_in && requires_login(req.endpoint) {
            self.acct.logged_in = false;
            self.finding(
                Kind::LostSession,
                req.endpoint,
                Some(&reply),
                "401 while the shopper was logged in (session lost)".into(),
            );
        }
        if reply.success() {
            if let Some(e) = &reply.body_error {
                self.finding(Kind::Content, req.endpoint, Some(&reply), e.clone());
            }
        }
        reply
    }

    /// An idempotent request, retried (bounded, with backoff) on no answer, 5xx and 429.
    async fn call_retry(&mut self, req: Req, expected: &[u16]) -> Reply {
        let attempts = self.sh.profile.retry_attempts.max(1);
        let mut req = req;
        let mut n = 0;
        // An attempt that may have been applied stays "maybe applied" even when the later ones
        // were refused outright (the entry point died after it sent the first one on): the
        // caller must not take the final refusal for "nothing happened".
        let mut maybe_applied: Option<Reply> = None;
        loop {
            n += 1;
            let r = self.call(req.clone(), expected).await;
            if r.ambiguous() {
                maybe_applied = Some(r.clone());
            }
            if !r.retryable() || n >= attempts {
                return match maybe_applied {
                    Some(earlier) if r.undelivered() => earlier,
                    _ => r,
                };
            }
            lock(&self.sh.findings).bump("retries");
            tokio::time::sleep(Duration::from_millis(backoff_ms(n, r.retry_after))).await;
            req.intended = Instant::now();
        }
    }

    fn finding(&mut self, kind: Kind, endpoint: &'static str, reply: Option<&Reply>, detail: String) {
        let at = reply.map(|r| r.finished).unwrap_or_else(Instant::now);
        let f = Finding {
            kind,
            t_s: self.sh.t_s(at),
            shopper: self.acct.n,
            email: self.acct.email.clone(),
            endpoint: endpoint.to_string(),
            served_by: reply.and_then(|r| r.served_by.clone()),
            request_id: reply.and_then(|r| r.request_id.clone()),
            detail,
        };
        self.sh.event(format!(
            "{} shopper #{} ({}) {} via {}: {}",
            kind.name().to_uppercase(),
            f.shopper,
            f.email,
            f.endpoint,
            f.served_by.as_deref().unwrap_or("?"),
            f.detail
        ));
        lock(&self.sh.findings).add(f);
        lock(&self.sh.recorder).violation(self.phase, endpoint, at);
    }

    fn bump(&self, counter: &str) {
        lock(&self.sh.findings).bump(counter);
    }

    fn ambiguous(&self, op: &str) {
        lock(&self.sh.findings).ambiguous(op);
    }

    fn unresolved(&self, op: &str) {
        lock(&self.sh.findings).unresolved(op);
    }

    async fn think(&mut self) -> Step {
        if self.phase == Phase::Verify {
            return Ok(());
        }
        let [a, b] = self.sh.profile.think_ms;
        let ms = if b > a { self.rng.gen_range(a..=b) } else { a };
        if ms == 0 {
            return if self.sh.stopping() { Err(Abort) } else { Ok(()) };
        }
        if self.sh.sleep(Duration::from_millis(ms)).await {
            Ok(())
        } else {
            Err(Abort)
        }
    }

    fn chance(&mut self, p: f64) -> bool {
        self.rng.gen_bool(p.clamp(0.0, 1.0))
    }

    fn in_range(&mut self, [a, b]: [u32; 2]) -> u32 {
        if b > a {
            self.rng.gen_range(a..=b)
        } else {
            a
        }
    }

    fn t_now(&self) -> f64 {
        self.sh.t_s(Instant::now())
    }

    // --- journeys -------------------------------------------------------------------------

    /// One whole journey. The first request's latency counts from `intended`.
    pub async fn journey(&mut self, intended: Instant) {
        self.first_intended = Some(intended);
        self.seen.clear();
        let _ = self.journey_steps().await;
        if self.acct.orders.known.len() >= self.sh.profile.max_orders_per_account {
            self.acct.retired = true;
        }
        self.bump("journeys");
    }

    async fn journey_steps(&mut self) -> Step {
        let p = self.sh.profile.clone();
        self.ensure_session().await?;
        self.think().await?;
        // A returning shopper's cart must still hold what it left there.
        self.verify_cart().await;
        self.think().await?;
        self.browse().await?;
        let adds = self.in_range(p.cart_adds);
        for _ in 0..adds {
            self.think().await?;
            self.add_to_cart().await;
        }
        if !self.acct.cart.is_empty() && self.chance(p.p_change_quantity) {
            self.think().await?;
            self.change_quantity().await;
        }
        if !self.acct.cart.is_empty() && self.chance(p.p_remove) {
            self.think().await?;
            self.remove_random_line().await;
        }
        if !self.acct.cart.is_empty() && self.chance(p.p_checkout) {
            self.think().await?;
            self.checkout().await?;
        }
        if self.chance(p.p_view_orders) {
            self.think().await?;
            self.view_orders().await;
        }
        if !self.acct.orders.open_orders().is_empty() && self.chance(p.p_cancel) {
            self.think().await?;
            self.cancel_order().await;
        }
        if self.chance(p.p_logout) {
            self.think().await?;
            self.logout().await;
        }
        Ok(())
    }

    /// After the load: is everything this account was promised still there?
    pub async fn verify(&mut self) {
        if !self.acct.registered {
            return;
        }
        if self.ensure_session().await.is_err() {
            self.bump("verify_unreachable_accounts");
            return;
        }
        self.verify_cart().await;
        if let Some(check) = self.list_orders().await {
            self.apply_list_check(check);
            // Whatever is still pending was not found among the orders: no order was made.
            let left = std::mem::take(&mut self.acct.orders.pending);
            lock(&self.sh.findings).bump_by("checkouts_resolved_no_order", left.len() as u64);
        }
        self.bump("accounts_verified");
    }

    // --- session --------------------------------------------------------------------------

    async fn ensure_session(&mut self) -> Step {
        if !self.acct.registered {
            self.register().await?;
        }
        if self.acct.logged_in {
            // A returning shopper with its session cookie: the session must still be valid,
            // whichever replica answers.
            let r = self.call_retry(Req::get(EP_ME, "/api/me"), &[]).await;
            if r.success() {
                self.check_me(&r);
                return Ok(());
            }
            if !r.is(401) {
                return Err(Abort);
            }
            self.bump("relogins_after_lost_session");
        }
        self.login().await?;
        // Right after logging in the session must work on whatever replica serves the next
        // request (a replica without the shared session store or key fails here).
        let r = self.call_retry(Req::get(EP_ME, "/api/me"), &[]).await;
        if r.success() {
            self.check_me(&r);
            Ok(())
        } else {
            Err(Abort)
        }
    }

    fn check_me(&mut self, r: &Reply) {
        let email = r.body.get("email").and_then(Value::as_str).unwrap_or("");
        if email != self.acct.email {
            let detail = format!("/api/me answers for `{email}`, the session belongs to {}", self.acct.email);
            self.finding(Kind::Content, EP_ME, Some(r), detail);
        }
    }

    async fn register(&mut self) -> Step {
        let body = json!({"email": self.acct.email, "password": self.acct.password, "name": self.acct.name});
        let mut ambiguous_before = false;
        for attempt in 1..=self.sh.profile.retry_attempts.max(1) {
            // A 409 is only expected once an earlier attempt may have gone through.
            let expected: &[u16] = if ambiguous_before { &[409] } else { &[] };
            let r = self.call(Req::post(EP_REGISTER, "/api/register", body.clone()), expected).await;
            if r.is(201) || (r.is(409) && ambiguous_before) {
                if r.is(409) {
                    self.ambiguous("register");
                }
                self.acct.registered = true;
                self.bump("registrations");
                return Ok(());
            }
            if r.retryable() {
                ambiguous_before |= r.ambiguous();
                tokio::time::sleep(Duration::from_millis(backoff_ms(attempt, r.retry_after))).await;
                continue;
            }
            break;
        }
        if ambiguous_before {
            self.unresolved("register");
        }
        self.acct.retired = true;
        Err(Abort)
    }

    async fn login(&mut self) -> Step {
        let body = json!({"email": self.acct.email, "password": self.acct.password});
        for attempt in 1..=self.sh.profile.retry_attempts.max(1) {
            let r = self.call(Req::post(EP_LOGIN, "/api/login", body.clone()), &[]).await;
            if r.success() {
                self.acct.logged_in = true;
                self.bump("logins");
                let email = r.body.get("email").and_then(Value::as_str).unwrap_or("").to_string();
                if email != self.acct.email {
                    let detail = format!("login answered for `{email}`, expected {}", self.acct.email);
                    self.finding(Kind::Content, EP_LOGIN, Some(&r), detail);
                }
                return Ok(());
            }
            if r.is(401) {
                let detail = format!("the registered account {} is refused at login (401)", self.acct.email);
                self.finding(Kind::Content, EP_LOGIN, Some(&r), detail);
                self.acct.retired = true;
                return Err(Abort);
            }
            if r.retryable() {
                tokio::time::sleep(Duration::from_millis(backoff_ms(attempt, r.retry_after))).await;
                continue;
            }
            break;
        }
        Err(Abort)
    }

    async fn logout(&mut self) {
        let r = self.call_retry(Req::post(EP_LOGOUT, "/api/logout", json!({})), &[]).await;
        if !r.success() {
            return;
        }
        self.acct.logged_in = false;
        self.bump("logouts");
        if self.chance(0.5) {
            let me = self.call(Req::get(EP_ME, "/api/me"), &[401]).await;
            if me.success() {
                self.finding(Kind::Content, EP_ME, Some(&me), "still logged in after logging out".into());
            }
        }
    }

    // --- catalog --------------------------------------------------------------------------

    async fn browse(&mut self) -> Step {
        let p = self.sh.profile.clone();
        if self.chance(p.p_categories) {
            let r = self.call_retry(Req::get(EP_CATEGORIES, "/api/categories"), &[]).await;
            if r.success() {
                self.read_categories(&r);
            }
            self.think().await?;
        }
        for _ in 0..self.in_range(p.browse_pages) {
            let page = self.rng.gen_range(1..=4);
            let category = if !self.categories.is_empty() && self.chance(0.6) {
                self.categories.choose(&mut self.rng).cloned()
            } else {
                None
            };
            let mut path = format!("/api/products?page={page}&per_page=20");
            if let Some(c) = &category {
                path.push_str(&format!("&category={}", enc(c)));
            }
            let r = self.call_retry(Req::get(EP_PRODUCTS, path), &[]).await;
            if r.success() {
                self.read_product_list(EP_PRODUCTS, &r, category.as_deref(), 20);
            }
            self.think().await?;
        }
        for _ in 0..self.in_range(p.searches) {
            let term = p.search_terms.choose(&mut self.rng).cloned().unwrap_or_default();
            let r =
                self.call_retry(Req::get(EP_SEARCH, format!("/api/products?q={}", enc(&term))), &[]).await;
            if r.success() {
                self.read_product_list(EP_SEARCH, &r, None, 20);
            }
            self.think().await?;
        }
        for _ in 0..self.in_range(p.product_views) {
            let id = if !self.seen.is_empty() && self.chance(0.7) {
                self.seen.choose(&mut self.rng).map(|(id, _)| *id)
            } else {
                self.sh.product_ids.choose(&mut self.rng).copied()
            };
            let Some(id) = id else { break };
            let r = self.call_retry(Req::get(EP_PRODUCT, format!("/api/products/{id}")), &[]).await;
            if r.success() {
                let got = r.body.get("id").and_then(Value::as_i64);
                let stock = r.body.get("stock").and_then(Value::as_i64);
                match (got, stock) {
                    (Some(g), Some(s)) if g == id && s >= 0 => self.saw(id, s),
                    _ => {
                        let detail = format!("product {id}: answered id {got:?} with stock {stock:?}");
                        self.finding(Kind::Content, EP_PRODUCT, Some(&r), detail);
                    }
                }
            }
            self.think().await?;
        }
        Ok(())
    }

    fn saw(&mut self, id: i64, stock: i64) {
        match self.seen.iter_mut().find(|(p, _)| *p == id) {
            Some(e) => e.1 = stock,
            None => self.seen.push((id, stock)),
        }
    }

    fn read_categories(&mut self, r: &Reply) {
        let items = r.body.get("items").and_then(Value::as_array);
        let names: Option<Vec<String>> = items.map(|items| {
            items.iter().filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_string)).collect()
        });
        match names {
            Some(n) if items.is_some_and(|i| i.len() == n.len()) => self.categories = n,
            _ => self.finding(Kind::Content, EP_CATEGORIES, Some(r), "malformed category list".into()),
        }
    }

    fn read_product_list(&mut self, ep: &'static str, r: &Reply, category: Option<&str>, per_page: usize) {
        let Some(items) = r.body.get("items").and_then(Value::as_array) else {
            self.finding(Kind::Content, ep, Some(r), "product list has no `items`".into());
            return;
        };
        let total = r.body.get("total").and_then(Value::as_i64).unwrap_or(-1);
        let mut problems = Vec::new();
        if items.len() > per_page {
            problems.push(format!("{} items on a page of {per_page}", items.len()));
        }
        if total < items.len() as i64 {
            problems.push(format!("total {total} < {} items listed", items.len()));
        }
        let mut seen = Vec::new();
        for it in items {
            let id = it.get("id").and_then(Value::as_i64);
            let stock = it.get("stock").and_then(Value::as_i64);
            let price = it.get("price_cents").and_then(Value::as_i64);
            match (id, stock, price) {
                (Some(id), Some(s), Some(p)) if s >= 0 && p >= 0 => seen.push((id, s)),
                _ => problems.push(format!("bad product entry: id {id:?} stock {stock:?} price {price:?}")),
            }
            if let Some(c) = category {
                let got = it.get("category").and_then(Value::as_str).unwrap_or("");
                if got != c {
                    problems.push(format!("product {id:?} of category `{got}` listed under `{c}`"));
                }
            }
        }
        for (id, s) in seen {
            self.saw(id, s);
        }
        if !problems.is_empty() {
            self.finding(Kind::Content, ep, Some(r), problems.join("; "));
        }
    }

    // --- cart -----------------------------------------------------------------------------

    /// Read the cart (retrying), checking it is well-formed.
    async fn read_cart(&mut self) -> Option<(ServerCart, Reply)> {
        let r = self.call_retry(Req::get(EP_CART, "/api/cart"), &[]).await;
        if !r.success() {
            return None;
        }
        match parse_cart(&r.body) {
            Ok(c) => Some((c, r)),
            Err(e) => {
                self.finding(Kind::Content, EP_CART, Some(&r), format!("malformed cart: {e}"));
                None
            }
        }
    }

    /// Read the cart and compare it with the model.
    async fn verify_cart(&mut self) -> Option<ServerCart> {
        let (cart, r) = self.read_cart().await?;
        self.compare_cart(EP_CART, &cart, &r, "cart").await;
        Some(cart)
    }

    /// Compare a cart the shop returned with the model; on a difference, find out whether the
    /// session was lost (the cart then silently falls back to an anonymous one) before calling it
    /// a content violation.
    async fn compare_cart(&mut self, ep: &'static str, cart: &ServerCart, r: &Reply, context: &str) {
        for (pid, line) in &cart.lines {
            if let Some(s) = line.stock {
                self.saw(*pid, s);
            }
        }
        if self.acct.cart.uncertain {
            self.acct.cart.adopt(cart);
            self.bump("cart_resyncs");
            return;
        }
        let Some(diff) = self.acct.cart.diff(cart) else { return };
        self.cart_mismatch(ep, cart, r, format!("{context}: {diff}")).await;
    }

    async fn cart_mismatch(&mut self, ep: &'static str, cart: &ServerCart, r: &Reply, detail: String) {
        if self.acct.logged_in {
            let me = self.call_retry(Req::get(EP_ME, "/api/me"), &[]).await;
            if me.is(401) {
                // Counted as a lost session by `call`. The account's own cart must have survived:
                // log in again and look.
                if self.login().await.is_ok() {
                    if let Some((c2, r2)) = self.read_cart().await {
                        if let Some(d2) = self.acct.cart.diff(&c2) {
                            let detail = format!("cart after logging in again (session was lost): {d2}");
                            self.finding(Kind::Content, EP_CART, Some(&r2), detail);
                        }
                        self.acct.cart.adopt(&c2);
                    }
                }
                return;
            }
        }
        self.finding(Kind::Content, ep, Some(r), detail);
        // Go on from what the shop says, so one loss is reported once.
        self.acct.cart.adopt(cart);
    }

    fn pick_product(&mut self) -> Option<(i64, i64)> {
        let in_stock: Vec<(i64, i64)> = self.seen.iter().copied().filter(|(_, s)| *s > 0).collect();
        if let Some(p) = in_stock.choose(&mut self.rng) {
            return Some(*p);
        }
        self.sh.product_ids.choose(&mut self.rng).map(|id| (*id, 1))
    }

    async fn add_to_cart(&mut self) {
        let Some((pid, stock)) = self.pick_product() else { return };
        let max = self.sh.profile.max_add_quantity.min(stock.max(1));
        let qty = self.rng.gen_range(1..=max.max(1));
        let req = Req::post(EP_CART_ADD, "/api/cart/items", json!({"product_id": pid, "quantity": qty}));
        let mut r = self.call(req.clone(), &[422]).await;
        // A refused connection sent nothing: trying again cannot add twice.
        let mut attempt = 1;
        while r.undelivered() && attempt < self.sh.profile.retry_attempts {
            lock(&self.sh.findings).bump("retries");
            tokio::time::sleep(Duration::from_millis(backoff_ms(attempt, None))).await;
            attempt += 1;
            r = self.call(req.clone().intended(Instant::now()), &[422]).await;
        }
        if r.success() {
            self.bump("cart_adds");
            self.acct.cart.add(pid, qty);
            match parse_cart(&r.body) {
                Ok(c) => self.compare_cart(EP_CART_ADD, &c, &r, &format!("after adding {qty} × {pid}")).await,
                Err(e) => {
                    self.finding(Kind::Content, EP_CART_ADD, Some(&r), format!("malformed cart: {e}"));
                    self.acct.cart.uncertain = true;
                }
            }
        } else if r.is(422) {
            // Over stock, sold out or over 99: nothing changed.
            self.bump("cart_adds_refused");
        } else if r.ambiguous() {
            // Not idempotent: retrying could add twice. Read the cart to learn what happened.
            self.ambiguous("cart-add");
            match self.read_cart().await {
                Some((c, rr)) => match resolve_ambiguous_add(&self.acct.cart, pid, qty, &c) {
                    AddOutcome::Applied => self.acct.cart.add(pid, qty),
                    AddOutcome::NotApplied => {}
                    AddOutcome::Neither(d) => {
                        let detail = format!("after an ambiguous add of {qty} × {pid} the cart is neither before nor after it: {d}");
                        self.cart_mismatch(EP_CART, &c, &rr, detail).await;
                    }
                },
                None => {
                    self.acct.cart.uncertain = true;
                    self.unresolved("cart-add");
                }
            }
        }
    }

    async fn set_line(&mut self, pid: i64, qty: i64) {
        let req = Req::put(EP_CART_SET, format!("/api/cart/items/{pid}"), json!({"quantity": qty}));
        let r = self.call_retry(req, &[422]).await;
        if r.success() {
            self.bump("cart_sets");
            self.acct.cart.set(pid, qty);
            match parse_cart(&r.body) {
                Ok(c) => {
                    self.compare_cart(EP_CART_SET, &c, &r, &format!("after setting {pid} to {qty}")).await
                }
                Err(e) => {
                    self.finding(Kind::Content, EP_CART_SET, Some(&r), format!("malformed cart: {e}"));
                    self.acct.cart.uncertain = true;
                }
            }
        } else if r.is(422) {
            self.bump("cart_sets_refused");
        } else if r.ambiguous() {
            // The last attempt may have been applied (an undelivered one was not).
            self.acct.cart.uncertain = true;
            self.unresolved("cart-set");
        }
    }

    async fn remove_line(&mut self, pid: i64) {
        let r = self.call_retry(Req::delete(EP_CART_REMOVE, format!("/api/cart/items/{pid}")), &[]).await;
        if r.success() {
            self.bump("cart_removes");
            self.acct.cart.remove(pid);
            match parse_cart(&r.body) {
                Ok(c) => self.compare_cart(EP_CART_REMOVE, &c, &r, &format!("after removing {pid}")).await,
                Err(e) => {
                    self.finding(Kind::Content, EP_CART_REMOVE, Some(&r), format!("malformed cart: {e}"));
                    self.acct.cart.uncertain = true;
                }
            }
        } else if r.ambiguous() {
            // The last attempt may have been applied (an undelivered one was not).
            self.acct.cart.uncertain = true;
            self.unresolved("cart-remove");
        }
    }

    async fn change_quantity(&mut self) {
        let lines: Vec<(i64, i64)> = self.acct.cart.lines.iter().map(|(p, q)| (*p, *q)).collect();
        let Some(&(pid, cur)) = lines.choose(&mut self.rng) else { return };
        let hi = (cur + 3).min(99);
        let mut qty = self.rng.gen_range(1..=hi);
        if qty == cur && hi > 1 {
            qty = if cur > 1 { cur - 1 } else { cur + 1 };
        }
        self.set_line(pid, qty).await;
    }

    async fn remove_random_line(&mut self) {
        let ids: Vec<i64> = self.acct.cart.lines.keys().copied().collect();
        if let Some(&pid) = ids.choose(&mut self.rng) {
            self.remove_line(pid).await;
        }
    }

    /// After "not enough stock": bring every line down to what is left.
    async fn fix_cart_after_stock_conflict(&mut self) {
        let Some(cart) = self.verify_cart().await else { return };
        for (pid, line) in &cart.lines {
            match line.stock {
                Some(0) => self.remove_line(*pid).await,
                Some(s) if s < line.quantity => self.set_line(*pid, s).await,
                _ => {}
            }
        }
    }

    // --- orders ---------------------------------------------------------------------------

    fn ack_order(&mut self, o: &OrderView, key: &str, resolved_by: &str, attempts: u32) {
        let ack = Ack::Order {
            email: self.acct.email.clone(),
            shopper: self.acct.n,
            order_id: o.id,
            idempotency_key: key.to_string(),
            lines: o.items.clone(),
            total_cents: o.total_cents,
            status: o.status.clone(),
            resolved_by: resolved_by.to_string(),
            attempts,
            t_s: self.t_now(),
        };
        lock(&self.sh.acks).write(&ack);
        let status = if o.status == "cancelled" { KnownStatus::CancelUnknown } else { KnownStatus::Open };
        self.acct.orders.known.insert(o.id, KnownOrder { order: o.clone(), key: key.to_string(), status });
        self.bump("orders_acknowledged");
    }

    async fn checkout(&mut self) -> Step {
        // The shopper looks at the cart before paying: this is what the order must contain.
        let Some(basis) = self.verify_cart().await else { return Ok(()) };
        if basis.lines.is_empty() {
            return Ok(());
        }
        self.think().await?;
        let key = uuid::Uuid::new_v4().to_string();
        let Some(placed) = self.place_order(&key, &basis).await else { return Ok(()) };
        self.accept_order(placed, &basis, &key).await;
        Ok(())
    }

    /// Check out under `key`, again with the same key after a lost session, no answer, a 5xx or
    /// a 429, up to `checkout_attempts`. The order when one came back; else `None`, with the key
    /// noted as refused (nothing was placed) or pending (an attempt may still have placed it).
    async fn place_order(&mut self, key: &str, basis: &ServerCart) -> Option<Placed> {
        let max = self.sh.profile.checkout_attempts.max(1);
        let mut ambiguous_before = false;
        let mut attempts = 0u32;
        let reply = loop {
            attempts += 1;
            let req = Req::post(EP_CHECKOUT, "/api/orders", json!({})).key(key);
            let r = self.call(req, &[409, 422]).await;
            if r.is(201) || r.is(200) {
                break r;
            }
            if r.is(401) && attempts < max {
                // Lost session (counted in `call`): log in again, retry with the same key.
                if self.login().await.is_ok() {
                    continue;
                }
            }
            if r.is(409) {
                // Not enough stock: the transaction was rolled back, the cart is untouched.
                self.bump("checkouts_refused_stock");
                if ambiguous_before {
                    // An earlier attempt might still land; the final verification settles it.
                    self.acct.orders.pending.insert(key.to_string());
                } else {
                    self.acct.orders.refused.insert(key.to_string());
                }
                self.fix_cart_after_stock_conflict().await;
                return None;
            }
            if r.is(422) {
                if r.error_code() == Some("empty_cart") {
                    let detail = format!(
                        "checkout says the cart is empty; the cart read just before had {} lines",
                        basis.lines.len()
                    );
                    self.finding(Kind::Content, EP_CHECKOUT, Some(&r), detail);
                    self.acct.cart.uncertain = true;
                }
                if ambiguous_before {
                    self.acct.orders.pending.insert(key.to_string());
                } else {
                    self.acct.orders.refused.insert(key.to_string());
                }
                return None;
            }
            if r.retryable() && attempts < max {
                ambiguous_before |= r.ambiguous();
                lock(&self.sh.findings).bump("checkout_retries");
                tokio::time::sleep(Duration::from_millis(backoff_ms(attempts, r.retry_after))).await;
                continue;
            }
            // Out of attempts (or an unexpected answer): the order may or may not exist.
            if ambiguous_before || r.ambiguous() {
                self.acct.orders.pending.insert(key.to_string());
                self.acct.cart.uncertain = true;
                self.unresolved("checkout");
            } else {
                self.acct.orders.refused.insert(key.to_string());
            }
            return None;
        };
        Some(Placed { reply, attempts, ambiguous_before })
    }

    /// An order came back: check it against the cart it was placed from, log it as acknowledged,
    /// and see the cart emptied — and, after a retried attempt, no second order made.
    async fn accept_order(&mut self, placed: Placed, basis: &ServerCart, key: &str) {
        let Placed { reply, attempts, ambiguous_before } = placed;
        if ambiguous_before {
            self.ambiguous("checkout");
        }
        if reply.is(200) && !ambiguous_before {
            self.finding(
                Kind::Content,
                EP_CHECKOUT,
                Some(&reply),
                format!("a fresh Idempotency-Key {key} was answered 200 (replay of an existing order)"),
            );
        }
        let order = match parse_order(&reply.body) {
            Ok(o) => o,
            Err(e) => {
                self.finding(Kind::Content, EP_CHECKOUT, Some(&reply), format!("malformed order: {e}"));
                self.acct.orders.pending.insert(key.to_string());
                self.acct.cart.uncertain = true;
                return;
            }
        };
        for p in check_new_order(&order, basis, key) {
            self.finding(Kind::Content, EP_CHECKOUT, Some(&reply), p);
        }
        self.ack_order(&order, key, "response", attempts);
        // The order took the cart: it must be empty now.
        self.acct.cart.clear();
        if let Some((c, r)) = self.read_cart().await {
            if !c.lines.is_empty() {
                if ambiguous_before {
                    // The attempt that placed the order may have died before emptying the cart.
                    self.ambiguous("checkout-cart");
                } else {
                    let detail = format!(
                        "cart not emptied after order {} was acknowledged: {}",
                        order.id,
                        crate::model::diff_quantities(&Default::default(), &c.quantities())
                            .unwrap_or_default()
                    );
                    self.finding(Kind::Content, EP_CART, Some(&r), detail);
                }
                self.acct.cart.adopt(&c);
            }
        }
        if ambiguous_before {
            // A retried checkout must not have made a second order: look.
            self.view_orders().await;
        }
    }

    /// Read the whole order history, page by page (newest first), and check it against what
    /// was acknowledged. An order placed between two pages shifts the later ones by one: an id
    /// seen on an earlier page is not counted again (a duplicate within a page still is).
    async fn list_orders(&mut self) -> Option<ListCheck> {
        let mut list: Vec<OrderView> = Vec::new();
        let mut earlier_pages = BTreeSet::new();
        let mut complete = false;
        let mut last = None;
        for page in 1..=MAX_ORDER_PAGES {
            let path = if page == 1 { "/api/orders".to_string() } else { format!("/api/orders?page={page}") };
            let r = self.call_retry(Req::get(EP_ORDERS, path), &[]).await;
            if !r.success() {
                return None;
            }
            let (items, total) = match parse_order_page(&r.body) {
                Ok(p) => p,
                Err(e) => {
                    self.finding(Kind::Content, EP_ORDERS, Some(&r), format!("malformed order list: {e}"));
                    return None;
                }
            };
            let full = items.len() >= ORDER_LIST_LIMIT;
            let ids: Vec<i64> = items.iter().map(|o| o.id).collect();
            list.extend(items.into_iter().filter(|o| !earlier_pages.contains(&o.id)));
            earlier_pages.extend(ids);
            last = Some(r);
            if !full || total.is_some_and(|t| list.len() as i64 >= t) {
                complete = true;
                break;
            }
        }
        let r = last?;
        let mut check = self.acct.orders.check_list(&list, complete);
        // Attach the reply to the problems through a closure-free path: report here.
        for (kind, detail) in std::mem::take(&mut check.problems) {
            self.finding(kind, EP_ORDERS, Some(&r), detail);
        }
        Some(check)
    }

    fn apply_list_check(&mut self, check: ListCheck) {
        for (key, order) in check.resolved {
            self.acct.orders.pending.remove(&key);
            self.ambiguous("checkout");
            self.ack_order(&order, &key, "order-list", 0);
        }
        for (id, cancelled) in check.cancel_resolved {
            if let Some(k) = self.acct.orders.known.get_mut(&id) {
                k.status = if cancelled { KnownStatus::Cancelled } else { KnownStatus::Open };
            }
        }
    }

    async fn view_orders(&mut self) {
        let Some(check) = self.list_orders().await else { return };
        self.apply_list_check(check);
        let ids: Vec<i64> = self.acct.orders.known.keys().copied().collect();
        let Some(&id) = ids.choose(&mut self.rng) else { return };
        let r = self.call_retry(Req::get(EP_ORDER, format!("/api/orders/{id}")), &[]).await;
        if r.is(404) {
            self.finding(Kind::LostOrder, EP_ORDER, Some(&r), format!("acknowledged order {id} answers 404"));
            return;
        }
        if !r.success() {
            return;
        }
        let Some(known) = self.acct.orders.known.get(&id).cloned() else { return };
        match parse_order(&r.body) {
            Ok(o) => {
                let mut problems = Vec::new();
                if o.id != id {
                    problems.push(format!("asked for order {id}, got {}", o.id));
                }
                if o.items != known.order.items || o.total_cents != known.order.total_cents {
                    problems.push(format!("order {id} differs from what was acknowledged"));
                }
                match (known.status, o.status.as_str()) {
                    (KnownStatus::Open, "cancelled") => {
                        problems.push(format!("order {id} cancelled by nobody"))
                    }
                    (KnownStatus::Cancelled, s) if s != "cancelled" => {
                        problems.push(format!("order {id} was cancelled but shows `{s}`"))
                    }
                    _ => {}
                }
                for p in problems {
                    self.finding(Kind::Content, EP_ORDER, Some(&r), p);
                }
            }
            Err(e) => self.finding(Kind::Content, EP_ORDER, Some(&r), format!("malformed order: {e}")),
        }
    }

    async fn cancel_order(&mut self) {
        let open = self.acct.orders.open_orders();
        let Some(&id) = open.choose(&mut self.rng) else { return };
        let mut ambiguous_before = false;
        for attempt in 1..=self.sh.profile.retry_attempts.max(1) {
            let expected: &[u16] = &[409];
            let r = self
                .call(Req::post(EP_CANCEL, format!("/api/orders/{id}/cancel"), json!({})), expected)
                .await;
            if r.success() {
                if ambiguous_before {
                    self.ambiguous("cancel");
                }
                match parse_order(&r.body) {
                    Ok(o) if o.status == "cancelled" => {}
                    Ok(o) => {
                        let detail = format!("cancel of order {id} answered 200 with status `{}`", o.status);
                        self.finding(Kind::Content, EP_CANCEL, Some(&r), detail);
                    }
                    Err(e) => {
                        self.finding(Kind::Content, EP_CANCEL, Some(&r), format!("malformed order: {e}"))
                    }
                }
                self.cancelled(id, true);
                self.bump("cancels");
                return;
            }
            if r.is(409) {
                // Not placed (any more): find out why.
                let g = self.call_retry(Req::get(EP_ORDER, format!("/api/orders/{id}")), &[]).await;
                let status = g.body.get("status").and_then(Value::as_str).unwrap_or("").to_string();
                if status == "cancelled" {
                    if ambiguous_before {
                        // The earlier attempt went through.
                        self.ambiguous("cancel");
                        self.cancelled(id, true);
                        self.bump("cancels");
                    } else {
                        let detail = format!("order {id} was already cancelled, but not by this shopper");
                        self.finding(Kind::Content, EP_CANCEL, Some(&r), detail);
                        if let Some(k) = self.acct.orders.known.get_mut(&id) {
                            k.status = KnownStatus::Cancelled;
                        }
                    }
                } else if g.success() {
                    // Confirmed or shipped by an admin: legitimately not cancellable.
                    self.bump("cancels_refused");
                }
                return;
            }
            if r.is(404) {
                self.finding(
                    Kind::LostOrder,
                    EP_CANCEL,
                    Some(&r),
                    format!("acknowledged order {id} answers 404"),
                );
                return;
            }
            if r.retryable() {
                ambiguous_before |= r.ambiguous();
                tokio::time::sleep(Duration::from_millis(backoff_ms(attempt, r.retry_after))).await;
                continue;
            }
            return;
        }
        if ambiguous_before {
            self.cancelled(id, false);
            self.unresolved("cancel");
        }
    }

    fn cancelled(&mut self, id: i64, acknowledged: bool) {
        if let Some(k) = self.acct.orders.known.get_mut(&id) {
            k.status = if acknowledged { KnownStatus::Cancelled } else { KnownStatus::CancelUnknown };
        }
        let ack = Ack::Cancel {
            email: self.acct.email.clone(),
            shopper: self.acct.n,
            order_id: id,
            acknowledged,
            t_s: self.t_now(),
        };
        lock(&self.sh.acks).write(&ack);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn reply(status: Option<u16>, transport: Option<Transport>) -> Reply {
        Reply {
            status,
            body: Value::Null,
            body_error: None,
            served_by: None,
            request_id: None,
            transport,
            retry_after: None,
            latency: Duration::ZERO,
            finished: Instant::now(),
        }
    }

    #[test]
    fn classification() {
        assert_eq!(classify(&reply(Some(200), None), &[]), None);
        assert_eq!(classify(&reply(Some(201), None), &[]), None);
        assert_eq!(classify(&reply(Some(422), None), &[422]), Some(ErrorClass::Expected4xx));
        assert_eq!(classify(&reply(Some(422), None), &[409]), Some(ErrorClass::Unexpected4xx));
        assert_eq!(classify(&reply(Some(401), None), &[]), Some(ErrorClass::Unexpected4xx));
        assert_eq!(classify(&reply(Some(503), None), &[503]), Some(ErrorClass::Server5xx));
        assert_eq!(classify(&reply(None, Some(Transport::Timeout)), &[]), Some(ErrorClass::Timeout));
        assert_eq!(
            classify(&reply(None, Some(Transport::Network("refused".into()))), &[]),
            Some(ErrorClass::Network)
        );
    }

    #[test]
    fn login_only_endpoints() {
        assert!(requires_login(EP_ME));
        assert!(requires_login(EP_ORDERS));
        assert!(requires_login(EP_CANCEL));
        assert!(requires_login(EP_CHECKOUT));
        assert!(!requires_login(EP_CART), "the cart works anonymously");
        assert!(!requires_login(EP_LOGIN));
    }

    #[test]
    fn query_encoding() {
        assert_eq!(enc("Home & Kitchen"), "Home%20%26%20Kitchen");
        assert_eq!(enc("a-b_c.d~"), "a-b_c.d~");
        assert_eq!(enc("é"), "%C3%A9");
    }
}
