//! `hermes-operator update restore [BACKUP]`: the operator's data back from
//! a backup `update` made (see [`crate::ops::update::restore`]).

use crate::cli::Ctx;
use crate::error::Error;
use crate::ops::update::restore::{self, Report, RestoreAction};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The backup: its directory name (operator_<UTC ts>) under backups/ [default: the newest]
    #[arg(value_name = "BACKUP")]
    pub backup: Option<String>,
    /// Restore without asking (required when not on a terminal)
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Check the backup and show what would be restored; change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Do not restart the operator service or run the health check afterwards
    #[arg(long)]
    pub no_restart: bool,
}

pub fn run(ctx: &Ctx, a: Args) -> crate::Result<()> {
    let home = &ctx.app.home;
    let dir = restore::resolve(home, a.backup.as_deref())?;
    if a.dry_run {
        return show(ctx, &restore::plan(home, &dir)?);
    }
    // Asked once the backup has been checked, under the update lock.
    let confirm = |plan: &Report| {
        let n = plan
            .files
            .iter()
            .filter(|f| f.action == RestoreAction::Restore)
            .count();
        ctx.confirm(
            &format!(
                "Restore {n} file(s) from {} (made {}), after backing up the current state{}?",
                dir.display(),
                plan.backup_created_at
                    .as_deref()
                    .unwrap_or("at an unknown time"),
                if a.no_restart {
                    ""
                } else {
                    ", then restart the operator service"
                }
            ),
            a.yes,
        )
        .map(|_| ())
    };
    let progress = |m: &str| {
        if !ctx.out.json {
            ctx.out.info(format!("· {m}"));
        }
    };
    let r = restore::restore(&ctx.app, &dir, a.no_restart, &confirm, &progress)?;
    show(ctx, &r)?;
    let Some(kind) = r.failure else {
        return Ok(());
    };
    let why = if r.verify_ok == Some(false) {
        "the restored event log does not verify".to_string()
    } else {
        match (&r.restart, &r.health) {
            (Some(x), _) if x.ran && !x.ok => format!("the restart command `{}` failed", x.command),
            (_, Some(h)) if !h.ok => format!("the health check of {} failed: {}", h.url, h.detail),
            _ => "unhealthy".into(),
        }
    };
    Err(
        Error::new(kind, format!("restored, but {why}")).hint(format!(
            "the state before the restore is saved in {}",
            r.safety_backup
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        )),
    )
}

fn show(ctx: &Ctx, r: &Report) -> crate::Result<()> {
    if ctx.out.json {
        return ctx.out.json(r);
    }
    let mut t = ctx
        .out
        .table(&["file", "kind", if r.dry_run { "would" } else { "did" }]);
    for f in &r.files {
        t.add_row(vec![
            f.path.clone(),
            f.kind.as_str().into(),
            f.action.as_str().into(),
        ]);
    }
    ctx.out.print_table(&t)?;
    ctx.out.line(format!(
        "backup: {} (made {})",
        r.backup.display(),
        r.backup_created_at.as_deref().unwrap_or("?")
    ))?;
    if r.dry_run {
        ctx.out.info("dry run: nothing was changed");
        return Ok(());
    }
    if let Some(s) = &r.safety_backup {
        ctx.out
            .line(format!("the state before the restore: {}", s.display()))?;
    }
    if let Some(ok) = r.verify_ok {
        ctx.out.line(format!(
            "event log: {}",
            if ok { "verifies" } else { "DOES NOT VERIFY" }
        ))?;
    }
    if let Some(x) = &r.restart {
        ctx.out.line(match &x.skipped {
            Some(why) => format!("restart: skipped ({why})"),
            None => format!(
                "restart: {} ({})",
                if x.ok { "ok" } else { "FAILED" },
                x.command
            ),
        })?;
    }
    if let Some(h) = &r.health {
        ctx.out.line(format!(
            "health: {} ({})",
            if h.ok { "ok" } else { "FAILED" },
            h.detail
        ))?;
    }
    Ok(())
}
