//! `hermes-operator session ...`: operator sessions in Hermes' state.db.
//! Reads never create state.db; changes touch operator rows only and are
//! audit events.

mod cost;
mod end;
mod export;
mod list;
mod new;
mod search;
mod show;
mod title;

use crate::cli::Ctx;
use crate::error::Result;
use crate::ops::sessions::{Scope, SessionInfo};
use crate::output::{clip, sanitize};

#[derive(Debug, clap::Subcommand)]
pub enum SessionCmd {
    /// List sessions, newest first (operator sessions unless --all-sources)
    List(list::Args),
    /// Show one session and its messages
    Show(show::Args),
    /// Full-text search in messages (Hermes' FTS5 index; CJK via trigram)
    Search(search::Args),
    /// Token usage and cost of one session, per model
    Cost(cost::Args),
    /// Export one session as JSON or a Markdown transcript (stdout)
    Export(export::Args),
    /// Set an operator session's title (empty text clears it)
    Title(title::Args),
    /// End an operator session
    End(end::Args),
    /// Create a new, empty operator session for a user
    New(new::Args),
}

pub fn run(ctx: &Ctx, cmd: SessionCmd) -> Result<()> {
    match cmd {
        SessionCmd::List(a) => list::run(ctx, a),
        SessionCmd::Show(a) => show::run(ctx, a),
        SessionCmd::Search(a) => search::run(ctx, a),
        SessionCmd::Cost(a) => cost::run(ctx, a),
        SessionCmd::Export(a) => export::run(ctx, a),
        SessionCmd::Title(a) => title::run(ctx, a),
        SessionCmd::End(a) => end::run(ctx, a),
        SessionCmd::New(a) => new::run(ctx, a),
    }
}

/// What the admin CLI may read: every operator session, or with
/// `--all-sources` every row of state.db.
pub(crate) fn scope(all_sources: bool) -> Scope {
    if all_sources {
        Scope::AllSources
    } else {
        Scope::Operator
    }
}

/// A username → its user id (users.db); unknown → not found.
pub(crate) fn user_id_of(ctx: &Ctx, username: &str) -> Result<String> {
    Ok(ctx.app.users_ro()?.get(username)?.id)
}

/// Hostile text made safe for one table cell.
pub(crate) fn cell(s: &str, max: usize) -> String {
    clip(&sanitize(s).replace('\n', "⏎ ").replace('\t', " "), max)
}

pub(crate) fn opt_cell(s: Option<&str>, max: usize) -> String {
    s.map(|x| cell(x, max)).unwrap_or_else(|| "—".into())
}

/// "2026-07-20T10:00:00Z" → "2026-07-20 10:00:00".
pub(crate) fn when(s: Option<&str>) -> String {
    s.map(|t| t.trim_end_matches('Z').replace('T', " "))
        .unwrap_or_else(|| "—".into())
}

/// The field/value table of one session (for people).
pub(crate) fn print_session(ctx: &Ctx, i: &SessionInfo) -> Result<()> {
    let s = &i.session;
    let mut t = ctx.out.table(&["field", "value"]);
    let mut row = |k: &str, v: String| {
        t.add_row(vec![k.to_string(), v]);
    };
    row("id", cell(&s.id, 128));
    row("source", cell(&s.source, 60));
    row(
        "user",
        match (&i.username, &s.user_id) {
            (Some(n), Some(id)) => format!("{} ({})", cell(n, 64), cell(id, 64)),
            (_, id) => opt_cell(id.as_deref(), 64),
        },
    );
    row("title", opt_cell(s.title.as_deref(), 100));
    row("model", opt_cell(s.model.as_deref(), 80));
    row("started", when(s.started_at.as_deref()));
    row(
        "ended",
        match &s.end_reason {
            Some(r) if s.ended_at.is_some() => {
                format!("{} ({})", when(s.ended_at.as_deref()), cell(r, 60))
            }
            _ => when(s.ended_at.as_deref()),
        },
    );
    row("messages", s.message_count.to_string());
    row("tool calls", s.tool_call_count.to_string());
    row("api calls", s.api_call_count.to_string());
    row(
        "tokens in/out",
        format!("{} / {}", s.input_tokens, s.output_tokens),
    );
    row(
        "tokens cache r/w, reasoning",
        format!(
            "{} / {}, {}",
            s.cache_read_tokens, s.cache_write_tokens, s.reasoning_tokens
        ),
    );
    row(
        "cost (USD)",
        format!(
            "{:.4} ({})",
            s.cost_usd(),
            s.cost_status
                .as_deref()
                .map(|c| cell(c, 30))
                .unwrap_or_else(|| "no status".into())
        ),
    );
    if let Some(p) = &s.parent_session_id {
        row("parent", cell(p, 128));
    }
    if s.archived {
        row("archived", "yes".into());
    }
    ctx.out.print_table(&t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_safe() {
        assert_eq!(cell("a\x1b[2Jb\nc", 50), "a\\u{1b}[2Jb⏎ c");
    }
}
