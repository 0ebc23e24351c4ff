//! Issue 22: in the interactive `chat`, `/help`, `/quit` and `/exit` are
//! commands, not messages. Driven on a real terminal (`script(1)`'s pty):
//! the loop only runs when stdin is one. Hermes is a closed port, so a line
//! sent as a message would print an error and prompt again, and the chat
//! would never end while stdin stays open.

use crate::common::pty::Pty;
use crate::common::{self, add_user, TestHome};
use std::time::Duration;

fn chat_typing(home: &TestHome, lines: &[&str]) -> (std::process::ExitStatus, String) {
    let mut pty = Pty::operator(home.path(), "chat --as alice");
    // Each line is typed once the chat's prompt is on screen again.
    for (i, l) in lines.iter().enumerate() {
        pty.wait_for("alice> ", i + 1, Duration::from_secs(30));
        pty.send(&format!("{l}\n"));
    }
    // stdin stays open: only the chat itself may end the chat.
    pty.finish(Duration::from_secs(20))
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
