use crate::cli::Ctx;
use crate::ops::audit::fleet;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The fleet's database: postgres://USER@HOST:PORT/DB (the password in OPERATOR_STORE_PASSWORD) [default: store.url]
    #[arg(long, value_name = "URL")]
    pub to: Option<String>,
    /// This host's name in the fleet [default: the system's host name]
    #[arg(long, value_name = "NAME")]
    pub host: Option<String>,
}

pub fn run(ctx: &Ctx, a: Args) -> crate::Result<()> {
    let fleet_url = crate::ops::audit::fleet::store_url(&ctx.app, a.to.clone())?;
    let host = crate::ops::audit::fleet::host_name(&ctx.app, a.host)?;
    let pg = crate::ops::audit::fleet::connect(&ctx.app, &fleet_url)?;
    let m = fleet::migrate_events(&ctx.app, &pg, &host)?;
    if ctx.out.json {
        return ctx.out.json(&m);
    }
    ctx.out.line(format!(
        "moved {} event(s) of host {} into {} (it had seq {}); both end at seq {}, head {}",
        m.moved,
        m.host,
        m.database,
        m.seq_before,
        m.head_seq,
        &m.head_hash[..16.min(m.head_hash.len())]
    ))?;
    ctx.out.info(
        "events.db stays as it was; accounts, keys and budgets stay in users.db (README \"Fleet\")",
    );
    Ok(())
}
