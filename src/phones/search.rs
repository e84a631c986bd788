//! Reading a phone's search: `term` (a piece of a name, or a number in any format),
//! `offset` and `limit`.

use crate::domain::{DirectorySearch, PhoneNumber, Region};
use crate::phones::Vendor;

/// The longest `term` read.
const MAX_TERM_CHARS: usize = 64;
/// The highest `offset` a phone may page to: paging past it is no way to find a contact.
const MAX_OFFSET: u32 = 1_000_000;
/// Digits typed before numbers are matched by how they start: fewer match too much of a
/// big tenant to sort by name quickly (a full number always matches exactly).
const MIN_PREFIX_DIGITS: usize = 7;

/// The paging and search parameters of a directory request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchParams {
    pub term: String,
    pub offset: u32,
    pub limit: u32,
}

impl SearchParams {
    /// Reads `term`, `offset` and `limit` (first of each wins; others are ignored, phones
    /// add their own). The error names the parameter.
    pub fn parse(query: &str, vendor: Vendor) -> Result<Self, String> {
        let (mut term, mut offset, mut limit) = (None, None, None);
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            let slot = match name.as_ref() {
                "term" => &mut term,
                "offset" => &mut offset,
                "limit" => &mut limit,
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(value.into_owned());
            }
        }
        let term = term.unwrap_or_default().trim().to_owned();
        if term.chars().count() > MAX_TERM_CHARS {
            return Err(format!("term is longer than {MAX_TERM_CHARS} characters"));
        }
        if term.chars().any(char::is_control) || term.contains(char::REPLACEMENT_CHARACTER) {
            return Err("term must be text without control characters".into());
        }
        let number = |raw: Option<String>, name: &str, max: u32| match raw.as_deref() {
            None | Some("") => Ok(None),
            Some(raw) => match raw.parse::<u32>() {
                Ok(n) if n <= max => Ok(Some(n)),
                _ => Err(format!("{name} must be a whole number from 0 to {max}")),
            },
        };
        let offset = number(offset, "offset", MAX_OFFSET)?.unwrap_or(0);
        let limit = match number(limit, "limit", vendor.max_page())? {
            Some(0) => return Err(format!("limit must be from 1 to {}", vendor.max_page())),
            Some(n) => n,
            None => vendor.default_page(),
        };
        Ok(Self {
            term,
            offset,
            limit,
        })
    }
}

/// The database search for `params` in a tenant of `region`: names containing the term
/// (case-insensitive), and for a term that may be a number, the contacts holding it in
/// any format (normalized as lookups are) or, from seven digits on, a number starting
/// with it.
pub fn search_for(params: &SearchParams, region: Region) -> DirectorySearch {
    let term = params.term.as_str();
    let mut search = DirectorySearch {
        name_pattern: format!("%{}%", like_escaped(term)),
        offset: params.offset,
        limit: params.limit,
        ..DirectorySearch::default()
    };
    let numeric = term
        .chars()
        .all(|c| c.is_ascii_digit() || " +-().//".contains(c));
    let digits: String = term.chars().filter(char::is_ascii_digit).collect();
    if !numeric || digits.len() < 3 {
        return search;
    }
    if let Ok(number) = PhoneNumber::parse(term, region) {
        if let Some(other) = number.alternate() {
            search.numbers.push(other.as_str().to_owned());
        }
        search.numbers.push(number.as_str().to_owned());
    }
    if digits.len() >= MIN_PREFIX_DIGITS {
        search.number_prefixes = number_prefixes(term.trim_start(), &digits, region);
    }
    search
}

/// What stored numbers starting with a partly typed number start with: the digits as
/// typed (extensions are stored as digits), and the E.164 form of an international or
/// national beginning.
fn number_prefixes(term: &str, digits: &str, region: Region) -> Vec<String> {
    if term.starts_with('+') {
        return vec![format!("+{digits}")];
    }
    let mut prefixes = vec![digits.to_owned()];
    let Some(code) = region.calling_code() else {
        return prefixes;
    };
    if let Some(rest) = digits.strip_prefix("00") {
        prefixes.push(format!("+{rest}"));
        return prefixes;
    }
    let national = phonenumber::metadata::DATABASE
        .by_id(region.id().as_ref())
        .and_then(|m| m.national_prefix().map(str::to_owned));
    let rest = national
        .as_deref()
        .and_then(|prefix| digits.strip_prefix(prefix))
        .unwrap_or(digits);
    prefixes.push(format!("+{code}{rest}"));
    prefixes
}

/// `text` with `LIKE`'s wildcards and escape character taken literally.
fn like_escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ro() -> Region {
        Region::parse("RO").unwrap()
    }

    fn params(term: &str) -> SearchParams {
        SearchParams {
            term: term.into(),
            offset: 0,
            limit: 10,
        }
    }

    #[test]
    fn parameters_are_checked_and_named() {
        let p = SearchParams::parse("term=Ana+B&offset=32&limit=5", Vendor::Cisco).unwrap();
        assert_eq!((p.term.as_str(), p.offset, p.limit), ("Ana B", 32, 5));
        assert_eq!(SearchParams::parse("", Vendor::Cisco).unwrap().limit, 32);
        assert_eq!(SearchParams::parse("", Vendor::Yealink).unwrap().limit, 100);
        let err = |q: &str| SearchParams::parse(q, Vendor::Cisco).unwrap_err();
        assert!(err("limit=33").contains("limit"));
        assert!(err("limit=0").contains("limit"));
        assert!(err("offset=-1").contains("offset"));
        assert!(err(&format!("term={}", "a".repeat(65))).contains("term"));
        assert!(err("term=a%00").contains("term"));
    }

    #[test]
    fn names_are_matched_literally() {
        assert_eq!(
            search_for(&params("50%_a\\"), ro()).name_pattern,
            "%50\\%\\_a\\\\%"
        );
        assert!(!search_for(&params("Ana"), ro()).by_number());
    }

    #[test]
    fn numbers_match_in_any_format_and_by_their_beginning() {
        let full = search_for(&params("0721 234 567"), ro());
        assert_eq!(full.numbers, vec!["+40721234567".to_owned()]);
        assert!(full.number_prefixes.contains(&"+40721234567".to_owned()));
        let partial = search_for(&params("0040 7212"), ro());
        assert!(partial.number_prefixes.contains(&"+407212".to_owned()));
        let short = search_for(&params("072"), ro());
        assert!(short.number_prefixes.is_empty());
    }
}
