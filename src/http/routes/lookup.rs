//! `GET /api/lookup` (and `/api/while1voice`): the PBX asks who is calling.

use std::borrow::Cow;

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;

use crate::domain::IncomingEvent;
use crate::domain::{
    CallEvent, CallerTrust, EventKind, LookupHit, LookupLink, RoutingField, Screen, ScreenReason,
    storage_problem,
};
use crate::http::auth::{LookupAuth, request_start};
use crate::http::error::ApiError;
use crate::http::shared::resource;
use crate::http::state::AppState;
use crate::live::directory::TenantEntry;
use crate::lookup::{
    AnswerForm, Caller, DEFAULT_ROOT_TAG, Degraded, LookupAnswer, LookupOutcome, LookupQuery,
};
use crate::metrics::ReasonLabels;
use crate::popup::LinkClaims;

/// Marks an answer that is not the database's current word (value: stale, unknown,
/// unverified), so PBX logs and monitoring can tell.
pub const DEGRADED_HEADER: &str = "x-cidgate-degraded";

pub async fn lookup(
    req: HttpRequest,
    auth: LookupAuth,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let started = request_start(&req);
    let query = LookupQuery::parse(req.query_string()).map_err(ApiError::BadRequest)?;
    let LookupAuth::Tenant(entry) = auth else {
        state.metrics.degraded.inc();
        state.metrics.lookup_outcome("degraded_unverified");
        return Ok(answer(
            &LookupAnswer::unknown(),
            Some(Degraded::Unverified),
            &query,
        ));
    };
    let tenant = &entry.tenant;
    let caller = Caller::from_param(query.telephone.as_deref(), tenant.region)
        .map_err(|e| ApiError::BadRequest(format!("telephone {e}")))?;
    let outcome = state.lookup.lookup(tenant.id, &caller, started).await;
    let number = match &caller {
        Caller::Number(n) => Some(n.as_str()),
        Caller::Unidentified => None,
    };
    let hit = outcome.hit.as_ref();
    let screen = screen_for(&state, &entry, &caller, &outcome, &query.trust);
    let reason = screen.map(|(_, reason)| reason);
    let link = number.and_then(|n| {
        backend_link(
            &state,
            &entry,
            hit,
            n,
            query.dnid.as_deref(),
            &query.trust,
            reason,
        )
    });
    let mut body = LookupAnswer::new(hit, link.map(Cow::Owned));
    if let Some((screen, reason)) = screen {
        state
            .metrics
            .lookups_screened
            .get_or_create(&ReasonLabels {
                reason: reason.as_str(),
            })
            .inc();
        body = body.screened(screen.name, screen.route);
    }
    if tenant.lookup_log.enabled {
        let dnid = query.dnid.as_deref();
        let mut entry = outcome.log_entry(tenant.id, number, dnid, started);
        entry.verstat = query.trust.verstat.clone();
        entry.attest = query.trust.attest.clone();
        entry.screened = reason.map(ScreenReason::as_str);
        state.lookup_log.record(entry);
    }
    if let Some(call_id) = pbx_call_id(req.query_string()) {
        let link = LookupLink {
            identified: hit.is_some(),
            contact_id: hit.map(|h| h.id().to_owned()),
            degraded: outcome.degraded.is_some(),
            verstat: query.trust.verstat.clone(),
            attest: query.trust.attest.clone(),
            screened: reason.map(|r| r.as_str().to_owned()),
        };
        let event = CallEvent {
            call_id,
            event: Some(EventKind::Lookup),
            at: Some(Utc::now()),
            // As the PBX sent it, unless it holds what the database cannot keep (the
            // lookup answers all the same; its link must not fail a shared batch).
            caller: query
                .telephone
                .as_deref()
                .filter(|t| storage_problem(t).is_none())
                .map(str::to_owned),
            caller_name: hit.map(|h| h.name().to_owned()),
            dnis: query
                .dnid
                .as_deref()
                .filter(|d| !d.is_empty())
                .map(str::to_owned),
            lookup: Some(link),
            ..CallEvent::default()
        };
        let raw = serde_json::json!({"call_id": event.call_id, "lookup": true});
        let incoming = IncomingEvent {
            event,
            raw,
            received_at: Utc::now(),
        };
        // Never waits: the PBX's answer does not depend on it.
        if let Err(e) = state.events.offer(tenant.id, tenant.region, incoming) {
            tracing::debug!(error = %e, "a lookup's call link was not recorded");
        }
    }
    Ok(answer(&body, outcome.degraded, &query))
}

/// The PBX's call id, when the lookup carries a usable one (else the link is skipped:
/// the lookup itself never fails over it).
fn pbx_call_id(query: &str) -> Option<String> {
    if !query.contains("call_id=") {
        return None;
    }
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "call_id")
        .map(|(_, v)| v.trim().to_owned())
        .filter(|v| !v.is_empty() && v.chars().count() <= 128 && !v.chars().any(char::is_control))
}

/// Whether this unknown caller is screened, and how: only an answer that is certain
/// (not degraded: a contact the database could not be asked about must not be sent to
/// screening), only when the tenant set a screening route. The spam list is in memory.
fn screen_for<'a>(
    state: &AppState,
    entry: &'a TenantEntry,
    caller: &Caller,
    outcome: &LookupOutcome,
    trust: &CallerTrust,
) -> Option<(Screen<'a>, ScreenReason)> {
    if outcome.hit.is_some() || outcome.degraded.is_some() {
        return None;
    }
    let screen = Screen::of(&entry.tenant.settings)?;
    let flagged = match caller {
        Caller::Number(n) => state.spam.is_flagged(entry.tenant.id, n),
        Caller::Unidentified => false,
    };
    screen.reason(flagged, trust).map(|reason| (screen, reason))
}

/// The screen pop for this call: a sealed link to the contact's page, or for an unknown
/// caller (when the tenant wants one) to the unknown-caller page.
fn backend_link(
    state: &AppState,
    entry: &TenantEntry,
    hit: Option<&LookupHit>,
    number: &str,
    dnid: Option<&str>,
    trust: &CallerTrust,
    screened: Option<ScreenReason>,
) -> Option<String> {
    let settings = &entry.tenant.popup;
    if hit.is_none() && !settings.for_unknown {
        return None;
    }
    let Some(signer) = &entry.signer else {
        // No key yet (a tenant created a moment ago on another instance): the CRM
        // record is better than nothing.
        return hit
            .and_then(|h| h.text(RoutingField::CrmUrl))
            .map(str::to_owned);
    };
    let ttl = i64::try_from(settings.ttl_secs).unwrap_or(i64::MAX);
    let claims = LinkClaims {
        tenant: entry.tenant.id.0,
        crm_id: hit.map(|h| h.id().into()),
        number: number.into(),
        dnid: dnid.filter(|d| !d.is_empty()).map(Cow::Borrowed),
        expires: Utc::now().timestamp().saturating_add(ttl),
        verstat: trust.verstat.as_deref().map(Cow::Borrowed),
        attest: trust.attest.as_deref().map(Cow::Borrowed),
        screened: screened.map(|r| Cow::Borrowed(r.as_str())),
    };
    let base = state.public_url.as_str().trim_end_matches('/');
    let mut link = String::with_capacity(base.len() + 320);
    link.push_str(base);
    link.push_str("/pop/");
    signer.seal_into(&claims, &mut link);
    Some(link)
}

fn answer(
    body: &LookupAnswer<'_>,
    degraded: Option<Degraded>,
    query: &LookupQuery,
) -> HttpResponse {
    let mut response = HttpResponse::Ok();
    if let Some(degraded) = degraded {
        response.insert_header((DEGRADED_HEADER, degraded.as_str()));
    }
    match query.format {
        AnswerForm::Xml => response
            .content_type("application/xml; charset=utf-8")
            .body(body.to_xml(query.root_tag.as_deref().unwrap_or(DEFAULT_ROOT_TAG))),
        AnswerForm::Json => response.json(body),
        AnswerForm::Text => response
            .content_type("text/plain; charset=utf-8")
            .body(body.to_text()),
        AnswerForm::Compact => response
            .content_type("application/json")
            .body(body.to_compact_json()),
    }
}

/// Registers the lookup at `/api/lookup` and `/api/while1voice` (the reference's path).
/// One resource per path: a resource with several paths is matched by regex, which
/// costs more than the rest of a cached lookup.
pub fn configure(cfg: &mut web::ServiceConfig) {
    for path in ["/api/lookup", "/api/while1voice"] {
        cfg.service(resource(path, "GET").route(web::get().to(lookup)));
    }
}
