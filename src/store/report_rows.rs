//! What reports list row by row: the calls of a timeframe, and lookups per day.

use anyhow::Context;
use chrono::{DateTime, NaiveDate, Utc};
use deadpool_postgres::GenericClient;
use uuid::Uuid;

use super::report_stats::{CallScope, Window, lists, scope_condition, split};
use crate::domain::TenantId;

/// One call of the call-detail report.
#[derive(Debug, Clone)]
pub struct CallLine {
    pub report_call_id: i64,
    pub id: Uuid,
    pub started_at: DateTime<Utc>,
    pub direction: Option<String>,
    pub agent: Option<String>,
    pub group: Option<String>,
    pub caller_number: Option<String>,
    pub caller_name: Option<String>,
    pub dnis: Option<String>,
    pub external_number: Option<String>,
    pub account_codes: Vec<String>,
    pub outcome: String,
    pub duration_ms: i64,
    pub talk_ms: i64,
}

/// The ended calls in `scope` that started in the window, oldest first, at most `limit`.
pub async fn calls(
    client: &impl GenericClient,
    tenant: TenantId,
    window: Window,
    scope: &CallScope,
    limit: i64,
) -> anyhow::Result<Vec<CallLine>> {
    let scoped = scope_condition("coalesce(agent_extension(agent), '')", "call_group", 5);
    let sql = format!(
        "SELECT report_call_id, id, started_at, direction, agent, call_group, caller_number,
                caller_name, dnis, external_number, account_codes, outcome,
                coalesce(duration_ms, 0) AS duration_ms,
                CASE WHEN outcome = 'answered' THEN coalesce(talk_ms, 0) ELSE 0 END AS talk_ms
         FROM calls
         WHERE tenant_id = $1 AND ended_at IS NOT NULL AND started_at >= $2 AND started_at < $3
           AND month >= $4 AND {scoped}
         ORDER BY started_at, id LIMIT $9"
    );
    let first_month = split(window).first_month;
    let (access_ext, access_groups) = lists(&scope.access);
    let (rows_ext, rows_groups) = lists(&scope.rows);
    let rows = client
        .query(
            &sql,
            &[
                &tenant.0,
                &window.from,
                &window.until,
                &first_month,
                &access_ext,
                &access_groups,
                &rows_ext,
                &rows_groups,
                &limit,
            ],
        )
        .await
        .context("reading calls for a report")?;
    Ok(rows
        .iter()
        .map(|r| CallLine {
            report_call_id: r.get("report_call_id"),
            id: r.get("id"),
            started_at: r.get("started_at"),
            direction: r.get("direction"),
            agent: r.get("agent"),
            group: r.get("call_group"),
            caller_number: r.get("caller_number"),
            caller_name: r.get("caller_name"),
            dnis: r.get("dnis"),
            external_number: r.get("external_number"),
            account_codes: r.get("account_codes"),
            outcome: r.get("outcome"),
            duration_ms: r.get("duration_ms"),
            talk_ms: r.get("talk_ms"),
        })
        .collect())
}

/// A day's lookups, by what they found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LookupDay {
    pub day: NaiveDate,
    pub identified: i64,
    pub unknown: i64,
    pub degraded: i64,
    /// Unknown callers answered with the screening route (spam list, failed verstat).
    pub screened: i64,
}

/// The lookups of the window per day in `zone` (an IANA name), days without any left out.
pub async fn lookup_days(
    client: &impl GenericClient,
    tenant: TenantId,
    window: Window,
    zone: &str,
) -> anyhow::Result<Vec<LookupDay>> {
    let rows = client
        .query(
            "SELECT (at AT TIME ZONE $4)::date AS day,
                    count(*) FILTER (WHERE outcome = 'found'),
                    count(*) FILTER (WHERE outcome = 'unknown'),
                    count(*) FILTER (WHERE outcome = 'degraded'),
                    count(*) FILTER (WHERE screened IS NOT NULL)
             FROM lookup_log WHERE tenant_id = $1 AND at >= $2 AND at < $3
             GROUP BY 1 ORDER BY 1",
            &[&tenant.0, &window.from, &window.until, &zone],
        )
        .await
        .context("counting lookups for a report")?;
    Ok(rows
        .iter()
        .map(|r| LookupDay {
            day: r.get(0),
            identified: r.get(1),
            unknown: r.get(2),
            degraded: r.get(3),
            screened: r.get(4),
        })
        .collect())
}
