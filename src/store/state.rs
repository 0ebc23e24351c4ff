//! state.db: Hermes' own session store (SPEC §5, HERMES_NOTES "state.db").
//!
//! Storage only. Rules this module keeps:
//! - it never creates state.db (existence is checked first, and the file is
//!   opened without `SQLITE_OPEN_CREATE`), never changes `journal_mode`, never
//!   VACUUMs;
//! - the schema is probed once per open ([`REQUIRED_COLUMNS`]); extra columns a
//!   newer Hermes added are tolerated, missing ones are `Kind::Corrupt`;
//! - every read names its columns and tolerates NULLs (and odd value types);
//! - every write happens in `BEGIN IMMEDIATE` and every UPDATE carries
//!   [`OPERATOR_ROW`], so Hermes' own rows can never be touched;
//! - user search text never reaches FTS5 syntax raw ([`plan_search`]).

use super::with_immediate;
use crate::error::{Error, Result};
use rusqlite::types::ValueRef;
use rusqlite::{params_from_iter, Connection, OpenFlags, OptionalExtension, Row, ToSql};
use serde::Serialize;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Hermes' own busy timeout; readers and writers wait this long per attempt.
const BUSY_TIMEOUT: Duration = Duration::from_millis(1000);

/// The condition every operator UPDATE/DELETE carries (unqualified columns).
pub const OPERATOR_ROW: &str = r"source = 'operator' AND id LIKE 'op\_%' ESCAPE '\'";
/// The same for a `sessions s` alias in reads.
const OPERATOR_ROW_S: &str = r"s.source = 'operator' AND s.id LIKE 'op\_%' ESCAPE '\'";

/// Columns the operator reads or writes. A state.db lacking any of them is
/// "schema incompatible" (exit 9). `sessions.archived`, `messages.active` and
/// `messages.compacted` are optional (probed: older Hermes lacked them).
pub const REQUIRED_COLUMNS: &[(&str, &[&str])] = &[
    (
        "sessions",
        &[
            "id",
            "source",
            "user_id",
            "model",
            "parent_session_id",
            "started_at",
            "ended_at",
            "end_reason",
            "message_count",
            "tool_call_count",
            "input_tokens",
            "output_tokens",
            "cache_read_tokens",
            "cache_write_tokens",
            "reasoning_tokens",
            "billing_provider",
            "estimated_cost_usd",
            "actual_cost_usd",
            "cost_status",
            "title",
            "api_call_count",
        ],
    ),
    (
        "messages",
        &[
            "id",
            "session_id",
            "role",
            "content",
            "tool_call_id",
            "tool_calls",
            "tool_name",
            "timestamp",
            "token_count",
            "finish_reason",
            "reasoning",
        ],
    ),
    (
        "session_model_usage",
        &[
            "session_id",
            "model",
            "billing_provider",
            "api_call_count",
            "input_tokens",
            "output_tokens",
            "cache_read_tokens",
            "cache_write_tokens",
            "reasoning_tokens",
            "estimated_cost_usd",
            "actual_cost_usd",
        ],
    ),
];

/// Hermes' `SessionDB.MAX_TITLE_LENGTH` (characters, after sanitising).
pub const MAX_TITLE_CHARS: usize = 100;
/// Longest search query accepted, in bytes.
pub const MAX_SEARCH_QUERY_BYTES: usize = 512;

/// What the schema probe found besides the required columns.
#[derive(Debug, Clone, Default)]
pub struct Caps {
    pub has_fts: bool,
    pub has_trigram: bool,
    pub sessions_archived: bool,
    pub messages_active: bool,
    pub messages_compacted: bool,
    /// `sessions.system_prompt` (0.19 keeps the prompt inline).
    pub sessions_system_prompt: bool,
    /// `sessions.system_prompt_hash` + table `system_prompts` (schema 31:
    /// prompts stored once, migrated rows keep `system_prompt` NULL).
    pub system_prompts_table: bool,
}

/// What Hermes' FTS indexes leave out, read from the schema it created
/// (the triggers and views are the truth; `state_meta.fts_storage_version`
/// only names the layout). 0.19's inline indexes cover every row in full.
/// 0.22's storage v3 indexes tool results in `messages_fts` only up to a
/// prefix (`substr(content, 1, 8192)` in `messages_fts_src`) and keeps them
/// out of `messages_fts_trigram` altogether (`messages_fts_trigram_src`
/// has `role <> 'tool'`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FtsCoverage {
    /// `messages_fts` stores only this many characters of a tool row.
    pub fts_tool_prefix: Option<i64>,
    /// `messages_fts_trigram` holds no `role = 'tool'` rows.
    pub trigram_skips_tools: bool,
}

/// Most candidate rows one fallback scan looks at (newest first); a search
/// over more says so (`scan_truncated`).
pub const SCAN_MAX_ROWS: i64 = 50_000;

/// How one hit was found.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum MatchedBy {
    /// Hermes' word index (`messages_fts`, unicode61).
    Fts,
    /// Hermes' substring index (`messages_fts_trigram`).
    Trigram,
    /// `LIKE` over every readable row (short CJK terms, no index).
    Like,
    /// The bounded scan of operator-session rows Hermes' index does not
    /// cover (tool results on Hermes 0.22).
    Scan,
}

/// One sessions row as the operator shows it. Times are RFC 3339 UTC strings
/// plus the raw epoch float Hermes stores (`*_epoch`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Session {
    pub id: String,
    pub source: String,
    pub user_id: Option<String>,
    pub model: Option<String>,
    pub title: Option<String>,
    pub started_at: Option<String>,
    pub started_at_epoch: Option<f64>,
    pub ended_at: Option<String>,
    pub ended_at_epoch: Option<f64>,
    pub end_reason: Option<String>,
    pub message_count: i64,
    pub tool_call_count: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_read_tokens: i64,
    pub cache_write_tokens: i64,
    pub reasoning_tokens: i64,
    pub billing_provider: Option<String>,
    pub estimated_cost_usd: Option<f64>,
    pub actual_cost_usd: Option<f64>,
    pub cost_status: Option<String>,
    pub api_call_count: i64,
    pub parent_session_id: Option<String>,
    pub archived: bool,
}

impl Session {
    /// The rows the operator owns and may change.
    pub fn is_operator(&self) -> bool {
        is_operator_id(&self.id) && self.source == "operator"
    }
    /// `COALESCE(actual_cost_usd, estimated_cost_usd, 0)`.
    pub fn cost_usd(&self) -> f64 {
        self.actual_cost_usd
            .or(self.estimated_cost_usd)
            .unwrap_or(0.0)
    }
}

/// `op_` + anything: the id shape operator rows have (`LIKE 'op\_%'`).
pub fn is_operator_id(id: &str) -> bool {
    id.starts_with("op_")
}

/// One messages row, in Hermes' replay order (`ORDER BY id`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Message {
    pub id: i64,
    pub session_id: String,
    pub role: Option<String>,
    pub content: Option<String>,
    pub tool_call_id: Option<String>,
    /// Parsed JSON when the stored text is valid JSON, else the raw text.
    pub tool_calls: serde_json::Value,
    pub tool_name: Option<String>,
    pub timestamp: Option<String>,
    pub timestamp_epoch: Option<f64>,
    pub token_count: Option<i64>,
    pub finish_reason: Option<String>,
    pub reasoning: Option<String>,
    /// false for rows Hermes rewound/compacted out of the live context.
    pub active: bool,
}

/// session_model_usage summed per (model, billing_provider).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ModelUsage {
    pub model: Option<String>,
    pub billing_provider: Option<String>,
    pub api_call_count: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_read_tokens: i64,
    pub cache_write_tokens: i64,
    pub reasoning_tokens: i64,
    pub estimated_cost_usd: f64,
    pub actual_cost_usd: f64,
}

/// Messages counted per (session user_id, session model).
pub type MessageCount = (Option<String>, Option<String>, i64);

/// One search hit.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SearchHit {
    pub session_id: String,
    pub message_id: i64,
    pub role: Option<String>,
    pub snippet: Option<String>,
    pub timestamp: Option<String>,
    pub timestamp_epoch: Option<f64>,
    pub source: Option<String>,
    pub user_id: Option<String>,
    /// Which method found it (`fts`, `trigram`, `like`, `scan`).
    pub matched_by: MatchedBy,
}

/// Hits plus what the fallback scan looked at.
#[derive(Debug, Clone, Default)]
pub struct SearchOutcome {
    pub hits: Vec<SearchHit>,
    /// Rows the fallback scan examined (`None`: no scan was needed).
    pub scanned: Option<i64>,
    /// The scan stopped at [`SCAN_MAX_ROWS`] candidates (older rows unsearched).
    pub scan_truncated: bool,
}

/// Which rows a read covers: operator rows only (optionally one user's), or
/// every source.
#[derive(Debug, Clone, Default)]
pub struct RowFilter {
    pub operator_only: bool,
    pub user_id: Option<String>,
}

/// `session list` parameters.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub rows: RowFilter,
    /// `started_at >= since` (epoch seconds).
    pub since: Option<f64>,
    /// `started_at < until` (epoch seconds).
    pub until: Option<f64>,
    /// `None` = no limit.
    pub limit: Option<i64>,
    pub offset: i64,
}

/// How a search query is run (see [`plan_search`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchPlan {
    /// `messages_fts MATCH expr` (unicode61): every term a quoted FTS5 string, AND-ed.
    Fts(String),
    /// `messages_fts_trigram MATCH expr`: the whole query as one quoted phrase.
    Trigram(String),
    /// `LIKE '%term%' ESCAPE '\'` for each term (AND-ed); terms already escaped.
    Like(Vec<String>),
    /// Nothing searchable in the query (only punctuation): no hits.
    Nothing,
}

pub struct StateDb {
    conn: Connection,
    path: PathBuf,
    pub caps: Caps,
    session_cols: String,
}

// ---------------------------------------------------------------------------
// tolerant value readers
// ---------------------------------------------------------------------------

fn opt_f64(r: &Row, i: usize) -> rusqlite::Result<Option<f64>> {
    Ok(match r.get_ref(i)? {
        ValueRef::Null | ValueRef::Blob(_) => None,
        ValueRef::Integer(n) => Some(n as f64),
        ValueRef::Real(f) => Some(f),
        ValueRef::Text(t) => std::str::from_utf8(t)
            .ok()
            .and_then(|s| s.trim().parse().ok()),
    })
}

fn opt_i64(r: &Row, i: usize) -> rusqlite::Result<Option<i64>> {
    Ok(match r.get_ref(i)? {
        ValueRef::Null | ValueRef::Blob(_) => None,
        ValueRef::Integer(n) => Some(n),
        ValueRef::Real(f) => Some(f as i64),
        ValueRef::Text(t) => std::str::from_utf8(t)
            .ok()
            .and_then(|s| s.trim().parse().ok()),
    })
}

fn int(r: &Row, i: usize) -> rusqlite::Result<i64> {
    Ok(opt_i64(r, i)?.unwrap_or(0))
}

fn opt_text(r: &Row, i: usize) -> rusqlite::Result<Option<String>> {
    Ok(match r.get_ref(i)? {
        ValueRef::Null => None,
        ValueRef::Integer(n) => Some(n.to_string()),
        ValueRef::Real(f) => Some(f.to_string()),
        ValueRef::Text(t) | ValueRef::Blob(t) => Some(String::from_utf8_lossy(t).into_owned()),
    })
}

fn text(r: &Row, i: usize) -> rusqlite::Result<String> {
    Ok(opt_text(r, i)?.unwrap_or_default())
}

fn time_pair(epoch: Option<f64>) -> (Option<String>, Option<f64>) {
    (epoch.map(crate::output::ts), epoch)
}

fn session_from_row(r: &Row) -> rusqlite::Result<Session> {
    let (started_at, started_at_epoch) = time_pair(opt_f64(r, 5)?);
    let (ended_at, ended_at_epoch) = time_pair(opt_f64(r, 6)?);
    Ok(Session {
        id: text(r, 0)?,
        source: text(r, 1)?,
        user_id: opt_text(r, 2)?,
        model: opt_text(r, 3)?,
        title: opt_text(r, 4)?,
        started_at,
        started_at_epoch,
        ended_at,
        ended_at_epoch,
        end_reason: opt_text(r, 7)?,
        message_count: int(r, 8)?,
        tool_call_count: int(r, 9)?,
        input_tokens: int(r, 10)?,
        output_tokens: int(r, 11)?,
        cache_read_tokens: int(r, 12)?,
        cache_write_tokens: int(r, 13)?,
        reasoning_tokens: int(r, 14)?,
        billing_provider: opt_text(r, 15)?,
        estimated_cost_usd: opt_f64(r, 16)?,
        actual_cost_usd: opt_f64(r, 17)?,
        cost_status: opt_text(r, 18)?,
        api_call_count: int(r, 19)?,
        parent_session_id: opt_text(r, 20)?,
        archived: int(r, 21)? != 0,
    })
}

fn message_from_row(r: &Row) -> rusqlite::Result<Message> {
    let tool_calls = match opt_text(r, 5)? {
        None => serde_json::Value::Null,
        Some(s) => serde_json::from_str(&s).unwrap_or(serde_json::Value::String(s)),
    };
    let (timestamp, timestamp_epoch) = time_pair(opt_f64(r, 7)?);
    Ok(Message {
        id: int(r, 0)?,
        session_id: text(r, 1)?,
        role: opt_text(r, 2)?,
        content: opt_text(r, 3)?,
        tool_call_id: opt_text(r, 4)?,
        tool_calls,
        tool_name: opt_text(r, 6)?,
        timestamp,
        timestamp_epoch,
        token_count: opt_i64(r, 8)?,
        finish_reason: opt_text(r, 9)?,
        reasoning: opt_text(r, 10)?,
        active: opt_i64(r, 11)?.unwrap_or(1) != 0,
    })
}

fn now_epoch() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

// ---------------------------------------------------------------------------
// titles and search input (pure functions)
// ---------------------------------------------------------------------------

/// Hermes' `SessionDB.sanitize_title`: drop ASCII controls (keeping \t \n \r
/// for the whitespace step), zero-width and bidi controls, collapse
/// whitespace runs to one space, trim; empty → `None` (clears the title);
/// more than 100 characters → usage error.
pub fn sanitize_title(title: &str) -> Result<Option<String>> {
    let kept: String = title
        .chars()
        .filter(|&c| {
            let cp = c as u32;
            let ascii_ctl = matches!(cp, 0x00..=0x08 | 0x0b | 0x0c | 0x0e..=0x1f | 0x7f);
            let uni_ctl = matches!(cp,
                0x200b..=0x200f | 0x2028..=0x202e | 0x2060..=0x2069 | 0xfeff | 0xfffc | 0xfff9..=0xfffb);
            !ascii_ctl && !uni_ctl
        })
        .collect();
    let cleaned = kept.split_whitespace().collect::<Vec<_>>().join(" ");
    if cleaned.is_empty() {
        return Ok(None);
    }
    let n = cleaned.chars().count();
    if n > MAX_TITLE_CHARS {
        return Err(Error::usage(format!(
            "title too long ({n} characters, max {MAX_TITLE_CHARS})"
        )));
    }
    Ok(Some(cleaned))
}

/// Characters the unicode61 tokenizer handles badly (no spaces between
/// words): CJK ideographs, kana, hangul (Hermes' `_contains_cjk` ranges) plus
/// CJK compatibility/extension blocks and Thai, Lao, Khmer, Myanmar.
fn needs_substring_search(c: char) -> bool {
    matches!(c as u32,
        0x4E00..=0x9FFF | 0x3400..=0x4DBF | 0x20000..=0x2EBEF | 0x3000..=0x303F
        | 0x3040..=0x309F | 0x30A0..=0x30FF | 0x31F0..=0x31FF | 0xAC00..=0xD7AF
        | 0x1100..=0x11FF | 0x3130..=0x318F | 0xF900..=0xFAFF | 0xFF65..=0xFF9F
        | 0x0E00..=0x0EFF | 0x1780..=0x17FF | 0x1000..=0x109F)
}

/// `"` + text with `"` doubled + `"`: an FTS5 string, never syntax.
fn fts_string(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// Escape `\`, `%` and `_` for `LIKE ... ESCAPE '\'`.
pub fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Turn user search text into a safe plan. Over 512 bytes or blank → usage
/// error. Text with CJK (and similar scripts): the trigram table with the
/// whole query as one phrase when it has >= 3 characters, else LIKE. Other
/// text: each whitespace-separated term as a quoted FTS5 string, AND-ed
/// (terms without a letter or digit are dropped: unicode61 would index
/// nothing for them).
pub fn plan_search(query: &str, caps: &Caps) -> Result<SearchPlan> {
    if query.len() > MAX_SEARCH_QUERY_BYTES {
        return Err(Error::usage(format!(
            "search query too long ({} bytes, max {MAX_SEARCH_QUERY_BYTES})",
            query.len()
        ))
        .hint("search for a few distinctive words"));
    }
    let terms = query_terms(query);
    if terms.is_empty() {
        return Err(Error::usage("search query is empty"));
    }
    let whole = terms.join(" ");
    if whole.chars().any(needs_substring_search) {
        if whole.chars().count() >= 3 && caps.has_trigram {
            return Ok(SearchPlan::Trigram(fts_string(&whole)));
        }
        return Ok(SearchPlan::Like(vec![escape_like(&whole)]));
    }
    let words = plan_words(query);
    if words.is_empty() {
        return Ok(SearchPlan::Nothing);
    }
    if !caps.has_fts {
        return Ok(SearchPlan::Like(words));
    }
    Ok(SearchPlan::Fts(
        query_terms(query)
            .into_iter()
            .filter(|t| t.chars().any(char::is_alphanumeric))
            .map(fts_string)
            .collect::<Vec<_>>()
            .join(" AND "),
    ))
}

/// The query split into terms. Control characters (a NUL would cut
/// SQLite's view of the FTS5 expression short: a syntax error) separate
/// terms like whitespace.
fn query_terms(query: &str) -> Vec<&str> {
    query
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|t| !t.is_empty())
        .collect()
}

/// The terms unicode61 indexes something for (a letter or digit), escaped
/// for `LIKE`.
fn plan_words(query: &str) -> Vec<String> {
    query_terms(query)
        .into_iter()
        .filter(|t| t.chars().any(char::is_alphanumeric))
        .map(escape_like)
        .collect()
}

/// One `LIKE ?n ESCAPE '\'` condition per (escaped) term, AND-ed by the
/// caller, over the columns Hermes indexes.
fn like_terms(terms: &[String], p: &mut Vec<rusqlite::types::Value>) -> Vec<String> {
    terms
        .iter()
        .map(|t| {
            p.push(rusqlite::types::Value::Text(format!("%{t}%")));
            let n = p.len();
            format!(
                r"(m.content LIKE ?{n} ESCAPE '\' OR m.tool_name LIKE ?{n} ESCAPE '\' OR m.tool_calls LIKE ?{n} ESCAPE '\')"
            )
        })
        .collect()
}

/// A snippet around the first term's first occurrence (for `LIKE` hits).
fn like_snippet(terms: &[String], p: &mut Vec<rusqlite::types::Value>) -> String {
    p.push(rusqlite::types::Value::Text(unescape_like(&terms[0])));
    let n = p.len();
    format!("substr(m.content, max(1, instr(m.content, ?{n}) - 40), 120)")
}

/// N in `substr(COALESCE(content, ''), 1, N)`: the tool-row prefix 0.22's
/// `messages_fts_src` view (or its insert trigger) indexes.
fn tool_prefix_of(sql: &str) -> Option<i64> {
    let at = sql.find("substr(")?;
    let args = &sql[at..];
    let close = args.find(')')?;
    // substr(COALESCE(new.content, ''), 1, 8192) -> the text after the
    // COALESCE's own ')'; take the last number before the closing paren.
    let rest = &args[close + 1..];
    let end = rest.find(')')?;
    rest[..end].rsplit(',').next()?.trim().parse::<i64>().ok()
}

// ---------------------------------------------------------------------------
// the store
// ---------------------------------------------------------------------------

/// Outcome of a guarded write, decided inside the transaction.
enum Guarded<T> {
    Done(T),
    Missing,
    Conflict(String),
}

impl StateDb {
    /// Open for reading. Never creates state.db; works while Hermes writes (WAL).
    pub fn open_readonly(path: &Path) -> Result<Self> {
        Self::open(path, false)
    }

    /// Open for writing operator rows. Never creates state.db, never changes
    /// its journal mode.
    pub fn open_readwrite(path: &Path) -> Result<Self> {
        Self::open(path, true)
    }

    fn open(path: &Path, write: bool) -> Result<Self> {
        match std::fs::metadata(path) {
            Ok(m) if m.is_file() => {}
            Ok(_) => {
                return Err(Error::corrupt(format!(
                    "{} is not a regular file (expected Hermes' state.db)",
                    path.display()
                )))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::not_found(format!(
                    "Hermes' state.db not found: looked at {}",
                    path.display()
                ))
                .hint("Hermes creates state.db on its first run (e.g. `hermes chat`); check --hermes-home / $HERMES_HOME. hermes-operator never creates it"));
            }
            Err(e) => return Err(Error::io(path, "reading Hermes' state.db", e)),
        }
        let flags = if write {
            OpenFlags::SQLITE_OPEN_READ_WRITE
        } else {
            OpenFlags::SQLITE_OPEN_READ_ONLY
        } | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags)
            .map_err(|e| Error::sqlite(path, "opening Hermes' state.db", e))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| Error::sqlite(path, "setting busy timeout", e))?;
        if write {
            conn.execute_batch("PRAGMA foreign_keys=ON;")
                .map_err(|e| Error::sqlite(path, "setting foreign_keys", e))?;
        }
        let caps = probe(&conn, path)?;
        let archived = if caps.sessions_archived {
            "s.archived"
        } else {
            "0"
        };
        let session_cols = format!(
            "s.id, s.source, s.user_id, s.model, s.title, s.started_at, s.ended_at, s.end_reason, \
             s.message_count, s.tool_call_count, s.input_tokens, s.output_tokens, s.cache_read_tokens, \
             s.cache_write_tokens, s.reasoning_tokens, s.billing_provider, s.estimated_cost_usd, \
             s.actual_cost_usd, s.cost_status, s.api_call_count, s.parent_session_id, {archived}"
        );
        Ok(StateDb {
            conn,
            path: path.to_path_buf(),
            caps,
            session_cols,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, what: &str) -> impl Fn(rusqlite::Error) -> Error + '_ {
        let what = what.to_string();
        move |e| Error::sqlite(&self.path, &what, e)
    }

    /// One session by id (any source).
    pub fn get_session(&self, id: &str) -> Result<Option<Session>> {
        self.conn
            .query_row(
                &format!(
                    "SELECT {} FROM sessions s WHERE s.id = ?1",
                    self.session_cols
                ),
                [id],
                session_from_row,
            )
            .optional()
            .map_err(self.err("reading session"))
    }

    /// The SQL of [`list_sessions`](Self::list_sessions) and its parameters.
    ///
    /// Plan: walk `idx_sessions_started` (started_at DESC) in order and stop
    /// after LIMIT matches. The unary `+` on `source`, `id` and `user_id`
    /// keeps SQLite from picking idx_sessions_source / _source_id /
    /// _gateway_peer, which would fetch every operator row and sort them
    /// all in a temp b-tree. Ties are broken by rowid, the index's own
    /// trailing key, so no sort step is needed at all.
    pub fn list_sql(&self, q: &ListQuery) -> (String, Vec<rusqlite::types::Value>) {
        use rusqlite::types::Value;
        let mut sql = format!("SELECT {} FROM sessions s WHERE 1", self.session_cols);
        let mut p: Vec<Value> = Vec::new();
        if q.rows.operator_only {
            sql.push_str(r" AND +s.source = 'operator' AND +s.id LIKE 'op\_%' ESCAPE '\'");
        }
        if let Some(u) = &q.rows.user_id {
            p.push(Value::Text(u.clone()));
            sql.push_str(&format!(" AND +s.user_id = ?{}", p.len()));
        }
        if let Some(t) = q.since {
            p.push(Value::Real(t));
            sql.push_str(&format!(" AND s.started_at >= ?{}", p.len()));
        }
        if let Some(t) = q.until {
            p.push(Value::Real(t));
            sql.push_str(&format!(" AND s.started_at < ?{}", p.len()));
        }
        p.push(Value::Integer(q.limit.unwrap_or(-1)));
        p.push(Value::Integer(q.offset.max(0)));
        sql.push_str(&format!(
            " ORDER BY s.started_at DESC, s.rowid LIMIT ?{} OFFSET ?{}",
            p.len() - 1,
            p.len()
        ));
        (sql, p)
    }

    /// Sessions, newest first (`started_at DESC`, then rowid).
    pub fn list_sessions(&self, q: &ListQuery) -> Result<Vec<Session>> {
        let (sql, p) = self.list_sql(q);
        let mut st = self
            .conn
            .prepare_cached(&sql)
            .map_err(self.err("listing sessions"))?;
        let rows = st
            .query_map(params_from_iter(p.iter()), session_from_row)
            .and_then(|r| r.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(self.err("listing sessions"))?;
        Ok(rows)
    }

    /// A session's messages in Hermes' replay order (`ORDER BY id`),
    /// including rewound ones (`active` says which).
    pub fn messages(&self, session_id: &str) -> Result<Vec<Message>> {
        let active = if self.caps.messages_active {
            "m.active"
        } else {
            "1"
        };
        let mut st = self
            .conn
            .prepare(&format!(
                "SELECT m.id, m.session_id, m.role, m.content, m.tool_call_id, m.tool_calls, m.tool_name, \
                 m.timestamp, m.token_count, m.finish_reason, m.reasoning, {active} \
                 FROM messages m WHERE m.session_id = ?1 ORDER BY m.id"
            ))
            .map_err(self.err("reading messages"))?;
        let rows = st
            .query_map([session_id], message_from_row)
            .and_then(|r| r.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(self.err("reading messages"))?;
        Ok(rows)
    }

    /// Per-model usage of one session (session_model_usage summed per
    /// model and billing provider, ordered by model then provider).
    pub fn model_usage(&self, session_id: &str) -> Result<Vec<ModelUsage>> {
        let mut st = self
            .conn
            .prepare(
                "SELECT model, billing_provider, SUM(api_call_count), SUM(input_tokens), SUM(output_tokens), \
                 SUM(cache_read_tokens), SUM(cache_write_tokens), SUM(reasoning_tokens), \
                 TOTAL(estimated_cost_usd), TOTAL(actual_cost_usd) \
                 FROM session_model_usage WHERE session_id = ?1 \
                 GROUP BY model, billing_provider ORDER BY model, billing_provider",
            )
            .map_err(self.err("reading model usage"))?;
        let rows = st
            .query_map([session_id], |r| {
                Ok(ModelUsage {
                    model: opt_text(r, 0)?,
                    billing_provider: opt_text(r, 1)?,
                    api_call_count: int(r, 2)?,
                    input_tokens: int(r, 3)?,
                    output_tokens: int(r, 4)?,
                    cache_read_tokens: int(r, 5)?,
                    cache_write_tokens: int(r, 6)?,
                    reasoning_tokens: int(r, 7)?,
                    estimated_cost_usd: opt_f64(r, 8)?.unwrap_or(0.0),
                    actual_cost_usd: opt_f64(r, 9)?.unwrap_or(0.0),
                })
            })
            .and_then(|r| r.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(self.err("reading model usage"))?;
        Ok(rows)
    }

    /// Operator sessions of one user: (count, input tokens, output tokens,
    /// cost = Σ COALESCE(actual_cost_usd, estimated_cost_usd, 0)).
    pub fn user_totals(&self, user_id: &str) -> Result<(i64, i64, i64, f64)> {
        self.conn
            .query_row(
                &format!(
                    "SELECT count(*), TOTAL(s.input_tokens), TOTAL(s.output_tokens), \
                     TOTAL(COALESCE(s.actual_cost_usd, s.estimated_cost_usd, 0)) \
                     FROM sessions s WHERE {OPERATOR_ROW_S} AND s.user_id = ?1"
                ),
                [user_id],
                |r| {
                    Ok((
                        int(r, 0)?,
                        opt_f64(r, 1)?.unwrap_or(0.0) as i64,
                        opt_f64(r, 2)?.unwrap_or(0.0) as i64,
                        opt_f64(r, 3)?.unwrap_or(0.0),
                    ))
                },
            )
            .map_err(self.err("summing user sessions"))
    }

    /// Messages with `from <= timestamp < to` in operator sessions, counted
    /// per (session user_id, session model).
    pub fn message_counts_between(&self, from: f64, to: f64) -> Result<Vec<MessageCount>> {
        let mut st = self
            .conn
            .prepare(&format!(
                "SELECT s.user_id, s.model, count(*) FROM sessions s \
                 JOIN messages m ON m.session_id = s.id AND m.timestamp >= ?1 AND m.timestamp < ?2 \
                 WHERE {OPERATOR_ROW_S} GROUP BY s.user_id, s.model"
            ))
            .map_err(self.err("counting messages"))?;
        let rows = st
            .query_map(rusqlite::params![from, to], |r| {
                Ok((opt_text(r, 0)?, opt_text(r, 1)?, int(r, 2)?))
            })
            .and_then(|r| r.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(self.err("counting messages"))?;
        Ok(rows)
    }

    /// Full-text search limited to `rows`; at most `limit` hits. FTS paths
    /// are ordered by relevance (FTS5 rank, then message id), the LIKE path
    /// newest first. Rewound rows are excluded like Hermes does
    /// (`active = 1 OR compacted = 1`). Rows of operator sessions that
    /// Hermes' index leaves out ([`FtsCoverage`]) are found by a bounded
    /// scan after the indexed hits.
    pub fn search(&self, query: &str, rows: &RowFilter, limit: i64) -> Result<SearchOutcome> {
        use rusqlite::types::Value;
        let plan = plan_search(query, &self.caps)?;
        let live = self.live_messages_sql();
        let mut p: Vec<Value> = Vec::new();
        let mut wh: Vec<String> = live.iter().cloned().collect();
        let (from, snippet, order, by) = match &plan {
            SearchPlan::Nothing => return Ok(SearchOutcome::default()),
            SearchPlan::Fts(expr) => {
                p.push(Value::Text(expr.clone()));
                wh.insert(0, format!("messages_fts MATCH ?{}", p.len()));
                (
                    "messages_fts JOIN messages m ON m.id = messages_fts.rowid",
                    "snippet(messages_fts, 0, '>>>', '<<<', '...', 32)".to_string(),
                    "messages_fts.rank, m.id",
                    MatchedBy::Fts,
                )
            }
            SearchPlan::Trigram(expr) => {
                p.push(Value::Text(expr.clone()));
                wh.insert(0, format!("messages_fts_trigram MATCH ?{}", p.len()));
                (
                    "messages_fts_trigram JOIN messages m ON m.id = messages_fts_trigram.rowid",
                    "snippet(messages_fts_trigram, 0, '>>>', '<<<', '...', 32)".to_string(),
                    "messages_fts_trigram.rank, m.id",
                    MatchedBy::Trigram,
                )
            }
            SearchPlan::Like(terms) => {
                wh.extend(like_terms(terms, &mut p));
                (
                    "messages m",
                    like_snippet(terms, &mut p),
                    "m.timestamp DESC, m.id DESC",
                    MatchedBy::Like,
                )
            }
        };
        if rows.operator_only {
            wh.push(OPERATOR_ROW_S.to_string());
        }
        if let Some(u) = &rows.user_id {
            p.push(Value::Text(u.clone()));
            wh.push(format!("s.user_id = ?{}", p.len()));
        }
        p.push(Value::Integer(limit));
        let sql = format!(
            "SELECT m.session_id, m.id, m.role, {snippet}, m.timestamp, s.source, s.user_id \
             FROM {from} JOIN sessions s ON s.id = m.session_id \
             WHERE {} ORDER BY {order} LIMIT ?{}",
            wh.join(" AND "),
            p.len()
        );
        let mut out = SearchOutcome {
            hits: self.hits(&sql, &p, by)?,
            ..Default::default()
        };
        let room = limit - out.hits.len() as i64;
        let uncovered = match &plan {
            SearchPlan::Fts(_) => self
                .coverage()?
                .fts_tool_prefix
                .map(|n| format!("m.role = 'tool' AND length(m.content) > {n}")),
            SearchPlan::Trigram(_) if self.coverage()?.trigram_skips_tools => {
                Some("m.role = 'tool'".to_string())
            }
            _ => None,
        };
        if let (Some(uncovered), true) = (uncovered, room > 0) {
            let terms = match &plan {
                SearchPlan::Fts(_) => plan_words(query),
                _ => vec![escape_like(&query_terms(query).join(" "))],
            };
            self.scan(&mut out, &uncovered, &terms, rows, room)?;
        }
        Ok(out)
    }

    /// `active = 1 OR compacted = 1` where the columns exist.
    fn live_messages_sql(&self) -> Option<String> {
        match (self.caps.messages_active, self.caps.messages_compacted) {
            (true, true) => Some("(m.active = 1 OR m.compacted = 1)".into()),
            (true, false) => Some("m.active = 1".into()),
            _ => None,
        }
    }

    fn hits(
        &self,
        sql: &str,
        p: &[rusqlite::types::Value],
        by: MatchedBy,
    ) -> Result<Vec<SearchHit>> {
        let mut st = self
            .conn
            .prepare(sql)
            .map_err(self.err("searching messages"))?;
        let hits = st
            .query_map(params_from_iter(p.iter()), |r| {
                let (timestamp, timestamp_epoch) = time_pair(opt_f64(r, 4)?);
                Ok(SearchHit {
                    session_id: text(r, 0)?,
                    message_id: int(r, 1)?,
                    role: opt_text(r, 2)?,
                    snippet: opt_text(r, 3)?,
                    timestamp,
                    timestamp_epoch,
                    source: opt_text(r, 5)?,
                    user_id: opt_text(r, 6)?,
                    matched_by: by,
                })
            })
            .and_then(|r| r.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(self.err("searching messages"))?;
        Ok(hits)
    }

    /// The fallback: operator-session rows matching `uncovered` (rows
    /// Hermes' index leaves out), newest [`SCAN_MAX_ROWS`] of them, each
    /// term a substring (`LIKE`). Appends at most `room` hits not already
    /// found.
    fn scan(
        &self,
        out: &mut SearchOutcome,
        uncovered: &str,
        terms: &[String],
        rows: &RowFilter,
        room: i64,
    ) -> Result<()> {
        use rusqlite::types::Value;
        let mut p: Vec<Value> = Vec::new();
        let mut cand = vec![OPERATOR_ROW_S.to_string(), uncovered.to_string()];
        cand.extend(self.live_messages_sql());
        if let Some(u) = &rows.user_id {
            p.push(Value::Text(u.clone()));
            cand.push(format!("s.user_id = ?{}", p.len()));
        }
        p.push(Value::Integer(SCAN_MAX_ROWS));
        let cand_sql = format!(
            "SELECT m.id FROM sessions s JOIN messages m ON m.session_id = s.id \
             WHERE {} ORDER BY m.id DESC LIMIT ?{}",
            cand.join(" AND "),
            p.len()
        );
        let scanned: i64 = self
            .conn
            .query_row(
                &format!("SELECT count(*) FROM ({cand_sql})"),
                params_from_iter(p.iter()),
                |r| r.get(0),
            )
            .map_err(self.err("scanning messages"))?;
        let mut wh = like_terms(terms, &mut p);
        let snippet = like_snippet(terms, &mut p);
        let seen: Vec<String> = out.hits.iter().map(|h| h.message_id.to_string()).collect();
        if !seen.is_empty() {
            wh.push(format!("m.id NOT IN ({})", seen.join(",")));
        }
        p.push(Value::Integer(room));
        let sql = format!(
            "WITH cand AS ({cand_sql}) \
             SELECT m.session_id, m.id, m.role, {snippet}, m.timestamp, s.source, s.user_id \
             FROM cand JOIN messages m ON m.id = cand.id JOIN sessions s ON s.id = m.session_id \
             WHERE {} ORDER BY m.timestamp DESC, m.id DESC LIMIT ?{}",
            wh.join(" AND "),
            p.len()
        );
        out.hits.extend(self.hits(&sql, &p, MatchedBy::Scan)?);
        out.scanned = Some(scanned);
        out.scan_truncated = scanned >= SCAN_MAX_ROWS;
        Ok(())
    }

    /// Read once per search from the DDL Hermes wrote (see [`FtsCoverage`]).
    pub fn coverage(&self) -> Result<FtsCoverage> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT name, sql FROM sqlite_master WHERE name IN \
                 ('messages_fts_src', 'messages_fts_insert', 'messages_fts_trigram_src', \
                  'messages_fts_trigram_insert')",
            )
            .map_err(self.err("reading state.db's FTS layout"))?;
        let ddl: Vec<(String, String)> = st
            .query_map([], |r| {
                Ok((text(r, 0)?, opt_text(r, 1)?.unwrap_or_default()))
            })
            .and_then(|r| r.collect())
            .map_err(self.err("reading state.db's FTS layout"))?;
        let get = |n: &str| ddl.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
        let fts_tool_prefix = get("messages_fts_src")
            .or(get("messages_fts_insert"))
            .and_then(tool_prefix_of);
        let trigram_skips_tools = get("messages_fts_trigram_src")
            .or(get("messages_fts_trigram_insert"))
            .is_some_and(|sql| sql.contains("<> 'tool'") || sql.contains("!= 'tool'"));
        Ok(FtsCoverage {
            fts_tool_prefix,
            trigram_skips_tools,
        })
    }

    /// The session's system prompt as Hermes stored it: inline
    /// (`sessions.system_prompt`, 0.19) or by hash (`system_prompts`, 0.22).
    pub fn system_prompt(&self, id: &str) -> Result<Option<String>> {
        let sql = match (
            self.caps.sessions_system_prompt,
            self.caps.system_prompts_table,
        ) {
            (true, true) => {
                "SELECT COALESCE(s.system_prompt, p.prompt) FROM sessions s \
                 LEFT JOIN system_prompts p ON p.hash = s.system_prompt_hash WHERE s.id = ?1"
            }
            (false, true) => {
                "SELECT p.prompt FROM sessions s \
                 LEFT JOIN system_prompts p ON p.hash = s.system_prompt_hash WHERE s.id = ?1"
            }
            (true, false) => "SELECT s.system_prompt FROM sessions s WHERE s.id = ?1",
            (false, false) => return Ok(None),
        };
        self.conn
            .query_row(sql, [id], |r| opt_text(r, 0))
            .optional()
            .map(Option::flatten)
            .map_err(self.err("reading the system prompt"))
    }

    // -- writes (operator rows only) -------------------------------------

    fn guarded<T>(
        &self,
        what: &str,
        f: impl FnMut(&rusqlite::Transaction) -> rusqlite::Result<Guarded<T>>,
        id: &str,
    ) -> Result<T> {
        match with_immediate(&self.conn, &self.path, what, f)? {
            Guarded::Done(v) => Ok(v),
            Guarded::Missing => Err(Error::not_found(format!(
                "no operator session {}",
                crate::output::sanitize(id)
            ))),
            Guarded::Conflict(other) => Err(Error::conflict(format!(
                "the title is already used by session {}",
                crate::output::sanitize(&other)
            ))
            .hint("session titles are unique in Hermes; pick another title")),
        }
    }

    /// Set (or with `None`, clear) the title of an operator session. The
    /// title must already be sanitised ([`sanitize_title`]). Returns the
    /// previous title. Another session holding the title → `Kind::Conflict`.
    pub fn set_title(&self, id: &str, title: Option<&str>) -> Result<Option<String>> {
        self.guarded(
            "setting a session title",
            |tx| {
                let cur: Option<Option<String>> = tx
                    .query_row(
                        &format!("SELECT title FROM sessions WHERE id = ?1 AND {OPERATOR_ROW}"),
                        [id],
                        |r| opt_text(r, 0),
                    )
                    .optional()?;
                let Some(prev) = cur else {
                    return Ok(Guarded::Missing);
                };
                if let Some(t) = title {
                    let other: Option<String> = tx
                        .query_row(
                            "SELECT id FROM sessions WHERE title = ?1 AND id != ?2 LIMIT 1",
                            [t, id],
                            |r| text(r, 0),
                        )
                        .optional()?;
                    if let Some(o) = other {
                        return Ok(Guarded::Conflict(o));
                    }
                }
                let n = tx.execute(
                    &format!("UPDATE sessions SET title = ?1 WHERE id = ?2 AND {OPERATOR_ROW}"),
                    rusqlite::params![title, id],
                )?;
                Ok(if n == 1 {
                    Guarded::Done(prev)
                } else {
                    Guarded::Missing
                })
            },
            id,
        )
    }

    /// End an operator session like Hermes' `end_session`: `ended_at` and
    /// `end_reason` are set only while `ended_at IS NULL` (the first end
    /// wins). Returns whether the row changed.
    pub fn end_session(&self, id: &str, reason: &str) -> Result<bool> {
        self.guarded(
            "ending a session",
            |tx| {
                let exists: Option<i64> = tx
                    .query_row(
                        &format!("SELECT 1 FROM sessions WHERE id = ?1 AND {OPERATOR_ROW}"),
                        [id],
                        |r| r.get(0),
                    )
                    .optional()?;
                if exists.is_none() {
                    return Ok(Guarded::Missing);
                }
                let n = tx.execute(
                    &format!(
                        "UPDATE sessions SET ended_at = ?1, end_reason = ?2 \
                         WHERE id = ?3 AND {OPERATOR_ROW} AND ended_at IS NULL"
                    ),
                    rusqlite::params![now_epoch(), reason, id],
                )?;
                Ok(Guarded::Done(n == 1))
            },
            id,
        )
    }

    /// Insert a new operator session row (`source='operator'`, `started_at`
    /// now, counters at Hermes' defaults). The id must be `op_` + 12
    /// lowercase hex; an existing id → `Kind::Conflict`.
    pub fn create_operator_session(
        &self,
        id: &str,
        user_id: &str,
        model: Option<&str>,
    ) -> Result<()> {
        let ok = id.len() == 15
            && id.starts_with("op_")
            && id[3..].chars().all(|c| matches!(c, '0'..='9' | 'a'..='f'));
        if !ok {
            return Err(Error::internal(format!(
                "refusing to create session with id {id:?}: not op_<12 hex>"
            )));
        }
        let r = with_immediate(
            &self.conn,
            &self.path,
            "creating an operator session",
            |tx| {
                tx.execute(
                "INSERT INTO sessions (id, source, user_id, model, started_at) VALUES (?1, 'operator', ?2, ?3, ?4)",
                rusqlite::params![id, user_id, model, now_epoch()],
            )
            },
        );
        match r {
            Ok(_) => Ok(()),
            Err(e)
                if e.message.contains("UNIQUE constraint failed")
                    || e.message.contains("PRIMARY KEY") =>
            {
                Err(Error::conflict(format!("session {id} already exists")))
            }
            Err(e) => Err(e),
        }
    }

    /// Remove an operator session that has no messages (a first turn that
    /// failed before Hermes wrote anything), so no empty husk is left behind.
    /// Returns whether a row was removed.
    pub fn delete_empty_operator_session(&self, id: &str) -> Result<bool> {
        let sql = format!(
            "DELETE FROM sessions WHERE id = ?1 AND {OPERATOR_ROW}
             AND NOT EXISTS (SELECT 1 FROM messages WHERE session_id = ?1)"
        );
        let n = with_immediate(
            &self.conn,
            &self.path,
            "removing an empty operator session",
            |tx| tx.execute(&sql, [id]),
        )?;
        Ok(n > 0)
    }

    /// `EXPLAIN QUERY PLAN` details of a statement (for tests and `doctor`).
    pub fn query_plan(&self, sql: &str, p: &[&dyn ToSql]) -> Result<Vec<String>> {
        let mut st = self
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .map_err(self.err("explaining query"))?;
        let rows = st
            .query_map(p, |r| r.get::<_, String>(3))
            .and_then(|r| r.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(self.err("explaining query"))?;
        Ok(rows)
    }
}

fn unescape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut esc = false;
    for c in s.chars() {
        if !esc && c == '\\' {
            esc = true;
            continue;
        }
        esc = false;
        out.push(c);
    }
    out
}

/// Every (table, column) of the tables the operator uses, in one statement
/// (this runs on every open: one parse instead of four).
fn schema(conn: &Connection) -> rusqlite::Result<Vec<(String, Option<String>)>> {
    let mut st = conn.prepare(
        "SELECT m.name, p.name FROM sqlite_master m LEFT JOIN pragma_table_info(m.name) p
         WHERE m.type = 'table' AND m.name IN
           ('sessions', 'messages', 'session_model_usage', 'messages_fts', 'messages_fts_trigram',
            'system_prompts')",
    )?;
    let v = st
        .query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(v)
}

/// The once-per-open schema probe.
fn probe(conn: &Connection, path: &Path) -> Result<Caps> {
    let e = |e| Error::sqlite(path, "reading state.db schema", e);
    let mut missing: Vec<String> = Vec::new();
    let mut caps = Caps::default();
    let all = schema(conn).map_err(e)?;
    for (table, required) in REQUIRED_COLUMNS {
        let have: HashSet<&str> = all
            .iter()
            .filter(|(t, _)| t == table)
            .filter_map(|(_, c)| c.as_deref())
            .collect();
        if have.is_empty() {
            missing.push(format!("table {table}"));
            continue;
        }
        for c in *required {
            if !have.contains(*c) {
                missing.push(format!("{table}.{c}"));
            }
        }
        match *table {
            "sessions" => {
                caps.sessions_archived = have.contains("archived");
                caps.sessions_system_prompt = have.contains("system_prompt");
                caps.system_prompts_table = have.contains("system_prompt_hash")
                    && all
                        .iter()
                        .any(|(t, c)| t == "system_prompts" && c.as_deref() == Some("prompt"));
            }
            "messages" => {
                caps.messages_active = have.contains("active");
                caps.messages_compacted = have.contains("compacted");
            }
            _ => {}
        }
    }
    if !missing.is_empty() {
        return Err(Error::corrupt(format!(
            "{}: state.db schema incompatible: {} missing",
            path.display(),
            missing.join(", ")
        ))
        .hint("is this Hermes' state.db? hermes-operator reads Hermes 0.19 (schema 22) through 0.22 (schema 31); starting Hermes once migrates an older state.db"));
    }
    caps.has_fts = all.iter().any(|(t, _)| t == "messages_fts");
    caps.has_trigram = all.iter().any(|(t, _)| t == "messages_fts_trigram");
    Ok(caps)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hermes 0.19.0's schema, verbatim from hermes_state.py.
    pub(crate) const HERMES_SCHEMA: &str =
        include_str!("../../tests/fixtures/hermes_0.19.0_state_schema.sql");

    fn make_db(dir: &Path) -> PathBuf {
        let p = dir.join("state.db");
        let c = Connection::open(&p).unwrap();
        c.execute_batch("PRAGMA journal_mode=WAL;").unwrap();
        c.execute_batch(HERMES_SCHEMA).unwrap();
        p
    }

    fn seed(p: &Path, native: usize, operator: usize) {
        let c = Connection::open(p).unwrap();
        c.execute_batch("BEGIN").unwrap();
        for i in 0..native {
            c.execute(
                "INSERT INTO sessions (id, source, user_id, started_at, title) VALUES (?1, ?2, NULL, ?3, ?4)",
                rusqlite::params![format!("20260101_000000_{i:06x}"), if i % 2 == 0 { "cli" } else { "telegram" }, 1_700_000_000.0 + i as f64 * 7.0, format!("native {i}")],
            )
            .unwrap();
        }
        for i in 0..operator {
            c.execute(
                "INSERT INTO sessions (id, source, user_id, started_at) VALUES (?1, 'operator', ?2, ?3)",
                rusqlite::params![format!("op_{i:012x}"), if i % 3 == 0 { "u_a" } else { "u_b" }, 1_700_000_000.0 + i as f64 * 5.0],
            )
            .unwrap();
        }
        c.execute_batch("COMMIT").unwrap();
    }

    #[test]
    fn newest_operator_sessions_walk_the_started_index_without_sorting() {
        let d = tempfile::tempdir().unwrap();
        let p = make_db(d.path());
        seed(&p, 300, 300);
        for analyzed in [false, true] {
            if analyzed {
                Connection::open(&p)
                    .unwrap()
                    .execute_batch("ANALYZE")
                    .unwrap();
            }
            let db = StateDb::open_readonly(&p).unwrap();
            for (user, since) in [
                (None, None),
                (Some("u_a"), None),
                (None, Some(1.0)),
                (Some("u_b"), Some(1.0)),
            ] {
                let q = ListQuery {
                    rows: RowFilter {
                        operator_only: true,
                        user_id: user.map(str::to_string),
                    },
                    since,
                    until: None,
                    limit: Some(50),
                    offset: 0,
                };
                let (sql, params) = db.list_sql(&q);
                let refs: Vec<&dyn ToSql> = params.iter().map(|v| v as &dyn ToSql).collect();
                let plan = db.query_plan(&sql, &refs).unwrap().join(" | ");
                assert!(
                    !plan.contains("TEMP B-TREE"),
                    "analyzed={analyzed} {user:?} {since:?}: {plan}"
                );
                assert!(
                    plan.contains("idx_sessions_started"),
                    "analyzed={analyzed}: {plan}"
                );
                // And it returns the right rows, newest first.
                let got = db.list_sessions(&q).unwrap();
                assert_eq!(got.len(), 50);
                assert!(got.iter().all(|s| s.is_operator()));
                assert!(got
                    .windows(2)
                    .all(|w| w[0].started_at_epoch >= w[1].started_at_epoch));
                if let Some(u) = user {
                    assert!(got.iter().all(|s| s.user_id.as_deref() == Some(u)));
                }
            }
        }
        // The naive query does sort (what the unary plus avoids).
        let db = StateDb::open_readonly(&p).unwrap();
        let plan = db
            .query_plan("SELECT id FROM sessions WHERE source = 'operator' ORDER BY started_at DESC LIMIT 50", &[])
            .unwrap()
            .join(" | ");
        assert!(plan.contains("TEMP B-TREE"), "{plan}");
    }

    #[test]
    fn missing_db_is_not_created() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("state.db");
        let e = StateDb::open_readonly(&p).err().unwrap();
        assert_eq!(e.kind, crate::Kind::NotFound);
        assert!(e.message.contains(&p.display().to_string()));
        let e = StateDb::open_readwrite(&p).err().unwrap();
        assert_eq!(e.kind, crate::Kind::NotFound);
        assert!(!p.exists());
    }

    #[test]
    fn garbage_and_incompatible_schema_are_corrupt() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("state.db");
        std::fs::write(&p, vec![0x5a_u8; 8192]).unwrap();
        assert_eq!(
            StateDb::open_readonly(&p).err().unwrap().kind,
            crate::Kind::Corrupt
        );
        std::fs::write(&p, b"").unwrap();
        assert_eq!(
            StateDb::open_readonly(&p).err().unwrap().kind,
            crate::Kind::Corrupt
        );
        std::fs::remove_file(&p).unwrap();
        let p = make_db(d.path());
        Connection::open(&p)
            .unwrap()
            .execute_batch("ALTER TABLE sessions DROP COLUMN cost_status")
            .unwrap();
        let e = StateDb::open_readwrite(&p).err().unwrap();
        assert_eq!(e.kind, crate::Kind::Corrupt);
        assert!(
            e.message.contains("sessions.cost_status missing"),
            "{}",
            e.message
        );
    }

    #[test]
    fn extra_columns_and_nulls_are_tolerated() {
        let d = tempfile::tempdir().unwrap();
        let p = make_db(d.path());
        let c = Connection::open(&p).unwrap();
        c.execute_batch(
            "ALTER TABLE sessions ADD COLUMN future_thing TEXT;
             INSERT INTO sessions (id, source, started_at, message_count, input_tokens) VALUES ('op_000000000001', 'operator', 'garbage', NULL, NULL);
             INSERT INTO messages (session_id, role, content, tool_calls, timestamp) VALUES ('op_000000000001', 'assistant', NULL, 'not json', 5);",
        )
        .unwrap();
        let db = StateDb::open_readonly(&p).unwrap();
        let s = db.get_session("op_000000000001").unwrap().unwrap();
        assert_eq!(s.started_at_epoch, None);
        assert_eq!(s.message_count, 0);
        let m = db.messages(&s.id).unwrap();
        assert_eq!(m[0].tool_calls, serde_json::json!("not json"));
        assert!(m[0].active);
    }

    #[test]
    fn writes_touch_operator_rows_only() {
        let d = tempfile::tempdir().unwrap();
        let p = make_db(d.path());
        seed(&p, 3, 0);
        let db = StateDb::open_readwrite(&p).unwrap();
        // A native row, even one whose id looks like ours.
        Connection::open(&p)
            .unwrap()
            .execute("INSERT INTO sessions (id, source, started_at) VALUES ('op_aaaaaaaaaaaa', 'cli', 1)", [])
            .unwrap();
        assert_eq!(
            db.set_title("op_aaaaaaaaaaaa", Some("x"))
                .err()
                .unwrap()
                .kind,
            crate::Kind::NotFound
        );
        assert_eq!(
            db.end_session("20260101_000000_000000", "x")
                .err()
                .unwrap()
                .kind,
            crate::Kind::NotFound
        );
        db.create_operator_session("op_0123456789ab", "u_a", Some("m"))
            .unwrap();
        assert_eq!(
            db.create_operator_session("op_0123456789ab", "u_a", None)
                .err()
                .unwrap()
                .kind,
            crate::Kind::Conflict
        );
        assert_eq!(
            db.set_title("op_0123456789ab", Some("native 1"))
                .err()
                .unwrap()
                .kind,
            crate::Kind::Conflict
        );
        assert_eq!(db.set_title("op_0123456789ab", Some("mine")).unwrap(), None);
        assert_eq!(
            db.set_title("op_0123456789ab", None).unwrap(),
            Some("mine".into())
        );
        assert!(db.end_session("op_0123456789ab", "done").unwrap());
        assert!(!db.end_session("op_0123456789ab", "again").unwrap());
        let s = db.get_session("op_0123456789ab").unwrap().unwrap();
        assert_eq!(s.end_reason.as_deref(), Some("done"));
        assert_eq!(s.source, "operator");
        assert_eq!(s.user_id.as_deref(), Some("u_a"));
    }

    #[test]
    fn readers_are_not_blocked_by_a_writer_and_writers_report_busy() {
        let d = tempfile::tempdir().unwrap();
        let p = make_db(d.path());
        seed(&p, 2, 2);
        let holder = Connection::open(&p).unwrap();
        holder
            .execute_batch(
                "BEGIN IMMEDIATE; UPDATE sessions SET title = 'held' WHERE id = 'op_000000000000';",
            )
            .unwrap();
        let ro = StateDb::open_readonly(&p).unwrap();
        assert_eq!(ro.list_sessions(&ListQuery::default()).unwrap().len(), 4);
        let rw = StateDb::open_readwrite(&p).unwrap();
        let e = rw.set_title("op_000000000001", Some("t")).err().unwrap();
        assert_eq!(e.kind, crate::Kind::Busy);
        holder.execute_batch("ROLLBACK").unwrap();
        rw.set_title("op_000000000001", Some("t")).unwrap();
    }

    #[test]
    fn title_sanitising_matches_hermes() {
        assert_eq!(
            sanitize_title("  a\t\nb\x1b[31m  ").unwrap().as_deref(),
            Some("a b[31m")
        );
        assert_eq!(
            sanitize_title("x\u{200b}\u{202e}y").unwrap().as_deref(),
            Some("xy")
        );
        assert_eq!(sanitize_title(" \n ").unwrap(), None);
        assert_eq!(
            sanitize_title(&"é".repeat(100))
                .unwrap()
                .unwrap()
                .chars()
                .count(),
            100
        );
        assert_eq!(
            sanitize_title(&"é".repeat(101)).err().unwrap().kind,
            crate::Kind::Usage
        );
    }

    #[test]
    fn search_plans_never_pass_syntax_through() {
        let caps = Caps {
            has_fts: true,
            has_trigram: true,
            ..Default::default()
        };
        assert_eq!(
            plan_search("hello world", &caps).unwrap(),
            SearchPlan::Fts("\"hello\" AND \"world\"".into())
        );
        assert_eq!(
            plan_search("say \"hi\" NEAR(a b) *", &caps).unwrap(),
            SearchPlan::Fts("\"say\" AND \"\"\"hi\"\"\" AND \"NEAR(a\" AND \"b)\"".into())
        );
        assert_eq!(plan_search("* ^ :", &caps).unwrap(), SearchPlan::Nothing);
        assert_eq!(
            plan_search("a\u{0}b\u{1c}c", &caps).unwrap(),
            plan_search("a b c", &caps).unwrap()
        );
        assert_eq!(
            plan_search("大别山项目", &caps).unwrap(),
            SearchPlan::Trigram("\"大别山项目\"".into())
        );
        assert_eq!(
            plan_search("大别", &caps).unwrap(),
            SearchPlan::Like(vec!["大别".into()])
        );
        assert_eq!(
            plan_search("5%_大", &caps).unwrap(),
            SearchPlan::Trigram("\"5%_大\"".into())
        );
        assert_eq!(
            plan_search("%大", &caps).unwrap(),
            SearchPlan::Like(vec![r"\%大".into()])
        );
        assert_eq!(
            plan_search("   ", &caps).err().unwrap().kind,
            crate::Kind::Usage
        );
        assert_eq!(
            plan_search(&"a".repeat(100_000), &caps).err().unwrap().kind,
            crate::Kind::Usage
        );
        assert!(plan_search(&"a".repeat(512), &caps).is_ok());
    }

    #[test]
    fn search_runs_against_hermes_fts_tables() {
        let d = tempfile::tempdir().unwrap();
        let p = make_db(d.path());
        let c = Connection::open(&p).unwrap();
        c.execute_batch(
            "INSERT INTO sessions (id, source, user_id, started_at) VALUES ('op_000000000001', 'operator', 'u_a', 1);
             INSERT INTO sessions (id, source, user_id, started_at) VALUES ('20260101_000000_abcdef', 'cli', NULL, 1);
             INSERT INTO messages (session_id, role, content, timestamp) VALUES ('op_000000000001', 'user', 'deploy the chat-send service to 大别山项目 now', 2);
             INSERT INTO messages (session_id, role, content, timestamp) VALUES ('20260101_000000_abcdef', 'user', 'deploy natively 大别山项目', 3);
             INSERT INTO messages (session_id, role, content, timestamp, active) VALUES ('op_000000000001', 'user', 'deploy rewound', 4, 0);
             INSERT INTO messages (session_id, role, content, timestamp) VALUES ('op_000000000001', 'user', 'rate is 100% sure', 5);",
        )
        .unwrap();
        let db = StateDb::open_readonly(&p).unwrap();
        assert!(db.caps.has_fts && db.caps.has_trigram);
        let op = RowFilter {
            operator_only: true,
            user_id: None,
        };
        let all = RowFilter::default();
        assert_eq!(db.search("deploy", &op, 10).unwrap().hits.len(), 1);
        assert_eq!(db.search("deploy", &all, 10).unwrap().hits.len(), 2);
        assert_eq!(db.search("chat-send", &op, 10).unwrap().hits.len(), 1);
        assert_eq!(db.search("大别山", &all, 10).unwrap().hits.len(), 2);
        assert_eq!(db.search("大别", &op, 10).unwrap().hits.len(), 1);
        assert!(db.search("大别", &op, 10).unwrap().hits[0]
            .snippet
            .as_deref()
            .unwrap()
            .contains("大别"));
        assert_eq!(
            db.search(
                "deploy",
                &RowFilter {
                    operator_only: true,
                    user_id: Some("u_b".into())
                },
                10
            )
            .unwrap()
            .hits
            .len(),
            0
        );
        let hit = &db.search("service", &op, 10).unwrap().hits[0];
        assert!(
            hit.snippet.as_deref().unwrap().contains(">>>service<<<"),
            "{hit:?}"
        );
        for q in [
            "\"",
            "*",
            "NEAR(",
            "AND OR",
            "^",
            ":",
            "'",
            "a\"b",
            "deploy*",
            "col:deploy",
            "NOT deploy",
            "(((",
            "100%",
            "%",
            "_",
        ] {
            db.search(q, &all, 10)
                .unwrap_or_else(|e| panic!("{q:?}: {e}"));
        }
        assert_eq!(db.search("100%", &all, 10).unwrap().hits.len(), 1);
    }
}
