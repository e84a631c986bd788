//! Click-to-call as a service: an agent's session and a number in; the dial policy, the
//! throttle, the PBX asked, the call record opened; the PBX's later word on the request
//! followed by a supervised task. The HTTP handler only parses and answers.
//!
//! One request uses three database connections, never held while the PBX is asked: the
//! session's (in the handler's extractor), one for the policy, dialer, contact name and
//! the opened request, one for the PBX's answer and the call record's id (besides the
//! event writer's batch, which other events share).

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures_util::future::BoxFuture;
use serde_json::json;
use tokio::sync::{Mutex, mpsc};
use tokio::task::JoinSet;

use super::{DialError, DialRequest};
use crate::calls::ingest::EventWriter;
use crate::domain::{
    CallEvent, DestinationError, DialPolicy, DialStatus, NumberFormat, Tenant, TenantId,
    agent_missed_event, placed_event,
};
use crate::domain::{IncomingEvent, NewRequest, Opened, Session, StoredDialer};
use crate::jobs::{Readiness, Supervisor};
use crate::store;

/// The supervised task following the PBX's later word on requests.
pub const TASK: &str = "click2call_results";
/// Requests whose later word may wait to be followed; past it the word is not recorded
/// (the PBX's own call events still tell the call's story).
const FOLLOW_UPS: usize = 1024;
/// How long recording the PBX's answer may take.
const RECORD_WITHIN: Duration = Duration::from_secs(15);

/// What a click-to-call asks, parsed: the number as the CRM gave it, and a queue.
pub struct Ask {
    pub number: Option<String>,
    pub queue: Option<String>,
}

/// A click-to-call the PBX took: its RequestID, and the call record it opened (`None`
/// only when that could not be written: the PBX dials all the same).
pub struct Placed {
    pub request_id: i64,
    pub call_id: Option<uuid::Uuid>,
}

/// Why a click-to-call was not placed.
#[derive(Debug, thiserror::Error)]
pub enum ClickError {
    /// A value of the request that cannot be dialled (`field` names it).
    #[error("{field} {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// The dial policy refuses the number; `rule` names the setting that does.
    #[error("{message}")]
    Refused { rule: &'static str, message: String },
    #[error("this tenant has no dialer")]
    NoDialer,
    /// A throttle holds the request back.
    #[error("{message}")]
    Throttled {
        message: &'static str,
        retry_after: Duration,
    },
    /// The session's agent is gone.
    #[error("the session's agent is gone")]
    SessionExpired,
    /// The PBX did not take the request.
    #[error("{message}")]
    DialFailed { request_id: i64, message: String },
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

/// The PBX's later word on one request.
struct FollowUp {
    tenant: Tenant,
    request_id: i64,
    result: BoxFuture<'static, Result<Option<String>, String>>,
}

/// Places click-to-calls (cheap to clone).
#[derive(Clone)]
pub struct Click2Call {
    pool: deadpool_postgres::Pool,
    timeout: Duration,
    events: EventWriter,
    follow_ups: mpsc::Sender<FollowUp>,
    /// The `http` dialers' clients, under the tenants' SSRF guards.
    http_clients: crate::outbound::Clients,
}

impl Click2Call {
    /// The service, with its follow-up task under `jobs`. The queue outlives a run of
    /// the task; a run that fails loses the requests it was following (their calls end
    /// by the PBX's events).
    pub fn spawn(
        jobs: &Supervisor,
        pool: deadpool_postgres::Pool,
        timeout: Duration,
        events: EventWriter,
        http_clients: crate::outbound::Clients,
    ) -> Self {
        let (follow_ups, queued) = mpsc::channel(FOLLOW_UPS);
        let queued = Arc::new(Mutex::new(queued));
        let (task_pool, task_events) = (pool.clone(), events.clone());
        jobs.spawn(TASK, Readiness::Reported, move || {
            follow(queued.clone(), task_pool.clone(), task_events.clone())
        });
        Self {
            pool,
            timeout,
            events,
            follow_ups,
            http_clients,
        }
    }

    /// Starts a click-to-call for the agent of `session`.
    pub async fn place(
        &self,
        tenant: &Tenant,
        session: &Session,
        ask: Ask,
    ) -> Result<Placed, ClickError> {
        let number = ask.number.ok_or_else(|| ClickError::Invalid {
            field: "number",
            message: "is required".into(),
        })?;
        let prepared = store::with_client(&self.pool, self.timeout, async |client| {
            prepare(client, tenant, session, &number, ask.queue.as_deref()).await
        })
        .await??;
        let Prepared { dialer, request } = prepared;
        let request_id = request.request_id;
        let outcome = ask_pbx(tenant, &dialer, &self.http_clients, &request).await;
        tracing::info!(
            tenant = %tenant.id,
            agent = %session.extension,
            request_id,
            accepted = outcome.is_ok(),
            "click-to-call"
        );
        let accepted = match outcome {
            Ok(accepted) => accepted,
            Err(DialError(message)) => {
                let failed = DialStatus::Failed(message.clone());
                record(&self.pool, tenant.id, request_id, &failed, None).await?;
                return Err(ClickError::DialFailed {
                    request_id,
                    message,
                });
            }
        };
        let call_id = self
            .open_call(tenant, &request, accepted.pbx_id.as_deref())
            .await?;
        if let Some(result) = accepted.result {
            let follow_up = FollowUp {
                tenant: tenant.clone(),
                request_id,
                result,
            };
            if self.follow_ups.try_send(follow_up).is_err() {
                tracing::warn!(tenant = %tenant.id, request_id,
                    "too many click-to-calls wait for the PBX's word; this one's is not followed");
            }
        }
        Ok(Placed {
            request_id,
            call_id,
        })
    }

    /// Records the request's own event through the one event write path (the call is
    /// "a function of the set of its events"), so the record exists before the PBX's
    /// first event; then, on one connection, the PBX's acceptance and the call's id.
    async fn open_call(
        &self,
        tenant: &Tenant,
        request: &DialRequest,
        pbx_id: Option<&str>,
    ) -> anyhow::Result<Option<uuid::Uuid>> {
        let request_id = request.request_id;
        let placed = placed_event(
            request_id,
            &request.agent,
            &request.number,
            request.contact_name.as_deref(),
            Utc::now(),
        );
        let written = match self
            .events
            .record(tenant.id, tenant.region, vec![own_event(placed)])
            .await
        {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e),
            Err(e) => Err(e.into()),
        };
        if let Err(e) = &written {
            tracing::warn!(tenant = %tenant.id, request_id, error = format!("{e:#}"),
                "opening a click-to-call's call record failed; the PBX's events will open it");
        }
        let call = store::with_client(&self.pool, RECORD_WITHIN, async |client| {
            let accepted = DialStatus::Accepted;
            store::click2call::record_dial(&*client, tenant.id, request_id, &accepted, pbx_id)
                .await?;
            if written.is_err() {
                return Ok(None);
            }
            // The call record is a nicety: the PBX dials all the same.
            Ok(store::cdr::find_by_request(&*client, tenant.id, request_id)
                .await
                .inspect_err(|e| {
                    tracing::warn!(tenant = %tenant.id, request_id, error = format!("{e:#}"),
                        "finding a click-to-call's call record failed");
                })
                .ok()
                .flatten()
                .map(|c| c.call_id))
        })
        .await?;
        Ok(call)
    }
}

/// What the PBX is asked, and through which dialer.
struct Prepared {
    dialer: StoredDialer,
    request: DialRequest,
}

/// On one connection: the policy and dialer, the number through the policy, the
/// contact's name, the request opened under the throttle.
async fn prepare(
    client: &mut deadpool_postgres::Object,
    tenant: &Tenant,
    session: &Session,
    number: &str,
    queue: Option<&str>,
) -> anyhow::Result<Result<Prepared, ClickError>> {
    let mut policy = store::click2call::policy(&*client, tenant.id).await?;
    let Some(dialer) = store::click2call::dialer(&*client, tenant.id).await? else {
        return Ok(Err(ClickError::NoDialer));
    };
    policy
        .number_format
        .get_or_insert(NumberFormat::default_for(&dialer.kind));
    let destination = match policy.destination(number, queue, tenant.region) {
        Ok(destination) => destination,
        Err(e) => return Ok(Err(refused(e, &policy))),
    };
    let contact_name = contact_name(client, tenant.id, destination.number.as_str()).await;
    let new = NewRequest {
        extension: &session.extension,
        number: destination.number.as_str(),
        dialled: &destination.dialled,
        queue: destination.queue.as_deref(),
    };
    let (request_id, agent) = match store::click2call::open(client, tenant.id, &new, &policy)
        .await?
    {
        Opened::Request { request_id, agent } => (request_id, agent),
        Opened::InFlight(_) => {
            return Ok(Err(throttled(
                "this agent has a click-to-call in flight; wait until it ends",
                5,
            )));
        }
        Opened::TooMany => {
            return Ok(Err(throttled(
                "this agent made the most click-to-calls allowed in a minute",
                60,
            )));
        }
        Opened::TenantInFlight => {
            return Ok(Err(throttled(
                "this tenant has the most click-to-calls in flight it may have (dialer policy --tenant-in-flight); wait until one ends",
                5,
            )));
        }
        Opened::TenantTooMany => {
            return Ok(Err(throttled(
                "this tenant's agents made the most click-to-calls allowed in a minute (dialer policy --tenant-per-minute)",
                60,
            )));
        }
        Opened::NoAgent => return Ok(Err(ClickError::SessionExpired)),
    };
    Ok(Ok(Prepared {
        dialer,
        request: DialRequest {
            request_id,
            agent_extension: session.extension.as_str().to_owned(),
            agent,
            number: destination.number.as_str().to_owned(),
            dialled: destination.dialled,
            queue: destination.queue,
            contact_name,
        },
    }))
}

fn throttled(message: &'static str, secs: u64) -> ClickError {
    ClickError::Throttled {
        message,
        retry_after: Duration::from_secs(secs),
    }
}

/// The contact's name for the agent's phone display; none when unknown or the lookup
/// fails (the call does not wait for a name).
async fn contact_name(
    client: &deadpool_postgres::Object,
    tenant: TenantId,
    number: &str,
) -> Option<String> {
    match store::contacts::find_by_numbers(client, &[(tenant, number)]).await {
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

fn refused(error: DestinationError, policy: &DialPolicy) -> ClickError {
    match error {
        DestinationError::Number(e) => ClickError::Invalid {
            field: "number",
            message: e.to_string(),
        },
        DestinationError::UnknownQueue(name) => {
            let known: Vec<&str> = policy.queue_prefixes.keys().map(String::as_str).collect();
            let message = if known.is_empty() {
                format!("`{name}` is not a queue: this tenant has no outbound queues")
            } else {
                format!("`{name}` is not a queue; use {}", known.join(", "))
            };
            ClickError::Invalid {
                field: "queue",
                message,
            }
        }
        DestinationError::Refused(refusal) => ClickError::Refused {
            rule: refusal.rule(),
            message: format!("refused by the dial policy ({}): {refusal}", refusal.rule()),
        },
    }
}

/// Asks the tenant's PBX through its dialer.
async fn ask_pbx(
    tenant: &Tenant,
    stored: &StoredDialer,
    http_clients: &crate::outbound::Clients,
    request: &DialRequest,
) -> Result<super::Accepted, DialError> {
    match super::build(stored, http_clients, &tenant.slug) {
        Ok(dialer) => dialer.dial(request).await,
        Err(e) => {
            tracing::error!(tenant = %tenant.id, error = format!("{e:#}"), "the stored dialer is unusable");
            Err(DialError("the tenant's dialer is misconfigured".into()))
        }
    }
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

async fn record(
    pool: &deadpool_postgres::Pool,
    tenant: TenantId,
    request_id: i64,
    status: &DialStatus,
    pbx_id: Option<&str>,
) -> anyhow::Result<()> {
    store::with_client(pool, RECORD_WITHIN, async |client| {
        store::click2call::record_dial(&*client, tenant, request_id, status, pbx_id).await
    })
    .await
}

/// One run of the follow-up task: each queued request's later word awaited in a set
/// this run owns (aborted with it), recorded as it comes.
async fn follow(
    queued: Arc<Mutex<mpsc::Receiver<FollowUp>>>,
    pool: deadpool_postgres::Pool,
    events: EventWriter,
) -> anyhow::Result<()> {
    let mut queued = queued.lock().await;
    let mut pending = JoinSet::new();
    loop {
        tokio::select! {
            next = queued.recv() => match next {
                Some(follow_up) => {
                    pending.spawn(settle(follow_up, pool.clone(), events.clone()));
                }
                None => break,
            },
            Some(done) = pending.join_next(), if !pending.is_empty() => {
                if let Err(e) = done && e.is_panic() {
                    tracing::error!(error = %e, "following a click-to-call panicked");
                }
            }
        }
    }
    while pending.join_next().await.is_some() {}
    Ok(())
}

/// Records the PBX's later word; a request the agent never answered ends (missed).
async fn settle(follow_up: FollowUp, pool: deadpool_postgres::Pool, events: EventWriter) {
    let FollowUp {
        tenant,
        request_id,
        result,
    } = follow_up;
    let (status, pbx_id) = match result.await {
        Ok(id) => (DialStatus::Accepted, id),
        Err(reason) => (DialStatus::Failed(reason), None),
    };
    if let Err(e) = record(&pool, tenant.id, request_id, &status, pbx_id.as_deref()).await {
        tracing::warn!(tenant = %tenant.id, request_id, error = format!("{e:#}"), "recording the PBX's result failed");
    }
    if matches!(status, DialStatus::Failed(_)) {
        let missed = own_event(agent_missed_event(request_id, Utc::now()));
        if let Err(e) = events.offer(tenant.id, tenant.region, missed) {
            tracing::warn!(tenant = %tenant.id, request_id, error = %e, "ending a failed click-to-call's call failed");
        }
    }
}
