//! Which numbers a tenant's agents may call with click-to-call, how often, and how the
//! number is written for the PBX (issue 18, item 5). Pure: no I/O.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::phone_number::{PhoneNumber, PhoneNumberError, Region};
use super::session::SessionHours;

/// How the dialer wants the number written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NumberFormat {
    /// `+40721234567`
    E164,
    /// As dialled from a desk phone in the tenant's country: `0721234567`, and
    /// `0049301234567` abroad.
    National,
    /// E.164 without the plus: `40721234567`.
    Digits,
}

impl NumberFormat {
    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "e164" => Ok(Self::E164),
            "national" => Ok(Self::National),
            "digits" => Ok(Self::Digits),
            _ => Err(format!(
                "`{raw}` is not a number format: use e164, national or digits"
            )),
        }
    }

    /// What the dialer kind gets when the policy names no format: what a plain dialplan
    /// routes for the PBX kinds (`_X.` in Asterisk, `^\d+$` in FreeSWITCH: as a desk
    /// phone dials, never a `+`), E.164 for a dial API.
    pub fn default_for(dialer_kind: &str) -> Self {
        match dialer_kind {
            "asterisk-ami" | "freeswitch-esl" => Self::National,
            _ => Self::E164,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::E164 => "e164",
            Self::National => "national",
            Self::Digits => "digits",
        }
    }
}

/// A tenant's click-to-call rules; stored as JSON, defaults for what is not set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DialPolicy {
    /// How long an agent's session holds (8–12).
    pub session_hours: u8,
    /// Requests one agent may make in a minute.
    pub per_minute: u32,
    /// Requests all of the tenant's agents together may make in a minute: agents are
    /// created by the CRM's `sync` token, so the per-agent throttle alone bounds nothing.
    pub tenant_per_minute: u32,
    /// Requests of the tenant in flight at once (each agent has at most one).
    pub tenant_in_flight: u32,
    /// Numbers outside the tenant's country, every country (off by default: most toll
    /// fraud dials abroad).
    pub international: bool,
    /// Countries (ISO 3166 codes, `DE`) whose numbers may be called although
    /// `international` is off.
    pub allowed_countries: Vec<String>,
    /// Premium-rate numbers (refused by default: a click must not cost a fortune).
    pub premium_rate: bool,
    /// Other numbers that cost more than an ordinary call: shared-cost, personal and
    /// universal-access numbers, satellite and international networks (refused by
    /// default).
    pub costly_numbers: bool,
    /// Numbers that are not full phone numbers (extensions, short codes, emergency
    /// numbers): refused by default, so a stray click never rings 112.
    pub short_numbers: bool,
    /// When not empty, only numbers starting with one of these (`+40`, `+4031`).
    pub allowed_prefixes: Vec<String>,
    /// Numbers starting with one of these are refused, whatever else allows them.
    pub refused_prefixes: Vec<String>,
    /// Outbound queues: a name the CRM passes as `queue`, and the digits dialled before
    /// the number to reach it (`sales` → `9`), as from a desk phone.
    pub queue_prefixes: BTreeMap<String, String>,
    /// How the number is written for the dialer; when not set, the dialer kind's
    /// default ([`NumberFormat::default_for`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub number_format: Option<NumberFormat>,
}

impl Default for DialPolicy {
    fn default() -> Self {
        Self {
            session_hours: SessionHours::DEFAULT.get(),
            per_minute: 6,
            tenant_per_minute: 60,
            tenant_in_flight: 10,
            international: false,
            allowed_countries: Vec::new(),
            premium_rate: false,
            costly_numbers: false,
            short_numbers: false,
            allowed_prefixes: Vec::new(),
            refused_prefixes: Vec::new(),
            queue_prefixes: BTreeMap::new(),
            number_format: None,
        }
    }
}

/// Why a number may not be called: the rule, named as the 403 names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    RefusedPrefix(String),
    NotAllowedPrefix,
    PremiumRate,
    Costly(Costly),
    International,
    ShortNumber,
}

impl Refusal {
    /// The rule's name, as the policy's settings call it.
    pub fn rule(&self) -> &'static str {
        match self {
            Self::RefusedPrefix(_) => "refused_prefixes",
            Self::NotAllowedPrefix => "allowed_prefixes",
            Self::PremiumRate => "premium_rate",
            Self::Costly(_) => "costly_numbers",
            Self::International => "international",
            Self::ShortNumber => "short_numbers",
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::RefusedPrefix(prefix) => {
                write!(f, "the number starts with the refused prefix {prefix}")
            }
            Self::NotAllowedPrefix => f.write_str("the number starts with no allowed prefix"),
            Self::PremiumRate => f.write_str("premium-rate numbers are refused"),
            Self::Costly(kind) => write!(f, "{kind} are refused (costly_numbers)"),
            Self::International => f.write_str(
                "international numbers are refused unless their country is allowed (dialer policy --allow-country)",
            ),
            Self::ShortNumber => f.write_str(
                "the number is not a valid full phone number of its country (short numbers are refused)",
            ),
        }
    }
}

/// A number the policy lets an agent call, written as the dialer wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// Normalized (E.164, or digits for a short number): what calls are matched by.
    pub number: PhoneNumber,
    /// What the PBX dials: the queue's prefix, then the number in the dialer's format.
    pub dialled: String,
    pub queue: Option<String>,
}

/// What stops a request before any policy rule: the number or queue is not usable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DestinationError {
    Number(PhoneNumberError),
    UnknownQueue(String),
    Refused(Refusal),
}

impl DialPolicy {
    /// Checks the settings an operator gave; the message names the setting.
    pub fn validate(&self) -> Result<(), String> {
        SessionHours::new(self.session_hours.into()).map_err(|e| format!("session_hours: {e}"))?;
        if !(1..=600).contains(&self.per_minute) {
            return Err("per_minute: 1 to 600 requests a minute".into());
        }
        if !(1..=100_000).contains(&self.tenant_per_minute) {
            return Err("tenant_per_minute: 1 to 100000 requests a minute".into());
        }
        if !(1..=100_000).contains(&self.tenant_in_flight) {
            return Err("tenant_in_flight: 1 to 100000 requests".into());
        }
        for country in &self.allowed_countries {
            let region = Region::parse(country).map_err(|e| format!("allowed_countries: {e}"))?;
            if region.code() != country {
                return Err(format!(
                    "allowed_countries: write `{country}` as {}",
                    region.code()
                ));
            }
        }
        for prefix in self.allowed_prefixes.iter().chain(&self.refused_prefixes) {
            check_prefix(prefix)?;
        }
        for (name, digits) in &self.queue_prefixes {
            check_queue(name, digits)?;
        }
        Ok(())
    }

    pub fn session_hours(&self) -> SessionHours {
        SessionHours::new(self.session_hours.into()).unwrap_or(SessionHours::DEFAULT)
    }

    /// The number `raw` as the PBX should dial it, or why it may not be called.
    pub fn destination(
        &self,
        raw: &str,
        queue: Option<&str>,
        region: Region,
    ) -> Result<Destination, DestinationError> {
        let number = PhoneNumber::parse(raw, region).map_err(DestinationError::Number)?;
        let queue_prefix = match queue.map(str::trim).filter(|q| !q.is_empty()) {
            None => None,
            Some(name) => Some((
                name.to_owned(),
                self.queue_prefixes
                    .get(name)
                    .ok_or_else(|| DestinationError::UnknownQueue(name.to_owned()))?
                    .clone(),
            )),
        };
        self.check(&number, region)
            .map_err(DestinationError::Refused)?;
        let format = self.number_format.unwrap_or(NumberFormat::E164);
        let written = write_number(&number, format, region);
        let (queue, dialled) = match queue_prefix {
            Some((name, prefix)) => (Some(name), format!("{prefix}{written}")),
            None => (None, written),
        };
        Ok(Destination {
            number,
            dialled,
            queue,
        })
    }

    fn check(&self, number: &PhoneNumber, region: Region) -> Result<(), Refusal> {
        let n = number.as_str();
        let starts = |prefix: &String| n.starts_with(prefix.as_str());
        if let Some(prefix) = self.refused_prefixes.iter().find(|p| starts(p)) {
            return Err(Refusal::RefusedPrefix(prefix.clone()));
        }
        if !self.allowed_prefixes.is_empty() && !self.allowed_prefixes.iter().any(starts) {
            return Err(Refusal::NotAllowedPrefix);
        }
        // By its numbering plan's ranges first: an overdialled or cut-short number is as
        // costly as the range it starts (carriers and dialplans route on the prefix).
        match cost_of(n, region) {
            Some(Costly::PremiumRate) if !self.premium_rate => return Err(Refusal::PremiumRate),
            Some(kind) if kind != Costly::PremiumRate && !self.costly_numbers => {
                return Err(Refusal::Costly(kind));
            }
            _ => {}
        }
        let valid = n
            .starts_with('+')
            .then(|| phonenumber::parse(None, n).ok())
            .flatten()
            .filter(phonenumber::PhoneNumber::is_valid);
        let Some(parsed) = valid else {
            return if self.short_numbers {
                Ok(())
            } else {
                Err(Refusal::ShortNumber)
            };
        };
        let abroad = Some(parsed.code().value()) != region.calling_code();
        let country = parsed.country().id().map(|id| id.as_ref().to_owned());
        let opened = country.is_some_and(|c| self.allowed_countries.contains(&c));
        if abroad && !self.international && !opened {
            return Err(Refusal::International);
        }
        Ok(())
    }
}

/// Numbers that cost more than an ordinary call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Costly {
    PremiumRate,
    SharedCost,
    Personal,
    UniversalAccess,
    /// Satellite and international networks (+870, +881, +882, +883, …).
    NonGeographic,
}

impl fmt::Display for Costly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::PremiumRate => "premium-rate numbers",
            Self::SharedCost => "shared-cost numbers",
            Self::Personal => "personal numbers",
            Self::UniversalAccess => "universal access numbers",
            Self::NonGeographic => "satellite and international network numbers",
        })
    }
}

/// Country codes of no country whose calls are priced far above a call abroad: shared
/// cost (808), Inmarsat (870), UPT (878), GMSS satellite (881), international networks
/// (882, 883), 888, international premium rate (979), trials (991).
const COSTLY_COUNTRY_CODES: &[u16] = &[808, 870, 878, 881, 882, 883, 888, 979, 991];

/// The ranges of a numbering plan that cost more, as the library's metadata has them.
const COSTLY_RANGES: &[(Costly, phonenumber::Type)] = &[
    (Costly::PremiumRate, phonenumber::Type::PremiumRate),
    (Costly::SharedCost, phonenumber::Type::SharedCost),
    (Costly::Personal, phonenumber::Type::PersonalNumber),
    (Costly::UniversalAccess, phonenumber::Type::Uan),
];

/// What calling the normalized number `n` costs beyond an ordinary call, if more. A valid
/// number is what its plan says it is; any other (too long, too short, a short number of
/// the tenant's country) is placed by the valid numbers it begins or that begin with it.
pub fn cost_of(n: &str, region: Region) -> Option<Costly> {
    let database = &*phonenumber::metadata::DATABASE;
    let (code, national) = match n.strip_prefix('+') {
        Some(digits) => {
            let parsed = phonenumber::parse(None, n).ok()?;
            let code = parsed.code().value();
            if COSTLY_COUNTRY_CODES.contains(&code) {
                return Some(Costly::NonGeographic);
            }
            if parsed.is_valid() {
                let kind = parsed.number_type(database);
                return COSTLY_RANGES
                    .iter()
                    .find(|(_, t)| *t == kind)
                    .map(|(c, _)| *c);
            }
            (code, digits.get(code.to_string().len()..)?.to_owned())
        }
        None => {
            let metadata = database.by_id(region.code())?;
            let trunk = metadata.national_prefix().filter(|p| !p.is_empty());
            let national = trunk.and_then(|p| n.strip_prefix(p)).unwrap_or(n);
            (metadata.country_code(), national.to_owned())
        }
    };
    let candidates = around(&national, 15 - code.to_string().len());
    database.by_code(&code)?.into_iter().find_map(|metadata| {
        COSTLY_RANGES
            .iter()
            .find(|(_, kind)| {
                metadata
                    .descriptors()
                    .get(*kind)
                    .is_some_and(|range| candidates.iter().any(|c| range.is_match(c)))
            })
            .map(|(costly, _)| *costly)
    })
}

/// The digit strings `national` begins (down to three digits) and those that begin with
/// it (each digit repeated up to `longest`): a range that holds one of them holds it.
fn around(national: &str, longest: usize) -> Vec<String> {
    let mut candidates: Vec<String> = (3..national.len())
        .map(|len| national[..len].to_owned())
        .collect();
    for fill in '0'..='9' {
        for len in national.len() + 1..=longest {
            let mut longer = national.to_owned();
            longer.extend(std::iter::repeat_n(fill, len - national.len()));
            candidates.push(longer);
        }
    }
    candidates
}

/// A prefix of a normalized number: `+` and digits (`+4090`), or digits for short numbers.
fn check_prefix(prefix: &str) -> Result<(), String> {
    let digits = prefix.strip_prefix('+').unwrap_or(prefix);
    if digits.is_empty() || digits.len() > 15 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "`{prefix}` is not a number prefix: write it as numbers are normalized, `+` and digits (+4090)"
        ));
    }
    Ok(())
}

fn check_queue(name: &str, digits: &str) -> Result<(), String> {
    let name_ok = (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if !name_ok {
        return Err(format!(
            "`{name}` is not a queue name: 1-32 letters, digits or - _ ."
        ));
    }
    let digits_ok = (1..=8).contains(&digits.len())
        && digits
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'*' || b == b'#');
    if !digits_ok {
        return Err(format!(
            "queue `{name}`: the prefix `{digits}` must be 1-8 digits, * or #"
        ));
    }
    Ok(())
}

/// `NAME=DIGITS`, as `--queue-prefix sales=9` writes it.
pub fn parse_queue_prefix(raw: &str) -> Result<(String, String), String> {
    let (name, digits) = raw
        .split_once('=')
        .ok_or_else(|| format!("`{raw}` is not NAME=DIGITS (sales=9)"))?;
    let (name, digits) = (name.trim().to_owned(), digits.trim().to_owned());
    check_queue(&name, &digits)?;
    Ok((name, digits))
}

/// The number in `format`; a short number stays as it is.
fn write_number(number: &PhoneNumber, format: NumberFormat, region: Region) -> String {
    let n = number.as_str();
    let Some(digits) = n.strip_prefix('+') else {
        return n.to_owned();
    };
    match format {
        NumberFormat::E164 => n.to_owned(),
        NumberFormat::Digits => digits.to_owned(),
        NumberFormat::National => {
            let Ok(parsed) = phonenumber::parse(None, n) else {
                return n.to_owned();
            };
            if Some(parsed.code().value()) == region.calling_code() {
                parsed
                    .format()
                    .mode(phonenumber::Mode::National)
                    .to_string()
                    .chars()
                    .filter(char::is_ascii_digit)
                    .collect()
            } else {
                format!("{}{digits}", international_prefix(region))
            }
        }
    }
}

/// What a desk phone in `region` dials before a country code (`00`, `011`).
fn international_prefix(region: Region) -> String {
    let Some(metadata) = phonenumber::metadata::DATABASE.by_id(region.code()) else {
        return "00".into();
    };
    if let Some(preferred) = metadata.preferred_international_prefix() {
        return preferred.chars().filter(char::is_ascii_digit).collect();
    }
    match metadata.international_prefix().map(|r| r.as_str()) {
        Some(prefix) if !prefix.is_empty() && prefix.bytes().all(|b| b.is_ascii_digit()) => {
            prefix.to_owned()
        }
        _ => "00".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ro() -> Region {
        Region::parse("RO").unwrap()
    }

    fn refused(policy: &DialPolicy, raw: &str) -> Option<&'static str> {
        match policy.destination(raw, None, ro()) {
            Ok(_) => None,
            Err(DestinationError::Refused(r)) => Some(r.rule()),
            Err(other) => panic!("{raw}: {other:?}"),
        }
    }

    #[test]
    fn numbers_are_normalized_and_written_as_the_dialer_wants() {
        let mut policy = DialPolicy::default();
        let cases = [
            (NumberFormat::E164, "0721 234 567", "+40721234567"),
            (NumberFormat::Digits, "0721 234 567", "40721234567"),
            (NumberFormat::National, "+40 721 234 567", "0721234567"),
            (NumberFormat::National, "+49 30 12345678", "00493012345678"),
        ];
        policy.international = true;
        for (format, raw, dialled) in cases {
            policy.number_format = Some(format);
            let destination = policy.destination(raw, None, ro()).unwrap();
            assert_eq!(destination.dialled, dialled, "{format:?} {raw}");
        }
        assert_eq!(
            international_prefix(Region::parse("US").unwrap()),
            "011",
            "a desk phone in the US dials 011 abroad"
        );
    }

    #[test]
    fn the_pbx_dialers_default_to_what_a_plain_dialplan_routes() {
        assert_eq!(
            NumberFormat::default_for("asterisk-ami"),
            NumberFormat::National
        );
        assert_eq!(
            NumberFormat::default_for("freeswitch-esl"),
            NumberFormat::National
        );
        assert_eq!(NumberFormat::default_for("http"), NumberFormat::E164);
        let json = serde_json::to_value(DialPolicy::default()).unwrap();
        assert!(json.get("number_format").is_none(), "unset: the dialer's");
    }

    #[test]
    fn queues_put_their_prefix_before_the_number() {
        let mut policy = DialPolicy::default();
        let (name, digits) = parse_queue_prefix("sales=9").unwrap();
        policy.queue_prefixes.insert(name, digits);
        policy.number_format = Some(NumberFormat::National);
        let destination = policy
            .destination("0721234567", Some("sales"), ro())
            .unwrap();
        assert_eq!(destination.dialled, "90721234567");
        assert_eq!(destination.queue.as_deref(), Some("sales"));
        assert_eq!(destination.number.as_str(), "+40721234567");
        assert_eq!(
            policy.destination("0721234567", Some("support"), ro()),
            Err(DestinationError::UnknownQueue("support".into()))
        );
        assert!(parse_queue_prefix("sales").is_err());
        assert!(parse_queue_prefix("sales=9a").is_err());
    }

    #[test]
    fn each_rule_refuses_what_it_names() {
        let mut policy = DialPolicy::default();
        // Romanian premium rate (0900…) is refused by default; ordinary numbers pass.
        assert_eq!(refused(&policy, "0900123456"), Some("premium_rate"));
        assert_eq!(refused(&policy, "0721234567"), None);
        assert_eq!(refused(&policy, "112"), Some("short_numbers"));
        // Abroad is closed by default, opened by country or for all.
        assert_eq!(refused(&policy, "+4930123456"), Some("international"));
        policy.allowed_countries = vec!["DE".into(), "AT".into()];
        assert_eq!(refused(&policy, "+4930123456"), None);
        assert_eq!(refused(&policy, "+43 1 5123456"), None);
        assert_eq!(refused(&policy, "+33 1 42 68 53 00"), Some("international"));
        assert_eq!(refused(&policy, "+1 212 555 0123"), Some("international"));
        policy.allowed_countries.clear();
        policy.international = true;
        assert_eq!(refused(&policy, "+33 1 42 68 53 00"), None);
        policy.international = false;
        policy.refused_prefixes = vec!["+4072".into()];
        assert_eq!(refused(&policy, "0721234567"), Some("refused_prefixes"));
        policy.refused_prefixes.clear();
        policy.allowed_prefixes = vec!["+4031".into()];
        assert_eq!(refused(&policy, "0721234567"), Some("allowed_prefixes"));
        assert_eq!(refused(&policy, "0311234567"), None);
        policy.premium_rate = true;
        policy.allowed_prefixes.clear();
        assert_eq!(refused(&policy, "0900123456"), None);
        assert!(matches!(
            policy.destination("anonymous", None, ro()),
            Err(DestinationError::Number(_))
        ));
    }

    #[test]
    fn overdialled_and_cut_short_costly_numbers_are_refused_by_their_range() {
        let mut policy = DialPolicy::default();
        for allow_short in [false, true] {
            policy.short_numbers = allow_short;
            for raw in [
                "0900123456",
                "09001234567",
                "0900 123 456 7",
                "+44 90987654321",
                "+1 9005550123 9",
                "+1 900 555 0123",
                "0900",
                "0900 12",
            ] {
                assert_eq!(refused(&policy, raw), Some("premium_rate"), "{raw}");
            }
            for raw in [
                "+870 772 123 456",
                "+881 6 1234 5678",
                "+882 16 1234 5678",
                "+883 140 123 4567",
                "+44 70 1234 5678",
                "+44 70 1234 56789",
            ] {
                assert_eq!(refused(&policy, raw), Some("costly_numbers"), "{raw}");
            }
        }
        // A number of no valid length is a short number unless the tenant allows those.
        policy.short_numbers = false;
        assert_eq!(refused(&policy, "07212345678"), Some("short_numbers"));
        assert_eq!(refused(&policy, "+40 21 123"), Some("short_numbers"));
        // Opened on purpose, each rule lets its numbers through.
        policy.premium_rate = true;
        policy.costly_numbers = true;
        policy.international = true;
        assert_eq!(refused(&policy, "0900123456"), None);
        assert_eq!(refused(&policy, "+44 70 1234 5678"), None);
        assert_eq!(refused(&policy, "09001234567"), Some("short_numbers"));
    }

    #[test]
    fn settings_are_checked_and_read_with_defaults() {
        let policy: DialPolicy = serde_json::from_str(r#"{"per_minute":3}"#).unwrap();
        assert_eq!(policy.per_minute, 3);
        assert_eq!(policy.session_hours, 10);
        assert!(policy.validate().is_ok());
        let bad = [
            DialPolicy {
                session_hours: 24,
                ..DialPolicy::default()
            },
            DialPolicy {
                per_minute: 0,
                ..DialPolicy::default()
            },
            DialPolicy {
                refused_prefixes: vec!["09x".into()],
                ..DialPolicy::default()
            },
            DialPolicy {
                allowed_countries: vec!["Germany".into()],
                ..DialPolicy::default()
            },
            DialPolicy {
                tenant_in_flight: 0,
                ..DialPolicy::default()
            },
        ];
        for policy in bad {
            assert!(policy.validate().is_err(), "{policy:?}");
        }
    }
}
