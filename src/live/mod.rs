//! This instance's live view of the database: the `LISTEN`/`NOTIFY` listener and the
//! in-memory directory of tenants and tokens it keeps current.

pub mod directory;
pub mod listener;
