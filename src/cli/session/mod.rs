//! `hermes-operator session ...` (placeholder).
use crate::cli::Ctx;

#[derive(Debug, clap::Subcommand)]
pub enum SessionCmd {}

pub fn run(_ctx: &Ctx, cmd: SessionCmd) -> crate::Result<()> {
    match cmd {}
}
