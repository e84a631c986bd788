//! A profile as stored: its definition, signing secrets and state.

use chrono::{DateTime, Utc};

use super::{ProfileInput, ProfileSpec};
use crate::domain::TenantId;

/// A profile as stored.
#[derive(Debug, Clone)]
pub struct StoredProfile {
    pub id: i64,
    pub tenant: TenantId,
    /// The tenant's slug (what `CIDGATE_WEBHOOK_ALLOW_NETWORKS` rules name).
    pub tenant_slug: String,
    pub name: String,
    pub input: ProfileInput,
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_until: Option<DateTime<Utc>>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub failing_since: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl StoredProfile {
    /// The definition, checked (it was when saved).
    pub fn spec(&self) -> anyhow::Result<ProfileSpec> {
        self.input.validate().map_err(|errors| {
            anyhow::anyhow!(
                "profile {} no longer validates: {}",
                self.name,
                errors
                    .iter()
                    .map(|e| format!("{} {}", e.field, e.message))
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        })
    }

    /// The secrets that sign now: the current one, and the replaced one while it overlaps.
    pub fn signing_secrets(&self, now: DateTime<Utc>) -> Vec<&str> {
        let mut secrets = vec![self.secret.as_str()];
        if let (Some(previous), Some(until)) = (&self.previous_secret, self.previous_until)
            && until > now
        {
            secrets.push(previous);
        }
        secrets
    }
}

/// A profile of that name exists already.
#[derive(Debug, thiserror::Error)]
#[error("a profile named {0} exists already")]
pub struct Duplicate(pub String);
