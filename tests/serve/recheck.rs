//! A running turn stops when its caller loses the right to it (issue 19):
//! revoking the key, a role change or disabling the owner while the model
//! is thinking. The tool the model then asks for never runs (the hook
//! refuses it), the client gets an error instead of the tool's output, and
//! the log says why — through a real Hermes gateway, both generations.
use crate::common;
use crate::common::serve as serve_common;

use common::add_user;
use common::gateway::{hooks_yaml, Gateway, GatewayOpts};
use common::{op, Gen};
use serde_json::{json, Value};
use serve_common::{client, configure, events, make_key, send, token, Server};
use std::path::Path;
use std::time::{Duration, Instant};

/// Waits until the log holds `n` `user_message` events: the turn has begun
/// and the (slow) model is being asked.
fn wait_for_user_messages(home: &Path, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let seen = events(home)
            .iter()
            .filter(|(t, _, _)| t == "user_message")
            .count();
        if seen >= n {
            return;
        }
        assert!(Instant::now() < deadline, "the turn did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn run_cli(home: &Path, args: &[&str]) {
    let o = op(home).args(args).output().unwrap();
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The hook's refusals of this run's tool calls.
fn blocked_calls(home: &Path) -> Vec<String> {
    events(home)
        .into_iter()
        .filter(|(t, _, d)| t == "tool_call" && d["blocked"] == true)
        .map(|(_, _, d)| d["reason"].as_str().unwrap_or_default().to_string())
        .collect()
}

// Long: three scenarios on one gateway per generation (the expensive part), each the same four checks.
async fn a_running_turn_stops_when_its_caller_loses_the_right(gen: Gen) {
    let gw = Gateway::start(
        gen,
        GatewayOpts {
            extra_yaml: hooks_yaml(),
            model_env: vec![("FAKE_MODEL_SLOW_SECONDS".into(), "3".into())],
            ..Default::default()
        },
    );
    let h = gw.home.clone();
    configure(
        &h,
        &format!(
            "hermes:\n  api_url: {}\nagent:\n  enabled_toolsets: [terminal, file, todo]\n",
            gw.url
        ),
    );
    add_user(&h, "alice", "user");
    add_user(&h, "bob", "user");
    add_user(&h, "carol", "user");
    let (alice_key_id, alice_key) = make_key(&h, "alice", &[]);
    let (_, bob_key) = make_key(&h, "bob", &[]);
    let s = Server::start(&h);
    let c = client();
    let carol_tok = token(&c, &s, "carol").await;
    let models = send(c.get(s.url("/v1/models")).bearer_auth(&bob_key)).await;
    assert_eq!(models.status, 200, "{}", models.body);
    let model = models.json()["data"][0]["id"].as_str().unwrap().to_string();
    let scratch = tempfile::tempdir().unwrap();
    let ran = |n: &str| scratch.path().join(n);
    let ask = |n: &str| format!("[slow] [cmd] touch {}", ran(n).display());

    // 1. A key revoked while its plain completion runs.
    let req = c
        .post(s.url("/v1/chat/completions"))
        .bearer_auth(&alice_key)
        .json(&json!({"model": model, "messages": [{"role": "user", "content": ask("revoked")}]}));
    let pending = tokio::spawn(send(req));
    wait_for_user_messages(&h, 1);
    run_cli(&h, &["user", "key", "revoke", &alice_key_id]);
    let r = pending.await.unwrap();
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("revoked"), "{}", r.body);
    assert!(!r.body.contains("Tool said"), "{}", r.body);
    assert!(!ran("revoked").exists(), "the revoked key's tool ran");
    let b = blocked_calls(&h);
    assert_eq!(b.len(), 1, "{b:?}");
    assert!(
        b[0].contains("API key that started it was revoked"),
        "{b:?}"
    );

    // 2. The owner's role changes while a dashboard turn (access token,
    //    followed live) runs.
    let req = c
        .post(s.url("/api/chat"))
        .bearer_auth(&carol_tok)
        .header("accept", "text/event-stream")
        .json(&json!({"message": ask("role")}));
    let pending = tokio::spawn(send(req));
    wait_for_user_messages(&h, 2);
    run_cli(&h, &["user", "role", "carol", "viewer"]);
    let r = pending.await.unwrap();
    assert!(r.body.contains("event: error"), "{}", r.body);
    assert!(
        r.body.contains("role changed from user to viewer"),
        "{}",
        r.body
    );
    assert!(!r.body.contains("Tool said"), "{}", r.body);
    assert!(!ran("role").exists(), "the demoted account's tool ran");
    let b = blocked_calls(&h);
    assert_eq!(b.len(), 2, "{b:?}");
    assert!(b[1].contains("role changed"), "{b:?}");

    // 3. The owner is disabled while a streamed completion runs.
    let req = c
        .post(s.url("/v1/chat/completions"))
        .bearer_auth(&bob_key)
        .json(&json!({"model": model, "stream": true,
                      "messages": [{"role": "user", "content": ask("disabled")}]}));
    let pending = tokio::spawn(send(req));
    wait_for_user_messages(&h, 3);
    run_cli(&h, &["user", "disable", "bob"]);
    let r = pending.await.unwrap();
    assert!(r.body.contains("disabled"), "{}", r.body);
    assert!(!r.body.contains("Tool said"), "{}", r.body);
    assert!(!ran("disabled").exists(), "the disabled account's tool ran");
    let b = blocked_calls(&h);
    assert_eq!(b.len(), 3, "{b:?}");
    assert!(b[2].contains("disabled"), "{b:?}");

    // Each stopped turn ended in an error event naming why.
    let errors: Vec<Value> = events(&h)
        .into_iter()
        .filter(|(t, _, _)| t == "error")
        .map(|(_, _, d)| d)
        .collect();
    assert_eq!(errors.len(), 3, "{errors:#?}");
    assert!(
        errors
            .iter()
            .all(|e| e.to_string().contains("the turn was stopped")),
        "{errors:#?}"
    );
    let v = op(&h).args(["audit", "verify"]).output().unwrap();
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stderr));
}

hermes_tests!(async a_running_turn_stops_when_its_caller_loses_the_right);
