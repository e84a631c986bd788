//! One integration-test binary: the gateway over HTTP against real PostgreSQL.

mod bounded;
mod browser;
mod call_caps;
mod calls;
mod cdr_bounds;
mod cli;
mod click2call;
mod config_file;
mod event_isolation;
mod fake_pbx;
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
mod snapshot;
mod sync;
mod tls;
