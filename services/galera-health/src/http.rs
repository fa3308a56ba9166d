//! A deliberately tiny HTTP/1.x responder: one request per connection,
//! `Connection: close`, plain-text bodies. Enough for HAProxy `option httpchk`,
//! Docker health checks, curl and the Galera entrypoint's peer queries.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest request head accepted; checks send a few hundred bytes at most.
pub const MAX_HEAD: usize = 8192;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestLine {
    pub method: String,
    pub path: String,
    /// Raw query string without the `?` (empty when there is none).
    pub query: String,
}

impl RequestLine {
    /// True when the query has `name=1|true|yes|on` (or a bare `name`).
    pub fn flag(&self, name: &str) -> bool {
        self.query.split('&').any(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, "1"));
            k == name && matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on")
        })
    }
}

/// Parse the request line out of a complete request head.
pub fn parse_request_line(head: &[u8]) -> Option<RequestLine> {
    let text = std::str::from_utf8(head).ok()?;
    let line = text.lines().next()?;
    let mut parts = line.split_ascii_whitespace();
    let method = parts.next()?.to_owned();
    let target = parts.next()?;
    let version = parts.next()?;
    if !version.starts_with("HTTP/") || parts.next().is_some() {
        return None;
    }
    // split off the query string; accept absolute-form targets too
    let (target, query) = target.split_once('?').unwrap_or((target, ""));
    let path = match target.find("://") {
        Some(i) => {
            let rest = &target[i + 3..];
            rest.find('/').map_or("/", |j| &rest[j..])
        }
        None => target,
    };
    Some(RequestLine { method, path: path.to_owned(), query: query.to_owned() })
}

/// True once `buf` holds a whole request head (blank line seen).
pub fn head_complete(buf: &[u8]) -> bool {
    buf.windows(4).any(|w| w == b"\r\n\r\n") || buf.windows(2).any(|w| w == b"\n\n")
}

pub struct Response {
    pub status: u16,
    pub body: String,
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// Serialise a response; `head_only` for HEAD requests.
pub fn render(resp: &Response, head_only: bool) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
        resp.status,
        reason(resp.status),
        resp.body.len()
    )
    .into_bytes();
    if !head_only {
        out.extend_from_slice(resp.body.as_bytes());
    }
    out
}

/// Read a request head within `timeout`. `Ok(None)` when the peer closed or
/// sent something that is not HTTP (a plain TCP check), which is answered
/// with nothing.
pub async fn read_head(stream: &mut TcpStream, timeout: Duration) -> std::io::Result<Option<Vec<u8>>> {
    let mut buf = Vec::with_capacity(512);
    let read = async {
        let mut chunk = [0u8; 1024];
        loop {
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Ok::<_, std::io::Error>(None);
            }
            buf.extend_from_slice(&chunk[..n]);
            if head_complete(&buf) {
                return Ok(Some(()));
            }
            if buf.len() > MAX_HEAD {
                return Ok(None);
            }
        }
    };
    match tokio::time::timeout(timeout, read).await {
        Ok(Ok(Some(()))) => Ok(Some(buf)),
        Ok(Ok(None)) => Ok(None),
        Ok(Err(e)) => Err(e),
        Err(_) => Ok(None),
    }
}

pub async fn write_response(
    stream: &mut TcpStream,
    resp: &Response,
    head_only: bool,
    timeout: Duration,
) -> std::io::Result<()> {
    let bytes = render(resp, head_only);
    match tokio::time::timeout(timeout, async {
        stream.write_all(&bytes).await?;
        stream.shutdown().await
    })
    .await
    {
        Ok(r) => r,
        Err(_) => Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "write timed out")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_haproxy_and_curl_requests() {
        let r = parse_request_line(b"GET / HTTP/1.0\r\n\r\n");
        assert_eq!(r, Some(RequestLine { method: "GET".into(), path: "/".into(), query: String::new() }));
        let r = parse_request_line(b"OPTIONS /health?x=1 HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(r.map(|r| (r.method, r.path)), Some(("OPTIONS".into(), "/health".into())));
        let r = parse_request_line(b"GET http://galera-1:9200/recovery HTTP/1.1\r\n\r\n");
        assert_eq!(r.map(|r| r.path), Some("/recovery".into()));
    }

    #[test]
    fn query_flags() {
        let r = parse_request_line(b"GET /?available_when_donor=true&x=0 HTTP/1.1\r\n\r\n");
        let r = r.unwrap_or(RequestLine { method: String::new(), path: String::new(), query: String::new() });
        assert_eq!(r.path, "/");
        assert!(r.flag("available_when_donor"));
        assert!(!r.flag("x"));
        assert!(!r.flag("missing"));
        let r = parse_request_line(b"GET /?available_when_donor HTTP/1.1\r\n\r\n");
        assert!(r.is_some_and(|r| r.flag("available_when_donor")));
        let r = parse_request_line(b"GET /?available_when_donor=0 HTTP/1.1\r\n\r\n");
        assert!(r.is_some_and(|r| !r.flag("available_when_donor")));
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(parse_request_line(b"\x16\x03\x01binary"), None);
        assert_eq!(parse_request_line(b"GET /\r\n\r\n"), None);
        assert_eq!(parse_request_line(b"GET / FTP/1.0\r\n\r\n"), None);
        assert_eq!(parse_request_line(b""), None);
    }

    #[test]
    fn head_completion() {
        assert!(!head_complete(b"GET / HTTP/1.1\r\nHost: x\r\n"));
        assert!(head_complete(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
        assert!(head_complete(b"GET / HTTP/1.0\n\n"));
    }

    #[test]
    fn renders_status_length_and_head() {
        let resp = Response { status: 503, body: "not ready: x\n".into() };
        let full = String::from_utf8(render(&resp, false)).unwrap_or_default();
        assert!(full.starts_with("HTTP/1.1 503 Service Unavailable\r\n"), "{full}");
        assert!(full.contains("Content-Length: 13\r\n"));
        assert!(full.ends_with("\r\n\r\nnot ready: x\n"));
        let head = String::from_utf8(render(&resp, true)).unwrap_or_default();
        assert!(head.ends_with("\r\n\r\n"));
        assert!(head.contains("Content-Length: 13\r\n"));
    }
}
