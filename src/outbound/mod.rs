//! The one way out (DESIGN §6): the HTTP clients that reach other systems (web-service
//! deliveries, the HTTP dialer, next CRM sources), the TLS roots they and the database
//! connection verify servers with, and the SSRF guard with its per-tenant allowed
//! networks (`CIDGATE_WEBHOOK_ALLOW_NETWORKS`, `CIDR@tenant`). Names are resolved through
//! [`Resolver`] (the system's in production), checked, and connected to as checked.

mod client;
pub mod guard;
pub mod resolve;
pub mod tls;

pub use client::{Client, Clients, Network, Settings, describe, refusal};
pub use guard::{Guard, Refused, forbidden_kind};
pub use resolve::{Resolver, SystemResolver};
