//! What desk phones are shown of the mirror: names and numbers, nothing else.

/// One dialable line of the directory: a contact and one of its numbers. A contact with
/// three numbers is three rows, next to each other (sorted by name, contact, number).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryRow {
    pub crm_id: String,
    pub name: String,
    pub number: String,
}

/// A directory search, its term already read (`phones::SearchTerm`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirectorySearch {
    /// An `ILIKE` pattern for names (`%` alone lists everyone).
    pub name_pattern: String,
    /// Numbers matched exactly (the term normalized as lookups do, and its other form).
    pub numbers: Vec<String>,
    /// Beginnings of stored numbers (digits, or `+` and digits) for what was typed.
    pub number_prefixes: Vec<String>,
    pub offset: u32,
    pub limit: u32,
}

impl DirectorySearch {
    /// Whether there is no term: everyone is listed.
    pub fn lists_everyone(&self) -> bool {
        self.name_pattern == "%%"
    }

    /// Whether the term may be a number (then numbers are searched too).
    pub fn by_number(&self) -> bool {
        !self.numbers.is_empty() || !self.number_prefixes.is_empty()
    }
}

/// A contact of a downloadable phone book, with its numbers in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookContact {
    pub name: String,
    pub numbers: Vec<String>,
}
