//! The command line: clap definitions, global options, dispatch, and the one
//! place where errors become exit codes. One folder per command group, one
//! file per subcommand.

pub mod audit;
pub mod chat;
pub mod completions;
pub mod demo;
pub mod docs;
pub mod doctor;
pub mod hook;
pub mod install;
pub mod login;
mod man_sections;
pub mod serve;
pub mod session;
pub mod store;
pub mod update;
pub mod user;
pub mod values;

use crate::app::App;
use crate::error::{Error, Result};
use crate::home::Home;
use crate::output::Output;
use crate::store::events::Actor;
use clap::{CommandFactory, Parser, Subcommand};
use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "hermes-operator",
    version,
    about = "Operator control plane for a Hermes Agent server: accounts, audited sessions, tamper-evident event log",
    after_help = docs::exit_codes_help(),
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Globals,

    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, clap::Args)]
pub struct Globals {
    /// Hermes' home directory [default: $HERMES_HOME, else ~/.hermes]
    #[arg(long, global = true, value_name = "DIR")]
    pub hermes_home: Option<PathBuf>,

    /// Print machine-readable JSON on stdout (NDJSON for streams); errors as JSON on stderr
    #[arg(long, global = true)]
    pub json: bool,

    /// The fleet's database for this command: postgres://USER@HOST:PORT/DB (the password in OPERATOR_STORE_PASSWORD) [default: store.url]
    #[arg(long, global = true, value_name = "URL")]
    pub store: Option<String>,
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
    /// The fleet's PostgreSQL: move this host's event log there, verify every host's chain
    #[command(subcommand)]
    Store(store::StoreCmd),
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
    /// Print the shell completion script (bash, zsh or fish) on stdout
    Completions(completions::Args),
    /// Try it: the dashboard on a throwaway home full of sample data (deleted on exit)
    Demo(demo::Args),
    /// Log in to a remote `serve` with single sign-on (browser + loopback); prints the tokens
    Login(login::Args),
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
            .map_err(|e| Error::internal(format!("prompt failed: {e}")).with_source(e))
    }

    /// Before Hermes has written state.db, reads answer with empty data:
    /// say so once, calmly, on stderr (the data on stdout stays clean).
    pub fn state_notice(&self) {
        if let Some(n) = self.app.state_notice() {
            self.out.info(format!("note: {n}"));
        }
    }
}

/// A new password: one line from stdin with `--password-stdin`, else a hidden
/// prompt with confirmation. Never from argv.
pub fn read_new_password(from_stdin: bool, username: &str) -> Result<zeroize::Zeroizing<String>> {
    if from_stdin {
        let mut line = zeroize::Zeroizing::new(String::new());
        std::io::stdin().lock().read_line(&mut line).map_err(|e| {
            Error::usage(format!("reading the password from stdin: {e}")).with_source(e)
        })?;
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
        .map_err(|e| Error::internal(format!("prompt failed: {e}")).with_source(e))?;
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
        hook::protocol::run(Home::resolve(home.as_deref()));
        return 0;
    }
    // `COMPLETE=bash hermes-operator`: clap_complete's dynamic completion
    // (usernames and session ids from the home's databases); exits here
    // when the variable is set, costs one env lookup otherwise.
    clap_complete::CompleteEnv::with_factory(Cli::command).complete();
    let cli = match parse_one_group(std::env::args_os().collect()).map_or_else(Cli::try_parse, Ok) {
        Ok(c) => c,
        Err(e) => return clap_error(&e),
    };
    let out = Output::new(cli.global.json);
    init_logging();
    match run(cli, out) {
        Ok(()) => 0,
        // Nobody is left to read a message.
        Err(e) if e.kind == crate::Kind::ClosedPipe => e.kind.exit_code(),
        Err(e) => {
            out.error(&e);
            e.kind.exit_code()
        }
    }
}

/// What the layers below log (`tracing`: serve's lifecycle, warnings) goes
/// to stderr as plain lines — no time, level or target: journald and the
/// access log add their own, and scripts read these lines as they are.
fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .without_time()
        .with_level(false)
        .with_target(false)
        .with_ansi(false)
        .try_init();
}

/// Help and --version print as clap prints them; a rejected command line
/// is a usage error, as JSON on stderr when `--json` was asked for (scripts
/// parse every failure the same way).
fn clap_error(e: &clap::Error) -> i32 {
    use clap::error::ErrorKind;
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        let _ = e.print();
        return 0;
    }
    let json = std::env::args_os()
        .skip(1)
        .take_while(|a| a != "--")
        .any(|a| a == "--json");
    if !json {
        let _ = e.print();
        return crate::Kind::Usage.exit_code();
    }
    let err = usage_error_of(e);
    Output::new(true).error(&err);
    err.kind.exit_code()
}

/// clap's rendered error as ours: its first paragraph (without `error: `)
/// is the message; the usage line and clap's tips become the hint.
fn usage_error_of(e: &clap::Error) -> Error {
    let text = e.render().to_string();
    if e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        // clap rendered the whole help: name the command (from its usage
        // line, `Usage: hermes-operator user [OPTIONS] <COMMAND>`) instead.
        let usage = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("Usage: "))
            .unwrap_or("hermes-operator");
        let command: Vec<&str> = usage
            .split_whitespace()
            .take_while(|w| !w.starts_with(['[', '<']))
            .collect();
        let command = command.join(" ");
        return Error::usage(format!("`{command}` needs a subcommand"))
            .hint(format!("`{command} --help` lists them"));
    }
    let lines = |para: &str| -> Vec<String> {
        para.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect()
    };
    let mut paragraphs = text.split("\n\n");
    let first = lines(paragraphs.next().unwrap_or_default()).join(" ");
    let message = first.strip_prefix("error: ").unwrap_or(&first).to_string();
    let rest: Vec<String> = paragraphs.flat_map(lines).collect();
    let err = Error::usage(message);
    if rest.is_empty() {
        err
    } else {
        err.hint(rest.join("; "))
    }
}

/// A valid command line parsed against its own command group only.
///
/// clap's derive builds the whole command tree (every group, subcommand and
/// argument) before parsing; in a short-lived process that is a third of a
/// millisecond of cold code and allocations, more than the query behind
/// `session list`. So the frequent groups are parsed against a tree of just
/// the global options and that group, made by the same derives. Anything
/// that does not parse and convert cleanly here (help, --version, errors,
/// other groups) returns `None` and goes through the full tree, so messages
/// and behaviour stay those of the full definition.
fn parse_one_group(argv: Vec<std::ffi::OsString>) -> Option<Cli> {
    use clap::FromArgMatches;
    let mut rest = argv.iter().skip(1);
    let group = loop {
        let a = rest.next()?.to_str()?;
        match a {
            "--json" => {}
            "--hermes-home" => {
                rest.next()?;
            }
            _ if a.starts_with("--hermes-home=") => {}
            _ => break a,
        }
    };
    let m = one_group_command(group)?.try_get_matches_from(argv).ok()?;
    Cli::from_arg_matches(&m).ok()
}

/// The root command with the global options and one group (see
/// [`parse_one_group`]); `None` for groups parsed only by the full tree.
fn one_group_command(group: &str) -> Option<clap::Command> {
    use clap::{Args, Subcommand};
    let sub = clap::Command::new(group.to_string()).subcommand_required(true);
    let sub = match group {
        "session" => session::SessionCmd::augment_subcommands(sub),
        "audit" => audit::AuditCmd::augment_subcommands(sub),
        "user" => user::UserCmd::augment_subcommands(sub),
        _ => return None,
    };
    Some(
        Globals::augment_args(clap::Command::new("hermes-operator"))
            .subcommand_required(true)
            .subcommand(sub),
    )
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
        hook::protocol::run(Home::resolve(cli.global.hermes_home.as_deref()));
        return Ok(());
    }
    // Completions need no HERMES_HOME: they are printed at install time.
    if let Command::Completions(a) = &cli.command {
        return completions::run(out, a);
    }
    // The demo never looks at the real HERMES_HOME: it makes its own.
    if let Command::Demo(a) = cli.command {
        return demo::run(&out, a);
    }
    // A laptop logging in to a remote server has no HERMES_HOME.
    if let Command::Login(a) = cli.command {
        return login::run(&out, a);
    }
    let home = Home::resolve(cli.global.hermes_home.as_deref())?;
    // doctor reports a broken config as a failed check instead of stopping.
    if let Command::Doctor = &cli.command {
        return doctor::run(&home, out);
    }
    let mut app = App::load(home, Actor::cli(), |w| out.warn(w))?;
    if let Some(url) = cli.global.store {
        crate::config::check_store_url(&url).map_err(|e| {
            Error::usage(format!("--store: {e}"))
                .hint("the password goes in OPERATOR_STORE_PASSWORD (the environment or profiles/operator/.env)")
        })?;
        app.cfg.config.store.url = Some(url);
    }
    let ctx = Ctx { out, app };
    match cli.command {
        Command::User(c) => user::run(&ctx, c),
        Command::Session(c) => session::run(&ctx, c),
        Command::Audit(c) => audit::run(&ctx, c),
        Command::Store(c) => store::run(&ctx, c),
        Command::Chat(a) => chat::run(&ctx, a),
        Command::Update(a) => update::run(&ctx, a),
        Command::Install(a) => install::run(&ctx, a),
        Command::Doctor | Command::Completions(_) => {
            unreachable!("handled before loading the app")
        }
        Command::Serve(a) => serve::run(&ctx, a),
        Command::Demo(_) | Command::Login(_) => unreachable!("handled before loading the app"),
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

    /// Every argument of a leaf command, as clap sees it.
    fn arg_shapes(c: &clap::Command) -> Vec<String> {
        let mut v: Vec<String> = c
            .get_arguments()
            .filter(|a| a.get_id() != "version")
            .map(|a| {
                format!(
                    "{} {:?} {:?} {} {:?} {:?} {:?} {:?} {:?} {}",
                    a.get_id(),
                    a.get_long(),
                    a.get_short(),
                    a.is_required_set(),
                    a.get_action(),
                    a.get_num_args(),
                    a.get_value_names(),
                    a.get_default_values(),
                    a.get_env(),
                    a.is_global_set(),
                )
            })
            .collect();
        v.sort();
        v
    }

    #[test]
    fn one_group_trees_match_the_full_tree() {
        let mut full = super::command();
        full.build();
        for group in ["session", "audit", "user"] {
            let mut one = super::one_group_command(group).unwrap();
            one.build();
            let f = full.find_subcommand(group).unwrap();
            let o = one.find_subcommand(group).unwrap();
            let names = |c: &clap::Command| {
                c.get_subcommands()
                    .map(|s| s.get_name().to_string())
                    .filter(|n| n != "help")
                    .collect::<Vec<_>>()
            };
            assert_eq!(names(f), names(o), "{group}");
            for leaf in f.get_subcommands().filter(|s| s.get_name() != "help") {
                let other = o.find_subcommand(leaf.get_name()).unwrap();
                assert_eq!(
                    arg_shapes(leaf),
                    arg_shapes(other),
                    "{group} {}",
                    leaf.get_name()
                );
            }
        }
    }

    #[test]
    fn one_group_parse_equals_full_parse_or_defers_to_it() {
        use clap::Parser;
        let argv = |s: &str| -> Vec<std::ffi::OsString> {
            std::iter::once("hermes-operator")
                .chain(s.split(' '))
                .map(Into::into)
                .collect()
        };
        for line in [
            "session list",
            "--json session list --limit 5 --offset 2 --user alice --since 7d",
            "session list --all-sources --json",
            "--hermes-home /tmp/h session show op_0123456789ab",
            "--hermes-home=/tmp/h session search hello --limit 3",
            "session cost op_0123456789ab --json",
            "session export op_0123456789ab --format md",
            "session title op_0123456789ab new-title",
            "session end op_0123456789ab",
            "audit verify --checkpoints /tmp/c",
            "audit daily --date 2026-01-02 --tz Europe/Berlin",
            "audit replay op_0123456789ab --json",
            "audit export --since 1d --format csv",
            "audit tail --follow",
            "audit prune --older-than 90d",
            "audit checkpoint",
            "audit user bob",
            "user list --json",
            "user add carol --role auditor --password-stdin",
            "user role carol viewer",
            "user delete carol --yes",
            "user token carol --ttl 60",
        ] {
            let fast = super::parse_one_group(argv(line))
                .unwrap_or_else(|| panic!("`{line}` should parse in its own group"));
            let full = super::Cli::try_parse_from(argv(line)).unwrap();
            assert_eq!(format!("{fast:?}"), format!("{full:?}"), "{line}");
        }
        // Help, version, errors and other groups go to the full tree.
        for line in [
            "--help",
            "--version",
            "session",
            "session --help",
            "session list --version",
            "session list --limit 0",
            "session list --bogus",
            "sessions list",
            "chat --session op_0123456789ab",
            "doctor",
            "--json",
        ] {
            assert!(super::parse_one_group(argv(line)).is_none(), "{line}");
        }
    }
}
