//! The lookup's query parsing must never panic on any query string, and whatever it
//! accepts must lead to a caller or a clear error.
#![no_main]

use cidgate::domain::Region;
use cidgate::lookup::{Caller, LookupQuery};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(query) = std::str::from_utf8(data) else { return };
    if let Ok(parsed) = LookupQuery::parse(query) {
        let region = Region::parse("RO").unwrap();
        let _ = Caller::from_param(parsed.telephone.as_deref(), region);
    }
});
