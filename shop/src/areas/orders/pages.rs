//! The orders' HTML pages and forms.

use std::collections::HashMap;

use actix_web::{web, HttpRequest, HttpResponse};

use crate::{
    areas::cart,
    domain::{CartOwner, OrderId, ADDRESS_PARTS},
    edge::extract::{Form, PageUser},
    edge::input::{address, idempotency_key, path_id, Paging, Validator},
    edge::session::{CurrentUser, Session},
    edge::web::{insert_pager, page, query_map, render, render_form, see_other},
    error::{AppError, HtmlError, HtmlResult},
    state::AppState,
};

use super::{
    repo::{find_for_user, last_shipping_address, list_for_user, MAX_PER_PAGE, PAGE_PER_PAGE},
    rules::{cancel, checkout, Placing},
};

/// The checkout form's address field of `part` (`ship_city`).
fn ship_field(part: &str) -> String {
    format!("ship_{part}")
}

/// The checkout page: the cart, the address form (`entered`: what to show in its fields, by
/// part) and an error with the bad fields, if any.
async fn checkout_page(
    state: &AppState,
    session: &Session,
    user: &CurrentUser,
    entered: &HashMap<&str, String>,
    error: Option<&AppError>,
) -> HtmlResult<HttpResponse> {
    let (mut ctx, _) = page(state, session, "Checkout").await?;
    let cart = cart::view(state, &CartOwner::Account(user.id)).await?;
    ctx.insert("cart", &cart);
    ctx.insert("idempotency_key", &uuid::Uuid::new_v4().to_string());
    ctx.insert("address", entered);
    Ok(render_form("orders/checkout.html", &mut ctx, error)?)
}

pub(super) async fn page_checkout(
    state: web::Data<AppState>,
    session: Session,
    PageUser(user): PageUser,
) -> HtmlResult<HttpResponse> {
    // the address of the last order, or the account's name to start with
    let entered: HashMap<&str, String> = match last_shipping_address(&state.db, user.id).await? {
        Some(a) => ADDRESS_PARTS.into_iter().zip(a.parts().map(str::to_string)).collect(),
        None => HashMap::from([("name", user.name.clone())]),
    };
    checkout_page(&state, &session, &user, &entered, None).await
}

pub(super) async fn form_checkout(
    state: web::Data<AppState>,
    session: Session,
    req: HttpRequest,
    Form(f): Form,
) -> HtmlResult<HttpResponse> {
    let user = session.login_first(&state.store, "/checkout").await?;
    let key = f
        .str("idempotency_key")
        .and_then(|k| idempotency_key(&k))
        .map_err(|m| AppError::field("idempotency_key", m))?;
    let entered: HashMap<&str, String> = ADDRESS_PARTS
        .into_iter()
        .map(|p| (p, f.opt_str(&ship_field(p)).ok().flatten().unwrap_or_default()))
        .collect();
    let mut v = Validator::default();
    let address = address(&f, ship_field, ship_field, &mut v);
    // the total the page showed (a page without it: not compared)
    let shown = v.check("expected_total_cents", f.opt_int("expected_total_cents"));
    let result = match (v.finish(), address, shown) {
        (Ok(()), Some(address), Some(expected_total_cents)) => {
            let what = Placing {
                key: &key,
                request_id: crate::edge::telemetry::incoming_request_id(&req),
                address: Some(&address),
                expected_total_cents,
            };
            checkout(&state, &user, &what).await
        }
        (Err(e), ..) => Err(e),
        _ => Err(AppError::BadRequest("the address is incomplete".into())),
    };
    match result {
        Ok(c) => Ok(see_other(&format!("/orders/{}?notice=placed", c.order.id))),
        Err(e @ (AppError::Conflict { .. } | AppError::Unprocessable { .. } | AppError::Validation(_))) => {
            checkout_page(&state, &session, &user, &entered, Some(&e)).await
        }
        Err(e) => Err(HtmlError(e)),
    }
}

pub(super) async fn page_orders(
    state: web::Data<AppState>,
    session: Session,
    PageUser(user): PageUser,
    req: HttpRequest,
) -> HtmlResult<HttpResponse> {
    let paging = Paging::parse(&query_map(&req)?, PAGE_PER_PAGE, MAX_PER_PAGE)?;
    let (orders, total) = list_for_user(&state.db, user.id, paging).await?;
    let (mut ctx, _) = page(&state, &session, "Your orders").await?;
    ctx.insert("orders", &orders);
    insert_pager(&mut ctx, paging, total, |n| format!("/orders?{}", paging.page_query(n, PAGE_PER_PAGE)));
    Ok(render("orders/list.html", &ctx)?)
}

pub(super) async fn page_order(
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<String>,
    req: HttpRequest,
) -> HtmlResult<HttpResponse> {
    let id = OrderId(path_id(&id, "order")?);
    // the id is checked first: a malformed one is a 404 whether logged in or not
    let user = session.login_first(&state.store, &format!("/orders/{id}")).await?;
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
    _form: Form,
) -> HtmlResult<HttpResponse> {
    let id = OrderId(path_id(&id, "order")?);
    // after the login, back to the order's page (this path takes POSTs only)
    let user = session.login_first(&state.store, &format!("/orders/{id}")).await?;
    cancel(&state, user.id, id).await?;
    Ok(see_other(&format!("/orders/{id}?notice=cancelled")))
}
