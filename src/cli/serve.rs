//! `hermes-operator serve [--bind ADDR:PORT]`: the embedded HTTP mode.

use crate::app::App;
use crate::cli::Ctx;
use crate::error::{Error, Result};
use crate::store::events::Actor;
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on [default: operator.host:operator.port from config]
    #[arg(long, value_name = "ADDR:PORT")]
    pub bind: Option<String>,
    /// After SIGTERM/SIGINT, seconds to let requests and chat turns finish
    /// before running turns are stopped
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub grace_period: u64,
    /// Seconds a client may take to send a request (its headers, then its
    /// JSON body); idle keep-alive connections are closed after as long
    #[arg(long, value_name = "SECS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub read_timeout: u64,
}

pub fn run(ctx: &Ctx, a: Args) -> Result<()> {
    let op = &ctx.app.cfg.config.operator;
    let bind = a.bind.unwrap_or_else(|| {
        if op.host.contains(':') {
            format!("[{}]:{}", op.host, op.port)
        } else {
            format!("{}:{}", op.host, op.port)
        }
    });
    serve_home(
        &ctx.app,
        crate::server::Options {
            bind,
            grace: Duration::from_secs(a.grace_period),
            read_timeout: Duration::from_secs(a.read_timeout),
            demo: false,
            stop: None,
        },
    )
}

/// Run the HTTP mode on `app`'s home until SIGTERM/SIGINT (also `demo`'s).
pub fn serve_home(app: &App, opts: crate::server::Options) -> Result<()> {
    // Fail before binding anything when the secret is missing or weak.
    app.cfg.jwt_secret(&app.home)?;
    let app = App::new(app.home.clone(), app.cfg.clone(), Actor::new("http"));
    tune_malloc();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // SQLite reads and Argon2 run here; a few threads suffice (more
        // only add lock contention and memory arenas).
        .max_blocking_threads(16)
        .thread_name("serve")
        .build()
        .map_err(|e| Error::internal(format!("starting the async runtime: {e}")).with_source(e))?;
    rt.block_on(crate::server::run(app, opts))?;
    // Do not wait for blocking tasks (a verify of a huge log) at exit.
    rt.shutdown_timeout(Duration::from_secs(1));
    Ok(())
}

/// glibc malloc for a long-running server: big blocks (Argon2's 19 MiB per
/// login) are always mmap'ed and so given back when freed, and at most two
/// arenas are kept (otherwise each blocking thread can keep its own copy of
/// those blocks: hundreds of MB resident under load).
fn tune_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; called before any
    // other thread of this process exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}
