use anyhow::Context;
use deadpool_postgres::GenericClient;
use ipnetwork::IpNetwork;

use crate::domain::TenantId;

/// Adds a network; false when it was already there.
pub async fn add(
    client: &impl GenericClient,
    tenant: TenantId,
    network: IpNetwork,
) -> anyhow::Result<bool> {
    let n = client
        .execute(
            "INSERT INTO ip_allowlist (tenant_id, network) VALUES ($1, $2::text::cidr)
             ON CONFLICT DO NOTHING",
            &[&tenant.0, &network.to_string()],
        )
        .await
        .context("adding allowlist entry")?;
    super::notify::config_changed(client).await?;
    Ok(n == 1)
}

/// Removes a network; false when it was not there.
pub async fn remove(
    client: &impl GenericClient,
    tenant: TenantId,
    network: IpNetwork,
) -> anyhow::Result<bool> {
    let n = client
        .execute(
            "DELETE FROM ip_allowlist WHERE tenant_id = $1 AND network = $2::text::cidr",
            &[&tenant.0, &network.to_string()],
        )
        .await
        .context("removing allowlist entry")?;
    super::notify::config_changed(client).await?;
    Ok(n == 1)
}

pub async fn list(client: &impl GenericClient, tenant: TenantId) -> anyhow::Result<Vec<IpNetwork>> {
    let rows = client
        .query(
            "SELECT network::text FROM ip_allowlist WHERE tenant_id = $1 ORDER BY network",
            &[&tenant.0],
        )
        .await
        .context("listing allowlist")?;
    rows.iter()
        .map(|r| {
            let text: String = r.get(0);
            text.parse::<IpNetwork>()
                .with_context(|| format!("stored network `{text}` does not parse"))
        })
        .collect()
}
