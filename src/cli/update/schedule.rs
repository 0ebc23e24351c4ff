use crate::cli::Ctx;
use crate::ops::update;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Five cron fields: minute hour day-of-month month day-of-week
    #[arg(default_value = update::DEFAULT_SCHEDULE, value_name = "CRON")]
    pub cron: String,
}

pub fn run(ctx: &Ctx, a: Args) -> crate::Result<()> {
    let ch = update::schedule(&ctx.app, &a.cron)?;
    if ctx.out.json {
        return ctx.out.json(&ch);
    }
    if ch.script_created {
        ctx.out.info(format!("wrote {}", ch.script));
    }
    let line = ch.line.clone().unwrap_or_default();
    if ch.changed {
        ctx.out
            .info(format!("scheduled in your crontab:\n  {line}"));
        for r in &ch.removed {
            ctx.out.info(format!("replaced: {r}"));
        }
    } else {
        ctx.out
            .info(format!("already scheduled; nothing changed:\n  {line}"));
    }
    ctx.out.line(line)
}
