//! A batch of contact writes and what became of it: each write's result, and the numbers
//! whose answer changed.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::contact::{ContactInput, FieldError};
use super::crm_id::CrmId;

/// One write in a batch.
#[derive(Debug, Clone)]
pub enum WriteOp {
    Upsert(CrmId, Box<ContactInput>),
    /// A delete may carry the source time of the deletion, so an older delete cannot
    /// remove a newer record.
    Delete(CrmId, Option<DateTime<Utc>>),
}

impl WriteOp {
    /// An upsert from a separately validated id and body, with every problem of both.
    pub fn upsert(
        id: Result<CrmId, FieldError>,
        input: Result<ContactInput, Vec<FieldError>>,
    ) -> Result<Self, Vec<FieldError>> {
        match (id, input) {
            (Ok(id), Ok(input)) => Ok(Self::Upsert(id, Box::new(input))),
            (id, input) => Err(id
                .err()
                .into_iter()
                .chain(input.err().unwrap_or_default())
                .collect()),
        }
    }

    /// The contact the write is for.
    pub fn id(&self) -> &CrmId {
        match self {
            Self::Upsert(id, _) | Self::Delete(id, _) => id,
        }
    }
}

/// What happened to one write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WriteResult {
    Created,
    Updated,
    Deleted,
    /// A delete of a contact that was not there: fine, deletes are idempotent.
    Absent,
    /// Older than what is stored: ignored.
    Stale,
}

/// The outcome of a batch: one result per op, and every number whose answer changed
/// (old and new numbers of each touched contact) for cache invalidation.
#[derive(Debug, Default)]
pub struct WriteOutcome {
    pub results: Vec<WriteResult>,
    pub numbers: ChangedNumbers,
}

/// The numbers a write changed the answer for.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ChangedNumbers {
    /// Taken off a contact: they may belong to nobody now.
    pub released: Vec<String>,
    /// Written to a contact: they belong to one when the write commits.
    pub claimed: Vec<String>,
}

impl ChangedNumbers {
    /// Sorts and deduplicates; a number both released and claimed is claimed.
    pub fn settle(&mut self) {
        self.claimed.sort_unstable();
        self.claimed.dedup();
        self.released.sort_unstable();
        self.released.dedup();
        self.released
            .retain(|n| self.claimed.binary_search(n).is_err());
    }

    /// Every changed number, for cache invalidation.
    pub fn all(&self) -> impl Iterator<Item = &String> {
        self.released.iter().chain(&self.claimed)
    }
}

/// A write that would take a tenant past its cap on stored phone numbers
/// (`tenant set --max-numbers`); nothing of it is written.
#[derive(Debug, thiserror::Error)]
#[error(
    "the tenant may store at most {cap} phone numbers (tenant set --max-numbers); this write would make it {would_hold}"
)]
pub struct OverNumberCap {
    pub cap: i64,
    pub would_hold: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_number_released_and_claimed_in_one_write_is_claimed() {
        let mut changed = ChangedNumbers {
            released: vec!["+402".into(), "+401".into(), "+402".into()],
            claimed: vec!["+402".into(), "+403".into()],
        };
        changed.settle();
        assert_eq!(changed.released, ["+401"]);
        assert_eq!(changed.claimed, ["+402", "+403"]);
    }
}
