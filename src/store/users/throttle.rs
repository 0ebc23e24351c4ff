//! Password attempts in users.db (login and password change), and
//! second-factor code checks per account, so that throttling holds across
//! parallel requests, restarts and several `serve` processes. An attempt is *reserved* (a `pending` row) inside the same
//! write transaction that counts the earlier ones, before any password is
//! checked: N parallel requests can never get more than the limit of checks.
//! The policy (limits, window, slow-down) is the caller's
//! (`ops::logins`); this module only counts and records atomically.

use super::{with_immediate, SqliteUsers};
use crate::error::Result;
use rusqlite::{params, OptionalExtension, Transaction};

/// The limits a reservation is checked against.
#[derive(Debug, Clone, Copy)]
pub struct AttemptLimits {
    /// Attempts count for this long (seconds).
    pub window_secs: f64,
    /// Pending or failed attempts per (username, client address).
    pub per_user_client: i64,
    /// Pending or failed attempts per client address, any username.
    pub per_client: i64,
    /// Above this many attempts for a username from all addresses, each new
    /// attempt is slowed down (never refused: that would let anyone lock a
    /// user out from everywhere).
    pub slow_after: i64,
}

/// Which limit refused an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    UserClient,
    Client,
}

impl Limit {
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::UserClient => "user_client",
            Limit::Client => "client",
        }
    }
}

/// The answer to a reservation.
impl AttemptLimits {
    /// The limit the window's counts — (attempts, the oldest one's time)
    /// for this username and address, and for the address — reach first,
    /// if any, with the oldest attempt it counted.
    pub(crate) fn reached(
        &self,
        pair: (i64, Option<f64>),
        by_client: (i64, Option<f64>),
    ) -> Option<(Limit, Option<f64>)> {
        if pair.0 >= self.per_user_client {
            Some((Limit::UserClient, pair.1))
        } else if by_client.0 >= self.per_client {
            Some((Limit::Client, by_client.1))
        } else {
            None
        }
    }
}

/// Whole seconds until the oldest counted attempt (at `oldest`) leaves a
/// window of `window_secs`, at least 1.
pub(crate) fn wait_secs(oldest: Option<f64>, now: f64, window_secs: f64) -> u64 {
    (oldest.unwrap_or(now) + window_secs - now).max(1.0).ceil() as u64
}

/// The row of `login_throttled` that counts refusals under `limit`: one per
/// (username, address), or per address. The username's length keeps the
/// key one per pair whatever either contains (no separator can be relied
/// on: PostgreSQL's text cannot hold a NUL).
pub(crate) fn throttled_key(limit: Limit, user: &str, client: &str) -> String {
    match limit {
        Limit::UserClient => format!("u:{}:{user}c:{client}", user.len()),
        Limit::Client => format!("c:{client}"),
    }
}

/// A refusal under `limit`, the `count`th of its row.
pub(crate) fn throttled(limit: Limit, retry_after_secs: u64, count: i64) -> Gate {
    Gate::Throttled {
        limit,
        retry_after_secs,
        count,
        report: is_power_of_ten(count),
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Gate {
    /// Go ahead: check the password, then [`UserStore::finish_attempt`].
    /// `recent_for_user`: attempts for the username from all addresses in
    /// the window, before this one (the caller's slow-down input).
    Go { attempt: i64, recent_for_user: i64 },
    /// Refused without a check. `count`: refused attempts for this key in
    /// the window so far (this one included); `report`: whether this refusal
    /// should be audited (the 1st, 10th, 100th, … of a key, so a flood
    /// cannot flood the log).
    Throttled {
        limit: Limit,
        retry_after_secs: u64,
        count: i64,
        report: bool,
    },
}

pub trait Throttle {
    /// Reserve one password attempt for `username` (compared
    /// case-insensitively) from `client`, or refuse it.
    fn reserve_attempt(
        &self,
        username: &str,
        client: &str,
        now: f64,
        limits: &AttemptLimits,
    ) -> Result<Gate>;

    /// After the check: a failure stays counted; a success clears this
    /// username's attempts from this address (not those from elsewhere).
    fn finish_attempt(&self, attempt: i64, ok: bool) -> Result<()>;

    /// Forget one reserved attempt without counting it either way (the
    /// password was right but the second factor is still to come).
    fn cancel_attempt(&self, attempt: i64) -> Result<()>;

    /// `user unlock`: forget every attempt and refusal for `username`,
    /// its second-factor code checks included. Returns how many rows went.
    fn clear_attempts(&self, username: &str) -> Result<i64>;

    /// Reserve one second-factor code check for the account `user_id`
    /// (whatever the client address), or refuse it: `Err(retry_after_secs)`
    /// when `max` checks (pending or failed) were made in the last
    /// `window_secs`. Counted and inserted in one write transaction, so
    /// parallel requests never get more than `max` checks.
    fn reserve_code_check(
        &self,
        user_id: &str,
        now: f64,
        window_secs: f64,
        max: i64,
    ) -> Result<std::result::Result<i64, u64>>;

    /// After a code check: a wrong code stays counted; a right one is
    /// forgotten (only that check: earlier wrong ones keep counting, so a
    /// guesser cannot reset the cap by the owner's success).
    fn finish_code_check(&self, attempt: i64, ok: bool) -> Result<()>;

    /// Attempts (pending or failed) recorded for `username` in the window.
    fn recent_attempts(&self, username: &str, since: f64) -> Result<i64>;
}

impl Throttle for SqliteUsers {
    fn reserve_attempt(
        &self,
        username: &str,
        client: &str,
        now: f64,
        limits: &AttemptLimits,
    ) -> Result<Gate> {
        let user = username.to_lowercase();
        let cutoff = now - limits.window_secs;
        with_immediate(&self.conn, &self.path, "reserving a login attempt", |tx| {
            tx.execute("DELETE FROM login_attempts WHERE at < ?1", [cutoff])?;
            tx.execute("DELETE FROM login_throttled WHERE last_at < ?1", [cutoff])?;
            let pair = count_since(
                tx,
                "username = ?1 AND client = ?2",
                params![user, client, cutoff],
            )?;
            let by_client = count_since(tx, "client = ?1", params![client, cutoff])?;
            if let Some((limit, oldest)) = limits.reached(pair, by_client) {
                let key = throttled_key(limit, &user, client);
                let count: i64 = tx.query_row(
                    "INSERT INTO login_throttled (key, username, client, first_at, last_at, count)
                     VALUES (?1, ?2, ?3, ?4, ?4, 1)
                     ON CONFLICT(key) DO UPDATE SET last_at = ?4, count = count + 1
                     RETURNING count",
                    params![
                        key,
                        (limit == Limit::UserClient).then_some(&user),
                        client,
                        now
                    ],
                    |r| r.get(0),
                )?;
                let wait = wait_secs(oldest, now, limits.window_secs);
                return Ok(throttled(limit, wait, count));
            }
            let recent_for_user = count_since(tx, "username = ?1", params![user, cutoff])?.0;
            tx.execute(
                "INSERT INTO login_attempts (username, client, at, state) VALUES (?1, ?2, ?3, 'pending')",
                params![user, client, now],
            )?;
            Ok(Gate::Go {
                attempt: tx.last_insert_rowid(),
                recent_for_user,
            })
        })
    }

    fn finish_attempt(&self, attempt: i64, ok: bool) -> Result<()> {
        with_immediate(&self.conn, &self.path, "recording a login attempt", |tx| {
            if ok {
                tx.execute(
                    "DELETE FROM login_attempts WHERE (username, client) =
                       (SELECT username, client FROM login_attempts WHERE id = ?1)",
                    [attempt],
                )?;
            } else {
                tx.execute(
                    "UPDATE login_attempts SET state = 'failed' WHERE id = ?1",
                    [attempt],
                )?;
            }
            Ok(())
        })
    }

    fn cancel_attempt(&self, attempt: i64) -> Result<()> {
        with_immediate(&self.conn, &self.path, "recording a login attempt", |tx| {
            tx.execute("DELETE FROM login_attempts WHERE id = ?1", [attempt])?;
            Ok(())
        })
    }

    fn clear_attempts(&self, username: &str) -> Result<i64> {
        let user = username.to_lowercase();
        with_immediate(&self.conn, &self.path, "clearing login attempts", |tx| {
            let a = tx.execute("DELETE FROM login_attempts WHERE username = ?1", [&user])?;
            let b = tx.execute("DELETE FROM login_throttled WHERE username = ?1", [&user])?;
            // users.username compares case-insensitively (COLLATE NOCASE).
            let c = tx.execute(
                "DELETE FROM code_attempts WHERE user_id IN (SELECT id FROM users WHERE username = ?1)",
                [&user],
            )?;
            Ok((a + b + c) as i64)
        })
    }

    fn reserve_code_check(
        &self,
        user_id: &str,
        now: f64,
        window_secs: f64,
        max: i64,
    ) -> Result<std::result::Result<i64, u64>> {
        let cutoff = now - window_secs;
        with_immediate(&self.conn, &self.path, "reserving a code check", |tx| {
            tx.execute("DELETE FROM code_attempts WHERE at < ?1", [cutoff])?;
            let (n, oldest): (i64, Option<f64>) = tx.query_row(
                "SELECT count(*), min(at) FROM code_attempts WHERE user_id = ?1 AND at >= ?2",
                params![user_id, cutoff],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            if n >= max {
                return Ok(Err(wait_secs(oldest, now, window_secs)));
            }
            tx.execute(
                "INSERT INTO code_attempts (user_id, at, state) VALUES (?1, ?2, 'pending')",
                params![user_id, now],
            )?;
            Ok(Ok(tx.last_insert_rowid()))
        })
    }

    fn finish_code_check(&self, attempt: i64, ok: bool) -> Result<()> {
        with_immediate(&self.conn, &self.path, "recording a code check", |tx| {
            if ok {
                tx.execute("DELETE FROM code_attempts WHERE id = ?1", [attempt])?;
            } else {
                tx.execute(
                    "UPDATE code_attempts SET state = 'failed' WHERE id = ?1",
                    [attempt],
                )?;
            }
            Ok(())
        })
    }

    fn recent_attempts(&self, username: &str, since: f64) -> Result<i64> {
        self.conn
            .query_row(
                "SELECT count(*) FROM login_attempts WHERE username = ?1 AND at >= ?2",
                params![username.to_lowercase(), since],
                |r| r.get(0),
            )
            .map_err(self.err("counting login attempts"))
    }
}

/// (count, oldest `at`) of the attempts matching `cond` since the last
/// parameter.
fn count_since(
    tx: &Transaction,
    cond: &str,
    p: impl rusqlite::Params,
) -> rusqlite::Result<(i64, Option<f64>)> {
    let n = cond.matches('?').count() + 1;
    tx.query_row(
        &format!("SELECT count(*), min(at) FROM login_attempts WHERE {cond} AND at >= ?{n}"),
        p,
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()
    .map(|o| o.unwrap_or((0, None)))
}

fn is_power_of_ten(mut n: i64) -> bool {
    if n < 1 {
        return false;
    }
    while n % 10 == 0 {
        n /= 10;
    }
    n == 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::users::UserStore;

    const L: AttemptLimits = AttemptLimits {
        window_secs: 60.0,
        per_user_client: 2,
        per_client: 3,
        slow_after: 2,
    };

    fn go(g: Gate) -> (i64, i64) {
        match g {
            Gate::Go {
                attempt,
                recent_for_user,
            } => (attempt, recent_for_user),
            other => panic!("expected Go, got {other:?}"),
        }
    }

    #[test]
    fn limits_per_user_and_address_per_address_and_the_window() {
        let dir = tempfile::tempdir().unwrap();
        let s = UserStore::open(&dir.path().join("users.db")).unwrap();
        let (a, _) = go(s.reserve_attempt("Alice", "10.0.0.1", 100.0, &L).unwrap());
        s.finish_attempt(a, false).unwrap();
        // Pending attempts count too: that is what parallel requests meet.
        let (_, before) = go(s.reserve_attempt("alice", "10.0.0.1", 101.0, &L).unwrap());
        assert_eq!(before, 1);
        match s.reserve_attempt("ALICE", "10.0.0.1", 102.0, &L).unwrap() {
            Gate::Throttled {
                limit,
                retry_after_secs,
                count,
                report,
            } => {
                assert_eq!(limit, Limit::UserClient);
                assert_eq!(retry_after_secs, 58, "until the oldest ages out");
                assert_eq!((count, report), (1, true));
            }
            g => panic!("{g:?}"),
        }
        // Elsewhere alice may try (the caller slows her: 2 recent attempts).
        let (b, recent) = go(s.reserve_attempt("alice", "10.0.0.2", 103.0, &L).unwrap());
        assert_eq!(recent, 2);
        // A success clears her attempts from that address only.
        s.finish_attempt(b, true).unwrap();
        assert_eq!(s.recent_attempts("alice", 0.0).unwrap(), 2);
        // Per address, any usernames: the 4th from 10.0.0.1 is refused.
        assert!(matches!(
            s.reserve_attempt("bob", "10.0.0.1", 104.0, &L).unwrap(),
            Gate::Go { .. }
        ));
        let refusals: Vec<(i64, bool)> = (0..10)
            .map(|i| {
                match s
                    .reserve_attempt(&format!("u{i}"), "10.0.0.1", 105.0, &L)
                    .unwrap()
                {
                    Gate::Throttled {
                        limit,
                        count,
                        report,
                        ..
                    } => {
                        assert_eq!(limit, Limit::Client);
                        (count, report)
                    }
                    g => panic!("{g:?}"),
                }
            })
            .collect();
        let reported: Vec<i64> = refusals.iter().filter(|r| r.1).map(|r| r.0).collect();
        assert_eq!(reported, [1, 10], "1st and 10th refusal reported");
        // The window passes: everything is forgotten.
        assert!(matches!(
            s.reserve_attempt("alice", "10.0.0.1", 200.0, &L).unwrap(),
            Gate::Go {
                recent_for_user: 0,
                ..
            }
        ));
        assert_eq!(s.clear_attempts("ALICE").unwrap(), 1);
        assert_eq!(s.recent_attempts("alice", 0.0).unwrap(), 0);
    }

    #[test]
    fn code_checks_are_capped_per_account_and_cleared_by_unlock() {
        let dir = tempfile::tempdir().unwrap();
        let s = UserStore::open(&dir.path().join("users.db")).unwrap();
        let u = s.insert("Alice", super::super::Role::User, "x").unwrap();
        // Two wrong codes and one pending check fill a cap of 3.
        for t in [100.0, 101.0] {
            let id = s.reserve_code_check(&u.id, t, 60.0, 3).unwrap().unwrap();
            s.finish_code_check(id, false).unwrap();
        }
        let pending = s
            .reserve_code_check(&u.id, 102.0, 60.0, 3)
            .unwrap()
            .unwrap();
        assert_eq!(
            s.reserve_code_check(&u.id, 103.0, 60.0, 3).unwrap(),
            Err(57),
            "until the oldest ages out"
        );
        // A right code frees only its own check.
        s.finish_code_check(pending, true).unwrap();
        let id = s
            .reserve_code_check(&u.id, 104.0, 60.0, 3)
            .unwrap()
            .unwrap();
        s.finish_code_check(id, false).unwrap();
        assert!(s
            .reserve_code_check(&u.id, 105.0, 60.0, 3)
            .unwrap()
            .is_err());
        // Another account is not affected; the window passing or an unlock
        // (by username, any case) frees the account.
        let b = s.insert("bob", super::super::Role::User, "x").unwrap();
        assert!(s.reserve_code_check(&b.id, 105.0, 60.0, 3).unwrap().is_ok());
        for t in [165.0, 166.0, 167.0] {
            assert!(
                s.reserve_code_check(&u.id, t, 60.0, 3).unwrap().is_ok(),
                "{t}"
            );
        }
        assert!(s
            .reserve_code_check(&u.id, 168.0, 60.0, 3)
            .unwrap()
            .is_err());
        assert_eq!(s.clear_attempts("ALICE").unwrap(), 3);
        assert!(s.reserve_code_check(&u.id, 169.0, 60.0, 3).unwrap().is_ok());
    }
}
