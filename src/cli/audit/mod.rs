//! `hermes-operator audit ...`: the tamper-evident event log (docs/design.md §7).

mod checkpoint;
mod daily;
mod export;
mod prune;
mod replay;
mod tail;
mod usage;
mod user;
mod verify;

use crate::cli::Ctx;

#[derive(Debug, clap::Subcommand)]
pub enum AuditCmd {
    /// Check the whole hash chain (and signed checkpoints); names the first bad event
    Verify(verify::Args),
    /// Sign the current head of the log; prints one line to keep off-host
    Checkpoint,
    /// A session's events in order, as a timeline with integrity status
    Replay(replay::Args),
    /// Daily usage: sessions, messages, tokens, cost — by user and by model
    Daily(daily::Args),
    /// One user's account, sessions, usage and recent events
    User(user::Args),
    /// Spend and tokens per local day (or hour) in a time zone, by user, key or model
    Usage(usage::Args),
    /// Export events in a time range as NDJSON or CSV
    Export(export::Args),
    /// The newest events; --follow keeps printing new ones
    Tail(tail::Args),
    /// Delete old events, leaving a signed anchor so the chain still verifies
    Prune(prune::Args),
}

pub fn run(ctx: &Ctx, cmd: AuditCmd) -> crate::Result<()> {
    match cmd {
        AuditCmd::Verify(a) => verify::run(ctx, a),
        AuditCmd::Checkpoint => checkpoint::run(ctx),
        AuditCmd::Replay(a) => replay::run(ctx, a),
        AuditCmd::Daily(a) => daily::run(ctx, a),
        AuditCmd::User(a) => user::run(ctx, a),
        AuditCmd::Usage(a) => usage::run(ctx, a),
        AuditCmd::Export(a) => export::run(ctx, a),
        AuditCmd::Tail(a) => tail::run(ctx, a),
        AuditCmd::Prune(a) => prune::run(ctx, a),
    }
}

/// One-line summary of an event's data for timelines and tails, whole:
/// a terminal's table cuts it to the column (`output::fit_to_terminal`),
/// and piped it stays whole for grep (issue 22: it was cut at 100
/// characters everywhere).
pub(crate) fn summarize(ev: &crate::store::events::Event) -> String {
    let v = ev.data_value();
    let pick = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
    use crate::store::events::EventKind as K;
    let s = match ev.event_kind() {
        Some(K::UserMessage | K::AssistantMessage) => {
            pick("content").or_else(|| pick("content_sha256").map(|h| format!("sha256:{h}")))
        }
        Some(K::ToolCall) => pick("tool").map(|t| {
            format!(
                "{t} {}",
                v.get("arguments")
                    .map(|a| a.to_string())
                    .unwrap_or_default()
            )
        }),
        Some(K::ToolResult) => {
            pick("tool").map(|t| format!("{t} → {}", pick("status").unwrap_or_default()))
        }
        Some(K::ApprovalRequest) => pick("command"),
        Some(K::Approval) => {
            pick("choice").map(|c| format!("{c} by {}", pick("decided_by").unwrap_or_default()))
        }
        Some(K::Error) => pick("message"),
        _ => None,
    };
    let s = s.unwrap_or_else(|| ev.data.clone());
    crate::output::sanitize(&s).replace('\n', " ")
}
