//! `POST /rest/api/v1/historic-data/{historicDataKey}` (reference/historical-call-data-api):
//! runs an API-enabled report for a service user's key and answers it as JSON, CSV or a
//! printable page.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use uuid::Uuid;

use crate::calls::cdr::tenant_zone;
use crate::domain::{OutputFormat, ReportRequest};
use crate::http::auth::ReportAuth;
use crate::http::body::read_json;
use crate::http::error::ApiError;
use crate::http::shared::content_security_policy;
use crate::http::shared::resource;
use crate::http::state::AppState;
use crate::reports::output::{self, Heading};
use crate::reports::{self, ReportError};
use crate::store;

/// A request names a timeframe and at most a thousand rows: a few hundred kilobytes.
const BODY_LIMIT: usize = 256 * 1024;

pub async fn run(
    req: HttpRequest,
    auth: ReportAuth,
    key: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let tenant = &auth.tenant.tenant;
    let unknown = || ApiError::NotFound("no report with this historicDataKey".into());
    let key = Uuid::parse_str(&key).map_err(|_| unknown())?;
    // From the primary pool, as writes: the lookup replica's pool is kept for lookups,
    // whose deadline a report's query must not take connections from. No connection is
    // held while the body arrives.
    let (report, user, access) =
        store::with_client(&state.pool, state.write_timeout, async |client| {
            let report = store::reports::get(&*client, tenant.id, key).await?;
            let user = store::service_users::of_token(&*client, tenant.id, auth.token_id).await?;
            let access = store::service_users::access(&*client, tenant.id, user.as_ref()).await?;
            Ok((report, user, access))
        })
        .await?;
    let Some(report) = report.filter(|r| r.stopped_at.is_none()) else {
        return Err(unknown());
    };
    if let Some(user) = user
        && user.id != report.service_user_id
    {
        return Err(ApiError::Forbidden(format!(
            "report {key} is enabled for another service user than `{}`",
            user.name
        )));
    }

    let body = read_json(&req, payload, BODY_LIMIT, state.body_timeout).await?;
    let request = ReportRequest::from_json(&body).map_err(ApiError::BadRequest)?;
    let zone = tenant_zone(&tenant.settings);
    let table = store::with_client(&state.pool, state.write_timeout, async |client| {
        Ok(reports::compute(&*client, tenant, zone, report.template, &request, &access).await)
    })
    .await?
    .map_err(|e| match e {
        ReportError::BadRequest(message) => ApiError::BadRequest(message),
        ReportError::Forbidden(message) => ApiError::Forbidden(message),
        ReportError::Failed(e) => ApiError::from_store(e),
    })?;

    let heading = Heading {
        report_id: report.report_id,
        execution_id: Uuid::new_v4(),
        template: report.template,
        timeframe: request.timeframe,
    };
    let unexpected = |e: anyhow::Error| ApiError::Unexpected(e.context("writing a report"));
    Ok(match request.format {
        OutputFormat::Json => HttpResponse::Ok()
            .content_type("application/json")
            .body(output::json(&heading, &table).map_err(|e| unexpected(e.into()))?),
        OutputFormat::Csv => HttpResponse::Ok()
            .content_type("text/csv; charset=utf-8")
            .insert_header((
                header::CONTENT_DISPOSITION,
                format!("inline; filename=\"{}.csv\"", report.template),
            ))
            .body(output::csv(&table).map_err(unexpected)?),
        OutputFormat::Html => HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            // The screen pop's policy: no script, styles only from here, no framing.
            .insert_header((
                header::CONTENT_SECURITY_POLICY,
                content_security_policy("'none'"),
            ))
            .insert_header((header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
            .body(output::html(&heading, &table, zone).map_err(|e| unexpected(e.into()))?),
    })
}

/// Registers the historic-data route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        resource("/rest/api/v1/historic-data/{historicDataKey}", "POST").route(web::post().to(run)),
    );
}
