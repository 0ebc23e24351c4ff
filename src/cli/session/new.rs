use crate::cli::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The operator user who owns the session (role admin or user)
    #[arg(long = "as", value_name = "USERNAME", add = crate::cli::completions::usernames())]
    pub as_user: String,
}

pub fn run(ctx: &Ctx, a: Args) -> crate::Result<()> {
    let s = crate::ops::sessions::new_session(&ctx.app, &a.as_user)?;
    if ctx.out.json {
        return ctx.out.json(&s);
    }
    ctx.out.line(&s.session.id)?;
    ctx.out.info(format!(
        "created operator session for {}",
        s.username.as_deref().unwrap_or("?")
    ));
    Ok(())
}
