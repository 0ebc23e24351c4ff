//! The context every command and every HTTP handler works in:
//! HERMES_HOME, the loaded config, who is acting, and the stores.

use crate::config::{self, Loaded};
use crate::error::Result;
use crate::home::Home;
use crate::store::events::EventKind;
use crate::store::events::{Actor, Event, EventStore, NewEvent};
use crate::store::pg::{Pg, PgUsers};
use crate::store::pool::{Pool, Pooled};
use crate::store::state::StateDb;
use crate::store::users::UserStore;
use std::sync::Arc;

pub struct App {
    pub home: Home,
    pub cfg: Loaded,
    pub actor: Actor,
    /// Open handles on the databases, shared by every App made from this
    /// one (`as_actor`): a server reuses them across requests, a chat turn
    /// across its steps (`store/pool.rs` says why and when one is not).
    pools: Pools,
}

#[derive(Clone, Default)]
struct Pools {
    users: Arc<Pool<UserStore>>,
    users_ro: Arc<Pool<UserStore>>,
    events: Arc<Pool<EventStore>>,
    state_ro: Arc<Pool<StateDb>>,
    state_rw: Arc<Pool<StateDb>>,
    /// The first connection to the fleet's database (`store.url`), which
    /// brought its schema up to date; pooled ones are opened beside it.
    fleet: Arc<std::sync::Mutex<Option<Arc<Pg>>>>,
}

impl App {
    /// Resolve and check HERMES_HOME, load config; warnings go to `warn`.
    pub fn load(home: Home, actor: Actor, warn: impl Fn(&str)) -> Result<App> {
        home.require()?;
        let cfg = config::load(&home)?;
        for w in &cfg.warnings {
            warn(w);
        }
        Ok(App::new(home, cfg, actor))
    }

    /// A context on a loaded config (with pools of its own).
    pub fn new(home: Home, cfg: Loaded, actor: Actor) -> App {
        App {
            home,
            cfg,
            actor,
            pools: Pools::default(),
        }
    }

    /// The same context, acting as someone else (e.g. `http:alice`).
    pub fn as_actor(&self, actor: String) -> App {
        App {
            home: self.home.clone(),
            cfg: self.cfg.clone(),
            actor: Actor::new(actor),
            pools: self.pools.clone(),
        }
    }

    /// Whether the accounts live in the fleet's database (`store.url` is
    /// set) rather than this host's users.db.
    pub fn in_fleet(&self) -> bool {
        self.cfg.config.store.url.is_some()
    }

    /// The fleet's database, connected on first use: the schema brought up
    /// to date, and refused while this host's accounts have not been moved
    /// there (`store migrate`), so that nobody is locked out by an empty
    /// account list. A connection that failed is not kept.
    pub fn fleet_db(&self) -> Result<Arc<Pg>> {
        let mut slot = self.pools.fleet.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(pg) = slot.as_ref() {
            return Ok(pg.clone());
        }
        let pg = crate::ops::audit::fleet::connect_configured(self)?;
        crate::ops::fleet::check_accounts_moved(self, &pg)?;
        *slot = Some(pg.clone());
        Ok(pg)
    }

    /// The read `f` on [`App::fleet_db`]'s connection. A connection that
    /// fails for want of the database (PostgreSQL restarted since) is let
    /// go and `f` runs once more on a new one.
    pub fn with_fleet_db<T>(&self, f: impl Fn(&Pg) -> Result<T>) -> Result<T> {
        match f(&*self.fleet_db()?) {
            Err(e) if e.kind == crate::Kind::Unavailable => {
                *self.pools.fleet.lock().unwrap_or_else(|p| p.into_inner()) = None;
                f(&*self.fleet_db()?)
            }
            r => r,
        }
    }

    /// The accounts in the fleet's database, on a pooled connection.
    fn fleet_users(&self) -> Result<Pooled<UserStore>> {
        self.pools.users.get_unkeyed(
            |u| !u.connection_lost(),
            || {
                let pg = self.fleet_db()?.another()?;
                Ok(UserStore::from_backend(PgUsers::new(pg)))
            },
        )
    }

    /// The accounts' store for changes: users.db (created on first use),
    /// or the fleet's database when `store.url` is set.
    pub fn users(&self) -> Result<Pooled<UserStore>> {
        if self.in_fleet() {
            return self.fleet_users();
        }
        let path = self.home.users_db();
        self.pools.users.get(&path, || {
            self.home.ensure_operator_dirs()?;
            UserStore::open(&path)
        })
    }

    /// The accounts' store for reading: users.db (never created), or the
    /// fleet's database.
    pub fn users_ro(&self) -> Result<Pooled<UserStore>> {
        if self.in_fleet() {
            return self.fleet_users();
        }
        let path = self.home.users_db();
        self.pools.users_ro.get(&path, || {
            self.home.check_operator_dirs()?;
            UserStore::open_readonly(&path)
        })
    }

    pub fn events(&self) -> Result<Pooled<EventStore>> {
        let path = self.home.events_db();
        self.pools.events.get(&path, || {
            self.home.ensure_operator_dirs()?;
            EventStore::open(&path)
        })
    }

    pub fn events_ro(&self) -> Result<EventStore> {
        self.home.check_operator_dirs()?;
        EventStore::open_readonly(&self.home.events_db())
    }

    /// Hermes' state.db, read-only (never created).
    pub fn state_ro(&self) -> Result<Pooled<StateDb>> {
        let path = self.home.state_db();
        self.pools
            .state_ro
            .get(&path, || StateDb::open_readonly(&path))
    }

    /// Hermes' state.db for reads that may answer "nothing yet": before
    /// Hermes has written state.db, an empty stand-in with its schema (see
    /// [`App::state_notice`] for what to tell the reader).
    pub fn state_read(&self) -> Result<Pooled<StateDb>> {
        let path = self.home.state_db();
        match self.state_ro() {
            Err(e) if e.kind == crate::Kind::NotFound && !path.exists() => {
                StateDb::empty(&path).map(Pooled::unpooled)
            }
            r => r,
        }
    }

    /// The same notice without the server's path, for HTTP clients.
    pub fn state_notice_public(&self) -> Option<&'static str> {
        (!self.home.state_db().exists()).then_some(
            "Hermes has not written its session database (state.db) yet: sessions, search and usage stay empty until Hermes runs. Start Hermes, or check HERMES_HOME.",
        )
    }

    /// The one calm notice for reads while state.db does not exist yet.
    pub fn state_notice(&self) -> Option<String> {
        let path = self.home.state_db();
        (!path.exists()).then(|| {
            format!(
                "Hermes has not written state.db yet at {}; start Hermes (or check HERMES_HOME) and sessions will appear",
                path.display()
            )
        })
    }

    /// Hermes' state.db for writing operator rows (never created).
    pub fn state_rw(&self) -> Result<Pooled<StateDb>> {
        let path = self.home.state_db();
        self.pools
            .state_rw
            .get(&path, || StateDb::open_readwrite(&path))
    }

    /// Append one audit event as the current actor.
    pub fn record(&self, ev: NewEvent) -> Result<Event> {
        self.events()?.append(ev)
    }

    pub fn event(&self, kind: EventKind, data: serde_json::Value) -> NewEvent {
        NewEvent::new(kind, &self.actor, data)
    }
}
