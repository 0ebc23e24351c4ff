//! The human output of the main commands, as `insta` snapshots
//! (`tests/hermes/snapshots/`), over a state.db that the real Hermes wrote
//! with a fixed seed, one snapshot per command and generation (the
//! generations' fixtures differ: 0.19's full-text index also covers tool
//! calls). After an intended change: `cargo
//! insta review` (or `INSTA_UPDATE=always cargo test --test hermes tables`)
//! and read the diff.
//!
//! Values that differ per run (user ids, "now" timestamps, event ids made
//! from today's date, durations) are replaced by placeholders of the same
//! width, so the table layout itself stays under test.

use crate::common::{self, add_user_with, op, stderr, Gen, TestHome};
use std::process::Output;

/// A home with alice (admin) and bob (user), and 3 native + 4 operator
/// sessions over 3 days, owned by their real user ids.
fn home(gen: Gen) -> (TestHome, Vec<String>) {
    let home = TestHome::new();
    let as_root = || {
        let mut c = op(home.path());
        c.env("SUDO_USER", "root");
        c
    };
    let alice = add_user_with(as_root(), "alice", "admin");
    let bob = add_user_with(as_root(), "bob", "user");
    let made = common::fixture(
        gen,
        &[
            "make",
            "--db",
            &home.state_db().to_string_lossy(),
            "--native",
            "3",
            "--operator",
            "4",
            "--users",
            &format!("{alice},{bob}"),
            "--seed",
            "7",
            "--days",
            "3",
        ],
    );
    let ops = made["operator_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    (home, ops)
}

fn human(home: &TestHome, args: &[&str]) -> String {
    // The audit actor is the invoking OS user (its sudo caller first): fixed
    // here so the snapshot does not depend on who runs the tests.
    let o: Output = op(home.path())
        .env("SUDO_USER", "root")
        .args(args)
        .output()
        .unwrap();
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    format!(
        "$ hermes-operator {}\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&o.stdout),
        // The summary line goes to stderr, so a pipe gets only the table.
        stderr(&o)
    )
}

/// Placeholders of the same width for what changes from run to run.
fn redacted(f: impl FnOnce()) {
    let mut s = insta::Settings::clone_current();
    s.add_filter(r"u_[0-9a-f]{16}", "u_################");
    // Keep the fixture's fixed September dates; hide "now" (this month or later).
    let now = r"(?:2026-1[0-2]|202[7-9]-\d\d|20[3-9]\d-\d\d)-\d\d";
    s.add_filter(
        &format!(r"{now}T\d\d:\d\d:\d\d\.\d{{6}}Z"),
        "####-##-##T##:##:##.######Z",
    );
    s.add_filter(&format!(r"{now} \d\d:\d\d:\d\d"), "####-##-## ##:##:##");
    s.add_filter(r"op_audit_\d{8}_", "op_audit_########_");
    s.add_filter(r"head [0-9a-f]{16}", "head ################");
    s.add_filter(r"verified in [0-9.]+s", "verified in #.###s");
    s.bind(f)
}

fn tables(gen: Gen) {
    let (home, ops) = home(gen);
    let first = ops[0].as_str();
    let h = &home;
    let g = match gen {
        Gen::H019 => "0_19",
        Gen::H022 => "0_22",
    };
    redacted(|| {
        insta::assert_snapshot!(
            format!("{}_{}", "user_list", g),
            human(h, &["user", "list"])
        );
        insta::assert_snapshot!(
            format!("{}_{}", "session_list", g),
            human(h, &["session", "list"])
        );
        insta::assert_snapshot!(
            format!("{}_{}", "session_list_filtered", g),
            human(h, &["session", "list", "--user", "alice", "--limit", "1"])
        );
        insta::assert_snapshot!(
            format!("{}_{}", "session_show", g),
            human(h, &["session", "show", first])
        );
        insta::assert_snapshot!(
            format!("{}_{}", "session_title", g),
            human(h, &["session", "title", first, "Nightly — backup"])
        );
        insta::assert_snapshot!(
            format!("{}_{}", "session_search", g),
            human(h, &["session", "search", "backup"])
        );
        insta::assert_snapshot!(
            format!("{}_{}", "audit_daily", g),
            human(h, &["audit", "daily", "--date", "2026-09-19"])
        );
        insta::assert_snapshot!(
            format!("{}_{}", "audit_user", g),
            human(h, &["audit", "user", "alice"])
        );
        insta::assert_snapshot!(
            format!("{}_{}", "user_disable", g),
            human(h, &["user", "disable", "bob"])
        );
        insta::assert_snapshot!(
            format!("{}_{}", "audit_tail", g),
            human(h, &["audit", "tail"])
        );
        insta::assert_snapshot!(
            format!("{}_{}", "audit_verify", g),
            human(h, &["audit", "verify"])
        );
    });
}

hermes_tests!(tables);
