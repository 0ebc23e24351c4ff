//! `hermes-operator demo [--bind ADDR:PORT] [--keep]`: the dashboard and
//! reports on a throwaway home full of sample data (ops::demo), served until
//! SIGTERM/SIGINT, then deleted (unless `--keep`). It never touches the real
//! HERMES_HOME: everything lives in a new private directory under the
//! system's temp dir.

use crate::app::App;
use crate::error::{Error, Result};
use crate::home::Home;
use crate::output::Output;
use crate::store::events::Actor;
use std::path::PathBuf;
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

pub fn run(out: &Output, a: Args) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    let path = std::env::temp_dir().join(format!(
        "hermes-operator-demo-{}",
        crate::crypto::random_hex(6)
    ));
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&path)
        .map_err(|e| Error::io(&path, "creating the demo home", e))?;
    let _cleanup = Throwaway {
        path: path.clone(),
        keep: a.keep,
    };
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
    crate::cli::serve::serve_home(
        &app,
        crate::server::Options {
            bind: a.bind,
            grace: Duration::from_secs(5),
            read_timeout: Duration::from_secs(30),
            demo: true,
        },
    )
}
