use crate::cli::Ctx;
use crate::error::Error;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    Ndjson,
    Csv,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Start (inclusive): YYYY-MM-DD or an RFC 3339 time
    #[arg(long)]
    pub since: Option<String>,
    /// End (exclusive): YYYY-MM-DD or an RFC 3339 time
    #[arg(long)]
    pub until: Option<String>,
    #[arg(long, value_enum, default_value = "ndjson")]
    pub format: Format,
}

/// Normalize a bound to the log's UTC RFC 3339 form (so string order is time order).
pub(crate) fn parse_bound(flag: &str, s: &str) -> crate::Result<String> {
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(format!("{}T00:00:00.000000Z", d.format("%Y-%m-%d")));
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| {
            t.with_timezone(&chrono::Utc)
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
        })
        .map_err(|_| {
            Error::usage(format!(
                "{flag}: expected YYYY-MM-DD or an RFC 3339 time like 2026-05-20T03:00:00Z, got {:?}",
                crate::output::clip(s, 60)
            ))
        })
}

pub fn run(ctx: &Ctx, a: Args) -> crate::Result<()> {
    let since = a
        .since
        .as_deref()
        .map(|s| parse_bound("--since", s))
        .transpose()?;
    let until = a
        .until
        .as_deref()
        .map(|s| parse_bound("--until", s))
        .transpose()?;
    if let (Some(s), Some(u)) = (&since, &until) {
        if s >= u {
            return Err(Error::usage("--since must be before --until"));
        }
    }
    let store = ctx.app.events_ro()?;
    let mut n = 0u64;
    match a.format {
        Format::Ndjson => store.in_range(since.as_deref(), until.as_deref(), |ev| {
            n += 1;
            ctx.out.json_line(&ev)
        })?,
        Format::Csv => {
            let mut w = csv::Writer::from_writer(std::io::stdout().lock());
            let csv_err = |e: csv::Error| Error::internal(format!("writing CSV: {e}"));
            w.write_record([
                "seq",
                "id",
                "ts",
                "type",
                "session_id",
                "user_id",
                "actor",
                "data",
                "prev_hash",
                "hash",
            ])
            .map_err(csv_err)?;
            store.in_range(since.as_deref(), until.as_deref(), |ev| {
                n += 1;
                w.write_record([
                    ev.seq.to_string(),
                    ev.id,
                    ev.ts,
                    ev.kind,
                    ev.session_id.unwrap_or_default(),
                    ev.user_id.unwrap_or_default(),
                    ev.actor,
                    ev.data,
                    hex::encode(ev.prev_hash),
                    hex::encode(ev.hash),
                ])
                .map_err(csv_err)
            })?;
            w.flush()
                .map_err(|e| Error::internal(format!("writing CSV: {e}")).with_source(e))?;
        }
    }
    ctx.out.info(format!("{n} event(s) exported"));
    Ok(())
}
