//! A database from every schema version hermes-operator has written
//! (tests/fixtures/schemas, made from each version's own migration SQL; see
//! the README there) opens with this binary, migrates to the current
//! version with its rows intact, ends with the same schema as a fresh
//! database, and — events.db — still verifies, prune anchor included.

use crate::common::{op, stderr, TestHome};
use serde_json::Value;
use std::path::{Path, PathBuf};

const USERS_VERSIONS: i64 = 10;
const EVENTS_VERSIONS: i64 = 2;
const PASSWORD: &str = "correct horse battery staple 19";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/schemas")
        .join(name)
}

fn plugin_dir(home: &TestHome) -> PathBuf {
    let d = home.path().join("plugins/operator");
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn json_ok(home: &TestHome, args: &[&str], stdin: Option<&str>) -> Value {
    use std::io::Write;
    let mut c = op(home.path());
    c.arg("--json").args(args);
    let o = if let Some(input) = stdin {
        c.stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = c.spawn().unwrap();
        writeln!(child.stdin.take().unwrap(), "{input}").unwrap();
        child.wait_with_output().unwrap()
    } else {
        c.output().unwrap()
    };
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

fn user_version(db: &Path) -> i64 {
    rusqlite::Connection::open(db)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap()
}

/// Tables and indexes (type, name, SQL), to compare a migrated file with a fresh one.
type Schema = Vec<(String, String, Option<String>)>;

fn schema(db: &Path) -> Schema {
    let c = rusqlite::Connection::open(db).unwrap();
    let mut s = c
        .prepare("SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name")
        .unwrap();
    let rows = s
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    rows
}

/// Both databases of a home made by this binary.
fn fresh_schemas() -> (Schema, Schema) {
    let home = TestHome::new();
    json_ok(
        &home,
        &["user", "add", "zed", "--role", "admin", "--password-stdin"],
        Some(PASSWORD),
    );
    let d = plugin_dir(&home);
    (schema(&d.join("users.db")), schema(&d.join("events.db")))
}

#[test]
fn every_users_db_version_migrates_and_lists_its_users() {
    let (fresh_users, _) = fresh_schemas();
    for v in 1..=USERS_VERSIONS {
        let home = TestHome::new();
        let db = plugin_dir(&home).join("users.db");
        std::fs::copy(fixture(&format!("users_v{v}.db")), &db).unwrap();
        assert_eq!(user_version(&db), v);
        // A write opens it read-write: the migrations run, then the new row.
        json_ok(
            &home,
            &[
                "user",
                "add",
                "carol",
                "--role",
                "viewer",
                "--password-stdin",
            ],
            Some(PASSWORD),
        );
        assert_eq!(user_version(&db), USERS_VERSIONS, "users_v{v}.db");
        assert_eq!(
            schema(&db),
            fresh_users,
            "users_v{v}.db migrated differs from a fresh users.db"
        );
        let list = json_ok(&home, &["user", "list"], None);
        let got: Vec<(String, String, bool)> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|u| {
                (
                    u["username"].as_str().unwrap().to_string(),
                    u["role"].as_str().unwrap().to_string(),
                    u["must_change_password"].as_bool().unwrap(),
                )
            })
            .collect();
        let want: Vec<(String, String, bool)> =
            [("alice", "admin"), ("bob", "user"), ("carol", "viewer")]
                .iter()
                .map(|(n, r)| (n.to_string(), r.to_string(), false))
                .collect();
        assert_eq!(got, want, "users_v{v}.db");
        let alice = &list[0];
        assert_eq!(alice["id"], "u_00000000000000a1", "users_v{v}.db");
        assert_eq!(
            alice["last_login_at"], "2026-11-24T04:00:00.000000Z",
            "users_v{v}.db"
        );
        if v >= 7 {
            // bob's personal API key from v7 survives.
            let keys = json_ok(&home, &["user", "key", "list", "bob"], None);
            assert_eq!(
                keys.as_array().map(Vec::len),
                Some(1),
                "users_v{v}.db: {keys}"
            );
        }
    }
}

#[test]
fn every_events_db_version_migrates_and_verifies() {
    let (_, fresh_events) = fresh_schemas();
    // (events kept, anchor seq) per fixture; v2's was pruned at seq 2.
    let want = [(4u64, None, 4i64), (3, Some(2i64), 5)];
    for v in 1..=EVENTS_VERSIONS {
        let home = TestHome::new();
        let db = plugin_dir(&home).join("events.db");
        std::fs::copy(fixture(&format!("events_v{v}.db")), &db).unwrap();
        assert_eq!(user_version(&db), v);
        let (events, anchor, last) = want[(v - 1) as usize];
        let r = json_ok(&home, &["audit", "verify"], None);
        assert_eq!(r["ok"], true, "events_v{v}.db: {r}");
        assert_eq!(r["events"], events, "events_v{v}.db: {r}");
        assert_eq!(
            r["anchor_seq"],
            serde_json::json!(anchor),
            "events_v{v}.db: {r}"
        );
        assert_eq!(r["last_seq"], last, "events_v{v}.db: {r}");
        // Appending (user add records user_created) migrates it; the old
        // chain and the new event still verify as one.
        json_ok(
            &home,
            &[
                "user",
                "add",
                "carol",
                "--role",
                "viewer",
                "--password-stdin",
            ],
            Some(PASSWORD),
        );
        assert_eq!(user_version(&db), EVENTS_VERSIONS, "events_v{v}.db");
        assert_eq!(
            schema(&db),
            fresh_events,
            "events_v{v}.db migrated differs from a fresh events.db"
        );
        let r = json_ok(&home, &["audit", "verify"], None);
        assert_eq!(r["ok"], true, "events_v{v}.db after an append: {r}");
        assert_eq!(r["events"], events + 1, "events_v{v}.db: {r}");
        assert_eq!(r["last_seq"], last + 1, "events_v{v}.db: {r}");
    }
}
