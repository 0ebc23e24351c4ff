//! Hermes' `.env` with a line python-dotenv cannot parse: Hermes skips that
//! line and keeps the rest, so the operator must too (its API key is still
//! set), and `doctor` warns naming the file and the line.

use crate::common::{op, stderr, TestHome};
use serde_json::Value;
use std::fs;

fn doctor_checks(home: &TestHome) -> Vec<Value> {
    let o = op(home.path()).args(["--json", "doctor"]).output().unwrap();
    let v: Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("doctor --json: {e}: {}", stderr(&o)));
    v["checks"].as_array().unwrap().clone()
}

fn check<'a>(checks: &'a [Value], name: &str) -> &'a Value {
    checks
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no {name} check: {checks:?}"))
}

#[test]
fn hermes_env_bad_line_is_skipped_and_named_by_doctor() {
    let home = TestHome::new();
    let env = home.path().join(".env");
    fs::write(
        &env,
        "API_SERVER_ENABLED=true\n\nAPI_SERVER_PORT=\"8642\" trailing\nAPI_SERVER_KEY='0123456789abcdef0123'\nthis line is prose\n",
    )
    .unwrap();
    let checks = doctor_checks(&home);
    let key = check(&checks, "hermes_api_key");
    assert_eq!(key["status"], "pass", "{key}");
    assert!(
        key["detail"].as_str().unwrap().contains("(20 chars)"),
        "{key}"
    );
    let e = check(&checks, "hermes_env");
    assert_eq!(e["status"], "warn", "{e}");
    let detail = e["detail"].as_str().unwrap();
    assert!(detail.contains(&env.display().to_string()), "{e}");
    assert!(detail.contains("lines 3, 5 "), "{e}");

    // A clean file passes.
    fs::write(&env, "API_SERVER_KEY=0123456789abcdef0123\n").unwrap();
    let checks = doctor_checks(&home);
    assert_eq!(check(&checks, "hermes_env")["status"], "pass");
}
