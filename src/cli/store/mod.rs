//! `hermes-operator store ...`: the fleet's PostgreSQL (issue 20). So far
//! the audit log: move this host's events.db there, verify every host's
//! chain there (docs/design.md §13; README "Fleet").

mod checkpoint;
mod migrate;
mod verify;

use crate::cli::Ctx;
use crate::error::Result;

#[derive(Debug, clap::Subcommand)]
pub enum StoreCmd {
    /// Move this host's event log into PostgreSQL as it is (no event re-hashed); run again to move what came since
    Migrate(migrate::Args),
    /// Verify every host's chain in PostgreSQL (or one, --host), against fleet checkpoints
    Verify(verify::Args),
    /// Sign every host's head with this host's audit key; prints one line to keep off the database
    Checkpoint(checkpoint::Args),
}

pub fn run(ctx: &Ctx, cmd: StoreCmd) -> Result<()> {
    match cmd {
        StoreCmd::Migrate(a) => migrate::run(ctx, a),
        StoreCmd::Verify(a) => verify::run(ctx, a),
        StoreCmd::Checkpoint(a) => checkpoint::run(ctx, a),
    }
}
