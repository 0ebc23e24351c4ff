use crate::cli::Ctx;
use serde_json::json;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Username (it need not exist: attackers try names that do not)
    pub name: String,
}

pub fn run(ctx: &Ctx, a: Args) -> crate::Result<()> {
    let cleared = crate::ops::accounts::unlock(&ctx.app, &a.name)?;
    if ctx.out.json {
        return ctx
            .out
            .json(&json!({"username": a.name, "attempts_cleared": cleared}));
    }
    ctx.out.line(format!(
        "{}: {cleared} recorded password attempt(s) cleared; logins are no longer throttled",
        crate::output::sanitize(&a.name)
    ))
}
