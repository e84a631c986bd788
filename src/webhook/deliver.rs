//! One round of delivery: claim due deliveries (the claim is committed before any
//! request), render each through its profile as it is now, send them concurrently,
//! then log every attempt and move each delivery on in one transaction.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use deadpool_postgres::Pool;
use futures_util::StreamExt;
use uuid::Uuid;

use super::client::{Attempt, Signing, Verdict, WebhookClient};
use super::warn::{DeliveryWarning, Warnings};
use crate::config::webhooks::RetrySchedule;
use crate::domain::profile::{CallFacts, RenderedRequest, Trigger};
use crate::domain::profile::{Claimed, Recorded, StoredProfile};
use crate::live::directory::{Directory, TenantEntry};
use crate::metrics::Metrics;
use crate::popup::LinkClaims;
use crate::store;
use crate::store::deliveries;
use crate::store::profiles;

/// Longest a `Retry-After` may push an attempt back.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// Everything a delivery round needs (cheap to clone).
#[derive(Clone)]
pub struct Deliverer {
    pub pool: Pool,
    pub client: WebhookClient,
    pub schedule: RetrySchedule,
    pub disable_after: Duration,
    /// Bounds each database step.
    pub db_timeout: Duration,
    /// Requests in flight at once within a round.
    pub concurrency: usize,
    /// How long a claim holds: past it, another worker may send the delivery again.
    pub lease: Duration,
    /// For `<Popup Link>`: the tenants' signing keys and the gateway's public URL.
    pub popups: Option<(Directory, url::Url)>,
    pub metrics: Option<Arc<Metrics>>,
    /// Rate-limits the warnings about deliveries that did not arrive.
    pub warnings: Arc<Warnings>,
}

impl Deliverer {
    /// The claim's lease for a request `timeout`: long enough that a live worker always
    /// finishes first.
    pub fn lease_for(timeout: Duration) -> Duration {
        timeout * 2 + Duration::from_secs(5)
    }

    /// Claims up to `limit` due deliveries fairly (or just `only`), sends them and records
    /// what happened; answers how many were sent. The worker does not use it: it records
    /// each delivery as it finishes instead of waiting for a round's slowest.
    pub async fn round(&self, limit: i64, only: Option<Uuid>) -> anyhow::Result<usize> {
        let claimed = self.claim(limit, only).await?;
        if claimed.is_empty() {
            return Ok(0);
        }
        let profiles = self.profiles_of(&claimed).await?;
        let sent: Vec<(Claimed, Option<Attempt>)> = futures_util::stream::iter(claimed)
            .map(|c| {
                let profile = profiles.get(&c.profile_id);
                async move {
                    let attempt = match profile {
                        Some(profile) => Some(self.send(profile, &c).await),
                        None => None,
                    };
                    (c, attempt)
                }
            })
            .buffer_unordered(self.concurrency.max(1))
            .collect()
            .await;
        let count = sent.len();
        self.record(&sent).await?;
        Ok(count)
    }

    /// Claims up to `limit` due deliveries fairly between tenants and profiles (or just
    /// `only`, whatever its time).
    pub async fn claim(&self, limit: i64, only: Option<Uuid>) -> anyhow::Result<Vec<Claimed>> {
        store::with_client(&self.pool, self.db_timeout, async |client| match only {
            Some(_) => deliveries::claim(&*client, limit, self.lease, only).await,
            None => deliveries::claim_fair(client, limit, self.lease).await,
        })
        .await
    }

    /// The profiles of claimed deliveries, as they are now.
    pub async fn profiles_of(
        &self,
        claimed: &[Claimed],
    ) -> anyhow::Result<HashMap<i64, StoredProfile>> {
        let mut ids: Vec<i64> = claimed.iter().map(|c| c.profile_id).collect();
        ids.sort_unstable();
        ids.dedup();
        Ok(
            store::with_client(&self.pool, self.db_timeout, async |client| {
                profiles::by_ids(&*client, &ids).await
            })
            .await?
            .into_iter()
            .map(|p| (p.id, p))
            .collect(),
        )
    }

    /// Renders and sends one claimed delivery.
    pub async fn send(&self, profile: &StoredProfile, claimed: &Claimed) -> Attempt {
        let request = match self.render(profile, claimed) {
            Ok(request) => request,
            Err(e) => return unsendable(format!("{e:#}")),
        };
        let id = deliveries::webhook_id(claimed.message_id);
        let signing = Signing {
            id: &id,
            secrets: profile.signing_secrets(Utc::now()),
        };
        let client = match self.client.for_tenant(&profile.tenant_slug) {
            Ok(client) => client,
            Err(e) => return unsendable(format!("{e:#}")),
        };
        let attempt = client.send(&request, &signing).await;
        if let Some(metrics) = &self.metrics {
            metrics
                .webhooks
                .attempt_duration
                .observe(attempt.latency.as_secs_f64());
        }
        attempt
    }

    /// The request a claimed delivery sends through its profile as it is now.
    pub fn render(
        &self,
        profile: &StoredProfile,
        claimed: &Claimed,
    ) -> anyhow::Result<RenderedRequest> {
        let spec = profile.spec()?;
        let trigger = Trigger::parse(&claimed.trigger).map_err(anyhow::Error::msg)?;
        let mut facts: CallFacts = serde_json::from_value(claimed.call.clone())?;
        facts = facts.for_trigger(trigger);
        if let Some((directory, public_url)) = &self.popups
            && let Some(entry) = directory.tenant(claimed.tenant)
        {
            facts.popup_link = popup_link(&entry, public_url, &facts);
        }
        Ok(spec.render(&facts))
    }

    /// Logs the attempts, moves the deliveries on and the profiles' failure state.
    pub async fn record(&self, sent: &[(Claimed, Option<Attempt>)]) -> anyhow::Result<()> {
        let mut recorded = Vec::with_capacity(sent.len());
        let (mut succeeded, mut failed, mut gone) = (Vec::new(), Vec::new(), Vec::new());
        let (mut answered, mut unanswered) = (Vec::new(), Vec::new());
        for (claimed, attempt) in sent {
            let attempt = attempt
                .clone()
                .unwrap_or_else(|| unsendable("the profile is gone".into()));
            let verdict = attempt.verdict();
            let (state, next) = match verdict {
                Verdict::Delivered => ("delivered", None),
                Verdict::Fail | Verdict::Gone => ("failed", None),
                Verdict::Retry => match self.schedule.after(claimed.attempt.max(1) as u32) {
                    Some(delay) => {
                        let wait = attempt
                            .retry_after
                            .map_or(delay, |asked| asked.min(MAX_RETRY_AFTER).max(delay));
                        ("pending", Some(Utc::now() + wait))
                    }
                    None => ("failed", None),
                },
            };
            match (attempt.status, attempt.refused) {
                (Some(_), _) => answered.push(claimed.profile_id),
                (None, false) => unanswered.push(claimed.profile_id),
                (None, true) => {}
            }
            match verdict {
                Verdict::Delivered => succeeded.push(claimed.profile_id),
                Verdict::Gone => gone.push(claimed.profile_id),
                Verdict::Fail | Verdict::Retry if !attempt.refused => {
                    failed.push(claimed.profile_id)
                }
                _ => {}
            }
            let outcome = match (state, verdict) {
                ("delivered", _) => "delivered",
                ("pending", _) => "retrying",
                (_, Verdict::Gone) => "gone",
                _ => "failed",
            };
            if let Some(metrics) = &self.metrics {
                metrics.webhooks.outcome(outcome);
            }
            if outcome != "delivered" {
                let answered = attempt.status.map(|s| format!("answered {s}"));
                let detail = attempt.refusal.as_ref().map(super::Refused::detail);
                self.warnings.delivery(&DeliveryWarning {
                    profile: claimed.profile_id,
                    tenant: claimed.tenant.0,
                    delivery: claimed.id,
                    attempt: claimed.attempt,
                    outcome: if attempt.refused { "refused" } else { outcome },
                    reason: detail
                        .as_deref()
                        .or(attempt.error.as_deref())
                        .or(answered.as_deref())
                        .unwrap_or("unknown"),
                });
            }
            recorded.push(Recorded {
                id: claimed.id,
                tenant: claimed.tenant,
                attempted_at: attempt.at,
                status: attempt.status.map(i32::from),
                latency_ms: i32::try_from(attempt.latency.as_millis()).unwrap_or(i32::MAX),
                error: attempt.error.clone(),
                response: attempt.response.clone(),
                state,
                next_attempt_at: next,
            });
        }
        for list in [&mut succeeded, &mut failed, &mut gone, &mut answered] {
            list.sort_unstable();
            list.dedup();
        }
        let disabled = store::with_client(&self.pool, self.db_timeout, async |client| {
            let tx = client.transaction().await?;
            deliveries::record(&tx, &recorded).await?;
            profiles::record_timeouts(&tx, &answered, &unanswered).await?;
            let disabled =
                profiles::record_outcomes(&tx, &succeeded, &failed, &gone, self.disable_after)
                    .await?;
            tx.commit().await?;
            Ok(disabled)
        })
        .await?;
        for (profile, reason) in disabled {
            tracing::warn!(profile, reason, "web-service profile disabled");
        }
        Ok(())
    }
}

/// An attempt that never left: the profile or the call could not make a request.
fn unsendable(error: String) -> Attempt {
    Attempt {
        at: Utc::now(),
        status: None,
        latency: Duration::ZERO,
        error: Some(error),
        response: String::new(),
        retry_after: None,
        refused: true,
        refusal: None,
    }
}

/// The screen-pop link for the call's other party, as a lookup would hand it out.
pub fn popup_link(entry: &TenantEntry, public_url: &url::Url, facts: &CallFacts) -> Option<String> {
    let number = facts.record.other_number.as_deref()?;
    let settings = &entry.tenant.popup;
    if facts.record.contact_id.is_none() && !settings.for_unknown {
        return None;
    }
    let signer = entry.signer.as_ref()?;
    let ttl = i64::try_from(settings.ttl_secs).unwrap_or(i64::MAX);
    let claims = LinkClaims {
        tenant: entry.tenant.id.0,
        crm_id: facts.record.contact_id.as_deref().map(Cow::Borrowed),
        number: number.into(),
        dnid: facts
            .record
            .dnis
            .as_deref()
            .filter(|d| !d.is_empty())
            .map(Cow::Borrowed),
        expires: Utc::now().timestamp().saturating_add(ttl),
        ..LinkClaims::default()
    };
    let mut link = format!("{}/pop/", public_url.as_str().trim_end_matches('/'));
    signer.seal_into(&claims, &mut link);
    Some(link)
}
