//! Change notifications through PostgreSQL `NOTIFY`. Sent inside the writing
//! transaction, so listeners hear of a change exactly when it commits.

use anyhow::Context;
use deadpool_postgres::GenericClient;

use crate::domain::TenantId;

/// Payload: `<tenant id> <number> <number> …` (the numbers whose answer may change).
pub const CONTACTS_CHANNEL: &str = "cidgate_contacts";
/// Tenants, tokens or allowlists changed; payload empty.
pub const CONFIG_CHANNEL: &str = "cidgate_config";

/// PostgreSQL caps a payload at 8000 bytes; stay well below.
const MAX_PAYLOAD: usize = 7_000;

pub async fn contacts_changed(
    client: &impl GenericClient,
    tenant: TenantId,
    numbers: &[String],
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

fn contact_payloads(tenant: TenantId, numbers: &[String]) -> Vec<String> {
    let mut payloads = Vec::new();
    let mut current = tenant.to_string();
    for number in numbers {
        if current.len() + 1 + number.len() > MAX_PAYLOAD {
            payloads.push(std::mem::replace(&mut current, tenant.to_string()));
        }
        current.push(' ');
        current.push_str(number);
    }
    if current.len() > tenant.to_string().len() {
        payloads.push(current);
    }
    payloads
}

/// Reads a contacts payload back; `None` for anything malformed.
pub fn parse_contacts_payload(payload: &str) -> Option<(TenantId, Vec<String>)> {
    let mut parts = payload.split(' ');
    let tenant = TenantId(parts.next()?.parse().ok()?);
    Some((
        tenant,
        parts.filter(|p| !p.is_empty()).map(str::to_owned).collect(),
    ))
}

pub async fn config_changed(client: &impl GenericClient) -> anyhow::Result<()> {
    client
        .execute("SELECT pg_notify($1, '')", &[&CONFIG_CHANNEL])
        .await
        .context("notifying a configuration change")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_changes_are_split_into_payloads_postgres_accepts() {
        let numbers: Vec<String> = (0..2_000).map(|i| format!("+4072{i:07}")).collect();
        let payloads = contact_payloads(TenantId(7), &numbers);
        assert!(payloads.len() > 1);
        let mut seen = Vec::new();
        for payload in &payloads {
            assert!(payload.len() <= MAX_PAYLOAD);
            let (tenant, mut chunk) = parse_contacts_payload(payload).unwrap();
            assert_eq!(tenant, TenantId(7));
            seen.append(&mut chunk);
        }
        assert_eq!(seen, numbers);
    }

    #[test]
    fn no_numbers_means_no_notification_and_junk_is_ignored() {
        assert!(contact_payloads(TenantId(1), &[]).is_empty());
        assert_eq!(parse_contacts_payload("x +40"), None);
        assert_eq!(parse_contacts_payload(""), None);
    }
}
