//! `hermes-operator serve` over real HTTP on loopback: authentication and
//! limits, the authorization matrix, schemathesis against the OpenAPI
//! document, chat through a real Hermes gateway, and the dashboard in headless
//! Chromium.

// The scenario tests are still long (issue 21: split them into steps);
// until then this binary is exempt from the length lint the library obeys.
#![allow(
    clippy::too_many_lines,
    reason = "scenario tests not yet split into steps (issue 21)"
)]

#[macro_use]
#[path = "../common/mod.rs"]
mod common;

mod authz;
mod boundary;
mod chat;
mod dashboard;
mod demo;
mod fleet;
mod fleet_replicas;
mod fuzz;
mod hardening;
mod http;
mod keys;
mod openai;
mod recheck;
mod sso;
mod totp;
mod usage;
