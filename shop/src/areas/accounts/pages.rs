//! The login and registration pages and forms.

use actix_web::{web, HttpRequest, HttpResponse};

use crate::{
    areas::orders,
    edge::extract::{Form, PageUser},
    edge::input::Email,
    edge::input::Paging,
    edge::security,
    edge::session::CurrentUser,
    edge::session::Session,
    edge::web::{form_page, query_map, render, render_form, safe_next, see_other},
    error::{AppError, HtmlError, HtmlResult},
    state::AppState,
};

use super::{
    repo::find_by_id,
    rules::{change_password, login, parse_password_change, parse_registration, register},
};

/// Orders the account page lists (the rest are a click away, on `/orders`).
const RECENT_ORDERS: u64 = 5;

/// The account page: profile, recent orders, the password form (with `error`, if it failed).
async fn account_page(
    state: &AppState,
    session: &Session,
    user: &CurrentUser,
    notice: Option<&str>,
    error: Option<&AppError>,
) -> HtmlResult<HttpResponse> {
    let account = find_by_id(&state.db, user.id)
        .await?
        .ok_or_else(|| AppError::Unauthorized("the account no longer exists".into()))?;
    let (recent, total) =
        orders::list_for_user(&state.db, user.id, Paging { page: 1, per_page: RECENT_ORDERS }).await?;
    let (mut ctx, _) = form_page(state, session, "Your account").await?;
    ctx.insert("account", &account);
    ctx.insert("orders", &recent);
    ctx.insert("order_total", &total);
    ctx.insert("notice", &notice.and_then(crate::edge::web::notice));
    Ok(render_form("accounts/account.html", &mut ctx, error)?)
}

pub(super) async fn page_account(
    state: web::Data<AppState>,
    session: Session,
    PageUser(user): PageUser,
    req: HttpRequest,
) -> HtmlResult<HttpResponse> {
    let q = query_map(&req)?;
    account_page(&state, &session, &user, q.get("notice").map(String::as_str), None).await
}

pub(super) async fn form_password(
    state: web::Data<AppState>,
    session: Session,
    req: HttpRequest,
    Form(f): Form,
) -> HtmlResult<HttpResponse> {
    let user = session.login_first(&state.store, "/account").await?;
    let result = match parse_password_change(&f) {
        Ok(change) => change_password(&state, &session, &req, &user, change).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(done) => {
            let mut r = see_other("/account?notice=password_changed");
            r.add_cookie(&done.device_cookie).map_err(|e| AppError::Unexpected(e.into()))?;
            Ok(r)
        }
        Err(e @ (AppError::Validation(_) | AppError::TooManyRequests(..) | AppError::Unavailable(_))) => {
            account_page(&state, &session, &user, None, Some(&e)).await
        }
        Err(e) => Err(HtmlError(e)),
    }
}

pub(super) async fn page_login(
    state: web::Data<AppState>,
    session: Session,
    req: HttpRequest,
) -> HtmlResult<HttpResponse> {
    let q = query_map(&req)?;
    let (mut ctx, _) = form_page(&state, &session, "Log in").await?;
    ctx.insert("next", &safe_next(q.get("next").map(String::as_str)));
    ctx.insert("email", "");
    ctx.insert("error", &Option::<String>::None);
    ctx.insert("notice", &q.get("notice").and_then(|n| crate::edge::web::notice(n)));
    Ok(render("accounts/login.html", &ctx)?)
}

pub(super) async fn form_login(
    state: web::Data<AppState>,
    session: Session,
    req: HttpRequest,
    Form(f): Form,
) -> HtmlResult<HttpResponse> {
    let next = safe_next(f.opt_str("next").ok().flatten().as_deref());
    let email_raw = f.opt_str("email").ok().flatten().unwrap_or_default();
    let password = f.opt_str("password").ok().flatten().unwrap_or_default();
    let result = match Email::parse(&email_raw) {
        Ok(email) if !password.is_empty() && password.len() <= 1024 => {
            login(&state, &session, &req, email.as_str(), password).await
        }
        _ => Err(AppError::Unauthorized("Please enter your email and password.".into())),
    };
    match result {
        Ok(done) => {
            let mut r = see_other(&next);
            r.add_cookie(&done.device_cookie).map_err(|e| AppError::Unexpected(e.into()))?;
            Ok(r)
        }
        Err(e @ (AppError::Unauthorized(_) | AppError::TooManyRequests(..) | AppError::Unavailable(_))) => {
            let (mut ctx, _) = form_page(&state, &session, "Log in").await?;
            ctx.insert("next", &next);
            ctx.insert("email", &email_raw);
            ctx.insert("notice", &Option::<String>::None);
            Ok(render_form("accounts/login.html", &mut ctx, Some(&e))?)
        }
        Err(e) => Err(HtmlError(e)),
    }
}

pub(super) async fn page_register(state: web::Data<AppState>, session: Session) -> HtmlResult<HttpResponse> {
    let (mut ctx, _) = form_page(&state, &session, "Create an account").await?;
    ctx.insert("form", &serde_json::json!({"email": "", "name": ""}));
    ctx.insert("errors", &serde_json::json!({}));
    ctx.insert("error", &Option::<String>::None);
    Ok(render("accounts/register.html", &ctx)?)
}

pub(super) async fn form_register(
    state: web::Data<AppState>,
    session: Session,
    req: HttpRequest,
    Form(f): Form,
) -> HtmlResult<HttpResponse> {
    let entered = serde_json::json!({
        "email": f.opt_str("email").ok().flatten().unwrap_or_default(),
        "name": f.opt_str("name").ok().flatten().unwrap_or_default(),
    });
    let result = match parse_registration(&f) {
        Ok(r) => {
            let password = r.password.as_str().to_string();
            let request_id = crate::edge::telemetry::incoming_request_id(&req);
            match register(&state, &security::client_of(&req), r, request_id).await {
                Ok(account) => login(&state, &session, &req, &account.email, password).await,
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(done) => {
            let mut r = see_other("/?notice=welcome");
            r.add_cookie(&done.device_cookie).map_err(|e| AppError::Unexpected(e.into()))?;
            Ok(r)
        }
        Err(
            e @ (AppError::Validation(_)
            | AppError::Conflict { .. }
            | AppError::TooManyRequests(..)
            | AppError::Unavailable(_)),
        ) => {
            let (mut ctx, _) = form_page(&state, &session, "Create an account").await?;
            ctx.insert("form", &entered);
            Ok(render_form("accounts/register.html", &mut ctx, Some(&e))?)
        }
        Err(e) => Err(HtmlError(e)),
    }
}

pub(super) async fn form_logout(
    state: web::Data<AppState>,
    session: Session,
    _form: Form,
) -> HtmlResult<HttpResponse> {
    session.logout(&state.store).await?;
    Ok(see_other("/?notice=logged_out"))
}
