//! Shell completion: `hermes-operator completions SHELL` prints the
//! committed `completions/` files, and the bash script completes below the
//! top level, driven through bash's own completion machinery (the function
//! `complete -p` names, with COMP_WORDS/COMP_CWORD/COMP_LINE/COMP_POINT set
//! as readline sets them).

use crate::common::stderr;
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_hermes-operator");

fn completions(shell: &str) -> Vec<u8> {
    let o = Command::new(BIN)
        .args(["completions", shell])
        .env_remove("HERMES_HOME")
        // No HERMES_HOME is needed: point it nowhere to prove it.
        .arg("--hermes-home")
        .arg("/nonexistent/hermes-home")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "completions {shell}: {}", stderr(&o));
    o.stdout
}

#[test]
fn the_command_prints_the_committed_scripts() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for (shell, file) in [
        ("bash", "completions/hermes-operator.bash"),
        ("zsh", "completions/_hermes-operator"),
        ("fish", "completions/hermes-operator.fish"),
    ] {
        let committed = std::fs::read(root.join(file)).unwrap();
        assert!(
            completions(shell) == committed,
            "`completions {shell}` differs from {file}: run `cargo run --example gen_docs`"
        );
    }
}

fn complete(script: &std::path::Path, line: &str) -> Vec<String> {
    crate::common::bash_complete(script, line, &[])
}

#[test]
fn bash_completes_subcommands_and_role_values() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("hermes-operator.bash");
    std::fs::write(&script, completions("bash")).unwrap();

    let top = complete(&script, "hermes-operator ");
    for c in ["user", "session", "audit", "completions"] {
        assert!(top.contains(&c.to_string()), "top level lacks {c}: {top:?}");
    }

    let user = complete(&script, "hermes-operator user ");
    for c in [
        "add", "list", "show", "passwd", "role", "disable", "enable", "delete", "token", "unlock",
        "totp", "key",
    ] {
        assert!(user.contains(&c.to_string()), "`user` lacks {c}: {user:?}");
    }
    assert!(
        !user.contains(&"session".to_string()),
        "`user <TAB>` offered the top level: {user:?}"
    );

    let mut roles = complete(&script, "hermes-operator user add --role ");
    roles.sort();
    assert_eq!(roles, ["admin", "auditor", "user", "viewer"]);

    // Deeper still, and with a global option in front.
    let key = complete(&script, "hermes-operator --json user key ");
    for c in ["create", "list", "revoke"] {
        assert!(
            key.contains(&c.to_string()),
            "`user key` lacks {c}: {key:?}"
        );
    }
    let shells = complete(&script, "hermes-operator completions ");
    for c in ["bash", "zsh", "fish"] {
        assert!(
            shells.contains(&c.to_string()),
            "`completions` lacks {c}: {shells:?}"
        );
    }
}

/// A reader that goes away (`| head -c 1`) ends the command quietly with
/// 128 + SIGPIPE, as `yes | head` does: no message, and not success.
#[test]
fn a_closed_pipe_ends_quietly_with_its_own_code() {
    use std::io::Read;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_hermes-operator"))
        .args(["completions", "bash"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 1];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap(); // then closed
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(141),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
