//! A report's content, whatever its format: columns, rows of cells, summary items; and
//! how values are written for people (`3:31:13`, `14.0`, `75.0%`).

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Serialize;
use serde::ser::{SerializeMap, SerializeStruct, Serializer};
use serde_json::Value;

/// A value's kind, as the reference names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Format {
    Number,
    String,
    /// Milliseconds, written `H:MM:SS`.
    Duration,
    /// RFC 3339 UTC, written in the tenant's time zone.
    DateTime,
    /// A share from 0 to 1, written `75.0%`.
    Percent,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub title: &'static str,
    pub format: Format,
}

pub const fn column(title: &'static str, format: Format) -> Column {
    Column { title, format }
}

/// One value: as data, and as people read it (strings have no second form).
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    pub value: Value,
    pub formatted: Option<String>,
}

impl Cell {
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            value: Value::String(text.into()),
            formatted: None,
        }
    }

    pub fn count(n: i64) -> Self {
        Self {
            value: n.into(),
            formatted: Some(n.to_string()),
        }
    }

    /// A fraction written with one decimal (`14.0`).
    pub fn decimal(x: f64) -> Self {
        let rounded = (x * 10.0).round() / 10.0;
        Self {
            value: rounded.into(),
            formatted: Some(format!("{rounded:.1}")),
        }
    }

    pub fn duration(ms: i64) -> Self {
        Self {
            value: ms.into(),
            formatted: Some(hms(ms)),
        }
    }

    pub fn percent(share: f64) -> Self {
        let rounded = (share * 10_000.0).round() / 10_000.0;
        Self {
            value: rounded.into(),
            formatted: Some(format!("{:.1}%", rounded * 100.0)),
        }
    }

    pub fn time(at: DateTime<Utc>, zone: Tz) -> Self {
        Self {
            value: at
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                .into(),
            formatted: Some(
                at.with_timezone(&zone)
                    .format("%Y-%m-%d %H:%M:%S")
                    .to_string(),
            ),
        }
    }

    /// What people read: the formatted form, else the text.
    pub fn shown(&self) -> String {
        match (&self.formatted, &self.value) {
            (Some(formatted), _) => formatted.clone(),
            (None, Value::String(s)) => s.clone(),
            (None, Value::Null) => String::new(),
            (None, other) => other.to_string(),
        }
    }
}

impl Serialize for Cell {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("value", &self.value)?;
        if let Some(formatted) = &self.formatted {
            map.serialize_entry("formattedValue", formatted)?;
        }
        map.end()
    }
}

/// Milliseconds as `H:MM:SS`, seconds cut (12673424 → `3:31:13`, 1810489 → `0:30:10`).
pub fn hms(ms: i64) -> String {
    let secs = ms.max(0) / 1000;
    format!("{}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

/// `total / count` to the nearest unit; 0 when `count` is 0.
pub fn average(total: i64, count: i64) -> i64 {
    if count <= 0 {
        0
    } else {
        (total + count / 2) / count
    }
}

/// `part / whole`, 0 when `whole` is 0.
pub fn share(part: i64, whole: i64) -> f64 {
    if whole <= 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SummaryItem {
    pub title: &'static str,
    pub cell: Cell,
    /// As the reference labels it: its Agent Talking Summary says NUMBER for the
    /// summed durations too.
    pub format: Format,
}

impl Serialize for SummaryItem {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut item = serializer.serialize_struct("SummaryItem", 4)?;
        item.serialize_field("title", self.title)?;
        item.serialize_field("value", &self.cell.value)?;
        item.serialize_field("formattedValue", &self.cell.shown())?;
        item.serialize_field("format", &self.format)?;
        item.end()
    }
}

pub fn item(title: &'static str, cell: Cell, format: Format) -> SummaryItem {
    SummaryItem {
        title,
        cell,
        format,
    }
}

/// A report's content.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub columns: Vec<Column>,
    /// Each row has a cell per column.
    pub rows: Vec<Vec<Cell>>,
    pub summary: Vec<SummaryItem>,
}

/// A row as the reference writes it: `{"values": {"0": …, "1": …}}`, keys in column order.
pub struct RowValues<'a>(pub &'a [Cell]);

impl Serialize for RowValues<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        struct Values<'a>(&'a [Cell]);
        impl Serialize for Values<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut map = serializer.serialize_map(Some(self.0.len()))?;
                for (key, cell) in self.0.iter().enumerate() {
                    map.serialize_entry(&key.to_string(), cell)?;
                }
                map.end()
            }
        }
        let mut row = serializer.serialize_struct("Row", 1)?;
        row.serialize_field("values", &Values(self.0))?;
        row.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_written_as_the_reference_writes_them() {
        assert_eq!(hms(12_673_424), "3:31:13");
        assert_eq!(hms(1_810_489), "0:30:10");
        assert_eq!(hms(0), "0:00:00");
        assert_eq!(hms(360_000_000), "100:00:00");
        assert_eq!(average(12_673_424, 7), 1_810_489);
        assert_eq!(average(5, 0), 0);
        assert_eq!(
            serde_json::to_string(&Cell::decimal(14.0)).unwrap(),
            r#"{"value":14.0,"formattedValue":"14.0"}"#
        );
        assert_eq!(
            serde_json::to_string(&Cell::text("Agent1(200)")).unwrap(),
            r#"{"value":"Agent1(200)"}"#
        );
        assert_eq!(Cell::percent(share(3, 4)).shown(), "75.0%");
        let summary = item("Total Talking", Cell::duration(12_673_424), Format::Number);
        assert_eq!(
            serde_json::to_string(&summary).unwrap(),
            r#"{"title":"Total Talking","value":12673424,"formattedValue":"3:31:13","format":"NUMBER"}"#
        );
    }

    #[test]
    fn row_values_are_keyed_by_column_in_order() {
        let cells: Vec<Cell> = (0..12).map(Cell::count).collect();
        let json = serde_json::to_string(&RowValues(&cells)).unwrap();
        assert!(json.starts_with(r#"{"values":{"0":{"value":0,"formattedValue":"0"},"1":"#));
        assert!(json.contains(r#""9":{"value":9,"formattedValue":"9"},"10":"#));
    }
}
