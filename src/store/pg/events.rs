//! The audit log on PostgreSQL: a hash chain per host. Each event names its
//! host; an append locks only its host's head row (`chain_heads`) in the
//! append's transaction, so one host's events are gap-free and ordered
//! however many of its processes append at once, and hosts do not wait on
//! each other. Events use events.db's hash (store/events `event_hash`):
//! a host's chain moved from its events.db keeps every hash, and one
//! verifier (`ops::audit::integrity::verify`) checks both stores.

use super::{pg_error, Pg};
use crate::error::{Error, Result};
use crate::store::events::{
    canonical_json, next_event, Anchor, Chain, Event, NewEvent, RawEvent, GENESIS,
};
use std::sync::Arc;

/// One host's chain as stored: its newest (seq, hash) and how many events.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HostHead {
    pub host: String,
    pub seq: i64,
    #[serde(serialize_with = "hex32")]
    pub hash: [u8; 32],
}

fn hex32<S: serde::Serializer>(h: &[u8; 32], s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(h))
}

fn to32(b: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    if b.len() == 32 {
        out.copy_from_slice(b);
    }
    out
}

/// A host's name in the fleet: what `audit … --host` and the events'
/// `host` column say. Letters, digits, `.`, `-`, `_`; at most 64.
pub fn check_host(host: &str) -> Result<()> {
    let ok = !host.is_empty()
        && host.len() <= 64
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::usage(format!(
            "host name {:?}: expected 1-64 letters, digits, '.', '-' or '_'",
            crate::output::clip(host, 80)
        )))
    }
}

/// The audit log of one host, in the fleet's database.
pub struct PgEventLog {
    pg: Arc<Pg>,
    host: String,
}

impl PgEventLog {
    pub fn new(pg: Arc<Pg>, host: &str) -> Result<Self> {
        check_host(host)?;
        Ok(PgEventLog {
            pg,
            host: host.to_string(),
        })
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    /// Appends `evs` to this host's chain in one transaction: the head row
    /// is locked (`FOR UPDATE`) before the new seqs are chosen, so
    /// concurrent appenders of this host queue on it and never fork or gap
    /// the chain; the events and the new head commit together or not at all.
    pub fn append_batch(&self, evs: &[NewEvent]) -> Result<Vec<Event>> {
        let target = &self.pg.target;
        let err = |e| pg_error(target, "appending to the event log in", e);
        let mut c = self.pg.client();
        let mut tx = c.transaction().map_err(err)?;
        tx.execute(
            "INSERT INTO chain_heads (host, seq, hash) VALUES ($1, 0, $2) ON CONFLICT (host) DO NOTHING",
            &[&self.host, &&GENESIS[..]],
        )
        .map_err(err)?;
        let head = tx
            .query_one(
                "SELECT seq, hash FROM chain_heads WHERE host = $1 FOR UPDATE",
                &[&self.host],
            )
            .map_err(err)?;
        let (mut seq, mut prev): (i64, [u8; 32]) = (head.get(0), to32(head.get::<_, &[u8]>(1)));
        let mut out = Vec::with_capacity(evs.len());
        for e in evs {
            seq += 1;
            let ev = next_event(seq, prev, e, canonical_json(&e.data));
            prev = ev.hash;
            out.push(ev);
        }
        insert_rows(&mut tx, &self.host, &out).map_err(err)?;
        tx.execute(
            "UPDATE chain_heads SET seq = $2, hash = $3 WHERE host = $1",
            &[&self.host, &seq, &&prev[..]],
        )
        .map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(out)
    }

    /// Moves events in as they are (`store migrate`): each with its stored
    /// seq, time and hashes (and a new host's prune anchor), re-hashing
    /// nothing, so the chain verifies exactly as it did. They must continue
    /// the host's chain here (a new host: from its anchor or the start), so
    /// a migration can be run again to move what came since; the head row
    /// is locked for it, in one transaction. How many were moved.
    pub fn import(&self, events: &[Event], anchor: Option<&Anchor>) -> Result<usize> {
        let target = &self.pg.target;
        let err = |e| pg_error(target, "moving the event log into", e);
        let mut c = self.pg.client();
        let mut tx = c.transaction().map_err(err)?;
        // A new host starts at its anchor (or the beginning); two moves of
        // one host at once queue on its head row, the second sees the first's.
        let start = anchor.map_or((0, GENESIS), |a| (a.seq, a.hash));
        let created = tx
            .execute(
                "INSERT INTO chain_heads (host, seq, hash) VALUES ($1, $2, $3) ON CONFLICT (host) DO NOTHING",
                &[&self.host, &start.0, &&start.1[..]],
            )
            .map_err(err)?
            == 1;
        if let (true, Some(a)) = (created, anchor) {
            tx.execute(
                "INSERT INTO anchors (host, seq, hash, ts, public_key, signature) VALUES ($1, $2, $3, $4, $5, $6)",
                &[&self.host, &a.seq, &&a.hash[..], &a.ts, &a.public_key, &a.signature],
            )
            .map_err(err)?;
        }
        let head = tx
            .query_one(
                "SELECT seq, hash FROM chain_heads WHERE host = $1 FOR UPDATE",
                &[&self.host],
            )
            .map_err(err)?;
        let (head_seq, head_hash) = (head.get::<_, i64>(0), to32(head.get::<_, &[u8]>(1)));
        let Some(last) = events.last() else {
            tx.commit().map_err(err)?;
            return Ok(0);
        };
        let first = &events[0];
        if first.seq != head_seq + 1 || first.prev_hash != head_hash {
            return Err(Error::conflict(format!(
                "host {} in {} ends at seq {head_seq}, and the events to move start at seq {} {}: they do not continue its chain",
                self.host,
                self.pg.target,
                first.seq,
                if first.seq == head_seq + 1 { "with another predecessor" } else { "" }
            ))
            .hint("move this host's log under another host name (--host), or check that this is the host that wrote it"));
        }
        for chunk in events.chunks(5000) {
            insert_rows(&mut tx, &self.host, chunk).map_err(err)?;
        }
        tx.execute(
            "UPDATE chain_heads SET seq = $2, hash = $3 WHERE host = $1",
            &[&self.host, &last.seq, &&last.hash[..]],
        )
        .map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(events.len())
    }

    /// This host's recorded head (None: no events here yet).
    pub fn head(&self) -> Result<Option<(i64, [u8; 32])>> {
        self.chain().stored_head()
    }

    /// This host's chain, for `audit verify`.
    pub fn chain(&self) -> HostChain {
        HostChain {
            pg: self.pg.clone(),
            host: self.host.clone(),
        }
    }

    /// Every host's head, by host name.
    pub fn heads(pg: &Pg) -> Result<Vec<HostHead>> {
        let rows = pg
            .client()
            .query("SELECT host, seq, hash FROM chain_heads ORDER BY host", &[])
            .map_err(|e| pg_error(&pg.target, "reading the chain heads in", e))?;
        Ok(rows
            .iter()
            .map(|r| HostHead {
                host: r.get(0),
                seq: r.get(1),
                hash: to32(r.get::<_, &[u8]>(2)),
            })
            .collect())
    }
}

/// Many rows in one statement (arrays unnested: one round trip per batch).
fn insert_rows(
    tx: &mut postgres::Transaction<'_>,
    host: &str,
    rows: &[Event],
) -> std::result::Result<u64, postgres::Error> {
    if rows.is_empty() {
        return Ok(0);
    }
    let seq: Vec<i64> = rows.iter().map(|e| e.seq).collect();
    let id: Vec<&str> = rows.iter().map(|e| e.id.as_str()).collect();
    let ts: Vec<&str> = rows.iter().map(|e| e.ts.as_str()).collect();
    let kind: Vec<&str> = rows.iter().map(|e| e.kind.as_str()).collect();
    let session: Vec<Option<&str>> = rows.iter().map(|e| e.session_id.as_deref()).collect();
    let user: Vec<Option<&str>> = rows.iter().map(|e| e.user_id.as_deref()).collect();
    let actor: Vec<&str> = rows.iter().map(|e| e.actor.as_str()).collect();
    let data: Vec<&str> = rows.iter().map(|e| e.data.as_str()).collect();
    let prev: Vec<&[u8]> = rows.iter().map(|e| &e.prev_hash[..]).collect();
    let hash: Vec<&[u8]> = rows.iter().map(|e| &e.hash[..]).collect();
    tx.execute(
        "INSERT INTO events (host, seq, id, ts, type, session_id, user_id, actor, data, prev_hash, hash)
         SELECT $1, * FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[],
                                  $7::text[], $8::text[], $9::text[], $10::bytea[], $11::bytea[])",
        &[&host, &seq, &id, &ts, &kind, &session, &user, &actor, &data, &prev, &hash],
    )
}

/// One host's chain in the fleet's database, as `audit verify` reads it.
pub struct HostChain {
    pg: Arc<Pg>,
    host: String,
}

impl HostChain {
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The head the database says this chain has (None: no such host). A
    /// chain whose events end before it was truncated.
    pub fn stored_head(&self) -> Result<Option<(i64, [u8; 32])>> {
        let row = self
            .pg
            .client()
            .query_opt(
                "SELECT seq, hash FROM chain_heads WHERE host = $1",
                &[&self.host],
            )
            .map_err(|e| pg_error(&self.pg.target, "reading the chain head in", e))?;
        Ok(row.map(|r| (r.get(0), to32(r.get::<_, &[u8]>(1)))))
    }
}

impl HostChain {
    /// The hash of this host's event at `seq` (None: no such event).
    pub fn hash_at(&self, seq: i64) -> Result<Option<[u8; 32]>> {
        let row = self
            .pg
            .client()
            .query_opt(
                "SELECT hash FROM events WHERE host = $1 AND seq = $2",
                &[&self.host, &seq],
            )
            .map_err(|e| pg_error(&self.pg.target, "reading an event in", e))?;
        Ok(row.map(|r| to32(r.get::<_, &[u8]>(0))))
    }
}

impl Chain for HostChain {
    fn anchor(&self) -> Result<Option<Anchor>> {
        let row = self
            .pg
            .client()
            .query_opt(
                "SELECT seq, hash, ts, public_key, signature FROM anchors WHERE host = $1",
                &[&self.host],
            )
            .map_err(|e| pg_error(&self.pg.target, "reading the prune anchor in", e))?;
        Ok(row.map(|r| Anchor {
            seq: r.get(0),
            hash: to32(r.get::<_, &[u8]>(1)),
            ts: r.get(2),
            public_key: r.get(3),
            signature: r.get(4),
        }))
    }

    /// Streams the host's events in seq order (rows as they arrive, not the
    /// whole log in memory), each borrowed for `f`.
    fn scan_events(&self, f: &mut dyn FnMut(&RawEvent) -> bool) -> Result<()> {
        use fallible_iterator::FallibleIterator;
        let target = &self.pg.target;
        let err = |e| pg_error(target, "reading the event log in", e);
        let mut c = self.pg.client();
        let mut tx = c.transaction().map_err(err)?;
        // A cursor in a repeatable-read snapshot: one consistent view of
        // the chain while appends go on.
        tx.batch_execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .map_err(err)?;
        let mut rows = tx
            .query_raw(
                "SELECT seq, id, ts, type, session_id, user_id, actor, data, prev_hash, hash
                 FROM events WHERE host = $1 ORDER BY seq",
                [&self.host],
            )
            .map_err(err)?;
        while let Some(r) = rows.next().map_err(err)? {
            let ev = RawEvent {
                seq: r.get(0),
                id: r.get(1),
                ts: r.get(2),
                kind: r.get(3),
                session_id: r.get(4),
                user_id: r.get(5),
                actor: r.get(6),
                data: r.get(7),
                prev_hash: r.get(8),
                hash: r.get(9),
            };
            if !f(&ev) {
                break;
            }
        }
        drop(rows);
        tx.commit().map_err(err)
    }
}

/// An event of the fleet's log and the host whose chain holds it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HostEvent {
    pub host: String,
    #[serde(flatten)]
    pub event: Event,
}

/// The newest event of each host already shown: a fleet-wide tail's cursor.
pub type Cursor = std::collections::BTreeMap<String, i64>;

const HOST_EVENT_COLS: &str =
    "host, seq, id, ts, type, session_id, user_id, actor, data, prev_hash, hash";

fn host_event(r: &postgres::Row) -> HostEvent {
    HostEvent {
        host: r.get(0),
        event: Event {
            seq: r.get(1),
            id: r.get(2),
            ts: r.get(3),
            kind: r.get(4),
            session_id: r.get(5),
            user_id: r.get(6),
            actor: r.get(7),
            data: r.get(8),
            prev_hash: to32(r.get::<_, &[u8]>(9)),
            hash: to32(r.get::<_, &[u8]>(10)),
        },
    }
}

/// Fleet-wide reads (every host, or the one named): what `audit replay`
/// and `audit tail` show with `--fleet`. Events of different hosts are
/// ordered by time, then host and seq (each host's own order is its seq).
impl PgEventLog {
    /// A session's events on every host (a session lives on one host; its
    /// id does not say which).
    pub fn session_events(pg: &Pg, session_id: &str, host: Option<&str>) -> Result<Vec<HostEvent>> {
        let rows = pg
            .client()
            .query(
                &format!(
                    "SELECT {HOST_EVENT_COLS} FROM events
                     WHERE session_id = $1 AND ($2::text IS NULL OR host = $2)
                     ORDER BY ts, host, seq"
                ),
                &[&session_id, &host],
            )
            .map_err(|e| pg_error(&pg.target, "reading a session's events in", e))?;
        Ok(rows.iter().map(host_event).collect())
    }

    /// The newest `n` events naming `user_id` on every host (or the one
    /// named), oldest first: `audit user --fleet`.
    pub fn user_events(
        pg: &Pg,
        user_id: &str,
        host: Option<&str>,
        n: i64,
    ) -> Result<Vec<HostEvent>> {
        let rows = pg
            .client()
            .query(
                &format!(
                    "SELECT {HOST_EVENT_COLS} FROM events
                     WHERE user_id = $1 AND ($2::text IS NULL OR host = $2)
                     ORDER BY ts DESC, host DESC, seq DESC LIMIT $3"
                ),
                &[&user_id, &host, &n],
            )
            .map_err(|e| pg_error(&pg.target, "reading a user's events in", e))?;
        let mut v: Vec<HostEvent> = rows.iter().map(host_event).collect();
        v.reverse();
        Ok(v)
    }

    /// The hash of `host`'s event `seq` (a replayed event's link).
    pub fn hash_of(pg: &Pg, host: &str, seq: i64) -> Result<Option<[u8; 32]>> {
        let row = pg
            .client()
            .query_opt(
                "SELECT hash FROM events WHERE host = $1 AND seq = $2",
                &[&host, &seq],
            )
            .map_err(|e| pg_error(&pg.target, "reading the event log in", e))?;
        Ok(row.map(|r| to32(r.get::<_, &[u8]>(0))))
    }

    /// The newest `n` events (oldest first) and the cursor after them.
    pub fn last_events(pg: &Pg, host: Option<&str>, n: i64) -> Result<(Vec<HostEvent>, Cursor)> {
        let err = |e| pg_error(&pg.target, "reading the event log in", e);
        let mut c = pg.client();
        // One snapshot for the events and the heads: nothing appended in
        // between is skipped by the cursor.
        let mut c = c.transaction().map_err(err)?;
        c.batch_execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .map_err(err)?;
        let rows = c
            .query(
                &format!(
                    "SELECT * FROM (SELECT {HOST_EVENT_COLS} FROM events
                       WHERE ($1::text IS NULL OR host = $1)
                       ORDER BY ts DESC, host DESC, seq DESC LIMIT $2) newest
                     ORDER BY ts, host, seq"
                ),
                &[&host, &n],
            )
            .map_err(|e| pg_error(&pg.target, "reading the event log in", e))?;
        let heads = c
            .query(
                "SELECT host, seq FROM chain_heads WHERE ($1::text IS NULL OR host = $1)",
                &[&host],
            )
            .map_err(|e| pg_error(&pg.target, "reading the chain heads in", e))?;
        let cursor = heads.iter().map(|r| (r.get(0), r.get(1))).collect();
        let events = rows.iter().map(host_event).collect();
        c.commit().map_err(err)?;
        Ok((events, cursor))
    }

    /// Events appended after `cursor` (hosts new to it: from their start),
    /// at most `limit`, and the cursor moved past them.
    pub fn events_after(
        pg: &Pg,
        host: Option<&str>,
        cursor: &Cursor,
        limit: i64,
    ) -> Result<(Vec<HostEvent>, Cursor)> {
        let (hosts, seqs): (Vec<&str>, Vec<i64>) =
            cursor.iter().map(|(h, s)| (h.as_str(), *s)).unzip();
        let rows = pg
            .client()
            .query(
                &format!(
                    // The limit cuts in each host's seq order (a host's
                    // next poll starts where it stopped); shown by time.
                    "SELECT * FROM (SELECT {HOST_EVENT_COLS} FROM events e
                       WHERE ($1::text IS NULL OR e.host = $1)
                         AND e.seq > COALESCE((SELECT c.seq FROM unnest($2::text[], $3::int8[]) AS c(host, seq)
                                               WHERE c.host = e.host), 0)
                       ORDER BY host, seq LIMIT $4) batch
                     ORDER BY ts, host, seq"
                ),
                &[&host, &hosts, &seqs, &limit],
            )
            .map_err(|e| pg_error(&pg.target, "reading the event log in", e))?;
        let events: Vec<HostEvent> = rows.iter().map(host_event).collect();
        let mut next = cursor.clone();
        for e in &events {
            let s = next.entry(e.host.clone()).or_insert(0);
            *s = (*s).max(e.event.seq);
        }
        Ok((events, next))
    }
}
