//! Calls: PBX events in (one adapter per dialect), call records out (DESIGN §7).

pub mod call_end;
pub mod cdr;
pub mod focalscope;
pub mod ingest;
