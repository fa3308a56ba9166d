//! The replica's name: what `X-Served-By`, the page footer and the probes (`/healthz`, `/readyz`,
//! `/heartbeat`) call the process that answered, so a class watching round robin reads `shop-2`
//! rather than a container id.
//!
//! Where it comes from, first that applies:
//! 1. `SHOP_REPLICA_NAME` (checked by the settings with [`valid_name`]; Swarm's stack sets
//!    `shop-{{.Task.Slot}}`);
//! 2. with `SHOP_SERVICE_NAME` set (compose sets `shop`): the compose service and index,
//!    `shop-2`, read from the container's name. Compose names containers
//!    `<project>_shop_2` (v1) or `<project>-shop-2` (v2, and the manager's clones), and Docker's
//!    embedded DNS answers a PTR query for the container's own address with
//!    `<container name>.<network>.`; `getnameinfo` would read `/etc/hosts` first, which maps that
//!    address to the container id, so the query goes to the DNS server itself
//!    ([`from_compose_dns`], bounded by [`LOOKUP_TIMEOUT`]);
//! 3. the hostname (outside Docker, or when the look-up finds nothing), as before.
//!
//! The hostname stays in the start-up log line next to the name, for `docker ps` and `docker logs`.

use std::{net::IpAddr, sync::OnceLock, time::Duration};

use hickory_resolver::{
    config::ResolveHosts, net::runtime::TokioRuntimeProvider, proto::rr::RData, ResolverBuilder,
    TokioResolver,
};

/// The whole DNS look-up at start (own address, then PTR) gives up after this: a replica never
/// waits longer for its name; it then uses the hostname.
pub const LOOKUP_TIMEOUT: Duration = Duration::from_millis(1500);

static NAME: OnceLock<String> = OnceLock::new();

/// The host's name (in a container: the container id, unless compose sets `hostname:`).
pub fn hostname() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}

/// A replica or service name the shop accepts: 1–63 characters of `A-Z a-z 0-9 . _ -` (safe in
/// a header, a page, a JSON string and a metric label as it is).
pub fn valid_name(s: &str) -> bool {
    (1..=63).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Record this process's name (done once, by [`crate::startup`]); the first one set stays: a
/// process has one name (tests that build several applications in one process keep the first).
pub fn set_name(name: &str) {
    let _ = NAME.set(name.to_string());
}

/// This process's name: the one set at start, or the hostname before that.
pub fn name() -> String {
    NAME.get().cloned().unwrap_or_else(hostname)
}

/// `<service>-<n>` when the first label of `ptr` (a PTR answer such as
/// `distshop_shop_2.distshop_backend.`) is a compose container name of `service`:
/// `[<anything>(_|-)]<service>(_|-)<n>`. The service is matched without regard to case; the name
/// keeps the spelling of `service`.
pub fn compose_name(ptr: &str, service: &str) -> Option<String> {
    let label = ptr.trim_end_matches('.').split('.').next()?.to_ascii_lowercase();
    let number_at = label.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    let number = &label[number_at..];
    if number.is_empty() || number.len() > 9 {
        return None;
    }
    let rest = label[..number_at].strip_suffix(['_', '-'])?;
    let before = rest.strip_suffix(service.to_ascii_lowercase().as_str())?;
    if !(before.is_empty() || before.ends_with(['_', '-'])) {
        return None;
    }
    let name = format!("{service}-{number}");
    valid_name(&name).then_some(name)
}

/// The compose name of this container (see [`compose_name`]), from the DNS server of
/// `/etc/resolv.conf` (Docker's, 127.0.0.11), within [`LOOKUP_TIMEOUT`]; `None`, with a warning,
/// when there is none.
pub async fn from_compose_dns(service: &str) -> Option<String> {
    match tokio::time::timeout(LOOKUP_TIMEOUT, lookup(service)).await {
        Ok(Ok((name, ptr))) => {
            tracing::info!(replica = %name, ptr = %ptr, "replica name from the container's name");
            Some(name)
        }
        Ok(Err(why)) => {
            tracing::warn!(service, reason = %why, "no compose name for this replica: it is called by its hostname");
            None
        }
        Err(_) => {
            tracing::warn!(
                service,
                "no compose name for this replica within {LOOKUP_TIMEOUT:?}: it is called by its hostname"
            );
            None
        }
    }
}

/// (name, the PTR answer it came from)
async fn lookup(service: &str) -> Result<(String, String), String> {
    // our own addresses: the hostname's, from /etc/hosts (Docker writes the container's there)
    let own: Vec<IpAddr> = tokio::net::lookup_host((hostname(), 0))
        .await
        .map_err(|e| format!("own address: {e}"))?
        .map(|a| a.ip())
        .filter(|ip| !ip.is_loopback() && !ip.is_unspecified())
        .collect();
    if own.is_empty() {
        return Err("the hostname has no address but loopback".into());
    }
    let builder = TokioResolver::builder_tokio().map_err(|e| format!("/etc/resolv.conf: {e}"))?;
    ptr_name(builder, &own, service).await
}

/// The first PTR answer for one of `own` that is a compose name of `service`.
async fn ptr_name(
    mut builder: ResolverBuilder<TokioRuntimeProvider>,
    own: &[IpAddr],
    service: &str,
) -> Result<(String, String), String> {
    let opts = builder.options_mut();
    // the DNS server, never /etc/hosts (there our address is the container id)
    opts.use_hosts_file = ResolveHosts::Never;
    opts.timeout = LOOKUP_TIMEOUT / 2;
    opts.attempts = 1;
    let resolver = builder.build().map_err(|e| format!("resolver: {e}"))?;
    let mut answers = Vec::new();
    for ip in own {
        match resolver.reverse_lookup(*ip).await {
            Ok(found) => {
                for r in found.answers() {
                    if let RData::PTR(p) = &r.data {
                        let ptr = p.0.to_ascii();
                        if let Some(name) = compose_name(&ptr, service) {
                            return Ok((name, ptr));
                        }
                        answers.push(ptr);
                    }
                }
            }
            Err(e) => answers.push(format!("{ip}: {e}")),
        }
    }
    Err(format!("no PTR answer names a container of `{service}`: {}", answers.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compose_v1_and_v2_names() {
        assert_eq!(compose_name("distshop_shop_2.distshop_backend.", "shop").as_deref(), Some("shop-2"));
        assert_eq!(compose_name("distshop-shop-2.distshop_frontend.", "shop").as_deref(), Some("shop-2"));
        assert_eq!(compose_name("distshop-shop-12", "shop").as_deref(), Some("shop-12"));
        // compose v2 prefixes a container it is recreating with the old one's id for a moment
        assert_eq!(compose_name("8d6dc2dc0cb5_distshop-shop-3.net.", "shop").as_deref(), Some("shop-3"));
        // a container named just like that
        assert_eq!(compose_name("shop-1.", "shop").as_deref(), Some("shop-1"));
    }

    #[test]
    fn project_and_service_names_with_separators() {
        assert_eq!(
            compose_name("my-dist_shop_shop_4.my-dist_shop_default.", "shop").as_deref(),
            Some("shop-4")
        );
        assert_eq!(compose_name("class-7-shop-1.class-7_default.", "shop").as_deref(), Some("shop-1"));
        assert_eq!(compose_name("distshop-web-shop-2.x.", "web-shop").as_deref(), Some("web-shop-2"));
        assert_eq!(compose_name("distshop_web_shop_2.x.", "web_shop").as_deref(), Some("web_shop-2"));
        // case: DNS does not keep it; the name keeps the service's spelling
        assert_eq!(compose_name("DistShop-Shop-5.net.", "shop").as_deref(), Some("shop-5"));
    }

    #[test]
    fn trailing_dot_or_not() {
        assert_eq!(compose_name("distshop_shop_1.", "shop"), compose_name("distshop_shop_1", "shop"));
        assert_eq!(compose_name("distshop_shop_1.distshop_backend", "shop").as_deref(), Some("shop-1"));
    }

    #[test]
    fn names_of_other_things_do_not_match() {
        for ptr in [
            "",
            ".",
            "8d6dc2dc0cb5.",
            "distshop_nginx_1.distshop_frontend.",
            "distshop_myshop_1.x.",        // another service ending in the name
            "distshopshop_1.x.",           // no separator before the service
            "distshop_shop.x.",            // no number
            "distshop_shop_.x.",           // no digits
            "distshop_shop_2a.x.",         // not a number
            "distshop_shop2.x.",           // no separator before the number
            "distshop_shop_1234567890.x.", // absurdly long
            "stack_shop.2.kq3b9x1m0vx0.stack_backend.", // a Swarm task: its name is set instead
            "shop.distshop_backend.",      // the service alias
        ] {
            assert_eq!(compose_name(ptr, "shop"), None, "{ptr}");
        }
    }

    /// A DNS server on a loopback port that answers every PTR query with `answer`, as Docker's does.
    async fn fake_dns(answer: &'static str) -> std::io::Result<u16> {
        use hickory_resolver::proto::{
            op::{Message, OpCode},
            rr::{rdata::PTR, Name, Record},
        };
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
        let port = socket.local_addr()?.port();
        tokio::spawn(async move {
            let mut buf = [0u8; 512];
            while let Ok((n, from)) = socket.recv_from(&mut buf).await {
                let Ok(query) = Message::from_vec(&buf[..n]) else { continue };
                let mut reply = Message::response(query.metadata.id, OpCode::Query);
                reply.metadata.recursion_desired = query.metadata.recursion_desired;
                reply.metadata.recursion_available = true;
                for q in &query.queries {
                    reply.add_query(q.clone());
                    if let Ok(target) = Name::from_ascii(answer) {
                        reply.add_answer(Record::from_rdata(q.name().clone(), 600, RData::PTR(PTR(target))));
                    }
                }
                if let Ok(bytes) = reply.to_vec() {
                    let _ = socket.send_to(&bytes, from).await;
                }
            }
        });
        Ok(port)
    }

    fn resolver_at(port: u16) -> ResolverBuilder<TokioRuntimeProvider> {
        use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
        let mut udp = ConnectionConfig::udp();
        udp.port = port;
        let server = NameServerConfig::new(IpAddr::from([127, 0, 0, 1]), true, vec![udp]);
        TokioResolver::builder_with_config(
            ResolverConfig::from_name_servers(vec![server]),
            TokioRuntimeProvider::default(),
        )
    }

    #[tokio::test]
    async fn the_name_comes_from_the_ptr_answer() -> std::io::Result<()> {
        let port = fake_dns("distshop-shop-2.distshop_backend.").await?;
        let own = [IpAddr::from([172, 18, 0, 5])];
        let got = tokio::time::timeout(LOOKUP_TIMEOUT, ptr_name(resolver_at(port), &own, "shop")).await;
        assert_eq!(
            got.ok(),
            Some(Ok(("shop-2".to_string(), "distshop-shop-2.distshop_backend.".to_string())))
        );
        Ok(())
    }

    #[tokio::test]
    async fn a_ptr_answer_of_another_kind_is_no_name() -> std::io::Result<()> {
        let port = fake_dns("8d6dc2dc0cb5.").await?;
        let own = [IpAddr::from([172, 18, 0, 5])];
        let got = tokio::time::timeout(LOOKUP_TIMEOUT, ptr_name(resolver_at(port), &own, "shop")).await;
        assert!(matches!(&got, Ok(Err(why)) if why.contains("8d6dc2dc0cb5")), "{got:?}");
        Ok(())
    }

    #[tokio::test]
    async fn the_lookup_gives_up_in_time() {
        // wherever the tests run: Docker or not, a DNS server or none, the answer comes in time
        let started = std::time::Instant::now();
        let _ = from_compose_dns("shop").await;
        assert!(started.elapsed() < LOOKUP_TIMEOUT + Duration::from_millis(500), "{:?}", started.elapsed());
    }

    #[test]
    fn valid_names() {
        for ok in ["shop-2", "a", "shop_1.eu-west", &"x".repeat(63)] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", "shop 2", "shöp", "a/b", "a:b", &"x".repeat(64), "<b>"] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}
