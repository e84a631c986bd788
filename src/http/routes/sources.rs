//! The admin API of CRM sources (`admin` tokens, the token's tenant only): the same
//! operations as `cidgate source`.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use crate::http::error::ApiError;
use crate::http::shared::resource;
use crate::http::{auth::AdminAuth, body::read_typed, state::AppState};
use crate::sources::admin::{self, SourceChange, SourceError, SourceInput};
use crate::store;

const BODY_LIMIT: usize = 64 * 1024;

/// The routes of `/api/v1/sources`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        resource("/api/v1/sources", "GET, POST")
            .route(web::get().to(list))
            .route(web::post().to(add)),
    )
    .service(
        resource("/api/v1/sources/{name}", "GET, PATCH, DELETE")
            .route(web::get().to(show))
            .route(web::patch().to(set))
            .route(web::delete().to(remove)),
    )
    .service(resource("/api/v1/sources/{name}/test", "POST").route(web::post().to(test)));
}

async fn body<T: serde::de::DeserializeOwned>(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
) -> Result<T, ApiError> {
    read_typed(req, payload, BODY_LIMIT, state.body_timeout).await
}

fn name_of(req: &HttpRequest) -> String {
    req.match_info().get("name").unwrap_or_default().to_owned()
}

async fn with_db<T>(
    state: &AppState,
    work: impl AsyncFnOnce(&deadpool_postgres::Object) -> Result<T, SourceError>,
) -> Result<T, ApiError> {
    let outcome = store::with_client(&state.pool, state.write_timeout, async |client| {
        Ok(work(client).await)
    })
    .await?;
    Ok(outcome?)
}

/// After a change here, this instance's lookups see it at once (others within seconds).
async fn reload(state: &AppState) {
    if let Err(e) = state.sources.reload().await {
        tracing::warn!(error = format!("{e:#}"), "reloading CRM sources failed");
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Added {
    name: String,
    #[serde(flatten)]
    input: SourceInput,
}

/// `GET /api/v1/sources`
pub async fn list(auth: AdminAuth, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let tenant = auth.0.tenant.id;
    let sources = with_db(&state, async |db| admin::list(db, tenant).await).await?;
    Ok(HttpResponse::Ok().json(json!({ "sources": sources })))
}

/// `POST /api/v1/sources`: 201 with the source (secrets masked).
pub async fn add(
    req: HttpRequest,
    auth: AdminAuth,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let added: Added = body(&req, payload, &state).await?;
    let at = (auth.0.tenant.id, auth.0.tenant.slug.as_str());
    let clients = state.sources.clients();
    let view = with_db(&state, async |db| {
        admin::add(db, at, clients, &added.name, added.input).await
    })
    .await?;
    reload(&state).await;
    Ok(HttpResponse::Created().json(view))
}

/// `GET /api/v1/sources/{name}`
pub async fn show(
    req: HttpRequest,
    auth: AdminAuth,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let name = name_of(&req);
    let view = with_db(&state, async |db| {
        admin::show(db, auth.0.tenant.id, &name).await
    })
    .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// `PATCH /api/v1/sources/{name}`: params given are set (`""` removes one).
pub async fn set(
    req: HttpRequest,
    auth: AdminAuth,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let change: SourceChange = body(&req, payload, &state).await?;
    let name = name_of(&req);
    let at = (auth.0.tenant.id, auth.0.tenant.slug.as_str());
    let clients = state.sources.clients();
    let view = with_db(&state, async |db| {
        admin::set(db, at, clients, &name, change).await
    })
    .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// `DELETE /api/v1/sources/{name}`
pub async fn remove(
    req: HttpRequest,
    auth: AdminAuth,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let name = name_of(&req);
    with_db(&state, async |db| {
        admin::remove(db, auth.0.tenant.id, &name).await
    })
    .await?;
    reload(&state).await;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Tested {
    number: String,
}

/// `POST /api/v1/sources/{name}/test`: the request made (secrets masked) and the
/// contact the source would answer; nothing is written.
pub async fn test(
    req: HttpRequest,
    auth: AdminAuth,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let tested: Tested = body(&req, payload, &state).await?;
    let name = name_of(&req);
    let tenant = &auth.0.tenant;
    let client = state
        .pool
        .get()
        .await
        .map_err(|e| ApiError::from_store(e.into()))?;
    let report = admin::test(
        &client,
        (tenant.id, &tenant.slug, tenant.region),
        state.sources.clients(),
        &name,
        &tested.number,
    )
    .await?;
    Ok(HttpResponse::Ok().json(report))
}
