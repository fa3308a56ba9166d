//! HTML plumbing: rendering into responses (the templates themselves are in
//! [`crate::templates`]), page context, form handling, static files, and the JSON API guard.
//!
//! Every page gets the same base context: the user, the
//! CSRF token for its forms, the cart size and the replica that rendered it.

use std::collections::HashMap;

use actix_web::{
    body::{BoxBody, MessageBody},
    dev::{ServiceRequest, ServiceResponse},
    http::{header, Method},
    middleware::Next,
    web, Error, HttpRequest, HttpResponse,
};
use tera::Context;

use crate::{
    edge::input::Fields,
    edge::session::{CurrentUser, Session},
    error::{AppError, HtmlError},
    state::AppState,
};

pub use crate::templates::{format_money, init_templates, STYLE_CSS};

/// Render a template with a context; errors are internal (templates are checked at start).
pub fn render(name: &str, ctx: &Context) -> Result<HttpResponse, AppError> {
    Ok(html(render_bytes(name, ctx)?))
}

/// A template rendered to bytes (to be cached, see [`crate::infra::cache`]).
pub fn render_bytes(name: &str, ctx: &Context) -> Result<web::Bytes, AppError> {
    match crate::templates::render(name, ctx) {
        Some(Ok(body)) => Ok(body.into()),
        Some(Err(e)) => Err(AppError::Unexpected(anyhow::anyhow!("template {name}: {e:?}"))),
        None => Err(AppError::Unexpected(anyhow::anyhow!("templates not loaded"))),
    }
}

/// A 200 HTML page from its bytes.
pub fn html(body: web::Bytes) -> HttpResponse {
    HttpResponse::Ok().content_type("text/html; charset=utf-8").body(body)
}

/// A 200 JSON answer from bytes already serialised.
pub fn json_bytes(body: web::Bytes) -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body(body)
}

/// Serialise to JSON bytes (for caching); a failure is ours, not the client's.
pub fn to_json_bytes(v: &impl serde::Serialize) -> Result<web::Bytes, AppError> {
    serde_json::to_vec(v).map(Into::into).map_err(|e| AppError::Unexpected(e.into()))
}

/// Render with a status other than 200 (a form shown again with its errors).
pub fn render_status(
    status: actix_web::http::StatusCode,
    name: &str,
    ctx: &Context,
) -> Result<HttpResponse, AppError> {
    let mut r = render(name, ctx)?;
    *r.status_mut() = status;
    Ok(r)
}

/// A page with a form, as it is shown again after `error` (or first, without one): the
/// message as `error`, the bad fields as `errors`, the error's status (200 without one) and its
/// `Retry-After`.
pub fn render_form(
    name: &str,
    ctx: &mut Context,
    error: Option<&AppError>,
) -> Result<HttpResponse, AppError> {
    ctx.insert("error", &error.map(AppError::public_message));
    ctx.insert("errors", &error.and_then(AppError::fields).cloned().unwrap_or_default());
    let status = error.map_or(actix_web::http::StatusCode::OK, actix_web::ResponseError::status_code);
    let mut r = render_status(status, name, ctx)?;
    if let Some(secs) = error.and_then(AppError::retry_after) {
        r.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from(secs));
    }
    Ok(r)
}

/// The base context of every page.
pub async fn page(
    state: &AppState,
    session: &Session,
    title: &str,
) -> Result<(Context, Option<CurrentUser>), AppError> {
    let user = session.user(&state.store).await?;
    // A visitor without a session has no cart and gets no cookie from a page view.
    let cart_count: i64 = if session.has_cookie() {
        let owner = session.cart_owner(&state.store).await?;
        state.store.cart_get(&owner).await?.iter().map(|l| l.quantity).sum()
    } else {
        0
    };
    let mut ctx = Context::new();
    ctx.insert("title", title);
    ctx.insert("user", &user);
    ctx.insert("csrf_token", &session.csrf_token_if_session());
    ctx.insert("cart_count", &cart_count);
    ctx.insert("served_by", &state.replica_name);
    Ok((ctx, user))
}

/// The base context of a page whose form must carry a CSRF token even for a visitor without a
/// session yet (login, register): this one starts the session and sets the cookie.
pub async fn form_page(
    state: &AppState,
    session: &Session,
    title: &str,
) -> Result<(Context, Option<CurrentUser>), AppError> {
    let (mut ctx, user) = page(state, session, title).await?;
    ctx.insert("csrf_token", &session.csrf_token());
    Ok((ctx, user))
}

/// A list page's pager: `page`, `pages`, `total` and the links to the pages before and after
/// (`link(n)` makes page n's address).
pub fn insert_pager(
    ctx: &mut Context,
    paging: crate::edge::input::Paging,
    total: i64,
    link: impl Fn(u64) -> String,
) {
    let pages = paging.pages(total);
    ctx.insert("page", &paging.page);
    ctx.insert("pages", &pages);
    ctx.insert("total", &total);
    ctx.insert("prev_link", &(paging.page > 1).then(|| link(paging.page - 1)));
    ctx.insert("next_link", &(paging.page < pages).then(|| link(paging.page + 1)));
}

/// Read an HTML form post and check its CSRF token (403 without a valid one).
pub async fn form(
    req: &HttpRequest,
    payload: actix_web::dev::Payload,
    session: &Session,
) -> Result<Fields, HtmlError> {
    let body = crate::edge::input::read_body(req, payload).await?;
    let fields = Fields::from_form(&body)?;
    let token = fields.opt_str("csrf_token").ok().flatten();
    // A visitor without a session posts a form from a page that carried no token (so that page
    // could be cached for everyone): it has no state a forged request could ride on, and the
    // browser's `Origin` must still name this site.
    let cookieless_same_origin = !session.has_cookie() && same_origin(req);
    if !cookieless_same_origin && !session.csrf_ok(token.as_deref()) {
        return Err(AppError::Forbidden(
            "This form has expired or did not come from this shop. Please go back, reload the page and try again."
                .into(),
        )
        .into());
    }
    Ok(fields)
}

/// A redirect after a successful form post (POST/redirect/GET).
pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther().insert_header((header::LOCATION, location)).finish()
}

/// Only paths of this shop are followed after login (no open redirect), and only as a valid
/// header value. Anything else becomes `/`.
///
/// The path is resolved the way a browser resolves a `Location` (WHATWG URL rules, with the `url`
/// crate): browsers drop tabs and newlines and read `\` as `/`, so `/\t/evil.example` is really
/// `//evil.example`, another site. A control character or a backslash anywhere is refused
/// outright; what resolves to this shop's origin comes back as its path and query, non-ASCII
/// percent-encoded (a header carries ASCII only).
pub fn safe_next(next: Option<&str>) -> String {
    const HOME: &str = "/";
    let Some(n) = next else { return HOME.into() };
    if !n.starts_with('/') || n.len() >= 512 || n.chars().any(|c| c.is_control() || c == '\\') {
        return HOME.into();
    }
    let Ok(base) = url::Url::parse("http://shop.invalid/") else { return HOME.into() };
    match base.join(n) {
        Ok(u) if u.origin() == base.origin() && u.username().is_empty() => {
            let path = &u[url::Position::BeforePath..url::Position::AfterQuery];
            if path.starts_with("//") || path.is_empty() {
                HOME.into()
            } else {
                path.to_string()
            }
        }
        _ => HOME.into(),
    }
}

/// Query string as a map; malformed pairs are a 400, not a 500.
pub fn query_map(req: &HttpRequest) -> Result<HashMap<String, String>, AppError> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(req.query_string())
        .map(|v| v.into_iter().collect())
        .map_err(|e| AppError::BadRequest(format!("malformed query string: {e}")))
}

pub async fn style_css() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(STYLE_CSS)
}

/// The request's `Origin` names exactly this site: scheme, host and port.
fn same_origin(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|o| crate::edge::security::is_own_origin(req, o))
}

/// JSON API guard: state changes need `Content-Type: application/json` (415), and a present
/// `Origin` must be this site (403). Together with SameSite cookies this closes CSRF on the API:
/// a cross-site page can neither send JSON without a CORS preflight nor hide its origin.
pub async fn api_guard(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    match refuse_api_request(&req) {
        Some(e) => Ok(req.into_response(actix_web::ResponseError::error_response(&e))),
        None => Ok(next.call(req).await?.map_into_boxed_body()),
    }
}

fn refuse_api_request(req: &ServiceRequest) -> Option<AppError> {
    let m = req.method();
    let changes_state = !(m == Method::GET || m == Method::HEAD || m == Method::OPTIONS);
    if changes_state {
        if let Some(origin) = req.headers().get(header::ORIGIN) {
            let origin = String::from_utf8_lossy(origin.as_bytes());
            if !crate::edge::security::is_own_origin(req.request(), &origin) {
                return Some(AppError::Forbidden(format!("cross-origin request from {origin} refused")));
            }
        }
        if m != Method::DELETE {
            let ct = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
            let essence = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
            if essence != "application/json" {
                return Some(AppError::UnsupportedMediaType);
            }
        }
    }
    None
}

/// An empty JSON object: the body of a POST that needs none (`{}`). The API guard still wants
/// `Content-Type: application/json` on it; its content is ignored.
#[derive(utoipa::ToSchema)]
pub struct EmptyBody {}

/// Fixed notices shown after a redirect (`?notice=added`); unknown codes show nothing.
pub fn notice(code: &str) -> Option<&'static str> {
    Some(match code {
        "added" => "Added to your cart.",
        "updated" => "Cart updated.",
        "removed" => "Removed from your cart.",
        "welcome" => "Welcome! Your account is ready and you are logged in.",
        "logged_out" => "You are logged out.",
        "placed" => "Thank you! Your order is placed.",
        "cancelled" => "Your order is cancelled and its items are back in stock.",
        "confirmed" => "Order confirmed.",
        "shipped" => "Order marked as shipped.",
        "password_changed" => {
            "Your password has been changed. Every other session of your account has been signed out."
        }
        "product_created" => "Product created.",
        "product_saved" => "Product saved.",
        "restocked" => "Stock changed.",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_is_local_only() {
        assert_eq!(safe_next(Some("/cart")), "/cart");
        assert_eq!(safe_next(Some("/products/3?x=1&y=%20")), "/products/3?x=1&y=%20");
        assert_eq!(safe_next(Some("/a/../orders")), "/orders");
        assert_eq!(safe_next(Some("/suche/käse")), "/suche/k%C3%A4se");
        for bad in [
            "//evil.example",
            "https://evil.example",
            "\\\\x",
            "javascript:alert(1)",
            "/\t/evil.example",
            "/\n/evil.example",
            "/\\evil.example",
            "/cart\r\nSet-Cookie: x=1",
            "/cart\0",
            "/%2F/evil.example/..",
            "",
        ] {
            let got = safe_next(Some(bad));
            assert!(got == "/" || (got.starts_with('/') && !got.starts_with("//")), "{bad:?} -> {got:?}");
            assert!(!got.contains("evil.example") || got.starts_with("/%2F"), "{bad:?} -> {got:?}");
        }
        assert_eq!(safe_next(Some("/\t/evil.example")), "/");
        assert_eq!(safe_next(None), "/");
    }
}
