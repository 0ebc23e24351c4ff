//! PORT IN PROGRESS

use super::PgUsers;
use crate::error::Result;
use crate::store::users::*;

impl SsoStore for PgUsers {
    fn begin_sso_flow(
        &self,
        f: &NewFlow,
        now: f64,
        ttl: f64,
        window: f64,
        cap: i64,
    ) -> Result<bool> {
        unimplemented!()
    }

    fn take_sso_flow(&self, state_hash: &[u8; 32], now: f64) -> Result<Option<Flow>> {
        unimplemented!()
    }

    fn insert_sso_grant(&self, code_hash: &[u8; 32], g: &Grant, expires_at: f64) -> Result<()> {
        unimplemented!()
    }

    fn take_sso_grant(&self, code_hash: &[u8; 32], now: f64) -> Result<Option<Grant>> {
        unimplemented!()
    }

    fn find_by_identity(&self, issuer: &str, subject: &str) -> Result<Option<User>> {
        unimplemented!()
    }

    fn identity_of(&self, user_id: &str) -> Result<Option<Identity>> {
        unimplemented!()
    }

    fn link_identity(&self, user_id: &str, issuer: &str, subject: &str, by: &str) -> Result<()> {
        unimplemented!()
    }

    fn unlink_identity(&self, user_id: &str, reason: &str) -> Result<usize> {
        unimplemented!()
    }

    fn insert_sso_user(
        &self,
        username: &str,
        role: Role,
        issuer: &str,
        subject: &str,
    ) -> Result<User> {
        unimplemented!()
    }

    fn insert_sso_login(&self, l: &SsoLogin) -> Result<()> {
        unimplemented!()
    }

    fn sso_login_of_refresh(&self, token_hash: &[u8; 32]) -> Result<Option<SsoLogin>> {
        unimplemented!()
    }

    fn is_sso_family(&self, family_id: &str) -> Result<bool> {
        unimplemented!()
    }

    fn update_sso_login(
        &self,
        family_id: &str,
        access: Option<&str>,
        refresh: Option<&str>,
    ) -> Result<()> {
        unimplemented!()
    }

    fn purge_sso(&self, now: f64) -> Result<i64> {
        unimplemented!()
    }
}
