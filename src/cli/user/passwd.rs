use crate::cli::{read_new_password, Ctx};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Username
    pub name: String,
    /// Read the new password from the first line of stdin instead of prompting
    #[arg(long)]
    pub password_stdin: bool,
    /// A reset: the user must choose a new password at their next login
    #[arg(long)]
    pub must_change: bool,
}

pub fn run(ctx: &Ctx, a: Args) -> crate::Result<()> {
    // Fail on an unknown user before asking for a password.
    ctx.app.users()?.get(&a.name)?;
    let pw = read_new_password(a.password_stdin, &a.name)?;
    let u = crate::ops::accounts::set_password(&ctx.app, &a.name, &pw, a.must_change)?;
    ctx.out.info(format!(
        "password changed for {}; earlier tokens are revoked{}",
        u.username,
        if a.must_change {
            "; the next login must choose a new one"
        } else {
            ""
        }
    ));
    Ok(())
}
