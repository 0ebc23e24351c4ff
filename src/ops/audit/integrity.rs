//! Proving the event log: the Ed25519 signing key (outside the database),
//! signed checkpoints (one line each, for off-host keeping), prune anchors,
//! and `verify`, which walks the chain once and names the first bad event.

use crate::error::{Error, Result};
use crate::home::{self, Home};
use crate::store::events::{event_id_into, Chain, GENESIS};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::Path;

const CHECKPOINT_DOMAIN: &[u8] = b"hermes-operator/checkpoint/v1\0";
const ANCHOR_DOMAIN: &[u8] = b"hermes-operator/anchor/v1\0";
pub const CHECKPOINT_TYPE: &str = "hermes-operator-checkpoint";

/// Load the audit signing key, generating it (0600) on first need.
pub fn signing_key(home: &Home) -> Result<SigningKey> {
    let path = home.signing_key();
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let bytes = hex::decode(text.trim())
                .ok()
                .filter(|b| b.len() == 32)
                .ok_or_else(|| {
                    Error::config(format!(
                        "{} does not hold a 32-byte hex Ed25519 key",
                        path.display()
                    ))
                })?;
            let mut k = [0u8; 32];
            k.copy_from_slice(&bytes);
            Ok(SigningKey::from_bytes(&k))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = SigningKey::generate(&mut rand::rngs::OsRng);
            let secret = zeroize::Zeroizing::new(hex::encode(key.to_bytes()) + "\n");
            home::write_private_file(&path, secret.as_bytes())?;
            home::write_private_file(
                &home.signing_pub(),
                format!("{}\n", hex::encode(key.verifying_key().to_bytes())).as_bytes(),
            )?;
            Ok(key)
        }
        Err(e) => Err(Error::io(&path, "reading the audit signing key", e)),
    }
}

/// The public half, if a key exists. Reads the `.pub` file (no secret needed).
pub fn verifying_key(home: &Home) -> Result<Option<VerifyingKey>> {
    let path = home.signing_pub();
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let bytes = hex::decode(text.trim()).ok().filter(|b| b.len() == 32);
            let key = bytes.and_then(|b| VerifyingKey::try_from(b.as_slice()).ok());
            key.map(Some).ok_or_else(|| {
                Error::config(format!(
                    "{} does not hold an Ed25519 public key",
                    path.display()
                ))
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(&path, "reading the audit public key", e)),
    }
}

/// A signed statement "the log had head (seq, hash) at time ts".
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Checkpoint {
    #[serde(rename = "type")]
    pub kind: String,
    pub v: u32,
    pub seq: i64,
    pub event_id: Option<String>,
    pub hash: String,
    pub ts: String,
    pub public_key: String,
    pub signature: String,
}

fn checkpoint_message(seq: i64, hash: &[u8; 32], ts: &str) -> Vec<u8> {
    let mut m = CHECKPOINT_DOMAIN.to_vec();
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(hash);
    m.extend_from_slice(ts.as_bytes());
    m
}

pub fn anchor_message(seq: i64, hash: &[u8; 32]) -> Vec<u8> {
    let mut m = ANCHOR_DOMAIN.to_vec();
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(hash);
    m
}

/// The (public key, signature) a prune anchor at (seq, hash) stores.
pub fn sign_anchor(key: &SigningKey, seq: i64, hash: &[u8; 32]) -> (Vec<u8>, Vec<u8>) {
    (
        key.verifying_key().to_bytes().to_vec(),
        key.sign(&anchor_message(seq, hash)).to_bytes().to_vec(),
    )
}

impl Checkpoint {
    pub fn sign(
        key: &SigningKey,
        seq: i64,
        hash: &[u8; 32],
        event_id: Option<String>,
    ) -> Checkpoint {
        Checkpoint::sign_at(key, seq, hash, event_id, crate::store::now_rfc3339())
    }

    /// [`Checkpoint::sign`] at a given time (Ed25519 is deterministic, so the
    /// known-answer test pins the whole line).
    pub fn sign_at(
        key: &SigningKey,
        seq: i64,
        hash: &[u8; 32],
        event_id: Option<String>,
        ts: String,
    ) -> Checkpoint {
        let sig = key.sign(&checkpoint_message(seq, hash, &ts));
        Checkpoint {
            kind: CHECKPOINT_TYPE.into(),
            v: 1,
            seq,
            event_id,
            hash: hex::encode(hash),
            ts,
            public_key: hex::encode(key.verifying_key().to_bytes()),
            signature: hex::encode(sig.to_bytes()),
        }
    }

    pub fn to_line(&self) -> String {
        serde_json::to_string(self).expect("checkpoint serializes")
    }

    pub fn hash_bytes(&self) -> Option<[u8; 32]> {
        let b = hex::decode(&self.hash).ok()?;
        b.try_into().ok()
    }

    /// Check the signature, and that it was made by one of `trusted` when
    /// any key is known.
    pub fn check_signature(&self, trusted: &[VerifyingKey]) -> std::result::Result<(), String> {
        let hash = self.hash_bytes().ok_or("malformed hash")?;
        check_signed(
            &self.public_key,
            &self.signature,
            trusted,
            &checkpoint_message(self.seq, &hash, &self.ts),
        )
    }
}

/// A signed line's hex public key and signature over `msg`: well formed,
/// valid, and made with one of the `trusted` keys when any is known (this
/// installation's audit key; in a fleet also `store.trusted_keys`: the
/// other hosts'). Checkpoints of events.db and of the fleet (`fleet.rs`)
/// are checked with it.
pub fn check_signed(
    public_key: &str,
    signature: &str,
    trusted: &[VerifyingKey],
    msg: &[u8],
) -> std::result::Result<(), String> {
    let pk = hex::decode(public_key)
        .ok()
        .and_then(|b| VerifyingKey::try_from(b.as_slice()).ok())
        .ok_or("malformed public key")?;
    if !trusted.is_empty() && !trusted.contains(&pk) {
        return Err("signed by a different key than the trusted ones (this installation's audit key, store.trusted_keys)".into());
    }
    let sig = hex::decode(signature)
        .ok()
        .and_then(|b| Signature::from_slice(&b).ok())
        .ok_or("malformed signature")?;
    pk.verify(msg, &sig)
        .map_err(|_| "bad signature".to_string())
}

/// Parse a file of checkpoint lines (blank lines and `#` comments allowed).
pub fn read_checkpoints(path: &Path) -> Result<Vec<Checkpoint>> {
    let text =
        std::fs::read_to_string(path).map_err(|e| Error::io(path, "reading checkpoints", e))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let cp: Checkpoint = serde_json::from_str(line).map_err(|e| {
            Error::usage(format!(
                "{}:{}: not a checkpoint line ({e})",
                path.display(),
                i + 1
            ))
            .hint("checkpoint files hold the lines `hermes-operator audit checkpoint` printed")
        })?;
        if cp.kind != CHECKPOINT_TYPE || cp.v != 1 {
            return Err(Error::usage(format!(
                "{}:{}: unsupported checkpoint type/version",
                path.display(),
                i + 1
            )));
        }
        out.push(cp);
    }
    Ok(out)
}

/// Append a checkpoint line to the local copy (0600).
pub fn keep_checkpoint(home: &Home, cp: &Checkpoint) -> Result<()> {
    let path = home.checkpoints_file();
    home::ensure_private_dir(&home.profile_dir())?;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| Error::io(&path, "opening the checkpoint log", e))?;
    home::restrict_file(&path)?;
    writeln!(f, "{}", cp.to_line())
        .and_then(|_| f.sync_all())
        .map_err(|e| Error::io(&path, "writing the checkpoint log", e))
}

/// Verify this installation's log: the whole chain, the local checkpoint
/// copy and any `extra` checkpoint files kept off-host (`audit verify` and
/// `GET /api/audit/verify`). A missing events.db while checkpoints vouch for
/// events is an integrity failure (the log was deleted).
pub fn verify_home(app: &crate::app::App, extra: &[std::path::PathBuf]) -> Result<VerifyReport> {
    let home = &app.home;
    let mut cps = Vec::new();
    for f in extra {
        cps.extend(read_checkpoints(f)?);
    }
    let local = home.checkpoints_file();
    if local.exists() {
        cps.extend(read_checkpoints(&local)?);
    }
    let store = match app.events_ro() {
        Ok(s) => s,
        Err(e) if e.kind == crate::Kind::NotFound && cps.iter().any(|c| c.seq > 0) => {
            return Err(Error::integrity(format!(
                "{} is missing, but checkpoints vouch for {} event(s): the log was deleted",
                home.events_db().display(),
                cps.iter().map(|c| c.seq).max().unwrap_or(0)
            )));
        }
        Err(e) => return Err(e),
    };
    let key = verifying_key(home)?;
    verify(&store, key.as_slice(), &cps)
}

/// One event of a session timeline with its local integrity status.
#[derive(Debug, Clone, Serialize)]
pub struct ReplayRow {
    #[serde(flatten)]
    pub event: crate::store::events::Event,
    /// "ok": the event matches its hash and links to the event before it.
    pub integrity: &'static str,
}

/// `audit replay SESSION --json` and `GET /api/audit/replay/{id}`.
#[derive(Debug, Clone, Serialize)]
pub struct Replay {
    pub session_id: String,
    /// "ok" when every event verifies, else "bad".
    pub integrity: &'static str,
    pub events: Vec<ReplayRow>,
}

/// Whether an event matches its own hash and links to `prev`, the hash of
/// the event before it in its chain (the first links to the genesis hash).
pub fn event_intact(ev: &crate::store::events::Event, prev: Option<[u8; 32]>) -> bool {
    let own = crate::store::events::event_hash(
        ev.seq,
        &ev.ts,
        &ev.kind,
        ev.session_id.as_deref(),
        ev.user_id.as_deref(),
        &ev.actor,
        &ev.data,
        &ev.prev_hash,
    ) == ev.hash;
    let linked = if ev.seq == 1 {
        ev.prev_hash == GENESIS
    } else {
        prev.is_some_and(|h| h == ev.prev_hash)
    };
    own && linked
}

/// A session's events in order, each checked against its own hash and the
/// hash of the event just before it in the log (seq - 1), so the timeline
/// shows local tampering; [`verify`] proves the whole chain.
pub fn replay(app: &crate::app::App, session_id: &str) -> Result<Replay> {
    crate::ops::sessions::validate_session_id(session_id)?;
    let store = app.events_ro()?;
    let events = store.for_session(session_id)?;
    if events.is_empty() {
        return Err(Error::not_found(format!(
            "no events recorded for session {}",
            crate::output::sanitize(session_id)
        ))
        .hint("`hermes-operator session list` shows operator sessions"));
    }
    let mut rows = Vec::with_capacity(events.len());
    let mut all_ok = true;
    for ev in events {
        let prev = if ev.seq == 1 {
            None
        } else {
            store.hash_at(ev.seq - 1)?
        };
        let ok = event_intact(&ev, prev);
        all_ok &= ok;
        rows.push(ReplayRow {
            event: ev,
            integrity: if ok { "ok" } else { "bad" },
        });
    }
    Ok(Replay {
        session_id: session_id.to_string(),
        integrity: if all_ok { "ok" } else { "bad" },
        events: rows,
    })
}

/// What `audit verify` found.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub ok: bool,
    pub events: u64,
    pub first_seq: Option<i64>,
    pub last_seq: i64,
    pub head_hash: String,
    pub anchor_seq: Option<i64>,
    pub checkpoints_checked: usize,
    pub problem: Option<Problem>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// modified | deleted | inserted_or_reordered | bad_id | truncated | rewritten | bad_anchor | bad_checkpoint
    pub kind: String,
    pub seq: Option<i64>,
    pub event_id: Option<String>,
    pub message: String,
}

fn problem(
    kind: &str,
    seq: Option<i64>,
    event_id: Option<String>,
    message: String,
) -> Option<Problem> {
    Some(Problem {
        kind: kind.into(),
        seq,
        event_id,
        message,
    })
}

/// Verify the whole chain, then every checkpoint against it.
#[expect(
    clippy::too_many_lines,
    reason = "a single streaming pass over the whole chain (hash, sequence, signature and anchor checks interleave per row); splitting it would re-read rows or carry the cursor state through several functions"
)]
pub fn verify(
    store: &dyn Chain,
    keys: &[VerifyingKey],
    checkpoints: &[Checkpoint],
) -> Result<VerifyReport> {
    let anchor = store.anchor()?;
    let (mut expect_seq, mut prev) = match &anchor {
        Some(a) => (a.seq + 1, a.hash),
        None => (1, GENESIS),
    };
    let mut report = VerifyReport {
        ok: true,
        events: 0,
        first_seq: None,
        last_seq: expect_seq - 1,
        head_hash: hex::encode(prev),
        anchor_seq: anchor.as_ref().map(|a| a.seq),
        checkpoints_checked: 0,
        problem: None,
    };
    if let Some(a) = &anchor {
        let pk = VerifyingKey::try_from(a.public_key.as_slice()).ok();
        let sig = Signature::from_slice(&a.signature).ok();
        let good = match (pk, sig) {
            (Some(pk), Some(sig)) => {
                (keys.is_empty() || keys.contains(&pk))
                    && pk.verify(&anchor_message(a.seq, &a.hash), &sig).is_ok()
            }
            _ => false,
        };
        if !good {
            report.problem = problem(
                "bad_anchor",
                Some(a.seq),
                None,
                format!(
                    "the prune anchor at seq {} is not signed by a trusted audit key (this installation's, store.trusted_keys)",
                    a.seq
                ),
            );
        }
    }
    // Hashes of checkpointed positions, collected during the one pass.
    let mut wanted: Vec<i64> = checkpoints.iter().map(|c| c.seq).collect();
    wanted.sort_unstable();
    wanted.dedup();
    let mut seen: Vec<(i64, [u8; 32])> = Vec::with_capacity(wanted.len());
    let mut wi = 0;
    let mut id_buf = String::with_capacity(32);
    if report.problem.is_none() {
        store.scan_events(&mut |ev| {
            let bad = |kind: &str, msg: String| problem(kind, Some(ev.seq), Some(ev.id.to_string()), msg);
            if report.first_seq.is_none() {
                report.first_seq = Some(ev.seq);
            }
            if ev.seq != expect_seq {
                report.problem = if ev.seq > expect_seq {
                    if expect_seq == 1 && anchor.is_none() {
                        bad("deleted", format!("the log starts at seq {} but there is no signed prune anchor: events 1..{} were deleted", ev.seq, ev.seq - 1))
                    } else {
                        bad("deleted", format!("expected seq {expect_seq}, found {}: event(s) {expect_seq}..{} were deleted", ev.seq, ev.seq - 1))
                    }
                } else {
                    bad("inserted_or_reordered", format!("expected seq {expect_seq}, found {}", ev.seq))
                };
                return false;
            }
            if ev.prev_hash != prev {
                report.problem = bad(
                    "inserted_or_reordered",
                    format!("event {} does not link to the event before it (prev_hash mismatch): an event was inserted, removed or moved here", ev.id),
                );
                return false;
            }
            if ev.computed_hash().as_slice() != ev.hash {
                report.problem = bad(
                    "modified",
                    format!("event {} does not match its hash: its content was modified", ev.id),
                );
                return false;
            }
            event_id_into(&mut id_buf, ev.ts, ev.seq);
            if id_buf != ev.id {
                report.problem = bad("bad_id", format!("event seq {} carries id {} instead of {id_buf}", ev.seq, ev.id));
                return false;
            }
            prev.copy_from_slice(ev.hash);
            report.events += 1;
            report.last_seq = ev.seq;
            while wi < wanted.len() && wanted[wi] < ev.seq {
                wi += 1;
            }
            if wi < wanted.len() && wanted[wi] == ev.seq {
                seen.push((ev.seq, prev));
            }
            expect_seq += 1;
            true
        })?;
    }
    report.head_hash = hex::encode(prev);
    if report.problem.is_none() {
        for cp in checkpoints {
            if let Err(why) = cp.check_signature(keys) {
                report.problem = problem(
                    "bad_checkpoint",
                    Some(cp.seq),
                    cp.event_id.clone(),
                    format!("checkpoint at seq {}: {why}", cp.seq),
                );
                break;
            }
            let Some(cp_hash) = cp.hash_bytes() else {
                continue;
            };
            report.checkpoints_checked += 1;
            if cp.seq > report.last_seq {
                report.problem = problem(
                    "truncated",
                    Some(cp.seq),
                    cp.event_id.clone(),
                    format!(
                        "a checkpoint signed at {} vouches for seq {}, but the log ends at seq {}: the tail was truncated",
                        cp.ts, cp.seq, report.last_seq
                    ),
                );
                break;
            }
            let actual = if cp.seq == 0 {
                Some(GENESIS)
            } else if let Some(a) = anchor.as_ref().filter(|a| a.seq == cp.seq) {
                Some(a.hash)
            } else {
                seen.iter().find(|(s, _)| *s == cp.seq).map(|(_, h)| *h)
            };
            match actual {
                Some(h) if h == cp_hash => {}
                Some(_) => {
                    report.problem = problem(
                        "rewritten",
                        Some(cp.seq),
                        cp.event_id.clone(),
                        format!(
                            "event at seq {} does not match the checkpoint signed at {}: the log was rewritten",
                            cp.seq, cp.ts
                        ),
                    );
                    break;
                }
                // Pruned away before the anchor: nothing left to compare.
                None => report.checkpoints_checked -= 1,
            }
        }
    }
    report.ok = report.problem.is_none();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Known answers from tests/fixtures/kat/kat.py (Python's `cryptography`
    // package, not this code): the signing seed is bytes 0..=31; the hashes
    // are the event-hash known answers of store/events.
    const HASH1: &str = "b056583de26c542fa9893f3126c7b992f264e900f68994ee690ef55f6a7cf3be";
    const HASH2: &str = "624df7a812109a2457d215f32cf3451e86c9b1b3eabe60fad0a9bfd70a18e15e";
    const PUBLIC: &str = "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8";
    const CHECKPOINT_SIG: &str = "a52886a6715c3849dd43716532bf537667088f402add8864beb79a683b404d523a267f88ac871ce5f2083eab0750678e162258984c18f9cd6d5b8cd5ad39f30b";
    const ANCHOR_SIG: &str = "289dcd00ef71e0c16f3eb3910ff514dcfb330355b8cf57014a670dccfab88e49a4d3cb78385b0884def4cf3e022e489bb1b348ec492d0576c5a8c98e04f02f05";

    fn key() -> SigningKey {
        let mut seed = [0u8; 32];
        for (i, b) in seed.iter_mut().enumerate() {
            *b = i as u8;
        }
        SigningKey::from_bytes(&seed)
    }

    fn h(s: &str) -> [u8; 32] {
        hex::decode(s).unwrap().try_into().unwrap()
    }

    #[test]
    fn checkpoint_and_anchor_known_answers() {
        let k = key();
        assert_eq!(hex::encode(k.verifying_key().to_bytes()), PUBLIC);
        let cp = Checkpoint::sign_at(
            &k,
            2,
            &h(HASH2),
            Some("op_audit_20260102_000002".into()),
            "2026-01-02T03:04:07.000000Z".into(),
        );
        // The whole line, as `audit checkpoint` prints it and people keep it.
        assert_eq!(
            cp.to_line(),
            format!(
                r#"{{"type":"hermes-operator-checkpoint","v":1,"seq":2,"event_id":"op_audit_20260102_000002","hash":"{HASH2}","ts":"2026-01-02T03:04:07.000000Z","public_key":"{PUBLIC}","signature":"{CHECKPOINT_SIG}"}}"#
            )
        );
        assert_eq!(cp.check_signature(&[k.verifying_key()]), Ok(()));
        let (pk, sig) = sign_anchor(&k, 1, &h(HASH1));
        assert_eq!(hex::encode(pk), PUBLIC);
        assert_eq!(hex::encode(sig), ANCHOR_SIG);
    }

    #[test]
    fn ed25519_is_rfc_8032() {
        // RFC 8032 section 7.1, TEST 1 (empty message): the library signs
        // plain Ed25519, so checkpoints verify with any conforming tool.
        let k = SigningKey::from_bytes(&h(
            "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        ));
        assert_eq!(
            hex::encode(k.verifying_key().to_bytes()),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        );
        assert_eq!(
            hex::encode(k.sign(b"").to_bytes()),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        );
    }
}
