//! `hermes-operator serve` as HTTP: login throttling and `Retry-After`,
//! refresh rotation and reuse detection, logout, CORS, trusted proxies, body
//! limit, security headers, JSON 404/405, request ids, the query-parameter
//! login, refusing to start without a JWT secret, SIGTERM, and every route
//! of openapi.json being routed.
use crate::common;
use crate::common::serve as serve_common;

use common::{add_user, op, TestHome, TEST_PASSWORD};
use serde_json::{json, Value};
use serve_common::{client, configure, events, login, send, token, Server};
use std::time::Duration;

fn home_with(yaml: &str, users: &[(&str, &str)]) -> TestHome {
    let home = TestHome::new();
    configure(home.path(), yaml);
    for (n, r) in users {
        add_user(home.path(), n, r);
    }
    home
}

async fn bad_login(
    c: &reqwest::Client,
    s: &Server,
    user: &str,
    ip: Option<&str>,
) -> serve_common::Resp {
    let mut rb = c
        .post(s.url("/auth/login"))
        .json(&json!({"username": user, "password": "wrong password, long enough"}));
    if let Some(ip) = ip {
        rb = rb.header("x-real-ip", ip);
    }
    send(rb).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_throttling_per_user_address_and_per_address() {
    let home = home_with("", &[("alice", "user"), ("bob", "user")]);
    let s = Server::start(home.path());
    let c = client();
    // Per username and address: 5 failures in 15 minutes, then 429 — even
    // with the right password.
    for _ in 0..5 {
        let r = bad_login(&c, &s, "alice", Some("198.51.100.7")).await;
        assert_eq!(r.status, 401, "{}", r.body);
        assert_eq!(r.json()["error"]["code"], "unauthorized");
    }
    let r = send(
        c.post(s.url("/auth/login"))
            .header("x-real-ip", "198.51.100.7")
            .json(&json!({"username": "ALICE", "password": TEST_PASSWORD})),
    )
    .await;
    assert_eq!(r.status, 429, "{}", r.body);
    let ra: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((850..=900).contains(&ra), "Retry-After {ra}");
    assert_eq!(r.json()["error"]["code"], "too_many_requests");
    // From another address alice is slowed (her name was tried 5 times), not
    // locked out.
    let t = std::time::Instant::now();
    let r = send(
        c.post(s.url("/auth/login"))
            .header("x-real-ip", "198.51.100.8")
            .json(&json!({"username": "alice", "password": TEST_PASSWORD})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(t.elapsed() >= Duration::from_millis(500), "not slowed down");
    // Another user is not affected.
    login(&c, &s, "bob").await;

    // Per client address (X-Real-IP from a trusted proxy): 20 failures, any usernames.
    for i in 0..20 {
        let r = bad_login(&c, &s, &format!("nobody{i}"), Some("203.0.113.50")).await;
        assert_eq!(r.status, 401, "attempt {i}: {}", r.body);
    }
    let r = send(
        c.post(s.url("/auth/login"))
            .header("x-real-ip", "203.0.113.50")
            .json(&json!({"username": "bob", "password": TEST_PASSWORD})),
    )
    .await;
    assert_eq!(r.status, 429, "{}", r.body);
    assert!(r.header("retry-after").is_some());
    // The same user from another address is fine.
    let r = send(
        c.post(s.url("/auth/login"))
            .header("x-real-ip", "203.0.113.51")
            .json(&json!({"username": "bob", "password": TEST_PASSWORD})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);

    // Every attempt was audited with username and client; never the password.
    let evs = events(home.path());
    let failed: Vec<&Value> = evs
        .iter()
        .filter(|e| e.0 == "login_failed")
        .map(|e| &e.2)
        .collect();
    assert_eq!(failed.len(), 25, "{failed:?}");
    assert_eq!(failed[0]["username"], "alice");
    assert_eq!(failed[0]["client"], "198.51.100.7");
    assert_eq!(failed[0]["reason"], "bad_password");
    assert_eq!(failed[5]["reason"], "unknown_user");
    assert_eq!(failed[5]["client"], "203.0.113.50");
    let logins: Vec<&Value> = evs
        .iter()
        .filter(|e| e.0 == "login")
        .map(|e| &e.2)
        .collect();
    assert_eq!(logins.len(), 3);
    assert_eq!(logins[0]["client"], "198.51.100.8");
    assert_eq!(logins[2]["client"], "203.0.113.51");
    // Each refused key's first refusal is audited, with the limit it hit.
    let throttled: Vec<&Value> = evs
        .iter()
        .filter(|e| e.0 == "login_throttled")
        .map(|e| &e.2)
        .collect();
    assert_eq!(throttled.len(), 2, "{throttled:?}");
    assert_eq!(throttled[0]["limit"], "user_client");
    assert_eq!(throttled[0]["client"], "198.51.100.7");
    assert_eq!(throttled[1]["limit"], "client");
    assert_eq!(throttled[1]["refused"], 1);
    let all = format!("{evs:?}");
    assert!(!all.contains("wrong password") && !all.contains(TEST_PASSWORD));
    assert!(!s.log().contains("wrong password"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_rotation_reuse_and_logout() {
    let home = home_with("", &[("alice", "user")]);
    let s = Server::start(home.path());
    let c = client();
    let t1 = login(&c, &s, "alice").await;
    let r1 = t1["refresh_token"].as_str().unwrap().to_string();
    assert!(t1["expires_in"].as_i64().unwrap() == 7200);
    let refresh = |tok: String| {
        let c = c.clone();
        let url = s.url("/auth/refresh");
        async move { send(c.post(url).json(&json!({"refresh_token": tok}))).await }
    };
    // Rotation: a new pair; the new access token works.
    let r = refresh(r1.clone()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let t2 = r.json();
    let r2 = t2["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(r1, r2);
    let me = send(
        c.get(s.url("/api/me"))
            .bearer_auth(t2["access_token"].as_str().unwrap()),
    )
    .await;
    assert_eq!(me.status, 200);
    // Reuse of the rotated token: 401, the whole family revoked (r2 too), audited.
    let r = refresh(r1.clone()).await;
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.body.contains("already used"), "{}", r.body);
    assert_eq!(refresh(r2.clone()).await.status, 401, "family not revoked");
    let evs = events(home.path());
    let revoked: Vec<&Value> = evs
        .iter()
        .filter(|e| e.0 == "token_revoked")
        .map(|e| &e.2)
        .collect();
    assert_eq!(revoked.len(), 1, "{evs:?}");
    assert_eq!(revoked[0]["reason"], "refresh_token_reuse");
    assert_eq!(revoked[0]["username"], "alice");
    assert_eq!(revoked[0]["revoked"], 2, "both tokens of the family");
    assert!(evs
        .iter()
        .any(|e| e.0 == "token_issued" && e.2["via"] == "refresh"));
    // Garbage and unknown tokens.
    assert_eq!(refresh("rt1.nope".into()).await.status, 401);
    let r = send(
        c.post(s.url("/auth/refresh"))
            .json(&json!({"refresh_token": 5})),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    // A password change ends refresh families too.
    let t3 = login(&c, &s, "alice").await;
    let app = hermes_operator::app::App::load(
        hermes_operator::home::Home::at(home.path()),
        hermes_operator::store::events::Actor::new("test"),
        |_| {},
    )
    .unwrap();
    hermes_operator::ops::accounts::set_password(&app, "alice", "a brand new long password", false)
        .unwrap();
    assert_eq!(
        refresh(t3["refresh_token"].as_str().unwrap().into())
            .await
            .status,
        401
    );
    // Logout with a refresh token revokes its family and the access token.
    hermes_operator::ops::accounts::set_password(&app, "alice", TEST_PASSWORD, false).unwrap();
    let t4 = login(&c, &s, "alice").await;
    let a4 = t4["access_token"].as_str().unwrap();
    let r = send(
        c.post(s.url("/auth/logout"))
            .bearer_auth(a4)
            .json(&json!({"refresh_token": t4["refresh_token"]})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["refresh_tokens_revoked"], 1);
    assert_eq!(
        send(c.get(s.url("/api/me")).bearer_auth(a4)).await.status,
        401
    );
    assert_eq!(
        refresh(t4["refresh_token"].as_str().unwrap().into())
            .await
            .status,
        401
    );
    // Refresh tokens are stored hashed only.
    let db = common::open_ro(&home.path().join("plugins/operator/users.db"));
    let n: i64 = db
        .query_row(
            "SELECT count(*) FROM refresh_tokens WHERE hex(token_hash) = upper(?1) OR CAST(token_hash AS TEXT) = ?1",
            [&r2],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_only_for_configured_origins() {
    let home = home_with(
        "operator:\n  cors_origins: [\"https://ops.example.com\"]\n",
        &[("alice", "user")],
    );
    let s = Server::start(home.path());
    let c = client();
    let pre = |s: &Server, origin: &'static str| {
        c.request(reqwest::Method::OPTIONS, s.url("/api/me"))
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
    };
    let r = send(pre(&s, "https://ops.example.com")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.header("access-control-allow-origin").as_deref(),
        Some("https://ops.example.com")
    );
    assert!(r
        .header("access-control-allow-headers")
        .unwrap()
        .contains("authorization"));
    let r = send(pre(&s, "https://evil.example")).await;
    assert!(
        r.header("access-control-allow-origin").is_none(),
        "{:?}",
        r.headers
    );
    let t = token(&c, &s, "alice").await;
    let r = send(
        c.get(s.url("/api/me"))
            .bearer_auth(&t)
            .header("origin", "https://ops.example.com"),
    )
    .await;
    assert_eq!(
        r.header("access-control-allow-origin").as_deref(),
        Some("https://ops.example.com")
    );
    let r = send(
        c.get(s.url("/api/me"))
            .bearer_auth(&t)
            .header("origin", "https://evil.example"),
    )
    .await;
    assert!(r.header("access-control-allow-origin").is_none());
    drop(s);
    // Nothing configured: no CORS headers at all.
    let home = home_with("", &[("alice", "user")]);
    let s = Server::start(home.path());
    let r = send(pre(&s, "https://ops.example.com")).await;
    assert!(
        r.header("access-control-allow-origin").is_none(),
        "{:?}",
        r.headers
    );
    let r = send(
        c.get(s.url("/healthz"))
            .header("origin", "https://ops.example.com"),
    )
    .await;
    assert!(r.header("access-control-allow-origin").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_address_from_trusted_proxies_only() {
    let c = client();
    // Default config trusts loopback (nginx on the same host).
    let home = home_with("", &[]);
    let s = Server::start(home.path());
    bad_login(&c, &s, "x1", Some("203.0.113.7")).await;
    let r = send(
        c.post(s.url("/auth/login"))
            .header("x-forwarded-for", "198.51.100.9, 127.0.0.1")
            .json(&json!({"username": "x2", "password": "nope nope nope"})),
    )
    .await;
    assert_eq!(r.status, 401);
    bad_login(&c, &s, "x3", Some("not an address")).await;
    let ev = events(home.path());
    let clients: Vec<&str> = ev
        .iter()
        .filter(|e| e.0 == "login_failed")
        .map(|e| e.2["client"].as_str().unwrap())
        .collect();
    assert_eq!(clients, ["203.0.113.7", "198.51.100.9", "127.0.0.1"]);
    let log = s.log_with(" 203.0.113.7 ");
    assert!(log.contains(" 203.0.113.7 "), "{log}");
    drop(s);
    // No trusted proxies: the headers are ignored.
    let home = home_with("operator:\n  trusted_proxies: []\n", &[]);
    let s = Server::start(home.path());
    bad_login(&c, &s, "x1", Some("203.0.113.7")).await;
    let ev = events(home.path());
    let clients: Vec<&str> = ev
        .iter()
        .filter(|e| e.0 == "login_failed")
        .map(|e| e.2["client"].as_str().unwrap())
        .collect();
    assert_eq!(clients, ["127.0.0.1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_headers_errors_and_request_ids() {
    let home = home_with("", &[("alice", "user")]);
    let s = Server::start(home.path());
    let c = client();
    let t = token(&c, &s, "alice").await;
    // Body limit: 64 KiB, announced or streamed.
    let big = json!({"message": "x".repeat(70 * 1024)});
    let r = send(c.post(s.url("/api/chat")).bearer_auth(&t).json(&big)).await;
    assert_eq!(r.status, 413, "{}", r.body);
    assert_eq!(r.json()["error"]["code"], "payload_too_large");
    // The body was never read: the connection cannot be reused, and says so.
    assert_eq!(r.header("connection").as_deref(), Some("close"));
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..80).map(|_| Ok(vec![b' '; 1024])).collect();
    // The server answers (413, or 403: register refuses before reading)
    // and closes without reading the rest; a client still writing then may
    // see its write cut (EPIPE/ECONNRESET) instead of the answer — on a busy
    // machine either comes first. Both mean the body was refused.
    let streamed = c
        .post(s.url("/auth/register"))
        .bearer_auth(&t)
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await;
    match streamed {
        Ok(r) => {
            let status = r.status().as_u16();
            assert!(status == 413 || status == 403, "{status}");
            assert_eq!(
                r.headers().get("connection").and_then(|v| v.to_str().ok()),
                Some("close")
            );
        }
        Err(e) => {
            let chain = format!("{e:?}");
            assert!(
                chain.contains("BrokenPipe") || chain.contains("ConnectionReset"),
                "not a refused body: {chain}"
            );
        }
    }
    let r = send(
        c.post(s.url("/api/chat"))
            .bearer_auth(&t)
            .body("{}")
            .header("content-type", "text/plain"),
    )
    .await;
    assert_eq!(r.status, 415, "{}", r.body);
    let r = send(
        c.post(s.url("/api/chat"))
            .bearer_auth(&t)
            .header("content-type", "application/json")
            .body("{not json"),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.json()["error"]["code"], "usage");
    let r = send(
        c.post(s.url("/api/chat"))
            .bearer_auth(&t)
            .json(&json!({"message": "x", "evil": 1})),
    )
    .await;
    assert_eq!(r.status, 400, "unknown fields are refused: {}", r.body);
    let r = send(c.get(s.url("/api/sessions?limit=abc")).bearer_auth(&t)).await;
    assert_eq!(r.status, 400, "{}", r.body);
    // JSON 404 / 405.
    let r = send(c.get(s.url("/no/such/route"))).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"]["code"], "not_found");
    let r = send(c.put(s.url("/api/me")).bearer_auth(&t)).await;
    assert_eq!(r.status, 405, "{}", r.body);
    assert_eq!(r.json()["error"]["code"], "method_not_allowed");
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("application/json"));
    // Security headers everywhere; no caching of API answers.
    for (path, auth) in [
        ("/api/me", true),
        ("/", false),
        ("/nope", false),
        ("/healthz", false),
    ] {
        let mut rb = c.get(s.url(path));
        if auth {
            rb = rb.bearer_auth(&t);
        }
        let r = send(rb).await;
        assert_eq!(
            r.header("x-content-type-options").as_deref(),
            Some("nosniff"),
            "{path}"
        );
        assert_eq!(
            r.header("x-frame-options").as_deref(),
            Some("DENY"),
            "{path}"
        );
        assert_eq!(
            r.header("referrer-policy").as_deref(),
            Some("no-referrer"),
            "{path}"
        );
        let csp = r.header("content-security-policy").unwrap();
        assert!(
            csp.starts_with("default-src 'self'") && csp.contains("frame-ancestors 'none'"),
            "{csp}"
        );
        if path.starts_with("/api") {
            assert_eq!(
                r.header("cache-control").as_deref(),
                Some("no-store"),
                "{path}"
            );
        }
        assert!(r.header("x-request-id").is_some());
        assert_eq!(r.header("connection"), None, "keep-alive for {path}");
    }
    let r = send(c.get(s.url("/")).header("accept", "text/html")).await;
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    // Request ids: a sane incoming one is kept, a hostile one replaced.
    let r = send(c.get(s.url("/healthz")).header("x-request-id", "abc-123")).await;
    assert_eq!(r.header("x-request-id").as_deref(), Some("abc-123"));
    let r = send(c.get(s.url("/healthz")).header("x-request-id", "a b\"c")).await;
    assert_ne!(r.header("x-request-id").as_deref(), Some("a b\"c"));
    assert!(s.log_with("rid=abc-123").contains("rid=abc-123"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_parameter_login_is_accepted_but_never_logged() {
    let home = home_with("", &[("alice", "user")]);
    let s = Server::start(home.path());
    let c = client();
    let url = format!(
        "{}?username=alice&password={}",
        s.url("/auth/login"),
        TEST_PASSWORD.replace(' ', "%20")
    );
    let r = send(c.post(&url)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.json()["access_token"].is_string());
    let r =
        send(c.post(s.url("/auth/login?username=alice&password=wrong%20password%20here"))).await;
    assert_eq!(r.status, 401);
    // Both logins are logged (the 401 last) before we look for secrets.
    let log = s.log_with("\"POST /auth/login\" 401");
    assert!(log.contains("\"POST /auth/login\" 200"), "{log}");
    assert!(
        !log.contains("password") && !log.contains("horse") && !log.contains("?username"),
        "{log}"
    );
}

#[test]
fn refuses_to_start_without_a_valid_jwt_secret() {
    let home = TestHome::new();
    let o = op(home.path())
        .args(["serve", "--bind", "127.0.0.1:0"])
        .env_remove("OPERATOR_JWT_SECRET")
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(8),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("OPERATOR_JWT_SECRET"));
    let o = op(home.path())
        .args(["serve", "--bind", "127.0.0.1:0"])
        .env("OPERATOR_JWT_SECRET", "too-short")
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(8),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("at least 32"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_route_is_routed_and_sigterm_stops_the_server() {
    let home = home_with("", &[]);
    let mut s = Server::start(home.path());
    let c = client();
    let doc: Value = send(c.get(s.url("/api/openapi.json"))).await.json();
    let mut n = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (m, _) in item.as_object().unwrap() {
            let p = path
                .replace("{id}", "op_000000000000")
                .replace("{session_id}", "op_000000000000")
                .replace("{username}", "nobody");
            let rb = c.request(m.to_uppercase().parse().unwrap(), s.url(&p));
            let r = send(rb).await;
            // Routed: never the router's own 404/405 (public routes answer, the rest want a token).
            assert!(
                !(r.status == 405 || (r.status == 404 && r.body.contains("no such route"))),
                "{m} {path} is documented but not routed: {} {}",
                r.status,
                r.body
            );
            n += 1;
        }
    }
    assert!(n >= 22, "{n}");
    let st = s
        .terminate(Duration::from_secs(10))
        .expect("serve did not stop on SIGTERM");
    assert!(st.success(), "{st:?}");
    let log = s.log_with("shutting down");
    assert!(log.contains("shutting down"), "{log}");
}

/// The session list is served from a cache while state.db and users.db are
/// unchanged; any commit (here: the CLI, as Hermes would) shows at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_list_reflects_every_change_immediately() {
    let home = common::make_home_with_state(common::Gen::H022, 3, 0, &[]);
    configure(home.path(), "");
    add_user(home.path(), "alice", "user");
    let s = Server::start(home.path());
    let c = client();
    let t = token(&c, &s, "alice").await;
    let list = || {
        let c = c.clone();
        let url = s.url("/api/sessions?limit=50");
        let t = t.clone();
        async move {
            let r = send(c.get(url).bearer_auth(t)).await;
            assert_eq!(r.status, 200, "{}", r.body);
            r.json()
        }
    };
    assert_eq!(list().await.as_array().unwrap().len(), 0);
    let new_session = || {
        let o = op(home.path())
            .args(["--json", "session", "new", "--as", "alice"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice::<Value>(&o.stdout).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let id = new_session();
    let l = list().await;
    assert_eq!(l.as_array().unwrap().len(), 1);
    assert_eq!(l[0]["title"], Value::Null);
    // Twice unchanged (the cached body), then a title change shows.
    assert_eq!(list().await, l);
    let o = op(home.path())
        .args(["session", "title", &id, "Fresh title"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(list().await[0]["title"], "Fresh title");
    new_session();
    assert_eq!(list().await.as_array().unwrap().len(), 2);
    // A change in users.db (a rename is not possible; a role change is) is
    // seen too: alice demoted to viewer still lists her own sessions.
    let o = op(home.path())
        .args(["user", "role", "alice", "viewer"])
        .output()
        .unwrap();
    assert!(o.status.success());
    let r = send(c.get(s.url("/api/sessions")).bearer_auth(&t)).await;
    assert_eq!(
        r.status, 401,
        "the role change revoked the token: {}",
        r.body
    );
}

/// Reads until the server closes the connection (or `limit` passes); what
/// was read and how long it took.
fn read_until_closed(s: &mut std::net::TcpStream, limit: Duration) -> (String, Duration) {
    use std::io::Read;
    let t0 = std::time::Instant::now();
    s.set_read_timeout(Some(limit)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!(
                "connection still open after {:?}: {e}; read: {}",
                t0.elapsed(),
                String::from_utf8_lossy(&got)
            ),
        }
    }
    (String::from_utf8_lossy(&got).into_owned(), t0.elapsed())
}

#[test]
fn slow_headers_slow_bodies_and_idle_connections_are_cut_off() {
    use std::io::Write;
    let home = home_with("", &[]);
    let s = Server::start_with(home.path(), &["--read-timeout", "2"]);
    let addr = s.base.trim_start_matches("http://").to_string();

    // Headers dribbled in and never finished: closed after the deadline,
    // although the client kept sending.
    let mut slow = std::net::TcpStream::connect(&addr).unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let mut slow2 = slow.try_clone().unwrap();
    let dribble = std::thread::spawn(move || {
        for i in 0..40 {
            std::thread::sleep(Duration::from_millis(250));
            if slow2
                .write_all(format!("X-Slow-{i}: y\r\n").as_bytes())
                .is_err()
            {
                return;
            }
        }
    });
    let (_, took) = read_until_closed(&mut slow, Duration::from_secs(20));
    assert!(
        took >= Duration::from_millis(1500),
        "closed before the deadline: {took:?}"
    );
    dribble.join().unwrap();

    // A JSON body dribbled in: 408 once the deadline passes, connection closed.
    let mut slow = std::net::TcpStream::connect(&addr).unwrap();
    slow.write_all(
        b"POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{\"username\":",
    )
    .unwrap();
    let mut slow2 = slow.try_clone().unwrap();
    let dribble = std::thread::spawn(move || {
        for _ in 0..40 {
            std::thread::sleep(Duration::from_millis(250));
            if slow2.write_all(b" ").is_err() {
                return;
            }
        }
    });
    let (answer, took) = read_until_closed(&mut slow, Duration::from_secs(20));
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"code\":\"timeout\""), "{answer}");
    assert!(took >= Duration::from_millis(1500), "{took:?}");
    dribble.join().unwrap();
    assert!(s
        .log_with("\"POST /auth/login\" 408")
        .contains("\"POST /auth/login\" 408"));

    // A keep-alive connection: one request answered, then closed when idle.
    let mut idle = std::net::TcpStream::connect(&addr).unwrap();
    idle.write_all(b"GET /api/openapi.json HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let (answer, _) = read_until_closed(&mut idle, Duration::from_secs(20));
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // Meanwhile normal requests are served.
    let mut ok = std::net::TcpStream::connect(&addr).unwrap();
    ok.write_all(b"GET /api/openapi.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let (answer, _) = read_until_closed(&mut ok, Duration::from_secs(20));
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"openapi\""), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_password_change_over_http() {
    let home = home_with("", &[("alice", "user"), ("vera", "viewer")]);
    let s = Server::start(home.path());
    let c = client();
    let old = login(&c, &s, "alice").await;
    let old_access = old["access_token"].as_str().unwrap().to_string();
    let old_refresh = old["refresh_token"].as_str().unwrap().to_string();
    let other = token(&c, &s, "alice").await; // a second device
    let change = |tok: String, body: Value| {
        let c = c.clone();
        let url = s.url("/api/me/password");
        async move { send(c.post(url).bearer_auth(tok).json(&body)).await }
    };
    let new_pw = "a brand new password 42";

    // Refused without changing anything: weak, unknown field, wrong current.
    let r = change(
        old_access.clone(),
        json!({"current_password": TEST_PASSWORD, "new_password": "short"}),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("too short"), "{}", r.body);
    let r = change(
        old_access.clone(),
        json!({"current_password": TEST_PASSWORD, "new_password": new_pw, "user": "root"}),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    let r = change(
        old_access.clone(),
        json!({"current_password": "not my password at all", "new_password": new_pw}),
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(r.json()["error"]["code"], "forbidden");
    let me = send(c.get(s.url("/api/me")).bearer_auth(&old_access)).await;
    assert_eq!(me.status, 200, "a refused change keeps the tokens");

    // The change: a fresh pair; every earlier token is dead; passwords swap.
    let r = change(
        old_access.clone(),
        json!({"current_password": TEST_PASSWORD, "new_password": new_pw}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let fresh = r.json();
    assert_eq!(fresh["user"]["username"], "alice");
    let fresh_access = fresh["access_token"].as_str().unwrap();
    for (what, t) in [("old", &old_access), ("other device", &other)] {
        let me = send(c.get(s.url("/api/me")).bearer_auth(t)).await;
        assert_eq!(me.status, 401, "{what} access token");
    }
    let me = send(c.get(s.url("/api/me")).bearer_auth(fresh_access)).await;
    assert_eq!(me.status, 200, "{}", me.body);
    let r = send(
        c.post(s.url("/auth/refresh"))
            .json(&json!({"refresh_token": old_refresh})),
    )
    .await;
    assert_eq!(r.status, 401, "old refresh token: {}", r.body);
    let r = bad_login(&c, &s, "alice", None).await;
    assert_eq!(r.status, 401);
    let r = send(
        c.post(s.url("/auth/login"))
            .json(&json!({"username": "alice", "password": TEST_PASSWORD})),
    )
    .await;
    assert_eq!(r.status, 401, "the old password no longer logs in");
    let r = send(
        c.post(s.url("/auth/login"))
            .json(&json!({"username": "alice", "password": new_pw})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);

    // Audited: the change as alice over HTTP, the wrong attempt as a failure.
    let evs = events(home.path());
    let changed: Vec<&Value> = evs
        .iter()
        .filter(|e| e.0 == "user_changed" && e.2["change"] == "password")
        .map(|e| &e.2)
        .collect();
    assert_eq!(changed.len(), 1, "{evs:?}");
    let failed = evs
        .iter()
        .filter(|e| e.0 == "login_failed" && e.2["via"] == "password_change")
        .count();
    assert_eq!(failed, 1);
    let actor: String = common::open_ro(&home.path().join("plugins/operator/events.db"))
        .query_row(
            "SELECT actor FROM events WHERE type = 'user_changed'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(actor, "http:alice");

    // Throttled like logins: a viewer guessing with a stolen token gets 429.
    let t = token(&c, &s, "vera").await;
    let mut last = 0;
    for _ in 0..6 {
        last = change(
            t.clone(),
            json!({"current_password": "guess guess guess", "new_password": new_pw}),
        )
        .await
        .status;
    }
    assert_eq!(last, 429);
    // The log never carries either password.
    let log = s.log();
    assert!(!log.contains(new_pw) && !log.contains(TEST_PASSWORD));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_survives_a_restart() {
    let home = home_with("", &[("alice", "user")]);
    let mut s = Server::start(home.path());
    let c = client();
    let gone = token(&c, &s, "alice").await;
    let kept = token(&c, &s, "alice").await;
    let r = send(c.post(s.url("/auth/logout")).bearer_auth(&gone)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(s.terminate(Duration::from_secs(20)).is_some());
    let s = Server::start(home.path());
    let me = send(c.get(s.url("/api/me")).bearer_auth(&gone)).await;
    assert_eq!(me.status, 401, "a logged-out token after a restart");
    let me = send(c.get(s.url("/api/me")).bearer_auth(&kept)).await;
    assert_eq!(
        me.status, 200,
        "another login of the same user: {}",
        me.body
    );
}

/// An admin's reset: every token of the account ends, and its next login
/// may only change the password (403 `password_change_required` elsewhere)
/// until it does; the change opens everything again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_reset_forces_a_password_change_first() {
    let home = TestHome::new();
    configure(home.path(), "");
    add_user(home.path(), "root", "admin");
    add_user(home.path(), "alice", "user");
    let s = Server::start(home.path());
    let c = client();
    let root = token(&c, &s, "root").await;
    let old = token(&c, &s, "alice").await;
    const RESET: &str = "a temporary password 1";
    let r = send(
        c.post(s.url("/api/users/alice/password"))
            .bearer_auth(&root)
            .json(&json!({"new_password": RESET})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["must_change_password"], true);
    assert_eq!(
        send(c.get(s.url("/api/me")).bearer_auth(&old)).await.status,
        401,
        "old tokens end"
    );
    let r = send(
        c.post(s.url("/auth/login"))
            .json(&json!({"username": "alice", "password": RESET})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let tok = r.json()["access_token"].as_str().unwrap().to_string();
    let me = send(c.get(s.url("/api/me")).bearer_auth(&tok)).await;
    assert_eq!(
        me.json()["user"]["must_change_password"],
        true,
        "{}",
        me.body
    );
    for path in ["/api/sessions", "/api/keys", "/api/models"] {
        let r = send(c.get(s.url(path)).bearer_auth(&tok)).await;
        assert_eq!(r.status, 403, "{path}: {}", r.body);
        assert_eq!(
            r.json()["error"]["code"],
            "password_change_required",
            "{path}"
        );
    }
    let r = send(
        c.post(s.url("/api/me/password"))
            .bearer_auth(&tok)
            .json(&json!({"current_password": RESET, "new_password": "alice's own new password"})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let fresh = r.json()["access_token"].as_str().unwrap().to_string();
    let r = send(c.get(s.url("/api/keys")).bearer_auth(&fresh)).await;
    assert_eq!(
        r.status, 200,
        "the change opens everything again: {}",
        r.body
    );
    let evs = events(home.path());
    assert!(
        evs.iter()
            .any(|(t, _, d)| t == "user_changed" && d["change"] == "password_reset"),
        "{evs:?}"
    );
}

/// Issue 19: the HTTP reset revokes the account's personal API keys and
/// says how many (`keys_revoked`), each audited as `key_revoked`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_reset_revokes_the_accounts_keys() {
    let home = TestHome::new();
    configure(home.path(), "");
    add_user(home.path(), "root", "admin");
    add_user(home.path(), "alice", "user");
    let key = |name: &str| common::op_json(home.path(), &["user", "key", "create", name]);
    let (k1, k2, root_key) = (key("alice"), key("alice"), key("root"));
    let s = Server::start(home.path());
    let c = client();
    let me = |k: &str| send(c.get(s.url("/api/me")).bearer_auth(k.to_string()));
    assert_eq!(me(k1["key"].as_str().unwrap()).await.status, 200);
    let root = token(&c, &s, "root").await;
    const RESET: &str = "a temporary password 1";
    let r = send(
        c.post(s.url("/api/users/alice/password"))
            .bearer_auth(&root)
            .json(&json!({"new_password": RESET})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["keys_revoked"], 2, "{}", r.body);
    assert_eq!(r.json()["must_change_password"], true);
    for k in [&k1, &k2] {
        let r = me(k["key"].as_str().unwrap()).await;
        assert_eq!(r.status, 401, "{}", r.body);
        assert_eq!(r.json()["error"]["message"], "this API key was revoked");
    }
    assert_eq!(
        me(root_key["key"].as_str().unwrap()).await.status,
        200,
        "another account's key"
    );
    let evs = events(home.path());
    let revoked: Vec<&Value> = evs
        .iter()
        .filter(|(t, _, _)| t == "key_revoked")
        .map(|(_, _, d)| d)
        .collect();
    assert_eq!(revoked.len(), 2, "{revoked:?}");
    for k in [&k1, &k2] {
        assert!(
            revoked
                .iter()
                .any(|d| d["key_id"] == k["id"] && d["reason"] == "password_reset"),
            "{revoked:?}"
        );
    }
}

/// Issue 19: after an admin's reset the user cannot "change" the reset
/// password to itself (400, the JSON error shape, nothing changes); another
/// one opens the account again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_password_cannot_be_kept() {
    let home = TestHome::new();
    configure(home.path(), "");
    add_user(home.path(), "root", "admin");
    add_user(home.path(), "alice", "user");
    let s = Server::start(home.path());
    let c = client();
    let root = token(&c, &s, "root").await;
    const RESET: &str = "a temporary password 1";
    let r = send(
        c.post(s.url("/api/users/alice/password"))
            .bearer_auth(&root)
            .json(&json!({"new_password": RESET})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    // The reset password may not be kept.
    let r = send(
        c.post(s.url("/auth/login"))
            .json(&json!({"username": "alice", "password": RESET})),
    )
    .await;
    let tok = r.json()["access_token"].as_str().unwrap().to_string();
    let change = |new: &str| {
        send(
            c.post(s.url("/api/me/password"))
                .bearer_auth(&tok)
                .json(&json!({"current_password": RESET, "new_password": new})),
        )
    };
    let r = change(RESET).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.json()["error"]["code"], "usage", "{}", r.body);
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("must differ"),
        "{}",
        r.body
    );
    let m = send(c.get(s.url("/api/me")).bearer_auth(&tok)).await;
    assert_eq!(m.status, 200, "nothing changed: the token still works");
    assert_eq!(m.json()["user"]["must_change_password"], true);
    let r = change("alice's very own password").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let fresh = r.json()["access_token"].as_str().unwrap().to_string();
    let r = send(c.get(s.url("/api/keys")).bearer_auth(&fresh)).await;
    assert_eq!(r.status, 200, "{}", r.body);
}

/// Issue 22: `/healthz` with a real Hermes gateway: `ok` with
/// `hermes.status` `ok`; the operator's key no longer the gateway's →
/// `unauthorized` (Hermes' `/health`, which needs no key, would still say
/// ok); the gateway stopped → `unreachable`. Each within a second or two of
/// the change (the answer is cached for one), each `degraded` with 200.
async fn healthz_follows_a_real_hermes_gateway(gen: common::Gen) {
    use common::gateway::{Gateway, GatewayOpts, SeedState};
    let mut gw = Gateway::start(
        gen,
        GatewayOpts {
            // state.db exists, so Hermes' API server is the only variable.
            seed_state: Some(SeedState {
                native: 1,
                operator: 0,
                users: Vec::new(),
                seed: 22,
            }),
            ..Default::default()
        },
    );
    configure(&gw.home, &format!("hermes:\n  api_url: {}\n", gw.url));
    add_user(&gw.home, "alice", "user");
    let s = Server::start(&gw.home);
    let c = client();
    let r = send(c.get(s.url("/healthz"))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["status"], "ok", "{v}");
    assert_eq!(v["hermes"], json!({"status": "ok", "reason": null}), "{v}");
    let until = |want: &'static str| {
        let c = c.clone();
        let url = s.url("/healthz");
        async move {
            let t = std::time::Instant::now();
            loop {
                let r = send(c.get(&url)).await;
                if r.json()["hermes"]["status"] == want {
                    return r;
                }
                assert!(
                    t.elapsed() < Duration::from_secs(30),
                    "never {want}: {}",
                    r.body
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    // The operator's key (Hermes' .env, re-read by serve) no longer matches
    // the one the running gateway started with.
    crate::common::rewrite(
        &gw.home.join(".env"),
        "API_SERVER_KEY=not-the-gateways-key-0123456789\n",
    );
    let r = until("unauthorized").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["status"], "degraded", "{v}");
    assert!(
        v["reason"]
            .as_str()
            .unwrap()
            .contains("refuses the operator's API key"),
        "{v}"
    );
    assert!(
        !r.body.contains("not-the-gateways-key"),
        "no key: {}",
        r.body
    );
    // Hermes' API server goes down.
    gw.stop_gateway();
    let r = until("unreachable").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["status"], "degraded", "{v}");
    assert_eq!(v["databases"]["state.db"], "ok", "{v}");
    assert!(!r.body.contains(&gw.url), "no address: {}", r.body);
}

hermes_tests!(async healthz_follows_a_real_hermes_gateway);
