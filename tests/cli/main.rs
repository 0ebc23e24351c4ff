//! Command-line tests that need no Hermes install: accounts, config and
//! bad-input rules, the event log's integrity, the committed CLI
//! reference, shell completion and `serve` on a busy port. This binary
//! plus `cargo test --lib` is the fast tier (README, "Development").

// The scenario tests are still long (issue 21: split them into steps);
// until then this binary is exempt from the length lint the library obeys.
#![allow(
    clippy::too_many_lines,
    reason = "scenario tests not yet split into steps (issue 21)"
)]

#[macro_use]
#[path = "../common/mod.rs"]
mod common;

mod audit_tamper;
mod audit_usage;
mod boundary;
mod chat_commands;
mod completions;
mod docs;
mod doctor_network;
mod empty_state;
mod fleet_audit;
mod fleet_users;
mod hermes_env;
mod schemas;
mod serve_port;
mod users;
