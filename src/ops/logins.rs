//! Logging in with a password and staying logged in: the checks and the
//! bookkeeping behind `/auth/login`, `/auth/refresh`, `/auth/logout` and
//! `/api/me/password`, as blocking library calls with typed outcomes. The
//! HTTP layer adds throttling, the Argon2 concurrency limit and the JSON.

use crate::app::App;
use crate::error::{Error, Result};
use crate::ops::credentials;
use crate::store::users::{RefreshUse, User};
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};

/// Refresh tokens live this long after their issue (each rotation starts anew).
pub const REFRESH_TTL_DAYS: i64 = 14;

/// What a login, a refresh or a password change answers.
#[derive(Debug, Serialize)]
pub struct TokenPair {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    pub refresh_token: String,
    pub refresh_expires_in: i64,
    pub user: User,
}

/// Why a password login failed (recorded, never told apart to the client).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginFailure {
    BadPassword,
    Disabled,
    UnknownUser,
}

impl LoginFailure {
    pub fn as_str(self) -> &'static str {
        match self {
            LoginFailure::BadPassword => "bad_password",
            LoginFailure::Disabled => "disabled",
            LoginFailure::UnknownUser => "unknown_user",
        }
    }
}

/// What presenting a refresh token came to.
pub enum RefreshOutcome {
    Rotated(Box<TokenPair>),
    /// Already used: the whole family (this login) is now revoked.
    Reused,
    Invalid,
}

/// Refresh tokens are stored hashed.
pub fn hash_token(t: &str) -> [u8; 32] {
    Sha256::digest(t.as_bytes()).into()
}

/// A new opaque refresh token: `rt1.` + 32 random bytes (hex).
fn new_refresh_token() -> String {
    format!("rt1.{}", crate::crypto::random_hex(32))
}

fn pair(access: String, refresh: String, u: User) -> TokenPair {
    TokenPair {
        access_token: access,
        token_type: "Bearer",
        expires_in: credentials::ACCESS_TTL_MINUTES * 60,
        refresh_token: refresh,
        refresh_expires_in: REFRESH_TTL_DAYS * 86_400,
        user: u,
    }
}

/// An access token and a refresh token in a new family: (pair, jti, family).
pub fn issue_pair(app: &App, secret: &[u8], u: &User) -> Result<(TokenPair, String, String)> {
    let (access, claims) = credentials::issue_for(secret, u, credentials::ACCESS_TTL_MINUTES)?;
    let refresh = new_refresh_token();
    let family = format!("rf_{}", crate::crypto::random_hex(8));
    let exp = chrono::Utc::now().timestamp() + REFRESH_TTL_DAYS * 86_400;
    app.users()?
        .insert_refresh(&hash_token(&refresh), &family, &u.id, u.token_version, exp)?;
    Ok((pair(access, refresh, u.clone()), claims.jti, family))
}

/// Check a password (Argon2, slow: call it off the async threads). Unknown
/// users cost the same as known ones.
pub fn check_password(
    app: &App,
    username: &str,
    password: &str,
) -> Result<std::result::Result<User, LoginFailure>> {
    let found = match app.users_ro() {
        Ok(s) => s.find(username)?.map(|u| {
            let h = s.password_hash(&u.id);
            (u, h)
        }),
        Err(e) if e.kind == crate::Kind::NotFound => None,
        Err(e) => return Err(e),
    };
    Ok(match found {
        Some((u, Ok(Some(hash)))) => {
            if !credentials::verify_password(password, &hash) {
                Err(LoginFailure::BadPassword)
            } else if u.disabled {
                Err(LoginFailure::Disabled)
            } else {
                Ok(u)
            }
        }
        Some((_, Err(e))) => return Err(e),
        _ => {
            credentials::dummy_verify(password);
            Err(LoginFailure::UnknownUser)
        }
    })
}

/// A failed login, in the audit log (`shown`: the username as safe to log).
pub fn record_failed_login(
    app: &App,
    shown: &str,
    client: &str,
    reason: LoginFailure,
) -> Result<()> {
    app.as_actor("http".into()).record(app.event(
        "login_failed",
        json!({"username": shown, "client": client, "reason": reason.as_str(), "via": "http"}),
    ))?;
    Ok(())
}

/// A successful login: last-login time, a new token pair, a `login` event.
pub fn complete_login(app: &App, secret: &[u8], u: &User, client: &str) -> Result<TokenPair> {
    app.users()?.record_login(&u.id)?;
    let (resp, jti, family) = issue_pair(app, secret, u)?;
    let app = app.as_actor(format!("http:{}", u.username));
    app.record(
        app.event(
            "login",
            json!({"username": u.username, "client": client, "jti": jti,
                   "refresh_family": family, "via": "http"}),
        )
        .user(&u.id),
    )?;
    Ok(resp)
}

/// Rotate a refresh token (one use each; a second use revokes its family).
pub fn refresh(app: &App, secret: &[u8], token: &str, client: &str) -> Result<RefreshOutcome> {
    let old = hash_token(token);
    let new_token = new_refresh_token();
    let now = chrono::Utc::now().timestamp();
    let store = app.users()?;
    let used = store.rotate_refresh(
        &old,
        &hash_token(&new_token),
        now + REFRESH_TTL_DAYS * 86_400,
        now,
    )?;
    match used {
        RefreshUse::Rotated { user_id, family_id } => {
            let u = store
                .find_by_id(&user_id)?
                .ok_or_else(|| Error::not_found("user vanished"))?;
            let (access, claims) =
                credentials::issue_for(secret, &u, credentials::ACCESS_TTL_MINUTES)?;
            let app = app.as_actor(format!("http:{}", u.username));
            app.record(
                app.event(
                    "token_issued",
                    json!({"username": u.username, "jti": claims.jti, "exp": claims.exp,
                           "via": "refresh", "refresh_family": family_id, "client": client}),
                )
                .user(&u.id),
            )?;
            Ok(RefreshOutcome::Rotated(Box::new(pair(
                access, new_token, u,
            ))))
        }
        RefreshUse::Reused {
            user_id,
            family_id,
            revoked,
        } => {
            let name = store.find_by_id(&user_id)?.map(|u| u.username);
            let app = app.as_actor("http".into());
            app.record(
                app.event(
                    "token_revoked",
                    json!({"reason": "refresh_token_reuse", "username": name,
                           "refresh_family": family_id, "revoked": revoked, "client": client}),
                )
                .user(&user_id),
            )?;
            Ok(RefreshOutcome::Reused)
        }
        _ => Ok(RefreshOutcome::Invalid),
    }
}

/// Log out: the refresh token's family (or, without one, every refresh
/// token of the user) is revoked, and a `token_revoked` event says so.
/// `app` acts as the caller. How many refresh tokens were revoked.
pub fn logout(app: &App, u: &User, jti: &str, refresh_token: Option<&str>) -> Result<i64> {
    let h = refresh_token.map(hash_token);
    let n = app.users()?.revoke_refresh(&u.id, h.as_ref(), "logout")?;
    app.record(
        app.event(
            "token_revoked",
            json!({"reason": "logout", "username": u.username, "jti": jti,
                   "refresh_tokens_revoked": n}),
        )
        .user(&u.id),
    )?;
    Ok(n)
}

/// Change one's own password, proving the current one (Argon2: off the
/// async threads). `None`: the current password is wrong (recorded as a
/// failed login). Every token of the account stops working; the answer is
/// a fresh pair. `app` acts as the caller.
pub fn change_password(
    app: &App,
    secret: &[u8],
    u: &User,
    current: &str,
    new: &str,
    client: &str,
) -> Result<Option<TokenPair>> {
    let hash = app.users_ro()?.password_hash(&u.id)?;
    if !hash.is_some_and(|h| credentials::verify_password(current, &h)) {
        app.record(
            app.event(
                "login_failed",
                json!({"username": u.username, "client": client,
                       "reason": "bad_password", "via": "password_change"}),
            )
            .user(&u.id),
        )?;
        return Ok(None);
    }
    let changed = crate::ops::accounts::set_password(app, &u.username, new)?;
    app.users()?
        .revoke_refresh(&changed.id, None, "password_change")?;
    let (resp, _, _) = issue_pair(app, secret, &changed)?;
    Ok(Some(resp))
}
