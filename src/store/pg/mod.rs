//! The fleet's control plane on PostgreSQL (issue 20): several hosts and
//! `serve` replicas on one database. So far the audit log: one hash chain
//! per host, so hosts never wait on each other's appends (`events.rs`);
//! the accounts, their tokens, keys, second factors, throttling and budgets
//! (`users/`, the same [`crate::store::users::UserStorage`] as users.db).
//!
//! The synchronous `postgres` client (tokio-postgres underneath, on a
//! runtime of its own): every caller of the stores is synchronous already
//! (the CLI, a turn's own thread, `serve`'s blocking pool).

pub mod approvals;
mod events;
pub mod sessions;
mod users;

pub use events::{check_host, Cursor, HostChain, HostEvent, HostHead, PgEventLog};
pub use users::{Imported, PgUsers, CHANGED as USERS_CHANGED};

use crate::error::{Error, Kind, Result};
use std::path::PathBuf;
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
    // v2: each host's operator sessions as `session list` shows them
    // (sessions.rs), published by its `serve` for `--all-hosts`.
    "CREATE TABLE sessions (
        host text NOT NULL,
        id text NOT NULL,
        started_at_epoch double precision,
        user_id text,
        username text,
        info text NOT NULL,
        published_at timestamptz NOT NULL,
        PRIMARY KEY (host, id)
     );
     CREATE INDEX sessions_started ON sessions (started_at_epoch DESC);",
    // v3: the accounts, as users.db holds them on one host (its v1-v10,
    // store/users/mod.rs), for `serve` replicas and hosts that share them
    // (users/). Times stay RFC 3339 text as there, so both stores compare
    // them alike. Also: the approvals inbox, per-minute rate counters, each
    // host's peer URL, and the sessions' model and message times.
    "CREATE TABLE users (
        id text PRIMARY KEY,
        username text NOT NULL,
        password_hash text NOT NULL,
        role text NOT NULL CHECK (role IN ('admin','auditor','user','viewer')),
        disabled boolean NOT NULL DEFAULT false,
        token_version bigint NOT NULL DEFAULT 1,
        created_at text NOT NULL,
        updated_at text NOT NULL,
        password_changed_at text NOT NULL,
        last_login_at text,
        must_change_password boolean NOT NULL DEFAULT false
     );
     CREATE UNIQUE INDEX users_username ON users (lower(username));
     CREATE TABLE spend (
        id text PRIMARY KEY,
        user_id text NOT NULL,
        day text NOT NULL,
        session_id text,
        reserved_usd double precision NOT NULL,
        actual_usd double precision,
        created_at text NOT NULL,
        settled_at text
     );
     CREATE INDEX spend_user_day ON spend (user_id, day);
     CREATE TABLE refresh_tokens (
        id text PRIMARY KEY,
        token_hash bytea NOT NULL UNIQUE,
        family_id text NOT NULL,
        user_id text NOT NULL,
        token_version bigint NOT NULL,
        created_at text NOT NULL,
        expires_at bigint NOT NULL,
        used_at text,
        replaced_by text,
        revoked_at text,
        revoked_reason text,
        second_factor boolean NOT NULL DEFAULT false
     );
     CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
     CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);
     CREATE TABLE revoked_access (
        jti text PRIMARY KEY,
        user_id text NOT NULL,
        expires_at bigint NOT NULL,
        revoked_at text NOT NULL
     );
     CREATE INDEX revoked_access_expiry ON revoked_access (expires_at);
     CREATE TABLE login_attempts (
        id bigserial PRIMARY KEY,
        username text NOT NULL,
        client text NOT NULL,
        at double precision NOT NULL,
        state text NOT NULL CHECK (state IN ('pending', 'failed'))
     );
     CREATE INDEX login_attempts_user ON login_attempts (username, client, at);
     CREATE INDEX login_attempts_client ON login_attempts (client, at);
     CREATE INDEX login_attempts_at ON login_attempts (at);
     CREATE TABLE login_throttled (
        key text PRIMARY KEY,
        username text,
        client text NOT NULL,
        first_at double precision NOT NULL,
        last_at double precision NOT NULL,
        count bigint NOT NULL
     );
     CREATE TABLE code_attempts (
        id bigserial PRIMARY KEY,
        user_id text NOT NULL,
        at double precision NOT NULL,
        state text NOT NULL CHECK (state IN ('pending', 'failed'))
     );
     CREATE INDEX code_attempts_user ON code_attempts (user_id, at);
     CREATE TABLE totp (
        user_id text PRIMARY KEY,
        secret bytea NOT NULL,
        confirmed_at text,
        last_step bigint NOT NULL DEFAULT 0,
        created_at text NOT NULL
     );
     CREATE TABLE totp_recovery (
        user_id text NOT NULL,
        code_hash bytea NOT NULL,
        used_at text,
        PRIMARY KEY (user_id, code_hash)
     );
     CREATE TABLE api_keys (
        id text PRIMARY KEY,
        user_id text NOT NULL,
        key_hash bytea NOT NULL UNIQUE,
        prefix text NOT NULL,
        label text NOT NULL DEFAULT '',
        role text NOT NULL,
        scope text NOT NULL CHECK (scope IN ('chat', 'read')),
        toolsets text,
        approvals text NOT NULL CHECK (approvals IN ('deny', 'wait')),
        rpm bigint,
        created_at text NOT NULL,
        expires_at bigint,
        last_used_at text,
        revoked_at text,
        revoked_reason text
     );
     CREATE INDEX api_keys_user ON api_keys (user_id);
     CREATE TABLE sso_identities (
        issuer text NOT NULL,
        subject text NOT NULL,
        user_id text NOT NULL UNIQUE,
        linked_at text NOT NULL,
        linked_by text NOT NULL,
        last_login_at text,
        PRIMARY KEY (issuer, subject)
     );
     CREATE TABLE sso_flows (
        state_hash bytea PRIMARY KEY,
        binding_hash bytea NOT NULL,
        grant_binding bytea NOT NULL,
        nonce text NOT NULL,
        verifier text NOT NULL,
        client text NOT NULL,
        cli_port bigint,
        cli_state text,
        created_at double precision NOT NULL,
        expires_at double precision NOT NULL
     );
     CREATE INDEX sso_flows_client ON sso_flows (client, created_at);
     CREATE TABLE sso_grants (
        code_hash bytea PRIMARY KEY,
        binding_hash bytea NOT NULL,
        user_id text NOT NULL,
        issuer text NOT NULL,
        subject text NOT NULL,
        provider_access text,
        provider_refresh text,
        expires_at double precision NOT NULL
     );
     CREATE TABLE sso_logins (
        family_id text PRIMARY KEY,
        user_id text NOT NULL,
        issuer text NOT NULL,
        subject text NOT NULL,
        provider_access text,
        provider_refresh text,
        checked_at text NOT NULL
     );
     CREATE TABLE rate_requests (
        counter text NOT NULL,
        at double precision NOT NULL
     );
     CREATE INDEX rate_requests_key ON rate_requests (counter, at);
     CREATE TABLE approvals (
        session_id text PRIMARY KEY,
        replica text NOT NULL,
        owner_id text NOT NULL,
        view text NOT NULL,
        put_at timestamptz NOT NULL DEFAULT now(),
        answer text CHECK (answer IN ('once', 'session', 'deny')),
        decided_by text
     );
     ALTER TABLE sessions ADD COLUMN model text;
     ALTER TABLE sessions ADD COLUMN message_times double precision[] NOT NULL DEFAULT '{}';
     CREATE TABLE hosts (
        host text PRIMARY KEY,
        peer_url text,
        seen_at timestamptz NOT NULL
     );",
];

/// The advisory lock key that serialises migrations ("hermes-op").
const MIGRATION_LOCK: i64 = 0x6865_726d_6573_6f70;

/// One connection to the fleet's database.
pub struct Pg {
    client: Mutex<Conn>,
    /// How it connected: [`Pg::another`] opens one more connection so.
    config: postgres::Config,
    connector: Connector,
    /// How the connection speaks TLS (doctor shows it).
    pub tls: TlsMode,
    /// `host:port/dbname`: the URL without its user and password, for messages.
    pub target: String,
}

/// A client that closes where it may block: dropping one sends PostgreSQL
/// its goodbye through the client's own runtime, which cannot run on a
/// thread already driving asynchronous tasks ([`off_runtime`]).
/// (`None` only while being dropped.)
pub(crate) struct Conn(Option<postgres::Client>);

impl std::ops::Deref for Conn {
    type Target = postgres::Client;
    fn deref(&self) -> &postgres::Client {
        self.0.as_ref().expect("present until dropped")
    }
}

impl std::ops::DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut postgres::Client {
        self.0.as_mut().expect("present until dropped")
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        if let Some(client) = self.0.take() {
            off_runtime(move || drop(client));
        }
    }
}

/// How a connection to the fleet's database speaks TLS. The URL's
/// `sslmode` as libpq names it, with safer meanings (docs/design.md §13):
/// a database away from loopback gets TLS with a verified certificate
/// unless `sslmode=disable` says otherwise, and `require` verifies too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsMode {
    /// Plain TCP: the host is loopback (or a Unix socket) and no `sslmode`
    /// asked for TLS, or `sslmode=disable`.
    Off { disabled: bool },
    /// TLS required; the server's certificate and name verified against
    /// `sslrootcert` (a PEM file) or the system's roots.
    Verified { root_cert: Option<PathBuf> },
}

impl TlsMode {
    pub fn describe(&self) -> String {
        match self {
            TlsMode::Off { disabled: true } => "off (sslmode=disable)".into(),
            TlsMode::Off { disabled: false } => "off (loopback)".into(),
            TlsMode::Verified { root_cert: Some(p) } => {
                format!("verified against {}", p.display())
            }
            TlsMode::Verified { root_cert: None } => "verified against the system's roots".into(),
        }
    }
}

#[derive(Clone)]
enum Connector {
    Plain,
    Tls(tokio_postgres_rustls::MakeRustlsConnect),
}

impl Connector {
    fn connect(
        &self,
        config: &postgres::Config,
    ) -> std::result::Result<postgres::Client, postgres::Error> {
        match self {
            Connector::Plain => config.connect(postgres::NoTls),
            Connector::Tls(t) => config.connect(t.clone()),
        }
    }
}

/// A URL's TLS options taken out (`sslmode`, `sslrootcert`: the driver
/// does not know `sslrootcert` and only some modes): (the rest, sslmode,
/// sslrootcert). Only the URL form (`postgres://…?…`) carries them here.
fn split_tls(url: &str) -> (String, Option<String>, Option<PathBuf>) {
    let is_url = url.starts_with("postgres://") || url.starts_with("postgresql://");
    let Some((base, query)) = url.split_once('?').filter(|_| is_url) else {
        return (url.to_string(), None, None);
    };
    let (mut mode, mut root, mut kept) = (None, None, Vec::new());
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let decoded = || {
            url::form_urlencoded::parse(format!("v={v}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        match k {
            "sslmode" => mode = Some(decoded()),
            "sslrootcert" => root = Some(PathBuf::from(decoded())),
            _ => kept.push(pair),
        }
    }
    let rest = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    (rest, mode, root)
}

/// Whether every host of the config is loopback or a Unix socket.
fn loopback_only(c: &postgres::Config) -> bool {
    c.get_hosts().iter().all(|h| match h {
        postgres::config::Host::Tcp(s) => {
            s == "localhost"
                || s.parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        postgres::config::Host::Unix(_) => true,
    })
}

/// Whether a URL carries a password (`postgres://user:secret@…` or
/// `?password=`).
pub fn url_has_password(url: &str) -> bool {
    split_tls(url)
        .0
        .parse::<postgres::Config>()
        .is_ok_and(|c| c.get_password().is_some())
}

/// `postgres://user:password@host:port/db` → `host:port/db` (never the password).
pub fn describe_url(url: &str) -> String {
    match split_tls(url).0.parse::<postgres::Config>() {
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
        off_runtime(|| Pg::connect_here(url, password))
    }

    fn connect_here(url: &str, password: Option<&str>) -> Result<Pg> {
        let target = describe_url(url);
        let (rest, sslmode, root_cert) = split_tls(url);
        let mut config: postgres::Config = rest.parse().map_err(|e| {
            Error::usage(format!(
                "not a PostgreSQL URL ({e}); expected postgres://USER@HOST:PORT/DB[?sslmode=require&sslrootcert=CA.pem]"
            ))
        })?;
        if let Some(pw) = password {
            config.password(pw);
        }
        let tls = match sslmode.as_deref() {
            Some("disable") => TlsMode::Off { disabled: true },
            Some("require" | "verify-ca" | "verify-full") => TlsMode::Verified { root_cert },
            None | Some("prefer") if root_cert.is_none() && loopback_only(&config) => {
                TlsMode::Off { disabled: false }
            }
            None | Some("prefer") => TlsMode::Verified { root_cert },
            Some(other) => {
                return Err(Error::usage(format!(
                    "{target}: sslmode={other:?} is not supported; use require (TLS, verified) or disable"
                )))
            }
        };
        let connector = match &tls {
            TlsMode::Off { .. } => {
                config.ssl_mode(postgres::config::SslMode::Disable);
                Connector::Plain
            }
            TlsMode::Verified { root_cert } => {
                // Never falls back to plain TCP.
                config.ssl_mode(postgres::config::SslMode::Require);
                let tls = crate::net::tls_config(root_cert.as_deref())?;
                Connector::Tls(tokio_postgres_rustls::MakeRustlsConnect::new(tls))
            }
        };
        config.connect_timeout(CONNECT_TIMEOUT);
        config.application_name("hermes-operator");
        let client = connector
            .connect(&config)
            .map_err(|e| pg_error(&target, "connecting to", e))?;
        let pg = Pg {
            client: Mutex::new(Conn(Some(client))),
            config,
            connector,
            tls,
            target,
        };
        pg.migrate()?;
        Ok(pg)
    }

    /// A second connection to the same database (work in parallel: one
    /// connection runs one statement at a time).
    pub fn another(&self) -> Result<Pg> {
        let client = off_runtime(|| self.connector.connect(&self.config))
            .map_err(|e| pg_error(&self.target, "connecting to", e))?;
        Ok(Pg {
            client: Mutex::new(Conn(Some(client))),
            config: self.config.clone(),
            connector: self.connector.clone(),
            tls: self.tls.clone(),
            target: self.target.clone(),
        })
    }

    /// Replaces this handle's connection with a new one to the same
    /// database (the old one was found closed).
    pub fn reconnect(&self) -> Result<()> {
        let client = off_runtime(|| self.connector.connect(&self.config))
            .map_err(|e| pg_error(&self.target, "connecting to", e))?;
        *self.client() = Conn(Some(client));
        Ok(())
    }

    /// The client, for one operation at a time.
    pub(crate) fn client(&self) -> std::sync::MutexGuard<'_, Conn> {
        self.client.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the connection is closed (PostgreSQL restarted or gone).
    pub fn is_closed(&self) -> bool {
        self.client().is_closed()
    }

    /// Whether the database is on this host (loopback or a Unix socket).
    pub fn is_loopback(&self) -> bool {
        loopback_only(&self.config)
    }

    /// The database's clock minus this host's, in milliseconds (the middle
    /// of the round trip taken as the moment the database read its clock).
    pub fn clock_skew_ms(&self) -> Result<f64> {
        let before = chrono::Utc::now().timestamp_micros() as f64 / 1e3;
        let row = self
            .client()
            .query_one(
                "SELECT extract(epoch FROM clock_timestamp())::float8 * 1000",
                &[],
            )
            .map_err(|e| pg_error(&self.target, "reading the clock of", e))?;
        let after = chrono::Utc::now().timestamp_micros() as f64 / 1e3;
        Ok(row.get::<_, f64>(0) - (before + after) / 2.0)
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

/// Runs `f`, which uses the synchronous client, where it may block: the
/// client drives its connection on a runtime of its own, which cannot start
/// on a thread that is already running asynchronous tasks (a chat turn's
/// own runtime, a command's `block_on`). There, `f` runs on a short-lived
/// thread of its own; on plain threads, and on threads marked by
/// [`may_block`] (`spawn_blocking`, `block_in_place`), on the calling
/// thread.
pub(crate) fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    if MAY_BLOCK.with(|m| m.get()) || tokio::runtime::Handle::try_current().is_err() {
        return f();
    }
    std::thread::scope(|s| {
        s.spawn(f)
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

thread_local! {
    static MAY_BLOCK: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` on this thread, marked as one where the synchronous client may
/// block (the caller knows: `spawn_blocking`'s threads, `block_in_place`):
/// [`off_runtime`] then needs no thread of its own (one per query on the
/// server's hot path otherwise).
pub fn may_block<T>(f: impl FnOnce() -> T) -> T {
    let before = MAY_BLOCK.with(|m| m.replace(true));
    let r = f();
    MAY_BLOCK.with(|m| m.set(before));
    r
}

/// What a listening connection heard.
pub enum Heard<'a> {
    /// `LISTEN` took effect: notifications from now on are heard (what
    /// happened before is the caller's to look up).
    Listening,
    /// Nothing for a while.
    Quiet,
    Note {
        channel: &'a str,
        payload: &'a str,
    },
}

/// Listens on `channels` on this connection (one of its own: it is held
/// while listening), telling `on` what it hears, and [`Heard::Quiet`] after
/// `every` without a notification, until the connection fails.
pub fn listen(
    pg: &Pg,
    channels: &[&str],
    every: Duration,
    mut on: impl FnMut(Heard),
) -> Result<()> {
    use postgres::fallible_iterator::FallibleIterator;
    let err = |e| pg_error(&pg.target, "listening for notifications on", e);
    let mut c = pg.client();
    for ch in channels {
        c.batch_execute(&format!("LISTEN {ch}")).map_err(err)?;
    }
    on(Heard::Listening);
    loop {
        let note = {
            let mut notes = c.notifications();
            let mut it = notes.timeout_iter(every);
            it.next().map_err(err)?
        };
        if c.is_closed() {
            return Err(Error::new(
                Kind::Unavailable,
                format!("the connection to PostgreSQL at {} closed", pg.target),
            ));
        }
        match &note {
            None => on(Heard::Quiet),
            Some(n) => on(Heard::Note {
                channel: n.channel(),
                payload: n.payload(),
            }),
        }
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
    // A certificate that does not verify is a setting to fix, not an outage.
    if kind == Kind::Unavailable && detail.contains("certificate") {
        return Error::new(Kind::Config, format!("{what} PostgreSQL at {target}: {detail}")).hint(
            "the server's TLS certificate did not verify: name its CA with sslrootcert=/path/ca.pem in the URL (or fix the certificate's name)",
        );
    }
    let err = Error::new(kind, format!("{what} PostgreSQL at {target}: {detail}"));
    match kind {
        Kind::Unavailable => err.hint("start PostgreSQL or check store.url; nothing was written"),
        Kind::Permission => {
            err.hint("check the user and password in store.url and the role's grants")
        }
        _ => err,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_options_are_taken_out_of_the_url() {
        let (rest, mode, root) =
            split_tls("postgres://op@db:5432/fleet?sslmode=require&connect_timeout=3&sslrootcert=%2Fetc%2Fca.pem");
        assert_eq!(rest, "postgres://op@db:5432/fleet?connect_timeout=3");
        assert_eq!(mode.as_deref(), Some("require"));
        assert_eq!(root, Some(PathBuf::from("/etc/ca.pem")));
        assert_eq!(
            split_tls("postgres://op@db/fleet").0,
            "postgres://op@db/fleet"
        );
        assert_eq!(
            describe_url("postgres://op:pw@db:6000/fleet?sslrootcert=/x"),
            "db:6000/fleet"
        );
        assert!(url_has_password(
            "postgres://op:pw@db/fleet?sslmode=require"
        ));
    }

    #[test]
    fn only_loopback_hosts_go_without_tls_by_default() {
        let c = |u: &str| u.parse::<postgres::Config>().unwrap();
        assert!(loopback_only(&c("postgres://op@127.0.0.1/f")));
        assert!(loopback_only(&c("postgres://op@localhost/f")));
        assert!(!loopback_only(&c("postgres://op@db.internal/f")));
        assert!(!loopback_only(&c("postgres://op@10.0.0.5/f")));
    }

    #[test]
    fn unknown_ssl_modes_are_refused_before_connecting() {
        let e = Pg::connect("postgres://op@db.invalid/f?sslmode=allow")
            .err()
            .unwrap();
        assert_eq!(e.kind, Kind::Usage, "{e:?}");
    }
}
