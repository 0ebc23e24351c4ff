//! A client for Hermes' API server (docs/hermes.md "The API server"): the
//! operator drives the real agent through `POST /v1/runs`, streams
//! `GET /v1/runs/{id}/events`, and answers approvals.

use crate::error::{Error, Result};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::Duration;

#[derive(Clone)]
pub struct HermesClient {
    base: String,
    key: zeroize::Zeroizing<String>,
    http: reqwest::Client,
    key_env: String,
    /// Set once Hermes has accepted the key (a long-lived server checks once).
    key_ok: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Whether Hermes honours `Idempotency-Key` on `POST /v1/runs` (0.22's
    /// `/v1/capabilities` says so; 0.19 does not), asked once.
    idempotent_runs: std::sync::Arc<tokio::sync::OnceCell<bool>>,
    /// The last model list and when it came: every OpenAI-compatible call
    /// checks its `model` against it, and a chat turn with a model checks it
    /// again; a few seconds of staleness costs nothing (Hermes' model list
    /// changes with its config), a round trip per check does.
    models_cache: std::sync::Arc<std::sync::Mutex<Option<ModelList>>>,
}

/// A model list and when Hermes sent it.
type ModelList = (std::time::Instant, Vec<String>);

/// How long a model list is reused.
const MODELS_TTL: Duration = Duration::from_secs(5);

/// What `POST /v1/runs` gave back.
#[derive(Debug, Clone)]
pub struct StartedRun {
    pub run_id: String,
    /// How many times the request was sent (more than one: an answer was
    /// lost and the same `Idempotency-Key` was sent again).
    pub attempts: u32,
    /// Hermes said `Idempotency-Replayed: true`: the run already existed.
    pub replayed: bool,
}

/// Body of `POST /v1/runs`.
#[derive(Debug, Serialize)]
pub struct RunRequest<'a> {
    pub input: &'a str,
    pub session_id: &'a str,
    pub instructions: &'a str,
    pub conversation_history: &'a [HistoryMessage],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<&'a str>,
}

/// A non-streaming `POST /v1/chat/completions` continuing `session_id`
/// (`X-Hermes-Session-Id`: Hermes loads the stored history itself and
/// appends the turn to that row). `instructions` goes as the system
/// message, which Hermes appends to its own prompt and never stores.
#[derive(Debug)]
pub struct CompletionRequest<'a> {
    pub input: &'a str,
    pub session_id: &'a str,
    pub instructions: &'a str,
    pub model: Option<&'a str>,
}

/// What a chat completion gave back.
#[derive(Debug, Clone)]
pub struct Completion {
    /// `chatcmpl-…`: the operator's events call it the turn's run id.
    pub id: String,
    pub output: String,
    /// The session Hermes wrote to, from its `X-Hermes-Session-Id` answer.
    pub session_id: Option<String>,
}

/// Hermes' API server as [`HermesClient::probe`] found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiHealth {
    /// It answered `/v1/models` with our key.
    Ok,
    /// No answer (why, in words without the address).
    Unreachable(&'static str),
    /// It answered 401/403: the key differs from the gateway's.
    Unauthorized,
    /// It answered with another error status.
    Failing(u16),
}

/// Hermes' /v1/runs accepts role + content strings only.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HistoryMessage {
    pub role: String,
    pub content: String,
}

/// One event of `GET /v1/runs/{id}/events`, as Hermes sends it. Unknown
/// events keep their raw JSON so nothing is dropped.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct RunEvent {
    pub event: String,
    #[serde(default)]
    pub timestamp: Option<f64>,
    #[serde(flatten)]
    pub fields: serde_json::Map<String, serde_json::Value>,
}

impl RunEvent {
    pub fn str(&self, k: &str) -> Option<&str> {
        self.fields.get(k).and_then(|v| v.as_str())
    }

    /// What the event means to the operator. The names are those Hermes
    /// 0.19 and 0.22 send on `/v1/runs/{id}/events` (docs/hermes.md); any
    /// other is [`Event::Unknown`], which the turn records instead of
    /// dropping.
    pub fn kind(&self) -> Event<'_> {
        let tool = || self.str("tool").unwrap_or("?");
        match self.event.as_str() {
            "reasoning.delta" => {
                Event::ReasoningDelta(self.str("delta").or(self.str("text")).unwrap_or_default())
            }
            "reasoning.available" => Event::ReasoningAvailable,
            "message.delta" => Event::MessageDelta(self.str("delta")),
            "tool.started" => Event::ToolStarted {
                tool: tool(),
                preview: self.str("preview"),
            },
            "tool.completed" => Event::ToolCompleted {
                tool: tool(),
                duration: self.fields.get("duration").and_then(Value::as_f64),
                error: self
                    .fields
                    .get("error")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
            },
            "approval.request" => Event::ApprovalRequest {
                command: self.str("command"),
                description: self.str("description"),
                pattern_key: self.str("pattern_key"),
                choices: self
                    .fields
                    .get("choices")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default(),
                request_id: self.str("request_id"),
            },
            "run.steered" => Event::RunSteered {
                accepted: self.fields.get("accepted"),
            },
            e if e.starts_with("subagent.") => Event::Subagent {
                phase: &e["subagent.".len()..],
            },
            "run.interrupted" => Event::RunInterrupted,
            "run.completed" => Event::RunCompleted {
                output: self.str("output"),
            },
            "run.failed" => Event::RunFailed {
                error: self.fields.get("error").map_or_else(
                    || "run failed".to_string(),
                    |e| e.as_str().map_or_else(|| e.to_string(), str::to_string),
                ),
            },
            "run.cancelled" => Event::RunCancelled,
            // Progress the operator learns better elsewhere: the answer to
            // an approval is its own, a stop is the operator's or ends as
            // `run.cancelled`, interim text is in state.db.
            "approval.responded" | "run.stopping" | "message.interim" => Event::Progress,
            other => Event::Unknown(other),
        }
    }
}

/// A run event, typed ([`RunEvent::kind`]); it borrows from the event.
#[derive(Debug, PartialEq)]
pub enum Event<'a> {
    /// A piece of the model's reasoning (0.22).
    ReasoningDelta(&'a str),
    /// On the runs stream a preview of the assistant's text, not reasoning.
    ReasoningAvailable,
    MessageDelta(Option<&'a str>),
    ToolStarted {
        tool: &'a str,
        preview: Option<&'a str>,
    },
    ToolCompleted {
        tool: &'a str,
        duration: Option<f64>,
        error: bool,
    },
    ApprovalRequest {
        command: Option<&'a str>,
        description: Option<&'a str>,
        pattern_key: Option<&'a str>,
        choices: Vec<&'a str>,
        request_id: Option<&'a str>,
    },
    RunSteered {
        accepted: Option<&'a Value>,
    },
    /// `subagent.start`, `subagent.complete`, …: the part after the dot.
    Subagent {
        phase: &'a str,
    },
    RunInterrupted,
    RunCompleted {
        output: Option<&'a str>,
    },
    RunFailed {
        error: String,
    },
    RunCancelled,
    /// Known, and nothing for the operator to do.
    Progress,
    /// A name this operator does not know: a newer Hermes.
    Unknown(&'a str),
}

fn unreachable_hint(url: &str) -> String {
    format!(
        "start Hermes' API server so it listens on {url}: set API_SERVER_ENABLED=true and API_SERVER_KEY in $HERMES_HOME/.env, then `hermes gateway run` (or check hermes.api_url in profiles/operator/config.yaml)"
    )
}

impl HermesClient {
    pub fn new(base_url: &str, key: String, key_env: &str) -> Result<HermesClient> {
        let http = crate::net::client_builder()
            .connect_timeout(Duration::from_secs(5))
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| {
                Error::internal(format!("building the HTTP client: {e}")).with_source(e)
            })?;
        Ok(HermesClient {
            base: base_url.trim_end_matches('/').to_string(),
            key: zeroize::Zeroizing::new(key),
            http,
            key_env: key_env.to_string(),
            key_ok: Default::default(),
            idempotent_runs: Default::default(),
            models_cache: Default::default(),
        })
    }

    /// From the loaded config: `hermes.api_url` and the key named by `hermes.api_key_env`.
    pub fn from_config(
        home: &crate::home::Home,
        config: &crate::config::Config,
    ) -> Result<HermesClient> {
        let c = &config.hermes;
        let key = crate::config::hermes_api_key(home, &c.api_key_env).ok_or_else(|| {
            Error::config(format!(
                "no Hermes API key: {} is not set in {} or the environment",
                c.api_key_env,
                home.hermes_env().display()
            ))
            .hint("the operator uses the same API_SERVER_KEY as Hermes' API server")
        })?;
        HermesClient::new(&c.url(home), key, &c.api_key_env)
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    fn send_error(&self, e: reqwest::Error) -> Error {
        let err = if e.is_connect() || e.is_timeout() {
            Error::unavailable(format!("Hermes is not reachable at {}: {e}", self.base))
                .hint(unreachable_hint(&self.base))
        } else {
            Error::unavailable(format!("talking to Hermes at {}: {e}", self.base))
        };
        err.with_source(e)
    }

    async fn check(&self, what: &str, resp: reqwest::Response) -> Result<reqwest::Response> {
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let body = resp.text().await.unwrap_or_default();
        let msg = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
            .unwrap_or_else(|| crate::output::clip(&body, 200));
        Err(match status.as_u16() {
            401 | 403 => Error::config(format!(
                "Hermes rejected the API key ({what}: HTTP {status})"
            ))
            .hint(format!(
                "{} must equal the API_SERVER_KEY the Hermes gateway runs with",
                self.key_env
            )),
            404 => Error::not_found(format!("{what}: {msg}")),
            409 => Error::conflict(format!("{what}: {msg}")),
            429 | 503 => Error::busy(format!("Hermes is busy ({what}): {msg}")),
            400 => Error::usage(format!("Hermes refused the request ({what}): {msg}")),
            _ => Error::unavailable(format!("Hermes failed ({what}: HTTP {status}): {msg}")),
        })
    }

    /// `GET /health` (open, no key).
    pub async fn health(&self) -> Result<()> {
        let r = self
            .http
            .get(format!("{}/health", self.base))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .map_err(|e| self.send_error(e))?;
        self.check("health", r).await.map(|_| ())
    }

    /// Whether chat can work now, for `serve`'s `/healthz`: `GET /v1/models`
    /// with the key, uncached (the models cache would hide a gateway that
    /// stopped since), within `timeout` (a hung gateway must not hang the
    /// uptime check). `/health` alone would not do: it needs no key, so it
    /// answers "ok" while every chat turn is refused for a wrong key.
    pub async fn probe(&self, timeout: Duration) -> ApiHealth {
        let sent = self
            .http
            .get(format!("{}/v1/models", self.base))
            .bearer_auth(self.key.as_str())
            .timeout(timeout)
            .send()
            .await;
        match sent {
            // Not the error's text: it names the address, and /healthz is
            // unauthenticated.
            Err(e) if e.is_timeout() => ApiHealth::Unreachable("timed out"),
            Err(e) if e.is_connect() => ApiHealth::Unreachable("connection refused"),
            Err(_) => ApiHealth::Unreachable("the connection failed"),
            Ok(r) => match r.status().as_u16() {
                200..=299 => ApiHealth::Ok,
                401 | 403 => ApiHealth::Unauthorized,
                code => ApiHealth::Failing(code),
            },
        }
    }

    /// `GET /v1/models`: the configured model and route aliases (a list at
    /// most [`MODELS_TTL`] old; failures are never reused).
    pub async fn models(&self) -> Result<Vec<String>> {
        if let Some((at, list)) = &*self.models_cache.lock().unwrap_or_else(|p| p.into_inner()) {
            if at.elapsed() < MODELS_TTL {
                return Ok(list.clone());
            }
        }
        let list = self.fetch_models().await?;
        *self.models_cache.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((std::time::Instant::now(), list.clone()));
        Ok(list)
    }

    async fn fetch_models(&self) -> Result<Vec<String>> {
        let r = self
            .http
            .get(format!("{}/v1/models", self.base))
            .bearer_auth(self.key.as_str())
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(|e| self.send_error(e))?;
        let v: serde_json::Value = self
            .check("listing models", r)
            .await?
            .json()
            .await
            .map_err(|e| {
                Error::unavailable(format!("Hermes sent an unreadable model list: {e}"))
            })?;
        Ok(v["data"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|m| m["id"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Prove that Hermes is up and accepts our key (`/v1/models` needs the
    /// key, `/health` does not), once per client.
    pub async fn verify_key(&self) -> Result<()> {
        if !self.key_ok.load(std::sync::atomic::Ordering::Relaxed) {
            self.models().await?;
        }
        Ok(())
    }

    /// Does this Hermes honour `Idempotency-Key` on `POST /v1/runs`?
    /// `GET /v1/capabilities` → `features.runs_idempotency.supported`
    /// (0.22); anything else (0.19, an error) counts as no.
    pub async fn idempotent_runs(&self) -> bool {
        *self
            .idempotent_runs
            .get_or_init(|| async {
                let r = self
                    .http
                    .get(format!("{}/v1/capabilities", self.base))
                    .bearer_auth(self.key.as_str())
                    .timeout(Duration::from_secs(10))
                    .send()
                    .await;
                let Ok(r) = r else { return false };
                if !r.status().is_success() {
                    return false;
                }
                r.json::<serde_json::Value>()
                    .await
                    .ok()
                    .and_then(|v| v["features"]["runs_idempotency"]["supported"].as_bool())
                    .unwrap_or(false)
            })
            .await
    }

    /// `POST /v1/runs` → run id, with `Idempotency-Key: key`.
    ///
    /// When the answer is lost on the way (the connection broke after the
    /// request left), the run may or may not exist. A Hermes that honours
    /// the key (0.22) gets the same request again, up to three times in
    /// all: it starts the run once and replays its id. Any other Hermes is
    /// not retried, since a second POST could run the agent twice.
    pub async fn start_run(&self, req: &RunRequest<'_>, key: &str) -> Result<StartedRun> {
        const ATTEMPTS: u32 = 3;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let sent = self
                .http
                .post(format!("{}/v1/runs", self.base))
                .bearer_auth(self.key.as_str())
                .header("Idempotency-Key", key)
                .json(req)
                .timeout(Duration::from_secs(30))
                .send()
                .await;
            let r = match sent {
                Ok(r) => r,
                // Refused before anything was sent: nothing can have started.
                Err(e) if e.is_connect() => return Err(self.send_error(e)),
                Err(e) => {
                    if attempts < ATTEMPTS && self.idempotent_runs().await {
                        tokio::time::sleep(Duration::from_millis(250 * u64::from(attempts))).await;
                        continue;
                    }
                    let hint = if attempts > 1 {
                        format!("sent {attempts} times with the same Idempotency-Key; Hermes started at most one run")
                    } else {
                        "this Hermes does not honour Idempotency-Key (0.22 does), so the request was not sent again: the run may have started; look at the session before retrying".to_string()
                    };
                    return Err(self.send_error(e).hint(hint));
                }
            };
            let replayed = r
                .headers()
                .get("Idempotency-Replayed")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.eq_ignore_ascii_case("true"));
            let v: serde_json::Value = self
                .check("starting a run", r)
                .await?
                .json()
                .await
                .map_err(|e| {
                    Error::unavailable(format!("Hermes sent an unreadable run reply: {e}"))
                })?;
            let run_id = v["run_id"].as_str().map(str::to_string).ok_or_else(|| {
                Error::unavailable(format!("Hermes' run reply has no run_id: {v}"))
            })?;
            return Ok(StartedRun {
                run_id,
                attempts,
                replayed,
            });
        }
    }

    /// `POST /v1/chat/completions`, not streamed. Never sent twice: Hermes
    /// honours no idempotency key there, and a second send could run the
    /// agent twice.
    pub async fn complete(&self, req: &CompletionRequest<'_>) -> Result<Completion> {
        let mut body = serde_json::json!({
            "messages": [
                {"role": "system", "content": req.instructions},
                {"role": "user", "content": req.input},
            ],
            "stream": false,
        });
        if let Some(m) = req.model {
            body["model"] = m.into();
        }
        let r = self
            .http
            .post(format!("{}/v1/chat/completions", self.base))
            .bearer_auth(self.key.as_str())
            .header("X-Hermes-Session-Id", req.session_id)
            .json(&body)
            .send()
            .await
            .map_err(|e| self.send_error(e))?;
        let r = self.check("a chat completion", r).await?;
        let session_id = r
            .headers()
            .get("X-Hermes-Session-Id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let v: serde_json::Value = r.json().await.map_err(|e| {
            Error::unavailable(format!("Hermes sent an unreadable chat completion: {e}"))
                .with_source(e)
        })?;
        let id = v["id"].as_str().unwrap_or_default().to_string();
        let output = match &v["choices"][0]["message"]["content"] {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Null => String::new(),
            other => other.to_string(),
        };
        Ok(Completion {
            id,
            output,
            session_id,
        })
    }

    /// `GET /v1/runs/{id}`: the run's status object (`status` is one of
    /// `queued`, `running`, `waiting_for_approval`, `completed`, `failed`,
    /// `cancelled`, and on 0.22 `interrupted` after a gateway restart).
    pub async fn run_status(&self, run_id: &str) -> Result<serde_json::Value> {
        let r = self
            .http
            .get(format!("{}/v1/runs/{run_id}", self.base))
            .bearer_auth(self.key.as_str())
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(|e| self.send_error(e))?;
        self.check("reading a run's status", r)
            .await?
            .json()
            .await
            .map_err(|e| {
                Error::unavailable(format!("Hermes sent an unreadable run status: {e}"))
                    .with_source(e)
            })
    }

    /// Open `GET /v1/runs/{id}/events`. Hermes allows ONE consumer per run.
    pub async fn events(&self, run_id: &str) -> Result<EventStream> {
        let r = self
            .http
            .get(format!("{}/v1/runs/{run_id}/events", self.base))
            .bearer_auth(self.key.as_str())
            .send()
            .await
            .map_err(|e| self.send_error(e))?;
        let r = self.check("streaming run events", r).await?;
        Ok(EventStream::new(Box::pin(r.bytes_stream())))
    }

    /// `POST /v1/runs/{id}/approval`. With the request's `request_id`
    /// (0.22 stamps one on every approval) the answer resolves exactly that
    /// request; without one Hermes resolves the oldest pending (0.19).
    pub async fn answer_approval(
        &self,
        run_id: &str,
        choice: &str,
        request_id: Option<&str>,
    ) -> Result<()> {
        let mut body = serde_json::json!({ "choice": choice });
        if let Some(id) = request_id {
            body["request_id"] = id.into();
        }
        let r = self
            .http
            .post(format!("{}/v1/runs/{run_id}/approval", self.base))
            .bearer_auth(self.key.as_str())
            .json(&body)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(|e| self.send_error(e))?;
        self.check("answering an approval", r).await.map(|_| ())
    }

    /// `POST /v1/runs/{id}/stop`.
    pub async fn stop_run(&self, run_id: &str) -> Result<()> {
        let r = self
            .http
            .post(format!("{}/v1/runs/{run_id}/stop", self.base))
            .bearer_auth(self.key.as_str())
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(|e| self.send_error(e))?;
        self.check("stopping a run", r).await.map(|_| ())
    }
}

type ByteStream =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>;

/// Server-sent events of one run, decoded one at a time
/// ([`super::sse::SseParser`]: LF, CR and CRLF line ends, at most
/// [`super::sse::MAX_EVENT_BYTES`] per event).
///
/// An event whose data is not a run event (not JSON, or no `event` name)
/// is an error, not skipped: the old parser dropped such frames silently,
/// and a lost `approval.request` or `run.completed` leaves the turn
/// waiting on a run that waits on it. The caller stops the run then
/// ([`EventStream::unreadable`]).
pub struct EventStream {
    inner: ByteStream,
    parser: super::sse::SseParser,
    ready: std::collections::VecDeque<super::sse::SseEvent>,
    unreadable: bool,
}

impl EventStream {
    fn new(inner: ByteStream) -> EventStream {
        EventStream {
            inner,
            parser: Default::default(),
            ready: Default::default(),
            unreadable: false,
        }
    }

    /// The stream sent something the operator cannot read (an event too
    /// large or not a run event); the run itself may still be going.
    pub fn unreadable(&self) -> bool {
        self.unreadable
    }

    /// The next event, or `None` when Hermes closed the stream (an event
    /// not ended by a blank line before the close is discarded, as the
    /// SSE standard says).
    pub async fn next(&mut self) -> Result<Option<RunEvent>> {
        loop {
            if self.unreadable {
                return Ok(None);
            }
            if let Some(ev) = self.ready.pop_front() {
                let parsed = run_event(ev);
                self.unreadable = parsed.is_err();
                return parsed.map(Some);
            }
            match self.inner.next().await {
                Some(Ok(chunk)) => {
                    if let Err(e) = self.parser.feed(&chunk, &mut self.ready) {
                        self.unreadable = true;
                        return Err(Error::unavailable(format!(
                            "the event stream from Hermes is unreadable: {e}"
                        ))
                        .hint(
                            "the operator stopped the run; Hermes or a proxy in between sent a malformed stream",
                        ));
                    }
                }
                Some(Err(e)) => {
                    return Err(Error::unavailable(format!(
                        "the event stream from Hermes broke off: {e}"
                    ))
                    .hint("Hermes may have been stopped or restarted during the run"))
                }
                None => return Ok(None),
            }
        }
    }
}

/// A run event from one SSE event: its data is the JSON object. An object
/// without `event` takes the SSE `event:` field's name when there is one.
fn run_event(ev: super::sse::SseEvent) -> Result<RunEvent> {
    let unreadable = |why: String| {
        let mut data: String = ev.data.chars().take(200).collect();
        if data.len() < ev.data.len() {
            data.push('…');
        }
        Error::unavailable(format!(
            "Hermes sent a run event the operator cannot read ({why}): {data:?}"
        ))
        .hint("the operator stopped the run; is this Hermes version newer than the operator knows?")
    };
    let mut v: serde_json::Value =
        serde_json::from_str(&ev.data).map_err(|e| unreadable(format!("not JSON: {e}")))?;
    if let Some(o) = v.as_object_mut() {
        if !o.contains_key("event") && ev.event != "message" {
            o.insert("event".into(), ev.event.clone().into());
        }
    }
    serde_json::from_value(v).map_err(|e| unreadable(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(chunks: &[&'static [u8]]) -> EventStream {
        let items: Vec<reqwest::Result<bytes::Bytes>> = chunks
            .iter()
            .map(|c| Ok(bytes::Bytes::from_static(c)))
            .collect();
        EventStream::new(Box::pin(futures_util::stream::iter(items)))
    }

    fn ev(json: &str) -> RunEvent {
        serde_json::from_str(json).unwrap()
    }

    /// Every name 0.19 and 0.22 send maps to a kind of its own; any other
    /// is `Unknown` with its name (the turn records it).
    #[test]
    fn run_events_are_typed_and_unknown_names_kept() {
        let tool =
            ev(r#"{"event":"tool.completed","tool":"terminal","duration":1.5,"error":true}"#);
        assert_eq!(
            tool.kind(),
            Event::ToolCompleted {
                tool: "terminal",
                duration: Some(1.5),
                error: true
            }
        );
        let ar = ev(
            r#"{"event":"approval.request","command":"rm -rf /","choices":["once","deny",3],"request_id":"r1"}"#,
        );
        assert_eq!(
            ar.kind(),
            Event::ApprovalRequest {
                command: Some("rm -rf /"),
                description: None,
                pattern_key: None,
                choices: vec!["once", "deny"],
                request_id: Some("r1"),
            }
        );
        let failed = ev(r#"{"event":"run.failed","error":{"code":5}}"#);
        assert_eq!(
            failed.kind(),
            Event::RunFailed {
                error: r#"{"code":5}"#.into()
            }
        );
        assert_eq!(
            ev(r#"{"event":"subagent.complete"}"#).kind(),
            Event::Subagent { phase: "complete" }
        );
        for known in [
            "reasoning.delta",
            "reasoning.available",
            "message.delta",
            "tool.started",
            "run.steered",
            "run.interrupted",
            "run.completed",
            "run.cancelled",
            "approval.responded",
            "run.stopping",
            "message.interim",
        ] {
            let e = ev(&format!(r#"{{"event":"{known}"}}"#));
            assert!(!matches!(e.kind(), Event::Unknown(_)), "{known}");
        }
        assert_eq!(
            ev(r#"{"event":"run.paused","x":1}"#).kind(),
            Event::Unknown("run.paused")
        );
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn run_events_from_any_line_ending() {
        block_on(async {
            let mut s = stream(&[
                b": keepalive\r\r",
                b"data: {\"event\": \"message.delta\", \"delta\": \"hi\"}\r",
                b"\r",
                b"event: run.completed\r\ndata: {\"output\": \"done\"}\r\n\r\n",
            ]);
            let a = s.next().await.unwrap().unwrap();
            assert_eq!(
                (a.event.as_str(), a.str("delta")),
                ("message.delta", Some("hi"))
            );
            let b = s.next().await.unwrap().unwrap();
            assert_eq!(
                (b.event.as_str(), b.str("output")),
                ("run.completed", Some("done"))
            );
            assert!(s.next().await.unwrap().is_none());
            assert!(!s.unreadable());
        });
    }

    /// The old parser skipped these frames and went on reading.
    #[test]
    fn unreadable_events_are_errors() {
        block_on(async {
            let mut s = stream(&[b"data: not json\n\ndata: {\"event\": \"run.completed\"}\n\n"]);
            let e = s.next().await.unwrap_err();
            assert_eq!(e.kind, crate::error::Kind::Unavailable);
            assert!(
                e.message.contains("not JSON") && e.message.contains("not json"),
                "{}",
                e.message
            );
            assert!(s.unreadable());
            assert!(s.next().await.unwrap().is_none());
            let mut s = stream(&[b"data: {\"delta\": 1}\n\n"]);
            let e = s.next().await.unwrap_err();
            assert!(e.message.contains("`event`"), "{}", e.message);
        });
    }

    /// Through reqwest from a socket: a server writing CR line ends in
    /// pieces that cut a CRLF and a UTF-8 character.
    #[test]
    fn events_over_http_with_cr_line_ends() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        block_on(async {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}", l.local_addr().unwrap());
            let server = tokio::spawn(async move {
                let (mut c, _) = l.accept().await.unwrap();
                let mut req = Vec::new();
                let mut b = [0u8; 1024];
                while !req.ends_with(b"\r\n\r\n") {
                    let n = c.read(&mut b).await.unwrap();
                    assert!(n > 0);
                    req.extend_from_slice(&b[..n]);
                }
                let req = String::from_utf8_lossy(&req).into_owned();
                c.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n",
                )
                .await
                .unwrap();
                for piece in [
                    &b": ping\r\rdata: {\"event\":\"message.delta\",\"delta\":\"caf\xc3"[..],
                    b"\xa9\"}\r",
                    b"\n\r",
                    b"\ndata:{\"event\":\"run.completed\",\"output\":\" x\"}\r\r",
                ] {
                    c.write_all(piece).await.unwrap();
                    c.flush().await.unwrap();
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                req
            });
            let client = HermesClient::new(&url, "k".into(), "API_SERVER_KEY").unwrap();
            let mut s = client.events("run_1").await.unwrap();
            let a = s.next().await.unwrap().unwrap();
            assert_eq!(
                (a.event.as_str(), a.str("delta")),
                ("message.delta", Some("café"))
            );
            let b = s.next().await.unwrap().unwrap();
            assert_eq!(
                (b.event.as_str(), b.str("output")),
                ("run.completed", Some(" x"))
            );
            assert!(s.next().await.unwrap().is_none());
            let req = server.await.unwrap();
            assert!(req.starts_with("GET /v1/runs/run_1/events "), "{req}");
        });
    }

    #[test]
    fn an_endless_event_is_an_error() {
        block_on(async {
            let big: &'static [u8] =
                Box::leak(vec![b'x'; super::super::sse::MAX_EVENT_BYTES + 1].into_boxed_slice());
            let mut s = stream(&[b"data: ", big]);
            let e = s.next().await.unwrap_err();
            assert!(
                e.message.contains("unreadable") && e.message.contains("8388608 bytes"),
                "{}",
                e.message
            );
            assert!(s.unreadable());
        });
    }
}
