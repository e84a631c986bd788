use anyhow::Context;
use deadpool_postgres::GenericClient;
use serde_json::Value;
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;

use crate::domain::{Region, TenantId, TenantSlug};

/// A tenant as the rest of the application sees it.
#[derive(Debug, Clone)]
pub struct Tenant {
    pub id: TenantId,
    pub slug: String,
    pub name: String,
    pub region: Region,
    pub settings: Value,
}

pub(crate) const COLUMNS: &str = "t.id, t.slug, t.name, t.default_region, t.settings";

pub(crate) fn from_row(row: &Row) -> anyhow::Result<Tenant> {
    let region: String = row.get("default_region");
    Ok(Tenant {
        id: TenantId(row.get("id")),
        slug: row.get("slug"),
        name: row.get("name"),
        region: Region::parse(&region).map_err(anyhow::Error::msg)?,
        settings: row.get("settings"),
    })
}

#[derive(Debug, thiserror::Error)]
pub enum CreateTenantError {
    #[error("tenant `{0}` already exists")]
    Exists(String),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
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
            super::notify::config_changed(client).await?;
            Ok(from_row(&row)?)
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
