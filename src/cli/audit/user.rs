use crate::cli::session::{cell, opt_cell, when};
use crate::cli::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Username
    #[arg(add = crate::cli::completions::usernames())]
    pub name: String,
}

pub fn run(ctx: &Ctx, a: Args) -> crate::Result<()> {
    ctx.state_notice();
    let r = crate::ops::audit::reports::user_report(&ctx.app, &a.name)?;
    if ctx.out.json {
        return ctx.out.json(&r);
    }
    crate::cli::user::print_user(ctx, &r.user)?;
    ctx.out.line(format!(
        "operator sessions: {} · tokens in/out: {}/{} · cost: ${:.4}",
        r.sessions.count, r.sessions.input_tokens, r.sessions.output_tokens, r.sessions.cost_usd
    ))?;
    let mut t = ctx.out.table(&[
        "session",
        "title",
        "started (UTC)",
        "msgs",
        "cost $",
        "ended",
    ]);
    for i in &r.recent_sessions {
        let s = &i.session;
        t.add_row(vec![
            cell(&s.id, usize::MAX),
            // Whole: a terminal's table cuts to fit, a pipe gets every character.
            opt_cell(s.title.as_deref(), usize::MAX),
            when(s.started_at.as_deref()),
            s.message_count.to_string(),
            format!("{:.4}", s.cost_usd()),
            if s.ended_at.is_some() { "yes" } else { "open" }.to_string(),
        ]);
    }
    ctx.out.print_table(&t)?;
    let mut t = ctx
        .out
        .table(&["seq", "time (UTC)", "type", "session", "actor", "details"]);
    for ev in &r.recent_events {
        t.add_row(vec![
            ev.seq.to_string(),
            ev.ts.get(..19).unwrap_or(&ev.ts).replace('T', " "),
            cell(&ev.kind, usize::MAX),
            opt_cell(ev.session_id.as_deref(), usize::MAX),
            cell(&ev.actor, usize::MAX),
            super::summarize(ev),
        ]);
    }
    ctx.out.print_table(&t)?;
    ctx.out.info(format!(
        "{} recent session(s), {} recent event(s)",
        r.recent_sessions.len(),
        r.recent_events.len()
    ));
    Ok(())
}
