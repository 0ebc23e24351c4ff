//! `audit verify` for a fleet's log in PostgreSQL (issue 20): each host's
//! chain checked by the same verifier as events.db, and then against the
//! head the database records for it, so a chain whose newest events were
//! deleted (and its head left behind) is caught without a checkpoint. A
//! rewrite that also moves the head needs a checkpoint kept off the
//! database (docs/design.md §13).

use super::integrity::{verify, Checkpoint, Problem, VerifyReport};
use crate::error::Result;
use crate::store::pg::{HostChain, Pg, PgEventLog};
use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};
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
    keys: &[VerifyingKey],
    checkpoints: &[Checkpoint],
) -> Result<VerifyReport> {
    let mut r = verify(chain, keys, checkpoints)?;
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

/// Every host's chain (or the one named), in host order; then each against
/// the fleet checkpoints (their signatures checked first: a bad one is an
/// error). A host a checkpoint names that has no chain any more is reported
/// as deleted.
pub fn verify_fleet(
    pg: &Arc<Pg>,
    only: Option<&str>,
    keys: &[VerifyingKey],
    checkpoints: &[FleetCheckpoint],
) -> Result<Vec<HostReport>> {
    use crate::error::Error;
    if !checkpoints.is_empty() && keys.is_empty() {
        return Err(Error::config(
            "no audit key to check fleet checkpoints with: this host has none yet and store.trusted_keys is empty",
        )
        .hint("`hermes-operator audit checkpoint` makes this host's key; list the signing hosts' public keys in store.trusted_keys"));
    }
    for cp in checkpoints {
        cp.check_signature(keys).map_err(|why| {
            Error::integrity(format!("the fleet checkpoint of {}: {why}", cp.ts))
                .hint("keep the file as evidence; checkpoints are made by `store checkpoint` with this host's audit key")
        })?;
    }
    let heads = PgEventLog::heads(pg)?;
    let hosts: Vec<&str> = heads
        .iter()
        .map(|h| h.host.as_str())
        .filter(|h| only.is_none_or(|o| o == *h))
        .collect();
    // The hosts' chains are independent: read and hashed in parallel, a
    // connection per worker (one connection runs one query at a time).
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(hosts.len())
        .max(1);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut out: Vec<HostReport> = std::thread::scope(|scope| {
        let jobs: Vec<_> = (0..workers)
            .map(|w| {
                let (hosts, next) = (&hosts, &next);
                scope.spawn(move || -> Result<Vec<HostReport>> {
                    let own = if w == 0 {
                        pg.clone()
                    } else {
                        Arc::new(pg.another()?)
                    };
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(host) = hosts.get(i) else { break };
                        let chain = PgEventLog::new(own.clone(), host)?.chain();
                        let mut report = verify_host(&chain, keys, &[])?;
                        if report.problem.is_none() {
                            check_positions(&chain, &mut report, checkpoints)?;
                        }
                        done.push(HostReport {
                            host: host.to_string(),
                            report,
                        });
                    }
                    Ok(done)
                })
            })
            .collect();
        let mut all = Vec::new();
        for j in jobs {
            all.extend(j.join().expect("a verify worker panicked")?);
        }
        Ok::<_, crate::error::Error>(all)
    })?;
    out.extend(deleted_hosts(&heads, only, checkpoints));
    out.sort_by(|a, b| a.host.cmp(&b.host));
    Ok(out)
}

/// Hosts the checkpoints vouch for that have no chain any more.
fn deleted_hosts(
    heads: &[crate::store::pg::HostHead],
    only: Option<&str>,
    checkpoints: &[FleetCheckpoint],
) -> Vec<HostReport> {
    let mut out = Vec::new();
    let mut gone: Vec<(&str, &CheckpointHead, &str)> = Vec::new();
    for cp in checkpoints {
        for h in &cp.heads {
            let known = heads.iter().any(|x| x.host == h.host);
            if !known && only.is_none_or(|o| o == h.host) && !gone.iter().any(|g| g.0 == h.host) {
                gone.push((&h.host, h, &cp.ts));
            }
        }
    }
    for (host, h, ts) in gone {
        out.push(HostReport {
            host: host.to_string(),
            report: VerifyReport {
                ok: false,
                events: 0,
                first_seq: None,
                last_seq: 0,
                head_hash: hex::encode(crate::store::events::GENESIS),
                anchor_seq: None,
                checkpoints_checked: 0,
                problem: Some(Problem {
                    kind: "deleted".into(),
                    seq: Some(h.seq),
                    event_id: None,
                    message: format!(
                        "host {host}: a checkpoint signed at {ts} vouches for its chain up to seq {}, but the database has no chain for it: it was deleted",
                        h.seq
                    ),
                }),
            },
        });
    }
    out
}

/// One host's chain against the positions the checkpoints vouch for: past
/// its end is a truncation, another hash a rewrite; positions before its
/// prune anchor are gone by design.
fn check_positions(
    chain: &HostChain,
    r: &mut VerifyReport,
    checkpoints: &[FleetCheckpoint],
) -> Result<()> {
    let floor = r.anchor_seq.unwrap_or(0);
    for cp in checkpoints {
        for h in cp.heads.iter().filter(|h| h.host == chain.host()) {
            if h.seq <= floor {
                continue;
            }
            let kind_msg = if h.seq > r.last_seq {
                Some(("truncated", format!(
                    "host {}: a checkpoint signed at {} vouches for seq {}, but its chain ends at seq {}: the tail was removed",
                    h.host, cp.ts, h.seq, r.last_seq
                )))
            } else if chain.hash_at(h.seq)?.map(hex::encode).as_deref() != Some(h.hash.as_str()) {
                Some(("rewritten", format!(
                    "host {}: its event at seq {} does not match the checkpoint signed at {}: the chain was rewritten",
                    h.host, h.seq, cp.ts
                )))
            } else {
                r.checkpoints_checked += 1;
                None
            };
            if let Some((kind, message)) = kind_msg {
                r.problem = Some(Problem {
                    kind: kind.into(),
                    seq: Some(h.seq),
                    event_id: None,
                    message,
                });
                r.ok = false;
                return Ok(());
            }
        }
    }
    Ok(())
}

/// The fleet's checkpoint type (one line of a checkpoint file).
pub const FLEET_CHECKPOINT_TYPE: &str = "hermes-operator-fleet-checkpoint";
const FLEET_CHECKPOINT_DOMAIN: &[u8] = b"hermes-operator/fleet-checkpoint/v1\0";

/// One host's head as a fleet checkpoint states it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CheckpointHead {
    pub host: String,
    pub seq: i64,
    /// Hex.
    pub hash: String,
}

/// "At `ts` every host's chain had these heads", signed with this host's
/// audit key (Ed25519) — kept off the database, it is what finds a rewrite
/// or a truncation that also moved the recorded heads (docs/design.md §13).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FleetCheckpoint {
    #[serde(rename = "type")]
    pub kind: String,
    pub v: u32,
    pub ts: String,
    pub heads: Vec<CheckpointHead>,
    pub public_key: String,
    pub signature: String,
}

/// What is signed: the domain, the time, then each head (hosts in order)
/// with its length-prefixed name, seq and hash.
fn fleet_message(ts: &str, heads: &[CheckpointHead]) -> Option<Vec<u8>> {
    let mut m = FLEET_CHECKPOINT_DOMAIN.to_vec();
    m.extend_from_slice(&(ts.len() as u64).to_be_bytes());
    m.extend_from_slice(ts.as_bytes());
    for h in heads {
        m.extend_from_slice(&(h.host.len() as u64).to_be_bytes());
        m.extend_from_slice(h.host.as_bytes());
        m.extend_from_slice(&h.seq.to_be_bytes());
        m.extend_from_slice(&hex::decode(&h.hash).ok().filter(|b| b.len() == 32)?);
    }
    Some(m)
}

impl FleetCheckpoint {
    /// Signs every host's current head.
    pub fn sign(
        key: &ed25519_dalek::SigningKey,
        heads: &[crate::store::pg::HostHead],
    ) -> FleetCheckpoint {
        use ed25519_dalek::Signer;
        let ts = crate::store::now_rfc3339();
        let heads: Vec<CheckpointHead> = heads
            .iter()
            .map(|h| CheckpointHead {
                host: h.host.clone(),
                seq: h.seq,
                hash: hex::encode(h.hash),
            })
            .collect();
        let msg = fleet_message(&ts, &heads).expect("hashes of 32 bytes");
        FleetCheckpoint {
            kind: FLEET_CHECKPOINT_TYPE.into(),
            v: 1,
            ts,
            heads,
            public_key: hex::encode(key.verifying_key().to_bytes()),
            signature: hex::encode(key.sign(&msg).to_bytes()),
        }
    }

    /// The signature holds, and was made with one of `trusted` when any is known.
    pub fn check_signature(&self, trusted: &[VerifyingKey]) -> std::result::Result<(), String> {
        let msg = fleet_message(&self.ts, &self.heads).ok_or("malformed hash")?;
        super::integrity::check_signed(&self.public_key, &self.signature, trusted, &msg)
    }
}

/// A file of fleet checkpoint lines (blank lines and `#` comments allowed).
pub fn read_fleet_checkpoints(path: &std::path::Path) -> Result<Vec<FleetCheckpoint>> {
    use crate::error::Error;
    let text =
        std::fs::read_to_string(path).map_err(|e| Error::io(path, "reading checkpoints", e))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let cp: FleetCheckpoint = serde_json::from_str(line)
            .ok()
            .filter(|c: &FleetCheckpoint| c.kind == FLEET_CHECKPOINT_TYPE && c.v == 1)
            .ok_or_else(|| {
                Error::usage(format!(
                    "{}:{}: not a fleet checkpoint line",
                    path.display(),
                    i + 1
                ))
                .hint("fleet checkpoint files hold the lines `hermes-operator store checkpoint` printed")
            })?;
        out.push(cp);
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
    let head = log.head()?;
    let seq_before = head.map_or(0, |h| h.0);
    if let Some((seq, hash)) = head {
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
    let there = verify_host(&log.chain(), &[], &[])?;
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

/// The fleet database's URL: the one given, else `store.url`.
pub fn store_url(app: &crate::app::App, given: Option<String>) -> Result<String> {
    given
        .or_else(|| app.cfg.config.store.url.clone())
        .ok_or_else(|| {
            crate::error::Error::usage(
                "no database: give --url (or --to), or set store.url in config.yaml",
            )
        })
}

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

/// This host's name in the fleet: the one given, else `store.host`, else
/// the system's host name.
pub fn host_name(app: &crate::app::App, given: Option<String>) -> Result<String> {
    let name = match given.or_else(|| app.cfg.config.store.host.clone()) {
        Some(h) => h,
        None => std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_default(),
    };
    crate::store::pg::check_host(&name)
        .map_err(|e| e.hint("name this host with --host NAME or store.host in config.yaml"))?;
    Ok(name)
}

/// Signs every host's head now with this host's audit key (`store
/// checkpoint`): the line to keep off the database.
pub fn checkpoint(app: &crate::app::App, pg: &Arc<Pg>) -> Result<FleetCheckpoint> {
    let key = super::integrity::signing_key(&app.home)?;
    let heads = PgEventLog::heads(pg)?;
    if heads.is_empty() {
        return Err(crate::error::Error::not_found(format!(
            "no host has events in {} yet: nothing to vouch for",
            pg.target
        ))
        .hint("hermes-operator store migrate --to URL"));
    }
    Ok(FleetCheckpoint::sign(&key, &heads))
}

/// What `doctor` checks of the fleet's database (`store.url`).
#[derive(Debug, serde::Serialize)]
pub struct FleetHealth {
    pub target: String,
    pub tls: String,
    /// TLS turned off for a database away from loopback (`sslmode=disable`).
    pub plain_remote: bool,
    pub schema_version: i64,
    /// The database's clock minus this host's (ms). Every host of the
    /// fleet compares itself with the one database clock, so two hosts
    /// within ±N of it are within 2N of each other.
    pub clock_skew_ms: f64,
    pub host: String,
    /// This host's newest event in PostgreSQL, and in events.db.
    pub fleet_seq: i64,
    pub local_seq: i64,
}

/// Connect to `store.url` and read what `doctor` reports.
pub fn health(app: &crate::app::App) -> Result<Option<FleetHealth>> {
    let Some(url) = app.cfg.config.store.url.clone() else {
        return Ok(None);
    };
    let pg = connect(app, &url)?;
    let host = host_name(app, None)?;
    let fleet_seq = PgEventLog::new(pg.clone(), &host)?
        .head()?
        .map_or(0, |h| h.0);
    let local_seq = match app.events_ro() {
        Ok(s) => s.head()?.0,
        Err(e) if e.kind == crate::Kind::NotFound => 0,
        Err(e) => return Err(e),
    };
    Ok(Some(FleetHealth {
        target: pg.target.clone(),
        tls: pg.tls.describe(),
        plain_remote: matches!(pg.tls, crate::store::pg::TlsMode::Off { .. }) && !pg.is_loopback(),
        schema_version: pg.schema_version()?,
        clock_skew_ms: pg.clock_skew_ms()?,
        host,
        fleet_seq,
        local_seq,
    }))
}

/// One event of a fleet-wide session timeline: its host, and whether it
/// matches its hash and links to its host's event before it.
#[derive(Debug, Clone, Serialize)]
pub struct FleetReplayRow {
    #[serde(flatten)]
    pub event: crate::store::pg::HostEvent,
    pub integrity: &'static str,
}

/// `audit replay SESSION --fleet`.
#[derive(Debug, Clone, Serialize)]
pub struct FleetReplay {
    pub session_id: String,
    pub integrity: &'static str,
    pub events: Vec<FleetReplayRow>,
}

/// A session's events from the fleet's database (whichever host holds
/// them, or only `host`), each checked as `audit replay` checks events.db's.
pub fn replay(pg: &Pg, session_id: &str, host: Option<&str>) -> Result<FleetReplay> {
    crate::ops::sessions::validate_session_id(session_id)?;
    let events = PgEventLog::session_events(pg, session_id, host)?;
    if events.is_empty() {
        return Err(crate::error::Error::not_found(format!(
            "no events recorded for session {} in {}",
            crate::output::sanitize(session_id),
            pg.target
        ))
        .hint("`store migrate` copies a host's events there"));
    }
    let mut rows = Vec::with_capacity(events.len());
    let mut all_ok = true;
    for e in events {
        let prev = match e.event.seq {
            1 => None,
            s => PgEventLog::hash_of(pg, &e.host, s - 1)?,
        };
        let ok = super::integrity::event_intact(&e.event, prev);
        all_ok &= ok;
        rows.push(FleetReplayRow {
            event: e,
            integrity: if ok { "ok" } else { "bad" },
        });
    }
    Ok(FleetReplay {
        session_id: session_id.to_string(),
        integrity: if all_ok { "ok" } else { "bad" },
        events: rows,
    })
}

/// The fleet's database of `store.url`, for the `--fleet` reads.
pub fn connect_configured(app: &crate::app::App) -> Result<Arc<Pg>> {
    let url = store_url(app, None)?;
    connect(app, &url)
}

/// What a ship moved: how many events, and the sessions they name (`None`:
/// the host's first copy, which touched every session).
#[derive(Debug, Default)]
pub struct Shipped {
    pub events: usize,
    pub sessions: Option<std::collections::BTreeSet<String>>,
}

/// Copies what events.db has beyond this host's head in the fleet's
/// database (what `serve` does every few seconds while `store.url` is
/// set): the head there must be events.db's own event at that seq; each
/// event shipped is checked against its hash and its predecessor first; a
/// page is one transaction that continues the chain (PostgreSQL going away
/// mid-way loses and duplicates nothing: the next run starts at the head
/// that committed). A host that has no chain there yet is moved whole
/// ([`migrate_events`], which verifies both ends). Events shipped.
pub fn ship_events(app: &crate::app::App, pg: &Arc<Pg>, host: &str) -> Result<Shipped> {
    use crate::error::Error;
    let log = PgEventLog::new(pg.clone(), host)?;
    let Some((mut seq, mut prev)) = log.head()? else {
        return Ok(Shipped {
            events: migrate_events(app, pg, host)?.moved,
            sessions: None,
        });
    };
    let store = app.events_ro()?;
    // The head there is events.db's event at that seq, or the chain's start
    // (nothing yet, or the anchor a prune left).
    let start = (seq == 0 && prev == crate::store::events::GENESIS)
        || store
            .anchor()?
            .is_some_and(|a| a.seq == seq && a.hash == prev);
    if !start && store.hash_at(seq)? != Some(prev) {
        return Err(Error::conflict(format!(
            "host {host} in {} holds another chain (its seq {seq} is not events.db's)",
            pg.target
        ))
        .hint("give this host another store.host"));
    }
    let mut shipped = Shipped {
        events: 0,
        sessions: Some(Default::default()),
    };
    loop {
        let page = store.after(seq, PAGE)?;
        let Some(last) = page.last() else { break };
        let (last_seq, last_hash) = (last.seq, last.hash);
        for e in &page {
            if !super::integrity::event_intact(e, Some(prev)) {
                return Err(Error::integrity(format!(
                    "events.db's event {} does not verify: not shipped",
                    e.seq
                ))
                .hint("hermes-operator audit verify"));
            }
            prev = e.hash;
        }
        match log.import(&page, None) {
            Ok(n) => {
                shipped.events += n;
                if let Some(s) = shipped.sessions.as_mut() {
                    s.extend(page.iter().filter_map(|e| e.session_id.clone()));
                }
            }
            // Another process of this host shipped first: the next run
            // starts from the head it left.
            Err(e) if e.kind == crate::Kind::Conflict => break,
            Err(e) => return Err(e),
        }
        (seq, prev) = (last_seq, last_hash);
    }
    Ok(shipped)
}

/// The audit keys whose fleet checkpoints and prune anchors this host
/// trusts: its own, and `store.trusted_keys` (the other hosts').
pub fn trusted_keys(app: &crate::app::App) -> Result<Vec<VerifyingKey>> {
    let mut keys: Vec<VerifyingKey> = super::integrity::verifying_key(&app.home)?
        .into_iter()
        .collect();
    for k in &app.cfg.config.store.trusted_keys {
        // config.rs checked the form; a point off the curve is refused here.
        let key = hex::decode(k)
            .ok()
            .and_then(|b| VerifyingKey::try_from(b.as_slice()).ok())
            .ok_or_else(|| {
                crate::error::Error::config(format!(
                    "store.trusted_keys: {k:?} is not an Ed25519 public key"
                ))
            })?;
        keys.push(key);
    }
    Ok(keys)
}
