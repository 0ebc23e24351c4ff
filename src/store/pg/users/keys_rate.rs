//! Requests per minute of personal API keys across replicas: each request
//! of a key with `--rpm` is a row, counted over the last 60 s under a lock
//! of that key alone (keys never wait on each other or on account writes).

use super::PgUsers;
use crate::error::Result;
use crate::store::users::KeyRates;

/// The advisory lock class of key rates (the key's hash is the other half).
const KEY_RATE_LOCK_CLASS: i32 = 0x6b72; // "kr"

impl KeyRates for PgUsers {
    fn admit_key_request(
        &self,
        id: &str,
        rpm: u32,
        now: f64,
    ) -> Result<Option<std::result::Result<(), u64>>> {
        self.transaction("counting an API key's requests in", |tx| {
            tx.execute(
                "SELECT pg_advisory_xact_lock($1, hashtext($2))",
                &[&KEY_RATE_LOCK_CLASS, &id],
            )?;
            tx.execute(
                "DELETE FROM key_requests WHERE key_id = $1 AND at <= $2",
                &[&id, &(now - 60.0)],
            )?;
            let row = tx.query_one(
                "SELECT count(*), min(at) FROM key_requests WHERE key_id = $1",
                &[&id],
            )?;
            let (n, oldest): (i64, Option<f64>) = (row.get(0), row.get(1));
            if n >= i64::from(rpm) {
                let wait = (oldest.unwrap_or(now) + 60.0 - now).ceil().max(1.0);
                return Ok(Some(Err(wait as u64)));
            }
            tx.execute(
                "INSERT INTO key_requests (key_id, at) VALUES ($1, $2)",
                &[&id, &now],
            )?;
            Ok(Some(Ok(())))
        })
    }
}
