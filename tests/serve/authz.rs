//! The authorization matrix of `hermes-operator serve` (docs/design.md §4, §9): every
//! route × every kind of caller × own vs another user's session → the exact
//! status, and never another user's data in a body.
//!
//! state.db is made by the REAL Hermes 0.19.0 (tests/fixtures/hermes_fixture.py
//! through Hermes' own SessionDB). Hermes' API server is NOT running here:
//! authorization must be decided before Hermes is contacted, so an
//! authorized chat or models request gets 502 and an unauthorized one 401/403.
use crate::common;
use crate::common::serve as serve_common;

use common::{add_user, fixture, open_ro, Gen, TestHome, TEST_PASSWORD};
use hermes_operator::app::App;
use hermes_operator::home::Home;
use hermes_operator::store::events::Actor;
use serde_json::{json, Value};
use serve_common::{client, configure, send, token, Resp, Server, JWT_SECRET};
use std::collections::HashMap;

fn app(home: &std::path::Path) -> App {
    App::load(Home::at(home), Actor::new("test"), |_| {}).unwrap()
}

/// Operator session ids per user id, and some native ids.
fn sessions_by_user(db: &std::path::Path) -> HashMap<String, Vec<String>> {
    let c = open_ro(db);
    let mut st = c
        .prepare("SELECT user_id, id FROM sessions WHERE source = 'operator' ORDER BY id")
        .unwrap();
    let mut m: HashMap<String, Vec<String>> = HashMap::new();
    for r in st
        .query_map([], |r| {
            Ok((r.get::<_, Option<String>>(0)?, r.get::<_, String>(1)?))
        })
        .unwrap()
    {
        let (u, id) = r.unwrap();
        m.entry(u.unwrap_or_default()).or_default().push(id);
    }
    m
}

/// A token like ours but with `alg: none` and no signature.
fn alg_none(valid: &str) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let payload = valid.split('.').nth(1).unwrap();
    format!(
        "{}.{}.",
        b64.encode(br#"{"alg":"none","typ":"JWT"}"#),
        payload
    )
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum R {
    Admin,
    Auditor,
    User,
    Viewer,
}

struct Case {
    name: String,
    method: &'static str,
    path: String,
    body: Option<Value>,
    /// Expected status for admin, auditor, user, viewer.
    expect: [u16; 4],
}

fn case(
    name: &str,
    method: &'static str,
    path: &str,
    body: Option<Value>,
    expect: [u16; 4],
) -> Case {
    Case {
        name: name.into(),
        method,
        path: path.into(),
        body,
        expect,
    }
}

async fn call(
    c: &reqwest::Client,
    s: &Server,
    tok: Option<&str>,
    m: &str,
    path: &str,
    body: &Option<Value>,
) -> Resp {
    let mut rb = match m {
        "GET" => c.get(s.url(path)),
        "POST" => c.post(s.url(path)),
        "PATCH" => c.patch(s.url(path)),
        "DELETE" => c.delete(s.url(path)),
        _ => unreachable!(),
    };
    if let Some(t) = tok {
        rb = rb.bearer_auth(t);
    }
    if let Some(b) = body {
        rb = rb.json(b);
    }
    send(rb).await
}

fn assert_error_shape(r: &Resp, what: &str) {
    let v = r.json();
    assert!(
        v["error"]["code"].is_string() && v["error"]["message"].is_string(),
        "{what}: error body shape: {}",
        r.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_matrix() {
    let home = TestHome::new();
    let h = home.path().to_path_buf();
    configure(&h, "");
    let mut ids = HashMap::new();
    for (name, role) in [
        ("root", "admin"),
        ("audrey", "auditor"),
        ("alice", "user"),
        ("bob", "user"),
        ("vera", "viewer"),
        ("dave", "user"),
        ("erin", "user"),
        ("fred", "user"),
        ("gail", "user"),
    ] {
        ids.insert(name, add_user(&h, name, role));
    }
    for (name, role) in [
        ("temp_admin", "user"),
        ("temp_auditor", "user"),
        ("temp_user", "user"),
        ("temp_viewer", "user"),
    ] {
        add_user(&h, name, role);
    }
    let owners = ["root", "audrey", "alice", "bob", "vera"]
        .iter()
        .map(|n| ids[n].clone())
        .collect::<Vec<_>>()
        .join(",");
    let made = fixture(
        Gen::H022,
        &[
            "make",
            "--db",
            &home.state_db().to_string_lossy(),
            "--native",
            "8",
            "--operator",
            "25",
            "--users",
            &owners,
            "--seed",
            "11",
        ],
    );
    let native = made["native_ids_sample"][0].as_str().unwrap().to_string();
    let a = app(&h);
    let open: HashMap<&str, String> = ["root", "alice", "bob"]
        .iter()
        .map(|n| {
            (
                *n,
                hermes_operator::ops::sessions::new_session(&a, n)
                    .unwrap()
                    .session
                    .id,
            )
        })
        .collect();
    let by_user = sessions_by_user(&home.state_db());
    let fixture_of = |n: &str| {
        by_user[&ids[n]]
            .iter()
            .find(|s| !open.values().any(|o| o == *s))
            .unwrap()
            .clone()
    };
    let bob_sessions: Vec<String> = by_user[&ids["bob"]].clone();
    assert!(bob_sessions.len() >= 5);

    let s = Server::start(&h);
    let c = client();
    let mut tok = HashMap::new();
    for n in [
        "root", "audrey", "alice", "vera", "dave", "erin", "fred", "gail",
    ] {
        tok.insert(n, token(&c, &s, n).await);
    }
    // Tokens and keys that must not work any more, and forged ones.
    let key_of = |n: &str| {
        hermes_operator::ops::keys::create(&a, n, &Default::default())
            .unwrap()
            .key
    };
    let (dave_key, gail_key) = (key_of("dave"), key_of("gail"));
    let revoked = hermes_operator::ops::keys::create(&a, "alice", &Default::default()).unwrap();
    hermes_operator::ops::keys::revoke(&a, &revoked.info.id, None).unwrap();
    hermes_operator::ops::accounts::set_disabled(&a, "dave", true).unwrap();
    hermes_operator::ops::accounts::set_password(&a, "erin", "another long password", false)
        .unwrap();
    hermes_operator::ops::accounts::delete_user(&a, "fred").unwrap();
    hermes_operator::ops::accounts::set_role(
        &a,
        "gail",
        hermes_operator::store::users::Role::Viewer,
    )
    .unwrap();
    let (expired, _) = hermes_operator::ops::credentials::issue_access_token(
        JWT_SECRET.as_bytes(),
        &ids["alice"],
        "alice",
        hermes_operator::store::users::Role::User,
        1,
        -1,
        None,
    )
    .unwrap();
    let (foreign, _) = hermes_operator::ops::credentials::issue_access_token(
        b"a-completely-different-secret-of-32-bytes",
        &ids["alice"],
        "alice",
        hermes_operator::store::users::Role::Admin,
        1,
        60,
        None,
    )
    .unwrap();
    let none = alg_none(&tok["root"]);
    let bob_key = hermes_operator::ops::keys::create(&a, "bob", &Default::default())
        .unwrap()
        .info
        .id;
    let bad: Vec<(&str, Option<String>)> = vec![
        ("no token", None),
        ("garbage", Some("not.a.jwt".into())),
        ("expired", Some(expired)),
        ("other secret", Some(foreign)),
        ("alg none", Some(none)),
        ("before password change", Some(tok["erin"].clone())),
        ("disabled user", Some(tok["dave"].clone())),
        ("deleted user", Some(tok["fred"].clone())),
        ("before role change", Some(tok["gail"].clone())),
        ("unknown key", Some(format!("hop_{}", "A".repeat(43)))),
        ("revoked key", Some(revoked.key.clone())),
        ("key of a disabled user", Some(dave_key)),
        ("key before role change", Some(gail_key)),
    ];

    let roles = [
        (R::Admin, "root"),
        (R::Auditor, "audrey"),
        (R::User, "alice"),
        (R::Viewer, "vera"),
    ];
    let own = |r: R| match r {
        R::Admin => fixture_of("root"),
        R::Auditor => fixture_of("audrey"),
        R::User => fixture_of("alice"),
        R::Viewer => fixture_of("vera"),
    };
    let own_open = |r: R| match r {
        R::Admin => open["root"].clone(),
        R::User => open["alice"].clone(),
        R::Auditor => fixture_of("audrey"),
        R::Viewer => fixture_of("vera"),
    };
    let other = fixture_of("bob");
    let other_open = open["bob"].clone();
    let mut checked = 0;

    for (role, name) in roles {
        let t = tok[name].clone();
        let ri = role as usize;
        let cases = vec![
            case("me", "GET", "/api/me", None, [200; 4]),
            case(
                "password, wrong current",
                "POST",
                "/api/me/password",
                Some(
                    json!({"current_password": "not the password at all", "new_password": "a brand new password"}),
                ),
                [403; 4],
            ),
            case(
                "totp, wrong password",
                "POST",
                "/api/me/totp",
                Some(json!({"current_password": "not the password at all"})),
                [403; 4],
            ),
            case(
                "totp confirm, wrong password",
                "POST",
                "/api/me/totp/confirm",
                Some(json!({"current_password": "not the password at all", "code": "123456"})),
                [403; 4],
            ),
            case(
                "totp confirm, none pending",
                "POST",
                "/api/me/totp/confirm",
                Some(json!({"current_password": TEST_PASSWORD, "code": "123456"})),
                [404; 4],
            ),
            case("models (Hermes down)", "GET", "/api/models", None, [502; 4]),
            case(
                "chat new",
                "POST",
                "/api/chat",
                Some(json!({"message": "hi"})),
                [502, 403, 502, 403],
            ),
            case(
                "chat own",
                "POST",
                "/api/chat",
                Some(json!({"message": "hi", "session_id": own_open(role)})),
                [502, 403, 502, 403],
            ),
            // As GET: a session the caller may not read is missing (404,
            // nothing marked busy); one an admin may read but not continue, 403.
            case(
                "chat other's",
                "POST",
                "/api/chat",
                Some(json!({"message": "hi", "session_id": other_open})),
                [403, 403, 404, 403],
            ),
            case(
                "chat native",
                "POST",
                "/api/chat",
                Some(json!({"message": "hi", "session_id": native})),
                [404, 403, 404, 403],
            ),
            case(
                "approval own",
                "POST",
                &format!("/api/sessions/{}/approval", own_open(role)),
                Some(json!({"choice": "once"})),
                [404, 403, 404, 403],
            ),
            case(
                "approval other's",
                "POST",
                &format!("/api/sessions/{other_open}/approval"),
                Some(json!({"choice": "deny"})),
                [404, 403, 404, 403],
            ),
            case("list", "GET", "/api/sessions", None, [200; 4]),
            case(
                "list ?user=bob",
                "GET",
                "/api/sessions?user=bob",
                None,
                [200, 200, 403, 403],
            ),
            case(
                "list ?user=self",
                "GET",
                &format!("/api/sessions?user={name}&limit=5"),
                None,
                [200; 4],
            ),
            case(
                "show own",
                "GET",
                &format!("/api/sessions/{}", own(role)),
                None,
                [200; 4],
            ),
            case(
                "show other's",
                "GET",
                &format!("/api/sessions/{other}"),
                None,
                [200, 200, 404, 404],
            ),
            case(
                "show native",
                "GET",
                &format!("/api/sessions/{native}"),
                None,
                [404; 4],
            ),
            case(
                "messages own",
                "GET",
                &format!("/api/sessions/{}/messages", own(role)),
                None,
                [200; 4],
            ),
            case(
                "messages other's",
                "GET",
                &format!("/api/sessions/{other}/messages"),
                None,
                [200, 200, 404, 404],
            ),
            case("search", "GET", "/api/search?q=the", None, [200; 4]),
            case(
                "daily",
                "GET",
                "/api/audit/daily-summary?tz=UTC",
                None,
                [200, 200, 403, 403],
            ),
            case(
                "audit user",
                "GET",
                "/api/audit/user/bob",
                None,
                [200, 200, 403, 403],
            ),
            case(
                "audit self",
                "GET",
                &format!("/api/audit/user/{name}"),
                None,
                [200, 200, 403, 403],
            ),
            case(
                "replay",
                "GET",
                &format!("/api/audit/replay/{other_open}"),
                None,
                [200, 200, 403, 403],
            ),
            case(
                "verify",
                "GET",
                "/api/audit/verify",
                None,
                [200, 200, 403, 403],
            ),
            case("users", "GET", "/api/users", None, [200, 403, 403, 403]),
            case(
                "patch user",
                "PATCH",
                "/api/users/temp_user",
                Some(json!({"disabled": false})),
                [200, 403, 403, 403],
            ),
            case(
                "reset password",
                "POST",
                "/api/users/temp_user/password",
                Some(json!({"new_password": "a reset password 123"})),
                [200, 403, 403, 403],
            ),
            case(
                "register",
                "POST",
                "/auth/register",
                Some(
                    json!({"username": format!("new_{name}"), "password": TEST_PASSWORD, "role": "viewer"}),
                ),
                [201, 403, 403, 403],
            ),
            case(
                "delete user",
                "DELETE",
                &format!(
                    "/api/users/temp_{}",
                    ["admin", "auditor", "user", "viewer"][ri]
                ),
                None,
                [200, 403, 403, 403],
            ),
            case(
                "pending approvals",
                "GET",
                "/api/approvals",
                None,
                [200, 403, 200, 403],
            ),
            case(
                "events",
                "GET",
                "/api/audit/events?type=login&limit=5",
                None,
                [200, 200, 403, 403],
            ),
            case(
                "export other's",
                "GET",
                &format!("/api/sessions/{other}/export?format=md"),
                None,
                [200, 200, 404, 404],
            ),
            case(
                "rename other's",
                "PATCH",
                &format!("/api/sessions/{other_open}"),
                Some(json!({"title": format!("renamed by {name}")})),
                [200, 403, 404, 403],
            ),
            case(
                "end own",
                "POST",
                &format!("/api/sessions/{}/end", own_open(role)),
                Some(json!({})),
                [200, 403, 200, 403],
            ),
            case("keys own", "GET", "/api/keys", None, [200; 4]),
            case(
                "keys all",
                "GET",
                "/api/keys?all=true",
                None,
                [200, 403, 403, 403],
            ),
            case(
                "keys of bob",
                "GET",
                "/api/keys?user=bob",
                None,
                [200, 403, 403, 403],
            ),
            case(
                "key create",
                "POST",
                "/api/keys",
                Some(json!({"label": "matrix", "scope": "read"})),
                [200; 4],
            ),
            case(
                "key revoke bob's",
                "DELETE",
                &format!("/api/keys/{bob_key}"),
                None,
                [200, 404, 404, 404],
            ),
            case("v1 models", "GET", "/v1/models", None, [502; 4]),
            case(
                "v1 chat",
                "POST",
                "/v1/chat/completions",
                Some(json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]})),
                [502, 403, 502, 403],
            ),
            case("healthz", "GET", "/healthz", None, [200; 4]),
            case("openapi", "GET", "/api/openapi.json", None, [200; 4]),
            case("dashboard", "GET", "/", None, [200; 4]),
        ];
        for cs in &cases {
            let r = call(&c, &s, Some(&t), cs.method, &cs.path, &cs.body).await;
            let want = cs.expect[ri];
            assert_eq!(
                r.status, want,
                "{role:?} {}: {} {} → {}",
                cs.name, cs.method, cs.path, r.body
            );
            checked += 1;
            if r.status >= 400 {
                assert_error_shape(&r, &cs.name);
            }
            // Authorization before validation: a role refused with 403 is
            // refused the same with a malformed body and query, so it never
            // learns a route's field names from 400s.
            if want == 403
                && ![
                    "password, wrong current",
                    "totp, wrong password",
                    "totp confirm, wrong password",
                    "chat other's",
                ]
                .contains(&cs.name.as_str())
            {
                let sep = if cs.path.contains('?') { '&' } else { '?' };
                let path = format!("{}{sep}limit=-x&date=%zz&nonsense=1", cs.path);
                let mut rb = match cs.method {
                    "GET" => c.get(s.url(&path)),
                    "POST" => c.post(s.url(&path)),
                    "PATCH" => c.patch(s.url(&path)),
                    "DELETE" => c.delete(s.url(&path)),
                    _ => unreachable!(),
                };
                rb = rb
                    .bearer_auth(&t)
                    .header("content-type", "application/json")
                    .body(r#"{"role": ["#);
                let bad = send(rb).await;
                assert_eq!(
                    bad.status, 403,
                    "{role:?} {} with a malformed body: {}",
                    cs.name, bad.body
                );
                assert_error_shape(&bad, &cs.name);
                checked += 1;
            }
            // Users and viewers never see another user's data, allowed or not.
            if matches!(role, R::User | R::Viewer) || r.status >= 400 {
                for sid in bob_sessions.iter().filter(|x| {
                    !cs.path.contains(x.as_str())
                        && !cs
                            .body
                            .as_ref()
                            .is_some_and(|b| b.to_string().contains(x.as_str()))
                }) {
                    assert!(
                        !r.body.contains(sid.as_str()),
                        "{role:?} {}: body leaks bob's session {sid}: {}",
                        cs.name,
                        r.body
                    );
                }
                if !(cs.name == "audit user" && r.status == 200) {
                    assert!(
                        !r.body.contains(&ids["bob"]),
                        "{role:?} {}: body leaks bob's id: {}",
                        cs.name,
                        r.body
                    );
                }
            }
            if cs.name == "list" || cs.name == "search" {
                let v = r.json();
                let rows: Vec<Value> = if cs.name == "list" {
                    v.as_array().unwrap().clone()
                } else {
                    v["hits"].as_array().unwrap().clone()
                };
                for row in &rows {
                    let uid = row["user_id"].as_str().unwrap_or("");
                    match role {
                        R::User | R::Viewer => {
                            assert_eq!(uid, ids[name], "{role:?} {}: {row}", cs.name)
                        }
                        _ => assert!(row["source"] == "operator" || cs.name == "search", "{row}"),
                    }
                }
                if cs.name == "list" {
                    assert!(!rows.is_empty(), "{role:?} list is empty");
                }
            }
            if cs.name == "list ?user=bob" && r.status == 200 {
                for row in r.json().as_array().unwrap() {
                    assert_eq!(row["user_id"], ids["bob"]);
                }
            }
        }
        // Denied deletes deleted nothing.
        if role != R::Admin {
            let tname = format!("temp_{}", ["admin", "auditor", "user", "viewer"][ri]);
            assert!(
                a.users_ro().unwrap().find(&tname).unwrap().is_some(),
                "{tname} was deleted by {role:?}"
            );
        }
        // Every authenticated route refuses every bad credential, the same way.
        if role == R::Admin {
            for (what, bt) in &bad {
                for cs in cases
                    .iter()
                    .filter(|c| !["healthz", "openapi", "dashboard"].contains(&c.name.as_str()))
                {
                    let r = call(&c, &s, bt.as_deref(), cs.method, &cs.path, &cs.body).await;
                    assert_eq!(
                        r.status, 401,
                        "{what}: {} {} {} → {}",
                        cs.name, cs.method, cs.path, r.body
                    );
                    assert!(
                        r.header("www-authenticate")
                            .unwrap_or_default()
                            .starts_with("Bearer"),
                        "{what}: {}",
                        cs.name
                    );
                    assert_error_shape(&r, what);
                    // OpenAI's clients expect their own code under /v1.
                    let code = if cs.path.starts_with("/v1/") {
                        "invalid_api_key"
                    } else {
                        "unauthorized"
                    };
                    assert_eq!(r.json()["error"]["code"], code, "{what}: {}", cs.name);
                    assert!(!r.body.contains(&ids["bob"]) && !r.body.contains(&other));
                    checked += 1;
                }
                // Public routes stay public.
                for p in ["/healthz", "/api/openapi.json", "/"] {
                    assert_eq!(
                        call(&c, &s, bt.as_deref(), "GET", p, &None).await.status,
                        200,
                        "{what} {p}"
                    );
                }
            }
        }
    }
    // The admin's delete really deleted; the registrations really happened.
    assert!(a.users_ro().unwrap().find("temp_admin").unwrap().is_none());
    assert!(a.users_ro().unwrap().find("new_root").unwrap().is_some());
    assert!(a.users_ro().unwrap().find("new_alice").unwrap().is_none());
    // Logout: the token stops working at once, for every role.
    for (_, name) in roles {
        let t = token(&c, &s, name).await;
        let r = call(&c, &s, Some(&t), "POST", "/auth/logout", &None).await;
        assert_eq!(r.status, 200, "{name} logout: {}", r.body);
        assert_eq!(
            call(&c, &s, Some(&t), "GET", "/api/me", &None).await.status,
            401,
            "{name} after logout"
        );
    }
    // No Hermes contact for refused chats: nothing but the authorized 502s reached the (closed) port.
    assert!(checked > 250, "{checked}");
    // The access log never carries tokens or passwords.
    let log = s.log();
    assert!(
        !log.contains(&tok["root"]) && !log.contains(TEST_PASSWORD),
        "secrets in the access log"
    );
}
