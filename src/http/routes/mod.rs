//! The handlers, one file per area; each registers its own routes (`configure`).

pub mod agent_login;
pub mod agents;
pub mod cdr;
pub mod click2call;
pub mod contacts;
pub mod events;
pub mod health;
pub mod historic;
pub mod lookup;
pub mod openapi;
pub mod phones;
pub mod pop;
pub mod profiles;
pub mod sources;
pub mod spam;

use actix_web::web;

/// The route table: every area's routes, the lookup's first (resources are matched in
/// the order they were registered).
pub fn configure(cfg: &mut web::ServiceConfig) {
    lookup::configure(cfg);
    contacts::configure(cfg);
    health::configure(cfg);
    events::configure(cfg);
    historic::configure(cfg);
    profiles::configure(cfg);
    sources::configure(cfg);
    agents::configure(cfg);
    click2call::configure(cfg);
    agent_login::configure(cfg);
    cdr::configure(cfg);
    spam::configure(cfg);
    phones::configure(cfg);
    openapi::configure(cfg);
    pop::configure(cfg);
}
