//! `GET /api/usage` over real HTTP: `llm_call` events seeded around the
//! start of summer time in Europe/Berlin (2026-03-29, a 23-hour day) land in
//! local days and hours of the asked zone, grouped by user, key or model,
//! with the right totals; bad input is a JSON 400; and who sees whose usage
//! (admins and auditors: everyone's; the others: their own, by login or
//! API key; naming someone else is a 403).

use crate::common;
use crate::common::serve as serve_common;

use common::{add_user, TestHome};
use hermes_operator::app::App;
use hermes_operator::home::Home;
use hermes_operator::store::events::{Actor, EventKind, NewEvent};
use serde_json::{json, Value};
use serve_common::{client, configure, make_key, send, token, Server};
use std::path::Path;

/// What [`seed`] made: user ids and alice's read key.
pub(crate) struct Seeded {
    pub alice_id: String,
    pub bob_id: String,
    pub key_id: String,
    pub key: String,
}

/// Accounts root (admin), audrey (auditor), alice and bob (users), vera
/// (viewer); alice's read key "laptop"; and these events:
///
/// | UTC ts            | Berlin          | who   | key    | model | in   | out | cost |
/// |-------------------|-----------------|-------|--------|-------|------|-----|------|
/// | 03-28 23:30       | 03-29 00:30 CET | alice | laptop | gpt-a | 100  | 10  | 0.10 |
/// | 03-29 21:30       | 03-29 23:30 CEST| alice | login  | gpt-b | 50   | 5   | 0.05 |
/// | 03-29 22:30       | 03-30 00:30 CEST| bob   | login  | gpt-b | 200  | 20  | 0.25 |
/// | 03-30 22:30       | 03-31 00:30 CEST| bob   | login  | gpt-a | 1000 | 100 | 1.00 |
///
/// and two that never count: an `llm_call` of a session that is not the
/// operator's, and a `user_message`.
pub(crate) fn seed(home: &Path) -> Seeded {
    configure(home, "");
    add_user(home, "root", "admin");
    add_user(home, "audrey", "auditor");
    let alice_id = add_user(home, "alice", "user");
    let bob_id = add_user(home, "bob", "user");
    add_user(home, "vera", "viewer");
    let (key_id, key) = make_key(home, "alice", &["--label", "laptop", "--scope", "read"]);
    let app = App::load(Home::at(home), Actor::new("test"), |_| {}).unwrap();
    let call = |actor: &str,
                user: &str,
                session: &str,
                at: &str,
                model: &str,
                i: i64,
                o: i64,
                cost: f64| {
        NewEvent::new(
            EventKind::LlmCall,
            &Actor::new(actor),
            json!({"model": model, "input_tokens": i, "output_tokens": o, "cost_usd": cost, "granularity": "run"}),
        )
        .at(format!("2026-{at}:00.000000Z"))
        .session(session)
        .user(user)
    };
    let alice_key = format!("http:alice/{key_id}");
    let evs = vec![
        call(
            &alice_key,
            &alice_id,
            "op_alice1",
            "03-28T23:30",
            "gpt-a",
            100,
            10,
            0.10,
        ),
        call(
            "http:alice",
            &alice_id,
            "op_alice2",
            "03-29T21:30",
            "gpt-b",
            50,
            5,
            0.05,
        ),
        call(
            "http:bob",
            &bob_id,
            "op_bob1",
            "03-29T22:30",
            "gpt-b",
            200,
            20,
            0.25,
        ),
        call(
            "http:bob",
            &bob_id,
            "op_bob1",
            "03-30T22:30",
            "gpt-a",
            1000,
            100,
            1.00,
        ),
        // Hermes' own session (not `op_…`): not the operator's usage.
        call(
            "http:alice",
            &alice_id,
            "20260329_120000_abc",
            "03-29T12:00",
            "gpt-a",
            4000,
            400,
            4.00,
        ),
        NewEvent::new(
            EventKind::UserMessage,
            &Actor::new("http:alice"),
            json!({"content": "hi"}),
        )
        .at("2026-03-29T12:00:00.000000Z")
        .session("op_alice2")
        .user(&alice_id),
    ];
    app.events().unwrap().append_batch(&evs).unwrap();
    Seeded {
        alice_id,
        bob_id,
        key_id,
        key,
    }
}

/// `+` and `/` as a query value carries them.
fn enc(v: &str) -> String {
    v.replace('+', "%2B").replace('/', "%2F")
}

fn usage_path(since: &str, until: &str, tz: &str, by: &str) -> String {
    format!(
        "/api/usage?since={since}&until={until}&tz={}&by={by}",
        enc(tz)
    )
}

/// A group's (label, series of [in, out, cost]) for comparing.
fn series(g: &Value) -> Vec<(i64, i64, f64)> {
    g["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["input_tokens"].as_i64().unwrap(),
                p["output_tokens"].as_i64().unwrap(),
                (p["cost_usd"].as_f64().unwrap() * 1e6).round() / 1e6,
            )
        })
        .collect()
}

fn group<'a>(r: &'a Value, label: &str) -> &'a Value {
    r["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["label"] == label)
        .unwrap_or_else(|| panic!("no group {label:?}: {r:#}"))
}

fn labels(r: &Value) -> Vec<&str> {
    r["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["label"].as_str().unwrap())
        .collect()
}

fn totals(r: &Value) -> (i64, i64, i64, f64) {
    let t = &r["totals"];
    (
        t["llm_calls"].as_i64().unwrap(),
        t["input_tokens"].as_i64().unwrap(),
        t["output_tokens"].as_i64().unwrap(),
        (t["cost_usd"].as_f64().unwrap() * 1e6).round() / 1e6,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_buckets_follow_the_time_zone_across_dst() {
    let home = TestHome::new();
    let seeded = seed(home.path());
    let s = Server::start(home.path());
    let c = client();
    let root = token(&c, &s, "root").await;
    let get = |path: String| send(c.get(s.url(&path)).bearer_auth(&root));

    // --- days in Berlin: the 29th starts at CET midnight, the 30th at CEST --
    let r = get(usage_path(
        "2026-03-28",
        "2026-03-31",
        "Europe/Berlin",
        "user",
    ))
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(
        (v["bucket"].as_str(), v["by"].as_str()),
        (Some("day"), Some("user")),
        "{v:#}"
    );
    let starts: Vec<&str> = v["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["start"].as_str().unwrap())
        .collect();
    assert_eq!(
        starts,
        [
            "2026-03-28T00:00:00+01:00",
            "2026-03-29T00:00:00+01:00",
            "2026-03-30T00:00:00+02:00"
        ]
    );
    let epochs: Vec<i64> = v["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["start_epoch"].as_i64().unwrap())
        .collect();
    assert_eq!(
        epochs[2] - epochs[1],
        23 * 3600,
        "the day summer time starts has 23 hours"
    );
    assert_eq!(epochs[1] - epochs[0], 24 * 3600);
    assert_eq!(
        (v["from"].as_str(), v["to"].as_str()),
        (Some("2026-03-27T23:00:00Z"), Some("2026-03-30T22:00:00Z"))
    );
    // Highest spend first; alice's 00:30 CET call is on the 29th in Berlin.
    assert_eq!(labels(&v), ["bob", "alice"]);
    assert_eq!(group(&v, "alice")["key"], json!(seeded.alice_id));
    assert_eq!(group(&v, "bob")["key"], json!(seeded.bob_id));
    assert_eq!(
        series(group(&v, "alice")),
        [(0, 0, 0.0), (150, 15, 0.15), (0, 0, 0.0)]
    );
    assert_eq!(
        series(group(&v, "bob")),
        [(0, 0, 0.0), (0, 0, 0.0), (200, 20, 0.25)]
    );
    assert_eq!(group(&v, "alice")["totals"]["llm_calls"], 2);
    // Bob's 00:30 CEST call on the 31st, the foreign session and the user
    // message are outside.
    assert_eq!(totals(&v), (3, 350, 35, 0.4));

    // --- the same dates in UTC: other days, and bob's last call is in -----
    let v = get(usage_path("2026-03-28", "2026-03-31", "UTC", "user"))
        .await
        .json();
    assert_eq!(
        v["buckets"][0]["start"], "2026-03-28T00:00:00+00:00",
        "{v:#}"
    );
    assert_eq!(
        series(group(&v, "alice")),
        [(100, 10, 0.1), (50, 5, 0.05), (0, 0, 0.0)]
    );
    assert_eq!(
        series(group(&v, "bob")),
        [(0, 0, 0.0), (200, 20, 0.25), (1000, 100, 1.0)]
    );
    assert_eq!(totals(&v), (4, 1350, 135, 1.4));

    // --- a fixed offset: days start at 05:00 UTC ---------------------------
    let v = get(usage_path("2026-03-28", "2026-03-31", "-05:00", "user"))
        .await
        .json();
    assert_eq!(v["tz"], "-05:00");
    assert_eq!(
        v["buckets"][0]["start"], "2026-03-28T00:00:00-05:00",
        "{v:#}"
    );
    assert_eq!(
        series(group(&v, "alice")),
        [(100, 10, 0.1), (50, 5, 0.05), (0, 0, 0.0)]
    );
    assert_eq!(
        series(group(&v, "bob")),
        [(0, 0, 0.0), (200, 20, 0.25), (1000, 100, 1.0)]
    );

    // --- hours of the 23-hour day ------------------------------------------
    let v = get(usage_path(
        "2026-03-29",
        "2026-03-30",
        "Europe/Berlin",
        "model",
    ))
    .await
    .json();
    assert_eq!(v["bucket"], "hour", "{v:#}");
    let b = v["buckets"].as_array().unwrap();
    assert_eq!(b.len(), 23, "{v:#}");
    assert_eq!(b[1]["start"], "2026-03-29T01:00:00+01:00");
    // 02:00 CET does not exist: the hour after 01:00 CET is 03:00 CEST.
    assert_eq!(b[2]["start"], "2026-03-29T03:00:00+02:00");
    assert_eq!(b[22]["start"], "2026-03-29T23:00:00+02:00");
    let a = series(group(&v, "gpt-a"));
    assert_eq!(
        (a[0], a.iter().filter(|p| p.0 > 0).count()),
        ((100, 10, 0.1), 1)
    );
    let bb = series(group(&v, "gpt-b"));
    assert_eq!(
        (bb[22], bb.iter().filter(|p| p.0 > 0).count()),
        ((50, 5, 0.05), 1)
    );

    // --- by key and by model over the days -----------------------------------
    let v = get(usage_path(
        "2026-03-28",
        "2026-03-31",
        "Europe/Berlin",
        "key",
    ))
    .await
    .json();
    let login = group(&v, "(login, no key)");
    assert_eq!(login["key"], Value::Null);
    assert_eq!(series(login), [(0, 0, 0.0), (50, 5, 0.05), (200, 20, 0.25)]);
    let laptop = v["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["key"] == json!(seeded.key_id))
        .unwrap_or_else(|| panic!("{v:#}"));
    let label = laptop["label"].as_str().unwrap();
    assert!(
        label.starts_with("laptop (hop_") && label.ends_with(", alice)"),
        "{label}"
    );
    assert!(
        seeded.key.starts_with(&label[8..label.len() - 8]),
        "{label}: the key's prefix"
    );
    assert_eq!(series(laptop), [(0, 0, 0.0), (100, 10, 0.1), (0, 0, 0.0)]);
    let v = get(usage_path(
        "2026-03-28",
        "2026-03-31",
        "Europe/Berlin",
        "model",
    ))
    .await
    .json();
    assert_eq!(labels(&v), ["gpt-b", "gpt-a"]);
    assert_eq!(group(&v, "gpt-b")["totals"]["input_tokens"], 250);
    assert_eq!(group(&v, "gpt-a")["totals"]["input_tokens"], 100);
    assert_eq!(totals(&v), (3, 350, 35, 0.4));

    // --- no range: the last 7 days, nothing seeded there -------------------
    let v = get("/api/usage?tz=Asia%2FTokyo".into()).await.json();
    assert_eq!(
        (v["bucket"].as_str(), v["buckets"].as_array().unwrap().len()),
        (Some("day"), 7),
        "{v:#}"
    );
    assert!(
        v["buckets"][0]["start"]
            .as_str()
            .unwrap()
            .ends_with("T00:00:00+09:00"),
        "{v:#}"
    );

    // --- bad input: a clear JSON 400 ----------------------------------------
    for (path, says) in [
        (
            usage_path("2026-03-28", "2026-03-31", "Mars/Olympus", "user"),
            "not an IANA time zone",
        ),
        (
            usage_path("2026-03-28", "2026-03-31", "+15:00", "user"),
            "not an IANA time zone or a UTC offset",
        ),
        (
            usage_path("2026-03-31", "2026-03-28", "UTC", "user"),
            "must be before until",
        ),
        (
            usage_path("2026-03-28", "2026-03-28", "UTC", "user"),
            "must be before until",
        ),
        (
            usage_path("2025-01-01", "2026-03-28", "UTC", "user"),
            "longer than 400 days",
        ),
        (
            usage_path("2026-3-28", "2026-03-31", "UTC", "user"),
            "expected a date YYYY-MM-DD",
        ),
        (
            usage_path("2026-03-28", "2026-03-31", "UTC", "team"),
            "expected user, key or model",
        ),
        (
            "/api/usage?by=user&colour=red".into(),
            "invalid query parameters",
        ),
    ] {
        let r = get(path.clone()).await;
        assert_eq!(r.status, 400, "{path}: {}", r.body);
        let e = r.json();
        assert_eq!(e["error"]["code"], "usage", "{path}: {e}");
        assert!(
            e["error"]["message"].as_str().unwrap().contains(says),
            "{path}: {e}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_admins_and_auditors_see_everyone_others_only_themselves() {
    let home = TestHome::new();
    let seeded = seed(home.path());
    let s = Server::start(home.path());
    let c = client();
    let days = usage_path("2026-03-28", "2026-03-31", "UTC", "user");
    let get = |path: String, bearer: String| send(c.get(s.url(&path)).bearer_auth(bearer));

    // Admins and auditors: everyone's, and anyone's alone with `user`.
    for who in ["root", "audrey"] {
        let t = token(&c, &s, who).await;
        let v = get(days.clone(), t.clone()).await.json();
        assert_eq!(labels(&v), ["bob", "alice"], "{who}: {v:#}");
        assert_eq!(totals(&v), (4, 1350, 135, 1.4), "{who}");
        let v = get(format!("{days}&user=bob"), t.clone()).await.json();
        assert_eq!(labels(&v), ["bob"], "{who}: {v:#}");
        assert_eq!(totals(&v), (2, 1200, 120, 1.25), "{who}");
        let r = get(format!("{days}&user=nobody"), t.clone()).await;
        assert_eq!(r.status, 404, "{who}: {}", r.body);
    }

    // A user: only their own, whatever the grouping; by login or read key.
    let alice = token(&c, &s, "alice").await;
    for (how, bearer) in [("login", alice.clone()), ("key", seeded.key.clone())] {
        let v = get(days.clone(), bearer.clone()).await.json();
        assert_eq!(labels(&v), ["alice"], "alice by {how}: {v:#}");
        assert_eq!(totals(&v), (2, 150, 15, 0.15), "alice by {how}");
        let v = get(
            usage_path("2026-03-28", "2026-03-31", "UTC", "model"),
            bearer.clone(),
        )
        .await
        .json();
        assert_eq!(labels(&v), ["gpt-a", "gpt-b"], "alice by {how}: {v:#}");
        let v = get(
            usage_path("2026-03-28", "2026-03-31", "UTC", "key"),
            bearer.clone(),
        )
        .await
        .json();
        assert_eq!(
            v["groups"].as_array().unwrap().len(),
            2,
            "alice by {how}: {v:#}"
        );
        assert_eq!(
            group(&v, "(login, no key)")["totals"]["input_tokens"],
            50,
            "alice by {how}"
        );
        // Naming oneself is fine; naming another is a 403, decided before
        // the other parameters are read (a bad tz does not turn it into 400).
        let v = get(format!("{days}&user=alice"), bearer.clone())
            .await
            .json();
        assert_eq!(totals(&v), (2, 150, 15, 0.15), "alice by {how}");
        for path in [
            format!("{days}&user=bob"),
            "/api/usage?tz=Mars%2FOlympus&user=bob".to_string(),
        ] {
            let r = get(path.clone(), bearer.clone()).await;
            assert_eq!(r.status, 403, "alice by {how}: {path}: {}", r.body);
            assert_eq!(r.json()["error"]["code"], "forbidden");
            assert!(r.body.contains("may only see its own usage"), "{}", r.body);
        }
    }
    let bob = token(&c, &s, "bob").await;
    let v = get(days.clone(), bob).await.json();
    assert_eq!(labels(&v), ["bob"], "{v:#}");
    assert_eq!(totals(&v), (2, 1200, 120, 1.25));

    // A viewer without calls: an empty answer, not an error.
    let vera = token(&c, &s, "vera").await;
    let v = get(days.clone(), vera).await.json();
    assert_eq!(v["groups"], json!([]), "{v:#}");
    assert_eq!(totals(&v), (0, 0, 0, 0.0));
    assert_eq!(v["buckets"].as_array().unwrap().len(), 3);

    // No credential: 401.
    let r = send(c.get(s.url(&days))).await;
    assert_eq!(r.status, 401, "{}", r.body);
}
