//! Stock snapshots taken before a run, for the checker's stock-conservation invariant.
//!
//! Two kinds:
//! - `database` (preferred): one consistent `SELECT` of every product's `stock` and `reserved`
//!   (the quantities in non-cancelled orders). Checkout and cancel both keep `stock + reserved`
//!   constant, so the checker can compare that sum before and after, whatever orders existed
//!   before the run and whichever of them are cancelled during it.
//! - `api`: what `GET /api/products` showed at the start. Without the database the reserved
//!   quantities are unknown, so the checker counts only orders created after the snapshot (and
//!   the stock returned by cancelling older ones) — which needs the shop's clock and the
//!   simulator's to agree, and no other traffic while the snapshot is taken.

use std::{collections::BTreeMap, path::Path};

use anyhow::Context;
use mysql_async::prelude::Queryable;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{
    faults::unix_ms_now,
    http::{Http, Jar, Req},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SnapshotSource {
    Api,
    Database,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductStock {
    pub id: i64,
    pub sku: String,
    pub stock: i64,
    /// Σ quantities in non-cancelled orders (database snapshots only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reserved: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StockSnapshot {
    pub source: SnapshotSource,
    /// Wall clock when taking the snapshot began and ended (ms since the epoch).
    pub taken_at_unix_ms: u64,
    pub taken_until_unix_ms: u64,
    /// Where it came from (the base URL, or the database URL without its password).
    pub origin: String,
    pub products: Vec<ProductStock>,
}

impl StockSnapshot {
    pub fn by_id(&self) -> BTreeMap<i64, &ProductStock> {
        self.products.iter().map(|p| (p.id, p)).collect()
    }

    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        let text = serde_json::to_string_pretty(self)?;
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
    }

    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }
}

/// `mysql://user:secret@host/db` → `mysql://user:***@host/db`.
pub fn redact(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            u.to_string()
        }
        Err(_) => "(unparseable URL)".into(),
    }
}

/// Page through `GET /api/products?per_page=100`.
pub async fn from_api(http: &Http) -> anyhow::Result<StockSnapshot> {
    let started = unix_ms_now();
    let mut jar = Jar::default();
    let mut products = Vec::new();
    let mut page = 1u32;
    loop {
        let path = format!("/api/products?page={page}&per_page=100");
        let mut reply = None;
        for attempt in 1..=5u32 {
            let r = http.send(&mut jar, &Req::get("GET /api/products", path.clone())).await;
            if r.success() {
                reply = Some(r);
                break;
            }
            if !r.retryable() || attempt == 5 {
                anyhow::bail!("GET {path}: {}", r.describe());
            }
            tokio::time::sleep(std::time::Duration::from_millis(200 * attempt as u64)).await;
        }
        let Some(r) = reply else { anyhow::bail!("GET {path}: no answer") };
        let items = r.body.get("items").and_then(Value::as_array).context("product list without items")?;
        let total = r.body.get("total").and_then(Value::as_i64).unwrap_or(0);
        for it in items {
            products.push(ProductStock {
                id: it.get("id").and_then(Value::as_i64).context("product without id")?,
                sku: it.get("sku").and_then(Value::as_str).unwrap_or("").to_string(),
                stock: it.get("stock").and_then(Value::as_i64).context("product without stock")?,
                reserved: None,
            });
        }
        if items.is_empty() || products.len() as i64 >= total || page >= 10_000 {
            break;
        }
        page += 1;
    }
    products.sort_by_key(|p| p.id);
    products.dedup_by_key(|p| p.id);
    Ok(StockSnapshot {
        source: SnapshotSource::Api,
        taken_at_unix_ms: started,
        taken_until_unix_ms: unix_ms_now(),
        origin: http.bases().first().cloned().unwrap_or_default(),
        products,
    })
}

pub async fn connect(url: &str) -> anyhow::Result<mysql_async::Conn> {
    let opts = mysql_async::Opts::from_url(url).map_err(|e| anyhow::anyhow!("database URL: {e}"))?;
    let conn = tokio::time::timeout(std::time::Duration::from_secs(10), mysql_async::Conn::new(opts))
        .await
        .map_err(|_| anyhow::anyhow!("connecting to {}: timed out", redact(url)))?
        .with_context(|| format!("connecting to {}", redact(url)))?;
    Ok(conn)
}

/// Stock and reserved quantity of every product, in one statement (one consistent read).
pub const RESERVED_SQL: &str =
    "SELECT p.id, p.sku, p.stock, CAST(COALESCE(r.reserved, 0) AS SIGNED) AS reserved
     FROM products p
     LEFT JOIN (SELECT oi.product_id, SUM(oi.quantity) AS reserved
                FROM order_items oi JOIN orders o ON o.id = oi.order_id
                WHERE o.status <> 'cancelled'
                GROUP BY oi.product_id) r ON r.product_id = p.id
     ORDER BY p.id";

pub async fn from_database(url: &str) -> anyhow::Result<StockSnapshot> {
    let started = unix_ms_now();
    let mut conn = connect(url).await?;
    let rows: Vec<(i64, String, i64, i64)> = conn.query(RESERVED_SQL).await.context("reading stock")?;
    let _ = conn.disconnect().await;
    Ok(StockSnapshot {
        source: SnapshotSource::Database,
        taken_at_unix_ms: started,
        taken_until_unix_ms: unix_ms_now(),
        origin: redact(url),
        products: rows
            .into_iter()
            .map(|(id, sku, stock, reserved)| ProductStock { id, sku, stock, reserved: Some(reserved) })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact("mysql://shop:secret@127.0.0.1:3307/db"), "mysql://shop:***@127.0.0.1:3307/db");
        assert_eq!(redact("mysql://127.0.0.1/db"), "mysql://127.0.0.1/db");
    }

    #[test]
    fn snapshot_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let s = StockSnapshot {
            source: SnapshotSource::Database,
            taken_at_unix_ms: 1,
            taken_until_unix_ms: 2,
            origin: "x".into(),
            products: vec![ProductStock { id: 3, sku: "A".into(), stock: 5, reserved: Some(2) }],
        };
        let p = dir.path().join("s.json");
        s.write(&p).unwrap();
        assert_eq!(StockSnapshot::read(&p).unwrap(), s);
        assert_eq!(s.by_id()[&3].stock, 5);
    }
}
