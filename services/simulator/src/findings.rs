//! What the content checks found: violations (with who, where, what), ambiguous outcomes that were
//! resolved by reading back, and plain journey counters.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::metrics::ErrorClass;

/// A broken promise of the shop, as a shopper sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// A cart, order or catalog response that contradicts what this shopper's acknowledged
    /// actions say it must hold (lost or phantom cart change, wrong order lines or total, …).
    Content,
    /// 401 while the shopper believes it is logged in.
    LostSession,
    /// An acknowledged order missing from the shopper's order list.
    LostOrder,
    /// One idempotency key → two orders, or an acknowledged order listed twice.
    DuplicateOrder,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Content, Kind::LostSession, Kind::LostOrder, Kind::DuplicateOrder];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Content => "content",
            Kind::LostSession => "lost-session",
            Kind::LostOrder => "lost-order",
            Kind::DuplicateOrder => "duplicate-order",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Finding {
    pub kind: Kind,
    /// Seconds since the load started.
    pub t_s: f64,
    /// Virtual shopper (account) number and its email.
    pub shopper: u64,
    pub email: String,
    pub endpoint: String,
    pub served_by: Option<String>,
    pub request_id: Option<String>,
    pub detail: String,
}

/// How many findings are kept in full; counts are always exact.
pub const MAX_DETAILS: usize = 2000;

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Findings {
    pub counts: BTreeMap<Kind, u64>,
    pub details: Vec<Finding>,
    /// Ambiguous outcomes (timeout / 5xx / connection lost on a request that may have been
    /// applied), by operation, that were resolved by reading the state back. Not violations.
    pub ambiguous: BTreeMap<String, u64>,
    /// Ambiguous outcomes that could not be resolved (the read-back failed too); the model was
    /// marked uncertain and re-synchronised on the next successful read.
    pub unresolved: BTreeMap<String, u64>,
    /// Plain journey counters: journeys, registrations, orders acknowledged, …
    pub counters: BTreeMap<String, u64>,
}

impl Findings {
    pub fn add(&mut self, f: Finding) {
        *self.counts.entry(f.kind).or_default() += 1;
        if self.details.len() < MAX_DETAILS {
            self.details.push(f);
        }
    }

    pub fn count(&self, k: Kind) -> u64 {
        self.counts.get(&k).copied().unwrap_or(0)
    }

    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }

    pub fn bump(&mut self, counter: &str) {
        self.bump_by(counter, 1);
    }

    pub fn bump_by(&mut self, counter: &str, n: u64) {
        *self.counters.entry(counter.to_string()).or_default() += n;
    }

    pub fn counter(&self, counter: &str) -> u64 {
        self.counters.get(counter).copied().unwrap_or(0)
    }

    pub fn ambiguous(&mut self, op: &str) {
        *self.ambiguous.entry(op.to_string()).or_default() += 1;
    }

    pub fn unresolved(&mut self, op: &str) {
        *self.unresolved.entry(op.to_string()).or_default() += 1;
    }
}

/// What makes the run exit non-zero (`--fail-on`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailOn {
    Content,
    LostSession,
    LostOrder,
    DuplicateOrder,
    /// Any 5xx answer.
    #[serde(rename = "5xx")]
    Server5xx,
    /// Any connection error or timeout.
    Network,
    /// Any 4xx the journey did not expect.
    #[serde(rename = "unexpected-4xx")]
    Unexpected4xx,
    /// Any ambiguous outcome that could not be resolved.
    Unresolved,
}

impl FailOn {
    pub const DEFAULT: [FailOn; 4] =
        [FailOn::Content, FailOn::LostSession, FailOn::LostOrder, FailOn::DuplicateOrder];

    pub fn name(self) -> &'static str {
        match self {
            FailOn::Content => "content",
            FailOn::LostSession => "lost-session",
            FailOn::LostOrder => "lost-order",
            FailOn::DuplicateOrder => "duplicate-order",
            FailOn::Server5xx => "5xx",
            FailOn::Network => "network",
            FailOn::Unexpected4xx => "unexpected-4xx",
            FailOn::Unresolved => "unresolved",
        }
    }

    /// `content,lost-session`, `default`, `all` or `none`.
    pub fn parse_list(s: &str) -> Result<Vec<FailOn>, String> {
        let all = [
            FailOn::Content,
            FailOn::LostSession,
            FailOn::LostOrder,
            FailOn::DuplicateOrder,
            FailOn::Server5xx,
            FailOn::Network,
            FailOn::Unexpected4xx,
            FailOn::Unresolved,
        ];
        let mut out = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part {
                "none" => {}
                "default" => out.extend(FailOn::DEFAULT),
                "all" => out.extend(all),
                name => match all.iter().find(|f| f.name() == name) {
                    Some(f) => out.push(*f),
                    None => {
                        return Err(format!(
                            "unknown --fail-on item `{name}`; use any of {} or default, all, none",
                            all.iter().map(|f| f.name()).collect::<Vec<_>>().join(", ")
                        ))
                    }
                },
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }
}

/// The verdict: which `--fail-on` conditions were met, with their counts.
pub fn verdict(fail_on: &[FailOn], findings: &Findings, totals: &[u64; 6]) -> Vec<(FailOn, u64)> {
    fail_on
        .iter()
        .map(|f| {
            let n = match f {
                FailOn::Content => findings.count(Kind::Content),
                FailOn::LostSession => findings.count(Kind::LostSession),
                FailOn::LostOrder => findings.count(Kind::LostOrder),
                FailOn::DuplicateOrder => findings.count(Kind::DuplicateOrder),
                FailOn::Server5xx => totals[ErrorClass::Server5xx.index()],
                FailOn::Network => totals[ErrorClass::Network.index()] + totals[ErrorClass::Timeout.index()],
                FailOn::Unexpected4xx => totals[ErrorClass::Unexpected4xx.index()],
                FailOn::Unresolved => findings.unresolved.values().sum(),
            };
            (*f, n)
        })
        .filter(|(_, n)| *n > 0)
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn finding(kind: Kind) -> Finding {
        Finding {
            kind,
            t_s: 1.0,
            shopper: 7,
            email: "a@b.c".into(),
            endpoint: "GET /api/me".into(),
            served_by: Some("shop-2".into()),
            request_id: None,
            detail: "401 while logged in".into(),
        }
    }

    #[test]
    fn fail_on_parsing() {
        assert_eq!(FailOn::parse_list("default").unwrap(), FailOn::DEFAULT.to_vec());
        assert_eq!(FailOn::parse_list("none").unwrap(), vec![]);
        assert_eq!(
            FailOn::parse_list("5xx, lost-session").unwrap(),
            vec![FailOn::LostSession, FailOn::Server5xx]
        );
        assert_eq!(FailOn::parse_list("all").unwrap().len(), 8);
        assert!(FailOn::parse_list("lost-sesion").is_err());
    }

    #[test]
    fn verdict_counts_only_what_is_asked() {
        let mut f = Findings::default();
        let mut totals = [0u64; 6];
        assert!(verdict(&FailOn::DEFAULT, &f, &totals).is_empty());
        totals[ErrorClass::Server5xx.index()] = 3;
        assert!(verdict(&FailOn::DEFAULT, &f, &totals).is_empty(), "5xx alone does not fail by default");
        assert_eq!(verdict(&[FailOn::Server5xx], &f, &totals), vec![(FailOn::Server5xx, 3)]);
        f.add(finding(Kind::LostSession));
        f.add(finding(Kind::LostSession));
        assert_eq!(verdict(&FailOn::DEFAULT, &f, &totals), vec![(FailOn::LostSession, 2)]);
        assert!(verdict(&[FailOn::Content], &f, &totals).is_empty());
    }

    #[test]
    fn details_are_capped_counts_are_not() {
        let mut f = Findings::default();
        for _ in 0..MAX_DETAILS + 10 {
            f.add(finding(Kind::Content));
        }
        assert_eq!(f.details.len(), MAX_DETAILS);
        assert_eq!(f.count(Kind::Content), (MAX_DETAILS + 10) as u64);
    }
}
