//! `serve` against the REAL Hermes 0.19.0 gateway and the fake model
//! (tests/common/gateway.rs): JSON chat, SSE chat (deltas then `done`),
//! approving a `[danger]` command through the approval endpoint while the
//! SSE stream waits (the command really runs), and SIGTERM during a waiting
//! turn (grace period over: the approval is denied, the turn ends recorded).
use crate::common;
use crate::common::serve as serve_common;

use common::add_user;
use common::gateway::{Gateway, GatewayOpts};
use common::Gen;
use futures_util::StreamExt;
use serde_json::{json, Value};
use serve_common::{client, configure, send, token, Server};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

/// Reads `event:`/`data:` frames from an SSE response.
pub(crate) struct Sse {
    stream:
        std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buf: String,
}

impl Sse {
    fn new(r: reqwest::Response) -> Sse {
        Sse {
            stream: Box::pin(r.bytes_stream()),
            buf: String::new(),
        }
    }

    /// The next (event name, JSON data); `None` at the end of the stream.
    pub(crate) async fn next(&mut self) -> Option<(String, Value)> {
        loop {
            if let Some(i) = self.buf.find("\n\n") {
                let frame: String = self.buf.drain(..i + 2).collect();
                let mut name = String::from("message");
                let mut data = String::new();
                for line in frame.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        name = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if data.is_empty() {
                    continue; // keep-alive comment
                }
                let v: Value = serde_json::from_str(&data)
                    .unwrap_or_else(|e| panic!("SSE data not JSON ({e}): {data}"));
                return Some((name, v));
            }
            match tokio::time::timeout(Duration::from_secs(90), self.stream.next()).await {
                Ok(Some(Ok(b))) => self.buf.push_str(&String::from_utf8_lossy(&b)),
                Ok(_) => return None,
                Err(_) => panic!("SSE stream stalled; so far: {}", self.buf),
            }
        }
    }

    pub(crate) async fn until(&mut self, name: &str, seen: &mut Vec<(String, Value)>) -> Value {
        while let Some((n, v)) = self.next().await {
            assert_eq!(v["type"], n.as_str(), "event name and data type agree");
            seen.push((n.clone(), v.clone()));
            if n == name {
                return v;
            }
        }
        panic!("stream ended before `{name}`: {seen:?}");
    }
}

pub(crate) async fn sse_chat(c: &reqwest::Client, s: &Server, tok: &str, body: Value) -> Sse {
    let r = c
        .post(s.url("/api/chat"))
        .bearer_auth(tok)
        .header("accept", "text/event-stream")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    Sse::new(r)
}

async fn chat_json_sse_approval_and_shutdown_with_real_hermes(gen: Gen) {
    let gw = Gateway::start(
        gen,
        GatewayOpts {
            approval_timeout_secs: 60,
            ..Default::default()
        },
    );
    configure(&gw.home, &format!("hermes:\n  api_url: {}\n", gw.url));
    for (n, r) in [("alice", "user"), ("bob", "user"), ("audrey", "auditor")] {
        add_user(&gw.home, n, r);
    }
    let mut s = Server::start_with(&gw.home, &["--grace-period", "2"]);
    let c = client();
    let alice = token(&c, &s, "alice").await;
    let bob = token(&c, &s, "bob").await;
    let audrey = token(&c, &s, "audrey").await;

    // Models (every role).
    let r = send(c.get(s.url("/api/models")).bearer_auth(&audrey)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        !r.json()["models"].as_array().unwrap().is_empty(),
        "{}",
        r.body
    );

    // --- JSON chat ------------------------------------------------------------
    let r = send(
        c.post(s.url("/api/chat"))
            .bearer_auth(&alice)
            .json(&json!({"message": "hello there"})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    let sid = v["outcome"]["session_id"].as_str().unwrap().to_string();
    assert!(sid.starts_with("op_") && sid.len() == 15, "{sid}");
    assert!(!v["outcome"]["output"].as_str().unwrap().is_empty(), "{v}");
    let types: Vec<&str> = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(types.first(), Some(&"session"), "{types:?}");
    assert!(types.contains(&"run_started"), "{types:?}");
    assert_eq!(types.last(), Some(&"done"), "{types:?}");
    // Another user cannot continue it (it looks missing, as on GET); the
    // owner can see it.
    let r = send(
        c.post(s.url("/api/chat"))
            .bearer_auth(&bob)
            .json(&json!({"message": "mine now", "session_id": sid})),
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.body);
    assert!(!r.body.contains("operator"), "no source leaked: {}", r.body);
    let r = send(
        c.get(s.url(&format!("/api/sessions/{sid}/messages")))
            .bearer_auth(&alice),
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("hello there"));

    // --- SSE chat in the same session: deltas, then done -------------------------
    let mut sse = sse_chat(
        &c,
        &s,
        &alice,
        json!({"message": "and once more", "session_id": sid}),
    )
    .await;
    let mut seen = Vec::new();
    let done = sse.until("done", &mut seen).await;
    assert_eq!(done["session_id"], sid.as_str());
    let names: Vec<&str> = seen.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names[0], "session");
    assert_eq!(seen[0].1["new"], false);
    let first_delta = names.iter().position(|n| *n == "delta").expect("deltas");
    assert!(first_delta < names.len() - 1, "{names:?}");
    let text: String = seen
        .iter()
        .filter(|(n, _)| n == "delta")
        .map(|(_, v)| v["text"].as_str().unwrap())
        .collect();
    assert_eq!(text.trim(), done["output"].as_str().unwrap().trim());
    assert!(sse.next().await.is_none(), "stream ends after done");

    // --- [danger] approved through the endpoint while the stream waits --------
    fs::set_permissions(&gw.danger_target, fs::Permissions::from_mode(0o600)).unwrap();
    let mut sse = sse_chat(&c, &s, &alice, json!({"message": "[danger] open it up"})).await;
    let mut seen = Vec::new();
    let ar = sse.until("approval_request", &mut seen).await;
    let dsid = ar["session_id"].as_str().unwrap().to_string();
    assert!(
        ar["command"].as_str().unwrap().contains("chmod 777"),
        "{ar}"
    );
    let url = s.url(&format!("/api/sessions/{dsid}/approval"));
    // Not the owner: as if the session did not exist; an auditor may not answer.
    let r = send(
        c.post(&url)
            .bearer_auth(&bob)
            .json(&json!({"choice": "once"})),
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.body);
    assert!(!r.body.contains("chmod"));
    let r = send(
        c.post(&url)
            .bearer_auth(&audrey)
            .json(&json!({"choice": "once"})),
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.body);
    let r = send(
        c.post(&url)
            .bearer_auth(&alice)
            .json(&json!({"choice": "always"})),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
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
    sse.until("done", &mut seen).await;
    assert_eq!(gw.danger_target_mode(), 0o777, "the approved command ran");
    // The auditor's replay shows request and decision, by alice, intact.
    let r = send(
        c.get(s.url(&format!("/api/audit/replay/{dsid}")))
            .bearer_auth(&audrey),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let rep = r.json();
    assert_eq!(rep["integrity"], "ok");
    let evs = rep["events"].as_array().unwrap();
    let approval = evs
        .iter()
        .find(|e| e["type"] == "approval")
        .expect("approval event");
    assert!(
        approval["data"]["decided_by"]
            .as_str()
            .unwrap()
            .starts_with("alice"),
        "{approval}"
    );
    assert!(evs.iter().any(|e| e["type"] == "approval_request"));
    assert!(evs.iter().all(|e| e["actor"] == "http:alice"), "{evs:?}");

    // --- SIGTERM while a turn waits for an approval ---------------------------
    fs::set_permissions(&gw.danger_target, fs::Permissions::from_mode(0o600)).unwrap();
    let mut sse = sse_chat(&c, &s, &alice, json!({"message": "[danger] once again"})).await;
    let mut seen = Vec::new();
    let ar = sse.until("approval_request", &mut seen).await;
    let ssid = ar["session_id"].as_str().unwrap().to_string();
    unsafe {
        libc::kill(s.child.id() as libc::pid_t, libc::SIGTERM);
    }
    // The grace period (2 s) passes; the waiting approval is denied by the server.
    let dec = sse.until("approval_decision", &mut seen).await;
    assert_eq!(dec["choice"], "deny", "{dec}");
    assert!(
        dec["decided_by"]
            .as_str()
            .unwrap()
            .contains("serve (shutting down)"),
        "{dec}"
    );
    // The turn ends (done or error) and the stream closes.
    let mut last = None;
    while let Some((n, _)) = sse.next().await {
        last = Some(n);
    }
    assert!(
        matches!(last.as_deref(), Some("done") | Some("error")),
        "{last:?}"
    );
    let st = s
        .terminate(Duration::from_secs(20))
        .expect("serve exits after the grace period");
    assert!(st.success(), "{st:?}\n{}", s.log());
    assert_eq!(gw.danger_target_mode(), 0o600, "a denied command never ran");
    let log = s.log_with("grace period over");
    assert!(log.contains("grace period over"), "{log}");
    // Recorded: the decision, by the shutdown, in a log that still verifies.
    let o = common::op(&gw.home)
        .args(["--json", "audit", "replay", &ssid])
        .env_remove("API_SERVER_KEY")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rep: Value = serde_json::from_slice(&o.stdout).unwrap();
    let types: Vec<&str> = rep["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert!(
        types.contains(&"approval_request") && types.contains(&"approval"),
        "{types:?}"
    );
    let o = common::op(&gw.home)
        .args(["audit", "verify"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// Another user's chats on a session never mark it busy (the owner's turns
/// all succeed meanwhile), and one account runs at most
/// `operator.max_turns_per_user` (2) turns at once.
async fn foreign_chats_never_block_the_owner_and_turns_are_capped(gen: Gen) {
    let gw = Gateway::start(gen, GatewayOpts::default());
    configure(&gw.home, &format!("hermes:\n  api_url: {}\n", gw.url));
    for n in ["alice", "bob"] {
        add_user(&gw.home, n, "user");
    }
    let s = Server::start(&gw.home);
    let c = client();
    let alice = token(&c, &s, "alice").await;
    let bob = token(&c, &s, "bob").await;
    let turn = |tok: &str, body: Value| {
        send(
            c.post(s.url("/api/chat"))
                .bearer_auth(tok.to_string())
                .json(&body),
        )
    };
    let r = turn(&alice, json!({"message": "first"})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let sid = r.json()["outcome"]["session_id"]
        .as_str()
        .unwrap()
        .to_string();

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let hammer = {
        let (c, url, sid, stop) = (c.clone(), s.url("/api/chat"), sid.clone(), stop.clone());
        tokio::spawn(async move {
            let mut statuses = vec![];
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let r = send(
                    c.post(&url)
                        .bearer_auth(&bob)
                        .json(&json!({"message": "let me in", "session_id": sid})),
                )
                .await;
                statuses.push(r.status);
            }
            statuses
        })
    };
    for i in 0..10 {
        let r = turn(
            &alice,
            json!({"message": format!("turn {i}"), "session_id": sid}),
        )
        .await;
        assert_eq!(r.status, 200, "alice's turn {i}: {}", r.body);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let statuses = hammer.await.unwrap();
    assert!(!statuses.is_empty());
    assert!(statuses.iter().all(|s| *s == 404), "{statuses:?}");

    // Three slow turns at once: two run, the third is refused at once.
    let three = futures_util::future::join_all(
        (0..3).map(|_| turn(&alice, json!({"message": "[slow] take your time"}))),
    )
    .await;
    let mut st: Vec<u16> = three.iter().map(|r| r.status).collect();
    st.sort();
    assert_eq!(
        st,
        [200, 200, 429],
        "{:?}",
        three.iter().map(|r| &r.body).collect::<Vec<_>>()
    );
    let refused = three.iter().find(|r| r.status == 429).unwrap();
    assert_eq!(refused.json()["error"]["code"], "too_many_requests");
}

/// Issue 19: parallel turns cannot spend past `budget.user_daily_usd`. A
/// turn costs ~$0.021 (200 + 9 tokens at $100 per million) but reserves
/// only $0.01: on the build before, 10 parallel turns were all admitted
/// on the $0.10 limit and spent 2.1× it. Now an account's turns run one at
/// a time under a budget (the others: 429 with Retry-After), each admitted
/// only while settled spend + its reservation fit the limit, so the day's
/// spend stays within the bound README states:
/// `limit + max(0, one turn's cost - turn_reserve_usd)`. Once spent, refused
/// turns write nothing.
async fn parallel_turns_keep_to_the_daily_budget(gen: Gen) {
    let gw = Gateway::start(
        gen,
        GatewayOpts {
            model_env: vec![
                // Slow enough that the 10 turns of a round overlap.
                ("FAKE_MODEL_SLOW_SECONDS".into(), "2".into()),
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
            "hermes:\n  api_url: {}\noperator:\n  max_turns_per_user: 10\nbudget:\n  user_daily_usd: {limit}\n  turn_reserve_usd: {reserve}\n  session_alert_usd: 5\n",
            gw.url
        ),
    );
    add_user(&gw.home, "alice", "user");
    let s = Server::start(&gw.home);
    let c = client();
    let alice = token(&c, &s, "alice").await;
    let mut ran = 0;
    let mut rounds = 0;
    loop {
        rounds += 1;
        assert!(rounds <= 20, "the budget never ran out");
        let events_before = serve_common::events(&gw.home).len();
        let round = futures_util::future::join_all((0..10).map(|i| {
            send(
                c.post(s.url("/api/chat"))
                    .bearer_auth(&alice)
                    .json(&json!({"message": format!("[slow] round {rounds} turn {i}")})),
            )
        }))
        .await;
        let mut ok = 0;
        let mut spent = 0;
        for r in &round {
            match r.status {
                200 => ok += 1,
                429 => {
                    assert_eq!(r.json()["error"]["code"], "too_many_requests", "{}", r.body);
                    assert!(r.body.contains("one at a time"), "{}", r.body);
                    assert!(r.header("retry-after").is_some(), "{}", r.body);
                }
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
            // Refused before anything was written: a client repeating
            // refused turns cannot grow the event log (on the build before,
            // each refusal cost session_start, error and session_end).
            assert_eq!(serve_common::events(&gw.home).len(), events_before);
            break;
        }
    }
    assert!(ran >= 2, "{ran} turns ran");
    // An SSE client is told why its stream ends (no session announced).
    let before = serve_common::events(&gw.home).len();
    let mut sse = sse_chat(&c, &s, &alice, json!({"message": "one more"})).await;
    let mut seen = Vec::new();
    let e = sse.until("error", &mut seen).await;
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(e["code"], "forbidden", "{e}");
    assert!(
        e["message"].as_str().unwrap().contains("daily budget"),
        "{e}"
    );
    assert!(sse.next().await.is_none());
    assert_eq!(serve_common::events(&gw.home).len(), before);
    // What was spent: the ledger, settled, and what Hermes itself priced.
    let users = common::open_ro(&gw.home.join("plugins/operator/users.db"));
    let rows: Vec<(Option<f64>, Option<String>)> = users
        .prepare("SELECT actual_usd, settled_at FROM spend")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(rows.len(), ran, "{rows:?}");
    assert!(rows.iter().all(|r| r.1.is_some()), "unsettled: {rows:?}");
    let costs: Vec<f64> = rows.iter().map(|r| r.0.unwrap()).collect();
    let total: f64 = costs.iter().sum();
    let most = costs.iter().cloned().fold(0.0, f64::max);
    let state = common::open_ro(&gw.state_db());
    let hermes_total: f64 = state
        .query_row(
            "SELECT COALESCE(sum(estimated_cost_usd), 0) FROM sessions WHERE source = 'operator'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        (hermes_total - total).abs() < 1e-9,
        "ledger {total} vs Hermes {hermes_total}"
    );
    assert!(
        most > reserve,
        "the turns cost more than they reserve: {costs:?}"
    );
    let bound = limit + (most - reserve).max(0.0);
    assert!(
        total <= bound + 1e-9,
        "spent {total} > bound {bound} ({ran} turns: {costs:?})"
    );
}

hermes_tests!(
    async chat_json_sse_approval_and_shutdown_with_real_hermes,
    async foreign_chats_never_block_the_owner_and_turns_are_capped,
    async parallel_turns_keep_to_the_daily_budget,
);
