//! The one error type. Every failure the tool reports carries a [`Kind`], and
//! [`Kind::exit_code`] is the single place where kinds become process exit
//! codes (documented in README and the man page; a test pins the table).

use std::fmt;
use std::path::Path;

/// What went wrong, coarsely: decides the exit code and the JSON error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Anything unexpected: I/O failures, bugs.
    Internal,
    /// Wrong arguments or input (also: a prompt would be needed but stdin is not a terminal).
    Usage,
    /// The audit chain (or a checkpoint) does not verify.
    Integrity,
    /// The action is not allowed: role, non-operator session, file permissions.
    Permission,
    /// A user, session, file or directory that does not exist.
    NotFound,
    /// A database or lock is held by someone else; retrying later can succeed.
    Busy,
    /// Hermes (its API server) cannot be reached or refused us.
    Unavailable,
    /// The operator's configuration (config.yaml, .env, secrets) is invalid.
    Config,
    /// A database is corrupt, not a database, or its schema is incompatible.
    Corrupt,
    /// The thing already exists (duplicate username, title in use).
    Conflict,
    /// `update`: `hermes update` failed, timed out, or could not be confirmed
    /// (Hermes unchanged or in an unknown state; the operator's data is backed up).
    UpdateFailed,
    /// The installation is not healthy: `update`'s restart or health check
    /// failed, or a `doctor` check failed.
    Unhealthy,
    /// `serve`: the address to listen on is already in use (another
    /// `serve`, or something else holds the port). Its own code because a
    /// service manager restarting into it should not retry blindly.
    PortInUse,
    /// Whoever read our output closed it (`| head`): nothing more can be
    /// said. Handled like every other error (locks released, transactions
    /// rolled back) and ends quietly with 128 + SIGPIPE, what a shell
    /// reports for `yes | head`, so `set -o pipefail` sees it.
    ClosedPipe,
    /// The person at the terminal stopped the turn (Ctrl-C at an approval
    /// prompt): the command denied, the run stopped, everything recorded.
    /// 128 + SIGINT, what a shell reports for a program ended by Ctrl-C.
    Interrupted,
}

impl Kind {
    /// The exit code table. Keep README's "Exit codes" section in step.
    pub fn exit_code(self) -> i32 {
        match self {
            Kind::Internal => 1,
            Kind::Usage => 2,
            Kind::Integrity => 3,
            Kind::Permission => 4,
            Kind::NotFound => 5,
            Kind::Busy => 6,
            Kind::Unavailable => 7,
            Kind::Config => 8,
            Kind::Corrupt => 9,
            Kind::Conflict => 10,
            Kind::UpdateFailed => 11,
            Kind::Unhealthy => 12,
            Kind::PortInUse => 13,
            Kind::ClosedPipe => 141,
            Kind::Interrupted => 130,
        }
    }

    /// Stable machine-readable code used in `--json` and HTTP errors.
    pub fn code(self) -> &'static str {
        match self {
            Kind::Internal => "internal",
            Kind::Usage => "usage",
            Kind::Integrity => "integrity",
            Kind::Permission => "forbidden",
            Kind::NotFound => "not_found",
            Kind::Busy => "busy",
            Kind::Unavailable => "unavailable",
            Kind::Config => "config",
            Kind::Corrupt => "corrupt",
            Kind::Conflict => "conflict",
            Kind::UpdateFailed => "update_failed",
            Kind::Unhealthy => "unhealthy",
            Kind::PortInUse => "port_in_use",
            Kind::ClosedPipe => "closed_pipe",
            Kind::Interrupted => "interrupted",
        }
    }

    /// One line per exit code, for `--help` and the man page (README's
    /// "Exit codes" table says the same at more length).
    pub fn meaning(self) -> &'static str {
        match self {
            Kind::Internal => "unexpected error",
            Kind::Usage => "usage: bad arguments or input, or a prompt without a terminal",
            Kind::Integrity => "integrity failure (audit chain, checkpoint, anchor)",
            Kind::Permission => "permission denied",
            Kind::NotFound => "not found",
            Kind::Busy => "busy: a database is locked by another writer; retry",
            Kind::Unavailable => "Hermes unavailable",
            Kind::Config => "configuration error",
            Kind::Corrupt => "corrupt database or incompatible state.db schema",
            Kind::Conflict => "conflict (duplicate, title in use, last admin, ended session)",
            Kind::UpdateFailed => "update failed",
            Kind::Unhealthy => {
                "unhealthy: update's restart or health check, or a doctor check, failed"
            }
            Kind::PortInUse => "serve: the address to listen on is already in use",
            Kind::ClosedPipe => "the reader of the output went away (`| head`); nothing is printed",
            Kind::Interrupted => {
                "interrupted: Ctrl-C at chat's approval prompt (denied, run stopped)"
            }
        }
    }

    pub const ALL: [Kind; 15] = [
        Kind::Internal,
        Kind::Usage,
        Kind::Integrity,
        Kind::Permission,
        Kind::NotFound,
        Kind::Busy,
        Kind::Unavailable,
        Kind::Config,
        Kind::Corrupt,
        Kind::Conflict,
        Kind::UpdateFailed,
        Kind::Unhealthy,
        Kind::PortInUse,
        Kind::ClosedPipe,
        Kind::Interrupted,
    ];
}

/// An error with a kind, a message saying what went wrong, and optionally a
/// hint saying what to do about it.
#[derive(Debug)]
pub struct Error {
    pub kind: Kind,
    pub message: String,
    /// What to do about it, most useful first (`hint_text` joins them).
    pub hints: Vec<String>,
    /// The underlying error (SQLite, I/O, JSON, HTTP), kept for
    /// `std::error::Error::source` and for callers that need more than the
    /// message: the message already says it in words.
    pub source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    /// A finer cause inside the kind, for front ends whose clients tell
    /// them apart (OpenAI clients expect a spent budget as 429
    /// `insufficient_quota`, not as a generic 403).
    pub reason: Option<Reason>,
}

/// Causes a front end may answer differently from the rest of their kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The user's daily budget is spent (`Kind::Permission`).
    BudgetSpent,
    /// Too many of something too fast (`Kind::Busy`): retrying after this
    /// many seconds can succeed. HTTP answers 429 with `Retry-After`.
    Throttled { retry_after_secs: u64 },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            hints: Vec::new(),
            source: None,
            reason: None,
        }
    }
    pub fn reason(mut self, r: Reason) -> Self {
        self.reason = Some(r);
        self
    }
    /// Keep `e` as this error's source.
    pub fn with_source(mut self, e: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(e));
        self
    }
    /// Add a hint (an error may have several: what to check, then what to run).
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hints.push(hint.into());
        self
    }
    /// The hints as one line, for places with room for one (HTTP bodies,
    /// doctor's `fix`).
    pub fn hint_text(&self) -> Option<String> {
        (!self.hints.is_empty()).then(|| self.hints.join("; "))
    }
    /// The sources below this error whose text the message does not
    /// already say, outermost first.
    pub fn causes(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut next = std::error::Error::source(self);
        while let Some(e) = next {
            let text = e.to_string();
            if !text.is_empty() && !self.message.contains(&text) && !out.contains(&text) {
                out.push(text);
            }
            next = e.source();
        }
        out
    }
    pub fn internal(m: impl Into<String>) -> Self {
        Self::new(Kind::Internal, m)
    }
    pub fn usage(m: impl Into<String>) -> Self {
        Self::new(Kind::Usage, m)
    }
    pub fn integrity(m: impl Into<String>) -> Self {
        Self::new(Kind::Integrity, m)
    }
    pub fn permission(m: impl Into<String>) -> Self {
        Self::new(Kind::Permission, m)
    }
    pub fn not_found(m: impl Into<String>) -> Self {
        Self::new(Kind::NotFound, m)
    }
    pub fn busy(m: impl Into<String>) -> Self {
        Self::new(Kind::Busy, m)
    }
    pub fn unavailable(m: impl Into<String>) -> Self {
        Self::new(Kind::Unavailable, m)
    }
    pub fn config(m: impl Into<String>) -> Self {
        Self::new(Kind::Config, m)
    }
    pub fn corrupt(m: impl Into<String>) -> Self {
        Self::new(Kind::Corrupt, m)
    }
    pub fn conflict(m: impl Into<String>) -> Self {
        Self::new(Kind::Conflict, m)
    }
    pub fn port_in_use(m: impl Into<String>) -> Self {
        Self::new(Kind::PortInUse, m)
    }

    /// Classify a SQLite error that happened on the database at `path`.
    /// Busy/locked and corrupt databases get their own kinds and a hint.
    pub fn sqlite(path: &Path, what: &str, e: rusqlite::Error) -> Self {
        Self::classify_sqlite(path, what, &e).with_source(e)
    }

    fn classify_sqlite(path: &Path, what: &str, e: &rusqlite::Error) -> Self {
        use rusqlite::ErrorCode as C;
        let p = path.display();
        if let rusqlite::Error::SqliteFailure(f, _) = e {
            match f.code {
                C::DatabaseBusy | C::DatabaseLocked => {
                    return Error::busy(format!("{p} is locked by another process while {what}"))
                        .hint("another writer (Hermes, or a second hermes-operator) holds the lock; retry in a moment");
                }
                C::DatabaseCorrupt | C::NotADatabase => {
                    return Error::corrupt(format!(
                        "{p} is not a valid SQLite database ({what}): {e}"
                    ))
                    .hint("restore it from a backup (backups/operator_*) or move it aside");
                }
                C::CannotOpen => {
                    return Error::not_found(format!("cannot open {p} ({what}): {e}"));
                }
                C::ReadOnly | C::PermissionDenied => {
                    return Error::permission(format!("{p} is not writable ({what}): {e}"))
                        .hint("run as the user that owns HERMES_HOME");
                }
                _ => {}
            }
        }
        Error::internal(format!("{p}: {what}: {e}"))
    }

    pub fn io(path: &Path, what: &str, e: std::io::Error) -> Self {
        let p = path.display();
        let err = match e.kind() {
            std::io::ErrorKind::NotFound => Error::not_found(format!("{p}: {what}: not found")),
            std::io::ErrorKind::PermissionDenied => {
                Error::permission(format!("{p}: {what}: permission denied"))
            }
            _ => Error::internal(format!("{p}: {what}: {e}")),
        };
        err.with_source(e)
    }

    /// The JSON shape used on stderr with `--json` (and by the HTTP layer).
    pub fn to_json(&self) -> serde_json::Value {
        let mut inner = serde_json::json!({
            "code": self.kind.code(),
            "message": self.message,
        });
        if let Some(h) = self.hint_text() {
            inner["hint"] = serde_json::Value::String(h);
        }
        if self.hints.len() > 1 {
            inner["hints"] = serde_json::json!(self.hints);
        }
        serde_json::json!({ "error": inner })
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::internal(format!("I/O error: {e}")).with_source(e)
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::internal(format!("JSON error: {e}")).with_source(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_stay_inside_the_error() {
        use std::error::Error as _;
        let io = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "nope");
        let e = Error::io(Path::new("/x"), "reading", io);
        assert_eq!(e.kind, Kind::Permission);
        let src = e.source().expect("the io::Error is kept");
        let io = src.downcast_ref::<std::io::Error>().unwrap();
        assert_eq!(io.kind(), std::io::ErrorKind::PermissionDenied);

        let c = rusqlite::Connection::open_in_memory().unwrap();
        let q = c.execute_batch("SELEC 1").unwrap_err();
        let e = Error::sqlite(Path::new("/db"), "querying", q);
        assert!(e
            .source()
            .unwrap()
            .downcast_ref::<rusqlite::Error>()
            .is_some());
        assert!(Error::usage("plain").source().is_none());
    }

    #[test]
    fn exit_codes_are_distinct_and_stable() {
        let codes: Vec<i32> = Kind::ALL.iter().map(|k| k.exit_code()).collect();
        assert_eq!(
            codes,
            vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 141, 130]
        );
        let mut names: Vec<&str> = Kind::ALL.iter().map(|k| k.code()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), Kind::ALL.len());
    }
}
