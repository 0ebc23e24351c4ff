//! Whether the caller who started a turn still stands. A turn can run for
//! minutes; revoking its key, disabling or deleting its owner, or changing
//! the owner's role must stop it at the next tool call, not after it ends.
//! The hook asks before every tool call of the turn (`ops::hooks`), and the
//! turn itself before it passes on a tool's progress or the answer
//! (`ops::chat`).

use crate::error::Result;
use crate::store::users::{Role, UserStore};
use serde::{Deserialize, Serialize};

/// Who started a turn, as written down when it started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TurnCaller {
    pub user_id: String,
    /// The owner's role then: a role change stops the turn.
    pub role: Role,
    /// The personal API key the turn came with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// The account's token version then, for a turn started with an access
    /// token: a password change or a revocation of every login bumps it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_version: Option<i64>,
}

/// Why the caller may no longer act, or `None` while it may.
pub fn refusal(store: &UserStore, c: &TurnCaller) -> Result<Option<String>> {
    let Some(u) = store.find_by_id(&c.user_id)? else {
        return Ok(Some("the account that started it was deleted".into()));
    };
    if u.disabled {
        return Ok(Some("the account that started it was disabled".into()));
    }
    if u.role != c.role {
        return Ok(Some(format!(
            "the account's role changed from {} to {}",
            c.role.as_str(),
            u.role.as_str()
        )));
    }
    if c.token_version.is_some_and(|v| v != u.token_version) {
        return Ok(Some(
            "the login that started it was revoked (password change, reset or sign-out)".into(),
        ));
    }
    if let Some(id) = &c.key_id {
        let now = chrono::Utc::now().timestamp();
        match store.key_get(id)? {
            None => return Ok(Some("the API key that started it was deleted".into())),
            Some(k) if k.revoked_at.is_some() => {
                return Ok(Some("the API key that started it was revoked".into()))
            }
            Some(k) if k.expires_at.is_some_and(|e| e <= now) => {
                return Ok(Some("the API key that started it expired".into()))
            }
            Some(_) => {}
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::users::{KeyApprovals, KeyScope, NewKey};

    /// Every way a turn's caller can lose the right, and the one way it keeps it.
    #[test]
    fn each_loss_of_standing_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let store = UserStore::open(&dir.path().join("users.db")).unwrap();
        let u = store.insert("alice", Role::User, "x").unwrap();
        let key = |id: &str, expires_at: Option<i64>| {
            store
                .key_insert(&NewKey {
                    id,
                    user_id: &u.id,
                    hash: &[id.len() as u8; 32],
                    prefix: "hop_x",
                    label: "",
                    scope: KeyScope::Chat,
                    toolsets: None,
                    approvals: KeyApprovals::Deny,
                    rpm: None,
                    expires_at,
                })
                .unwrap()
                .unwrap()
        };
        key("key_a", None);
        key("key_bb", Some(1));
        let caller = |key_id: Option<&str>, tv: Option<i64>| TurnCaller {
            user_id: u.id.clone(),
            role: Role::User,
            key_id: key_id.map(str::to_string),
            token_version: tv,
        };
        let why = |c: &TurnCaller| refusal(&store, c).unwrap();
        assert_eq!(why(&caller(Some("key_a"), None)), None);
        assert_eq!(why(&caller(None, Some(u.token_version))), None);
        assert!(why(&caller(Some("key_bb"), None))
            .unwrap()
            .contains("expired"));
        assert!(why(&caller(Some("key_gone"), None))
            .unwrap()
            .contains("deleted"));
        assert!(why(&caller(None, Some(u.token_version + 1)))
            .unwrap()
            .contains("revoked"));
        store.key_revoke("key_a", "test").unwrap();
        assert!(why(&caller(Some("key_a"), None))
            .unwrap()
            .contains("was revoked"));
        store.set_role(&u.id, Role::Viewer).unwrap();
        assert!(why(&caller(None, None))
            .unwrap()
            .contains("from user to viewer"));
        store.set_role(&u.id, Role::User).unwrap();
        store.set_disabled(&u.id, true).unwrap();
        assert!(why(&caller(None, None)).unwrap().contains("disabled"));
        store.delete(&u.id).unwrap();
        assert!(why(&caller(None, None)).unwrap().contains("deleted"));
    }
}
