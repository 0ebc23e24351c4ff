//! Account management as library calls: each change goes to users.db and
//! then into the audit log, whoever calls it (CLI or HTTP).

use crate::app::App;
use crate::error::{Error, Result};
use crate::ops::credentials;
use crate::store::events::EventKind;
use crate::store::users::{validate_username, Role, User};
use serde::Serialize;
use serde_json::json;

pub fn add_user(app: &App, username: &str, role: Role, password: &str) -> Result<User> {
    validate_username(username)?;
    credentials::check_password_policy(password)?;
    let store = app.users()?;
    if store.find(username)?.is_some() {
        return Err(Error::conflict(format!(
            "a user named {username:?} already exists"
        )));
    }
    let hash = credentials::hash_password(password)?;
    let u = store.insert(username, role, &hash)?;
    app.record(
        app.event(
            EventKind::UserCreated,
            json!({"username": u.username, "role": u.role}),
        )
        .user(&u.id),
    )?;
    Ok(u)
}

/// What setting a password did: the account as it is now, and how many of
/// its personal API keys an admin's reset revoked (the answer of `user
/// passwd --json` and of the HTTP reset: the user's fields and `keys_revoked`).
#[derive(Debug, Serialize)]
pub struct PasswordSet {
    #[serde(flatten)]
    pub user: User,
    pub keys_revoked: usize,
}

/// Set a password (revoking every token). `must_change`: an admin's reset —
/// the user's next login may only change it, and the account's personal
/// API keys are revoked (each audited as `key_revoked`), since a reset says
/// the account may be in someone else's hands.
///
/// Replacing a reset password (the account must change it, and this change
/// clears that) with the same password is refused: the reset one is known
/// to whoever chose it, so keeping it would defeat the reset.
pub fn set_password(
    app: &App,
    username: &str,
    password: &str,
    must_change: bool,
) -> Result<PasswordSet> {
    credentials::check_password_policy(password)?;
    let store = app.users()?;
    let u = store.get(username)?;
    if u.must_change_password
        && !must_change
        && store
            .password_hash(&u.id)?
            .is_some_and(|h| credentials::verify_password(password, &h))
    {
        return Err(Error::usage(
            "the new password must differ from the one an administrator set: choose another",
        ));
    }
    let hash = credentials::hash_password(password)?;
    let revoked = store.set_password(&u.id, &hash, must_change)?;
    let mut evs = vec![app
        .event(
            EventKind::UserChanged,
            json!({"username": u.username, "change": if must_change { "password_reset" } else { "password" },
                   "must_change_password": must_change, "tokens_revoked": true,
                   "keys_revoked": revoked.len()}),
        )
        .user(&u.id)];
    // Each key as if revoked by hand (`key_revoked`), with the reason.
    evs.extend(revoked.iter().map(|(key_id, prefix)| {
        app.event(
            EventKind::KeyRevoked,
            json!({"key_id": key_id, "username": u.username, "prefix": prefix,
                   "reason": "password_reset"}),
        )
        .user(&u.id)
    }));
    app.events()?.append_batch(&evs)?;
    Ok(PasswordSet {
        user: store.get(username)?,
        keys_revoked: revoked.len(),
    })
}

pub fn set_role(app: &App, username: &str, role: Role) -> Result<User> {
    let store = app.users()?;
    let u = store.get(username)?;
    if u.role == role {
        return Ok(u);
    }
    store.set_role(&u.id, role)?;
    app.record(
        app.event(
            EventKind::UserChanged,
            json!({"username": u.username, "change": "role", "from": u.role, "to": role, "tokens_revoked": true}),
        )
        .user(&u.id),
    )?;
    store.get(username)
}

pub fn set_disabled(app: &App, username: &str, disabled: bool) -> Result<User> {
    let store = app.users()?;
    let u = store.get(username)?;
    if u.disabled == disabled {
        return Ok(u);
    }
    store.set_disabled(&u.id, disabled)?;
    app.record(
        app.event(
            EventKind::UserChanged,
            json!({"username": u.username, "change": if disabled {"disabled"} else {"enabled"}, "tokens_revoked": disabled}),
        )
        .user(&u.id),
    )?;
    store.get(username)
}

/// A role and/or the disabled flag at once (`PATCH /api/users`): one
/// users.db transaction, then one `user_changed` event per change.
pub fn update_user(
    app: &App,
    username: &str,
    role: Option<Role>,
    disabled: Option<bool>,
) -> Result<User> {
    let store = app.users()?;
    let u = store.get(username)?;
    let role = role.filter(|r| *r != u.role);
    let disabled = disabled.filter(|d| *d != u.disabled);
    if role.is_none() && disabled.is_none() {
        return Ok(u);
    }
    store.set_role_and_disabled(&u.id, role, disabled)?;
    if let Some(r) = role {
        app.record(
            app.event(
                EventKind::UserChanged,
                json!({"username": u.username, "change": "role", "from": u.role, "to": r, "tokens_revoked": true}),
            )
            .user(&u.id),
        )?;
    }
    if let Some(d) = disabled {
        app.record(
            app.event(
                EventKind::UserChanged,
                json!({"username": u.username, "change": if d {"disabled"} else {"enabled"}, "tokens_revoked": d || role.is_some()}),
            )
            .user(&u.id),
        )?;
    }
    store.get(username)
}

pub fn delete_user(app: &App, username: &str) -> Result<User> {
    let store = app.users()?;
    let u = store.get(username)?;
    store.delete(&u.id)?;
    app.record(
        app.event(
            EventKind::UserDeleted,
            json!({"username": u.username, "role": u.role}),
        )
        .user(&u.id),
    )?;
    Ok(u)
}

/// `user unlock`: forget the password attempts recorded for `username`
/// (from every address) and its second-factor code checks, so its logins
/// are no longer throttled. Audited.
pub fn unlock(app: &App, username: &str) -> Result<i64> {
    let n = app.users()?.clear_attempts(username)?;
    let shown = crate::output::clip(&crate::output::sanitize(username), 64);
    let mut ev = app.event(
        EventKind::UserChanged,
        json!({"username": shown, "change": "unlocked", "attempts_cleared": n}),
    );
    if let Some(u) = app.users_ro()?.find(username)? {
        ev = ev.user(&u.id);
    }
    app.record(ev)?;
    Ok(n)
}

/// A token for scripts. Needs the JWT secret; the user must be enabled.
pub fn issue_token(
    app: &App,
    username: &str,
    ttl_minutes: i64,
) -> Result<(String, credentials::Claims)> {
    if !(1..=60 * 24 * 30).contains(&ttl_minutes) {
        return Err(Error::usage("--ttl must be between 1 minute and 30 days"));
    }
    let secret = app.cfg.jwt_secret(&app.home)?;
    let store = app.users()?;
    let u = store.get(username)?;
    if u.disabled {
        return Err(
            Error::permission(format!("user {} is disabled", u.username)).hint(format!(
                "`hermes-operator user enable {}` first",
                u.username
            )),
        );
    }
    let (token, claims) = credentials::issue_for(&secret, &u, ttl_minutes, None, false)?;
    app.record(
        app.event(
            EventKind::TokenIssued,
            json!({"username": u.username, "jti": claims.jti, "exp": claims.exp, "via": "cli"}),
        )
        .user(&u.id),
    )?;
    Ok((token, claims))
}

/// A user who may chat and own sessions now: exists, enabled, role admin or
/// user (docs/design.md §4). The one place this rule lives (chat, `session new`, HTTP).
pub fn require_chat_user(app: &App, username: &str) -> Result<User> {
    let user = app.users_ro()?.get(username)?;
    if user.disabled {
        return Err(Error::permission(format!(
            "user {} is disabled",
            user.username
        )));
    }
    if !user.role.can_chat() {
        return Err(Error::permission(format!(
            "user {} has role {}, which may not chat or own sessions",
            user.username, user.role
        ))
        .hint("roles admin and user may chat"));
    }
    Ok(user)
}
