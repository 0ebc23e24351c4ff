//! Password attempts and second-factor code checks in the fleet's
//! database: users.db's throttle one to one (store/users/throttle.rs). An
//! attempt is reserved (a `pending` row) in the same write transaction that
//! counts the earlier ones, and every writer of the store on every replica
//! takes the store's lock first, so N parallel requests anywhere never get
//! more than the limit of checks.

use super::PgUsers;
use crate::error::Result;
use crate::store::users::*;
use postgres::types::ToSql;

impl Throttle for PgUsers {
    fn reserve_attempt(
        &self,
        username: &str,
        client: &str,
        now: f64,
        limits: &AttemptLimits,
    ) -> Result<Gate> {
        let user = username.to_lowercase();
        let cutoff = now - limits.window_secs;
        self.write("reserving a login attempt in", |tx| {
            tx.execute("DELETE FROM login_attempts WHERE at < $1", &[&cutoff])?;
            tx.execute("DELETE FROM login_throttled WHERE last_at < $1", &[&cutoff])?;
            let pair = count_since(
                tx,
                "username = $1 AND client = $2",
                &[&user, &client, &cutoff],
            )?;
            let by_client = count_since(tx, "client = $1", &[&client, &cutoff])?;
            if let Some((limit, oldest)) = limits.reached(pair, by_client) {
                let key = throttled_key(limit, &user, client);
                let username = (limit == Limit::UserClient).then_some(&user);
                let count: i64 = tx
                    .query_one(
                        "INSERT INTO login_throttled (key, username, client, first_at, last_at, count)
                         VALUES ($1, $2, $3, $4, $4, 1)
                         ON CONFLICT (key) DO UPDATE SET last_at = $4, count = login_throttled.count + 1
                         RETURNING count",
                        &[&key, &username, &client, &now],
                    )?
                    .get(0);
                let wait = wait_secs(oldest, now, limits.window_secs);
                return Ok(throttled(limit, wait, count));
            }
            let recent_for_user = count_since(tx, "username = $1", &[&user, &cutoff])?.0;
            let attempt: i64 = tx
                .query_one(
                    "INSERT INTO login_attempts (username, client, at, state)
                     VALUES ($1, $2, $3, 'pending') RETURNING id",
                    &[&user, &client, &now],
                )?
                .get(0);
            Ok(Gate::Go {
                attempt,
                recent_for_user,
            })
        })
    }

    fn finish_attempt(&self, attempt: i64, ok: bool) -> Result<()> {
        self.write("recording a login attempt in", |tx| {
            if ok {
                tx.execute(
                    "DELETE FROM login_attempts WHERE (username, client) =
                       (SELECT username, client FROM login_attempts WHERE id = $1)",
                    &[&attempt],
                )?;
            } else {
                tx.execute(
                    "UPDATE login_attempts SET state = 'failed' WHERE id = $1",
                    &[&attempt],
                )?;
            }
            Ok(())
        })
    }

    fn cancel_attempt(&self, attempt: i64) -> Result<()> {
        self.write("recording a login attempt in", |tx| {
            tx.execute("DELETE FROM login_attempts WHERE id = $1", &[&attempt])?;
            Ok(())
        })
    }

    fn clear_attempts(&self, username: &str) -> Result<i64> {
        let user = username.to_lowercase();
        self.write("clearing login attempts in", |tx| {
            let a = tx.execute("DELETE FROM login_attempts WHERE username = $1", &[&user])?;
            let b = tx.execute("DELETE FROM login_throttled WHERE username = $1", &[&user])?;
            // users.username compares case-insensitively (its unique index
            // is on lower(username), as users.db's COLLATE NOCASE).
            let c = tx.execute(
                "DELETE FROM code_attempts
                 WHERE user_id IN (SELECT id FROM users WHERE lower(username) = lower($1))",
                &[&user],
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
        self.write("reserving a code check in", |tx| {
            tx.execute("DELETE FROM code_attempts WHERE at < $1", &[&cutoff])?;
            let row = tx.query_one(
                "SELECT count(*), min(at) FROM code_attempts WHERE user_id = $1 AND at >= $2",
                &[&user_id, &cutoff],
            )?;
            let (n, oldest): (i64, Option<f64>) = (row.get(0), row.get(1));
            if n >= max {
                return Ok(Err(wait_secs(oldest, now, window_secs)));
            }
            let id: i64 = tx
                .query_one(
                    "INSERT INTO code_attempts (user_id, at, state)
                     VALUES ($1, $2, 'pending') RETURNING id",
                    &[&user_id, &now],
                )?
                .get(0);
            Ok(Ok(id))
        })
    }

    fn finish_code_check(&self, attempt: i64, ok: bool) -> Result<()> {
        self.write("recording a code check in", |tx| {
            if ok {
                tx.execute("DELETE FROM code_attempts WHERE id = $1", &[&attempt])?;
            } else {
                tx.execute(
                    "UPDATE code_attempts SET state = 'failed' WHERE id = $1",
                    &[&attempt],
                )?;
            }
            Ok(())
        })
    }

    fn recent_attempts(&self, username: &str, since: f64) -> Result<i64> {
        let user = username.to_lowercase();
        self.read("counting login attempts in", |c| {
            Ok(c.query_one(
                "SELECT count(*) FROM login_attempts WHERE username = $1 AND at >= $2",
                &[&user, &since],
            )?
            .get(0))
        })
    }
}

/// (count, oldest `at`) of the attempts matching `cond` since the last
/// parameter.
fn count_since(
    tx: &mut postgres::Transaction<'_>,
    cond: &str,
    p: &[&(dyn ToSql + Sync)],
) -> std::result::Result<(i64, Option<f64>), postgres::Error> {
    let n = cond.matches('$').count() + 1;
    let row = tx.query_one(
        &format!("SELECT count(*), min(at) FROM login_attempts WHERE {cond} AND at >= ${n}"),
        p,
    )?;
    Ok((row.get(0), row.get(1)))
}
