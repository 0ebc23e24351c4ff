//! `profiles/operator/config.yaml` and `profiles/operator/.env` (docs/design.md §3).
//!
//! A missing config file means defaults. A wrong type or value is a
//! [`Kind::Config`](crate::error::Kind::Config) error naming the file, the key
//! and what was expected; unknown keys become warnings.
//! YAML is parsed with `serde_norway`, the maintained fork of the deprecated
//! `serde_yaml`.

use crate::error::{Error, Result};
use crate::home::Home;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Config {
    pub model: ModelConfig,
    pub operator: OperatorConfig,
    pub agent: AgentConfig,
    pub terminal: TerminalConfig,
    pub audit: AuditConfig,
    pub hermes: HermesConfig,
    pub budget: BudgetConfig,
    pub update: UpdateConfig,
    pub auth: AuthConfig,
    pub store: StoreConfig,
}

/// A fleet database's URL as config.yaml or `--store` may give it: a
/// PostgreSQL URL without a password (that stays in
/// `OPERATOR_STORE_PASSWORD`: config files and argv are read by others).
pub fn check_store_url(u: &str) -> std::result::Result<(), String> {
    let parsed = url::Url::parse(u)
        .ok()
        .filter(|p| matches!(p.scheme(), "postgres" | "postgresql"));
    match parsed {
        None => Err(format!(
            "expected postgres://USER@HOST:PORT/DB, got {:?}",
            crate::output::clip(u, 80)
        )),
        Some(p) if p.password().is_some() || u.contains("password=") => Err(
            "carries a password; put it in OPERATOR_STORE_PASSWORD in profiles/operator/.env instead"
                .into(),
        ),
        Some(_) => Ok(()),
    }
}

/// `store`: the fleet's PostgreSQL (issue 20, docs/design.md §13): where
/// the accounts live when set, where `serve` ships this host's events and
/// publishes its sessions, and the default of the `store` commands.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// `postgres://USER@HOST:PORT/DB[?sslmode=require&sslrootcert=CA.pem]`,
    /// without the password (that is `OPERATOR_STORE_PASSWORD` in `.env`).
    pub url: Option<String>,
    /// This host's name in the fleet (default: the system's host name).
    pub host: Option<String>,
    /// The other hosts' audit public keys (hex, the `public_key` of their
    /// checkpoint lines): their fleet checkpoints and prune anchors are
    /// trusted here, besides this host's own.
    pub trusted_keys: Vec<String>,
    /// Where the fleet's other hosts reach this host's `serve`
    /// (`https://web-1.internal:8080`): a chat on one of this host's
    /// sessions sent to another host is routed here. Plain http only to a
    /// loopback address.
    pub peer_url: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct AuthConfig {
    /// Roles that must log in with a second factor (TOTP); until such an
    /// account is enrolled, its logins answer 401 `totp_enrolment_required`.
    pub require_totp: Vec<String>,
    /// Roles whose password logins over HTTP are refused (single sign-on
    /// only). The CLI on the host never logs in, so it always works.
    pub sso_only: Vec<String>,
    /// Single sign-on with an OpenID Connect provider (docs/design.md §14).
    pub oidc: Option<OidcConfig>,
}

/// `auth.oidc`: the provider, this server's registration with it, and how
/// its claims become accounts and roles.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// The provider's issuer URL exactly as its discovery document says it
    /// (`{issuer}/.well-known/openid-configuration`). https, or http on
    /// loopback only.
    pub issuer: String,
    pub client_id: String,
    /// The `.env` variable holding the client secret (never in config.yaml).
    #[serde(default = "default_oidc_secret_env")]
    pub client_secret_env: String,
    /// This server's callback as registered at the provider, e.g.
    /// `https://ops.example.com/auth/oidc/callback`. Taken from here, never
    /// from a request's Host header.
    pub redirect_url: String,
    #[serde(default = "default_oidc_scopes")]
    pub scopes: Vec<String>,
    /// The claim holding the user's groups or roles: a name, or a dotted
    /// path into nested claims (Keycloak: `realm_access.roles`).
    #[serde(default = "default_role_claim")]
    pub role_claim: String,
    /// Claim value → operator role. A user none of whose values is mapped
    /// cannot log in; several mapped values give the most privileged role.
    #[serde(default)]
    pub role_map: BTreeMap<String, String>,
    /// Email domains allowed to log in (the `email` claim, which must not
    /// be marked unverified); empty: any.
    #[serde(default)]
    pub allowed_domains: Vec<String>,
    /// Create an account at a user's first login (else an admin links one).
    #[serde(default)]
    pub auto_create: bool,
    /// The claim a new account's username comes from.
    #[serde(default = "default_username_claim")]
    pub username_claim: String,
    /// The provider's name on the login page (and in `login` events' `via`).
    #[serde(default = "default_oidc_name")]
    pub name: String,
    /// ID-token signature algorithms accepted (asymmetric only).
    #[serde(default = "default_oidc_algorithms")]
    pub id_token_algorithms: Vec<String>,
}

fn default_oidc_secret_env() -> String {
    "OPERATOR_OIDC_CLIENT_SECRET".into()
}
fn default_oidc_scopes() -> Vec<String> {
    vec!["openid".into(), "email".into(), "profile".into()]
}
fn default_role_claim() -> String {
    "groups".into()
}
fn default_username_claim() -> String {
    "preferred_username".into()
}
fn default_oidc_name() -> String {
    "single sign-on".into()
}
fn default_oidc_algorithms() -> Vec<String> {
    vec!["RS256".into()]
}

/// The ID-token algorithms `auth.oidc.id_token_algorithms` may name: public
/// keys only (an HMAC "signature" would be made with the client secret,
/// which this server shares).
pub const OIDC_ALGORITHMS: &[&str] = &[
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
];

/// Whether `url` may be fetched from: https, or http on a loopback host.
pub fn secure_or_loopback(url: &str) -> bool {
    if url.starts_with("https://") && url.len() > "https://".len() {
        return true;
    }
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = match host.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() && p.chars().all(|c| c.is_ascii_digit()) => h,
        _ => host,
    };
    matches!(host, "127.0.0.1" | "localhost" | "[::1]")
}

fn validate_oidc(o: &OidcConfig) -> std::result::Result<(), String> {
    if !secure_or_loopback(&o.issuer) || o.issuer.contains(['?', '#']) {
        return Err(format!(
            "auth.oidc.issuer: expected the provider's https URL (http only on loopback), got {:?}",
            o.issuer
        ));
    }
    if o.client_id.is_empty() || o.client_id.len() > 256 {
        return Err(
            "auth.oidc.client_id: expected the client id registered at the provider".into(),
        );
    }
    if !is_env_name(&o.client_secret_env) {
        return Err(format!(
            "auth.oidc.client_secret_env: expected an environment variable name like OPERATOR_OIDC_CLIENT_SECRET, got {:?}",
            o.client_secret_env
        ));
    }
    if !secure_or_loopback(&o.redirect_url) || !o.redirect_url.ends_with("/auth/oidc/callback") {
        return Err(format!(
            "auth.oidc.redirect_url: expected this server's public callback, like https://ops.example.com/auth/oidc/callback (http only on loopback), got {:?}",
            o.redirect_url
        ));
    }
    if !o.scopes.iter().any(|s| s == "openid") {
        return Err("auth.oidc.scopes: must include openid".into());
    }
    if let Some(s) = o
        .scopes
        .iter()
        .find(|s| s.is_empty() || s.contains(char::is_whitespace))
    {
        return Err(format!("auth.oidc.scopes: expected scope names, got {s:?}"));
    }
    if o.role_claim.is_empty() || o.username_claim.is_empty() {
        return Err(
            "auth.oidc.role_claim and auth.oidc.username_claim: expected claim names".into(),
        );
    }
    if o.role_map.is_empty() {
        return Err("auth.oidc.role_map: expected at least one `claim value: role` entry (users with no mapped value cannot log in)".into());
    }
    for (k, r) in &o.role_map {
        if !["admin", "auditor", "user", "viewer"].contains(&r.as_str()) {
            return Err(format!(
                "auth.oidc.role_map.{k}: expected a role (admin, auditor, user, viewer), got {r:?}"
            ));
        }
    }
    for d in &o.allowed_domains {
        if d.is_empty() || d.contains('@') || d.contains(char::is_whitespace) {
            return Err(format!(
                "auth.oidc.allowed_domains: expected domains like example.com, got {d:?}"
            ));
        }
    }
    if o.id_token_algorithms.is_empty() {
        return Err("auth.oidc.id_token_algorithms: expected at least one, e.g. [RS256]".into());
    }
    for a in &o.id_token_algorithms {
        if !OIDC_ALGORITHMS.contains(&a.as_str()) {
            return Err(format!(
                "auth.oidc.id_token_algorithms: expected some of {}, got {a:?}",
                OIDC_ALGORITHMS.join(", ")
            ));
        }
    }
    if o.name.trim().is_empty()
        || o.name.chars().count() > 64
        || o.name.chars().any(char::is_control)
    {
        return Err("auth.oidc.name: expected a short label like Keycloak".into());
    }
    Ok(())
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ModelConfig {
    pub default: Option<String>,
    pub provider: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct OperatorConfig {
    pub host: String,
    pub port: u16,
    pub jwt_secret_env: String,
    pub cors_origins: Vec<String>,
    pub session_prefix: String,
    /// Peers whose X-Real-IP / X-Forwarded-For are believed (serve).
    pub trusted_proxies: Vec<String>,
    /// Chat turns one account may run at once over HTTP (more: 429), so one
    /// account cannot take every chat slot.
    pub max_turns_per_user: u32,
    /// Connections one client address (the peer the listener sees) may hold
    /// open at once; further ones are closed at accept, so one client cannot
    /// take every connection slot. Trusted proxies are exempt: every client
    /// behind them shares their address.
    pub max_connections_per_ip: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct AgentConfig {
    pub enabled_toolsets: Vec<String>,
    pub max_turns: u32,
    /// Extra lines appended to the operator supervision prompt.
    pub instructions: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct TerminalConfig {
    pub backend: String,
    pub cwd: Option<String>,
    pub approval_mode: ApprovalMode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApprovalMode {
    Manual,
    Smart,
    Off,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct AuditConfig {
    pub enabled: bool,
    pub log_retention_days: u32,
    pub store_content: StoreContent,
}

/// Whether message bodies go into the event log verbatim or as SHA-256 only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreContent {
    Full,
    Hash,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct HermesConfig {
    /// None: where Hermes' own config has its API server listen
    /// ([`HermesConfig::url`]), looked up only by what talks to Hermes — not
    /// on every config load (the hook loads it on every tool call).
    pub api_url: Option<String>,
    pub api_key_env: String,
}

impl HermesConfig {
    /// The API server's URL: `hermes.api_url` when set, else where Hermes'
    /// config says it listens ([`hermes_api_url`]), else Hermes' default.
    pub fn url(&self, home: &Home) -> String {
        self.api_url
            .clone()
            .or_else(|| hermes_api_url(home))
            .unwrap_or_else(|| DEFAULT_API_URL.into())
    }
}

/// Where Hermes' API server listens unless configured otherwise.
pub const DEFAULT_API_URL: &str = "http://127.0.0.1:8642";

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct BudgetConfig {
    pub session_alert_usd: f64,
    pub user_daily_usd: Option<f64>,
    /// What a turn reserves of the daily budget before it runs (settled to
    /// the real cost afterwards).
    pub turn_reserve_usd: f64,
}

/// `update:` — how `hermes-operator update` runs Hermes' updater, backs up,
/// restarts and checks the operator service.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct UpdateConfig {
    /// Shell command that restarts the operator service after an update.
    pub restart_command: String,
    /// URL the health check GETs after the restart; default
    /// `http://<operator.host>:<operator.port>/healthz` (0.0.0.0/:: become loopback).
    pub health_url: Option<String>,
    /// How many `backups/operator_*` directories to keep (the newest).
    pub keep_backups: u32,
    /// Path of Hermes' `hermes` executable; default: `hermes` on PATH, else
    /// the official layouts (`src/hermes/install.rs`).
    pub hermes_command: Option<String>,
    /// Longest `hermes update` may run before it is stopped (seconds).
    pub timeout_seconds: u64,
    /// Git installs: the branch `hermes update` pulls (`--branch`); unset,
    /// Hermes' default (`main`).
    pub branch: Option<String>,
    /// Git installs of Hermes 0.22+: the release channel (`--channel`,
    /// e.g. `stable`, `canary`, `main`); unset, Hermes' own setting.
    pub channel: Option<String>,
}

impl Default for UpdateConfig {
    fn default() -> Self {
        UpdateConfig {
            restart_command: DEFAULT_RESTART_COMMAND.into(),
            health_url: None,
            keep_backups: 5,
            hermes_command: None,
            timeout_seconds: 900,
            branch: None,
            channel: None,
        }
    }
}

pub const DEFAULT_RESTART_COMMAND: &str = "systemctl --user restart hermes-operator";

impl Config {
    /// `update.health_url`, or the operator's own `/healthz` on loopback.
    pub fn health_url(&self) -> String {
        if let Some(u) = &self.update.health_url {
            return u.clone();
        }
        let host = match self.operator.host.as_str() {
            "0.0.0.0" | "" => "127.0.0.1".to_string(),
            "::" | "[::]" => "[::1]".to_string(),
            h if h.contains(':') && !h.starts_with('[') => format!("[{h}]"),
            h => h.to_string(),
        };
        format!("http://{host}:{}/healthz", self.operator.port)
    }
}

impl Default for OperatorConfig {
    fn default() -> Self {
        OperatorConfig {
            host: "127.0.0.1".into(),
            port: 8643,
            jwt_secret_env: "OPERATOR_JWT_SECRET".into(),
            cors_origins: vec![],
            session_prefix: "op_".into(),
            trusted_proxies: vec!["127.0.0.1".into(), "::1".into()],
            max_turns_per_user: 2,
            max_connections_per_ip: 64,
        }
    }
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            enabled_toolsets: vec!["web".into(), "file".into(), "skills".into()],
            max_turns: 60,
            instructions: vec![],
        }
    }
}

impl Default for TerminalConfig {
    fn default() -> Self {
        TerminalConfig {
            backend: "local".into(),
            cwd: None,
            approval_mode: ApprovalMode::Manual,
        }
    }
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            enabled: true,
            log_retention_days: 90,
            store_content: StoreContent::Full,
        }
    }
}

impl Default for HermesConfig {
    fn default() -> Self {
        HermesConfig {
            api_url: None,
            api_key_env: "API_SERVER_KEY".into(),
        }
    }
}

impl Default for BudgetConfig {
    fn default() -> Self {
        BudgetConfig {
            session_alert_usd: 0.50,
            user_daily_usd: None,
            turn_reserve_usd: 0.05,
        }
    }
}

/// The loaded configuration plus the operator's secrets file and any warnings.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    pub path: PathBuf,
    /// Whether config.yaml existed (false: embedded defaults).
    pub from_file: bool,
    pub env: BTreeMap<String, String>,
    pub env_path: PathBuf,
    pub warnings: Vec<String>,
}

pub fn load(home: &Home) -> Result<Loaded> {
    let path = home.config_yaml();
    let mut warnings = Vec::new();
    let (config, from_file) = match std::fs::read_to_string(&path) {
        Ok(text) => (parse_yaml(&path, &text, &mut warnings)?, true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (Config::default(), false),
        Err(e) => return Err(Error::io(&path, "reading config", e)),
    };
    let env_path = home.operator_env();
    let env = match std::fs::read_to_string(&env_path) {
        Ok(text) => {
            check_secret_mode(&env_path, &mut warnings);
            parse_env(&env_path, &text)?
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
        Err(e) => return Err(Error::io(&env_path, "reading secrets", e)),
    };
    Ok(Loaded {
        config,
        path,
        from_file,
        env,
        env_path,
        warnings,
    })
}

fn check_secret_mode(path: &Path, warnings: &mut Vec<String>) {
    if let Ok(m) = std::fs::metadata(path) {
        let mode = m.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            warnings.push(format!(
                "{} has mode {:o}; secrets files should be 0600 (chmod 600 {})",
                path.display(),
                mode,
                path.display()
            ));
        }
    }
}

pub fn parse_yaml(path: &Path, text: &str, warnings: &mut Vec<String>) -> Result<Config> {
    let bad = |msg: String| {
        Error::config(format!("{}: {msg}", path.display()))
            .hint("fix the key named above, or remove it to use the default")
    };
    if text.trim().is_empty() {
        return Ok(Config::default());
    }
    let de = serde_norway::Deserializer::from_str(text);
    let mut unknown = Vec::new();
    let config: Config = serde_ignored::deserialize(de, |p| unknown.push(p.to_string()))
        .map_err(|e| bad(describe_yaml_error(&e)))?;
    for k in unknown {
        warnings.push(format!("{}: unknown key `{k}` ignored", path.display()));
    }
    validate(&config).map_err(bad)?;
    Ok(config)
}

fn describe_yaml_error(e: &serde_norway::Error) -> String {
    // serde_norway already says "key.path: invalid type: ..., expected ... at line L column C".
    let s = e.to_string();
    if s.starts_with("invalid type") || s.starts_with("unknown variant") {
        format!("(top level) {s}")
    } else {
        s
    }
}

#[expect(
    clippy::too_many_lines,
    reason = "a flat list of independent key checks, one `if` each, in the order the config documents them"
)]
fn validate(c: &Config) -> std::result::Result<(), String> {
    if c.operator.port == 0 {
        return Err("operator.port: expected a port number 1-65535, got 0".into());
    }
    if c.operator.host.trim().is_empty() {
        return Err("operator.host: expected an address to bind, got an empty string".into());
    }
    if c.operator.session_prefix != "op_" {
        return Err(format!(
            "operator.session_prefix: expected \"op_\" (the only prefix Hermes' id formats cannot collide with), got {:?}",
            c.operator.session_prefix
        ));
    }
    if !is_env_name(&c.operator.jwt_secret_env) {
        return Err(format!(
            "operator.jwt_secret_env: expected an environment variable name like OPERATOR_JWT_SECRET, got {:?}",
            c.operator.jwt_secret_env
        ));
    }
    if !is_env_name(&c.hermes.api_key_env) {
        return Err(format!(
            "hermes.api_key_env: expected an environment variable name like API_SERVER_KEY, got {:?}",
            c.hermes.api_key_env
        ));
    }
    if c.operator.jwt_secret_env == c.hermes.api_key_env {
        return Err("operator.jwt_secret_env: must differ from hermes.api_key_env (the JWT secret is never Hermes' API key)".into());
    }
    for o in &c.operator.cors_origins {
        if !(o.starts_with("https://") || o.starts_with("http://")) || o.ends_with('/') {
            return Err(format!(
                "operator.cors_origins: expected origins like https://operator.example.com (scheme, host, no path), got {o:?}"
            ));
        }
    }
    for p in &c.operator.trusted_proxies {
        if p.parse::<std::net::IpAddr>().is_err() {
            return Err(format!(
                "operator.trusted_proxies: expected IP addresses, got {p:?}"
            ));
        }
    }
    if let Some(cwd) = &c.terminal.cwd {
        if !cwd.starts_with('/') {
            return Err(format!(
                "terminal.cwd: expected an absolute directory (it becomes each operator terminal call's working directory), got {cwd:?}"
            ));
        }
    }
    for (key, roles) in [
        ("require_totp", &c.auth.require_totp),
        ("sso_only", &c.auth.sso_only),
    ] {
        for r in roles {
            if !["admin", "auditor", "user", "viewer"].contains(&r.as_str()) {
                return Err(format!(
                    "auth.{key}: expected roles (admin, auditor, user, viewer), got {r:?}"
                ));
            }
        }
    }
    if let Some(o) = &c.auth.oidc {
        validate_oidc(o)?;
    }
    for k in &c.store.trusted_keys {
        if k.len() != 64 || !k.chars().all(|ch| ch.is_ascii_hexdigit()) {
            return Err(format!(
                "store.trusted_keys: expected Ed25519 public keys as 64 hex digits (a checkpoint line's public_key), got {:?}",
                crate::output::clip(k, 80)
            ));
        }
    }
    if let Some(u) = &c.store.url {
        check_store_url(u).map_err(|e| format!("store.url: {e}"))?;
    }
    if let Some(u) = &c.store.peer_url {
        let ok = url::Url::parse(u).ok().is_some_and(|p| match p.scheme() {
            "https" => p.host().is_some(),
            "http" => p.host_str().is_some_and(|h| {
                h == "localhost"
                    || h.trim_matches(['[', ']'])
                        .parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback())
            }),
            _ => false,
        });
        if !ok {
            return Err(format!(
                "store.peer_url: expected https://HOST[:PORT] (plain http only on loopback), got {:?}",
                crate::output::clip(u, 80)
            ));
        }
    }
    if c.operator.max_turns_per_user == 0 || c.operator.max_turns_per_user > 64 {
        return Err(format!(
            "operator.max_turns_per_user: expected 1-64, got {}",
            c.operator.max_turns_per_user
        ));
    }
    let per_ip = c.operator.max_connections_per_ip;
    // 1024: the server's cap on all connections (server/listen.rs MAX_CONNECTIONS).
    if per_ip == 0 || per_ip > 1024 {
        return Err(format!(
            "operator.max_connections_per_ip: expected 1-1024, got {per_ip}"
        ));
    }
    // Hermes' API server listens on loopback; TLS belongs to nginx in front.
    if let Some(u) = c
        .hermes
        .api_url
        .as_ref()
        .filter(|u| !u.starts_with("http://") || u.len() <= "http://".len())
    {
        return Err(format!(
            "hermes.api_url: expected a plain http URL like http://127.0.0.1:8642 (Hermes' API server on loopback), got {u:?}"
        ));
    }
    if c.agent.max_turns == 0 || c.agent.max_turns > 1000 {
        return Err(format!(
            "agent.max_turns: expected 1-1000, got {}",
            c.agent.max_turns
        ));
    }
    for t in &c.agent.enabled_toolsets {
        if t.is_empty()
            || !t
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-')
        {
            return Err(format!(
                "agent.enabled_toolsets: expected toolset names like web, file, terminal; got {t:?}"
            ));
        }
    }
    if c.audit.log_retention_days == 0 {
        return Err("audit.log_retention_days: expected at least 1 day, got 0".into());
    }
    if !(c.budget.session_alert_usd.is_finite() && c.budget.session_alert_usd >= 0.0) {
        return Err(format!(
            "budget.session_alert_usd: expected a non-negative amount in USD, got {}",
            c.budget.session_alert_usd
        ));
    }
    if !(c.budget.turn_reserve_usd.is_finite() && c.budget.turn_reserve_usd >= 0.0) {
        return Err(format!(
            "budget.turn_reserve_usd: expected a non-negative amount in USD, got {}",
            c.budget.turn_reserve_usd
        ));
    }
    if c.update.restart_command.trim().is_empty() {
        return Err("update.restart_command: expected a shell command like \"systemctl --user restart hermes-operator\", got an empty string".into());
    }
    if let Some(u) = &c.update.health_url {
        let rest = u.strip_prefix("http://").unwrap_or("");
        if rest.is_empty() || rest.starts_with('/') {
            return Err(format!(
                "update.health_url: expected a plain http URL like http://127.0.0.1:8643/healthz, got {u:?}"
            ));
        }
    }
    if c.update.keep_backups == 0 || c.update.keep_backups > 1000 {
        return Err(format!(
            "update.keep_backups: expected 1-1000 backups to keep, got {}",
            c.update.keep_backups
        ));
    }
    if let Some(b) = &c.update.branch {
        let ok = !b.is_empty()
            && !b.starts_with('-')
            && b.len() <= 200
            && b.chars()
                .all(|ch| ch.is_ascii_alphanumeric() || "._/-".contains(ch))
            && !b.contains("..");
        if !ok {
            return Err(format!(
                "update.branch: expected a git branch name (letters, digits, . _ / -), got {b:?}"
            ));
        }
    }
    if let Some(ch) = &c.update.channel {
        // Hermes' own rule (hermes_cli/release_channels.py validate_name).
        let ok = !ch.is_empty()
            && ch.len() <= 32
            && ch.split('-').all(|p| {
                !p.is_empty()
                    && p.chars()
                        .all(|x| x.is_ascii_lowercase() || x.is_ascii_digit())
            });
        if !ok {
            return Err(format!(
                "update.channel: expected a channel name such as stable, canary or main (lowercase letters, digits, single dashes; at most 32), got {ch:?}"
            ));
        }
    }
    if let Some(h) = &c.update.hermes_command {
        if !h.starts_with('/') {
            return Err(format!(
                "update.hermes_command: expected an absolute path to Hermes' `hermes` executable, got {h:?}"
            ));
        }
    }
    if c.update.timeout_seconds < 10 || c.update.timeout_seconds > 86_400 {
        return Err(format!(
            "update.timeout_seconds: expected 10-86400 seconds, got {}",
            c.update.timeout_seconds
        ));
    }
    if let Some(d) = c.budget.user_daily_usd {
        if !(d.is_finite() && d >= 0.0) {
            return Err(format!(
                "budget.user_daily_usd: expected a non-negative amount in USD, got {d}"
            ));
        }
    }
    Ok(())
}

fn is_env_name(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with(|c: char| c.is_ascii_digit())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Parse a dotenv file: `KEY=VALUE`, optional `export `, `#` comments,
/// single or double quotes. Malformed lines are errors naming the line.
pub fn parse_env(path: &Path, text: &str) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((k, v)) = line.split_once('=') else {
            return Err(Error::config(format!(
                "{}:{}: expected KEY=VALUE",
                path.display(),
                i + 1
            )));
        };
        let k = k.trim();
        if !is_env_name(k) {
            return Err(Error::config(format!(
                "{}:{}: {k:?} is not a valid variable name",
                path.display(),
                i + 1
            )));
        }
        let v = v.trim();
        let v = if v.len() >= 2
            && ((v.starts_with('"') && v.ends_with('"'))
                || (v.starts_with('\'') && v.ends_with('\'')))
        {
            &v[1..v.len() - 1]
        } else {
            // Unquoted: strip a trailing " # comment".
            v.split(" #").next().unwrap_or("").trim_end()
        };
        out.insert(k.to_string(), v.to_string());
    }
    Ok(out)
}

impl Loaded {
    /// A secret by name: the operator's .env wins over the process environment
    /// (Hermes does the same with its own .env).
    pub fn secret(&self, name: &str) -> Option<String> {
        self.env
            .get(name)
            .cloned()
            .filter(|v| !v.is_empty())
            .or_else(|| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    /// The JWT signing secret: required, at least 32 bytes, never Hermes' API key.
    pub fn jwt_secret(&self, home: &Home) -> Result<zeroize::Zeroizing<Vec<u8>>> {
        let name = &self.config.operator.jwt_secret_env;
        let v = self.secret(name).ok_or_else(|| {
            Error::config(format!(
                "no JWT secret: {name} is not set in {} or the environment",
                self.env_path.display()
            ))
            .hint(format!(
                "generate one: printf '{name}=%s\\n' \"$(head -c 48 /dev/urandom | base64 | tr -d '\\n')\" >> {} && chmod 600 {}",
                self.env_path.display(),
                self.env_path.display()
            ))
        })?;
        if v.len() < 32 {
            return Err(Error::config(format!(
                "{name} in {} is {} bytes; at least 32 are required",
                self.env_path.display(),
                v.len()
            )));
        }
        if let Some(k) = hermes_api_key(home, &self.config.hermes.api_key_env) {
            if crate::crypto::ct_eq(k.as_bytes(), v.as_bytes()) {
                return Err(Error::config(format!(
                    "{name} equals Hermes' {}; the operator's JWT secret must be its own",
                    self.config.hermes.api_key_env
                )));
            }
        }
        Ok(zeroize::Zeroizing::new(v.into_bytes()))
    }
}

/// Hermes' API key: `$HERMES_HOME/.env` first (Hermes loads it over the
/// process environment), then the environment. The file is read as Hermes
/// reads it (python-dotenv, [`crate::dotenv`]): a line it cannot parse is
/// skipped, never the whole file (`doctor` names such lines).
pub fn hermes_api_key(home: &Home, name: &str) -> Option<String> {
    if let Some(d) = hermes_dotenv(home) {
        if let Some(v) = d.values.get(name).filter(|v| !v.is_empty()) {
            return Some(v.clone());
        }
    }
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Where Hermes' API server listens, as Hermes is configured: the host and
/// port of `platforms.api_server.extra` in its config.yaml, else
/// `API_SERVER_HOST`/`API_SERVER_PORT` from its `.env` or the environment
/// (`gateway/platforms/api_server.py`, 0.19 and 0.22). A wildcard host is
/// reached on loopback. None when neither is configured (Hermes' own default,
/// 127.0.0.1:8642, is ours too) or the port is not one.
pub fn hermes_api_url(home: &Home) -> Option<String> {
    let extra = std::fs::read_to_string(home.hermes_config())
        .ok()
        .and_then(|t| serde_norway::from_str::<serde_norway::Value>(&t).ok())
        .and_then(|v| v.get("platforms")?.get("api_server")?.get("extra").cloned());
    let field = |k: &str| -> Option<String> {
        match extra.as_ref()?.get(k)? {
            serde_norway::Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
            serde_norway::Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    };
    let port = field("port").or_else(|| hermes_api_key(home, "API_SERVER_PORT"));
    let host = field("host").or_else(|| hermes_api_key(home, "API_SERVER_HOST"));
    if port.is_none() && host.is_none() {
        return None;
    }
    let port: u16 = match port {
        Some(p) => p.parse().ok().filter(|p| *p > 0)?,
        None => 8642,
    };
    let host = match host.as_deref() {
        None | Some("0.0.0.0") | Some("") => "127.0.0.1".to_string(),
        Some("::") | Some("[::]") => "[::1]".to_string(),
        Some(h) if h.contains(':') && !h.starts_with('[') => format!("[{h}]"),
        Some(h) => h.to_string(),
    };
    Some(format!("http://{host}:{port}"))
}

/// `$HERMES_HOME/.env` parsed as Hermes parses it; None when it is absent
/// or unreadable. Latin-1 when it is not UTF-8, as Hermes falls back to.
pub fn hermes_dotenv(home: &Home) -> Option<crate::dotenv::DotEnv> {
    let bytes = std::fs::read(home.hermes_env()).ok()?;
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => e.into_bytes().iter().map(|&b| b as char).collect(),
    };
    // utf-8-sig: a leading BOM is not part of the first key.
    Some(crate::dotenv::parse(
        text.strip_prefix('\u{feff}').unwrap_or(&text),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without `hermes.api_url`, the operator talks to the API server where
    /// Hermes is configured to listen; with it, where it says.
    #[test]
    fn the_api_url_follows_hermes_config_unless_set() {
        let d = tempfile::tempdir().unwrap();
        let home = Home::at(d.path().to_path_buf());
        std::fs::create_dir_all(home.profile_dir()).unwrap();
        let url = || load(&home).unwrap().config.hermes.url(&home);
        assert_eq!(url(), "http://127.0.0.1:8642");
        std::fs::write(
            home.hermes_config(),
            "platforms:\n  api_server:\n    enabled: true\n    extra: {host: 0.0.0.0, port: 18642}\n",
        )
        .unwrap();
        assert_eq!(url(), "http://127.0.0.1:18642");
        std::fs::write(
            home.hermes_config(),
            "platforms:\n  api_server:\n    extra: {host: '::1', port: '9000'}\n",
        )
        .unwrap();
        assert_eq!(url(), "http://[::1]:9000");
        std::fs::write(home.hermes_config(), "platforms: {}\n").unwrap();
        std::fs::write(home.hermes_env(), "API_SERVER_PORT=8700\n").unwrap();
        assert_eq!(url(), "http://127.0.0.1:8700");
        std::fs::write(home.hermes_env(), "API_SERVER_PORT=not-a-port\n").unwrap();
        assert_eq!(url(), "http://127.0.0.1:8642");
        std::fs::write(home.hermes_env(), "API_SERVER_PORT=8700\n").unwrap();
        std::fs::write(
            home.config_yaml(),
            "hermes:\n  api_url: http://127.0.0.1:1234\n",
        )
        .unwrap();
        assert_eq!(url(), "http://127.0.0.1:1234");
    }

    fn parse(text: &str) -> (Result<Config>, Vec<String>) {
        let mut w = Vec::new();
        let r = parse_yaml(Path::new("/h/config.yaml"), text, &mut w);
        (r, w)
    }

    #[test]
    fn defaults_when_empty() {
        let (c, w) = parse("");
        let c = c.unwrap();
        assert_eq!(c.operator.port, 8643);
        // No hermes.api_url and no Hermes config to read it from: Hermes' default.
        let none = tempfile::tempdir().unwrap();
        assert_eq!(
            c.hermes.url(&Home::at(none.path())),
            "http://127.0.0.1:8642"
        );
        assert_eq!(c.budget.session_alert_usd, 0.5);
        assert!(w.is_empty());
    }

    #[test]
    fn design_config_parses() {
        let text = "model:\n  default: deepseek-v4-pro\n  provider: deepseek\noperator:\n  host: \"0.0.0.0\"\n  port: 8643\n  jwt_secret_env: \"OPERATOR_JWT_SECRET\"\n  cors_origins:\n    - \"https://operator.example.com\"\n  session_prefix: \"op_\"\nagent:\n  enabled_toolsets: [web, file, skills, delegation]\n  max_turns: 60\nterminal:\n  backend: local\n  cwd: /home/hermes/operator_workspace\n  approval_mode: manual\naudit:\n  enabled: true\n  log_retention_days: 90\n";
        let (c, w) = parse(text);
        let c = c.unwrap();
        assert_eq!(c.operator.host, "0.0.0.0");
        assert_eq!(c.agent.enabled_toolsets.len(), 4);
        assert!(w.is_empty(), "{w:?}");
    }

    #[test]
    fn wrong_type_names_file_and_key() {
        let (c, _) = parse("operator:\n  port: eighty\n");
        let e = c.unwrap_err();
        assert_eq!(e.kind, crate::error::Kind::Config);
        assert!(e.message.contains("/h/config.yaml"), "{}", e.message);
        assert!(e.message.contains("operator.port"), "{}", e.message);
    }

    #[test]
    fn bad_value_names_key_and_expectation() {
        let (c, _) = parse("terminal:\n  approval_mode: sometimes\n");
        let e = c.unwrap_err();
        assert!(
            e.message.contains("terminal.approval_mode"),
            "{}",
            e.message
        );
        let (c, _) = parse("operator:\n  session_prefix: x_\n");
        assert!(c.unwrap_err().message.contains("operator.session_prefix"));
        let (c, _) = parse("budget:\n  session_alert_usd: -1\n");
        assert!(c.unwrap_err().message.contains("budget.session_alert_usd"));
    }

    #[test]
    fn update_keys() {
        let (c, w) = parse("");
        let c = c.unwrap();
        assert!(w.is_empty());
        assert_eq!(c.update.restart_command, DEFAULT_RESTART_COMMAND);
        assert_eq!(c.update.keep_backups, 5);
        assert_eq!(c.update.timeout_seconds, 900);
        assert_eq!(c.health_url(), "http://127.0.0.1:8643/healthz");
        let (c, _) = parse("operator:\n  host: 0.0.0.0\n  port: 9000\n");
        assert_eq!(c.unwrap().health_url(), "http://127.0.0.1:9000/healthz");
        let (c, w) = parse("update:\n  restart_command: /bin/true\n  health_url: http://127.0.0.1:1/x\n  keep_backups: 2\n  hermes_command: /opt/h/bin/hermes\n  timeout_seconds: 60\n");
        let c = c.unwrap();
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(c.health_url(), "http://127.0.0.1:1/x");
        assert_eq!(
            c.update.hermes_command.as_deref(),
            Some("/opt/h/bin/hermes")
        );
        for (bad, key) in [
            ("update:\n  keep_backups: 0\n", "update.keep_backups"),
            ("update:\n  restart_command: ''\n", "update.restart_command"),
            (
                "update:\n  health_url: https://x/healthz\n",
                "update.health_url",
            ),
            (
                "update:\n  hermes_command: hermes\n",
                "update.hermes_command",
            ),
            ("update:\n  timeout_seconds: 1\n", "update.timeout_seconds"),
            ("update:\n  keep_backups: many\n", "update.keep_backups"),
        ] {
            let (c, _) = parse(bad);
            let e = c.unwrap_err();
            assert!(e.message.contains(key), "{bad}: {}", e.message);
        }
    }

    #[test]
    fn update_branch_and_channel_are_checked() {
        let (c, _) = parse("update:\n  branch: release/v1\n  channel: stable\n");
        let c = c.unwrap();
        assert_eq!(c.update.branch.as_deref(), Some("release/v1"));
        assert_eq!(c.update.channel.as_deref(), Some("stable"));
        for bad in [
            "update:\n  branch: \"--upload-pack=x\"\n",
            "update:\n  branch: a..b\n",
            "update:\n  channel: Stable\n",
            "update:\n  channel: a--b\n",
        ] {
            let (c, _) = parse(bad);
            assert!(c.is_err(), "{bad}");
        }
    }

    #[test]
    fn unknown_keys_warn() {
        let (c, w) = parse("operator:\n  prot: 1\nextra: true\n");
        assert!(c.is_ok());
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w.iter().any(|x| x.contains("operator.prot")));
    }

    #[test]
    fn env_parsing() {
        let m = parse_env(
            Path::new("/x/.env"),
            "# c\nexport A=1\nB=\"two words\"\nC='x'\nD=v # note\n",
        )
        .unwrap();
        assert_eq!(m["A"], "1");
        assert_eq!(m["B"], "two words");
        assert_eq!(m["C"], "x");
        assert_eq!(m["D"], "v");
        let e = parse_env(Path::new("/x/.env"), "oops\n").unwrap_err();
        assert!(e.message.contains("/x/.env:1"));
    }

    #[test]
    fn hermes_env_with_a_bad_line_still_gives_the_key() {
        // Before: one unparsable line dropped the whole file, so the server
        // answered 503 hermes_unconfigured although Hermes had its key.
        let dir = tempfile::tempdir().unwrap();
        let home = Home {
            root: dir.path().to_path_buf(),
            source: crate::home::HomeSource::Flag,
        };
        std::fs::write(
            home.hermes_env(),
            "API_SERVER_ENABLED=true\nnot a statement\nH19_TEST_KEY=k-0123456789abcdef\n",
        )
        .unwrap();
        assert_eq!(
            hermes_api_key(&home, "H19_TEST_KEY").as_deref(),
            Some("k-0123456789abcdef")
        );
        let mut c = Config::default();
        c.hermes.api_key_env = "H19_TEST_KEY".into();
        assert!(crate::hermes::api::HermesClient::from_config(&home, &c).is_ok());
        assert_eq!(hermes_dotenv(&home).unwrap().skipped_lines, vec![2]);
    }
}
