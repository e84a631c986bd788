//! Reads everything authentication needs (tokens, tenants, allowlists) in one go, so the
//! gateway can authenticate from memory.

use anyhow::Context;
use deadpool_postgres::GenericClient;

use super::tenants;
use crate::domain::{DirectoryRows, LiveToken};
use crate::domain::{Tenant, TenantId, TokenHash};

/// Loads all tenants, live tokens and allowlist entries in one repeatable-read snapshot.
pub async fn load(client: &mut tokio_postgres::Client) -> anyhow::Result<DirectoryRows> {
    let tx = client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .context("starting the directory snapshot")?;
    let tenants = load_tenants(&tx).await?;
    let tokens = tx
        .query(
            "SELECT id, token_hash, scope, extra_scopes, tenant_id, expires_at FROM api_tokens
             WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())",
            &[],
        )
        .await
        .context("loading tokens")?
        .iter()
        .filter_map(|r| {
            let hash: &[u8] = r.get("token_hash");

            Some(LiveToken {
                id: r.get("id"),
                hash: TokenHash(hash.try_into().ok()?),
                scopes: super::tokens::stored_scopes(r.get("scope"), r.get("extra_scopes")).ok()?,
                tenant: TenantId(r.get("tenant_id")),
                expires_at: r.get("expires_at"),
            })
        })
        .collect();
    let allowlist = tx
        .query("SELECT tenant_id, network::text FROM ip_allowlist", &[])
        .await
        .context("loading allowlists")?
        .iter()
        .filter_map(|r| {
            let network: String = r.get(1);
            Some((TenantId(r.get(0)), network.parse().ok()?))
        })
        .collect();
    let popup_keys = super::signing_keys::all(&tx).await?;
    tx.commit().await.context("ending the directory snapshot")?;
    Ok(DirectoryRows {
        tenants,
        tokens,
        allowlist,
        popup_keys,
    })
}

async fn load_tenants(client: &impl tokio_postgres::GenericClient) -> anyhow::Result<Vec<Tenant>> {
    let sql = format!("SELECT {} FROM tenants t", tenants::COLUMNS);
    let rows = client.query(&sql, &[]).await.context("loading tenants")?;
    rows.iter().map(tenants::from_row).collect()
}

/// Records when tokens were last used, each named by its tenant and id; called in
/// batches, not per request.
pub async fn touch_tokens(
    client: &impl tokio_postgres::GenericClient,
    tokens: &[(TenantId, i64)],
) -> anyhow::Result<()> {
    let (tenants, ids): (Vec<i64>, Vec<i64>) = tokens.iter().map(|(t, id)| (t.0, *id)).unzip();
    client
        .execute(
            "UPDATE api_tokens k SET last_used_at = now()
             FROM unnest($1::bigint[], $2::bigint[]) AS u (tenant_id, id)
             WHERE k.tenant_id = u.tenant_id AND k.id = u.id",
            &[&tenants, &ids],
        )
        .await
        .context("recording token use")?;
    Ok(())
}

/// The `ip`-policy tenant whose allowlist contains `ip`, if any (allowlists of such
/// tenants never overlap, so there is at most one).
pub async fn tenant_by_ip(
    client: &impl GenericClient,
    ip: std::net::IpAddr,
) -> anyhow::Result<Option<Tenant>> {
    let sql = format!(
        "SELECT {} FROM ip_allowlist a JOIN tenants t ON t.id = a.tenant_id
         WHERE t.auth_policy = 'ip' AND a.network >>= $1::text::inet LIMIT 1",
        tenants::COLUMNS
    );
    let row = client
        .query_opt(&sql, &[&ip.to_string()])
        .await
        .context("finding tenant by address")?;
    row.as_ref().map(tenants::from_row).transpose()
}
