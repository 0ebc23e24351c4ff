use crate::cli::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Username
    #[arg(add = crate::cli::completions::usernames())]
    pub name: String,
    /// Lifetime in minutes (default 120, at most 43200 = 30 days)
    #[arg(long, default_value_t = crate::ops::credentials::ACCESS_TTL_MINUTES)]
    pub ttl: i64,
}

pub fn run(ctx: &Ctx, a: Args) -> crate::Result<()> {
    let (token, claims) = crate::ops::accounts::issue_token(&ctx.app, &a.name, a.ttl)?;
    if ctx.out.json {
        return ctx.out.json(&serde_json::json!({
            "token": token,
            "token_type": "bearer",
            "expires_at": claims.exp,
            "username": claims.username,
            "role": claims.role,
        }));
    }
    ctx.out.line(token)
}
