//! Running other programs (Hermes, git, pip, a restart command) with a
//! timeout that kills their whole process group, and private scratch
//! directories. Shared by the update domain and the Hermes adapter.

use crate::error::{Error, Result};
use std::fs::{self, File};
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub struct Captured {
    /// `None`: killed after the timeout.
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
}

/// Run with stdin closed, capturing output; the whole process group is
/// killed when `timeout` passes.
pub fn run_capture(mut cmd: Command, timeout: Duration) -> std::io::Result<Captured> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = cmd.spawn()?;
    let mut so = child.stdout.take().expect("piped");
    let mut se = child.stderr.take().expect("piped");
    let t1 = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = so.read_to_end(&mut b);
        b
    });
    let t2 = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = se.read_to_end(&mut b);
        b
    });
    let status = wait_timeout(&mut child, timeout)?;
    let stdout = String::from_utf8_lossy(&t1.join().unwrap_or_default()).into_owned();
    let stderr = String::from_utf8_lossy(&t2.join().unwrap_or_default()).into_owned();
    Ok(Captured {
        status,
        stdout,
        stderr,
    })
}

/// Wait for `child`; after `timeout` SIGTERM its process group, then SIGKILL.
pub fn wait_timeout(
    child: &mut std::process::Child,
    timeout: Duration,
) -> std::io::Result<Option<ExitStatus>> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(s) = child.try_wait()? {
            return Ok(Some(s));
        }
        if Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let pgid = child.id() as i32;
    // SAFETY: plain kill(2) on the process group we created (process_group(0)).
    unsafe { libc::kill(-pgid, libc::SIGTERM) };
    let grace = Instant::now() + Duration::from_secs(10);
    while Instant::now() < grace {
        if child.try_wait()?.is_some() {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // SAFETY: as above.
    unsafe { libc::kill(-pgid, libc::SIGKILL) };
    let _ = child.wait();
    Ok(None)
}

/// Run with stdin closed and stdout+stderr appended to `log`.
pub fn run_logged(
    mut cmd: Command,
    log: &File,
    timeout: Duration,
) -> std::io::Result<Option<ExitStatus>> {
    cmd.stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log.try_clone()?)
        .process_group(0);
    let mut child = cmd.spawn()?;
    wait_timeout(&mut child, timeout)
}

/// A private temporary directory (mode 0700, under `$TMPDIR`), removed
/// with everything in it when dropped. `tempfile` picks an unused name and
/// retries on a collision (the hand-written one failed instead); it creates
/// directories with the umask's mode unless told, hence the explicit 0700:
/// a scratch repository or state.db is nobody else's business.
pub type ScratchDir = tempfile::TempDir;

/// A new [`ScratchDir`].
pub fn scratch_dir() -> std::io::Result<ScratchDir> {
    use std::os::unix::fs::PermissionsExt;
    tempfile::Builder::new()
        .prefix("hermes-operator-probe-")
        .permissions(fs::Permissions::from_mode(0o700))
        .tempdir()
}

/// Quote one word so that a POSIX shell, Python's `shlex.split` (Hermes
/// reads hook commands with it) and [`sh_split`] all read it back as that
/// one word. This is Python's own `shlex.quote`, kept rather than
/// `shlex::try_quote`: that one may escape with backslashes inside double
/// quotes (`"\$"`), which Python's `shlex.split` keeps as two characters.
/// Single quotes have no escapes in any of the three readers.
pub fn sh_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"@%+=:,./-_".contains(&b))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\"'\"'"))
    }
}

/// Runs `script` in the machine's `python3` with `input` as JSON on its
/// stdin; its stdout is JSON. For tests that compare with real Python
/// (there is no stand-in: a missing python3 fails the test).
#[cfg(test)]
pub(crate) fn run_python(script: &str, input: &serde_json::Value) -> serde_json::Value {
    use std::io::Write;
    let mut child = std::process::Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 must be installed for this test (.ci/run installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "python3 failed: {:?}", out.status);
    serde_json::from_slice(&out.stdout).expect("python3 printed JSON")
}

/// POSIX-shell word splitting (quotes, backslashes, `#` comments at the
/// start of a word, backslash-newline continuations), by the `shlex` crate.
/// `None` for an unterminated quote or a trailing backslash. The
/// hand-written splitter it replaces split on any Unicode whitespace (a
/// no-break space inside a path ended the word; POSIX shells and Python
/// split on space, tab and newline only).
pub fn sh_split(s: &str) -> Option<Vec<String>> {
    shlex::split(s)
}

/// This program, absolute and canonical.
pub fn current_exe() -> Result<PathBuf> {
    let exe = std::env::current_exe().map_err(|e| {
        Error::internal(format!("cannot find this program's path: {e}")).with_source(e)
    })?;
    Ok(fs::canonicalize(&exe).unwrap_or(exe))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn scratch_dirs_are_private_distinct_and_removed() {
        use std::os::unix::fs::PermissionsExt;
        let a = scratch_dir().unwrap();
        let b = scratch_dir().unwrap();
        assert_ne!(a.path(), b.path());
        let mode = fs::metadata(a.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "{mode:o}");
        assert!(a
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("hermes-operator-probe-"));
        fs::create_dir(a.path().join("sub")).unwrap();
        fs::write(a.path().join("sub/f"), "x").unwrap();
        let p = a.path().to_path_buf();
        drop(a);
        assert!(!p.exists());
        assert!(b.path().is_dir());
    }

    #[test]
    fn splits_as_a_posix_shell() {
        let w = |s: &str| sh_split(s).map(|v| v.iter().map(|x| x.to_string()).collect::<Vec<_>>());
        assert_eq!(
            w("a  'b c' \"d\\\"e\" f\\ g"),
            Some(vec!["a".into(), "b c".into(), "d\"e".into(), "f g".into()])
        );
        assert_eq!(w("''"), Some(vec![String::new()]));
        assert_eq!(w("'unterminated"), None);
        assert_eq!(w("trailing\\"), None);
        // Only space, tab and newline separate words (the old splitter
        // also split on a no-break space).
        assert_eq!(
            w("/opt/my\u{a0}dir/hermes x"),
            Some(vec!["/opt/my\u{a0}dir/hermes".into(), "x".into()])
        );
        // A backslash-newline continues the line, as in sh.
        assert_eq!(w("a\\\nb"), Some(vec!["ab".into()]));
        // `#` starts a comment only at the start of a word.
        assert_eq!(w("a#b # c"), Some(vec!["a#b".into()]));
    }

    /// Python's `shlex.quote` answers (Python 3.12), byte for byte.
    #[test]
    fn quotes_as_python() {
        assert_eq!(sh_quote("abc-1.2_x/y:z@%+=,"), "abc-1.2_x/y:z@%+=,");
        assert_eq!(sh_quote(""), "''");
        assert_eq!(sh_quote("a b"), "'a b'");
        assert_eq!(sh_quote("it's"), "'it'\"'\"'s'");
        assert_eq!(sh_quote("é"), "'é'");
    }

    /// `sh_quote`'s words read back by real Python's `shlex.split`, the
    /// reader Hermes uses. python3 is required: a missing python3 fails
    /// the test rather than skipping it.
    #[test]
    fn python_reads_quoted_words_back() {
        use rand::{Rng, SeedableRng};
        let mut words: Vec<String> = [
            "", " ", "'", "\"", "\\", "$HOME", "`id`", "a b", "it's", "#x", "a#b", "~", "*", "\r",
            "\n", "\t", "x\ny", "\u{a0}", "é ü", "'\"'\"'", "\\'", "-n", "--", "!",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut rng = rand::rngs::StdRng::seed_from_u64(21);
        let alphabet: Vec<char> = "ab '\"\\$`#~*?[]{}();&|<>!\t\n\r\u{a0}é€😀=%,"
            .chars()
            .collect();
        for _ in 0..300 {
            let n = rng.gen_range(0..12);
            words.push(
                (0..n)
                    .map(|_| alphabet[rng.gen_range(0..alphabet.len())])
                    .collect(),
            );
        }
        let quoted: Vec<String> = words.iter().map(|w| sh_quote(w)).collect();
        let mut child = Command::new("python3")
            .args([
                "-c",
                "import json, shlex, sys\n\
                 print(json.dumps([shlex.split(q) for q in json.load(sys.stdin)]))",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 is required for this test (Hermes reads hook commands with Python's shlex)");
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(serde_json::to_string(&quoted).unwrap().as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "python3 failed: {out:?}");
        let back: Vec<Vec<String>> = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(back.len(), words.len());
        for ((w, q), b) in words.iter().zip(&quoted).zip(&back) {
            assert_eq!(b, &vec![w.clone()], "python3 read {q:?} back wrong");
        }
    }

    /// Python's `shlex.quote` gives the same words, and Python's
    /// `shlex.split` (how Hermes reads hook commands) reads a line of our
    /// quoted words back as the words: checked against the real Python.
    #[test]
    fn quote_agrees_with_python() {
        let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(4));
        let words = proptest::collection::vec("[^\x00]{0,12}|[ -~]{0,8}", 150);
        runner
            .run(&words, |words| {
                let quoted: Vec<String> = words.iter().map(|w| sh_quote(w)).collect();
                let py = run_python(
                    "import json, shlex, sys\n\
                     w = json.load(sys.stdin)\n\
                     json.dump({'quoted': [shlex.quote(x) for x in w['words']],\n\
                                'split': shlex.split(' '.join(w['ours']))}, sys.stdout)",
                    &serde_json::json!({"words": words, "ours": quoted}),
                );
                prop_assert_eq!(&py["quoted"], &serde_json::json!(quoted));
                prop_assert_eq!(&py["split"], &serde_json::json!(words));
                Ok(())
            })
            .unwrap();
    }

    proptest! {
        /// Any word without NUL survives quoting and splitting, alone and
        /// between other words.
        #[test]
        fn split_reads_quote_back(s in "[^\x00]*", t in "[^\x00]*") {
            prop_assert_eq!(sh_split(&sh_quote(&s)), Some(vec![s.clone()]));
            let line = format!("{} {}\t{}", sh_quote(&s), sh_quote(&t), sh_quote(&s));
            prop_assert_eq!(sh_split(&line), Some(vec![s.clone(), t, s]));
        }
    }
}
