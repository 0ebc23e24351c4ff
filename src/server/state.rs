//! What every request shares: the loaded app (home + config), the JWT
//! secret, a small pool of read-only users.db connections for the per-request
//! token check, pending approvals, running chat turns and the access log
//! writer. Login throttling and token revocation live in users.db, so every
//! `serve` process and every restart sees them.

use super::errors::{ApiError, ApiResult};
use crate::app::App;
use crate::error::{Error, Kind, Result};
use crate::hermes::api::HermesClient;
use crate::ops::chat::PendingApprovals;
use crate::ops::credentials::Claims;
use crate::ops::keys::KeyRefusal;
use crate::store::events::EventStore;
use crate::store::state::StateDb;
use crate::store::users::{ApiKey, User, UserStore};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a chat turn waits for the owner's answer to an approval
/// request before denying it (Hermes' own default timeout is 60 s).
pub const APPROVAL_WAIT: Duration = Duration::from_secs(90);
/// At most this many chat turns run at once (more: 503).
pub const MAX_CHATS: usize = 64;
/// Argon2 verifications (19 MiB each) running at once, and waiting.
pub const MAX_ARGON2_WAITING: usize = 32;

/// Databases that could not be opened, with why.
pub type FailedDbs = Vec<(&'static str, String)>;

/// `/healthz` re-checks the databases and Hermes at most this often.
pub const HEALTH_TTL: Duration = Duration::from_secs(1);

/// The Hermes client as of one version of Hermes' `.env`.
struct HermesSlot {
    env_mtime: Option<std::time::SystemTime>,
    client: std::result::Result<HermesClient, String>,
}

impl HermesSlot {
    fn load(app: &App) -> HermesSlot {
        HermesSlot {
            env_mtime: env_mtime(app),
            client: HermesClient::from_config(&app.home, &app.cfg.config).map_err(|e| e.message),
        }
    }
}

fn env_mtime(app: &App) -> Option<std::time::SystemTime> {
    std::fs::metadata(app.home.hermes_env())
        .and_then(|m| m.modified())
        .ok()
}

/// Chat turns in flight per account, for `operator.max_turns_per_user`.
#[derive(Default)]
pub struct UserTurns {
    map: Mutex<HashMap<String, u32>>,
}

impl UserTurns {
    /// Count one more turn of `user`; false (nothing counted) at `max`.
    pub fn claim(&self, user: &str, max: u32) -> bool {
        let mut m = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let n = m.entry(user.to_string()).or_insert(0);
        if *n >= max {
            return false;
        }
        *n += 1;
        true
    }
    pub fn release(&self, user: &str) {
        let mut m = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = m.get_mut(user) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                m.remove(user);
            }
        }
    }
}

/// Personal API keys in use (this process): each key's requests of the last
/// minute for its `--rpm` limit, and when its `last_used_at` was last
/// written (at most once a minute, so a busy key does not turn every request
/// into a users.db write).
#[derive(Default)]
pub struct KeyUse {
    map: Mutex<HashMap<String, KeyWindow>>,
}

/// One key's requests in the last minute, and its last `last_used_at` write.
type KeyWindow = (std::collections::VecDeque<Instant>, Option<Instant>);

impl KeyUse {
    /// Count a request of `key`; `Err(seconds to wait)` when `rpm` requests
    /// were already made in the last 60 s (the refused one is not counted).
    pub fn admit(&self, key: &str, rpm: Option<u32>, now: Instant) -> Result<(), u64> {
        let mut m = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let minute = std::time::Duration::from_secs(60);
        if m.len() > 10_000 {
            // Keys made and revoked over days would otherwise stay here for
            // the process's life; one idle for a minute has nothing to keep
            // (forgetting its last write costs one more `last_used_at`).
            m.retain(|_, (times, touched)| {
                let last = times.back().copied().max(*touched);
                last.is_some_and(|t| now.duration_since(t) < minute)
            });
        }
        let (times, _) = m.entry(key.to_string()).or_default();
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= minute)
        {
            times.pop_front();
        }
        if let Some(limit) = rpm {
            if times.len() >= limit as usize {
                let oldest = *times.front().unwrap_or(&now);
                let wait = minute.saturating_sub(now.duration_since(oldest));
                return Err(wait.as_secs().max(1));
            }
            times.push_back(now);
        }
        Ok(())
    }

    /// Whether `last_used_at` is due for a write (and note that it is being written).
    pub fn touch_due(&self, key: &str, now: Instant) -> bool {
        let mut m = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let (_, last) = m.entry(key.to_string()).or_default();
        if last.is_some_and(|t| now.duration_since(t) < std::time::Duration::from_secs(60)) {
            return false;
        }
        *last = Some(now);
        true
    }
}

/// Repeatable actions that write an audit event, limited per account per
/// minute over HTTP so no client can grow the event log as fast as it can
/// send requests. (Key creation has its own, stored limit per hour:
/// `store::users::MAX_KEYS_PER_HOUR`.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Renaming and ending sessions (`session_changed`, `session_end`).
    SessionChange,
    /// Making personal API keys (`key_created`).
    KeyCreate,
    /// Revoking personal API keys (`key_revoked`).
    KeyRevoke,
    /// Changing one's own password or second factor (`user_changed`,
    /// `token_issued`), each also an Argon2 check.
    AccountChange,
    /// Logins with the right password (`login`, and a refresh token kept
    /// until it expires); failed ones have their own throttle.
    Login,
    /// Single sign-on callbacks, per client address (each refusal is a
    /// `login_failed` event: a flood of made-up ones must not flood the log).
    SsoCallback,
}

impl Action {
    /// Requests per account in any 60 s.
    pub fn per_minute(self) -> usize {
        match self {
            Action::SessionChange => 30,
            Action::KeyCreate => 10,
            Action::KeyRevoke => 30,
            Action::AccountChange => 10,
            Action::Login => 30,
            Action::SsoCallback => 30,
        }
    }
    /// The 429 of one too many, retry after `secs`.
    fn refused(self, secs: u64) -> ApiError {
        ApiError::throttled(
            format!(
                "too many {} ({} a minute per account); try again in {secs} s",
                self.what(),
                self.per_minute()
            ),
            secs,
        )
    }

    fn what(self) -> &'static str {
        match self {
            Action::SessionChange => "session renames and ends",
            Action::KeyCreate => "API keys made",
            Action::KeyRevoke => "API key revocations",
            Action::AccountChange => "password and two-factor changes",
            Action::Login => "logins",
            Action::SsoCallback => "single sign-on answers from this address",
        }
    }
}

/// Each account's recent [`Action`]s (this process; a restart forgets them,
/// which costs at most one more minute's worth).
#[derive(Default)]
pub struct ActionLimits {
    map: Mutex<HashMap<(String, Action), std::collections::VecDeque<Instant>>>,
}

impl ActionLimits {
    /// Count one `action` of `user`, or refuse it (429 with `Retry-After`,
    /// not counted) when [`Action::per_minute`] were made in the last 60 s.
    pub fn admit(&self, user: &str, action: Action, now: Instant) -> ApiResult<()> {
        let minute = Duration::from_secs(60);
        let mut m = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if m.len() > 10_000 {
            // Only windows with requests in the last minute are worth keeping.
            m.retain(|_, t| t.back().is_some_and(|t| now.duration_since(*t) < minute));
        }
        let times = m.entry((user.to_string(), action)).or_default();
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= minute)
        {
            times.pop_front();
        }
        if times.len() >= action.per_minute() {
            let oldest = *times.front().unwrap_or(&now);
            let wait = minute.saturating_sub(now.duration_since(oldest));
            return Err(action.refused(wait.as_secs_f64().ceil().max(1.0) as u64));
        }
        times.push_back(now);
        Ok(())
    }
}

/// Threads for chat turns, kept once started: a turn does synchronous
/// SQLite work and needs a thread of its own, and starting one per turn
/// cost about 0.2 ms of every turn (benches/openai_bench.py). A thread that
/// finishes a turn waits for the next; there are never more than turns ran
/// at once (at most [`MAX_CHATS`], the `chats` semaphore).
pub struct TurnThreads {
    queue: Mutex<std::sync::mpsc::Sender<TurnJob>>,
    jobs: Arc<Mutex<std::sync::mpsc::Receiver<TurnJob>>>,
    /// Threads waiting for a job and not yet claimed by [`Self::run`].
    idle: Arc<std::sync::atomic::AtomicUsize>,
}

type TurnJob = Box<dyn FnOnce() + Send>;

impl Default for TurnThreads {
    fn default() -> Self {
        let (tx, rx) = std::sync::mpsc::channel();
        TurnThreads {
            queue: Mutex::new(tx),
            jobs: Arc::new(Mutex::new(rx)),
            idle: Arc::default(),
        }
    }
}

impl TurnThreads {
    /// Run `job` on a waiting thread, or on a new one if none waits.
    pub fn run(&self, job: TurnJob) -> std::io::Result<()> {
        use std::sync::atomic::Ordering::{AcqRel, Acquire};
        let queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        let claimed = self
            .idle
            .fetch_update(AcqRel, Acquire, |n| n.checked_sub(1))
            .is_ok();
        if !claimed {
            let (jobs, idle) = (self.jobs.clone(), self.idle.clone());
            std::thread::Builder::new()
                .name("chat-turn".into())
                .spawn(move || loop {
                    let next = jobs.lock().unwrap_or_else(|p| p.into_inner()).recv();
                    let Ok(job) = next else { return };
                    job();
                    idle.fetch_add(1, AcqRel);
                })?;
        }
        // The receiver lives as long as `self`: sending cannot fail.
        let _ = queue.send(job);
        Ok(())
    }
}

/// Chat turns in flight: session id → Hermes run id (once known). Used to
/// refuse a second concurrent turn in one session and, at shutdown, to stop
/// the runs that outlive the grace period.
#[derive(Default)]
pub struct Runs {
    map: Mutex<HashMap<String, Option<String>>>,
}

impl Runs {
    /// Claim `session` for one turn; false if a turn already runs in it.
    pub fn claim(&self, session: &str) -> bool {
        let mut m = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if m.contains_key(session) {
            return false;
        }
        m.insert(session.to_string(), None);
        true
    }
    pub fn set_run(&self, session: &str, run_id: &str) {
        let mut m = self.map.lock().unwrap_or_else(|p| p.into_inner());
        m.insert(session.to_string(), Some(run_id.to_string()));
    }
    pub fn release(&self, session: &str) {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(session);
    }
    pub fn snapshot(&self) -> Vec<(String, Option<String>)> {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
    pub fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

pub struct ServerState {
    /// Home and config, acting as `http` (reads record nothing).
    pub app: App,
    secret: zeroize::Zeroizing<Vec<u8>>,
    /// The Hermes client, or why there is none (no API key configured),
    /// rebuilt when Hermes' `.env` changes (the key may
    /// be set or rotated without restarting `serve`).
    hermes: Mutex<HermesSlot>,
    pub approvals: Arc<PendingApprovals>,
    pub runs: Runs,
    pub user_turns: UserTurns,
    pub key_use: KeyUse,
    /// Per-account limits on repeatable event-writing actions.
    pub actions: ActionLimits,
    /// `/healthz`'s last check: when, the databases that failed and Hermes'
    /// API server.
    pub health: tokio::sync::Mutex<Option<(Instant, super::health::Checked)>>,
    pub argon2: tokio::sync::Semaphore,
    argon2_waiting: AtomicU64,
    pub chats: Arc<tokio::sync::Semaphore>,
    /// The threads chat turns run on (at most [`MAX_CHATS`] busy at once).
    pub turn_threads: TurnThreads,
    trusted: Vec<IpAddr>,
    /// Responses of hot read routes, valid while the databases are unchanged.
    pub read_cache: super::cache::ReadCache,
    pub shutting_down: AtomicBool,
    pub log: super::access_log::AccessLog,
    /// How long a request's headers and then its body may take to arrive.
    pub read_timeout: std::time::Duration,
    /// Serving `demo`'s sample home (`GET /api/me` says so).
    pub demo: bool,
    /// The single sign-on provider (`auth.oidc`), if configured.
    pub sso: Option<Arc<crate::oidc::Provider>>,
    /// This host's name in the fleet (`store.url` set; `/api/me` says it).
    pub fleet_host: Option<String>,
    /// The client for requests routed to the fleet's other hosts.
    peers: std::sync::OnceLock<reqwest::Client>,
    /// What this replica heard of changes to the fleet's accounts.
    pub fleet_changes: Arc<super::cache::FleetChanges>,
    /// events.db held open for the server's life. SQLite checkpoints the
    /// WAL and deletes it when the LAST connection to a database closes;
    /// without this one, every chat turn's (and every recorded event's)
    /// connection would be the last: three more fsyncs, an unlink and a
    /// new WAL per turn (measured with strace: about 3 ms of a turn's own
    /// time). The WAL is still checkpointed as it grows (every 1000 pages).
    _events_open: Mutex<Option<EventStore>>,
}

impl ServerState {
    /// Needs a valid JWT secret (`serve` refuses to start without one).
    pub fn new(
        app: App,
        log: super::access_log::AccessLog,
        read_timeout: std::time::Duration,
    ) -> Result<ServerState> {
        let secret = app.cfg.jwt_secret(&app.home)?;
        let hermes = Mutex::new(HermesSlot::load(&app));
        let app_events = app
            .home
            .ensure_operator_dirs()
            .and_then(|_| EventStore::open(&app.home.events_db()));
        let trusted = app
            .cfg
            .config
            .operator
            .trusted_proxies
            .iter()
            .filter_map(|p| p.parse::<IpAddr>().ok())
            .map(|ip| ip.to_canonical())
            .collect();
        let cpus = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        let fleet_host = match &app.cfg.config.store.url {
            Some(_) => Some(crate::ops::audit::fleet::host_name(&app, None)?),
            None => None,
        };
        let sso = match &app.cfg.config.auth.oidc {
            None => None,
            Some(o) => {
                let secret = app.cfg.secret(&o.client_secret_env).ok_or_else(|| {
                    crate::Error::config(format!(
                        "auth.oidc: the client secret {} is not set in {} or the environment",
                        o.client_secret_env,
                        app.cfg.env_path.display()
                    ))
                    .hint("put the secret the provider gave for this client there (chmod 600)")
                })?;
                Some(Arc::new(crate::oidc::Provider::new(o, secret)?))
            }
        };
        Ok(ServerState {
            app,
            secret,
            hermes,
            approvals: Arc::new(PendingApprovals::default()),
            runs: Runs::default(),
            user_turns: UserTurns::default(),
            key_use: KeyUse::default(),
            actions: ActionLimits::default(),
            health: tokio::sync::Mutex::new(None),
            argon2: tokio::sync::Semaphore::new(cpus.clamp(1, 4)),
            argon2_waiting: AtomicU64::new(0),
            chats: Arc::new(tokio::sync::Semaphore::new(MAX_CHATS)),
            turn_threads: TurnThreads::default(),
            trusted,
            read_cache: Default::default(),
            read_timeout,
            demo: false,
            sso,
            fleet_host,
            peers: Default::default(),
            fleet_changes: Default::default(),
            shutting_down: AtomicBool::new(false),
            log,
            // Best effort: without it the server is only slower.
            _events_open: Mutex::new(app_events.ok()),
        })
    }

    pub fn secret(&self) -> &[u8] {
        &self.secret
    }

    /// `f` on the fleet's database (blocking: call it on the blocking
    /// pool; [`App::fleet_db`]). Not found without `store.url`.
    pub fn with_fleet_db<T>(&self, f: impl Fn(&crate::store::pg::Pg) -> Result<T>) -> Result<T> {
        if !self.app.in_fleet() {
            return Err(crate::Error::not_found(
                "this server has no fleet database (store.url)",
            ));
        }
        self.app.with_fleet_db(f)
    }

    /// The client for the fleet's other hosts (server/route.rs): verified
    /// TLS, a bounded connect, no bound on a chat's stream.
    pub fn peer_client(&self) -> ApiResult<reqwest::Client> {
        if let Some(c) = self.peers.get() {
            return Ok(c.clone());
        }
        let c = crate::net::client_builder()
            .connect_timeout(std::time::Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| {
                ApiError::from(Error::internal(format!("building the peers' client: {e}")))
            })?;
        Ok(self.peers.get_or_init(|| c).clone())
    }

    /// An App acting as `actor` (`http:alice`), for requests that record events.
    pub fn app_as(&self, actor: String) -> App {
        self.app.as_actor(actor)
    }

    /// The Hermes client, or 503 `hermes_unconfigured` without a key. One
    /// `stat` of Hermes' `.env` per call: a key set or changed there is
    /// picked up without a restart.
    pub fn hermes(&self) -> ApiResult<HermesClient> {
        let mut slot = self.hermes.lock().unwrap_or_else(|p| p.into_inner());
        if slot.env_mtime != env_mtime(&self.app) {
            *slot = HermesSlot::load(&self.app);
        }
        slot.client.clone().map_err(ApiError::hermes_unconfigured)
    }

    pub fn is_trusted_proxy(&self, ip: IpAddr) -> bool {
        self.trusted.contains(&ip.to_canonical())
    }

    /// The user behind an access token and whether the token (or its
    /// login) was revoked, from a pooled read-only connection. `None` when
    /// the user (or users.db) does not exist.
    pub fn token_user(&self, claims: &Claims) -> Result<Option<(User, bool)>> {
        let mut conn = match self.app.users_ro() {
            Ok(c) => c,
            Err(e) if e.kind == Kind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        conn.run(|u| u.find_for_token(&claims.sub, &claims.jti, claims.fam.as_deref()))
    }

    /// The key presented as a bearer token and its owner, if it is live:
    /// one SHA-256 and one indexed read on a pooled read-only connection.
    pub fn key_user(
        &self,
        presented: &str,
    ) -> Result<std::result::Result<(ApiKey, User), KeyRefusal>> {
        let mut conn = match self.app.users_ro() {
            Ok(c) => c,
            Err(e) if e.kind == Kind::NotFound => return Ok(Err(KeyRefusal::Unknown)),
            Err(e) => return Err(e),
        };
        conn.run(|u| crate::ops::keys::authenticate(u, presented))
    }

    /// Counts one `action` of `who` (an account id, or `client:ADDR`), or
    /// refuses it (429, not counted) beyond [`Action::per_minute`]: in the
    /// fleet's database when the accounts live there (every replica counts
    /// the same actions), else in this process.
    pub async fn admit_action(self: &Arc<Self>, who: &str, action: Action) -> ApiResult<()> {
        if self.app.in_fleet() {
            let (st, counter) = (self.clone(), format!("action:{action:?}:{who}"));
            let limit = action.per_minute() as u32;
            let epoch = chrono::Utc::now().timestamp_micros() as f64 / 1e6;
            let counted = blocking(move || {
                st.app
                    .users()?
                    .run(|u| u.admit_rate(&counter, limit, epoch))
            })
            .await?;
            if let Some(verdict) = counted {
                return verdict.map_err(|secs| action.refused(secs));
            }
        }
        self.actions.admit(who, action, Instant::now())
    }

    /// Counts a request of `key` against its `--rpm` limit: in the fleet's
    /// database when the accounts live there (every replica counts the
    /// same requests), else in this process. `Err(seconds to wait)`: over.
    pub fn admit_key(
        &self,
        key: &ApiKey,
        now: std::time::Instant,
    ) -> Result<std::result::Result<(), u64>> {
        let Some(rpm) = key.rpm else {
            return Ok(Ok(()));
        };
        if self.app.in_fleet() {
            let epoch = chrono::Utc::now().timestamp_micros() as f64 / 1e6;
            let counted = self
                .app
                .users()?
                .run(|u| u.admit_rate(&format!("key:{}", key.id), rpm, epoch))?;
            if let Some(verdict) = counted {
                return Ok(verdict);
            }
        }
        Ok(self.key_use.admit(&key.id, key.rpm, now))
    }

    /// `f` with pooled read-only handles on state.db and users.db. Before
    /// Hermes has written state.db, an empty stand-in (never pooled, so the
    /// real file is read as soon as it exists).
    pub fn with_read_dbs<R>(&self, f: impl FnOnce(&StateDb, &UserStore) -> Result<R>) -> Result<R> {
        let spath = self.app.home.state_db();
        let mut users = self.app.users_ro()?;
        if !spath.exists() {
            let empty = StateDb::empty(&spath)?;
            return users.run(|u| f(&empty, u));
        }
        let mut state = self.app.state_ro()?;
        state.run(|s| users.run(|u| f(s, u)))
    }

    /// Wait for an Argon2 slot (bounded queue: 503 when too many wait).
    pub async fn argon2_slot(&self) -> ApiResult<tokio::sync::SemaphorePermit<'_>> {
        let waiting = self.argon2_waiting.fetch_add(1, Ordering::AcqRel);
        let r = if waiting as usize >= MAX_ARGON2_WAITING {
            Err(ApiError::from(Error::busy("too many logins at once")))
        } else {
            self.argon2
                .acquire()
                .await
                .map_err(|_| ApiError::from(Error::busy("shutting down")))
        };
        self.argon2_waiting.fetch_sub(1, Ordering::AcqRel);
        r
    }
}

/// Run blocking work (SQLite, Argon2) off the async threads.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> ApiResult<T> {
    match tokio::task::spawn_blocking(|| crate::store::pg::may_block(f)).await {
        Ok(r) => r.map_err(ApiError::from),
        Err(e) => Err(ApiError::from(Error::internal(format!(
            "a blocking task failed: {e}"
        )))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::channel;

    /// README and tests/serve/hardening.rs promise that `/healthz` shows a
    /// change within a second: the cache lives no longer than that.
    #[test]
    fn health_answers_are_cached_for_at_most_a_second() {
        const { assert!(HEALTH_TTL.as_millis() <= 1000) };
    }

    #[test]
    fn idle_keys_are_forgotten_once_many_were_seen() {
        let keys = KeyUse::default();
        let t0 = Instant::now();
        for i in 0..10_001 {
            keys.admit(&format!("key_{i}"), Some(5), t0).unwrap();
        }
        keys.admit("busy", Some(5), t0 + Duration::from_secs(30))
            .unwrap();
        // A minute later only the key used within it is kept.
        keys.admit("new", Some(5), t0 + Duration::from_secs(61))
            .unwrap();
        let m = keys.map.lock().unwrap();
        assert_eq!(m.len(), 2, "busy and new");
        assert!(m.contains_key("busy") && m.contains_key("new"));
    }

    #[test]
    fn actions_are_limited_per_account_and_kind_for_a_minute() {
        let limits = ActionLimits::default();
        let t0 = Instant::now();
        let n = Action::SessionChange.per_minute();
        for _ in 0..n {
            limits.admit("alice", Action::SessionChange, t0).unwrap();
        }
        let e = limits
            .admit("alice", Action::SessionChange, t0 + Duration::from_secs(20))
            .unwrap_err();
        assert_eq!(e.status.as_u16(), 429);
        assert_eq!(e.code, "too_many_requests");
        let retry = e.headers.iter().find(|(k, _)| k == "retry-after").unwrap();
        assert_eq!(retry.1, "40", "until the oldest is a minute old");
        // Another account, another action: unaffected.
        limits.admit("bob", Action::SessionChange, t0).unwrap();
        limits.admit("alice", Action::KeyRevoke, t0).unwrap();
        // A minute later the window has moved on.
        limits
            .admit("alice", Action::SessionChange, t0 + Duration::from_secs(60))
            .unwrap();
    }

    #[test]
    fn turn_threads_are_reused_and_run_side_by_side() {
        let threads = TurnThreads::default();
        let (tx, rx) = channel();
        let on_thread = |tx: std::sync::mpsc::Sender<std::thread::ThreadId>| -> TurnJob {
            Box::new(move || tx.send(std::thread::current().id()).unwrap())
        };
        threads.run(on_thread(tx.clone())).unwrap();
        let first = rx.recv().unwrap();
        // Wait until that thread is idle again, then the next job reuses it.
        while threads.idle.load(std::sync::atomic::Ordering::Acquire) == 0 {
            std::thread::yield_now();
        }
        threads.run(on_thread(tx.clone())).unwrap();
        assert_eq!(rx.recv().unwrap(), first, "reused");
        while threads.idle.load(std::sync::atomic::Ordering::Acquire) == 0 {
            std::thread::yield_now();
        }
        // Two jobs at once: the second gets a thread of its own (the first
        // holds its thread until the second has run).
        let (release, held) = channel::<()>();
        let (tx1, tx2) = (tx.clone(), tx.clone());
        threads
            .run(Box::new(move || {
                tx1.send(std::thread::current().id()).unwrap();
                held.recv().unwrap();
            }))
            .unwrap();
        threads.run(on_thread(tx2)).unwrap();
        let (a, b) = (rx.recv().unwrap(), rx.recv().unwrap());
        assert_ne!(a, b, "side by side");
        release.send(()).unwrap();
    }
}
