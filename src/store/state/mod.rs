//! state.db: Hermes' own session store (docs/design.md §5, docs/hermes.md "state.db").
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
    /// The start of the first user message (replay order), read only for
    /// sessions without a title: Hermes 0.19 titles no API session, so the
    /// front ends name untitled sessions by it (`ops::sessions`'s
    /// `display_title`). Not a column of Hermes': never serialised here.
    #[serde(skip)]
    pub first_user_message: Option<String>,
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

/// Hermes 0.19.0's schema, verbatim from hermes_state.py: what
/// [`StateDb::empty`] answers from before Hermes wrote state.db.
pub(crate) const HERMES_SCHEMA: &str = include_str!("hermes_0_19_schema.sql");

// The seams: opening and probing (open), reading (read), search, the
// operator's writes (write), tolerant value readers (values), and the pure
// title/search-input rules (text).
mod open;
mod read;
mod search;
mod text;
mod values;
mod write;

use open::*;
use search::*;
pub use text::*;
use values::*;
pub use write::Flush;

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) use super::HERMES_SCHEMA;

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
    fn a_turn_row_waits_for_hermes_flush_in_wal_mode_only() {
        let sync = |db: &StateDb| -> i64 {
            db.conn
                .query_row("PRAGMA synchronous", [], |r| r.get(0))
                .unwrap()
        };
        for (mode, relaxed) in [("wal", true), ("delete", false)] {
            let d = tempfile::tempdir().unwrap();
            let p = make_db(d.path());
            Connection::open(&p)
                .unwrap()
                .query_row(&format!("PRAGMA journal_mode={mode}"), [], |_| Ok(()))
                .unwrap();
            let db = StateDb::open_readwrite(&p).unwrap();
            assert_eq!(sync(&db), 2, "{mode}: FULL");
            assert_eq!(
                crate::store::RelaxedSync::begin(&db.conn).is_some(),
                relaxed,
                "{mode}"
            );
            assert_eq!(sync(&db), 2, "{mode}: restored when the guard drops");
            db.create_operator_session("op_00000000000a", "u_a", None, Flush::WithHermes)
                .unwrap();
            assert_eq!(sync(&db), 2, "{mode}: restored after the insert");
            // Committed: Hermes' own connection sees the row at once.
            let hermes = Connection::open(&p).unwrap();
            let source: String = hermes
                .query_row(
                    "SELECT source FROM sessions WHERE id = 'op_00000000000a'",
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(source, "operator");
        }
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
        db.create_operator_session("op_0123456789ab", "u_a", Some("m"), Flush::Now)
            .unwrap();
        assert_eq!(
            db.create_operator_session("op_0123456789ab", "u_a", None, Flush::WithHermes)
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
    fn untitled_sessions_carry_their_first_user_message_and_titles_are_searchable() {
        let d = tempfile::tempdir().unwrap();
        let p = make_db(d.path());
        seed(&p, 0, 300);
        let c = Connection::open(&p).unwrap();
        // Replay order is by id; the assistant's message comes first, the
        // second user message has an earlier timestamp than nothing else.
        c.execute_batch(
            "INSERT INTO messages (session_id, role, content, timestamp) VALUES ('op_000000000001', 'assistant', 'hi', 2);
             INSERT INTO messages (session_id, role, content, timestamp) VALUES ('op_000000000001', 'user', 'first question', 3);
             INSERT INTO messages (session_id, role, content, timestamp) VALUES ('op_000000000001', 'user', 'second question', 4);
             INSERT INTO messages (session_id, role, content, timestamp) VALUES ('op_000000000002', 'user', 'titled anyway', 2);
             UPDATE sessions SET title = 'Deploy the Blue service' WHERE id = 'op_000000000002';
             UPDATE sessions SET title = 'deploy red' WHERE id = 'op_000000000003';",
        )
        .unwrap();
        let db = StateDb::open_readonly(&p).unwrap();
        let first = |id| db.get_session(id).unwrap().unwrap().first_user_message;
        assert_eq!(first("op_000000000001").as_deref(), Some("first question"));
        assert_eq!(first("op_000000000002"), None, "titled: not read");
        assert_eq!(first("op_000000000004"), None, "no messages");
        let op = RowFilter {
            operator_only: true,
            user_id: None,
        };
        let ids = |q: &str, rows: &RowFilter| -> Vec<String> {
            db.search_titles(q, rows, 10)
                .unwrap()
                .into_iter()
                .map(|s| s.id)
                .collect()
        };
        // Newest first; every word; ASCII case-insensitive; `%` is literal.
        assert_eq!(ids("DEPLOY", &op), ["op_000000000003", "op_000000000002"]);
        assert_eq!(ids("deploy blue", &op), ["op_000000000002"]);
        assert!(ids("100%", &op).is_empty());
        let u_b = RowFilter {
            operator_only: true,
            user_id: Some("u_b".into()),
        };
        // op_…2 belongs to u_b (i % 3 != 0), op_…3 to u_a.
        assert_eq!(ids("deploy", &u_b), ["op_000000000002"]);
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
