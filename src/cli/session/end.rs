use super::cell;
use crate::cli::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Operator session id (op_...)
    #[arg(add = crate::cli::completions::session_ids())]
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
    let id = cell(&r.session.session.id, 40);
    if r.changed {
        ctx.out.line(format!("ended {id}"))
    } else {
        ctx.out.line(format!(
            "{id} had already ended; unchanged (the first end wins, as in Hermes)"
        ))
    }
}
