//! Backups of the operator's data, their manifests, pruning.

use super::*;

#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct BackupFile {
    /// Relative to HERMES_HOME (and to the backup directory).
    pub path: String,
    pub sha256: String,
    pub bytes: u64,
    pub kind: FileKind,
}

/// How a backed-up file was copied, and so how it is checked and restored.
#[derive(Debug, Clone, Copy, Serialize, serde::Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    /// An online-backup copy of a SQLite database (compared by content).
    Sqlite,
    /// A plain file (compared byte for byte).
    File,
}

impl FileKind {
    pub fn of(sqlite: bool) -> FileKind {
        if sqlite {
            FileKind::Sqlite
        } else {
            FileKind::File
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            FileKind::Sqlite => "sqlite",
            FileKind::File => "file",
        }
    }
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
            kind: FileKind::of(sqlite),
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
    use std::os::unix::fs::MetadataExt;
    let Ok(rd) = fs::read_dir(home.backups_dir()) else {
        return Vec::new();
    };
    // Only the operator's own: backups/ is Hermes' directory, shared with
    // the operator under two accounts (docs/design.md §12), so the agent
    // could plant an operator_<ts>/ there for `update restore` to put back.
    // A backup is a real directory (no symlink) of the account that owns
    // the operator's profile, writable by nobody else.
    // SAFETY: geteuid cannot fail.
    let own = fs::metadata(home.profile_dir())
        .map(|m| m.uid())
        .unwrap_or_else(|_| unsafe { libc::geteuid() });
    let mut v: Vec<PathBuf> = rd
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            fs::symlink_metadata(p)
                .is_ok_and(|m| m.is_dir() && m.uid() == own && m.mode() & 0o022 == 0)
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
