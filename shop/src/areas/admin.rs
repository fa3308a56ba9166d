//! Admin: orders by status, with confirm and ship actions. Every route checks the admin role
//! (401 anonymous, 403 customers).

use actix_web::{web, HttpRequest, HttpResponse};

use crate::{
    areas::orders::{self, OrderList, OrderStatus, STATUSES},
    domain::OrderId,
    edge::extract::{Admin, Form, PageUser},
    edge::input::{path_id, Paging},
    edge::session::Session,
    edge::web::{insert_pager, page, query_map, render, see_other, EmptyBody},
    error::{ApiError, ApiResult, AppError, HtmlResult},
    state::AppState,
};

fn parse_status(raw: Option<&String>) -> Result<Option<OrderStatus>, AppError> {
    match raw.map(|s| s.trim()).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => OrderStatus::parse(s).map(Some).ok_or_else(|| {
            let names: Vec<&str> = STATUSES.iter().map(|s| s.as_str()).collect();
            AppError::field("status", format!("must be one of {}", names.join(", ")))
        }),
    }
}

/// All customers' orders, newest first, optionally of one status.
#[utoipa::path(
    get,
    path = "/api/admin/orders",
    operation_id = "adminListOrders",
    tag = "admin",
    params(
        ("status" = Option<orders::OrderStatus>, Query, description = "Only orders of this status"),
        ("page" = Option<u64>, Query, minimum = 1, maximum = 10000, description = "Page, from 1 (default 1)"),
        ("per_page" = Option<u64>, Query, minimum = 1, maximum = 200, description = "Orders per page (default 200)"),
    ),
    security(("session" = [])),
    responses(
        (status = 200, description = "A page of the orders, each with `customer_email`, and `total` on all pages", body = OrderList),
        (status = 400, description = "Malformed query string", body = ApiError),
        (status = 401, description = "Not logged in", body = ApiError),
        (status = 403, description = "Not an admin account", body = ApiError),
        (status = 422, description = "`status` is not one of placed, confirmed, shipped, cancelled, or `page`/`per_page` out of range; `fields` names each", body = ApiError),
        (status = 503, description = "A backend did not answer in time; retry", body = ApiError),
    )
)]
async fn api_list(state: web::Data<AppState>, _: Admin, req: HttpRequest) -> ApiResult<HttpResponse> {
    let q = query_map(&req)?;
    let status = parse_status(q.get("status"))?;
    let paging = Paging::parse(&q, orders::API_PER_PAGE, orders::MAX_PER_PAGE)?;
    Ok(HttpResponse::Ok().json(OrderList::new(orders::list_all(&state.db, status, paging).await?, paging)))
}

/// Confirm a placed order (again on a confirmed one: 200, no change).
#[utoipa::path(
    post,
    path = "/api/admin/orders/{id}/confirm",
    operation_id = "adminConfirmOrder",
    tag = "admin",
    request_body = EmptyBody,
    params(("id" = i64, Path, minimum = 1, example = 1, description = "Order id")),
    security(("session" = [])),
    responses(
        (status = 200, description = "The order, confirmed", body = orders::Order),
        (status = 401, description = "Not logged in", body = ApiError),
        (status = 403, description = "Not an admin account, or a foreign `Origin`", body = ApiError),
        (status = 404, description = "No such order", body = ApiError),
        (status = 409, description = "The order is not placed (`invalid_transition`)", body = ApiError),
        (status = 503, description = "A backend did not answer in time; retry", body = ApiError),
    )
)]
async fn api_confirm(state: web::Data<AppState>, _: Admin, id: web::Path<String>) -> ApiResult<HttpResponse> {
    let id = OrderId(path_id(&id, "order")?);
    Ok(HttpResponse::Ok().json(orders::transition(&state, id, OrderStatus::Confirmed).await?))
}

/// Ship a confirmed order (again on a shipped one: 200, no change).
#[utoipa::path(
    post,
    path = "/api/admin/orders/{id}/ship",
    operation_id = "adminShipOrder",
    tag = "admin",
    request_body = EmptyBody,
    params(("id" = i64, Path, minimum = 1, example = 1, description = "Order id")),
    security(("session" = [])),
    responses(
        (status = 200, description = "The order, shipped", body = orders::Order),
        (status = 401, description = "Not logged in", body = ApiError),
        (status = 403, description = "Not an admin account, or a foreign `Origin`", body = ApiError),
        (status = 404, description = "No such order", body = ApiError),
        (status = 409, description = "The order is not confirmed (`invalid_transition`)", body = ApiError),
        (status = 503, description = "A backend did not answer in time; retry", body = ApiError),
    )
)]
async fn api_ship(state: web::Data<AppState>, _: Admin, id: web::Path<String>) -> ApiResult<HttpResponse> {
    let id = OrderId(path_id(&id, "order")?);
    Ok(HttpResponse::Ok().json(orders::transition(&state, id, OrderStatus::Shipped).await?))
}

async fn page_orders(
    state: web::Data<AppState>,
    session: Session,
    PageUser(user): PageUser,
    req: HttpRequest,
) -> HtmlResult<HttpResponse> {
    if !user.is_admin() {
        return Err(AppError::Forbidden("this needs an admin account".into()).into());
    }
    let q = query_map(&req)?;
    let status = parse_status(q.get("status"))?;
    let paging = Paging::parse(&q, orders::PAGE_PER_PAGE, orders::MAX_PER_PAGE)?;
    let (list, total) = orders::list_all(&state.db, status, paging).await?;
    let (mut ctx, _) = page(&state, &session, "Admin: orders").await?;
    ctx.insert("orders", &list);
    insert_pager(&mut ctx, paging, total, |n| {
        let page = paging.page_query(n, orders::PAGE_PER_PAGE);
        match status {
            Some(s) => format!("/admin/orders?status={s}&{page}"),
            None => format!("/admin/orders?{page}"),
        }
    });
    ctx.insert("status", &status);
    ctx.insert("statuses", &STATUSES);
    ctx.insert("notice", &q.get("notice").and_then(|n| crate::edge::web::notice(n)));
    Ok(render("admin/orders.html", &ctx)?)
}

async fn form_action(
    state: web::Data<AppState>,
    session: Session,
    path: web::Path<(String, String)>,
    Form(f): Form,
) -> HtmlResult<HttpResponse> {
    session.require_admin(&state.store).await?;
    let (id, action) = path.into_inner();
    let id = OrderId(path_id(&id, "order")?);
    let to = match action.as_str() {
        "confirm" => OrderStatus::Confirmed,
        "ship" => OrderStatus::Shipped,
        _ => return Err(AppError::NotFound("no such action".into()).into()),
    };
    orders::transition(&state, id, to).await?;
    // the list the admin came from; else the one the order just left
    let from = to.comes_from().unwrap_or(OrderStatus::Placed);
    let back = parse_status(f.opt_str("status").ok().flatten().as_ref()).ok().flatten().unwrap_or(from);
    // and the page of that list the admin was on (a bad value: the first page)
    let page = f.int("page").ok().filter(|p| (2..=Paging::MAX_PAGE as i64).contains(p));
    Ok(see_other(&match page {
        Some(p) => format!("/admin/orders?status={back}&page={p}&notice={to}"),
        None => format!("/admin/orders?status={back}&notice={to}"),
    }))
}

pub fn configure_api(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/orders", web::get().to(api_list))
        .route("/admin/orders/{id}/confirm", web::post().to(api_confirm))
        .route("/admin/orders/{id}/ship", web::post().to(api_ship));
}

pub fn configure_pages(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/orders", web::get().to(page_orders))
        .route("/admin/orders/{id}/{action}", web::post().to(form_action));
}
