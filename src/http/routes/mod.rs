pub mod cdr;
pub mod contacts;
pub mod events;
pub mod health;
pub mod historic;
pub mod lookup;
pub mod pop;
pub mod profiles;
