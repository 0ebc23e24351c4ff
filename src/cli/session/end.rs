use super::cell;
use crate::cli::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Operator session id (op_...)
    pub id: String,
    /// Why (stored as Hermes' end_reason)
    #[arg(long, default_value = crate::ops::sessions::DEFAULT_END_REASON)]
    pub reason: String,
}

pub fn run(ctx: &Ctx, a: Args) -> crate::Result<()> {
    let r = crate::ops::sessions::end(&ctx.app, &a.id, &a.reason)?;
    if ctx.out.json {
        return ctx.out.json(&r);
    }
    super::print_session(ctx, &r.session)?;
    if r.changed {
        ctx.out
            .info(format!("ended {}", cell(&r.session.session.id, 40)));
    } else {
        ctx.out
            .info("already ended; unchanged (the first end wins, as in Hermes)");
    }
    Ok(())
}
