//! The chat engine (SPEC §6): one turn of an operator session through the
//! real Hermes agent, with approvals, budgets and a discrete event for every
//! step. The CLI (`chat`) and the HTTP mode call the same [`run_turn`].
//!
//! Order of a turn: check the user → create or check the session (the
//! operator inserts the row first, so `source='operator'` and `user_id` stay)
//! → reserve budget → `user_message` event → `POST /v1/runs` with the
//! history from state.db and the supervision prompt → stream events (deltas,
//! tools, approvals) → reconcile what Hermes wrote to state.db into
//! `tool_call` / `tool_result` / `assistant_message` / `llm_call` events →
//! settle budget, cost alert. A failure at any point leaves an `error` event.

use crate::app::App;
use crate::config::StoreContent;
use crate::error::{Error, Kind, Result};
use crate::hermes::api::{HermesClient, HistoryMessage, RunEvent, RunRequest};
use crate::store::events::NewEvent;
use crate::store::state::{Message, Session};
use crate::store::users::User;
use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

/// What the caller asks for.
#[derive(Debug, Clone)]
pub struct TurnRequest {
    pub username: String,
    /// Continue this session; `None` starts a new one.
    pub session_id: Option<String>,
    pub message: String,
    pub model: Option<String>,
    /// How the caller reached us, for the actor field: `cli` or `http`.
    pub channel: String,
}

/// What the caller sees while the turn runs (and, as NDJSON, `chat --json`).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TurnEvent {
    Session {
        session_id: String,
        new: bool,
    },
    /// Hermes accepted the run (`POST /v1/runs`); its id can stop it.
    RunStarted {
        run_id: String,
    },
    Delta {
        text: String,
    },
    ToolStarted {
        tool: String,
        preview: Option<String>,
    },
    ToolCompleted {
        tool: String,
        duration: Option<f64>,
        error: bool,
    },
    ApprovalRequest(ApprovalRequest),
    ApprovalDecision {
        choice: String,
        decided_by: String,
        applied: bool,
    },
    CostAlert {
        session_cost_usd: f64,
        threshold_usd: f64,
    },
    Done(TurnOutcome),
    Error {
        code: String,
        message: String,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct ApprovalRequest {
    pub session_id: String,
    pub run_id: String,
    pub command: Option<String>,
    pub description: Option<String>,
    pub pattern_key: Option<String>,
    pub choices: Vec<String>,
    /// Hermes' id for this one request (0.22): the answer names it, so
    /// several requests of one run are each answered on their own.
    pub request_id: Option<String>,
}

/// An answer to an approval request: `once`, `session` or `deny`, and who gave it.
#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    pub choice: String,
    pub decided_by: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct TurnOutcome {
    pub session_id: String,
    pub run_id: String,
    pub output: String,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cost_usd: f64,
    pub session_cost_usd: f64,
    pub tool_calls: usize,
    /// Time spent waiting on Hermes (and on approval answers), in ms.
    pub hermes_ms: f64,
    /// The operator's own time in this turn: everything else, in ms.
    pub operator_ms: f64,
}

pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Puts an approval request to the session owner and returns the answer.
pub trait Approver: Send + Sync {
    fn decide(&self, req: ApprovalRequest) -> BoxFuture<Decision>;
}

/// The operator supervision prompt, re-sent as `instructions` every turn.
pub fn supervision_prompt(app: &App, user: &User) -> String {
    let c = &app.cfg.config;
    let mut p = format!(
        "You are Hermes Agent operating under Operator supervision.\n\
         Operator user: {} (role: {})\n\
         Session context: managed and audited by the hermes-operator control plane.\n\
         Audit requirements:\n\
         - All tool calls are logged and reviewable.\n\
         - Destructive operations require explicit confirmation.\n\
         - Cost threshold alert at ${:.2} cumulative per session.\n\
         - Allowed toolsets for this session: {}.\n",
        user.username,
        user.role,
        c.budget.session_alert_usd,
        c.agent.enabled_toolsets.join(", ")
    );
    if !c.agent.instructions.is_empty() {
        p.push_str("\nAdditional operator instructions:\n");
        for (i, line) in c.agent.instructions.iter().enumerate() {
            p.push_str(&format!("{}. {line}\n", i + 1));
        }
    }
    p
}

/// Message bodies in events: verbatim, or SHA-256 + length (`audit.store_content: hash`).
pub fn content_fields(app: &App, key: &str, text: &str) -> Value {
    match app.cfg.config.audit.store_content {
        StoreContent::Full => json!({ key: text }),
        StoreContent::Hash => json!({
            format!("{key}_sha256"): hex::encode(Sha256::digest(text.as_bytes())),
            format!("{key}_length"): text.len(),
        }),
    }
}

fn merge(mut a: Value, b: Value) -> Value {
    if let (Some(a), Value::Object(b)) = (a.as_object_mut(), b) {
        a.extend(b);
    }
    a
}

/// The user of a turn: exists, enabled, allowed to chat.
pub fn chat_user(app: &App, username: &str) -> Result<User> {
    crate::ops::accounts::require_chat_user(app, username)
}

/// An existing session the user may continue: an operator session they own, not ended.
fn continuable(db: &crate::store::state::StateDb, user: &User, id: &str) -> Result<Session> {
    crate::ops::sessions::validate_session_id(id)?;
    let s = db.get_session(id)?.ok_or_else(|| {
        Error::not_found(format!("no session {id} in state.db"))
            .hint("omit --session to start a new one")
    })?;
    if !s.is_operator() {
        return Err(Error::permission(format!(
            "{id} is not an operator session (source '{}'); hermes-operator only continues its own sessions",
            s.source
        )));
    }
    if s.user_id.as_deref() != Some(user.id.as_str()) {
        return Err(Error::permission(format!(
            "session {id} belongs to another user"
        )));
    }
    if s.ended_at.is_some() {
        return Err(Error::conflict(format!("session {id} has ended"))
            .hint("start a new session (omit --session)"));
    }
    Ok(s)
}

/// Conversation history for /v1/runs: the live user/assistant text turns
/// (Hermes accepts role + content only; tool traffic stays in state.db).
pub fn history(messages: &[Message]) -> Vec<HistoryMessage> {
    messages
        .iter()
        .filter(|m| m.active)
        .filter_map(|m| {
            let role = m.role.as_deref()?;
            let content = m.content.as_deref()?;
            if (role == "user" || role == "assistant") && !content.trim().is_empty() {
                Some(HistoryMessage {
                    role: role.to_string(),
                    content: content.to_string(),
                })
            } else {
                None
            }
        })
        .collect()
}

struct Turn<'a> {
    app: &'a App,
    user: User,
    session_id: String,
    run_id: Option<String>,
    new_session: bool,
    /// Opened once per turn: a turn appends several times and reads state.db
    /// before and after the run.
    /// (Mutexes keep the turn `Sync`, so its future can move between threads.)
    events: std::sync::Mutex<crate::store::events::EventStore>,
    state: std::sync::Mutex<crate::store::state::StateDb>,
    /// A new session's `session_start`, appended together with the turn's
    /// first event (one commit instead of two).
    start_event: std::sync::Mutex<Option<NewEvent>>,
}

impl Turn<'_> {
    fn event(&self, kind: &str, data: Value) -> NewEvent {
        self.app
            .event(kind, data)
            .session(&self.session_id)
            .user(&self.user.id)
    }
    fn record(&self, kind: &str, data: Value) -> Result<()> {
        let ev = self.event(kind, data);
        let start = self
            .start_event
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        match start {
            Some(start) => self.events().append_batch(&[start, ev]).map(|_| ()),
            None => self.events().append(ev).map(|_| ()),
        }
    }
    fn events(&self) -> std::sync::MutexGuard<'_, crate::store::events::EventStore> {
        self.events.lock().unwrap_or_else(|p| p.into_inner())
    }
    fn state(&self) -> std::sync::MutexGuard<'_, crate::store::state::StateDb> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Run one turn. `on_event` sees progress as it happens; `approver` answers
/// approval requests. On error an `error` event is recorded and the session
/// is left consistent (a new session that Hermes never wrote to is removed).
pub async fn run_turn(
    app: &App,
    client: &HermesClient,
    req: &TurnRequest,
    approver: &dyn Approver,
    on_event: &mut (dyn FnMut(TurnEvent) + Send),
) -> Result<TurnOutcome> {
    if req.message.trim().is_empty() {
        return Err(Error::usage("the message is empty"));
    }
    if req.message.len() > 100_000 {
        return Err(Error::usage("the message is longer than 100,000 bytes"));
    }
    let t0 = Instant::now();
    let mut pre_wait = std::time::Duration::ZERO;
    let user = chat_user(app, &req.username)?;
    if let Some(m) = &req.model {
        let t = Instant::now();
        let models = client.models().await?;
        pre_wait += t.elapsed();
        if !models.iter().any(|x| x == m) {
            return Err(Error::usage(format!(
                "unknown model {:?}; Hermes offers: {}",
                crate::output::clip(m, 60),
                models.join(", ")
            ))
            .hint("models are Hermes' configured model and its platforms.api_server.extra.model_routes aliases"));
        }
    }
    let (session, new_session, state_db, start_event) = match &req.session_id {
        Some(id) => {
            let db = app.state_ro()?;
            (continuable(&db, &user, id)?, false, db, None)
        }
        None => {
            // Fail fast (before creating anything) when Hermes is down or
            // rejects our key: /v1/models needs the key, /health does not.
            // With --model the list was fetched (and the key proven) above.
            if req.model.is_none() {
                let t = Instant::now();
                client.verify_key().await?;
                pre_wait += t.elapsed();
            }
            let db = app.state_rw()?;
            let (s, start) = crate::ops::sessions::create_session_row(app, &db, &user)?;
            (s, true, db, Some(start))
        }
    };
    let turn = Turn {
        app,
        user,
        session_id: session.id.clone(),
        run_id: None,
        new_session,
        events: std::sync::Mutex::new(app.events()?),
        state: std::sync::Mutex::new(state_db),
        start_event: std::sync::Mutex::new(start_event),
    };
    on_event(TurnEvent::Session {
        session_id: turn.session_id.clone(),
        new: new_session,
    });
    let mut turn = turn;
    let reservation = match reserve(&turn) {
        Ok(r) => r,
        Err(e) => {
            // The caller was told about the session: tell it why the turn ended.
            let e = fail(&turn, "budget", e);
            on_event(TurnEvent::Error {
                code: e.kind.code().into(),
                message: e.message.clone(),
            });
            return Err(e);
        }
    };
    let result = drive(&mut turn, client, req, &session, approver, on_event).await;
    let (actual, outcome) = match result {
        Ok((o, spent)) => (spent, Ok(o)),
        Err((e, spent)) => (spent, Err(e)),
    };
    if let Some(r) = reservation {
        if let Err(e) = app.users().and_then(|u| u.settle_budget(&r, actual)) {
            // The turn itself is done; say loudly that the ledger lags.
            eprintln!("warning: could not settle the budget reservation {r}: {e}");
        }
    }
    match outcome {
        Ok(mut o) => {
            o.hermes_ms += pre_wait.as_secs_f64() * 1e3;
            o.operator_ms = (t0.elapsed().as_secs_f64() * 1e3 - o.hermes_ms).max(0.0);
            on_event(TurnEvent::Done(o.clone()));
            Ok(o)
        }
        Err(e) => {
            let e = fail(&turn, "run", e);
            on_event(TurnEvent::Error {
                code: e.kind.code().into(),
                message: e.message.clone(),
            });
            Err(e)
        }
    }
}

/// Record an `error` event (best effort: the original error wins) and tidy
/// up a new session Hermes never wrote to.
fn fail(turn: &Turn, stage: &str, e: Error) -> Error {
    let _ = turn.record(
        "error",
        json!({"stage": stage, "code": e.kind.code(), "message": e.message, "run_id": turn.run_id}),
    );
    if turn.new_session {
        if let Ok(db) = turn.app.state_rw() {
            if let Ok(true) = db.delete_empty_operator_session(&turn.session_id) {
                let _ = turn.record(
                    "session_end",
                    json!({"reason": "first turn failed; empty session removed"}),
                );
            }
        }
    }
    e
}

fn utc_day() -> String {
    chrono::Utc::now().format("%Y-%m-%d").to_string()
}

/// Reserve the turn's share of the user's daily budget, if one is set.
fn reserve(turn: &Turn) -> Result<Option<String>> {
    let b = &turn.app.cfg.config.budget;
    let Some(limit) = b.user_daily_usd else {
        return Ok(None);
    };
    let day = utc_day();
    let users = turn.app.users()?;
    match users.reserve_budget(&turn.user.id, &day, &turn.session_id, b.turn_reserve_usd, limit)? {
        Ok(id) => Ok(Some(id)),
        Err(used) => Err(Error::permission(format!(
            "daily budget of ${limit:.2} for {} is spent (${used:.4} used or reserved today, UTC)",
            turn.user.username
        ))
        .hint("an admin can raise budget.user_daily_usd in profiles/operator/config.yaml; the budget resets at 00:00 UTC")),
    }
}

type DriveResult = std::result::Result<(TurnOutcome, f64), (Error, f64)>;

async fn drive(
    turn: &mut Turn<'_>,
    client: &HermesClient,
    req: &TurnRequest,
    before: &Session,
    approver: &dyn Approver,
    on_event: &mut (dyn FnMut(TurnEvent) + Send),
) -> DriveResult {
    let app = turn.app;
    let started = Instant::now();
    let prior = turn
        .state()
        .messages(&turn.session_id)
        .map_err(|e| (e, 0.0))?;
    let last_msg_id = prior.iter().map(|m| m.id).max().unwrap_or(0);
    let seq_before = turn.events().head().map(|h| h.0).map_err(|e| (e, 0.0))?;
    turn.record(
        "user_message",
        merge(
            content_fields(app, "content", &req.message),
            json!({"model": req.model, "channel": req.channel}),
        ),
    )
    .map_err(|e| (e, 0.0))?;
    let hist = history(&prior);
    let instructions = supervision_prompt(app, &turn.user);
    let mut waited = std::time::Duration::ZERO;
    let t_wait = Instant::now();
    // One key per turn: a retried POST after a lost answer starts no second run.
    let idem_key = format!(
        "hop-{}-{}",
        turn.session_id,
        crate::ops::credentials::random_hex(12)
    );
    let started_run = client
        .start_run(
            &RunRequest {
                input: &req.message,
                session_id: &turn.session_id,
                instructions: &instructions,
                conversation_history: &hist,
                model: req.model.as_deref(),
            },
            &idem_key,
        )
        .await
        .map_err(|e| (e, 0.0))?;
    waited += t_wait.elapsed();
    let run_id = started_run.run_id.clone();
    if started_run.attempts > 1 {
        turn.record(
            "run_retried",
            json!({"run_id": run_id, "attempts": started_run.attempts,
                   "replayed": started_run.replayed, "idempotency_key": idem_key}),
        )
        .map_err(|e| (e, 0.0))?;
    }
    turn.run_id = Some(run_id.clone());
    on_event(TurnEvent::RunStarted {
        run_id: run_id.clone(),
    });

    let mut text = RunText::default();
    let mut failure: Option<Error> = None;
    let mut completed = false;
    let mut stream_broke = false;
    let t_wait = Instant::now();
    let opened = client.events(&run_id).await;
    waited += t_wait.elapsed();
    let stream_err = match opened {
        Err(e) => {
            // Hermes went away between starting the run and streaming it.
            stream_broke = e.kind == Kind::Unavailable;
            Some(e)
        }
        Ok(mut events) => loop {
            let t_wait = Instant::now();
            let next = events.next().await;
            waited += t_wait.elapsed();
            let ev = match next {
                Ok(Some(ev)) => ev,
                Ok(None) => {
                    stream_broke = true;
                    break None;
                }
                Err(e) => {
                    stream_broke = true;
                    break Some(e);
                }
            };
            match handle_event(turn, client, ev, approver, on_event, &mut text, &mut waited).await {
                Ok(Flow::Continue) => {}
                Ok(Flow::Completed) => {
                    completed = true;
                    break None;
                }
                Ok(Flow::Failed(e)) => {
                    failure = Some(e);
                    break None;
                }
                Err(e) => {
                    // We cannot follow the run any more: do not leave it running unattended.
                    let _ = client.stop_run(&run_id).await;
                    break Some(e);
                }
            }
        },
    };
    let _ = flush_reasoning(turn, &mut text.reasoning);
    let mut output = text.output;
    // The stream broke before the run ended: ask Hermes what became of it
    // (0.22 keeps the status of a keyed run across a gateway restart and
    // calls it `interrupted`).
    let stream_err = if stream_broke && !completed && failure.is_none() {
        match settled_status(client, &run_id).await {
            Some(st) => {
                failure = Some(run_ended(turn, &st));
                None
            }
            None => stream_err,
        }
    } else {
        stream_err
    };
    let latency_ms = started.elapsed().as_millis() as i64;
    // Whatever happened, write down what Hermes did.
    let rec = reconcile(turn, &run_id, last_msg_id, seq_before, before, latency_ms);
    let (after, tool_calls, spent) = match rec {
        Ok(v) => v,
        Err(e) => return Err((stream_err.or(failure).unwrap_or(e), 0.0)),
    };
    if let Some(e) = stream_err.or(failure) {
        return Err((e, spent));
    }
    if !completed {
        return Err((
            Error::unavailable("the event stream ended before the run completed"),
            spent,
        ));
    }
    let threshold = app.cfg.config.budget.session_alert_usd;
    let (cost_before, cost_after) = (before.cost_usd(), after.cost_usd());
    if threshold > 0.0 && cost_before < threshold && cost_after >= threshold {
        let _ = turn.record(
            "cost_alert",
            json!({"session_cost_usd": cost_after, "threshold_usd": threshold}),
        );
        on_event(TurnEvent::CostAlert {
            session_cost_usd: cost_after,
            threshold_usd: threshold,
        });
    }
    if output.is_empty() {
        output = after_output(&turn.state(), &turn.session_id, last_msg_id);
    }
    Ok((
        TurnOutcome {
            session_id: turn.session_id.clone(),
            run_id,
            output,
            input_tokens: after.input_tokens - before.input_tokens,
            output_tokens: after.output_tokens - before.output_tokens,
            cost_usd: spent,
            session_cost_usd: cost_after,
            tool_calls,
            hermes_ms: waited.as_secs_f64() * 1e3,
            operator_ms: 0.0,
        },
        spent,
    ))
}

/// Text gathered from the stream: the final output and reasoning not yet recorded.
#[derive(Default)]
struct RunText {
    output: String,
    reasoning: String,
}

enum Flow {
    Continue,
    Completed,
    Failed(Error),
}

/// After the event stream broke: the run's final status, if Hermes comes
/// back within 30 seconds and knows the run ended (`interrupted`,
/// `failed`, `cancelled`). `None`: still unknown.
async fn settled_status(client: &HermesClient, run_id: &str) -> Option<Value> {
    // A restarted 0.22 gateway takes ~10 s to listen again.
    let deadline = Instant::now() + std::time::Duration::from_secs(30);
    loop {
        match client.run_status(run_id).await {
            Ok(st) => match st["status"].as_str() {
                Some("interrupted" | "failed" | "cancelled") => return Some(st),
                // Running elsewhere or completed without us seeing it: the
                // stream's error stands (reconcile writes what happened).
                Some(_) => return None,
                None => {}
            },
            // A Hermes that forgets runs on restart (0.19): nothing to learn.
            Err(e) if e.kind == Kind::NotFound => return None,
            Err(_) => {}
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

/// The run ended without completing (`run.interrupted` or a status read
/// after the stream broke): an event that says how, and the turn's error.
fn run_ended(turn: &Turn<'_>, st: &Value) -> Error {
    let status = st["status"].as_str().unwrap_or("failed");
    let why = st["error"].as_str().unwrap_or_default();
    if status == "interrupted" {
        let _ = turn.record(
            "run_interrupted",
            json!({"run_id": turn.run_id, "status": status, "error": why}),
        );
        return Error::unavailable(format!(
            "Hermes was interrupted mid-turn ({}); the turn did not finish",
            if why.is_empty() { "gateway restart" } else { why }
        ))
        .hint("the session keeps what Hermes wrote before the restart; send the message again to carry on");
    }
    Error::unavailable(format!(
        "Hermes' run ended as {status}{}",
        if why.is_empty() {
            String::new()
        } else {
            format!(": {why}")
        }
    ))
}

/// Reasoning arrives in pieces (`reasoning.delta`); it is recorded once per
/// stretch, as one event.
fn flush_reasoning(turn: &Turn<'_>, buf: &mut String) -> Result<()> {
    if buf.is_empty() {
        return Ok(());
    }
    let text = std::mem::take(buf);
    turn.record(
        "reasoning",
        merge(
            content_fields(turn.app, "text", &text),
            json!({"run_id": turn.run_id}),
        ),
    )
}

/// A subagent's lifecycle event (`subagent.start`, `subagent.complete`, ...):
/// its ids, status and figures as Hermes sent them, free text under the
/// content policy.
fn record_subagent(turn: &Turn<'_>, ev: &RunEvent) -> Result<()> {
    const TEXT: [&str; 4] = ["goal", "summary", "output_tail", "preview"];
    let mut data = json!({
        "run_id": turn.run_id,
        "phase": ev.event.strip_prefix("subagent.").unwrap_or(&ev.event),
    });
    for (k, v) in &ev.fields {
        if k == "run_id" || k == "event" {
            continue;
        }
        if TEXT.contains(&k.as_str()) {
            if let Some(t) = v.as_str() {
                data = merge(data, content_fields(turn.app, k, t));
            }
        } else {
            data[k.as_str()] = v.clone();
        }
    }
    turn.record("subagent", data)
}

/// One event from Hermes: pass progress on, put approvals to the owner.
async fn handle_event(
    turn: &Turn<'_>,
    client: &HermesClient,
    ev: RunEvent,
    approver: &dyn Approver,
    on_event: &mut (dyn FnMut(TurnEvent) + Send),
    text: &mut RunText,
    waited: &mut std::time::Duration,
) -> Result<Flow> {
    let RunText { output, reasoning } = text;
    let run_id = turn.run_id.as_deref().unwrap_or_default();
    match ev.event.as_str() {
        "reasoning.delta" => {
            reasoning.push_str(ev.str("delta").or(ev.str("text")).unwrap_or_default());
            return Ok(Flow::Continue);
        }
        // On the runs stream this carries a preview of the assistant's text
        // (measured on 0.19 and 0.22 with a model that has no reasoning),
        // which `assistant_message` records from state.db already.
        "reasoning.available" => return Ok(Flow::Continue),
        _ => flush_reasoning(turn, reasoning)?,
    }
    match ev.event.as_str() {
        "run.steered" => turn.record(
            "run_steered",
            json!({"run_id": run_id, "accepted": ev.fields.get("accepted")}),
        )?,
        e if e.starts_with("subagent.") => record_subagent(turn, &ev)?,
        "run.interrupted" => {
            let st = Value::Object(ev.fields.clone());
            let mut st = st;
            st["status"] = "interrupted".into();
            return Ok(Flow::Failed(run_ended(turn, &st)));
        }
        "message.delta" => {
            if let Some(d) = ev.str("delta") {
                on_event(TurnEvent::Delta {
                    text: d.to_string(),
                });
            }
        }
        "tool.started" => on_event(TurnEvent::ToolStarted {
            tool: ev.str("tool").unwrap_or("?").to_string(),
            preview: ev.str("preview").map(str::to_string),
        }),
        "tool.completed" => on_event(TurnEvent::ToolCompleted {
            tool: ev.str("tool").unwrap_or("?").to_string(),
            duration: ev.fields.get("duration").and_then(Value::as_f64),
            error: ev
                .fields
                .get("error")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        }),
        "approval.request" => {
            let ar = ApprovalRequest {
                session_id: turn.session_id.clone(),
                run_id: run_id.to_string(),
                command: ev.str("command").map(str::to_string),
                description: ev.str("description").map(str::to_string),
                pattern_key: ev.str("pattern_key").map(str::to_string),
                choices: ev
                    .fields
                    .get("choices")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|c| c.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default(),
                request_id: ev.str("request_id").map(str::to_string),
            };
            turn.record(
                "approval_request",
                json!({"run_id": run_id, "command": ar.command, "description": ar.description,
                       "pattern_key": ar.pattern_key, "request_id": ar.request_id}),
            )?;
            on_event(TurnEvent::ApprovalRequest(ar.clone()));
            let t_wait = Instant::now();
            let d = approver.decide(ar.clone()).await;
            // "always" would outlive the session: the operator never sends it.
            let choice = match d.choice.as_str() {
                "once" | "session" | "deny" => d.choice.clone(),
                _ => "deny".to_string(),
            };
            // Hermes denies on its own timeout; answering after that is a 409.
            let applied = match client
                .answer_approval(run_id, &choice, ar.request_id.as_deref())
                .await
            {
                Ok(()) => true,
                Err(e) if e.kind == Kind::Conflict || e.kind == Kind::NotFound => false,
                Err(e) => return Err(e),
            };
            *waited += t_wait.elapsed();
            turn.record(
                "approval",
                json!({"run_id": run_id, "command": ar.command, "choice": choice,
                       "request_id": ar.request_id,
                       "decided_by": d.decided_by, "applied": applied,
                       "outcome": if applied { "answered" } else { "expired: Hermes had already denied it" }}),
            )?;
            on_event(TurnEvent::ApprovalDecision {
                choice,
                decided_by: d.decided_by,
                applied,
            });
        }
        "run.completed" => {
            if let Some(o) = ev.str("output") {
                *output = o.to_string();
            }
            return Ok(Flow::Completed);
        }
        "run.failed" => {
            let msg = ev
                .fields
                .get("error")
                .map(|e| {
                    e.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| e.to_string())
                })
                .unwrap_or_else(|| "run failed".into());
            return Ok(Flow::Failed(Error::unavailable(format!(
                "Hermes' run failed: {msg}"
            ))));
        }
        "run.cancelled" => return Ok(Flow::Failed(Error::unavailable("Hermes cancelled the run"))),
        _ => {}
    }
    Ok(Flow::Continue)
}

fn after_output(db: &crate::store::state::StateDb, session_id: &str, last_msg_id: i64) -> String {
    db.messages(session_id)
        .map(|ms| {
            ms.iter()
                .rev()
                .find(|m| {
                    m.id > last_msg_id
                        && m.role.as_deref() == Some("assistant")
                        && m.content.is_some()
                })
                .and_then(|m| m.content.clone())
                .unwrap_or_default()
        })
        .unwrap_or_default()
}

/// Record what Hermes wrote to state.db during the run as discrete events,
/// skipping tool events the shell hook already recorded live (same
/// tool_call_id). Returns the session after the run, the number of tool
/// calls and the cost of the turn.
fn reconcile(
    turn: &Turn,
    run_id: &str,
    last_msg_id: i64,
    seq_before: i64,
    before: &Session,
    latency_ms: i64,
) -> Result<(Session, usize, f64)> {
    let app = turn.app;
    let db = turn.state();
    let after = db.get_session(&turn.session_id)?.ok_or_else(|| {
        Error::not_found(format!(
            "session {} vanished from state.db",
            turn.session_id
        ))
    })?;
    let new: Vec<Message> = db
        .messages(&turn.session_id)?
        .into_iter()
        .filter(|m| m.id > last_msg_id)
        .collect();
    drop(db);
    let store = turn.events();
    let live = store.after(seq_before, i64::MAX)?;
    let mut seen_calls = HashSet::new();
    let mut seen_results = HashSet::new();
    let mut hook_llm = false;
    for e in live
        .iter()
        .filter(|e| e.session_id.as_deref() == Some(turn.session_id.as_str()))
    {
        let d = e.data_value();
        let id = d
            .get("tool_call_id")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        match e.kind.as_str() {
            "tool_call" if !id.is_empty() => {
                seen_calls.insert(id);
            }
            "tool_result" if !id.is_empty() => {
                seen_results.insert(id);
            }
            "llm_call" => hook_llm = true,
            _ => {}
        }
    }
    let mut evs = Vec::new();
    let mut tool_calls = 0;
    for m in &new {
        match m.role.as_deref() {
            Some("assistant") => {
                if let Some(calls) = m.tool_calls.as_array() {
                    for c in calls {
                        tool_calls += 1;
                        let id = c
                            .get("id")
                            .or_else(|| c.get("call_id"))
                            .and_then(Value::as_str)
                            .unwrap_or("");
                        if !id.is_empty() && seen_calls.contains(id) {
                            continue;
                        }
                        let f = c.get("function").cloned().unwrap_or(Value::Null);
                        let name = f.get("name").and_then(Value::as_str).unwrap_or("?");
                        let args_text = f.get("arguments").and_then(Value::as_str).unwrap_or("");
                        let args: Value = serde_json::from_str(args_text)
                            .unwrap_or(Value::String(args_text.into()));
                        let data = match app.cfg.config.audit.store_content {
                            StoreContent::Full => json!({"arguments": args}),
                            StoreContent::Hash => {
                                json!({"arguments_sha256": hex::encode(Sha256::digest(args_text.as_bytes()))})
                            }
                        };
                        evs.push(turn.event(
                            "tool_call",
                            merge(data, json!({"tool": name, "tool_call_id": id, "message_id": m.id, "source": "state.db", "run_id": run_id})),
                        ));
                    }
                }
                if let Some(text) = m.content.as_deref().filter(|t| !t.is_empty()) {
                    evs.push(turn.event(
                        "assistant_message",
                        merge(
                            content_fields(app, "content", text),
                            json!({"message_id": m.id, "finish_reason": m.finish_reason, "run_id": run_id}),
                        ),
                    ));
                }
            }
            Some("tool") => {
                let id = m.tool_call_id.as_deref().unwrap_or("");
                if !id.is_empty() && seen_results.contains(id) {
                    continue;
                }
                let text = m.content.as_deref().unwrap_or("");
                evs.push(turn.event(
                    "tool_result",
                    merge(
                        content_fields(app, "result", text),
                        json!({"tool": m.tool_name, "tool_call_id": id, "status": tool_status(text),
                               "message_id": m.id, "source": "state.db", "run_id": run_id}),
                    ),
                ));
            }
            _ => {}
        }
    }
    let spent = (after.cost_usd() - before.cost_usd()).max(0.0);
    if !hook_llm
        && (after.api_call_count > before.api_call_count
            || after.input_tokens > before.input_tokens)
    {
        evs.push(turn.event(
            "llm_call",
            json!({
                "model": after.model,
                "input_tokens": after.input_tokens - before.input_tokens,
                "output_tokens": after.output_tokens - before.output_tokens,
                "cost_usd": spent,
                "api_calls": after.api_call_count - before.api_call_count,
                "latency_ms": latency_ms,
                "granularity": "run",
                "run_id": run_id,
            }),
        ));
    }
    if !evs.is_empty() {
        store.append_batch(&evs)?;
    }
    Ok((after, tool_calls, spent))
}

/// "ok" unless the tool's JSON result says otherwise.
fn tool_status(text: &str) -> &'static str {
    match serde_json::from_str::<Value>(text) {
        Ok(v) => {
            let err = v
                .get("error")
                .is_some_and(|e| !e.is_null() && e != &Value::Bool(false));
            let code = v.get("exit_code").and_then(Value::as_i64).unwrap_or(0);
            if err || code != 0 {
                "error"
            } else {
                "ok"
            }
        }
        Err(_) => "ok",
    }
}

/// Answer approvals from the terminal: the owner is asked with a prompt;
/// without a terminal the policy decides.
pub struct PolicyApprover {
    pub policy: ApprovePolicy,
    pub decided_by: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ApprovePolicy {
    /// Ask on the terminal; deny when there is none
    Prompt,
    /// Deny every request
    Deny,
    /// Approve each request once
    Once,
    /// Approve the command pattern for the rest of the session
    Session,
}

impl Approver for PolicyApprover {
    fn decide(&self, req: ApprovalRequest) -> BoxFuture<Decision> {
        let policy = self.policy;
        let by = self.decided_by.clone();
        Box::pin(async move {
            use std::io::IsTerminal;
            let choice = match policy {
                ApprovePolicy::Deny => "deny".to_string(),
                ApprovePolicy::Once => "once".to_string(),
                ApprovePolicy::Session => "session".to_string(),
                ApprovePolicy::Prompt
                    if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) =>
                {
                    "deny".to_string()
                }
                ApprovePolicy::Prompt => {
                    let prompt = format!(
                        "Hermes wants to run a command that needs approval:\n  {}\n  ({})\nAllow?",
                        crate::output::sanitize(req.command.as_deref().unwrap_or("?")),
                        crate::output::sanitize(
                            req.description.as_deref().unwrap_or("dangerous command")
                        )
                    );
                    tokio::task::spawn_blocking(move || {
                        let items = ["deny", "allow once", "allow for this session"];
                        dialoguer::Select::new()
                            .with_prompt(prompt)
                            .items(&items)
                            .default(0)
                            .interact()
                            .map(|i| ["deny", "once", "session"][i].to_string())
                            .unwrap_or_else(|_| "deny".to_string())
                    })
                    .await
                    .unwrap_or_else(|_| "deny".to_string())
                }
            };
            Decision {
                choice,
                decided_by: by,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(id: i64, role: &str, content: Option<&str>, active: bool) -> Message {
        Message {
            id,
            session_id: "op_x".into(),
            role: Some(role.into()),
            content: content.map(str::to_string),
            tool_call_id: None,
            tool_calls: Value::Null,
            tool_name: None,
            timestamp: None,
            timestamp_epoch: None,
            token_count: None,
            finish_reason: None,
            reasoning: None,
            active,
        }
    }

    #[test]
    fn history_keeps_live_text_turns_only() {
        let ms = vec![
            msg(1, "user", Some("hi"), true),
            msg(2, "assistant", None, true),
            msg(3, "tool", Some("{}"), true),
            msg(4, "assistant", Some("hello"), true),
            msg(5, "user", Some("rewound"), false),
        ];
        let h = history(&ms);
        assert_eq!(h.len(), 2);
        assert_eq!(h[0].content, "hi");
        assert_eq!(h[1].role, "assistant");
    }

    fn user(id: &str, role: crate::store::users::Role) -> User {
        User {
            id: id.into(),
            username: id.into(),
            role,
            disabled: false,
            token_version: 1,
            created_at: String::new(),
            updated_at: String::new(),
            password_changed_at: String::new(),
            last_login_at: None,
        }
    }

    fn request(session: &str) -> ApprovalRequest {
        ApprovalRequest {
            session_id: session.into(),
            run_id: "run_1".into(),
            command: Some("chmod 777 x".into()),
            description: None,
            pattern_key: None,
            choices: vec![],
            request_id: None,
        }
    }

    #[tokio::test]
    async fn pending_approvals_owner_or_admin_answers() {
        use crate::store::users::Role;
        let reg = std::sync::Arc::new(PendingApprovals::default());
        let owner = user("u_owner", Role::User);
        let approver = reg.approver(&owner, std::time::Duration::from_secs(5));
        let waiting = tokio::spawn(async move { approver.decide(request("op_a")).await });
        while reg.pending("op_a").is_none() {
            tokio::task::yield_now().await;
        }
        // Another user, a viewer: refused; a bad choice: refused; nothing answered.
        let other = user("u_other", Role::User);
        assert_eq!(
            reg.answer("op_a", &other, "once").unwrap_err().kind,
            Kind::Permission
        );
        assert_eq!(
            reg.answer("op_a", &owner, "always").unwrap_err().kind,
            Kind::Usage
        );
        assert_eq!(
            reg.answer("op_b", &owner, "once").unwrap_err().kind,
            Kind::NotFound
        );
        // An admin may answer for the owner.
        let admin = user("u_admin", Role::Admin);
        reg.answer("op_a", &admin, "once").unwrap();
        let d = waiting.await.unwrap();
        assert_eq!(d.choice, "once");
        assert!(d.decided_by.contains("u_admin"));
        assert!(reg.pending("op_a").is_none());
    }

    #[tokio::test]
    async fn pending_approvals_time_out_as_deny() {
        use crate::store::users::Role;
        let reg = std::sync::Arc::new(PendingApprovals::default());
        let owner = user("u_owner", Role::User);
        let d = reg
            .approver(&owner, std::time::Duration::from_millis(20))
            .decide(request("op_a"))
            .await;
        assert_eq!(d.choice, "deny");
        assert_eq!(d.decided_by, "timeout");
        assert!(reg.pending("op_a").is_none());
    }

    #[test]
    fn tool_status_reads_results() {
        assert_eq!(
            tool_status(r#"{"output":"x","exit_code":0,"error":null}"#),
            "ok"
        );
        assert_eq!(
            tool_status(r#"{"output":"x","exit_code":1,"error":null}"#),
            "error"
        );
        assert_eq!(tool_status(r#"{"error":"denied"}"#), "error");
        assert_eq!(tool_status("plain text"), "ok");
    }
}

/// Approval requests waiting for an answer from another request (the HTTP
/// mode: the chat stream shows the request, `POST …/approval` answers it).
/// One pending request per session at a time, as Hermes asks one by one.
#[derive(Default)]
pub struct PendingApprovals {
    inner: std::sync::Mutex<std::collections::HashMap<String, Pending>>,
}

struct Pending {
    owner_id: String,
    request: ApprovalRequest,
    tx: tokio::sync::oneshot::Sender<Decision>,
}

impl PendingApprovals {
    /// An [`Approver`] for one turn of `owner`'s session that waits up to
    /// `timeout` for [`PendingApprovals::answer`], then denies.
    pub fn approver(
        self: &std::sync::Arc<Self>,
        owner: &User,
        timeout: std::time::Duration,
    ) -> ChannelApprover {
        ChannelApprover {
            registry: self.clone(),
            owner_id: owner.id.clone(),
            timeout,
        }
    }

    /// The request waiting in a session, if any.
    pub fn pending(&self, session_id: &str) -> Option<ApprovalRequest> {
        let map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        map.get(session_id).map(|p| p.request.clone())
    }

    /// Answer the waiting request of `session_id` as `by`: only the session
    /// owner or an admin may (SPEC §4).
    pub fn answer(&self, session_id: &str, by: &User, choice: &str) -> Result<()> {
        if !matches!(choice, "once" | "session" | "deny") {
            return Err(Error::usage("choice must be one of: once, session, deny"));
        }
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let Some(p) = map.get(session_id) else {
            return Err(Error::not_found(format!(
                "no approval is pending in session {session_id}"
            )));
        };
        if p.owner_id != by.id && by.role != crate::store::users::Role::Admin {
            return Err(Error::permission(
                "only the session owner or an admin may answer this approval",
            ));
        }
        let p = map.remove(session_id).expect("present");
        let _ = p.tx.send(Decision {
            choice: choice.to_string(),
            decided_by: format!("{} ({})", by.username, by.role),
        });
        Ok(())
    }
}

pub struct ChannelApprover {
    registry: std::sync::Arc<PendingApprovals>,
    owner_id: String,
    timeout: std::time::Duration,
}

impl Approver for ChannelApprover {
    fn decide(&self, req: ApprovalRequest) -> BoxFuture<Decision> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let session = req.session_id.clone();
        {
            let mut map = self
                .registry
                .inner
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            map.insert(
                session.clone(),
                Pending {
                    owner_id: self.owner_id.clone(),
                    request: req,
                    tx,
                },
            );
        }
        let registry = self.registry.clone();
        let timeout = self.timeout;
        Box::pin(async move {
            let d = match tokio::time::timeout(timeout, rx).await {
                Ok(Ok(d)) => d,
                _ => Decision {
                    choice: "deny".into(),
                    decided_by: "timeout".into(),
                },
            };
            registry
                .inner
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&session);
            d
        })
    }
}
