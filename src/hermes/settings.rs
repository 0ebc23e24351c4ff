//! Hermes settings the operator enforces its own config against:
//! `terminal.backend` and the Hermes version that can honour
//! `terminal.cwd` (below), and `approvals.mode`, read as Hermes reads it (`tools/approval.py`
//! `_normalize_approval_mode`: YAML booleans `off`/`on` become "off"/"manual",
//! unknown strings "manual"; a missing key takes the default of
//! `DEFAULT_CONFIG`, which is "smart" in both 0.19 `hermes_cli/config.py`
//! and 0.22 `hermes_cli/config_defaults.py`).

use crate::config::ApprovalMode;
use crate::home::Home;

/// The value at `keys` in Hermes' config.yaml (`None` when the file, a key
/// on the way, or valid YAML is missing): the one reader of that file for
/// the settings the operator checks.
pub fn config_value(home: &Home, keys: &[&str]) -> Option<serde_norway::Value> {
    let mut v = &*parsed_config(home)?;
    for k in keys {
        v = v.get(*k)?;
    }
    Some(v.clone())
}

/// Hermes' config.yaml parsed. Every chat turn checks two settings in it:
/// the last parse is reused while the file's text is the same (reading the
/// file is cheap; parsing a full Hermes config is what costs).
fn parsed_config(home: &Home) -> Option<std::sync::Arc<serde_norway::Value>> {
    type Parsed = (
        std::path::PathBuf,
        String,
        std::sync::Arc<serde_norway::Value>,
    );
    static LAST: std::sync::Mutex<Option<Parsed>> = std::sync::Mutex::new(None);
    let path = home.hermes_config();
    let text = std::fs::read_to_string(&path).ok()?;
    if let Some((p, t, v)) = &*LAST.lock().unwrap_or_else(|e| e.into_inner()) {
        if *p == path && *t == text {
            return Some(v.clone());
        }
    }
    let v = std::sync::Arc::new(serde_norway::from_str::<serde_norway::Value>(&text).ok()?);
    *LAST.lock().unwrap_or_else(|e| e.into_inner()) = Some((path, text, v.clone()));
    Some(v)
}

/// Hermes' effective `approvals.mode` and where it came from.
pub fn approvals_mode(home: &Home) -> (ApprovalMode, String) {
    let path = home.hermes_config();
    let mode = match config_value(home, &["approvals", "mode"]).as_ref() {
        None | Some(serde_norway::Value::Null) => {
            return (
                ApprovalMode::Smart,
                format!("Hermes' default (no approvals.mode in {})", path.display()),
            )
        }
        Some(serde_norway::Value::Bool(false)) => ApprovalMode::Off,
        Some(serde_norway::Value::Bool(true)) => ApprovalMode::Manual,
        Some(serde_norway::Value::String(s)) => match s.trim().to_lowercase().as_str() {
            "smart" => ApprovalMode::Smart,
            "off" => ApprovalMode::Off,
            _ => ApprovalMode::Manual,
        },
        Some(_) => ApprovalMode::Manual,
    };
    (mode, format!("approvals.mode in {}", path.display()))
}

/// How much a mode asks a person: manual (always) > smart (an auxiliary model
/// may approve) > off (never).
fn strictness(m: ApprovalMode) -> u8 {
    match m {
        ApprovalMode::Manual => 2,
        ApprovalMode::Smart => 1,
        ApprovalMode::Off => 0,
    }
}

fn name(m: ApprovalMode) -> &'static str {
    match m {
        ApprovalMode::Manual => "manual",
        ApprovalMode::Smart => "smart",
        ApprovalMode::Off => "off",
    }
}

/// `Err((problem, fix))` when Hermes approves dangerous commands more loosely
/// than the operator's `terminal.approval_mode` allows.
pub fn check_approvals(home: &Home, wanted: ApprovalMode) -> Result<String, (String, String)> {
    let (mode, source) = approvals_mode(home);
    if strictness(mode) >= strictness(wanted) {
        return Ok(format!(
            "Hermes approvals.mode is {} ({source}); the operator requires {}",
            name(mode),
            name(wanted)
        ));
    }
    Err((
        format!(
            "Hermes' approvals.mode is {} ({source}), but terminal.approval_mode: {} means an operator session never runs a dangerous command unapproved",
            name(mode),
            name(wanted)
        ),
        format!(
            "set `approvals:\\n  mode: {}` in {} and restart Hermes' gateway (or relax terminal.approval_mode in the operator's config.yaml)",
            name(wanted),
            home.hermes_config().display()
        ),
    ))
}

/// Hermes 0.22's shell hooks may answer a `pre_tool_call` with
/// `{"action": "modify", "args": {...}}` (`agent/shell_hooks.py`
/// `_parse_pre_tool_call`); the operator's hook sets a terminal call's
/// `workdir` that way. Older Hermes ignores the answer.
pub const MODIFY_MIN_VERSION: &str = "0.22.0";

/// Hermes' `terminal.backend` (config.yaml; default `local` in both
/// generations' `DEFAULT_CONFIG`).
pub fn terminal_backend(home: &Home) -> String {
    config_value(home, &["terminal", "backend"])
        .and_then(|b| b.as_str().map(str::to_string))
        .unwrap_or_else(|| "local".into())
}

/// `Err((problem, fix))` when the operator's `terminal.backend` is not the
/// one Hermes runs commands with, or `terminal.cwd` is set but the Hermes
/// that runs cannot be told a working directory per call (before 0.22, or
/// not found).
pub fn check_terminal(
    home: &Home,
    cfg: &crate::config::Config,
) -> Result<String, (String, String)> {
    let hermes_backend = terminal_backend(home);
    if hermes_backend != cfg.terminal.backend {
        return Err((
            format!(
                "terminal.backend is {}, but Hermes runs terminal commands with {hermes_backend} (terminal.backend in {})",
                cfg.terminal.backend,
                home.hermes_config().display()
            ),
            "set the same backend in both (the operator cannot choose one per session)".into(),
        ));
    }
    let Some(cwd) = &cfg.terminal.cwd else {
        return Ok(format!(
            "terminal backend {hermes_backend}; no working directory set"
        ));
    };
    let version = crate::hermes::install::locate_hermes(home, cfg.update.hermes_command.as_deref())
        .and_then(|inst| crate::hermes::install::detect_version(home, &inst));
    match version {
        Ok(v) if crate::hermes::install::version_cmp(&v.version, MODIFY_MIN_VERSION)
            != std::cmp::Ordering::Less =>
        {
            Ok(format!(
                "terminal backend {hermes_backend}; operator terminal calls start in {cwd} (Hermes {})",
                v.version
            ))
        }
        Ok(v) => Err((
            format!(
                "terminal.cwd is set, but Hermes {} cannot be told a terminal call's working directory (its hooks can from {MODIFY_MIN_VERSION})",
                v.version
            ),
            "remove terminal.cwd from the operator's config.yaml, or update Hermes".into(),
        )),
        Err(e) => Err((
            format!("terminal.cwd is set, but which Hermes runs is unknown: {}", e.message),
            "set update.hermes_command to Hermes' `hermes` program, or remove terminal.cwd".into(),
        )),
    }
}

/// Where Hermes keeps its sessions. From 0.23.3 a profile can keep them in
/// PostgreSQL (`database.backend: postgres` in its config.yaml; docs/hermes.md,
/// "Hermes 0.23"), and state.db is then no longer written. The operator
/// reads and writes state.db: it must not go on against a stale file while
/// Hermes' sessions live elsewhere.
pub fn check_storage(home: &Home) -> Result<String, (String, String)> {
    let fix = || {
        format!(
            "keep database.backend: sqlite (Hermes' default) in {}; hermes-operator does not follow Hermes into PostgreSQL yet",
            home.hermes_config().display()
        )
    };
    match config_value(home, &["database", "backend"]) {
        None => Ok("Hermes keeps its sessions in state.db (its default)".into()),
        Some(v) => match v.as_str().map(str::to_ascii_lowercase).as_deref() {
            Some("sqlite") => Ok("Hermes keeps its sessions in state.db (database.backend: sqlite)".into()),
            Some(other) => Err((
                format!(
                    "Hermes keeps its sessions in {other} (database.backend in {}), not in the state.db hermes-operator reads and writes",
                    home.hermes_config().display()
                ),
                fix(),
            )),
            None => Err((
                format!(
                    "database.backend in {} is not a name Hermes accepts",
                    home.hermes_config().display()
                ),
                fix(),
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_elsewhere_than_state_db_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path());
        assert!(check_storage(&home).is_ok(), "no config: Hermes' default");
        for ok in [
            "model:\n  default: x\n",
            "database:\n  backend: sqlite\n",
            "database:\n  backend: SQLite\n",
        ] {
            std::fs::write(home.hermes_config(), ok).unwrap();
            assert!(check_storage(&home).is_ok(), "{ok}");
        }
        for bad in [
            "database:\n  backend: postgres\n",
            "database:\n  backend: [x]\n",
        ] {
            std::fs::write(home.hermes_config(), bad).unwrap();
            let (problem, fix) = check_storage(&home).unwrap_err();
            assert!(problem.contains("database.backend"), "{problem}");
            assert!(fix.contains("sqlite"), "{fix}");
        }
    }

    #[test]
    fn modes_as_hermes_reads_them() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path());
        assert_eq!(
            approvals_mode(&home).0,
            ApprovalMode::Smart,
            "Hermes' default"
        );
        for (yaml, want) in [
            ("approvals:\n  mode: manual\n", ApprovalMode::Manual),
            ("approvals:\n  mode: off\n", ApprovalMode::Off),
            ("approvals:\n  mode: 'off'\n", ApprovalMode::Off),
            ("approvals:\n  mode: Smart\n", ApprovalMode::Smart),
            ("approvals:\n  mode: auto\n", ApprovalMode::Manual),
            ("approvals:\n  timeout: 5\n", ApprovalMode::Smart),
        ] {
            std::fs::write(home.hermes_config(), yaml).unwrap();
            assert_eq!(approvals_mode(&home).0, want, "{yaml}");
        }
        std::fs::write(home.hermes_config(), "approvals:\n  mode: smart\n").unwrap();
        assert!(check_approvals(&home, ApprovalMode::Manual).is_err());
        assert!(check_approvals(&home, ApprovalMode::Smart).is_ok());
        assert!(check_approvals(&home, ApprovalMode::Off).is_ok());
    }
}
