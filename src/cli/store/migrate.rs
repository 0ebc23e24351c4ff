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
    let accounts = crate::ops::fleet::migrate_accounts(&ctx.app, &pg)?;
    if ctx.out.json {
        let mut v = serde_json::to_value(&m)?;
        v["accounts"] = serde_json::to_value(&accounts)?;
        return ctx.out.json(&v);
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
    use crate::ops::fleet::AccountsMove;
    ctx.out.line(match &accounts {
        AccountsMove::Moved(i) => format!(
            "moved {} account(s) with their tokens, keys, second factors and budgets ({})",
            i.accounts(),
            i.tables
                .iter()
                .map(|(t, n)| format!("{t} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        AccountsMove::FleetHasAccounts { accounts } => format!(
            "the fleet already has {accounts} account(s): this host's users.db was left as it is, and this host uses the fleet's accounts"
        ),
        AccountsMove::NoLocalAccounts => "this host has no users.db: no accounts to move".into(),
    })?;
    ctx.out.info(
        "events.db and users.db stay as they were; with store.url set, serve and the CLI use the fleet's accounts (README \"Fleet\")",
    );
    Ok(())
}
