//! `hermes-operator update ...`: the cron-driven, backed-up Hermes update
//! (docs/design.md §8). Bare `update` runs it (`--check`, `--dry-run`, `--no-restart`);
//! `schedule` / `unschedule` manage the user crontab line that runs
//! `scripts/operator/auto_update.sh`; `restore` puts a backup back.

mod check;
mod restore;
mod run;
mod schedule;
mod unschedule;

use crate::cli::Ctx;

pub const UPDATE_AFTER_HELP: &str = "\
Steps: lock → Hermes version → update_started event → backup of users.db and events.db
(SQLite online backup) + config.yaml, .env, audit key into backups/operator_<UTC ts>/ with
MANIFEST.sha256 (the newest update.keep_backups are kept) → `hermes update --yes` (output in
profiles/operator/logs/update.log, update.timeout_seconds) → version after → state.db schema
probe → operator files checked against the backup (restored if changed) → restart
(update.restart_command, only when Hermes changed) → GET update.health_url → update_finished.

Exit codes (for cron):
  0  updated, or already up to date (and the service healthy)
  2  usage: not interactive and no --yes
  3  operator files changed and could not be restored from the backup
  6  busy: another update is running (nothing was done)
  9  incompatible: state.db lacks a column the operator needs (service NOT restarted)
  11 update failed: `hermes update` failed, timed out, or the package index could not
     confirm the installed version is the newest (service NOT restarted)
  12 unhealthy: the restart command or the health check failed";

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true, after_help = UPDATE_AFTER_HELP)]
pub struct UpdateArgs {
    #[command(subcommand)]
    pub cmd: Option<UpdateCmd>,
    /// Only report the installed Hermes and whether the package index has a newer one; change nothing
    #[arg(long, conflicts_with_all = ["yes", "dry_run", "no_restart"])]
    pub check: bool,
    /// Run without asking (required when not on a terminal, e.g. cron)
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Show the steps this run would take, with real paths; change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Do not restart the operator service or run the health check afterwards
    #[arg(long)]
    pub no_restart: bool,
}

#[derive(Debug, clap::Subcommand)]
pub enum UpdateCmd {
    /// Run `update --yes` on a cron schedule (user crontab; default "0 3 * * 0", Sundays 03:00)
    Schedule(schedule::Args),
    /// Remove the scheduled update of this HERMES_HOME from the user crontab
    Unschedule,
    /// Put the operator's data (users.db, events.db, config, secrets, audit key) back from a
    /// backup that `update` made; the current state is backed up first
    Restore(restore::Args),
}

pub fn run(ctx: &Ctx, a: UpdateArgs) -> crate::Result<()> {
    match a.cmd {
        Some(UpdateCmd::Schedule(s)) => schedule::run(ctx, s),
        Some(UpdateCmd::Unschedule) => unschedule::run(ctx),
        Some(UpdateCmd::Restore(r)) => restore::run(ctx, r),
        None if a.check => check::run(ctx),
        None => run::run(ctx, a.yes, a.dry_run, a.no_restart),
    }
}
