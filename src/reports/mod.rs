//! Historical reports (DESIGN §10, reference/historical-call-data-api.txt): each template
//! is a definition over the call store (the lookup log for caller identification), and
//! `output` writes the result in the reference's shape as JSON, CSV or a printable page.

mod agents;
mod calls;
mod lookups;
pub mod output;
pub mod table;

use chrono_tz::Tz;
use deadpool_postgres::GenericClient;

use crate::domain::{Access, GroupName, ReportRequest, ReportTemplate, Tenant, agent_extension};
use crate::domain::{CallScope, Window};
use table::Table;

/// Why a report cannot be run as asked.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The request asks for something the template cannot do (a `400`).
    #[error("{0}")]
    BadRequest(String),
    /// A requested agent or group is outside what the key may see (a `403`).
    #[error("{0}")]
    Forbidden(String),
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

/// A requested agent row: the key as sent and the extension it names.
#[derive(Debug, Clone)]
pub struct RequestedAgent {
    pub key: String,
    pub extension: String,
}

/// One run's inputs, checked against what the key may see.
pub struct Run<'a> {
    pub tenant: &'a Tenant,
    pub zone: Tz,
    pub window: Window,
    pub access: &'a Access,
    pub agents: Option<Vec<RequestedAgent>>,
    pub groups: Option<Vec<GroupName>>,
}

impl Run<'_> {
    /// The calls a call-based template counts: what the key sees, and of that the
    /// requested agents' and groups' calls when rows are named.
    fn scope(&self) -> CallScope {
        let rows = match (&self.agents, &self.groups) {
            (None, None) => None,
            (agents, groups) => Some((
                agents
                    .iter()
                    .flatten()
                    .map(|a| a.extension.clone())
                    .collect(),
                groups
                    .iter()
                    .flatten()
                    .map(|g| g.as_str().to_owned())
                    .collect(),
            )),
        };
        CallScope {
            access: self.access.as_lists(),
            rows,
        }
    }
}

/// Checks the request's rows against `access` and computes the report.
pub async fn compute(
    client: &impl GenericClient,
    tenant: &Tenant,
    zone: Tz,
    template: ReportTemplate,
    request: &ReportRequest,
    access: &Access,
) -> Result<Table, ReportError> {
    if template.is_tenant_wide() {
        if access.is_limited() {
            return Err(ReportError::Forbidden(format!(
                "the {template} report counts every lookup of the tenant; this service user \
                 sees only some agents' calls"
            )));
        }
        if request.agents.is_some() || request.groups.is_some() {
            return Err(ReportError::BadRequest(format!(
                "the {template} report has a row per day: it takes no Rows (Agent) or Rows (Group)"
            )));
        }
    }
    let mut agents = None;
    if let Some(keys) = &request.agents {
        let mut checked = Vec::with_capacity(keys.len());
        for key in keys {
            let extension = agent_extension(key).unwrap_or(key).to_owned();
            if !access.sees_agent(&extension) {
                return Err(ReportError::Forbidden(format!(
                    "agent `{key}` is outside this service user's access"
                )));
            }
            checked.push(RequestedAgent {
                key: key.clone(),
                extension,
            });
        }
        agents = Some(checked);
    }
    if let Some(groups) = &request.groups
        && let Some(outside) = groups.iter().find(|g| !access.sees_group(g.as_str()))
    {
        return Err(ReportError::Forbidden(format!(
            "group `{}` is outside this service user's access",
            outside.as_str()
        )));
    }
    let run = Run {
        tenant,
        zone,
        window: Window {
            from: request.timeframe.from(),
            until: request.timeframe.until(),
        },
        access,
        agents,
        groups: request.groups.clone(),
    };
    match template {
        ReportTemplate::AgentTalkingSummary => agents::talking_summary(client, &run).await,
        ReportTemplate::CallsByDnis => calls::by_dnis(client, &run).await,
        ReportTemplate::MissedCallsByGroup => calls::missed_by_group(client, &run).await,
        ReportTemplate::AccountCodeUsage => calls::account_codes(client, &run).await,
        ReportTemplate::CallDetail => calls::detail(client, &run).await,
        ReportTemplate::CallerIdentification => lookups::caller_identification(client, &run).await,
    }
}
