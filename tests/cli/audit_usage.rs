//! `audit usage`: the same report as `GET /api/usage` (tests/serve/usage.rs
//! covers it in depth) on the command line — days of the asked zone, a
//! `±HH:MM` offset as a value after `--tz`, `--user`, the human tables, and
//! bad input as a usage error (exit 2) that says what is wrong.

use crate::common::{add_user, code, op, op_json, stderr, stdout, TestHome};
use hermes_operator::store::events::{Actor, EventKind, EventStore, NewEvent};
use serde_json::json;

#[test]
fn audit_usage_days_in_a_zone_and_bad_input() {
    let home = TestHome::new();
    let h = home.path();
    let alice = add_user(h, "alice", "user");
    let store = EventStore::open(&h.join("plugins/operator/events.db")).unwrap();
    let call = |at: &str, model: &str, tokens: i64| {
        NewEvent::new(
            EventKind::LlmCall,
            &Actor::new("http:alice"),
            json!({"model": model, "input_tokens": tokens, "output_tokens": 1, "cost_usd": 0.5}),
        )
        .at(at)
        .session("op_0000000a11ce")
        .user(&alice)
    };
    // 00:30 CET on Berlin's 29th, and 00:30 CEST on its 31st.
    store
        .append_batch(&[
            call("2026-03-28T23:30:00.000000Z", "gpt-a", 100),
            call("2026-03-30T22:30:00.000000Z", "gpt-b", 50),
        ])
        .unwrap();
    let range = [
        "audit",
        "usage",
        "--since",
        "2026-03-28",
        "--until",
        "2026-03-31",
    ];
    let v = op_json(
        h,
        &[&range[..], &["--tz", "Europe/Berlin", "--by", "model"]].concat(),
    );
    assert_eq!(v["groups"].as_array().unwrap().len(), 1, "{v:#}");
    assert_eq!(v["groups"][0]["label"], "gpt-a");
    let ins: Vec<i64> = v["groups"][0]["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["input_tokens"].as_i64().unwrap())
        .collect();
    assert_eq!(ins, [0, 100, 0], "{v:#}");
    assert_eq!(v["buckets"][1]["start"], "2026-03-29T00:00:00+01:00");
    // Five hours behind UTC both calls are in; "-05:00" is a value, not a flag.
    let v = op_json(
        h,
        &[&range[..], &["--tz", "-05:00", "--user", "alice"]].concat(),
    );
    assert_eq!(v["totals"]["input_tokens"], 150, "{v:#}");
    assert_eq!(v["groups"][0]["label"], "alice");
    // The human tables: the buckets with usage, then the totals.
    let o = op(h)
        .args(range)
        .args(["--tz", "Europe/Berlin", "--by", "model"])
        .output()
        .unwrap();
    let out = stdout(&o);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(out.contains("2026-03-29T00:00:00+01:00"), "{out}");
    assert!(out.contains("gpt-a") && out.contains("TOTAL"), "{out}");
    assert!(!out.contains("gpt-b"), "{out}");
    for (args, says) in [
        (&["--tz", "Mars/Olympus"][..], "not an IANA time zone"),
        (&["--until", "2026-03-01"][..], "must be before until"),
        (&["--by", "team"][..], "invalid value 'team'"),
        (&["--user", "nobody"][..], "nobody"),
    ] {
        let o = op(h)
            .args(["audit", "usage", "--since", "2026-03-28"])
            .args(args)
            .output()
            .unwrap();
        let err = stderr(&o);
        assert!(err.contains(says), "{args:?}: {err}");
        let want = if args[0] == "--user" { 5 } else { 2 };
        assert_eq!(code(&o), want, "{args:?}: {err}");
    }
}
