//! The CRM sync API: single contacts and batches, scoped to the token's tenant.

pub mod snapshot;

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::contacts;
use crate::domain::{
    ContactInput, ContactRecord, CrmId, FieldError, MAX_PHONE_ENTRIES, Region, TenantId, WriteOp,
    WriteResult, parse_source_time,
};
use crate::http::body::{Shape, read_json_shaped};
use crate::http::error::ApiError;
use crate::http::shared::resource;
use crate::http::{auth::SyncAuth, state::AppState};
use crate::store;

/// One contact body stays small; a batch of 10,000 with attributes needs room.
const CONTACT_BODY_LIMIT: usize = 64 * 1024;
pub const BATCH_BODY_LIMIT: usize = 32 * 1024 * 1024;
pub const MAX_BATCH_ITEMS: usize = 10_000;

/// Caps checked while a body is parsed, before any of it is built past them.
const CONTACT_SHAPE: Shape = Shape {
    items: None,
    lists: &[("phones", MAX_PHONE_ENTRIES)],
};
const BATCH_SHAPE: Shape = Shape {
    items: Some((MAX_BATCH_ITEMS, "operations")),
    lists: &[("phones", MAX_PHONE_ENTRIES)],
};

/// The `{id}` of `/api/v1/contacts/{id}`, decoded from the raw URL: actix's own decoding
/// reads bytes that are not UTF-8 as U+FFFD, so `%FF` and `%FE` would be one contact.
/// `parse` is [`CrmId::parse_for_upsert`] for a PUT, [`CrmId::parse`] otherwise.
fn crm_id_from_path(
    req: &HttpRequest,
    parse: fn(&str) -> Result<CrmId, String>,
) -> Result<CrmId, ApiError> {
    let invalid = |message: String| ApiError::invalid_fields(vec![FieldError::new("id", message)]);
    let raw = req.uri().path().rsplit('/').next().unwrap_or_default();
    let decoded = percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| invalid("must be valid UTF-8 once percent-decoded".into()))?;
    parse(&decoded).map_err(invalid)
}

fn json_object(value: Value, what: &str) -> Result<Map<String, Value>, ApiError> {
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(ApiError::invalid_fields(vec![FieldError::new(
            "",
            format!("{what} must be a JSON object"),
        )])),
    }
}

/// `PUT /api/v1/contacts/{id}`: create (201) or replace (200); an older write is
/// ignored and answered `"result":"stale"` with the stored contact.
pub async fn put_contact(
    req: HttpRequest,
    auth: SyncAuth,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let tenant = &auth.0.tenant;
    let id = crm_id_from_path(&req, CrmId::parse_for_upsert)?;
    let body = json_object(
        read_json_shaped(
            &req,
            payload,
            CONTACT_BODY_LIMIT,
            state.body_timeout,
            CONTACT_SHAPE,
        )
        .await?,
        "the body",
    )?;
    let mut errors = Vec::new();
    if body
        .get("id")
        .is_some_and(|body_id| !id_matches(body_id, &id))
    {
        errors.push(FieldError::new("id", "differs from the id in the URL"));
    }
    let input = match ContactInput::from_json(&body, tenant.region, &["id"]) {
        Ok(input) if errors.is_empty() => input,
        Ok(_) => return Err(ApiError::invalid_fields(errors)),
        Err(mut more) => {
            errors.append(&mut more);
            return Err(ApiError::invalid_fields(errors));
        }
    };

    let outcome = state
        .contacts
        .write(tenant.id, &[WriteOp::Upsert(id.clone(), Box::new(input))])
        .await?;
    let stored = read_contact(&state, tenant.id, &id).await?;

    let result = outcome.results[0];
    let status = if result == WriteResult::Created {
        actix_web::http::StatusCode::CREATED
    } else {
        actix_web::http::StatusCode::OK
    };
    Ok(HttpResponse::build(status).json(json!({"result": result, "contact": stored})))
}

async fn read_contact(
    state: &AppState,
    tenant: TenantId,
    id: &CrmId,
) -> anyhow::Result<Option<ContactRecord>> {
    store::with_client(&state.pool, state.write_timeout, async |client| {
        store::contacts::get(&*client, tenant, id).await
    })
    .await
}

/// The body may repeat the id, as a string or a number, but must not contradict the URL.
fn id_matches(body_id: &Value, id: &CrmId) -> bool {
    match body_id {
        Value::String(s) => s == id.as_str(),
        Value::Number(n) => n.to_string() == id.as_str(),
        _ => false,
    }
}

/// `GET /api/v1/contacts/{id}`
pub async fn get_contact(
    req: HttpRequest,
    auth: SyncAuth,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let tenant = &auth.0.tenant;
    let id = crm_id_from_path(&req, CrmId::parse)?;
    match read_contact(&state, tenant.id, &id).await? {
        Some(contact) => Ok(HttpResponse::Ok().json(contact)),
        None => Err(ApiError::NotFound(format!("no contact with id {id}"))),
    }
}

/// `DELETE /api/v1/contacts/{id}[?updated_at=…]`: 204 whether or not the contact existed.
/// With the source's deletion time the deletion is remembered, so an older upsert that
/// arrives later is stale; a deletion older than the stored contact is itself ignored
/// (200, `"result":"stale"` with the stored contact).
pub async fn delete_contact(
    req: HttpRequest,
    auth: SyncAuth,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let tenant = &auth.0.tenant;
    let id = crm_id_from_path(&req, CrmId::parse)?;
    let deleted_at = deletion_time(req.query_string())?;
    let outcome = state
        .contacts
        .write(tenant.id, &[WriteOp::Delete(id.clone(), deleted_at)])
        .await?;
    if outcome.results[0] == WriteResult::Stale {
        let stored = read_contact(&state, tenant.id, &id).await?;
        return Ok(
            HttpResponse::Ok().json(json!({"result": WriteResult::Stale, "contact": stored}))
        );
    }
    Ok(HttpResponse::NoContent().finish())
}

/// The `updated_at` query parameter of a delete, if given.
fn deletion_time(query: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
    let Some((_, value)) =
        form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "updated_at")
    else {
        return Ok(None);
    };
    parse_source_time(&Value::String(value.into_owned()), Utc::now())
        .map(Some)
        .map_err(|message| ApiError::invalid_fields(vec![FieldError::new("updated_at", message)]))
}

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

/// `POST /api/v1/contacts/batch`: up to 10,000 upserts and deletes applied in order in
/// one transaction. Any invalid item rejects the whole batch with every problem listed.
pub async fn batch(
    req: HttpRequest,
    auth: SyncAuth,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let tenant = &auth.0.tenant;
    // Held from before the body is read until it is validated: what a batch costs in
    // memory, and what a burst of them must not multiply without bound.
    let turn = state.batch_gate.turn().await?;
    let Value::Array(items) = read_json_shaped(
        &req,
        payload,
        BATCH_BODY_LIMIT,
        state.body_timeout,
        BATCH_SHAPE,
    )
    .await?
    else {
        return Err(ApiError::invalid_fields(vec![FieldError::new(
            "",
            "the body must be a JSON array of operations",
        )]));
    };
    // Validation (normalizing every number) takes milliseconds for a full batch: on the
    // blocking pool and every core, not on the worker that also answers lookups.
    let region = tenant.region;
    let ops = web::block(move || parse_batch(items, region))
        .await
        .map_err(|e| ApiError::Unexpected(anyhow::anyhow!("validating a batch: {e}")))?
        .map_err(ApiError::invalid_fields)?;
    drop(turn);

    let outcome = state.contacts.write(tenant.id, &ops).await?;

    let mut summary = BatchSummary::default();
    for (index, (result, op)) in outcome.results.into_iter().zip(&ops).enumerate() {
        match result {
            WriteResult::Created => summary.created += 1,
            WriteResult::Updated => summary.updated += 1,
            WriteResult::Deleted => summary.deleted += 1,
            WriteResult::Absent => summary.absent += 1,
            WriteResult::Stale => summary.stale.push(StaleItem {
                index,
                id: op.id().clone(),
            }),
        }
    }
    Ok(HttpResponse::Ok().json(summary))
}

/// Validates every item on every core, collecting each problem with its index.
fn parse_batch(items: Vec<Value>, region: Region) -> Result<Vec<WriteOp>, Vec<FieldError>> {
    let (ops, errors) = contacts::validate_in_parallel(items, |item, index| {
        parse_item(item, region)
            .map_err(|found| found.into_iter().map(|e| e.at(index)).collect::<Vec<_>>())
    });
    if errors.is_empty() {
        Ok(ops)
    } else {
        Err(errors.into_iter().flatten().collect())
    }
}

fn parse_item(item: Value, region: Region) -> Result<WriteOp, Vec<FieldError>> {
    let Value::Object(map) = item else {
        return Err(vec![FieldError::new("", "must be a JSON object")]);
    };
    let op = map.get("op").and_then(Value::as_str);
    let parse_id = match op {
        Some("upsert") => CrmId::parse_for_upsert,
        _ => CrmId::parse,
    };
    let id = match map.get("id") {
        Some(Value::String(s)) => parse_id(s).map_err(|e| FieldError::new("id", e)),
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => {
            parse_id(&n.to_string()).map_err(|e| FieldError::new("id", e))
        }
        Some(_) => Err(FieldError::new("id", "must be a string or an integer")),
        None => Err(FieldError::new("id", "is required")),
    };
    match op {
        Some("upsert") => WriteOp::upsert(id, ContactInput::from_json(&map, region, &["op", "id"])),
        Some("delete") => {
            let mut errors: Vec<FieldError> = map
                .keys()
                .filter(|k| !["op", "id", "updated_at"].contains(&k.as_str()))
                .map(|k| FieldError::new(k, "is not a field of a delete"))
                .collect();
            let when = match map.get("updated_at").filter(|v| !v.is_null()) {
                None => None,
                Some(v) => parse_source_time(v, Utc::now())
                    .map_err(|message| errors.push(FieldError::new("updated_at", message)))
                    .ok(),
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

/// Registers the sync API's contact routes: the batch and the snapshot (paths a CRM
/// contact's id may take too: such a contact is still read and deleted there), then
/// single contacts.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        resource("/api/v1/contacts/batch", "GET, PUT, DELETE, POST")
            .route(web::post().to(batch))
            // A CRM contact may be called `batch` too.
            .route(web::put().to(put_contact))
            .route(web::get().to(get_contact))
            .route(web::delete().to(delete_contact)),
    )
    .service(
        resource("/api/v1/contacts/snapshot", "GET, PUT, DELETE")
            .route(web::put().to(snapshot::replace))
            // A CRM contact called `snapshot` can still be read and deleted (written
            // through a batch).
            .route(web::get().to(get_contact))
            .route(web::delete().to(delete_contact)),
    )
    .service(
        resource("/api/v1/contacts/{id}", "GET, PUT, DELETE")
            .route(web::put().to(put_contact))
            .route(web::get().to(get_contact))
            .route(web::delete().to(delete_contact)),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_parsed_in_parts_keeps_its_order_and_item_numbers() {
        let region = Region::parse("RO").unwrap();
        let items: Vec<Value> = (0..2_000)
            .map(|i| match i {
                5 | 1_700 => json!({"op": "upsert", "id": i.to_string(), "phones": []}),
                _ => json!({"op": "upsert", "id": i.to_string(), "name": "A", "phones": []}),
            })
            .collect();
        let errors = parse_batch(items.clone(), region).unwrap_err();
        let at: Vec<Option<usize>> = errors.iter().map(|e| e.index).collect();
        assert_eq!(at, [Some(5), Some(1_700)]);

        let valid: Vec<Value> = items
            .into_iter()
            .enumerate()
            .filter(|(i, _)| ![5, 1_700].contains(i))
            .map(|(_, item)| item)
            .collect();
        let ids: Vec<String> = parse_batch(valid, region)
            .unwrap()
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
