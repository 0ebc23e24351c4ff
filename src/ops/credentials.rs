//! Passwords (Argon2id, PHC strings) and access tokens (HS256 JWT, docs/design.md §4).

pub use crate::crypto::{ct_eq, random_hex};
use crate::error::{Error, Result};
use crate::store::users::Role;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use jsonwebtoken::{Algorithm as JwtAlg, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

pub const MIN_PASSWORD_LEN: usize = 12;
/// Argon2 work grows with input; cap it so a huge "password" cannot be a DoS.
pub const MAX_PASSWORD_LEN: usize = 1024;
pub const JWT_ISSUER: &str = "hermes-operator";
pub const JWT_AUDIENCE_ACCESS: &str = "hermes-operator/access";
pub const ACCESS_TTL_MINUTES: i64 = 120;

/// OWASP's Argon2id recommendation (m = 19 MiB, t = 2, p = 1).
fn argon2() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).expect("static argon2 params are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

pub fn check_password_policy(pw: &str) -> Result<()> {
    let n = pw.chars().count();
    if n < MIN_PASSWORD_LEN {
        return Err(Error::usage(format!(
            "password too short: {n} characters, at least {MIN_PASSWORD_LEN} required"
        )));
    }
    if pw.len() > MAX_PASSWORD_LEN {
        return Err(Error::usage(format!(
            "password too long: at most {MAX_PASSWORD_LEN} bytes"
        )));
    }
    Ok(())
}

pub fn hash_password(pw: &str) -> Result<String> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    argon2()
        .hash_password(pw.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::internal(format!("hashing password: {e}")).with_source(e))
}

/// Verify against a stored PHC string (parameters come from the string).
pub fn verify_password(pw: &str, phc: &str) -> bool {
    if pw.len() > MAX_PASSWORD_LEN {
        return false;
    }
    match PasswordHash::new(phc) {
        Ok(h) => argon2().verify_password(pw.as_bytes(), &h).is_ok(),
        Err(_) => false,
    }
}

/// A hash of a fixed dummy password, to spend the same time on unknown users
/// as on known ones (no username oracle through timing).
pub fn dummy_verify(pw: &str) {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let h = DUMMY.get_or_init(|| hash_password("dummy-password-for-timing").unwrap_or_default());
    let _ = verify_password(pw, h);
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Claims {
    pub sub: String,
    pub username: String,
    /// The role when the token was issued (requests use the current one from users.db).
    pub role: Role,
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
    pub aud: String,
    pub jti: String,
    /// Per-user token version: bumped on password/role change, disable, delete.
    pub tv: i64,
    /// The login (refresh-token family) an HTTP access token belongs to:
    /// revoking the family (logout, refresh-token reuse) revokes it too.
    /// Absent on `user token` tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fam: Option<String>,
    /// The login passed a second factor (TOTP or a recovery code). A login
    /// without one stops working when its role enters `auth.require_totp`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub mfa: bool,
}

pub fn issue_access_token(
    secret: &[u8],
    user_id: &str,
    username: &str,
    role: Role,
    token_version: i64,
    ttl_minutes: i64,
    family: Option<&str>,
) -> Result<(String, Claims)> {
    sign(
        secret,
        new_claims(user_id, username, role, token_version, ttl_minutes, family),
    )
}

fn new_claims(
    user_id: &str,
    username: &str,
    role: Role,
    token_version: i64,
    ttl_minutes: i64,
    family: Option<&str>,
) -> Claims {
    let now = chrono::Utc::now().timestamp();
    Claims {
        sub: user_id.to_string(),
        username: username.to_string(),
        role,
        iat: now,
        exp: now + ttl_minutes * 60,
        iss: JWT_ISSUER.into(),
        aud: JWT_AUDIENCE_ACCESS.into(),
        jti: random_hex(16),
        tv: token_version,
        fam: family.map(str::to_string),
        mfa: false,
    }
}

fn sign(secret: &[u8], claims: Claims) -> Result<(String, Claims)> {
    let token = jsonwebtoken::encode(
        &Header::new(JwtAlg::HS256),
        &claims,
        &EncodingKey::from_secret(secret),
    )
    .map_err(|e| Error::internal(format!("signing token: {e}")).with_source(e))?;
    Ok((token, claims))
}

/// An access token for `u` as it is now (its role and token version), in
/// the login `family` if it has one; `second_factor`: that login passed one.
pub fn issue_for(
    secret: &[u8],
    u: &crate::store::users::User,
    ttl_minutes: i64,
    family: Option<&str>,
    second_factor: bool,
) -> Result<(String, Claims)> {
    let mut claims = new_claims(
        &u.id,
        &u.username,
        u.role,
        u.token_version,
        ttl_minutes,
        family,
    );
    claims.mfa = second_factor;
    sign(secret, claims)
}

/// Check signature (HS256 only), `iss`, `aud` and `exp`. Whether the user is
/// still enabled and the token version current is the caller's job (it needs users.db).
pub fn decode_access_token(secret: &[u8], token: &str) -> Result<Claims> {
    let mut v = Validation::new(JwtAlg::HS256);
    v.algorithms = vec![JwtAlg::HS256];
    v.set_issuer(&[JWT_ISSUER]);
    v.set_audience(&[JWT_AUDIENCE_ACCESS]);
    v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    v.leeway = 0;
    jsonwebtoken::decode::<Claims>(token, &DecodingKey::from_secret(secret), &v)
        .map(|d| d.claims)
        .map_err(|e| Error::permission(format!("invalid token: {e}")).with_source(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_roundtrip_and_policy() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("correct horse batterx", &h));
        assert!(!verify_password("x", "not a phc string"));
        assert!(check_password_policy("short").is_err());
        assert!(check_password_policy(&"x".repeat(2000)).is_err());
        assert!(check_password_policy("long enough pw").is_ok());
    }

    #[test]
    fn token_roundtrip_and_rejections() {
        let secret = b"0123456789abcdef0123456789abcdef";
        let (t, c) =
            issue_access_token(secret, "u_1", "alice", Role::User, 3, 5, Some("rf_1")).unwrap();
        let d = decode_access_token(secret, &t).unwrap();
        assert_eq!(d, c);
        assert!(decode_access_token(b"another-secret-another-secret-xx", &t).is_err());
        // alg:none token with the same claims is refused.
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let none = format!(
            "{}.{}.",
            b64.encode(br#"{"alg":"none","typ":"JWT"}"#),
            b64.encode(serde_json::to_vec(&c).unwrap())
        );
        assert!(decode_access_token(secret, &none).is_err());
        let (expired, _) =
            issue_access_token(secret, "u_1", "alice", Role::User, 3, -1, None).unwrap();
        assert!(decode_access_token(secret, &expired).is_err());
    }

    #[test]
    fn ct_eq_works() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
    }
}
