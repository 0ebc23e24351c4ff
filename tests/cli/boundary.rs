//! The agent and the control plane under two accounts (issue 19,
//! docs/design.md §12), with real accounts, real file permissions and the
//! real hook socket: `install --operator-user` makes the operator's files
//! unreachable for Hermes' account (the kernel refuses `cat`, `sqlite3`),
//! `doctor` passes then and fails on every way back, `serve` answers the
//! hook for Hermes' account only, and a hook whose `serve` is gone blocks
//! operator tools.
//!
//! It creates two system accounts (`useradd`) and removes them after, so it
//! runs as root (CI does); as anyone else it fails, it never skips.
use crate::common;
use common::accounts::{as_account, serve_as, Accounts};
use common::stderr;
use serde_json::{json, Value};
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn sh(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"))
}

fn ok(cmd: &mut Command) -> Output {
    let o = sh(cmd);
    assert!(o.status.success(), "{cmd:?}: {}", stderr(&o));
    o
}

fn doctor_boundary(bin: &Path, home: &Path) -> Value {
    let o = sh(Command::new(bin)
        .args(["--json", "--hermes-home"])
        .arg(home)
        .arg("doctor"));
    let v: Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("doctor --json: {e}: {}", stderr(&o)));
    common::doctor_check(&v, "agent_boundary")
}

fn hook_payload(tool: &str, args: Value) -> String {
    json!({
        "hook_event_name": "pre_tool_call",
        "tool_name": tool,
        "tool_input": args,
        "session_id": "op_0000000000aa",
        "cwd": "/tmp",
        "extra": {"tool_call_id": "call_1"},
    })
    .to_string()
}

/// The hook as `account` (Hermes spawns it under its own account).
fn hook_as(account: &str, bin: &Path, home: &Path, payload: &str) -> Output {
    let mut c = as_account(
        account,
        &[
            bin.to_str().unwrap(),
            "--hermes-home",
            home.to_str().unwrap(),
            "hook",
        ],
    );
    let mut child = c
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(payload.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn block_reason(o: &Output) -> Option<String> {
    let out = String::from_utf8_lossy(&o.stdout);
    let line = out.lines().next()?;
    let v: Value = serde_json::from_str(line).ok()?;
    (v["decision"] == "block").then(|| v["reason"].as_str().unwrap_or_default().to_string())
}

fn wait_for_socket(home: &Path) {
    let p = home.join("plugins/operator-hook/hook.sock");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::os::unix::net::UnixStream::connect(&p).is_err() {
        assert!(
            Instant::now() < deadline,
            "no hook socket at {}",
            p.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn events_of(home: &Path) -> Vec<Value> {
    let c = common::open_ro(&home.join("plugins/operator/events.db"));
    let mut st = c
        .prepare("SELECT type, actor, data FROM events ORDER BY seq")
        .unwrap();
    st.query_map([], |r| {
        Ok(
            json!({"type": r.get::<_, String>(0)?, "actor": r.get::<_, String>(1)?,
                  "data": serde_json::from_str::<Value>(&r.get::<_, String>(2)?).unwrap()}),
        )
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

// Long: one pair of accounts and one home carried through the whole story (same account, separated, loosened, served, substituted); each step depends on the one before.
#[test]
fn the_agent_account_cannot_reach_the_control_plane() {
    let (mut accounts, names) = Accounts::make(&["h"]);
    let hermes = names[0].clone();
    let operator = hermes.replacen("hopt-h", "hopt-o", 1);
    accounts.adopt(&operator);

    // A place every account can enter, with a copy of the binary.
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let bin = dir.path().join("hermes-operator");
    fs::copy(env!("CARGO_BIN_EXE_hermes-operator"), &bin).unwrap();
    fs::set_permissions(&bin, fs::Permissions::from_mode(0o755)).unwrap();
    let h: PathBuf = dir.path().join("hermes");
    fs::create_dir(&h).unwrap();
    // HERMES_HOME as Hermes leaves it: its account's, private, with the
    // session row of an operator session in state.db.
    {
        let c = rusqlite::Connection::open(h.join("state.db")).unwrap();
        c.execute_batch(
            "CREATE TABLE sessions (id TEXT PRIMARY KEY, source TEXT NOT NULL, user_id TEXT);
             INSERT INTO sessions VALUES ('op_0000000000aa', 'operator', NULL);",
        )
        .unwrap();
    }
    fs::write(
        h.join(".env"),
        "API_SERVER_KEY=boundary-test-key-0123456789\n",
    )
    .unwrap();
    fs::write(h.join("config.yaml"), "approvals:\n  mode: manual\n").unwrap();
    let mut install = Command::new(&bin);
    install
        .arg("--hermes-home")
        .arg(&h)
        .args([
            "install",
            "--admin",
            "admin",
            "--password-stdin",
            "--yes",
            "--no-systemd",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = install.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"a long admin password\n")
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "install: {}", stderr(&o));

    // 1. One account for both, as before: the agent reaches everything.
    ok(Command::new("chown")
        .args(["-R", &format!("{hermes}:{hermes}")])
        .arg(&h));
    fs::set_permissions(&h, fs::Permissions::from_mode(0o700)).unwrap();
    let b = doctor_boundary(&bin, &h);
    assert_eq!(b["status"], "fail", "{b}");
    let detail = b["detail"].as_str().unwrap();
    assert!(detail.contains("belong to Hermes' own account"), "{b}");
    assert!(detail.contains(&hermes), "{b}");
    assert!(
        b["fix"].as_str().unwrap().contains("--operator-user"),
        "{b}"
    );
    // Hermes as root is no boundary at all.
    ok(Command::new("chown")
        .arg("root:root")
        .arg(h.join("state.db")));
    let b = doctor_boundary(&bin, &h);
    assert_eq!(b["status"], "fail", "{b}");
    assert!(
        b["detail"].as_str().unwrap().contains("runs as root"),
        "{b}"
    );
    ok(Command::new("chown")
        .arg(format!("{hermes}:{hermes}"))
        .arg(h.join("state.db")));

    // 2. Separated: the operator's own account.
    let o = ok(Command::new(&bin).arg("--hermes-home").arg(&h).args([
        "--json",
        "install",
        "--yes",
        "--no-systemd",
        "--operator-user",
        &operator,
    ]));
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    let account = r["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["what"] == "operator account")
        .unwrap_or_else(|| panic!("{r:#}"));
    assert_eq!(account["action"], "created", "{r:#}");
    let b = doctor_boundary(&bin, &h);
    assert_eq!(b["status"], "pass", "{b}");
    assert!(b["detail"].as_str().unwrap().contains(&hermes), "{b}");
    // The kernel itself refuses Hermes' account (what the agent runs as).
    let users_db = h.join("plugins/operator/users.db");
    let key = h.join("profiles/operator/audit_signing.key");
    for args in [
        vec!["cat".to_string(), key.display().to_string()],
        vec![
            "sqlite3".to_string(),
            users_db.display().to_string(),
            "UPDATE users SET role='admin'".to_string(),
        ],
        vec![
            "ls".to_string(),
            h.join("plugins/operator").display().to_string(),
        ],
        vec![
            "touch".to_string(),
            h.join("profiles/operator/x").display().to_string(),
        ],
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let before = fs::read(&users_db).unwrap();
        let o = sh(&mut as_account(&hermes, &args));
        assert!(!o.status.success(), "{args:?} worked as Hermes' account");
        let err = stderr(&o).to_lowercase();
        assert!(
            err.contains("permission denied") || err.contains("unable to open"),
            "{args:?}: {err}"
        );
        assert_eq!(
            fs::read(&users_db).unwrap(),
            before,
            "{args:?} changed users.db"
        );
    }
    // …while the operator's account reads what it needs of Hermes' files.
    let o = ok(&mut as_account(
        &operator,
        &[
            bin.to_str().unwrap(),
            "--json",
            "--hermes-home",
            h.to_str().unwrap(),
            "user",
            "list",
        ],
    ));
    assert!(String::from_utf8_lossy(&o.stdout).contains("\"admin\""));

    // 3. Every way back is a failure: a world-readable database, a
    //    group-writable directory.
    let plugin = h.join("plugins/operator");
    fs::set_permissions(&plugin, fs::Permissions::from_mode(0o705)).unwrap();
    fs::set_permissions(&users_db, fs::Permissions::from_mode(0o604)).unwrap();
    let b = doctor_boundary(&bin, &h);
    assert_eq!(b["status"], "fail", "{b}");
    assert!(
        b["detail"].as_str().unwrap().contains("users.db (read)"),
        "{b}"
    );
    fs::set_permissions(&users_db, fs::Permissions::from_mode(0o600)).unwrap();
    fs::set_permissions(&plugin, fs::Permissions::from_mode(0o700)).unwrap();
    ok(Command::new("chgrp").arg(&hermes).arg(&plugin));
    fs::set_permissions(&plugin, fs::Permissions::from_mode(0o770)).unwrap();
    let b = doctor_boundary(&bin, &h);
    assert_eq!(b["status"], "fail", "{b}");
    assert!(b["detail"].as_str().unwrap().contains("read+write"), "{b}");
    ok(Command::new("chgrp").arg(&operator).arg(&plugin));
    fs::set_permissions(&plugin, fs::Permissions::from_mode(0o700)).unwrap();
    assert_eq!(doctor_boundary(&bin, &h)["status"], "pass");

    // 4. serve (as the operator) answers the hook (as Hermes' account).
    let (mut serve, _base) = serve_as(&operator, &bin, &h);
    wait_for_socket(&h);
    let allowed = hook_as(
        &hermes,
        &bin,
        &h,
        &hook_payload("read_file", json!({"path": "/etc/hostname"})),
    );
    assert_eq!(
        block_reason(&allowed),
        None,
        "{}\n{}",
        stderr(&allowed),
        String::from_utf8_lossy(&allowed.stdout)
    );
    let forbidden = hook_as(
        &hermes,
        &bin,
        &h,
        &hook_payload("terminal", json!({"command": "id"})),
    );
    let why =
        block_reason(&forbidden).unwrap_or_else(|| panic!("not blocked: {}", stderr(&forbidden)));
    assert!(why.contains("terminal"), "{why}");
    let named = hook_as(
        &hermes,
        &bin,
        &h,
        &hook_payload(
            "read_file",
            json!({"path": "$HERMES_HOME/plugins/operator/users.db"}),
        ),
    );
    let why = block_reason(&named).unwrap_or_else(|| panic!("not blocked: {}", stderr(&named)));
    assert!(why.contains("operator's own files"), "{why}");
    // Anyone else is turned away by serve, whatever they send (HERMES_HOME
    // opened to others for this, or they could not even reach the socket).
    let opened = [h.clone(), h.join("plugins"), h.join("profiles")];
    let private: Vec<u32> = opened
        .iter()
        .map(|d| fs::metadata(d).unwrap().permissions().mode())
        .collect();
    for (d, m) in opened.iter().zip(&private) {
        fs::set_permissions(d, fs::Permissions::from_mode(m | 0o001)).unwrap();
    }
    let stranger = hook_as(
        "nobody",
        &bin,
        &h,
        &hook_payload("read_file", json!({"path": "/etc/hostname"})),
    );
    let why =
        block_reason(&stranger).unwrap_or_else(|| panic!("not blocked: {}", stderr(&stranger)));
    assert!(
        why.contains("may not use the operator's hook socket"),
        "{why}"
    );
    for (d, m) in opened.iter().zip(&private) {
        fs::set_permissions(d, fs::Permissions::from_mode(*m)).unwrap();
    }
    // serve recorded the three calls it judged, as the hook would have.
    let calls: Vec<Value> = events_of(&h)
        .into_iter()
        .filter(|e| e["type"] == "tool_call" && e["actor"] == "hook")
        .collect();
    assert_eq!(calls.len(), 3, "{calls:#?}");
    assert_eq!(calls[0]["data"]["blocked"], false, "{calls:#?}");
    assert_eq!(calls[1]["data"]["blocked"], true, "{calls:#?}");
    assert_eq!(calls[2]["data"]["blocked"], true, "{calls:#?}");

    // 5. Without serve, Hermes' account cannot read the policy: operator
    //    tools are blocked, others' sessions are not touched.
    // SAFETY: plain kill(2) of our child's pid.
    unsafe { libc::kill(serve.0.id() as i32, libc::SIGTERM) };
    let _ = serve.0.wait();
    let o = hook_as(
        &hermes,
        &bin,
        &h,
        &hook_payload("read_file", json!({"path": "/etc/hostname"})),
    );
    let why = block_reason(&o).unwrap_or_else(|| panic!("not blocked: {}", stderr(&o)));
    assert!(why.contains("does not answer"), "{why}");
    let mut native: Value =
        serde_json::from_str(&hook_payload("terminal", json!({"command": "id"}))).unwrap();
    native["session_id"] = json!("20261205_abcdef");
    let o = hook_as(&hermes, &bin, &h, &native.to_string());
    assert_eq!(block_reason(&o), None, "{}", stderr(&o));

    // 6. Hermes' account owns plugins/: it can move the operator's
    //    directory away and plant its own. The operator refuses to open it.
    let moved = h.join("plugins/operator.moved");
    fs::rename(&plugin, &moved).unwrap();
    fs::create_dir(&plugin).unwrap();
    fs::copy(moved.join("users.db"), plugin.join("users.db")).unwrap();
    ok(Command::new("chown")
        .args(["-R", &format!("{hermes}:{hermes}")])
        .arg(&plugin));
    let o = sh(&mut as_account(
        &operator,
        &[
            bin.to_str().unwrap(),
            "--hermes-home",
            h.to_str().unwrap(),
            "user",
            "list",
        ],
    ));
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("refusing the operator directory"),
        "{}",
        stderr(&o)
    );
}

/// backups/ is Hermes' directory, shared with the operator: a backup the
/// agent's account planted there (another owner, a symlink, or writable by
/// others) is not one `update restore` will take; the operator's own is.
#[test]
fn restore_takes_only_the_operators_own_backups() {
    use hermes_operator::home::Home;
    use hermes_operator::ops::update::list_backups;
    let (_accounts, names) = Accounts::make(&["b"]);
    let agent = &names[0];
    let home = common::TestHome::new();
    let h = home.path();
    common::add_user(h, "alice", "user");
    let backups = h.join("backups");
    let make = |name: &str| {
        let d = backups.join(name);
        fs::create_dir_all(&d).unwrap();
        fs::set_permissions(&d, fs::Permissions::from_mode(0o700)).unwrap();
        fs::write(d.join("MANIFEST.sha256"), "").unwrap();
        d
    };
    let own = make("operator_20260101T000000Z");
    let planted = make("operator_29990101T000000Z");
    sh(Command::new("chown")
        .args(["-R", &format!("{agent}:")])
        .arg(&planted));
    let writable = make("operator_29980101T000000Z");
    fs::set_permissions(&writable, fs::Permissions::from_mode(0o777)).unwrap();
    std::os::unix::fs::symlink(&own, backups.join("operator_29970101T000000Z")).unwrap();
    assert_eq!(list_backups(&Home::at(h)), vec![own.clone()]);
    // `update restore --dry-run` names the operator's, not the newest planted one.
    let o = common::op(h)
        .args(["--json", "update", "restore", "--dry-run"])
        .output()
        .unwrap();
    // (Ours holds no files here: restore says so about it, by name.)
    let out = format!("{}{}", String::from_utf8_lossy(&o.stdout), stderr(&o));
    assert!(out.contains("operator_20260101T000000Z"), "{out}");
    assert!(!out.contains("operator_299"), "{out}");
}
