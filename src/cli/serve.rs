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
    // Fail before binding anything when the secret is missing or weak.
    ctx.app.cfg.jwt_secret(&ctx.app.home)?;
    let app = App {
        home: ctx.app.home.clone(),
        cfg: ctx.app.cfg.clone(),
        actor: Actor("http".into()),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(64)
        .thread_name("serve")
        .build()
        .map_err(|e| Error::internal(format!("starting the async runtime: {e}")))?;
    rt.block_on(crate::server::run(
        app,
        crate::server::Options {
            bind,
            grace: Duration::from_secs(a.grace_period),
        },
    ))?;
    // Do not wait for blocking tasks (a verify of a huge log) at exit.
    rt.shutdown_timeout(Duration::from_secs(1));
    Ok(())
}
