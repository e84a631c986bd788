//! Spam lists: a tenant's reported and added numbers, and the notifications that keep
//! every instance's in-memory flagged set current.

use anyhow::Context;
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use crate::domain::{NumberKey, ScreeningSettings, SpamEntry, TenantId};

/// Payload: `<tenant id>` (reload every list: an import or a threshold changed many
/// numbers at once) or `<tenant id> <number> …` (ask the database about these numbers).
pub use super::notify::SPAM_CHANNEL as CHANNEL;

/// PostgreSQL caps a payload at 8000 bytes; stay well below.
const MAX_PAYLOAD: usize = 7_000;
/// Rows per statement of an import.
const IMPORT_CHUNK: usize = 10_000;

/// Whether a row is flagged, with the tenant's threshold from its settings (`t`).
fn flagged_sql() -> String {
    format!(
        "(s.added OR s.reports >= coalesce((t.settings->'{}'->>'threshold')::int, {}))",
        ScreeningSettings::KEY,
        ScreeningSettings::DEFAULT_THRESHOLD
    )
}

/// Tells every instance which of the tenant's numbers changed; none means "reload".
pub async fn changed(
    client: &impl GenericClient,
    tenant: TenantId,
    numbers: &[&str],
) -> anyhow::Result<()> {
    let mut payload = tenant.to_string();
    for number in numbers {
        if payload.len() + 1 + number.len() > MAX_PAYLOAD {
            payload = tenant.to_string();
            break;
        }
        payload.push(' ');
        payload.push_str(number);
    }
    client
        .execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &payload])
        .await
        .context("notifying a spam list change")?;
    Ok(())
}

/// Reads a payload back; `None` for anything that is not one of ours (any database
/// user may `NOTIFY`): a positive tenant id and numbers in their stored form.
pub fn parse_payload(payload: &str) -> Option<(TenantId, Vec<String>)> {
    if payload.len() > MAX_PAYLOAD {
        return None;
    }
    let mut parts = payload.split(' ');
    let tenant = super::notify::payload_tenant(parts.next()?)?;
    let numbers = parts
        .map(|n| NumberKey::encode(n).map(|_| n.to_owned()))
        .collect::<Option<Vec<_>>>()?;
    Some((tenant, numbers))
}

/// Every flagged number of every tenant (crosses tenants on purpose: it fills the
/// in-memory sets), streamed.
pub async fn for_each_flagged(
    client: &impl tokio_postgres::GenericClient,
    mut each: impl FnMut(TenantId, &str),
) -> anyhow::Result<u64> {
    use futures_util::TryStreamExt;
    let params: [&str; 0] = [];
    let sql = format!(
        "SELECT s.tenant_id, s.number FROM spam_numbers s JOIN tenants t ON t.id = s.tenant_id
         WHERE {}",
        flagged_sql()
    );
    let rows = client
        .query_raw(&sql, params)
        .await
        .context("reading spam lists")?;
    futures_util::pin_mut!(rows);
    let mut count = 0;
    while let Some(row) = rows.try_next().await.context("reading spam lists")? {
        each(TenantId(row.get(0)), row.get(1));
        count += 1;
    }
    Ok(count)
}

/// Which of `numbers` are flagged now.
pub async fn flagged_among(
    client: &impl tokio_postgres::GenericClient,
    tenant: TenantId,
    numbers: &[String],
) -> anyhow::Result<Vec<String>> {
    let sql = format!(
        "SELECT s.number FROM spam_numbers s JOIN tenants t ON t.id = s.tenant_id
         WHERE s.tenant_id = $1 AND s.number = ANY($2) AND {}",
        flagged_sql()
    );
    let rows = client
        .query(&sql, &[&tenant.0, &numbers])
        .await
        .context("checking spam list numbers")?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Flags a number at once (the tenant's own decision); answers whether it was new to
/// the list.
pub async fn add(
    client: &impl GenericClient,
    tenant: TenantId,
    number: &str,
    label: Option<&str>,
) -> anyhow::Result<bool> {
    let row = client
        .query_one(
            "INSERT INTO spam_numbers AS s (tenant_id, number, added, label)
             VALUES ($1, $2, true, $3)
             ON CONFLICT (tenant_id, number) DO UPDATE
                 SET added = true, label = coalesce(EXCLUDED.label, s.label), updated_at = now()
             RETURNING (xmax = 0) AS inserted",
            &[&tenant.0, &number, &label],
        )
        .await
        .context("adding to the spam list")?;
    changed(client, tenant, &[number]).await?;
    Ok(row.get(0))
}

/// Takes a number off the list (its reports too); answers whether it was listed.
pub async fn remove(
    client: &impl GenericClient,
    tenant: TenantId,
    number: &str,
) -> anyhow::Result<bool> {
    let removed = client
        .execute(
            "DELETE FROM spam_numbers WHERE tenant_id = $1 AND number = $2",
            &[&tenant.0, &number],
        )
        .await
        .context("removing from the spam list")?;
    if removed > 0 {
        changed(client, tenant, &[number]).await?;
    }
    Ok(removed > 0)
}

/// One listed number.
pub async fn get(
    client: &impl GenericClient,
    tenant: TenantId,
    number: &str,
) -> anyhow::Result<Option<SpamEntry>> {
    let sql = format!("{} AND s.number = $2", select_entries());
    let row = client
        .query_opt(&sql, &[&tenant.0, &number])
        .await
        .context("reading the spam list")?;
    Ok(row.as_ref().map(entry))
}

/// The tenant's list, by number.
pub async fn list(client: &impl GenericClient, tenant: TenantId) -> anyhow::Result<Vec<SpamEntry>> {
    let sql = format!("{} ORDER BY s.number", select_entries());
    let rows = client
        .query(&sql, &[&tenant.0])
        .await
        .context("reading the spam list")?;
    Ok(rows.iter().map(entry).collect())
}

fn select_entries() -> String {
    format!(
        "SELECT s.number, s.reports, s.added, s.label, s.updated_at, {} AS flagged
         FROM spam_numbers s JOIN tenants t ON t.id = s.tenant_id WHERE s.tenant_id = $1",
        flagged_sql()
    )
}

fn entry(r: &Row) -> SpamEntry {
    SpamEntry {
        number: r.get("number"),
        reports: r.get("reports"),
        added: r.get("added"),
        label: r.get("label"),
        flagged: r.get("flagged"),
        updated_at: r.get("updated_at"),
    }
}

/// One number of an import: its reports in the file and a label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reported {
    pub number: String,
    pub reports: i32,
    pub label: Option<String>,
}

/// Adds an import's reports to the tenant's list (each number once in `numbers`);
/// with `replace`, the file's counts replace the reports imported before (numbers no
/// longer reported leave the list unless the tenant added them). Run it in a
/// transaction: it notifies a reload of the lists.
pub async fn import(
    client: &impl GenericClient,
    tenant: TenantId,
    numbers: &[Reported],
    replace: bool,
) -> anyhow::Result<()> {
    if replace {
        client
            .execute(
                "UPDATE spam_numbers SET reports = 0 WHERE tenant_id = $1 AND reports > 0",
                &[&tenant.0],
            )
            .await
            .context("clearing imported reports")?;
    }
    for chunk in numbers.chunks(IMPORT_CHUNK) {
        let (mut list, mut reports, mut labels) = (Vec::new(), Vec::new(), Vec::new());
        for r in chunk {
            list.push(r.number.as_str());
            reports.push(r.reports);
            labels.push(r.label.as_deref());
        }
        client
            .execute(
                "INSERT INTO spam_numbers AS s (tenant_id, number, reports, label)
                 SELECT $1, n, r, l FROM unnest($2::text[], $3::int[], $4::text[]) AS u (n, r, l)
                 ON CONFLICT (tenant_id, number) DO UPDATE
                     SET reports = least(s.reports::bigint + EXCLUDED.reports, 2147483647)::int,
                         label = coalesce(EXCLUDED.label, s.label), updated_at = now()",
                &[&tenant.0, &list, &reports, &labels],
            )
            .await
            .context("importing the spam list")?;
    }
    if replace {
        client
            .execute(
                "DELETE FROM spam_numbers WHERE tenant_id = $1 AND reports = 0 AND NOT added",
                &[&tenant.0],
            )
            .await
            .context("dropping numbers no longer reported")?;
    }
    changed(client, tenant, &[]).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_name_a_tenant_and_stored_numbers_only() {
        assert_eq!(parse_payload("7"), Some((TenantId(7), Vec::new())));
        assert_eq!(
            parse_payload("7 +15550001111"),
            Some((TenantId(7), vec!["+15550001111".to_owned()]))
        );
        for junk in ["", "x", "0", "-1 +1555", "7 <b>", "7  +1555", "7 +1555 "] {
            assert_eq!(parse_payload(junk), None, "{junk:?}");
        }
    }
}
