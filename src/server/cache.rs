//! A response cache for hot read routes (the session list), correct by
//! construction: an entry is used only while neither state.db nor users.db
//! has changed since it was computed. "Changed" is SQLite's own
//! `PRAGMA data_version` on one dedicated read-only watcher connection per
//! database — it moves whenever any other connection (Hermes, the CLI, this
//! server) commits. The version is read *before* the response is computed,
//! so an entry may be fresher than its version (harmless: one extra
//! recompute), never staler.

use crate::error::{Error, Result};
use crate::home::Home;
use rusqlite::{Connection, OpenFlags};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Entries kept at most.
const MAX_ENTRIES: usize = 512;
/// Bytes of cached bodies (and their keys) kept at most. The key space is
/// the client's to choose (every `offset`, `limit`, filter is a new key), so
/// the bound must be on bytes, not entries: 505 distinct offsets of a large
/// list once took serve from 11 to 102 MB. Least recently used entries go
/// first; a body larger than a quarter of this is not cached at all.
pub const MAX_BYTES: usize = 8 * 1024 * 1024;
/// Watchers are reopened after this long, like the read pools, so a database
/// replaced on disk (a restore) is noticed.
const WATCH_MAX_AGE: Duration = Duration::from_secs(30);

/// (watcher generation, state.db data_version, users.db data_version or
/// the fleet's change counter of the accounts)
type Version = (u64, i64, i64);

/// The fleet's accounts as this replica last heard of them: a generation
/// that moves whenever any replica commits a write to the accounts' store
/// (`NOTIFY`, store/pg/users/mod.rs), valid only while the listener is
/// connected — a cache must not trust a counter that may have missed a
/// change. Notifications arrive about a millisecond after the commit: the
/// only staleness a cached session list can have (its usernames).
#[derive(Default)]
pub struct FleetChanges {
    generation: std::sync::atomic::AtomicI64,
    live: std::sync::atomic::AtomicBool,
}

impl FleetChanges {
    /// The generation, or `None` (do not cache) while not listening.
    pub fn current(&self) -> Option<i64> {
        use std::sync::atomic::Ordering::Acquire;
        self.live
            .load(Acquire)
            .then(|| self.generation.load(Acquire))
    }

    /// What a listener on the fleet's database heard. Whatever changed
    /// before listening began counts as changed.
    pub fn heard(&self, h: &crate::store::pg::Heard) {
        use crate::store::pg::Heard;
        use std::sync::atomic::Ordering::{AcqRel, Release};
        match h {
            Heard::Listening => {
                self.generation.fetch_add(1, AcqRel);
                self.live.store(true, Release);
            }
            Heard::Note { channel, .. } if *channel == crate::store::pg::USERS_CHANGED => {
                self.generation.fetch_add(1, AcqRel);
            }
            Heard::Note { .. } | Heard::Quiet => {}
        }
    }

    /// The listener lost its connection: changes may go unheard.
    pub fn lost(&self) {
        self.live.store(false, std::sync::atomic::Ordering::Release);
    }
}

/// Reads the fleet's change counter of the accounts (`None`: unreadable,
/// do not cache).
pub type FleetCounter = dyn Fn() -> Option<i64> + Sync;

struct Watchers {
    state: Connection,
    /// `None` in a fleet: the accounts' change counter comes from PostgreSQL.
    users: Option<Connection>,
    born: Instant,
    generation: u64,
}

pub struct ReadCache {
    watch: Mutex<Option<Watchers>>,
    generations: std::sync::atomic::AtomicU64,
    entries: Mutex<Entries>,
    max_bytes: usize,
    /// One compute at a time per key: requests that find the entry stale
    /// while another request recomputes it wait for that result instead of
    /// all recomputing the same body (a burst after every Hermes commit).
    computing: Mutex<HashMap<String, std::sync::Arc<Mutex<()>>>>,
}

impl Default for ReadCache {
    fn default() -> Self {
        Self::with_max_bytes(MAX_BYTES)
    }
}

/// The cached bodies, their total size and a use counter for LRU eviction.
#[derive(Default)]
struct Entries {
    map: HashMap<String, Entry>,
    bytes: usize,
    tick: u64,
}

struct Entry {
    version: Version,
    body: bytes::Bytes,
    last_used: u64,
}

fn cost(key: &str, body: &bytes::Bytes) -> usize {
    key.len() + body.len()
}

impl Entries {
    fn get(&mut self, key: &str, version: Version) -> Option<bytes::Bytes> {
        self.tick += 1;
        let tick = self.tick;
        let e = self.map.get_mut(key).filter(|e| e.version == version)?;
        e.last_used = tick;
        Some(e.body.clone())
    }

    /// Keep `body` under `key`, evicting least recently used entries until
    /// the total fits `max_bytes` (and the count [`MAX_ENTRIES`]).
    fn insert(&mut self, key: String, version: Version, body: bytes::Bytes, max_bytes: usize) {
        if let Some(old) = self.map.remove(&key) {
            self.bytes -= cost(&key, &old.body);
        }
        let size = cost(&key, &body);
        if size > max_bytes / 4 {
            return;
        }
        while !self.map.is_empty()
            && (self.bytes + size > max_bytes || self.map.len() >= MAX_ENTRIES)
        {
            // A linear scan: at most MAX_ENTRIES entries, and only when full.
            let Some(lru) = self
                .map
                .iter()
                .min_by_key(|(_, e)| e.last_used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some(e) = self.map.remove(&lru) {
                self.bytes -= cost(&lru, &e.body);
            }
        }
        self.tick += 1;
        self.bytes += size;
        self.map.insert(
            key,
            Entry {
                version,
                body,
                last_used: self.tick,
            },
        );
    }
}

fn open_watcher(path: &std::path::Path) -> Result<Connection> {
    Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| Error::sqlite(path, "opening a change watcher", e))
}

fn data_version(c: &Connection) -> Option<i64> {
    c.query_row("PRAGMA data_version", [], |r| r.get(0)).ok()
}

impl ReadCache {
    /// A cache that keeps at most `max_bytes` of bodies and keys.
    pub fn with_max_bytes(max_bytes: usize) -> Self {
        ReadCache {
            watch: Mutex::default(),
            generations: Default::default(),
            entries: Mutex::default(),
            max_bytes,
            computing: Mutex::default(),
        }
    }

    /// Bytes held now (bodies and keys), and the number of entries.
    pub fn held(&self) -> (usize, usize) {
        let m = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        (m.bytes, m.map.len())
    }

    /// The current version of both databases; `None` (do not cache) when a
    /// watcher cannot be opened or read. `fleet_users`: the accounts live in
    /// the fleet's database and this reads their change counter (it moves
    /// with every write from any replica), so users.db is not watched.
    fn version(&self, home: &Home, fleet_users: Option<&FleetCounter>) -> Option<Version> {
        let mut w = self.watch.lock().unwrap_or_else(|p| p.into_inner());
        let stale = w.as_ref().is_none_or(|w| {
            w.born.elapsed() > WATCH_MAX_AGE || w.users.is_some() != fleet_users.is_none()
        });
        if stale {
            let generation = self
                .generations
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                + 1;
            let users = match fleet_users {
                Some(_) => Ok(None),
                None => open_watcher(&home.users_db()).map(Some),
            };
            *w = match (open_watcher(&home.state_db()), users) {
                (Ok(state), Ok(users)) => Some(Watchers {
                    state,
                    users,
                    born: Instant::now(),
                    generation,
                }),
                _ => None,
            };
        }
        let w = w.as_ref()?;
        let users = match (&w.users, fleet_users) {
            (Some(c), _) => data_version(c)?,
            (None, Some(counter)) => counter()?,
            (None, None) => return None,
        };
        Some((w.generation, data_version(&w.state)?, users))
    }

    /// The cached body for `key` if both databases are unchanged since it
    /// was computed; otherwise `compute` it (and keep it).
    pub fn get_or_compute(
        &self,
        home: &Home,
        key: String,
        compute: impl FnOnce() -> Result<Vec<u8>>,
    ) -> Result<bytes::Bytes> {
        self.get_or_compute_at(home, None, key, compute)
    }

    /// [`Self::get_or_compute`] with the accounts in the fleet's database:
    /// `fleet_users` is their change counter ([`Self::version`]).
    pub fn get_or_compute_at(
        &self,
        home: &Home,
        fleet_users: Option<&FleetCounter>,
        key: String,
        compute: impl FnOnce() -> Result<Vec<u8>>,
    ) -> Result<bytes::Bytes> {
        let Some(version) = self.version(home, fleet_users) else {
            return compute().map(bytes::Bytes::from);
        };
        if let Some(body) = self.fresh(&key, version) {
            return Ok(body);
        }
        let slot = {
            let mut c = self.computing.lock().unwrap_or_else(|p| p.into_inner());
            if c.len() >= MAX_ENTRIES {
                c.retain(|_, l| std::sync::Arc::strong_count(l) > 1);
            }
            c.entry(key.clone()).or_default().clone()
        };
        let _one = slot.lock().unwrap_or_else(|p| p.into_inner());
        // Whoever held the slot may have just computed it: the version is
        // read again, so what is served is never older than the databases
        // at this point.
        let Some(version) = self.version(home, fleet_users) else {
            return compute().map(bytes::Bytes::from);
        };
        if let Some(body) = self.fresh(&key, version) {
            return Ok(body);
        }
        let body = bytes::Bytes::from(compute()?);
        let mut m = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        m.insert(key, version, body.clone(), self.max_bytes);
        Ok(body)
    }

    /// The entry for `key` if it was computed at `version`.
    fn fresh(&self, key: &str, version: Version) -> Option<bytes::Bytes> {
        let mut m = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        m.get(key, version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A home with a WAL state.db and users.db, one table each.
    fn two_databases() -> (tempfile::TempDir, Home) {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path());
        for db in [home.state_db(), home.users_db()] {
            std::fs::create_dir_all(db.parent().unwrap()).unwrap();
            let c = Connection::open(&db).unwrap();
            c.execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE t(x);")
                .unwrap();
        }
        (dir, home)
    }

    #[test]
    fn entries_are_dropped_when_either_database_changes() {
        let (_dir, home) = two_databases();
        let cache = ReadCache::default();
        let mut computed = 0;
        let mut get = |cache: &ReadCache| {
            cache
                .get_or_compute(&home, "k".into(), || {
                    computed += 1;
                    Ok(vec![computed as u8])
                })
                .unwrap()
        };
        assert_eq!(get(&cache).to_vec(), vec![1]);
        assert_eq!(
            get(&cache).to_vec(),
            vec![1],
            "unchanged: served from the cache"
        );
        // A commit by another connection (as Hermes would) invalidates it.
        let writer = Connection::open(home.state_db()).unwrap();
        writer.execute("INSERT INTO t VALUES (1)", []).unwrap();
        assert_eq!(get(&cache).to_vec(), vec![2]);
        assert_eq!(get(&cache).to_vec(), vec![2]);
        let users = Connection::open(home.users_db()).unwrap();
        users.execute("INSERT INTO t VALUES (1)", []).unwrap();
        assert_eq!(get(&cache).to_vec(), vec![3]);
    }

    /// Many distinct keys (every offset of a list is one) never hold more
    /// than the byte bound; recently used entries survive, the least
    /// recently used go first, and an oversized body is not kept.
    #[test]
    fn many_distinct_queries_stay_under_the_byte_bound() {
        let (_dir, home) = two_databases();
        let bound = 1024 * 1024;
        let cache = ReadCache::with_max_bytes(bound);
        let body = vec![b'x'; 100 * 1024];
        let mut computed = 0;
        let mut get = |key: String| {
            cache
                .get_or_compute(&home, key, || {
                    computed += 1;
                    Ok(body.clone())
                })
                .unwrap();
            computed
        };
        assert_eq!(get("hot".into()), 1);
        for i in 0..505 {
            get(format!("offset={i}"));
            // "hot" is used between the others: it is never the least recent.
            assert_eq!(get("hot".into()), i + 2, "hot was evicted at {i}");
            let (bytes, n) = cache.held();
            assert!(bytes <= bound, "{bytes} bytes in {n} entries after {i}");
        }
        let (bytes, n) = cache.held();
        assert!(n >= 5, "the cache still caches: {n} entries, {bytes} bytes");
        // The oldest offsets were evicted (recomputed), the newest were not.
        let before = get("hot".into());
        assert_eq!(get("offset=504".into()), before, "the newest is cached");
        assert_eq!(get("offset=0".into()), before + 1, "the oldest was evicted");
        // Too big to cache: computed every time, nothing evicted for it.
        let (_, n_before) = cache.held();
        let big = vec![b'y'; bound / 2];
        for _ in 0..2 {
            cache
                .get_or_compute(&home, "big".into(), || Ok(big.clone()))
                .unwrap();
        }
        assert_eq!(cache.held().1, n_before);
        assert!(cache.held().0 <= bound);
    }

    #[test]
    fn a_burst_on_a_stale_entry_computes_it_once() {
        let (_dir, home) = two_databases();
        let cache = std::sync::Arc::new(ReadCache::default());
        let computed = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let start = std::sync::Arc::new(std::sync::Barrier::new(8));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (cache, computed, start, home) =
                    (cache.clone(), computed.clone(), start.clone(), home.clone());
                std::thread::spawn(move || {
                    start.wait();
                    cache
                        .get_or_compute(&home, "k".into(), || {
                            computed.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            std::thread::sleep(Duration::from_millis(100));
                            Ok(b"body".to_vec())
                        })
                        .unwrap()
                })
            })
            .collect();
        for t in threads {
            assert_eq!(&t.join().unwrap()[..], b"body");
        }
        assert_eq!(
            computed.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "the others waited for the one compute"
        );
    }
}
