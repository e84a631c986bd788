//! A report request exactly as the reference sends it (its "Request Details"), checked
//! field by field so a `400` can say what is wrong.

use chrono::{DateTime, FixedOffset};
use serde_json::{Map, Value};

use super::agent::GroupName;
use super::report::{OutputFormat, Timeframe};
use super::text::display_problem;

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
}
