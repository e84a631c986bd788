//! Call events from PBXs (DESIGN §7): JSON, a query string, the FocalScope URL adapter
//! and the IVR's call-end notification. Every form is validated whole before anything
//! is written, and answered once its events are committed.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::calls::call_end::{CALL_END_MAPPING, CallEndMapping};
use crate::calls::focalscope;
use crate::calls::ingest::QueueError;
use crate::domain::{CallEvent, FieldError};
use crate::domain::{IncomingEvent, OverCap};
use crate::http::auth::EventsAuth;
use crate::http::body::{Shape, read_json_shaped};
use crate::http::error::ApiError;
use crate::http::shared::resource;
use crate::http::state::AppState;
use crate::live::directory::TenantEntry;
use crate::metrics::LimitLabels;

/// Most events in one request.
pub const MAX_EVENTS: usize = 1_000;
/// A thousand events with their unknown fields fit comfortably.
const EVENTS_BODY_LIMIT: usize = 4 * 1024 * 1024;

#[derive(Serialize)]
struct Received {
    received: usize,
    recorded: usize,
    duplicates: usize,
}

/// `POST /api/v1/events`: one event object or an array of up to 1,000.
pub async fn post(
    req: HttpRequest,
    auth: EventsAuth,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let shape = Shape {
        items: Some((MAX_EVENTS, "events")),
        lists: &[],
    };
    let body =
        read_json_shaped(&req, payload, EVENTS_BODY_LIMIT, state.body_timeout, shape).await?;
    let items = match body {
        Value::Array(items) => items,
        Value::Object(_) => vec![body],
        _ => {
            return Err(ApiError::invalid_fields(vec![FieldError::new(
                "",
                "the body must be an event object or an array of them",
            )]));
        }
    };
    if items.is_empty() || items.len() > MAX_EVENTS {
        return Err(ApiError::invalid_fields(vec![FieldError::new(
            "",
            format!(
                "send 1 to {MAX_EVENTS} events; this request has {}",
                items.len()
            ),
        )]));
    }
    let now = Utc::now();
    let mut events = Vec::with_capacity(items.len());
    let mut errors = Vec::new();
    for (index, item) in items.into_iter().enumerate() {
        let Value::Object(map) = item else {
            errors.push(FieldError::new("", "must be a JSON object").at(index));
            continue;
        };
        match CallEvent::from_json(&map, now) {
            Ok(event) => events.push(incoming(event, Value::Object(without_credentials(map)))),
            Err(found) => errors.extend(found.into_iter().map(|e| e.at(index))),
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::invalid_fields(errors));
    }
    record(&state, &auth.0, events).await
}

/// `GET /api/v1/events?call_id=…&event=…`: the same fields as a query string.
pub async fn get(
    req: HttpRequest,
    auth: EventsAuth,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let pairs = query_pairs(&req);
    let event = CallEvent::from_query(&pairs, Utc::now()).map_err(ApiError::invalid_fields)?;
    record(&state, &auth.0, vec![incoming(event, raw(&pairs))]).await
}

/// `GET /api/v1/events/focalscope?CallType=&Event=&CallID=&RequestID=&EventCode=&IsCallRecorded=&Guid=`
pub async fn focalscope(
    req: HttpRequest,
    auth: EventsAuth,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let pairs = query_pairs(&req);
    let event = focalscope::event(&pairs, Utc::now()).map_err(ApiError::invalid_fields)?;
    record(&state, &auth.0, vec![incoming(event, raw(&pairs))]).await
}

/// `GET /api/v1/events/call-end?…`: the IVR's variables, named by the tenant's mapping.
pub async fn call_end(
    req: HttpRequest,
    auth: EventsAuth,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let pairs = query_pairs(&req);
    let mapping = CallEndMapping::from_json(auth.0.tenant.settings.get(CALL_END_MAPPING));
    let events = mapping
        .events(&pairs, Utc::now())
        .map_err(ApiError::invalid_fields)?;
    let raw = raw(&pairs);
    let events = events
        .into_iter()
        .map(|e| incoming(e, raw.clone()))
        .collect();
    record(&state, &auth.0, events).await
}

async fn record(
    state: &AppState,
    entry: &TenantEntry,
    events: Vec<IncomingEvent>,
) -> Result<HttpResponse, ApiError> {
    let oldest = Utc::now() - chrono::Duration::days(state.call_retention_days.into());
    let too_old: Vec<FieldError> = events
        .iter()
        .enumerate()
        .filter(|(_, e)| e.event.at.is_some_and(|at| at < oldest))
        .map(|(i, _)| {
            let message = format!(
                "is older than the call retention ({} days)",
                state.call_retention_days
            );
            let error = FieldError::new("at", message);
            if events.len() > 1 { error.at(i) } else { error }
        })
        .collect();
    if !too_old.is_empty() {
        return Err(ApiError::invalid_fields(too_old));
    }
    let tenant = &entry.tenant;
    let received = events.len();
    state
        .limits
        .events(tenant.id, event_rate(&tenant.settings), received)
        .map_err(|over| {
            state
                .metrics
                .rate_limited
                .get_or_create(&LimitLabels {
                    limit: over.limit.as_str(),
                })
                .inc();
            ApiError::from(over)
        })?;
    let written = state
        .events
        .record(tenant.id, tenant.region, events)
        .await
        .map_err(|e| match e {
            QueueError::Full => ApiError::TooManyRequests {
                message: "too many call events are waiting to be written; retry shortly",
                retry_after: std::time::Duration::from_secs(1),
            },
            QueueError::Stopped => ApiError::Unavailable(e.into()),
        })?
        .map_err(|e| refused(state, e))?;
    let recorded = written.iter().filter(|new| **new).count();
    Ok(HttpResponse::Ok().json(Received {
        received,
        recorded,
        duplicates: received - recorded,
    }))
}

/// The tenant setting holding its own event rate (`tenant set --event-rate`).
pub const EVENT_RATE: &str = crate::domain::EVENT_RATE_SETTING;

/// The tenant's own events per second, if it has one.
fn event_rate(settings: &Value) -> Option<u32> {
    settings
        .get(EVENT_RATE)
        .and_then(Value::as_u64)
        .and_then(|r| u32::try_from(r).ok())
        .filter(|r| *r > 0)
}

/// Why the writer did not record a request's events, as an answer.
fn refused(state: &AppState, error: anyhow::Error) -> ApiError {
    if let Some(over) = error.downcast_ref::<OverCap>() {
        state
            .metrics
            .call_events_capped
            .get_or_create(&LimitLabels { limit: over.cap() })
            .inc();
        let message = over.to_string();
        return ApiError::Unprocessable {
            fields: vec![FieldError::new("call_id", message.clone())],
            message,
        };
    }
    match ApiError::from_store(error) {
        ApiError::Unexpected(e) => ApiError::Unavailable(e),
        refused => refused,
    }
}

fn incoming(event: CallEvent, raw: Value) -> IncomingEvent {
    IncomingEvent {
        event,
        raw,
        received_at: Utc::now(),
    }
}

/// The query string's pairs in order (a repeated name is the parsers' to refuse).
fn query_pairs(req: &HttpRequest) -> Vec<(String, String)> {
    form_urlencoded::parse(req.query_string().as_bytes())
        .into_owned()
        .collect()
}

/// What the PBX sent, as kept with the event: never its token.
fn raw(pairs: &[(String, String)]) -> Value {
    Value::Object(
        pairs
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "token" | "access_token"))
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    )
}

fn without_credentials(mut map: Map<String, Value>) -> Map<String, Value> {
    map.remove("token");
    map
}

/// Registers the event routes: DESIGN §7's fields (JSON or a query string) and the two
/// dialects' adapters.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        resource("/api/v1/events", "GET, POST")
            .route(web::post().to(post))
            .route(web::get().to(get)),
    )
    .service(resource("/api/v1/events/focalscope", "GET").route(web::get().to(focalscope)))
    .service(resource("/api/v1/events/call-end", "GET").route(web::get().to(call_end)));
}
