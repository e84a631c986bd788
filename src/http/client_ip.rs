//! The client's address: the TCP peer, unless the peer is a trusted proxy, in which
//! case the right-most untrusted address of `Forwarded` or `X-Forwarded-For`. A header
//! from an untrusted peer is ignored, so it cannot be forged from outside.

use std::net::IpAddr;

use actix_web::http::header::HeaderMap;
use ipnetwork::IpNetwork;

/// Resolves the client address. `None` when a trusted proxy forwarded something that
/// is not an address (`unknown`, an obfuscated name): better no address than a wrong one.
pub fn resolve(peer: Option<IpAddr>, headers: &HeaderMap, trusted: &[IpNetwork]) -> Option<IpAddr> {
    let peer = peer?.to_canonical();
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(*ip));
    if !is_trusted(&peer) {
        return Some(peer);
    }
    let chain = forwarded_chain(headers);
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

/// The forwarding chain, left (origin) to right (nearest): `Forwarded` `for=` values if
/// that header is present, else `X-Forwarded-For`.
fn forwarded_chain(headers: &HeaderMap) -> Vec<String> {
    let forwarded: Vec<String> = headers
        .get_all("forwarded")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|element| {
            element.split(';').find_map(|pair| {
                let (name, value) = pair.split_once('=')?;
                name.trim()
                    .eq_ignore_ascii_case("for")
                    .then(|| value.trim().trim_matches('"').to_owned())
            })
        })
        .collect();
    if !forwarded.is_empty() {
        return forwarded;
    }
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
    fn forwarded_wins_over_x_forwarded_for_and_its_forms_parse() {
        let h = headers(&[
            (
                "forwarded",
                "for=\"[2001:db8::7]:4711\";proto=https, for=10.0.0.2",
            ),
            ("x-forwarded-for", "198.51.100.77"),
        ]);
        assert_eq!(
            resolve(Some(ip("10.0.0.1")), &h, &trusted()),
            Some(ip("2001:db8::7"))
        );
        let h = headers(&[("forwarded", "For=192.0.2.60:8080")]);
        assert_eq!(
            resolve(Some(ip("10.0.0.1")), &h, &trusted()),
            Some(ip("192.0.2.60"))
        );
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
        assert_eq!(resolve(Some(ip("10.0.0.1")), &h, &trusted()), None);
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
