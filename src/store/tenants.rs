//! Tenants: created, listed, found and configured.

use anyhow::Context;
use deadpool_postgres::GenericClient;
use serde_json::Value;
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;

use crate::domain::CreateTenantError;
use crate::domain::{
    AuthPolicy, LookupLogSettings, PopupSettings, Region, Tenant, TenantId, TenantSlug,
};

pub(crate) const COLUMNS: &str =
    "t.id, t.slug, t.name, t.default_region, t.settings, t.auth_policy, t.lookup_rate_per_sec";

pub(crate) fn from_row(row: &Row) -> anyhow::Result<Tenant> {
    let region: String = row.get("default_region");
    let settings: Value = row.get("settings");
    Ok(Tenant {
        id: TenantId(row.get("id")),
        slug: row.get("slug"),
        name: row.get("name"),
        region: Region::parse(&region).map_err(anyhow::Error::msg)?,
        popup: PopupSettings::from_tenant_settings(&settings),
        lookup_log: LookupLogSettings::from_tenant_settings(&settings),
        settings,
        auth_policy: AuthPolicy::parse(row.get("auth_policy")).map_err(anyhow::Error::msg)?,
        lookup_rate: row
            .get::<_, Option<i32>>("lookup_rate_per_sec")
            .and_then(|r| u32::try_from(r).ok()),
    })
}

pub async fn create(
    client: &impl GenericClient,
    slug: &TenantSlug,
    name: &str,
    region: Region,
) -> Result<Tenant, CreateTenantError> {
    let sql = format!(
        "INSERT INTO tenants AS t (slug, name, default_region) VALUES ($1, $2, $3) RETURNING {COLUMNS}"
    );
    match client
        .query_one(&sql, &[&slug.as_str(), &name, &region.code()])
        .await
    {
        Ok(row) => {
            let tenant = from_row(&row)?;
            super::signing_keys::rotate(client, tenant.id).await?;
            Ok(tenant)
        }
        Err(e) if super::sql_state(&e) == Some(&SqlState::UNIQUE_VIOLATION) => {
            Err(CreateTenantError::Exists(slug.to_string()))
        }
        Err(e) => Err(anyhow::Error::new(e).context("inserting tenant").into()),
    }
}

pub async fn list(client: &impl GenericClient) -> anyhow::Result<Vec<Tenant>> {
    let sql = format!("SELECT {COLUMNS} FROM tenants t ORDER BY t.slug");
    let rows = client.query(&sql, &[]).await.context("listing tenants")?;
    rows.iter().map(from_row).collect()
}

pub async fn find_by_slug(
    client: &impl GenericClient,
    slug: &TenantSlug,
) -> anyhow::Result<Option<Tenant>> {
    let sql = format!("SELECT {COLUMNS} FROM tenants t WHERE t.slug = $1");
    let row = client
        .query_opt(&sql, &[&slug.as_str()])
        .await
        .context("finding tenant")?;
    row.as_ref().map(from_row).transpose()
}

/// Counts a tenant's contacts (for `tenant list`).
pub async fn contact_count(client: &impl GenericClient, tenant: TenantId) -> anyhow::Result<i64> {
    let row = client
        .query_one(
            "SELECT count(*) FROM contacts WHERE tenant_id = $1",
            &[&tenant.0],
        )
        .await
        .context("counting contacts")?;
    Ok(row.get(0))
}

/// Changes a tenant's lookup auth policy. Switching to `ip` is refused when one of the
/// tenant's networks overlaps a network of another `ip` tenant: the source address
/// would not name one tenant. Run inside a transaction.
pub async fn set_auth_policy(
    client: &impl GenericClient,
    tenant: TenantId,
    policy: AuthPolicy,
) -> anyhow::Result<()> {
    super::allowlist::lock(client).await?;
    if policy == AuthPolicy::Ip {
        let own = super::allowlist::list(client, tenant).await?;
        super::allowlist::refuse_ip_overlap(client, tenant, &own).await?;
    }
    client
        .execute(
            "UPDATE tenants SET auth_policy = $2 WHERE id = $1",
            &[&tenant.0, &policy.as_str()],
        )
        .await
        .context("setting auth policy")?;
    super::notify::config_changed(client).await
}

/// Sets the most phone numbers the tenant may store; writes past it are refused
/// (see [`crate::domain::OverNumberCap`]).
pub async fn set_max_numbers(
    client: &impl GenericClient,
    tenant: TenantId,
    max_numbers: i64,
) -> anyhow::Result<()> {
    client
        .execute(
            "UPDATE tenants SET max_numbers = $2 WHERE id = $1",
            &[&tenant.0, &max_numbers],
        )
        .await
        .context("setting the cap on stored numbers")?;
    Ok(())
}

/// Sets the most agents the tenant may have; additions past it are refused
/// (see [`super::agents::put_capped`]).
pub async fn set_max_agents(
    client: &impl GenericClient,
    tenant: TenantId,
    max_agents: i32,
) -> anyhow::Result<()> {
    client
        .execute(
            "UPDATE tenants SET max_agents = $2 WHERE id = $1",
            &[&tenant.0, &max_agents],
        )
        .await
        .context("setting the cap on agents")?;
    Ok(())
}

/// Sets the most calls a tenant stores (checked by store::calls when a call is created).
pub async fn set_max_calls(
    client: &impl GenericClient,
    tenant: TenantId,
    max_calls: i64,
) -> anyhow::Result<()> {
    client
        .execute(
            "UPDATE tenants SET max_calls = $2 WHERE id = $1",
            &[&tenant.0, &max_calls],
        )
        .await
        .context("setting max calls")?;
    Ok(())
}

/// Sets (or with `None` clears) a tenant's own lookup rate limit.
pub async fn set_lookup_rate(
    client: &impl GenericClient,
    tenant: TenantId,
    per_second: Option<u32>,
) -> anyhow::Result<()> {
    let rate = per_second.map(|r| i32::try_from(r).unwrap_or(i32::MAX));
    client
        .execute(
            "UPDATE tenants SET lookup_rate_per_sec = $2 WHERE id = $1",
            &[&tenant.0, &rate],
        )
        .await
        .context("setting lookup rate")?;
    super::notify::config_changed(client).await
}

/// Replaces a tenant's screen-pop settings.
pub async fn set_popup_settings(
    client: &impl GenericClient,
    tenant: TenantId,
    popup: &PopupSettings,
) -> anyhow::Result<()> {
    let value = serde_json::to_value(popup).context("encoding popup settings")?;
    client
        .execute(
            "UPDATE tenants SET settings = jsonb_set(settings, '{popup}', $2) WHERE id = $1",
            &[&tenant.0, &value],
        )
        .await
        .context("setting popup settings")?;
    super::notify::config_changed(client).await
}

/// Sets one top-level key of a tenant's settings (`time_zone`, `call_end_mapping`).
pub async fn set_setting(
    client: &impl GenericClient,
    tenant: TenantId,
    key: &str,
    value: &Value,
) -> anyhow::Result<()> {
    client
        .execute(
            "UPDATE tenants SET settings = jsonb_set(settings, ARRAY[$2], $3) WHERE id = $1",
            &[&tenant.0, &key, value],
        )
        .await
        .with_context(|| format!("setting {key}"))?;
    super::notify::config_changed(client).await
}

/// Removes one top-level key of a tenant's settings (back to the gateway's default).
pub async fn remove_setting(
    client: &impl GenericClient,
    tenant: TenantId,
    key: &str,
) -> anyhow::Result<()> {
    client
        .execute(
            "UPDATE tenants SET settings = settings - $2::text WHERE id = $1",
            &[&tenant.0, &key],
        )
        .await
        .with_context(|| format!("removing {key}"))?;
    super::notify::config_changed(client).await
}

/// A tenant by id.
pub async fn by_id(
    client: &impl GenericClient,
    tenant: TenantId,
) -> anyhow::Result<Option<Tenant>> {
    let sql = format!("SELECT {COLUMNS} FROM tenants t WHERE t.id = $1");
    let row = client
        .query_opt(&sql, &[&tenant.0])
        .await
        .context("finding tenant")?;
    row.as_ref().map(from_row).transpose()
}
