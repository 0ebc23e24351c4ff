//! `serve` on an address that is already taken exits with its own code
//! (13, README "Exit codes") and says so, in words and as `--json`.

use crate::common::{code, op, serve::configure, stderr, TestHome};
use serde_json::Value;

#[test]
fn a_busy_port_is_its_own_exit_code() {
    let home = TestHome::new();
    configure(home.path(), "");
    // Held for the whole test: nothing else can take the port meanwhile.
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let bind = held.local_addr().unwrap().to_string();

    let o = op(home.path())
        .args(["serve", "--bind", &bind])
        .output()
        .unwrap();
    assert_eq!(code(&o), 13, "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains(&format!(
            "cannot listen on {bind}: the address is already in use"
        )),
        "{e}"
    );
    assert!(e.contains("hint:") && e.contains("--bind"), "{e}");

    let o = op(home.path())
        .args(["--json", "serve", "--bind", &bind])
        .output()
        .unwrap();
    assert_eq!(code(&o), 13, "{}", stderr(&o));
    let last = stderr(&o).lines().last().unwrap_or_default().to_string();
    let v: Value = serde_json::from_str(&last).unwrap_or_else(|e| panic!("{e}: {last}"));
    assert_eq!(v["error"]["code"], "port_in_use");
    drop(held);
}
