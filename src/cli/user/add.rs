use crate::cli::values::RoleArg;
use crate::cli::{read_new_password, Ctx};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Username: 1-64 letters, digits, '.', '_' or '-'
    pub name: String,
    /// Role of the new account
    #[arg(long, value_enum)]
    pub role: RoleArg,
    /// Read the password from the first line of stdin instead of prompting
    #[arg(long)]
    pub password_stdin: bool,
}

pub fn run(ctx: &Ctx, a: Args) -> crate::Result<()> {
    crate::store::users::validate_username(&a.name)?;
    let pw = read_new_password(a.password_stdin, &a.name)?;
    let u = crate::ops::accounts::add_user(&ctx.app, &a.name, a.role.into(), &pw)?;
    if ctx.out.json {
        return ctx.out.json(&u);
    }
    ctx.out.line(format!(
        "created user {} ({}) with id {}",
        u.username, u.role, u.id
    ))
}
