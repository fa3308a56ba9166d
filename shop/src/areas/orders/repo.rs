//! Orders as the database has them: the row types (also the JSON shapes) and the reads.

use std::collections::HashMap;

use sea_orm::{ConnectionTrait, DbErr, QueryResult, Value};
use serde::Serialize;
use utoipa::ToSchema;

use crate::{
    domain::{OrderId, OrderStatus, ProductId, ShippingAddress, UserId},
    edge::input::Paging,
    infra::db::{self, DbError},
};

/// A line of an order, with the price it was sold at.
#[derive(Debug, Serialize, Clone, ToSchema)]
pub struct OrderItem {
    #[schema(value_type = i64, minimum = 1)]
    pub product_id: ProductId,
    pub sku: String,
    pub name: String,
    #[schema(minimum = 1, maximum = 99)]
    pub quantity: i64,
    #[schema(minimum = 0)]
    pub unit_price_cents: i64,
    #[schema(minimum = 0)]
    pub line_total_cents: i64,
}

#[derive(Debug, Serialize, Clone, ToSchema)]
pub struct Order {
    #[schema(value_type = i64, minimum = 1)]
    pub id: OrderId,
    #[schema(value_type = i64, minimum = 1)]
    pub user_id: UserId,
    pub status: OrderStatus,
    #[schema(minimum = 0)]
    pub total_cents: i64,
    #[schema(example = "EUR")]
    pub currency: String,
    /// The `Idempotency-Key` of the checkout that placed it.
    pub idempotency_key: String,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
    /// Milliseconds since the Unix epoch.
    pub updated_at: i64,
    pub items: Vec<OrderItem>,
    /// Where it goes. Absent for orders placed without one (through the API, which does not
    /// require it, or before addresses existed).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub shipping_address: Option<ShippingAddress>,
    /// Only in the admin's list. Like `Account.email`, no `format` is claimed.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub customer_email: Option<String>,
    /// The `X-Request-Id` of the request that placed it (nginx keeps it when it sends a request
    /// again to the next replica): tells nginx's retry from a client's own. Not shown.
    #[serde(skip)]
    pub placed_by: Option<String>,
}

/// A page of orders, newest first: the same shape as the catalog's pages.
#[derive(Serialize, ToSchema)]
pub struct OrderList {
    #[schema(max_items = 200)]
    pub items: Vec<Order>,
    #[schema(minimum = 1, maximum = 10000)]
    pub page: u64,
    #[schema(minimum = 1, maximum = 200)]
    pub per_page: u64,
    /// Orders on all pages.
    #[schema(minimum = 0)]
    pub total: i64,
}

/// An API client that names no `per_page` gets 200 orders, as before pages existed.
pub const API_PER_PAGE: u64 = 200;
/// The most orders one page holds.
pub const MAX_PER_PAGE: u64 = 200;

/// A page of the HTML lists.
pub const PAGE_PER_PAGE: u64 = 20;

impl OrderList {
    pub fn new((items, total): (Vec<Order>, i64), paging: Paging) -> Self {
        OrderList { items, page: paging.page, per_page: paging.per_page, total }
    }
}

const ORDER_COLUMNS: &str = "o.id, o.user_id, o.status, o.total_cents, o.currency, o.idempotency_key, \
     o.created_at, o.updated_at, o.placed_by, o.ship_name, o.ship_street, o.ship_postcode, o.ship_city, \
     o.ship_country";

pub(super) fn order_from_row(r: &QueryResult, with_email: bool) -> Result<Order, DbError> {
    Ok(Order {
        id: db::get(r, "id")?,
        user_id: db::get(r, "user_id")?,
        status: {
            let s: String = db::get(r, "status")?;
            OrderStatus::parse(&s)
                .ok_or_else(|| DbError::Other(DbErr::Custom(format!("unknown order status {s:?}"))))?
        },
        total_cents: db::get(r, "total_cents")?,
        currency: db::get(r, "currency")?,
        idempotency_key: db::get(r, "idempotency_key")?,
        created_at: db::get(r, "created_at")?,
        updated_at: db::get(r, "updated_at")?,
        items: vec![],
        shipping_address: address_from_row(r)?,
        customer_email: if with_email { Some(db::get(r, "email")?) } else { None },
        placed_by: db::get(r, "placed_by")?,
    })
}

/// The five address columns of a row: all or none (they are written together).
fn address_from_row(r: &QueryResult) -> Result<Option<ShippingAddress>, DbError> {
    let parts = [
        db::get::<Option<String>>(r, "ship_name")?,
        db::get(r, "ship_street")?,
        db::get(r, "ship_postcode")?,
        db::get(r, "ship_city")?,
        db::get(r, "ship_country")?,
    ];
    Ok(parts
        .into_iter()
        .collect::<Option<Vec<String>>>()
        .and_then(|p| p.try_into().ok())
        .map(ShippingAddress::from_parts))
}

/// The address of the user's newest order that has one (to start the checkout form with).
pub async fn last_shipping_address(
    c: &(impl ConnectionTrait + 'static),
    user_id: UserId,
) -> Result<Option<ShippingAddress>, DbError> {
    let row = db::one(
        c,
        "SELECT ship_name, ship_street, ship_postcode, ship_city, ship_country FROM orders
         WHERE user_id = ? AND ship_name IS NOT NULL ORDER BY id DESC LIMIT 1",
        vec![user_id.into()],
    )
    .await?;
    Ok(match row {
        Some(r) => address_from_row(&r)?,
        None => None,
    })
}

/// Fill in the items of several orders with one query.
pub(super) async fn with_items(
    c: &(impl ConnectionTrait + 'static),
    mut orders: Vec<Order>,
) -> Result<Vec<Order>, DbError> {
    if orders.is_empty() {
        return Ok(orders);
    }
    let marks = vec!["?"; orders.len()].join(",");
    let rows = db::all(
        c,
        &format!(
            "SELECT order_id, product_id, sku, name, quantity, unit_price_cents, line_total_cents
             FROM order_items WHERE order_id IN ({marks}) ORDER BY id"
        ),
        orders.iter().map(|o| o.id.into()).collect(),
    )
    .await?;
    let mut by_order: HashMap<OrderId, Vec<OrderItem>> = HashMap::new();
    for r in &rows {
        by_order.entry(db::get(r, "order_id")?).or_default().push(OrderItem {
            product_id: db::get(r, "product_id")?,
            sku: db::get(r, "sku")?,
            name: db::get(r, "name")?,
            quantity: db::get(r, "quantity")?,
            unit_price_cents: db::get(r, "unit_price_cents")?,
            line_total_cents: db::get(r, "line_total_cents")?,
        });
    }
    for o in &mut orders {
        o.items = by_order.remove(&o.id).unwrap_or_default();
    }
    Ok(orders)
}

pub(super) async fn find_where(
    c: &(impl ConnectionTrait + 'static),
    cond: &str,
    vals: Vec<Value>,
) -> Result<Option<Order>, DbError> {
    let row = db::one(c, &format!("SELECT {ORDER_COLUMNS} FROM orders o WHERE {cond}"), vals).await?;
    match row {
        Some(r) => Ok(with_items(c, vec![order_from_row(&r, false)?]).await?.pop()),
        None => Ok(None),
    }
}

/// An order of this user (another customer's order does not exist for them).
pub async fn find_for_user(
    c: &(impl ConnectionTrait + 'static),
    user_id: UserId,
    id: OrderId,
) -> Result<Option<Order>, DbError> {
    find_where(c, "o.id = ? AND o.user_id = ?", vec![id.into(), user_id.into()]).await
}

pub async fn find(c: &(impl ConnectionTrait + 'static), id: OrderId) -> Result<Option<Order>, DbError> {
    find_where(c, "o.id = ?", vec![id.into()]).await
}

pub(super) async fn find_by_key(
    c: &(impl ConnectionTrait + 'static),
    user_id: UserId,
    key: &str,
) -> Result<Option<Order>, DbError> {
    find_where(c, "o.user_id = ? AND o.idempotency_key = ?", vec![user_id.into(), key.into()]).await
}

/// How many rows a `SELECT COUNT(*) AS n …` counted.
async fn count(c: &(impl ConnectionTrait + 'static), sql: &str, vals: Vec<Value>) -> Result<i64, DbError> {
    match db::one(c, sql, vals).await? {
        Some(r) => db::get(&r, "n"),
        None => Ok(0),
    }
}

/// A page of the user's orders, newest first, and how many they have.
pub async fn list_for_user(
    c: &(impl ConnectionTrait + 'static),
    user_id: UserId,
    paging: Paging,
) -> Result<(Vec<Order>, i64), DbError> {
    let total = count(c, "SELECT COUNT(*) AS n FROM orders WHERE user_id = ?", vec![user_id.into()]).await?;
    let rows = db::all(
        c,
        &format!(
            "SELECT {ORDER_COLUMNS} FROM orders o WHERE o.user_id = ? ORDER BY o.id DESC LIMIT ? OFFSET ?"
        ),
        vec![user_id.into(), paging.limit().into(), paging.skip().into()],
    )
    .await?;
    let orders = rows.iter().map(|r| order_from_row(r, false)).collect::<Result<Vec<_>, _>>()?;
    Ok((with_items(c, orders).await?, total))
}

/// A page of all customers' orders (of one status, if given), newest first, and how many.
pub async fn list_all(
    c: &(impl ConnectionTrait + 'static),
    status: Option<OrderStatus>,
    paging: Paging,
) -> Result<(Vec<Order>, i64), DbError> {
    let (cond, vals): (&str, Vec<Value>) = match status {
        Some(s) => ("WHERE o.status = ?", vec![s.as_str().into()]),
        None => ("", vec![]),
    };
    let total = count(c, &format!("SELECT COUNT(*) AS n FROM orders o {cond}"), vals.clone()).await?;
    let mut page_vals = vals;
    page_vals.extend([paging.limit().into(), paging.skip().into()]);
    let rows = db::all(
        c,
        &format!(
            "SELECT {ORDER_COLUMNS}, u.email FROM orders o JOIN users u ON u.id = o.user_id {cond} \
             ORDER BY o.id DESC LIMIT ? OFFSET ?"
        ),
        page_vals,
    )
    .await?;
    let orders = rows.iter().map(|r| order_from_row(r, true)).collect::<Result<Vec<_>, _>>()?;
    Ok((with_items(c, orders).await?, total))
}
