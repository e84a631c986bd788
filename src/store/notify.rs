//! Change notifications through PostgreSQL `NOTIFY`, and the `LISTEN` that receives them.
//! Sent inside the writing transaction, so listeners hear of a change exactly when it
//! commits.

use anyhow::Context;
use deadpool_postgres::GenericClient;

use crate::domain::{ChangedNumbers, NumberKey, TenantId};

/// Payload: `<tenant id> <number> … [| <number> …]`. Numbers before the `|` were taken
/// off a contact and may belong to nobody now: a listener asks the database. Numbers
/// after it belong to a contact at the commit: no question needed (a later change comes
/// with a later notification). Older versions read `|` as a number that never matches,
/// and ask about every number.
pub const CONTACTS_CHANNEL: &str = "cidgate_contacts";
/// Tenants, tokens or allowlists changed; payload empty.
pub const CONFIG_CHANNEL: &str = "cidgate_config";
/// A tenant's spam list changed (payload: see `store::spam::parse_payload`).
pub const SPAM_CHANNEL: &str = "cidgate_spam";

/// PostgreSQL caps a payload at 8000 bytes; stay well below.
const MAX_PAYLOAD: usize = 7_000;
const CLAIMED_MARK: &str = "|";

pub async fn contacts_changed(
    client: &impl GenericClient,
    tenant: TenantId,
    numbers: &ChangedNumbers,
) -> anyhow::Result<()> {
    let payloads = contact_payloads(tenant, numbers);
    match payloads.as_slice() {
        [] => {}
        [payload] => {
            client
                .execute("SELECT pg_notify($1, $2)", &[&CONTACTS_CHANNEL, payload])
                .await
                .context("notifying contact changes")?;
        }
        // A large batch changes many numbers: one round trip for all its payloads,
        // queued in order.
        _ => {
            client
                .execute(
                    "SELECT pg_notify($1, p) FROM unnest($2::text[]) WITH ORDINALITY AS u (p, i)
                     ORDER BY i",
                    &[&CONTACTS_CHANNEL, &payloads],
                )
                .await
                .context("notifying contact changes")?;
        }
    }
    Ok(())
}

fn contact_payloads(tenant: TenantId, numbers: &ChangedNumbers) -> Vec<String> {
    let prefix = tenant.to_string();
    let mut payloads = Vec::new();
    for (mark, list) in [
        (None, &numbers.released),
        (Some(CLAIMED_MARK), &numbers.claimed),
    ] {
        let start = |mark: Option<&str>| match mark {
            Some(mark) => format!("{prefix} {mark}"),
            None => prefix.clone(),
        };
        let mut current = start(mark);
        let empty = current.len();
        for number in list {
            if current.len() + 1 + number.len() > MAX_PAYLOAD {
                payloads.push(std::mem::replace(&mut current, start(mark)));
            }
            current.push(' ');
            current.push_str(number);
        }
        if current.len() > empty {
            payloads.push(current);
        }
    }
    payloads
}

/// Reads a contacts payload back; `None` for anything that is not one of ours. Any
/// database user may `NOTIFY` on this channel, so nothing is trusted: a positive tenant
/// id, single spaces, at most one mark, and numbers in the stored form the index keeps
/// (`NumberKey`), or the whole payload is refused.
pub fn parse_contacts_payload(payload: &str) -> Option<(TenantId, ChangedNumbers)> {
    if payload.len() > MAX_PAYLOAD {
        return None;
    }
    let mut parts = payload.split(' ');
    let tenant = payload_tenant(parts.next()?)?;
    let mut numbers = ChangedNumbers::default();
    let mut claimed = false;
    for part in parts {
        if part == CLAIMED_MARK && !claimed {
            claimed = true;
        } else if NumberKey::encode(part).is_none() {
            return None;
        } else if claimed {
            numbers.claimed.push(part.to_owned());
        } else {
            numbers.released.push(part.to_owned());
        }
    }
    Some((tenant, numbers))
}

/// A payload's tenant id: digits only, positive.
pub(crate) fn payload_tenant(raw: &str) -> Option<TenantId> {
    if !raw.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(TenantId(raw.parse().ok().filter(|id| *id > 0)?))
}

/// Configuration notifications carry no payload; one with a payload is not ours.
pub fn is_config_payload(payload: &str) -> bool {
    payload.is_empty()
}

pub async fn config_changed(client: &impl GenericClient) -> anyhow::Result<()> {
    client
        .execute("SELECT pg_notify($1, '')", &[&CONFIG_CHANNEL])
        .await
        .context("notifying a configuration change")?;
    Ok(())
}

/// Subscribes this connection to both channels. A session-level `LISTEN`: run it on a
/// dedicated connection, not a pooled one, and not through a transaction-pooling PgBouncer.
pub async fn listen(client: &tokio_postgres::Client) -> anyhow::Result<()> {
    client
        .batch_execute(&format!(
            "LISTEN {CONTACTS_CHANNEL}; LISTEN {CONFIG_CHANNEL}; LISTEN {}; LISTEN {SPAM_CHANNEL}",
            super::deliveries::CHANNEL
        ))
        .await
        .context("LISTEN")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbers(prefix: &str, count: usize) -> Vec<String> {
        (0..count).map(|i| format!("{prefix}{i:07}")).collect()
    }

    #[test]
    fn large_changes_are_split_into_payloads_postgres_accepts() {
        let changed = ChangedNumbers {
            released: numbers("+4072", 2_000),
            claimed: numbers("+4073", 2_000),
        };
        let payloads = contact_payloads(TenantId(7), &changed);
        assert!(payloads.len() > 2);
        let mut seen = ChangedNumbers::default();
        for payload in &payloads {
            assert!(payload.len() <= MAX_PAYLOAD);
            let (tenant, chunk) = parse_contacts_payload(payload).unwrap();
            assert_eq!(tenant, TenantId(7));
            seen.released.extend(chunk.released);
            seen.claimed.extend(chunk.claimed);
        }
        assert_eq!(seen, changed);
    }

    #[test]
    fn a_payload_without_the_mark_releases_every_number() {
        // What versions before the mark send: every number is asked about.
        let (_, changed) = parse_contacts_payload("3 +401 +402").unwrap();
        assert_eq!(changed.released, ["+401", "+402"]);
        assert!(changed.claimed.is_empty());
    }

    #[test]
    fn no_numbers_means_no_notification_and_junk_is_ignored() {
        assert!(contact_payloads(TenantId(1), &ChangedNumbers::default()).is_empty());
        for junk in [
            "x +40",
            "",
            "-3 +401",
            "+3 +401",
            "0 +401",
            "3 | +401 | +402",
            "3  +401",
            "3 +401 ",
            "3 +40abc",
            "3 <script>",
            "3 +4012345678901234567890",
            "99999999999999999999 +401",
        ] {
            assert_eq!(parse_contacts_payload(junk), None, "{junk:?}");
        }
        assert!(parse_contacts_payload(&format!("3 {}", "+401 ".repeat(2000))).is_none());
        assert!(parse_contacts_payload("3 | 101 +40721234567").is_some());
    }
}
