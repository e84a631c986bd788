//! Validated domain types: once built, a value is known to be well-formed.

mod agent;
mod call;
mod call_event;
mod call_fold;
mod call_record;
mod click2call;
mod contact;
mod crm_id;
mod dial_policy;
mod lookup_hit;
mod lookup_log;
mod number_memo;
mod phone_directory;
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
mod trust;
mod write;

pub use agent::{Agent, AgentName, Extension, GroupName, Put, agent_extension};
pub use call::{
    CallCaps, CallSummary, ChangedCall, IncomingEvent, Ingested, Leg, Outcome, OverCap,
    PartitionChanges, StoredEvent,
};
pub use call_event::{
    CallEvent, Direction, EVENT_FIELDS, EventKind, LegRole, LookupLink, MAX_EVENT_AHEAD,
    check_query_pairs, event_time, query_fields,
};
pub use call_fold::{CallFold, Stamp};
pub use call_record::{
    CallField, CallRecord, Cdr, CdrFilter, FirstLeg, Page, Position, call_columns,
};
pub use click2call::{
    DialStatus, LegView, NewRequest, Opened, RequestRow, RequestState, StoredDialer,
    agent_missed_event, placed_event, request_state,
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
pub use phone_directory::{BookContact, DirectoryRow, DirectorySearch};
pub use phone_number::{
    MAX_RAW_LEN, NumberKey, PhoneNumber, PhoneNumberError, Region, alternate_form,
};
pub use report::{
    AgentTotals, By, CallScope, EnabledReport, LookupDay, OutputFormat, ReportTemplate, Timeframe,
    Totals, Window,
};
pub use report_request::{MAX_ROWS, ReportRequest};
pub use routing::{FieldKind, FieldType, FieldValue, RoutingField, RoutingFields};
pub use service_user::{Access, CreateError, ServiceUser, ServiceUserName};
pub use session::{Session, SessionHours, SessionSecret};
pub use signing_key::PopupKey;
pub use tenant::{
    AuthPolicy, CreateTenantError, EVENT_RATE_SETTING, LookupLogSettings, PopupSettings,
    TIME_ZONE_SETTING, Tenant, TenantId, TenantSlug,
};
pub use text::storage_problem;
pub use token::{
    ApiToken, DirectoryRows, LiveToken, TokenHash, TokenInfo, TokenScope, TokenScopes,
};
pub use trust::{
    CallerTrust, FAILED_VERSTAT, MAX_SPAM_LABEL, MAX_TRUST_LEN, Screen, ScreenReason,
    ScreeningSettings, SpamEntry, trust_param,
};
pub use write::{ChangedNumbers, OverNumberCap, WriteOp, WriteOutcome, WriteResult};
