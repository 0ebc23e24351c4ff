use crate::cli::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Session id (op_...)
    #[arg(add = crate::cli::completions::session_ids())]
    pub session: String,
    /// Read the fleet's database (store.url): the session on whichever host holds it
    #[arg(long)]
    pub fleet: bool,
    /// With --fleet: only this host's events
    #[arg(long, value_name = "NAME", requires = "fleet")]
    pub host: Option<String>,
}

pub fn run(ctx: &Ctx, a: Args) -> crate::Result<()> {
    if a.fleet {
        return fleet(ctx, &a);
    }
    let r = crate::ops::audit::integrity::replay(&ctx.app, &a.session)?;
    let all_ok = r.integrity == "ok";
    let rows = &r.events;
    if ctx.out.json {
        ctx.out.json(&r)?;
    } else {
        let mut t = ctx
            .out
            .table(&["seq", "time (UTC)", "type", "actor", "", "details"]);
        for r in rows {
            t.add_row(vec![
                r.event.seq.to_string(),
                r.event
                    .ts
                    .get(..19)
                    .unwrap_or(&r.event.ts)
                    .replace('T', " "),
                r.event.kind.clone(),
                crate::output::sanitize(&r.event.actor),
                if r.integrity == "ok" { "✓" } else { "✗" }.to_string(),
                super::summarize(&r.event),
            ]);
        }
        ctx.out.print_table(&t)?;
        ctx.out.info(format!(
            "{} event(s); integrity: {}",
            rows.len(),
            if all_ok {
                "ok (run `audit verify` for the whole chain)"
            } else {
                "FAILED"
            }
        ));
    }
    verdict(all_ok, &a.session, None)
}

/// `--fleet`: the same timeline from PostgreSQL, with each event's host.
fn fleet(ctx: &Ctx, a: &Args) -> crate::Result<()> {
    if let Some(h) = &a.host {
        crate::store::pg::check_host(h)?;
    }
    let pg = crate::ops::audit::fleet::connect_configured(&ctx.app)?;
    let r = crate::ops::audit::fleet::replay(&pg, &a.session, a.host.as_deref())?;
    let all_ok = r.integrity == "ok";
    if ctx.out.json {
        ctx.out.json(&r)?;
    } else {
        let mut t = ctx
            .out
            .table(&["host", "seq", "time (UTC)", "type", "actor", "", "details"]);
        for row in &r.events {
            let ev = &row.event.event;
            t.add_row(vec![
                row.event.host.clone(),
                ev.seq.to_string(),
                ev.ts.get(..19).unwrap_or(&ev.ts).replace('T', " "),
                ev.kind.clone(),
                crate::output::sanitize(&ev.actor),
                if row.integrity == "ok" { "✓" } else { "✗" }.to_string(),
                super::summarize(ev),
            ]);
        }
        ctx.out.print_table(&t)?;
        ctx.out.info(format!(
            "{} event(s) from {}; integrity: {}",
            r.events.len(),
            pg.target,
            if all_ok {
                "ok (run `store verify` for every whole chain)"
            } else {
                "FAILED"
            }
        ));
    }
    verdict(all_ok, &a.session, Some(&pg.target))
}

/// Exit 3 when an event of the timeline does not verify (`in`: the fleet's database).
fn verdict(all_ok: bool, session: &str, r#in: Option<&str>) -> crate::Result<()> {
    if all_ok {
        return Ok(());
    }
    Err(crate::Error::integrity(format!(
        "session {session} has events that do not verify{}",
        r#in.map(|t| format!(" in {t}")).unwrap_or_default()
    )))
}
