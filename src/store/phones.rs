//! Desk phones' directory search and downloadable phone books (issue 35). Names are
//! searched through the trigram index, numbers through the lookup's number index, and
//! pages are read in name order from `contacts_tenant_name_idx` (sql/V28).

use anyhow::Context;
use deadpool_postgres::GenericClient;

use crate::domain::{BookContact, DirectoryRow, DirectorySearch, TenantId};

/// One page of a directory search: contacts whose name matches the pattern, or (for a
/// term that may be a number) one of whose numbers does, one row per number, by name.
/// Reads `limit + 1` rows, so the caller knows whether a next page exists.
pub async fn search(
    client: &impl GenericClient,
    tenant: TenantId,
    search: &DirectorySearch,
) -> anyhow::Result<Vec<DirectoryRow>> {
    let offset = i64::from(search.offset);
    let limit = i64::from(search.limit) + 1;
    let rows = if search.by_number() {
        // A UNION, not an OR: each half keeps its own index.
        let sql = "WITH matched AS (
                SELECT crm_id FROM contacts WHERE tenant_id = $1 AND name ILIKE $2
                UNION
                SELECT crm_id FROM contact_phones
                 WHERE tenant_id = $1 AND (number = ANY($3) OR number LIKE ANY($4))
            )
            SELECT c.crm_id, c.name, p.number
              FROM matched m
              JOIN contacts c ON c.tenant_id = $1 AND c.crm_id = m.crm_id
              JOIN contact_phones p ON p.tenant_id = $1 AND p.crm_id = m.crm_id
             ORDER BY c.name, c.crm_id, p.number
            OFFSET $5 LIMIT $6";
        client
            .query(
                sql,
                &[
                    &tenant.0,
                    &search.name_pattern,
                    &search.numbers,
                    &search.number_prefixes,
                    &offset,
                    &limit,
                ],
            )
            .await
    } else {
        let sql = "SELECT c.crm_id, c.name, p.number
              FROM contacts c
              JOIN contact_phones p ON p.tenant_id = c.tenant_id AND p.crm_id = c.crm_id
             WHERE c.tenant_id = $1 AND c.name ILIKE $2
             ORDER BY c.name, c.crm_id, p.number
            OFFSET $3 LIMIT $4";
        client
            .query(sql, &[&tenant.0, &search.name_pattern, &offset, &limit])
            .await
    }
    .context("searching the directory")?;
    Ok(rows
        .into_iter()
        .map(|row| DirectoryRow {
            crm_id: row.get(0),
            name: row.get(1),
            number: row.get(2),
        })
        .collect())
}

/// The first `max` contacts by name that have a number, each with its numbers: a phone
/// book a phone downloads whole.
pub async fn book(
    client: &impl GenericClient,
    tenant: TenantId,
    max: u32,
) -> anyhow::Result<Vec<BookContact>> {
    let sql = "SELECT c.name, n.numbers
          FROM contacts c
          CROSS JOIN LATERAL (
              SELECT array_agg(p.number ORDER BY p.number) AS numbers
                FROM contact_phones p
               WHERE p.tenant_id = c.tenant_id AND p.crm_id = c.crm_id
          ) n
         WHERE c.tenant_id = $1 AND n.numbers IS NOT NULL
         ORDER BY c.name, c.crm_id
         LIMIT $2";
    let rows = client
        .query(sql, &[&tenant.0, &i64::from(max)])
        .await
        .context("reading the phone book")?;
    Ok(rows
        .into_iter()
        .map(|row| BookContact {
            name: row.get(0),
            numbers: row.get(1),
        })
        .collect())
}
