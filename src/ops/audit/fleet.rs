//! `audit verify` for a fleet's log in PostgreSQL (issue 20): each host's
//! chain checked by the same verifier as events.db, and then against the
//! head the database records for it, so a chain whose newest events were
//! deleted (and its head left behind) is caught without a checkpoint. A
//! rewrite that also moves the head needs a checkpoint kept off the
//! database (docs/design.md, "The fleet's audit log").

use super::integrity::{verify, Checkpoint, Problem, VerifyReport};
use crate::error::Result;
use crate::store::pg::{HostChain, Pg, PgEventLog};
use ed25519_dalek::VerifyingKey;
use serde::Serialize;
use std::sync::Arc;

/// One host's verdict.
#[derive(Debug, Clone, Serialize)]
pub struct HostReport {
    pub host: String,
    #[serde(flatten)]
    pub report: VerifyReport,
}

/// One host's chain: the stored events, their links and hashes, the
/// checkpoints signed for this host, then the recorded head.
pub fn verify_host(
    chain: &HostChain,
    key: Option<&VerifyingKey>,
    checkpoints: &[Checkpoint],
) -> Result<VerifyReport> {
    let mut r = verify(chain, key, checkpoints)?;
    if r.problem.is_none() {
        if let Some((seq, hash)) = chain.stored_head()? {
            if seq != r.last_seq || hex::encode(hash) != r.head_hash {
                r.problem = Some(Problem {
                    kind: "truncated".into(),
                    seq: Some(seq),
                    event_id: None,
                    message: format!(
                        "host {}: the chain's recorded head is seq {seq}, but its events end at seq {}: events were deleted from its end",
                        chain.host(),
                        r.last_seq
                    ),
                });
                r.ok = false;
            }
        }
    }
    Ok(r)
}

/// Every host's chain (or the one named), in host order, each against the
/// checkpoints signed for that host.
pub fn verify_fleet(
    pg: &Arc<Pg>,
    only: Option<&str>,
    key: Option<&VerifyingKey>,
    checkpoints_of: impl Fn(&str) -> Vec<Checkpoint>,
) -> Result<Vec<HostReport>> {
    let mut out = Vec::new();
    for head in PgEventLog::heads(pg)? {
        if only.is_some_and(|h| h != head.host) {
            continue;
        }
        let chain = PgEventLog::new(pg.clone(), &head.host)?.chain();
        out.push(HostReport {
            host: head.host.clone(),
            report: verify_host(&chain, key, &checkpoints_of(&head.host))?,
        });
    }
    Ok(out)
}

/// What `store migrate` did.
#[derive(Debug, Clone, Serialize)]
pub struct Migration {
    pub host: String,
    /// `host:port/db` (never the password).
    pub database: String,
    /// The host's head in PostgreSQL before (0: a new host).
    pub seq_before: i64,
    pub moved: usize,
    /// The head after: the same seq and hash in events.db and PostgreSQL.
    pub head_seq: i64,
    pub head_hash: String,
    /// events.db's chain, verified before anything was moved.
    pub local: VerifyReport,
}

/// Events moved a page at a time (each page one transaction that continues
/// the chain there: an interrupted migration resumes where it stopped).
const PAGE: i64 = 10_000;

/// Moves this host's events.db into the fleet's database under `host`:
/// events.db must verify first (its checkpoints too); then every event the
/// database does not have yet, as it is; then the host's chain there is
/// verified and must end at events.db's head. Running it again moves what
/// was appended since.
pub fn migrate_events(app: &crate::app::App, pg: &Arc<Pg>, host: &str) -> Result<Migration> {
    use crate::error::Error;
    let local = super::integrity::verify_home(app, &[])?;
    if let Some(p) = &local.problem {
        return Err(Error::integrity(format!(
            "events.db does not verify ({}): nothing was moved",
            p.message
        ))
        .hint("hermes-operator audit verify shows the problem; keep the file as evidence"));
    }
    let store = app.events_ro()?;
    let log = PgEventLog::new(pg.clone(), host)?;
    let seq_before = log.head()?.map_or(0, |h| h.0);
    if let Some((seq, hash)) = log.head()? {
        if seq > local.last_seq || store.hash_at(seq)? != Some(hash) {
            return Err(Error::conflict(format!(
                "host {host} in {} holds another chain (its seq {seq} is not events.db's)",
                pg.target
            ))
            .hint("move this host's log under another host name (--host)"));
        }
    }
    let anchor = store.anchor()?;
    let mut moved = 0;
    let mut after = seq_before;
    loop {
        // Up to the head that was verified; what is appended meanwhile
        // goes with the next run.
        let mut page = store.after(after, PAGE)?;
        page.retain(|e| e.seq <= local.last_seq);
        if page.is_empty() {
            if moved == 0 && seq_before == 0 {
                // An empty log (or one pruned to its anchor): the host
                // still gets its chain's start.
                log.import(&[], anchor.as_ref())?;
            }
            break;
        }
        after = page.last().map_or(after, |e| e.seq);
        moved += log.import(
            &page,
            if seq_before == 0 && moved == 0 {
                anchor.as_ref()
            } else {
                None
            },
        )?;
    }
    let there = verify_host(&log.chain(), None, &[])?;
    if let Some(p) = &there.problem {
        return Err(Error::integrity(format!(
            "host {host}'s chain in {} does not verify after the move: {}",
            pg.target, p.message
        )));
    }
    if there.last_seq != local.last_seq || there.head_hash != local.head_hash {
        return Err(Error::integrity(format!(
            "host {host} in {} ends at seq {} ({}), but the verified events.db at seq {} ({})",
            pg.target,
            there.last_seq,
            &there.head_hash[..16],
            local.last_seq,
            &local.head_hash[..16]
        )));
    }
    Ok(Migration {
        host: host.to_string(),
        database: pg.target.clone(),
        seq_before,
        moved,
        head_seq: there.last_seq,
        head_hash: there.head_hash,
        local,
    })
}

/// The environment variable (or profiles/operator/.env key) with the
/// database password: a URL on a command line must not carry one.
pub const PASSWORD_ENV: &str = "OPERATOR_STORE_PASSWORD";

/// Connects to a URL given on the command line, its password from
/// [`PASSWORD_ENV`]; a URL with a password in it is refused.
pub fn connect(app: &crate::app::App, url: &str) -> Result<Arc<Pg>> {
    use crate::error::Error;
    if crate::store::pg::url_has_password(url) {
        return Err(Error::usage(
            "the URL carries a password, which every account on this host can read in the process list; give the URL without it",
        )
        .hint(format!("put the password in {PASSWORD_ENV} (the environment or profiles/operator/.env)")));
    }
    let password = std::env::var(PASSWORD_ENV)
        .ok()
        .filter(|p| !p.is_empty())
        .or_else(|| app.cfg.env.get(PASSWORD_ENV).cloned());
    Ok(Arc::new(Pg::connect_with_password(
        url,
        password.as_deref(),
    )?))
}

/// This host's name in the fleet: the one given, else the system's host name.
pub fn host_name(given: Option<String>) -> Result<String> {
    let name = match given {
        Some(h) => h,
        None => std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_default(),
    };
    crate::store::pg::check_host(&name).map_err(|e| e.hint("name this host with --host NAME"))?;
    Ok(name)
}
