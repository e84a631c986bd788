//! `agent-talking-summary`: the reference's example, a row per agent.
//!
//! - Inbound, Outbound Calls: the agent's ended calls of that direction; Internal Calls:
//!   `Internal` and `Intersite`; Total Calls: all of them, and calls that named no
//!   direction.
//! - Total Talking: the talk time (answer to hang-up) of the agent's answered calls;
//!   Avg Talking: that over the answered calls (the reference's 12673424 ms over 7 of 14
//!   calls is 1810489).
//! - A call is the agent's when its `agent` names the agent's extension.

use std::collections::BTreeMap;

use deadpool_postgres::GenericClient;

use super::table::{Cell, Format, Table, average, column, item};
use super::{ReportError, Run};
use crate::domain::Access;
use crate::store::{self, report_stats};

pub async fn talking_summary(
    client: &impl GenericClient,
    run: &Run<'_>,
) -> Result<Table, ReportError> {
    let tenant = run.tenant.id;
    // Each row: its extension and how it is named.
    let mut rows: Vec<(String, String)> = Vec::new();
    let named = run.agents.is_some() || run.groups.is_some();
    let totals = if named {
        let requested: Vec<String> = run
            .agents
            .iter()
            .flatten()
            .map(|a| a.extension.clone())
            .collect();
        let groups: Vec<String> = run
            .groups
            .iter()
            .flatten()
            .map(|g| g.as_str().to_owned())
            .collect();
        let known = store::agents::matching(client, tenant, &requested, &groups).await?;
        for agent in run.agents.iter().flatten() {
            let registered = known
                .iter()
                .find(|k| k.extension.as_str() == agent.extension);
            let label = match registered {
                // The key as sent names the agent (`Agent1(200)`); a bare extension gets
                // the agent's name when there is one.
                Some(registered) if agent.key == agent.extension => registered.key(),
                _ => agent.key.clone(),
            };
            push(&mut rows, &agent.extension, label);
        }
        for member in known
            .iter()
            .filter(|k| groups.iter().any(|g| k.in_group(g)))
        {
            push(&mut rows, member.extension.as_str(), member.key());
        }
        let extensions: Vec<String> = rows.iter().map(|(e, _)| e.clone()).collect();
        report_stats::agent_totals(client, tenant, run.window, Some(&extensions)).await?
    } else {
        let visible = match run.access {
            Access::Everything => None,
            Access::Limited { extensions, .. } => {
                Some(extensions.iter().cloned().collect::<Vec<_>>())
            }
        };
        let totals =
            report_stats::agent_totals(client, tenant, run.window, visible.as_deref()).await?;
        // Every agent the key sees, with calls or not, and every extension with calls.
        let mut all: BTreeMap<(usize, String), String> = BTreeMap::new();
        for agent in store::agents::list(client, tenant).await? {
            if run.access.sees_agent(agent.extension.as_str()) {
                let e = agent.extension.as_str().to_owned();
                all.insert((e.len(), e), agent.key());
            }
        }
        for t in &totals {
            all.entry((t.extension.len(), t.extension.clone()))
                .or_insert_with(|| t.extension.clone());
        }
        rows = all.into_iter().map(|((_, e), label)| (e, label)).collect();
        totals
    };

    let mut sum = crate::domain::AgentTotals::default();
    let cells: Vec<Vec<Cell>> = rows
        .iter()
        .map(|(extension, label)| {
            let t = totals
                .iter()
                .find(|t| &t.extension == extension)
                .cloned()
                .unwrap_or_default();
            sum.inbound += t.inbound;
            sum.outbound += t.outbound;
            sum.internal += t.internal;
            sum.total += t.total;
            sum.answered += t.answered;
            sum.talk_ms += t.talk_ms;
            vec![
                Cell::text(label.clone()),
                Cell::count(t.inbound),
                Cell::count(t.outbound),
                Cell::count(t.internal),
                Cell::count(t.total),
                Cell::duration(t.talk_ms),
                Cell::duration(average(t.talk_ms, t.answered)),
            ]
        })
        .collect();
    let agents = rows.len() as i64;
    let per_agent = if agents == 0 {
        0.0
    } else {
        sum.total as f64 / agents as f64
    };
    Ok(Table {
        columns: vec![
            column("Agent", Format::String),
            column("Inbound Calls", Format::Number),
            column("Outbound Calls", Format::Number),
            column("Internal Calls", Format::Number),
            column("Total Calls", Format::Number),
            column("Total Talking", Format::Duration),
            column("Avg Talking", Format::Duration),
        ],
        rows: cells,
        summary: vec![
            item("Agents", Cell::count(agents), Format::Number),
            item(
                "Total Inbound Calls",
                Cell::count(sum.inbound),
                Format::Number,
            ),
            item(
                "Total Outbound Calls",
                Cell::count(sum.outbound),
                Format::Number,
            ),
            item(
                "Total Internal Calls",
                Cell::count(sum.internal),
                Format::Number,
            ),
            item("Total Calls", Cell::count(sum.total), Format::Number),
            item("Avg Total Calls", Cell::decimal(per_agent), Format::Number),
            // The reference labels these two NUMBER although they are durations.
            item("Total Talking", Cell::duration(sum.talk_ms), Format::Number),
            item(
                "Avg Talking",
                Cell::duration(average(sum.talk_ms, sum.answered)),
                Format::Number,
            ),
        ],
    })
}

fn push(rows: &mut Vec<(String, String)>, extension: &str, label: String) {
    if !rows.iter().any(|(e, _)| e == extension) {
        rows.push((extension.to_owned(), label));
    }
}
