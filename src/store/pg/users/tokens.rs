//! Refresh-token families and revoked access tokens: `Tokens` of
//! store/users/tokens.rs, statement for statement.

use super::{user_from, PgUsers, COLS, NCOLS};
use crate::error::Result;
use crate::store::now_rfc3339;
use crate::store::users::{RefreshUse, Tokens, User};

/// The user behind an access token and whether the token or its login
/// was revoked: every authenticated request runs it.
static FOR_TOKEN_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT {COLS},
           EXISTS (SELECT 1 FROM revoked_access WHERE jti = $2)
           OR ($3::text IS NOT NULL AND EXISTS (SELECT 1 FROM refresh_tokens
                WHERE family_id = $3 AND revoked_at IS NOT NULL))
         FROM users WHERE id = $1"
    )
});

impl Tokens for PgUsers {
    fn find_for_token(
        &self,
        user_id: &str,
        jti: &str,
        family: Option<&str>,
    ) -> Result<Option<(User, bool)>> {
        self.read_prepared("reading a user in", &FOR_TOKEN_SQL, |c, st| {
            Ok(c.query_opt(st, &[&user_id, &jti, &family])?
                .map(|r| (user_from(&r, 0), r.get::<_, bool>(NCOLS))))
        })
    }

    fn purge_tokens(&self, now_epoch: i64, keep_used: i64) -> Result<(i64, i64)> {
        self.write("purging tokens in", |tx| {
            let expired = tx.execute(
                "DELETE FROM refresh_tokens WHERE expires_at < $1",
                &[&now_epoch],
            )?;
            let old_used = tx.execute(
                "DELETE FROM refresh_tokens WHERE id IN (
                   SELECT id FROM (
                     SELECT id, row_number() OVER (PARTITION BY family_id ORDER BY created_at DESC) AS n
                     FROM refresh_tokens WHERE used_at IS NOT NULL AND revoked_at IS NULL) t
                   WHERE n > $1)",
                &[&keep_used],
            )?;
            let access = tx.execute(
                "DELETE FROM revoked_access WHERE expires_at <= $1",
                &[&now_epoch],
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
        self.write("storing a refresh token in", |tx| {
            tx.execute(
                "INSERT INTO refresh_tokens (id, token_hash, family_id, user_id, token_version, created_at, expires_at, second_factor)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[&id, &&token_hash[..], &family_id, &user_id, &token_version, &now, &expires_at, &second_factor],
            )
        })?;
        Ok(id)
    }

    #[expect(
        clippy::too_many_lines,
        reason = "the whole rotation in one write transaction, as users.db does it (tokens.rs there): lookup, reuse detection, family revocation, insert"
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
        self.write("rotating a refresh token in", |tx| {
            let Some(row) = tx.query_opt(
                "SELECT r.id, r.family_id, r.user_id, r.token_version, r.expires_at, r.used_at, r.revoked_at,
                        u.disabled, u.token_version, r.second_factor
                 FROM refresh_tokens r LEFT JOIN users u ON u.id = r.user_id
                 WHERE r.token_hash = $1",
                &[&&token_hash[..]],
            )?
            else {
                return Ok(RefreshUse::Unknown);
            };
            let id: String = row.get(0);
            let family: String = row.get(1);
            let user_id: String = row.get(2);
            let tv: i64 = row.get(3);
            let expires: i64 = row.get(4);
            let used: Option<String> = row.get(5);
            let revoked: Option<String> = row.get(6);
            let disabled: Option<bool> = row.get(7);
            let user_tv: Option<i64> = row.get(8);
            let sf: bool = row.get(9);
            if revoked.is_some() {
                return Ok(RefreshUse::Revoked {
                    user_id,
                    family_id: family,
                });
            }
            if used.is_some() {
                let n = tx.execute(
                    "UPDATE refresh_tokens SET revoked_at = $1, revoked_reason = 'reuse'
                     WHERE family_id = $2 AND revoked_at IS NULL",
                    &[&now, &family],
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
            let recent: i64 = tx
                .query_one(
                    "SELECT count(*) FROM refresh_tokens WHERE family_id = $1 AND created_at >= $2",
                    &[&family, &limit.1],
                )?
                .get(0);
            if recent > limit.0 {
                return Ok(RefreshUse::RateLimited {
                    user_id,
                    family_id: family,
                });
            }
            if disabled != Some(false) || user_tv != Some(tv) {
                tx.execute(
                    "UPDATE refresh_tokens SET revoked_at = $1, revoked_reason = 'user_changed'
                     WHERE family_id = $2 AND revoked_at IS NULL",
                    &[&now, &family],
                )?;
                return Ok(RefreshUse::UserChanged {
                    user_id,
                    family_id: family,
                    second_factor: sf,
                });
            }
            tx.execute(
                "INSERT INTO refresh_tokens (id, token_hash, family_id, user_id, token_version, created_at, expires_at, second_factor)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[&new_id, &&new_hash[..], &family, &user_id, &tv, &now, &new_expires_at, &sf],
            )?;
            tx.execute(
                "UPDATE refresh_tokens SET used_at = $1, replaced_by = $2 WHERE id = $3",
                &[&now, &new_id, &id],
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
        let n = self.write("revoking refresh tokens in", |tx| match token_hash {
            Some(h) => tx.execute(
                "UPDATE refresh_tokens SET revoked_at = $1, revoked_reason = $2
                 WHERE revoked_at IS NULL AND user_id = $3 AND family_id =
                   (SELECT family_id FROM refresh_tokens WHERE token_hash = $4 AND user_id = $3)",
                &[&now, &reason, &user_id, &&h[..]],
            ),
            None => tx.execute(
                "UPDATE refresh_tokens SET revoked_at = $1, revoked_reason = $2
                 WHERE revoked_at IS NULL AND user_id = $3",
                &[&now, &reason, &user_id],
            ),
        })?;
        Ok(n as i64)
    }

    fn revoke_family(&self, user_id: &str, family: &str, reason: &str) -> Result<i64> {
        let now = now_rfc3339();
        let n = self.write("revoking a login in", |tx| {
            tx.execute(
                "UPDATE refresh_tokens SET revoked_at = $1, revoked_reason = $2
                 WHERE revoked_at IS NULL AND user_id = $3 AND family_id = $4",
                &[&now, &reason, &user_id, &family],
            )
        })?;
        Ok(n as i64)
    }

    fn revoke_access(&self, jti: &str, user_id: &str, expires_at: i64) -> Result<()> {
        let now = now_rfc3339();
        let epoch = chrono::Utc::now().timestamp();
        self.write("revoking an access token in", |tx| {
            tx.execute(
                "DELETE FROM revoked_access WHERE expires_at <= $1",
                &[&epoch],
            )?;
            tx.execute(
                "INSERT INTO revoked_access (jti, user_id, expires_at, revoked_at)
                 VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                &[&jti, &user_id, &expires_at, &now],
            )
        })?;
        Ok(())
    }

    fn revoked_access(&self) -> Result<Vec<(String, i64)>> {
        let epoch = chrono::Utc::now().timestamp();
        self.read("reading revoked tokens in", |c| {
            Ok(c.query(
                "SELECT jti, expires_at FROM revoked_access WHERE expires_at > $1",
                &[&epoch],
            )?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect())
        })
    }
}
