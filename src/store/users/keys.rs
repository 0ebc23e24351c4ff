//! Personal API keys in users.db. Only the SHA-256 of a key is stored: keys
//! are 256 random bits, so a fast hash is right (a slow one would only cost
//! every request time) and the hash is useless as a key. The rules (who may
//! create what, audit events) are `ops::keys`'; this module stores, finds and
//! revokes atomically.

use super::{from_row_at, now_rfc3339, with_immediate, Role, SqliteUsers, User, COLS};
use crate::error::{Error, Result};
use rusqlite::{params, OptionalExtension, Row};
use serde::Serialize;

/// What a key may do on top of its owner's role (never more than it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyScope {
    /// Chat, plus everything `read` allows.
    Chat,
    /// Read-only requests (GET) only.
    Read,
}

impl KeyScope {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyScope::Chat => "chat",
            KeyScope::Read => "read",
        }
    }
    pub fn parse(s: &str) -> Option<KeyScope> {
        match s {
            "chat" => Some(KeyScope::Chat),
            "read" => Some(KeyScope::Read),
            _ => None,
        }
    }
}

/// How a key's turns answer approval requests (nobody sits at an API client).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyApprovals {
    /// Deny every dangerous command at once.
    Deny,
    /// Park the request where the owner (or an admin) answers it: the
    /// approval API and the dashboard; Hermes' timeout denies it.
    Wait,
}

impl KeyApprovals {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyApprovals::Deny => "deny",
            KeyApprovals::Wait => "wait",
        }
    }
    pub fn parse(s: &str) -> Option<KeyApprovals> {
        match s {
            "deny" => Some(KeyApprovals::Deny),
            "wait" => Some(KeyApprovals::Wait),
            _ => None,
        }
    }
}

/// A stored key (never the key itself).
#[derive(Debug, Clone, Serialize)]
pub struct ApiKey {
    pub id: String,
    pub user_id: String,
    /// The owner's username (at the time of reading).
    pub username: String,
    /// `hop_` and the key's first characters: enough to recognise it.
    pub prefix: String,
    pub label: String,
    /// The owner's role when the key was made; a role change revokes it.
    pub role: Role,
    pub scope: KeyScope,
    /// Toolsets the key's turns may use (within `agent.enabled_toolsets`);
    /// `None`: the operator's whole list.
    pub toolsets: Option<Vec<String>>,
    pub approvals: KeyApprovals,
    /// Requests per minute; `None`: unlimited.
    pub rpm: Option<u32>,
    pub created_at: String,
    /// Unix seconds (RFC 3339 in JSON); `None`: never.
    #[serde(serialize_with = "epoch_as_rfc3339")]
    pub expires_at: Option<i64>,
    pub last_used_at: Option<String>,
    pub revoked_at: Option<String>,
    pub revoked_reason: Option<String>,
}

/// Live (neither revoked nor expired) keys one account may have.
pub const MAX_ACTIVE_KEYS: i64 = 20;
/// Keys one account may have made in any hour (revoked ones included), so
/// make-and-revoke loops cannot grow users.db and the event log unboundedly.
pub const MAX_KEYS_PER_HOUR: i64 = 30;
/// Revoked or expired keys are deleted this long after they died: long
/// enough for the owner to see why a key stopped working (the list, and a
/// 401 that says "revoked" or "expired" rather than "invalid"); the audit
/// log keeps their history for good.
pub const DEAD_KEY_RETENTION_SECS: i64 = 86_400;

/// Why a key was not stored.
#[derive(Debug, Clone, PartialEq)]
pub enum KeyRefused {
    /// The account is disabled or gone.
    NoAccount,
    /// It already has [`MAX_ACTIVE_KEYS`] live keys.
    TooManyActive(i64),
    /// [`MAX_KEYS_PER_HOUR`] were made in the last hour; seconds until the
    /// oldest of them is an hour old.
    TooFast { retry_after_secs: u64 },
}

/// A key to store.
pub struct NewKey<'a> {
    pub id: &'a str,
    pub user_id: &'a str,
    pub hash: &'a [u8; 32],
    pub prefix: &'a str,
    pub label: &'a str,
    pub scope: KeyScope,
    pub toolsets: Option<&'a [String]>,
    pub approvals: KeyApprovals,
    pub rpm: Option<u32>,
    pub expires_at: Option<i64>,
}

fn epoch_as_rfc3339<S: serde::Serializer>(
    v: &Option<i64>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    match v.and_then(|e| chrono::DateTime::from_timestamp(e, 0)) {
        Some(t) => s.serialize_str(&t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        None => s.serialize_none(),
    }
}

const KEY_COLS: &str = "k.id, k.user_id, u.username, k.prefix, k.label, k.role, k.scope, \
    k.toolsets, k.approvals, k.rpm, k.created_at, k.expires_at, k.last_used_at, k.revoked_at, \
    k.revoked_reason";
const KEY_NCOLS: usize = 15;

/// The key and its owner by hash: built once, not on every request.
static BY_HASH_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let user_cols: Vec<String> = COLS.split(", ").map(|c| format!("u.{c}")).collect();
    format!(
        "SELECT {KEY_COLS}, {} FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.key_hash = ?1",
        user_cols.join(", ")
    )
});

fn key_from_row(r: &Row) -> rusqlite::Result<ApiKey> {
    let bad = |i: usize, what: &str, v: String| {
        rusqlite::Error::FromSqlConversionFailure(
            i,
            rusqlite::types::Type::Text,
            format!("invalid {what} {v:?}").into(),
        )
    };
    let role: String = r.get(5)?;
    let scope: String = r.get(6)?;
    let toolsets: Option<String> = r.get(7)?;
    let approvals: String = r.get(8)?;
    Ok(ApiKey {
        id: r.get(0)?,
        user_id: r.get(1)?,
        username: r.get(2)?,
        prefix: r.get(3)?,
        label: r.get(4)?,
        role: Role::parse(&role).ok_or_else(|| bad(5, "role", role.clone()))?,
        scope: KeyScope::parse(&scope).ok_or_else(|| bad(6, "scope", scope.clone()))?,
        toolsets: match toolsets {
            None => None,
            Some(t) => Some(serde_json::from_str(&t).map_err(|_| bad(7, "toolsets", t))?),
        },
        approvals: KeyApprovals::parse(&approvals)
            .ok_or_else(|| bad(8, "approvals", approvals.clone()))?,
        rpm: r.get(9)?,
        created_at: r.get(10)?,
        expires_at: r.get(11)?,
        last_used_at: r.get(12)?,
        revoked_at: r.get(13)?,
        revoked_reason: r.get(14)?,
    })
}

pub trait Keys {
    /// Store a new key of an enabled account, stamped with its current role
    /// (read in the same transaction, so a concurrent role change cannot
    /// slip between the check and the insert). The same transaction deletes
    /// the account's long-dead keys and checks [`MAX_ACTIVE_KEYS`] and
    /// [`MAX_KEYS_PER_HOUR`], so parallel requests cannot slip past either.
    fn key_insert(&self, k: &NewKey) -> Result<std::result::Result<ApiKey, KeyRefused>>;

    /// Delete keys revoked or expired more than [`DEAD_KEY_RETENTION_SECS`]
    /// ago (every account's); how many went.
    fn key_purge_dead(&self, now_epoch: i64) -> Result<usize>;

    fn key_get(&self, id: &str) -> Result<Option<ApiKey>>;

    /// Keys of one account (or of all), newest first, revoked ones included;
    /// `limit` of them (negative: all) after skipping `offset`.
    fn key_list(&self, user_id: Option<&str>, limit: i64, offset: i64) -> Result<Vec<ApiKey>>;

    /// The key with this hash and its owner: one indexed read on a pooled
    /// connection. Validity (revoked, expired, owner disabled or of another
    /// role) is the caller's to judge, so it can say which.
    fn key_by_hash(&self, hash: &[u8; 32]) -> Result<Option<(ApiKey, User)>>;

    /// Revoke one key; `false` when it was already revoked.
    fn key_revoke(&self, id: &str, reason: &str) -> Result<bool>;

    /// Note that a key was used (callers write at most once a minute per key).
    fn key_touch(&self, id: &str) -> Result<()>;
}

impl Keys for SqliteUsers {
    fn key_insert(&self, k: &NewKey) -> Result<std::result::Result<ApiKey, KeyRefused>> {
        let now = now_rfc3339();
        let now_epoch = chrono::Utc::now().timestamp();
        let hour_ago = rfc3339_at(now_epoch - 3600);
        let toolsets = k.toolsets.map(|t| serde_json::json!(t).to_string());
        let inserted = with_immediate(&self.conn, &self.path, "storing an API key", |tx| {
            let role: Option<(String, bool)> = tx
                .query_row(
                    "SELECT role, disabled FROM users WHERE id = ?1",
                    [k.user_id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let Some((role, false)) = role else {
                return Ok(Err(KeyRefused::NoAccount));
            };
            purge_dead_in(tx, Some(k.user_id), now_epoch)?;
            let (recent, oldest): (i64, Option<String>) = tx.query_row(
                "SELECT count(*), min(created_at) FROM api_keys
                 WHERE user_id = ?1 AND created_at > ?2",
                params![k.user_id, hour_ago],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            if recent >= MAX_KEYS_PER_HOUR {
                let oldest = oldest
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok())
                    .map_or(now_epoch, |t| t.timestamp());
                let wait = (oldest + 3600 - now_epoch).clamp(1, 3600);
                return Ok(Err(KeyRefused::TooFast {
                    retry_after_secs: wait as u64,
                }));
            }
            let active: i64 = tx.query_row(
                "SELECT count(*) FROM api_keys WHERE user_id = ?1 AND revoked_at IS NULL
                   AND (expires_at IS NULL OR expires_at > ?2)",
                params![k.user_id, now_epoch],
                |r| r.get(0),
            )?;
            if active >= MAX_ACTIVE_KEYS {
                return Ok(Err(KeyRefused::TooManyActive(active)));
            }
            tx.execute(
                "INSERT INTO api_keys (id, user_id, key_hash, prefix, label, role, scope, toolsets,
                   approvals, rpm, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                params![
                    k.id,
                    k.user_id,
                    &k.hash[..],
                    k.prefix,
                    k.label,
                    role,
                    k.scope.as_str(),
                    toolsets,
                    k.approvals.as_str(),
                    k.rpm,
                    now,
                    k.expires_at
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
        with_immediate(&self.conn, &self.path, "purging dead API keys", |tx| {
            purge_dead_in(tx, None, now_epoch)
        })
    }

    fn key_get(&self, id: &str) -> Result<Option<ApiKey>> {
        self.conn
            .query_row(
                &format!(
                    "SELECT {KEY_COLS} FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.id = ?1"
                ),
                [id],
                key_from_row,
            )
            .optional()
            .map_err(self.err("reading an API key"))
    }

    fn key_list(&self, user_id: Option<&str>, limit: i64, offset: i64) -> Result<Vec<ApiKey>> {
        let mut st = self
            .conn
            .prepare(&format!(
                "SELECT {KEY_COLS} FROM api_keys k JOIN users u ON u.id = k.user_id
                 WHERE ?1 IS NULL OR k.user_id = ?1 ORDER BY k.created_at DESC, k.id
                 LIMIT ?2 OFFSET ?3"
            ))
            .map_err(self.err("listing API keys"))?;
        let rows = st
            .query_map(params![user_id, limit, offset], key_from_row)
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(self.err("listing API keys"));
        rows
    }

    fn key_by_hash(&self, hash: &[u8; 32]) -> Result<Option<(ApiKey, User)>> {
        self.conn
            .prepare_cached(&BY_HASH_SQL)
            .and_then(|mut st| {
                st.query_row([&hash[..]], |r| {
                    let k = key_from_row(r)?;
                    let u = from_row_at(r, KEY_NCOLS)?;
                    Ok((k, u))
                })
                .optional()
            })
            .map_err(self.err("reading an API key"))
    }

    fn key_revoke(&self, id: &str, reason: &str) -> Result<bool> {
        let now = now_rfc3339();
        let n = with_immediate(&self.conn, &self.path, "revoking an API key", |tx| {
            tx.execute(
                "UPDATE api_keys SET revoked_at = ?1, revoked_reason = ?2
                 WHERE id = ?3 AND revoked_at IS NULL",
                params![now, reason, id],
            )
        })?;
        Ok(n > 0)
    }

    fn key_touch(&self, id: &str) -> Result<()> {
        let now = now_rfc3339();
        with_immediate(&self.conn, &self.path, "recording API key use", |tx| {
            tx.execute(
                "UPDATE api_keys SET last_used_at = ?1 WHERE id = ?2",
                params![now, id],
            )
        })?;
        Ok(())
    }
}

/// RFC 3339 of a Unix time, in the format of [`now_rfc3339`] (so stored
/// times compare as text).
pub(crate) fn rfc3339_at(epoch: i64) -> String {
    chrono::DateTime::from_timestamp(epoch, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// Delete the keys (of `user_id`, or everyone's) revoked or expired more
/// than [`DEAD_KEY_RETENTION_SECS`] before `now_epoch`.
fn purge_dead_in(
    tx: &rusqlite::Transaction,
    user_id: Option<&str>,
    now_epoch: i64,
) -> rusqlite::Result<usize> {
    let cutoff = now_epoch - DEAD_KEY_RETENTION_SECS;
    tx.execute(
        "DELETE FROM api_keys WHERE (?1 IS NULL OR user_id = ?1)
           AND ((revoked_at IS NOT NULL AND revoked_at < ?2)
                OR (expires_at IS NOT NULL AND expires_at < ?3))",
        params![user_id, rfc3339_at(cutoff), cutoff],
    )
}

/// Revoke every live key of `user_id` inside the caller's transaction: a
/// role change or disabling kills the account's keys at once and for good.
pub(super) fn revoke_all_in(
    tx: &rusqlite::Transaction,
    user_id: &str,
    reason: &str,
) -> rusqlite::Result<usize> {
    tx.execute(
        "UPDATE api_keys SET revoked_at = ?1, revoked_reason = ?2
         WHERE user_id = ?3 AND revoked_at IS NULL",
        params![now_rfc3339(), reason, user_id],
    )
}

/// Revoke every live key of `user_id` inside the caller's transaction and
/// say which went, (id, prefix) in id order, so each can be audited like a
/// key revoked by hand (an admin's password reset).
pub(super) fn revoke_all_returning(
    tx: &rusqlite::Transaction,
    user_id: &str,
    reason: &str,
) -> rusqlite::Result<Vec<(String, String)>> {
    let mut st = tx.prepare(
        "UPDATE api_keys SET revoked_at = ?1, revoked_reason = ?2
         WHERE user_id = ?3 AND revoked_at IS NULL
         RETURNING id, prefix",
    )?;
    let mut out = st
        .query_map(params![now_rfc3339(), reason, user_id], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?
        .collect::<rusqlite::Result<Vec<(String, String)>>>()?;
    out.sort();
    Ok(out)
}
