//! `hermes-operator serve` over real HTTP on loopback: authentication and
//! limits, the authorization matrix, schemathesis against the OpenAPI
//! document, chat through a real Hermes gateway, and the dashboard in headless
//! Chromium.

#[macro_use]
#[path = "../common/mod.rs"]
mod common;

mod authz;
mod boundary;
mod chat;
mod dashboard;
mod demo;
mod fuzz;
mod hardening;
mod http;
mod keys;
mod openai;
mod recheck;
mod totp;
