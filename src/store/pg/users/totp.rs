//! PORT IN PROGRESS

use super::PgUsers;
use crate::error::Result;
use crate::store::users::*;

impl TotpStore for PgUsers {
    fn totp_begin(&self, user_id: &str, secret: &[u8], recovery: &[[u8; 32]]) -> Result<bool> {
        unimplemented!()
    }

    fn totp_get(&self, user_id: &str) -> Result<Option<TotpRow>> {
        unimplemented!()
    }

    fn totp_use_step(&self, user_id: &str, step: i64) -> Result<bool> {
        unimplemented!()
    }

    fn totp_confirm(&self, user_id: &str, step: i64) -> Result<bool> {
        unimplemented!()
    }

    fn totp_use_recovery(&self, user_id: &str, hash: &[u8; 32]) -> Result<(bool, i64)> {
        unimplemented!()
    }

    fn totp_remove(&self, user_id: &str) -> Result<bool> {
        unimplemented!()
    }
}
