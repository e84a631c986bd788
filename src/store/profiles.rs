//! Web-service profiles, per tenant: the definition as written, the signing secret
//! (and the one it replaced, during the overlap), and whether it is enabled.

use std::time::Duration;

use anyhow::Context;
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use super::secrets;
use crate::domain::TenantId;
use crate::domain::profile::StoredProfile;
use crate::domain::profile::{ProfileInput, ProfileName, ProfileSpec};

const COLUMNS: &str = "id, tenant_id, name, definition, secret, previous_secret, previous_until,
    enabled, disabled_reason, failing_since, created_at, updated_at,
    (SELECT t.slug FROM tenants t WHERE t.id = webhook_profiles.tenant_id) AS tenant_slug";

/// The definition as stored: secret header values sealed (when a key is configured).
fn sealed(input: &ProfileInput) -> anyhow::Result<serde_json::Value> {
    let mut input = input.clone();
    secrets::headers(&mut input.secret_headers, secrets::seal)?;
    Ok(serde_json::to_value(input)?)
}

fn from_row(row: &Row) -> anyhow::Result<StoredProfile> {
    let mut input: ProfileInput =
        serde_json::from_value(row.get("definition")).context("a stored profile")?;
    secrets::headers(&mut input.secret_headers, secrets::open)?;
    let open = |column: &str| -> anyhow::Result<Option<String>> {
        row.get::<_, Option<&str>>(column)
            .map(|s| secrets::open(secrets::PROFILE_SECRET, s))
            .transpose()
    };
    Ok(StoredProfile {
        id: row.get("id"),
        tenant: TenantId(row.get("tenant_id")),
        tenant_slug: row.get("tenant_slug"),
        name: row.get("name"),
        input,
        secret: open("secret")?.unwrap_or_default(),
        previous_secret: open("previous_secret")?,
        previous_until: row.get("previous_until"),
        enabled: row.get("enabled"),
        disabled_reason: row.get("disabled_reason"),
        failing_since: row.get("failing_since"),
        created_at: row.get("created_at"),
        updated_at: row.get("updated_at"),
    })
}

fn all_from(rows: &[Row]) -> anyhow::Result<Vec<StoredProfile>> {
    rows.iter().map(from_row).collect()
}

/// Creates a profile; `Ok(None)` when the name is taken.
pub async fn create(
    client: &impl GenericClient,
    tenant: TenantId,
    name: &ProfileName,
    input: &ProfileInput,
    spec: &ProfileSpec,
    secret: &str,
) -> anyhow::Result<Option<StoredProfile>> {
    let row = client
        .query_opt(
            &format!(
                "INSERT INTO webhook_profiles (tenant_id, name, definition, trigger, secret, max_in_flight)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (tenant_id, name) DO NOTHING
                 RETURNING {COLUMNS}"
            ),
            &[
                &tenant.0,
                &name.as_str(),
                &sealed(input)?,
                &spec.trigger.as_str(),
                &secrets::seal(secrets::PROFILE_SECRET, secret)?,
                &(spec.max_in_flight as i32),
            ],
        )
        .await
        .context("creating a profile")?;
    row.as_ref().map(from_row).transpose()
}

pub async fn list(
    client: &impl GenericClient,
    tenant: TenantId,
) -> anyhow::Result<Vec<StoredProfile>> {
    let rows = client
        .query(
            &format!("SELECT {COLUMNS} FROM webhook_profiles WHERE tenant_id = $1 ORDER BY name"),
            &[&tenant.0],
        )
        .await
        .context("listing profiles")?;
    all_from(&rows)
}

pub async fn find(
    client: &impl GenericClient,
    tenant: TenantId,
    name: &str,
) -> anyhow::Result<Option<StoredProfile>> {
    let row = client
        .query_opt(
            &format!("SELECT {COLUMNS} FROM webhook_profiles WHERE tenant_id = $1 AND name = $2"),
            &[&tenant.0, &name],
        )
        .await
        .context("finding a profile")?;
    row.as_ref().map(from_row).transpose()
}

/// Profiles by id: across tenants on purpose (the delivery workers serve every tenant).
pub async fn by_ids(
    client: &impl GenericClient,
    ids: &[i64],
) -> anyhow::Result<Vec<StoredProfile>> {
    let rows = client
        .query(
            &format!("SELECT {COLUMNS} FROM webhook_profiles WHERE id = ANY($1)"),
            &[&ids],
        )
        .await
        .context("reading profiles")?;
    all_from(&rows)
}

/// The tenant's enabled profiles: what a call event may trigger.
pub async fn enabled(
    client: &impl GenericClient,
    tenant: TenantId,
) -> anyhow::Result<Vec<StoredProfile>> {
    let rows = client
        .query(
            &format!("SELECT {COLUMNS} FROM webhook_profiles WHERE tenant_id = $1 AND enabled"),
            &[&tenant.0],
        )
        .await
        .context("reading enabled profiles")?;
    all_from(&rows)
}

/// Replaces the definition.
pub async fn update(
    client: &impl GenericClient,
    tenant: TenantId,
    name: &str,
    input: &ProfileInput,
    spec: &ProfileSpec,
) -> anyhow::Result<Option<StoredProfile>> {
    let row = client
        .query_opt(
            &format!(
                "UPDATE webhook_profiles SET definition = $3, trigger = $4, max_in_flight = $5,
                     updated_at = now()
                 WHERE tenant_id = $1 AND name = $2 RETURNING {COLUMNS}"
            ),
            &[
                &tenant.0,
                &name,
                &sealed(input)?,
                &spec.trigger.as_str(),
                &(spec.max_in_flight as i32),
            ],
        )
        .await
        .context("updating a profile")?;
    row.as_ref().map(from_row).transpose()
}

/// Enables (forgetting why it was disabled and how long it had been failing) or
/// disables it with a reason.
pub async fn set_enabled(
    client: &impl GenericClient,
    tenant: TenantId,
    name: &str,
    enabled: bool,
    reason: Option<&str>,
) -> anyhow::Result<Option<StoredProfile>> {
    let row = client
        .query_opt(
            &format!(
                "UPDATE webhook_profiles SET enabled = $3, disabled_reason = $4,
                     failing_since = NULL, updated_at = now()
                 WHERE tenant_id = $1 AND name = $2 RETURNING {COLUMNS}"
            ),
            &[&tenant.0, &name, &enabled, &reason],
        )
        .await
        .context("enabling or disabling a profile")?;
    row.as_ref().map(from_row).transpose()
}

/// Deletes it with its deliveries and their log.
pub async fn delete(
    client: &impl GenericClient,
    tenant: TenantId,
    name: &str,
) -> anyhow::Result<bool> {
    let deleted = client
        .execute(
            "DELETE FROM webhook_profiles WHERE tenant_id = $1 AND name = $2",
            &[&tenant.0, &name],
        )
        .await
        .context("deleting a profile")?;
    Ok(deleted > 0)
}

/// A new signing secret; the old one keeps signing for `overlap`.
pub async fn rotate_secret(
    client: &impl GenericClient,
    tenant: TenantId,
    name: &str,
    secret: &str,
    overlap: Duration,
) -> anyhow::Result<Option<StoredProfile>> {
    let row = client
        .query_opt(
            &format!(
                "UPDATE webhook_profiles SET previous_secret = secret, secret = $3,
                     previous_until = now() + make_interval(secs => $4), updated_at = now()
                 WHERE tenant_id = $1 AND name = $2 RETURNING {COLUMNS}"
            ),
            &[
                &tenant.0,
                &name,
                &secrets::seal(secrets::PROFILE_SECRET, secret)?,
                &overlap.as_secs_f64(),
            ],
        )
        .await
        .context("rotating a profile's secret")?;
    row.as_ref().map(from_row).transpose()
}

/// Across tenants on purpose (a round's deliveries are any tenant's).
/// After a batch of attempts: profiles that got a success stop failing; those that
/// failed start failing (if they were not); those past `disable_after` of failing,
/// and those answered 410, are disabled with the reason. Answers the profiles disabled.
pub async fn record_outcomes(
    client: &impl GenericClient,
    succeeded: &[i64],
    failed: &[i64],
    gone: &[i64],
    disable_after: Duration,
) -> anyhow::Result<Vec<(i64, String)>> {
    if !succeeded.is_empty() {
        client
            .execute(
                "UPDATE webhook_profiles SET failing_since = NULL
                 WHERE id = ANY($1) AND failing_since IS NOT NULL",
                &[&succeeded],
            )
            .await
            .context("recording successes")?;
    }
    let mut disabled = Vec::new();
    if !failed.is_empty() {
        let rows = client
            .query(
                "UPDATE webhook_profiles SET failing_since = coalesce(failing_since, now()),
                     enabled = CASE WHEN failing_since < now() - make_interval(secs => $2)
                                    THEN false ELSE enabled END,
                     disabled_reason = CASE WHEN enabled AND failing_since < now() - make_interval(secs => $2)
                                    THEN 'failing without a success since ' || to_char(failing_since AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')
                                    ELSE disabled_reason END
                 WHERE id = ANY($1) AND NOT (id = ANY($3))
                 RETURNING id, enabled, disabled_reason",
                &[&failed, &disable_after.as_secs_f64(), &succeeded],
            )
            .await
            .context("recording failures")?;
        disabled.extend(
            rows.iter()
                .filter(|r| !r.get::<_, bool>(1))
                .filter_map(|r| Some((r.get(0), r.get::<_, Option<String>>(2)?))),
        );
    }
    if !gone.is_empty() {
        let rows = client
            .query(
                "UPDATE webhook_profiles SET enabled = false,
                     disabled_reason = 'the receiver answered 410 Gone'
                 WHERE id = ANY($1) AND enabled RETURNING id, disabled_reason",
                &[&gone],
            )
            .await
            .context("disabling gone profiles")?;
        disabled.extend(rows.iter().map(|r| (r.get(0), r.get(1))));
    }
    Ok(disabled)
}

/// Across tenants on purpose (a batch's attempts are any tenant's).
/// Moves each profile's run of timeouts: `unanswered` (one entry per attempt that timed
/// out or reached no server) lengthens it, an answer of any status ends it. A profile
/// with a long run gets a smaller share of the delivery workers.
pub async fn record_timeouts(
    client: &impl GenericClient,
    answered: &[i64],
    unanswered: &[i64],
) -> anyhow::Result<()> {
    if !answered.is_empty() {
        client
            .execute(
                "UPDATE webhook_profiles SET timeout_streak = 0
                 WHERE id = ANY($1) AND timeout_streak <> 0",
                &[&answered],
            )
            .await
            .context("ending runs of timeouts")?;
    }
    if !unanswered.is_empty() {
        client
            .execute(
                "UPDATE webhook_profiles p SET timeout_streak = least(p.timeout_streak + u.n, 1000)
                 FROM (SELECT id, count(*)::int AS n FROM unnest($1::bigint[]) AS id GROUP BY id) u
                 WHERE p.id = u.id AND NOT (p.id = ANY($2))",
                &[&unanswered, &answered],
            )
            .await
            .context("counting timeouts")?;
    }
    Ok(())
}
