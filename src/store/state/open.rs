//! Opening state.db (read-only or read-write) and probing what its schema offers.

use super::*;

/// Outcome of a guarded write, decided inside the transaction.
pub(super) enum Guarded<T> {
    Done(T),
    Missing,
    Conflict(String),
}

const FIRST_USER_MESSAGE: &str = "CASE WHEN s.title IS NULL OR trim(s.title) = '' THEN \
     (SELECT substr(m.content, 1, 2000) FROM messages m \
      WHERE m.session_id = s.id AND m.role = 'user' ORDER BY m.timestamp, m.id LIMIT 1) END";

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

    pub(super) fn open(path: &Path, write: bool) -> Result<Self> {
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
        let session_cols = Self::session_cols(caps.sessions_archived);
        Ok(StateDb {
            conn,
            path: path.to_path_buf(),
            caps,
            session_cols,
        })
    }

    /// No state.db yet (a fresh install, Hermes not run): an in-memory
    /// database with Hermes' own schema, so every read answers with empty
    /// data instead of an error. Never written to disk; `path` is where
    /// state.db is expected.
    pub fn empty(path: &Path) -> Result<Self> {
        let conn = Connection::open_in_memory()
            .and_then(|c| c.execute_batch(super::HERMES_SCHEMA).map(|_| c))
            .map_err(|e| Error::sqlite(path, "making the empty state", e))?;
        let caps = probe(&conn, path)?;
        Ok(StateDb {
            conn,
            path: path.to_path_buf(),
            caps,
            session_cols: Self::session_cols(false),
        })
    }

    /// The first user message's start, only for an untitled session (CASE
    /// evaluates the subquery only then). Walking `idx_messages_session`
    /// (session_id, timestamp; rowid = id trailing) in order stops at the
    /// first user row without sorting; the content is cut in SQL so a huge
    /// first message is never read whole.
    fn session_cols(archived: bool) -> String {
        let archived = if archived { "s.archived" } else { "0" };
        format!(
            "s.id, s.source, s.user_id, s.model, s.title, s.started_at, s.ended_at, s.end_reason, \
             s.message_count, s.tool_call_count, s.input_tokens, s.output_tokens, s.cache_read_tokens, \
             s.cache_write_tokens, s.reasoning_tokens, s.billing_provider, s.estimated_cost_usd, \
             s.actual_cost_usd, s.cost_status, s.api_call_count, s.parent_session_id, {archived}, \
             {FIRST_USER_MESSAGE}"
        )
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(super) fn err(&self, what: &str) -> impl Fn(rusqlite::Error) -> Error + '_ {
        let what = what.to_string();
        move |e| Error::sqlite(&self.path, &what, e)
    }
}

/// Every (table, column) of the tables the operator uses, in one statement
/// (this runs on every open: one parse instead of four).
pub(super) fn schema(conn: &Connection) -> rusqlite::Result<Vec<(String, Option<String>)>> {
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
pub(super) fn probe(conn: &Connection, path: &Path) -> Result<Caps> {
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
