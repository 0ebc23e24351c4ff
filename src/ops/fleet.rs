//! What each host of a fleet publishes to the shared PostgreSQL besides
//! its audit log (ops/audit/fleet.rs): its operator sessions as `session
//! list` shows them, so any host lists every host's (`session list
//! --all-hosts`). `serve` publishes the sessions its shipped events touched
//! (all of them the first time); state.db stays each host's own, and a
//! session's messages stay on its host.

use crate::app::App;
use crate::error::Result;
use crate::ops::sessions::{self, ListOptions, Scope, SessionInfo};
use crate::store::pg::sessions::{self as pg_sessions, PublishedSession};
use crate::store::pg::Pg;
use std::collections::BTreeSet;

/// Refuses the fleet's database as this host's account store while it has
/// no account and this host's users.db has some: every login would fail
/// and the CLI would start a second, empty set of accounts. `store
/// migrate` moves them first.
pub fn check_accounts_moved(app: &App, pg: &Pg) -> Result<()> {
    if crate::store::pg::PgUsers::account_count(pg)? > 0 {
        return Ok(());
    }
    let path = app.home.users_db();
    if !path.exists() {
        return Ok(());
    }
    let local = crate::store::users::UserStore::open_readonly(&path)?
        .list()?
        .len();
    if local == 0 {
        return Ok(());
    }
    Err(crate::error::Error::new(
        crate::Kind::Config,
        format!(
            "the fleet's database at {} has no accounts yet, while this host's users.db has {local}",
            pg.target
        ),
    )
    .hint("move them first: `hermes-operator store migrate` (store.url is the default target)"))
}

/// What `store migrate` did with this host's accounts.
#[derive(Debug, serde::Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum AccountsMove {
    /// users.db was copied (rows per table).
    Moved(crate::store::pg::Imported),
    /// The fleet already had accounts (another host's): users.db was left
    /// alone, and this host uses the fleet's.
    FleetHasAccounts { accounts: i64 },
    /// This host has no users.db.
    NoLocalAccounts,
}

/// Moves this host's accounts (users.db) into the fleet's database unless
/// it already holds some (the first host's become everyone's).
pub fn migrate_accounts(app: &App, pg: &Pg) -> Result<AccountsMove> {
    use crate::store::pg::PgUsers;
    let path = app.home.users_db();
    if !path.exists() {
        return Ok(AccountsMove::NoLocalAccounts);
    }
    let users = PgUsers::new(pg.another()?);
    Ok(match users.import(&path)? {
        Some(moved) => AccountsMove::Moved(moved),
        None => AccountsMove::FleetHasAccounts {
            accounts: PgUsers::account_count(pg)?,
        },
    })
}

/// Where a request about session `id` belongs when this host does not
/// hold it: another host of the fleet published it, and is reached at the
/// URL it announced (`store.peer_url`). `None`: this host's own (or no
/// host's: the caller answers as usual).
pub fn session_host(app: &App, pg: &Pg, id: &str) -> Result<Option<(String, String)>> {
    if app.state_read()?.get_session(id)?.is_some() {
        return Ok(None);
    }
    let own = crate::ops::audit::fleet::host_name(app, None)?;
    match pg_sessions::owner_of(pg, id, &own)? {
        None => Ok(None),
        Some((host, Some(url))) => Ok(Some((host, url))),
        Some((host, None)) => Err(crate::error::Error::new(
            crate::Kind::Unavailable,
            format!("this session lives on host {host}, which does not say where it is reached"),
        )
        .hint(format!(
            "set store.peer_url on {host} (where the other hosts reach its serve) and restart it"
        ))),
    }
}

/// The most sessions one backfill publishes (the newest).
const BACKFILL: i64 = 100_000;

/// Publishes this host's operator sessions: those in `only`, or (None)
/// every one. How many rows were written.
pub fn publish_sessions(
    app: &App,
    pg: &Pg,
    host: &str,
    only: Option<&BTreeSet<String>>,
) -> Result<usize> {
    let infos: Vec<SessionInfo> = match only {
        None => sessions::list(
            app,
            &Scope::Operator,
            &ListOptions {
                limit: BACKFILL,
                ..Default::default()
            },
        )?,
        Some(ids) if ids.is_empty() => return Ok(0),
        Some(ids) => {
            let names = sessions::usernames(app)?;
            let db = app.state_read()?;
            let mut v = Vec::new();
            for id in ids {
                if let Some(s) = db.get_session(id)?.filter(|s| s.is_operator()) {
                    let username = s.user_id.as_ref().and_then(|u| names.get(u).cloned());
                    v.push(SessionInfo::new(s, username));
                }
            }
            v
        }
    };
    let db = app.state_read()?;
    let rows = infos
        .into_iter()
        .map(|i| {
            Ok(PublishedSession {
                id: i.session.id.clone(),
                started_at_epoch: i.session.started_at_epoch,
                user_id: i.session.user_id.clone(),
                username: i.username.clone(),
                info: serde_json::to_string(&i).expect("a session serializes"),
                model: i.session.model.clone(),
                message_times: db.message_times(&i.session.id)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    drop(db);
    pg_sessions::publish(pg, host, &rows)
}

/// `session list --all-hosts`: every host's published operator sessions,
/// newest first, each with its `host`.
pub fn list_all_hosts(
    pg: &Pg,
    username: Option<&str>,
    since: Option<f64>,
    limit: i64,
    offset: i64,
) -> Result<Vec<serde_json::Value>> {
    Ok(pg_sessions::list(pg, username, since, limit, offset)?
        .into_iter()
        .map(|(host, info)| {
            let mut v: serde_json::Value =
                serde_json::from_str(&info).unwrap_or(serde_json::Value::Null);
            if let Some(o) = v.as_object_mut() {
                o.insert("host".into(), host.into());
            }
            v
        })
        .collect())
}

/// What `serve` does every few seconds while `store.url` is set: ship this
/// host's new events ([`crate::ops::audit::fleet::ship_events`]) and publish
/// the operator sessions they touched — every session on the first
/// successful tick of a `serve`. A tick that fails drops its connection;
/// the next connects anew and carries on from the head that committed.
pub struct Shipper {
    url: String,
    pg: Option<std::sync::Arc<Pg>>,
    backfilled: bool,
}

impl Shipper {
    pub fn new(url: String) -> Shipper {
        Shipper {
            url,
            pg: None,
            backfilled: false,
        }
    }

    /// One round; this host's name in the fleet.
    pub fn tick(&mut self, app: &App) -> Result<String> {
        let r = self.round(app);
        if r.is_err() {
            self.pg = None;
        }
        r
    }

    fn round(&mut self, app: &App) -> Result<String> {
        use crate::ops::audit::fleet;
        let host = fleet::host_name(app, None)?;
        let pg = match &self.pg {
            Some(pg) => pg.clone(),
            None => {
                let pg = fleet::connect(app, &self.url)?;
                // Where the other hosts route chats on this host's sessions.
                pg_sessions::announce_host(&pg, &host, app.cfg.config.store.peer_url.as_deref())?;
                self.pg = Some(pg.clone());
                pg
            }
        };
        let shipped = fleet::ship_events(app, &pg, &host)?;
        let only = shipped.sessions.as_ref().filter(|_| self.backfilled);
        publish_sessions(app, &pg, &host, only)?;
        self.backfilled = true;
        Ok(host)
    }
}
