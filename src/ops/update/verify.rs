//! After the update: the state.db schema probe and the operator's files.

use super::*;

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
        Some(py) => match scratch_dir() {
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
        let intact = if f.kind == FileKind::Sqlite {
            live.exists() && quick_check(&live)
        } else {
            sha256_file(&live).is_ok_and(|(s, _)| s == f.sha256)
        };
        if intact {
            continue;
        }
        let r = if f.kind == FileKind::Sqlite {
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
