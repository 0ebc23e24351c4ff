//! The few writes the operator makes, each guarded to operator rows.

use super::*;

impl StateDb {
    pub(super) fn guarded<T>(
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
    /// lowercase hex; an existing id → `Kind::Conflict`. `flush` says how
    /// soon the row must reach the disk.
    pub fn create_operator_session(
        &self,
        id: &str,
        user_id: &str,
        model: Option<&str>,
        flush: Flush,
    ) -> Result<()> {
        let ok = id.len() == 15
            && id.starts_with("op_")
            && id[3..].chars().all(|c| matches!(c, '0'..='9' | 'a'..='f'));
        if !ok {
            return Err(Error::internal(format!(
                "refusing to create session with id {id:?}: not op_<12 hex>"
            )));
        }
        let _relaxed = match flush {
            Flush::Now => None,
            Flush::WithHermes => crate::store::RelaxedSync::begin(&self.conn),
        };
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
}

/// How soon an operator write to state.db must be on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flush {
    /// When the commit returns (SQLite's `synchronous=FULL`, its default).
    Now,
    /// With the next commit that flushes state.db's write-ahead log: for the
    /// row of a session a chat turn is about to ask Hermes to continue,
    /// Hermes' own first write of that turn (Hermes commits with
    /// `synchronous=FULL`, and flushing the log flushes every frame before
    /// it, ours included). Saves the turn one disk flush (about 1 ms,
    /// benches/openai_bench.py). If power fails before that, the row is lost
    /// and nothing in state.db names it; the audit log says the session was
    /// started and its first turn never ended.
    /// Only in WAL mode, where `synchronous=NORMAL` never corrupts the
    /// database; in rollback-journal mode this is [`Flush::Now`].
    WithHermes,
}
