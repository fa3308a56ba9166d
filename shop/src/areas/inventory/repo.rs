//! Products as the admin manages them (hidden ones included) and the stock's history, in SQL.
//!
//! A stock change is relative (`stock = stock + delta`), like a checkout's (`stock = stock - qty`),
//! so a restock and checkouts of the same product at the same moment never lose one another's
//! update: each statement changes the row under its lock, whatever order they come in. The
//! change and its history row are one transaction, and the history row records the stock that
//! the change left (read under the same lock).

use sea_orm::{ConnectionTrait, QueryResult, Value};
use serde::Serialize;
use utoipa::ToSchema;

use crate::{
    domain::{ProductId, UserId},
    edge::input::Paging,
    error::AppError,
    infra::db::{self, DbError, TxError},
};

/// The most units a product may hold, and a change may add or take.
pub const MAX_STOCK: i64 = 1_000_000;

/// A product with what only the admin sees.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ManagedProduct {
    #[schema(value_type = i64, minimum = 1)]
    pub id: ProductId,
    pub sku: String,
    pub name: String,
    pub description: String,
    #[schema(minimum = 0)]
    pub price_cents: i64,
    #[schema(example = "EUR")]
    pub currency: String,
    #[schema(minimum = 0)]
    pub stock: i64,
    pub category: String,
    /// Hidden products are not sold: not listed, not found, not added to carts, left out of
    /// checkouts.
    pub hidden: bool,
}

/// Why a stock changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum StockReason {
    /// The product was created with this stock.
    Created,
    /// The admin added stock.
    Restock,
    /// The admin took stock away (a count, breakage).
    Correction,
}

impl StockReason {
    fn as_str(self) -> &'static str {
        match self {
            StockReason::Created => "created",
            StockReason::Restock => "restock",
            StockReason::Correction => "correction",
        }
    }

    fn parse(s: &str) -> StockReason {
        match s {
            "created" => StockReason::Created,
            "restock" => StockReason::Restock,
            _ => StockReason::Correction,
        }
    }
}

/// One change of a product's stock by the admin, newest first in a history. (Sales and
/// cancellations are in the orders.)
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct StockChange {
    #[schema(minimum = 1)]
    pub id: i64,
    #[schema(value_type = i64, minimum = 1)]
    pub product_id: ProductId,
    /// Units added (negative: taken away).
    pub delta: i64,
    /// The stock right after this change.
    #[schema(minimum = 0)]
    pub stock_after: i64,
    pub reason: StockReason,
    #[schema(max_length = 200)]
    pub note: String,
    /// The admin who made it (their email), if the account still exists.
    #[schema(nullable = false)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
}

/// What the admin writes of a product (its stock is changed only by [`change_stock`]).
#[derive(Clone, Debug)]
pub struct ProductDraft {
    pub name: String,
    pub description: String,
    pub category: String,
    pub price_cents: i64,
    pub hidden: bool,
}

const COLUMNS: &str = "id, sku, name, description, price_cents, currency, stock, category, hidden";

fn from_row(r: &QueryResult) -> Result<ManagedProduct, DbError> {
    Ok(ManagedProduct {
        id: db::get(r, "id")?,
        sku: db::get(r, "sku")?,
        name: db::get(r, "name")?,
        description: db::get(r, "description")?,
        price_cents: db::get(r, "price_cents")?,
        currency: db::get(r, "currency")?,
        stock: db::get(r, "stock")?,
        category: db::get(r, "category")?,
        hidden: db::get(r, "hidden")?,
    })
}

/// Every product, hidden ones too, by id, a page at a time; and how many there are.
pub async fn list(
    c: &(impl ConnectionTrait + 'static),
    paging: Paging,
) -> Result<(Vec<ManagedProduct>, i64), DbError> {
    let total = db::one(c, "SELECT COUNT(*) AS n FROM products", vec![])
        .await?
        .map(|r| db::get::<i64>(&r, "n"))
        .transpose()?
        .unwrap_or(0);
    let rows = db::all(
        c,
        &format!("SELECT {COLUMNS} FROM products ORDER BY id LIMIT ? OFFSET ?"),
        vec![paging.limit().into(), paging.skip().into()],
    )
    .await?;
    Ok((rows.iter().map(from_row).collect::<Result<_, _>>()?, total))
}

pub async fn find(
    c: &(impl ConnectionTrait + 'static),
    id: ProductId,
) -> Result<Option<ManagedProduct>, DbError> {
    db::one(c, &format!("SELECT {COLUMNS} FROM products WHERE id = ?"), vec![id.into()])
        .await?
        .map(|r| from_row(&r))
        .transpose()
}

/// A change's history row. With an operation key, a change that was made already runs into the
/// unique (product, key) and is [`Change::Replayed`].
#[allow(clippy::too_many_arguments)] // one row's columns, named at the one call site each
async fn record(
    c: &(impl ConnectionTrait + 'static),
    id: ProductId,
    delta: i64,
    stock_after: i64,
    reason: StockReason,
    note: &str,
    by: UserId,
    op_key: Option<&str>,
) -> Result<Change, DbError> {
    let inserted = db::exec(
        c,
        "INSERT INTO stock_changes (product_id, delta, stock_after, reason, note, user_id, created_at, op_key)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        vec![
            id.into(),
            delta.into(),
            stock_after.into(),
            reason.as_str().into(),
            note.into(),
            by.into(),
            db::now_ms().into(),
            op_key.map(str::to_string).into(),
        ],
    )
    .await;
    match inserted {
        Ok(_) => Ok(Change::Made(stock_after)),
        Err(DbError::Unique(_)) => Ok(Change::Replayed),
        Err(e) => Err(e),
    }
}

/// What a stock change did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// Changed; the stock it left.
    Made(i64),
    /// This operation key changed the stock already: nothing happened now (the caller rolls back).
    Replayed,
}

/// A new product with `stock` units (recorded as its first stock change). A taken SKU is a 409.
pub async fn create(
    c: &(impl ConnectionTrait + 'static),
    sku: &str,
    draft: &ProductDraft,
    stock: i64,
    by: UserId,
) -> Result<ProductId, TxError> {
    let inserted = db::exec(
        c,
        "INSERT INTO products (sku, name, description, price_cents, currency, stock, category, created_at, hidden)
         VALUES (?, ?, ?, ?, 'EUR', ?, ?, ?, ?)",
        vec![
            sku.into(),
            draft.name.as_str().into(),
            draft.description.as_str().into(),
            draft.price_cents.into(),
            stock.into(),
            draft.category.as_str().into(),
            db::now_ms().into(),
            draft.hidden.into(),
        ],
    )
    .await;
    let id = match inserted {
        Ok((_, id)) => ProductId(id as i64),
        Err(DbError::Unique(_)) => {
            return Err(AppError::Conflict {
                code: "sku_taken",
                message: format!("a product with SKU {sku} exists already"),
            }
            .into())
        }
        Err(e) => return Err(e.into()),
    };
    record(c, id, stock, stock, StockReason::Created, "", by, None).await?;
    Ok(id)
}

/// Write the draft over a product (its stock untouched). `false`: no such product.
pub async fn update(
    c: &(impl ConnectionTrait + 'static),
    id: ProductId,
    draft: &ProductDraft,
) -> Result<bool, DbError> {
    let (n, _) = db::exec(
        c,
        "UPDATE products SET name = ?, description = ?, category = ?, price_cents = ?, hidden = ? WHERE id = ?",
        vec![
            draft.name.as_str().into(),
            draft.description.as_str().into(),
            draft.category.as_str().into(),
            draft.price_cents.into(),
            draft.hidden.into(),
            id.into(),
        ],
    )
    .await?;
    // MariaDB counts changed rows: saving the same values again changes none
    Ok(n == 1 || find(c, id).await?.is_some())
}

/// Add `delta` (negative: take away) to a product's stock and record it; answers the change.
/// 404 for no such product, 409 when the stock would go below zero (units sold meanwhile). With
/// `op_key`, at most once per key: a change sent again (a double click, nginx resending after a
/// lost answer) is [`Change::Replayed`] and the caller must roll this transaction back.
pub async fn change_stock(
    c: &(impl ConnectionTrait + 'static),
    id: ProductId,
    delta: i64,
    note: &str,
    by: UserId,
    op_key: Option<&str>,
) -> Result<Change, TxError> {
    let (n, _) = db::exec(
        c,
        "UPDATE products SET stock = stock + ? WHERE id = ? AND stock + ? >= 0 AND stock + ? <= ?",
        vec![delta.into(), id.into(), delta.into(), delta.into(), MAX_STOCK.into()],
    )
    .await?;
    let row = db::one(c, "SELECT stock FROM products WHERE id = ?", vec![id.into()]).await?;
    let Some(row) = row else {
        return Err(AppError::NotFound(format!("no product {id}")).into());
    };
    let stock: i64 = db::get(&row, "stock")?;
    if n != 1 && stock + delta > MAX_STOCK {
        return Err(AppError::Conflict {
            code: "stock_above_limit",
            message: format!("{stock} in stock: {delta} more would pass the limit of {MAX_STOCK}"),
        }
        .into());
    }
    if n != 1 {
        return Err(AppError::Conflict {
            code: "stock_below_zero",
            message: format!("only {stock} in stock: {} cannot be taken away", -delta),
        }
        .into());
    }
    let reason = if delta > 0 { StockReason::Restock } else { StockReason::Correction };
    Ok(record(c, id, delta, stock, reason, note, by, op_key).await?)
}

/// A product by its SKU.
pub async fn find_by_sku(
    c: &(impl ConnectionTrait + 'static),
    sku: &str,
) -> Result<Option<ManagedProduct>, DbError> {
    db::one(c, &format!("SELECT {COLUMNS} FROM products WHERE sku = ?"), vec![sku.into()])
        .await?
        .map(|r| from_row(&r))
        .transpose()
}

/// The newest `limit` stock changes of a product.
pub async fn history(
    c: &(impl ConnectionTrait + 'static),
    id: ProductId,
    limit: i64,
) -> Result<Vec<StockChange>, DbError> {
    let rows = db::all(
        c,
        "SELECT s.id, s.product_id, s.delta, s.stock_after, s.reason, s.note, s.created_at, u.email
         FROM stock_changes s LEFT JOIN users u ON u.id = s.user_id
         WHERE s.product_id = ? ORDER BY s.id DESC LIMIT ?",
        vec![id.into(), Value::from(limit)],
    )
    .await?;
    rows.iter()
        .map(|r| {
            Ok(StockChange {
                id: db::get(r, "id")?,
                product_id: db::get(r, "product_id")?,
                delta: db::get(r, "delta")?,
                stock_after: db::get(r, "stock_after")?,
                reason: StockReason::parse(&db::get::<String>(r, "reason")?),
                note: db::get(r, "note")?,
                by: db::get(r, "email")?,
                created_at: db::get(r, "created_at")?,
            })
        })
        .collect()
}
