//! The event log's proofs (signing key, checkpoints, `verify`) and the
//! reports built from it and state.db (`audit daily`, `audit user`, usage
//! over time).

pub mod browse;
pub mod fleet;
pub mod integrity;
pub mod reports;
pub mod usage;
