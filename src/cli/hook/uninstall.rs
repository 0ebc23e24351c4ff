use crate::cli::Ctx;
use crate::ops::hooks;
use crate::store::events::EventKind;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Do not ask for confirmation
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Print the change (a diff of config.yaml) and change nothing
    #[arg(long)]
    pub dry_run: bool,
}

pub fn run(ctx: &Ctx, a: Args) -> crate::Result<()> {
    let plan = hooks::plan_uninstall(&ctx.app.home)?;
    super::execute(ctx, plan, a.yes, a.dry_run, EventKind::HookUninstalled)
}
