//! Two-factor secrets in users.db: one TOTP secret per account (pending
//! until confirmed with a code), the highest time step accepted (codes are
//! single-use), and ten one-time recovery codes stored as SHA-256 (they are
//! 80 random bits each, so a fast hash is right). The RFC 6238 arithmetic is
//! `ops::totp`'s; this module only stores and consumes atomically.

use super::{now_rfc3339, with_immediate, SqliteUsers};
use crate::error::Result;
use rusqlite::{params, OptionalExtension};

/// A stored TOTP enrolment.
#[derive(Debug, Clone)]
pub struct TotpRow {
    pub secret: Vec<u8>,
    pub confirmed: bool,
    pub last_step: i64,
}

pub trait TotpStore {
    /// Start (or restart) an enrolment: a new secret, pending until
    /// confirmed, and new recovery codes (their hashes). Refused (`false`)
    /// while a confirmed enrolment exists.
    fn totp_begin(&self, user_id: &str, secret: &[u8], recovery: &[[u8; 32]]) -> Result<bool>;

    fn totp_get(&self, user_id: &str) -> Result<Option<TotpRow>>;

    /// Accept time step `step` of a confirmed enrolment for `user_id` if no
    /// later or equal step was accepted before (single use). Atomic: two
    /// requests with the same code cannot both pass.
    fn totp_use_step(&self, user_id: &str, step: i64) -> Result<bool>;

    /// Confirm a pending enrolment with time step `step`, and in the same
    /// transaction bump the account's token version: every earlier token
    /// (logins made with the password alone) stops working. `false`: no
    /// pending enrolment, or the step was already used.
    fn totp_confirm(&self, user_id: &str, step: i64) -> Result<bool>;

    /// Spend a recovery code (by its hash) once. Returns whether it was
    /// unused and is now spent, and how many remain.
    fn totp_use_recovery(&self, user_id: &str, hash: &[u8; 32]) -> Result<(bool, i64)>;

    /// Remove two-factor login for `user_id`; whether there was any.
    fn totp_remove(&self, user_id: &str) -> Result<bool>;
}

impl TotpStore for SqliteUsers {
    fn totp_begin(&self, user_id: &str, secret: &[u8], recovery: &[[u8; 32]]) -> Result<bool> {
        let now = now_rfc3339();
        with_immediate(&self.conn, &self.path, "storing a TOTP secret", |tx| {
            let confirmed: Option<Option<String>> = tx
                .query_row(
                    "SELECT confirmed_at FROM totp WHERE user_id = ?1",
                    [user_id],
                    |r| r.get(0),
                )
                .optional()?;
            if matches!(confirmed, Some(Some(_))) {
                return Ok(false);
            }
            tx.execute("DELETE FROM totp WHERE user_id = ?1", [user_id])?;
            tx.execute("DELETE FROM totp_recovery WHERE user_id = ?1", [user_id])?;
            tx.execute(
                "INSERT INTO totp (user_id, secret, confirmed_at, last_step, created_at)
                 VALUES (?1, ?2, NULL, 0, ?3)",
                params![user_id, secret, now],
            )?;
            for h in recovery {
                tx.execute(
                    "INSERT INTO totp_recovery (user_id, code_hash) VALUES (?1, ?2)",
                    params![user_id, &h[..]],
                )?;
            }
            Ok(true)
        })
    }

    fn totp_get(&self, user_id: &str) -> Result<Option<TotpRow>> {
        self.conn
            .query_row(
                "SELECT secret, confirmed_at IS NOT NULL, last_step FROM totp WHERE user_id = ?1",
                [user_id],
                |r| {
                    Ok(TotpRow {
                        secret: r.get(0)?,
                        confirmed: r.get(1)?,
                        last_step: r.get(2)?,
                    })
                },
            )
            .optional()
            .map_err(self.err("reading the TOTP secret"))
    }

    fn totp_use_step(&self, user_id: &str, step: i64) -> Result<bool> {
        let n = with_immediate(&self.conn, &self.path, "using a TOTP code", |tx| {
            tx.execute(
                "UPDATE totp SET last_step = ?2
                 WHERE user_id = ?1 AND last_step < ?2 AND confirmed_at IS NOT NULL",
                params![user_id, step],
            )
        })?;
        Ok(n == 1)
    }

    fn totp_confirm(&self, user_id: &str, step: i64) -> Result<bool> {
        let now = now_rfc3339();
        with_immediate(
            &self.conn,
            &self.path,
            "confirming a TOTP enrolment",
            |tx| {
                let n = tx.execute(
                    "UPDATE totp SET last_step = ?2, confirmed_at = ?3
                 WHERE user_id = ?1 AND last_step < ?2 AND confirmed_at IS NULL",
                    params![user_id, step, now],
                )?;
                if n == 1 {
                    tx.execute(
                    "UPDATE users SET token_version = token_version + 1, updated_at = ?2 WHERE id = ?1",
                    params![user_id, now],
                )?;
                }
                Ok(n == 1)
            },
        )
    }

    fn totp_use_recovery(&self, user_id: &str, hash: &[u8; 32]) -> Result<(bool, i64)> {
        let now = now_rfc3339();
        with_immediate(&self.conn, &self.path, "using a recovery code", |tx| {
            let n = tx.execute(
                "UPDATE totp_recovery SET used_at = ?3
                 WHERE user_id = ?1 AND code_hash = ?2 AND used_at IS NULL
                   AND EXISTS (SELECT 1 FROM totp WHERE user_id = ?1 AND confirmed_at IS NOT NULL)",
                params![user_id, &hash[..], now],
            )?;
            let left: i64 = tx.query_row(
                "SELECT count(*) FROM totp_recovery WHERE user_id = ?1 AND used_at IS NULL",
                [user_id],
                |r| r.get(0),
            )?;
            Ok((n == 1, left))
        })
    }

    fn totp_remove(&self, user_id: &str) -> Result<bool> {
        with_immediate(&self.conn, &self.path, "removing a TOTP secret", |tx| {
            tx.execute("DELETE FROM totp_recovery WHERE user_id = ?1", [user_id])?;
            Ok(tx.execute("DELETE FROM totp WHERE user_id = ?1", [user_id])? > 0)
        })
    }
}
