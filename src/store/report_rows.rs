//! What reports list row by row: the calls of a timeframe, and lookups per day.

use anyhow::Context;
use deadpool_postgres::GenericClient;

use super::report_stats::{lists, scope_condition, split};
use crate::domain::{CallRecord, TenantId, call_columns};
use crate::domain::{CallScope, LookupDay, Window};

/// The ended calls in `scope` that started in the window, oldest first, at most `limit`.
pub async fn calls(
    client: &impl GenericClient,
    tenant: TenantId,
    window: Window,
    scope: &CallScope,
    limit: i64,
) -> anyhow::Result<Vec<CallRecord>> {
    let scoped = scope_condition("coalesce(agent_extension(agent), '')", "call_group", 5);
    let sql = format!(
        "SELECT {} FROM calls
         WHERE tenant_id = $1 AND ended_at IS NOT NULL AND started_at >= $2 AND started_at < $3
           AND month >= $4 AND {scoped}
         ORDER BY started_at, id LIMIT $9",
        call_columns("")
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
    Ok(rows.iter().map(super::call_rows::record).collect())
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
