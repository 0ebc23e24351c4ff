//! Reused SQLite handles. Opening a connection is not free: the file, its
//! WAL and shared memory, the schema parsed on first use (Hermes 0.22's
//! state.db has dozens of tables, indexes and triggers), and a directory
//! fsync on the first commit of every new connection to a WAL database.
//! A chat turn opened four of them; a pool hands back the last ones.
//!
//! A handle is reused only while it is younger than [`MAX_AGE`], never after
//! it saw an error through [`Pooled::run`], and only while the path still
//! names the same file it was opened on (a database moved aside or
//! replaced on disk is never written through a stale handle).

use crate::error::Result;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Idle handles kept per pool.
const IDLE: usize = 16;
/// Handles are reopened after this long, so a schema change (a Hermes
/// update) is re-probed.
pub const MAX_AGE: Duration = Duration::from_secs(30);

struct Idle<T> {
    item: T,
    born: Instant,
    file: (u64, u64),
}

/// Idle handles of one kind (one database, one access mode).
pub struct Pool<T> {
    idle: Mutex<Vec<Idle<T>>>,
}

impl<T> Default for Pool<T> {
    fn default() -> Self {
        Pool {
            idle: Mutex::new(Vec::new()),
        }
    }
}

/// The file `path` names now: (device, inode).
fn file_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

impl<T> Pool<T> {
    /// An idle handle on the file at `path`, or a new one from `open`.
    pub fn get(
        self: &Arc<Self>,
        path: &Path,
        open: impl FnOnce() -> Result<T>,
    ) -> Result<Pooled<T>> {
        let now = file_id(path);
        let reused = {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            // Stale ones (too old, or on a file no longer at the path) are dropped.
            idle.retain(|i| i.born.elapsed() <= MAX_AGE && Some(i.file) == now);
            idle.pop()
        };
        let item = match reused {
            Some(i) => i,
            None => {
                let item = open()?;
                // Whatever the path names once it is open (open may create it).
                match file_id(path) {
                    Some(file) => Idle {
                        item,
                        born: Instant::now(),
                        file,
                    },
                    None => return Ok(Pooled::unpooled(item)),
                }
            }
        };
        Ok(Pooled {
            pool: Some(self.clone()),
            item: Some(item),
            ok: true,
        })
    }
}

impl<T> Pool<T> {
    /// An idle handle that is not tied to a file (a connection to the
    /// fleet's database) and that `usable` still accepts, or a new one.
    pub fn get_unkeyed(
        self: &Arc<Self>,
        usable: impl Fn(&T) -> bool,
        open: impl FnOnce() -> Result<T>,
    ) -> Result<Pooled<T>> {
        let reused = {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            idle.retain(|i| i.born.elapsed() <= MAX_AGE && usable(&i.item));
            idle.pop()
        };
        let item = match reused {
            Some(i) => i,
            None => Idle {
                item: open()?,
                born: Instant::now(),
                file: (0, 0),
            },
        };
        Ok(Pooled {
            pool: Some(self.clone()),
            item: Some(item),
            ok: true,
        })
    }
}

/// A handle on loan; it goes back to its pool when dropped.
pub struct Pooled<T> {
    pool: Option<Arc<Pool<T>>>,
    item: Option<Idle<T>>,
    ok: bool,
}

impl<T> Pooled<T> {
    /// A handle that belongs to no pool (it is closed when dropped).
    pub fn unpooled(item: T) -> Self {
        Pooled {
            pool: None,
            item: Some(Idle {
                item,
                born: Instant::now(),
                file: (0, 0),
            }),
            ok: false,
        }
    }

    /// Use the handle; one that fails is not put back.
    pub fn run<R>(&mut self, f: impl FnOnce(&T) -> Result<R>) -> Result<R> {
        let r = f(self);
        if r.is_err() {
            self.ok = false;
        }
        r
    }
}

impl<T> std::ops::Deref for Pooled<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.item.as_ref().expect("present until drop").item
    }
}

impl<T> Drop for Pooled<T> {
    fn drop(&mut self) {
        let (Some(pool), Some(i)) = (self.pool.take(), self.item.take()) else {
            return;
        };
        // Whether the path still names its file is checked when it is
        // next handed out.
        if !self.ok || i.born.elapsed() > MAX_AGE {
            return;
        }
        let mut v = pool.idle.lock().unwrap_or_else(|p| p.into_inner());
        if v.len() < IDLE {
            v.push(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_are_reused_only_on_the_same_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.db");
        std::fs::write(&path, b"one").unwrap();
        let pool: Arc<Pool<u32>> = Arc::default();
        let mut opened = 0;
        let mut open = || -> Result<u32> {
            opened += 1;
            Ok(opened)
        };
        let a = pool.get(&path, &mut open).unwrap();
        assert_eq!(*a, 1);
        drop(a);
        assert_eq!(*pool.get(&path, &mut open).unwrap(), 1, "reused");
        // Two at once: the second is a new handle.
        let a = pool.get(&path, &mut open).unwrap();
        let b = pool.get(&path, &mut open).unwrap();
        assert_eq!((*a, *b), (1, 2));
        drop((a, b));
        // The file is replaced on disk: no handle on the old one is used.
        std::fs::rename(&path, dir.path().join("aside.db")).unwrap();
        std::fs::write(&path, b"two").unwrap();
        assert_eq!(*pool.get(&path, &mut open).unwrap(), 3);
        // A handle that failed is not put back.
        let mut c = pool.get(&path, &mut open).unwrap();
        assert_eq!(*c, 3);
        let _ = c.run(|_| -> Result<()> { Err(crate::Error::internal("boom")) });
        drop(c);
        assert_eq!(*pool.get(&path, &mut open).unwrap(), 4);
    }
}
