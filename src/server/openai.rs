//! `GET /v1/models` and `POST /v1/chat/completions`: the OpenAI wire format
//! for every OpenAI-compatible client (the `openai` SDKs, Open WebUI,
//! Continue, curl), authenticated by a personal API key (or an access
//! token). A completion is an ordinary operator turn ([`start_turn`]): the
//! conversation maps to an operator session (`ops::openai`), and errors come
//! in OpenAI's shape (`{"error":{"message","type","param","code"}}`) with
//! the statuses its SDKs turn into exceptions.

use super::chat::{approver_for, sse_response, start_turn, StartedTurn};
use super::errors::{ApiError, ErrorDetail};
use super::extract::{ApiJson, Caller, ChatCaller, Reader};
use super::state::{blocking, ServerState};
use crate::error::{Error, Reason};
use crate::ops::chat::{Channel, TurnEvent, TurnOutcome, TurnRequest};
use crate::ops::openai::{self as conv, ChatMessage};
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::convert::Infallible;
use std::sync::Arc;

/// The header that names (and, in answers, reports) the operator session.
pub const SESSION_HEADER: &str = "x-hermes-session-id";

/// An error as OpenAI clients expect it.
pub struct OaError {
    status: StatusCode,
    kind: &'static str,
    code: Option<&'static str>,
    message: String,
    detail: Option<String>,
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl From<ApiError> for OaError {
    fn from(e: ApiError) -> Self {
        let (kind, code) = match e.status.as_u16() {
            401 => ("invalid_request_error", Some("invalid_api_key")),
            403 => ("permission_error", Some("permission_denied")),
            404 => ("invalid_request_error", Some("not_found")),
            409 => ("invalid_request_error", Some("conflict")),
            429 => ("requests", Some("rate_limit_exceeded")),
            s if s >= 500 => ("server_error", Some(e.code)),
            _ => ("invalid_request_error", Some(e.code)),
        };
        OaError {
            status: e.status,
            kind,
            code,
            message: e.message,
            detail: e.detail,
            headers: e.headers,
        }
    }
}

impl From<Error> for OaError {
    fn from(e: Error) -> Self {
        if e.reason == Some(Reason::BudgetSpent) {
            // OpenAI's spent-quota answer: its SDKs raise RateLimitError with
            // code insufficient_quota, which clients do not retry.
            return OaError {
                status: StatusCode::TOO_MANY_REQUESTS,
                kind: "insufficient_quota",
                code: Some("insufficient_quota"),
                message: e.message,
                detail: None,
                headers: Vec::new(),
            };
        }
        ApiError::from(e).into()
    }
}

impl OaError {
    fn body(&self) -> Value {
        json!({"error": {"message": self.message, "type": self.kind, "param": null, "code": self.code}})
    }
}

impl IntoResponse for OaError {
    fn into_response(self) -> Response {
        let mut r = (self.status, Json(self.body())).into_response();
        for (k, v) in self.headers {
            r.headers_mut().append(k, v);
        }
        if let Some(d) = self.detail {
            r.extensions_mut().insert(ErrorDetail(d));
        }
        r
    }
}

type OaResult<T> = std::result::Result<T, OaError>;

/// [`Reader`] with OpenAI-shaped rejections.
pub struct OaCaller(pub Caller);

impl FromRequestParts<Arc<ServerState>> for OaCaller {
    type Rejection = OaError;

    async fn from_request_parts(
        parts: &mut Parts,
        st: &Arc<ServerState>,
    ) -> Result<Self, Self::Rejection> {
        let Reader(c) = Reader::from_request_parts(parts, st).await?;
        Ok(OaCaller(c))
    }
}

/// [`ChatCaller`] (a role that may chat; 403 before the body is read) with
/// OpenAI-shaped rejections.
pub struct OaChatCaller(pub Caller);

impl FromRequestParts<Arc<ServerState>> for OaChatCaller {
    type Rejection = OaError;

    async fn from_request_parts(
        parts: &mut Parts,
        st: &Arc<ServerState>,
    ) -> Result<Self, Self::Rejection> {
        let ChatCaller(c) = ChatCaller::from_request_parts(parts, st).await?;
        Ok(OaChatCaller(c))
    }
}

/// A JSON body with OpenAI-shaped rejections.
pub struct OaJson<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequest<S> for OaJson<T> {
    type Rejection = OaError;

    async fn from_request(req: Request, st: &S) -> Result<Self, Self::Rejection> {
        let ApiJson(v) = ApiJson::<T>::from_request(req, st).await?;
        Ok(OaJson(v))
    }
}

/// `GET /v1/models`: what Hermes offers (its configured model and route aliases).
pub async fn models(State(st): State<Arc<ServerState>>, _c: OaCaller) -> OaResult<Response> {
    let client = st.hermes()?;
    let models = client.models().await?;
    let data: Vec<Value> = models
        .iter()
        .map(|m| json!({"id": m, "object": "model", "created": 0, "owned_by": "hermes"}))
        .collect();
    Ok(Json(json!({"object": "list", "data": data})).into_response())
}

#[derive(Deserialize)]
pub struct StreamOptions {
    #[serde(default)]
    include_usage: bool,
}

/// The fields we act on; the rest (temperature, top_p, user, …) are
/// accepted and ignored: the agent's own model settings apply.
#[derive(Deserialize)]
pub struct CompletionBody {
    model: String,
    messages: Vec<ChatMessage>,
    #[serde(default)]
    stream: bool,
    stream_options: Option<StreamOptions>,
    #[serde(default)]
    tools: Option<Value>,
    #[serde(default)]
    functions: Option<Value>,
    n: Option<u32>,
}

/// `POST /v1/chat/completions`.
#[expect(
    clippy::too_many_lines,
    reason = "request checks in the order a client should hear about them (who, what, which model, which session), then the two answer shapes"
)]
pub async fn chat_completions(
    State(st): State<Arc<ServerState>>,
    OaChatCaller(caller): OaChatCaller,
    headers: HeaderMap,
    OaJson(b): OaJson<CompletionBody>,
) -> OaResult<Response> {
    let has = |v: &Option<Value>| v.as_ref().is_some_and(|v| !v.is_null() && v != &json!([]));
    if has(&b.tools) || has(&b.functions) {
        return Err(ApiError::bad_request(
            "client-side tools (function calling) are not supported: the agent runs its own tools under the operator's policy",
        )
        .into());
    }
    if b.n.is_some_and(|n| n != 1) {
        return Err(ApiError::bad_request("n must be 1").into());
    }
    let c = conv::split(&b.messages)?;
    let client = st.hermes()?;
    let offered = client.models().await?;
    if !offered.iter().any(|m| m == &b.model) {
        let mut e: OaError = ApiError::new(
            StatusCode::NOT_FOUND,
            format!(
                "the model {:?} does not exist here; GET /v1/models lists what Hermes offers ({})",
                crate::output::clip(&b.model, 60),
                offered.join(", ")
            ),
        )
        .into();
        e.code = Some("model_not_found");
        return Err(e);
    }
    let session_id = match headers.get(SESSION_HEADER) {
        Some(v) => Some(
            v.to_str()
                .map_err(|_| ApiError::bad_request("X-Hermes-Session-Id is not text"))?
                .trim()
                .to_string(),
        ),
        // A conversation's first message starts a new session.
        None if c.prior.is_empty() => None,
        None => {
            let (st2, me, prior) = (st.clone(), caller.user.id.clone(), c.prior.clone());
            blocking(move || conv::find_continuation(&st2.app, &me, &prior)).await?
        }
    };
    let key = caller.key.clone();
    let approver = approver_for(&st, &caller, &c.message);
    let req = TurnRequest {
        username: caller.user.username.clone(),
        session_id,
        message: c.message,
        model: Some(b.model.clone()),
        channel: Channel::Openai,
        toolsets: key
            .as_ref()
            .and_then(|k| crate::ops::keys::effective_toolsets(&st.app, k)),
        stream: b.stream,
        key_id: key.as_ref().map(|k| k.id.clone()),
        token_version: caller.claims.as_ref().map(|_| caller.user.token_version),
    };
    let StartedTurn { mut events, done } = start_turn(&st, &caller, req, approver).await?;
    let id = format!("chatcmpl-{}", crate::crypto::random_hex(12));
    let created = chrono::Utc::now().timestamp();
    if !b.stream {
        let outcome = done
            .await
            .map_err(|e| Error::internal(format!("the chat turn failed: {e}")))??;
        let mut r = Json(completion(&id, created, &b.model, &outcome)).into_response();
        set_session_header(&mut r, &outcome.session_id);
        set_server_timing(&mut r, &outcome);
        return Ok(r);
    }
    // Until the run starts, a failure (budget, policy, Hermes) is still an
    // HTTP status the client's SDK raises; after that it is in the stream.
    let mut early = Vec::new();
    let mut session = None;
    loop {
        match events.recv().await {
            Some(TurnEvent::Session { session_id, .. }) => session = Some(session_id),
            Some(TurnEvent::Error { .. }) | None => {
                let r = done
                    .await
                    .map_err(|e| Error::internal(format!("the chat turn failed: {e}")))?;
                return Err(match r {
                    Err(e) => e.into(),
                    Ok(_) => Error::internal("the turn ended before it started").into(),
                });
            }
            Some(ev @ TurnEvent::RunStarted { .. }) => {
                early.push(ev);
                break;
            }
            Some(ev) => early.push(ev),
        }
    }
    let chunks = Chunks {
        id,
        created,
        model: b.model,
        usage: b.stream_options.is_some_and(|o| o.include_usage),
        sent_text: false,
    };
    let state = (
        chunks,
        std::collections::VecDeque::new(),
        early.into_iter(),
        events,
        false,
    );
    let stream = futures_util::stream::unfold(
        state,
        |(mut ch, mut pending, mut early, mut rx, mut ended)| async move {
            loop {
                if let Some(e) = pending.pop_front() {
                    return Some((Ok::<_, Infallible>(e), (ch, pending, early, rx, ended)));
                }
                if ended {
                    return None;
                }
                let ev = match early.next() {
                    Some(ev) => Some(ev),
                    None => rx.recv().await,
                };
                match ev {
                    Some(ev) => {
                        let (out, end) = ch.on_event(ev);
                        pending.extend(out);
                        ended = end;
                    }
                    None => {
                        // The turn's task ended without its last event.
                        pending.push_back(Event::default().data(
                            json!({"error": {"message": "the turn ended unexpectedly", "type": "server_error", "param": null, "code": null}}).to_string(),
                        ));
                        ended = true;
                    }
                }
            }
        },
    );
    let mut r = sse_response(Sse::new(stream));
    if let Some(s) = session {
        set_session_header(&mut r, &s);
    }
    Ok(r)
}

fn set_session_header(r: &mut Response, session_id: &str) {
    if let Ok(v) = HeaderValue::from_str(session_id) {
        r.headers_mut()
            .insert(HeaderName::from_static(SESSION_HEADER), v);
    }
}

/// `Server-Timing` (W3C): how long the turn waited on Hermes and how long
/// the operator's own part of it took, in ms, so a client (or
/// benches/openai_bench.py) can tell the two apart in a call whose time is
/// mostly Hermes'.
fn set_server_timing(r: &mut Response, o: &TurnOutcome) {
    let v = format!(
        "hermes;dur={:.3};desc=\"Hermes\", operator;dur={:.3};desc=\"operator turn\"",
        o.hermes_ms, o.operator_ms
    );
    if let Ok(v) = HeaderValue::from_str(&v) {
        r.headers_mut()
            .insert(HeaderName::from_static("server-timing"), v);
    }
}

/// A non-streaming answer.
fn completion(id: &str, created: i64, model: &str, o: &TurnOutcome) -> Value {
    json!({
        "id": id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": o.output, "refusal": null},
            "finish_reason": "stop",
            "logprobs": null,
        }],
        "usage": usage(o),
    })
}

fn usage(o: &TurnOutcome) -> Value {
    json!({
        "prompt_tokens": o.input_tokens,
        "completion_tokens": o.output_tokens,
        "total_tokens": o.input_tokens + o.output_tokens,
    })
}

/// The stream's state: turns operator turn events into OpenAI chunks.
struct Chunks {
    id: String,
    created: i64,
    model: String,
    usage: bool,
    sent_text: bool,
}

impl Chunks {
    fn chunk(&self, delta: Value, finish: Option<&str>) -> Event {
        Event::default().data(
            json!({
                "id": self.id, "object": "chat.completion.chunk", "created": self.created,
                "model": self.model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": null}],
            })
            .to_string(),
        )
    }

    /// The chunks for one turn event, and whether the stream ends with them.
    fn on_event(&mut self, ev: TurnEvent) -> (Vec<Event>, bool) {
        let mut out = Vec::new();
        match ev {
            TurnEvent::RunStarted { .. } => {
                out.push(self.chunk(json!({"role": "assistant", "content": ""}), None));
            }
            TurnEvent::Delta { text } if !text.is_empty() => {
                self.sent_text = true;
                out.push(self.chunk(json!({"content": text}), None));
            }
            TurnEvent::Done(o) => {
                if !self.sent_text && !o.output.is_empty() {
                    out.push(self.chunk(json!({"content": o.output}), None));
                }
                out.push(self.chunk(json!({}), Some("stop")));
                if self.usage {
                    out.push(Event::default().data(
                        json!({
                            "id": self.id, "object": "chat.completion.chunk", "created": self.created,
                            "model": self.model, "choices": [], "usage": usage(&o),
                        })
                        .to_string(),
                    ));
                }
                out.push(Event::default().data("[DONE]"));
                return (out, true);
            }
            TurnEvent::Error { code, message } => {
                let e = json!({"error": {"message": message, "type": "server_error", "param": null, "code": code}});
                out.push(Event::default().data(e.to_string()));
                return (out, true);
            }
            _ => {}
        }
        (out, false)
    }
}
