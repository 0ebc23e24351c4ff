//! Install, uninstall and status: plans, backups, applying them, audit events.

use super::*;

/// What `hook install` / `hook uninstall` would do. `*_after` is None when
/// that file stays as it is.
#[derive(Debug, Clone)]
pub struct Plan {
    pub(super) mode: Mode,
    pub command: String,
    pub config_path: PathBuf,
    pub config_before: Option<String>,
    pub config_after: Option<String>,
    pub allowlist_path: PathBuf,
    pub allowlist_before: Option<String>,
    pub allowlist_after: Option<String>,
    /// One line per change, for people.
    pub changes: Vec<String>,
}

impl Plan {
    pub fn changed(&self) -> bool {
        self.config_after.is_some() || self.allowlist_after.is_some()
    }
    /// A unified diff of config.yaml (empty when unchanged).
    pub fn config_diff(&self) -> String {
        match &self.config_after {
            Some(after) => unified_diff(
                &self.config_path.display().to_string(),
                self.config_before.as_deref().unwrap_or(""),
                after,
            ),
            None => String::new(),
        }
    }
}

fn read_opt(path: &Path) -> Result<Option<String>> {
    match fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(path, "reading", e)),
    }
}

fn manual_snippet(command: &str) -> String {
    let mut s = String::from("hooks:\n");
    for ev in MANAGED_EVENTS {
        s.push_str(&format!("  {ev}:\n"));
        for l in entry_lines(4, ev.name(), command, ev.timeout_secs()) {
            s.push_str(&l);
            s.push('\n');
        }
    }
    s
}

fn plan(home: &Home, mode: Mode, command: &str) -> Result<Plan> {
    home.require()?;
    let config_path = home.hermes_config();
    let allowlist_path = home.root.join(ALLOWLIST_FILE);
    let config_before = read_opt(&config_path)?;
    let text = config_before.as_deref().unwrap_or("");
    let root = parse_root(&config_path, text)?;
    let hooks = hooks_of(&config_path, &root)?;
    let plans = plan_events(hooks, mode, command);
    let mut changes = Vec::new();
    let config_after = if plans.is_empty() {
        None
    } else {
        for p in &plans {
            if p.drop_event {
                changes.push(format!(
                    "config.yaml: remove hooks.{} (only hermes-operator entries)",
                    p.event
                ));
            } else {
                if !p.drop_items.is_empty() {
                    changes.push(format!(
                        "config.yaml: remove {} old hermes-operator entr{} from hooks.{}",
                        p.drop_items.len(),
                        if p.drop_items.len() == 1 { "y" } else { "ies" },
                        p.event
                    ));
                }
                if p.append.is_some() {
                    changes.push(format!("config.yaml: add hooks.{} entry", p.event));
                }
            }
        }
        let expected = expected_hooks(hooks, &plans);
        let refuse = |why: String| {
            let verb = if mode == Mode::Install {
                "add"
            } else {
                "remove"
            };
            Error::config(format!(
                "cannot edit the `hooks:` block of {} safely: {why}",
                config_path.display()
            ))
            .hint(if mode == Mode::Install {
                format!(
                    "{verb} these entries by hand (merging with any hooks you have), then run `hermes-operator hook install` again to approve them:\n{}",
                    manual_snippet(command)
                )
            } else {
                "remove the hook entries whose command runs `hermes-operator ... hook` by hand, then run `hermes-operator hook uninstall` again".to_string()
            })
        };
        let after = edit_text(text, &root, &plans).map_err(refuse)?;
        verify_edit(&config_path, &root, &after, &expected).map_err(refuse)?;
        (after != text || config_before.is_none()).then_some(after)
    };
    let allowlist_before = read_opt(&allowlist_path)?;
    let al = parse_allowlist(&allowlist_path, allowlist_before.as_deref())?;
    let al_after = edit_allowlist(&al, mode, command);
    let allowlist_after = if al_after["approvals"] == al["approvals"] {
        None
    } else {
        let old = al["approvals"].as_array().map_or(0, Vec::len);
        let new = al_after["approvals"].as_array().map_or(0, Vec::len);
        changes.push(format!("{ALLOWLIST_FILE}: {old} → {new} approvals"));
        Some(python_json(&al_after))
    };
    Ok(Plan {
        mode,
        command: command.to_string(),
        config_path,
        config_before,
        config_after,
        allowlist_path,
        allowlist_before,
        allowlist_after,
        changes,
    })
}

/// Plan `hook install` for `command` (see [`hook_command`]).
pub fn plan_install(home: &Home, command: &str) -> Result<Plan> {
    plan(home, Mode::Install, command)
}

/// Plan `hook uninstall`: every hermes-operator hook entry goes.
pub fn plan_uninstall(home: &Home) -> Result<Plan> {
    plan(home, Mode::Uninstall, "")
}

#[derive(Debug, Clone, Serialize)]
pub struct Applied {
    pub backup_dir: Option<PathBuf>,
    pub config_changed: bool,
    pub allowlist_changed: bool,
}

/// Make the planned changes: back both files up into
/// `backups/operator_hooks_<UTC ts>/`, then write them atomically
/// (allowlist first on install, so Hermes never sees an unapproved entry).
pub fn apply(home: &Home, plan: &Plan) -> Result<Applied> {
    if !plan.changed() {
        return Ok(Applied {
            backup_dir: None,
            config_changed: false,
            allowlist_changed: false,
        });
    }
    let backup_dir = backup(home, plan)?;
    let mut allowlist_changed = false;
    let write_allowlist = |changed: &mut bool| -> Result<()> {
        if plan.allowlist_after.is_some() {
            *changed = update_allowlist(plan)?;
        }
        Ok(())
    };
    if plan.mode == Mode::Install {
        write_allowlist(&mut allowlist_changed)?;
    }
    let config_changed = if let Some(after) = &plan.config_after {
        let now = read_opt(&plan.config_path)?;
        if now != plan.config_before {
            return Err(Error::conflict(format!(
                "{} changed while it was being edited; nothing was written to it",
                plan.config_path.display()
            ))
            .hint("run the command again"));
        }
        atomic_write(&plan.config_path, after.as_bytes())?;
        true
    } else {
        false
    };
    if plan.mode == Mode::Uninstall {
        write_allowlist(&mut allowlist_changed)?;
    }
    Ok(Applied {
        backup_dir: Some(backup_dir),
        config_changed,
        allowlist_changed,
    })
}

fn backup(home: &Home, plan: &Plan) -> Result<PathBuf> {
    let ts = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
    let base = home.backups_dir();
    let mut dir = base.join(format!("operator_hooks_{ts}"));
    let mut n = 1;
    while dir.exists() {
        n += 1;
        dir = base.join(format!("operator_hooks_{ts}_{n}"));
    }
    home::ensure_private_dir(&dir)?;
    for (src, before) in [
        (&plan.config_path, &plan.config_before),
        (&plan.allowlist_path, &plan.allowlist_before),
    ] {
        if let Some(text) = before {
            let name = src.file_name().unwrap_or_default();
            home::write_private_file(&dir.join(name), text.as_bytes())?;
        }
    }
    Ok(dir)
}

/// Write a file atomically next to itself, keeping its mode and owner and
/// writing through a symlink to its target. A new file is 0600, or 0660
/// when HERMES_HOME is shared with a group (two accounts, docs/design.md
/// §12): the operator writes Hermes' allowlist and config, Hermes must
/// still read them (Hermes 0.22 skips a hook its allowlist does not show).
fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    let target = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let shared = target
        .parent()
        .and_then(|d| fs::metadata(d).ok())
        .is_some_and(|m| m.permissions().mode() & 0o070 == 0o070);
    let mode = (!target.exists() && shared).then_some(0o660);
    home::write_atomic(&target, bytes, mode)
}

/// Read-modify-write of the allowlist under Hermes' own lock
/// (`flock` on `shell-hooks-allowlist.json.lock`). Returns whether it changed.
fn update_allowlist(plan: &Plan) -> Result<bool> {
    let lock_path = plan
        .allowlist_path
        .with_file_name(format!("{ALLOWLIST_FILE}.lock"));
    let lock = fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(&lock_path)
        .map_err(|e| Error::io(&lock_path, "opening lock file", e))?;
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a file descriptor we own; released when `lock` drops.
    if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(Error::io(
            &lock_path,
            "locking",
            std::io::Error::last_os_error(),
        ));
    }
    let now = read_opt(&plan.allowlist_path)?;
    let after = if now == plan.allowlist_before {
        plan.allowlist_after.clone()
    } else {
        // Hermes approved something meanwhile: redo the edit on the new content.
        let al = parse_allowlist(&plan.allowlist_path, now.as_deref())?;
        let a = edit_allowlist(&al, plan.mode, &plan.command);
        (a["approvals"] != al["approvals"]).then(|| python_json(&a))
    };
    let Some(after) = after else { return Ok(false) };
    atomic_write(&plan.allowlist_path, after.as_bytes())?;
    drop(lock);
    Ok(true)
}

/// One event's state in `hook status`.
#[derive(Debug, Clone, Serialize)]
pub struct EventStatus {
    pub event: String,
    /// `installed` (exactly our entry), `partial` (hermes-operator entries
    /// that differ: another path, timeout or duplicates) or `missing`.
    pub state: String,
    /// The hermes-operator commands configured for this event.
    pub commands: Vec<String>,
    pub allowlisted: bool,
    pub command_exists: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// `installed`, `partial` or `missing`.
    pub state: String,
    pub config_path: PathBuf,
    pub config_exists: bool,
    pub allowlist_path: PathBuf,
    pub expected_command: String,
    pub events: Vec<EventStatus>,
    /// Hermes compacts long conversations keeping the session id (see the
    /// module notes); false means it rotates ids and the policy is lost.
    pub compression_in_place: bool,
    /// The Hermes version the check was made against (`None`: not found).
    pub hermes_version: Option<String>,
    /// Whether that Hermes blocks a tool when the policy hook cannot run
    /// (`fail_closed: true` honoured, 0.20+); `None` when Hermes was not found.
    pub fails_closed: Option<bool>,
    pub problems: Vec<String>,
}

/// What Hermes 0.19 makes of `compression.in_place` (its config loader
/// merges defaults, where it is true; the agent then reads it with
/// `is_truthy_value(.., default=False)`): absent or a null `compression` →
/// true; a `compression` mapping without the key → true; with the key → its
/// truthiness (null → false); `compression` of another type → false.
pub fn compression_in_place(root: &Mapping) -> bool {
    match root.get("compression") {
        None | Some(Yaml::Null) => true,
        Some(Yaml::Mapping(m)) => match m.get("in_place") {
            None => true,
            Some(Yaml::Bool(b)) => *b,
            Some(Yaml::String(s)) => {
                matches!(
                    s.trim().to_ascii_lowercase().as_str(),
                    "1" | "true" | "yes" | "on"
                )
            }
            Some(Yaml::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
            Some(Yaml::Null) => false,
            Some(Yaml::Sequence(s)) => !s.is_empty(),
            Some(Yaml::Mapping(m)) => !m.is_empty(),
            Some(Yaml::Tagged(_)) => true,
        },
        Some(_) => false,
    }
}

/// Read-only: what Hermes' config and allowlist say about our hooks.
/// `hermes`: the installed Hermes, when found (see `crate::hermes::install`).
#[expect(
    clippy::too_many_lines,
    reason = "one report over every managed event: each event's entry, allowlist and program checks share the parsed config"
)]
pub fn status(
    home: &Home,
    command: &str,
    hermes: Option<&crate::hermes::install::HermesVersion>,
) -> Result<Status> {
    home.require()?;
    let config_path = home.hermes_config();
    let allowlist_path = home.root.join(ALLOWLIST_FILE);
    let text = read_opt(&config_path)?;
    let root = parse_root(&config_path, text.as_deref().unwrap_or(""))?;
    let hooks = hooks_of(&config_path, &root)?;
    let al = parse_allowlist(&allowlist_path, read_opt(&allowlist_path)?.as_deref())?;
    let mut events = Vec::new();
    let mut problems = Vec::new();
    for hook_event in MANAGED_EVENTS {
        let (ev, t) = (hook_event.name(), hook_event.timeout_secs());
        let list: Vec<Yaml> = hooks
            .and_then(|h| h.get(ev))
            .and_then(Yaml::as_sequence)
            .cloned()
            .unwrap_or_default();
        let managed: Vec<&Yaml> = list.iter().filter(|v| is_managed_entry(v)).collect();
        let commands: Vec<String> = managed
            .iter()
            .filter_map(|v| v.get("command").and_then(Yaml::as_str).map(str::to_string))
            .collect();
        let state = if managed.is_empty() {
            "missing"
        } else if managed.len() == 1 && *managed[0] == desired_entry(ev, command, t) {
            "installed"
        } else {
            "partial"
        };
        let allowlisted = !commands.is_empty() && commands.iter().all(|c| allowlisted(&al, ev, c));
        let command_exists = !commands.is_empty()
            && commands
                .iter()
                .all(|c| command_program(c).is_some_and(|p| is_executable(&p)));
        if state == "partial" {
            problems.push(format!(
                "hooks.{ev}: hermes-operator entries differ from `{command}` (timeout {t}); run `hermes-operator hook install`"
            ));
        }
        if state != "missing" && !allowlisted {
            problems.push(format!(
                "hooks.{ev}: not in {ALLOWLIST_FILE}; Hermes will not run it without consent"
            ));
        }
        if state != "missing" && !command_exists {
            problems.push(format!(
                "hooks.{ev}: the configured program does not exist or is not executable"
            ));
        }
        events.push(EventStatus {
            event: ev.to_string(),
            state: state.to_string(),
            commands,
            allowlisted,
            command_exists,
        });
    }
    let in_place = compression_in_place(&root);
    if !in_place {
        problems.push(format!(
            "compression.in_place is off in {}: Hermes continues a compressed conversation under a new session id, which the tool policy, the live events and the operator's session views do not follow; remove the setting or set it to true (Hermes' default)",
            config_path.display()
        ));
    }
    let fails_closed = hermes.map(|v| v.hooks_fail_closed());
    if let (Some(false), Some(v)) = (fails_closed, hermes) {
        if events.iter().any(|e| e.state != "missing") {
            problems.push(format!(
                "Hermes {} runs a tool when the policy hook cannot run (program missing, crashed, timed out): the tool policy fails open; upgrade Hermes to 0.20 or later, which honours the fail_closed: true written by hook install",
                v.version
            ));
        }
    }
    let all = |s: &str| events.iter().all(|e| e.state == s);
    let state = if all("installed") && events.iter().all(|e| e.allowlisted && e.command_exists) {
        "installed"
    } else if all("missing") {
        "missing"
    } else {
        "partial"
    };
    Ok(Status {
        state: state.to_string(),
        config_path,
        config_exists: text.is_some(),
        allowlist_path,
        expected_command: command.to_string(),
        events,
        compression_in_place: in_place,
        hermes_version: hermes.map(|v| v.version.clone()),
        fails_closed,
        problems,
    })
}
