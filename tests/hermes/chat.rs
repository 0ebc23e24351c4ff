//! `hermes-operator chat` (docs/design.md §6-7) against the REAL Hermes Agent 0.19.0
//! gateway (API server) and our fake model (tests/common/gateway.rs,
//! tests/fixtures/fake_model.py).
//!
//! Each test starts one gateway and runs a group of related turns against it
//! (tests run in parallel threads; a gateway costs ~1 s CPU to start and ~2 s
//! for its first agent turn). The operator shares the gateway's HERMES_HOME:
//! it reads `API_SERVER_KEY` from `$HERMES_HOME/.env` and `hermes.api_url`
//! from `profiles/operator/config.yaml`, which [`setup`] writes.
//!
//! * `new_and_resumed_sessions_tool_events_and_refusals`: `op_<12hex>`
//!   rows owned by the user, history on resume, `[tool]` events matching
//!   state.db, NDJSON, refusals (roles, foreign and native sessions, model),
//!   `audit.store_content: hash`.
//! * `approvals_once_deny_prompt_and_expired`: `[danger]` approved, denied,
//!   denied without a terminal, and (library) answered after Hermes' timeout.
//! * `failures_leave_sessions_consistent`: model 500, wrong key, Hermes down.
//! * `budget_under_concurrency_and_real_cost`: 1 of 4 concurrent turns
//!   admitted (one at a time under a budget), ledger, priced turns,
//!   refusal once spent, cost alert.
//! * `unreadable_run_event_ends_the_turn_and_stops_the_run`: an event
//!   stream (from a proxy) with an event that is not JSON.
use crate::common;
use crate::common::{code, show, stderr, stdout};

use common::gateway::{Gateway, GatewayOpts, SeedState};
use common::{add_user_with, op, open_ro, operator_session_ids, Gen};
use hermes_operator::app::App;
use hermes_operator::hermes::api::HermesClient;
use hermes_operator::home::Home;
use hermes_operator::ops::chat::{
    run_turn, ApprovalChoice, ApprovalRequest, Approver, BoxFuture, Channel, Decision, TurnEvent,
    TurnRequest,
};
use hermes_operator::store::events::Actor;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------

fn cmd(gw: &Gateway, args: &[&str]) -> Command {
    let mut c = op(&gw.home);
    c.args(args).env_remove("API_SERVER_KEY");
    c
}

fn run(gw: &Gateway, args: &[&str]) -> Output {
    cmd(gw, args).output().expect("run hermes-operator")
}

fn json_out(gw: &Gateway, args: &[&str]) -> Value {
    let mut a = vec!["--json"];
    a.extend_from_slice(args);
    let o = run(gw, &a);
    assert!(o.status.success(), "{args:?}: {}", show(&o));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}\n{}", show(&o)))
}

/// `profiles/operator/config.yaml` pointing at the gateway, plus `extra` YAML.
fn write_config(gw: &Gateway, extra: &str) {
    let dir = gw.home.join("profiles/operator");
    fs::create_dir_all(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
    fs::write(
        dir.join("config.yaml"),
        format!("hermes:\n  api_url: {}\n{extra}", gw.url),
    )
    .unwrap();
}

/// Config + users (name, role); returns name -> user id (`user show --json`).
fn setup(gw: &Gateway, extra: &str, users: &[(&str, &str)]) -> HashMap<String, String> {
    write_config(gw, extra);
    let mut ids = HashMap::new();
    for (name, role) in users {
        let id = add_user_with(cmd(gw, &[]), name, role);
        ids.insert(name.to_string(), id);
    }
    ids
}

/// `chat ARGS` (human output).
fn chat(gw: &Gateway, args: &[&str]) -> Output {
    let mut a = vec!["chat"];
    a.extend_from_slice(args);
    run(gw, &a)
}

/// `--json chat ARGS`: the output and its NDJSON TurnEvents.
fn chat_json(gw: &Gateway, args: &[&str]) -> (Output, Vec<Value>) {
    let mut a = vec!["--json", "chat"];
    a.extend_from_slice(args);
    let o = run(gw, &a);
    let evs = ndjson(&o);
    (o, evs)
}

fn ndjson(o: &Output) -> Vec<Value> {
    stdout(o)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {l:?}\n{}", show(o)))
        })
        .collect()
}

/// The session id a `--json chat` announced (first event).
fn session_of(evs: &[Value], o: &Output) -> String {
    let first = evs
        .first()
        .unwrap_or_else(|| panic!("no events:\n{}", show(o)));
    assert_eq!(first["type"], "session", "{first}");
    first["session_id"].as_str().unwrap().to_string()
}

fn assert_op_id(id: &str) {
    let hex = id
        .strip_prefix("op_")
        .unwrap_or_else(|| panic!("{id}: no op_ prefix"));
    assert_eq!(hex.len(), 12, "{id}");
    assert!(
        hex.chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)),
        "{id}"
    );
}

/// `audit replay ID --json` events (asserts integrity ok).
fn replay(gw: &Gateway, sid: &str) -> Vec<Value> {
    let v = json_out(gw, &["audit", "replay", sid]);
    assert_eq!(v["integrity"], "ok", "{v}");
    v["events"].as_array().unwrap().clone()
}

fn of_type<'a>(evs: &'a [Value], t: &str) -> Vec<&'a Value> {
    evs.iter().filter(|e| e["type"] == t).collect()
}

fn verify_ok(gw: &Gateway) {
    let o = run(gw, &["--json", "audit", "verify"]);
    assert!(o.status.success(), "audit verify: {}", show(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["ok"], true, "{v}");
}

fn events_db(gw: &Gateway) -> PathBuf {
    gw.home.join("plugins/operator/events.db")
}

fn event_count(gw: &Gateway) -> i64 {
    let p = events_db(gw);
    if !p.exists() {
        return 0;
    }
    open_ro(&p)
        .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
        .unwrap()
}

#[derive(Debug)]
struct Row {
    source: String,
    user_id: Option<String>,
    message_count: i64,
    tool_call_count: i64,
    estimated_cost_usd: Option<f64>,
    ended_at: Option<f64>,
}

fn session_row(gw: &Gateway, id: &str) -> Option<Row> {
    let c = open_ro(&gw.state_db());
    c.query_row(
        "SELECT source, user_id, message_count, tool_call_count, estimated_cost_usd, ended_at \
         FROM sessions WHERE id = ?1",
        [id],
        |r| {
            Ok(Row {
                source: r.get(0)?,
                user_id: r.get(1)?,
                message_count: r.get(2)?,
                tool_call_count: r.get(3)?,
                estimated_cost_usd: r.get(4)?,
                ended_at: r.get(5)?,
            })
        },
    )
    .ok()
}

#[derive(Debug)]
struct Msg {
    id: i64,
    role: String,
    content: Option<String>,
    tool_call_id: Option<String>,
    tool_calls: Value,
}

fn messages(gw: &Gateway, id: &str) -> Vec<Msg> {
    let c = open_ro(&gw.state_db());
    let mut st = c
        .prepare(
            "SELECT id, role, content, tool_call_id, tool_calls FROM messages \
             WHERE session_id = ?1 AND active = 1 ORDER BY id",
        )
        .unwrap();
    let rows = st
        .query_map([id], |r| {
            let tc: Option<String> = r.get(4)?;
            Ok(Msg {
                id: r.get(0)?,
                role: r.get(1)?,
                content: r.get(2)?,
                tool_call_id: r.get(3)?,
                tool_calls: tc
                    .and_then(|t| serde_json::from_str(&t).ok())
                    .unwrap_or(Value::Null),
            })
        })
        .unwrap();
    rows.map(|r| r.unwrap()).collect()
}

/// The operator row is intact and its counters match its messages.
fn assert_consistent(gw: &Gateway, sid: &str, user_id: &str) -> Row {
    let row = session_row(gw, sid).unwrap_or_else(|| panic!("{sid} missing from state.db"));
    assert_eq!(row.source, "operator", "{sid}: {row:?}");
    assert_eq!(row.user_id.as_deref(), Some(user_id), "{sid}: {row:?}");
    let ms = messages(gw, sid);
    assert_eq!(
        row.message_count,
        ms.len() as i64,
        "{sid}: message_count vs rows {ms:?}"
    );
    let calls: i64 = ms
        .iter()
        .map(|m| m.tool_calls.as_array().map_or(0, |a| a.len() as i64))
        .sum();
    assert_eq!(row.tool_call_count, calls, "{sid}: tool_call_count");
    // Replay order: user first, no assistant tool call without its result.
    for m in &ms {
        for c in m.tool_calls.as_array().into_iter().flatten() {
            let id = c["id"].as_str().unwrap();
            assert!(
                ms.iter().any(|t| t.role == "tool"
                    && t.tool_call_id.as_deref() == Some(id)
                    && t.id > m.id),
                "{sid}: tool call {id} has no result: {ms:?}"
            );
        }
    }
    row
}

fn wait_all(children: Vec<std::process::Child>) -> Vec<Output> {
    children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect()
}

// ---------------------------------------------------------------------------
// sessions, history, tool events, NDJSON, refusals
// ---------------------------------------------------------------------------

fn new_and_resumed_sessions_tool_events_and_refusals(gen: Gen) {
    let gw = Gateway::start(
        gen,
        GatewayOpts {
            seed_state: Some(SeedState {
                native: 3,
                operator: 0,
                users: vec![],
                seed: 11,
            }),
            ..Default::default()
        },
    );
    let ids = setup(
        &gw,
        "",
        &[
            ("alice", "user"),
            ("bob", "user"),
            ("vera", "viewer"),
            ("otto", "auditor"),
            ("dora", "user"),
        ],
    );
    let alice = &ids["alice"];
    assert!(run(&gw, &["user", "disable", "dora"]).status.success());

    // --- a new session: NDJSON of TurnEvents ending with `done` ----------
    let (o, evs) = chat_json(&gw, &["--as", "alice", "hello"]);
    assert!(o.status.success(), "{}", show(&o));
    let s1 = session_of(&evs, &o);
    assert_op_id(&s1);
    assert_eq!(evs[0]["new"], true);
    assert!(evs.iter().any(|e| e["type"] == "delta"), "{evs:?}");
    let done = evs.last().unwrap();
    assert_eq!(done["type"], "done", "{evs:?}");
    assert_eq!(done["session_id"], s1.as_str());
    assert!(
        done["run_id"].as_str().unwrap().starts_with("run_"),
        "{done}"
    );
    assert_eq!(
        done["output"],
        "Hello from the fake model. (fixed reply, no tools)"
    );
    // fake_model: 100 prompt tokens per message (system + user), 9 words.
    assert_eq!(done["input_tokens"], 200, "{done}");
    assert_eq!(done["output_tokens"], 9, "{done}");
    assert!(done["cost_usd"].is_number() && done["session_cost_usd"].is_number());
    let row = assert_consistent(&gw, &s1, alice);
    assert_eq!(row.message_count, 2);
    assert!(row.ended_at.is_none());

    // --- resumed: the model sees the earlier turns -------------------------
    let o = chat(&gw, &["--as", "alice", "--session", &s1, "again"]);
    assert!(o.status.success(), "{}", show(&o));
    assert!(
        stdout(&o).contains("Hello from the fake model."),
        "{}",
        show(&o)
    );
    let reqs = gw.model_requests();
    let last = reqs
        .iter()
        .rev()
        .find(|r| r["tools"].is_array())
        .expect("an agent request");
    let msgs: Vec<(String, String)> = last["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["role"].as_str().unwrap_or("").to_string(),
                m["content"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let tail: Vec<(&str, &str)> = msgs
        .iter()
        .skip_while(|(r, _)| r == "system")
        .map(|(r, c)| (r.as_str(), c.as_str()))
        .collect();
    assert_eq!(
        tail,
        vec![
            ("user", "hello"),
            (
                "assistant",
                "Hello from the fake model. (fixed reply, no tools)"
            ),
            ("user", "again"),
        ],
        "model saw {msgs:?}"
    );
    // The supervision prompt rides along in the system message.
    assert!(
        msgs[0].1.contains("Operator user: alice (role: user)"),
        "{}",
        msgs[0].1
    );
    let row = assert_consistent(&gw, &s1, alice);
    assert_eq!(row.message_count, 4, "{row:?}");

    // --- a tool call, recorded as events matching state.db ---------------
    let (o, evs) = chat_json(&gw, &["--as", "alice", "[tool] please run it"]);
    assert!(o.status.success(), "{}", show(&o));
    let s2 = session_of(&evs, &o);
    assert_ne!(s1, s2);
    let kinds: Vec<&str> = evs.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"tool_started"), "{kinds:?}");
    assert!(kinds.contains(&"tool_completed"), "{kinds:?}");
    let done = evs.last().unwrap();
    assert_eq!(done["type"], "done");
    assert_eq!(done["tool_calls"], 1, "{done}");
    assert!(
        done["output"]
            .as_str()
            .unwrap()
            .contains("fake-model-tool-ok"),
        "{done}"
    );
    assert_consistent(&gw, &s2, alice);
    let ms = messages(&gw, &s2);
    let roles: Vec<&str> = ms.iter().map(|m| m.role.as_str()).collect();
    assert_eq!(roles, ["user", "assistant", "tool", "assistant"], "{ms:?}");
    let call = &ms[1].tool_calls[0];
    let call_id = call["id"].as_str().unwrap();
    assert_eq!(ms[2].tool_call_id.as_deref(), Some(call_id));

    let rep = replay(&gw, &s2);
    let types: Vec<&str> = rep.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "session_start",
            "user_message",
            "tool_call",
            "tool_result",
            "assistant_message",
            "llm_call"
        ],
        "{rep:#?}"
    );
    for e in &rep {
        assert_eq!(e["session_id"], s2.as_str());
        assert_eq!(e["user_id"], alice.as_str());
    }
    let d = |i: usize| &rep[i]["data"];
    assert_eq!(d(1)["content"], "[tool] please run it");
    assert_eq!(d(2)["tool"], "terminal");
    assert_eq!(d(2)["arguments"]["command"], "echo fake-model-tool-ok");
    assert_eq!(d(2)["tool_call_id"], call_id);
    assert_eq!(d(2)["message_id"], ms[1].id);
    assert_eq!(d(3)["tool_call_id"], call_id);
    assert_eq!(d(3)["message_id"], ms[2].id);
    assert_eq!(d(3)["status"], "ok");
    assert!(
        d(3)["result"]
            .as_str()
            .unwrap()
            .contains("fake-model-tool-ok"),
        "{}",
        d(3)
    );
    assert_eq!(d(4)["message_id"], ms[3].id);
    assert_eq!(d(4)["content"].as_str(), ms[3].content.as_deref());
    // Two model calls: 100*2 + 100*4 prompt tokens, 10 + words of the answer.
    assert_eq!(d(5)["input_tokens"], 600, "{}", d(5));
    assert_eq!(d(5)["api_calls"], 2, "{}", d(5));
    assert_eq!(d(5)["run_id"], done["run_id"]);
    verify_ok(&gw);

    // --- refusals: nothing is created --------------------------------------
    let sessions_before = operator_session_ids(&gw.state_db());
    let events_before = event_count(&gw);
    let native: String = open_ro(&gw.state_db())
        .query_row(
            "SELECT id FROM sessions WHERE source <> 'operator' ORDER BY id LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    // An op_-looking id Hermes wrote itself (source api_server) is not ours either.
    let fake_op = "op_0000deadbeef";
    {
        let c = rusqlite::Connection::open(gw.state_db()).unwrap();
        c.busy_timeout(Duration::from_secs(10)).unwrap();
        c.execute(
            "INSERT INTO sessions (id, source, started_at, message_count, tool_call_count) \
             VALUES (?1, 'api_server', 0, 0, 0)",
            [fake_op],
        )
        .unwrap();
    }
    let cases: Vec<(Vec<&str>, i32, &str)> = vec![
        (
            vec!["--as", "alice", "--session", &native, "hi"],
            4,
            "not an operator session",
        ),
        (
            vec!["--as", "alice", "--session", fake_op, "hi"],
            4,
            "not an operator session",
        ),
        (
            vec!["--as", "bob", "--session", &s1, "hi"],
            4,
            "belongs to another user",
        ),
        (vec!["--as", "vera", "hi"], 4, "may not chat"),
        (vec!["--as", "otto", "hi"], 4, "may not chat"),
        (vec!["--as", "dora", "hi"], 4, "disabled"),
        (
            vec!["--as", "vera", "--session", &s1, "hi"],
            4,
            "may not chat",
        ),
        (vec!["--as", "nobody", "hi"], 5, "nobody"),
        (
            vec!["--as", "alice", "--session", "op_000000000000", "hi"],
            5,
            "no session",
        ),
        (
            vec!["--as", "alice", "--model", "nope", "hi"],
            2,
            "Hermes offers: hermes-agent",
        ),
        (
            vec!["--as", "alice", "--session", &s1, "--model", "nope", "hi"],
            2,
            "Hermes offers: hermes-agent",
        ),
    ];
    let n_requests = gw.model_requests().len();
    for (args, want, says) in &cases {
        let o = chat(&gw, args);
        assert_eq!(code(&o), *want, "{args:?}: {}", show(&o));
        assert!(
            stderr(&o).contains(says),
            "{args:?}: stderr should say {says:?}: {}",
            show(&o)
        );
        assert!(stdout(&o).is_empty(), "{args:?}: {}", show(&o));
    }
    let o = chat(&gw, &["--as", "alice", "--model", "nope", "hi"]);
    assert!(
        stderr(&o).contains("unknown model \"nope\"; Hermes offers: hermes-agent"),
        "{}",
        show(&o)
    );
    assert_eq!(operator_session_ids(&gw.state_db()), sessions_before);
    assert_eq!(event_count(&gw), events_before, "refusals recorded events");
    assert_eq!(
        gw.model_requests().len(),
        n_requests,
        "a refusal reached the model"
    );
    assert_eq!(assert_consistent(&gw, &s1, alice).message_count, 4);
    let r = session_row(&gw, fake_op).unwrap();
    assert_eq!((r.source.as_str(), r.message_count), ("api_server", 0));

    // --- audit.store_content: hash keeps bodies out of the log ----------------
    write_config(&gw, "audit:\n  store_content: hash\n");
    let msg = "[tool] confidential-words-4711";
    let (o, evs) = chat_json(&gw, &["--as", "alice", msg]);
    assert!(o.status.success(), "{}", show(&o));
    let s3 = session_of(&evs, &o);
    let ms = messages(&gw, &s3);
    let rep = replay(&gw, &s3);
    let data = |t: &str| of_type(&rep, t)[0]["data"].clone();
    let sha = |t: &str| hex::encode(Sha256::digest(t.as_bytes()));
    assert_eq!(data("user_message")["content_sha256"], sha(msg));
    assert_eq!(data("user_message")["content_length"], msg.len());
    assert!(data("user_message").get("content").is_none());
    let args = ms[1].tool_calls[0]["function"]["arguments"]
        .as_str()
        .unwrap();
    assert_eq!(data("tool_call")["arguments_sha256"], sha(args));
    assert!(data("tool_call").get("arguments").is_none());
    assert_eq!(
        data("tool_result")["result_sha256"],
        sha(ms[2].content.as_deref().unwrap())
    );
    assert_eq!(
        data("assistant_message")["content_sha256"],
        sha(ms[3].content.as_deref().unwrap())
    );
    let leaked: i64 = open_ro(&events_db(&gw))
        .query_row(
            "SELECT count(*) FROM events WHERE session_id = ?1 \
             AND (data LIKE '%confidential-words%' OR data LIKE '%fake-model-tool-ok%')",
            [&s3],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(leaked, 0, "message bodies in the log: {rep:#?}");
    verify_ok(&gw);
}

// ---------------------------------------------------------------------------
// approvals
// ---------------------------------------------------------------------------

/// Answers "once", but only after `delay` (longer than Hermes' timeout).
struct LateApprover {
    delay: Duration,
}

impl Approver for LateApprover {
    fn decide(&self, _req: ApprovalRequest) -> BoxFuture<Decision> {
        let d = self.delay;
        Box::pin(async move {
            tokio::time::sleep(d).await;
            Decision {
                choice: ApprovalChoice::Once,
                decided_by: "late-approver".into(),
                stop_run: false,
            }
        })
    }
}

fn approval_events(gw: &Gateway, sid: &str) -> (Value, Value) {
    let rep = replay(gw, sid);
    let req = of_type(&rep, "approval_request");
    let dec = of_type(&rep, "approval");
    assert_eq!((req.len(), dec.len()), (1, 1), "{rep:#?}");
    let ri = rep.iter().position(|e| e["type"] == "approval_request");
    let di = rep.iter().position(|e| e["type"] == "approval");
    assert!(ri < di, "request after decision: {rep:#?}");
    (req[0]["data"].clone(), dec[0]["data"].clone())
}

fn approvals_once_deny_prompt_and_expired(gen: Gen) {
    let gw = Gateway::start(
        gen,
        GatewayOpts {
            approval_timeout_secs: 3,
            ..Default::default()
        },
    );
    let ids = setup(&gw, "", &[("alice", "user")]);
    let alice = ids["alice"].clone();
    let target = gw.danger_target.to_string_lossy().into_owned();
    let reset = || {
        fs::set_permissions(&gw.danger_target, fs::Permissions::from_mode(0o600)).unwrap();
    };
    assert_eq!(gw.danger_target_mode(), 0o600);

    // --- once: the command really runs ------------------------------------
    let (o, evs) = chat_json(
        &gw,
        &[
            "--as",
            "alice",
            "--approve-policy",
            "once",
            "[danger] open it up",
        ],
    );
    assert!(o.status.success(), "{}", show(&o));
    let s = session_of(&evs, &o);
    assert_eq!(gw.danger_target_mode(), 0o777, "{}", show(&o));
    let ar = evs
        .iter()
        .find(|e| e["type"] == "approval_request")
        .expect("approval_request TurnEvent");
    assert_eq!(ar["command"], format!("chmod 777 {target}"));
    assert_eq!(ar["session_id"], s.as_str());
    let ad = evs
        .iter()
        .find(|e| e["type"] == "approval_decision")
        .expect("approval_decision TurnEvent");
    assert_eq!(ad["choice"], "once");
    assert_eq!(ad["applied"], true);
    let (req, dec) = approval_events(&gw, &s);
    assert_eq!(req["command"], format!("chmod 777 {target}"));
    assert!(req["run_id"].as_str().unwrap().starts_with("run_"));
    assert_eq!(dec["choice"], "once");
    assert_eq!(dec["applied"], true);
    assert_eq!(dec["outcome"], "answered");
    assert!(
        dec["decided_by"].as_str().unwrap().starts_with("alice"),
        "{dec}"
    );
    assert_consistent(&gw, &s, &alice);

    // --- deny ----------------------------------------------------------------
    reset();
    let o = chat(
        &gw,
        &[
            "--as",
            "alice",
            "--approve-policy",
            "deny",
            "[danger] open it up",
        ],
    );
    assert!(o.status.success(), "{}", show(&o));
    assert!(
        stderr(&o).contains("approval answered: deny"),
        "{}",
        show(&o)
    );
    assert_eq!(gw.danger_target_mode(), 0o600);
    let s = operator_session_ids(&gw.state_db())
        .into_iter()
        .find(|id| stderr(&o).contains(id.as_str()))
        .expect("session named on stderr");
    let (_, dec) = approval_events(&gw, &s);
    assert_eq!(dec["choice"], "deny");
    assert_eq!(dec["applied"], true);
    let rep = replay(&gw, &s);
    let tr = of_type(&rep, "tool_result");
    assert_eq!(tr.len(), 1, "{rep:#?}");
    assert!(
        tr[0]["data"]["result"].as_str().unwrap().contains("denied"),
        "{}",
        tr[0]
    );
    assert_consistent(&gw, &s, &alice);

    // --- the default policy without a terminal denies -----------------------
    let (o, evs) = chat_json(&gw, &["--as", "alice", "[danger] open it up"]);
    assert!(o.status.success(), "{}", show(&o));
    let s = session_of(&evs, &o);
    assert_eq!(gw.danger_target_mode(), 0o600);
    let (_, dec) = approval_events(&gw, &s);
    assert_eq!(dec["choice"], "deny");
    assert_eq!(dec["applied"], true);
    assert!(dec["decided_by"].as_str().unwrap().starts_with("alice"));

    // --- an answer after Hermes' timeout (library) --------------------------
    let app = App::load(Home::at(&gw.home), Actor::new("test:lib"), |_| {}).unwrap();
    let client = HermesClient::from_config(&app.home, &app.cfg.config).unwrap();
    assert_eq!(client.base_url(), gw.url);
    let req = TurnRequest {
        username: "alice".into(),
        session_id: None,
        message: "[danger] answered too late".into(),
        model: None,
        channel: Channel::Cli,
        toolsets: None,
        stream: true,
        key_id: None,
        token_version: None,
    };
    let approver = LateApprover {
        delay: Duration::from_secs(5),
    };
    let mut seen: Vec<TurnEvent> = Vec::new();
    let t0 = Instant::now();
    let mut on_event = |e| seen.push(e);
    let out = crate::common::block_on_turn(|own| {
        run_turn(own, &app, &client, &req, &approver, &mut on_event)
    })
    .unwrap_or_else(|e| panic!("run_turn: {e:?}"));
    assert!(t0.elapsed() >= Duration::from_secs(5));
    assert_eq!(
        gw.danger_target_mode(),
        0o600,
        "a late 'once' ran the command"
    );
    let decision = seen
        .iter()
        .find_map(|e| match e {
            TurnEvent::ApprovalDecision {
                choice, applied, ..
            } => Some((*choice, *applied)),
            _ => None,
        })
        .expect("an approval decision");
    assert_eq!(decision, (ApprovalChoice::Once, false));
    assert!(matches!(seen.last(), Some(TurnEvent::Done(_))));
    assert!(out.output.contains("timed out"), "{}", out.output);
    let (_, dec) = approval_events(&gw, &out.session_id);
    assert_eq!(dec["applied"], false);
    assert_eq!(dec["decided_by"], "late-approver");
    assert!(
        dec["outcome"].as_str().unwrap().starts_with("expired"),
        "{dec}"
    );
    let rep = replay(&gw, &out.session_id);
    assert!(rep.iter().all(|e| e["actor"] == "test:lib"), "{rep:#?}");
    assert_consistent(&gw, &out.session_id, &alice);
    verify_ok(&gw);
}

// ---------------------------------------------------------------------------
// failures
// ---------------------------------------------------------------------------

fn failures_leave_sessions_consistent(gen: Gen) {
    let mut gw = Gateway::start(gen, GatewayOpts::default());
    let ids = setup(&gw, "", &[("alice", "user")]);
    let alice = ids["alice"].clone();

    // --- model 500 on a first turn: run.failed -> exit 7 ---------------------
    let (o, evs) = chat_json(&gw, &["--as", "alice", "[fail] first"]);
    assert_eq!(code(&o), 7, "{}", show(&o));
    assert!(stderr(&o).contains("fake model failure"), "{}", show(&o));
    let sf = session_of(&evs, &o);
    let last = evs.last().unwrap();
    assert_eq!(last["type"], "error", "{evs:?}");
    assert_eq!(last["code"], "unavailable");
    // Hermes wrote the user message, so the session stays, consistent.
    // 0.22 also stores the failure as an assistant message.
    let fail_msgs = if gen == Gen::H019 { 1 } else { 2 };
    let row = assert_consistent(&gw, &sf, &alice);
    let msgs = messages(&gw, &sf);
    assert_eq!(row.message_count, fail_msgs, "{row:?} {msgs:?}");
    assert_eq!(msgs[0].role, "user", "{msgs:?}");
    if gen == Gen::H022 {
        assert_eq!(msgs[1].role, "assistant", "{msgs:?}");
    }
    let rep = replay(&gw, &sf);
    let types: Vec<&str> = rep.iter().map(|e| e["type"].as_str().unwrap()).collect();
    // The event log mirrors state.db: 0.22's note to the user is recorded.
    let want: &[&str] = if gen == Gen::H019 {
        &["session_start", "user_message", "error"]
    } else {
        &[
            "session_start",
            "user_message",
            "assistant_message",
            "error",
        ]
    };
    assert_eq!(types, want, "{rep:#?}");
    let err = rep.last().unwrap();
    assert_eq!(err["data"]["stage"], "run");
    assert!(err["data"]["run_id"].as_str().unwrap().starts_with("run_"));

    // --- a good session, then a failing turn in it ----------------------------
    let (o, evs) = chat_json(&gw, &["--as", "alice", "hello"]);
    assert!(o.status.success(), "{}", show(&o));
    let s = session_of(&evs, &o);
    let (o, _) = chat_json(&gw, &["--as", "alice", "--session", &s, "[fail] second"]);
    assert_eq!(code(&o), 7, "{}", show(&o));
    let row = assert_consistent(&gw, &s, &alice);
    assert_eq!(row.message_count, 2 + fail_msgs, "{row:?}");
    let rep = replay(&gw, &s);
    assert_eq!(rep.last().unwrap()["type"], "error", "{rep:#?}");
    // (The unanswered "[fail]" stays in the session's history: Hermes merges
    // it with the next user message, so this session keeps failing with the
    // fake model. Not continued here.)

    // --- wrong key: exit 8, nothing created -----------------------------------
    let env_path = gw.home.join(".env");
    let good_env = fs::read_to_string(&env_path).unwrap();
    fs::write(&env_path, "API_SERVER_KEY=not-the-key-0123456789abcdef\n").unwrap();
    let sessions_before = operator_session_ids(&gw.state_db());
    let events_before = event_count(&gw);
    let o = chat(&gw, &["--as", "alice", "hello"]);
    assert_eq!(code(&o), 8, "{}", show(&o));
    assert!(stderr(&o).contains("rejected the API key"), "{}", show(&o));
    assert!(stderr(&o).contains("API_SERVER_KEY"), "{}", show(&o));
    assert_eq!(operator_session_ids(&gw.state_db()), sessions_before);
    assert_eq!(event_count(&gw), events_before);
    // A resumed session: exit 8 with an error event, the session untouched.
    let o = chat(&gw, &["--as", "alice", "--session", &s, "hello"]);
    assert_eq!(code(&o), 8, "{}", show(&o));
    assert_eq!(replay(&gw, &s).last().unwrap()["type"], "error");
    assert_eq!(
        assert_consistent(&gw, &s, &alice).message_count,
        2 + fail_msgs
    );
    fs::write(&env_path, good_env).unwrap();

    // --- Hermes down: exit 7, the URL and how to start it ---------------------
    gw.stop_gateway();
    let sessions_before = operator_session_ids(&gw.state_db());
    let events_before = event_count(&gw);
    let o = chat(&gw, &["--as", "alice", "hello"]);
    assert_eq!(code(&o), 7, "{}", show(&o));
    let err = stderr(&o);
    assert!(err.contains(&gw.url), "{err}");
    assert!(err.contains("hermes gateway run"), "{err}");
    assert!(err.contains("API_SERVER_ENABLED"), "{err}");
    assert_eq!(operator_session_ids(&gw.state_db()), sessions_before);
    assert_eq!(event_count(&gw), events_before, "nothing recorded");
    // --json: the error is JSON on stderr.
    let (o, evs) = chat_json(&gw, &["--as", "alice", "hello"]);
    assert_eq!(code(&o), 7);
    assert!(evs.is_empty(), "{evs:?}");
    let e: Value = serde_json::from_str(stderr(&o).lines().last().unwrap()).unwrap();
    assert_eq!(e["error"]["code"], "unavailable", "{e}");
    // A resumed session: an error event names the failure.
    let (o, evs) = chat_json(&gw, &["--as", "alice", "--session", &s, "anyone?"]);
    assert_eq!(code(&o), 7, "{}", show(&o));
    assert_eq!(evs.last().unwrap()["type"], "error", "{evs:?}");
    let rep = replay(&gw, &s);
    let last = rep.last().unwrap();
    assert_eq!(last["type"], "error", "{rep:#?}");
    assert!(
        last["data"]["message"].as_str().unwrap().contains(&gw.url),
        "{last}"
    );
    assert_eq!(
        assert_consistent(&gw, &s, &alice).message_count,
        2 + fail_msgs
    );
    assert_eq!(operator_session_ids(&gw.state_db()), sessions_before);
    verify_ok(&gw);
}

// ---------------------------------------------------------------------------
// budgets
// ---------------------------------------------------------------------------

fn spend_rows(gw: &Gateway) -> Vec<(String, f64, Option<f64>, Option<String>)> {
    let c = open_ro(&gw.home.join("plugins/operator/users.db"));
    let mut st = c
        .prepare("SELECT session_id, reserved_usd, actual_usd, settled_at FROM spend ORDER BY created_at")
        .unwrap();
    let rows = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap();
    rows.map(|r| r.unwrap()).collect()
}

fn budget_yaml(daily: f64, reserve: f64, alert: f64) -> String {
    format!(
        "budget:\n  user_daily_usd: {daily}\n  turn_reserve_usd: {reserve}\n  session_alert_usd: {alert}\n"
    )
}

fn budget_under_concurrency_and_real_cost(gen: Gen) {
    let gw = Gateway::start(
        gen,
        GatewayOpts {
            model_env: vec![
                ("FAKE_MODEL_SLOW_SECONDS".into(), "3".into()),
                // $100 per million tokens: a plain first turn (200 + 9 tokens) ~ $0.02.
                ("FAKE_MODEL_PRICE_PROMPT".into(), "0.0001".into()),
                ("FAKE_MODEL_PRICE_COMPLETION".into(), "0.0001".into()),
            ],
            ..Default::default()
        },
    );
    let ids = setup(&gw, &budget_yaml(0.10, 0.05, 5.0), &[("alice", "user")]);
    let alice = ids["alice"].clone();

    // --- 4 concurrent turns: room for 2 reservations, but under a daily
    // budget an account's turns run one at a time (issue 19: a turn's cost
    // is known only when it ends, so parallel turns could spend past it) ---
    let children: Vec<_> = (0..4)
        .map(|i| {
            cmd(&gw, &["chat", "--as", "alice", &format!("[slow] turn {i}")])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outs = wait_all(children);
    let ok: Vec<&Output> = outs.iter().filter(|o| o.status.success()).collect();
    // Busy (6): another turn of the account holds the budget.
    let refused: Vec<&Output> = outs.iter().filter(|o| code(o) == 6).collect();
    let all = outs.iter().map(show).collect::<Vec<_>>().join("\n");
    assert_eq!((ok.len(), refused.len()), (1, 3), "{all}");
    for o in &refused {
        assert!(stderr(o).contains("daily budget of $0.10"), "{}", show(o));
        assert!(stderr(o).contains("one at a time"), "{}", show(o));
    }
    // Refused turns leave no session behind.
    let sessions = operator_session_ids(&gw.state_db());
    assert_eq!(sessions.len(), 1, "{sessions:?}\n{all}");
    let spend = spend_rows(&gw);
    assert_eq!(spend.len(), 1, "{spend:?}");
    let mut spent = 0.0;
    for (sid, reserved, actual, settled) in &spend {
        assert!(sessions.contains(sid), "{spend:?}");
        assert_eq!(*reserved, 0.05);
        assert!(settled.is_some(), "unsettled: {spend:?}");
        // Hermes priced the turn from the endpoint's /v1/models pricing.
        let row = assert_consistent(&gw, sid, &alice);
        let est = row.estimated_cost_usd.unwrap_or(0.0);
        assert!(est > 0.0, "Hermes wrote no cost: {row:?}");
        let actual = actual.unwrap();
        assert!((actual - est).abs() < 1e-9, "{actual} vs {est}");
        spent += actual;
    }
    // 200 prompt + 9 completion tokens at $0.0001.
    assert!((spent - 0.0209).abs() < 1e-6, "{spent} {spend:?}");
    // The refusals are on record with the reason (their empty sessions removed).
    let c = open_ro(&events_db(&gw));
    let budget_errors: i64 = c
        .query_row(
            "SELECT count(*) FROM events WHERE type = 'error' AND data LIKE '%\"stage\":\"budget\"%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(budget_errors, 3);
    drop(c);

    // --- real money: a turn is refused once settled spend reaches the limit ---
    // A new session (~$0.02), then its second turn (400 + 9 tokens, ~$0.04)
    // crosses both the session alert and the daily limit; the next is refused.
    let o = chat(&gw, &["--as", "alice", "count me"]);
    assert!(o.status.success(), "{}", show(&o));
    let s = operator_session_ids(&gw.state_db())
        .into_iter()
        .find(|id| !sessions.contains(id))
        .unwrap();
    let first = session_row(&gw, &s).unwrap().estimated_cost_usd.unwrap();
    assert!(!stderr(&o).contains("alert"), "{}", show(&o));
    let spent_now: f64 = spend_rows(&gw).iter().map(|r| r.2.unwrap()).sum();
    // Limit just above what is spent, no reservation: the next turn may run.
    write_config(&gw, &budget_yaml(spent_now + 0.001, 0.0, first + 0.001));
    let o = chat(&gw, &["--as", "alice", "--session", &s, "and again"]);
    assert!(o.status.success(), "{}", show(&o));
    assert!(
        stderr(&o).contains("past the $") && stderr(&o).contains("alert threshold"),
        "{}",
        show(&o)
    );
    let row = assert_consistent(&gw, &s, &alice);
    let rep = replay(&gw, &s);
    let alerts = of_type(&rep, "cost_alert");
    assert_eq!(alerts.len(), 1, "{rep:#?}");
    let a = &alerts[0]["data"];
    assert!(
        (a["session_cost_usd"].as_f64().unwrap() - row.estimated_cost_usd.unwrap()).abs() < 1e-9
    );
    assert!((a["threshold_usd"].as_f64().unwrap() - (first + 0.001)).abs() < 1e-9);
    let ledger = spend_rows(&gw);
    assert!(ledger.iter().all(|r| r.3.is_some()), "{ledger:?}");
    let settled: f64 = ledger.iter().map(|r| r.2.unwrap()).sum();
    assert!(settled >= spent_now + 0.001, "{settled} {ledger:?}");

    let sessions_before = operator_session_ids(&gw.state_db());
    let n = ledger.len();
    for args in [
        vec!["--as", "alice", "--session", s.as_str(), "over budget"],
        vec!["--as", "alice", "over budget"],
    ] {
        let o = chat(&gw, &args);
        assert_eq!(code(&o), 4, "{}", show(&o));
        assert!(stderr(&o).contains("daily budget"), "{}", show(&o));
        assert!(stderr(&o).contains("is spent"), "{}", show(&o));
    }
    // --json: the announced (then removed) session is followed by an error.
    let (o, evs) = chat_json(&gw, &["--as", "alice", "over budget"]);
    assert_eq!(code(&o), 4, "{}", show(&o));
    let kinds: Vec<&str> = evs.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["session", "error"], "{evs:?}");
    assert_eq!(evs[1]["code"], "forbidden");
    assert!(evs[1]["message"].as_str().unwrap().contains("daily budget"));
    let gone = evs[0]["session_id"].as_str().unwrap();
    assert!(session_row(&gw, gone).is_none(), "{gone} left behind");
    assert_eq!(operator_session_ids(&gw.state_db()), sessions_before);
    assert_eq!(spend_rows(&gw).len(), n, "a refused turn reserved");
    let rep = replay(&gw, &s);
    let last = rep.last().unwrap();
    assert_eq!(last["type"], "error");
    assert_eq!(last["data"]["stage"], "budget");
    assert_eq!(assert_consistent(&gw, &s, &alice).message_count, 4);
    verify_ok(&gw);
}

// ---------------------------------------------------------------------------
// API server runs: request ids, idempotent start, interrupted runs
// ---------------------------------------------------------------------------

/// Answers `once` for the first command and `deny` for the one ending in
/// `.second`; keeps every request it was asked.
struct ByCommand {
    seen: std::sync::Arc<std::sync::Mutex<Vec<ApprovalRequest>>>,
}

impl Approver for ByCommand {
    fn decide(&self, req: ApprovalRequest) -> BoxFuture<Decision> {
        let choice = if req.command.as_deref().unwrap_or("").ends_with(".second") {
            ApprovalChoice::Deny
        } else {
            ApprovalChoice::Once
        };
        self.seen.lock().unwrap().push(req);
        Box::pin(async move {
            Decision {
                choice,
                decided_by: "by-command".into(),
                stop_run: false,
            }
        })
    }
}

/// `[danger2]`: two dangerous commands in one run, each answered on its
/// own (on 0.22 by the `request_id` Hermes gave it): the first runs, the
/// second is denied.
fn two_approvals_in_one_run_each_answered(gen: Gen) {
    let gw = Gateway::start(gen, GatewayOpts::default());
    let ids = setup(&gw, "", &[("alice", "user")]);
    let second = PathBuf::from(format!("{}.second", gw.danger_target.display()));
    fs::write(&second, b"second target\n").unwrap();
    fs::set_permissions(&second, fs::Permissions::from_mode(0o600)).unwrap();

    let app = App::load(Home::at(&gw.home), Actor::new("test:lib"), |_| {}).unwrap();
    let client = HermesClient::from_config(&app.home, &app.cfg.config).unwrap();
    let approver = ByCommand {
        seen: Default::default(),
    };
    let req = TurnRequest {
        username: "alice".into(),
        session_id: None,
        message: "[danger2] open both".into(),
        model: None,
        channel: Channel::Cli,
        toolsets: None,
        stream: true,
        key_id: None,
        token_version: None,
    };
    let mut seen: Vec<TurnEvent> = Vec::new();
    let mut on_event = |e| seen.push(e);
    let out = crate::common::block_on_turn(|own| {
        run_turn(own, &app, &client, &req, &approver, &mut on_event)
    })
    .unwrap_or_else(|e| panic!("run_turn: {e:?}"));
    assert_eq!(gw.danger_target_mode(), 0o777, "the approved command ran");
    let mode2 = fs::metadata(&second).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode2, 0o600, "the denied command did not run");

    let asked = approver.seen.lock().unwrap().clone();
    assert_eq!(asked.len(), 2, "{asked:?}");
    let rids: Vec<Option<String>> = asked.iter().map(|a| a.request_id.clone()).collect();
    match gen {
        Gen::H022 => {
            let (a, b) = (rids[0].as_deref().unwrap(), rids[1].as_deref().unwrap());
            assert!(a.len() >= 16 && b.len() >= 16 && a != b, "{rids:?}");
        }
        Gen::H019 => assert_eq!(rids, vec![None, None], "0.19 has no request ids"),
    }
    let rep = replay(&gw, &out.session_id);
    let reqs = of_type(&rep, "approval_request");
    let decs = of_type(&rep, "approval");
    assert_eq!((reqs.len(), decs.len()), (2, 2), "{rep:#?}");
    for (i, (r, d)) in reqs.iter().zip(&decs).enumerate() {
        let rid = rids[i].as_deref().map(Value::from).unwrap_or(Value::Null);
        assert_eq!(r["data"]["request_id"], rid, "{r}");
        assert_eq!(d["data"]["request_id"], rid, "{d}");
        assert_eq!(d["data"]["applied"], true, "{d}");
        assert_eq!(r["data"]["command"], d["data"]["command"]);
    }
    assert_eq!(decs[0]["data"]["choice"], "once");
    assert_eq!(decs[1]["data"]["choice"], "deny");
    assert!(decs[1]["data"]["command"]
        .as_str()
        .unwrap()
        .ends_with(".second"));
    let results = of_type(&rep, "tool_result");
    assert_eq!(results.len(), 2, "{rep:#?}");
    assert!(
        results[1]["data"]["result"]
            .as_str()
            .unwrap()
            .contains("denied"),
        "{}",
        results[1]
    );
    assert!(matches!(seen.last(), Some(TurnEvent::Done(_))));
    assert_consistent(&gw, &out.session_id, &ids["alice"]);
    verify_ok(&gw);
}

/// What [`LossyProxy`] breaks.
#[derive(Clone, Copy, PartialEq)]
enum Fault {
    /// Hermes' answer to the first `POST /v1/runs` is lost.
    LoseFirstRunReply,
    /// `GET /v1/runs/{id}/events` is answered by the proxy, not Hermes:
    /// a keepalive, then an event whose data is not JSON, then the
    /// connection stays open.
    GarbleEvents,
}

/// A loopback proxy in front of the gateway that loses Hermes' answer to
/// the first `POST /v1/runs` (the request reaches Hermes, the reply never
/// reaches the operator), or answers the event stream itself ([`Fault`]).
/// Every request is sent upstream with `Connection: close`, so each
/// connection carries exactly one request.
struct LossyProxy {
    url: String,
    /// `Idempotency-Key` of every `POST /v1/runs`, in order.
    run_posts: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    /// The request line of every request, in order.
    requests: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl LossyProxy {
    fn start(upstream: u16) -> LossyProxy {
        LossyProxy::start_with(upstream, Fault::LoseFirstRunReply)
    }

    fn start_with(upstream: u16, fault: Fault) -> LossyProxy {
        use std::io::{BufRead, BufReader, Read, Write};
        use std::net::{TcpListener, TcpStream};
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://127.0.0.1:{}", l.local_addr().unwrap().port());
        let run_posts: std::sync::Arc<std::sync::Mutex<Vec<String>>> = Default::default();
        let requests: std::sync::Arc<std::sync::Mutex<Vec<String>>> = Default::default();
        let posts = run_posts.clone();
        let reqs = requests.clone();
        std::thread::spawn(move || {
            for client in l.incoming() {
                let Ok(mut client) = client else { continue };
                let posts = posts.clone();
                let reqs = reqs.clone();
                std::thread::spawn(move || {
                    let mut rd = BufReader::new(client.try_clone().unwrap());
                    let mut head = Vec::new();
                    let mut len = 0usize;
                    let mut key = String::new();
                    let mut first = String::new();
                    loop {
                        let mut line = String::new();
                        if rd.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if first.is_empty() {
                            first = line.clone();
                        }
                        let lower = line.to_ascii_lowercase();
                        if line == "\r\n" {
                            break;
                        }
                        if let Some(v) = lower.strip_prefix("content-length:") {
                            len = v.trim().parse().unwrap();
                        }
                        if lower.starts_with("idempotency-key:") {
                            key = line["idempotency-key:".len()..].trim().to_string();
                        }
                        if !lower.starts_with("connection:") {
                            head.extend_from_slice(line.as_bytes());
                        }
                    }
                    head.extend_from_slice(b"Connection: close\r\n\r\n");
                    let mut body = vec![0u8; len];
                    rd.read_exact(&mut body).unwrap();
                    reqs.lock().unwrap().push(first.trim_end().to_string());
                    if fault == Fault::GarbleEvents
                        && first.starts_with("GET /v1/runs/")
                        && first.contains("/events ")
                    {
                        let _ = client.write_all(
                            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\
                              Connection: close\r\n\r\n: open\r\n\r\ndata: not json\r\n\r\n",
                        );
                        std::thread::sleep(Duration::from_secs(20));
                        return;
                    }
                    let mut up = TcpStream::connect(("127.0.0.1", upstream)).unwrap();
                    up.write_all(&head).unwrap();
                    up.write_all(&body).unwrap();
                    let is_run_post = first.starts_with("POST /v1/runs ");
                    let lose = is_run_post && fault == Fault::LoseFirstRunReply && {
                        let mut p = posts.lock().unwrap();
                        p.push(key);
                        p.len() == 1
                    };
                    if lose {
                        // Hermes gets the request and answers; the answer is dropped.
                        let mut sink = Vec::new();
                        let _ = up.read_to_end(&mut sink);
                        let _ = client.shutdown(std::net::Shutdown::Both);
                        return;
                    }
                    let _ = std::io::copy(&mut up, &mut client);
                });
            }
        });
        LossyProxy {
            url,
            run_posts,
            requests,
        }
    }
}

/// An event the operator cannot read is not skipped (a lost
/// `approval.request` would leave the run waiting on the turn): the turn
/// ends with an `unavailable` error naming it, and the run is stopped at
/// Hermes rather than left going with nobody following it.
fn unreadable_run_event_ends_the_turn_and_stops_the_run(gen: Gen) {
    let gw = Gateway::start(gen, GatewayOpts::default());
    setup(&gw, "", &[("alice", "user")]);
    let proxy = LossyProxy::start_with(gw.port, Fault::GarbleEvents);
    let cfg = gw.home.join("profiles/operator/config.yaml");
    let text = fs::read_to_string(&cfg).unwrap();
    fs::write(&cfg, text.replace(&gw.url, &proxy.url)).unwrap();

    let (o, _) = chat_json(&gw, &["--as", "alice", "hello"]);
    assert_eq!(code(&o), 7, "{}", show(&o));
    assert!(
        stderr(&o).contains("cannot read") && stderr(&o).contains("not JSON"),
        "{}",
        show(&o)
    );
    let reqs = proxy.requests.lock().unwrap().clone();
    let run_id = reqs
        .iter()
        .find_map(|r| {
            r.strip_prefix("GET /v1/runs/")?
                .split_once("/events ")
                .map(|x| x.0.to_string())
        })
        .unwrap_or_else(|| panic!("no event stream opened: {reqs:?}"));
    assert!(
        reqs.iter()
            .any(|r| r.starts_with(&format!("POST /v1/runs/{run_id}/stop "))),
        "the run was not stopped: {reqs:?}"
    );
    verify_ok(&gw);
}

/// The answer to `POST /v1/runs` is lost. 0.22 honours `Idempotency-Key`:
/// the operator sends the same request again and Hermes runs the agent
/// once. 0.19 does not: the operator does not send it again, and says why.
fn lost_run_reply_is_retried_only_where_idempotent(gen: Gen) {
    let gw = Gateway::start(gen, GatewayOpts::default());
    let ids = setup(&gw, "", &[("alice", "user")]);
    let proxy = LossyProxy::start(gw.port);
    // Same config, pointed at the proxy.
    let cfg = gw.home.join("profiles/operator/config.yaml");
    let text = fs::read_to_string(&cfg).unwrap();
    fs::write(&cfg, text.replace(&gw.url, &proxy.url)).unwrap();
    let marker = "[idem] one run only";
    let agent_turns = || {
        gw.model_requests()
            .iter()
            .filter(|r| r["tools"].is_array() && r.to_string().contains("[idem] one run only"))
            .count()
    };

    let (o, evs) = chat_json(&gw, &["--as", "alice", marker]);
    let posts = proxy.run_posts.lock().unwrap().clone();
    match gen {
        Gen::H022 => {
            assert!(o.status.success(), "{}", show(&o));
            assert_eq!(posts.len(), 2, "{posts:?}");
            assert_eq!(posts[0], posts[1], "the same key both times");
            assert!(posts[0].starts_with("hop-op_"), "{posts:?}");
            let s = session_of(&evs, &o);
            assert_eq!(agent_turns(), 1, "Hermes ran the agent once");
            let rep = replay(&gw, &s);
            let retried = of_type(&rep, "run_retried");
            assert_eq!(retried.len(), 1, "{rep:#?}");
            assert_eq!(retried[0]["data"]["attempts"], 2);
            assert_eq!(retried[0]["data"]["replayed"], true);
            assert_eq!(retried[0]["data"]["idempotency_key"], posts[0].as_str());
            let ms = messages(&gw, &s);
            assert_eq!(ms.iter().filter(|m| m.role == "user").count(), 1, "{ms:?}");
            assert_consistent(&gw, &s, &ids["alice"]);
        }
        Gen::H019 => {
            assert_eq!(code(&o), 7, "{}", show(&o));
            assert_eq!(posts.len(), 1, "not sent again: {posts:?}");
            assert!(
                stderr(&o).contains("does not honour Idempotency-Key"),
                "{}",
                show(&o)
            );
            // The run Hermes started anyway finishes on its own.
            let deadline = Instant::now() + Duration::from_secs(30);
            while agent_turns() == 0 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(200));
            }
            assert_eq!(agent_turns(), 1);
        }
    }
    verify_ok(&gw);
}

/// The gateway is killed and started again while a turn runs. 0.22 keeps
/// the keyed run's status and calls it `interrupted`: the turn ends with a
/// `run_interrupted` event and an `error` event. 0.19 forgets the run: the
/// turn ends with the stream's error. Either way the session stays
/// consistent.
fn gateway_restart_mid_turn_leaves_a_consistent_session(gen: Gen) {
    use std::io::{BufRead, BufReader};
    let mut gw = Gateway::start(
        gen,
        GatewayOpts {
            model_env: vec![("FAKE_MODEL_SLOW_SECONDS".into(), "20".into())],
            ..Default::default()
        },
    );
    let ids = setup(&gw, "", &[("alice", "user")]);
    let (o, evs) = chat_json(&gw, &["--as", "alice", "first turn"]);
    assert!(o.status.success(), "{}", show(&o));
    let s = session_of(&evs, &o);
    let before = assert_consistent(&gw, &s, &ids["alice"]);

    let mut child = cmd(
        &gw,
        &[
            "--json",
            "chat",
            "--as",
            "alice",
            "--session",
            &s,
            "[slow] wait for it",
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut out = Vec::new();
    for l in lines.by_ref() {
        let l = l.unwrap();
        let started = l.contains("\"run_started\"");
        out.push(l);
        if started {
            break;
        }
    }
    assert!(
        out.iter().any(|l| l.contains("run_started")),
        "no run_started: {out:?}"
    );
    let t = Instant::now();
    gw.restart_gateway();
    let restart_s = t.elapsed().as_secs_f64();
    out.extend(lines.map(Result::unwrap));
    let o = child.wait_with_output().unwrap();
    let err = stderr(&o);
    assert_eq!(code(&o), 7, "restart took {restart_s:.1}s\n{out:?}\n{err}");
    let last: Value = serde_json::from_str(out.last().unwrap()).unwrap();
    assert_eq!(last["type"], "error", "{out:?}");
    let rep = replay(&gw, &s);
    let tail = rep.last().unwrap();
    assert_eq!(tail["type"], "error", "{rep:#?}");
    assert_eq!(tail["data"]["stage"], "run");
    let interrupted = of_type(&rep, "run_interrupted");
    match gen {
        Gen::H022 => {
            assert!(err.contains("interrupted mid-turn"), "{err}");
            assert_eq!(interrupted.len(), 1, "{rep:#?}");
            assert_eq!(interrupted[0]["data"]["status"], "interrupted");
            assert!(interrupted[0]["data"]["run_id"]
                .as_str()
                .unwrap()
                .starts_with("run_"));
        }
        Gen::H019 => assert!(interrupted.is_empty(), "{rep:#?}"),
    }
    let after = assert_consistent(&gw, &s, &ids["alice"]);
    assert!(after.message_count >= before.message_count);
    verify_ok(&gw);
}

/// A `serve` replica of a fleet (`store.url`) is killed (SIGKILL) while a
/// turn runs. The session stays consistent, events.db verifies, and the
/// next `serve` ships the host's log to PostgreSQL whole: every event once,
/// the same head, the chain verifying there.
fn serve_killed_mid_turn_ships_whole_and_leaves_the_session_consistent(gen: Gen) {
    use crate::common::pg::PgCluster;
    use crate::common::serve::{block_on_login, configure, Server};
    let gw = Gateway::start(
        gen,
        GatewayOpts {
            model_env: vec![("FAKE_MODEL_SLOW_SECONDS".into(), "20".into())],
            ..Default::default()
        },
    );
    let pg = PgCluster::start();
    let url = pg.database("killed");
    let (bare, pw) = pg.apart(&url);
    configure(
        &gw.home,
        &format!(
            "hermes:\n  api_url: {}\nstore:\n  url: {bare}\n  host: web-k\n",
            gw.url
        ),
    );
    crate::common::pg::store_password(&gw.home, &pw);
    let alice = add_user_with(cmd(&gw, &[]), "alice", "user");
    let (o, evs) = chat_json(&gw, &["--as", "alice", "first turn"]);
    assert!(o.status.success(), "{}", show(&o));
    let s = session_of(&evs, &o);
    let before = assert_consistent(&gw, &s, &alice);

    let mut server = Server::start(&gw.home);
    let token = block_on_login(&server, "alice");
    let (url_chat, sid) = (server.url("/api/chat"), s.clone());
    let turn = std::thread::spawn(move || {
        common::block_on(async move {
            // Cut off by the kill: whatever comes back is an error.
            let _ = crate::common::serve::client()
                .post(url_chat)
                .bearer_auth(token)
                .json(&serde_json::json!({"message": "[slow] wait for it", "session_id": sid}))
                .send()
                .await;
        })
    });
    // The turn is under way once its user_message is in events.db.
    let deadline = Instant::now() + Duration::from_secs(30);
    let started = || {
        hermes_operator::store::events::EventStore::open_readonly(&events_db(&gw))
            .and_then(|st| st.for_session(&s))
            .map(|evs| {
                evs.iter()
                    .any(|e| e.kind == "user_message" && e.data.contains("[slow] wait for it"))
            })
            .unwrap_or(false)
    };
    while !started() {
        assert!(Instant::now() < deadline, "the turn did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    turn.join().unwrap();

    let _next = Server::start(&gw.home);
    assert_shipped_whole(&gw, &url, "web-k");
    verify_ok(&gw);
    let rep = replay(&gw, &s);
    assert!(
        rep.iter()
            .any(|e| e["type"] == "user_message" && e["data"]["content"] == "[slow] wait for it"),
        "{rep:#?}"
    );
    let after = assert_consistent(&gw, &s, &alice);
    assert!(after.message_count >= before.message_count);
}

/// Waits until the fleet's database at `url` has `host`'s chain up to
/// events.db's head, then checks that chain: every event there once.
fn assert_shipped_whole(gw: &Gateway, url: &str, host: &str) {
    let db = hermes_operator::store::pg::Pg::connect(url).unwrap();
    let local = hermes_operator::store::events::EventStore::open_readonly(&events_db(gw)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let heads = hermes_operator::store::pg::PgEventLog::heads(&db).unwrap();
        if heads
            .iter()
            .any(|h| h.host == host && (h.seq, h.hash) == local.head().unwrap())
        {
            break;
        }
        assert!(Instant::now() < deadline, "not shipped: {heads:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let reports = hermes_operator::ops::audit::fleet::verify_fleet(
        &std::sync::Arc::new(db),
        Some(host),
        &[],
        &[],
    )
    .unwrap();
    assert!(reports[0].report.ok, "{:?}", reports[0].report);
    assert_eq!(reports[0].report.events as i64, local.count().unwrap());
}

/// PostgreSQL (the accounts, budgets and the fleet's log) restarted while
/// a turn runs through `serve`: the turn ends — done, or with a clear
/// error — its budget reservation is settled once the database is back,
/// `serve` serves the next turn without a restart, the log ships whole and
/// the session stays consistent.
fn postgres_restarted_mid_turn_leaves_the_turn_consistent(gen: Gen) {
    use crate::common::pg::PgCluster;
    use crate::common::serve::{block_on_login, configure, Server};
    let gw = Gateway::start(
        gen,
        GatewayOpts {
            model_env: vec![
                ("FAKE_MODEL_SLOW_SECONDS".into(), "3".into()),
                ("FAKE_MODEL_PRICE_PROMPT".into(), "0.0001".into()),
                ("FAKE_MODEL_PRICE_COMPLETION".into(), "0.0001".into()),
            ],
            ..Default::default()
        },
    );
    let pg = PgCluster::start();
    let url = pg.database("restarted");
    let (bare, pw) = pg.apart(&url);
    configure(
        &gw.home,
        &format!(
            "hermes:\n  api_url: {}\nbudget:\n  user_daily_usd: 5\n  turn_reserve_usd: 0.01\nstore:\n  url: {bare}\n  host: web-r\n",
            gw.url
        ),
    );
    crate::common::pg::store_password(&gw.home, &pw);
    let alice = add_user_with(cmd(&gw, &[]), "alice", "user");
    let server = Server::start(&gw.home);
    let token = block_on_login(&server, "alice");
    let url_chat = server.url("/api/chat");
    let (u2, t2) = (url_chat.clone(), token.clone());
    let turn = std::thread::spawn(move || {
        common::block_on(crate::common::serve::send(
            crate::common::serve::client()
                .post(u2)
                .bearer_auth(t2)
                .json(&serde_json::json!({"message": "[slow] through a restart"})),
        ))
    });
    // The turn is under way once its user_message is in events.db.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut sid = None;
    while sid.is_none() {
        assert!(Instant::now() < deadline, "the turn did not start");
        std::thread::sleep(Duration::from_millis(100));
        sid = hermes_operator::store::events::EventStore::open_readonly(&events_db(&gw))
            .ok()
            .and_then(|st| st.last(50).ok())
            .and_then(|evs| {
                evs.into_iter()
                    .find(|e| e.kind == "user_message" && e.data.contains("through a restart"))
                    .and_then(|e| e.session_id)
            });
    }
    let sid = sid.unwrap();
    pg.restart();
    let r = turn.join().unwrap();
    // Done, or a clear error in the error shape (never a hang or a crash).
    match r.status {
        200 => assert_eq!(r.json()["outcome"]["session_id"], sid.as_str()),
        s if s >= 500 => {
            let msg = r.json()["error"]["message"]
                .as_str()
                .unwrap_or("")
                .to_string();
            assert!(!msg.is_empty(), "{s} {}", r.body);
        }
        s => panic!("{s} {}", r.body),
    }
    // The reservation is settled once PostgreSQL is back.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let open: i64 = pg
            .superuser("restarted")
            .query_one("SELECT count(*) FROM spend WHERE settled_at IS NULL", &[])
            .unwrap()
            .get(0);
        if open == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "a reservation stayed open");
        std::thread::sleep(Duration::from_millis(200));
    }
    // serve recovered by itself: the next turn in the same session works.
    let next = common::block_on(crate::common::serve::send(
        crate::common::serve::client()
            .post(url_chat)
            .bearer_auth(&token)
            .json(&serde_json::json!({"message": "after the restart", "session_id": sid})),
    ));
    assert_eq!(next.status, 200, "{}\n{}", next.body, server.log());
    // The log ships whole, once.
    assert_shipped_whole(&gw, &url, "web-r");
    verify_ok(&gw);
    assert_consistent(&gw, &sid, &alice);
}

/// `terminal.approval_mode: manual` (the operator's default) against a
/// Hermes whose own approvals are off: no operator turn runs (nothing
/// reaches the model, no session is created), the error says how to fix
/// it, and `doctor` fails the same way.
fn unsupervised_hermes_is_refused(gen: Gen) {
    let gw = Gateway::start(
        gen,
        GatewayOpts {
            approvals_mode: "off".into(),
            ..Default::default()
        },
    );
    setup(&gw, "", &[("alice", "user")]);
    let before = operator_session_ids(&gw.state_db());
    let o = chat(&gw, &["--as", "alice", "[danger] chmod it"]);
    assert_eq!(code(&o), 8, "{}", show(&o));
    let err = stderr(&o);
    assert!(err.contains("approvals.mode is off"), "{err}");
    assert!(err.contains("mode: manual"), "the fix: {err}");
    assert_eq!(operator_session_ids(&gw.state_db()), before, "no session");
    assert!(gw.model_requests().is_empty(), "nothing reached the model");
    let d = json_out_any(&gw, &["doctor"]);
    let ap = d["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "approvals")
        .unwrap()
        .clone();
    assert_eq!(ap["status"], "fail", "{ap}");
    // Relaxing the operator's own rule to match is an explicit choice.
    write_config(&gw, "terminal:\n  approval_mode: 'off'\n");
    let o = chat(&gw, &["--as", "alice", "hello"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
}

/// Issue 22: Ctrl-C at the terminal's approval prompt denies the command,
/// stops Hermes' run and ends the turn with exit 130 — and the turn is in
/// the log whole: the approval (`stop_run`), the model calls Hermes made
/// (so `audit daily` counts them) and the `error` that says how it ended.
fn ctrl_c_at_the_approval_prompt_denies_and_stops_the_run(gen: Gen) {
    let gw = Gateway::start(gen, GatewayOpts::default());
    let ids = setup(&gw, "", &[("alice", "user")]);
    let mut pty = common::pty::Pty::operator(&gw.home, "chat --as alice '[danger] open it up'");
    pty.wait_for("Allow?", 1, Duration::from_secs(60));
    pty.send("\x03");
    let (status, out) = pty.finish(Duration::from_secs(60));
    assert_eq!(status.code(), Some(130), "{out}");
    assert!(out.contains("stopped at the approval prompt"), "{out}");
    assert_eq!(gw.danger_target_mode(), 0o600, "the command never ran");
    let sids = operator_session_ids(&gw.state_db());
    assert_eq!(sids.len(), 1, "{sids:?}");
    let s = &sids[0];
    let (_, dec) = approval_events(&gw, s);
    assert_eq!(dec["choice"], "deny", "{dec}");
    assert_eq!(dec["stop_run"], true, "{dec}");
    let rep = replay(&gw, s);
    assert!(
        !of_type(&rep, "llm_call").is_empty(),
        "the run's model calls are recorded: {rep:#?}"
    );
    let err = of_type(&rep, "error");
    assert_eq!(err.len(), 1, "{rep:#?}");
    assert_eq!(err[0]["data"]["code"], "interrupted", "{}", err[0]);
    assert_consistent(&gw, s, &ids["alice"]);
    // The day's report counts the turn's calls, every one the log has.
    let day = json_out(&gw, &["audit", "daily"]);
    let alice = day["by_user"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "alice")
        .unwrap_or_else(|| panic!("alice's stopped turn is in the daily report: {day}"));
    assert_eq!(
        alice["llm_calls"].as_i64(),
        Some(of_type(&rep, "llm_call").len() as i64),
        "{day}"
    );
}

/// `--json ARGS` whatever the exit code (doctor exits 12 on a failed check).
fn json_out_any(gw: &Gateway, args: &[&str]) -> Value {
    let mut a = vec!["--json"];
    a.extend_from_slice(args);
    let o = run(gw, &a);
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", show(&o)))
}

hermes_tests!(
    unsupervised_hermes_is_refused,
    approvals_once_deny_prompt_and_expired,
    ctrl_c_at_the_approval_prompt_denies_and_stops_the_run,
    two_approvals_in_one_run_each_answered,
    lost_run_reply_is_retried_only_where_idempotent,
    unreadable_run_event_ends_the_turn_and_stops_the_run,
    gateway_restart_mid_turn_leaves_a_consistent_session,
    serve_killed_mid_turn_ships_whole_and_leaves_the_session_consistent,
    postgres_restarted_mid_turn_leaves_the_turn_consistent,
    new_and_resumed_sessions_tool_events_and_refusals,
    failures_leave_sessions_consistent,
    budget_under_concurrency_and_real_cost,
);
