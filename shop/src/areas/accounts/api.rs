//! The accounts' JSON API.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use crate::{
    edge::extract::{JsonFields, User},
    edge::input::{Email, Validator},
    edge::security,
    edge::session::Session,
    edge::web::EmptyBody,
    error::{ApiError, ApiResult, AppError},
    state::AppState,
};

use super::{
    repo::{find_by_id, Account},
    rules::{change_password, login, parse_password_change, parse_registration, register},
};

// The bodies below document what the handlers parse by hand (`parse_registration`, `api_login`,
// with the rules of `crate::edge::input`); a body that breaks them is a 422 naming each bad field.

/// A new customer account.
#[derive(ToSchema)]
pub struct RegisterRequest {
    /// Trimmed and lower-cased; must be unique (409 otherwise). Internationalised addresses
    /// are accepted.
    #[schema(format = IdnEmail, min_length = 3, max_length = 254, example = "ada@example.org")]
    pub email: String,
    /// 10 to 128 characters.
    #[schema(min_length = 10, max_length = 128, example = "correct horse battery")]
    pub password: String,
    /// Display name: 1 to 100 characters after trimming, no control characters.
    #[schema(min_length = 1, max_length = 100, example = "Ada Lovelace")]
    pub name: String,
}

/// Credentials.
#[derive(ToSchema)]
pub struct LoginRequest {
    #[schema(format = IdnEmail, min_length = 3, max_length = 254, example = "ada@example.org")]
    pub email: String,
    /// 1 to 1024 bytes of UTF-8.
    #[schema(min_length = 1, max_length = 1024, example = "correct horse battery")]
    pub password: String,
}

/// A password change.
#[derive(ToSchema)]
pub struct PasswordChangeRequest {
    /// The password the account has now: 1 to 1024 bytes of UTF-8.
    #[schema(min_length = 1, max_length = 1024, example = "correct horse battery")]
    pub current_password: String,
    /// 10 to 128 characters.
    #[schema(min_length = 10, max_length = 128, example = "correct horse battery staple")]
    pub new_password: String,
}

/// The answer to a logout.
#[derive(Serialize, ToSchema)]
pub struct LoggedOut {
    /// Always `true`.
    pub logged_out: bool,
}

/// Create a customer account (it is not logged in: `POST /api/login` next).
#[utoipa::path(
    post,
    path = "/api/register",
    operation_id = "register",
    tag = "accounts",
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "The account, created; also the answer to the same request sent again with its `X-Request-Id` (nginx retrying on another replica after the first committed)", body = Account),
        (status = 400, description = "The body is not a JSON object", body = ApiError),
        (status = 409, description = "An account with this email exists (`email_taken`)", body = ApiError),
        (status = 413, description = "The body is larger than 64 KiB", body = ApiError),
        (status = 422, description = "Invalid fields; `fields` names each", body = ApiError),
        (status = 429, description = "Too many new accounts from this client address (`SHOP_REGISTER_LIMIT` per hour), or too many password checks from it at once; `Retry-After` says when to retry", body = ApiError),
        (status = 503, description = "A backend did not answer in time, or too many password hashes at once; retry", body = ApiError),
    )
)]
pub async fn api_register(
    state: web::Data<AppState>,
    req: HttpRequest,
    JsonFields(f): JsonFields,
) -> ApiResult<HttpResponse> {
    let request_id = crate::edge::telemetry::incoming_request_id(&req);
    let account = register(&state, &security::client_of(&req), parse_registration(&f)?, request_id).await?;
    Ok(HttpResponse::Created().json(account))
}

/// Log in: a new session (the cookie is set), the anonymous cart merged into the account's.
///
/// After 5 failures for one email from one address (20 from all) within 15 minutes, 429.
#[utoipa::path(
    post,
    path = "/api/login",
    operation_id = "login",
    tag = "accounts",
    request_body = LoginRequest,
    security((), ("session" = [])),
    responses(
        (status = 200, description = "Logged in", body = Account,
            headers(("Set-Cookie" = String, description = "The new session cookie, `distshop_session`"))),
        (status = 400, description = "The body is not a JSON object", body = ApiError),
        (status = 401, description = "Wrong email or password", body = ApiError),
        (status = 413, description = "The body is larger than 64 KiB", body = ApiError),
        (status = 422, description = "Missing or invalid fields; `fields` names each", body = ApiError),
        (status = 429, description = "Too many failed logins for this account from this client (or, from devices that never logged in to it, from anywhere), or too many password checks from this address at once; `Retry-After` says when to retry. A browser that logged in before (its `distshop_device` cookie) is counted on its own", body = ApiError),
        (status = 503, description = "A backend did not answer in time, or too many password hashes at once; retry", body = ApiError),
    )
)]
pub async fn api_login(
    state: web::Data<AppState>,
    session: Session,
    req: HttpRequest,
    JsonFields(f): JsonFields,
) -> ApiResult<HttpResponse> {
    let mut v = Validator::default();
    let email = v.check("email", f.str("email").and_then(|s| Email::parse(&s)));
    let password = v.check(
        "password",
        f.str("password").and_then(|p| {
            if p.is_empty() {
                Err("is required".into())
            } else if p.len() > 1024 {
                Err("is too long".into())
            } else {
                Ok(p)
            }
        }),
    );
    v.finish()?;
    let (Some(email), Some(password)) = (email, password) else {
        return Err(AppError::BadRequest("email and password are required".into()));
    };
    let done = login(&state, &session, &req, email.as_str(), password).await?;
    Ok(HttpResponse::Ok().cookie(done.device_cookie).json(done.account))
}

/// Log out: the session ends, the visitor goes on under a new anonymous one.
#[utoipa::path(
    post,
    path = "/api/logout",
    operation_id = "logout",
    tag = "accounts",
    request_body = EmptyBody,
    security((), ("session" = [])),
    responses(
        (status = 200, description = "Logged out (also when no one was logged in)", body = LoggedOut,
            headers(("Set-Cookie" = String, description = "A new anonymous session cookie"))),
        (status = 503, description = "The session store did not answer in time; retry", body = ApiError),
    )
)]
pub async fn api_logout(state: web::Data<AppState>, session: Session) -> ApiResult<HttpResponse> {
    session.logout(&state.store).await?;
    Ok(HttpResponse::Ok().json(LoggedOut { logged_out: true }))
}

/// The logged-in account.
#[utoipa::path(
    get,
    path = "/api/me",
    operation_id = "me",
    tag = "accounts",
    security(("session" = [])),
    responses(
        (status = 200, description = "The account", body = Account),
        (status = 401, description = "Not logged in (or the account is gone)", body = ApiError),
        (status = 503, description = "A backend did not answer in time; retry", body = ApiError),
    )
)]
pub async fn api_me(state: web::Data<AppState>, User(u): User) -> ApiResult<HttpResponse> {
    let account = find_by_id(&state.db, u.id)
        .await?
        .ok_or_else(|| AppError::Unauthorized("the account no longer exists".into()))?;
    Ok(HttpResponse::Ok().json(account))
}

/// Change the password: the current one is checked (throttled like a login), this client gets a
/// new session, and every other session of the account is signed out.
#[utoipa::path(
    post,
    path = "/api/me/password",
    operation_id = "changePassword",
    tag = "accounts",
    request_body = PasswordChangeRequest,
    security(("session" = [])),
    responses(
        (status = 200, description = "Changed; the account", body = Account,
            headers(("Set-Cookie" = String, description = "The new session cookie, `distshop_session`"))),
        (status = 400, description = "The body is not a JSON object", body = ApiError),
        (status = 401, description = "Not logged in", body = ApiError),
        (status = 413, description = "The body is larger than 64 KiB", body = ApiError),
        (status = 422, description = "Invalid fields, or `current_password` is not the current password; `fields` names each", body = ApiError),
        (status = 429, description = "Too many wrong passwords for this account, or too many password checks at once; `Retry-After` says when to retry", body = ApiError),
        (status = 503, description = "A backend did not answer in time, or too many password hashes at once; retry", body = ApiError),
    )
)]
pub async fn api_change_password(
    state: web::Data<AppState>,
    session: Session,
    req: HttpRequest,
    JsonFields(f): JsonFields,
) -> ApiResult<HttpResponse> {
    // after the body: 401 before the fields' 422 (see edge::extract)
    let user = session.require_user(&state.store).await?;
    let done = change_password(&state, &session, &req, &user, parse_password_change(&f)?).await?;
    Ok(HttpResponse::Ok().cookie(done.device_cookie).json(done.account))
}
