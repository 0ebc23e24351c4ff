//! Shell completions and man pages, generated from the clap definitions.
//! `cargo run --example gen_docs` writes them into `completions/` and `man/`,
//! `hermes-operator completions SHELL` prints the same scripts (both call
//! [`completion`]); `tests/cli/docs.rs` fails when the committed files are
//! stale, so every change to the command surface shows up in review.

use crate::error::Kind;
use clap_complete::Shell;

const BIN: &str = "hermes-operator";

/// Every generated file as (path relative to the crate root, contents).
pub fn render() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for (shell, file) in [
        (Shell::Bash, "completions/hermes-operator.bash"),
        (Shell::Zsh, "completions/_hermes-operator"),
        (Shell::Fish, "completions/hermes-operator.fish"),
    ] {
        out.push((file.to_string(), completion(shell)));
    }
    man_pages(&man_tree(), BIN, None, &mut out);
    out
}

/// The completion script for `shell`: the one generator behind both the
/// committed `completions/` files and `hermes-operator completions`.
pub fn completion(shell: Shell) -> Vec<u8> {
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut super::command(), BIN, &mut buf);
    if shell == Shell::Bash {
        buf = fix_bash_state_names(&String::from_utf8_lossy(&buf), BIN).into_bytes();
    }
    buf
}

/// clap_complete's bash script tracks the subcommand path in `$cmd`, built
/// as `hermes__operator__subcmd__user`, but spells the case arms that
/// dispatch on it with the binary's hyphen escaped like a subcommand
/// separator: `hermes__subcmd__operator__subcmd__user)`. No arm below the
/// top level ever matches, so `hermes-operator user <TAB>` offered nothing
/// (clap-rs/clap#6421, #6386; the fix upstream is not released). Respell the
/// arms the way the loop spells `$cmd`; once clap_complete is fixed the
/// buggy spelling no longer occurs and this changes nothing.
fn fix_bash_state_names(script: &str, bin: &str) -> String {
    // clap_complete's separator between path elements (its private CMD_SEP).
    const SEP: &str = "__subcmd__";
    let wrong = bin.replace('-', SEP);
    let right = bin.replace('-', "__");
    if wrong == right {
        return script.to_string();
    }
    script.replace(&wrong, &right)
}

/// The command tree as the man pages describe it: no `help` subcommands
/// (they have no pages of their own, so a `hermes-operator-help(1)` would
/// point nowhere), and built, so every subcommand carries the global
/// options (`--json`, `--hermes-home`) it accepts.
fn man_tree() -> clap::Command {
    fn without_help(cmd: clap::Command) -> clap::Command {
        cmd.disable_help_subcommand(true)
            .mut_subcommands(without_help)
    }
    // The exit codes get a section of their own (EXIT STATUS) instead of
    // the free text of --help, which roff would run together into one line.
    let mut cmd = without_help(super::command()).after_help(None::<&str>);
    cmd.build();
    cmd
}

fn man_pages(
    cmd: &clap::Command,
    name: &str,
    parent: Option<&str>,
    out: &mut Vec<(String, Vec<u8>)>,
) {
    let cmd = cmd.clone().name(name.to_string());
    let man = clap_mangen::Man::new(cmd.clone());
    let mut buf = Vec::new();
    render_page(&man, &cmd, parent, &mut buf)
        .expect("rendering a man page into memory cannot fail");
    out.push((format!("man/{name}.1"), buf));
    for sub in cmd.get_subcommands() {
        if sub.is_hide_set() {
            continue;
        }
        man_pages(sub, &format!("{name}-{}", sub.get_name()), Some(name), out);
    }
}

/// Every page: clap_mangen's sections in clap_mangen's order, then (issue
/// 22) EXIT STATUS on the top page (from [`Kind::exit_code`], the one
/// table), ENVIRONMENT, FILES, EXAMPLES and SEE ALSO, which clap cannot
/// derive ([`super::man_sections`]); VERSION last.
fn render_page(
    man: &clap_mangen::Man,
    cmd: &clap::Command,
    parent: Option<&str>,
    w: &mut Vec<u8>,
) -> std::io::Result<()> {
    let name = cmd.get_name();
    man.render_title(w)?;
    man.render_name_section(w)?;
    man.render_synopsis_section(w)?;
    man.render_description_section(w)?;
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(w)?;
    }
    let subs: Vec<String> = visible_subcommands(cmd)
        .map(|s| format!("{name}-{}", s.get_name()))
        .collect();
    if !subs.is_empty() {
        man.render_subcommands_section(w)?;
    }
    if cmd.get_after_long_help().is_some() || cmd.get_after_help().is_some() {
        man.render_extra_section(w)?;
    }
    if parent.is_none() {
        w.extend_from_slice(b".SH \"EXIT STATUS\"\n");
        for (code, meaning) in exit_codes() {
            w.extend_from_slice(
                format!(".TP\n\\fB{code}\\fR\n{}\n", roff_text(meaning)).as_bytes(),
            );
        }
    }
    w.extend_from_slice(b".SH ENVIRONMENT\n");
    for (var, what) in super::man_sections::ENVIRONMENT {
        w.extend_from_slice(format!(".TP\n\\fB{var}\\fR\n{}\n", roff_text(what)).as_bytes());
    }
    w.extend_from_slice(b".SH FILES\nUnder HERMES_HOME:\n");
    for (file, what) in super::man_sections::FILES {
        w.extend_from_slice(
            format!(".TP\n\\fI{}\\fR\n{}\n", roff_text(file), roff_text(what)).as_bytes(),
        );
    }
    w.extend_from_slice(b".SH EXAMPLES\n");
    for (line, what) in examples_of(cmd, name) {
        w.extend_from_slice(
            format!(".TP\n\\fB{}\\fR\n{}\n", roff_text(line), roff_text(what)).as_bytes(),
        );
    }
    let see: Vec<String> = parent
        .into_iter()
        .map(str::to_string)
        .chain(subs)
        .map(|p| format!("\\fB{}\\fR(1)", roff_text(&p)))
        .collect();
    w.extend_from_slice(format!(".SH \"SEE ALSO\"\n{}\n", see.join(", ")).as_bytes());
    if cmd.get_version().is_some() || cmd.get_long_version().is_some() {
        man.render_version_section(w)?;
    }
    Ok(())
}

fn visible_subcommands(cmd: &clap::Command) -> impl Iterator<Item = &clap::Command> {
    cmd.get_subcommands().filter(|s| !s.is_hide_set())
}

/// A command's examples: its own, or for a group the first of each of its
/// commands (so `hermes-operator(1)` has one per command).
fn examples_of(cmd: &clap::Command, name: &str) -> Vec<(&'static str, &'static str)> {
    let own = super::man_sections::examples(name);
    if !own.is_empty() {
        return own.to_vec();
    }
    visible_subcommands(cmd)
        .filter_map(|s| {
            examples_of(s, &format!("{name}-{}", s.get_name()))
                .first()
                .copied()
        })
        .collect()
}

/// (exit code, meaning), 0 first: for `--help` and the man page.
pub fn exit_codes() -> Vec<(i32, &'static str)> {
    std::iter::once((0, "ok"))
        .chain(Kind::ALL.iter().map(|k| (k.exit_code(), k.meaning())))
        .collect()
}

/// The exit-code table under `hermes-operator --help`.
pub fn exit_codes_help() -> String {
    let mut s = String::from("Exit codes:");
    for (code, meaning) in exit_codes() {
        s.push_str(&format!("\n  {code:>2}  {meaning}"));
    }
    s
}

/// Plain text for a roff body line: backslashes, hyphens and quotes escaped,
/// and no leading `.` or `'` that roff would take for a request.
fn roff_text(s: &str) -> String {
    let t = s
        .replace('\\', "\\e")
        .replace('-', "\\-")
        .replace('\'', "\\(aq");
    if t.starts_with('.') {
        format!("\\&{t}")
    } else {
        t
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_bash_state_has_its_case_arm() {
        let script = String::from_utf8(super::completion(clap_complete::Shell::Bash)).unwrap();
        let states: Vec<&str> = script
            .lines()
            .filter_map(|l| l.trim().strip_prefix("cmd=\"")?.strip_suffix('"'))
            .filter(|s| !s.is_empty())
            .collect();
        assert!(states.len() > 40, "{}", states.len());
        for s in states {
            assert!(
                script.contains(&format!("\n        {s})\n")),
                "no case arm for {s}"
            );
        }
    }

    #[test]
    fn roff_text_is_escaped() {
        assert_eq!(super::roff_text("a-b's"), "a\\-b\\(aqs");
        assert_eq!(super::roff_text(".x"), "\\&.x");
    }
}
