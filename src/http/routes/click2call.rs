//! Click-to-call (issue 18, item 3): an agent's session and a number in, `{"RequestID":n}`
//! out once the tenant's PBX has taken the request; then where the request stands.

use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use serde_json::{Map, Value, json};

use crate::dial::click2call::{self, Placed};
use crate::domain::{FieldError, LegView, request_state};
use crate::http::auth::{SessionsAuth, agent_session};
use crate::http::body::read_json;
use crate::http::error::ApiError;
use crate::http::shared::resource;
use crate::http::state::AppState;
use crate::store;

const BODY_LIMIT: usize = 8 * 1024;

/// What a click-to-call asks, from a query string, a JSON body or the pop page's form.
pub struct Ask {
    pub session: Option<String>,
    pub number: Option<String>,
    pub queue: Option<String>,
}

/// `GET /api/v1/click2call?session=…&number=…[&queue=…]` (the reference's GET).
pub async fn get(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let mut ask = Ask {
        session: None,
        number: None,
        queue: None,
    };
    for (name, value) in form_urlencoded::parse(req.query_string().as_bytes()) {
        let slot = match name.as_ref() {
            "session" => &mut ask.session,
            "number" => &mut ask.number,
            "queue" => &mut ask.queue,
            _ => continue,
        };
        if slot.replace(value.into_owned()).is_some() {
            return Err(ApiError::invalid_fields(vec![FieldError::new(
                name.into_owned(),
                "is given twice",
            )]));
        }
    }
    answer(click(&req, &state, ask).await)
}

fn answer(placed: Result<Placed, ApiError>) -> Result<HttpResponse, ApiError> {
    let placed = placed?;
    Ok(HttpResponse::Ok().json(json!({
        "RequestID": placed.request_id,
        "call_id": placed.call_id,
    })))
}

/// `POST /api/v1/click2call` with `{"session":…,"number":…,"queue":…}`.
pub async fn post(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let body = read_json(&req, payload, BODY_LIMIT, state.body_timeout).await?;
    let Value::Object(map) = body else {
        return Err(ApiError::invalid_fields(vec![FieldError::new(
            "",
            "the body must be a JSON object",
        )]));
    };
    let text = |map: &Map<String, Value>, key: &str| match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) if key == "number" => Ok(Some(n.to_string())),
        Some(_) => Err(FieldError::new(key, "must be text")),
    };
    let fields = ["session", "number", "queue"].map(|k| text(&map, k));
    let errors: Vec<FieldError> = fields.iter().filter_map(|f| f.clone().err()).collect();
    if !errors.is_empty() {
        return Err(ApiError::invalid_fields(errors));
    }
    let [session, number, queue] = fields.map(|f| f.unwrap_or_default());
    answer(
        click(
            &req,
            &state,
            Ask {
                session,
                number,
                queue,
            },
        )
        .await,
    )
}

/// Starts a click-to-call as the session's agent (the service does the work).
pub async fn click(req: &HttpRequest, state: &AppState, ask: Ask) -> Result<Placed, ApiError> {
    let (tenant, session) = agent_session(req, ask.session.as_deref()).await?;
    let ask = click2call::Ask {
        number: ask.number,
        queue: ask.queue,
    };
    Ok(state.click2call.place(&tenant, &session, ask).await?)
}

/// `GET /api/v1/click2call/{RequestID}`: where the request stands. Asked with the
/// agent's `session` (its own requests), or a `sync`/`admin` token of the tenant (all).
pub async fn status(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let raw = req.match_info().get("RequestID").unwrap_or_default();
    let request_id: i64 = raw.parse().map_err(|_| {
        ApiError::invalid_fields(vec![FieldError::new("RequestID", "must be an integer")])
    })?;
    let session = form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(k, _)| k == "session")
        .map(|(_, v)| v.into_owned());
    // An agent sees its own requests; the CRM's server (a token) every agent's.
    let (tenant, only_agent) = match session {
        Some(session) => {
            let (tenant, session) = agent_session(&req, Some(&session)).await?;
            (tenant.id, Some(session.extension))
        }
        None => (SessionsAuth::extract(&req).await?.0.tenant.id, None),
    };
    let found = store::with_client(&state.pool, state.write_timeout, async |client| {
        let Some(request) = store::click2call::request(&*client, tenant, request_id).await? else {
            return Ok(None);
        };
        let call = store::cdr::find_by_request(&*client, tenant, request_id).await?;
        Ok(Some((request, call)))
    })
    .await?;
    let found = found.filter(|(request, _)| {
        only_agent
            .as_ref()
            .is_none_or(|agent| agent.as_str() == request.extension)
    });
    let (request, call) = found.ok_or_else(|| {
        ApiError::NotFound(format!("no click-to-call has RequestID {request_id}"))
    })?;
    let legs = call
        .as_ref()
        .map_or(Value::Array(Vec::new()), |c| c.legs.clone());
    let views: Vec<LegView> = serde_json::from_value(legs.clone()).unwrap_or_default();
    let (state_now, reason) = request_state(&request.dial, &views);
    Ok(HttpResponse::Ok().json(json!({
        "RequestID": request.request_id,
        "state": state_now,
        "reason": reason,
        "agent": request.agent,
        "extension": request.extension,
        "number": request.number,
        "dialled": request.dialled,
        "queue": request.queue,
        "requested_at": request.created_at,
        "pbx_id": request.pbx_id,
        "call_id": call.as_ref().map(|c| c.call_id),
        "legs": legs,
    })))
}

/// Registers click-to-call and a request's status.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        resource("/api/v1/click2call", "GET, POST")
            .route(web::get().to(get))
            .route(web::post().to(post)),
    )
    .service(resource("/api/v1/click2call/{RequestID}", "GET").route(web::get().to(status)));
}
