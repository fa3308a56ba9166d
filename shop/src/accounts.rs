//! Accounts: register, log in, log out, who am I — with argon2id hashes, session rotation,
//! anonymous-cart merge at login and login throttling counted in the session store (so the limit
//! holds across replicas).

use std::{sync::LazyLock, time::Duration};

use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse};
use argon2::{
    password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString},
    Argon2,
};
use sea_orm::ConnectionTrait;
use serde::Serialize;
use utoipa::ToSchema;

use crate::{
    catalog,
    db::{self, DbError},
    error::{ApiError, ApiResult, AppError, HtmlError, HtmlResult},
    input::{Email, Fields, Password, PersonName, Quantity, Validator},
    openapi::EmptyBody,
    session::{CurrentUser, Role, Session},
    startup::AppState,
    web::{form_page, query_map, render, render_status, safe_next, see_other},
};

/// Failed logins per account and client address within [`THROTTLE_WINDOW`] before 429.
pub const MAX_FAILURES_PER_CLIENT: i64 = 5;
/// Failed logins per account from all addresses (guards against rotating addresses).
pub const MAX_FAILURES_PER_ACCOUNT: i64 = 20;
pub const THROTTLE_WINDOW: Duration = Duration::from_secs(15 * 60);
const USER_CART_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Account {
    #[schema(minimum = 1)]
    pub id: i64,
    /// Lower-cased, as registered. No `format` is claimed: the shop accepts internationalised
    /// addresses (`jürgen@bücher.de`), which are not a JSON Schema `email`, and a few that are
    /// not strictly an `idn-email` either (`input::Email` checks plausibility, not RFC 5321).
    #[schema(max_length = 254, example = "ada@example.org")]
    pub email: String,
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    pub role: Role,
}

/// Password hashing runs on a few dedicated threads, never on the request's.
///
/// Argon2id (default parameters) works in 19 MiB of memory per hash. On the general blocking
/// pool every concurrent login ran on a thread of its own, and the allocator kept each thread's
/// 19 MiB around: a replica under 40 simulated shoppers grew from 15 MB to 2.2 GB in three
/// minutes. One queue and one thread per core (at most 4) bound both the CPU and the memory
/// (a few × 19 MiB, reused hash after hash); a full queue is a 503, not a pile-up.
type HashJob = Box<dyn FnOnce() + Send + 'static>;

static HASHER: LazyLock<Option<std::sync::mpsc::SyncSender<HashJob>>> = LazyLock::new(|| {
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).min(4);
    let (tx, rx) = std::sync::mpsc::sync_channel::<HashJob>(256);
    let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
    for i in 0..threads {
        let rx = rx.clone();
        let spawned = std::thread::Builder::new().name(format!("password-hash-{i}")).spawn(move || loop {
            let job = rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
            match job {
                Ok(job) => job(),
                Err(_) => return,
            }
        });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "could not start a password-hashing thread");
            return None;
        }
    }
    Some(tx)
});

async fn on_hasher<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, AppError> {
    let sender = HASHER
        .as_ref()
        .ok_or_else(|| AppError::Unexpected(anyhow::anyhow!("no password-hashing threads")))?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    sender
        .try_send(Box::new(move || drop(tx.send(f()))))
        .map_err(|_| AppError::Unavailable("too many logins at the same moment, please retry".into()))?;
    rx.await.map_err(|_| AppError::Unexpected(anyhow::anyhow!("password-hashing thread gone")))
}

pub async fn hash_password(password: String) -> Result<String, AppError> {
    on_hasher(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default().hash_password(password.as_bytes(), &salt).map(|h| h.to_string())
    })
    .await?
    .map_err(|e| AppError::Unexpected(anyhow::anyhow!("hashing: {e}")))
}

/// A hash to verify against when the account does not exist, so timing does not tell.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default().hash_password(b"not-a-real-password", &salt).map(|h| h.to_string()).unwrap_or_default()
});

async fn verify_password(password: String, hash: Option<String>) -> Result<bool, AppError> {
    on_hasher(move || {
        let hash = hash.unwrap_or_else(|| DUMMY_HASH.clone());
        PasswordHash::new(&hash)
            .map(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
            .unwrap_or(false)
    })
    .await
}

/// Insert an account; a taken email is a 409.
pub async fn create(
    c: &(impl ConnectionTrait + 'static),
    email: &Email,
    name: &str,
    password_hash: &str,
    role: Role,
) -> Result<i64, AppError> {
    let r = db::exec(
        c,
        "INSERT INTO users (email, name, password_hash, role, created_at) VALUES (?, ?, ?, ?, ?)",
        vec![
            email.as_str().into(),
            name.into(),
            password_hash.into(),
            role.as_str().into(),
            db::now_ms().into(),
        ],
    )
    .await;
    match r {
        Ok((_, id)) => Ok(id as i64),
        Err(DbError::Unique(_)) => Err(email_taken()),
        Err(e) => Err(e.into()),
    }
}

fn email_taken() -> AppError {
    AppError::Conflict { code: "email_taken", message: "an account with this email already exists".into() }
}

async fn find_by_email(
    c: &(impl ConnectionTrait + 'static),
    email: &str,
) -> Result<Option<(Account, String)>, DbError> {
    let row = db::one(
        c,
        "SELECT id, email, name, role, password_hash FROM users WHERE email = ?",
        vec![email.into()],
    )
    .await?;
    row.map(|r| {
        Ok((
            Account {
                id: db::get(&r, "id")?,
                email: db::get(&r, "email")?,
                name: db::get(&r, "name")?,
                role: Role::parse(&db::get::<String>(&r, "role")?),
            },
            db::get(&r, "password_hash")?,
        ))
    })
    .transpose()
}

pub async fn find_by_id(c: &(impl ConnectionTrait + 'static), id: i64) -> Result<Option<Account>, DbError> {
    let row = db::one(c, "SELECT id, email, name, role FROM users WHERE id = ?", vec![id.into()]).await?;
    row.map(|r| {
        Ok(Account {
            id: db::get(&r, "id")?,
            email: db::get(&r, "email")?,
            name: db::get(&r, "name")?,
            role: Role::parse(&db::get::<String>(&r, "role")?),
        })
    })
    .transpose()
}

struct Registration {
    email: Email,
    name: String,
    password: Password,
}

fn parse_registration(f: &Fields) -> Result<Registration, AppError> {
    let mut v = Validator::default();
    let email = v.check("email", f.str("email").and_then(|s| Email::parse(&s)));
    let name = v.check("name", f.str("name").and_then(|s| PersonName::parse(&s)));
    let password = v.check("password", f.str("password").and_then(|s| Password::parse(&s)));
    match (email, name, password) {
        (Some(email), Some(name), Some(password)) => {
            Ok(Registration { email, name: name.into_inner(), password })
        }
        _ => Err(AppError::Validation(v.errors().clone())),
    }
}

async fn register(state: &AppState, r: Registration) -> Result<Account, AppError> {
    // Cheap pre-check saves a hash; the unique constraint is what really decides.
    if find_by_email(&state.db, r.email.as_str()).await?.is_some() {
        return Err(email_taken());
    }
    let hash = hash_password(r.password.as_str().to_string()).await?;
    let id = create(&state.db, &r.email, &r.name, &hash, Role::Customer).await?;
    tracing::info!(user.id = id, "account registered");
    Ok(Account { id, email: r.email.into_inner(), name: r.name, role: Role::Customer })
}

fn client_ip(req: &HttpRequest) -> String {
    req.connection_info().realip_remote_addr().unwrap_or("unknown").to_string()
}

/// Check credentials with throttling; on success the session is rotated and carts merged.
async fn login(
    state: &AppState,
    session: &Session,
    req: &HttpRequest,
    email: &str,
    password: String,
) -> Result<Account, AppError> {
    let per_client = format!("login:{email}:{}", client_ip(req));
    let per_account = format!("login:{email}");
    if state.store.count_get(&per_client).await? >= MAX_FAILURES_PER_CLIENT
        || state.store.count_get(&per_account).await? >= MAX_FAILURES_PER_ACCOUNT
    {
        return Err(AppError::TooManyRequests(
            "too many failed logins for this account; wait 15 minutes and try again".into(),
        ));
    }
    let found = find_by_email(&state.db, email).await?;
    let ok = verify_password(password, found.as_ref().map(|(_, h)| h.clone())).await?;
    let account = match (ok, found) {
        (true, Some((a, _))) => a,
        _ => {
            state.store.count_event(&per_client, THROTTLE_WINDOW).await?;
            state.store.count_event(&per_account, THROTTLE_WINDOW).await?;
            return Err(AppError::Unauthorized("wrong email or password".into()));
        }
    };
    state.store.count_reset(&per_client).await?;
    let anonymous_cart = session.anonymous_cart_owner();
    let user = CurrentUser { id: account.id, name: account.name.clone(), role: account.role };
    session.login(&state.store, user, state.settings.session_ttl).await?;
    if let Some(anon) = anonymous_cart {
        merge_cart(state, &anon, &format!("u:{}", account.id)).await?;
    }
    tracing::info!(user.id = account.id, "logged in");
    Ok(account)
}

/// Move the anonymous cart into the account's: quantities add up, capped at 99 and at stock.
async fn merge_cart(state: &AppState, from: &str, to: &str) -> Result<(), AppError> {
    let lines = state.store.cart_get(from).await?;
    if lines.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = lines.iter().map(|(p, _)| *p).collect();
    let products = catalog::get_many(&state.db, &ids).await?;
    for (pid, qty) in lines {
        // Sold-out products are dropped; the rest is capped at stock and at 99.
        if let Some(p) = products.get(&pid).filter(|p| p.stock > 0) {
            state.store.cart_add(to, pid, qty, p.stock.min(Quantity::MAX), true, USER_CART_TTL, None).await?;
        }
    }
    state.store.cart_clear(from).await?;
    Ok(())
}

pub fn user_cart_ttl() -> Duration {
    USER_CART_TTL
}

// --- JSON API ------------------------------------------------------------------------------

// The bodies below document what the handlers parse by hand (`parse_registration`, `api_login`,
// with the rules of `crate::input`); a body that breaks them is a 422 naming each bad field.

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
        (status = 201, description = "The account, created", body = Account),
        (status = 400, description = "The body is not a JSON object", body = ApiError),
        (status = 409, description = "An account with this email exists (`email_taken`)", body = ApiError),
        (status = 413, description = "The body is larger than 64 KiB", body = ApiError),
        (status = 422, description = "Invalid fields; `fields` names each", body = ApiError),
        (status = 503, description = "A backend did not answer in time, or too many password hashes at once; retry", body = ApiError),
    )
)]
async fn api_register(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Payload,
) -> ApiResult<HttpResponse> {
    let f = Fields::from_json(&crate::input::read_body(&req, body).await?)?;
    let account = register(&state, parse_registration(&f)?).await?;
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
        (status = 429, description = "Too many failed logins for this account; wait 15 minutes", body = ApiError),
        (status = 503, description = "A backend did not answer in time, or too many password hashes at once; retry", body = ApiError),
    )
)]
async fn api_login(
    state: web::Data<AppState>,
    session: Session,
    req: HttpRequest,
    body: web::Payload,
) -> ApiResult<HttpResponse> {
    let f = Fields::from_json(&crate::input::read_body(&req, body).await?)?;
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
    let account = login(&state, &session, &req, email.as_str(), password).await?;
    Ok(HttpResponse::Ok().json(account))
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
async fn api_logout(state: web::Data<AppState>, session: Session) -> ApiResult<HttpResponse> {
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
async fn api_me(state: web::Data<AppState>, session: Session) -> ApiResult<HttpResponse> {
    let u = session.require_user(&state.store).await?;
    let account = find_by_id(&state.db, u.id)
        .await?
        .ok_or_else(|| AppError::Unauthorized("the account no longer exists".into()))?;
    Ok(HttpResponse::Ok().json(account))
}

// --- HTML ----------------------------------------------------------------------------------

async fn page_login(
    state: web::Data<AppState>,
    session: Session,
    req: HttpRequest,
) -> HtmlResult<HttpResponse> {
    let q = query_map(&req)?;
    let (mut ctx, _) = form_page(&state, &session, "Log in").await?;
    ctx.insert("next", &safe_next(q.get("next").map(String::as_str)));
    ctx.insert("email", "");
    ctx.insert("error", &Option::<String>::None);
    ctx.insert("notice", &q.get("notice").and_then(|n| crate::web::notice(n)));
    Ok(render("accounts/login.html", &ctx)?)
}

async fn form_login(
    state: web::Data<AppState>,
    session: Session,
    req: HttpRequest,
    body: web::Payload,
) -> HtmlResult<HttpResponse> {
    let f = crate::web::form(&req, body, &session).await?;
    let next = safe_next(f.opt_str("next").ok().flatten().as_deref());
    let email_raw = f.opt_str("email").ok().flatten().unwrap_or_default();
    let password = f.opt_str("password").ok().flatten().unwrap_or_default();
    let result = match Email::parse(&email_raw) {
        Ok(email) if !password.is_empty() && password.len() <= 1024 => {
            login(&state, &session, &req, email.as_str(), password).await.map(|_| ())
        }
        _ => Err(AppError::Unauthorized("Please enter your email and password.".into())),
    };
    match result {
        Ok(()) => Ok(see_other(&next)),
        Err(e @ (AppError::Unauthorized(_) | AppError::TooManyRequests(_))) => {
            let status = actix_web::ResponseError::status_code(&e);
            let (mut ctx, _) = form_page(&state, &session, "Log in").await?;
            ctx.insert("next", &next);
            ctx.insert("email", &email_raw);
            ctx.insert("error", &Some(e.public_message()));
            ctx.insert("notice", &Option::<String>::None);
            Ok(render_status(status, "accounts/login.html", &ctx)?)
        }
        Err(e) => Err(HtmlError(e)),
    }
}

async fn page_register(state: web::Data<AppState>, session: Session) -> HtmlResult<HttpResponse> {
    let (mut ctx, _) = form_page(&state, &session, "Create an account").await?;
    ctx.insert("form", &serde_json::json!({"email": "", "name": ""}));
    ctx.insert("errors", &serde_json::json!({}));
    ctx.insert("error", &Option::<String>::None);
    Ok(render("accounts/register.html", &ctx)?)
}

async fn form_register(
    state: web::Data<AppState>,
    session: Session,
    req: HttpRequest,
    body: web::Payload,
) -> HtmlResult<HttpResponse> {
    let f = crate::web::form(&req, body, &session).await?;
    let entered = serde_json::json!({
        "email": f.opt_str("email").ok().flatten().unwrap_or_default(),
        "name": f.opt_str("name").ok().flatten().unwrap_or_default(),
    });
    let result = match parse_registration(&f) {
        Ok(r) => {
            let password = r.password.as_str().to_string();
            match register(&state, r).await {
                Ok(account) => login(&state, &session, &req, &account.email, password).await.map(|_| ()),
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => Ok(see_other("/?notice=welcome")),
        Err(e @ (AppError::Validation(_) | AppError::Conflict { .. })) => {
            let (mut ctx, _) = form_page(&state, &session, "Create an account").await?;
            ctx.insert("form", &entered);
            ctx.insert("errors", &e.fields().cloned().unwrap_or_default());
            ctx.insert("error", &Some(e.public_message()));
            let status = if matches!(e, AppError::Conflict { .. }) {
                StatusCode::CONFLICT
            } else {
                StatusCode::UNPROCESSABLE_ENTITY
            };
            Ok(render_status(status, "accounts/register.html", &ctx)?)
        }
        Err(e) => Err(HtmlError(e)),
    }
}

async fn form_logout(
    state: web::Data<AppState>,
    session: Session,
    req: HttpRequest,
    body: web::Payload,
) -> HtmlResult<HttpResponse> {
    crate::web::form(&req, body, &session).await?;
    session.logout(&state.store).await?;
    Ok(see_other("/?notice=logged_out"))
}

pub fn configure_api(cfg: &mut web::ServiceConfig) {
    cfg.route("/register", web::post().to(api_register))
        .route("/login", web::post().to(api_login))
        .route("/logout", web::post().to(api_logout))
        .route("/me", web::get().to(api_me));
}

pub fn configure_pages(cfg: &mut web::ServiceConfig) {
    cfg.route("/login", web::get().to(page_login))
        .route("/login", web::post().to(form_login))
        .route("/register", web::get().to(page_register))
        .route("/register", web::post().to(form_register))
        .route("/logout", web::post().to(form_logout));
}
