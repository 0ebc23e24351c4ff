//! The chat engine (docs/design.md §6): one turn of an operator session through the
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
use crate::hermes::api::{CompletionRequest, HermesClient, HistoryMessage, RunEvent, RunRequest};
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
    /// How the caller reached us (the `session_start` event's `channel`).
    pub channel: Channel,
    /// Narrower toolsets for this turn (a personal API key's), enforced by
    /// the hook; `None`: the operator's `agent.enabled_toolsets`.
    pub toolsets: Option<Vec<String>>,
    /// The caller follows the turn as it happens (text as it is written,
    /// tool progress). A turn nobody follows and nobody can approve in runs
    /// as one chat completion (`drive`).
    pub stream: bool,
    /// The key or login that asked, re-checked while the turn runs
    /// (`ops::standing`); `None`: the account alone (the CLI's `--as`).
    pub key_id: Option<String>,
    pub token_version: Option<i64>,
}

/// The front end a turn came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    /// `hermes-operator chat`.
    Cli,
    /// `POST /api/chat` (the dashboard and scripts).
    Http,
    /// `POST /v1/chat/completions` (OpenAI-compatible clients with a personal API key or token).
    Openai,
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
        choice: ApprovalChoice,
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

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
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

/// How an approval request is answered. Hermes' `always` (a permanent
/// allow) is not among them: it would outlive the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ApprovalChoice {
    Once,
    Session,
    Deny,
}

impl ApprovalChoice {
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalChoice::Once => "once",
            ApprovalChoice::Session => "session",
            ApprovalChoice::Deny => "deny",
        }
    }

    /// From a request (`once`, `session`, `deny`); anything else is a usage error.
    pub fn parse(s: &str) -> Result<ApprovalChoice> {
        match s {
            "once" => Ok(ApprovalChoice::Once),
            "session" => Ok(ApprovalChoice::Session),
            "deny" => Ok(ApprovalChoice::Deny),
            _ => Err(Error::usage("choice must be one of: once, session, deny")),
        }
    }
}

impl std::fmt::Display for ApprovalChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An answer to an approval request, and who gave it.
#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    pub choice: ApprovalChoice,
    pub decided_by: String,
    /// The person also stopped the turn (Ctrl-C at the prompt): after the
    /// answer the run is stopped, its end waited for and recorded, and the
    /// turn ends with [`crate::Kind::Interrupted`].
    pub stop_run: bool,
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
    /// Starts asking: by the time this returns the request is where it
    /// can be answered (the turn announces it only then); the future waits
    /// for the answer.
    fn decide(&self, req: ApprovalRequest) -> BoxFuture<Decision>;

    /// `Some(who)` when every request is denied without asking anyone (a
    /// fixed deny policy): the `decided_by` of those denials.
    fn denies_all(&self) -> Option<String> {
        None
    }
}

// The seams: the turn's context (prompt, content policy, history), one
// turn from request to outcome (turn), following Hermes' run (drive),
// writing down what Hermes did (reconcile), and who answers approvals
// (approvers).
mod approvers;
mod context;
mod drive;
mod reconcile;
mod thread;
mod turn;

pub use approvers::*;
pub use context::*;
use drive::*;
use reconcile::*;
pub use thread::OwnThread;
pub use turn::*;

/// Where the event log ends now (0 without one): what a turn's
/// [`blocked_calls`] count from.
pub fn events_head(app: &App) -> i64 {
    app.events_ro()
        .and_then(|e| e.head())
        .map_or(0, |(seq, _)| seq)
}

/// The tool calls of `session_id` that the hook refused after event `after`:
/// `(tool, reason)`. Hermes' run stream does not say a call was blocked
/// (the model just reads the refusal as the tool's result), but the hook
/// recorded it as a `tool_call` with `blocked: true`, so a front end can
/// tell the person at once instead of only in `audit replay` (issue 22).
pub fn blocked_calls(app: &App, session_id: &str, after: i64) -> Result<Vec<(String, String)>> {
    let events = app.events_ro()?.for_session(session_id)?;
    Ok(events
        .iter()
        .filter(|e| e.seq > after && e.kind == "tool_call")
        .map(|e| e.data_value())
        .filter(|d| d["blocked"] == true)
        .map(|d| {
            let s = |k: &str| d[k].as_str().unwrap_or("?").to_string();
            (s("tool"), s("reason"))
        })
        .collect())
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
            must_change_password: false,
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
        let approver = reg.approver(
            &owner,
            std::time::Duration::from_secs(5),
            AskedBy::new(&owner, None, &"x".repeat(400)),
        );
        let waiting = tokio::spawn(async move { approver.decide(request("op_a")).await });
        while reg.pending("op_a").is_none() {
            tokio::task::yield_now().await;
        }
        // The owner sees who asked and the start of the message (clipped);
        // another user sees nothing.
        let listed = reg.list_for(&owner);
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].asked_by.username, owner.username);
        assert!(listed[0].asked_by.key.is_none());
        let m = &listed[0].asked_by.message;
        assert_eq!(m.chars().count(), AskedBy::MESSAGE_CHARS + 1, "{m}");
        assert!(m.ends_with('…'), "{m}");
        assert!(listed[0].asked_by.message.starts_with("xxxx"));
        assert!(reg.list_for(&user("u_other", Role::User)).is_empty());
        // Another user, a viewer: refused; a bad choice: refused; nothing answered.
        let other = user("u_other", Role::User);
        assert_eq!(
            reg.answer("op_a", &other, ApprovalChoice::Once)
                .unwrap_err()
                .kind,
            Kind::Permission
        );
        assert_eq!(
            ApprovalChoice::parse("always").unwrap_err().kind,
            Kind::Usage
        );
        assert_eq!(
            reg.answer("op_b", &owner, ApprovalChoice::Once)
                .unwrap_err()
                .kind,
            Kind::NotFound
        );
        // An admin may answer for the owner.
        let admin = user("u_admin", Role::Admin);
        reg.answer("op_a", &admin, ApprovalChoice::Once).unwrap();
        let d = waiting.await.unwrap();
        assert_eq!(d.choice, ApprovalChoice::Once);
        assert!(d.decided_by.contains("u_admin"));
        assert!(reg.pending("op_a").is_none());
    }

    #[tokio::test]
    async fn pending_approvals_time_out_as_deny() {
        use crate::store::users::Role;
        let reg = std::sync::Arc::new(PendingApprovals::default());
        let owner = user("u_owner", Role::User);
        let d = reg
            .approver(
                &owner,
                std::time::Duration::from_millis(20),
                AskedBy::new(&owner, None, "m"),
            )
            .decide(request("op_a"))
            .await;
        assert_eq!(d.choice, ApprovalChoice::Deny);
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
