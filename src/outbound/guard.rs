//! The SSRF guard: an outbound target (a profile's, an HTTP dialer's, next a CRM
//! source's) must not be the gateway's own network. Every address a name resolves to is
//! checked (one forbidden address refuses the name), the connection goes to the addresses
//! checked (no second resolution to rebind), and IP literals are checked before
//! connecting. `CIDGATE_WEBHOOK_ALLOW_NETWORKS` lets an on-premises CRM or PBX through
//! (for one tenant, or every tenant: the clients build one guard per tenant a rule names).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ipnetwork::IpNetwork;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::resolve::{Resolver, SystemResolver};

/// Why a target was refused. Its text names the rule, not the address, because tenants
/// see it (at save, in `test` and in the delivery log): naming the private address a
/// name resolves to would answer their DNS questions about the gateway's network.
/// [`Refused::detail`] is for the operator (the command line, the log).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("refused {target}: {RULE}")]
pub struct Refused {
    pub target: String,
    pub address: IpAddr,
    pub kind: &'static str,
}

/// The rule a refusal names.
pub const RULE: &str = "internal addresses (private, loopback, link-local, reserved) are refused unless the server's CIDGATE_WEBHOOK_ALLOW_NETWORKS allows their network for this tenant (CIDR, or CIDR@tenant)";

impl Refused {
    /// The rule alone, naming neither the target nor its address.
    pub fn rule(&self) -> &'static str {
        RULE
    }

    /// The address and its kind, for the operator.
    pub fn detail(&self) -> String {
        format!(
            "refused {}: {} is {} (add its network to CIDGATE_WEBHOOK_ALLOW_NETWORKS, as CIDR@tenant for one tenant, to allow it)",
            self.target, self.address, self.kind
        )
    }
}

/// Which addresses a request out may reach, and how names are resolved.
#[derive(Clone)]
pub struct Guard {
    allowed: Arc<[IpNetwork]>,
    resolver: Arc<dyn Resolver>,
}

impl Default for Guard {
    fn default() -> Self {
        Self::new(Vec::new())
    }
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("allowed", &self.allowed)
            .finish_non_exhaustive()
    }
}

impl Guard {
    /// A guard resolving names with the system's resolver.
    pub fn new(allowed: Vec<IpNetwork>) -> Self {
        Self::with_resolver(allowed, Arc::new(SystemResolver))
    }

    pub fn with_resolver(allowed: Vec<IpNetwork>, resolver: Arc<dyn Resolver>) -> Self {
        Self {
            allowed: allowed.into(),
            resolver,
        }
    }

    /// Refuses `address` when it is of a forbidden kind and outside the allowed networks.
    pub fn check(&self, target: &str, address: IpAddr) -> Result<(), Refused> {
        let address = address.to_canonical();
        if self.allowed.iter().any(|n| n.contains(address)) {
            return Ok(());
        }
        match forbidden_kind(address) {
            Some(kind) => Err(Refused {
                target: target.to_owned(),
                address,
                kind,
            }),
            None => Ok(()),
        }
    }

    /// Checks a URL whose host is an IP literal (no resolution happens for those).
    pub fn check_url(&self, url: &url::Url) -> Result<(), Refused> {
        let literal = match url.host() {
            Some(url::Host::Ipv4(v4)) => IpAddr::V4(v4),
            Some(url::Host::Ipv6(v6)) => IpAddr::V6(v6),
            _ => return Ok(()),
        };
        self.check(url.host_str().unwrap_or_default(), literal)
    }

    /// Resolves `host` and checks every address; answers the checked addresses.
    pub async fn resolve(
        &self,
        host: &str,
    ) -> Result<Vec<SocketAddr>, Box<dyn std::error::Error + Send + Sync>> {
        let addresses: Vec<SocketAddr> = self
            .resolver
            .resolve(host)
            .await?
            .into_iter()
            .map(|ip| SocketAddr::new(ip, 0))
            .collect();
        if addresses.is_empty() {
            return Err(format!("{host} resolves to no address").into());
        }
        for a in &addresses {
            self.check(host, a.ip())?;
        }
        Ok(addresses)
    }
}

/// reqwest's resolver hook: every name a request connects to passes the guard, and the
/// connection goes to the addresses it checked.
impl Resolve for Guard {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = self.clone();
        Box::pin(async move {
            let addresses = guard.resolve(name.as_str()).await?;
            Ok(Box::new(addresses.into_iter()) as Addrs)
        })
    }
}

/// The kind of address a request out must not reach, or `None` for a public one.
pub fn forbidden_kind(address: IpAddr) -> Option<&'static str> {
    match address.to_canonical() {
        IpAddr::V4(v4) => v4_kind(v4),
        IpAddr::V6(v6) => v6_kind(v6),
    }
}

fn v4_kind(a: Ipv4Addr) -> Option<&'static str> {
    let [first, second, ..] = a.octets();
    Some(if a.is_unspecified() || first == 0 {
        "unspecified (0.0.0.0/8)"
    } else if a.is_loopback() {
        "a loopback address"
    } else if a.is_private() {
        "a private address"
    } else if a.is_link_local() {
        "a link-local address"
    } else if first == 100 && (second & 0xc0) == 64 {
        "a shared (carrier-grade NAT) address"
    } else if first == 192 && second == 0 && a.octets()[2] == 0 {
        "an IETF protocol assignment (192.0.0.0/24)"
    } else if first == 198 && (second & 0xfe) == 18 {
        "a benchmarking address (198.18.0.0/15)"
    } else if a.is_multicast() {
        "a multicast address"
    } else if a.is_broadcast() || first >= 240 {
        "a reserved address"
    } else {
        return None;
    })
}

fn v6_kind(a: Ipv6Addr) -> Option<&'static str> {
    let segments = a.segments();
    let o = a.octets();
    // NAT64 (64:ff9b::/96) carries an IPv4 address that is what is really reached.
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return v4_kind(Ipv4Addr::new(o[12], o[13], o[14], o[15]));
    }
    // 6to4 (2002::/16) reaches the IPv4 address in bits 16-47, through a relay.
    if segments[0] == 0x2002 {
        return v4_kind(Ipv4Addr::new(o[2], o[3], o[4], o[5]));
    }
    Some(if a.is_unspecified() {
        "unspecified (::)"
    } else if a.is_loopback() {
        "a loopback address"
    } else if (segments[0] & 0xfe00) == 0xfc00 {
        "a private (unique local) address"
    } else if (segments[0] & 0xffc0) == 0xfe80 {
        "a link-local address"
    } else if (segments[0] & 0xffc0) == 0xfec0 {
        "a site-local address (fec0::/10)"
    } else if segments[..6] == [0; 6] {
        // `::a.b.c.d`, deprecated IPv4-compatible: some stacks still reach the IPv4.
        "an IPv4-compatible address (::/96)"
    } else if segments[..3] == [0x64, 0xff9b, 1] {
        "a local-use NAT64 address (64:ff9b:1::/48)"
    } else if a.is_multicast() {
        "a multicast address"
    } else {
        return None;
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(ip: &str) -> Option<&'static str> {
        forbidden_kind(ip.parse().unwrap())
    }

    #[test]
    fn internal_addresses_of_every_kind_are_forbidden() {
        for ip in [
            "127.0.0.1",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "224.0.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "::7f00:1",
            "::808:808",
            "64:ff9b:1::808:808",
            "fec0::1",
            "feff::1",
            "2002:7f00:1::1",
            "2002:a00:1::",
            "2002:c0a8:101::1",
            "192.0.0.8",
            "192.0.0.170",
            "198.18.0.1",
            "198.19.255.254",
        ] {
            assert!(kind(ip).is_some(), "{ip} should be forbidden");
        }
        for ip in [
            "93.184.216.34",
            "2606:2800:220:1:248:1893:25c8:1946",
            "64:ff9b::5db8:d822",
            "2002:5db8:d822::1",
            "192.0.1.1",
            "198.20.0.1",
            "198.17.255.255",
        ] {
            assert_eq!(kind(ip), None, "{ip} is public");
        }
    }

    #[test]
    fn allowed_networks_let_an_on_premises_crm_through() {
        let guard = Guard::new(vec!["10.1.0.0/16".parse().unwrap()]);
        assert!(guard.check("crm", "10.1.2.3".parse().unwrap()).is_ok());
        assert!(
            guard
                .check("crm", "::ffff:10.1.2.3".parse().unwrap())
                .is_ok()
        );
        let refused = guard.check("crm", "10.2.0.1".parse().unwrap()).unwrap_err();
        assert!(refused.detail().contains("10.2.0.1 is a private address"));
        let shown = refused.to_string();
        assert!(
            !shown.contains("10.2.0.1") && shown.contains("CIDGATE_WEBHOOK_ALLOW_NETWORKS"),
            "tenants see the rule, not the address: {shown}"
        );
    }

    #[test]
    fn ip_literal_urls_are_checked_before_connecting() {
        let guard = Guard::default();
        for url in [
            "http://127.0.0.1/",
            "http://[::1]:8080/",
            "http://[::ffff:127.0.0.1]/",
        ] {
            assert!(guard.check_url(&url.parse().unwrap()).is_err(), "{url}");
        }
        assert!(
            guard
                .check_url(&"https://crm.example.com/".parse().unwrap())
                .is_ok()
        );
    }
}
