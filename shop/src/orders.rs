//! Orders: idempotent checkout in one transaction, the customer's orders, cancellation, and the
//! status transitions the admin drives.
//!
//! Checkout inserts the order row FIRST: the unique key (user, idempotency key) is what makes a
//! repeated checkout — a double click, a client retry, nginx retrying on another replica — return
//! the first order instead of creating a second, and it holds across replicas because the database
//! enforces it. Stock is then taken with a conditional `UPDATE … WHERE stock >= qty`, so it can
//! never go below zero, and the whole transaction is retried on a conflict or a lost connection.
//! The cart is only touched after commit.

use std::collections::HashMap;

use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse};
use sea_orm::{ConnectionTrait, DbErr, QueryResult, Value};
use serde::Serialize;
use utoipa::ToSchema;

use crate::{
    cart,
    db::{self, DbError, TxError},
    domain::{CartLine, CartOwner},
    error::{ApiError, ApiResult, AppError, HtmlError, HtmlResult},
    input::{idempotency_key, path_id},
    session::{CurrentUser, Session},
    state::AppState,
    web::{page, query_map, render, render_status, see_other, EmptyBody},
};

/// A replayed checkout empties the cart of its order's lines only this long after the order
/// was placed (less than the store remembers that it did so already).
const REPLAY_TAKES_CART_MS: i64 = 10 * 60 * 1000;

pub use crate::domain::{OrderStatus, STATUSES};

/// A line of an order, with the price it was sold at.
#[derive(Debug, Serialize, Clone, ToSchema)]
pub struct OrderItem {
    #[schema(minimum = 1)]
    pub product_id: i64,
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
    #[schema(minimum = 1)]
    pub id: i64,
    #[schema(minimum = 1)]
    pub user_id: i64,
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
    /// Only in the admin's list. Like `Account.email`, no `format` is claimed.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub customer_email: Option<String>,
}

/// Orders, newest first (at most 200).
#[derive(Serialize, ToSchema)]
pub struct OrderList {
    #[schema(max_items = 200)]
    pub items: Vec<Order>,
}

const ORDER_COLUMNS: &str =
    "o.id, o.user_id, o.status, o.total_cents, o.currency, o.idempotency_key, o.created_at, o.updated_at";

fn order_from_row(r: &QueryResult, with_email: bool) -> Result<Order, DbError> {
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
        customer_email: if with_email { Some(db::get(r, "email")?) } else { None },
    })
}

/// Fill in the items of several orders with one query.
async fn with_items(
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
    let mut by_order: HashMap<i64, Vec<OrderItem>> = HashMap::new();
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

async fn find_where(
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
    user_id: i64,
    id: i64,
) -> Result<Option<Order>, DbError> {
    find_where(c, "o.id = ? AND o.user_id = ?", vec![id.into(), user_id.into()]).await
}

pub async fn find(c: &(impl ConnectionTrait + 'static), id: i64) -> Result<Option<Order>, DbError> {
    find_where(c, "o.id = ?", vec![id.into()]).await
}

async fn find_by_key(
    c: &(impl ConnectionTrait + 'static),
    user_id: i64,
    key: &str,
) -> Result<Option<Order>, DbError> {
    find_where(c, "o.user_id = ? AND o.idempotency_key = ?", vec![user_id.into(), key.into()]).await
}

pub async fn list_for_user(
    c: &(impl ConnectionTrait + 'static),
    user_id: i64,
) -> Result<Vec<Order>, DbError> {
    let rows = db::all(
        c,
        &format!("SELECT {ORDER_COLUMNS} FROM orders o WHERE o.user_id = ? ORDER BY o.id DESC LIMIT 200"),
        vec![user_id.into()],
    )
    .await?;
    let orders = rows.iter().map(|r| order_from_row(r, false)).collect::<Result<Vec<_>, _>>()?;
    with_items(c, orders).await
}

pub async fn list_all(
    c: &(impl ConnectionTrait + 'static),
    status: Option<OrderStatus>,
) -> Result<Vec<Order>, DbError> {
    let (cond, vals): (&str, Vec<Value>) = match status {
        Some(s) => ("WHERE o.status = ?", vec![s.as_str().into()]),
        None => ("", vec![]),
    };
    let rows = db::all(
        c,
        &format!(
            "SELECT {ORDER_COLUMNS}, u.email FROM orders o JOIN users u ON u.id = o.user_id {cond} ORDER BY o.id DESC LIMIT 200"
        ),
        vals,
    )
    .await?;
    let orders = rows.iter().map(|r| order_from_row(r, true)).collect::<Result<Vec<_>, _>>()?;
    with_items(c, orders).await
}

/// The result of a checkout: the order, and whether this call created it.
pub struct Checkout {
    pub order: Order,
    pub created: bool,
}

enum Attempt {
    Placed(i64),
    AlreadyPlaced,
}

/// Turn the user's cart into an order, exactly once per idempotency key.
#[tracing::instrument(skip_all, fields(user.id = user.id))]
pub async fn checkout(state: &AppState, user: &CurrentUser, key: &str) -> Result<Checkout, AppError> {
    let owner = CartOwner::Account(user.id);
    if let Some(order) = find_by_key(&state.db, user.id, key).await? {
        crate::metrics::record_checkout("replayed");
        take_replayed(state, &owner, &order).await;
        return Ok(Checkout { order, created: false });
    }
    let lines = state.store.cart_get(&owner).await?;
    if lines.is_empty() {
        // A concurrent request with this key (a double click, a client or nginx retry) may have
        // placed the order and emptied the cart between our look-up and here: it only empties
        // the cart after its commit, so the order is visible now.
        if let Some(order) = find_by_key(&state.db, user.id, key).await? {
            crate::metrics::record_checkout("replayed");
            return Ok(Checkout { order, created: false });
        }
        crate::metrics::record_checkout("empty_cart");
        return Err(AppError::Unprocessable { code: "empty_cart", message: "your cart is empty".into() });
    }
    // Set when an attempt of *this* call sent COMMIT and lost the answer (a connection cut right
    // after it, a statement timeout during a Galera stall): the commit may have happened, so a
    // later attempt that finds the key taken found the order this call made.
    let commit_unknown = std::sync::atomic::AtomicBool::new(false);
    let attempt = db::retry("checkout", || place(state, user.id, key, &lines, &commit_unknown)).await;
    let attempt = match attempt {
        Ok(a) => a,
        Err(e) => {
            crate::metrics::record_checkout(if matches!(e, AppError::Conflict { .. }) {
                "out_of_stock"
            } else {
                "failed"
            });
            return Err(e);
        }
    };
    match attempt {
        Attempt::Placed(id) => {
            // The order is committed; emptying the cart is best effort and must not fail the checkout.
            if let Err(e) = state.store.cart_take(&owner, id, &lines).await {
                tracing::warn!(order.id = id, error = %e, "order placed but cart not emptied");
            }
            crate::metrics::record_checkout("placed");
            state.stock_changed();
            tracing::info!(order.id = id, "order placed");
            let order = find(&state.db, id)
                .await?
                .ok_or_else(|| AppError::Unexpected(anyhow::anyhow!("order {id} vanished")))?;
            Ok(Checkout { order, created: true })
        }
        Attempt::AlreadyPlaced => {
            let created = commit_unknown.load(std::sync::atomic::Ordering::Relaxed);
            crate::metrics::record_checkout(if created { "placed" } else { "replayed" });
            let order = find_by_key(&state.db, user.id, key)
                .await?
                .ok_or_else(|| AppError::Unavailable("the order is being placed, please retry".into()))?;
            if created {
                state.stock_changed();
                tracing::info!(
                    order.id = order.id,
                    "order placed (its first attempt committed, the answer was lost)"
                );
            }
            take_replayed(state, &owner, &order).await;
            Ok(Checkout { order, created })
        }
    }
}

/// A replayed checkout: the first attempt may have committed and then lost its replica before
/// it emptied the cart, so take the order's lines now. Once per order (the store keeps an
/// operation key for it), and only while that key is remembered, so an old order replayed much
/// later never touches today's cart. Best effort, like emptying the cart after a first checkout.
async fn take_replayed(state: &AppState, owner: &CartOwner, order: &Order) {
    if db::now_ms() - order.created_at >= REPLAY_TAKES_CART_MS {
        return;
    }
    let lines: Vec<CartLine> =
        order.items.iter().map(|i| CartLine { product_id: i.product_id, quantity: i.quantity }).collect();
    if let Err(e) = state.store.cart_take(owner, order.id, &lines).await {
        tracing::warn!(order.id = order.id, error = %e, "replayed order: cart not emptied");
    }
}

/// One attempt of the checkout transaction. `commit_unknown` is set if its COMMIT went out and
/// no answer came back (not for a conflict: a transaction that lost one was rolled back).
async fn place(
    state: &AppState,
    user_id: i64,
    key: &str,
    lines: &[CartLine],
    commit_unknown: &std::sync::atomic::AtomicBool,
) -> Result<Attempt, TxError> {
    let tx = db::begin(&state.db).await?;
    let now = db::now_ms();
    let inserted = db::exec(
        &tx,
        "INSERT INTO orders (user_id, idempotency_key, status, total_cents, currency, created_at, updated_at)
         VALUES (?, ?, ?, 0, 'EUR', ?, ?)",
        vec![user_id.into(), key.into(), OrderStatus::Placed.as_str().into(), now.into(), now.into()],
    )
    .await;
    let order_id = match inserted {
        Ok((_, id)) => id as i64,
        Err(DbError::Unique(_)) => return Ok(Attempt::AlreadyPlaced),
        Err(e) => return Err(e.into()),
    };
    let mut total = 0i64;
    // Lines are sorted by product id: every checkout locks rows in the same order (no deadlock cycles).
    for &CartLine { product_id: pid, quantity: qty } in lines {
        let (taken, _) = db::exec(
            &tx,
            "UPDATE products SET stock = stock - ? WHERE id = ? AND stock >= ?",
            vec![qty.into(), pid.into(), qty.into()],
        )
        .await?;
        let row =
            db::one(&tx, "SELECT sku, name, price_cents, stock FROM products WHERE id = ?", vec![pid.into()])
                .await?;
        let Some(row) = row else {
            return Err(AppError::Conflict {
                code: "product_unavailable",
                message: format!("product {pid} in your cart is no longer sold; please remove it"),
            }
            .into());
        };
        let name: String = db::get(&row, "name")?;
        if taken != 1 {
            let stock: i64 = db::get(&row, "stock")?;
            let message = if stock == 0 {
                format!("“{name}” is sold out; please remove it from your cart")
            } else {
                format!("only {stock} of “{name}” left; please lower the quantity in your cart")
            };
            return Err(AppError::Conflict { code: "out_of_stock", message }.into());
        }
        let price: i64 = db::get(&row, "price_cents")?;
        let sku: String = db::get(&row, "sku")?;
        db::exec(
            &tx,
            "INSERT INTO order_items (order_id, product_id, sku, name, unit_price_cents, quantity, line_total_cents)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
            vec![order_id.into(), pid.into(), sku.into(), name.into(), price.into(), qty.into(), (price * qty).into()],
        )
        .await?;
        total += price * qty;
    }
    db::exec(&tx, "UPDATE orders SET total_cents = ? WHERE id = ?", vec![total.into(), order_id.into()])
        .await?;
    if let Err(e) = db::commit(tx).await {
        if matches!(e, DbError::Timeout(_) | DbError::Unavailable(_)) {
            commit_unknown.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        return Err(e.into());
    }
    Ok(Attempt::Placed(order_id))
}

/// Cancel a placed order of this user and return its stock.
pub async fn cancel(state: &AppState, user_id: i64, id: i64) -> Result<Order, AppError> {
    db::retry("cancel", || async {
        let tx = db::begin(&state.db).await?;
        let (n, _) = db::exec(
            &tx,
            "UPDATE orders SET status = ?, updated_at = ? WHERE id = ? AND user_id = ? AND status = ?",
            vec![
                OrderStatus::Cancelled.as_str().into(),
                db::now_ms().into(),
                id.into(),
                user_id.into(),
                OrderStatus::Placed.as_str().into(),
            ],
        )
        .await?;
        if n != 1 {
            return match find_for_user(&tx, user_id, id).await? {
                // Already cancelled (a retried request): same answer, stock returned only once.
                Some(o) if o.status == OrderStatus::Cancelled => Ok(()),
                None => Err(AppError::NotFound(format!("you have no order {id}")).into()),
                Some(o) => Err(AppError::Conflict {
                    code: "invalid_transition",
                    message: format!("order {id} is {}; only placed orders can be cancelled", o.status),
                }
                .into()),
            };
        }
        let items =
            db::all(&tx, "SELECT product_id, quantity FROM order_items WHERE order_id = ?", vec![id.into()])
                .await?;
        let mut lines: Vec<CartLine> = items
            .iter()
            .map(|r| {
                Ok(CartLine { product_id: db::get(r, "product_id")?, quantity: db::get(r, "quantity")? })
            })
            .collect::<Result<_, DbError>>()?;
        lines.sort_unstable();
        for CartLine { product_id: pid, quantity: qty } in lines {
            db::exec(&tx, "UPDATE products SET stock = stock + ? WHERE id = ?", vec![qty.into(), pid.into()])
                .await?;
        }
        db::commit(tx).await?;
        Ok(())
    })
    .await?;
    state.stock_changed();
    tracing::info!(order.id = id, "order cancelled");
    find(&state.db, id).await?.ok_or_else(|| AppError::NotFound(format!("no order {id}")))
}

/// Admin transition to `to` from the one status that may become it (placed → confirmed,
/// confirmed → shipped; see [`OrderStatus::comes_from`]).
pub async fn transition(state: &AppState, id: i64, to: OrderStatus) -> Result<Order, AppError> {
    let from =
        to.comes_from().ok_or_else(|| AppError::Unexpected(anyhow::anyhow!("no order can become {to}")))?;
    let (n, _) = db::exec(
        &state.db,
        "UPDATE orders SET status = ?, updated_at = ? WHERE id = ? AND status = ?",
        vec![to.as_str().into(), db::now_ms().into(), id.into(), from.as_str().into()],
    )
    .await?;
    let order = find(&state.db, id).await?.ok_or_else(|| AppError::NotFound(format!("no order {id}")))?;
    if n != 1 && order.status != to {
        return Err(AppError::Conflict {
            code: "invalid_transition",
            message: format!("order {id} is {}; only {from} orders can become {to}", order.status),
        });
    }
    tracing::info!(order.id = id, status = to.as_str(), "order status changed");
    Ok(order)
}

// --- JSON API ------------------------------------------------------------------------------

/// Check out the account's cart in one transaction, at most once per `Idempotency-Key`.
///
/// The same key again answers 200 with the order it placed, so a retry is always safe.
#[utoipa::path(
    post,
    path = "/api/orders",
    operation_id = "checkout",
    tag = "orders",
    request_body = EmptyBody,
    params(("Idempotency-Key" = String, Header, pattern = "^[A-Za-z0-9_-]{8,64}$",
        description = "Required: a fresh key (a UUID) per checkout, the same one for its retries")),
    security(("session" = [])),
    responses(
        (status = 201, description = "The order, placed now", body = Order),
        (status = 200, description = "The order this key already placed", body = Order),
        (status = 400, description = "The body could not be read", body = ApiError),
        (status = 401, description = "Not logged in", body = ApiError),
        (status = 409, description = "Not enough stock (`out_of_stock`, names the product) or a product no longer sold (`product_unavailable`)", body = ApiError),
        (status = 413, description = "The body is larger than 64 KiB", body = ApiError),
        (status = 422, description = "The cart is empty (`empty_cart`), or `Idempotency-Key` is missing or malformed (`fields`)", body = ApiError),
        (status = 503, description = "A backend did not answer in time; retry with the same key", body = ApiError),
    )
)]
async fn api_checkout(
    state: web::Data<AppState>,
    session: Session,
    req: HttpRequest,
    body: web::Payload,
) -> ApiResult<HttpResponse> {
    let _ = crate::input::read_body(&req, body).await?;
    let user = session.require_user(&state.store).await?;
    let key = req
        .headers()
        .get("idempotency-key")
        .ok_or_else(|| AppError::field("Idempotency-Key", "header is required (a fresh UUID per checkout)"))?
        .to_str()
        .map_err(|_| AppError::field("Idempotency-Key", "must be visible ASCII"))?;
    let key = idempotency_key(key).map_err(|m| AppError::field("Idempotency-Key", m))?;
    let c = checkout(&state, &user, &key).await?;
    Ok(if c.created { HttpResponse::Created() } else { HttpResponse::Ok() }.json(c.order))
}

/// The customer's orders, newest first.
#[utoipa::path(
    get,
    path = "/api/orders",
    operation_id = "listOrders",
    tag = "orders",
    security(("session" = [])),
    responses(
        (status = 200, description = "The orders (the latest 200)", body = OrderList),
        (status = 401, description = "Not logged in", body = ApiError),
        (status = 503, description = "A backend did not answer in time; retry", body = ApiError),
    )
)]
async fn api_list(state: web::Data<AppState>, session: Session) -> ApiResult<HttpResponse> {
    let user = session.require_user(&state.store).await?;
    Ok(HttpResponse::Ok().json(OrderList { items: list_for_user(&state.db, user.id).await? }))
}

/// One of the customer's orders.
#[utoipa::path(
    get,
    path = "/api/orders/{id}",
    operation_id = "getOrder",
    tag = "orders",
    params(("id" = i64, Path, minimum = 1, example = 1, description = "Order id")),
    security(("session" = [])),
    responses(
        (status = 200, description = "The order", body = Order),
        (status = 401, description = "Not logged in", body = ApiError),
        (status = 404, description = "No such order of this customer (another customer's order included)", body = ApiError),
        (status = 503, description = "A backend did not answer in time; retry", body = ApiError),
    )
)]
async fn api_get(
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let user = session.require_user(&state.store).await?;
    let id = path_id(&id, "order")?;
    let order = find_for_user(&state.db, user.id, id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("you have no order {id}")))?;
    Ok(HttpResponse::Ok().json(order))
}

/// Cancel a placed order; its stock returns. Cancelling a cancelled order again is a 200 (a
/// retry is safe; the stock returns once).
#[utoipa::path(
    post,
    path = "/api/orders/{id}/cancel",
    operation_id = "cancelOrder",
    tag = "orders",
    request_body = EmptyBody,
    params(("id" = i64, Path, minimum = 1, example = 1, description = "Order id")),
    security(("session" = [])),
    responses(
        (status = 200, description = "The order, cancelled", body = Order),
        (status = 401, description = "Not logged in", body = ApiError),
        (status = 404, description = "No such order of this customer", body = ApiError),
        (status = 409, description = "The order is confirmed or shipped (`invalid_transition`)", body = ApiError),
        (status = 503, description = "A backend did not answer in time; retry", body = ApiError),
    )
)]
async fn api_cancel(
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let user = session.require_user(&state.store).await?;
    let id = path_id(&id, "order")?;
    Ok(HttpResponse::Ok().json(cancel(&state, user.id, id).await?))
}

// --- HTML ----------------------------------------------------------------------------------

/// The user, or a redirect to the login page that comes back here.
pub async fn user_or_login(
    state: &AppState,
    session: &Session,
    back: &str,
) -> Result<Result<CurrentUser, HttpResponse>, AppError> {
    Ok(match session.user(&state.store).await? {
        Some(u) => Ok(u),
        None => Err(see_other(&format!(
            "/login?next={}",
            serde_urlencoded::to_string([("", back)]).unwrap_or_default().trim_start_matches('=')
        ))),
    })
}

async fn checkout_page(
    state: &AppState,
    session: &Session,
    error: Option<String>,
    status: StatusCode,
) -> HtmlResult<HttpResponse> {
    let (mut ctx, user) = page(state, session, "Checkout").await?;
    let Some(user) = user else { return Ok(see_other("/login?next=/checkout")) };
    let cart = cart::view(state, &CartOwner::Account(user.id)).await?;
    ctx.insert("cart", &cart);
    ctx.insert("idempotency_key", &uuid::Uuid::new_v4().to_string());
    ctx.insert("error", &error);
    Ok(render_status(status, "orders/checkout.html", &ctx)?)
}

async fn page_checkout(state: web::Data<AppState>, session: Session) -> HtmlResult<HttpResponse> {
    checkout_page(&state, &session, None, StatusCode::OK).await
}

async fn form_checkout(
    state: web::Data<AppState>,
    session: Session,
    req: HttpRequest,
    body: web::Payload,
) -> HtmlResult<HttpResponse> {
    let f = crate::web::form(&req, body, &session).await?;
    let user = match user_or_login(&state, &session, "/checkout").await? {
        Ok(u) => u,
        Err(redirect) => return Ok(redirect),
    };
    let key = f
        .str("idempotency_key")
        .and_then(|k| idempotency_key(&k))
        .map_err(|m| AppError::field("idempotency_key", m))?;
    match checkout(&state, &user, &key).await {
        Ok(c) => Ok(see_other(&format!("/orders/{}?notice=placed", c.order.id))),
        Err(e @ (AppError::Conflict { .. } | AppError::Unprocessable { .. })) => {
            let status = actix_web::ResponseError::status_code(&e);
            checkout_page(&state, &session, Some(e.public_message()), status).await
        }
        Err(e) => Err(HtmlError(e)),
    }
}

async fn page_orders(state: web::Data<AppState>, session: Session) -> HtmlResult<HttpResponse> {
    let user = match user_or_login(&state, &session, "/orders").await? {
        Ok(u) => u,
        Err(redirect) => return Ok(redirect),
    };
    let (mut ctx, _) = page(&state, &session, "Your orders").await?;
    ctx.insert("orders", &list_for_user(&state.db, user.id).await?);
    Ok(render("orders/list.html", &ctx)?)
}

async fn page_order(
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<String>,
    req: HttpRequest,
) -> HtmlResult<HttpResponse> {
    let id = path_id(&id, "order")?;
    let user = match user_or_login(&state, &session, &format!("/orders/{id}")).await? {
        Ok(u) => u,
        Err(redirect) => return Ok(redirect),
    };
    let order = find_for_user(&state.db, user.id, id)
        .await?
        .ok_or_else(|| AppError::NotFound("You have no such order.".into()))?;
    let (mut ctx, _) = page(&state, &session, &format!("Order #{id}")).await?;
    ctx.insert("order", &order);
    ctx.insert("notice", &query_map(&req)?.get("notice").and_then(|n| crate::web::notice(n)));
    Ok(render("orders/detail.html", &ctx)?)
}

async fn form_cancel(
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<String>,
    req: HttpRequest,
    body: web::Payload,
) -> HtmlResult<HttpResponse> {
    crate::web::form(&req, body, &session).await?;
    let id = path_id(&id, "order")?;
    let user = match user_or_login(&state, &session, &format!("/orders/{id}")).await? {
        Ok(u) => u,
        Err(redirect) => return Ok(redirect),
    };
    cancel(&state, user.id, id).await?;
    Ok(see_other(&format!("/orders/{id}?notice=cancelled")))
}

pub fn configure_api(cfg: &mut web::ServiceConfig) {
    cfg.route("/orders", web::post().to(api_checkout))
        .route("/orders", web::get().to(api_list))
        .route("/orders/{id}", web::get().to(api_get))
        .route("/orders/{id}/cancel", web::post().to(api_cancel));
}

pub fn configure_pages(cfg: &mut web::ServiceConfig) {
    cfg.route("/checkout", web::get().to(page_checkout))
        .route("/checkout", web::post().to(form_checkout))
        .route("/orders", web::get().to(page_orders))
        .route("/orders/{id}", web::get().to(page_order))
        .route("/orders/{id}/cancel", web::post().to(form_cancel));
}
