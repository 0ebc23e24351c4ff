use crate::cli::values::RoleArg;
use crate::cli::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Username
    #[arg(add = crate::cli::completions::usernames())]
    pub name: String,
    /// The new role
    #[arg(value_enum)]
    pub role: RoleArg,
}

pub fn run(ctx: &Ctx, a: Args) -> crate::Result<()> {
    let u = crate::ops::accounts::set_role(&ctx.app, &a.name, a.role.into())?;
    if ctx.out.json {
        return ctx.out.json(&u);
    }
    ctx.out.line(format!(
        "{} is now {}; earlier tokens are revoked",
        u.username, u.role
    ))
}
