use super::{cell, opt_cell, when};
use crate::cli::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Words to find (plain text: FTS operators are not interpreted; max 512 bytes)
    pub query: String,
    /// Only sessions of this operator user (username)
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
    /// At most this many hits
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(i64).range(1..=1000))]
    pub limit: i64,
    /// Search Hermes' own sessions too (every source)
    #[arg(long)]
    pub all_sources: bool,
}

pub fn run(ctx: &Ctx, a: Args) -> crate::Result<()> {
    ctx.state_notice();
    let user_id = a
        .user
        .as_deref()
        .map(|u| super::user_id_of(ctx, u))
        .transpose()?;
    let scope = super::scope(a.all_sources);
    let found =
        crate::ops::sessions::search(&ctx.app, &scope, &a.query, user_id.as_deref(), a.limit)?;
    let hits = &found.hits;
    if ctx.out.json {
        // An array of hits, each saying how it was found (`matched_by`).
        return ctx.out.json(hits);
    }
    // Titles are not messages: sessions named by the words come first (the
    // dashboard's search shows the same, from the same function).
    let titled = crate::ops::sessions::search_titles(
        &ctx.app,
        &scope,
        &a.query,
        user_id.as_deref(),
        a.limit,
    )?;
    if !titled.is_empty() {
        let mut t = ctx.out.table(&["session", "title", "started (UTC)"]);
        for i in &titled {
            t.add_row(vec![
                cell(&i.session.id, 40),
                opt_cell(i.session.title.as_deref(), 60),
                when(i.session.started_at.as_deref()),
            ]);
        }
        ctx.out.print_table(&t)?;
        ctx.out.info(format!(
            "{} session(s) with these words in the title",
            titled.len()
        ));
    }
    let mut t = ctx
        .out
        .table(&["session", "msg", "role", "time (UTC)", "snippet"]);
    for h in hits {
        t.add_row(vec![
            cell(&h.session_id, 40),
            h.message_id.to_string(),
            opt_cell(h.role.as_deref(), 12),
            when(h.timestamp.as_deref()),
            ctx.out.hits(&opt_cell(h.snippet.as_deref(), 200)),
        ]);
    }
    ctx.out.print_table(&t)?;
    ctx.out.info(format!("{} hit(s)", hits.len()));
    if let Some(n) = found.scanned {
        ctx.out.info(format!(
            "also scanned {n} tool result(s) of operator sessions that Hermes' index leaves out{}",
            if found.scan_truncated {
                " (the newest only: older ones were not searched)"
            } else {
                ""
            }
        ));
    }
    Ok(())
}
