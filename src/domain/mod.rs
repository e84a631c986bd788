//! Validated domain types: once built, a value is known to be well-formed.

mod agent;
mod call;
mod call_end;
mod call_event;
mod call_fold;
mod click2call;
mod contact;
mod crm_id;
mod dial_policy;
mod lookup_hit;
mod lookup_log;
mod number_memo;
mod phone_number;
pub mod profile;
mod report;
mod report_request;
mod routing;
mod service_user;
mod session;
mod signing_key;
mod tenant;
mod text;
mod token;
mod write;

pub use agent::{Agent, AgentName, Extension, GroupName, agent_extension};
pub use call::{CallSummary, Leg, Outcome, StoredEvent};
pub use call_end::{CALL_END_MAPPING, CALL_END_TIMES, CallEndMapping};
pub use call_event::{
    CallEvent, Direction, EVENT_FIELDS, EventKind, LegRole, LookupLink, MAX_EVENT_AHEAD, event_time,
};
pub use call_fold::{CallFold, Stamp};
pub use click2call::{
    DialStatus, LegView, RequestState, agent_missed_event, placed_event, request_state,
};
pub use contact::{
    ContactInput, ContactRecord, FieldError, MAX_PHONE_ENTRIES, MAX_UPDATED_AT_AHEAD,
    parse_source_time,
};
pub use crm_id::{CrmId, integer_id};
pub use dial_policy::{
    Destination, DestinationError, DialPolicy, NumberFormat, Refusal, parse_queue_prefix,
};
pub use lookup_hit::LookupHit;
pub use lookup_log::{LogEntry, LookupOutcomeKind, RecentCall};
pub use number_memo::parse_remembered;
pub use phone_number::{
    MAX_RAW_LEN, NumberKey, PhoneNumber, PhoneNumberError, Region, alternate_form,
};
pub use report::{OutputFormat, ReportTemplate, Timeframe};
pub use report_request::{MAX_ROWS, ReportRequest};
pub use routing::{FieldKind, FieldType, FieldValue, RoutingField, RoutingFields};
pub use service_user::{Access, ServiceUserName};
pub use session::{SessionHours, SessionSecret};
pub use signing_key::PopupKey;
pub use tenant::{AuthPolicy, LookupLogSettings, PopupSettings, Tenant, TenantId, TenantSlug};
pub use text::storage_problem;
pub use token::{ApiToken, TokenHash, TokenScope, TokenScopes};
pub use write::{ChangedNumbers, WriteOp, WriteOutcome, WriteResult};
