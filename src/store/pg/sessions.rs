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
    pub model: Option<String>,
    /// When each of its messages was written (Unix seconds): `audit daily
    /// --fleet` counts the messages of a day from them.
    pub message_times: Vec<f64>,
}

/// Upserts `rows` as `host`'s, in one transaction; how many.
pub fn publish(pg: &Pg, host: &str, rows: &[PublishedSession]) -> Result<usize> {
    let err = |e| pg_error(&pg.target, "publishing sessions to", e);
    let mut c = pg.client();
    let mut tx = c.transaction().map_err(err)?;
    let st = tx
        .prepare(
            "INSERT INTO sessions (host, id, started_at_epoch, user_id, username, info, model,
               message_times, published_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now())
             ON CONFLICT (host, id) DO UPDATE SET started_at_epoch = EXCLUDED.started_at_epoch,
               user_id = EXCLUDED.user_id, username = EXCLUDED.username, info = EXCLUDED.info,
               model = EXCLUDED.model, message_times = EXCLUDED.message_times, published_at = now()",
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
                &r.model,
                &r.message_times,
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

/// Every host's (or the named host's) published sessions of `user_id`,
/// newest first: (host, the session as `session list --json` shows it).
pub fn of_user(pg: &Pg, user_id: &str, host: Option<&str>) -> Result<Vec<(String, String)>> {
    let rows = pg
        .client()
        .query(
            "SELECT host, info FROM sessions
             WHERE user_id = $1 AND ($2::text IS NULL OR host = $2)
             ORDER BY started_at_epoch DESC NULLS LAST, host, id",
            &[&user_id, &host],
        )
        .map_err(|e| pg_error(&pg.target, "reading a user's sessions in", e))?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// A session started on the day: (host, id, user_id, model, input tokens,
/// output tokens, cost).
pub type Started = (
    String,
    String,
    Option<String>,
    Option<String>,
    i64,
    i64,
    f64,
);

/// An `llm_call` event of the day and its session as published.
pub struct DayCall {
    pub host: String,
    pub session_id: String,
    /// The event's user.
    pub user_id: Option<String>,
    pub data: String,
    pub session_user: Option<String>,
    pub session_model: Option<String>,
}

/// What `audit daily --fleet` reads of the published sessions for the day
/// `[from, to)` (Unix seconds), every host's or the named host's.
pub struct DayRows {
    /// Sessions started that day.
    pub started: Vec<Started>,
    /// Messages written that day per (user_id, model).
    pub messages: Vec<(Option<String>, Option<String>, i64)>,
    /// The `llm_call` events of operator sessions that day, oldest first.
    pub calls: Vec<DayCall>,
    /// (host, session) of the started sessions that have any `llm_call`
    /// event, on any day.
    pub with_calls: std::collections::HashSet<(String, String)>,
}

/// Which of `started` have any `llm_call` event (on any day).
fn with_calls(
    tx: &mut postgres::Transaction,
    started: &[Started],
) -> std::result::Result<std::collections::HashSet<(String, String)>, postgres::Error> {
    let hosts: Vec<&str> = started.iter().map(|s| s.0.as_str()).collect();
    let ids: Vec<&str> = started.iter().map(|s| s.1.as_str()).collect();
    Ok(tx
        .query(
            "SELECT DISTINCT e.host, e.session_id FROM events e
             JOIN unnest($1::text[], $2::text[]) AS s(host, id) ON s.host = e.host AND s.id = e.session_id
             WHERE e.type = 'llm_call'",
            &[&hosts, &ids],
        )?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
}

/// (`from`/`to`: the same bounds as Unix seconds and as the events' RFC
/// 3339 times.)
pub fn day_rows(
    pg: &Pg,
    (from, to): (f64, f64),
    (from_ts, to_ts): (&str, &str),
    host: Option<&str>,
) -> Result<DayRows> {
    let err = |e| pg_error(&pg.target, "reading the day's usage in", e);
    let mut c = pg.client();
    // One snapshot for all four reads.
    let mut tx = c
        .build_transaction()
        .isolation_level(postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .map_err(err)?;
    let started = tx
        .query(
            "SELECT host, id, user_id, model,
                    coalesce(((info::jsonb)->>'input_tokens')::bigint, 0),
                    coalesce(((info::jsonb)->>'output_tokens')::bigint, 0),
                    coalesce(((info::jsonb)->>'actual_cost_usd')::float8,
                             ((info::jsonb)->>'estimated_cost_usd')::float8, 0)
             FROM sessions
             WHERE started_at_epoch >= $1 AND started_at_epoch < $2
               AND ($3::text IS NULL OR host = $3)",
            &[&from, &to, &host],
        )
        .map_err(err)?
        .iter()
        .map(|r| {
            (
                r.get(0),
                r.get(1),
                r.get(2),
                r.get(3),
                r.get(4),
                r.get(5),
                r.get(6),
            )
        })
        .collect::<Vec<Started>>();
    let messages = tx
        .query(
            "SELECT s.user_id, s.model, count(*) FROM sessions s, unnest(s.message_times) t
             WHERE t >= $1 AND t < $2 AND ($3::text IS NULL OR s.host = $3)
             GROUP BY s.user_id, s.model",
            &[&from, &to, &host],
        )
        .map_err(err)?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let calls = tx
        .query(
            r"SELECT e.host, e.session_id, e.user_id, e.data, s.user_id, s.model
              FROM events e LEFT JOIN sessions s ON s.host = e.host AND s.id = e.session_id
              WHERE e.type = 'llm_call' AND e.ts >= $1 AND e.ts < $2
                AND e.session_id LIKE 'op\_%' AND ($3::text IS NULL OR e.host = $3)
              ORDER BY e.ts, e.host, e.seq",
            &[&from_ts, &to_ts, &host],
        )
        .map_err(err)?
        .iter()
        .map(|r| DayCall {
            host: r.get(0),
            session_id: r.get(1),
            user_id: r.get(2),
            data: r.get(3),
            session_user: r.get(4),
            session_model: r.get(5),
        })
        .collect();
    let with_calls = with_calls(&mut tx, &started).map_err(err)?;
    tx.commit().map_err(err)?;
    Ok(DayRows {
        started,
        messages,
        calls,
        with_calls,
    })
}
