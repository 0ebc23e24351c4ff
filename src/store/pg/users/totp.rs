//! Two-factor secrets in the fleet's database: users.db's `totp` and
//! `totp_recovery` one to one (store/users/totp.rs). A time step and a
//! recovery code are consumed by one conditional write, in a transaction
//! serialised with every other writer of the store, so each works once
//! across every replica.

use super::PgUsers;
use crate::error::Result;
use crate::store::now_rfc3339;
use crate::store::users::*;

impl TotpStore for PgUsers {
    fn totp_begin(&self, user_id: &str, secret: &[u8], recovery: &[[u8; 32]]) -> Result<bool> {
        let now = now_rfc3339();
        self.write("storing a TOTP secret in", |tx| {
            let confirmed: Option<Option<String>> = tx
                .query_opt(
                    "SELECT confirmed_at FROM totp WHERE user_id = $1",
                    &[&user_id],
                )?
                .map(|r| r.get(0));
            if matches!(confirmed, Some(Some(_))) {
                return Ok(false);
            }
            tx.execute("DELETE FROM totp WHERE user_id = $1", &[&user_id])?;
            tx.execute("DELETE FROM totp_recovery WHERE user_id = $1", &[&user_id])?;
            tx.execute(
                "INSERT INTO totp (user_id, secret, confirmed_at, last_step, created_at)
                 VALUES ($1, $2, NULL, 0, $3)",
                &[&user_id, &secret, &now],
            )?;
            for h in recovery {
                let h: &[u8] = &h[..];
                tx.execute(
                    "INSERT INTO totp_recovery (user_id, code_hash) VALUES ($1, $2)",
                    &[&user_id, &h],
                )?;
            }
            Ok(true)
        })
    }

    fn totp_get(&self, user_id: &str) -> Result<Option<TotpRow>> {
        self.read("reading the TOTP secret in", |c| {
            Ok(c.query_opt(
                "SELECT secret, confirmed_at IS NOT NULL, last_step FROM totp WHERE user_id = $1",
                &[&user_id],
            )?
            .map(|r| TotpRow {
                secret: r.get(0),
                confirmed: r.get(1),
                last_step: r.get(2),
            }))
        })
    }

    fn totp_use_step(&self, user_id: &str, step: i64) -> Result<bool> {
        let n = self.write("using a TOTP code in", |tx| {
            tx.execute(
                "UPDATE totp SET last_step = $2
                 WHERE user_id = $1 AND last_step < $2 AND confirmed_at IS NOT NULL",
                &[&user_id, &step],
            )
        })?;
        Ok(n == 1)
    }

    fn totp_confirm(&self, user_id: &str, step: i64) -> Result<bool> {
        let now = now_rfc3339();
        self.write("confirming a TOTP enrolment in", |tx| {
            let n = tx.execute(
                "UPDATE totp SET last_step = $2, confirmed_at = $3
                 WHERE user_id = $1 AND last_step < $2 AND confirmed_at IS NULL",
                &[&user_id, &step, &now],
            )?;
            if n == 1 {
                tx.execute(
                    "UPDATE users SET token_version = token_version + 1, updated_at = $2 WHERE id = $1",
                    &[&user_id, &now],
                )?;
            }
            Ok(n == 1)
        })
    }

    fn totp_use_recovery(&self, user_id: &str, hash: &[u8; 32]) -> Result<(bool, i64)> {
        let now = now_rfc3339();
        let hash: &[u8] = &hash[..];
        self.write("using a recovery code in", |tx| {
            let n = tx.execute(
                "UPDATE totp_recovery SET used_at = $3
                 WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL
                   AND EXISTS (SELECT 1 FROM totp WHERE user_id = $1 AND confirmed_at IS NOT NULL)",
                &[&user_id, &hash, &now],
            )?;
            let left: i64 = tx
                .query_one(
                    "SELECT count(*) FROM totp_recovery WHERE user_id = $1 AND used_at IS NULL",
                    &[&user_id],
                )?
                .get(0);
            Ok((n == 1, left))
        })
    }

    fn totp_remove(&self, user_id: &str) -> Result<bool> {
        self.write("removing a TOTP secret in", |tx| {
            tx.execute("DELETE FROM totp_recovery WHERE user_id = $1", &[&user_id])?;
            Ok(tx.execute("DELETE FROM totp WHERE user_id = $1", &[&user_id])? > 0)
        })
    }
}
