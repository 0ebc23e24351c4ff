//! What the operator knows about Hermes itself, in one place: where it is
//! installed and which version runs ([`install`]), what its git checkout
//! and remote hold ([`git`]). (The API client and the
//! config edits still live in `src/hermes_api.rs` and `src/hooks.rs`.)

pub mod git;
pub mod install;
