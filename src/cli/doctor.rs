//! `hermes-operator doctor`: every check with pass / warn / fail and a fix.

use crate::error::{Error, Kind};
use crate::home::Home;
use crate::ops::doctor::{self, Status};
use crate::output::Output;

pub fn run(home: &Home, out: Output) -> crate::Result<()> {
    // The user unit of whoever runs doctor, or the system unit `install
    // --operator-user` writes: either one serves.
    let dirs: Vec<std::path::PathBuf> = crate::ops::install::systemd_user_dir()
        .ok()
        .into_iter()
        .chain([crate::ops::install::systemd_system_dir()])
        .collect();
    let r = doctor::run(home, &dirs);
    if out.json {
        out.json(&r)?;
    } else {
        let mut t = out.table(&["check", "status", "detail"]);
        for c in &r.checks {
            let mut detail = c.detail.clone();
            if let Some(f) = &c.fix {
                detail.push_str(&format!("\nfix: {f}"));
            }
            t.add_row(vec![
                c.name.clone(),
                c.status.as_str().to_uppercase(),
                detail,
            ]);
        }
        out.print_table(&t)?;
        out.info(format!(
            "{} pass, {} warn, {} fail",
            r.counts["pass"], r.counts["warn"], r.counts["fail"]
        ));
    }
    if r.worst == Status::Fail {
        let failed: Vec<&str> = r
            .checks
            .iter()
            .filter(|c| c.status == Status::Fail)
            .map(|c| c.name.as_str())
            .collect();
        return Err(Error::new(
            Kind::Unhealthy,
            format!("doctor: failed: {}", failed.join(", ")),
        ));
    }
    Ok(())
}
