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

/// Everything specific to OpenID Connect: discovery, tokens, ID-token verification.
pub mod oidc;

/// Foundations every layer may use.
pub mod config;
pub mod crypto;
pub mod dotenv;
pub mod error;
pub mod home;
pub mod net;
pub mod output;
pub mod process;
pub mod timespec;

pub use error::{Error, Kind, Result};

/// The layers above, checked on the source: no layer names one above it
/// (outside its tests), and nothing below the front ends uses a front-end
/// crate. One crate keeps builds incremental and simple; this test is what
/// a workspace split would have made the compiler check (ARCHITECTURE.md).
#[cfg(test)]
mod layers {
    use std::path::Path;

    /// The code of every `.rs` file under `dir` (or the file), without its
    /// `#[cfg(test)]` part and without comment lines.
    fn code(path: &Path) -> Vec<(String, String)> {
        if path.is_dir() {
            let mut out = Vec::new();
            for e in std::fs::read_dir(path).unwrap() {
                out.extend(code(&e.unwrap().path()));
            }
            return out;
        }
        if path.extension().is_none_or(|e| e != "rs") {
            return Vec::new();
        }
        let text = std::fs::read_to_string(path).unwrap();
        let text = text.split("#[cfg(test)]").next().unwrap_or_default();
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect();
        vec![(path.display().to_string(), lines.join("\n"))]
    }

    fn refuse(modules: &[&str], names: &[&str]) {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        for m in modules {
            for (file, text) in code(&src.join(m)) {
                for n in names {
                    assert!(
                        !text.contains(n),
                        "{file} uses {n}: a layer above it (ARCHITECTURE.md)"
                    );
                }
            }
        }
    }

    const FOUNDATIONS: [&str; 9] = [
        "config.rs",
        "crypto.rs",
        "dotenv.rs",
        "error.rs",
        "home.rs",
        "net.rs",
        "output.rs",
        "process.rs",
        "timespec.rs",
    ];

    #[test]
    fn no_layer_reaches_up() {
        let front = [
            "crate::cli",
            "crate::server",
            "axum::",
            "clap::",
            "rustyline",
            "dialoguer::",
        ];
        refuse(&["ops", "app.rs", "store", "hermes", "oidc.rs"], &front);
        refuse(
            &["store", "hermes", "oidc.rs"],
            &["crate::ops", "crate::app"],
        );
        let mut below = front.to_vec();
        below.extend(["crate::ops", "crate::app", "crate::store", "crate::hermes"]);
        // output.rs asks the terminal for its width (dialoguer's console).
        below.retain(|n| *n != "dialoguer::");
        refuse(&FOUNDATIONS, &below);
    }
}
