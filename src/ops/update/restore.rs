//! `update restore`: put the operator's data back from a backup that
//! `update` made (`backups/operator_<ts>/`).
//!
//! Safe while `serve` runs: databases are written back through SQLite's
//! online backup API into the live file (other connections see the restored
//! content at their next transaction; nothing is swapped under them), plain
//! files atomically with mode 0600. Before anything changes the backup is
//! verified against its manifest — whose paths must be exactly the files a
//! backup holds, so a tampered manifest cannot write elsewhere — and the
//! current state is itself backed up, so a restore can be undone. The
//! restore is then recorded as `update_restored` at the head of the
//! restored log: anyone holding a later checkpoint will see that the log
//! was set back (`audit verify --checkpoints` reports it truncated), as they
//! should.

use crate::app::App;
use crate::error::{Error, Kind, Result};
use crate::home::Home;
use crate::ops::update::{self, FileKind, Health, Restart};
use crate::store::events::EventKind;
use serde::Serialize;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One file of the backup and what a restore does with it.
#[derive(Debug, Clone, Serialize)]
pub struct FilePlan {
    /// Relative to HERMES_HOME and to the backup directory.
    pub path: String,
    pub kind: FileKind,
    pub action: RestoreAction,
}

/// What a restore does with one file.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RestoreAction {
    /// The live file differs or is missing.
    Restore,
    Unchanged,
}

impl RestoreAction {
    pub fn as_str(self) -> &'static str {
        match self {
            RestoreAction::Restore => "restore",
            RestoreAction::Unchanged => "unchanged",
        }
    }
}

/// What a restore did, or (dry run) would do (`--json` contract).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub backup: PathBuf,
    /// When the backup was made, from its `backup.json`.
    pub backup_created_at: Option<String>,
    pub dry_run: bool,
    pub files: Vec<FilePlan>,
    /// The backup of the state just before the restore (to undo it).
    pub safety_backup: Option<PathBuf>,
    pub restored: Vec<String>,
    pub restart: Option<Restart>,
    pub health: Option<Health>,
    /// `audit verify` of the restored log (with the local checkpoints).
    pub verify_ok: Option<bool>,
    /// The `update_restored` event.
    pub event: Option<String>,
    /// Why the restore ends non-zero (`None`: exit 0); `exit_code` in the JSON.
    #[serde(rename = "exit_code", serialize_with = "update::serialize_exit_code")]
    pub failure: Option<Kind>,
}

/// A backup directory by name (`operator_<ts>`) or path; the newest one
/// when `name` is `None`. Only our backups under `backups/`.
pub fn resolve(home: &Home, name: Option<&str>) -> Result<PathBuf> {
    let all = update::list_backups(home);
    let Some(name) = name else {
        return all.last().cloned().ok_or_else(|| {
            Error::not_found(format!("no backups in {}", home.backups_dir().display()))
                .hint("`hermes-operator update` makes one before every update")
        });
    };
    let want = Path::new(name)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    all.into_iter()
        .find(|d| d.file_name().is_some_and(|n| n.to_string_lossy() == want))
        .ok_or_else(|| {
            Error::not_found(format!(
                "no backup named {:?} in {}",
                crate::output::clip(&crate::output::sanitize(name), 80),
                home.backups_dir().display()
            ))
            .hint(
                "list them with `ls` in that directory; names look like operator_20260101T030000Z",
            )
        })
}

/// The backup's files, checked: every manifest path is one a backup may
/// hold, and every checksum matches. Integrity error otherwise.
fn checked_files(home: &Home, dir: &Path) -> Result<Vec<(String, bool)>> {
    let allowed: Vec<(String, bool)> = update::backup_sources(home)
        .into_iter()
        .map(|(p, sqlite)| (update::rel(home, &p), sqlite))
        .collect();
    let manifest = update::read_manifest(dir)?;
    let mut files = Vec::new();
    for (_, path) in &manifest {
        match allowed.iter().find(|(a, _)| a == path) {
            Some(f) => files.push(f.clone()),
            None => {
                return Err(Error::new(
                    Kind::Integrity,
                    format!(
                        "{} lists {:?}, which is not a file a backup holds; refusing to restore from it",
                        dir.join(update::MANIFEST).display(),
                        crate::output::clip(&crate::output::sanitize(path), 120)
                    ),
                ))
            }
        }
    }
    let bad = update::verify_backup(dir)?;
    if !bad.is_empty() {
        return Err(Error::new(
            Kind::Integrity,
            format!(
                "the backup {} does not match its manifest: {}",
                dir.display(),
                bad.join(", ")
            ),
        )
        .hint("nothing was changed; pick another backup"));
    }
    if files.is_empty() {
        return Err(Error::new(
            Kind::Integrity,
            format!("the backup {} holds no files", dir.display()),
        ));
    }
    Ok(files)
}

/// Whether a plain file already equals the backup's copy. Databases are
/// always written back: comparing their content would read them whole, and
/// writing back an equal database changes nothing.
fn unchanged(home: &Home, dir: &Path, path: &str, sqlite: bool) -> bool {
    !sqlite
        && matches!(
            (
                update::sha256_file(&home.root.join(path)),
                update::sha256_file(&dir.join(path)),
            ),
            (Ok((a, _)), Ok((b, _))) if a == b
        )
}

/// Check the backup and say what a restore would change (nothing changes).
pub fn plan(home: &Home, dir: &Path) -> Result<Report> {
    let files = checked_files(home, dir)?
        .into_iter()
        .map(|(path, sqlite)| FilePlan {
            action: if unchanged(home, dir, &path, sqlite) {
                RestoreAction::Unchanged
            } else {
                RestoreAction::Restore
            },
            kind: FileKind::of(sqlite),
            path,
        })
        .collect();
    let created = std::fs::read_to_string(dir.join(update::BACKUP_META))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["created_at"].as_str().map(str::to_string));
    Ok(Report {
        backup: dir.to_path_buf(),
        backup_created_at: created,
        dry_run: true,
        files,
        safety_backup: None,
        restored: vec![],
        restart: None,
        health: None,
        verify_ok: None,
        event: None,
        failure: None,
    })
}

/// Restore from `dir`: lock, check the backup ([`plan`], which `confirm`
/// sees before anything changes; an error from it stops the restore), back
/// up the current state, write the files back, record `update_restored`,
/// verify the log, and (unless `no_restart`) restart the service and check
/// its health.
pub fn restore(
    app: &App,
    dir: &Path,
    no_restart: bool,
    confirm: &dyn Fn(&Report) -> Result<()>,
    progress: &dyn Fn(&str),
) -> Result<Report> {
    let home = &app.home;
    let _lock = update::try_lock(home)?;
    let mut report = plan(home, dir)?;
    confirm(&report)?;
    report.dry_run = false;
    progress("backing up the current state first");
    let safety = update::make_backup(
        home,
        json!({"reason": "before update restore", "restoring": dir.to_string_lossy()}),
    )?;
    report.safety_backup = Some(safety.dir.clone());
    let mut log = update::open_log(home)?;
    {
        use std::io::Write;
        let _ = writeln!(
            log,
            "=== {} update restore from {} (current state saved in {}) ===",
            crate::store::now_rfc3339(),
            dir.display(),
            safety.dir.display()
        );
    }
    for f in report
        .files
        .iter()
        .filter(|f| f.action == RestoreAction::Restore)
    {
        progress(&format!("restoring {}", f.path));
        let live = home.root.join(&f.path);
        let saved = dir.join(&f.path);
        if f.kind == FileKind::Sqlite {
            restore_db(&saved, &live)?;
        } else {
            update::copy_back(&saved, &live)?;
        }
        report.restored.push(f.path.clone());
    }
    let ev = app.record(app.event(
        EventKind::UpdateRestored,
        json!({
            "backup": dir.to_string_lossy(),
            "backup_created_at": report.backup_created_at,
            "safety_backup": safety.dir.to_string_lossy(),
            "restored": report.restored,
        }),
    ))?;
    report.event = Some(ev.id);
    progress("verifying the restored event log");
    report.verify_ok = Some(crate::ops::audit::integrity::verify_home(app, &[])?.ok);
    let mut healthy = true;
    let cmd = &app.cfg.config.update.restart_command;
    if no_restart {
        report.restart = Some(Restart::skipped(cmd, "--no-restart"));
    } else {
        progress(&format!("restarting: {cmd}"));
        let r = update::run_restart(home, cmd, &log);
        healthy &= r.ok;
        report.restart = Some(r);
        let url = app.cfg.config.health_url();
        progress(&format!("health check: GET {url}"));
        let h = update::health_check(&url, Duration::from_secs(30));
        healthy &= h.ok;
        report.health = Some(h);
    }
    report.failure = if report.verify_ok == Some(false) {
        Some(Kind::Integrity)
    } else if !healthy {
        Some(Kind::Unhealthy)
    } else {
        None
    };
    Ok(report)
}

/// Copy a backed-up database into the live one with the online backup API
/// (the live file keeps its inode, mode and WAL; its readers and writers
/// see the restored content). A missing or damaged live file, which nobody
/// can be using, is replaced by a plain copy instead.
fn restore_db(saved: &Path, live: &Path) -> Result<()> {
    use rusqlite::{Connection, OpenFlags};
    if !(live.is_file() && update::quick_check(live)) {
        return update::replace_db_file(saved, live);
    }
    let from = Connection::open_with_flags(
        saved,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| Error::sqlite(saved, "opening the backup", e))?;
    let mut to = Connection::open_with_flags(
        live,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| Error::sqlite(live, "opening for restore", e))?;
    to.busy_timeout(Duration::from_secs(10))
        .map_err(|e| Error::sqlite(live, "setting busy timeout", e))?;
    let b = rusqlite::backup::Backup::new(&from, &mut to)
        .map_err(|e| Error::sqlite(live, "starting the restore", e))?;
    b.run_to_completion(256, Duration::from_millis(10), None)
        .map_err(|e| Error::sqlite(live, "restoring with the online backup API", e))
}
