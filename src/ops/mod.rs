//! The domain layer: what the operator does, as library calls both front
//! ends (`crate::cli`, `crate::server`) share. Nothing here knows clap, axum
//! or terminal prompts; it works on the stores (`crate::store`) and talks to
//! Hermes through its adapter (`crate::hermes`).

pub mod accounts;
pub mod audit;
pub mod boundary;
pub mod chat;
pub mod credentials;
pub mod demo;
pub mod doctor;
pub mod fleet;
pub mod hooks;
pub mod install;
pub mod keys;
pub mod logins;
pub mod openai;
pub mod sessions;
pub mod sso;
pub mod standing;
pub mod totp;
pub mod update;
