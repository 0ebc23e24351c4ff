//! `hermes-operator doctor` (docs/design.md §10): every check with pass / warn / fail,
//! what was found, and how to fix it. Read-only: it never creates a file.
//! The exit code follows the worst result: any `fail` → 12 (unhealthy);
//! warnings alone → 0.

use crate::app::App;
use crate::config::{self, Config, Loaded};
use crate::error::Kind;
use crate::home::Home;
use crate::store::events::Actor;
use crate::store::events::EventKind;
use serde::Serialize;
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Warn,
    Fail,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: String,
    pub status: Status,
    pub detail: String,
    /// What to do (for warn and fail).
    pub fix: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub ok: bool,
    pub worst: Status,
    pub counts: BTreeMap<String, usize>,
    pub hermes_home: String,
    pub checks: Vec<Check>,
}

impl Report {
    pub fn exit_code(&self) -> i32 {
        if self.worst == Status::Fail {
            Kind::Unhealthy.exit_code()
        } else {
            0
        }
    }
}

struct Checks(Vec<Check>);

impl Checks {
    fn add(&mut self, name: &str, status: Status, detail: impl Into<String>, fix: Option<String>) {
        self.0.push(Check {
            name: name.into(),
            status,
            detail: detail.into(),
            fix: if status == Status::Pass { None } else { fix },
        });
    }
    fn pass(&mut self, name: &str, detail: impl Into<String>) {
        self.add(name, Status::Pass, detail, None);
    }
    fn warn(&mut self, name: &str, detail: impl Into<String>, fix: impl Into<String>) {
        self.add(name, Status::Warn, detail, Some(fix.into()));
    }
    fn fail(&mut self, name: &str, detail: impl Into<String>, fix: impl Into<String>) {
        self.add(name, Status::Fail, detail, Some(fix.into()));
    }
}

fn mode(p: &Path) -> Option<u32> {
    std::fs::metadata(p)
        .ok()
        .map(|m| m.permissions().mode() & 0o777)
}

fn err_text(e: &crate::Error) -> String {
    match e.hint_text() {
        Some(h) => format!("{} ({h})", e.message),
        None => e.message.clone(),
    }
}

/// What the checks after the config see.
struct Ctx<'a> {
    app: App,
    systemd_dirs: &'a [std::path::PathBuf],
    /// Set by `hermes_install`; the hook check reads it.
    hermes_version: Option<crate::hermes::install::HermesVersion>,
}

type CheckFn = fn(&mut Checks, &mut Ctx);

/// The checks, in the order `doctor` prints them (after `hermes_home` and
/// `config`, which the others need).
const CHECKS: &[CheckFn] = &[
    |c, x| directories(c, x),
    |c, x| file_permissions(c, x),
    |c, x| match crate::ops::boundary::verdict(&x.app.home) {
        Ok(detail) => c.pass("agent_boundary", detail),
        Err((problem, fix)) => c.fail("agent_boundary", problem, fix),
    },
    |c, x| secrets(c, x),
    |c, x| admin(c, x),
    |c, x| state_db(c, x),
    |c, x| {
        x.hermes_version = hermes_install(c, &x.app.home, &x.app.cfg.config);
    },
    |c, x| hermes_api(c, &x.app),
    |c, x| hook(c, x),
    |c, x| serve_port(c, &x.app.cfg.config),
    |c, x| network(c, &x.app),
    |c, x| match crate::hermes::settings::check_approvals(
        &x.app.home,
        x.app.cfg.config.terminal.approval_mode,
    ) {
        Ok(detail) => c.pass("approvals", detail),
        Err((problem, fix)) => c.fail("approvals", problem, fix),
    },
    |c, x| match crate::hermes::settings::check_storage(&x.app.home) {
        Ok(detail) => c.pass("hermes_storage", detail),
        Err((problem, fix)) => c.fail("hermes_storage", problem, fix),
    },
    |c, x| match crate::hermes::settings::check_terminal(&x.app.home, &x.app.cfg.config) {
        Ok(detail) => c.pass("terminal", detail),
        Err((problem, fix)) => c.fail("terminal", problem, fix),
    },
    |c, x| service_files(c, x),
    |c, x| last_update(c, &x.app),
    |c, x| audit_chain(c, x),
    |c, x| fleet_store(c, x),
    |c, x| single_sign_on(c, &x.app),
];

/// Run every check. `systemd_dirs`: where `install` may have put the unit.
pub fn run(home: &Home, systemd_dirs: &[std::path::PathBuf]) -> Report {
    let mut c = Checks(Vec::new());
    if !hermes_home(&mut c, home) {
        return finish(home, c);
    }
    let loaded = config_check(&mut c, home);
    let mut x = Ctx {
        app: App::new(home.clone(), loaded, Actor::cli()),
        systemd_dirs,
        hermes_version: None,
    };
    for check in CHECKS {
        check(&mut c, &mut x);
    }
    finish(home, c)
}

/// HERMES_HOME exists and is a directory; nothing else can be checked without it.
fn hermes_home(c: &mut Checks, home: &Home) -> bool {
    if let Err(e) = home.require() {
        c.fail(
            "hermes_home",
            e.message.clone(),
            e.hint_text().unwrap_or_default(),
        );
        return false;
    }
    c.pass("hermes_home", home.root.display().to_string());
    true
}

/// The operator's config.yaml: valid, with warnings, or missing (defaults).
fn config_check(c: &mut Checks, home: &Home) -> Loaded {
    match config::load(home) {
        Ok(l) => {
            if !l.warnings.is_empty() {
                c.warn(
                    "config",
                    l.warnings.join("; "),
                    format!("edit {}", l.path.display()),
                );
            } else if l.from_file {
                c.pass("config", format!("{} is valid", l.path.display()));
            } else {
                c.warn(
                    "config",
                    format!(
                        "{} is missing: built-in defaults are used",
                        l.path.display()
                    ),
                    "hermes-operator install (writes a commented default config)",
                );
            }
            l
        }
        Err(e) => {
            c.fail(
                "config",
                e.message.clone(),
                e.hint_text()
                    .unwrap_or_else(|| "fix the key named above".into()),
            );
            Loaded {
                config: Config::default(),
                path: home.config_yaml(),
                from_file: false,
                env: BTreeMap::new(),
                env_path: home.operator_env(),
                warnings: vec![],
            }
        }
    }
}

/// The operator's directories exist and are private (0700).
fn directories(c: &mut Checks, x: &Ctx) {
    let home = &x.app.home;
    let mut missing = Vec::new();
    let mut open = Vec::new();
    for d in [
        home.profile_dir(),
        home.logs_dir(),
        home.plugin_dir(),
        home.scripts_dir(),
    ] {
        match mode(&d) {
            None => missing.push(d.display().to_string()),
            // Search-only (x) for others is allowed: see `home::ensure_private_dir`.
            Some(m) if m & 0o066 != 0 => open.push(format!("{} ({m:o})", d.display())),
            Some(_) => {}
        }
    }
    if !open.is_empty() {
        c.fail(
            "directories",
            format!("readable by others: {}", open.join(", ")),
            "chmod 700 each directory named (or rerun `hermes-operator install`)",
        );
    } else if !missing.is_empty() {
        c.warn(
            "directories",
            format!("missing: {}", missing.join(", ")),
            "hermes-operator install",
        );
    } else {
        c.pass(
            "directories",
            "profiles/operator, logs, plugins/operator, scripts/operator exist, private to their owner",
        );
    }
}

/// Secrets, keys and databases are 0600.
fn file_permissions(c: &mut Checks, x: &Ctx) {
    let home = &x.app.home;
    let mut loose = Vec::new();
    let mut secret_files = vec![
        home.operator_env(),
        home.signing_key(),
        home.users_db(),
        home.events_db(),
        home.config_yaml(),
    ];
    for db in [home.users_db(), home.events_db()] {
        for s in ["-wal", "-shm"] {
            secret_files.push(std::path::PathBuf::from(format!("{}{s}", db.display())));
        }
    }
    for f in &secret_files {
        if let Some(m) = mode(f) {
            if m & 0o077 != 0 {
                loose.push(format!("{} ({m:o})", f.display()));
            }
        }
    }
    if loose.is_empty() {
        c.pass("file_permissions", "secrets, keys and databases are 600");
    } else {
        c.fail(
            "file_permissions",
            format!("readable by others: {}", loose.join(", ")),
            "chmod 600 each file named",
        );
    }
}

/// Hermes' `.env` as Hermes reads it: python-dotenv skips a statement it
/// cannot parse with only a log line, so a WARN here is the one place an
/// operator learns that a variable written there is not set.
fn hermes_env(c: &mut Checks, home: &Home) {
    let path = home.hermes_env();
    match config::hermes_dotenv(home) {
        None => c.pass(
            "hermes_env",
            format!(
                "{} absent: Hermes reads only the environment",
                path.display()
            ),
        ),
        Some(d) if d.skipped_lines.is_empty() => c.pass(
            "hermes_env",
            format!("{} parsed ({} variable(s))", path.display(), d.values.len()),
        ),
        Some(d) => {
            let lines: Vec<String> = d.skipped_lines.iter().map(|n| n.to_string()).collect();
            c.warn(
                "hermes_env",
                format!(
                    "{}: line{} {} cannot be parsed; Hermes (python-dotenv) skips {}, so what {} set is not set",
                    path.display(),
                    if lines.len() == 1 { "" } else { "s" },
                    lines.join(", "),
                    if lines.len() == 1 { "it" } else { "them" },
                    if lines.len() == 1 { "it" } else { "they" },
                ),
                "fix or remove the line(s) named (KEY=VALUE; quote values with spaces), then restart `hermes gateway`",
            )
        }
    }
}

/// The JWT secret, Hermes' API key and the audit signing key.
fn secrets(c: &mut Checks, x: &Ctx) {
    let home = &x.app.home;
    let cfg = &x.app.cfg.config;
    match x.app.cfg.jwt_secret(home) {
        Ok(s) => {
            let distinct: std::collections::HashSet<&u8> = s.iter().collect();
            if distinct.len() < 12 {
                c.warn("jwt_secret", format!("{} has little variety ({} distinct bytes)", cfg.operator.jwt_secret_env, distinct.len()), "hermes-operator install --force (generates 48 random bytes; existing tokens become invalid)");
            } else {
                c.pass(
                    "jwt_secret",
                    format!(
                        "{} set ({} bytes), differs from Hermes' API key",
                        cfg.operator.jwt_secret_env,
                        s.len()
                    ),
                );
            }
        }
        Err(e) => c.fail(
            "jwt_secret",
            e.message.clone(),
            e.hint_text()
                .unwrap_or_else(|| "hermes-operator install --force".into()),
        ),
    }
    hermes_env(c, home);
    match config::hermes_api_key(home, &cfg.hermes.api_key_env) {
        Some(k) if k.len() >= 16 => c.pass("hermes_api_key", format!("{} set ({} chars)", cfg.hermes.api_key_env, k.len())),
        Some(k) => c.fail("hermes_api_key", format!("{} is only {} chars; Hermes' API server refuses keys shorter than 16", cfg.hermes.api_key_env, k.len()), format!("set a longer {} in {} and restart the gateway", cfg.hermes.api_key_env, home.hermes_env().display())),
        None => c.fail("hermes_api_key", format!("{} is not set in {} or the environment", cfg.hermes.api_key_env, home.hermes_env().display()), format!("add {}=<at least 16 random chars> to {} (and API_SERVER_ENABLED=true), then restart `hermes gateway`", cfg.hermes.api_key_env, home.hermes_env().display())),
    }
    match crate::ops::audit::integrity::verifying_key(home) {
        Ok(Some(pk)) => {
            let private = std::fs::read_to_string(home.signing_key()).ok();
            let matches = private
                .and_then(|t| hex::decode(t.trim()).ok())
                .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
                .map(|b| ed25519_dalek::SigningKey::from_bytes(&b).verifying_key() == pk);
            match matches {
                Some(true) => c.pass("signing_key", format!("Ed25519 audit key {}", home.signing_key().display())),
                Some(false) => c.fail("signing_key", "audit_signing.key does not match audit_signing.pub", "restore both from backups/operator_* (checkpoints signed by the old key stop verifying otherwise)"),
                None => c.fail("signing_key", format!("{} is missing or unreadable", home.signing_key().display()), "restore it from backups/operator_*; or hermes-operator install to create a new one"),
            }
        }
        Ok(None) => c.fail(
            "signing_key",
            "no audit signing key",
            "hermes-operator install",
        ),
        Err(e) => c.fail(
            "signing_key",
            e.message.clone(),
            "restore profiles/operator/audit_signing.* from backups/operator_*",
        ),
    }
}

/// An enabled admin account exists.
fn admin(c: &mut Checks, x: &Ctx) {
    let home = &x.app.home;
    match crate::ops::install::admin_exists(home) {
        Ok(Some(name)) => c.pass("admin", format!("enabled admin: {name}")),
        Ok(None) if !home.users_db().exists() => c.fail(
            "admin",
            format!("no users.db at {}", home.users_db().display()),
            "hermes-operator install --admin NAME",
        ),
        Ok(None) => c.fail(
            "admin",
            "no enabled admin account",
            "hermes-operator user add NAME --role admin",
        ),
        Err(e) => c.fail(
            "admin",
            err_text(&e),
            "restore users.db from backups/operator_*",
        ),
    }
}

/// state.db has every column the operator uses.
fn state_db(c: &mut Checks, x: &Ctx) {
    let home = &x.app.home;
    let app = &x.app;
    match app.state_ro() {
        Ok(_) => c.pass(
            "state_db",
            format!(
                "{}: every column the operator uses is present",
                home.state_db().display()
            ),
        ),
        Err(e) => c.fail(
            "state_db",
            e.message.clone(),
            e.hint_text()
                .unwrap_or_else(|| "start Hermes once so it creates and migrates state.db".into()),
        ),
    }
}

/// The shell hook is installed (and fails closed where Hermes can).
fn hook(c: &mut Checks, x: &Ctx) {
    let home = &x.app.home;
    match crate::ops::hooks::hook_command(home).and_then(|cmd| crate::ops::hooks::status(home, &cmd, x.hermes_version.as_ref())) {
        Ok(st) if st.state == "installed" && st.problems.is_empty() => c.pass("hook", format!("installed in {}{}", st.config_path.display(), if st.fails_closed == Some(true) { "; a hook that cannot run blocks the tool (fail_closed)" } else { "" })),
        Ok(st) if st.state == "installed" => c.warn("hook", format!("installed, but: {}", st.problems.join("; ")), "see `hermes-operator hook status`"),
        Ok(st) if st.state == "missing" => c.warn("hook", format!("not installed in {}: agent.enabled_toolsets is not enforced and tool events are not recorded live", st.config_path.display()), "hermes-operator hook install"),
        Ok(st) => c.warn("hook", format!("{}: {}", st.state, st.problems.join("; ")), "hermes-operator hook install"),
        Err(e) => c.warn("hook", format!("unknown: {}", e.message), "hermes-operator hook status"),
    }
}

/// start.sh, auto_update.sh and the systemd unit are in place.
fn service_files(c: &mut Checks, x: &Ctx) {
    let home = &x.app.home;
    let units: Vec<std::path::PathBuf> = x
        .systemd_dirs
        .iter()
        .map(|d| d.join(crate::ops::install::UNIT_NAME))
        .collect();
    let scripts = [
        home.scripts_dir().join("start.sh"),
        crate::ops::update::auto_update_script(home),
    ];
    let mut absent: Vec<String> = scripts
        .iter()
        .filter(|p| mode(p).is_none_or(|m| m & 0o100 == 0))
        .map(|p| p.display().to_string())
        .collect();
    if !units.is_empty() && !units.iter().any(|u| u.exists()) {
        absent.push(
            units
                .iter()
                .map(|u| u.display().to_string())
                .collect::<Vec<_>>()
                .join(" or "),
        );
    }
    if absent.is_empty() {
        c.pass(
            "service_files",
            "start.sh, auto_update.sh and the systemd user unit are in place",
        );
    } else {
        c.warn(
            "service_files",
            format!("missing or not executable: {}", absent.join(", ")),
            "hermes-operator install",
        );
    }
}

/// The event log's hash chain and checkpoints verify.
fn audit_chain(c: &mut Checks, x: &Ctx) {
    let home = &x.app.home;
    let app = &x.app;
    if !home.events_db().exists() {
        c.warn("audit_chain", "no events.db yet", "hermes-operator install");
    } else {
        match crate::ops::audit::integrity::verify_home(app, &[]) {
            Ok(r) if r.ok => c.pass("audit_chain", format!("{} event(s) verified, {} checkpoint(s) matched", r.events, r.checkpoints_checked)),
            Ok(r) => c.fail("audit_chain", r.problem.map(|p| p.message).unwrap_or_default(), "hermes-operator audit verify; keep the file as evidence and compare with backups/operator_*"),
            Err(e) => c.fail("audit_chain", err_text(&e), "hermes-operator audit verify"),
        }
    }
}

/// Clock skew against the fleet's database that is worth a warning, and a
/// failure (event times, token expiry and throttling windows compare
/// clocks of different hosts).
const SKEW_WARN_MS: f64 = 1000.0;
const SKEW_FAIL_MS: f64 = 30_000.0;

/// `store.url` set: the connection (with its schema version), TLS, clock
/// skew, and how far this host's log is behind in PostgreSQL.
fn fleet_store(c: &mut Checks, x: &Ctx) {
    let h = match crate::ops::audit::fleet::health(&x.app) {
        Ok(None) => return,
        Ok(Some(h)) => h,
        Err(e) => {
            let fix = e
                .hint_text()
                .unwrap_or_else(|| "check store.url and OPERATOR_STORE_PASSWORD".into());
            c.fail("fleet_store", err_text(&e), fix);
            return;
        }
    };
    c.pass(
        "fleet_store",
        format!(
            "{} (schema v{}) as host {}",
            h.target, h.schema_version, h.host
        ),
    );
    if h.plain_remote {
        c.warn(
            "fleet_tls",
            format!("{}: {} away from loopback", h.target, h.tls),
            "use sslmode=require (and sslrootcert=CA.pem) in store.url",
        );
    } else {
        c.pass("fleet_tls", h.tls);
    }
    let skew = h.clock_skew_ms.abs();
    let detail = format!(
        "this host's clock is {:+.0} ms off the database's",
        -h.clock_skew_ms
    );
    if skew > SKEW_FAIL_MS {
        c.fail(
            "fleet_clock",
            detail,
            "synchronise the clock (systemd-timesyncd, chrony)",
        );
    } else if skew > SKEW_WARN_MS {
        c.warn(
            "fleet_clock",
            detail,
            "synchronise the clock (systemd-timesyncd, chrony)",
        );
    } else {
        c.pass("fleet_clock", detail);
    }
    if h.local_seq > h.fleet_seq {
        c.warn(
            "fleet_log",
            format!(
                "events.db is at seq {}, PostgreSQL has this host up to seq {}",
                h.local_seq, h.fleet_seq
            ),
            "a running `serve` ships new events every 2 s; without one: hermes-operator store migrate",
        );
    } else {
        c.pass(
            "fleet_log",
            format!("PostgreSQL has this host's log up to seq {}", h.fleet_seq),
        );
    }
}

fn finish(home: &Home, c: Checks) -> Report {
    let worst = c.0.iter().map(|k| k.status).max().unwrap_or(Status::Pass);
    let mut counts = BTreeMap::new();
    for s in [Status::Pass, Status::Warn, Status::Fail] {
        counts.insert(
            s.as_str().to_string(),
            c.0.iter().filter(|k| k.status == s).count(),
        );
    }
    Report {
        ok: worst != Status::Fail,
        worst,
        counts,
        hermes_home: home.root.display().to_string(),
        checks: c.0,
    }
}

/// `auth.oidc` set: the client secret is there, and the provider answers
/// discovery (its issuer exactly the configured one) and serves its keys.
fn single_sign_on(c: &mut Checks, app: &App) {
    let Some(o) = &app.cfg.config.auth.oidc else {
        return;
    };
    let Some(secret) = app.cfg.secret(&o.client_secret_env) else {
        c.fail(
            "sso",
            format!("the client secret {} is not set", o.client_secret_env),
            format!(
                "add {}=… to {} (chmod 600)",
                o.client_secret_env,
                app.cfg.env_path.display()
            ),
        );
        return;
    };
    let (Some(rt), Ok(p)) = (runtime(), crate::oidc::Provider::new(o, secret)) else {
        c.fail("sso", "cannot set up the provider's client", "");
        return;
    };
    match rt.block_on(p.check()) {
        Ok(0) => c.fail(
            "sso",
            format!("{}: the JWKS has no usable key", o.issuer),
            "check the provider's signing keys and auth.oidc.id_token_algorithms",
        ),
        Ok(n) => c.pass(
            "sso",
            format!("{} at {}: discovery ok, {n} signing key(s); callback {}", o.name, o.issuer, o.redirect_url),
        ),
        Err(e) => c.fail(
            "sso",
            e.to_string(),
            "check auth.oidc.issuer and that this host reaches the provider; password logins still work",
        ),
    }
}

fn runtime() -> Option<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()
}

fn hermes_api(c: &mut Checks, app: &App) {
    let h = &app.cfg.config.hermes;
    let url = h.url(&app.home);
    let key = config::hermes_api_key(&app.home, &h.api_key_env).unwrap_or_default();
    let Some(rt) = runtime() else {
        c.fail("hermes_api", "cannot start the async runtime", "");
        return;
    };
    let client = match crate::hermes::api::HermesClient::new(&url, key.clone(), &h.api_key_env) {
        Ok(c) => c,
        Err(e) => {
            c.fail("hermes_api", e.message, "check hermes.api_url");
            return;
        }
    };
    let r = rt.block_on(async {
        client.health().await?;
        if key.is_empty() {
            return Ok(None);
        }
        client.models().await.map(Some)
    });
    match r {
        Ok(Some(models)) => c.pass(
            "hermes_api",
            format!(
                "{} answers; key accepted; models: {}",
                url,
                if models.is_empty() {
                    "-".into()
                } else {
                    models.join(", ")
                }
            ),
        ),
        Ok(None) => c.fail(
            "hermes_api",
            format!("{url} answers, but there is no key to test"),
            format!(
                "set {} in {}",
                h.api_key_env,
                app.home.hermes_env().display()
            ),
        ),
        Err(e) => c.fail(
            "hermes_api",
            e.message.clone(),
            e.hint_text()
                .unwrap_or_else(|| format!("make Hermes' API server answer at {url}")),
        ),
    }
}

fn serve_port(c: &mut Checks, cfg: &Config) {
    let addr = format!(
        "{}:{}",
        if cfg.operator.host.contains(':') && !cfg.operator.host.starts_with('[') {
            format!("[{}]", cfg.operator.host)
        } else {
            cfg.operator.host.clone()
        },
        cfg.operator.port
    );
    match std::net::TcpListener::bind(&addr) {
        Ok(l) => {
            drop(l);
            c.pass(
                "serve_port",
                format!("{addr} is free for `hermes-operator serve`"),
            );
        }
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            let url = cfg.health_url();
            let h = crate::ops::update::health_check(&url, Duration::from_secs(0));
            if h.ok {
                c.pass(
                    "serve_port",
                    format!("{addr}: hermes-operator serve answers {url} ({})", h.detail),
                );
            } else if h.operator {
                // Ours, but down (its own databases): say so, not "another program".
                c.fail(
                    "serve_port",
                    format!(
                        "{addr}: hermes-operator serve answers but is down ({})",
                        h.detail
                    ),
                    "see the serve log; `hermes-operator doctor` lists the databases",
                );
            } else {
                c.fail(
                    "serve_port",
                    format!("{addr} is in use by another program ({url}: {})", h.detail),
                    format!(
                        "free port {} or set operator.port in config.yaml",
                        cfg.operator.port
                    ),
                );
            }
        }
        Err(e) => c.fail(
            "serve_port",
            format!("cannot bind {addr}: {e}"),
            "set operator.host to an address of this machine (127.0.0.1 behind nginx)",
        ),
    }
}

/// The design's network isolation: Hermes' API server on loopback only (as
/// its configuration says and as the live sockets show), and `serve` on
/// loopback when it trusts only loopback proxies (nginx on this host).
fn network(c: &mut Checks, app: &App) {
    use crate::hermes::network::{configured_api_host, is_loopback_host, listeners_on};
    let mut problems = Vec::new();
    let mut fixes = Vec::new();
    let (host, source) = configured_api_host(&app.home);
    if !is_loopback_host(&host) {
        problems.push(format!(
            "Hermes' API server is configured to listen on {host} ({source})"
        ));
        fixes.push(format!(
            "set it to 127.0.0.1 ({source}) and restart Hermes' gateway"
        ));
    }
    let port = reqwest::Url::parse(&app.cfg.config.hermes.url(&app.home))
        .ok()
        .and_then(|u| u.port_or_known_default())
        .unwrap_or(80);
    let open: Vec<String> = listeners_on(port)
        .into_iter()
        .filter(|ip| !ip.to_canonical().is_loopback())
        .map(|ip| ip.to_string())
        .collect();
    if !open.is_empty() {
        problems.push(format!(
            "something listens on port {port} (hermes.api_url) on {}, reachable from other hosts",
            open.join(", ")
        ));
        fixes.push("make Hermes' API server listen on 127.0.0.1 only (API_SERVER_HOST, or a firewall rule)".into());
    }
    let op = &app.cfg.config.operator;
    let loopback_proxies =
        !op.trusted_proxies.is_empty() && op.trusted_proxies.iter().all(|p| is_loopback_host(p));
    if loopback_proxies && !is_loopback_host(&op.host) {
        problems.push(format!(
            "serve listens on {} but trusts only loopback proxies (nginx on this host)",
            op.host
        ));
        fixes.push("set operator.host: 127.0.0.1 (nginx proxies to it), or operator.trusted_proxies: [] when clients connect directly".into());
    }
    if problems.is_empty() {
        c.pass(
            "network",
            format!(
                "Hermes' API server on loopback ({host}, {source}; live sockets on port {port}: loopback only); serve on {}",
                op.host
            ),
        );
    } else {
        c.fail("network", problems.join("; "), fixes.join("; "));
    }
}

fn last_update(c: &mut Checks, app: &App) {
    let home = &app.home;
    let schedule = match crate::ops::update::current_schedule(home) {
        Ok(Some(line)) => format!(
            "scheduled: {}",
            line.split_whitespace()
                .take(5)
                .collect::<Vec<_>>()
                .join(" ")
        ),
        Ok(None) => "not scheduled".to_string(),
        Err(_) => "schedule unknown (no crontab)".to_string(),
    };
    let mut last_started: Option<(String, i64)> = None;
    let mut last_finished: Option<(String, i64, serde_json::Value)> = None;
    if let Ok(store) = app.events_ro() {
        let _ = store.scan(|ev| {
            match ev.event_kind() {
                Some(EventKind::UpdateStarted) => last_started = Some((ev.ts.to_string(), ev.seq)),
                Some(EventKind::UpdateFinished) => {
                    last_finished = Some((
                        ev.ts.to_string(),
                        ev.seq,
                        serde_json::from_str(ev.data).unwrap_or_default(),
                    ))
                }
                _ => {}
            }
            true
        });
    }
    let log = crate::ops::update::log_path(home).display().to_string();
    match (&last_started, &last_finished) {
        (None, None) => c.pass("last_update", format!("no update has run yet; {schedule}")),
        (Some((ts, s)), f) if f.as_ref().is_none_or(|(_, fs, _)| fs < s) => {
            if let Some(pid) = crate::ops::update::running_pid(home) {
                c.pass(
                    "last_update",
                    format!("an update is running (pid {pid}, started {ts}); {schedule}"),
                );
            } else {
                c.warn(
                    "last_update",
                    format!("the update started {ts} never finished (killed?); {schedule}"),
                    format!("read {log}, then run hermes-operator update --yes"),
                );
            }
        }
        (_, Some((ts, _, d))) => {
            let result = d["result"].as_str().unwrap_or("?");
            let versions = format!(
                "{} → {}",
                d["version_before"].as_str().unwrap_or("?"),
                d["version_after"].as_str().unwrap_or("?")
            );
            let age_days = chrono::DateTime::parse_from_rfc3339(ts)
                .map(|t| (chrono::Utc::now() - t.with_timezone(&chrono::Utc)).num_days())
                .unwrap_or(0);
            let detail = format!("{result} at {ts} ({versions}); {schedule}");
            match result {
                "updated" | "up_to_date" if d["exit_code"].as_i64().unwrap_or(0) == 0 => {
                    if age_days > 30 {
                        c.warn(
                            "last_update",
                            format!("{detail}; {age_days} days ago"),
                            "hermes-operator update schedule \"0 3 * * 0\"",
                        );
                    } else {
                        c.pass("last_update", detail);
                    }
                }
                _ => c.fail(
                    "last_update",
                    format!("{detail}: {}", d["reason"].as_str().unwrap_or("")),
                    format!("read {log}; fix the cause, then hermes-operator update --yes"),
                ),
            }
        }
        _ => c.pass("last_update", schedule),
    }
}

/// Check 8: where Hermes is and which version; the version for later checks.
fn hermes_install(
    c: &mut Checks,
    home: &Home,
    cfg: &Config,
) -> Option<crate::hermes::install::HermesVersion> {
    use crate::hermes::install::{detect_version, locate_hermes, version_cmp};
    use std::cmp::Ordering;
    let inst = match locate_hermes(home, cfg.update.hermes_command.as_deref()) {
        Ok(i) => i,
        Err(e) => {
            c.fail(
                "hermes_install",
                e.message.clone(),
                e.hint_text().unwrap_or_default(),
            );
            return None;
        }
    };
    let via = match &inst.launcher {
        Some(l) => format!("{}, via launcher {}", inst.found_via, l.display()),
        None => inst.found_via.clone(),
    };
    match detect_version(home, &inst) {
        Ok(v) => {
            // 0.18.2 is where the tested updates start (pip and git).
            let supported = version_cmp(&v.version, "0.18.0") != Ordering::Less
                && version_cmp(&v.version, "0.23.0") == Ordering::Less;
            let what = format!(
                "Hermes Agent {} ({} install) at {} ({via})",
                v.display(),
                v.method,
                inst.command.display()
            );
            if supported {
                c.pass("hermes_install", what);
            } else {
                c.warn(
                    "hermes_install",
                    format!("{what}; hermes-operator is tested against Hermes 0.18.2 (updates from it), 0.19 and 0.22"),
                    "hermes-operator update --check",
                );
            }
            Some(v)
        }
        Err(e) => {
            c.warn(
                "hermes_install",
                e.message.clone(),
                "set update.hermes_command in config.yaml",
            );
            None
        }
    }
}
