//! PORT IN PROGRESS

use super::PgUsers;
use crate::error::Result;
use crate::store::users::*;

impl Throttle for PgUsers {
    fn reserve_attempt(
        &self,
        username: &str,
        client: &str,
        now: f64,
        limits: &AttemptLimits,
    ) -> Result<Gate> {
        unimplemented!()
    }

    fn finish_attempt(&self, attempt: i64, ok: bool) -> Result<()> {
        unimplemented!()
    }

    fn cancel_attempt(&self, attempt: i64) -> Result<()> {
        unimplemented!()
    }

    fn clear_attempts(&self, username: &str) -> Result<i64> {
        unimplemented!()
    }

    fn reserve_code_check(
        &self,
        user_id: &str,
        now: f64,
        window_secs: f64,
        max: i64,
    ) -> Result<std::result::Result<i64, u64>> {
        unimplemented!()
    }

    fn finish_code_check(&self, attempt: i64, ok: bool) -> Result<()> {
        unimplemented!()
    }

    fn recent_attempts(&self, username: &str, since: f64) -> Result<i64> {
        unimplemented!()
    }
}
