//! Accounts: register, log in, log out, who am I — with argon2id hashes, session rotation,
//! anonymous-cart merge at login and login throttling counted in the session store (so the limit
//! holds across replicas).

use std::{sync::LazyLock, time::Duration};

use actix_web::{web, HttpRequest, HttpResponse};
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
    security::{self, Client},
    session::{CurrentUser, Role, Session},
    state::AppState,
    throttle,
    web::{form_page, query_map, render, render_status, safe_next, see_other, EmptyBody},
};

use crate::domain::{CartLine, CartOwner, USER_CART_TTL};

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
/// minutes. One thread per core (at most 4) bounds both the CPU and the memory.
///
/// Under a flood of logins the pool answers at once instead of queueing (hand-rolled: a pool
/// with two lanes and per-client admission, which no crate we found offers):
/// * each client address may have [`Settings::hash_per_client`] checks queued or running; more
///   is a 429 (a single flooder cannot fill the queue);
/// * the queue holds a few checks per thread (well under a second of work); a full queue is a
///   503 with `Retry-After`, and a check that still waited [`MAX_QUEUE_WAIT`] is dropped (503);
/// * logins from a device that logged in to the account before go in a lane of their own that
///   the threads serve first, so a real shopper gets through while unknown clients flood.
///
/// [`Settings::hash_per_client`]: crate::settings::Settings::hash_per_client
struct HashPool {
    lanes: std::sync::Mutex<[std::collections::VecDeque<HashJob>; 2]>,
    ready: std::sync::Condvar,
    per_lane: usize,
    in_flight: std::sync::Mutex<std::collections::HashMap<String, usize>>,
}

struct HashJob {
    queued: std::time::Instant,
    run: Box<dyn FnOnce() + Send + 'static>,
}

/// Which lane of the [`HashPool`] a check waits in.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// A login from a device that logged in to this account before: served first.
    KnownDevice,
    /// Everything else.
    Other,
}

const MAX_QUEUE_WAIT: Duration = Duration::from_secs(2);

static HASHER: LazyLock<Option<std::sync::Arc<HashPool>>> = LazyLock::new(|| {
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).min(4);
    let pool = std::sync::Arc::new(HashPool {
        lanes: Default::default(),
        ready: std::sync::Condvar::new(),
        per_lane: threads * 8,
        in_flight: Default::default(),
    });
    for i in 0..threads {
        let pool = pool.clone();
        let spawned = std::thread::Builder::new().name(format!("password-hash-{i}")).spawn(move || loop {
            let job = {
                let mut lanes = pool.lanes.lock().unwrap_or_else(|p| p.into_inner());
                loop {
                    if let Some(job) = lanes[0].pop_front().or_else(|| lanes[1].pop_front()) {
                        break job;
                    }
                    lanes = pool.ready.wait(lanes).unwrap_or_else(|p| p.into_inner());
                }
            };
            // waited too long: its client has been told nothing yet, and dropping the job
            // answers it 503 now rather than a login that arrives after the client gave up
            if job.queued.elapsed() <= MAX_QUEUE_WAIT {
                (job.run)();
            }
        });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "could not start a password-hashing thread");
            return None;
        }
    }
    Some(pool)
});

/// One client's place among the checks in flight; given back when dropped (also when the
/// request is abandoned).
struct Admission<'a> {
    pool: &'a HashPool,
    client: Option<String>,
}

impl Drop for Admission<'_> {
    fn drop(&mut self) {
        if let Some(c) = &self.client {
            let mut m = self.pool.in_flight.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(n) = m.get_mut(c) {
                *n -= 1;
                if *n == 0 {
                    m.remove(c);
                }
            }
        }
    }
}

/// Run `f` on the hashing threads. `client`: the address and its limit of checks at once
/// (`None`: not a client's request, e.g. seeding).
async fn on_hasher<T: Send + 'static>(
    lane: Lane,
    client: Option<(String, usize)>,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, AppError> {
    let pool = HASHER
        .as_ref()
        .ok_or_else(|| AppError::Unexpected(anyhow::anyhow!("no password-hashing threads")))?;
    let _admission = match client {
        Some((addr, limit)) => {
            let mut m = pool.in_flight.lock().unwrap_or_else(|p| p.into_inner());
            let n = m.entry(addr.clone()).or_default();
            if *n >= limit && lane == Lane::Other {
                return Err(AppError::TooManyRequests(
                    "too many password checks from your address at the same moment; retry in a second".into(),
                    1,
                ));
            }
            *n += 1;
            Admission { pool, client: Some(addr) }
        }
        None => Admission { pool, client: None },
    };
    let (tx, rx) = tokio::sync::oneshot::channel();
    {
        let mut lanes = pool.lanes.lock().unwrap_or_else(|p| p.into_inner());
        let queue = &mut lanes[if lane == Lane::KnownDevice { 0 } else { 1 }];
        if queue.len() >= pool.per_lane {
            return Err(AppError::Unavailable("too many logins at the same moment, please retry".into()));
        }
        queue.push_back(HashJob {
            queued: std::time::Instant::now(),
            run: Box::new(move || drop(tx.send(f()))),
        });
    }
    pool.ready.notify_one();
    rx.await.map_err(|_| AppError::Unavailable("too many logins at the same moment, please retry".into()))
}

/// Hash a password (seeding, admin tools: no client to admit).
pub async fn hash_password(password: String) -> Result<String, AppError> {
    hash_password_for(None, password).await
}

async fn hash_password_for(client: Option<(String, usize)>, password: String) -> Result<String, AppError> {
    on_hasher(Lane::Other, client, move || {
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

async fn verify_password(
    lane: Lane,
    client: (String, usize),
    password: String,
    hash: Option<String>,
) -> Result<bool, AppError> {
    on_hasher(lane, Some(client), move || {
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

async fn register(state: &AppState, client: &Client, r: Registration) -> Result<Account, AppError> {
    // Cheap pre-check saves a hash; the unique constraint is what really decides.
    if find_by_email(&state.db, r.email.as_str()).await?.is_some() {
        return Err(email_taken());
    }
    throttle::reserve_registration(state, client).await?;
    let hash = hash_password_for(
        Some((client.key(), state.settings.hash_per_client)),
        r.password.as_str().to_string(),
    )
    .await?;
    let id = create(&state.db, &r.email, &r.name, &hash, Role::Customer).await?;
    tracing::info!(user.id = id, "account registered");
    Ok(Account { id, email: r.email.into_inner(), name: r.name, role: Role::Customer })
}

/// A successful login: the account, and the device cookie that exempts this browser from the
/// account-wide throttle next time (see [`throttle`]).
pub struct LoggedIn {
    pub account: Account,
    pub device_cookie: actix_web::cookie::Cookie<'static>,
}

/// Check credentials with throttling; on success the session is rotated and carts merged.
async fn login(
    state: &AppState,
    session: &Session,
    req: &HttpRequest,
    email: &str,
    password: String,
) -> Result<LoggedIn, AppError> {
    let client = security::client_of(req);
    let found = find_by_email(&state.db, email).await?;
    // Counted per account, not per spelling: MariaDB's collation finds `ádmin@…` for `admin@…`,
    // and each spelling must not bring 20 tries of its own.
    let subject = throttle::subject(found.as_ref().map(|(a, _)| a.id), email);
    // counted before the hash: parallel attempts each take a slot of the limit
    let reservation = throttle::reserve_login(state, req, &client, &subject).await?;
    let lane = if reservation.known_device { Lane::KnownDevice } else { Lane::Other };
    let ok = verify_password(
        lane,
        (client.key(), state.settings.hash_per_client),
        password,
        found.as_ref().map(|(_, h)| h.clone()),
    )
    .await?;
    let account = match (ok, found) {
        (true, Some((a, _))) => a,
        _ => return Err(AppError::Unauthorized("wrong email or password".into())),
    };
    throttle::login_succeeded(state, &reservation).await?;
    let anonymous_cart = session.anonymous_cart_owner();
    let user = CurrentUser { id: account.id, name: account.name.clone(), role: account.role };
    session.login(&state.store, user, state.settings.session_ttl).await?;
    if let Some(anon) = anonymous_cart {
        merge_cart(state, &anon, &CartOwner::Account(account.id)).await?;
    }
    tracing::info!(user.id = account.id, known_device = reservation.known_device, "logged in");
    let device_cookie = throttle::device_cookie(
        &state.settings.session_key,
        &subject,
        client.https || state.settings.cookie_secure,
    );
    Ok(LoggedIn { account, device_cookie })
}

/// Move the anonymous cart into the account's: quantities add up, capped at 99 and at stock.
async fn merge_cart(state: &AppState, from: &CartOwner, to: &CartOwner) -> Result<(), AppError> {
    let lines = state.store.cart_get(from).await?;
    if lines.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = lines.iter().map(|l| l.product_id).collect();
    let products = catalog::get_many(&state.db, &ids).await?;
    for CartLine { product_id: pid, quantity: qty } in lines {
        // Sold-out products are dropped; the rest is capped at stock and at 99.
        if let Some(p) = products.get(&pid).filter(|p| p.stock > 0) {
            state.store.cart_add(to, pid, qty, p.stock.min(Quantity::MAX), true, USER_CART_TTL, None).await?;
        }
    }
    state.store.cart_clear(from).await?;
    Ok(())
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
        (status = 429, description = "Too many new accounts from this client address (`SHOP_REGISTER_LIMIT` per hour), or too many password checks from it at once; `Retry-After` says when to retry", body = ApiError),
        (status = 503, description = "A backend did not answer in time, or too many password hashes at once; retry", body = ApiError),
    )
)]
async fn api_register(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Payload,
) -> ApiResult<HttpResponse> {
    let f = Fields::from_json(&crate::input::read_body(&req, body).await?)?;
    let account = register(&state, &security::client_of(&req), parse_registration(&f)?).await?;
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
            let status = actix_web::ResponseError::status_code(&e);
            let (mut ctx, _) = form_page(&state, &session, "Log in").await?;
            ctx.insert("next", &next);
            ctx.insert("email", &email_raw);
            ctx.insert("error", &Some(e.public_message()));
            ctx.insert("notice", &Option::<String>::None);
            let mut r = render_status(status, "accounts/login.html", &ctx)?;
            if let Some(secs) = e.retry_after() {
                r.headers_mut().insert(
                    actix_web::http::header::RETRY_AFTER,
                    actix_web::http::header::HeaderValue::from(secs),
                );
            }
            Ok(r)
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
            match register(&state, &security::client_of(&req), r).await {
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
            ctx.insert("errors", &e.fields().cloned().unwrap_or_default());
            ctx.insert("error", &Some(e.public_message()));
            let status = actix_web::ResponseError::status_code(&e);
            let mut r = render_status(status, "accounts/register.html", &ctx)?;
            if let Some(secs) = e.retry_after() {
                r.headers_mut().insert(
                    actix_web::http::header::RETRY_AFTER,
                    actix_web::http::header::HeaderValue::from(secs),
                );
            }
            Ok(r)
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
