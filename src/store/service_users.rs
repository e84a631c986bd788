//! Service users and their keys: created with a first key, listed, rotated, revoked,
//! and found from a key.

use std::collections::BTreeSet;

use anyhow::Context;
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;

use super::{agents, tokens};
use crate::domain::{Access, ApiToken, ServiceUserName, TenantId};
use crate::domain::{CreateError, ServiceUser};

const COLUMNS: &str = "u.id, u.name, u.agents, u.groups, u.created_at, u.revoked_at,
    (SELECT count(*) FROM api_tokens k WHERE k.service_user_id = u.id AND k.revoked_at IS NULL
        AND (k.expires_at IS NULL OR k.expires_at > now())) AS live_keys";

fn from_row(row: &Row) -> ServiceUser {
    ServiceUser {
        id: row.get("id"),
        name: row.get("name"),
        agents: row.get("agents"),
        groups: row.get("groups"),
        created_at: row.get("created_at"),
        revoked_at: row.get("revoked_at"),
        live_keys: row.get("live_keys"),
    }
}

fn label(name: &ServiceUserName) -> String {
    format!("service-user:{name}")
}

/// Creates a service user and its first key. Run inside a transaction.
pub async fn create(
    client: &impl GenericClient,
    tenant: TenantId,
    name: &ServiceUserName,
    agents: Option<&[String]>,
    groups: Option<&[String]>,
) -> Result<(ServiceUser, ApiToken), CreateError> {
    let sql = format!(
        "INSERT INTO service_users AS u (tenant_id, name, agents, groups) VALUES ($1, $2, $3, $4)
         RETURNING {COLUMNS}"
    );
    let row = match client
        .query_one(&sql, &[&tenant.0, &name.as_str(), &agents, &groups])
        .await
    {
        Ok(row) => row,
        Err(e) if super::sql_state(&e) == Some(&SqlState::UNIQUE_VIOLATION) => {
            return Err(CreateError::Exists(name.to_string()));
        }
        Err(e) => {
            return Err(anyhow::Error::new(e)
                .context("creating a service user")
                .into());
        }
    };
    let mut user = from_row(&row);
    let (_, key) = tokens::create_for_service_user(client, tenant, user.id, &label(name)).await?;
    user.live_keys = 1;
    Ok((user, key))
}

pub async fn list(
    client: &impl GenericClient,
    tenant: TenantId,
) -> anyhow::Result<Vec<ServiceUser>> {
    let sql = format!("SELECT {COLUMNS} FROM service_users u WHERE tenant_id = $1 ORDER BY u.id");
    let rows = client
        .query(&sql, &[&tenant.0])
        .await
        .context("listing service users")?;
    Ok(rows.iter().map(from_row).collect())
}

/// The live service user of that name.
pub async fn find(
    client: &impl GenericClient,
    tenant: TenantId,
    name: &ServiceUserName,
) -> anyhow::Result<Option<ServiceUser>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM service_users u
         WHERE tenant_id = $1 AND name = $2 AND revoked_at IS NULL"
    );
    let row = client
        .query_opt(&sql, &[&tenant.0, &name.as_str()])
        .await
        .context("finding a service user")?;
    Ok(row.as_ref().map(from_row))
}

/// The service user a key belongs to; `None` for a tenant's plain `report` token.
pub async fn of_token(
    client: &impl GenericClient,
    tenant: TenantId,
    token_id: i64,
) -> anyhow::Result<Option<ServiceUser>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM api_tokens t JOIN service_users u ON u.id = t.service_user_id
         WHERE t.tenant_id = $1 AND t.id = $2 AND u.tenant_id = $1"
    );
    let row = client
        .query_opt(&sql, &[&tenant.0, &token_id])
        .await
        .context("finding a key's service user")?;
    Ok(row.as_ref().map(from_row))
}

/// What a key sees: everything for a plain `report` token or an unlimited service
/// user; else the user's extensions and groups, and the agents now in those groups.
/// A revoked service user sees nothing (its keys are revoked with it).
pub async fn access(
    client: &impl GenericClient,
    tenant: TenantId,
    user: Option<&ServiceUser>,
) -> anyhow::Result<Access> {
    let Some(user) = user else {
        return Ok(Access::Everything);
    };
    if user.revoked_at.is_some() {
        return Ok(Access::Limited {
            extensions: BTreeSet::new(),
            groups: BTreeSet::new(),
        });
    }
    if !user.is_limited() {
        return Ok(Access::Everything);
    }
    let listed = user.agents.clone().unwrap_or_default();
    let groups = user.groups.clone().unwrap_or_default();
    let members = agents::matching(client, tenant, &[], &groups).await?;
    let mut extensions: BTreeSet<String> = listed.into_iter().collect();
    extensions.extend(members.iter().map(|a| a.extension.as_str().to_owned()));
    Ok(Access::Limited {
        extensions,
        groups: groups.into_iter().collect(),
    })
}

/// Revokes a service user and every key of it; its reports stop. False when the tenant
/// has no live service user of that name.
pub async fn revoke(
    client: &impl GenericClient,
    tenant: TenantId,
    name: &ServiceUserName,
) -> anyhow::Result<bool> {
    let revoked = client
        .query_opt(
            "UPDATE service_users SET revoked_at = now()
             WHERE tenant_id = $1 AND name = $2 AND revoked_at IS NULL RETURNING id",
            &[&tenant.0, &name.as_str()],
        )
        .await
        .context("revoking a service user")?;
    let Some(row) = revoked else {
        return Ok(false);
    };
    let id: i64 = row.get(0);
    client
        .execute(
            "UPDATE api_tokens SET revoked_at = now()
             WHERE tenant_id = $1 AND service_user_id = $2 AND revoked_at IS NULL",
            &[&tenant.0, &id],
        )
        .await
        .context("revoking a service user's keys")?;
    super::notify::config_changed(client).await?;
    Ok(true)
}

/// Gives the service user a new key; its other keys keep working for `grace`, then
/// expire. `None` when the tenant has no live service user of that name. Run inside a
/// transaction.
pub async fn rotate(
    client: &impl GenericClient,
    tenant: TenantId,
    name: &ServiceUserName,
    grace: std::time::Duration,
) -> anyhow::Result<Option<(ApiToken, u64)>> {
    let Some(user) = find(client, tenant, name).await? else {
        return Ok(None);
    };
    let grace_secs = i64::try_from(grace.as_secs()).unwrap_or(i64::MAX);
    let expiring = client
        .execute(
            "UPDATE api_tokens
             SET expires_at = least(coalesce(expires_at, 'infinity'), now() + make_interval(secs => $3))
             WHERE tenant_id = $1 AND service_user_id = $2 AND revoked_at IS NULL
               AND (expires_at IS NULL OR expires_at > now())",
            &[&tenant.0, &user.id, &(grace_secs as f64)],
        )
        .await
        .context("expiring a service user's keys")?;
    let (_, key) = tokens::create_for_service_user(client, tenant, user.id, &label(name)).await?;
    Ok(Some((key, expiring)))
}
