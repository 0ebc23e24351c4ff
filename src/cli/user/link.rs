//! `user link` / `user unlink`: an admin's choice to let a provider's user
//! log in as an existing local account (single sign-on never takes over
//! an account by a matching name or email on its own).

use crate::cli::Ctx;

#[derive(Debug, clap::Args)]
pub struct LinkArgs {
    /// Username
    #[arg(add = crate::cli::completions::usernames())]
    pub name: String,
    /// The provider's `sub` (subject) of that user
    #[arg(long)]
    pub subject: String,
    /// The provider's issuer URL (default: auth.oidc.issuer)
    #[arg(long, value_name = "URL")]
    pub issuer: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct UnlinkArgs {
    /// Username
    #[arg(add = crate::cli::completions::usernames())]
    pub name: String,
}

pub fn link(ctx: &Ctx, a: LinkArgs) -> crate::Result<()> {
    let u = crate::ops::sso::link(&ctx.app, &a.name, a.issuer.as_deref(), &a.subject)?;
    if ctx.out.json {
        return ctx.out.json(
            &serde_json::json!({"username": u.username, "subject": a.subject, "linked": true}),
        );
    }
    ctx.out.line(format!(
        "{} now logs in with single sign-on as subject {:?}; its role follows auth.oidc.role_map from the next login",
        u.username, a.subject
    ))
}

pub fn unlink(ctx: &Ctx, a: UnlinkArgs) -> crate::Result<()> {
    let u = crate::ops::sso::unlink(&ctx.app, &a.name)?;
    if ctx.out.json {
        return ctx
            .out
            .json(&serde_json::json!({"username": u.username, "linked": false}));
    }
    ctx.out.line(format!(
        "{} is no longer linked to single sign-on; its SSO logins are revoked",
        u.username
    ))
}
