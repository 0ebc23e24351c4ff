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
