//! Historical reports (DESIGN §10, reference/historical-call-data-api.txt): the templates,
//! the answer's format and the timeframe.

use std::fmt;

use super::tenant::TenantId;
use chrono::NaiveDate;
use chrono::{DateTime, FixedOffset, SecondsFormat, Timelike, Utc};
use uuid::Uuid;

/// What a report counts and how it lays it out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportTemplate {
    AgentTalkingSummary,
    CallsByDnis,
    MissedCallsByGroup,
    AccountCodeUsage,
    CallDetail,
    CallerIdentification,
}

impl ReportTemplate {
    pub const ALL: [Self; 6] = [
        Self::AgentTalkingSummary,
        Self::CallsByDnis,
        Self::MissedCallsByGroup,
        Self::AccountCodeUsage,
        Self::CallDetail,
        Self::CallerIdentification,
    ];

    pub fn parse(raw: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == raw.trim())
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|t| t.as_str()).collect();
                format!("`{raw}` is not a report template: {}", names.join(", "))
            })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::AgentTalkingSummary => "agent-talking-summary",
            Self::CallsByDnis => "calls-by-dnis",
            Self::MissedCallsByGroup => "missed-calls-by-group",
            Self::AccountCodeUsage => "account-code-usage",
            Self::CallDetail => "call-detail",
            Self::CallerIdentification => "caller-identification",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Self::AgentTalkingSummary => "Agent Talking Summary",
            Self::CallsByDnis => "Calls by DNIS",
            Self::MissedCallsByGroup => "Missed Calls by Group",
            Self::AccountCodeUsage => "Account Code Usage",
            Self::CallDetail => "Call Detail",
            Self::CallerIdentification => "Caller Identification",
        }
    }

    /// True for a report of the whole tenant, not of agents or groups (the lookup log
    /// names neither): a service user limited to some agents may not run it.
    pub fn is_tenant_wide(self) -> bool {
        self == Self::CallerIdentification
    }
}

impl fmt::Display for ReportTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The answer's form (the request's `format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Json,
    Csv,
    Html,
}

impl OutputFormat {
    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "json" => Ok(Self::Json),
            "csv" => Ok(Self::Csv),
            "html" => Ok(Self::Html),
            _ => Err(format!("format `{raw}` is not one of json, csv, html")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Csv => "csv",
            Self::Html => "html",
        }
    }
}

/// The `Report Timeframe`: two instants with the offsets the client wrote them in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeframe {
    pub start: DateTime<FixedOffset>,
    pub end: DateTime<FixedOffset>,
}

impl Timeframe {
    /// The longest timeframe, in days.
    pub const MAX_DAYS: i64 = 366;

    pub fn new(start: DateTime<FixedOffset>, end: DateTime<FixedOffset>) -> Result<Self, String> {
        if end < start {
            return Err(format!(
                "Report Timeframe: end {} is before start {}",
                echo(end),
                echo(start)
            ));
        }
        if end - start > chrono::Duration::days(Self::MAX_DAYS) {
            return Err(format!(
                "Report Timeframe: {} to {} is more than {} days",
                echo(start),
                echo(end),
                Self::MAX_DAYS
            ));
        }
        Ok(Self { start, end })
    }

    /// The first moment of the timeframe.
    pub fn from(&self) -> DateTime<Utc> {
        self.start.with_timezone(&Utc)
    }

    /// The first moment after it: the end counts to the end of its second, so
    /// `…T23:59:59-06:00` takes in the whole day.
    pub fn until(&self) -> DateTime<Utc> {
        let end = self.end.with_timezone(&Utc);
        end.with_nanosecond(0).unwrap_or(end) + chrono::Duration::seconds(1)
    }

    /// The start as the answer echoes it: `2019-09-09T00:00:00-06:00`.
    pub fn echo_start(&self) -> String {
        echo(self.start)
    }

    pub fn echo_end(&self) -> String {
        echo(self.end)
    }
}

fn echo(t: DateTime<FixedOffset>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, false)
}

/// A day's lookups, by what they found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LookupDay {
    pub day: NaiveDate,
    pub identified: i64,
    pub unknown: i64,
    pub degraded: i64,
    /// Unknown callers answered with the screening route (spam list, failed verstat).
    pub screened: i64,
}

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

/// An API-enabled report.
#[derive(Debug, Clone)]
pub struct EnabledReport {
    /// The historicDataKey.
    pub id: Uuid,
    pub tenant: TenantId,
    pub tenant_slug: String,
    /// The reference's short `reportId`, per tenant.
    pub report_id: i64,
    pub template: ReportTemplate,
    pub service_user_id: i64,
    pub service_user: String,
    pub created_at: DateTime<Utc>,
    /// When it was disabled, or its service user revoked: it no longer runs.
    pub stopped_at: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timeframe_of_366_days_is_allowed_and_one_second_is_a_second() {
        let at = |s| DateTime::parse_from_rfc3339(s).unwrap();
        assert!(Timeframe::new(at("2024-01-01T00:00:00Z"), at("2025-01-01T00:00:00Z")).is_ok());
        let t = Timeframe::new(
            at("2026-11-10T10:00:00.250Z"),
            at("2026-11-10T10:00:00.250Z"),
        )
        .unwrap();
        assert_eq!((t.until() - t.from()).num_milliseconds(), 750);
    }

    #[test]
    fn templates_parse_by_name() {
        for t in ReportTemplate::ALL {
            assert_eq!(ReportTemplate::parse(t.as_str()), Ok(t));
        }
        assert!(ReportTemplate::parse("everything").is_err());
    }
}
