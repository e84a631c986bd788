//! `cidgate report`: reports enabled for the historical-data API (the reference's "API
//! Enabled Report" list), and a ready request for each ("Show Request Details").

use anyhow::Context;
use chrono::{DateTime, Days, FixedOffset, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use clap::Subcommand;
use serde_json::{Value, json};
use uuid::Uuid;

use super::db::{TenantArgs, open};
use crate::admin::reports;
use crate::calls::cdr::tenant_zone;
use crate::config::{self, DatabaseArgs};
use crate::domain::{ReportTemplate, ServiceUserName};

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Enable a report template for a service user; prints its key (historicDataKey)
    Enable {
        #[command(flatten)]
        at: TenantArgs,
        /// agent-talking-summary, calls-by-dnis, missed-calls-by-group,
        /// account-code-usage, call-detail or caller-identification
        #[arg(long, value_parser = |raw: &str| ReportTemplate::parse(raw))]
        template: ReportTemplate,
        #[arg(long)]
        service_user: String,
    },
    /// List the tenant's reports
    List {
        #[command(flatten)]
        at: TenantArgs,
    },
    /// Print a ready request body and curl line for a report
    Details {
        key: Uuid,
        /// The gateway's address as the caller reaches it
        #[arg(long, env = "CIDGATE_PUBLIC_URL", value_parser = config::parse_base_url,
              default_value = "http://127.0.0.1:8080")]
        public_url: url::Url,
        /// Timeframe start: RFC 3339, or a day in the tenant's time zone (default: yesterday)
        #[arg(long)]
        start: Option<String>,
        /// Timeframe end: RFC 3339, or a day (its last second) (default: as --start)
        #[arg(long)]
        end: Option<String>,
        /// Rows (Agent): comma-separated `Name(extension)` or extensions
        /// (default: the service user's agents)
        #[arg(long)]
        agents: Option<String>,
        /// Rows (Group): comma-separated groups (default: the service user's groups)
        #[arg(long)]
        groups: Option<String>,
        /// json, csv or html
        #[arg(long, default_value = "json")]
        format: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Stop a report: its key answers 404 from now on
    Disable {
        #[command(flatten)]
        at: TenantArgs,
        key: Uuid,
    },
}

pub async fn run(cmd: ReportCommand) -> anyhow::Result<()> {
    match cmd {
        ReportCommand::Enable {
            at,
            template,
            service_user,
        } => {
            let name = ServiceUserName::parse(&service_user).map_err(anyhow::Error::msg)?;
            let (db, tenant) = at.open().await?;
            let report = reports::enable(&db, &tenant, template, &name).await?;
            eprintln!(
                "enabled report {} ({template}) for `{name}` of `{}`; `cidgate report details {}` \
                 prints a request. Its historicDataKey:",
                report.report_id, tenant.slug, report.id
            );
            println!("{}", report.id);
        }
        ReportCommand::List { at } => {
            let (db, tenant) = at.open().await?;
            println!(
                "{:<36} {:>4} {:<22} {:<20} {:<8} CREATED",
                "KEY", "ID", "TEMPLATE", "SERVICE USER", "STATE"
            );
            for r in reports::list(&db, &tenant).await? {
                let state = if r.stopped_at.is_some() {
                    "stopped"
                } else {
                    "active"
                };
                println!(
                    "{:<36} {:>4} {:<22} {:<20} {:<8} {}",
                    r.id,
                    r.report_id,
                    r.template,
                    r.service_user,
                    state,
                    r.created_at.to_rfc3339()
                );
            }
        }
        ReportCommand::Details {
            key,
            public_url,
            start,
            end,
            agents,
            groups,
            format,
            db,
        } => {
            let db = open(&db).await?;
            let details = reports::details(&db, key).await?;
            let (report, tenant) = (&details.report, &details.tenant);
            let zone = tenant_zone(&tenant.settings);
            let (start, end) = timeframe(start.as_deref(), end.as_deref(), zone, Utc::now())?;
            let mut parameters = vec![json!({
                "name": "Report Timeframe", "valueType": "REPORT_TIMEFRAME",
                "value": {"type": "REPORT_TIMEFRAME", "start": start, "end": end}})];
            if !report.template.is_tenant_wide() {
                let split = |raw: &str| -> Vec<String> {
                    raw.split(',')
                        .map(|s| s.trim().to_owned())
                        .filter(|s| !s.is_empty())
                        .collect()
                };
                let agents = agents.map_or_else(|| details.agents.clone(), |raw| split(&raw));
                let groups = groups.map_or_else(|| details.groups.clone(), |raw| split(&raw));
                if !agents.is_empty() {
                    parameters.push(rows("Rows (Agent)", "PBX_USERS", "pbxUsers", &agents));
                }
                if !groups.is_empty() {
                    parameters.push(rows("Rows (Group)", "PBX_GROUPS", "pbxGroups", &groups));
                }
            }
            let body = json!({"format": format, "parameters": parameters});
            let url = format!(
                "{}/rest/api/v1/historic-data/{key}",
                public_url.as_str().trim_end_matches('/')
            );
            println!(
                "Report {} ({}, {}) of `{}`, for service user `{}`",
                report.report_id,
                report.template.title(),
                report.template,
                tenant.slug,
                report.service_user
            );
            println!();
            println!("POST {url}");
            println!("Authorization: Bearer <the service user's key>");
            println!("Content-Type: application/json");
            println!();
            println!("{}", serde_json::to_string_pretty(&body)?);
            println!();
            println!(
                "curl -X POST '{url}' -H \"Authorization: Bearer $CIDGATE_REPORT_KEY\" \
                 -H 'Content-Type: application/json' -d '{}'",
                serde_json::to_string(&body)?.replace('\'', r"'\''")
            );
        }
        ReportCommand::Disable { at, key } => {
            let (db, tenant) = at.open().await?;
            reports::disable(&db, &tenant, key).await?;
            eprintln!("disabled report {key}");
        }
    }
    Ok(())
}

fn rows(name: &str, value_type: &str, field: &str, keys: &[String]) -> Value {
    let keys: Vec<Value> = keys.iter().map(|k| json!({"key": k})).collect();
    json!({"name": name, "valueType": value_type,
           "value": {"type": value_type, field: keys}})
}

/// The timeframe as the reference writes it (`2019-09-09T00:00:00.000-06:00`): RFC 3339
/// as given, or days in `zone` (the start's first second to the end's last).
fn timeframe(
    start: Option<&str>,
    end: Option<&str>,
    zone: Tz,
    now: DateTime<Utc>,
) -> anyhow::Result<(String, String)> {
    let yesterday = now.with_timezone(&zone).date_naive() - Days::new(1);
    let yesterday = yesterday.to_string();
    let start = start.unwrap_or(&yesterday);
    let end = end.unwrap_or(start);
    let read = |raw: &str, last: bool| -> anyhow::Result<DateTime<FixedOffset>> {
        if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
            return Ok(t);
        }
        let day = NaiveDate::parse_from_str(raw, "%Y-%m-%d")
            .with_context(|| format!("`{raw}` is neither RFC 3339 nor YYYY-MM-DD"))?;
        let (h, m, s) = if last { (23, 59, 59) } else { (0, 0, 0) };
        let local = day.and_hms_opt(h, m, s).context("a time of day")?;
        zone.from_local_datetime(&local)
            .earliest()
            .map(|t| t.fixed_offset())
            .with_context(|| format!("`{raw}` has no such time in {}", zone.name()))
    };
    let format = |t: DateTime<FixedOffset>| t.format("%Y-%m-%dT%H:%M:%S%.3f%:z").to_string();
    Ok((format(read(start, false)?), format(read(end, true)?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_timeframe_is_yesterday_in_the_tenant_zone() {
        let zone: Tz = "America/Chicago".parse().unwrap();
        let now = DateTime::parse_from_rfc3339("2019-09-11T03:00:00Z")
            .unwrap()
            .to_utc();
        let (start, end) = timeframe(None, None, zone, now).unwrap();
        assert_eq!(start, "2019-09-09T00:00:00.000-05:00");
        assert_eq!(end, "2019-09-09T23:59:59.000-05:00");
        let (start, end) = timeframe(
            Some("2019-09-09T00:00:00-06:00"),
            Some("2019-09-10"),
            zone,
            now,
        )
        .unwrap();
        assert_eq!(start, "2019-09-09T00:00:00.000-06:00");
        assert_eq!(end, "2019-09-10T23:59:59.000-05:00");
    }
}
