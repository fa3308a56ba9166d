//! `distshop-sim check`: the invariants, read straight from the database after a run.
//!
//! Loading ([`load`]) is separate from judging ([`evaluate`]), which is a pure function over
//! plain data and unit-tested with deliberately broken states below.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::Context;
use mysql_async::prelude::Queryable;
use serde::Serialize;
use serde_json::Value;

use crate::{
    findings::Kind,
    model::OrderLine,
    snapshot::{connect, redact, SnapshotSource, StockSnapshot},
    state::Ack,
};

#[derive(Debug, Clone, PartialEq)]
pub struct DbOrder {
    pub id: i64,
    pub user_id: i64,
    pub key: String,
    pub status: String,
    pub total_cents: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DbItem {
    pub order_id: i64,
    pub line: OrderLine,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DbProduct {
    pub id: i64,
    pub sku: String,
    pub stock: i64,
}

/// What the checker reads from the database.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DbState {
    pub users: BTreeMap<i64, String>,
    pub orders: Vec<DbOrder>,
    pub items: Vec<DbItem>,
    pub products: Vec<DbProduct>,
}

pub async fn load(url: &str) -> anyhow::Result<DbState> {
    let mut conn = connect(url).await?;
    let users: Vec<(i64, String)> =
        conn.query("SELECT id, email FROM users").await.context("reading users")?;
    let orders: Vec<(i64, i64, String, String, i64, i64, i64)> = conn
        .query("SELECT id, user_id, idempotency_key, status, total_cents, created_at, updated_at FROM orders ORDER BY id")
        .await
        .context("reading orders")?;
    let items: Vec<(i64, i64, String, String, i64, i64, i64)> = conn
        .query(
            "SELECT order_id, product_id, sku, name, quantity, unit_price_cents, line_total_cents
             FROM order_items ORDER BY id",
        )
        .await
        .context("reading order items")?;
    let products: Vec<(i64, String, i64)> =
        conn.query("SELECT id, sku, stock FROM products ORDER BY id").await.context("reading products")?;
    let _ = conn.disconnect().await;
    Ok(DbState {
        users: users.into_iter().collect(),
        orders: orders
            .into_iter()
            .map(|(id, user_id, key, status, total_cents, created_at, updated_at)| DbOrder {
                id,
                user_id,
                key,
                status,
                total_cents,
                created_at,
                updated_at,
            })
            .collect(),
        items: items
            .into_iter()
            .map(|(order_id, product_id, sku, name, quantity, unit_price_cents, line_total_cents)| DbItem {
                order_id,
                line: OrderLine { product_id, sku, name, quantity, unit_price_cents, line_total_cents },
            })
            .collect(),
        products: products.into_iter().map(|(id, sku, stock)| DbProduct { id, sku, stock }).collect(),
    })
}

/// One invariant and what was found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Invariant {
    pub name: &'static str,
    /// What was looked at, e.g. "312 acknowledged orders".
    pub scope: String,
    pub violations: Vec<String>,
}

impl Invariant {
    fn new(name: &'static str) -> Self {
        Invariant { name, scope: String::new(), violations: Vec::new() }
    }

    pub fn ok(&self) -> bool {
        self.violations.is_empty()
    }
}

pub const INV_ACKED: &str = "acknowledged orders exist exactly once, with their lines and total";
pub const INV_KEYS: &str = "no (user, idempotency key) maps to two orders";
pub const INV_ORDERS: &str = "every order has lines that add up to its total";
pub const INV_CANCELS: &str = "acknowledged cancels stuck, and only the simulator's cancels happened";
pub const INV_STOCK_NONNEG: &str = "stock is never below zero";
pub const INV_CONSERVATION: &str = "stock is conserved (initial = current + ordered)";
pub const INV_SUMMARY: &str = "the simulator saw no lost session, cart/order violation or lost order";
pub const INV_NODES: &str = "all database nodes hold the same orders and stock";

fn lines_key(lines: &[OrderLine]) -> Vec<(i64, i64, i64, i64)> {
    let mut v: Vec<_> =
        lines.iter().map(|l| (l.product_id, l.quantity, l.unit_price_cents, l.line_total_cents)).collect();
    v.sort_unstable();
    v
}

/// The database state, indexed the ways the invariants look it up.
struct DbIndex<'a> {
    db: &'a DbState,
    orders_by_id: BTreeMap<i64, &'a DbOrder>,
    items_by_order: BTreeMap<i64, Vec<OrderLine>>,
    /// Order ids by (user, idempotency key), the key lower-cased: MySQL compares keys
    /// case-insensitively (utf8mb4_unicode_ci), so they are grouped that way.
    by_key: BTreeMap<(i64, String), Vec<i64>>,
}

impl<'a> DbIndex<'a> {
    fn new(db: &'a DbState) -> Self {
        let mut items_by_order: BTreeMap<i64, Vec<OrderLine>> = BTreeMap::new();
        for it in &db.items {
            items_by_order.entry(it.order_id).or_default().push(it.line.clone());
        }
        let orders_by_id = db.orders.iter().map(|o| (o.id, o)).collect();
        let mut by_key: BTreeMap<(i64, String), Vec<i64>> = BTreeMap::new();
        for o in &db.orders {
            by_key.entry((o.user_id, o.key.to_ascii_lowercase())).or_default().push(o.id);
        }
        DbIndex { db, orders_by_id, items_by_order, by_key }
    }

    /// An order's lines (none when it has no lines or does not exist).
    fn lines(&self, order_id: i64) -> &[OrderLine] {
        self.items_by_order.get(&order_id).map(Vec::as_slice).unwrap_or(&[])
    }

    fn email(&self, user_id: i64) -> &str {
        self.db.users.get(&user_id).map(String::as_str).unwrap_or("?")
    }
}

/// What the simulator's acknowledged-orders log says, by order id.
#[derive(Debug, Default)]
struct AckIndex<'a> {
    /// Acknowledged orders (an order logged twice: the later line).
    orders: BTreeMap<i64, &'a Ack>,
    /// Orders a cancel was sent for, and whether any of those cancels was acknowledged.
    cancels: BTreeMap<i64, bool>,
}

impl<'a> AckIndex<'a> {
    fn new(acks: &'a [Ack]) -> Self {
        let mut ix = AckIndex::default();
        for a in acks {
            match a {
                Ack::Order { order_id, .. } => {
                    ix.orders.insert(*order_id, a);
                }
                Ack::Cancel { order_id, acknowledged, .. } => {
                    let e = ix.cancels.entry(*order_id).or_insert(false);
                    *e |= *acknowledged;
                }
            }
        }
        ix
    }
}

/// Judge the database state against what the simulator saw: one [`Invariant`] per check, always
/// in this order (the order of `check`'s output and of `check.json`).
pub fn evaluate(
    db: &DbState,
    acks: &[Ack],
    snapshot: Option<&StockSnapshot>,
    summary: Option<&Value>,
) -> Vec<Invariant> {
    let ix = DbIndex::new(db);
    let acked = AckIndex::new(acks);
    vec![
        acknowledged_orders(&ix, &acked),
        idempotency_keys(&ix),
        orders_are_whole(&ix),
        cancels(&ix, &acked),
        stock_never_negative(db),
        stock_conserved(&ix, snapshot),
        simulator_findings(summary),
    ]
}

/// 1. Every acknowledged order is in the database once, for its shopper, with its key, lines
///    and total.
fn acknowledged_orders(ix: &DbIndex, acked: &AckIndex) -> Invariant {
    let mut inv = Invariant::new(INV_ACKED);
    inv.scope = format!("{} acknowledged orders", acked.orders.len());
    for a in acked.orders.values() {
        acknowledged_order(ix, a, &mut inv.violations);
    }
    inv
}

/// One acknowledged order against the database; what differs goes to `violations`.
fn acknowledged_order(ix: &DbIndex, ack: &Ack, violations: &mut Vec<String>) {
    let Ack::Order { email, shopper, order_id, idempotency_key, lines, total_cents, .. } = ack else {
        return;
    };
    let who = format!("order {order_id} (key {idempotency_key}, shopper #{shopper} {email})");
    let Some(o) = ix.orders_by_id.get(order_id) else {
        violations.push(format!("{who} was acknowledged but is not in the database"));
        return;
    };
    let owner = ix.email(o.user_id);
    if !owner.eq_ignore_ascii_case(email) {
        violations.push(format!("{who} belongs to user {} ({owner})", o.user_id));
    }
    if !o.key.eq_ignore_ascii_case(idempotency_key) {
        violations.push(format!("{who} has key {} in the database", o.key));
    }
    let same_key =
        ix.by_key.get(&(o.user_id, idempotency_key.to_ascii_lowercase())).map(Vec::len).unwrap_or(0);
    if same_key != 1 {
        violations.push(format!("{who}: {same_key} orders carry its key"));
    }
    let db_lines = ix.lines(*order_id);
    if lines_key(db_lines) != lines_key(lines) {
        violations.push(format!(
            "{who}: lines differ — acknowledged {:?}, database {:?} (product, qty, unit, line total)",
            lines_key(lines),
            lines_key(db_lines)
        ));
    }
    if o.total_cents != *total_cents {
        violations
            .push(format!("{who}: total {} in the database, {total_cents} acknowledged", o.total_cents));
    }
}

/// 2. No (user, idempotency key) maps to two orders.
fn idempotency_keys(ix: &DbIndex) -> Invariant {
    let mut inv = Invariant::new(INV_KEYS);
    inv.scope = format!("{} orders", ix.db.orders.len());
    for ((user, key), ids) in &ix.by_key {
        if ids.len() > 1 {
            let email = ix.email(*user);
            inv.violations
                .push(format!("user {user} ({email}) has {} orders for key {key}: {ids:?}", ids.len()));
        }
    }
    inv
}

/// 3. Every order has lines, each line is quantity × unit price, and they add up to the order's
///    total; no line points at a missing order.
fn orders_are_whole(ix: &DbIndex) -> Invariant {
    let db = ix.db;
    let mut inv = Invariant::new(INV_ORDERS);
    inv.scope = format!("{} orders, {} lines", db.orders.len(), db.items.len());
    for o in &db.orders {
        let lines = ix.lines(o.id);
        if lines.is_empty() {
            inv.violations.push(format!("order {} (user {}) has no lines", o.id, o.user_id));
            continue;
        }
        for l in lines {
            if l.quantity < 1 || l.line_total_cents != l.quantity * l.unit_price_cents {
                inv.violations.push(format!(
                    "order {} product {}: quantity {} × {} ≠ line total {}",
                    o.id, l.product_id, l.quantity, l.unit_price_cents, l.line_total_cents
                ));
            }
        }
        let sum: i64 = lines.iter().map(|l| l.line_total_cents).sum();
        if sum != o.total_cents {
            inv.violations.push(format!("order {}: total {} ≠ sum of lines {sum}", o.id, o.total_cents));
        }
    }
    let orphans: BTreeSet<i64> =
        db.items.iter().map(|i| i.order_id).filter(|id| !ix.orders_by_id.contains_key(id)).collect();
    for id in orphans {
        inv.violations.push(format!("order lines point at order {id}, which does not exist"));
    }
    inv
}

/// 4. An acknowledged cancel left its order cancelled, and no acknowledged order was cancelled
///    by anyone but the simulator.
fn cancels(ix: &DbIndex, acked: &AckIndex) -> Invariant {
    let mut inv = Invariant::new(INV_CANCELS);
    inv.scope = format!("{} cancels sent", acked.cancels.len());
    for (id, acknowledged) in &acked.cancels {
        if let Some(o) = ix.orders_by_id.get(id) {
            if *acknowledged && o.status != "cancelled" {
                inv.violations
                    .push(format!("order {id}: the cancel was acknowledged but its status is {}", o.status));
            }
        }
    }
    for id in acked.orders.keys() {
        if let Some(o) = ix.orders_by_id.get(id) {
            if o.status == "cancelled" && !acked.cancels.contains_key(id) {
                inv.violations.push(format!("order {id} is cancelled, but the simulator never cancelled it"));
            }
        }
    }
    inv
}

/// 5. No product's stock is below zero.
fn stock_never_negative(db: &DbState) -> Invariant {
    let mut inv = Invariant::new(INV_STOCK_NONNEG);
    inv.scope = format!("{} products", db.products.len());
    for p in db.products.iter().filter(|p| p.stock < 0) {
        inv.violations.push(format!("product {} ({}) has stock {}", p.id, p.sku, p.stock));
    }
    inv
}

/// 6. Stock is conserved against the snapshot taken before the run (none: a violation, since
///    nothing can be checked).
fn stock_conserved(ix: &DbIndex, snapshot: Option<&StockSnapshot>) -> Invariant {
    let mut inv = Invariant::new(INV_CONSERVATION);
    match snapshot {
        None => inv.violations.push("no stock snapshot: cannot check conservation".into()),
        Some(s) => conservation(ix, s, &mut inv),
    }
    inv
}

/// 7. The run's `summary.json` counts no violation of any kind (missing: the run did not
///    finish); its first 20 findings are listed under the violation.
fn simulator_findings(summary: Option<&Value>) -> Invariant {
    let mut inv = Invariant::new(INV_SUMMARY);
    let Some(s) = summary else {
        inv.violations.push("summary.json missing or unreadable: the run did not finish".into());
        return inv;
    };
    inv.scope = "summary.json".into();
    for k in Kind::ALL {
        match s.pointer(&format!("/violations/{}", k.name())).and_then(Value::as_u64) {
            Some(0) => {}
            Some(n) => inv.violations.push(format!("the simulator counted {n} {} violations", k.name())),
            None => inv.violations.push(format!("summary.json has no count of {} violations", k.name())),
        }
    }
    if let Some(details) = s.get("findings").and_then(Value::as_array) {
        for d in details.iter().take(20) {
            inv.violations.push(format!(
                "  {} shopper #{} {}: {}",
                d.get("kind").and_then(Value::as_str).unwrap_or("?"),
                d.get("shopper").and_then(Value::as_u64).unwrap_or(0),
                d.get("email").and_then(Value::as_str).unwrap_or("?"),
                d.get("detail").and_then(Value::as_str).unwrap_or("?"),
            ));
        }
    }
    inv
}

/// Units per product that the database's orders account for.
#[derive(Debug, Default, PartialEq)]
struct OrderedUnits {
    /// In orders that are not cancelled (what a database snapshot's `reserved` counts).
    reserved: BTreeMap<i64, i64>,
    /// In orders placed since the snapshot and not cancelled (for API snapshots).
    ordered_since: BTreeMap<i64, i64>,
    /// In orders placed before the snapshot and cancelled after it: back in stock since.
    returned_since: BTreeMap<i64, i64>,
}

impl OrderedUnits {
    fn tally(ix: &DbIndex, t0: i64) -> Self {
        let mut u = OrderedUnits::default();
        for o in &ix.db.orders {
            for l in ix.lines(o.id) {
                if o.status != "cancelled" {
                    *u.reserved.entry(l.product_id).or_default() += l.quantity;
                    if o.created_at >= t0 {
                        *u.ordered_since.entry(l.product_id).or_default() += l.quantity;
                    }
                } else if o.created_at < t0 && o.updated_at >= t0 {
                    *u.returned_since.entry(l.product_id).or_default() += l.quantity;
                }
            }
        }
        u
    }
}

fn conservation(ix: &DbIndex, s: &StockSnapshot, inv: &mut Invariant) {
    let before = s.by_id();
    let units = OrderedUnits::tally(ix, s.taken_at_unix_ms as i64);
    inv.scope = format!(
        "{} products against a {} snapshot",
        before.len(),
        match s.source {
            SnapshotSource::Api => "shop API",
            SnapshotSource::Database => "database",
        }
    );
    let now: BTreeMap<i64, &DbProduct> = ix.db.products.iter().map(|p| (p.id, p)).collect();
    for (id, b) in &before {
        let Some(p) = now.get(id) else {
            inv.violations.push(format!("product {id} ({}) was in the snapshot but is gone", b.sku));
            continue;
        };
        match (s.source, b.reserved) {
            (SnapshotSource::Database, Some(r0)) => {
                let r = units.reserved.get(id).copied().unwrap_or(0);
                if b.stock + r0 != p.stock + r {
                    inv.violations.push(format!(
                        "product {id} ({}): stock {} + reserved {r0} before, stock {} + reserved {r} now — {} unit(s) {}",
                        p.sku,
                        b.stock,
                        p.stock,
                        (b.stock + r0 - p.stock - r).abs(),
                        if b.stock + r0 > p.stock + r { "vanished" } else { "appeared" }
                    ));
                }
            }
            _ => {
                let ordered = units.ordered_since.get(id).copied().unwrap_or(0);
                let returned = units.returned_since.get(id).copied().unwrap_or(0);
                if b.stock != p.stock + ordered - returned {
                    inv.violations.push(format!(
                        "product {id} ({}): initial stock {} ≠ current {} + ordered since {ordered} − returned by older cancels {returned}",
                        p.sku, b.stock, p.stock
                    ));
                }
            }
        }
    }
}

/// A fingerprint of one node's data: counts and order-independent checksums.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fingerprint {
    pub orders: u64,
    pub orders_sum: u64,
    pub items: u64,
    pub items_sum: u64,
    pub products: u64,
    pub stock_sum: u64,
}

pub async fn fingerprint(url: &str) -> anyhow::Result<Fingerprint> {
    let mut conn = connect(url).await?;
    let q = |sql: &'static str| sql;
    let o: Option<(u64, u64)> = conn
        .query_first(q("SELECT COUNT(*), CAST(COALESCE(SUM(CRC32(CONCAT_WS('|', id, user_id, idempotency_key, status, total_cents, currency, created_at, updated_at))), 0) AS UNSIGNED) FROM orders"))
        .await?;
    let i: Option<(u64, u64)> = conn
        .query_first(q("SELECT COUNT(*), CAST(COALESCE(SUM(CRC32(CONCAT_WS('|', id, order_id, product_id, sku, quantity, unit_price_cents, line_total_cents))), 0) AS UNSIGNED) FROM order_items"))
        .await?;
    let p: Option<(u64, u64)> = conn
        .query_first(q("SELECT COUNT(*), CAST(COALESCE(SUM(CRC32(CONCAT_WS('|', id, sku, stock, price_cents))), 0) AS UNSIGNED) FROM products"))
        .await?;
    let _ = conn.disconnect().await;
    let (o, i, p) = (o.unwrap_or_default(), i.unwrap_or_default(), p.unwrap_or_default());
    Ok(Fingerprint {
        orders: o.0,
        orders_sum: o.1,
        items: i.0,
        items_sum: i.1,
        products: p.0,
        stock_sum: p.1,
    })
}

/// Compare the nodes; a replicating cluster may lag a moment, so retry a few times.
pub async fn compare_nodes(urls: &[String]) -> Invariant {
    let mut inv = Invariant::new(INV_NODES);
    inv.scope = format!("{} nodes", urls.len());
    for attempt in 1..=10 {
        let mut prints = Vec::new();
        let mut errors = Vec::new();
        for u in urls {
            match fingerprint(u).await {
                Ok(f) => prints.push((redact(u), f)),
                Err(e) => errors.push(format!("{}: {e:#}", redact(u))),
            }
        }
        let agree = errors.is_empty() && prints.windows(2).all(|w| w[0].1 == w[1].1);
        if agree || attempt == 10 {
            inv.violations = errors;
            if !agree {
                for (u, f) in &prints {
                    inv.violations.push(format!(
                        "{u}: {} orders (checksum {}), {} lines (checksum {}), {} products (checksum {})",
                        f.orders, f.orders_sum, f.items, f.items_sum, f.products, f.stock_sum
                    ));
                }
            }
            return inv;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    inv
}

pub fn read_acks(path: &Path) -> anyhow::Result<Vec<Ack>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| serde_json::from_str(l).with_context(|| format!("{} line {}", path.display(), i + 1)))
        .collect()
}

/// Which snapshot to use: the given file, else the run's database snapshot, else its API one.
pub fn snapshot_path(report: &Path, given: Option<&Path>) -> Option<PathBuf> {
    if let Some(g) = given {
        return Some(g.to_path_buf());
    }
    ["db-snapshot.json", "initial-stock.json"].iter().map(|f| report.join(f)).find(|p| p.exists())
}

/// Run the whole check and print it; returns whether every invariant held.
pub async fn run(args: &crate::config::CheckArgs) -> anyhow::Result<bool> {
    crate::config::check_database_url(&args.database_url, args.allow_remote).map_err(anyhow::Error::msg)?;
    for u in &args.compare_urls {
        crate::config::check_database_url(u, args.allow_remote).map_err(anyhow::Error::msg)?;
    }
    let acks = read_acks(&args.report.join("acknowledged.jsonl"))?;
    let snapshot = match snapshot_path(&args.report, args.initial_stock.as_deref()) {
        Some(p) => Some((StockSnapshot::read(&p)?, p)),
        None => None,
    };
    let summary: Option<Value> = std::fs::read_to_string(args.report.join("summary.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    let db = load(&args.database_url).await?;
    let mut results = evaluate(&db, &acks, snapshot.as_ref().map(|(s, _)| s), summary.as_ref());
    if !args.compare_urls.is_empty() {
        let mut urls = vec![args.database_url.clone()];
        urls.extend(args.compare_urls.iter().cloned());
        results.push(compare_nodes(&urls).await);
    }
    println!("distshop-sim check: {} against {}", args.report.display(), redact(&args.database_url));
    if let Some((s, p)) = &snapshot {
        println!("  stock snapshot: {} ({:?}, {} products)", p.display(), s.source, s.products.len());
    }
    let mut all_ok = true;
    for inv in &results {
        let mark = if inv.ok() { "ok  " } else { "FAIL" };
        println!("  {mark} {} [{}]", inv.name, inv.scope);
        for v in inv.violations.iter().take(50) {
            println!("         - {v}");
        }
        if inv.violations.len() > 50 {
            println!("         … and {} more", inv.violations.len() - 50);
        }
        all_ok &= inv.ok();
    }
    let failed = results.iter().filter(|i| !i.ok()).count();
    println!(
        "check: {} invariants, {} held, {} violated — {}",
        results.len(),
        results.len() - failed,
        failed,
        if all_ok { "PASS" } else { "FAIL" }
    );
    let report =
        serde_json::json!({"pass": all_ok, "invariants": results, "database": redact(&args.database_url)});
    if let Ok(text) = serde_json::to_string_pretty(&report) {
        let _ = std::fs::write(args.report.join("check.json"), text);
    }
    Ok(all_ok)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use serde_json::json;

    use super::*;
    use crate::snapshot::ProductStock;

    fn line(pid: i64, qty: i64, price: i64) -> OrderLine {
        OrderLine {
            product_id: pid,
            sku: format!("S{pid}"),
            name: "n".into(),
            quantity: qty,
            unit_price_cents: price,
            line_total_cents: qty * price,
        }
    }

    /// Product 1 started with stock 10 and product 2 with 5; order 100 (user 7, key k1) took
    /// 2 × product 1 at t=2000; order 101 (key k2) took 1 × product 2 and was cancelled.
    fn world() -> (DbState, Vec<Ack>, StockSnapshot, Value) {
        let db = DbState {
            users: BTreeMap::from([(7, "a@sim.test".to_string())]),
            orders: vec![
                DbOrder {
                    id: 100,
                    user_id: 7,
                    key: "k1".into(),
                    status: "placed".into(),
                    total_cents: 200,
                    created_at: 2000,
                    updated_at: 2000,
                },
                DbOrder {
                    id: 101,
                    user_id: 7,
                    key: "k2".into(),
                    status: "cancelled".into(),
                    total_cents: 50,
                    created_at: 2100,
                    updated_at: 2200,
                },
            ],
            items: vec![
                DbItem { order_id: 100, line: line(1, 2, 100) },
                DbItem { order_id: 101, line: line(2, 1, 50) },
            ],
            products: vec![
                DbProduct { id: 1, sku: "S1".into(), stock: 8 },
                DbProduct { id: 2, sku: "S2".into(), stock: 5 },
            ],
        };
        let acks = vec![
            Ack::Order {
                email: "a@sim.test".into(),
                shopper: 1,
                order_id: 100,
                idempotency_key: "k1".into(),
                lines: vec![line(1, 2, 100)],
                total_cents: 200,
                status: "placed".into(),
                resolved_by: "response".into(),
                attempts: 1,
                t_s: 1.0,
            },
            Ack::Order {
                email: "a@sim.test".into(),
                shopper: 1,
                order_id: 101,
                idempotency_key: "k2".into(),
                lines: vec![line(2, 1, 50)],
                total_cents: 50,
                status: "placed".into(),
                resolved_by: "response".into(),
                attempts: 1,
                t_s: 1.1,
            },
            Ack::Cancel {
                email: "a@sim.test".into(),
                shopper: 1,
                order_id: 101,
                acknowledged: true,
                t_s: 1.2,
            },
        ];
        let snap = StockSnapshot {
            source: SnapshotSource::Database,
            taken_at_unix_ms: 1000,
            taken_until_unix_ms: 1001,
            origin: "t".into(),
            products: vec![
                ProductStock { id: 1, sku: "S1".into(), stock: 10, reserved: Some(0) },
                ProductStock { id: 2, sku: "S2".into(), stock: 5, reserved: Some(0) },
            ],
        };
        let summary =
            json!({"violations": {"content": 0, "lost-session": 0, "lost-order": 0, "duplicate-order": 0}});
        (db, acks, snap, summary)
    }

    fn failed(results: &[Invariant]) -> Vec<&'static str> {
        results.iter().filter(|i| !i.ok()).map(|i| i.name).collect()
    }

    #[test]
    fn a_sound_state_passes_with_both_snapshot_kinds() {
        let (db, acks, snap, summary) = world();
        let r = evaluate(&db, &acks, Some(&snap), Some(&summary));
        assert!(failed(&r).is_empty(), "{r:#?}");
        let mut api = snap.clone();
        api.source = SnapshotSource::Api;
        for p in &mut api.products {
            p.reserved = None;
        }
        let r = evaluate(&db, &acks, Some(&api), Some(&summary));
        assert!(failed(&r).is_empty(), "{r:#?}");
    }

    #[test]
    fn a_changed_stock_breaks_conservation_and_names_the_product() {
        let (mut db, acks, snap, summary) = world();
        db.products[0].stock = 9;
        let r = evaluate(&db, &acks, Some(&snap), Some(&summary));
        assert_eq!(failed(&r), vec![INV_CONSERVATION]);
        let inv = r.iter().find(|i| i.name == INV_CONSERVATION).unwrap();
        assert!(inv.violations[0].contains("product 1 (S1)"), "{inv:?}");
        assert!(inv.violations[0].contains("appeared"), "{inv:?}");
    }

    #[test]
    fn negative_stock_is_caught() {
        let (mut db, acks, _, summary) = world();
        db.products[1].stock = -1;
        let r = evaluate(&db, &acks, None, Some(&summary));
        assert!(failed(&r).contains(&INV_STOCK_NONNEG));
    }

    #[test]
    fn a_second_order_for_a_key_in_another_case_is_a_duplicate() {
        let (mut db, acks, snap, summary) = world();
        db.orders.push(DbOrder {
            id: 102,
            user_id: 7,
            key: "K1".into(),
            status: "placed".into(),
            total_cents: 100,
            created_at: 2300,
            updated_at: 2300,
        });
        db.items.push(DbItem { order_id: 102, line: line(1, 1, 100) });
        db.products[0].stock = 7;
        let r = evaluate(&db, &acks, Some(&snap), Some(&summary));
        let f = failed(&r);
        assert!(f.contains(&INV_KEYS), "{f:?}");
        assert!(f.contains(&INV_ACKED), "the acknowledged order's key now has 2 orders: {f:?}");
        let keys = r.iter().find(|i| i.name == INV_KEYS).unwrap();
        assert!(keys.violations[0].contains("a@sim.test"), "{keys:?}");
    }

    #[test]
    fn lost_and_altered_acknowledged_orders_are_caught() {
        let (mut db, acks, _, summary) = world();
        db.items[0].line = line(1, 3, 100); // order 100 now says 3 units
        let r = evaluate(&db, &acks, None, Some(&summary));
        let inv = r.iter().find(|i| i.name == INV_ACKED).unwrap();
        assert!(
            inv.violations.iter().any(|v| v.contains("order 100") && v.contains("lines differ")),
            "{inv:?}"
        );
        let whole = r.iter().find(|i| i.name == INV_ORDERS).unwrap();
        assert!(!whole.ok(), "the total no longer matches the lines");

        let (mut db, acks, _, summary) = world();
        db.orders.retain(|o| o.id != 100);
        db.items.retain(|i| i.order_id != 100);
        let r = evaluate(&db, &acks, None, Some(&summary));
        let inv = r.iter().find(|i| i.name == INV_ACKED).unwrap();
        assert!(inv.violations[0].contains("not in the database"), "{inv:?}");
        assert!(inv.violations[0].contains("shopper #1"), "{inv:?}");
    }

    #[test]
    fn cancels_must_stick_and_nobody_else_cancels() {
        let (mut db, acks, _, summary) = world();
        db.orders[1].status = "placed".into();
        let r = evaluate(&db, &acks, None, Some(&summary));
        assert!(failed(&r).contains(&INV_CANCELS));
        let (mut db, acks, _, summary) = world();
        db.orders[0].status = "cancelled".into();
        let r = evaluate(&db, &acks, None, Some(&summary));
        assert!(failed(&r).contains(&INV_CANCELS));
    }

    #[test]
    fn the_simulators_own_counts_must_be_zero() {
        let (db, acks, snap, _) = world();
        let s = json!({"violations": {"content": 0, "lost-session": 2, "lost-order": 0, "duplicate-order": 0},
                       "findings": [{"kind": "lost-session", "shopper": 4, "email": "x@y", "detail": "401"}]});
        let r = evaluate(&db, &acks, Some(&snap), Some(&s));
        assert_eq!(failed(&r), vec![INV_SUMMARY]);
        let r = evaluate(&db, &acks, Some(&snap), None);
        assert_eq!(failed(&r), vec![INV_SUMMARY]);
    }

    #[test]
    fn an_order_without_lines_is_torn() {
        let (mut db, acks, _, summary) = world();
        db.orders.push(DbOrder {
            id: 103,
            user_id: 7,
            key: "k3".into(),
            status: "placed".into(),
            total_cents: 0,
            created_at: 3000,
            updated_at: 3000,
        });
        let r = evaluate(&db, &acks, None, Some(&summary));
        let inv = r.iter().find(|i| i.name == INV_ORDERS).unwrap();
        assert!(inv.violations[0].contains("order 103"), "{inv:?}");
    }

    #[test]
    fn the_invariants_come_in_a_fixed_order() {
        let (db, acks, snap, summary) = world();
        let names: Vec<&str> =
            evaluate(&db, &acks, Some(&snap), Some(&summary)).iter().map(|i| i.name).collect();
        assert_eq!(
            names,
            [INV_ACKED, INV_KEYS, INV_ORDERS, INV_CANCELS, INV_STOCK_NONNEG, INV_CONSERVATION, INV_SUMMARY]
        );
    }

    #[test]
    fn a_cancel_counts_as_acknowledged_if_any_try_was() {
        let cancel = |order_id, acknowledged| Ack::Cancel {
            email: "a@sim.test".into(),
            shopper: 1,
            order_id,
            acknowledged,
            t_s: 1.0,
        };
        let acks = [cancel(5, false), cancel(5, true), cancel(5, false), cancel(6, false)];
        let ix = AckIndex::new(&acks);
        assert_eq!(ix.cancels, BTreeMap::from([(5, true), (6, false)]));
        assert!(ix.orders.is_empty());
    }

    #[test]
    fn units_are_tallied_by_when_the_order_was_placed_and_cancelled() {
        let order = |id, status: &str, created_at, updated_at| DbOrder {
            id,
            user_id: 7,
            key: format!("k{id}"),
            status: status.into(),
            total_cents: 100,
            created_at,
            updated_at,
        };
        let db = DbState {
            orders: vec![
                order(1, "placed", 500, 500),      // before the snapshot
                order(2, "placed", 1500, 1500),    // after it
                order(3, "cancelled", 500, 1500),  // placed before, cancelled after: returned
                order(4, "cancelled", 500, 800),   // cancelled before: nowhere
                order(5, "cancelled", 1500, 1600), // placed and cancelled after: nowhere
            ],
            items: (1..=5).map(|id| DbItem { order_id: id, line: line(9, id, 100) }).collect(),
            ..DbState::default()
        };
        let u = OrderedUnits::tally(&DbIndex::new(&db), 1000);
        assert_eq!(u.reserved, BTreeMap::from([(9, 1 + 2)]));
        assert_eq!(u.ordered_since, BTreeMap::from([(9, 2)]));
        assert_eq!(u.returned_since, BTreeMap::from([(9, 3)]));
    }

    #[test]
    fn the_summary_check_names_missing_counts_and_lists_at_most_20_findings() {
        let findings: Vec<Value> =
            (0..25).map(|i| json!({"kind": "content", "shopper": i, "email": "e", "detail": "d"})).collect();
        let inv = simulator_findings(Some(&json!({"violations": {"content": 25}, "findings": findings})));
        assert_eq!(inv.scope, "summary.json");
        assert_eq!(inv.violations[0], "the simulator counted 25 content violations");
        let missing = inv.violations.iter().filter(|v| v.starts_with("summary.json has no count")).count();
        assert_eq!(missing, Kind::ALL.len() - 1, "{inv:?}");
        assert_eq!(inv.violations.iter().filter(|v| v.starts_with("  content shopper #")).count(), 20);
        assert!(inv.violations.last().unwrap().starts_with("  content shopper #19 "));
    }
}
