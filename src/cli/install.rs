//! `hermes-operator install`: set up this server in one idempotent command.

use crate::cli::{read_new_password, Ctx};
use crate::error::Error;
use crate::ops::install;
use std::io::IsTerminal;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Create this first admin account when no admin exists (else asks on a terminal)
    #[arg(long, value_name = "NAME")]
    pub admin: Option<String>,
    /// Read the admin's password from the first line of stdin instead of prompting
    #[arg(long, requires = "admin")]
    pub password_stdin: bool,
    /// Replace files someone changed (each is backed up to <file>.bak-<UTC ts> first)
    #[arg(long)]
    pub force: bool,
    /// Do not ask; without --admin no admin is created
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Do not write the systemd user unit (a trial on a temporary home)
    #[arg(long)]
    pub no_systemd: bool,
    /// Keep the operator's files under this system account (created if
    /// missing), out of reach of the account Hermes and its agent run as;
    /// the unit becomes a system unit running as it. Needs root
    #[arg(long, value_name = "ACCOUNT")]
    pub operator_user: Option<String>,
}

pub fn run(ctx: &Ctx, a: Args) -> crate::Result<()> {
    let home = &ctx.app.home;
    let admin = match (install::admin_exists(home)?, a.admin) {
        (Some(_), _) => None,
        (None, Some(name)) => {
            crate::store::users::validate_username(&name)?;
            let pw = read_new_password(a.password_stdin, &name)?;
            crate::ops::credentials::check_password_policy(&pw)?;
            Some((name, pw))
        }
        (None, None)
            if !a.yes && std::io::stdin().is_terminal() && std::io::stderr().is_terminal() =>
        {
            let name: String = dialoguer::Input::new()
                .with_prompt("Username of the first admin (empty: skip)")
                .allow_empty(true)
                .interact_text()
                .map_err(|e| Error::internal(format!("prompt failed: {e}")).with_source(e))?;
            if name.trim().is_empty() {
                None
            } else {
                crate::store::users::validate_username(name.trim())?;
                let pw = read_new_password(false, name.trim())?;
                Some((name.trim().to_string(), pw))
            }
        }
        (None, None) => None,
    };
    let r = install::run(
        &ctx.app,
        install::Options {
            admin,
            force: a.force,
            exe: crate::process::current_exe()?,
            systemd_dir: match (a.no_systemd, &a.operator_user) {
                (true, _) => None,
                (false, Some(_)) => Some(install::systemd_system_dir()),
                (false, None) => Some(install::systemd_user_dir()?),
            },
            operator_user: a.operator_user,
        },
    )?;
    if ctx.out.json {
        return ctx.out.json(&r);
    }
    let mut t = ctx.out.table(&["item", "action", "path", "note"]);
    for i in &r.items {
        t.add_row(vec![
            i.what.clone(),
            i.action.as_str().to_string(),
            i.path.clone(),
            i.note.clone().unwrap_or_default(),
        ]);
    }
    ctx.out.print_table(&t)?;
    for w in &r.warnings {
        ctx.out.warn(w);
    }
    if r.changed {
        ctx.out.info("installed. Next:");
    } else {
        ctx.out
            .info("nothing to do: everything is already installed (no file was changed). Next:");
    }
    for s in &r.next_steps {
        ctx.out.info(format!("  - {s}"));
    }
    Ok(())
}
