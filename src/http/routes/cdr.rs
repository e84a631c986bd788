//! `GET /api/v1/reportsCDRLogs` (reference/crm-integration-click2call-cdr): ended calls
//! of a date range, page by page with a cursor, or the one call of an `activecallkey`.
//! A parameter it cannot read answers `400` naming it.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono_tz::Tz;
use serde_json::json;

use crate::calls::cdr::{
    Cursor, RangeEnd, csv_header, csv_rows, parse_date, range_problem, tenant_zone,
};
use crate::domain::{CallRecord, Direction, FieldError, Outcome, PhoneNumber, Region};
use crate::http::auth::ReportAuth;
use crate::http::error::ApiError;
use crate::http::shared::resource;
use crate::http::state::AppState;
use crate::store::{self, cdr};

/// Most calls on a page (the reference's); `limit` may lower it.
pub const MAX_PAGE: i64 = 100;
/// The CSV answer's cursor, for the next page.
pub const CURSOR_HEADER: &str = "x-cursor";

const PARAMETERS: &[&str] = &[
    "startdate",
    "finishdate",
    "cursor",
    "limit",
    "activecallkey",
    "direction",
    "agent",
    "number",
    "outcome",
    "token",
];

pub async fn cdr_logs(
    req: HttpRequest,
    auth: ReportAuth,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let tenant = &auth.tenant.tenant;
    let zone = tenant_zone(&tenant.settings);
    let params = Params::parse(req.query_string())?;
    let csv = wants_csv(&req);
    // A service user's key sees its agents' and groups' calls only.
    let access = store::with_client(&state.pool, state.write_timeout, async |client| {
        let user = store::service_users::of_token(&*client, tenant.id, auth.token_id).await?;
        store::service_users::access(&*client, tenant.id, user.as_ref()).await
    })
    .await?;
    if let Some(key) = params.get("activecallkey") {
        let found = store::with_client(&state.pool, state.write_timeout, async |client| {
            cdr::find(&*client, tenant.id, key, &access).await
        })
        .await?;
        let calls: Vec<CallRecord> = found.into_iter().collect();
        return answer(calls, None, csv, zone);
    }
    let limit = match params.get("limit") {
        None => MAX_PAGE,
        Some(raw) => raw
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| invalid("limit", format!("must be an integer from 1 to {MAX_PAGE}")))?,
    };
    let cursor = match params.get("cursor") {
        Some(raw) => Some(Cursor::decode(raw).map_err(|m| invalid("cursor", m))?),
        None => None,
    };
    let mut filter = match &cursor {
        Some(cursor) => cursor.filter.clone(),
        None => filter(&params, zone, tenant.region)?,
    };
    filter.limit_to(&access);
    let page = store::with_client(&state.pool, state.write_timeout, async |client| {
        let position = match cursor {
            Some(cursor) => cursor.position,
            None => cdr::start(&*client, tenant.id).await?,
        };
        cdr::page(&*client, tenant.id, &filter, position, limit).await
    })
    .await?;
    let next = Cursor {
        position: page.next,
        filter,
    };
    answer(page.calls, Some(next.encode()), csv, zone)
}

fn answer(
    calls: Vec<CallRecord>,
    cursor: Option<String>,
    csv: bool,
    zone: Tz,
) -> Result<HttpResponse, ApiError> {
    if !csv {
        return Ok(HttpResponse::Ok().json(json!({"cursor": cursor, "CallList": calls.iter().map(CallRecord::cdr).collect::<Vec<_>>()})));
    }
    let mut out = csv::Writer::from_writer(Vec::new());
    csv_header(&mut out)
        .and_then(|()| csv_rows(&mut out, &calls, zone))
        .map_err(|e| ApiError::Unexpected(e.into()))?;
    let body = out
        .into_inner()
        .map_err(|e| ApiError::Unexpected(anyhow::anyhow!("writing CSV: {e}")))?;
    let mut response = HttpResponse::Ok();
    response.content_type("text/csv; charset=utf-8");
    if let Some(cursor) = cursor {
        response.insert_header((CURSOR_HEADER, cursor));
    }
    Ok(response.body(body))
}

/// The range and filters of a first request.
fn filter(params: &Params, zone: Tz, region: Region) -> Result<crate::domain::CdrFilter, ApiError> {
    let mut errors = Vec::new();
    let mut date = |name: &str, end: RangeEnd| match params.get(name) {
        None => {
            errors.push(FieldError::new(
                name,
                "is required (or activecallkey, or cursor)",
            ));
            None
        }
        Some(raw) => parse_date(raw, zone, end)
            .map_err(|m| errors.push(FieldError::new(name, m)))
            .ok(),
    };
    let from = date("startdate", RangeEnd::Start);
    let to = date("finishdate", RangeEnd::Finish);
    let direction = params.get("direction").and_then(|raw| {
        Direction::parse(raw)
            .map(|d| d.as_str().to_owned())
            .map_err(|m| errors.push(FieldError::new("direction", m)))
            .ok()
    });
    let outcome = params.get("outcome").and_then(|raw| {
        Outcome::parse(raw)
            .map(|o| o.as_str().to_owned())
            .map_err(|m| errors.push(FieldError::new("outcome", m)))
            .ok()
    });
    let number = params.get("number").and_then(|raw| {
        PhoneNumber::parse(raw, region)
            .map(|n| n.as_str().to_owned())
            .map_err(|e| errors.push(FieldError::new("number", e.to_string())))
            .ok()
    });
    let agent = params.get("agent").map(|a| a.trim().to_owned());
    if let (Some(from), Some(to)) = (from, to)
        && let Some(problem) = range_problem(from, to)
    {
        errors.push(FieldError::new("finishdate", problem));
    }
    match (from, to) {
        (Some(from), Some(to)) if errors.is_empty() => Ok(crate::domain::CdrFilter {
            from,
            to,
            direction,
            agent,
            number,
            outcome,
            agents: None,
            groups: None,
        }),
        _ => Err(ApiError::invalid_query(errors)),
    }
}

fn invalid(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::invalid_query(vec![FieldError::new(field, message)])
}

fn wants_csv(req: &HttpRequest) -> bool {
    req.headers()
        .get_all(header::ACCEPT)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("text/csv")
        })
}

/// The query's parameters; one the API reads may be given at most once.
struct Params(Vec<(String, String)>);

impl Params {
    fn parse(query: &str) -> Result<Self, ApiError> {
        let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        let mut errors = Vec::new();
        for (i, (name, _)) in pairs.iter().enumerate() {
            // Parameters the API does not know are ignored (a CRM may send its own).
            if PARAMETERS.contains(&name.as_str())
                && name != "token"
                && pairs[..i].iter().any(|(n, _)| n == name)
            {
                errors.push(FieldError::new(name.clone(), "is given more than once"));
            }
        }
        if errors.is_empty() {
            Ok(Self(pairs))
        } else {
            Err(ApiError::invalid_query(errors))
        }
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, v)| n == name && !v.trim().is_empty())
            .map(|(_, v)| v.as_str())
    }
}

/// Registers `/api/v1/reportsCDRLogs`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/api/v1/reportsCDRLogs", "GET").route(web::get().to(cdr_logs)));
}
