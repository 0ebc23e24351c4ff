use crate::cli::Ctx;
use crate::ops::audit::integrity::{self, Checkpoint};
use crate::store::events::EventKind;

pub fn run(ctx: &Ctx) -> crate::Result<()> {
    let app = &ctx.app;
    let key = integrity::signing_key(&app.home)?;
    let store = app.events()?;
    // Refuse to vouch for a chain that does not verify.
    let r = integrity::verify(&*store, &[key.verifying_key()], &[])?;
    if let Some(p) = r.problem {
        return Err(crate::Error::integrity(format!(
            "not signing: the log does not verify ({})",
            p.message
        )));
    }
    let (seq, hash) = store.head()?;
    let event_id = store.get(seq)?.map(|e| e.id);
    let cp = Checkpoint::sign(&key, seq, &hash, event_id);
    integrity::keep_checkpoint(&app.home, &cp)?;
    app.record(app.event(
        EventKind::Checkpoint,
        serde_json::json!({"seq": cp.seq, "hash": cp.hash, "public_key": cp.public_key}),
    ))?;
    ctx.out.line(cp.to_line())?;
    ctx.out.info(format!(
        "checkpoint at seq {seq} signed; a copy is in {} — keep this line off-host too",
        app.home.checkpoints_file().display()
    ));
    Ok(())
}
