//! Report keys: the reports a service user may pull through the historical-data API.

use uuid::Uuid;

use super::service_users::sees;
use super::{Db, Error};
use crate::domain::EnabledReport;
use crate::domain::{ReportTemplate, ServiceUserName, Tenant};
use crate::store;

/// Enables `template` for the service user `name`; its id is the report's key.
pub async fn enable(
    db: &Db,
    tenant: &Tenant,
    template: ReportTemplate,
    name: &ServiceUserName,
) -> Result<EnabledReport, Error> {
    db.run(async |client| {
        let Some(user) = store::service_users::find(&*client, tenant.id, name).await? else {
            return Ok(Err(Error::NotFound(format!(
                "`{}` has no active service user `{name}`",
                tenant.slug
            ))));
        };
        if template.is_tenant_wide() && user.is_limited() {
            return Ok(Err(Error::Message(format!(
                "the {template} report counts every lookup of the tenant; `{name}` sees only {}",
                sees(user.agents.as_deref(), user.groups.as_deref())
            ))));
        }
        let report = store::reports::enable(&*client, tenant.id, template, user.id).await?;
        Ok(Ok(report))
    })
    .await?
}

pub async fn list(db: &Db, tenant: &Tenant) -> Result<Vec<EnabledReport>, Error> {
    Ok(db
        .run(async |client| store::reports::list(&*client, tenant.id).await)
        .await?)
}

/// Stops a report: its key answers 404 from then on.
pub async fn disable(db: &Db, tenant: &Tenant, key: Uuid) -> Result<(), Error> {
    let disabled = db
        .run(async |client| store::reports::disable(&*client, tenant.id, key).await)
        .await?;
    if disabled {
        Ok(())
    } else {
        Err(Error::NotFound(format!(
            "`{}` has no active report {key}",
            tenant.slug
        )))
    }
}

/// A report and what a request for it asks by default: its service user's agents
/// (`Name(extension)` where the agent is known) and groups.
pub struct Details {
    pub report: EnabledReport,
    pub tenant: Tenant,
    pub agents: Vec<String>,
    pub groups: Vec<String>,
}

pub async fn details(db: &Db, key: Uuid) -> Result<Details, Error> {
    let report = db
        .run(async |client| store::reports::find_any(&*client, key).await)
        .await?
        .ok_or_else(|| {
            Error::NotFound(format!(
                "no report with key {key} (see `cidgate report list`)"
            ))
        })?;
    let tenant = db.tenant(&report.tenant_slug).await?;
    let (agents, groups) = db
        .run(async |client| {
            let users = store::service_users::list(&*client, tenant.id).await?;
            let user = users.into_iter().find(|u| u.id == report.service_user_id);
            let listed = user
                .as_ref()
                .and_then(|u| u.agents.clone())
                .unwrap_or_default();
            let groups = user.and_then(|u| u.groups).unwrap_or_default();
            let known = store::agents::matching(&*client, tenant.id, &listed, &[]).await?;
            let agents = listed
                .iter()
                .map(|e| {
                    known
                        .iter()
                        .find(|a| a.extension.as_str() == e)
                        .map_or_else(|| e.clone(), |a| a.key())
                })
                .collect();
            Ok((agents, groups))
        })
        .await?;
    Ok(Details {
        report,
        tenant,
        agents,
        groups,
    })
}
