//! `/api/audit/*` (admins and auditors): the same reports and checks as
//! `audit daily|user|replay|verify --json`.

use super::errors::ApiResult;
use super::extract::{ApiQuery, AuditorCaller};
use super::sessions::blocking_json;
use super::state::ServerState;
use axum::extract::{Path, State};
use axum::response::Response;
use serde::Deserialize;
use std::sync::Arc;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DailyParams {
    /// YYYY-MM-DD (default: today in `tz`).
    date: Option<String>,
    /// IANA time zone (default UTC).
    tz: Option<String>,
}

/// `GET /api/audit/daily-summary?date&tz`.
pub async fn daily(
    State(st): State<Arc<ServerState>>,
    _caller: AuditorCaller,
    ApiQuery(p): ApiQuery<DailyParams>,
) -> ApiResult<Response> {
    let (date, tz) =
        crate::ops::audit::reports::parse_day(p.date.as_deref(), p.tz.as_deref().unwrap_or("UTC"))?;
    blocking_json(move || crate::ops::audit::reports::daily(&st.app, date, &tz)).await
}

/// `GET /api/audit/user/{username}`.
pub async fn user(
    State(st): State<Arc<ServerState>>,
    _caller: AuditorCaller,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    blocking_json(move || crate::ops::audit::reports::user_report(&st.app, &name)).await
}

/// `GET /api/audit/replay/{session_id}`: the timeline with integrity status.
pub async fn replay(
    State(st): State<Arc<ServerState>>,
    _caller: AuditorCaller,
    Path(id): Path<String>,
    uri: axum::http::Uri,
) -> ApiResult<Response> {
    // Parsed after the role guard, as every query here.
    let super::extract::ApiQuery(q) = super::extract::ApiQuery::<ReplayQuery>::from_uri(&uri)?;
    match q.host {
        None => blocking_json(move || crate::ops::audit::integrity::replay(&st.app, &id)).await,
        // Another host's session, from the fleet's log (store.url).
        Some(host) => {
            blocking_json(move || {
                crate::store::pg::check_host(&host)?;
                st.with_fleet_db(|pg| crate::ops::audit::fleet::replay(pg, &id, Some(&host)))
            })
            .await
        }
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayQuery {
    /// A fleet host's name: its copy of the session in the fleet's log.
    host: Option<String>,
}

/// `GET /api/audit/verify`: the whole chain and the local checkpoints. A
/// log that does not verify is still a 200 with `ok: false` and the problem.
pub async fn verify(
    State(st): State<Arc<ServerState>>,
    _caller: AuditorCaller,
) -> ApiResult<Response> {
    blocking_json(move || crate::ops::audit::integrity::verify_home(&st.app, &[])).await
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    #[serde(rename = "type")]
    kind: Option<String>,
    user: Option<String>,
    session: Option<String>,
    provider: Option<String>,
    subject: Option<String>,
    since: Option<String>,
    until: Option<String>,
    after: Option<i64>,
    limit: Option<i64>,
    offset: Option<i64>,
}

/// `GET /api/audit/events?type&user&session&provider&subject&since&until&after&limit&offset`
/// (admin, auditor): the event-log browser, newest first.
pub async fn events(
    State(st): State<Arc<ServerState>>,
    _caller: AuditorCaller,
    uri: axum::http::Uri,
) -> ApiResult<Response> {
    // Parsed after the role guard: a refused caller never sees field names.
    let super::extract::ApiQuery(q) = super::extract::ApiQuery::<EventsQuery>::from_uri(&uri)?;
    let b = crate::ops::audit::browse::Browse {
        kind: q.kind,
        username: q.user,
        session_id: q.session,
        provider: q.provider,
        subject: q.subject,
        since: q.since,
        until: q.until,
        after: q.after,
        limit: q.limit.unwrap_or(50),
        offset: q.offset.unwrap_or(0),
    };
    blocking_json(move || crate::ops::audit::browse::browse(&st.app, &b)).await
}
