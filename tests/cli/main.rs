//! Command-line tests that need no Hermes install: accounts, config and
//! bad-input rules, the event log's integrity and the committed CLI
//! reference. This binary plus `cargo test --lib` is the fast tier (README,
//! "Development").

#[macro_use]
#[path = "../common/mod.rs"]
mod common;

mod audit_tamper;
mod docs;
mod doctor_network;
mod empty_state;
mod users;
