//! Shell completions and man pages, generated from the clap definitions.
//! `cargo run --example gen_docs` writes them into `completions/` and `man/`;
//! `tests/cli/docs.rs` fails when the committed files are stale, so every
//! change to the command surface shows up in review.

use clap_complete::Shell;

/// Every generated file as (path relative to the crate root, contents).
pub fn render() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for (shell, file) in [
        (Shell::Bash, "completions/hermes-operator.bash"),
        (Shell::Zsh, "completions/_hermes-operator"),
        (Shell::Fish, "completions/hermes-operator.fish"),
    ] {
        let mut buf = Vec::new();
        clap_complete::generate(shell, &mut super::command(), "hermes-operator", &mut buf);
        out.push((file.to_string(), buf));
    }
    let cmd = super::command();
    man_pages(&cmd, "hermes-operator", &mut out);
    out
}

fn man_pages(cmd: &clap::Command, name: &str, out: &mut Vec<(String, Vec<u8>)>) {
    let cmd = cmd.clone().name(name.to_string());
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .render(&mut buf)
        .expect("rendering a man page into memory cannot fail");
    out.push((format!("man/{name}.1"), buf));
    for sub in cmd.get_subcommands() {
        if sub.is_hide_set() {
            continue;
        }
        man_pages(sub, &format!("{name}-{}", sub.get_name()), out);
    }
}
