//! Screen-pop signing keys, numbered per tenant; the newest signs new links.

use anyhow::Context;
use deadpool_postgres::GenericClient;
use rand::RngCore;

use crate::domain::{PopupKey, TenantId};

fn from_row(row: &tokio_postgres::Row) -> Option<PopupKey> {
    let secret: &[u8] = row.get("secret");
    Some(PopupKey {
        tenant: TenantId(row.get("tenant_id")),
        key_id: row.get("key_id"),
        secret: secret.try_into().ok()?,
    })
}

/// Adds a new signing key for the tenant (the one that signs from now on).
pub async fn rotate(client: &impl GenericClient, tenant: TenantId) -> anyhow::Result<i32> {
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    let row = client
        .query_one(
            "INSERT INTO popup_keys (tenant_id, key_id, secret)
             SELECT $1, coalesce(max(key_id), 0) + 1, $2 FROM popup_keys WHERE tenant_id = $1
             RETURNING key_id",
            &[&tenant.0, &secret.as_slice()],
        )
        .await
        .context("adding a popup key")?;
    super::notify::config_changed(client).await?;
    Ok(row.get(0))
}

/// Removes one of the tenant's older signing keys: links it signed stop verifying at once.
/// The newest key signs new links, so it stays until another replaces it.
pub async fn retire(
    client: &impl GenericClient,
    tenant: TenantId,
    key_id: i32,
) -> anyhow::Result<()> {
    let row = client
        .query_one(
            "WITH newest AS (SELECT max(key_id) AS key_id FROM popup_keys WHERE tenant_id = $1),
                  retired AS (
                      DELETE FROM popup_keys
                      WHERE tenant_id = $1 AND key_id = $2 AND key_id < (SELECT key_id FROM newest)
                      RETURNING key_id)
             SELECT (SELECT key_id FROM newest), EXISTS (SELECT 1 FROM retired)",
            &[&tenant.0, &key_id],
        )
        .await
        .context("retiring a popup key")?;
    let newest: Option<i32> = row.get(0);
    let retired: bool = row.get(1);
    if !retired {
        anyhow::ensure!(
            Some(key_id) != newest,
            "key {key_id} is the newest and signs new links: `popup rotate-key` first"
        );
        anyhow::bail!("the tenant has no key {key_id}");
    }
    super::notify::config_changed(client).await?;
    Ok(())
}

/// Gives every tenant without a signing key its first one.
pub async fn ensure(client: &impl GenericClient) -> anyhow::Result<()> {
    let rows = client
        .query(
            "SELECT id FROM tenants t WHERE NOT EXISTS (SELECT 1 FROM popup_keys k WHERE k.tenant_id = t.id)",
            &[],
        )
        .await
        .context("finding tenants without popup keys")?;
    for row in rows {
        rotate(client, TenantId(row.get(0))).await?;
    }
    Ok(())
}

/// Every signing key of every tenant (for the in-memory directory).
pub async fn all(client: &impl tokio_postgres::GenericClient) -> anyhow::Result<Vec<PopupKey>> {
    let rows = client
        .query(
            "SELECT tenant_id, key_id, secret FROM popup_keys ORDER BY tenant_id, key_id",
            &[],
        )
        .await
        .context("loading popup keys")?;
    Ok(rows.iter().filter_map(from_row).collect())
}

/// One key, to verify a link.
pub async fn find(
    client: &impl GenericClient,
    tenant: TenantId,
    key_id: i32,
) -> anyhow::Result<Option<PopupKey>> {
    let row = client
        .query_opt(
            "SELECT tenant_id, key_id, secret FROM popup_keys WHERE tenant_id = $1 AND key_id = $2",
            &[&tenant.0, &key_id],
        )
        .await
        .context("reading a popup key")?;
    Ok(row.as_ref().and_then(from_row))
}

/// The newest key of a tenant (signs new links).
pub async fn newest(
    client: &impl GenericClient,
    tenant: TenantId,
) -> anyhow::Result<Option<PopupKey>> {
    let row = client
        .query_opt(
            "SELECT tenant_id, key_id, secret FROM popup_keys WHERE tenant_id = $1 ORDER BY key_id DESC LIMIT 1",
            &[&tenant.0],
        )
        .await
        .context("reading a popup key")?;
    Ok(row.as_ref().and_then(from_row))
}
