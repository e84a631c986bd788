pub mod contacts;
pub mod health;
pub mod lookup;
pub mod pop;
