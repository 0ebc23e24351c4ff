use crate::cli::{read_new_password, Ctx};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Username
    #[arg(add = crate::cli::completions::usernames())]
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
    let set = crate::ops::accounts::set_password(&ctx.app, &a.name, &pw, a.must_change)?;
    if ctx.out.json {
        return ctx.out.json(&set);
    }
    let keys = match set.keys_revoked {
        0 if a.must_change => "; it had no personal API keys to revoke".to_string(),
        0 => String::new(),
        1 => "; 1 personal API key revoked".to_string(),
        n => format!("; {n} personal API keys revoked"),
    };
    // One line on stdout, as the other account changes print theirs.
    ctx.out.line(format!(
        "password changed for {}; earlier tokens are revoked{keys}{}",
        set.user.username,
        if a.must_change {
            "; the next login must choose a new one"
        } else {
            ""
        }
    ))
}
