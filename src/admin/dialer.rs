//! A tenant's dialer (how its PBX is asked to place click-to-calls) and dial policy.
//! Secrets are stored, never answered back.

use std::collections::BTreeMap;

use super::{Db, Error};
use crate::domain::StoredDialer;
use crate::domain::{DialPolicy, NumberFormat, Tenant};
use crate::store;

/// Sets (or replaces) the tenant's dialer; answers what the operator should know of it
/// (warnings, never refusals).
pub async fn set(db: &Db, tenant: &Tenant, dialer: &StoredDialer) -> Result<Vec<String>, Error> {
    let policy = db
        .run(async |client| {
            store::click2call::set_dialer(&*client, tenant.id, dialer).await?;
            store::click2call::policy(&*client, tenant.id).await
        })
        .await?;
    let mut warnings = Vec::new();
    warnings.extend(format_warning(&dialer.kind, policy.number_format));
    let pbx_dialer = matches!(dialer.kind.as_str(), "asterisk-ami" | "freeswitch-esl");
    if pbx_dialer
        && dialer
            .settings
            .get("outbound_caller_id")
            .is_none_or(serde_json::Value::is_null)
    {
        warnings.push(
            "no --outbound-caller-id: the customer may not see the tenant's \
             number (see docs/click-to-call.md, Caller IDs)"
                .into(),
        );
    }
    Ok(warnings)
}

/// A PBX dialer whose policy writes numbers with a `+`: a plain dialplan has no
/// extension for them (`_X.`, `^\d+$`), so every click would fail at the PBX.
fn format_warning(kind: &str, format: Option<NumberFormat>) -> Option<String> {
    let pbx = NumberFormat::default_for(kind) == NumberFormat::National;
    (pbx && format == Some(NumberFormat::E164)).then(|| {
        format!(
            "the dial policy writes numbers as e164 (+40721234567), which a plain {kind} \
             dialplan does not route; unless yours matches a leading +, run \
             `cidgate dialer policy --tenant T --number-format national`"
        )
    })
}

/// The tenant's dialer (when it has one) and dial policy.
pub async fn show(db: &Db, tenant: &Tenant) -> Result<(Option<StoredDialer>, DialPolicy), Error> {
    Ok(db
        .run(async |client| {
            let dialer = store::click2call::dialer(&*client, tenant.id).await?;
            let policy = store::click2call::policy(&*client, tenant.id).await?;
            Ok((dialer, policy))
        })
        .await?)
}

/// Removes the dialer: click-to-call answers 409 until one is set.
pub async fn remove(db: &Db, tenant: &Tenant) -> Result<(), Error> {
    let removed = db
        .run(async |client| store::click2call::remove_dialer(&*client, tenant.id).await)
        .await?;
    if removed {
        Ok(())
    } else {
        Err(Error::NotFound(format!("`{}` has no dialer", tenant.slug)))
    }
}

/// What to change of the dial policy; `None` and empty lists keep what is set.
#[derive(Debug, Default)]
pub struct PolicyChanges {
    /// Empty the prefix lists, queues and countries before the rest applies.
    pub clear_lists: bool,
    pub session_hours: Option<u64>,
    pub per_minute: Option<u32>,
    pub tenant_per_minute: Option<u32>,
    pub tenant_in_flight: Option<u32>,
    pub international: Option<bool>,
    /// ISO codes; `Some(empty)` empties the list.
    pub allowed_countries: Option<Vec<String>>,
    pub premium_rate: Option<bool>,
    pub costly_numbers: Option<bool>,
    pub short_numbers: Option<bool>,
    pub allowed_prefixes: Vec<String>,
    pub refused_prefixes: Vec<String>,
    pub queue_prefixes: Option<BTreeMap<String, String>>,
    pub number_format: Option<NumberFormat>,
}

impl PolicyChanges {
    fn apply(self, policy: &mut DialPolicy) {
        if self.clear_lists {
            policy.allowed_prefixes.clear();
            policy.refused_prefixes.clear();
            policy.queue_prefixes.clear();
            policy.allowed_countries.clear();
        }
        if let Some(hours) = self.session_hours {
            policy.session_hours = u8::try_from(hours).unwrap_or(u8::MAX);
        }
        let counts = [
            (self.per_minute, &mut policy.per_minute),
            (self.tenant_per_minute, &mut policy.tenant_per_minute),
            (self.tenant_in_flight, &mut policy.tenant_in_flight),
        ];
        for (given, slot) in counts {
            if let Some(n) = given {
                *slot = n;
            }
        }
        let switches = [
            (self.international, &mut policy.international),
            (self.premium_rate, &mut policy.premium_rate),
            (self.costly_numbers, &mut policy.costly_numbers),
            (self.short_numbers, &mut policy.short_numbers),
        ];
        for (given, slot) in switches {
            if let Some(on) = given {
                *slot = on;
            }
        }
        if let Some(countries) = self.allowed_countries {
            policy.allowed_countries = countries;
        }
        if !self.allowed_prefixes.is_empty() {
            policy.allowed_prefixes = self.allowed_prefixes;
        }
        if !self.refused_prefixes.is_empty() {
            policy.refused_prefixes = self.refused_prefixes;
        }
        if let Some(queues) = self.queue_prefixes {
            policy.queue_prefixes = queues;
        }
        if let Some(format) = self.number_format {
            policy.number_format = Some(format);
        }
    }
}

/// Changes the dial policy; answers it as it now is.
pub async fn set_policy(
    db: &Db,
    tenant: &Tenant,
    changes: PolicyChanges,
) -> Result<DialPolicy, Error> {
    db.run(async |client| {
        let mut policy = store::click2call::policy(&*client, tenant.id).await?;
        changes.apply(&mut policy);
        if let Err(refused) = policy.validate() {
            return Ok(Err(Error::Message(refused)));
        }
        store::click2call::set_policy(&*client, tenant.id, &policy).await?;
        Ok(Ok(policy))
    })
    .await?
}
