//! Single sign-on in the fleet's database: users.db's identities, flows,
//! one-time codes and SSO logins one to one (store/users/sso.rs). A
//! `state` or a code is taken with `DELETE … RETURNING` inside a write
//! transaction of the store, so it is used once across every replica.

use super::{user_from, PgUsers, COLS};
use crate::error::{Error, Result};
use crate::store::now_rfc3339;
use crate::store::users::*;
use std::sync::atomic::{AtomicBool, Ordering};

impl PgUsers {
    /// [`PgUsers::write`], with a UNIQUE violation in `f` (SQLSTATE 23505)
    /// answered by `conflict` as users.db answers its "UNIQUE constraint
    /// failed"; the transaction is rolled back either way.
    fn write_unique<T: Send>(
        &self,
        what: &str,
        conflict: impl FnOnce() -> Error,
        f: impl FnOnce(&mut postgres::Transaction) -> std::result::Result<T, postgres::Error> + Send,
    ) -> Result<T> {
        let unique = AtomicBool::new(false);
        let r = self.write(what, |tx| {
            f(tx).inspect_err(|e| {
                if e.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION) {
                    unique.store(true, Ordering::Relaxed);
                }
            })
        });
        match r {
            Err(_) if unique.load(Ordering::Relaxed) => Err(conflict()),
            r => r,
        }
    }
}

impl SsoStore for PgUsers {
    fn begin_sso_flow(
        &self,
        f: &NewFlow,
        now: f64,
        ttl: f64,
        window: f64,
        cap: i64,
    ) -> Result<bool> {
        let (state, binding, grant): (&[u8], &[u8], &[u8]) =
            (&f.state_hash[..], &f.binding_hash[..], &f.grant_binding[..]);
        let cli_port = f.cli.map(|c| i64::from(c.0));
        let cli_state = f.cli.map(|c| c.1);
        let (since, expires_at) = (now - window, now + ttl);
        self.write("starting a single sign-on in", |tx| {
            tx.execute("DELETE FROM sso_flows WHERE expires_at < $1", &[&now])?;
            tx.execute("DELETE FROM sso_grants WHERE expires_at < $1", &[&now])?;
            let recent: i64 = tx
                .query_one(
                    "SELECT count(*) FROM sso_flows WHERE client = $1 AND created_at > $2",
                    &[&f.client, &since],
                )?
                .get(0);
            if recent >= cap {
                return Ok(false);
            }
            tx.execute(
                "INSERT INTO sso_flows (state_hash, binding_hash, grant_binding, nonce, verifier, client, cli_port, cli_state, created_at, expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                &[
                    &state,
                    &binding,
                    &grant,
                    &f.nonce,
                    &f.verifier,
                    &f.client,
                    &cli_port,
                    &cli_state,
                    &now,
                    &expires_at,
                ],
            )?;
            Ok(true)
        })
    }

    fn take_sso_flow(&self, state_hash: &[u8; 32], now: f64) -> Result<Option<Flow>> {
        let what = "finishing a single sign-on in";
        let state: &[u8] = &state_hash[..];
        let row = self.write(what, |tx| {
            tx.query_opt(
                "DELETE FROM sso_flows WHERE state_hash = $1
                 RETURNING binding_hash, grant_binding, nonce, verifier, cli_port, cli_state, expires_at",
                &[&state],
            )
        })?;
        let Some(r) = row else { return Ok(None) };
        let port: Option<i64> = r.get(4);
        let port = match port.map(u16::try_from) {
            None => None,
            Some(Ok(p)) => Some(p),
            Some(Err(_)) => {
                return Err(Error::internal(format!(
                    "{what} PostgreSQL at {}: invalid cli_port {port:?}",
                    self.target()
                )))
            }
        };
        let cli_state: Option<String> = r.get(5);
        Ok(Some(Flow {
            binding_hash: r.get(0),
            grant_binding: r.get(1),
            nonce: r.get(2),
            verifier: r.get(3),
            cli: port.zip(cli_state),
            expired: r.get::<_, f64>(6) < now,
        }))
    }

    fn insert_sso_grant(&self, code_hash: &[u8; 32], g: &Grant, expires_at: f64) -> Result<()> {
        let code: &[u8] = &code_hash[..];
        self.write("storing a single sign-on code in", |tx| {
            tx.execute(
                "INSERT INTO sso_grants (code_hash, binding_hash, user_id, issuer, subject, provider_access, provider_refresh, expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[
                    &code,
                    &g.binding_hash,
                    &g.user_id,
                    &g.issuer,
                    &g.subject,
                    &g.provider_access,
                    &g.provider_refresh,
                    &expires_at,
                ],
            )
        })?;
        Ok(())
    }

    fn take_sso_grant(&self, code_hash: &[u8; 32], now: f64) -> Result<Option<Grant>> {
        let code: &[u8] = &code_hash[..];
        let row = self.write("redeeming a single sign-on code in", |tx| {
            tx.query_opt(
                "DELETE FROM sso_grants WHERE code_hash = $1
                 RETURNING binding_hash, user_id, issuer, subject, provider_access, provider_refresh, expires_at",
                &[&code],
            )
        })?;
        Ok(row.map(|r| Grant {
            binding_hash: r.get(0),
            user_id: r.get(1),
            issuer: r.get(2),
            subject: r.get(3),
            provider_access: r.get(4),
            provider_refresh: r.get(5),
            expired: r.get::<_, f64>(6) < now,
        }))
    }

    fn find_by_identity(&self, issuer: &str, subject: &str) -> Result<Option<User>> {
        self.read("reading a single sign-on identity in", |c| {
            Ok(c.query_opt(
                &format!(
                    "SELECT {COLS} FROM users WHERE id = (SELECT user_id FROM sso_identities
                     WHERE issuer = $1 AND subject = $2)"
                ),
                &[&issuer, &subject],
            )?
            .map(|r| user_from(&r, 0)))
        })
    }

    fn identity_of(&self, user_id: &str) -> Result<Option<Identity>> {
        self.read("reading a single sign-on identity in", |c| {
            Ok(c.query_opt(
                "SELECT issuer, subject, linked_at, linked_by, last_login_at
                 FROM sso_identities WHERE user_id = $1",
                &[&user_id],
            )?
            .map(|r| Identity {
                issuer: r.get(0),
                subject: r.get(1),
                linked_at: r.get(2),
                linked_by: r.get(3),
                last_login_at: r.get(4),
            }))
        })
    }

    fn link_identity(&self, user_id: &str, issuer: &str, subject: &str, by: &str) -> Result<()> {
        let now = now_rfc3339();
        self.write_unique(
            "linking a single sign-on identity in",
            || {
                Error::conflict(
                    "that provider subject or that account is linked already (`user unlink` first)",
                )
            },
            |tx| {
                tx.execute(
                    "INSERT INTO sso_identities (issuer, subject, user_id, linked_at, linked_by)
                     VALUES ($1, $2, $3, $4, $5)",
                    &[&issuer, &subject, &user_id, &now, &by],
                )
            },
        )?;
        Ok(())
    }

    fn unlink_identity(&self, user_id: &str, reason: &str) -> Result<usize> {
        let now = now_rfc3339();
        let n = self.write("unlinking a single sign-on identity in", |tx| {
            tx.execute(
                "UPDATE refresh_tokens SET revoked_at = $1, revoked_reason = $2
                 WHERE revoked_at IS NULL AND family_id IN (SELECT family_id FROM sso_logins WHERE user_id = $3)",
                &[&now, &reason, &user_id],
            )?;
            tx.execute("DELETE FROM sso_logins WHERE user_id = $1", &[&user_id])?;
            tx.execute("DELETE FROM sso_identities WHERE user_id = $1", &[&user_id])
        })?;
        Ok(n as usize)
    }

    fn insert_sso_user(
        &self,
        username: &str,
        role: Role,
        issuer: &str,
        subject: &str,
    ) -> Result<User> {
        let id = format!("u_{}", crate::crypto::random_hex(8));
        let now = now_rfc3339();
        // The unique index on lower(username) refuses a name that differs
        // from an existing account's only in case, as users.db's COLLATE
        // NOCASE does; the account is read back in the same transaction.
        self.write_unique(
            "adding a single sign-on user in",
            || {
                Error::conflict(format!(
                    "an account named {username:?} already exists, or this provider user is linked already"
                ))
            },
            |tx| {
                let user = tx.query_one(
                    &format!(
                        "INSERT INTO users (id, username, password_hash, role, created_at, updated_at, password_changed_at)
                         VALUES ($1, $2, $3, $4, $5, $5, $5) RETURNING {COLS}"
                    ),
                    &[&id, &username, &SSO_PASSWORD_HASH, &role.as_str(), &now],
                )?;
                tx.execute(
                    "INSERT INTO sso_identities (issuer, subject, user_id, linked_at, linked_by)
                     VALUES ($1, $2, $3, $4, 'auto_create')",
                    &[&issuer, &subject, &id, &now],
                )?;
                Ok(user_from(&user, 0))
            },
        )
    }

    fn insert_sso_login(&self, l: &SsoLogin) -> Result<()> {
        let now = now_rfc3339();
        self.write("recording a single sign-on in", |tx| {
            tx.execute(
                "UPDATE sso_identities SET last_login_at = $1 WHERE issuer = $2 AND subject = $3",
                &[&now, &l.issuer, &l.subject],
            )?;
            tx.execute(
                "INSERT INTO sso_logins (family_id, user_id, issuer, subject, provider_access, provider_refresh, checked_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[
                    &l.family_id,
                    &l.user_id,
                    &l.issuer,
                    &l.subject,
                    &l.provider_access,
                    &l.provider_refresh,
                    &now,
                ],
            )
        })?;
        Ok(())
    }

    fn sso_login_of_refresh(&self, token_hash: &[u8; 32]) -> Result<Option<SsoLogin>> {
        let hash: &[u8] = &token_hash[..];
        self.read("reading a single sign-on login in", |c| {
            Ok(c.query_opt(
                "SELECT s.family_id, s.user_id, s.issuer, s.subject, s.provider_access, s.provider_refresh
                 FROM refresh_tokens r JOIN sso_logins s ON s.family_id = r.family_id
                 WHERE r.token_hash = $1 AND r.used_at IS NULL AND r.revoked_at IS NULL",
                &[&hash],
            )?
            .map(|r| SsoLogin {
                family_id: r.get(0),
                user_id: r.get(1),
                issuer: r.get(2),
                subject: r.get(3),
                provider_access: r.get(4),
                provider_refresh: r.get(5),
            }))
        })
    }

    fn is_sso_family(&self, family_id: &str) -> Result<bool> {
        self.read("reading a single sign-on login in", |c| {
            Ok(c.query_one(
                "SELECT EXISTS (SELECT 1 FROM sso_logins WHERE family_id = $1)",
                &[&family_id],
            )?
            .get(0))
        })
    }

    fn update_sso_login(
        &self,
        family_id: &str,
        access: Option<&str>,
        refresh: Option<&str>,
    ) -> Result<()> {
        let now = now_rfc3339();
        self.write("recording a single sign-on re-check in", |tx| {
            tx.execute(
                "UPDATE sso_logins SET provider_access = $1, provider_refresh = $2, checked_at = $3
                 WHERE family_id = $4",
                &[&access, &refresh, &now, &family_id],
            )
        })?;
        Ok(())
    }

    fn purge_sso(&self, now: f64) -> Result<i64> {
        self.write("purging single sign-on rows in", |tx| {
            let a = tx.execute(
                "DELETE FROM sso_logins WHERE family_id NOT IN (SELECT family_id FROM refresh_tokens WHERE revoked_at IS NULL)",
                &[],
            )?;
            let b = tx.execute("DELETE FROM sso_flows WHERE expires_at < $1", &[&now])?;
            let c = tx.execute("DELETE FROM sso_grants WHERE expires_at < $1", &[&now])?;
            Ok((a + b + c) as i64)
        })
    }
}
