use super::{cell, opt_cell, when};
use crate::cli::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Session id
    #[arg(add = crate::cli::completions::session_ids())]
    pub id: String,
    /// Allow Hermes' own (non-operator) sessions
    #[arg(long)]
    pub all_sources: bool,
}

pub fn run(ctx: &Ctx, a: Args) -> crate::Result<()> {
    ctx.state_notice();
    let t = crate::ops::sessions::show(&ctx.app, &super::scope(a.all_sources), &a.id)?;
    if ctx.out.json {
        return ctx.out.json(&t);
    }
    super::print_session(ctx, &t.session)?;
    if let Some(p) = &t.system_prompt {
        ctx.out.info(format!("system prompt: {}", cell(p, 300)));
    }
    let mut tab = ctx
        .out
        .table(&["#", "time (UTC)", "role", "content", "tool"]);
    for m in &t.messages {
        let mut role = opt_cell(m.role.as_deref(), 12);
        if !m.active {
            role.push_str(" (rewound)");
        }
        let tool = match (&m.tool_name, &m.tool_calls) {
            (Some(n), _) => cell(n, 30),
            (None, serde_json::Value::Array(calls)) => cell(
                &calls
                    .iter()
                    .filter_map(|c| c.pointer("/function/name").and_then(|n| n.as_str()))
                    .collect::<Vec<_>>()
                    .join(", "),
                40,
            ),
            (None, serde_json::Value::Null) => String::new(),
            (None, other) => cell(&other.to_string(), 40),
        };
        tab.add_row(vec![
            m.id.to_string(),
            when(m.timestamp.as_deref()),
            role,
            opt_cell(m.content.as_deref(), 300),
            tool,
        ]);
    }
    ctx.out.print_table(&tab)?;
    ctx.out.info(format!("{} message(s)", t.messages.len()));
    Ok(())
}
