use crate::cli::session::{cell, opt_cell, when};
use crate::cli::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Username
    #[arg(add = crate::cli::completions::usernames())]
    pub name: String,
    /// Read the fleet's database (store.url): the user's sessions and events on every host
    #[arg(long)]
    pub fleet: bool,
    /// With --fleet: only this host's
    #[arg(long, value_name = "NAME", requires = "fleet")]
    pub host: Option<String>,
}

pub fn run(ctx: &Ctx, a: Args) -> crate::Result<()> {
    if a.fleet {
        return fleet(ctx, &a);
    }
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
    print_events(ctx, r.recent_events.iter().map(|e| (None, e)))?;
    ctx.out.info(format!(
        "{} recent session(s), {} recent event(s)",
        r.recent_sessions.len(),
        r.recent_events.len()
    ));
    Ok(())
}

/// `--fleet`: the same report over every host, each row with its host.
fn fleet(ctx: &Ctx, a: &Args) -> crate::Result<()> {
    if let Some(h) = &a.host {
        crate::store::pg::check_host(h)?;
    }
    let pg = crate::ops::audit::fleet::connect_configured(&ctx.app)?;
    let r =
        crate::ops::audit::reports::user_report_fleet(&ctx.app, &pg, &a.name, a.host.as_deref())?;
    if ctx.out.json {
        return ctx.out.json(&r);
    }
    crate::cli::user::print_user(ctx, &r.user)?;
    ctx.out.line(format!(
        "operator sessions on {}: {} · tokens in/out: {}/{} · cost: ${:.4}",
        a.host.as_deref().unwrap_or("every host"),
        r.sessions.count,
        r.sessions.input_tokens,
        r.sessions.output_tokens,
        r.sessions.cost_usd
    ))?;
    let mut t = ctx
        .out
        .table(&["host", "session", "title", "started (UTC)", "msgs", "ended"]);
    for s in &r.recent_sessions {
        let text = |k: &str| s.info.get(k).and_then(|v| v.as_str()).map(str::to_string);
        t.add_row(vec![
            cell(&s.host, usize::MAX),
            cell(&text("id").unwrap_or_default(), usize::MAX),
            opt_cell(text("display_title").as_deref(), usize::MAX),
            when(text("started_at").as_deref()),
            s.info
                .get("message_count")
                .and_then(|v| v.as_i64())
                .unwrap_or(0)
                .to_string(),
            if s.info.get("ended_at").is_some_and(|v| !v.is_null()) {
                "yes"
            } else {
                "open"
            }
            .to_string(),
        ]);
    }
    ctx.out.print_table(&t)?;
    print_events(
        ctx,
        r.recent_events
            .iter()
            .map(|he| (Some(he.host.as_str()), &he.event)),
    )?;
    ctx.out.info(format!(
        "{} recent session(s), {} recent event(s) from the fleet's database",
        r.recent_sessions.len(),
        r.recent_events.len()
    ));
    Ok(())
}

/// The recent events table; with a host column when they carry one.
fn print_events<'a>(
    ctx: &Ctx,
    events: impl Iterator<Item = (Option<&'a str>, &'a crate::store::events::Event)>,
) -> crate::Result<()> {
    let events: Vec<_> = events.collect();
    let hosts = events.iter().any(|(h, _)| h.is_some());
    let head = ["seq", "time (UTC)", "type", "session", "actor", "details"];
    let mut t = if hosts {
        ctx.out.table(&[&["host"][..], &head[..]].concat())
    } else {
        ctx.out.table(&head)
    };
    for (host, ev) in events {
        let mut row = Vec::new();
        if hosts {
            row.push(cell(host.unwrap_or(""), usize::MAX));
        }
        row.extend([
            ev.seq.to_string(),
            ev.ts.get(..19).unwrap_or(&ev.ts).replace('T', " "),
            cell(&ev.kind, usize::MAX),
            opt_cell(ev.session_id.as_deref(), usize::MAX),
            cell(&ev.actor, usize::MAX),
            super::summarize(ev),
        ]);
        t.add_row(row);
    }
    ctx.out.print_table(&t)
}
