use crate::cli::Ctx;
use crate::error::Error;
use crate::ops::audit::integrity;
use crate::store::events::EventKind;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Remove events older than this: e.g. 90d, 12w, 36h [default: audit.log_retention_days]
    #[arg(long, value_name = "DURATION")]
    pub older_than: Option<String>,
    /// Do not ask for confirmation
    #[arg(long, short = 'y')]
    pub yes: bool,
}

/// `90d`, `12w`, `36h`, `45m`, `30s` → seconds (more than none, under a century).
pub fn parse_duration(s: &str) -> crate::Result<i64> {
    crate::timespec::duration_secs(s)
        .filter(|v| *v > 0 && *v < 100 * 365 * 86_400)
        .ok_or_else(|| {
            Error::usage(format!(
                "--older-than: expected a duration like 90d, 12w, 36h or 45m, got {:?}",
                crate::output::clip(s, 40)
            ))
        })
}

pub fn run(ctx: &Ctx, a: Args) -> crate::Result<()> {
    let app = &ctx.app;
    let secs = match &a.older_than {
        Some(s) => parse_duration(s)?,
        None => app.cfg.config.audit.log_retention_days as i64 * 86_400,
    };
    let cutoff = (chrono::Utc::now() - chrono::Duration::seconds(secs))
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let store = app.events()?;
    let key = integrity::signing_key(&app.home)?;
    // Never prune a chain that does not verify: that would destroy the evidence.
    let r = integrity::verify(&*store, &[key.verifying_key()], &[])?;
    if let Some(p) = r.problem {
        return Err(Error::integrity(format!(
            "not pruning: the log does not verify ({})",
            p.message
        )));
    }
    if !ctx.confirm(&format!("Delete audit events older than {cutoff}?"), a.yes)? {
        return Err(Error::usage("cancelled; nothing was changed"));
    }
    let (n, anchor) = store.prune(&cutoff, |seq, hash| integrity::sign_anchor(&key, seq, hash))?;
    let data = serde_json::json!({
        "cutoff": cutoff,
        "removed": n,
        "anchor_seq": anchor.as_ref().map(|a| a.seq),
        "anchor_hash": anchor.as_ref().map(|a| hex::encode(a.hash)),
    });
    app.record(app.event(EventKind::Prune, data.clone()))?;
    if ctx.out.json {
        ctx.out.json(&data)?;
    } else {
        ctx.out.line(match &anchor {
            Some(a) => format!(
                "removed {n} event(s) up to seq {}; the chain now starts from a signed anchor",
                a.seq
            ),
            None => "nothing older than the cutoff; nothing removed".to_string(),
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations() {
        assert_eq!(super::parse_duration("90d").unwrap(), 90 * 86_400);
        assert_eq!(super::parse_duration("2w").unwrap(), 14 * 86_400);
        assert!(super::parse_duration("d").is_err());
        assert!(super::parse_duration("10y").is_err());
        assert!(super::parse_duration("0d").is_err());
        assert!(super::parse_duration("99999999999999d").is_err());
    }
}
