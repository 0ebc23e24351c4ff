//! `/api/sessions*` and `/api/search`: thin wrappers over
//! [`crate::ops::sessions`] with the caller's [`Scope`](crate::ops::sessions::Scope).

use super::errors::{ApiError, ApiResult};
use super::extract::{query_param, ApiJson, ApiQuery, Reader, SessionEditor};
use super::route;
use super::state::{blocking, Action, ServerState};
use crate::ops::sessions::{self, ListOptions};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::sync::Arc;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    limit: Option<i64>,
    offset: Option<i64>,
    /// Username (admins and auditors: anyone; others: only themselves).
    user: Option<String>,
    /// YYYY-MM-DD, RFC 3339 or a duration like 7d.
    since: Option<String>,
    /// Every host's operator sessions from the fleet's database (each row
    /// with its `host`); the same role rules.
    #[serde(default)]
    all_hosts: bool,
}

pub const MAX_LIST: i64 = 500;

/// Serialize on the blocking thread too (50 sessions ≈ 40 KB of JSON).
fn json_bytes<T: serde::Serialize>(v: &T) -> crate::Result<Vec<u8>> {
    Ok(serde_json::to_vec(v)?)
}

pub(crate) fn json_response(bytes: impl Into<axum::body::Body>) -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        bytes.into(),
    )
        .into_response()
}

/// `GET /api/sessions?limit&offset&user&since`: newest first.
pub async fn list(
    State(st): State<Arc<ServerState>>,
    Reader(caller): Reader,
    uri: axum::http::Uri,
) -> ApiResult<Response> {
    let can_all = caller.may.read_all_sessions;
    // Authorization before validation: the one parameter that needs a role
    // is looked at first, leniently, so a refused caller gets its 403 before
    // the other parameters are checked (and never learns them from a 400).
    if !can_all {
        if let Some(u) = query_param(&uri, "user") {
            if !u.eq_ignore_ascii_case(&caller.user.username) {
                return Err(ApiError::forbidden(format!(
                    "your role ({}) may only list its own sessions",
                    caller.role()
                )));
            }
        }
    }
    let ApiQuery(p) = ApiQuery::<ListParams>::from_uri(&uri)?;
    let limit = p.limit.unwrap_or(50);
    if !(1..=MAX_LIST).contains(&limit) {
        return Err(ApiError::bad_request(format!("limit must be 1-{MAX_LIST}")));
    }
    let offset = p.offset.unwrap_or(0);
    if !(0..=1_000_000).contains(&offset) {
        return Err(ApiError::bad_request("offset must be 0-1000000"));
    }
    let since = p
        .since
        .as_deref()
        .map(crate::timespec::parse_since)
        .transpose()?;
    if p.all_hosts {
        // Those who may read every session see every host's; others their own.
        let user = if can_all {
            p.user.clone()
        } else {
            Some(caller.user.username.clone())
        };
        let bytes = blocking(move || {
            let rows = st.with_fleet_db(|pg| {
                crate::ops::fleet::list_all_hosts(pg, user.as_deref(), since, limit, offset)
            })?;
            json_bytes(&rows)
        })
        .await?;
        return Ok(json_response(bytes));
    }
    let scope = caller.scope();
    // The hot path (benches/load.py): a cached body while state.db and
    // users.db are unchanged; else pooled handles (no open, no schema probe
    // per request), off the async threads.
    let key = format!("list|{scope:?}|{:?}|{since:?}|{limit}|{offset}", p.user);
    let bytes = blocking(move || {
        let home = st.app.home.clone();
        // In a fleet the accounts change on any replica: this replica
        // hears of each change (server/cache.rs FleetChanges).
        let changes = st.fleet_changes.clone();
        let fleet_counter = move || changes.current();
        let fleet = st
            .app
            .in_fleet()
            .then_some(&fleet_counter as &crate::server::cache::FleetCounter);
        st.read_cache.get_or_compute_at(&home, fleet, key, || {
            st.with_read_dbs(|db, users| {
                let user_id = match &p.user {
                    Some(u) if can_all => Some(users.get(u)?.id),
                    Some(_) => Some(caller.user.id.clone()),
                    None => None,
                };
                let rows = sessions::list_in(
                    db,
                    &sessions::usernames_in(users)?,
                    &scope,
                    &ListOptions {
                        user_id,
                        since,
                        limit,
                        offset,
                    },
                )?;
                json_bytes(&rows)
            })
        })
    })
    .await?;
    Ok(json_response(bytes))
}

/// `GET /api/sessions/{id}`: one session (no messages).
pub async fn show(
    State(st): State<Arc<ServerState>>,
    Reader(caller): Reader,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let path = format!("/api/sessions/{id}");
    if let Some(r) = route::to_owner(&st, &id, &headers, Method::GET, &path, None).await? {
        return Ok(r);
    }
    let scope = caller.scope();
    let bytes = blocking(move || json_bytes(&sessions::get(&st.app, &scope, &id)?)).await?;
    Ok(json_response(bytes))
}

/// `GET /api/sessions/{id}/messages`: the session and its messages in
/// Hermes' replay order.
pub async fn messages(
    State(st): State<Arc<ServerState>>,
    Reader(caller): Reader,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let path = format!("/api/sessions/{id}/messages");
    if let Some(r) = route::to_owner(&st, &id, &headers, Method::GET, &path, None).await? {
        return Ok(r);
    }
    let scope = caller.scope();
    let bytes = blocking(move || json_bytes(&sessions::show(&st.app, &scope, &id)?)).await?;
    Ok(json_response(bytes))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchParams {
    q: String,
    limit: Option<i64>,
}

/// `GET /api/search?q=&limit=`: full-text search in readable sessions.
pub async fn search(
    State(st): State<Arc<ServerState>>,
    Reader(caller): Reader,
    ApiQuery(p): ApiQuery<SearchParams>,
) -> ApiResult<Response> {
    let limit = p.limit.unwrap_or(50);
    if !(1..=MAX_LIST).contains(&limit) {
        return Err(ApiError::bad_request(format!("limit must be 1-{MAX_LIST}")));
    }
    let scope = caller.scope();
    let bytes = blocking(move || {
        let found = sessions::search(&st.app, &scope, &p.q, None, limit)?;
        let titled = sessions::search_titles(&st.app, &scope, &p.q, None, limit)?;
        json_bytes(&serde_json::json!({
            "query": p.q,
            "sessions": titled,
            "hits": found.hits,
            "scanned": found.scanned,
            "scan_truncated": found.scan_truncated,
        }))
    })
    .await?;
    Ok(json_response(bytes))
}

/// JSON of any serializable value from a blocking closure.
pub(crate) async fn blocking_json<T, F>(f: F) -> ApiResult<Response>
where
    T: serde::Serialize,
    F: FnOnce() -> crate::Result<T> + Send + 'static,
{
    let bytes = blocking(move || json_bytes(&f()?)).await?;
    Ok(json_response(bytes))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TitleBody {
    title: String,
}

/// `PATCH /api/sessions/{id}` `{title}` (the owner, or an admin): rename
/// (an empty title clears it), as `session title`.
pub async fn rename(
    State(st): State<Arc<ServerState>>,
    SessionEditor(caller): SessionEditor,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<TitleBody>,
) -> ApiResult<Response> {
    st.admit_action(&caller.user.id, Action::SessionChange)
        .await?;
    blocking_json(move || {
        sessions::check_changeable_by(&st.app, &caller.scope(), &caller.user, &id)?;
        sessions::set_title(&st.app_as(caller.actor()), &id, &b.title)
    })
    .await
}

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct EndBody {
    reason: Option<String>,
}

/// `POST /api/sessions/{id}/end` `{reason?}` (the owner, or an admin), as `session end`.
pub async fn end(
    State(st): State<Arc<ServerState>>,
    SessionEditor(caller): SessionEditor,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<EndBody>,
) -> ApiResult<Response> {
    st.admit_action(&caller.user.id, Action::SessionChange)
        .await?;
    blocking_json(move || {
        sessions::check_changeable_by(&st.app, &caller.scope(), &caller.user, &id)?;
        let reason = b
            .reason
            .unwrap_or_else(|| sessions::DEFAULT_END_REASON.to_string());
        sessions::end(&st.app_as(caller.actor()), &id, &reason)
    })
    .await
}

/// `GET /api/sessions/{id}/export?format=json|md` (whoever may read it), as
/// `session export`: a download.
pub async fn export(
    State(st): State<Arc<ServerState>>,
    Reader(caller): Reader,
    Path(id): Path<String>,
    uri: axum::http::Uri,
) -> ApiResult<Response> {
    let format = match query_param(&uri, "format").as_deref() {
        None | Some("json") => sessions::ExportFormat::Json,
        Some("md") => sessions::ExportFormat::Md,
        Some(_) => return Err(ApiError::bad_request("format must be json or md")),
    };
    let scope = caller.scope();
    let id2 = id.clone();
    let text = blocking(move || sessions::export(&st.app, &scope, &id2, format)).await?;
    let (ct, ext) = match format {
        sessions::ExportFormat::Json => ("application/json", "json"),
        sessions::ExportFormat::Md => ("text/markdown; charset=utf-8", "md"),
    };
    // The id is validated (op_ + hex, or Hermes' plain ids): safe in a header.
    let disposition = format!(
        "attachment; filename=\"{}.{ext}\"",
        id.replace(['"', '\\'], "_")
    );
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, ct.to_string()),
            (axum::http::header::CONTENT_DISPOSITION, disposition),
        ],
        text,
    )
        .into_response())
}
