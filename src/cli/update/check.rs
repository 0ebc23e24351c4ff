use crate::cli::Ctx;
use crate::update;
use serde_json::json;

pub fn run(ctx: &Ctx) -> crate::Result<()> {
    let home = &ctx.app.home;
    let cfg = &ctx.app.cfg.config;
    let inst = crate::hermes::install::locate_hermes(home, cfg.update.hermes_command.as_deref())?;
    let v = crate::hermes::install::detect_version(home, &inst)?;
    let a = update::check_available(home, &inst, &v);
    if ctx.out.json {
        return ctx.out.json(&json!({
            "hermes_command": inst.command,
            "installed": v,
            "latest": a.latest,
            "update_available": a.update_available,
            "source": a.source,
            "detail": a.detail,
        }));
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
    Ok(())
}
