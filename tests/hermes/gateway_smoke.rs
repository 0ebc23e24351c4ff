//! Proves the gateway harness (tests/common/gateway.rs + tests/fixtures/fake_model.py)
//! against the REAL Hermes Agent 0.19.0 API server, and pins down the
//! `/v1/runs` behaviour hermes-operator relies on.
//!
//! Observed with Hermes 0.19.0 on a 2-core dev box (each test starts its own
//! gateway; the four run in parallel, whole file ~15-17 s wall time):
//!
//! * Gateway startup (spawn -> /health 200 + key accepted): ~1.0 s alone,
//!   ~2 s with four gateways starting at once. `state.db` already exists
//!   when /health answers (the gateway creates it), so the operator row can be
//!   inserted right after start; no fixture needed.
//! * First turn after start (POST /v1/runs -> run.completed, `[tool]` = two
//!   model calls + one terminal command): ~2.7 s alone, ~4.3 s with four
//!   gateways busy; ~2 s of it is Hermes' warm-up between "conversation turn"
//!   and the first model request. Later turns: 0.15-0.26 s.
//! * SSE lines are `data: {json}` only (no `event:` line; the kind is the
//!   JSON's `"event"`); the stream ends with the comment `: stream closed`.
//!   Events of a `[tool]` run, in order: tool.started
//!   `{"event","run_id","timestamp","tool":"terminal","preview":"echo fake-model-tool-ok"}`,
//!   tool.completed `{..., "tool":"terminal","duration":0.032,"error":false}`,
//!   message.delta `{..., "delta":"..."}` xN, then (surprise) a
//!   `reasoning.available {"text": <the whole final answer>}`, then
//!   run.completed `{"event":"run.completed","run_id":"run_<32hex>","timestamp":..,
//!   "output":"<final text>","usage":{"input_tokens":600,"output_tokens":26,"total_tokens":626}}`
//!   (usage = sums over the run's model calls, i.e. exactly what fake_model
//!   reported: 100*(2+4) prompt, 10+16 completion).
//! * approval.request (exact):
//!   `{"command": "chmod 777 <target>", "pattern_key": "world/other-writable permissions",
//!     "pattern_keys": ["world/other-writable permissions"], "description":
//!     "world/other-writable permissions", "allow_permanent": true, "event":
//!     "approval.request", "run_id": "run_...", "timestamp": ..., "choices":
//!     ["once", "session", "always", "deny"]}`; it comes right after tool.started.
//!   POST /v1/runs/{id}/approval answers 200
//!   `{"object":"hermes.run.approval_response","run_id":..,"choice":"deny","resolved":1}`
//!   and the stream then carries `approval.responded {"choice","resolved":1}`,
//!   `tool.completed {"error": true}` (deny) and run.completed whose output
//!   quotes the tool result `"BLOCKED: Command denied by user. ..."`. After
//!   the run ended, a late approval POST gets 409 `approval_not_active`.
//! * `approvals.timeout` CAN be lowered (3 s honoured: tool.completed
//!   duration 3.0, result "BLOCKED: Command timed out without user
//!   response..."; the run still COMPLETES, it does not fail).
//! * Model HTTP 500 -> `{"event":"run.failed","run_id":..,"timestamp":..,
//!   "error":"HTTP 500: fake model failure"}` after `agent.api_max_retries`
//!   attempts (Hermes' default 3 adds ~8.5 s of back-off; the harness sets 1:
//!   one model request, run.failed right after it).
//!   state.db keeps the user message but no assistant message.
//!   GET /v1/runs/{id} then says `"status":"failed"` with the same error.
//! * A wrong/unknown `model` in the request is silently IGNORED (no
//!   model_routes configured): the run completes and the fake model receives
//!   `"model":"fake-model"`.
//! * Wrong key -> 401 `{"error": {"message": "Invalid API key", "type":
//!   "invalid_request_error", "code": "invalid_api_key"}}` (same with no key);
//!   /health stays open.
//! * `/v1/runs` HONOURS `conversation_history` (the model receives system +
//!   history + new user message) but does NOT store the history in state.db:
//!   only the new user message and the new assistant/tool messages are
//!   appended. Without it the model sees only system + user, although the
//!   session already has messages in state.db.
//! * A pre-inserted row keeps `source='operator'` and `user_id`: Hermes
//!   appends messages and fills `model`, `message_count`, `tool_call_count`,
//!   `input_tokens`/`output_tokens`, `api_call_count`, `billing_provider`.
//!   `instructions` is appended at the very end of Hermes' system prompt and
//!   not stored as a message.
//! * No title generation at all on the API server (no tool-less auxiliary
//!   request reaches the model; `title` stays NULL). The model is offered 7
//!   tools for toolsets [terminal, file, todo].
//! * A tool outside the platform's toolsets (`read_file` with toolsets
//!   [terminal, todo]) is not executed and emits no tool.* events; the model
//!   gets the tool result "Tool 'read_file' does not exist. Available tools:
//!   process, terminal, todo" and the run completes.
//! * A run without `session_id` gets session id = its run id (`run_<32hex>`),
//!   source `api_server`.
use crate::common;

use common::gateway::{Gateway, GatewayOpts};
use common::Gen;
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn op_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let mix = nanos ^ ((std::process::id() as u128) << 40) ^ (rand_u64() as u128);
    format!("op_{:012x}", mix & 0xffff_ffff_ffff)
}

fn rand_u64() -> u64 {
    use std::io::Read;
    let mut b = [0u8; 8];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = f.read_exact(&mut b);
    }
    u64::from_le_bytes(b)
}

struct Api {
    client: reqwest::Client,
    url: String,
    key: String,
}

impl Api {
    fn new(gw: &Gateway) -> Api {
        Api {
            client: hermes_operator::net::client_builder().build().unwrap(),
            url: gw.url.clone(),
            key: gw.key.clone(),
        }
    }

    async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let r = self
            .client
            .post(format!("{}{path}", self.url))
            .bearer_auth(&self.key)
            .json(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        let st = r.status().as_u16();
        let text = r.text().await.unwrap();
        (
            st,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .client
            .get(format!("{}{path}", self.url))
            .bearer_auth(&self.key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let st = r.status().as_u16();
        let text = r.text().await.unwrap();
        (
            st,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn start_run(&self, body: Value) -> String {
        let (st, v) = self.post("/v1/runs", &body).await;
        assert_eq!(st, 202, "POST /v1/runs: {v}");
        assert_eq!(v["status"], "started", "{v}");
        let id = v["run_id"].as_str().unwrap().to_string();
        assert!(id.starts_with("run_"), "{id}");
        id
    }

    /// Reads the run's SSE stream to its end (or a terminal event). When an
    /// `approval.request` arrives and `answer` is set, POSTs it.
    async fn events(&self, run_id: &str, answer: Option<&str>) -> Vec<Value> {
        let fut = async {
            let resp = self
                .client
                .get(format!("{}/v1/runs/{run_id}/events", self.url))
                .bearer_auth(&self.key)
                .send()
                .await
                .expect("GET events");
            assert_eq!(resp.status().as_u16(), 200);
            let mut stream = resp.bytes_stream();
            let mut buf: Vec<u8> = Vec::new();
            let mut out: Vec<Value> = Vec::new();
            'outer: while let Some(chunk) = stream.next().await {
                buf.extend_from_slice(&chunk.expect("SSE chunk"));
                while let Some(pos) = buf.windows(2).position(|w| w == b"\n\n") {
                    let block: Vec<u8> = buf.drain(..pos + 2).collect();
                    let block = String::from_utf8_lossy(&block).into_owned();
                    for line in block.lines() {
                        let Some(data) = line.strip_prefix("data: ") else {
                            continue;
                        };
                        let ev: Value = serde_json::from_str(data).expect("SSE JSON");
                        let kind = ev["event"].as_str().unwrap_or("").to_string();
                        if kind == "approval.request" {
                            if let Some(choice) = answer {
                                let (st, v) = self
                                    .post(
                                        &format!("/v1/runs/{run_id}/approval"),
                                        &json!({"choice": choice}),
                                    )
                                    .await;
                                assert_eq!(st, 200, "approval POST: {v}");
                                assert_eq!(v["object"], "hermes.run.approval_response", "{v}");
                                assert_eq!(v["choice"], choice, "{v}");
                                assert_eq!(v["resolved"], 1, "{v}");
                            }
                        }
                        out.push(ev);
                        if matches!(
                            kind.as_str(),
                            "run.completed" | "run.failed" | "run.cancelled"
                        ) {
                            break 'outer;
                        }
                    }
                }
            }
            out
        };
        tokio::time::timeout(Duration::from_secs(60), fut)
            .await
            .unwrap_or_else(|_| panic!("run {run_id}: no terminal event within 60 s"))
    }
}

fn kinds(evs: &[Value]) -> Vec<&str> {
    evs.iter()
        .map(|e| e["event"].as_str().unwrap_or("?"))
        .collect()
}

fn find<'a>(evs: &'a [Value], kind: &str) -> &'a Value {
    evs.iter()
        .find(|e| e["event"] == kind)
        .unwrap_or_else(|| panic!("no {kind} event in {:?}", kinds(evs)))
}

fn last_terminal(evs: &[Value]) -> &Value {
    evs.last().expect("no events")
}

/// (role, content, tool_call_id, tool_calls, tool_name) of a session's messages.
type Msg = (
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

fn messages(gw: &Gateway, sid: &str) -> Vec<Msg> {
    let c = common::open_ro(&gw.state_db());
    let mut st = c
        .prepare(
            "SELECT role, content, tool_call_id, tool_calls, tool_name FROM messages \
             WHERE session_id = ?1 ORDER BY id",
        )
        .unwrap();
    let rows = st
        .query_map([sid], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .unwrap();
    rows.map(|r| r.unwrap()).collect()
}

fn session_row(gw: &Gateway, sid: &str) -> Value {
    let c = common::open_ro(&gw.state_db());
    c.query_row(
        "SELECT source, user_id, model, message_count, tool_call_count, input_tokens, \
         output_tokens, title, api_call_count FROM sessions WHERE id = ?1",
        [sid],
        |r| {
            Ok(json!({
                "source": r.get::<_, String>(0)?,
                "user_id": r.get::<_, Option<String>>(1)?,
                "model": r.get::<_, Option<String>>(2)?,
                "message_count": r.get::<_, i64>(3)?,
                "tool_call_count": r.get::<_, i64>(4)?,
                "input_tokens": r.get::<_, Option<i64>>(5)?,
                "output_tokens": r.get::<_, Option<i64>>(6)?,
                "title": r.get::<_, Option<String>>(7)?,
                "api_call_count": r.get::<_, Option<i64>>(8)?,
            }))
        },
    )
    .unwrap_or_else(|e| panic!("session {sid}: {e}"))
}

fn roles(req: &Value) -> Vec<String> {
    req["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap_or("?").to_string())
        .collect()
}

fn content(m: &Value) -> String {
    match &m["content"] {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

const INSTRUCTIONS: &str = "You are being tested by hermes-operator (ephemeral instructions).";

async fn tool_run_appends_to_operator_session(gen: Gen) {
    let gw = Gateway::start(gen, GatewayOpts::default());
    eprintln!("gateway startup: {:.2} s", gw.startup_secs);
    assert!(
        gw.state_db().exists(),
        "Hermes should create state.db at gateway start"
    );
    let api = Api::new(&gw);
    let sid = op_id();
    gw.insert_operator_session(&sid, "u_test");

    // --- turn 1: [tool] -----------------------------------------------
    let t0 = Instant::now();
    let run = api
        .start_run(json!({
            "session_id": sid, "input": "hi [tool]", "instructions": INSTRUCTIONS,
            "conversation_history": [],
        }))
        .await;
    let evs = api.events(&run, None).await;
    eprintln!(
        "first turn latency: {:.2} s; events {:?}",
        t0.elapsed().as_secs_f64(),
        kinds(&evs)
    );
    let k = kinds(&evs);
    for want in [
        "tool.started",
        "tool.completed",
        "message.delta",
        "run.completed",
    ] {
        assert!(
            k.contains(&want),
            "missing {want} in {k:?}\n{}",
            gw.log_tail(20)
        );
    }
    let pos = |w: &str| k.iter().position(|x| *x == w).unwrap();
    assert!(
        pos("tool.started") < pos("tool.completed") && pos("tool.completed") < pos("run.completed")
    );
    let started = find(&evs, "tool.started");
    assert_eq!(started["tool"], "terminal");
    assert_eq!(started["preview"], "echo fake-model-tool-ok");
    assert_eq!(started["run_id"], run.as_str());
    assert_eq!(find(&evs, "tool.completed")["error"], false);
    let done = last_terminal(&evs);
    assert_eq!(done["event"], "run.completed", "{done}");
    let output = done["output"].as_str().unwrap().to_string();
    assert!(output.contains("fake-model-tool-ok"), "{output}");
    let deltas: String = evs
        .iter()
        .filter(|e| e["event"] == "message.delta")
        .map(|e| e["delta"].as_str().unwrap())
        .collect();
    assert_eq!(deltas.trim(), output.trim());

    // What the model saw: 2 agent calls, [system,user] then
    // [system,user,assistant,tool]. (0.22 also makes auxiliary calls without
    // `tools`, e.g. for the title: not agent turns.)
    let reqs = agent_requests(&gw);
    assert_eq!(reqs.len(), 2, "{reqs:#?}");
    assert_eq!(roles(&reqs[0]), ["system", "user"]);
    assert_eq!(roles(&reqs[1]), ["system", "user", "assistant", "tool"]);
    assert_eq!(content(&reqs[0]["messages"][1]), "hi [tool]");
    assert!(content(&reqs[0]["messages"][0])
        .trim_end()
        .ends_with(INSTRUCTIONS));
    assert_eq!(reqs[0]["stream"], true);
    let tools: Vec<&str> = reqs[0]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    assert!(
        tools.contains(&"terminal") && tools.contains(&"read_file"),
        "{tools:?}"
    );
    assert!(reqs.iter().all(|r| r["model"] == "fake-model"));

    // usage = exactly the fake model's numbers, summed over the run's calls.
    let prompt: i64 = reqs
        .iter()
        .map(|r| 100 * r["messages"].as_array().unwrap().len() as i64)
        .sum();
    let completion = 10 + output.split_whitespace().count() as i64;
    // 0.22 adds cache_read_tokens / cache_write_tokens (0 here).
    for (k, want) in [
        ("input_tokens", prompt),
        ("output_tokens", completion),
        ("total_tokens", prompt + completion),
    ] {
        assert_eq!(done["usage"][k], json!(want), "{k}: {}", done["usage"]);
    }

    // state.db: Hermes appended to OUR row and kept source/user_id.
    let msgs = messages(&gw, &sid);
    let r: Vec<&str> = msgs.iter().map(|m| m.0.as_str()).collect();
    assert_eq!(r, ["user", "assistant", "tool", "assistant"], "{msgs:#?}");
    assert_eq!(msgs[0].1.as_deref(), Some("hi [tool]"));
    let calls: Value = serde_json::from_str(msgs[1].3.as_deref().expect("tool_calls")).unwrap();
    assert_eq!(calls[0]["function"]["name"], "terminal");
    assert_eq!(
        msgs[2].2.as_deref(),
        calls[0]["id"].as_str(),
        "tool result pairs with the call"
    );
    assert_eq!(msgs[2].4.as_deref(), Some("terminal"));
    assert_eq!(msgs[3].1.as_deref(), Some(output.as_str()));
    let row = session_row(&gw, &sid);
    assert_eq!(row["source"], "operator");
    assert_eq!(row["user_id"], "u_test");
    assert_eq!(row["model"], "fake-model");
    assert_eq!(row["message_count"], 4);
    assert_eq!(row["tool_call_count"], 1);
    assert_eq!(row["input_tokens"], prompt);
    assert_eq!(row["output_tokens"], completion);
    if gen == Gen::H019 {
        assert_eq!(
            row["title"],
            Value::Null,
            "no auto-title on 0.19's API server"
        );
    } else {
        // 0.22 titles API-server sessions (from the first message when the
        // title model gives nothing better).
        assert!(row["title"].is_string(), "{row}");
    }

    // --- turn 2: conversation_history is honoured, but not re-stored ----
    let t1 = Instant::now();
    let run2 = api
        .start_run(json!({
            "session_id": sid, "input": "and now?", "instructions": INSTRUCTIONS,
            "conversation_history": [
                {"role": "user", "content": "hi [tool]"},
                {"role": "assistant", "content": output},
            ],
        }))
        .await;
    let evs2 = api.events(&run2, None).await;
    eprintln!("second turn latency: {:.2} s", t1.elapsed().as_secs_f64());
    assert_eq!(last_terminal(&evs2)["event"], "run.completed", "{evs2:#?}");
    let reqs = agent_requests(&gw);
    assert_eq!(reqs.len(), 3);
    assert_eq!(roles(&reqs[2]), ["system", "user", "assistant", "user"]);
    assert_eq!(content(&reqs[2]["messages"][2]), output);
    assert_eq!(content(&reqs[2]["messages"][3]), "and now?");
    let r: Vec<String> = messages(&gw, &sid).into_iter().map(|m| m.0).collect();
    assert_eq!(
        r,
        [
            "user",
            "assistant",
            "tool",
            "assistant",
            "user",
            "assistant"
        ]
    );
    let row = session_row(&gw, &sid);
    assert_eq!(
        (row["source"].as_str(), row["user_id"].as_str()),
        (Some("operator"), Some("u_test"))
    );
    assert_eq!(row["message_count"], 6);
    if gen == Gen::H019 {
        let all = gw.model_requests();
        assert!(
            all.iter().all(|r| r["tools"].is_array()),
            "0.19 makes no tool-less (title) request: {all:#?}"
        );
    }
}

/// The model requests that are agent turns (they offer `tools`). 0.22 also
/// makes auxiliary calls without `tools` (session titles): not agent turns.
fn agent_requests(gw: &Gateway) -> Vec<Value> {
    gw.model_requests()
        .into_iter()
        .filter(|r| r["tools"].is_array())
        .collect()
}

async fn danger_deny_then_once(gen: Gen) {
    let gw = Gateway::start(gen, GatewayOpts::default());
    let api = Api::new(&gw);
    let sid = op_id();
    gw.insert_operator_session(&sid, "u_test");
    assert_eq!(gw.danger_target_mode(), 0o600);
    let target = gw.danger_target.to_string_lossy().into_owned();

    // deny
    let run = api
        .start_run(
            json!({"session_id": sid, "input": "please [danger]", "conversation_history": []}),
        )
        .await;
    let evs = api.events(&run, Some("deny")).await;
    let req = find(&evs, "approval.request");
    assert_eq!(req["command"], format!("chmod 777 {target}"), "{req}");
    assert_eq!(
        req["pattern_key"], "world/other-writable permissions",
        "{req}"
    );
    assert_eq!(
        req["choices"],
        json!(["once", "session", "always", "deny"]),
        "{req}"
    );
    assert_eq!(req["run_id"], run.as_str());
    eprintln!("approval.request: {req}");
    let k = kinds(&evs);
    assert!(k.contains(&"approval.responded"), "{k:?}");
    assert_eq!(find(&evs, "approval.responded")["choice"], "deny");
    assert_eq!(find(&evs, "tool.completed")["error"], true);
    let done = last_terminal(&evs);
    assert_eq!(done["event"], "run.completed", "{done}");
    assert!(
        done["output"].as_str().unwrap().contains("denied by user"),
        "{done}"
    );
    assert_eq!(
        gw.danger_target_mode(),
        0o600,
        "denied command must not run"
    );

    // A late answer: the run is over.
    let (st, v) = api
        .post(
            &format!("/v1/runs/{run}/approval"),
            &json!({"choice": "once"}),
        )
        .await;
    assert_eq!(st, 409, "{v}");
    assert_eq!(v["error"]["code"], "approval_not_active", "{v}");

    // once
    let run = api
        .start_run(
            json!({"session_id": sid, "input": "again [danger]", "conversation_history": []}),
        )
        .await;
    let evs = api.events(&run, Some("once")).await;
    assert_eq!(find(&evs, "approval.responded")["choice"], "once");
    assert_eq!(find(&evs, "tool.completed")["error"], false);
    let done = last_terminal(&evs);
    assert_eq!(done["event"], "run.completed", "{done}");
    assert!(
        done["output"]
            .as_str()
            .unwrap()
            .contains("approved by the user"),
        "{done}"
    );
    assert_eq!(gw.danger_target_mode(), 0o777, "approved command must run");
    let row = session_row(&gw, &sid);
    assert_eq!(
        (row["source"].as_str(), row["message_count"].as_i64()),
        (Some("operator"), Some(8))
    );
}

async fn unanswered_approval_times_out_as_denied(gen: Gen) {
    let gw = Gateway::start(
        gen,
        GatewayOpts {
            approval_timeout_secs: 3,
            ..Default::default()
        },
    );
    let api = Api::new(&gw);
    let t0 = Instant::now();
    let run = api.start_run(json!({"input": "risky [danger]"})).await;
    let evs = api.events(&run, None).await;
    let took = t0.elapsed().as_secs_f64();
    eprintln!(
        "unanswered approval: run ended after {took:.2} s; {:?}",
        kinds(&evs)
    );
    find(&evs, "approval.request");
    assert!(!kinds(&evs).contains(&"approval.responded"));
    let tc = find(&evs, "tool.completed");
    assert_eq!(tc["error"], true);
    assert!(tc["duration"].as_f64().unwrap() >= 2.9, "{tc}");
    assert!(
        (2.9..20.0).contains(&took),
        "approval timeout 3 s, run took {took}"
    );
    let done = last_terminal(&evs);
    assert_eq!(done["event"], "run.completed", "{done}");
    assert!(
        done["output"].as_str().unwrap().contains("timed out"),
        "{done}"
    );
    assert_eq!(gw.danger_target_mode(), 0o600);
}

async fn wrong_key_model_failure_unknown_model_and_toolsets(gen: Gen) {
    let gw = Gateway::start(
        gen,
        GatewayOpts {
            toolsets: vec!["terminal".into(), "todo".into()],
            model_env: vec![("FAKE_MODEL_SLOW_SECONDS".into(), "1".into())],
            ..Default::default()
        },
    );
    let api = Api::new(&gw);

    // wrong key / no key -> 401; /health is open
    let bad = hermes_operator::net::client_builder().build().unwrap();
    for (path, auth) in [
        ("/v1/runs", Some("wrong-key-0123456789abcdef")),
        ("/v1/runs", None),
    ] {
        let mut rq = bad
            .post(format!("{}{path}", gw.url))
            .json(&json!({"input": "hi"}));
        if let Some(a) = auth {
            rq = rq.bearer_auth(a);
        }
        let r = rq.send().await.unwrap();
        assert_eq!(r.status().as_u16(), 401);
        let v: Value = r.json().await.unwrap();
        let want = if gen == Gen::H019 {
            json!({"error": {"message": "Invalid API key", "type": "invalid_request_error", "code": "invalid_api_key"}})
        } else {
            json!({"error": {"message": "Invalid gateway API key (API_SERVER_KEY)", "type": "gateway_auth_error", "code": "gateway_auth_failed"}})
        };
        assert_eq!(v, want);
    }
    let r = bad
        .get(format!("{}/v1/runs/run_x/events", gw.url))
        .bearer_auth("wrong-key-0123456789abcdef")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(
        bad.get(format!("{}/health", gw.url))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    assert!(
        gw.model_requests().is_empty(),
        "rejected requests must not reach the model"
    );

    // model 500 -> run.failed
    let sid = op_id();
    gw.insert_operator_session(&sid, "u_test");
    let t0 = Instant::now();
    let run = api
        .start_run(json!({"session_id": sid, "input": "boom [fail]"}))
        .await;
    let evs = api.events(&run, None).await;
    eprintln!(
        "[fail] run.failed after {:.2} s: {}",
        t0.elapsed().as_secs_f64(),
        last_terminal(&evs)
    );
    let failed = last_terminal(&evs);
    assert_eq!(failed["event"], "run.failed", "{evs:#?}");
    assert_eq!(failed["error"], "HTTP 500: fake model failure");
    let keys: Vec<&String> = failed.as_object().unwrap().keys().collect();
    // event, run_id, timestamp, error; 0.22 adds seq, completed, partial, interrupted
    assert_eq!(keys.len(), if gen == Gen::H019 { 4 } else { 8 }, "{failed}");
    let (st, status) = api.get(&format!("/v1/runs/{run}")).await;
    assert_eq!(st, 200);
    assert_eq!(status["status"], "failed", "{status}");
    assert_eq!(status["error"], "HTTP 500: fake model failure", "{status}");
    let r: Vec<String> = messages(&gw, &sid).into_iter().map(|m| m.0).collect();
    // 0.22 also stores its "Your request was not processed…" note.
    let want: &[&str] = if gen == Gen::H019 {
        &["user"]
    } else {
        &["user", "assistant"]
    };
    assert_eq!(
        r, want,
        "a failed run stores the user message (and 0.22's note)"
    );

    // an unknown model name
    let n0 = agent_requests(&gw).len();
    let run = api
        .start_run(json!({"input": "hello", "model": "no-such-model"}))
        .await;
    let evs = api.events(&run, None).await;
    assert_eq!(last_terminal(&evs)["event"], "run.completed", "{evs:#?}");
    let reqs = agent_requests(&gw);
    assert_eq!(reqs.len(), n0 + 1);
    // 0.19 falls back to its configured model; 0.22 passes the name on to
    // the provider (which here answers anyway).
    let want = if gen == Gen::H019 {
        "fake-model"
    } else {
        "no-such-model"
    };
    assert_eq!(reqs[n0]["model"], want);
    // no session_id: Hermes' own row, id = run id
    let row = session_row(&gw, &run);
    assert_eq!(
        (row["source"].as_str(), &row["user_id"]),
        (Some("api_server"), &Value::Null),
        "{row}"
    );

    // [slow]
    let t0 = Instant::now();
    let run = api
        .start_run(json!({"input": "take your time [slow]"}))
        .await;
    let evs = api.events(&run, None).await;
    assert_eq!(last_terminal(&evs)["event"], "run.completed");
    assert!(t0.elapsed() >= Duration::from_secs(1));

    // [file] with the file toolset disabled: read_file is not offered and not run.
    let n0 = agent_requests(&gw).len();
    let run = api.start_run(json!({"input": "show me [file]"})).await;
    let evs = api.events(&run, None).await;
    eprintln!(
        "[file] without file toolset: {:?} / {}",
        kinds(&evs),
        last_terminal(&evs)
    );
    assert_eq!(last_terminal(&evs)["event"], "run.completed", "{evs:#?}");
    let reqs = agent_requests(&gw);
    let offered: Vec<&str> = reqs[n0]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    assert!(!offered.contains(&"read_file"), "{offered:?}");
    assert!(
        !kinds(&evs).contains(&"tool.completed") || find(&evs, "tool.completed")["error"] == true
    );
    assert!(!last_terminal(&evs)["output"]
        .as_str()
        .unwrap()
        .contains("fake-model-file-ok"));
}

hermes_tests!(
    async tool_run_appends_to_operator_session,
    async danger_deny_then_once,
    async unanswered_approval_times_out_as_denied,
    async wrong_key_model_failure_unknown_model_and_toolsets,
);
