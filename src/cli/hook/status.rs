use crate::cli::Ctx;
use crate::hooks;

pub fn run(ctx: &Ctx) -> crate::Result<()> {
    let home = &ctx.app.home;
    let st = hooks::status(home, &hooks::hook_command(home)?)?;
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
