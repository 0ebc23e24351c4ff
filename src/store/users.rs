//! users.db: the operator's accounts. Storage only; the rules around it
//! (audit events, last-admin protection) live in [`crate::accounts`].

use super::{now_rfc3339, open_own, open_own_readonly, with_immediate};
use crate::error::{Error, Result};
use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

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
];

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, clap::ValueEnum,
)]
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
}

const COLS: &str = "id, username, role, disabled, token_version, created_at, updated_at, password_changed_at, last_login_at";

fn from_row(r: &Row) -> rusqlite::Result<User> {
    let role: String = r.get(2)?;
    Ok(User {
        id: r.get(0)?,
        username: r.get(1)?,
        role: Role::parse(&role).unwrap_or(Role::Viewer),
        disabled: r.get::<_, i64>(3)? != 0,
        token_version: r.get(4)?,
        created_at: r.get(5)?,
        updated_at: r.get(6)?,
        password_changed_at: r.get(7)?,
        last_login_at: r.get(8)?,
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

pub struct UserStore {
    conn: Connection,
    path: PathBuf,
}

impl UserStore {
    pub fn open(path: &Path) -> Result<Self> {
        let conn = open_own(path, "users.db", MIGRATIONS)?;
        Ok(UserStore {
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
        Ok(UserStore {
            conn,
            path: path.to_path_buf(),
        })
    }

    fn err(&self, what: &str) -> impl Fn(rusqlite::Error) -> Error + '_ {
        let what = what.to_string();
        move |e| Error::sqlite(&self.path, &what, e)
    }

    pub fn list(&self) -> Result<Vec<User>> {
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

    pub fn find(&self, username: &str) -> Result<Option<User>> {
        self.conn
            .query_row(
                &format!("SELECT {COLS} FROM users WHERE username = ?1"),
                [username],
                from_row,
            )
            .optional()
            .map_err(self.err("reading user"))
    }

    pub fn get(&self, username: &str) -> Result<User> {
        self.find(username)?.ok_or_else(|| {
            Error::not_found(format!(
                "no user named {:?}",
                crate::output::clip(username, 80)
            ))
            .hint("`hermes-operator user list` shows the accounts")
        })
    }

    pub fn find_by_id(&self, id: &str) -> Result<Option<User>> {
        // Cached: the HTTP mode runs this for every request.
        self.conn
            .prepare_cached(&format!("SELECT {COLS} FROM users WHERE id = ?1"))
            .and_then(|mut st| st.query_row([id], from_row).optional())
            .map_err(self.err("reading user"))
    }

    /// The stored PHC hash, for login.
    pub fn password_hash(&self, id: &str) -> Result<Option<String>> {
        self.conn
            .query_row("SELECT password_hash FROM users WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .optional()
            .map_err(self.err("reading user"))
    }

    pub fn insert(&self, username: &str, role: Role, password_hash: &str) -> Result<User> {
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

    /// Apply a change to one user inside one write transaction. `bump_tokens`
    /// increments the token version, revoking every earlier token.
    fn update(
        &self,
        id: &str,
        what: &str,
        set_sql: &str,
        value: rusqlite::types::Value,
        bump_tokens: bool,
    ) -> Result<()> {
        let now = now_rfc3339();
        let bump = if bump_tokens {
            ", token_version = token_version + 1"
        } else {
            ""
        };
        let sql = format!("UPDATE users SET {set_sql}, updated_at = ?2{bump} WHERE id = ?3");
        let n = with_immediate(&self.conn, &self.path, what, |tx| {
            tx.execute(&sql, params![value, now, id])
        })?;
        if n == 0 {
            return Err(Error::not_found(format!("user {id} no longer exists")));
        }
        Ok(())
    }

    pub fn set_password(&self, id: &str, hash: &str) -> Result<()> {
        let now = now_rfc3339();
        let n = with_immediate(&self.conn, &self.path, "changing password", |tx| {
            tx.execute(
                "UPDATE users SET password_hash = ?1, password_changed_at = ?2, updated_at = ?2,
                 token_version = token_version + 1 WHERE id = ?3",
                params![hash, now, id],
            )
        })?;
        if n == 0 {
            return Err(Error::not_found(format!("user {id} no longer exists")));
        }
        Ok(())
    }

    pub fn set_role(&self, id: &str, role: Role) -> Result<()> {
        self.update(
            id,
            "changing role",
            "role = ?1",
            role.as_str().to_string().into(),
            true,
        )
    }

    pub fn set_disabled(&self, id: &str, disabled: bool) -> Result<()> {
        // Disabling revokes tokens; enabling does not resurrect them.
        self.update(
            id,
            "changing disabled flag",
            "disabled = ?1",
            (disabled as i64).into(),
            disabled,
        )
    }

    pub fn record_login(&self, id: &str) -> Result<()> {
        let now = now_rfc3339();
        with_immediate(&self.conn, &self.path, "recording login", |tx| {
            tx.execute(
                "UPDATE users SET last_login_at = ?1 WHERE id = ?2",
                params![now, id],
            )
        })?;
        Ok(())
    }

    pub fn delete(&self, id: &str) -> Result<()> {
        let n = with_immediate(&self.conn, &self.path, "deleting user", |tx| {
            tx.execute("DELETE FROM users WHERE id = ?1", [id])
        })?;
        if n == 0 {
            return Err(Error::not_found(format!("user {id} no longer exists")));
        }
        Ok(())
    }

    /// Reserve `amount` of `user_id`'s budget for `day` (UTC YYYY-MM-DD)
    /// unless settled spend + open reservations + amount would exceed
    /// `limit`. Atomic across processes (one `BEGIN IMMEDIATE`).
    /// Returns the reservation id, or `Err(spent_and_reserved)` when refused.
    pub fn reserve_budget(
        &self,
        user_id: &str,
        day: &str,
        session_id: &str,
        amount: f64,
        limit: f64,
    ) -> Result<std::result::Result<String, f64>> {
        let id = format!("sp_{}", crate::crypto::random_hex(8));
        let now = now_rfc3339();
        with_immediate(&self.conn, &self.path, "reserving budget", |tx| {
            let used: f64 = tx.query_row(
                "SELECT COALESCE(sum(COALESCE(actual_usd, reserved_usd)), 0) FROM spend WHERE user_id = ?1 AND day = ?2",
                params![user_id, day],
                |r| r.get(0),
            )?;
            if used >= limit || used + amount > limit + 1e-12 {
                return Ok(Err(used));
            }
            tx.execute(
                "INSERT INTO spend (id, user_id, day, session_id, reserved_usd, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![id, user_id, day, session_id, amount, now],
            )?;
            Ok(Ok(id.clone()))
        })
    }

    /// Replace a reservation with what the turn really cost.
    pub fn settle_budget(&self, reservation: &str, actual: f64) -> Result<()> {
        let now = now_rfc3339();
        with_immediate(&self.conn, &self.path, "settling budget", |tx| {
            tx.execute(
                "UPDATE spend SET actual_usd = ?1, settled_at = ?2 WHERE id = ?3",
                params![actual.max(0.0), now, reservation],
            )
        })?;
        Ok(())
    }

    /// Settled spend plus open reservations of a user on a day.
    pub fn spent(&self, user_id: &str, day: &str) -> Result<f64> {
        self.conn
            .query_row(
                "SELECT COALESCE(sum(COALESCE(actual_usd, reserved_usd)), 0) FROM spend WHERE user_id = ?1 AND day = ?2",
                params![user_id, day],
                |r| r.get(0),
            )
            .map_err(self.err("reading spend"))
    }

    /// Enabled admins other than `except`: guards against locking everyone out.
    pub fn other_enabled_admins(&self, except: &str) -> Result<i64> {
        self.conn
            .query_row(
                "SELECT count(*) FROM users WHERE role = 'admin' AND disabled = 0 AND id != ?1",
                [except],
                |r| r.get(0),
            )
            .map_err(self.err("counting admins"))
    }

    // -- refresh tokens (serve) ---------------------------------------------

    /// Store a new refresh token (by its SHA-256) in `family_id`, valid until
    /// `expires_at` (epoch seconds) and for `token_version` of the user.
    pub fn insert_refresh(
        &self,
        token_hash: &[u8; 32],
        family_id: &str,
        user_id: &str,
        token_version: i64,
        expires_at: i64,
    ) -> Result<String> {
        let id = format!("rt_{}", crate::crypto::random_hex(8));
        let now = now_rfc3339();
        with_immediate(&self.conn, &self.path, "storing a refresh token", |tx| {
            tx.execute(
                "INSERT INTO refresh_tokens (id, token_hash, family_id, user_id, token_version, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![id, &token_hash[..], family_id, user_id, token_version, now, expires_at],
            )
        })?;
        Ok(id)
    }

    /// Use a refresh token: in one write transaction, look it up by hash and
    /// either rotate it (mark it used, store `new_hash` in the same family) or,
    /// when it was already used, revoke its whole family (reuse detection).
    /// The user must still exist, be enabled and have the token version the
    /// token was issued under.
    // Long: the whole refresh-token rotation inside one IMMEDIATE transaction (lookup, reuse detection, family revocation, insert), which is what closes the race.
    pub fn rotate_refresh(
        &self,
        token_hash: &[u8; 32],
        new_hash: &[u8; 32],
        new_expires_at: i64,
        now_epoch: i64,
    ) -> Result<RefreshUse> {
        let now = now_rfc3339();
        let new_id = format!("rt_{}", crate::crypto::random_hex(8));
        with_immediate(&self.conn, &self.path, "rotating a refresh token", |tx| {
            let row = tx
                .query_row(
                    "SELECT r.id, r.family_id, r.user_id, r.token_version, r.expires_at, r.used_at, r.revoked_at,
                            u.disabled, u.token_version
                     FROM refresh_tokens r LEFT JOIN users u ON u.id = r.user_id
                     WHERE r.token_hash = ?1",
                    [&token_hash[..]],
                    |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, i64>(3)?,
                            r.get::<_, i64>(4)?,
                            r.get::<_, Option<String>>(5)?,
                            r.get::<_, Option<String>>(6)?,
                            r.get::<_, Option<i64>>(7)?,
                            r.get::<_, Option<i64>>(8)?,
                        ))
                    },
                )
                .optional()?;
            let Some((id, family, user_id, tv, expires, used, revoked, disabled, user_tv)) = row
            else {
                return Ok(RefreshUse::Unknown);
            };
            if revoked.is_some() {
                return Ok(RefreshUse::Revoked {
                    user_id,
                    family_id: family,
                });
            }
            if used.is_some() {
                let n = tx.execute(
                    "UPDATE refresh_tokens SET revoked_at = ?1, revoked_reason = 'reuse'
                     WHERE family_id = ?2 AND revoked_at IS NULL",
                    params![now, family],
                )?;
                return Ok(RefreshUse::Reused {
                    user_id,
                    family_id: family,
                    revoked: n as i64,
                });
            }
            if expires <= now_epoch {
                return Ok(RefreshUse::Expired {
                    user_id,
                    family_id: family,
                });
            }
            if disabled != Some(0) || user_tv != Some(tv) {
                tx.execute(
                    "UPDATE refresh_tokens SET revoked_at = ?1, revoked_reason = 'user_changed'
                     WHERE family_id = ?2 AND revoked_at IS NULL",
                    params![now, family],
                )?;
                return Ok(RefreshUse::UserChanged {
                    user_id,
                    family_id: family,
                });
            }
            tx.execute(
                "INSERT INTO refresh_tokens (id, token_hash, family_id, user_id, token_version, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![new_id, &new_hash[..], family, user_id, tv, now, new_expires_at],
            )?;
            tx.execute(
                "UPDATE refresh_tokens SET used_at = ?1, replaced_by = ?2 WHERE id = ?3",
                params![now, new_id, id],
            )?;
            Ok(RefreshUse::Rotated {
                user_id,
                family_id: family,
            })
        })
    }

    /// Revoke refresh tokens of `user_id`: one family (found through one of
    /// its tokens) or, with `token_hash = None`, all of them. Returns the
    /// number of tokens revoked.
    pub fn revoke_refresh(
        &self,
        user_id: &str,
        token_hash: Option<&[u8; 32]>,
        reason: &str,
    ) -> Result<i64> {
        let now = now_rfc3339();
        let n =
            with_immediate(
                &self.conn,
                &self.path,
                "revoking refresh tokens",
                |tx| match token_hash {
                    Some(h) => tx.execute(
                        "UPDATE refresh_tokens SET revoked_at = ?1, revoked_reason = ?2
                 WHERE revoked_at IS NULL AND user_id = ?3 AND family_id =
                   (SELECT family_id FROM refresh_tokens WHERE token_hash = ?4 AND user_id = ?3)",
                        params![now, reason, user_id, &h[..]],
                    ),
                    None => tx.execute(
                        "UPDATE refresh_tokens SET revoked_at = ?1, revoked_reason = ?2
                 WHERE revoked_at IS NULL AND user_id = ?3",
                        params![now, reason, user_id],
                    ),
                },
            )?;
        Ok(n as i64)
    }

    /// Remember a revoked access token until it expires (and forget those
    /// that have).
    pub fn revoke_access(&self, jti: &str, user_id: &str, expires_at: i64) -> Result<()> {
        let now = now_rfc3339();
        let epoch = chrono::Utc::now().timestamp();
        with_immediate(&self.conn, &self.path, "revoking an access token", |tx| {
            tx.execute("DELETE FROM revoked_access WHERE expires_at <= ?1", [epoch])?;
            tx.execute(
                "INSERT OR IGNORE INTO revoked_access (jti, user_id, expires_at, revoked_at)
                 VALUES (?1, ?2, ?3, ?4)",
                params![jti, user_id, expires_at, now],
            )
        })?;
        Ok(())
    }

    /// Revoked access tokens that have not expired yet: (jti, expires_at).
    pub fn revoked_access(&self) -> Result<Vec<(String, i64)>> {
        let epoch = chrono::Utc::now().timestamp();
        let mut st = self
            .conn
            .prepare("SELECT jti, expires_at FROM revoked_access WHERE expires_at > ?1")
            .map_err(|e| Error::sqlite(&self.path, "reading revoked tokens", e))?;
        let rows = st
            .query_map([epoch], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|it| it.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(|e| Error::sqlite(&self.path, "reading revoked tokens", e))?;
        Ok(rows)
    }

    /// Drop refresh-token rows that expired before `before_epoch`.
    pub fn purge_refresh(&self, before_epoch: i64) -> Result<i64> {
        let n = with_immediate(&self.conn, &self.path, "purging refresh tokens", |tx| {
            tx.execute(
                "DELETE FROM refresh_tokens WHERE expires_at < ?1",
                [before_epoch],
            )
        })?;
        Ok(n as i64)
    }
}

/// What using a refresh token did ([`UserStore::rotate_refresh`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshUse {
    /// Valid: a new token was stored in the same family.
    Rotated {
        user_id: String,
        family_id: String,
    },
    /// Already rotated once: the whole family is now revoked.
    Reused {
        user_id: String,
        family_id: String,
        revoked: i64,
    },
    /// The family was revoked earlier (logout, reuse, user change).
    Revoked {
        user_id: String,
        family_id: String,
    },
    Expired {
        user_id: String,
        family_id: String,
    },
    /// The user was deleted, disabled, or changed password/role since issue: family revoked.
    UserChanged {
        user_id: String,
        family_id: String,
    },
    /// No such token.
    Unknown,
}
