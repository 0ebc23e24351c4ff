use crate::cli::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Username
    #[arg(add = crate::cli::completions::usernames())]
    pub name: String,
}

pub fn run(ctx: &Ctx, a: Args) -> crate::Result<()> {
    let u = ctx.app.users_ro()?.get(&a.name)?;
    // Single sign-on: which provider user logs in as this account, if any.
    let sso = crate::ops::sso::identity(&ctx.app, &u)?;
    if ctx.out.json {
        let mut v = serde_json::to_value(&u).expect("a user serializes");
        v["sso"] = serde_json::to_value(&sso).expect("an identity serializes");
        return ctx.out.json(&v);
    }
    super::print_user(ctx, &u)?;
    if let Some(i) = sso {
        ctx.out.line(format!(
            "single sign-on: subject {:?} of {} (linked by {} at {})",
            i.subject, i.issuer, i.linked_by, i.linked_at
        ))?;
    }
    Ok(())
}
