//! A tenant's IP allowlist for lookups.

use anyhow::{Context, bail};
use deadpool_postgres::GenericClient;
use ipnetwork::IpNetwork;

use crate::domain::{AuthPolicy, TenantId};

/// Adds a network; false when it was already there. For a tenant identified by its
/// source address (`ip` policy), a network overlapping another such tenant's is
/// refused. Run inside a transaction.
pub async fn add(
    client: &impl GenericClient,
    tenant: TenantId,
    network: IpNetwork,
) -> anyhow::Result<bool> {
    lock(client).await?;
    let policy: String = client
        .query_one(
            "SELECT auth_policy FROM tenants WHERE id = $1",
            &[&tenant.0],
        )
        .await
        .context("reading auth policy")?
        .get(0);
    if policy == AuthPolicy::Ip.as_str() {
        refuse_ip_overlap(client, tenant, &[network]).await?;
    }
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

/// Serializes allowlist and policy changes, so two concurrent changes cannot create
/// the overlap each one checked for.
pub(crate) async fn lock(client: &impl GenericClient) -> anyhow::Result<()> {
    client
        .execute(
            "SELECT pg_advisory_xact_lock(hashtext('cidgate_ip_allowlist'))",
            &[],
        )
        .await
        .context("locking allowlists")?;
    Ok(())
}

/// Fails when any of `networks` overlaps a network of another `ip`-policy tenant.
pub(crate) async fn refuse_ip_overlap(
    client: &impl GenericClient,
    tenant: TenantId,
    networks: &[IpNetwork],
) -> anyhow::Result<()> {
    let texts: Vec<String> = networks.iter().map(ToString::to_string).collect();
    let clash = client
        .query_opt(
            "SELECT t.slug, a.network::text FROM ip_allowlist a JOIN tenants t ON t.id = a.tenant_id
             WHERE t.auth_policy = 'ip' AND t.id <> $1 AND a.network && ANY($2::text[]::cidr[])
             LIMIT 1",
            &[&tenant.0, &texts],
        )
        .await
        .context("checking allowlist overlap")?;
    if let Some(row) = clash {
        let (slug, network): (String, String) = (row.get(0), row.get(1));
        bail!(
            "overlaps {network} of tenant `{slug}`, which is identified by source address; \
             an address must name one tenant"
        );
    }
    Ok(())
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
