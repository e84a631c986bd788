//! The CDR API's pieces that are not HTTP: dates as people write them, the opaque
//! cursor, and the CSV form (shared with `cidgate calls export`).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::domain::CdrFilter;
use crate::domain::Position;
use crate::domain::{CallField, CallRecord};

/// Which end of a range a date is: a day alone means its first or its last moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeEnd {
    Start,
    Finish,
}

/// A date further than this from today is a mistake (and far enough out, one that the
/// time arithmetic cannot hold).
pub const MAX_YEARS_AWAY: i32 = 100;
/// The longest range one query covers: a year, leap day included.
pub const MAX_RANGE_DAYS: i64 = 366;

/// Whether `year` is within `MAX_YEARS_AWAY` of today's.
fn plausible_year(year: i32) -> bool {
    (year - Utc::now().year()).abs() <= MAX_YEARS_AWAY
}

fn out_of_bounds() -> String {
    format!("must be within {MAX_YEARS_AWAY} years of today")
}

/// RFC 3339, or `YYYY-MM-DD[ HH:MM:SS]` (also with `T`) in the tenant's time zone,
/// within `MAX_YEARS_AWAY` years of today.
pub fn parse_date(raw: &str, zone: Tz, end: RangeEnd) -> Result<DateTime<Utc>, String> {
    let raw = raw.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        let t = t.with_timezone(&Utc);
        return if plausible_year(t.year()) {
            Ok(t)
        } else {
            Err(out_of_bounds())
        };
    }
    let local = if let Ok(day) = NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        match end {
            RangeEnd::Start => day.and_hms_opt(0, 0, 0),
            RangeEnd::Finish => day.and_hms_micro_opt(23, 59, 59, 999_999),
        }
    } else {
        ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"]
            .iter()
            .find_map(|f| NaiveDateTime::parse_from_str(raw, f).ok())
    }
    .ok_or("must be RFC 3339 (2026-12-01T10:00:00Z) or YYYY-MM-DD[ HH:MM:SS] in the tenant's time zone")?;
    // Checked before any arithmetic: chrono's extreme years overflow it.
    if !plausible_year(local.year()) {
        return Err(out_of_bounds());
    }
    // A time skipped by a clock change is read an hour later; a repeated one, the first.
    zone.from_local_datetime(&local)
        .earliest()
        .or_else(|| {
            zone.from_local_datetime(&(local + chrono::Duration::hours(1)))
                .earliest()
        })
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| "is not a time that exists in the tenant's time zone".into())
}

/// Why a range cannot be queried (`finishdate` is the parameter to fix), if it cannot.
pub fn range_problem(from: DateTime<Utc>, to: DateTime<Utc>) -> Option<String> {
    if to < from {
        Some("is before startdate".into())
    } else if to - from > chrono::Duration::days(MAX_RANGE_DAYS) {
        Some(format!(
            "is more than {MAX_RANGE_DAYS} days after startdate; query a longer period in parts"
        ))
    } else {
        None
    }
}

/// What a cursor carries: the walk's position and the query it belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cursor {
    pub position: Position,
    pub filter: CdrFilter,
}

impl Cursor {
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).expect("a cursor serializes"))
    }

    pub fn decode(raw: &str) -> Result<Self, String> {
        URL_SAFE_NO_PAD
            .decode(raw.trim())
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Self>(&bytes).ok())
            // A cursor is only as trustworthy as its bearer: its range is held to what
            // a first request may ask.
            .filter(|c| {
                plausible_year(c.filter.from.year())
                    && plausible_year(c.filter.to.year())
                    && range_problem(c.filter.from, c.filter.to).is_none()
            })
            .ok_or_else(|| "is not a cursor this API gave out".into())
    }
}

/// Writes the header line: the record's CSV fields (`domain::CallField`), in order.
pub fn csv_header<W: std::io::Write>(out: &mut csv::Writer<W>) -> csv::Result<()> {
    out.write_record(CallField::csv().map(CallField::name))
}

/// Writes one line per call; times in the tenant's zone (RFC 3339 with its offset).
pub fn csv_rows<W: std::io::Write>(
    out: &mut csv::Writer<W>,
    calls: &[CallRecord],
    zone: Tz,
) -> csv::Result<()> {
    for c in calls {
        out.write_record(CallField::csv().map(|field| defuse(&field.text(c, zone))))?;
    }
    Ok(())
}

/// A field a spreadsheet would run as a formula (`=`, `@`, or `+`/`-` before more than
/// a number) gets a `'` in front: names and tags come from callers and CRMs. A phone
/// number such as `+40721234567` stays as it is.
pub fn defuse(field: &str) -> String {
    let number = |rest: &str| rest.bytes().all(|b| b.is_ascii_digit() || b == b' ');
    match field.chars().next() {
        Some('=' | '@' | '\t' | '\r') => format!("'{field}"),
        Some('+' | '-') if !number(&field[1..]) => format!("'{field}"),
        _ => field.to_owned(),
    }
}

/// A tenant's time zone from its settings (`time_zone`, an IANA name; UTC by default).
pub fn tenant_zone(settings: &serde_json::Value) -> Tz {
    settings
        .get("time_zone")
        .and_then(|z| z.as_str())
        .and_then(|z| z.parse().ok())
        .unwrap_or(Tz::UTC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_read_in_the_tenant_zone() {
        let zone: Tz = "Europe/Bucharest".parse().unwrap();
        let at = |raw, end| parse_date(raw, zone, end).unwrap().to_rfc3339();
        assert_eq!(
            at("2026-12-01", RangeEnd::Start),
            "2026-11-30T22:00:00+00:00"
        );
        assert_eq!(
            at("2026-12-01", RangeEnd::Finish),
            "2026-12-01T21:59:59.999999+00:00"
        );
        assert_eq!(
            at("2026-07-01 10:30:00", RangeEnd::Start),
            "2026-07-01T07:30:00+00:00"
        );
        assert_eq!(
            at("2026-12-01T10:00:00-06:00", RangeEnd::Start),
            "2026-12-01T16:00:00+00:00"
        );
        assert!(parse_date("yesterday", zone, RangeEnd::Start).is_err());
    }

    #[test]
    fn a_cursor_round_trips_and_a_forged_one_is_refused() {
        let cursor = Cursor {
            position: Position::ByStart {
                watermark: 1234,
                after: None,
            },
            filter: CdrFilter::default(),
        };
        assert_eq!(Cursor::decode(&cursor.encode()).unwrap(), cursor);
        assert!(Cursor::decode("bm9wZQ").is_err());
    }

    #[test]
    fn formulas_are_defused() {
        assert_eq!(defuse("=HYPERLINK(1)"), "'=HYPERLINK(1)");
        assert_eq!(defuse("+40721234567"), "+40721234567");
        assert_eq!(defuse("+1+cmd|' /C calc'!A0"), "'+1+cmd|' /C calc'!A0");
        assert_eq!(defuse("Ana"), "Ana");
    }
}
