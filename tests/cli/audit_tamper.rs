//! The event log's integrity promises (docs/design.md §7): `audit verify` detects an
//! edited byte, a deleted event, an inserted event, two swapped events, and —
//! given an exported checkpoint — a truncated tail and a rebuilt log; it
//! names the first bad event and exits with the integrity code (3).
//! Plus: several processes appending at once while verify runs.

use hermes_operator::store::events::EventKind;
use hermes_operator::store::events::{event_hash, event_id, Actor, EventStore, NewEvent};
use rusqlite::{params, Connection};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const INTEGRITY: i32 = 3;

/// seq, ts, type, session_id, user_id, actor, data
type RowParts = (
    i64,
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    String,
);

struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    /// A HERMES_HOME with `n` events appended through the library.
    fn with_events(n: usize) -> Home {
        let dir = tempfile::tempdir().unwrap();
        let h = Home { dir };
        let store = EventStore::open(&h.events_db()).unwrap();
        let actor = Actor::new("cli:test");
        let evs: Vec<NewEvent> = (0..n)
            .map(|i| {
                NewEvent::new(
                    EventKind::Note,
                    &actor,
                    json!({"i": i, "text": format!("hello {i}")}),
                )
                .session(format!("op_{:012x}", i % 3))
            })
            .collect();
        store.append_batch(&evs).unwrap();
        h
    }
    fn path(&self) -> &Path {
        self.dir.path()
    }
    fn events_db(&self) -> PathBuf {
        self.path().join("plugins/operator/events.db")
    }
    fn db(&self) -> Connection {
        Connection::open(self.events_db()).unwrap()
    }
    fn op(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_hermes-operator"))
            .arg("--hermes-home")
            .arg(self.path())
            .args(args)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }
    /// `audit verify --json [extra]` → (exit code, report or error JSON).
    fn verify(&self, extra: &[&str]) -> (i32, Value, String) {
        let mut args = vec!["--json", "audit", "verify"];
        args.extend_from_slice(extra);
        let o = self.op(&args);
        let stdout = String::from_utf8_lossy(&o.stdout).to_string();
        let stderr = String::from_utf8_lossy(&o.stderr).to_string();
        let v = serde_json::from_str(stdout.trim()).unwrap_or(Value::Null);
        (o.status.code().unwrap(), v, stderr)
    }
    fn checkpoint(&self) -> String {
        let o = self.op(&["audit", "checkpoint"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    }
}

fn assert_problem(h: &Home, extra: &[&str], kind: &str, seq: i64) {
    let (code, v, stderr) = h.verify(extra);
    assert_eq!(code, INTEGRITY, "exit code; stderr: {stderr}; report: {v}");
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(v["problem"]["kind"], kind, "{v}");
    assert_eq!(v["problem"]["seq"], seq, "{v}");
    // The human message names the first bad event.
    assert!(stderr.contains("integrity FAILED"), "{stderr}");
    if let Some(id) = v["problem"]["event_id"].as_str() {
        assert!(stderr.contains(id), "{stderr} should name {id}");
    }
}

#[test]
fn clean_log_verifies() {
    let h = Home::with_events(200);
    let (code, v, _) = h.verify(&[]);
    assert_eq!(code, 0);
    assert_eq!(v["ok"], true);
    assert_eq!(v["events"], 200);
    assert_eq!(v["last_seq"], 200);
}

#[test]
fn edited_byte_in_any_column_is_detected() {
    for (col, sql) in [
        (
            "data",
            "UPDATE events SET data = replace(data, 'hello 49', 'hellp 49') WHERE seq = 50",
        ),
        (
            "ts",
            "UPDATE events SET ts = replace(ts, substr(ts, 18, 1), '9') WHERE seq = 50",
        ),
        ("type", "UPDATE events SET type = 'nota' WHERE seq = 50"),
        (
            "session",
            "UPDATE events SET session_id = 'op_00000000000f' WHERE seq = 50",
        ),
        ("user", "UPDATE events SET user_id = 'u_1' WHERE seq = 50"),
        (
            "actor",
            "UPDATE events SET actor = 'cli:tesu' WHERE seq = 50",
        ),
        (
            "hash",
            "UPDATE events SET hash = zeroblob(32) WHERE seq = 50",
        ),
    ] {
        let h = Home::with_events(100);
        let n = h.db().execute(sql, []).unwrap();
        assert_eq!(n, 1, "{col}");
        let (code, v, _) = h.verify(&[]);
        assert_eq!(code, INTEGRITY, "{col}: {v}");
        assert_eq!(v["problem"]["seq"], 50, "{col}: {v}");
        assert_eq!(v["problem"]["kind"], "modified", "{col}: {v}");
    }
    // A single flipped bit in the middle of the canonical data.
    let h = Home::with_events(100);
    let data: String = h
        .db()
        .query_row("SELECT data FROM events WHERE seq = 77", [], |r| r.get(0))
        .unwrap();
    let mut bytes = data.into_bytes();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    h.db()
        .execute(
            "UPDATE events SET data = ?1 WHERE seq = 77",
            [String::from_utf8(bytes).unwrap()],
        )
        .unwrap();
    assert_problem(&h, &[], "modified", 77);
}

#[test]
fn deleted_event_is_detected() {
    let h = Home::with_events(100);
    h.db()
        .execute("DELETE FROM events WHERE seq = 40", [])
        .unwrap();
    assert_problem(&h, &[], "deleted", 41);

    // Deleting the head of the log, without a signed prune anchor.
    let h = Home::with_events(100);
    h.db()
        .execute("DELETE FROM events WHERE seq <= 5", [])
        .unwrap();
    assert_problem(&h, &[], "deleted", 6);
}

#[test]
fn inserted_event_is_detected() {
    // The attacker renumbers 50.. up by one and inserts a forged event at 50
    // whose own hash is correct and which links to 49.
    let h = Home::with_events(100);
    let db = h.db();
    for seq in (50..=100).rev() {
        db.execute("UPDATE events SET seq = seq + 1 WHERE seq = ?1", [seq])
            .unwrap();
    }
    let prev: Vec<u8> = db
        .query_row("SELECT hash FROM events WHERE seq = 49", [], |r| r.get(0))
        .unwrap();
    let ts = "2026-01-01T00:00:00.000000Z";
    let data = r#"{"forged":true}"#;
    let hash = event_hash(50, ts, "note", None, None, "cli:evil", data, &prev);
    db.execute(
        "INSERT INTO events (seq, id, ts, type, session_id, user_id, actor, data, prev_hash, hash)
         VALUES (50, ?1, ?2, 'note', NULL, NULL, 'cli:evil', ?3, ?4, ?5)",
        params![event_id(ts, 50), ts, data, prev, &hash[..]],
    )
    .unwrap();
    assert_problem(&h, &[], "inserted_or_reordered", 51);
}

#[test]
fn swapped_events_are_detected() {
    let h = Home::with_events(100);
    let db = h.db();
    db.execute_batch(
        "UPDATE events SET seq = -1 WHERE seq = 60;
         UPDATE events SET seq = 60 WHERE seq = 61;
         UPDATE events SET seq = 61 WHERE seq = -1;",
    )
    .unwrap();
    assert_problem(&h, &[], "inserted_or_reordered", 60);
}

#[test]
fn truncated_tail_is_detected_with_an_exported_checkpoint() {
    let h = Home::with_events(100);
    let line = h.checkpoint(); // seq 100 vouched for; seq 101 is the checkpoint event
    let offhost = h.path().join("offhost-checkpoints.txt");
    std::fs::write(&offhost, &line).unwrap();
    h.db()
        .execute("DELETE FROM events WHERE seq > 90", [])
        .unwrap();
    // The local copy alone catches it ...
    assert_problem(&h, &[], "truncated", 100);
    // ... and when the attacker also removed the local copy, only the
    // off-host checkpoint can tell.
    std::fs::remove_file(h.path().join("profiles/operator/checkpoints.log")).unwrap();
    assert_eq!(
        h.verify(&[]).0,
        0,
        "without checkpoints a truncated tail is undetectable"
    );
    let off = offhost.to_str().unwrap();
    assert_problem(&h, &["--checkpoints", off], "truncated", 100);
}

#[test]
fn rebuilt_log_is_detected_with_an_exported_checkpoint() {
    let h = Home::with_events(100);
    let line = h.checkpoint();
    let offhost = h.path().join("offhost.txt");
    std::fs::write(&offhost, &line).unwrap();
    std::fs::remove_file(h.path().join("profiles/operator/checkpoints.log")).unwrap();
    // Rewrite history from seq 10 on and recompute every hash consistently.
    let db = h.db();
    db.execute(
        "UPDATE events SET data = '{\"i\":9,\"text\":\"rewritten\"}' WHERE seq = 10",
        [],
    )
    .unwrap();
    let mut prev: Vec<u8> = db
        .query_row("SELECT hash FROM events WHERE seq = 9", [], |r| r.get(0))
        .unwrap();
    let rows: Vec<RowParts> = db
        .prepare("SELECT seq, ts, type, session_id, user_id, actor, data FROM events WHERE seq >= 10 ORDER BY seq")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for (seq, ts, kind, s, u, actor, data) in rows {
        let hash = event_hash(
            seq,
            &ts,
            &kind,
            s.as_deref(),
            u.as_deref(),
            &actor,
            &data,
            &prev,
        );
        db.execute(
            "UPDATE events SET prev_hash = ?1, hash = ?2 WHERE seq = ?3",
            params![prev, &hash[..], seq],
        )
        .unwrap();
        prev = hash.to_vec();
    }
    assert_eq!(
        h.verify(&[]).0,
        0,
        "a consistent rebuild passes the chain check alone"
    );
    assert_problem(
        &h,
        &["--checkpoints", offhost.to_str().unwrap()],
        "rewritten",
        100,
    );
}

#[test]
fn forged_or_foreign_checkpoints_are_rejected() {
    let h = Home::with_events(20);
    let line = h.checkpoint();
    // Tampered signature.
    let mut bad: Value = serde_json::from_str(line.trim()).unwrap();
    let sig = bad["signature"].as_str().unwrap().to_string();
    let flipped = format!(
        "{}{}",
        if sig.starts_with('0') { "1" } else { "0" },
        &sig[1..]
    );
    bad["signature"] = Value::String(flipped);
    let f = h.path().join("bad.txt");
    std::fs::write(&f, bad.to_string()).unwrap();
    assert_problem(
        &h,
        &["--checkpoints", f.to_str().unwrap()],
        "bad_checkpoint",
        20,
    );
    // A checkpoint signed by another installation's key.
    let other = Home::with_events(20);
    let other_line = other.checkpoint();
    let f2 = h.path().join("other.txt");
    std::fs::write(&f2, other_line).unwrap();
    let (code, v, _) = h.verify(&["--checkpoints", f2.to_str().unwrap()]);
    assert_eq!(code, INTEGRITY);
    assert_eq!(v["problem"]["kind"], "bad_checkpoint", "{v}");
    // A line that is not a checkpoint at all: a usage error naming the line.
    let f3 = h.path().join("garbage.txt");
    std::fs::write(&f3, "hello\n").unwrap();
    let (code, _, stderr) = h.verify(&["--checkpoints", f3.to_str().unwrap()]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("garbage.txt:1"), "{stderr}");
}

#[test]
fn prune_keeps_the_chain_verifiable_and_the_anchor_is_protected() {
    let h = Home::with_events(100);
    // Age the first 60 events.
    h.db()
        .execute(
            "UPDATE events SET ts = '2020-01-01T00:00:00.000000Z' WHERE seq <= 60",
            [],
        )
        .unwrap();
    // That edit broke their hashes: prune must refuse to destroy evidence.
    let o = h.op(&["audit", "prune", "--older-than", "30d", "--yes"]);
    assert_eq!(
        o.status.code(),
        Some(INTEGRITY),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    // Properly old events: rebuild a home whose first events are genuinely old.
    let h = Home::with_events(0);
    {
        let store = EventStore::open(&h.events_db()).unwrap();
        let actor = Actor::new("cli:test");
        for i in 0..50 {
            store
                .append(NewEvent::new(EventKind::Note, &actor, json!({"i": i})))
                .unwrap();
        }
    }
    // Re-hash the first 30 with an old timestamp so they are valid and old.
    let db = h.db();
    let mut prev = vec![0u8; 32];
    let rows: Vec<(i64, String, String, String)> = db
        .prepare("SELECT seq, type, actor, data FROM events ORDER BY seq")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for (seq, kind, actor, data) in rows {
        let ts: String = if seq <= 30 {
            format!("2020-01-01T00:00:{:02}.000000Z", seq)
        } else {
            db.query_row("SELECT ts FROM events WHERE seq = ?1", [seq], |r| r.get(0))
                .unwrap()
        };
        let hash = event_hash(seq, &ts, &kind, None, None, &actor, &data, &prev);
        db.execute(
            "UPDATE events SET ts = ?1, id = ?2, prev_hash = ?3, hash = ?4 WHERE seq = ?5",
            params![ts, event_id(&ts, seq), prev, &hash[..], seq],
        )
        .unwrap();
        prev = hash.to_vec();
    }
    assert_eq!(h.verify(&[]).0, 0);
    let line = h.checkpoint(); // vouches for seq 50, before the prune
    let o = h.op(&["--json", "audit", "prune", "--older-than", "30d", "--yes"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["removed"], 30);
    assert_eq!(v["anchor_seq"], 30);
    let count: i64 = db
        .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
        .unwrap();
    assert_eq!(count, 22, "20 kept + checkpoint + prune events");
    let (code, v, stderr) = h.verify(&[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(v["anchor_seq"], 30);
    assert_eq!(v["first_seq"], 31);
    let f = h.path().join("cp.txt");
    std::fs::write(&f, line).unwrap();
    assert_eq!(h.verify(&["--checkpoints", f.to_str().unwrap()]).0, 0);

    // Forging the anchor (to hide more deletions) breaks its signature.
    db.execute("DELETE FROM events WHERE seq <= 35", [])
        .unwrap();
    let h35: Vec<u8> = vec![7u8; 32];
    db.execute("UPDATE anchor SET seq = 35, hash = ?1", [h35])
        .unwrap();
    assert_problem(&h, &[], "bad_anchor", 35);
    // Removing the anchor altogether: the log no longer starts at seq 1.
    db.execute("DELETE FROM anchor", []).unwrap();
    assert_problem(&h, &[], "deleted", 36);
}

#[test]
fn replay_shows_integrity_per_event() {
    let h = Home::with_events(30);
    let o = h.op(&["--json", "audit", "replay", "op_000000000001"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["integrity"], "ok");
    let evs = v["events"].as_array().unwrap();
    assert_eq!(evs.len(), 10);
    assert!(evs
        .windows(2)
        .all(|w| w[0]["seq"].as_i64() < w[1]["seq"].as_i64()));
    assert!(evs
        .iter()
        .all(|e| e["session_id"] == "op_000000000001" && e["integrity"] == "ok"));
    // Tamper with one of this session's events: replay flags it and exits 3.
    h.db()
        .execute(
            "UPDATE events SET data = '{\"i\":1,\"text\":\"x\"}' WHERE seq = 2",
            [],
        )
        .unwrap();
    let o = h.op(&["--json", "audit", "replay", "op_000000000001"]);
    assert_eq!(o.status.code(), Some(INTEGRITY));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["integrity"], "bad");
    assert_eq!(v["events"][0]["integrity"], "bad");
    assert_eq!(v["events"][1]["integrity"], "ok");
    // Unknown or hostile session ids: not found, nothing printed on stdout.
    for id in [
        "op_ffffffffffff",
        "op_x'; DROP TABLE events;--",
        "\u{1b}[31mred",
    ] {
        let o = h.op(&["audit", "replay", id]);
        assert_eq!(o.status.code(), Some(5), "{id}");
        assert!(o.stdout.is_empty());
        assert!(
            !String::from_utf8_lossy(&o.stderr).contains('\u{1b}'),
            "no raw escapes echoed"
        );
    }
}

fn append_events_example() -> PathBuf {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_hermes-operator"));
    let ex = bin.parent().unwrap().join("examples/append_events");
    // Always ask cargo: `cargo test --test cli` alone does not build
    // examples, and a stale one may predate the current schema. A no-op when fresh.
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut args = vec!["build", "--example", "append_events"];
    if bin.parent().unwrap().ends_with("release") {
        args.push("--release");
    }
    let st = Command::new(cargo)
        .args(&args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .unwrap();
    assert!(st.success(), "building the append_events example failed");
    assert!(ex.exists(), "{} missing after build", ex.display());
    ex
}

#[test]
fn four_processes_append_5000_each_while_verify_runs() {
    let h = Home::with_events(0);
    let ex = append_events_example();
    let db = h.events_db();
    let children: Vec<_> = (0..4)
        .map(|i| {
            Command::new(&ex)
                .arg(&db)
                .arg("5000")
                .arg("1")
                .arg(format!("w{i}"))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    // Verify over and over while they append: every snapshot is a valid chain.
    let mut verifies = 0;
    let mut last_seen = 0;
    let mut children = children;
    loop {
        let (code, v, stderr) = h.verify(&[]);
        assert_eq!(code, 0, "verify during appends: {stderr} {v}");
        let n = v["events"].as_i64().unwrap();
        assert!(n >= last_seen, "the log never shrinks");
        last_seen = n;
        verifies += 1;
        if children.iter_mut().all(|c| c.try_wait().unwrap().is_some()) {
            break;
        }
    }
    for c in children {
        let o = c.wait_with_output().unwrap();
        assert!(
            o.status.success(),
            "appender failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    assert!(verifies >= 2, "verify ran while appending");
    let (code, v, _) = h.verify(&[]);
    assert_eq!(code, 0);
    assert_eq!(v["events"], 20_000);
    assert_eq!(v["first_seq"], 1);
    assert_eq!(v["last_seq"], 20_000);
    let conn = h.db();
    for i in 0..4 {
        let n: i64 = conn
            .query_row(
                "SELECT count(*) FROM events WHERE actor = ?1",
                [format!("bench:w{i}")],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 5000, "writer {i}");
    }
    let (min, max, count): (i64, i64, i64) = conn
        .query_row("SELECT min(seq), max(seq), count(*) FROM events", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .unwrap();
    assert_eq!((min, max, count), (1, 20_000, 20_000), "no gap");
}
