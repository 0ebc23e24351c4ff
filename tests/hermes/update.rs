//! `hermes-operator update` against REAL Hermes installs in throwaway
//! virtualenvs: hermes-agent 0.18.2 updated to 0.19.0 by Hermes' own
//! `hermes update --yes` (pip), from a local wheel directory (offline,
//! pinned: `PIP_NO_INDEX` + `PIP_FIND_LINKS`), and an update whose package
//! index is unreachable. The shared cached 0.19.0 venv is never an update
//! target (it only makes state.db with Hermes' own SessionDB).
//!
//! The wheels (0.18.2 and 0.19.0 with dependencies) are downloaded once into
//! `~/.cache/hermes-operator-test/wheels-update/` (or
//! `$HERMES_OPERATOR_TEST_WHEELS`); each test makes a fresh venv from them.

use crate::common;

use common::{free_port, op, TestHome};
use hermes_operator::store::events::EventKind;
use serde_json::Value;
use std::fs;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const OLD: &str = "0.18.2";
const NEW: &str = "0.19.0";

// ---------------------------------------------------------------------------
// wheels and venvs
// ---------------------------------------------------------------------------

fn note(msg: String) {
    let _ = writeln!(std::io::stderr().lock(), "{msg}");
}

fn wheels_dir() -> PathBuf {
    static W: OnceLock<PathBuf> = OnceLock::new();
    W.get_or_init(|| {
        let dir = std::env::var_os("HERMES_OPERATOR_TEST_WHEELS")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                common::Gen::H019
                    .venv_dir()
                    .parent()
                    .unwrap()
                    .join("wheels-update")
            });
        fs::create_dir_all(&dir).unwrap();
        let done = dir.join(".complete");
        if done.exists() {
            return dir;
        }
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.with_extension("lock"))
            .unwrap();
        assert_eq!(unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) }, 0);
        if !done.exists() {
            let t = Instant::now();
            for v in [OLD, NEW] {
                let st = Command::new(common::Gen::H019.python())
                    .args(["-m", "pip", "download", "--disable-pip-version-check", "-q"])
                    .arg(format!("hermes-agent=={v}"))
                    .arg("-d")
                    .arg(&dir)
                    .stdin(Stdio::null())
                    .status()
                    .expect("run pip download");
                assert!(
                    st.success(),
                    "pip download hermes-agent=={v} failed (needs PyPI)"
                );
            }
            fs::write(&done, b"ok\n").unwrap();
            note(format!(
                "update tests: wheels downloaded in {:.1}s",
                t.elapsed().as_secs_f64()
            ));
        }
        dir
    })
    .clone()
}

/// A fresh venv with hermes-agent 0.18.2 (installed offline from the wheels).
fn old_hermes_venv(parent: &Path) -> PathBuf {
    let wheels = wheels_dir();
    let venv = parent.join("venv");
    let t = Instant::now();
    // The base interpreter of the cached venv (same Python, known to work).
    let cfg = fs::read_to_string(common::Gen::H019.venv().join("pyvenv.cfg")).unwrap();
    let base = cfg
        .lines()
        .find_map(|l| l.strip_prefix("home = "))
        .map(|h| PathBuf::from(h.trim()).join("python3"))
        .filter(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("python3"));
    let st = Command::new(&base)
        .args(["-m", "venv"])
        .arg(&venv)
        .stdin(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "python -m venv failed");
    let out = Command::new(venv.join("bin/python"))
        .args([
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            "--no-index",
            "--find-links",
        ])
        .arg(&wheels)
        .arg(format!("hermes-agent=={OLD}"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pip install hermes-agent=={OLD}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        common::installed_hermes_version(&venv).as_deref(),
        Some(OLD)
    );
    note(format!(
        "update tests: fresh {OLD} venv in {:.1}s",
        t.elapsed().as_secs_f64()
    ));
    venv
}

// ---------------------------------------------------------------------------
// the operator side
// ---------------------------------------------------------------------------

struct Setup {
    home: TestHome,
    tmp: tempfile::TempDir,
    calls: PathBuf,
}

/// A HERMES_HOME with state.db (Hermes' own SessionDB), the operator
/// installed (admin alice), a restart stub recording its calls, and
/// config pointing at `hermes`, the stub and `port`.
fn setup(hermes: &Path, port: u16) -> Setup {
    let home = common::make_home_with_state(common::Gen::H019, 2, 1, &["alice"]);
    let tmp = tempfile::tempdir().unwrap();
    let calls = tmp.path().join("restart-calls");
    let stub = tmp.path().join("restart.sh");
    fs::write(
        &stub,
        format!(
            "#!/bin/sh\necho \"restart $HERMES_HOME\" >> '{}'\n",
            calls.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&stub, fs::Permissions::from_mode(0o755)).unwrap();
    common::install_operator(home.path(), &tmp.path().join("xdg"));
    let cfg = home.path().join("profiles/operator/config.yaml");
    let text = fs::read_to_string(&cfg).unwrap();
    let text = text
        .replace("  port: 8643\n", &format!("  port: {port}\n"))
        .replace(
            "  restart_command: \"systemctl --user restart hermes-operator\"\n",
            &format!("  restart_command: \"{}\"\n", stub.display()),
        )
        .replace(
            "  # hermes_command: /home/hermes/.hermes/hermes-agent/venv/bin/hermes\n",
            &format!("  hermes_command: \"{}\"\n", hermes.display()),
        );
    fs::write(&cfg, text).unwrap();
    Setup { home, tmp, calls }
}

/// `update` with the package index replaced by the local wheels (pip and uv).
fn update_cmd(s: &Setup, args: &[&str]) -> Command {
    let mut c = op(s.home.path());
    c.arg("--json")
        .arg("update")
        .args(args)
        .env("PIP_NO_INDEX", "1")
        .env("PIP_FIND_LINKS", wheels_dir())
        .env("UV_NO_INDEX", "1")
        .env("UV_FIND_LINKS", wheels_dir())
        .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
        .env("XDG_CONFIG_HOME", s.tmp.path().join("xdg"));
    c
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON ({e}); exit {:?}\nstdout: {}\nstderr: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn restart_calls(s: &Setup) -> usize {
    fs::read_to_string(&s.calls)
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

fn events(home: &Path, kind: &str) -> Vec<Value> {
    let c = rusqlite::Connection::open_with_flags(
        home.join("plugins/operator/events.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let mut st = c
        .prepare("SELECT data FROM events WHERE type = ?1 ORDER BY seq")
        .unwrap();
    let rows = st.query_map([kind], |r| r.get::<_, String>(0)).unwrap();
    rows.map(|r| serde_json::from_str(&r.unwrap()).unwrap())
        .collect()
}

/// A real `hermes-operator serve` on `port` (its /healthz is what the update checks).
struct Serve(std::process::Child);

impl Serve {
    fn start(home: &Path, port: u16) -> Serve {
        let child = op(home)
            .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn serve");
        let s = Serve(child);
        let end = Instant::now() + Duration::from_secs(20);
        while Instant::now() < end {
            if get(port, "/healthz").0 == 200 {
                return s;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("serve did not answer /healthz on {port}");
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let _ = self.0.wait();
    }
}

fn get(port: u16, path: &str) -> (u16, String) {
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return (0, String::new());
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    );
    let mut r = String::new();
    let _ = s.read_to_string(&mut r);
    let code = r
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, r)
}

fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    fn walk(d: &Path, root: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        let Ok(rd) = fs::read_dir(d) else { return };
        for e in rd.flatten() {
            let p = e.path();
            let n = p.to_string_lossy().to_string();
            if n.ends_with("-wal") || n.ends_with("-shm") {
                continue;
            }
            if p.is_dir() {
                walk(&p, root, out);
            } else {
                out.push((
                    p.strip_prefix(root).unwrap().display().to_string(),
                    fs::read(&p).unwrap_or_default(),
                ));
            }
        }
    }
    walk(dir, dir, &mut out);
    out.sort();
    out
}

// ---------------------------------------------------------------------------
// tests
// ---------------------------------------------------------------------------

/// 0.18.2 → 0.19.0 through `hermes update --yes`: "updated", versions in the
/// event, one restart, the health check answered by a real `serve`; a
/// concurrent run is "busy"; a second run is "up to date"; the backup
/// verifies and restores users and events into an empty home.
#[test]
fn updates_old_hermes_then_up_to_date_busy_and_restorable() {
    let t0 = Instant::now();
    let venvs = tempfile::tempdir().unwrap();
    let venv = old_hermes_venv(venvs.path());
    let port = free_port();
    let s = setup(&venv.join("bin/hermes"), port);
    let home = s.home.path();
    let _serve = Serve::start(home, port);

    // --check: the index (our wheels) offers 0.19.0.
    let out = update_cmd(&s, &["--check"]).output().unwrap();
    let v = json_of(&out);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(v["installed"]["version"], OLD);
    assert_eq!(v["latest"], NEW);
    assert_eq!(v["update_available"], true);

    // --dry-run changes nothing; without --yes and no terminal: usage, nothing changed.
    let before = snapshot(home);
    let out = update_cmd(&s, &["--dry-run"]).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(json_of(&out)["steps"].as_array().unwrap().len() >= 10);
    let out = update_cmd(&s, &[]).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        snapshot(home),
        before,
        "--dry-run / refused run changed files"
    );
    assert_eq!(
        common::installed_hermes_version(&venv).as_deref(),
        Some(OLD)
    );

    // The real update, with a second run started while the first holds the lock.
    let log = home.join("profiles/operator/logs/update.log");
    let mut first = update_cmd(&s, &["--yes"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        let t = fs::read_to_string(&log).unwrap_or_default();
        if t.contains("update --yes ---") {
            break;
        }
        assert!(
            Instant::now() < end,
            "first update never reached `hermes update`"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let busy = update_cmd(&s, &["--yes"]).output().unwrap();
    assert_eq!(
        busy.status.code(),
        Some(6),
        "{}",
        String::from_utf8_lossy(&busy.stderr)
    );
    // At once: refused while the first still holds the lock, not after
    // waiting for it (no clock involved).
    assert!(
        first.try_wait().unwrap().is_none(),
        "busy must fail while the first update still runs"
    );
    let err: Value = serde_json::from_slice(busy.stderr.trim_ascii()).unwrap();
    assert_eq!(err["error"]["code"], "busy");
    let out = first.wait_with_output().unwrap();
    let r = json_of(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{r:#}\n{}",
        fs::read_to_string(&log).unwrap()
    );
    assert_eq!(r["result"], "updated");
    assert_eq!(r["version_before"]["version"], OLD);
    assert_eq!(r["version_after"]["version"], NEW);
    assert_eq!(r["version_before"]["source"], "metadata");
    assert_eq!(r["schema"]["compatible"], true);
    assert_eq!(r["schema"]["live"], "compatible");
    assert_eq!(r["schema"]["fresh"], "compatible");
    assert_eq!(r["files"]["restored"].as_array().unwrap().len(), 0);
    assert_eq!(r["restart"]["ran"], true);
    assert_eq!(r["health"]["ok"], true, "{r:#}");
    assert_eq!(
        r["health"]["url"],
        format!("http://127.0.0.1:{port}/healthz")
    );
    assert_eq!(restart_calls(&s), 1);
    assert_eq!(
        common::installed_hermes_version(&venv).as_deref(),
        Some(NEW)
    );
    let logt = fs::read_to_string(&log).unwrap();
    assert!(logt.contains("Update complete"), "{logt}");
    assert!(
        logt.contains("=== result: updated (0.18.2 -> 0.19.0), exit 0"),
        "{logt}"
    );
    assert_eq!(
        fs::metadata(&log).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // The busy run is audited too: started, then finished as failed (exit 6).
    let fin = events(home, "update_finished");
    assert_eq!(fin.len(), 2, "{fin:#?}");
    let busy_fin = fin
        .iter()
        .find(|f| f["exit_code"] == 6)
        .expect("busy run's update_finished");
    assert_eq!(busy_fin["result"], "failed");
    assert!(
        busy_fin["reason"].as_str().unwrap().contains("update"),
        "{busy_fin}"
    );
    let fin: Vec<&Value> = fin.iter().filter(|f| f["exit_code"] != 6).collect();
    assert_eq!(fin[0]["result"], "updated");
    assert_eq!(fin[0]["version_before"], OLD);
    assert_eq!(fin[0]["version_after"], NEW);
    assert_eq!(fin[0]["backup"], r["backup"]);
    assert_eq!(events(home, "update_started").len(), 2);

    // The backup: 0700 dir, 0600 files, manifest verifies, databases standalone.
    let backup = PathBuf::from(r["backup"].as_str().unwrap());
    assert!(backup
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("operator_"));
    assert_eq!(
        fs::metadata(&backup).unwrap().permissions().mode() & 0o777,
        0o700
    );
    assert_eq!(
        hermes_operator::ops::update::verify_backup(&backup).unwrap(),
        Vec::<String>::new()
    );
    let manifest = fs::read_to_string(backup.join("MANIFEST.sha256")).unwrap();
    for f in [
        "plugins/operator/users.db",
        "plugins/operator/events.db",
        "profiles/operator/config.yaml",
        "profiles/operator/.env",
        "profiles/operator/audit_signing.key",
    ] {
        assert!(
            manifest.contains(&format!("  {f}\n")),
            "{f} not in\n{manifest}"
        );
        assert_eq!(
            fs::metadata(backup.join(f)).unwrap().permissions().mode() & 0o777,
            0o600,
            "{f}"
        );
    }
    assert!(!backup.join("plugins/operator/users.db-wal").exists());

    // Restore into an empty home by the documented procedure: copy back.
    let fresh = TestHome::new();
    for line in manifest.lines() {
        let rel = line.split_once("  ").unwrap().1;
        let dst = fresh.path().join(rel);
        fs::create_dir_all(dst.parent().unwrap()).unwrap();
        fs::copy(backup.join(rel), &dst).unwrap();
    }
    let out = op(fresh.path())
        .args(["--json", "user", "list"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let users = json_of(&out);
    assert!(
        users
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["username"] == "alice" && u["role"] == "admin"),
        "{users}"
    );
    let out = op(fresh.path())
        .args(["--json", "audit", "verify"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "restored log must verify: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let restored = events(fresh.path(), "update_started");
    assert_eq!(
        restored.len(),
        1,
        "the backup holds the log up to update_started"
    );
    // update_started is the run's first step: Hermes is not located yet.
    assert!(restored[0]["pid"].is_u64(), "{}", restored[0]);

    // Second run: up to date, no restart, health still checked.
    let out = update_cmd(&s, &["--yes"]).output().unwrap();
    let r2 = json_of(&out);
    assert_eq!(out.status.code(), Some(0), "{r2:#}");
    assert_eq!(r2["result"], "up_to_date");
    assert_eq!(r2["version_after"]["version"], NEW);
    assert_eq!(r2["availability"]["latest"], NEW);
    assert_eq!(r2["restart"]["ran"], false);
    assert_eq!(r2["restart"]["skipped"], "up_to_date");
    assert_eq!(r2["health"]["ok"], true);
    assert_eq!(restart_calls(&s), 1);
    let fin = events(home, "update_finished");
    assert_eq!(fin.len(), 3, "updated, busy, up to date");
    assert_eq!(fin[2]["result"], "up_to_date");
    assert_eq!(
        hermes_operator::ops::update::list_backups(&hermes_operator::home::Home::at(home)).len(),
        2
    );
    note(format!(
        "updates_old_hermes...: {:.1}s",
        t0.elapsed().as_secs_f64()
    ));
}

/// The package index unreachable: pip exits 0 ("Requirement already
/// satisfied") and so does `hermes update` — the run must still be "failed"
/// (exit 11), with no restart and the operator's files intact. Then, with
/// the index back but a state.db lacking a column the operator uses:
/// Hermes is updated, yet the run is "incompatible" (exit 9), no restart.
#[test]
fn unreachable_index_fails_and_missing_column_is_incompatible() {
    let t0 = Instant::now();
    let venvs = tempfile::tempdir().unwrap();
    let venv = old_hermes_venv(venvs.path());
    let s = setup(&venv.join("bin/hermes"), free_port());
    let home = s.home.path();
    let op_files = [
        "profiles/operator/config.yaml",
        "profiles/operator/.env",
        "profiles/operator/audit_signing.key",
    ];
    let before: Vec<Vec<u8>> = op_files
        .iter()
        .map(|f| fs::read(home.join(f)).unwrap())
        .collect();

    let out = op(home)
        .args(["--json", "update", "--yes"])
        .env("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
        .env("UV_INDEX_URL", "http://127.0.0.1:9/simple")
        .env("UV_DEFAULT_INDEX", "http://127.0.0.1:9/simple")
        .env_remove("PIP_FIND_LINKS")
        .env("PIP_CONFIG_FILE", "/dev/null")
        .env("PIP_RETRIES", "1")
        .env("PIP_TIMEOUT", "5")
        .output()
        .unwrap();
    let r = json_of(&out);
    assert_eq!(out.status.code(), Some(11), "{r:#}");
    assert_eq!(r["result"], "failed");
    assert_eq!(
        r["hermes_update_exit"], 0,
        "pip/hermes report success; we must not"
    );
    assert_eq!(r["version_after"]["version"], OLD);
    assert!(
        r["reason"].as_str().unwrap().contains("package index"),
        "{r:#}"
    );
    assert_eq!(r["restart"]["ran"], false);
    assert_eq!(r["restart"]["skipped"], "failed");
    assert!(r["health"].is_null());
    assert_eq!(restart_calls(&s), 0);
    let err: Value = serde_json::from_slice(out.stderr.trim_ascii()).unwrap();
    assert_eq!(err["error"]["code"], "update_failed");
    for (f, b) in op_files.iter().zip(&before) {
        assert_eq!(&fs::read(home.join(f)).unwrap(), b, "{f} changed");
    }
    assert!(PathBuf::from(r["backup"].as_str().unwrap())
        .join("MANIFEST.sha256")
        .exists());
    let fin = events(home, "update_finished");
    assert_eq!(fin.len(), 1);
    assert_eq!(fin[0]["result"], "failed");
    assert_eq!(fin[0]["version_before"], OLD);
    let out = op(home).args(["audit", "verify"]).output().unwrap();
    assert!(out.status.success());

    // A state.db that lacks a column the operator uses.
    let c = rusqlite::Connection::open(home.join("state.db")).unwrap();
    c.execute_batch("ALTER TABLE sessions DROP COLUMN api_call_count")
        .unwrap();
    drop(c);
    let out = update_cmd(&s, &["--yes"]).output().unwrap();
    let r = json_of(&out);
    assert_eq!(out.status.code(), Some(9), "{r:#}");
    assert_eq!(r["result"], "incompatible");
    assert_eq!(
        r["version_after"]["version"], NEW,
        "Hermes itself was updated"
    );
    assert!(
        r["reason"]
            .as_str()
            .unwrap()
            .contains("sessions.api_call_count"),
        "{r:#}"
    );
    assert_eq!(r["schema"]["compatible"], false);
    assert_eq!(
        r["schema"]["fresh"], "compatible",
        "a fresh 0.19.0 state.db has every column"
    );
    assert_eq!(r["restart"]["ran"], false);
    assert_eq!(r["restart"]["skipped"], "incompatible");
    assert_eq!(restart_calls(&s), 0);
    let fin = events(home, "update_finished");
    assert_eq!(fin[1]["result"], "incompatible");
    assert_eq!(fin[1]["version_after"], NEW);
    note(format!(
        "unreachable_index...: {:.1}s",
        t0.elapsed().as_secs_f64()
    ));
}

/// `update schedule` / `unschedule` through a stand-in `crontab` on PATH
/// (the real user's crontab is never touched): validated, idempotent, audited.
#[test]
fn schedule_and_unschedule_edit_the_crontab_idempotently() {
    let home = TestHome::new();
    let bin = tempfile::tempdir().unwrap();
    let table = bin.path().join("table");
    fs::write(&table, "# mine\n15 * * * * /usr/bin/true\n").unwrap();
    let fake = bin.path().join("crontab");
    fs::write(
        &fake,
        format!(
            "#!/bin/sh\nT='{}'\nif [ \"$1\" = -l ]; then [ -f \"$T\" ] || {{ echo 'no crontab for you' >&2; exit 1; }}; cat \"$T\"; exit 0; fi\nif [ \"$1\" = - ]; then cat > \"$T\"; exit 0; fi\nexit 2\n",
            table.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&fake, fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap()
    );
    let run = |args: &[&str]| {
        op(home.path())
            .args(args)
            .env("PATH", &path)
            .output()
            .unwrap()
    };

    let out = run(&["--json", "update", "schedule", "0 3 * * 0"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json_of(&out);
    assert_eq!(v["changed"], true);
    assert_eq!(v["script_created"], true);
    let script = home.path().join("scripts/operator/auto_update.sh");
    assert_eq!(
        fs::metadata(&script).unwrap().permissions().mode() & 0o777,
        0o700
    );
    let t = fs::read_to_string(&table).unwrap();
    assert!(t.starts_with("# mine\n15 * * * * /usr/bin/true\n"), "{t}");
    let ours: Vec<&str> = t
        .lines()
        .filter(|l| l.contains("# hermes-operator update HERMES_HOME="))
        .collect();
    assert_eq!(ours.len(), 1, "{t}");
    assert!(ours[0].starts_with("0 3 * * 0 "), "{t}");
    assert!(ours[0].contains("auto_update.sh"), "{t}");

    let out = run(&["--json", "update", "schedule", "0  3 * * 0"]);
    assert_eq!(json_of(&out)["changed"], false);
    assert_eq!(fs::read_to_string(&table).unwrap(), t);

    let out = run(&["update", "schedule", "61 3 * * 0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("minute"));
    let out = run(&["--json", "update", "schedule", "30 4 * * mon-fri"]);
    assert_eq!(json_of(&out)["removed"].as_array().unwrap().len(), 1);
    let t2 = fs::read_to_string(&table).unwrap();
    assert_eq!(
        t2.lines()
            .filter(|l| l.contains("# hermes-operator update"))
            .count(),
        1
    );
    assert!(t2.contains("30 4 * * mon-fri "));

    let out = run(&["--json", "update", "unschedule"]);
    assert_eq!(json_of(&out)["changed"], true);
    assert_eq!(
        fs::read_to_string(&table).unwrap(),
        "# mine\n15 * * * * /usr/bin/true\n"
    );
    let out = run(&["--json", "update", "unschedule"]);
    assert_eq!(json_of(&out)["changed"], false);

    assert_eq!(events(home.path(), "update_scheduled").len(), 2);
    assert_eq!(events(home.path(), "update_unscheduled").len(), 1);

    // The script cron runs is a valid shell script that calls us with --yes.
    let st = Command::new("sh").arg("-n").arg(&script).status().unwrap();
    assert!(st.success());
    let body = fs::read_to_string(&script).unwrap();
    assert!(
        body.contains("update --yes") && body.contains("HERMES_OPERATOR_TRIGGER=cron"),
        "{body}"
    );
}

/// The backup and the post-update check as library calls: online-backup
/// copies verify against the manifest, a changed config and a deleted
/// events.db are restored from the backup, and only the newest N are kept.
#[test]
fn backup_verifies_restores_changed_files_and_prunes() {
    use hermes_operator::home::Home;
    use hermes_operator::ops::update;
    use hermes_operator::store::events::{Actor, EventStore, NewEvent};
    let t = TestHome::new();
    let home = Home::at(t.path());
    home.ensure_operator_dirs().unwrap();
    let store = EventStore::open(&home.events_db()).unwrap();
    for i in 0..5 {
        store
            .append(NewEvent::new(
                EventKind::Note,
                &Actor::new("test"),
                serde_json::json!({"i": i}),
            ))
            .unwrap();
    }
    fs::write(home.config_yaml(), "operator:\n  port: 9999\n").unwrap();
    fs::write(home.operator_env(), "OPERATOR_JWT_SECRET=x\n").unwrap();
    // The live db is open (WAL) while the backup is taken.
    let b = update::make_backup(&home, serde_json::json!({})).unwrap();
    assert!(update::verify_backup(&b.dir).unwrap().is_empty());
    let names: Vec<&str> = b.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        names,
        [
            "plugins/operator/events.db",
            "profiles/operator/config.yaml",
            "profiles/operator/.env"
        ]
    );
    let c = rusqlite::Connection::open(b.dir.join("plugins/operator/events.db")).unwrap();
    let n: i64 = c
        .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
        .unwrap();
    let mode: String = c
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!((n, mode.as_str()), (5, "delete"));
    drop(c);
    drop(store);

    // Nothing changed: nothing restored.
    let fc = update::verify_operator_files(&home, &b);
    assert_eq!((fc.checked, fc.restored.len()), (3, 0));
    // A changed config and a lost events.db come back from the backup.
    fs::write(home.config_yaml(), "operator:\n  port: 1\n").unwrap();
    fs::remove_file(home.events_db()).unwrap();
    let fc = update::verify_operator_files(&home, &b);
    assert_eq!(
        fc.restored,
        [
            "plugins/operator/events.db",
            "profiles/operator/config.yaml"
        ]
    );
    assert!(fc.problems.is_empty());
    assert_eq!(
        fs::read_to_string(home.config_yaml()).unwrap(),
        "operator:\n  port: 9999\n"
    );
    assert_eq!(
        fs::metadata(home.config_yaml())
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    assert_eq!(
        EventStore::open_readonly(&home.events_db())
            .unwrap()
            .count()
            .unwrap(),
        5
    );

    // Keep the newest 2 of 4.
    for _ in 0..3 {
        update::make_backup(&home, serde_json::json!({})).unwrap();
    }
    let all = update::list_backups(&home);
    assert_eq!(all.len(), 4);
    let removed = update::prune_backups(&home, 2).unwrap();
    assert_eq!(removed, all[..2].to_vec());
    assert_eq!(update::list_backups(&home), all[2..].to_vec());
    // Foreign things in backups/ are never touched.
    fs::create_dir_all(home.backups_dir().join("operator_mine")).unwrap();
    update::prune_backups(&home, 1).unwrap();
    assert!(home.backups_dir().join("operator_mine").exists());
}

/// `POST path` with a JSON body over raw HTTP; the status.
fn post_json(port: u16, path: &str, body: &str) -> u16 {
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return 0;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut r = String::new();
    let _ = s.read_to_string(&mut r);
    r.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

fn login_status(port: u16, user: &str) -> u16 {
    post_json(
        port,
        "/auth/login",
        &serde_json::json!({"username": user, "password": common::TEST_PASSWORD}).to_string(),
    )
}

fn usernames(home: &Path) -> Vec<String> {
    let out = op(home).args(["--json", "user", "list"]).output().unwrap();
    let mut v: Vec<String> = json_of(&out)
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

/// `update restore`: a backup is checked, the current state saved, users,
/// events and config put back under a running `serve` (which sees the
/// restored accounts at once), the restore recorded and undoable; tampered
/// or unknown backups, missing `--yes` and a held lock change nothing.
#[test]
fn restore_puts_a_backup_back_under_a_running_serve() {
    use hermes_operator::home::Home;
    use hermes_operator::ops::update;
    let port = free_port();
    let s = setup(Path::new("/nonexistent/hermes"), port);
    let home = s.home.path();
    let h = Home::at(home);
    common::add_user(home, "bob", "user");
    let backup = update::make_backup(&h, serde_json::json!({"reason": "test"})).unwrap();
    let name = backup
        .dir
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    // After the backup: carol added, bob deleted, the config edited.
    common::add_user(home, "carol", "user");
    let o = op(home)
        .args(["user", "delete", "bob", "--yes"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let cfg = h.config_yaml();
    let cfg_at_backup = fs::read(&cfg).unwrap();
    let mut edited = cfg_at_backup.clone();
    edited.extend_from_slice(b"# edited after the backup\n");
    fs::write(&cfg, &edited).unwrap();
    let serve = Serve::start(home, port);
    assert_eq!(login_status(port, "carol"), 200);
    assert_eq!(login_status(port, "bob"), 401);
    let restore = |args: &[&str]| {
        op(home)
            .args(["--json", "update", "restore"])
            .args(args)
            .output()
            .unwrap()
    };
    let before = usernames(home);
    assert_eq!(before, ["alice", "carol"]);

    // Refusals change nothing.
    let o = restore(&["--dry-run"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let plan = json_of(&o);
    assert_eq!(plan["dry_run"], true);
    assert_eq!(plan["backup"], backup.dir.to_string_lossy().as_ref());
    let actions: Vec<(String, String)> = plan["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().into(),
                f["action"].as_str().unwrap().into(),
            )
        })
        .collect();
    for (p, a) in [
        ("plugins/operator/users.db", "restore"),
        ("plugins/operator/events.db", "restore"),
        ("profiles/operator/config.yaml", "restore"),
        ("profiles/operator/.env", "unchanged"),
        ("profiles/operator/audit_signing.key", "unchanged"),
    ] {
        assert!(
            actions.contains(&(p.to_string(), a.to_string())),
            "{p} {a}: {plan:#}"
        );
    }
    let o = restore(&[]);
    assert_eq!(o.status.code(), Some(2), "no terminal and no --yes");
    let o = restore(&["operator_19990101T000000Z", "--yes"]);
    assert_eq!(
        o.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    {
        let _held = update::try_lock(&h).unwrap();
        let o = restore(&["--yes", "--no-restart"]);
        assert_eq!(
            o.status.code(),
            Some(6),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    // A tampered copy, and a manifest naming a file outside the backup set.
    let copy = backup.dir.join("profiles/operator/config.yaml");
    let good = fs::read(&copy).unwrap();
    let mut bad = good.clone();
    bad[0] ^= 1;
    fs::write(&copy, &bad).unwrap();
    let o = restore(&[&name, "--yes", "--no-restart"]);
    assert_eq!(
        o.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("does not match its manifest"));
    fs::write(&copy, &good).unwrap();
    let manifest = backup.dir.join("MANIFEST.sha256");
    let m = fs::read_to_string(&manifest).unwrap();
    fs::write(&manifest, format!("{m}0000  ../../outside\n")).unwrap();
    let o = restore(&[&name, "--yes", "--no-restart"]);
    assert_eq!(
        o.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    fs::write(&manifest, &m).unwrap();
    assert_eq!(usernames(home), before, "refusals changed nothing");
    assert_eq!(fs::read(&cfg).unwrap(), edited);
    assert!(events(home, "update_restored").is_empty());
    assert_eq!(restart_calls(&s), 0);

    // The restore, with `serve` running.
    let o = restore(&[&name, "--yes"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let r = json_of(&o);
    assert_eq!(r["dry_run"], false);
    assert_eq!(r["verify_ok"], true, "{r:#}");
    assert_eq!(r["restart"]["ran"], true);
    assert_eq!(r["health"]["ok"], true, "{r:#}");
    assert_eq!(restart_calls(&s), 1);
    let restored: Vec<&str> = r["restored"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        restored,
        [
            "plugins/operator/users.db",
            "plugins/operator/events.db",
            "profiles/operator/config.yaml"
        ]
    );
    assert_eq!(usernames(home), ["alice", "bob"]);
    assert_eq!(fs::read(&cfg).unwrap(), cfg_at_backup);
    assert_eq!(
        fs::metadata(&cfg).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // Written back into the live files: still WAL, still 0600.
    for db in [h.users_db(), h.events_db()] {
        let c = rusqlite::Connection::open(&db).unwrap();
        let mode: String = c
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal", "{}", db.display());
        assert_eq!(
            fs::metadata(&db).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    // The running server reads the restored users.db at once.
    assert_eq!(login_status(port, "bob"), 200);
    assert_eq!(login_status(port, "carol"), 401);
    // The log: as at the backup, plus the restore itself, and it verifies.
    let ev = events(home, "update_restored");
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0]["backup"], backup.dir.to_string_lossy().as_ref());
    assert!(
        events(home, "user_deleted").is_empty(),
        "bob's deletion is undone"
    );
    let o = op(home).args(["audit", "verify"]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    drop(serve);

    // Undo: the safety backup holds the state just before the restore.
    let safety = r["safety_backup"].as_str().unwrap().to_string();
    let safety_name = Path::new(&safety)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let o = restore(&[&safety_name, "--yes", "--no-restart"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(json_of(&o)["restart"]["skipped"], "--no-restart");
    assert_eq!(usernames(home), ["alice", "carol"]);
    assert_eq!(fs::read(&cfg).unwrap(), edited);
    assert_eq!(restart_calls(&s), 1);
}
