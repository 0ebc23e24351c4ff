//! Every guarantee of one host holds across `serve` replicas and hosts on
//! one PostgreSQL (issue 20): three `serve` processes — two replicas of
//! host web-1 (one HERMES_HOME) and one of host web-2 — share the accounts
//! in the fleet's database. Each rule is exercised by sending its requests
//! to different processes: login throttling, refresh-token families,
//! personal API keys' per-minute limits and revocation, the server's
//! per-account action limits, disabling an account, and the last admin
//! under concurrent demotions.

use crate::common::pg::PgCluster;
use crate::common::serve::{client, configure, make_key, send, Resp, Server};
use crate::common::{add_user, block_on, TestHome, TEST_PASSWORD};
use serde_json::json;

/// A home whose accounts live in the fleet's database as host `host`.
fn fleet_home(bare: &str, pw: &str, host: &str) -> TestHome {
    let home = TestHome::new();
    let h = home.path();
    configure(h, &format!("store:\n  url: {bare}\n  host: {host}\n"));
    crate::common::pg::store_password(h, pw);
    home
}

fn login(s: &Server, user: &str, password: &str) -> Resp {
    block_on(send(
        client()
            .post(s.url("/auth/login"))
            .json(&json!({"username": user, "password": password})),
    ))
}

fn get(s: &Server, path: &str, bearer: &str) -> Resp {
    block_on(send(client().get(s.url(path)).bearer_auth(bearer)))
}

fn refresh(s: &Server, token: &str) -> Resp {
    block_on(send(
        client()
            .post(s.url("/auth/refresh"))
            .json(&json!({ "refresh_token": token })),
    ))
}

fn field(r: &Resp, k: &str) -> String {
    r.json()[k]
        .as_str()
        .unwrap_or_else(|| panic!("no {k} in {} {}", r.status, r.body))
        .to_string()
}

#[test]
fn every_rule_holds_across_replicas_and_hosts() {
    let pg = PgCluster::start();
    let (bare, pw) = pg.apart(&pg.database("replicas"));
    let (web1, web2) = (
        fleet_home(&bare, &pw, "web-1"),
        fleet_home(&bare, &pw, "web-2"),
    );
    // Accounts made with the CLI on web-1 go to the fleet's database;
    // web-2's CLI and server see them.
    for (name, role) in [
        ("root", "admin"),
        ("root2", "admin"),
        ("alice", "user"),
        ("bob", "user"),
        ("carol", "user"),
        ("dave", "user"),
    ] {
        add_user(web1.path(), name, role);
    }
    assert!(
        !web1.path().join("plugins/operator/users.db").exists(),
        "accounts went to users.db"
    );
    let o = crate::common::op(web2.path())
        .args(["--json", "user", "list"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let listed: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 6, "{listed}");
    let a1 = Server::start(web1.path());
    let a2 = Server::start(web1.path());
    let b = Server::start(web2.path());
    let all = [&a1, &a2, &b];

    // Login throttling: alice's wrong passwords from one address, spread
    // over the three processes, are refused after the same 5 as on one.
    let mut statuses = Vec::new();
    for i in 0..8 {
        statuses.push(login(all[i % 3], "alice", "wrong password!").status);
    }
    assert_eq!(statuses[..5], [401; 5], "{statuses:?}");
    assert_eq!(statuses[5..], [429; 3], "{statuses:?}");
    // Refused everywhere, even with the right password now.
    assert_eq!(login(&b, "alice", TEST_PASSWORD).status, 429);
    // A username no account can have, which PostgreSQL's text cannot even
    // hold: a clear 400, as on one host.
    let nul = login(&a1, "ali\u{0}ce", "whatever password");
    assert_eq!(nul.status, 400, "{}", nul.body);

    // A refresh-token family across replicas: rotated on a2, the used
    // token replayed on web-2 revokes the whole login everywhere.
    let first = login(&a1, "bob", TEST_PASSWORD);
    assert_eq!(first.status, 200, "{}", first.body);
    let r1 = field(&first, "refresh_token");
    let second = refresh(&a2, &r1);
    assert_eq!(second.status, 200, "{}", second.body);
    let (access2, r2) = (
        field(&second, "access_token"),
        field(&second, "refresh_token"),
    );
    assert_eq!(get(&b, "/api/me", &access2).status, 200);
    let replay = refresh(&b, &r1);
    assert_eq!(replay.status, 401, "{}", replay.body);
    assert_eq!(refresh(&a1, &r2).status, 401, "the family survived a reuse");
    for s in all {
        assert_eq!(
            get(s, "/api/me", &access2).status,
            401,
            "an access token of the revoked login still works on {}",
            s.base
        );
    }

    // Disabling an account on one host ends its tokens on every process.
    let dave = field(&login(&b, "dave", TEST_PASSWORD), "access_token");
    let root = field(&login(&a1, "root", TEST_PASSWORD), "access_token");
    let off = block_on(send(
        client()
            .patch(a1.url("/api/users/dave"))
            .bearer_auth(&root)
            .json(&json!({"disabled": true})),
    ));
    assert_eq!(off.status, 200, "{}", off.body);
    for s in all {
        assert_eq!(get(s, "/api/me", &dave).status, 401, "{}", s.base);
    }

    // A key's per-minute limit counts its requests on every process.
    let (_, limited) = make_key(web1.path(), "carol", &["--rpm", "4"]);
    let statuses: Vec<u16> = (0..6)
        .map(|i| get(all[i % 3], "/api/sessions", &limited).status)
        .collect();
    assert_eq!(statuses, [200, 200, 200, 200, 429, 429], "{statuses:?}");

    // A key revoked on one replica is refused by every process at once.
    let (key_id, key) = make_key(web2.path(), "carol", &[]);
    for s in all {
        assert_eq!(get(s, "/api/sessions", &key).status, 200);
    }
    let carol = field(&login(&a2, "carol", TEST_PASSWORD), "access_token");
    let revoked = block_on(send(
        client()
            .delete(a2.url(&format!("/api/keys/{key_id}")))
            .bearer_auth(&carol),
    ));
    assert!(revoked.status < 300, "{} {}", revoked.status, revoked.body);
    for s in all {
        let r = get(s, "/api/sessions", &key);
        assert_eq!(r.status, 401, "{}: {}", s.base, r.body);
    }

    // The server's per-account action limits count every replica's: 10
    // keys made a minute, spread over the three processes.
    let statuses: Vec<u16> = (0..12)
        .map(|i| {
            block_on(send(
                client()
                    .post(all[i % 3].url("/api/keys"))
                    .bearer_auth(&carol)
                    .json(&json!({"label": format!("burst {i}")})),
            ))
            .status
        })
        .collect();
    assert!(statuses[..10].iter().all(|s| *s < 300), "{statuses:?}");
    assert_eq!(statuses[10..], [429, 429], "{statuses:?}");

    // The last admin: two admins demote each other at the same moment on
    // different hosts, five times over; each time exactly one wins and an
    // enabled admin remains.
    for round in 0..5 {
        let t1 = field(&login(&a1, "root", TEST_PASSWORD), "access_token");
        let t2 = field(&login(&b, "root2", TEST_PASSWORD), "access_token");
        let (x, y) = block_on(async {
            let c = client();
            tokio::join!(
                send(
                    c.patch(a1.url("/api/users/root2"))
                        .bearer_auth(&t1)
                        .json(&json!({"role": "user"}))
                ),
                send(
                    c.patch(b.url("/api/users/root"))
                        .bearer_auth(&t2)
                        .json(&json!({"role": "user"}))
                ),
            )
        });
        let mut got = [x.status, y.status];
        got.sort();
        // The loser is refused as the last admin (409), or, when the
        // winner's change came first, its own token was revoked (401).
        assert!(
            got[0] == 200 && (got[1] == 409 || got[1] == 401),
            "round {round}: {} {} / {} {}",
            x.status,
            x.body,
            y.status,
            y.body
        );
        let o = crate::common::op(web2.path())
            .args(["--json", "user", "list"])
            .output()
            .unwrap();
        let users: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let admins: Vec<&str> = users
            .as_array()
            .unwrap()
            .iter()
            .filter(|u| u["role"] == "admin" && u["disabled"] == false)
            .map(|u| u["username"].as_str().unwrap())
            .collect();
        assert_eq!(admins.len(), 1, "round {round}: {admins:?}");
        // Promote the demoted one again with the CLI for the next round.
        let demoted = if admins[0] == "root" { "root2" } else { "root" };
        let o = crate::common::op(web1.path())
            .args(["user", "role", demoted, "admin"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
}

/// Two `serve` replicas of one Hermes host on the fleet's database: an
/// approval a turn waits for on one replica is listed and answered on the
/// other (the answer reaches the waiting turn by NOTIFY), and parallel
/// turns sent to both replicas keep to the daily budget as on one.
async fn approvals_and_budgets_across_replicas(gen: crate::common::Gen) {
    use crate::chat::{sse_chat, Sse};
    use crate::common::gateway::{Gateway, GatewayOpts};
    use crate::common::serve::token;
    use std::os::unix::fs::PermissionsExt;
    use tokio::task::block_in_place;
    // The PostgreSQL harness is synchronous: off this runtime's duty.
    let pg = block_in_place(PgCluster::start);
    let (bare, pw) = block_in_place(|| pg.apart(&pg.database("replicas")));
    let gw = Gateway::start(
        gen,
        GatewayOpts {
            approval_timeout_secs: 60,
            model_env: vec![
                ("FAKE_MODEL_SLOW_SECONDS".into(), "1".into()),
                ("FAKE_MODEL_PRICE_PROMPT".into(), "0.0001".into()),
                ("FAKE_MODEL_PRICE_COMPLETION".into(), "0.0001".into()),
            ],
            ..Default::default()
        },
    );
    let (limit, reserve) = (0.10, 0.01);
    configure(
        &gw.home,
        &format!(
            "hermes:\n  api_url: {}\noperator:\n  max_turns_per_user: 10\nbudget:\n  user_daily_usd: {limit}\n  turn_reserve_usd: {reserve}\n  session_alert_usd: 5\nstore:\n  url: {bare}\n  host: web-1\n",
            gw.url
        ),
    );
    crate::common::pg::store_password(&gw.home, &pw);
    for (n, r) in [("alice", "user"), ("bob", "user")] {
        block_in_place(|| add_user(&gw.home, n, r));
    }
    let (s1, s2) = (Server::start(&gw.home), Server::start(&gw.home));
    let c = client();
    let alice = token(&c, &s1, "alice").await;
    let bob = token(&c, &s2, "bob").await;

    // A plain turn on either replica.
    let r = send(
        c.post(s2.url("/api/chat"))
            .bearer_auth(&alice)
            .json(&json!({"message": "hello from the second replica"})),
    )
    .await;
    assert_eq!(r.status, 200, "{}\n{}", r.body, s2.log());

    // --- an approval waiting on s1, answered on s2 ---------------------------
    std::fs::set_permissions(&gw.danger_target, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut sse: Sse = sse_chat(&c, &s1, &alice, json!({"message": "[danger] open it up"})).await;
    let mut seen = Vec::new();
    let ar = sse.until("approval_request", &mut seen).await;
    let sid = ar["session_id"].as_str().unwrap().to_string();
    // s2 lists it to its owner, not to another user.
    let listed = send(c.get(s2.url("/api/approvals")).bearer_auth(&alice)).await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    let items = listed.json();
    let items = items.as_array().unwrap();
    assert_eq!(items.len(), 1, "{}", listed.body);
    assert_eq!(items[0]["session_id"], sid.as_str());
    assert!(items[0]["command"].as_str().unwrap().contains("chmod 777"));
    assert_eq!(items[0]["asked_by"]["username"], "alice");
    let theirs = send(c.get(s2.url("/api/approvals")).bearer_auth(&bob)).await;
    assert_eq!(
        theirs.json().as_array().unwrap().len(),
        0,
        "{}",
        theirs.body
    );
    let url = s2.url(&format!("/api/sessions/{sid}/approval"));
    let r = send(
        c.post(&url)
            .bearer_auth(&bob)
            .json(&json!({"choice": "once"})),
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.body);
    assert_eq!(
        gw.danger_target_mode(),
        0o600,
        "nothing ran before the answer"
    );
    let r = send(
        c.post(&url)
            .bearer_auth(&alice)
            .json(&json!({"choice": "once"})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let dec = sse.until("approval_decision", &mut seen).await;
    assert_eq!(dec["choice"], "once");
    assert_eq!(dec["applied"], true, "{dec}");
    assert!(
        dec["decided_by"]
            .as_str()
            .unwrap_or("")
            .starts_with("alice"),
        "{dec}"
    );
    sse.until("done", &mut seen).await;
    assert_eq!(gw.danger_target_mode(), 0o777, "the approved command ran");
    // Answered once: a second answer finds nothing waiting, on either.
    for s in [&s1, &s2] {
        let r = send(
            c.post(s.url(&format!("/api/sessions/{sid}/approval")))
                .bearer_auth(&alice)
                .json(&json!({"choice": "deny"})),
        )
        .await;
        assert_eq!(r.status, 404, "{}", r.body);
    }

    // --- parallel turns on both replicas keep to the budget -------------------
    let mut ran = 2; // the plain turn and the approved one above
    let mut rounds = 0;
    loop {
        rounds += 1;
        assert!(rounds <= 20, "the budget never ran out");
        let round = futures_util::future::join_all((0..10).map(|i| {
            let s = if i % 2 == 0 { &s1 } else { &s2 };
            send(
                c.post(s.url("/api/chat"))
                    .bearer_auth(&alice)
                    .json(&json!({"message": format!("[slow] round {rounds} turn {i}")})),
            )
        }))
        .await;
        let (mut ok, mut spent) = (0, 0);
        for r in &round {
            match r.status {
                200 => ok += 1,
                429 => assert!(r.body.contains("one at a time"), "{}", r.body),
                403 => {
                    assert!(r.body.contains("daily budget"), "{}", r.body);
                    spent += 1;
                }
                _ => panic!("round {rounds}: {} {}", r.status, r.body),
            }
        }
        assert!(ok <= 1, "round {rounds}: {ok} budgeted turns ran at once");
        ran += ok;
        if spent == 10 {
            break;
        }
    }
    assert!(ran >= 3, "{ran} turns ran");
    // The ledger in the fleet's database: every turn settled, the day's
    // spend within the bound of one host.
    let rows: Vec<(Option<f64>, Option<String>)> = block_in_place(|| {
        pg.superuser("replicas")
            .query("SELECT actual_usd, settled_at FROM spend", &[])
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect()
    });
    assert_eq!(rows.len(), ran, "{rows:?}");
    assert!(rows.iter().all(|r| r.1.is_some()), "unsettled: {rows:?}");
    let costs: Vec<f64> = rows.iter().map(|r| r.0.unwrap()).collect();
    let total: f64 = costs.iter().sum();
    let most = costs.iter().cloned().fold(0.0, f64::max);
    let bound = limit + (most - reserve).max(0.0);
    assert!(
        total <= bound + 1e-9,
        "spent {total} > bound {bound} ({ran} turns: {costs:?})"
    );
    assert!(!gw.home.join("plugins/operator/users.db").exists());
}

crate::hermes_tests!(async approvals_and_budgets_across_replicas);

/// Sessions live on their host (its state.db): a chat on a session of
/// host web-1 sent to host web-2 is run by web-1 — streamed or not — and
/// so are reads of its messages; web-1 alone decides who may.
async fn chat_is_routed_to_the_sessions_host(gen: crate::common::Gen) {
    use crate::chat::sse_chat;
    use crate::common::gateway::{Gateway, GatewayOpts};
    use crate::common::serve::{closed_port, token};
    use tokio::task::block_in_place;
    let pg = block_in_place(PgCluster::start);
    let (bare, pw) = block_in_place(|| pg.apart(&pg.database("routing")));
    let (gw1, gw2) = (
        Gateway::start(gen, GatewayOpts::default()),
        Gateway::start(gen, GatewayOpts::default()),
    );
    let mut servers = Vec::new();
    for (gw, host) in [(&gw1, "web-1"), (&gw2, "web-2")] {
        let port = closed_port();
        configure(
            &gw.home,
            &format!(
                "hermes:\n  api_url: {}\nstore:\n  url: {bare}\n  host: {host}\n  peer_url: http://127.0.0.1:{port}\n",
                gw.url
            ),
        );
        crate::common::pg::store_password(&gw.home, &pw);
        if host == "web-1" {
            for n in ["alice", "bob"] {
                block_in_place(|| add_user(&gw.home, n, "user"));
            }
        }
        servers.push(Server::start_with(
            &gw.home,
            &["--bind", &format!("127.0.0.1:{port}")],
        ));
    }
    let (s1, s2) = (&servers[0], &servers[1]);
    let c = client();
    let alice = token(&c, s2, "alice").await;
    let bob = token(&c, s2, "bob").await;
    let r = send(
        c.post(s1.url("/api/chat"))
            .bearer_auth(&alice)
            .json(&json!({"message": "hello on web-1"})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let sid = r.json()["outcome"]["session_id"]
        .as_str()
        .unwrap()
        .to_string();
    // web-1 publishes it within its shipping round.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let all = send(
            c.get(s2.url("/api/sessions?all_hosts=true"))
                .bearer_auth(&alice),
        )
        .await;
        if all.body.contains(&sid) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never published: {}",
            all.body
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }

    // A chat on it sent to web-2 is run on web-1.
    let r = send(
        c.post(s2.url("/api/chat"))
            .bearer_auth(&alice)
            .json(&json!({"message": "and again, through web-2", "session_id": sid})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("x-hermes-operator-host").as_deref(), Some("web-1"));
    assert_eq!(r.json()["outcome"]["session_id"], sid.as_str());
    // Streamed too.
    let mut sse = sse_chat(
        &c,
        s2,
        &alice,
        json!({"message": "a third, streamed", "session_id": sid}),
    )
    .await;
    let mut seen = Vec::new();
    let done = sse.until("done", &mut seen).await;
    assert_eq!(done["session_id"], sid.as_str());
    assert!(seen.iter().any(|(n, _)| n == "delta"), "{seen:?}");
    // Its messages read through web-2 are web-1's: three turns.
    let m = send(
        c.get(s2.url(&format!("/api/sessions/{sid}/messages")))
            .bearer_auth(&alice),
    )
    .await;
    assert_eq!(m.status, 200, "{}", m.body);
    let users = m.json()["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["role"] == "user")
        .count();
    assert_eq!(users, 3, "{}", m.body);
    // web-1 decides who may: another user's chat looks missing.
    let r = send(
        c.post(s2.url("/api/chat"))
            .bearer_auth(&bob)
            .json(&json!({"message": "mine now", "session_id": sid})),
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.body);
    // web-2's own state.db never held it.
    let own = send(c.get(s2.url("/api/sessions")).bearer_auth(&alice)).await;
    assert!(!own.body.contains(&sid), "{}", own.body);
}

crate::hermes_tests!(async chat_is_routed_to_the_sessions_host);
