//! The one place a contact write commits: [`Writer`] retries it, runs it in one
//! transaction (whose NOTIFY tells every instance), and makes this process forget what it
//! changed; the listener forgets through the same [`LocalCopies`] for other instances'
//! writes. PUT, DELETE, the batch, the CSV import and full snapshots all write through it,
//! and validate many items at once with [`validate_in_parallel`].

pub mod import;
mod parallel;
pub mod snapshot;
mod writer;

pub use parallel::validate_in_parallel;
pub use writer::{LocalCopies, WriteError, WriteTx, Writer};
