//! Service users (DESIGN §10): who BI, billing and payroll systems pull reports and call
//! records as, and what each may see.

use chrono::{DateTime, Utc};
use std::collections::BTreeSet;
use std::fmt;

/// A service user's name, unique among a tenant's live service users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceUserName(String);

impl ServiceUserName {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let ok = (1..=64).contains(&raw.len())
            && raw.starts_with(|c: char| c.is_ascii_alphanumeric())
            && raw
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c));
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(format!(
                "`{raw}` is not a service user name: 1-64 letters, digits or . _ - @, \
                 starting with a letter or digit"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ServiceUserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a key sees of a tenant's calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// Every call: a tenant's `report` token, or a service user created without
    /// `--agents` or `--groups`.
    Everything,
    /// The calls of these extensions (the service user's agents and the members of its
    /// groups) and of these groups.
    Limited {
        extensions: BTreeSet<String>,
        groups: BTreeSet<String>,
    },
}

impl Access {
    pub fn sees_agent(&self, extension: &str) -> bool {
        match self {
            Self::Everything => true,
            Self::Limited { extensions, .. } => extensions.contains(extension),
        }
    }

    pub fn sees_group(&self, group: &str) -> bool {
        match self {
            Self::Everything => true,
            Self::Limited { groups, .. } => groups.contains(group),
        }
    }

    pub fn is_limited(&self) -> bool {
        matches!(self, Self::Limited { .. })
    }

    /// As query parameters: the extensions and groups, or `None` for every call.
    pub fn as_lists(&self) -> Option<(Vec<String>, Vec<String>)> {
        match self {
            Self::Everything => None,
            Self::Limited { extensions, groups } => Some((
                extensions.iter().cloned().collect(),
                groups.iter().cloned().collect(),
            )),
        }
    }
}

/// A service user as stored.
#[derive(Debug, Clone)]
pub struct ServiceUser {
    pub id: i64,
    pub name: String,
    /// Extensions it sees; `None` together with `groups`: every agent.
    pub agents: Option<Vec<String>>,
    pub groups: Option<Vec<String>>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// Keys that work now.
    pub live_keys: i64,
}

impl ServiceUser {
    pub fn is_limited(&self) -> bool {
        self.agents.is_some() || self.groups.is_some()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error("service user `{0}` exists (`service-user rotate` gives it a new key)")]
    Exists(String),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limited_access_sees_only_its_agents_and_groups() {
        let access = Access::Limited {
            extensions: BTreeSet::from(["200".to_owned()]),
            groups: BTreeSet::from(["Sales".to_owned()]),
        };
        assert!(access.sees_agent("200"));
        assert!(!access.sees_agent("201"));
        assert!(access.sees_group("Sales"));
        assert!(!access.sees_group("sales"));
        assert!(Access::Everything.sees_agent("201"));
        assert_eq!(Access::Everything.as_lists(), None);
    }

    #[test]
    fn names_are_checked() {
        assert!(ServiceUserName::parse("payroll").is_ok());
        assert!(ServiceUserName::parse("bi.export-2").is_ok());
        assert!(ServiceUserName::parse("-x").is_err());
        assert!(ServiceUserName::parse("a b").is_err());
        assert!(ServiceUserName::parse("").is_err());
    }
}
