//! `hermes-operator update` (docs/design.md §8): a cron-safe wrapper around
//! `hermes update --yes`.
//!
//! One run: exclusive lock → Hermes' version before → `update_started` →
//! consistent backup of the operator's data (SQLite online backup API) and
//! files with a SHA-256 manifest, keeping the newest N → `hermes update --yes`
//! (timeout; output appended to `profiles/operator/logs/update.log`) →
//! version after, classified `updated` / `up_to_date` / `failed` → state.db
//! schema probe (`incompatible`) → operator files verified against the backup
//! (restored when changed) → restart + health check → `update_finished`.
//!
//! `hermes update` exits 0 both when it updated and when nothing changed, and
//! pip even exits 0 when the package index is unreachable ("Requirement
//! already satisfied"). So "up to date" is only claimed when the same index
//! (`pip index versions`, or `hermes update --check`) confirms that nothing
//! newer exists; otherwise an unchanged version is a failure.

use crate::app::App;
use crate::error::{Error, Kind, Result};
use crate::home::{self, Home};
use crate::store::events::{Actor, NewEvent};
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::cmp::Ordering;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The crontab marker: `# hermes-operator update HERMES_HOME=<abs home>`.
pub const CRON_MARKER: &str = "# hermes-operator update HERMES_HOME=";
/// The design's schedule: Sundays at 03:00.
pub const DEFAULT_SCHEDULE: &str = "0 3 * * 0";
/// How long the health check keeps trying after a restart.
const HEALTH_DEADLINE: Duration = Duration::from_secs(30);
/// How long the restart command may run.
const RESTART_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a version or availability probe may run.
const PROBE_TIMEOUT: Duration = Duration::from_secs(120);
/// Output of pip/uv that means the package index could not be reached.
const NETWORK_MARKERS: &[&str] = &[
    "Retrying (Retry(",
    "Could not fetch URL",
    "Failed to establish a new connection",
    "Connection refused",
    "Could not resolve host",
    "Name or service not known",
    "Temporary failure in name resolution",
    "Network is unreachable",
    "No matching distribution found",
    "Could not find a version that satisfies",
    "error: Failed to fetch",
    "error: Request failed",
    "Could not reach PyPI",
];

use crate::hermes::install::{
    detect_version, locate_hermes, version_cmp, HermesInstall, HermesVersion,
};
use crate::process::{run_capture, run_logged, scratch_dir};

// The seams: is an update available (check), the update lock, backups, verifying after the update,
// restart and health, the whole run, the crontab schedule, and restoring a
// backup (restore).
mod backup;
mod check;
mod lock;
mod restart;
pub mod restore;
mod run;
mod schedule;
mod verify;

use backup::rel;
pub use backup::{
    backup_sources, list_backups, make_backup, prune_backups, read_manifest, sha256_file,
    verify_backup, Backup, BackupFile, FileKind, BACKUP_META, MANIFEST,
};
use check::last_line;
pub use check::{
    check_available, has_channels, has_network_error, plan, Availability, Plan, Track,
};
pub use lock::{lock_path, running_pid, try_lock, UpdateLock};
pub use restart::{health_check, run_restart, Health, Restart};
pub use run::{actor, classify, log_path, run, LocalChanges, Options, Report, UpdateResult};
use run::{open_log, serialize_exit_code};
pub use schedule::{
    auto_update_script, auto_update_sh, cron_line, current_schedule, read_crontab, schedule,
    unschedule, validate_cron, ScheduleChange,
};
use verify::{copy_back, quick_check, replace_db_file};
pub use verify::{probe_schema, verify_operator_files, FilesCheck, SchemaCheck};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cron_validation() {
        for ok in [
            "0 3 * * 0",
            "*/15 * * * *",
            "0 3 1-7 * sun",
            "0 0,12 * jan-jun mon-fri",
            "0  3 * *   7",
        ] {
            assert!(validate_cron(ok).is_ok(), "{ok}");
        }
        assert_eq!(validate_cron("0  3 * *   7").unwrap(), "0 3 * * 7");
        for bad in [
            "",
            "0 3 * *",
            "0 3 * * * *",
            "60 3 * * 0",
            "0 24 * * 0",
            "0 3 0 * *",
            "0 3 * 13 *",
            "0 3 * * 8",
            "*/0 * * * *",
            "0 3 * * funday",
            "5-1 * * * *",
            "@weekly",
            "0 3 * * 0; rm -rf /",
        ] {
            assert!(validate_cron(bad).is_err(), "{bad}");
        }
    }

    fn v(s: &str) -> HermesVersion {
        HermesVersion {
            version: s.into(),
            revision: None,
            source: "metadata".into(),
            method: "pip".into(),
            dist: Some("hermes-agent".into()),
            checkout: None,
        }
    }

    fn avail(a: Option<bool>, net: bool) -> Availability {
        Availability {
            latest: a.map(|x| if x { "0.19.0".into() } else { "0.18.2".into() }),
            update_available: a,
            source: "pip index versions".into(),
            detail: String::new(),
            network_error: net,
            remote: None,
            commits_behind: None,
        }
    }

    #[test]
    fn track_args_and_channels() {
        let t = Track::default();
        assert_eq!(t.branch(), "main");
        assert!(t.args().is_empty());
        let t = Track {
            branch: Some("release".into()),
            channel: Some("canary".into()),
        };
        assert_eq!(t.args(), ["--branch", "release", "--channel", "canary"]);
        assert!(!has_channels(&v("0.19.0")));
        assert!(has_channels(&v("0.22.2")));
        assert!(has_channels(&v("0.22.2.post1")));
    }

    #[test]
    fn classification() {
        let b = v("0.18.2");
        assert_eq!(
            classify(
                &b,
                Some(&v("0.19.0")),
                true,
                false,
                "",
                Some(&avail(Some(true), false))
            )
            .0,
            UpdateResult::Updated
        );
        assert_eq!(
            classify(
                &b,
                Some(&v("0.18.2")),
                true,
                false,
                "",
                Some(&avail(Some(false), false))
            )
            .0,
            UpdateResult::UpToDate
        );
        // pip exits 0 when the index is unreachable: not "up to date".
        let (r, why) = classify(
            &b,
            Some(&v("0.18.2")),
            true,
            false,
            "WARNING: Retrying (Retry(total=4",
            Some(&avail(None, true)),
        );
        assert_eq!(r, UpdateResult::Failed);
        assert!(why.unwrap().contains("could not be reached"));
        assert_eq!(
            classify(
                &b,
                Some(&v("0.18.2")),
                true,
                false,
                "",
                Some(&avail(Some(true), false))
            )
            .0,
            UpdateResult::Failed
        );
        assert_eq!(
            classify(
                &b,
                Some(&v("0.19.0")),
                false,
                false,
                "✗ Update failed",
                None
            )
            .0,
            UpdateResult::Failed
        );
        assert_eq!(
            classify(&b, None, true, true, "", None).0,
            UpdateResult::Failed
        );
        assert_eq!(
            classify(&b, None, true, false, "", None).0,
            UpdateResult::Failed
        );
    }
}
