//! The orders' HTML pages and forms.

use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse};

use crate::{
    areas::cart,
    domain::CartOwner,
    edge::input::{idempotency_key, path_id},
    edge::session::{CurrentUser, Session},
    edge::web::{page, query_map, render, render_status, see_other},
    error::{AppError, HtmlError, HtmlResult},
    state::AppState,
};

use super::{
    repo::{find_for_user, list_for_user},
    rules::{cancel, checkout},
};

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

pub(super) async fn page_checkout(state: web::Data<AppState>, session: Session) -> HtmlResult<HttpResponse> {
    checkout_page(&state, &session, None, StatusCode::OK).await
}

pub(super) async fn form_checkout(
    state: web::Data<AppState>,
    session: Session,
    req: HttpRequest,
    body: web::Payload,
) -> HtmlResult<HttpResponse> {
    let f = crate::edge::web::form(&req, body, &session).await?;
    let user = match user_or_login(&state, &session, "/checkout").await? {
        Ok(u) => u,
        Err(redirect) => return Ok(redirect),
    };
    let key = f
        .str("idempotency_key")
        .and_then(|k| idempotency_key(&k))
        .map_err(|m| AppError::field("idempotency_key", m))?;
    match checkout(&state, &user, &key, crate::edge::telemetry::incoming_request_id(&req)).await {
        Ok(c) => Ok(see_other(&format!("/orders/{}?notice=placed", c.order.id))),
        Err(e @ (AppError::Conflict { .. } | AppError::Unprocessable { .. })) => {
            let status = actix_web::ResponseError::status_code(&e);
            checkout_page(&state, &session, Some(e.public_message()), status).await
        }
        Err(e) => Err(HtmlError(e)),
    }
}

pub(super) async fn page_orders(state: web::Data<AppState>, session: Session) -> HtmlResult<HttpResponse> {
    let user = match user_or_login(&state, &session, "/orders").await? {
        Ok(u) => u,
        Err(redirect) => return Ok(redirect),
    };
    let (mut ctx, _) = page(&state, &session, "Your orders").await?;
    ctx.insert("orders", &list_for_user(&state.db, user.id).await?);
    Ok(render("orders/list.html", &ctx)?)
}

pub(super) async fn page_order(
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
    ctx.insert("notice", &query_map(&req)?.get("notice").and_then(|n| crate::edge::web::notice(n)));
    Ok(render("orders/detail.html", &ctx)?)
}

pub(super) async fn form_cancel(
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<String>,
    req: HttpRequest,
    body: web::Payload,
) -> HtmlResult<HttpResponse> {
    crate::edge::web::form(&req, body, &session).await?;
    let id = path_id(&id, "order")?;
    let user = match user_or_login(&state, &session, &format!("/orders/{id}")).await? {
        Ok(u) => u,
        Err(redirect) => return Ok(redirect),
    };
    cancel(&state, user.id, id).await?;
    Ok(see_other(&format!("/orders/{id}?notice=cancelled")))
}
