//! The shopper's local model of what the shop must hold for it — its cart and its orders — and the
//! pure functions that compare the model with what the shop answers. No I/O here: everything is
//! unit-tested below.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::findings::Kind;

fn int(v: &Value, field: &str) -> Result<i64, String> {
    v.get(field).and_then(Value::as_i64).ok_or_else(|| format!("field `{field}` missing or not an integer"))
}

fn string(v: &Value, field: &str) -> Result<String, String> {
    v.get(field)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| format!("field `{field}` missing or not a string"))
}

// --- cart ----------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
pub struct ServerLine {
    pub quantity: i64,
    pub unit_price_cents: i64,
    pub line_total_cents: i64,
    /// Stock of the product when the cart was read (the shop includes it).
    pub stock: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ServerCart {
    pub lines: BTreeMap<i64, ServerLine>,
    pub total_cents: i64,
}

impl ServerCart {
    pub fn quantities(&self) -> BTreeMap<i64, i64> {
        self.lines.iter().map(|(p, l)| (*p, l.quantity)).collect()
    }
}

/// Parse `{items:[{product_id,quantity,unit_price_cents,line_total_cents,…}],total_cents}` and
/// check that it is self-consistent (no line twice, line totals and the total add up).
pub fn parse_cart(v: &Value) -> Result<ServerCart, String> {
    let items = v.get("items").and_then(Value::as_array).ok_or("cart has no `items` array")?;
    let mut cart = ServerCart { lines: BTreeMap::new(), total_cents: int(v, "total_cents")? };
    let mut sum = 0i64;
    for it in items {
        let pid = int(it, "product_id")?;
        let line = ServerLine {
            quantity: int(it, "quantity")?,
            unit_price_cents: int(it, "unit_price_cents")?,
            line_total_cents: int(it, "line_total_cents")?,
            stock: it.get("stock").and_then(Value::as_i64),
        };
        if line.quantity < 1 || line.quantity > 99 {
            return Err(format!("product {pid}: quantity {} outside 1..=99", line.quantity));
        }
        if line.line_total_cents != line.quantity * line.unit_price_cents {
            return Err(format!(
                "product {pid}: line total {} ≠ {} × {}",
                line.line_total_cents, line.quantity, line.unit_price_cents
            ));
        }
        sum += line.line_total_cents;
        if cart.lines.insert(pid, line).is_some() {
            return Err(format!("product {pid} appears on two lines"));
        }
    }
    if sum != cart.total_cents {
        return Err(format!("cart total {} ≠ sum of lines {sum}", cart.total_cents));
    }
    Ok(cart)
}

/// What this shopper's acknowledged cart changes say its cart holds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CartModel {
    pub lines: BTreeMap<i64, i64>,
    /// Set after an ambiguous change that could not be read back: the next successful read is
    /// adopted instead of compared.
    pub uncertain: bool,
}

/// A human-readable difference between expected and actual quantities, `None` when equal.
pub fn diff_quantities(expected: &BTreeMap<i64, i64>, actual: &BTreeMap<i64, i64>) -> Option<String> {
    let mut parts = Vec::new();
    let ids: BTreeSet<i64> = expected.keys().chain(actual.keys()).copied().collect();
    for id in ids {
        match (expected.get(&id), actual.get(&id)) {
            (Some(e), Some(a)) if e == a => {}
            (Some(e), Some(a)) => parts.push(format!("product {id}: expected {e}, cart has {a}")),
            (Some(e), None) => parts.push(format!("product {id}: expected {e}, missing from cart")),
            (None, Some(a)) => parts.push(format!("product {id}: not expected, cart has {a}")),
            (None, None) => {}
        }
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

impl CartModel {
    pub fn add(&mut self, pid: i64, qty: i64) {
        *self.lines.entry(pid).or_default() += qty;
    }

    pub fn set(&mut self, pid: i64, qty: i64) {
        self.lines.insert(pid, qty);
    }

    pub fn remove(&mut self, pid: i64) {
        self.lines.remove(&pid);
    }

    pub fn clear(&mut self) {
        self.lines.clear();
    }

    pub fn quantity(&self, pid: i64) -> i64 {
        self.lines.get(&pid).copied().unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// Compare with the shop's cart. An uncertain model never mismatches (it is adopted).
    pub fn diff(&self, server: &ServerCart) -> Option<String> {
        if self.uncertain {
            return None;
        }
        diff_quantities(&self.lines, &server.quantities())
    }

    pub fn adopt(&mut self, server: &ServerCart) {
        self.lines = server.quantities();
        self.uncertain = false;
    }

    /// The model with `qty` more of `pid` (what an applied add gives).
    pub fn with_added(&self, pid: i64, qty: i64) -> BTreeMap<i64, i64> {
        let mut m = self.lines.clone();
        *m.entry(pid).or_default() += qty;
        m
    }
}

/// How an ambiguous add (no answer, or a 5xx) turned out, judged from a fresh read of the cart.
#[derive(Debug, Clone, PartialEq)]
pub enum AddOutcome {
    Applied,
    NotApplied,
    /// The cart is neither the model before nor after the add: something else changed it.
    Neither(String),
}

pub fn resolve_ambiguous_add(model: &CartModel, pid: i64, qty: i64, server: &ServerCart) -> AddOutcome {
    let actual = server.quantities();
    if actual == model.with_added(pid, qty) {
        AddOutcome::Applied
    } else if actual == model.lines {
        AddOutcome::NotApplied
    } else {
        AddOutcome::Neither(
            diff_quantities(&model.lines, &actual).unwrap_or_else(|| "cart differs from the model".into()),
        )
    }
}

// --- orders --------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLine {
    pub product_id: i64,
    pub sku: String,
    pub name: String,
    pub quantity: i64,
    pub unit_price_cents: i64,
    pub line_total_cents: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderView {
    pub id: i64,
    pub status: String,
    pub total_cents: i64,
    pub idempotency_key: Option<String>,
    pub items: Vec<OrderLine>,
}

pub fn parse_order(v: &Value) -> Result<OrderView, String> {
    let items = v.get("items").and_then(Value::as_array).ok_or("order has no `items` array")?;
    let mut lines = Vec::with_capacity(items.len());
    for it in items {
        lines.push(OrderLine {
            product_id: int(it, "product_id")?,
            sku: string(it, "sku").unwrap_or_default(),
            name: string(it, "name").unwrap_or_default(),
            quantity: int(it, "quantity")?,
            unit_price_cents: int(it, "unit_price_cents")?,
            line_total_cents: int(it, "line_total_cents")?,
        });
    }
    Ok(OrderView {
        id: int(v, "id")?,
        status: string(v, "status")?,
        total_cents: int(v, "total_cents")?,
        idempotency_key: v.get("idempotency_key").and_then(Value::as_str).map(str::to_string),
        items: lines,
    })
}

pub fn parse_order_list(v: &Value) -> Result<Vec<OrderView>, String> {
    v.get("items")
        .and_then(Value::as_array)
        .ok_or_else(|| "order list has no `items` array".to_string())?
        .iter()
        .map(parse_order)
        .collect()
}

/// One page of `GET /api/orders`: its orders and the `total` on all pages (if the shop said).
pub fn parse_order_page(v: &Value) -> Result<(Vec<OrderView>, Option<i64>), String> {
    Ok((parse_order_list(v)?, v.get("total").and_then(Value::as_i64)))
}

/// Problems inside one order on its own: line totals, total, empty order.
pub fn order_self_check(o: &OrderView) -> Vec<String> {
    let mut p = Vec::new();
    if o.items.is_empty() {
        p.push(format!("order {} has no lines", o.id));
    }
    let mut seen = BTreeSet::new();
    for l in &o.items {
        if l.quantity < 1 {
            p.push(format!("order {} product {}: quantity {}", o.id, l.product_id, l.quantity));
        }
        if l.line_total_cents != l.quantity * l.unit_price_cents {
            p.push(format!(
                "order {} product {}: line total {} ≠ {} × {}",
                o.id, l.product_id, l.line_total_cents, l.quantity, l.unit_price_cents
            ));
        }
        if !seen.insert(l.product_id) {
            p.push(format!("order {} lists product {} twice", o.id, l.product_id));
        }
    }
    let sum: i64 = o.items.iter().map(|l| l.line_total_cents).sum();
    if sum != o.total_cents {
        p.push(format!("order {} total {} ≠ sum of lines {sum}", o.id, o.total_cents));
    }
    p
}

/// A freshly acknowledged order against the cart it was placed from: same products and
/// quantities, the prices the cart showed (when known), the key that was sent.
pub fn check_new_order(o: &OrderView, cart: &ServerCart, key: &str) -> Vec<String> {
    let mut p = order_self_check(o);
    if o.status != "placed" {
        p.push(format!("new order {} has status `{}`, expected `placed`", o.id, o.status));
    }
    if let Some(k) = &o.idempotency_key {
        if k != key {
            p.push(format!("order {} carries idempotency key {k}, the checkout sent {key}", o.id));
        }
    }
    let got: BTreeMap<i64, i64> = o.items.iter().map(|l| (l.product_id, l.quantity)).collect();
    if let Some(d) = diff_quantities(&cart.quantities(), &got) {
        p.push(format!("order {} lines differ from the cart it was placed from: {d}", o.id));
    }
    for l in &o.items {
        if let Some(c) = cart.lines.get(&l.product_id) {
            if c.unit_price_cents != l.unit_price_cents {
                p.push(format!(
                    "order {} product {}: unit price {} but the cart showed {}",
                    o.id, l.product_id, l.unit_price_cents, c.unit_price_cents
                ));
            }
        }
    }
    p
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KnownStatus {
    /// Placed, and this shopper did not ask to cancel it (the admin may still confirm or ship).
    Open,
    /// A cancel was acknowledged.
    Cancelled,
    /// A cancel was sent but its answer was lost.
    CancelUnknown,
}

/// An order this shopper saw acknowledged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KnownOrder {
    pub order: OrderView,
    pub key: String,
    pub status: KnownStatus,
}

/// Everything a shopper knows about its orders and checkout keys.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OrderBook {
    pub known: BTreeMap<i64, KnownOrder>,
    /// Checkout keys whose outcome is unknown (every attempt ended without a definite answer).
    pub pending: BTreeSet<String>,
    /// Checkout keys the shop definitely refused (4xx): no order may carry them.
    pub refused: BTreeSet<String>,
}

/// The shop lists at most this many orders on a page (its default `per_page`).
pub const ORDER_LIST_LIMIT: usize = 200;
/// The most pages of orders a look at the history reads (50 000 orders).
pub const MAX_ORDER_PAGES: u64 = 250;

/// What a look at the order list found.
#[derive(Debug, Default, PartialEq)]
pub struct ListCheck {
    pub problems: Vec<(Kind, String)>,
    /// Pending checkouts whose order turned up: now acknowledged.
    pub resolved: Vec<(String, OrderView)>,
    /// Orders whose cancel outcome was unknown and is now known (true = cancelled).
    pub cancel_resolved: Vec<(i64, bool)>,
}

impl OrderBook {
    pub fn open_orders(&self) -> Vec<i64> {
        self.known.values().filter(|k| k.status == KnownStatus::Open).map(|k| k.order.id).collect()
    }

    /// Compare `GET /api/orders` with what this shopper knows.
    /// `complete`: the list is every page of the history (else it may be the first page only).
    pub fn check_list(&self, list: &[OrderView], complete: bool) -> ListCheck {
        let mut out = ListCheck::default();
        let mut by_id: BTreeMap<i64, &OrderView> = BTreeMap::new();
        let mut by_key: BTreeMap<String, Vec<i64>> = BTreeMap::new();
        for o in list {
            if by_id.insert(o.id, o).is_some() {
                out.problems.push((Kind::DuplicateOrder, format!("order {} is listed twice", o.id)));
            }
            if let Some(k) = &o.idempotency_key {
                // MySQL compares keys case-insensitively; treat them so here too.
                by_key.entry(k.to_ascii_lowercase()).or_default().push(o.id);
            }
            for p in order_self_check(o) {
                out.problems.push((Kind::Content, p));
            }
        }
        for (key, ids) in &by_key {
            let mut ids = ids.clone();
            ids.sort_unstable();
            ids.dedup();
            if ids.len() > 1 {
                out.problems.push((
                    Kind::DuplicateOrder,
                    format!("idempotency key {key} has {} orders: {ids:?}", ids.len()),
                ));
            }
        }
        // A full page may have cut older orders off: only orders at least as new as the oldest
        // listed one can be missed.
        let truncated = !complete && list.len() >= ORDER_LIST_LIMIT;
        let oldest = list.iter().map(|o| o.id).min().unwrap_or(i64::MAX);
        for k in self.known.values() {
            let id = k.order.id;
            let Some(o) = by_id.get(&id) else {
                if !truncated || id >= oldest {
                    out.problems.push((
                        Kind::LostOrder,
                        format!("acknowledged order {id} (key {}) is not listed", k.key),
                    ));
                }
                continue;
            };
            if o.items != k.order.items || o.total_cents != k.order.total_cents {
                out.problems.push((
                    Kind::Content,
                    format!(
                        "order {id} changed: acknowledged total {} with {} lines, listed total {} with {} lines",
                        k.order.total_cents,
                        k.order.items.len(),
                        o.total_cents,
                        o.items.len()
                    ),
                ));
            }
            if let Some(key) = &o.idempotency_key {
                if !key.eq_ignore_ascii_case(&k.key) {
                    out.problems.push((
                        Kind::Content,
                        format!("order {id} listed with key {key}, acknowledged with {}", k.key),
                    ));
                }
            }
            match (k.status, o.status.as_str()) {
                (KnownStatus::Open, "cancelled") => out.problems.push((
                    Kind::Content,
                    format!("order {id} is cancelled but this shopper never cancelled it"),
                )),
                (KnownStatus::Cancelled, s) if s != "cancelled" => out.problems.push((
                    Kind::Content,
                    format!("order {id} was cancelled (acknowledged) but is listed as `{s}`"),
                )),
                (KnownStatus::CancelUnknown, s) => out.cancel_resolved.push((id, s == "cancelled")),
                _ => {}
            }
        }
        for o in list {
            if self.known.contains_key(&o.id) {
                continue;
            }
            let key = o.idempotency_key.clone().unwrap_or_default();
            let pending = self.pending.iter().find(|p| p.eq_ignore_ascii_case(&key));
            if let Some(p) = pending {
                out.resolved.push((p.clone(), o.clone()));
            } else if self.refused.iter().any(|r| r.eq_ignore_ascii_case(&key)) {
                out.problems.push((
                    Kind::Content,
                    format!("order {} exists for key {key}, but that checkout was refused", o.id),
                ));
            } else {
                out.problems.push((
                    Kind::Content,
                    format!("order {} (key {key}) was never placed by this shopper", o.id),
                ));
            }
        }
        out
    }
}

/// Backoff before retry `attempt` (1-based): 100 ms doubling, capped, or the server's Retry-After.
/// Not the shop's back-off (`shop::infra::retry`, jittered, bounded by time): a shopper honours
/// the server's `Retry-After` and, without jitter, a seeded run repeats itself.
pub fn backoff_ms(attempt: u32, retry_after_s: Option<u64>) -> u64 {
    let exp = 100u64.saturating_mul(1u64 << attempt.saturating_sub(1).min(6));
    let base = exp.min(2000);
    match retry_after_s {
        Some(s) => (s * 1000).clamp(base, 5000),
        None => base,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use serde_json::json;

    use super::*;

    fn cart_json(lines: &[(i64, i64, i64)]) -> Value {
        let items: Vec<Value> = lines
            .iter()
            .map(|(p, q, price)| {
                json!({"product_id": p, "name": "x", "quantity": q, "unit_price_cents": price,
                       "line_total_cents": q * price, "stock": 10})
            })
            .collect();
        let total: i64 = lines.iter().map(|(_, q, p)| q * p).sum();
        json!({"items": items, "total_cents": total, "currency": "EUR"})
    }

    fn line(pid: i64, qty: i64, price: i64) -> OrderLine {
        OrderLine {
            product_id: pid,
            sku: format!("S-{pid}"),
            name: "x".into(),
            quantity: qty,
            unit_price_cents: price,
            line_total_cents: qty * price,
        }
    }

    fn order(id: i64, key: &str, status: &str, lines: Vec<OrderLine>) -> OrderView {
        let total = lines.iter().map(|l| l.line_total_cents).sum();
        OrderView {
            id,
            status: status.into(),
            total_cents: total,
            idempotency_key: Some(key.into()),
            items: lines,
        }
    }

    #[test]
    fn parse_cart_accepts_a_consistent_cart() {
        let c = parse_cart(&cart_json(&[(1, 2, 500), (7, 1, 250)])).unwrap();
        assert_eq!(c.quantities(), BTreeMap::from([(1, 2), (7, 1)]));
        assert_eq!(c.total_cents, 1250);
        assert_eq!(c.lines[&1].stock, Some(10));
    }

    #[test]
    fn parse_cart_rejects_inconsistent_carts() {
        let mut v = cart_json(&[(1, 2, 500)]);
        v["total_cents"] = json!(999);
        assert!(parse_cart(&v).unwrap_err().contains("total"));
        let mut v = cart_json(&[(1, 2, 500)]);
        v["items"][0]["line_total_cents"] = json!(1);
        assert!(parse_cart(&v).unwrap_err().contains("line total"));
        let v = cart_json(&[(1, 1, 500), (1, 1, 500)]);
        assert!(parse_cart(&v).unwrap_err().contains("two lines"));
        let v = cart_json(&[(1, 100, 1)]);
        assert!(parse_cart(&v).unwrap_err().contains("1..=99"));
        assert!(parse_cart(&json!({"total_cents": 0})).is_err());
    }

    #[test]
    fn model_follows_acknowledged_changes_and_spots_differences() {
        let mut m = CartModel::default();
        m.add(1, 2);
        m.add(1, 1);
        m.add(5, 4);
        m.set(5, 2);
        m.add(9, 1);
        m.remove(9);
        let same = parse_cart(&cart_json(&[(1, 3, 100), (5, 2, 100)])).unwrap();
        assert_eq!(m.diff(&same), None);
        let lost = parse_cart(&cart_json(&[(1, 3, 100)])).unwrap();
        assert_eq!(m.diff(&lost).unwrap(), "product 5: expected 2, missing from cart");
        let phantom = parse_cart(&cart_json(&[(1, 3, 100), (5, 2, 100), (8, 1, 100)])).unwrap();
        assert_eq!(m.diff(&phantom).unwrap(), "product 8: not expected, cart has 1");
        let changed = parse_cart(&cart_json(&[(1, 4, 100), (5, 2, 100)])).unwrap();
        assert_eq!(m.diff(&changed).unwrap(), "product 1: expected 3, cart has 4");
        m.uncertain = true;
        assert_eq!(m.diff(&changed), None, "an uncertain model is adopted, not compared");
        m.adopt(&changed);
        assert!(!m.uncertain);
        assert_eq!(m.quantity(1), 4);
    }

    #[test]
    fn ambiguous_add_is_resolved_by_reading_back() {
        let mut m = CartModel::default();
        m.add(1, 2);
        let applied = parse_cart(&cart_json(&[(1, 2, 100), (3, 1, 100)])).unwrap();
        assert_eq!(resolve_ambiguous_add(&m, 3, 1, &applied), AddOutcome::Applied);
        let applied_same_line = parse_cart(&cart_json(&[(1, 3, 100)])).unwrap();
        assert_eq!(resolve_ambiguous_add(&m, 1, 1, &applied_same_line), AddOutcome::Applied);
        let not = parse_cart(&cart_json(&[(1, 2, 100)])).unwrap();
        assert_eq!(resolve_ambiguous_add(&m, 3, 1, &not), AddOutcome::NotApplied);
        let twice = parse_cart(&cart_json(&[(1, 2, 100), (3, 2, 100)])).unwrap();
        assert!(matches!(resolve_ambiguous_add(&m, 3, 1, &twice), AddOutcome::Neither(_)));
    }

    #[test]
    fn new_order_must_match_the_cart_it_came_from() {
        let cart = parse_cart(&cart_json(&[(1, 2, 500), (4, 1, 300)])).unwrap();
        let good = order(10, "k-1234567", "placed", vec![line(1, 2, 500), line(4, 1, 300)]);
        assert!(check_new_order(&good, &cart, "k-1234567").is_empty());

        let missing_line = order(10, "k-1234567", "placed", vec![line(1, 2, 500)]);
        let p = check_new_order(&missing_line, &cart, "k-1234567");
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].contains("product 4"));

        let mut bad_total = good.clone();
        bad_total.total_cents += 1;
        assert!(check_new_order(&bad_total, &cart, "k-1234567")[0].contains("total"));

        let wrong_price = order(10, "k-1234567", "placed", vec![line(1, 2, 450), line(4, 1, 300)]);
        assert!(check_new_order(&wrong_price, &cart, "k-1234567")[0].contains("unit price"));

        assert!(check_new_order(&good, &cart, "other-key")[0].contains("idempotency key"));
        let empty = order(11, "k", "placed", vec![]);
        assert!(check_new_order(&empty, &ServerCart::default(), "k")[0].contains("no lines"));
    }

    fn book() -> OrderBook {
        let mut b = OrderBook::default();
        for (id, key) in [(10, "key-a"), (11, "key-b")] {
            b.known.insert(
                id,
                KnownOrder {
                    order: order(id, key, "placed", vec![line(1, 1, 100)]),
                    key: key.into(),
                    status: KnownStatus::Open,
                },
            );
        }
        b
    }

    #[test]
    fn order_list_that_matches_has_no_problems() {
        let b = book();
        let list = vec![
            order(11, "key-b", "confirmed", vec![line(1, 1, 100)]),
            order(10, "key-a", "placed", vec![line(1, 1, 100)]),
        ];
        assert_eq!(b.check_list(&list, false), ListCheck::default());
    }

    #[test]
    fn order_list_finds_lost_duplicate_changed_and_phantom_orders() {
        let mut b = book();
        b.refused.insert("key-refused".into());
        let list = vec![
            // 10 is missing
            order(11, "key-b", "placed", vec![line(1, 2, 100)]), // changed
            order(12, "KEY-B", "placed", vec![line(1, 1, 100)]), // second order for key-b (other case)
            order(13, "key-refused", "placed", vec![line(1, 1, 100)]),
        ];
        let c = b.check_list(&list, false);
        let kinds: Vec<Kind> = c.problems.iter().map(|(k, _)| *k).collect();
        assert!(kinds.contains(&Kind::LostOrder), "{c:?}");
        assert!(kinds.contains(&Kind::DuplicateOrder), "{c:?}");
        assert!(c.problems.iter().any(|(_, m)| m.contains("order 11 changed")), "{c:?}");
        assert!(c.problems.iter().any(|(_, m)| m.contains("but that checkout was refused")), "{c:?}");
        assert!(
            c.problems.iter().any(|(_, m)| m.contains("order 12") && m.contains("never placed")),
            "{c:?}"
        );
    }

    #[test]
    fn order_list_resolves_pending_checkouts_and_cancels() {
        let mut b = book();
        b.pending.insert("key-p".into());
        b.known.get_mut(&11).unwrap().status = KnownStatus::CancelUnknown;
        b.known.get_mut(&10).unwrap().status = KnownStatus::Cancelled;
        let list = vec![
            order(10, "key-a", "cancelled", vec![line(1, 1, 100)]),
            order(11, "key-b", "cancelled", vec![line(1, 1, 100)]),
            order(14, "key-p", "placed", vec![line(2, 1, 100)]),
        ];
        let c = b.check_list(&list, false);
        assert!(c.problems.is_empty(), "{c:?}");
        assert_eq!(c.cancel_resolved, vec![(11, true)]);
        assert_eq!(c.resolved.len(), 1);
        assert_eq!(c.resolved[0].1.id, 14);

        // An acknowledged cancel that did not stick, and a cancel nobody asked for.
        let mut b = book();
        b.known.get_mut(&10).unwrap().status = KnownStatus::Cancelled;
        let list = vec![
            order(10, "key-a", "placed", vec![line(1, 1, 100)]),
            order(11, "key-b", "cancelled", vec![line(1, 1, 100)]),
        ];
        let c = b.check_list(&list, false);
        assert_eq!(c.problems.len(), 2, "{c:?}");
    }

    #[test]
    fn a_full_order_page_does_not_report_older_orders_as_lost() {
        let mut b = OrderBook::default();
        b.known.insert(
            1,
            KnownOrder {
                order: order(1, "old-key", "placed", vec![line(1, 1, 1)]),
                key: "old-key".into(),
                status: KnownStatus::Open,
            },
        );
        let list: Vec<OrderView> = (0..ORDER_LIST_LIMIT as i64)
            .map(|i| order(1000 - i, &format!("k{i}"), "placed", vec![line(1, 1, 1)]))
            .collect();
        let c = b.check_list(&list, false);
        assert!(!c.problems.iter().any(|(k, _)| *k == Kind::LostOrder), "{c:?}");
        // every page read: an acknowledged order missing from them is lost, however many there are
        let c = b.check_list(&list, true);
        assert!(c.problems.iter().any(|(k, _)| *k == Kind::LostOrder), "{c:?}");
    }

    #[test]
    fn backoff_grows_and_honours_retry_after() {
        assert_eq!(backoff_ms(1, None), 100);
        assert_eq!(backoff_ms(2, None), 200);
        assert_eq!(backoff_ms(10, None), 2000);
        assert_eq!(backoff_ms(1, Some(1)), 1000);
        assert_eq!(backoff_ms(1, Some(3600)), 5000);
    }
}
