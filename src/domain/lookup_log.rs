//! The lookup log's entries: how each lookup went, and a number's recent calls.

use chrono::{DateTime, Utc};

use super::tenant::TenantId;

/// How a lookup went, as the log records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LookupOutcomeKind {
    Found,
    Unknown,
    Degraded,
}

impl LookupOutcomeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Found => "found",
            Self::Unknown => "unknown",
            Self::Degraded => "degraded",
        }
    }
}

/// One logged lookup.
#[derive(Debug, Clone)]
pub struct LogEntry {
    pub tenant: TenantId,
    pub at: DateTime<Utc>,
    pub number: Option<String>,
    pub dnid: Option<String>,
    pub crm_id: Option<String>,
    pub outcome: LookupOutcomeKind,
    pub latency_us: i32,
    /// `verstat` and `attest` as the PBX passed them.
    pub verstat: Option<String>,
    pub attest: Option<String>,
    /// Why the answer was screened (`spam_list`, `failed_verstat`), when it was.
    pub screened: Option<&'static str>,
}

/// A past lookup of one number, for the screen pop.
#[derive(Debug, Clone)]
pub struct RecentCall {
    pub at: DateTime<Utc>,
    pub dnid: Option<String>,
    pub outcome: String,
}
