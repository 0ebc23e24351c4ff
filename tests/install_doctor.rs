//! `install` twice on a fresh HERMES_HOME (the second run changes nothing),
//! then `doctor`: everything passes except Hermes' API server, which is not
//! running (fail, with the fix), so doctor exits 12.

mod common;

use common::op;
use serde_json::Value;
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn snapshot(dirs: &[&Path]) -> Vec<(String, u32, Vec<u8>)> {
    fn walk(d: &Path, out: &mut Vec<(String, u32, Vec<u8>)>) {
        let Ok(rd) = fs::read_dir(d) else { return };
        for e in rd.flatten() {
            let p = e.path();
            let n = p.to_string_lossy().to_string();
            if n.ends_with("-wal") || n.ends_with("-shm") {
                continue;
            }
            let mode = fs::metadata(&p).unwrap().permissions().mode();
            if p.is_dir() {
                out.push((n, mode, vec![]));
                walk(&p, out);
            } else {
                out.push((n, mode, fs::read(&p).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    for d in dirs {
        walk(d, &mut out);
    }
    out.sort();
    out
}

fn install(home: &Path, xdg: &Path, args: &[&str], stdin: &[u8]) -> Output {
    let mut c: Command = op(home);
    c.arg("install")
        .args(args)
        .env("XDG_CONFIG_HOME", xdg)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn mode(p: &Path) -> u32 {
    fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn install_twice_then_doctor() {
    let home = common::make_home_with_state(common::Gen::H022, 1, 0, &[]);
    let h = home.path();
    // Hermes' own secrets: the API key the operator shares.
    fs::write(
        h.join(".env"),
        "API_SERVER_KEY=hermes-api-key-0123456789abcdef\n",
    )
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let xdg = tmp.path().join("xdg");

    let out = install(
        h,
        &xdg,
        &["--json", "--admin", "root", "--password-stdin"],
        b"a long enough password\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["changed"], true);
    let action = |r: &Value, what: &str| {
        r["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["what"] == what)
            .map(|i| i["action"].as_str().unwrap().to_string())
            .unwrap()
    };
    for what in [
        "JWT secret",
        "audit signing key",
        "config",
        "admin",
        "start script",
        "auto-update script",
        "systemd user unit",
        "users.db",
        "events.db",
    ] {
        assert_eq!(action(&r, what), "created", "{what}: {r:#}");
    }
    // Permissions and contents.
    for d in [
        "profiles/operator",
        "profiles/operator/logs",
        "plugins/operator",
        "scripts/operator",
    ] {
        assert_eq!(mode(&h.join(d)), 0o700, "{d}");
    }
    for f in [
        "profiles/operator/.env",
        "profiles/operator/config.yaml",
        "profiles/operator/audit_signing.key",
        "plugins/operator/users.db",
        "plugins/operator/events.db",
    ] {
        assert_eq!(mode(&h.join(f)), 0o600, "{f}");
    }
    for f in [
        "scripts/operator/start.sh",
        "scripts/operator/auto_update.sh",
    ] {
        assert_eq!(mode(&h.join(f)), 0o700, "{f}");
        assert!(
            Command::new("sh")
                .arg("-n")
                .arg(h.join(f))
                .status()
                .unwrap()
                .success(),
            "{f}"
        );
    }
    let env = fs::read_to_string(h.join("profiles/operator/.env")).unwrap();
    let secret = env
        .lines()
        .find_map(|l| l.strip_prefix("OPERATOR_JWT_SECRET="))
        .unwrap();
    assert_eq!(base64_len(secret), 48);
    let unit = fs::read_to_string(xdg.join("systemd/user/hermes-operator.service")).unwrap();
    let exe = fs::canonicalize(env!("CARGO_BIN_EXE_hermes-operator")).unwrap();
    assert!(
        unit.contains(&format!("ExecStart={} --hermes-home ", exe.display())),
        "{unit}"
    );
    assert!(unit.contains(" serve\n"), "{unit}");
    assert!(
        unit.contains("EnvironmentFile=") && unit.contains("/profiles/operator/.env"),
        "{unit}"
    );

    // Second run: nothing changes (files, modes, databases), and it says so.
    let before = snapshot(&[h, &xdg]);
    let out = install(h, &xdg, &["--admin", "root", "--password-stdin"], b"");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nothing to do"), "{err}");
    assert_eq!(
        snapshot(&[h, &xdg]),
        before,
        "the second install changed files"
    );
    let out = install(h, &xdg, &["--json", "--yes"], b"");
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["changed"], false, "{r:#}");
    assert!(
        r["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["action"] == "unchanged" || i["action"] == "skipped"),
        "{r:#}"
    );
    assert_eq!(snapshot(&[h, &xdg]), before);

    // A changed file is kept without --force, replaced (after a backup) with it.
    let start = h.join("scripts/operator/start.sh");
    fs::write(&start, "#!/bin/sh\necho mine\n").unwrap();
    let r: Value =
        serde_json::from_slice(&install(h, &xdg, &["--json", "--yes"], b"").stdout).unwrap();
    assert_eq!(action(&r, "start script"), "kept");
    assert_eq!(
        fs::read_to_string(&start).unwrap(),
        "#!/bin/sh\necho mine\n"
    );
    let r: Value =
        serde_json::from_slice(&install(h, &xdg, &["--json", "--yes", "--force"], b"").stdout)
            .unwrap();
    assert_eq!(action(&r, "start script"), "replaced");
    let bak: Vec<_> = fs::read_dir(h.join("scripts/operator"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("start.sh.bak-"))
        .collect();
    assert_eq!(bak.len(), 1);
    assert_eq!(
        fs::read_to_string(bak[0].path()).unwrap(),
        "#!/bin/sh\necho mine\n"
    );

    // The hook, and a config that points at a free port, a closed Hermes
    // port and the (read-only) cached Hermes 0.19.0.
    let out = op(h).args(["hook", "install", "--yes"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let cfg = h.join("profiles/operator/config.yaml");
    let text = fs::read_to_string(&cfg)
        .unwrap()
        .replace("  port: 8643\n", &format!("  port: {port}\n"))
        .replace(
            "  api_url: \"http://127.0.0.1:8642\"\n",
            &format!("  api_url: \"http://127.0.0.1:{closed}\"\n"),
        )
        .replace(
            "  # hermes_command: /home/hermes/.hermes/hermes-agent/.venv/bin/hermes\n",
            &format!(
                "  hermes_command: \"{}\"\n",
                common::Gen::H022.venv().join("bin/hermes").display()
            ),
        );
    fs::write(&cfg, text).unwrap();

    let out = op(h)
        .args(["--json", "doctor"])
        .env("XDG_CONFIG_HOME", &xdg)
        .output()
        .unwrap();
    let r: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(out.status.code(), Some(12), "{r:#}");
    assert_eq!(r["worst"], "fail");
    let checks = r["checks"].as_array().unwrap();
    for c in checks {
        if c["name"] == "hermes_api" {
            assert_eq!(c["status"], "fail", "{c}");
            assert!(
                c["detail"]
                    .as_str()
                    .unwrap()
                    .contains(&format!("127.0.0.1:{closed}")),
                "{c}"
            );
            let fix = c["fix"].as_str().unwrap();
            assert!(
                fix.contains("hermes gateway run") && fix.contains("API_SERVER_KEY"),
                "{c}"
            );
        } else {
            assert_eq!(c["status"], "pass", "{c}");
        }
    }
    for name in [
        "hermes_home",
        "config",
        "directories",
        "file_permissions",
        "jwt_secret",
        "hermes_api_key",
        "signing_key",
        "admin",
        "state_db",
        "hermes_install",
        "hermes_api",
        "hook",
        "serve_port",
        "service_files",
        "last_update",
        "audit_chain",
    ] {
        assert!(
            checks.iter().any(|c| c["name"] == name),
            "missing check {name}"
        );
    }
    // Human output: a table and the fix; doctor never writes.
    let before = snapshot(&[h]);
    let out = op(h)
        .arg("doctor")
        .env("XDG_CONFIG_HOME", &xdg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(12));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("hermes_api") && text.contains("FAIL") && text.contains("fix:"),
        "{text}"
    );
    assert_eq!(snapshot(&[h]), before, "doctor changed files");

    // A secrets file readable by others fails its check with the chmod fix.
    fs::set_permissions(
        h.join("profiles/operator/.env"),
        fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let out = op(h)
        .args(["--json", "doctor"])
        .env("XDG_CONFIG_HOME", &xdg)
        .output()
        .unwrap();
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    let fp = r["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "file_permissions")
        .unwrap()
        .clone();
    assert_eq!(fp["status"], "fail", "{fp}");
    assert!(fp["fix"].as_str().unwrap().contains("chmod 600"));
}

fn base64_len(s: &str) -> usize {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .unwrap()
        .len()
}
