//! Registering and logging in: validation, throttling, hashing, session rotation, cart merge.

use actix_web::HttpRequest;

use crate::{
    areas::catalog,
    domain::{CartLine, CartOwner, ProductId, UserId, USER_CART_TTL},
    edge::input::{Email, Fields, Password, PersonName, Quantity, Validator},
    edge::security::{self, Client},
    edge::session::{CurrentUser, Role, Session},
    edge::throttle,
    error::AppError,
    state::AppState,
};

use super::{
    hasher::{hash_password_for, verify_password, Lane},
    repo::{
        create, email_taken, find_by_email, find_by_id, find_registered, password_hash_of, set_password_hash,
        Account, Registered,
    },
};

pub(super) struct Registration {
    pub(super) email: Email,
    pub(super) name: String,
    pub(super) password: Password,
}

pub(super) fn parse_registration(f: &Fields) -> Result<Registration, AppError> {
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

/// Create a customer account. `request_id`: the request's `X-Request-Id`, recorded with the
/// account; the same request sent again (nginx retries a registration whose replica died after
/// it committed) finds the account it made and gets the same answer, not a taken email.
pub(super) async fn register(
    state: &AppState,
    client: &Client,
    r: Registration,
    request_id: Option<&str>,
) -> Result<Account, AppError> {
    // Cheap pre-check saves a hash; the unique constraint is what really decides.
    if let Some(found) = find_registered(&state.db, r.email.as_str()).await? {
        return replayed(state, client, &r, found, request_id).await;
    }
    throttle::reserve_registration(state, client).await?;
    let made = async {
        let hash = hash_password_for(
            Some((client.key(), state.settings.hash_per_client)),
            r.password.as_str().to_string(),
        )
        .await?;
        create(&state.db, &r.email, &r.name, &hash, Role::Customer, request_id).await
    }
    .await;
    let id = match made {
        Ok(id) => id,
        Err(e) => {
            throttle::registration_not_made(state, client).await;
            // the same request on two replicas at once: the one that lost the race is the replay
            if matches!(e, AppError::Conflict { .. }) && request_id.is_some() {
                if let Some(found) = find_registered(&state.db, r.email.as_str()).await? {
                    return replayed(state, client, &r, found, request_id).await;
                }
            }
            return Err(e);
        }
    };
    let id = UserId(id);
    tracing::info!(user.id = id.0, "account registered");
    Ok(Account { id, email: r.email.into_inner(), name: r.name, role: Role::Customer })
}

/// A registration whose email is taken: the account, when this very request made it (the same
/// request id, and the password it carries matches the stored hash: a request id alone is not a
/// credential); otherwise a taken email (409).
async fn replayed(
    state: &AppState,
    client: &Client,
    r: &Registration,
    found: Registered,
    request_id: Option<&str>,
) -> Result<Account, AppError> {
    let same_request = matches!(
        (found.created_by.as_deref(), request_id),
        (Some(made_by), Some(this)) if made_by == this
    );
    if !same_request || found.account.name != r.name {
        return Err(email_taken());
    }
    let ok = verify_password(
        Lane::Other,
        (client.key(), state.settings.hash_per_client),
        r.password.as_str().to_string(),
        Some(found.password_hash),
    )
    .await?;
    if !ok {
        return Err(email_taken());
    }
    tracing::info!(
        user.id = found.account.id.0,
        "account registered (an earlier attempt committed, its answer was lost)"
    );
    Ok(found.account)
}

/// A successful login: the account, and the device cookie that exempts this browser from the
/// account-wide throttle next time (see [`throttle`]).
pub struct LoggedIn {
    pub account: Account,
    pub device_cookie: actix_web::cookie::Cookie<'static>,
}

/// Check credentials with throttling; on success the session is rotated and carts merged.
pub(super) async fn login(
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
    let checked = verify_password(
        lane,
        (client.key(), state.settings.hash_per_client),
        password,
        found.as_ref().map(|(_, h)| h.clone()),
    )
    .await;
    let ok = match checked {
        Ok(ok) => ok,
        Err(e) => {
            throttle::login_not_checked(state, &reservation).await;
            return Err(e);
        }
    };
    let (account, checked_hash) = match (ok, found) {
        (true, Some((a, h))) => (a, h),
        _ => return Err(AppError::Unauthorized("wrong email or password".into())),
    };
    throttle::login_succeeded(state, &reservation).await?;
    let anonymous_cart = session.anonymous_cart_owner();
    let user = CurrentUser { id: account.id, name: account.name.clone(), role: account.role };
    session.login(&state.store, user, state.settings.session_ttl).await?;
    // A password change that landed while this login hashed the old password must not leave
    // it a session: the change writes the hash and then ends the sessions it can see; this login
    // listed its session before reading the hash again, so one of the two sees the other.
    if password_hash_of(&state.db, account.id).await?.as_deref() != Some(checked_hash.as_str()) {
        session.logout(&state.store).await?;
        return Err(AppError::Unauthorized("wrong email or password".into()));
    }
    if let Some(anon) = anonymous_cart {
        merge_cart(state, &anon, &CartOwner::Account(account.id)).await?;
    }
    tracing::info!(user.id = account.id.0, known_device = reservation.known_device, "logged in");
    let device_cookie = throttle::device_cookie(
        &state.settings.session_key,
        &subject,
        client.https || state.settings.cookie_secure,
    );
    Ok(LoggedIn { account, device_cookie })
}

/// A password change: the current password and the new one.
pub(super) struct PasswordChange {
    pub(super) current: String,
    pub(super) new: Password,
}

/// Read a password change (`current_password`, `new_password`): 422 naming each bad field.
pub(super) fn parse_password_change(f: &Fields) -> Result<PasswordChange, AppError> {
    let mut v = Validator::default();
    let current = v.check(
        "current_password",
        f.str("current_password").and_then(|p| match p.len() {
            0 => Err("is required".into()),
            1..=1024 => Ok(p),
            _ => Err("is too long".into()),
        }),
    );
    let new = v.check("new_password", f.str("new_password").and_then(|s| Password::parse(&s)));
    match (current, new) {
        (Some(current), Some(new)) => Ok(PasswordChange { current, new }),
        _ => Err(AppError::Validation(v.errors().clone())),
    }
}

/// Change the logged-in account's password. The current one is checked as a login is (the same
/// throttle, the same hashing pool), which also gives this browser a new session id; then every
/// other session of the account ends: a password change is what a shopper does when they fear
/// someone else is logged in.
pub(super) async fn change_password(
    state: &AppState,
    session: &Session,
    req: &HttpRequest,
    user: &CurrentUser,
    change: PasswordChange,
) -> Result<LoggedIn, AppError> {
    let account = find_by_id(&state.db, user.id)
        .await?
        .ok_or_else(|| AppError::Unauthorized("the account no longer exists".into()))?;
    let done = match login(state, session, req, &account.email, change.current).await {
        Err(AppError::Unauthorized(_)) => {
            return Err(AppError::field("current_password", "is not your current password"))
        }
        r => r?,
    };
    let client = security::client_of(req);
    let hash = hash_password_for(
        Some((client.key(), state.settings.hash_per_client)),
        change.new.as_str().to_string(),
    )
    .await?;
    set_password_hash(&state.db, user.id, &hash).await?;
    // sessions older than the accounts' lists are on none: they check this mark instead
    state.store.account_password_changed(&user.id, crate::edge::session::USER_SESSION_LIST_TTL).await?;
    let ended = session.end_other_sessions(&state.store).await?;
    tracing::info!(user.id = user.id.0, other_sessions = ended, "password changed");
    Ok(done)
}

/// Move the anonymous cart into the account's: quantities add up, capped at 99 and at stock.
pub(super) async fn merge_cart(state: &AppState, from: &CartOwner, to: &CartOwner) -> Result<(), AppError> {
    let lines = state.store.cart_get(from).await?;
    if lines.is_empty() {
        return Ok(());
    }
    let ids: Vec<ProductId> = lines.iter().map(|l| l.product_id).collect();
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
