//! users.db: the operator's accounts. Storage only; the rules around it
//! (audit events) live in `ops::accounts`; the one rule enforced here is
//! that an enabled admin always remains, because only a write transaction
//! can enforce it against concurrent changes.

use super::{now_rfc3339, open_own, open_own_readonly, with_immediate};
use crate::error::{Error, Result};
use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

mod keys;
mod sso;
mod throttle;
mod tokens;
mod totp;
pub use keys::{
    ApiKey, KeyApprovals, KeyRefused, KeyScope, Keys, NewKey, DEAD_KEY_RETENTION_SECS,
    MAX_ACTIVE_KEYS, MAX_KEYS_PER_HOUR,
};
pub use sso::{Flow, Grant, Identity, NewFlow, SsoLogin, SsoStore, SSO_PASSWORD_HASH};
pub use throttle::{AttemptLimits, Gate, Limit, Throttle};
pub use tokens::{RefreshUse, Tokens};
pub use totp::{TotpRow, TotpStore};
// For the PostgreSQL store (store/pg/users), which must format and count alike.
pub(crate) use keys::rfc3339_at;
pub(crate) use throttle::{throttled, throttled_key, wait_secs};

const MIGRATIONS: &[&str] = &[
    // v1
    "CREATE TABLE users (
        id TEXT PRIMARY KEY,
        username TEXT NOT NULL UNIQUE COLLATE NOCASE,
        password_hash TEXT NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('admin','auditor','user','viewer')),
        disabled INTEGER NOT NULL DEFAULT 0,
        token_version INTEGER NOT NULL DEFAULT 1,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        password_changed_at TEXT NOT NULL,
        last_login_at TEXT
    );",
    // v2: the daily budget ledger. A turn reserves before it runs and settles
    // with its real cost after, so concurrent turns cannot overspend.
    "CREATE TABLE spend (
        id TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        day TEXT NOT NULL,
        session_id TEXT,
        reserved_usd REAL NOT NULL,
        actual_usd REAL,
        created_at TEXT NOT NULL,
        settled_at TEXT
    );
    CREATE INDEX spend_user_day ON spend(user_id, day);",
    // v3: refresh tokens of the HTTP mode (`serve`). Only the SHA-256 of the
    // opaque token is stored. A login starts a family; each use rotates the
    // token (the old row gets `used_at` and `replaced_by`); presenting a used
    // token again revokes the whole family.
    "CREATE TABLE refresh_tokens (
        id TEXT PRIMARY KEY,
        token_hash BLOB NOT NULL UNIQUE,
        family_id TEXT NOT NULL,
        user_id TEXT NOT NULL,
        token_version INTEGER NOT NULL,
        created_at TEXT NOT NULL,
        expires_at INTEGER NOT NULL,
        used_at TEXT,
        replaced_by TEXT,
        revoked_at TEXT,
        revoked_reason TEXT
    );
    CREATE INDEX refresh_tokens_family ON refresh_tokens(family_id);
    CREATE INDEX refresh_tokens_user ON refresh_tokens(user_id);",
    // v4: access tokens revoked before they expire (logout, password change),
    // so that a restart of `serve` does not bring them back.
    "CREATE TABLE revoked_access (
        jti TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        expires_at INTEGER NOT NULL,
        revoked_at TEXT NOT NULL
    );
    CREATE INDEX revoked_access_expiry ON revoked_access(expires_at);",
    // v5: password attempts (login, password change) and refusals, shared by
    // every `serve` process and kept across restarts (store/users/throttle.rs).
    "CREATE TABLE login_attempts (
        id INTEGER PRIMARY KEY,
        username TEXT NOT NULL,
        client TEXT NOT NULL,
        at REAL NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('pending', 'failed'))
    );
    CREATE INDEX login_attempts_user ON login_attempts(username, client, at);
    CREATE INDEX login_attempts_client ON login_attempts(client, at);
    CREATE INDEX login_attempts_at ON login_attempts(at);
    CREATE TABLE login_throttled (
        key TEXT PRIMARY KEY,
        username TEXT,
        client TEXT NOT NULL,
        first_at REAL NOT NULL,
        last_at REAL NOT NULL,
        count INTEGER NOT NULL
    );",
    // v6: two-factor login (store/users/totp.rs).
    "CREATE TABLE totp (
        user_id TEXT PRIMARY KEY,
        secret BLOB NOT NULL,
        confirmed_at TEXT,
        last_step INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL
    );
    CREATE TABLE totp_recovery (
        user_id TEXT NOT NULL,
        code_hash BLOB NOT NULL,
        used_at TEXT,
        PRIMARY KEY (user_id, code_hash)
    );",
    // v7: personal API keys (store/users/keys.rs): the SHA-256 of each key,
    // its owner's role when made (a role change revokes it), scope, toolsets
    // (JSON list; NULL = the operator's own), approvals policy, rpm, expiry.
    "CREATE TABLE api_keys (
        id TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        key_hash BLOB NOT NULL UNIQUE,
        prefix TEXT NOT NULL,
        label TEXT NOT NULL DEFAULT '',
        role TEXT NOT NULL,
        scope TEXT NOT NULL CHECK (scope IN ('chat', 'read')),
        toolsets TEXT,
        approvals TEXT NOT NULL CHECK (approvals IN ('deny', 'wait')),
        rpm INTEGER,
        created_at TEXT NOT NULL,
        expires_at INTEGER,
        last_used_at TEXT,
        revoked_at TEXT,
        revoked_reason TEXT
    );
    CREATE INDEX api_keys_user ON api_keys(user_id);",
    // v8: an admin's password reset makes the next login change it first.
    "ALTER TABLE users ADD COLUMN must_change_password INTEGER NOT NULL DEFAULT 0;",
    // v9: whether a login (refresh-token family) passed a second factor, so
    // a refresh can refuse a login made without one once the account needs
    // it (`auth.require_totp` grew); and second-factor code checks per
    // account (store/users/throttle.rs), capped across every address.
    "ALTER TABLE refresh_tokens ADD COLUMN second_factor INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE code_attempts (
        id INTEGER PRIMARY KEY,
        user_id TEXT NOT NULL,
        at REAL NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('pending', 'failed'))
    );
    CREATE INDEX code_attempts_user ON code_attempts(user_id, at);",
    // v10: single sign-on (store/users/sso.rs): which provider subject is
    // which account; logins on their way through the provider (one use
    // each); one-time codes that turn a finished provider login into this
    // server's tokens; and each SSO login's provider tokens, presented
    // again at refresh to re-check the user with the provider.
    "CREATE TABLE sso_identities (
        issuer TEXT NOT NULL,
        subject TEXT NOT NULL,
        user_id TEXT NOT NULL UNIQUE,
        linked_at TEXT NOT NULL,
        linked_by TEXT NOT NULL,
        last_login_at TEXT,
        PRIMARY KEY (issuer, subject)
    );
    CREATE TABLE sso_flows (
        state_hash BLOB PRIMARY KEY,
        binding_hash BLOB NOT NULL,
        grant_binding BLOB NOT NULL,
        nonce TEXT NOT NULL,
        verifier TEXT NOT NULL,
        client TEXT NOT NULL,
        cli_port INTEGER,
        cli_state TEXT,
        created_at REAL NOT NULL,
        expires_at REAL NOT NULL
    );
    CREATE INDEX sso_flows_client ON sso_flows(client, created_at);
    CREATE TABLE sso_grants (
        code_hash BLOB PRIMARY KEY,
        binding_hash BLOB NOT NULL,
        user_id TEXT NOT NULL,
        issuer TEXT NOT NULL,
        subject TEXT NOT NULL,
        provider_access TEXT,
        provider_refresh TEXT,
        expires_at REAL NOT NULL
    );
    CREATE TABLE sso_logins (
        family_id TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        issuer TEXT NOT NULL,
        subject TEXT NOT NULL,
        provider_access TEXT,
        provider_refresh TEXT,
        checked_at TEXT NOT NULL
    );",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Auditor,
    User,
    Viewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Auditor => "auditor",
            Role::User => "user",
            Role::Viewer => "viewer",
        }
    }
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "auditor" => Some(Role::Auditor),
            "user" => Some(Role::User),
            "viewer" => Some(Role::Viewer),
            _ => None,
        }
    }
    /// docs/design.md §4: who may chat and own sessions.
    pub fn can_chat(self) -> bool {
        matches!(self, Role::Admin | Role::User)
    }
    /// docs/design.md §4: who may read every operator session and the audit log.
    pub fn can_audit(self) -> bool {
        matches!(self, Role::Admin | Role::Auditor)
    }
    pub fn can_manage_users(self) -> bool {
        self == Role::Admin
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A user as shown to people and scripts (`user show --json`). The password
/// hash is never part of it.
#[derive(Debug, Clone, Serialize)]
pub struct User {
    pub id: String,
    pub username: String,
    pub role: Role,
    pub disabled: bool,
    pub token_version: i64,
    pub created_at: String,
    pub updated_at: String,
    pub password_changed_at: String,
    pub last_login_at: Option<String>,
    /// Set by an admin's password reset: until the user changes it, a login
    /// may only change the password (the API answers 403 otherwise).
    pub must_change_password: bool,
}

pub(super) const COLS: &str = "id, username, role, disabled, token_version, created_at, updated_at, password_changed_at, last_login_at, must_change_password";
/// How many columns [`COLS`] has (a join's own columns follow them).
pub(super) const NCOLS: usize = 10;

pub(super) fn from_row(r: &Row) -> rusqlite::Result<User> {
    from_row_at(r, 0)
}

/// A [`User`] from the [`COLS`] starting at column `at` (after a join's own).
pub(super) fn from_row_at(r: &Row, at: usize) -> rusqlite::Result<User> {
    let role: String = r.get(at + 2)?;
    Ok(User {
        id: r.get(at)?,
        username: r.get(at + 1)?,
        role: Role::parse(&role).unwrap_or(Role::Viewer),
        disabled: r.get::<_, i64>(at + 3)? != 0,
        token_version: r.get(at + 4)?,
        created_at: r.get(at + 5)?,
        updated_at: r.get(at + 6)?,
        password_changed_at: r.get(at + 7)?,
        last_login_at: r.get(at + 8)?,
        must_change_password: r.get::<_, i64>(at + 9)? != 0,
    })
}

/// Usernames: 1-64 of [A-Za-z0-9._-], starting with a letter or digit. They
/// end up in tables, logs and URLs; nothing else gets in.
pub fn validate_username(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(Error::usage(format!(
            "invalid username {:?}: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit",
            crate::output::clip(name, 80)
        )))
    }
}

/// The accounts' storage as the domain layer sees it (`ops::*`, the CLI,
/// the server): users.db on one host ([`SqliteUsers`]), PostgreSQL in a
/// fleet (`store::pg::PgUsers`). Each concern is a trait of its own
/// ([`Accounts`], [`Budgets`], [`Keys`], [`Tokens`], [`Throttle`],
/// [`TotpStore`], [`SsoStore`]); a [`UserStore`] offers them all (a trait
/// object's methods need no import).
///
/// Every write that enforces a rule (the last admin, throttle counts, one
/// open budget reservation, one use of a refresh token or a one-time code)
/// does its reads and writes in one transaction that is serialised against
/// every other writer of the store: SQLite's write lock on one host, a
/// transaction-scoped advisory lock in PostgreSQL (docs/design.md §13).
pub trait UserStorage:
    Accounts + Budgets + Keys + Rates + Tokens + Throttle + TotpStore + SsoStore + Send
{
}

impl<T> UserStorage for T where
    T: Accounts + Budgets + Keys + Rates + Tokens + Throttle + TotpStore + SsoStore + Send
{
}

/// Per-minute limits (a personal API key's `--rpm`, the server's
/// per-account action limits), counted where every replica sees them.
pub trait Rates {
    /// Counts a request on `counter` (limited to `per_minute`) made at
    /// `now` (Unix seconds): `Some(Ok(()))` admitted, `Some(Err(wait))`
    /// refused with the seconds until the oldest counted request is a
    /// minute old (the refused one is not counted). `None`: this store does
    /// not count them, and the process does (one host: server/state.rs).
    fn admit_rate(
        &self,
        counter: &str,
        per_minute: u32,
        now: f64,
    ) -> Result<Option<std::result::Result<(), u64>>> {
        let _ = (counter, per_minute, now);
        Ok(None)
    }
}

impl Rates for SqliteUsers {}

/// An open store of accounts, whichever database holds them.
pub struct UserStore(Box<dyn UserStorage>);

impl UserStore {
    /// users.db, created and migrated when needed.
    pub fn open(path: &Path) -> Result<Self> {
        Ok(UserStore(Box::new(SqliteUsers::open(path)?)))
    }

    /// users.db for read-only commands: never creates the file.
    pub fn open_readonly(path: &Path) -> Result<Self> {
        Ok(UserStore(Box::new(SqliteUsers::open_readonly(path)?)))
    }

    /// Any implementation (the fleet's PostgreSQL).
    pub fn from_backend(backend: impl UserStorage + 'static) -> Self {
        UserStore(Box::new(backend))
    }
}

impl std::ops::Deref for UserStore {
    type Target = dyn UserStorage;
    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}

/// users.db: the accounts of one host.
pub struct SqliteUsers {
    conn: Connection,
    path: PathBuf,
}

impl SqliteUsers {
    pub fn open(path: &Path) -> Result<Self> {
        let conn = open_own(path, "users.db", MIGRATIONS)?;
        Ok(SqliteUsers {
            conn,
            path: path.to_path_buf(),
        })
    }

    /// For read-only commands: never creates the file.
    pub fn open_readonly(path: &Path) -> Result<Self> {
        let conn = open_own_readonly(path, "users.db").map_err(|e| {
            if e.kind == crate::error::Kind::NotFound {
                e.hint("no users yet: create the first with `hermes-operator user add NAME --role admin`")
            } else {
                e
            }
        })?;
        Ok(SqliteUsers {
            conn,
            path: path.to_path_buf(),
        })
    }

    fn err(&self, what: &str) -> impl Fn(rusqlite::Error) -> Error + '_ {
        let what = what.to_string();
        move |e| Error::sqlite(&self.path, &what, e)
    }
}

pub trait Accounts {
    fn list(&self) -> Result<Vec<User>>;

    fn find(&self, username: &str) -> Result<Option<User>>;

    fn get(&self, username: &str) -> Result<User> {
        self.find(username)?.ok_or_else(|| {
            Error::not_found(format!(
                "no user named {:?}",
                crate::output::clip(username, 80)
            ))
            .hint("`hermes-operator user list` shows the accounts")
        })
    }

    fn find_by_id(&self, id: &str) -> Result<Option<User>>;

    /// The stored PHC hash, for login.
    fn password_hash(&self, id: &str) -> Result<Option<String>>;

    fn insert(&self, username: &str, role: Role, password_hash: &str) -> Result<User>;

    /// A new password (revoking every token); `must_change`: an admin's
    /// reset, which the user must replace at their next login, and which
    /// also revokes the account's personal API keys in the same transaction
    /// (whoever made the reset suspects the account; a key made by whoever
    /// held it must not outlive it). Returns the keys revoked: (id, prefix).
    fn set_password(
        &self,
        id: &str,
        hash: &str,
        must_change: bool,
    ) -> Result<Vec<(String, String)>>;

    /// A new role; one that is not admin is refused for the only enabled
    /// admin. Tokens and keys are revoked.
    fn set_role(&self, id: &str, role: Role) -> Result<()> {
        self.set_role_and_disabled(id, Some(role), None)
    }

    /// Disabling revokes tokens and keys; enabling does not resurrect them.
    fn set_disabled(&self, id: &str, disabled: bool) -> Result<()> {
        self.set_role_and_disabled(id, None, Some(disabled))
    }

    /// A role and/or the disabled flag in one transaction (`PATCH
    /// /api/users`): both or neither, the last-admin rule judged on the
    /// result, tokens and keys revoked once when either calls for it.
    fn set_role_and_disabled(
        &self,
        id: &str,
        role: Option<Role>,
        disabled: Option<bool>,
    ) -> Result<()>;

    fn record_login(&self, id: &str) -> Result<()>;

    /// Delete an account (refused for the only enabled admin, atomically).
    fn delete(&self, id: &str) -> Result<()>;

    /// Whether the connection under this handle is gone (a pool drops it
    /// rather than lend it again).
    fn connection_lost(&self) -> bool {
        false
    }
}

impl Accounts for SqliteUsers {
    fn list(&self) -> Result<Vec<User>> {
        let mut st = self
            .conn
            .prepare_cached(&format!("SELECT {COLS} FROM users ORDER BY username"))
            .map_err(self.err("listing users"))?;
        let rows = st
            .query_map([], from_row)
            .and_then(|r| r.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(self.err("listing users"))?;
        Ok(rows)
    }

    fn find(&self, username: &str) -> Result<Option<User>> {
        self.conn
            .query_row(
                &format!("SELECT {COLS} FROM users WHERE username = ?1"),
                [username],
                from_row,
            )
            .optional()
            .map_err(self.err("reading user"))
    }

    fn find_by_id(&self, id: &str) -> Result<Option<User>> {
        // Cached: the HTTP mode runs this for every request.
        self.conn
            .prepare_cached(&format!("SELECT {COLS} FROM users WHERE id = ?1"))
            .and_then(|mut st| st.query_row([id], from_row).optional())
            .map_err(self.err("reading user"))
    }

    fn password_hash(&self, id: &str) -> Result<Option<String>> {
        self.conn
            .query_row("SELECT password_hash FROM users WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .optional()
            .map_err(self.err("reading user"))
    }

    fn insert(&self, username: &str, role: Role, password_hash: &str) -> Result<User> {
        let id = format!("u_{}", crate::crypto::random_hex(8));
        let now = now_rfc3339();
        let r = with_immediate(&self.conn, &self.path, "adding user", |tx| {
            tx.execute(
                "INSERT INTO users (id, username, password_hash, role, created_at, updated_at, password_changed_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?5)",
                params![id, username, password_hash, role.as_str(), now],
            )
        });
        match r {
            Ok(_) => {}
            Err(e) if e.message.contains("UNIQUE constraint failed") => {
                return Err(Error::conflict(format!(
                    "a user named {username:?} already exists"
                )))
            }
            Err(e) => return Err(e),
        }
        self.get(username)
    }

    fn set_password(
        &self,
        id: &str,
        hash: &str,
        must_change: bool,
    ) -> Result<Vec<(String, String)>> {
        let now = now_rfc3339();
        let (n, revoked) = with_immediate(&self.conn, &self.path, "changing password", |tx| {
            let n = tx.execute(
                "UPDATE users SET password_hash = ?1, password_changed_at = ?2, updated_at = ?2,
                 token_version = token_version + 1, must_change_password = ?4 WHERE id = ?3",
                params![hash, now, id, must_change],
            )?;
            let revoked = if must_change && n > 0 {
                keys::revoke_all_returning(tx, id, "password_reset")?
            } else {
                Vec::new()
            };
            Ok((n, revoked))
        })?;
        if n == 0 {
            return Err(Error::not_found(format!("user {id} no longer exists")));
        }
        Ok(revoked)
    }

    fn set_role_and_disabled(
        &self,
        id: &str,
        role: Option<Role>,
        disabled: Option<bool>,
    ) -> Result<()> {
        let now = now_rfc3339();
        let demote = role.is_some_and(|r| r != Role::Admin);
        let disable = disabled == Some(true);
        let revoke = role.is_some() || disable;
        let n = with_immediate(
            &self.conn,
            &self.path,
            "changing role and disabled flag",
            |tx| {
                if demote || disable {
                    if let Some(name) = last_enabled_admin(tx, id)? {
                        let verb = if demote { "demote" } else { "disable" };
                        return Ok(Err(last_admin_error(verb, &name)));
                    }
                }
                let n = tx.execute(
                &format!(
                    "UPDATE users SET role = coalesce(?1, role), disabled = coalesce(?2, disabled), \
                     updated_at = ?3{} WHERE id = ?4",
                    if revoke { ", token_version = token_version + 1" } else { "" }
                ),
                params![role.map(Role::as_str), disabled.map(i64::from), now, id],
            )?;
                if revoke {
                    keys::revoke_all_in(tx, id, "changing role and disabled flag")?;
                }
                Ok(Ok(n))
            },
        )??;
        if n == 0 {
            return Err(Error::not_found(format!("user {id} no longer exists")));
        }
        Ok(())
    }

    fn record_login(&self, id: &str) -> Result<()> {
        let now = now_rfc3339();
        with_immediate(&self.conn, &self.path, "recording login", |tx| {
            tx.execute(
                "UPDATE users SET last_login_at = ?1 WHERE id = ?2",
                params![now, id],
            )
        })?;
        Ok(())
    }

    fn delete(&self, id: &str) -> Result<()> {
        let n = with_immediate(&self.conn, &self.path, "deleting user", |tx| {
            if let Some(name) = last_enabled_admin(tx, id)? {
                return Ok(Err(last_admin_error("delete", &name)));
            }
            tx.execute("DELETE FROM totp WHERE user_id = ?1", [id])?;
            tx.execute("DELETE FROM totp_recovery WHERE user_id = ?1", [id])?;
            tx.execute("DELETE FROM api_keys WHERE user_id = ?1", [id])?;
            tx.execute("DELETE FROM sso_identities WHERE user_id = ?1", [id])?;
            tx.execute("DELETE FROM users WHERE id = ?1", [id]).map(Ok)
        })??;
        if n == 0 {
            return Err(Error::not_found(format!("user {id} no longer exists")));
        }
        Ok(())
    }
}

pub trait Budgets {
    /// Reserve `amount` of `user_id`'s budget for `day` (UTC YYYY-MM-DD)
    /// unless settled spend + open reservations + amount would exceed
    /// `limit`, or another turn of the user still holds an open reservation
    /// (younger than [`OPEN_RESERVATION_HOLDS_SECS`]). Atomic across
    /// processes (one `BEGIN IMMEDIATE`).
    ///
    /// One open reservation at a time is what makes the limit hold: a
    /// turn's real cost is known only once it ends, so parallel turns
    /// admitted on the same headroom could each spend past it (10 parallel
    /// turns once spent 2.1× a $0.10 limit). Admitted one at a time, each
    /// turn starts with settled spend ≤ `limit - amount`, so the day's spend
    /// ends below `limit + max(0, one turn's cost - amount)`.
    fn reserve_budget(
        &self,
        user_id: &str,
        day: &str,
        session_id: &str,
        amount: f64,
        limit: f64,
    ) -> Result<Reservation>;

    /// What [`Self::reserve_budget`] would refuse now, if anything, read
    /// without writing (a hint only: the reservation decides).
    fn budget_precheck(
        &self,
        user_id: &str,
        day: &str,
        amount: f64,
        limit: f64,
    ) -> Result<Option<Reservation>>;

    /// Replace a reservation with what the turn really cost.
    fn settle_budget(&self, reservation: &str, actual: f64) -> Result<()>;

    /// Settled spend plus open reservations of a user on a day.
    fn spent(&self, user_id: &str, day: &str) -> Result<f64>;
}

impl Budgets for SqliteUsers {
    fn reserve_budget(
        &self,
        user_id: &str,
        day: &str,
        session_id: &str,
        amount: f64,
        limit: f64,
    ) -> Result<Reservation> {
        let id = format!("sp_{}", crate::crypto::random_hex(8));
        let now = now_rfc3339();
        with_immediate(&self.conn, &self.path, "reserving budget", |tx| {
            if let Some(refused) = budget_refusal(tx, user_id, day, amount, limit)? {
                return Ok(refused);
            }
            tx.execute(
                "INSERT INTO spend (id, user_id, day, session_id, reserved_usd, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![id, user_id, day, session_id, amount, now],
            )?;
            Ok(Reservation::Made(id.clone()))
        })
    }

    fn budget_precheck(
        &self,
        user_id: &str,
        day: &str,
        amount: f64,
        limit: f64,
    ) -> Result<Option<Reservation>> {
        budget_refusal(&self.conn, user_id, day, amount, limit).map_err(self.err("reading spend"))
    }

    fn settle_budget(&self, reservation: &str, actual: f64) -> Result<()> {
        let now = now_rfc3339();
        with_immediate(&self.conn, &self.path, "settling budget", |tx| {
            tx.execute(
                "UPDATE spend SET actual_usd = ?1, settled_at = ?2 WHERE id = ?3",
                params![actual.max(0.0), now, reservation],
            )
        })?;
        Ok(())
    }

    fn spent(&self, user_id: &str, day: &str) -> Result<f64> {
        self.conn
            .query_row(
                "SELECT COALESCE(sum(COALESCE(actual_usd, reserved_usd)), 0) FROM spend WHERE user_id = ?1 AND day = ?2",
                params![user_id, day],
                |r| r.get(0),
            )
            .map_err(self.err("reading spend"))
    }
}

/// How long an unsettled reservation keeps the user's other turns waiting.
/// Turns settle as they end; this only frees an account whose turn's
/// process died before settling (its reservation still counts as spent).
pub const OPEN_RESERVATION_HOLDS_SECS: i64 = 3600;

/// Why a reservation of `amount` for `user_id` on `day` would be refused
/// now: another turn's reservation is open (any day: a turn begun before
/// midnight UTC still spends), or the day's spend leaves no room.
fn budget_refusal(
    c: &rusqlite::Connection,
    user_id: &str,
    day: &str,
    amount: f64,
    limit: f64,
) -> rusqlite::Result<Option<Reservation>> {
    let held_since = held_since();
    let open: i64 = c.query_row(
        "SELECT count(*) FROM spend WHERE user_id = ?1 AND settled_at IS NULL AND created_at > ?2",
        params![user_id, held_since],
        |r| r.get(0),
    )?;
    if open > 0 {
        return Ok(Some(Reservation::OtherTurnOpen));
    }
    let used: f64 = c.query_row(
        "SELECT COALESCE(sum(COALESCE(actual_usd, reserved_usd)), 0) FROM spend WHERE user_id = ?1 AND day = ?2",
        params![user_id, day],
        |r| r.get(0),
    )?;
    Ok(no_room(used, amount, limit))
}

/// Refused when the day's spend (settled and reserved) `used` leaves no
/// room for `amount` under `limit`.
pub(crate) fn no_room(used: f64, amount: f64, limit: f64) -> Option<Reservation> {
    (used >= limit || used + amount > limit + 1e-12).then_some(Reservation::Spent(used))
}

/// Reservations made after this are open: another turn still runs.
pub(crate) fn held_since() -> String {
    (chrono::Utc::now() - chrono::Duration::seconds(OPEN_RESERVATION_HOLDS_SECS))
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// What [`UserStore::reserve_budget`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Reservation {
    /// Reserved, under this id (settle it with the real cost).
    Made(String),
    /// Refused: settled spend and open reservations already this much.
    Spent(f64),
    /// Refused: another turn of the user has not settled yet.
    OtherTurnOpen,
}

/// The username of `id` when it is the only enabled admin (read inside the
/// caller's write transaction, so the answer holds until it commits).
fn last_enabled_admin(tx: &rusqlite::Transaction, id: &str) -> rusqlite::Result<Option<String>> {
    tx.query_row(
        "SELECT u.username FROM users u
         WHERE u.id = ?1 AND u.role = 'admin' AND u.disabled = 0
           AND NOT EXISTS (SELECT 1 FROM users o
                           WHERE o.id != ?1 AND o.role = 'admin' AND o.disabled = 0)",
        [id],
        |r| r.get(0),
    )
    .optional()
}

pub(crate) fn last_admin_error(verb: &str, username: &str) -> Error {
    Error::conflict(format!(
        "refusing to {verb} {username}: it is the only enabled admin"
    ))
    .hint("create or enable another admin first")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `PATCH /api/users` changes both or neither.
    #[test]
    fn role_and_disabled_change_together_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let s = UserStore::open(&dir.path().join("users.db")).unwrap();
        let root = s.insert("root", Role::Admin, "x").unwrap();
        let c = s.insert("carol", Role::User, "x").unwrap();
        s.set_role_and_disabled(&c.id, Some(Role::Viewer), Some(true))
            .unwrap();
        let after = s.get("carol").unwrap();
        assert_eq!((after.role, after.disabled), (Role::Viewer, true));
        assert_eq!(after.token_version, c.token_version + 1, "revoked once");
        // The only enabled admin: neither half happens.
        let e = s
            .set_role_and_disabled(&root.id, Some(Role::Auditor), Some(false))
            .unwrap_err();
        assert_eq!(e.kind, crate::Kind::Conflict);
        let e = s
            .set_role_and_disabled(&root.id, None, Some(true))
            .unwrap_err();
        assert_eq!(e.kind, crate::Kind::Conflict);
        let r = s.get("root").unwrap();
        assert_eq!(
            (r.role, r.disabled, r.token_version),
            (Role::Admin, false, root.token_version)
        );
    }

    /// Turns are admitted one at a time while a budget is set, so settled
    /// spend at admission is at most `limit - amount` and the day ends below
    /// `limit + max(0, one turn's cost - amount)`, however many run at once.
    #[test]
    fn budget_reservations_admit_one_open_turn_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteUsers::open(&dir.path().join("users.db")).unwrap();
        let (day, limit, reserve) = ("2026-12-05", 0.10, 0.01);
        let Reservation::Made(first) = s.reserve_budget("u1", day, "s1", reserve, limit).unwrap()
        else {
            panic!("the first turn is admitted")
        };
        // Under-reserving turns in parallel: refused while the first is open,
        // although $0.09 of headroom is left.
        for i in 0..9 {
            assert_eq!(
                s.reserve_budget("u1", day, &format!("p{i}"), reserve, limit)
                    .unwrap(),
                Reservation::OtherTurnOpen
            );
        }
        // Another account is not held up.
        assert!(matches!(
            s.reserve_budget("u2", day, "s2", reserve, limit).unwrap(),
            Reservation::Made(_)
        ));
        // Each turn really costs $0.021: admitted one after another until
        // the settled spend leaves no room for a reservation.
        s.settle_budget(&first, 0.021).unwrap();
        let mut admitted = 1;
        while let Reservation::Made(id) = s.reserve_budget("u1", day, "s", reserve, limit).unwrap()
        {
            s.settle_budget(&id, 0.021).unwrap();
            admitted += 1;
        }
        let spent = s.spent("u1", day).unwrap();
        assert_eq!(admitted, 5, "{spent}");
        assert!(spent <= limit + (0.021 - reserve) + 1e-12, "{spent}");
        assert!(matches!(
            s.reserve_budget("u1", day, "s", reserve, limit).unwrap(),
            Reservation::Spent(_)
        ));
        // An open reservation of a process that died stops holding the
        // account after OPEN_RESERVATION_HOLDS_SECS (it still counts).
        let Reservation::Made(_) = s.reserve_budget("u3", day, "s3", reserve, limit).unwrap()
        else {
            panic!()
        };
        assert_eq!(
            s.reserve_budget("u3", day, "s4", reserve, limit).unwrap(),
            Reservation::OtherTurnOpen
        );
        let old = (chrono::Utc::now() - chrono::Duration::seconds(OPEN_RESERVATION_HOLDS_SECS + 1))
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        s.conn
            .execute(
                "UPDATE spend SET created_at = ?1 WHERE user_id = 'u3'",
                [old],
            )
            .unwrap();
        assert!(matches!(
            s.reserve_budget("u3", day, "s4", reserve, limit).unwrap(),
            Reservation::Made(_)
        ));
        assert!((s.spent("u3", day).unwrap() - 2.0 * reserve).abs() < 1e-12);
    }
}
