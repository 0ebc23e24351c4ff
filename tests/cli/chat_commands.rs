//! Issue 22: in the interactive `chat`, `/help`, `/quit` and `/exit` are
//! commands, not messages. Driven on a real terminal (`script(1)`'s pty):
//! the loop only runs when stdin is one. Hermes is a closed port, so a line
//! sent as a message would print an error and prompt again, and the chat
//! would never end while stdin stays open.

use crate::common::{self, add_user, TestHome};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn chat_typing(home: &TestHome, lines: &[&str]) -> (std::process::ExitStatus, String) {
    let mut child = Command::new("script")
        .args([
            "-qec",
            "stty cols 120 rows 50 && exec \"$OP_BIN\" --hermes-home \"$OP_HOME\" chat --as alice",
            "/dev/null",
        ])
        .env("OP_BIN", env!("CARGO_BIN_EXE_hermes-operator"))
        .env("OP_HOME", home.path())
        .env("NO_COLOR", "1")
        .env_remove("HERMES_HOME")
        .env_remove("API_SERVER_KEY")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // What the pty showed so far, read as it comes: each line is typed once
    // the chat's prompt ("alice> ") is on screen again, not after a pause.
    let shown = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let mut stdout = child.stdout.take().unwrap();
    let reader = {
        let shown = shown.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = std::io::Read::read(&mut stdout, &mut buf) {
                if n == 0 {
                    break;
                }
                shown
                    .lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        })
    };
    let prompts = || shown.lock().unwrap().matches("alice> ").count();
    let deadline = Instant::now() + Duration::from_secs(30);
    for (i, l) in lines.iter().enumerate() {
        while prompts() <= i {
            assert!(
                Instant::now() < deadline,
                "no prompt before {l:?}: {}",
                shown.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        stdin.write_all(format!("{l}\n").as_bytes()).unwrap();
    }
    // stdin stays open: only the chat itself may end the chat.
    let t = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if t.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the chat did not end after {lines:?}: {}",
                shown.lock().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    drop(stdin);
    reader.join().unwrap();
    let out = shown.lock().unwrap().replace("\r\n", "\n");
    (status, out)
}

fn home() -> TestHome {
    let home = TestHome::new();
    // Hermes' key and config, its API server a closed port.
    common::serve::configure(home.path(), "");
    add_user(home.path(), "alice", "user");
    home
}

fn messages_sent(home: &TestHome) -> usize {
    common::serve::events(home.path())
        .into_iter()
        .filter(|e| e.0 == "user_message")
        .count()
}

#[test]
fn slash_help_lists_the_commands_and_slash_quit_ends_the_chat() {
    let home = home();
    let (status, out) = chat_typing(&home, &["/help", "/quit"]);
    assert!(status.success(), "{status:?}: {out}");
    assert!(out.contains("/quit, /exit   end the chat"), "{out}");
    assert!(!out.contains("error:"), "nothing went to Hermes: {out}");
    assert_eq!(messages_sent(&home), 0, "{out}");
}

#[test]
fn slash_exit_ends_the_chat_after_a_message() {
    let home = home();
    // A message goes to Hermes (down here: an error), then /exit ends it.
    let (status, out) = chat_typing(&home, &["/var is full, why?", "/exit"]);
    assert!(status.success(), "{status:?}: {out}");
    assert!(out.contains("error:"), "the message was sent: {out}");
    assert_eq!(out.matches("alice> ").count(), 2, "{out}");
}

/// Line editing (rustyline): the up arrow recalls the previous line, here
/// `/help`, so the list is printed twice.
#[test]
fn the_up_arrow_recalls_the_previous_line() {
    let home = home();
    let (status, out) = chat_typing(&home, &["/help", "\x1b[A", "/quit"]);
    assert!(status.success(), "{status:?}: {out}");
    assert_eq!(
        out.matches("/quit, /exit   end the chat").count(),
        2,
        "{out}"
    );
    assert!(!out.contains("error:"), "{out}");
}
