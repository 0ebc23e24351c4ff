//! PORT IN PROGRESS

use super::PgUsers;
use crate::error::Result;
use crate::store::users::*;

impl Tokens for PgUsers {
    fn find_for_token(
        &self,
        user_id: &str,
        jti: &str,
        family: Option<&str>,
    ) -> Result<Option<(User, bool)>> {
        unimplemented!()
    }

    fn purge_tokens(&self, now_epoch: i64, keep_used: i64) -> Result<(i64, i64)> {
        unimplemented!()
    }

    fn insert_refresh(
        &self,
        token_hash: &[u8; 32],
        family_id: &str,
        user_id: &str,
        token_version: i64,
        expires_at: i64,
        second_factor: bool,
    ) -> Result<String> {
        unimplemented!()
    }

    fn rotate_refresh(
        &self,
        token_hash: &[u8; 32],
        new_hash: &[u8; 32],
        new_expires_at: i64,
        now_epoch: i64,
        limit: (i64, &str),
    ) -> Result<RefreshUse> {
        unimplemented!()
    }

    fn revoke_refresh(
        &self,
        user_id: &str,
        token_hash: Option<&[u8; 32]>,
        reason: &str,
    ) -> Result<i64> {
        unimplemented!()
    }

    fn revoke_family(&self, user_id: &str, family: &str, reason: &str) -> Result<i64> {
        unimplemented!()
    }

    fn revoke_access(&self, jti: &str, user_id: &str, expires_at: i64) -> Result<()> {
        unimplemented!()
    }

    fn revoked_access(&self) -> Result<Vec<(String, i64)>> {
        unimplemented!()
    }
}
