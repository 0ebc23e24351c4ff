//! `hermes-operator install` (docs/design.md §10): set up a server in one idempotent,
//! re-runnable command.
//!
//! Directories (0700) and secrets (0600), the JWT secret and the audit
//! signing key when missing, a commented default config.yaml, the first
//! admin, `scripts/operator/start.sh` and `auto_update.sh`, and the systemd
//! user unit. Every file install writes is recorded (SHA-256) in
//! `profiles/operator/install.json`: a file that still has the recorded
//! content may be refreshed; a file someone changed is kept unless `--force`,
//! which backs it up (`<file>.bak-<UTC ts>`) first. A second run on an
//! installed home changes nothing and says so.

use crate::app::App;
use crate::error::{Error, Result};
use crate::home::write_script;
use crate::home::{self, Home};
use crate::ops::update::auto_update_sh;
use crate::process::sh_quote;
use crate::store::events::EventKind;
use crate::store::users::Role;
use base64::Engine as _;
use rand::RngCore;
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The commented default `profiles/operator/config.yaml`: every key with its
/// default (optional ones commented out). A test pins it to `Config::default()`.
pub const DEFAULT_CONFIG_YAML: &str = r#"# hermes-operator configuration (profiles/operator/config.yaml).
# Written by `hermes-operator install`; every key shows its default.
# A missing key means its default; unknown keys are warned about.

model:
  # The model Hermes should use for operator sessions (a Hermes route alias).
  # default: deepseek-v4-pro
  # provider: deepseek

operator:
  # Address and port of `hermes-operator serve` (nginx proxies to it).
  host: "127.0.0.1"
  port: 8643
  # Env var (in profiles/operator/.env) holding the JWT signing secret.
  jwt_secret_env: "OPERATOR_JWT_SECRET"
  # Browser origins allowed by CORS, e.g. https://operator.example.com
  cors_origins: []
  # Operator session ids are op_<12 hex>; this cannot be changed.
  session_prefix: "op_"
  # Peers whose X-Real-IP / X-Forwarded-For headers are believed.
  trusted_proxies: ["127.0.0.1", "::1"]

agent:
  # Hermes toolsets operator sessions may use (enforced by `hook install`).
  enabled_toolsets: [web, file, skills]
  max_turns: 60
  # Extra lines for the operator supervision prompt.
  instructions: []

terminal:
  backend: local
  # cwd: /home/hermes/operator_workspace
  approval_mode: manual   # manual | smart | off

audit:
  enabled: true
  log_retention_days: 90
  store_content: full     # full | hash (keep only SHA-256 of message bodies)

hermes:
  # Hermes' API server: by default where Hermes' config.yaml has it listen
  # (platforms.api_server.extra host/port, else http://127.0.0.1:8642).
  # api_url: "http://127.0.0.1:8642"
  # The env var (in $HERMES_HOME/.env) with its key.
  api_key_env: "API_SERVER_KEY"

budget:
  session_alert_usd: 0.5
  # user_daily_usd: 5.0
  turn_reserve_usd: 0.05

update:
  # Run after a successful `hermes-operator update` (sh -c).
  restart_command: "systemctl --user restart hermes-operator"
  # GET after the restart; default http://<operator.host>:<operator.port>/healthz
  # health_url: "http://127.0.0.1:8643/healthz"
  # How many backups/operator_* directories to keep.
  keep_backups: 5
  # Hermes' `hermes`; default: on PATH, else the installer's layouts
  # ($HERMES_HOME/hermes-agent/venv, managed environments, ~/.local/bin, /usr/local)
  # hermes_command: /home/hermes/.hermes/hermes-agent/venv/bin/hermes
  # Longest `hermes update` may run (seconds).
  timeout_seconds: 900
  # Git installs: the branch `hermes update --branch` pulls; default Hermes' main.
  # branch: main
  # Hermes 0.22+ git installs: the release channel (stable, canary, main); default Hermes' own.
  # channel: stable
"#;

/// What install did to one thing.
#[derive(Debug, Clone, Serialize)]
pub struct Item {
    pub what: String,
    pub path: String,
    pub action: Action,
    pub note: Option<String>,
}

/// What install did to one thing (`action` in `install --json`).
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Created,
    Updated,
    /// Permissions corrected.
    Fixed,
    /// Overwritten with `--force`, after a backup.
    Replaced,
    Unchanged,
    /// Changed by someone else; not overwritten.
    Kept,
    Skipped,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Created => "created",
            Action::Updated => "updated",
            Action::Fixed => "fixed",
            Action::Replaced => "replaced",
            Action::Unchanged => "unchanged",
            Action::Kept => "kept",
            Action::Skipped => "skipped",
        }
    }
}

impl Item {
    pub fn changed(&self) -> bool {
        matches!(
            self.action,
            Action::Created | Action::Updated | Action::Fixed | Action::Replaced
        )
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub changed: bool,
    pub items: Vec<Item>,
    pub warnings: Vec<String>,
    pub next_steps: Vec<String>,
}

pub struct Options {
    /// The first admin (username, password), used only when no admin exists.
    pub admin: Option<(String, zeroize::Zeroizing<String>)>,
    pub force: bool,
    /// The binary the scripts and the unit run.
    pub exe: PathBuf,
    /// Where the systemd user unit goes; `None` (`--no-systemd`): not written
    /// (a trial on a throwaway home must not leave a unit pointing at it).
    pub systemd_dir: Option<PathBuf>,
    /// `--operator-user`: keep the operator's files under this account, out
    /// of the agent's reach (`ops::boundary::separate`, root only).
    pub operator_user: Option<String>,
}

/// Where the system unit of a separated install goes (`--operator-user`).
pub const SYSTEM_UNIT_DIR: &str = "/etc/systemd/system";

/// Where a system unit goes: `HERMES_OPERATOR_SYSTEMD_DIR` when set (a
/// package's `/usr/lib/systemd/system`, or a test's scratch directory),
/// else [`SYSTEM_UNIT_DIR`].
pub fn systemd_system_dir() -> PathBuf {
    std::env::var_os("HERMES_OPERATOR_SYSTEMD_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(SYSTEM_UNIT_DIR))
}

/// `$XDG_CONFIG_HOME/systemd/user`, else `~/.config/systemd/user`.
pub fn systemd_user_dir() -> Result<PathBuf> {
    if let Some(x) = std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(x).join("systemd/user"));
    }
    let h = std::env::var_os("HOME")
        .filter(|v| !v.is_empty())
        .ok_or_else(|| Error::usage("cannot place the systemd unit: $HOME is not set"))?;
    Ok(PathBuf::from(h).join(".config/systemd/user"))
}

pub const UNIT_NAME: &str = "hermes-operator.service";

fn abs_root(home: &Home) -> PathBuf {
    fs::canonicalize(&home.root).unwrap_or_else(|_| home.root.clone())
}

/// `scripts/operator/start.sh`: the service in the foreground.
pub fn start_sh(home: &Home, exe: &Path) -> String {
    let root = abs_root(home);
    format!(
        "#!/bin/sh\n\
         # hermes-operator: start the operator service in the foreground (written by\n\
         # `hermes-operator install`). The binary reads profiles/operator/.env itself.\n\
         set -eu\n\
         export HERMES_HOME={root}\n\
         exec {exe} --hermes-home {root} serve \"$@\"\n",
        root = sh_quote(&root.to_string_lossy()),
        exe = sh_quote(&exe.to_string_lossy()),
    )
}

fn systemd_quote(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+:@".contains(c))
    {
        s.to_string()
    } else {
        format!(
            "\"{}\"",
            s.replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('%', "%%")
        )
    }
}

/// The systemd unit: `ExecStart = <this binary> serve`; a user unit, or
/// with `account` (`--operator-user`) a system unit running as it.
pub fn systemd_unit(home: &Home, exe: &Path, account: Option<&str>) -> String {
    let root = abs_root(home);
    let env = root.join("profiles/operator/.env");
    let (how, user, wanted) = match account {
        Some(a) => (
            "# systemctl daemon-reload && systemctl enable --now hermes-operator\n".to_string(),
            format!("User={a}\nGroup={a}\n"),
            "multi-user.target",
        ),
        None => (
            "# systemctl --user daemon-reload && systemctl --user enable --now hermes-operator\n\
             # loginctl enable-linger \"$USER\"   # keep it running without a login session\n"
                .to_string(),
            String::new(),
            "default.target",
        ),
    };
    format!(
        "# hermes-operator (written by `hermes-operator install`)\n\
         {how}\
         [Unit]\n\
         Description=hermes-operator: operator control plane for Hermes Agent\n\
         After=network-online.target\n\
         Wants=network-online.target\n\
         \n\
         [Service]\n\
         Type=simple\n\
         {user}\
         Environment=HERMES_HOME={root_q}\n\
         EnvironmentFile={env}\n\
         WorkingDirectory={root_q}\n\
         ExecStart={exe} --hermes-home {root_q} serve\n\
         Restart=always\n\
         RestartSec=5\n\
         UMask=0077\n\
         NoNewPrivileges=yes\n\
         PrivateTmp=yes\n\
         \n\
         [Install]\n\
         WantedBy={wanted}\n",
        root_q = systemd_quote(&root.to_string_lossy()),
        env = systemd_quote(&env.to_string_lossy()),
        exe = systemd_quote(&exe.to_string_lossy()),
    )
}

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn manifest_path(home: &Home) -> PathBuf {
    home.profile_dir().join("install.json")
}

fn read_manifest(home: &Home) -> BTreeMap<String, String> {
    fs::read_to_string(manifest_path(home))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| serde_json::from_value(v["files"].clone()).ok())
        .unwrap_or_default()
}

fn stamp() -> String {
    chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string()
}

fn mode_of(p: &Path) -> Option<u32> {
    fs::metadata(p).ok().map(|m| m.permissions().mode() & 0o777)
}

struct Ctx<'a> {
    home: &'a Home,
    force: bool,
    manifest: BTreeMap<String, String>,
    items: Vec<Item>,
    warnings: Vec<String>,
}

impl Ctx<'_> {
    fn push(&mut self, what: &str, path: &Path, action: Action, note: Option<String>) {
        self.items.push(Item {
            what: what.into(),
            path: path.display().to_string(),
            action,
            note,
        });
    }

    fn dir(&mut self, what: &str, d: &Path, enforce_private: bool) -> Result<()> {
        match mode_of(d) {
            None => {
                home::ensure_private_dir(d)?;
                self.push(what, d, Action::Created, None);
            }
            Some(m) if enforce_private && m & 0o066 != 0 => {
                fs::set_permissions(d, fs::Permissions::from_mode(0o700))
                    .map_err(|e| Error::io(d, "setting mode 0700", e))?;
                self.push(what, d, Action::Fixed, Some(format!("mode {m:o} → 700")));
            }
            Some(_) => self.push(what, d, Action::Unchanged, None),
        }
        Ok(())
    }

    /// Place a generated file: create, refresh when it still has the content
    /// install wrote, keep when someone changed it (unless --force).
    fn file(&mut self, what: &str, path: &Path, text: &str, mode: u32) -> Result<()> {
        let key = path.display().to_string();
        let want = sha(text.as_bytes());
        let write = |p: &Path| -> Result<()> {
            if mode & 0o100 != 0 {
                write_script(p, text)
            } else if mode & 0o044 != 0 {
                // A file others read (the systemd unit) in a directory that
                // is not ours to make private (/etc/systemd/system).
                home::write_atomic(p, text.as_bytes(), Some(mode))
            } else {
                home::write_private_file(p, text.as_bytes())?;
                fs::set_permissions(p, fs::Permissions::from_mode(mode))
                    .map_err(|e| Error::io(p, "setting mode", e))
            }
        };
        match fs::read(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // The directories it creates (e.g. ~/.config/systemd/user)
                // are 0700 whatever the umask; existing ones are left alone.
                if let Some(parent) = path.parent() {
                    if !parent.exists() {
                        home::ensure_private_dir(parent)?;
                    }
                }
                write(path)?;
                self.manifest.insert(key, want);
                self.push(what, path, Action::Created, None);
            }
            Err(e) => return Err(Error::io(path, "reading", e)),
            Ok(cur) => {
                let have = sha(&cur);
                if have == want {
                    self.manifest.insert(key, want);
                    let m = mode_of(path).unwrap_or(mode);
                    if m != mode {
                        fs::set_permissions(path, fs::Permissions::from_mode(mode))
                            .map_err(|e| Error::io(path, "setting mode", e))?;
                        self.push(
                            what,
                            path,
                            Action::Fixed,
                            Some(format!("mode {m:o} → {mode:o}")),
                        );
                    } else {
                        self.push(what, path, Action::Unchanged, None);
                    }
                } else if self.manifest.get(&key) == Some(&have) {
                    write(path)?;
                    self.manifest.insert(key, want);
                    self.push(
                        what,
                        path,
                        Action::Updated,
                        Some("refreshed (nobody had changed it)".into()),
                    );
                } else if self.force {
                    let bak = PathBuf::from(format!("{}.bak-{}", path.display(), stamp()));
                    home::write_private_file(&bak, &cur)?;
                    write(path)?;
                    self.manifest.insert(key, want);
                    self.push(
                        what,
                        path,
                        Action::Replaced,
                        Some(format!("old file backed up to {}", bak.display())),
                    );
                } else {
                    self.push(
                        what,
                        path,
                        Action::Kept,
                        Some("differs from what install would write; --force replaces it (after a backup)".into()),
                    );
                }
            }
        }
        Ok(())
    }

    fn secret_file_mode(&mut self, what: &str, p: &Path) -> Result<()> {
        if let Some(m) = mode_of(p) {
            if m & 0o077 != 0 {
                fs::set_permissions(p, fs::Permissions::from_mode(0o600))
                    .map_err(|e| Error::io(p, "setting mode 0600", e))?;
                self.push(what, p, Action::Fixed, Some(format!("mode {m:o} → 600")));
            }
        }
        Ok(())
    }
}

/// A new JWT secret: 48 random bytes, base64.
pub fn new_jwt_secret() -> String {
    let mut b = [0u8; 48];
    rand::rngs::OsRng.fill_bytes(&mut b);
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// Whether users.db holds an enabled admin (read-only; false when absent).
pub fn admin_exists(home: &Home) -> Result<Option<String>> {
    if !home.users_db().exists() {
        return Ok(None);
    }
    let store = crate::store::users::UserStore::open_readonly(&home.users_db())?;
    Ok(store
        .list()?
        .into_iter()
        .find(|u| u.role == Role::Admin && !u.disabled)
        .map(|u| u.username))
}

#[expect(
    clippy::too_many_lines,
    reason = "the install steps in order (directories, secrets, keys, config, admin, scripts, unit), each a few lines that share the report being built"
)]
pub fn run(app: &App, opts: Options) -> Result<Report> {
    let home = &app.home;
    home.require()?;
    let mut c = Ctx {
        home,
        force: opts.force,
        manifest: read_manifest(home),
        items: Vec::new(),
        warnings: Vec::new(),
    };
    let manifest_before = c.manifest.clone();

    // Directories.
    c.dir("operator profile", &home.profile_dir(), true)?;
    c.dir("logs", &home.logs_dir(), true)?;
    c.dir("operator data", &home.plugin_dir(), true)?;
    c.dir("scripts", &home.scripts_dir(), true)?;
    c.dir("backups", &home.backups_dir(), false)?;

    // Secrets: the JWT secret in profiles/operator/.env.
    jwt_secret(&mut c, app)?;
    // The audit signing key.
    let key = home.signing_key();
    if key.exists() {
        crate::ops::audit::integrity::signing_key(home)?; // validates it
        c.push("audit signing key", &key, Action::Unchanged, None);
        c.secret_file_mode("audit signing key", &key)?;
    } else {
        crate::ops::audit::integrity::signing_key(home)?;
        c.push(
            "audit signing key",
            &key,
            Action::Created,
            Some("Ed25519; public half in audit_signing.pub".into()),
        );
    }

    // Default config.
    c.file("config", &home.config_yaml(), DEFAULT_CONFIG_YAML, 0o600)?;

    // Databases.
    for (what, p) in [
        ("users.db", home.users_db()),
        ("events.db", home.events_db()),
    ] {
        let existed = p.exists();
        if what == "users.db" {
            app.users()?;
        } else {
            app.events()?;
        }
        c.push(
            what,
            &p,
            if existed {
                Action::Unchanged
            } else {
                Action::Created
            },
            None,
        );
        c.secret_file_mode(what, &p)?;
    }

    // First admin.
    match admin_exists(home)? {
        Some(name) => c.push(
            "admin",
            &home.users_db(),
            Action::Skipped,
            Some(format!("admin {name} exists")),
        ),
        None => match &opts.admin {
            Some((name, pw)) => {
                let u = crate::ops::accounts::add_user(app, name, Role::Admin, pw)?;
                c.push(
                    "admin",
                    &home.users_db(),
                    Action::Created,
                    Some(format!("{} (id {})", u.username, u.id)),
                );
            }
            None => {
                c.push(
                    "admin",
                    &home.users_db(),
                    Action::Skipped,
                    Some("no admin yet".into()),
                );
                c.warnings.push("no admin account exists: create one with `hermes-operator user add NAME --role admin`".into());
            }
        },
    }

    // Scripts and the unit.
    c.file(
        "start script",
        &home.scripts_dir().join("start.sh"),
        &start_sh(home, &opts.exe),
        0o700,
    )?;
    c.file(
        "auto-update script",
        &crate::ops::update::auto_update_script(home),
        &auto_update_sh(home, &opts.exe),
        0o700,
    )?;
    match &opts.systemd_dir {
        Some(dir) => c.file(
            "systemd user unit",
            &dir.join(UNIT_NAME),
            &systemd_unit(home, &opts.exe, opts.operator_user.as_deref()),
            0o644,
        )?,
        None => c.push(
            "systemd user unit",
            Path::new(UNIT_NAME),
            Action::Skipped,
            Some("--no-systemd: not written".into()),
        ),
    }

    if c.manifest != manifest_before {
        let text = serde_json::to_string_pretty(&json!({
            "written_by": format!("hermes-operator {}", env!("CARGO_PKG_VERSION")),
            "files": c.manifest,
        }))?;
        home::write_private_file(&manifest_path(home), text.as_bytes())?;
    }

    let changed = c.items.iter().any(Item::changed);
    if changed {
        let summary: Vec<serde_json::Value> = c
            .items
            .iter()
            .filter(|i| i.changed())
            .map(|i| json!({"what": i.what, "path": i.path, "action": i.action}))
            .collect();
        app.record(app.event(
            EventKind::Installed,
            json!({"changes": summary, "force": opts.force}),
        ))?;
    }
    let mut changed = changed;
    if let Some(name) = &opts.operator_user {
        let sep = crate::ops::boundary::separate(home, name)?;
        c.items.push(Item {
            what: "operator account".into(),
            path: sep.account.clone(),
            action: if sep.created {
                Action::Created
            } else {
                Action::Unchanged
            },
            note: Some(format!("Hermes runs as {}", sep.hermes.describe())),
        });
        for step in &sep.steps {
            c.items.push(Item {
                what: "agent boundary".into(),
                path: home.root.display().to_string(),
                action: Action::Fixed,
                note: Some(step.clone()),
            });
        }
        changed = true;
    }
    let mut next = Vec::new();
    if let Some(name) = &opts.operator_user {
        next.push(format!(
            "run every hermes-operator command as the operator's account: sudo -u {name} hermes-operator …"
        ));
    }
    if admin_exists(home)?.is_none() {
        next.push("create the first admin: hermes-operator user add NAME --role admin".to_string());
    }
    let sudo = opts
        .operator_user
        .as_ref()
        .map(|n| format!("sudo -u {n} "))
        .unwrap_or_default();
    next.push(match (&opts.operator_user, &opts.systemd_dir) {
        (Some(name), Some(_)) => format!("start the service: systemctl daemon-reload && systemctl enable --now hermes-operator (a system unit running serve as {name})"),
        (None, Some(_)) => "start the service: systemctl --user daemon-reload && systemctl --user enable --now hermes-operator (and `loginctl enable-linger $USER` so it runs without a login)".into(),
        (_, None) => format!("start the server (no systemd unit was written): {sudo}hermes-operator serve"),
    });
    next.push(format!(
        "enforce the tool policy: {sudo}hermes-operator hook install, then restart Hermes' gateway"
    ));
    next.push("weekly unattended updates: hermes-operator update schedule \"0 3 * * 0\"".into());
    next.push("put nginx in front with TLS: see examples/nginx-hermes-operator.conf".into());
    next.push("check everything: hermes-operator doctor".into());
    Ok(Report {
        changed,
        items: c.items,
        warnings: c.warnings,
        next_steps: next,
    })
}

#[expect(
    clippy::too_many_lines,
    reason = "the JWT secret's cases (present, missing, weak, --force) each write or keep the .env line; they share the parsed file"
)]
fn jwt_secret(c: &mut Ctx, app: &App) -> Result<()> {
    let home = c.home;
    let path = home.operator_env();
    let name = app.cfg.config.operator.jwt_secret_env.clone();
    let text = match fs::read_to_string(&path) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(Error::io(&path, "reading secrets", e)),
    };
    let map = match &text {
        Some(t) => crate::config::parse_env(&path, t)?,
        None => BTreeMap::new(),
    };
    let current = map.get(&name).filter(|v| !v.is_empty());
    let api_key = crate::config::hermes_api_key(home, &app.cfg.config.hermes.api_key_env);
    let problem = current.and_then(|v| {
        if v.len() < 32 {
            Some(format!(
                "{name} is only {} bytes (at least 32 are required)",
                v.len()
            ))
        } else if api_key.as_deref() == Some(v.as_str()) {
            Some(format!("{name} equals Hermes' API key"))
        } else {
            None
        }
    });
    let line = format!("{name}={}\n", new_jwt_secret());
    match (current, problem) {
        (None, _) => {
            let mut new = text.clone().unwrap_or_default();
            if !new.is_empty() && !new.ends_with('\n') {
                new.push('\n');
            }
            if text.is_none() {
                new.push_str(
                    "# hermes-operator secrets (0600). Written by `hermes-operator install`.\n",
                );
            }
            new.push_str(&line);
            write_env(&path, &new)?;
            c.push(
                "JWT secret",
                &path,
                Action::Created,
                Some(format!("{name}: 48 random bytes, base64")),
            );
        }
        (Some(_), None) => {
            c.push("JWT secret", &path, Action::Unchanged, None);
            c.secret_file_mode("secrets file", &path)?;
        }
        (Some(_), Some(p)) if c.force => {
            let old = text.unwrap_or_default();
            let bak = PathBuf::from(format!("{}.bak-{}", path.display(), stamp()));
            home::write_private_file(&bak, old.as_bytes())?;
            let mut new: String = old
                .lines()
                .filter(|l| {
                    let l = l.trim_start();
                    let l = l.strip_prefix("export ").unwrap_or(l);
                    !l.starts_with(&format!("{name}="))
                })
                .map(|l| format!("{l}\n"))
                .collect();
            new.push_str(&line);
            write_env(&path, &new)?;
            c.push(
                "JWT secret",
                &path,
                Action::Replaced,
                Some(format!(
                    "{p}; new secret (old file backed up to {}); existing tokens are invalid",
                    bak.display()
                )),
            );
        }
        (Some(_), Some(p)) => {
            c.push(
                "JWT secret",
                &path,
                Action::Kept,
                Some(format!("{p}; --force replaces it")),
            );
            c.warnings.push(format!(
                "{p}: `serve` will refuse to start; rerun with --force to generate a new one"
            ));
        }
    }
    Ok(())
}

/// Atomic, 0600 from the start (temp file + rename).
fn write_env(path: &Path, text: &str) -> Result<()> {
    home::write_private_file(path, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_is_the_defaults() {
        let mut w = Vec::new();
        let c = crate::config::parse_yaml(Path::new("/x/config.yaml"), DEFAULT_CONFIG_YAML, &mut w)
            .unwrap();
        assert!(w.is_empty(), "{w:?}");
        let d = crate::config::Config::default();
        assert_eq!(format!("{c:?}"), format!("{d:?}"));
        // Every section of Config is spelled out.
        for k in [
            "model:",
            "operator:",
            "agent:",
            "terminal:",
            "audit:",
            "hermes:",
            "budget:",
            "update:",
        ] {
            assert!(DEFAULT_CONFIG_YAML.contains(k), "{k}");
        }
    }

    #[test]
    fn jwt_secret_is_strong() {
        let s = new_jwt_secret();
        assert_eq!(s.len(), 64);
        assert_ne!(s, new_jwt_secret());
    }

    #[test]
    fn unit_quotes_paths() {
        let h = Home::at("/srv/my home");
        let u = systemd_unit(&h, Path::new("/usr/local/bin/hermes-operator"), None);
        assert!(
            u.contains(
                "ExecStart=/usr/local/bin/hermes-operator --hermes-home \"/srv/my home\" serve"
            ),
            "{u}"
        );
        assert!(
            u.contains("EnvironmentFile=\"/srv/my home/profiles/operator/.env\""),
            "{u}"
        );
    }
}
