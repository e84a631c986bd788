//! API tokens: created, listed, rotated and revoked; only a token's hash is stored.

use anyhow::Context;
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;

use super::tenants;
use crate::domain::TokenInfo;
use crate::domain::{ApiToken, Tenant, TenantId, TokenHash, TokenScope, TokenScopes};

/// Creates a token and returns it: the only moment its secret exists outside a client.
pub async fn create(
    client: &impl GenericClient,
    tenant: TenantId,
    scopes: impl Into<TokenScopes>,
    label: &str,
) -> anyhow::Result<(i64, ApiToken)> {
    insert(client, tenant, scopes.into(), label, None).await
}

/// Creates a `report` key of a service user (store::service_users): it sees what the
/// user may.
pub async fn create_for_service_user(
    client: &impl GenericClient,
    tenant: TenantId,
    service_user: i64,
    label: &str,
) -> anyhow::Result<(i64, ApiToken)> {
    insert(
        client,
        tenant,
        TokenScope::Report.into(),
        label,
        Some(service_user),
    )
    .await
}

async fn insert(
    client: &impl GenericClient,
    tenant: TenantId,
    scopes: TokenScopes,
    label: &str,
    service_user: Option<i64>,
) -> anyhow::Result<(i64, ApiToken)> {
    let token = ApiToken::generate(scopes.first());
    let extra: Vec<&str> = scopes.rest().iter().map(|s| s.as_str()).collect();
    let row = client
        .query_one(
            "INSERT INTO api_tokens (tenant_id, scope, extra_scopes, label, token_hash,
                                     service_user_id)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            &[
                &tenant.0,
                &scopes.first().as_str(),
                &extra,
                &label,
                &token.hash().0.as_slice(),
                &service_user,
            ],
        )
        .await
        .context("inserting token")?;
    super::notify::config_changed(client).await?;
    Ok((row.get(0), token))
}

pub async fn list(client: &impl GenericClient, tenant: TenantId) -> anyhow::Result<Vec<TokenInfo>> {
    let rows = client
        .query(
            "SELECT id, array_to_string(scope || extra_scopes, ',') AS scope, label, created_at,
                    last_used_at, revoked_at, expires_at
             FROM api_tokens WHERE tenant_id = $1 ORDER BY id",
            &[&tenant.0],
        )
        .await
        .context("listing tokens")?;
    Ok(rows
        .iter()
        .map(|r| TokenInfo {
            id: r.get("id"),
            scope: r.get("scope"),
            label: r.get("label"),
            created_at: r.get("created_at"),
            last_used_at: r.get("last_used_at"),
            revoked_at: r.get("revoked_at"),
            expires_at: r.get("expires_at"),
        })
        .collect())
}

/// The tenant a token belongs to, live or not: how a command given only a token's id
/// finds the tenant to scope the rest by.
pub async fn tenant_of(client: &impl GenericClient, id: i64) -> anyhow::Result<Option<TenantId>> {
    let row = client
        .query_opt("SELECT tenant_id FROM api_tokens WHERE id = $1", &[&id])
        .await
        .context("finding the token's tenant")?;
    Ok(row.map(|r| TenantId(r.get(0))))
}

/// Revokes one of the tenant's tokens by id; false when the tenant has no live token
/// with that id.
pub async fn revoke(
    client: &impl GenericClient,
    tenant: TenantId,
    id: i64,
) -> anyhow::Result<bool> {
    let n = client
        .execute(
            "UPDATE api_tokens SET revoked_at = now()
             WHERE tenant_id = $1 AND id = $2 AND revoked_at IS NULL",
            &[&tenant.0, &id],
        )
        .await
        .context("revoking token")?;
    super::notify::config_changed(client).await?;
    Ok(n == 1)
}

/// Revokes every live token of a tenant with the given label (used by `demo` refreshes).
pub async fn revoke_labelled(
    client: &impl GenericClient,
    tenant: TenantId,
    label: &str,
) -> anyhow::Result<u64> {
    let n = client
        .execute(
            "UPDATE api_tokens SET revoked_at = now()
             WHERE tenant_id = $1 AND label = $2 AND revoked_at IS NULL",
            &[&tenant.0, &label],
        )
        .await
        .context("revoking tokens")?;
    super::notify::config_changed(client).await?;
    Ok(n)
}

/// The live token of `scope` with this hash, and its tenant. Matching is by hash through
/// a unique index, so no secret is ever compared byte by byte.
pub async fn authenticate(
    client: &impl GenericClient,
    hash: &TokenHash,
    scope: TokenScope,
) -> anyhow::Result<Option<(i64, Tenant)>> {
    let sql = format!(
        "SELECT k.id AS token_id, {} FROM api_tokens k JOIN tenants t ON t.id = k.tenant_id
         WHERE k.token_hash = $1 AND (k.scope = $2 OR $2 = ANY(k.extra_scopes))
           AND k.revoked_at IS NULL
           AND (k.expires_at IS NULL OR k.expires_at > now())",
        tenants::COLUMNS
    );
    let row = client
        .query_opt(&sql, &[&hash.0.as_slice(), &scope.as_str()])
        .await
        .context("authenticating token")?;
    row.map(|r| Ok((r.get("token_id"), tenants::from_row(&r)?)))
        .transpose()
}

/// Replaces a live token of the tenant with a new one of the same scope and label; the
/// old one keeps working for `grace`, then expires. `None` when the tenant has no live
/// token with that id. Run inside a transaction.
pub async fn rotate(
    client: &impl GenericClient,
    tenant: TenantId,
    id: i64,
    grace: std::time::Duration,
) -> anyhow::Result<Option<(i64, ApiToken, DateTime<Utc>)>> {
    let grace_secs = i64::try_from(grace.as_secs()).unwrap_or(i64::MAX);
    let old = client
        .query_opt(
            "UPDATE api_tokens
             SET expires_at = least(coalesce(expires_at, 'infinity'), now() + make_interval(secs => $3))
             WHERE tenant_id = $1 AND id = $2 AND revoked_at IS NULL
               AND (expires_at IS NULL OR expires_at > now())
             RETURNING scope, extra_scopes, label, expires_at, service_user_id",
            &[&tenant.0, &id, &(grace_secs as f64)],
        )
        .await
        .context("expiring the old token")?;
    let Some(old) = old else { return Ok(None) };
    let scopes = stored_scopes(old.get("scope"), old.get("extra_scopes"))?;
    let label: String = old.get("label");
    // A service user's key stays the service user's.
    let service_user: Option<i64> = old.get("service_user_id");
    let (new_id, token) = insert(client, tenant, scopes, &label, service_user).await?;
    Ok(Some((new_id, token, old.get("expires_at"))))
}

/// A token's scopes as stored: the first (its prefix's) and the others.
pub(crate) fn stored_scopes(first: &str, rest: Vec<String>) -> anyhow::Result<TokenScopes> {
    let first = TokenScope::parse(first).map_err(anyhow::Error::msg)?;
    let rest = rest
        .iter()
        .map(|s| TokenScope::parse(s))
        .collect::<Result<Vec<_>, _>>()
        .map_err(anyhow::Error::msg)?;
    Ok(TokenScopes::from_stored(first, rest))
}
