//! cidgate: a caller-lookup and screen-pop gateway between PBXs and CRMs.
#![forbid(unsafe_code)]

pub mod cache;
pub mod cli;
pub mod config;
pub mod config_file;
pub mod directory;
pub mod domain;
pub mod error;
pub mod http;
pub mod import;
pub mod known_numbers;
pub mod listener;
pub mod lookup;
pub mod lookup_batch;
pub mod lookup_log;
pub mod metrics;
pub mod popup;
pub mod rate_limit;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod views;
