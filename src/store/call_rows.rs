//! A `calls` row read as the call record (every query that reads records selects
//! `domain::call_columns`).

use tokio_postgres::Row;

use crate::domain::CallRecord;

/// The record of a row read with `call_columns` (the `calls` columns, by name).
pub(crate) fn record(r: &Row) -> CallRecord {
    CallRecord {
        call_id: r.get("id"),
        report_call_id: r.get("report_call_id"),
        activecallkey: r.get("activecallkey"),
        request_id: r.get("request_id"),
        direction: r.get("direction"),
        caller_number: r.get("caller_number"),
        caller_name: r.get("caller_name"),
        contact_id: r.get("contact_id"),
        dnis: r.get("dnis"),
        external_number: r.get("external_number"),
        other_number: r.get("other_number"),
        agent: r.get("agent"),
        group: r.get("call_group"),
        account_codes: r.get("account_codes"),
        tags: r.get("tags"),
        started_at: r.get("started_at"),
        answered_at: r.get("answered_at"),
        ended_at: r.get("ended_at"),
        duration_ms: r.get("duration_ms"),
        talk_ms: r.get("talk_ms"),
        outcome: r.get("outcome"),
        recorded: r.get("recorded"),
        recording_url: r.get("recording_url"),
        legs: r.get("legs"),
        lookup: r.get("lookup"),
        extra: r.get("extra"),
    }
}
