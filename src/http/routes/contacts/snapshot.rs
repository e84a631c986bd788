//! `PUT /api/v1/contacts/snapshot`: a full CSV export that replaces the token's tenant's
//! contacts in one transaction (see [`crate::contacts::snapshot`]).

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;

use crate::contacts::snapshot::{self, SnapshotCounts, SnapshotError};
use crate::domain::FieldError;
use crate::http::body::{declared_length, sent_as_csv};
use crate::http::error::ApiError;
use crate::http::stream;
use crate::http::{auth::SyncAuth, state::AppState};

/// The answer: what was written, or (422) every rejected row, when nothing was.
#[derive(Debug, Serialize)]
struct SnapshotSummary<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    #[serde(flatten)]
    counts: SnapshotCounts,
    rejected: Vec<RejectedLine<'a>>,
}

/// One problem of one rejected row, by its line in the CSV.
#[derive(Debug, Serialize)]
struct RejectedLine<'a> {
    line: u64,
    field: &'a str,
    message: &'a str,
}

/// Streams the body (CSV, as `cidgate import` reads it) into the snapshot while it
/// arrives: 200 with the counts; 422 naming every rejected row, or for an empty snapshot
/// without `?allow_empty=true`; 400 for a malformed file. Nothing is written unless 200.
pub async fn replace(
    req: HttpRequest,
    auth: SyncAuth,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let tenant = &auth.0.tenant;
    sent_as_csv(&req)?;
    let allow_empty = allow_empty(req.query_string())?;
    let limit = state.snapshot_max_bytes;
    if declared_length(&req).is_some_and(|len| len > limit) {
        return Err(ApiError::PayloadTooLarge(
            usize::try_from(limit).unwrap_or(usize::MAX),
        ));
    }

    let (pump, reader) = stream::pipe();
    let mut reader = Some(reader);
    // As long as the body takes to arrive: its chunks have their own time limit.
    let writer = state.contacts.unlimited();
    let written = snapshot::replace(&writer, tenant.id, tenant.region, allow_empty, || {
        reader.take().ok_or(SnapshotError::NotRepeatable)
    });
    // A body cut short, too large or too slow answers at once, dropping the write (its
    // transaction rolls back); otherwise the write decides.
    let pumped = pump.run(payload, limit, state.body_timeout);
    let ((), written) = futures_util::future::try_join(pumped, async { Ok(written.await) }).await?;
    let rows = match written {
        Ok(counts) => {
            return Ok(HttpResponse::Ok().json(SnapshotSummary {
                error: None,
                message: None,
                counts,
                rejected: Vec::new(),
            }));
        }
        Err(SnapshotError::Rejected(rows)) => rows,
        Err(SnapshotError::Empty) => {
            return Err(ApiError::invalid_fields(vec![FieldError::new(
                "allow_empty",
                "is not set, and the snapshot holds no contacts: nothing was written \
                 (?allow_empty=true deletes every contact)",
            )]));
        }
        Err(SnapshotError::Malformed(e)) => return Err(ApiError::BadRequest(format!("{e:#}"))),
        Err(SnapshotError::NotRepeatable) => {
            return Err(ApiError::Contended(anyhow::anyhow!(
                "a snapshot lost a race and its body cannot be read again"
            )));
        }
        Err(SnapshotError::Write(e)) => return Err(e.into()),
    };
    let rejected = rows
        .iter()
        .flat_map(|row| {
            row.errors.iter().map(|e| RejectedLine {
                line: row.line,
                field: &e.field,
                message: &e.message,
            })
        })
        .collect();
    Ok(HttpResponse::UnprocessableEntity().json(SnapshotSummary {
        error: Some("invalid_fields"),
        message: Some(format!(
            "{} rows were rejected; nothing was written",
            rows.len()
        )),
        counts: SnapshotCounts::default(),
        rejected,
    }))
}

/// The `allow_empty` query parameter: `true` or `false` (the default).
fn allow_empty(query: &str) -> Result<bool, ApiError> {
    let mut allow = false;
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        if name == "allow_empty" {
            allow = match value.as_ref() {
                "true" => true,
                "false" => false,
                _ => {
                    return Err(ApiError::invalid_fields(vec![FieldError::new(
                        "allow_empty",
                        "must be true or false",
                    )]));
                }
            };
        }
    }
    Ok(allow)
}
