//! Tenants with their settings: create, list, change.

use std::time::Duration;

use anyhow::Context;

use super::{Db, Error};
use crate::domain::{
    AuthPolicy, EVENT_RATE_SETTING, LookupLogSettings, PopupSettings, Region, ScreeningSettings,
    TIME_ZONE_SETTING, Tenant, TenantSlug,
};
use crate::store;

/// The longest a screen-pop link may stay valid: a link is a capability to contact data
/// that cannot be revoked one by one.
const MAX_POPUP_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// A tenant to create.
pub struct NewTenant {
    pub slug: TenantSlug,
    /// Display name; the slug when `None`.
    pub name: Option<String>,
    pub region: Region,
    pub time_zone: chrono_tz::Tz,
}

/// Creates a tenant with its time zone, in one transaction.
pub async fn create(db: &Db, new: NewTenant) -> Result<Tenant, Error> {
    let name = new.name.unwrap_or_else(|| new.slug.to_string());
    let zone = serde_json::Value::String(new.time_zone.name().to_owned());
    let tenant = db
        .run(async |client| {
            let tx = client.transaction().await?;
            let tenant = store::tenants::create(&tx, &new.slug, &name, new.region).await?;
            store::tenants::set_setting(&tx, tenant.id, TIME_ZONE_SETTING, &zone).await?;
            tx.commit().await?;
            Ok(tenant)
        })
        .await
        .map_err(|e| match e.downcast::<crate::domain::CreateTenantError>() {
            Ok(taken @ crate::domain::CreateTenantError::Exists(_)) => {
                Error::Taken(taken.to_string())
            }
            Ok(other) => Error::Failed(other.into()),
            Err(e) => Error::Failed(e),
        })?;
    Ok(tenant)
}

/// A tenant and how many contacts it holds.
pub struct Listed {
    pub tenant: Tenant,
    pub contacts: i64,
}

pub async fn list(db: &Db) -> Result<Vec<Listed>, Error> {
    let listed = db
        .run(async |client| {
            let mut listed = Vec::new();
            for tenant in store::tenants::list(&*client).await? {
                let contacts = store::tenants::contact_count(&*client, tenant.id).await?;
                listed.push(Listed { tenant, contacts });
            }
            Ok(listed)
        })
        .await?;
    Ok(listed)
}

/// A tenant's own value of a setting, or the gateway's (`Default`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Own<T> {
    Value(T),
    Default,
}

/// What to change of a tenant; `None` keeps a setting as it is.
#[derive(Default)]
pub struct Changes {
    pub auth: Option<AuthPolicy>,
    /// Lookups per second (`None` inside: the gateway's).
    pub lookup_rate: Option<Option<u32>>,
    pub max_numbers: Option<i64>,
    pub max_agents: Option<i32>,
    pub event_rate: Option<Own<u32>>,
    pub max_calls: Option<i64>,
    pub time_zone: Option<chrono_tz::Tz>,
    /// Most contacts in the phone books desk phones download.
    pub phonebook_max: Option<u32>,
    pub lookup_log: Option<bool>,
    pub lookup_log_retention_days: Option<Own<u32>>,
    pub popup: PopupChanges,
    pub screening: ScreeningChanges,
}

/// Screening settings to change (issue 36); only the ones given change.
#[derive(Default)]
pub struct ScreeningChanges {
    /// Reports that flag an imported number.
    pub threshold: Option<u32>,
    pub screen_failed_verstat: Option<bool>,
    /// `route_identifier` of a screened answer; empty turns screening off.
    pub route: Option<String>,
    /// `name` of a screened answer; empty for none.
    pub name: Option<String>,
}

impl ScreeningChanges {
    pub fn is_empty(&self) -> bool {
        self.threshold.is_none()
            && self.screen_failed_verstat.is_none()
            && self.route.is_none()
            && self.name.is_none()
    }

    /// The tenant's screening settings with the changes applied, checking each.
    fn apply(self, settings: &serde_json::Value) -> Result<ScreeningSettings, Error> {
        let mut screening = ScreeningSettings::from_tenant_settings(settings);
        let text = |field: &'static str, raw: String| -> Result<Option<String>, Error> {
            let raw = raw.trim().to_owned();
            if raw.chars().count() > 64 || raw.chars().any(char::is_control) {
                return Err(Error::invalid(
                    field,
                    "at most 64 characters, no control characters",
                ));
            }
            Ok(Some(raw).filter(|r| !r.is_empty()))
        };
        if let Some(threshold) = self.threshold {
            screening.threshold = threshold;
        }
        if let Some(on) = self.screen_failed_verstat {
            screening.screen_failed_verstat = on;
        }
        if let Some(route) = self.route {
            screening.route = text("spam_route", route)?;
        }
        if let Some(name) = self.name {
            screening.name = text("spam_name", name)?;
        }
        Ok(screening)
    }
}

/// Screen-pop settings to change.
#[derive(Default)]
pub struct PopupChanges {
    pub ttl: Option<Duration>,
    /// An empty template clears it.
    pub crm_url_template: Option<String>,
    pub create_url_template: Option<String>,
    pub redirect_to_crm: Option<bool>,
    pub for_unknown: Option<bool>,
    /// Checked origins (`config::parse_origin`); empty: no framing.
    pub frame_ancestors: Option<Vec<String>>,
}

impl PopupChanges {
    pub fn is_empty(&self) -> bool {
        self.ttl.is_none()
            && self.crm_url_template.is_none()
            && self.create_url_template.is_none()
            && self.redirect_to_crm.is_none()
            && self.for_unknown.is_none()
            && self.frame_ancestors.is_none()
    }

    /// Applies the changes to `settings`, checking each.
    fn apply(self, settings: &mut PopupSettings) -> Result<(), Error> {
        if let Some(ttl) = self.ttl {
            if ttl.as_secs() < 60 {
                return Err(Error::invalid("popup_ttl", "at least one minute"));
            }
            if ttl > MAX_POPUP_TTL {
                return Err(Error::invalid("popup_ttl", "at most 7 days (168h)"));
            }
            settings.ttl_secs = ttl.as_secs();
        }
        if let Some(t) = self.crm_url_template {
            settings.crm_url_template = url_template("crm_url_template", t)?;
        }
        if let Some(t) = self.create_url_template {
            settings.create_url_template = url_template("create_url_template", t)?;
        }
        if let Some(redirect) = self.redirect_to_crm {
            settings.redirect_to_crm = redirect;
        }
        if let Some(for_unknown) = self.for_unknown {
            settings.for_unknown = for_unknown;
        }
        if let Some(origins) = self.frame_ancestors {
            settings.frame_ancestors = origins;
        }
        Ok(())
    }
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.auth.is_none()
            && self.lookup_rate.is_none()
            && self.max_numbers.is_none()
            && self.max_agents.is_none()
            && self.event_rate.is_none()
            && self.max_calls.is_none()
            && self.time_zone.is_none()
            && self.phonebook_max.is_none()
            && self.lookup_log.is_none()
            && self.lookup_log_retention_days.is_none()
            && self.popup.is_empty()
            && self.screening.is_empty()
    }
}

/// An http(s) URL template (empty clears it).
fn url_template(field: &'static str, template: String) -> Result<Option<String>, Error> {
    if template.is_empty() {
        return Ok(None);
    }
    let sample = crate::popup::fill_template(&template, Some("1"), "+40700000000", "0700000000");
    crate::config::parse_base_url(sample.split('?').next().unwrap_or_default())
        .map_err(|e| Error::invalid(field, e))?;
    Ok(Some(template))
}

/// Changes `tenant`'s settings in one transaction: all of them, or none.
pub async fn update(db: &Db, tenant: &Tenant, changes: Changes) -> Result<(), Error> {
    let mut popup = None;
    if !changes.popup.is_empty() {
        let mut settings = tenant.popup.clone();
        changes.popup.apply(&mut settings)?;
        popup = Some(settings);
    }
    let rethreshold = changes.screening.threshold.is_some();
    let mut screening = None;
    if !changes.screening.is_empty() {
        screening = Some(changes.screening.apply(&tenant.settings)?);
    }
    let id = tenant.id;
    db.run(async |client| {
        let tx = client.transaction().await?;
        if let Some(policy) = changes.auth {
            store::tenants::set_auth_policy(&tx, id, policy)
                .await
                .with_context(|| {
                    format!(
                        "cannot switch `{}` to --auth {}",
                        tenant.slug,
                        policy.as_str()
                    )
                })?;
        }
        if let Some(rate) = changes.lookup_rate {
            store::tenants::set_lookup_rate(&tx, id, rate).await?;
        }
        if let Some(max) = changes.max_numbers {
            store::tenants::set_max_numbers(&tx, id, max).await?;
        }
        if let Some(max) = changes.max_agents {
            store::tenants::set_max_agents(&tx, id, max).await?;
        }
        set_own(&tx, id, EVENT_RATE_SETTING, changes.event_rate).await?;
        if let Some(max) = changes.max_calls {
            store::tenants::set_max_calls(&tx, id, max).await?;
        }
        if let Some(zone) = changes.time_zone {
            let zone = serde_json::Value::String(zone.name().to_owned());
            store::tenants::set_setting(&tx, id, TIME_ZONE_SETTING, &zone).await?;
        }
        if let Some(max) = changes.phonebook_max {
            let key = crate::phones::PHONEBOOK_MAX;
            store::tenants::set_setting(&tx, id, key, &max.into()).await?;
        }
        if let Some(on) = changes.lookup_log {
            let key = LookupLogSettings::ENABLED_KEY;
            store::tenants::set_setting(&tx, id, key, &on.into()).await?;
        }
        let key = LookupLogSettings::RETENTION_KEY;
        set_own(&tx, id, key, changes.lookup_log_retention_days).await?;
        if let Some(settings) = &popup {
            store::tenants::set_popup_settings(&tx, id, settings).await?;
        }
        if let Some(screening) = &screening {
            let value = serde_json::to_value(screening)?;
            store::tenants::set_setting(&tx, id, ScreeningSettings::KEY, &value).await?;
            if rethreshold {
                // A new threshold changes which numbers are flagged: every instance
                // reloads the tenant's list.
                store::spam::changed(&tx, id, &[]).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    })
    .await?;
    Ok(())
}

/// Sets a tenant's own value of `key`, or removes it for the gateway's.
async fn set_own(
    client: &impl deadpool_postgres::GenericClient,
    tenant: crate::domain::TenantId,
    key: &str,
    value: Option<Own<u32>>,
) -> anyhow::Result<()> {
    match value {
        Some(Own::Value(v)) => store::tenants::set_setting(client, tenant, key, &v.into()).await,
        Some(Own::Default) => store::tenants::remove_setting(client, tenant, key).await,
        None => Ok(()),
    }
}

/// Replaces the tenant's call-end mapping (which IVR variable holds which call field).
pub async fn set_call_end_mapping(
    db: &Db,
    tenant: &Tenant,
    mapping: &crate::calls::call_end::CallEndMapping,
) -> Result<(), Error> {
    let value = mapping.to_json();
    let key = crate::calls::call_end::CALL_END_MAPPING;
    db.run(async |client| store::tenants::set_setting(&*client, tenant.id, key, &value).await)
        .await?;
    Ok(())
}

/// Starts signing screen-pop links with a new key (older keys' links keep working
/// until they expire); answers the new key's number.
pub async fn rotate_signing_key(db: &Db, tenant: &Tenant) -> Result<i32, Error> {
    Ok(db
        .run(async |client| {
            // The key and its notification commit together, or neither does.
            let tx = client.transaction().await?;
            let key_id = store::signing_keys::rotate(&tx, tenant.id).await?;
            tx.commit().await?;
            Ok(key_id)
        })
        .await?)
}

/// Stops accepting links signed with the older key `key_id` at once.
pub async fn retire_signing_key(db: &Db, tenant: &Tenant, key_id: i32) -> Result<(), Error> {
    db.run(async |client| {
        let tx = client.transaction().await?;
        store::signing_keys::retire(&tx, tenant.id, key_id).await?;
        tx.commit().await?;
        Ok(())
    })
    .await?;
    Ok(())
}
