//! `cidgate import`: a CRM export as CSV into a tenant's mirror, through the same
//! validation and write path as the sync API.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::Read;
use std::rc::Rc;

use anyhow::{Context, bail};
use serde_json::{Map, Value};

use super::validate_in_parallel;
use crate::domain::{
    ContactInput, CrmId, FieldError, FieldKind, Region, RoutingField, WriteOp, WriteResult,
};

/// Columns the file may have; `id`, `name` and `phones` are required. `updated_at` is the
/// source's time of the row (as in the sync API), by which an older row is stale.
pub const COLUMNS: [&str; RoutingField::COUNT + 4] =
    RoutingField::names_between(&["id", "name", "phones"], &["updated_at"]);
const REQUIRED: &[&str] = &["id", "name", "phones"];

/// A row that could not be imported, by its line number in the file.
#[derive(Debug, PartialEq)]
pub struct RejectedRow {
    pub line: u64,
    pub errors: Vec<FieldError>,
}

/// A piece of the parsed file: the writes to apply and the rows left out.
#[derive(Debug, Default)]
pub struct ParsedImport {
    pub ops: Vec<WriteOp>,
    pub rejected: Vec<RejectedRow>,
}

/// Parses the whole file before anything is written. A malformed file (bad header,
/// broken quoting, wrong number of fields, not UTF-8) is an error; rows with invalid
/// values are rejected one by one.
pub fn parse_csv(reader: impl Read, region: Region) -> anyhow::Result<ParsedImport> {
    let mut parsed = ParsedImport::default();
    read_csv(reader, region, 1_000, |mut piece| {
        parsed.ops.append(&mut piece.ops);
        parsed.rejected.append(&mut piece.rejected);
        Ok(())
    })?;
    Ok(parsed)
}

/// Reads the file in pieces of `rows` rows, handing each piece, in file order, to
/// `each` (which may write it while the next is parsed). Validating a row (above all
/// its phone numbers) costs more than reading it, so each piece is validated on every
/// core. A malformed file is an error at the first malformed line, after the pieces
/// before it were handed over: callers that must write all or nothing write in one
/// transaction and drop it then.
pub fn read_csv(
    reader: impl Read,
    region: Region,
    rows: usize,
    mut each: impl FnMut(ParsedImport) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let (reader, lines) = LineIndex::new(reader);
    let mut csv = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(reader);
    let headers = csv.headers().context("reading the header row")?.clone();
    let mut columns: Vec<&str> = Vec::with_capacity(headers.len());
    for name in &headers {
        // Exports write `ID` or `Phones` as often as `id`.
        let Some(column) = COLUMNS.iter().find(|c| c.eq_ignore_ascii_case(name)) else {
            if headers.len() == 1 && name.contains([';', '\t']) {
                bail!(
                    "line 1: the header `{name}` is one column: the file is separated by \
                     semicolons or tabs; cidgate reads comma-separated files (columns: {})",
                    COLUMNS.join(",")
                );
            }
            bail!(
                "line 1: unknown column `{name}`; expected columns: {}",
                COLUMNS.join(",")
            );
        };
        if columns.contains(column) {
            bail!("line 1: column `{column}` appears twice");
        }
        columns.push(column);
    }
    lines.check_quoting_up_to(1)?;
    if let Some(missing) = REQUIRED.iter().find(|r| !columns.contains(r)) {
        bail!("line 1: the required column `{missing}` is missing");
    }

    let rows = rows.max(1);
    let mut records = csv.records();
    loop {
        let mut piece = Vec::with_capacity(rows);
        for record in records.by_ref().take(rows) {
            let record = record.map_err(|e| {
                // The reader's own message repeats its (different) line count.
                let problem = match e.kind() {
                    csv::ErrorKind::UnequalLengths {
                        expected_len, len, ..
                    } => format!("{len} cells where the header has {expected_len}"),
                    csv::ErrorKind::Utf8 { .. } => "not valid UTF-8".to_owned(),
                    _ => e.to_string(),
                };
                match e.position() {
                    Some(p) => anyhow::anyhow!("line {}: {problem}", lines.line_of(p.byte())),
                    None => anyhow::anyhow!("{problem}"),
                }
            })?;
            let line = record.position().map_or(0, |p| lines.line_of(p.byte()));
            lines.check_quoting_up_to(line)?;
            // None of the columns holds several lines: a cell that does is a quote left
            // open, which swallowed the rows after it.
            if record.iter().any(|cell| cell.contains(['\n', '\r'])) {
                bail!("line {line}: a quoted cell runs over several lines (a quote left open?)");
            }
            piece.push((line, record));
        }
        if piece.is_empty() {
            return lines.check_quoting_up_to(u64::MAX);
        }
        each(validate(&columns, piece, region))?;
    }
}

/// [`read_csv`] on a blocking thread, a piece ahead of `each` (an async writer): a
/// bounded channel keeps the parser from running further ahead. `each` gets the pieces
/// in file order; an error of `each` stops the parser, and a malformed file is an error
/// marked [`MalformedCsv`] once every piece before its first malformed line was handed
/// over.
pub async fn stream_csv<R: Read + Send + 'static>(
    source: R,
    region: Region,
    rows: usize,
    mut each: impl AsyncFnMut(ParsedImport) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let (pieces, mut parsed) = tokio::sync::mpsc::channel::<ParsedImport>(1);
    let parser = tokio::task::spawn_blocking(move || {
        read_csv(source, region, rows, |piece| {
            pieces
                .blocking_send(piece)
                .map_err(|_| anyhow::anyhow!("the writer stopped taking pieces"))
        })
    });
    while let Some(piece) = parsed.recv().await {
        each(piece).await?;
    }
    parser
        .await
        .context("the CSV parser failed")?
        .context(MalformedCsv)
}

/// Marks the error of a file that could not be read as CSV (its cause says where).
#[derive(Debug, Clone, Copy)]
pub struct MalformedCsv;

impl std::fmt::Display for MalformedCsv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the CSV is malformed; nothing was imported")
    }
}

/// Where the lines of the file start, for reporting rows by their line: the CSV
/// reader's own count skips blank lines and counts a CRLF file's lines one short.
/// Records are read in order, so offsets behind the last one asked about are dropped.
#[derive(Clone)]
struct LineIndex {
    state: Rc<RefCell<LineState>>,
}

#[derive(Default)]
struct LineState {
    read: u64,
    /// Byte offsets of the newlines read but not yet passed by a record, and whether
    /// the line each one ends is blank (nothing but a CR).
    newlines: VecDeque<(u64, bool)>,
    passed: u64,
    /// Bytes other than CR since the last newline.
    line_len: u64,
    lines_read: u64,
    quoting: Quoting,
    /// The first line with broken quoting, and what is wrong with it.
    broken: Option<(u64, &'static str)>,
}

/// Where the reader is in a cell, to refuse what RFC 4180 calls broken quoting: the csv
/// reader itself takes `"bad"x` as `badx` and `ab"c` as it stands.
#[derive(Default, Clone, Copy, PartialEq, Eq)]
enum Quoting {
    #[default]
    CellStart,
    Unquoted,
    Quoted,
    /// A quote inside a quoted cell: its end, or the first of a doubled quote.
    QuoteInQuoted,
}

impl Quoting {
    fn next(self, byte: u8) -> Result<Self, &'static str> {
        let ends_cell = matches!(byte, b',' | b'\n' | b'\r');
        Ok(match (self, byte) {
            (Self::CellStart, b'"') => Self::Quoted,
            (Self::CellStart | Self::Unquoted, _) if ends_cell => Self::CellStart,
            (Self::Unquoted, b'"') => {
                return Err(
                    "a quote inside a cell that does not start with one (quote the cell and double the quote)",
                );
            }
            (Self::CellStart | Self::Unquoted, _) => Self::Unquoted,
            (Self::Quoted, b'"') => Self::QuoteInQuoted,
            (Self::Quoted, _) => Self::Quoted,
            (Self::QuoteInQuoted, b'"') => Self::Quoted,
            (Self::QuoteInQuoted, _) if ends_cell => Self::CellStart,
            (Self::QuoteInQuoted, _) => return Err("text after a cell's closing quote"),
        })
    }
}

struct CountingReader<R> {
    inner: R,
    lines: LineIndex,
}

impl LineIndex {
    fn new<R: Read>(inner: R) -> (CountingReader<R>, Self) {
        let lines = Self {
            state: Rc::default(),
        };
        let reader = CountingReader {
            inner,
            lines: lines.clone(),
        };
        (reader, lines)
    }

    /// The 1-based line of a record the CSV reader says starts at `offset`. That may be
    /// the newline before it (the LF of a CRLF), which still belongs to the line above,
    /// or the start of blank lines the reader skipped, which a record never is on.
    fn line_of(&self, offset: u64) -> u64 {
        let mut state = self.state.borrow_mut();
        while let Some(&(at, blank)) = state.newlines.front() {
            if at > offset && !blank {
                break;
            }
            state.newlines.pop_front();
            state.passed += 1;
        }
        state.passed + 1
    }

    /// Fails when quoting is broken on `line` or before it.
    fn check_quoting_up_to(&self, line: u64) -> anyhow::Result<()> {
        match self.state.borrow().broken {
            Some((at, problem)) if at <= line => bail!("line {at}: {problem}"),
            _ => Ok(()),
        }
    }
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut state = self.lines.state.borrow_mut();
        let start = state.read;
        for (i, &byte) in buf[..n].iter().enumerate() {
            match state.quoting.next(byte) {
                Ok(next) => state.quoting = next,
                Err(problem) => {
                    // Reported when the reader reaches that line (it reads ahead).
                    let line = state.lines_read + 1;
                    state.broken.get_or_insert((line, problem));
                    state.quoting = Quoting::Unquoted;
                }
            }
            match byte {
                b'\n' => {
                    let blank = state.line_len == 0;
                    state.newlines.push_back((start + i as u64, blank));
                    state.line_len = 0;
                    state.lines_read += 1;
                }
                b'\r' => {}
                _ => state.line_len += 1,
            }
        }
        state.read += n as u64;
        Ok(n)
    }
}

/// Validates records on every core; the result keeps their order.
fn validate(
    columns: &[&str],
    records: Vec<(u64, csv::StringRecord)>,
    region: Region,
) -> ParsedImport {
    let (ops, rejected) = validate_in_parallel(records, |(line, record), _| {
        let row: Map<String, Value> = columns
            .iter()
            .zip(record.iter())
            .map(|(column, value)| (column.to_string(), cell(column, value)))
            .collect();
        parse_row(&row, region).map_err(|errors| RejectedRow { line, errors })
    });
    ParsedImport { ops, rejected }
}

/// A CSV cell as the JSON value the sync API would have received.
fn cell(column: &str, value: &str) -> Value {
    let integer = || {
        RoutingField::named(column).is_some_and(|f| matches!(f.kind(), FieldKind::Integer { .. }))
    };
    match column {
        _ if value.is_empty() => Value::Null,
        "phones" => Value::Array(
            value
                .split(';')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(|p| Value::String(p.to_owned()))
                .collect(),
        ),
        _ if integer() => value
            .parse::<i64>()
            .map_or_else(|_| Value::String(value.to_owned()), Value::from),
        _ => Value::String(value.to_owned()),
    }
}

fn parse_row(row: &Map<String, Value>, region: Region) -> Result<WriteOp, Vec<FieldError>> {
    let id = match row.get("id") {
        Some(Value::String(raw)) => {
            CrmId::parse_for_upsert(raw).map_err(|e| FieldError::new("id", e))
        }
        _ => Err(FieldError::new("id", "is required")),
    };
    WriteOp::upsert(id, ContactInput::from_json(row, region, &["id"]))
}

/// Counts of what an import (or a snapshot) did, for its report. Rows older than the
/// stored contact are `stale`: kept as stored (and, in a snapshot, not deleted).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ImportCounts {
    pub created: usize,
    pub updated: usize,
    pub stale: usize,
    /// Contacts a snapshot did not name.
    pub deleted: usize,
}

impl ImportCounts {
    pub fn from_results(results: &[WriteResult]) -> Self {
        let mut counts = Self::default();
        for result in results {
            match result {
                WriteResult::Created => counts.created += 1,
                WriteResult::Updated => counts.updated += 1,
                WriteResult::Stale => counts.stale += 1,
                WriteResult::Deleted => counts.deleted += 1,
                WriteResult::Absent => {}
            }
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> anyhow::Result<ParsedImport> {
        parse_csv(text.as_bytes(), Region::parse("RO").unwrap())
    }

    #[test]
    fn good_rows_become_upserts_and_bad_rows_are_reported_by_line() {
        let parsed = parse(
            "id,name,phones,queue_position\n\
             1,Ana,0721234567;+40 722 000 001,5\n\
             2,,0721234568,\n\
             3,Bob,0721234569,many\n\
             4,Cy,0721234570,\n",
        )
        .unwrap();
        assert_eq!(parsed.ops.len(), 2);
        let lines: Vec<u64> = parsed.rejected.iter().map(|r| r.line).collect();
        assert_eq!(lines, [3, 4]);
        assert_eq!(parsed.rejected[0].errors[0].field, "name");
        assert_eq!(parsed.rejected[1].errors[0].field, "queue_position");
    }

    #[test]
    fn rows_with_bidi_controls_in_shown_text_are_rejected() {
        let parsed = parse(
            "id,name,phones\n\
             1,Zoë Ștefănescu,0721234567\n\
             2,Ana \u{202E}poP,0721234568\n\
             3\u{2066},Bob,0721234569\n\
             4,דוד לוי,0721234570\n",
        )
        .unwrap();
        assert_eq!(parsed.ops.len(), 2);
        let rejected: Vec<(u64, &str)> = parsed
            .rejected
            .iter()
            .map(|r| (r.line, r.errors[0].field.as_str()))
            .collect();
        assert_eq!(rejected, [(3, "name"), (4, "id")]);
    }

    #[test]
    fn malformed_files_are_refused_whole() {
        assert!(parse("id,name\n1,Ana\n").is_err(), "missing phones column");
        assert!(parse("id,name,phones,colour\n").is_err(), "unknown column");
        assert!(parse("id,name,phones,name\n").is_err(), "duplicate column");
        let err = parse("id,name,phones\n1,Ana,0721234567\n2,Bob\n").unwrap_err();
        assert!(err.to_string().contains("line 3"), "{err}");
        let open = parse("id,name,phones\n1,Ana,\"0721234567\n2,Bob,0721234568\n").unwrap_err();
        assert!(
            open.to_string().contains("line 2: a quoted cell runs over"),
            "{open}"
        );
        let semicolons = parse("id;name;phones\n1;Ana;0721234567\n").unwrap_err();
        assert!(
            semicolons.to_string().contains("semicolons"),
            "{semicolons}"
        );
    }

    #[test]
    fn rows_are_reported_by_their_line_whatever_the_line_ends() {
        for (text, line) in [
            ("id,name,phones\r\n1,Ok,0721000050\r\n2,Bad,qq\r\n", 3),
            ("id,name,phones\n1,Ok,0721000050\n2,Bad,qq\n", 3),
            ("id,name,phones\n\n1,Ok,0721000050\n2,Bad,qq\n", 4),
            ("id,name,phones\n1,Ok,0721000050\n\n\n2,Bad,qq\n", 5),
            ("id,name,phones\n\n\n\n\n2,Bad,qq\n", 6),
            ("id,name,phones\r\n\r\n2,Bad,qq\r\n", 3),
            ("id,name,phones\r\n1,Ok,0721000050\r\n\r\n\r\n2,Bad,qq", 5),
        ] {
            let parsed = parse(text).unwrap();
            let lines: Vec<u64> = parsed.rejected.iter().map(|r| r.line).collect();
            assert_eq!(lines, [line], "{text:?}");
        }
    }

    #[test]
    fn a_malformed_row_is_named_by_its_line_in_our_words() {
        let error = parse("id,name,phones\n402,a,0750111229\n\n\n401,b\n").unwrap_err();
        assert_eq!(error.to_string(), "line 5: 2 cells where the header has 3");
        let bytes: &[u8] = b"id,name,phones\r\n\r\n1,b\xff,0750111229\r\n";
        let error = parse_csv(bytes, Region::parse("RO").unwrap()).unwrap_err();
        assert_eq!(error.to_string(), "line 3: not valid UTF-8");
    }

    #[test]
    fn broken_quoting_is_a_malformed_file_and_proper_quoting_is_read() {
        for (text, error) in [
            (
                "id,name,phones\nm1,ok,0790000001\nm2,\"bad\"x,0790000002\n",
                "line 3: text after a cell's closing quote",
            ),
            (
                "id,name,phones\r\nm8,ab\"c,0790000008\r\n",
                "line 2: a quote inside a cell that does not start with one (quote the cell and double the quote)",
            ),
        ] {
            assert_eq!(parse(text).unwrap_err().to_string(), error, "{text:?}");
        }
        let parsed = parse(
            "id,name,phones\nm7,\"Ion \"\"Popescu\"\", Jr\",0790000007\n\"m9\",\"\",\"0790000009\"\n",
        )
        .unwrap();
        assert_eq!(parsed.ops.len(), 1);
        match &parsed.ops[0] {
            WriteOp::Upsert(id, contact) => {
                assert_eq!(id.as_str(), "m7");
                assert_eq!(contact.name, "Ion \"Popescu\", Jr");
            }
            other => panic!("expected an upsert, got {other:?}"),
        }
        assert_eq!(parsed.rejected.len(), 1, "m9 has no name");
    }

    #[test]
    fn a_row_may_carry_the_source_time_of_its_contact() {
        let parsed = parse(
            "id,name,phones,updated_at\n\
             1,Ana,0721234567,2026-01-01T10:00:00Z\n\
             2,Bob,0721234568,\n\
             3,Cy,0721234569,yesterday\n",
        )
        .unwrap();
        let times: Vec<Option<String>> = parsed
            .ops
            .iter()
            .map(|op| match op {
                WriteOp::Upsert(_, c) => c.updated_at.map(|t| t.to_rfc3339()),
                WriteOp::Delete(..) => panic!("an import only upserts"),
            })
            .collect();
        assert_eq!(times, [Some("2026-01-01T10:00:00+00:00".into()), None]);
        assert_eq!(parsed.rejected[0].errors[0].field, "updated_at");
    }

    #[test]
    fn header_names_are_read_whatever_their_case() {
        let parsed = parse("ID,Name,PHONES\n1,Ana,0721234567\n").unwrap();
        assert_eq!(parsed.ops.len(), 1);
        assert!(parsed.rejected.is_empty());
    }
}
