//! Reconciling: what Hermes wrote to state.db becomes audit events.

use super::*;
use crate::store::events::EventKind;

/// The last assistant text among the messages Hermes wrote this turn.
pub(super) fn after_output(new: &[Message]) -> String {
    new.iter()
        .rev()
        .find(|m| m.role.as_deref() == Some("assistant") && m.content.is_some())
        .and_then(|m| m.content.clone())
        .unwrap_or_default()
}

/// What reconciling found: the session after the run, its tool calls, the
/// turn's cost, and the messages Hermes wrote this turn (read once, for
/// whoever needs them next).
pub(super) struct Reconciled {
    pub(super) after: Session,
    pub(super) tool_calls: usize,
    pub(super) spent: f64,
    pub(super) new: Vec<Message>,
}

/// Record what Hermes wrote to state.db during the run as discrete events,
/// skipping tool events the shell hook already recorded live (same
/// tool_call_id).
#[expect(
    clippy::too_many_lines,
    reason = "one pass over the messages Hermes wrote this turn, deduplicated against the hook's events, building the events to append in one transaction"
)]
pub(super) fn reconcile(
    turn: &Turn,
    run_id: &str,
    last_msg_id: i64,
    seq_before: i64,
    before: &Session,
    latency_ms: i64,
) -> Result<Reconciled> {
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
        match e.event_kind() {
            Some(EventKind::ToolCall) if !id.is_empty() => {
                seen_calls.insert(id);
            }
            Some(EventKind::ToolResult) if !id.is_empty() => {
                seen_results.insert(id);
            }
            Some(EventKind::LlmCall) => hook_llm = true,
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
                            EventKind::ToolCall,
                            merge(data, json!({"tool": name, "tool_call_id": id, "message_id": m.id, "source": "state.db", "run_id": run_id})),
                        ));
                    }
                }
                if let Some(text) = m.content.as_deref().filter(|t| !t.is_empty()) {
                    evs.push(turn.event(
                        EventKind::AssistantMessage,
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
                    EventKind::ToolResult,
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
            EventKind::LlmCall,
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
    Ok(Reconciled {
        after,
        tool_calls,
        spent,
        new,
    })
}

/// "ok" unless the tool's JSON result says otherwise.
pub(super) fn tool_status(text: &str) -> &'static str {
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
