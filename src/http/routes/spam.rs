//! The spam list through the sync API (issue 36): `PUT /api/v1/spam/{number}` flags a
//! number at once (the tenant's own decision, as `cidgate spam add`), `DELETE` takes it
//! off the list. Every instance hears of the change and screens it within milliseconds.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

use crate::admin::spam;
use crate::domain::{FieldError, SpamEntry};
use crate::http::auth::SyncAuth;
use crate::http::body::read_json;
use crate::http::error::ApiError;
use crate::http::state::AppState;

const SPAM_BODY_LIMIT: usize = 4 * 1024;

fn entry_json(entry: &SpamEntry) -> Value {
    json!({
        "number": entry.number,
        "reports": entry.reports,
        "added": entry.added,
        "flagged": entry.flagged,
        "label": entry.label,
        "updated_at": entry.updated_at,
    })
}

/// The optional body of a PUT: `{"label": "…"}`; none at all is fine.
async fn label_of(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
) -> Result<Option<String>, ApiError> {
    let empty = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .is_some_and(|l| l.as_bytes() == b"0")
        || (!req.headers().contains_key(header::CONTENT_LENGTH)
            && !req.headers().contains_key(header::TRANSFER_ENCODING));
    if empty {
        return Ok(None);
    }
    let Value::Object(body) = read_json(req, payload, SPAM_BODY_LIMIT, state.body_timeout).await?
    else {
        return Err(ApiError::invalid_fields(vec![FieldError::new(
            "",
            "the body must be a JSON object",
        )]));
    };
    let mut errors = Vec::new();
    for key in body.keys().filter(|k| *k != "label") {
        errors.push(FieldError::new(
            key.clone(),
            "is not a field of a listed number",
        ));
    }
    let label = match body.get("label") {
        None | Some(Value::Null) => None,
        Some(Value::String(raw)) => crate::trust::label(Some(raw))
            .map_err(|e| errors.push(FieldError::new("label", e)))
            .ok()
            .flatten()
            .map(str::to_owned),
        Some(_) => {
            errors.push(FieldError::new("label", "must be text"));
            None
        }
    };
    if errors.is_empty() {
        Ok(label)
    } else {
        Err(ApiError::invalid_fields(errors))
    }
}

/// `PUT /api/v1/spam/{number}`: flags the number (201 when new to the list, 200 when
/// it was listed already).
pub async fn put(
    req: HttpRequest,
    auth: SyncAuth,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let tenant = &auth.0.tenant;
    let number = spam::number(tenant, &path)?;
    let label = label_of(&req, payload, &state).await?;
    let (new, entry) = spam::add(&state.admin_db(), tenant, &number, label.as_deref()).await?;
    let mut answer = if new {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    };
    Ok(answer.json(entry_json(&entry)))
}

/// `DELETE /api/v1/spam/{number}`: takes the number off the list (204), its reports
/// too; 404 when it was not listed.
pub async fn delete(
    auth: SyncAuth,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let tenant = &auth.0.tenant;
    let number = spam::number(tenant, &path)?;
    spam::remove(&state.admin_db(), tenant, &number).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Registers the spam list's route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/api/v1/spam/{number}")
            .name("/api/v1/spam/{number}")
            .route(web::put().to(put))
            .route(web::delete().to(delete))
            .default_service(web::to(|| async {
                Err::<HttpResponse, _>(ApiError::MethodNotAllowed("PUT, DELETE"))
            })),
    );
}
