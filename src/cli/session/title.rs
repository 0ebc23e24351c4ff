use super::{cell, opt_cell};
use crate::cli::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Operator session id (op_...)
    #[arg(add = crate::cli::completions::session_ids())]
    pub id: String,
    /// New title (Hermes' rules: cleaned, max 100 characters, unique); "" clears it
    pub title: String,
}

pub fn run(ctx: &Ctx, a: Args) -> crate::Result<()> {
    let r = crate::ops::sessions::set_title(&ctx.app, &a.id, &a.title)?;
    if ctx.out.json {
        return ctx.out.json(&r);
    }
    let id = cell(&r.session.session.id, 40);
    if r.changed {
        ctx.out.line(format!(
            "title of {id}: {} → {}",
            opt_cell(r.from.as_deref(), 100),
            opt_cell(r.to.as_deref(), 100)
        ))
    } else {
        ctx.out.line(format!("title of {id} unchanged"))
    }
}
