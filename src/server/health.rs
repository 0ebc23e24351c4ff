//! `GET /healthz` (no auth): the operator's own databases, Hermes' state.db,
//! and whether Hermes' API server would take a chat turn now (issue 22: an
//! uptime check must notice that chat is broken, not only that the process
//! answers).
//!
//! - `ok` (200): everything works.
//! - `degraded` (200): the operator's own databases work — logins, accounts,
//!   audit and the dashboard are served — but chat or sessions are not:
//!   Hermes' state.db is missing or unreadable, or Hermes' API server does not
//!   answer, refuses our key, fails, or no key is configured. 200 and not
//!   503 on purpose: restarting the operator (what a load balancer or
//!   `update`'s health check does with a 503) cannot mend Hermes, and would
//!   take the working half down with it. An uptime check that must alert on
//!   broken chat matches `"status":"ok"` in the body, or reads `hermes.status`.
//! - `down` (503): users.db or events.db cannot be opened, or shutting down.
//!
//! Every answer says `"service": "hermes-operator"`, so `doctor` and `update`
//! know it is ours whatever its state. Unauthenticated, so it must be cheap:
//! the databases are opened and Hermes asked at most once per
//! [`state::HEALTH_TTL`] (one request does it, the others wait for its
//! answer), so a change shows within a second and a flood of requests costs
//! no SQLite work and no requests to Hermes. No paths or addresses in the
//! answer.

use super::errors::{self, ApiResult};
use super::state::{self, FailedDbs};
use super::S;
use crate::hermes::api::ApiHealth;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// How long `/healthz` waits for Hermes' API server: a gateway that hangs is
/// reported as unreachable rather than hanging the uptime check with it.
const HERMES_PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Hermes' API server, as `/healthz` last found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HermesHealth {
    /// No Hermes API key (`hermes.api_key_env` unset): no chat turn can start.
    Unconfigured,
    Api(ApiHealth),
}

impl HermesHealth {
    fn status(self) -> &'static str {
        match self {
            HermesHealth::Unconfigured => "unconfigured",
            HermesHealth::Api(ApiHealth::Ok) => "ok",
            HermesHealth::Api(ApiHealth::Unreachable(_)) => "unreachable",
            HermesHealth::Api(ApiHealth::Unauthorized) => "unauthorized",
            HermesHealth::Api(ApiHealth::Failing(_)) => "failing",
        }
    }

    /// Why chat is broken, in words an operator can act on (None: it works).
    fn reason(self) -> Option<String> {
        Some(match self {
            HermesHealth::Api(ApiHealth::Ok) => return None,
            HermesHealth::Unconfigured => {
                "no Hermes API key is configured (hermes.api_key_env); chat turns fail".into()
            }
            HermesHealth::Api(ApiHealth::Unreachable(why)) => format!(
                "Hermes' API server does not answer ({why}); chat turns fail until it runs"
            ),
            HermesHealth::Api(ApiHealth::Unauthorized) => "Hermes' API server refuses the operator's API key; hermes.api_key_env must equal the gateway's API_SERVER_KEY".into(),
            HermesHealth::Api(ApiHealth::Failing(code)) => {
                format!("Hermes' API server answers HTTP {code}; chat turns may fail")
            }
        })
    }
}

/// One check's findings, cached for [`state::HEALTH_TTL`].
#[derive(Debug, Clone)]
pub struct Checked {
    /// Databases that could not be opened, with why.
    failed: FailedDbs,
    hermes: HermesHealth,
}

/// What `check_databases` says of a state.db that does not exist (yet).
const STATE_MISSING: &str = "missing";

pub async fn healthz(State(st): State<S>) -> Response {
    if st.shutting_down.load(Ordering::Acquire) {
        return health_answer(&st, "down", Some("shutting down".into()), &[], None);
    }
    let mut cached = st.health.lock().await;
    let Checked { failed, hermes } = match &*cached {
        Some((at, c)) if at.elapsed() < state::HEALTH_TTL => c.clone(),
        _ => {
            // Both at once: the request waits for the slower, not the sum.
            let (dbs, hermes) = tokio::join!(check_databases(&st), check_hermes(&st));
            let failed = dbs.unwrap_or_else(|e| vec![("users.db", e.message)]);
            let c = Checked { failed, hermes };
            *cached = Some((std::time::Instant::now(), c.clone()));
            c
        }
    };
    drop(cached);
    let own: Vec<&str> = failed
        .iter()
        .filter(|(n, _)| *n != "state.db")
        .map(|(n, _)| *n)
        .collect();
    let detail = || {
        let d: Vec<String> = failed.iter().map(|(n, m)| format!("{n}: {m}")).collect();
        d.join("; ")
    };
    if !own.is_empty() {
        let reason = format!(
            "cannot open {}",
            own.iter()
                .map(|n| if *n == "fleet" {
                    "the fleet's database"
                } else {
                    n
                })
                .collect::<Vec<_>>()
                .join(", ")
        );
        let mut r = health_answer(&st, "down", Some(reason), &failed, Some(hermes));
        r.extensions_mut().insert(errors::ErrorDetail(detail()));
        return r;
    }
    let state_reason = failed.first().map(|(_, m)| {
        if m == STATE_MISSING {
            "Hermes has not written state.db yet; start Hermes or check HERMES_HOME"
        } else {
            "Hermes' state.db cannot be read; the server log has details"
        }
    });
    let reasons: Vec<String> = state_reason
        .map(str::to_string)
        .into_iter()
        .chain(hermes.reason())
        .collect();
    if reasons.is_empty() {
        let ok = if st.app.in_fleet() {
            HEALTH_OK_FLEET.as_str()
        } else {
            HEALTH_OK.as_str()
        };
        return ([(header::CONTENT_TYPE, "application/json")], ok).into_response();
    }
    let mut r = health_answer(
        &st,
        "degraded",
        Some(reasons.join("; ")),
        &failed,
        Some(hermes),
    );
    if failed.first().is_some_and(|(_, m)| m != STATE_MISSING) {
        r.extensions_mut().insert(errors::ErrorDetail(detail()));
    }
    r
}

/// The `hermes` object of an answer (`null` when not checked: shutting down).
fn hermes_json(h: Option<HermesHealth>) -> serde_json::Value {
    match h {
        None => serde_json::Value::Null,
        Some(h) => serde_json::json!({"status": h.status(), "reason": h.reason()}),
    }
}

fn health_answer(
    st: &S,
    status: &str,
    reason: Option<String>,
    failed: &[(&str, String)],
    hermes: Option<HermesHealth>,
) -> Response {
    let db = |name: &str| match failed.iter().find(|(n, _)| *n == name) {
        None => "ok",
        Some((_, m)) if m == STATE_MISSING => "missing",
        Some(_) => "unavailable",
    };
    let mut body = serde_json::json!({
        "status": status,
        "service": "hermes-operator",
        "version": env!("CARGO_PKG_VERSION"),
        "reason": reason,
        "databases": databases(st.app.in_fleet(), db),
        "hermes": hermes_json(hermes),
    });
    let code = if status == "down" {
        // Also an error in the shape of every other error.
        body["error"] = serde_json::json!({"code": "busy", "message": reason});
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    let mut r = (code, Json(body)).into_response();
    if code == StatusCode::SERVICE_UNAVAILABLE {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    r
}

/// The `databases` object: the accounts' store is users.db, or in a fleet
/// the fleet's database (`fleet`).
fn databases(fleet: bool, db: impl Fn(&str) -> &'static str) -> serde_json::Value {
    let accounts = if fleet { "fleet" } else { "users.db" };
    serde_json::json!({accounts: db(accounts), "events.db": db("events.db"), "state.db": db("state.db")})
}

fn health_ok(fleet: bool) -> String {
    serde_json::json!({
        "status": "ok",
        "service": "hermes-operator",
        "version": env!("CARGO_PKG_VERSION"),
        "reason": null,
        "databases": databases(fleet, |_| "ok"),
        "hermes": hermes_json(Some(HermesHealth::Api(ApiHealth::Ok))),
    })
    .to_string()
}

static HEALTH_OK: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| health_ok(false));
static HEALTH_OK_FLEET: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| health_ok(true));

/// Hermes' API server with the key a chat turn would use (the client is
/// re-read when Hermes' `.env` changes, so a fixed key shows within a second).
async fn check_hermes(st: &S) -> HermesHealth {
    match st.hermes() {
        Err(_) => HermesHealth::Unconfigured,
        Ok(client) => HermesHealth::Api(client.probe(HERMES_PROBE_TIMEOUT).await),
    }
}

/// The databases that cannot be opened, with why (state.db that does not
/// exist: [`STATE_MISSING`]).
async fn check_databases(st: &S) -> ApiResult<FailedDbs> {
    let st2 = st.clone();
    state::blocking(move || {
        let mut failed = Vec::new();
        // Fresh handles, never pooled ones: the question is whether each
        // file can be opened and read now.
        let home = &st2.app.home;
        if st2.app.in_fleet() {
            // The accounts live in the fleet's database: whether it answers.
            if let Err(e) = st2.app.users_ro().and_then(|u| u.find_by_id("")) {
                failed.push(("fleet", e.message));
            }
        } else if let Err(e) = crate::store::users::UserStore::open_readonly(&home.users_db()) {
            failed.push(("users.db", e.message));
        }
        if let Err(e) = crate::store::events::EventStore::open_readonly(&home.events_db()) {
            failed.push(("events.db", e.message));
        }
        if !home.state_db().exists() {
            failed.push(("state.db", STATE_MISSING.to_string()));
        } else if let Err(e) = crate::store::state::StateDb::open_readonly(&home.state_db()) {
            failed.push(("state.db", e.message));
        }
        Ok(failed)
    })
    .await
}
