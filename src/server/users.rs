//! `/api/users*` (admins): the same library calls as `user list|role|
//! disable|enable|delete`, audited with the admin as actor.

use super::auth::parse_role;
use super::errors::{ApiError, ApiResult};
use super::extract::{AdminCaller, AdminReader, ApiJson};
use super::sessions::blocking_json;
use super::state::ServerState;
use crate::ops::accounts;
use axum::extract::{Path, State};
use axum::response::Response;
use serde::Deserialize;
use std::sync::Arc;

/// `GET /api/users`.
pub async fn list(State(st): State<Arc<ServerState>>, _caller: AdminReader) -> ApiResult<Response> {
    blocking_json(move || st.app.users_ro()?.list()).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Patch {
    role: Option<String>,
    disabled: Option<bool>,
}

/// `PATCH /api/users/{username}` `{role?, disabled?}`: both or neither (one
/// transaction); a role change or disabling revokes the user's tokens.
pub async fn patch(
    State(st): State<Arc<ServerState>>,
    AdminCaller(caller): AdminCaller,
    Path(name): Path<String>,
    ApiJson(p): ApiJson<Patch>,
) -> ApiResult<Response> {
    let role = p.role.as_deref().map(parse_role).transpose()?;
    if role.is_none() && p.disabled.is_none() {
        return Err(ApiError::bad_request(
            "nothing to change: send role and/or disabled",
        ));
    }
    blocking_json(move || {
        accounts::update_user(&st.app_as(caller.actor()), &name, role, p.disabled)
    })
    .await
}

/// `DELETE /api/users/{username}`.
pub async fn delete(
    State(st): State<Arc<ServerState>>,
    AdminCaller(caller): AdminCaller,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    blocking_json(move || {
        let u = accounts::delete_user(&st.app_as(caller.actor()), &name)?;
        Ok(serde_json::json!({"deleted": u}))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResetBody {
    new_password: crate::server::auth::Secret,
}

/// `POST /api/users/{username}/password` `{new_password}` (admins): reset
/// an account's password; every token of it ends, its personal API keys are
/// revoked (the answer's `keys_revoked` says how many), and its next login
/// must choose a new password before anything else.
pub async fn reset_password(
    State(st): State<Arc<ServerState>>,
    AdminCaller(caller): AdminCaller,
    Path(name): Path<String>,
    ApiJson(b): ApiJson<ResetBody>,
) -> ApiResult<Response> {
    let st2 = st.clone();
    let _slot = st.argon2_slot().await?;
    blocking_json(move || {
        accounts::set_password(&st2.app_as(caller.actor()), &name, &b.new_password, true)
    })
    .await
}
