//! One question to a CRM: the plan's request for a number, and the contact its answer
//! holds (the id path yields a value: found).

use std::time::Duration;

use serde_json::{Map, Value};

use super::kinds::{Definition, MASK, Plan, urlencode};
use crate::domain::PhoneNumber;
use crate::outbound::{Client, describe, refusal};

/// A contact as a source found it: the answer fields, by name.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub id: String,
    pub fields: Map<String, Value>,
}

/// Why a source gave no answer (each one counts against its breaker).
#[derive(Debug, Clone, thiserror::Error)]
pub enum Failure {
    #[error("the CRM refused the credentials (HTTP {0})")]
    AuthRefused(u16),
    #[error("the CRM's rate limit was hit (HTTP 429)")]
    RateLimited(Option<Duration>),
    #[error("the CRM answered HTTP {0}")]
    Status(u16),
    #[error("no answer within {} ms", .0.as_millis())]
    TimedOut(Duration),
    #[error("the request failed: {0}")]
    Network(String),
    #[error("the answer is not JSON: {0}")]
    Body(String),
    #[error("{0}")]
    Refused(String),
}

/// What a question did: the request as shown (secrets masked) and its outcome.
#[derive(Debug)]
pub struct Asked {
    pub request: String,
    pub status: Option<u16>,
    pub outcome: Result<Option<Found>, Failure>,
}

/// The placeholders' values for `number`.
fn placeholders(number: &PhoneNumber) -> [(&'static str, String); 3] {
    let e164 = number.as_str().to_owned();
    let digits: String = e164.chars().filter(char::is_ascii_digit).collect();
    let national = phonenumber::parse(None, &e164)
        .map(|n| {
            n.format()
                .mode(phonenumber::Mode::National)
                .to_string()
                .chars()
                .filter(char::is_ascii_digit)
                .collect()
        })
        .unwrap_or_else(|_| digits.clone());
    [
        ("{{Number}}", e164),
        ("{{NationalNumber}}", national),
        ("{{Digits}}", digits),
    ]
}

fn fill(template: &str, values: &[(&str, String)], encode: bool) -> String {
    let mut out = template.to_owned();
    for (name, value) in values {
        let value = if encode {
            urlencode(value)
        } else {
            value.clone()
        };
        out = out.replace(name, &value);
    }
    out
}

/// `text` with every secret replaced by the mask (also as it reads URL-encoded).
pub fn masked(text: &str, definition: &Definition) -> String {
    let mut out = text.to_owned();
    for secret in definition.secrets() {
        out = out.replace(&urlencode(secret), MASK).replace(secret, MASK);
    }
    out
}

/// Asks the source's CRM about `number` once, within `timeout`.
pub async fn ask(
    client: &Client,
    definition: &Definition,
    number: &PhoneNumber,
    timeout: Duration,
) -> Asked {
    let plan = definition.plan();
    let values = placeholders(number);
    let url = fill(&plan.url, &values, true);
    let shown = masked(&format!("{} {url}", plan.method), definition);
    let mut asked = Asked {
        request: shown,
        status: None,
        outcome: Ok(None),
    };
    let parsed = match url::Url::parse(&url) {
        Ok(parsed) => parsed,
        Err(e) => {
            asked.outcome = Err(Failure::Network(format!("the URL is not valid: {e}")));
            return asked;
        }
    };
    if let Err(refused) = client.check_literals(&parsed) {
        asked.outcome = Err(Failure::Refused(refused.to_string()));
        return asked;
    }
    let request = build(client, &plan, parsed, &values).timeout(timeout);
    let answer = match tokio::time::timeout(timeout, request.send()).await {
        Err(_) => Err(Failure::TimedOut(timeout)),
        Ok(Err(e)) if e.is_timeout() => Err(Failure::TimedOut(timeout)),
        Ok(Err(e)) => Err(match refusal(&e) {
            Some(refused) => Failure::Refused(refused.to_string()),
            None => Failure::Network(masked(&describe(&e), definition)),
        }),
        Ok(Ok(response)) => Ok(response),
    };
    let response = match answer {
        Ok(response) => response,
        Err(failure) => {
            asked.outcome = Err(failure);
            return asked;
        }
    };
    let status = response.status().as_u16();
    asked.status = Some(status);
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let body = tokio::time::timeout(timeout, response.bytes()).await;
    asked.outcome = match (status, body) {
        (401 | 403, _) => Err(Failure::AuthRefused(status)),
        (429, _) => Err(Failure::RateLimited(retry_after)),
        // Some CRMs answer a search that found nothing with 404.
        (404, _) => Ok(None),
        (200..=299, Ok(Ok(bytes))) => match serde_json::from_slice::<Value>(&bytes) {
            Ok(json) => Ok(extract(&plan, &json)),
            Err(e) => Err(Failure::Body(e.to_string())),
        },
        (200..=299, Ok(Err(e))) => Err(Failure::Network(masked(&describe(&e), definition))),
        (200..=299, Err(_)) => Err(Failure::TimedOut(timeout)),
        _ => Err(Failure::Status(status)),
    };
    asked
}

fn build(
    client: &Client,
    plan: &Plan,
    url: url::Url,
    values: &[(&str, String)],
) -> reqwest::RequestBuilder {
    let mut request = client
        .http()
        .request(plan.method.clone(), url)
        .header(reqwest::header::ACCEPT, "application/json");
    for (name, value) in &plan.headers {
        request = request.header(name.as_str(), fill(value, values, false));
    }
    if let Some((user, password)) = &plan.basic {
        request = request.basic_auth(user, Some(password));
    }
    if let Some(token) = &plan.bearer {
        request = request.bearer_auth(token);
    }
    if let Some(body) = &plan.body {
        let body = fill(body, values, false);
        let json = serde_json::from_str::<Value>(&body).is_ok();
        let kind = if json {
            "application/json"
        } else {
            "application/x-www-form-urlencoded"
        };
        request = request
            .header(reqwest::header::CONTENT_TYPE, kind)
            .body(body);
    }
    request
}

/// The value at a dotted path (`data.0.id`; a number indexes an array).
pub fn at_path<'v>(json: &'v Value, path: &str) -> Option<&'v Value> {
    let path = path.trim().trim_start_matches("$.").trim_start_matches('$');
    path.split('.')
        .filter(|s| !s.is_empty())
        .try_fold(json, |value, step| match value {
            Value::Array(items) => items.get(step.parse::<usize>().ok()?),
            Value::Object(map) => map.get(step),
            _ => None,
        })
}

/// A scalar as text (numbers as written, `null` and objects as nothing).
fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The contact an answer holds: found when the id path yields a value.
pub fn extract(plan: &Plan, json: &Value) -> Option<Found> {
    let (_, id_path) = plan.fields.iter().find(|(f, _)| f == "id")?;
    let id = at_path(json, id_path).and_then(text_of)?;
    let mut fields = Map::new();
    for (field, path) in plan.fields.iter().filter(|(f, _)| f != "id") {
        if let Some(value) = at_path(json, path).filter(|v| !v.is_null()) {
            let value = match value {
                Value::Number(_) if field == "queue_position" => value.clone(),
                other => match text_of(other) {
                    Some(text) => Value::String(text),
                    None => continue,
                },
            };
            fields.insert(field.clone(), value);
        }
    }
    if let Some(link) = &plan.link
        && !fields.contains_key("crm_url")
    {
        let link = link.replace("{{id}}", &urlencode(&id));
        fields.insert("crm_url".into(), Value::String(link));
    }
    Some(Found { id, fields })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_walk_objects_and_arrays() {
        let json = serde_json::json!({"data": [{"id": 7, "name": "Ana"}], "x": null});
        assert_eq!(at_path(&json, "data.0.id"), Some(&serde_json::json!(7)));
        assert_eq!(at_path(&json, "$.data.0.name").unwrap(), "Ana");
        assert_eq!(at_path(&json, "data.1.id"), None);
        assert_eq!(at_path(&json, "data.x"), None);
    }
}
