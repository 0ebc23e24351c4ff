//! Tokens of the HTTP mode in users.db: refresh-token families (rotation,
//! reuse detection, revocation) and access tokens revoked before they expire.

use super::{from_row, now_rfc3339, with_immediate, SqliteUsers, User, COLS};
use crate::error::{Error, Result};
use rusqlite::{params, OptionalExtension};

pub trait Tokens {
    /// The user behind an access token and whether the token was revoked:
    /// its own id logged out, or its login (refresh family) revoked by a
    /// logout or a reused refresh token. One statement on a pooled handle,
    /// run for every request, so every `serve` process sees every
    /// revocation at once.
    fn find_for_token(
        &self,
        user_id: &str,
        jti: &str,
        family: Option<&str>,
    ) -> Result<Option<(User, bool)>>;

    /// Bounded growth: drop refresh tokens past their expiry, all but the
    /// newest `keep_used` used tokens of each family (older ones then read as
    /// unknown instead of as reuse), and revoked access tokens past their
    /// expiry. Returns (refresh rows, access rows) removed.
    fn purge_tokens(&self, now_epoch: i64, keep_used: i64) -> Result<(i64, i64)>;

    /// Store a new refresh token (by its SHA-256) in `family_id`, valid until
    /// `expires_at` (epoch seconds) and for `token_version` of the user;
    /// `second_factor`: the login passed one (kept through rotations).
    fn insert_refresh(
        &self,
        token_hash: &[u8; 32],
        family_id: &str,
        user_id: &str,
        token_version: i64,
        expires_at: i64,
        second_factor: bool,
    ) -> Result<String>;

    /// Use a refresh token: in one write transaction, look it up by hash and
    /// either rotate it (mark it used, store `new_hash` in the same family) or,
    /// when it was already used, revoke its whole family (reuse detection).
    /// The user must still exist, be enabled and have the token version the
    /// token was issued under.
    fn rotate_refresh(
        &self,
        token_hash: &[u8; 32],
        new_hash: &[u8; 32],
        new_expires_at: i64,
        now_epoch: i64,
        limit: (i64, &str),
    ) -> Result<RefreshUse>;

    /// Revoke refresh tokens of `user_id`: one family (found through one of
    /// its tokens) or, with `token_hash = None`, all of them. Returns the
    /// number of tokens revoked.
    fn revoke_refresh(
        &self,
        user_id: &str,
        token_hash: Option<&[u8; 32]>,
        reason: &str,
    ) -> Result<i64>;

    /// Revoke one login of `user_id`: every token of `family` (its access
    /// tokens then fail [`UserStore::find_for_token`]). Returns the number
    /// of refresh tokens newly revoked.
    fn revoke_family(&self, user_id: &str, family: &str, reason: &str) -> Result<i64>;

    /// Remember a revoked access token until it expires (and forget those
    /// that have).
    fn revoke_access(&self, jti: &str, user_id: &str, expires_at: i64) -> Result<()>;

    /// Revoked access tokens that have not expired yet: (jti, expires_at).
    fn revoked_access(&self) -> Result<Vec<(String, i64)>>;
}

impl Tokens for SqliteUsers {
    fn find_for_token(
        &self,
        user_id: &str,
        jti: &str,
        family: Option<&str>,
    ) -> Result<Option<(User, bool)>> {
        self.conn
            .prepare_cached(&format!(
                "SELECT {COLS},
                   EXISTS (SELECT 1 FROM revoked_access WHERE jti = ?2)
                   OR (?3 IS NOT NULL AND EXISTS (SELECT 1 FROM refresh_tokens
                        WHERE family_id = ?3 AND revoked_at IS NOT NULL))
                 FROM users WHERE id = ?1"
            ))
            .and_then(|mut st| {
                st.query_row(params![user_id, jti, family], |r| {
                    Ok((from_row(r)?, r.get::<_, bool>(super::NCOLS)?))
                })
                .optional()
            })
            .map_err(self.err("reading user"))
    }

    fn purge_tokens(&self, now_epoch: i64, keep_used: i64) -> Result<(i64, i64)> {
        with_immediate(&self.conn, &self.path, "purging tokens", |tx| {
            let expired = tx.execute(
                "DELETE FROM refresh_tokens WHERE expires_at < ?1",
                [now_epoch],
            )?;
            let old_used = tx.execute(
                "DELETE FROM refresh_tokens WHERE id IN (
                   SELECT id FROM (
                     SELECT id, row_number() OVER (PARTITION BY family_id ORDER BY created_at DESC) AS n
                     FROM refresh_tokens WHERE used_at IS NOT NULL AND revoked_at IS NULL)
                   WHERE n > ?1)",
                [keep_used],
            )?;
            let access = tx.execute(
                "DELETE FROM revoked_access WHERE expires_at <= ?1",
                [now_epoch],
            )?;
            Ok(((expired + old_used) as i64, access as i64))
        })
    }

    fn insert_refresh(
        &self,
        token_hash: &[u8; 32],
        family_id: &str,
        user_id: &str,
        token_version: i64,
        expires_at: i64,
        second_factor: bool,
    ) -> Result<String> {
        let id = format!("rt_{}", crate::crypto::random_hex(8));
        let now = now_rfc3339();
        with_immediate(&self.conn, &self.path, "storing a refresh token", |tx| {
            tx.execute(
                "INSERT INTO refresh_tokens (id, token_hash, family_id, user_id, token_version, created_at, expires_at, second_factor)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![id, &token_hash[..], family_id, user_id, token_version, now, expires_at, second_factor],
            )
        })?;
        Ok(id)
    }

    #[expect(
        clippy::too_many_lines,
        reason = "the whole refresh-token rotation inside one IMMEDIATE transaction (lookup, reuse detection, family revocation, insert), which is what closes the race"
    )]
    fn rotate_refresh(
        &self,
        token_hash: &[u8; 32],
        new_hash: &[u8; 32],
        new_expires_at: i64,
        now_epoch: i64,
        limit: (i64, &str),
    ) -> Result<RefreshUse> {
        let now = now_rfc3339();
        let new_id = format!("rt_{}", crate::crypto::random_hex(8));
        with_immediate(&self.conn, &self.path, "rotating a refresh token", |tx| {
            let row = tx
                .query_row(
                    "SELECT r.id, r.family_id, r.user_id, r.token_version, r.expires_at, r.used_at, r.revoked_at,
                            u.disabled, u.token_version, r.second_factor
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
                            r.get::<_, bool>(9)?,
                        ))
                    },
                )
                .optional()?;
            let Some((id, family, user_id, tv, expires, used, revoked, disabled, user_tv, sf)) =
                row
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
            // At most `limit.0` rotations of a family since `limit.1`: a
            // client looping refresh cannot grow users.db and events.db.
            let recent: i64 = tx.query_row(
                "SELECT count(*) FROM refresh_tokens WHERE family_id = ?1 AND created_at >= ?2",
                params![family, limit.1],
                |r| r.get(0),
            )?;
            if recent > limit.0 {
                return Ok(RefreshUse::RateLimited {
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
                    second_factor: sf,
                });
            }
            tx.execute(
                "INSERT INTO refresh_tokens (id, token_hash, family_id, user_id, token_version, created_at, expires_at, second_factor)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![new_id, &new_hash[..], family, user_id, tv, now, new_expires_at, sf],
            )?;
            tx.execute(
                "UPDATE refresh_tokens SET used_at = ?1, replaced_by = ?2 WHERE id = ?3",
                params![now, new_id, id],
            )?;
            Ok(RefreshUse::Rotated {
                user_id,
                family_id: family,
                second_factor: sf,
            })
        })
    }

    fn revoke_refresh(
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

    fn revoke_family(&self, user_id: &str, family: &str, reason: &str) -> Result<i64> {
        let now = now_rfc3339();
        let n = with_immediate(&self.conn, &self.path, "revoking a login", |tx| {
            tx.execute(
                "UPDATE refresh_tokens SET revoked_at = ?1, revoked_reason = ?2
                 WHERE revoked_at IS NULL AND user_id = ?3 AND family_id = ?4",
                params![now, reason, user_id, family],
            )
        })?;
        Ok(n as i64)
    }

    fn revoke_access(&self, jti: &str, user_id: &str, expires_at: i64) -> Result<()> {
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

    fn revoked_access(&self) -> Result<Vec<(String, i64)>> {
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
}

/// What using a refresh token did ([`UserStore::rotate_refresh`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshUse {
    /// Valid: a new token was stored in the same family. `second_factor`:
    /// the login passed one.
    Rotated {
        user_id: String,
        family_id: String,
        second_factor: bool,
    },
    /// Rotated too often lately: refused, nothing changed.
    RateLimited {
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
        second_factor: bool,
    },
    /// No such token.
    Unknown,
}
