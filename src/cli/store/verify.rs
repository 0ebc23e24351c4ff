use crate::cli::Ctx;
use crate::ops::audit::fleet;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The fleet's database: postgres://USER@HOST:PORT/DB (the password in OPERATOR_STORE_PASSWORD) [default: store.url]
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// Only this host's chain
    #[arg(long, value_name = "NAME")]
    pub host: Option<String>,
    /// A file of fleet checkpoint lines kept off the database (from `store checkpoint`):
    /// finds a rewrite or truncation that also moved the recorded heads, and deleted hosts
    #[arg(long, value_name = "FILE")]
    pub checkpoints: Vec<std::path::PathBuf>,
}

pub fn run(ctx: &Ctx, a: Args) -> crate::Result<()> {
    let fleet_url = crate::ops::audit::fleet::store_url(&ctx.app, a.url.clone())?;
    if let Some(h) = &a.host {
        crate::store::pg::check_host(h)?;
    }
    let pg = crate::ops::audit::fleet::connect(&ctx.app, &fleet_url)?;
    let keys = fleet::trusted_keys(&ctx.app)?;
    let mut checkpoints = Vec::new();
    for f in &a.checkpoints {
        checkpoints.extend(fleet::read_fleet_checkpoints(f)?);
    }
    let reports = fleet::verify_fleet(&pg, a.host.as_deref(), &keys, &checkpoints)?;
    if let Some(h) = &a.host {
        if reports.is_empty() {
            return Err(crate::Error::not_found(format!(
                "no host {h} in {}",
                pg.target
            )));
        }
    }
    if ctx.out.json {
        ctx.out.json(&reports)?;
    } else {
        let mut t = ctx.out.table(&["host", "events", "seq", "head", "status"]);
        for r in &reports {
            t.add_row(vec![
                r.host.clone(),
                r.report.events.to_string(),
                format!("{}..{}", r.report.first_seq.unwrap_or(0), r.report.last_seq),
                r.report.head_hash[..16].to_string(),
                match &r.report.problem {
                    None => "OK".into(),
                    Some(p) => format!("FAILED: {}", p.message),
                },
            ]);
        }
        ctx.out.print_table(&t)?;
    }
    match reports.iter().find(|r| r.report.problem.is_some()) {
        None => Ok(()),
        Some(r) => Err(crate::Error::integrity(format!(
            "host {}'s audit chain FAILED: {}",
            r.host,
            r.report
                .problem
                .as_ref()
                .map(|p| p.message.as_str())
                .unwrap_or("")
        ))
        .hint("compare with that host's events.db and the checkpoints kept off the database")),
    }
}
