//! Reading call records back (the CDR API, exports, the screen pop).
//!
//! Every event write of a tenant takes a change number, and the tenant's writes take
//! turns (store::calls), so change numbers become visible in order. A walk first goes
//! through the ended calls by start time, among those last changed at or before the
//! number current when it began (its `watermark`); then on through everything changed
//! since, in change order. A write that commits during the walk has a larger number
//! than any the walk has passed: no call is skipped, and a call comes back only when it
//! changed.

use std::sync::LazyLock;

use anyhow::Context;
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use super::call_rows::record;
use crate::domain::{Access, CallRecord, CdrFilter, Page, Position, TenantId, call_columns};

/// The columns a record is read from, and the change number walks follow.
fn columns() -> &'static str {
    static COLUMNS: LazyLock<String> =
        LazyLock::new(|| format!("{}, change_seq", call_columns("")));
    &COLUMNS
}

/// The position a new walk starts from: the tenant's last committed change.
pub async fn start(client: &impl GenericClient, tenant: TenantId) -> anyhow::Result<Position> {
    let watermark: i64 = client
        .query_one(
            "SELECT coalesce((SELECT last_change_seq FROM call_counters WHERE tenant_id = $1), 0)",
            &[&tenant.0],
        )
        .await
        .context("reading the tenant's last change")?
        .get(0);
    Ok(Position::ByStart {
        watermark,
        after: None,
    })
}

/// Up to `limit` ended calls from `position` on.
pub async fn page(
    client: &impl GenericClient,
    tenant: TenantId,
    filter: &CdrFilter,
    position: Position,
    limit: i64,
) -> anyhow::Result<Page> {
    let mut position = position;
    let mut calls = Vec::new();
    loop {
        let wanted = limit - calls.len() as i64;
        let (rows, exhausted) = match &position {
            Position::ByStart { watermark, after } => {
                // Before the range's first moment: every call of the range is after it.
                let before_range = filter.from - chrono::Duration::microseconds(1);
                let (after_at, after_id) = after.unwrap_or((before_range, Uuid::nil()));
                let (condition, order) = BY_START;
                let rows = query(
                    client,
                    tenant,
                    filter,
                    condition,
                    order,
                    &[watermark, &after_at, &after_id],
                    wanted,
                )
                .await?;
                let exhausted = (rows.len() as i64) < wanted;
                (rows, exhausted)
            }
            Position::ByChange { watermark, after } => {
                let (after_seq, after_id) = after.unwrap_or((*watermark, Uuid::nil()));
                let rows = query(
                    client,
                    tenant,
                    filter,
                    "change_seq > $9 AND (change_seq, id) > ($10, $11)",
                    "change_seq, id",
                    &[watermark, &after_seq, &after_id],
                    wanted,
                )
                .await?;
                (rows, false)
            }
        };
        if let Some(last) = rows.last() {
            position = match position {
                Position::ByStart { watermark, .. } => Position::ByStart {
                    watermark,
                    after: Some((last.get("started_at"), last.get("id"))),
                },
                Position::ByChange { watermark, .. } => Position::ByChange {
                    watermark,
                    after: Some((last.get("change_seq"), last.get("id"))),
                },
            };
        }
        calls.extend(rows.iter().map(record));
        match position {
            Position::ByStart { watermark, .. } if exhausted => {
                position = Position::ByChange {
                    watermark,
                    after: None,
                };
                if (calls.len() as i64) < limit {
                    continue;
                }
            }
            _ => {}
        }
        return Ok(Page {
            calls,
            next: position,
        });
    }
}

/// The first statement of a new walk's page, as PostgreSQL would run it (`EXPLAIN`):
/// what shows that a page reads only the partitions and index range of its dates.
pub async fn explain_first_page(
    client: &impl GenericClient,
    tenant: TenantId,
    filter: &CdrFilter,
    limit: i64,
) -> anyhow::Result<String> {
    let Position::ByStart { watermark, .. } = start(client, tenant).await? else {
        unreachable!("a walk starts by start time");
    };
    let before_range = filter.from - chrono::Duration::microseconds(1);
    let rows = run(
        client,
        tenant,
        filter,
        BY_START,
        &[&watermark, &before_range, &Uuid::nil()],
        limit,
        "EXPLAIN ",
    )
    .await?;
    Ok(rows
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect::<Vec<_>>()
        .join("\n"))
}

const BY_START: (&str, &str) = (
    "change_seq <= $9 AND (started_at, id) > ($10, $11)",
    "started_at, id",
);

#[allow(clippy::too_many_arguments)]
async fn query(
    client: &impl GenericClient,
    tenant: TenantId,
    filter: &CdrFilter,
    condition: &str,
    order: &str,
    extra: &[&(dyn ToSql + Sync)],
    limit: i64,
) -> anyhow::Result<Vec<Row>> {
    run(client, tenant, filter, (condition, order), extra, limit, "").await
}

#[allow(clippy::too_many_arguments)]
async fn run(
    client: &impl GenericClient,
    tenant: TenantId,
    filter: &CdrFilter,
    (condition, order): (&str, &str),
    extra: &[&(dyn ToSql + Sync)],
    limit: i64,
    explain: &str,
) -> anyhow::Result<Vec<Row>> {
    // A call's month is that of its first event when it was created, never before its
    // start: older partitions cannot hold a call of the range and are not read.
    let cols = columns();
    let sql = format!(
        "{explain}SELECT {cols} FROM calls
         WHERE tenant_id = $1 AND ended_at IS NOT NULL AND started_at >= $2 AND started_at <= $3
           AND month >= $14
           AND ($4::text IS NULL OR lower(direction) = lower($4))
           AND ($5::text IS NULL OR agent = $5 OR right(agent, length($5) + 2) = '(' || $5 || ')')
           AND ($6::text IS NULL OR other_number = $6 OR caller_number = $6)
           AND ($7::text IS NULL OR outcome = $7)
           AND ($8::text[] IS NULL OR agent_extension(agent) = ANY($8) OR call_group = ANY($13))
           AND {condition}
         ORDER BY {order} LIMIT $12"
    );
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![
        &tenant.0,
        &filter.from,
        &filter.to,
        &filter.direction,
        &filter.agent,
        &filter.number,
        &filter.outcome,
        &filter.agents,
    ];
    params.extend_from_slice(extra);
    params.push(&limit);
    params.push(&filter.groups);
    let first_month = super::calls::month_of(filter.from);
    params.push(&first_month);
    // Prepared once per connection: planning these statements over every monthly
    // partition cost more than running them (deploy/bench/results/calls.md).
    let statement = client
        .prepare_cached(&sql)
        .await
        .context("preparing the call records query")?;
    client
        .query(&statement, &params)
        .await
        .context("reading call records")
}

/// The call whose id, or one of whose legs' PBX call id or GUID, is `key`.
pub async fn find(
    client: &impl GenericClient,
    tenant: TenantId,
    key: &str,
    access: &Access,
) -> anyhow::Result<Option<CallRecord>> {
    let by_id = Uuid::parse_str(key).ok();
    let keys = [format!("c:{key}"), format!("g:{key}")];
    // Two statements, each cheap to plan: the candidates (a key's month is not known, so
    // every partition's index is asked), then their rows from the partitions of their
    // months only. One statement joining the two was planned anew on every request (its
    // custom plans won over the generic one), over every partition of both tables and
    // all their indexes: planning cost most of a lookup's CPU.
    let candidates = match by_id {
        None => client
            .prepare_cached(
                "SELECT call_id, month FROM call_keys WHERE tenant_id = $1 AND key = ANY($2)",
            )
            .await
            .context("preparing the call key query")?,
        Some(_) => client
            .prepare_cached(
                "SELECT call_id, month FROM call_keys WHERE tenant_id = $1 AND key = ANY($2)
                 UNION ALL
                 SELECT id, month FROM calls WHERE tenant_id = $1 AND id = $3",
            )
            .await
            .context("preparing the call key query")?,
    };
    let rows = match by_id {
        None => {
            client
                .query(&candidates, &[&tenant.0, &keys.as_slice()])
                .await
        }
        Some(id) => {
            client
                .query(&candidates, &[&tenant.0, &keys.as_slice(), &id])
                .await
        }
    }
    .context("finding a call's keys")?;
    newest_of(client, tenant, &rows, access).await
}

/// The call of a click-to-call request: the one its events' RequestID grouped.
pub async fn find_by_request(
    client: &impl GenericClient,
    tenant: TenantId,
    request_id: i64,
) -> anyhow::Result<Option<CallRecord>> {
    let rows = client
        .query(
            "SELECT call_id, month FROM call_keys WHERE tenant_id = $1 AND key = $2",
            &[&tenant.0, &format!("r:{request_id}")],
        )
        .await
        .context("finding a request's call")?;
    newest_of(client, tenant, &rows, &Access::Everything).await
}

/// The newest of the candidate calls (`call_id`, `month` rows) that `access` sees.
async fn newest_of(
    client: &impl GenericClient,
    tenant: TenantId,
    rows: &[Row],
    access: &Access,
) -> anyhow::Result<Option<CallRecord>> {
    if rows.is_empty() {
        return Ok(None);
    }
    let ids: Vec<Uuid> = rows.iter().map(|r| r.get(0)).collect();
    let months: Vec<chrono::NaiveDate> = rows.iter().map(|r| r.get(1)).collect();
    let cols = columns();
    let sql = format!(
        "SELECT {cols} FROM calls
         WHERE tenant_id = $1 AND id = ANY($2) AND month = ANY($3)
           AND ($4::text[] IS NULL OR agent_extension(agent) = ANY($4) OR call_group = ANY($5))
         ORDER BY started_at DESC LIMIT 1"
    );
    let (agents, groups) = access.as_lists().unzip();
    let statement = client
        .prepare_cached(&sql)
        .await
        .context("preparing the call query")?;
    let row = client
        .query_opt(&statement, &[&tenant.0, &ids, &months, &agents, &groups])
        .await
        .context("finding a call")?;
    Ok(row.as_ref().map(record))
}

/// The latest calls with `number` as their other party, for the screen pop.
pub async fn recent_for_number(
    client: &impl GenericClient,
    tenant: TenantId,
    number: &str,
    limit: i64,
) -> anyhow::Result<Vec<CallRecord>> {
    let cols = columns();
    let sql = format!(
        "SELECT {cols} FROM calls
         WHERE tenant_id = $1 AND other_number = $2
         ORDER BY started_at DESC LIMIT $3"
    );
    let statement = client
        .prepare_cached(&sql)
        .await
        .context("preparing the recent calls query")?;
    let rows = client
        .query(&statement, &[&tenant.0, &number, &limit])
        .await
        .context("reading recent calls")?;
    Ok(rows.iter().map(record).collect())
}
