//! The turn's context: the supervision prompt, content policy, who may continue which session, the history sent to Hermes.

use super::*;
use crate::store::events::EventKind;
use crate::store::pool::Pooled;

/// The operator supervision prompt, re-sent as `instructions` every turn.
pub fn supervision_prompt(app: &App, user: &User, toolsets: Option<&[String]>) -> String {
    let c = &app.cfg.config;
    let allowed = crate::ops::hooks::allowed_toolsets(&c.agent.enabled_toolsets, toolsets);
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
        if allowed.is_empty() {
            "none".to_string()
        } else {
            allowed.join(", ")
        }
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

pub(super) fn merge(mut a: Value, b: Value) -> Value {
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
pub(super) fn continuable(
    db: &crate::store::state::StateDb,
    user: &User,
    id: &str,
) -> Result<Session> {
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

pub(super) struct Turn<'a> {
    pub(super) app: &'a App,
    pub(super) user: User,
    pub(super) session_id: String,
    pub(super) run_id: Option<String>,
    pub(super) new_session: bool,
    /// Opened once per turn: a turn appends several times and reads state.db
    /// before and after the run.
    /// (Mutexes keep the turn `Sync`, so its future can move between threads.)
    pub(super) events: std::sync::Mutex<Pooled<crate::store::events::EventStore>>,
    pub(super) state: std::sync::Mutex<Pooled<crate::store::state::StateDb>>,
    /// A new session's `session_start`, appended together with the turn's
    /// first event (one commit instead of two).
    pub(super) start_event: std::sync::Mutex<Option<NewEvent>>,
    /// Who started the turn, re-checked while it runs.
    pub(super) caller: crate::ops::standing::TurnCaller,
}

/// How long a turn waits for the accounts' store to answer its caller's
/// re-check while the store is away.
const RECHECK_PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);

impl Turn<'_> {
    /// Why the caller who started the turn may no longer see it go on
    /// (`ops::standing`). users.db unreadable: it cannot be vouched for.
    ///
    /// A store that is briefly away (the fleet's PostgreSQL restarting) is
    /// waited for a little (this turn's own thread waits, nothing else);
    /// then the turn stops, as for any store that cannot answer.
    pub(super) fn caller_refused(&self) -> Option<String> {
        let deadline = std::time::Instant::now() + RECHECK_PATIENCE;
        loop {
            match self
                .app
                .users_ro()
                .and_then(|u| crate::ops::standing::refusal(&u, &self.caller))
            {
                Ok(r) => return r,
                Err(e)
                    if e.kind == crate::Kind::Unavailable
                        && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(250));
                }
                Err(e) => {
                    return Some(format!(
                        "the caller could not be re-checked ({})",
                        e.message
                    ))
                }
            }
        }
    }

    pub(super) fn event(&self, kind: EventKind, data: Value) -> NewEvent {
        self.app
            .event(kind, data)
            .session(&self.session_id)
            .user(&self.user.id)
    }
    pub(super) fn record(&self, kind: EventKind, data: Value) -> Result<()> {
        let evs = self.with_start(kind, data);
        self.events().append_batch(&evs).map(|_| ())
    }
    /// [`Self::record`] without waiting for the disk
    /// ([`crate::store::events::EventStore::append_batch_flushing`]): for the
    /// turn's `user_message`, whose flush overlaps Hermes' work.
    pub(super) fn record_flushing(
        &self,
        kind: EventKind,
        data: Value,
    ) -> Result<crate::store::events::Flushing> {
        let evs = self.with_start(kind, data);
        self.events().append_batch_flushing(&evs).map(|(_, f)| f)
    }
    /// The event, after a new session's `session_start` if not yet recorded.
    fn with_start(&self, kind: EventKind, data: Value) -> Vec<NewEvent> {
        let ev = self.event(kind, data);
        let start = self
            .start_event
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        start.into_iter().chain([ev]).collect()
    }
    pub(super) fn events(
        &self,
    ) -> std::sync::MutexGuard<'_, Pooled<crate::store::events::EventStore>> {
        self.events.lock().unwrap_or_else(|p| p.into_inner())
    }
    pub(super) fn state(&self) -> std::sync::MutexGuard<'_, Pooled<crate::store::state::StateDb>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}
