//! The operations an operator performs, one service per area: called alike by `cli/`,
//! the JSON admin routes and (next) the console. A service takes typed input (domain
//! types), checks what the types cannot, writes through `store/` and answers typed
//! results or an [`Error`]; `http/error.rs` maps that error to HTTP in one place.

pub mod agents;
pub mod allowlist;
pub mod deliveries;
pub mod dialer;
pub mod profiles;
pub mod reports;
pub mod service_users;
pub mod spam;
pub mod tenants;
pub mod tokens;

use std::time::Duration;

use deadpool_postgres::{Object, Pool};

use crate::domain::{FieldError, Tenant, TenantSlug};
use crate::store;

/// The database as services reach it: every use through `store::with_client`, so a
/// timed-out connection is closed, never handed back mid-query.
#[derive(Clone)]
pub struct Db {
    pool: Pool,
    timeout: Duration,
}

impl Db {
    pub fn new(pool: Pool, timeout: Duration) -> Self {
        Self { pool, timeout }
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Runs `work` on one pooled connection within the timeout.
    pub async fn run<T>(
        &self,
        work: impl AsyncFnOnce(&mut Object) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        store::with_client(&self.pool, self.timeout, work).await
    }

    /// The tenant `slug` names, as an operator types it.
    pub async fn tenant(&self, slug: &str) -> Result<Tenant, Error> {
        let slug = TenantSlug::parse(slug).map_err(Error::Message)?;
        self.run(async |client| store::tenants::find_by_slug(&*client, &slug).await)
            .await?
            .ok_or_else(|| {
                Error::NotFound(format!("no tenant `{slug}` (see `cidgate tenant list`)"))
            })
    }
}

/// Why a service did not do what it was asked. The messages speak to operators; the
/// JSON API answers each variant as `http/error.rs` says.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A value the service refuses: `field` is the JSON field (the CLI flag with `-`
    /// for `_`), `message` what is wrong with it.
    #[error("--{}: {message}", .field.replace('_', "-"))]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// A request the service refuses as a whole (the message says why).
    #[error("{0}")]
    Message(String),
    /// What the request names does not exist (the message names it).
    #[error("{0}")]
    NotFound(String),
    /// A name that is taken already (the message names it).
    #[error("{0}")]
    Taken(String),
    /// The tenant has as many agents as it may (`tenant set --max-agents`).
    #[error(
        "`{tenant}` has its {cap} agents already; raise the cap with `cidgate tenant set {tenant} --max-agents N`"
    )]
    AgentCap { tenant: String, cap: i32 },
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

impl Error {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            message: message.into(),
        }
    }

    /// The field errors a JSON client is told of, for the refusals that have them.
    pub fn fields(&self) -> Vec<FieldError> {
        match self {
            Self::Invalid { field, message } => vec![FieldError::new(*field, message.clone())],
            Self::AgentCap { cap, .. } => vec![FieldError::new(
                "extension",
                format!(
                    "the tenant may have at most {cap} agents (tenant set --max-agents); remove one or ask the operator to raise the cap"
                ),
            )],
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_value_names_the_flag_on_the_command_line_and_the_field_in_json() {
        let refused = Error::invalid("popup_ttl", "at least one minute");
        assert_eq!(refused.to_string(), "--popup-ttl: at least one minute");
        let fields = refused.fields();
        assert_eq!(fields.len(), 1);
        assert_eq!(fields[0].field, "popup_ttl");
        assert_eq!(fields[0].message, "at least one minute");
    }
}
