//! The three databases, one module each: `users` (users.db), `events`
//! (events.db) and `state` (Hermes' state.db); `pg`, the fleet's
//! PostgreSQL (so far its audit log). Shared here: how the
//! operator's own SQLite files are opened, migrated and written.

pub mod events;
pub mod pg;
pub mod pool;
pub mod state;
pub mod users;

use crate::error::{Error, Result};
use crate::home;
use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};
use std::path::Path;
use std::time::Duration;

/// How long one attempt waits on a lock inside SQLite before we retry.
const BUSY_TIMEOUT: Duration = Duration::from_millis(1000);
/// Application-level retries around `BEGIN IMMEDIATE` (each after a 1 s busy wait):
/// about 13 s in all before a held lock is reported as busy. Five (6 s) was
/// measured too few: four appenders and a verifier on a loaded 2-core machine
/// (`tests/cli/audit_tamper.rs`) starved one writer for longer.
const WRITE_RETRIES: u32 = 10;

/// Open (creating if needed) one of the operator's own databases: WAL,
/// synchronous=FULL (the audit log must survive power loss), busy timeout,
/// foreign keys, mode 0600; then apply `migrations` (index = user_version).
pub fn open_own(path: &Path, what: &str, migrations: &[&str]) -> Result<Connection> {
    if let Some(dir) = path.parent() {
        home::ensure_private_dir(dir)?;
    }
    let existed = path.exists();
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| Error::sqlite(path, &format!("opening {what}"), e))?;
    if !existed {
        home::restrict_file(path)?;
    }
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| Error::sqlite(path, "setting busy timeout", e))?;
    // journal_mode needs a lock and touches the header: this is where a
    // corrupt file or a foreign non-SQLite file shows itself.
    let mode: String = conn
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .map_err(|e| Error::sqlite(path, &format!("opening {what}"), e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::corrupt(format!(
            "{}: could not switch {what} to WAL (got {mode})",
            path.display()
        )));
    }
    conn.execute_batch("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;")
        .map_err(|e| Error::sqlite(path, "setting pragmas", e))?;
    migrate(&conn, path, what, migrations)?;
    for suffix in ["-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        home::restrict_file(Path::new(&p))?;
    }
    Ok(conn)
}

/// Open one of the operator's databases for reading only, without creating
/// it. A missing file is "not found" with the path in the message.
pub fn open_own_readonly(path: &Path, what: &str) -> Result<Connection> {
    if !path.exists() {
        return Err(Error::not_found(format!(
            "{what} not found at {}",
            path.display()
        )));
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| Error::sqlite(path, &format!("opening {what}"), e))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| Error::sqlite(path, "setting busy timeout", e))?;
    let v: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| Error::sqlite(path, &format!("reading {what}"), e))?;
    if v == 0 {
        return Err(Error::corrupt(format!(
            "{} is not a hermes-operator {what} (no schema version)",
            path.display()
        )));
    }
    Ok(conn)
}

fn migrate(conn: &Connection, path: &Path, what: &str, migrations: &[&str]) -> Result<()> {
    let current: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| Error::sqlite(path, "reading schema version", e))?;
    let target = migrations.len() as i64;
    if current > target {
        return Err(Error::corrupt(format!(
            "{} has schema version {current}, newer than this hermes-operator understands ({target})",
            path.display()
        ))
        .hint("upgrade hermes-operator"));
    }
    if current == target {
        return Ok(());
    }
    // Before touching anything, make sure this really is our database (or a new, empty one).
    if current == 0 {
        let foreign: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'",
                [],
                |r| r.get(0),
            )
            .map_err(|e| Error::sqlite(path, "inspecting schema", e))?;
        if foreign > 0 {
            return Err(Error::corrupt(format!(
                "{} already holds tables but is not a hermes-operator {what}",
                path.display()
            ))
            .hint("move the file aside; hermes-operator will create a fresh one"));
        }
    }
    with_immediate(conn, path, &format!("migrating {what}"), |tx| {
        // Re-read inside the lock: another process may have migrated meanwhile.
        let current: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        for (i, sql) in migrations.iter().enumerate().skip(current as usize) {
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        }
        Ok(())
    })
}

/// Run `f` inside `BEGIN IMMEDIATE`, retrying with jitter while another
/// process holds the write lock. Busy after all retries → [`Kind::Busy`].
pub fn with_immediate<T>(
    conn: &Connection,
    path: &Path,
    what: &str,
    mut f: impl FnMut(&Transaction) -> rusqlite::Result<T>,
) -> Result<T> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let r = (|| {
            // SAFETY of unchecked: we never nest transactions on these connections.
            let tx = Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
            let v = f(&tx)?;
            tx.commit()?;
            Ok(v)
        })();
        match r {
            Ok(v) => return Ok(v),
            Err(e) if is_busy(&e) && attempt < WRITE_RETRIES => {
                std::thread::sleep(Duration::from_millis(20 + (rand::random::<u64>() % 130)));
            }
            Err(e) => return Err(Error::sqlite(path, what, e)),
        }
    }
}

/// `synchronous=NORMAL` on a WAL connection until dropped, then the
/// previous setting again: a commit made meanwhile is written but not
/// flushed to disk; it reaches the disk with the next flush of the
/// write-ahead log (anyone's commit with `synchronous=FULL`, a checkpoint,
/// or [`events::Flushing`]). In WAL mode that never corrupts the database;
/// `None` (nothing changed) on a connection not in WAL mode.
pub(crate) struct RelaxedSync<'c> {
    conn: &'c Connection,
    previous: i64,
}

impl<'c> RelaxedSync<'c> {
    pub(crate) fn begin(conn: &'c Connection) -> Option<RelaxedSync<'c>> {
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .ok()?;
        if !mode.eq_ignore_ascii_case("wal") {
            return None;
        }
        let previous: i64 = conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .ok()?;
        conn.execute_batch("PRAGMA synchronous=NORMAL").ok()?;
        Some(RelaxedSync { conn, previous })
    }
}

impl Drop for RelaxedSync<'_> {
    fn drop(&mut self) {
        let _ = self
            .conn
            .execute_batch(&format!("PRAGMA synchronous={}", self.previous));
    }
}

pub fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(f.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

/// Current UTC time as RFC 3339 with microseconds, the format of every
/// timestamp the operator writes to its own databases.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}
