//! `/api/keys*`: personal API keys over HTTP, the same library calls as
//! `user key create|list|revoke`. Owners manage their own keys; admins list
//! and revoke anyone's. Making a key takes a login (API keys may not make
//! keys: the extractor refuses them every method but reads and chat).

use super::errors::{ApiError, ApiResult};
use super::extract::{query_param, ApiJson, LoginCaller, Reader};
use super::sessions::blocking_json;
use super::state::{Action, ServerState};
use crate::ops::keys::{self, KeyOptions};
use crate::store::users::{KeyApprovals, KeyScope};
use axum::extract::{Path, State};
use axum::http::Uri;
use axum::response::Response;
use serde::Deserialize;
use std::sync::Arc;

/// `GET /api/keys[?user=NAME|all=true][&limit=N&offset=M]`: the caller's
/// keys, newest first, a page at a time (`limit` 1-500, default 100);
/// admins may name another user, or ask for everyone's.
pub async fn list(
    State(st): State<Arc<ServerState>>,
    Reader(caller): Reader,
    uri: Uri,
) -> ApiResult<Response> {
    let user = query_param(&uri, "user");
    let all = query_param(&uri, "all").is_some_and(|v| v == "true" || v == "1");
    let admin = caller.may.manage_users;
    if (all || user.as_deref().is_some_and(|u| u != caller.user.username)) && !admin {
        return Err(ApiError::forbidden(format!(
            "your role ({}) may list only your own keys",
            caller.user.role
        )));
    }
    let limit = number(&uri, "limit", 1..=keys::LIST_MAX, keys::LIST_DEFAULT)?;
    let offset = number(&uri, "offset", 0..=1_000_000, 0)?;
    let who = if all {
        None
    } else {
        Some(user.unwrap_or_else(|| caller.user.username.clone()))
    };
    blocking_json(move || keys::list(&st.app, who.as_deref(), Some((limit, offset)))).await
}

/// The integer query parameter `name`, within `range`; `default` when absent.
fn number(
    uri: &Uri,
    name: &str,
    range: std::ops::RangeInclusive<i64>,
    default: i64,
) -> ApiResult<i64> {
    let Some(v) = query_param(uri, name) else {
        return Ok(default);
    };
    v.parse::<i64>()
        .ok()
        .filter(|n| range.contains(n))
        .ok_or_else(|| {
            ApiError::bad_request(format!("{name} must be {}-{}", range.start(), range.end()))
        })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    #[serde(default)]
    label: String,
    /// A duration like `90d`; absent or `never`: no expiry.
    expires: Option<String>,
    scope: Option<String>,
    toolsets: Option<Vec<String>>,
    approvals: Option<String>,
    rpm: Option<u32>,
}

/// `POST /api/keys`: a key for the caller, shown once in the answer.
pub async fn create(
    State(st): State<Arc<ServerState>>,
    LoginCaller(caller): LoginCaller,
    ApiJson(b): ApiJson<CreateBody>,
) -> ApiResult<Response> {
    let scope = match b.scope.as_deref() {
        None => None,
        Some(s) => Some(
            KeyScope::parse(s)
                .ok_or_else(|| ApiError::bad_request("scope must be chat or read"))?,
        ),
    };
    let approvals = match b.approvals.as_deref() {
        None => None,
        Some(s) => Some(
            KeyApprovals::parse(s)
                .ok_or_else(|| ApiError::bad_request("approvals must be deny or wait"))?,
        ),
    };
    let expires_in = match b.expires.as_deref() {
        Some(s) => keys::parse_expires(s)?,
        None => None,
    };
    // A burst limit here, the hourly one (shared with the CLI) in users.db.
    st.admit_action(&caller.user.id, Action::KeyCreate).await?;
    let o = KeyOptions {
        label: b.label,
        expires_in,
        scope,
        toolsets: b.toolsets,
        approvals,
        rpm: b.rpm,
    };
    blocking_json(move || keys::create(&st.app_as(caller.actor()), &caller.user.username, &o)).await
}

/// `DELETE /api/keys/{id}`: the owner's or (admins) anyone's; another
/// user's key answers 404 to non-admins, as if it did not exist.
pub async fn revoke(
    State(st): State<Arc<ServerState>>,
    LoginCaller(caller): LoginCaller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    st.admit_action(&caller.user.id, Action::KeyRevoke).await?;
    let owner = (!caller.may.manage_users).then(|| caller.user.id.clone());
    blocking_json(move || {
        let (k, changed) = keys::revoke(&st.app_as(caller.actor()), &id, owner.as_deref())?;
        Ok(serde_json::json!({"key": k, "changed": changed}))
    })
    .await
}
