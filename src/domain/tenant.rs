use std::fmt;

/// Database id of a tenant; every store function takes one so no query forgets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TenantId(pub i64);

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A tenant's short name as used on the command line: `acme`, `acme-ro`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantSlug(String);

impl TenantSlug {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let ok = (1..=63).contains(&raw.len())
            && raw.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && raw
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(format!(
                "`{raw}` is not a tenant slug: use 1-63 lowercase letters, digits or dashes"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantSlug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How a tenant's PBX proves who it is on lookups (the reference: "IP restriction or
/// secret token").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthPolicy {
    /// A lookup token; the allowlist, when it has entries, also applies.
    Token,
    /// The source address alone: the allowlist entry it matches names the tenant.
    Ip,
    /// Both a lookup token and a source address on the allowlist.
    TokenAndIp,
}

impl AuthPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::Ip => "ip",
            Self::TokenAndIp => "token+ip",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw {
            "token" => Ok(Self::Token),
            "ip" => Ok(Self::Ip),
            "token+ip" => Ok(Self::TokenAndIp),
            _ => Err(format!(
                "`{raw}` is not an auth policy: use token, ip or token+ip"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_policies_round_trip_through_their_names() {
        for policy in [AuthPolicy::Token, AuthPolicy::Ip, AuthPolicy::TokenAndIp] {
            assert_eq!(AuthPolicy::parse(policy.as_str()), Ok(policy));
        }
        assert!(AuthPolicy::parse("none").is_err());
    }

    #[test]
    fn slugs_are_short_lowercase_names() {
        assert!(TenantSlug::parse("acme-ro").is_ok());
        assert!(TenantSlug::parse("7eleven").is_ok());
        for bad in ["", "-acme", "Acme", "acme ro", "acme_ro", &"a".repeat(64)] {
            assert!(TenantSlug::parse(bad).is_err(), "{bad:?}");
        }
    }
}
