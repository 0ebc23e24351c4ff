//! hermes-operator: an independent operator control plane for a Hermes Agent
//! server. The binary (`src/main.rs`) is a thin shell over this library.
//!
//! Layers, top to bottom; each uses only the ones below it (ARCHITECTURE.md):

/// Front end: one file per subcommand (clap), printing tables or JSON.
pub mod cli;
/// Front end: the HTTP mode (axum): JSON API, SSE chat, the dashboard.
pub mod server;

/// The domain: accounts, credentials, sessions, chat, audit, hooks, update, install, doctor.
pub mod ops;

/// The context the domain works in: HERMES_HOME, the loaded config, the stores it opens.
pub mod app;

/// The operator's own databases (users.db, events.db) and Hermes' state.db, one module each.
pub mod store;

/// Everything specific to Hermes: API client, install discovery, its git checkout.
pub mod hermes;

/// Foundations every layer may use.
pub mod config;
pub mod crypto;
pub mod dotenv;
pub mod error;
pub mod home;
pub mod output;
pub mod process;
pub mod timespec;

pub use error::{Error, Kind, Result};
