//! Single sign-on, the rules (docs/design.md §14): a login on its way
//! through the provider is bound to the browser that started it; a
//! verified ID token becomes an account by its subject (linked by an
//! admin, or created at the first login when `auth.oidc.auto_create`), with
//! the role its claims map to (re-mapped at every login: a change revokes
//! the account's tokens and keys as `user role` does); a finished login
//! becomes this server's token pair through a one-time code; and at every
//! refresh the provider is asked again whether the user still stands.
//! Protocol (discovery, tokens, signatures) is `crate::oidc`'s; storage is
//! store/users/sso.rs; the HTTP layer only carries values between them.

use crate::app::App;
use crate::config::OidcConfig;
use crate::error::{Error, Result};
use crate::ops::logins::{self, hash_token, TokenPair};
use crate::store::events::EventKind;
use crate::store::users::{Grant, NewFlow, Role, SsoLogin, User};
use base64::Engine;
use serde_json::{json, Map, Value};

/// A login may take this long at the provider.
pub const FLOW_TTL_SECS: f64 = 600.0;
/// A one-time code is redeemed within this (the dashboard does it at once).
pub const CODE_TTL_SECS: f64 = 120.0;
/// Logins one client address may start per [`FLOW_TTL_SECS`] (each is a
/// row until it expires).
pub const FLOWS_PER_CLIENT: i64 = 30;

fn now() -> f64 {
    chrono::Utc::now().timestamp_micros() as f64 / 1e6
}

fn sha(s: &str) -> [u8; 32] {
    hash_token(s)
}

/// Who finishes a login: the dashboard in the browser that starts it, or
/// `hermes-operator login --sso` (its loopback port, its own state, and the
/// S256 challenge of a verifier only it knows).
pub enum Finisher<'a> {
    Browser,
    Cli {
        port: u16,
        state: &'a str,
        challenge: &'a str,
    },
}

/// A login started: what goes to the provider, and the cookie that binds
/// the login to this browser.
pub struct Started {
    pub request: crate::oidc::AuthRequest,
    pub cookie: String,
}

/// Start a login from `client`; `None` when that address started too many.
pub fn begin(app: &App, finisher: &Finisher, client: &str) -> Result<Option<Started>> {
    let request = crate::oidc::AuthRequest::new();
    let cookie = crate::crypto::random_hex(32);
    let binding = sha(&cookie);
    let (grant_binding, cli) = match finisher {
        Finisher::Browser => (binding, None),
        Finisher::Cli {
            port,
            state,
            challenge,
        } => {
            if *port < 1024 {
                return Err(Error::usage("cli_port must be 1024-65535"));
            }
            if state.is_empty()
                || state.len() > 128
                || !state
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(Error::usage(
                    "cli_state must be 1-128 letters, digits, '-' or '_'",
                ));
            }
            let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(challenge)
                .ok()
                .and_then(|v| <[u8; 32]>::try_from(v).ok())
                .ok_or_else(|| Error::usage("cli_challenge must be the base64url SHA-256 of the CLI's verifier (43 characters)"))?;
            (raw, Some((*port, *state)))
        }
    };
    let flow = NewFlow {
        state_hash: sha(&request.state),
        binding_hash: binding,
        grant_binding,
        nonce: &request.nonce,
        verifier: &request.verifier,
        client,
        cli,
    };
    let admitted = app.users()?.begin_sso_flow(
        &flow,
        now(),
        FLOW_TTL_SECS,
        FLOW_TTL_SECS,
        FLOWS_PER_CLIENT,
    )?;
    Ok(admitted.then_some(Started { request, cookie }))
}

/// Why a single sign-on was refused (a fixed set: the login page and the
/// audit log name it; the detail goes to the log only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No such login in progress: used already (a replay) or never started.
    UnknownState,
    Expired,
    /// The callback came without the cookie of the browser that started it.
    OtherBrowser,
    /// The provider said no (the user cancelled, or an error).
    ProviderError,
    InvalidToken,
    /// None of the user's role-claim values is in `auth.oidc.role_map`.
    Unmapped,
    DomainNotAllowed,
    /// A local account has the username; only an admin may link it.
    LinkRequired,
    /// No linked account and `auto_create` is off.
    NoAccount,
    Disabled,
    /// Mapping the role would demote the last enabled admin.
    LastAdmin,
    BadUsername,
}

impl Refusal {
    const ALL: [Refusal; 12] = [
        Refusal::UnknownState,
        Refusal::Expired,
        Refusal::OtherBrowser,
        Refusal::ProviderError,
        Refusal::InvalidToken,
        Refusal::Unmapped,
        Refusal::DomainNotAllowed,
        Refusal::LinkRequired,
        Refusal::NoAccount,
        Refusal::Disabled,
        Refusal::LastAdmin,
        Refusal::BadUsername,
    ];

    pub fn parse(s: &str) -> Option<Refusal> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::UnknownState => "unknown_state",
            Refusal::Expired => "expired",
            Refusal::OtherBrowser => "other_browser",
            Refusal::ProviderError => "provider_error",
            Refusal::InvalidToken => "invalid_token",
            Refusal::Unmapped => "unmapped",
            Refusal::DomainNotAllowed => "domain_not_allowed",
            Refusal::LinkRequired => "link_required",
            Refusal::NoAccount => "no_account",
            Refusal::Disabled => "disabled",
            Refusal::LastAdmin => "last_admin",
            Refusal::BadUsername => "bad_username",
        }
    }

    /// What the person is told.
    pub fn message(self) -> &'static str {
        match self {
            Refusal::UnknownState => "This login link was already used or never started here. Start again from the login page.",
            Refusal::Expired => "This login took too long. Start again from the login page.",
            Refusal::OtherBrowser => "This login was started in another browser. Start again from the login page in this one.",
            Refusal::ProviderError => "The identity provider did not log you in.",
            Refusal::InvalidToken => "The identity provider's answer did not verify, so you were not logged in. Tell an administrator.",
            Refusal::Unmapped => "Your identity provider account has no role on this server. Ask an administrator to map one of your groups.",
            Refusal::DomainNotAllowed => "Your email domain may not log in to this server.",
            Refusal::LinkRequired => "An account with your username already exists here. An administrator must link it to your identity provider account (hermes-operator user link).",
            Refusal::NoAccount => "You have no account on this server. Ask an administrator to create and link one.",
            Refusal::Disabled => "Your account on this server is disabled.",
            Refusal::LastAdmin => "Your new role would leave this server without an administrator; ask an administrator.",
            Refusal::BadUsername => "Your identity provider username cannot be used as an account name here. Ask an administrator to create and link an account.",
        }
    }
}

/// The flow of a `state` the provider sent back: taken once, with the
/// cookie of the browser that started it.
pub fn take_flow(
    app: &App,
    state: &str,
    cookie: Option<&str>,
) -> Result<std::result::Result<crate::store::users::Flow, Refusal>> {
    let Some(flow) = app.users()?.take_sso_flow(&sha(state), now())? else {
        return Ok(Err(Refusal::UnknownState));
    };
    if flow.expired {
        return Ok(Err(Refusal::Expired));
    }
    let presented = cookie.map(sha).unwrap_or_default();
    if !crate::crypto::ct_eq(&presented, &flow.binding_hash) {
        return Ok(Err(Refusal::OtherBrowser));
    }
    Ok(Ok(flow))
}

/// A claim by name or dotted path (`realm_access.roles`).
fn claim<'a>(claims: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    let mut parts = path.split('.');
    let mut v = claims.get(parts.next()?)?;
    for p in parts {
        v = v.get(p)?;
    }
    Some(v)
}

/// The role the claims map to: the most privileged of the mapped values.
pub fn mapped_role(cfg: &OidcConfig, claims: &Map<String, Value>) -> Option<Role> {
    let values: Vec<&str> = match claim(claims, &cfg.role_claim) {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    values
        .iter()
        .filter_map(|v| cfg.role_map.get(*v))
        .filter_map(|r| Role::parse(r))
        .min()
}

fn domain_allowed(cfg: &OidcConfig, claims: &Map<String, Value>) -> bool {
    if cfg.allowed_domains.is_empty() {
        return true;
    }
    if claims.get("email_verified") == Some(&Value::Bool(false)) {
        return false;
    }
    let Some(email) = claims.get("email").and_then(Value::as_str) else {
        return false;
    };
    let Some((_, domain)) = email.rsplit_once('@') else {
        return false;
    };
    cfg.allowed_domains
        .iter()
        .any(|d| d.eq_ignore_ascii_case(domain))
}

/// A refused single sign-on, in the audit log.
pub fn record_refusal(
    app: &App,
    cfg: &OidcConfig,
    subject: Option<&str>,
    client: &str,
    reason: Refusal,
    detail: &str,
) -> Result<()> {
    let shown = |s: &str| crate::output::clip(&crate::output::sanitize(s), 200);
    app.as_actor("http".into()).record(app.event(
        EventKind::LoginFailed,
        json!({"via": "sso", "provider": cfg.issuer, "provider_name": cfg.name,
               "subject": subject.map(shown), "client": client,
               "reason": reason.as_str(), "detail": shown(detail)}),
    ))?;
    Ok(())
}

/// The account a verified ID token's claims come to, created or re-mapped
/// as configured; or why not (not yet audited: the caller records it).
pub fn admit(
    app: &App,
    cfg: &OidcConfig,
    claims: &Map<String, Value>,
) -> Result<std::result::Result<User, (Refusal, String)>> {
    let Some(subject) = claims
        .get("sub")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty() && s.len() <= 255)
    else {
        return Ok(Err((Refusal::InvalidToken, "no usable sub claim".into())));
    };
    if !domain_allowed(cfg, claims) {
        let email = claims
            .get("email")
            .and_then(Value::as_str)
            .unwrap_or("(none)");
        return Ok(Err((Refusal::DomainNotAllowed, format!("email {email}"))));
    }
    let Some(role) = mapped_role(cfg, claims) else {
        return Ok(Err((
            Refusal::Unmapped,
            format!(
                "no value of claim {} is in auth.oidc.role_map",
                cfg.role_claim
            ),
        )));
    };
    let store = app.users()?;
    if let Some(u) = store.find_by_identity(&cfg.issuer, subject)? {
        if u.disabled {
            return Ok(Err((Refusal::Disabled, u.username)));
        }
        if u.role == role {
            return Ok(Ok(u));
        }
        // The provider's role wins at each login, recorded as any role change.
        let by = app.as_actor(format!("sso:{}", cfg.issuer));
        return match crate::ops::accounts::set_role(&by, &u.username, role) {
            Ok(u) => Ok(Ok(u)),
            Err(e) if e.kind == crate::Kind::Conflict => Ok(Err((Refusal::LastAdmin, e.message))),
            Err(e) => Err(e),
        };
    }
    let name = claims
        .get(&cfg.username_claim)
        .or_else(|| claims.get("email"))
        .and_then(Value::as_str)
        .unwrap_or("");
    if crate::store::users::validate_username(name).is_err() {
        return Ok(Err((
            Refusal::BadUsername,
            format!("{:?}", crate::output::clip(name, 80)),
        )));
    }
    if store.find(name)?.is_some() {
        return Ok(Err((
            Refusal::LinkRequired,
            format!("account {name} exists, not linked"),
        )));
    }
    if !cfg.auto_create {
        return Ok(Err((
            Refusal::NoAccount,
            "auth.oidc.auto_create is off".into(),
        )));
    }
    let u = match store.insert_sso_user(name, role, &cfg.issuer, subject) {
        Ok(u) => u,
        Err(e) if e.kind == crate::Kind::Conflict => {
            return Ok(Err((Refusal::LinkRequired, e.message)));
        }
        Err(e) => return Err(e),
    };
    let by = app.as_actor(format!("sso:{}", cfg.issuer));
    by.record(
        by.event(
            EventKind::UserCreated,
            json!({"username": u.username, "role": u.role, "via": "sso",
                   "provider": cfg.issuer, "subject": subject}),
        )
        .user(&u.id),
    )?;
    Ok(Ok(u))
}

/// A one-time code for an admitted login (what the callback hands to the
/// dashboard or the CLI).
pub fn grant(
    app: &App,
    cfg: &OidcConfig,
    user: &User,
    subject: &str,
    tokens: &crate::oidc::ProviderTokens,
    grant_binding: Vec<u8>,
) -> Result<String> {
    let code = format!("sso1.{}", crate::crypto::random_hex(32));
    let g = Grant {
        binding_hash: grant_binding,
        user_id: user.id.clone(),
        issuer: cfg.issuer.clone(),
        subject: subject.to_string(),
        provider_access: tokens.access_token.clone(),
        provider_refresh: tokens.refresh_token.clone(),
        expired: false,
    };
    app.users()?
        .insert_sso_grant(&sha(&code), &g, now() + CODE_TTL_SECS)?;
    Ok(code)
}

/// Redeem a one-time code (with the cookie, or the CLI's verifier): this
/// server's token pair, a `login` event naming the provider and subject.
/// `None`: unknown, used, expired or not this party's code.
pub fn redeem(
    app: &App,
    cfg: &OidcConfig,
    secret: &[u8],
    code: &str,
    proof: &str,
    client: &str,
) -> Result<Option<TokenPair>> {
    let store = app.users()?;
    let Some(g) = store.take_sso_grant(&sha(code), now())? else {
        return Ok(None);
    };
    if g.expired || !crate::crypto::ct_eq(&sha(proof), &g.binding_hash) {
        return Ok(None);
    }
    let Some(u) = store.find_by_id(&g.user_id)?.filter(|u| !u.disabled) else {
        return Ok(None);
    };
    store.record_login(&u.id)?;
    // The provider is the second factor's authority for its users.
    let (pair, jti, family) =
        logins::issue_pair_for(app, secret, &u, true, logins::SSO_ACCESS_TTL_MINUTES)?;
    store.insert_sso_login(&SsoLogin {
        family_id: family.clone(),
        user_id: u.id.clone(),
        issuer: g.issuer.clone(),
        subject: g.subject.clone(),
        provider_access: g.provider_access,
        provider_refresh: g.provider_refresh,
    })?;
    let by = app.as_actor(format!("http:{}", u.username));
    by.record(
        by.event(
            EventKind::Login,
            json!({"username": u.username, "client": client, "jti": jti,
                   "refresh_family": family, "via": "sso", "provider": g.issuer,
                   "provider_name": cfg.name, "subject": g.subject, "second_factor": true}),
        )
        .user(&u.id),
    )?;
    Ok(Some(pair))
}

/// The SSO login behind a refresh token, if it is one (its provider tokens
/// are re-checked before the refresh goes on).
pub fn login_of_refresh(app: &App, refresh_token: &str) -> Result<Option<SsoLogin>> {
    app.users()?
        .sso_login_of_refresh(&hash_token(refresh_token))
}

/// Keep what a re-check brought: the provider's tokens (maybe rotated), or
/// the end of the login (`why`: what the provider said), audited.
pub fn rechecked(
    app: &App,
    login: &SsoLogin,
    result: &crate::oidc::Recheck,
    client: &str,
) -> Result<bool> {
    let store = app.users()?;
    match result {
        crate::oidc::Recheck::Live(t) => {
            store.update_sso_login(
                &login.family_id,
                t.access_token.as_deref(),
                t.refresh_token.as_deref(),
            )?;
            Ok(true)
        }
        crate::oidc::Recheck::Gone(why) => {
            let n = store.revoke_family(&login.user_id, &login.family_id, "sso_revoked")?;
            let username = store.find_by_id(&login.user_id)?.map(|u| u.username);
            let by = app.as_actor("http".into());
            by.record(
                by.event(
                    EventKind::TokenRevoked,
                    json!({"reason": "sso_revoked", "username": username, "refresh_family": login.family_id,
                           "revoked": n, "provider": login.issuer, "subject": login.subject,
                           "detail": crate::output::clip(&crate::output::sanitize(why), 200), "client": client}),
                )
                .user(&login.user_id),
            )?;
            Ok(false)
        }
    }
}

/// Whether `auth.sso_only` keeps this role from logging in with a password.
pub fn sso_only(app: &App, role: Role) -> bool {
    app.cfg
        .config
        .auth
        .sso_only
        .iter()
        .any(|r| r == role.as_str())
}

/// The provider identity linked to an account (`user show`).
pub fn identity(app: &App, u: &User) -> Result<Option<crate::store::users::Identity>> {
    app.users_ro()?.identity_of(&u.id)
}

/// `user link NAME --subject S`: an admin's choice to let a provider
/// subject log in as an existing account.
pub fn link(app: &App, username: &str, issuer: Option<&str>, subject: &str) -> Result<User> {
    let issuer = match issuer {
        Some(i) => i.to_string(),
        None => app
            .cfg
            .config
            .auth
            .oidc
            .as_ref()
            .map(|o| o.issuer.clone())
            .ok_or_else(|| Error::usage("no auth.oidc in config.yaml: pass --issuer"))?,
    };
    if subject.is_empty() || subject.len() > 255 || subject.chars().any(char::is_control) {
        return Err(Error::usage(
            "--subject: the provider's `sub` of the user (1-255 characters)",
        ));
    }
    let store = app.users()?;
    let u = store.get(username)?;
    store.link_identity(&u.id, &issuer, subject, "admin")?;
    app.record(
        app.event(
            EventKind::UserChanged,
            json!({"username": u.username, "change": "sso_link", "provider": issuer, "subject": subject}),
        )
        .user(&u.id),
    )?;
    Ok(u)
}

/// `user unlink NAME`: the provider subject no longer logs in as it; its
/// SSO logins end.
pub fn unlink(app: &App, username: &str) -> Result<User> {
    let store = app.users()?;
    let u = store.get(username)?;
    let Some(id) = store.identity_of(&u.id)? else {
        return Err(Error::not_found(format!(
            "{} is not linked to a provider",
            u.username
        )));
    };
    store.unlink_identity(&u.id, "sso_unlinked")?;
    app.record(
        app.event(
            EventKind::UserChanged,
            json!({"username": u.username, "change": "sso_unlink", "provider": id.issuer, "subject": id.subject}),
        )
        .user(&u.id),
    )?;
    Ok(u)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> OidcConfig {
        serde_norway::from_str(
            "issuer: https://id.example.com\nclient_id: c\nredirect_url: https://ops.example.com/auth/oidc/callback\nrole_claim: realm_access.roles\nrole_map: {eng: user, ops: admin, audit: auditor}\nallowed_domains: [example.com]\n",
        )
        .unwrap()
    }

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn the_most_privileged_mapped_value_wins_and_unmapped_is_none() {
        let c = cfg();
        let r = |v| mapped_role(&c, &claims(json!({"realm_access": {"roles": v}})));
        assert_eq!(r(json!(["eng", "ops", "x"])), Some(Role::Admin));
        assert_eq!(r(json!(["audit", "eng"])), Some(Role::Auditor));
        assert_eq!(r(json!("eng")), Some(Role::User));
        assert_eq!(r(json!(["x", "y"])), None);
        assert_eq!(r(json!([])), None);
        assert_eq!(r(json!(5)), None);
        assert_eq!(mapped_role(&c, &claims(json!({"groups": ["ops"]}))), None);
    }

    #[test]
    fn domains_need_a_verified_email_in_the_list() {
        let c = cfg();
        let ok = |v| domain_allowed(&c, &claims(v));
        assert!(ok(json!({"email": "a@Example.com"})));
        assert!(ok(
            json!({"email": "a@example.com", "email_verified": true})
        ));
        assert!(!ok(
            json!({"email": "a@example.com", "email_verified": false})
        ));
        assert!(!ok(json!({"email": "a@example.com.evil.org"})));
        assert!(!ok(json!({"email": "a@evil.org"})));
        assert!(!ok(json!({})));
    }
}
