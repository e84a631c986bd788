//! Historical reports (DESIGN §10, reference/historical-call-data-api.txt): the templates,
//! and a report request exactly as the reference sends it.

use std::fmt;

use chrono::{DateTime, FixedOffset, SecondsFormat, Timelike, Utc};
use serde_json::{Map, Value};

use super::agent::GroupName;
use super::text::display_problem;

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

/// A report request: the reference's body, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportRequest {
    pub format: OutputFormat,
    pub timeframe: Timeframe,
    /// `Rows (Agent)`: the `pbxUsers` keys as sent (`Agent1(200)` or `200`).
    pub agents: Option<Vec<String>>,
    /// `Rows (Group)`.
    pub groups: Option<Vec<GroupName>>,
}

/// Most rows one request may name.
pub const MAX_ROWS: usize = 1_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Parameter {
    Timeframe,
    Agents,
    Groups,
}

impl Parameter {
    const ALL: [Self; 3] = [Self::Timeframe, Self::Agents, Self::Groups];

    fn name(self) -> &'static str {
        match self {
            Self::Timeframe => "Report Timeframe",
            Self::Agents => "Rows (Agent)",
            Self::Groups => "Rows (Group)",
        }
    }

    fn value_type(self) -> &'static str {
        match self {
            Self::Timeframe => "REPORT_TIMEFRAME",
            Self::Agents => "PBX_USERS",
            Self::Groups => "PBX_GROUPS",
        }
    }

    /// The fields of its `value`, `type` included.
    fn fields(self) -> &'static [&'static str] {
        match self {
            Self::Timeframe => &["type", "start", "end"],
            Self::Agents => &["type", "pbxUsers"],
            Self::Groups => &["type", "pbxGroups"],
        }
    }
}

impl ReportRequest {
    /// Reads the body; the error says what is wrong, for a `400`.
    pub fn from_json(body: &Value) -> Result<Self, String> {
        let body = body
            .as_object()
            .ok_or("the body must be a JSON object with `format` and `parameters`")?;
        only_fields(body, &["format", "parameters"], "")?;
        let format = match body.get("format") {
            None => OutputFormat::Json,
            Some(Value::String(raw)) => OutputFormat::parse(raw)?,
            Some(_) => return Err("`format` must be \"json\", \"csv\" or \"html\"".into()),
        };
        let parameters = match body.get("parameters") {
            Some(Value::Array(items)) => items,
            Some(_) => return Err("`parameters` must be an array".into()),
            None => return Err("`parameters` is required (with the Report Timeframe)".into()),
        };
        let mut timeframe = None;
        let mut agents = None;
        let mut groups = None;
        let mut seen = Vec::new();
        for (i, item) in parameters.iter().enumerate() {
            let at = format!("parameters[{i}]");
            let item = item
                .as_object()
                .ok_or_else(|| format!("{at} must be an object with name, valueType and value"))?;
            only_fields(item, &["name", "valueType", "value"], &format!("{at}."))?;
            let value_type = text(item, "valueType", &at)?;
            let parameter = Parameter::ALL
                .into_iter()
                .find(|p| p.value_type() == value_type)
                .ok_or_else(|| {
                    format!(
                        "{at}: unknown value type `{value_type}` (REPORT_TIMEFRAME, PBX_USERS or PBX_GROUPS)"
                    )
                })?;
            let name = text(item, "name", &at)?;
            if !name.eq_ignore_ascii_case(parameter.name()) {
                return Err(format!(
                    "{at}: unknown parameter `{name}` (a {value_type} parameter is `{}`)",
                    parameter.name()
                ));
            }
            if seen.contains(&parameter) {
                return Err(format!("{at}: `{}` is given twice", parameter.name()));
            }
            seen.push(parameter);
            let value = item
                .get("value")
                .and_then(Value::as_object)
                .ok_or_else(|| format!("{at}: `value` must be an object"))?;
            only_fields(value, parameter.fields(), &format!("{at}.value."))?;
            if value.get("type").and_then(Value::as_str) != Some(value_type) {
                return Err(format!("{at}: value.type must be `{value_type}`"));
            }
            match parameter {
                Parameter::Timeframe => {
                    let start = instant(value, "start")?;
                    let end = instant(value, "end")?;
                    timeframe = Some(Timeframe::new(start, end)?);
                }
                Parameter::Agents => agents = Some(keys(value, "pbxUsers", &at)?),
                Parameter::Groups => {
                    let names = keys(value, "pbxGroups", &at)?;
                    let parsed = names
                        .iter()
                        .map(|n| GroupName::parse(n).map_err(|e| format!("{at}: {e}")))
                        .collect::<Result<_, _>>()?;
                    groups = Some(parsed);
                }
            }
        }
        Ok(Self {
            format,
            timeframe: timeframe.ok_or("the `Report Timeframe` parameter is required")?,
            agents,
            groups,
        })
    }
}

fn only_fields(object: &Map<String, Value>, known: &[&str], at: &str) -> Result<(), String> {
    match object.keys().find(|k| !known.contains(&k.as_str())) {
        Some(unknown) => Err(format!(
            "unknown field `{at}{unknown}` (expected {})",
            known.join(", ")
        )),
        None => Ok(()),
    }
}

fn text<'a>(object: &'a Map<String, Value>, field: &str, at: &str) -> Result<&'a str, String> {
    object
        .get(field)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("{at}: `{field}` must be a string"))
}

fn instant(value: &Map<String, Value>, field: &str) -> Result<DateTime<FixedOffset>, String> {
    value
        .get(field)
        .and_then(Value::as_str)
        .and_then(|raw| DateTime::parse_from_rfc3339(raw.trim()).ok())
        .ok_or_else(|| {
            format!(
                "Report Timeframe: {field} must be an RFC 3339 time with its offset, \
                 such as 2019-09-09T00:00:00.000-06:00"
            )
        })
}

/// The `key`s of a list of `{"key": …}`, each once, in order.
fn keys(value: &Map<String, Value>, field: &str, at: &str) -> Result<Vec<String>, String> {
    let items = value
        .get(field)
        .and_then(Value::as_array)
        .ok_or_else(|| format!("{at}: value.{field} must be an array of {{\"key\": …}}"))?;
    if items.is_empty() || items.len() > MAX_ROWS {
        return Err(format!(
            "{at}: value.{field} must name 1 to {MAX_ROWS} rows (leave the parameter out for all)"
        ));
    }
    let mut keys: Vec<String> = Vec::with_capacity(items.len());
    for (j, item) in items.iter().enumerate() {
        let key = item
            .as_object()
            .filter(|o| o.len() == 1)
            .and_then(|o| o.get("key"))
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|k| !k.is_empty() && k.chars().count() <= 128)
            .ok_or_else(|| {
                format!("{at}: value.{field}[{j}] must be {{\"key\": …}} with a key of 1 to 128 characters")
            })?;
        if let Some(problem) = display_problem(key) {
            return Err(format!("{at}: value.{field}[{j}].key {problem}"));
        }
        if !keys.iter().any(|k| k == key) {
            keys.push(key.to_owned());
        }
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// The reference's request body.
    fn reference() -> Value {
        json!({"format": "json", "parameters": [
            {"name": "Report Timeframe", "valueType": "REPORT_TIMEFRAME",
             "value": {"type": "REPORT_TIMEFRAME", "start": "2019-09-09T00:00:00.000-06:00",
                       "end": "2019-09-10T23:59:59.000-06:00"}},
            {"name": "Rows (Agent)", "valueType": "PBX_USERS",
             "value": {"type": "PBX_USERS", "pbxUsers": [{"key": "Agent1(200)"}]}}]})
    }

    #[test]
    fn the_reference_request_reads_and_its_timeframe_echoes_as_the_reference_answers() {
        let request = ReportRequest::from_json(&reference()).unwrap();
        assert_eq!(request.format, OutputFormat::Json);
        assert_eq!(request.agents, Some(vec!["Agent1(200)".to_owned()]));
        assert_eq!(request.groups, None);
        let t = request.timeframe;
        assert_eq!(t.echo_start(), "2019-09-09T00:00:00-06:00");
        assert_eq!(t.echo_end(), "2019-09-10T23:59:59-06:00");
        assert_eq!(t.from().to_rfc3339(), "2019-09-09T06:00:00+00:00");
        assert_eq!(t.until().to_rfc3339(), "2019-09-11T06:00:00+00:00");
    }

    #[test]
    fn each_mistake_is_named() {
        let cases: [(&str, Value, &str); 9] = [
            ("/format", json!("pdf"), "format `pdf`"),
            ("/extra", json!(1), "unknown field `extra`"),
            (
                "/parameters/0/valueType",
                json!("TIMEFRAME"),
                "unknown value type `TIMEFRAME`",
            ),
            (
                "/parameters/0/name",
                json!("Period"),
                "unknown parameter `Period`",
            ),
            (
                "/parameters/0/value/start",
                json!("2019-09-09 00:00"),
                "start must be",
            ),
            (
                "/parameters/0/value/end",
                json!("2019-09-08T00:00:00Z"),
                "is before start",
            ),
            (
                "/parameters/0/value/end",
                json!("2020-09-10T00:00:00-06:00"),
                "more than 366 days",
            ),
            ("/parameters/1/value/pbxUsers", json!([]), "1 to 1000 rows"),
            (
                "/parameters/1/value/type",
                json!("PBX_GROUPS"),
                "value.type must be `PBX_USERS`",
            ),
        ];
        for (pointer, replacement, expected) in cases {
            let mut body = reference();
            match body.pointer_mut(pointer) {
                Some(slot) => *slot = replacement,
                None => {
                    body.as_object_mut()
                        .unwrap()
                        .insert("extra".into(), replacement);
                }
            }
            let error = ReportRequest::from_json(&body).unwrap_err();
            assert!(error.contains(expected), "{pointer}: {error}");
        }
        let mut twice = reference();
        let first = twice["parameters"][0].clone();
        twice["parameters"].as_array_mut().unwrap().push(first);
        assert!(
            ReportRequest::from_json(&twice)
                .unwrap_err()
                .contains("given twice")
        );
        let none = json!({"format": "csv", "parameters": []});
        assert!(
            ReportRequest::from_json(&none)
                .unwrap_err()
                .contains("is required")
        );
    }

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
