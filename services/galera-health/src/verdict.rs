//! The decision: is this Galera node fit to take client traffic?
//!
//! Pure functions only, so the policy is unit-tested without a database.

/// The wsrep status variables the decision looks at, as the server reported
/// them (`None` when the server did not report the variable at all, which is
/// what a server without the Galera provider loaded does).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WsrepStatus {
    pub local_state: Option<String>,
    pub local_state_comment: Option<String>,
    pub cluster_status: Option<String>,
    pub ready: Option<String>,
    pub connected: Option<String>,
    pub cluster_size: Option<String>,
}

/// Variables to ask the server for (`SHOW GLOBAL STATUS WHERE Variable_name IN …`).
pub const VARIABLES: [&str; 6] = [
    "wsrep_local_state",
    "wsrep_local_state_comment",
    "wsrep_cluster_status",
    "wsrep_ready",
    "wsrep_connected",
    "wsrep_cluster_size",
];

impl WsrepStatus {
    /// Build from `(Variable_name, Value)` rows; names are matched
    /// case-insensitively, unknown names are ignored.
    pub fn from_rows<I, K, V>(rows: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: Into<String>,
    {
        let mut s = WsrepStatus::default();
        for (name, value) in rows {
            let slot = match name.as_ref().to_ascii_lowercase().as_str() {
                "wsrep_local_state" => &mut s.local_state,
                "wsrep_local_state_comment" => &mut s.local_state_comment,
                "wsrep_cluster_status" => &mut s.cluster_status,
                "wsrep_ready" => &mut s.ready,
                "wsrep_connected" => &mut s.connected,
                "wsrep_cluster_size" => &mut s.cluster_size,
                _ => continue,
            };
            *slot = Some(value.into());
        }
        s
    }

    /// One line with every value seen, for the response body.
    pub fn describe(&self) -> String {
        fn v(o: &Option<String>) -> &str {
            o.as_deref().unwrap_or("<missing>")
        }
        format!(
            "wsrep_local_state={} ({}) wsrep_cluster_status={} wsrep_ready={} wsrep_connected={} wsrep_cluster_size={}",
            v(&self.local_state),
            v(&self.local_state_comment),
            v(&self.cluster_status),
            v(&self.ready),
            v(&self.connected),
            v(&self.cluster_size),
        )
    }
}

/// Knobs of the policy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Policy {
    /// Also accept a node that is a donor (`wsrep_local_state=2`). mariabackup
    /// SST does not block the donor, but it is slower while streaming; off by
    /// default so the load balancer moves traffic away during an SST.
    pub available_when_donor: bool,
}

/// Outcome of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Fit for traffic; the text lists the values seen.
    Ready(String),
    /// Not fit; the text says why, then lists the values seen.
    NotReady(String),
}

impl Verdict {
    pub fn is_ready(&self) -> bool {
        matches!(self, Verdict::Ready(_))
    }

    pub fn text(&self) -> &str {
        match self {
            Verdict::Ready(t) | Verdict::NotReady(t) => t,
        }
    }
}

const SYNCED: &str = "4";
const DONOR: &str = "2";

/// Ready means: `wsrep_local_state=4` (Synced; or 2 = Donor when the policy
/// allows it), `wsrep_cluster_status=Primary` and `wsrep_ready=ON`.
pub fn evaluate(s: &WsrepStatus, policy: Policy) -> Verdict {
    let mut reasons: Vec<String> = Vec::new();

    match s.local_state.as_deref().map(str::trim) {
        None => reasons.push("wsrep_local_state not reported (is wsrep_on=ON?)".to_owned()),
        Some(SYNCED) => {}
        Some(DONOR) if policy.available_when_donor => {}
        Some(other) => reasons.push(format!(
            "wsrep_local_state is {other} ({}), want 4 (Synced)",
            s.local_state_comment.as_deref().unwrap_or("?")
        )),
    }
    match s.cluster_status.as_deref().map(str::trim) {
        Some(v) if v.eq_ignore_ascii_case("Primary") => {}
        Some(v) => reasons.push(format!("wsrep_cluster_status is {v}, want Primary")),
        None => reasons.push("wsrep_cluster_status not reported".to_owned()),
    }
    match s.ready.as_deref().map(str::trim) {
        Some(v) if v.eq_ignore_ascii_case("ON") => {}
        Some(v) => reasons.push(format!("wsrep_ready is {v}, want ON")),
        None => reasons.push("wsrep_ready not reported".to_owned()),
    }

    if reasons.is_empty() {
        Verdict::Ready(format!("ready: {}", s.describe()))
    } else {
        Verdict::NotReady(format!("not ready: {}; seen: {}", reasons.join("; "), s.describe()))
    }
}

/// Verdict for a check that could not read the status at all.
pub fn unreachable(error: &str) -> Verdict {
    Verdict::NotReady(format!("not ready: cannot query the local node: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(state: &str, comment: &str, cluster: &str, ready: &str) -> WsrepStatus {
        WsrepStatus::from_rows([
            ("wsrep_local_state", state),
            ("wsrep_local_state_comment", comment),
            ("wsrep_cluster_status", cluster),
            ("wsrep_ready", ready),
            ("wsrep_connected", "ON"),
            ("wsrep_cluster_size", "3"),
        ])
    }

    #[test]
    fn synced_primary_ready_is_ready() {
        let v = evaluate(&status("4", "Synced", "Primary", "ON"), Policy::default());
        assert!(v.is_ready(), "{v:?}");
        assert!(v.text().contains("wsrep_local_state=4 (Synced)"));
        assert!(v.text().contains("wsrep_cluster_size=3"));
    }

    #[test]
    fn every_other_local_state_is_not_ready() {
        for (state, comment) in
            [("0", "Undefined"), ("1", "Joining"), ("2", "Donor/Desynced"), ("3", "Joined"), ("5", "Error")]
        {
            let v = evaluate(&status(state, comment, "Primary", "ON"), Policy::default());
            assert!(!v.is_ready(), "state {state} must not be ready");
            assert!(v.text().contains(&format!("wsrep_local_state is {state} ({comment})")), "{}", v.text());
        }
    }

    #[test]
    fn donor_is_ready_only_when_policy_allows() {
        let s = status("2", "Donor/Desynced", "Primary", "ON");
        assert!(!evaluate(&s, Policy::default()).is_ready());
        let allow = Policy { available_when_donor: true };
        assert!(evaluate(&s, allow).is_ready());
        // but a donor outside the primary component is still not ready
        let s = status("2", "Donor/Desynced", "non-Primary", "ON");
        assert!(!evaluate(&s, allow).is_ready());
    }

    #[test]
    fn non_primary_is_not_ready_even_if_synced() {
        let v = evaluate(&status("4", "Synced", "non-Primary", "ON"), Policy::default());
        assert!(!v.is_ready());
        assert!(v.text().contains("wsrep_cluster_status is non-Primary, want Primary"));
    }

    #[test]
    fn wsrep_not_ready_is_not_ready() {
        let v = evaluate(&status("4", "Synced", "Primary", "OFF"), Policy::default());
        assert!(!v.is_ready());
        assert!(v.text().contains("wsrep_ready is OFF, want ON"));
    }

    #[test]
    fn all_reasons_are_listed() {
        let v = evaluate(&status("1", "Joining", "Disconnected", "OFF"), Policy::default());
        let t = v.text();
        assert!(t.contains("wsrep_local_state is 1 (Joining)"), "{t}");
        assert!(t.contains("wsrep_cluster_status is Disconnected"), "{t}");
        assert!(t.contains("wsrep_ready is OFF"), "{t}");
    }

    #[test]
    fn server_without_galera_is_not_ready() {
        let s = WsrepStatus::from_rows(Vec::<(String, String)>::new());
        let v = evaluate(&s, Policy::default());
        assert!(!v.is_ready());
        assert!(v.text().contains("wsrep_local_state not reported"));
        assert!(v.text().contains("wsrep_local_state=<missing>"));
    }

    #[test]
    fn names_are_case_insensitive_and_values_trimmed() {
        let s = WsrepStatus::from_rows([
            ("WSREP_LOCAL_STATE", " 4 "),
            ("Wsrep_Cluster_Status", "primary"),
            ("wsrep_ready", "on"),
            ("unrelated", "x"),
        ]);
        assert!(evaluate(&s, Policy::default()).is_ready());
    }

    #[test]
    fn unreachable_says_why() {
        let v = unreachable("connection refused");
        assert!(!v.is_ready());
        assert_eq!(v.text(), "not ready: cannot query the local node: connection refused");
    }
}
