//! Everything specific to Hermes Agent, in one place: its API server client
//! ([`api`]) and the event stream format it speaks ([`sse`]), where it is installed and which version runs ([`install`]),
//! what its git checkout and remote hold ([`git`]), and where its API server
//! listens ([`network`]), and its settings the operator enforces against
//! ([`settings`]). Hermes' config.yaml
//! edits for shell hooks live with the hook domain (`crate::ops::hooks`),
//! which owns what the entries mean.

pub mod api;
pub mod git;
pub mod install;
pub mod network;
pub mod settings;
pub mod sse;
