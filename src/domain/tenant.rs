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
    pub lookup_log: LookupLogSettings,
}

/// The tenant setting holding its IANA time zone.
pub const TIME_ZONE_SETTING: &str = "time_zone";
/// The tenant setting holding its own event rate (`tenant set --event-rate`).
pub const EVENT_RATE_SETTING: &str = "event_rate";

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

/// Whether a tenant's lookups are recorded in the lookup log (the screen pop's recent
/// calls and the caller-identification report read it), and for how long they are kept.
/// Keys `lookup_log` and `lookup_log_retention_days` of `tenants.settings`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LookupLogSettings {
    pub enabled: bool,
    /// Days kept; `None` means the gateway's `CIDGATE_LOOKUP_LOG_RETENTION_DAYS`.
    pub retention_days: Option<u32>,
}

impl LookupLogSettings {
    /// The settings key switching the log on or off.
    pub const ENABLED_KEY: &str = "lookup_log";
    /// The settings key of the tenant's own retention.
    pub const RETENTION_KEY: &str = "lookup_log_retention_days";

    /// Reads the settings from a tenant's settings document: on, with the gateway's
    /// retention, unless the document says otherwise.
    pub fn from_tenant_settings(settings: &serde_json::Value) -> Self {
        Self {
            enabled: settings
                .get(Self::ENABLED_KEY)
                .and_then(serde_json::Value::as_bool)
                .unwrap_or(true),
            retention_days: settings
                .get(Self::RETENTION_KEY)
                .and_then(serde_json::Value::as_u64)
                .and_then(|d| u32::try_from(d).ok()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CreateTenantError {
    #[error("tenant `{0}` already exists")]
    Exists(String),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn the_lookup_log_is_on_with_the_gateway_retention_unless_the_tenant_says_otherwise() {
        let default = LookupLogSettings::from_tenant_settings(&json!({}));
        assert_eq!(
            default,
            LookupLogSettings {
                enabled: true,
                retention_days: None
            }
        );
        let own = LookupLogSettings::from_tenant_settings(
            &json!({"lookup_log": false, "lookup_log_retention_days": 7}),
        );
        assert_eq!(
            own,
            LookupLogSettings {
                enabled: false,
                retention_days: Some(7)
            }
        );
    }

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
