//! The fleet's audit log on a real PostgreSQL (issue 20, its first part):
//! one hash chain per host, gap-free under concurrent appenders of several
//! hosts, each tamper class found by the same verifier as events.db, a
//! chain moved from events.db verifying with every hash unchanged, and
//! PostgreSQL going away mid-way a clear error that loses nothing.
use crate::common::pg::PgCluster;
use ed25519_dalek::SigningKey;
use hermes_operator::error::Kind;
use hermes_operator::ops::audit::fleet::{verify_fleet, verify_host, FleetCheckpoint};
use hermes_operator::ops::audit::integrity::{verify, Checkpoint};
use hermes_operator::store::events::{Actor, EventKind, EventStore, NewEvent};
use hermes_operator::store::pg::{Pg, PgEventLog};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;

fn ev(n: usize, host: &str) -> NewEvent {
    NewEvent::new(
        EventKind::UserMessage,
        &Actor::new(format!("test:{host}")),
        json!({"content": format!("message {n} from {host}"), "n": n}),
    )
    .session(format!("op_{host}_{:02}", n % 7))
    .user(format!("u_{}", n % 3))
}

fn connect(url: &str) -> Arc<Pg> {
    Arc::new(Pg::connect(url).expect("connect"))
}

/// Three hosts, two appenders each (own connections, like two `serve`
/// replicas), batches of 1-3: every chain is gap-free and verifies, and
/// its recorded head is its last event.
#[test]
fn appenders_of_three_hosts_at_once_leave_three_whole_chains() {
    let pg = PgCluster::start();
    let url = pg.database("fleet");
    let first = connect(&url);
    assert_eq!(first.schema_version().unwrap(), 3);
    let mut threads = Vec::new();
    for host in ["alpha", "beta", "gamma"] {
        for writer in 0..2 {
            let url = url.clone();
            threads.push(std::thread::spawn(move || {
                let log = PgEventLog::new(connect(&url), host).unwrap();
                let mut n = 0;
                for round in 0..40 {
                    let size = 1 + (round + writer) % 3;
                    let batch: Vec<NewEvent> = (0..size).map(|i| ev(n + i, host)).collect();
                    let stored = log.append_batch(&batch).unwrap();
                    assert_eq!(stored.len(), size);
                    n += size;
                }
                n
            }));
        }
    }
    let mut written: BTreeMap<&str, i64> = BTreeMap::new();
    for (i, t) in threads.into_iter().enumerate() {
        *written
            .entry(["alpha", "beta", "gamma"][i / 2])
            .or_default() += t.join().unwrap() as i64;
    }
    let heads = PgEventLog::heads(&first).unwrap();
    assert_eq!(
        heads
            .iter()
            .map(|h| (h.host.as_str(), h.seq))
            .collect::<BTreeMap<_, _>>(),
        written
    );
    let reports = verify_fleet(&first, None, &[], &[]).unwrap();
    assert_eq!(reports.len(), 3);
    for r in &reports {
        assert!(r.report.ok, "{r:?}");
        assert_eq!(r.report.events as i64, written[r.host.as_str()], "{r:?}");
        assert_eq!(r.report.first_seq, Some(1));
    }
    // One host alone.
    let one = verify_fleet(&first, Some("beta"), &[], &[]).unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].host, "beta");
    // A host name that could not be one.
    for bad in ["", "a b", "x/y", &"h".repeat(65)] {
        let e = PgEventLog::new(first.clone(), bad).err().unwrap();
        assert_eq!(e.kind, Kind::Usage, "{bad:?}");
    }
}

/// A superuser's edits, one class at a time on a fresh chain of 30
/// events: each is found, and named as events.db's verifier names it.
#[test]
fn every_tamper_class_is_found_in_postgresql() {
    let pg = PgCluster::start();
    let key = SigningKey::from_bytes(&[7u8; 32]);
    let cases: [(&str, &str, &str); 6] = [
        ("modify", "UPDATE events SET data = '{\"content\":\"edited\"}' WHERE host = 'h' AND seq = 12", "modified"),
        ("delete", "DELETE FROM events WHERE host = 'h' AND seq = 12", "deleted"),
        (
            "insert",
            "UPDATE events SET seq = seq + 1000000 WHERE host = 'h' AND seq >= 12; \
             UPDATE events SET seq = seq - 999999 WHERE host = 'h' AND seq > 1000000; \
             INSERT INTO events SELECT host, 12, id, ts, type, session_id, user_id, actor, data, prev_hash, hash \
             FROM events WHERE host = 'h' AND seq = 5",
            "inserted_or_reordered",
        ),
        (
            "reorder",
            "UPDATE events SET seq = 1000012 WHERE host = 'h' AND seq = 12; \
             UPDATE events SET seq = 12 WHERE host = 'h' AND seq = 13; \
             UPDATE events SET seq = 13 WHERE host = 'h' AND seq = 1000012",
            "inserted_or_reordered",
        ),
        ("truncate", "DELETE FROM events WHERE host = 'h' AND seq > 27", "truncated"),
        ("rewrite", "", "rewritten"),
    ];
    for (i, (what, sql, found)) in cases.iter().enumerate() {
        let url = pg.database(&format!("t{i}"));
        let db = connect(&url);
        let log = PgEventLog::new(db.clone(), "h").unwrap();
        let evs: Vec<NewEvent> = (0..30).map(|n| ev(n, "h")).collect();
        let stored = log.append_batch(&evs).unwrap();
        // A checkpoint kept off the database, at seq 20.
        let cp = Checkpoint::sign(&key, 20, &stored[19].hash, Some(stored[19].id.clone()));
        let before = verify_host(
            &log.chain(),
            &[key.verifying_key()],
            std::slice::from_ref(&cp),
        )
        .unwrap();
        assert!(before.ok, "{what}: {before:?}");
        let mut su = pg.superuser(&format!("t{i}"));
        if *what == "rewrite" {
            // Everything from seq 15 re-made with new content and new
            // hashes, the head moved along: the chain is consistent again;
            // only the checkpoint knows.
            su.batch_execute("DELETE FROM events WHERE host = 'h' AND seq >= 15; \
                              UPDATE chain_heads SET seq = 14, hash = (SELECT hash FROM events WHERE host = 'h' AND seq = 14) WHERE host = 'h'")
                .unwrap();
            let forged: Vec<NewEvent> = (15..31).map(|n| ev(n + 1000, "h")).collect();
            log.append_batch(&forged).unwrap();
            let alone = verify_host(&log.chain(), &[key.verifying_key()], &[]).unwrap();
            assert!(
                alone.ok,
                "a rewrite with its head moved is consistent: {alone:?}"
            );
        } else {
            su.batch_execute(sql).unwrap();
        }
        let r = verify_host(&log.chain(), &[key.verifying_key()], &[cp]).unwrap();
        assert!(!r.ok, "{what}: {r:?}");
        assert_eq!(r.problem.as_ref().unwrap().kind, *found, "{what}: {r:?}");
    }
}

/// A host's events.db moved in as it is: the same events, hashes and head,
/// verified by the same verifier before and after; a second move into the
/// same host is refused and changes nothing.
#[test]
fn an_events_db_chain_moves_in_without_rehashing() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = EventStore::open(&dir.path().join("events.db")).unwrap();
    for n in 0..40 {
        sqlite.append(ev(n, "old")).unwrap();
    }
    let local = verify(&sqlite, &[], &[]).unwrap();
    assert!(local.ok);
    let mut events = Vec::new();
    sqlite
        .in_range(None, None, |e| {
            events.push(e);
            Ok(())
        })
        .unwrap();
    assert_eq!(events.len(), 40);

    let pg = PgCluster::start();
    let db = connect(&pg.database("moved"));
    let log = PgEventLog::new(db.clone(), "web-1").unwrap();
    log.import(&events, sqlite.anchor().unwrap().as_ref())
        .unwrap();
    let moved = verify_host(&log.chain(), &[], &[]).unwrap();
    assert!(moved.ok, "{moved:?}");
    assert_eq!(
        (moved.events, moved.last_seq, &moved.head_hash),
        (local.events, local.last_seq, &local.head_hash)
    );
    let e = log.import(&events, None).unwrap_err();
    assert_eq!(e.kind, Kind::Conflict, "{e}");
    assert_eq!(PgEventLog::heads(&db).unwrap()[0].seq, 40);
    // Appends go on from the moved head.
    let next = log.append_batch(&[ev(99, "web-1")]).unwrap();
    assert_eq!(next[0].seq, 41);
    assert_eq!(next[0].prev_hash, events[39].hash);
    assert!(verify_host(&log.chain(), &[], &[]).unwrap().ok);
}

/// PostgreSQL down: connecting is `Unavailable` (exit 7) naming the
/// database and never the password; restarted under an open connection,
/// the next append fails clearly, the one after on a new connection works,
/// and the chain has every committed event once.
#[test]
fn postgresql_down_or_restarted_is_a_clear_error_and_loses_nothing() {
    let pg = PgCluster::start();
    let url = pg.database("faults");
    let db = connect(&url);
    let log = PgEventLog::new(db.clone(), "h").unwrap();
    log.append_batch(&[ev(1, "h"), ev(2, "h")]).unwrap();

    let closed = url.replace(&format!(":{}/", pg.port), ":1/");
    let e = Pg::connect(&closed).err().unwrap();
    assert_eq!(e.kind, Kind::Unavailable, "{e}");
    assert_eq!(e.kind.exit_code(), 7);
    let text = format!("{e} {}", e.hint_text().unwrap_or_default());
    assert!(text.contains("127.0.0.1:1/faults"), "{text}");
    assert!(!text.contains("pw-"), "the password leaked: {text}");

    pg.restart();
    let e = log.append_batch(&[ev(3, "h")]).unwrap_err();
    assert_eq!(e.kind, Kind::Unavailable, "{e}");
    let again = PgEventLog::new(connect(&url), "h").unwrap();
    again.append_batch(&[ev(4, "h")]).unwrap();
    let r = verify_host(&again.chain(), &[], &[]).unwrap();
    assert!(r.ok, "{r:?}");
    assert_eq!(r.events, 3, "the failed append left nothing: {r:?}");
}

/// `store migrate` and `store verify` on a real home: the URL without its
/// password (the password from OPERATOR_STORE_PASSWORD), a first move, a
/// second that moves only what came since, the fleet verified, a tampered
/// row found (exit 3); a URL with a password refused before connecting
/// (exit 2), PostgreSQL down (exit 7), and nothing written by either.
#[test]
fn store_migrate_and_verify_from_the_command_line() {
    use crate::common::{add_user, op, stderr, TestHome};
    let pg = PgCluster::start();
    let url = pg.database("cli");
    let bare = url.replace(&format!(":{}@", password_of(&url)), "@");
    assert!(!bare.contains("pw-"), "{bare}");
    let home = TestHome::new();
    let h = home.path();
    add_user(h, "alice", "user");
    add_user(h, "bob", "user");
    let store = |args: &[&str]| {
        op(h)
            .arg("--json")
            .arg("store")
            .args(args)
            .env("OPERATOR_STORE_PASSWORD", password_of(&url))
            .output()
            .unwrap()
    };
    let o = store(&["migrate", "--to", &bare, "--host", "web-1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let m: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(m["host"], "web-1");
    assert_eq!(m["seq_before"], 0);
    assert_eq!(m["moved"], m["local"]["events"], "{m}");
    assert_eq!(m["head_hash"], m["local"]["head_hash"], "{m}");
    assert!(!String::from_utf8_lossy(&o.stdout).contains("pw-"));
    let first = m["moved"].as_i64().unwrap();
    assert!(first >= 2, "{m}");
    // The accounts went with the first move.
    assert_eq!(m["accounts"]["status"], "moved", "{m}");
    assert!(m["accounts"]["tables"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r[0] == "users" && r[1] == 2));

    add_user(h, "carol", "user");
    let o = store(&["migrate", "--to", &bare, "--host", "web-1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let m: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(m["seq_before"], first, "{m}");
    assert_eq!(m["moved"], 1, "{m}");
    let again = store(&["migrate", "--to", &bare, "--host", "web-1"]);
    let m: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(m["moved"], 0, "{m}");
    // The fleet has accounts now: this host's (carol came since) are not
    // moved again.
    assert_eq!(m["accounts"]["status"], "fleet_has_accounts", "{m}");
    assert_eq!(m["accounts"]["accounts"], 2, "{m}");
    // `--store` points one command at the fleet (its accounts), without
    // touching config.yaml; a URL with a password is refused up front.
    let users = |extra: &[&str]| -> Vec<String> {
        let o = op(h)
            .args(["--json"])
            .args(extra)
            .args(["user", "list"])
            .env("OPERATOR_STORE_PASSWORD", password_of(&url))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .map(|u| u["username"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(users(&["--store", &bare]), ["alice", "bob"]);
    assert_eq!(users(&[]), ["alice", "bob", "carol"]);
    let o = op(h)
        .args(["--store", &url, "user", "list"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("carries a password"), "{}", stderr(&o));
    assert!(!stderr(&o).contains(&password_of(&url)));

    let o = store(&["verify", "--url", &bare]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v[0]["host"], "web-1");
    assert_eq!(v[0]["ok"], true, "{v}");
    assert_eq!(v[0]["events"], first + 1, "{v}");

    // A fleet checkpoint kept off the database, and verify against it.
    let o = store(&["checkpoint", "--url", &bare]);
    assert!(o.status.success(), "{}", stderr(&o));
    let line = String::from_utf8(o.stdout).unwrap();
    assert!(line.contains("\"host\":\"web-1\""), "{line}");
    let cp_file = home.path().join("fleet-checkpoints.txt");
    std::fs::write(&cp_file, &line).unwrap();
    let o = store(&[
        "verify",
        "--url",
        &bare,
        "--checkpoints",
        cp_file.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v[0]["checkpoints_checked"], 1, "{v}");
    std::fs::write(&cp_file, "not a checkpoint\n").unwrap();
    let o = store(&[
        "verify",
        "--url",
        &bare,
        "--checkpoints",
        cp_file.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));

    // A row changed behind the log's back.
    pg.superuser("cli")
        .batch_execute("UPDATE events SET actor = 'cli:mallory' WHERE host = 'web-1' AND seq = 2")
        .unwrap();
    let o = store(&["verify", "--url", &bare]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("web-1"), "{}", stderr(&o));
    let o = store(&["verify", "--url", &bare, "--host", "nope"]);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));

    // The password in argv: refused before any connection.
    let heads = || {
        pg.superuser("cli")
            .query_one("SELECT count(*) FROM events", &[])
            .unwrap()
            .get::<_, i64>(0)
    };
    let before = heads();
    let o = op(h)
        .args(["store", "migrate", "--to", &url, "--host", "web-2"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("OPERATOR_STORE_PASSWORD"),
        "{}",
        stderr(&o)
    );
    assert!(!stderr(&o).contains("pw-"), "{}", stderr(&o));
    // TLS demanded of a server without it: refused, never plain instead.
    let o = store(&["verify", "--url", &format!("{bare}?sslmode=require")]);
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
    assert!(stderr(&o).contains("TLS"), "{}", stderr(&o));
    // A bad host name, then PostgreSQL down.
    let o = store(&["migrate", "--to", &bare, "--host", "a b"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    pg.stop("fast");
    let o = store(&["migrate", "--to", &bare, "--host", "web-2"]);
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
    assert!(stderr(&o).contains("PostgreSQL"), "{}", stderr(&o));
    pg.restart();
    assert_eq!(heads(), before, "nothing was written");
}

/// TLS to the fleet's database: verified against `sslrootcert` (the
/// server's CA) and refused against the system's roots, which do not know
/// it; a database that takes TLS only refuses the plain default.
#[test]
fn store_over_tls_verifies_the_server() {
    use crate::common::{add_user, op, stderr, TestHome};
    let (pg, ca) = PgCluster::start_tls("fleet_tls");
    let url = pg.database("fleet_tls");
    let bare = url.replace(&format!(":{}@", password_of(&url)), "@");
    let home = TestHome::new();
    let h = home.path();
    add_user(h, "alice", "user");
    let store = |args: &[&str]| {
        op(h)
            .arg("--json")
            .arg("store")
            .args(args)
            .env("OPERATOR_STORE_PASSWORD", password_of(&url))
            .output()
            .unwrap()
    };
    let verified = format!("{bare}?sslmode=require&sslrootcert={}", ca.display());
    let o = store(&["migrate", "--to", &verified, "--host", "web-1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let m: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(m["moved"].as_i64().unwrap() >= 1, "{m}");
    let o = store(&["verify", "--url", &verified]);
    assert!(o.status.success(), "{}", stderr(&o));
    // The system's roots do not know this CA: a configuration error that says what to do.
    let o = store(&["verify", "--url", &format!("{bare}?sslmode=require")]);
    assert_eq!(o.status.code(), Some(8), "{}", stderr(&o));
    assert!(stderr(&o).contains("sslrootcert"), "{}", stderr(&o));
    // Loopback without sslmode is plain TCP, which this database refuses.
    let o = store(&["verify", "--url", &bare]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(!stderr(&o).contains("pw-"), "{}", stderr(&o));
    // An unreadable CA file is a clear error too.
    let o = store(&[
        "verify",
        "--url",
        &format!("{bare}?sslmode=require&sslrootcert=/nonexistent.pem"),
    ]);
    assert_eq!(o.status.code(), Some(8), "{}", stderr(&o));
    assert!(stderr(&o).contains("/nonexistent.pem"), "{}", stderr(&o));
}

/// `store.url` in config.yaml: the `store` commands' default, and what
/// `doctor` checks — connection and schema, TLS, clock skew, this host's
/// log behind in PostgreSQL — and says when PostgreSQL is down.
#[test]
fn doctor_checks_the_fleet_store() {
    use crate::common::{add_user, op, stderr, TestHome};
    let pg = PgCluster::start();
    let url = pg.database("doc");
    let bare = url.replace(&format!(":{}@", password_of(&url)), "@");
    let home = TestHome::new();
    let h = home.path();
    add_user(h, "alice", "user");
    let dir = h.join("profiles/operator");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("config.yaml"),
        format!("store:\n  url: {bare}\n  host: web-7\n"),
    )
    .unwrap();
    let env = dir.join(".env");
    let mut text = std::fs::read_to_string(&env).unwrap_or_default();
    text.push_str(&format!("OPERATOR_STORE_PASSWORD={}\n", password_of(&url)));
    std::fs::write(&env, text).unwrap();
    let checks = || {
        let o = op(h).args(["--json", "doctor"]).output().unwrap();
        let v: serde_json::Value =
            serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", stderr(&o)));
        let all = v["checks"].as_array().cloned().unwrap_or_default();
        all.into_iter()
            .filter(|c| c["name"].as_str().unwrap_or("").starts_with("fleet_"))
            .map(|c| (c["name"].as_str().unwrap().to_string(), c))
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    let c = checks();
    assert_eq!(c["fleet_store"]["status"], "pass", "{c:?}");
    assert!(
        c["fleet_store"]["detail"]
            .as_str()
            .unwrap()
            .contains("web-7"),
        "{c:?}"
    );
    assert_eq!(c["fleet_tls"]["detail"], "off (loopback)", "{c:?}");
    assert_eq!(c["fleet_clock"]["status"], "pass", "{c:?}");
    assert_eq!(
        c["fleet_log"]["status"], "warn",
        "events.db is ahead: {c:?}"
    );
    // `store migrate` without --to uses store.url and store.host.
    let o = op(h).args(["--json", "store", "migrate"]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let m: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(m["host"], "web-7");
    let c = checks();
    assert_eq!(c["fleet_log"]["status"], "pass", "{c:?}");
    // PostgreSQL down: a failed check that says so (and no password in it).
    pg.stop("fast");
    let c = checks();
    assert_eq!(c["fleet_store"]["status"], "fail", "{c:?}");
    let detail = c["fleet_store"].to_string();
    assert!(
        detail.contains("PostgreSQL") && !detail.contains("pw-"),
        "{detail}"
    );
    assert!(!c.contains_key("fleet_clock"), "{c:?}");
    // A password in store.url is a configuration error.
    std::fs::write(dir.join("config.yaml"), format!("store:\n  url: {url}\n")).unwrap();
    let o = op(h).args(["store", "verify"]).output().unwrap();
    assert_eq!(o.status.code(), Some(8), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("OPERATOR_STORE_PASSWORD"),
        "{}",
        stderr(&o)
    );
    assert!(!stderr(&o).contains("pw-"), "{}", stderr(&o));
}

fn password_of(url: &str) -> String {
    let after = url.split("postgres:").nth(2).unwrap();
    after.split('@').next().unwrap().to_string()
}

/// Fleet checkpoints (every host's head, signed, kept off the database)
/// find what the chains and recorded heads alone cannot: a tail removed
/// with its head moved back, a host deleted whole; an edited or foreign
/// checkpoint is itself an error.
#[test]
fn fleet_checkpoints_find_a_moved_head_and_a_deleted_host() {
    let pg = PgCluster::start();
    let db = connect(&pg.database("cp"));
    for host in ["a", "b"] {
        let log = PgEventLog::new(db.clone(), host).unwrap();
        log.append_batch(&(0..10).map(|n| ev(n, host)).collect::<Vec<_>>())
            .unwrap();
    }
    let key = SigningKey::from_bytes(&[9u8; 32]);
    let vk = key.verifying_key();
    let cp = FleetCheckpoint::sign(&key, &PgEventLog::heads(&db).unwrap());
    assert_eq!(cp.heads.len(), 2);
    let all = verify_fleet(
        &db,
        None,
        std::slice::from_ref(&vk),
        std::slice::from_ref(&cp),
    )
    .unwrap();
    assert!(
        all.iter()
            .all(|r| r.report.ok && r.report.checkpoints_checked == 1),
        "{all:?}"
    );

    let mut su = pg.superuser("cp");
    su.batch_execute(
        "DELETE FROM events WHERE host = 'b' AND seq > 7; \
         UPDATE chain_heads SET seq = 7, hash = (SELECT hash FROM events WHERE host = 'b' AND seq = 7) WHERE host = 'b'",
    )
    .unwrap();
    let b = PgEventLog::new(db.clone(), "b").unwrap();
    assert!(
        verify_host(&b.chain(), &[vk], &[]).unwrap().ok,
        "consistent without the checkpoint"
    );
    let r = verify_fleet(
        &db,
        None,
        std::slice::from_ref(&vk),
        std::slice::from_ref(&cp),
    )
    .unwrap();
    assert_eq!(r[1].host, "b");
    assert_eq!(
        r[1].report.problem.as_ref().unwrap().kind,
        "truncated",
        "{r:?}"
    );
    assert!(r[0].report.ok, "{r:?}");

    su.batch_execute(
        "DELETE FROM events WHERE host = 'a'; DELETE FROM chain_heads WHERE host = 'a'",
    )
    .unwrap();
    let r = verify_fleet(
        &db,
        None,
        std::slice::from_ref(&vk),
        std::slice::from_ref(&cp),
    )
    .unwrap();
    assert_eq!(r[0].host, "a");
    assert_eq!(
        r[0].report.problem.as_ref().unwrap().kind,
        "deleted",
        "{r:?}"
    );

    let mut edited = cp.clone();
    edited.heads[1].seq = 7;
    let e = verify_fleet(&db, None, std::slice::from_ref(&vk), &[edited]).unwrap_err();
    assert_eq!(e.kind, Kind::Integrity, "{e}");
    let other = SigningKey::from_bytes(&[1u8; 32]).verifying_key();
    let e = verify_fleet(&db, None, std::slice::from_ref(&other), &[cp]).unwrap_err();
    assert!(e.to_string().contains("different key"), "{e}");
}

/// `audit replay --fleet` and `audit tail --fleet [--follow]` read the
/// fleet's database (store.url): a session on whichever host holds it,
/// every host's newest events with a host column, and new ones as any host
/// appends them; an event changed there shows as not intact (exit 3).
#[test]
fn replay_and_tail_read_every_host_from_postgresql() {
    use crate::common::{op, stderr, TestHome};
    use std::io::BufRead;
    let pg = PgCluster::start();
    let url = pg.database("reads");
    let bare = url.replace(&format!(":{}@", password_of(&url)), "@");
    let db = connect(&url);
    let session = |host: &str, n: usize| {
        NewEvent::new(
            EventKind::UserMessage,
            &Actor::new(format!("http:{host}")),
            json!({"content": format!("turn {n} on {host}")}),
        )
        .session("op_20261205_120000_abcdef12")
    };
    let web1 = PgEventLog::new(db.clone(), "web-1").unwrap();
    let web2 = PgEventLog::new(db.clone(), "web-2").unwrap();
    web1.append_batch(&[ev(1, "web-1"), session("web-1", 1)])
        .unwrap();
    web2.append_batch(&[ev(1, "web-2"), ev(2, "web-2")])
        .unwrap();
    web1.append_batch(&[session("web-1", 2)]).unwrap();
    let home = TestHome::new();
    let h = home.path();
    let dir = h.join("profiles/operator");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("config.yaml"), format!("store:\n  url: {bare}\n")).unwrap();
    let pw = password_of(&url);
    let cmd = |args: &[&str]| {
        let mut c = op(h);
        c.args(args).env("OPERATOR_STORE_PASSWORD", &pw);
        c
    };
    let o = cmd(&[
        "--json",
        "audit",
        "replay",
        "op_20261205_120000_abcdef12",
        "--fleet",
    ])
    .output()
    .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["integrity"], "ok", "{r}");
    let evs = r["events"].as_array().unwrap();
    assert_eq!(evs.len(), 2, "{r}");
    assert!(
        evs.iter()
            .all(|e| e["host"] == "web-1" && e["integrity"] == "ok"),
        "{r}"
    );
    assert_eq!(
        (evs[0]["seq"].as_i64(), evs[1]["seq"].as_i64()),
        (Some(2), Some(3))
    );
    // Only web-2: not there.
    let o = cmd(&[
        "audit",
        "replay",
        "op_20261205_120000_abcdef12",
        "--fleet",
        "--host",
        "web-2",
    ])
    .output()
    .unwrap();
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));

    let o = cmd(&["--json", "audit", "tail", "--fleet", "-n", "10"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 5);
    let per_host = |h: &str| lines.iter().filter(|l| l["host"] == h).count();
    assert_eq!((per_host("web-1"), per_host("web-2")), (3, 2));
    let o = cmd(&[
        "--json", "audit", "tail", "--fleet", "--host", "web-2", "-n", "10",
    ])
    .output()
    .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).lines().count(),
        2,
        "{}",
        stderr(&o)
    );

    // --follow: events appended by either host after it started.
    let mut child = cmd(&[
        "--json",
        "audit",
        "tail",
        "--fleet",
        "-n",
        "1",
        "--follow",
        "--interval-ms",
        "50",
    ])
    .stdout(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // The newest event printed: the command has its cursor; then appends.
    let first = rx
        .recv_timeout(std::time::Duration::from_secs(20))
        .expect("the newest event");
    assert!(first.contains("web-"), "{first}");
    web2.append_batch(&[ev(3, "web-2")]).unwrap();
    web1.append_batch(&[ev(4, "web-1")]).unwrap();
    let web3 = PgEventLog::new(db.clone(), "web-3").unwrap();
    web3.append_batch(&[ev(5, "web-3")]).unwrap();
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let line = rx
            .recv_timeout(std::time::Duration::from_secs(20))
            .expect("the followed events");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        seen.push(v["host"].as_str().unwrap().to_string());
    }
    let _ = child.kill();
    let _ = child.wait();
    seen.sort();
    assert_eq!(seen, ["web-1", "web-2", "web-3"]);

    // A changed event: the replay says which, and exits 3.
    pg.superuser("reads")
        .batch_execute(
            "UPDATE events SET data = '{\"content\":\"forged\"}' WHERE host = 'web-1' AND seq = 3",
        )
        .unwrap();
    let o = cmd(&[
        "--json",
        "audit",
        "replay",
        "op_20261205_120000_abcdef12",
        "--fleet",
    ])
    .output()
    .unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["events"][1]["integrity"], "bad", "{r}");
    assert_eq!(r["events"][0]["integrity"], "ok", "{r}");
}

/// A fleet checkpoint made on one host is checked on another only when
/// that host trusts the signer (`store.trusted_keys`): refused before,
/// accepted after, and a key that is not a key is a configuration error.
#[test]
fn checkpoints_of_another_host_need_its_key_trusted() {
    use crate::common::{add_user, op, stderr, TestHome};
    let pg = PgCluster::start();
    let url = pg.database("trust");
    let (bare, pw) = pg.apart(&url);
    let (a, b) = (TestHome::new(), TestHome::new());
    for (home, host) in [(&a, "web-1"), (&b, "web-2")] {
        add_user(home.path(), "alice", "user");
        // Each host's own audit key (made by its first checkpoint).
        let o = op(home.path())
            .args(["audit", "checkpoint"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        let dir = home.path().join("profiles/operator");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("config.yaml"),
            format!("store:\n  url: {bare}\n  host: {host}\n"),
        )
        .unwrap();
    }
    let run = |home: &TestHome, args: &[&str]| {
        op(home.path())
            .args(args)
            .env("OPERATOR_STORE_PASSWORD", &pw)
            .output()
            .unwrap()
    };
    for home in [&a, &b] {
        let o = run(home, &["store", "migrate"]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    // web-1 signs every host's head; the line goes to a file web-2 reads.
    let o = run(&a, &["store", "checkpoint"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let line = String::from_utf8(o.stdout).unwrap();
    let cp: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
    let file = b.path().join("fleet-checkpoints.log");
    std::fs::write(&file, &line).unwrap();
    let verify = || {
        run(
            &b,
            &[
                "--json",
                "store",
                "verify",
                "--checkpoints",
                file.to_str().unwrap(),
            ],
        )
    };
    let o = verify();
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("trusted"), "{}", stderr(&o));
    // web-2 trusts web-1's key: the checkpoint is checked against both chains.
    let cfg = b.path().join("profiles/operator/config.yaml");
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str(&format!(
        "  trusted_keys: [{}]\n",
        cp["public_key"].as_str().unwrap()
    ));
    std::fs::write(&cfg, text).unwrap();
    let o = verify();
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 2, "{v}");
    assert!(v.as_array().unwrap().iter().all(|h| h["ok"] == true), "{v}");
    // Not a key.
    std::fs::write(
        &cfg,
        format!("store:\n  url: {bare}\n  trusted_keys: [nope]\n"),
    )
    .unwrap();
    let o = verify();
    assert_eq!(o.status.code(), Some(8), "{}", stderr(&o));
    assert!(stderr(&o).contains("store.trusted_keys"), "{}", stderr(&o));
}
