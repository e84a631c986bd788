//! `POST /api/v1/contacts/batch`: up to 10,000 upserts and deletes applied in order in
//! one transaction. Any invalid item rejects the whole batch with every problem listed.
//!
//! Validating a batch (every phone number parsed) costs the gateway about as much CPU as
//! the writes cost PostgreSQL, so the two overlap: a blocking thread validates the batch
//! piece by piece while the handler writes each valid piece in the batch's transaction.
//! An invalid item found later rolls that transaction back: nothing is half-written.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::de::{Deserializer as _, IgnoredAny, SeqAccess, Visitor};
use serde_json::Value;
use tokio::sync::mpsc;

use super::contacts::write;
use crate::domain::{ContactInput, CrmId, FieldError, Region, TenantId};
use crate::error::ApiError;
use crate::http::{AppState, auth::SyncAuth, body};
use crate::store::contacts::{self, BatchWriter, WriteOp, WriteOutcome, WriteResult};

/// A batch of 10,000 with attributes needs room.
const BATCH_BODY_LIMIT: usize = 32 * 1024 * 1024;
pub const MAX_BATCH_ITEMS: usize = 10_000;
/// Items validated before their writes start: few enough that the writes start early,
/// enough that each statement carries many rows.
const PIECE: usize = 2_000;

#[derive(Debug, Default, Serialize)]
struct BatchSummary {
    created: usize,
    updated: usize,
    deleted: usize,
    /// Deletes of contacts that were not there.
    absent: usize,
    stale: Vec<StaleItem>,
}

#[derive(Debug, Serialize)]
struct StaleItem {
    index: usize,
    id: CrmId,
}

/// What the validating thread sends, in this order: pieces, then the end or a refusal.
enum Message {
    /// The ops of consecutive valid items, and what is wrong with the others.
    Piece(Vec<WriteOp>, Vec<FieldError>),
    /// Every item was read.
    End,
    /// The body as a whole is refused: not JSON, not an array, too many items.
    Refused(ApiError),
}

/// Everything the validating thread has sent so far.
#[derive(Default)]
struct Validated {
    ops: Vec<WriteOp>,
    errors: Vec<FieldError>,
    refused: Option<ApiError>,
    complete: bool,
}

impl Validated {
    fn add(&mut self, message: Message) {
        match message {
            Message::Piece(ops, errors) => {
                self.ops.extend(ops);
                self.errors.extend(errors);
            }
            Message::End => self.complete = true,
            Message::Refused(e) => self.refused = Some(e),
        }
    }

    /// False once anything read is wrong: the batch must not be written.
    fn valid(&self) -> bool {
        self.errors.is_empty() && self.refused.is_none()
    }
}

/// `POST /api/v1/contacts/batch`
pub async fn batch(
    req: HttpRequest,
    auth: SyncAuth,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let tenant = auth.0.tenant.id;
    let region = auth.0.tenant.region;
    let body = body::read_body(&req, payload, BATCH_BODY_LIMIT).await?;
    // On the blocking pool, not on the worker that also answers lookups.
    let (sender, mut messages) = mpsc::channel(1);
    let validator = tokio::task::spawn_blocking(move || validate(&body, region, &sender));

    let mut validated = Validated::default();
    let written = write_while_validating(&state, tenant, &mut messages, &mut validated).await;
    // The writes may have stopped early: read the rest all the same, so that a bad batch
    // is answered with everything wrong with it.
    while let Some(message) = messages.recv().await {
        validated.add(message);
    }
    validator
        .await
        .map_err(|e| ApiError::Unexpected(anyhow::anyhow!("validating a batch: {e}")))?;
    if let Some(refused) = validated.refused {
        return Err(refused);
    }
    if !validated.errors.is_empty() {
        return Err(ApiError::invalid_fields(validated.errors));
    }

    let ids: Vec<CrmId> = validated
        .ops
        .iter()
        .map(|op| match op {
            WriteOp::Upsert(id, _) | WriteOp::Delete(id, _) => id.clone(),
        })
        .collect();
    let outcome = match written {
        Ok(Some(outcome)) => {
            state.contacts_written(tenant, &outcome.numbers).await;
            outcome
        }
        Ok(None) => WriteOutcome::default(),
        // Another writer created a contact this batch was creating: nothing was
        // written, and the next attempt (with every op known now) sees that contact.
        Err(e) if contacts::lost_creation_race(&e) => write(&state, tenant, validated.ops).await?,
        Err(e) => return Err(e.into()),
    };

    let mut summary = BatchSummary::default();
    for (index, (result, id)) in outcome.results.into_iter().zip(ids).enumerate() {
        match result {
            WriteResult::Created => summary.created += 1,
            WriteResult::Updated => summary.updated += 1,
            WriteResult::Deleted => summary.deleted += 1,
            WriteResult::Absent => summary.absent += 1,
            WriteResult::Stale => summary.stale.push(StaleItem { index, id }),
        }
    }
    Ok(HttpResponse::Ok().json(summary))
}

/// Writes each piece as it is validated, in one transaction committed once the whole
/// batch was read and found valid. `None`: nothing was written (an empty batch, or one
/// that must not be written).
async fn write_while_validating(
    state: &AppState,
    tenant: TenantId,
    messages: &mut mpsc::Receiver<Message>,
    validated: &mut Validated,
) -> anyhow::Result<Option<WriteOutcome>> {
    // Nothing touches the database before the first piece proves valid.
    while validated.ops.is_empty() {
        match messages.recv().await {
            Some(message) => validated.add(message),
            None => return Ok(None),
        }
        if !validated.valid() || validated.complete {
            return Ok(None);
        }
    }
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    let mut writer = BatchWriter::begin(&tx, tenant).await?;
    let mut done = 0;
    loop {
        writer.write(&validated.ops[done..]).await?;
        done = validated.ops.len();
        match messages.recv().await {
            Some(message) => validated.add(message),
            None => break,
        }
        // Returning drops the transaction, which rolls back what was written.
        if !validated.valid() {
            return Ok(None);
        }
    }
    if !validated.complete {
        return Ok(None);
    }
    let outcome = writer.finish().await?;
    tx.commit().await?;
    Ok(Some(outcome))
}

/// Reads the body item by item and validates it piece by piece, sending each piece on,
/// then the end (or why the body is refused). Stops when nobody listens any more.
fn validate(body: &[u8], region: Region, messages: &mpsc::Sender<Message>) {
    let send = |message| messages.blocking_send(message).is_ok();
    let is_array = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
    if !is_array {
        let refusal = match body::parse_json(body) {
            Err(e) => e,
            Ok(_) => ApiError::invalid_fields(vec![FieldError::new(
                "",
                "the body must be a JSON array of operations",
            )]),
        };
        send(Message::Refused(refusal));
        return;
    }
    let mut items = serde_json::Deserializer::from_slice(body);
    let read = items
        .deserialize_seq(Pieces {
            region,
            send: &send,
        })
        .and_then(|read| items.end().map(|()| read));
    let last = match read {
        Ok(Read::All) => Message::End,
        Ok(Read::Stopped) => return,
        Ok(Read::TooMany(count)) => {
            Message::Refused(ApiError::invalid_fields(vec![FieldError::new(
                "",
                format!("a batch holds at most {MAX_BATCH_ITEMS} operations; this one has {count}"),
            )]))
        }
        Err(e) => Message::Refused(ApiError::BadRequest(format!(
            "the body is not valid JSON: {e}"
        ))),
    };
    send(last);
}

/// How reading the items ended.
enum Read {
    All,
    /// The request is gone.
    Stopped,
    TooMany(usize),
}

/// Reads a JSON array, validating and sending its items in pieces of `PIECE`.
struct Pieces<'a, F> {
    region: Region,
    send: &'a F,
}

impl<'de, F: Fn(Message) -> bool> Visitor<'de> for Pieces<'_, F> {
    type Value = Read;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON array of operations")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<Read, A::Error> {
        let mut first = 0;
        let mut piece = Vec::with_capacity(PIECE);
        while let Some(item) = items.next_element::<Value>()? {
            if first + piece.len() == MAX_BATCH_ITEMS {
                let mut count = MAX_BATCH_ITEMS + 1;
                while items.next_element::<IgnoredAny>()?.is_some() {
                    count += 1;
                }
                return Ok(Read::TooMany(count));
            }
            piece.push(item);
            if piece.len() == PIECE {
                let full = std::mem::replace(&mut piece, Vec::with_capacity(PIECE));
                let (ops, errors) = validate_piece(full, first, self.region);
                if !(self.send)(Message::Piece(ops, errors)) {
                    return Ok(Read::Stopped);
                }
                first += PIECE;
            }
        }
        if !piece.is_empty() {
            let (ops, errors) = validate_piece(piece, first, self.region);
            if !(self.send)(Message::Piece(ops, errors)) {
                return Ok(Read::Stopped);
            }
        }
        Ok(Read::All)
    }
}

/// Validates consecutive items, the first of which is item `first` of the batch, on
/// every core; each problem is reported with its item's index.
fn validate_piece(
    items: Vec<Value>,
    first: usize,
    region: Region,
) -> (Vec<WriteOp>, Vec<FieldError>) {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let part = items.len().div_ceil(threads).max(256);
    let mut items = items;
    let mut parts = Vec::new();
    while items.len() > part {
        let rest = items.split_off(part);
        parts.push(std::mem::replace(&mut items, rest));
    }
    parts.push(items);
    let parsed = std::thread::scope(|scope| {
        let workers: Vec<_> = parts
            .into_iter()
            .enumerate()
            .map(|(n, items)| scope.spawn(move || parse_part(items, first + n * part, region)))
            .collect();
        workers
            .into_iter()
            .map(|worker| {
                worker
                    .join()
                    .unwrap_or_else(|p| std::panic::resume_unwind(p))
            })
            .collect::<Vec<_>>()
    });
    let mut ops = Vec::new();
    let mut errors = Vec::new();
    for (part_ops, part_errors) in parsed {
        ops.extend(part_ops);
        errors.extend(part_errors);
    }
    (ops, errors)
}

/// Parses consecutive items, the first of which is item `first` of the batch.
fn parse_part(items: Vec<Value>, first: usize, region: Region) -> (Vec<WriteOp>, Vec<FieldError>) {
    let mut ops = Vec::with_capacity(items.len());
    let mut errors = Vec::new();
    for (index, item) in items.into_iter().enumerate() {
        match parse_item(item, region) {
            Ok(op) => ops.push(op),
            Err(found) => errors.extend(found.into_iter().map(|e| e.at(first + index))),
        }
    }
    (ops, errors)
}

fn parse_item(item: Value, region: Region) -> Result<WriteOp, Vec<FieldError>> {
    let Value::Object(map) = item else {
        return Err(vec![FieldError::new("", "must be a JSON object")]);
    };
    let id = match map.get("id") {
        Some(Value::String(s)) => CrmId::parse(s).map_err(|e| FieldError::new("id", e)),
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => {
            CrmId::parse(&n.to_string()).map_err(|e| FieldError::new("id", e))
        }
        Some(_) => Err(FieldError::new("id", "must be a string or an integer")),
        None => Err(FieldError::new("id", "is required")),
    };
    match map.get("op").and_then(Value::as_str) {
        Some("upsert") => WriteOp::upsert(id, ContactInput::from_json(&map, region, &["op", "id"])),
        Some("delete") => {
            let mut errors: Vec<FieldError> = map
                .keys()
                .filter(|k| !["op", "id", "updated_at"].contains(&k.as_str()))
                .map(|k| FieldError::new(k, "is not a field of a delete"))
                .collect();
            let when = match map.get("updated_at").filter(|v| !v.is_null()) {
                None => None,
                Some(v) => match v.as_str().map(DateTime::parse_from_rfc3339) {
                    Some(Ok(t)) => Some(t.with_timezone(&Utc)),
                    _ => {
                        errors.push(FieldError::new(
                            "updated_at",
                            "must be an RFC 3339 timestamp",
                        ));
                        None
                    }
                },
            };
            match id {
                Ok(id) if errors.is_empty() => Ok(WriteOp::Delete(id, when)),
                Ok(_) => Err(errors),
                Err(e) => {
                    errors.insert(0, e);
                    Err(errors)
                }
            }
        }
        _ => Err(vec![FieldError::new(
            "op",
            "must be \"upsert\" or \"delete\"",
        )]),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_piece_validated_in_parts_keeps_its_order_and_item_numbers() {
        let region = Region::parse("RO").unwrap();
        let items: Vec<Value> = (0..2_000)
            .map(|i| match i {
                5 | 1_700 => json!({"op": "upsert", "id": i.to_string(), "phones": []}),
                _ => json!({"op": "upsert", "id": i.to_string(), "name": "A", "phones": []}),
            })
            .collect();
        let (_, errors) = validate_piece(items.clone(), 0, region);
        let at: Vec<Option<usize>> = errors.iter().map(|e| e.index).collect();
        assert_eq!(at, [Some(5), Some(1_700)]);
        let (_, errors) = validate_piece(items[1_000..].to_vec(), 1_000, region);
        let at: Vec<Option<usize>> = errors.iter().map(|e| e.index).collect();
        assert_eq!(
            at,
            [Some(1_700)],
            "indexes count from the piece's first item"
        );

        let valid: Vec<Value> = items
            .into_iter()
            .enumerate()
            .filter(|(i, _)| ![5, 1_700].contains(i))
            .map(|(_, item)| item)
            .collect();
        let (ops, errors) = validate_piece(valid, 0, region);
        assert!(errors.is_empty());
        let ids: Vec<String> = ops
            .iter()
            .map(|op| match op {
                WriteOp::Upsert(id, _) | WriteOp::Delete(id, _) => id.as_str().to_owned(),
            })
            .collect();
        let expected: Vec<String> = (0..2_000)
            .filter(|i| ![5, 1_700].contains(i))
            .map(|i: i32| i.to_string())
            .collect();
        assert_eq!(ids, expected);
    }
}
