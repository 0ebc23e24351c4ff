use crate::cli::Ctx;
use crate::ops::audit::integrity;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A file of checkpoint lines kept off-host (from `audit checkpoint`);
    /// detects a truncated tail or a rebuilt log. The local copy is always checked too.
    #[arg(long, value_name = "FILE")]
    pub checkpoints: Vec<PathBuf>,
}

pub fn run(ctx: &Ctx, a: Args) -> crate::Result<()> {
    let started = std::time::Instant::now();
    let r = integrity::verify_home(&ctx.app, &a.checkpoints)?;
    let secs = started.elapsed().as_secs_f64();
    if ctx.out.json {
        ctx.out.json(&r)?;
    } else if r.ok {
        ctx.out.line(format!(
            "OK: {} event(s), seq {}..{}, head {}; {} checkpoint(s) matched{}",
            r.events,
            r.first_seq.unwrap_or(0),
            r.last_seq,
            &r.head_hash[..16],
            r.checkpoints_checked,
            r.anchor_seq
                .map(|s| format!("; starts after signed prune anchor at seq {s}"))
                .unwrap_or_default()
        ))?;
        ctx.out.info(format!("verified in {secs:.3}s"));
    }
    match r.problem {
        None => Ok(()),
        Some(p) => Err(crate::Error::integrity(format!(
            "audit log integrity FAILED{}: {}",
            p.event_id.map(|id| format!(" at {id}")).unwrap_or_default(),
            p.message
        ))
        .hint("keep the file as evidence; compare with backups/operator_* and your off-host checkpoints")),
    }
}
