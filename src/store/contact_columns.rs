//! The `contacts` columns of the routing fields, derived from [`RoutingField::ALL`]: each
//! field is a column of its own name. The statements are built once.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use tokio_postgres::Row;
use tokio_postgres::types::{Json, ToSql};

use crate::domain::{ContactInput, FieldKind, FieldValue, RoutingField};

fn sql_type(kind: FieldKind) -> &'static str {
    match kind {
        FieldKind::Text { .. } | FieldKind::Url { .. } => "text",
        FieldKind::Integer { .. } => "int2",
    }
}

fn column_list(
    fields: impl Iterator<Item = RoutingField>,
    each: impl Fn(&str) -> String,
) -> String {
    fields
        .map(|f| each(f.name()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Finds the contact for each of a list of (tenant, number), with the columns a
/// [`crate::domain::LookupHit`] keeps. When several contacts share a number, the most
/// recently changed one wins (by source time, else write time), then the smallest CRM id.
pub static LOOKUP: LazyLock<String> = LazyLock::new(|| {
    let fields = RoutingField::ALL.iter().copied().filter(|f| f.in_lookup());
    format!(
        "SELECT q.i, found.*
         FROM unnest($1::bigint[], $2::text[]) WITH ORDINALITY AS q (tenant_id, number, i)
         CROSS JOIN LATERAL (
             SELECT c.crm_id, c.name, {}
             FROM contact_phones p
             JOIN contacts c ON c.tenant_id = p.tenant_id AND c.crm_id = p.crm_id
             WHERE p.tenant_id = q.tenant_id AND p.number = q.number
             ORDER BY coalesce(c.source_updated_at, c.written_at) DESC, c.crm_id
             LIMIT 1) AS found",
        column_list(fields, |name| format!("c.{name}"))
    )
});

/// Inserts contacts from the arrays of [`Columns::params`].
pub static INSERT: LazyLock<String> = LazyLock::new(|| {
    let fields = RoutingField::ALL;
    let routing_arrays = fields
        .iter()
        .enumerate()
        .map(|(i, f)| format!("${}::{}[]", 4 + i, sql_type(f.kind())))
        .collect::<Vec<_>>()
        .join(", ");
    let next = 4 + fields.len();
    format!(
        "INSERT INTO contacts AS c (tenant_id, crm_id, name, {}, attributes, source_updated_at)
         SELECT $1, * FROM UNNEST($2::text[], $3::text[], {routing_arrays},
            ${next}::json[], ${}::timestamptz[])",
        column_list(fields.iter().copied(), str::to_owned),
        next + 1
    )
});

/// [`INSERT`] replacing existing contacts unless they are newer; returns the ids written.
/// The WHERE repeats the ordering rule in SQL, so a concurrent newer insert of a contact
/// that did not exist when the batch started is not overwritten.
pub static UPSERT: LazyLock<String> = LazyLock::new(|| {
    let routing = column_list(RoutingField::ALL.iter().copied(), |name| {
        format!("{name} = EXCLUDED.{name}")
    });
    format!(
        "{}
         ON CONFLICT (tenant_id, crm_id) DO UPDATE SET
            name = EXCLUDED.name, {routing}, attributes = EXCLUDED.attributes,
            source_updated_at = EXCLUDED.source_updated_at, written_at = now()
         WHERE c.source_updated_at IS NULL OR EXCLUDED.source_updated_at IS NULL
            OR EXCLUDED.source_updated_at >= c.source_updated_at
         RETURNING crm_id",
        *INSERT
    )
});

/// A routing field's value in a row that has its column.
pub fn routing_value(row: &Row, field: RoutingField) -> Option<FieldValue<'_>> {
    match field.kind() {
        FieldKind::Text { .. } | FieldKind::Url { .. } => row
            .get::<_, Option<&str>>(field.name())
            .map(FieldValue::Text),
        FieldKind::Integer { .. } => row
            .get::<_, Option<i16>>(field.name())
            .map(FieldValue::Integer),
    }
}

/// One routing field's column, one element per row.
enum RoutingColumn<'a> {
    Text(Vec<Option<&'a str>>),
    Integer(Vec<Option<i16>>),
}

impl RoutingColumn<'_> {
    fn as_param(&self) -> &(dyn ToSql + Sync) {
        match self {
            Self::Text(values) => values,
            Self::Integer(values) => values,
        }
    }
}

/// The contact columns as arrays, one element per row, for `UNNEST`.
pub struct Columns<'a> {
    ids: Vec<&'a str>,
    names: Vec<&'a str>,
    routing: Vec<RoutingColumn<'a>>,
    attributes: Vec<Json<&'a Map<String, Value>>>,
    updated_ats: Vec<Option<DateTime<Utc>>>,
}

impl<'a> Columns<'a> {
    pub fn new(rows: &[(&'a str, &'a ContactInput)]) -> Self {
        let routing = RoutingField::ALL
            .iter()
            .map(|&field| {
                let values = rows.iter().map(move |(_, c)| c.routing.get(field));
                match field.kind() {
                    FieldKind::Text { .. } | FieldKind::Url { .. } => RoutingColumn::Text(
                        values.map(|v| v.and_then(FieldValue::as_text)).collect(),
                    ),
                    FieldKind::Integer { .. } => RoutingColumn::Integer(
                        values.map(|v| v.and_then(FieldValue::as_integer)).collect(),
                    ),
                }
            })
            .collect();
        Self {
            ids: rows.iter().map(|(id, _)| *id).collect(),
            names: rows.iter().map(|(_, c)| c.name.as_str()).collect(),
            routing,
            attributes: rows.iter().map(|(_, c)| Json(&c.attributes)).collect(),
            updated_ats: rows.iter().map(|(_, c)| c.updated_at).collect(),
        }
    }

    /// The parameters of [`INSERT`] and [`UPSERT`], in their order.
    pub fn params<'p>(&'p self, tenant: &'p i64) -> Vec<&'p (dyn ToSql + Sync)> {
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![tenant, &self.ids, &self.names];
        params.extend(self.routing.iter().map(RoutingColumn::as_param));
        params.push(&self.attributes);
        params.push(&self.updated_ats);
        params
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_routing_field_is_a_column_of_its_own_type() {
        for &field in RoutingField::ALL {
            let name = field.name();
            let typed = format!("::{}[]", sql_type(field.kind()));
            assert!(INSERT.contains(&format!(", {name},")), "{name}");
            assert!(
                UPSERT.contains(&format!("{name} = EXCLUDED.{name}")),
                "{name}"
            );
            assert_eq!(
                LOOKUP.contains(&format!("c.{name}")),
                field.in_lookup(),
                "{name}"
            );
            let position = 4 + RoutingField::ALL.iter().position(|f| *f == field).unwrap();
            assert!(INSERT.contains(&format!("${position}{typed}")), "{name}");
        }
        let region = crate::domain::Region::parse("RO").unwrap();
        let body = serde_json::json!({"name": "A", "phones": []});
        let input = ContactInput::from_json(body.as_object().unwrap(), region, &[]).unwrap();
        let rows = [("1", &input)];
        let columns = Columns::new(&rows);
        let placeholders = INSERT.matches("::").count();
        assert_eq!(columns.params(&1).len(), placeholders + 1, "$1 has no cast");
    }
}
