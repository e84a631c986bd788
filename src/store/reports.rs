//! Reports enabled for the historical-data API: a template, run by one service user.

use anyhow::Context;
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::domain::EnabledReport;
use crate::domain::{ReportTemplate, TenantId};

const SELECT: &str = "SELECT r.id, r.tenant_id, t.slug, r.report_id, r.template, r.service_user_id,
        u.name AS service_user, r.created_at, coalesce(r.disabled_at, u.revoked_at) AS stopped_at
    FROM reports r JOIN service_users u ON u.id = r.service_user_id
    JOIN tenants t ON t.id = r.tenant_id";

fn from_row(row: &Row) -> anyhow::Result<EnabledReport> {
    Ok(EnabledReport {
        id: row.get("id"),
        tenant: TenantId(row.get("tenant_id")),
        tenant_slug: row.get("slug"),
        report_id: row.get("report_id"),
        template: ReportTemplate::parse(row.get("template")).map_err(anyhow::Error::msg)?,
        service_user_id: row.get("service_user_id"),
        service_user: row.get("service_user"),
        created_at: row.get("created_at"),
        stopped_at: row.get("stopped_at"),
    })
}

/// Enables `template` for the service user under a new key; its `reportId` is the
/// tenant's largest plus one (two enabled at the same moment collide on the unique
/// `(tenant_id, report_id)`, and the second fails: an operator's command, repeated).
pub async fn enable(
    client: &impl GenericClient,
    tenant: TenantId,
    template: ReportTemplate,
    service_user: i64,
) -> anyhow::Result<EnabledReport> {
    let id = Uuid::new_v4();
    client
        .execute(
            "INSERT INTO reports (id, tenant_id, report_id, template, service_user_id)
             SELECT $2, $1, coalesce(max(report_id), 0) + 1, $3, $4
             FROM reports WHERE tenant_id = $1",
            &[&tenant.0, &id, &template.as_str(), &service_user],
        )
        .await
        .context("enabling a report")?;
    get(client, tenant, id)
        .await?
        .context("the enabled report is not there")
}

/// The tenant's reports, newest last.
pub async fn list(
    client: &impl GenericClient,
    tenant: TenantId,
) -> anyhow::Result<Vec<EnabledReport>> {
    let sql = format!("{SELECT} WHERE r.tenant_id = $1 ORDER BY r.report_id");
    client
        .query(&sql, &[&tenant.0])
        .await
        .context("listing reports")?
        .iter()
        .map(from_row)
        .collect()
}

/// One of the tenant's reports, running or not.
pub async fn get(
    client: &impl GenericClient,
    tenant: TenantId,
    id: Uuid,
) -> anyhow::Result<Option<EnabledReport>> {
    let sql = format!("{SELECT} WHERE r.tenant_id = $1 AND r.id = $2");
    let row = client
        .query_opt(&sql, &[&tenant.0, &id])
        .await
        .context("finding a report")?;
    row.as_ref().map(from_row).transpose()
}

/// A report by its key alone, whichever tenant's: how `report details UUID` finds the
/// tenant to scope the rest by (crosses tenants on purpose, for the operator).
pub async fn find_any(
    client: &impl GenericClient,
    id: Uuid,
) -> anyhow::Result<Option<EnabledReport>> {
    let sql = format!("{SELECT} WHERE r.id = $1");
    let row = client
        .query_opt(&sql, &[&id])
        .await
        .context("finding a report")?;
    row.as_ref().map(from_row).transpose()
}

/// Stops a report; false when the tenant has no running report with that key.
pub async fn disable(
    client: &impl GenericClient,
    tenant: TenantId,
    id: Uuid,
) -> anyhow::Result<bool> {
    let n = client
        .execute(
            "UPDATE reports SET disabled_at = now()
             WHERE tenant_id = $1 AND id = $2 AND disabled_at IS NULL",
            &[&tenant.0, &id],
        )
        .await
        .context("disabling a report")?;
    Ok(n == 1)
}
