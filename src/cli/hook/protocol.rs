//! `hermes-operator hook` with no subcommand: Hermes' shell-hook protocol on
//! stdio. One event (JSON) on stdin, at most one JSON line (the decision)
//! on stdout, messages for Hermes' log on stderr. Never fails: Hermes would
//! only log an exit code (the answer itself is `ops::hooks::answer_event`).

use crate::error::Result;
use crate::home::Home;
use std::io::{IsTerminal, Read, Write};

pub fn run(home: Result<Home>) {
    if std::io::stdin().is_terminal() {
        eprintln!(
            "hermes-operator hook reads one Hermes shell-hook event (JSON) on stdin; Hermes runs it.\n\
             Install it with `hermes-operator hook install`, check it with `hermes-operator hook status`."
        );
        return;
    }
    let mut input = Vec::new();
    if let Err(e) = std::io::stdin().lock().read_to_end(&mut input) {
        eprintln!("hermes-operator hook: reading stdin: {e}");
        return;
    }
    let reply = crate::ops::hooks::answer_event(home, &input);
    for m in &reply.stderr {
        eprintln!("{m}");
    }
    if let Some(s) = &reply.stdout {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{s}").and_then(|_| out.flush());
    }
}
