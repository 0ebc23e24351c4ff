//! `hermes-operator serve`: the embedded HTTP mode (docs/design.md §9). A thin layer
//! over the same library calls the CLI makes; every route is in
//! [`routes`] (and, checked by a test, in `openapi.json`).
//!
//! Layers, outside in: CORS (only for `operator.cors_origins`) → the frame
//! ([`middleware::frame`]: request id, client address, security headers,
//! JSON errors, access log) → body limit ([`BODY_LIMIT`]) → request timeout
//! ([`REQUEST_TIMEOUT`], not on `/api/chat`, whose SSE streams run as long
//! as the turn) → routes. Authentication is the [`extract::Caller`] extractor;
//! every handler's first argument is a guard from [`extract`] (`Reader`,
//! `LoginCaller`, `ChatCaller`, `AdminCaller`, …) that says who may call
//! it, decided from the caller's one [`extract::Permissions`] value.

pub mod access_log;
pub mod assets;
pub mod audit;
pub mod auth;
pub mod cache;
pub mod chat;
pub mod errors;
pub mod extract;
pub mod health;
pub mod keys;
pub mod listen;
pub mod middleware;
pub mod openai;
pub mod parse_errors;
pub mod route;
pub mod sessions;
pub mod sso;
pub mod state;
pub mod usage;
pub mod users;

use crate::app::App;
use crate::error::{Error, Result};
use axum::extract::{Request, State};
use axum::handler::Handler;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use axum::{Json, Router};
use errors::{ApiError, ApiResult};
use state::ServerState;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// Largest request body accepted (413 above).
pub const BODY_LIMIT: usize = 64 * 1024;
/// Longest request URI (414 beyond), most request headers and their total
/// size (431 beyond). Checked by the server itself so the answer has the
/// JSON error body; hyper's own limits (`server/listen.rs`) sit far above
/// these and only cut off what no client sends.
pub const MAX_URI: usize = 8 * 1024;
pub const MAX_HEADERS: usize = 100;
pub const MAX_HEADER_BYTES: usize = 32 * 1024;
/// Every request but `/api/chat` must be answered within this (408).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The OpenAPI 3 description of every route (hand-written; a test keeps it
/// and [`route_table`] equal).
pub const OPENAPI_JSON: &str = include_str!("openapi.json");

type S = Arc<ServerState>;

/// A router that remembers (method, path) of everything it routes.
struct Routes {
    router: Router<S>,
    table: Vec<(&'static str, &'static str)>,
}

impl Routes {
    fn new() -> Self {
        Routes {
            router: Router::new(),
            table: Vec::new(),
        }
    }
    fn add(mut self, method: &'static str, path: &'static str, mr: MethodRouter<S>) -> Self {
        self.table.push((method, path));
        self.router = self.router.route(path, mr);
        self
    }
    fn get<H: Handler<T, S>, T: 'static>(self, path: &'static str, h: H) -> Self {
        self.add("GET", path, axum::routing::get(h))
    }
    fn post<H: Handler<T, S>, T: 'static>(self, path: &'static str, h: H) -> Self {
        self.add("POST", path, axum::routing::post(h))
    }
    fn patch<H: Handler<T, S>, T: 'static>(self, path: &'static str, h: H) -> Self {
        self.add("PATCH", path, axum::routing::patch(h))
    }
    fn delete<H: Handler<T, S>, T: 'static>(self, path: &'static str, h: H) -> Self {
        self.add("DELETE", path, axum::routing::delete(h))
    }
}

/// Every route: (timed routes, untimed routes).
fn routes() -> (Routes, Routes) {
    let timed = Routes::new()
        .get("/", dashboard)
        .get("/healthz", health::healthz)
        .get("/api/openapi.json", openapi)
        .post("/auth/login", auth::login)
        .post("/auth/register", auth::register)
        .post("/auth/refresh", auth::refresh)
        .post("/auth/logout", auth::logout)
        .get("/auth/methods", sso::methods)
        .get("/auth/oidc/start", sso::start)
        .get("/auth/oidc/callback", sso::callback)
        .post("/auth/oidc/exchange", sso::exchange)
        .get("/api/me", auth::me)
        .post("/api/me/password", auth::change_password)
        .post("/api/me/totp", auth::totp_begin)
        .post("/api/me/totp/confirm", auth::totp_confirm)
        .get("/api/models", models)
        .post("/api/sessions/{id}/approval", chat::approval)
        .get("/api/approvals", chat::pending)
        .get("/api/sessions", sessions::list)
        .get("/api/sessions/{id}", sessions::show)
        .get("/api/sessions/{id}/messages", sessions::messages)
        .patch("/api/sessions/{id}", sessions::rename)
        .post("/api/sessions/{id}/end", sessions::end)
        .get("/api/sessions/{id}/export", sessions::export)
        .get("/api/search", sessions::search)
        .get("/api/audit/daily-summary", audit::daily)
        .get("/api/audit/user/{username}", audit::user)
        .get("/api/audit/replay/{session_id}", audit::replay)
        .get("/api/audit/verify", audit::verify)
        .get("/api/audit/events", audit::events)
        .get("/api/usage", usage::usage)
        .get("/api/keys", keys::list)
        .post("/api/keys", keys::create)
        .delete("/api/keys/{id}", keys::revoke)
        .get("/v1/models", openai::models)
        .get("/api/users", users::list)
        .patch("/api/users/{username}", users::patch)
        .delete("/api/users/{username}", users::delete)
        .post("/api/users/{username}/password", users::reset_password);
    // Chat turns (and their SSE streams) last as long as the agent works.
    let untimed = Routes::new()
        .post("/api/chat", chat::chat)
        .post("/v1/chat/completions", openai::chat_completions);
    (timed, untimed)
}

/// (METHOD, path) of every route the router serves.
pub fn route_table() -> Vec<(&'static str, &'static str)> {
    let (a, b) = routes();
    a.table.into_iter().chain(b.table).collect()
}

/// The whole application: routes, layers, state.
pub fn router(st: Arc<ServerState>) -> Router {
    use tower_http::cors::{AllowOrigin, CorsLayer};
    use tower_http::limit::RequestBodyLimitLayer;
    use tower_http::timeout::TimeoutLayer;

    let (timed, untimed) = routes();
    let mut r = timed
        .router
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .merge(untimed.router)
        .fallback(fallback)
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT))
        .layer(axum::middleware::from_fn_with_state(
            st.clone(),
            middleware::frame,
        ))
        .with_state(st.clone());
    let origins: Vec<HeaderValue> = st
        .app
        .cfg
        .config
        .operator
        .cors_origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    if !origins.is_empty() {
        r = r.layer(
            CorsLayer::new()
                .allow_origin(AllowOrigin::list(origins))
                .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::DELETE])
                .allow_headers([
                    header::AUTHORIZATION,
                    header::CONTENT_TYPE,
                    header::ACCEPT,
                    header::HeaderName::from_static("x-request-id"),
                    header::HeaderName::from_static(openai::SESSION_HEADER),
                ])
                .expose_headers([
                    header::HeaderName::from_static("x-request-id"),
                    header::HeaderName::from_static(openai::SESSION_HEADER),
                    header::RETRY_AFTER,
                ])
                .max_age(Duration::from_secs(600)),
        );
    }
    r
}

async fn fallback(req: Request) -> Response {
    match assets::serve(req.method(), req.uri().path()) {
        Some(r) => r,
        None => ApiError::new(StatusCode::NOT_FOUND, "no such route").into_response(),
    }
}

async fn dashboard(req: Request) -> Response {
    assets::serve(req.method(), "/").unwrap_or_else(|| StatusCode::NOT_FOUND.into_response())
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI_JSON).into_response()
}

/// `GET /api/models` (every role): Hermes' configured model and route aliases.
async fn models(State(st): State<S>, _caller: extract::Reader) -> ApiResult<Response> {
    let client = st.hermes()?;
    let models = client.models().await?;
    Ok(Json(serde_json::json!({
        "default": st.app.cfg.config.model.default,
        "models": models,
    }))
    .into_response())
}

/// How `serve` runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// `ADDR:PORT` (host names are resolved).
    pub bind: String,
    /// After SIGTERM/SIGINT: how long in-flight requests and chat turns may
    /// take before running turns are stopped through Hermes.
    pub grace: Duration,
    /// How long a client may take to send a request's headers, and then its
    /// JSON body (and how long an idle keep-alive connection stays open).
    pub read_timeout: Duration,
    /// Serving `demo`'s throwaway home: the dashboard says so in its header.
    pub demo: bool,
    /// Shut down when notified instead of on SIGTERM/SIGINT: `demo` takes
    /// its signals (SIGHUP and SIGQUIT too) on a thread of its own, from
    /// before its home exists, so that no signal can leave the home behind.
    pub stop: Option<Arc<tokio::sync::Notify>>,
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// One listener on the fleet's database per replica, for what other
/// replicas announce: answers to approvals waiting here, and changes to the
/// accounts (the session list's cache depends on them). It reconnects while
/// the database is away; answers given meanwhile are looked up when it is
/// back, and the cache does not trust itself until then.
fn spawn_fleet_listener(st: S) {
    use crate::store::pg::{approvals, listen, USERS_CHANGED};
    let replica = format!(
        "{}/{}/{}",
        st.fleet_host.as_deref().unwrap_or("?"),
        std::process::id(),
        crate::crypto::random_hex(4)
    );
    st.approvals
        .join_fleet(st.app.as_actor(st.app.actor.name().to_string()), replica);
    std::thread::spawn(move || loop {
        let r = st
            .app
            .fleet_db()
            .and_then(|pg| pg.another())
            .and_then(|conn| {
                listen(
                    &conn,
                    &[approvals::CHANNEL, USERS_CHANGED],
                    std::time::Duration::from_secs(5),
                    |h| {
                        st.fleet_changes.heard(&h);
                        st.approvals.heard(&h);
                    },
                )
            });
        st.fleet_changes.lost();
        if let Err(e) = r {
            tracing::debug!("fleet listener: {}; again in 1 s", e.message);
        }
        std::thread::sleep(std::time::Duration::from_secs(1));
    });
}

/// Expired and superseded tokens, and API keys dead for more than a day,
/// go at start and every [`PURGE_EVERY`], so users.db stays bounded however
/// clients behave.
fn spawn_token_purge(st: S) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(PURGE_EVERY);
        loop {
            every.tick().await;
            if !st.app.in_fleet() && !st.app.home.users_db().exists() {
                continue;
            }
            let st2 = st.clone();
            let r = tokio::task::spawn_blocking(move || crate::ops::logins::purge_tokens(&st2.app))
                .await;
            if let Ok(Err(e)) = r {
                tracing::error!("hermes-operator serve: purging expired tokens failed: {e}");
            }
            let st2 = st.clone();
            let r =
                tokio::task::spawn_blocking(move || crate::ops::keys::purge_dead(&st2.app)).await;
            if let Ok(Err(e)) = r {
                tracing::error!("hermes-operator serve: purging dead API keys failed: {e}");
            }
        }
    });
}

/// With `store.url` set: this host's new events copied to the fleet's
/// database every [`SHIP_EVERY`] (`ops::audit::fleet::ship_events`), and
/// the operator sessions they touched published (`ops::fleet`), on a
/// thread of its own; PostgreSQL away is logged once and retried, and
/// never stops `serve` (events.db stays the host's log).
fn spawn_fleet_shipper(st: S) {
    let Some(url) = st.app.cfg.config.store.url.clone() else {
        return;
    };
    let spawned = std::thread::Builder::new()
        .name("fleet-shipper".into())
        .spawn(move || {
            let mut shipper = crate::ops::fleet::Shipper::new(url);
            let mut last_error = String::new();
            while !st.shutting_down.load(std::sync::atomic::Ordering::Relaxed) {
                match shipper.tick(&st.app) {
                    Ok(host) => {
                        if !last_error.is_empty() {
                            tracing::info!("hermes-operator serve: shipping events to the fleet's database again (host {host})");
                            last_error.clear();
                        }
                    }
                    Err(e) => {
                        let msg = e.to_string();
                        if msg != last_error {
                            tracing::warn!("hermes-operator serve: cannot ship events to the fleet's database: {msg} (retrying every {} s)", SHIP_EVERY.as_secs());
                            last_error = msg;
                        }
                    }
                }
                std::thread::sleep(SHIP_EVERY);
            }
        });
    if let Err(e) = spawned {
        tracing::error!("hermes-operator serve: cannot start the fleet shipper: {e}");
    }
}

/// How often `serve` ships this host's new events to the fleet's database.
const SHIP_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// How often expired tokens are purged from users.db.
const PURGE_EVERY: std::time::Duration = std::time::Duration::from_secs(600);

/// Serve until SIGTERM/SIGINT, then shut down gracefully: stop accepting,
/// let requests and chat turns finish for `grace`, then deny pending
/// approvals and stop the remaining runs through Hermes (their events are
/// recorded as the turns end), and give up after 10 s more.
#[expect(
    clippy::too_many_lines,
    reason = "the serve lifecycle in order (state, warm-up, listen, then the graceful shutdown and its two deadlines); split, the shutdown sequence would be hard to follow"
)]
pub async fn run(app: App, opts: Options) -> Result<()> {
    let mut st = ServerState::new(app, access_log::AccessLog::stderr(), opts.read_timeout)?;
    st.demo = opts.demo;
    let st = Arc::new(st);
    // The constant-time path for unknown users needs its dummy hash: make it now.
    tokio::task::spawn_blocking(|| crate::ops::credentials::dummy_verify("warm-up"))
        .await
        .map_err(|e| Error::internal(e.to_string()))?;
    if st.app.in_fleet() {
        // The accounts live in the fleet's database: a host whose own were
        // never moved there refuses to start (nobody could log in); the
        // database being away only warns (requests answer 503 until it is
        // back, like any replica's).
        let st2 = st.clone();
        match tokio::task::spawn_blocking(move || st2.app.fleet_db()).await {
            Ok(Err(e)) if e.kind == crate::Kind::Unavailable => {
                tracing::warn!("warning: {}", e.message);
            }
            Ok(Err(e)) => return Err(e),
            Ok(Ok(_)) => {}
            Err(e) => return Err(Error::internal(e.to_string())),
        }
        spawn_fleet_listener(st.clone());
    } else if !st.app.home.users_db().exists() {
        tracing::warn!(
            "warning: no users.db yet: nobody can log in; create the first admin with `hermes-operator user add NAME --role admin`"
        );
    }
    spawn_token_purge(st.clone());
    spawn_fleet_shipper(st.clone());
    let listener = tokio::net::TcpListener::bind(&opts.bind)
        .await
        .map_err(|e| {
            let hint = "choose another --bind ADDR:PORT or set operator.host/operator.port";
            if e.kind() == std::io::ErrorKind::AddrInUse {
                // Usually a second `serve` (or a leftover one): say so, and
                // exit with its own code (README, "Exit codes").
                return Error::port_in_use(format!(
                    "cannot listen on {}: the address is already in use",
                    opts.bind
                ))
                .hint(format!(
                    "is another hermes-operator serve running? (`ss -ltnp` shows who holds it); or {hint}"
                ))
                .with_source(e);
            }
            Error::usage(format!("cannot listen on {}: {e}", opts.bind))
                .hint(hint)
                .with_source(e)
        })?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::internal(e.to_string()))?;
    tracing::info!("hermes-operator serve: listening on http://{addr}");
    // The hook asks here when Hermes runs under another account
    // (docs/design.md §12); without it, such a hook blocks operator tools.
    let _hook = match opts.demo {
        true => None,
        false => match crate::ops::hooks::socket::listen(&st.app.home) {
            Ok(l) => Some(l),
            Err(e) => {
                tracing::warn!("warning: the hook socket is not served: {}", e.message);
                None
            }
        },
    };
    if opts.demo && !addr.ip().to_canonical().is_loopback() {
        // The demo's accounts share one password, printed above: anyone who
        // can reach this address and read it can log in as the admin.
        tracing::warn!(
            "warning: demo listens on {addr}, reachable from other hosts; its sample accounts share the one password printed above (use --bind 127.0.0.1:PORT)"
        );
    }
    let app = router(st.clone());
    let (tx, mut rx) = tokio::sync::watch::channel(false);
    let st_sig = st.clone();
    let grace = opts.grace;
    let stop = opts.stop.clone();
    let signal = async move {
        match stop {
            Some(n) => n.notified().await,
            None => shutdown_signal().await,
        }
        st_sig.shutting_down.store(true, Ordering::Release);
        // Said here, not after the select below: an idle server finishes its
        // graceful shutdown at once, and the select may see that first.
        tracing::info!(
            "hermes-operator serve: shutting down; {} chat turn(s) in flight, grace period {} s",
            st_sig.runs.len(),
            grace.as_secs()
        );
        let _ = tx.send(true);
    };
    let op = &st.app.cfg.config.operator;
    let per_ip = listen::PerIp {
        max: op.max_connections_per_ip as usize,
        exempt: op
            .trusted_proxies
            .iter()
            .filter_map(|p| p.parse().ok())
            .collect(),
    };
    let server = listen::serve(listener, app, opts.read_timeout, per_ip, signal);
    let mut server = std::pin::pin!(server);
    let done = |r: std::io::Result<()>| {
        r.map_err(|e| Error::internal(format!("server: {e}")).with_source(e))
    };
    tokio::select! {
        r = &mut server => {
            if st.shutting_down.load(Ordering::Acquire) {
                tracing::info!("hermes-operator serve: stopped");
            }
            return done(r);
        },
        _ = rx.changed() => {}
    }
    tokio::select! {
        r = &mut server => { tracing::info!("hermes-operator serve: stopped"); return done(r) },
        _ = tokio::time::sleep(opts.grace) => {}
    }
    let left = st.runs.snapshot();
    tracing::info!(
        "hermes-operator serve: grace period over; stopping {} chat turn(s)",
        left.len()
    );
    let client = st.hermes().ok();
    for (session, run) in left {
        st.approvals.deny_at_shutdown(&session);
        if let (Some(c), Some(run)) = (&client, run) {
            if let Err(e) = c.stop_run(&run).await {
                tracing::error!("hermes-operator serve: could not stop run {run}: {e}");
            }
        }
    }
    tokio::select! {
        r = &mut server => { tracing::info!("hermes-operator serve: stopped"); done(r) },
        _ = tokio::time::sleep(Duration::from_secs(10)) => {
            tracing::error!("hermes-operator serve: {} turn(s) did not end; exiting anyway", st.runs.len());
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    /// Every route the router serves is in openapi.json, and vice versa.
    #[test]
    fn openapi_lists_exactly_the_routes() {
        let doc: serde_json::Value = serde_json::from_str(super::OPENAPI_JSON).unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
        let mut documented = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (m, _) in item.as_object().unwrap() {
                if ["get", "post", "patch", "delete", "put", "head", "options"]
                    .contains(&m.as_str())
                {
                    documented.insert((m.to_uppercase(), path.clone()));
                }
            }
        }
        let routed: BTreeSet<(String, String)> = super::route_table()
            .into_iter()
            .map(|(m, p)| (m.to_string(), p.to_string()))
            .collect();
        let missing: Vec<_> = routed.difference(&documented).collect();
        let extra: Vec<_> = documented.difference(&routed).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "routes not documented: {missing:?}; documented but not routed: {extra:?}"
        );
    }
}
