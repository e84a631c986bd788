//! The PBX lookup: from a caller number to the nine-key answer. No actix and no SQL
//! here: this is the seam where the cache and the deadline go.

use deadpool_postgres::Pool;
use serde::Serialize;

use crate::domain::{CrmId, PhoneNumber, PhoneNumberError};
use crate::store::{self, contacts::LookupHit, tenants::Tenant};

/// The answer a PBX routes on: exactly these nine keys, in this order (the reference's).
/// An unknown caller gets all of them as `null`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LookupAnswer {
    pub id: Option<CrmId>,
    pub name: Option<String>,
    pub queue_position: Option<i16>,
    pub direct_line: Option<String>,
    pub backend_link: Option<String>,
    pub route_identifier: Option<String>,
    pub outbound_number: Option<String>,
    pub language: Option<String>,
    pub external_id: Option<String>,
}

impl LookupAnswer {
    pub fn unknown() -> Self {
        Self::default()
    }

    fn found(hit: LookupHit) -> Self {
        Self {
            id: Some(hit.id),
            name: Some(hit.name),
            queue_position: hit.queue_position,
            direct_line: hit.direct_line,
            // Until cidgate renders its own screen pop, the CRM record is the popup.
            backend_link: hit.crm_url,
            route_identifier: hit.route_identifier,
            outbound_number: hit.outbound_number,
            language: hit.language,
            external_id: hit.external_id,
        }
    }
}

/// A caller as the PBX described it, already normalized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Number(PhoneNumber),
    /// Withheld, empty or not a number: nobody to look up.
    Unidentified,
}

impl Caller {
    /// Reads the `telephone` parameter. Only an absurdly long value is an error; anything
    /// else that is not a number is an unidentified caller, so the PBX can still route.
    pub fn from_param(raw: Option<&str>, tenant: &Tenant) -> Result<Self, PhoneNumberError> {
        match PhoneNumber::parse(raw.unwrap_or_default(), tenant.region) {
            Ok(number) => Ok(Self::Number(number)),
            Err(PhoneNumberError::TooLong) => Err(PhoneNumberError::TooLong),
            Err(_) => Ok(Self::Unidentified),
        }
    }
}

#[derive(Clone)]
pub struct LookupService {
    pool: Pool,
}

impl LookupService {
    pub fn new(pool: Pool) -> Self {
        Self { pool }
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant.slug))]
    pub async fn lookup(&self, tenant: &Tenant, caller: &Caller) -> anyhow::Result<LookupAnswer> {
        let Caller::Number(number) = caller else {
            return Ok(LookupAnswer::unknown());
        };
        let client = self.pool.get().await?;
        let hit = store::contacts::find_by_number(&client, tenant.id, number).await?;
        tracing::debug!(caller = %number.masked(), found = hit.is_some(), "lookup");
        Ok(hit.map_or_else(LookupAnswer::unknown, LookupAnswer::found))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_unknown_answer_has_nine_null_keys_in_reference_order() {
        let json = serde_json::to_string(&LookupAnswer::unknown()).unwrap();
        assert_eq!(
            json,
            r#"{"id":null,"name":null,"queue_position":null,"direct_line":null,"backend_link":null,"route_identifier":null,"outbound_number":null,"language":null,"external_id":null}"#
        );
    }
}
