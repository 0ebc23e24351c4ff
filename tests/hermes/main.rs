//! Integration with the real Hermes Agent, each test once per generation
//! (0.19.0 and 0.22.2): the test harness itself, the gateway's `/v1/runs`
//! behaviour, `chat`, the shell hook, `session`/`audit` commands against
//! Hermes-written state.db files, `install` + `doctor`, and `update` on pip
//! and git installs.

// The scenario tests are still long (issue 21: split them into steps);
// until then this binary is exempt from the length lint the library obeys.
#![allow(
    clippy::too_many_lines,
    reason = "scenario tests not yet split into steps (issue 21)"
)]

#[macro_use]
#[path = "../common/mod.rs"]
mod common;

mod chat;
mod gateway_smoke;
mod harness_smoke;
mod hooks;
mod install_doctor;
mod readme_recipe;
mod state_cli;
mod tables;
mod update;
mod update_git;
