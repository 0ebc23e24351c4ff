//! `install` twice on a fresh HERMES_HOME (the second run changes nothing),
//! then `doctor`: everything passes except Hermes' API server, which is not
//! running (fail, with the fix), so doctor exits 12.

use crate::common;
use crate::common::mode;

use common::{op, Gen};
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

/// `install` under umask 000: every mode it promises must be set explicitly.
fn install(home: &Path, xdg: &Path, args: &[&str], stdin: &[u8]) -> Output {
    use std::os::unix::process::CommandExt;
    let mut c: Command = op(home);
    // SAFETY: umask is async-signal-safe; nothing else runs in the child yet.
    unsafe {
        c.pre_exec(|| {
            libc::umask(0);
            Ok(())
        });
    }
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
    // The unit's directories install created are private despite umask 000.
    for d in [xdg.clone(), xdg.join("systemd"), xdg.join("systemd/user")] {
        assert_eq!(mode(&d), 0o700, "{}", d.display());
    }
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
            "  # api_url: \"http://127.0.0.1:8642\"\n",
            &format!("  api_url: \"http://127.0.0.1:{closed}\"\n"),
        )
        .replace(
            "  # hermes_command: /home/hermes/.hermes/hermes-agent/venv/bin/hermes\n",
            &format!(
                "  hermes_command: \"{}\"\n",
                common::Gen::H022.venv().join("bin/hermes").display()
            ),
        );
    fs::write(&cfg, text).unwrap();

    // Hermes' own approvals mode must be as strict as terminal.approval_mode
    // (manual by default): Hermes' default, smart, fails with the fix.
    let hermes_cfg = h.join("config.yaml");
    let original = fs::read_to_string(&hermes_cfg).unwrap_or_default();
    assert!(!original.contains("approvals:"), "{original}");
    fs::write(
        &hermes_cfg,
        format!("{original}approvals:\n  timeout: 60\n"),
    )
    .unwrap();
    let out = op(h)
        .args(["--json", "doctor"])
        .env("XDG_CONFIG_HOME", &xdg)
        .output()
        .unwrap();
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    let ap = r["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "approvals")
        .unwrap()
        .clone();
    assert_eq!(ap["status"], "fail", "{ap}");
    assert!(ap["detail"].as_str().unwrap().contains("smart"), "{ap}");
    assert!(ap["fix"].as_str().unwrap().contains("mode: manual"), "{ap}");
    // Accepting Hermes' smart mode is the operator's explicit choice.
    fs::write(&hermes_cfg, &original).unwrap();
    let text = fs::read_to_string(&cfg).unwrap();
    assert!(text.contains("  approval_mode: manual"), "{text}");
    fs::write(
        &cfg,
        text.replace("  approval_mode: manual", "  approval_mode: smart"),
    )
    .unwrap();

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
        } else if c["name"] == "agent_boundary" {
            // This test's Hermes home belongs to the account running the
            // tests (root), the operator's files too: no boundary at all.
            assert_eq!(c["status"], "fail", "{c}");
            assert!(
                c["detail"].as_str().unwrap().contains("runs as root"),
                "{c}"
            );
            assert!(
                c["fix"].as_str().unwrap().contains("--operator-user"),
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
        "agent_boundary",
        "hermes_storage",
        "jwt_secret",
        "hermes_env",
        "hermes_api_key",
        "signing_key",
        "admin",
        "state_db",
        "hermes_install",
        "hermes_api",
        "hook",
        "serve_port",
        "network",
        "approvals",
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

/// `doctor --json`'s `hermes_install` check with only `PATH` and `HOME` as
/// given (no operator install needed for this check).
fn hermes_check(home: &Path, path: &str, user_home: &Path) -> Value {
    let out = op(home)
        .args(["--json", "doctor"])
        .env("PATH", path)
        .env("HOME", user_home)
        .env("XDG_CONFIG_HOME", user_home.join(".config"))
        .output()
        .unwrap();
    let r: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    common::doctor_check(&r, "hermes_install")
}

fn launcher(at: &Path, target: &Path) {
    fs::create_dir_all(at.parent().unwrap()).unwrap();
    // What the official installer writes (a bash script, never a symlink).
    fs::write(
        at,
        format!(
            "#!/usr/bin/env bash\n# Hermes Agent launcher\nexec \"{}\" \"$@\"\n",
            target.display()
        ),
    )
    .unwrap();
    fs::set_permissions(at, fs::Permissions::from_mode(0o755)).unwrap();
}

fn link_venv(venv: &Path, at: &Path) {
    fs::create_dir_all(at.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(venv, at).unwrap();
}

/// Every official layout, built in temp dirs around the generation's real
/// venv: `doctor` passes `hermes_install` naming the version, how Hermes was
/// found, and (git installs) the checkout's commit, read from `.git`.
fn doctor_finds_hermes_in_every_layout(gen: Gen) {
    let venv = gen.venv();
    let t = tempfile::tempdir().unwrap();
    let sys_path = "/usr/bin:/bin";
    let nobody = t.path().join("nobody");
    fs::create_dir_all(&nobody).unwrap();
    let check = |home: &Path, path: &str, user: &Path, via: &str| {
        let c = hermes_check(home, path, user);
        let d = c["detail"].as_str().unwrap_or_default().to_string();
        assert_eq!(c["status"], "pass", "{via}: {c}");
        assert!(
            d.contains(&format!("Hermes Agent {}", gen.version())),
            "{via}: {d}"
        );
        assert!(d.contains(via), "{via}: {d}");
        d
    };

    // 1. the installer's git checkout with venv/ (and HEAD in .git)
    let h1 = t.path().join("git/hermes");
    link_venv(&venv, &h1.join("hermes-agent/venv"));
    fs::create_dir_all(h1.join("hermes-agent/.git")).unwrap();
    let sha = "0123456789abcdef0123456789abcdef01234567";
    fs::write(h1.join("hermes-agent/.git/HEAD"), format!("{sha}\n")).unwrap();
    let d = check(&h1, sys_path, &nobody, "installer");
    assert!(
        d.contains("(0123456789ab)") && d.contains("git install"),
        "{d}"
    );
    // 2. an older checkout with .venv/
    let h2 = t.path().join("dotvenv/hermes");
    link_venv(&venv, &h2.join("hermes-agent/.venv"));
    check(&h2, sys_path, &nobody, "installer");
    // 3. a managed environment (0.21.6+)
    let h3 = t.path().join("managed/hermes");
    link_venv(&venv, &h3.join("installs/k1/environments/g1/venv"));
    check(&h3, sys_path, &nobody, "managed");
    // 4. the launcher ~/.local/bin/hermes, not on PATH (cron's PATH)
    let h4 = t.path().join("launcher/hermes");
    fs::create_dir_all(&h4).unwrap();
    let user = t.path().join("launcher/home");
    launcher(&user.join(".local/bin/hermes"), &venv.join("bin/hermes"));
    let d = check(&h4, sys_path, &user, "launcher");
    assert!(d.contains("via launcher"), "{d}");
    // 5. a root install: /usr/local/bin/hermes execs /usr/local/lib/hermes-agent/venv
    let root = t.path().join("root/usr/local");
    link_venv(&venv, &root.join("lib/hermes-agent/venv"));
    launcher(
        &root.join("bin/hermes"),
        &root.join("lib/hermes-agent/venv/bin/hermes"),
    );
    let h5 = t.path().join("root/hermes");
    fs::create_dir_all(&h5).unwrap();
    let d = check(
        &h5,
        &format!("{}:{sys_path}", root.join("bin").display()),
        &nobody,
        "PATH",
    );
    assert!(d.contains("via launcher"), "{d}");
    // 6. a pip venv on PATH
    let h6 = t.path().join("pip/hermes");
    fs::create_dir_all(&h6).unwrap();
    let d = check(
        &h6,
        &format!("{}:{sys_path}", venv.join("bin").display()),
        &nobody,
        "PATH",
    );
    assert!(d.contains("pip install"), "{d}");
    // nowhere: fail, naming where it looked
    let h7 = t.path().join("none/hermes");
    fs::create_dir_all(&h7).unwrap();
    let c = hermes_check(&h7, sys_path, &nobody);
    assert_eq!(c["status"], "fail", "{c}");
    assert!(
        c["detail"]
            .as_str()
            .unwrap()
            .contains("hermes-agent/venv/bin/hermes"),
        "{c}"
    );
}

hermes_tests!(doctor_finds_hermes_in_every_layout);
