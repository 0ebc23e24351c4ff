//! `/auth/*` and `/api/me`: login (JSON body, or the design's
//! `?username=&password=` form — accepted, but it puts the secret into URLs
//! that proxies may log; this server never logs query strings), register
//! (admin), refresh (opaque, stored as SHA-256, rotated on use; reuse of a
//! rotated token revokes its family), logout.

use super::errors::{ApiError, ApiResult};
use super::extract::{
    is_json, parse_json, AdminCaller, ApiJson, LoginCaller, MeReader, PasswordChanger,
};
use super::middleware::{ClientIp, LogUser};
use super::state::{blocking, Action, ServerState};
use crate::ops::credentials;
use crate::ops::logins::{self, Attempt, LoginFailure, RefreshOutcome, TotpConfirm};
use crate::ops::totp::{self, SecondFactor};
use crate::store::users::Role;
use axum::body::Bytes;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use std::net::IpAddr;
use std::sync::Arc;

/// A password or token from a request body; wiped from memory when dropped.
#[derive(Deserialize, Default)]
#[serde(transparent)]
pub struct Secret(String);

impl Drop for Secret {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.0.zeroize();
    }
}

impl std::ops::Deref for Secret {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

pub use crate::ops::logins::REFRESH_TTL_DAYS;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    username: String,
    password: Secret,
    /// The second factor: a 6-digit TOTP code or a recovery code.
    #[serde(default)]
    totp: Option<Secret>,
}

#[derive(Deserialize, Default)]
pub struct LoginQuery {
    username: Option<String>,
    password: Option<Secret>,
}

/// Reserve a password attempt (users.db, before any check): 429 with
/// `Retry-After` when throttled; otherwise wait out the slow-down and
/// return the attempt to finish.
async fn attempt(
    st: &Arc<ServerState>,
    username: &str,
    client: IpAddr,
    via: &'static str,
    what: &str,
) -> ApiResult<i64> {
    let st2 = st.clone();
    let name = username.to_string();
    let gate = blocking(move || logins::reserve_attempt(&st2.app, &name, &client.to_string(), via))
        .await?;
    match gate {
        Attempt::Throttled { retry_after_secs } => Err(ApiError::throttled(
            format!("too many failed {what}; try again in {retry_after_secs} s"),
            retry_after_secs,
        )),
        Attempt::Go { id, delay } => {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            Ok(id)
        }
    }
}

async fn finish(st: &Arc<ServerState>, id: i64, ok: bool) -> ApiResult<()> {
    let st2 = st.clone();
    blocking(move || logins::finish_attempt(&st2.app, id, ok)).await
}

/// `POST /auth/login`.
pub async fn login(
    State(st): State<Arc<ServerState>>,
    Extension(ClientIp(client)): Extension<ClientIp>,
    Extension(log_user): Extension<LogUser>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let q: LoginQuery = axum::extract::Query::try_from_uri(&uri)
        .map(|axum::extract::Query(v)| v)
        .unwrap_or_default();
    let (username, password, code) = match (q.username, q.password) {
        (Some(u), Some(p)) => (u, p, None),
        _ => {
            if !is_json(&headers) {
                return Err(ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "send {\"username\",\"password\"} as JSON (Content-Type: application/json)",
                ));
            }
            let b: LoginBody = parse_json(&body)?;
            (b.username, b.password, b.totp)
        }
    };
    if username.is_empty() || username.len() > 256 {
        return Err(ApiError::bad_request("username must be 1-256 characters"));
    }
    // No account has one (usernames are letters, digits, '.', '_', '-'),
    // and the fleet's database cannot even store it for the throttle.
    if username.contains('\0') {
        return Err(ApiError::bad_request("username must not contain NUL"));
    }
    let shown = crate::output::clip(&crate::output::sanitize(&username), 64);
    let attempt_id = attempt(&st, &username, client, "http", "logins").await?;
    let permit = st.argon2_slot().await?;
    let st2 = st.clone();
    let name = username.clone();
    // Argon2 never runs on the async threads; unknown users cost the same.
    let check = blocking(move || logins::check_password(&st2.app, &name, &password)).await?;
    drop(permit);
    let client_s = client.to_string();
    match check {
        Err(LoginFailure::SsoOnly) => {
            // The password was right: not a failed attempt.
            finish(&st, attempt_id, true).await?;
            let st2 = st.clone();
            blocking(move || {
                logins::record_failed_login(&st2.app, &shown, &client_s, LoginFailure::SsoOnly)
            })
            .await?;
            Err(sso_required())
        }
        Err(reason) => {
            finish(&st, attempt_id, false).await?;
            let st2 = st.clone();
            blocking(move || logins::record_failed_login(&st2.app, &shown, &client_s, reason))
                .await?;
            Err(ApiError::unauthorized("invalid username or password"))
        }
        Ok(u) => {
            let passed = second_factor(&st, &u, code, attempt_id, shown, &client_s).await?;
            finish(&st, attempt_id, true).await?;
            // After the password (wrong ones never count here; they are
            // throttled above): every login writes an event and keeps a
            // refresh token until it expires.
            st.admit_action(&u.id, Action::Login).await?;
            let _ = log_user.0.set(u.username.clone());
            let st2 = st.clone();
            let resp = blocking(move || {
                logins::complete_login(&st2.app, st2.secret(), &u, &client_s, passed)
            })
            .await?;
            Ok(Json(resp).into_response())
        }
    }
}

/// The second factor of a login whose password was right: `Ok` to go on
/// (`true`: a code or recovery code passed); otherwise the 401 or 429 to
/// answer (the attempt finished or dropped as fits).
async fn second_factor(
    st: &Arc<ServerState>,
    u: &crate::store::users::User,
    code: Option<Secret>,
    attempt_id: i64,
    shown: String,
    client: &str,
) -> ApiResult<bool> {
    let st2 = st.clone();
    let u2 = u.clone();
    let second = blocking(move || {
        let required = totp::required_for(&st2.app.cfg.config, u2.role);
        Ok((required, totp::check(&st2.app, &u2, code.as_deref())?))
    })
    .await?;
    match second {
        (_, SecondFactor::Passed { .. }) => Ok(true),
        (false, SecondFactor::NotEnrolled) => Ok(false),
        (true, SecondFactor::NotEnrolled) => {
            finish(st, attempt_id, true).await?;
            Err(ApiError::unauthorized_as(
                "totp_enrolment_required",
                "your role must log in with a second factor: ask an administrator to run `hermes-operator user totp enable` for you",
            ))
        }
        (_, SecondFactor::Missing) => {
            let st2 = st.clone();
            blocking(move || logins::cancel_attempt(&st2.app, attempt_id)).await?;
            Err(ApiError::unauthorized_as(
                "totp_required",
                "enter the code from your authenticator (or a recovery code) as `totp`",
            ))
        }
        (_, SecondFactor::Wrong) => {
            finish(st, attempt_id, false).await?;
            let (st2, client) = (st.clone(), client.to_string());
            blocking(move || {
                logins::record_failed_login(&st2.app, &shown, &client, LoginFailure::BadTotp)
            })
            .await?;
            Err(ApiError::unauthorized_as(
                "invalid_credentials",
                "invalid username, password or code",
            ))
        }
        (_, SecondFactor::Throttled { retry_after_secs }) => {
            // Counted as a failed attempt from this address (so one address
            // cannot flood the log with these either), and audited.
            finish(st, attempt_id, false).await?;
            let (st2, client) = (st.clone(), client.to_string());
            blocking(move || {
                logins::record_failed_login(&st2.app, &shown, &client, LoginFailure::TotpThrottled)
            })
            .await?;
            Err(ApiError::throttled(
                format!("too many wrong codes for this account; try again in {retry_after_secs} s"),
                retry_after_secs,
            ))
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterBody {
    username: String,
    password: Secret,
    /// Default `user`, as the design's `create_user(username, password, role="user")`.
    #[serde(default)]
    role: Option<String>,
}

/// `POST /auth/register` (admin): create an account.
pub async fn register(
    State(st): State<Arc<ServerState>>,
    AdminCaller(caller): AdminCaller,
    ApiJson(b): ApiJson<RegisterBody>,
) -> ApiResult<Response> {
    let role = b
        .role
        .as_deref()
        .map(parse_role)
        .transpose()?
        .unwrap_or(Role::User);
    let permit = st.argon2_slot().await?;
    let st2 = st.clone();
    let actor = caller.actor();
    let u = blocking(move || {
        crate::ops::accounts::add_user(&st2.app_as(actor), &b.username, role, &b.password)
    })
    .await?;
    drop(permit);
    Ok((StatusCode::CREATED, Json(u)).into_response())
}

fn sso_required() -> ApiError {
    ApiError::unauthorized_as(
        "sso_required",
        "your role logs in with single sign-on only: use the single sign-on button on the login page (or `hermes-operator login --sso`)",
    )
}

pub fn parse_role(s: &str) -> ApiResult<Role> {
    Role::parse(s).ok_or_else(|| {
        ApiError::bad_request(format!(
            "role {:?}: expected admin, auditor, user or viewer",
            crate::output::clip(&crate::output::sanitize(s), 20)
        ))
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefreshBody {
    refresh_token: Secret,
}

/// `POST /auth/refresh`: rotate a refresh token; a new access token too.
pub async fn refresh(
    State(st): State<Arc<ServerState>>,
    Extension(ClientIp(client)): Extension<ClientIp>,
    Extension(log_user): Extension<LogUser>,
    ApiJson(b): ApiJson<RefreshBody>,
) -> ApiResult<Response> {
    if b.refresh_token.len() > 256 {
        return Err(ApiError::unauthorized("invalid or expired refresh token"));
    }
    let client_s = client.to_string();
    super::sso::recheck_refresh(&st, &b.refresh_token, &client_s).await?;
    let st2 = st.clone();
    let out =
        blocking(move || logins::refresh(&st2.app, st2.secret(), &b.refresh_token, &client_s))
            .await?;
    match out {
        RefreshOutcome::Rotated(resp) => {
            let _ = log_user.0.set(resp.user.username.clone());
            Ok(Json(resp).into_response())
        }
        RefreshOutcome::Reused => Err(ApiError::unauthorized(
            "this refresh token was already used: every token of this login is now revoked; log in again",
        )),
        RefreshOutcome::RateLimited => Err(ApiError::throttled(
            "this login refreshed its tokens too often; try again in a few minutes",
            60,
        )),
        RefreshOutcome::SecondFactorRequired => Err(ApiError::unauthorized_as(
            "totp_required",
            "this login was made without a second factor, which this account now needs: log in again with a code from your authenticator",
        )),
        RefreshOutcome::SsoRequired => Err(sso_required()),
        RefreshOutcome::Invalid => Err(ApiError::unauthorized("invalid or expired refresh token")),
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct LogoutBody {
    refresh_token: Option<Secret>,
}

/// `POST /auth/logout`: the access token and its whole login (every access
/// and refresh token of its family) stop working at once, remembered in
/// users.db; a refresh token in the body revokes its family too, and a token
/// without a login (`user token`) and no body revokes every refresh token of
/// the caller.
pub async fn logout(
    State(st): State<Arc<ServerState>>,
    PasswordChanger(caller): PasswordChanger,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let b: LogoutBody = if body.iter().all(u8::is_ascii_whitespace) {
        LogoutBody::default()
    } else {
        if !is_json(&headers) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "expected a JSON body with Content-Type: application/json",
            ));
        }
        parse_json(&body)?
    };
    let Some(claims) = caller.claims.clone() else {
        return Err(ApiError::forbidden(
            "an API key is not a login; revoke it instead",
        ));
    };
    let st2 = st.clone();
    let c = caller.clone();
    let n = blocking(move || {
        logins::logout(
            &st2.app_as(c.actor()),
            &c.user,
            &claims,
            b.refresh_token.as_deref(),
        )
    })
    .await?;
    Ok(Json(json!({"ok": true, "refresh_tokens_revoked": n})).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordBody {
    current_password: Secret,
    new_password: Secret,
}

/// `POST /api/me/password` (every role): change one's own password, proving
/// the current one. Throttled like logins (a stolen access token must not
/// become a password oracle). The same library call as `user passwd`: every
/// token of the account stops working (token version), so the answer is a
/// fresh pair, as from a login.
pub async fn change_password(
    State(st): State<Arc<ServerState>>,
    Extension(ClientIp(client)): Extension<ClientIp>,
    PasswordChanger(caller): PasswordChanger,
    ApiJson(b): ApiJson<PasswordBody>,
) -> ApiResult<Response> {
    st.admit_action(&caller.user.id, Action::AccountChange)
        .await?;
    let name = caller.user.username.clone();
    // A weak new password is refused before any attempt is counted.
    credentials::check_password_policy(&b.new_password)?;
    let attempt_id = attempt(&st, &name, client, "password_change", "attempts").await?;
    let permit = st.argon2_slot().await?;
    let st2 = st.clone();
    let c = caller.clone();
    let client_s = client.to_string();
    // The fresh login keeps the second factor the caller's login passed.
    let second_factor = caller.claims.as_ref().is_some_and(|c| c.mfa);
    let changed = blocking(move || {
        logins::change_password(
            &st2.app_as(c.actor()),
            st2.secret(),
            &c.user,
            &b.current_password,
            &b.new_password,
            &client_s,
            second_factor,
        )
    })
    .await;
    drop(permit);
    match changed {
        Ok(Some(resp)) => {
            // The old access token died with the token version.
            finish(&st, attempt_id, true).await?;
            Ok(Json(resp).into_response())
        }
        Ok(None) => {
            finish(&st, attempt_id, false).await?;
            Err(ApiError::forbidden("the current password is wrong"))
        }
        // The current password was right (e.g. the new one equals a reset
        // one): the attempt must not stay pending and count.
        Err(e) => {
            finish(&st, attempt_id, true).await?;
            Err(e)
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TotpBeginBody {
    current_password: Secret,
}

/// `POST /api/me/totp` (every role): start enrolling an authenticator for
/// oneself. Needs the current password (a stolen access token must not be
/// able to put a second factor on someone's account), throttled like a
/// login; the answer (URI, secret, recovery codes) is shown once.
pub async fn totp_begin(
    State(st): State<Arc<ServerState>>,
    Extension(ClientIp(client)): Extension<ClientIp>,
    LoginCaller(caller): LoginCaller,
    ApiJson(b): ApiJson<TotpBeginBody>,
) -> ApiResult<Response> {
    st.admit_action(&caller.user.id, Action::AccountChange)
        .await?;
    let name = caller.user.username.clone();
    let attempt_id = attempt(&st, &name, client, "totp_enrolment", "attempts").await?;
    let permit = st.argon2_slot().await?;
    let st2 = st.clone();
    let c = caller.clone();
    let client_s = client.to_string();
    let out = blocking(move || {
        let app = st2.app_as(c.actor());
        if !logins::password_matches(
            &app,
            &c.user,
            &b.current_password,
            &client_s,
            "totp_enrolment",
        )? {
            return Ok(None);
        }
        totp::enable(&app, &c.user.username).map(Some)
    })
    .await;
    drop(permit);
    match out {
        Ok(Some(e)) => {
            finish(&st, attempt_id, true).await?;
            Ok(Json(e).into_response())
        }
        Ok(None) => {
            finish(&st, attempt_id, false).await?;
            Err(ApiError::forbidden("the current password is wrong"))
        }
        Err(e) => {
            finish(&st, attempt_id, true).await?;
            Err(e)
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TotpConfirmBody {
    current_password: Secret,
    code: Secret,
}

/// `POST /api/me/totp/confirm` `{current_password, code}` (every role):
/// confirm one's pending enrolment with the authenticator's current code.
/// Needs the current password and is throttled like a login (a stolen
/// access token must not be able to finish an enrolment), and the code
/// counts against the account's cap on code checks. Every earlier login of
/// the account ends (token version); the answer is a fresh pair, as from a
/// login with a code, and `totp: "on"`.
pub async fn totp_confirm(
    State(st): State<Arc<ServerState>>,
    Extension(ClientIp(client)): Extension<ClientIp>,
    LoginCaller(caller): LoginCaller,
    ApiJson(b): ApiJson<TotpConfirmBody>,
) -> ApiResult<Response> {
    // Not under the per-minute account-change limit: every confirmation is
    // a code check, and those are capped per account already (10 per 15
    // minutes, `ops::totp`), more tightly.
    let name = caller.user.username.clone();
    let attempt_id = attempt(&st, &name, client, "totp_confirm", "attempts").await?;
    let permit = st.argon2_slot().await?;
    let st2 = st.clone();
    let c = caller.clone();
    let client_s = client.to_string();
    let out = blocking(move || {
        logins::confirm_totp(
            &st2.app_as(c.actor()),
            st2.secret(),
            &c.user,
            &b.current_password,
            &b.code,
            &client_s,
        )
    })
    .await;
    drop(permit);
    // Only a wrong password counts as a failed password attempt; codes
    // have their own per-account cap.
    finish(
        &st,
        attempt_id,
        !matches!(out, Ok(TotpConfirm::WrongPassword)),
    )
    .await?;
    match out? {
        TotpConfirm::Confirmed(pair) => {
            let mut v = serde_json::to_value(&*pair).map_err(crate::Error::from)?;
            v["totp"] = json!("on");
            Ok(Json(v).into_response())
        }
        TotpConfirm::WrongPassword => Err(ApiError::forbidden("the current password is wrong")),
        TotpConfirm::Throttled { retry_after_secs } => Err(ApiError::throttled(
            format!("too many wrong codes for this account; try again in {retry_after_secs} s"),
            retry_after_secs,
        )),
    }
}

/// `GET /api/me`: who the token belongs to and what the role may do.
pub async fn me(
    State(st): State<Arc<ServerState>>,
    MeReader(caller): MeReader,
) -> ApiResult<Response> {
    let r = caller.user.role;
    let st2 = st.clone();
    let id = caller.user.id.clone();
    let totp_state = blocking(move || {
        Ok(match st2.app.users_ro()?.totp_get(&id)? {
            Some(t) if t.confirmed => "on",
            Some(_) => "pending",
            None => "off",
        })
    })
    .await?;
    Ok(Json(json!({
        "user": caller.user,
        "may": caller.may,
        "token": caller.claims.as_ref().map(|c| json!({"jti": c.jti, "exp": c.exp})),
        "key": caller.key,
        "totp": totp_state,
        "totp_required": totp::required_for(&st.app.cfg.config, r),
        "demo": st.demo,
        // A fleet (store.url): this host's name, so a list of every host's
        // sessions can tell which it can open here.
        "fleet": st.fleet_host.as_ref().map(|h| json!({"host": h})),
        // What a new key's toolsets may name (the key form's choices): a key
        // only narrows the operator's list.
        "key_toolsets": st.app.cfg.config.agent.enabled_toolsets,
        // Before Hermes' first run every view is empty: one calm sentence.
        "notice": st.app.state_notice_public(),
    }))
    .into_response())
}
