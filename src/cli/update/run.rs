use crate::cli::Ctx;
use crate::error::Error;
use crate::ops::update::{self, Report};
use crate::store::state::REQUIRED_COLUMNS;
use serde_json::json;
use std::io::IsTerminal;

pub fn run(ctx: &Ctx, yes: bool, dry_run: bool, no_restart: bool) -> crate::Result<()> {
    if dry_run {
        return dry(ctx, no_restart);
    }
    ctx.confirm(
        "Back up the operator's data, run `hermes update --yes` and restart the operator service?",
        yes,
    )?;
    let bar = spinner();
    let progress = |m: &str| match &bar {
        Some(b) => b.set_message(m.to_string()),
        None if !ctx.out.json => ctx.out.info(format!("· {m}")),
        None => {}
    };
    let r = update::run(&ctx.app, &update::Options { no_restart }, &progress);
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let r = r?;
    if ctx.out.json {
        ctx.out.json(&r)?;
    } else {
        print(ctx, &r)?;
    }
    let Some(kind) = r.failure else {
        return Ok(());
    };
    let hint = match r.result {
        update::UpdateResult::Failed => format!("Hermes' output is in {}; the operator's data is backed up in {}; nothing was restarted", r.log, r.backup.as_deref().unwrap_or("(no backup)")),
        update::UpdateResult::Incompatible => "the operator service was NOT restarted; downgrade Hermes (pip install hermes-agent==<previous>) or upgrade hermes-operator".into(),
        _ => format!("see {}", r.log),
    };
    Err(Error::new(
        kind,
        format!(
            "update {}: {}",
            r.result,
            r.reason.clone().unwrap_or_default()
        ),
    )
    .hint(hint))
}

fn spinner() -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let b = indicatif::ProgressBar::new_spinner();
    b.enable_steady_tick(std::time::Duration::from_millis(120));
    Some(b)
}

#[expect(
    clippy::too_many_lines,
    reason = "the human table of an update report: one row per field"
)]
fn print(ctx: &Ctx, r: &Report) -> crate::Result<()> {
    let v = |x: &Option<crate::hermes::install::HermesVersion>| {
        x.as_ref()
            .map(|v| v.display())
            .unwrap_or_else(|| "?".into())
    };
    let mut t = ctx.out.table(&["step", "result"]);
    t.add_row(vec!["result".to_string(), r.result.to_string()]);
    t.add_row(vec![
        "hermes".to_string(),
        format!("{} → {}", v(&r.version_before), v(&r.version_after)),
    ]);
    if let Some(a) = &r.availability {
        t.add_row(vec![
            "package index".to_string(),
            format!("{}: {}", a.source, a.detail),
        ]);
    }
    t.add_row(vec![
        "backup".to_string(),
        r.backup.clone().unwrap_or_else(|| "-".into()),
    ]);
    if !r.backups_removed.is_empty() {
        t.add_row(vec![
            "old backups removed".to_string(),
            r.backups_removed.len().to_string(),
        ]);
    }
    t.add_row(vec![
        "hermes update".to_string(),
        if r.timed_out {
            "timed out".into()
        } else {
            r.hermes_update_exit
                .map(|c| format!("exit {c}"))
                .unwrap_or_else(|| "-".into())
        },
    ]);
    if let Some(s) = &r.schema {
        t.add_row(vec![
            "state.db schema".to_string(),
            format!("live: {}; fresh: {}", s.live, s.fresh),
        ]);
    }
    if let Some(f) = &r.files {
        t.add_row(vec![
            "operator files".to_string(),
            if f.restored.is_empty() {
                format!("{} unchanged", f.checked)
            } else {
                format!("restored: {}", f.restored.join(", "))
            },
        ]);
    }
    if let Some(x) = &r.restart {
        t.add_row(vec![
            "restart".to_string(),
            match &x.skipped {
                Some(why) => format!("skipped ({why})"),
                None => format!("{} ({})", x.command, if x.ok { "ok" } else { "FAILED" }),
            },
        ]);
    }
    if let Some(h) = &r.health {
        t.add_row(vec![
            "health".to_string(),
            format!(
                "{}: {}",
                h.url,
                if h.ok {
                    "ok".to_string()
                } else {
                    format!("FAILED ({})", h.detail)
                }
            ),
        ]);
    }
    t.add_row(vec!["log".to_string(), r.log.clone()]);
    t.add_row(vec![
        "took".to_string(),
        format!("{:.1} s", r.duration_seconds),
    ]);
    ctx.out.print_table(&t)?;
    if let Some(reason) = &r.reason {
        if r.failure.is_none() {
            ctx.out.info(reason);
        }
    }
    Ok(())
}

#[expect(
    clippy::too_many_lines,
    reason = "the dry-run plan: a list of step texts built in order"
)]
fn dry(ctx: &Ctx, no_restart: bool) -> crate::Result<()> {
    let home = &ctx.app.home;
    let cfg = &ctx.app.cfg.config;
    let inst = crate::hermes::install::locate_hermes(home, cfg.update.hermes_command.as_deref());
    let detected = inst
        .as_ref()
        .ok()
        .map(|i| crate::hermes::install::detect_version(home, i));
    let (hermes, version) = match (&inst, &detected) {
        (Ok(i), Some(Ok(v))) => (i.command.display().to_string(), v.display()),
        (Ok(i), Some(Err(e))) => (
            i.command.display().to_string(),
            format!("unknown ({})", e.message),
        ),
        (Err(e), _) => ("hermes".to_string(), format!("NOT FOUND: {}", e.message)),
        (Ok(i), None) => (i.command.display().to_string(), "unknown".to_string()),
    };
    // In --json, null when nothing was found (the steps still say `hermes`).
    let hermes_command = inst.as_ref().ok().map(|_| hermes.clone());
    // The plan for this install kind, in words.
    let track = update::Track::from_config(cfg);
    let mut plan = json!({"install_kind": null});
    let mut where_steps: Vec<String> = Vec::new();
    if let (Ok(i), Some(Ok(v))) = (&inst, &detected) {
        let p = update::plan(home, i, v, &track);
        match (&p.checkout, &p.branch, &p.local_changes) {
            (Some(c), Some(branch), Some(dirty)) => {
                where_steps.push(format!(
                    "git install {}: origin/{branch} — {}",
                    c.display(),
                    p.detail
                ));
                where_steps.push(if dirty.is_empty() {
                    "no local changes in the checkout".to_string()
                } else {
                    format!(
                        "{} local change(s) Hermes will stash and restore: {}",
                        dirty.len(),
                        dirty.join(", ")
                    )
                });
            }
            _ => where_steps.push(format!("pip install: {} — {}", p.source, p.detail)),
        }
        plan = serde_json::to_value(&p).unwrap_or(plan);
    }
    let existing: Vec<String> = update::backup_sources(home)
        .into_iter()
        .filter(|(p, _)| p.exists())
        .map(|(p, sqlite)| {
            format!(
                "{}{}",
                p.strip_prefix(&home.root).unwrap_or(&p).display(),
                if sqlite { " (online backup)" } else { "" }
            )
        })
        .collect();
    let keep = cfg.update.keep_backups as usize;
    let have = update::list_backups(home).len();
    let would_remove = (have + 1).saturating_sub(keep);
    let columns: usize = REQUIRED_COLUMNS.iter().map(|(_, c)| c.len()).sum();
    let mut steps = vec![
        "record update_started".to_string(),
        format!("take the lock {}", update::lock_path(home).display()),
        format!("read Hermes' version: {hermes} → {version}"),
    ];
    steps.extend(where_steps);
    steps.extend([
        format!(
            "back up {} into {}/operator_<UTC ts>/ with MANIFEST.sha256 (keep {keep}; would remove {would_remove} old)",
            existing.join(", "),
            home.backups_dir().display()
        ),
        format!(
            "run `{hermes} update --yes` (HERMES_HOME={}, timeout {} s), output appended to {}",
            home.root.display(),
            cfg.update.timeout_seconds,
            update::log_path(home).display()
        ),
        "read the version again: updated / up_to_date / failed".to_string(),
        format!("probe {} and a fresh state.db from the installed Hermes for {columns} required columns (incompatible → no restart)", home.state_db().display()),
        "compare config.yaml, .env and the audit key with the backup (restore if changed); quick_check users.db and events.db".to_string(),
    ]);
    if no_restart {
        steps.push("--no-restart: no restart, no health check".into());
    } else {
        steps.push(format!(
            "if Hermes changed: restart with `{}`",
            cfg.update.restart_command
        ));
        steps.push(format!(
            "health check: GET {} (up to 30 s)",
            cfg.health_url()
        ));
    }
    steps.push("record update_finished (versions, result, backup path)".into());
    if ctx.out.json {
        return ctx.out.json(
            &json!({"dry_run": true, "hermes_command": hermes_command, "version": version, "plan": plan, "steps": steps}),
        );
    }
    ctx.out
        .info("dry run: nothing is changed. An update would:");
    for (i, s) in steps.iter().enumerate() {
        ctx.out.line(format!("{:>2}. {s}", i + 1))?;
    }
    Ok(())
}
