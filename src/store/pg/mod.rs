//! The fleet's control plane on PostgreSQL (issue 20): several hosts and
//! `serve` replicas on one database. So far the audit log: one hash chain
//! per host, so hosts never wait on each other's appends (`events.rs`).
//! Accounts, keys, budgets and the approvals inbox still live in each
//! host's users.db (README, "Fleet").
//!
//! The synchronous `postgres` client (tokio-postgres underneath, on a
//! runtime of its own): every caller of the stores is synchronous already
//! (the CLI, a turn's own thread, `serve`'s blocking pool).

mod events;

pub use events::{check_host, HostChain, HostHead, PgEventLog};

use crate::error::{Error, Kind, Result};
use std::sync::Mutex;
use std::time::Duration;

/// How long a connection attempt may take before PostgreSQL counts as down.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The schema, one entry per version (`schema_version` holds how many ran).
/// Applied under an advisory lock, so replicas starting together migrate once.
const MIGRATIONS: &[&str] = &[
    // v1: the audit log. `chain_heads` is each host's newest (seq, hash):
    // appends lock that one row, so a host's events are gap-free and in
    // order while other hosts append at the same time.
    "CREATE TABLE chain_heads (
        host text PRIMARY KEY CHECK (host <> ''),
        seq bigint NOT NULL CHECK (seq >= 0),
        hash bytea NOT NULL CHECK (length(hash) = 32)
     );
     CREATE TABLE events (
        host text NOT NULL,
        seq bigint NOT NULL CHECK (seq > 0),
        id text NOT NULL,
        ts text NOT NULL,
        type text NOT NULL,
        session_id text,
        user_id text,
        actor text NOT NULL,
        data text NOT NULL,
        prev_hash bytea NOT NULL,
        hash bytea NOT NULL,
        PRIMARY KEY (host, seq)
     );
     CREATE INDEX events_session ON events (session_id, host, seq) WHERE session_id IS NOT NULL;
     CREATE INDEX events_user_ts ON events (user_id, ts);
     CREATE INDEX events_type_ts ON events (type, ts);
     CREATE TABLE anchors (
        host text PRIMARY KEY,
        seq bigint NOT NULL,
        hash bytea NOT NULL,
        ts text NOT NULL,
        public_key bytea NOT NULL,
        signature bytea NOT NULL
     );",
];

/// The advisory lock key that serialises migrations ("hermes-op").
const MIGRATION_LOCK: i64 = 0x6865_726d_6573_6f70;

/// One connection to the fleet's database.
pub struct Pg {
    client: Mutex<postgres::Client>,
    /// How it connected: [`Pg::another`] opens one more connection so.
    config: postgres::Config,
    /// `host:port/dbname`: the URL without its user and password, for messages.
    pub target: String,
}

/// Whether a URL carries a password (`postgres://user:secret@…` or
/// `?password=`).
pub fn url_has_password(url: &str) -> bool {
    url.parse::<postgres::Config>()
        .is_ok_and(|c| c.get_password().is_some())
}

/// `postgres://user:password@host:port/db` → `host:port/db` (never the password).
pub fn describe_url(url: &str) -> String {
    match url.parse::<postgres::Config>() {
        Ok(c) => {
            let host = c
                .get_hosts()
                .first()
                .map(|h| match h {
                    postgres::config::Host::Tcp(s) => s.clone(),
                    postgres::config::Host::Unix(p) => p.display().to_string(),
                })
                .unwrap_or_else(|| "localhost".into());
            let port = c.get_ports().first().copied().unwrap_or(5432);
            format!("{host}:{port}/{}", c.get_dbname().unwrap_or("(default)"))
        }
        Err(_) => "(an unreadable store.url)".into(),
    }
}

impl Pg {
    /// Connects and brings the schema up to date.
    pub fn connect(url: &str) -> Result<Pg> {
        Pg::connect_with_password(url, None)
    }

    /// The same, with the password given apart from the URL (a URL on a
    /// command line must not carry one: argv is readable by every account).
    pub fn connect_with_password(url: &str, password: Option<&str>) -> Result<Pg> {
        let target = describe_url(url);
        let mut config: postgres::Config = url.parse().map_err(|e| {
            Error::usage(format!(
                "not a PostgreSQL URL ({e}); expected postgres://USER@HOST:PORT/DB"
            ))
        })?;
        if let Some(pw) = password {
            config.password(pw);
        }
        if config.get_ssl_mode() == postgres::config::SslMode::Require {
            return Err(Error::config(format!(
                "{target}: sslmode=require, but this build connects without TLS (README, \"Fleet\")"
            ))
            .hint("keep the database on loopback or a private network, and drop sslmode=require"));
        }
        config.connect_timeout(CONNECT_TIMEOUT);
        config.application_name("hermes-operator");
        let client = config
            .connect(postgres::NoTls)
            .map_err(|e| pg_error(&target, "connecting to", e))?;
        let pg = Pg {
            client: Mutex::new(client),
            config,
            target,
        };
        pg.migrate()?;
        Ok(pg)
    }

    /// A second connection to the same database (work in parallel: one
    /// connection runs one statement at a time).
    pub fn another(&self) -> Result<Pg> {
        let client = self
            .config
            .connect(postgres::NoTls)
            .map_err(|e| pg_error(&self.target, "connecting to", e))?;
        Ok(Pg {
            client: Mutex::new(client),
            config: self.config.clone(),
            target: self.target.clone(),
        })
    }

    /// The client, for one operation at a time.
    pub(crate) fn client(&self) -> std::sync::MutexGuard<'_, postgres::Client> {
        self.client.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The schema version this database is at.
    pub fn schema_version(&self) -> Result<i64> {
        let row = self
            .client()
            .query_one("SELECT version FROM schema_version", &[])
            .map_err(|e| pg_error(&self.target, "reading the schema version of", e))?;
        Ok(row.get(0))
    }

    fn migrate(&self) -> Result<()> {
        let target = self.target.as_str();
        let err = |what: &'static str| move |e| pg_error(target, what, e);
        let mut c = self.client();
        let mut tx = c.transaction().map_err(err("migrating"))?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .map_err(err("locking the schema of"))?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_version (version bigint NOT NULL);
             INSERT INTO schema_version SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM schema_version);",
        )
        .map_err(err("migrating"))?;
        let have: i64 = tx
            .query_one("SELECT version FROM schema_version", &[])
            .map_err(err("reading the schema version of"))?
            .get(0);
        let known = MIGRATIONS.len() as i64;
        if have > known {
            return Err(Error::new(
                Kind::Config,
                format!(
                    "the database at {} has schema version {have}, newer than this hermes-operator knows ({known})",
                    self.target
                ),
            )
            .hint("upgrade hermes-operator on this host to the version the other hosts run"));
        }
        for (i, m) in MIGRATIONS.iter().enumerate().skip(have as usize) {
            tx.batch_execute(m).map_err(err("migrating"))?;
            tx.execute("UPDATE schema_version SET version = $1", &[&(i as i64 + 1)])
                .map_err(err("migrating"))?;
        }
        tx.commit().map_err(err("migrating"))
    }
}

/// A PostgreSQL error as ours: the server unreachable or gone mid-way is
/// `Unavailable` (exit 7, HTTP 503: try again), a conflict `Busy`, the rest
/// what they are; the message names the database, never the password.
pub(crate) fn pg_error(target: &str, what: &str, e: postgres::Error) -> Error {
    let kind = if e.is_closed() || e.as_db_error().is_none() {
        Kind::Unavailable
    } else {
        match e.code().map(|c| c.code()) {
            // serialization_failure, deadlock_detected, lock_not_available
            Some("40001" | "40P01" | "55P03") => Kind::Busy,
            // insufficient_privilege, invalid_password, invalid_authorization
            Some("42501" | "28P01" | "28000") => Kind::Permission,
            _ => Kind::Internal,
        }
    };
    let detail = match e.as_db_error() {
        Some(db) => db.message().to_string(),
        None => {
            use std::error::Error as _;
            match e.source() {
                Some(s) => format!("{e}: {s}"),
                None => e.to_string(),
            }
        }
    };
    let err = Error::new(kind, format!("{what} PostgreSQL at {target}: {detail}"));
    match kind {
        Kind::Unavailable => err.hint("start PostgreSQL or check store.url; nothing was written"),
        Kind::Permission => {
            err.hint("check the user and password in store.url and the role's grants")
        }
        _ => err,
    }
}
