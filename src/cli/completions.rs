//! `hermes-operator completions <bash|zsh|fish>`: the completion script on
//! stdout, the same bytes as the committed `completions/` files (both come
//! from `cli::docs::completion`).

use crate::output::Output;
use crate::Result;

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
