use crate::cli::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Username
    #[arg(add = crate::cli::completions::usernames())]
    pub name: String,
}

pub fn run(ctx: &Ctx, a: Args, disable: bool) -> crate::Result<()> {
    let u = crate::ops::accounts::set_disabled(&ctx.app, &a.name, disable)?;
    if ctx.out.json {
        return ctx.out.json(&u);
    }
    ctx.out.line(format!(
        "{} is {}",
        u.username,
        if u.disabled {
            "disabled; its tokens are revoked"
        } else {
            "enabled"
        }
    ))
}
