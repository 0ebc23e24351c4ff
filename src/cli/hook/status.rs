use crate::cli::Ctx;
use crate::ops::hooks;

pub fn run(ctx: &Ctx) -> crate::Result<()> {
    let home = &ctx.app.home;
    // Which Hermes runs decides whether the policy fails closed; a Hermes
    // that cannot be found is reported, not an error.
    let hermes = crate::hermes::install::locate_hermes(
        home,
        ctx.app.cfg.config.update.hermes_command.as_deref(),
    )
    .and_then(|i| crate::hermes::install::detect_version(home, &i))
    .ok();
    let st = hooks::status(home, &hooks::hook_command(home)?, hermes.as_ref())?;
    if ctx.out.json {
        return ctx.out.json(&st);
    }
    let yn = |b: bool| if b { "yes" } else { "no" }.to_string();
    let mut t = ctx.out.table(&[
        "event",
        "config",
        "allowlisted",
        "program exists",
        "command",
    ]);
    for e in &st.events {
        let present = e.state != "missing";
        t.add_row(vec![
            e.event.clone(),
            e.state.clone(),
            if present {
                yn(e.allowlisted)
            } else {
                "-".into()
            },
            if present {
                yn(e.command_exists)
            } else {
                "-".into()
            },
            e.commands.join("\n"),
        ]);
    }
    ctx.out.print_table(&t)?;
    ctx.out.line(match (st.fails_closed, &st.hermes_version) {
        (Some(true), Some(v)) => format!("Hermes {v}: a policy hook that cannot run blocks the tool (fail_closed)"),
        (Some(false), Some(v)) => format!("Hermes {v}: a policy hook that cannot run lets the tool run (fails open; upgrade Hermes to 0.20+)"),
        _ => "Hermes not found: whether the policy fails closed is unknown".to_string(),
    })?;
    ctx.out.line(format!(
        "hooks: {} ({})",
        st.state,
        st.config_path.display()
    ))?;
    for p in &st.problems {
        ctx.out.warn(p);
    }
    if st.state != "installed" {
        ctx.out
            .info("run `hermes-operator hook install` to install or repair them");
    }
    Ok(())
}
