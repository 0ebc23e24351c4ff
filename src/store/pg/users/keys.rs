//! Personal API keys in the fleet's database: users.db's `api_keys` one to
//! one (store/users/keys.rs): only the SHA-256 of a key is stored; a new
//! key's role, the account's long-dead keys and both caps are read and
//! written in one write transaction of the store.

use super::{user_from, PgUsers, COLS, NCOLS};
use crate::error::{Error, Result};
use crate::store::now_rfc3339;
use crate::store::users::*;

const KEY_COLS: &str = "k.id, k.user_id, u.username, k.prefix, k.label, k.role, k.scope, \
    k.toolsets, k.approvals, k.rpm, k.created_at, k.expires_at, k.last_used_at, k.revoked_at, \
    k.revoked_reason";
const KEY_NCOLS: usize = 15;

/// The key and its owner by hash: built once, not on every request.
static BY_HASH_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let user_cols: Vec<String> = COLS.split(", ").map(|c| format!("u.{c}")).collect();
    debug_assert_eq!(user_cols.len(), NCOLS);
    format!(
        "SELECT {KEY_COLS}, {} FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.key_hash = $1",
        user_cols.join(", ")
    )
});

/// An [`ApiKey`] from the [`KEY_COLS`]; what is wrong with the row when a
/// value is not one this version knows (users.db's reader refuses the same).
fn key_from(r: &postgres::Row) -> std::result::Result<ApiKey, String> {
    let bad = |i: usize, what: &str, v: &str| format!("column {i}: invalid {what} {v:?}");
    let role: String = r.get(5);
    let scope: String = r.get(6);
    let toolsets: Option<String> = r.get(7);
    let approvals: String = r.get(8);
    let rpm: Option<i64> = r.get(9);
    Ok(ApiKey {
        id: r.get(0),
        user_id: r.get(1),
        username: r.get(2),
        prefix: r.get(3),
        label: r.get(4),
        role: Role::parse(&role).ok_or_else(|| bad(5, "role", &role))?,
        scope: KeyScope::parse(&scope).ok_or_else(|| bad(6, "scope", &scope))?,
        toolsets: match toolsets {
            None => None,
            Some(t) => Some(serde_json::from_str(&t).map_err(|_| bad(7, "toolsets", &t))?),
        },
        approvals: KeyApprovals::parse(&approvals)
            .ok_or_else(|| bad(8, "approvals", &approvals))?,
        rpm: match rpm {
            None => None,
            Some(n) => Some(u32::try_from(n).map_err(|_| bad(9, "rpm", &n.to_string()))?),
        },
        created_at: r.get(10),
        expires_at: r.get(11),
        last_used_at: r.get(12),
        revoked_at: r.get(13),
        revoked_reason: r.get(14),
    })
}

impl PgUsers {
    /// A row this version cannot read, as users.db's reader says it (internal).
    fn bad_key_row(&self, what: &str, problem: String) -> Error {
        Error::internal(format!("{what} PostgreSQL at {}: {problem}", self.target()))
    }
}

impl Keys for PgUsers {
    fn key_insert(&self, k: &NewKey) -> Result<std::result::Result<ApiKey, KeyRefused>> {
        let now = now_rfc3339();
        let now_epoch = chrono::Utc::now().timestamp();
        let hour_ago = rfc3339_at(now_epoch - 3600);
        let toolsets = k.toolsets.map(|t| serde_json::json!(t).to_string());
        let rpm = k.rpm.map(i64::from);
        let hash: &[u8] = &k.hash[..];
        let inserted = self.write("storing an API key in", |tx| {
            let role: Option<(String, bool)> = tx
                .query_opt(
                    "SELECT role, disabled FROM users WHERE id = $1",
                    &[&k.user_id],
                )?
                .map(|r| (r.get(0), r.get(1)));
            let Some((role, false)) = role else {
                return Ok(Err(KeyRefused::NoAccount));
            };
            purge_dead_in(tx, Some(k.user_id), now_epoch)?;
            let row = tx.query_one(
                "SELECT count(*), min(created_at) FROM api_keys
                 WHERE user_id = $1 AND created_at > $2",
                &[&k.user_id, &hour_ago],
            )?;
            let (recent, oldest): (i64, Option<String>) = (row.get(0), row.get(1));
            if recent >= MAX_KEYS_PER_HOUR {
                let oldest = oldest
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok())
                    .map_or(now_epoch, |t| t.timestamp());
                let wait = (oldest + 3600 - now_epoch).clamp(1, 3600);
                return Ok(Err(KeyRefused::TooFast {
                    retry_after_secs: wait as u64,
                }));
            }
            let active: i64 = tx
                .query_one(
                    "SELECT count(*) FROM api_keys WHERE user_id = $1 AND revoked_at IS NULL
                       AND (expires_at IS NULL OR expires_at > $2)",
                    &[&k.user_id, &now_epoch],
                )?
                .get(0);
            if active >= MAX_ACTIVE_KEYS {
                return Ok(Err(KeyRefused::TooManyActive(active)));
            }
            tx.execute(
                "INSERT INTO api_keys (id, user_id, key_hash, prefix, label, role, scope, toolsets,
                   approvals, rpm, created_at, expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                &[
                    &k.id,
                    &k.user_id,
                    &hash,
                    &k.prefix,
                    &k.label,
                    &role,
                    &k.scope.as_str(),
                    &toolsets,
                    &k.approvals.as_str(),
                    &rpm,
                    &now,
                    &k.expires_at,
                ],
            )?;
            Ok(Ok(()))
        })?;
        if let Err(refused) = inserted {
            return Ok(Err(refused));
        }
        self.key_get(k.id)?
            .map(Ok)
            .ok_or_else(|| Error::internal("the new API key vanished"))
    }

    fn key_purge_dead(&self, now_epoch: i64) -> Result<usize> {
        self.write("purging dead API keys in", |tx| {
            purge_dead_in(tx, None, now_epoch)
        })
    }

    fn key_get(&self, id: &str) -> Result<Option<ApiKey>> {
        let what = "reading an API key in";
        self.read(what, |c| {
            c.query_opt(
                &format!(
                    "SELECT {KEY_COLS} FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.id = $1"
                ),
                &[&id],
            )
        })?
        .map(|r| key_from(&r))
        .transpose()
        .map_err(|p| self.bad_key_row(what, p))
    }

    fn key_list(&self, user_id: Option<&str>, limit: i64, offset: i64) -> Result<Vec<ApiKey>> {
        let what = "listing API keys in";
        // SQLite: a negative LIMIT is no limit, a negative OFFSET none;
        // PostgreSQL refuses both (LIMIT NULL is no limit).
        let limit = (limit >= 0).then_some(limit);
        let offset = offset.max(0);
        // COLLATE "C": users.db orders text by its bytes, whatever the
        // database's collation.
        let rows = self.read(what, |c| {
            c.query(
                &format!(
                    "SELECT {KEY_COLS} FROM api_keys k JOIN users u ON u.id = k.user_id
                     WHERE $1::text IS NULL OR k.user_id = $1
                     ORDER BY k.created_at COLLATE \"C\" DESC, k.id COLLATE \"C\"
                     LIMIT $2 OFFSET $3"
                ),
                &[&user_id, &limit, &offset],
            )
        })?;
        rows.iter()
            .map(key_from)
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|p| self.bad_key_row(what, p))
    }

    fn key_by_hash(&self, hash: &[u8; 32]) -> Result<Option<(ApiKey, User)>> {
        let what = "reading an API key in";
        let hash: &[u8] = &hash[..];
        self.read_prepared(what, &BY_HASH_SQL, |c, st| c.query_opt(st, &[&hash]))?
            .map(|r| key_from(&r).map(|k| (k, user_from(&r, KEY_NCOLS))))
            .transpose()
            .map_err(|p| self.bad_key_row(what, p))
    }

    fn key_revoke(&self, id: &str, reason: &str) -> Result<bool> {
        let now = now_rfc3339();
        let n = self.write("revoking an API key in", |tx| {
            tx.execute(
                "UPDATE api_keys SET revoked_at = $1, revoked_reason = $2
                 WHERE id = $3 AND revoked_at IS NULL",
                &[&now, &reason, &id],
            )
        })?;
        Ok(n > 0)
    }

    fn key_touch(&self, id: &str) -> Result<()> {
        let now = now_rfc3339();
        self.write("recording API key use in", |tx| {
            tx.execute(
                "UPDATE api_keys SET last_used_at = $1 WHERE id = $2",
                &[&now, &id],
            )
        })?;
        Ok(())
    }
}

/// Delete the keys (of `user_id`, or everyone's) revoked or expired more
/// than [`DEAD_KEY_RETENTION_SECS`] before `now_epoch`.
fn purge_dead_in(
    tx: &mut postgres::Transaction<'_>,
    user_id: Option<&str>,
    now_epoch: i64,
) -> std::result::Result<usize, postgres::Error> {
    let cutoff = now_epoch - DEAD_KEY_RETENTION_SECS;
    let n = tx.execute(
        "DELETE FROM api_keys WHERE ($1::text IS NULL OR user_id = $1)
           AND ((revoked_at IS NOT NULL AND revoked_at < $2)
                OR (expires_at IS NOT NULL AND expires_at < $3))",
        &[&user_id, &rfc3339_at(cutoff), &cutoff],
    )?;
    Ok(n as usize)
}

/// Revoke every live key of `user_id` inside the caller's transaction: a
/// role change or disabling kills the account's keys at once and for good.
pub(super) fn revoke_all_in(
    tx: &mut postgres::Transaction<'_>,
    user_id: &str,
    reason: &str,
) -> std::result::Result<usize, postgres::Error> {
    let n = tx.execute(
        "UPDATE api_keys SET revoked_at = $1, revoked_reason = $2
         WHERE user_id = $3 AND revoked_at IS NULL",
        &[&now_rfc3339(), &reason, &user_id],
    )?;
    Ok(n as usize)
}

/// Revoke every live key of `user_id` inside the caller's transaction and
/// say which went, (id, prefix) in id order, so each can be audited like a
/// key revoked by hand (an admin's password reset).
pub(super) fn revoke_all_returning(
    tx: &mut postgres::Transaction<'_>,
    user_id: &str,
    reason: &str,
) -> std::result::Result<Vec<(String, String)>, postgres::Error> {
    let mut out: Vec<(String, String)> = tx
        .query(
            "UPDATE api_keys SET revoked_at = $1, revoked_reason = $2
             WHERE user_id = $3 AND revoked_at IS NULL
             RETURNING id, prefix",
            &[&now_rfc3339(), &reason, &user_id],
        )?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    out.sort();
    Ok(out)
}
