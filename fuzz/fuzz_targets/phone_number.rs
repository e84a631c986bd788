//! Normalization must never panic, and what it returns is always a stored-form number:
//! `+` and digits (E.164) or digits alone, with a compact key when short enough.
#![no_main]

use cidgate::domain::{NumberKey, PhoneNumber, Region};
use libfuzzer_sys::fuzz_target;

const REGIONS: &[&str] = &["RO", "US", "GB", "DE", "FR", "IN", "BR", "JP", "AU", "ZA"];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else { return };
    let Ok(raw) = std::str::from_utf8(rest) else { return };
    let region = Region::parse(REGIONS[pick as usize % REGIONS.len()]).unwrap();
    if let Ok(number) = PhoneNumber::parse(raw, region) {
        let text = number.as_str();
        let digits = text.strip_prefix('+').unwrap_or(text);
        assert!(!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()), "{text:?}");
        if let Some(key) = number.key() {
            assert_eq!(NumberKey::encode(text), Some(key));
        }
        let _ = number.masked();
    }
});
