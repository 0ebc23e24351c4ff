//! Fuzz `hermes-operator serve` with schemathesis (PyPI) against its own
//! `/api/openapi.json`: no request may get a 5xx. Bounded (`--max-time`).
//!
//! schemathesis is installed into a venv under
//! `~/.cache/hermes-operator-test/schemathesis-<version>` on first use (under
//! a lock, like the Hermes venv). If it cannot be installed the test FAILS
//! loudly: it never skips.
//!
//! Not fuzzed: `POST /api/chat`, `GET /api/models` and their OpenAI twins under `/v1` — they drive the real
//! Hermes agent (tests/serve/chat.rs covers them with a real gateway); here
//! Hermes is down, so an authorized call is a deliberate 502 — and
//! `POST /auth/logout`, which would revoke the admin token the run uses
//! (tests/serve/authz.rs and tests/serve/http.rs cover it).
use crate::common;
use crate::common::serve as serve_common;

use common::{add_user, fixture, Gen, TestHome};
use serve_common::{client, configure, token, Server};
use std::fs::{self, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

const SCHEMATHESIS: &str = "schemathesis==4.32.5";

fn loud(msg: impl AsRef<str>) -> ! {
    panic!(
        "\n\n==================== SCHEMATHESIS (serve fuzz) ====================\n{}\n\
         (this test installs {SCHEMATHESIS} from PyPI into a cached venv; it never skips)\n\
         ====================================================================\n",
        msg.as_ref()
    )
}

fn venv_dir() -> PathBuf {
    if let Some(v) = std::env::var_os("HERMES_OPERATOR_SCHEMATHESIS_VENV").filter(|v| !v.is_empty())
    {
        return PathBuf::from(v);
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| loud("HOME is not set"));
    let ver = SCHEMATHESIS.split("==").nth(1).unwrap();
    PathBuf::from(home).join(format!(".cache/hermes-operator-test/schemathesis-{ver}"))
}

/// The `schemathesis` executable, installing it once (flock'ed).
fn schemathesis() -> PathBuf {
    let dir = venv_dir();
    let exe = dir.join("bin/schemathesis");
    let ready = dir.join(".ready");
    if ready.exists() && exe.exists() {
        return exe;
    }
    fs::create_dir_all(dir.parent().unwrap()).unwrap_or_else(|e| loud(format!("mkdir: {e}")));
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.with_extension("lock"))
        .unwrap_or_else(|e| loud(format!("lock file: {e}")));
    unsafe {
        libc::flock(lock.as_raw_fd(), libc::LOCK_EX);
    }
    if !(ready.exists() && exe.exists()) {
        eprintln!(
            "serve fuzz: installing {SCHEMATHESIS} into {} ...",
            dir.display()
        );
        let _ = fs::remove_dir_all(&dir);
        let py = std::env::var("HERMES_OPERATOR_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
        let st = Command::new(&py)
            .args(["-m", "venv"])
            .arg(&dir)
            .stdin(Stdio::null())
            .status()
            .unwrap_or_else(|e| loud(format!("cannot run {py}: {e} (need Python 3.9+ with venv)")));
        if !st.success() {
            loud(format!(
                "`{py} -m venv {}` failed ({st}); Debian needs python3-venv",
                dir.display()
            ));
        }
        let o = Command::new(dir.join("bin/python"))
            .args([
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "-q",
                SCHEMATHESIS,
            ])
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| loud(format!("cannot run pip: {e}")));
        if !o.status.success() {
            loud(format!(
                "pip install {SCHEMATHESIS} failed ({}):\n{}",
                o.status,
                String::from_utf8_lossy(&o.stderr)
            ));
        }
        fs::write(&ready, b"ok\n").unwrap();
    }
    if !exe.exists() {
        loud(format!("{} missing after install", exe.display()));
    }
    exe
}

/// One schemathesis run with `filters`; panics with its output on failure.
fn run_pass(
    exe: &std::path::Path,
    s: &Server,
    tok: &str,
    max_time: &str,
    filters: &[&str],
) -> String {
    let report = tempfile::tempdir().unwrap();
    let o = Command::new(exe)
        .arg("run")
        .arg(s.url("/api/openapi.json"))
        .args(["--checks", "not_a_server_error"])
        .args(["--max-time", max_time])
        // One worker: CPython 3.11's ast.parse is not thread-safe, and
        // hypothesis calls it while describing strategies ("AST constructor
        // recursion depth mismatch" runtime errors with several workers).
        .args(["--workers", "1"])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(filters)
        .args(["--request-timeout", "20", "--seed", "42", "--no-color"])
        .args(["--generation-database", "none"])
        .arg("-H")
        .arg(format!("Authorization: Bearer {tok}"))
        .arg("--report-dir")
        .arg(report.path())
        // schemathesis keeps a `.schemathesis/` cache in its working directory.
        .current_dir(report.path())
        .stdin(Stdio::null())
        .output()
        .expect("run schemathesis");
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "schemathesis found problems ({}):\n{out}\n{}\n--- server log (tail) ---\n{}",
        o.status,
        String::from_utf8_lossy(&o.stderr),
        s.log()
            .lines()
            .rev()
            .take(40)
            .collect::<Vec<_>>()
            .join("\n")
    );
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_errors() {
    let exe = schemathesis();
    let home = TestHome::new();
    let h = home.path();
    configure(h, "");
    let admin = add_user(h, "root", "admin");
    let alice = add_user(h, "alice", "user");
    fixture(
        Gen::H022,
        &[
            "make",
            "--db",
            &home.state_db().to_string_lossy(),
            "--native",
            "20",
            "--operator",
            "40",
            "--users",
            &format!("{admin},{alice}"),
            "--seed",
            "5",
        ],
    );
    let s = Server::start(h);
    let c = client();
    let t0 = Instant::now();
    // Pass 1: everything but account changes, as an admin whose token must
    // survive the whole pass (so the fuzzing gets past authentication).
    let tok = token(&c, &s, "root").await;
    // (Logging in after pass 1 could meet the login throttle the fuzzing tripped.)
    let tok2 = token(&c, &s, "root").await;
    let out1 = run_pass(
        &exe,
        &s,
        &tok,
        "20",
        &[
            "--exclude-path",
            "/api/chat",
            "--exclude-path",
            "/api/models",
            "--exclude-path",
            "/v1/chat/completions",
            "--exclude-path",
            "/v1/models",
            // Logging out would revoke the token the rest of the run uses.
            "--exclude-path",
            "/auth/logout",
            // Account changes can demote the fuzzing admin (pass 2).
            "--exclude-path",
            "/api/users/{username}",
            "--exclude-path",
            "/auth/register",
            "--exclude-path",
            "/api/users/{username}/password",
        ],
    );
    let me = serve_common::send(c.get(s.url("/api/me")).bearer_auth(&tok)).await;
    assert_eq!(
        me.status, 200,
        "the fuzz token was revoked during pass 1: {}",
        me.body
    );
    // Pass 2: account changes (register, role, disable, delete); fuzzed
    // users may well demote or disable the admin on the way: still no 5xx.
    let out2 = run_pass(
        &exe,
        &s,
        &tok2,
        "10",
        &[
            "--include-path",
            "/api/users/{username}",
            "--include-path",
            "/auth/register",
            "--include-path",
            "/api/users/{username}/password",
        ],
    );
    let secs = t0.elapsed().as_secs_f64();
    eprintln!("schemathesis ran {secs:.1}s:\n{out1}\n{out2}");
    // It really exercised the API: many authenticated requests, no 5xx in the access log.
    let log = s.log();
    let authed = log
        .lines()
        .filter(|l| l.contains(" root \"") && !l.contains("\" 401 "))
        .count();
    if authed <= 300 {
        let mut by: std::collections::BTreeMap<String, usize> = Default::default();
        for l in log.lines() {
            let k: String = l.split('"').take(3).collect::<Vec<_>>().join("\"");
            let k = k.split_whitespace().skip(2).collect::<Vec<_>>().join(" ");
            *by.entry(k).or_default() += 1;
        }
        panic!("only {authed} authenticated requests:\n{out1}\n{by:#?}");
    }
    let server_errors: Vec<&str> = log
        .lines()
        .filter(|l| {
            l.split('"')
                .nth(2)
                .is_some_and(|rest| rest.trim_start().starts_with('5'))
        })
        .collect();
    assert!(
        server_errors.is_empty(),
        "5xx answers:\n{}",
        server_errors.join("\n")
    );
}
