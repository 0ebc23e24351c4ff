//! Where things live under HERMES_HOME (docs/design.md §2), and the few file-system
//! rules every store follows: directories 0700, secrets 0600, never create
//! Hermes' own files.

use crate::error::{Error, Result};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// How HERMES_HOME was chosen, so error messages can say so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HomeSource {
    Flag,
    Env,
    Default,
}

impl HomeSource {
    fn describe(self) -> &'static str {
        match self {
            HomeSource::Flag => "--hermes-home",
            HomeSource::Env => "$HERMES_HOME",
            HomeSource::Default => "the default ~/.hermes",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Home {
    pub root: PathBuf,
    pub source: HomeSource,
}

impl Home {
    /// `--hermes-home DIR`, else `$HERMES_HOME`, else `~/.hermes`.
    pub fn resolve(flag: Option<&Path>) -> Result<Home> {
        if let Some(p) = flag {
            return Ok(Home {
                root: p.to_path_buf(),
                source: HomeSource::Flag,
            });
        }
        if let Some(p) = std::env::var_os("HERMES_HOME").filter(|v| !v.is_empty()) {
            return Ok(Home {
                root: PathBuf::from(p),
                source: HomeSource::Env,
            });
        }
        let home = std::env::var_os("HOME")
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                Error::usage(
                    "cannot find HERMES_HOME: neither --hermes-home, $HERMES_HOME nor $HOME is set",
                )
            })?;
        Ok(Home {
            root: PathBuf::from(home).join(".hermes"),
            source: HomeSource::Default,
        })
    }

    pub fn at(root: impl Into<PathBuf>) -> Home {
        Home {
            root: root.into(),
            source: HomeSource::Flag,
        }
    }

    /// Fail clearly when HERMES_HOME itself is missing or not a directory.
    pub fn require(&self) -> Result<()> {
        match fs::metadata(&self.root) {
            Ok(m) if m.is_dir() => Ok(()),
            Ok(_) => Err(Error::usage(format!(
                "HERMES_HOME {} (from {}) is not a directory",
                self.root.display(),
                self.source.describe()
            ))),
            Err(_) => Err(Error::not_found(format!(
                "HERMES_HOME {} (from {}) does not exist",
                self.root.display(),
                self.source.describe()
            ))
            .hint("point --hermes-home or $HERMES_HOME at Hermes' home directory, or create it (mkdir -p) for a fresh install")),
        }
    }

    pub fn state_db(&self) -> PathBuf {
        self.root.join("state.db")
    }
    pub fn hermes_env(&self) -> PathBuf {
        self.root.join(".env")
    }
    pub fn hermes_config(&self) -> PathBuf {
        self.root.join("config.yaml")
    }
    pub fn profile_dir(&self) -> PathBuf {
        self.root.join("profiles").join("operator")
    }
    pub fn config_yaml(&self) -> PathBuf {
        self.profile_dir().join("config.yaml")
    }
    pub fn operator_env(&self) -> PathBuf {
        self.profile_dir().join(".env")
    }
    pub fn signing_key(&self) -> PathBuf {
        self.profile_dir().join("audit_signing.key")
    }
    pub fn signing_pub(&self) -> PathBuf {
        self.profile_dir().join("audit_signing.pub")
    }
    /// Local copy of every checkpoint `audit checkpoint` printed.
    pub fn checkpoints_file(&self) -> PathBuf {
        self.profile_dir().join("checkpoints.log")
    }
    pub fn logs_dir(&self) -> PathBuf {
        self.profile_dir().join("logs")
    }
    pub fn plugin_dir(&self) -> PathBuf {
        self.root.join("plugins").join("operator")
    }
    pub fn users_db(&self) -> PathBuf {
        self.plugin_dir().join("users.db")
    }
    pub fn events_db(&self) -> PathBuf {
        self.plugin_dir().join("events.db")
    }
    pub fn scripts_dir(&self) -> PathBuf {
        self.root.join("scripts").join("operator")
    }
    pub fn backups_dir(&self) -> PathBuf {
        self.root.join("backups")
    }
    /// Where `serve` answers the hook (`ops/hooks/socket.rs`): a directory
    /// of the operator's that Hermes' account may enter but not change.
    pub fn hook_socket_dir(&self) -> PathBuf {
        self.root.join("plugins").join("operator-hook")
    }
    pub fn hook_socket(&self) -> PathBuf {
        self.hook_socket_dir().join("hook.sock")
    }

    /// The operator's directories must be its own: with a dedicated account
    /// (docs/design.md §12) Hermes' account can rename `plugins/operator`
    /// away (it owns `plugins/`) and put a directory of its own, with a
    /// users.db of its making, in its place. A directory that is a symlink
    /// or belongs to another account is refused before any file in it is
    /// opened. Root may open anyone's (an admin's `sudo`).
    pub fn check_operator_dirs(&self) -> Result<()> {
        use std::os::unix::fs::MetadataExt;
        // SAFETY: geteuid cannot fail.
        let me = unsafe { libc::geteuid() };
        for d in [self.profile_dir(), self.plugin_dir()] {
            let m = match fs::symlink_metadata(&d) {
                Ok(m) => m,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io(&d, "reading", e)),
            };
            let problem = if m.file_type().is_symlink() {
                Some("is a symbolic link".to_string())
            } else if !m.is_dir() {
                Some("is not a directory".to_string())
            } else if me != 0 && m.uid() != me {
                Some(format!(
                    "belongs to uid {}, not to this account (uid {me})",
                    m.uid()
                ))
            } else {
                None
            };
            if let Some(p) = problem {
                return Err(Error::permission(format!(
                    "refusing the operator directory {}: it {p}",
                    d.display()
                ))
                .hint("someone replaced it; restore it from backups/operator_* and run `hermes-operator doctor`"));
            }
        }
        Ok(())
    }

    /// Create the operator's own directories (0700) under an existing HERMES_HOME.
    pub fn ensure_operator_dirs(&self) -> Result<()> {
        self.require()?;
        self.check_operator_dirs()?;
        for d in [self.profile_dir(), self.plugin_dir()] {
            ensure_private_dir(&d)?;
        }
        Ok(())
    }
}

/// mkdir -p with mode 0700 on every directory this creates, whatever the
/// umask (each is chmod-ed after creation), and 0700 enforced on the leaf
/// (it holds secrets or databases).
pub fn ensure_private_dir(dir: &Path) -> Result<()> {
    let missing: Vec<&Path> = dir.ancestors().take_while(|p| !p.exists()).collect();
    let mut b = fs::DirBuilder::new();
    b.recursive(true);
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir)
        .map_err(|e| Error::io(dir, "creating directory", e))?;
    for d in missing.iter().rev() {
        fs::set_permissions(d, fs::Permissions::from_mode(0o700))
            .map_err(|e| Error::io(d, "setting mode 0700", e))?;
    }
    let mode = fs::metadata(dir)
        .map_err(|e| Error::io(dir, "reading directory", e))?
        .permissions()
        .mode();
    // Others may keep the search bit alone (0711): Hermes 0.22 looks for a
    // plugin.yaml in every directory under plugins/, and fails the whole
    // chat turn when it may not even look (docs/hermes.md, "Corrections");
    // with x alone it learns only that there is none. Nothing can be listed,
    // and every file inside is 0600.
    if mode & 0o066 != 0 {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .map_err(|e| Error::io(dir, "setting mode 0700", e))?;
    }
    Ok(())
}

/// Make an existing file 0600 (databases and their -wal/-shm companions).
pub fn restrict_file(path: &Path) -> Result<()> {
    if let Ok(m) = fs::metadata(path) {
        if m.permissions().mode() & 0o077 != 0 {
            fs::set_permissions(path, fs::Permissions::from_mode(0o600))
                .map_err(|e| Error::io(path, "setting mode 0600", e))?;
        }
    }
    Ok(())
}

/// Write a secret file atomically with mode 0600 from the start.
pub fn write_private_file(path: &Path, contents: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| Error::internal(format!("{} has no parent", path.display())))?;
    ensure_private_dir(dir)?;
    write_atomic(path, contents, Some(0o600))
}

/// [`write_private_file`] without the flush to disk, for files that are
/// rewritten whenever they matter (the hook's session markers).
pub fn write_private_file_unsynced(path: &Path, contents: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| Error::internal(format!("{} has no parent", path.display())))?;
    ensure_private_dir(dir)?;
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        std::process::id()
    ));
    let r = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| f.write_all(contents));
    if let Err(e) = r.and_then(|_| fs::rename(&tmp, path)) {
        let _ = fs::remove_file(&tmp);
        return Err(Error::io(path, "writing file", e));
    }
    Ok(())
}

/// Write `path` atomically: a temp file beside it (created 0600), fsync,
/// rename. `mode`: the final mode, or `None` to keep an existing file's mode
/// (0600 when new). The owner of an existing file (else of the directory) is
/// kept, so a run under sudo does not leave root-owned files behind.
pub fn write_atomic(path: &Path, contents: &[u8], mode: Option<u32>) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let dir = path
        .parent()
        .ok_or_else(|| Error::internal(format!("{} has no parent", path.display())))?;
    let old = fs::metadata(path).ok();
    let mode = mode.unwrap_or_else(|| {
        old.as_ref()
            .map_or(0o600, |m| m.permissions().mode() & 0o7777)
    });
    let owner = old
        .or_else(|| fs::metadata(dir).ok())
        .map(|m| (m.uid(), m.gid()));
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        std::process::id()
    ));
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| Error::io(&tmp, "creating file", e))?;
    if let Some((uid, gid)) = owner {
        let _ = std::os::unix::fs::fchown(&f, Some(uid), Some(gid));
    }
    let r = f
        .write_all(contents)
        .and_then(|_| f.set_permissions(fs::Permissions::from_mode(mode)))
        .and_then(|_| f.sync_all());
    if let Err(e) = r {
        let _ = fs::remove_file(&tmp);
        return Err(Error::io(&tmp, "writing file", e));
    }
    fs::rename(&tmp, path).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        Error::io(path, "renaming into place", e)
    })
}

/// Who is acting, as recorded in audit events: the invoking OS user (the
/// sudo caller when run under sudo).
pub fn os_user() -> String {
    if let Ok(s) = std::env::var("SUDO_USER") {
        if !s.is_empty() {
            return s;
        }
    }
    // SAFETY: getpwuid returns a pointer into static storage or NULL; we copy
    // the name out immediately and this process is single-threaded here.
    unsafe {
        let pw = libc::getpwuid(libc::geteuid());
        if !pw.is_null() && !(*pw).pw_name.is_null() {
            if let Ok(s) = std::ffi::CStr::from_ptr((*pw).pw_name).to_str() {
                return s.to_string();
            }
        }
        format!("uid{}", libc::geteuid())
    }
}

/// Write an executable script (0700), atomically.
pub fn write_script(path: &Path, text: &str) -> Result<()> {
    write_private_file(path, text.as_bytes())?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o700))
        .map_err(|e| Error::io(path, "setting mode 0700", e))
}
