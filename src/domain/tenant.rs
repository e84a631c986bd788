use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::phone_number::Region;

/// Database id of a tenant; every store function takes one so no query forgets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TenantId(pub i64);

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A tenant as the rest of the application sees it.
#[derive(Debug, Clone)]
pub struct Tenant {
    pub id: TenantId,
    pub slug: String,
    pub name: String,
    pub region: Region,
    pub settings: Value,
    pub auth_policy: AuthPolicy,
    /// Lookups per second allowed; `None` means the gateway's default.
    pub lookup_rate: Option<u32>,
    pub popup: PopupSettings,
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

/// A tenant's screen-pop settings (in `tenants.settings`, key `popup`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PopupSettings {
    /// How long a link stays valid.
    pub ttl_secs: u64,
    /// CRM record URL when the contact has no `crm_url`, e.g.
    /// `https://crm.example.com/contacts/{id}`.
    pub crm_url_template: Option<String>,
    /// "Create in CRM" for unknown callers, e.g. `https://crm.example.com/new?phone={number}`.
    pub create_url_template: Option<String>,
    /// Send the agent straight to the CRM record instead of rendering the page.
    pub redirect_to_crm: bool,
    /// Give unknown callers a `backend_link` too (off: the reference's all-null answer).
    pub for_unknown: bool,
    /// Origins allowed to frame the page (softphones); none means no framing.
    pub frame_ancestors: Vec<String>,
}

impl Default for PopupSettings {
    fn default() -> Self {
        Self {
            ttl_secs: 12 * 3600,
            crm_url_template: None,
            create_url_template: None,
            redirect_to_crm: false,
            for_unknown: false,
            frame_ancestors: Vec::new(),
        }
    }
}

impl PopupSettings {
    /// Reads the settings from a tenant's settings document (defaults where absent).
    pub fn from_tenant_settings(settings: &serde_json::Value) -> Self {
        settings
            .get("popup")
            .and_then(|p| serde_json::from_value(p.clone()).ok())
            .unwrap_or_default()
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

    #[test]
    fn settings_default_when_absent_or_malformed() {
        let none = serde_json::json!({});
        assert_eq!(
            PopupSettings::from_tenant_settings(&none),
            PopupSettings::default()
        );
        let set = serde_json::json!({"popup": {"for_unknown": true, "ttl_secs": 60}});
        let parsed = PopupSettings::from_tenant_settings(&set);
        assert!(parsed.for_unknown);
        assert_eq!(parsed.ttl_secs, 60);
    }
}
