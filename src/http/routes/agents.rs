//! The agents API (issue 18, items 1 and 2): a tenant's agents through the sync API, and
//! their sessions (the reference's Login), started by the CRM's server.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use serde_json::{Map, Value, json};

use crate::admin::agents::{self, Put};
use crate::domain::{Agent, AgentName, Extension, FieldError, GroupName, SessionSecret};
use crate::http::auth::{SessionsAuth, SyncAuth};
use crate::http::body::read_json;
use crate::http::error::ApiError;
use crate::http::shared::resource;
use crate::http::state::AppState;

const AGENT_BODY_LIMIT: usize = 16 * 1024;

fn extension(raw: &str) -> Result<Extension, ApiError> {
    Extension::parse(raw)
        .map_err(|e| ApiError::invalid_fields(vec![FieldError::new("extension", e)]))
}

fn no_agent(extension: &Extension) -> ApiError {
    ApiError::NotFound(format!("no agent has extension {extension}"))
}

fn agent_json(agent: &Agent) -> Value {
    let groups: Vec<&str> = agent.groups.iter().map(GroupName::as_str).collect();
    json!({
        "extension": agent.extension.as_str(),
        "name": agent.name.as_str(),
        "groups": groups,
        "agent": agent.key(),
    })
}

/// The body of a PUT: `name`, and `groups` as an array or a comma-separated string.
fn agent_from_body(extension: Extension, body: &Map<String, Value>) -> Result<Agent, ApiError> {
    let mut errors = Vec::new();
    for key in body.keys() {
        if !["extension", "name", "groups"].contains(&key.as_str()) {
            errors.push(FieldError::new(key.clone(), "is not a field of an agent"));
        }
    }
    if let Some(given) = body.get("extension")
        && given.as_str() != Some(extension.as_str())
    {
        errors.push(FieldError::new(
            "extension",
            "differs from the extension in the URL",
        ));
    }
    let name = match body.get("name").and_then(Value::as_str) {
        Some(raw) => AgentName::parse(raw)
            .map_err(|e| errors.push(FieldError::new("name", e)))
            .ok(),
        None => {
            errors.push(FieldError::new("name", "is required (text)"));
            None
        }
    };
    let groups = match body.get("groups") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(raw)) if raw.trim().is_empty() => Ok(Vec::new()),
        Some(Value::String(raw)) => GroupName::parse_list(raw),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                item.as_str()
                    .ok_or_else(|| "groups are text".to_owned())
                    .and_then(GroupName::parse)
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|mut groups| {
                groups.dedup();
                groups
            }),
        Some(_) => Err("must be an array of names or a comma-separated string".into()),
    }
    .map_err(|e| errors.push(FieldError::new("groups", e)))
    .ok();
    match (name, groups) {
        (Some(name), Some(groups)) if errors.is_empty() => Ok(Agent {
            extension,
            name,
            groups,
        }),
        _ => Err(ApiError::invalid_fields(errors)),
    }
}

/// `PUT /api/v1/agents/{extension}`: adds (201) or replaces (200) the agent.
pub async fn put(
    req: HttpRequest,
    auth: SyncAuth,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let extension = extension(&path)?;
    let body = match read_json(&req, payload, AGENT_BODY_LIMIT, state.body_timeout).await? {
        Value::Object(map) => map,
        _ => {
            return Err(ApiError::invalid_fields(vec![FieldError::new(
                "",
                "the body must be a JSON object",
            )]));
        }
    };
    let agent = agent_from_body(extension, &body)?;
    let mut answer = match agents::put(&state.admin_db(), &auth.0.tenant, &agent).await? {
        Put::Added => HttpResponse::Created(),
        _ => HttpResponse::Ok(),
    };
    Ok(answer.json(agent_json(&agent)))
}

/// `GET /api/v1/agents/{extension}`
pub async fn get(
    auth: SyncAuth,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let extension = extension(&path)?;
    let agent = agents::find(&state.admin_db(), &auth.0.tenant, &extension)
        .await?
        .ok_or_else(|| no_agent(&extension))?;
    Ok(HttpResponse::Ok().json(agent_json(&agent)))
}

/// `GET /api/v1/agents`: every agent of the tenant, by extension.
pub async fn list(auth: SyncAuth, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let agents = agents::list(&state.admin_db(), &auth.0.tenant).await?;
    let agents: Vec<Value> = agents.iter().map(agent_json).collect();
    Ok(HttpResponse::Ok().json(json!({ "agents": agents })))
}

/// `DELETE /api/v1/agents/{extension}`: removes the agent and ends its sessions (its
/// calls stay, named as the PBX named them).
pub async fn delete(
    auth: SyncAuth,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let extension = extension(&path)?;
    if !agents::remove(&state.admin_db(), &auth.0.tenant, &extension).await? {
        return Err(no_agent(&extension));
    }
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /api/v1/agents/{extension}/sessions`: signs the agent in for the tenant's
/// session length and answers the session secret (shown this once).
pub async fn start_session(
    auth: SessionsAuth,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let extension = extension(&path)?;
    let agents::Started { secret, expires_at } =
        agents::start_session(&state.admin_db(), &auth.0.tenant, &extension)
            .await?
            .ok_or_else(|| no_agent(&extension))?;
    // A session just started may be used from an address others' guesses blocked.
    state.limits.vouch_session(secret.hash());
    let expires_in = (expires_at - Utc::now()).num_seconds().max(0);
    Ok(HttpResponse::Created()
        .insert_header(("Cache-Control", "no-store"))
        .json(json!({
            "login": true,
            "session": secret.expose(),
            "extension": extension.as_str(),
            "expires_at": expires_at,
            "expires_in": expires_in,
        })))
}

/// `DELETE /api/v1/agents/{extension}/sessions[?session=…]`: signs the agent out: the
/// one session named, or every session of the agent.
pub async fn end_sessions(
    req: HttpRequest,
    auth: SessionsAuth,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let extension = extension(&path)?;
    let one = form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(k, _)| k == "session")
        .map(|(_, v)| {
            SessionSecret::from_presented(&v).ok_or_else(|| {
                ApiError::invalid_fields(vec![FieldError::new("session", "is not a session")])
            })
        })
        .transpose()?;
    let ended =
        agents::end_sessions(&state.admin_db(), &auth.0.tenant, &extension, one.as_ref()).await?;
    Ok(HttpResponse::Ok().json(json!({ "ended": ended })))
}

/// Registers the agents and their sessions (issue 18).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/api/v1/agents", "GET").route(web::get().to(list)))
        .service(
            resource("/api/v1/agents/{extension}", "GET, PUT, DELETE")
                .route(web::put().to(put))
                .route(web::get().to(get))
                .route(web::delete().to(delete)),
        )
        .service(
            resource("/api/v1/agents/{extension}/sessions", "POST, DELETE")
                .route(web::post().to(start_session))
                .route(web::delete().to(end_sessions)),
        );
}
