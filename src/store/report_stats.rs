//! What reports sum. Sums come from the hourly `call_stats` (sql/V17) for the whole
//! hours of a timeframe and from the calls themselves for the partial hours at its
//! edges, so a month of ten million calls sums a few hundred thousand rows. Only ended
//! calls count, by the time they started. (store::report_rows reads rows one by one.)

use anyhow::Context;
use chrono::{DateTime, Datelike, DurationRound, NaiveDate, Utc};
use deadpool_postgres::GenericClient;
use tokio_postgres::types::ToSql;

use crate::domain::TenantId;

/// `[from, until)`.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub from: DateTime<Utc>,
    pub until: DateTime<Utc>,
}

/// Which calls count. Each limit is (extensions, groups): a call counts when its
/// agent's extension or its group is listed. `None`: no limit.
#[derive(Debug, Clone, Default)]
pub struct CallScope {
    /// What the key may see.
    pub access: Option<(Vec<String>, Vec<String>)>,
    /// The rows the request names.
    pub rows: Option<(Vec<String>, Vec<String>)>,
}

/// The window cut at whole hours: `whole` from `call_stats`, `head` and `tail` from
/// `calls`. `first_month`: no call that started in the window lives in an earlier
/// month's partition (a call's month is that of its first event, and its start never
/// moves later), so older partitions are skipped.
pub(super) struct Split {
    whole: (DateTime<Utc>, DateTime<Utc>),
    head: (DateTime<Utc>, DateTime<Utc>),
    tail: (DateTime<Utc>, DateTime<Utc>),
    pub(super) first_month: NaiveDate,
}

pub(super) fn split(w: Window) -> Split {
    let hour = chrono::Duration::hours(1);
    let floor = |t: DateTime<Utc>| t.duration_trunc(hour).unwrap_or(t);
    let start = if floor(w.from) == w.from {
        w.from
    } else {
        floor(w.from) + hour
    };
    let end = floor(w.until);
    let first_month = NaiveDate::from_ymd_opt(w.from.year(), w.from.month(), 1)
        .expect("the first of a month exists");
    if start < end {
        Split {
            whole: (start, end),
            head: (w.from, start),
            tail: (end, w.until),
            first_month,
        }
    } else {
        Split {
            whole: (w.from, w.from),
            head: (w.from, w.until),
            tail: (w.until, w.until),
            first_month,
        }
    }
}

/// `$1` tenant, `$2`-`$7` the split, `$8` the first month; the facts' columns are
/// named as in `call_stats`.
const CALL_FACTS: &str = "WITH facts AS (
        SELECT agent_ext, call_group, direction, dnis, calls, answered, talk_ms, duration_ms
        FROM call_stats
        WHERE tenant_id = $1 AND hour >= $2 AND hour < $3 AND month >= $8
        UNION ALL
        SELECT coalesce(agent_extension(agent), ''), coalesce(call_group, ''),
               coalesce(direction, ''), coalesce(dnis, ''), 1,
               CASE WHEN outcome = 'answered' THEN 1 ELSE 0 END,
               CASE WHEN outcome = 'answered' THEN coalesce(talk_ms, 0) ELSE 0 END,
               coalesce(duration_ms, 0)
        FROM calls
        WHERE tenant_id = $1 AND ended_at IS NOT NULL AND month >= $8
          AND (started_at >= $4 AND started_at < $5 OR started_at >= $6 AND started_at < $7)
    )";

/// The same per account code (`call_code_stats`): a call counts under each of its codes.
const CODE_FACTS: &str = "WITH facts AS (
        SELECT account_code, agent_ext, call_group, calls, answered, talk_ms, duration_ms
        FROM call_code_stats
        WHERE tenant_id = $1 AND hour >= $2 AND hour < $3 AND month >= $8
        UNION ALL
        SELECT code, coalesce(agent_extension(agent), ''), coalesce(call_group, ''), 1,
               CASE WHEN outcome = 'answered' THEN 1 ELSE 0 END,
               CASE WHEN outcome = 'answered' THEN coalesce(talk_ms, 0) ELSE 0 END,
               coalesce(duration_ms, 0)
        FROM calls, unnest(account_codes) AS code
        WHERE tenant_id = $1 AND ended_at IS NOT NULL AND month >= $8
          AND (started_at >= $4 AND started_at < $5 OR started_at >= $6 AND started_at < $7)
    )";

/// The condition for `scope`, its lists at `$first`..`$first+3`.
pub(super) fn scope_condition(extension: &str, group: &str, first: usize) -> String {
    let (a, b, c, d) = (first, first + 1, first + 2, first + 3);
    format!(
        "(${a}::text[] IS NULL OR {extension} = ANY(${a}) OR {group} = ANY(${b}))
         AND (${c}::text[] IS NULL OR {extension} = ANY(${c}) OR {group} = ANY(${d}))"
    )
}

/// A limit's two lists as parameters (both NULL for no limit).
pub(super) fn lists(
    limit: &Option<(Vec<String>, Vec<String>)>,
) -> (Option<&Vec<String>>, Option<&Vec<String>>) {
    match limit {
        Some((extensions, groups)) => (Some(extensions), Some(groups)),
        None => (None, None),
    }
}

async fn query_facts(
    client: &impl GenericClient,
    tenant: TenantId,
    window: Window,
    sql: &str,
    more: &[&(dyn ToSql + Sync)],
) -> anyhow::Result<Vec<tokio_postgres::Row>> {
    let s = split(window);
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![
        &tenant.0,
        &s.whole.0,
        &s.whole.1,
        &s.head.0,
        &s.head.1,
        &s.tail.0,
        &s.tail.1,
        &s.first_month,
    ];
    params.extend_from_slice(more);
    client
        .query(sql, &params)
        .await
        .context("summing calls for a report")
}

/// One agent's calls in a window.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentTotals {
    pub extension: String,
    pub inbound: i64,
    pub outbound: i64,
    /// `Internal` and `Intersite`.
    pub internal: i64,
    /// Every direction, and calls that named none.
    pub total: i64,
    pub answered: i64,
    /// Of the answered calls.
    pub talk_ms: i64,
}

/// Per agent extension: only `extensions`, or (`None`) every agent with calls.
pub async fn agent_totals(
    client: &impl GenericClient,
    tenant: TenantId,
    window: Window,
    extensions: Option<&[String]>,
) -> anyhow::Result<Vec<AgentTotals>> {
    let sql = format!(
        "{CALL_FACTS}
        SELECT agent_ext,
               coalesce(sum(calls) FILTER (WHERE direction = 'Inbound'), 0)::bigint,
               coalesce(sum(calls) FILTER (WHERE direction = 'Outbound'), 0)::bigint,
               coalesce(sum(calls) FILTER (WHERE direction IN ('Internal', 'Intersite')), 0)::bigint,
               sum(calls)::bigint, sum(answered)::bigint, sum(talk_ms)::bigint
        FROM facts
        WHERE agent_ext <> '' AND ($9::text[] IS NULL OR agent_ext = ANY($9))
        GROUP BY agent_ext HAVING sum(calls) <> 0"
    );
    let rows = query_facts(client, tenant, window, &sql, &[&extensions]).await?;
    Ok(rows
        .iter()
        .map(|r| AgentTotals {
            extension: r.get(0),
            inbound: r.get(1),
            outbound: r.get(2),
            internal: r.get(3),
            total: r.get(4),
            answered: r.get(5),
            talk_ms: r.get(6),
        })
        .collect())
}

/// What calls are summed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum By {
    /// Inbound calls, by the number dialled (`''` for none).
    Dnis,
    /// Calls with a group, by group.
    Group,
    /// Calls with account codes, by code.
    AccountCode,
}

/// Calls of one key (a DNIS, a group, an account code).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    pub key: String,
    pub calls: i64,
    pub answered: i64,
    pub talk_ms: i64,
    pub duration_ms: i64,
}

/// The calls in `scope`, summed `by`, ordered by key.
pub async fn totals(
    client: &impl GenericClient,
    tenant: TenantId,
    window: Window,
    scope: &CallScope,
    by: By,
) -> anyhow::Result<Vec<Totals>> {
    let (facts, key, condition) = match by {
        By::Dnis => (CALL_FACTS, "dnis", "direction = 'Inbound'"),
        By::Group => (CALL_FACTS, "call_group", "call_group <> ''"),
        By::AccountCode => (CODE_FACTS, "account_code", "true"),
    };
    let scoped = scope_condition("agent_ext", "call_group", 9);
    let sql = format!(
        "{facts}
        SELECT {key}, sum(calls)::bigint, sum(answered)::bigint, sum(talk_ms)::bigint,
               sum(duration_ms)::bigint
        FROM facts WHERE {condition} AND {scoped}
        GROUP BY {key} HAVING sum(calls) <> 0 ORDER BY {key}"
    );
    let (access_ext, access_groups) = lists(&scope.access);
    let (rows_ext, rows_groups) = lists(&scope.rows);
    let rows = query_facts(
        client,
        tenant,
        window,
        &sql,
        &[&access_ext, &access_groups, &rows_ext, &rows_groups],
    )
    .await?;
    Ok(rows
        .iter()
        .map(|r| Totals {
            key: r.get(0),
            calls: r.get(1),
            answered: r.get(2),
            talk_ms: r.get(3),
            duration_ms: r.get(4),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn a_window_is_cut_at_whole_hours() {
        let s = split(Window {
            from: at("2026-11-09T06:00:00Z"),
            until: at("2026-11-11T06:00:00.5Z"),
        });
        assert_eq!(
            s.whole,
            (at("2026-11-09T06:00:00Z"), at("2026-11-11T06:00:00Z"))
        );
        assert_eq!(s.head.0, s.head.1, "nothing before the first whole hour");
        assert_eq!(
            s.tail,
            (at("2026-11-11T06:00:00Z"), at("2026-11-11T06:00:00.5Z"))
        );
        assert_eq!(s.first_month, NaiveDate::from_ymd_opt(2026, 11, 1).unwrap());

        let s = split(Window {
            from: at("2026-11-09T05:30:00Z"),
            until: at("2026-11-09T07:15:00Z"),
        });
        assert_eq!(
            s.whole,
            (at("2026-11-09T06:00:00Z"), at("2026-11-09T07:00:00Z"))
        );
        assert_eq!(
            s.head,
            (at("2026-11-09T05:30:00Z"), at("2026-11-09T06:00:00Z"))
        );
        assert_eq!(
            s.tail,
            (at("2026-11-09T07:00:00Z"), at("2026-11-09T07:15:00Z"))
        );

        // Within one hour: all from the calls.
        let s = split(Window {
            from: at("2026-11-09T05:10:00Z"),
            until: at("2026-11-09T05:50:00Z"),
        });
        assert_eq!(s.whole.0, s.whole.1);
        assert_eq!(
            s.head,
            (at("2026-11-09T05:10:00Z"), at("2026-11-09T05:50:00Z"))
        );
        assert_eq!(s.tail.0, s.tail.1);
    }
}
