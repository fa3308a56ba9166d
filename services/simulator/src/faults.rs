//! Fault markers: "at this instant, this happened" (killed shop-2, stopped galera-1, …).
//!
//! The hook is a JSON-lines file, `<report>/faults.jsonl` (and optionally another file given with
//! `--faults`). Anything may append a line to it while the simulation runs — the `distshop-sim
//! mark` subcommand, a fault runner, a shell `echo` — and the simulator picks it up within a
//! second, shows it on the progress output, and puts it on the timeline and the chart. Each line:
//!
//! ```json
//! {"t_unix_ms": 1760000000000, "label": "killed shop-2", "source": "mark"}
//! ```
//!
//! Times are wall-clock milliseconds, so the marker lands where it happened even when it is read
//! later.

use std::{
    fs::OpenOptions,
    io::{Read, Seek, SeekFrom, Write},
    path::{Path, PathBuf},
    time::{SystemTime, UNIX_EPOCH},
};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultEvent {
    pub t_unix_ms: u64,
    pub label: String,
    #[serde(default)]
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A fault placed on the run's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlacedFault {
    /// Seconds since the load started (negative: before it).
    pub t_s: f64,
    pub label: String,
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl PlacedFault {
    pub fn place(e: &FaultEvent, start_unix_ms: u64) -> Self {
        PlacedFault {
            t_s: (e.t_unix_ms as f64 - start_unix_ms as f64) / 1000.0,
            label: e.label.clone(),
            source: e.source.clone(),
            detail: e.detail.clone(),
        }
    }
}

pub fn unix_ms_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// Append one event as one line with one `write` on an `O_APPEND` file, so concurrent writers
/// do not interleave.
pub fn append(path: &Path, e: &FaultEvent) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut line = serde_json::to_string(e).map_err(std::io::Error::other)?;
    line.push('\n');
    let mut f = OpenOptions::new().create(true).append(true).open(path)?;
    f.write_all(line.as_bytes())
}

/// Parse JSON lines; malformed lines are returned as messages, not fatal.
pub fn parse_lines(text: &str) -> (Vec<FaultEvent>, Vec<String>) {
    let mut events = Vec::new();
    let mut errors = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        match serde_json::from_str::<FaultEvent>(line) {
            Ok(e) => events.push(e),
            Err(err) => errors.push(format!("line {}: {err}: {line}", i + 1)),
        }
    }
    (events, errors)
}

pub fn read_all(path: &Path) -> (Vec<FaultEvent>, Vec<String>) {
    match std::fs::read_to_string(path) {
        Ok(t) => parse_lines(&t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (vec![], vec![]),
        Err(e) => (vec![], vec![format!("{}: {e}", path.display())]),
    }
}

/// Follows a growing faults file: each `poll` returns the complete lines added since the last.
#[derive(Debug)]
pub struct Tail {
    pub path: PathBuf,
    offset: u64,
    partial: String,
}

impl Tail {
    pub fn new(path: PathBuf) -> Self {
        Tail { path, offset: 0, partial: String::new() }
    }

    pub fn poll(&mut self) -> Vec<FaultEvent> {
        let Ok(mut f) = std::fs::File::open(&self.path) else { return vec![] };
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        if len < self.offset {
            // Truncated or replaced: start over.
            self.offset = 0;
            self.partial.clear();
        }
        if f.seek(SeekFrom::Start(self.offset)).is_err() {
            return vec![];
        }
        let mut buf = String::new();
        let Ok(n) = f.read_to_string(&mut buf) else { return vec![] };
        self.offset += n as u64;
        self.partial.push_str(&buf);
        let Some(last_nl) = self.partial.rfind('\n') else { return vec![] };
        let complete: String = self.partial.drain(..=last_nl).collect();
        parse_lines(&complete).0
    }
}

/// `distshop-sim mark`: append a marker and say where it went.
pub fn mark(file: &Path, label: &str, source: &str) -> std::io::Result<FaultEvent> {
    let e = FaultEvent {
        t_unix_ms: unix_ms_now(),
        label: label.to_string(),
        source: source.to_string(),
        detail: None,
    };
    append(file, &e)?;
    Ok(e)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn tail_returns_only_new_complete_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/faults.jsonl");
        let mut t = Tail::new(p.clone());
        assert!(t.poll().is_empty(), "a missing file is simply empty");
        mark(&p, "killed shop-2", "test").unwrap();
        let got = t.poll();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].label, "killed shop-2");
        assert!(t.poll().is_empty());
        // A half-written line waits for its newline; a malformed line is skipped.
        let mut f = OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(b"{\"t_unix_ms\": 5, \"label\": \"half").unwrap();
        assert!(t.poll().is_empty());
        f.write_all(b"\"}\nnot json\n").unwrap();
        let got = t.poll();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].t_unix_ms, 5);
        assert_eq!(got[0].label, "half");
        let (all, errors) = read_all(&p);
        assert_eq!(all.len(), 2);
        assert_eq!(errors.len(), 1);
    }

    #[test]
    fn placing_on_the_timeline() {
        let e = FaultEvent { t_unix_ms: 10_500, label: "x".into(), source: "s".into(), detail: None };
        assert_eq!(PlacedFault::place(&e, 10_000).t_s, 0.5);
        assert_eq!(PlacedFault::place(&e, 11_000).t_s, -0.5);
    }
}
