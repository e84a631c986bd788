//! Service users: who BI, billing and payroll systems pull reports as, with keys limited
//! to some agents or groups.

use std::time::Duration;

use super::{Db, Error};
use crate::domain::{
    ApiToken, CreateError, Extension, GroupName, ServiceUser, ServiceUserName, Tenant,
};
use crate::store::service_users;

/// The longest a service user's old keys keep working after a rotation.
const MAX_GRACE: Duration = Duration::from_secs(30 * 24 * 3600);

/// What a service user sees, for people.
pub fn sees(agents: Option<&[String]>, groups: Option<&[String]>) -> String {
    match (agents, groups) {
        (None, None) => "every agent".into(),
        (agents, groups) => {
            let mut parts = Vec::new();
            if let Some(agents) = agents.filter(|a| !a.is_empty()) {
                parts.push(format!("agents {}", agents.join(",")));
            }
            if let Some(groups) = groups.filter(|g| !g.is_empty()) {
                parts.push(format!("groups {}", groups.join(",")));
            }
            parts.join(" and ")
        }
    }
}

fn no_user(tenant: &Tenant, name: &ServiceUserName) -> Error {
    Error::NotFound(format!(
        "`{}` has no active service user `{name}`",
        tenant.slug
    ))
}

/// Creates a service user limited to `agents` and `groups` (`None`: not limited by
/// it); answers it and its first key (shown this once).
pub async fn create(
    db: &Db,
    tenant: &Tenant,
    name: &ServiceUserName,
    agents: Option<&[Extension]>,
    groups: Option<&[GroupName]>,
) -> Result<(ServiceUser, ApiToken), Error> {
    let agents: Option<Vec<String>> =
        agents.map(|a| a.iter().map(|e| e.as_str().to_owned()).collect());
    let groups: Option<Vec<String>> =
        groups.map(|g| g.iter().map(|g| g.as_str().to_owned()).collect());
    let created = db
        .run(async |client| {
            let tx = client.transaction().await?;
            let created =
                service_users::create(&tx, tenant.id, name, agents.as_deref(), groups.as_deref());
            match created.await {
                Ok(created) => {
                    tx.commit().await?;
                    Ok(Ok(created))
                }
                Err(taken @ CreateError::Exists(_)) => Ok(Err(taken.to_string())),
                Err(CreateError::Unexpected(e)) => Err(e),
            }
        })
        .await?;
    created.map_err(Error::Taken)
}

pub async fn list(db: &Db, tenant: &Tenant) -> Result<Vec<ServiceUser>, Error> {
    Ok(db
        .run(async |client| service_users::list(&*client, tenant.id).await)
        .await?)
}

/// Revokes the service user and all its keys; its reports stop.
pub async fn revoke(db: &Db, tenant: &Tenant, name: &ServiceUserName) -> Result<(), Error> {
    let revoked = db
        .run(async |client| service_users::revoke(&*client, tenant.id, name).await)
        .await?;
    if revoked {
        Ok(())
    } else {
        Err(no_user(tenant, name))
    }
}

/// A new key, and how many other keys stop working after the grace period.
pub async fn rotate(
    db: &Db,
    tenant: &Tenant,
    name: &ServiceUserName,
    grace: Duration,
) -> Result<(ApiToken, u64), Error> {
    if grace > MAX_GRACE {
        return Err(Error::invalid(
            "grace",
            "at most 30 days (720h); the old keys should stop working soon",
        ));
    }
    let rotated = db
        .run(async |client| {
            let tx = client.transaction().await?;
            let rotated = service_users::rotate(&tx, tenant.id, name, grace).await?;
            tx.commit().await?;
            Ok(rotated)
        })
        .await?;
    rotated.ok_or_else(|| no_user(tenant, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_service_user_sees_is_said_in_words() {
        assert_eq!(sees(None, None), "every agent");
        let groups = ["Sales".to_owned()];
        assert_eq!(sees(None, Some(&groups)), "groups Sales");
    }
}
