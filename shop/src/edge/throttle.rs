//! Login and registration throttling, counted in the session store so the limits hold across
//! replicas.
//!
//! * An attempt is counted **before** its password is checked (one atomic increment that
//!   reserves the try, refused once the limit is reached), so parallel requests cannot all pass a
//!   check made before any of them was counted. A login that succeeds takes its reservation
//!   back, and so does one that never got to check a password (the hashing pool refused it): the
//!   count is exactly the passwords checked and failed, plus those being checked.
//! * A browser that logged in to an account before carries a **device cookie** for it (signed,
//!   bound to the account's email): its attempts are counted on that device alone, so an attacker
//!   who exhausts the account's budget does not lock its owner out (the scheme of OWASP's "Slow
//!   down online guessing attacks with device cookies").
//! * Attempts without one are limited per account and client address (a single guesser) and per
//!   account from all addresses (many addresses): once those are spent, unknown devices wait for
//!   the window's end; known devices do not.
//! * The client address is [`crate::edge::security::client_of`]'s: headers only from a trusted proxy.

use std::time::Duration;

use actix_web::{
    cookie::{Cookie, SameSite},
    HttpRequest,
};

use crate::{
    edge::security::Client,
    edge::session::{mac, same},
    error::AppError,
    state::AppState,
};

/// Failed logins per account and client address (without a device cookie) per window.
pub const PER_CLIENT: i64 = 5;
/// Logins per account from all devices it does not know, per window.
pub const PER_ACCOUNT: i64 = 20;
/// Failed logins per device cookie per window (a stolen cookie buys no more than a client).
pub const PER_DEVICE: i64 = 5;
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
pub const REGISTER_WINDOW: Duration = Duration::from_secs(3600);

pub const DEVICE_COOKIE: &str = "distshop_device";
const DEVICE_TTL: Duration = Duration::from_secs(365 * 24 * 3600);

/// The counters one login attempt was charged to.
pub struct Reservation {
    /// Reset when the login succeeds (the device's or this client's failures).
    reset: String,
    /// Taken back by one when the login succeeds (the account-wide budget of unknown devices).
    undo: Option<String>,
    /// The attempt comes from a device that logged in to this account before.
    pub known_device: bool,
}

fn too_many(resets_in: Duration) -> AppError {
    let secs = resets_in.as_secs().max(1);
    AppError::TooManyRequests(
        format!(
            "too many failed logins for this account; try again in {} minutes or from a device that has logged in to it before",
            secs.div_ceil(60)
        ),
        secs,
    )
}

/// Who the attempts are counted for: the account when the email finds one (whatever spelling the
/// database's collation matched), else a short digest of the email as typed (lower-cased): a
/// flood of random addresses makes keys of a fixed, small size.
pub fn subject(account_id: Option<crate::domain::UserId>, email: &str) -> String {
    use sha2::Digest;
    match account_id {
        Some(id) => format!("account:{id}"),
        None => {
            format!("email:{}", &hex::encode(sha2::Sha256::digest(email.to_lowercase().as_bytes()))[..24])
        }
    }
}

/// The device id of a valid device cookie for this subject, if the request carries one.
pub fn known_device(req: &HttpRequest, key: &[u8], subject: &str) -> Option<String> {
    let cookie = req.cookie(DEVICE_COOKIE)?;
    let (nonce, sig) = cookie.value().split_once('.')?;
    let want = mac(key, "device", &format!("{subject}|{nonce}"));
    (nonce.len() == 32 && same(sig, &want)).then(|| nonce.to_string())
}

/// A new device cookie for an account (its [`subject`]) that just logged in (kept a year).
pub fn device_cookie(key: &[u8], subject: &str, secure: bool) -> Cookie<'static> {
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    let sig = mac(key, "device", &format!("{subject}|{nonce}"));
    Cookie::build(DEVICE_COOKIE, format!("{nonce}.{sig}"))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        .max_age(actix_web::cookie::time::Duration::seconds(DEVICE_TTL.as_secs() as i64))
        .finish()
}

/// Reserve one login attempt for `subject` (see [`subject`]), or refuse it (429 with
/// `Retry-After`).
pub async fn reserve_login(
    state: &AppState,
    req: &HttpRequest,
    client: &Client,
    subject: &str,
) -> Result<Reservation, AppError> {
    let store = &state.store;
    if let Some(device) = known_device(req, &state.settings.session_key, subject) {
        let key = format!("login:dev:{device}");
        let (n, resets_in) = store.count_event(&key, WINDOW, PER_DEVICE).await?;
        if n > PER_DEVICE {
            return Err(too_many(resets_in));
        }
        return Ok(Reservation { reset: key, undo: None, known_device: true });
    }
    let per_client = format!("login:{subject}:{}", client.key());
    let (n, resets_in) = store.count_event(&per_client, WINDOW, PER_CLIENT).await?;
    if n > PER_CLIENT {
        return Err(too_many(resets_in));
    }
    // no account, no account-wide budget to protect: one key per guess, not two
    if !subject.starts_with("account:") {
        return Ok(Reservation { reset: per_client, undo: None, known_device: false });
    }
    let per_account = format!("login:{subject}");
    let (n, resets_in) = store.count_event(&per_account, WINDOW, PER_ACCOUNT).await?;
    if n > PER_ACCOUNT {
        // refused: this client's count gets its slot back (the attempt checked nothing)
        let _ = store.count_undo(&per_client).await;
        return Err(too_many(resets_in));
    }
    Ok(Reservation { reset: per_client, undo: Some(per_account), known_device: false })
}

/// The attempt succeeded: its client's (or device's) failures are forgiven and the account-wide
/// budget gets this attempt back.
pub async fn login_succeeded(state: &AppState, r: &Reservation) -> Result<(), AppError> {
    state.store.count_reset(&r.reset).await?;
    if let Some(k) = &r.undo {
        state.store.count_undo(k).await?;
    }
    Ok(())
}

/// The attempt did not get to check a password (the hashing pool refused it, a backend failed):
/// it takes nothing of the limits. Without this, nginx asking the next replica after a 503
/// charged one try per replica, and an owner could be locked out without a single wrong
/// password. Best effort: a store error here leaves the count as it was.
pub async fn login_not_checked(state: &AppState, r: &Reservation) {
    let _ = state.store.count_undo(&r.reset).await;
    if let Some(k) = &r.undo {
        let _ = state.store.count_undo(k).await;
    }
}

/// A reserved registration that did not happen (the hash or the insert failed) is given back.
pub async fn registration_not_made(state: &AppState, client: &Client) {
    if state.settings.register_limit > 0 {
        let _ = state.store.count_undo(&format!("register:{}", client.key())).await;
    }
}

/// Reserve one registration for this client address (`SHOP_REGISTER_LIMIT` per hour; 0: none).
pub async fn reserve_registration(state: &AppState, client: &Client) -> Result<(), AppError> {
    let limit = state.settings.register_limit;
    if limit == 0 {
        return Ok(());
    }
    let (n, resets_in) = state
        .store
        .count_event(&format!("register:{}", client.key()), REGISTER_WINDOW, i64::from(limit))
        .await?;
    if n > i64::from(limit) {
        let secs = resets_in.as_secs().max(1);
        return Err(AppError::TooManyRequests(
            format!("too many new accounts from your address; try again in {} minutes", secs.div_ceil(60)),
            secs,
        ));
    }
    Ok(())
}
