//! The review's attacks against a real Hermes that runs under its own
//! account, with the operator under another (`install --operator-user`,
//! docs/design.md §12), both generations. The commands are spelled so the
//! hook's path guard cannot see the path (it is computed at run time): what
//! stops them is the kernel. The hook itself reaches the policy only through
//! `serve`'s socket.
use crate::common;

use base64::Engine;
use common::accounts::{serve_as, Accounts};
use common::add_user;
use common::gateway::{hooks_yaml, Gateway, GatewayOpts};
use common::serve::{configure, events};
use common::{op, Gen};
use serde_json::{json, Value};
use std::path::Path;

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn role_of(home: &Path, name: &str) -> String {
    let o = op(home)
        .args(["--json", "user", "show", name])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    v["role"].as_str().unwrap().to_string()
}

async fn the_agent_under_its_own_account_cannot_reach_the_control_plane(gen: Gen) {
    let (mut accounts, names) = Accounts::make(&["g"]);
    let hermes = names[0].clone();
    let operator = hermes.replacen("hopt-g", "hopt-p", 1);
    accounts.adopt(&operator);
    let gw = Gateway::start(
        gen,
        GatewayOpts {
            extra_yaml: hooks_yaml(),
            run_as: Some(hermes.clone()),
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
    let o = op(&h)
        .args(["--json", "user", "key", "create", "alice"])
        .output()
        .unwrap();
    let key = serde_json::from_slice::<Value>(&o.stdout).unwrap()["key"]
        .as_str()
        .unwrap()
        .to_string();
    let o = op(&h)
        .args([
            "install",
            "--yes",
            "--no-systemd",
            "--operator-user",
            &operator,
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let d = op(&h).args(["--json", "doctor"]).output().unwrap();
    let d: Value = serde_json::from_slice(&d.stdout).unwrap();
    let b = common::doctor_check(&d, "agent_boundary");
    assert_eq!(b["status"], "pass", "{b}");
    assert!(b["detail"].as_str().unwrap().contains(&hermes), "{b}");

    let bin = Path::new(env!("CARGO_BIN_EXE_hermes-operator"));
    let (_serve, base) = serve_as(&operator, bin, &h);
    let c = hermes_operator::net::client_builder().build().unwrap();
    let models: Value = c
        .get(format!("{base}/v1/models"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let model = models["data"][0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("/v1/models: {models}"))
        .to_string();
    let secret = std::fs::read_to_string(h.join("profiles/operator/audit_signing.key")).unwrap();
    let users_db = h.join("plugins/operator/users.db").display().to_string();
    let key_file = h
        .join("profiles/operator/audit_signing.key")
        .display()
        .to_string();
    let asks = [
        format!(
            "[cmd] sqlite3 \"$(echo {} | base64 -d)\" \"UPDATE users SET role='admin' WHERE username='alice'\"",
            b64(&users_db)
        ),
        format!("[cmd] cat \"$(echo {} | base64 -d)\"", b64(&key_file)),
    ];
    for ask in &asks {
        let r = c
            .post(format!("{base}/v1/chat/completions"))
            .bearer_auth(&key)
            .json(&json!({"model": model, "messages": [{"role": "user", "content": ask}]}))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let body = r.text().await.unwrap();
        assert_eq!(status, 200, "{ask}: {body}\n{}", gw.log_tail(30));
        assert!(
            !body.contains(secret.trim()),
            "{ask}: the key leaked: {body}"
        );
        let lower = body.to_lowercase();
        assert!(
            lower.contains("permission denied") || lower.contains("unable to open"),
            "{ask}: the kernel's refusal is not in the answer: {body}"
        );
    }
    assert_eq!(role_of(&h, "alice"), "user");
    // The hook asked serve about both calls and let them run (the path was
    // out of its sight); what they touched was out of the agent's reach.
    let calls: Vec<Value> = events(&h)
        .into_iter()
        .filter(|(t, _, d)| t == "tool_call" && d["source"] == "hook")
        .map(|(_, _, d)| d)
        .collect();
    assert_eq!(calls.len(), 2, "{calls:#?}");
    assert!(calls.iter().all(|c| c["blocked"] == false), "{calls:#?}");
    let v = op(&h).args(["audit", "verify"]).output().unwrap();
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stderr));
}

hermes_tests!(async the_agent_under_its_own_account_cannot_reach_the_control_plane);
