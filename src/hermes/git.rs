//! What the operator reads from a git install of Hermes (the official
//! installer's checkout at `$HERMES_HOME/hermes-agent`), without changing
//! it: local changes (`git status --porcelain`), Hermes' stashes, and the
//! remote branch `hermes update` pulls from.
//!
//! The operator never fetches into, stashes, pulls or installs in Hermes'
//! checkout: `hermes update` does that. To learn what the remote has, it
//! fetches the branch into a scratch bare repository of its own, from the
//! URL the checkout resolves for `origin` (its `url.*.insteadOf` rules
//! applied), and reads the version from that commit's `pyproject.toml`.

use crate::error::{Error, Kind, Result};
use serde::Serialize;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// How far back the scratch fetch looks for the installed commit.
const DEPTH: u32 = 200;
const GIT_TIMEOUT: Duration = Duration::from_secs(120);

/// `git` with no prompts, no optional locks (so `status` never rewrites the
/// checkout's index) and messages in English (they are shown to people).
fn git(dir: &Path) -> Command {
    let mut c = Command::new("git");
    c.arg("--no-optional-locks")
        .arg("-C")
        .arg(dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ASKPASS", "/bin/false")
        .env("LC_ALL", "C");
    c
}

fn run(cmd: Command, what: &str) -> Result<String> {
    let out = crate::process::run_capture(cmd, GIT_TIMEOUT)
        .map_err(|e| Error::new(Kind::UpdateFailed, format!("{what}: cannot run git: {e}")))?;
    match out.status {
        Some(s) if s.success() => Ok(out.stdout),
        Some(_) => Err(Error::new(
            Kind::UpdateFailed,
            format!("{what}: {}", last_line(&out.stderr)),
        )),
        None => Err(Error::new(
            Kind::UpdateFailed,
            format!("{what}: git timed out after {} s", GIT_TIMEOUT.as_secs()),
        )),
    }
}

fn last_line(s: &str) -> String {
    s.lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("(no output)")
        .to_string()
}

/// Uncommitted changes in the checkout, one `git status --porcelain` line
/// each (`?? new-file`, ` M changed-file`).
pub fn local_changes(checkout: &Path) -> Result<Vec<String>> {
    let mut c = git(checkout);
    c.args(["status", "--porcelain", "--untracked-files=all"]);
    Ok(run(c, "reading the checkout's local changes")?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect())
}

/// `git stash list`: `stash@{0}: On main: hermes-update-autostash-…`.
pub fn stashes(checkout: &Path) -> Result<Vec<String>> {
    let mut c = git(checkout);
    c.args(["stash", "list"]);
    Ok(run(c, "reading the checkout's stashes")?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect())
}

/// What the remote branch holds, compared with the installed commit.
#[derive(Debug, Clone, Serialize)]
pub struct RemoteState {
    /// `origin`'s URL as git resolves it for the checkout.
    pub url: String,
    pub branch: String,
    /// The commit at the remote branch's head.
    pub head: String,
    /// `[project] version` of `pyproject.toml` at that commit.
    pub version: Option<String>,
    /// Commits on the remote branch after the installed one; `None` when the
    /// installed commit is not among the newest commits fetched (local
    /// commits, another branch, or far behind).
    pub commits_behind: Option<u32>,
}

/// Fetch `branch` of the checkout's `origin` into a scratch repository and
/// compare it with `installed` (the checkout's commit).
pub fn remote_state(checkout: &Path, branch: &str, installed: &str) -> Result<RemoteState> {
    let mut c = git(checkout);
    c.args(["ls-remote", "--get-url", "origin"]);
    let url = run(c, "reading the checkout's origin")?.trim().to_string();
    if url.is_empty() || url == "origin" {
        return Err(Error::new(
            Kind::UpdateFailed,
            format!("the checkout {} has no `origin` remote", checkout.display()),
        ));
    }
    let scratch = crate::process::scratch_dir()
        .map_err(|e| Error::internal(format!("making a scratch repository: {e}")).with_source(e))?;
    let mut c = git(scratch.path());
    c.args(["init", "--bare", "-q"]);
    run(c, "making a scratch repository")?;
    let mut c = git(scratch.path());
    c.args([
        "fetch",
        "-q",
        "--no-tags",
        &format!("--depth={DEPTH}"),
        &url,
        &format!("+refs/heads/{branch}:refs/remote-head"),
    ]);
    run(c, &format!("fetching {branch} from {url}"))?;
    let mut c = git(scratch.path());
    c.args(["rev-parse", "refs/remote-head"]);
    let head = run(c, "reading the remote head")?.trim().to_string();
    let mut c = git(scratch.path());
    c.args(["show", &format!("{head}:pyproject.toml")]);
    let version = run(c, "reading pyproject.toml at the remote head")
        .ok()
        .and_then(|t| pyproject_version(&t));
    let mut c = git(scratch.path());
    c.args(["rev-list", "--first-parent", "refs/remote-head"]);
    let commits_behind = run(c, "listing the remote's commits")?
        .lines()
        .position(|l| l.trim() == installed)
        .map(|p| p as u32);
    Ok(RemoteState {
        url,
        branch: branch.to_string(),
        head,
        version,
        commits_behind,
    })
}

/// `version = "…"` of the `[project]` table.
pub fn pyproject_version(text: &str) -> Option<String> {
    let mut in_project = false;
    for line in text.lines() {
        let l = line.trim();
        if l.starts_with('[') {
            in_project = l == "[project]";
            continue;
        }
        if in_project {
            if let Some(rest) = l.strip_prefix("version") {
                let v = rest.trim_start().strip_prefix('=')?.trim();
                return Some(v.trim_matches(|c| c == '"' || c == '\'').to_string());
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_project_version() {
        let t = "[build-system]\nrequires = [\"setuptools\"]\nversion = \"no\"\n\n[project]\nname = \"hermes-agent\"\nversion = \"0.19.0\"\n";
        assert_eq!(pyproject_version(t).as_deref(), Some("0.19.0"));
        assert_eq!(pyproject_version("[project]\nname = \"x\"\n"), None);
    }
}
