//! The orders' JSON API.

use actix_web::{web, HttpRequest, HttpResponse};
use utoipa::ToSchema;

use crate::{
    domain::{OrderId, ShippingAddress},
    edge::extract::{IdempotencyKey, JsonFields, User},
    edge::input::{address, path_id, Fields, Paging, Validator},
    edge::session::Session,
    edge::web::query_map,
    edge::web::EmptyBody,
    error::{ApiError, ApiResult, AppError},
    state::AppState,
};

use super::{
    repo::{find_for_user, list_for_user, Order, OrderList, API_PER_PAGE, MAX_PER_PAGE},
    rules::{cancel, checkout, Placing},
};

/// A checkout's body: where the order goes. The body may be empty (`{}`, or none): an order
/// without an address (the shop's HTML checkout always asks for one).
#[derive(ToSchema)]
pub struct CheckoutRequest {
    #[schema(nullable = false)]
    pub shipping_address: Option<ShippingAddress>,
    /// The total the client showed the shopper: if prices or the cart changed since, no order
    /// is placed (409 `cart_changed`).
    #[schema(nullable = false, minimum = 0)]
    pub expected_total_cents: Option<i64>,
}

/// Check out the account's cart in one transaction, at most once per `Idempotency-Key`.
///
/// The same key again answers 200 with the order it placed (and the address it was placed
/// with), so a retry is always safe.
#[utoipa::path(
    post,
    path = "/api/orders",
    operation_id = "checkout",
    tag = "orders",
    request_body = CheckoutRequest,
    params(("Idempotency-Key" = String, Header, pattern = "^[A-Za-z0-9_-]{8,64}$",
        description = "Required: a fresh key (a UUID) per checkout, the same one for its retries")),
    security(("session" = [])),
    responses(
        (status = 201, description = "The order, placed now", body = Order),
        (status = 200, description = "The order this key already placed", body = Order),
        (status = 400, description = "The body is not a JSON object", body = ApiError),
        (status = 401, description = "Not logged in", body = ApiError),
        (status = 409, description = "Not enough stock (`out_of_stock`, names the product), or the total is not `expected_total_cents` (`cart_changed`). Lines of products no longer sold (hidden by the admin) are left out of the order and stay in the cart", body = ApiError),
        (status = 413, description = "The body is larger than 64 KiB", body = ApiError),
        (status = 422, description = "The cart is empty (`empty_cart`), or `Idempotency-Key` is missing or malformed, or a part of `shipping_address` is invalid (`fields` names each, e.g. `shipping_address.city`)", body = ApiError),
        (status = 503, description = "A backend did not answer in time; retry with the same key", body = ApiError),
    )
)]
pub async fn api_checkout(
    state: web::Data<AppState>,
    session: Session,
    req: HttpRequest,
    JsonFields(f): JsonFields,
) -> ApiResult<HttpResponse> {
    // in this order, after the body: 401 before a missing key's 422 (see edge::extract)
    let user = session.require_user(&state.store).await?;
    let IdempotencyKey(key) = IdempotencyKey::of(&req)?;
    let address = shipping_address(&f)?;
    let expected_total_cents =
        f.opt_int("expected_total_cents").map_err(|m| AppError::field("expected_total_cents", m))?;
    let what = Placing {
        key: &key,
        request_id: crate::edge::telemetry::incoming_request_id(&req),
        address: address.as_ref(),
        expected_total_cents,
    };
    let c = checkout(&state, &user, &what).await?;
    Ok(if c.created { HttpResponse::Created() } else { HttpResponse::Ok() }.json(c.order))
}

/// The body's `shipping_address`, if it has one (422 naming each bad part).
fn shipping_address(f: &Fields) -> Result<Option<ShippingAddress>, AppError> {
    const FIELD: &str = "shipping_address";
    let Some(inner) = f.opt_object(FIELD).map_err(|m| AppError::field(FIELD, m))? else {
        return Ok(None);
    };
    let mut v = Validator::default();
    let address = address(&inner, str::to_string, |part| format!("{FIELD}.{part}"), &mut v);
    v.finish()?;
    Ok(address)
}

/// The customer's orders, newest first, a page at a time.
#[utoipa::path(
    get,
    path = "/api/orders",
    operation_id = "listOrders",
    tag = "orders",
    params(
        ("page" = Option<u64>, Query, minimum = 1, maximum = 10000, description = "Page, from 1 (default 1)"),
        ("per_page" = Option<u64>, Query, minimum = 1, maximum = 200, description = "Orders per page (default 200)"),
    ),
    security(("session" = [])),
    responses(
        (status = 200, description = "A page of the orders, with `total` on all pages", body = OrderList),
        (status = 400, description = "Malformed query string", body = ApiError),
        (status = 401, description = "Not logged in", body = ApiError),
        (status = 422, description = "`page` or `per_page` out of range; `fields` names each", body = ApiError),
        (status = 503, description = "A backend did not answer in time; retry", body = ApiError),
    )
)]
pub async fn api_list(
    state: web::Data<AppState>,
    User(user): User,
    req: HttpRequest,
) -> ApiResult<HttpResponse> {
    let paging = Paging::parse(&query_map(&req)?, API_PER_PAGE, MAX_PER_PAGE)?;
    Ok(HttpResponse::Ok().json(OrderList::new(list_for_user(&state.db, user.id, paging).await?, paging)))
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
pub async fn api_get(
    state: web::Data<AppState>,
    User(user): User,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let id = OrderId(path_id(&id, "order")?);
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
pub async fn api_cancel(
    state: web::Data<AppState>,
    User(user): User,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let id = OrderId(path_id(&id, "order")?);
    Ok(HttpResponse::Ok().json(cancel(&state, user.id, id).await?))
}
