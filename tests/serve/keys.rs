//! Personal API keys on the JSON API (no Hermes needed): made over HTTP and
//! the CLI, shown once, listed by their owners and admins; what a key may
//! do (reads, chat; never account changes, logouts or more keys), scopes,
//! `--rpm`, expiry, and how a role change, disabling or deletion of the
//! owner kills its keys at once and for good. Every rule has its request.

use crate::common;
use crate::common::serve as serve_common;

use common::{add_user, op, stderr, TestHome};
use serde_json::{json, Value};
use serve_common::{client, configure, events, send, token, Server};
use std::time::Duration;

use common::op_json as cli;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_act_as_their_owner_narrowed_and_die_with_role_changes() {
    let home = TestHome::new();
    let h = home.path();
    configure(h, "");
    add_user(h, "root", "admin");
    let alice_id = add_user(h, "alice", "user");
    add_user(h, "bob", "user");
    let s = Server::start(h);
    let c = client();
    let alice = token(&c, &s, "alice").await;
    let bob = token(&c, &s, "bob").await;
    let root = token(&c, &s, "root").await;
    let get = |path: &str, bearer: &str| send(c.get(s.url(path)).bearer_auth(bearer));
    let post = |path: &str, bearer: &str, body: Value| {
        send(c.post(s.url(path)).bearer_auth(bearer).json(&body))
    };

    // --- made over HTTP: shown once, listed without it ----------------------
    let r = post(
        "/api/keys",
        &alice,
        json!({"label": "laptop", "scope": "read"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let made = r.json();
    let read_key = made["key"].as_str().unwrap().to_string();
    let read_id = made["id"].as_str().unwrap().to_string();
    assert!(
        read_key.starts_with("hop_") && read_key.len() == 47,
        "{made}"
    );
    assert_eq!(made["scope"], "read");
    assert_eq!(made["prefix"], &read_key[..10]);
    let r = post("/api/keys", &alice, json!({"label": "chat"})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let chat_key = r.json()["key"].as_str().unwrap().to_string();
    assert_eq!(r.json()["scope"], "chat", "a user's default scope");
    let r = get("/api/keys", &alice).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json().as_array().unwrap().len(), 2);
    assert!(
        !r.body.contains(&read_key) && !r.body.contains("\"key\""),
        "{}",
        r.body
    );
    for bad in [
        json!({"scope": "admin"}),
        json!({"approvals": "always"}),
        json!({"expires": "soon"}),
        json!({"rpm": 0}),
        json!({"toolsets": ["terminal"]}),
        json!({"label": "x", "owner": "bob"}),
    ] {
        let r = post("/api/keys", &alice, bad.clone()).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
    }

    // --- who sees and revokes whose keys ------------------------------------
    assert_eq!(get("/api/keys?user=alice", &bob).await.status, 403);
    assert_eq!(get("/api/keys?all=true", &bob).await.status, 403);
    let r = get("/api/keys?all=true", &root).await;
    assert_eq!(r.json().as_array().unwrap().len(), 2, "{}", r.body);
    let r = send(
        c.delete(s.url(&format!("/api/keys/{read_id}")))
            .bearer_auth(&bob),
    )
    .await;
    assert_eq!(
        r.status, 404,
        "another user's key looks missing: {}",
        r.body
    );

    // --- what a key may do ----------------------------------------------------
    let r = get("/api/me", &read_key).await;
    assert_eq!(r.status, 200, "{}\n{}", r.body, s.log());
    let me = r.json();
    assert_eq!(me["user"]["username"], "alice");
    assert_eq!(me["may"]["chat"], false, "a read key does not chat: {me}");
    assert_eq!(me["key"]["id"], read_id.as_str());
    assert!(me["token"].is_null());
    assert_eq!(get("/api/keys", &read_key).await.status, 200, "a key reads");
    let r = post("/api/chat", &read_key, json!({"message": "hi"})).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("read-only"), "{}", r.body);
    let r = post("/api/chat", &chat_key, json!({"message": "hi"})).await;
    assert!(
        ![401, 403].contains(&r.status),
        "a chat key passes authorization: {} {}",
        r.status,
        r.body
    );
    for (path, body) in [
        ("/api/keys", json!({})),
        ("/auth/logout", json!({})),
        (
            "/api/me/password",
            json!({"current_password": "x", "new_password": "y"}),
        ),
        ("/api/me/totp", json!({"password": "x"})),
        // A person with a login answers approvals, never a client's key.
        (
            "/api/sessions/op_000000000000/approval",
            json!({"choice": "once"}),
        ),
    ] {
        let r = post(path, &chat_key, body).await;
        assert_eq!(r.status, 403, "{path}: {}", r.body);
    }
    let r = send(
        c.delete(s.url(&format!("/api/keys/{read_id}")))
            .bearer_auth(&chat_key),
    )
    .await;
    assert_eq!(r.status, 403, "a key cannot revoke keys: {}", r.body);
    // An admin's key reads what the admin reads, but changes no account.
    let root_key = cli(h, &["user", "key", "create", "root", "--scope", "read"])["key"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(get("/api/users", &root_key).await.status, 200);
    let r = send(
        c.patch(s.url("/api/users/bob"))
            .bearer_auth(&root_key)
            .json(&json!({"disabled": true})),
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.body);
    let r = get("/api/me", &root_key).await;
    assert_eq!(r.json()["may"]["manage_users"], false);

    // --- unknown, malformed, hashed, expired -------------------------------
    for bad in [
        format!("hop_{}", "a".repeat(43)),
        "hop_short".to_string(),
        format!("{read_key}x"),
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(read_key.as_bytes())),
    ] {
        let r = get("/api/me", &bad).await;
        assert_eq!(r.status, 401, "{bad}: {}", r.body);
    }
    let soon = cli(h, &["user", "key", "create", "alice", "--expires", "1s"]);
    let soon = soon["key"].as_str().unwrap().to_string();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = get("/api/me", &soon).await;
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.body.contains("expired"), "{}", r.body);

    // --- --rpm on the JSON API --------------------------------------------------
    let slow = cli(h, &["user", "key", "create", "alice", "--rpm", "1"])["key"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(get("/api/me", &slow).await.status, 200);
    let r = get("/api/me", &slow).await;
    assert_eq!(r.status, 429, "{}", r.body);
    assert!(r.header("retry-after").is_some());

    // --- last use is recorded (off the request path, within a moment) ------
    let mut used = false;
    for _ in 0..50 {
        let l = cli(h, &["user", "key", "list", "alice"]);
        if l.as_array()
            .unwrap()
            .iter()
            .any(|k| k["id"] == read_id.as_str() && k["last_used_at"].is_string())
        {
            used = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(used, "last_used_at was never written");

    // --- revocation, then the owner's role change / disabling / deletion ---
    let r = send(
        c.delete(s.url(&format!("/api/keys/{read_id}")))
            .bearer_auth(&alice),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["changed"], true);
    assert_eq!(get("/api/me", &read_key).await.status, 401);
    assert_eq!(get("/api/me", &chat_key).await.status, 200);
    cli(h, &["user", "role", "alice", "viewer"]);
    assert_eq!(
        get("/api/me", &chat_key).await.status,
        401,
        "a role change kills keys"
    );
    cli(h, &["user", "role", "alice", "user"]);
    assert_eq!(get("/api/me", &chat_key).await.status, 401, "…for good");
    let again = cli(h, &["user", "key", "create", "alice"])["key"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(get("/api/me", &again).await.status, 200);
    cli(h, &["user", "disable", "alice"]);
    assert_eq!(
        get("/api/me", &again).await.status,
        401,
        "disabling kills keys"
    );
    cli(h, &["user", "enable", "alice"]);
    assert_eq!(get("/api/me", &again).await.status, 401, "…for good");
    let list = cli(h, &["user", "key", "list", "alice"]);
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .all(|k| k["revoked_at"].is_string() || k["expires_at"].is_string()),
        "{list}"
    );
    let o = op(h)
        .args(["user", "delete", "alice", "--yes"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        cli(h, &["user", "key", "list"]).as_array().unwrap().len(),
        1,
        "root's only"
    );

    // --- the audit log: made and revoked, never the key ----------------------
    let evs = events(h);
    let made: Vec<&Value> = evs
        .iter()
        .filter(|(t, _, _)| t == "key_created")
        .map(|(_, _, d)| d)
        .collect();
    assert_eq!(made.len(), 6, "{made:?}");
    assert!(evs.iter().any(|(t, u, d)| t == "key_revoked"
        && u.as_deref() == Some(alice_id.as_str())
        && d["key_id"] == read_id.as_str()));
    let all = serde_json::to_string(&evs.iter().map(|e| &e.2).collect::<Vec<_>>()).unwrap();
    for k in [&read_key, &chat_key, &again, &slow] {
        assert!(!all.contains(k.as_str()), "a key in the audit log");
    }
    // The access log names the key as the actor.
    assert!(s.log().contains(&format!("alice/{read_id}")), "{}", s.log());
}
