use crate::cli::values::RoleArg;
use crate::cli::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Username
    pub name: String,
    /// The new role
    #[arg(value_enum)]
    pub role: RoleArg,
}

pub fn run(ctx: &Ctx, a: Args) -> crate::Result<()> {
    let u = crate::ops::accounts::set_role(&ctx.app, &a.name, a.role.into())?;
    ctx.out.info(format!("{} is now {}", u.username, u.role));
    super::print_user(ctx, &u)
}
