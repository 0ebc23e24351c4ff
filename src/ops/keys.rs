//! Personal API keys: made, listed and revoked by their owners (and admins),
//! checked on every request that presents one. A key acts as its owner with
//! the owner's current role, narrowed by its scope and toolsets, never
//! widened; a role change, disabling or deletion of the owner kills it
//! (store/users/keys.rs). Every change is an audit event.

use crate::app::App;
use crate::error::{Error, Result};
use crate::store::events::EventKind;
use crate::store::users::{
    ApiKey, KeyApprovals, KeyRefused, KeyScope, NewKey, User, UserStore, MAX_ACTIVE_KEYS,
    MAX_KEYS_PER_HOUR,
};
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};

/// Every key starts with this, so a leaked one is recognisable (secret scanners).
pub const KEY_PREFIX: &str = "hop_";
/// Random base62 characters after the prefix: 43 × log2(62) ≈ 256 bits.
const KEY_CHARS: usize = 43;
const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// What the maker of a key asks for.
#[derive(Debug, Clone, Default)]
pub struct KeyOptions {
    pub label: String,
    /// Seconds from now; `None`: never expires.
    pub expires_in: Option<i64>,
    /// `None`: `chat` for roles that may chat, else `read`.
    pub scope: Option<KeyScope>,
    /// `None`: the operator's whole `agent.enabled_toolsets`.
    pub toolsets: Option<Vec<String>>,
    pub approvals: Option<KeyApprovals>,
    pub rpm: Option<u32>,
}

/// A new key: shown once, never stored in clear.
#[derive(Debug, Clone, Serialize)]
pub struct CreatedKey {
    pub key: String,
    #[serde(flatten)]
    pub info: ApiKey,
}

/// `--expires` / `expires`: a duration like `90d`, `12w`, `36h`, or `never`.
pub fn parse_expires(s: &str) -> Result<Option<i64>> {
    if s == "never" {
        return Ok(None);
    }
    crate::timespec::duration_secs(s)
        .filter(|v| *v > 0)
        .map(Some)
        .ok_or_else(|| {
            Error::usage(format!(
                "expires: expected a duration like 90d, 12w or 36h (or never), got {:?}",
                crate::output::clip(s, 40)
            ))
        })
}

/// SHA-256 of a key as stored.
pub fn key_hash(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// `hop_` + 43 uniformly random base62 characters from the OS generator
/// (rejection sampling: no modulo bias).
fn generate() -> String {
    use rand::RngCore;
    let mut out = String::with_capacity(KEY_PREFIX.len() + KEY_CHARS);
    out.push_str(KEY_PREFIX);
    let mut buf = [0u8; 64];
    while out.len() < KEY_PREFIX.len() + KEY_CHARS {
        rand::rngs::OsRng.fill_bytes(&mut buf);
        for b in buf {
            // 248 = 4 × 62: bytes at or above it would favour the first characters.
            if b < 248 && out.len() < KEY_PREFIX.len() + KEY_CHARS {
                out.push(BASE62[(b % 62) as usize] as char);
            }
        }
    }
    out
}

/// Whether `s` has the shape of a key (checked before any lookup).
pub fn looks_like_key(s: &str) -> bool {
    s.len() == KEY_PREFIX.len() + KEY_CHARS
        && s.starts_with(KEY_PREFIX)
        && s.as_bytes()[KEY_PREFIX.len()..]
            .iter()
            .all(u8::is_ascii_alphanumeric)
}

fn check_options(app: &App, owner: &User, o: &KeyOptions) -> Result<(KeyScope, KeyApprovals)> {
    if o.label.chars().count() > 100 || o.label.chars().any(char::is_control) {
        return Err(Error::usage(
            "--label: at most 100 characters, no control characters",
        ));
    }
    if let Some(secs) = o.expires_in {
        if secs <= 0 || secs > 10 * 365 * 86_400 {
            return Err(Error::usage(
                "--expires: expected a duration from 1 minute to 10 years, like 30d or 12h",
            ));
        }
    }
    if let Some(r) = o.rpm {
        if !(1..=100_000).contains(&r) {
            return Err(Error::usage(
                "--rpm: expected 1 to 100000 requests per minute",
            ));
        }
    }
    let scope = o.scope.unwrap_or(if owner.role.can_chat() {
        KeyScope::Chat
    } else {
        KeyScope::Read
    });
    if scope == KeyScope::Chat && !owner.role.can_chat() {
        return Err(Error::usage(format!(
            "{} is a {} and may not chat, so a chat key would be useless; use --scope read",
            owner.username, owner.role
        )));
    }
    if let Some(ts) = &o.toolsets {
        let allowed = &app.cfg.config.agent.enabled_toolsets;
        if ts.is_empty() {
            return Err(Error::usage(
                "--toolsets: name at least one toolset (omit it for the operator's own list)",
            ));
        }
        for t in ts {
            if !allowed.iter().any(|a| a == t) {
                return Err(Error::usage(format!(
                    "--toolsets: {:?} is not among the toolsets operator sessions may use ({}); a key can only narrow them",
                    crate::output::clip(t, 40),
                    allowed.join(", ")
                ))
                .hint("an admin can extend agent.enabled_toolsets in profiles/operator/config.yaml"));
            }
        }
    }
    Ok((scope, o.approvals.unwrap_or(KeyApprovals::Deny)))
}

/// Make a key for `username`. The key is in the answer and nowhere else.
pub fn create(app: &App, username: &str, o: &KeyOptions) -> Result<CreatedKey> {
    let store = app.users()?;
    let owner = store.get(username)?;
    if owner.disabled {
        return Err(Error::permission(format!(
            "{username} is disabled; enable the account before making keys for it"
        )));
    }
    let (scope, approvals) = check_options(app, &owner, o)?;
    let key = generate();
    let id = format!("key_{}", crate::crypto::random_hex(6));
    let prefix = &key[..KEY_PREFIX.len() + 6];
    let mut toolsets = o.toolsets.clone();
    if let Some(t) = &mut toolsets {
        t.sort();
        t.dedup();
    }
    let info = store.key_insert(&NewKey {
        id: &id,
        user_id: &owner.id,
        hash: &key_hash(&key),
        prefix,
        label: &o.label,
        scope,
        toolsets: toolsets.as_deref(),
        approvals,
        rpm: o.rpm,
        expires_at: o.expires_in.map(|s| chrono::Utc::now().timestamp() + s),
    })?;
    let info = match info {
        Ok(k) => k,
        Err(KeyRefused::NoAccount) => {
            return Err(Error::permission(
                "the account is disabled or no longer exists; no key was made",
            ))
        }
        Err(KeyRefused::TooManyActive(n)) => {
            return Err(Error::conflict(format!(
                "{username} has {n} live API keys, the most an account may have ({MAX_ACTIVE_KEYS}); no key was made"
            ))
            .hint("revoke a key you no longer use first (`hermes-operator user key revoke ID`)"))
        }
        Err(KeyRefused::TooFast { retry_after_secs }) => {
            return Err(Error::busy(format!(
                "{MAX_KEYS_PER_HOUR} API keys were made for {username} within the last hour, the most allowed; try again in {retry_after_secs} s"
            ))
            .reason(crate::error::Reason::Throttled { retry_after_secs }))
        }
    };
    app.record(
        app.event(
            EventKind::KeyCreated,
            json!({"key_id": info.id, "username": owner.username, "label": info.label,
                   "prefix": info.prefix, "scope": info.scope, "toolsets": info.toolsets,
                   "approvals": info.approvals, "rpm": info.rpm, "expires_at": info.expires_at}),
        )
        .user(&owner.id),
    )?;
    Ok(CreatedKey { key, info })
}

/// `GET /api/keys`: keys per page by default, and at most.
pub const LIST_DEFAULT: i64 = 100;
pub const LIST_MAX: i64 = 500;

/// Keys of `username`, or of everyone, newest first: `page` is (limit,
/// offset); `None`: all of them (the CLI).
pub fn list(app: &App, username: Option<&str>, page: Option<(i64, i64)>) -> Result<Vec<ApiKey>> {
    let store = app.users_ro()?;
    let (limit, offset) = page.unwrap_or((-1, 0));
    match username {
        Some(n) => {
            let u = store.get(n)?;
            store.key_list(Some(&u.id), limit, offset)
        }
        None => store.key_list(None, limit, offset),
    }
}

/// Delete every account's keys revoked or expired more than a day ago
/// (`serve` does it with its token purge; making a key does it for the
/// owner's). How many went.
pub fn purge_dead(app: &App) -> Result<usize> {
    app.users()?.key_purge_dead(chrono::Utc::now().timestamp())
}

/// One key by id; `only_owner`: 404 unless it belongs to that user (so
/// nobody learns which ids exist).
pub fn get(app: &App, id: &str, only_owner: Option<&str>) -> Result<ApiKey> {
    let k = app
        .users_ro()?
        .key_get(id)?
        .filter(|k| only_owner.is_none_or(|o| o == k.user_id));
    k.ok_or_else(|| {
        Error::not_found(format!("no API key {:?}", crate::output::clip(id, 40)))
            .hint("`hermes-operator user key list` shows the ids")
    })
}

/// Revoke a key (`only_owner` as in [`get`]). `Ok(false)`: it was already revoked.
pub fn revoke(app: &App, id: &str, only_owner: Option<&str>) -> Result<(ApiKey, bool)> {
    let k = get(app, id, only_owner)?;
    let changed = app.users()?.key_revoke(&k.id, "revoked")?;
    if changed {
        app.record(
            app.event(
                EventKind::KeyRevoked,
                json!({"key_id": k.id, "username": k.username, "prefix": k.prefix}),
            )
            .user(&k.user_id),
        )?;
    }
    Ok((get(app, id, None)?, changed))
}

/// Why a presented key does not authenticate (all answered as 401).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRefusal {
    Unknown,
    Revoked,
    Expired,
    OwnerDisabled,
}

impl KeyRefusal {
    pub fn message(self) -> &'static str {
        match self {
            KeyRefusal::Unknown => "invalid API key",
            KeyRefusal::Revoked => "this API key was revoked",
            KeyRefusal::Expired => "this API key has expired",
            KeyRefusal::OwnerDisabled => "this API key's account is disabled",
        }
    }
}

/// The key and its owner, if `presented` is a live key. One SHA-256 and one
/// indexed read: the hash lookup compares 32-byte digests of a 256-bit
/// secret, so its timing says nothing useful about the key.
pub fn authenticate(
    store: &UserStore,
    presented: &str,
) -> Result<std::result::Result<(ApiKey, User), KeyRefusal>> {
    if !looks_like_key(presented) {
        return Ok(Err(KeyRefusal::Unknown));
    }
    let Some((k, u)) = store.key_by_hash(&key_hash(presented))? else {
        return Ok(Err(KeyRefusal::Unknown));
    };
    Ok(if k.revoked_at.is_some() || k.role != u.role {
        Err(KeyRefusal::Revoked)
    } else if k
        .expires_at
        .is_some_and(|e| e <= chrono::Utc::now().timestamp())
    {
        Err(KeyRefusal::Expired)
    } else if u.disabled {
        Err(KeyRefusal::OwnerDisabled)
    } else {
        Ok((k, u))
    })
}

/// The toolsets a turn through `key` may use: the key's list within the
/// operator's (`None` when the key does not narrow it).
pub fn effective_toolsets(app: &App, key: &ApiKey) -> Option<Vec<String>> {
    let allowed = &app.cfg.config.agent.enabled_toolsets;
    key.toolsets
        .as_ref()
        .map(|ts| ts.iter().filter(|t| allowed.contains(t)).cloned().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_long_random_base62_and_recognised() {
        let a = generate();
        let b = generate();
        assert_ne!(a, b);
        assert!(looks_like_key(&a), "{a}");
        assert_eq!(a.len(), 47);
        assert!(!looks_like_key(&a[..46]));
        assert!(!looks_like_key(&format!("hop_{}", "-".repeat(43))));
        assert!(!looks_like_key(&hex::encode(key_hash(&a))));
        // Every base62 character turns up: the alphabet is used uniformly enough.
        let many: String = (0..200).map(|_| generate()[4..].to_string()).collect();
        for c in BASE62 {
            assert!(many.as_bytes().contains(c), "{}", *c as char);
        }
    }
}
