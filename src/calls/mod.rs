//! Calls: PBX events in (one adapter per dialect), call records out (DESIGN §7).

pub mod cdr;
pub mod ingest;
