//! `GET /api/usage` (anyone signed in): spend and tokens over time, from
//! [`crate::ops::audit::usage`]. Admins and auditors see everyone's usage
//! (and may narrow it with `user`); everyone else sees only their own: a
//! `user` naming someone else is a 403, as on `GET /api/sessions`. A
//! personal API key reads what its owner's role reads (keys may read).

use super::errors::{ApiError, ApiResult};
use super::extract::{query_param, ApiQuery, Reader};
use super::sessions::blocking_json;
use super::state::ServerState;
use crate::ops::audit::usage;
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use std::sync::Arc;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageParams {
    /// YYYY-MM-DD, the first local day (default: 7 days before `until`).
    since: Option<String>,
    /// YYYY-MM-DD, the first local day NOT included (default: tomorrow).
    until: Option<String>,
    /// IANA name or ±HH:MM (default UTC).
    tz: Option<String>,
    /// user | key | model (default user).
    by: Option<String>,
    /// Username: only their usage.
    user: Option<String>,
}

/// `GET /api/usage?since&until&tz&by&user`.
pub async fn usage(
    State(st): State<Arc<ServerState>>,
    Reader(caller): Reader,
    uri: axum::http::Uri,
) -> ApiResult<Response> {
    let everyone = caller.may.read_all_sessions;
    // Authorization before validation (as `GET /api/sessions`): a refused
    // caller gets its 403 before any other parameter is looked at.
    if !everyone {
        if let Some(u) = query_param(&uri, "user") {
            if !u.eq_ignore_ascii_case(&caller.user.username) {
                return Err(ApiError::forbidden(format!(
                    "your role ({}) may only see its own usage",
                    caller.role()
                )));
            }
        }
    }
    let ApiQuery(p) = ApiQuery::<UsageParams>::from_uri(&uri)?;
    let only = if everyone { p.user.clone() } else { None };
    let own_id = (!everyone).then(|| caller.user.id.clone());
    let q = usage::parse_query(
        p.since.as_deref(),
        p.until.as_deref(),
        p.tz.as_deref().unwrap_or("UTC"),
        p.by.as_deref().unwrap_or("user"),
        own_id,
    )?;
    blocking_json(move || {
        let mut q = q;
        if let Some(name) = only {
            q.user_id = Some(st.app.users_ro()?.get(&name)?.id);
        }
        usage::usage(&st.app, &q)
    })
    .await
}
