//! The operations on a tenant's sources (add, list, show, set, remove, test), called
//! alike by `cidgate source` and the admin API `/api/v1/sources`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ask::{self, Failure};
use super::kinds::{Definition, Kind, Mode};
use crate::domain::{FieldError, PhoneNumber, Region, TenantId};
use crate::outbound::{Clients, Refused};
use crate::store::sources::{self as stored, StoredSource};

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("the source is not valid")]
    Invalid(Vec<FieldError>),
    #[error("the tenant has a source named {0} already")]
    Duplicate(String),
    #[error("no source named {0}")]
    NotFound(String),
    #[error("{refused}")]
    Refused { field: String, refused: Refused },
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

/// A source as given: by the command line's flags or the admin API's body.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceInput {
    pub kind: String,
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    pub timeout_ms: Option<u32>,
    pub mode: Option<String>,
}

/// A change: params given are set (an empty value removes one), the rest kept.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceChange {
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    pub timeout_ms: Option<u32>,
    pub mode: Option<String>,
    pub position: Option<i32>,
}

/// A source as shown: secrets masked.
#[derive(Debug, Serialize)]
pub struct SourceView {
    pub name: String,
    pub kind: &'static str,
    pub mode: &'static str,
    pub timeout_ms: u64,
    pub position: i32,
    pub rate_per_minute: u32,
    pub params: BTreeMap<String, String>,
}

impl From<&StoredSource> for SourceView {
    fn from(s: &StoredSource) -> Self {
        Self {
            name: s.name.clone(),
            kind: s.definition.kind.as_str(),
            mode: s.definition.mode.as_str(),
            timeout_ms: s.definition.timeout.as_millis() as u64,
            position: s.position,
            rate_per_minute: s.definition.rate_per_minute(),
            params: s.definition.shown_params(),
        }
    }
}

/// What `source test` did: each request (secrets masked) and the contact it would answer.
#[derive(Debug, Serialize)]
pub struct TestReport {
    pub requests: Vec<String>,
    pub status: Option<u16>,
    pub found: bool,
    pub contact: Option<Value>,
    pub error: Option<String>,
}

fn check_name(name: &str) -> Result<(), SourceError> {
    let ok = (1..=64).contains(&name.len())
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(SourceError::Invalid(vec![FieldError::new(
            "name",
            "must be 1 to 64 letters, digits, _ . or -, starting with a letter or digit",
        )]))
    }
}

fn definition(
    kind: &str,
    params: BTreeMap<String, String>,
    timeout_ms: Option<u32>,
    mode: Option<&str>,
) -> Result<Definition, SourceError> {
    let mut errors = Vec::new();
    let kind = Kind::parse(kind).map_err(|e| errors.push(FieldError::new("kind", e)));
    let mode = mode
        .map(Mode::parse)
        .transpose()
        .map_err(|e| errors.push(FieldError::new("mode", e)));
    match (kind, mode) {
        (Ok(kind), Ok(mode)) if errors.is_empty() => {
            Definition::new(kind, params, timeout_ms, mode).map_err(SourceError::Invalid)
        }
        _ => Err(SourceError::Invalid(errors)),
    }
}

/// Checks the source's target against the tenant's SSRF guard now (a name is checked
/// again at every connection).
async fn check_target(
    clients: &Clients,
    slug: &str,
    definition: &Definition,
) -> Result<(), SourceError> {
    let plan = definition.plan();
    let probe = plan
        .url
        .replace("{{Number}}", "%2B1")
        .replace("{{NationalNumber}}", "1")
        .replace("{{Digits}}", "1");
    let Ok(url) = url::Url::parse(&probe) else {
        return Err(SourceError::Invalid(vec![FieldError::new(
            "param.url",
            "is not a URL",
        )]));
    };
    let client = clients.for_tenant(slug)?;
    client
        .check_target(&url)
        .await
        .map_err(|refused| SourceError::Refused {
            field: if definition.param("base_url").is_some() {
                "param.base_url".into()
            } else if definition.param("url").is_some() {
                "param.url".into()
            } else {
                "param.domain".into()
            },
            refused,
        })
}

pub async fn add(
    client: &impl deadpool_postgres::GenericClient,
    (tenant, slug): (TenantId, &str),
    clients: &Clients,
    name: &str,
    input: SourceInput,
) -> Result<SourceView, SourceError> {
    check_name(name)?;
    let definition = definition(
        &input.kind,
        input.params,
        input.timeout_ms,
        input.mode.as_deref(),
    )?;
    check_target(clients, slug, &definition).await?;
    match stored::insert(client, tenant, name, &definition).await? {
        Ok(source) => Ok(SourceView::from(&source)),
        Err(duplicate) => Err(SourceError::Duplicate(duplicate.0)),
    }
}

pub async fn list(
    client: &impl deadpool_postgres::GenericClient,
    tenant: TenantId,
) -> Result<Vec<SourceView>, SourceError> {
    Ok(stored::list(client, tenant)
        .await?
        .iter()
        .map(SourceView::from)
        .collect())
}

async fn find(
    client: &impl deadpool_postgres::GenericClient,
    tenant: TenantId,
    name: &str,
) -> Result<StoredSource, SourceError> {
    stored::get(client, tenant, name)
        .await?
        .ok_or_else(|| SourceError::NotFound(name.to_owned()))
}

pub async fn show(
    client: &impl deadpool_postgres::GenericClient,
    tenant: TenantId,
    name: &str,
) -> Result<SourceView, SourceError> {
    Ok(SourceView::from(&find(client, tenant, name).await?))
}

pub async fn remove(
    client: &impl deadpool_postgres::GenericClient,
    tenant: TenantId,
    name: &str,
) -> Result<(), SourceError> {
    if stored::remove(client, tenant, name).await? {
        Ok(())
    } else {
        Err(SourceError::NotFound(name.to_owned()))
    }
}

pub async fn set(
    client: &impl deadpool_postgres::GenericClient,
    (tenant, slug): (TenantId, &str),
    clients: &Clients,
    name: &str,
    change: SourceChange,
) -> Result<SourceView, SourceError> {
    let current = find(client, tenant, name).await?;
    let mut params = current.definition.params.clone();
    for (key, value) in change.params {
        if value.is_empty() {
            params.remove(&key);
        } else {
            params.insert(key, value);
        }
    }
    let timeout_ms = change
        .timeout_ms
        .unwrap_or(current.definition.timeout.as_millis() as u32);
    let mode = change
        .mode
        .unwrap_or_else(|| current.definition.mode.as_str().to_owned());
    let definition = definition(
        current.definition.kind.as_str(),
        params,
        Some(timeout_ms),
        Some(&mode),
    )?;
    check_target(clients, slug, &definition).await?;
    stored::update(client, tenant, name, &definition, change.position).await?;
    show(client, tenant, name).await
}

/// Asks the source about `number` as a lookup would, writing nothing.
pub async fn test(
    client: &impl deadpool_postgres::GenericClient,
    (tenant, slug, region): (TenantId, &str, Region),
    clients: &Clients,
    name: &str,
    number: &str,
) -> Result<TestReport, SourceError> {
    let source = find(client, tenant, name).await?;
    let number = PhoneNumber::parse(number, region)
        .map_err(|e| SourceError::Invalid(vec![FieldError::new("number", e.to_string())]))?;
    let http = clients.for_tenant(slug)?;
    let definition = &source.definition;
    let asked = ask::ask(&http, definition, &number, definition.timeout).await;
    let (found, contact, error) = match asked.outcome {
        Ok(Some(found)) => {
            let mut contact = found.fields.clone();
            contact.insert("id".into(), Value::String(found.id));
            (true, Some(Value::Object(contact)), None)
        }
        Ok(None) => (false, None, None),
        Err(failure @ Failure::Refused(_)) => (false, None, Some(failure.to_string())),
        Err(failure) => (false, None, Some(failure.to_string())),
    };
    Ok(TestReport {
        requests: vec![asked.request],
        status: asked.status,
        found,
        contact,
        error,
    })
}
