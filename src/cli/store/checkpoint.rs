use crate::cli::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The fleet's database: postgres://USER@HOST:PORT/DB (the password in OPERATOR_STORE_PASSWORD) [default: store.url]
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
}

pub fn run(ctx: &Ctx, a: Args) -> crate::Result<()> {
    let fleet_url = crate::ops::audit::fleet::store_url(&ctx.app, a.url.clone())?;
    let pg = crate::ops::audit::fleet::connect(&ctx.app, &fleet_url)?;
    let cp = crate::ops::audit::fleet::checkpoint(&ctx.app, &pg)?;
    // One line, the same with or without --json: it is what is kept.
    ctx.out
        .line(serde_json::to_string(&cp).expect("a checkpoint serializes"))
}
