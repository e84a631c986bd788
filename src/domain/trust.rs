//! Caller trust: what the network says of a caller ID (STIR/SHAKEN `verstat` and
//! attestation, as the PBX passed them on the lookup), and a tenant's screening of
//! unwanted calls (spam lists, failed verification).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Longest `verstat` or `attest` kept; anything longer is refused (400).
pub const MAX_TRUST_LEN: usize = 32;
/// The verification result that a tenant may ask to screen (RFC 8224 / 3GPP TS 24.229).
pub const FAILED_VERSTAT: &str = "TN-Validation-Failed";

/// `verstat` and `attest` of a lookup, as given (unknown values are kept too).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallerTrust {
    pub verstat: Option<String>,
    pub attest: Option<String>,
}

impl CallerTrust {
    pub fn is_empty(&self) -> bool {
        self.verstat.is_none() && self.attest.is_none()
    }

    /// Whether the network said the caller ID failed verification.
    pub fn failed_verification(&self) -> bool {
        self.verstat
            .as_deref()
            .is_some_and(|v| v.eq_ignore_ascii_case(FAILED_VERSTAT))
    }
}

/// Checks one trust parameter (`name` is the parameter, for the message); an empty
/// value means none.
pub fn trust_param(name: &str, value: Option<&str>) -> Result<Option<String>, String> {
    let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if value.chars().count() > MAX_TRUST_LEN {
        return Err(format!("{name} is longer than {MAX_TRUST_LEN} characters"));
    }
    if value.chars().any(char::is_control) {
        return Err(format!("{name} must not contain control characters"));
    }
    if value.contains(char::REPLACEMENT_CHARACTER) {
        return Err(format!("{name} is not valid UTF-8"));
    }
    Ok(Some(value.to_owned()))
}

/// Why an unknown caller's answer was screened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScreenReason {
    /// The number is flagged on the tenant's spam list.
    SpamList,
    /// The network said the caller ID failed verification (and the tenant asked).
    FailedVerstat,
}

impl ScreenReason {
    pub const ALL: [Self; 2] = [Self::SpamList, Self::FailedVerstat];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::SpamList => "spam_list",
            Self::FailedVerstat => "failed_verstat",
        }
    }
}

/// A tenant's screening settings (`tenants.settings`, key `spam`), set by `cidgate
/// tenant set --spam-threshold --screen-failed-verstat --spam-route --spam-name`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ScreeningSettings {
    /// Reports that flag an imported number.
    pub threshold: u32,
    /// Screen unknown callers whose `verstat` is `TN-Validation-Failed`.
    pub screen_failed_verstat: bool,
    /// `route_identifier` of a screened answer; screening is off without one.
    pub route: Option<String>,
    /// `name` of a screened answer.
    pub name: Option<String>,
}

impl Default for ScreeningSettings {
    fn default() -> Self {
        Self {
            threshold: Self::DEFAULT_THRESHOLD,
            screen_failed_verstat: false,
            route: None,
            name: None,
        }
    }
}

impl ScreeningSettings {
    pub const KEY: &str = "spam";
    pub const DEFAULT_THRESHOLD: u32 = 2;

    pub fn from_tenant_settings(settings: &Value) -> Self {
        settings
            .get(Self::KEY)
            .and_then(|s| serde_json::from_value(s.clone()).ok())
            .unwrap_or_default()
    }
}

/// Screening as a lookup applies it: read straight from the tenant's settings (no copy),
/// `None` when the tenant screens nothing.
#[derive(Debug, Clone, Copy)]
pub struct Screen<'a> {
    pub route: &'a str,
    pub name: Option<&'a str>,
    failed_verstat: bool,
}

impl<'a> Screen<'a> {
    pub fn of(settings: &'a Value) -> Option<Self> {
        let spam = settings.get(ScreeningSettings::KEY)?;
        let route = spam.get("route")?.as_str().filter(|r| !r.is_empty())?;
        Some(Self {
            route,
            name: spam.get("name").and_then(Value::as_str),
            failed_verstat: spam
                .get("screen_failed_verstat")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        })
    }

    /// Why an unknown caller is screened, if it is: `flagged` says whether its number
    /// is on the spam list (the list wins over the verification, as the more specific).
    pub fn reason(&self, flagged: bool, trust: &CallerTrust) -> Option<ScreenReason> {
        if flagged {
            Some(ScreenReason::SpamList)
        } else if self.failed_verstat && trust.failed_verification() {
            Some(ScreenReason::FailedVerstat)
        } else {
            None
        }
    }
}

/// One number of a tenant's spam list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SpamEntry {
    pub number: String,
    /// Complaints counted by imports.
    pub reports: i32,
    /// Added by the tenant itself (`spam add`, PUT): flagged whatever the reports.
    pub added: bool,
    pub label: Option<String>,
    /// Whether lookups screen it now (added, or reports at the tenant's threshold).
    pub flagged: bool,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

/// Longest label kept with a listed number.
pub const MAX_SPAM_LABEL: usize = 200;

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn trust_parameters_are_kept_as_given_but_bounded() {
        assert_eq!(trust_param("verstat", None), Ok(None));
        assert_eq!(trust_param("verstat", Some(" ")), Ok(None));
        assert_eq!(
            trust_param("attest", Some("Z-unknown")),
            Ok(Some("Z-unknown".into()))
        );
        let long = "x".repeat(33);
        assert_eq!(
            trust_param("verstat", Some(&long)),
            Err("verstat is longer than 32 characters".into())
        );
        assert!(
            trust_param("attest", Some("A\u{1}"))
                .unwrap_err()
                .contains("attest")
        );
    }

    #[test]
    fn screening_is_off_without_a_route_and_the_list_wins() {
        let failed = CallerTrust {
            verstat: Some("tn-validation-failed".into()),
            attest: None,
        };
        assert!(Screen::of(&json!({})).is_none());
        assert!(Screen::of(&json!({"spam": {"route": ""}})).is_none());
        let listed_only = json!({"spam": {"route": "screening"}});
        let screen = Screen::of(&listed_only).unwrap();
        assert_eq!(screen.reason(false, &failed), None);
        assert_eq!(screen.reason(true, &failed), Some(ScreenReason::SpamList));
        let both =
            json!({"spam": {"route": "screening", "name": "SPAM?", "screen_failed_verstat": true}});
        let screen = Screen::of(&both).unwrap();
        assert_eq!(screen.name, Some("SPAM?"));
        assert_eq!(
            screen.reason(false, &failed),
            Some(ScreenReason::FailedVerstat)
        );
        assert_eq!(screen.reason(false, &CallerTrust::default()), None);
    }

    #[test]
    fn settings_default_to_a_threshold_of_two() {
        let settings = ScreeningSettings::from_tenant_settings(&json!({}));
        assert_eq!(settings.threshold, 2);
        assert!(settings.route.is_none());
    }
}
