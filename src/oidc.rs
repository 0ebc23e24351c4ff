//! The OpenID Connect relying party: what this server knows of a provider
//! and of the protocol, and nothing of accounts (ops/sso.rs maps claims to
//! them). Discovery, the authorization request (code flow with PKCE S256,
//! `state`, `nonce`), the code exchange, ID-token verification against the
//! provider's JWKS (issuer, audience, expiry and algorithm pinned; an
//! unknown key id fetches the JWKS again, which is how a provider's key
//! rotation is followed), and the re-check of a login at refresh.

use crate::config::{OidcConfig, OIDC_ALGORITHMS};
use crate::error::{Error, Result};
use base64::Engine;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::str::FromStr;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// How long the discovery document and the JWKS are reused.
const METADATA_TTL: Duration = Duration::from_secs(3600);
/// An unknown key id fetches the JWKS again at most this often. ID tokens
/// come from the token endpoint (never from the browser), so only the
/// provider can send an unknown key id; the bound keeps a misbehaving one
/// from making every login a JWKS fetch.
const JWKS_REFETCH_MIN: Duration = Duration::from_secs(1);
/// Clock skew tolerated on `exp`, `iat` and `nbf`.
const LEEWAY_SECS: u64 = 60;
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the provider could not be used, in the terms the caller answers.
#[derive(Debug)]
pub enum OidcError {
    /// The provider cannot be reached or answers nonsense (503).
    Unreachable(String),
    /// The provider refused the request (an expired or reused code, a
    /// revoked login): `error` as the provider named it.
    Refused(String),
    /// The ID token does not verify: `reason` is one of a fixed set
    /// (`malformed`, `algorithm`, `unknown_key`, `signature`, `issuer`,
    /// `audience`, `expired`, `nonce`, `claims`).
    InvalidToken(&'static str, String),
}

impl std::fmt::Display for OidcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OidcError::Unreachable(m) => write!(f, "the identity provider is unreachable: {m}"),
            OidcError::Refused(m) => write!(f, "the identity provider refused: {m}"),
            OidcError::InvalidToken(r, m) => write!(f, "the ID token is invalid ({r}): {m}"),
        }
    }
}

type OResult<T> = std::result::Result<T, OidcError>;

/// What discovery tells of the provider (the parts used here).
#[derive(Debug, Clone, Deserialize)]
pub struct Metadata {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    #[serde(default)]
    pub userinfo_endpoint: Option<String>,
    #[serde(default)]
    pub code_challenge_methods_supported: Vec<String>,
}

/// The secrets of one authorization request, kept by the server until the
/// provider sends the user back.
pub struct AuthRequest {
    pub state: String,
    pub nonce: String,
    /// The PKCE code verifier (its S256 challenge goes to the provider).
    pub verifier: String,
}

impl AuthRequest {
    pub fn new() -> AuthRequest {
        AuthRequest {
            state: crate::crypto::random_hex(32),
            nonce: crate::crypto::random_hex(32),
            verifier: crate::crypto::random_hex(32),
        }
    }
}

impl Default for AuthRequest {
    fn default() -> Self {
        Self::new()
    }
}

/// The S256 PKCE challenge of a verifier (RFC 7636 §4.2).
pub fn s256(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// What a successful code exchange yields: the verified ID token's claims
/// and the provider's tokens kept for the re-check at refresh.
#[derive(Debug)]
pub struct Login {
    pub claims: Map<String, Value>,
    pub tokens: ProviderTokens,
}

/// The provider's own tokens of a login (the refresh token, when the
/// provider issues one, is what a re-check presents).
#[derive(Debug, Clone, Default)]
pub struct ProviderTokens {
    pub access_token: Option<String>,
    pub refresh_token: Option<String>,
}

/// What re-checking a login with the provider came to.
#[derive(Debug)]
pub enum Recheck {
    /// The provider still accepts the login (its tokens, maybe rotated).
    Live(ProviderTokens),
    /// The provider no longer does (user disabled or deleted, tokens
    /// revoked, or nothing left to ask with): why.
    Gone(String),
}

#[derive(Deserialize)]
struct TokenResponse {
    #[serde(default)]
    id_token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    refresh_token: Option<String>,
}

/// One configured provider: its settings, the client secret, an HTTP
/// client, and the cached discovery document and keys.
pub struct Provider {
    cfg: OidcConfig,
    secret: zeroize::Zeroizing<String>,
    http: reqwest::Client,
    metadata: Mutex<Option<(Instant, Metadata)>>,
    /// The JWKS as fetched (each usable key), and when.
    keys: Mutex<Option<(Instant, Vec<Jwk>)>>,
}

/// A reqwest client that speaks HTTPS (rustls with the `ring` provider,
/// the system's roots) and never follows redirects.
pub fn http_client() -> Result<reqwest::Client> {
    crate::net::client_builder()
        .timeout(HTTP_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("hermes-operator/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Error::internal(format!("cannot build an HTTP client: {e}")))
}

impl Provider {
    /// The provider of `auth.oidc`, with the client secret from the
    /// operator's `.env`.
    pub fn new(cfg: &OidcConfig, secret: String) -> Result<Provider> {
        if secret.is_empty() {
            return Err(Error::config(format!(
                "auth.oidc.client_secret_env: {} is empty",
                cfg.client_secret_env
            )));
        }
        Ok(Provider {
            cfg: cfg.clone(),
            secret: zeroize::Zeroizing::new(secret),
            http: http_client()?,
            metadata: Mutex::new(None),
            keys: Mutex::new(None),
        })
    }

    pub fn config(&self) -> &OidcConfig {
        &self.cfg
    }

    /// The discovery document (cached an hour; a failure to refresh it
    /// keeps the old one).
    pub async fn metadata(&self) -> OResult<Metadata> {
        let mut slot = self.metadata.lock().await;
        if let Some((at, m)) = slot.as_ref() {
            if at.elapsed() < METADATA_TTL {
                return Ok(m.clone());
            }
        }
        match self.discover().await {
            Ok(m) => {
                *slot = Some((Instant::now(), m.clone()));
                Ok(m)
            }
            Err(e) => match slot.as_ref() {
                Some((_, m)) if !matches!(e, OidcError::InvalidToken(..)) => Ok(m.clone()),
                _ => Err(e),
            },
        }
    }

    async fn discover(&self) -> OResult<Metadata> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.cfg.issuer.trim_end_matches('/')
        );
        let m: Metadata = self.get_json(&url).await?;
        // OpenID Connect Discovery §4.3: the document's issuer is the one asked.
        if m.issuer != self.cfg.issuer {
            return Err(OidcError::Unreachable(format!(
                "{url} names the issuer {:?}, not {:?} (auth.oidc.issuer must be exactly the provider's issuer)",
                m.issuer, self.cfg.issuer
            )));
        }
        for (what, u) in [
            ("authorization_endpoint", &m.authorization_endpoint),
            ("token_endpoint", &m.token_endpoint),
            ("jwks_uri", &m.jwks_uri),
        ] {
            if !crate::config::secure_or_loopback(u) {
                return Err(OidcError::Unreachable(format!(
                    "the provider's {what} {u:?} is not https"
                )));
            }
        }
        if !m.code_challenge_methods_supported.is_empty()
            && !m
                .code_challenge_methods_supported
                .iter()
                .any(|c| c == "S256")
        {
            return Err(OidcError::Unreachable(
                "the provider does not support PKCE with S256".into(),
            ));
        }
        Ok(m)
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> OResult<T> {
        let r = self
            .http
            .get(url)
            .header("Accept", "application/json")
            .send()
            .await
            .map_err(|e| OidcError::Unreachable(format!("{url}: {}", reqwest_reason(&e))))?;
        if !r.status().is_success() {
            return Err(OidcError::Unreachable(format!(
                "{url} answered {}",
                r.status()
            )));
        }
        r.json()
            .await
            .map_err(|e| OidcError::Unreachable(format!("{url}: not the expected JSON ({e})")))
    }

    /// Discovery and the JWKS fetched now (`doctor`): how many keys may
    /// verify ID tokens.
    pub async fn check(&self) -> OResult<usize> {
        self.metadata().await?;
        Ok(self.keys(true).await?.len())
    }

    /// The provider's authorization URL for `req` (where the user's browser
    /// goes to log in).
    pub async fn authorize_url(&self, req: &AuthRequest) -> OResult<String> {
        let m = self.metadata().await?;
        let mut u = url::Url::parse(&m.authorization_endpoint)
            .map_err(|e| OidcError::Unreachable(format!("authorization_endpoint: {e}")))?;
        u.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.cfg.client_id)
            .append_pair("redirect_uri", &self.cfg.redirect_url)
            .append_pair("scope", &self.cfg.scopes.join(" "))
            .append_pair("state", &req.state)
            .append_pair("nonce", &req.nonce)
            .append_pair("code_challenge", &s256(&req.verifier))
            .append_pair("code_challenge_method", "S256");
        Ok(u.into())
    }

    /// POST to the token endpoint with the client's credentials
    /// (client_secret_basic, the form-encoded id and secret: RFC 6749 §2.3.1).
    async fn token_request(&self, form: &[(&str, &str)]) -> OResult<TokenResponse> {
        let m = self.metadata().await?;
        let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let r = self
            .http
            .post(&m.token_endpoint)
            .basic_auth(enc(&self.cfg.client_id), Some(enc(&self.secret)))
            .header("Accept", "application/json")
            .form(form)
            .send()
            .await
            .map_err(|e| {
                OidcError::Unreachable(format!("token endpoint: {}", reqwest_reason(&e)))
            })?;
        let status = r.status();
        if status.is_server_error() {
            return Err(OidcError::Unreachable(format!(
                "token endpoint answered {status}"
            )));
        }
        if !status.is_success() {
            let body: Value = r.json().await.unwrap_or(Value::Null);
            let code = body["error"].as_str().unwrap_or("unknown_error");
            let code = crate::output::clip(&crate::output::sanitize(code), 64);
            return Err(OidcError::Refused(format!("{code} ({status})")));
        }
        r.json().await.map_err(|e| {
            OidcError::Unreachable(format!("token endpoint: not the expected JSON ({e})"))
        })
    }

    /// Exchange the code the provider sent back for tokens, and verify the
    /// ID token (with the `nonce` of this request).
    pub async fn exchange(&self, code: &str, req_verifier: &str, nonce: &str) -> OResult<Login> {
        let t = self
            .token_request(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", &self.cfg.redirect_url),
                ("code_verifier", req_verifier),
            ])
            .await?;
        let id_token = t.id_token.ok_or_else(|| {
            OidcError::InvalidToken("malformed", "the token response has no id_token".into())
        })?;
        let claims = self.verify_id_token(&id_token, nonce).await?;
        Ok(Login {
            claims,
            tokens: ProviderTokens {
                access_token: t.access_token,
                refresh_token: t.refresh_token,
            },
        })
    }

    /// The keys of the JWKS; fetched again when `refetch` (an unknown key
    /// id) and the last fetch is older than [`JWKS_REFETCH_MIN`].
    async fn keys(&self, refetch: bool) -> OResult<Vec<Jwk>> {
        let mut slot = self.keys.lock().await;
        if let Some((at, k)) = slot.as_ref() {
            let fresh = at.elapsed() < METADATA_TTL;
            if fresh && (!refetch || at.elapsed() < JWKS_REFETCH_MIN) {
                return Ok(k.clone());
            }
        }
        let m = self.metadata().await?;
        let set: Value = self.get_json(&m.jwks_uri).await?;
        // Each key on its own: one key of a kind this library does not know
        // must not hide the others.
        let keys: Vec<Jwk> = set["keys"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|k| serde_json::from_value(k.clone()).ok())
                    .collect()
            })
            .unwrap_or_default();
        *slot = Some((Instant::now(), keys.clone()));
        Ok(keys)
    }

    /// Verify an ID token: an accepted algorithm (never `none` or HMAC),
    /// a key of the provider's JWKS, the signature, `iss`, `aud` (and `azp`
    /// when there are several audiences), `exp`/`iat`/`nbf` with a minute
    /// of leeway, and the request's `nonce`. Its claims.
    pub async fn verify_id_token(&self, token: &str, nonce: &str) -> OResult<Map<String, Value>> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| OidcError::InvalidToken("malformed", format!("header: {e}")))?;
        let alg_name = format!("{:?}", header.alg);
        if !self.cfg.id_token_algorithms.contains(&alg_name)
            || !OIDC_ALGORITHMS.contains(&alg_name.as_str())
        {
            return Err(OidcError::InvalidToken(
                "algorithm",
                format!(
                    "signed with {alg_name}; auth.oidc.id_token_algorithms accepts {}",
                    self.cfg.id_token_algorithms.join(", ")
                ),
            ));
        }
        let key = match find_key(&self.keys(false).await?, header.kid.as_deref(), &alg_name) {
            Some(k) => k,
            None => find_key(&self.keys(true).await?, header.kid.as_deref(), &alg_name)
                .ok_or_else(|| {
                    OidcError::InvalidToken(
                        "unknown_key",
                        format!(
                            "no key {:?} for {alg_name} in the provider's JWKS",
                            header.kid.as_deref().unwrap_or("")
                        ),
                    )
                })?,
        };
        let dk = DecodingKey::from_jwk(&key)
            .map_err(|e| OidcError::InvalidToken("unknown_key", format!("unusable key: {e}")))?;
        let alg = Algorithm::from_str(&alg_name)
            .map_err(|_| OidcError::InvalidToken("algorithm", alg_name.clone()))?;
        let mut v = Validation::new(alg);
        v.leeway = LEEWAY_SECS;
        v.validate_nbf = true;
        v.set_issuer(&[&self.cfg.issuer]);
        v.set_audience(&[&self.cfg.client_id]);
        v.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &dk, &v).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            let reason = match e.kind() {
                K::InvalidSignature => "signature",
                K::InvalidIssuer => "issuer",
                K::InvalidAudience => "audience",
                K::ExpiredSignature | K::ImmatureSignature => "expired",
                K::MissingRequiredClaim(_) => "claims",
                _ => "malformed",
            };
            OidcError::InvalidToken(reason, e.to_string())
        })?;
        self.check_claims(data.claims, nonce)
    }

    /// What the signature library does not check: `iat`, `azp` with several
    /// audiences, and this login's `nonce` (compared in constant time).
    fn check_claims(&self, claims: Map<String, Value>, nonce: &str) -> OResult<Map<String, Value>> {
        let now = chrono::Utc::now().timestamp();
        if claims
            .get("iat")
            .and_then(Value::as_i64)
            .is_none_or(|iat| iat > now + LEEWAY_SECS as i64)
        {
            return Err(OidcError::InvalidToken(
                "claims",
                "iat is missing or in the future".into(),
            ));
        }
        if let Some(Value::Array(aud)) = claims.get("aud") {
            if aud.len() > 1
                && claims.get("azp").and_then(Value::as_str) != Some(&self.cfg.client_id)
            {
                return Err(OidcError::InvalidToken(
                    "audience",
                    "several audiences and azp is not this client".into(),
                ));
            }
        }
        let got = claims.get("nonce").and_then(Value::as_str).unwrap_or("");
        if !crate::crypto::ct_eq(got.as_bytes(), nonce.as_bytes()) {
            return Err(OidcError::InvalidToken(
                "nonce",
                "the nonce is not this login's (a replayed or injected token)".into(),
            ));
        }
        Ok(claims)
    }

    /// Ask the provider whether a login still stands: its refresh token
    /// (rotated if the provider rotates), else `userinfo` with its access
    /// token. A refusal is [`Recheck::Gone`]; an unreachable provider is an
    /// error (the login is neither renewed nor ended).
    pub async fn recheck(&self, t: &ProviderTokens) -> OResult<Recheck> {
        if let Some(rt) = t.refresh_token.as_deref() {
            return match self
                .token_request(&[("grant_type", "refresh_token"), ("refresh_token", rt)])
                .await
            {
                Ok(n) => Ok(Recheck::Live(ProviderTokens {
                    access_token: n.access_token.or_else(|| t.access_token.clone()),
                    refresh_token: n.refresh_token.or_else(|| t.refresh_token.clone()),
                })),
                Err(OidcError::Refused(why)) => {
                    Ok(Recheck::Gone(format!("refresh refused: {why}")))
                }
                Err(e) => Err(e),
            };
        }
        let m = self.metadata().await?;
        let (Some(at), Some(ui)) = (t.access_token.as_deref(), m.userinfo_endpoint.as_deref())
        else {
            return Ok(Recheck::Gone(
                "the provider issued no refresh token and has no userinfo endpoint".into(),
            ));
        };
        let r = self
            .http
            .get(ui)
            .bearer_auth(at)
            .send()
            .await
            .map_err(|e| OidcError::Unreachable(format!("userinfo: {}", reqwest_reason(&e))))?;
        match r.status().as_u16() {
            200..=299 => Ok(Recheck::Live(t.clone())),
            400..=499 => Ok(Recheck::Gone(format!("userinfo answered {}", r.status()))),
            _ => Err(OidcError::Unreachable(format!(
                "userinfo answered {}",
                r.status()
            ))),
        }
    }
}

/// The JWKS key for `kid` (or the only one for the algorithm when the
/// token names none) that may verify `alg` signatures.
fn find_key(keys: &[Jwk], kid: Option<&str>, alg: &str) -> Option<Jwk> {
    use jsonwebtoken::jwk::PublicKeyUse;
    let usable: Vec<&Jwk> = keys
        .iter()
        .filter(|k| !matches!(k.common.public_key_use, Some(PublicKeyUse::Encryption)))
        .filter(|k| {
            k.common
                .key_algorithm
                .is_none_or(|a| format!("{a:?}") == alg)
        })
        .collect();
    match kid {
        Some(kid) => usable
            .into_iter()
            .find(|k| k.common.key_id.as_deref() == Some(kid))
            .cloned(),
        None if usable.len() == 1 => Some(usable[0].clone()),
        None => None,
    }
}

/// reqwest's error without the URL it repeats (and with the cause).
fn reqwest_reason(e: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut s = if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "connection failed".to_string()
    } else {
        "request failed".to_string()
    };
    let mut src = e.source();
    while let Some(c) = src {
        s = format!("{s}: {c}");
        src = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s256_is_rfc_7636_appendix_b() {
        assert_eq!(
            s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn secure_or_loopback_urls() {
        use crate::config::secure_or_loopback as ok;
        assert!(ok("https://id.example.com/realms/x"));
        assert!(ok("http://127.0.0.1:8080"));
        assert!(ok("http://localhost/x"));
        assert!(ok("http://[::1]:9/x"));
        assert!(!ok("http://id.example.com"));
        assert!(!ok("http://127.0.0.1.evil.com/"));
        assert!(!ok("https://"));
        assert!(!ok("ftp://127.0.0.1"));
    }
}
