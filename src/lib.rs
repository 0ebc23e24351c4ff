//! hermes-operator: an independent operator control plane for a Hermes Agent
//! server. The binary (`src/main.rs`) is a thin shell over this library; the
//! HTTP mode calls the same functions.

pub mod accounts;
pub mod app;
pub mod auth;
pub mod chat;
pub mod cli;
pub mod config;
pub mod doctor;
pub mod error;
pub mod hermes;
pub mod hermes_api;
pub mod home;
pub mod hooks;
pub mod install;
pub mod integrity;
pub mod output;
pub mod reports;
pub mod restore;
pub mod server;
pub mod sessions;
pub mod store;
pub mod timespec;
pub mod update;

pub use error::{Error, Kind, Result};
