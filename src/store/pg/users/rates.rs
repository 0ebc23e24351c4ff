//! Per-minute limits across replicas (a key's `--rpm`, the server's
//! per-account action limits): each request is a row of its counter,
//! counted over the last 60 s under a lock of that counter alone (counters
//! never wait on each other or on account writes).

use super::PgUsers;
use crate::error::Result;
use crate::store::users::Rates;

/// The advisory lock class of rate counters (the counter's hash is the
/// other half).
const RATE_LOCK_CLASS: i32 = 0x6b72; // "kr"

impl Rates for PgUsers {
    fn admit_rate(
        &self,
        counter: &str,
        per_minute: u32,
        now: f64,
    ) -> Result<Option<std::result::Result<(), u64>>> {
        self.transaction("counting requests in", |tx| {
            tx.execute(
                "SELECT pg_advisory_xact_lock($1, hashtext($2))",
                &[&RATE_LOCK_CLASS, &counter],
            )?;
            tx.execute(
                "DELETE FROM rate_requests WHERE counter = $1 AND at <= $2",
                &[&counter, &(now - 60.0)],
            )?;
            let row = tx.query_one(
                "SELECT count(*), min(at) FROM rate_requests WHERE counter = $1",
                &[&counter],
            )?;
            let (n, oldest): (i64, Option<f64>) = (row.get(0), row.get(1));
            if n >= i64::from(per_minute) {
                let wait = (oldest.unwrap_or(now) + 60.0 - now).ceil().max(1.0);
                return Ok(Some(Err(wait as u64)));
            }
            tx.execute(
                "INSERT INTO rate_requests (counter, at) VALUES ($1, $2)",
                &[&counter, &now],
            )?;
            Ok(Some(Ok(())))
        })
    }
}
