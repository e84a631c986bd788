//! `GET /api/lookup` (and `/api/while1voice`): the PBX asks who is calling.

use actix_web::{HttpRequest, HttpResponse, web};

use crate::error::ApiError;
use crate::http::AppState;
use crate::http::auth::{LookupAuth, request_start};
use crate::lookup::{Caller, Degraded, LookupAnswer, LookupQuery};

/// Marks an answer that is not the database's current word (value: stale, unknown,
/// unverified), so PBX logs and monitoring can tell.
pub const DEGRADED_HEADER: &str = "x-cidgate-degraded";

pub async fn lookup(
    req: HttpRequest,
    auth: LookupAuth,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let started = request_start(&req);
    let query = LookupQuery::parse(req.query_string()).map_err(ApiError::BadRequest)?;
    let LookupAuth::Tenant(entry) = auth else {
        return Ok(answer(&LookupAnswer::unknown(), Some(Degraded::Unverified)));
    };
    let tenant = &entry.tenant;
    let caller = Caller::from_param(query.telephone.as_deref(), tenant.region)
        .map_err(|e| ApiError::BadRequest(format!("telephone {e}")))?;
    let outcome = state.lookup.lookup(tenant.id, &caller, started).await;
    let body = match &outcome.hit {
        Some(hit) => LookupAnswer::found(hit),
        None => LookupAnswer::unknown(),
    };
    Ok(answer(&body, outcome.degraded))
}

fn answer(body: &LookupAnswer<'_>, degraded: Option<Degraded>) -> HttpResponse {
    let mut response = HttpResponse::Ok();
    if let Some(degraded) = degraded {
        response.insert_header((DEGRADED_HEADER, degraded.as_str()));
    }
    response.json(body)
}
