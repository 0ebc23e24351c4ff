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
    /// What this caller may do ([`Permissions::of`] its role and key).
    pub may: Permissions,
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

    /// The guards' one rule: a login an admin reset may only pass where
    /// `pending` says so; then the permission, explained by what is
    /// missing (the key or the role).
    fn admit(
        &self,
        perm: impl Fn(&Permissions) -> bool,
        what: &str,
        pending: bool,
    ) -> ApiResult<()> {
        if self.user.must_change_password && self.key.is_none() && !pending {
            return Err(ApiError::forbidden(
                "an administrator reset your password: choose a new one first (POST /api/me/password)",
            )
            .with_code("password_change_required"));
        }
        if perm(&self.may) {
            return Ok(());
        }
        match &self.key {
            // The role would allow it with a login: the key is what is missing.
            Some(k) if perm(&Permissions::of(self.user.role, None)) => {
                let chat_would = perm(&Permissions::of(self.user.role, Some(KeyScope::Chat)));
                Err(ApiError::forbidden(
                    if k.scope == KeyScope::Read && chat_would {
                        "this API key is read-only (scope read): it may not chat".to_string()
                    } else {
                        format!("API keys may read and chat only; to {what} you need a login (access token)")
                    },
                ))
            }
            _ => self.require(false, what),
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

/// What one caller may do, worked out once from the role and the
/// credential: the guards below decide with it and `GET /api/me` shows it,
/// so the dashboard's buttons and the server's answers cannot disagree.
/// A personal API key narrows its role: it reads, and with scope `chat` it
/// chats; it never changes accounts, makes keys or answers approvals (the
/// point of `--approvals wait` is that a person with a login decides).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Permissions {
    /// Run chat turns (a role that chats, with a login or a `chat` key).
    pub chat: bool,
    /// Read every operator session, not only one's own.
    pub read_all_sessions: bool,
    /// Read the audit log.
    pub audit: bool,
    /// List accounts (admins, with a login or a key).
    pub read_users: bool,
    /// Create, change, reset and delete accounts (admins, with a login).
    pub manage_users: bool,
    /// See the approval requests of one's sessions (a role that chats).
    pub see_approvals: bool,
    /// Answer them (a role that chats, with a login).
    pub answer_approvals: bool,
    /// Rename and end sessions (own ones; an admin's: any), with a login.
    pub edit_sessions: bool,
    /// Change what belongs to the account: password, TOTP, keys, session
    /// titles and ends (a login, not a key).
    pub own_account: bool,
}

impl Permissions {
    /// `key`: the scope of the personal API key used; `None` for a login.
    pub fn of(role: Role, key: Option<KeyScope>) -> Self {
        let login = key.is_none();
        let chat_key = key.is_none_or(|k| k == KeyScope::Chat);
        Permissions {
            chat: role.can_chat() && chat_key,
            read_all_sessions: role.can_audit(),
            audit: role.can_audit(),
            read_users: role.can_manage_users(),
            manage_users: role.can_manage_users() && login,
            see_approvals: role.can_chat(),
            answer_approvals: role.can_chat() && login,
            edit_sessions: role.can_chat() && login,
            own_account: login,
        }
    }
}

/// Guards: a handler that takes one of these says in its signature who may
/// call it, and the 401/403 comes before any other input is looked at.
/// Each names the [`Permissions`] field it needs and whether a login whose
/// password an admin reset may pass (only the routes that let it choose a
/// new one, see who it is, or log out).
macro_rules! guard {
    ($(#[$doc:meta])* $name:ident, $perm:expr, $what:literal, pending: $pending:literal) => {
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
                c.admit($perm, $what, $pending)?;
                Ok($name(c))
            }
        }
    };
}

guard!(
    /// Anyone signed in, with a login or a key of either scope: reads whose
    /// answer the domain layer narrows to what the caller owns.
    Reader,
    |_: &Permissions| true,
    "",
    pending: false
);
guard!(
    /// `GET /api/me`: also a login that must choose a new password first.
    MeReader,
    |_: &Permissions| true,
    "",
    pending: true
);
guard!(
    /// A login (not a key) that may change what belongs to its account.
    LoginCaller,
    |p: &Permissions| p.own_account,
    "change the account (password, TOTP, keys, sessions)",
    pending: false
);
guard!(
    /// A login, even one that must choose a new password first: choosing
    /// it, and logging out.
    PasswordChanger,
    |p: &Permissions| p.own_account,
    "change the password or log out",
    pending: true
);
guard!(
    /// Admins with a login: manage accounts.
    AdminCaller,
    |p: &Permissions| p.manage_users,
    "manage users",
    pending: false
);
guard!(
    /// Admins, with a login or a key: list accounts.
    AdminReader,
    |p: &Permissions| p.read_users,
    "list users",
    pending: false
);
guard!(
    /// Admins and auditors: the audit log and every operator session.
    AuditorCaller,
    |p: &Permissions| p.audit,
    "read the audit log",
    pending: false
);
guard!(
    /// Admins and users, with a login or a `chat` key: chat turns.
    ChatCaller,
    |p: &Permissions| p.chat,
    "chat",
    pending: false
);
guard!(
    /// Admins and users: the approval requests of their sessions.
    ApprovalsReader,
    |p: &Permissions| p.see_approvals,
    "see approval requests",
    pending: false
);
guard!(
    /// Admins and users with a login: rename or end a session.
    SessionEditor,
    |p: &Permissions| p.edit_sessions,
    "rename or end sessions",
    pending: false
);
guard!(
    /// Admins and users with a login: answer an approval request.
    Answerer,
    |p: &Permissions| p.answer_approvals,
    "answer approval requests",
    pending: false
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
            key_caller(st, token)?
        } else {
            token_caller(st, token)?
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
    let user =
        tokio::task::block_in_place(|| crate::store::pg::may_block(|| st.token_user(&claims)))
            .map_err(ApiError::from)?;
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
        may: Permissions::of(user.role, None),
        user,
        claims: Some(claims),
        key: None,
    })
}

/// A personal API key: live (a read on every request, so revocation, a
/// role change or disabling the owner take effect at once), then its rate;
/// what it may do is the route's guard's to say ([`Permissions`]).
fn key_caller(st: &Arc<ServerState>, token: &str) -> Result<Caller, ApiError> {
    // Off the async worker's duty while SQLite reads (see `token_caller`).
    let (key, user) =
        tokio::task::block_in_place(|| crate::store::pg::may_block(|| st.key_user(token)))
            .map_err(ApiError::from)?
            .map_err(|r| ApiError::unauthorized(r.message()))?;
    let now = std::time::Instant::now();
    let admitted =
        tokio::task::block_in_place(|| crate::store::pg::may_block(|| st.admit_key(&key, now)))
            .map_err(ApiError::from)?;
    if let Err(wait) = admitted {
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
        may: Permissions::of(user.role, Some(key.scope)),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Keys narrow roles, never widen them; a login has its role's all.
    #[test]
    fn a_key_narrows_its_role() {
        for role in [Role::Admin, Role::Auditor, Role::User, Role::Viewer] {
            let login = Permissions::of(role, None);
            assert!(login.own_account && login.manage_users == (role == Role::Admin));
            assert_eq!(login.chat, role.can_chat());
            for scope in [KeyScope::Read, KeyScope::Chat] {
                let k = Permissions::of(role, Some(scope));
                assert!(!k.own_account && !k.manage_users && !k.answer_approvals);
                assert!(!k.edit_sessions);
                assert_eq!(k.chat, role.can_chat() && scope == KeyScope::Chat);
                assert_eq!((k.audit, k.read_users), (login.audit, login.read_users));
            }
        }
    }
}
