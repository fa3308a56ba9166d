//! Rules at the shop's edge that every request passes: who the client really is (a proxy's
//! headers are believed only from a trusted proxy), which methods exist (others are a 405 before
//! routing, so they cannot grow metric labels), and the security headers of every answer.

use std::net::IpAddr;

pub use crate::proxies::{valid_proxy_entry, TrustedProxies};
use crate::state::AppState;
use actix_web::{
    body::{BoxBody, MessageBody},
    dev::{ServiceRequest, ServiceResponse},
    http::{
        header::{self, HeaderName, HeaderValue},
        Method,
    },
    middleware::Next,
    web, Error, HttpRequest,
};

/// Methods the shop knows. Anything else is a 405 with this list in `Allow`.
pub const KNOWN_METHODS: [Method; 6] =
    [Method::GET, Method::HEAD, Method::POST, Method::PUT, Method::DELETE, Method::OPTIONS];
const ALLOW: &str = "GET, HEAD, POST, PUT, DELETE, OPTIONS";

/// Pages load only their own stylesheet and images; nothing may frame them; forms post here.
const CSP_HTML: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; \
                        frame-ancestors 'none'; base-uri 'none'";
/// Anything that is not a page (JSON, CSS, text) runs nothing and is framed by nobody.
const CSP_OTHER: &str = "default-src 'none'; frame-ancestors 'none'";

/// Who sent a request: the client's address and whether it reached the edge over HTTPS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Client {
    pub ip: Option<IpAddr>,
    pub https: bool,
}

impl Client {
    /// The address as a key for counters ("unknown" only for a request without a peer).
    /// An IPv6 client is its /64: one host usually has a whole /64 to choose addresses from.
    pub fn key(&self) -> String {
        match self.ip {
            Some(IpAddr::V6(v6)) => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
            Some(ip) => ip.to_string(),
            None => "unknown".into(),
        }
    }
}

/// The TCP peer, unless it is a trusted proxy: then the address in its `X-Real-IP` and the scheme
/// in its `X-Forwarded-Proto`. `X-Forwarded-For` and `Forwarded` are never read: a client can
/// write them, and a proxy that appends passes the client's value on.
pub fn client_of(req: &HttpRequest) -> Client {
    let peer = req.peer_addr().map(|a| a.ip().to_canonical());
    let trusted = match (peer, req.app_data::<web::Data<AppState>>()) {
        (Some(ip), Some(state)) => state.proxies.trusts(ip),
        _ => false,
    };
    if !trusted {
        return Client { ip: peer, https: false };
    }
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    let ip = header("x-real-ip").and_then(|v| v.parse::<IpAddr>().ok()).map(|ip| ip.to_canonical()).or(peer);
    let https = header("x-forwarded-proto").is_some_and(|p| p.eq_ignore_ascii_case("https"));
    Client { ip, https }
}

/// The `Origin` a browser sends for a page of this shop at this request's scheme and `Host`.
pub fn own_origin(req: &HttpRequest) -> Option<String> {
    let host = req.headers().get(header::HOST).and_then(|v| v.to_str().ok()).filter(|h| !h.is_empty())?;
    let scheme = if client_of(req).https { "https" } else { "http" };
    Some(format!("{scheme}://{}", host.to_ascii_lowercase()))
}

/// `Origin` names exactly this shop: scheme, host and port (a default port may be written or not).
pub fn is_own_origin(req: &HttpRequest, origin: &str) -> bool {
    let Some(own) = own_origin(req) else { return false };
    normalize_origin(origin).is_some_and(|o| Some(o) == normalize_origin(&own))
}

/// `scheme://host[:port]` lower-cased with the scheme's default port removed; `None` for anything
/// else (a path, a query, user info, `null`).
fn normalize_origin(origin: &str) -> Option<String> {
    let (scheme, rest) = origin.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if !(scheme == "http" || scheme == "https") || rest.is_empty() || rest.contains(['/', '?', '#', '@']) {
        return None;
    }
    let rest = rest.to_ascii_lowercase();
    let default = if scheme == "https" { ":443" } else { ":80" };
    let host = rest.strip_suffix(default).unwrap_or(&rest);
    Some(format!("{scheme}://{host}"))
}

/// Middleware: unknown methods are a 405; every answer gets the security headers.
pub async fn edge(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    if !KNOWN_METHODS.contains(req.method()) {
        let e = crate::error::AppError::MethodNotAllowed(format!(
            "{} is not a method this shop knows",
            req.method()
        ));
        let mut res = req.into_response(actix_web::ResponseError::error_response(&e));
        res.headers_mut().insert(header::ALLOW, HeaderValue::from_static(ALLOW));
        add_security_headers(res.headers_mut());
        return Ok(res);
    }
    let mut res = next.call(req).await?.map_into_boxed_body();
    add_security_headers(res.headers_mut());
    Ok(res)
}

fn add_security_headers(h: &mut actix_web::http::header::HeaderMap) {
    let is_html = h
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/html"));
    let csp = if is_html { CSP_HTML } else { CSP_OTHER };
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(csp));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(HeaderName::from_static("cross-origin-opener-policy"), HeaderValue::from_static("same-origin"));
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv6_client_is_its_64() {
        let a = Client { ip: Some("2001:db8:1:2::1".parse().unwrap()), https: false };
        let b = Client { ip: Some("2001:db8:1:2:ffff::9".parse().unwrap()), https: false };
        let c = Client { ip: Some("2001:db8:1:3::1".parse().unwrap()), https: false };
        assert_eq!(a.key(), b.key());
        assert_ne!(a.key(), c.key());
        assert_eq!(Client { ip: Some("10.0.0.1".parse().unwrap()), https: false }.key(), "10.0.0.1");
    }

    #[test]
    fn proxy_entries() {
        for ok in ["10.0.0.1", "172.16.0.0/12", "::1", "nginx", "tasks.nginx", "distshop_nginx_1"] {
            assert!(valid_proxy_entry(ok), "{ok}");
        }
        for bad in ["", "a b", "nginx:80", "10.0.0.0/99", "http://nginx"] {
            assert!(!valid_proxy_entry(bad), "{bad}");
        }
    }

    #[test]
    fn literal_proxies_are_trusted_and_others_not() {
        let p = TrustedProxies::new(&["10.1.0.0/16".into(), "192.168.1.5".into(), "nginx".into()]);
        assert!(p.trusts("10.1.2.3".parse().unwrap()));
        assert!(p.trusts("::ffff:192.168.1.5".parse().unwrap()));
        assert!(!p.trusts("192.168.1.6".parse().unwrap()));
        assert!(!p.trusts("127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn origins_compare_scheme_host_and_port() {
        assert_eq!(normalize_origin("http://127.0.0.1:8080").as_deref(), Some("http://127.0.0.1:8080"));
        assert_eq!(normalize_origin("HTTPS://Shop.Example:443").as_deref(), Some("https://shop.example"));
        assert_eq!(normalize_origin("http://shop.example:80").as_deref(), Some("http://shop.example"));
        for bad in [
            "null",
            "garbage",
            "http://shop.example/",
            "http://a@shop.example",
            "ftp://shop.example",
            "http://",
        ] {
            assert_eq!(normalize_origin(bad), None, "{bad}");
        }
        assert_ne!(normalize_origin("https://127.0.0.1:8080"), normalize_origin("http://127.0.0.1:8080"));
        assert_ne!(normalize_origin("http://127.0.0.1:8081"), normalize_origin("http://127.0.0.1:8080"));
    }
}
