//! Supervised background tasks and the retention schedule.

mod backoff;
pub mod retention;
mod supervisor;

pub use backoff::Backoff;
pub use supervisor::{Killed, Readiness, Statuses, Supervisor, TaskState, TaskStatus};
