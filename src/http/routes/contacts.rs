//! The CRM sync API: single contacts and batches, scoped to the token's tenant.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use crate::domain::{ContactInput, CrmId, FieldError, TenantId};
use crate::error::ApiError;
use crate::http::{AppState, auth::SyncAuth, body::read_json};
use crate::store::contacts::{self, WriteOp, WriteOutcome, WriteResult};

/// One contact body stays small.
const CONTACT_BODY_LIMIT: usize = 64 * 1024;

fn crm_id_from_path(raw: &str) -> Result<CrmId, ApiError> {
    CrmId::parse(raw).map_err(|e| ApiError::invalid_fields(vec![FieldError::new("id", e)]))
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
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let tenant = &auth.0.tenant;
    let id = crm_id_from_path(&path)?;
    let body = json_object(
        read_json(&req, payload, CONTACT_BODY_LIMIT).await?,
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

    let outcome = write(
        &state,
        tenant.id,
        vec![WriteOp::Upsert(id.clone(), Box::new(input))],
    )
    .await?;
    let stored = contacts::get(&state.pool.get().await?, tenant.id, &id).await?;

    let result = outcome.results[0];
    let status = if result == WriteResult::Created {
        actix_web::http::StatusCode::CREATED
    } else {
        actix_web::http::StatusCode::OK
    };
    Ok(HttpResponse::build(status).json(json!({"result": result, "contact": stored})))
}

/// Applies writes in one transaction, then drops this instance's cached answers for
/// every number they touched (other instances hear of it through NOTIFY).
pub(super) async fn write(
    state: &AppState,
    tenant: TenantId,
    ops: Vec<WriteOp>,
) -> Result<WriteOutcome, ApiError> {
    let mut attempt = 1;
    let outcome = loop {
        match write_once(state, tenant, &ops).await {
            // Another writer created a contact this batch was creating: nothing was
            // written, and the next attempt sees that contact.
            Err(e) if attempt < WRITE_ATTEMPTS && contacts::lost_creation_race(&e) => {
                attempt += 1;
            }
            result => break result?,
        }
    };
    state.contacts_written(tenant, &outcome.numbers).await;
    Ok(outcome)
}

const WRITE_ATTEMPTS: u32 = 3;

async fn write_once(
    state: &AppState,
    tenant: TenantId,
    ops: &[WriteOp],
) -> anyhow::Result<WriteOutcome> {
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    let outcome = contacts::apply(&tx, tenant, ops).await?;
    tx.commit().await?;
    Ok(outcome)
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
    auth: SyncAuth,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let tenant = &auth.0.tenant;
    let id = crm_id_from_path(&path)?;
    let client = state.pool.get().await?;
    match contacts::get(&client, tenant.id, &id).await? {
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
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let tenant = &auth.0.tenant;
    let id = crm_id_from_path(&path)?;
    let deleted_at = deletion_time(req.query_string())?;
    let outcome = write(
        &state,
        tenant.id,
        vec![WriteOp::Delete(id.clone(), deleted_at)],
    )
    .await?;
    if outcome.results[0] == WriteResult::Stale {
        let stored = contacts::get(&state.pool.get().await?, tenant.id, &id).await?;
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
    DateTime::parse_from_rfc3339(&value)
        .map(|t| Some(t.with_timezone(&Utc)))
        .map_err(|_| {
            ApiError::invalid_fields(vec![FieldError::new(
                "updated_at",
                "must be an RFC 3339 timestamp such as 2026-11-20T10:00:00Z",
            )])
        })
}
