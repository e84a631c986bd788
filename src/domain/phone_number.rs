//! Caller numbers, normalized once so that every format a PBX or CRM sends matches.

use std::borrow::Cow;
use std::fmt;

use phonenumber::country;

/// Longest number accepted, without a display name or URI around it; anything longer is
/// not a phone number.
pub const MAX_RAW_LEN: usize = 64;
/// Longest caller ID accepted with its display name or URI (`"Ann" <sip:…@pbx;user=phone>`).
pub const MAX_CALLER_ID_LEN: usize = 256;
/// E.164 allows at most 15 digits; bare digit strings longer than that are no number.
const MAX_DIGITS: usize = 15;

/// National numbers shorter than this are internal extensions, kept as plain digits.
const MIN_NATIONAL_DIGITS: usize = 7;

/// What PBXs put in the caller ID when the caller withheld it.
const WITHHELD: &[&str] = &[
    "anonymous",
    "unknown",
    "private",
    "restricted",
    "unavailable",
    "withheld",
    "blocked",
];

/// A phone number in its stored form: E.164 (`+40721234567`) when the phone-number
/// library recognises it, otherwise the bare digits (short internal extensions).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PhoneNumber(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneNumberError {
    #[error("is empty or withheld")]
    Withheld,
    #[error("is longer than {MAX_RAW_LEN} characters")]
    TooLong,
    #[error("is longer than {MAX_CALLER_ID_LEN} characters, display name and URI included")]
    CallerIdTooLong,
    #[error("has more than {MAX_DIGITS} digits")]
    TooManyDigits,
    #[error("is not a phone number (only digits, spaces and + - ( ) . / are allowed)")]
    NotANumber,
}

impl PhoneNumber {
    /// Normalizes `raw` as dialled in `region`. The same function serves writes and
    /// lookups, so `0721 234 567`, `+40721234567` and `0040721234567` all meet.
    pub fn parse(raw: &str, region: Region) -> Result<Self, PhoneNumberError> {
        let raw = raw.trim();
        if raw.chars().count() > MAX_CALLER_ID_LEN {
            return Err(PhoneNumberError::CallerIdTooLong);
        }
        let text = ascii_equivalent(raw);
        let body = uri_user(bracketed(text.trim())).trim();
        if body.chars().count() > MAX_RAW_LEN {
            return Err(PhoneNumberError::TooLong);
        }
        if body.is_empty() || WITHHELD.iter().any(|w| body.eq_ignore_ascii_case(w)) {
            return Err(PhoneNumberError::Withheld);
        }
        let body = without_extension(body);
        let allowed = |c: char| c.is_ascii_digit() || " +-().//\t".contains(c);
        if !body.chars().all(allowed) {
            return Err(PhoneNumberError::NotANumber);
        }
        let digits: String = body.chars().filter(char::is_ascii_digit).collect();
        if digits.is_empty() {
            return Err(PhoneNumberError::NotANumber);
        }
        if digits.len() > MAX_DIGITS {
            return Err(PhoneNumberError::TooManyDigits);
        }
        // The library strips the *tenant's* trunk prefix from a foreign number (`+39 06…`
        // lost Italy's 0 for a Romanian tenant, `+44 (0)20…` kept the 0 for an American
        // one); without a default region it applies the number's own.
        let parsed = if body.starts_with('+') {
            phonenumber::parse(None, body).or_else(|_| phonenumber::parse(Some(region.0), body))
        } else {
            let regional = phonenumber::parse(Some(region.0), body);
            match &regional {
                // Another country's code after the region's international prefix.
                Ok(parsed) if Some(parsed.code().value()) != region.calling_code() => {
                    after_international_prefix(&digits, region)
                        .and_then(|international| phonenumber::parse(None, &international).ok())
                        .map_or(regional, Ok)
                }
                _ => regional,
            }
        };
        let parsed = parsed.map(|parsed| without_mexican_legacy_prefix(&parsed).unwrap_or(parsed));
        if let Ok(parsed) = parsed {
            // Length first: validation against the metadata costs ten times the parse,
            // and only short numbers need it to tell a real number from an extension.
            if national_digits(parsed.national()) >= MIN_NATIONAL_DIGITS || parsed.is_valid() {
                let e164 = e164(&parsed);
                // Past 15 digits it is no E.164 number (a national reading of a long
                // digit string): the digits as given, like any unrecognised number.
                if e164.len() - 1 <= MAX_DIGITS {
                    return Ok(Self(e164));
                }
            }
        }
        Ok(Self(digits))
    }

    /// Loads the phone-number library's metadata, which it otherwise does lazily on the
    /// first parse.
    pub fn warm_up() {
        let _ = phonenumber::parse(None, "+40721234567").map(|n| n.is_valid());
    }

    /// Rebuilds a number read back from the database, where it is already normalized.
    pub fn from_stored(stored: String) -> Self {
        Self(stored)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The other way the same line may be written, where a country has two: Argentina's
    /// mobiles are `+54 9` and ten digits when dialled from abroad (and read so from the
    /// national `15` form), but CRMs and carriers also write them without the 9. Fixed
    /// lines and mobiles share the ten-digit numbers (no area code starts with 9), so both
    /// forms name one line. Stored numbers keep the form they were written in; a lookup
    /// tries the other form when its own belongs to no contact.
    pub fn alternate(&self) -> Option<Self> {
        alternate_form(&self.0).map(Self)
    }

    /// The number packed into 8 bytes for in-memory indexes, when it fits.
    pub fn key(&self) -> Option<NumberKey> {
        NumberKey::encode(&self.0)
    }

    /// The number with all but its last three digits masked, for log lines.
    pub fn masked(&self) -> String {
        let keep = self.0.len().saturating_sub(3);
        self.0
            .char_indices()
            .map(|(i, c)| {
                if i < keep && c.is_ascii_digit() {
                    '*'
                } else {
                    c
                }
            })
            .collect()
    }
}

/// The text with what address books and CRMs paste into numbers made plain: invisible
/// direction marks and zero-width characters dropped, Unicode spaces and dashes and
/// full-width digits and plus read as their ASCII selves.
fn ascii_equivalent(raw: &str) -> Cow<'_, str> {
    if raw.is_ascii() {
        return Cow::Borrowed(raw);
    }
    raw.chars()
        .filter_map(|c| match c {
            '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{FEFF}' => None,
            '\u{FF0B}' => Some('+'),
            '\u{2010}'..='\u{2015}' | '\u{2212}' | '\u{FE63}' | '\u{FF0D}' => Some('-'),
            c if c.is_whitespace() => Some(' '),
            c => Some(decimal_digit(c).unwrap_or(c)),
        })
        .collect::<String>()
        .into()
}

/// The zero of every block of decimal digits an address book may hold a number in
/// (Arabic-Indic, Persian, Devanagari and other Indic scripts, Thai, Lao, Tibetan,
/// Myanmar, Khmer, Mongolian, full-width): libphonenumber reads them all as digits.
const DIGIT_ZEROS: &[u32] = &[
    0x0660, 0x06F0, 0x07C0, 0x0966, 0x09E6, 0x0A66, 0x0AE6, 0x0B66, 0x0BE6, 0x0C66, 0x0CE6, 0x0D66,
    0x0DE6, 0x0E50, 0x0ED0, 0x0F20, 0x1040, 0x1090, 0x17E0, 0x1810, 0xFF10,
];

/// The ASCII digit a non-ASCII decimal digit stands for.
fn decimal_digit(c: char) -> Option<char> {
    let code = u32::from(c);
    DIGIT_ZEROS
        .iter()
        .find(|&&zero| (zero..zero + 10).contains(&code))
        .and_then(|zero| char::from_digit(code - zero, 10))
}

/// The part in angle brackets of a caller ID with a display name
/// (`"Ann Pop" <0721234567>`, `Ann <sip:…>`); any other text as it is.
fn bracketed(text: &str) -> &str {
    let Some((_, inner)) = text.rsplit_once('<') else {
        return text;
    };
    inner.split_once('>').map_or(inner, |(inner, _)| inner)
}

/// The number without an extension (`;ext=12`, `x12`, `ext. 12`, `extension 12`): the
/// caller is the main number.
fn without_extension(body: &str) -> &str {
    let cut = body.char_indices().find(|&(at, c)| {
        matches!(c, ';' | 'x' | 'X')
            || body
                .get(at..at + 3)
                .is_some_and(|word| word.eq_ignore_ascii_case("ext"))
    });
    cut.map_or(body, |(at, _)| &body[..at])
}

/// The user part of a SIP or tel URI (`"Ann" <sip:+40721234567@pbx;user=phone>`), which
/// some PBXs send as the caller; any other text as it is. A withheld caller's URI
/// (`sip:anonymous@anonymous.invalid`) yields `anonymous`.
fn uri_user(text: &str) -> &str {
    if !text.contains(':') {
        return text;
    }
    let lower = text.to_ascii_lowercase();
    let Some(start) = ["sips:", "sip:", "tel:"]
        .iter()
        .find_map(|scheme| lower.find(scheme).map(|at| at + scheme.len()))
    else {
        return text;
    };
    let rest = &text[start..];
    match rest.find(['@', '>']) {
        Some(end) => &rest[..end],
        None => rest,
    }
}

/// The number behind a `+`, when its digits start with the region's international prefix
/// (`00…` from Romania, `011…` from the US).
fn after_international_prefix(digits: &str, region: Region) -> Option<String> {
    let idd = phonenumber::metadata::DATABASE
        .by_id(region.0.as_ref())?
        .international_prefix()?;
    let rest = &digits[idd.find(digits).filter(|m| m.start() == 0)?.end()..];
    // A country code never starts with 0: `00` then was no international prefix.
    (!rest.is_empty() && !rest.starts_with('0')).then(|| format!("+{rest}"))
}

/// `PhoneNumber::alternate` of a normalized number.
pub fn alternate_form(normalized: &str) -> Option<String> {
    const ARGENTINA: &str = "+54";
    const NATIONAL_DIGITS: usize = 10;
    let national = normalized.strip_prefix(ARGENTINA)?;
    let ten_digits = |d: &str| d.len() == NATIONAL_DIGITS && d.bytes().all(|b| b.is_ascii_digit());
    match national.strip_prefix('9') {
        Some(rest) if ten_digits(rest) => Some(format!("{ARGENTINA}{rest}")),
        _ if ten_digits(national) && !national.starts_with('9') => {
            Some(format!("{ARGENTINA}9{national}"))
        }
        _ => None,
    }
}

/// A Mexican number without the prefixes Mexico dropped in 2019 and that old address books,
/// CRMs and messaging apps still write: the `1` of mobiles after `+52`, the `044`/`045`
/// mobile and `01` long-distance prefixes. The library's current metadata knows none of
/// them, so `+52 1 55 1234 5678` would not meet the caller's `+52 55 1234 5678`.
fn without_mexican_legacy_prefix(
    parsed: &phonenumber::PhoneNumber,
) -> Option<phonenumber::PhoneNumber> {
    const MEXICO: u16 = 52;
    const NATIONAL_DIGITS: usize = 10;
    if parsed.code().value() != MEXICO {
        return None;
    }
    let national = parsed.national().to_string();
    let rest = ["1", "044", "045", "01"]
        .iter()
        .find_map(|prefix| national.strip_prefix(prefix))
        .filter(|rest| rest.len() == NATIONAL_DIGITS)?;
    let current = phonenumber::parse(None, format!("+{MEXICO}{rest}")).ok()?;
    (!parsed.is_valid() && current.is_valid()).then_some(current)
}

/// Digits of a national number, its leading zeros (Italy) included.
fn national_digits(national: &phonenumber::NationalNumber) -> usize {
    usize::from(national.zeros())
        + national
            .value()
            .checked_ilog10()
            .map_or(1, |d| d as usize + 1)
}

/// The E.164 form: what the library's E.164 formatter writes, without the regex
/// matching it also does for the other formats (a third of a lookup's parse).
fn e164(parsed: &phonenumber::PhoneNumber) -> String {
    format!("+{}{}", parsed.country().code(), parsed.national())
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A normalized number packed into a `u64`: E.164 numbers (at most 18 digits) carry a
/// flag bit, bare digit strings (at most 17 digits) their length, so `0101` and `101`
/// and `+101` stay distinct. Longer inputs have no key and are never indexed or cached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NumberKey(u64);

impl NumberKey {
    const E164_FLAG: u64 = 1 << 63;
    const LENGTH_SHIFT: u32 = 57;

    pub fn encode(normalized: &str) -> Option<Self> {
        let (e164, digits) = match normalized.strip_prefix('+') {
            Some(rest) => (true, rest),
            None => (false, normalized),
        };
        let max_len = if e164 { 18 } else { 17 };
        // No country code starts with 0, and as an integer `+0721` would be `+721`.
        if digits.is_empty()
            || digits.len() > max_len
            || !digits.bytes().all(|b| b.is_ascii_digit())
            || (e164 && digits.starts_with('0'))
        {
            return None;
        }
        let value: u64 = digits.parse().ok()?;
        Some(Self(if e164 {
            Self::E164_FLAG | value
        } else {
            ((digits.len() as u64) << Self::LENGTH_SHIFT) | value
        }))
    }

    pub fn raw(self) -> u64 {
        self.0
    }
}

/// A tenant's default region (ISO 3166 alpha-2), used to read national numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Region(country::Id);

impl Region {
    pub fn parse(code: &str) -> Result<Self, String> {
        let upper = code.trim().to_ascii_uppercase();
        upper
            .parse::<country::Id>()
            .map(Self)
            .map_err(|_| format!("`{code}` is not an ISO 3166 region code such as RO or US"))
    }

    pub fn code(&self) -> &str {
        self.0.as_ref()
    }

    /// The region's country calling code (40 for RO).
    pub fn calling_code(&self) -> Option<u16> {
        phonenumber::metadata::DATABASE
            .by_id(self.0.as_ref())
            .map(|m| m.country_code())
    }

    /// The phone-number library's id of the region.
    pub fn id(&self) -> country::Id {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ro(raw: &str) -> Result<String, PhoneNumberError> {
        PhoneNumber::parse(raw, Region::parse("RO").unwrap()).map(|n| n.0)
    }

    #[test]
    fn every_format_of_one_number_normalizes_to_the_same_e164() {
        for raw in [
            "0721234567",
            "+40721234567",
            "0040721234567",
            "0721 234 567",
            "0721-234-567",
            "(0721) 234 567",
            "+40 (0) 721 234 567",
            "tel:+40721234567",
            "0721.234.567",
            " 0721234567 ",
            "0721234567;ext=12",
            "0721234567 x12",
            "0721234567 ext 12",
            "0721234567 Ext. 12",
            "0721234567 extension 12",
        ] {
            assert_eq!(ro(raw).as_deref(), Ok("+40721234567"), "{raw}");
        }
    }

    #[test]
    fn foreign_numbers_keep_their_country() {
        assert_eq!(ro("+1 650 253 0000").as_deref(), Ok("+16502530000"));
        assert_eq!(ro("001 650 253 0000").as_deref(), Ok("+16502530000"));
    }

    #[test]
    fn a_country_code_brings_its_own_trunk_rules_whatever_the_tenants_region() {
        for (raw, region, expected) in [
            ("+39 06 1234 5678", "RO", "+390612345678"),
            ("0039 06 1234 5678", "RO", "+390612345678"),
            ("011 39 06 1234 5678", "US", "+390612345678"),
            ("+39 06 1234 5678", "GB", "+390612345678"),
            ("+225 07 12 34 56 78", "FR", "+2250712345678"),
            ("+44 (0)20 7946 0111", "US", "+442079460111"),
            ("+44 (0)20 7946 0111", "IT", "+442079460111"),
            ("011 44 20 7946 0111", "US", "+442079460111"),
            ("0044 (0)20 7946 0111", "IT", "+442079460111"),
            ("+40 0721 234 567", "US", "+40721234567"),
            ("+40 0721 234 567", "RO", "+40721234567"),
            ("0040 721 234 567", "DE", "+40721234567"),
            // National numbers keep the tenant's rules.
            ("06 1234 5678", "IT", "+390612345678"),
            ("020 7946 0111", "GB", "+442079460111"),
            ("(212) 555-0123", "US", "+12125550123"),
        ] {
            let parsed = PhoneNumber::parse(raw, Region::parse(region).unwrap()).map(|n| n.0);
            assert_eq!(parsed.as_deref(), Ok(expected), "{raw} in {region}");
        }
    }

    #[test]
    fn mexicos_legacy_prefixes_meet_the_current_number() {
        for (raw, region) in [
            ("+52 55 1234 5678", "MX"),
            ("55 1234 5678", "MX"),
            ("+52 1 55 1234 5678", "MX"),
            ("+5215512345678", "US"),
            ("00 52 1 55 1234 5678", "RO"),
            ("044 55 1234 5678", "MX"),
            ("045 55 1234 5678", "MX"),
            ("01 55 1234 5678", "MX"),
        ] {
            let parsed = PhoneNumber::parse(raw, Region::parse(region).unwrap()).map(|n| n.0);
            assert_eq!(parsed.as_deref(), Ok("+525512345678"), "{raw} in {region}");
        }
        // A prefix only goes when what follows is a Mexican number.
        let mx = Region::parse("MX").unwrap();
        assert_ne!(
            PhoneNumber::parse("+52 1 00 1234 5678", mx).unwrap().0,
            "+520012345678"
        );
        // Other countries' numbers that start alike keep their digits.
        assert_eq!(ro("+1 555 123 4567").as_deref(), Ok("+15551234567"));
    }

    #[test]
    fn an_argentine_line_has_a_form_with_and_without_the_mobile_9() {
        let ar = Region::parse("AR").unwrap();
        let mobile = PhoneNumber::parse("011 15 1234-5678", ar).unwrap();
        assert_eq!(mobile.as_str(), "+5491112345678");
        assert_eq!(
            PhoneNumber::parse("+54 9 11 1234 5678", ar).unwrap(),
            mobile
        );
        let plain = PhoneNumber::parse("+54 11 1234-5678", ar).unwrap();
        assert_eq!(mobile.alternate(), Some(plain.clone()));
        assert_eq!(plain.alternate(), Some(mobile));
        for other in [
            "+40721234567",
            "+5491112345",
            "+54800123456",
            "+1112345678",
            "101",
        ] {
            assert_eq!(alternate_form(other), None, "{other}");
        }
    }

    #[test]
    fn the_e164_form_is_the_librarys() {
        for (raw, region) in [
            ("0721234567", "RO"),
            ("06 6982 0000", "IT"), // Italian fixed lines keep their leading zero
            ("+39 06 6982 0000", "RO"),
            ("650 253 0000", "US"),
            ("030 1234567", "DE"),
            ("+44 20 7946 0958", "RO"),
            ("112", "RO"),
        ] {
            let parsed = phonenumber::parse(Some(Region::parse(region).unwrap().0), raw).unwrap();
            let library = parsed.format().mode(phonenumber::Mode::E164).to_string();
            assert_eq!(e164(&parsed), library, "{raw}");
            assert_eq!(
                national_digits(parsed.national()),
                parsed.national().to_string().len(),
                "{raw}"
            );
        }
    }

    #[test]
    fn uris_and_pasted_unicode_read_as_the_number() {
        for raw in [
            "sip:+40721234567@pbx.example.com",
            "<sip:0721234567@10.0.0.1;transport=udp>",
            "\"Ann\" <sips:+40721234567@pbx.example.com>",
            "SIP:0040721234567@pbx",
            "sip:+40721234567;user=phone@pbx",
            "TEL:+40-721-234-567",
            "\u{202D}0721 234 567\u{202C}",
            "0721\u{00A0}234\u{00A0}567",
            "\u{FF10}\u{FF17}\u{FF12}\u{FF11}\u{FF12}\u{FF13}\u{FF14}\u{FF15}\u{FF16}\u{FF17}",
            "0721\u{2011}234\u{2013}567",
            "\u{FEFF}+40721234567",
            "\"Ann Pop\" <0721234567>",
            "<+40721234567>",
            "Ann <0721 234 567>",
            "\u{0660}\u{0667}\u{0662}\u{0661}\u{0662}\u{0663}\u{0664}\u{0665}\u{0666}\u{0667}",
            "\u{0966}\u{096D}\u{0968}\u{0967}\u{0968}\u{0969}\u{096A}\u{096B}\u{096C}\u{096D}",
        ] {
            assert_eq!(ro(raw).as_deref(), Ok("+40721234567"), "{raw:?}");
        }
        for raw in [
            "sip:anonymous@anonymous.invalid",
            "\"Anonymous\" <sip:anonymous@anonymous.invalid>",
            "sip:@pbx",
        ] {
            assert_eq!(ro(raw), Err(PhoneNumberError::Withheld), "{raw:?}");
        }
        assert_eq!(
            ro("sip:alice@example.com"),
            Err(PhoneNumberError::NotANumber)
        );
    }

    #[test]
    fn short_extensions_are_kept_as_digits() {
        assert_eq!(ro("101").as_deref(), Ok("101"));
        assert_eq!(ro("2 001").as_deref(), Ok("2001"));
    }

    #[test]
    fn withheld_and_empty_callers_are_not_numbers() {
        for raw in [
            "",
            "  ",
            "anonymous",
            "Anonymous",
            "unknown",
            "PRIVATE",
            "restricted",
        ] {
            assert_eq!(ro(raw), Err(PhoneNumberError::Withheld), "{raw:?}");
        }
    }

    #[test]
    fn text_and_overlong_input_is_rejected() {
        assert_eq!(ro("abc123"), Err(PhoneNumberError::NotANumber));
        assert_eq!(ro("+-()"), Err(PhoneNumberError::NotANumber));
        assert_eq!(ro("<script>"), Err(PhoneNumberError::NotANumber));
        assert_eq!(ro("0721234567e"), Err(PhoneNumberError::NotANumber));
        assert_eq!(ro("\"Ann\" <>"), Err(PhoneNumberError::Withheld));
        assert_eq!(ro(&"1".repeat(65)), Err(PhoneNumberError::TooLong));
        assert_eq!(
            ro("0721000073 / 0721000074"),
            Err(PhoneNumberError::TooManyDigits),
            "two numbers run together"
        );
        assert_eq!(ro(&"1".repeat(16)), Err(PhoneNumberError::TooManyDigits));
        assert_eq!(ro(&"1".repeat(15)).as_deref(), Ok("111111111111111"));
        let named = "\"Ion Popescu Firma SRL\" <sip:+40721234567@pbx.example.com;user=phone>";
        assert!(named.len() > MAX_RAW_LEN);
        assert_eq!(ro(named).as_deref(), Ok("+40721234567"));
        let long_name = format!("\"{}\" <0721234567>", "N".repeat(250));
        assert_eq!(ro(&long_name), Err(PhoneNumberError::CallerIdTooLong));
    }

    #[test]
    fn the_region_decides_how_national_numbers_are_read() {
        let us = Region::parse("us").unwrap();
        let n = PhoneNumber::parse("(650) 253-0000", us).unwrap();
        assert_eq!(n.as_str(), "+16502530000");
        assert!(Region::parse("XX").is_err());
        assert!(Region::parse("Romania").is_err());
    }

    #[test]
    fn number_keys_keep_distinct_numbers_distinct() {
        let key = |s: &str| NumberKey::encode(s);
        assert_eq!(key("+40721234567"), key("+40721234567"));
        let distinct = [
            key("+101"),
            key("101"),
            key("0101"),
            key("00101"),
            key("+40721234567"),
        ];
        for (i, a) in distinct.iter().enumerate() {
            assert!(a.is_some());
            for b in &distinct[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert!(key("+999999999999999999").is_some(), "18 E.164 digits fit");
        assert!(key(&"9".repeat(17)).is_some(), "17 bare digits fit");
        assert_eq!(key(&"9".repeat(18)), None);
        assert_eq!(key(""), None);
        assert_eq!(key("+0721234567"), None, "would meet +721234567");
        assert_eq!(key("+"), None);
    }

    #[test]
    fn masking_hides_all_but_the_last_digits() {
        assert_eq!(ro("0721234567").unwrap(), "+40721234567");
        let n = PhoneNumber::from_stored("+40721234567".into());
        assert_eq!(n.masked(), "+********567");
    }
}
