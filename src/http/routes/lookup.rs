//! `GET /api/lookup` (and `/api/while1voice`): the PBX asks who is calling.

use actix_web::{HttpRequest, HttpResponse, web};

use crate::domain::MAX_RAW_LEN;
use crate::error::ApiError;
use crate::http::{AppState, auth::LookupAuth};
use crate::lookup::Caller;

/// The parameters of a lookup. Unknown parameters are ignored (PBXs add their own);
/// a repeated parameter counts once, first wins.
#[derive(Debug, Default)]
struct LookupQuery {
    telephone: Option<String>,
    dnid: Option<String>,
}

impl LookupQuery {
    fn parse(query: &str) -> Result<Self, ApiError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).map_err(|_| {
            ApiError::BadRequest("the query string is not valid URL encoding".into())
        })?;
        let mut parsed = Self::default();
        for (name, value) in pairs {
            let slot = match name.as_str() {
                "telephone" => &mut parsed.telephone,
                "dnid" => &mut parsed.dnid,
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(value);
            }
        }
        if parsed.dnid.as_ref().is_some_and(|d| d.len() > MAX_RAW_LEN) {
            return Err(ApiError::BadRequest(format!(
                "dnid is longer than {MAX_RAW_LEN} characters"
            )));
        }
        Ok(parsed)
    }
}

pub async fn lookup(
    req: HttpRequest,
    auth: LookupAuth,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let LookupAuth(tenant) = auth;
    let query = LookupQuery::parse(req.query_string())?;
    let caller = Caller::from_param(query.telephone.as_deref(), &tenant)
        .map_err(|e| ApiError::BadRequest(format!("telephone {e}")))?;
    let answer = state.lookup.lookup(&tenant, &caller).await?;
    Ok(HttpResponse::Ok().json(answer))
}
