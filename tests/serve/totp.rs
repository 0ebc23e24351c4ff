//! Two-factor login end to end: `user totp enable|confirm|disable` and the
//! login route, with codes computed by an independent implementation
//! (Python's standard library: hmac, hashlib, base64 — RFC 6238 in a few
//! lines), `auth.require_totp`, single use, recovery codes, throttling.

use crate::common;
use crate::common::serve as serve_common;

use common::{add_user, op, stderr, totp_code as code, TestHome, TEST_PASSWORD};
use serde_json::{json, Value};
use serve_common::{client, configure, events, send, Server};

use common::op_json as cli;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn totp_enrol_login_single_use_recovery_and_required_roles() {
    let home = TestHome::new();
    configure(home.path(), "auth:\n  require_totp: [admin]\n");
    add_user(home.path(), "root", "admin");
    add_user(home.path(), "alice", "user");
    let s = Server::start(home.path());
    let c = client();
    let login = |user: &str, totp: Option<String>| {
        let mut body = json!({"username": user, "password": TEST_PASSWORD});
        if let Some(t) = totp {
            body["totp"] = Value::String(t);
        }
        send(c.post(s.url("/auth/login")).json(&body))
    };

    // A role that must use a second factor cannot log in until enrolled.
    let r = login("root", None).await;
    assert_eq!(r.status, 401, "{}", r.body);
    assert_eq!(r.json()["error"]["code"], "totp_enrolment_required");

    // Enrolment: URI, base32 secret, 10 recovery codes; pending until confirmed.
    let e = cli(home.path(), &["user", "totp", "enable", "alice"]);
    let secret = e["secret"].as_str().unwrap().to_string();
    assert!(e["uri"]
        .as_str()
        .unwrap()
        .starts_with("otpauth://totp/hermes-operator:alice?"));
    assert!(e["uri"]
        .as_str()
        .unwrap()
        .contains(&format!("secret={secret}")));
    let recovery: Vec<String> = e["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(recovery.len(), 10);
    assert_eq!(
        login("alice", None).await.status,
        200,
        "pending: no code yet"
    );
    let o = op(home.path())
        .args(["user", "totp", "confirm", "alice", "000000"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    // The previous step's code (within the ±1 step window), so the current
    // one is still unused for the login below.
    cli(
        home.path(),
        &["user", "totp", "confirm", "alice", &code(&secret, -1)],
    );

    let r = login("alice", None).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"]["code"], "totp_required");
    let now = code(&secret, 0);
    let wrong = if now == "123456" { "654321" } else { "123456" };
    let r = login("alice", Some(wrong.into())).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"]["code"], "invalid_credentials");
    let r = login("alice", Some(now.clone())).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = login("alice", Some(now)).await;
    assert_eq!(r.status, 401, "a code works once");
    // A recovery code (any case and spacing) works once in place of a code.
    let rc = recovery[3].to_lowercase().replace('-', " ");
    assert_eq!(login("alice", Some(rc.clone())).await.status, 200);
    assert_eq!(login("alice", Some(rc)).await.status, 401);

    // Wrong codes count like wrong passwords: 5, then 429 even when right.
    cli(home.path(), &["user", "unlock", "alice"]);
    for _ in 0..5 {
        assert_eq!(login("alice", Some(wrong.into())).await.status, 401);
    }
    let r = login("alice", Some(code(&secret, 1))).await;
    assert_eq!(r.status, 429, "{}", r.body);

    // The admin enrols and logs in with a code.
    let re = cli(home.path(), &["user", "totp", "enable", "root"]);
    let rs = re["secret"].as_str().unwrap().to_string();
    cli(
        home.path(),
        &["user", "totp", "confirm", "root", &code(&rs, -1)],
    );
    assert_eq!(
        login("root", None).await.json()["error"]["code"],
        "totp_required"
    );
    assert_eq!(login("root", Some(code(&rs, 0))).await.status, 200);
    // Enrolling again needs a disable first.
    let o = op(home.path())
        .args(["user", "totp", "enable", "root"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(10), "{}", stderr(&o));

    // Disabled: the password alone works again.
    cli(home.path(), &["user", "unlock", "alice"]);
    let d = cli(home.path(), &["user", "totp", "disable", "alice"]);
    assert_eq!(d["changed"], true);
    assert_eq!(login("alice", None).await.status, 200);

    // Every change audited; failed codes as login_failed/bad_totp; no secret
    // or code in the log.
    let evs = events(home.path());
    let changes: Vec<String> = evs
        .iter()
        .filter(|e| e.0 == "user_changed" && e.2["username"] == "alice")
        .map(|e| e.2["change"].as_str().unwrap().to_string())
        .collect();
    for want in [
        "totp_enrolment_started",
        "totp_enabled",
        "totp_recovery_code_used",
        "totp_disabled",
    ] {
        assert!(changes.iter().any(|c| c == want), "{want}: {changes:?}");
    }
    let bad_totp = evs
        .iter()
        .filter(|e| e.0 == "login_failed" && e.2["reason"] == "bad_totp")
        .count();
    assert!(bad_totp >= 7, "{bad_totp}");
    let all = format!("{evs:?}");
    assert!(!all.contains(&secret) && !all.contains(&recovery[3]));
}
