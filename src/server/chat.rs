//! `POST /api/chat` (JSON, or SSE with `Accept: text/event-stream`) and
//! `POST /api/sessions/{id}/approval`. The turn is [`crate::ops::chat::run_turn`],
//! run as its own task: a client that goes away does not cut a turn short
//! (its events are still recorded; a pending approval is denied at the
//! timeout).

use super::errors::{ApiError, ApiResult};
use super::extract::{Answerer, ApiJson, ApprovalsReader, Caller, ChatCaller};
use super::state::{blocking, ServerState, APPROVAL_WAIT};
use crate::error::{Error, Kind};
use crate::ops::chat::{
    run_turn, ApprovePolicy, Approver, Channel, OwnThread, PolicyApprover, TurnEvent, TurnOutcome,
    TurnRequest,
};
use crate::store::users::KeyApprovals;
use axum::extract::{Extension, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

#[derive(Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ChatBody {
    message: String,
    session_id: Option<String>,
    model: Option<String>,
}

fn wants_sse(h: &HeaderMap) -> bool {
    h.get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"))
}

fn event_type(ev: &TurnEvent) -> &'static str {
    match ev {
        TurnEvent::Session { .. } => "session",
        TurnEvent::RunStarted { .. } => "run_started",
        TurnEvent::Delta { .. } => "delta",
        TurnEvent::ToolStarted { .. } => "tool_started",
        TurnEvent::ToolCompleted { .. } => "tool_completed",
        TurnEvent::ApprovalRequest(_) => "approval_request",
        TurnEvent::ApprovalDecision { .. } => "approval_decision",
        TurnEvent::CostAlert { .. } => "cost_alert",
        TurnEvent::Done(_) => "done",
        TurnEvent::Error { .. } => "error",
    }
}

/// Releases the turn's claims (session, the account's turn, chat slot)
/// however the task ends.
struct TurnGuard {
    st: Arc<ServerState>,
    session: Option<String>,
    user: String,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Drop for TurnGuard {
    fn drop(&mut self) {
        if let Some(s) = &self.session {
            self.st.runs.release(s);
        }
        self.st.user_turns.release(&self.user);
    }
}

/// `POST /api/chat`.
pub async fn chat(
    State(st): State<Arc<ServerState>>,
    // Authorization first (the guard): nothing reaches Hermes for a role
    // that may not chat.
    ChatCaller(caller): ChatCaller,
    Extension(rid): Extension<super::middleware::RequestId>,
    headers: HeaderMap,
    ApiJson(b): ApiJson<ChatBody>,
) -> ApiResult<Response> {
    // Another host's session: its host runs the turn.
    if let Some(id) = &b.session_id {
        let body =
            serde_json::to_vec(&b).map_err(|e| ApiError::from(Error::internal(e.to_string())))?;
        let routed =
            super::route::to_owner(&st, id, &headers, Method::POST, "/api/chat", Some(body))
                .await?;
        if let Some(r) = routed {
            return Ok(r);
        }
    }
    let approver = approver_for(&st, &caller, &b.message);
    let req = TurnRequest {
        username: caller.user.username.clone(),
        session_id: b.session_id,
        message: b.message,
        model: b.model,
        channel: Channel::Http,
        toolsets: caller
            .key
            .as_ref()
            .and_then(|k| crate::ops::keys::effective_toolsets(&st.app, k)),
        stream: true,
        key_id: caller.key.as_ref().map(|k| k.id.clone()),
        token_version: caller.claims.as_ref().map(|_| caller.user.token_version),
    };
    let StartedTurn { mut events, done } = start_turn(&st, &caller, req, approver).await?;
    if wants_sse(&headers) {
        // A turn that fails before it says anything (Hermes down while a new
        // session is made, a bad message) answers with the JSON route's
        // error status: no stream has started, so a client sees the cause
        // instead of an empty 200.
        let Some(first) = events.recv().await else {
            return Err(turn_failure(done.await));
        };
        let tail = Tail {
            first: Some(first),
            rx: events,
            done: Some(done),
            ended: false,
            rid: rid.0,
        };
        let stream = futures_util::stream::unfold(tail, |mut t| async move {
            let ev = t.next().await?;
            let e = Event::default()
                .event(event_type(&ev))
                .json_data(&ev)
                .unwrap_or_else(|_| Event::default().event("error").data("{}"));
            Some((Ok::<_, Infallible>(e), t))
        });
        return Ok(sse_response(Sse::new(stream)));
    }
    let result = done
        .await
        .map_err(|e| ApiError::from(Error::internal(format!("the chat turn failed: {e}"))))?;
    let mut list = Vec::new();
    while let Ok(ev) = events.try_recv() {
        list.push(ev);
    }
    let outcome = result?;
    Ok(Json(serde_json::json!({"outcome": outcome, "events": list})).into_response())
}

type TurnDone = tokio::sync::oneshot::Receiver<crate::Result<TurnOutcome>>;

/// How a turn that ended without a `done` or `error` event failed, as the
/// JSON route answers it (status, code, the message a client may see).
fn turn_failure(
    r: Result<crate::Result<TurnOutcome>, tokio::sync::oneshot::error::RecvError>,
) -> ApiError {
    match r {
        Ok(Err(e)) => e.into(),
        Ok(Ok(_)) => Error::internal("the turn ended without its outcome").into(),
        Err(e) => Error::internal(format!("the chat turn failed: {e}")).into(),
    }
}

/// The SSE events of a started turn. Every stream ends with `done` or
/// `error`: an error the turn returned without announcing it (the domain
/// announces only the failures after the session is known) is sent as an
/// `error` event, so the page never waits on a stream that just stopped.
struct Tail {
    first: Option<TurnEvent>,
    rx: tokio::sync::mpsc::UnboundedReceiver<TurnEvent>,
    done: Option<TurnDone>,
    ended: bool,
    /// The request's id, under which what an error event hides is logged.
    rid: Arc<str>,
}

impl Tail {
    async fn next(&mut self) -> Option<TurnEvent> {
        let ev = match self.first.take() {
            Some(ev) => Some(ev),
            None => self.rx.recv().await,
        };
        if let Some(ev) = ev {
            self.ended |= matches!(ev, TurnEvent::Done(_) | TurnEvent::Error { .. });
            return Some(match ev {
                TurnEvent::Error { code, message } => self.public(code, message),
                ev => ev,
            });
        }
        let done = self.done.take()?;
        if self.ended {
            return None;
        }
        let e = turn_failure(done.await);
        Some(self.logged(e))
    }

    /// An error event worded as the JSON route words the same error: Hermes'
    /// internal address masked, server-side failures in general terms.
    fn public(&self, code: String, message: String) -> TurnEvent {
        match Kind::ALL.into_iter().find(|k| k.code() == code) {
            Some(kind) => self.logged(Error::new(kind, message).into()),
            None => TurnEvent::Error { code, message },
        }
    }

    /// `e` as an event; what it hides goes to the server's log under the
    /// request id (the access log line was written when the stream began).
    fn logged(&self, e: ApiError) -> TurnEvent {
        if let Some(d) = &e.detail {
            eprintln!(
                "hermes-operator serve: request {}: the chat turn failed: {d}",
                self.rid
            );
        }
        TurnEvent::Error {
            code: e.code.into(),
            message: e.message,
        }
    }
}

/// Who answers the turn's approval requests: with a personal API key, its
/// policy (deny at once, or wait for the owner); with a login, the owner
/// (or an admin) from the dashboard or the approval API.
pub(super) fn approver_for(
    st: &Arc<ServerState>,
    caller: &Caller,
    message: &str,
) -> Box<dyn Approver> {
    match &caller.key {
        Some(k) if k.approvals == KeyApprovals::Deny => Box::new(PolicyApprover {
            policy: ApprovePolicy::Deny,
            decided_by: format!("key policy ({})", k.id),
        }),
        _ => Box::new(st.approvals.approver(
            &caller.user,
            APPROVAL_WAIT,
            crate::ops::chat::AskedBy::new(&caller.user, caller.key.as_ref(), message),
        )),
    }
}

/// An SSE answer with keep-alive comments every 15 s (a turn waiting on an
/// approval stays quiet for minutes) and no buffering by nginx.
pub(super) fn sse_response<S>(sse: Sse<S>) -> Response
where
    S: futures_util::Stream<Item = Result<Event, Infallible>> + Send + 'static,
{
    let mut r = sse
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response();
    r.headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    r
}

/// A turn started on its own thread: its events as they happen, and its end.
pub(super) struct StartedTurn {
    pub events: tokio::sync::mpsc::UnboundedReceiver<TurnEvent>,
    pub done: tokio::sync::oneshot::Receiver<crate::Result<TurnOutcome>>,
}

/// Admit and start a chat turn for `caller` (who may chat: the route's
/// guard said so): ownership of the session first, then the account's cap
/// on concurrent turns, a chat slot, the session's one-turn-at-a-time claim.
/// Shared by `/api/chat` and `/v1/chat/completions`.
pub(super) async fn start_turn(
    st: &Arc<ServerState>,
    caller: &Caller,
    req: TurnRequest,
    approver: Box<dyn Approver>,
) -> ApiResult<StartedTurn> {
    if st.shutting_down.load(Ordering::Acquire) {
        return Err(Error::busy("the server is shutting down").into());
    }
    let client = st.hermes()?;
    // Ownership before anything is claimed: a session the caller may not
    // read answers exactly as GET does (404), one they may read but not
    // continue 403, and neither is marked busy, so nobody can block
    // another's turns with 409s.
    if let Some(sid) = &req.session_id {
        let (st2, scope, sid2, me) = (
            st.clone(),
            caller.scope(),
            sid.clone(),
            caller.user.id.clone(),
        );
        blocking(move || crate::ops::sessions::check_continuable(&st2.app, &scope, &me, &sid2))
            .await?;
    }
    let max = st.app.cfg.config.operator.max_turns_per_user;
    if !st.user_turns.claim(&caller.user.id, max) {
        return Err(ApiError::throttled(
            format!("you already have {max} chat turn(s) running; wait for one to finish"),
            5,
        ));
    }
    let permit = match st_chats(st) {
        Ok(p) => p,
        Err(e) => {
            st.user_turns.release(&caller.user.id);
            return Err(e);
        }
    };
    let mut guard = TurnGuard {
        st: st.clone(),
        session: None,
        user: caller.user.id.clone(),
        _permit: permit,
    };
    if let Some(sid) = &req.session_id {
        if !st.runs.claim(sid) {
            return Err(Error::conflict(format!(
                "a turn is already running in session {sid}; wait for it to finish"
            ))
            .into());
        }
        guard.session = Some(sid.clone());
    }
    let app = st.app_as(caller.actor());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<TurnEvent>();
    let st2 = st.clone();
    // The turn runs on a thread of its own (at most MAX_CHATS of them; its
    // HTTP I/O still driven by the runtime's reactor): it does synchronous
    // SQLite work (state.db, users.db, events.db, with busy retries that
    // sleep), which must neither stall the async threads nor take the small
    // blocking pool that everyone else's reads use.
    let rt = tokio::runtime::Handle::current();
    let (done_tx, done) = tokio::sync::oneshot::channel();
    let turn = move |own| async move {
        let mut guard = guard;
        let mut current: Option<String> = guard.session.clone();
        let mut on_event = |ev: TurnEvent| {
            match &ev {
                TurnEvent::Session { session_id, new } => {
                    if *new && st2.runs.claim(session_id) {
                        guard.session = Some(session_id.clone());
                    }
                    current = Some(session_id.clone());
                }
                TurnEvent::RunStarted { run_id } => {
                    if let Some(s) = &current {
                        st2.runs.set_run(s, run_id);
                    }
                }
                _ => {}
            }
            let _ = tx.send(ev);
        };
        let r = run_turn(own, &app, &client, &req, approver.as_ref(), &mut on_event).await;
        drop(guard);
        r
    };
    st.turn_threads
        .run(Box::new(move || {
            let _ = done_tx.send(OwnThread::block_on_handle(&rt, turn));
        }))
        .map_err(|e| Error::internal(format!("starting a chat turn: {e}")).with_source(e))?;
    Ok(StartedTurn { events: rx, done })
}

fn st_chats(st: &Arc<ServerState>) -> ApiResult<tokio::sync::OwnedSemaphorePermit> {
    st.chats.clone().try_acquire_owned().map_err(|_| {
        ApiError::from(Error::busy(format!(
            "{} chat turns are already running; retry in a moment",
            super::state::MAX_CHATS
        )))
    })
}

/// `GET /api/approvals` (admin, user): the approval requests waiting for
/// an answer the caller may give (own sessions; an admin's: all).
pub async fn pending(
    State(st): State<Arc<ServerState>>,
    ApprovalsReader(caller): ApprovalsReader,
) -> ApiResult<Response> {
    // Off the async threads: in a fleet the inbox is read too.
    let list = blocking(move || Ok(st.approvals.list_for(&caller.user))).await?;
    Ok(Json(list).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalBody {
    choice: String,
}

/// `POST /api/sessions/{id}/approval` `{choice: once|session|deny}`: answer
/// the approval request waiting in a session (owner or admin; docs/design.md §4).
pub async fn approval(
    State(st): State<Arc<ServerState>>,
    Answerer(caller): Answerer,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<ApprovalBody>,
) -> ApiResult<Response> {
    // A session the caller may not read looks missing (as on GET).
    let scope = caller.scope();
    let st2 = st.clone();
    let sid = id.clone();
    blocking(move || crate::ops::sessions::get(&st2.app, &scope, &sid)).await?;
    let choice = crate::ops::chat::ApprovalChoice::parse(&b.choice)?;
    let (st2, sid) = (st.clone(), id.clone());
    blocking(move || st2.approvals.answer(&sid, &caller.user, choice)).await?;
    Ok(Json(serde_json::json!({"ok": true, "session_id": id, "choice": b.choice})).into_response())
}
