//! Who may break things: the operator, who holds `CONTROL_TOKEN` (generated per install by
//! compose/init_env.sh). Everyone else — the audience on their phones — reads.
//!
//! * The API takes `Authorization: Bearer <token>`, compared in constant time.
//! * The page has an operator login form: the token once, then a cookie `cr_op` =
//!   `<nonce>.<HMAC(token, "op:" nonce)>`, HttpOnly, SameSite=Strict, nothing kept on the
//!   server (a restart keeps the login, a new token ends every login). Every state-changing
//!   request made with the cookie also carries the CSRF token `HMAC(token, "csrf:" nonce)` (a
//!   form field, or `X-CSRF-Token` from the page's script).
//! * Without `CONTROL_TOKEN` the control room is read-only for everyone.

use actix_web::{cookie::Cookie, HttpRequest};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

pub const COOKIE: &str = "cr_op";
pub const CSRF_HEADER: &str = "x-csrf-token";

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

/// The CSRF token of a valid operator cookie.
pub fn cookie_csrf(token: &str, cookie: &str) -> Option<String> {
    let (nonce, sig) = cookie.split_once('.')?;
    if nonce.len() != 32 || !eq(sig, &mac(token, &format!("op:{nonce}"))) {
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
    let sig = mac(token, &format!("op:{nonce}"));
    Cookie::build(COOKIE, format!("{nonce}.{sig}"))
        .path("/")
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
}
