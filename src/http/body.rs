//! Reading JSON request bodies with a size limit and errors that say what was wrong, and
//! checking what a body says it is.

use std::cell::RefCell;
use std::fmt;
use std::time::Duration;

use actix_web::http::header;
use actix_web::{HttpRequest, web};
use futures_util::StreamExt;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::map::Entry;
use serde_json::{Map, Number, Value};

use super::error::ApiError;

/// Larger bodies are parsed on the blocking pool: a full batch takes the parser tens of
/// milliseconds, and the worker would answer no lookups meanwhile.
const PARSE_ON_WORKER_MAX: usize = 64 * 1024;

/// Reads at most `limit` bytes within `timeout` and parses them as JSON: 415 unless
/// sent as JSON, 413 when larger (refused from `Content-Length` before reading when
/// possible), 408 when the body is not all there in time, 400 when not JSON or when an
/// object repeats a key.
pub async fn read_json(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
    timeout: Duration,
) -> Result<Value, ApiError> {
    let labelled = sent_as_json(req)?;
    let declared = declared_length(req).and_then(|len| usize::try_from(len).ok());
    if declared.is_some_and(|len| len > limit) {
        return Err(ApiError::PayloadTooLarge(limit));
    }
    let body = tokio::time::timeout(
        timeout,
        read_body(payload, limit, labelled, declared.unwrap_or(0)),
    )
    .await
    .map_err(|_| ApiError::BodyTimeout(timeout))??;
    if body.is_empty() {
        return Err(ApiError::BadRequest(
            "the body is empty; JSON expected".into(),
        ));
    }
    let on_worker = body.len() <= PARSE_ON_WORKER_MAX;
    let parse = move || parse_strict(&body);
    let parsed = if on_worker {
        parse()
    } else {
        web::block(parse)
            .await
            .map_err(|e| ApiError::Unexpected(anyhow::anyhow!("parsing a body: {e}")))?
    };
    parsed.map_err(|e| match e {
        ParseError::Json(e) => ApiError::BadRequest(format!("the body is not valid JSON: {e}")),
        ParseError::DuplicateKey(path) => ApiError::BadRequest(format!(
            "the body repeats the key {path}: each key may appear only once in an object"
        )),
    })
}

/// The body's length as its `Content-Length` declares it, to refuse a body too large
/// before reading it.
pub fn declared_length(req: &HttpRequest) -> Option<u64> {
    req.headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

async fn read_body(
    mut payload: web::Payload,
    limit: usize,
    labelled: bool,
    declared: usize,
) -> Result<Vec<u8>, ApiError> {
    let mut body = Vec::with_capacity(declared);
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::BadRequest(format!("the body could not be read: {e}")))?;
        if !labelled && !chunk.is_empty() {
            // Refused at the first bytes: no point reading megabytes of something else.
            return Err(ApiError::UnsupportedMediaType(format!(
                "{EXPECTED}; this request has no Content-Type"
            )));
        }
        if body.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

const EXPECTED: &str = "the body must be sent as Content-Type: application/json";
const EXPECTED_CSV: &str = "the body must be sent as Content-Type: text/csv";

/// Whether the request says its body is JSON (`application/json` or `application/…+json`,
/// in UTF-8 if it names a charset). `false` when it says nothing: an empty body needs no
/// type. Any other type is refused with 415 before the body is read.
fn sent_as_json(req: &HttpRequest) -> Result<bool, ApiError> {
    sent_as(req, EXPECTED, |kind, subtype| {
        kind == "application" && (subtype == "json" || subtype.ends_with("+json"))
    })
}

/// Refuses with 415 a body not labelled `text/csv` (in UTF-8 if it names a charset).
pub fn sent_as_csv(req: &HttpRequest) -> Result<(), ApiError> {
    match sent_as(req, EXPECTED_CSV, |kind, subtype| {
        (kind, subtype) == ("text", "csv")
    })? {
        true => Ok(()),
        false => Err(ApiError::UnsupportedMediaType(format!(
            "{EXPECTED_CSV}; this request has no Content-Type"
        ))),
    }
}

/// Whether the request's Content-Type is one `fits` takes (given its type and subtype
/// in lower case); `false` when it has none. Read by hand, as leniently as RFC 9110
/// allows (spaces around `;`, quoted values, any case) and taking the common `utf8` for
/// UTF-8, the only charset read.
fn sent_as(
    req: &HttpRequest,
    expected: &str,
    fits: impl Fn(&str, &str) -> bool,
) -> Result<bool, ApiError> {
    let refuse = |said: String| ApiError::UnsupportedMediaType(format!("{expected}; {said}"));
    let malformed = || refuse("this request's Content-Type is malformed".into());
    let Some(value) = req.headers().get(header::CONTENT_TYPE) else {
        return Ok(false);
    };
    let value = value.to_str().map_err(|_| malformed())?;
    let mut parts = value.split(';');
    let essence = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
    let (kind, subtype) = essence.split_once('/').ok_or_else(malformed)?;
    if kind.is_empty() || subtype.is_empty() {
        return Err(malformed());
    }
    if !fits(kind, subtype) {
        return Err(refuse(format!("this request says {essence}")));
    }
    for parameter in parts {
        let Some((name, charset)) = parameter.split_once('=') else {
            continue;
        };
        if !name.trim().eq_ignore_ascii_case("charset") {
            continue;
        }
        let charset = charset.trim().trim_matches('"');
        if !charset.eq_ignore_ascii_case("utf-8") && !charset.eq_ignore_ascii_case("utf8") {
            return Err(refuse(format!(
                "the body is read as UTF-8 only, and this request says charset={charset}"
            )));
        }
    }
    Ok(true)
}

#[derive(Debug)]
enum ParseError {
    Json(serde_json::Error),
    /// The path to the repeated key, as `[3].name` or `attributes.note`.
    DuplicateKey(String),
}

/// Parses like `serde_json::from_slice::<Value>`, but refuses an object that names a key
/// twice: serde_json keeps the last one silently, so `{"name":"x","name":"y"}` would be
/// stored as "y" while a CRM's own parser may have read "x".
fn parse_strict(bytes: &[u8]) -> Result<Value, ParseError> {
    let trail = RefCell::new(Vec::new());
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let parsed = Strict { trail: &trail }
        .deserialize(&mut deserializer)
        .and_then(|value| deserializer.end().map(|()| value));
    parsed.map_err(|e| {
        let trail = trail.into_inner();
        if trail.is_empty() {
            return ParseError::Json(e);
        }
        let mut path = String::new();
        for step in trail.iter().rev() {
            match step {
                Step::Key(key) if path.is_empty() => path.push_str(key),
                Step::Key(key) => {
                    path.push('.');
                    path.push_str(key);
                }
                Step::Index(i) => path.push_str(&format!("[{i}]")),
            }
        }
        ParseError::DuplicateKey(path)
    })
}

/// One step of the path to a repeated key.
enum Step {
    Key(String),
    Index(usize),
}

/// A JSON value whose objects name each key once. On a repeated key the error unwinds
/// through every enclosing value, each adding its step to `trail` (innermost first); a
/// value that parses costs no more than with serde_json's own `Value`.
#[derive(Clone, Copy)]
struct Strict<'a> {
    trail: &'a RefCell<Vec<Step>>,
}

impl Strict<'_> {
    /// On the way out of a failed value: extends the path if a repeated key is why.
    fn unwinding<E>(self, step: impl FnOnce() -> Step) -> impl FnOnce(E) -> E {
        move |e| {
            let mut trail = self.trail.borrow_mut();
            if !trail.is_empty() {
                trail.push(step());
            }
            e
        }
    }
}

impl<'de> DeserializeSeed<'de> for Strict<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any valid JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        loop {
            let index = items.len();
            match seq
                .next_element_seed(self)
                .map_err(self.unwinding(|| Step::Index(index)))?
            {
                Some(item) => items.push(item),
                None => return Ok(Value::Array(items)),
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            let value = match access.next_value_seed(self) {
                Ok(value) => value,
                Err(e) => return Err(self.unwinding(|| Step::Key(key))(e)),
            };
            match map.entry(key) {
                Entry::Vacant(slot) => {
                    slot.insert(value);
                }
                Entry::Occupied(taken) => {
                    self.trail.borrow_mut().push(Step::Key(taken.key().clone()));
                    return Err(de::Error::custom("a key appears twice in one object"));
                }
            }
        }
        Ok(Value::Object(map))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn duplicate(text: &str) -> Option<String> {
        match parse_strict(text.as_bytes()) {
            Err(ParseError::DuplicateKey(path)) => Some(path),
            _ => None,
        }
    }

    #[test]
    fn values_parse_as_serde_json_parses_them() {
        let text = r#"{"a":[1,-2,2.5,1e308,18446744073709551615,true,null,"ü\u0000"],"b":{"c":{}},"d":[]}"#;
        let strict = parse_strict(text.as_bytes()).unwrap();
        assert_eq!(strict, serde_json::from_str::<Value>(text).unwrap());
        assert_eq!(strict["a"][1], json!(-2));
    }

    #[test]
    fn a_repeated_key_is_named_by_its_path() {
        assert_eq!(
            duplicate(r#"{"id":"a","name":"x","name":"y"}"#).unwrap(),
            "name"
        );
        assert_eq!(
            duplicate(r#"{"name":"x","attributes":{"n":{"k":1,"k":2}}}"#).unwrap(),
            "attributes.n.k"
        );
        assert_eq!(
            duplicate(r#"[{"id":1},{"id":2,"op":"upsert","op":"delete"}]"#).unwrap(),
            "[1].op"
        );
        assert_eq!(
            duplicate(r#"{"a":[{"b":1},{"b":1,"b":1}]}"#).unwrap(),
            "a[1].b"
        );
    }

    #[test]
    fn a_key_may_repeat_across_objects_and_syntax_errors_stay_syntax_errors() {
        assert!(parse_strict(br#"[{"id":1},{"id":1}]"#).is_ok());
        assert!(parse_strict(br#"{"a":{"id":1},"b":{"id":1}}"#).is_ok());
        for text in [r#"{"a": "#, "[] []", r#"{"a":1,}"#] {
            assert!(
                matches!(parse_strict(text.as_bytes()), Err(ParseError::Json(_))),
                "{text}"
            );
        }
    }
}
