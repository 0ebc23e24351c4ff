//! `session ...`, `audit daily` and `audit user` against a state.db written
//! by the REAL Hermes 0.19.0 (tests/common + tests/fixtures/hermes_fixture.py):
//! every `--json` output equals what direct SQL says, every change is read
//! back by Hermes, non-operator rows stay byte-identical, and bad input gives
//! the documented exit codes without changing anything.
use crate::common;
use crate::common::{code, stderr};

use common::*;
use hermes_operator::store::events::EventKind;
use rusqlite::types::ValueRef;
use rusqlite::OptionalExtension;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const GONE: &str = "u_gone0000000000";

struct Env {
    home: TestHome,
    db: PathBuf,
    alice: String,
    bob: String,
    made: Value,
}

fn run(home: &Path, args: &[&str]) -> Output {
    op(home).args(args).output().expect("run hermes-operator")
}

fn json_ok(home: &Path, args: &[&str]) -> Value {
    let mut a = vec!["--json"];
    a.extend_from_slice(args);
    let o = run(home, &a);
    assert!(
        o.status.success(),
        "{args:?} failed ({}): {}",
        o.status,
        stderr(&o)
    );
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{args:?}: bad JSON: {e}"))
}

fn expect_code(home: &Path, args: &[&str], want: i32) -> Output {
    let o = run(home, args);
    assert_eq!(
        code(&o),
        want,
        "{args:?}: stderr: {}\nstdout: {}",
        stderr(&o),
        String::from_utf8_lossy(&o.stdout)
    );
    o
}

/// Users alice, bob (user), carol (auditor), dave (viewer); a state.db made by
/// Hermes with native sessions of every source and operator sessions of
/// alice, bob and a user no longer in users.db.
fn setup(gen: Gen, seed: u64) -> Env {
    let home = TestHome::new();
    let alice = add_user(home.path(), "alice", "user");
    let bob = add_user(home.path(), "bob", "user");
    add_user(home.path(), "carol", "auditor");
    add_user(home.path(), "dave", "viewer");
    let db = home.state_db();
    let made = fixture(
        gen,
        &[
            "make",
            "--db",
            &db.to_string_lossy(),
            "--native",
            "40",
            "--operator",
            "45",
            "--users",
            &format!("{alice},{bob},{GONE}"),
            "--seed",
            &seed.to_string(),
        ],
    );
    Env {
        home,
        db,
        alice,
        bob,
        made,
    }
}

fn p(e: &Env) -> &Path {
    e.home.path()
}

// ---------------------------------------------------------------------------
// expected values from direct SQL
// ---------------------------------------------------------------------------

fn val(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => json!(i),
        ValueRef::Real(f) => json!(f),
        ValueRef::Text(t) => json!(String::from_utf8_lossy(t)),
        ValueRef::Blob(b) => json!(String::from_utf8_lossy(b)),
    }
}

fn rfc(epoch: f64) -> String {
    chrono::DateTime::from_timestamp(epoch.floor() as i64, 0)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

const SESSION_SQL: &str = "SELECT id, source, user_id, model, title, started_at, ended_at, end_reason, \
    COALESCE(message_count,0), COALESCE(tool_call_count,0), COALESCE(input_tokens,0), COALESCE(output_tokens,0), \
    COALESCE(cache_read_tokens,0), COALESCE(cache_write_tokens,0), COALESCE(reasoning_tokens,0), billing_provider, \
    estimated_cost_usd, actual_cost_usd, cost_status, COALESCE(api_call_count,0), parent_session_id, archived != 0, \
    (SELECT m.content FROM messages m WHERE m.session_id = sessions.id AND m.role = 'user' ORDER BY m.id LIMIT 1) \
    FROM sessions";

/// `display_title` and `display_title_fallback` as README says: the title,
/// else the first user message (replay order) on one line, clipped to 60
/// characters, else none.
fn display_title(title: &Value, first: Option<String>) -> (Value, bool) {
    if let Some(t) = title.as_str().map(str::trim).filter(|t| !t.is_empty()) {
        return (json!(t), false);
    }
    let text = match first.as_deref().map(|f| (f, f.strip_prefix("\0json:"))) {
        None => return (Value::Null, false),
        Some((_, Some(parts))) => match serde_json::from_str::<Vec<Value>>(parts) {
            Ok(parts) => parts
                .iter()
                .filter_map(|p| p["text"].as_str())
                .collect::<Vec<_>>()
                .join(" "),
            Err(_) => return (Value::Null, false),
        },
        Some((f, None)) => f.to_string(),
    };
    let line = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if line.is_empty() {
        return (Value::Null, false);
    }
    let mut it = line.chars();
    let head: String = it.by_ref().take(60).collect();
    let shown = if it.next().is_some() {
        format!("{head}…")
    } else {
        head
    };
    (json!(shown), true)
}

/// Sessions as the operator's JSON should show them (without `username`).
fn sql_sessions(db: &Path, tail: &str, params: &[&dyn rusqlite::ToSql]) -> Vec<Value> {
    let c = open_ro(db);
    let mut st = c.prepare(&format!("{SESSION_SQL} {tail}")).unwrap();
    let rows = st
        .query_map(params, |r| {
            let keys = [
                "id",
                "source",
                "user_id",
                "model",
                "title",
                "started_at_epoch",
                "ended_at_epoch",
                "end_reason",
                "message_count",
                "tool_call_count",
                "input_tokens",
                "output_tokens",
                "cache_read_tokens",
                "cache_write_tokens",
                "reasoning_tokens",
                "billing_provider",
                "estimated_cost_usd",
                "actual_cost_usd",
                "cost_status",
                "api_call_count",
                "parent_session_id",
            ];
            let mut m = serde_json::Map::new();
            for (i, k) in keys.iter().enumerate() {
                m.insert(k.to_string(), val(r.get_ref(i)?));
            }
            m.insert("archived".into(), json!(r.get::<_, bool>(21)?));
            let (shown, fallback) = display_title(&m["title"], r.get(22)?);
            m.insert("display_title".into(), shown);
            m.insert("display_title_fallback".into(), json!(fallback));
            for k in ["started_at", "ended_at"] {
                let e = m[&format!("{k}_epoch")].as_f64();
                m.insert(k.into(), e.map(|e| json!(rfc(e))).unwrap_or(Value::Null));
            }
            Ok(Value::Object(m))
        })
        .unwrap();
    rows.map(|r| r.unwrap()).collect()
}

/// Drop `username` (users.db, not state.db) after checking it.
fn strip_username(mut v: Value, names: &[(&str, &str)]) -> Value {
    let uid = v["user_id"].as_str().map(str::to_string);
    let want = uid
        .as_deref()
        .filter(|_| v["source"] == "operator")
        .and_then(|u| names.iter().find(|(id, _)| *id == u).map(|(_, n)| json!(n)))
        .unwrap_or(Value::Null);
    assert_eq!(v["username"], want, "username of {v}");
    v.as_object_mut().unwrap().remove("username");
    v
}

/// JSON equality where floats may differ in the last bit: serde_json's
/// default float parser (no `float_roundtrip` feature) is not exact.
fn approx_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            (x - y).abs() <= 1e-12 * x.abs().max(y.abs()).max(1.0)
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| approx_eq(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| approx_eq(v, w)))
        }
        _ => a == b,
    }
}

#[track_caller]
fn assert_json_eq(got: &Value, want: &Value, what: &str) {
    if !approx_eq(got, want) {
        if let (Some(g), Some(w)) = (got.as_object(), want.as_object()) {
            for (k, wv) in w {
                assert!(
                    g.get(k).is_some_and(|gv| approx_eq(gv, wv)),
                    "{what}: key {k}: got {:?}, want {wv}",
                    g.get(k)
                );
            }
        }
        panic!("{what}:\n got: {got}\nwant: {want}");
    }
}

/// Row-by-row, key-by-key comparison with a readable message.
#[track_caller]
fn assert_json_rows_eq(got: &[Value], want: &[Value]) {
    assert_eq!(got.len(), want.len(), "row count");
    for (g, w) in got.iter().zip(want) {
        assert_json_eq(g, w, &format!("session {}", w["id"]));
    }
}

fn op_filter() -> String {
    format!("WHERE {OP_ROW_SQL}")
}

fn ids(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect()
}

// ---------------------------------------------------------------------------
// reads
// ---------------------------------------------------------------------------

fn list_show_cost_export_match_sql(gen: Gen) {
    let e = setup(gen, 11);
    let names = [(e.alice.as_str(), "alice"), (e.bob.as_str(), "bob")];
    let before = snapshot_non_operator(&e.db);

    // list: all operator sessions, newest first, every field
    let got = json_ok(p(&e), &["session", "list", "--limit", "10000"]);
    let want = sql_sessions(
        &e.db,
        &format!("{} ORDER BY started_at DESC, rowid", op_filter()),
        &[],
    );
    assert_eq!(want.len(), 45);
    let got: Vec<Value> = got
        .as_array()
        .unwrap()
        .iter()
        .map(|v| strip_username(v.clone(), &names))
        .collect();
    assert_json_rows_eq(&got, &want);

    // default limit 50 over every source; paging
    let all = json_ok(p(&e), &["session", "list", "--all-sources"]);
    let want_all = sql_sessions(&e.db, "ORDER BY started_at DESC, rowid LIMIT 50", &[]);
    assert_eq!(
        ids(&all),
        want_all
            .iter()
            .map(|v| v["id"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    );
    assert!(all
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["source"] != "operator"));
    let page = json_ok(
        p(&e),
        &[
            "session",
            "list",
            "--all-sources",
            "--limit",
            "7",
            "--offset",
            "5",
        ],
    );
    assert_eq!(ids(&page), ids(&all)[5..12].to_vec());

    // --user and --since
    let mine = json_ok(
        p(&e),
        &["session", "list", "--user", "alice", "--limit", "10000"],
    );
    let want = sql_sessions(
        &e.db,
        &format!(
            "{} AND user_id = ?1 ORDER BY started_at DESC, rowid",
            op_filter()
        ),
        &[&e.alice],
    );
    assert!(!want.is_empty());
    assert_eq!(
        ids(&mine),
        want.iter()
            .map(|v| v["id"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    );
    let since = 1_790_000_000.0 - 10.0 * 86_400.0;
    let since_s = rfc(since);
    let recent = json_ok(
        p(&e),
        &["session", "list", "--since", &since_s, "--limit", "10000"],
    );
    let want = sql_sessions(
        &e.db,
        &format!(
            "{} AND started_at >= ?1 ORDER BY started_at DESC, rowid",
            op_filter()
        ),
        &[&since],
    );
    assert_eq!(
        ids(&recent),
        want.iter()
            .map(|v| v["id"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    );
    let by_date = json_ok(
        p(&e),
        &[
            "session",
            "list",
            "--since",
            &since_s[..10],
            "--limit",
            "10000",
        ],
    );
    assert!(by_date.as_array().unwrap().len() >= recent.as_array().unwrap().len());
    // a duration back from now: all fixture sessions are in the past, within 400 days
    assert_eq!(
        json_ok(
            p(&e),
            &["session", "list", "--since", "400d", "--limit", "10000"]
        )
        .as_array()
        .unwrap()
        .len(),
        45
    );
    expect_code(p(&e), &["session", "list", "--user", "nobody"], 5);
    expect_code(p(&e), &["session", "list", "--since", "yesterday"], 2);
    expect_code(p(&e), &["session", "list", "--limit", "0"], 2);
    expect_code(p(&e), &["session", "list", "--limit", "10001"], 2);

    // show: session + messages in id order, every field
    let c = open_ro(&e.db);
    let id: String = c
        .query_row(
            &format!(
                "SELECT s.id FROM sessions s WHERE {} AND EXISTS (SELECT 1 FROM messages m WHERE m.session_id = s.id AND m.tool_calls IS NOT NULL) LIMIT 1",
                OP_ROW_SQL.replace("source", "s.source").replace("id LIKE", "s.id LIKE")
            ),
            [],
            |r| r.get(0),
        )
        .unwrap();
    let shown = json_ok(p(&e), &["session", "show", &id]);
    let want_s = sql_sessions(&e.db, "WHERE id = ?1", &[&id]).remove(0);
    assert_json_eq(
        &strip_username(shown["session"].clone(), &names),
        &want_s,
        "show session",
    );
    let mut st = c
        .prepare(
            "SELECT id, session_id, role, content, tool_call_id, tool_calls, tool_name, timestamp, token_count, \
             finish_reason, reasoning, active FROM messages WHERE session_id = ?1 ORDER BY id",
        )
        .unwrap();
    let want_m: Vec<Value> = st
        .query_map([&id], |r| {
            let tc: Option<String> = r.get(5)?;
            let ts: f64 = r.get(7)?;
            Ok(json!({
                "id": r.get::<_, i64>(0)?, "session_id": r.get::<_, String>(1)?, "role": val(r.get_ref(2)?),
                "content": val(r.get_ref(3)?), "tool_call_id": val(r.get_ref(4)?),
                "tool_calls": tc.map(|s| serde_json::from_str(&s).unwrap_or(Value::String(s))).unwrap_or(Value::Null),
                "tool_name": val(r.get_ref(6)?), "timestamp": rfc(ts), "timestamp_epoch": ts,
                "token_count": val(r.get_ref(8)?), "finish_reason": val(r.get_ref(9)?),
                "reasoning": val(r.get_ref(10)?), "active": r.get::<_, i64>(11)? != 0,
            }))
        })
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert!(!want_m.is_empty());
    assert_json_eq(&shown["messages"], &Value::Array(want_m), "show messages");
    // ... and Hermes agrees on the messages
    let hermes = fixture(gen, &["get", "--db", &e.db.to_string_lossy(), "--id", &id]);
    let hm: Vec<i64> = hermes["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_i64().unwrap())
        .collect();
    let om: Vec<i64> = shown["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_i64().unwrap())
        .collect();
    assert_eq!(hm, om);
    // people's view works too
    let o = expect_code(p(&e), &["session", "show", &id], 0);
    assert!(String::from_utf8_lossy(&o.stdout).contains(&id));

    // export json = show; md has one section per message
    let exported = json_ok(p(&e), &["session", "export", &id, "--format", "json"]);
    assert_eq!(exported, shown);
    let o = expect_code(p(&e), &["session", "export", &id, "--format", "md"], 0);
    let md = String::from_utf8_lossy(&o.stdout);
    assert!(md.starts_with(&format!("# Session `{id}`")), "{md}");
    assert_eq!(
        md.lines()
            .filter(|l| l.starts_with("## ") && *l != "## System prompt")
            .count(),
        shown["messages"].as_array().unwrap().len()
    );
    assert!(md.contains("Tool calls:"));

    // cost: totals from sessions, breakdown from session_model_usage
    let cost = json_ok(p(&e), &["session", "cost", &id]);
    assert_eq!(cost["session_id"], json!(id));
    for k in [
        "input_tokens",
        "output_tokens",
        "api_call_count",
        "estimated_cost_usd",
        "actual_cost_usd",
        "cost_status",
    ] {
        assert_json_eq(&cost["totals"][k], &want_s[k], k);
    }
    let eff = want_s["actual_cost_usd"]
        .as_f64()
        .or(want_s["estimated_cost_usd"].as_f64())
        .unwrap_or(0.0);
    assert_json_eq(&cost["totals"]["cost_usd"], &json!(eff), "cost_usd");
    let mut st = c
        .prepare(
            "SELECT model, billing_provider, SUM(api_call_count), SUM(input_tokens), SUM(output_tokens), \
             SUM(cache_read_tokens), SUM(cache_write_tokens), SUM(reasoning_tokens), TOTAL(estimated_cost_usd), \
             TOTAL(actual_cost_usd) FROM session_model_usage WHERE session_id = ?1 \
             GROUP BY model, billing_provider ORDER BY model, billing_provider",
        )
        .unwrap();
    let want_u: Vec<Value> = st
        .query_map([&id], |r| {
            Ok(json!({
                "model": val(r.get_ref(0)?), "billing_provider": val(r.get_ref(1)?),
                "api_call_count": r.get::<_, i64>(2)?, "input_tokens": r.get::<_, i64>(3)?,
                "output_tokens": r.get::<_, i64>(4)?, "cache_read_tokens": r.get::<_, i64>(5)?,
                "cache_write_tokens": r.get::<_, i64>(6)?, "reasoning_tokens": r.get::<_, i64>(7)?,
                "estimated_cost_usd": r.get::<_, f64>(8)?, "actual_cost_usd": r.get::<_, f64>(9)?,
            }))
        })
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert!(!want_u.is_empty());
    assert_json_eq(&cost["by_model"], &Value::Array(want_u), "by_model");

    // native sessions: only with --all-sources; unknown ids: 5
    let native = e.made["native_ids_sample"][0].as_str().unwrap();
    let o = expect_code(p(&e), &["session", "show", native], 5);
    assert!(stderr(&o).contains("--all-sources"), "{}", stderr(&o));
    let ns = json_ok(p(&e), &["session", "show", native, "--all-sources"]);
    assert_eq!(ns["session"]["id"], json!(native));
    assert_eq!(ns["session"]["username"], Value::Null);
    expect_code(p(&e), &["session", "cost", native], 5);
    expect_code(p(&e), &["session", "export", native, "--format", "md"], 5);
    for bad in ["op_ffffffffffff", "op_\u{1b}[2J", "../../etc/passwd", ""] {
        expect_code(p(&e), &["session", "show", bad], 5);
        expect_code(p(&e), &["session", "cost", bad], 5);
    }

    assert_snapshot_eq(&before, &snapshot_non_operator(&e.db), "read commands");
}

fn sql_search(db: &Path, fts: &str, expr: &str, scope: &str, limit: i64) -> Vec<(String, i64)> {
    let c = open_ro(db);
    let sql = format!(
        "SELECT m.session_id, m.id FROM {fts} JOIN messages m ON m.id = {fts}.rowid JOIN sessions s ON s.id = m.session_id \
         WHERE {fts} MATCH ?1 AND (m.active = 1 OR m.compacted = 1) {scope} ORDER BY {fts}.rank, m.id LIMIT {limit}"
    );
    let mut st = c.prepare(&sql).unwrap();
    let rows = st
        .query_map([expr], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap();
    rows.map(|r| r.unwrap()).collect()
}

fn hits(v: &Value) -> Vec<(String, i64)> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["session_id"].as_str().unwrap().to_string(),
                h["message_id"].as_i64().unwrap(),
            )
        })
        .collect()
}

fn hermes_search_sessions(
    gen: Gen,
    db: &Path,
    q: &str,
    source: Option<&str>,
) -> std::collections::BTreeSet<String> {
    let mut a = vec![
        "search",
        "--db",
        db.to_str().unwrap(),
        "--query",
        q,
        "--limit",
        "100000",
    ];
    if let Some(s) = source {
        a.extend_from_slice(&["--source", s]);
    }
    fixture(gen, &a)["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["session_id"].as_str().unwrap().to_string())
        .collect()
}

fn search_matches_sql_and_hermes_and_never_breaks_on_syntax(gen: Gen) {
    let e = setup(gen, 12);
    let before = snapshot_non_operator(&e.db);
    let op_scope = r"AND s.source = 'operator' AND s.id LIKE 'op\_%' ESCAPE '\'";

    // plain words: quoted FTS5 strings AND-ed, operator sessions only
    let got = json_ok(
        p(&e),
        &["session", "search", "nginx python", "--limit", "1000"],
    );
    let want = sql_search(
        &e.db,
        "messages_fts",
        "\"nginx\" AND \"python\"",
        op_scope,
        1000,
    );
    assert!(!want.is_empty());
    assert_eq!(hits(&got), want);
    for h in got.as_array().unwrap() {
        assert_eq!(h["source"], "operator");
        assert!(h["snippet"].as_str().unwrap().contains(">>>"), "{h}");
        let ts = h["timestamp_epoch"].as_f64().unwrap();
        assert_eq!(h["timestamp"], json!(rfc(ts)));
    }
    // the same sessions Hermes' own search finds
    let ours: std::collections::BTreeSet<String> = hits(&got).into_iter().map(|h| h.0).collect();
    assert_eq!(
        ours,
        hermes_search_sessions(gen, &e.db, "nginx python", Some("operator"))
    );

    // --user, --all-sources, --limit
    let mine = json_ok(
        p(&e),
        &[
            "session", "search", "deploy", "--user", "alice", "--limit", "1000",
        ],
    );
    let want = sql_search(
        &e.db,
        "messages_fts",
        "\"deploy\"",
        &format!("{op_scope} AND s.user_id = '{}'", e.alice),
        1000,
    );
    assert!(!want.is_empty());
    assert_eq!(hits(&mine), want);
    let all = json_ok(
        p(&e),
        &[
            "session",
            "search",
            "deploy",
            "--all-sources",
            "--limit",
            "1000",
        ],
    );
    assert_eq!(
        hits(&all),
        sql_search(&e.db, "messages_fts", "\"deploy\"", "", 1000)
    );
    assert!(all
        .as_array()
        .unwrap()
        .iter()
        .any(|h| h["source"] != "operator"));
    let allset: std::collections::BTreeSet<String> = hits(&all).into_iter().map(|h| h.0).collect();
    assert_eq!(allset, hermes_search_sessions(gen, &e.db, "deploy", None));
    let three = json_ok(p(&e), &["session", "search", "deploy", "--limit", "3"]);
    assert_eq!(
        hits(&three),
        sql_search(&e.db, "messages_fts", "\"deploy\"", op_scope, 3)
    );
    expect_code(
        p(&e),
        &["session", "search", "deploy", "--user", "nobody"],
        5,
    );

    // CJK: >= 3 characters through the trigram table, as one phrase
    for q in ["大别山项目进度", "日本語のテキスト", "服务器迁移"] {
        let got = json_ok(
            p(&e),
            &["session", "search", q, "--all-sources", "--limit", "1000"],
        );
        let want = sql_search(&e.db, "messages_fts_trigram", &format!("\"{q}\""), "", 1000);
        assert_eq!(hits(&got), want, "{q}");
        let ours: std::collections::BTreeSet<String> =
            hits(&got).into_iter().map(|h| h.0).collect();
        assert_eq!(ours, hermes_search_sessions(gen, &e.db, q, None), "{q}");
    }
    // 1-2 CJK characters: LIKE fallback, same sessions as Hermes' LIKE path
    for q in ["预算", "天"] {
        let got = json_ok(
            p(&e),
            &["session", "search", q, "--all-sources", "--limit", "1000"],
        );
        let c = open_ro(&e.db);
        let n: i64 = c
            .query_row(
                "SELECT count(*) FROM messages m WHERE (m.active = 1 OR m.compacted = 1) AND \
                 (m.content LIKE ?1 OR m.tool_name LIKE ?1 OR m.tool_calls LIKE ?1)",
                [format!("%{q}%")],
                |r| r.get(0),
            )
            .unwrap();
        assert!(n > 0, "{q}");
        assert_eq!(got.as_array().unwrap().len() as i64, n, "{q}");
        let ours: std::collections::BTreeSet<String> =
            hits(&got).into_iter().map(|h| h.0).collect();
        assert_eq!(ours, hermes_search_sessions(gen, &e.db, q, None), "{q}");
    }

    // FTS syntax is never interpreted: no errors, just (possibly empty) results
    for q in [
        "\"",
        "*",
        "NEAR(",
        "AND OR",
        "^",
        ":",
        "'",
        "deploy\"",
        "deploy*",
        "content:deploy",
        "NOT",
        "((",
        "-deploy",
        "deploy OR",
        "%",
        "_",
        "\\",
        "'; DROP TABLE sessions; --",
        "\u{1b}[31m",
    ] {
        let o = run(p(&e), &["--json", "session", "search", "--", q]);
        assert_eq!(code(&o), 0, "{q:?}: {}", stderr(&o));
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert!(v.is_array(), "{q:?}");
    }
    // "AND OR" are words, not operators: both must occur
    let ao = json_ok(
        p(&e),
        &["session", "search", "deploy AND docker", "--limit", "1000"],
    );
    assert_eq!(
        hits(&ao),
        sql_search(
            &e.db,
            "messages_fts",
            "\"deploy\" AND \"AND\" AND \"docker\"",
            op_scope,
            1000
        )
    );

    // length cap and empty queries
    let huge = "a".repeat(100 * 1024);
    let o = expect_code(p(&e), &["session", "search", &huge], 2);
    assert!(stderr(&o).contains("too long"), "{}", stderr(&o));
    expect_code(p(&e), &["session", "search", &"b".repeat(513)], 2);
    expect_code(p(&e), &["session", "search", "   "], 2);
    expect_code(p(&e), &["session", "search", ""], 2);

    assert_snapshot_eq(&before, &snapshot_non_operator(&e.db), "search");
}

// ---------------------------------------------------------------------------
// writes
// ---------------------------------------------------------------------------

fn hermes_session(gen: Gen, db: &Path, id: &str) -> Value {
    fixture(gen, &["get", "--db", &db.to_string_lossy(), "--id", id])["session"].clone()
}

fn events_of(home: &Path, id: &str) -> Vec<Value> {
    json_ok(home, &["audit", "replay", id])["events"]
        .as_array()
        .unwrap()
        .clone()
}

fn title_end_new_are_read_back_by_hermes_and_touch_nothing_else(gen: Gen) {
    let e = setup(gen, 13);
    let db = e.db.to_string_lossy().to_string();
    let before = snapshot_non_operator(&e.db);
    let c = open_ro(&e.db);
    let open_ids: Vec<String> = {
        let mut st = c
            .prepare(&format!("SELECT id FROM sessions WHERE {OP_ROW_SQL} AND ended_at IS NULL AND title IS NULL ORDER BY id"))
            .unwrap();
        st.query_map([], |r| r.get(0))
            .unwrap()
            .map(|r| r.unwrap())
            .collect()
    };
    assert!(open_ids.len() >= 4, "{open_ids:?}");
    let (t1, t2, e1) = (&open_ids[0], &open_ids[1], &open_ids[2]);

    // title: set, read back by Hermes, audited
    let r = json_ok(p(&e), &["session", "title", t1, "  Quarterly   plan  "]);
    assert_eq!(r["changed"], true);
    assert_eq!(r["from"], Value::Null);
    assert_eq!(r["to"], "Quarterly plan");
    assert_eq!(r["session"]["title"], "Quarterly plan");
    assert_eq!(hermes_session(gen, &e.db, t1)["title"], "Quarterly plan");
    let evs = events_of(p(&e), t1);
    let ev = evs
        .iter()
        .find(|v| v["type"] == "session_changed")
        .expect("session_changed event");
    assert_eq!(
        ev["data"],
        json!({"change": "title", "from": null, "to": "Quarterly plan"})
    );
    let owner: String = c
        .query_row("SELECT user_id FROM sessions WHERE id = ?1", [t1], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(ev["user_id"], json!(owner));
    // Hermes lists it with that title
    let out = hermes(
        gen,
        p(&e),
        &[
            "sessions", "list", "--source", "operator", "--limit", "1000",
        ],
    );
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(
        listed
            .lines()
            .any(|l| l.contains(t1.as_str()) && l.contains("Quarterly plan")),
        "{listed}"
    );
    // same title again: unchanged, no new event
    let r = json_ok(p(&e), &["session", "title", t1, "Quarterly plan"]);
    assert_eq!(r["changed"], false);
    assert_eq!(events_of(p(&e), t1).len(), evs.len());

    // unique titles: held by a native session → conflict 10, nothing changed
    let native_title: String = c
        .query_row(
            &format!(
                "SELECT title FROM sessions WHERE NOT ({OP_ROW_SQL}) AND title IS NOT NULL LIMIT 1"
            ),
            [],
            |r| r.get(0),
        )
        .unwrap();
    let o = expect_code(p(&e), &["session", "title", t2, &native_title], 10);
    assert!(
        stderr(&o).contains("already used by session"),
        "{}",
        stderr(&o)
    );
    assert_eq!(hermes_session(gen, &e.db, t2)["title"], Value::Null);
    expect_code(p(&e), &["session", "title", t2, "Quarterly plan"], 10);
    // too long (Hermes: max 100 characters after cleaning) → usage
    expect_code(p(&e), &["session", "title", t2, &"x".repeat(101)], 2);
    assert_eq!(
        json_ok(p(&e), &["session", "title", t2, &"é".repeat(100)])["to"],
        json!("é".repeat(100))
    );

    // hostile title: cleaned exactly as Hermes' own sanitize_title does
    let hostile = "\u{1b}[31mEvil\u{7}\nTitle\u{202e}\t\u{200b}";
    let ours = json_ok(p(&e), &["session", "title", t2, &format!("{hostile} one")]);
    let theirs = fixture(
        gen,
        &[
            "set-title",
            "--db",
            &db,
            "--id",
            &open_ids[3],
            "--title",
            &format!("{hostile} two"),
        ],
    );
    assert_eq!(theirs["ok"], true, "{theirs}");
    let hermes_t = hermes_session(gen, &e.db, &open_ids[3])["title"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        ours["to"].as_str().unwrap().replace(" one", " two"),
        hermes_t
    );
    assert_eq!(hermes_session(gen, &e.db, t2)["title"], ours["to"]);
    // and tables never carry terminal escapes (from titles or message bodies)
    common::append(
        gen,
        Path::new(&db),
        t2,
        "user",
        "\u{1b}]0;pwned\u{7} hi\n\u{1b}[2J there zebrafish",
    );
    for args in [
        vec!["session", "show", t2.as_str()],
        vec!["session", "list", "--limit", "10000"],
        vec!["session", "search", "zebrafish"],
        vec!["session", "export", t2.as_str(), "--format", "md"],
    ] {
        let o = expect_code(p(&e), &args, 0);
        assert!(
            !o.stdout.contains(&0x1b) && !o.stdout.contains(&0x07),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stdout)
        );
    }
    // empty text clears
    let r = json_ok(p(&e), &["session", "title", t2, " "]);
    assert_eq!(r["to"], Value::Null);
    assert_eq!(hermes_session(gen, &e.db, t2)["title"], Value::Null);

    // end: like Hermes, only once; the first reason wins
    let r = json_ok(p(&e), &["session", "end", e1, "--reason", "done by test"]);
    assert_eq!(r["changed"], true);
    let hs = hermes_session(gen, &e.db, e1);
    assert_eq!(hs["end_reason"], "done by test");
    assert!(hs["ended_at"].as_f64().is_some());
    assert_json_eq(&r["session"]["ended_at_epoch"], &hs["ended_at"], "ended_at");
    let r = json_ok(p(&e), &["session", "end", e1]);
    assert_eq!(r["changed"], false);
    assert_eq!(hermes_session(gen, &e.db, e1)["end_reason"], "done by test");
    let ends: Vec<Value> = events_of(p(&e), e1)
        .into_iter()
        .filter(|v| v["type"] == "session_end")
        .collect();
    assert_eq!(ends.len(), 1);
    assert_eq!(ends[0]["data"], json!({"reason": "done by test"}));
    let ended_by_hermes: (String, String) = c
        .query_row(&format!("SELECT id, end_reason FROM sessions WHERE {OP_ROW_SQL} AND ended_at IS NOT NULL AND id != ?1 LIMIT 1"), [e1], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    let r = json_ok(
        p(&e),
        &["session", "end", &ended_by_hermes.0, "--reason", "again"],
    );
    assert_eq!(r["changed"], false);
    assert_eq!(r["session"]["end_reason"], json!(ended_by_hermes.1));
    expect_code(p(&e), &["session", "end", e1, "--reason", ""], 2);

    // new: an operator session Hermes sees as its own kind of row
    let r = json_ok(p(&e), &["session", "new", "--as", "alice"]);
    let nid = r["id"].as_str().unwrap().to_string();
    assert!(
        nid.len() == 15
            && nid.starts_with("op_")
            && nid[3..]
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "{nid}"
    );
    assert_eq!(r["username"], "alice");
    let hs = hermes_session(gen, &e.db, &nid);
    assert_eq!(hs["source"], "operator");
    assert_eq!(hs["user_id"], json!(e.alice));
    assert_eq!(hs["message_count"], 0);
    assert!(hs["ended_at"].is_null());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!((hs["started_at"].as_f64().unwrap() - now).abs() < 60.0);
    json_ok(p(&e), &["session", "title", &nid, "Brand new"]);
    let out = hermes(
        gen,
        p(&e),
        &[
            "sessions", "list", "--source", "operator", "--limit", "1000",
        ],
    );
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(listed.contains(&nid), "{listed}");
    // Hermes can append to it (first writer wins: source and user stay ours)
    common::append(gen, Path::new(&db), &nid, "user", "hello from hermes");
    let hs = hermes_session(gen, &e.db, &nid);
    assert_eq!(
        (hs["source"].as_str(), hs["user_id"].as_str()),
        (Some("operator"), Some(e.alice.as_str()))
    );
    let evs = events_of(p(&e), &nid);
    assert_eq!(evs[0]["type"], "session_start");
    assert_eq!(evs[0]["user_id"], json!(e.alice));
    let o = expect_code(p(&e), &["session", "new", "--as", "carol"], 4);
    assert!(stderr(&o).contains("auditor"), "{}", stderr(&o));
    expect_code(p(&e), &["session", "new", "--as", "dave"], 4);
    expect_code(p(&e), &["session", "new", "--as", "nobody"], 5);
    expect_code(p(&e), &["user", "disable", "bob"], 0);
    expect_code(p(&e), &["session", "new", "--as", "bob"], 4);

    // native ids and unknown ids: refused, nothing changed
    let native = e.made["native_ids_sample"][0].as_str().unwrap();
    let o = expect_code(p(&e), &["session", "title", native, "mine now"], 4);
    assert!(
        stderr(&o).contains("not an operator session"),
        "{}",
        stderr(&o)
    );
    expect_code(p(&e), &["session", "end", native], 4);
    expect_code(p(&e), &["session", "title", "op_ffffffffffff", "x"], 5);
    expect_code(p(&e), &["session", "end", "op_ffffffffffff"], 5);
    expect_code(p(&e), &["session", "title", "op_'; --", "x"], 5);

    assert_snapshot_eq(&before, &snapshot_non_operator(&e.db), "title/end/new");
    fts_integrity_check(gen, &e.db);
    let _ = e.bob;
}

// ---------------------------------------------------------------------------
// reports
// ---------------------------------------------------------------------------

#[derive(Default, Debug, PartialEq)]
struct Row {
    sessions: i64,
    messages: i64,
    llm_calls: i64,
    input_tokens: i64,
    output_tokens: i64,
    cost_usd: f64,
}

/// The attribution rule of `audit daily` (src/ops/audit/reports.rs) as plain SQL over
/// state.db with events.db attached: per (user_id, model).
fn sql_daily(
    home: &Path,
    from: f64,
    to: f64,
) -> std::collections::BTreeMap<(Option<String>, Option<String>), Row> {
    let c = rusqlite::Connection::open_with_flags(
        home.join("state.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_URI,
    )
    .unwrap();
    let ev = home.join("plugins/operator/events.db");
    c.execute(
        "ATTACH ?1 AS ev",
        [format!("file:{}?mode=ro", ev.display())],
    )
    .unwrap();
    let fmt = |t: f64| {
        chrono::DateTime::from_timestamp(t as i64, 0)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
    };
    let op = r"s.source = 'operator' AND s.id LIKE 'op\_%' ESCAPE '\'";
    let sql = format!(
        "WITH called AS (SELECT DISTINCT session_id FROM ev.events WHERE type = 'llm_call' AND session_id LIKE 'op\\_%' ESCAPE '\\'),
         started AS (
            SELECT s.user_id AS u, s.model AS mo, 1 AS ns, 0 AS nm, 0 AS nc,
                   CASE WHEN s.id IN called THEN 0 ELSE s.input_tokens END AS it,
                   CASE WHEN s.id IN called THEN 0 ELSE s.output_tokens END AS ot,
                   CASE WHEN s.id IN called THEN 0 ELSE COALESCE(s.actual_cost_usd, s.estimated_cost_usd, 0) END AS co
            FROM sessions s WHERE {op} AND s.started_at >= ?1 AND s.started_at < ?2),
         msgs AS (
            SELECT s.user_id AS u, s.model AS mo, 0, 1, 0, 0, 0, 0
            FROM messages m JOIN sessions s ON s.id = m.session_id
            WHERE {op} AND m.timestamp >= ?1 AND m.timestamp < ?2),
         calls AS (
            SELECT COALESCE(e.user_id, s.user_id) AS u, COALESCE(json_extract(e.data, '$.model'), s.model) AS mo, 0, 0, 1,
                   COALESCE(json_extract(e.data, '$.input_tokens'), 0), COALESCE(json_extract(e.data, '$.output_tokens'), 0),
                   COALESCE(json_extract(e.data, '$.cost_usd'), 0)
            FROM ev.events e LEFT JOIN sessions s ON s.id = e.session_id
            WHERE e.type = 'llm_call' AND e.session_id LIKE 'op\\_%' ESCAPE '\\' AND e.ts >= ?3 AND e.ts < ?4)
         SELECT u, mo, SUM(ns), SUM(nm), SUM(nc), SUM(it), SUM(ot), TOTAL(co)
         FROM (SELECT * FROM started UNION ALL SELECT * FROM msgs UNION ALL SELECT * FROM calls) GROUP BY u, mo"
    );
    let mut st = c.prepare(&sql).unwrap();
    let rows = st
        .query_map(rusqlite::params![from, to, fmt(from), fmt(to)], |r| {
            Ok((
                (r.get(0)?, r.get(1)?),
                Row {
                    sessions: r.get(2)?,
                    messages: r.get(3)?,
                    llm_calls: r.get(4)?,
                    input_tokens: r.get(5)?,
                    output_tokens: r.get(6)?,
                    cost_usd: r.get(7)?,
                },
            ))
        })
        .unwrap();
    rows.map(|r| r.unwrap()).collect()
}

fn row_of(v: &Value) -> Row {
    Row {
        sessions: v["sessions"].as_i64().unwrap(),
        messages: v["messages"].as_i64().unwrap(),
        llm_calls: v["llm_calls"].as_i64().unwrap(),
        input_tokens: v["input_tokens"].as_i64().unwrap(),
        output_tokens: v["output_tokens"].as_i64().unwrap(),
        cost_usd: v["cost_usd"].as_f64().unwrap(),
    }
}

fn assert_rows_eq(got: &Row, want: &Row, what: &str) {
    let round = |r: &Row| Row {
        cost_usd: (r.cost_usd * 1e9).round() / 1e9,
        ..*r
    };
    assert_eq!(round(got), round(want), "{what}");
}

fn check_daily(e: &Env, date: &str, tz: &str) -> Value {
    let r = json_ok(p(e), &["audit", "daily", "--date", date, "--tz", tz]);
    let (from, to) = (
        r["from_epoch"].as_f64().unwrap(),
        r["to_epoch"].as_f64().unwrap(),
    );
    let want = sql_daily(p(e), from, to);
    let mut by_user: std::collections::BTreeMap<Option<String>, Row> = Default::default();
    let mut by_model: std::collections::BTreeMap<Option<String>, Row> = Default::default();
    let mut total = Row::default();
    for ((u, m), w) in &want {
        for (map, k) in [(&mut by_user, u), (&mut by_model, m)] {
            let x = map.entry(k.clone()).or_default();
            x.sessions += w.sessions;
            x.messages += w.messages;
            x.llm_calls += w.llm_calls;
            x.input_tokens += w.input_tokens;
            x.output_tokens += w.output_tokens;
            x.cost_usd += w.cost_usd;
        }
        total.sessions += w.sessions;
        total.messages += w.messages;
        total.llm_calls += w.llm_calls;
        total.input_tokens += w.input_tokens;
        total.output_tokens += w.output_tokens;
        total.cost_usd += w.cost_usd;
    }
    assert_rows_eq(
        &row_of(&r["totals"]),
        &total,
        &format!("{date} {tz} totals"),
    );
    let got_users: Vec<Option<String>> = r["by_user"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["user_id"].as_str().map(str::to_string))
        .collect();
    // By username (alice, bob), owners without an account last.
    let mut want_users: Vec<Option<String>> = by_user.keys().cloned().collect();
    want_users.sort_by_key(|k| match k.as_deref() {
        Some(x) if x == e.alice => (0, k.clone()),
        Some(x) if x == e.bob => (1, k.clone()),
        _ => (2, k.clone()),
    });
    assert_eq!(got_users, want_users);
    for u in r["by_user"].as_array().unwrap() {
        let k = u["user_id"].as_str().map(str::to_string);
        assert_rows_eq(&row_of(u), &by_user[&k], &format!("user {k:?}"));
        let name = match k.as_deref() {
            Some(x) if x == e.alice => "alice",
            Some(x) if x == e.bob => "bob",
            _ => "(unknown)",
        };
        assert_eq!(u["username"], name);
    }
    let got_models: Vec<Option<String>> = r["by_model"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["model"].as_str().map(str::to_string))
        .collect();
    assert_eq!(got_models, by_model.keys().cloned().collect::<Vec<_>>());
    for m in r["by_model"].as_array().unwrap() {
        let k = m["model"].as_str().map(str::to_string);
        assert_rows_eq(&row_of(m), &by_model[&k], &format!("model {k:?}"));
    }
    r
}

fn audit_daily_and_user_match_sql(gen: Gen) {
    let e = setup(gen, 14);
    // the fixture's busiest operator day (UTC)
    let c = open_ro(&e.db);
    let (day, sid, uid): (String, String, String) = c
        .query_row(
            &format!(
                "SELECT date(started_at, 'unixepoch'), id, user_id FROM sessions WHERE {OP_ROW_SQL} \
                 AND date(started_at, 'unixepoch') = (SELECT date(started_at, 'unixepoch') d FROM sessions WHERE {OP_ROW_SQL} \
                 GROUP BY d ORDER BY count(*) DESC, d LIMIT 1) ORDER BY started_at LIMIT 1"
            ),
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    let before = check_daily(&e, &day, "UTC");
    assert!(before["totals"]["sessions"].as_i64().unwrap() >= 2);
    assert!(before["totals"]["input_tokens"].as_i64().unwrap() > 0);
    check_daily(&e, &day, "Asia/Shanghai");
    check_daily(&e, &day, "America/Los_Angeles");

    // per-call llm_call events (as the chat layer will write them) take over
    // from the session's cumulative totals
    let app = hermes_operator::app::App::load(
        hermes_operator::home::Home::at(p(&e)),
        hermes_operator::store::events::Actor::new("test"),
        |_| {},
    )
    .unwrap();
    for (i, model) in [
        "anthropic/claude-sonnet-4",
        "openai/gpt-4o-mini",
        "anthropic/claude-sonnet-4",
    ]
    .iter()
    .enumerate()
    {
        app.record(
            app.event(EventKind::LlmCall, json!({"model": model, "input_tokens": 100 + i, "output_tokens": 10, "cost_usd": 0.25}))
                .session(&sid)
                .user(&uid),
        )
        .unwrap();
    }
    // a call with no model/user falls back to the session's
    app.record(
        app.event(
            EventKind::LlmCall,
            json!({"input_tokens": 7, "output_tokens": 3}),
        )
        .session(&sid),
    )
    .unwrap();
    let after = check_daily(&e, &day, "UTC");
    assert_eq!(after["totals"]["sessions"], before["totals"]["sessions"]);
    assert!(
        after["totals"]["input_tokens"].as_i64().unwrap()
            < before["totals"]["input_tokens"].as_i64().unwrap()
    );
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let t = check_daily(&e, &today, "UTC");
    assert_eq!(t["totals"]["llm_calls"], 4);
    assert_eq!(t["totals"]["input_tokens"], 100 + 101 + 102 + 7);
    // default date = today
    let d = json_ok(p(&e), &["audit", "daily"]);
    assert_eq!(d["date"], json!(today));
    assert_eq!(d["tz"], "UTC");
    expect_code(p(&e), &["audit", "daily", "--tz", "Mars/Olympus"], 2);
    expect_code(p(&e), &["audit", "daily", "--date", "2026-13-01"], 2);
    let o = expect_code(p(&e), &["audit", "daily", "--date", &day], 0);
    assert!(String::from_utf8_lossy(&o.stdout).contains("alice"));

    // audit user: account, totals, newest sessions, newest events
    json_ok(p(&e), &["session", "title", &sid, "report me"]);
    let r = json_ok(p(&e), &["audit", "user", "alice"]);
    assert_eq!(r["user"]["id"], json!(e.alice));
    assert_eq!(r["user"]["username"], "alice");
    let (n, it, ot, cost): (i64, i64, i64, f64) = c
        .query_row(
            &format!(
                "SELECT count(*), TOTAL(input_tokens), TOTAL(output_tokens), TOTAL(COALESCE(actual_cost_usd, estimated_cost_usd, 0)) \
                 FROM sessions WHERE {OP_ROW_SQL} AND user_id = ?1"
            ),
            [&e.alice],
            |r| Ok((r.get(0)?, r.get::<_, f64>(1)? as i64, r.get::<_, f64>(2)? as i64, r.get(3)?)),
        )
        .unwrap();
    assert_eq!(r["sessions"]["count"], n);
    assert_eq!(r["sessions"]["input_tokens"], it);
    assert_eq!(r["sessions"]["output_tokens"], ot);
    assert!((r["sessions"]["cost_usd"].as_f64().unwrap() - cost).abs() < 1e-9);
    let want: Vec<String> = sql_sessions(
        &e.db,
        &format!("WHERE {OP_ROW_SQL} AND user_id = ?1 ORDER BY started_at DESC, rowid LIMIT 20"),
        &[&e.alice],
    )
    .iter()
    .map(|v| v["id"].as_str().unwrap().to_string())
    .collect();
    assert_eq!(ids(&r["recent_sessions"]), want);
    let evs = r["recent_events"].as_array().unwrap();
    assert!(evs.iter().all(|v| v["user_id"] == json!(e.alice)));
    if uid == e.alice {
        assert!(evs.iter().any(|v| v["type"] == "llm_call"));
        assert!(evs.iter().any(|v| v["type"] == "session_changed"));
    }
    assert!(evs.iter().any(|v| v["type"] == "user_created"));
    expect_code(p(&e), &["audit", "user", "nobody"], 5);
    let o = expect_code(p(&e), &["audit", "user", "alice"], 0);
    assert!(String::from_utf8_lossy(&o.stdout).contains(&e.alice));
}

// ---------------------------------------------------------------------------
// bad state.db
// ---------------------------------------------------------------------------

const READS: &[&[&str]] = &[
    &["session", "list"],
    &["session", "list", "--all-sources"],
    &["session", "show", "op_0123456789ab"],
    &["session", "search", "deploy"],
    &["session", "cost", "op_0123456789ab"],
    &["session", "export", "op_0123456789ab", "--format", "md"],
    &["audit", "daily", "--date", "2026-09-01"],
    &["audit", "user", "alice"],
];

const WRITES: &[&[&str]] = &[
    &["session", "title", "op_0123456789ab", "x"],
    &["session", "end", "op_0123456789ab"],
    &["session", "new", "--as", "alice"],
];

#[test]
fn missing_state_db_is_never_created() {
    let home = TestHome::new();
    add_user(home.path(), "alice", "user");
    let path = home.state_db().display().to_string();
    // Before Hermes' first run, lists and reports are empty (exit 0) with
    // one note naming where state.db is expected; a named session is
    // simply not found (exit 5), with the same note.
    for args in READS {
        let want = if matches!(args[1], "show" | "cost" | "export") {
            5
        } else {
            0
        };
        let o = expect_code(home.path(), args, want);
        let err = stderr(&o);
        assert!(
            err.contains("has not written state.db yet") && err.contains(&path),
            "{args:?}: {err}"
        );
        assert!(!home.state_db().exists(), "{args:?} created state.db");
    }
    // Writes need Hermes' database: not found, and said how it comes to be.
    for args in WRITES {
        let o = expect_code(home.path(), args, 5);
        let err = stderr(&o);
        assert!(err.contains(&path), "{args:?}: {err}");
        assert!(err.contains("Hermes creates"), "{args:?}: {err}");
        assert!(!home.state_db().exists(), "{args:?} created state.db");
    }
    // --json: the data on stdout, the note on stderr.
    let o = run(home.path(), &["--json", "session", "list"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v, serde_json::json!([]));
    assert!(stderr(&o).contains("has not written state.db yet"));
    assert!(!home.state_db().exists());
}

fn corrupt_or_incompatible_state_db_exits_9(gen: Gen) {
    let home = TestHome::new();
    add_user(home.path(), "alice", "user");
    let garbage: Vec<u8> = (0..16384u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(home.state_db(), &garbage).unwrap();
    for args in READS.iter().chain(WRITES) {
        let o = expect_code(home.path(), args, 9);
        assert!(stderr(&o).contains("state.db"), "{args:?}: {}", stderr(&o));
    }
    assert_eq!(
        std::fs::read(home.state_db()).unwrap(),
        garbage,
        "garbage left as it was"
    );

    // a state.db without a column the operator needs
    let e = setup(gen, 15);
    {
        let c = rusqlite::Connection::open(&e.db).unwrap();
        c.execute_batch("ALTER TABLE sessions DROP COLUMN cost_status")
            .unwrap();
    }
    let before = snapshot_non_operator(&e.db);
    let op_id = e.made["operator_ids"][0].as_str().unwrap();
    for args in [
        vec!["session", "list"],
        vec!["session", "show", op_id],
        vec!["session", "title", op_id, "t"],
        vec!["audit", "daily", "--date", "2026-09-01"],
    ] {
        let o = expect_code(p(&e), &args, 9);
        assert!(
            stderr(&o).contains("sessions.cost_status missing"),
            "{args:?}: {}",
            stderr(&o)
        );
    }
    assert_snapshot_eq(
        &before,
        &snapshot_non_operator(&e.db),
        "incompatible schema",
    );
    // ... while extra columns from a newer Hermes are fine
    let e = setup(gen, 16);
    {
        let c = rusqlite::Connection::open(&e.db).unwrap();
        c.execute_batch(
            "ALTER TABLE sessions ADD COLUMN future_col TEXT; \
             ALTER TABLE messages ADD COLUMN future_blob BLOB; \
             CREATE TABLE future_table (k TEXT PRIMARY KEY, v BLOB);",
        )
        .unwrap();
    }
    assert_eq!(
        json_ok(p(&e), &["session", "list", "--limit", "10000"])
            .as_array()
            .unwrap()
            .len(),
        45
    );
}

fn locked_state_db_busy_for_writers_readers_fine(gen: Gen) {
    let e = setup(gen, 17);
    let op_id = e.made["operator_ids"][0].as_str().unwrap().to_string();
    let title_before = hermes_session(gen, &e.db, &op_id)["title"].clone();
    let before = snapshot_non_operator(&e.db);
    let lock = hold_lock(gen, &e.db, 30.0);
    // reads are not blocked by a writer holding BEGIN IMMEDIATE
    let t0 = std::time::Instant::now();
    assert_eq!(
        json_ok(p(&e), &["session", "list", "--limit", "10000"])
            .as_array()
            .unwrap()
            .len(),
        45
    );
    json_ok(p(&e), &["session", "show", &op_id]);
    json_ok(p(&e), &["session", "search", "deploy"]);
    assert!(
        t0.elapsed().as_secs_f64() < 5.0,
        "reads waited {:?}",
        t0.elapsed()
    );
    // writers give up with Busy (6) after their retries
    let o = expect_code(p(&e), &["session", "title", &op_id, "while locked"], 6);
    assert!(stderr(&o).contains("locked"), "{}", stderr(&o));
    expect_code(p(&e), &["session", "new", "--as", "alice"], 6);
    drop(lock);
    assert_eq!(hermes_session(gen, &e.db, &op_id)["title"], title_before);
    assert_eq!(
        json_ok(p(&e), &["session", "list", "--limit", "10000"])
            .as_array()
            .unwrap()
            .len(),
        45
    );
    assert!(events_for_session_absent(p(&e), &op_id));
    assert_snapshot_eq(&before, &snapshot_non_operator(&e.db), "locked");
}

fn events_for_session_absent(home: &Path, id: &str) -> bool {
    let o = run(home, &["--json", "audit", "replay", id]);
    code(&o) == 5
}

/// Issue 22: dynamic completion (`source <(COMPLETE=bash hermes-operator)`)
/// offers the home's usernames and its operator session ids — the ones
/// Hermes' state.db holds, never a native session — through bash itself,
/// for the home named on the command line or in HERMES_HOME.
fn completion_offers_usernames_and_operator_session_ids(gen: Gen) {
    let e = setup(gen, 21);
    let reg = Command::new(env!("CARGO_BIN_EXE_hermes-operator"))
        .env("COMPLETE", "bash")
        .output()
        .unwrap();
    assert!(reg.status.success(), "{}", stderr(&reg));
    let script = e.home.path().join("complete.bash");
    std::fs::write(&script, &reg.stdout).unwrap();
    let home = e.home.path().to_string_lossy().to_string();
    let env = [("HERMES_HOME", home.as_str())];

    // On an empty word clap offers the options too.
    let values = |line: &str, env: &[(&str, &str)]| {
        let mut v: Vec<String> = bash_complete(&script, line, env)
            .into_iter()
            .filter(|w| !w.starts_with('-'))
            .collect();
        v.sort();
        v
    };
    let users = values("hermes-operator user show ", &env);
    assert_eq!(users, ["alice", "bob", "carol", "dave"]);
    assert_eq!(
        bash_complete(&script, "hermes-operator chat --as bo", &env),
        ["bob"]
    );
    // The home on the command line wins; none at all: nothing, no error.
    let flag = format!("hermes-operator --hermes-home {home} audit user ca");
    assert_eq!(
        bash_complete(&script, &flag, &[("HERMES_HOME", "/nonexistent")]),
        ["carol"]
    );
    assert!(values(
        "hermes-operator user show ",
        &[("HERMES_HOME", "/nonexistent")]
    )
    .is_empty());

    let c = open_ro(&e.db);
    let mut st = c
        .prepare(&format!("SELECT id FROM sessions WHERE {OP_ROW_SQL}"))
        .unwrap();
    let mut op_ids: Vec<String> = st
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    op_ids.sort();
    assert_eq!(op_ids.len(), 45);
    for line in [
        "hermes-operator session show ",
        "hermes-operator audit replay op_",
        "hermes-operator chat --as alice --session ",
    ] {
        assert_eq!(values(line, &env), op_ids, "{line}");
    }
}

hermes_tests!(
    completion_offers_usernames_and_operator_session_ids,
    search_finds_words_hermes_leaves_unindexed,
    corrupt_or_incompatible_state_db_exits_9,
    list_show_cost_export_match_sql,
    search_matches_sql_and_hermes_and_never_breaks_on_syntax,
    title_end_new_are_read_back_by_hermes_and_touch_nothing_else,
    audit_daily_and_user_match_sql,
    locked_state_db_busy_for_writers_readers_fine,
);

fn session_set(v: &Value) -> std::collections::BTreeSet<String> {
    hits(v).into_iter().map(|h| h.0).collect()
}

fn matched_by(v: &Value, id: &str) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .filter(|h| h["session_id"] == id)
        .map(|h| h["matched_by"].as_str().unwrap().to_string())
        .collect()
}

/// Every operator session whose messages contain the query is found, also
/// where Hermes' own index leaves the row out (0.22: tool results are not in
/// the trigram index, and only their first 8,192 characters are in the word
/// index); native sessions are never scanned; the journal mode Hermes chose
/// (WAL on 0.19, DELETE on 0.22 with SQLite < 3.51.3) stays as it was.
fn search_finds_words_hermes_leaves_unindexed(gen: Gen) {
    let e = setup(gen, 19);
    let ops: Vec<String> = e.made["operator_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let native = e.made["native_ids_sample"][0].as_str().unwrap().to_string();
    let (in_user, in_tool, in_long_tool) = (&ops[0], &ops[1], &ops[2]);
    let filler = "x".repeat(9000);
    common::append(gen, &e.db, in_user, "user", "请安排琥珀数据库迁移");
    common::append(
        gen,
        &e.db,
        in_tool,
        "tool",
        "{\"output\": \"琥珀数据库迁移完成\"}",
    );
    common::append(
        gen,
        &e.db,
        in_long_tool,
        "tool",
        &format!("{filler} 琥珀数据库迁移 zebraquokka"),
    );
    common::append(gen, &e.db, &native, "tool", "琥珀数据库迁移 zebraquokka");
    let mode = |db: &Path| -> String {
        open_ro(db)
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap()
    };
    let mode_before = mode(&e.db);
    assert_eq!(
        mode_before,
        if gen == Gen::H019 { "wal" } else { "delete" },
        "the journal mode {} chose",
        gen.label()
    );
    let before = snapshot_non_operator(&e.db);
    let want: std::collections::BTreeSet<String> = [in_user, in_tool, in_long_tool]
        .iter()
        .map(|s| s.to_string())
        .collect();

    // >= 3 CJK characters: the trigram index, then the scan
    let got = json_ok(
        p(&e),
        &["session", "search", "琥珀数据库迁移", "--limit", "100"],
    );
    assert_eq!(session_set(&got), want, "{got}");
    assert_eq!(matched_by(&got, in_user), ["trigram"]);
    let tool_method = if gen == Gen::H019 { "trigram" } else { "scan" };
    assert_eq!(matched_by(&got, in_tool), [tool_method], "{got}");
    assert_eq!(matched_by(&got, in_long_tool), [tool_method], "{got}");
    // ... where Hermes' own search finds only what its index holds
    let hermes = hermes_search_sessions(gen, &e.db, "琥珀数据库迁移", Some("operator"));
    if gen == Gen::H019 {
        assert_eq!(hermes, want);
    } else {
        assert_eq!(hermes, [in_user.to_string()].into_iter().collect());
    }
    // 1-2 CJK characters: LIKE over every readable row
    let two = json_ok(p(&e), &["session", "search", "琥珀", "--limit", "100"]);
    assert_eq!(session_set(&two), want, "{two}");
    assert!(two
        .as_array()
        .unwrap()
        .iter()
        .all(|h| h["matched_by"] == "like"));
    // a plain word past the indexed prefix of a long tool result
    let word = json_ok(
        p(&e),
        &["session", "search", "zebraquokka", "--limit", "100"],
    );
    assert_eq!(
        session_set(&word),
        [in_long_tool.to_string()].into_iter().collect(),
        "{word}"
    );
    let word_method = if gen == Gen::H019 { "fts" } else { "scan" };
    assert_eq!(matched_by(&word, in_long_tool), [word_method]);
    // the human output says when the scan ran
    let o = expect_code(p(&e), &["session", "search", "琥珀数据库迁移"], 0);
    assert_eq!(
        stderr(&o).contains("also scanned"),
        gen == Gen::H022,
        "{}",
        stderr(&o)
    );
    // native sessions are never scanned: --all-sources finds the native
    // tool row only where Hermes indexes it
    let all = json_ok(
        p(&e),
        &[
            "session",
            "search",
            "琥珀数据库迁移",
            "--all-sources",
            "--limit",
            "100",
        ],
    );
    assert_eq!(
        session_set(&all).contains(&native),
        gen == Gen::H019,
        "{all}"
    );

    // a write keeps Hermes' journal mode and every non-operator row
    expect_code(p(&e), &["session", "title", in_user, "Amber migration"], 0);
    assert_eq!(mode(&e.db), mode_before);
    assert_snapshot_eq(&before, &snapshot_non_operator(&e.db), "search + title");
    // session show/export carry the system prompt Hermes stored (inline on
    // 0.19, by hash in system_prompts on 0.22), where the session has one
    let with_prompt: Option<String> = open_ro(&e.db)
        .query_row(
            &format!(
                "SELECT id FROM sessions WHERE {} AND {} ORDER BY id LIMIT 1",
                OP_ROW_SQL,
                if gen == Gen::H019 {
                    "system_prompt IS NOT NULL"
                } else {
                    "system_prompt_hash IS NOT NULL"
                }
            ),
            [],
            |r| r.get(0),
        )
        .optional()
        .unwrap();
    let with_prompt = with_prompt.expect("the fixture gives about half the sessions a prompt");
    let shown = json_ok(p(&e), &["session", "show", &with_prompt]);
    assert_eq!(shown["system_prompt"], "You are Hermes.", "{shown}");
    let hermes_view = fixture(
        gen,
        &[
            "export",
            "--db",
            &e.db.to_string_lossy(),
            "--id",
            &with_prompt,
        ],
    );
    assert!(
        hermes_view.to_string().contains("You are Hermes."),
        "Hermes' own export carries the prompt too: {hermes_view}"
    );
    let md = expect_code(
        p(&e),
        &["session", "export", &with_prompt, "--format", "md"],
        0,
    );
    assert!(String::from_utf8_lossy(&md.stdout).contains("## System prompt"));
}
