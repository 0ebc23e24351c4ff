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
    // Works until it expires (a second), then never again.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let r = loop {
        let r = get("/api/me", &soon).await;
        if r.status != 200 || std::time::Instant::now() > deadline {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
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

/// Issue 19: an account's keys cannot grow without bound. At most 20 live
/// keys (409 beyond), at most 30 made in any hour however made (429 with
/// Retry-After over HTTP, exit 6 on the CLI), at most 10 a minute and 30
/// revocations a minute over HTTP (429), keys dead for more than a day are
/// deleted when the owner makes one and by serve's purge, and
/// `GET /api/keys` pages. Each part
/// failed on the build before it (every request succeeded; the list was
/// one unbounded array).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_growth_is_capped_rate_limited_purged_and_paged() {
    let home = TestHome::new();
    let h = home.path();
    configure(h, "");
    add_user(h, "alice", "user");
    let s = Server::start(h);
    let c = client();
    let alice = token(&c, &s, "alice").await;
    let create = || {
        send(
            c.post(s.url("/api/keys"))
                .bearer_auth(&alice)
                .json(&json!({"label": "k"})),
        )
    };
    let throttled = |r: &serve_common::Resp, what: &str| {
        assert_eq!(r.status, 429, "{what}: {}", r.body);
        assert_eq!(r.json()["error"]["code"], "too_many_requests", "{}", r.body);
        assert!(r.json()["error"]["message"].is_string(), "{}", r.body);
        let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
        assert!((1..=3600).contains(&retry), "{what}: Retry-After {retry}");
    };
    let cli_create = || {
        op(h)
            .args(["--json", "user", "key", "create", "alice"])
            .output()
            .unwrap()
    };

    // --- 10 a minute over HTTP ------------------------------------------------
    let mut ids = Vec::new();
    for _ in 0..10 {
        let r = create().await;
        assert_eq!(r.status, 200, "{}", r.body);
        ids.push(r.json()["id"].as_str().unwrap().to_string());
    }
    throttled(&create().await, "the 11th key in a minute");

    // --- 20 live keys at most (the CLI has no per-minute limit) --------------
    for _ in 0..10 {
        let o = cli_create();
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let o = cli_create();
    assert_eq!(o.status.code(), Some(10), "{}", stderr(&o));
    assert!(stderr(&o).contains("20 live API keys"), "{}", stderr(&o));

    // --- revocations: 30 a minute over HTTP ----------------------------------
    for id in &ids {
        let r = send(
            c.delete(s.url(&format!("/api/keys/{id}")))
                .bearer_auth(&alice),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    for _ in 0..20 {
        let r = send(
            c.delete(s.url(&format!("/api/keys/{}", ids[0])))
                .bearer_auth(&alice),
        )
        .await;
        assert_eq!(r.json()["changed"], false, "{}", r.body);
    }
    throttled(
        &send(
            c.delete(s.url(&format!("/api/keys/{}", ids[1])))
                .bearer_auth(&alice),
        )
        .await,
        "the 31st revocation in a minute",
    );

    // --- 30 made in an hour, whoever makes them --------------------------------
    for _ in 0..10 {
        let o = cli_create();
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let o = cli_create();
    assert_eq!(o.status.code(), Some(6), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("within the last hour"),
        "{}",
        stderr(&o)
    );

    // --- paging ---------------------------------------------------------------
    let page = |q: String| send(c.get(s.url(&format!("/api/keys?{q}"))).bearer_auth(&alice));
    let all = page(String::new()).await;
    assert_eq!(all.status, 200, "{}", all.body);
    let all: Vec<String> = all
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(all.len(), 30, "default limit 100 holds them all");
    let mut paged = Vec::new();
    let mut offset = 0;
    loop {
        let r = page(format!("limit=7&offset={offset}")).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let got = r.json().as_array().unwrap().clone();
        assert!(got.len() <= 7);
        paged.extend(got.iter().map(|k| k["id"].as_str().unwrap().to_string()));
        if got.len() < 7 {
            break;
        }
        offset += 7;
    }
    assert_eq!(paged, all, "pages in the same order, none missing or twice");
    for bad in [
        "limit=0",
        "limit=501",
        "limit=x",
        "offset=-1",
        "offset=1000001",
    ] {
        let r = page(bad.into()).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
        assert_eq!(r.json()["error"]["code"], "usage", "{}", r.body);
    }

    // --- revoked more than a day ago: deleted when the owner makes a key -----
    // One more revoked (by the CLI: HTTP revocations are spent), so there is
    // room for a live key; then all 11 backdated in users.db (their
    // revocation, and their making, so the hourly window has room again).
    let o = op(h)
        .args(["user", "key", "revoke", &all[0]])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let db = rusqlite::Connection::open(h.join("plugins/operator/users.db")).unwrap();
    let n = db
        .execute(
            "UPDATE api_keys SET revoked_at = '2020-01-01T00:00:00.000000Z',
               created_at = '2020-01-01T00:00:00.000000Z' WHERE revoked_at IS NOT NULL",
            [],
        )
        .unwrap();
    assert_eq!(n, 11);
    drop(db);
    let o = cli_create();
    assert!(o.status.success(), "{}", stderr(&o));
    let left = cli(h, &["user", "key", "list", "alice"]);
    let left = left.as_array().unwrap();
    assert_eq!(left.len(), 20, "the 11 long-revoked keys are gone");
    assert!(left.iter().all(|k| k["revoked_at"].is_null()), "{left:?}");
    for id in &ids {
        assert!(!left.iter().any(|k| k["id"] == id.as_str()));
    }
    // Their history stays in the audit log.
    let revoked = events(h)
        .into_iter()
        .filter(|e| e.0 == "key_revoked")
        .count();
    assert_eq!(revoked, 11);

    // --- and by serve's purge, without any key being made (at its start
    // and every 10 minutes, with the token purge) --------------------------
    let victim = left[0]["id"].as_str().unwrap().to_string();
    let o = op(h)
        .args(["user", "key", "revoke", &victim])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let db = rusqlite::Connection::open(h.join("plugins/operator/users.db")).unwrap();
    db.execute(
        "UPDATE api_keys SET revoked_at = '2020-01-01T00:00:00.000000Z' WHERE id = ?1",
        [&victim],
    )
    .unwrap();
    drop(db);
    drop(s);
    let s = Server::start(h);
    let listed = || cli(h, &["user", "key", "list", "alice"]);
    let mut purged = false;
    for _ in 0..200 {
        if !listed()
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["id"] == victim.as_str())
        {
            purged = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(purged, "serve never purged {victim}: {}", s.log());
    assert_eq!(listed().as_array().unwrap().len(), 19);
}

/// Authorization as types: every route's guard decides, never its path.
/// Walk the documented routes with an admin's `chat` key (the widest a key
/// gets): each route that changes something, but the two chat routes, says
/// a login is needed; each read passes authorization. `GET /api/me` shows
/// the same permissions value the guards decided with.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_that_changes_something_refuses_a_key() {
    let home = TestHome::new();
    let h = home.path();
    configure(h, "");
    add_user(h, "root", "admin");
    let s = Server::start(h);
    let c = client();
    let root = token(&c, &s, "root").await;
    let r = send(
        c.post(s.url("/api/keys"))
            .bearer_auth(&root)
            .json(&json!({"label": "widest", "scope": "chat"})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let key = r.json()["key"].as_str().unwrap().to_string();
    let me = send(c.get(s.url("/api/me")).bearer_auth(&key)).await.json();
    assert_eq!(
        me["may"],
        json!({"chat": true, "read_all_sessions": true, "audit": true, "read_users": true,
               "manage_users": false, "see_approvals": true, "answer_approvals": false,
               "edit_sessions": false, "own_account": false}),
        "{me}"
    );
    let login = send(c.get(s.url("/api/me")).bearer_auth(&root))
        .await
        .json();
    assert!(
        login["may"]
            .as_object()
            .unwrap()
            .values()
            .all(|v| v == true),
        "an admin's login may do everything: {login}"
    );
    // The key form's toolset choices: the operator's agent.enabled_toolsets.
    assert_eq!(
        login["key_toolsets"],
        json!(["web", "file", "skills"]),
        "{login}"
    );

    let doc: Value = send(c.get(s.url("/api/openapi.json"))).await.json();
    let (mut changes, mut reads) = (0, 0);
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (m, _) in item.as_object().unwrap() {
            let p = path
                .replace("{id}", "op_000000000000")
                .replace("{session_id}", "op_000000000000")
                .replace("{username}", "root");
            let method: reqwest::Method = m.to_uppercase().parse().unwrap();
            let r = send(
                c.request(method.clone(), s.url(&p))
                    .bearer_auth(&key)
                    .json(&json!({})),
            )
            .await;
            let public = [
                "/healthz",
                "/api/openapi.json",
                "/",
                "/auth/login",
                "/auth/refresh",
                // Single sign-on: anyone (no credential is taken there).
                "/auth/methods",
                "/auth/oidc/start",
                "/auth/oidc/callback",
                "/auth/oidc/exchange",
            ]
            .contains(&path.as_str());
            if public {
                continue;
            }
            let chat = path == "/api/chat" || path == "/v1/chat/completions";
            if method == reqwest::Method::GET || chat {
                reads += 1;
                assert!(
                    r.status != 401 && r.status != 403,
                    "{m} {path}: an admin's chat key passes authorization: {} {}",
                    r.status,
                    r.body
                );
            } else {
                changes += 1;
                assert_eq!(r.status, 403, "{m} {path}: {}", r.body);
                assert!(
                    r.body.contains("need a login"),
                    "{m} {path}: says a login is needed: {}",
                    r.body
                );
            }
        }
    }
    assert!(
        changes >= 12 && reads >= 14,
        "{changes} changes, {reads} reads"
    );
}
