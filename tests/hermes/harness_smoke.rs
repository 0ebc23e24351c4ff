//! Proves the real-Hermes test harness (tests/common) works.
use crate::common;

use common::*;
use std::collections::BTreeMap;

const USERS: [&str; 2] = ["u_aaaa", "u_bbbb"];

fn is_op_id(s: &str) -> bool {
    s.len() == 15
        && s.starts_with("op_")
        && s[3..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn venv_holds_the_generation(gen: Gen) {
    let venv = gen.venv();
    assert_eq!(
        installed_hermes_version(&venv).as_deref(),
        Some(gen.version())
    );
    assert!(venv.join("bin/hermes").exists());
}

fn fixture_counts_match_state_db_and_hermes_lists_operator_sessions(gen: Gen) {
    let (home, made) = make_home_with_state_seeded(gen, 20, 10, &USERS, 42);
    let db = home.state_db();

    // fixture report vs. the database
    assert_eq!(made["sessions"], 30);
    let by_source = count_by_source(&db);
    let reported: BTreeMap<String, i64> = made["by_source"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_i64().unwrap()))
        .collect();
    assert_eq!(by_source, reported);
    assert_eq!(by_source["operator"], 10);
    assert_eq!(
        by_source
            .iter()
            .filter(|(k, _)| *k != "operator")
            .map(|(_, v)| v)
            .sum::<i64>(),
        20
    );
    for s in ["cli", "telegram", "discord", "api_server", "cron"] {
        assert!(
            by_source.get(s).copied().unwrap_or(0) >= 1,
            "no {s} session: {by_source:?}"
        );
    }
    let conn = open_ro(&db);
    let nmsg: i64 = conn
        .query_row("SELECT count(*) FROM messages", [], |r| r.get(0))
        .unwrap();
    assert_eq!(Some(nmsg), made["messages"].as_i64());
    let nfts: i64 = conn
        .query_row("SELECT count(*) FROM messages_fts", [], |r| r.get(0))
        .unwrap();
    assert_eq!(nfts, nmsg, "FTS triggers fired for every message");
    let nusage: i64 = conn
        .query_row("SELECT count(*) FROM session_model_usage", [], |r| r.get(0))
        .unwrap();
    assert!(nusage >= 30, "session_model_usage populated: {nusage}");

    // operator ids: format, source, user_id cycling over --users
    let op_ids: Vec<String> = made["operator_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(op_ids.len(), 10);
    let mut sorted = op_ids.clone();
    sorted.sort();
    assert_eq!(sorted, operator_session_ids(&db));
    for (i, id) in op_ids.iter().enumerate() {
        assert!(is_op_id(id), "bad operator id {id}");
        let (src, uid): (String, String) = conn
            .query_row(
                "SELECT source, user_id FROM sessions WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(src, "operator");
        assert_eq!(uid, USERS[i % USERS.len()]);
    }

    // Hermes' own view of one operator session, and its consistency
    let got = fixture(
        gen,
        &["get", "--db", &db.to_string_lossy(), "--id", &op_ids[0]],
    );
    assert_eq!(got["session"]["source"], "operator");
    assert!(!got["messages"].as_array().unwrap().is_empty());
    let chk = fixture(
        gen,
        &["check", "--db", &db.to_string_lossy(), "--id", &op_ids[0]],
    );
    assert_eq!(chk["ok"], true, "{chk}");

    // the real CLI lists exactly the operator sessions
    let out = hermes(
        gen,
        home.path(),
        &[
            "sessions", "list", "--source", "operator", "--limit", "1000",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "hermes sessions list failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    for id in &op_ids {
        assert!(stdout.contains(id.as_str()), "{id} missing from:\n{stdout}");
    }
    // the ID is the last column of every data row
    let listed: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.split_whitespace().last())
        .filter(|w| w.starts_with("op_"))
        .collect();
    assert_eq!(listed.len(), 10, "{stdout}");
    for id in made["native_ids_sample"].as_array().unwrap() {
        assert!(!stdout.contains(id.as_str().unwrap()));
    }

    fts_integrity_check(gen, &db);
}

fn snapshot_ignores_operator_rows_only(gen: Gen) {
    let (home, made) = make_home_with_state_seeded(gen, 20, 10, &USERS, 7);
    let db = home.state_db();
    let op_id = made["operator_ids"][0].as_str().unwrap().to_string();
    let native_id = made["native_ids_sample"][0].as_str().unwrap().to_string();
    let before = snapshot_non_operator(&db);
    assert!(before
        .iter()
        .any(|l| l.starts_with("sessions|") && l.contains(&native_id)));
    assert!(
        !before.iter().any(|l| l.contains(&op_id)),
        "operator rows leaked into snapshot"
    );
    assert!(before
        .iter()
        .any(|l| l.starts_with("messages_fts_docsize|")));

    // write to an operator session: title (rusqlite) and a message through
    // Hermes' own append_message (fires FTS triggers, bumps sqlite_sequence)
    {
        let c = rusqlite::Connection::open(&db).unwrap();
        let n = c
            .execute(
                &format!(
                    "UPDATE sessions SET title = 'changed by test' WHERE id = ?1 AND {OP_ROW_SQL}"
                ),
                [&op_id],
            )
            .unwrap();
        assert_eq!(n, 1);
    }
    common::append(
        gen,
        &db,
        &op_id,
        "user",
        "大别山项目进度 operator follow-up",
    );
    // a brand-new operator session created through Hermes
    fixture(
        gen,
        &[
            "append",
            "--db",
            &db.to_string_lossy(),
            "--id",
            "op_0123456789ab",
            "--create",
            "operator",
            "--content",
            "hello",
        ],
    );
    let after_op = snapshot_non_operator(&db);
    assert_snapshot_eq(&before, &after_op, "after operator-only writes");
    fts_integrity_check(gen, &db);
    let s = fixture(
        gen,
        &[
            "search",
            "--db",
            &db.to_string_lossy(),
            "--query",
            "大别山项目",
            "--source",
            "operator",
        ],
    );
    assert!(
        s["results"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["session_id"] == op_id.as_str()),
        "Hermes' search finds the operator's message: {s}"
    );

    // a change to a native row IS detected
    {
        let c = rusqlite::Connection::open(&db).unwrap();
        c.execute(
            "UPDATE sessions SET title = 'tampered' WHERE id = ?1",
            [&native_id],
        )
        .unwrap();
    }
    let after_native = snapshot_non_operator(&db);
    assert_ne!(before, after_native);
    let diff = snapshot_diff(&before, &after_native, 5);
    assert!(
        diff.contains(&native_id) && diff.contains("'tampered'"),
        "{diff}"
    );

    // and a native message's content change, including the FTS shadow row
    {
        let c = rusqlite::Connection::open(&db).unwrap();
        c.execute(
            "UPDATE sessions SET title = NULL WHERE id = ?1",
            [&native_id],
        )
        .unwrap();
        c.execute(
            &format!(
                "UPDATE messages SET content = content || '!' WHERE id = (SELECT min(id) FROM messages \
                 WHERE session_id NOT IN (SELECT id FROM sessions WHERE {OP_ROW_SQL}))"
            ),
            [],
        )
        .unwrap();
    }
    let after_msg = snapshot_non_operator(&db);
    let diff = snapshot_diff(&before, &after_msg, 10);
    assert!(diff.contains("+ messages|"), "{diff}");
    assert!(diff.contains("+ messages_fts_"), "{diff}");
}

fn fixture_is_deterministic(gen: Gen) {
    let (a, _) = make_home_with_state_seeded(gen, 15, 5, &USERS, 3);
    let (b, _) = make_home_with_state_seeded(gen, 15, 5, &USERS, 3);
    // 0.22 stamps each new state.db with its own identity (state_meta keys
    // store_instance_id, store_created_at_utc, db_file_generation).
    let stable = |db: &std::path::Path| -> Vec<String> {
        snapshot_non_operator(db)
            .into_iter()
            .filter(|l| {
                ![
                    "store_instance_id",
                    "store_created_at_utc",
                    "db_file_generation",
                ]
                .iter()
                .any(|k| l.starts_with("state_meta|") && l.contains(&format!("'{k}'")))
            })
            .collect()
    };
    let (sa, sb) = (stable(&a.state_db()), stable(&b.state_db()));
    assert!(sa == sb, "{}", snapshot_diff(&sa, &sb, 20));
    // operator rows too: compare full session/message tables
    let dump = |db: &std::path::Path| -> Vec<String> {
        let c = open_ro(db);
        let mut st = c.prepare("SELECT * FROM messages ORDER BY id").unwrap();
        let n = st.column_count();
        let rows = st
            .query_map([], |r| {
                Ok((0..n)
                    .map(|i| sql_literal(r.get_ref(i).unwrap()))
                    .collect::<Vec<_>>()
                    .join("|"))
            })
            .unwrap();
        rows.map(|r| r.unwrap()).collect()
    };
    assert_eq!(dump(&a.state_db()), dump(&b.state_db()));
}

fn hold_lock_blocks_writers(gen: Gen) {
    let (home, _) = make_home_with_state_seeded(gen, 3, 1, &USERS, 1);
    let lock = hold_lock(gen, &home.state_db(), 30.0);
    let c = rusqlite::Connection::open(home.state_db()).unwrap();
    c.busy_timeout(std::time::Duration::from_millis(100))
        .unwrap();
    let err = c.execute_batch("BEGIN IMMEDIATE; ROLLBACK;").unwrap_err();
    assert!(
        err.to_string().contains("locked") || err.to_string().contains("busy"),
        "{err}"
    );
    drop(lock); // kills the holder
    c.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
    c.execute_batch("BEGIN IMMEDIATE; ROLLBACK;").unwrap();
}

hermes_tests!(
    venv_holds_the_generation,
    fixture_counts_match_state_db_and_hermes_lists_operator_sessions,
    snapshot_ignores_operator_rows_only,
    fixture_is_deterministic,
    hold_lock_blocks_writers,
);
