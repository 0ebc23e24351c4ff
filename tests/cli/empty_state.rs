//! A fresh install before Hermes' first run: no state.db. Every read
//! command answers with empty data, exit 0, and one calm note on stderr
//! (stdout stays clean for scripts); reports say what the event log has.

use crate::common;

use common::{add_user, op, stderr, TestHome};
use serde_json::Value;

#[test]
fn reads_before_hermes_wrote_state_db_are_empty_not_errors() {
    let home = TestHome::new();
    let h = home.path();
    add_user(h, "alice", "user");
    assert!(!home.state_db().exists());
    let json = |args: &[&str]| -> (Value, String) {
        let o = op(h).arg("--json").args(args).output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
        let v: Value = serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", String::from_utf8_lossy(&o.stdout)));
        (v, stderr(&o))
    };
    let (v, err) = json(&["session", "list"]);
    assert_eq!(v, serde_json::json!([]));
    assert!(err.contains("has not written state.db yet"), "{err}");
    assert_eq!(err.matches("note:").count(), 1, "one notice: {err}");
    let (v, _) = json(&["session", "search", "anything"]);
    assert_eq!(v, serde_json::json!([]));
    let (v, _) = json(&["audit", "daily"]);
    assert_eq!(v["totals"]["sessions"], 0, "{v}");
    assert_eq!(v["by_user"], serde_json::json!([]), "{v}");
    // The user report has the account and what the event log holds.
    let (v, err) = json(&["audit", "user", "alice"]);
    assert_eq!(v["user"]["username"], "alice", "{v}");
    assert!(
        v["recent_events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["type"] == "user_created"),
        "{v}"
    );
    assert!(err.contains("state.db"), "{err}");
    // A session that cannot exist is still "not found" (exit 5), with the note.
    let o = op(h)
        .args(["session", "show", "op_000000000000"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(5));
    assert!(stderr(&o).contains("has not written state.db yet"));
    // Nothing was created: the operator never makes Hermes' database.
    assert!(!home.state_db().exists());
}

/// `update` without any Hermes to find (README "Without Hermes"):
/// `--check` exits 5 and says where it looked; `--dry-run` prints the plan,
/// exits 0, and names no command it did not find.
#[test]
fn update_without_hermes_says_not_found() {
    let home = TestHome::new();
    let h = home.path();
    let empty_home = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        op(h)
            .args(args)
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", empty_home.path())
            .output()
            .unwrap()
    };
    let o = run(&["update", "--check"]);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    assert!(stderr(&o).contains("not on PATH"), "{}", stderr(&o));
    let o = run(&["--json", "update", "--dry-run"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["hermes_command"].is_null(), "{v:#}");
    assert!(v["plan"]["install_kind"].is_null(), "{v:#}");
    assert!(
        v["version"].as_str().unwrap().starts_with("NOT FOUND"),
        "{v:#}"
    );
}
