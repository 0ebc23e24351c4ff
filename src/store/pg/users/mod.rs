//! The accounts in the fleet's database: the same
//! [`UserStorage`](crate::store::users::UserStorage) as users.db, so the
//! domain layer never knows which one it has (schema v3 in `../mod.rs`).
//!
//! One host's users.db serialises its writers with SQLite's write lock
//! (`BEGIN IMMEDIATE`), and every rule of the store leans on that: the last
//! admin, throttle counts, one open budget reservation, a refresh token or
//! a one-time code used once. Here every write transaction takes one
//! transaction-scoped advisory lock first ([`USERS_LOCK`]), so writers on
//! every replica and host are serialised the same way and each rule's
//! reads see every earlier commit (READ COMMITTED reads the newest
//! committed rows at each statement). Reads take no lock.

mod accounts;
mod import;
mod keys;
mod rates;
mod sso;
mod throttle;
mod tokens;
mod totp;

use super::{off_runtime, pg_error, Pg};
use crate::error::{Error, Result};
use crate::store::users::{Role, User};
pub use import::Imported;

/// The advisory lock every write of the accounts' store takes ("hermes-us").
const USERS_LOCK: i64 = 0x6865_726d_6573_7573;

/// The channel every committed write of the accounts' store is announced
/// on (`serve` replicas drop what they cached from the store, server/cache.rs).
pub const CHANGED: &str = "hermes_operator_store";

/// How long a write waits for the lock before it is `Busy` (exit 6, HTTP
/// 503), like users.db's retries under a busy writer.
const LOCK_TIMEOUT: &str = "10s";

/// The accounts' store on a connection to the fleet's database.
pub struct PgUsers {
    pg: Pg,
    /// Statements of the hot reads (every request authenticates), prepared
    /// once per connection: one round trip each instead of two.
    prepared: std::sync::Mutex<std::collections::HashMap<String, postgres::Statement>>,
}

impl PgUsers {
    pub fn new(pg: Pg) -> PgUsers {
        PgUsers {
            pg,
            prepared: Default::default(),
        }
    }

    /// Whether the connection is closed (PostgreSQL restarted or gone).
    pub(super) fn is_closed(&self) -> bool {
        self.pg.is_closed()
    }

    /// The database this store is on (`host:port/db`), for messages.
    pub fn target(&self) -> &str {
        &self.pg.target
    }

    /// One read (no lock; each statement sees what was committed before it).
    fn read<T: Send>(
        &self,
        what: &str,
        f: impl Fn(&mut postgres::Client) -> std::result::Result<T, postgres::Error> + Send + Sync,
    ) -> Result<T> {
        off_runtime(|| {
            self.fresh_on_closed(|| {
                let mut c = self.pg.client();
                f(&mut c)
            })
            .map_err(|e| pg_error(&self.pg.target, what, e))
        })
    }

    /// One read with `sql` prepared once on this connection.
    fn read_prepared<T: Send>(
        &self,
        what: &str,
        sql: &str,
        f: impl Fn(
                &mut postgres::Client,
                &postgres::Statement,
            ) -> std::result::Result<T, postgres::Error>
            + Send
            + Sync,
    ) -> Result<T> {
        off_runtime(|| {
            self.fresh_on_closed(|| self.read_prepared_here(sql, &f))
                .map_err(|e| pg_error(&self.pg.target, what, e))
        })
    }

    fn read_prepared_here<T>(
        &self,
        sql: &str,
        f: &impl Fn(
            &mut postgres::Client,
            &postgres::Statement,
        ) -> std::result::Result<T, postgres::Error>,
    ) -> std::result::Result<T, postgres::Error> {
        let mut c = self.pg.client();
        let mut prepared = self.prepared.lock().unwrap_or_else(|p| p.into_inner());
        let st = match prepared.get(sql) {
            Some(st) => st.clone(),
            None => {
                let st = c.prepare(sql)?;
                prepared.insert(sql.to_string(), st.clone());
                st
            }
        };
        drop(prepared);
        f(&mut c, &st)
    }

    /// `op` again on a new connection when this one turned out to be closed
    /// (PostgreSQL restarted while it sat in a pool): only for what may run
    /// twice — reads, and a transaction whose `BEGIN` failed.
    fn fresh_on_closed<T>(
        &self,
        op: impl Fn() -> std::result::Result<T, postgres::Error>,
    ) -> std::result::Result<T, postgres::Error> {
        match op() {
            Err(e) if e.is_closed() && self.pg.reconnect().is_ok() => {
                self.prepared
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clear();
                op()
            }
            r => r,
        }
    }

    /// One transaction without the store's lock (the caller takes a
    /// narrower one).
    fn transaction<T: Send>(
        &self,
        what: &str,
        f: impl FnOnce(&mut postgres::Transaction) -> std::result::Result<T, postgres::Error> + Send,
    ) -> Result<T> {
        self.in_transaction(what, "", f)
    }

    /// `f` in a transaction that starts with `preamble` (after the lock
    /// timeout), committed when `f` returns `Ok`.
    fn in_transaction<T: Send>(
        &self,
        what: &str,
        preamble: &str,
        f: impl FnOnce(&mut postgres::Transaction) -> std::result::Result<T, postgres::Error> + Send,
    ) -> Result<T> {
        off_runtime(|| {
            let err = |e| pg_error(&self.pg.target, what, e);
            let mut f = Some(f);
            for attempt in 0..2 {
                {
                    let mut c = self.pg.client();
                    match c.transaction() {
                        Ok(mut tx) => {
                            tx.batch_execute(&format!(
                                "SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'; {preamble}"
                            ))
                            .map_err(err)?;
                            let f = f.take().expect("called once");
                            let v = f(&mut tx).map_err(err)?;
                            tx.commit().map_err(err)?;
                            return Ok(v);
                        }
                        // Nothing was sent before BEGIN: a connection found
                        // closed there (PostgreSQL restarted while it sat
                        // in a pool) is replaced and the transaction starts
                        // anew.
                        Err(e) if e.is_closed() && attempt == 0 => {}
                        Err(e) => return Err(err(e)),
                    };
                }
                self.pg.reconnect()?;
                self.prepared
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clear();
            }
            Err(Error::new(
                crate::Kind::Unavailable,
                format!("PostgreSQL at {} closed the connection", self.pg.target),
            ))
        })
    }

    /// One write transaction, serialised against every other writer of the
    /// store on any replica or host by [`USERS_LOCK`]; it also moves
    /// announces itself on [`CHANGED`] when it commits,
    /// so caches on every replica see the change.
    fn write<T: Send>(
        &self,
        what: &str,
        f: impl FnOnce(&mut postgres::Transaction) -> std::result::Result<T, postgres::Error> + Send,
    ) -> Result<T> {
        self.in_transaction(
            what,
            &format!(
                "SELECT pg_advisory_xact_lock({USERS_LOCK}); \
                 SELECT pg_notify('{CHANGED}', '');"
            ),
            f,
        )
    }
}

/// The columns of a [`User`], in [`user_from`]'s order.
pub(super) const COLS: &str = "id, username, role, disabled, token_version, created_at, updated_at, password_changed_at, last_login_at, must_change_password";
/// How many columns [`COLS`] has (a join's own columns follow them).
pub(super) const NCOLS: usize = 10;

/// A [`User`] from the [`COLS`] starting at column `at`.
pub(super) fn user_from(r: &postgres::Row, at: usize) -> User {
    let role: String = r.get(at + 2);
    User {
        id: r.get(at),
        username: r.get(at + 1),
        role: Role::parse(&role).unwrap_or(Role::Viewer),
        disabled: r.get(at + 3),
        token_version: r.get(at + 4),
        created_at: r.get(at + 5),
        updated_at: r.get(at + 6),
        password_changed_at: r.get(at + 7),
        last_login_at: r.get(at + 8),
        must_change_password: r.get(at + 9),
    }
}
