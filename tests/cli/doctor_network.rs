//! `doctor`'s network check: the design keeps Hermes' API server on loopback
//! (as its config and the live sockets show) and `serve` on loopback when it
//! trusts only loopback proxies. Each breach fails the check with the fix.

use crate::common::{op, stderr, TestHome};
use serde_json::Value;
use std::fs;

fn network_check(home: &TestHome) -> Value {
    let o = op(home.path()).args(["--json", "doctor"]).output().unwrap();
    let v: Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("doctor --json: {e}: {}", stderr(&o)));
    v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "network")
        .cloned()
        .unwrap_or_else(|| panic!("no network check: {v}"))
}

fn operator_config(home: &TestHome, yaml: &str) {
    let dir = home.path().join("profiles/operator");
    fs::create_dir_all(&dir).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    fs::write(
        dir.join("config.yaml"),
        format!("operator:\n  port: {port}\n{yaml}"),
    )
    .unwrap();
}

#[test]
fn network_isolation_is_checked_with_the_fix() {
    let home = TestHome::new();
    let hermes_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let api = format!("hermes:\n  api_url: http://127.0.0.1:{hermes_port}\n");
    operator_config(&home, &api);
    let ok = network_check(&home);
    assert_eq!(ok["status"], "pass", "{ok}");

    // Hermes' config puts its API server on every interface.
    fs::write(
        home.path().join("config.yaml"),
        "platforms:\n  api_server:\n    extra:\n      host: 0.0.0.0\n",
    )
    .unwrap();
    let c = network_check(&home);
    assert_eq!(c["status"], "fail", "{c}");
    assert!(c["detail"].as_str().unwrap().contains("0.0.0.0"), "{c}");
    assert!(c["fix"].as_str().unwrap().contains("127.0.0.1"), "{c}");
    fs::remove_file(home.path().join("config.yaml")).unwrap();

    // The same from Hermes' .env.
    fs::write(home.path().join(".env"), "API_SERVER_HOST=0.0.0.0\n").unwrap();
    let c = network_check(&home);
    assert_eq!(c["status"], "fail", "{c}");
    assert!(
        c["detail"].as_str().unwrap().contains("API_SERVER_HOST"),
        "{c}"
    );
    fs::remove_file(home.path().join(".env")).unwrap();

    // A live socket on Hermes' port, open to other hosts.
    let open = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let p = open.local_addr().unwrap().port();
    operator_config(
        &home,
        &format!("hermes:\n  api_url: http://127.0.0.1:{p}\n"),
    );
    let c = network_check(&home);
    assert_eq!(c["status"], "fail", "{c}");
    assert!(
        c["detail"]
            .as_str()
            .unwrap()
            .contains("reachable from other hosts"),
        "{c}"
    );
    drop(open);

    // serve on every interface while trusting only loopback proxies.
    operator_config(&home, &api);
    let dir = home.path().join("profiles/operator/config.yaml");
    let text = fs::read_to_string(&dir).unwrap();
    fs::write(
        &dir,
        text.replace("operator:\n", "operator:\n  host: 0.0.0.0\n"),
    )
    .unwrap();
    let c = network_check(&home);
    assert_eq!(c["status"], "fail", "{c}");
    assert!(c["fix"].as_str().unwrap().contains("operator.host"), "{c}");
    // Clients connecting directly (no proxies trusted): intended, passes.
    let text = fs::read_to_string(&dir).unwrap();
    fs::write(
        &dir,
        text.replace("operator:\n", "operator:\n  trusted_proxies: []\n"),
    )
    .unwrap();
    let c = network_check(&home);
    assert_eq!(c["status"], "pass", "{c}");
}
