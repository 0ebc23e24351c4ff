//! Operator sessions as library calls, shared by the CLI and the
//! HTTP layer: who may read what ([`Scope`]), listing, transcripts, search,
//! cost, export, and the few changes the operator makes to its own rows
//! (title, end, new) — each change an audit event.

use crate::app::App;
use crate::error::{Error, Kind, Result};
use crate::output::{clip, sanitize};
use crate::store::events::EventKind;
use crate::store::state::{self, ListQuery, Message, ModelUsage, RowFilter, Session, StateDb};
use crate::store::users::User;
use serde::Serialize;
use serde_json::json;
use std::collections::HashMap;

/// Reject ids that cannot be session ids before they reach SQL or a terminal.
pub fn validate_session_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'));
    if ok {
        Ok(())
    } else {
        Err(Error::not_found(format!(
            "no session {:?}: not a valid session id",
            crate::output::clip(&crate::output::sanitize(id), 60)
        )))
    }
}

/// Which sessions a caller may read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every row of state.db, Hermes' own included (admin CLI, `--all-sources`).
    AllSources,
    /// Every operator session (admins and auditors).
    Operator,
    /// The operator sessions of one user (by user id).
    OwnedBy(String),
}

impl Scope {
    /// The row filter for this scope narrowed to `user_id`; `None` when the
    /// two cannot overlap (another user's sessions under `OwnedBy`).
    fn rows(&self, user_id: Option<&str>) -> Option<RowFilter> {
        match self {
            Scope::AllSources => Some(RowFilter {
                operator_only: false,
                user_id: user_id.map(str::to_string),
            }),
            Scope::Operator => Some(RowFilter {
                operator_only: true,
                user_id: user_id.map(str::to_string),
            }),
            Scope::OwnedBy(me) => match user_id {
                Some(u) if u != me => None,
                _ => Some(RowFilter {
                    operator_only: true,
                    user_id: Some(me.clone()),
                }),
            },
        }
    }

    /// May this scope read `s`? Unreadable sessions look like missing ones.
    fn check(&self, s: &Session) -> Result<()> {
        match self {
            Scope::AllSources => Ok(()),
            Scope::Operator if s.is_operator() => Ok(()),
            Scope::Operator => Err(Error::not_found(format!(
                "no operator session {} (it is a Hermes session with source {:?})",
                sanitize(&s.id),
                clip(&sanitize(&s.source), 40)
            ))
            .hint("pass --all-sources to read Hermes' own sessions")),
            Scope::OwnedBy(me) if s.is_operator() && s.user_id.as_deref() == Some(me) => Ok(()),
            Scope::OwnedBy(_) => Err(not_found(&s.id)),
        }
    }
}

fn not_found(id: &str) -> Error {
    Error::not_found(format!("no session {}", clip(&sanitize(id), 128)))
        .hint("`hermes-operator session list` shows operator sessions")
}

/// A session with its owner's username (`null` for non-operator rows and
/// deleted users).
#[derive(Debug, Clone, Serialize)]
pub struct SessionInfo {
    #[serde(flatten)]
    pub session: Session,
    pub username: Option<String>,
    /// What to call the session: its title, else the start of its first
    /// user message (Hermes 0.19 titles no API session, so without this
    /// every operator session is "untitled"); `null` when it has neither.
    /// `title` stays Hermes' column as it is.
    pub display_title: Option<String>,
    /// `display_title` is the first message, not a title: front ends mark it.
    pub display_title_fallback: bool,
}

/// How many characters of the first message name an untitled session.
pub const FALLBACK_TITLE_CHARS: usize = 60;

impl SessionInfo {
    /// `s` with its owner's username and display title.
    pub fn new(s: Session, username: Option<String>) -> SessionInfo {
        let (display_title, display_title_fallback) = display_title(&s);
        SessionInfo {
            session: s,
            username,
            display_title,
            display_title_fallback,
        }
    }
}

/// The title, else the first user message clipped (`true`: a fallback).
fn display_title(s: &Session) -> (Option<String>, bool) {
    if let Some(t) = s.title.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        return (Some(t.to_string()), false);
    }
    match s.first_user_message.as_deref().and_then(message_line) {
        Some(line) => (Some(clip(&line, FALLBACK_TITLE_CHARS)), true),
        None => (None, false),
    }
}

/// A message's text on one line: Hermes' multimodal content
/// (`"\0json:[parts]"`) by its text parts, controls and invisible format
/// characters dropped, whitespace runs as one space; `None` when blank.
fn message_line(content: &str) -> Option<String> {
    let text = match content.strip_prefix("\0json:") {
        Some(j) => match serde_json::from_str::<Vec<serde_json::Value>>(j) {
            Ok(parts) => parts
                .iter()
                .filter_map(|p| p.get("text").and_then(serde_json::Value::as_str))
                .collect::<Vec<_>>()
                .join(" "),
            // Cut short by the read (a long first message): no text to trust.
            Err(_) => return None,
        },
        None => content.to_string(),
    };
    let kept: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .filter(|&c| !crate::output::is_format_char(c))
        .collect();
    let line = kept.split_whitespace().collect::<Vec<_>>().join(" ");
    (!line.is_empty()).then_some(line)
}

/// `{session, system_prompt, messages}`: `session show --json` and
/// `session export --format json`.
#[derive(Debug, Clone, Serialize)]
pub struct Transcript {
    pub session: SessionInfo,
    /// Hermes' stored system prompt (inline on 0.19, by hash on 0.22).
    pub system_prompt: Option<String>,
    pub messages: Vec<Message>,
}

/// user id → username, from users.db (empty when there is no users.db yet).
pub fn usernames(app: &App) -> Result<HashMap<String, String>> {
    match app.users_ro() {
        Ok(s) => Ok(s.list()?.into_iter().map(|u| (u.id, u.username)).collect()),
        Err(e) if e.kind == Kind::NotFound => Ok(HashMap::new()),
        Err(e) => Err(e),
    }
}

fn info(s: Session, names: &HashMap<String, String>) -> SessionInfo {
    let username = if s.is_operator() {
        s.user_id.as_ref().and_then(|u| names.get(u).cloned())
    } else {
        None
    };
    SessionInfo::new(s, username)
}

/// `session list` options.
#[derive(Debug, Clone)]
pub struct ListOptions {
    pub user_id: Option<String>,
    /// Only sessions started at or after this epoch.
    pub since: Option<f64>,
    pub limit: i64,
    pub offset: i64,
}

impl Default for ListOptions {
    fn default() -> Self {
        ListOptions {
            user_id: None,
            since: None,
            limit: 50,
            offset: 0,
        }
    }
}

/// Sessions newest first (started_at DESC).
pub fn list(app: &App, scope: &Scope, opts: &ListOptions) -> Result<Vec<SessionInfo>> {
    let rows = list_rows(&*app.state_read()?, scope, opts)?;
    if rows.is_empty() {
        return Ok(vec![]);
    }
    let names = usernames(app)?;
    Ok(rows.into_iter().map(|s| info(s, &names)).collect())
}

/// [`list`] of one operator user's sessions, named by username (unknown →
/// not found, before state.db is opened). users.db is opened once for both
/// the id and the names.
pub fn list_of_username(
    app: &App,
    scope: &Scope,
    username: &str,
    opts: &ListOptions,
) -> Result<Vec<SessionInfo>> {
    let users = app.users_ro()?;
    let user_id = users.get(username)?.id;
    let names = usernames_in(&users)?;
    drop(users);
    let db = app.state_read()?;
    let opts = ListOptions {
        user_id: Some(user_id),
        ..opts.clone()
    };
    list_in(&db, &names, scope, &opts)
}

/// [`list`] on an open state.db with a known id → username map (the HTTP
/// mode keeps both between requests).
pub fn list_in(
    db: &StateDb,
    names: &HashMap<String, String>,
    scope: &Scope,
    opts: &ListOptions,
) -> Result<Vec<SessionInfo>> {
    let v = list_rows(db, scope, opts)?;
    Ok(v.into_iter().map(|s| info(s, names)).collect())
}

fn list_rows(db: &StateDb, scope: &Scope, opts: &ListOptions) -> Result<Vec<Session>> {
    let Some(rows) = scope.rows(opts.user_id.as_deref()) else {
        return Ok(vec![]);
    };
    db.list_sessions(&ListQuery {
        rows,
        since: opts.since,
        until: None,
        limit: Some(opts.limit),
        offset: opts.offset,
    })
}

/// user id → username from an open users.db.
pub fn usernames_in(store: &crate::store::users::UserStore) -> Result<HashMap<String, String>> {
    Ok(store
        .list()?
        .into_iter()
        .map(|u| (u.id, u.username))
        .collect())
}

fn readable(db: &StateDb, scope: &Scope, id: &str) -> Result<Session> {
    validate_session_id(id)?;
    let s = db.get_session(id)?.ok_or_else(|| not_found(id))?;
    scope.check(&s)?;
    Ok(s)
}

/// One session (without messages) if `scope` may read it; unreadable
/// sessions look like missing ones.
pub fn get(app: &App, scope: &Scope, id: &str) -> Result<SessionInfo> {
    let db = app.state_read()?;
    let s = readable(&db, scope, id)?;
    drop(db);
    Ok(info(s, &usernames(app)?))
}

/// Whether `user` may rename or end session `id` over HTTP: a session
/// `scope` may not read is missing (as [`get`] answers); of the readable
/// ones, its owner may, and an admin may any (auditors only read).
pub fn check_changeable_by(app: &App, scope: &Scope, user: &User, id: &str) -> Result<()> {
    let db = app.state_read()?;
    let s = readable(&db, scope, id)?;
    let own = s.user_id.as_deref() == Some(user.id.as_str());
    if !(own && user.role.can_chat()) && user.role != crate::store::users::Role::Admin {
        return Err(Error::permission(format!(
            "session {id} is not yours to change; its owner or an admin may"
        )));
    }
    Ok(())
}

/// Whether `user_id` may chat in session `id`, asked before anything is
/// claimed: a session `scope` may not read is missing (exactly as [`get`]
/// answers), one it may read but `user_id` does not own is refused.
pub fn check_continuable(app: &App, scope: &Scope, user_id: &str, id: &str) -> Result<()> {
    let db = app.state_read()?;
    let s = readable(&db, scope, id)?;
    if s.user_id.as_deref() != Some(user_id) {
        return Err(Error::permission(format!(
            "session {id} belongs to another user; only its owner may chat in it"
        )));
    }
    Ok(())
}

/// One session and its messages (replay order).
pub fn show(app: &App, scope: &Scope, id: &str) -> Result<Transcript> {
    let db = app.state_read()?;
    let s = readable(&db, scope, id)?;
    let messages = db.messages(id)?;
    let system_prompt = db.system_prompt(id)?;
    let names = usernames(app)?;
    Ok(Transcript {
        session: info(s, &names),
        system_prompt,
        messages,
    })
}

/// Full-text search in the sessions `scope` may read (optionally narrowed
/// to one user). The query is validated before state.db is opened.
pub fn search(
    app: &App,
    scope: &Scope,
    query: &str,
    user_id: Option<&str>,
    limit: i64,
) -> Result<state::SearchOutcome> {
    let all = state::Caps {
        has_fts: true,
        has_trigram: true,
        ..Default::default()
    };
    state::plan_search(query, &all)?;
    let db = app.state_read()?;
    let Some(rows) = scope.rows(user_id) else {
        return Ok(Default::default());
    };
    db.search(query, &rows, limit)
}

/// Sessions whose title has every word of `query`, in the sessions `scope`
/// may read (newest first): what message search cannot find, since titles
/// are not messages. The dashboard shows them above the message hits.
pub fn search_titles(
    app: &App,
    scope: &Scope,
    query: &str,
    user_id: Option<&str>,
    limit: i64,
) -> Result<Vec<SessionInfo>> {
    let Some(rows) = scope.rows(user_id) else {
        return Ok(vec![]);
    };
    let found = app.state_read()?.search_titles(query, &rows, limit)?;
    if found.is_empty() {
        return Ok(vec![]);
    }
    let names = usernames(app)?;
    Ok(found.into_iter().map(|s| info(s, &names)).collect())
}

/// Session totals as Hermes keeps them (cumulative).
#[derive(Debug, Clone, Serialize)]
pub struct CostTotals {
    pub api_call_count: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_read_tokens: i64,
    pub cache_write_tokens: i64,
    pub reasoning_tokens: i64,
    pub estimated_cost_usd: Option<f64>,
    pub actual_cost_usd: Option<f64>,
    /// `actual_cost_usd`, else `estimated_cost_usd`, else 0.
    pub cost_usd: f64,
    pub cost_status: Option<String>,
    pub billing_provider: Option<String>,
}

/// `session cost --json`.
#[derive(Debug, Clone, Serialize)]
pub struct CostReport {
    pub session_id: String,
    pub source: String,
    pub user_id: Option<String>,
    pub username: Option<String>,
    pub model: Option<String>,
    pub totals: CostTotals,
    /// session_model_usage summed per (model, billing_provider).
    pub by_model: Vec<ModelUsage>,
}

pub fn cost(app: &App, scope: &Scope, id: &str) -> Result<CostReport> {
    let db = app.state_read()?;
    let s = readable(&db, scope, id)?;
    let by_model = db.model_usage(id)?;
    let names = usernames(app)?;
    let cost_usd = s.cost_usd();
    let i = info(s, &names);
    let s = i.session;
    Ok(CostReport {
        session_id: s.id,
        source: s.source,
        user_id: s.user_id,
        username: i.username,
        model: s.model,
        totals: CostTotals {
            api_call_count: s.api_call_count,
            input_tokens: s.input_tokens,
            output_tokens: s.output_tokens,
            cache_read_tokens: s.cache_read_tokens,
            cache_write_tokens: s.cache_write_tokens,
            reasoning_tokens: s.reasoning_tokens,
            estimated_cost_usd: s.estimated_cost_usd,
            actual_cost_usd: s.actual_cost_usd,
            cost_usd,
            cost_status: s.cost_status,
            billing_provider: s.billing_provider,
        },
        by_model,
    })
}

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Json,
    Md,
}

/// The export document: JSON `{session, messages}` or a Markdown transcript.
pub fn export(app: &App, scope: &Scope, id: &str, format: ExportFormat) -> Result<String> {
    let t = show(app, scope, id)?;
    Ok(match format {
        ExportFormat::Json => serde_json::to_string_pretty(&t)? + "\n",
        ExportFormat::Md => markdown(&t),
    })
}

/// Text safe for Markdown outside code blocks: control characters made
/// visible, and no raw HTML.
fn md_text(s: &str) -> String {
    sanitize(s).replace('<', "&lt;").replace('>', "&gt;")
}

/// A fenced block whose fence is longer than any backtick run inside.
fn md_fence(lang: &str, body: &str) -> String {
    let mut longest = 0;
    let mut run = 0;
    for c in body.chars() {
        if c == '`' {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    let fence = "`".repeat((longest + 1).max(3));
    format!("{fence}{lang}\n{}\n{fence}\n", sanitize(body))
}

/// A readable Markdown transcript (tool calls as JSON blocks).
pub fn markdown(t: &Transcript) -> String {
    use std::fmt::Write as _;
    let s = &t.session.session;
    let mut o = String::new();
    let title = s
        .title
        .as_deref()
        .map(|x| format!(" — {}", md_text(x)))
        .unwrap_or_default();
    let _ = writeln!(o, "# Session `{}`{title}\n", md_text(&s.id));
    let opt = |v: &Option<String>| v.as_deref().map(md_text).unwrap_or_else(|| "—".into());
    let _ = writeln!(o, "- Source: {}", md_text(&s.source));
    let user = match (&t.session.username, &s.user_id) {
        (Some(n), Some(id)) => format!("{} (`{}`)", md_text(n), md_text(id)),
        (None, Some(id)) => format!("`{}`", md_text(id)),
        _ => "—".into(),
    };
    let _ = writeln!(o, "- User: {user}");
    let _ = writeln!(o, "- Model: {}", opt(&s.model));
    let _ = writeln!(o, "- Started: {}", opt(&s.started_at));
    let ended = match (&s.ended_at, &s.end_reason) {
        (Some(at), Some(r)) => format!("{at} ({})", md_text(r)),
        (Some(at), None) => at.clone(),
        _ => "—".into(),
    };
    let _ = writeln!(o, "- Ended: {ended}");
    let _ = writeln!(
        o,
        "- Messages: {} · tool calls: {} · tokens in/out: {}/{} · cost: ${:.4}\n",
        s.message_count,
        s.tool_call_count,
        s.input_tokens,
        s.output_tokens,
        s.cost_usd()
    );
    if let Some(p) = &t.system_prompt {
        let _ = writeln!(o, "## System prompt\n\n{}", md_fence("", p));
    }
    for m in &t.messages {
        let role = m.role.as_deref().unwrap_or("?");
        let mut head = format!(
            "## {} · {}",
            md_text(role),
            m.timestamp.as_deref().unwrap_or("?")
        );
        if let Some(n) = &m.tool_name {
            let _ = write!(head, " · tool `{}`", md_text(n));
        }
        if !m.active {
            head.push_str(" · (rewound)");
        }
        let _ = writeln!(o, "{head}\n");
        if let Some(c) = m.content.as_deref().filter(|c| !c.is_empty()) {
            if role == "tool" {
                o.push_str(&md_fence("", c));
            } else {
                let _ = writeln!(o, "{}", md_text(c));
            }
            o.push('\n');
        }
        if !m.tool_calls.is_null() {
            let body = serde_json::to_string_pretty(&m.tool_calls).unwrap_or_default();
            let _ = writeln!(o, "Tool calls:\n");
            o.push_str(&md_fence("json", &body));
            o.push('\n');
        }
    }
    o
}

fn changeable(db: &StateDb, id: &str) -> Result<Session> {
    validate_session_id(id)?;
    let s = db.get_session(id)?.ok_or_else(|| not_found(id))?;
    if !s.is_operator() {
        return Err(Error::permission(format!(
            "{} is not an operator session; hermes-operator never changes Hermes' own sessions",
            clip(&sanitize(id), 128)
        )));
    }
    Ok(s)
}

fn record_for(app: &App, kind: EventKind, s: &Session, data: serde_json::Value) -> Result<()> {
    let mut ev = app.event(kind, data).session(&s.id);
    if let Some(u) = &s.user_id {
        ev = ev.user(u);
    }
    app.record(ev)?;
    Ok(())
}

/// Result of `set_title`.
#[derive(Debug, Clone, Serialize)]
pub struct TitleChange {
    pub session: SessionInfo,
    pub from: Option<String>,
    pub to: Option<String>,
    pub changed: bool,
}

/// Set (or with an empty text, clear) an operator session's title, with
/// Hermes' sanitising and uniqueness rules. Audited as `session_changed`.
pub fn set_title(app: &App, id: &str, title: &str) -> Result<TitleChange> {
    validate_session_id(id)?;
    let clean = state::sanitize_title(title)?;
    let db = app.state_rw()?;
    let s = changeable(&db, id)?;
    let from = db.set_title(id, clean.as_deref())?;
    let changed = from != clean;
    if changed {
        record_for(
            app,
            EventKind::SessionChanged,
            &s,
            json!({"change": "title", "from": from, "to": clean}),
        )?;
    }
    let s = db.get_session(id)?.ok_or_else(|| not_found(id))?;
    Ok(TitleChange {
        session: info(s, &usernames(app)?),
        from,
        to: clean,
        changed,
    })
}

/// Result of `end`.
#[derive(Debug, Clone, Serialize)]
pub struct EndOutcome {
    pub session: SessionInfo,
    /// false when the session had already ended (the first end wins).
    pub changed: bool,
}

pub const DEFAULT_END_REASON: &str = "operator_end";

/// End an operator session (no-op when already ended, like Hermes).
/// Audited as `session_end`.
pub fn end(app: &App, id: &str, reason: &str) -> Result<EndOutcome> {
    validate_session_id(id)?;
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 200 || reason.chars().any(char::is_control) {
        return Err(Error::usage(
            "--reason must be 1-200 characters without control characters",
        ));
    }
    let db = app.state_rw()?;
    let s = changeable(&db, id)?;
    let changed = db.end_session(id, reason)?;
    if changed {
        record_for(app, EventKind::SessionEnd, &s, json!({"reason": reason}))?;
    }
    let s = db.get_session(id)?.ok_or_else(|| not_found(id))?;
    Ok(EndOutcome {
        session: info(s, &usernames(app)?),
        changed,
    })
}

/// Create a new operator session (`op_` + 12 hex) for an enabled user whose
/// role may chat. Audited as `session_start`.
pub fn new_session(app: &App, username: &str) -> Result<SessionInfo> {
    new_session_for(
        app,
        &crate::ops::accounts::require_chat_user(app, username)?,
    )
}

/// [`new_session`] for a user already checked with
/// [`crate::ops::accounts::require_chat_user`].
pub fn new_session_for(app: &App, user: &crate::store::users::User) -> Result<SessionInfo> {
    let db = app.state_rw()?;
    let (s, start) = create_session_row(app, &db, user, crate::store::state::Flush::Now)?;
    app.record(start)?;
    Ok(SessionInfo::new(s, Some(user.username.clone())))
}

/// Insert a new operator session row on `db` and return it with its
/// `session_start` event, not yet recorded (the chat engine appends it in
/// one batch with the turn's first event).
pub fn create_session_row(
    app: &App,
    db: &crate::store::state::StateDb,
    user: &crate::store::users::User,
    flush: crate::store::state::Flush,
) -> Result<(Session, crate::store::events::NewEvent)> {
    let model = app.cfg.config.model.default.clone();
    let mut attempt = 0;
    let id = loop {
        attempt += 1;
        let id = format!("op_{}", crate::crypto::random_hex(6));
        match db.create_operator_session(&id, &user.id, model.as_deref(), flush) {
            Ok(()) => break id,
            Err(e) if e.kind == Kind::Conflict && attempt < 5 => continue,
            Err(e) => return Err(e),
        }
    };
    let s = db.get_session(&id)?.ok_or_else(|| not_found(&id))?;
    let ev = app
        .event(
            EventKind::SessionStart,
            json!({"username": user.username, "model": model}),
        )
        .session(&s.id)
        .user(&user.id);
    Ok((s, ev))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_narrow_rows() {
        let me = Scope::OwnedBy("u_a".into());
        assert!(me.rows(Some("u_b")).is_none());
        assert_eq!(me.rows(None).unwrap().user_id.as_deref(), Some("u_a"));
        assert!(me.rows(Some("u_a")).unwrap().operator_only);
        assert!(!Scope::AllSources.rows(None).unwrap().operator_only);
        assert!(Scope::Operator.rows(Some("u_c")).unwrap().operator_only);
    }

    fn session(title: Option<&str>, first: Option<&str>) -> Session {
        Session {
            id: "op_000000000001".into(),
            source: "operator".into(),
            user_id: None,
            model: None,
            title: title.map(str::to_string),
            started_at: None,
            started_at_epoch: None,
            ended_at: None,
            ended_at_epoch: None,
            end_reason: None,
            message_count: 0,
            tool_call_count: 0,
            input_tokens: 0,
            output_tokens: 0,
            cache_read_tokens: 0,
            cache_write_tokens: 0,
            reasoning_tokens: 0,
            billing_provider: None,
            estimated_cost_usd: None,
            actual_cost_usd: None,
            cost_status: None,
            api_call_count: 0,
            parent_session_id: None,
            archived: false,
            first_user_message: first.map(str::to_string),
        }
    }

    #[test]
    fn untitled_sessions_are_named_by_their_first_message() {
        let shown = |t, f| {
            let i = SessionInfo::new(session(t, f), None);
            (i.display_title, i.display_title_fallback)
        };
        assert_eq!(
            shown(Some("Mine"), Some("hello")),
            (Some("Mine".into()), false)
        );
        assert_eq!(
            shown(None, Some("  hello\n\tthere\u{202e} ")),
            (Some("hello there".into()), true)
        );
        assert_eq!(shown(Some("  "), Some("hi")), (Some("hi".into()), true));
        assert_eq!(shown(None, None), (None, false));
        assert_eq!(shown(None, Some(" \n ")), (None, false));
        let long = "word ".repeat(40);
        let (t, _) = shown(None, Some(&long));
        let t = t.unwrap();
        assert_eq!(t.chars().count(), FALLBACK_TITLE_CHARS + 1, "{t}");
        assert!(t.ends_with('…'));
        // Multimodal content by its text parts; cut short (unparseable): none.
        assert_eq!(
            shown(
                None,
                Some("\0json:[{\"type\":\"text\",\"text\":\"look\"},{\"type\":\"image_url\"}]")
            ),
            (Some("look".into()), true)
        );
        assert_eq!(shown(None, Some("\0json:[{\"type\":\"te")), (None, false));
        // The JSON keeps `title` as Hermes has it, next to the display title.
        let v = serde_json::to_value(SessionInfo::new(session(None, Some("hi")), None)).unwrap();
        assert_eq!(v["title"], serde_json::Value::Null);
        assert_eq!(v["display_title"], "hi");
        assert_eq!(v["display_title_fallback"], true);
        assert!(v.get("first_user_message").is_none());
    }

    #[test]
    fn markdown_fences_survive_backticks_and_escapes() {
        assert_eq!(md_fence("", "a ``` b"), "````\na ``` b\n````\n");
        assert_eq!(md_text("<b>\x1b[31m"), "&lt;b&gt;\\u{1b}[31m");
    }
}
