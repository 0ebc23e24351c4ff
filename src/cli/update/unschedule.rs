use crate::cli::Ctx;
use crate::ops::update;

pub fn run(ctx: &Ctx) -> crate::Result<()> {
    let ch = update::unschedule(&ctx.app)?;
    if ctx.out.json {
        return ctx.out.json(&ch);
    }
    if ch.changed {
        for r in &ch.removed {
            ctx.out.info(format!("removed from your crontab: {r}"));
        }
    } else {
        ctx.out
            .info("no scheduled update for this HERMES_HOME; nothing changed");
    }
    Ok(())
}
