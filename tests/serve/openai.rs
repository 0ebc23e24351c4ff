//! Personal API keys and the OpenAI-compatible endpoint against a REAL
//! Hermes gateway (both generations), driven by the real `openai` Python SDK
//! (tests/fixtures/openai_client.py, in the test venv: Hermes pins
//! `openai==2.24.0`): completions plain and streamed, a resent history
//! continuing the same operator session, the key id in the audit log,
//! revoked / read-only / viewer keys, `--rpm`, a spent budget, a key's
//! toolsets enforced by the hook, `--approvals deny` vs `wait`, and how keys
//! are stored.
use crate::common;
use crate::common::serve as serve_common;

use common::add_user;
use common::gateway::{hooks_yaml, Gateway, GatewayOpts};
use common::{op, Gen};
use futures_util::StreamExt;
use serde_json::{json, Value};
use serve_common::{client, configure, make_key, send, token, Server};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;

fn script() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/openai_client.py")
}

/// One run of the SDK script with `key` (in the environment, never argv).
fn sdk(gen: Gen, s: &Server, key: &str, owner_token: &str, args: &[&str]) -> Value {
    let out = std::process::Command::new(gen.python())
        .arg(script())
        .args(args)
        .env("OP_BASE", &s.base)
        .env("OP_KEY", key)
        .env("OP_OWNER_TOKEN", owner_token)
        .env("PYTHONIOENCODING", "utf-8")
        .stdin(Stdio::null())
        .output()
        .expect("run the openai SDK script");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "openai_client.py {args:?} failed ({}):\n{stdout}\n{}\n--- serve log ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        s.log()
    );
    let v: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    // The SDK Hermes pins, so both generations' venvs run the same client.
    assert_eq!(v["openai_version"], "2.24.0", "{v}");
    v
}

fn msgs(v: Value) -> String {
    v.to_string()
}

/// (role, content) of a session's live messages in state.db.
fn stored(gw: &Gateway, sid: &str) -> Vec<(String, Option<String>)> {
    let c = common::open_ro(&gw.state_db());
    let mut st = c
        .prepare("SELECT role, content FROM messages WHERE session_id = ?1 ORDER BY id")
        .unwrap();
    st.query_map([sid], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn last_assistant(gw: &Gateway, sid: &str) -> String {
    stored(gw, sid)
        .into_iter()
        .rev()
        .find_map(|(r, c)| (r == "assistant").then_some(c).flatten())
        .unwrap_or_default()
}

/// What `openai_sdk_with_personal_keys` carries from step to step.
///
/// Field order is drop order: the server stops before the gateway, as the
/// locals of the one long function did.
struct Scenario {
    gen: Gen,
    s: Server,
    c: reqwest::Client,
    gw: Gateway,
    h: std::path::PathBuf,
    base_cfg: String,
    alice_id: String,
    alice_tok: String,
    chat_id: String,
    chat_key: String,
    read_key: String,
    vic_key: String,
    rpm_key: String,
    narrow_key: String,
    wait_key: String,
    /// The gateway's first model (after the first step).
    model: String,
    /// The operator session the `sdk` key's first completion opened.
    sid: String,
    /// That completion's text, resent as history.
    text1: String,
}

impl Scenario {
    /// One run of the SDK script on this scenario's server.
    fn sdk(&self, key: &str, owner_token: &str, args: &[&str]) -> Value {
        sdk(self.gen, &self.s, key, owner_token, args)
    }
}

/// A one-message conversation: "hi".
fn hi() -> String {
    msgs(json!([{"role": "user", "content": "hi"}]))
}

// One gateway per generation is the expensive part; the steps run in order on it.
async fn openai_sdk_with_personal_keys(gen: Gen) {
    let mut x = scenario_start(gen).await;
    // Models, a plain completion, then the resent history continues it.
    step_models_and_a_plain_completion(&mut x);
    step_resent_history_streams_into_the_same_session(&x);
    step_how_hermes_was_asked_and_what_it_stored(&x);
    step_edited_history_or_header_picks_the_session(&x);
    step_replay_carries_the_key_id(&x);
    // Refusals in the shapes the SDK raises.
    step_refusals_in_sdk_shapes(&x);
    // A key without `terminal`: the hook blocks the call, nothing runs.
    step_narrow_key_blocked_by_the_hook(&x);
    // Approvals: deny at once, or wait for the owner.
    step_deny_key_refused_at_once(&x);
    step_wait_key_approved_by_the_owner(&x);
    step_waiting_stream_kept_alive_until_answered(&x).await;
    // Revoked keys, storage.
    step_revoked_key_and_key_storage(&x).await;
    // A spent budget: 429 insufficient_quota.
    step_spent_budget(&mut x);
}

async fn scenario_start(gen: Gen) -> Scenario {
    let gw = Gateway::start(
        gen,
        GatewayOpts {
            approval_timeout_secs: 60,
            extra_yaml: hooks_yaml(),
            ..Default::default()
        },
    );
    let h = gw.home.clone();
    let base_cfg = format!(
        "hermes:\n  api_url: {}\nagent:\n  enabled_toolsets: [terminal, file, web]\n",
        gw.url
    );
    configure(&h, &base_cfg);
    let alice_id = add_user(&h, "alice", "user");
    add_user(&h, "vic", "viewer");
    let (chat_id, chat_key) = make_key(&h, "alice", &["--label", "sdk"]);
    let (_, read_key) = make_key(&h, "alice", &["--scope", "read"]);
    let (_, vic_key) = make_key(&h, "vic", &[]);
    let (_, rpm_key) = make_key(&h, "alice", &["--rpm", "2"]);
    let (_, narrow_key) = make_key(&h, "alice", &["--toolsets", "file,web"]);
    let (_, wait_key) = make_key(&h, "alice", &["--approvals", "wait"]);
    let s = Server::start(&gw.home);
    let c = client();
    let alice_tok = token(&c, &s, "alice").await;
    Scenario {
        gen,
        s,
        c,
        gw,
        h,
        base_cfg,
        alice_id,
        alice_tok,
        chat_id,
        chat_key,
        read_key,
        vic_key,
        rpm_key,
        narrow_key,
        wait_key,
        model: String::new(),
        sid: String::new(),
        text1: String::new(),
    }
}

/// Models, then a plain completion: a new operator session with what
/// Hermes stored.
fn step_models_and_a_plain_completion(x: &mut Scenario) {
    let m = x.sdk(&x.chat_key, "", &["models"]);
    let model = m["ids"][0].as_str().expect("a model").to_string();
    let first = x.sdk(
        &x.chat_key,
        "",
        &[
            "complete",
            &model,
            &msgs(json!([
                {"role": "system", "content": "You are terse."},
                {"role": "user", "content": "hello there"}
            ])),
        ],
    );
    assert!(first.get("error_class").is_none(), "{first}");
    let sid = first["session"]
        .as_str()
        .expect("X-Hermes-Session-Id")
        .to_string();
    assert!(sid.starts_with("op_") && sid.len() == 15, "{first}");
    let text1 = first["text"].as_str().unwrap().to_string();
    assert!(!text1.is_empty(), "{first}");
    assert_eq!(
        text1.trim(),
        last_assistant(&x.gw, &sid).trim(),
        "the reply is what Hermes stored"
    );
    assert_eq!(first["finish"], "stop");
    assert!(
        first["usage"]["prompt_tokens"].as_i64().unwrap() > 0,
        "{first}"
    );
    x.model = model;
    x.sid = sid;
    x.text1 = text1;
}

/// The resent history, streamed, continues the same session.
fn step_resent_history_streams_into_the_same_session(x: &Scenario) {
    let (gw, sid, text1) = (&x.gw, &x.sid, &x.text1);
    let second = x.sdk(
        &x.chat_key,
        "",
        &[
            "stream",
            &x.model,
            &msgs(json!([
                {"role": "system", "content": "You are terse."},
                {"role": "user", "content": "hello there"},
                {"role": "assistant", "content": text1},
                {"role": "user", "content": "and once more"}
            ])),
        ],
    );
    assert!(second.get("error_class").is_none(), "{second}");
    assert_eq!(
        second["session"],
        sid.as_str(),
        "the resent history continued the session"
    );
    assert_eq!(second["finish"], "stop", "{second}");
    assert_eq!(second["roles"], json!(["assistant"]), "{second}");
    assert!(second["chunks"].as_i64().unwrap() >= 3, "{second}");
    assert!(
        second["usage"]["completion_tokens"].as_i64().unwrap() > 0,
        "include_usage: {second}"
    );
    assert_eq!(
        second["text"].as_str().unwrap().trim(),
        last_assistant(gw, sid).trim(),
        "the streamed text is what Hermes stored"
    );
}

/// How Hermes was asked, and what state.db holds after both turns.
fn step_how_hermes_was_asked_and_what_it_stored(x: &Scenario) {
    let (gw, sid) = (&x.gw, &x.sid);
    // How Hermes was asked: the plain call of a `deny` key (nobody follows
    // it, nobody can approve in it) as one chat completion, the streamed
    // one as a run with its event stream.
    let asked: Vec<String> = serve_common::events(&x.h)
        .into_iter()
        .filter(|(t, _, _)| t == "assistant_message")
        .map(|(_, _, d)| d["run_id"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(asked.len(), 2, "{asked:?}");
    assert!(asked[0].starts_with("chatcmpl-"), "{asked:?}");
    assert!(
        !asked[1].is_empty() && !asked[1].starts_with("chatcmpl-"),
        "{asked:?}"
    );
    // state.db: one operator session, alice's, with both turns.
    let db = common::open_ro(&gw.state_db());
    let (source, user): (String, Option<String>) = db
        .query_row(
            "SELECT source, user_id FROM sessions WHERE id = ?1",
            [sid],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(
        (source.as_str(), user.as_deref()),
        ("operator", Some(x.alice_id.as_str()))
    );
    let users: Vec<String> = stored(gw, sid)
        .into_iter()
        .filter(|(r, _)| r == "user")
        .filter_map(|(_, c)| c)
        .collect();
    assert_eq!(users, ["hello there", "and once more"]);
    let n: i64 = db
        .query_row(
            "SELECT count(*) FROM sessions WHERE source = 'operator'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 1, "no second session");
}

/// An edited history is a new session; the session header continues one.
fn step_edited_history_or_header_picks_the_session(x: &Scenario) {
    let (model, sid) = (&x.model, &x.sid);
    // An edited history is another conversation: a new session.
    let other = x.sdk(
        &x.chat_key,
        "",
        &[
            "complete",
            model,
            &msgs(json!([
                {"role": "user", "content": "hello there"},
                {"role": "assistant", "content": "something I never said"},
                {"role": "user", "content": "and once more"}
            ])),
        ],
    );
    assert_ne!(other["session"], sid.as_str(), "{other}");
    // X-Hermes-Session-Id continues a session whatever the history says.
    let third = x.sdk(
        &x.chat_key,
        "",
        &[
            "complete",
            model,
            &msgs(json!([{"role": "user", "content": "third"}])),
            sid,
        ],
    );
    assert_eq!(third["session"], sid.as_str(), "{third}");
}

/// Audit replay: the turns carry the key id as their actor.
fn step_replay_carries_the_key_id(x: &Scenario) {
    let o = op(&x.h)
        .args(["--json", "audit", "replay", &x.sid])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let replay = String::from_utf8_lossy(&o.stdout).to_string();
    let r: Value = serde_json::from_str(&replay).unwrap();
    let turns: Vec<&Value> = r["events"]
        .as_array()
        .or_else(|| r.as_array())
        .unwrap()
        .iter()
        .map(|e| e.get("event").unwrap_or(e))
        .filter(|e| e["type"] == "user_message")
        .collect();
    assert_eq!(turns.len(), 3, "{replay}");
    for t in &turns {
        assert_eq!(t["actor"], format!("http:alice/{}", x.chat_id), "{t}");
        assert_eq!(t["data"]["channel"], "openai", "{t}");
    }
}

/// Refusals in the shapes the SDK raises: scope, role, model, key, `--rpm`.
fn step_refusals_in_sdk_shapes(x: &Scenario) {
    let (model, hi) = (x.model.as_str(), hi());
    let e = x.sdk(&x.read_key, "", &["complete", model, &hi]);
    assert_eq!(
        (e["error_class"].as_str(), e["status"].as_i64()),
        (Some("PermissionDeniedError"), Some(403)),
        "{e}"
    );
    let m = x.sdk(&x.read_key, "", &["models"]);
    assert_eq!(m["ids"][0], model, "a read key lists models: {m}");
    let e = x.sdk(&x.vic_key, "", &["complete", model, &hi]);
    assert_eq!(
        e["error_class"], "PermissionDeniedError",
        "a viewer's key cannot chat: {e}"
    );
    let e = x.sdk(&x.chat_key, "", &["complete", "no-such-model", &hi]);
    assert_eq!(
        (e["error_class"].as_str(), e["code"].as_str()),
        (Some("NotFoundError"), Some("model_not_found")),
        "{e}"
    );
    let bad = format!("hop_{}", "A".repeat(43));
    let e = x.sdk(&bad, "", &["models"]);
    assert_eq!(
        (e["error_class"].as_str(), e["code"].as_str()),
        (Some("AuthenticationError"), Some("invalid_api_key")),
        "{e}"
    );
    for i in 0..2 {
        let ok = x.sdk(&x.rpm_key, "", &["complete", model, &hi]);
        assert!(ok.get("error_class").is_none(), "call {i}: {ok}");
    }
    let e = x.sdk(&x.rpm_key, "", &["complete", model, &hi]);
    assert_eq!(
        (e["error_class"].as_str(), e["code"].as_str()),
        (Some("RateLimitError"), Some("rate_limit_exceeded")),
        "{e}"
    );
}

/// A key without `terminal`: the hook blocks the call, nothing runs.
fn step_narrow_key_blocked_by_the_hook(x: &Scenario) {
    let (gw, model) = (&x.gw, x.model.as_str());
    let call = |i: u32| std::path::PathBuf::from(format!("{}.call{i}", gw.danger_target.display()));
    let tool3 = msgs(json!([{"role": "user", "content": "[tool3] touch three files"}]));
    let r = x.sdk(&x.narrow_key, "", &["complete", model, &tool3]);
    assert!(r.get("error_class").is_none(), "{r}");
    assert!(
        !call(1).exists() && !call(2).exists() && !call(3).exists(),
        "blocked calls ran"
    );
    let blocked: Vec<Value> = serve_common::events(&x.h)
        .into_iter()
        .filter(|(t, _, d)| t == "tool_call" && d["source"] == "hook")
        .map(|(_, _, d)| d)
        .collect();
    assert!(
        !blocked.is_empty() && blocked.iter().all(|d| d["blocked"] == true),
        "{blocked:?}"
    );
    let reason = blocked[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("terminal") && reason.contains("file, web"),
        "{reason}"
    );
    // The same request with the unnarrowed key runs them (the policy is the key's).
    let r = x.sdk(&x.chat_key, "", &["complete", model, &tool3]);
    assert!(r.get("error_class").is_none(), "{r}");
    assert!(
        call(1).exists() && call(3).exists(),
        "the unnarrowed key's calls ran"
    );
}

/// The `[danger]` conversation the approval steps send.
fn danger() -> String {
    msgs(json!([{"role": "user", "content": "[danger] open it up"}]))
}

/// Approvals, `--approvals deny` (the default): refused at once.
fn step_deny_key_refused_at_once(x: &Scenario) {
    let gw = &x.gw;
    fs::set_permissions(&gw.danger_target, fs::Permissions::from_mode(0o600)).unwrap();
    let r = x.sdk(&x.chat_key, "", &["complete", &x.model, &danger()]);
    assert!(r.get("error_class").is_none(), "{r}");
    assert_eq!(
        gw.danger_target_mode(),
        0o600,
        "--approvals deny: it did not run"
    );
    let denied = serve_common::events(&x.h)
        .into_iter()
        .rfind(|(t, _, _)| t == "approval")
        .expect("an approval event");
    assert_eq!(denied.2["choice"], "deny", "{:?}", denied.2);
    // A plain call: Hermes refused it itself, and the log says which command.
    assert!(
        denied.2["outcome"]
            .as_str()
            .unwrap_or_default()
            .contains("refused by Hermes"),
        "{:?}",
        denied.2
    );
    assert!(
        denied.2["command"]
            .as_str()
            .is_some_and(|c| c.contains(&gw.danger_target.display().to_string())),
        "{:?}",
        denied.2
    );
    assert!(
        denied.2["decided_by"]
            .as_str()
            .unwrap()
            .contains(&x.chat_id),
        "{:?}",
        denied.2
    );
}

/// Approvals, `--approvals wait`: the owner approves, it runs.
fn step_wait_key_approved_by_the_owner(x: &Scenario) {
    let r = x.sdk(
        &x.wait_key,
        &x.alice_tok,
        &["stream_approve", &x.model, &danger(), "once"],
    );
    assert!(r.get("error_class").is_none(), "{r}");
    assert_eq!(r["finish"], "stop", "{r}");
    assert_eq!(
        x.gw.danger_target_mode() & 0o777,
        0o777,
        "--approvals wait: the owner approved, it ran"
    );
}

/// A waiting stream stays open with keep-alive comments until answered.
async fn step_waiting_stream_kept_alive_until_answered(x: &Scenario) {
    let (c, s, gw) = (&x.c, &x.s, &x.gw);
    fs::set_permissions(&gw.danger_target, fs::Permissions::from_mode(0o600)).unwrap();
    let r = c
        .post(s.url("/v1/chat/completions"))
        .bearer_auth(&x.wait_key)
        .json(&json!({"model": x.model, "stream": true,
                      "messages": [{"role": "user", "content": "[danger] once more"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let waiting_sid = r.headers()["x-hermes-session-id"]
        .to_str()
        .unwrap()
        .to_string();
    let mut body = Box::pin(r.bytes_stream());
    let mut seen = String::new();
    let t0 = std::time::Instant::now();
    while !(seen.starts_with(':') || seen.contains("\n\n:")) {
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(40), body.next())
            .await
            .unwrap_or_else(|_| panic!("no keep-alive within 40 s: {seen}"))
            .expect("the stream stays open")
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(t0.elapsed().as_secs() >= 10, "keep-alive comes every 15 s");
    let r = send(
        c.post(s.url(&format!("/api/sessions/{waiting_sid}/approval")))
            .bearer_auth(&x.alice_tok)
            .json(&json!({"choice": "deny"})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    while !seen.contains("data: [DONE]") {
        match tokio::time::timeout(std::time::Duration::from_secs(60), body.next()).await {
            Ok(Some(Ok(chunk))) => seen.push_str(&String::from_utf8_lossy(&chunk)),
            other => panic!("the stream ended without [DONE] ({other:?}): {seen}"),
        }
    }
    assert_eq!(
        gw.danger_target_mode(),
        0o600,
        "denied by the owner: it did not run"
    );
}

/// A revoked key is refused; users.db holds no key in clear, and a key's
/// hash is no key.
async fn step_revoked_key_and_key_storage(x: &Scenario) {
    let o = op(&x.h)
        .args(["user", "key", "revoke", &x.chat_id])
        .output()
        .unwrap();
    assert!(o.status.success());
    let e = x.sdk(&x.chat_key, "", &["complete", &x.model, &hi()]);
    assert_eq!(e["error_class"], "AuthenticationError", "{e}");
    let db = fs::read(x.h.join("plugins/operator/users.db")).unwrap();
    for k in [&x.chat_key, &x.read_key, &x.wait_key] {
        assert!(
            !db.windows(k.len()).any(|w| w == k.as_bytes()),
            "a key in clear"
        );
    }
    let hash = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(x.read_key.as_bytes()))
    };
    let r = send(x.c.get(x.s.url("/v1/models")).bearer_auth(&hash)).await;
    assert_eq!(r.status, 401, "a key's hash is not a key: {}", r.body);
}

/// A spent budget: 429 insufficient_quota (after a restart with a budget).
fn step_spent_budget(x: &mut Scenario) {
    x.s.terminate(std::time::Duration::from_secs(10));
    configure(
        &x.h,
        &format!("{}budget:\n  user_daily_usd: 0.000001\n", x.base_cfg),
    );
    x.s = Server::start(&x.gw.home);
    let e = x.sdk(&x.narrow_key, "", &["complete", &x.model, &hi()]);
    assert_eq!(
        (e["error_class"].as_str(), e["code"].as_str()),
        (Some("RateLimitError"), Some("insufficient_quota")),
        "{e}"
    );
    audit_ok(&x.h);
}

fn audit_ok(h: &Path) {
    let o = op(h).args(["audit", "verify"]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
}

hermes_tests!(async openai_sdk_with_personal_keys);
