use crate::cli::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Username
    #[arg(add = crate::cli::completions::usernames())]
    pub name: String,
    /// Do not ask for confirmation
    #[arg(long, short = 'y')]
    pub yes: bool,
}

pub fn run(ctx: &Ctx, a: Args) -> crate::Result<()> {
    let u = ctx.app.users()?.get(&a.name)?;
    if !ctx.confirm(&format!("Delete user {} ({})?", u.username, u.role), a.yes)? {
        return Err(crate::Error::usage("cancelled; nothing was changed"));
    }
    let u = crate::ops::accounts::delete_user(&ctx.app, &a.name)?;
    ctx.out.info(format!(
        "deleted {} ({}); its sessions stay in state.db under user_id {}",
        u.username, u.role, u.id
    ));
    Ok(())
}
