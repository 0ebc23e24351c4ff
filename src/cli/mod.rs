//! The command line: clap definitions, global options, dispatch, and the one
//! place where errors become exit codes. One folder per command group, one
//! file per subcommand.

pub mod audit;
pub mod chat;
pub mod docs;
pub mod doctor;
pub mod hook;
pub mod install;
pub mod serve;
pub mod session;
pub mod update;
pub mod user;

use crate::app::App;
use crate::error::{Error, Result};
use crate::home::Home;
use crate::output::Output;
use crate::store::events::Actor;
use clap::{CommandFactory, Parser, Subcommand};
use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;

const AFTER_HELP: &str = "\
Exit codes:
  0 ok · 1 error · 2 usage · 3 integrity failure · 4 permission denied
  5 not found · 6 busy/locked · 7 Hermes unavailable · 8 config error
  9 corrupt or incompatible database · 10 conflict
  11 update failed · 12 unhealthy (update's restart/health check, or a doctor check failed)";

#[derive(Debug, Parser)]
#[command(
    name = "hermes-operator",
    version,
    about = "Operator control plane for a Hermes Agent server: accounts, audited sessions, tamper-evident event log",
    after_help = AFTER_HELP,
    propagate_version = true
)]
pub struct Cli {
    /// Hermes' home directory [default: $HERMES_HOME, else ~/.hermes]
    #[arg(long, global = true, value_name = "DIR")]
    pub hermes_home: Option<PathBuf>,

    /// Print machine-readable JSON on stdout (NDJSON for streams); errors as JSON on stderr
    #[arg(long, global = true)]
    pub json: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Manage operator accounts (users.db)
    #[command(subcommand)]
    User(user::UserCmd),
    /// Read and manage operator sessions in Hermes' state.db
    #[command(subcommand)]
    Session(session::SessionCmd),
    /// The tamper-evident event log: verify, replay, reports, export
    #[command(subcommand)]
    Audit(audit::AuditCmd),
    /// Chat through the real Hermes agent as an operator user
    Chat(chat::Args),
    /// Hermes shell hooks: bare `hook` handles one event from stdin (Hermes runs it); install /
    /// uninstall / status manage it in Hermes' config
    Hook(hook::HookArgs),
    /// Back up, run `hermes update --yes`, verify, restart (cron: `update --yes`); schedule it
    Update(update::UpdateArgs),
    /// Set up this server: directories, secrets, config, first admin, scripts, systemd unit (idempotent)
    Install(install::Args),
    /// Check the installation: paths, permissions, secrets, state.db, Hermes API, hook, port, updates, audit chain
    Doctor,
    /// The embedded HTTP mode: JSON API, SSE chat, the dashboard
    Serve(serve::Args),
}

/// What every command runs with.
pub struct Ctx {
    pub out: Output,
    pub app: App,
}

impl Ctx {
    /// Ask a yes/no question on the terminal; `yes` answers it up front.
    /// Without a terminal and without `--yes` this is a usage error, never a hang.
    pub fn confirm(&self, question: &str, yes: bool) -> Result<bool> {
        if yes {
            return Ok(true);
        }
        if !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
            return Err(Error::usage(format!(
                "{question} — needs confirmation, but this run is not interactive"
            ))
            .hint("pass --yes to confirm in scripts"));
        }
        dialoguer::Confirm::new()
            .with_prompt(question)
            .default(false)
            .interact()
            .map_err(|e| Error::internal(format!("prompt failed: {e}")))
    }
}

/// A new password: one line from stdin with `--password-stdin`, else a hidden
/// prompt with confirmation. Never from argv.
pub fn read_new_password(from_stdin: bool, username: &str) -> Result<zeroize::Zeroizing<String>> {
    if from_stdin {
        let mut line = zeroize::Zeroizing::new(String::new());
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| Error::usage(format!("reading the password from stdin: {e}")))?;
        let trimmed = line.trim_end_matches(['\n', '\r']).to_string();
        if trimmed.is_empty() {
            return Err(Error::usage("--password-stdin: stdin was empty"));
        }
        return Ok(zeroize::Zeroizing::new(trimmed));
    }
    if !std::io::stdin().is_terminal() {
        return Err(Error::usage(format!(
            "a password for {username} is needed, but there is no terminal to prompt on"
        ))
        .hint("pipe it in with --password-stdin"));
    }
    let pw = dialoguer::Password::new()
        .with_prompt(format!("Password for {username}"))
        .with_confirmation("Repeat password", "the passwords do not match")
        .interact()
        .map_err(|e| Error::internal(format!("prompt failed: {e}")))?;
    Ok(zeroize::Zeroizing::new(pw))
}

pub fn command() -> clap::Command {
    Cli::command()
}

/// Parse, run, print errors, return the exit code.
pub fn main() -> i32 {
    // Hermes runs `hermes-operator [--hermes-home DIR] hook` once per tool
    // call: answer it without building the whole clap command tree.
    if let Some(home) = bare_hook_invocation() {
        crate::hooks::run_protocol(Home::resolve(home.as_deref()));
        return 0;
    }
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => 0,
                _ => crate::Kind::Usage.exit_code(),
            };
        }
    };
    let out = Output::new(cli.json);
    match run(cli, out) {
        Ok(()) => 0,
        Err(e) => {
            out.error(&e);
            e.kind.exit_code()
        }
    }
}

/// `Some(--hermes-home value)` when argv is exactly `[--hermes-home DIR] hook`
/// (or `--hermes-home=DIR`); anything else goes through clap.
fn bare_hook_invocation() -> Option<Option<PathBuf>> {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    match args.as_slice() {
        [h] if h == "hook" => Some(None),
        [flag, dir, h] if flag == "--hermes-home" && h == "hook" => Some(Some(PathBuf::from(dir))),
        [flag, h] if h == "hook" => flag
            .to_str()
            .and_then(|f| f.strip_prefix("--hermes-home="))
            .map(|d| Some(PathBuf::from(d))),
        _ => None,
    }
}

fn run(cli: Cli, out: Output) -> Result<()> {
    // Hermes runs the bare hook once per tool call: it does only what it
    // needs (no config warnings, no users.db) and never fails loudly.
    if let Command::Hook(hook::HookArgs { cmd: None }) = &cli.command {
        crate::hooks::run_protocol(Home::resolve(cli.hermes_home.as_deref()));
        return Ok(());
    }
    let home = Home::resolve(cli.hermes_home.as_deref())?;
    // doctor reports a broken config as a failed check instead of stopping.
    if let Command::Doctor = &cli.command {
        return doctor::run(&home, out);
    }
    let app = App::load(home, Actor::cli(), |w| out.warn(w))?;
    let ctx = Ctx { out, app };
    match cli.command {
        Command::User(c) => user::run(&ctx, c),
        Command::Session(c) => session::run(&ctx, c),
        Command::Audit(c) => audit::run(&ctx, c),
        Command::Chat(a) => chat::run(&ctx, a),
        Command::Update(a) => update::run(&ctx, a),
        Command::Install(a) => install::run(&ctx, a),
        Command::Doctor => unreachable!("handled before loading the app"),
        Command::Serve(a) => serve::run(&ctx, a),
        Command::Hook(a) => match a.cmd {
            Some(c) => hook::run(&ctx, c),
            None => unreachable!("handled before loading the app"),
        },
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn clap_definitions_are_consistent() {
        super::command().debug_assert();
    }
}
