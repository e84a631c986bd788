//! Click-to-call (issue 18, item 3): an agent's session and a number in, `{"RequestID":n}`
//! out once the tenant's PBX has taken the request; then where the request stands.

use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use serde_json::{Map, Value, json};

use chrono::Utc;

use crate::dial::{self, DialRequest};
use crate::domain::{
    CallEvent, DestinationError, DialPolicy, DialStatus, FieldError, LegView, NumberFormat, Tenant,
    agent_missed_event, placed_event, request_state,
};
use crate::domain::{IncomingEvent, NewRequest, Opened, Session, StoredDialer};
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

/// A click-to-call the PBX took: its RequestID, and the call record it opened (`None`
/// only when that could not be written: the PBX dials all the same).
pub struct Placed {
    pub request_id: i64,
    pub call_id: Option<uuid::Uuid>,
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

/// Starts a click-to-call: the session's agent, the number through the dial policy, the
/// request opened under the throttle, the PBX asked, the call record opened.
pub async fn click(req: &HttpRequest, state: &AppState, ask: Ask) -> Result<Placed, ApiError> {
    let (tenant, session) = agent_session(req, ask.session.as_deref()).await?;
    let number = ask
        .number
        .ok_or_else(|| ApiError::invalid_fields(vec![FieldError::new("number", "is required")]))?;
    let (mut policy, stored) =
        store::with_client(&state.pool, state.write_timeout, async |client| {
            let policy = store::click2call::policy(&*client, tenant.id).await?;
            let dialer = store::click2call::dialer(&*client, tenant.id).await?;
            Ok((policy, dialer))
        })
        .await?;
    let stored = stored.ok_or(ApiError::NoDialer)?;
    policy
        .number_format
        .get_or_insert(NumberFormat::default_for(&stored.kind));
    let destination = policy
        .destination(&number, ask.queue.as_deref(), tenant.region)
        .map_err(|e| refused(e, &policy))?;

    let contact_name = contact_name(state, &tenant, destination.number.as_str()).await;
    let new = NewRequest {
        extension: &session.extension,
        number: destination.number.as_str(),
        dialled: &destination.dialled,
        queue: destination.queue.as_deref(),
    };
    let opened = store::with_client(&state.pool, state.write_timeout, async |client| {
        store::click2call::open(client, tenant.id, &new, &policy).await
    })
    .await?;
    let (request_id, agent) = match opened {
        Opened::Request { request_id, agent } => (request_id, agent),
        Opened::InFlight(_) => {
            return Err(ApiError::TooManyRequests {
                message: "this agent has a click-to-call in flight; wait until it ends",
                retry_after: std::time::Duration::from_secs(5),
            });
        }
        Opened::TooMany => {
            return Err(ApiError::TooManyRequests {
                message: "this agent made the most click-to-calls allowed in a minute",
                retry_after: std::time::Duration::from_secs(60),
            });
        }
        Opened::TenantInFlight => {
            return Err(ApiError::TooManyRequests {
                message: "this tenant has the most click-to-calls in flight it may have (dialer policy --tenant-in-flight); wait until one ends",
                retry_after: std::time::Duration::from_secs(5),
            });
        }
        Opened::TenantTooMany => {
            return Err(ApiError::TooManyRequests {
                message: "this tenant's agents made the most click-to-calls allowed in a minute (dialer policy --tenant-per-minute)",
                retry_after: std::time::Duration::from_secs(60),
            });
        }
        Opened::NoAgent => return Err(ApiError::SessionExpired),
    };
    let placed_at = Utc::now();
    let request = DialRequest {
        request_id,
        agent_extension: session.extension.as_str().to_owned(),
        agent,
        number: destination.number.as_str().to_owned(),
        dialled: destination.dialled.clone(),
        queue: destination.queue.clone(),
        contact_name,
    };
    let placed = placed_event(
        request_id,
        &request.agent,
        &request.number,
        request.contact_name.as_deref(),
        placed_at,
    );
    dial(state, &tenant, &session, &stored, request).await?;
    let call_id = open_call(state, &tenant, placed).await;
    Ok(Placed {
        request_id,
        call_id,
    })
}

/// Records the request's own event through the one event write path (the call is "a
/// function of the set of its events"), so the record exists before the PBX's first
/// event and those events fill in the rest. Its id, once committed.
async fn open_call(state: &AppState, tenant: &Tenant, event: CallEvent) -> Option<uuid::Uuid> {
    let request_id = event.request_id.unwrap_or_default();
    let incoming = own_event(event);
    let written = match state
        .events
        .record(tenant.id, tenant.region, vec![incoming])
        .await
    {
        Ok(Ok(_)) => store::with_client(&state.pool, state.write_timeout, async |client| {
            store::cdr::find_by_request(&*client, tenant.id, request_id).await
        })
        .await
        .map(|call| call.map(|c| c.call_id)),
        Ok(Err(e)) => Err(e),
        Err(e) => Err(e.into()),
    };
    written
        .inspect_err(|e| {
            tracing::warn!(tenant = %tenant.id, request_id, error = format!("{e:#}"),
                "opening a click-to-call's call record failed; the PBX's events will open it");
        })
        .ok()
        .flatten()
}

/// One of cidgate's own events of a request, as the event writer takes it.
fn own_event(event: CallEvent) -> IncomingEvent {
    let raw = json!({"call_id": event.call_id, "click2call": event.event.map(|k| k.as_str())});
    IncomingEvent {
        event,
        raw,
        received_at: Utc::now(),
    }
}

/// Asks the PBX; records its answer, and follows its later word in the background.
async fn dial(
    state: &AppState,
    tenant: &Tenant,
    session: &Session,
    stored: &StoredDialer,
    request: DialRequest,
) -> Result<(), ApiError> {
    let request_id = request.request_id;
    let outcome = match dial::build(stored) {
        Ok(dialer) => dialer.dial(&request).await,
        Err(e) => {
            tracing::error!(tenant = %tenant.id, error = format!("{e:#}"), "the stored dialer is unusable");
            Err(dial::DialError(
                "the tenant's dialer is misconfigured".into(),
            ))
        }
    };
    let (status, pbx_id, later) = match outcome {
        Ok(accepted) => (DialStatus::Accepted, accepted.pbx_id, accepted.result),
        Err(e) => (DialStatus::Failed(e.0), None, None),
    };
    tracing::info!(
        tenant = %tenant.id,
        agent = %session.extension,
        request_id,
        accepted = status == DialStatus::Accepted,
        "click-to-call"
    );
    record(&state.pool, tenant, request_id, &status, pbx_id.as_deref()).await?;
    if let DialStatus::Failed(message) = status {
        return Err(ApiError::DialFailed {
            request_id,
            message,
        });
    }
    if let Some(later) = later {
        let pool = state.pool.clone();
        let events = state.events.clone();
        let tenant = tenant.clone();
        tokio::spawn(async move {
            let status = match later.await {
                Ok(id) => (DialStatus::Accepted, id),
                Err(reason) => (DialStatus::Failed(reason), None),
            };
            if let Err(e) = record(&pool, &tenant, request_id, &status.0, status.1.as_deref()).await
            {
                tracing::warn!(tenant = %tenant.id, request_id, error = format!("{e:#}"), "recording the PBX's result failed");
            }
            // The agent's phone was never answered: the call ends (missed).
            if matches!(status.0, DialStatus::Failed(_)) {
                let missed = own_event(agent_missed_event(request_id, Utc::now()));
                if let Err(e) = events.offer(tenant.id, tenant.region, missed) {
                    tracing::warn!(tenant = %tenant.id, request_id, error = %e, "ending a failed click-to-call's call failed");
                }
            }
        });
    }
    Ok(())
}

async fn record(
    pool: &deadpool_postgres::Pool,
    tenant: &Tenant,
    request_id: i64,
    status: &DialStatus,
    pbx_id: Option<&str>,
) -> anyhow::Result<()> {
    store::with_client(pool, std::time::Duration::from_secs(15), async |client| {
        store::click2call::record_dial(&*client, tenant.id, request_id, status, pbx_id).await
    })
    .await
}

/// The contact's name for the agent's phone display; none when unknown or the database
/// is slow (the call does not wait for a name).
async fn contact_name(state: &AppState, tenant: &Tenant, number: &str) -> Option<String> {
    let found = store::with_client(&state.pool, state.write_timeout, async |client| {
        store::contacts::find_by_numbers(&*client, &[(tenant.id, number)]).await
    })
    .await;
    match found {
        Ok(mut hits) => hits
            .pop()
            .flatten()
            .map(|hit| hit.name().to_owned())
            .filter(|n| !n.is_empty()),
        Err(e) => {
            tracing::warn!(
                error = format!("{e:#}"),
                "looking up the contact's name failed"
            );
            None
        }
    }
}

fn refused(error: DestinationError, policy: &DialPolicy) -> ApiError {
    match error {
        DestinationError::Number(e) => {
            ApiError::invalid_fields(vec![FieldError::new("number", e.to_string())])
        }
        DestinationError::UnknownQueue(name) => {
            let known: Vec<&str> = policy.queue_prefixes.keys().map(String::as_str).collect();
            let message = if known.is_empty() {
                format!("`{name}` is not a queue: this tenant has no outbound queues")
            } else {
                format!("`{name}` is not a queue; use {}", known.join(", "))
            };
            ApiError::invalid_fields(vec![FieldError::new("queue", message)])
        }
        DestinationError::Refused(refusal) => ApiError::DialRefused {
            rule: refusal.rule(),
            message: format!("refused by the dial policy ({}): {refusal}", refusal.rule()),
        },
    }
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
