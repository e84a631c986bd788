//! Reading JSON request bodies with a size limit and errors that say what was wrong, and
//! checking what a body says it is.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::time::Duration;

use actix_web::http::header;
use actix_web::{HttpRequest, web};
use futures_util::StreamExt;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::map::Entry;
use serde_json::{Map, Number, Value};

use super::error::ApiError;
use crate::domain::FieldError;

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
    read_json_shaped(req, payload, limit, timeout, Shape::default()).await
}

/// A JSON body read as `T` (within `limit` and `timeout`), the error naming what does
/// not fit.
pub async fn read_typed<T: serde::de::DeserializeOwned>(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
    timeout: Duration,
) -> Result<T, ApiError> {
    let value = read_json(req, payload, limit, timeout).await?;
    serde_json::from_value(value).map_err(|e| {
        ApiError::invalid_fields(vec![FieldError::new(
            "",
            format!("the body does not fit: {e}"),
        )])
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

/// What a body may hold, checked while it is parsed, so a body over a cap is refused
/// at the first value past it instead of after building millions of values.
#[derive(Debug, Clone, Copy, Default)]
pub struct Shape {
    /// Most items a top-level array may hold, and what they are called in the error.
    pub items: Option<(usize, &'static str)>,
    /// Most entries of the arrays under these keys of the top-level object or of a
    /// top-level array's items (a contact's `phones`).
    pub lists: &'static [(&'static str, usize)],
}

/// A parse may hold this many times its body in values, plus [`PARSE_MEMORY_SLACK`]:
/// a body of tiny values (`[[0,0,…]]`) would otherwise take sixteen times its size.
pub const PARSE_MEMORY_FACTOR: usize = 2;
/// Room for a full batch of small contacts, whose values outweigh their text.
pub const PARSE_MEMORY_SLACK: usize = 16 * 1024 * 1024;

/// Reads and parses a body as [`read_json`] does, held to `shape` and to the memory
/// budget while it is parsed.
pub async fn read_json_shaped(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
    timeout: Duration,
    shape: Shape,
) -> Result<Value, ApiError> {
    let labelled = sent_as_json(req)?;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
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
    let parse = move || parse_strict(&body, shape);
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
        ParseError::TooMany { at, field, max } => {
            let message = match (field.is_empty(), shape.items) {
                (true, Some((_, noun))) => format!(
                    "a batch holds at most {max} {noun}; this one has more (read no further)"
                ),
                _ => format!("must hold at most {max} entries"),
            };
            let error = FieldError::new(field, message);
            ApiError::invalid_fields(vec![match at {
                Some(index) => error.at(index),
                None => error,
            }])
        }
        ParseError::OverBudget(budget) => ApiError::TooManyValues(budget),
    })
}

#[derive(Debug)]
enum ParseError {
    Json(serde_json::Error),
    /// The path to the repeated key, as `[3].name` or `attributes.note`.
    DuplicateKey(String),
    /// An array over its cap: the item it is in (in a batch), the field, the cap.
    TooMany {
        at: Option<usize>,
        field: String,
        max: usize,
    },
    /// The values parsed would take more memory than this many bytes.
    OverBudget(usize),
}

/// Why a parse stopped early.
#[derive(Debug, Clone, Copy)]
enum Fault {
    DuplicateKey,
    TooMany(usize),
    OverBudget,
}

/// Parses like `serde_json::from_slice::<Value>`, but refuses an object that names a key
/// twice: serde_json keeps the last one silently, so `{"name":"x","name":"y"}` would be
/// stored as "y" while a CRM's own parser may have read "x". Stops at the first array
/// item over `shape`'s caps and once the values would take more memory than the body
/// allows.
fn parse_strict(bytes: &[u8], shape: Shape) -> Result<Value, ParseError> {
    let trail = RefCell::new(Vec::new());
    let fault = Cell::new(None);
    let budget = bytes
        .len()
        .saturating_mul(PARSE_MEMORY_FACTOR)
        .saturating_add(PARSE_MEMORY_SLACK);
    let spent = Cell::new(0);
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let parsed = Strict {
        trail: &trail,
        fault: &fault,
        spent: &spent,
        budget,
        shape: &shape,
        level: Level::Top,
        cap: None,
    }
    .deserialize(&mut deserializer)
    .and_then(|value| deserializer.end().map(|()| value));
    parsed.map_err(|e| {
        let mut trail = trail.into_inner();
        trail.reverse();
        match fault.get() {
            None => ParseError::Json(e),
            Some(Fault::OverBudget) => ParseError::OverBudget(budget),
            Some(Fault::DuplicateKey) => ParseError::DuplicateKey(path_of(&trail)),
            Some(Fault::TooMany(max)) => match trail.split_first() {
                Some((Step::Index(i), rest)) if shape.items.is_some() => ParseError::TooMany {
                    at: Some(*i),
                    field: path_of(rest),
                    max,
                },
                _ => ParseError::TooMany {
                    at: None,
                    field: path_of(&trail),
                    max,
                },
            },
        }
    })
}

/// `[3].name`, `attributes.note`: the steps outermost first.
fn path_of(trail: &[Step]) -> String {
    let mut path = String::new();
    for step in trail {
        match step {
            Step::Key(key) if path.is_empty() => path.push_str(key),
            Step::Key(key) => {
                path.push('.');
                path.push_str(key);
            }
            Step::Index(i) => path.push_str(&format!("[{i}]")),
        }
    }
    path
}

/// One step of the path to a repeated key.
enum Step {
    Key(String),
    Index(usize),
}

/// Where a value sits, for [`Shape`]'s caps.
#[derive(Clone, Copy, PartialEq)]
enum Level {
    /// The body itself.
    Top,
    /// An item of a top-level array.
    Item,
    Below,
}

/// Heap bytes of a value in an array (the array's buffer holds it).
const VALUE_BYTES: usize = std::mem::size_of::<Value>();
/// What the allocator adds to each allocation.
const ALLOCATION_BYTES: usize = 16;
/// An object is a B-tree whose nodes hold room for 11 entries, allocated whole: an
/// object of one key (`[{"a":0},…]`) takes a node of some 650 bytes for 8 of body.
const NODE_BYTES: usize =
    11 * (std::mem::size_of::<String>() + VALUE_BYTES) + 16 + ALLOCATION_BYTES;
/// Nodes split half full, so each further entry costs a fifth of a node (and a share
/// of the inner nodes above).
const ENTRY_BYTES: usize = NODE_BYTES.div_ceil(5);
/// The fewest items an array allocates room for (Rust's `Vec` of values this size).
const MIN_ITEMS: usize = 4;

/// A JSON value whose objects name each key once. On a repeated key the error unwinds
/// through every enclosing value, each adding its step to `trail` (innermost first); a
/// value that parses costs no more than with serde_json's own `Value`.
#[derive(Clone, Copy)]
struct Strict<'a> {
    trail: &'a RefCell<Vec<Step>>,
    fault: &'a Cell<Option<Fault>>,
    /// Estimated bytes the values parsed so far hold, and how many they may.
    spent: &'a Cell<usize>,
    budget: usize,
    shape: &'a Shape,
    level: Level,
    /// Most items, when this value is an array with a cap.
    cap: Option<usize>,
}

impl Strict<'_> {
    /// On the way out of a failed value: extends the path if a fault is why.
    fn unwinding<E>(self, step: impl FnOnce() -> Step) -> impl FnOnce(E) -> E {
        move |e| {
            if self.fault.get().is_some() {
                self.trail.borrow_mut().push(step());
            }
            e
        }
    }

    fn fail<E: de::Error>(self, fault: Fault, message: &str) -> E {
        self.fault.set(Some(fault));
        E::custom(message)
    }

    /// Counts `bytes` against the budget.
    fn spend<E: de::Error>(self, bytes: usize) -> Result<(), E> {
        let spent = self.spent.get().saturating_add(bytes);
        self.spent.set(spent);
        if spent > self.budget {
            return Err(self.fail(Fault::OverBudget, "the body holds too many values"));
        }
        Ok(())
    }

    /// Grows `items` by hand, counting the new buffer before it is allocated and
    /// while the old one is still held (the copy between them): the budget bounds the
    /// parse's peak, not only what it keeps.
    fn grow<E: de::Error>(self, items: &mut Vec<Value>) -> Result<(), E> {
        let old = items.capacity();
        let new = (old * 2).max(MIN_ITEMS);
        let peak = self
            .spent
            .get()
            .saturating_add(new * VALUE_BYTES + ALLOCATION_BYTES);
        if peak > self.budget {
            return Err(self.fail(Fault::OverBudget, "the body holds too many values"));
        }
        let first = if old == 0 { ALLOCATION_BYTES } else { 0 };
        self.spend((new - old) * VALUE_BYTES + first)?;
        items.reserve_exact(new - items.len());
        Ok(())
    }

    fn string<E: de::Error>(self, v: String) -> Result<Value, E> {
        if v.capacity() > 0 {
            self.spend(v.capacity() + ALLOCATION_BYTES)?;
        }
        Ok(Value::String(v))
    }

    /// The seed for the items of this array.
    fn item(self) -> Self {
        let level = match self.level {
            Level::Top => Level::Item,
            _ => Level::Below,
        };
        Self {
            level,
            cap: None,
            ..self
        }
    }

    /// The seed for the value under `key` of this object.
    fn entry(self, key: &str) -> Self {
        let cap = match self.level {
            Level::Top | Level::Item => self
                .shape
                .lists
                .iter()
                .find(|(name, _)| *name == key)
                .map(|(_, cap)| *cap),
            Level::Below => None,
        };
        Self {
            level: Level::Below,
            cap,
            ..self
        }
    }
}

/// Refuses whatever value it is asked for without reading it: the item past a cap.
struct Refuse<'a>(Strict<'a>, usize);

impl<'de> DeserializeSeed<'de> for Refuse<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, _: D) -> Result<Value, D::Error> {
        Err(self.0.fail(Fault::TooMany(self.1), "too many items"))
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

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        self.string(v.to_owned())
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        self.string(v)
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items: Vec<Value> = Vec::new();
        let top = self.level == Level::Top && self.shape.items.is_some();
        let cap = match top {
            true => self.shape.items.map(|(cap, _)| cap),
            false => self.cap,
        };
        loop {
            let index = items.len();
            // The array itself is over its cap, not the item it refuses: no step.
            let next = if cap == Some(index) {
                seq.next_element_seed(Refuse(self, index))?
            } else {
                seq.next_element_seed(self.item())
                    .map_err(self.unwinding(|| Step::Index(index)))?
            };
            match next {
                Some(item) => {
                    if items.len() == items.capacity() {
                        self.grow(&mut items)?;
                    }
                    items.push(item);
                }
                None => return Ok(Value::Array(items)),
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            let node = if map.is_empty() {
                NODE_BYTES
            } else {
                ENTRY_BYTES
            };
            self.spend(key.capacity() + ALLOCATION_BYTES + node)?;
            let value = match access.next_value_seed(self.entry(&key)) {
                Ok(value) => value,
                Err(e) => return Err(self.unwinding(|| Step::Key(key))(e)),
            };
            match map.entry(key) {
                Entry::Vacant(slot) => {
                    slot.insert(value);
                }
                Entry::Occupied(taken) => {
                    self.trail.borrow_mut().push(Step::Key(taken.key().clone()));
                    return Err(self.fail(Fault::DuplicateKey, "a key appears twice in one object"));
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
        match parse_strict(text.as_bytes(), Shape::default()) {
            Err(ParseError::DuplicateKey(path)) => Some(path),
            _ => None,
        }
    }

    #[test]
    fn values_parse_as_serde_json_parses_them() {
        let text = r#"{"a":[1,-2,2.5,1e308,18446744073709551615,true,null,"ü\u0000"],"b":{"c":{}},"d":[]}"#;
        let strict = parse_strict(text.as_bytes(), Shape::default()).unwrap();
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
    fn objects_of_one_key_are_counted_by_the_node_each_allocates() {
        // 1 MiB of `{"a":0}`: some 85 MiB once parsed, over the 18 MiB budget.
        let items = vec![r#"{"a":0}"#; 128 * 1024].join(",");
        let text = format!("[[{items}]]");
        assert!(matches!(
            parse_strict(text.as_bytes(), Shape::default()),
            Err(ParseError::OverBudget(_))
        ));
    }

    #[test]
    fn a_key_may_repeat_across_objects_and_syntax_errors_stay_syntax_errors() {
        assert!(parse_strict(br#"[{"id":1},{"id":1}]"#, Shape::default()).is_ok());
        assert!(parse_strict(br#"{"a":{"id":1},"b":{"id":1}}"#, Shape::default()).is_ok());
        for text in [r#"{"a": "#, "[] []", r#"{"a":1,}"#] {
            assert!(
                matches!(
                    parse_strict(text.as_bytes(), Shape::default()),
                    Err(ParseError::Json(_))
                ),
                "{text}"
            );
        }
    }
}
