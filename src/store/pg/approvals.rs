//! The approvals inbox shared by a fleet's `serve` replicas: a turn waiting
//! for an approval on one replica puts its request here, any replica may
//! answer it, and the answer reaches the waiting replica by `NOTIFY` (and,
//! should a notification be missed while its listener reconnects, by the
//! listener's periodic look). The turn itself, and the decision it records,
//! stay on the replica that runs it (ops/chat/approvers.rs).

use super::{pg_error, Pg};
use crate::error::Result;

/// The channel answers are announced on; the payload is the replica that
/// waits.
pub const CHANNEL: &str = "hermes_operator_approvals";

/// A waiting request as the inbox holds it.
pub struct Waiting {
    pub session_id: String,
    pub replica: String,
    pub owner_id: String,
    /// The request as the replica lists it (JSON of `PendingView`).
    pub view: String,
}

/// Puts (or replaces) the request waiting in `session_id` on `replica`.
pub fn put(pg: &Pg, w: &Waiting) -> Result<()> {
    pg.client()
        .execute(
            "INSERT INTO approvals (session_id, replica, owner_id, view)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (session_id) DO UPDATE SET replica = EXCLUDED.replica,
               owner_id = EXCLUDED.owner_id, view = EXCLUDED.view,
               answer = NULL, decided_by = NULL",
            &[&w.session_id, &w.replica, &w.owner_id, &w.view],
        )
        .map_err(|e| pg_error(&pg.target, "putting an approval request into", e))?;
    Ok(())
}

/// Removes `replica`'s request of `session_id` (answered or given up).
pub fn remove(pg: &Pg, session_id: &str, replica: &str) -> Result<()> {
    pg.client()
        .execute(
            "DELETE FROM approvals WHERE session_id = $1 AND replica = $2",
            &[&session_id, &replica],
        )
        .map_err(|e| pg_error(&pg.target, "removing an approval request from", e))?;
    Ok(())
}

/// Every request still waiting for an answer, oldest first.
pub fn waiting(pg: &Pg) -> Result<Vec<Waiting>> {
    let rows = pg
        .client()
        .query(
            "SELECT session_id, replica, owner_id, view FROM approvals
             WHERE answer IS NULL ORDER BY put_at",
            &[],
        )
        .map_err(|e| pg_error(&pg.target, "reading approval requests in", e))?;
    Ok(rows
        .iter()
        .map(|r| Waiting {
            session_id: r.get(0),
            replica: r.get(1),
            owner_id: r.get(2),
            view: r.get(3),
        })
        .collect())
}

/// The owner of the request waiting in `session_id`, if one waits.
pub fn owner_of(pg: &Pg, session_id: &str) -> Result<Option<String>> {
    Ok(pg
        .client()
        .query_opt(
            "SELECT owner_id FROM approvals WHERE session_id = $1 AND answer IS NULL",
            &[&session_id],
        )
        .map_err(|e| pg_error(&pg.target, "reading approval requests in", e))?
        .map(|r| r.get(0)))
}

/// Answers the request waiting in `session_id` and tells its replica, in
/// one transaction (the notification goes out when it commits). `false`:
/// nothing waits there (answered already, or given up).
pub fn answer(pg: &Pg, session_id: &str, choice: &str, decided_by: &str) -> Result<bool> {
    let err = |e| pg_error(&pg.target, "answering an approval request in", e);
    let mut c = pg.client();
    let mut tx = c.transaction().map_err(err)?;
    let Some(row) = tx
        .query_opt(
            "UPDATE approvals SET answer = $2, decided_by = $3
             WHERE session_id = $1 AND answer IS NULL RETURNING replica",
            &[&session_id, &choice, &decided_by],
        )
        .map_err(err)?
    else {
        return Ok(false);
    };
    let replica: String = row.get(0);
    tx.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &replica])
        .map_err(err)?;
    tx.commit().map_err(err)?;
    Ok(true)
}

/// Takes the answers given to `replica`'s requests: (session, choice,
/// decided by).
pub fn take_answers(pg: &Pg, replica: &str) -> Result<Vec<(String, String, String)>> {
    let rows = pg
        .client()
        .query(
            "DELETE FROM approvals WHERE replica = $1 AND answer IS NOT NULL
             RETURNING session_id, answer, decided_by",
            &[&replica],
        )
        .map_err(|e| pg_error(&pg.target, "reading approval answers in", e))?;
    Ok(rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect())
}
