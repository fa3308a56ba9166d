//! Extractors: what a handler needs from a request, as typed arguments — the logged-in account,
//! an admin, the `Idempotency-Key`, a JSON body's fields, an HTML form's fields (CSRF checked).
//!
//! Each fails with the shop's one error shape: [`AppError`] (JSON) for the API's extractors,
//! [`HtmlError`] (a page, or a redirect to the login page) for the pages' ones.
//!
//! Mind the order: actix polls a handler's extractors *together*, in argument order within each
//! poll, and the first error ends the request. An extractor that is ready at once (a header, a
//! path) fails before any that waits (the body, the session store), wherever it stands; two that
//! wait race. So a handler takes at most one waiting extractor where the order of its errors
//! matters, and checks what must come after it in its body (`IdempotencyKey::of`).
//!
//! Bodies are [`Fields`] rather than `Deserialize` structs on purpose: a 422 names *every* bad
//! field at once in the shop's own words, where serde stops at the first one with its own.

use std::{future::Future, pin::Pin};

use actix_web::{dev::Payload, web, FromRequest, HttpRequest};

use crate::{
    edge::{
        input::{read_body, Fields},
        session::{CurrentUser, Session},
    },
    error::{AppError, HtmlError},
    state::AppState,
};

type Boxed<T, E> = Pin<Box<dyn Future<Output = Result<T, E>>>>;

/// The request's session (as the `Session` extractor finds it) and the shop's state.
fn session_and_state(req: &HttpRequest) -> Result<(Session, web::Data<AppState>), AppError> {
    let session = Session::extract(req).into_inner()?;
    let state = req
        .app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| AppError::Unexpected(anyhow::anyhow!("application state is not installed")))?;
    Ok((session, state))
}

/// The logged-in account (API: 401 without one).
pub struct User(pub CurrentUser);

impl FromRequest for User {
    type Error = AppError;
    type Future = Boxed<Self, AppError>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let found = session_and_state(req);
        Box::pin(async move {
            let (session, state) = found?;
            Ok(User(session.require_user(&state.store).await?))
        })
    }
}

/// A logged-in admin (API: 401 without a login, 403 for a customer).
pub struct Admin(pub CurrentUser);

impl FromRequest for Admin {
    type Error = AppError;
    type Future = Boxed<Self, AppError>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let found = session_and_state(req);
        Box::pin(async move {
            let (session, state) = found?;
            Ok(Admin(session.require_admin(&state.store).await?))
        })
    }
}

/// The logged-in account of a page (GET): without one, a redirect to the login page that comes
/// back to this page (path and query).
pub struct PageUser(pub CurrentUser);

impl FromRequest for PageUser {
    type Error = HtmlError;
    type Future = Boxed<Self, HtmlError>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let found = session_and_state(req);
        let back = req.uri().path_and_query().map_or_else(|| req.path().to_string(), |p| p.to_string());
        Box::pin(async move {
            let (session, state) = found?;
            Ok(PageUser(session.login_first(&state.store, &back).await?))
        })
    }
}

/// The logged-in admin of a page (GET): without a login, a redirect to the login page that comes
/// back here; a customer gets the 403 page.
pub struct PageAdmin(pub CurrentUser);

impl FromRequest for PageAdmin {
    type Error = HtmlError;
    type Future = Boxed<Self, HtmlError>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let user = PageUser::from_request(req, payload);
        Box::pin(async move {
            let PageUser(user) = user.await?;
            if user.is_admin() {
                Ok(PageAdmin(user))
            } else {
                Err(AppError::Forbidden("this needs an admin account".into()).into())
            }
        })
    }
}

/// The `Idempotency-Key` header, required: 8 to 64 characters of `[A-Za-z0-9_-]` (422
/// `fields` when missing or malformed).
pub struct IdempotencyKey(pub String);

/// The `Idempotency-Key` header where it is optional: absent is `None`, malformed still a 422.
pub struct OptionalIdempotencyKey(pub Option<String>);

const IDEMPOTENCY_KEY: &str = "Idempotency-Key";

fn idempotency_key_of(req: &HttpRequest) -> Result<Option<String>, AppError> {
    let Some(v) = req.headers().get(IDEMPOTENCY_KEY) else { return Ok(None) };
    v.to_str()
        .map_err(|_| "must be visible ASCII".to_string())
        .and_then(crate::edge::input::idempotency_key)
        .map(Some)
        .map_err(|m| AppError::field(IDEMPOTENCY_KEY, m))
}

impl IdempotencyKey {
    /// The required key of this request, for a handler that must check it after something else.
    pub fn of(req: &HttpRequest) -> Result<Self, AppError> {
        idempotency_key_of(req)?
            .map(IdempotencyKey)
            .ok_or_else(|| AppError::field(IDEMPOTENCY_KEY, "header is required (a fresh UUID per checkout)"))
    }
}

impl OptionalIdempotencyKey {
    /// The optional key of this request, for a handler that must check it after something else.
    pub fn of(req: &HttpRequest) -> Result<Self, AppError> {
        idempotency_key_of(req).map(OptionalIdempotencyKey)
    }
}

impl FromRequest for IdempotencyKey {
    type Error = AppError;
    type Future = std::future::Ready<Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(Self::of(req))
    }
}

impl FromRequest for OptionalIdempotencyKey {
    type Error = AppError;
    type Future = std::future::Ready<Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(Self::of(req))
    }
}

/// The product id in the path (`/api/cart/items/{product_id}`): anything but a positive integer
/// is a 404. Ready at once, so a bad path fails before the body is read.
pub struct ProductInPath(pub crate::domain::ProductId);

impl FromRequest for ProductInPath {
    type Error = AppError;
    type Future = std::future::Ready<Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let raw = req.match_info().get("product_id").unwrap_or_default();
        std::future::ready(
            crate::edge::input::path_id(raw, "product").map(|id| ProductInPath(crate::domain::ProductId(id))),
        )
    }
}

/// A JSON API body's fields (an empty body counts as `{}`): 400 when it is not a JSON object,
/// 413 over 64 KiB, 408 when it does not arrive in time.
pub struct JsonFields(pub Fields);

impl FromRequest for JsonFields {
    type Error = AppError;
    type Future = Boxed<Self, AppError>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let payload = payload.take();
        Box::pin(async move { Ok(JsonFields(Fields::from_json(&read_body(&req, payload).await?)?)) })
    }
}

/// A body the handler does not use, read anyway (with the same limits), so that a client that
/// sends one gets the same 413/408 everywhere and the connection stays usable.
pub struct IgnoredBody;

impl FromRequest for IgnoredBody {
    type Error = AppError;
    type Future = Boxed<Self, AppError>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let payload = payload.take();
        Box::pin(async move {
            read_body(&req, payload).await?;
            Ok(IgnoredBody)
        })
    }
}

/// An HTML form post's fields, its CSRF token checked (403 without a valid one; see
/// [`crate::edge::web::form`]).
pub struct Form(pub Fields);

impl FromRequest for Form {
    type Error = HtmlError;
    type Future = Boxed<Self, HtmlError>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let payload = payload.take();
        Box::pin(async move {
            let (session, _) = session_and_state(&req)?;
            Ok(Form(crate::edge::web::form(&req, payload, &session).await?))
        })
    }
}
