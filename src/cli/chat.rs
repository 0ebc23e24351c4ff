//! `hermes-operator chat --as USER [--session ID] [MESSAGE]`: one turn
//! through the real Hermes agent (streamed), or an interactive loop.

use crate::cli::values::ApprovePolicyArg;
use crate::cli::Ctx;
use crate::error::{Error, Result};
use crate::hermes::api::HermesClient;
use crate::ops::chat::{
    self, ApprovalChoice, ApprovalRequest, Approver, BoxFuture, Channel, Decision, PolicyApprover,
    TurnEvent, TurnRequest,
};
use std::io::{IsTerminal, Read, Write};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The operator user this turn runs as (role admin or user)
    #[arg(long = "as", value_name = "USERNAME", add = crate::cli::completions::usernames())]
    pub as_user: String,
    /// Continue this operator session (default: start a new one)
    #[arg(long, value_name = "ID", add = crate::cli::completions::session_ids())]
    pub session: Option<String>,
    /// A model alias Hermes offers (see its /v1/models)
    #[arg(long)]
    pub model: Option<String>,
    /// How approval requests are answered; `prompt` asks on the terminal and
    /// denies when there is none
    #[arg(long, value_enum, default_value = "prompt")]
    pub approve_policy: ApprovePolicyArg,
    /// The message; `-` reads it from stdin. Without it: an interactive loop
    pub message: Option<String>,
}

pub fn run(ctx: &Ctx, a: Args) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::internal(format!("starting the async runtime: {e}")).with_source(e))?;
    // The turn does synchronous SQLite work: it runs on this thread,
    // which does nothing else meanwhile (chat::OwnThread).
    chat::OwnThread::block_on_runtime(&rt, |own| run_async(ctx, a, own))
}

async fn run_async(ctx: &Ctx, a: Args, own: chat::OwnThread) -> Result<()> {
    let app = &ctx.app;
    // Check the user before anything else, so a viewer learns it at once.
    chat::chat_user(app, &a.as_user)?;
    let client = HermesClient::from_config(&app.home, &app.cfg.config)?;
    let approver = approver_of(&a, app);
    let approver = approver.as_ref();
    let message = match a.message.as_deref() {
        Some("-") => {
            let mut s = String::new();
            std::io::stdin().read_to_string(&mut s).map_err(|e| {
                Error::usage(format!("reading the message from stdin: {e}")).with_source(e)
            })?;
            Some(s)
        }
        Some(m) => Some(m.to_string()),
        None => None,
    };
    if let Some(m) = message {
        let req = request(&a, a.session.clone(), m);
        return one_turn(ctx, &client, &req, approver, own)
            .await
            .map(|_| ());
    }
    if !std::io::stdin().is_terminal() {
        return Err(Error::usage("no MESSAGE given and stdin is not a terminal")
            .hint("pass the message as an argument, or `-` to read it from stdin"));
    }
    interactive(ctx, &a, &client, approver, own).await
}

/// A CLI turn of `a.as_user`.
fn request(a: &Args, session_id: Option<String>, message: String) -> TurnRequest {
    TurnRequest {
        username: a.as_user.clone(),
        session_id,
        message,
        model: a.model.clone(),
        channel: Channel::Cli,
        toolsets: None,
        stream: true,
        key_id: None,
        token_version: None,
    }
}

/// The interactive loop: one session for the whole loop.
async fn interactive(
    ctx: &Ctx,
    a: &Args,
    client: &HermesClient,
    approver: &dyn Approver,
    own: chat::OwnThread,
) -> Result<()> {
    let mut session = a.session.clone();
    ctx.out.info(
        "type a message and press Enter; /help lists the commands; /quit, an empty line or Ctrl-D ends the chat",
    );
    let mut editor = line_editor()?;
    let prompt = format!("{}> ", crate::output::sanitize(&a.as_user));
    loop {
        let line = match editor.readline(&prompt) {
            Ok(l) => l,
            // Ctrl-C drops the line being typed, as in a shell.
            Err(rustyline::error::ReadlineError::Interrupted) => continue,
            Err(rustyline::error::ReadlineError::Eof) => break,
            Err(e) => {
                return Err(Error::internal(format!("reading the terminal: {e}")).with_source(e))
            }
        };
        let line = line.trim_end_matches(['\n', '\r']);
        if line.trim().is_empty() {
            break;
        }
        // In memory only: chat lines may hold secrets, so no history file.
        let _ = editor.add_history_entry(line);
        let message = match read_line(line) {
            Line::Quit => break,
            Line::Help => {
                ctx.out.info(CHAT_HELP);
                continue;
            }
            Line::Message(m) => m,
        };
        let req = request(a, session.clone(), message.to_string());
        match one_turn(ctx, client, &req, approver, own).await {
            Ok(o) => session = Some(o.session_id),
            Err(e) => ctx.out.error(&e),
        }
    }
    if let Some(s) = session {
        ctx.out
            .info(format!("session {s}; continue it with --session {s}"));
    }
    Ok(())
}

/// Line editing and history (arrows, Ctrl-R) for the interactive loop.
/// `PreferTerm`: the prompt and the echo go to the terminal itself, never
/// to a redirected stdout, which stays the model's answers only.
fn line_editor() -> Result<rustyline::DefaultEditor> {
    let config = rustyline::Config::builder()
        .behavior(rustyline::config::Behavior::PreferTerm)
        .max_history_size(1000)
        .map_err(|e| Error::internal(format!("line editor: {e}")))?
        .build();
    rustyline::DefaultEditor::with_config(config)
        .map_err(|e| Error::internal(format!("starting the line editor: {e}")).with_source(e))
}

/// What `/help` prints in the interactive chat.
const CHAT_HELP: &str =
    "commands (a line that is exactly one of these; anything else is a message):
  /help          this list
  /quit, /exit   end the chat (so do an empty line and Ctrl-D)
  //text         send \"/text\" as a message (a leading / doubled)";

/// One line typed in the interactive chat.
#[derive(Debug, PartialEq, Eq)]
enum Line<'a> {
    Help,
    Quit,
    Message(&'a str),
}

/// Commands are whole lines: `/var is full, why?` stays a message (a
/// person asks about paths), and `//help` sends `/help` to the agent. Before
/// issue 22 `/quit` went to Hermes as a message and the chat went on.
fn read_line(line: &str) -> Line<'_> {
    match line.trim() {
        "/help" | "/?" => Line::Help,
        "/quit" | "/exit" => Line::Quit,
        _ if line.starts_with("//") => Line::Message(&line[1..]),
        _ => Line::Message(line),
    }
}

async fn one_turn(
    ctx: &Ctx,
    client: &HermesClient,
    req: &TurnRequest,
    approver: &dyn Approver,
    own: chat::OwnThread,
) -> Result<chat::TurnOutcome> {
    let json = ctx.out.json;
    let out = ctx.out;
    let mut printed_text = false;
    let before = chat::events_head(&ctx.app);
    let mut turn_session = None;
    let mut on_event = |ev: TurnEvent| {
        if let TurnEvent::Session { session_id, .. } = &ev {
            turn_session = Some(session_id.clone());
        }
        if json {
            let _ = out.json_line(&ev);
            return;
        }
        match &ev {
            TurnEvent::Session { session_id, new } => {
                if *new {
                    out.info(format!("new session {session_id}"));
                }
            }
            TurnEvent::Delta { text } => {
                let mut o = std::io::stdout().lock();
                let _ = write!(o, "{}", crate::output::sanitize(text));
                let _ = o.flush();
                printed_text = true;
            }
            TurnEvent::ToolStarted { tool, preview } => out.info(format!(
                "\n⚙ {tool}: {}",
                crate::output::sanitize(&crate::output::clip(preview.as_deref().unwrap_or(""), 120))
            )),
            TurnEvent::ToolCompleted { tool, duration, error } => out.info(format!(
                "{} {tool} ({:.1}s)",
                if *error { "✗" } else { "✓" },
                duration.unwrap_or(0.0)
            )),
            TurnEvent::ApprovalRequest(r) => out.info(format!(
                "approval requested: {}",
                crate::output::sanitize(r.command.as_deref().unwrap_or("?"))
            )),
            TurnEvent::ApprovalDecision { choice, applied, .. } => out.info(if *applied {
                format!("approval answered: {choice}")
            } else {
                "approval expired: Hermes denied the command".to_string()
            }),
            TurnEvent::CostAlert {
                session_cost_usd,
                threshold_usd,
            } => out.warn(format!(
                "this session has cost ${session_cost_usd:.4}, past the ${threshold_usd:.2} alert threshold"
            )),
            TurnEvent::Done(o) => {
                if printed_text {
                    let _ = out.line("");
                } else {
                    let _ = out.line(crate::output::sanitize(&o.output));
                }
                out.info(format!(
                    "session {} · {} in / {} out tokens · ${:.4} this turn",
                    o.session_id, o.input_tokens, o.output_tokens, o.cost_usd
                ));
            }
            TurnEvent::Error { .. } | TurnEvent::RunStarted { .. } => {}
        }
    };
    let outcome = chat::run_turn(own, &ctx.app, client, req, approver, &mut on_event).await;
    if !json {
        if let Some(sid) = &turn_session {
            say_blocked(ctx, sid, before);
        }
    }
    outcome
}

/// The calls the hook refused in this turn, on stderr with the turn's other
/// tool lines: Hermes' stream does not say so, and a person who only sees
/// the model's answer would not know a tool was stopped (issue 22).
fn say_blocked(ctx: &Ctx, session_id: &str, before: i64) {
    match chat::blocked_calls(&ctx.app, session_id, before) {
        Ok(calls) => {
            for (tool, why) in calls {
                ctx.out.warn(format!(
                    "⛔ {} blocked by hermes-operator: {}",
                    crate::output::sanitize(&tool),
                    crate::output::sanitize(&why)
                ));
            }
        }
        // The turn itself went well; say only that this could not be checked.
        Err(e) => ctx.out.warn(format!(
            "could not read the event log for blocked tool calls: {}",
            e.message
        )),
    }
}

/// `--approve`: a fixed policy, or the person at this terminal.
fn approver_of(a: &Args, app: &crate::app::App) -> Box<dyn Approver> {
    let decided_by = format!("{} ({})", a.as_user, app.actor.name());
    match a.approve_policy.policy() {
        Some(policy) => Box::new(PolicyApprover { policy, decided_by }),
        None => Box::new(TerminalApprover { decided_by }),
    }
}

/// `--approve prompt`: the owner at this terminal is asked; without a
/// terminal (stdin or stderr redirected) every request is denied. Here and
/// not in the domain layer, which knows nothing of terminals.
struct TerminalApprover {
    decided_by: String,
}

impl Approver for TerminalApprover {
    fn decide(&self, req: ApprovalRequest) -> BoxFuture<Decision> {
        let decided_by = self.decided_by.clone();
        Box::pin(async move {
            let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
            if !interactive {
                return Decision {
                    choice: ApprovalChoice::Deny,
                    decided_by,
                    stop_run: false,
                };
            }
            let prompt = format!(
                "Hermes wants to run a command that needs approval:\n  {}\n  ({})\nAllow? (Ctrl-C: deny and stop)",
                crate::output::sanitize(req.command.as_deref().unwrap_or("?")),
                crate::output::sanitize(req.description.as_deref().unwrap_or("dangerous command"))
            );
            let answer = tokio::task::spawn_blocking(move || ask(prompt))
                .await
                .unwrap_or(Answer::Interrupted);
            let (choice, stop_run) = match answer {
                Answer::Chose(c) => (c, false),
                Answer::Interrupted => (ApprovalChoice::Deny, true),
            };
            Decision {
                choice,
                decided_by,
                stop_run,
            }
        })
    }
}

enum Answer {
    Chose(ApprovalChoice),
    /// Ctrl-C, or the terminal went away: deny, and stop the turn.
    Interrupted,
}

/// The approval prompt. Ctrl-C in it must not kill the process, which
/// would leave Hermes' run going and the turn unrecorded: the terminal
/// library raises SIGINT on Ctrl-C, so SIGINT is ignored while the prompt
/// is up (and put back as it was after), and the answer is "deny and stop".
fn ask(prompt: String) -> Answer {
    // SAFETY: `signal` swaps the process's SIGINT disposition; the previous
    // one is restored below on every path. No Rust code relies on SIGINT.
    let previous = unsafe { libc::signal(libc::SIGINT, libc::SIG_IGN) };
    let items = ["deny", "allow once", "allow for this session"];
    let picked = dialoguer::Select::new()
        .with_prompt(prompt)
        .items(&items)
        .default(0)
        .interact_opt();
    // SAFETY: as above, putting back what was there.
    unsafe { libc::signal(libc::SIGINT, previous) };
    match picked {
        Ok(Some(i)) => Answer::Chose(
            [
                ApprovalChoice::Deny,
                ApprovalChoice::Once,
                ApprovalChoice::Session,
            ][i],
        ),
        // Escape or q: a plain "deny".
        Ok(None) => Answer::Chose(ApprovalChoice::Deny),
        Err(_) => Answer::Interrupted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_commands_are_whole_lines() {
        assert_eq!(read_line("/help"), Line::Help);
        assert_eq!(read_line(" /? "), Line::Help);
        assert_eq!(read_line("/quit"), Line::Quit);
        assert_eq!(read_line("/exit"), Line::Quit);
        assert_eq!(
            read_line("/var is full, why?"),
            Line::Message("/var is full, why?")
        );
        assert_eq!(read_line("/quit now"), Line::Message("/quit now"));
        assert_eq!(read_line("//help"), Line::Message("/help"));
        assert_eq!(read_line("hello"), Line::Message("hello"));
    }
}
