//! PORT IN PROGRESS

use super::PgUsers;
use crate::error::Result;
use crate::store::users::*;

impl Accounts for PgUsers {
    fn list(&self) -> Result<Vec<User>> {
        unimplemented!()
    }

    fn find(&self, username: &str) -> Result<Option<User>> {
        unimplemented!()
    }

    fn find_by_id(&self, id: &str) -> Result<Option<User>> {
        unimplemented!()
    }

    fn password_hash(&self, id: &str) -> Result<Option<String>> {
        unimplemented!()
    }

    fn insert(&self, username: &str, role: Role, password_hash: &str) -> Result<User> {
        unimplemented!()
    }

    fn set_password(
        &self,
        id: &str,
        hash: &str,
        must_change: bool,
    ) -> Result<Vec<(String, String)>> {
        unimplemented!()
    }

    fn set_role_and_disabled(
        &self,
        id: &str,
        role: Option<Role>,
        disabled: Option<bool>,
    ) -> Result<()> {
        unimplemented!()
    }

    fn record_login(&self, id: &str) -> Result<()> {
        unimplemented!()
    }

    fn delete(&self, id: &str) -> Result<()> {
        unimplemented!()
    }
}

impl Budgets for PgUsers {
    fn reserve_budget(
        &self,
        user_id: &str,
        day: &str,
        session_id: &str,
        amount: f64,
        limit: f64,
    ) -> Result<Reservation> {
        unimplemented!()
    }

    fn budget_precheck(
        &self,
        user_id: &str,
        day: &str,
        amount: f64,
        limit: f64,
    ) -> Result<Option<Reservation>> {
        unimplemented!()
    }

    fn settle_budget(&self, reservation: &str, actual: f64) -> Result<()> {
        unimplemented!()
    }

    fn spent(&self, user_id: &str, day: &str) -> Result<f64> {
        unimplemented!()
    }
}
