//! Driving a run: start it, follow its event stream, answer approvals.

use super::*;
use crate::hermes::api::Event;
use crate::store::events::EventKind;

pub(super) type DriveResult = std::result::Result<(TurnOutcome, f64), (Error, f64)>;

/// How Hermes' part of a turn ended, whichever way it ran.
struct Ran {
    run_id: String,
    output: String,
    end: RunEnd,
}

/// The one way a run ended (these exclude each other).
enum RunEnd {
    /// Hermes finished it (`run.completed`, or the completion's answer).
    Completed,
    /// Hermes said it failed, was interrupted or cancelled — or we stopped
    /// it (its caller lost the right to it): the error for the caller.
    Failed(Error),
    /// We lost track of it (connection, stream) and Hermes could not say
    /// how it ended.
    Lost(Error),
    /// The event stream ended without an end event, and Hermes did not
    /// know either.
    EndedEarly,
}

impl RunEnd {
    /// Takes the error of a run Hermes failed or we lost (what is left is
    /// not `Completed`). `EndedEarly` keeps its error for later: it is less
    /// specific than a failed flush or reconciliation.
    fn take_error(&mut self) -> Option<Error> {
        match std::mem::replace(self, RunEnd::EndedEarly) {
            RunEnd::Failed(e) | RunEnd::Lost(e) => Some(e),
            RunEnd::Completed => {
                *self = RunEnd::Completed;
                None
            }
            RunEnd::EndedEarly => None,
        }
    }
}

/// Drive one turn on Hermes: record the user's message, let Hermes run it,
/// write down what Hermes did, and settle the outcome.
///
/// Hermes is asked one of two ways. When nobody can approve a dangerous
/// command in this turn (the approver denies every request) and the caller
/// does not follow the turn live, it is one chat completion continuing the
/// session: Hermes itself never runs a dangerous command there (0.19 hands
/// it back as `pending_approval`, 0.22 blocks it) and the call costs Hermes
/// about 20 ms less than a run and its event stream (docs/hermes.md,
/// "Corrections"). Otherwise it is a run (`/v1/runs`), whose event stream
/// carries text as it is written, tool progress and approval requests.
#[expect(
    clippy::too_many_lines,
    reason = "the turn's steps in their order (record, ask Hermes, wait for the flush, reconcile, log refusals, settle the outcome); each step is its own function and the errors of each decide what the next may do"
)]
pub(super) async fn drive(
    turn: &mut Turn<'_>,
    client: &HermesClient,
    req: &TurnRequest,
    before: &Session,
    approver: &dyn Approver,
    on_event: &mut (dyn FnMut(TurnEvent) + Send),
) -> DriveResult {
    let app = turn.app;
    let started = Instant::now();
    // A session made for this turn has no messages yet.
    let prior = match turn.new_session {
        true => Vec::new(),
        false => turn
            .state()
            .messages(&turn.session_id)
            .map_err(|e| (e, 0.0))?,
    };
    let last_msg_id = prior.iter().map(|m| m.id).max().unwrap_or(0);
    let seq_before = turn.events().head().map(|h| h.0).map_err(|e| (e, 0.0))?;
    // In the log before Hermes is asked; on disk by the time Hermes answers.
    let flushing = turn
        .record_flushing(
            EventKind::UserMessage,
            merge(
                content_fields(app, "content", &req.message),
                json!({"model": req.model, "channel": req.channel}),
            ),
        )
        .map_err(|e| (e, 0.0))?;
    let instructions = supervision_prompt(app, &turn.user, req.toolsets.as_deref());
    let mut waited = std::time::Duration::ZERO;
    let denied_by = approver.denies_all().filter(|_| !req.stream);
    let ran = match &denied_by {
        Some(_) => complete(turn, client, req, &instructions, &mut waited).await,
        None => {
            let hist = history(&prior);
            follow_run(
                turn,
                client,
                req,
                &hist,
                &instructions,
                approver,
                on_event,
                &mut waited,
            )
            .await
        }
    }
    .map_err(|e| (e, 0.0))?;
    let Ran {
        run_id,
        mut output,
        mut end,
    } = ran;
    let failed = end.take_error();
    let latency_ms = started.elapsed().as_millis() as i64;
    let flushed = flushing.wait();
    // Whatever happened, write down what Hermes did.
    let rec = reconcile(turn, &run_id, last_msg_id, seq_before, before, latency_ms);
    let Reconciled {
        after,
        tool_calls,
        spent,
        new,
    } = match rec {
        Ok(v) => v,
        Err(e) => return Err((failed.unwrap_or(e), 0.0)),
    };
    if let Some(by) = &denied_by {
        if let Err(e) = record_refused_commands(turn, &new, by) {
            return Err((failed.unwrap_or(e), spent));
        }
    }
    if let Some(e) = failed.or(flushed.err()) {
        return Err((e, spent));
    }
    if !matches!(end, RunEnd::Completed) {
        return Err((
            Error::unavailable("the event stream ended before the run completed"),
            spent,
        ));
    }
    // A plain completion is one call: its answer is held back if the caller
    // lost the right to it meanwhile.
    if let Some(why) = turn.caller_refused() {
        return Err((stopped(why), spent));
    }
    cost_alert(turn, before, &after, on_event);
    if output.is_empty() {
        output = after_output(&new);
    }
    Ok((
        TurnOutcome {
            session_id: turn.session_id.clone(),
            run_id,
            output,
            input_tokens: after.input_tokens - before.input_tokens,
            output_tokens: after.output_tokens - before.output_tokens,
            cost_usd: spent,
            session_cost_usd: after.cost_usd(),
            tool_calls,
            hermes_ms: waited.as_secs_f64() * 1e3,
            operator_ms: 0.0,
        },
        spent,
    ))
}

/// The turn's end when its caller no longer stands (`ops::standing`).
fn stopped(why: String) -> Error {
    Error::permission(format!("the turn was stopped: {why}"))
        .hint("nothing more of this turn is shown; ask an administrator if this is unexpected")
}

/// A `cost_alert` when this turn took the session's cost across the
/// configured threshold.
fn cost_alert(
    turn: &Turn<'_>,
    before: &Session,
    after: &Session,
    on_event: &mut (dyn FnMut(TurnEvent) + Send),
) {
    let threshold = turn.app.cfg.config.budget.session_alert_usd;
    let (cost_before, cost_after) = (before.cost_usd(), after.cost_usd());
    if threshold > 0.0 && cost_before < threshold && cost_after >= threshold {
        let _ = turn.record(
            EventKind::CostAlert,
            json!({"session_cost_usd": cost_after, "threshold_usd": threshold}),
        );
        on_event(TurnEvent::CostAlert {
            session_cost_usd: cost_after,
            threshold_usd: threshold,
        });
    }
}

/// The turn as one chat completion (see [`drive`]). A lost connection is
/// reported, never retried: the completion may have run.
async fn complete(
    turn: &mut Turn<'_>,
    client: &HermesClient,
    req: &TurnRequest,
    instructions: &str,
    waited: &mut std::time::Duration,
) -> Result<Ran> {
    let t_wait = Instant::now();
    let r = client
        .complete(&CompletionRequest {
            input: &req.message,
            session_id: &turn.session_id,
            instructions,
            model: req.model.as_deref(),
        })
        .await;
    *waited += t_wait.elapsed();
    Ok(match r {
        Ok(c) => {
            if c.session_id
                .as_deref()
                .is_some_and(|s| s != turn.session_id)
            {
                // Hermes continued elsewhere (its context compression can
                // rotate the id): the operator's row would not follow.
                let _ = turn.record(
                    EventKind::Error,
                    json!({"stage": "run", "code": "session_rotated", "run_id": c.id,
                           "message": format!("Hermes answered for session {:?}", c.session_id)}),
                );
            }
            turn.run_id = Some(c.id.clone());
            Ran {
                run_id: c.id,
                output: c.output,
                end: RunEnd::Completed,
            }
        }
        Err(e) if e.kind == Kind::Unavailable => Ran {
            run_id: String::new(),
            output: String::new(),
            end: RunEnd::Lost(e),
        },
        Err(e) => return Err(e),
    })
}

/// The turn as a run: start it, follow its event stream to the end, answer
/// its approval requests; a broken stream asks Hermes what became of it.
#[allow(clippy::too_many_arguments)] // the turn's parts, each used once
#[expect(
    clippy::too_many_lines,
    reason = "start the run, follow its event stream and, when the stream breaks, ask Hermes how the run ended: the three share the run id and the failure state that decide the outcome"
)]
async fn follow_run(
    turn: &mut Turn<'_>,
    client: &HermesClient,
    req: &TurnRequest,
    hist: &[HistoryMessage],
    instructions: &str,
    approver: &dyn Approver,
    on_event: &mut (dyn FnMut(TurnEvent) + Send),
    waited: &mut std::time::Duration,
) -> Result<Ran> {
    let t_wait = Instant::now();
    // One key per turn: a retried POST after a lost answer starts no second run.
    let idem_key = format!("hop-{}-{}", turn.session_id, crate::crypto::random_hex(12));
    let started_run = client
        .start_run(
            &RunRequest {
                input: &req.message,
                session_id: &turn.session_id,
                instructions,
                conversation_history: hist,
                model: req.model.as_deref(),
            },
            &idem_key,
        )
        .await?;
    *waited += t_wait.elapsed();
    let run_id = started_run.run_id.clone();
    if started_run.attempts > 1 {
        turn.record(
            EventKind::RunRetried,
            json!({"run_id": run_id, "attempts": started_run.attempts,
                   "replayed": started_run.replayed, "idempotency_key": idem_key}),
        )?;
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
    *waited += t_wait.elapsed();
    let stream_err = match opened {
        Err(e) => {
            // Hermes went away between starting the run and streaming it.
            stream_broke = e.kind == Kind::Unavailable;
            Some(e)
        }
        Ok(mut events) => loop {
            let t_wait = Instant::now();
            let next = events.next().await;
            *waited += t_wait.elapsed();
            let ev = match next {
                Ok(Some(ev)) => ev,
                Ok(None) => {
                    stream_broke = true;
                    break None;
                }
                Err(e) if events.unreadable() => {
                    // The stream still runs but cannot be followed (an
                    // event lost could be an approval Hermes waits for):
                    // do not leave the run going unattended.
                    let _ = client.stop_run(&run_id).await;
                    break Some(e);
                }
                Err(e) => {
                    stream_broke = true;
                    break Some(e);
                }
            };
            match handle_event(turn, client, ev, approver, on_event, &mut text, waited).await {
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
    let end = match (completed, failure, stream_err) {
        (true, _, _) => RunEnd::Completed,
        (false, Some(e), _) => RunEnd::Failed(e),
        (false, None, Some(e)) => RunEnd::Lost(e),
        (false, None, None) => RunEnd::EndedEarly,
    };
    Ok(Ran {
        run_id,
        output: text.output,
        end,
    })
}

/// On a chat completion Hermes refuses dangerous commands itself, without
/// asking: each refusal is recorded as the `approval` a run would have had,
/// denied by the turn's policy, so the log reads the same either way.
/// Hermes' tool results say so (docs/hermes.md, "Corrections"): 0.19
/// `"status": "pending_approval"` with the command, 0.22 `"status":
/// "blocked"` with "BLOCKED: Command flagged as dangerous …" (the command
/// is then the tool call's own argument).
fn record_refused_commands(turn: &Turn<'_>, new: &[Message], decided_by: &str) -> Result<()> {
    let mut refusals = Vec::new();
    for m in new {
        if m.role.as_deref() != Some("tool") {
            continue;
        }
        let Some(v) = m
            .content
            .as_deref()
            .and_then(|c| serde_json::from_str::<Value>(c).ok())
        else {
            continue;
        };
        let refused = match v["status"].as_str() {
            Some("pending_approval") => true,
            Some("blocked") => v["error"]
                .as_str()
                .is_some_and(|e| e.starts_with("BLOCKED: Command flagged as dangerous")),
            _ => false,
        };
        if !refused {
            continue;
        }
        let command = v["command"]
            .as_str()
            .map(str::to_string)
            .or_else(|| call_argument(new, m.tool_call_id.as_deref()?, "command"));
        refusals.push(json!({
            "run_id": turn.run_id, "command": command,
            "description": v["description"].as_str().or(v["error"].as_str()),
            "choice": ApprovalChoice::Deny, "decided_by": decided_by, "applied": true,
            "outcome": "refused by Hermes: a chat completion never runs a dangerous command",
        }));
    }
    for data in refusals {
        turn.record(EventKind::Approval, data)?;
    }
    Ok(())
}

/// The argument `arg` of the tool call `call_id` among the turn's assistant messages.
fn call_argument(messages: &[Message], call_id: &str, arg: &str) -> Option<String> {
    messages.iter().find_map(|m| {
        m.tool_calls.as_array()?.iter().find_map(|c| {
            if c["id"].as_str() != Some(call_id) {
                return None;
            }
            let args = &c["function"]["arguments"];
            let args: Value = match args {
                Value::String(s) => serde_json::from_str(s).ok()?,
                v => v.clone(),
            };
            args[arg].as_str().map(str::to_string)
        })
    })
}

/// Text gathered from the stream: the final output and reasoning not yet recorded.
#[derive(Default)]
pub(super) struct RunText {
    pub(super) output: String,
    pub(super) reasoning: String,
    /// Unknown event names already recorded in this turn.
    pub(super) unknown: std::collections::BTreeSet<String>,
}

pub(super) enum Flow {
    Continue,
    Completed,
    Failed(Error),
}

/// Polls Hermes' `GET /v1/runs/{id}` every `every` for up to 30 seconds
/// until `settled` breaks with an answer for the status it read; `None`
/// when Hermes does not know the run (0.19 forgets runs on restart) or the
/// time is up. Errors in between (a gateway restarting) are polled past.
async fn poll_run<T>(
    client: &HermesClient,
    run_id: &str,
    every: std::time::Duration,
    settled: impl Fn(&str, Value) -> std::ops::ControlFlow<Option<T>>,
) -> Option<T> {
    let deadline = Instant::now() + std::time::Duration::from_secs(30);
    loop {
        match client.run_status(run_id).await {
            Ok(st) => {
                if let Some(s) = st["status"].as_str().map(str::to_string) {
                    if let std::ops::ControlFlow::Break(answer) = settled(&s, st) {
                        return answer;
                    }
                }
            }
            Err(e) if e.kind == Kind::NotFound => return None,
            Err(_) => {}
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(every).await;
    }
}

/// After the event stream broke: the run's final status, if Hermes comes
/// back within 30 seconds (a restarted 0.22 gateway takes ~10 s to listen
/// again) and knows the run ended (`interrupted`, `failed`, `cancelled`).
/// `None`: still unknown.
pub(super) async fn settled_status(client: &HermesClient, run_id: &str) -> Option<Value> {
    use std::ops::ControlFlow::Break;
    poll_run(
        client,
        run_id,
        std::time::Duration::from_millis(500),
        |s, st| match s {
            "interrupted" | "failed" | "cancelled" => Break(Some(st)),
            // Running elsewhere or completed without us seeing it: the
            // stream's error stands (reconcile writes what happened).
            _ => Break(None),
        },
    )
    .await
}

/// A run we asked Hermes to stop: its status once it has ended (Hermes
/// has written what it did by then). `None`: Hermes does not know the
/// run, or it has not ended within 30 seconds.
async fn run_end(client: &HermesClient, run_id: &str) -> Option<String> {
    use std::ops::ControlFlow::{Break, Continue};
    poll_run(
        client,
        run_id,
        std::time::Duration::from_millis(100),
        |s, _| match s {
            // Still going (0.19 and 0.22's names for it).
            "queued" | "started" | "running" | "stopping" | "waiting_for_approval" => Continue(()),
            s => Break(Some(s.to_string())),
        },
    )
    .await
}

/// The run ended without completing (`run.interrupted` or a status read
/// after the stream broke): an event that says how, and the turn's error.
pub(super) fn run_ended(turn: &Turn<'_>, st: &Value) -> Error {
    let status = st["status"].as_str().unwrap_or("failed");
    let why = st["error"].as_str().unwrap_or_default();
    if status == "interrupted" {
        let _ = turn.record(
            EventKind::RunInterrupted,
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
pub(super) fn flush_reasoning(turn: &Turn<'_>, buf: &mut String) -> Result<()> {
    if buf.is_empty() {
        return Ok(());
    }
    let text = std::mem::take(buf);
    turn.record(
        EventKind::Reasoning,
        merge(
            content_fields(turn.app, "text", &text),
            json!({"run_id": turn.run_id}),
        ),
    )
}

/// A subagent's lifecycle event (`subagent.start`, `subagent.complete`, ...):
/// its ids, status and figures as Hermes sent them, free text under the
/// content policy.
pub(super) fn record_subagent(turn: &Turn<'_>, ev: &RunEvent) -> Result<()> {
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
    turn.record(EventKind::Subagent, data)
}

/// One event from Hermes: pass progress on, put approvals to the owner,
/// record what this operator does not know.
#[expect(
    clippy::too_many_lines,
    reason = "a `match` over Hermes' run event kinds; each arm is short"
)]
pub(super) async fn handle_event(
    turn: &Turn<'_>,
    client: &HermesClient,
    ev: RunEvent,
    approver: &dyn Approver,
    on_event: &mut (dyn FnMut(TurnEvent) + Send),
    text: &mut RunText,
    waited: &mut std::time::Duration,
) -> Result<Flow> {
    let RunText {
        output,
        reasoning,
        unknown,
    } = text;
    let run_id = turn.run_id.as_deref().unwrap_or_default();
    let kind = ev.kind();
    match kind {
        Event::ReasoningDelta(d) => {
            reasoning.push_str(d);
            return Ok(Flow::Continue);
        }
        // On the runs stream this carries a preview of the assistant's text
        // (measured on 0.19 and 0.22 with a model that has no reasoning),
        // which `assistant_message` records from state.db already.
        Event::ReasoningAvailable => return Ok(Flow::Continue),
        _ => flush_reasoning(turn, reasoning)?,
    }
    // Before a tool's progress, an approval or the answer goes on to the
    // caller: is the caller still who may see it? (The hook refuses the
    // tool calls themselves.)
    if matches!(
        kind,
        Event::ToolStarted { .. }
            | Event::ToolCompleted { .. }
            | Event::ApprovalRequest { .. }
            | Event::RunCompleted { .. }
    ) {
        if let Some(why) = turn.caller_refused() {
            let _ = client.stop_run(run_id).await;
            return Ok(Flow::Failed(stopped(why)));
        }
    }
    match kind {
        Event::RunSteered { accepted } => turn.record(
            EventKind::RunSteered,
            json!({"run_id": run_id, "accepted": accepted}),
        )?,
        Event::Subagent { .. } => record_subagent(turn, &ev)?,
        Event::RunInterrupted => {
            let mut st = Value::Object(ev.fields.clone());
            st["status"] = "interrupted".into();
            return Ok(Flow::Failed(run_ended(turn, &st)));
        }
        Event::MessageDelta(d) => {
            if let Some(d) = d {
                on_event(TurnEvent::Delta {
                    text: d.to_string(),
                });
            }
        }
        Event::ToolStarted { tool, preview } => on_event(TurnEvent::ToolStarted {
            tool: tool.to_string(),
            preview: preview.map(str::to_string),
        }),
        Event::ToolCompleted {
            tool,
            duration,
            error,
        } => on_event(TurnEvent::ToolCompleted {
            tool: tool.to_string(),
            duration,
            error,
        }),
        Event::ApprovalRequest {
            command,
            description,
            pattern_key,
            choices,
            request_id,
        } => {
            let owned = |s: Option<&str>| s.map(str::to_string);
            let ar = ApprovalRequest {
                session_id: turn.session_id.clone(),
                run_id: run_id.to_string(),
                command: owned(command),
                description: owned(description),
                pattern_key: owned(pattern_key),
                choices: choices.into_iter().map(str::to_string).collect(),
                request_id: owned(request_id),
            };
            if let Some(stopped) = approve(turn, client, approver, on_event, ar, waited).await? {
                return Ok(Flow::Failed(stopped));
            }
        }
        Event::RunCompleted { output: o } => {
            if let Some(o) = o {
                *output = o.to_string();
            }
            return Ok(Flow::Completed);
        }
        Event::RunFailed { error } => {
            return Ok(Flow::Failed(Error::unavailable(format!(
                "Hermes' run failed: {error}"
            ))));
        }
        Event::RunCancelled => {
            return Ok(Flow::Failed(Error::unavailable("Hermes cancelled the run")))
        }
        Event::Progress | Event::ReasoningDelta(_) | Event::ReasoningAvailable => {}
        // A newer Hermes: its first event of each unknown name per turn is
        // recorded (name and field names; the values may be content the
        // content policy keeps out), so the log says what was not understood.
        Event::Unknown(name) => {
            if unknown.insert(name.to_string()) {
                let fields: Vec<&str> = ev
                    .fields
                    .keys()
                    .map(String::as_str)
                    .filter(|k| *k != "run_id")
                    .collect();
                turn.record(
                    EventKind::HermesEvent,
                    json!({"run_id": run_id, "event": crate::output::clip(name, 80), "fields": fields}),
                )?;
            }
        }
    }
    Ok(Flow::Continue)
}

/// An approval request: record it, ask the approver, pass the answer on to
/// Hermes, record the answer. `Some(error)`: the person also stopped the
/// turn ([`Decision::stop_run`]); the run is stopped and has ended.
async fn approve(
    turn: &Turn<'_>,
    client: &HermesClient,
    approver: &dyn Approver,
    on_event: &mut (dyn FnMut(TurnEvent) + Send),
    ar: ApprovalRequest,
    waited: &mut std::time::Duration,
) -> Result<Option<Error>> {
    let run_id = ar.run_id.clone();
    turn.record(
        EventKind::ApprovalRequest,
        json!({"run_id": run_id, "command": ar.command, "description": ar.description,
               "pattern_key": ar.pattern_key, "request_id": ar.request_id}),
    )?;
    let t_wait = Instant::now();
    // Waiting (registered where it can be answered) before it is announced:
    // whoever sees the request may answer it at once, on any replica.
    let waiting = approver.decide(ar.clone());
    on_event(TurnEvent::ApprovalRequest(ar.clone()));
    let d = waiting.await;
    // Never "always": ApprovalChoice cannot say it (it would outlive the session).
    let choice = d.choice;
    // Hermes denies on its own timeout; answering after that is a 409.
    let applied = match client
        .answer_approval(&run_id, choice.as_str(), ar.request_id.as_deref())
        .await
    {
        Ok(()) => true,
        Err(e) if e.kind == Kind::Conflict || e.kind == Kind::NotFound => false,
        Err(e) => return Err(e),
    };
    *waited += t_wait.elapsed();
    turn.record(
        EventKind::Approval,
        json!({"run_id": run_id, "command": ar.command, "choice": choice,
               "request_id": ar.request_id,
               "decided_by": d.decided_by, "applied": applied, "stop_run": d.stop_run,
               "outcome": if applied { "answered" } else { "expired: Hermes had already denied it" }}),
    )?;
    on_event(TurnEvent::ApprovalDecision {
        choice,
        decided_by: d.decided_by.clone(),
        applied,
    });
    if !d.stop_run {
        return Ok(None);
    }
    // Stopped by the person: Hermes is told, and its end waited for, so
    // what the run did (model calls, a last reply) is in state.db when the
    // turn reconciles it and `audit daily` counts all of it.
    let _ = client.stop_run(&run_id).await;
    let t = Instant::now();
    let status = run_end(client, &run_id).await;
    *waited += t.elapsed();
    Ok(Some(
        Error::new(
            Kind::Interrupted,
            format!(
                "stopped at the approval prompt by {}: the command was denied and Hermes' run {} ({})",
                d.decided_by,
                run_id,
                status.map_or("stop requested".to_string(), |s| format!("now {s}"))
            ),
        )
        .hint("the session keeps what Hermes wrote; send a message to carry on"),
    ))
}
