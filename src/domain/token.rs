use std::fmt;

use super::signing_key::PopupKey;
use super::tenant::{Tenant, TenantId};
use chrono::{DateTime, Utc};
use ipnetwork::IpNetwork;
use rand::Rng;
use rand::distr::Alphanumeric;
use sha2::{Digest, Sha256};

/// Random characters after the prefix: 32 alphanumerics carry about 190 bits.
const RANDOM_LEN: usize = 32;
const MAX_LEN: usize = 128;

/// What a token may be used for; a token of one scope opens no other API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenScope {
    Lookup,
    Sync,
    Report,
    Admin,
    /// A PBX reporting call events (often together with `lookup` on one token).
    Events,
    /// Desk phones reading the directory and caller names (`/phones/…`): read-only,
    /// and in URLs that end up in phones' settings pages.
    Phones,
}

impl TokenScope {
    pub const ALL: [TokenScope; 6] = [
        Self::Lookup,
        Self::Sync,
        Self::Report,
        Self::Admin,
        Self::Events,
        Self::Phones,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Lookup => "lookup",
            Self::Sync => "sync",
            Self::Report => "report",
            Self::Admin => "admin",
            Self::Events => "events",
            Self::Phones => "phones",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str() == raw)
            .ok_or_else(|| {
                format!("`{raw}` is not a scope: use lookup, sync, report, admin, events or phones")
            })
    }

    /// A recognisable prefix, so a leaked token's purpose is obvious to a scanner.
    fn prefix(self) -> &'static str {
        match self {
            Self::Lookup => "cgl_",
            Self::Sync => "cgs_",
            Self::Report => "cgr_",
            Self::Admin => "cga_",
            Self::Events => "cge_",
            Self::Phones => "cgp_",
        }
    }
}

/// The scopes of one token, the first naming its prefix (`lookup,events`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenScopes(Vec<TokenScope>);

impl TokenScopes {
    /// Comma-separated scope names, each at most once.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let mut scopes = Vec::new();
        for name in raw.split(',').map(str::trim) {
            let scope = TokenScope::parse(name)?;
            if scopes.contains(&scope) {
                return Err(format!("`{name}` is given twice"));
            }
            scopes.push(scope);
        }
        Ok(Self(scopes))
    }

    pub fn from_stored(first: TokenScope, rest: impl IntoIterator<Item = TokenScope>) -> Self {
        let mut scopes = vec![first];
        scopes.extend(rest.into_iter().filter(|s| *s != first));
        Self(scopes)
    }

    pub fn first(&self) -> TokenScope {
        self.0[0]
    }

    /// The scopes after the first.
    pub fn rest(&self) -> &[TokenScope] {
        &self.0[1..]
    }

    pub fn contains(&self, scope: TokenScope) -> bool {
        self.0.contains(&scope)
    }
}

impl From<TokenScope> for TokenScopes {
    fn from(scope: TokenScope) -> Self {
        Self(vec![scope])
    }
}

impl fmt::Display for TokenScopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.0.iter().map(|s| s.as_str()).collect();
        f.write_str(&names.join(","))
    }
}

impl fmt::Display for TokenScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A token as presented by a client or freshly generated. Deliberately not `Display`
/// and with a redacting `Debug`, so it cannot end up in a log line by accident.
#[derive(Clone)]
pub struct ApiToken(String);

impl ApiToken {
    pub fn generate(scope: TokenScope) -> Self {
        let random: String = rand::rng()
            .sample_iter(&Alphanumeric)
            .take(RANDOM_LEN)
            .map(char::from)
            .collect();
        Self(format!("{}{random}", scope.prefix()))
    }

    /// Accepts what a client sent; `None` when it cannot possibly be a token.
    pub fn from_presented(raw: &str) -> Option<Self> {
        let raw = raw.trim();
        let plausible =
            !raw.is_empty() && raw.len() <= MAX_LEN && raw.bytes().all(|b| b.is_ascii_graphic());
        plausible.then(|| Self(raw.to_owned()))
    }

    /// Whether this could be a token cidgate issued (a scope's prefix, length and
    /// alphabet); anything else is refused without asking the database. The prefix
    /// names a token's first scope: a `lookup,events` token starts `cgl_`, so any
    /// scope's prefix may stand before a token of `scope`.
    pub fn is_shaped(&self) -> bool {
        TokenScope::ALL.iter().any(|scope| {
            self.0.strip_prefix(scope.prefix()).is_some_and(|random| {
                random.len() == RANDOM_LEN && random.bytes().all(|b| b.is_ascii_alphanumeric())
            })
        })
    }

    pub fn hash(&self) -> TokenHash {
        TokenHash(Sha256::digest(self.0.as_bytes()).into())
    }

    /// The secret itself: only for showing it once to whoever created it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiToken(<redacted>)")
    }
}

/// SHA-256 of a token: the only form a token is stored in. Compared in constant time.
#[derive(Debug, Clone, Copy, Eq)]
pub struct TokenHash(pub [u8; 32]);

impl std::hash::Hash for TokenHash {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl PartialEq for TokenHash {
    fn eq(&self, other: &Self) -> bool {
        use subtle::ConstantTimeEq;
        self.0.ct_eq(&other.0).into()
    }
}

/// A live token as the directory keeps it.
#[derive(Debug, Clone)]
pub struct LiveToken {
    pub id: i64,
    pub hash: TokenHash,
    pub scopes: TokenScopes,
    pub tenant: TenantId,
    /// Set on a rotated token: it stops working at this time.
    pub expires_at: Option<DateTime<Utc>>,
}

pub struct DirectoryRows {
    pub tenants: Vec<Tenant>,
    pub tokens: Vec<LiveToken>,
    pub allowlist: Vec<(TenantId, IpNetwork)>,
    pub popup_keys: Vec<PopupKey>,
}

/// A token's metadata; the secret itself is never stored.
#[derive(Debug, Clone)]
pub struct TokenInfo {
    pub id: i64,
    pub scope: String,
    pub label: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_are_prefixed_random_and_distinct() {
        let a = ApiToken::generate(TokenScope::Lookup);
        let b = ApiToken::generate(TokenScope::Lookup);
        assert!(a.expose().starts_with("cgl_"));
        assert_eq!(a.expose().len(), 4 + RANDOM_LEN);
        assert_ne!(a.expose(), b.expose());
        assert_ne!(a.hash(), b.hash());
        assert!(
            ApiToken::generate(TokenScope::Sync)
                .expose()
                .starts_with("cgs_")
        );
    }

    fn shaped_raw(raw: &str) -> bool {
        ApiToken::from_presented(raw).unwrap().is_shaped()
    }

    #[test]
    fn several_scopes_parse_in_order_each_once() {
        let scopes = TokenScopes::parse("lookup, events").unwrap();
        assert_eq!(scopes.first(), TokenScope::Lookup);
        assert_eq!(scopes.rest(), [TokenScope::Events]);
        assert!(scopes.contains(TokenScope::Events) && !scopes.contains(TokenScope::Sync));
        assert_eq!(scopes.to_string(), "lookup,events");
        assert!(TokenScopes::parse("lookup,lookup").is_err());
        assert!(TokenScopes::parse("lookup,root").is_err());
    }

    #[test]
    fn only_what_cidgate_could_have_issued_is_shaped_like_a_token() {
        let lookup = ApiToken::generate(TokenScope::Lookup);
        assert!(lookup.is_shaped());
        assert!(ApiToken::generate(TokenScope::Events).is_shaped());
        assert!(!shaped_raw(&format!("cgx_{}", &lookup.expose()[4..])));
        let shaped = |raw: &str| ApiToken::from_presented(raw).unwrap().is_shaped();
        assert!(!shaped("garbage"));
        assert!(!shaped(&lookup.expose()[..lookup.expose().len() - 1]));
        assert!(!shaped(&format!("{}x", lookup.expose())));
        assert!(!shaped(&format!("cgl_{}-", &lookup.expose()[5..])));
    }

    #[test]
    fn presented_tokens_hash_like_the_generated_one() {
        let token = ApiToken::generate(TokenScope::Sync);
        let presented = ApiToken::from_presented(&format!(" {} ", token.expose())).unwrap();
        assert_eq!(presented.hash(), token.hash());
    }

    #[test]
    fn implausible_tokens_are_refused_and_debug_never_shows_a_secret() {
        assert!(ApiToken::from_presented("").is_none());
        assert!(ApiToken::from_presented("a b").is_none());
        assert!(ApiToken::from_presented(&"a".repeat(129)).is_none());
        let token = ApiToken::generate(TokenScope::Admin);
        assert!(!format!("{token:?}").contains(token.expose()));
    }

    #[test]
    fn scopes_round_trip_through_their_names() {
        for scope in TokenScope::ALL {
            assert_eq!(TokenScope::parse(scope.as_str()), Ok(scope));
        }
        assert!(TokenScope::parse("root").is_err());
    }
}
