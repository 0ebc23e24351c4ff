//! PORT IN PROGRESS

use super::PgUsers;
use crate::error::Result;
use crate::store::users::*;

impl Keys for PgUsers {
    fn key_insert(&self, k: &NewKey) -> Result<std::result::Result<ApiKey, KeyRefused>> {
        unimplemented!()
    }

    fn key_purge_dead(&self, now_epoch: i64) -> Result<usize> {
        unimplemented!()
    }

    fn key_get(&self, id: &str) -> Result<Option<ApiKey>> {
        unimplemented!()
    }

    fn key_list(&self, user_id: Option<&str>, limit: i64, offset: i64) -> Result<Vec<ApiKey>> {
        unimplemented!()
    }

    fn key_by_hash(&self, hash: &[u8; 32]) -> Result<Option<(ApiKey, User)>> {
        unimplemented!()
    }

    fn key_revoke(&self, id: &str, reason: &str) -> Result<bool> {
        unimplemented!()
    }

    fn key_touch(&self, id: &str) -> Result<()> {
        unimplemented!()
    }
}
