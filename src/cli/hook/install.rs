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
    let home = &ctx.app.home;
    let command = hooks::hook_command(home)?;
    let plan = hooks::plan_install(home, &command)?;
    super::execute(ctx, plan, a.yes, a.dry_run, EventKind::HookInstalled)
}
