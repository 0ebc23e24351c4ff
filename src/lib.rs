//! hermes-operator: an independent operator control plane for a Hermes Agent
//! server. The binary (`src/main.rs`) is a thin shell over this library.
//!
//! Layers, top to bottom (each uses only the ones below it):

/// Front end: one file per subcommand (clap), printing tables or JSON.
pub mod cli;
/// Everything specific to Hermes: API client, install discovery, its git checkout.
pub mod hermes;
/// The domain: accounts, credentials, sessions, chat, audit, hooks, update, install, doctor.
pub mod ops;
/// Front end: the HTTP mode (axum): JSON API, SSE chat, the dashboard.
pub mod server;
/// The operator's own databases (users.db, events.db) and Hermes' state.db.
pub mod store;

/// Shared foundations: the loaded home and config, errors, output, time.
pub mod app;
pub mod config;
pub mod error;
pub mod home;
pub mod output;
pub mod process;
pub mod timespec;

pub use error::{Error, Kind, Result};
