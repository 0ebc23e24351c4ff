//! Logging in with a password and staying logged in: the checks and the
//! bookkeeping behind `/auth/login`, `/auth/refresh`, `/auth/logout` and
//! `/api/me/password`, as blocking library calls with typed outcomes:
//! throttling (attempts reserved in users.db before any password check),
//! token families (a login; its refresh tokens and access tokens die
//! together) and their bounded growth. The HTTP layer adds the Argon2
//! concurrency limit, the slow-down sleep and the JSON.

use crate::app::App;
use crate::error::{Error, Result};
use crate::ops::credentials;
use crate::store::events::EventKind;
use crate::store::users::{AttemptLimits, Gate, RefreshUse, User};
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::time::Duration;

/// Refresh tokens live this long after their issue (each rotation starts anew).
pub const REFRESH_TTL_DAYS: i64 = 14;

/// Access tokens of single sign-on logins live this long: every refresh
/// re-checks the user with the provider (ops/sso.rs), so this bounds how
/// long a user disabled there keeps working here.
pub const SSO_ACCESS_TTL_MINUTES: i64 = 15;

/// Password attempts (logins and password changes) count for 15 minutes:
/// at most 5 per username and address, 20 per address; beyond 5 for a
/// username from all addresses, each attempt waits longer (never refused).
pub const ATTEMPT_LIMITS: AttemptLimits = AttemptLimits {
    window_secs: 15.0 * 60.0,
    per_user_client: 5,
    per_client: 20,
    slow_after: 5,
};
/// The slow-down per attempt above `slow_after`, and its ceiling.
const SLOW_STEP: Duration = Duration::from_millis(500);
const SLOW_MAX: Duration = Duration::from_secs(5);

/// A family may rotate its refresh token this often per 10 minutes (a
/// client refreshes once per access-token lifetime; a loop gets 429).
pub const REFRESH_PER_10_MIN: i64 = 10;
/// Used refresh tokens kept per family for reuse detection (older ones are
/// purged and then read as unknown).
pub const KEEP_USED_PER_FAMILY: i64 = 5;

/// What a password attempt may do.
#[derive(Debug, Clone, PartialEq)]
pub enum Attempt {
    /// Check the password after waiting `delay` (a username under attack
    /// from many addresses is slowed, not locked), then [`finish_attempt`].
    Go { id: i64, delay: Duration },
    /// Refused before any check: 429 with `Retry-After`.
    Throttled { retry_after_secs: u64 },
}

/// Reserve a password attempt for `username` from `client` (`via`: `http`
/// or `password_change`). Refusals are audited as `login_throttled`, the
/// 1st, 10th, 100th, … per key and window, so a flood cannot flood the log.
pub fn reserve_attempt(app: &App, username: &str, client: &str, via: &str) -> Result<Attempt> {
    let now = chrono::Utc::now().timestamp_micros() as f64 / 1e6;
    match app
        .users()?
        .reserve_attempt(username, client, now, &ATTEMPT_LIMITS)?
    {
        Gate::Go {
            attempt,
            recent_for_user,
        } => {
            let over = recent_for_user - ATTEMPT_LIMITS.slow_after + 1;
            let delay = if over > 0 {
                (SLOW_STEP * over.min(100) as u32).min(SLOW_MAX)
            } else {
                Duration::ZERO
            };
            Ok(Attempt::Go { id: attempt, delay })
        }
        Gate::Throttled {
            limit,
            retry_after_secs,
            count,
            report,
        } => {
            if report {
                let shown = crate::output::clip(&crate::output::sanitize(username), 64);
                app.as_actor("http".into()).record(app.event(
                    EventKind::LoginThrottled,
                    json!({"username": shown, "client": client, "limit": limit.as_str(),
                           "refused": count, "retry_after": retry_after_secs, "via": via}),
                ))?;
            }
            Ok(Attempt::Throttled { retry_after_secs })
        }
    }
}

/// Drop a reserved attempt uncounted (right password, second factor missing).
pub fn cancel_attempt(app: &App, id: i64) -> Result<()> {
    app.users()?.cancel_attempt(id)
}

/// Record how a reserved attempt ended (a success clears this username's
/// attempts from this address).
pub fn finish_attempt(app: &App, id: i64, ok: bool) -> Result<()> {
    app.users()?.finish_attempt(id, ok)
}

/// Purge what would otherwise grow without bound: expired and old used
/// refresh tokens, expired revocations, and single sign-on's expired flows
/// and codes and ended logins (at `serve` start and periodically). Rows
/// removed: (refresh tokens and SSO rows, revocations).
pub fn purge_tokens(app: &App) -> Result<(i64, i64)> {
    let store = app.users()?;
    let now = chrono::Utc::now();
    let (refresh, access) = store.purge_tokens(now.timestamp(), KEEP_USED_PER_FAMILY)?;
    let sso = store.purge_sso(now.timestamp_micros() as f64 / 1e6)?;
    Ok((refresh + sso, access))
}

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
    /// Right password, wrong or reused second-factor code.
    BadTotp,
    /// Right password; the account's second-factor codes are capped
    /// (`ops::totp::MAX_CODE_CHECKS`), so the code was not checked.
    TotpThrottled,
    Disabled,
    UnknownUser,
    /// Right password; the role logs in with single sign-on only
    /// (`auth.sso_only`).
    SsoOnly,
}

impl LoginFailure {
    pub fn as_str(self) -> &'static str {
        match self {
            LoginFailure::BadPassword => "bad_password",
            LoginFailure::BadTotp => "bad_totp",
            LoginFailure::TotpThrottled => "totp_throttled",
            LoginFailure::Disabled => "disabled",
            LoginFailure::UnknownUser => "unknown_user",
            LoginFailure::SsoOnly => "sso_only",
        }
    }
}

/// What presenting a refresh token came to.
pub enum RefreshOutcome {
    Rotated(Box<TokenPair>),
    /// Already used: the whole family (this login) is now revoked.
    Reused,
    /// The family rotated too often lately (nothing changed).
    RateLimited,
    /// The login was made without a second factor, which the account now
    /// needs (enrolled since, or its role entered `auth.require_totp`): the
    /// login is revoked; log in again with a code.
    SecondFactorRequired,
    /// A password login of a role that now logs in with single sign-on
    /// only (`auth.sso_only`): revoked.
    SsoRequired,
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

fn pair(access: String, refresh: String, u: User, access_minutes: i64) -> TokenPair {
    TokenPair {
        access_token: access,
        token_type: "Bearer",
        expires_in: access_minutes * 60,
        refresh_token: refresh,
        refresh_expires_in: REFRESH_TTL_DAYS * 86_400,
        user: u,
    }
}

/// An access token and a refresh token in a new family: (pair, jti,
/// family). `second_factor`: the login passed one (kept by the family).
pub fn issue_pair(
    app: &App,
    secret: &[u8],
    u: &User,
    second_factor: bool,
) -> Result<(TokenPair, String, String)> {
    issue_pair_for(
        app,
        secret,
        u,
        second_factor,
        credentials::ACCESS_TTL_MINUTES,
    )
}

/// [`issue_pair`] with access tokens of `access_minutes`.
pub fn issue_pair_for(
    app: &App,
    secret: &[u8],
    u: &User,
    second_factor: bool,
    access_minutes: i64,
) -> Result<(TokenPair, String, String)> {
    let family = format!("rf_{}", crate::crypto::random_hex(8));
    let (access, claims) =
        credentials::issue_for(secret, u, access_minutes, Some(&family), second_factor)?;
    let refresh = new_refresh_token();
    let exp = chrono::Utc::now().timestamp() + REFRESH_TTL_DAYS * 86_400;
    app.users()?.insert_refresh(
        &hash_token(&refresh),
        &family,
        &u.id,
        u.token_version,
        exp,
        second_factor,
    )?;
    Ok((
        pair(access, refresh, u.clone(), access_minutes),
        claims.jti,
        family,
    ))
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
            } else if crate::ops::sso::sso_only(app, u.role) {
                Err(LoginFailure::SsoOnly)
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
        EventKind::LoginFailed,
        json!({"username": shown, "client": client, "reason": reason.as_str(), "via": "http"}),
    ))?;
    Ok(())
}

/// A successful login: last-login time, a new token pair, a `login` event.
/// `second_factor`: the login passed one.
pub fn complete_login(
    app: &App,
    secret: &[u8],
    u: &User,
    client: &str,
    second_factor: bool,
) -> Result<TokenPair> {
    app.users()?.record_login(&u.id)?;
    let (resp, jti, family) = issue_pair(app, secret, u, second_factor)?;
    let app = app.as_actor(format!("http:{}", u.username));
    app.record(
        app.event(
            EventKind::Login,
            json!({"username": u.username, "client": client, "jti": jti,
                   "refresh_family": family, "via": "http", "second_factor": second_factor}),
        )
        .user(&u.id),
    )?;
    Ok(resp)
}

/// Revoke a login (refresh-token family) at its refresh, audited with `reason`.
fn end_login(
    app: &App,
    store: &crate::store::users::UserStore,
    u: &User,
    family_id: &str,
    reason: &str,
    client: &str,
) -> Result<()> {
    let n = store.revoke_family(&u.id, family_id, reason)?;
    let app = app.as_actor("http".into());
    app.record(
        app.event(
            EventKind::TokenRevoked,
            json!({"reason": reason, "username": u.username,
                   "refresh_family": family_id, "revoked": n, "client": client}),
        )
        .user(&u.id),
    )?;
    Ok(())
}

/// Rotate a refresh token (one use each; a second use revokes its family).
#[expect(
    clippy::too_many_lines,
    reason = "a refresh in order: rotate in one transaction, then the reuse, revoked, second-factor and throttle outcomes, each recorded as its audit event"
)]
pub fn refresh(app: &App, secret: &[u8], token: &str, client: &str) -> Result<RefreshOutcome> {
    let old = hash_token(token);
    let new_token = new_refresh_token();
    let now = chrono::Utc::now().timestamp();
    let store = app.users()?;
    let since = chrono::DateTime::from_timestamp(now - 600, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let used = store.rotate_refresh(
        &old,
        &hash_token(&new_token),
        now + REFRESH_TTL_DAYS * 86_400,
        now,
        (REFRESH_PER_10_MIN, &since),
    )?;
    match used {
        RefreshUse::Rotated {
            user_id,
            family_id,
            second_factor,
        } => {
            let u = store
                .find_by_id(&user_id)?
                .ok_or_else(|| Error::not_found("user vanished"))?;
            let sso = store.is_sso_family(&family_id)?;
            // A password login of a role that is now SSO-only, or one made
            // with the password alone from before the account needed a
            // second factor: it ends here, its access tokens too.
            if crate::ops::sso::sso_only(app, u.role) && !sso {
                end_login(app, &store, &u, &family_id, "sso_required", client)?;
                return Ok(RefreshOutcome::SsoRequired);
            }
            if !second_factor && crate::ops::totp::needed_by(app, &u)? {
                end_login(
                    app,
                    &store,
                    &u,
                    &family_id,
                    "second_factor_required",
                    client,
                )?;
                return Ok(RefreshOutcome::SecondFactorRequired);
            }
            let minutes = if sso {
                SSO_ACCESS_TTL_MINUTES
            } else {
                credentials::ACCESS_TTL_MINUTES
            };
            let (access, claims) =
                credentials::issue_for(secret, &u, minutes, Some(&family_id), second_factor)?;
            let app = app.as_actor(format!("http:{}", u.username));
            app.record(
                app.event(
                    EventKind::TokenIssued,
                    json!({"username": u.username, "jti": claims.jti, "exp": claims.exp,
                           "via": "refresh", "refresh_family": family_id, "client": client}),
                )
                .user(&u.id),
            )?;
            Ok(RefreshOutcome::Rotated(Box::new(pair(
                access, new_token, u, minutes,
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
                    EventKind::TokenRevoked,
                    json!({"reason": "refresh_token_reuse", "username": name,
                           "refresh_family": family_id, "revoked": revoked, "client": client}),
                )
                .user(&user_id),
            )?;
            Ok(RefreshOutcome::Reused)
        }
        RefreshUse::RateLimited { .. } => Ok(RefreshOutcome::RateLimited),
        // Ended by a change of the account (the store revoked the family);
        // say so when logging in again will need a code.
        RefreshUse::UserChanged {
            user_id,
            second_factor: false,
            ..
        } => match store.find_by_id(&user_id)?.filter(|u| !u.disabled) {
            Some(u) if crate::ops::totp::needed_by(app, &u)? => {
                Ok(RefreshOutcome::SecondFactorRequired)
            }
            _ => Ok(RefreshOutcome::Invalid),
        },
        _ => Ok(RefreshOutcome::Invalid),
    }
}

/// Log out with the access token `claims`: that token stops working at once,
/// and so does its whole login (its refresh family: every access token
/// issued from it, every refresh token). A refresh token in the body revokes
/// its family too; with neither, every refresh token of the user is revoked.
/// A `token_revoked` event says so; `app` acts as the caller. How many
/// refresh tokens were revoked.
pub fn logout(
    app: &App,
    u: &User,
    claims: &credentials::Claims,
    refresh_token: Option<&str>,
) -> Result<i64> {
    let store = app.users()?;
    store.revoke_access(&claims.jti, &u.id, claims.exp)?;
    let h = refresh_token.map(hash_token);
    let mut n = 0;
    if h.is_some() || claims.fam.is_none() {
        n += store.revoke_refresh(&u.id, h.as_ref(), "logout")?;
    }
    if let Some(fam) = &claims.fam {
        n += store.revoke_family(&u.id, fam, "logout")?;
    }
    app.record(
        app.event(
            EventKind::TokenRevoked,
            json!({"reason": "logout", "username": u.username, "jti": claims.jti,
                   "refresh_family": claims.fam, "refresh_tokens_revoked": n}),
        )
        .user(&u.id),
    )?;
    Ok(n)
}

/// Whether `password` is `u`'s current one (Argon2: off the async threads);
/// a wrong one is recorded as a failed login (`via`). `app` acts as the caller.
pub fn password_matches(
    app: &App,
    u: &User,
    password: &str,
    client: &str,
    via: &str,
) -> Result<bool> {
    let hash = app.users_ro()?.password_hash(&u.id)?;
    if hash.is_some_and(|h| credentials::verify_password(password, &h)) {
        return Ok(true);
    }
    app.record(
        app.event(
            EventKind::LoginFailed,
            json!({"username": u.username, "client": client,
                   "reason": "bad_password", "via": via}),
        )
        .user(&u.id),
    )?;
    Ok(false)
}

/// Change one's own password, proving the current one (Argon2: off the
/// async threads). `None`: the current password is wrong (recorded as a
/// failed login). Every token of the account stops working; the answer is
/// a fresh pair, which passed a second factor when the caller's login did
/// (`second_factor`). `app` acts as the caller.
pub fn change_password(
    app: &App,
    secret: &[u8],
    u: &User,
    current: &str,
    new: &str,
    client: &str,
    second_factor: bool,
) -> Result<Option<TokenPair>> {
    if !password_matches(app, u, current, client, "password_change")? {
        return Ok(None);
    }
    let changed = crate::ops::accounts::set_password(app, &u.username, new, false)?.user;
    app.users()?
        .revoke_refresh(&changed.id, None, "password_change")?;
    let (resp, _, _) = issue_pair(app, secret, &changed, second_factor)?;
    Ok(Some(resp))
}

/// What confirming one's own two-factor enrolment came to.
pub enum TotpConfirm {
    /// On; the earlier logins ended and this is a fresh one (it passed a
    /// second factor: the code just checked).
    Confirmed(Box<TokenPair>),
    /// The current password is wrong (recorded as a failed login).
    WrongPassword,
    /// The account's second-factor codes are capped: not checked.
    Throttled { retry_after_secs: u64 },
}

/// Confirm one's own pending enrolment (`POST /api/me/totp/confirm`),
/// proving the current password (Argon2: off the async threads), so a
/// stolen access token cannot finish what it could not start. A wrong code
/// is a usage error. `app` acts as the caller.
pub fn confirm_totp(
    app: &App,
    secret: &[u8],
    u: &User,
    current: &str,
    code: &str,
    client: &str,
) -> Result<TotpConfirm> {
    if !password_matches(app, u, current, client, "totp_confirm")? {
        return Ok(TotpConfirm::WrongPassword);
    }
    if let Err(t) = crate::ops::totp::confirm(app, &u.username, code, client)? {
        return Ok(TotpConfirm::Throttled {
            retry_after_secs: t.retry_after_secs,
        });
    }
    // The token version moved on: the caller's own token ended with the rest.
    let u = app.users()?.get(&u.username)?;
    let (resp, _, _) = issue_pair(app, secret, &u, true)?;
    Ok(TotpConfirm::Confirmed(Box::new(resp)))
}
