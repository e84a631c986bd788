//! Desk phones' directory search and downloadable phone books (issue 35). Names are
//! searched through the trigram index, numbers through the lookup's number index, and
//! pages are read in name order from `contacts_tenant_name_idx` (sql/V28).

use anyhow::Context;
use deadpool_postgres::GenericClient;

use crate::domain::{BookContact, DirectoryRow, DirectorySearch, TenantId};

/// Past this many contacts matching a name, a search walks the tenant's names in order
/// (the matches are then dense enough to fill a page soon); up to it, the matches are
/// found through the trigram index and sorted. Either plan alone is slow for the other
/// kind of term, and the planner cannot tell them apart (a first name's matches are
/// rare overall yet all together in name order, far from its start).
const SORTED_MATCHES: i64 = 20_000;

/// One page of a directory search: contacts whose name matches the pattern, or (for a
/// term that may be a number) one of whose numbers does, one row per number, by name.
/// Reads `limit + 1` rows, so the caller knows whether a next page exists. Runs in a
/// transaction of its own (`client` must be one): a name search sets planner options
/// for its statement.
pub async fn search(
    client: &impl GenericClient,
    tenant: TenantId,
    search: &DirectorySearch,
) -> anyhow::Result<Vec<DirectoryRow>> {
    let offset = i64::from(search.offset);
    let limit = i64::from(search.limit) + 1;
    let rows = if search.by_number() {
        // A UNION, not an OR: each half keeps its own index; number prefixes are ranges
        // of the number index (`LIKE ANY` would read every number).
        let sql = "WITH matched AS (
                SELECT crm_id FROM contacts WHERE tenant_id = $1 AND name ILIKE $2
                UNION
                SELECT crm_id FROM contact_phones WHERE tenant_id = $1 AND number = ANY($3)
                UNION
                SELECT p.crm_id FROM unnest($4::text[]) AS r(lo)
                  JOIN contact_phones p ON p.tenant_id = $1
                   AND p.number >= r.lo COLLATE \"C\" AND p.number < (r.lo || ':') COLLATE \"C\"
            )
            SELECT c.crm_id, c.name, p.number
              FROM matched m
              JOIN contacts c ON c.tenant_id = $1 AND c.crm_id = m.crm_id
              JOIN contact_phones p ON p.tenant_id = $1 AND p.crm_id = m.crm_id
             ORDER BY c.name, c.crm_id, p.number
            OFFSET $5 LIMIT $6";
        // The few matches, then each one's rows by key: the planner, which cannot
        // know how few, would hash-join whole tables.
        plan(
            client,
            &["enable_seqscan", "enable_hashjoin", "enable_mergejoin"],
            false,
        )
        .await?;
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 6] = [
            &tenant.0,
            &search.name_pattern,
            &search.numbers,
            &search.number_prefixes,
            &offset,
            &limit,
        ];
        client.query(sql, &params).await
    } else if search.lists_everyone() {
        // Everyone: the page in name order, straight from the name index.
        let sql = "SELECT c.crm_id, c.name, p.number
              FROM contacts c
              JOIN contact_phones p ON p.tenant_id = c.tenant_id AND p.crm_id = c.crm_id
             WHERE c.tenant_id = $1
             ORDER BY c.name, c.crm_id, p.number
            OFFSET $2 LIMIT $3";
        client.query(sql, &[&tenant.0, &offset, &limit]).await
    } else {
        let pattern = &search.name_pattern;
        // How many match, up to the bound, through the trigram index alone.
        let index_walks = ["enable_indexscan", "enable_indexonlyscan"];
        plan(client, &["enable_seqscan"], false).await?;
        plan(client, &index_walks, false).await?;
        let count = "SELECT count(*) FROM (
                SELECT 1 FROM contacts WHERE tenant_id = $1 AND name ILIKE $2 LIMIT $3
            ) s";
        let bound = SORTED_MATCHES + 1;
        let matches: i64 = client
            .query_one(count, &[&tenant.0, pattern, &bound])
            .await
            .context("counting the directory search's matches")?
            .get(0);
        if matches > SORTED_MATCHES {
            plan(client, &index_walks, true).await?;
        }
        let sql = "SELECT c.crm_id, c.name, p.number
              FROM contacts c
              JOIN contact_phones p ON p.tenant_id = c.tenant_id AND p.crm_id = c.crm_id
             WHERE c.tenant_id = $1 AND c.name ILIKE $2
             ORDER BY c.name, c.crm_id, p.number
            OFFSET $3 LIMIT $4";
        client
            .query(sql, &[&tenant.0, pattern, &offset, &limit])
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

/// Turns planner options on or off for the rest of the transaction.
async fn plan(client: &impl GenericClient, options: &[&str], on: bool) -> anyhow::Result<()> {
    let value = if on { "on" } else { "off" };
    let sql: String = options
        .iter()
        .map(|option| format!("SET LOCAL {option} = {value};"))
        .collect();
    client
        .batch_execute(&sql)
        .await
        .context("choosing the directory search's plan")
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
