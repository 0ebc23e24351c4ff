use crate::cli::Ctx;
use crate::store::events::GENESIS;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Session id (op_...)
    pub session: String,
}

#[derive(serde::Serialize)]
struct Row<'a> {
    #[serde(flatten)]
    event: &'a crate::store::events::Event,
    /// "ok": the event matches its hash and links to the event before it.
    integrity: &'static str,
}

pub fn run(ctx: &Ctx, a: Args) -> crate::Result<()> {
    crate::sessions::validate_session_id(&a.session)?;
    let store = ctx.app.events_ro()?;
    let events = store.for_session(&a.session)?;
    if events.is_empty() {
        return Err(crate::Error::not_found(format!(
            "no events recorded for session {}",
            crate::output::sanitize(&a.session)
        ))
        .hint("`hermes-operator session list` shows operator sessions"));
    }
    // Each event is checked against its own hash and against the hash of the
    // event just before it in the log (seq - 1), so the timeline shows local
    // tampering; `audit verify` proves the whole chain.
    let mut rows = Vec::with_capacity(events.len());
    let mut all_ok = true;
    for ev in &events {
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
            store
                .hash_at(ev.seq - 1)?
                .is_some_and(|h| h == ev.prev_hash)
        };
        let ok = own && linked;
        all_ok &= ok;
        rows.push(Row {
            event: ev,
            integrity: if ok { "ok" } else { "bad" },
        });
    }
    if ctx.out.json {
        ctx.out.json(&serde_json::json!({
            "session_id": a.session,
            "integrity": if all_ok { "ok" } else { "bad" },
            "events": rows,
        }))?;
    } else {
        let mut t = ctx
            .out
            .table(&["seq", "time (UTC)", "type", "actor", "", "details"]);
        for r in &rows {
            t.add_row(vec![
                r.event.seq.to_string(),
                r.event
                    .ts
                    .get(..19)
                    .unwrap_or(&r.event.ts)
                    .replace('T', " "),
                r.event.kind.clone(),
                crate::output::sanitize(&r.event.actor),
                if r.integrity == "ok" { "✓" } else { "✗" }.to_string(),
                super::summarize(r.event),
            ]);
        }
        ctx.out.print_table(&t)?;
        ctx.out.info(format!(
            "{} event(s); integrity: {}",
            rows.len(),
            if all_ok {
                "ok (run `audit verify` for the whole chain)"
            } else {
                "FAILED"
            }
        ));
    }
    if all_ok {
        Ok(())
    } else {
        Err(crate::Error::integrity(format!(
            "session {} has events that do not verify",
            a.session
        )))
    }
}
