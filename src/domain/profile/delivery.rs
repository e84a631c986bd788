//! Deliveries of web-service profiles as the outbox holds them: queued, claimed, sent
//! and logged (store::deliveries reads and writes them).

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::Trigger;
use crate::domain::TenantId;
/// A delivery to queue: a profile, a call and the trigger it reached, with the call's
/// facts as sent.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub profile_id: i64,
    pub call_id: Uuid,
    pub trigger: Trigger,
    pub call: Value,
}

/// A claimed delivery, ready to send.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: Uuid,
    pub message_id: Uuid,
    pub tenant: TenantId,
    pub profile_id: i64,
    pub trigger: String,
    pub call: Value,
    /// This attempt's number, from 1.
    pub attempt: i32,
}

/// What one attempt did to its delivery.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub id: Uuid,
    pub tenant: TenantId,
    pub attempted_at: DateTime<Utc>,
    pub status: Option<i32>,
    pub latency_ms: i32,
    pub error: Option<String>,
    pub response: String,
    /// `delivered`, `failed`, or `pending` (with `next_attempt_at`).
    pub state: &'static str,
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// One row of the delivery log.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LoggedDelivery {
    pub id: Uuid,
    pub webhook_id: String,
    pub profile: String,
    pub call_id: Uuid,
    pub trigger: String,
    pub origin: String,
    pub replay_of: Option<Uuid>,
    pub state: String,
    pub attempts: i32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// Filters of the delivery log.
#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    pub profile: Option<String>,
    pub failed: bool,
    pub since: Option<DateTime<Utc>>,
    pub limit: i64,
}

/// One attempt in the log.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LoggedAttempt {
    pub at: DateTime<Utc>,
    pub status: Option<i32>,
    pub latency_ms: i32,
    pub error: Option<String>,
    pub response: Option<String>,
}

/// A `leg-event` delivery to queue.
#[derive(Debug, Clone)]
pub struct NewLegDelivery {
    pub profile_id: i64,
    pub call_id: Uuid,
    /// The leg event's key (one delivery per profile, call and this).
    pub leg_event: String,
    pub call: Value,
}
