//! Recently normalized caller numbers, remembered per thread. A PBX asks about the same
//! callers again and again, and normalizing through the phone-number library is the
//! costliest step of a cached lookup (about 2 µs); a hit here costs a hash and a compare.
//! Normalization is a pure function of (raw text, region), so a remembered result is
//! always the right one.

use std::cell::RefCell;
use std::hash::{BuildHasher, Hash, Hasher};

use rustc_hash::FxBuildHasher;

use super::phone_number::{MAX_RAW_LEN, PhoneNumber, PhoneNumberError, Region};

/// Buckets per thread, of two slots each: two texts that hash alike both stay; a third
/// replaces the older.
const BUCKET_BITS: u32 = 11;
const SLOTS: usize = 2 << BUCKET_BITS;

type Normalized = Result<PhoneNumber, PhoneNumberError>;

struct Slot {
    region: Region,
    raw: Box<str>,
    normalized: Normalized,
}

thread_local! {
    static MEMO: RefCell<Vec<Option<Slot>>> = RefCell::new((0..SLOTS).map(|_| None).collect());
}

/// `PhoneNumber::parse(raw, region)`, with recent results remembered per thread: for
/// lookups, where the same callers come back again and again.
pub fn parse_remembered(raw: &str, region: Region) -> Normalized {
    // Absurdly long texts are refused by the parse at once; not worth a slot.
    if raw.len() > MAX_RAW_LEN * 4 {
        return PhoneNumber::parse(raw, region);
    }
    let first = bucket(raw, region) * 2;
    let remembered = MEMO.with_borrow(|slots| {
        slots[first..first + 2]
            .iter()
            .flatten()
            .find(|s| s.region == region && *s.raw == *raw)
            .map(|s| s.normalized.clone())
    });
    if let Some(normalized) = remembered {
        return normalized;
    }
    let normalized = PhoneNumber::parse(raw, region);
    MEMO.with_borrow_mut(|slots| {
        // Newest first: the older of the two moves to the second slot, replacing it.
        slots.swap(first, first + 1);
        slots[first] = Some(Slot {
            region,
            raw: raw.into(),
            normalized: normalized.clone(),
        });
    });
    normalized
}

fn bucket(raw: &str, region: Region) -> usize {
    let mut hasher = FxBuildHasher.build_hasher();
    raw.hash(&mut hasher);
    region.hash(&mut hasher);
    // The high bits: FxHash mixes them best.
    (hasher.finish() >> (u64::BITS - BUCKET_BITS)) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembered_answers_equal_fresh_ones_per_region() {
        let ro = Region::parse("RO").unwrap();
        let us = Region::parse("US").unwrap();
        for raw in [
            "0721234567",
            "0721234567",
            "2025550123",
            "anonymous",
            "12",
            "abc",
            "",
        ] {
            for region in [ro, us, ro] {
                assert_eq!(
                    parse_remembered(raw, region),
                    PhoneNumber::parse(raw, region),
                    "{raw}"
                );
            }
        }
    }

    #[test]
    fn texts_sharing_a_slot_do_not_mix() {
        let ro = Region::parse("RO").unwrap();
        // Far more distinct texts than slots: collisions are certain.
        for round in 0..2 {
            for i in 0..(SLOTS as u32 * 3) {
                let raw = format!("07{:08}", i);
                assert_eq!(
                    parse_remembered(&raw, ro),
                    PhoneNumber::parse(&raw, ro),
                    "round {round}"
                );
            }
        }
    }
}
