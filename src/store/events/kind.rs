//! The event types the operator writes, as one enum: a write site cannot
//! misspell a type, readers match on variants, and README's "Event types"
//! table is checked against [`EventKind::ALL`] by a unit test. The log itself
//! stores the name (`events.type`) and accepts any, so that an older binary
//! still verifies a log written by a newer one ([`Event::kind`] stays a
//! string; [`Event::event_kind`] parses it).
//!
//! [`Event::kind`]: super::Event::kind
//! [`Event::event_kind`]: super::Event::event_kind

macro_rules! event_kinds {
    ($( $(#[doc = $doc:literal])+ $v:ident = $s:literal, )*) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum EventKind {
            $( $(#[doc = $doc])+ $v, )*
        }

        impl EventKind {
            /// Every type, in README's order.
            pub const ALL: &'static [EventKind] = &[$(EventKind::$v,)*];

            /// The name stored in `events.type` and shown by `audit`.
            pub const fn as_str(self) -> &'static str {
                match self { $(EventKind::$v => $s,)* }
            }

            /// The type named `s`; `None` for a type this binary does not know.
            pub fn parse(s: &str) -> Option<EventKind> {
                match s { $($s => Some(EventKind::$v),)* _ => None }
            }
        }
    };
}

event_kinds! {
    /// A user's message in an operator session (content, or its SHA-256 under `store_content: hash`).
    UserMessage = "user_message",
    /// The agent's reply text of a run.
    AssistantMessage = "assistant_message",
    /// A stretch of the model's reasoning stream (Hermes 0.22).
    Reasoning = "reasoning",
    /// One model call: model, tokens, cost (reconciled from state.db).
    LlmCall = "llm_call",
    /// A tool call: live from the shell hook (with the policy's verdict) or reconciled from state.db.
    ToolCall = "tool_call",
    /// A tool's result (hook or state.db).
    ToolResult = "tool_result",
    /// Hermes asks to approve a dangerous command.
    ApprovalRequest = "approval_request",
    /// The answer to an approval request: once, session or deny, and who gave it.
    Approval = "approval",
    /// A session's cost crossed `budget.alert_usd`.
    CostAlert = "cost_alert",
    /// A running turn was steered with a new instruction (Hermes 0.22).
    RunSteered = "run_steered",
    /// A lost `POST /v1/runs` answer was retried with the same idempotency key.
    RunRetried = "run_retried",
    /// The run ended without its completion event (gateway restart, stream cut).
    RunInterrupted = "run_interrupted",
    /// A subagent's progress inside a run (ids and figures).
    Subagent = "subagent",
    /// A run event this operator does not know (a newer Hermes): its name and field names, once per name and turn.
    HermesEvent = "hermes_event",
    /// A turn failed: stage, code, message.
    Error = "error",
    /// An operator session was created.
    SessionStart = "session_start",
    /// An operator session was ended.
    SessionEnd = "session_end",
    /// An operator session was renamed.
    SessionChanged = "session_changed",
    /// A delegated subagent of an operator session started (shell hook).
    SubagentStart = "subagent_start",
    /// A delegated subagent of an operator session stopped (shell hook).
    SubagentStop = "subagent_stop",
    /// A successful login over HTTP.
    Login = "login",
    /// A failed password check: login (unknown user, wrong password, disabled) or password change.
    LoginFailed = "login_failed",
    /// Password attempts refused by throttling before any check: the 1st, 10th, 100th, … per key and window, with the count.
    LoginThrottled = "login_throttled",
    /// An account was created.
    UserCreated = "user_created",
    /// An account's password, role or enabled state changed.
    UserChanged = "user_changed",
    /// An account was deleted.
    UserDeleted = "user_deleted",
    /// An access token was issued (`user token`, login, refresh).
    TokenIssued = "token_issued",
    /// Tokens were revoked: logout, refresh-token reuse, a login without the second factor its account now needs.
    TokenRevoked = "token_revoked",
    /// A personal API key was made (id, prefix, scope, toolsets; never the key).
    KeyCreated = "key_created",
    /// A personal API key was revoked by its owner or an admin, or by an admin's password reset (`reason: password_reset`).
    KeyRevoked = "key_revoked",
    /// `hook install` changed Hermes' config.
    HookInstalled = "hook_installed",
    /// `hook uninstall` changed Hermes' config.
    HookUninstalled = "hook_uninstalled",
    /// `update` started (what it will run, the versions it saw).
    UpdateStarted = "update_started",
    /// `update` finished: its whole report.
    UpdateFinished = "update_finished",
    /// `update restore` put a backup back.
    UpdateRestored = "update_restored",
    /// `update schedule` wrote the cron line.
    UpdateScheduled = "update_scheduled",
    /// `update unschedule` removed the cron line.
    UpdateUnscheduled = "update_unscheduled",
    /// `install` changed something.
    Installed = "installed",
    /// `audit checkpoint` signed the chain's head.
    Checkpoint = "checkpoint",
    /// `audit prune` removed old events and signed the new anchor.
    Prune = "prune",
    /// A free-form note (tests and tools that append to the log).
    Note = "note",
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::EventKind;

    #[test]
    fn names_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for k in EventKind::ALL {
            assert_eq!(EventKind::parse(k.as_str()), Some(*k));
            assert!(seen.insert(k.as_str()), "{k} twice");
        }
        assert_eq!(EventKind::parse("from_a_newer_binary"), None);
    }

    #[test]
    fn readme_lists_every_event_type() {
        let readme = include_str!("../../../README.md");
        let section = readme
            .split("## Event types")
            .nth(1)
            .expect("README has an \"Event types\" section");
        let section = section.split("\n## ").next().unwrap();
        for k in EventKind::ALL {
            assert!(
                section.contains(&format!("| `{k}` |")),
                "README's event types lack `{k}`"
            );
        }
        let rows = section.lines().filter(|l| l.starts_with("| `")).count();
        assert_eq!(
            rows,
            EventKind::ALL.len(),
            "README lists a type the code does not write"
        );
    }
}
