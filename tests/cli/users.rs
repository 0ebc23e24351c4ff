//! `user ...` commands, config loading and the bad-input rules that do not
//! involve Hermes: wrong HERMES_HOME, malformed config, corrupt or locked
//! operator databases, prompts in non-interactive runs. Each gives a clear
//! message and the documented exit code, and nothing changes.

use crate::common::{code, mode, stderr};
use serde_json::Value;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const PW: &str = "correct horse battery staple";

struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Home {
        Home {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    fn path(&self) -> &Path {
        self.dir.path()
    }
    fn file(&self, rel: &str) -> PathBuf {
        self.path().join(rel)
    }
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_hermes-operator"));
        c.arg("--hermes-home").arg(self.path()).args(args);
        c.env("NO_COLOR", "1")
            .env_remove("OPERATOR_JWT_SECRET")
            .env_remove("API_SERVER_KEY");
        c
    }
    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).stdin(Stdio::null()).output().unwrap()
    }
    fn run_stdin(&self, args: &[&str], input: &str) -> Output {
        let mut child = self
            .cmd(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The command may exit before reading (e.g. on a config error).
        let _ = child.stdin.take().unwrap().write_all(input.as_bytes());
        child.wait_with_output().unwrap()
    }
    fn add(&self, name: &str, role: &str) -> Value {
        let o = self.run_stdin(
            &[
                "--json",
                "user",
                "add",
                name,
                "--role",
                role,
                "--password-stdin",
            ],
            &format!("{PW}\n"),
        );
        assert!(o.status.success(), "{}", stderr(&o));
        serde_json::from_slice(&o.stdout).unwrap()
    }
    fn json(&self, args: &[&str]) -> Value {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        let o = self.run(&a);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        serde_json::from_slice(&o.stdout).unwrap()
    }
    fn events(&self) -> Vec<Value> {
        let o = self.run(&["--json", "audit", "tail", "-n", "1000"]);
        assert!(o.status.success(), "{}", stderr(&o));
        String::from_utf8(o.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
    fn set_secret(&self, secret: &str) {
        let p = self.file("profiles/operator/.env");
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, format!("OPERATOR_JWT_SECRET={secret}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
}

#[test]
fn user_lifecycle_is_audited_and_files_are_private() {
    let h = Home::new();
    let alice = h.add("alice", "admin");
    assert_eq!(alice["username"], "alice");
    assert_eq!(alice["role"], "admin");
    assert_eq!(alice["disabled"], false);
    let id = alice["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("u_") && id.len() == 18, "{id}");
    assert!(alice.get("password_hash").is_none(), "never shown");
    h.add("bob", "user");

    // show --json carries the id sessions use as user_id.
    assert_eq!(h.json(&["user", "show", "alice"])["id"], id.as_str());
    let list = h.json(&["user", "list"]);
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alice", "bob"]);

    let tv0 = h.json(&["user", "show", "bob"])["token_version"]
        .as_i64()
        .unwrap();
    let o = h.run_stdin(
        &["user", "passwd", "bob", "--password-stdin"],
        "another long password\n",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let tv1 = h.json(&["user", "show", "bob"])["token_version"]
        .as_i64()
        .unwrap();
    assert_eq!(tv1, tv0 + 1, "password change revokes tokens");
    assert_eq!(
        h.json(&["user", "role", "bob", "auditor"])["role"],
        "auditor"
    );
    assert_eq!(h.json(&["user", "disable", "bob"])["disabled"], true);
    assert_eq!(h.json(&["user", "enable", "bob"])["disabled"], false);
    let bob = h.json(&["user", "show", "bob"]);
    assert_eq!(
        bob["token_version"].as_i64().unwrap(),
        tv0 + 3,
        "role change and disable revoke; enable does not"
    );
    let o = h.run(&["user", "delete", "bob", "--yes"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(code(&h.run(&["user", "show", "bob"])), 5);

    let kinds: Vec<String> = h
        .events()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        kinds,
        [
            "user_created",
            "user_created",
            "user_changed",
            "user_changed",
            "user_changed",
            "user_changed",
            "user_deleted"
        ]
    );
    let me = {
        let o = Command::new("id").arg("-un").output().unwrap();
        String::from_utf8(o.stdout).unwrap().trim().to_string()
    };
    for e in h.events() {
        assert_eq!(e["actor"], format!("cli:{me}"), "acting OS user recorded");
        assert!(e["user_id"].is_string());
        assert!(
            !e["data"].to_string().contains(PW),
            "no password in the log"
        );
    }
    assert_eq!(code(&h.run(&["audit", "verify"])), 0);

    for d in ["plugins/operator", "profiles/operator"] {
        assert_eq!(mode(&h.file(d)), 0o700, "{d}");
    }
    for f in ["plugins/operator/users.db", "plugins/operator/events.db"] {
        assert_eq!(mode(&h.file(f)), 0o600, "{f}");
    }
    // No password stored in clear anywhere in users.db.
    let bytes = std::fs::read(h.file("plugins/operator/users.db")).unwrap();
    assert!(!bytes.windows(PW.len()).any(|w| w == PW.as_bytes()));
    let hash: String = rusqlite::Connection::open(h.file("plugins/operator/users.db"))
        .unwrap()
        .query_row(
            "SELECT password_hash FROM users WHERE username='alice'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{hash}"
    );
}

#[test]
fn tokens_need_a_real_secret_and_carry_the_token_version() {
    let h = Home::new();
    let alice = h.add("alice", "admin");
    // No secret: config error with a hint how to make one.
    let o = h.run(&["user", "token", "alice"]);
    assert_eq!(code(&o), 8, "{}", stderr(&o));
    assert!(stderr(&o).contains("OPERATOR_JWT_SECRET"));
    // Too short.
    h.set_secret("short");
    assert_eq!(code(&h.run(&["user", "token", "alice"])), 8);
    // Equal to Hermes' API key.
    let secret = "a-very-long-secret-value-0123456789-abcdef";
    h.set_secret(secret);
    std::fs::write(h.file(".env"), format!("API_SERVER_KEY={secret}\n")).unwrap();
    let o = h.run(&["user", "token", "alice"]);
    assert_eq!(code(&o), 8);
    assert!(stderr(&o).contains("API_SERVER_KEY"), "{}", stderr(&o));
    std::fs::remove_file(h.file(".env")).unwrap();
    // Good: a JWT whose claims match docs/design.md §4, not printed to stderr.
    let o = h.run(&["user", "token", "alice", "--ttl", "5"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let token = String::from_utf8(o.stdout.clone())
        .unwrap()
        .trim()
        .to_string();
    assert!(!stderr(&o).contains(&token));
    let claims =
        hermes_operator::ops::credentials::decode_access_token(secret.as_bytes(), &token).unwrap();
    assert_eq!(claims.sub, alice["id"].as_str().unwrap());
    assert_eq!(claims.username, "alice");
    assert_eq!(claims.role.as_str(), "admin");
    assert_eq!(claims.tv, alice["token_version"].as_i64().unwrap());
    assert!(claims.exp - claims.iat == 300);
    assert!(hermes_operator::ops::credentials::decode_access_token(
        b"another-secret-another-secret-another",
        &token
    )
    .is_err());
    // Disabled users get no token; bad TTLs are usage errors.
    h.add("bob", "user");
    h.json(&["user", "disable", "bob"]);
    assert_eq!(code(&h.run(&["user", "token", "bob"])), 4);
    assert_eq!(code(&h.run(&["user", "token", "alice", "--ttl", "0"])), 2);
    // The token event is in the log, without the token.
    let last = h
        .events()
        .into_iter()
        .rfind(|e| e["type"] == "token_issued")
        .unwrap();
    assert!(!last.to_string().contains(&token));
}

#[test]
fn bad_input_is_refused_and_changes_nothing() {
    let h = Home::new();
    h.add("alice", "admin");
    let users_db = h.file("plugins/operator/users.db");
    let before = std::fs::read(&users_db).unwrap();

    // A prompt would be needed, but stdin is not a terminal.
    let o = h.run(&["user", "add", "carol", "--role", "user"]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("--password-stdin"));
    let o = h.run(&["user", "delete", "alice"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("--yes"));
    // Weak, empty and absurd passwords.
    assert_eq!(
        code(&h.run_stdin(
            &["user", "add", "carol", "--role", "user", "--password-stdin"],
            "short\n"
        )),
        2
    );
    assert_eq!(
        code(&h.run_stdin(
            &["user", "add", "carol", "--role", "user", "--password-stdin"],
            ""
        )),
        2
    );
    let huge = "x".repeat(5000) + "\n";
    assert_eq!(
        code(&h.run_stdin(
            &["user", "add", "carol", "--role", "user", "--password-stdin"],
            &huge
        )),
        2
    );
    // Hostile and invalid names, unknown roles, duplicates.
    for name in [
        "",
        "-rf",
        "a b",
        "al'ice",
        "\u{1b}[2J",
        "x".repeat(65).as_str(),
        "ä",
    ] {
        let o = h.run_stdin(
            &["user", "add", name, "--role", "user", "--password-stdin"],
            &format!("{PW}\n"),
        );
        assert_eq!(code(&o), 2, "{name:?}: {}", stderr(&o));
        assert!(!stderr(&o).contains('\u{1b}'));
    }
    assert_eq!(
        code(&h.run_stdin(
            &["user", "add", "bob", "--role", "root", "--password-stdin"],
            PW
        )),
        2
    );
    let o = h.run_stdin(
        &["user", "add", "ALICE", "--role", "user", "--password-stdin"],
        PW,
    );
    assert_eq!(
        code(&o),
        10,
        "usernames are case-insensitive: {}",
        stderr(&o)
    );
    // Unknown users.
    for args in [
        vec!["user", "show", "nobody"],
        vec!["user", "role", "nobody", "user"],
        vec!["user", "disable", "nobody"],
        vec!["user", "delete", "nobody", "--yes"],
    ] {
        assert_eq!(code(&h.run(&args)), 5, "{args:?}");
    }
    // The last admin cannot be removed, demoted or disabled.
    for args in [
        vec!["user", "delete", "alice", "--yes"],
        vec!["user", "role", "alice", "user"],
        vec!["user", "disable", "alice"],
    ] {
        let o = h.run(&args);
        assert_eq!(code(&o), 10, "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains("only enabled admin"));
    }
    // Unknown subcommands and flags: usage.
    assert_eq!(code(&h.run(&["user", "frobnicate"])), 2);
    assert_eq!(
        code(&h.run(&["audit", "export", "--since", "yesterday"])),
        2
    );
    assert_eq!(
        code(&h.run(&["audit", "prune", "--older-than", "ninety"])),
        2
    );

    let kinds: Vec<Value> = h.events().into_iter().map(|e| e["type"].clone()).collect();
    assert_eq!(
        kinds,
        vec![Value::from("user_created")],
        "no refused change was logged as done"
    );
    // users.db content is unchanged (the WAL may have been checkpointed, so compare rows).
    let _ = before;
    let list = h.json(&["user", "list"]);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["token_version"], 1);
}

#[test]
fn wrong_home_and_read_only_commands_create_nothing() {
    let h = Home::new();
    let missing = h.file("does-not-exist");
    let o = Command::new(env!("CARGO_BIN_EXE_hermes-operator"))
        .args(["user", "list"])
        .env("HERMES_HOME", &missing)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(code(&o), 5);
    assert!(
        stderr(&o).contains("does-not-exist") && stderr(&o).contains("$HERMES_HOME"),
        "{}",
        stderr(&o)
    );
    assert!(!missing.exists());
    // A file instead of a directory.
    let f = h.file("plain-file");
    std::fs::write(&f, "x").unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_hermes-operator"))
        .arg("--hermes-home")
        .arg(&f)
        .args(["user", "list"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(code(&o), 2, "{}", stderr(&o));

    // Read commands on a fresh home: answers, and no files appear.
    let o = h.run(&["--json", "user", "list"]);
    assert!(o.status.success());
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "[]");
    assert_eq!(code(&h.run(&["user", "show", "x"])), 5);
    assert_eq!(code(&h.run(&["audit", "verify"])), 5);
    assert_eq!(code(&h.run(&["audit", "tail"])), 5);
    assert!(
        !h.file("plugins").exists(),
        "read-only commands created files"
    );
    // --json errors are JSON on stderr.
    let o = h.run(&["--json", "user", "show", "x"]);
    let e: Value = serde_json::from_str(stderr(&o).trim()).unwrap();
    assert_eq!(e["error"]["code"], "not_found");
}

#[test]
fn malformed_config_is_a_config_error_naming_file_and_key() {
    let h = Home::new();
    let cfg = h.file("profiles/operator/config.yaml");
    std::fs::create_dir_all(cfg.parent().unwrap()).unwrap();
    for (text, key) in [
        ("operator:\n  port: eighty\n", "operator.port"),
        ("operator: [1, 2\n", "config.yaml"),
        ("budget:\n  user_daily_usd: -3\n", "budget.user_daily_usd"),
        (
            "terminal:\n  approval_mode: yolo\n",
            "terminal.approval_mode",
        ),
        ("hermes:\n  api_url: ftp://x\n", "hermes.api_url"),
        (
            "operator:\n  cors_origins: \"*\"\n",
            "operator.cors_origins",
        ),
    ] {
        std::fs::write(&cfg, text).unwrap();
        let o = h.run_stdin(
            &[
                "user",
                "add",
                "alice",
                "--role",
                "admin",
                "--password-stdin",
            ],
            PW,
        );
        assert_eq!(code(&o), 8, "{text}: {}", stderr(&o));
        let e = stderr(&o);
        assert!(e.contains("config.yaml") && e.contains(key), "{text}: {e}");
        assert!(
            !h.file("plugins/operator/users.db").exists(),
            "nothing created on a config error"
        );
    }
    // Unknown keys: a warning, and the command still works.
    std::fs::write(&cfg, "operator:\n  prot: 1\n").unwrap();
    let o = h.run(&["user", "list"]);
    assert!(o.status.success());
    assert!(
        stderr(&o).contains("unknown key `operator.prot`"),
        "{}",
        stderr(&o)
    );
    // A malformed .env names the file and line.
    std::fs::write(&cfg, "").unwrap();
    std::fs::write(h.file("profiles/operator/.env"), "OPERATOR_JWT_SECRET\n").unwrap();
    let o = h.run(&["user", "list"]);
    assert_eq!(code(&o), 8);
    assert!(stderr(&o).contains(".env:1"), "{}", stderr(&o));
}

#[test]
fn corrupt_and_locked_operator_databases() {
    let h = Home::new();
    h.add("alice", "admin");
    // Locked: another process holds the write lock on users.db.
    let conn = rusqlite::Connection::open(h.file("plugins/operator/users.db")).unwrap();
    conn.execute_batch("BEGIN IMMEDIATE").unwrap();
    let o = h.run_stdin(
        &["user", "add", "bob", "--role", "user", "--password-stdin"],
        PW,
    );
    assert_eq!(code(&o), 6, "{}", stderr(&o));
    assert!(stderr(&o).contains("locked"), "{}", stderr(&o));
    // Reads still work under a writer (WAL).
    assert!(h.run(&["user", "list"]).status.success());
    conn.execute_batch("ROLLBACK").unwrap();
    drop(conn);
    assert_eq!(
        h.json(&["user", "list"]).as_array().unwrap().len(),
        1,
        "nothing half-written"
    );

    // Corrupt: garbage instead of a database.
    for db in ["users.db", "events.db"] {
        let h = Home::new();
        h.add("alice", "admin");
        let p = h.file(&format!("plugins/operator/{db}"));
        for ext in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{ext}", p.display()));
        }
        std::fs::write(&p, vec![0x42u8; 8192]).unwrap();
        let o = h.run_stdin(
            &["user", "add", "bob", "--role", "user", "--password-stdin"],
            PW,
        );
        assert_eq!(code(&o), 9, "{db}: {}", stderr(&o));
        assert!(stderr(&o).contains(db), "{}", stderr(&o));
        let read = if db == "users.db" {
            vec!["user", "list"]
        } else {
            vec!["audit", "verify"]
        };
        assert_eq!(code(&h.run(&read)), 9, "{db} read");
        assert_eq!(
            std::fs::read(&p).unwrap(),
            vec![0x42u8; 8192],
            "left as it was for forensics"
        );
    }
    // A foreign SQLite file is not adopted.
    let h = Home::new();
    let p = h.file("plugins/operator/users.db");
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    rusqlite::Connection::open(&p)
        .unwrap()
        .execute_batch("CREATE TABLE t(x)")
        .unwrap();
    let o = h.run_stdin(
        &["user", "add", "bob", "--role", "user", "--password-stdin"],
        PW,
    );
    assert_eq!(code(&o), 9, "{}", stderr(&o));
}

#[test]
fn changes_print_one_line_and_their_json_is_the_account() {
    let h = Home::new();
    h.add("alice", "admin");
    let added = h.run_stdin(
        &["user", "add", "bob", "--role", "user", "--password-stdin"],
        &format!("{PW}\n"),
    );
    assert!(added.status.success(), "{}", stderr(&added));
    let bob_id = h.json(&["user", "show", "bob"])["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        String::from_utf8_lossy(&added.stdout),
        format!("created user bob (user) with id {bob_id}\n")
    );
    for (args, line) in [
        (
            ["user", "role", "bob", "viewer"].as_slice(),
            "bob is now viewer; earlier tokens are revoked",
        ),
        (
            &["user", "disable", "bob"],
            "bob is disabled; its tokens are revoked",
        ),
        (&["user", "enable", "bob"], "bob is enabled"),
    ] {
        let o = h.run(args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        assert_eq!(
            String::from_utf8_lossy(&o.stdout),
            format!("{line}\n"),
            "{args:?}"
        );
        assert_eq!(stderr(&o), "", "{args:?}");
    }
    // --json is the account, as before.
    let carol = h.add("carol", "auditor");
    assert_eq!(carol["role"], "auditor");
    assert_eq!(
        h.json(&["user", "role", "carol", "user"])["username"],
        "carol"
    );
    assert_eq!(h.json(&["user", "disable", "carol"])["disabled"], true);
}

#[test]
fn usage_errors_are_json_with_json() {
    let h = Home::new();
    for args in [
        vec!["--json", "user", "add", "bob", "--role", "root"],
        vec!["user", "list", "--bogus", "--json"],
        vec!["--json", "sessions"],
        vec!["--json"],
        vec!["--json", "user"],
        vec!["--json", "user", "show"],
    ] {
        let o = h.run(&args);
        assert_eq!(code(&o), 2, "{args:?}: {}", stderr(&o));
        let text = stderr(&o);
        assert_eq!(text.lines().count(), 1, "{args:?}: one JSON line: {text}");
        let e: Value = serde_json::from_str(text.trim())
            .unwrap_or_else(|err| panic!("{args:?}: {err}: {text}"));
        assert_eq!(e["error"]["code"], "usage", "{args:?}");
        let msg = e["error"]["message"].as_str().unwrap();
        assert!(
            !msg.is_empty() && !msg.starts_with("error:"),
            "{args:?}: {msg}"
        );
        assert!(!text.contains('\u{1b}'), "{args:?}: no terminal styling");
    }
    let error_of = |args: &[&str]| -> Value {
        let o = h.run(args);
        serde_json::from_str::<Value>(stderr(&o).trim()).unwrap()["error"].clone()
    };
    let e = error_of(&["--json", "user", "add", "bob", "--role", "root"]);
    let msg = e["message"].as_str().unwrap();
    assert!(
        msg.contains("'root'") && msg.contains("admin, auditor, user, viewer"),
        "{e}"
    );
    let e = error_of(&["--json", "user", "show"]);
    assert!(e["message"].as_str().unwrap().contains("<NAME>"), "{e}");
    assert!(
        e["hint"]
            .as_str()
            .unwrap()
            .contains("Usage: hermes-operator user show <NAME>"),
        "{e}"
    );
    let e = error_of(&["--json", "user"]);
    assert_eq!(
        e["message"], "`hermes-operator user` needs a subcommand",
        "{e}"
    );
    // Without --json: clap's own text, exit 2.
    let o = h.run(&["user", "add", "bob", "--role", "root"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).starts_with("error: "), "{}", stderr(&o));
    // Help is still help.
    let o = h.run(&["--json", "user", "--help"]);
    assert_eq!(code(&o), 0);
    assert!(String::from_utf8_lossy(&o.stdout).contains("Usage:"));
}

/// Issue 19: an admin's reset (`passwd --must-change`) revokes the account's
/// personal API keys, says how many (human line and `--json`), and audits
/// each like a key revoked by hand.
#[test]
fn a_reset_revokes_the_accounts_keys() {
    let h = Home::new();
    h.add("root", "admin");
    h.add("alice", "user");
    let key_id = |v: Value| v["id"].as_str().unwrap().to_string();
    let k1 = key_id(h.json(&["user", "key", "create", "alice"]));
    let k2 = key_id(h.json(&["user", "key", "create", "alice", "--scope", "read"]));
    let gone = key_id(h.json(&["user", "key", "create", "alice"]));
    h.json(&["user", "key", "revoke", &gone]);
    let kept = key_id(h.json(&["user", "key", "create", "root"]));
    const RESET: &str = "a temporary password 1";

    let o = h.run_stdin(
        &[
            "--json",
            "user",
            "passwd",
            "alice",
            "--must-change",
            "--password-stdin",
        ],
        &format!("{RESET}\n"),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let set: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(set["username"], "alice");
    assert_eq!(set["must_change_password"], true);
    assert_eq!(set["keys_revoked"], 2, "{set}");
    let keys = h.json(&["user", "key", "list"]);
    let reason = |id: &str| {
        keys.as_array()
            .unwrap()
            .iter()
            .find(|k| k["id"] == id)
            .unwrap()["revoked_reason"]
            .clone()
    };
    assert_eq!(reason(&k1), "password_reset");
    assert_eq!(reason(&k2), "password_reset");
    assert_eq!(reason(&gone), "revoked", "revoked by hand before");
    assert_eq!(reason(&kept), Value::Null, "another account's key stays");
    let revoked: Vec<Value> = h
        .events()
        .into_iter()
        .filter(|e| e["type"] == "key_revoked")
        .map(|e| e["data"].clone())
        .collect();
    assert_eq!(revoked.len(), 3, "{revoked:?}");
    for id in [&k1, &k2] {
        let e = revoked.iter().find(|d| d["key_id"] == id.as_str()).unwrap();
        assert_eq!(e["reason"], "password_reset", "{e}");
        assert_eq!(e["username"], "alice");
        assert!(e["prefix"].as_str().unwrap().starts_with("hop_"), "{e}");
    }

    // The human line says how many (one key made since).
    h.json(&["user", "key", "create", "alice"]);
    let o = h.run_stdin(
        &[
            "user",
            "passwd",
            "alice",
            "--must-change",
            "--password-stdin",
        ],
        &format!("{RESET}\n"),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "password changed for alice; earlier tokens are revoked; 1 personal API key revoked; \
         the next login must choose a new one\n"
    );
}

/// Issue 19: replacing a reset password with the same one is a usage error
/// (exit 2, the `--json` error shape) that changes nothing; another one is
/// taken, and a change that is no reset revokes no keys.
#[test]
fn a_reset_password_must_be_replaced_by_another() {
    let h = Home::new();
    h.add("alice", "user");
    const RESET: &str = "a temporary password 1";
    let o = h.run_stdin(
        &[
            "user",
            "passwd",
            "alice",
            "--must-change",
            "--password-stdin",
        ],
        &format!("{RESET}\n"),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let key = h.json(&["user", "key", "create", "alice"])["id"].clone();
    // The reset password cannot be kept: usage error (2), nothing changes.
    let before = h.json(&["user", "show", "alice"]);
    for json in [false, true] {
        let mut args = vec!["user", "passwd", "alice", "--password-stdin"];
        if json {
            args.insert(0, "--json");
        }
        let o = h.run_stdin(&args, &format!("{RESET}\n"));
        assert_eq!(code(&o), 2, "{}", stderr(&o));
        let text = if json {
            let v: Value = serde_json::from_str(stderr(&o).trim()).unwrap();
            assert_eq!(v["error"]["code"], "usage", "{v}");
            v["error"]["message"].as_str().unwrap().to_string()
        } else {
            stderr(&o)
        };
        assert!(text.contains("must differ"), "{text}");
    }
    let after = h.json(&["user", "show", "alice"]);
    assert_eq!(after["token_version"], before["token_version"]);
    assert_eq!(after["must_change_password"], true);
    assert_eq!(after["password_changed_at"], before["password_changed_at"]);
    // Another password is taken (and a change that is no reset revokes no keys).
    let o = h.run_stdin(
        &["--json", "user", "passwd", "alice", "--password-stdin"],
        "alice's very own password\n",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let set: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(set["must_change_password"], false);
    assert_eq!(set["keys_revoked"], 0);
    let keys = h.json(&["user", "key", "list", "alice"]);
    assert_eq!(keys[0]["id"], key);
    assert_eq!(keys[0]["revoked_at"], Value::Null, "{keys}");
}
