//! What deliveries and `profile test` send with: `outbound`'s clients (rustls on ring, no
//! redirects, no system proxy: only `CIDGATE_WEBHOOK_PROXY`; every name resolved
//! through the tenant's guard), every request signed and bounded by the timeout.
//! `RUST_LOG=cidgate::webhook=debug` logs each request and answer with secret headers
//! masked.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use super::sign;
use crate::domain::profile::{MASK, RenderedRequest};
use crate::outbound::{self, Clients, Guard, Network, Refused, describe, refusal};

/// How much of an answer is kept in the delivery log.
pub const RESPONSE_KEPT: usize = 1024;

/// How a webhook client is built (the allowed networks are the [`Network`]'s).
#[derive(Debug, Clone)]
pub struct ClientSettings {
    pub timeout: Duration,
    pub proxy: Option<url::Url>,
}

/// What one attempt gave.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub at: DateTime<Utc>,
    pub status: Option<u16>,
    pub latency: Duration,
    /// Why it failed without an answer (refused, unreachable, timed out).
    pub error: Option<String>,
    /// The start of the answer's body.
    pub response: String,
    /// The answer's `Retry-After`, in seconds form.
    pub retry_after: Option<Duration>,
    /// Refused by the guard: no request left the gateway.
    pub refused: bool,
    /// The guard's refusal with its address, for the operator only (`error` is what
    /// the tenant sees).
    pub refusal: Option<Refused>,
}

/// What becomes of the delivery after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Delivered,
    /// Network error, timeout, 5xx, 408, 429: tried again on the schedule.
    Retry,
    /// Any other answer (or a refused target): not tried again.
    Fail,
    /// 410 Gone: the receiver wants no more; the profile is disabled.
    Gone,
}

impl Attempt {
    pub fn verdict(&self) -> Verdict {
        match self.status {
            Some(200..=299) => Verdict::Delivered,
            Some(410) => Verdict::Gone,
            Some(408 | 429 | 500..=599) => Verdict::Retry,
            Some(_) => Verdict::Fail,
            None if self.refused => Verdict::Fail,
            None => Verdict::Retry,
        }
    }
}

/// The signing of one request: its stable id and the secrets that sign it.
pub struct Signing<'a> {
    pub id: &'a str,
    pub secrets: Vec<&'a str>,
}

/// The client of one tenant's profiles (`for_tenant`), from the clients of every tenant.
#[derive(Clone)]
pub struct WebhookClient {
    clients: Clients,
    out: outbound::Client,
}

impl WebhookClient {
    pub fn new(settings: &ClientSettings, network: &Network) -> anyhow::Result<Self> {
        let clients = Clients::new(
            network,
            outbound::Settings {
                user_agent: concat!("cidgate-webhooks/", env!("CARGO_PKG_VERSION")),
                timeout: settings.timeout,
                connect_timeout: settings.timeout.min(Duration::from_secs(10)),
                proxy: settings.proxy.clone(),
            },
        )?;
        Ok(Self {
            out: clients.shared().clone(),
            clients,
        })
    }

    /// The client for `tenant`'s profiles: the shared one unless a rule names it.
    pub fn for_tenant(&self, tenant: &str) -> anyhow::Result<WebhookClient> {
        Ok(Self {
            out: self.clients.for_tenant(tenant)?,
            clients: self.clients.clone(),
        })
    }

    pub fn guard(&self) -> &Guard {
        self.out.guard()
    }

    /// The outbound client itself (its target checks).
    pub fn outbound(&self) -> &outbound::Client {
        &self.out
    }

    /// Sends `request` signed; never fails: what went wrong is in the attempt.
    pub async fn send(&self, request: &RenderedRequest, signing: &Signing<'_>) -> Attempt {
        let at = Utc::now();
        let started = Instant::now();
        let failed = |error: String, refusal: Option<Refused>, refused: bool| Attempt {
            at,
            status: None,
            latency: started.elapsed(),
            error: Some(error),
            response: String::new(),
            retry_after: None,
            refused,
            refusal,
        };
        // A literal (the target's, or the proxy's) is never resolved, so the guard's
        // resolver hook does not see it: checked here, as a name is when resolved.
        if let Err(refused) = self.out.check_literals(&request.url) {
            return failed(refused.to_string(), Some(refused), true);
        }
        let headers = match signed_headers(request, signing, at.timestamp()) {
            Ok(h) => h,
            Err(e) => return failed(e, None, true),
        };
        log_request(request, &headers);
        let method = reqwest::Method::from_bytes(request.method.as_str().as_bytes())
            .expect("a standard method");
        let sent = self
            .out
            .http()
            .request(method, request.url.clone())
            .headers(headers)
            .body(request.body.clone())
            .send()
            .await;
        let mut answer = match sent {
            Ok(answer) => answer,
            Err(e) => {
                let refused = refusal(&e);
                let was_refused = refused.is_some();
                let why = refused
                    .as_ref()
                    .map_or_else(|| describe(&e), ToString::to_string);
                tracing::debug!(url = %request.url, error = %why, "webhook request failed");
                return failed(why, refused, was_refused);
            }
        };
        let status = answer.status().as_u16();
        let retry_after = answer
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let mut kept = Vec::new();
        let mut error = None;
        while kept.len() < RESPONSE_KEPT {
            match answer.chunk().await {
                Ok(Some(chunk)) => kept.extend_from_slice(&chunk),
                Ok(None) => break,
                Err(e) => {
                    error = Some(describe(&e));
                    break;
                }
            }
        }
        kept.truncate(RESPONSE_KEPT);
        let response = String::from_utf8_lossy(&kept).into_owned();
        let latency = started.elapsed();
        tracing::debug!(
            url = %request.url,
            status,
            latency_ms = latency.as_millis() as u64,
            response = %response,
            "webhook answer"
        );
        Attempt {
            at,
            status: Some(status),
            latency,
            error,
            response,
            retry_after,
            refused: false,
            refusal: None,
        }
    }
}

/// The profile's headers, the content type and the Standard Webhooks headers.
fn signed_headers(
    request: &RenderedRequest,
    signing: &Signing<'_>,
    timestamp: i64,
) -> Result<HeaderMap, String> {
    let mut headers = HeaderMap::new();
    for (name, value, _) in &request.headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("`{name}` is not a header name"))?;
        let value = HeaderValue::from_str(value)
            .map_err(|_| format!("the value of `{name}` is not sendable"))?;
        headers.append(name, value);
    }
    if let Some(content_type) = request.content_type {
        headers.insert(
            reqwest::header::CONTENT_TYPE,
            HeaderValue::from_static(content_type),
        );
    }
    let content = sign::signed_content(
        request.method.as_str(),
        &request.path_and_query(),
        &request.body,
    );
    let signature = sign::signature(&signing.secrets, signing.id, timestamp, &content);
    let value =
        |s: &str| HeaderValue::from_str(s).map_err(|_| "unsendable signature header".to_owned());
    headers.insert("webhook-id", value(signing.id)?);
    headers.insert("webhook-timestamp", value(&timestamp.to_string())?);
    headers.insert("webhook-signature", value(&signature)?);
    Ok(headers)
}

/// The request at debug level, secret header values masked.
fn log_request(request: &RenderedRequest, headers: &HeaderMap) {
    if !tracing::enabled!(tracing::Level::DEBUG) {
        return;
    }
    let shown: Vec<String> = headers
        .iter()
        .map(|(name, value)| {
            let secret = request
                .headers
                .iter()
                .any(|(n, _, secret)| *secret && n.eq_ignore_ascii_case(name.as_str()));
            let value = if secret {
                MASK
            } else {
                value.to_str().unwrap_or("?")
            };
            format!("{name}: {value}")
        })
        .collect();
    tracing::debug!(
        method = request.method.as_str(),
        url = %request.url,
        headers = ?shown,
        body = %String::from_utf8_lossy(&request.body),
        "webhook request"
    );
}
