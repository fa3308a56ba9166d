//! One heartbeat stream per replica: `GET /heartbeat?interval_ms=N`, Server-Sent Events whose data
//! is `{"status":"OK", …}` with `status` first. Every well-formed event is a beat; the supervisor
//! decides what silence means.

use std::{sync::Arc, time::Duration};

use futures_util::StreamExt;
use tokio::time::Instant;

use crate::state::Shared;

/// What one SSE event says, if it is a heartbeat.
#[derive(Debug, PartialEq, Eq)]
pub struct Beat {
    pub status: String,
}

/// Parses `data: {"status":"OK", …}` (one event, without the blank line). Anything else, or a
/// payload whose first key is not `status`, is not a beat.
pub fn parse_event(event: &str) -> Option<Beat> {
    let data: String = event
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(|d| d.strip_prefix(' ').unwrap_or(d))
        .collect::<Vec<_>>()
        .join("\n");
    if !data.trim_start().starts_with("{\"status\":") {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(&data).ok()?;
    Some(Beat { status: v.get("status")?.as_str()?.to_string() })
}

/// Splits complete events (separated by a blank line) off the front of `buf`.
pub fn take_events(buf: &mut String) -> Vec<String> {
    let mut out = Vec::new();
    if buf.contains('\r') {
        *buf = buf.replace("\r\n", "\n");
    }
    while let Some(i) = buf.find("\n\n") {
        out.push(buf[..i].to_string());
        buf.drain(..i + 2);
    }
    out
}

/// How one connection ended.
enum Ended {
    /// Could not connect, or no response head in time.
    NoStream,
    /// The stream closed or broke after it had beaten: the process stopped or restarted.
    Broke,
    /// Silent for long: the connection itself may be dead.
    Silent,
}

/// Holds the stream to one replica until aborted, reconnecting after an error, an end of stream,
/// or a silence long enough that the connection itself may be dead (a killed container's
/// connection never closes if its network interface is already gone). A stream that broke after
/// beating is reported (`Shared::stream_lost`): the process exited (Docker restarts it, or it is
/// being stopped), and its restart deserves the start grace, not a verdict of silence.
pub async fn watch(
    shared: Arc<Shared>,
    id: String,
    ip: String,
    port: u16,
    interval: Duration,
    dead_after: Duration,
) {
    let client = match reqwest::Client::builder().connect_timeout(Duration::from_secs(1)).build() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(replica = %id, error = %e, "cannot build an HTTP client");
            return;
        }
    };
    let url = format!("http://{ip}:{port}/heartbeat?interval_ms={}", interval.as_millis());
    let silence_limit = dead_after * 3;
    loop {
        match stream_once(&client, &url, &shared, &id, silence_limit).await {
            Ended::Broke => shared.stream_lost(&id, Instant::now()),
            Ended::NoStream | Ended::Silent => {}
        }
        tokio::time::sleep(interval.min(Duration::from_millis(500))).await;
    }
}

async fn stream_once(
    client: &reqwest::Client,
    url: &str,
    shared: &Shared,
    id: &str,
    silence_limit: Duration,
) -> Ended {
    // a frozen process still completes the TCP handshake (the kernel does it): bound the wait
    // for the response head as well
    let r = match tokio::time::timeout(silence_limit, client.get(url).send()).await {
        Ok(Ok(r)) if r.status().is_success() => r,
        Ok(Ok(r)) => {
            tracing::debug!(replica = %id, status = %r.status(), "heartbeat refused");
            return Ended::NoStream;
        }
        Ok(Err(e)) => {
            tracing::debug!(replica = %id, error = %e, "heartbeat connect failed");
            return Ended::NoStream;
        }
        Err(_) => return Ended::NoStream,
    };
    let mut body = r.bytes_stream();
    let mut buf = String::new();
    let mut beaten = false;
    loop {
        match tokio::time::timeout(silence_limit, body.next()).await {
            Ok(Some(Ok(chunk))) => {
                buf.push_str(&String::from_utf8_lossy(&chunk));
                for e in take_events(&mut buf) {
                    match parse_event(&e) {
                        Some(b) => {
                            beaten = true;
                            shared.beat(id, &b.status, Instant::now());
                        }
                        None => tracing::warn!(replica = %id, event = %e, "not a heartbeat event"),
                    }
                }
                if buf.len() > 64 * 1024 {
                    buf.clear();
                }
            }
            Ok(Some(Err(_))) | Ok(None) => return if beaten { Ended::Broke } else { Ended::NoStream },
            Err(_) => {
                tracing::debug!(replica = %id, "heartbeat stream silent: reconnecting");
                return Ended::Silent;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn a_beat_has_status_as_its_first_key() {
        assert_eq!(
            parse_event(r#"data: {"status":"OK","served_by":"a"}"#),
            Some(Beat { status: "OK".into() })
        );
        assert_eq!(
            parse_event(r#"data: {"status":"UNAVAILABLE","reasons":{}}"#),
            Some(Beat { status: "UNAVAILABLE".into() })
        );
        assert_eq!(parse_event(r#"data: {"served_by":"a","status":"OK"}"#), None);
        assert_eq!(parse_event(": comment"), None);
        assert_eq!(parse_event("data: {\"status\":"), None);
    }

    #[test]
    fn events_are_split_on_blank_lines_and_partial_ones_kept() {
        let mut buf =
            "data: {\"status\":\"OK\"}\n\ndata: {\"status\":\"OK\"}\r\n\r\ndata: {\"sta".to_string();
        let ev = take_events(&mut buf);
        assert_eq!(ev.len(), 2);
        assert_eq!(buf, "data: {\"sta");
        buf.push_str("tus\":\"OK\"}\n\n");
        assert_eq!(take_events(&mut buf).len(), 1);
        assert!(buf.is_empty());
    }
}
