use super::{cell, opt_cell, when};
use crate::cli::Ctx;
use crate::ops::sessions::{self, ListOptions};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only sessions of this operator user (username)
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
    /// Only sessions started since: YYYY-MM-DD, RFC 3339, or a duration like 7d, 12h
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    /// At most this many sessions
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(i64).range(1..=10_000))]
    pub limit: i64,
    /// Skip this many sessions (paging)
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(i64).range(0..))]
    pub offset: i64,
    /// Include Hermes' own sessions (every source), not only operator sessions
    #[arg(long)]
    pub all_sources: bool,
}

pub fn run(ctx: &Ctx, a: Args) -> crate::Result<()> {
    ctx.state_notice();
    let since = a
        .since
        .as_deref()
        .map(crate::timespec::parse_since)
        .transpose()?;
    let opts = ListOptions {
        user_id: None,
        since,
        limit: a.limit,
        offset: a.offset,
    };
    let scope = super::scope(a.all_sources);
    let rows = match a.user.as_deref() {
        Some(u) => sessions::list_of_username(&ctx.app, &scope, u, &opts)?,
        None => sessions::list(&ctx.app, &scope, &opts)?,
    };
    if ctx.out.json {
        return ctx.out.json(&rows);
    }
    let mut t = ctx.out.table(&[
        "id",
        "source",
        "user",
        "title",
        "model",
        "started (UTC)",
        "msgs",
        "tokens in/out",
        "cost $",
        "ended",
    ]);
    for i in &rows {
        let s = &i.session;
        t.add_row(vec![
            cell(&s.id, 40),
            cell(&s.source, 16),
            match (&i.username, &s.user_id) {
                (Some(n), _) => cell(n, 24),
                (None, u) => opt_cell(u.as_deref(), 24),
            },
            title_cell(i),
            opt_cell(s.model.as_deref(), 30),
            when(s.started_at.as_deref()),
            s.message_count.to_string(),
            format!("{}/{}", s.input_tokens, s.output_tokens),
            format!("{:.4}", s.cost_usd()),
            if s.ended_at.is_some() {
                opt_cell(s.end_reason.as_deref().or(Some("yes")), 20)
            } else {
                "open".into()
            },
        ]);
    }
    ctx.out.print_table(&t)?;
    ctx.out.info(format!(
        "{} session(s){}",
        rows.len(),
        if rows.len() as i64 == a.limit {
            " (more with --offset)"
        } else {
            ""
        }
    ));
    Ok(())
}

/// The title column: the title, or the first message in quotes (the same
/// fallback as the dashboard's, from `ops::sessions`), or —.
fn title_cell(i: &sessions::SessionInfo) -> String {
    match (&i.display_title, i.display_title_fallback) {
        (Some(t), true) => format!("“{}”", cell(t, 38)),
        (Some(t), false) => cell(t, 40),
        (None, _) => opt_cell(None, 40),
    }
}
