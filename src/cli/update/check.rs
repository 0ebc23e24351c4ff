use crate::cli::Ctx;
use crate::ops::update;
use serde_json::json;

pub fn run(ctx: &Ctx) -> crate::Result<()> {
    let home = &ctx.app.home;
    let cfg = &ctx.app.cfg.config;
    let inst = crate::hermes::install::locate_hermes(home, cfg.update.hermes_command.as_deref())?;
    let v = crate::hermes::install::detect_version(home, &inst)?;
    let track = update::Track::from_config(cfg);
    let a = update::check_available(home, &inst, &v, &track);
    if ctx.out.json {
        ctx.out.json(&json!({
            "hermes_command": inst.command,
            "installed": v,
            "latest": a.latest,
            "update_available": a.update_available,
            "commits_behind": a.commits_behind,
            "remote": a.remote,
            "source": a.source,
            "detail": a.detail,
        }))?;
        return unconfirmed(&a);
    }
    let mut t = ctx.out.table(&["field", "value"]);
    t.add_row(vec![
        "hermes".to_string(),
        inst.command.display().to_string(),
    ]);
    t.add_row(vec![
        "installed".to_string(),
        format!("{} ({}, {})", v.display(), v.method, v.source),
    ]);
    t.add_row(vec![
        "latest".to_string(),
        a.latest.clone().unwrap_or_else(|| "-".into()),
    ]);
    if let Some(r) = &a.remote {
        t.add_row(vec![
            "remote".to_string(),
            format!(
                "{} {} at {} ({} commits behind)",
                r.url,
                r.branch,
                &r.head[..r.head.len().min(12)],
                a.commits_behind
                    .map(|n| n.to_string())
                    .unwrap_or_else(|| "?".into())
            ),
        ]);
    }
    t.add_row(vec![
        "update available".to_string(),
        match a.update_available {
            Some(true) => "yes".into(),
            Some(false) => "no".into(),
            None => "unknown".into(),
        },
    ]);
    t.add_row(vec![
        "checked with".to_string(),
        format!("{}: {}", a.source, a.detail),
    ]);
    ctx.out.print_table(&t)?;
    if a.update_available == Some(true) {
        ctx.out
            .info("run `hermes-operator update` to back up and update");
    }
    unconfirmed(&a)
}

/// Never "up to date" without a confirmed comparison: an unknown answer
/// is an error cron can see (exit 11).
fn unconfirmed(a: &update::Availability) -> crate::Result<()> {
    if a.update_available.is_some() {
        return Ok(());
    }
    Err(crate::error::Error::new(
        crate::error::Kind::UpdateFailed,
        format!("cannot tell whether an update is available: {}", a.detail),
    )
    .hint(if a.network_error {
        "the package index or git remote could not be reached; check the network (and a proxy) and try again"
    } else {
        "see the detail above"
    }))
}
