//! Usage reports for auditors: `audit daily` and `audit user` (the CLI;
//! the HTTP mode serves the same reports under `/api/audit/`).
//!
//! # Token and cost attribution (the rule `audit daily` applies)
//!
//! Hermes keeps usage per session and cumulatively (a session can span days),
//! so per-day numbers come from per-call records where they exist:
//!
//! 1. Every `llm_call` event in events.db whose `session_id` starts with `op_`
//!    and whose `ts` (UTC RFC 3339) lies in `[from, to)` counts for that day:
//!    `data.input_tokens`, `data.output_tokens`, `data.cost_usd` (missing → 0).
//!    Its model is `data.model`, else the session's `model`; its user is the
//!    event's `user_id`, else the session's `user_id`.
//! 2. An operator session (`source = 'operator' AND id LIKE 'op\_%'`) with no
//!    `llm_call` event at all in events.db (on any day) contributes its
//!    cumulative totals — `input_tokens`, `output_tokens` and
//!    `COALESCE(actual_cost_usd, estimated_cost_usd, 0)` — to the day its
//!    `started_at` falls in, under the session's `user_id` and `model`.
//!
//! `sessions` counts operator sessions with `from <= started_at < to`;
//! `messages` counts every messages row (rewound ones included) with
//! `from <= timestamp < to` in operator sessions, under the session's user
//! and model. Only operator sessions are reported.

use crate::app::App;
use crate::error::{Error, Kind, Result};
use crate::ops::sessions::{self, SessionInfo};
use crate::store::events::Event;
use crate::store::state::{self, ListQuery, RowFilter};
use crate::store::users::User;
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};

/// Usage numbers of one report row.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Usage {
    pub sessions: i64,
    pub messages: i64,
    /// `llm_call` events counted (rule 1).
    pub llm_calls: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cost_usd: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct UserUsage {
    pub user_id: Option<String>,
    /// From users.db; "(unknown)" for deleted users or sessions without a user.
    pub username: String,
    #[serde(flatten)]
    pub usage: Usage,
}

#[derive(Debug, Clone, Serialize)]
pub struct ModelUsageRow {
    pub model: Option<String>,
    #[serde(flatten)]
    pub usage: Usage,
}

/// `audit daily --json`.
#[derive(Debug, Clone, Serialize)]
pub struct Daily {
    pub date: String,
    pub tz: String,
    pub from: String,
    pub from_epoch: f64,
    pub to: String,
    pub to_epoch: f64,
    pub totals: Usage,
    pub by_user: Vec<UserUsage>,
    pub by_model: Vec<ModelUsageRow>,
}

/// An IANA time zone, from the system's tz database (/usr/share/zoneinfo)
/// via `jiff`: no tz tables are compiled into the binary (they cost every
/// process start-up ~0.6 ms of relocations).
#[derive(Debug, Clone)]
pub struct Tz {
    zone: jiff::tz::TimeZone,
    name: String,
}

impl Tz {
    pub fn utc() -> Tz {
        Tz {
            zone: jiff::tz::TimeZone::UTC,
            name: "UTC".into(),
        }
    }
    pub fn get(name: &str) -> Option<Tz> {
        let zone = jiff::tz::TimeZone::get(name).ok()?;
        Some(Tz {
            zone,
            name: name.to_string(),
        })
    }
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Today's date in this zone.
    pub fn today(&self) -> NaiveDate {
        let d = self.zone.to_datetime(jiff::Timestamp::now()).date();
        NaiveDate::from_ymd_opt(d.year() as i32, d.month() as u32, d.day() as u32)
            .expect("jiff dates are valid")
    }
}

impl std::fmt::Display for Tz {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
}

/// The first instant of local day `d` in `tz` (after a DST gap when
/// midnight does not exist; the earlier one when it exists twice).
fn local_midnight(d: NaiveDate, tz: &Tz) -> DateTime<Utc> {
    use chrono::Datelike;
    let civil =
        jiff::civil::DateTime::new(d.year() as i16, d.month() as i8, d.day() as i8, 0, 0, 0, 0);
    let ts = civil
        .ok()
        .and_then(|c| tz.zone.to_ambiguous_timestamp(c).compatible().ok());
    match ts {
        Some(ts) => DateTime::from_timestamp(ts.as_second(), 0).expect("in range"),
        None => Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).expect("valid")),
    }
}

/// `[from, to)` of local day `date` in `tz`, in UTC.
pub fn day_bounds(date: NaiveDate, tz: &Tz) -> Result<(DateTime<Utc>, DateTime<Utc>)> {
    let next = date
        .succ_opt()
        .ok_or_else(|| Error::usage(format!("date {date} is out of range")))?;
    Ok((local_midnight(date, tz), local_midnight(next, tz)))
}

/// The report day and zone from user input: `date` as YYYY-MM-DD (default:
/// today in `tz`), `tz` an IANA name.
pub fn parse_day(date: Option<&str>, tz: &str) -> Result<(NaiveDate, Tz)> {
    let clip = |s: &str| crate::output::clip(&crate::output::sanitize(s), 40);
    let tz: Tz = Tz::get(tz).ok_or_else(|| {
        Error::usage(format!("--tz {:?}: not an IANA time zone", clip(tz)))
            .hint("use a name like UTC, Europe/Berlin or Asia/Shanghai")
    })?;
    let date = match date {
        Some(d) => NaiveDate::parse_from_str(d, "%Y-%m-%d")
            .map_err(|_| Error::usage(format!("--date {:?}: expected YYYY-MM-DD", clip(d))))?,
        None => tz.today(),
    };
    Ok((date, tz))
}

fn rfc(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// One llm_call event, as the report reads it.
struct LlmCall {
    session_id: String,
    user_id: Option<String>,
    model: Option<String>,
    input_tokens: i64,
    output_tokens: i64,
    cost_usd: f64,
}

fn num_i64(v: &serde_json::Value, k: &str) -> i64 {
    v.get(k)
        .and_then(|x| x.as_i64().or_else(|| x.as_f64().map(|f| f as i64)))
        .unwrap_or(0)
}

/// From events.db: the operator sessions that have any llm_call event, and
/// the llm_call events of operator sessions with `from <= ts < to`.
fn llm_calls(app: &App, from: &str, to: &str) -> Result<(HashSet<String>, Vec<LlmCall>)> {
    let path = app.home.events_db();
    let conn = match crate::store::open_own_readonly(&path, "events.db") {
        Ok(c) => c,
        Err(e) if e.kind == Kind::NotFound => return Ok((HashSet::new(), vec![])),
        Err(e) => return Err(e),
    };
    let err = |e| Error::sqlite(&path, "reading llm_call events", e);
    let mut with_calls = HashSet::new();
    let mut st = conn
        .prepare(r"SELECT DISTINCT session_id FROM events WHERE type = 'llm_call' AND session_id LIKE 'op\_%' ESCAPE '\'")
        .map_err(err)?;
    let mut rows = st.query([]).map_err(err)?;
    while let Some(r) = rows.next().map_err(err)? {
        with_calls.insert(r.get::<_, String>(0).map_err(err)?);
    }
    let mut st = conn
        .prepare(
            r"SELECT session_id, user_id, data FROM events
              WHERE type = 'llm_call' AND ts >= ?1 AND ts < ?2 AND session_id LIKE 'op\_%' ESCAPE '\'
              ORDER BY seq",
        )
        .map_err(err)?;
    let mut rows = st.query([from, to]).map_err(err)?;
    let mut calls = Vec::new();
    while let Some(r) = rows.next().map_err(err)? {
        let data: String = r.get(2).map_err(err)?;
        let v: serde_json::Value = serde_json::from_str(&data).unwrap_or(serde_json::Value::Null);
        calls.push(LlmCall {
            session_id: r.get(0).map_err(err)?,
            user_id: r.get(1).map_err(err)?,
            model: v.get("model").and_then(|m| m.as_str()).map(str::to_string),
            input_tokens: num_i64(&v, "input_tokens"),
            output_tokens: num_i64(&v, "output_tokens"),
            cost_usd: v.get("cost_usd").and_then(|x| x.as_f64()).unwrap_or(0.0),
        });
    }
    Ok((with_calls, calls))
}

/// An operator session started on the day.
struct StartedRow {
    user: Option<String>,
    model: Option<String>,
    input_tokens: i64,
    output_tokens: i64,
    cost_usd: f64,
    /// It has llm_call events (on any day), which count instead (rule 1).
    has_calls: bool,
}

/// What a day's report is made of, read from this host's files or from
/// the fleet's database; one rule turns either into the report.
#[derive(Default)]
struct DayInputs {
    /// Operator sessions started that day.
    started: Vec<StartedRow>,
    /// Messages written that day per (user, model).
    messages: Vec<(Option<String>, Option<String>, i64)>,
    /// The day's llm_call events, user and model resolved (rule 1).
    calls: Vec<(Option<String>, Option<String>, LlmCall)>,
}

/// This host's events.db and state.db.
fn local_inputs(app: &App, (from, to): (DateTime<Utc>, DateTime<Utc>)) -> Result<DayInputs> {
    let (from_e, to_e) = (from.timestamp() as f64, to.timestamp() as f64);
    let db = app.state_read()?;
    let (with_calls, calls) = llm_calls(app, &rfc(from), &rfc(to))?;
    let started = db
        .list_sessions(&ListQuery {
            rows: RowFilter {
                operator_only: true,
                user_id: None,
            },
            since: Some(from_e),
            until: Some(to_e),
            limit: None,
            offset: 0,
        })?
        .into_iter()
        .map(|s| StartedRow {
            cost_usd: s.cost_usd(),
            has_calls: with_calls.contains(&s.id),
            user: s.user_id,
            model: s.model,
            input_tokens: s.input_tokens,
            output_tokens: s.output_tokens,
        })
        .collect();
    let messages = db.message_counts_between(from_e, to_e)?;
    let mut owners: HashMap<String, Option<state::Session>> = HashMap::new();
    let mut resolved = Vec::new();
    for call in calls {
        if !owners.contains_key(&call.session_id) {
            owners.insert(call.session_id.clone(), db.get_session(&call.session_id)?);
        }
        let sess = owners[&call.session_id].as_ref();
        let user = call
            .user_id
            .clone()
            .or_else(|| sess.and_then(|s| s.user_id.clone()));
        let model = call
            .model
            .clone()
            .or_else(|| sess.and_then(|s| s.model.clone()));
        resolved.push((user, model, call));
    }
    Ok(DayInputs {
        started,
        messages,
        calls: resolved,
    })
}

/// The fleet's database: every host's published sessions (with their
/// message times) and every host's llm_call events, or one host's.
fn fleet_inputs(
    pg: &crate::store::pg::Pg,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
    host: Option<&str>,
) -> Result<DayInputs> {
    let rows = crate::store::pg::sessions::day_rows(
        pg,
        (from.timestamp() as f64, to.timestamp() as f64),
        (&rfc(from), &rfc(to)),
        host,
    )?;
    let started = rows
        .started
        .into_iter()
        .map(|(h, id, user, model, i, o, c)| StartedRow {
            has_calls: rows.with_calls.contains(&(h, id)),
            user,
            model,
            input_tokens: i,
            output_tokens: o,
            cost_usd: c,
        })
        .collect();
    let calls = rows
        .calls
        .into_iter()
        .map(|c| {
            let v: serde_json::Value =
                serde_json::from_str(&c.data).unwrap_or(serde_json::Value::Null);
            let call = LlmCall {
                session_id: c.session_id,
                user_id: c.user_id,
                model: v.get("model").and_then(|m| m.as_str()).map(str::to_string),
                input_tokens: num_i64(&v, "input_tokens"),
                output_tokens: num_i64(&v, "output_tokens"),
                cost_usd: v.get("cost_usd").and_then(|x| x.as_f64()).unwrap_or(0.0),
            };
            let (user, model) = (
                call.user_id.clone().or(c.session_user),
                call.model.clone().or(c.session_model),
            );
            (user, model, call)
        })
        .collect();
    Ok(DayInputs {
        started,
        messages: rows.messages,
        calls,
    })
}

/// The daily report for local day `date` in `tz` (see the module docs for
/// the attribution rule).
pub fn daily(app: &App, date: NaiveDate, tz: &Tz) -> Result<Daily> {
    let bounds = day_bounds(date, tz)?;
    let inputs = local_inputs(app, bounds)?;
    Ok(day_report(
        date,
        tz,
        bounds,
        inputs,
        &sessions::usernames(app)?,
    ))
}

/// The same report over every host of the fleet (or the one named), from
/// what each host published and shipped.
pub fn daily_fleet(
    app: &App,
    pg: &crate::store::pg::Pg,
    date: NaiveDate,
    tz: &Tz,
    host: Option<&str>,
) -> Result<Daily> {
    let bounds = day_bounds(date, tz)?;
    let inputs = fleet_inputs(pg, bounds, host)?;
    Ok(day_report(
        date,
        tz,
        bounds,
        inputs,
        &sessions::usernames(app)?,
    ))
}

fn day_report(
    date: NaiveDate,
    tz: &Tz,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
    inputs: DayInputs,
    names: &HashMap<String, String>,
) -> Daily {
    let (from_e, to_e) = (from.timestamp() as f64, to.timestamp() as f64);
    let mut by_user: BTreeMap<Option<String>, Usage> = BTreeMap::new();
    let mut by_model: BTreeMap<Option<String>, Usage> = BTreeMap::new();
    let mut totals = Usage::default();
    let mut add = |user: &Option<String>, model: &Option<String>, f: &dyn Fn(&mut Usage)| {
        f(by_user.entry(user.clone()).or_default());
        f(by_model.entry(model.clone()).or_default());
        f(&mut totals);
    };
    for s in &inputs.started {
        add(&s.user, &s.model, &|u: &mut Usage| {
            u.sessions += 1;
            if !s.has_calls {
                u.input_tokens += s.input_tokens;
                u.output_tokens += s.output_tokens;
                u.cost_usd += s.cost_usd;
            }
        });
    }
    for (user, model, n) in &inputs.messages {
        add(user, model, &|u: &mut Usage| u.messages += n);
    }
    for (user, model, call) in &inputs.calls {
        let (i, o, c) = (call.input_tokens, call.output_tokens, call.cost_usd);
        add(user, model, &|u: &mut Usage| {
            u.llm_calls += 1;
            u.input_tokens += i;
            u.output_tokens += o;
            u.cost_usd += c;
        });
    }
    Daily {
        date: date.to_string(),
        tz: tz.name().to_string(),
        from: crate::output::ts(from_e),
        from_epoch: from_e,
        to: crate::output::ts(to_e),
        to_epoch: to_e,
        totals,
        by_user: by_username(by_user, names),
        by_model: by_model
            .into_iter()
            .map(|(model, usage)| ModelUsageRow { model, usage })
            .collect(),
    }
}

/// Rows by username, as a reader looks for them (ids are random), and
/// sessions whose owner is unknown (deleted account, no user id) last.
fn by_username(
    by_user: BTreeMap<Option<String>, Usage>,
    names: &HashMap<String, String>,
) -> Vec<UserUsage> {
    let mut rows: Vec<UserUsage> = by_user
        .into_iter()
        .map(|(user_id, usage)| UserUsage {
            username: user_id
                .as_ref()
                .and_then(|u| names.get(u).cloned())
                .unwrap_or_else(|| "(unknown)".into()),
            user_id,
            usage,
        })
        .collect();
    rows.sort_by(|a, b| {
        let unknown = |r: &UserUsage| r.username == "(unknown)";
        (unknown(a), &a.username, &a.user_id).cmp(&(unknown(b), &b.username, &b.user_id))
    });
    rows
}

/// A user's operator sessions in total (cumulative session totals).
#[derive(Debug, Clone, Serialize)]
pub struct UserTotals {
    pub count: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    /// Σ COALESCE(actual_cost_usd, estimated_cost_usd, 0)
    pub cost_usd: f64,
}

/// `audit user NAME --json`.
#[derive(Debug, Clone, Serialize)]
pub struct UserReport {
    pub user: User,
    pub sessions: UserTotals,
    /// The newest 20 operator sessions, newest first.
    pub recent_sessions: Vec<SessionInfo>,
    /// The newest 50 events with this user's id, oldest first.
    pub recent_events: Vec<Event>,
}

pub fn user_report(app: &App, username: &str) -> Result<UserReport> {
    let user = app.users_ro()?.get(username)?;
    let db = app.state_read()?;
    let (count, input_tokens, output_tokens, cost_usd) = db.user_totals(&user.id)?;
    drop(db);
    let recent_sessions = sessions::list(
        app,
        &sessions::Scope::OwnedBy(user.id.clone()),
        &sessions::ListOptions {
            limit: 20,
            ..Default::default()
        },
    )?;
    let recent_events = match app.events_ro() {
        Ok(s) => s.for_user(&user.id, 50)?,
        Err(e) if e.kind == Kind::NotFound => vec![],
        Err(e) => return Err(e),
    };
    Ok(UserReport {
        user,
        sessions: UserTotals {
            count,
            input_tokens,
            output_tokens,
            cost_usd,
        },
        recent_sessions,
        recent_events,
    })
}

/// `audit user NAME --fleet --json`: the account (the fleet's), its
/// operator sessions on every host as each host published them, and its
/// newest events in the fleet's log.
#[derive(Debug, Clone, Serialize)]
pub struct FleetUserReport {
    pub user: User,
    /// Over every host's published sessions of the user.
    pub sessions: UserTotals,
    /// The newest 20, newest first, each with its host.
    pub recent_sessions: Vec<HostSession>,
    /// The newest 50 events naming the user, oldest first, with their host.
    pub recent_events: Vec<crate::store::pg::HostEvent>,
}

/// A session as its host published it (`session list --json`'s row).
#[derive(Debug, Clone, Serialize)]
pub struct HostSession {
    pub host: String,
    #[serde(flatten)]
    pub info: serde_json::Value,
}

pub fn user_report_fleet(
    app: &App,
    pg: &crate::store::pg::Pg,
    username: &str,
    host: Option<&str>,
) -> Result<FleetUserReport> {
    let user = app.users_ro()?.get(username)?;
    let rows = crate::store::pg::sessions::of_user(pg, &user.id, host)?;
    let mut totals = UserTotals {
        count: 0,
        input_tokens: 0,
        output_tokens: 0,
        cost_usd: 0.0,
    };
    let mut recent_sessions = Vec::new();
    for (host, info) in rows {
        let info: serde_json::Value = serde_json::from_str(&info).map_err(|e| {
            Error::corrupt(format!(
                "host {host} published a session that is not JSON: {e}"
            ))
        })?;
        totals.count += 1;
        totals.input_tokens += num_i64(&info, "input_tokens");
        totals.output_tokens += num_i64(&info, "output_tokens");
        totals.cost_usd += ["actual_cost_usd", "estimated_cost_usd"]
            .iter()
            .find_map(|k| info.get(*k).and_then(|v| v.as_f64()))
            .unwrap_or(0.0);
        if recent_sessions.len() < 20 {
            recent_sessions.push(HostSession { host, info });
        }
    }
    let recent_events = crate::store::pg::PgEventLog::user_events(pg, &user.id, host, 50)?;
    Ok(FleetUserReport {
        user,
        sessions: totals,
        recent_sessions,
        recent_events,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_bounds_follow_the_time_zone() {
        let d = NaiveDate::from_ymd_opt(2026, 3, 8).unwrap();
        let (f, t) = day_bounds(d, &Tz::utc()).unwrap();
        assert_eq!((t - f).num_hours(), 24);
        // US DST starts on 2026-03-08: that local day has 23 hours.
        let (f, t) = day_bounds(d, &Tz::get("America/New_York").unwrap()).unwrap();
        assert_eq!(rfc(f), "2026-03-08T05:00:00.000000Z");
        assert_eq!((t - f).num_hours(), 23);
        let (f, _) = day_bounds(
            NaiveDate::from_ymd_opt(2026, 7, 20).unwrap(),
            &Tz::get("Asia/Shanghai").unwrap(),
        )
        .unwrap();
        assert_eq!(rfc(f), "2026-07-19T16:00:00.000000Z");
    }
}
