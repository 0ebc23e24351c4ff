//! The boundary between the agent and the control plane (docs/design.md §12):
//! which account Hermes runs as, whether it can read or change any of the
//! operator's files, and `install --operator-user`, which puts them under a
//! dedicated account.
//!
//! Access is judged the way the kernel judges it for Hermes' account: the
//! owner, group (its primary and supplementary groups) or other bits of each
//! file, and the search bit of every directory on the way. POSIX ACLs are
//! not read (`getfacl`); install sets none.

use crate::error::{Error, Result};
use crate::home::Home;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The account Hermes runs as, and how we know.
#[derive(Debug, Clone)]
pub struct Account {
    pub uid: u32,
    pub gid: u32,
    pub name: Option<String>,
    /// Its primary and supplementary groups.
    pub groups: Vec<u32>,
    /// Which file told us (the gateway's pid file, state.db, HERMES_HOME).
    pub from: PathBuf,
}

impl Account {
    pub fn describe(&self) -> String {
        match &self.name {
            Some(n) => format!("{n} (uid {})", self.uid),
            None => format!("uid {}", self.uid),
        }
    }

    fn of_uid(uid: u32, from: PathBuf) -> Account {
        let (name, gid) = passwd_of(uid).unwrap_or((None, u32::MAX));
        let groups = match &name {
            Some(n) => group_list(n, gid),
            None => Vec::new(),
        };
        Account {
            uid,
            gid,
            name,
            groups,
            from,
        }
    }

    /// The permission bits (rwx) this account gets on a file.
    fn bits(&self, m: &std::fs::Metadata) -> u32 {
        let mode = m.permissions().mode();
        if self.uid == 0 {
            7
        } else if m.uid() == self.uid {
            (mode >> 6) & 7
        } else if self.groups.contains(&m.gid()) || m.gid() == self.gid {
            (mode >> 3) & 7
        } else {
            mode & 7
        }
    }

    /// Every directory from `/` down to `p`'s parent can be entered.
    fn reaches(&self, p: &Path) -> bool {
        p.ancestors()
            .skip(1)
            .all(|a| std::fs::metadata(a).is_ok_and(|m| self.bits(&m) & 1 == 1))
    }
}

/// Hermes' account: the owner of the gateway's pid file (written by the
/// running gateway), else of state.db (Hermes creates it), else of
/// HERMES_HOME.
pub fn hermes_account(home: &Home) -> Option<Account> {
    [
        home.root.join("gateway.pid"),
        home.state_db(),
        home.root.clone(),
    ]
    .into_iter()
    .find_map(|p| {
        std::fs::metadata(&p)
            .ok()
            .map(|m| Account::of_uid(m.uid(), p))
    })
}

/// One operator file Hermes' account can reach.
#[derive(Debug, Clone)]
pub struct Exposure {
    pub path: PathBuf,
    pub read: bool,
    pub write: bool,
}

/// The operator's own directories (and the files in them, recursively).
pub fn operator_roots(home: &Home) -> Vec<PathBuf> {
    let mut v = vec![home.profile_dir(), home.plugin_dir(), home.scripts_dir()];
    if let Ok(rd) = std::fs::read_dir(home.backups_dir()) {
        v.extend(
            rd.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("operator_"))
                .map(|e| e.path()),
        );
    }
    v.retain(|p| p.exists());
    v
}

/// Every operator file or directory `who` can read or change. Inside the
/// roots a writable parent counts as a write (the file can be replaced);
/// the roots' own parents belong to Hermes, which is why the operator
/// refuses a root that is not its own (`Home::check_operator_dirs`).
pub fn exposures(home: &Home, who: &Account) -> (usize, Vec<Exposure>) {
    let mut seen = 0;
    let mut out = Vec::new();
    for root in operator_roots(home) {
        let mut todo = vec![(root.clone(), None::<std::fs::Metadata>)];
        while let Some((p, parent)) = todo.pop() {
            let Ok(m) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            seen += 1;
            if seen > 100_000 {
                break;
            }
            let reach = who.reaches(&p);
            let bits = who.bits(&m);
            let parent_w = parent.as_ref().is_some_and(|pm| who.bits(pm) & 3 == 3);
            let (read, write) = (reach && bits & 4 != 0, reach && (bits & 2 != 0 || parent_w));
            if read || write {
                out.push(Exposure {
                    path: p.clone(),
                    read,
                    write,
                });
            }
            if m.is_dir() {
                if let Ok(rd) = std::fs::read_dir(&p) {
                    for e in rd.flatten() {
                        todo.push((e.path(), Some(m.clone())));
                    }
                }
            }
        }
    }
    (seen, out)
}

/// `doctor`'s verdict: `Ok(detail)` when Hermes' account reaches none of
/// the operator's files, else `Err((problem, fix))`.
pub fn verdict(home: &Home) -> std::result::Result<String, (String, String)> {
    let fix = "give the operator an account of its own: `sudo hermes-operator install --operator-user hermes-operator` \
               (README, \"The agent and the control plane\")";
    let Some(h) = hermes_account(home) else {
        return Err((
            "cannot tell which account Hermes runs as (no gateway.pid, state.db or HERMES_HOME to look at)".into(),
            "start Hermes once, then run doctor again".into(),
        ));
    };
    if h.uid == 0 {
        return Err((
            format!(
                "Hermes runs as root ({} belongs to root): its agent can read and change every operator file",
                h.from.display()
            ),
            format!("run Hermes under an ordinary account, then {fix}"),
        ));
    }
    let (seen, exposed) = exposures(home, &h);
    if exposed.is_empty() {
        return Ok(format!(
            "Hermes runs as {} ({}); none of the {seen} operator files and directories is readable or writable by it",
            h.describe(),
            h.from.display()
        ));
    }
    let same = std::fs::metadata(home.profile_dir()).is_ok_and(|m| m.uid() == h.uid);
    let names: Vec<String> = exposed
        .iter()
        .take(5)
        .map(|e| {
            let how = match (e.read, e.write) {
                (true, true) => "read+write",
                (true, false) => "read",
                _ => "write",
            };
            format!("{} ({how})", e.path.display())
        })
        .collect();
    let more = exposed.len().saturating_sub(names.len());
    let problem = format!(
        "{}Hermes' account {} can reach {} operator file(s): {}{}",
        if same {
            "the operator's files belong to Hermes' own account, so the agent can change users.db and read the signing key; "
        } else {
            ""
        },
        h.describe(),
        exposed.len(),
        names.join(", "),
        if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        }
    );
    Err((problem, fix.into()))
}

/// What `install --operator-user` did, one line each.
pub struct Separation {
    pub account: String,
    pub created: bool,
    pub hermes: Account,
    pub steps: Vec<String>,
}

/// Put the operator's files under `name` (created as a system account if
/// missing), out of reach of Hermes' account, and give `name` the access to
/// Hermes' files it needs through Hermes' primary group: state.db (operator
/// rows; SQLite gives its -wal/-shm files the database's mode), `.env`
/// (read: the API key), config.yaml and the hook allowlist (`hook install`).
/// HERMES_HOME gets the setgid bit so files the operator creates there stay
/// in that group. Root only.
#[expect(
    clippy::too_many_lines,
    reason = "the separation's steps in order (check the caller and accounts, create and join, hand over the operator's directories, share Hermes' files through the group); each reports what it did into one list"
)]
pub fn separate(home: &Home, name: &str) -> Result<Separation> {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Err(Error::permission(
            "--operator-user creates an account and changes owners: run install as root (sudo)",
        ));
    }
    crate::store::users::validate_username(name)
        .map_err(|e| Error::usage(format!("--operator-user: {}", e.message)))?;
    let hermes = hermes_account(home).ok_or_else(|| {
        Error::not_found(format!(
            "cannot tell which account owns {}",
            home.root.display()
        ))
    })?;
    if hermes.uid == 0 {
        return Err(Error::usage(format!(
            "Hermes' files belong to root ({}); an operator account cannot be kept apart from an agent that runs as root",
            hermes.from.display()
        ))
        .hint("run Hermes under an ordinary account (chown -R it HERMES_HOME), then install again"));
    }
    if hermes.name.as_deref() == Some(name) {
        return Err(Error::usage(format!(
            "{name} is Hermes' own account; the operator needs a different one"
        )));
    }
    let mut steps = Vec::new();
    let created = uid_of(name).is_none();
    if created {
        run(Command::new("useradd").args([
            "--system",
            "--user-group",
            "--no-create-home",
            "--home-dir",
            &home.profile_dir().to_string_lossy(),
            "--shell",
            "/usr/sbin/nologin",
            name,
        ]))?;
        steps.push(format!("created the system account {name}"));
    }
    let (uid, gid) = uid_of(name).ok_or_else(|| {
        Error::internal(format!("the account {name} does not exist after useradd"))
    })?;
    if uid == hermes.uid {
        return Err(Error::usage(format!("{name} has Hermes' uid {uid}")));
    }
    let group = group_name(hermes.gid).unwrap_or_else(|| hermes.gid.to_string());
    run(Command::new("usermod").args(["-a", "-G", &group, name]))?;
    steps.push(format!("{name} joined Hermes' group {group}"));
    let mut dirs = operator_roots(home);
    dirs.push(home.hook_socket_dir());
    for d in &dirs {
        std::fs::create_dir_all(d).map_err(|e| Error::io(d, "creating directory", e))?;
        chown_tree(d, uid, gid)?;
        // plugins/operator: 0711, not 0700 — Hermes 0.22 stats
        // plugins/*/plugin.yaml and fails every chat turn on EACCES; the
        // search bit alone lets it see there is none (`ensure_private_dir`).
        let mode = if *d == home.hook_socket_dir() {
            0o755
        } else if *d == home.plugin_dir() {
            0o711
        } else {
            0o700
        };
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(mode))
            .map_err(|e| Error::io(d, "setting the mode of", e))?;
    }
    steps.push(format!(
        "the operator's directories belong to {name} (0700): {}",
        dirs.iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    // Hermes' files the operator uses, through the group.
    let root_mode = std::fs::metadata(&home.root)
        .map_err(|e| Error::io(&home.root, "reading", e))?
        .permissions()
        .mode();
    set_mode(&home.root, (root_mode & 0o7777) | 0o2070)?;
    let mut shared = vec![home.root.display().to_string()];
    // The directories between HERMES_HOME and the operator's (profiles/,
    // plugins/, …) are Hermes'; the operator only needs to pass through.
    for d in &dirs {
        if let Some(parent) = d.parent().filter(|p| *p != home.root) {
            let mut m = std::fs::metadata(parent).map_err(|e| Error::io(parent, "reading", e))?;
            if m.uid() == 0 {
                // Made by an earlier `install` as root: Hermes' own, as if
                // Hermes had made it.
                std::os::unix::fs::chown(parent, Some(hermes.uid), Some(hermes.gid))
                    .map_err(|e| Error::io(parent, "changing the owner of", e))?;
                m = std::fs::metadata(parent).map_err(|e| Error::io(parent, "reading", e))?;
            }
            if m.permissions().mode() & 0o010 == 0 {
                set_mode(parent, (m.permissions().mode() & 0o7777) | 0o010)?;
                shared.push(format!("{} (enter only)", parent.display()));
            }
        }
    }
    // Hermes chmods HERMES_HOME to 0700 whenever it starts (0.19 and 0.22,
    // hermes_cli/config.py `_secure_dir`), which would lock the operator out
    // at the gateway's next start; it keeps the mode HERMES_HOME_MODE names,
    // read from its own .env (loaded before that chmod).
    if keep_home_mode(&home.hermes_env(), (hermes.uid, hermes.gid))? {
        steps.push(format!(
            "{}: HERMES_HOME_MODE={HOME_MODE} (Hermes keeps HERMES_HOME group-accessible when it starts)",
            home.hermes_env().display()
        ));
    }
    // backups/ holds Hermes' own backups and the operator's
    // backups/operator_* (each 0700, the operator's) side by side: Hermes'
    // directory, the operator makes entries in it through the group (`hook
    // install`, `update` back up there). Made by an earlier `install` as
    // root, it becomes Hermes' first.
    let backups = home.backups_dir();
    std::fs::create_dir_all(&backups).map_err(|e| Error::io(&backups, "creating directory", e))?;
    let mut m = std::fs::metadata(&backups).map_err(|e| Error::io(&backups, "reading", e))?;
    if m.uid() == 0 {
        std::os::unix::fs::chown(&backups, Some(hermes.uid), Some(hermes.gid))
            .map_err(|e| Error::io(&backups, "changing the owner of", e))?;
        m = std::fs::metadata(&backups).map_err(|e| Error::io(&backups, "reading", e))?;
    }
    set_mode(&backups, (m.permissions().mode() & 0o7777) | 0o2770)?;
    shared.push(format!(
        "{} (the operator adds its own, 0700)",
        backups.display()
    ));
    for (p, bits) in [
        (home.state_db(), 0o060),
        (home.root.join("state.db-wal"), 0o060),
        (home.root.join("state.db-shm"), 0o060),
        (home.hermes_env(), 0o040),
        (home.hermes_config(), 0o060),
        (home.root.join("shell-hooks-allowlist.json"), 0o060),
    ] {
        if let Ok(m) = std::fs::metadata(&p) {
            set_mode(&p, (m.permissions().mode() & 0o7777) | bits)?;
            shared.push(p.display().to_string());
        }
    }
    steps.push(format!(
        "shared with the group {group}: {}",
        shared.join(", ")
    ));
    Ok(Separation {
        account: name.to_string(),
        created,
        hermes,
        steps,
    })
}

/// The mode HERMES_HOME keeps under two accounts: setgid (new files stay in
/// Hermes' group), group read/write/search for the operator, nothing for others.
pub const HOME_MODE: &str = "2770";

/// Makes Hermes' `.env` say `HERMES_HOME_MODE=2770` (a line changed or added;
/// the rest of the file, its owner and mode as they were). Whether it changed.
fn keep_home_mode(env_file: &Path, owner: (u32, u32)) -> Result<bool> {
    let mut created = false;
    let text = match std::fs::read_to_string(env_file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            created = true;
            String::new()
        }
        Err(e) => return Err(Error::io(env_file, "reading", e)),
    };
    if crate::dotenv::parse(&text)
        .values
        .get("HERMES_HOME_MODE")
        .map(String::as_str)
        == Some(HOME_MODE)
    {
        return Ok(false);
    }
    let line = format!("HERMES_HOME_MODE={HOME_MODE}");
    let is_setting = |l: &str| {
        let l = l.trim_start();
        let l = l.strip_prefix("export ").unwrap_or(l).trim_start();
        l.strip_prefix("HERMES_HOME_MODE")
            .is_some_and(|rest| rest.trim_start().starts_with('='))
    };
    let mut out: Vec<String> = text
        .lines()
        .map(|l| {
            if is_setting(l) {
                line.clone()
            } else {
                l.to_string()
            }
        })
        .collect();
    if !out.contains(&line) {
        out.push("# hermes-operator (install --operator-user): Hermes sets HERMES_HOME to this mode when it starts".into());
        out.push(line);
    }
    let mut new = out.join("\n");
    new.push('\n');
    // Written in place: the file keeps its owner (Hermes) and mode.
    std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .create(true)
        .mode(0o640)
        .open(env_file)
        .and_then(|mut f| std::io::Write::write_all(&mut f, new.as_bytes()))
        .map_err(|e| Error::io(env_file, "writing", e))?;
    if created {
        // Hermes' file, as if Hermes had made it.
        std::os::unix::fs::chown(env_file, Some(owner.0), Some(owner.1))
            .map_err(|e| Error::io(env_file, "changing the owner of", e))?;
    }
    Ok(true)
}

fn set_mode(p: &Path, mode: u32) -> Result<()> {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
        .map_err(|e| Error::io(p, "setting the mode of", e))
}

fn chown_tree(p: &Path, uid: u32, gid: u32) -> Result<()> {
    let m = std::fs::symlink_metadata(p).map_err(|e| Error::io(p, "reading", e))?;
    if m.file_type().is_symlink() {
        return Err(Error::permission(format!(
            "{} is a symbolic link; refusing to follow it",
            p.display()
        )));
    }
    std::os::unix::fs::lchown(p, Some(uid), Some(gid))
        .map_err(|e| Error::io(p, "changing the owner of", e))?;
    if m.is_dir() {
        for e in std::fs::read_dir(p)
            .map_err(|e| Error::io(p, "listing", e))?
            .flatten()
        {
            chown_tree(&e.path(), uid, gid)?;
        }
    }
    Ok(())
}

fn run(cmd: &mut Command) -> Result<()> {
    let what = format!("{cmd:?}");
    let out = cmd
        .output()
        .map_err(|e| Error::internal(format!("running {what}: {e}")).with_source(e))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::internal(format!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// (uid, primary gid) of an account name.
pub fn uid_of(name: &str) -> Option<(u32, u32)> {
    let c = std::ffi::CString::new(name).ok()?;
    // SAFETY: getpwnam returns static storage or NULL; read at once.
    unsafe {
        let pw = libc::getpwnam(c.as_ptr());
        (!pw.is_null()).then(|| ((*pw).pw_uid, (*pw).pw_gid))
    }
}

fn passwd_of(uid: u32) -> Option<(Option<String>, u32)> {
    // SAFETY: getpwuid returns static storage or NULL; copied out at once.
    unsafe {
        let pw = libc::getpwuid(uid);
        if pw.is_null() {
            return None;
        }
        let name = (!(*pw).pw_name.is_null()).then(|| {
            std::ffi::CStr::from_ptr((*pw).pw_name)
                .to_string_lossy()
                .into_owned()
        });
        Some((name, (*pw).pw_gid))
    }
}

fn group_name(gid: u32) -> Option<String> {
    // SAFETY: getgrgid returns static storage or NULL; copied out at once.
    unsafe {
        let gr = libc::getgrgid(gid);
        (!gr.is_null() && !(*gr).gr_name.is_null()).then(|| {
            std::ffi::CStr::from_ptr((*gr).gr_name)
                .to_string_lossy()
                .into_owned()
        })
    }
}

fn group_list(name: &str, gid: u32) -> Vec<u32> {
    let Ok(c) = std::ffi::CString::new(name) else {
        return vec![gid];
    };
    let mut n: libc::c_int = 64;
    let mut groups = vec![0 as libc::gid_t; 64];
    // SAFETY: `groups` has room for `n` entries; getgrouplist writes at most
    // that many and sets `n` to the real count (retried once when larger).
    unsafe {
        if libc::getgrouplist(c.as_ptr(), gid, groups.as_mut_ptr(), &mut n) < 0 {
            groups.resize(n.max(0) as usize, 0);
            libc::getgrouplist(c.as_ptr(), gid, groups.as_mut_ptr(), &mut n);
        }
    }
    groups.truncate(n.max(0) as usize);
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hermes_home_mode_is_set_in_hermes_env_and_nothing_else_changes() {
        let d = tempfile::tempdir().unwrap();
        let env = d.path().join(".env");
        let me = (unsafe { libc::geteuid() }, unsafe { libc::getegid() });
        std::fs::write(
            &env,
            "API_SERVER_KEY=abc\n# a comment\nexport HERMES_HOME_MODE = 0700\nOTHER='x y'\n",
        )
        .unwrap();
        std::fs::set_permissions(&env, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(keep_home_mode(&env, me).unwrap());
        assert_eq!(
            std::fs::read_to_string(&env).unwrap(),
            "API_SERVER_KEY=abc\n# a comment\nHERMES_HOME_MODE=2770\nOTHER='x y'\n"
        );
        assert_eq!(
            std::fs::metadata(&env).unwrap().permissions().mode() & 0o777,
            0o600
        );
        // Already so: untouched.
        assert!(!keep_home_mode(&env, me).unwrap());
        // Absent: appended, with a comment saying why.
        std::fs::write(&env, "API_SERVER_KEY=abc").unwrap();
        assert!(keep_home_mode(&env, me).unwrap());
        let t = std::fs::read_to_string(&env).unwrap();
        assert!(
            t.starts_with("API_SERVER_KEY=abc\n# hermes-operator"),
            "{t}"
        );
        assert!(t.ends_with("\nHERMES_HOME_MODE=2770\n"), "{t}");
        assert_eq!(crate::dotenv::parse(&t).values["HERMES_HOME_MODE"], "2770");
        // No .env yet: made.
        let fresh = d.path().join("new.env");
        assert!(keep_home_mode(&fresh, me).unwrap());
        assert_eq!(
            crate::dotenv::parse(&std::fs::read_to_string(&fresh).unwrap()).values
                ["HERMES_HOME_MODE"],
            "2770"
        );
    }
}
