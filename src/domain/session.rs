//! Agents' sessions (the reference's Login): a secret the CRM's server gets for an agent
//! and passes with every click-to-call, valid for the tenant's session length.

use std::fmt;

use super::agent::Extension;
use super::tenant::TenantId;
use chrono::{DateTime, Utc};
use rand::Rng;
use rand::distr::Alphanumeric;
use sha2::{Digest, Sha256};

const PREFIX: &str = "cgsess_";
const RANDOM_LEN: usize = 40;

/// A session secret as generated or presented. Redacting `Debug`, no `Display`: it never
/// reaches a log line by accident.
#[derive(Clone)]
pub struct SessionSecret(String);

impl SessionSecret {
    pub fn generate() -> Self {
        let random: String = rand::rng()
            .sample_iter(&Alphanumeric)
            .take(RANDOM_LEN)
            .map(char::from)
            .collect();
        Self(format!("{PREFIX}{random}"))
    }

    /// What a client sent; `None` when it cannot be a session cidgate issued (so the
    /// database is not asked about it).
    pub fn from_presented(raw: &str) -> Option<Self> {
        let random = raw.trim().strip_prefix(PREFIX)?;
        (random.len() == RANDOM_LEN && random.bytes().all(|b| b.is_ascii_alphanumeric()))
            .then(|| Self(raw.trim().to_owned()))
    }

    /// SHA-256 of the secret: the only form it is stored in.
    pub fn hash(&self) -> [u8; 32] {
        Sha256::digest(self.0.as_bytes()).into()
    }

    /// The secret itself: only for answering it once to whoever signed the agent in.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SessionSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionSecret(<redacted>)")
    }
}

/// How long a session holds: the reference's 8 to 12 hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionHours(u8);

impl SessionHours {
    pub const DEFAULT: Self = Self(10);

    pub fn new(hours: u64) -> Result<Self, String> {
        match u8::try_from(hours) {
            Ok(h @ 8..=12) => Ok(Self(h)),
            _ => Err(format!(
                "a session lasts 8 to 12 hours (a shift); {hours} is outside"
            )),
        }
    }

    pub fn get(self) -> u8 {
        self.0
    }

    pub fn duration(self) -> chrono::Duration {
        chrono::Duration::hours(self.0.into())
    }
}

/// A live session: whose it is.
#[derive(Debug, Clone)]
pub struct Session {
    pub tenant: TenantId,
    pub extension: Extension,
    pub expires_at: DateTime<Utc>,
}

impl Session {
    pub fn is_live(&self) -> bool {
        self.expires_at > Utc::now()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_random_recognisable_and_hashed() {
        let a = SessionSecret::generate();
        let b = SessionSecret::generate();
        assert_ne!(a.expose(), b.expose());
        assert_ne!(a.hash(), b.hash());
        let again = SessionSecret::from_presented(a.expose()).unwrap();
        assert_eq!(again.hash(), a.hash());
        assert!(SessionSecret::from_presented("cgsess_short").is_none());
        assert!(SessionSecret::from_presented(&a.expose().replace("cgsess_", "cgs_")).is_none());
        assert_eq!(format!("{a:?}"), "SessionSecret(<redacted>)");
    }

    #[test]
    fn sessions_last_a_shift() {
        assert_eq!(SessionHours::new(8).unwrap().get(), 8);
        assert_eq!(SessionHours::new(12).unwrap().get(), 12);
        assert!(SessionHours::new(7).is_err());
        assert!(SessionHours::new(13).is_err());
        assert!(SessionHours::new(300).is_err());
    }
}
