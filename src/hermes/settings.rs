//! Hermes settings the operator enforces its own config against. Today:
//! `approvals.mode`, read as Hermes reads it (`tools/approval.py`
//! `_normalize_approval_mode`: YAML booleans `off`/`on` become "off"/"manual",
//! unknown strings "manual"; a missing key takes the default of
//! `DEFAULT_CONFIG`, which is "smart" in both 0.19 `hermes_cli/config.py`
//! and 0.22 `hermes_cli/config_defaults.py`).

use crate::config::ApprovalMode;
use crate::home::Home;

/// Hermes' effective `approvals.mode` and where it came from.
pub fn approvals_mode(home: &Home) -> (ApprovalMode, String) {
    let path = home.hermes_config();
    let yaml = std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| serde_norway::from_str::<serde_norway::Value>(&t).ok());
    let v = yaml
        .as_ref()
        .and_then(|y| y.get("approvals"))
        .and_then(|a| a.get("mode"));
    let mode = match v {
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

#[cfg(test)]
mod tests {
    use super::*;

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
