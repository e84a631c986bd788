//! The client's address: the TCP peer, unless the peer is a trusted proxy, in which
//! case the right-most untrusted address of the forwarding header that proxy writes
//! (`X-Forwarded-For`, or `Forwarded` when configured). Only that one header is read:
//! a proxy passes the other through untouched, so a client could forge it. A header from
//! an untrusted peer is ignored.

use std::net::IpAddr;

use actix_web::http::header::HeaderMap;
use ipnetwork::IpNetwork;

use crate::config::ForwardedHeader;
/// Resolves the client address. `None` when a trusted proxy forwarded something that
/// is not an address (`unknown`, an obfuscated name): better no address than a wrong one.
pub fn resolve(
    peer: Option<IpAddr>,
    headers: &HeaderMap,
    trusted: &[IpNetwork],
    header: ForwardedHeader,
) -> Option<IpAddr> {
    let peer = peer?.to_canonical();
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(*ip));
    if !is_trusted(&peer) {
        return Some(peer);
    }
    let chain = match header {
        ForwardedHeader::XForwardedFor => x_forwarded_for(headers),
        ForwardedHeader::Forwarded => forwarded(headers),
    };
    let mut client = peer;
    for hop in chain.iter().rev() {
        let ip = parse_node(hop)?;
        client = ip;
        if !is_trusted(&ip) {
            break;
        }
    }
    Some(client)
}

/// `Forwarded` `for=` values, left (origin) to right (nearest). An element without
/// exactly one `for=` (`proto=https` alone, junk) yields an empty value, which is no
/// address: skipping it would let the element before it, the client's, count.
fn forwarded(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all("forwarded")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter(|element| !element.trim().is_empty())
        .map(|element| {
            let mut fors = element.split(';').filter_map(|pair| {
                let (name, value) = pair.split_once('=')?;
                name.trim()
                    .eq_ignore_ascii_case("for")
                    .then(|| value.trim().trim_matches('"'))
            });
            match (fors.next(), fors.next()) {
                (Some(value), None) => value.to_owned(),
                _ => String::new(),
            }
        })
        .collect()
}

/// `X-Forwarded-For` entries, left (origin) to right (nearest).
fn x_forwarded_for(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

/// An address as proxies write it: `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`,
/// `[2001:db8::1]:4711`.
fn parse_node(node: &str) -> Option<IpAddr> {
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Some(rest) = node.strip_prefix('[') {
        return rest
            .split_once(']')?
            .0
            .parse::<IpAddr>()
            .ok()
            .map(|ip| ip.to_canonical());
    }
    let (host, port) = node.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    host.parse::<IpAddr>().ok().map(|ip| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::{HeaderName, HeaderValue};

    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn resolve(peer: Option<IpAddr>, headers: &HeaderMap, trusted: &[IpNetwork]) -> Option<IpAddr> {
        super::resolve(peer, headers, trusted, ForwardedHeader::XForwardedFor)
    }

    fn trusted() -> Vec<IpNetwork> {
        vec!["10.0.0.0/8".parse().unwrap(), "fd00::/8".parse().unwrap()]
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let h = headers(&[
            ("x-forwarded-for", "203.0.113.9"),
            ("forwarded", "for=203.0.113.9"),
        ]);
        assert_eq!(
            resolve(Some(ip("198.51.100.1")), &h, &trusted()),
            Some(ip("198.51.100.1"))
        );
    }

    #[test]
    fn behind_trusted_proxies_the_rightmost_untrusted_address_is_the_client() {
        // A client forging the left-most entry gains nothing.
        let h = headers(&[("x-forwarded-for", "1.1.1.1, 203.0.113.9, 10.0.0.5")]);
        assert_eq!(
            resolve(Some(ip("10.0.0.1")), &h, &trusted()),
            Some(ip("203.0.113.9"))
        );
        let h = headers(&[
            ("x-forwarded-for", "1.1.1.1"),
            ("x-forwarded-for", "203.0.113.9"),
        ]);
        assert_eq!(
            resolve(Some(ip("10.0.0.1")), &h, &trusted()),
            Some(ip("203.0.113.9"))
        );
    }

    #[test]
    fn only_the_configured_header_counts_and_its_forms_parse() {
        let h = headers(&[
            (
                "forwarded",
                "for=\"[2001:db8::7]:4711\";proto=https, for=10.0.0.2",
            ),
            ("x-forwarded-for", "198.51.100.77"),
        ]);
        let peer = Some(ip("10.0.0.1"));
        // A client-made `Forwarded` passed through by an X-Forwarded-For proxy is ignored.
        assert_eq!(resolve(peer, &h, &trusted()), Some(ip("198.51.100.77")));
        let fwd = |h: &HeaderMap| super::resolve(peer, h, &trusted(), ForwardedHeader::Forwarded);
        assert_eq!(fwd(&h), Some(ip("2001:db8::7")));
        let port = headers(&[("forwarded", "For=192.0.2.60:8080")]);
        assert_eq!(fwd(&port), Some(ip("192.0.2.60")));
    }

    #[test]
    fn a_trusted_peer_without_headers_is_the_client_and_junk_gives_no_address() {
        assert_eq!(
            resolve(Some(ip("10.0.0.1")), &HeaderMap::new(), &trusted()),
            Some(ip("10.0.0.1"))
        );
        let h = headers(&[("x-forwarded-for", "unknown")]);
        assert_eq!(resolve(Some(ip("10.0.0.1")), &h, &trusted()), None);
        let h = headers(&[("forwarded", "for=_hidden")]);
        let hidden = super::resolve(
            Some(ip("10.0.0.1")),
            &h,
            &trusted(),
            ForwardedHeader::Forwarded,
        );
        assert_eq!(hidden, None);
    }

    #[test]
    fn a_forwarded_element_without_one_for_gives_no_address() {
        let fwd = |value: &str| {
            let h = headers(&[("forwarded", value)]);
            super::resolve(
                Some(ip("10.0.0.1")),
                &h,
                &trusted(),
                ForwardedHeader::Forwarded,
            )
        };
        for value in [
            "for=198.51.100.7, proto=https",
            "for=198.51.100.7, by=10.0.0.1",
            "for=198.51.100.7, garbage",
            "garbage",
            "for=198.51.100.7;for=203.0.113.1",
        ] {
            assert_eq!(fwd(value), None, "{value}");
        }
        assert_eq!(fwd("for=198.51.100.7, "), Some(ip("198.51.100.7")));
    }

    #[test]
    fn ipv4_mapped_peers_count_as_ipv4() {
        let mapped = ip("::ffff:10.0.0.1");
        let h = headers(&[("x-forwarded-for", "203.0.113.9")]);
        assert_eq!(
            resolve(Some(mapped), &h, &trusted()),
            Some(ip("203.0.113.9"))
        );
    }
}
