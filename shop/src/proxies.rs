//! The proxies whose client headers (`X-Real-IP`, `X-Forwarded-Proto`) are believed: parsed from
//! `SHOP_TRUSTED_PROXIES` and, for host names, looked up again and again. Below the settings,
//! which check its entries, and the shared state, which holds it; [`crate::edge::security`] uses it.

use std::{
    net::IpAddr,
    sync::{Arc, RwLock},
    time::Duration,
};

use ipnet::IpNet;

/// How often host-name entries of `SHOP_TRUSTED_PROXIES` are looked up again (nginx containers
/// come and go; Docker's DNS names them).
const RESOLVE_EVERY: Duration = Duration::from_secs(5);
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(2);

/// An entry of `SHOP_TRUSTED_PROXIES`: an address, a network or a host name.
pub fn valid_proxy_entry(s: &str) -> bool {
    s.parse::<IpAddr>().is_ok()
        || s.parse::<IpNet>().is_ok()
        || (!s.is_empty()
            && s.len() <= 253
            && s.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            }))
}

/// The proxies whose client headers are believed.
pub struct TrustedProxies {
    nets: Vec<IpNet>,
    names: Vec<String>,
    resolved: RwLock<Vec<IpAddr>>,
}

impl TrustedProxies {
    pub fn new(entries: &[String]) -> Arc<Self> {
        let mut nets = Vec::new();
        let mut names = Vec::new();
        for e in entries {
            if let Ok(ip) = e.parse::<IpAddr>() {
                nets.push(IpNet::from(ip));
            } else if let Ok(net) = e.parse::<IpNet>() {
                nets.push(net);
            } else {
                names.push(e.clone());
            }
        }
        Arc::new(TrustedProxies { nets, names, resolved: RwLock::new(Vec::new()) })
    }

    pub fn trusts(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.nets.iter().any(|n| n.contains(&ip))
            || self.resolved.read().map(|r| r.contains(&ip)).unwrap_or_else(|p| p.into_inner().contains(&ip))
    }

    /// Resolve the host-name entries now and then every few seconds, for the life of the process.
    /// Until the first answer only the literal entries are trusted (the safe side).
    pub fn spawn_refresh(self: &Arc<Self>) {
        if self.names.is_empty() {
            return;
        }
        let me = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(RESOLVE_EVERY);
            loop {
                tick.tick().await;
                let Some(me) = me.upgrade() else { return };
                let mut found = Vec::new();
                let mut failed = false;
                for name in &me.names {
                    match tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((name.as_str(), 0)))
                        .await
                    {
                        Ok(Ok(addrs)) => found.extend(addrs.map(|a| a.ip().to_canonical())),
                        Ok(Err(e)) => {
                            failed = true;
                            tracing::debug!(proxy = %name, error = %e, "trusted proxy name did not resolve");
                        }
                        Err(_) => failed = true,
                    }
                }
                // a failed lookup keeps what we knew (a DNS hiccup must not flip every client to
                // the proxy's address); a name that resolves to nothing any more is dropped
                if failed && found.is_empty() {
                    continue;
                }
                found.sort();
                found.dedup();
                let mut resolved = me.resolved.write().unwrap_or_else(|p| p.into_inner());
                *resolved = found;
                drop(resolved);
            }
        });
    }
}
