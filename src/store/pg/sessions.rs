//! Each host's operator sessions as `session list --json` shows them,
//! published there by the host's `serve` (ops/fleet.rs), so that any host
//! lists every host's sessions with a host column. Hermes' state.db stays
//! each host's own; this is a copy of what the list needs.

use super::{pg_error, Pg};
use crate::error::Result;

/// One session row to publish.
pub struct PublishedSession {
    pub id: String,
    pub started_at_epoch: Option<f64>,
    pub user_id: Option<String>,
    pub username: Option<String>,
    /// The session as `session list --json` shows it (JSON).
    pub info: String,
}

/// Upserts `rows` as `host`'s, in one transaction; how many.
pub fn publish(pg: &Pg, host: &str, rows: &[PublishedSession]) -> Result<usize> {
    let err = |e| pg_error(&pg.target, "publishing sessions to", e);
    let mut c = pg.client();
    let mut tx = c.transaction().map_err(err)?;
    let st = tx
        .prepare(
            "INSERT INTO sessions (host, id, started_at_epoch, user_id, username, info, published_at)
             VALUES ($1, $2, $3, $4, $5, $6, now())
             ON CONFLICT (host, id) DO UPDATE SET started_at_epoch = EXCLUDED.started_at_epoch,
               user_id = EXCLUDED.user_id, username = EXCLUDED.username, info = EXCLUDED.info,
               published_at = now()",
        )
        .map_err(err)?;
    for r in rows {
        tx.execute(
            &st,
            &[
                &host,
                &r.id,
                &r.started_at_epoch,
                &r.user_id,
                &r.username,
                &r.info,
            ],
        )
        .map_err(err)?;
    }
    tx.commit().map_err(err)?;
    Ok(rows.len())
}

/// Every host's published sessions, newest first: (host, info JSON).
pub fn list(
    pg: &Pg,
    username: Option<&str>,
    since: Option<f64>,
    limit: i64,
    offset: i64,
) -> Result<Vec<(String, String)>> {
    let rows = pg
        .client()
        .query(
            "SELECT host, info FROM sessions
             WHERE ($1::text IS NULL OR lower(username) = lower($1))
               AND ($2::float8 IS NULL OR started_at_epoch >= $2)
             ORDER BY started_at_epoch DESC NULLS LAST, host, id
             LIMIT $3 OFFSET $4",
            &[&username, &since, &limit, &offset],
        )
        .map_err(|e| pg_error(&pg.target, "reading the sessions in", e))?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Records where `host`'s `serve` is reached by the others (`None`: it
/// does not say).
pub fn announce_host(pg: &Pg, host: &str, peer_url: Option<&str>) -> Result<()> {
    pg.client()
        .execute(
            "INSERT INTO hosts (host, peer_url, seen_at) VALUES ($1, $2, now())
             ON CONFLICT (host) DO UPDATE SET peer_url = EXCLUDED.peer_url, seen_at = now()",
            &[&host, &peer_url],
        )
        .map_err(|e| pg_error(&pg.target, "announcing this host to", e))?;
    Ok(())
}

/// The host that published session `id` and where its `serve` is reached,
/// if another host than `own` did.
pub fn owner_of(pg: &Pg, id: &str, own: &str) -> Result<Option<(String, Option<String>)>> {
    Ok(pg
        .client()
        .query_opt(
            "SELECT s.host, h.peer_url FROM sessions s LEFT JOIN hosts h ON h.host = s.host
             WHERE s.id = $1 AND s.host <> $2
             ORDER BY s.published_at DESC LIMIT 1",
            &[&id, &own],
        )
        .map_err(|e| pg_error(&pg.target, "finding a session's host in", e))?
        .map(|r| (r.get(0), r.get(1))))
}
