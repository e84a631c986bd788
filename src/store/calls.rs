//! Writing call events: one transaction per batch groups events into calls (through
//! `call_keys`), keeps each event once, and rewrites the record of every call that
//! gained one, within the caps on a call and on a tenant's calls. Run it inside a
//! transaction.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use anyhow::Context;
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use deadpool_postgres::GenericClient;
use serde_json::{Value, json};
use uuid::Uuid;

use super::call_summaries::{Batch, Kept, summarize};
use super::contacts;
use crate::domain::{CallCaps, ChangedCall, IncomingEvent, Ingested, OverCap};
use crate::domain::{CallEvent, CallFold, PhoneNumber, Region, TenantId};

/// The first day of `at`'s month: the partition a new call goes to.
pub fn month_of(at: DateTime<Utc>) -> NaiveDate {
    NaiveDate::from_ymd_opt(at.year(), at.month(), 1).expect("the first of a month exists")
}

/// The keys that group an event into a call: its leg, and its click-to-call request.
fn grouping_keys(e: &CallEvent) -> Vec<String> {
    let mut keys = vec![format!("c:{}", e.call_id)];
    if let Some(request) = e.request_id {
        keys.push(format!("r:{request}"));
    }
    keys
}

/// Every key that should find the event's call, its GUID included.
fn all_keys(e: &CallEvent) -> Vec<String> {
    let mut keys = grouping_keys(e);
    if let Some(guid) = &e.guid {
        keys.push(format!("g:{guid}"));
    }
    keys
}

/// Another write created a call for one of the batch's keys meanwhile: the batch is
/// written again, and then finds that call.
#[derive(Debug, thiserror::Error)]
#[error("another write created the same call at the same time")]
pub struct KeyRace;

/// Whether a failed event write may succeed if written again (a race lost).
pub fn worth_retrying(error: &anyhow::Error) -> bool {
    contacts::worth_retrying(error) || error.chain().any(|c| c.is::<KeyRace>())
}

/// Records `events` of one tenant; `region` reads the numbers they carry.
///
/// Writes of one tenant run side by side: a call's row is locked before its events
/// are read, so two writes to one call take turns; two writes that would create the
/// same call meet on its key, and the second is tried again (`KeyRace`). Only the end
/// (change number, report ids, call count, the calls' rows) holds the tenant's
/// `call_counters` row, until the commit: change numbers still become visible in order.
pub async fn ingest(
    client: &impl GenericClient,
    tenant: TenantId,
    region: Region,
    events: &[IncomingEvent],
    caps: CallCaps,
) -> anyhow::Result<Ingested> {
    if events.is_empty() {
        return Ok(Ingested::default());
    }
    let keys: BTreeSet<String> = events
        .iter()
        .flat_map(|e| grouping_keys(&e.event))
        .collect();
    let key_list: Vec<&String> = keys.iter().collect();
    let known: HashMap<String, (Uuid, NaiveDate)> = client
        .query(
            "SELECT key, call_id, month FROM call_keys WHERE tenant_id = $1 AND key = ANY($2)",
            &[&tenant.0, &key_list],
        )
        .await
        .context("finding calls")?
        .into_iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2))))
        .collect();

    // Events sharing a key are one call; an existing call is found by any of its keys
    // (a request's key first: every leg of a click-to-call belongs to it).
    let groups = group_events(events);
    let mut call_of_event = vec![(Uuid::nil(), NaiveDate::MIN); events.len()];
    let mut new_calls: HashSet<Uuid> = HashSet::new();
    for group in &groups {
        let found = group
            .iter()
            .flat_map(|&i| grouping_keys(&events[i].event))
            .filter_map(|k| known.get(&k).map(|c| (!k.starts_with("r:"), *c)))
            .min_by_key(|(not_request, _)| *not_request)
            .map(|(_, c)| c);
        let call = found.unwrap_or_else(|| {
            let first = group
                .iter()
                .map(|&i| events[i].at())
                .min()
                .expect("groups are not empty");
            let call = (Uuid::new_v4(), month_of(first));
            new_calls.insert(call.0);
            call
        });
        for &i in group {
            call_of_event[i] = call;
        }
    }

    // Keys not yet known (a new call's, a new leg's, a GUID first seen), in one order
    // so that two writes wait for each other's keys in the same order.
    let mut new_keys: BTreeMap<String, (Uuid, NaiveDate)> = BTreeMap::new();
    for (e, call) in events.iter().zip(&call_of_event) {
        for key in all_keys(&e.event) {
            if !known.contains_key(&key) {
                new_keys.entry(key).or_insert(*call);
            }
        }
    }
    record_keys(client, tenant, new_keys).await?;

    let mut existing: Vec<(Uuid, NaiveDate)> = call_of_event
        .iter()
        .filter(|c| !new_calls.contains(&c.0))
        .copied()
        .collect();
    existing.sort_unstable();
    existing.dedup();
    let before = lock_calls(client, tenant, &existing).await?;

    let new = insert_events(client, tenant, events, &call_of_event).await?;
    check_caps(events, &call_of_event, &new, &before, caps)?;
    let mut changed: Vec<(Uuid, NaiveDate)> = call_of_event
        .iter()
        .zip(&new)
        .filter(|(_, new)| **new)
        .map(|(call, _)| *call)
        .collect();
    changed.sort_unstable();
    changed.dedup();
    let batch = Batch {
        events,
        calls: &call_of_event,
        new: &new,
        created: &new_calls,
    };
    let (mut calls, kept) = summarize(client, tenant, region, &changed, &before, &batch).await?;

    // From here to the commit the tenant's row is held (its writes take turns).
    let created = calls.iter().filter(|c| new_calls.contains(&c.id)).count();
    let turn = take_turn(client, tenant, created).await?;
    let mut report_id = turn.first_report_id;
    for call in &mut calls {
        if new_calls.contains(&call.id) {
            call.report_call_id = report_id;
            report_id += 1;
        }
    }
    write_calls(
        client,
        tenant,
        region,
        &changed,
        &calls,
        &kept,
        turn.change_seq,
    )
    .await?;
    Ok(Ingested { new, calls })
}

/// Records `keys`; a grouping key another write took meanwhile is a `KeyRace`.
async fn record_keys(
    client: &impl GenericClient,
    tenant: TenantId,
    keys: BTreeMap<String, (Uuid, NaiveDate)>,
) -> anyhow::Result<()> {
    if keys.is_empty() {
        return Ok(());
    }
    let (k_keys, (k_calls, k_months)): (Vec<String>, (Vec<Uuid>, Vec<NaiveDate>)) =
        keys.into_iter().unzip();
    let inserted: BTreeSet<String> = client
        .query(
            "INSERT INTO call_keys (tenant_id, key, call_id, month)
             SELECT $1, * FROM unnest($2::text[], $3::uuid[], $4::date[])
             ON CONFLICT DO NOTHING
             RETURNING key",
            &[&tenant.0, &k_keys, &k_calls, &k_months],
        )
        .await
        .context("recording call keys")?
        .iter()
        .map(|r| r.get(0))
        .collect();
    // A GUID another call already has keeps finding that one; a leg's or a request's
    // key decides the call, so the batch is grouped again.
    if k_keys
        .iter()
        .any(|k| !k.starts_with("g:") && !inserted.contains(k))
    {
        return Err(KeyRace.into());
    }
    Ok(())
}

/// What an existing call holds before the batch: its legs, how many events, and its
/// summary (`None` for a call written before summaries were kept).
pub(super) struct Before {
    legs: Vec<String>,
    pub(super) events: i64,
    pub(super) summary: Option<CallFold>,
}

/// The calls' ids and months, as two arrays for `unnest`.
pub(super) fn ids_and_months(calls: &[(Uuid, NaiveDate)]) -> (Vec<Uuid>, Vec<NaiveDate>) {
    calls.iter().copied().unzip()
}

/// Locks the calls' rows (in id order) so that a concurrent write to one of them
/// waits, and reads what the caps need.
async fn lock_calls(
    client: &impl GenericClient,
    tenant: TenantId,
    calls: &[(Uuid, NaiveDate)],
) -> anyhow::Result<HashMap<Uuid, Before>> {
    if calls.is_empty() {
        return Ok(HashMap::new());
    }
    let (ids, months) = ids_and_months(calls);
    let rows = client
        .query(
            "SELECT c.id, ARRAY(SELECT l->>'call_id' FROM jsonb_array_elements(c.legs) l),
                    coalesce(c.event_count::bigint,
                             (SELECT count(*) FROM call_events e WHERE e.tenant_id = c.tenant_id
                                AND e.month = c.month AND e.call_id = c.id)),
                    c.summary
             FROM unnest($2::uuid[], $3::date[]) AS q (id, month)
             JOIN calls c ON c.tenant_id = $1 AND c.id = q.id AND c.month = q.month
             ORDER BY c.id
             FOR UPDATE OF c",
            &[&tenant.0, &ids, &months],
        )
        .await
        .context("locking calls")?;
    Ok(rows
        .iter()
        .map(|r| {
            let legs: Vec<Option<String>> = r.get(1);
            // A summary that no longer reads (an older form) is made again from the events.
            let summary: Option<Value> = r.get(3);
            let before = Before {
                legs: legs.into_iter().flatten().collect(),
                events: r.get(2),
                summary: summary.and_then(|s| serde_json::from_value(s).ok()),
            };
            (r.get(0), before)
        })
        .collect())
}

/// Refuses the batch when a call would pass a cap with its new events.
fn check_caps(
    events: &[IncomingEvent],
    calls: &[(Uuid, NaiveDate)],
    new: &[bool],
    before: &HashMap<Uuid, Before>,
    caps: CallCaps,
) -> Result<(), OverCap> {
    let mut after: HashMap<Uuid, (BTreeSet<&str>, i64)> = HashMap::new();
    for ((e, call), new) in events.iter().zip(calls).zip(new) {
        if !new {
            continue;
        }
        let (legs, count) = after
            .entry(call.0)
            .or_insert_with(|| match before.get(&call.0) {
                Some(b) => (b.legs.iter().map(String::as_str).collect(), b.events),
                None => (BTreeSet::new(), 0),
            });
        legs.insert(e.event.call_id.as_str());
        *count += 1;
        let call_id = e.event.call_id.clone();
        if legs.len() > caps.max_legs {
            return Err(OverCap::Legs {
                call_id,
                max: caps.max_legs,
            });
        }
        if *count > i64::try_from(caps.max_events).unwrap_or(i64::MAX) {
            return Err(OverCap::Events {
                call_id,
                max: caps.max_events,
            });
        }
    }
    Ok(())
}

/// The tenant's turn: the next change number and a block of report call ids for the
/// calls the batch creates, counted against its `max_calls`.
struct Turn {
    change_seq: i64,
    first_report_id: i64,
}

async fn take_turn(
    client: &impl GenericClient,
    tenant: TenantId,
    created: usize,
) -> anyhow::Result<Turn> {
    let created = i64::try_from(created)?;
    let update = "UPDATE call_counters c SET last_change_seq = c.last_change_seq + 1,
                      last_report_call_id = c.last_report_call_id + $2, calls = c.calls + $2
                  FROM tenants t WHERE c.tenant_id = $1 AND t.id = $1
                  RETURNING c.last_change_seq, c.last_report_call_id, c.calls, t.max_calls";
    let mut row = client
        .query_opt(update, &[&tenant.0, &created])
        .await
        .context("taking the tenant's turn to write calls")?;
    if row.is_none() {
        client
            .execute(
                "INSERT INTO call_counters (tenant_id) VALUES ($1) ON CONFLICT DO NOTHING",
                &[&tenant.0],
            )
            .await
            .context("counting the tenant's calls")?;
        row = client
            .query_opt(update, &[&tenant.0, &created])
            .await
            .context("taking the tenant's turn to write calls")?;
    }
    let row = row.context("the tenant is gone")?;
    let (calls, max_calls): (i64, i64) = (row.get(2), row.get(3));
    if created > 0 && calls > max_calls {
        return Err(OverCap::Calls { max: max_calls }.into());
    }
    let last_report: i64 = row.get(1);
    Ok(Turn {
        change_seq: row.get(0),
        first_report_id: last_report - created + 1,
    })
}

/// Indexes of events that share a grouping key, transitively.
fn group_events(events: &[IncomingEvent]) -> Vec<Vec<usize>> {
    let mut parent: Vec<usize> = (0..events.len()).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    let mut owner: HashMap<String, usize> = HashMap::new();
    for (i, e) in events.iter().enumerate() {
        for key in grouping_keys(&e.event) {
            match owner.get(&key) {
                Some(&j) => {
                    let (a, b) = (root(&mut parent, i), root(&mut parent, j));
                    parent[a] = b;
                }
                None => {
                    owner.insert(key, i);
                }
            }
        }
    }
    let mut groups: HashMap<usize, Vec<usize>> = HashMap::new();
    for i in 0..events.len() {
        let r = root(&mut parent, i);
        groups.entry(r).or_default().push(i);
    }
    let mut groups: Vec<Vec<usize>> = groups.into_values().collect();
    groups.sort_unstable();
    groups
}

/// Inserts the events; for each, whether it was new (not a repeat of a recorded one).
async fn insert_events(
    client: &impl GenericClient,
    tenant: TenantId,
    events: &[IncomingEvent],
    calls: &[(Uuid, NaiveDate)],
) -> anyhow::Result<Vec<bool>> {
    let fingerprints: Vec<Vec<u8>> = events
        .iter()
        .map(|e| e.event.fingerprint().to_vec())
        .collect();
    let call_ids: Vec<Uuid> = calls.iter().map(|c| c.0).collect();
    let months: Vec<NaiveDate> = calls.iter().map(|c| c.1).collect();
    let ats: Vec<DateTime<Utc>> = events.iter().map(IncomingEvent::at).collect();
    let received: Vec<DateTime<Utc>> = events.iter().map(|e| e.received_at).collect();
    let applied: Vec<Value> = events
        .iter()
        .map(|e| serde_json::to_value(&e.event))
        .collect::<Result<_, _>>()?;
    let raw: Vec<&Value> = events.iter().map(|e| &e.raw).collect();
    let rows = client
        .query(
            "INSERT INTO call_events (tenant_id, call_id, month, fingerprint, at, received_at, event, raw)
             SELECT $1, * FROM unnest($2::uuid[], $3::date[], $4::bytea[], $5::timestamptz[],
                                      $6::timestamptz[], $7::jsonb[], $8::jsonb[])
             ON CONFLICT DO NOTHING
             RETURNING call_id, fingerprint",
            &[&tenant.0, &call_ids, &months, &fingerprints, &ats, &received, &applied, &raw],
        )
        .await
        .context("recording call events")?;
    let inserted: BTreeSet<(Uuid, Vec<u8>)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    // A report repeated within the batch is new only the first time.
    let mut seen: BTreeSet<(Uuid, &[u8])> = BTreeSet::new();
    Ok(call_ids
        .iter()
        .zip(&fingerprints)
        .map(|(call, fp)| {
            inserted.contains(&(*call, fp.clone())) && seen.insert((*call, fp.as_slice()))
        })
        .collect())
}

/// Writes the calls' records (a new call's report id is set; an existing call keeps
/// its own).
async fn write_calls(
    client: &impl GenericClient,
    tenant: TenantId,
    region: Region,
    calls: &[(Uuid, NaiveDate)],
    changed: &[ChangedCall],
    kept: &[Kept],
    change_seq: i64,
) -> anyhow::Result<()> {
    if calls.is_empty() {
        return Ok(());
    }
    let records: Vec<Value> = calls
        .iter()
        .zip(changed)
        .zip(kept)
        .map(|((&(_, month), call), kept)| row_json(month, call, region, kept))
        .collect();
    client
        .execute(
            "INSERT INTO calls (tenant_id, month, id, report_call_id, activecallkey, request_id,
                 direction, caller_number, caller_name, contact_id, dnis, external_number, other_number, agent,
                 call_group, account_codes, tags, started_at, answered_at, ended_at, duration_ms,
                 talk_ms, outcome, recorded, recording_url, legs, lookup, extra, event_count, summary,
                 change_seq)
             SELECT $1, r.*, $3
             FROM jsonb_to_recordset($2::jsonb) AS r (month date, id uuid, report_call_id bigint,
                 activecallkey text, request_id bigint, direction text, caller_number text,
                 caller_name text, contact_id text, dnis text, external_number text, other_number text, agent text,
                 call_group text, account_codes text[], tags text[], started_at timestamptz,
                 answered_at timestamptz, ended_at timestamptz, duration_ms bigint, talk_ms bigint,
                 outcome text, recorded boolean, recording_url text, legs jsonb, lookup jsonb,
                 extra jsonb, event_count integer, summary jsonb)
             ON CONFLICT (tenant_id, id, month) DO UPDATE SET
                 activecallkey = excluded.activecallkey, request_id = excluded.request_id,
                 direction = excluded.direction, caller_number = excluded.caller_number,
                 caller_name = excluded.caller_name, contact_id = excluded.contact_id,
                 dnis = excluded.dnis, external_number = excluded.external_number,
                 other_number = excluded.other_number,
                 agent = excluded.agent, call_group = excluded.call_group,
                 account_codes = excluded.account_codes, tags = excluded.tags,
                 started_at = excluded.started_at, answered_at = excluded.answered_at,
                 ended_at = excluded.ended_at, duration_ms = excluded.duration_ms,
                 talk_ms = excluded.talk_ms, outcome = excluded.outcome,
                 recorded = excluded.recorded, recording_url = excluded.recording_url,
                 legs = excluded.legs, lookup = excluded.lookup, extra = excluded.extra,
                 event_count = excluded.event_count, summary = excluded.summary,
                 change_seq = excluded.change_seq",
            &[&tenant.0, &Value::Array(records), &change_seq],
        )
        .await
        .context("writing call records")?;
    Ok(())
}

fn row_json(month: NaiveDate, call: &ChangedCall, region: Region, kept: &Kept) -> Value {
    let s = &call.summary;
    let normalized = |n: &Option<String>| {
        n.as_deref()
            .and_then(|n| PhoneNumber::parse(n, region).ok())
            .map(|n| n.as_str().to_owned())
    };
    json!({
        "month": month,
        "id": call.id,
        "report_call_id": call.report_call_id,
        "activecallkey": s.activecallkey,
        "request_id": s.request_id,
        "direction": s.direction.map(|d| d.as_str()),
        // The other party (DESIGN §7, docs/profiles.md): on an outbound or internal call
        // that is the number called, not the agent's own caller id.
        "caller_number": normalized(&s.other_party().map(str::to_owned)),
        "caller_name": s.caller_name,
        "contact_id": call.contact_id,
        "dnis": s.dnis,
        "external_number": s.external_number,
        "other_number": s.other_party().and_then(|n| PhoneNumber::parse(n, region).ok()).map(|n| n.as_str().to_owned()),
        "agent": s.agent,
        "call_group": s.group,
        "account_codes": s.account_codes,
        "tags": s.tags,
        "started_at": s.started_at,
        "answered_at": s.answered_at,
        "ended_at": s.ended_at,
        "duration_ms": s.duration_ms(),
        "talk_ms": s.talk_ms(),
        "outcome": s.outcome.as_str(),
        "recorded": s.recorded,
        "recording_url": s.recording_url,
        "legs": s.legs,
        "lookup": s.lookup,
        "extra": s.extra,
        "event_count": kept.events,
        "summary": kept.summary,
    })
}
