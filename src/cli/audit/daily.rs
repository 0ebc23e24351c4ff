use crate::cli::session::{cell, opt_cell};
use crate::cli::Ctx;
use crate::ops::audit::reports::Usage;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The day to report (YYYY-MM-DD) [default: today in --tz]
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub date: Option<String>,
    /// Time zone the day is taken in (IANA name, e.g. Asia/Shanghai)
    #[arg(long, value_name = "Area/City", default_value = "UTC")]
    pub tz: String,
    /// Read the fleet's database (store.url): every host's sessions and events
    #[arg(long)]
    pub fleet: bool,
    /// With --fleet: only this host's
    #[arg(long, value_name = "NAME", requires = "fleet")]
    pub host: Option<String>,
}

fn usage_cells(u: &Usage) -> Vec<String> {
    vec![
        u.sessions.to_string(),
        u.messages.to_string(),
        u.input_tokens.to_string(),
        u.output_tokens.to_string(),
        format!("{:.4}", u.cost_usd),
    ]
}

pub fn run(ctx: &Ctx, a: Args) -> crate::Result<()> {
    let (date, tz) = crate::ops::audit::reports::parse_day(a.date.as_deref(), &a.tz)?;
    let r = if a.fleet {
        if let Some(h) = &a.host {
            crate::store::pg::check_host(h)?;
        }
        let pg = crate::ops::audit::fleet::connect_configured(&ctx.app)?;
        crate::ops::audit::reports::daily_fleet(&ctx.app, &pg, date, &tz, a.host.as_deref())?
    } else {
        ctx.state_notice();
        crate::ops::audit::reports::daily(&ctx.app, date, &tz)?
    };
    if ctx.out.json {
        return ctx.out.json(&r);
    }
    let head = ["sessions", "messages", "tokens in", "tokens out", "cost $"];
    let mut t = ctx
        .out
        .table(&[&["user", "user id"][..], &head[..]].concat());
    for u in &r.by_user {
        let mut row = vec![cell(&u.username, 32), opt_cell(u.user_id.as_deref(), 24)];
        row.extend(usage_cells(&u.usage));
        t.add_row(row);
    }
    let mut total = vec!["TOTAL".to_string(), String::new()];
    total.extend(usage_cells(&r.totals));
    t.add_row(total);
    ctx.out.print_table(&t)?;
    let mut t = ctx.out.table(&[&["model"][..], &head[..]].concat());
    for m in &r.by_model {
        let mut row = vec![opt_cell(m.model.as_deref().or(Some("(unknown)")), 40)];
        row.extend(usage_cells(&m.usage));
        t.add_row(row);
    }
    ctx.out.print_table(&t)?;
    ctx.out.info(format!(
        "{} ({}): {} .. {} UTC; operator sessions only",
        r.date,
        r.tz,
        r.from.trim_end_matches('Z').replace('T', " "),
        r.to.trim_end_matches('Z').replace('T', " ")
    ));
    Ok(())
}
