//! The monthly partitions of the call tables: created ahead of the calls that need them,
//! dropped once every call in them is past retention.

use crate::domain::PartitionChanges;
use anyhow::Context;
use chrono::{Datelike, Months, NaiveDate};
use deadpool_postgres::GenericClient;

/// The partitioned call tables; each month has one partition of each, `<table>_yYYYYmMM`.
/// `call_stats` and `call_code_stats` hold the report figures of the month's calls.
const TABLES: [&str; 5] = [
    "calls",
    "call_keys",
    "call_events",
    "call_stats",
    "call_code_stats",
];
/// Months created ahead of the current one.
const MONTHS_AHEAD: u32 = 2;

fn first_of_month(day: NaiveDate) -> NaiveDate {
    day.with_day(1).expect("every month has a first day")
}

fn partition_name(table: &str, month: NaiveDate) -> String {
    format!("{table}_y{:04}m{:02}", month.year(), month.month())
}

/// The month a partition name stands for, if it is one of ours.
fn partition_month(table: &str, name: &str) -> Option<NaiveDate> {
    let rest = name.strip_prefix(table)?.strip_prefix("_y")?;
    let (year, month) = rest.split_once('m')?;
    NaiveDate::from_ymd_opt(year.parse().ok()?, month.parse().ok()?, 1)
}

/// Makes sure every month from the oldest kept (`today - retention_days`) to two
/// months ahead has its partitions, and drops the partitions of months that ended more
/// than `retention_days` ago. Safe to run concurrently from several instances.
pub async fn maintain(
    client: &impl GenericClient,
    today: NaiveDate,
    retention_days: u32,
) -> anyhow::Result<PartitionChanges> {
    let oldest_kept = first_of_month(today - chrono::Days::new(retention_days.into()));
    let last = first_of_month(today) + Months::new(MONTHS_AHEAD);
    let mut changes = PartitionChanges::default();
    // One maintainer at a time: DDL from two instances would trip over each other.
    client
        .execute(
            "SELECT pg_advisory_xact_lock(hashtext('cidgate_call_partitions'))",
            &[],
        )
        .await
        .context("locking call partitions")?;
    for table in TABLES {
        let existing: Vec<String> = client
            .query(
                "SELECT c.relname FROM pg_inherits i
                 JOIN pg_class c ON c.oid = i.inhrelid
                 JOIN pg_class p ON p.oid = i.inhparent
                 WHERE p.relname = $1 AND p.relnamespace = current_schema()::regnamespace",
                &[&table],
            )
            .await
            .context("listing call partitions")?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let mut month = oldest_kept;
        while month <= last {
            let name = partition_name(table, month);
            if !existing.contains(&name) {
                let next = month + Months::new(1);
                // Names and bounds are built from dates, never from input.
                client
                    .batch_execute(&format!(
                        "CREATE TABLE IF NOT EXISTS {name} PARTITION OF {table}
                         FOR VALUES FROM ('{month}') TO ('{next}')"
                    ))
                    .await
                    .with_context(|| format!("creating partition {name}"))?;
                changes.created += 1;
            }
            month = month + Months::new(1);
        }
        for name in &existing {
            let expired = partition_month(table, name).is_some_and(|month| {
                let ended = month + Months::new(1);
                ended + chrono::Days::new(retention_days.into()) <= today
            });
            if expired {
                if table == "calls" {
                    // The tenants' call counts (`--max-calls`) lose the month's calls.
                    client
                        .batch_execute(&format!(
                            "UPDATE call_counters c SET calls = greatest(c.calls - n.calls, 0)
                             FROM (SELECT tenant_id, count(*) AS calls FROM {name}
                                   GROUP BY tenant_id) n
                             WHERE c.tenant_id = n.tenant_id"
                        ))
                        .await
                        .with_context(|| format!("counting out the calls of {name}"))?;
                }
                client
                    .batch_execute(&format!("DROP TABLE IF EXISTS {name}"))
                    .await
                    .with_context(|| format!("dropping partition {name}"))?;
                changes.dropped += 1;
            }
        }
    }
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_names_round_trip() {
        let month = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
        let name = partition_name("call_events", month);
        assert_eq!(name, "call_events_y2026m03");
        assert_eq!(partition_month("call_events", &name), Some(month));
        assert_eq!(partition_month("calls", &name), None);
        assert_eq!(partition_month("calls", "calls_default"), None);
    }
}
