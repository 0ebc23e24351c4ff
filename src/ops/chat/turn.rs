//! One turn: checks, the session row, the budget reservation, the outcome.

use super::*;
use crate::store::events::EventKind;
use crate::store::users::Reservation;

/// How long a turn's end waits for the accounts' store to settle its
/// budget reservation when the store is away.
const SETTLE_PATIENCE: std::time::Duration = std::time::Duration::from_secs(15);

/// Run one turn. `on_event` sees progress as it happens; `approver` answers
/// approval requests. On error an `error` event is recorded and the session
/// is left consistent (a new session that Hermes never wrote to is removed).
#[expect(
    clippy::too_many_lines,
    reason = "the turn's checks and bookkeeping in order (message, model, session row, budget, drive, settle); every branch must leave the session consistent"
)]
pub async fn run_turn(
    _on: OwnThread,
    app: &App,
    client: &HermesClient,
    req: &TurnRequest,
    approver: &dyn Approver,
    on_event: &mut (dyn FnMut(TurnEvent) + Send),
) -> Result<TurnOutcome> {
    if req.message.trim().is_empty() {
        return Err(Error::usage("the message is empty"));
    }
    if req.message.len() > 100_000 {
        return Err(Error::usage("the message is longer than 100,000 bytes"));
    }
    // terminal.approval_mode: an operator session never runs a dangerous
    // command less supervised than the operator's config says.
    if let Err((problem, fix)) =
        crate::hermes::settings::check_approvals(&app.home, app.cfg.config.terminal.approval_mode)
    {
        return Err(Error::config(problem).hint(fix));
    }
    if let Err((problem, fix)) = crate::hermes::settings::check_terminal(&app.home, &app.cfg.config)
    {
        return Err(Error::config(problem).hint(fix));
    }
    if let Err((problem, fix)) = crate::hermes::settings::check_storage(&app.home) {
        return Err(Error::config(problem).hint(fix));
    }
    let t0 = Instant::now();
    let mut pre_wait = std::time::Duration::ZERO;
    let user = chat_user(app, &req.username)?;
    if req.channel != Channel::Cli {
        if let Err(e) = precheck_budget(app, &user) {
            // An SSE stream carries only events: say why it ends.
            on_event(TurnEvent::Error {
                code: e.kind.code().into(),
                message: e.message.clone(),
            });
            return Err(e);
        }
    }
    if let Some(m) = &req.model {
        let t = Instant::now();
        let models = client.models().await?;
        pre_wait += t.elapsed();
        if !models.iter().any(|x| x == m) {
            return Err(Error::usage(format!(
                "unknown model {:?}; Hermes offers: {}",
                crate::output::clip(m, 60),
                models.join(", ")
            ))
            .hint("models are Hermes' configured model and its platforms.api_server.extra.model_routes aliases"));
        }
    }
    let (session, new_session, state_db, start_event) = match &req.session_id {
        Some(id) => {
            let db = app.state_ro()?;
            (continuable(&db, &user, id)?, false, db, None)
        }
        None => {
            // Fail fast (before creating anything) when Hermes is down or
            // rejects our key: /v1/models needs the key, /health does not.
            // With --model the list was fetched (and the key proven) above.
            if req.model.is_none() {
                let t = Instant::now();
                client.verify_key().await?;
                pre_wait += t.elapsed();
            }
            let db = app.state_rw()?;
            // Flushed with Hermes' first write of this turn (Flush::WithHermes).
            let (s, start) = crate::ops::sessions::create_session_row(
                app,
                &db,
                &user,
                crate::store::state::Flush::WithHermes,
            )?;
            (s, true, db, Some(start))
        }
    };
    let (user_id, role) = (user.id.clone(), user.role);
    let turn = Turn {
        app,
        user,
        session_id: session.id.clone(),
        run_id: None,
        new_session,
        events: std::sync::Mutex::new(app.events()?),
        state: std::sync::Mutex::new(state_db),
        start_event: std::sync::Mutex::new(start_event),
        caller: crate::ops::standing::TurnCaller {
            user_id: user_id.clone(),
            role,
            key_id: req.key_id.clone(),
            token_version: req.token_version,
        },
    };
    on_event(TurnEvent::Session {
        session_id: turn.session_id.clone(),
        new: new_session,
    });
    let mut turn = turn;
    // The hook reads the turn's tool policy (a key's narrower toolsets) from
    // the session's marker: write it before Hermes can call a tool.
    if let Err(e) = crate::ops::hooks::set_turn_policy(
        &app.home,
        &turn.session_id,
        &turn.caller,
        req.toolsets.as_deref(),
    ) {
        return Err(fail(&turn, "policy", e, on_event));
    }
    let reservation = match reserve(&turn) {
        Ok(r) => r,
        Err(e) => {
            // The caller was told about the session: tell it why the turn ended.
            return Err(fail(&turn, "budget", e, on_event));
        }
    };
    let result = drive(&mut turn, client, req, &session, approver, on_event).await;
    let (actual, outcome) = match result {
        Ok((o, spent)) => (spent, Ok(o)),
        Err((e, spent)) => (spent, Err(e)),
    };
    if let Some(r) = reservation {
        // An unsettled reservation holds the user's next turns for an hour
        // (OPEN_RESERVATION_HOLDS_SECS): a store that is briefly away (the
        // fleet's PostgreSQL restarting) is waited for, a little.
        let mut waited = std::time::Duration::ZERO;
        loop {
            match app.users().and_then(|u| u.settle_budget(&r, actual)) {
                Ok(()) => break,
                Err(e) if e.kind == Kind::Unavailable && waited < SETTLE_PATIENCE => {
                    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                    waited += std::time::Duration::from_millis(500);
                }
                Err(e) => {
                    // The turn itself is done; say loudly that the ledger lags.
                    tracing::warn!("warning: could not settle the budget reservation {r}: {e}");
                    break;
                }
            }
        }
    }
    match outcome {
        Ok(mut o) => {
            o.hermes_ms += pre_wait.as_secs_f64() * 1e3;
            o.operator_ms = (t0.elapsed().as_secs_f64() * 1e3 - o.hermes_ms).max(0.0);
            on_event(TurnEvent::Done(o.clone()));
            Ok(o)
        }
        Err(e) => Err(fail(&turn, "run", e, on_event)),
    }
}

/// Record an `error` event (best effort: the original error wins) and tidy
/// up a new session Hermes never wrote to.
/// The one way a started turn ends in failure: the `error` event (and a
/// new session Hermes never wrote to removed), then the caller told why.
pub(super) fn fail(
    turn: &Turn,
    stage: &str,
    e: Error,
    on_event: &mut (dyn FnMut(TurnEvent) + Send),
) -> Error {
    let _ = turn.record(
        EventKind::Error,
        json!({"stage": stage, "code": e.kind.code(), "message": e.message, "run_id": turn.run_id}),
    );
    if turn.new_session {
        if let Ok(db) = turn.app.state_rw() {
            if let Ok(true) = db.delete_empty_operator_session(&turn.session_id) {
                let _ = turn.record(
                    EventKind::SessionEnd,
                    json!({"reason": "first turn failed; empty session removed"}),
                );
            }
        }
    }
    on_event(TurnEvent::Error {
        code: e.kind.code().into(),
        message: e.message.clone(),
    });
    e
}

pub(super) fn utc_day() -> String {
    chrono::Utc::now().format("%Y-%m-%d").to_string()
}

/// Reserve the turn's share of the user's daily budget, if one is set.
pub(super) fn reserve(turn: &Turn) -> Result<Option<String>> {
    let b = &turn.app.cfg.config.budget;
    let Some(limit) = b.user_daily_usd else {
        return Ok(None);
    };
    let users = turn.app.users()?;
    match users.reserve_budget(
        &turn.user.id,
        &utc_day(),
        &turn.session_id,
        b.turn_reserve_usd,
        limit,
    )? {
        Reservation::Made(id) => Ok(Some(id)),
        refused => Err(budget_refusal(&turn.user, limit, refused)),
    }
}

/// Refuse a remote turn that [`reserve`] would refuse, before anything is
/// written. Over HTTP a refused turn can be repeated as fast as requests
/// can be sent, and a refusal recorded after the session row costs three
/// events (`session_start`, `error`, `session_end`): answered here, it
/// costs an access-log line. Read only, so only a hint: a turn that passes
/// and then loses the race is refused (and recorded) by [`reserve`].
pub(super) fn precheck_budget(app: &App, user: &User) -> Result<()> {
    let b = &app.cfg.config.budget;
    let Some(limit) = b.user_daily_usd else {
        return Ok(());
    };
    let refused = app
        .users_ro()?
        .run(|u| u.budget_precheck(&user.id, &utc_day(), b.turn_reserve_usd, limit))?;
    match refused {
        Some(r) => Err(budget_refusal(user, limit, r)),
        None => Ok(()),
    }
}

/// The error for a refused reservation.
fn budget_refusal(user: &User, limit: f64, refused: Reservation) -> Error {
    match refused {
        // A turn's cost is known only when it ends: one at a time is what
        // keeps the day's spend within the bound README states.
        Reservation::OtherTurnOpen => Error::busy(format!(
            "another turn of {} is running against the daily budget of ${limit:.2}; with a daily budget an account's turns run one at a time",
            user.username
        ))
        .reason(crate::error::Reason::Throttled {
            retry_after_secs: 5,
        })
        .hint("retry when the other turn has ended"),
        Reservation::Spent(used) => Error::permission(format!(
            "daily budget of ${limit:.2} for {} is spent (${used:.4} used or reserved today, UTC)",
            user.username
        ))
        .reason(crate::error::Reason::BudgetSpent)
        .hint("an admin can raise budget.user_daily_usd in profiles/operator/config.yaml; the budget resets at 00:00 UTC"),
        Reservation::Made(id) => Error::internal(format!(
            "budget reservation {id} was made, not refused"
        )),
    }
}
