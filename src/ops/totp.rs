//! Two-factor login: TOTP (RFC 6238: HMAC-SHA-1, 6 digits, 30-second steps,
//! one step of clock skew either way) and one-time recovery codes. An
//! enrolment is pending until confirmed with a code from the authenticator,
//! so a mistyped secret never locks anyone out. Codes are single-use (the
//! highest accepted step is stored) and capped per account across every
//! client address ([`MAX_CODE_CHECKS`]); confirming ends the account's
//! earlier logins; every change is audited. Used by `user totp …`, the
//! login route and `/api/me/totp*`.

use crate::app::App;
use crate::config::Config;
use crate::crypto::ct_eq;
use crate::error::{Error, Result};
use crate::store::events::EventKind;
use crate::store::users::{Role, User, UserStore};
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use totp_rs::{Algorithm, TOTP};

/// The issuer authenticator apps show.
pub const ISSUER: &str = "hermes-operator";
const STEP_SECS: u64 = 30;
const RECOVERY_CODES: usize = 10;

/// Second-factor codes checked per account (login codes, recovery codes and
/// enrolment confirmations, wrong or pending) within [`CODE_WINDOW_SECS`],
/// from every client address together: beyond it a check is refused (429)
/// until the oldest ages out. The password throttle is per address, so
/// without this many addresses could guess codes in parallel (60 addresses
/// checked 287 codes in 26 s). Ten per 15 minutes leave a guesser about a
/// 1 in 33,000 chance per window (3 codes in a million are valid at a time);
/// only someone who already has the password (or, for confirmation, a
/// login) gets as far as a code, and `user unlock` clears the count.
pub const MAX_CODE_CHECKS: i64 = 10;
pub const CODE_WINDOW_SECS: f64 = 15.0 * 60.0;

/// What `user totp enable` shows once: the secret (as an otpauth URI and in
/// base32) and the recovery codes.
#[derive(Debug, Serialize)]
pub struct Enrolment {
    pub uri: String,
    pub secret: String,
    pub recovery_codes: Vec<String>,
}

/// The outcome of the second factor at login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecondFactor {
    /// No confirmed enrolment.
    NotEnrolled,
    /// A fresh code, or an unused recovery code (`recovery_left` then says
    /// how many remain).
    Passed { recovery_left: Option<i64> },
    /// Enrolled, but no code was sent.
    Missing,
    /// A wrong, reused or expired code.
    Wrong,
    /// Not checked: the account's codes are capped ([`MAX_CODE_CHECKS`]).
    Throttled { retry_after_secs: u64 },
}

/// A code check refused by the per-account cap: try again after this long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManyCodes {
    pub retry_after_secs: u64,
}

/// Reserve one code check for `u` against [`MAX_CODE_CHECKS`]: the id to
/// finish, or the refusal.
fn reserve_code_check(
    store: &UserStore,
    u: &User,
) -> Result<std::result::Result<i64, TooManyCodes>> {
    let now = chrono::Utc::now().timestamp_micros() as f64 / 1e6;
    Ok(store
        .reserve_code_check(&u.id, now, CODE_WINDOW_SECS, MAX_CODE_CHECKS)?
        .map_err(|retry_after_secs| TooManyCodes { retry_after_secs }))
}

fn totp(secret: Vec<u8>, account: &str) -> Result<TOTP> {
    TOTP::new(
        Algorithm::SHA1,
        6,
        1,
        STEP_SECS,
        secret,
        Some(ISSUER.to_string()),
        // The account label may not contain ':' (usernames cannot).
        account.to_string(),
    )
    .map_err(|e| Error::internal(format!("TOTP parameters: {e}")))
}

fn now_secs() -> u64 {
    chrono::Utc::now().timestamp().max(0) as u64
}

/// `XXXX-XXXX-XXXX-XXXX` from the base32 alphabet: 80 random bits.
fn new_recovery_code() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let bytes: [u8; 16] = rand::random();
    let chars: Vec<char> = bytes
        .iter()
        .map(|b| ALPHABET[(*b & 31) as usize] as char)
        .collect();
    chars
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-")
}

/// Recovery codes are compared by the SHA-256 of their letters (case,
/// dashes and spaces ignored).
fn recovery_hash(code: &str) -> [u8; 32] {
    let norm: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    Sha256::digest(norm.as_bytes()).into()
}

/// Whether `role` must log in with a second factor (`auth.require_totp`).
pub fn required_for(config: &Config, role: Role) -> bool {
    config.auth.require_totp.iter().any(|r| r == role.as_str())
}

/// Start an enrolment for `username` (replacing a pending one). Refused
/// while a confirmed one exists: `user totp disable` first.
pub fn enable(app: &App, username: &str) -> Result<Enrolment> {
    let store = app.users()?;
    let u = store.get(username)?;
    let secret: [u8; 20] = rand::random();
    let t = totp(secret.to_vec(), &u.username)?;
    let codes: Vec<String> = (0..RECOVERY_CODES).map(|_| new_recovery_code()).collect();
    let hashes: Vec<[u8; 32]> = codes.iter().map(|c| recovery_hash(c)).collect();
    if !store.totp_begin(&u.id, &secret, &hashes)? {
        return Err(
            Error::conflict(format!("{} already has two-factor login", u.username)).hint(format!(
                "`hermes-operator user totp disable {}` first to enrol a new authenticator",
                u.username
            )),
        );
    }
    app.record(
        app.event(
            EventKind::UserChanged,
            json!({"username": u.username, "change": "totp_enrolment_started"}),
        )
        .user(&u.id),
    )?;
    Ok(Enrolment {
        uri: t.get_url(),
        secret: t.get_secret_base32(),
        recovery_codes: codes,
    })
}

/// The time step `code` is valid for now (±1 step), if any.
fn matching_step(t: &TOTP, code: &str) -> Option<i64> {
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now = now_secs() / STEP_SECS;
    (now.saturating_sub(1)..=now + 1)
        .find(|s| ct_eq(t.generate(s * STEP_SECS).as_bytes(), code.as_bytes()))
        .map(|s| s as i64)
}

/// Confirm a pending enrolment with a code from the authenticator: from now
/// on logins need a code, and every earlier token of the account stops
/// working (token version): logins made with the password alone end.
/// Checks count against the per-account cap; a wrong code or a refusal is
/// audited as `login_failed` (`client`: the address, or `cli`).
pub fn confirm(
    app: &App,
    username: &str,
    code: &str,
    client: &str,
) -> Result<std::result::Result<(), TooManyCodes>> {
    let store = app.users()?;
    let u = store.get(username)?;
    let row = store.totp_get(&u.id)?.ok_or_else(|| {
        Error::not_found(format!("{} has no two-factor enrolment", u.username)).hint(format!(
            "`hermes-operator user totp enable {}` first",
            u.username
        ))
    })?;
    if row.confirmed {
        return Err(Error::conflict(format!(
            "{}'s two-factor login is already confirmed",
            u.username
        )));
    }
    let failed = |reason: &str| {
        app.record(
            app.event(
                EventKind::LoginFailed,
                json!({"username": u.username, "client": client, "reason": reason,
                       "via": "totp_confirm"}),
            )
            .user(&u.id),
        )
    };
    let check = match reserve_code_check(&store, &u)? {
        Ok(id) => id,
        Err(refused) => {
            failed("totp_throttled")?;
            return Ok(Err(refused));
        }
    };
    let t = totp(row.secret, &u.username)?;
    let ok = match matching_step(&t, code) {
        Some(step) => store.totp_confirm(&u.id, step)?,
        None => false,
    };
    store.finish_code_check(check, ok)?;
    if !ok {
        failed("bad_totp")?;
        return Err(Error::usage(
            "that code does not match: check the authenticator's clock and enter the current code",
        ));
    }
    app.record(
        app.event(
            EventKind::UserChanged,
            json!({"username": u.username, "change": "totp_enabled", "tokens_revoked": true}),
        )
        .user(&u.id),
    )?;
    Ok(Ok(()))
}

/// Remove two-factor login (and its recovery codes). Whether there was one.
pub fn disable(app: &App, username: &str) -> Result<bool> {
    let store = app.users()?;
    let u = store.get(username)?;
    let removed = store.totp_remove(&u.id)?;
    if removed {
        app.record(
            app.event(
                EventKind::UserChanged,
                json!({"username": u.username, "change": "totp_disabled"}),
            )
            .user(&u.id),
        )?;
    }
    Ok(removed)
}

/// Whether `u` has a confirmed enrolment.
pub fn enrolled(app: &App, u: &User) -> Result<bool> {
    Ok(app
        .users_ro()?
        .totp_get(&u.id)?
        .is_some_and(|r| r.confirmed))
}

/// Whether `u` must pass a second factor to log in: its role is in
/// `auth.require_totp`, or it has a confirmed enrolment. A login (refresh
/// family) made without one is refused at its next refresh.
pub fn needed_by(app: &App, u: &User) -> Result<bool> {
    Ok(required_for(&app.cfg.config, u.role) || enrolled(app, u)?)
}

/// The second factor of a login whose password was right: a fresh TOTP code
/// or an unused recovery code, checked against the per-account cap (a
/// refusal is the caller's to audit). A recovery code's use is audited.
pub fn check(app: &App, u: &User, code: Option<&str>) -> Result<SecondFactor> {
    let store = app.users()?;
    let Some(row) = store.totp_get(&u.id)?.filter(|r| r.confirmed) else {
        return Ok(SecondFactor::NotEnrolled);
    };
    let Some(code) = code.map(str::trim).filter(|c| !c.is_empty()) else {
        return Ok(SecondFactor::Missing);
    };
    let id = match reserve_code_check(&store, u)? {
        Ok(id) => id,
        Err(TooManyCodes { retry_after_secs }) => {
            return Ok(SecondFactor::Throttled { retry_after_secs })
        }
    };
    let outcome = check_code(app, &store, u, row.secret, code)?;
    store.finish_code_check(id, outcome != SecondFactor::Wrong)?;
    Ok(outcome)
}

fn check_code(
    app: &App,
    store: &UserStore,
    u: &User,
    secret: Vec<u8>,
    code: &str,
) -> Result<SecondFactor> {
    let t = totp(secret, &u.username)?;
    if let Some(step) = matching_step(&t, code) {
        return Ok(if store.totp_use_step(&u.id, step)? {
            SecondFactor::Passed {
                recovery_left: None,
            }
        } else {
            SecondFactor::Wrong
        });
    }
    if code.len() > 6 {
        let (ok, left) = store.totp_use_recovery(&u.id, &recovery_hash(code))?;
        if ok {
            app.record(
                app.event(
                    EventKind::UserChanged,
                    json!({"username": u.username, "change": "totp_recovery_code_used",
                           "recovery_codes_left": left}),
                )
                .user(&u.id),
            )?;
            return Ok(SecondFactor::Passed {
                recovery_left: Some(left),
            });
        }
    }
    Ok(SecondFactor::Wrong)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6238_sha1_vectors() {
        // RFC 6238 Appendix B, SHA-1, truncated to 6 digits.
        let t = totp(b"12345678901234567890".to_vec(), "test").unwrap();
        assert_eq!(t.generate(59), "287082");
        assert_eq!(t.generate(1111111109), "081804");
        assert_eq!(t.generate(2000000000), "279037");
        assert!(t
            .get_url()
            .starts_with("otpauth://totp/hermes-operator:test?"));
    }

    #[test]
    fn recovery_codes_are_80_bits_and_compare_loosely() {
        let c = new_recovery_code();
        assert_eq!(c.len(), 19, "{c}");
        assert_eq!(
            recovery_hash(&c),
            recovery_hash(&c.to_lowercase().replace('-', " "))
        );
        assert_ne!(recovery_hash(&c), recovery_hash(&new_recovery_code()));
    }
}
