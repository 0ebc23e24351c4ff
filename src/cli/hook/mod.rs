//! `hermes-operator hook ...`: Hermes' shell hooks (docs/design.md §6.6). Bare `hook`
//! is the handler Hermes runs for every tool call (see [`crate::ops::hooks`]);
//! the subcommands add, remove and inspect its entries in Hermes' config.

mod install;
pub mod protocol;
mod status;
mod uninstall;

use crate::cli::Ctx;
use crate::ops::hooks::{self, Plan};
use crate::store::events::EventKind;
use serde_json::json;

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct HookArgs {
    #[command(subcommand)]
    pub cmd: Option<HookCmd>,
}

#[derive(Debug, clap::Subcommand)]
pub enum HookCmd {
    /// Add the hook entries to Hermes' config.yaml and allowlist (backup first; asks; --yes for scripts)
    Install(install::Args),
    /// Remove every hermes-operator hook entry from Hermes' config.yaml and allowlist
    Uninstall(uninstall::Args),
    /// Installed, partial or missing, per event: allowlisted, program present
    Status,
}

pub fn run(ctx: &Ctx, cmd: HookCmd) -> crate::Result<()> {
    match cmd {
        HookCmd::Install(a) => install::run(ctx, a),
        HookCmd::Uninstall(a) => uninstall::run(ctx, a),
        HookCmd::Status => status::run(ctx),
    }
}

/// Shared by install and uninstall: show, confirm, back up, write, audit.
#[expect(
    clippy::too_many_lines,
    reason = "install and uninstall share one sequence (show the diff, confirm, back up, write, audit) whose early returns are the dry-run, no-change and declined cases"
)]
pub(crate) fn execute(
    ctx: &Ctx,
    plan: Plan,
    yes: bool,
    dry_run: bool,
    kind: EventKind,
) -> crate::Result<()> {
    let install = kind == EventKind::HookInstalled;
    let cfg = plan.config_path.display().to_string();
    if !plan.changed() {
        if ctx.out.json {
            return ctx
                .out
                .json(&json!({"changed": false, "dry_run": dry_run, "config_path": cfg}));
        }
        ctx.out.info(if install {
            format!("hermes-operator hooks are already installed in {cfg} and allowlisted; nothing changed")
        } else {
            format!("no hermes-operator hooks in {cfg} or the allowlist; nothing changed")
        });
        return Ok(());
    }
    let diff = plan.config_diff();
    if dry_run {
        if ctx.out.json {
            return ctx.out.json(&json!({
                "changed": true,
                "dry_run": true,
                "config_path": cfg,
                "changes": plan.changes,
                "config_diff": diff,
                "allowlist_after": plan.allowlist_after,
            }));
        }
        if !diff.is_empty() {
            ctx.out.line(diff.trim_end())?;
        }
        for c in &plan.changes {
            ctx.out.info(format!("would {c}"));
        }
        ctx.out.info("dry run: nothing was changed");
        return Ok(());
    }
    if !yes {
        if !diff.is_empty() {
            ctx.out.info(diff.trim_end());
        }
        for c in &plan.changes {
            ctx.out.info(format!("  {c}"));
        }
    }
    let question = if install {
        format!("Install hermes-operator's hooks into {cfg}?")
    } else {
        format!(
            "Remove hermes-operator's hooks from {cfg}? Operator sessions lose their tool policy"
        )
    };
    if !ctx.confirm(&question, yes)? {
        return Err(crate::Error::usage("cancelled; nothing was changed"));
    }
    let applied = hooks::apply(&ctx.app.home, &plan)?;
    let events: Vec<&str> = hooks::MANAGED_EVENTS.iter().map(|e| e.name()).collect();
    ctx.app.record(ctx.app.event(
        kind,
        json!({
            "command": if install { Some(plan.command.as_str()) } else { None },
            "events": events,
            "config_path": cfg,
            "allowlist_path": plan.allowlist_path.display().to_string(),
            "backup_dir": applied.backup_dir.as_ref().map(|p| p.display().to_string()),
            "config_changed": applied.config_changed,
            "allowlist_changed": applied.allowlist_changed,
            "changes": plan.changes,
        }),
    ))?;
    if ctx.out.json {
        return ctx.out.json(&json!({
            "changed": true,
            "dry_run": false,
            "config_path": cfg,
            "changes": plan.changes,
            "backup_dir": applied.backup_dir,
        }));
    }
    let backup = applied
        .backup_dir
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    if install {
        ctx.out.info(format!(
            "installed hermes-operator hooks ({}) in {cfg}; backup in {backup}",
            events.join(", ")
        ));
    } else {
        ctx.out.info(format!(
            "removed hermes-operator hooks from {cfg}; backup in {backup}"
        ));
    }
    ctx.out
        .info("restart the Hermes gateway (e.g. `hermes gateway restart`) so it loads the change");
    Ok(())
}
