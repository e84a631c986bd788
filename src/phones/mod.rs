//! Desk phones (issue 35): the mirror as each vendor's phones read a remote directory,
//! a downloadable phone book and (Gigaset) a caller's name, in their XML dialects.
//! No actix and no SQL here: routes/phones.rs reads the request, store/phones.rs the
//! rows, and this module turns rows into each vendor's document.

mod dialects;
pub mod gigaset;
mod search;
pub mod xml;

pub use self::dialects::{Answer, PageLinks, book, directory, input};
pub use self::search::{SearchParams, search_for};

/// The vendors whose remote directory cidgate speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vendor {
    Yealink,
    Cisco,
    Snom,
    Grandstream,
    Fanvil,
    Htek,
    Polycom,
}

impl Vendor {
    /// Gigaset bases ask only for callers' names (`/phones/gigaset/lookup`).
    pub const GIGASET: &'static str = "gigaset";

    pub const ALL: [Vendor; 7] = [
        Self::Yealink,
        Self::Cisco,
        Self::Snom,
        Self::Grandstream,
        Self::Fanvil,
        Self::Htek,
        Self::Polycom,
    ];

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == raw)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Yealink => "yealink",
            Self::Cisco => "cisco",
            Self::Snom => "snom",
            Self::Grandstream => "grandstream",
            Self::Fanvil => "fanvil",
            Self::Htek => "htek",
            Self::Polycom => "polycom",
        }
    }

    /// Most directory entries one answer holds: Cisco phones refuse a directory of more
    /// than 32 entries; the others scroll, and a page stays quick to render.
    pub fn max_page(self) -> u32 {
        match self {
            Self::Cisco => 32,
            _ => 500,
        }
    }

    /// Entries a page holds when the phone does not say (phones never do).
    pub fn default_page(self) -> u32 {
        match self {
            Self::Cisco => 32,
            _ => 100,
        }
    }

    /// Whether the vendor has a search-input page (`/phones/{vendor}/input`).
    pub fn has_input(self) -> bool {
        matches!(self, Self::Cisco | Self::Snom)
    }
}

/// The tenant setting holding `tenant set --phonebook-max`.
pub const PHONEBOOK_MAX: &str = "phonebook_max";
/// Contacts in a downloadable phone book unless the tenant says otherwise.
pub const DEFAULT_PHONEBOOK_MAX: u32 = 5_000;
/// The highest `--phonebook-max`: more than any phone's memory holds.
pub const PHONEBOOK_MAX_CAP: u32 = 100_000;

/// The tenant's phone-book size from its settings.
pub fn phonebook_max(settings: &serde_json::Value) -> u32 {
    settings
        .get(PHONEBOOK_MAX)
        .and_then(serde_json::Value::as_u64)
        .and_then(|n| u32::try_from(n).ok())
        .map_or(DEFAULT_PHONEBOOK_MAX, |n| n.min(PHONEBOOK_MAX_CAP))
}
