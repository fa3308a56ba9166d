//! The request-id search over the central logs (`GET /api/logs?request_id=…`).
//!
//! The stack's log collector writes `*.log` files under `CONTROL_LOG_DIR`, one JSON object per
//! line: `{"ts":"2026-12-04T22:10:01.123456+00:00","service":"distshop-shop-2","line":"…"}`.
//! The id is matched as a whole token (like `compose/logs.sh`) and is at least [`MIN_ID_LEN`]
//! characters long. A search reads the newest files first and at most `CONTROL_LOG_SCAN_MB` bytes in all (of a
//! file larger than what is left, its newest part: the end), keeps the lines whose `line`
//! contains the id, at most [`MAX_MATCHES`], and answers them sorted by `ts`. Bounded, so a
//! search costs at most a few hundred milliseconds of one thread, whatever the log volume;
//! older lines beyond the cap are not found (the answer says how much was read).

use std::{
    fs,
    io::{BufRead, BufReader, Read, Seek, SeekFrom},
    path::Path,
};

use serde::{Deserialize, Serialize};

/// Lines one search answers at most.
pub const MAX_MATCHES: usize = 500;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct LogLine {
    pub ts: String,
    pub service: String,
    pub line: String,
}

#[derive(Debug, Default)]
pub struct Found {
    pub lines: Vec<LogLine>,
    pub bytes_read: u64,
    pub files_read: usize,
    /// The byte cap or the match cap cut the search short.
    pub truncated: bool,
}

/// The shortest id a search accepts: nginx's ids are 32 hex digits, and a shorter one (`a`,
/// `GET`) would turn the request-id search into a reader of every service's lines for anyone
/// who can open the page.
pub const MIN_ID_LEN: usize = 8;

/// A byte a request id may hold: letters, digits and `. _ : -`, as `compose/logs.sh` accepts.
fn id_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-')
}

/// A request id to search for: 8..=128 of letters, digits and `. _ : -` (nginx's ids, the
/// simulator's and the tests' ids; `compose/logs.sh` accepts the same).
pub fn valid_request_id(s: &str) -> bool {
    (MIN_ID_LEN..=128).contains(&s.len()) && s.bytes().all(id_byte)
}

/// `id` in `hay` as a whole token: not preceded or followed by a byte an id may hold, so
/// `rid-4` does not find `rid-42` (the same rule as `compose/logs.sh`).
pub fn contains_token(hay: &str, id: &str) -> bool {
    let h = hay.as_bytes();
    let mut from = 0;
    while let Some(i) = hay.get(from..).and_then(|rest| rest.find(id)) {
        let start = from + i;
        let end = start + id.len();
        let before_ok = start == 0 || !id_byte(h[start - 1]);
        let after_ok = end == h.len() || !id_byte(h[end]);
        if before_ok && after_ok {
            return true;
        }
        from = start + 1;
    }
    false
}

/// The search itself (blocking file I/O: run it off the async workers).
pub fn search(dir: &Path, id: &str, cap: u64) -> std::io::Result<Found> {
    let mut files: Vec<(std::time::SystemTime, std::path::PathBuf, u64)> = Vec::new();
    for e in fs::read_dir(dir)? {
        let Ok(e) = e else { continue };
        let p = e.path();
        if p.extension().and_then(|x| x.to_str()) != Some("log") {
            continue;
        }
        let Ok(m) = e.metadata() else { continue };
        if !m.is_file() {
            continue;
        }
        files.push((m.modified().unwrap_or(std::time::UNIX_EPOCH), p, m.len()));
    }
    files.sort_by_key(|f| std::cmp::Reverse(f.0));
    let mut found = Found::default();
    let mut left = cap;
    for (_, path, len) in files {
        if left == 0 {
            found.truncated = true;
            break;
        }
        let Ok(mut f) = fs::File::open(&path) else { continue };
        let take = len.min(left);
        let skipped = len > take;
        if skipped {
            found.truncated = true;
            f.seek(SeekFrom::Start(len - take))?;
        }
        // line by line: memory stays at one line, whatever the cap
        let mut r = BufReader::with_capacity(64 * 1024, f.take(take));
        let mut buf = Vec::new();
        let mut first = true;
        loop {
            buf.clear();
            let n = r.read_until(b'\n', &mut buf)?;
            if n == 0 {
                break;
            }
            left = left.saturating_sub(n as u64);
            found.bytes_read += n as u64;
            if std::mem::take(&mut first) && skipped {
                continue; // began mid-line
            }
            let l = String::from_utf8_lossy(&buf);
            if !l.contains(id) {
                continue;
            }
            let Ok(ll) = serde_json::from_str::<LogLine>(l.trim_end()) else { continue };
            if !contains_token(&ll.line, id) {
                continue;
            }
            found.lines.push(ll);
            if found.lines.len() >= MAX_MATCHES {
                found.truncated = true;
                break;
            }
        }
        found.files_read += 1;
        if found.lines.len() >= MAX_MATCHES {
            break;
        }
    }
    found.lines.sort_by(|a, b| a.ts.cmp(&b.ts));
    Ok(found)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::io::Write;

    fn line(ts: &str, service: &str, l: &str) -> String {
        serde_json::json!({"ts": ts, "service": service, "line": l}).to_string()
    }

    #[test]
    fn request_ids_are_checked_like_the_shop_does() {
        assert!(valid_request_id("3f2a9c1e0b7d4e5fa1b2c3d4e5f60718"));
        assert!(valid_request_id("browser-test-1"));
        assert!(!valid_request_id(""));
        assert!(!valid_request_id("GET"), "too short: would read every line");
        assert!(!valid_request_id("a\"b<c>d;e"));
        assert!(!valid_request_id("has space"));
        assert!(!valid_request_id("ünicode"));
        assert!(!valid_request_id(&"x".repeat(129)));
    }

    #[test]
    fn the_id_is_matched_as_a_whole_token() {
        assert!(contains_token(r#"{"request_id":"abc-1234"}"#, "abc-1234"));
        assert!(contains_token("abc-1234", "abc-1234"));
        assert!(!contains_token("abc-12345", "abc-1234"));
        assert!(!contains_token("xabc-1234", "abc-1234"));
        assert!(!contains_token("xabc-1234 abc-1234.", "abc-1234"));
        assert!(contains_token("xabc-1234 abc-1234 ", "abc-1234"));
        assert!(contains_token("ünï abc-1234", "abc-1234"));
    }

    #[test]
    fn matching_lines_of_every_file_sorted_by_time() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = fs::File::create(dir.path().join("nginx.log")).unwrap();
        writeln!(
            a,
            "{}",
            line(
                "2026-12-04T22:10:01.200000+00:00",
                "distshop-nginx-1",
                r#"{"request_id":"rid-42","status":200}"#
            )
        )
        .unwrap();
        writeln!(
            a,
            "{}",
            line("2026-12-04T22:10:02.000000+00:00", "distshop-nginx-1", r#"{"request_id":"rid-7"}"#)
        )
        .unwrap();
        let mut b = fs::File::create(dir.path().join("shop.log")).unwrap();
        writeln!(
            b,
            "{}",
            line(
                "2026-12-04T22:10:01.100000+00:00",
                "distshop-shop-2",
                r#"{"request_id":"rid-42","message":"request finished"}"#
            )
        )
        .unwrap();
        writeln!(b, "not json rid-42").unwrap();
        // the id in the service name only: not a match
        writeln!(b, "{}", line("2026-12-04T22:10:01.300000+00:00", "rid-42", "other")).unwrap();
        fs::write(dir.path().join("notes.txt"), line("2026-12-04T22:10:00+00:00", "x", "rid-42")).unwrap();

        // a longer id that starts with the one searched: not a match
        writeln!(b, "{}", line("2026-12-04T22:10:01.400000+00:00", "distshop-shop-1", "rid-421 other"))
            .unwrap();

        let f = search(dir.path(), "rid-42", 1 << 20).unwrap();
        let services: Vec<&str> = f.lines.iter().map(|l| l.service.as_str()).collect();
        assert_eq!(services, vec!["distshop-shop-2", "distshop-nginx-1"]);
        assert_eq!(f.files_read, 2);
        assert!(!f.truncated);
        assert!(search(dir.path(), "rid-9", 1 << 20).unwrap().lines.is_empty());
    }

    #[test]
    fn the_byte_cap_reads_the_newest_part_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = fs::File::create(dir.path().join("big.log")).unwrap();
        for i in 0..1000 {
            writeln!(
                a,
                "{}",
                line(&format!("2026-12-04T22:{:02}:00+00:00", i % 60), "s", &format!("old {i}"))
            )
            .unwrap();
        }
        writeln!(a, "{}", line("2026-12-04T23:00:00+00:00", "s", "newest rid-1")).unwrap();
        let f = search(dir.path(), "rid-1", 2000).unwrap();
        assert!(f.truncated);
        assert!(f.bytes_read <= 2000);
        assert_eq!(f.lines.len(), 1);
        assert_eq!(f.lines[0].line, "newest rid-1");
    }
}
