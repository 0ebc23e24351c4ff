//! Hermes' shell hooks (SPEC §6.6): tool policy and live tool events for
//! operator sessions, and the audited, reversible `hook install`.
//!
//! # The protocol side (`hermes-operator hook`)
//! Hermes 0.19.0 (`agent/shell_hooks.py`) runs one process per event with
//! `{hook_event_name, tool_name, tool_input, session_id, cwd, extra}` as JSON
//! on stdin and reads stdout after the process exits. A `pre_tool_call` is
//! blocked ONLY by `{"decision":"block","reason":...}` on stdout: the exit
//! code is merely logged, and there is no `fail_closed` key — a hook that
//! crashes, cannot be spawned or times out lets the tool run. So the handler
//! always exits 0, prints the block JSON itself whenever it cannot vouch for
//! a call of an operator session (config unreadable, payload unreadable), and
//! is installed with a generous timeout.
//!
//! Only operator sessions are touched: an id `op_` + 12 lowercase hex whose
//! state.db row (one primary-key lookup, read-only, on the session's first
//! event; then remembered in a marker file) does not say another source, or a
//! delegate subagent spawned by one (registered on `subagent_start`). Every
//! other id costs one failed `open` of a marker file and returns at once
//! without opening a database.
//!
//! # The install side
//! `hook install` edits the `hooks:` block of `$HERMES_HOME/config.yaml`
//! textually (comments and layout survive; only our entries are added,
//! replaced or removed), proves the result by parsing both versions and
//! comparing every other key, backs both files up first and adds the
//! matching entries to `shell-hooks-allowlist.json` in exactly Hermes' format
//! so the gateway registers them without a consent prompt. A missing
//! config.yaml (Hermes: all defaults) is created holding only our block
//! (0600); uninstall then leaves it empty, which Hermes also reads as defaults.
//!
//! Compression: Hermes 0.19 compacts a long conversation in place (same
//! session id) unless `compression.in_place` is false in its config.yaml;
//! then it continues under a new, Hermes-generated id (`parent_session_id` =
//! the `op_` id) that no hook event announces, so neither the policy nor the
//! operator's views follow it. `hook status` (and so `doctor`) reports that
//! setting as a problem.

use crate::config::{self, Config, StoreContent};
use crate::error::{Error, Result};
use crate::home::{self, Home};
use crate::store::events::{canonical_json, EventStore, NewEvent};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use serde_norway::{Mapping, Value as Yaml};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fs;
use std::io::{IsTerminal, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The hook events we install, each with its timeout in seconds. Hermes lets
/// a tool run when a hook times out, so the timeout is generous: the handler
/// needs milliseconds, but an event-log append may wait for another writer.
pub const MANAGED_EVENTS: &[(&str, u32)] = &[
    ("pre_tool_call", 10),
    ("post_tool_call", 10),
    ("subagent_start", 10),
    ("subagent_stop", 10),
];

/// The actor recorded on events written by the hook handler.
pub const HOOK_ACTOR: &str = "hook";

/// Hermes' allowlist file (in HERMES_HOME).
pub const ALLOWLIST_FILE: &str = "shell-hooks-allowlist.json";

/// Comment line written above a `hooks:` key that `hook install` created.
pub const MARKER: &str =
    "# hermes-operator: tool policy and live audit events (hermes-operator hook install)";

// ---------------------------------------------------------------------------
// Tool policy
// ---------------------------------------------------------------------------

/// Hermes 0.19.0's toolsets with their (resolved) tools: `toolsets.py`
/// `TOOLSETS` plus the registry's own toolset names (`browser-cdp`).
/// Platform bundles (`hermes-cli`, `hermes-api-server`, ...) are left out on
/// purpose: they mean "everything" and are not operator policy.
#[rustfmt::skip]
static TOOLSETS: &[(&str, &[&str])] = &[
    ("browser", &["browser_back", "browser_cdp", "browser_click", "browser_console", "browser_dialog", "browser_get_images", "browser_navigate", "browser_press", "browser_scroll", "browser_snapshot", "browser_type", "browser_vision", "web_search"]),
    ("browser-cdp", &["browser_cdp", "browser_dialog"]),
    ("clarify", &["clarify"]),
    ("code_execution", &["execute_code"]),
    ("coding", &["browser_back", "browser_cdp", "browser_click", "browser_console", "browser_dialog", "browser_get_images", "browser_navigate", "browser_press", "browser_scroll", "browser_snapshot", "browser_type", "browser_vision", "clarify", "close_terminal", "delegate_task", "execute_code", "memory", "patch", "process", "read_file", "read_terminal", "search_files", "session_search", "skill_manage", "skill_view", "skills_list", "terminal", "todo", "vision_analyze", "web_extract", "web_search", "write_file"]),
    ("computer_use", &["computer_use"]),
    ("cronjob", &["cronjob"]),
    ("debugging", &["patch", "process", "read_file", "search_files", "terminal", "web_extract", "web_search", "write_file"]),
    ("delegation", &["delegate_task"]),
    ("discord", &["discord"]),
    ("discord_admin", &["discord_admin"]),
    ("feishu_doc", &["feishu_doc_read"]),
    ("feishu_drive", &["feishu_drive_add_comment", "feishu_drive_list_comment_replies", "feishu_drive_list_comments", "feishu_drive_reply_comment"]),
    ("file", &["patch", "read_file", "search_files", "write_file"]),
    ("homeassistant", &["ha_call_service", "ha_get_state", "ha_list_entities", "ha_list_services"]),
    ("image_gen", &["image_generate"]),
    ("kanban", &["kanban_attach", "kanban_attach_url", "kanban_attachments", "kanban_block", "kanban_comment", "kanban_complete", "kanban_create", "kanban_heartbeat", "kanban_link", "kanban_list", "kanban_show", "kanban_unblock"]),
    ("memory", &["memory"]),
    ("project", &["project_create", "project_list", "project_switch"]),
    ("safe", &["image_generate", "vision_analyze", "web_extract", "web_search"]),
    ("search", &["web_search"]),
    ("session_search", &["session_search"]),
    ("skills", &["skill_manage", "skill_view", "skills_list"]),
    ("spotify", &["spotify_albums", "spotify_devices", "spotify_library", "spotify_playback", "spotify_playlists", "spotify_queue", "spotify_search"]),
    ("terminal", &["close_terminal", "process", "read_terminal", "terminal"]),
    ("todo", &["todo"]),
    ("tts", &["text_to_speech"]),
    ("video", &["video_analyze"]),
    ("video_gen", &["video_generate", "xai_video_edit", "xai_video_extend"]),
    ("vision", &["vision_analyze"]),
    ("web", &["web_extract", "web_search"]),
    ("x_search", &["x_search"]),
    ("yuanbao", &["yb_query_group_info", "yb_query_group_members", "yb_search_sticker", "yb_send_dm", "yb_send_sticker"]),
];

/// Scenario toolsets that bundle tools of several basic toolsets.
const BUNDLES: &[&str] = &["coding", "debugging", "safe"];

/// The toolsets (of Hermes 0.19.0) that contain `tool`; MCP tools
/// (`mcp__<server>__<tool>`) are in `mcp-<server>`.
pub fn toolsets_for_tool(tool: &str) -> Vec<String> {
    let mut v: Vec<String> = TOOLSETS
        .iter()
        .filter(|(_, tools)| tools.contains(&tool))
        .map(|(name, _)| name.to_string())
        .collect();
    if let Some(rest) = tool.strip_prefix("mcp__") {
        if let Some((server, _)) = rest.split_once("__") {
            v.push(format!("mcp-{server}"));
        }
    }
    v
}

/// Hermes' `sanitize_mcp_name_component`: anything outside `[A-Za-z0-9_]` → `_`.
fn sanitize_mcp(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Whether `agent.enabled_toolsets` allows `tool`: a listed toolset contains
/// it, a listed `mcp-<server>` is its MCP server, or the entry names the tool
/// itself (the way to allow a plugin's tool, whose toolset we cannot know).
pub fn tool_allowed(tool: &str, enabled: &[String]) -> bool {
    enabled.iter().any(|t| {
        if t == tool {
            return true;
        }
        if let Some(server) = t.strip_prefix("mcp-") {
            let prefix = format!("mcp__{}__", sanitize_mcp(server));
            if tool.starts_with(&prefix) {
                return true;
            }
        }
        TOOLSETS
            .iter()
            .any(|(name, tools)| *name == t.as_str() && tools.contains(&tool))
    })
}

/// The block message the model sees: names the tool, its toolset and what is allowed.
pub fn block_reason(tool: &str, enabled: &[String]) -> String {
    let all = toolsets_for_tool(tool);
    // Name the tool's own toolset, not the scenario bundles that include it.
    let own: Vec<String> = all
        .iter()
        .filter(|t| !BUNDLES.contains(&t.as_str()))
        .cloned()
        .collect();
    let sets = if own.is_empty() { all } else { own };
    let belongs = if sets.is_empty() {
        "which is in no toolset hermes-operator knows".to_string()
    } else {
        format!("toolset {}", sets.join(", "))
    };
    let allowed = if enabled.is_empty() {
        "none".to_string()
    } else {
        enabled.join(", ")
    };
    format!(
        "Blocked by hermes-operator policy: the tool `{tool}` ({belongs}) is not enabled for operator sessions. \
         Allowed toolsets: {allowed}. Do not retry it; use an allowed tool or tell the user this is not available here."
    )
}

// ---------------------------------------------------------------------------
// The hook handler
// ---------------------------------------------------------------------------

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
}

impl Reply {
    fn block(reason: String) -> Reply {
        Reply {
            stdout: Some(json!({"decision": "block", "reason": reason}).to_string()),
            stderr: Vec::new(),
        }
    }
    /// Whether this reply blocks the tool call.
    pub fn blocks(&self) -> bool {
        self.stdout.is_some()
    }
}

/// The first look at the payload: just enough to decide whether to go on.
#[derive(Deserialize)]
struct Head {
    #[serde(default)]
    hook_event_name: Option<String>,
    #[serde(default)]
    session_id: Option<String>,
}

#[derive(Deserialize)]
struct Payload {
    #[serde(default)]
    tool_name: Option<String>,
    #[serde(default)]
    tool_input: Value,
    #[serde(default)]
    extra: Value,
}

const HANDLED: &[&str] = &[
    "pre_tool_call",
    "post_tool_call",
    "subagent_start",
    "subagent_stop",
];

/// An operator session the event belongs to.
#[derive(Debug, Clone)]
struct OpSession {
    /// The operator session (`op_...`) events are recorded under.
    session_id: String,
    user_id: Option<String>,
    /// Set when the event came from a delegate subagent of that session.
    subagent: Option<String>,
    /// Why the session was treated as an operator session without a row.
    note: Option<String>,
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
    session_id: String,
    user_id: Option<String>,
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
            },
            Err(_) => OpSession {
                session_id: id.to_string(),
                user_id: None,
                subagent: (!op_shape).then(|| id.to_string()),
                note: Some("unreadable session marker".into()),
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

/// Handle one hook event (the whole `hermes-operator hook` minus stdio).
pub fn handle_event(home: &Home, input: &[u8]) -> Reply {
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
    let Some(event) = head
        .hook_event_name
        .as_deref()
        .and_then(|e| HANDLED.iter().find(|h| **h == e))
    else {
        return Reply::default();
    };
    let sid = head.session_id.unwrap_or_default();
    let Some(op) = classify(home, &sid) else {
        return Reply::default();
    };
    let payload: Payload = match serde_json::from_slice(input) {
        Ok(p) => p,
        Err(e) => {
            let mut r = if *event == "pre_tool_call" {
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
    let kind = match *event {
        "pre_tool_call" => {
            let reason = match (&cfg, &tool) {
                (Err(e), _) => Some(format!(
                    "Blocked by hermes-operator: its tool policy could not be read ({e}); no tool may run \
                     in operator sessions until an administrator fixes the configuration."
                )),
                (Ok(_), None) => Some(
                    "Blocked by hermes-operator: the tool call has no tool name, so the operator's tool policy \
                     could not be checked."
                        .to_string(),
                ),
                (Ok(c), Some(t)) => (!tool_allowed(t, &c.agent.enabled_toolsets))
                    .then(|| block_reason(t, &c.agent.enabled_toolsets)),
            };
            data["tool"] = json!(tool);
            put_content(&mut data, "arguments", &payload.tool_input, hash);
            data["tool_call_id"] = extra("tool_call_id");
            data["blocked"] = Value::Bool(reason.is_some());
            if let Some(r) = &reason {
                data["reason"] = Value::String(r.clone());
                reply = Reply::block(r.clone());
            }
            "tool_call"
        }
        "post_tool_call" => {
            data["tool"] = json!(tool);
            data["status"] = extra("status");
            data["duration_ms"] = extra("duration_ms");
            data["error_type"] = extra("error_type");
            put_content(&mut data, "error_message", &extra("error_message"), hash);
            put_content(&mut data, "result", &extra("result"), hash);
            data["tool_call_id"] = extra("tool_call_id");
            "tool_result"
        }
        "subagent_start" => {
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
            "subagent_start"
        }
        _ => {
            let child = extra("child_session_id");
            let child = child.as_str().unwrap_or_default();
            data["child_session_id"] = json!(child);
            data["child_status"] = extra("child_status");
            data["duration_ms"] = extra("duration_ms");
            if safe_file_id(child) && !is_operator_session_id(child) {
                let _ = fs::remove_file(sessions_dir(home).join(child));
            }
            "subagent_stop"
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
            kind: kind.to_string(),
            session_id: Some(op.session_id.clone()),
            user_id: op.user_id.clone(),
            actor: HOOK_ACTOR.to_string(),
            data,
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

fn append_event(home: &Home, ev: NewEvent) -> Result<()> {
    // Never create HERMES_HOME itself (open_own would mkdir -p).
    home.require()?;
    EventStore::open(&home.events_db())?.append(ev)?;
    Ok(())
}

fn write_marker(home: &Home, id: &str, op: &OpSession) -> Result<()> {
    if !safe_file_id(id) {
        return Err(Error::usage(format!("unexpected session id {id:?}")));
    }
    home.require()?;
    let body = serde_json::to_vec(&Marker {
        session_id: op.session_id.clone(),
        user_id: op.user_id.clone(),
    })?;
    home::write_private_file(&sessions_dir(home).join(id), &body)
}

/// `hermes-operator hook` with no subcommand: read one event from stdin,
/// answer on stdout. Never fails (Hermes would only log an exit code).
pub fn run_protocol(home: Result<Home>) {
    if std::io::stdin().is_terminal() {
        eprintln!(
            "hermes-operator hook reads one Hermes shell-hook event (JSON) on stdin; Hermes runs it.\n\
             Install it with `hermes-operator hook install`, check it with `hermes-operator hook status`."
        );
        return;
    }
    let mut input = Vec::new();
    if let Err(e) = std::io::stdin().lock().read_to_end(&mut input) {
        eprintln!("hermes-operator hook: reading stdin: {e}");
        return;
    }
    let reply = match home {
        Ok(h) => handle_event(&h, &input),
        Err(e) => {
            // Without a home there is no policy to read: block operator calls.
            let mut r = if head_is_operator_pre_tool_call(&input) {
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
    };
    for m in &reply.stderr {
        eprintln!("{m}");
    }
    if let Some(s) = &reply.stdout {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{s}").and_then(|_| out.flush());
    }
}

fn head_is_operator_pre_tool_call(input: &[u8]) -> bool {
    match serde_json::from_slice::<Head>(input) {
        Ok(h) => {
            h.hook_event_name.as_deref() == Some("pre_tool_call")
                && h.session_id.as_deref().is_some_and(is_operator_session_id)
        }
        Err(_) => mentions_operator_pre_tool_call(input),
    }
}

// ---------------------------------------------------------------------------
// The hook command line
// ---------------------------------------------------------------------------

/// Quote one word the way Python's `shlex.split` reads it back.
pub fn sh_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"@%+=:,./-_".contains(&b))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\"'\"'"))
    }
}

/// POSIX-shell word splitting (quotes and backslashes), as `shlex.split`.
pub fn sh_split(s: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut it = s.chars();
    while let Some(c) = it.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match it.next()? {
                        '\'' => break,
                        ch => cur.push(ch),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match it.next()? {
                        '"' => break,
                        '\\' => {
                            let n = it.next()?;
                            if !matches!(n, '"' | '\\' | '$' | '`') {
                                cur.push('\\');
                            }
                            cur.push(n);
                        }
                        ch => cur.push(ch),
                    }
                }
            }
            '\\' => {
                in_word = true;
                cur.push(it.next()?);
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Some(words)
}

/// The command Hermes runs: `<this binary> --hermes-home <HOME> hook`, both
/// paths absolute.
pub fn hook_command(home: &Home) -> Result<String> {
    let exe = std::env::current_exe()
        .map_err(|e| Error::internal(format!("cannot find this program's path: {e}")))?;
    let exe = fs::canonicalize(&exe).unwrap_or(exe);
    let root = absolute(&home.root)?;
    Ok(hook_command_for(&exe, &root))
}

pub fn hook_command_for(exe: &Path, home_root: &Path) -> String {
    format!(
        "{} --hermes-home {} hook",
        sh_quote(&exe.to_string_lossy()),
        sh_quote(&home_root.to_string_lossy())
    )
}

fn absolute(p: &Path) -> Result<PathBuf> {
    if let Ok(c) = fs::canonicalize(p) {
        return Ok(c);
    }
    if p.is_absolute() {
        return Ok(p.to_path_buf());
    }
    Ok(std::env::current_dir()?.join(p))
}

/// A hook command that runs some hermes-operator's `hook` handler (any
/// path, any home): the entries install replaces and uninstall removes.
pub fn is_managed_command(cmd: &str) -> bool {
    let Some(argv) = sh_split(cmd) else {
        return false;
    };
    argv.len() >= 2
        && Path::new(&argv[0]).file_name().and_then(|n| n.to_str()) == Some("hermes-operator")
        && argv.last().map(String::as_str) == Some("hook")
}

/// The executable a hook command runs (its first word).
pub fn command_program(cmd: &str) -> Option<PathBuf> {
    sh_split(cmd)?.into_iter().next().map(PathBuf::from)
}

fn is_executable(p: &Path) -> bool {
    fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

// ---------------------------------------------------------------------------
// config.yaml: semantic plan
// ---------------------------------------------------------------------------

fn yaml_str(s: &str) -> Yaml {
    Yaml::String(s.to_string())
}

/// Whether our entry under `event` carries `fail_closed: true`: only
/// `pre_tool_call` can block, so only there does a hook that cannot run
/// (program missing, crash, timeout, garbled output) block the tool on
/// Hermes 0.20+. Hermes 0.19 ignores the key (it reads command, matcher
/// and timeout only), so it is written on every Hermes and takes effect
/// the moment Hermes is upgraded.
fn fails_closed(event: &str) -> bool {
    event == "pre_tool_call"
}

/// The entry we want under `event`.
fn desired_entry(event: &str, command: &str, timeout: u32) -> Yaml {
    let mut m = Mapping::new();
    m.insert(yaml_str("command"), yaml_str(command));
    m.insert(yaml_str("timeout"), Yaml::Number(timeout.into()));
    if fails_closed(event) {
        m.insert(yaml_str("fail_closed"), Yaml::Bool(true));
    }
    Yaml::Mapping(m)
}

fn is_managed_entry(v: &Yaml) -> bool {
    v.get("command")
        .and_then(Yaml::as_str)
        .is_some_and(is_managed_command)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Install,
    Uninstall,
}

/// What happens to one event's list.
#[derive(Debug, Clone, PartialEq)]
struct EventPlan {
    event: String,
    /// Indices (in the parsed list) of entries to remove.
    drop_items: Vec<usize>,
    /// An entry to append at the end of the list.
    append: Option<(String, u32)>,
    /// Remove the event key altogether (all its entries were ours).
    drop_event: bool,
}

fn parse_root(path: &Path, text: &str) -> Result<Mapping> {
    if text.trim().is_empty() {
        return Ok(Mapping::new());
    }
    let v: Yaml = serde_norway::from_str(text).map_err(|e| {
        Error::config(format!("{} is not valid YAML: {e}", path.display()))
            .hint("fix the file first (Hermes ignores a config.yaml it cannot parse)")
    })?;
    match v {
        Yaml::Null => Ok(Mapping::new()),
        Yaml::Mapping(m) => Ok(m),
        _ => Err(Error::config(format!(
            "{} does not hold a mapping at the top level",
            path.display()
        ))),
    }
}

/// Hermes reads `hooks:` as a mapping of event → list; null means none.
fn hooks_of<'a>(path: &Path, root: &'a Mapping) -> Result<Option<&'a Mapping>> {
    match root.get("hooks") {
        None | Some(Yaml::Null) => Ok(None),
        Some(Yaml::Mapping(m)) => Ok(Some(m)),
        Some(_) => Err(Error::config(format!(
            "{}: `hooks:` is not a mapping of event names to lists",
            path.display()
        ))),
    }
}

fn plan_events(hooks: Option<&Mapping>, mode: Mode, command: &str) -> Vec<EventPlan> {
    let mut plans = Vec::new();
    if let Some(h) = hooks {
        for (k, v) in h {
            let Some(event) = k.as_str() else { continue };
            let Some(list) = v.as_sequence() else {
                continue;
            };
            let managed: Vec<usize> = (0..list.len())
                .filter(|&i| is_managed_entry(&list[i]))
                .collect();
            let want = match mode {
                Mode::Install => MANAGED_EVENTS
                    .iter()
                    .find(|(e, _)| *e == event)
                    .map(|(_, t)| *t),
                Mode::Uninstall => None,
            };
            if let Some(t) = want {
                if managed.len() == 1 && list[managed[0]] == desired_entry(event, command, t) {
                    continue;
                }
                plans.push(EventPlan {
                    event: event.to_string(),
                    drop_items: managed,
                    append: Some((command.to_string(), t)),
                    drop_event: false,
                });
            } else if !managed.is_empty() {
                plans.push(EventPlan {
                    event: event.to_string(),
                    drop_event: managed.len() == list.len(),
                    drop_items: managed,
                    append: None,
                });
            }
        }
    }
    if mode == Mode::Install {
        for (event, t) in MANAGED_EVENTS {
            let present = hooks.is_some_and(|h| h.get(*event).is_some_and(|v| v.is_sequence()));
            if !present {
                plans.push(EventPlan {
                    event: event.to_string(),
                    drop_items: vec![],
                    append: Some((command.to_string(), *t)),
                    drop_event: false,
                });
            }
        }
    }
    plans
}

/// The `hooks` value the plan should produce (None: no `hooks` key).
fn expected_hooks(hooks: Option<&Mapping>, plans: &[EventPlan]) -> Mapping {
    let mut out = hooks.cloned().unwrap_or_default();
    for p in plans {
        let key = yaml_str(&p.event);
        if p.drop_event {
            out.remove(&key);
            continue;
        }
        let mut list: Vec<Yaml> = match out.get(&key) {
            Some(Yaml::Sequence(s)) => s.clone(),
            _ => Vec::new(),
        };
        let mut i = 0;
        list.retain(|_| {
            let keep = !p.drop_items.contains(&i);
            i += 1;
            keep
        });
        if let Some((cmd, t)) = &p.append {
            list.push(desired_entry(&p.event, cmd, *t));
        }
        out.insert(key, Yaml::Sequence(list));
    }
    out
}

// ---------------------------------------------------------------------------
// config.yaml: textual edit
// ---------------------------------------------------------------------------

struct Lines<'a> {
    /// Each line without its terminator.
    text: Vec<&'a str>,
    nl: &'static str,
    /// Whether the last line ended with a newline.
    final_nl: bool,
}

impl<'a> Lines<'a> {
    fn new(src: &'a str) -> Self {
        let crlf = src.contains("\r\n");
        let mut text: Vec<&str> = src
            .split('\n')
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
            .collect();
        let final_nl = src.ends_with('\n');
        if final_nl || src.is_empty() {
            text.pop();
        }
        Lines {
            text,
            nl: if crlf { "\r\n" } else { "\n" },
            final_nl,
        }
    }
    fn len(&self) -> usize {
        self.text.len()
    }
    fn content(&self, i: usize) -> bool {
        let t = self.text[i].trim_start();
        !t.is_empty() && !t.starts_with('#')
    }
    fn indent(&self, i: usize) -> usize {
        self.text[i].len() - self.text[i].trim_start_matches(' ').len()
    }
    fn has_tab_indent(&self, i: usize) -> bool {
        let t = self.text[i];
        t[..t.len() - t.trim_start().len()].contains('\t')
    }
}

/// `key: rest` of a plain block-mapping key line (after indentation).
fn key_of(line: &str) -> Option<(&str, &str)> {
    let s = line.trim_start();
    let colon = s.find(':')?;
    let key = &s[..colon];
    let rest = &s[colon + 1..];
    let ok_key = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    let ok_rest = rest.is_empty() || rest.starts_with(' ') || rest.starts_with('\t');
    (ok_key && ok_rest).then_some((key, rest))
}

/// Split ` value  # comment` into (value, Some("# comment")).
fn value_and_comment(rest: &str) -> (&str, Option<&str>) {
    let t = rest.trim();
    if t.starts_with('#') {
        return ("", Some(t));
    }
    match t.find(" #") {
        Some(i) => (t[..i].trim_end(), Some(t[i + 1..].trim())),
        None => (t, None),
    }
}

fn is_empty_inline(v: &str) -> bool {
    matches!(v, "" | "{}" | "[]" | "null" | "~" | "Null" | "NULL")
}

struct EventBlock {
    name: String,
    key_line: usize,
    /// Inline value on the key line (`[]`, `null`, ...), "" for a block value.
    inline: String,
    comment: Option<String>,
    last_content: Option<usize>,
    item_indent: Option<usize>,
    items: Vec<usize>,
}

struct HooksBlock {
    key_line: usize,
    inline: String,
    comment: Option<String>,
    marker: bool,
    last_content: Option<usize>,
    event_indent: Option<usize>,
    events: Vec<EventBlock>,
}

/// Find the top-level `hooks:` block and its structure, or say why it
/// cannot be edited safely.
fn scan_hooks(
    l: &Lines,
    parsed_has_hooks: bool,
) -> std::result::Result<Option<HooksBlock>, String> {
    let tops: Vec<usize> = (0..l.len())
        .filter(|&i| {
            l.content(i) && l.indent(i) == 0 && key_of(l.text[i]).is_some_and(|(k, _)| k == "hooks")
        })
        .collect();
    let key_line = match (tops.as_slice(), parsed_has_hooks) {
        ([], false) => return Ok(None),
        ([i], true) => *i,
        ([], true) => return Err("the `hooks` key is not written as a plain `hooks:` line".into()),
        _ => return Err("found more than one top-level `hooks:` line".into()),
    };
    let (inline, comment) =
        value_and_comment(key_of(l.text[key_line]).map(|(_, r)| r).unwrap_or(""));
    let mut end = key_line + 1;
    while end < l.len() && !(l.content(end) && l.indent(end) == 0) {
        end += 1;
    }
    let body: Vec<usize> = (key_line + 1..end).filter(|&i| l.content(i)).collect();
    if !is_empty_inline(inline) {
        return Err(format!("`hooks:` is written inline ({inline})"));
    }
    if !inline.is_empty() && !body.is_empty() {
        return Err("`hooks:` has both an inline value and an indented block".into());
    }
    let marker = key_line > 0 && l.text[key_line - 1].trim_end() == MARKER;
    let mut hb = HooksBlock {
        key_line,
        inline: inline.to_string(),
        comment: comment.map(str::to_string),
        marker,
        last_content: body.last().copied(),
        event_indent: body.first().map(|&i| l.indent(i)),
        events: Vec::new(),
    };
    let Some(k) = hb.event_indent else {
        return Ok(Some(hb));
    };
    for &i in &body {
        if l.has_tab_indent(i) {
            return Err(format!("line {} is indented with a tab", i + 1));
        }
    }
    let mut idx = 0;
    while idx < body.len() {
        let i = body[idx];
        let ind = l.indent(i);
        if ind != k {
            return Err(format!(
                "line {}: unexpected indentation inside `hooks:`",
                i + 1
            ));
        }
        let Some((name, rest)) = key_of(l.text[i]) else {
            return Err(format!(
                "line {}: expected `event_name:` inside `hooks:`",
                i + 1
            ));
        };
        let (inline, comment) = value_and_comment(rest);
        // The event's lines: until the next key at indent k (items may sit
        // at indent k too, PyYAML's style: `- command: ...`).
        let mut j = idx + 1;
        while j < body.len() {
            let li = body[j];
            let t = l.text[li].trim_start();
            if l.indent(li) < k || (l.indent(li) == k && !(t == "-" || t.starts_with("- "))) {
                break;
            }
            j += 1;
        }
        let lines: Vec<usize> = body[idx + 1..j].to_vec();
        let item_indent = lines.first().map(|&x| l.indent(x));
        let items: Vec<usize> = match item_indent {
            Some(s) => lines
                .iter()
                .copied()
                .filter(|&x| {
                    let t = l.text[x].trim_start();
                    l.indent(x) == s && (t == "-" || t.starts_with("- "))
                })
                .collect(),
            None => vec![],
        };
        hb.events.push(EventBlock {
            name: name.to_string(),
            key_line: i,
            inline: inline.to_string(),
            comment: comment.map(str::to_string),
            last_content: lines.last().copied(),
            item_indent,
            items,
        });
        idx = j;
    }
    Ok(Some(hb))
}

fn entry_lines(indent: usize, event: &str, command: &str, timeout: u32) -> Vec<String> {
    let pad = " ".repeat(indent);
    let mut v = vec![
        format!(
            "{pad}- command: {}",
            serde_json::to_string(command).unwrap_or_default()
        ),
        format!("{pad}  timeout: {timeout}"),
    ];
    if fails_closed(event) {
        v.push(format!("{pad}  fail_closed: true"));
    }
    v
}

fn with_comment(s: String, comment: &Option<String>) -> String {
    match comment {
        Some(c) => format!("{s}  {c}"),
        None => s,
    }
}

/// Apply `plans` to the text. Err: the layout is not one we edit safely.
fn edit_text(
    src: &str,
    parsed: &Mapping,
    plans: &[EventPlan],
) -> std::result::Result<String, String> {
    let l = Lines::new(src);
    let n = l.len();
    let hooks = parsed.get("hooks");
    let hb = scan_hooks(&l, hooks.is_some())?;
    let mut drop = vec![false; n];
    let mut replace: BTreeMap<usize, String> = BTreeMap::new();
    let mut insert: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    let mut new_events: Vec<&EventPlan> = Vec::new();

    for p in plans {
        let block = hb
            .as_ref()
            .and_then(|h| h.events.iter().find(|e| e.name == p.event));
        let Some(e) = block else {
            if p.append.is_some() {
                new_events.push(p);
                continue;
            }
            return Err(format!("cannot find the `{}:` lines", p.event));
        };
        let list_len = parsed
            .get("hooks")
            .and_then(|h| h.get(p.event.as_str()))
            .and_then(Yaml::as_sequence)
            .map_or(0, |s| s.len());
        if !e.inline.is_empty() && !is_empty_inline(&e.inline) {
            return Err(format!("`{}:` is written inline", p.event));
        }
        if e.items.len() != list_len {
            return Err(format!(
                "`{}:` is not a plain list of `- command: ...` entries",
                p.event
            ));
        }
        if list_len > 0 && e.item_indent.is_none() {
            return Err(format!("`{}:` has an unexpected layout", p.event));
        }
        if p.drop_event {
            let last = e.last_content.unwrap_or(e.key_line);
            for d in drop.iter_mut().take(last + 1).skip(e.key_line) {
                *d = true;
            }
            continue;
        }
        for &ix in &p.drop_items {
            let start = e.items[ix];
            let stop = match e.items.get(ix + 1) {
                Some(&next) => next,
                None => e.last_content.map_or(start + 1, |x| x + 1),
            };
            for d in drop.iter_mut().take(stop).skip(start) {
                *d = true;
            }
        }
        if let Some((cmd, t)) = &p.append {
            let indent = e
                .item_indent
                .unwrap_or(hb.as_ref().and_then(|h| h.event_indent).unwrap_or(2) + 2);
            let at = e.last_content.unwrap_or(e.key_line) + 1;
            insert
                .entry(at)
                .or_default()
                .extend(entry_lines(indent, &p.event, cmd, *t));
            if !e.inline.is_empty() {
                let pad = " ".repeat(l.indent(e.key_line));
                replace.insert(
                    e.key_line,
                    with_comment(format!("{pad}{}:", e.name), &e.comment),
                );
            }
        }
    }

    // Events that are not in the file yet go at the end of the hooks block.
    let mut added_hooks_key = false;
    if !new_events.is_empty() {
        let (k, at) = match &hb {
            Some(h) => {
                if !h.inline.is_empty() {
                    replace.insert(h.key_line, with_comment("hooks:".into(), &h.comment));
                }
                (
                    h.event_indent.unwrap_or(2),
                    h.last_content.unwrap_or(h.key_line) + 1,
                )
            }
            None => {
                added_hooks_key = true;
                (2, n)
            }
        };
        let pad = " ".repeat(k);
        let mut lines = Vec::new();
        if added_hooks_key {
            lines.push(MARKER.to_string());
            lines.push("hooks:".to_string());
        }
        for p in &new_events {
            lines.push(format!("{pad}{}:", p.event));
            if let Some((cmd, t)) = &p.append {
                lines.extend(entry_lines(k + 2, &p.event, cmd, *t));
            }
        }
        insert.entry(at).or_default().extend(lines);
    }

    // Uninstall emptied the whole block: remove the key we added, or leave `hooks: {}`.
    if let Some(h) = &hb {
        let body_left = (h.key_line + 1..n)
            .take_while(|&i| !(l.content(i) && l.indent(i) == 0))
            .any(|i| l.content(i) && !drop[i]);
        let inserting_into_block = insert
            .keys()
            .any(|&at| at > h.key_line && at <= h.last_content.unwrap_or(h.key_line) + 1);
        if h.inline.is_empty() && h.last_content.is_some() && !body_left && !inserting_into_block {
            if h.marker {
                drop[h.key_line] = true;
                drop[h.key_line - 1] = true;
            } else {
                replace.insert(h.key_line, with_comment("hooks: {}".into(), &h.comment));
            }
        }
    }

    let mut out = String::with_capacity(src.len() + 512);
    let push = |out: &mut String, s: &str| {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push_str(l.nl);
        }
        out.push_str(s);
        out.push_str(l.nl);
    };
    let emit_inserts = |out: &mut String, at: usize| {
        for s in insert.get(&at).into_iter().flatten() {
            push(out, s);
        }
    };
    for (i, text) in l.text.iter().enumerate() {
        emit_inserts(&mut out, i);
        if !drop[i] {
            push(&mut out, replace.get(&i).map_or(text, String::as_str));
        }
    }
    emit_inserts(&mut out, n);
    // Keep a missing final newline missing when nothing was appended after it.
    if !l.final_nl && n > 0 && !insert.contains_key(&n) && !drop[n - 1] && out.ends_with(l.nl) {
        out.truncate(out.len() - l.nl.len());
    }
    Ok(out)
}

/// hooks values compare equal when absent, null and `{}` (Hermes: no hooks).
fn hooks_equiv(a: Option<&Yaml>, b: &Mapping) -> bool {
    match a {
        None | Some(Yaml::Null) => b.is_empty(),
        Some(Yaml::Mapping(m)) => m == b,
        Some(_) => false,
    }
}

/// Check the edited text: it parses, every key but `hooks` is unchanged, and
/// `hooks` is exactly what the plan says.
fn verify_edit(
    path: &Path,
    before: &Mapping,
    after_text: &str,
    expected: &Mapping,
) -> std::result::Result<(), String> {
    let after = parse_root(path, after_text).map_err(|e| e.message)?;
    let strip = |m: &Mapping| {
        let mut m = m.clone();
        m.remove("hooks");
        m
    };
    if strip(before) != strip(&after) {
        return Err("the edit would change keys outside `hooks:`".into());
    }
    if !hooks_equiv(after.get("hooks"), expected) {
        return Err("the edited `hooks:` block does not read back as intended".into());
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// shell-hooks-allowlist.json
// ---------------------------------------------------------------------------

/// `json.dumps(data, indent=2, sort_keys=True)` (ensure_ascii), byte for byte.
pub fn python_json(v: &Value) -> String {
    let mut out = String::new();
    py_write(v, 0, &mut out);
    out
}

fn py_write(v: &Value, ind: usize, out: &mut String) {
    match v {
        Value::Object(m) if m.is_empty() => out.push_str("{}"),
        Value::Array(a) if a.is_empty() => out.push_str("[]"),
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push_str("{\n");
            for (i, k) in keys.iter().enumerate() {
                out.push_str(&" ".repeat(ind + 2));
                py_str(k, out);
                out.push_str(": ");
                py_write(&m[k.as_str()], ind + 2, out);
                out.push_str(if i + 1 < keys.len() { ",\n" } else { "\n" });
            }
            out.push_str(&" ".repeat(ind));
            out.push('}');
        }
        Value::Array(a) => {
            out.push_str("[\n");
            for (i, x) in a.iter().enumerate() {
                out.push_str(&" ".repeat(ind + 2));
                py_write(x, ind + 2, out);
                out.push_str(if i + 1 < a.len() { ",\n" } else { "\n" });
            }
            out.push_str(&" ".repeat(ind));
            out.push(']');
        }
        Value::String(s) => py_str(s, out),
        other => out.push_str(&other.to_string()),
    }
}

fn py_str(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            c => {
                let mut buf = [0u16; 2];
                for u in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{u:04x}"));
                }
            }
        }
    }
    out.push('"');
}

/// Python's `datetime.isoformat().replace("+00:00", "Z")` for a UTC time.
fn py_iso(secs: i64, micros: u32) -> String {
    let t = chrono::DateTime::from_timestamp(secs, micros * 1000).unwrap_or_default();
    let base = t.format("%Y-%m-%dT%H:%M:%S").to_string();
    if micros == 0 {
        format!("{base}Z")
    } else {
        format!("{base}.{micros:06}Z")
    }
}

/// Hermes' `script_mtime_iso(command)`: the mtime of the command's program.
fn script_mtime_iso(command: &str) -> Option<String> {
    let prog = command_program(command)?;
    let m = fs::metadata(&prog).ok()?;
    use std::os::unix::fs::MetadataExt;
    // Python: datetime.fromtimestamp(st_mtime float), rounded half-even to µs.
    let f = m.mtime() as f64 + m.mtime_nsec() as f64 * 1e-9;
    let mut secs = f.floor();
    let mut us = ((f - secs) * 1e6).round_ties_even();
    if us >= 1e6 {
        secs += 1.0;
        us -= 1e6;
    }
    Some(py_iso(secs as i64, us as u32))
}

fn now_py_iso() -> String {
    let now = chrono::Utc::now();
    py_iso(now.timestamp(), now.timestamp_subsec_micros())
}

fn parse_allowlist(path: &Path, text: Option<&str>) -> Result<Value> {
    let Some(text) = text else {
        return Ok(json!({"approvals": []}));
    };
    let mut v: Value = serde_json::from_str(text).map_err(|e| {
        Error::config(format!("{} is not valid JSON: {e}", path.display())).hint(
            "fix or move the file aside (Hermes would treat it as empty and ask for consent again)",
        )
    })?;
    if !v.is_object() {
        return Err(Error::config(format!(
            "{} does not hold a JSON object",
            path.display()
        )));
    }
    if !v["approvals"].is_array() {
        v["approvals"] = json!([]);
    }
    Ok(v)
}

fn allowlist_managed(e: &Value) -> bool {
    e.get("command")
        .and_then(Value::as_str)
        .is_some_and(is_managed_command)
}

/// The allowlist after install (our command approved for every managed
/// event, other hermes-operator commands dropped) or uninstall (all ours dropped).
fn edit_allowlist(v: &Value, mode: Mode, command: &str) -> Value {
    let mut out = v.clone();
    let old = v["approvals"].as_array().cloned().unwrap_or_default();
    let mut seen: Vec<String> = Vec::new();
    let mut kept: Vec<Value> = Vec::new();
    for e in old {
        if !allowlist_managed(&e) {
            kept.push(e);
            continue;
        }
        let ev = e
            .get("event")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let ours = mode == Mode::Install
            && e.get("command").and_then(Value::as_str) == Some(command)
            && MANAGED_EVENTS.iter().any(|(m, _)| *m == ev)
            && !seen.contains(&ev);
        if ours {
            seen.push(ev);
            kept.push(e);
        }
    }
    if mode == Mode::Install {
        for (ev, _) in MANAGED_EVENTS {
            if !seen.iter().any(|s| s == ev) {
                kept.push(json!({
                    "event": ev,
                    "command": command,
                    "approved_at": now_py_iso(),
                    "script_mtime_at_approval": script_mtime_iso(command),
                }));
            }
        }
    }
    out["approvals"] = Value::Array(kept);
    out
}

fn allowlisted(v: &Value, event: &str, command: &str) -> bool {
    v["approvals"].as_array().is_some_and(|a| {
        a.iter().any(|e| {
            e.get("event").and_then(Value::as_str) == Some(event)
                && e.get("command").and_then(Value::as_str) == Some(command)
        })
    })
}

// ---------------------------------------------------------------------------
// Plans, apply, status
// ---------------------------------------------------------------------------

/// What `hook install` / `hook uninstall` would do. `*_after` is None when
/// that file stays as it is.
#[derive(Debug, Clone)]
pub struct Plan {
    mode: Mode,
    pub command: String,
    pub config_path: PathBuf,
    pub config_before: Option<String>,
    pub config_after: Option<String>,
    pub allowlist_path: PathBuf,
    pub allowlist_before: Option<String>,
    pub allowlist_after: Option<String>,
    /// One line per change, for people.
    pub changes: Vec<String>,
}

impl Plan {
    pub fn changed(&self) -> bool {
        self.config_after.is_some() || self.allowlist_after.is_some()
    }
    /// A unified diff of config.yaml (empty when unchanged).
    pub fn config_diff(&self) -> String {
        match &self.config_after {
            Some(after) => unified_diff(
                &self.config_path.display().to_string(),
                self.config_before.as_deref().unwrap_or(""),
                after,
            ),
            None => String::new(),
        }
    }
}

fn read_opt(path: &Path) -> Result<Option<String>> {
    match fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(path, "reading", e)),
    }
}

fn manual_snippet(command: &str) -> String {
    let mut s = String::from("hooks:\n");
    for (ev, t) in MANAGED_EVENTS {
        s.push_str(&format!("  {ev}:\n"));
        for l in entry_lines(4, ev, command, *t) {
            s.push_str(&l);
            s.push('\n');
        }
    }
    s
}

fn plan(home: &Home, mode: Mode, command: &str) -> Result<Plan> {
    home.require()?;
    let config_path = home.hermes_config();
    let allowlist_path = home.root.join(ALLOWLIST_FILE);
    let config_before = read_opt(&config_path)?;
    let text = config_before.as_deref().unwrap_or("");
    let root = parse_root(&config_path, text)?;
    let hooks = hooks_of(&config_path, &root)?;
    let plans = plan_events(hooks, mode, command);
    let mut changes = Vec::new();
    let config_after = if plans.is_empty() {
        None
    } else {
        for p in &plans {
            if p.drop_event {
                changes.push(format!(
                    "config.yaml: remove hooks.{} (only hermes-operator entries)",
                    p.event
                ));
            } else {
                if !p.drop_items.is_empty() {
                    changes.push(format!(
                        "config.yaml: remove {} old hermes-operator entr{} from hooks.{}",
                        p.drop_items.len(),
                        if p.drop_items.len() == 1 { "y" } else { "ies" },
                        p.event
                    ));
                }
                if p.append.is_some() {
                    changes.push(format!("config.yaml: add hooks.{} entry", p.event));
                }
            }
        }
        let expected = expected_hooks(hooks, &plans);
        let refuse = |why: String| {
            let verb = if mode == Mode::Install {
                "add"
            } else {
                "remove"
            };
            Error::config(format!(
                "cannot edit the `hooks:` block of {} safely: {why}",
                config_path.display()
            ))
            .hint(if mode == Mode::Install {
                format!(
                    "{verb} these entries by hand (merging with any hooks you have), then run `hermes-operator hook install` again to approve them:\n{}",
                    manual_snippet(command)
                )
            } else {
                "remove the hook entries whose command runs `hermes-operator ... hook` by hand, then run `hermes-operator hook uninstall` again".to_string()
            })
        };
        let after = edit_text(text, &root, &plans).map_err(refuse)?;
        verify_edit(&config_path, &root, &after, &expected).map_err(refuse)?;
        (after != text || config_before.is_none()).then_some(after)
    };
    let allowlist_before = read_opt(&allowlist_path)?;
    let al = parse_allowlist(&allowlist_path, allowlist_before.as_deref())?;
    let al_after = edit_allowlist(&al, mode, command);
    let allowlist_after = if al_after["approvals"] == al["approvals"] {
        None
    } else {
        let old = al["approvals"].as_array().map_or(0, Vec::len);
        let new = al_after["approvals"].as_array().map_or(0, Vec::len);
        changes.push(format!("{ALLOWLIST_FILE}: {old} → {new} approvals"));
        Some(python_json(&al_after))
    };
    Ok(Plan {
        mode,
        command: command.to_string(),
        config_path,
        config_before,
        config_after,
        allowlist_path,
        allowlist_before,
        allowlist_after,
        changes,
    })
}

/// Plan `hook install` for `command` (see [`hook_command`]).
pub fn plan_install(home: &Home, command: &str) -> Result<Plan> {
    plan(home, Mode::Install, command)
}

/// Plan `hook uninstall`: every hermes-operator hook entry goes.
pub fn plan_uninstall(home: &Home) -> Result<Plan> {
    plan(home, Mode::Uninstall, "")
}

#[derive(Debug, Clone, Serialize)]
pub struct Applied {
    pub backup_dir: Option<PathBuf>,
    pub config_changed: bool,
    pub allowlist_changed: bool,
}

/// Make the planned changes: back both files up into
/// `backups/operator_hooks_<UTC ts>/`, then write them atomically
/// (allowlist first on install, so Hermes never sees an unapproved entry).
pub fn apply(home: &Home, plan: &Plan) -> Result<Applied> {
    if !plan.changed() {
        return Ok(Applied {
            backup_dir: None,
            config_changed: false,
            allowlist_changed: false,
        });
    }
    let backup_dir = backup(home, plan)?;
    let mut allowlist_changed = false;
    let write_allowlist = |changed: &mut bool| -> Result<()> {
        if plan.allowlist_after.is_some() {
            *changed = update_allowlist(plan)?;
        }
        Ok(())
    };
    if plan.mode == Mode::Install {
        write_allowlist(&mut allowlist_changed)?;
    }
    let config_changed = if let Some(after) = &plan.config_after {
        let now = read_opt(&plan.config_path)?;
        if now != plan.config_before {
            return Err(Error::conflict(format!(
                "{} changed while it was being edited; nothing was written to it",
                plan.config_path.display()
            ))
            .hint("run the command again"));
        }
        atomic_write(&plan.config_path, after.as_bytes())?;
        true
    } else {
        false
    };
    if plan.mode == Mode::Uninstall {
        write_allowlist(&mut allowlist_changed)?;
    }
    Ok(Applied {
        backup_dir: Some(backup_dir),
        config_changed,
        allowlist_changed,
    })
}

fn backup(home: &Home, plan: &Plan) -> Result<PathBuf> {
    let ts = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
    let base = home.backups_dir();
    let mut dir = base.join(format!("operator_hooks_{ts}"));
    let mut n = 1;
    while dir.exists() {
        n += 1;
        dir = base.join(format!("operator_hooks_{ts}_{n}"));
    }
    home::ensure_private_dir(&dir)?;
    for (src, before) in [
        (&plan.config_path, &plan.config_before),
        (&plan.allowlist_path, &plan.allowlist_before),
    ] {
        if let Some(text) = before {
            let name = src.file_name().unwrap_or_default();
            home::write_private_file(&dir.join(name), text.as_bytes())?;
        }
    }
    Ok(dir)
}

/// Write a file atomically next to itself, keeping its mode and owner
/// (0600 when new) and writing through a symlink to its target.
fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    let target = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    home::write_atomic(&target, bytes, None)
}

/// Read-modify-write of the allowlist under Hermes' own lock
/// (`flock` on `shell-hooks-allowlist.json.lock`). Returns whether it changed.
fn update_allowlist(plan: &Plan) -> Result<bool> {
    let lock_path = plan
        .allowlist_path
        .with_file_name(format!("{ALLOWLIST_FILE}.lock"));
    let lock = fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(&lock_path)
        .map_err(|e| Error::io(&lock_path, "opening lock file", e))?;
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a file descriptor we own; released when `lock` drops.
    if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(Error::io(
            &lock_path,
            "locking",
            std::io::Error::last_os_error(),
        ));
    }
    let now = read_opt(&plan.allowlist_path)?;
    let after = if now == plan.allowlist_before {
        plan.allowlist_after.clone()
    } else {
        // Hermes approved something meanwhile: redo the edit on the new content.
        let al = parse_allowlist(&plan.allowlist_path, now.as_deref())?;
        let a = edit_allowlist(&al, plan.mode, &plan.command);
        (a["approvals"] != al["approvals"]).then(|| python_json(&a))
    };
    let Some(after) = after else { return Ok(false) };
    atomic_write(&plan.allowlist_path, after.as_bytes())?;
    drop(lock);
    Ok(true)
}

/// One event's state in `hook status`.
#[derive(Debug, Clone, Serialize)]
pub struct EventStatus {
    pub event: String,
    /// `installed` (exactly our entry), `partial` (hermes-operator entries
    /// that differ: another path, timeout or duplicates) or `missing`.
    pub state: String,
    /// The hermes-operator commands configured for this event.
    pub commands: Vec<String>,
    pub allowlisted: bool,
    pub command_exists: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// `installed`, `partial` or `missing`.
    pub state: String,
    pub config_path: PathBuf,
    pub config_exists: bool,
    pub allowlist_path: PathBuf,
    pub expected_command: String,
    pub events: Vec<EventStatus>,
    /// Hermes compacts long conversations keeping the session id (see the
    /// module notes); false means it rotates ids and the policy is lost.
    pub compression_in_place: bool,
    /// The Hermes version the check was made against (`None`: not found).
    pub hermes_version: Option<String>,
    /// Whether that Hermes blocks a tool when the policy hook cannot run
    /// (`fail_closed: true` honoured, 0.20+); `None` when Hermes was not found.
    pub fails_closed: Option<bool>,
    pub problems: Vec<String>,
}

/// What Hermes 0.19 makes of `compression.in_place` (its config loader
/// merges defaults, where it is true; the agent then reads it with
/// `is_truthy_value(.., default=False)`): absent or a null `compression` →
/// true; a `compression` mapping without the key → true; with the key → its
/// truthiness (null → false); `compression` of another type → false.
pub fn compression_in_place(root: &Mapping) -> bool {
    match root.get("compression") {
        None | Some(Yaml::Null) => true,
        Some(Yaml::Mapping(m)) => match m.get("in_place") {
            None => true,
            Some(Yaml::Bool(b)) => *b,
            Some(Yaml::String(s)) => {
                matches!(
                    s.trim().to_ascii_lowercase().as_str(),
                    "1" | "true" | "yes" | "on"
                )
            }
            Some(Yaml::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
            Some(Yaml::Null) => false,
            Some(Yaml::Sequence(s)) => !s.is_empty(),
            Some(Yaml::Mapping(m)) => !m.is_empty(),
            Some(Yaml::Tagged(_)) => true,
        },
        Some(_) => false,
    }
}

/// Read-only: what Hermes' config and allowlist say about our hooks.
/// `hermes`: the installed Hermes, when found (see `crate::hermes::install`).
pub fn status(
    home: &Home,
    command: &str,
    hermes: Option<&crate::hermes::install::HermesVersion>,
) -> Result<Status> {
    home.require()?;
    let config_path = home.hermes_config();
    let allowlist_path = home.root.join(ALLOWLIST_FILE);
    let text = read_opt(&config_path)?;
    let root = parse_root(&config_path, text.as_deref().unwrap_or(""))?;
    let hooks = hooks_of(&config_path, &root)?;
    let al = parse_allowlist(&allowlist_path, read_opt(&allowlist_path)?.as_deref())?;
    let mut events = Vec::new();
    let mut problems = Vec::new();
    for (ev, t) in MANAGED_EVENTS {
        let list: Vec<Yaml> = hooks
            .and_then(|h| h.get(*ev))
            .and_then(Yaml::as_sequence)
            .cloned()
            .unwrap_or_default();
        let managed: Vec<&Yaml> = list.iter().filter(|v| is_managed_entry(v)).collect();
        let commands: Vec<String> = managed
            .iter()
            .filter_map(|v| v.get("command").and_then(Yaml::as_str).map(str::to_string))
            .collect();
        let state = if managed.is_empty() {
            "missing"
        } else if managed.len() == 1 && *managed[0] == desired_entry(ev, command, *t) {
            "installed"
        } else {
            "partial"
        };
        let allowlisted = !commands.is_empty() && commands.iter().all(|c| allowlisted(&al, ev, c));
        let command_exists = !commands.is_empty()
            && commands
                .iter()
                .all(|c| command_program(c).is_some_and(|p| is_executable(&p)));
        if state == "partial" {
            problems.push(format!(
                "hooks.{ev}: hermes-operator entries differ from `{command}` (timeout {t}); run `hermes-operator hook install`"
            ));
        }
        if state != "missing" && !allowlisted {
            problems.push(format!(
                "hooks.{ev}: not in {ALLOWLIST_FILE}; Hermes will not run it without consent"
            ));
        }
        if state != "missing" && !command_exists {
            problems.push(format!(
                "hooks.{ev}: the configured program does not exist or is not executable"
            ));
        }
        events.push(EventStatus {
            event: ev.to_string(),
            state: state.to_string(),
            commands,
            allowlisted,
            command_exists,
        });
    }
    let in_place = compression_in_place(&root);
    if !in_place {
        problems.push(format!(
            "compression.in_place is off in {}: Hermes continues a compressed conversation under a new session id, which the tool policy, the live events and the operator's session views do not follow; remove the setting or set it to true (Hermes' default)",
            config_path.display()
        ));
    }
    let fails_closed = hermes.map(|v| v.hooks_fail_closed());
    if let (Some(false), Some(v)) = (fails_closed, hermes) {
        if events.iter().any(|e| e.state != "missing") {
            problems.push(format!(
                "Hermes {} runs a tool when the policy hook cannot run (program missing, crashed, timed out): the tool policy fails open; upgrade Hermes to 0.20 or later, which honours the fail_closed: true written by hook install",
                v.version
            ));
        }
    }
    let all = |s: &str| events.iter().all(|e| e.state == s);
    let state = if all("installed") && events.iter().all(|e| e.allowlisted && e.command_exists) {
        "installed"
    } else if all("missing") {
        "missing"
    } else {
        "partial"
    };
    Ok(Status {
        state: state.to_string(),
        config_path,
        config_exists: text.is_some(),
        allowlist_path,
        expected_command: command.to_string(),
        events,
        compression_in_place: in_place,
        hermes_version: hermes.map(|v| v.version.clone()),
        fails_closed,
        problems,
    })
}

// ---------------------------------------------------------------------------
// A small unified diff (for --dry-run and confirmations)
// ---------------------------------------------------------------------------

pub fn unified_diff(name: &str, a: &str, b: &str) -> String {
    let a: Vec<&str> = a.lines().collect();
    let b: Vec<&str> = b.lines().collect();
    let (n, m) = (a.len(), b.len());
    let mut pre = 0;
    while pre < n && pre < m && a[pre] == b[pre] {
        pre += 1;
    }
    let mut suf = 0;
    while suf < n - pre && suf < m - pre && a[n - 1 - suf] == b[m - 1 - suf] {
        suf += 1;
    }
    let (am, bm) = (&a[pre..n - suf], &b[pre..m - suf]);
    // LCS over the changed middle (config files are small).
    let mut ops: Vec<(char, &str)> = Vec::new();
    if am.len().saturating_mul(bm.len()) <= 4_000_000 {
        let mut dp = vec![vec![0u32; bm.len() + 1]; am.len() + 1];
        for i in (0..am.len()).rev() {
            for j in (0..bm.len()).rev() {
                dp[i][j] = if am[i] == bm[j] {
                    dp[i + 1][j + 1] + 1
                } else {
                    dp[i + 1][j].max(dp[i][j + 1])
                };
            }
        }
        let (mut i, mut j) = (0, 0);
        while i < am.len() || j < bm.len() {
            if i < am.len() && j < bm.len() && am[i] == bm[j] {
                ops.push((' ', am[i]));
                i += 1;
                j += 1;
            } else if j < bm.len() && (i == am.len() || dp[i][j + 1] >= dp[i + 1][j]) {
                ops.push(('+', bm[j]));
                j += 1;
            } else {
                ops.push(('-', am[i]));
                i += 1;
            }
        }
    } else {
        ops.extend(am.iter().map(|l| ('-', *l)));
        ops.extend(bm.iter().map(|l| ('+', *l)));
    }
    if ops.iter().all(|(c, _)| *c == ' ') {
        return String::new();
    }
    let ctx = 2;
    let lead = pre.min(ctx);
    let trail = suf.min(ctx);
    let mut out = format!("--- {name}\n+++ {name}\n");
    let old_len = lead + ops.iter().filter(|(c, _)| *c != '+').count() + trail;
    let new_len = lead + ops.iter().filter(|(c, _)| *c != '-').count() + trail;
    out.push_str(&format!(
        "@@ -{},{} +{},{} @@\n",
        pre - lead + 1,
        old_len,
        pre - lead + 1,
        new_len
    ));
    for l in &a[pre - lead..pre] {
        out.push_str(&format!(" {l}\n"));
    }
    for (c, l) in &ops {
        out.push_str(&format!("{c}{l}\n"));
    }
    for l in &a[n - suf..n - suf + trail] {
        out.push_str(&format!(" {l}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const CMD: &str = "/opt/bin/hermes-operator --hermes-home /srv/hermes hook";

    fn edit(text: &str, mode: Mode, cmd: &str) -> std::result::Result<String, String> {
        let root = parse_root(Path::new("c.yaml"), text).map_err(|e| e.message)?;
        let hooks = hooks_of(Path::new("c.yaml"), &root).map_err(|e| e.message)?;
        let plans = plan_events(hooks, mode, cmd);
        let out = edit_text(text, &root, &plans)?;
        verify_edit(
            Path::new("c.yaml"),
            &root,
            &out,
            &expected_hooks(hooks, &plans),
        )?;
        Ok(out)
    }

    fn install(text: &str) -> std::result::Result<String, String> {
        edit(text, Mode::Install, CMD)
    }

    fn uninstall(text: &str) -> std::result::Result<String, String> {
        edit(text, Mode::Uninstall, "")
    }

    #[test]
    fn operator_ids() {
        assert!(is_operator_session_id("op_0123456789ab"));
        assert!(!is_operator_session_id("op_0123456789AB"));
        assert!(!is_operator_session_id("op_0123456789a"));
        assert!(!is_operator_session_id("api-0123456789abcdef"));
        assert!(!is_operator_session_id("20260101_101010_abcdef"));
    }

    #[test]
    fn policy_by_toolset() {
        let en = vec!["web".to_string(), "file".to_string()];
        assert!(tool_allowed("web_search", &en));
        assert!(tool_allowed("read_file", &en));
        assert!(!tool_allowed("terminal", &en));
        assert!(!tool_allowed("some_plugin_tool", &en));
        let en2 = vec!["some_plugin_tool".to_string(), "mcp-git-hub".to_string()];
        assert!(tool_allowed("some_plugin_tool", &en2));
        assert!(tool_allowed("mcp__git_hub__list_prs", &en2));
        assert!(!tool_allowed("mcp__other__x", &en2));
        let r = block_reason("terminal", &en);
        assert!(
            r.contains("`terminal`") && r.contains("toolset terminal") && r.contains("web, file"),
            "{r}"
        );
        assert_eq!(toolsets_for_tool("mcp__gh__x"), vec!["mcp-gh".to_string()]);
    }

    #[test]
    fn shell_words_round_trip() {
        for s in ["/a/b", "/with space/x", "it's", "", "a\"b"] {
            assert_eq!(
                sh_split(&sh_quote(s)).unwrap(),
                vec![s.to_string()],
                "{s:?}"
            );
        }
        let c = hook_command_for(Path::new("/x y/hermes-operator"), Path::new("/h"));
        assert!(is_managed_command(&c), "{c}");
        assert_eq!(
            command_program(&c).unwrap(),
            PathBuf::from("/x y/hermes-operator")
        );
        assert!(!is_managed_command("/usr/bin/other hook"));
        assert!(!is_managed_command("/usr/bin/hermes-operator status"));
    }

    #[test]
    fn python_json_matches_json_dumps() {
        let v =
            json!({"approvals": [{"event": "e", "command": "/x/é", "n": null, "t": 1}], "b": {}});
        assert_eq!(
            python_json(&v),
            "{\n  \"approvals\": [\n    {\n      \"command\": \"/x/\\u00e9\",\n      \"event\": \"e\",\n      \"n\": null,\n      \"t\": 1\n    }\n  ],\n  \"b\": {}\n}"
        );
    }

    #[test]
    fn py_iso_format() {
        assert_eq!(py_iso(0, 0), "1970-01-01T00:00:00Z");
        assert_eq!(py_iso(0, 5), "1970-01-01T00:00:00.000005Z");
    }

    #[test]
    fn appends_block_when_absent_and_uninstall_restores() {
        let src = "# my config\nmodel:\n  default: x  # keep me\n\nterminal:\n  backend: local\n";
        let out = install(src).unwrap();
        assert!(out.starts_with(src), "{out}");
        assert!(out.contains(&format!(
            "{MARKER}\nhooks:\n  pre_tool_call:\n    - command: \"{CMD}\"\n      timeout: 10\n"
        )));
        assert_eq!(
            install(&out).unwrap(),
            out,
            "second install changes nothing"
        );
        assert_eq!(uninstall(&out).unwrap(), src);
    }

    #[test]
    fn empty_and_missing_final_newline() {
        let out = install("").unwrap();
        assert!(out.starts_with(MARKER));
        assert_eq!(uninstall(&out).unwrap(), "");
        let out = install("a: 1").unwrap();
        assert!(out.starts_with("a: 1\n"));
        assert_eq!(uninstall(&out).unwrap(), "a: 1\n");
    }

    #[test]
    fn merges_into_existing_hooks_keeping_user_entries() {
        let src = "hooks:\n  # audit everything\n  post_tool_call:\n    - command: /usr/local/bin/log-tool  # mine\n      timeout: 3\n  on_session_start:\n    - command: /bin/true\nother: 1\n";
        let out = install(src).unwrap();
        assert!(out.contains("    - command: /usr/local/bin/log-tool  # mine\n      timeout: 3\n    - command: \""), "{out}");
        assert!(
            out.contains("  on_session_start:\n    - command: /bin/true\n  pre_tool_call:\n"),
            "{out}"
        );
        assert!(out.ends_with("other: 1\n"));
        assert_eq!(install(&out).unwrap(), out);
        assert_eq!(uninstall(&out).unwrap(), src);
    }

    #[test]
    fn pyyaml_style_and_stale_entries_are_replaced() {
        let src = "hooks:\n  pre_tool_call:\n  - command: /old/hermes-operator --hermes-home /srv/hermes hook\n    timeout: 5\n  - command: /bin/mine\n";
        let out = install(src).unwrap();
        assert!(!out.contains("/old/hermes-operator"), "{out}");
        assert!(
            out.contains("  - command: /bin/mine\n  - command: \""),
            "{out}"
        );
        let un = uninstall(&out).unwrap();
        assert_eq!(un, "hooks:\n  pre_tool_call:\n  - command: /bin/mine\n");
    }

    #[test]
    fn inline_empty_hooks_become_block_and_come_back() {
        let src = "hooks: {}  # none yet\nx: 2\n";
        let out = install(src).unwrap();
        assert!(
            out.starts_with("hooks:  # none yet\n  pre_tool_call:\n"),
            "{out}"
        );
        assert_eq!(uninstall(&out).unwrap(), "hooks: {}  # none yet\nx: 2\n");
        let src = "hooks:\n  pre_tool_call: []\n";
        let out = install(src).unwrap();
        assert!(
            out.starts_with("hooks:\n  pre_tool_call:\n    - command:"),
            "{out}"
        );
    }

    #[test]
    fn refuses_layouts_it_cannot_edit() {
        let e = install("hooks: {pre_tool_call: [{command: /bin/x}]}\n").unwrap_err();
        assert!(e.contains("inline"), "{e}");
        let e = install("hooks:\n  pre_tool_call: [{command: /bin/x}]\n").unwrap_err();
        assert!(e.contains("inline"), "{e}");
        assert!(install("{a: 1}\n").is_err());
    }

    #[test]
    fn allowlist_edit() {
        let al = json!({"approvals": [
            {"event": "pre_tool_call", "command": "/bin/mine"},
            {"event": "pre_tool_call", "command": "/old/hermes-operator --hermes-home /h hook"}
        ]});
        let a = edit_allowlist(&al, Mode::Install, CMD);
        let list = a["approvals"].as_array().unwrap();
        assert_eq!(list.len(), 1 + MANAGED_EVENTS.len());
        assert!(allowlisted(&a, "post_tool_call", CMD));
        assert!(allowlisted(&a, "pre_tool_call", "/bin/mine"));
        let again = edit_allowlist(&a, Mode::Install, CMD);
        assert_eq!(again, a);
        let u = edit_allowlist(&a, Mode::Uninstall, "");
        assert_eq!(u["approvals"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn diff_shows_changes() {
        let d = unified_diff("f", "a\nb\nc\n", "a\nb\nx\nc\n");
        assert!(d.contains("+x"), "{d}");
        assert!(unified_diff("f", "a\n", "a\n").is_empty());
    }

    #[test]
    fn unparseable_payload_fails_closed_only_for_operator_pre_tool_call() {
        let home = Home::at("/nonexistent-hermes-home-for-test");
        let r = handle_event(
            &home,
            b"{\"hook_event_name\": \"pre_tool_call\", \"session_id\": \"op_0123456789ab\", oops",
        );
        assert!(r.blocks());
        let r = handle_event(
            &home,
            b"{\"hook_event_name\": \"pre_tool_call\", \"session_id\": \"api-1\", oops",
        );
        assert!(!r.blocks());
        assert!(!r.stderr.is_empty());
        let r = handle_event(
            &home,
            b"{\"hook_event_name\": \"on_session_start\", \"session_id\": \"op_0123456789ab\"}",
        );
        assert_eq!(r, Reply::default());
    }
}
