//! The context every command and every HTTP handler works in:
//! HERMES_HOME, the loaded config, who is acting, and the stores.

use crate::config::{self, Loaded};
use crate::error::Result;
use crate::home::Home;
use crate::store::events::EventKind;
use crate::store::events::{Actor, Event, EventStore, NewEvent};
use crate::store::state::StateDb;
use crate::store::users::UserStore;

pub struct App {
    pub home: Home,
    pub cfg: Loaded,
    pub actor: Actor,
}

impl App {
    /// Resolve and check HERMES_HOME, load config; warnings go to `warn`.
    pub fn load(home: Home, actor: Actor, warn: impl Fn(&str)) -> Result<App> {
        home.require()?;
        let cfg = config::load(&home)?;
        for w in &cfg.warnings {
            warn(w);
        }
        Ok(App { home, cfg, actor })
    }

    /// The same context, acting as someone else (e.g. `http:alice`).
    pub fn as_actor(&self, actor: String) -> App {
        App {
            home: self.home.clone(),
            cfg: self.cfg.clone(),
            actor: Actor::new(actor),
        }
    }

    /// users.db for changes (created on first use).
    pub fn users(&self) -> Result<UserStore> {
        self.home.ensure_operator_dirs()?;
        UserStore::open(&self.home.users_db())
    }

    /// users.db for reading; never creates it.
    pub fn users_ro(&self) -> Result<UserStore> {
        UserStore::open_readonly(&self.home.users_db())
    }

    pub fn events(&self) -> Result<EventStore> {
        self.home.ensure_operator_dirs()?;
        EventStore::open(&self.home.events_db())
    }

    pub fn events_ro(&self) -> Result<EventStore> {
        EventStore::open_readonly(&self.home.events_db())
    }

    /// Hermes' state.db, read-only (never created).
    pub fn state_ro(&self) -> Result<StateDb> {
        StateDb::open_readonly(&self.home.state_db())
    }

    /// Hermes' state.db for reads that may answer "nothing yet": before
    /// Hermes has written state.db, an empty stand-in with its schema (see
    /// [`App::state_notice`] for what to tell the reader).
    pub fn state_read(&self) -> Result<StateDb> {
        let path = self.home.state_db();
        match StateDb::open_readonly(&path) {
            Err(e) if e.kind == crate::Kind::NotFound && !path.exists() => StateDb::empty(&path),
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
    pub fn state_rw(&self) -> Result<StateDb> {
        StateDb::open_readwrite(&self.home.state_db())
    }

    /// Append one audit event as the current actor.
    pub fn record(&self, ev: NewEvent) -> Result<Event> {
        self.events()?.append(ev)
    }

    pub fn event(&self, kind: EventKind, data: serde_json::Value) -> NewEvent {
        NewEvent::new(kind, &self.actor, data)
    }
}
