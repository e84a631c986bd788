//! Agents: added or replaced, listed, removed, and found by extension or group.

use anyhow::Context;
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use crate::domain::Put;
use crate::domain::{Agent, AgentName, Extension, GroupName, TenantId};

fn from_row(row: &Row) -> anyhow::Result<Agent> {
    let groups: Vec<String> = row.get("groups");
    Ok(Agent {
        extension: Extension::parse(row.get("extension")).map_err(anyhow::Error::msg)?,
        name: AgentName::parse(row.get("name")).map_err(anyhow::Error::msg)?,
        groups: groups
            .iter()
            .map(|g| GroupName::parse(g))
            .collect::<Result<_, _>>()
            .map_err(anyhow::Error::msg)?,
    })
}

/// Adds the agent, or replaces the one with its extension; true when it is new.
pub async fn put(
    client: &impl GenericClient,
    tenant: TenantId,
    agent: &Agent,
) -> anyhow::Result<bool> {
    let groups: Vec<&str> = agent.groups.iter().map(GroupName::as_str).collect();
    let row = client
        .query_one(
            "INSERT INTO agents (tenant_id, extension, name, groups) VALUES ($1, $2, $3, $4)
             ON CONFLICT (tenant_id, extension) DO UPDATE
                 SET name = excluded.name, groups = excluded.groups, updated_at = now()
             RETURNING xmax = 0",
            &[
                &tenant.0,
                &agent.extension.as_str(),
                &agent.name.as_str(),
                &groups,
            ],
        )
        .await
        .context("writing an agent")?;
    Ok(row.get(0))
}

/// Adds the agent, or replaces the one with its extension, unless it is new and the
/// tenant has `max_agents` agents (`tenant set --max-agents`). The tenant's row is held
/// (without blocking writes that only reference it) so two additions at once cannot both
/// take the last place.
pub async fn put_capped(
    client: &mut deadpool_postgres::Object,
    tenant: TenantId,
    agent: &Agent,
) -> anyhow::Result<Put> {
    let tx = client.transaction().await.context("adding an agent")?;
    let row = tx
        .query_one(
            "SELECT t.max_agents,
                    (SELECT count(*) FROM agents a WHERE a.tenant_id = t.id),
                    EXISTS (SELECT 1 FROM agents a WHERE a.tenant_id = t.id AND a.extension = $2)
             FROM tenants t WHERE t.id = $1 FOR NO KEY UPDATE OF t",
            &[&tenant.0, &agent.extension.as_str()],
        )
        .await
        .context("counting the tenant's agents")?;
    let (cap, count, exists): (i32, i64, bool) = (row.get(0), row.get(1), row.get(2));
    if !exists && count >= i64::from(cap) {
        return Ok(Put::OverCap(cap));
    }
    let added = put(&tx, tenant, agent).await?;
    tx.commit().await.context("committing an agent")?;
    Ok(if added { Put::Added } else { Put::Replaced })
}

/// The tenant's agents, by extension.
pub async fn list(client: &impl GenericClient, tenant: TenantId) -> anyhow::Result<Vec<Agent>> {
    client
        .query(
            "SELECT extension, name, groups FROM agents WHERE tenant_id = $1
             ORDER BY length(extension), extension",
            &[&tenant.0],
        )
        .await
        .context("listing agents")?
        .iter()
        .map(from_row)
        .collect()
}

/// The agents with these extensions, or in any of these groups.
pub async fn matching(
    client: &impl GenericClient,
    tenant: TenantId,
    extensions: &[String],
    groups: &[String],
) -> anyhow::Result<Vec<Agent>> {
    client
        .query(
            "SELECT extension, name, groups FROM agents
             WHERE tenant_id = $1 AND (extension = ANY($2) OR groups && $3)
             ORDER BY length(extension), extension",
            &[&tenant.0, &extensions, &groups],
        )
        .await
        .context("finding agents")?
        .iter()
        .map(from_row)
        .collect()
}

/// Removes an agent; false when the tenant has none with that extension.
pub async fn remove(
    client: &impl GenericClient,
    tenant: TenantId,
    extension: &Extension,
) -> anyhow::Result<bool> {
    let n = client
        .execute(
            "DELETE FROM agents WHERE tenant_id = $1 AND extension = $2",
            &[&tenant.0, &extension.as_str()],
        )
        .await
        .context("removing an agent")?;
    Ok(n == 1)
}
