//! One integration-test binary: the gateway over HTTP against real PostgreSQL.

mod browser;
mod calls;
mod cli;
mod config_file;
mod fields;
mod hardening;
mod helpers;
mod jobs;
mod lookup;
mod openapi;
mod popup;
mod profiles;
mod proxy;
mod reports;
mod resilience;
mod security;
mod sync;
mod tls;
