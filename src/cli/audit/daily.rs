use crate::cli::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_ctx: &Ctx, _a: Args) -> crate::Result<()> {
    Err(crate::Error::internal("audit daily is not built yet"))
}
