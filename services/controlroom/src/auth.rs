//! Who may break things: the operator, who holds `CONTROL_TOKEN` (generated per install by
//! compose/init_env.sh). Everyone else — the audience on their phones — reads.
//!
//! * The API takes `Authorization: Bearer <token>`, compared in constant time.
//! * The page has an operator login form: the token once, then a cookie `cr_op` =
//!   `<nonce>.<expires>.<HMAC(token, "op:" nonce ":" expires)>`, HttpOnly, SameSite=Strict,
//!   nothing kept on the server (a restart keeps the login, a new token ends every login). The
//!   login lasts [`LOGIN_LIFETIME`] (a teaching day): `expires` (Unix seconds) is signed, so a
//!   copied cookie stops working then, whatever the browser keeps. Every state-changing
//!   request made with the cookie also carries the CSRF token `HMAC(token, "csrf:" nonce)` (a
//!   form field, or `X-CSRF-Token` from the page's script).
//! * Without `CONTROL_TOKEN` the control room is read-only for everyone.

use actix_web::{cookie::Cookie, HttpRequest};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

pub const COOKIE: &str = "cr_op";
pub const CSRF_HEADER: &str = "x-csrf-token";
/// How long an operator login lasts.
pub const LOGIN_LIFETIME: std::time::Duration = std::time::Duration::from_secs(12 * 3600);

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn mac(token: &str, msg: &str) -> String {
    // HMAC takes a key of any length: this cannot fail
    let mut m = match <Hmac<Sha256> as Mac>::new_from_slice(token.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    m.update(msg.as_bytes());
    hex::encode(m.finalize().into_bytes())
}

fn eq(a: &str, b: &str) -> bool {
    constant_time_eq::constant_time_eq(a.as_bytes(), b.as_bytes())
}

/// The operator's standing for one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    Audience,
    /// Logged in on the page; the CSRF token its forms must carry.
    Operator {
        csrf: String,
    },
    /// Sent the bearer token.
    Bearer,
}

impl Caller {
    pub fn is_operator(&self) -> bool {
        !matches!(self, Caller::Audience)
    }
    pub fn csrf(&self) -> Option<&str> {
        match self {
            Caller::Operator { csrf } => Some(csrf),
            _ => None,
        }
    }
}

pub fn bearer_ok(token: Option<&str>, req: &HttpRequest) -> bool {
    let Some(token) = token else { return false };
    let given = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    eq(given, token)
}

/// The CSRF token of an operator cookie that is genuine and not yet expired.
pub fn cookie_csrf(token: &str, cookie: &str) -> Option<String> {
    cookie_csrf_at(token, cookie, unix_now())
}

fn cookie_csrf_at(token: &str, cookie: &str, now: u64) -> Option<String> {
    let mut parts = cookie.splitn(3, '.');
    let (nonce, expires, sig) = (parts.next()?, parts.next()?, parts.next()?);
    if nonce.len() != 32 || !eq(sig, &mac(token, &format!("op:{nonce}:{expires}"))) {
        return None;
    }
    // checked after the signature: only a value this control room signed is read as a time
    if expires.parse::<u64>().ok()? <= now {
        return None;
    }
    Some(mac(token, &format!("csrf:{nonce}")))
}

pub fn caller(token: Option<&str>, req: &HttpRequest) -> Caller {
    let Some(t) = token else { return Caller::Audience };
    if bearer_ok(token, req) {
        return Caller::Bearer;
    }
    match req.cookie(COOKIE).and_then(|c| cookie_csrf(t, c.value())) {
        Some(csrf) => Caller::Operator { csrf },
        None => Caller::Audience,
    }
}

/// May this request change something? Bearer, or the cookie with its CSRF token (form field or
/// header).
pub fn may_act(token: Option<&str>, req: &HttpRequest, form_csrf: Option<&str>) -> bool {
    match caller(token, req) {
        Caller::Bearer => true,
        Caller::Operator { csrf } => {
            let header = req.headers().get(CSRF_HEADER).and_then(|v| v.to_str().ok());
            form_csrf.or(header).is_some_and(|given| eq(given, &csrf))
        }
        Caller::Audience => false,
    }
}

/// A fresh login cookie for the holder of `token`.
pub fn login_cookie(token: &str, secure: bool) -> Cookie<'static> {
    let mut n = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut n);
    let nonce = hex::encode(n);
    let expires = unix_now() + LOGIN_LIFETIME.as_secs();
    let sig = mac(token, &format!("op:{nonce}:{expires}"));
    Cookie::build(COOKIE, format!("{nonce}.{expires}.{sig}"))
        .path("/")
        .max_age(actix_web::cookie::time::Duration::seconds(LOGIN_LIFETIME.as_secs() as i64))
        .http_only(true)
        .secure(secure)
        .same_site(actix_web::cookie::SameSite::Strict)
        .finish()
}

pub fn token_matches(token: Option<&str>, given: &str) -> bool {
    token.is_some_and(|t| eq(given.trim(), t))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use actix_web::test::TestRequest;

    const T: &str = "operator-token-0123456789";

    #[test]
    fn bearer_cookie_and_csrf() {
        let r =
            TestRequest::default().insert_header(("Authorization", format!("Bearer {T}"))).to_http_request();
        assert_eq!(caller(Some(T), &r), Caller::Bearer);
        assert!(may_act(Some(T), &r, None));
        let r = TestRequest::default()
            .insert_header(("Authorization", "Bearer wrong-token-xxxxxxxx"))
            .to_http_request();
        assert_eq!(caller(Some(T), &r), Caller::Audience);
        // no token configured: nobody acts
        let r = TestRequest::default().insert_header(("Authorization", "Bearer ")).to_http_request();
        assert!(!may_act(None, &r, None));

        let c = login_cookie(T, false);
        assert!(c.http_only().unwrap_or(false));
        let r = TestRequest::default().cookie(c.clone()).to_http_request();
        let Caller::Operator { csrf } = caller(Some(T), &r) else { panic!("not an operator") };
        assert!(!may_act(Some(T), &r, None), "cookie without the CSRF token");
        assert!(!may_act(Some(T), &r, Some("forged")));
        assert!(may_act(Some(T), &r, Some(&csrf)));
        // the same cookie under another install's token
        assert_eq!(caller(Some("another-token-0123456789"), &r), Caller::Audience);
        // a forged cookie
        let forged = Cookie::new(COOKIE, format!("{}.{}", "0".repeat(32), "f".repeat(64)));
        let r = TestRequest::default().cookie(forged).to_http_request();
        assert_eq!(caller(Some(T), &r), Caller::Audience);
    }

    #[test]
    fn a_login_ends_when_its_signed_expiry_passes() {
        let value = login_cookie(T, false).value().to_string();
        let parts: Vec<&str> = value.split('.').collect();
        assert_eq!(parts.len(), 3, "nonce.expires.signature: {value}");
        let expires: u64 = parts[1].parse().unwrap();
        let now = unix_now();
        assert!(expires > now + LOGIN_LIFETIME.as_secs() - 60 && expires <= now + LOGIN_LIFETIME.as_secs());
        assert!(cookie_csrf_at(T, &value, expires - 1).is_some(), "valid until it expires");
        assert!(cookie_csrf_at(T, &value, expires).is_none(), "not at its expiry");
        assert!(cookie_csrf_at(T, &value, expires + 3600).is_none(), "nor after");
        // a later expiry written into the cookie breaks its signature
        let stretched = format!("{}.{}.{}", parts[0], expires + 86_400, parts[2]);
        assert!(cookie_csrf_at(T, &stretched, now).is_none());
        // the format before expiries were signed (nonce.signature) is no login
        let old = format!("{}.{}", parts[0], mac(T, &format!("op:{}", parts[0])));
        assert!(cookie_csrf_at(T, &old, now).is_none());
        assert!(cookie_csrf_at(T, "x.y.z", now).is_none());
    }
}
