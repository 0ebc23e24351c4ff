//! The hook as a thin client of `serve` (docs/design.md §12).
//!
//! With a dedicated operator account, the hook process — which Hermes
//! spawns under its own account — cannot open users.db, events.db, the
//! config or the session markers, and must not be able to. So `serve`
//! (running as the operator) answers hook events on a Unix socket
//! (`plugins/operator-hook/hook.sock`) with the same handler the hook runs
//! in-process on a single-account host; the hook sends Hermes' payload and
//! prints `serve`'s answer.
//!
//! Who may talk to whom, checked with the kernel's peer credentials
//! (SO_PEERCRED), not with anything a client says:
//! - `serve` answers Hermes' account (the owner of HERMES_HOME), its own
//!   account and root; anyone else is turned away.
//! - the hook believes only a peer running as root or as the owner of
//!   `profiles/operator`.
//!
//! When `serve` does not answer, the hook handles the event itself if it
//! can read the operator's files (one account), and otherwise blocks every
//! tool call of an operator session: without the operator's policy there
//! is nobody to vouch for it.

use super::handler::{handle_event_in, Reply};
use crate::error::{Error, Result};
use crate::home::Home;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A hook payload is Hermes' tool arguments: a file write can be large.
const MAX_REQUEST: u64 = 16 << 20;
/// Connections answered at once; more wait in the kernel's backlog.
const MAX_CONNECTIONS: usize = 32;
/// The hook's own budget: Hermes' hook timeout is 30 s (`HookEvent::timeout_secs`).
const IO_TIMEOUT: Duration = Duration::from_secs(25);

/// The variables of Hermes' environment a tool call's words may name
/// (`paths.rs` expands them); nothing else of it is sent.
const FORWARDED_ENV: &[&str] = &[
    "HOME",
    "HERMES_HOME",
    "PWD",
    "TMPDIR",
    "USER",
    "TERMINAL_CWD",
    "XDG_CONFIG_HOME",
    "XDG_DATA_HOME",
    "XDG_STATE_HOME",
];

#[derive(Serialize, Deserialize)]
struct Request {
    env: HashMap<String, String>,
    /// Hermes' payload, as it came on the hook's stdin.
    payload: String,
}

#[derive(Serialize, Deserialize)]
struct Answer {
    stdout: Option<String>,
    stderr: Vec<String>,
    blocked: bool,
}

/// The environment the handler expands `$VAR` and `~` with: the hook's own.
pub fn hook_env() -> HashMap<String, String> {
    std::env::vars()
        .filter(|(k, _)| FORWARDED_ENV.contains(&k.as_str()))
        .collect()
}

/// `serve`'s end: answers hook events until dropped (the socket file is
/// removed then; the thread ends with the process).
pub struct Listener {
    path: PathBuf,
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Listen at `home.hook_socket()`. A socket another live process answers
/// is left alone (an error); a stale one is replaced.
pub fn listen(home: &Home) -> Result<Listener> {
    let dir = home.hook_socket_dir();
    let path = home.hook_socket();
    prepare_dir(&dir)?;
    if UnixStream::connect(&path).is_ok() {
        return Err(Error::busy(format!(
            "another process already answers the hook at {}",
            path.display()
        ))
        .hint("is another hermes-operator serve running on this HERMES_HOME?"));
    }
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).map_err(|e| Error::io(&path, "listening on", e))?;
    // Connecting needs write permission on the socket; who may talk is
    // decided by the peer's credentials (`allowed_peers`).
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666))
        .map_err(|e| Error::io(&path, "setting mode 0666 on", e))?;
    let home = home.clone();
    let allowed = allowed_peers(&home);
    std::thread::Builder::new()
        .name("hook-socket".into())
        .spawn(move || accept_loop(&listener, &home, &allowed))
        .map_err(|e| Error::internal(format!("starting the hook listener: {e}")))?;
    Ok(Listener { path })
}

/// The socket's directory: ours, not a symlink, enterable by everyone and
/// writable by nobody else (so Hermes' account cannot swap the socket).
fn prepare_dir(dir: &std::path::Path) -> Result<()> {
    // SAFETY: geteuid cannot fail.
    let me = unsafe { libc::geteuid() };
    match std::fs::symlink_metadata(dir) {
        Ok(m) if m.file_type().is_symlink() || !m.is_dir() || m.uid() != me => {
            return Err(Error::permission(format!(
                "{} is not a directory of this account (uid {me})",
                dir.display()
            ))
            .hint("remove it; serve recreates it"));
        }
        Ok(_) => {}
        Err(_) => {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, "creating directory", e))?;
        }
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| Error::io(dir, "setting mode 0755 on", e))
}

/// Root, this process's account and Hermes' (the owner of HERMES_HOME).
fn allowed_peers(home: &Home) -> Vec<u32> {
    // SAFETY: geteuid cannot fail.
    let mut v = vec![0, unsafe { libc::geteuid() }];
    v.extend(std::fs::metadata(&home.root).ok().map(|m| m.uid()));
    v
}

fn accept_loop(listener: &UnixListener, home: &Home, allowed: &[u32]) {
    let busy = Arc::new(AtomicUsize::new(0));
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        if busy.fetch_add(1, Ordering::AcqRel) >= MAX_CONNECTIONS {
            busy.fetch_sub(1, Ordering::AcqRel);
            continue; // dropped: the hook falls back or blocks
        }
        let (home, allowed, count) = (home.clone(), allowed.to_vec(), busy.clone());
        let spawned = std::thread::Builder::new()
            .name("hook-conn".into())
            .spawn(move || {
                answer(conn, &home, &allowed);
                count.fetch_sub(1, Ordering::AcqRel);
            });
        if spawned.is_err() {
            // The closure (and its count) is gone with the failed spawn.
            busy.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

fn answer(mut conn: UnixStream, home: &Home, allowed: &[u32]) {
    let _ = conn.set_read_timeout(Some(IO_TIMEOUT));
    let _ = conn.set_write_timeout(Some(IO_TIMEOUT));
    let reply = match peer_uid(&conn) {
        Some(uid) if allowed.contains(&uid) => {
            let mut buf = Vec::new();
            match (&conn).take(MAX_REQUEST).read_to_end(&mut buf) {
                Ok(_) => match serde_json::from_slice::<Request>(&buf) {
                    Ok(req) => handle_event_in(home, req.payload.as_bytes(), &req.env),
                    Err(e) => refusal(format!("unreadable request: {e}")),
                },
                Err(e) => refusal(format!("reading the request: {e}")),
            }
        }
        uid => refusal(format!(
            "uid {uid:?} may not use the operator's hook socket (allowed: {allowed:?})"
        )),
    };
    let a = Answer {
        blocked: reply.blocks(),
        stdout: reply.stdout,
        stderr: reply.stderr,
    };
    if let Ok(bytes) = serde_json::to_vec(&a) {
        let _ = conn.write_all(&bytes);
    }
}

fn refusal(why: String) -> Reply {
    let mut r = Reply::block(format!("Blocked by hermes-operator: {why}"));
    r.stderr.push(format!("hermes-operator serve: {why}"));
    r
}

/// The uid of the process at the other end (Linux `SO_PEERCRED`).
fn peer_uid(s: &UnixStream) -> Option<u32> {
    use std::os::fd::AsRawFd;
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` and `len` are valid for writes of the sizes given.
    let rc = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    (rc == 0).then_some(cred.uid)
}

/// Why the hook could not ask `serve`.
#[derive(Debug)]
pub enum Unanswered {
    /// Nothing listens (no socket, or a stale one).
    NotListening(String),
    /// Something answered that is not the operator.
    Untrusted(String),
    /// The conversation broke.
    Failed(String),
}

impl std::fmt::Display for Unanswered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unanswered::NotListening(s) | Unanswered::Untrusted(s) | Unanswered::Failed(s) => {
                f.write_str(s)
            }
        }
    }
}

/// The hook's end: hand one event to `serve`, get its answer.
pub fn ask(
    home: &Home,
    payload: &[u8],
    env: HashMap<String, String>,
) -> std::result::Result<Reply, Unanswered> {
    let path = home.hook_socket();
    let mut conn = UnixStream::connect(&path)
        .map_err(|e| Unanswered::NotListening(format!("{}: {e}", path.display())))?;
    let operator = std::fs::metadata(home.profile_dir()).ok().map(|m| m.uid());
    match peer_uid(&conn) {
        Some(uid) if uid == 0 || Some(uid) == operator => {}
        uid => {
            return Err(Unanswered::Untrusted(format!(
                "{} is answered by uid {uid:?}, not by the operator's account ({operator:?})",
                path.display()
            )))
        }
    }
    let _ = conn.set_read_timeout(Some(IO_TIMEOUT));
    let _ = conn.set_write_timeout(Some(IO_TIMEOUT));
    let req = Request {
        env,
        payload: String::from_utf8_lossy(payload).into_owned(),
    };
    let failed = |e: std::io::Error| Unanswered::Failed(format!("{}: {e}", path.display()));
    let body = serde_json::to_vec(&req).map_err(|e| Unanswered::Failed(e.to_string()))?;
    // serve may answer before reading everything (a refused peer): its
    // answer is read even when the request could not be written whole.
    let sent = conn
        .write_all(&body)
        .and_then(|_| conn.shutdown(std::net::Shutdown::Write));
    let mut buf = Vec::new();
    let read = (&conn).take(MAX_REQUEST).read_to_end(&mut buf);
    let a: Answer = match serde_json::from_slice(&buf) {
        Ok(a) => a,
        Err(e) => {
            return Err(match (sent, read) {
                (Err(w), _) => failed(w),
                (_, Err(r)) => failed(r),
                _ => Unanswered::Failed(format!("{}: unreadable answer: {e}", path.display())),
            })
        }
    };
    Ok(Reply::from_parts(a.stdout, a.stderr, a.blocked))
}
