//! Single sign-on in users.db: identities (a provider's subject ↔ an
//! account), logins on their way through the provider, one-time codes, and
//! each SSO login's provider tokens. Secrets of a flow are looked up by
//! their SHA-256 and taken with `DELETE … RETURNING` inside one write
//! transaction, so a `state` or a code is used once even across `serve`
//! processes. The rules live in ops/sso.rs.

use super::{from_row, now_rfc3339, with_immediate, Accounts, Role, SqliteUsers, User, COLS};
use crate::error::{Error, Result};
use rusqlite::{params, OptionalExtension};

/// The password hash of an account made by single sign-on: not a PHC
/// string, so no password ever verifies against it (an admin may still set
/// one with `user passwd`).
pub const SSO_PASSWORD_HASH: &str = "!sso";

/// A login on its way through the provider (`sso_flows`).
pub struct NewFlow<'a> {
    pub state_hash: [u8; 32],
    /// SHA-256 of the cookie of the browser that started it (the callback
    /// must come with it: no login made in one browser completes in another).
    pub binding_hash: [u8; 32],
    /// SHA-256 of what redeeming the one-time code needs: the same cookie,
    /// or for a CLI login its verifier (the S256 challenge, decoded).
    pub grant_binding: [u8; 32],
    pub nonce: &'a str,
    pub verifier: &'a str,
    pub client: &'a str,
    /// A CLI login: where its loopback listener waits, and its own state.
    pub cli: Option<(u16, &'a str)>,
}

/// A flow as taken back at the callback.
#[derive(Debug)]
pub struct Flow {
    pub binding_hash: Vec<u8>,
    pub grant_binding: Vec<u8>,
    pub nonce: String,
    pub verifier: String,
    pub cli: Option<(u16, String)>,
    pub expired: bool,
}

/// A one-time code's login, as redeemed.
#[derive(Debug)]
pub struct Grant {
    pub binding_hash: Vec<u8>,
    pub user_id: String,
    pub issuer: String,
    pub subject: String,
    pub provider_access: Option<String>,
    pub provider_refresh: Option<String>,
    pub expired: bool,
}

/// The link between an account and a provider subject.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Identity {
    pub issuer: String,
    pub subject: String,
    pub linked_at: String,
    pub linked_by: String,
    pub last_login_at: Option<String>,
}

/// An SSO login (refresh-token family) and its provider tokens.
#[derive(Debug)]
pub struct SsoLogin {
    pub family_id: String,
    pub user_id: String,
    pub issuer: String,
    pub subject: String,
    pub provider_access: Option<String>,
    pub provider_refresh: Option<String>,
}

pub trait SsoStore {
    /// Store a new flow unless `client` started `cap` or more in the last
    /// `window` seconds (false: refused). Expired flows and codes go first.
    fn begin_sso_flow(
        &self,
        f: &NewFlow,
        now: f64,
        ttl: f64,
        window: f64,
        cap: i64,
    ) -> Result<bool>;

    /// Take the flow of a `state` (once: it is deleted).
    fn take_sso_flow(&self, state_hash: &[u8; 32], now: f64) -> Result<Option<Flow>>;

    /// Store a one-time code for a finished provider login.
    fn insert_sso_grant(&self, code_hash: &[u8; 32], g: &Grant, expires_at: f64) -> Result<()>;

    /// Take the login of a one-time code (once: it is deleted).
    fn take_sso_grant(&self, code_hash: &[u8; 32], now: f64) -> Result<Option<Grant>>;

    /// The account linked to a provider subject.
    fn find_by_identity(&self, issuer: &str, subject: &str) -> Result<Option<User>>;

    /// The provider identity linked to an account.
    fn identity_of(&self, user_id: &str) -> Result<Option<Identity>>;

    /// Link an account to a provider subject (`by`: `admin` or
    /// `auto_create`). A subject or an account linked already is a conflict.
    fn link_identity(&self, user_id: &str, issuer: &str, subject: &str, by: &str) -> Result<()>;

    /// Unlink an account; the number of links removed (0 or 1). Its SSO
    /// logins end with it.
    fn unlink_identity(&self, user_id: &str, reason: &str) -> Result<usize>;

    /// A new account made at its first single sign-on, linked in the same
    /// transaction (a race of two first logins makes one account).
    fn insert_sso_user(
        &self,
        username: &str,
        role: Role,
        issuer: &str,
        subject: &str,
    ) -> Result<User>;

    /// Record an SSO login: the identity's last login, the family's
    /// provider tokens.
    fn insert_sso_login(&self, l: &SsoLogin) -> Result<()>;

    /// The SSO login a live (unused, unrevoked) refresh token belongs to.
    fn sso_login_of_refresh(&self, token_hash: &[u8; 32]) -> Result<Option<SsoLogin>>;

    /// Whether a refresh-token family is an SSO login.
    fn is_sso_family(&self, family_id: &str) -> Result<bool>;

    /// The provider tokens after a successful re-check.
    fn update_sso_login(
        &self,
        family_id: &str,
        access: Option<&str>,
        refresh: Option<&str>,
    ) -> Result<()>;

    /// Bounded growth: SSO logins whose family has no token left, expired
    /// flows and codes. Rows removed.
    fn purge_sso(&self, now: f64) -> Result<i64>;
}

impl SsoStore for SqliteUsers {
    fn begin_sso_flow(
        &self,
        f: &NewFlow,
        now: f64,
        ttl: f64,
        window: f64,
        cap: i64,
    ) -> Result<bool> {
        with_immediate(&self.conn, &self.path, "starting a single sign-on", |tx| {
            tx.execute("DELETE FROM sso_flows WHERE expires_at < ?1", [now])?;
            tx.execute("DELETE FROM sso_grants WHERE expires_at < ?1", [now])?;
            let recent: i64 = tx.query_row(
                "SELECT count(*) FROM sso_flows WHERE client = ?1 AND created_at > ?2",
                params![f.client, now - window],
                |r| r.get(0),
            )?;
            if recent >= cap {
                return Ok(false);
            }
            tx.execute(
                "INSERT INTO sso_flows (state_hash, binding_hash, grant_binding, nonce, verifier, client, cli_port, cli_state, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    &f.state_hash[..],
                    &f.binding_hash[..],
                    &f.grant_binding[..],
                    f.nonce,
                    f.verifier,
                    f.client,
                    f.cli.map(|c| c.0),
                    f.cli.map(|c| c.1),
                    now,
                    now + ttl
                ],
            )?;
            Ok(true)
        })
    }

    fn take_sso_flow(&self, state_hash: &[u8; 32], now: f64) -> Result<Option<Flow>> {
        with_immediate(&self.conn, &self.path, "finishing a single sign-on", |tx| {
            tx.query_row(
                "DELETE FROM sso_flows WHERE state_hash = ?1
                 RETURNING binding_hash, grant_binding, nonce, verifier, cli_port, cli_state, expires_at",
                [&state_hash[..]],
                |r| {
                    let port: Option<u16> = r.get(4)?;
                    let cli_state: Option<String> = r.get(5)?;
                    Ok(Flow {
                        binding_hash: r.get(0)?,
                        grant_binding: r.get(1)?,
                        nonce: r.get(2)?,
                        verifier: r.get(3)?,
                        cli: port.zip(cli_state),
                        expired: r.get::<_, f64>(6)? < now,
                    })
                },
            )
            .optional()
        })
    }

    fn insert_sso_grant(&self, code_hash: &[u8; 32], g: &Grant, expires_at: f64) -> Result<()> {
        with_immediate(
            &self.conn,
            &self.path,
            "storing a single sign-on code",
            |tx| {
                tx.execute(
                "INSERT INTO sso_grants (code_hash, binding_hash, user_id, issuer, subject, provider_access, provider_refresh, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    &code_hash[..],
                    g.binding_hash,
                    g.user_id,
                    g.issuer,
                    g.subject,
                    g.provider_access,
                    g.provider_refresh,
                    expires_at
                ],
            )
            },
        )?;
        Ok(())
    }

    fn take_sso_grant(&self, code_hash: &[u8; 32], now: f64) -> Result<Option<Grant>> {
        with_immediate(
            &self.conn,
            &self.path,
            "redeeming a single sign-on code",
            |tx| {
                tx.query_row(
                "DELETE FROM sso_grants WHERE code_hash = ?1
                 RETURNING binding_hash, user_id, issuer, subject, provider_access, provider_refresh, expires_at",
                [&code_hash[..]],
                |r| {
                    Ok(Grant {
                        binding_hash: r.get(0)?,
                        user_id: r.get(1)?,
                        issuer: r.get(2)?,
                        subject: r.get(3)?,
                        provider_access: r.get(4)?,
                        provider_refresh: r.get(5)?,
                        expired: r.get::<_, f64>(6)? < now,
                    })
                },
            )
            .optional()
            },
        )
    }

    fn find_by_identity(&self, issuer: &str, subject: &str) -> Result<Option<User>> {
        self.conn
            .query_row(
                &format!(
                    "SELECT {COLS} FROM users WHERE id = (SELECT user_id FROM sso_identities
                     WHERE issuer = ?1 AND subject = ?2)"
                ),
                params![issuer, subject],
                from_row,
            )
            .optional()
            .map_err(self.err("reading a single sign-on identity"))
    }

    fn identity_of(&self, user_id: &str) -> Result<Option<Identity>> {
        self.conn
            .query_row(
                "SELECT issuer, subject, linked_at, linked_by, last_login_at
                 FROM sso_identities WHERE user_id = ?1",
                [user_id],
                |r| {
                    Ok(Identity {
                        issuer: r.get(0)?,
                        subject: r.get(1)?,
                        linked_at: r.get(2)?,
                        linked_by: r.get(3)?,
                        last_login_at: r.get(4)?,
                    })
                },
            )
            .optional()
            .map_err(self.err("reading a single sign-on identity"))
    }

    fn link_identity(&self, user_id: &str, issuer: &str, subject: &str, by: &str) -> Result<()> {
        let r = with_immediate(
            &self.conn,
            &self.path,
            "linking a single sign-on identity",
            |tx| {
                tx.execute(
                    "INSERT INTO sso_identities (issuer, subject, user_id, linked_at, linked_by)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![issuer, subject, user_id, now_rfc3339(), by],
                )
            },
        );
        match r {
            Ok(_) => Ok(()),
            Err(e) if e.message.contains("UNIQUE constraint failed") => Err(Error::conflict(
                "that provider subject or that account is linked already (`user unlink` first)",
            )),
            Err(e) => Err(e),
        }
    }

    fn unlink_identity(&self, user_id: &str, reason: &str) -> Result<usize> {
        let now = now_rfc3339();
        with_immediate(
            &self.conn,
            &self.path,
            "unlinking a single sign-on identity",
            |tx| {
                tx.execute(
                "UPDATE refresh_tokens SET revoked_at = ?1, revoked_reason = ?2
                 WHERE revoked_at IS NULL AND family_id IN (SELECT family_id FROM sso_logins WHERE user_id = ?3)",
                params![now, reason, user_id],
            )?;
                tx.execute("DELETE FROM sso_logins WHERE user_id = ?1", [user_id])?;
                tx.execute("DELETE FROM sso_identities WHERE user_id = ?1", [user_id])
            },
        )
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
        let r = with_immediate(
            &self.conn,
            &self.path,
            "adding a single sign-on user",
            |tx| {
                tx.execute(
                "INSERT INTO users (id, username, password_hash, role, created_at, updated_at, password_changed_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?5)",
                params![id, username, SSO_PASSWORD_HASH, role.as_str(), now],
            )?;
                tx.execute(
                    "INSERT INTO sso_identities (issuer, subject, user_id, linked_at, linked_by)
                 VALUES (?1, ?2, ?3, ?4, 'auto_create')",
                    params![issuer, subject, id, now],
                )
            },
        );
        match r {
            Ok(_) => {}
            Err(e) if e.message.contains("UNIQUE constraint failed") => {
                return Err(Error::conflict(format!(
                    "an account named {username:?} already exists, or this provider user is linked already"
                )))
            }
            Err(e) => return Err(e),
        }
        self.get(username)
    }

    fn insert_sso_login(&self, l: &SsoLogin) -> Result<()> {
        let now = now_rfc3339();
        with_immediate(&self.conn, &self.path, "recording a single sign-on", |tx| {
            tx.execute(
                "UPDATE sso_identities SET last_login_at = ?1 WHERE issuer = ?2 AND subject = ?3",
                params![now, l.issuer, l.subject],
            )?;
            tx.execute(
                "INSERT INTO sso_logins (family_id, user_id, issuer, subject, provider_access, provider_refresh, checked_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![l.family_id, l.user_id, l.issuer, l.subject, l.provider_access, l.provider_refresh, now],
            )
        })?;
        Ok(())
    }

    fn sso_login_of_refresh(&self, token_hash: &[u8; 32]) -> Result<Option<SsoLogin>> {
        self.conn
            .query_row(
                "SELECT s.family_id, s.user_id, s.issuer, s.subject, s.provider_access, s.provider_refresh
                 FROM refresh_tokens r JOIN sso_logins s ON s.family_id = r.family_id
                 WHERE r.token_hash = ?1 AND r.used_at IS NULL AND r.revoked_at IS NULL",
                [&token_hash[..]],
                |r| {
                    Ok(SsoLogin {
                        family_id: r.get(0)?,
                        user_id: r.get(1)?,
                        issuer: r.get(2)?,
                        subject: r.get(3)?,
                        provider_access: r.get(4)?,
                        provider_refresh: r.get(5)?,
                    })
                },
            )
            .optional()
            .map_err(self.err("reading a single sign-on login"))
    }

    fn is_sso_family(&self, family_id: &str) -> Result<bool> {
        self.conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM sso_logins WHERE family_id = ?1)",
                [family_id],
                |r| r.get(0),
            )
            .map_err(self.err("reading a single sign-on login"))
    }

    fn update_sso_login(
        &self,
        family_id: &str,
        access: Option<&str>,
        refresh: Option<&str>,
    ) -> Result<()> {
        with_immediate(
            &self.conn,
            &self.path,
            "recording a single sign-on re-check",
            |tx| {
                tx.execute(
                "UPDATE sso_logins SET provider_access = ?1, provider_refresh = ?2, checked_at = ?3
                 WHERE family_id = ?4",
                params![access, refresh, now_rfc3339(), family_id],
            )
            },
        )?;
        Ok(())
    }

    fn purge_sso(&self, now: f64) -> Result<i64> {
        with_immediate(
            &self.conn,
            &self.path,
            "purging single sign-on rows",
            |tx| {
                let a = tx.execute(
                "DELETE FROM sso_logins WHERE family_id NOT IN (SELECT family_id FROM refresh_tokens WHERE revoked_at IS NULL)",
                [],
            )?;
                let b = tx.execute("DELETE FROM sso_flows WHERE expires_at < ?1", [now])?;
                let c = tx.execute("DELETE FROM sso_grants WHERE expires_at < ?1", [now])?;
                Ok((a + b + c) as i64)
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::users::UserStore;

    fn store() -> (tempfile::TempDir, UserStore) {
        let dir = tempfile::tempdir().unwrap();
        let s = UserStore::open(&dir.path().join("users.db")).unwrap();
        (dir, s)
    }

    fn flow(state: u8, client: &str) -> NewFlow<'_> {
        NewFlow {
            state_hash: [state; 32],
            binding_hash: [1; 32],
            grant_binding: [2; 32],
            nonce: "n",
            verifier: "v",
            client,
            cli: None,
        }
    }

    #[test]
    fn a_state_is_taken_once_and_starts_are_capped_per_client() {
        let (_d, s) = store();
        assert!(s
            .begin_sso_flow(&flow(7, "10.0.0.1"), 100.0, 600.0, 600.0, 2)
            .unwrap());
        assert!(s
            .begin_sso_flow(&flow(8, "10.0.0.1"), 101.0, 600.0, 600.0, 2)
            .unwrap());
        assert!(!s
            .begin_sso_flow(&flow(9, "10.0.0.1"), 102.0, 600.0, 600.0, 2)
            .unwrap());
        assert!(s
            .begin_sso_flow(&flow(9, "10.0.0.2"), 102.0, 600.0, 600.0, 2)
            .unwrap());
        let f = s.take_sso_flow(&[7; 32], 200.0).unwrap().expect("the flow");
        assert_eq!((f.nonce.as_str(), f.expired), ("n", false));
        assert_eq!(
            (f.binding_hash, f.grant_binding),
            (vec![1; 32], vec![2; 32])
        );
        assert!(
            s.take_sso_flow(&[7; 32], 200.0).unwrap().is_none(),
            "a state works once"
        );
        assert!(s.take_sso_flow(&[8; 32], 800.0).unwrap().unwrap().expired);
    }

    #[test]
    fn a_code_is_redeemed_once_and_a_subject_links_one_account() {
        let (_d, s) = store();
        let u = s
            .insert_sso_user("alice", Role::User, "https://id", "sub-a")
            .unwrap();
        assert_eq!(
            s.find_by_identity("https://id", "sub-a")
                .unwrap()
                .unwrap()
                .id,
            u.id
        );
        assert!(s
            .find_by_identity("https://other", "sub-a")
            .unwrap()
            .is_none());
        assert_eq!(
            s.password_hash(&u.id).unwrap().as_deref(),
            Some(SSO_PASSWORD_HASH)
        );
        // The same subject cannot be a second account; the account cannot get a second link.
        assert!(s
            .insert_sso_user("alice2", Role::User, "https://id", "sub-a")
            .is_err());
        assert!(
            s.find("alice2").unwrap().is_none(),
            "a refused link left an account"
        );
        assert!(s
            .link_identity(&u.id, "https://id", "sub-b", "admin")
            .is_err());
        let g = Grant {
            binding_hash: vec![3; 32],
            user_id: u.id.clone(),
            issuer: "https://id".into(),
            subject: "sub-a".into(),
            provider_access: Some("at".into()),
            provider_refresh: None,
            expired: false,
        };
        s.insert_sso_grant(&[5; 32], &g, 1000.0).unwrap();
        let got = s.take_sso_grant(&[5; 32], 999.0).unwrap().unwrap();
        assert!(!got.expired && got.provider_access.as_deref() == Some("at"));
        assert!(
            s.take_sso_grant(&[5; 32], 999.0).unwrap().is_none(),
            "a code works once"
        );
        assert_eq!(s.unlink_identity(&u.id, "test").unwrap(), 1);
        assert!(s.find_by_identity("https://id", "sub-a").unwrap().is_none());
    }
}
