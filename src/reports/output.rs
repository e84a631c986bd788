//! A computed report in the reference's shape: JSON exactly as its example answer, CSV
//! (a line per row, then the summary), or a printable HTML page (askama, escaped, no
//! script).

use askama::Template;
use chrono_tz::Tz;
use serde::Serialize;
use uuid::Uuid;

use super::table::{Format, RowValues, SummaryItem, Table};
use crate::calls::cdr::defuse;
use crate::domain::{ReportTemplate, Timeframe};

/// What the answer says about the run.
pub struct Heading {
    /// The reference's `reportId`.
    pub report_id: i64,
    /// A new UUID every run.
    pub execution_id: Uuid,
    pub template: ReportTemplate,
    pub timeframe: Timeframe,
}

/// The reference's `skin`: how its client draws the report.
const SKIN: &str = "cidgate";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Answer<'a> {
    report_id: i64,
    execution_id: Uuid,
    title: &'static str,
    timeframe: Echo,
    skin: &'static str,
    columns: Vec<ColumnOut>,
    data_flag: &'static str,
    summary_items: &'a [SummaryItem],
    rows: Vec<RowValues<'a>>,
    charts: Charts,
}

#[derive(Serialize)]
struct Echo {
    #[serde(rename = "type")]
    kind: &'static str,
    start: String,
    end: String,
}

#[derive(Serialize)]
struct ColumnOut {
    key: String,
    title: &'static str,
    format: Format,
}

#[derive(Serialize)]
struct Charts {
    #[serde(rename = "type")]
    kind: &'static str,
    rows: [(); 0],
}

/// The JSON answer.
pub fn json(heading: &Heading, table: &Table) -> serde_json::Result<Vec<u8>> {
    let answer = Answer {
        report_id: heading.report_id,
        execution_id: heading.execution_id,
        title: heading.template.title(),
        timeframe: Echo {
            kind: "REPORT_TIMEFRAME",
            start: heading.timeframe.echo_start(),
            end: heading.timeframe.echo_end(),
        },
        skin: SKIN,
        columns: table
            .columns
            .iter()
            .enumerate()
            .map(|(key, c)| ColumnOut {
                key: key.to_string(),
                title: c.title,
                format: c.format,
            })
            .collect(),
        data_flag: "INCLUDED",
        summary_items: &table.summary,
        rows: table.rows.iter().map(|r| RowValues(r)).collect(),
        charts: Charts {
            kind: "CHARTS",
            rows: [],
        },
    };
    serde_json::to_vec(&answer)
}

/// CSV: the column titles, a line per row (values as people read them: `3:31:13`),
/// an empty line, then a `title,value` line per summary item. A text a spreadsheet
/// would run as a formula gets a leading `'`.
pub fn csv(table: &Table) -> anyhow::Result<Vec<u8>> {
    let mut out = csv::WriterBuilder::new()
        .flexible(true)
        .from_writer(Vec::new());
    out.write_record(table.columns.iter().map(|c| defuse(c.title)))?;
    for row in &table.rows {
        out.write_record(row.iter().map(|cell| defuse(&cell.shown())))?;
    }
    let mut body = out
        .into_inner()
        .map_err(|e| anyhow::anyhow!("writing CSV: {e}"))?;
    body.extend_from_slice(b"\n");
    let mut out = csv::Writer::from_writer(body);
    for item in &table.summary {
        out.write_record([defuse(item.title), defuse(&item.cell.shown())])?;
    }
    out.into_inner()
        .map_err(|e| anyhow::anyhow!("writing CSV: {e}"))
}

/// The page's stylesheet: the screen pop's, from this gateway (`/pop/style.css`),
/// relative so it works under any path prefix of the public URL.
const CSS_HREF: &str = "../../../../pop/style.css";

#[derive(Template)]
#[template(path = "report.html")]
struct Page<'a> {
    css_href: &'static str,
    title: &'static str,
    report_id: i64,
    execution_id: String,
    start: String,
    end: String,
    zone: &'a str,
    summary: Vec<(&'static str, String)>,
    /// Each column's title and whether it holds numbers (right-aligned).
    columns: Vec<(&'static str, bool)>,
    rows: Vec<Vec<(String, bool)>>,
}

/// The printable page.
pub fn html(heading: &Heading, table: &Table, zone: Tz) -> askama::Result<String> {
    let numeric: Vec<bool> = table
        .columns
        .iter()
        .map(|c| {
            matches!(
                c.format,
                Format::Number | Format::Duration | Format::Percent
            )
        })
        .collect();
    Page {
        css_href: CSS_HREF,
        title: heading.template.title(),
        report_id: heading.report_id,
        execution_id: heading.execution_id.to_string(),
        start: heading.timeframe.echo_start(),
        end: heading.timeframe.echo_end(),
        zone: zone.name(),
        summary: table
            .summary
            .iter()
            .map(|i| (i.title, i.cell.shown()))
            .collect(),
        columns: table
            .columns
            .iter()
            .zip(&numeric)
            .map(|(c, n)| (c.title, *n))
            .collect(),
        rows: table
            .rows
            .iter()
            .map(|row| {
                row.iter()
                    .zip(&numeric)
                    .map(|(c, n)| (c.shown(), *n))
                    .collect()
            })
            .collect(),
    }
    .render()
}

#[cfg(test)]
mod tests {
    use super::super::table::{Cell, column, item};
    use super::*;

    fn table() -> Table {
        Table {
            columns: vec![
                column("Agent", Format::String),
                column("Total Talking", Format::Duration),
            ],
            rows: vec![vec![Cell::text("=cmd()"), Cell::duration(12_673_424)]],
            summary: vec![item("Agents", Cell::count(1), Format::Number)],
        }
    }

    #[test]
    fn csv_has_a_line_per_row_then_the_summary() {
        let body = String::from_utf8(csv(&table()).unwrap()).unwrap();
        assert_eq!(body, "Agent,Total Talking\n'=cmd(),3:31:13\n\nAgents,1\n");
    }

    #[test]
    fn the_page_escapes_what_it_shows() {
        let mut t = table();
        t.rows[0][0] = Cell::text("<script>alert(1)</script>");
        let heading = Heading {
            report_id: 1,
            execution_id: Uuid::nil(),
            template: ReportTemplate::AgentTalkingSummary,
            timeframe: Timeframe::new(
                chrono::DateTime::parse_from_rfc3339("2026-11-10T00:00:00-06:00").unwrap(),
                chrono::DateTime::parse_from_rfc3339("2026-11-10T23:59:59-06:00").unwrap(),
            )
            .unwrap(),
        };
        let page = html(&heading, &t, Tz::UTC).unwrap();
        assert!(!page.contains("<script"));
        assert!(page.contains("script&#62;alert(1)&#60;/script"), "{page}");
        assert!(page.contains("3:31:13"));
    }
}
