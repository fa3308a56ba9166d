//! HTML plumbing: templates (embedded in the binary), page context, form handling, static files,
//! and the JSON API guard.
//!
//! Templates are compiled once at start (a broken template stops the process, not a request) and
//! autoescape everything (`.html` names). Every page gets the same base context: the user, the
//! CSRF token for its forms, the cart size and the replica that rendered it.

use std::{collections::HashMap, sync::OnceLock};

use actix_web::{
    body::{BoxBody, MessageBody},
    dev::{ServiceRequest, ServiceResponse},
    http::{header, Method},
    middleware::Next,
    web, Error, HttpRequest, HttpResponse,
};
use tera::{Context, Tera};

use crate::{
    error::{AppError, HtmlError},
    input::Fields,
    session::{CurrentUser, Session},
    startup::AppState,
};

static TEMPLATES: OnceLock<Tera> = OnceLock::new();

const TEMPLATE_FILES: &[(&str, &str)] = &[
    ("base.html", include_str!("../templates/base.html")),
    ("macros.html", include_str!("../templates/macros.html")),
    ("error.html", include_str!("../templates/error.html")),
    ("catalog/list.html", include_str!("../templates/catalog/list.html")),
    ("catalog/product.html", include_str!("../templates/catalog/product.html")),
    ("accounts/login.html", include_str!("../templates/accounts/login.html")),
    ("accounts/register.html", include_str!("../templates/accounts/register.html")),
    ("cart/cart.html", include_str!("../templates/cart/cart.html")),
    ("orders/checkout.html", include_str!("../templates/orders/checkout.html")),
    ("orders/list.html", include_str!("../templates/orders/list.html")),
    ("orders/detail.html", include_str!("../templates/orders/detail.html")),
    ("admin/orders.html", include_str!("../templates/admin/orders.html")),
];

pub const STYLE_CSS: &str = include_str!("../static/style.css");

/// `1234` → `€12.34`.
pub fn format_money(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let c = cents.unsigned_abs();
    let euros = (c / 100).to_string();
    let mut grouped = String::new();
    for (i, ch) in euros.chars().enumerate() {
        if i > 0 && (euros.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(ch);
    }
    format!("{sign}€{grouped}.{:02}", c % 100)
}

fn money_filter(v: &tera::Value, _: &HashMap<String, tera::Value>) -> tera::Result<tera::Value> {
    let cents = v.as_i64().ok_or_else(|| tera::Error::msg("money: expects an integer number of cents"))?;
    Ok(tera::Value::String(format_money(cents)))
}

/// Compile the templates once. Called at start; a failure stops the process.
pub fn init_templates() -> anyhow::Result<&'static Tera> {
    if let Some(t) = TEMPLATES.get() {
        return Ok(t);
    }
    let mut tera = Tera::default();
    tera.add_raw_templates(TEMPLATE_FILES.to_vec())?;
    tera.register_filter("money", money_filter);
    Ok(TEMPLATES.get_or_init(|| tera))
}

/// Render a template with a context; errors are internal (templates are checked at start).
pub fn render(name: &str, ctx: &Context) -> Result<HttpResponse, AppError> {
    Ok(html(render_bytes(name, ctx)?))
}

/// A template rendered to bytes (to be cached, see [`crate::cache`]).
pub fn render_bytes(name: &str, ctx: &Context) -> Result<web::Bytes, AppError> {
    let tera =
        TEMPLATES.get().ok_or_else(|| AppError::Unexpected(anyhow::anyhow!("templates not loaded")))?;
    let body = tera
        .render(name, ctx)
        .map_err(|e| AppError::Unexpected(anyhow::anyhow!("template {name}: {e:?}")))?;
    Ok(body.into())
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

/// The error page; falls back to plain HTML if even that cannot render.
pub fn render_error_page(status: u16, title: &str, message: &str) -> String {
    let mut ctx = Context::new();
    ctx.insert("status", &status);
    ctx.insert("title", title);
    ctx.insert("message", message);
    ctx.insert("user", &Option::<CurrentUser>::None);
    ctx.insert("csrf_token", "");
    ctx.insert("cart_count", &0);
    ctx.insert("served_by", &crate::telemetry::hostname());
    TEMPLATES.get().and_then(|t| t.render("error.html", &ctx).ok()).unwrap_or_else(|| {
        format!(
            "<!doctype html><title>{status}</title><h1>{status} {title}</h1><p>{}</p>",
            tera::escape_html(message)
        )
    })
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
        state.store.cart_get(&owner).await?.iter().map(|(_, q)| q).sum()
    } else {
        0
    };
    let mut ctx = Context::new();
    ctx.insert("title", title);
    ctx.insert("user", &user);
    ctx.insert("csrf_token", &session.csrf_token_if_session());
    ctx.insert("cart_count", &cart_count);
    ctx.insert("served_by", &state.hostname);
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

/// Read an HTML form post and check its CSRF token (403 without a valid one).
pub async fn form(req: &HttpRequest, payload: web::Payload, session: &Session) -> Result<Fields, HtmlError> {
    let body = crate::input::read_body(req, payload).await?;
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
        .is_some_and(|o| crate::security::is_own_origin(req, o))
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
            if !crate::security::is_own_origin(req.request(), &origin) {
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
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money() {
        assert_eq!(format_money(0), "€0.00");
        assert_eq!(format_money(1999), "€19.99");
        assert_eq!(format_money(123456789), "€1,234,567.89");
        assert_eq!(format_money(-5), "-€0.05");
    }

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
