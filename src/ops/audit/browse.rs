//! The event-log browser (`GET /api/audit/events`): the log newest first,
//! filtered by type, user, session and date, a page at a time.

use crate::app::App;
use crate::error::{Error, Result};
use crate::store::events::{Event, EventKind, EventQuery};
use serde::Serialize;

/// What a reader asks for (names as people type them).
#[derive(Debug, Clone, Default)]
pub struct Browse {
    pub kind: Option<String>,
    pub username: Option<String>,
    pub session_id: Option<String>,
    /// Single sign-on: the provider's issuer and the user's subject, as
    /// `login`, `login_failed` and `token_revoked` events name them.
    pub provider: Option<String>,
    pub subject: Option<String>,
    /// `YYYY-MM-DD` (UTC, from its start), RFC 3339, or a duration back (`7d`).
    pub since: Option<String>,
    /// The same; exclusive (a date means up to its start).
    pub until: Option<String>,
    /// Only events with a greater sequence number: what a live view has
    /// not shown yet.
    pub after: Option<i64>,
    pub limit: i64,
    pub offset: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Page {
    pub total: i64,
    pub limit: i64,
    pub offset: i64,
    pub events: Vec<Event>,
    /// Usernames of the page's user ids (deleted accounts are missing).
    pub usernames: std::collections::BTreeMap<String, String>,
    /// Every event type this binary writes (for the browser's filter).
    pub types: Vec<&'static str>,
}

fn time_bound(s: &Option<String>) -> Result<Option<String>> {
    s.as_deref()
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            let t = crate::timespec::parse_since(s)?;
            Ok(chrono::DateTime::from_timestamp_micros((t * 1e6) as i64)
                .unwrap_or_default()
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
        })
        .transpose()
}

/// One page of the log. An unknown type is a usage error; an unknown user
/// or session simply matches nothing.
pub fn browse(app: &App, b: &Browse) -> Result<Page> {
    if !(1..=500).contains(&b.limit) || !(0..=10_000_000).contains(&b.offset) {
        return Err(Error::usage("limit must be 1-500 and offset 0-10000000"));
    }
    if b.after.is_some_and(|a| a < 0) {
        return Err(Error::usage(
            "after must be a sequence number (0 or more), e.g. the newest seq already shown",
        ));
    }
    if let Some(k) = b.kind.as_deref().filter(|k| !k.is_empty()) {
        if EventKind::parse(k).is_none() {
            return Err(Error::usage(format!(
                "unknown event type {:?}; README's \"Event types\" lists them",
                crate::output::clip(k, 40)
            )));
        }
    }
    let user_id = match b.username.as_deref().filter(|u| !u.is_empty()) {
        None => None,
        Some(name) => Some(match app.users_ro()?.find(name)? {
            Some(u) => u.id,
            // Deleted users' events keep their id: a name that is not an
            // account matches nothing rather than failing.
            None => format!("unknown:{name}"),
        }),
    };
    let q = EventQuery {
        kind: b.kind.clone().filter(|k| !k.is_empty()),
        user_id,
        session_id: b.session_id.clone().filter(|s| !s.is_empty()),
        provider: b.provider.clone().filter(|s| !s.is_empty()),
        subject: b.subject.clone().filter(|s| !s.is_empty()),
        since: time_bound(&b.since)?,
        until: time_bound(&b.until)?,
        after_seq: b.after,
    };
    let (events, total) = match app.events_ro() {
        Ok(store) => store.browse(&q, b.limit, b.offset)?,
        Err(e) if e.kind == crate::Kind::NotFound => (Vec::new(), 0),
        Err(e) => return Err(e),
    };
    let names = crate::ops::sessions::usernames(app)?;
    let usernames = events
        .iter()
        .filter_map(|e| e.user_id.as_ref())
        .filter_map(|id| names.get(id).map(|n| (id.clone(), n.clone())))
        .collect();
    Ok(Page {
        total,
        limit: b.limit,
        offset: b.offset,
        events,
        usernames,
        types: EventKind::ALL.iter().map(|k| k.as_str()).collect(),
    })
}
