use crate::cli::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Session id (op_...)
    #[arg(add = crate::cli::completions::session_ids())]
    pub session: String,
}

pub fn run(ctx: &Ctx, a: Args) -> crate::Result<()> {
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
    if all_ok {
        Ok(())
    } else {
        Err(crate::Error::integrity(format!(
            "session {} has events that do not verify",
            a.session
        )))
    }
}
