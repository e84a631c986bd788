//! The admin API of web-service profiles and their deliveries (`admin` tokens, the
//! token's tenant only): the same operations as `cidgate profile` and `cidgate delivery`.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::admin::deliveries;
use crate::admin::profiles::{self as admin, ProfileView};
use crate::domain::profile::LogFilter;
use crate::domain::profile::ProfileInput;
use crate::domain::{FieldError, storage_problem};
use crate::http::error::ApiError;
use crate::http::shared::resource;
use crate::http::{auth::AdminAuth, body::read_typed, state::AppState};

const BODY_LIMIT: usize = 256 * 1024;

/// A body read as `T`, naming what is wrong with it.
async fn body<T: serde::de::DeserializeOwned>(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
) -> Result<T, ApiError> {
    read_typed(req, payload, BODY_LIMIT, state.body_timeout).await
}

/// A body that may be absent (an empty POST).
async fn optional_body<T: serde::de::DeserializeOwned + Default>(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
) -> Result<T, ApiError> {
    let empty = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .is_none_or(|v| v.as_bytes() == b"0");
    if empty {
        return Ok(T::default());
    }
    body(req, payload, state).await
}

fn name_of(req: &HttpRequest) -> String {
    req.match_info().get("name").unwrap_or_default().to_owned()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Created {
    name: String,
    #[serde(flatten)]
    definition: ProfileInput,
}

/// `GET /api/v1/profiles`
pub async fn list(auth: AdminAuth, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let tenant = auth.0.tenant.id;
    let listed = admin::list(&state.admin_db(), tenant).await?;
    let views: Vec<ProfileView> = listed.iter().map(ProfileView::of).collect();
    Ok(HttpResponse::Ok().json(json!({ "profiles": views })))
}

/// `POST /api/v1/profiles`: 201 with the profile and its signing secret (shown once).
pub async fn create(
    req: HttpRequest,
    auth: AdminAuth,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let created: Created = body(&req, payload, &state).await?;
    let tenant = auth.0.tenant.id;
    let (profile, secret) = admin::create(
        &state.admin_db(),
        &state.deliverer.client,
        tenant,
        &auth.0.tenant.slug,
        &created.name,
        &created.definition,
    )
    .await?;
    Ok(HttpResponse::Created().json(json!({
        "profile": ProfileView::of(&profile),
        "secret": secret,
    })))
}

/// `GET /api/v1/profiles/{name}`
pub async fn show(
    req: HttpRequest,
    auth: AdminAuth,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let name = name_of(&req);
    let profile = admin::find(&state.admin_db(), auth.0.tenant.id, &name).await?;
    Ok(HttpResponse::Ok().json(ProfileView::of(&profile)))
}

/// `PATCH /api/v1/profiles/{name}`: changes what the body names.
pub async fn update(
    req: HttpRequest,
    auth: AdminAuth,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let changes: ProfileInput = body(&req, payload, &state).await?;
    let name = name_of(&req);
    let profile = admin::update(
        &state.admin_db(),
        &state.deliverer.client,
        auth.0.tenant.id,
        &auth.0.tenant.slug,
        &name,
        &changes,
    )
    .await?;
    Ok(HttpResponse::Ok().json(ProfileView::of(&profile)))
}

/// `DELETE /api/v1/profiles/{name}`: 204.
pub async fn delete(
    req: HttpRequest,
    auth: AdminAuth,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let name = name_of(&req);
    admin::delete(&state.admin_db(), auth.0.tenant.id, &name).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Disabling {
    reason: Option<String>,
}

/// `POST /api/v1/profiles/{name}/disable` (body optional: `{"reason": …}`).
pub async fn disable(
    req: HttpRequest,
    auth: AdminAuth,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let disabling: Disabling = optional_body(&req, payload, &state).await?;
    let reason = disabling
        .reason
        .unwrap_or_else(|| "disabled by an operator".into());
    set_enabled(&req, &auth, &state, false, Some(&reason)).await
}

/// `POST /api/v1/profiles/{name}/enable`: sends again, its failure state forgotten.
pub async fn enable(
    req: HttpRequest,
    auth: AdminAuth,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    set_enabled(&req, &auth, &state, true, None).await
}

async fn set_enabled(
    req: &HttpRequest,
    auth: &AdminAuth,
    state: &AppState,
    enabled: bool,
    reason: Option<&str>,
) -> Result<HttpResponse, ApiError> {
    let name = name_of(req);
    let db = state.admin_db();
    let profile = admin::set_enabled(&db, auth.0.tenant.id, &name, enabled, reason).await?;
    Ok(HttpResponse::Ok().json(ProfileView::of(&profile)))
}

/// `POST /api/v1/profiles/{name}/rotate-secret`: a new secret; the old one signs beside
/// it for 24 hours.
pub async fn rotate_secret(
    req: HttpRequest,
    auth: AdminAuth,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let name = name_of(&req);
    let secret = admin::rotate_secret(&state.admin_db(), auth.0.tenant.id, &name).await?;
    Ok(HttpResponse::Ok().json(json!({ "secret": secret })))
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Trial {
    call: Option<String>,
    #[serde(default)]
    dry_run: bool,
}

/// `POST /api/v1/profiles/{name}/test`: the request for a sample (or stored) call,
/// sent unless `dry_run`.
pub async fn test(
    req: HttpRequest,
    auth: AdminAuth,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let trial: Trial = optional_body(&req, payload, &state).await?;
    let tenant = auth.0.tenant.id;
    let name = name_of(&req);
    let db = state.admin_db();
    let profile = admin::find(&db, tenant, &name).await?;
    let call = admin::call_for(&db, tenant, trial.call.as_deref()).await?;
    let report = admin::test(&state.deliverer, &profile, tenant, call, trial.dry_run).await?;
    Ok(HttpResponse::Ok().json(report))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Run {
    call: String,
}

/// `POST /api/v1/profiles/{name}/run`: a stored call through the profile as it is now.
pub async fn run(
    req: HttpRequest,
    auth: AdminAuth,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let run: Run = body(&req, payload, &state).await?;
    let tenant = auth.0.tenant.id;
    let name = name_of(&req);
    let profile = admin::find(&state.admin_db(), tenant, &name).await?;
    let report = admin::run(&state.deliverer, &profile, tenant, &run.call).await?;
    Ok(HttpResponse::Ok().json(report))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    profile: Option<String>,
    #[serde(default)]
    failed: bool,
    since: Option<DateTime<Utc>>,
    limit: Option<i64>,
}

/// `GET /api/v1/deliveries`: newest first; `profile`, `failed`, `since`, `limit` (≤ 1000).
pub async fn deliveries(
    auth: AdminAuth,
    query: web::Query<LogQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    if query
        .profile
        .as_deref()
        .is_some_and(|p| storage_problem(p).is_some())
    {
        return Err(ApiError::BadRequest(
            "profile must be a profile's name: no control characters".into(),
        ));
    }
    let filter = LogFilter {
        profile: query.profile,
        failed: query.failed,
        since: query.since,
        limit: query.limit.unwrap_or(100).clamp(1, 1000),
    };
    let listed = deliveries::list(&state.admin_db(), auth.0.tenant.id, &filter).await?;
    Ok(HttpResponse::Ok().json(json!({ "deliveries": listed })))
}

fn delivery_id(req: &HttpRequest) -> Result<Uuid, ApiError> {
    req.match_info()
        .get("id")
        .and_then(|id| id.parse().ok())
        .ok_or_else(|| {
            ApiError::invalid_fields(vec![FieldError::new("id", "must be a delivery's UUID")])
        })
}

/// `GET /api/v1/deliveries/{id}`: its attempts.
pub async fn delivery(
    req: HttpRequest,
    auth: AdminAuth,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = delivery_id(&req)?;
    let tenant = Some(auth.0.tenant.id);
    let attempts = deliveries::attempts(&state.admin_db(), tenant, id).await?;
    Ok(HttpResponse::Ok().json(json!({ "id": id, "attempts": attempts })))
}

/// `POST /api/v1/deliveries/{id}/replay`: queued again with the same `webhook-id`.
pub async fn replay_one(
    req: HttpRequest,
    auth: AdminAuth,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = delivery_id(&req)?;
    let replayed = deliveries::replay(&state.admin_db(), Some(auth.0.tenant.id), id).await?;
    Ok(HttpResponse::Accepted().json(replayed_json(&replayed)))
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplayFailed {
    profile: Option<String>,
    since: Option<DateTime<Utc>>,
}

/// `POST /api/v1/deliveries/replay`: the failed deliveries (of a profile, since a time)
/// queued again.
pub async fn replay_failed(
    req: HttpRequest,
    auth: AdminAuth,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let filter: ReplayFailed = optional_body(&req, payload, &state).await?;
    let tenant = auth.0.tenant.id;
    let db = state.admin_db();
    let replayed =
        deliveries::replay_failed(&db, tenant, filter.profile.as_deref(), filter.since).await?;
    Ok(HttpResponse::Accepted().json(replayed_json(&replayed)))
}

fn replayed_json(replayed: &[(Uuid, Uuid)]) -> Value {
    json!({
        "replayed": replayed
            .iter()
            .map(|(of, id)| json!({"replay_of": of, "id": id}))
            .collect::<Vec<_>>()
    })
}

/// Registers the admin API of web-service profiles and deliveries.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        resource("/api/v1/profiles", "GET, POST")
            .route(web::get().to(list))
            .route(web::post().to(create)),
    )
    .service(
        resource("/api/v1/profiles/{name}", "GET, PATCH, DELETE")
            .route(web::get().to(show))
            .route(web::patch().to(update))
            .route(web::delete().to(delete)),
    )
    .service(resource("/api/v1/deliveries", "GET").route(web::get().to(deliveries)))
    .service(resource("/api/v1/deliveries/replay", "POST").route(web::post().to(replay_failed)))
    .service(resource("/api/v1/deliveries/{id}", "GET").route(web::get().to(delivery)));
    for (path, handler) in [
        ("/api/v1/profiles/{name}/enable", web::post().to(enable)),
        ("/api/v1/profiles/{name}/disable", web::post().to(disable)),
        (
            "/api/v1/profiles/{name}/rotate-secret",
            web::post().to(rotate_secret),
        ),
        ("/api/v1/profiles/{name}/test", web::post().to(test)),
        ("/api/v1/profiles/{name}/run", web::post().to(run)),
        ("/api/v1/deliveries/{id}/replay", web::post().to(replay_one)),
    ] {
        cfg.service(resource(path, "POST").route(handler));
    }
}
