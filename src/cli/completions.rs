//! `hermes-operator completions <bash|zsh|fish>`: the completion script on
//! stdout, the same bytes as the committed `completions/` files (both come
//! from `cli::docs::completion`).

use crate::output::Output;
use crate::Result;
use clap_complete::engine::{ArgValueCandidates, CompletionCandidate};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The shell to complete for
    #[arg(value_enum)]
    pub shell: ShellArg,
}

/// The shells we ship scripts for (`completions/`).
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ShellArg {
    Bash,
    Zsh,
    Fish,
}

impl From<ShellArg> for clap_complete::Shell {
    fn from(s: ShellArg) -> Self {
        match s {
            ShellArg::Bash => clap_complete::Shell::Bash,
            ShellArg::Zsh => clap_complete::Shell::Zsh,
            ShellArg::Fish => clap_complete::Shell::Fish,
        }
    }
}

pub fn run(out: Output, a: &Args) -> Result<()> {
    let script = super::docs::completion(a.shell.into());
    // The script ends with its own newline; `line` would add another.
    out.raw(&script)
}

/// Dynamic completion of usernames (`COMPLETE=bash hermes-operator`).
pub fn usernames() -> ArgValueCandidates {
    ArgValueCandidates::new(|| {
        candidates(|app| {
            Ok(app
                .users_ro()?
                .list()?
                .into_iter()
                .map(|u| CompletionCandidate::new(u.username).help(Some(u.role.to_string().into())))
                .collect())
        })
    })
}

/// Dynamic completion of operator session ids, newest first, with their
/// titles (or first messages) as help.
pub fn session_ids() -> ArgValueCandidates {
    ArgValueCandidates::new(|| {
        candidates(|app| {
            let opts = crate::ops::sessions::ListOptions {
                limit: 200,
                ..Default::default()
            };
            Ok(
                crate::ops::sessions::list(app, &crate::ops::sessions::Scope::Operator, &opts)?
                    .into_iter()
                    .map(|s| {
                        let help = s.display_title.as_deref().map(|t| {
                            let who = s.username.as_deref().unwrap_or("?");
                            format!("{who}: {}", crate::output::clip(t, 40)).into()
                        });
                        CompletionCandidate::new(s.session.id).help(help)
                    })
                    .collect(),
            )
        })
    })
}

/// Candidates from the home the command line names (`--hermes-home`, then
/// `HERMES_HOME`, then the default), read-only. Whoever completes can read
/// these databases anyway; when they cannot be read there is nothing to
/// offer, and a completion never prints an error into the shell.
fn candidates(
    read: impl Fn(&crate::app::App) -> Result<Vec<CompletionCandidate>>,
) -> Vec<CompletionCandidate> {
    let args: Vec<String> = std::env::args().collect();
    let flag = args.iter().enumerate().find_map(|(i, a)| {
        a.strip_prefix("--hermes-home=")
            .map(str::to_string)
            .or_else(|| {
                (a == "--hermes-home")
                    .then(|| args.get(i + 1).cloned())
                    .flatten()
            })
    });
    let Ok(home) = crate::home::Home::resolve(flag.as_deref().map(std::path::Path::new)) else {
        return Vec::new();
    };
    crate::app::App::load(home, crate::store::events::Actor::new("completion"), |_| {})
        .and_then(|app| read(&app))
        .unwrap_or_default()
}
