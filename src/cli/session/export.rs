use crate::cli::values::ExportFormatArg;
use crate::cli::Ctx;
use crate::ops::sessions::ExportFormat;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Session id
    #[arg(add = crate::cli::completions::session_ids())]
    pub id: String,
    /// json: {session, messages}; md: a readable Markdown transcript [default: json]
    #[arg(long, value_enum)]
    pub format: Option<ExportFormatArg>,
    /// Allow Hermes' own (non-operator) sessions
    #[arg(long)]
    pub all_sources: bool,
}

pub fn run(ctx: &Ctx, a: Args) -> crate::Result<()> {
    ctx.state_notice();
    let format = a.format.map_or(ExportFormat::Json, ExportFormat::from);
    let doc = crate::ops::sessions::export(&ctx.app, &super::scope(a.all_sources), &a.id, format)?;
    ctx.out.line(doc.trim_end_matches('\n'))
}
