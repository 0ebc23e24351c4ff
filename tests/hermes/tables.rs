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

/// `args`' output on a terminal `cols` wide: run under `script(1)`'s pty
/// sized by `stty`, so the binary takes the path a person's terminal takes
/// (stdout a terminal: tables fitted to its width). stderr shares the pty.
fn on_terminal(home: &TestHome, cols: u16, args: &[&str]) -> String {
    for a in args {
        assert!(
            a.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c)),
            "plain words only: {a:?}"
        );
    }
    let o: Output = std::process::Command::new("script")
        .args(["-qec"])
        .arg(format!(
            "stty cols {cols} rows 200 && exec \"$OP_BIN\" --hermes-home \"$OP_HOME\" {}",
            args.join(" ")
        ))
        .arg("/dev/null")
        .env("OP_BIN", env!("CARGO_BIN_EXE_hermes-operator"))
        .env("OP_HOME", home.path())
        .env("NO_COLOR", "1")
        .env("SUDO_USER", "root")
        .env_remove("HERMES_HOME")
        .env_remove("COLUMNS")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout).replace("\r\n", "\n");
    for line in text.lines() {
        assert!(
            line.chars().count() <= usize::from(cols),
            "{args:?} at {cols} columns: {line:?} is wider"
        );
    }
    format!(
        "$ hermes-operator {}    # on a terminal {cols} columns wide\n{text}",
        args.join(" ")
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
        // Issue 22: on a terminal 80 and 120 columns wide, headers stay on
        // one line and no id, time, token count or cost is cut; columns
        // that do not fit are hidden and named (see the snapshots).
        for cols in [80, 120] {
            insta::assert_snapshot!(
                format!("session_list_{cols}_cols_{g}"),
                on_terminal(h, cols, &["session", "list"])
            );
            insta::assert_snapshot!(
                format!("audit_user_{cols}_cols_{g}"),
                on_terminal(h, cols, &["audit", "user", "alice"])
            );
            insta::assert_snapshot!(
                format!("audit_replay_{cols}_cols_{g}"),
                on_terminal(h, cols, &["audit", "replay", first])
            );
        }
    });
    let listed = on_terminal(h, 80, &["session", "list"]);
    for id in &ops {
        assert!(listed.contains(id.as_str()), "{id} cut at 80: {listed}");
    }
}

/// Issue 22: piped (stdout not a terminal), `audit replay` and `audit user`
/// print whole cells, however long: an event's details were cut at 100
/// characters, titles at 40.
fn audit_lines_are_whole_when_piped(gen: Gen) {
    let (home, ops) = home(gen);
    let first = ops[0].as_str();
    let title = format!("A long title {} end", "x".repeat(80)); // at most 100
    human(&home, &["session", "title", first, &title]);
    let details = format!(r#"{{"change":"title","from":null,"to":"{title}"}}"#);
    let replay = human(&home, &["audit", "replay", first]);
    assert!(replay.contains(&details), "cut: {replay}");
    let user = human(&home, &["audit", "user", "alice"]);
    assert!(user.contains(&details), "cut: {user}");
    assert!(
        user.lines()
            .any(|l| l.contains(first) && l.contains(&title)),
        "the title is whole in the session row: {user}"
    );
    assert!(
        !replay.contains('…') && !user.contains('…'),
        "{replay}{user}"
    );
}

hermes_tests!(tables, audit_lines_are_whole_when_piped);
