//! Accounts and the budget ledger: `Accounts` and `Budgets` of
//! store/users/mod.rs, statement for statement.

use super::{user_from, PgUsers, COLS};
use crate::error::{Error, Result};
use crate::store::now_rfc3339;
use crate::store::users::{last_admin_error, Accounts, Budgets, Reservation, Role, User};
use postgres::error::SqlState;
use postgres::Transaction;

impl Accounts for PgUsers {
    fn list(&self) -> Result<Vec<User>> {
        self.read("listing users in", |c| {
            let rows = c.query(
                &format!("SELECT {COLS} FROM users ORDER BY lower(username), username"),
                &[],
            )?;
            Ok(rows.iter().map(|r| user_from(r, 0)).collect())
        })
    }

    fn find(&self, username: &str) -> Result<Option<User>> {
        self.read("reading a user in", |c| {
            let row = c.query_opt(
                &format!("SELECT {COLS} FROM users WHERE lower(username) = lower($1)"),
                &[&username],
            )?;
            Ok(row.map(|r| user_from(&r, 0)))
        })
    }

    fn find_by_id(&self, id: &str) -> Result<Option<User>> {
        self.read_prepared("reading a user in", &BY_ID_SQL, |c, st| {
            Ok(c.query_opt(st, &[&id])?.map(|r| user_from(&r, 0)))
        })
    }

    fn password_hash(&self, id: &str) -> Result<Option<String>> {
        self.read("reading a user in", |c| {
            Ok(
                c.query_opt("SELECT password_hash FROM users WHERE id = $1", &[&id])?
                    .map(|r| r.get(0)),
            )
        })
    }

    fn insert(&self, username: &str, role: Role, password_hash: &str) -> Result<User> {
        let id = format!("u_{}", crate::crypto::random_hex(8));
        let now = now_rfc3339();
        let r = self.write("adding a user in", |tx| {
            tx.execute(
                "INSERT INTO users (id, username, password_hash, role, created_at, updated_at, password_changed_at)
                 VALUES ($1, $2, $3, $4, $5, $5, $5)",
                &[&id, &username, &password_hash, &role.as_str(), &now],
            )
            .map(Ok)
            .or_else(|e| match e.code() {
                Some(c) if *c == SqlState::UNIQUE_VIOLATION => Ok(Err(Error::conflict(format!(
                    "a user named {username:?} already exists"
                )))),
                _ => Err(e),
            })
        })?;
        r?;
        self.get(username)
    }

    fn set_password(
        &self,
        id: &str,
        hash: &str,
        must_change: bool,
    ) -> Result<Vec<(String, String)>> {
        let now = now_rfc3339();
        let (n, revoked) = self.write("changing a password in", |tx| {
            let n = tx.execute(
                "UPDATE users SET password_hash = $1, password_changed_at = $2, updated_at = $2,
                 token_version = token_version + 1, must_change_password = $4 WHERE id = $3",
                &[&hash, &now, &id, &must_change],
            )?;
            let revoked = if must_change && n > 0 {
                super::keys::revoke_all_returning(tx, id, "password_reset")?
            } else {
                Vec::new()
            };
            Ok((n, revoked))
        })?;
        if n == 0 {
            return Err(Error::not_found(format!("user {id} no longer exists")));
        }
        Ok(revoked)
    }

    fn set_role_and_disabled(
        &self,
        id: &str,
        role: Option<Role>,
        disabled: Option<bool>,
    ) -> Result<()> {
        let now = now_rfc3339();
        let demote = role.is_some_and(|r| r != Role::Admin);
        let disable = disabled == Some(true);
        let revoke = role.is_some() || disable;
        let sql = format!(
            "UPDATE users SET role = coalesce($1, role), disabled = coalesce($2, disabled), \
             updated_at = $3{} WHERE id = $4",
            if revoke {
                ", token_version = token_version + 1"
            } else {
                ""
            }
        );
        let n = self.write("changing a role or the disabled flag in", |tx| {
            if demote || disable {
                if let Some(name) = last_enabled_admin(tx, id)? {
                    let verb = if demote { "demote" } else { "disable" };
                    return Ok(Err(last_admin_error(verb, &name)));
                }
            }
            let n = tx.execute(&sql, &[&role.map(Role::as_str), &disabled, &now, &id])?;
            if revoke {
                super::keys::revoke_all_in(tx, id, "changing role and disabled flag")?;
            }
            Ok(Ok(n))
        })??;
        if n == 0 {
            return Err(Error::not_found(format!("user {id} no longer exists")));
        }
        Ok(())
    }

    fn record_login(&self, id: &str) -> Result<()> {
        let now = now_rfc3339();
        self.write("recording a login in", |tx| {
            tx.execute(
                "UPDATE users SET last_login_at = $1 WHERE id = $2",
                &[&now, &id],
            )
        })?;
        Ok(())
    }

    fn delete(&self, id: &str) -> Result<()> {
        let n = self.write("deleting a user in", |tx| {
            if let Some(name) = last_enabled_admin(tx, id)? {
                return Ok(Err(last_admin_error("delete", &name)));
            }
            for table in ["totp", "totp_recovery", "api_keys", "sso_identities"] {
                tx.execute(&format!("DELETE FROM {table} WHERE user_id = $1"), &[&id])?;
            }
            tx.execute("DELETE FROM users WHERE id = $1", &[&id])
                .map(Ok)
        })??;
        if n == 0 {
            return Err(Error::not_found(format!("user {id} no longer exists")));
        }
        Ok(())
    }

    fn connection_lost(&self) -> bool {
        self.is_closed()
    }
}

static BY_ID_SQL: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| format!("SELECT {COLS} FROM users WHERE id = $1"));

/// The username of `id` when it is the only enabled admin (read under the
/// store's lock, so the answer holds until the transaction commits).
fn last_enabled_admin(
    tx: &mut Transaction,
    id: &str,
) -> std::result::Result<Option<String>, postgres::Error> {
    Ok(tx
        .query_opt(
            "SELECT u.username FROM users u
             WHERE u.id = $1 AND u.role = 'admin' AND NOT u.disabled
               AND NOT EXISTS (SELECT 1 FROM users o
                               WHERE o.id <> $1 AND o.role = 'admin' AND NOT o.disabled)",
            &[&id],
        )?
        .map(|r| r.get(0)))
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
        let id = format!("sp_{}", crate::crypto::random_hex(8));
        let now = now_rfc3339();
        self.write("reserving budget in", |tx| {
            if let Some(refused) = budget_refusal(tx, user_id, day, amount, limit)? {
                return Ok(refused);
            }
            tx.execute(
                "INSERT INTO spend (id, user_id, day, session_id, reserved_usd, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[&id, &user_id, &day, &session_id, &amount, &now],
            )?;
            Ok(Reservation::Made(id.clone()))
        })
    }

    fn budget_precheck(
        &self,
        user_id: &str,
        day: &str,
        amount: f64,
        limit: f64,
    ) -> Result<Option<Reservation>> {
        self.read("reading spend in", |c| {
            let mut tx = c.transaction()?;
            let r = budget_refusal(&mut tx, user_id, day, amount, limit)?;
            tx.commit()?;
            Ok(r)
        })
    }

    fn settle_budget(&self, reservation: &str, actual: f64) -> Result<()> {
        let now = now_rfc3339();
        self.write("settling budget in", |tx| {
            tx.execute(
                "UPDATE spend SET actual_usd = $1, settled_at = $2 WHERE id = $3",
                &[&actual.max(0.0), &now, &reservation],
            )
        })?;
        Ok(())
    }

    fn spent(&self, user_id: &str, day: &str) -> Result<f64> {
        self.read("reading spend in", |c| {
            Ok(c.query_one(
                "SELECT COALESCE(sum(COALESCE(actual_usd, reserved_usd)), 0)::float8 FROM spend
                 WHERE user_id = $1 AND day = $2",
                &[&user_id, &day],
            )?
            .get(0))
        })
    }
}

/// `budget_refusal` of store/users/mod.rs: another turn's reservation is
/// open, or the day's spend leaves no room.
fn budget_refusal(
    tx: &mut Transaction,
    user_id: &str,
    day: &str,
    amount: f64,
    limit: f64,
) -> std::result::Result<Option<Reservation>, postgres::Error> {
    let held_since = crate::store::users::held_since();
    let open: i64 = tx
        .query_one(
            "SELECT count(*) FROM spend WHERE user_id = $1 AND settled_at IS NULL AND created_at > $2",
            &[&user_id, &held_since],
        )?
        .get(0);
    if open > 0 {
        return Ok(Some(Reservation::OtherTurnOpen));
    }
    let used: f64 = tx
        .query_one(
            "SELECT COALESCE(sum(COALESCE(actual_usd, reserved_usd)), 0)::float8 FROM spend
             WHERE user_id = $1 AND day = $2",
            &[&user_id, &day],
        )?
        .get(0);
    Ok(crate::store::users::no_room(used, amount, limit))
}
