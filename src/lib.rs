//! cidgate: a caller-lookup and screen-pop gateway between PBXs and CRMs.
#![forbid(unsafe_code)]

pub mod admin;
pub mod calls;
pub mod cli;
pub mod config;
pub mod contacts;
pub mod dial;
pub mod domain;
pub mod http;
pub mod jobs;
pub mod live;
pub mod lookup;
pub mod metrics;
pub mod outbound;
pub mod phones;
pub mod popup;
pub mod reports;
pub mod sources;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod trust;
pub mod webhook;
