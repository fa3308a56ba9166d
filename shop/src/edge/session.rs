//! Server-side sessions: a signed random id in a cookie, the state in the [`Store`].
//!
//! The cookie carries only `<id>.<signature>` (HttpOnly, SameSite=Lax, `Secure` when configured).
//! The signature is an HMAC with `SHOP_SESSION_KEY`, shared by all replicas, so any replica accepts
//! a session made by another and a forged id is rejected without a store round trip. CSRF tokens are
//! an HMAC of the session id: stateless, valid on every replica, and useless without the cookie.
//!
//! Anonymous visitors get an id lazily — only when a page needs it (a form's CSRF token, a cart) —
//! and nothing is written to the store until there is something to keep.

use std::{cell::RefCell, rc::Rc};

use actix_web::{
    body::MessageBody,
    cookie::{Cookie, SameSite},
    dev::{Payload, ServiceRequest, ServiceResponse},
    middleware::Next,
    web, Error, FromRequest, HttpMessage, HttpRequest,
};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

use crate::{
    domain::{CartOwner, UserId},
    error::AppError,
    infra::store::Store,
    state::AppState,
};

pub const COOKIE_NAME: &str = "distshop_session";

/// How long an account's list of sessions lives at least when an older session is put on it
/// (a session's own lifetime is not known there; this covers the longest `SHOP_SESSION_TTL`
/// one would set).
pub const USER_SESSION_LIST_TTL: std::time::Duration = std::time::Duration::from_secs(30 * 24 * 3600);

/// Roles an account can have.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Customer,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Customer => "customer",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Role {
        if s == "admin" {
            Role::Admin
        } else {
            Role::Customer
        }
    }
}

/// The logged-in account, as the session knows it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CurrentUser {
    pub id: UserId,
    pub name: String,
    pub role: Role,
}

impl CurrentUser {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

struct State {
    id: String,
    /// The id came from a valid cookie (so it may have state in the store).
    from_cookie: bool,
    /// The response must (re)set the cookie.
    set_cookie: bool,
    /// The user, once looked up.
    user: Option<Option<CurrentUser>>,
}

/// The request's session. Extract it in a handler: `session: Session`.
#[derive(Clone)]
pub struct Session {
    state: Rc<RefCell<State>>,
    key: Rc<Vec<u8>>,
}

fn new_id() -> String {
    let mut b = [0u8; 24];
    rand::thread_rng().fill_bytes(&mut b);
    hex::encode(b)
}

pub(crate) fn mac(key: &[u8], purpose: &str, id: &str) -> String {
    // HMAC accepts keys of any length, so this cannot fail; fall back to an empty tag regardless.
    match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mut m) => {
            m.update(purpose.as_bytes());
            m.update(b"|");
            m.update(id.as_bytes());
            hex::encode(&m.finalize().into_bytes()[..16])
        }
        Err(_) => String::new(),
    }
}

/// Constant-time comparison of two tokens.
pub(crate) fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The id in a cookie value, if its signature is valid.
fn verify_cookie(key: &[u8], value: &str) -> Option<String> {
    let (id, sig) = value.split_once('.')?;
    (id.len() == 48 && id.bytes().all(|b| b.is_ascii_hexdigit()) && same(sig, &mac(key, "session", id)))
        .then(|| id.to_string())
}

impl Session {
    fn from_request_parts(req: &HttpRequest) -> Option<Session> {
        req.extensions().get::<Session>().cloned()
    }

    /// The session id; from now on the response carries the cookie if it is new.
    pub fn id(&self) -> String {
        let mut s = self.state.borrow_mut();
        if !s.from_cookie {
            s.set_cookie = true;
        }
        s.id.clone()
    }

    /// Whether the visitor came with a valid session cookie. A visitor without one has no state
    /// in the store, so the pages it sees are the same for every such visitor (and cacheable).
    pub fn has_cookie(&self) -> bool {
        self.state.borrow().from_cookie
    }

    /// The CSRF token if this visitor has a session, else "" (no cookie is set for it: a page
    /// for a visitor without a session stays cacheable). Forms a cookieless visitor posts are
    /// checked by their `Origin` instead (see [`crate::edge::web::form`]).
    pub fn csrf_token_if_session(&self) -> String {
        if self.has_cookie() {
            self.csrf_token()
        } else {
            String::new()
        }
    }

    /// The CSRF token for forms rendered in this session.
    pub fn csrf_token(&self) -> String {
        let id = self.id();
        mac(&self.key, "csrf", &id)
    }

    /// Whether a submitted CSRF token belongs to this session's cookie.
    pub fn csrf_ok(&self, token: Option<&str>) -> bool {
        let s = self.state.borrow();
        s.from_cookie && token.is_some_and(|t| same(t, &mac(&self.key, "csrf", &s.id)))
    }

    /// The logged-in user, if any (one store lookup per request at most).
    pub async fn user(&self, store: &Store) -> Result<Option<CurrentUser>, AppError> {
        let (id, from_cookie, cached) = {
            let s = self.state.borrow();
            (s.id.clone(), s.from_cookie, s.user.clone())
        };
        if let Some(u) = cached {
            return Ok(u);
        }
        let (user, listed) = if from_cookie {
            match store.session_get(&id).await? {
                Some(f) => (
                    f.get("uid").and_then(|u| u.parse().ok()).map(|uid| CurrentUser {
                        id: UserId(uid),
                        name: f.get("name").cloned().unwrap_or_default(),
                        role: Role::parse(f.get("role").map(String::as_str).unwrap_or("")),
                    }),
                    f.contains_key("listed"),
                ),
                None => (None, true),
            }
        } else {
            (None, true)
        };
        // A session made before the accounts' lists of sessions existed is on none: it is put on
        // its account's the first time it is used, so a password change ends it too — unless the
        // password was changed meanwhile, which it must not outlive: then it ends now.
        let user = match (user, listed) {
            (Some(u), false) => {
                if store.account_password_was_changed(&u.id).await? {
                    store.session_delete(&id).await?;
                    None
                } else {
                    store.account_session_add(&u.id, &id, USER_SESSION_LIST_TTL).await?;
                    store.session_set_field(&id, "listed", "1").await?;
                    Some(u)
                }
            }
            (user, _) => user,
        };
        self.state.borrow_mut().user = Some(user.clone());
        Ok(user)
    }

    /// The logged-in user, or 401.
    pub async fn require_user(&self, store: &Store) -> Result<CurrentUser, AppError> {
        self.user(store).await?.ok_or_else(|| AppError::Unauthorized("please log in first".into()))
    }

    /// The logged-in user; without one, an error that a page renders as a redirect to the login
    /// page coming back to `back` (and the API as 401).
    pub async fn login_first(&self, store: &Store, back: &str) -> Result<CurrentUser, AppError> {
        self.user(store).await?.ok_or_else(|| AppError::LoginRequired { back: back.to_string() })
    }

    /// An admin, or 401/403.
    pub async fn require_admin(&self, store: &Store) -> Result<CurrentUser, AppError> {
        let u = self.require_user(store).await?;
        if u.is_admin() {
            Ok(u)
        } else {
            Err(AppError::Forbidden("this needs an admin account".into()))
        }
    }

    /// The cart of this visitor: the account's cart when logged in, else the session's.
    pub async fn cart_owner(&self, store: &Store) -> Result<CartOwner, AppError> {
        Ok(match self.user(store).await? {
            Some(u) => CartOwner::Account(u.id),
            None => CartOwner::Session(self.id()),
        })
    }

    /// The anonymous cart of the current id (before login).
    pub fn anonymous_cart_owner(&self) -> Option<CartOwner> {
        let s = self.state.borrow();
        s.from_cookie.then(|| CartOwner::Session(s.id.clone()))
    }

    /// Log in: a NEW session id holds the user (the old one is deleted: no session fixation).
    pub async fn login(
        &self,
        store: &Store,
        user: CurrentUser,
        ttl: std::time::Duration,
    ) -> Result<(), AppError> {
        let new = new_id();
        let fields = [
            ("uid", user.id.to_string()),
            ("name", user.name.clone()),
            ("role", user.role.as_str().into()),
            ("listed", "1".into()),
        ];
        store.session_put(&new, &fields, ttl).await?;
        // the account's list of sessions, for a password change that ends the others
        store.account_session_add(&user.id, &new, ttl).await?;
        let (old, had) = {
            let s = self.state.borrow();
            (s.id.clone(), s.from_cookie)
        };
        if had {
            store.session_delete(&old).await?;
        }
        let mut s = self.state.borrow_mut();
        *s = State { id: new, from_cookie: true, set_cookie: true, user: Some(Some(user)) };
        Ok(())
    }

    /// Log out: the session is deleted and the visitor continues under a fresh anonymous id.
    pub async fn logout(&self, store: &Store) -> Result<(), AppError> {
        let (old, had) = {
            let s = self.state.borrow();
            (s.id.clone(), s.from_cookie)
        };
        if had {
            let user = self.user(store).await?;
            store.session_delete(&old).await?;
            if let Some(u) = user {
                // best effort: a stale id in the list only costs a delete that finds nothing
                if let Err(e) = store.account_session_remove(&u.id, &old).await {
                    tracing::warn!(error = %e, "logged out, but the session stays in the account's list");
                }
            }
        }
        let mut s = self.state.borrow_mut();
        *s = State { id: new_id(), from_cookie: true, set_cookie: true, user: Some(None) };
        Ok(())
    }
}

impl Session {
    /// End every other session of the logged-in account (other browsers, other devices); this
    /// one stays. Goes on past a session it could not end, and fails at the end if there was
    /// one (a retry ends what is left). Answers how many ids it ended (some may have expired).
    pub async fn end_other_sessions(&self, store: &Store) -> Result<usize, AppError> {
        let user = self.require_user(store).await?;
        let current = self.state.borrow().id.clone();
        let (mut ended, mut failed) = (0, None);
        for id in store.account_sessions(&user.id).await? {
            if id == current {
                continue;
            }
            // the session first: an id left in the list costs nothing, a session left alive does
            match store.session_delete(&id).await {
                Ok(()) => {
                    ended += 1;
                    if let Err(e) = store.account_session_remove(&user.id, &id).await {
                        tracing::warn!(error = %e, "a session ended but stays in the account's list");
                    }
                }
                Err(e) => failed = Some(e),
            }
        }
        match failed {
            Some(e) => Err(e.into()),
            None => Ok(ended),
        }
    }
}

impl FromRequest for Session {
    type Error = AppError;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(
            Self::from_request_parts(req)
                .ok_or_else(|| AppError::Unexpected(anyhow::anyhow!("session middleware is not installed"))),
        )
    }
}

/// Middleware: reads the cookie into a [`Session`], and sets the cookie when the id is new or rotated.
pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    // `Secure` when configured, and whenever the visitor came over HTTPS (said by a trusted proxy)
    let (key, secure) = match req.app_data::<web::Data<AppState>>() {
        Some(s) => (
            Rc::new(s.settings.session_key.clone()),
            s.settings.cookie_secure || crate::edge::security::client_of(req.request()).https,
        ),
        None => (Rc::new(Vec::new()), false),
    };
    let from_cookie = req.cookie(COOKIE_NAME).and_then(|c| verify_cookie(&key, c.value()));
    let state = State {
        from_cookie: from_cookie.is_some(),
        id: from_cookie.unwrap_or_else(new_id),
        set_cookie: false,
        user: None,
    };
    let session = Session { state: Rc::new(RefCell::new(state)), key: key.clone() };
    req.extensions_mut().insert(session.clone());
    let mut res = next.call(req).await?;
    let (set, id) = {
        let s = session.state.borrow();
        (s.set_cookie, s.id.clone())
    };
    if set {
        let value = format!("{id}.{}", mac(&key, "session", &id));
        let cookie = Cookie::build(COOKIE_NAME, value)
            .path("/")
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(secure)
            .finish();
        if let Err(e) = res.response_mut().add_cookie(&cookie) {
            tracing::error!(error = %e, "could not set the session cookie");
        }
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_verify_only_with_the_same_key() {
        let id = new_id();
        let value = format!("{id}.{}", mac(b"k1-k1-k1-k1-k1-k1-k1-k1-k1-k1-k1-k1", "session", &id));
        assert_eq!(verify_cookie(b"k1-k1-k1-k1-k1-k1-k1-k1-k1-k1-k1-k1", &value), Some(id.clone()));
        assert_eq!(verify_cookie(b"k2-k2-k2-k2-k2-k2-k2-k2-k2-k2-k2-k2", &value), None);
        assert_eq!(verify_cookie(b"k1", &format!("{id}.00")), None);
        assert_eq!(verify_cookie(b"k1", "garbage"), None);
    }

    #[test]
    fn csrf_tokens_differ_per_session() {
        assert_ne!(mac(b"k", "csrf", "a"), mac(b"k", "csrf", "b"));
        assert_ne!(mac(b"k", "csrf", "a"), mac(b"k", "session", "a"));
    }
}
