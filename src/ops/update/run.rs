//! The whole run: audit events first and last, Hermes' own update in between.

use super::*;
use crate::store::events::EventKind;

#[derive(Debug, Clone)]
pub struct Options {
    pub no_restart: bool,
}

/// What an update came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UpdateResult {
    /// Hermes' version or commit changed.
    Updated,
    /// Unchanged, and the index or remote confirmed nothing newer exists.
    UpToDate,
    Failed,
    /// Updated, but state.db no longer suits the operator (not restarted).
    Incompatible,
}

impl UpdateResult {
    pub fn as_str(self) -> &'static str {
        match self {
            UpdateResult::Updated => "updated",
            UpdateResult::UpToDate => "up_to_date",
            UpdateResult::Failed => "failed",
            UpdateResult::Incompatible => "incompatible",
        }
    }
}

impl std::fmt::Display for UpdateResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `exit_code` in the JSON: 0, or the failure's exit code.
pub(crate) fn serialize_exit_code<S: serde::Serializer>(
    k: &Option<Kind>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_i32(k.map_or(0, Kind::exit_code))
}

/// What one run did (`--json` contract).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub result: UpdateResult,
    /// Why the run ends non-zero (`None`: exit 0); `exit_code` in the JSON.
    #[serde(rename = "exit_code", serialize_with = "serialize_exit_code")]
    pub failure: Option<Kind>,
    pub reason: Option<String>,
    pub hermes_command: String,
    pub version_before: Option<HermesVersion>,
    pub version_after: Option<HermesVersion>,
    pub availability: Option<Availability>,
    pub backup: Option<String>,
    pub backup_files: Vec<BackupFile>,
    pub backups_removed: Vec<String>,
    pub hermes_update_exit: Option<i32>,
    pub timed_out: bool,
    pub log: String,
    pub schema: Option<SchemaCheck>,
    pub files: Option<FilesCheck>,
    pub restart: Option<Restart>,
    pub health: Option<Health>,
    pub started_at: String,
    pub finished_at: String,
    pub duration_seconds: f64,
    pub started_event: Option<String>,
    pub finished_event: Option<String>,
    /// `git` (a checkout `hermes update` pulls) or `pip`.
    pub install_kind: Option<String>,
    /// Git installs: the branch pulled (`update.branch`, else `main`).
    pub branch: Option<String>,
    /// Git installs on Hermes 0.22+: the release channel asked for
    /// (`update.channel`); `None`, Hermes' own choice.
    pub channel: Option<String>,
    /// Git installs: uncommitted changes in Hermes' checkout, before and after.
    pub local_changes: Option<LocalChanges>,
    /// Hermes' own update receipt (`logs/update_receipts/latest.json`,
    /// 0.21+) written by this run, when there is one.
    pub receipt: Option<serde_json::Value>,
}

/// Local changes in a git install's checkout across `hermes update`.
#[derive(Debug, Clone, Serialize)]
pub struct LocalChanges {
    /// `git status --porcelain` before the update.
    pub before: Vec<String>,
    /// The same after it.
    pub after: Vec<String>,
    /// Paths changed before and no longer changed after.
    pub not_restored: Vec<String>,
    /// The stash Hermes left them in (its conflict path), e.g. `stash@{0}: On main: …`.
    pub stash: Option<String>,
    /// Every change before is still there after.
    pub kept: bool,
}

fn porcelain_path(line: &str) -> &str {
    line.get(3..).unwrap_or(line).trim()
}

/// Compare the checkout before and after `hermes update`.
fn compare_changes(
    before: Vec<String>,
    after: Vec<String>,
    stashes_before: &[String],
    stashes_after: &[String],
) -> LocalChanges {
    let after_paths: std::collections::HashSet<&str> =
        after.iter().map(|l| porcelain_path(l)).collect();
    let not_restored: Vec<String> = before
        .iter()
        .map(|l| porcelain_path(l))
        .filter(|p| !after_paths.contains(p))
        .map(str::to_string)
        .collect();
    let stash = (stashes_after.len() > stashes_before.len())
        .then(|| stashes_after.first().cloned())
        .flatten();
    LocalChanges {
        kept: not_restored.is_empty(),
        before,
        after,
        not_restored,
        stash,
    }
}

/// Hermes' receipt of this run (0.21+), if it wrote one after `since`.
fn read_receipt(home: &Home, since: std::time::SystemTime) -> Option<serde_json::Value> {
    let p = home.root.join("logs/update_receipts/latest.json");
    let modified = fs::metadata(&p).and_then(|m| m.modified()).ok()?;
    if modified < since {
        return None;
    }
    serde_json::from_str(&fs::read_to_string(&p).ok()?).ok()
}

impl Report {
    /// The process exit code this run ends with.
    pub fn exit_code(&self) -> i32 {
        self.failure.map_or(0, Kind::exit_code)
    }
}

/// `cron:<user>` when the scheduled script runs us, else the app's actor.
pub fn actor(app: &App) -> Actor {
    if std::env::var("HERMES_OPERATOR_TRIGGER").is_ok_and(|v| v == "cron") {
        Actor::new(format!("cron:{}", home::os_user()))
    } else {
        app.actor.clone()
    }
}

pub fn log_path(home: &Home) -> PathBuf {
    home.logs_dir().join("update.log")
}

pub(crate) fn open_log(home: &Home) -> Result<File> {
    home::ensure_private_dir(&home.logs_dir())?;
    let p = log_path(home);
    let f = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&p)
        .map_err(|e| Error::io(&p, "opening the update log", e))?;
    home::restrict_file(&p)?;
    Ok(f)
}

/// Classify an update from versions, exit status and the index's answer.
pub fn classify(
    before: &HermesVersion,
    after: Option<&HermesVersion>,
    exit_ok: bool,
    timed_out: bool,
    output: &str,
    avail: Option<&Availability>,
) -> (UpdateResult, Option<String>) {
    if timed_out {
        return (
            UpdateResult::Failed,
            Some("`hermes update` timed out and was stopped".into()),
        );
    }
    if !exit_ok || output.contains("✗ Update failed") {
        return (
            UpdateResult::Failed,
            Some(format!("`hermes update` failed: {}", last_line(output))),
        );
    }
    let Some(after) = after else {
        return (
            UpdateResult::Failed,
            Some("cannot read Hermes' version after the update".into()),
        );
    };
    if after.version != before.version || after.revision != before.revision {
        return (UpdateResult::Updated, None);
    }
    match avail.and_then(|a| a.update_available) {
        Some(false) => (UpdateResult::UpToDate, None),
        Some(true) => (
            UpdateResult::Failed,
            Some(format!(
                "a newer Hermes{} is available but `hermes update` left {} installed",
                avail
                    .and_then(|a| a.latest.as_deref())
                    .map(|l| format!(" ({l})"))
                    .unwrap_or_default(),
                before.version
            )),
        ),
        None => {
            let why = if has_network_error(output) || avail.is_some_and(|a| a.network_error) {
                "the package index could not be reached"
            } else {
                "the package index could not confirm that it is the newest"
            };
            (
                UpdateResult::Failed,
                Some(format!(
                    "Hermes is still {} and {why}: {}",
                    before.version,
                    avail.map(|a| a.detail.as_str()).unwrap_or("")
                )),
            )
        }
    }
}

fn failure_for(result: UpdateResult, healthy: bool) -> Option<Kind> {
    match result {
        UpdateResult::Failed => Some(Kind::UpdateFailed),
        UpdateResult::Incompatible => Some(Kind::Corrupt),
        _ if !healthy => Some(Kind::Unhealthy),
        _ => None,
    }
}

/// The whole update. Busy (another run holds the lock) is an `Err` before
/// anything happened; every later outcome is a [`Report`] (with its exit code)
/// and an `update_finished` event.
#[expect(
    clippy::too_many_lines,
    reason = "the audit envelope of a run (update_started first, every early failure ending in update_finished); the steps themselves are `Steps`' methods"
)]
pub fn run(app: &App, opts: &Options, progress: &dyn Fn(&str)) -> Result<Report> {
    let home = &app.home;
    let cfg = &app.cfg.config;
    let t0 = Instant::now();
    let started_at = crate::store::now_rfc3339();
    let actor = actor(app);
    // Every run is audited from its first step: whatever fails after this
    // (busy, Hermes not found, version unreadable) ends in update_finished.
    let started = app.events()?.append(NewEvent::new(
        EventKind::UpdateStarted,
        &actor,
        json!({
            "hermes_command": cfg.update.hermes_command,
            "no_restart": opts.no_restart,
            "pid": std::process::id(),
        }),
    ))?;
    let mut report = Report {
        result: UpdateResult::Failed,
        failure: Some(Kind::UpdateFailed),
        reason: None,
        hermes_command: String::new(),
        version_before: None,
        version_after: None,
        availability: None,
        backup: None,
        backup_files: vec![],
        backups_removed: vec![],
        hermes_update_exit: None,
        timed_out: false,
        log: log_path(home).display().to_string(),
        schema: None,
        files: None,
        restart: None,
        health: None,
        started_at,
        finished_at: String::new(),
        duration_seconds: 0.0,
        started_event: None,
        finished_event: None,
        install_kind: None,
        branch: None,
        channel: None,
        local_changes: None,
        receipt: None,
    };
    report.started_event = Some(started.id);
    let started_clock = std::time::SystemTime::now();
    let lock = match try_lock(home) {
        Ok(l) => l,
        Err(e) => {
            report.failure = Some(e.kind);
            report.reason = Some(e.message.clone());
            finish(app, &actor, &mut report, t0, None);
            return Err(e);
        }
    };
    let mut log = match open_log(home) {
        Ok(l) => l,
        Err(e) => {
            report.reason = Some(e.message.clone());
            finish(app, &actor, &mut report, t0, None);
            return Err(e);
        }
    };
    let _ = writeln!(
        log,
        "\n=== hermes-operator update started {} (pid {}) ===",
        report.started_at,
        std::process::id()
    );

    let outcome = Steps {
        app,
        opts,
        progress,
        report: &mut report,
        log: &mut log,
        started_clock,
    }
    .all();
    if let Err(e) = outcome {
        report.result = UpdateResult::Failed;
        report.failure = Some(Kind::UpdateFailed);
        report.reason = Some(match e.hint_text() {
            Some(h) => format!("{} ({h})", e.message),
            None => e.message.clone(),
        });
    }
    finish(app, &actor, &mut report, t0, Some(&mut log));
    drop(lock);
    Ok(report)
}

/// Record `update_finished` for whatever the run came to, and close the log.
fn finish(app: &App, actor: &Actor, report: &mut Report, t0: Instant, log: Option<&mut File>) {
    report.finished_at = crate::store::now_rfc3339();
    report.duration_seconds = (t0.elapsed().as_secs_f64() * 10.0).round() / 10.0;
    let before = report.version_before.clone();
    let finished = app.events().and_then(|ev| ev.append(NewEvent::new(
        EventKind::UpdateFinished,
        actor,
        json!({
            "result": report.result,
            "exit_code": report.exit_code(),
            "reason": report.reason,
            "hermes_command": report.hermes_command,
            "install_kind": report.install_kind,
            "branch": report.branch,
            "channel": report.channel,
            "commits_behind": report.availability.as_ref().and_then(|a| a.commits_behind),
            "remote_head": report.availability.as_ref().and_then(|a| a.remote.as_ref().map(|r| r.head.clone())),
            "local_changes_kept": report.local_changes.as_ref().map(|l| l.kept),
            "stash": report.local_changes.as_ref().and_then(|l| l.stash.clone()),
            "receipt_outcome": report.receipt.as_ref().and_then(|r| r["outcome"].as_str().map(str::to_string)),
            "version_before": before.as_ref().map(|v| v.version.clone()),
            "version_after": report.version_after.as_ref().map(|v| v.version.clone()),
            "revision_before": before.as_ref().and_then(|v| v.revision.clone()),
            "revision_after": report.version_after.as_ref().and_then(|v| v.revision.clone()),
            "latest": report.availability.as_ref().and_then(|a| a.latest.clone()),
            "backup": report.backup,
            "restored": report.files.as_ref().map(|f| f.restored.clone()).unwrap_or_default(),
            "restarted": report.restart.as_ref().is_some_and(|r| r.ran),
            "healthy": report.health.as_ref().map(|h| h.ok),
            "duration_seconds": report.duration_seconds,
        }),
    )));
    match finished {
        Ok(f) => report.finished_event = Some(f.id),
        // The run's own outcome stands; say loudly that the log lacks its end.
        Err(e) => tracing::warn!("warning: could not record update_finished: {e}"),
    }
    let Some(log) = log else { return };
    let _ = writeln!(
        log,
        "=== result: {} ({} -> {}), exit {}{} ===",
        report.result,
        before
            .as_ref()
            .map(|v| v.display())
            .unwrap_or_else(|| "?".into()),
        report
            .version_after
            .as_ref()
            .map(|v| v.display())
            .unwrap_or_else(|| "?".into()),
        report.exit_code(),
        report
            .reason
            .as_deref()
            .map(|r| format!(": {r}"))
            .unwrap_or_default()
    );
}

fn read_from(path: &Path, offset: u64) -> String {
    use std::io::{Seek, SeekFrom};
    let mut s = Vec::new();
    if let Ok(mut f) = File::open(path) {
        if f.seek(SeekFrom::Start(offset)).is_ok() {
            let _ = f.read_to_end(&mut s);
        }
    }
    String::from_utf8_lossy(&s).into_owned()
}

/// The steps of one run between `update_started` and `update_finished`;
/// each fills its part of the report. An `Err` ends the run as `failed`.
struct Steps<'a> {
    app: &'a App,
    opts: &'a Options,
    progress: &'a dyn Fn(&str),
    report: &'a mut Report,
    log: &'a mut File,
    started_clock: std::time::SystemTime,
}

/// Local changes and stashes of a git install's checkout before the update.
type GitBefore = Option<(Vec<String>, Vec<String>)>;

impl Steps<'_> {
    fn all(mut self) -> Result<()> {
        let (inst, before, track, checkout) = self.locate()?;
        let avail = self.availability(&inst, &before, &track);
        let backup = self.backup(&before)?;
        let git_before = self.git_before(checkout.as_deref())?;
        let (status, output) = self.hermes_update(&inst, checkout.is_some(), &track)?;
        let result = self.classify(&inst, &before, status, &output, &avail);
        let changes_lost = self.local_changes_after(checkout.as_deref(), git_before);
        let result = self.schema(&inst, result);
        let files = self.files(&backup, result);
        let healthy = self.restart_and_health(result, &files);
        self.exit_code(result, healthy, changes_lost, &files);
        Ok(())
    }

    /// Find Hermes and read its version; the branch/channel a git install follows.
    fn locate(&mut self) -> Result<(HermesInstall, HermesVersion, Track, Option<PathBuf>)> {
        let (home, cfg) = (&self.app.home, &self.app.cfg.config);
        let inst = locate_hermes(home, cfg.update.hermes_command.as_deref())?;
        self.report.hermes_command = inst.command.display().to_string();
        (self.progress)(&format!("Hermes: {}", inst.command.display()));
        let before = detect_version(home, &inst)?;
        self.report.version_before = Some(before.clone());
        (self.progress)(&format!(
            "Hermes {} installed; checking the package index",
            before.display()
        ));
        self.report.install_kind = Some(before.method.clone());
        let track = Track::from_config(cfg);
        let checkout = before.checkout.clone().filter(|_| before.method == "git");
        if checkout.is_some() {
            if track.channel.is_some() && !has_channels(&before) {
                return Err(Error::new(
                Kind::UpdateFailed,
                format!(
                    "update.channel is set, but Hermes {} has no release channels (0.22 and later do)",
                    before.version
                ),
            )
            .hint("remove update.channel, or use update.branch"));
            }
            self.report.branch = Some(track.branch().to_string());
            self.report.channel = track.channel.clone();
        }
        Ok((inst, before, track, checkout))
    }

    /// What the package index or the git remote offers.
    fn availability(
        &mut self,
        inst: &HermesInstall,
        before: &HermesVersion,
        track: &Track,
    ) -> Availability {
        let home = &self.app.home;
        let avail = check_available(home, inst, before, track);
        let _ = writeln!(
            self.log,
            "installed: {} ({}); index: {} — {}",
            before.display(),
            before.source,
            avail.source,
            avail.detail
        );
        self.report.availability = Some(avail.clone());

        avail
    }

    /// Back up the operator's data and prune old backups.
    fn backup(&mut self, before: &HermesVersion) -> Result<Backup> {
        let (home, cfg) = (&self.app.home, &self.app.cfg.config);
        (self.progress)("backing up the operator's data");
        let backup = make_backup(
            home,
            json!({"hermes_version_before": before.version, "revision_before": before.revision}),
        )?;
        let _ = writeln!(self.log, "backup: {}", backup.dir.display());
        self.report.backup = Some(backup.dir.display().to_string());
        self.report.backup_files = backup.files.clone();
        self.report.backups_removed = prune_backups(home, cfg.update.keep_backups as usize)?
            .iter()
            .map(|p| p.display().to_string())
            .collect();

        Ok(backup)
    }

    /// Read-only: what a git checkout holds that is not committed.
    fn git_before(&mut self, checkout: Option<&Path>) -> Result<GitBefore> {
        Ok(match checkout {
            Some(c) => {
                let changes = crate::hermes::git::local_changes(c)?;
                let stashes = crate::hermes::git::stashes(c)?;
                if !changes.is_empty() {
                    (self.progress)(&format!(
                        "{} local change(s) in {}; Hermes stashes and restores them",
                        changes.len(),
                        c.display()
                    ));
                }
                let _ = writeln!(self.log, "local changes before: {changes:?}");
                Some((changes, stashes))
            }
            None => None,
        })
    }

    /// Hermes' own `hermes update --yes`, its output appended to the log.
    fn hermes_update(
        &mut self,
        inst: &HermesInstall,
        git: bool,
        track: &Track,
    ) -> Result<(Option<std::process::ExitStatus>, String)> {
        let (home, cfg) = (&self.app.home, &self.app.cfg.config);
        (self.progress)(&format!(
            "running `{} update --yes` (output: {})",
            inst.command.display(),
            self.report.log
        ));
        let _ = writeln!(self.log, "--- {} update --yes ---", inst.command.display());
        let offset = self.log.metadata().map(|m| m.len()).unwrap_or(0);
        let mut cmd = Command::new(&inst.command);
        cmd.args(["update", "--yes"]);
        if git {
            cmd.args(track.args());
        }
        cmd.env("HERMES_HOME", &home.root)
            .env("NO_COLOR", "1")
            .env("PYTHONUNBUFFERED", "1");
        let status = run_logged(
            cmd,
            self.log,
            Duration::from_secs(cfg.update.timeout_seconds),
        )
        .map_err(|e| {
            Error::new(
                Kind::UpdateFailed,
                format!("cannot run {} update: {e}", inst.command.display()),
            )
        })?;
        self.report.timed_out = status.is_none();
        self.report.hermes_update_exit = status.and_then(|s| s.code());
        let output = read_from(&log_path(home), offset);
        let _ = writeln!(
            self.log,
            "--- hermes update {} ---",
            match status {
                Some(s) => format!("exited {s}"),
                None => format!("timed out after {} s", cfg.update.timeout_seconds),
            }
        );
        Ok((status, output))
    }

    /// Version after, Hermes' receipt, and what the run came to.
    fn classify(
        &mut self,
        inst: &HermesInstall,
        before: &HermesVersion,
        status: Option<std::process::ExitStatus>,
        output: &str,
        avail: &Availability,
    ) -> UpdateResult {
        let home = &self.app.home;
        let after = detect_version(home, inst).ok();
        self.report.version_after = after.clone();
        self.report.receipt = read_receipt(home, self.started_clock);
        let (mut result, reason) = classify(
            before,
            after.as_ref(),
            status.is_some_and(|s| s.success()),
            self.report.timed_out,
            output,
            Some(avail),
        );
        self.report.reason = reason;
        if self.report.hermes_update_exit == Some(2) {
            // 0.21+: "refused: image-managed install" (docs/hermes.md "Update").
            result = UpdateResult::Failed;
            self.report.reason = Some(format!(
                "Hermes refused to update this install (exit 2, image-managed): {}",
                last_line(output)
            ));
        } else if let Some(outcome) = self
            .report
            .receipt
            .as_ref()
            .and_then(|r| r["outcome"].as_str())
        {
            if matches!(outcome, "failed" | "refused") && result != UpdateResult::Failed {
                result = UpdateResult::Failed;
                self.report.reason = Some(format!("Hermes' update receipt says {outcome}"));
            }
        }
        result
    }

    /// Git installs: were the local changes restored, or left in a stash?
    fn local_changes_after(&mut self, checkout: Option<&Path>, git_before: GitBefore) -> bool {
        let mut changes_lost = false;
        if let (Some(c), Some((changes, stashes))) = (checkout, git_before) {
            let after_changes = crate::hermes::git::local_changes(c).unwrap_or_default();
            let after_stashes = crate::hermes::git::stashes(c).unwrap_or_default();
            let lc = compare_changes(changes, after_changes, &stashes, &after_stashes);
            let _ = writeln!(
                self.log,
                "local changes after: {:?} (stash: {:?})",
                lc.after, lc.stash
            );
            if !lc.kept {
                changes_lost = true;
                let why = match &lc.stash {
                Some(st) => format!(
                    "Hermes did not restore local changes to {} ({}): they are in its stash `{st}`; see them with `git -C {} stash show -p stash@{{0}}`",
                    c.display(),
                    lc.not_restored.join(", "),
                    c.display()
                ),
                None => format!(
                    "local changes to {} are gone after `hermes update` and no stash holds them: {}",
                    c.display(),
                    lc.not_restored.join(", ")
                ),
            };
                self.report.reason = Some(match self.report.reason.take() {
                    Some(r) => format!("{r}; {why}"),
                    None => why,
                });
            }
            self.report.local_changes = Some(lc);
        }

        changes_lost
    }

    /// A state.db the installed Hermes writes must still suit the operator.
    fn schema(&mut self, inst: &HermesInstall, mut result: UpdateResult) -> UpdateResult {
        let home = &self.app.home;
        (self.progress)("probing state.db's schema");
        let schema = probe_schema(home, inst);
        if !schema.compatible && result != UpdateResult::Failed {
            result = UpdateResult::Incompatible;
            self.report.reason = Some(format!(
                "state.db schema incompatible with this hermes-operator: {}",
                schema.problems.join("; ")
            ));
        }
        self.report.schema = Some(schema);

        result
    }

    /// The operator's files compared with the backup (restored if changed).
    fn files(&mut self, backup: &Backup, result: UpdateResult) -> FilesCheck {
        let home = &self.app.home;
        (self.progress)("verifying the operator's files against the backup");
        let files = verify_operator_files(home, backup);
        self.report.files = Some(files.clone());
        self.report.result = result;

        files
    }

    /// Restart only when something changed and the result is usable; then
    /// the health check. Whether the service is healthy.
    fn restart_and_health(&mut self, result: UpdateResult, files: &FilesCheck) -> bool {
        let (home, cfg) = (&self.app.home, &self.app.cfg.config);
        // Restart only when something changed and the result is usable.
        let changed = result == UpdateResult::Updated || !files.restored.is_empty();
        let skip = if self.opts.no_restart {
            Some("--no-restart")
        } else if result == UpdateResult::Failed || result == UpdateResult::Incompatible {
            Some(result.as_str())
        } else if !changed {
            Some("up_to_date")
        } else {
            None
        };
        let restart_cmd = cfg.update.restart_command.clone();
        let mut healthy = true;
        match skip {
            Some(why) => self.report.restart = Some(Restart::skipped(&restart_cmd, why)),
            None => {
                (self.progress)(&format!("restarting: {restart_cmd}"));
                let r = run_restart(home, &restart_cmd, self.log);
                healthy &= r.ok;
                self.report.restart = Some(r);
            }
        }
        if !self.opts.no_restart
            && (result == UpdateResult::Updated || result == UpdateResult::UpToDate)
        {
            let url = cfg.health_url();
            (self.progress)(&format!("health check: GET {url}"));
            let h = health_check(&url, HEALTH_DEADLINE);
            let _ = writeln!(
                self.log,
                "health {url}: {} ({})",
                if h.ok { "ok" } else { "FAILED" },
                h.detail
            );
            healthy &= h.ok;
            self.report.health = Some(h);
        }
        if !healthy && self.report.reason.is_none() {
            self.report.reason = Some(match (&self.report.restart, &self.report.health) {
                (Some(r), _) if r.ran && !r.ok => {
                    format!("the restart command `{}` failed", r.command)
                }
                (_, Some(h)) => format!("the health check of {} failed: {}", h.url, h.detail),
                _ => "unhealthy".into(),
            });
        }
        if !files.problems.is_empty() {
            self.report.reason = Some(files.problems.join("; "));
        }
        healthy
    }

    fn exit_code(
        &mut self,
        result: UpdateResult,
        healthy: bool,
        changes_lost: bool,
        files: &FilesCheck,
    ) {
        self.report.failure = failure_for(result, healthy);
        if changes_lost && self.report.failure.is_none() {
            // Hermes itself may be fine, but someone's edits need attention.
            self.report.failure = Some(Kind::UpdateFailed);
        }
        if !files.problems.is_empty() {
            self.report.failure = Some(Kind::Integrity);
        }
    }
}
