//! The templates over calls by something other than the agent: `calls-by-dnis`,
//! `missed-calls-by-group`, `account-code-usage`, and `call-detail` (a row per call).
//! Each counts the ended calls that started in the timeframe, of the agents and groups
//! the key sees, and of the requested agents and groups when the request names rows.

use deadpool_postgres::GenericClient;

use super::table::{Cell, Format, Table, average, column, item, share};
use super::{ReportError, Run};
use crate::domain::{By, Totals};
use crate::store::report_rows;
use crate::store::report_stats;

/// Most calls a `call-detail` report lists; a timeframe with more is refused.
pub const MAX_DETAIL_CALLS: i64 = 100_000;

fn sum(totals: &[Totals]) -> Totals {
    totals.iter().fold(Totals::default(), |mut s, t| {
        s.calls += t.calls;
        s.answered += t.answered;
        s.talk_ms += t.talk_ms;
        s.duration_ms += t.duration_ms;
        s
    })
}

/// Inbound calls per number dialled: answered, missed, talk time.
pub async fn by_dnis(client: &impl GenericClient, run: &Run<'_>) -> Result<Table, ReportError> {
    let totals =
        report_stats::totals(client, run.tenant.id, run.window, &run.scope(), By::Dnis).await?;
    let all = sum(&totals);
    let rows = totals
        .iter()
        .map(|t| {
            vec![
                Cell::text(t.key.clone()),
                Cell::count(t.calls),
                Cell::count(t.answered),
                Cell::count(t.calls - t.answered),
                Cell::duration(t.talk_ms),
                Cell::duration(average(t.talk_ms, t.answered)),
            ]
        })
        .collect();
    Ok(Table {
        columns: vec![
            column("DNIS", Format::String),
            column("Inbound Calls", Format::Number),
            column("Answered Calls", Format::Number),
            column("Missed Calls", Format::Number),
            column("Total Talking", Format::Duration),
            column("Avg Talking", Format::Duration),
        ],
        rows,
        summary: vec![
            item("DNIS", Cell::count(totals.len() as i64), Format::Number),
            item(
                "Total Inbound Calls",
                Cell::count(all.calls),
                Format::Number,
            ),
            item(
                "Total Answered Calls",
                Cell::count(all.answered),
                Format::Number,
            ),
            item(
                "Total Missed Calls",
                Cell::count(all.calls - all.answered),
                Format::Number,
            ),
            item(
                "Total Talking",
                Cell::duration(all.talk_ms),
                Format::Duration,
            ),
            item(
                "Avg Talking",
                Cell::duration(average(all.talk_ms, all.answered)),
                Format::Duration,
            ),
        ],
    })
}

/// Calls per group: how many were answered and missed; requested groups without calls
/// show with zeros.
pub async fn missed_by_group(
    client: &impl GenericClient,
    run: &Run<'_>,
) -> Result<Table, ReportError> {
    let mut totals =
        report_stats::totals(client, run.tenant.id, run.window, &run.scope(), By::Group).await?;
    for group in run.groups.iter().flatten() {
        if !totals.iter().any(|t| t.key == group.as_str()) {
            totals.push(Totals {
                key: group.as_str().to_owned(),
                ..Totals::default()
            });
        }
    }
    totals.sort_by(|a, b| a.key.cmp(&b.key));
    let all = sum(&totals);
    let rows = totals
        .iter()
        .map(|t| {
            vec![
                Cell::text(t.key.clone()),
                Cell::count(t.calls),
                Cell::count(t.answered),
                Cell::count(t.calls - t.answered),
                Cell::percent(share(t.calls - t.answered, t.calls)),
            ]
        })
        .collect();
    Ok(Table {
        columns: vec![
            column("Group", Format::String),
            column("Total Calls", Format::Number),
            column("Answered Calls", Format::Number),
            column("Missed Calls", Format::Number),
            column("Missed Share", Format::Percent),
        ],
        rows,
        summary: vec![
            item("Groups", Cell::count(totals.len() as i64), Format::Number),
            item("Total Calls", Cell::count(all.calls), Format::Number),
            item(
                "Total Missed Calls",
                Cell::count(all.calls - all.answered),
                Format::Number,
            ),
            item(
                "Missed Share",
                Cell::percent(share(all.calls - all.answered, all.calls)),
                Format::Percent,
            ),
        ],
    })
}

/// Calls, duration and talk time per account code, for billing by account. A call with
/// two codes counts under each, so the summary's calls may exceed the calls made.
pub async fn account_codes(
    client: &impl GenericClient,
    run: &Run<'_>,
) -> Result<Table, ReportError> {
    let totals = report_stats::totals(
        client,
        run.tenant.id,
        run.window,
        &run.scope(),
        By::AccountCode,
    )
    .await?;
    let all = sum(&totals);
    let rows = totals
        .iter()
        .map(|t| {
            vec![
                Cell::text(t.key.clone()),
                Cell::count(t.calls),
                Cell::count(t.answered),
                Cell::duration(t.duration_ms),
                Cell::duration(t.talk_ms),
                Cell::duration(average(t.talk_ms, t.answered)),
            ]
        })
        .collect();
    Ok(Table {
        columns: vec![
            column("Account Code", Format::String),
            column("Calls", Format::Number),
            column("Answered Calls", Format::Number),
            column("Total Duration", Format::Duration),
            column("Total Talking", Format::Duration),
            column("Avg Talking", Format::Duration),
        ],
        rows,
        summary: vec![
            item(
                "Account Codes",
                Cell::count(totals.len() as i64),
                Format::Number,
            ),
            item("Total Calls", Cell::count(all.calls), Format::Number),
            item(
                "Total Duration",
                Cell::duration(all.duration_ms),
                Format::Duration,
            ),
            item(
                "Total Talking",
                Cell::duration(all.talk_ms),
                Format::Duration,
            ),
        ],
    })
}

/// A row per call, oldest first, for billing systems; times in the tenant's zone.
pub async fn detail(client: &impl GenericClient, run: &Run<'_>) -> Result<Table, ReportError> {
    let calls = report_rows::calls(
        client,
        run.tenant.id,
        run.window,
        &run.scope(),
        MAX_DETAIL_CALLS + 1,
    )
    .await?;
    if calls.len() as i64 > MAX_DETAIL_CALLS {
        return Err(ReportError::BadRequest(format!(
            "the timeframe has more than {MAX_DETAIL_CALLS} calls, more than a call-detail \
             report lists: ask for a shorter one"
        )));
    }
    let (mut answered, mut duration, mut talk) = (0, 0, 0);
    let text = |s: &Option<String>| Cell::text(s.clone().unwrap_or_default());
    let rows = calls
        .iter()
        .map(|c| {
            let (call_ms, talk_ms) = (c.duration_ms.unwrap_or(0), c.counted_talk_ms());
            answered += i64::from(c.outcome == "answered");
            duration += call_ms;
            talk += talk_ms;
            vec![
                Cell::count(c.report_call_id),
                Cell::text(c.call_id.to_string()),
                Cell::time(c.started_at, run.zone),
                text(&c.direction),
                text(&c.agent),
                text(&c.group),
                text(&c.caller_number),
                text(&c.caller_name),
                text(&c.dnis),
                text(&c.external_number),
                Cell::text(c.account_codes.join(",")),
                Cell::text(c.outcome.clone()),
                Cell::duration(call_ms),
                Cell::duration(talk_ms),
            ]
        })
        .collect();
    let total = calls.len() as i64;
    Ok(Table {
        columns: vec![
            column("Report Call ID", Format::Number),
            column("Call ID", Format::String),
            column("Start Time", Format::DateTime),
            column("Direction", Format::String),
            column("Agent", Format::String),
            column("Group", Format::String),
            column("Caller", Format::String),
            column("Caller Name", Format::String),
            column("DNIS", Format::String),
            column("External Number", Format::String),
            column("Account Codes", Format::String),
            column("Outcome", Format::String),
            column("Duration", Format::Duration),
            column("Talking", Format::Duration),
        ],
        rows,
        summary: vec![
            item("Calls", Cell::count(total), Format::Number),
            item("Answered Calls", Cell::count(answered), Format::Number),
            item(
                "Missed Calls",
                Cell::count(total - answered),
                Format::Number,
            ),
            item("Total Duration", Cell::duration(duration), Format::Duration),
            item("Total Talking", Cell::duration(talk), Format::Duration),
        ],
    })
}
