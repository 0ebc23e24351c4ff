//! `hermes-operator hook` (Hermes' shell-hook protocol: tool policy and live
//! events for operator sessions) and `hook install|uninstall|status`, checked
//! against the REAL Hermes Agent 0.19.0: its CLI (`hermes hooks list|doctor`),
//! its own registration and spawn code (`agent.shell_hooks`), and a real
//! gateway whose agent tries a tool the operator's policy forbids.
use crate::common;
use crate::common::{stderr, stdout};

use common::gateway::{Gateway, GatewayOpts};
use common::{hermes, make_home_with_state_seeded, op, Gen, TestHome};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::gateway::{hooks_yaml, MANAGED_HOOKS as MANAGED};

/// Runs `hermes-operator --hermes-home HOME hook` with `input` on stdin.
fn hook(home: &Path, input: &str) -> Output {
    let mut c = op(home);
    c.arg("hook")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("spawn hook");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn event(name: &str, tool: &str, session: &str, args: Value, extra: Value) -> String {
    json!({
        "hook_event_name": name,
        "tool_name": tool,
        "tool_input": args,
        "session_id": session,
        "cwd": "/tmp",
        "extra": extra,
    })
    .to_string()
}

fn write_operator_config(home: &Path, yaml: &str) {
    let dir = home.join("profiles/operator");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("config.yaml"), yaml).unwrap();
}

/// All events in events.db, oldest first (read directly: the hook's rows).
fn events(home: &Path) -> Vec<Value> {
    let c = common::open_ro(&home.join("plugins/operator/events.db"));
    let mut st = c
        .prepare("SELECT type, session_id, user_id, actor, data FROM events ORDER BY seq")
        .unwrap();
    st.query_map([], |r| {
        let data: String = r.get(4)?;
        Ok(json!({
            "type": r.get::<_, String>(0)?,
            "session_id": r.get::<_, Option<String>>(1)?,
            "user_id": r.get::<_, Option<String>>(2)?,
            "actor": r.get::<_, String>(3)?,
            "data": serde_json::from_str::<Value>(&data).unwrap(),
        }))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

fn audit_verify_ok(home: &Path) {
    let o = op(home).args(["audit", "verify"]).output().unwrap();
    assert!(
        o.status.success(),
        "audit verify: {}{}",
        stdout(&o),
        stderr(&o)
    );
}

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// A home with Hermes-made sessions: (home, operator ids, their user ids, native ids).
fn seeded_home(gen: Gen) -> (TestHome, Vec<String>, Vec<String>, Vec<String>) {
    let (home, made) = make_home_with_state_seeded(gen, 4, 2, &["u_alice", "u_bob"], 11);
    let ids = |k: &str| -> Vec<String> {
        made[k]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    };
    let ops = ids("operator_ids");
    let c = common::open_ro(&home.state_db());
    let users = ops
        .iter()
        .map(|id| {
            c.query_row("SELECT user_id FROM sessions WHERE id = ?1", [id], |r| {
                r.get::<_, String>(0)
            })
            .unwrap()
        })
        .collect();
    (home, ops, users, ids("native_ids_sample"))
}

fn wal_files(home: &Path) -> Vec<PathBuf> {
    ["state.db-wal", "state.db-shm"]
        .iter()
        .map(|f| home.join(f))
        .filter(|p| p.exists())
        .collect()
}

// ---------------------------------------------------------------------------
// the protocol
// ---------------------------------------------------------------------------

fn operator_sessions_get_the_policy_and_live_events(gen: Gen) {
    let (home, ops, users, _) = seeded_home(gen);
    let h = home.path();
    write_operator_config(h, "agent:\n  enabled_toolsets: [web, file]\n");
    let sid = &ops[0];

    // A forbidden tool: blocked, with a reason naming the tool and what is allowed.
    let o = hook(
        h,
        &event(
            "pre_tool_call",
            "terminal",
            sid,
            json!({"command": "id"}),
            json!({"tool_call_id": "call_1"}),
        ),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let d: Value = serde_json::from_str(stdout(&o).trim()).expect("block JSON on stdout");
    assert_eq!(d["decision"], "block", "{d}");
    let reason = d["reason"].as_str().unwrap();
    assert!(
        reason.contains("`terminal`") && reason.contains("toolset terminal"),
        "{reason}"
    );
    assert!(reason.contains("Allowed toolsets: web, file"), "{reason}");

    // Hermes reports the blocked call as a post_tool_call with status "blocked".
    let o = hook(
        h,
        &event(
            "post_tool_call",
            "terminal",
            sid,
            json!({"command": "id"}),
            json!({"tool_call_id": "call_1", "status": "blocked", "error_type": "plugin_block",
                   "error_message": reason, "result": json!({"error": reason}).to_string(), "duration_ms": 0}),
        ),
    );
    assert!(o.status.success() && o.stdout.is_empty(), "{}", stderr(&o));

    // An allowed tool: no output at all.
    let o = hook(
        h,
        &event(
            "pre_tool_call",
            "read_file",
            sid,
            json!({"path": "/etc/hostname"}),
            json!({"tool_call_id": "call_2"}),
        ),
    );
    assert!(
        o.status.success() && o.stdout.is_empty(),
        "{}{}",
        stdout(&o),
        stderr(&o)
    );
    let o = hook(
        h,
        &event(
            "post_tool_call",
            "read_file",
            sid,
            json!({"path": "/etc/hostname"}),
            json!({"tool_call_id": "call_2", "status": "ok", "error_type": null, "error_message": null,
                   "result": "{\"content\": \"box\"}", "duration_ms": 4}),
        ),
    );
    assert!(o.status.success() && o.stdout.is_empty());

    let ev = events(h);
    assert_eq!(ev.len(), 4, "{ev:#?}");
    for e in &ev {
        assert_eq!(e["session_id"], sid.as_str());
        assert_eq!(
            e["user_id"],
            users[0].as_str(),
            "user_id comes from the state.db row"
        );
        assert_eq!(e["actor"], "hook");
        assert_eq!(e["data"]["source"], "hook");
    }
    assert_eq!(ev[0]["type"], "tool_call");
    assert_eq!(ev[0]["data"]["tool"], "terminal");
    assert_eq!(ev[0]["data"]["blocked"], true);
    assert_eq!(ev[0]["data"]["arguments"], json!({"command": "id"}));
    assert_eq!(ev[0]["data"]["tool_call_id"], "call_1");
    assert_eq!(ev[1]["type"], "tool_result");
    assert_eq!(ev[1]["data"]["status"], "blocked");
    assert_eq!(ev[2]["data"]["blocked"], false);
    assert_eq!(ev[3]["type"], "tool_result");
    assert_eq!(ev[3]["data"]["status"], "ok");
    assert_eq!(ev[3]["data"]["duration_ms"], 4);
    assert_eq!(ev[3]["data"]["result"], "{\"content\": \"box\"}");
    assert_eq!(ev[3]["data"]["tool_call_id"], "call_2");
    audit_verify_ok(h);
    // The timeline shows them.
    let o = op(h).args(["audit", "replay", sid]).output().unwrap();
    assert!(
        o.status.success() && stdout(&o).contains("terminal"),
        "{}",
        stdout(&o)
    );

    // After its first event the session is remembered: later events need no
    // state.db (moved away here) and still carry the user id.
    assert!(h.join("plugins/operator/hook_sessions").join(sid).exists());
    fs::rename(home.state_db(), h.join("state.db.away")).unwrap();
    let o = hook(
        h,
        &event("pre_tool_call", "terminal", sid, json!({}), json!({})),
    );
    assert!(
        stdout(&o).contains("\"decision\":\"block\""),
        "{}",
        stdout(&o)
    );
    let last = events(h).pop().unwrap();
    assert_eq!(last["user_id"], users[0].as_str());
    assert!(last["data"].get("note").is_none(), "{last}");
}

fn native_sessions_and_other_events_touch_nothing(gen: Gen) {
    let (home, ops, _, natives) = seeded_home(gen);
    let h = home.path();
    write_operator_config(h, "agent:\n  enabled_toolsets: [web]\n");
    let wal_before = wal_files(h);
    let payloads = [
        event(
            "pre_tool_call",
            "terminal",
            &natives[0],
            json!({"command": "id"}),
            json!({}),
        ),
        event(
            "post_tool_call",
            "terminal",
            &natives[1],
            json!({"command": "id"}),
            json!({"result": "x"}),
        ),
        event(
            "pre_tool_call",
            "terminal",
            "api-0123456789abcdef",
            json!({}),
            json!({}),
        ),
        event(
            "pre_tool_call",
            "terminal",
            "run_0123456789abcdef0123456789abcdef",
            json!({}),
            json!({}),
        ),
        event("pre_tool_call", "terminal", "", json!({}), json!({})),
        // Events we do not handle, even for an operator session.
        event(
            "on_session_start",
            "",
            &ops[0],
            json!(null),
            json!({"model": "m"}),
        ),
        event("pre_llm_call", "", &ops[0], json!(null), json!({})),
        "{\"hook_event_name\": \"pre_tool_call\", \"tool_name\": \"terminal\"}".to_string(),
    ];
    for p in &payloads {
        let o = hook(h, p);
        assert!(o.status.success(), "{p}: {}", stderr(&o));
        assert!(o.stdout.is_empty(), "{p}: {}", stdout(&o));
    }
    assert!(
        !h.join("plugins").exists(),
        "no events.db (nor its directory) for non-operator sessions"
    );
    assert_eq!(wal_files(h), wal_before, "state.db was not opened");

    // An op_-shaped id whose row says another source is not ours either.
    let c = rusqlite::Connection::open(home.state_db()).unwrap();
    c.execute(
        "INSERT INTO sessions (id, source, started_at) VALUES ('op_aaaaaaaaaaaa', 'cli', 1.0)",
        [],
    )
    .unwrap();
    drop(c);
    let o = hook(
        h,
        &event(
            "pre_tool_call",
            "terminal",
            "op_aaaaaaaaaaaa",
            json!({}),
            json!({}),
        ),
    );
    assert!(o.status.success() && o.stdout.is_empty(), "{}", stdout(&o));
    assert!(!h.join("plugins/operator/events.db").exists());
}

fn hash_mode_keeps_content_out_of_the_log(gen: Gen) {
    let (home, ops, _, _) = seeded_home(gen);
    let h = home.path();
    write_operator_config(
        h,
        "agent:\n  enabled_toolsets: [file]\naudit:\n  store_content: hash\n",
    );
    let args = json!({"path": "/etc/secret", "limit": 10});
    let result = "{\"content\": \"top secret\"}";
    hook(
        h,
        &event(
            "pre_tool_call",
            "read_file",
            &ops[1],
            args.clone(),
            json!({"tool_call_id": "c"}),
        ),
    );
    hook(
        h,
        &event(
            "post_tool_call",
            "read_file",
            &ops[1],
            args.clone(),
            json!({"tool_call_id": "c", "status": "ok", "result": result, "duration_ms": 1}),
        ),
    );
    let ev = events(h);
    assert_eq!(ev.len(), 2);
    let all = serde_json::to_string(&ev).unwrap();
    assert!(!all.contains("secret"), "content leaked: {all}");
    // Canonical JSON of the arguments (sorted keys, no spaces); the result string's bytes.
    assert_eq!(
        ev[0]["data"]["arguments_sha256"],
        sha256_hex(b"{\"limit\":10,\"path\":\"/etc/secret\"}")
    );
    assert!(ev[0]["data"].get("arguments").is_none());
    assert_eq!(
        ev[1]["data"]["result_sha256"],
        sha256_hex(result.as_bytes())
    );
    assert!(ev[1]["data"].get("result").is_none());
    audit_verify_ok(h);
}

fn unreadable_input_or_config_fails_open_except_operator_pre_tool_call(gen: Gen) {
    let (home, ops, _, natives) = seeded_home(gen);
    let h = home.path();
    // Malformed payloads: exit 0, say why on stderr.
    for bad in ["", "not json", "[1,2]", "{\"hook_event_name\": 5}"] {
        let o = hook(h, bad);
        assert!(o.status.success(), "{bad:?}");
        assert!(o.stdout.is_empty(), "{bad:?}: {}", stdout(&o));
        assert!(
            stderr(&o).contains("hermes-operator hook"),
            "{bad:?}: {}",
            stderr(&o)
        );
    }
    // ... but a truncated pre_tool_call of an operator session is blocked.
    let truncated = format!("{{\"hook_event_name\": \"pre_tool_call\", \"tool_name\": \"terminal\", \"session_id\": \"{}\", \"tool_input\": {{\"comm", ops[0]);
    let o = hook(h, &truncated);
    assert!(o.status.success());
    assert!(
        stdout(&o).contains("\"decision\":\"block\""),
        "{}",
        stdout(&o)
    );

    // A broken operator config: operator calls are blocked (policy unknown),
    // native ones are not even looked at.
    write_operator_config(h, "agent:\n  enabled_toolsets: file\n");
    let o = hook(
        h,
        &event(
            "pre_tool_call",
            "read_file",
            &ops[0],
            json!({"path": "/x"}),
            json!({}),
        ),
    );
    assert!(o.status.success());
    let d: Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(d["decision"], "block");
    assert!(
        d["reason"].as_str().unwrap().contains("could not be read"),
        "{d}"
    );
    assert!(stderr(&o).contains("config"), "{}", stderr(&o));
    let o = hook(
        h,
        &event(
            "pre_tool_call",
            "read_file",
            &natives[0],
            json!({"path": "/x"}),
            json!({}),
        ),
    );
    assert!(o.status.success() && o.stdout.is_empty());
    // The blocked call is still audited (content hashed: the config is unknown).
    let ev = events(h);
    assert_eq!(ev.last().unwrap()["data"]["blocked"], true);
    assert!(ev.last().unwrap()["data"].get("arguments_sha256").is_some());
}

fn delegate_subagents_of_operator_sessions_inherit_the_policy(gen: Gen) {
    let (home, ops, users, _) = seeded_home(gen);
    let h = home.path();
    write_operator_config(h, "agent:\n  enabled_toolsets: [web, delegation]\n");
    let child = "20260101_120000_abc123";
    // Before registration the child is just another native session.
    let o = hook(
        h,
        &event("pre_tool_call", "terminal", child, json!({}), json!({})),
    );
    assert!(o.stdout.is_empty());
    // Hermes sends subagent_start with session_id = the parent's id.
    let start = json!({"hook_event_name": "subagent_start", "tool_name": null, "tool_input": null,
        "session_id": ops[0], "cwd": "/", "extra": {"child_session_id": child, "child_role": "leaf", "child_goal": "x"}});
    let o = hook(h, &start.to_string());
    assert!(o.status.success() && o.stdout.is_empty(), "{}", stderr(&o));
    let o = hook(
        h,
        &event(
            "pre_tool_call",
            "terminal",
            child,
            json!({"command": "id"}),
            json!({}),
        ),
    );
    assert!(
        stdout(&o).contains("\"decision\":\"block\""),
        "{}",
        stdout(&o)
    );
    let o = hook(
        h,
        &event(
            "pre_tool_call",
            "web_search",
            child,
            json!({"query": "q"}),
            json!({}),
        ),
    );
    assert!(o.stdout.is_empty());
    let stop = json!({"hook_event_name": "subagent_stop", "tool_name": null, "tool_input": null,
        "session_id": ops[0], "cwd": "/", "extra": {"child_session_id": child, "child_status": "completed", "duration_ms": 5}});
    hook(h, &stop.to_string());
    let o = hook(
        h,
        &event("pre_tool_call", "terminal", child, json!({}), json!({})),
    );
    assert!(o.stdout.is_empty(), "marker removed on subagent_stop");

    let ev = events(h);
    let kinds: Vec<&str> = ev.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["subagent_start", "tool_call", "tool_call", "subagent_stop"]
    );
    for e in &ev {
        assert_eq!(e["session_id"], ops[0].as_str());
        assert_eq!(e["user_id"], users[0].as_str());
    }
    assert_eq!(ev[1]["data"]["subagent_session_id"], child);
    assert_eq!(ev[1]["data"]["blocked"], true);
    audit_verify_ok(h);
}

// ---------------------------------------------------------------------------
// install / uninstall / status
// ---------------------------------------------------------------------------

const USER_CONFIG: &str = "\
# Hermes configuration (hand-edited; keep the comments!)
model:
  default: fake-model   # what we pay for
  provider: custom

platform_toolsets:
  api_server: [terminal, file, todo]

# approvals are manual on this box
approvals:
  mode: manual
  timeout: 60
";

fn install(home: &Path, extra: &[&str]) -> Output {
    op(home)
        .args(["hook", "install"])
        .args(extra)
        .output()
        .unwrap()
}

fn yaml(text: &str) -> serde_norway::Value {
    serde_norway::from_str(text).unwrap()
}

fn without_hooks(text: &str) -> serde_norway::Value {
    let mut v = yaml(text);
    if let serde_norway::Value::Mapping(m) = &mut v {
        m.remove("hooks");
    }
    v
}

fn expected_command(home: &Path) -> String {
    let exe = fs::canonicalize(env!("CARGO_BIN_EXE_hermes-operator")).unwrap();
    let h = fs::canonicalize(home).unwrap();
    format!("{} --hermes-home {} hook", exe.display(), h.display())
}

fn backups(home: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(home.join("backups"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

fn status(home: &Path) -> Value {
    let o = op(home)
        .args(["--json", "hook", "status"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn install_is_minimal_backed_up_idempotent_audited_and_reversible() {
    let home = TestHome::new();
    let h = home.path();
    let cfg = h.join("config.yaml");
    fs::write(&cfg, USER_CONFIG).unwrap();
    assert_eq!(status(h)["state"], "missing");

    // Non-interactive without --yes: refuses, changes nothing.
    let o = install(h, &[]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--yes"), "{}", stderr(&o));
    // --dry-run: the diff on stdout, nothing written.
    let o = install(h, &["--dry-run"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("+hooks:"), "{}", stdout(&o));
    assert_eq!(fs::read_to_string(&cfg).unwrap(), USER_CONFIG);
    assert!(!h.join("shell-hooks-allowlist.json").exists());
    assert!(backups(h).is_empty());

    let o = install(h, &["--yes"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let after = fs::read_to_string(&cfg).unwrap();
    // Minimal diff: the user's text is untouched (comments included), our block appended.
    assert!(after.starts_with(USER_CONFIG), "{after}");
    assert_eq!(without_hooks(&after), without_hooks(USER_CONFIG));
    let cmd = expected_command(h);
    let hooks = &yaml(&after)["hooks"];
    for ev in MANAGED {
        let list = hooks[ev].as_sequence().unwrap();
        assert_eq!(list.len(), 1, "{ev}");
        assert_eq!(list[0]["command"].as_str(), Some(cmd.as_str()));
        assert_eq!(list[0]["timeout"].as_u64(), Some(10));
        assert!(
            list[0].get("matcher").is_none(),
            "every tool goes through the policy"
        );
    }
    // Backup of the original.
    let b = backups(h);
    assert_eq!(b.len(), 1);
    assert!(b[0]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .starts_with("operator_hooks_"));
    assert_eq!(
        fs::read_to_string(b[0].join("config.yaml")).unwrap(),
        USER_CONFIG
    );
    // The allowlist in Hermes' own format (json.dumps indent=2, sort_keys).
    let al_text = fs::read_to_string(h.join("shell-hooks-allowlist.json")).unwrap();
    let al: Value = serde_json::from_str(&al_text).unwrap();
    let approvals = al["approvals"].as_array().unwrap();
    assert_eq!(approvals.len(), 4);
    for (a, ev) in approvals.iter().zip(MANAGED) {
        assert_eq!(a["event"], ev);
        assert_eq!(a["command"], cmd.as_str());
        let keys: Vec<&String> = a.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "approved_at",
                "command",
                "event",
                "script_mtime_at_approval"
            ]
        );
        assert!(a["approved_at"].as_str().unwrap().ends_with('Z'));
    }
    assert!(
        al_text.starts_with("{\n  \"approvals\": [\n    {\n      \"approved_at\": \""),
        "{al_text}"
    );
    let st = status(h);
    assert_eq!(st["state"], "installed", "{st:#}");
    assert_eq!(st["expected_command"], cmd.as_str());
    for e in st["events"].as_array().unwrap() {
        assert_eq!(e["state"], "installed");
        assert_eq!(e["allowlisted"], true);
        assert_eq!(e["command_exists"], true);
    }

    // Second install: nothing changes, no new backup, says so.
    let al_before = fs::read(h.join("shell-hooks-allowlist.json")).unwrap();
    let o = install(h, &["--yes"]);
    assert!(o.status.success());
    assert!(stderr(&o).contains("nothing changed"), "{}", stderr(&o));
    assert_eq!(fs::read_to_string(&cfg).unwrap(), after);
    assert_eq!(
        fs::read(h.join("shell-hooks-allowlist.json")).unwrap(),
        al_before
    );
    assert_eq!(backups(h).len(), 1);

    // Uninstall: back to the original bytes; allowlist without our entries.
    let o = op(h).args(["hook", "uninstall", "--yes"]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(fs::read_to_string(&cfg).unwrap(), USER_CONFIG);
    let al: Value =
        serde_json::from_str(&fs::read_to_string(h.join("shell-hooks-allowlist.json")).unwrap())
            .unwrap();
    assert_eq!(al["approvals"], json!([]));
    assert_eq!(status(h)["state"], "missing");
    let o = op(h).args(["hook", "uninstall", "--yes"]).output().unwrap();
    assert!(stderr(&o).contains("nothing changed"), "{}", stderr(&o));

    // Audited: one hook_installed, one hook_uninstalled, chain intact.
    let ev = events(h);
    let kinds: Vec<&str> = ev.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["hook_installed", "hook_uninstalled"]);
    assert_eq!(ev[0]["data"]["command"], cmd.as_str());
    assert!(ev[0]["actor"].as_str().unwrap().starts_with("cli:"));
    audit_verify_ok(h);
}

#[test]
fn install_merges_with_existing_hooks_and_replaces_stale_entries() {
    let home = TestHome::new();
    let h = home.path();
    let cfg = h.join("config.yaml");
    // PyYAML's layout (items at the key's indent), a user hook, and an entry
    // of an older install at another path.
    let original = "\
hooks:
  # my own tool logger
  post_tool_call:
  - command: /usr/local/bin/log-tool --verbose
    matcher: terminal
    timeout: 3
  pre_tool_call:
  - command: /old/place/hermes-operator --hermes-home /srv/hermes hook
    timeout: 5
hooks_auto_accept: false
display:
  tool_progress: all
";
    fs::write(&cfg, original).unwrap();
    fs::write(
        h.join("shell-hooks-allowlist.json"),
        "{\"approvals\": [{\"event\": \"post_tool_call\", \"command\": \"/usr/local/bin/log-tool --verbose\", \"approved_at\": \"2026-01-01T00:00:00Z\", \"script_mtime_at_approval\": null}, {\"event\": \"pre_tool_call\", \"command\": \"/old/place/hermes-operator --hermes-home /srv/hermes hook\"}]}",
    )
    .unwrap();
    assert_eq!(status(h)["state"], "partial");
    let o = install(h, &["--yes"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let after = fs::read_to_string(&cfg).unwrap();
    assert!(after.contains("  # my own tool logger\n  post_tool_call:\n  - command: /usr/local/bin/log-tool --verbose\n    matcher: terminal\n    timeout: 3\n"), "{after}");
    assert!(!after.contains("/old/place"), "{after}");
    assert_eq!(without_hooks(&after), without_hooks(original));
    let hooks = &yaml(&after)["hooks"];
    let post = hooks["post_tool_call"].as_sequence().unwrap();
    assert_eq!(post.len(), 2);
    assert_eq!(
        post[0]["command"].as_str(),
        Some("/usr/local/bin/log-tool --verbose")
    );
    let al: Value =
        serde_json::from_str(&fs::read_to_string(h.join("shell-hooks-allowlist.json")).unwrap())
            .unwrap();
    let cmds: Vec<&str> = al["approvals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["command"].as_str().unwrap())
        .collect();
    assert!(cmds.contains(&"/usr/local/bin/log-tool --verbose"));
    assert!(!cmds.iter().any(|c| c.contains("/old/place")));
    assert_eq!(status(h)["state"], "installed");

    // Uninstall keeps the user's hook and its approval; our entries go.
    let o = op(h).args(["hook", "uninstall", "--yes"]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let un = fs::read_to_string(&cfg).unwrap();
    assert!(!un.contains("hermes-operator"), "{un}");
    assert!(un.contains("/usr/local/bin/log-tool"), "{un}");
    assert!(yaml(&un)["hooks"].get("pre_tool_call").is_none(), "{un}");
    assert_eq!(without_hooks(&un), without_hooks(original));
}

/// Hermes 0.22's non-event sections under `hooks:` (`outbound` webhooks,
/// `output_spill`) and anyone's entries survive install and uninstall
/// byte-for-byte.
#[test]
fn install_keeps_hermes_0_22_hook_sections_byte_for_byte() {
    let home = TestHome::new();
    let h = home.path();
    let cfg = h.join("config.yaml");
    let outbound = "  outbound:\n  - url: https://example.invalid/hermes-events\n    events: [post_tool_call, on_session_end]\n    secret_env: WEBHOOK_SECRET   # signed\n";
    let spill = "  output_spill:\n    max_chars: 4000\n    directory: /srv/hermes/spill\n";
    let theirs = "  pre_tool_call:\n  - command: /usr/local/bin/guard --strict\n    timeout: 2\n";
    let original = format!("hooks:\n{outbound}{spill}{theirs}model:\n  default: x\n");
    fs::write(&cfg, &original).unwrap();
    let o = install(h, &["--yes"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let after = fs::read_to_string(&cfg).unwrap();
    for part in [outbound, spill, theirs] {
        assert!(after.contains(part), "lost {part:?}:\n{after}");
    }
    let y = yaml(&after);
    assert_eq!(
        y["hooks"]["output_spill"]["max_chars"].as_u64(),
        Some(4000),
        "{after}"
    );
    let pre = y["hooks"]["pre_tool_call"].as_sequence().unwrap();
    assert_eq!(pre.len(), 2, "theirs and ours: {after}");
    assert_eq!(
        pre[0]["command"].as_str(),
        Some("/usr/local/bin/guard --strict")
    );
    assert_eq!(status(h)["state"], "installed", "{after}");
    let o = op(h).args(["hook", "uninstall", "--yes"]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(fs::read_to_string(&cfg).unwrap(), original);
}

#[test]
fn install_refuses_layouts_it_cannot_edit_safely_and_creates_a_missing_config() {
    let home = TestHome::new();
    let h = home.path();
    let cfg = h.join("config.yaml");
    let flow = "hooks: {post_tool_call: [{command: /bin/true}]}\nmodel: {default: x}\n";
    fs::write(&cfg, flow).unwrap();
    let o = install(h, &["--yes"]);
    assert_eq!(o.status.code(), Some(8), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("cannot edit the `hooks:` block") && e.contains("by hand"),
        "{e}"
    );
    assert!(
        e.contains("pre_tool_call:") && e.contains(&expected_command(h)),
        "the snippet to add: {e}"
    );
    assert_eq!(fs::read_to_string(&cfg).unwrap(), flow);
    assert!(backups(h).is_empty());

    // Not YAML at all: refused too.
    fs::write(&cfg, "model: [unclosed\n").unwrap();
    let o = install(h, &["--yes"]);
    assert_eq!(o.status.code(), Some(8), "{}", stderr(&o));

    // No config.yaml (Hermes: all defaults): created holding only our block.
    fs::remove_file(&cfg).unwrap();
    let o = install(h, &["--yes"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = fs::read_to_string(&cfg).unwrap();
    assert!(text.starts_with("# hermes-operator:"), "{text}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        fs::metadata(&cfg).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let o = op(h).args(["hook", "uninstall", "--yes"]).output().unwrap();
    assert!(o.status.success());
    assert_eq!(fs::read_to_string(&cfg).unwrap(), "");
}

/// Hermes' own code, with HERMES_HOME = home: what it registers (no TTY, no
/// --accept-hooks: only allowlisted hooks register, nobody is prompted), and
/// what it makes of our answer when it spawns the hook itself.
const HERMES_PROBE: &str = r#"
import json, sys
from hermes_cli.config import load_config
from agent import shell_hooks
cfg = load_config()
registered = shell_hooks.register_from_config(cfg, accept_hooks=False)
out = {"registered": [[s.event, s.command, s.timeout, s.matcher] for s in registered]}
pre = [s for s in registered if s.event == "pre_tool_call"]
if pre:
    r = shell_hooks.run_once(pre[0], {"tool_name": "terminal", "args": {"command": "id"},
        "session_id": sys.argv[1], "tool_call_id": "call_probe", "task_id": "", "turn_id": "t"})
    out["op_parsed"] = r["parsed"]
    out["op_returncode"] = r["returncode"]
    r = shell_hooks.run_once(pre[0], {"tool_name": "terminal", "args": {"command": "id"},
        "session_id": sys.argv[2], "tool_call_id": "call_probe2"})
    out["native_parsed"] = r["parsed"]
    out["native_stdout"] = r["stdout"]
print(json.dumps(out))
"#;

fn real_hermes_registers_our_hooks_without_consent_and_obeys_the_block(gen: Gen) {
    let (home, ops, _, natives) = seeded_home(gen);
    let h = home.path();
    fs::write(h.join("config.yaml"), USER_CONFIG).unwrap();
    write_operator_config(h, "agent:\n  enabled_toolsets: [web, file]\n");
    let o = install(h, &["--yes"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let cmd = expected_command(h);

    let o = hermes(gen, h, &["hooks", "list"]);
    let list = stdout(&o);
    assert!(o.status.success(), "{list}{}", stderr(&o));
    assert_eq!(list.matches("✓ allowed").count(), 4, "{list}");
    assert!(!list.contains("not allowlisted"), "{list}");
    for ev in MANAGED {
        assert!(list.contains(&format!("[{ev}]")), "{list}");
    }
    let o = hermes(gen, h, &["hooks", "doctor"]);
    let doc = stdout(&o);
    assert!(doc.contains("All shell hooks look healthy"), "{doc}");
    assert!(
        doc.contains("script unchanged since approval"),
        "mtime recorded as Hermes does: {doc}"
    );

    let o = Command::new(gen.python())
        .args(["-c", HERMES_PROBE, &ops[0], &natives[0]])
        .env("HERMES_HOME", h)
        .env("HERMES_DISABLE_LAZY_INSTALLS", "1")
        .env_remove("HERMES_ACCEPT_HOOKS")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_str(stdout(&o).lines().last().unwrap()).unwrap();
    let reg = v["registered"].as_array().unwrap();
    assert_eq!(reg.len(), 4, "{v:#}");
    for r in reg {
        assert_eq!(r[1], cmd.as_str());
        assert_eq!(r[2], 10);
        assert_eq!(r[3], Value::Null);
    }
    assert_eq!(v["op_parsed"]["action"], "block", "{v:#}");
    assert!(
        v["op_parsed"]["message"]
            .as_str()
            .unwrap()
            .contains("`terminal`"),
        "{v:#}"
    );
    assert_eq!(v["op_returncode"], 0);
    assert_eq!(v["native_parsed"], Value::Null);
    assert_eq!(v["native_stdout"], "");
}

// ---------------------------------------------------------------------------
// end to end: a real gateway, our hooks installed
// ---------------------------------------------------------------------------

/// Starts a run and waits until it is no longer running; returns its final state.
fn run_to_end(gw: &Gateway, body: Value) -> Value {
    let (st, text) = gw.http("POST", "/v1/runs", Some(&body));
    assert_eq!(st, 202, "POST /v1/runs: {text}");
    let run: Value = serde_json::from_str(&text).unwrap();
    let id = run["run_id"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let (st, text) = gw.http("GET", &format!("/v1/runs/{id}"), None);
        assert_eq!(st, 200, "GET run: {text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        let status = v["status"].as_str().unwrap_or("").to_string();
        if !matches!(
            status.as_str(),
            "started" | "running" | "queued" | "pending" | ""
        ) {
            return v;
        }
        assert!(Instant::now() < deadline, "run {id} did not finish: {v}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn tool_messages(gw: &Gateway, session: &str) -> Vec<(String, String)> {
    let c = common::open_ro(&gw.state_db());
    let mut st = c
        .prepare("SELECT coalesce(tool_name, ''), coalesce(content, '') FROM messages WHERE session_id = ?1 AND role = 'tool' ORDER BY id")
        .unwrap();
    st.query_map([session], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// `agent.max_turns: 2` and a model that calls the terminal three times in
/// one turn: the third call is blocked before it runs, and its event says why.
fn max_turns_blocks_the_call_beyond_the_limit(gen: Gen) {
    let gw = Gateway::start(
        gen,
        GatewayOpts {
            extra_yaml: hooks_yaml(),
            ..Default::default()
        },
    );
    let h = gw.home.clone();
    write_operator_config(
        &h,
        "agent:\n  enabled_toolsets: [terminal, todo]\n  max_turns: 2\n",
    );
    let sid = "op_00000000abcd";
    gw.insert_operator_session(sid, "u_carol");
    let r = run_to_end(
        &gw,
        json!({"input": "[tool3] three calls", "session_id": sid}),
    );
    assert_eq!(r["status"], "completed", "{r}\n{}", gw.log_tail(40));
    let call = |i: u32| PathBuf::from(format!("{}.call{i}", gw.danger_target.display()));
    assert!(call(1).exists() && call(2).exists(), "the first two ran");
    assert!(!call(3).exists(), "the third was blocked before it ran");
    let calls: Vec<Value> = events(&h)
        .into_iter()
        .filter(|e| e["type"] == "tool_call" && e["actor"] == "hook")
        .collect();
    assert_eq!(calls.len(), 3, "{calls:#?}");
    assert_eq!(calls[0]["data"]["blocked"], false);
    assert_eq!(calls[1]["data"]["blocked"], false);
    assert_eq!(calls[2]["data"]["blocked"], true);
    let reason = calls[2]["data"]["reason"].as_str().unwrap();
    assert!(reason.contains("agent.max_turns = 2"), "{reason}");
    audit_verify_ok(&h);
}

/// `terminal.cwd`: on 0.22 every terminal call of an operator session starts
/// there (the hook answers `modify` with the call's `workdir`); 0.19 cannot be
/// told, so operator turns are refused and `doctor` says why.
/// `terminal.backend` must be the one Hermes runs commands with.
fn terminal_cwd_and_backend_are_enforced_or_refused(gen: Gen) {
    let gw = Gateway::start(
        gen,
        GatewayOpts {
            extra_yaml: hooks_yaml(),
            ..Default::default()
        },
    );
    let h = gw.home.clone();
    let work = tempfile::tempdir().unwrap();
    let cwd = fs::canonicalize(work.path()).unwrap();
    let base = format!(
        "hermes:\n  api_url: {}\nagent:\n  enabled_toolsets: [terminal, todo]\nupdate:\n  hermes_command: \"{}\"\n",
        gw.url,
        gen.venv().join("bin/hermes").display()
    );
    write_operator_config(
        &h,
        &format!("{base}terminal:\n  cwd: \"{}\"\n", cwd.display()),
    );
    let check = |name: &str| -> Value {
        let o = common::op(&h).args(["--json", "doctor"]).output().unwrap();
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        v["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap()
            .clone()
    };
    let t = check("terminal");
    if gen == Gen::H022 {
        assert_eq!(t["status"], "pass", "{t}");
        let sid = "op_0000000000cd";
        gw.insert_operator_session(sid, "u_carol");
        let r = run_to_end(&gw, json!({"input": "[pwd] where am I", "session_id": sid}));
        assert_eq!(r["status"], "completed", "{r}\n{}", gw.log_tail(40));
        let tools = tool_messages(&gw, sid);
        assert_eq!(tools.len(), 1, "{tools:?}");
        assert!(tools[0].1.contains(&cwd.display().to_string()), "{tools:?}");
        let call = events(&h)
            .into_iter()
            .find(|e| e["type"] == "tool_call" && e["actor"] == "hook")
            .unwrap();
        assert_eq!(call["data"]["workdir"], cwd.display().to_string());
    } else {
        assert_eq!(t["status"], "fail", "{t}");
        assert!(t["detail"].as_str().unwrap().contains("0.22.0"), "{t}");
        common::add_user(&h, "alice", "user");
        let o = common::op(&h)
            .args(["chat", "--as", "alice", "hello"])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(8), "{}", stderr(&o));
        assert!(stderr(&o).contains("terminal.cwd"), "{}", stderr(&o));
    }
    // A backend Hermes does not use is refused the same way.
    write_operator_config(&h, &format!("{base}terminal:\n  backend: docker\n"));
    let t = check("terminal");
    assert_eq!(t["status"], "fail", "{t}");
    assert!(t["detail"].as_str().unwrap().contains("with local"), "{t}");
}

fn gateway_blocks_a_forbidden_tool_in_operator_sessions_only(gen: Gen) {
    // The harness rewrites config.yaml on every (re)start, so the hooks go in
    // through `extra_yaml`, as `hook install` writes them but without
    // `--hermes-home` (the path is not known before start; the hook then
    // takes HERMES_HOME from the gateway's environment). That the installer's
    // exact entries are registered by this same Hermes code is proven by
    // `real_hermes_registers_our_hooks_without_consent_and_obeys_the_block`.
    let gw = Gateway::start(
        gen,
        GatewayOpts {
            extra_yaml: hooks_yaml(), // platform toolsets stay terminal, file, todo
            ..Default::default()
        },
    );
    let h = gw.home.clone();
    write_operator_config(&h, "agent:\n  enabled_toolsets: [terminal, todo]\n");

    let sid = "op_0123456789ab";
    gw.insert_operator_session(sid, "u_carol");
    let r = run_to_end(
        &gw,
        json!({"input": "please [file] read it", "session_id": sid}),
    );
    assert_eq!(r["status"], "completed", "{r}\n{}", gw.log_tail(40));
    let tools = tool_messages(&gw, sid);
    assert_eq!(tools.len(), 1, "{tools:?}");
    assert!(
        tools[0].1.contains("Blocked by hermes-operator policy"),
        "{tools:?}"
    );
    assert!(
        tools[0].1.contains("`read_file`") && tools[0].1.contains("terminal, todo"),
        "{tools:?}"
    );
    assert!(
        !tools[0].1.contains("fake-model-file-ok"),
        "the file was not read: {tools:?}"
    );

    // The same request in a native API session runs the tool.
    let r = run_to_end(&gw, json!({"input": "please [file] read it"}));
    assert_eq!(r["status"], "completed", "{r}");
    let c = common::open_ro(&gw.state_db());
    let native: String = c
        .query_row(
            "SELECT session_id FROM messages WHERE role = 'tool' AND session_id != ?1 ORDER BY id DESC LIMIT 1",
            [sid],
            |r| r.get(0),
        )
        .unwrap();
    assert!(!native.starts_with("op_"));
    let tools = tool_messages(&gw, &native);
    assert!(tools[0].1.contains("fake-model-file-ok"), "{tools:?}");

    // Live events for the operator session only: the blocked call and its result.
    let ev = events(&h);
    let live: Vec<&Value> = ev.iter().filter(|e| e["actor"] == "hook").collect();
    assert_eq!(live.len(), 2, "{ev:#?}");
    assert!(live
        .iter()
        .all(|e| e["session_id"] == sid && e["user_id"] == "u_carol"));
    assert_eq!(live[0]["type"], "tool_call");
    assert_eq!(live[0]["data"]["tool"], "read_file");
    assert_eq!(live[0]["data"]["blocked"], true);
    assert_eq!(live[1]["type"], "tool_result");
    assert_eq!(live[1]["data"]["status"], "blocked");
    audit_verify_ok(&h);
}

/// Issue 22: `hermes-operator chat` says when the hook refused a tool call
/// (with the hook's reason), not only `audit replay` afterwards: Hermes'
/// run stream does not tell, the model just reads the refusal.
fn chat_shows_the_tool_call_the_hook_blocked(gen: Gen) {
    let gw = Gateway::start(
        gen,
        GatewayOpts {
            extra_yaml: hooks_yaml(),
            ..Default::default()
        },
    );
    let h = gw.home.clone();
    write_operator_config(
        &h,
        &format!(
            "hermes:\n  api_url: {}\nagent:\n  enabled_toolsets: [terminal, todo]\n",
            gw.url
        ),
    );
    let mut add = common::op(&h);
    add.env_remove("API_SERVER_KEY");
    common::add_user_with(add, "dora", "user");
    let o = common::op(&h)
        .env_remove("API_SERVER_KEY")
        .args(["chat", "--as", "dora", "please [file] read it"])
        .output()
        .unwrap();
    let err = stderr(&o);
    assert!(o.status.success(), "{err}\n{}", gw.log_tail(40));
    let line = err
        .lines()
        .find(|l| l.contains("⛔ read_file blocked by hermes-operator:"))
        .unwrap_or_else(|| panic!("no blocked line: {err}"));
    assert!(line.contains("terminal, todo"), "the hook's reason: {line}");
    // A turn whose tools ran says nothing of the kind.
    let o = common::op(&h)
        .env_remove("API_SERVER_KEY")
        .args(["chat", "--as", "dora", "hello"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains("blocked"), "{}", stderr(&o));
}

/// `hook status` reports `compression.in_place` exactly as the real Hermes
/// agent reads it (its `load_config()` and `is_truthy_value`, the lines of
/// `agent_init.py`), and calls rotation a problem; `doctor` warns about it.
fn compression_rotation_is_reported_as_hermes_reads_it(gen: Gen) {
    let cases = [
        "",
        "compression: null\n",
        "compression:\n  threshold: 0.4\n",
        "compression:\n  in_place: true\n",
        "compression:\n  in_place: false\n",
        "compression:\n  in_place: null\n",
        "compression:\n  in_place: \"no\"\n",
        "compression:\n  in_place: \"On\"\n",
        "compression:\n  in_place: 0\n",
        "compression:\n  in_place: 2\n",
        "compression: 5\n",
    ];
    for yaml_text in cases {
        let home = TestHome::new();
        if !yaml_text.is_empty() {
            fs::write(home.path().join("config.yaml"), yaml_text).unwrap();
        }
        let py = Command::new(gen.python())
            .env("HERMES_HOME", home.path())
            .args([
                "-c",
                "from hermes_cli.config import load_config\n\
                 from utils import is_truthy_value\n\
                 c = load_config().get('compression', {})\n\
                 c = c if isinstance(c, dict) else {}\n\
                 print(is_truthy_value(c.get('in_place'), default=False))",
            ])
            .output()
            .unwrap();
        assert!(
            py.status.success(),
            "{}",
            String::from_utf8_lossy(&py.stderr)
        );
        let hermes_says = String::from_utf8_lossy(&py.stdout).trim() == "True";
        let st = status(home.path());
        assert_eq!(
            st["compression_in_place"].as_bool(),
            Some(hermes_says),
            "{yaml_text:?}"
        );
        let flagged = st["problems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p.as_str().unwrap().contains("compression.in_place"));
        assert_eq!(flagged, !hermes_says, "{yaml_text:?}: {st}");
    }
    // doctor: installed hooks, but rotation on → a warning naming it.
    let home = TestHome::new();
    fs::write(
        home.path().join("config.yaml"),
        "compression:\n  in_place: false\n",
    )
    .unwrap();
    assert!(install(home.path(), &["--yes"]).status.success());
    let o = op(home.path()).args(["--json", "doctor"]).output().unwrap();
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    let hook = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "hook")
        .unwrap()
        .clone();
    assert_eq!(hook["status"], "warn", "{hook}");
    assert!(
        hook["detail"]
            .as_str()
            .unwrap()
            .contains("compression.in_place"),
        "{hook}"
    );
}

hermes_tests!(
    a_hook_program_that_is_gone_blocks_tools_on_hermes_0_22,
    operator_sessions_get_the_policy_and_live_events,
    native_sessions_and_other_events_touch_nothing,
    hash_mode_keeps_content_out_of_the_log,
    unreadable_input_or_config_fails_open_except_operator_pre_tool_call,
    delegate_subagents_of_operator_sessions_inherit_the_policy,
    real_hermes_registers_our_hooks_without_consent_and_obeys_the_block,
    gateway_blocks_a_forbidden_tool_in_operator_sessions_only,
    max_turns_blocks_the_call_beyond_the_limit,
    chat_shows_the_tool_call_the_hook_blocked,
    terminal_cwd_and_backend_are_enforced_or_refused,
    compression_rotation_is_reported_as_hermes_reads_it,
    operator_files_are_out_of_reach_of_operator_sessions,
);

/// The third hostile review's two attacks through a real gateway: a `user`
/// asks the agent to make itself admin in users.db with `sqlite3`, and to
/// read the audit signing key. Every spelling of those paths is blocked by
/// the hook before the tool runs, and each attempt is in the log.
fn operator_files_are_out_of_reach_of_operator_sessions(gen: Gen) {
    let gw = Gateway::start(
        gen,
        GatewayOpts {
            extra_yaml: hooks_yaml(),
            ..Default::default()
        },
    );
    let h = gw.home.clone();
    write_operator_config(&h, "agent:\n  enabled_toolsets: [terminal, file, todo]\n");
    let uid = common::add_user(&h, "mallory", "user");
    let secret = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";
    let key = h.join("profiles/operator/audit_signing.key");
    fs::write(&key, format!("{secret}\n")).unwrap();
    let sid = "op_0000000000ee";
    gw.insert_operator_session(sid, &uid);
    let update = "\"UPDATE users SET role='admin' WHERE username='mallory'\"";
    let asks = [
        format!("[read] {}", key.display()),
        "[read] ~/../hermes/profiles/operator/audit_signing.key".to_string(),
        format!("[cmd] sqlite3 $HERMES_HOME/plugins/operator/users.db {update}"),
        format!("[cmd] cd \"$HERMES_HOME\"/plugins && sqlite3 ./operator//users.db {update}"),
        format!("[cmd] sqlite3 ${{HERMES_HOME}}/plug*/oper*/users.db {update}"),
        "[cmd] cat $HERMES_HOME/profiles/operator/*.key".to_string(),
        "[cmd] python3 -c \"print(open('$HERMES_HOME/profiles/operator/audit_signing.key').read())\""
            .to_string(),
    ];
    for ask in &asks {
        let r = run_to_end(&gw, json!({"input": ask, "session_id": sid}));
        assert_eq!(r["status"], "completed", "{ask}: {r}\n{}", gw.log_tail(40));
        assert!(
            !r.to_string().contains(secret),
            "{ask}: the key leaked: {r}"
        );
    }
    for (tool, content) in tool_messages(&gw, sid) {
        assert!(
            !content.contains(secret),
            "{tool} result holds the key: {content}"
        );
    }
    let show = common::op(&h)
        .args(["--json", "user", "show", "mallory"])
        .output()
        .unwrap();
    let me: Value = serde_json::from_slice(&show.stdout).unwrap();
    assert_eq!(me["role"], "user", "{me}");
    let calls: Vec<Value> = events(&h)
        .into_iter()
        .filter(|e| e["type"] == "tool_call" && e["actor"] == "hook")
        .collect();
    assert_eq!(calls.len(), asks.len(), "{calls:#?}");
    for c in &calls {
        assert_eq!(c["data"]["blocked"], true, "{c}");
        assert!(c["data"]["protected_path"].is_string(), "{c}");
        assert!(
            c["data"]["reason"]
                .as_str()
                .unwrap()
                .contains("operator's own files"),
            "{c}"
        );
    }
    audit_verify_ok(&h);
}

/// `hook install`'s entries (with `fail_closed: true` on `pre_tool_call`)
/// pointing at a copy of our binary; the copy is then removed and the
/// gateway restarted. Hermes 0.22 blocks every tool call (operator and
/// native sessions alike: the program that would tell them apart is gone);
/// Hermes 0.19 ignores `fail_closed` and runs the tool: the fail-open gap
/// `hook status` and `doctor` report on 0.19.
fn a_hook_program_that_is_gone_blocks_tools_on_hermes_0_22(gen: Gen) {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("hermes-operator");
    fs::copy(env!("CARGO_BIN_EXE_hermes-operator"), &copy).unwrap();
    let mut extra = String::from("hooks:\n");
    for ev in MANAGED {
        extra.push_str(&format!(
            "  {ev}:\n    - command: \"{} hook\"\n      timeout: 10\n",
            copy.display()
        ));
        if ev == "pre_tool_call" {
            extra.push_str("      fail_closed: true\n");
        }
    }
    let mut gw = Gateway::start(
        gen,
        GatewayOpts {
            extra_yaml: extra,
            ..Default::default()
        },
    );
    write_operator_config(
        &gw.home,
        &format!(
            "hermes:\n  api_url: {}\nagent:\n  enabled_toolsets: [terminal, file, todo]\n",
            gw.url
        ),
    );
    let mut add = common::op(&gw.home);
    add.env_remove("API_SERVER_KEY");
    common::add_user_with(add, "dora", "user");
    // While the program is there: a native session's tool runs.
    let r = run_to_end(&gw, json!({"input": "please [tool] now"}));
    assert_eq!(r["status"], "completed", "{r}\n{}", gw.log_tail(40));
    let ran = |gw: &Gateway, sid: &str| -> Vec<(String, String)> { tool_messages(gw, sid) };
    let c = common::open_ro(&gw.state_db());
    let native: String = c
        .query_row(
            "SELECT session_id FROM messages WHERE role = 'tool' ORDER BY id DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    drop(c);
    assert!(ran(&gw, &native)[0].1.contains("fake-model-tool-ok"));

    fs::remove_file(&copy).unwrap();
    gw.restart_gateway();
    // An operator turn, through `hermes-operator chat`: its event log says
    // what became of the tool call.
    let o = common::op(&gw.home)
        .env_remove("API_SERVER_KEY")
        .args(["--json", "chat", "--as", "dora", "please [tool] now"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}\n{}", gw.log_tail(40));
    let first: Value =
        serde_json::from_slice(o.stdout.split(|b| *b == b'\n').next().unwrap()).unwrap();
    let sid = first["session_id"].as_str().unwrap().to_string();
    let sid = sid.as_str();
    let results: Vec<Value> = events(&gw.home)
        .into_iter()
        .filter(|e| e["type"] == "tool_result" && e["session_id"] == sid)
        .collect();
    assert_eq!(results.len(), 1, "{results:?}");
    if gen == Gen::H022 {
        let why = results[0]["data"]["result"].as_str().unwrap();
        assert!(why.contains("failed closed"), "the event says why: {why}");
        assert_eq!(results[0]["data"]["status"], "error", "{}", results[0]);
    }
    let tools = ran(&gw, sid);
    assert_eq!(tools.len(), 1, "{tools:?}");
    if gen == Gen::H022 {
        assert!(
            !tools[0].1.contains("fake-model-tool-ok"),
            "the command did not run: {tools:?}"
        );
        assert!(tools[0].1.contains("failed closed"), "{tools:?}");
    } else {
        assert!(
            tools[0].1.contains("fake-model-tool-ok"),
            "0.19 fails open: {tools:?}"
        );
    }
}
