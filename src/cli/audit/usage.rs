use crate::cli::session::cell;
use crate::cli::Ctx;
use crate::ops::audit::usage::{self, Amounts};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// First local day (YYYY-MM-DD) [default: 7 days before --until]
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub since: Option<String>,
    /// First local day NOT included (YYYY-MM-DD) [default: tomorrow in --tz]
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub until: Option<String>,
    /// Time zone of the days (IANA name, e.g. Europe/Berlin, or an offset like +05:30)
    #[arg(
        long,
        value_name = "Area/City",
        default_value = "UTC",
        allow_hyphen_values = true
    )]
    pub tz: String,
    /// Group by user, personal API key or model
    #[arg(long, value_name = "WHAT", default_value = "user", value_parser = ["user", "key", "model"])]
    pub by: String,
    /// Only this user's usage
    #[arg(long, value_name = "NAME", add = crate::cli::completions::usernames())]
    pub user: Option<String>,
}

fn amount_cells(a: &Amounts) -> Vec<String> {
    vec![
        a.llm_calls.to_string(),
        a.input_tokens.to_string(),
        a.output_tokens.to_string(),
        format!("{:.4}", a.cost_usd),
    ]
}

pub fn run(ctx: &Ctx, a: Args) -> crate::Result<()> {
    let user_id = match &a.user {
        Some(name) => Some(ctx.app.users_ro()?.get(name)?.id),
        None => None,
    };
    let q = usage::parse_query(
        a.since.as_deref(),
        a.until.as_deref(),
        &a.tz,
        &a.by,
        user_id,
    )?;
    let r = usage::usage(&ctx.app, &q)?;
    if ctx.out.json {
        return ctx.out.json(&r);
    }
    let head = ["llm calls", "tokens in", "tokens out", "cost $"];
    // Only the buckets with usage: a year of days per group would bury them.
    let mut t = ctx
        .out
        .table(&[&[r.bucket, a.by.as_str()][..], &head[..]].concat());
    for b in 0..r.buckets.len() {
        for g in r
            .groups
            .iter()
            .filter(|g| g.series[b].amounts.llm_calls > 0)
        {
            let mut row = vec![r.buckets[b].start.clone(), cell(&g.label, 40)];
            row.extend(amount_cells(&g.series[b].amounts));
            t.add_row(row);
        }
    }
    ctx.out.print_table(&t)?;
    let mut t = ctx.out.table(&[&[a.by.as_str()][..], &head[..]].concat());
    for g in &r.groups {
        let mut row = vec![cell(&g.label, 40)];
        row.extend(amount_cells(&g.totals));
        t.add_row(row);
    }
    let mut total = vec!["TOTAL".to_string()];
    total.extend(amount_cells(&r.totals));
    t.add_row(total);
    ctx.out.print_table(&t)?;
    ctx.out.info(format!(
        "{} to before {} in {} ({} .. {}); llm_call events of operator sessions",
        r.since, r.until, r.tz, r.from, r.to
    ));
    Ok(())
}
