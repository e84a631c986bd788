//! What a source is: its kind, parameters (the PBX reference's names), timeout and mode,
//! checked before it is stored; and the plan of the HTTP request each kind makes.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::domain::{FieldError, RoutingField};

/// The kinds the reference lists ("Api params usage").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    HttpJson,
    Salesforce,
    Soap,
    Minicrm,
    Freshdesk,
    Pipedrive,
}

pub const KINDS: &str = "http-json, salesforce, soap, minicrm, freshdesk, pipedrive";

impl Kind {
    pub fn parse(raw: &str) -> Result<Self, String> {
        Ok(match raw {
            "http-json" => Self::HttpJson,
            "salesforce" => Self::Salesforce,
            "soap" => Self::Soap,
            "minicrm" => Self::Minicrm,
            "freshdesk" => Self::Freshdesk,
            "pipedrive" => Self::Pipedrive,
            _ => return Err(format!("must be one of {KINDS}")),
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::HttpJson => "http-json",
            Self::Salesforce => "salesforce",
            Self::Soap => "soap",
            Self::Minicrm => "minicrm",
            Self::Freshdesk => "freshdesk",
            Self::Pipedrive => "pipedrive",
        }
    }

    /// Parameters the kind needs.
    fn required(self) -> &'static [&'static str] {
        match self {
            Self::HttpJson => &["url", "field.id"],
            Self::Freshdesk => &["domain", "user"],
            Self::Pipedrive => &["domain", "token"],
            Self::Salesforce => &["username", "password", "token"],
            Self::Soap => &["url", "func_name"],
            Self::Minicrm => &["SystemId", "APIKey"],
        }
    }

    /// Parameters the kind takes besides the required ones and the common ones.
    fn optional(self) -> &'static [&'static str] {
        match self {
            Self::HttpJson => &["method", "body", "user", "password", "bearer"],
            Self::Freshdesk => &["password"],
            Self::Pipedrive => &["user"],
            Self::Salesforce => &["contact_url", "custom_url"],
            Self::Soap | Self::Minicrm => &[],
        }
    }

    /// Whether this version asks the kind's CRM (the others are refused when added).
    pub fn supported(self) -> bool {
        matches!(self, Self::HttpJson | Self::Freshdesk | Self::Pipedrive)
    }

    /// Requests a minute the vendor's documented limits allow (`rate_per_minute`
    /// overrides): Pipedrive's search 10 per 2 s, Freshdesk's smallest paid plan 100 a
    /// minute; a generic CRM gets 10 a second.
    pub fn default_rate_per_minute(self) -> u32 {
        match self {
            Self::Pipedrive => 300,
            Self::Freshdesk => 100,
            _ => 600,
        }
    }
}

/// Parameters every kind takes.
const COMMON: [&str; 2] = ["base_url", "rate_per_minute"];

/// Whether a parameter's value is a secret: sealed at rest, never shown again.
pub fn is_secret(key: &str) -> bool {
    key.starts_with("header:")
        || matches!(
            key,
            "password" | "token" | "bearer" | "APIKey" | "api_key" | "user_password"
        )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Inline,
    Background,
}

impl Mode {
    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw {
            "inline" => Ok(Self::Inline),
            "background" => Ok(Self::Background),
            _ => Err("must be inline or background".into()),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Inline => "inline",
            Self::Background => "background",
        }
    }
}

pub const DEFAULT_TIMEOUT_MS: u32 = 1_500;
pub const TIMEOUTS_MS: std::ops::RangeInclusive<u32> = 10..=30_000;

/// A source as defined by its operator (secrets in the clear: only in memory).
#[derive(Debug, Clone)]
pub struct Definition {
    pub kind: Kind,
    pub params: BTreeMap<String, String>,
    pub timeout: Duration,
    pub mode: Mode,
}

impl Definition {
    /// Checks a definition; every problem is named.
    pub fn new(
        kind: Kind,
        params: BTreeMap<String, String>,
        timeout_ms: Option<u32>,
        mode: Option<Mode>,
    ) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        if !kind.supported() {
            errors.push(FieldError::new(
                "kind",
                format!(
                    "{} is not supported by this version yet (http-json, freshdesk and pipedrive are)",
                    kind.as_str()
                ),
            ));
        }
        for key in kind.required() {
            if params.get(*key).is_none_or(|v| v.trim().is_empty()) {
                errors.push(FieldError::new(format!("param.{key}"), "is required"));
            }
        }
        for (key, value) in &params {
            let known = kind.required().contains(&key.as_str())
                || kind.optional().contains(&key.as_str())
                || COMMON.contains(&key.as_str())
                || (kind == Kind::HttpJson
                    && (key.starts_with("header:") || key.starts_with("field.")));
            if !known {
                errors.push(FieldError::new(
                    format!("param.{key}"),
                    format!("is not a parameter of {}", kind.as_str()),
                ));
            } else if let Err(message) = check_param(key, value) {
                errors.push(FieldError::new(format!("param.{key}"), message));
            }
        }
        let timeout_ms = timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS);
        if !TIMEOUTS_MS.contains(&timeout_ms) {
            errors.push(FieldError::new("timeout_ms", "must be 10 to 30000"));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Self {
            kind,
            params,
            timeout: Duration::from_millis(timeout_ms.into()),
            mode: mode.unwrap_or(Mode::Inline),
        })
    }

    pub fn param(&self, key: &str) -> Option<&str> {
        self.params.get(key).map(String::as_str)
    }

    pub fn rate_per_minute(&self) -> u32 {
        self.param("rate_per_minute")
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| self.kind.default_rate_per_minute())
    }

    /// The parameters as shown: secrets masked.
    pub fn shown_params(&self) -> BTreeMap<String, String> {
        self.params
            .iter()
            .map(|(k, v)| {
                let v = if is_secret(k) {
                    MASK.to_owned()
                } else {
                    v.clone()
                };
                (k.clone(), v)
            })
            .collect()
    }

    /// The secret values, to mask wherever a request is shown.
    pub fn secrets(&self) -> impl Iterator<Item = &str> {
        self.params
            .iter()
            .filter(|(k, v)| is_secret(k) && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }
}

pub const MASK: &str = "********";

fn check_param(key: &str, value: &str) -> Result<(), String> {
    if value.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    match key {
        "url" | "base_url" => {
            let probe = value.replace("{{", "").replace("}}", "");
            let url = url::Url::parse(&probe).map_err(|e| format!("is not a URL: {e}"))?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err("must be an http or https URL".into());
            }
            Ok(())
        }
        "method" => match value {
            "GET" | "POST" => Ok(()),
            _ => Err("must be GET or POST".into()),
        },
        "domain" => {
            let ok = !value.is_empty()
                && value.len() <= 63
                && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
            ok.then_some(())
                .ok_or_else(|| "must be the account's subdomain (letters, digits, -)".into())
        }
        "rate_per_minute" => match value.parse::<u32>() {
            Ok(1..=100_000) => Ok(()),
            _ => Err("must be a number of requests from 1 to 100000".into()),
        },
        _ if key.starts_with("field.") => {
            let field = &key["field.".len()..];
            let known = matches!(field, "id" | "name") || RoutingField::named(field).is_some();
            if !known {
                return Err(format!(
                    "names no answer field (id, name, {})",
                    RoutingField::ALL
                        .iter()
                        .map(|f| f.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            if value.trim().is_empty() {
                return Err("must be a JSON path such as data.0.id".into());
            }
            Ok(())
        }
        _ if key.starts_with("header:") => {
            let name = &key["header:".len()..];
            reqwest::header::HeaderName::from_bytes(name.as_bytes())
                .map(|_| ())
                .map_err(|_| format!("{name:?} is not a header name"))
        }
        _ => Ok(()),
    }
}

/// One HTTP request of a source, with the JSON paths of the answer's fields.
#[derive(Debug, Clone)]
pub struct Plan {
    pub method: reqwest::Method,
    /// With placeholders (`{{Number}}`, `{{NationalNumber}}`, `{{Digits}}`).
    pub url: String,
    pub body: Option<String>,
    pub headers: Vec<(String, String)>,
    pub basic: Option<(String, String)>,
    pub bearer: Option<String>,
    /// (answer field, JSON path); `id` first.
    pub fields: Vec<(String, String)>,
    /// The contact's page in the CRM, `{{id}}` replaced by the found id (when no
    /// `crm_url` path is given).
    pub link: Option<String>,
}

impl Definition {
    /// The request this source makes for a number.
    pub fn plan(&self) -> Plan {
        let p = |k: &str| self.param(k).map(str::to_owned);
        let vendor = |sub: &str| {
            p("base_url").unwrap_or_else(|| {
                format!("https://{}.{sub}", self.param("domain").unwrap_or_default())
            })
        };
        let fields = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(f, path)| ((*f).to_owned(), (*path).to_owned()))
                .collect()
        };
        match self.kind {
            Kind::Pipedrive => {
                let base = vendor("pipedrive.com");
                Plan {
                    method: reqwest::Method::GET,
                    url: format!(
                        "{}/api/v1/persons/search?term={{{{Number}}}}&fields=phone&exact_match=false&limit=1&api_token={}",
                        base.trim_end_matches('/'),
                        urlencode(self.param("token").unwrap_or_default())
                    ),
                    body: None,
                    headers: Vec::new(),
                    basic: None,
                    bearer: None,
                    fields: fields(&[
                        ("id", "data.items.0.item.id"),
                        ("name", "data.items.0.item.name"),
                    ]),
                    link: Some(format!("{}/person/{{{{id}}}}", base.trim_end_matches('/'))),
                }
            }
            Kind::Freshdesk => {
                let base = vendor("freshdesk.com");
                Plan {
                    method: reqwest::Method::GET,
                    url: format!(
                        "{}/api/v2/contacts?phone={{{{Number}}}}",
                        base.trim_end_matches('/')
                    ),
                    body: None,
                    headers: Vec::new(),
                    // The API key as user and `X` as password, or an agent's login.
                    basic: Some((
                        self.param("user").unwrap_or_default().to_owned(),
                        p("password").unwrap_or_else(|| "X".into()),
                    )),
                    bearer: None,
                    fields: fields(&[("id", "0.id"), ("name", "0.name")]),
                    link: Some(format!(
                        "{}/a/contacts/{{{{id}}}}",
                        base.trim_end_matches('/')
                    )),
                }
            }
            _ => {
                let mut fields: Vec<(String, String)> = self
                    .params
                    .iter()
                    .filter_map(|(k, v)| Some((k.strip_prefix("field.")?.to_owned(), v.clone())))
                    .collect();
                fields.sort_by_key(|(f, _)| f != "id");
                Plan {
                    method: match self.param("method") {
                        Some("POST") => reqwest::Method::POST,
                        _ => reqwest::Method::GET,
                    },
                    url: p("url").unwrap_or_default(),
                    body: p("body"),
                    headers: self
                        .params
                        .iter()
                        .filter_map(|(k, v)| {
                            Some((k.strip_prefix("header:")?.to_owned(), v.clone()))
                        })
                        .collect(),
                    basic: p("user").map(|u| (u, p("password").unwrap_or_default())),
                    bearer: p("bearer"),
                    fields,
                    link: None,
                }
            }
        }
    }
}

pub fn urlencode(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}
