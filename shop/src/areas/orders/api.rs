//! The orders' JSON API.

use actix_web::{web, HttpRequest, HttpResponse};

use crate::{
    domain::OrderId,
    edge::extract::{IdempotencyKey, IgnoredBody, User},
    edge::input::{path_id, Paging},
    edge::session::Session,
    edge::web::query_map,
    edge::web::EmptyBody,
    error::{ApiError, ApiResult, AppError},
    state::AppState,
};

use super::{
    repo::{find_for_user, list_for_user, Order, OrderList, API_PER_PAGE, MAX_PER_PAGE},
    rules::{cancel, checkout},
};

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
pub async fn api_checkout(
    state: web::Data<AppState>,
    session: Session,
    req: HttpRequest,
    _body: IgnoredBody,
) -> ApiResult<HttpResponse> {
    // in this order, after the body: 401 before a missing key's 422 (see edge::extract)
    let user = session.require_user(&state.store).await?;
    let IdempotencyKey(key) = IdempotencyKey::of(&req)?;
    let c = checkout(&state, &user, &key, crate::edge::telemetry::incoming_request_id(&req)).await?;
    Ok(if c.created { HttpResponse::Created() } else { HttpResponse::Ok() }.json(c.order))
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
