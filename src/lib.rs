//! cidgate: a caller-lookup and screen-pop gateway between PBXs and CRMs.
#![forbid(unsafe_code)]

pub mod cli;
pub mod config;
pub mod domain;
pub mod error;
pub mod http;
pub mod import;
pub mod lookup;
pub mod startup;
pub mod store;
pub mod telemetry;
