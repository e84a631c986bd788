//! Validated domain types: once built, a value is known to be well-formed.

mod contact;
mod crm_id;
mod phone_number;
mod tenant;
mod token;

pub use contact::{ContactInput, ContactRecord, FieldError};
pub use crm_id::CrmId;
pub use phone_number::{MAX_RAW_LEN, PhoneNumber, PhoneNumberError, Region};
pub use tenant::{TenantId, TenantSlug};
pub use token::{ApiToken, TokenHash, TokenScope};
