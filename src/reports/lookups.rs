//! `caller-identification`: the PBX lookups per day in the tenant's time zone, from the
//! lookup log. Identified: the caller was found in the mirror; Unknown: not found (or
//! no usable number); Degraded: the answer missed its deadline and was the last known
//! record or the unknown one; Screened: unknown callers answered with the tenant's
//! screening route (spam list, failed verification). Every day of the timeframe has a row, lookups or not.

use chrono::{Duration, NaiveDate};
use deadpool_postgres::GenericClient;

use super::table::{Cell, Format, Table, column, item, share};
use super::{ReportError, Run};
use crate::domain::LookupDay;
use crate::store::report_rows;

pub async fn caller_identification(
    client: &impl GenericClient,
    run: &Run<'_>,
) -> Result<Table, ReportError> {
    let counted =
        report_rows::lookup_days(client, run.tenant.id, run.window, run.zone.name()).await?;
    let first = run.window.from.with_timezone(&run.zone).date_naive();
    let last = (run.window.until - Duration::microseconds(1))
        .with_timezone(&run.zone)
        .date_naive();
    let mut days: Vec<LookupDay> = Vec::new();
    let mut day: NaiveDate = first;
    while day <= last {
        days.push(
            counted
                .iter()
                .find(|c| c.day == day)
                .copied()
                .unwrap_or(LookupDay {
                    day,
                    identified: 0,
                    unknown: 0,
                    degraded: 0,
                    screened: 0,
                }),
        );
        day = day.succ_opt().expect("days of a timeframe exist");
    }
    let (mut identified, mut unknown, mut degraded, mut screened) = (0, 0, 0, 0);
    let rows = days
        .iter()
        .map(|d| {
            identified += d.identified;
            unknown += d.unknown;
            degraded += d.degraded;
            screened += d.screened;
            let lookups = d.identified + d.unknown + d.degraded;
            vec![
                Cell::text(d.day.to_string()),
                Cell::count(lookups),
                Cell::count(d.identified),
                Cell::count(d.unknown),
                Cell::count(d.degraded),
                Cell::percent(share(d.identified, lookups)),
                Cell::count(d.screened),
            ]
        })
        .collect();
    let lookups = identified + unknown + degraded;
    Ok(Table {
        columns: vec![
            column("Day", Format::String),
            column("Lookups", Format::Number),
            column("Identified", Format::Number),
            column("Unknown", Format::Number),
            column("Degraded", Format::Number),
            column("Identified Share", Format::Percent),
            column("Screened", Format::Number),
        ],
        rows,
        summary: vec![
            item("Days", Cell::count(days.len() as i64), Format::Number),
            item("Total Lookups", Cell::count(lookups), Format::Number),
            item("Total Identified", Cell::count(identified), Format::Number),
            item("Total Unknown", Cell::count(unknown), Format::Number),
            item("Total Degraded", Cell::count(degraded), Format::Number),
            item(
                "Identified Share",
                Cell::percent(share(identified, lookups)),
                Format::Percent,
            ),
            item("Total Screened", Cell::count(screened), Format::Number),
        ],
    })
}
