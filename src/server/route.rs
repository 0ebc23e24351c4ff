//! Requests about another host's session go to that host (issue 20): each
//! host's sessions live in its own state.db, so a chat on a session that
//! another host of the fleet published — or a read of its messages — is
//! sent to that host's `serve` (the URL it announced, `store.peer_url`) and
//! its answer, a stream included, comes back as it is.
//!
//! The caller is authenticated here first (the route's guard), and again
//! by the owning host, which shares the accounts and the token secret: it
//! alone decides what the caller may see or do in its session.

use super::errors::{ApiError, ApiResult};
use super::state::{blocking, ServerState};
use crate::error::{Error, Kind};
use axum::http::{header, HeaderMap, HeaderName, Method};
use axum::response::Response;
use std::sync::Arc;

/// Marks a routed request, so a host that does not hold the session either
/// never routes it again.
pub const ROUTED_FROM: HeaderName = HeaderName::from_static("x-hermes-operator-routed-from");
/// Which host answered a routed request.
pub const ANSWERED_BY: HeaderName = HeaderName::from_static("x-hermes-operator-host");

/// Headers of the request the owning host needs, and of its answer the
/// client needs.
const REQUEST_HEADERS: [HeaderName; 3] =
    [header::AUTHORIZATION, header::ACCEPT, header::CONTENT_TYPE];
const RESPONSE_HEADERS: [HeaderName; 3] = [
    header::CONTENT_TYPE,
    header::CACHE_CONTROL,
    HeaderName::from_static("x-accel-buffering"),
];

/// The owning host's answer to this request when `session_id` lives on
/// another host of the fleet; `None`: it is this host's to answer.
pub async fn to_owner(
    st: &Arc<ServerState>,
    session_id: &str,
    headers: &HeaderMap,
    method: Method,
    path_and_query: &str,
    body: Option<Vec<u8>>,
) -> ApiResult<Option<Response>> {
    // Only operator sessions are published (and their ids are safe in a
    // path as they are).
    if !st.app.in_fleet()
        || headers.contains_key(&ROUTED_FROM)
        || !crate::ops::hooks::is_operator_session_id(session_id)
    {
        return Ok(None);
    }
    let (st2, id) = (st.clone(), session_id.to_string());
    let owner = blocking(move || {
        st2.with_fleet_db(|pg| crate::ops::fleet::session_host(&st2.app, pg, &id))
    })
    .await?;
    let Some((host, url)) = owner else {
        return Ok(None);
    };
    let target = format!("{}{path_and_query}", url.trim_end_matches('/'));
    let mut rb = st.peer_client()?.request(method, &target);
    for h in REQUEST_HEADERS {
        if let Some(v) = headers.get(&h) {
            rb = rb.header(h, v);
        }
    }
    rb = rb.header(ROUTED_FROM, st.fleet_host.as_deref().unwrap_or(""));
    if let Some(b) = body {
        rb = rb.body(b);
    }
    let answer = rb.send().await.map_err(|e| {
        ApiError::from(
            Error::new(
                Kind::Unavailable,
                format!("host {host}, which holds this session, does not answer at {url}"),
            )
            .hint(format!("check that serve runs there ({e})")),
        )
    })?;
    let mut r = Response::builder().status(answer.status().as_u16());
    for h in RESPONSE_HEADERS {
        if let Some(v) = answer.headers().get(&h) {
            r = r.header(h, v);
        }
    }
    r = r.header(ANSWERED_BY, host);
    r.body(axum::body::Body::from_stream(answer.bytes_stream()))
        .map(Some)
        .map_err(|e| ApiError::from(Error::internal(e.to_string())))
}
