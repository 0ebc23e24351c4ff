//! The update lock (`flock`): one update or restore at a time.

use super::*;

/// Held for the whole run; released when dropped (or when the process dies).
pub struct UpdateLock {
    pub(super) _file: File,
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
