use super::{cell, opt_cell};
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
    let r = crate::ops::sessions::cost(&ctx.app, &super::scope(a.all_sources), &a.id)?;
    if ctx.out.json {
        return ctx.out.json(&r);
    }
    let mut t = ctx.out.table(&[
        "model",
        "provider",
        "api calls",
        "tokens in",
        "tokens out",
        "cache r/w",
        "reasoning",
        "est. $",
        "actual $",
    ]);
    for m in &r.by_model {
        t.add_row(vec![
            opt_cell(m.model.as_deref(), 40),
            opt_cell(m.billing_provider.as_deref(), 20),
            m.api_call_count.to_string(),
            m.input_tokens.to_string(),
            m.output_tokens.to_string(),
            format!("{}/{}", m.cache_read_tokens, m.cache_write_tokens),
            m.reasoning_tokens.to_string(),
            format!("{:.4}", m.estimated_cost_usd),
            format!("{:.4}", m.actual_cost_usd),
        ]);
    }
    let s = &r.totals;
    t.add_row(vec![
        "TOTAL (session)".to_string(),
        opt_cell(s.billing_provider.as_deref(), 20),
        s.api_call_count.to_string(),
        s.input_tokens.to_string(),
        s.output_tokens.to_string(),
        format!("{}/{}", s.cache_read_tokens, s.cache_write_tokens),
        s.reasoning_tokens.to_string(),
        s.estimated_cost_usd
            .map(|c| format!("{c:.4}"))
            .unwrap_or_else(|| "—".into()),
        s.actual_cost_usd
            .map(|c| format!("{c:.4}"))
            .unwrap_or_else(|| "—".into()),
    ]);
    ctx.out.print_table(&t)?;
    ctx.out.info(format!(
        "session {}: ${:.4} ({})",
        cell(&r.session_id, 60),
        s.cost_usd,
        opt_cell(s.cost_status.as_deref(), 30)
    ));
    Ok(())
}
