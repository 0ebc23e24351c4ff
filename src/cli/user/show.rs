use crate::cli::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Username
    #[arg(add = crate::cli::completions::usernames())]
    pub name: String,
}

pub fn run(ctx: &Ctx, a: Args) -> crate::Result<()> {
    let u = ctx.app.users_ro()?.get(&a.name)?;
    super::print_user(ctx, &u)
}
