//! Extractors: [`Caller`] authenticates a request ONCE (Bearer JWT, HS256
//! only, iss/aud/exp, user still exists and is enabled, token version
//! current, not logged out; or a personal API key `hop_…`: live, owner
//! enabled and of the key's role, within its scope and rate); [`ApiJson`]
//! and [`ApiQuery`] turn bad input into JSON 400/413/415 errors.

use super::errors::{ApiError, ApiResult};
use super::middleware::LogUser;
use super::state::ServerState;
use crate::ops::credentials::{self, Claims};
use crate::ops::sessions::Scope;
use crate::store::users::{ApiKey, KeyScope, Role, User};
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use serde::de::DeserializeOwned;
use std::sync::Arc;

/// The authenticated user of a request (current role from users.db, not
/// from the token).
#[derive(Clone, Debug)]
pub struct Caller {
    pub user: User,
    /// The access token's claims; `None` for a personal API key.
    pub claims: Option<Claims>,
    /// The personal API key the request came with.
    pub key: Option<ApiKey>,
}

impl Caller {
    /// 403 unless the caller's role allows `what`.
    pub fn require(&self, allowed: bool, what: &str) -> ApiResult<()> {
        if allowed {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "your role ({}) may not {what}",
                self.user.role
            )))
        }
    }

    pub fn role(&self) -> Role {
        self.user.role
    }

    /// docs/design.md §4: admins and auditors read every operator session; the others
    /// only their own.
    pub fn scope(&self) -> Scope {
        if self.user.role.can_audit() {
            Scope::Operator
        } else {
            Scope::OwnedBy(self.user.id.clone())
        }
    }

    /// Who the audit log says acted: the user, and the key id when a key was used.
    pub fn actor(&self) -> String {
        match &self.key {
            Some(k) => format!("http:{}/{}", self.user.username, k.id),
            None => format!("http:{}", self.user.username),
        }
    }
}

/// What a login whose password an admin reset may still do.
fn password_change_route(method: &axum::http::Method, path: &str) -> bool {
    use axum::http::Method;
    matches!(
        (method.clone(), path),
        (Method::GET, "/api/me")
            | (Method::POST, "/api/me/password")
            | (Method::POST, "/auth/logout")
    )
}

/// Requests a personal API key may make: reads (GET/HEAD) in either scope;
/// chat turns with `chat`. Nothing else: a leaked key cannot change
/// passwords, accounts or make more keys, and cannot answer approvals (the
/// point of `--approvals wait` is that a person with a login decides).
fn key_allows(method: &axum::http::Method, path: &str, scope: KeyScope) -> Result<(), String> {
    use axum::http::Method;
    if *method == Method::GET || *method == Method::HEAD {
        return Ok(());
    }
    let chat = *method == Method::POST && (path == "/api/chat" || path == "/v1/chat/completions");
    match (chat, scope) {
        (true, KeyScope::Chat) => Ok(()),
        (true, KeyScope::Read) => {
            Err("this API key is read-only (scope read): it may not chat".into())
        }
        (false, _) => Err(format!(
            "API keys may read and chat only; {method} {} needs a login (access token)",
            crate::output::clip(path, 80)
        )),
    }
}

/// Role guards: a handler that takes one of these says in its signature who
/// may call it, and the 403 comes before any other input is looked at.
macro_rules! role_guard {
    ($(#[$doc:meta])* $name:ident, $allowed:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug)]
        pub struct $name(pub Caller);

        impl FromRequestParts<Arc<ServerState>> for $name {
            type Rejection = ApiError;

            async fn from_request_parts(
                parts: &mut Parts,
                st: &Arc<ServerState>,
            ) -> Result<Self, Self::Rejection> {
                let c = Caller::from_request_parts(parts, st).await?;
                c.require(c.role().$allowed(), $what)?;
                Ok($name(c))
            }
        }
    };
}

role_guard!(
    /// Admins: manage accounts.
    AdminCaller,
    can_manage_users,
    "manage users"
);
role_guard!(
    /// Admins and auditors: the audit log and every operator session.
    AuditorCaller,
    can_audit,
    "read the audit log"
);
role_guard!(
    /// Admins and users: chat, own sessions, answer their approvals.
    ChatCaller,
    can_chat,
    "chat"
);

fn bearer(parts: &Parts) -> Option<&str> {
    let v = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
        .filter(|t| !t.is_empty() && t.len() <= 4096)
}

impl FromRequestParts<Arc<ServerState>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        st: &Arc<ServerState>,
    ) -> Result<Self, Self::Rejection> {
        if let Some(c) = parts.extensions.get::<Caller>() {
            return Ok(c.clone());
        }
        let token = bearer(parts).ok_or_else(|| {
            ApiError::unauthorized(
                "authentication required: send Authorization: Bearer <access token or API key>",
            )
        })?;
        let c = if token.starts_with(crate::ops::keys::KEY_PREFIX) {
            key_caller(parts, st, token)?
        } else {
            let c = token_caller(st, token)?;
            // After an admin's reset, a login may only change the password.
            if c.user.must_change_password
                && !password_change_route(&parts.method, parts.uri.path())
            {
                return Err(ApiError::forbidden(
                    "an administrator reset your password: choose a new one first (POST /api/me/password)",
                )
                .with_code("password_change_required"));
            }
            c
        };
        if let Some(slot) = parts.extensions.get::<LogUser>() {
            let _ = slot
                .0
                .set(c.actor().trim_start_matches("http:").to_string());
        }
        parts.extensions.insert(c.clone());
        Ok(c)
    }
}

fn token_caller(st: &ServerState, token: &str) -> Result<Caller, ApiError> {
    let claims = credentials::decode_access_token(st.secret(), token).map_err(|e| {
        ApiError::unauthorized("invalid or expired access token").with_detail(e.message)
    })?;
    // One primary-key read on a pooled connection (microseconds): every
    // request sees password/role changes, disabling, deletion, logouts
    // and revoked logins at once, whichever `serve` process made them.
    // A SQLite read may wait on a busy lock: the worker tells the runtime
    // (`block_in_place`) so other requests move to another worker meanwhile,
    // without the hand-off to the blocking pool a `spawn_blocking` costs.
    let user = tokio::task::block_in_place(|| st.token_user(&claims)).map_err(ApiError::from)?;
    let user = match user {
        Some((_, true)) => {
            return Err(ApiError::unauthorized(
                "this access token was logged out or its login revoked; log in again",
            ))
        }
        Some((u, false)) if !u.disabled && u.token_version == claims.tv => u,
        _ => {
            return Err(ApiError::unauthorized(
                "this access token was revoked; log in again",
            ))
        }
    };
    // A login made with the password alone ends when its role enters
    // `auth.require_totp` (enrolling ends it through the token version).
    // `user token` tokens (no login family) are an administrator's own.
    if claims.fam.is_some()
        && !claims.mfa
        && crate::ops::totp::required_for(&st.app.cfg.config, user.role)
    {
        return Err(ApiError::unauthorized_as(
            "totp_required",
            "this login was made without a second factor, which your role now needs: log in again with a code from your authenticator",
        ));
    }
    Ok(Caller {
        user,
        claims: Some(claims),
        key: None,
    })
}

/// A personal API key: live (a read on every request, so revocation, a
/// role change or disabling the owner take effect at once), then its scope
/// for this request, then its rate.
fn key_caller(parts: &Parts, st: &Arc<ServerState>, token: &str) -> Result<Caller, ApiError> {
    // Off the async worker's duty while SQLite reads (see `token_caller`).
    let (key, user) = tokio::task::block_in_place(|| st.key_user(token))
        .map_err(ApiError::from)?
        .map_err(|r| ApiError::unauthorized(r.message()))?;
    key_allows(&parts.method, parts.uri.path(), key.scope).map_err(ApiError::forbidden)?;
    let now = std::time::Instant::now();
    if let Err(wait) = st.key_use.admit(&key.id, key.rpm, now) {
        return Err(ApiError::throttled(
            format!(
                "this API key allows {} requests per minute; retry in {wait} s",
                key.rpm.unwrap_or(0)
            ),
            wait,
        ));
    }
    if st.key_use.touch_due(&key.id, now) {
        let (st2, id) = (st.clone(), key.id.clone());
        // Off the request's path; losing one such write only makes
        // `last used` a minute older.
        tokio::task::spawn_blocking(move || {
            let _ = st2.app.users().and_then(|u| u.key_touch(&id));
        });
    }
    Ok(Caller {
        user,
        claims: None,
        key: Some(key),
    })
}

/// Whether the request says its body is JSON (`application/json`, any
/// parameters, any case).
pub fn is_json(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            let v = v.split(';').next().unwrap_or("").trim();
            v.eq_ignore_ascii_case("application/json")
        })
}

/// A JSON body: `Content-Type: application/json`, at most the body limit,
/// unknown fields refused where the type says so.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let ct_ok = is_json(req.headers());
        if !ct_ok {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "expected a JSON body with Content-Type: application/json",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            let status = e.status();
            if status == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    status,
                    format!(
                        "the request body is larger than {} KiB",
                        super::BODY_LIMIT / 1024
                    ),
                )
            } else {
                ApiError::bad_request(format!("cannot read the request body: {}", e.body_text()))
            }
        })?;
        parse_json(&bytes).map(ApiJson)
    }
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> ApiResult<T> {
    serde_json::from_slice(bytes).map_err(|e| {
        ApiError::bad_request(format!(
            "invalid JSON body: {}",
            crate::output::clip(&e.to_string(), 200)
        ))
    })
}

/// Query parameters; malformed ones are a JSON 400.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned> ApiQuery<T> {
    pub fn from_uri(uri: &axum::http::Uri) -> ApiResult<Self> {
        axum::extract::Query::<T>::try_from_uri(uri)
            .map(|axum::extract::Query(v)| ApiQuery(v))
            .map_err(|e| {
                ApiError::bad_request(format!(
                    "invalid query parameters: {}",
                    crate::output::clip(&e.body_text(), 200)
                ))
            })
    }
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        ApiQuery::from_uri(&parts.uri)
    }
}

/// One query parameter, read leniently (the others may be malformed): for
/// authorization decisions that must come before validation.
pub fn query_param(uri: &axum::http::Uri, name: &str) -> Option<String> {
    let axum::extract::Query(pairs) =
        axum::extract::Query::<Vec<(String, String)>>::try_from_uri(uri).ok()?;
    pairs.into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}
