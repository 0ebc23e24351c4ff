use crate::cli::Ctx;

pub fn run(ctx: &Ctx) -> crate::Result<()> {
    let users = match ctx.app.users_ro() {
        Ok(s) => s.list()?,
        // No users.db yet simply means no users.
        Err(e) if e.kind == crate::Kind::NotFound => vec![],
        Err(e) => return Err(e),
    };
    if ctx.out.json {
        return ctx.out.json(&users);
    }
    let mut t = ctx
        .out
        .table(&["username", "role", "status", "id", "created", "last login"]);
    for u in &users {
        t.add_row(vec![
            u.username.clone(),
            u.role.to_string(),
            if u.disabled { "disabled" } else { "active" }.to_string(),
            u.id.clone(),
            u.created_at
                .get(..19)
                .unwrap_or(&u.created_at)
                .replace('T', " "),
            u.last_login_at
                .as_deref()
                .map(|s| s.get(..19).unwrap_or(s).replace('T', " "))
                .unwrap_or_else(|| "never".into()),
        ]);
    }
    ctx.out.print_table(&t)?;
    ctx.out.info(format!("{} user(s)", users.len()));
    Ok(())
}
