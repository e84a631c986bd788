//! CRM sources per tenant (issue 34): their definitions, secret parameters sealed, and
//! what the sources answered for a number.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;

use super::secrets::{self, SOURCE_PARAM};
use crate::domain::{Region, TenantId};
use crate::sources::kinds::{Definition, Kind, Mode, is_secret};

/// A source as stored, its secrets opened.
#[derive(Debug, Clone)]
pub struct StoredSource {
    pub id: i64,
    pub name: String,
    pub position: i32,
    pub definition: Definition,
}

/// A name the tenant already uses.
#[derive(Debug, thiserror::Error)]
#[error("the tenant has a source named {0} already")]
pub struct Duplicate(pub String);

fn sealed_params(definition: &Definition) -> anyhow::Result<serde_json::Value> {
    let mut map = serde_json::Map::new();
    for (key, value) in &definition.params {
        let stored = if is_secret(key) {
            secrets::seal(SOURCE_PARAM, value)?
        } else {
            value.clone()
        };
        map.insert(key.clone(), stored.into());
    }
    Ok(map.into())
}

fn source(row: &Row) -> anyhow::Result<StoredSource> {
    let kind = Kind::parse(row.get("kind")).map_err(anyhow::Error::msg)?;
    let stored: serde_json::Value = row.get("params");
    let mut params = BTreeMap::new();
    for (key, value) in stored.as_object().into_iter().flatten() {
        let value = value.as_str().unwrap_or_default();
        let value = if is_secret(key) {
            secrets::open(SOURCE_PARAM, value)?
        } else {
            value.to_owned()
        };
        params.insert(key.clone(), value);
    }
    let timeout_ms: i32 = row.get("timeout_ms");
    Ok(StoredSource {
        id: row.get("id"),
        name: row.get("name"),
        position: row.get("position"),
        definition: Definition {
            kind,
            params,
            timeout: Duration::from_millis(timeout_ms.max(0) as u64),
            mode: Mode::parse(row.get("mode")).map_err(anyhow::Error::msg)?,
        },
    })
}

/// Adds a source after the tenant's others.
pub async fn insert(
    client: &impl GenericClient,
    tenant: TenantId,
    name: &str,
    definition: &Definition,
) -> anyhow::Result<Result<StoredSource, Duplicate>> {
    let inserted = client
        .query_one(
            "INSERT INTO crm_sources (tenant_id, name, kind, params, timeout_ms, mode, position)
             VALUES ($1, $2, $3, $4, $5, $6,
                     (SELECT coalesce(max(position) + 1, 0) FROM crm_sources WHERE tenant_id = $1))
             RETURNING *",
            &[
                &tenant.0,
                &name,
                &definition.kind.as_str(),
                &sealed_params(definition)?,
                &(definition.timeout.as_millis() as i32),
                &definition.mode.as_str(),
            ],
        )
        .await;
    match inserted {
        Ok(row) => Ok(Ok(source(&row)?)),
        Err(e) if super::sql_state(&e) == Some(&SqlState::UNIQUE_VIOLATION) => {
            Ok(Err(Duplicate(name.to_owned())))
        }
        Err(e) => Err(anyhow::Error::new(e).context("adding a source")),
    }
}

/// Replaces a source's definition (and position, when given); false: no such source.
pub async fn update(
    client: &impl GenericClient,
    tenant: TenantId,
    name: &str,
    definition: &Definition,
    position: Option<i32>,
) -> anyhow::Result<bool> {
    let changed = client
        .execute(
            "UPDATE crm_sources SET kind = $3, params = $4, timeout_ms = $5, mode = $6,
                    position = coalesce($7, position)
              WHERE tenant_id = $1 AND name = $2",
            &[
                &tenant.0,
                &name,
                &definition.kind.as_str(),
                &sealed_params(definition)?,
                &(definition.timeout.as_millis() as i32),
                &definition.mode.as_str(),
                &position,
            ],
        )
        .await
        .context("changing a source")?;
    Ok(changed > 0)
}

/// The tenant's sources in the order they are asked.
pub async fn list(
    client: &impl GenericClient,
    tenant: TenantId,
) -> anyhow::Result<Vec<StoredSource>> {
    let rows = client
        .query(
            "SELECT * FROM crm_sources WHERE tenant_id = $1 ORDER BY position, id",
            &[&tenant.0],
        )
        .await
        .context("reading sources")?;
    rows.iter().map(source).collect()
}

pub async fn get(
    client: &impl GenericClient,
    tenant: TenantId,
    name: &str,
) -> anyhow::Result<Option<StoredSource>> {
    let row = client
        .query_opt(
            "SELECT * FROM crm_sources WHERE tenant_id = $1 AND name = $2",
            &[&tenant.0, &name],
        )
        .await
        .context("reading a source")?;
    row.as_ref().map(source).transpose()
}

/// Removes a source (and what it found is forgotten: asked again); false: none.
pub async fn remove(
    client: &impl GenericClient,
    tenant: TenantId,
    name: &str,
) -> anyhow::Result<bool> {
    let removed = client
        .execute(
            "DELETE FROM crm_sources WHERE tenant_id = $1 AND name = $2",
            &[&tenant.0, &name],
        )
        .await
        .context("removing a source")?;
    Ok(removed > 0)
}

/// The tenants that have sources; across tenants on purpose (what the lookup needs to
/// know, without a query, of every tenant).
pub async fn tenants_with_sources(client: &impl GenericClient) -> anyhow::Result<Vec<TenantId>> {
    let rows = client
        .query("SELECT DISTINCT tenant_id FROM crm_sources", &[])
        .await
        .context("reading which tenants have sources")?;
    Ok(rows.iter().map(|r| TenantId(r.get(0))).collect())
}

/// What a lookup needs to ask a tenant's sources: its slug (what allowed networks
/// name), region, and sources in order.
pub async fn for_lookup(
    client: &impl GenericClient,
    tenant: TenantId,
) -> anyhow::Result<Option<(String, Region, Vec<StoredSource>)>> {
    let Some(row) = client
        .query_opt(
            "SELECT slug, default_region FROM tenants WHERE id = $1",
            &[&tenant.0],
        )
        .await
        .context("reading the tenant")?
    else {
        return Ok(None);
    };
    let region = Region::parse(row.get(1)).map_err(anyhow::Error::msg)?;
    Ok(Some((row.get(0), region, list(client, tenant).await?)))
}

/// True when the sources were asked about `number` within `ttl` and none knew it.
pub async fn known_unknown(
    client: &impl GenericClient,
    tenant: TenantId,
    number: &str,
    ttl: Duration,
) -> anyhow::Result<bool> {
    let row = client
        .query_opt(
            "SELECT 1 FROM crm_source_answers
              WHERE tenant_id = $1 AND number = $2 AND source_id IS NULL
                AND checked_at > now() - make_interval(secs => $3)",
            &[&tenant.0, &number, &ttl.as_secs_f64()],
        )
        .await
        .context("reading what the sources answered")?;
    Ok(row.is_some())
}

/// Remembers what the sources answered for `number`: the source and contact that knew
/// it, or nobody (`None`).
pub async fn remember(
    client: &impl GenericClient,
    tenant: TenantId,
    number: &str,
    found: Option<(i64, &str)>,
) -> anyhow::Result<()> {
    let (source, crm_id) = found.map_or((None, None), |(s, c)| (Some(s), Some(c)));
    client
        .execute(
            "INSERT INTO crm_source_answers (tenant_id, number, source_id, crm_id, checked_at)
             VALUES ($1, $2, $3, $4, now())
             ON CONFLICT (tenant_id, number) DO UPDATE
                SET source_id = $3, crm_id = $4, checked_at = now()",
            &[&tenant.0, &number, &source, &crm_id],
        )
        .await
        .context("remembering what the sources answered")?;
    Ok(())
}

/// Numbers a source found longer than `ttl` ago, oldest first, at most `limit`: to be
/// asked again. Across tenants on purpose (the re-check job).
pub async fn due_rechecks(
    client: &impl GenericClient,
    ttl: Duration,
    limit: i64,
) -> anyhow::Result<Vec<(TenantId, String)>> {
    let rows = client
        .query(
            "SELECT tenant_id, number FROM crm_source_answers
              WHERE source_id IS NOT NULL AND checked_at < now() - make_interval(secs => $1)
              ORDER BY checked_at LIMIT $2",
            &[&ttl.as_secs_f64(), &limit],
        )
        .await
        .context("reading numbers due for a re-check")?;
    Ok(rows
        .iter()
        .map(|r| (TenantId(r.get(0)), r.get(1)))
        .collect())
}

/// Seals every source's secret parameters with `again` (see `secrets::reseal`); answers
/// how many sources changed. Across tenants on purpose (an operator's command).
pub async fn reseal(
    client: &impl GenericClient,
    again: &dyn Fn(&str, &str) -> anyhow::Result<String>,
) -> anyhow::Result<u64> {
    let rows = client
        .query("SELECT id, params FROM crm_sources FOR UPDATE", &[])
        .await
        .context("reading sources")?;
    let mut changed = 0;
    for row in rows {
        let id: i64 = row.get(0);
        let mut params: serde_json::Value = row.get(1);
        let before = params.clone();
        for (key, value) in params.as_object_mut().into_iter().flatten() {
            if let (true, Some(stored)) = (is_secret(key), value.as_str()) {
                *value = again(SOURCE_PARAM, stored)?.into();
            }
        }
        if params != before {
            changed += client
                .execute(
                    "UPDATE crm_sources SET params = $2 WHERE id = $1",
                    &[&id, &params],
                )
                .await
                .context("resealing a source")?;
        }
    }
    Ok(changed)
}
