//! The hook handler: one Hermes shell-hook event in, an answer (allow/block) and audit events out.

use super::*;
use crate::ops::standing::TurnCaller;
use crate::store::events::EventKind;
use std::collections::HashMap;

/// `op_` + 12 lowercase hex, the only shape operator sessions have.
pub fn is_operator_session_id(id: &str) -> bool {
    id.len() == 15
        && id.starts_with("op_")
        && id.as_bytes()[3..]
            .iter()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// What the handler prints: at most one JSON line on stdout (the decision)
/// and messages for Hermes' log on stderr.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Reply {
    pub stdout: Option<String>,
    pub stderr: Vec<String>,
    blocked: bool,
}

impl Reply {
    pub(super) fn block(reason: String) -> Reply {
        Reply {
            stdout: Some(json!({"decision": "block", "reason": reason}).to_string()),
            stderr: Vec::new(),
            blocked: true,
        }
    }
    /// Let the call run with `args` merged into its arguments (Hermes 0.22's
    /// `modify` answer; older Hermes ignores it).
    pub(super) fn modify(args: Value) -> Reply {
        Reply {
            stdout: Some(json!({"action": "modify", "args": args}).to_string()),
            stderr: Vec::new(),
            blocked: false,
        }
    }
    /// Whether this reply blocks the tool call.
    pub fn blocks(&self) -> bool {
        self.blocked
    }
    /// A reply as `serve` sent it over the hook socket (`socket.rs`).
    pub(super) fn from_parts(stdout: Option<String>, stderr: Vec<String>, blocked: bool) -> Reply {
        Reply {
            stdout,
            stderr,
            blocked,
        }
    }
}

/// The first look at the payload: just enough to decide whether to go on.
#[derive(Deserialize)]
struct Head {
    #[serde(default)]
    pub(super) hook_event_name: Option<String>,
    #[serde(default)]
    pub(super) session_id: Option<String>,
}

#[derive(Deserialize)]
struct Payload {
    #[serde(default)]
    pub(super) tool_name: Option<String>,
    #[serde(default)]
    pub(super) tool_input: Value,
    #[serde(default)]
    pub(super) extra: Value,
    /// Hermes' working directory when it ran the hook.
    #[serde(default)]
    pub(super) cwd: Option<String>,
}

/// An operator session the event belongs to.
#[derive(Debug, Clone)]
struct OpSession {
    /// The operator session (`op_...`) events are recorded under.
    pub(super) session_id: String,
    pub(super) user_id: Option<String>,
    /// Set when the event came from a delegate subagent of that session.
    pub(super) subagent: Option<String>,
    /// Why the session was treated as an operator session without a row.
    pub(super) note: Option<String>,
    /// The current turn's narrower toolsets (a personal API key's), within
    /// `agent.enabled_toolsets`; `None`: the operator's whole list.
    pub(super) toolsets: Option<Vec<String>>,
    /// Who started the current turn, re-checked at every tool call; `None`
    /// for a session no operator turn has run yet (a run started on Hermes
    /// directly), where the toolset policy alone applies.
    pub(super) caller: Option<TurnCaller>,
}

/// Sessions the hook knows to be the operator's, one small JSON file each
/// (`{session_id, user_id}`): operator sessions after their first state.db
/// lookup, and delegate subagents registered on `subagent_start` (removed on
/// `subagent_stop`) whose `session_id` is their operator session.
pub fn sessions_dir(home: &Home) -> PathBuf {
    home.plugin_dir().join("hook_sessions")
}

/// Session ids Hermes generates are short and plain; anything else is never
/// used as a file name.
fn safe_file_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

#[derive(Serialize, Deserialize)]
struct Marker {
    pub(super) session_id: String,
    pub(super) user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) toolsets: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) caller: Option<TurnCaller>,
}

/// Which operator session (if any) `id` belongs to. Non-operator ids cost
/// one failed `open` of a marker file and touch no database.
fn classify(home: &Home, id: &str) -> Option<OpSession> {
    if !safe_file_id(id) {
        return None;
    }
    let op_shape = is_operator_session_id(id);
    if let Ok(bytes) = fs::read(sessions_dir(home).join(id)) {
        return Some(match serde_json::from_slice::<Marker>(&bytes) {
            Ok(m) => OpSession {
                subagent: (m.session_id != id).then(|| id.to_string()),
                session_id: m.session_id,
                user_id: m.user_id,
                note: None,
                toolsets: m.toolsets,
                caller: m.caller,
            },
            Err(_) => OpSession {
                session_id: id.to_string(),
                user_id: None,
                subagent: (!op_shape).then(|| id.to_string()),
                note: Some("unreadable session marker".into()),
                // Unreadable: it may have narrowed the toolsets, so allow none.
                toolsets: Some(Vec::new()),
                caller: None,
            },
        });
    }
    if !op_shape {
        return None;
    }
    let op = |user_id, note| OpSession {
        session_id: id.to_string(),
        user_id,
        subagent: None,
        note,
        toolsets: None,
        caller: None,
    };
    match state_lookup(&home.state_db(), id) {
        Ok(Some((source, user_id))) if source == "operator" => {
            let s = op(user_id, None);
            // `source` and `user_id` of an operator row never change: later
            // events of this session read the marker instead of state.db.
            let _ = write_marker(home, id, &s);
            Some(s)
        }
        // Someone else's row that happens to look like ours.
        Ok(Some(_)) => None,
        // No row, or state.db unreadable: the operator's id shape is never
        // generated by Hermes, so err on the side of the policy.
        Ok(None) => Some(op(None, Some("no row in state.db".into()))),
        Err(e) => Some(op(None, Some(e))),
    }
}

/// `(source, user_id)` of one session: a single primary-key lookup on a
/// read-only connection (no schema probe: both columns are Hermes' own).
fn state_lookup(
    path: &Path,
    id: &str,
) -> std::result::Result<Option<(String, Option<String>)>, String> {
    use rusqlite::{types::ValueRef, OpenFlags, OptionalExtension};
    if !path.is_file() {
        return Err(format!("state.db not found at {}", path.display()));
    }
    let conn = rusqlite::Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| format!("opening {}: {e}", path.display()))?;
    let _ = conn.busy_timeout(std::time::Duration::from_millis(500));
    let text = |v: ValueRef| -> Option<String> {
        match v {
            ValueRef::Text(t) => Some(String::from_utf8_lossy(t).into_owned()),
            ValueRef::Integer(i) => Some(i.to_string()),
            _ => None,
        }
    };
    conn.query_row(
        "SELECT source, user_id FROM sessions WHERE id = ?1",
        [id],
        |r| Ok((text(r.get_ref(0)?).unwrap_or_default(), text(r.get_ref(1)?))),
    )
    .optional()
    .map_err(|e| format!("reading {}: {e}", path.display()))
}

/// The operator's config for the handler: a missing file means defaults,
/// anything unreadable or invalid is an error message (warnings are dropped).
fn load_config(home: &Home) -> std::result::Result<Config, String> {
    let path = home.config_yaml();
    match fs::read_to_string(&path) {
        Ok(text) => config::parse_yaml(&path, &text, &mut Vec::new()).map_err(|e| e.message),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// SHA-256 of content as the event log proves it under `store_content: hash`:
/// a string's UTF-8 bytes, anything else its canonical JSON.
pub fn content_sha256(v: &Value) -> String {
    match v {
        Value::String(s) => sha256_hex(s.as_bytes()),
        other => sha256_hex(canonical_json(other).as_bytes()),
    }
}

/// Put `value` under `key`, or its hash under `key_sha256` in hash mode.
fn put_content(data: &mut Value, key: &str, value: &Value, hash: bool) {
    if value.is_null() {
        data[key] = Value::Null;
    } else if hash {
        data[format!("{key}_sha256")] = Value::String(content_sha256(value));
    } else {
        data[key] = value.clone();
    }
}

/// Does the raw text mention a pre_tool_call of an operator session? Used
/// only when the payload cannot be parsed, to fail closed for our sessions.
fn mentions_operator_pre_tool_call(raw: &[u8]) -> bool {
    let s = String::from_utf8_lossy(raw);
    if !s.contains("pre_tool_call") {
        return false;
    }
    s.match_indices("op_")
        .any(|(i, _)| s.get(i..i + 15).is_some_and(is_operator_session_id))
}

/// Handle one hook event (the whole `hermes-operator hook` minus stdio),
/// with this process's environment for the path guard.
pub fn handle_event(home: &Home, input: &[u8]) -> Reply {
    handle_event_in(home, input, &super::socket::hook_env())
}

/// Handle one hook event; `env` is Hermes' (the hook's) environment, which
/// the words of a tool call are expanded with (`paths.rs`).
#[expect(
    clippy::too_many_lines,
    reason = "one hook event from parse to answer: the order (parse, classify the session, policy, record, answer) is the security argument and reads best in one place"
)]
pub fn handle_event_in(home: &Home, input: &[u8], env: &HashMap<String, String>) -> Reply {
    let head: Head = match serde_json::from_slice(input) {
        Ok(h) => h,
        Err(e) => {
            let mut r = if mentions_operator_pre_tool_call(input) {
                Reply::block(
                    "Blocked by hermes-operator: the hook payload for this tool call could not be read, \
                     so the operator's tool policy could not be checked."
                        .into(),
                )
            } else {
                Reply::default()
            };
            r.stderr.push(format!(
                "hermes-operator hook: ignoring an unreadable payload: {e}"
            ));
            return r;
        }
    };
    let Some(event) = head.hook_event_name.as_deref().and_then(HookEvent::parse) else {
        return Reply::default();
    };
    let sid = head.session_id.unwrap_or_default();
    let Some(op) = classify(home, &sid) else {
        return Reply::default();
    };
    let payload: Payload = match serde_json::from_slice(input) {
        Ok(p) => p,
        Err(e) => {
            let mut r = if event == HookEvent::PreToolCall {
                Reply::block(format!(
                    "Blocked by hermes-operator: the hook payload for this tool call could not be read ({e}), \
                     so the operator's tool policy could not be checked."
                ))
            } else {
                Reply::default()
            };
            r.stderr.push(format!(
                "hermes-operator hook: unreadable {event} payload: {e}"
            ));
            return r;
        }
    };
    let cfg = load_config(home);
    let mut reply = Reply::default();
    let extra = |k: &str| payload.extra.get(k).cloned().unwrap_or(Value::Null);
    // Events are recorded unless the config says `audit.enabled: false`; with
    // an unreadable config they are recorded with hashes only.
    let (record, hash) = match &cfg {
        Ok(c) => (c.audit.enabled, c.audit.store_content == StoreContent::Hash),
        Err(_) => (true, true),
    };
    let mut data = json!({ "source": "hook" });
    if let Some(child) = &op.subagent {
        data["subagent_session_id"] = Value::String(child.clone());
    }
    if let Some(n) = &op.note {
        data["note"] = Value::String(n.clone());
    }
    let tool = payload.tool_name.clone().filter(|t| !t.is_empty());
    let kind = match event {
        HookEvent::PreToolCall => {
            // The caller first: a revoked key's turn runs no further tool.
            let standing = op.caller.as_ref().and_then(|c| {
                // Whichever store holds the accounts (users.db, or the
                // fleet's database with store.url).
                let app = crate::app::App::load(
                    home.clone(),
                    crate::store::events::Actor::new("hook".to_string()),
                    |_| {},
                );
                match app
                    .and_then(|a| a.users_ro())
                    .and_then(|s| crate::ops::standing::refusal(&s, c))
                {
                    Ok(r) => r,
                    Err(e) => Some(format!(
                        "the caller could not be re-checked ({})",
                        e.message
                    )),
                }
            });
            let reason = match (&cfg, &tool) {
                _ if standing.is_some() => Some(format!(
                    "Blocked by hermes-operator: {}; this turn is stopped. Do not call more tools.",
                    standing.as_deref().unwrap_or_default()
                )),
                (Err(e), _) => Some(format!(
                    "Blocked by hermes-operator: its tool policy could not be read ({e}); no tool may run \
                     in operator sessions until an administrator fixes the configuration."
                )),
                (Ok(_), None) => Some(
                    "Blocked by hermes-operator: the tool call has no tool name, so the operator's tool policy \
                     could not be checked."
                        .to_string(),
                ),
                (Ok(c), Some(t)) => {
                    let allowed = allowed_toolsets(&c.agent.enabled_toolsets, op.toolsets.as_deref());
                    if !tool_allowed(t, &allowed) {
                        Some(block_reason(t, &allowed))
                    } else if let Some(word) = names_control_plane(home, c, &payload, env) {
                        data["protected_path"] = Value::String(word.clone());
                        Some(format!(
                            "Blocked by hermes-operator: this call names the operator's own files or Hermes' \
                             configuration ({word:?}); operator sessions may not read or change them. \
                             Do not try other spellings of the path."
                        ))
                    } else {
                        over_max_turns(home, &op.session_id, c.agent.max_turns)
                    }
                }
            };
            data["tool"] = json!(tool);
            put_content(&mut data, "arguments", &payload.tool_input, hash);
            data["tool_call_id"] = extra("tool_call_id");
            data["blocked"] = Value::Bool(reason.is_some());
            if let Some(r) = &reason {
                data["reason"] = Value::String(r.clone());
                reply = Reply::block(r.clone());
            } else if let (Ok(c), Some("terminal")) = (&cfg, tool.as_deref()) {
                // terminal.cwd: every terminal call of an operator session
                // starts there (Hermes 0.22+; turns on older Hermes are
                // refused before they start, see hermes/settings.rs).
                if let Some(cwd) = &c.terminal.cwd {
                    data["workdir"] = Value::String(cwd.clone());
                    reply = Reply::modify(json!({ "workdir": cwd }));
                }
            }
            EventKind::ToolCall
        }
        HookEvent::PostToolCall => {
            data["tool"] = json!(tool);
            data["status"] = extra("status");
            data["duration_ms"] = extra("duration_ms");
            data["error_type"] = extra("error_type");
            put_content(&mut data, "error_message", &extra("error_message"), hash);
            put_content(&mut data, "result", &extra("result"), hash);
            data["tool_call_id"] = extra("tool_call_id");
            EventKind::ToolResult
        }
        HookEvent::SubagentStart => {
            let child = extra("child_session_id");
            let child = child.as_str().unwrap_or_default();
            data["child_session_id"] = json!(child);
            data["child_role"] = extra("child_role");
            let r = if is_operator_session_id(child) {
                Err(Error::usage("a subagent with an operator-shaped id"))
            } else {
                write_marker(home, child, &op)
            };
            if let Err(e) = r {
                reply.stderr.push(format!(
                    "hermes-operator hook: cannot register subagent {child:?} of {}: {e}",
                    op.session_id
                ));
            }
            EventKind::SubagentStart
        }
        HookEvent::SubagentStop => {
            let child = extra("child_session_id");
            let child = child.as_str().unwrap_or_default();
            data["child_session_id"] = json!(child);
            data["child_status"] = extra("child_status");
            data["duration_ms"] = extra("duration_ms");
            if safe_file_id(child) && !is_operator_session_id(child) {
                let _ = fs::remove_file(sessions_dir(home).join(child));
            }
            EventKind::SubagentStop
        }
    };
    if let Err(e) = &cfg {
        reply
            .stderr
            .push(format!("hermes-operator hook: config unreadable: {e}"));
        data["config_error"] = Value::String(e.clone());
    }
    if record {
        let ev = NewEvent {
            kind,
            session_id: Some(op.session_id.clone()),
            user_id: op.user_id.clone(),
            actor: HOOK_ACTOR.to_string(),
            data,
            at: None,
        };
        if let Err(e) = append_event(home, ev) {
            reply.stderr.push(format!(
                "hermes-operator hook: could not record the {kind} event: {}",
                e.message
            ));
        }
    }
    reply
}

/// The word of a tool call's arguments that names a protected place
/// (`paths.rs`), taken against every directory the call may run in.
fn names_control_plane(
    home: &Home,
    c: &Config,
    payload: &Payload,
    env: &HashMap<String, String>,
) -> Option<String> {
    let mut env = env.clone();
    env.insert("HERMES_HOME".into(), home.root.display().to_string());
    let mut cwds: Vec<PathBuf> = Vec::new();
    let workdir = payload.tool_input.get("workdir").and_then(Value::as_str);
    for d in [workdir, c.terminal.cwd.as_deref(), payload.cwd.as_deref()]
        .into_iter()
        .flatten()
        .filter(|d| d.starts_with('/'))
    {
        cwds.push(PathBuf::from(d));
    }
    if cwds.is_empty() {
        cwds.extend(std::env::current_dir().ok());
    }
    let ctx = super::paths::Context { env: &env, cwds };
    super::paths::first_protected(
        &super::paths::Protected::of(home),
        &ctx,
        &payload.tool_input,
    )
}

/// `agent.max_turns`: the tool calls one turn of an operator session may
/// make. Beyond it the next call is blocked with the reason (the model sees
/// it and answers with what it has). An unreadable log counts as none: the
/// policy's other rules still hold.
fn over_max_turns(home: &Home, session: &str, max: u32) -> Option<String> {
    let n = EventStore::open_readonly(&home.events_db())
        .and_then(|s| s.hook_tool_calls_this_turn(session))
        .unwrap_or(0);
    (n >= i64::from(max)).then(|| {
        format!(
            "Blocked by hermes-operator: this turn already made {n} tool call(s), the most the operator allows \
             (agent.max_turns = {max}). Do not call more tools; answer with what you have."
        )
    })
}

fn append_event(home: &Home, ev: NewEvent) -> Result<()> {
    // Never create HERMES_HOME itself (open_own would mkdir -p).
    home.require()?;
    EventStore::open(&home.events_db())?.append(ev)?;
    Ok(())
}

/// The toolsets a session's tool calls may use: the operator's list,
/// narrowed by the turn's (a key's) when it has one, never widened.
pub fn allowed_toolsets(operator: &[String], turn: Option<&[String]>) -> Vec<String> {
    match turn {
        None => operator.to_vec(),
        Some(t) => operator.iter().filter(|o| t.contains(o)).cloned().collect(),
    }
}

/// Before a turn starts: tell the hook which operator session this is, its
/// owner and the turn's toolsets (a personal API key's narrower list, or
/// `None` for the operator's own). Written every turn, so a session
/// continued from the dashboard after a key's turn is not left narrowed,
/// and one continued through a key never inherits a wider earlier turn.
pub fn set_turn_policy(
    home: &Home,
    session_id: &str,
    caller: &TurnCaller,
    toolsets: Option<&[String]>,
) -> Result<()> {
    let user_id = caller.user_id.as_str();
    // Most turns change nothing (no key, or the same key again): skip the
    // write and its fsync. Without a marker and without narrowing, the hook
    // finds the session in state.db as before.
    let current = fs::read(sessions_dir(home).join(session_id))
        .ok()
        .and_then(|b| serde_json::from_slice::<Marker>(&b).ok());
    let unchanged = match &current {
        Some(m) => {
            m.session_id == session_id
                && m.user_id.as_deref() == Some(user_id)
                && m.toolsets.as_deref() == toolsets
                && m.caller.as_ref() == Some(caller)
        }
        None => false,
    };
    if unchanged {
        return Ok(());
    }
    write_marker(
        home,
        session_id,
        &OpSession {
            session_id: session_id.to_string(),
            user_id: Some(user_id.to_string()),
            subagent: None,
            note: None,
            toolsets: toolsets.map(<[String]>::to_vec),
            caller: Some(caller.clone()),
        },
    )
}

fn write_marker(home: &Home, id: &str, op: &OpSession) -> Result<()> {
    if !safe_file_id(id) {
        return Err(Error::usage(format!("unexpected session id {id:?}")));
    }
    home.require()?;
    let body = serde_json::to_vec(&Marker {
        session_id: op.session_id.clone(),
        user_id: op.user_id.clone(),
        toolsets: op.toolsets.clone(),
        caller: op.caller.clone(),
    })?;
    // Not flushed: a marker lost in a crash is rewritten by the next turn,
    // and until then the session is found in state.db as before.
    home::write_private_file_unsynced(&sessions_dir(home).join(id), &body)
}

/// One hook event as `hermes-operator hook` answers it (the CLI does the
/// stdio, `cli/hook/protocol.rs`): by `serve` or in-process, and without a
/// home an operator session's tool call blocked.
pub fn answer_event(home: Result<Home>, input: &[u8]) -> Reply {
    match home {
        Ok(h) => handle_or_ask(&h, input),
        Err(e) => {
            // Without a home there is no policy to read: block operator calls.
            let mut r = if head_is_operator_pre_tool_call(input) {
                Reply::block(format!(
                    "Blocked by hermes-operator: HERMES_HOME is unknown ({}), so the tool policy could not be checked.",
                    e.message
                ))
            } else {
                Reply::default()
            };
            r.stderr
                .push(format!("hermes-operator hook: {}", e.message));
            r
        }
    }
}

/// `serve` answers when it listens (the only way with a dedicated operator
/// account); otherwise the event is handled here if this account may read
/// the operator's files, and an operator session's tool call is blocked if
/// it may not.
fn handle_or_ask(home: &Home, input: &[u8]) -> Reply {
    use super::socket::{ask, hook_env, Unanswered};
    let env = hook_env();
    let why = match ask(home, input, env.clone()) {
        Ok(r) => return r,
        Err(why) => why,
    };
    match home.check_operator_dirs() {
        Ok(()) => {
            let mut r = handle_event_in(home, input, &env);
            if let Unanswered::Untrusted(_) = why {
                r.stderr
                    .push(format!("hermes-operator hook: not asking serve: {why}"));
            }
            r
        }
        Err(e) => {
            let mut r = if head_is_operator_pre_tool_call(input) {
                Reply::block(format!(
                    "Blocked by hermes-operator: its server does not answer ({why}) and this account cannot \
                     read the operator's policy ({}); no tool may run in operator sessions until \
                     `hermes-operator serve` runs.",
                    e.message
                ))
            } else {
                Reply::default()
            };
            r.stderr.push(format!(
                "hermes-operator hook: serve does not answer ({why}); {}",
                e.message
            ));
            r
        }
    }
}

fn head_is_operator_pre_tool_call(input: &[u8]) -> bool {
    match serde_json::from_slice::<Head>(input) {
        Ok(h) => {
            h.hook_event_name.as_deref() == Some(HookEvent::PreToolCall.name())
                && h.session_id.as_deref().is_some_and(is_operator_session_id)
        }
        Err(_) => mentions_operator_pre_tool_call(input),
    }
}
