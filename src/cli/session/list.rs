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
    #[arg(long, conflicts_with = "all_hosts")]
    pub all_sources: bool,
    /// Every host's operator sessions, from the fleet's database (store.url), with a host column
    #[arg(long)]
    pub all_hosts: bool,
}

pub fn run(ctx: &Ctx, a: Args) -> crate::Result<()> {
    if a.all_hosts {
        return all_hosts(ctx, &a);
    }
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

/// `--all-hosts`: what every host's `serve` published to the fleet's database.
fn all_hosts(ctx: &Ctx, a: &Args) -> crate::Result<()> {
    let since = a
        .since
        .as_deref()
        .map(crate::timespec::parse_since)
        .transpose()?;
    let pg = crate::ops::audit::fleet::connect_configured(&ctx.app)?;
    let rows = crate::ops::fleet::list_all_hosts(&pg, a.user.as_deref(), since, a.limit, a.offset)?;
    if ctx.out.json {
        return ctx.out.json(&rows);
    }
    let mut t = ctx.out.table(&[
        "host",
        "id",
        "user",
        "title",
        "started (UTC)",
        "msgs",
        "cost $",
        "ended",
    ]);
    let text = |v: &serde_json::Value, k: &str| v[k].as_str().map(str::to_string);
    for r in &rows {
        t.add_row(vec![
            cell(r["host"].as_str().unwrap_or(""), 24),
            cell(r["id"].as_str().unwrap_or(""), 40),
            opt_cell(text(r, "username").as_deref(), 20),
            opt_cell(text(r, "display_title").as_deref(), 40),
            when(text(r, "started_at").as_deref()),
            r["message_count"].as_i64().unwrap_or(0).to_string(),
            format!(
                "{:.4}",
                r["actual_cost_usd"]
                    .as_f64()
                    .or(r["estimated_cost_usd"].as_f64())
                    .unwrap_or(0.0)
            ),
            if r["ended_at"].is_string() {
                "yes"
            } else {
                "no"
            }
            .to_string(),
        ]);
    }
    ctx.out.print_table(&t)?;
    ctx.out
        .info(format!("{} session(s) from {}", rows.len(), pg.target));
    Ok(())
}
