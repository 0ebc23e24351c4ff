//! The schedule: a marked line in the user crontab.

use super::*;
use crate::process::sh_quote;
use crate::store::events::EventKind;

/// Validate a 5-field cron expression (numbers, `*`, ranges, steps, lists,
/// month and weekday names). Returns it with single spaces.
pub fn validate_cron(expr: &str) -> Result<String> {
    let fields: Vec<&str> = expr.split_whitespace().collect();
    let bad = |m: String| {
        Error::usage(format!("invalid schedule {expr:?}: {m}"))
            .hint("give 5 cron fields: minute hour day-of-month month day-of-week, e.g. \"0 3 * * 0\" (Sundays 03:00)")
    };
    if fields.len() != 5 {
        return Err(bad(format!("expected 5 fields, got {}", fields.len())));
    }
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
    let specs: [(&str, u32, u32, &[&str], u32); 5] = [
        ("minute", 0, 59, &[], 0),
        ("hour", 0, 23, &[], 0),
        ("day of month", 1, 31, &[], 0),
        ("month", 1, 12, &MONTHS, 1),
        ("day of week", 0, 7, &DAYS, 0),
    ];
    for (f, (name, lo, hi, names, base)) in fields.iter().zip(specs) {
        let value = |s: &str| -> Option<u32> {
            if let Ok(n) = s.parse::<u32>() {
                return (lo..=hi).contains(&n).then_some(n);
            }
            let l = s.to_ascii_lowercase();
            names.iter().position(|n| *n == l).map(|i| i as u32 + base)
        };
        for item in f.split(',') {
            let (range, step) = match item.split_once('/') {
                Some((r, s)) => (r, Some(s)),
                None => (item, None),
            };
            if let Some(s) = step {
                if s.parse::<u32>().map_or(true, |n| n == 0 || n > hi) {
                    return Err(bad(format!("{name}: bad step {s:?}")));
                }
            }
            if range == "*" {
                continue;
            }
            let ok = match range.split_once('-') {
                Some((a, b)) => matches!((value(a), value(b)), (Some(x), Some(y)) if x <= y),
                None => value(range).is_some(),
            };
            if !ok {
                return Err(bad(format!(
                    "{name}: {item:?} is not a value, range or step within {lo}-{hi}"
                )));
            }
        }
    }
    Ok(fields.join(" "))
}

fn abs_home(home: &Home) -> PathBuf {
    fs::canonicalize(&home.root).unwrap_or_else(|_| home.root.clone())
}

pub fn auto_update_script(home: &Home) -> PathBuf {
    home.scripts_dir().join("auto_update.sh")
}

/// The crontab line for this HERMES_HOME.
pub fn cron_line(home: &Home, expr: &str) -> Result<String> {
    let root = abs_home(home);
    let script = root.join("scripts/operator/auto_update.sh");
    let s = script.to_string_lossy();
    if s.contains(['%', '\n', '\r']) {
        return Err(Error::usage(format!(
            "cannot schedule: the path {s:?} contains a character crontab treats specially (%, newline)"
        )));
    }
    Ok(format!(
        "{expr} {} {CRON_MARKER}{}",
        crate::process::sh_quote(&s),
        root.to_string_lossy()
    ))
}

fn marker(home: &Home) -> String {
    format!("{CRON_MARKER}{}", abs_home(home).to_string_lossy())
}

/// `crontab -l`, with "no crontab" as empty.
pub fn read_crontab() -> Result<String> {
    let mut cmd = Command::new("crontab");
    cmd.arg("-l");
    let out = run_capture(cmd, Duration::from_secs(30)).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::not_found("`crontab` is not installed")
                .hint("install cron (Debian/Ubuntu: apt install cron), or schedule scripts/operator/auto_update.sh with Hermes' own cron: hermes cron create \"0 3 * * 0\" --name hermes-operator-update --script operator/auto_update.sh --no-agent")
        } else {
            Error::internal(format!("running crontab -l: {e}"))
        }
    })?;
    match out.status {
        Some(s) if s.success() => Ok(out.stdout),
        _ if out.stderr.to_ascii_lowercase().contains("no crontab") => Ok(String::new()),
        _ => Err(Error::internal(format!(
            "crontab -l failed: {}",
            last_line(&out.stderr)
        ))),
    }
}

fn write_crontab(text: &str) -> Result<()> {
    let mut child = Command::new("crontab")
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::internal(format!("running crontab -: {e}")).with_source(e))?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(text.as_bytes())
        .map_err(|e| Error::internal(format!("writing to crontab -: {e}")).with_source(e))?;
    let out = child
        .wait_with_output()
        .map_err(|e| Error::internal(format!("crontab -: {e}")).with_source(e))?;
    if !out.status.success() {
        return Err(Error::internal(format!(
            "crontab - refused the new table: {}",
            last_line(&String::from_utf8_lossy(&out.stderr))
        )));
    }
    Ok(())
}

/// This home's scheduled line, if any.
pub fn current_schedule(home: &Home) -> Result<Option<String>> {
    let m = marker(home);
    Ok(read_crontab()?
        .lines()
        .find(|l| l.ends_with(&m))
        .map(str::to_string))
}

#[derive(Debug, Clone, Serialize)]
pub struct ScheduleChange {
    pub changed: bool,
    pub line: Option<String>,
    pub removed: Vec<String>,
    pub script: String,
    pub script_created: bool,
}

/// Install (or replace) this home's crontab line; idempotent. Writes
/// `scripts/operator/auto_update.sh` when it is missing.
pub fn schedule(app: &App, expr: &str) -> Result<ScheduleChange> {
    let expr = validate_cron(expr)?;
    let home = &app.home;
    let line = cron_line(home, &expr)?;
    let script = auto_update_script(home);
    let script_created = !script.exists();
    if script_created {
        let exe = crate::process::current_exe()?;
        crate::home::write_script(&script, &crate::ops::update::auto_update_sh(home, &exe))?;
    }
    let table = read_crontab()?;
    let m = marker(home);
    let removed: Vec<String> = table
        .lines()
        .filter(|l| l.ends_with(&m) && *l != line)
        .map(str::to_string)
        .collect();
    let present = table.lines().any(|l| l == line);
    let change = ScheduleChange {
        changed: !present || !removed.is_empty(),
        line: Some(line.clone()),
        removed,
        script: script.display().to_string(),
        script_created,
    };
    if change.changed {
        let mut out: Vec<&str> = table.lines().filter(|l| !l.ends_with(&m)).collect();
        out.push(&line);
        write_crontab(&(out.join("\n") + "\n"))?;
        app.record(NewEvent::new(
            EventKind::UpdateScheduled,
            &app.actor,
            json!({"schedule": expr, "line": line, "replaced": change.removed}),
        ))?;
    }
    Ok(change)
}

/// Remove this home's crontab line(s); idempotent.
pub fn unschedule(app: &App) -> Result<ScheduleChange> {
    let home = &app.home;
    let table = read_crontab()?;
    let m = marker(home);
    let removed: Vec<String> = table
        .lines()
        .filter(|l| l.ends_with(&m))
        .map(str::to_string)
        .collect();
    if !removed.is_empty() {
        let out: Vec<&str> = table.lines().filter(|l| !l.ends_with(&m)).collect();
        let text = if out.is_empty() {
            String::new()
        } else {
            out.join("\n") + "\n"
        };
        write_crontab(&text)?;
        app.record(NewEvent::new(
            EventKind::UpdateUnscheduled,
            &app.actor,
            json!({"removed": removed}),
        ))?;
    }
    Ok(ScheduleChange {
        changed: !removed.is_empty(),
        line: None,
        removed,
        script: auto_update_script(home).display().to_string(),
        script_created: false,
    })
}

/// `scripts/operator/auto_update.sh`: what the schedule runs (cron has a
/// minimal PATH and no terminal). Exit codes: see `hermes-operator update --help`.
pub fn auto_update_sh(home: &Home, exe: &Path) -> String {
    let root = abs_home(home);
    let log = root.join("profiles/operator/logs/auto_update.log");
    format!(
        "#!/bin/sh\n\
         # hermes-operator: unattended Hermes update (written by `hermes-operator install`;\n\
         # scheduled by `hermes-operator update schedule`). One JSON report per run is\n\
         # appended to logs/auto_update.log; Hermes' own output goes to logs/update.log.\n\
         # Exit: 0 updated/up to date, 6 another update running, 9 state.db incompatible,\n\
         # 11 update failed, 12 restart or health check failed.\n\
         set -u\n\
         export HERMES_HOME={root}\n\
         export HERMES_OPERATOR_TRIGGER=cron\n\
         export PATH=\"$HOME/.local/bin:$PATH\"\n\
         umask 077\n\
         mkdir -p {logdir}\n\
         exec {exe} --hermes-home {root} --json update --yes >> {log} 2>&1\n",
        root = sh_quote(&root.to_string_lossy()),
        exe = sh_quote(&exe.to_string_lossy()),
        logdir = sh_quote(&root.join("profiles/operator/logs").to_string_lossy()),
        log = sh_quote(&log.to_string_lossy()),
    )
}
