//! What reports sum: `call_stats` (sql/V17) holds figures per UTC day and per UTC hour,
//! so a timeframe sums its whole days, the whole hours at its ends, and the calls of
//! its partial hours (a month of ten million calls: some tens of thousands of rows).
//! Only ended calls count, by the time they started. (store::report_rows reads rows
//! one by one.)

use anyhow::Context;
use chrono::{DateTime, Datelike, DurationRound, NaiveDate, Utc};
use deadpool_postgres::GenericClient;
use tokio_postgres::types::ToSql;

use crate::domain::TenantId;
use crate::domain::{AgentTotals, By, CallScope, Totals, Window};

type Range = (DateTime<Utc>, DateTime<Utc>);

/// The window cut at whole UTC days and hours: `days` from the daily figures, `hours`
/// from the hourly ones, `calls` (the partial hours at the ends) from the calls
/// themselves. `first_month`: no call that started in the window lives in an earlier
/// month's partition (a call's month is that of its first event, and its start never
/// moves later), so older partitions are skipped.
pub(super) struct Split {
    days: Range,
    hours: [Range; 2],
    calls: [Range; 2],
    pub(super) first_month: NaiveDate,
}

/// The whole `unit`s within `[from, until)`, if any.
fn whole(from: DateTime<Utc>, until: DateTime<Utc>, unit: chrono::Duration) -> Option<Range> {
    let floor = |t: DateTime<Utc>| t.duration_trunc(unit).unwrap_or(t);
    let start = if floor(from) == from {
        from
    } else {
        floor(from) + unit
    };
    let end = floor(until);
    (start < end).then_some((start, end))
}

pub(super) fn split(w: Window) -> Split {
    let empty = (w.from, w.from);
    let first_month = NaiveDate::from_ymd_opt(w.from.year(), w.from.month(), 1)
        .expect("the first of a month exists");
    let Some((h0, h1)) = whole(w.from, w.until, chrono::Duration::hours(1)) else {
        return Split {
            days: empty,
            hours: [empty, empty],
            calls: [(w.from, w.until), empty],
            first_month,
        };
    };
    let calls = [(w.from, h0), (h1, w.until)];
    match whole(h0, h1, chrono::Duration::days(1)) {
        None => Split {
            days: empty,
            hours: [(h0, h1), empty],
            calls,
            first_month,
        },
        Some((d0, d1)) => Split {
            days: (d0, d1),
            hours: [(h0, d0), (d1, h1)],
            calls,
            first_month,
        },
    }
}

/// `$1` tenant, `$2`-`$11` the split, `$12` the first month; the facts' columns are
/// named as in `call_stats`. More parameters start at `$13`.
const CALL_FACTS: &str = "WITH facts AS (
        SELECT agent_ext, call_group, direction, dnis, calls, answered, talk_ms, duration_ms
        FROM call_stats
        WHERE tenant_id = $1 AND daily AND bucket >= $2 AND bucket < $3 AND month >= $12
        UNION ALL
        SELECT agent_ext, call_group, direction, dnis, calls, answered, talk_ms, duration_ms
        FROM call_stats
        WHERE tenant_id = $1 AND NOT daily AND month >= $12
          AND (bucket >= $4 AND bucket < $5 OR bucket >= $6 AND bucket < $7)
        UNION ALL
        SELECT coalesce(agent_extension(agent), ''), coalesce(call_group, ''),
               coalesce(direction, ''), coalesce(dnis, ''), 1,
               CASE WHEN outcome = 'answered' THEN 1 ELSE 0 END,
               CASE WHEN outcome = 'answered' THEN coalesce(talk_ms, 0) ELSE 0 END,
               coalesce(duration_ms, 0)
        FROM calls
        WHERE tenant_id = $1 AND ended_at IS NOT NULL AND month >= $12
          AND (started_at >= $8 AND started_at < $9 OR started_at >= $10 AND started_at < $11)
    )";

/// The same per account code (`call_code_stats`): a call counts under each of its codes.
const CODE_FACTS: &str = "WITH facts AS (
        SELECT account_code, agent_ext, call_group, calls, answered, talk_ms, duration_ms
        FROM call_code_stats
        WHERE tenant_id = $1 AND daily AND bucket >= $2 AND bucket < $3 AND month >= $12
        UNION ALL
        SELECT account_code, agent_ext, call_group, calls, answered, talk_ms, duration_ms
        FROM call_code_stats
        WHERE tenant_id = $1 AND NOT daily AND month >= $12
          AND (bucket >= $4 AND bucket < $5 OR bucket >= $6 AND bucket < $7)
        UNION ALL
        SELECT code, coalesce(agent_extension(agent), ''), coalesce(call_group, ''), 1,
               CASE WHEN outcome = 'answered' THEN 1 ELSE 0 END,
               CASE WHEN outcome = 'answered' THEN coalesce(talk_ms, 0) ELSE 0 END,
               coalesce(duration_ms, 0)
        FROM calls, unnest(account_codes) AS code
        WHERE tenant_id = $1 AND ended_at IS NOT NULL AND month >= $12
          AND (started_at >= $8 AND started_at < $9 OR started_at >= $10 AND started_at < $11)
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
        &s.days.0,
        &s.days.1,
        &s.hours[0].0,
        &s.hours[0].1,
        &s.hours[1].0,
        &s.hours[1].1,
        &s.calls[0].0,
        &s.calls[0].1,
        &s.calls[1].0,
        &s.calls[1].1,
        &s.first_month,
    ];
    params.extend_from_slice(more);
    client
        .query(sql, &params)
        .await
        .context("summing calls for a report")
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
        WHERE agent_ext <> '' AND ($13::text[] IS NULL OR agent_ext = ANY($13))
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
    let scoped = scope_condition("agent_ext", "call_group", 13);
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
    fn a_window_is_cut_at_whole_days_and_hours() {
        // The reference's two local days at -06:00: whole hours at both ends, a whole
        // UTC day between, nothing from the calls.
        let s = split(Window {
            from: at("2026-11-09T06:00:00Z"),
            until: at("2026-11-11T06:00:00Z"),
        });
        assert_eq!(
            s.days,
            (at("2026-11-10T00:00:00Z"), at("2026-11-11T00:00:00Z"))
        );
        assert_eq!(
            s.hours[0],
            (at("2026-11-09T06:00:00Z"), at("2026-11-10T00:00:00Z"))
        );
        assert_eq!(
            s.hours[1],
            (at("2026-11-11T00:00:00Z"), at("2026-11-11T06:00:00Z"))
        );
        assert_eq!(s.calls[0].0, s.calls[0].1);
        assert_eq!(s.calls[1].0, s.calls[1].1);
        assert_eq!(s.first_month, NaiveDate::from_ymd_opt(2026, 11, 1).unwrap());

        // Partial hours at both ends, no whole day.
        let s = split(Window {
            from: at("2026-11-09T05:30:00Z"),
            until: at("2026-11-09T07:15:00.5Z"),
        });
        assert_eq!(s.days.0, s.days.1);
        assert_eq!(
            s.hours[0],
            (at("2026-11-09T06:00:00Z"), at("2026-11-09T07:00:00Z"))
        );
        assert_eq!(
            s.calls[0],
            (at("2026-11-09T05:30:00Z"), at("2026-11-09T06:00:00Z"))
        );
        assert_eq!(
            s.calls[1],
            (at("2026-11-09T07:00:00Z"), at("2026-11-09T07:15:00.5Z"))
        );

        // Within one hour: all from the calls.
        let s = split(Window {
            from: at("2026-11-09T05:10:00Z"),
            until: at("2026-11-09T05:50:00Z"),
        });
        assert_eq!(s.days.0, s.days.1);
        assert_eq!(s.hours[0].0, s.hours[0].1);
        assert_eq!(
            s.calls[0],
            (at("2026-11-09T05:10:00Z"), at("2026-11-09T05:50:00Z"))
        );
    }
}
