//! `hermes-operator demo [--bind ADDR:PORT] [--keep]`: the dashboard and
//! reports on a throwaway home full of sample data (ops::demo), served until
//! SIGTERM, SIGINT, SIGHUP or SIGQUIT, then deleted (unless `--keep`). It
//! never touches the real HERMES_HOME: everything lives in a new private
//! directory under the system's temp dir. That directory holds secrets (a
//! JWT secret, the accounts' password hashes, a signing key), so it must
//! not outlive the process: the four signals are taken on a thread of our
//! own from before it exists, and a home left by a demo killed with SIGKILL
//! (which no process can catch) is removed by the next `demo`
//! (`ops::demo::reap_stale`).

use crate::app::App;
use crate::error::Result;
use crate::home::Home;
use crate::output::Output;
use crate::store::events::Actor;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:8643")]
    pub bind: String,
    /// Keep the demo home after exit (its path is printed)
    #[arg(long)]
    pub keep: bool,
}

/// Deletes the demo home when the command ends, however it ends.
struct Throwaway {
    path: PathBuf,
    keep: bool,
}

impl Drop for Throwaway {
    fn drop(&mut self) {
        if self.keep {
            eprintln!("hermes-operator demo: kept {}", self.path.display());
        } else if std::fs::remove_dir_all(&self.path).is_ok() {
            eprintln!("hermes-operator demo: removed {}", self.path.display());
        }
    }
}

/// The signals that end a demo. Their default action kills the process
/// without running any destructor, so none is left at its default.
const STOP_SIGNALS: [libc::c_int; 4] = [libc::SIGHUP, libc::SIGINT, libc::SIGQUIT, libc::SIGTERM];

/// Block the stop signals in this thread, and so in every thread started
/// from it later (the server's included); [`watch_signals`] takes them.
/// Called before the demo home exists: a signal from then on waits for the
/// watcher instead of killing the process. Programs started through
/// `std::process::Command` do not inherit the mask (std empties it in the
/// child), so nothing we run becomes unkillable by SIGTERM.
fn block_stop_signals() -> libc::sigset_t {
    // SAFETY: a zeroed sigset_t is valid storage that sigemptyset then
    // initialises; pthread_sigmask only changes this thread's mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in STOP_SIGNALS {
            libc::sigaddset(&mut set, s);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

/// What the signal thread tells the main one.
#[derive(Default)]
struct Stop {
    requested: AtomicBool,
    notify: Arc<tokio::sync::Notify>,
}

/// Wait for the stop signals on a thread of its own. The first asks for a
/// graceful stop (before serving: not to serve at all; while serving: the
/// server's shutdown), after which `Throwaway` removes the home. A second
/// one, impatient, removes the home at once and exits.
fn watch_signals(set: libc::sigset_t, stop: Arc<Stop>, home: PathBuf, keep: bool) {
    std::thread::spawn(move || loop {
        let mut sig: libc::c_int = 0;
        // SAFETY: `set` is an initialised sigset_t, `sig` a valid out pointer.
        if unsafe { libc::sigwait(&set, &mut sig) } != 0 {
            continue;
        }
        if !stop.requested.swap(true, Ordering::SeqCst) {
            eprintln!("hermes-operator demo: signal {sig}: stopping");
            stop.notify.notify_one();
            continue;
        }
        if !keep {
            // The main thread may still be writing into it: retry a little.
            for _ in 0..5 {
                if std::fs::remove_dir_all(&home).is_ok() || !home.exists() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        std::process::exit(128 + sig);
    });
}

pub fn run(out: &Output, a: Args) -> Result<()> {
    let set = block_stop_signals();
    let tmp = std::env::temp_dir();
    for p in crate::ops::demo::reap_stale(&tmp) {
        eprintln!(
            "hermes-operator demo: removed {}, left by a demo that was killed",
            p.display()
        );
    }
    let demo_home = crate::ops::demo::create_home(&tmp, a.keep)?;
    let path = demo_home.path.clone();
    let cleanup = Throwaway {
        path: path.clone(),
        keep: a.keep,
    };
    let stop = Arc::new(Stop::default());
    watch_signals(set, stop.clone(), path.clone(), a.keep);
    let home = Home::at(&path);
    // The operator's own JWT secret (never a default), as `install` makes it.
    crate::home::write_private_file(
        &home.operator_env(),
        format!("OPERATOR_JWT_SECRET={}\n", crate::crypto::random_hex(32)).as_bytes(),
    )?;
    let app = App::load(home, Actor::new("demo"), |w| out.warn(w))?;
    let d = crate::ops::demo::populate(&app)?;
    let who: Vec<String> = d.users.iter().map(|(n, r)| format!("{n} ({r})")).collect();
    out.info(format!(
        "hermes-operator demo: sample data in {} ({} operator and {} native sessions, {} audit events){}",
        path.display(),
        d.operator_sessions,
        d.native_sessions,
        d.events,
        if a.keep { "" } else { "; deleted on exit" }
    ));
    out.info(format!(
        "  log in as {} with the password {}",
        who.join(", "),
        d.password
    ));
    out.info(format!(
        "  replay a session with tool calls and an approval: {} (or `hermes-operator --hermes-home {} audit replay {}`)",
        d.replay,
        path.display(),
        d.replay
    ));
    out.info("  chat needs a real Hermes (see README: \"Chat with a real Hermes\"); Ctrl+C ends the demo");
    if stop.requested.load(Ordering::SeqCst) {
        return Ok(());
    }
    let served = crate::cli::serve::serve_home(
        &app,
        crate::server::Options {
            bind: a.bind,
            grace: Duration::from_secs(5),
            read_timeout: Duration::from_secs(30),
            demo: true,
            stop: Some(stop.notify.clone()),
        },
    );
    // Databases closed, then the home removed, then its lock let go (held
    // until the home is gone, so no reaper ever races this removal).
    drop(app);
    drop(cleanup);
    drop(demo_home);
    served
}
