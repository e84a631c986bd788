//! Web-service profiles, the same for the command line and the admin API: validation,
//! the SSRF check at save, what a profile looks like when shown, `test` and `run`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::Db;
use crate::domain::profile::{
    CallFacts, MASK, ProfileInput, ProfileName, ProfileSpec, RenderedRequest,
};
use crate::domain::profile::{LoggedAttempt, StoredProfile};
use crate::domain::{FieldError, TenantId};
use crate::store;
use crate::store::{deliveries, profiles};
use crate::webhook::{Deliverer, Refused, Signing, WebhookClient, sign};

/// How long a rotated secret keeps signing beside the new one.
pub const SECRET_OVERLAP: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("the profile is not valid")]
    Invalid(Vec<FieldError>),
    #[error("a profile named {0} exists already")]
    Duplicate(String),
    #[error("no profile named {0}")]
    NotFound(String),
    #[error("no call {0}")]
    NoCall(String),
    /// The target is refused by the SSRF guard (shown to tenants by its rule).
    #[error("{field}: {refused}")]
    Refused {
        field: &'static str,
        refused: Refused,
    },
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

/// A profile as shown: its definition with secret header values masked.
#[derive(Debug, Clone, Serialize)]
pub struct ProfileView {
    pub name: String,
    #[serde(flatten)]
    pub definition: ProfileInput,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub failing_since: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl ProfileView {
    pub fn of(profile: &StoredProfile) -> Self {
        let definition = match profile.spec() {
            Ok(spec) => spec.to_input(true),
            Err(_) => ProfileInput::default(),
        };
        Self {
            name: profile.name.clone(),
            definition,
            enabled: profile.enabled,
            disabled_reason: profile.disabled_reason.clone(),
            failing_since: profile.failing_since,
            created_at: profile.created_at,
            updated_at: profile.updated_at,
        }
    }
}

/// Checks `input` and its target as the tenant's deliveries will be checked (a name
/// resolving to a forbidden address is refused now, not at the first call; one that
/// does not resolve yet is accepted).
async fn checked(
    client: &WebhookClient,
    tenant_slug: &str,
    input: &ProfileInput,
) -> Result<ProfileSpec, ProfileError> {
    let spec = input.validate().map_err(ProfileError::Invalid)?;
    let field = if input.from_url.is_some() {
        "from_url"
    } else {
        "url"
    };
    let client = client.for_tenant(tenant_slug)?;
    let refused = |refused: Refused| ProfileError::Refused { field, refused };
    client
        .outbound()
        .check_target(&spec.url)
        .await
        .map_err(refused)?;
    Ok(spec)
}

/// Creates a profile; answers it and its signing secret (shown this once). The target
/// is checked (and resolved) before a connection is taken.
pub async fn create(
    db: &Db,
    client: &WebhookClient,
    tenant: TenantId,
    tenant_slug: &str,
    name: &str,
    input: &ProfileInput,
) -> Result<(StoredProfile, String), ProfileError> {
    let name = ProfileName::parse(name)
        .map_err(|m| ProfileError::Invalid(vec![FieldError::new("name", m)]))?;
    let spec = checked(client, tenant_slug, input).await?;
    let secret = sign::new_secret();
    let stored = spec.to_input(false);
    let created = db
        .run(async |db| profiles::create(&*db, tenant, &name, &stored, &spec, &secret).await)
        .await?
        .ok_or_else(|| ProfileError::Duplicate(name.to_string()))?;
    Ok((created, secret))
}

/// Changes what `update` names; the rest stays.
pub async fn update(
    db: &Db,
    client: &WebhookClient,
    tenant: TenantId,
    tenant_slug: &str,
    name: &str,
    update: &ProfileInput,
) -> Result<StoredProfile, ProfileError> {
    let current = find(db, tenant, name).await?;
    let mut update = update.clone();
    // A secret header shown masked and sent back unchanged keeps its value.
    if let Some(headers) = &mut update.secret_headers {
        let old = current
            .spec()?
            .to_input(false)
            .secret_headers
            .unwrap_or_default();
        for header in headers.iter_mut() {
            if let Some((n, v)) = header.split_once(':')
                && v.trim() == MASK
                && let Some(kept) = old.iter().find(|o| {
                    o.split_once(':')
                        .is_some_and(|(on, _)| on.trim().eq_ignore_ascii_case(n.trim()))
                })
            {
                header.clone_from(kept);
            }
        }
    }
    let merged = current.spec()?.to_input(false).merged(&update);
    let spec = checked(client, tenant_slug, &merged).await?;
    let stored = spec.to_input(false);
    db.run(async |db| profiles::update(&*db, tenant, name, &stored, &spec).await)
        .await?
        .ok_or_else(|| ProfileError::NotFound(name.to_owned()))
}

pub async fn find(db: &Db, tenant: TenantId, name: &str) -> Result<StoredProfile, ProfileError> {
    db.run(async |db| profiles::find(&*db, tenant, name).await)
        .await?
        .ok_or_else(|| ProfileError::NotFound(name.to_owned()))
}

pub async fn list(db: &Db, tenant: TenantId) -> Result<Vec<StoredProfile>, ProfileError> {
    Ok(db
        .run(async |db| profiles::list(&*db, tenant).await)
        .await?)
}

/// Stops (with `reason`) or resumes sending; answers the profile as it now is.
pub async fn set_enabled(
    db: &Db,
    tenant: TenantId,
    name: &str,
    enabled: bool,
    reason: Option<&str>,
) -> Result<StoredProfile, ProfileError> {
    db.run(async |db| profiles::set_enabled(&*db, tenant, name, enabled, reason).await)
        .await?
        .ok_or_else(|| ProfileError::NotFound(name.to_owned()))
}

/// Deletes a profile, its deliveries and their log.
pub async fn delete(db: &Db, tenant: TenantId, name: &str) -> Result<(), ProfileError> {
    let deleted = db
        .run(async |db| profiles::delete(&*db, tenant, name).await)
        .await?;
    if deleted {
        Ok(())
    } else {
        Err(ProfileError::NotFound(name.to_owned()))
    }
}

/// A new signing secret (shown this once); the old one signs beside it for a day.
pub async fn rotate_secret(db: &Db, tenant: TenantId, name: &str) -> Result<String, ProfileError> {
    let secret = sign::new_secret();
    db.run(async |db| profiles::rotate_secret(&*db, tenant, name, &secret, SECRET_OVERLAP).await)
        .await?
        .ok_or_else(|| ProfileError::NotFound(name.to_owned()))?;
    Ok(secret)
}

/// What `test` shows: the request (secrets masked) and, unless a dry run, the answer.
#[derive(Debug, Clone, Serialize)]
pub struct TestReport {
    pub method: String,
    pub url: String,
    pub headers: Vec<String>,
    pub body: String,
    pub sent: bool,
    pub status: Option<u16>,
    pub latency_ms: Option<u64>,
    pub error: Option<String>,
    pub response: Option<String>,
    /// A refusal with its address, for the operator's command line only.
    #[serde(skip)]
    pub refusal_detail: Option<String>,
}

/// The call a test or run uses: a stored one (by UUID or report call id), or the sample.
pub async fn call_for(
    db: &Db,
    tenant: TenantId,
    call: Option<&str>,
) -> Result<serde_json::Value, ProfileError> {
    match call {
        Some(call) => db
            .run(async |db| deliveries::call_facts(&*db, tenant, call).await)
            .await?
            .ok_or_else(|| ProfileError::NoCall(call.to_owned()))
            .and_then(stored),
        None => Ok(sample_call()),
    }
}

fn sample_call() -> serde_json::Value {
    let sample = CallFacts {
        event: String::new(),
        location: None,
        ..CallFacts::sample()
    };
    serde_json::to_value(sample).expect("call facts serialize")
}

/// The facts as a delivery stores them.
fn stored(facts: CallFacts) -> Result<serde_json::Value, ProfileError> {
    Ok(serde_json::to_value(facts).map_err(anyhow::Error::from)?)
}

/// Renders the profile's request for `call` and, unless `dry_run`, sends it through the
/// same guard and client as deliveries (signed, with a test `webhook-id`).
pub async fn test(
    deliverer: &Deliverer,
    profile: &StoredProfile,
    tenant: TenantId,
    call: serde_json::Value,
    dry_run: bool,
) -> Result<TestReport, ProfileError> {
    let claimed = crate::domain::profile::Claimed {
        id: Uuid::nil(),
        message_id: Uuid::new_v4(),
        tenant,
        profile_id: profile.id,
        trigger: profile.spec()?.trigger.as_str().to_owned(),
        call,
        attempt: 1,
    };
    let request = deliverer.render(profile, &claimed)?;
    let mut report = shown(&request);
    if dry_run {
        return Ok(report);
    }
    let id = deliveries::webhook_id(claimed.message_id);
    let attempt = deliverer
        .client
        .for_tenant(&profile.tenant_slug)?
        .send(
            &request,
            &Signing {
                id: &id,
                secrets: profile.signing_secrets(Utc::now()),
            },
        )
        .await;
    report.sent = !attempt.refused;
    report.status = attempt.status;
    report.latency_ms = Some(attempt.latency.as_millis() as u64);
    report.error = attempt.error;
    report.refusal_detail = attempt.refusal.as_ref().map(Refused::detail);
    report.response = attempt.status.map(|_| attempt.response);
    Ok(report)
}

fn shown(request: &RenderedRequest) -> TestReport {
    let mut headers: Vec<String> = request
        .headers
        .iter()
        .map(|(n, v, secret)| format!("{n}: {}", if *secret { MASK } else { v }))
        .collect();
    if let Some(content_type) = request.content_type {
        headers.push(format!("Content-Type: {content_type}"));
    }
    headers.push("webhook-id, webhook-timestamp, webhook-signature: (set when sent)".into());
    TestReport {
        method: request.method.as_str().to_owned(),
        url: request.url.to_string(),
        headers,
        body: String::from_utf8_lossy(&request.body).into_owned(),
        sent: false,
        status: None,
        latency_ms: None,
        error: None,
        response: None,
        refusal_detail: None,
    }
}

/// What `run` did: the delivery it queued and sent, and its attempts.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub delivery_id: Uuid,
    pub attempts: Vec<LoggedAttempt>,
}

/// Sends a stored call through the profile as it is now, as a delivery (logged, retried
/// on the schedule if this first attempt fails). No connection is held while it is sent:
/// the receiver may take its whole timeout.
pub async fn run(
    deliverer: &Deliverer,
    profile: &StoredProfile,
    tenant: TenantId,
    call: &str,
) -> Result<RunReport, ProfileError> {
    let trigger = profile.spec()?.trigger;
    let queued = store::with_client(&deliverer.pool, deliverer.db_timeout, async |db| {
        let Some(facts) = deliveries::call_facts(&*db, tenant, call).await? else {
            return Ok(None);
        };
        let snapshot = serde_json::to_value(facts)?;
        let id = deliveries::enqueue_manual(&*db, tenant, profile.id, trigger, &snapshot).await?;
        Ok(Some(id))
    })
    .await?;
    let id = queued.ok_or_else(|| ProfileError::NoCall(call.to_owned()))?;
    deliverer.round(1, Some(id)).await?;
    let attempts = store::with_client(&deliverer.pool, deliverer.db_timeout, async |db| {
        deliveries::attempts(&*db, tenant, id).await
    })
    .await?
    .unwrap_or_default();
    Ok(RunReport {
        delivery_id: id,
        attempts,
    })
}
