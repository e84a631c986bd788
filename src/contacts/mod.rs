//! Contact writes from outside the sync API: the CSV import. The one place where a
//! contact write commits (retries, transaction, notification, invalidation) belongs here.

pub mod import;
