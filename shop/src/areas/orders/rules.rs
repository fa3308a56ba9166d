//! What changes an order: checkout (idempotent, one transaction), cancellation, and the admin's
//! status transitions. See the area's docs ([`super`]) for why checkout inserts the order first.

use crate::{
    domain::{CartLine, CartOwner, OrderId, OrderStatus, ShippingAddress, UserId},
    edge::session::CurrentUser,
    error::AppError,
    infra::db::{self, DbError, TxError},
    state::AppState,
};

use super::repo::{find, find_by_key, find_for_user, Order, OrderItem};

/// A replayed checkout empties the cart of its order's lines only this long after the order
/// was placed (less than the store remembers that it did so already).
const REPLAY_TAKES_CART_MS: i64 = 10 * 60 * 1000;

/// What a checkout is asked for.
pub struct Placing<'a> {
    /// The `Idempotency-Key`: one order per key.
    pub key: &'a str,
    /// The request's `X-Request-Id` (the same for nginx's retries of one client request).
    pub request_id: Option<&'a str>,
    /// Where it goes (a replay keeps the first one's).
    pub address: Option<&'a ShippingAddress>,
    /// The total the shopper was shown: if prices or the cart changed since, no order (409
    /// `cart_changed`), so nobody pays what they did not see.
    pub expected_total_cents: Option<i64>,
}

/// The result of a checkout: the order, and whether this call created it.
pub struct Checkout {
    pub order: Order,
    pub created: bool,
}

enum Attempt {
    Placed(Box<Order>),
    AlreadyPlaced,
}

/// The answer for a key that has placed its order already. Created (201) when this very request
/// placed it and the answer was lost: nginx sending the request again to the next replica (it
/// keeps the request id) after the first committed and died. The client sent one request, so it
/// gets the answer of one, not the 200 of a replay (which would tell it that it had retried). A
/// client's own retry has another request id and gets the 200. The order row says which request
/// placed it (written in the same transaction, as durable as the order); only where a request id
/// is missing does this call's own lost commit (`commit_unknown`) decide.
async fn answer_placed(
    state: &AppState,
    owner: &CartOwner,
    order: Order,
    request_id: Option<&str>,
    commit_unknown: bool,
) -> Checkout {
    let created = match (order.placed_by.as_deref(), request_id) {
        (Some(placed_by), Some(this)) => placed_by == this,
        _ => commit_unknown,
    };
    crate::infra::metrics::record_checkout(if created { "placed" } else { "replayed" });
    if created {
        state.stock_changed(order.items.iter().map(|i| i.product_id)).await;
        tracing::info!(
            order.id = order.id.0,
            "order placed (an earlier attempt committed, its answer was lost)"
        );
    }
    take_replayed(state, owner, &order).await;
    Checkout { order, created }
}

/// Turn the user's cart into an order, exactly once per idempotency key. `request_id`: the
/// request's `X-Request-Id` (the same for nginx's retries of one client request).
///
/// No look-up of the key comes first: the order's unique key (user, idempotency key) is the
/// authority, and the transaction's first statement runs into it when the key placed an order
/// already. A first checkout costs one transaction and one cart write; a replay a rolled-back
/// insert and the order's read.
#[tracing::instrument(skip_all, fields(user.id = user.id.0))]
pub async fn checkout(
    state: &AppState,
    user: &CurrentUser,
    what: &Placing<'_>,
) -> Result<Checkout, AppError> {
    let (key, request_id) = (what.key, what.request_id);
    let owner = CartOwner::Account(user.id);
    let cart = state.store.cart_get(&owner).await;
    let lines = match cart {
        Ok(ref lines) if !lines.is_empty() => lines,
        // An empty cart is the usual replay: the first attempt emptied it after its commit (or a
        // concurrent request with this key — a double click, a client or nginx retry — placed
        // the order and emptied it since, after its commit, so the order is visible). Without the
        // cart no order can be placed, but a replay is answered from the database alone (a retry
        // during a Redis failover gets its order).
        _ => {
            if let Some(order) = find_by_key(&state.db, user.id, key).await? {
                return Ok(answer_placed(state, &owner, order, request_id, false).await);
            }
            return Err(match cart {
                Ok(_) => {
                    crate::infra::metrics::record_checkout("empty_cart");
                    AppError::Unprocessable { code: "empty_cart", message: "your cart is empty".into() }
                }
                Err(e) => {
                    crate::infra::metrics::record_checkout("failed");
                    e.into()
                }
            });
        }
    };
    // Set when an attempt of *this* call sent COMMIT and lost the answer (a connection cut right
    // after it, a statement timeout during a Galera stall): the commit may have happened, so a
    // later attempt that finds the key taken found the order this call made.
    let commit_unknown = std::sync::atomic::AtomicBool::new(false);
    let attempt = db::retry("checkout", || place(state, user.id, what, lines, &commit_unknown)).await;
    let attempt = match attempt {
        Ok(a) => a,
        Err(e) => {
            crate::infra::metrics::record_checkout(if matches!(e, AppError::Conflict { .. }) {
                "out_of_stock"
            } else {
                "failed"
            });
            return Err(e);
        }
    };
    match attempt {
        Attempt::Placed(order) => {
            // The order is committed; emptying the cart is best effort and must not fail the checkout.
            // The order's lines only: a line left out (its product hidden) stays in the cart.
            let taken: Vec<CartLine> = order
                .items
                .iter()
                .map(|i| CartLine { product_id: i.product_id, quantity: i.quantity })
                .collect();
            if let Err(e) = state.store.cart_take(&owner, order.id, &taken).await {
                tracing::warn!(order.id = order.id.0, error = %e, "order placed but cart not emptied");
            }
            crate::infra::metrics::record_checkout("placed");
            state.stock_changed(taken.iter().map(|l| l.product_id)).await;
            tracing::info!(order.id = order.id.0, "order placed");
            Ok(Checkout { order: *order, created: true })
        }
        Attempt::AlreadyPlaced => match find_by_key(&state.db, user.id, key).await? {
            Some(order) => Ok(answer_placed(
                state,
                &owner,
                order,
                request_id,
                commit_unknown.load(std::sync::atomic::Ordering::Relaxed),
            )
            .await),
            None => {
                crate::infra::metrics::record_checkout("failed");
                Err(AppError::Unavailable("the order is being placed, please retry".into()))
            }
        },
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
        tracing::warn!(order.id = order.id.0, error = %e, "replayed order: cart not emptied");
    }
}

/// One attempt of the checkout transaction. `commit_unknown` is set if its COMMIT went out and
/// no answer came back (not for a conflict: a transaction that lost one was rolled back). The
/// order it answers is made of the transaction's own rows, not read back after the commit.
async fn place(
    state: &AppState,
    user_id: UserId,
    what: &Placing<'_>,
    lines: &[CartLine],
    commit_unknown: &std::sync::atomic::AtomicBool,
) -> Result<Attempt, TxError> {
    let (key, request_id, address) = (what.key, what.request_id, what.address);
    let tx = db::begin(&state.db).await?;
    let now = db::now_ms();
    let part = |i: usize| address.map(|a| a.parts()[i].to_string());
    let inserted = db::exec(
        &tx,
        "INSERT INTO orders (user_id, idempotency_key, status, total_cents, currency, created_at, updated_at, placed_by,
             ship_name, ship_street, ship_postcode, ship_city, ship_country)
         VALUES (?, ?, ?, 0, 'EUR', ?, ?, ?, ?, ?, ?, ?, ?)",
        vec![
            user_id.into(),
            key.into(),
            OrderStatus::Placed.as_str().into(),
            now.into(),
            now.into(),
            request_id.map(str::to_string).into(),
            part(0).into(),
            part(1).into(),
            part(2).into(),
            part(3).into(),
            part(4).into(),
        ],
    )
    .await;
    let order_id = match inserted {
        Ok((_, id)) => OrderId(id as i64),
        Err(DbError::Unique(_)) => return Ok(Attempt::AlreadyPlaced),
        Err(e) => return Err(e.into()),
    };
    let mut items = Vec::with_capacity(lines.len());
    let mut total = 0i64;
    // Lines are sorted by product id: every checkout locks rows in the same order (no deadlock cycles).
    for &CartLine { product_id: pid, quantity: qty } in lines {
        // a hidden product is no longer sold, also from carts that hold it already
        let (taken, _) = db::exec(
            &tx,
            "UPDATE products SET stock = stock - ? WHERE id = ? AND stock >= ? AND hidden = 0",
            vec![qty.into(), pid.into(), qty.into()],
        )
        .await?;
        let row = db::one(
            &tx,
            "SELECT sku, name, price_cents, stock FROM products WHERE id = ? AND hidden = 0",
            vec![pid.into()],
        )
        .await?;
        // A product no longer sold (hidden by the admin) is left out, as the cart and checkout
        // pages leave it out: the order holds what the shopper saw. Its line stays in the cart
        // and shows again if the product comes back.
        let Some(row) = row else {
            continue;
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
        let item = OrderItem {
            product_id: pid,
            sku: db::get(&row, "sku")?,
            name,
            quantity: qty,
            unit_price_cents: price,
            line_total_cents: price * qty,
        };
        db::exec(
            &tx,
            "INSERT INTO order_items (order_id, product_id, sku, name, unit_price_cents, quantity, line_total_cents)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
            vec![
                order_id.into(),
                pid.into(),
                item.sku.as_str().into(),
                item.name.as_str().into(),
                price.into(),
                qty.into(),
                item.line_total_cents.into(),
            ],
        )
        .await?;
        items.push(item);
        total += price * qty;
    }
    if items.is_empty() {
        return Err(AppError::Unprocessable {
            code: "empty_cart",
            message: "nothing in your cart is sold any more".into(),
        }
        .into());
    }
    if what.expected_total_cents.is_some_and(|shown| shown != total) {
        return Err(AppError::Conflict {
            code: "cart_changed",
            message: format!(
                "prices or your cart changed since you looked: the total is now €{}; please check it and place the order again",
                crate::edge::input::euros(total)
            ),
        }
        .into());
    }
    db::exec(&tx, "UPDATE orders SET total_cents = ? WHERE id = ?", vec![total.into(), order_id.into()])
        .await?;
    if let Err(e) = db::commit(tx).await {
        if matches!(e, DbError::Timeout(_) | DbError::Unavailable(_)) {
            commit_unknown.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        return Err(e.into());
    }
    Ok(Attempt::Placed(Box::new(Order {
        id: order_id,
        user_id,
        status: OrderStatus::Placed,
        total_cents: total,
        currency: "EUR".into(),
        idempotency_key: key.to_string(),
        created_at: now,
        updated_at: now,
        items,
        shipping_address: address.cloned(),
        customer_email: None,
        placed_by: request_id.map(str::to_string),
    })))
}

/// Cancel a placed order of this user and return its stock.
pub async fn cancel(state: &AppState, user_id: UserId, id: OrderId) -> Result<Order, AppError> {
    // the products whose stock came back (none when it was cancelled already)
    let returned = db::retry("cancel", || async {
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
                // Its products are still named: an earlier attempt may have committed and lost
                // its answer before this replica's caches heard of it.
                Some(o) if o.status == OrderStatus::Cancelled => {
                    Ok(o.items.iter().map(|i| i.product_id).collect())
                }
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
        for &CartLine { product_id: pid, quantity: qty } in &lines {
            db::exec(&tx, "UPDATE products SET stock = stock + ? WHERE id = ?", vec![qty.into(), pid.into()])
                .await?;
        }
        db::commit(tx).await?;
        Ok(lines.iter().map(|l| l.product_id).collect::<Vec<_>>())
    })
    .await?;
    state.stock_changed(returned).await;
    tracing::info!(order.id = id.0, "order cancelled");
    find(&state.db, id).await?.ok_or_else(|| AppError::NotFound(format!("no order {id}")))
}

/// Admin transition to `to` from the one status that may become it (placed → confirmed,
/// confirmed → shipped; see [`OrderStatus::comes_from`]).
pub async fn transition(state: &AppState, id: OrderId, to: OrderStatus) -> Result<Order, AppError> {
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
    tracing::info!(order.id = id.0, status = to.as_str(), "order status changed");
    Ok(order)
}
