//! Usage over time (`GET /api/usage`, the dashboard's *Usage* view): spend
//! and tokens per bucket (a local day, or a local hour for ranges of two
//! days or less) over `[since, until)` in a time zone, grouped by user, API
//! key or model.
//!
//! # What counts
//!
//! Every `llm_call` event of an operator session (`session_id` `op_…`) whose
//! `ts` lies in the range: `data.input_tokens`, `data.output_tokens`,
//! `data.cost_usd` (missing → 0), as rule 1 of `audit daily` counts them
//! (`reports.rs`). Its user is the event's `user_id`, else its session's;
//! its model `data.model`, else its session's; its key is the personal API
//! key named in the event's `actor` (`http:NAME/key_…`, what the hash chain
//! proves about who called), else none: a login's turn. Sessions without
//! any `llm_call` event (rule 2 of `audit daily`) have no per-call times,
//! so they cannot be put in hours or days and are left out here.
//!
//! Bucket boundaries are local midnights (or hours) in the zone: a Berlin
//! day starts at 00:00 Berlin time, and the day DST starts has 23 hours.

use crate::app::App;
use crate::error::{Error, Kind, Result};
use crate::store::state::Session;
use jiff::civil::Date;
use jiff::tz::{Offset, TimeZone};
use jiff::Timestamp;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// The longest range one request may ask for, in days.
pub const MAX_DAYS: i64 = 400;
/// Ranges of at most this many days are cut into hours.
pub const HOURLY_UP_TO_DAYS: i64 = 2;
/// The range when none is given: the last 7 local days, today included.
pub const DEFAULT_DAYS: i64 = 7;

/// What the series are grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum By {
    User,
    Key,
    Model,
}

impl By {
    pub fn parse(s: &str) -> Result<By> {
        match s {
            "user" => Ok(By::User),
            "key" => Ok(By::Key),
            "model" => Ok(By::Model),
            _ => Err(Error::usage(format!(
                "by {:?}: expected user, key or model",
                clip(s)
            ))),
        }
    }
}

/// One validated request: the range, the zone, the grouping, and whose
/// usage (`None`: everyone's).
#[derive(Debug, Clone)]
pub struct UsageQuery {
    pub since: Date,
    pub until: Date,
    pub tz: TimeZone,
    /// As the caller spelled it (an IANA name or `±HH:MM`).
    pub tz_name: String,
    pub by: By,
    /// Only this user id's calls.
    pub user_id: Option<String>,
}

fn clip(s: &str) -> String {
    crate::output::clip(&crate::output::sanitize(s), 40)
}

/// An IANA zone name (`Europe/Berlin`, `UTC`) or a fixed UTC offset
/// (`+05:30`, `-08:00`).
pub fn parse_tz(name: &str) -> Result<TimeZone> {
    let bad = || {
        Error::usage(format!(
            "tz {:?}: not an IANA time zone or a UTC offset",
            clip(name)
        ))
        .hint("use a name like UTC, Europe/Berlin or America/New_York, or an offset like +05:30")
    };
    if let Some(rest) = name.strip_prefix(['+', '-']) {
        let b = rest.as_bytes();
        if b.len() != 5
            || b[2] != b':'
            || !rest
                .chars()
                .filter(|&c| c != ':')
                .all(|c| c.is_ascii_digit())
        {
            return Err(bad());
        }
        let (h, m): (i32, i32) = (
            rest[..2].parse().map_err(|_| bad())?,
            rest[3..].parse().map_err(|_| bad())?,
        );
        // Real offsets lie within -12:00..+14:00.
        if h > 14 || m > 59 {
            return Err(bad());
        }
        let secs = (h * 3600 + m * 60) * if name.starts_with('-') { -1 } else { 1 };
        return Ok(TimeZone::fixed(
            Offset::from_seconds(secs).map_err(|_| bad())?,
        ));
    }
    // A name is letters, digits and `/_-+`; anything else (`..`, spaces) is
    // refused before the tz database is asked.
    let plausible = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '-' | '+'))
        && !name.starts_with('/');
    if !plausible {
        return Err(bad());
    }
    TimeZone::get(name).map_err(|_| bad())
}

fn parse_date(what: &str, s: &str) -> Result<Date> {
    let shape = s.len() == 10
        && s.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    let d = shape.then(|| s.parse::<Date>().ok()).flatten();
    d.ok_or_else(|| Error::usage(format!("{what} {:?}: expected a date YYYY-MM-DD", clip(s))))
}

/// The query from user input. `since` and `until` are local dates
/// (`until` exclusive); without them, the last [`DEFAULT_DAYS`] days up to
/// and including today in `tz`.
pub fn parse_query(
    since: Option<&str>,
    until: Option<&str>,
    tz: &str,
    by: &str,
    user_id: Option<String>,
) -> Result<UsageQuery> {
    let by = By::parse(by)?;
    let zone = parse_tz(tz)?;
    let until = match until {
        Some(u) => parse_date("until", u)?,
        None => zone
            .to_datetime(Timestamp::now())
            .date()
            .tomorrow()
            .map_err(|e| Error::usage(format!("until: {e}")))?,
    };
    let since = match since {
        Some(s) => parse_date("since", s)?,
        None => until
            .checked_sub(jiff::Span::new().days(DEFAULT_DAYS))
            .map_err(|e| Error::usage(format!("since: {e}")))?,
    };
    if since >= until {
        return Err(Error::usage(format!(
            "since ({since}) must be before until ({until}); until is the first day not included"
        )));
    }
    let days = day_count(since, until);
    if days > MAX_DAYS {
        return Err(Error::usage(format!(
            "the range {since} – {until} is longer than {MAX_DAYS} days"
        )));
    }
    Ok(UsageQuery {
        since,
        until,
        tz: zone,
        tz_name: tz.to_string(),
        by,
        user_id,
    })
}

/// Days in `[since, until)`, counting at most to `MAX_DAYS + 1` (enough to
/// refuse a range, without date arithmetic that could overflow).
fn day_count(since: Date, until: Date) -> i64 {
    let mut n = 0;
    let mut d = since;
    while d < until && n <= MAX_DAYS {
        n += 1;
        match d.tomorrow() {
            Ok(t) => d = t,
            Err(_) => break,
        }
    }
    n
}

/// The first instant of local day `d` (after the gap when midnight does
/// not exist there; the earlier one when it exists twice).
fn local_midnight(d: Date, tz: &TimeZone) -> Result<Timestamp> {
    tz.to_ambiguous_timestamp(d.to_datetime(jiff::civil::Time::midnight()))
        .compatible()
        .map_err(|e| Error::usage(format!("{d} has no midnight in this time zone: {e}")))
}

/// Bucket starts, in order, and the end of the last one.
fn bucket_starts(q: &UsageQuery) -> Result<(Vec<Timestamp>, Timestamp, &'static str)> {
    let end = local_midnight(q.until, &q.tz)?;
    let mut starts = Vec::new();
    if day_count(q.since, q.until) <= HOURLY_UP_TO_DAYS {
        // Absolute hours from local midnight: where DST moves the clock by a
        // whole hour (everywhere but Lord Howe Island's half hour), each is
        // one local clock hour, so a 23-hour day has 23 buckets and a
        // 25-hour day 25.
        let mut t = local_midnight(q.since, &q.tz)?;
        while t < end {
            starts.push(t);
            t = t
                .checked_add(jiff::SignedDuration::from_hours(1))
                .map_err(|e| Error::usage(e.to_string()))?;
        }
        return Ok((starts, end, "hour"));
    }
    let mut d = q.since;
    while d < q.until {
        starts.push(local_midnight(d, &q.tz)?);
        d = d.tomorrow().map_err(|e| Error::usage(e.to_string()))?;
    }
    Ok((starts, end, "day"))
}

/// Tokens and spend of one bucket, one group or everything.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Amounts {
    pub llm_calls: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cost_usd: f64,
}

impl Amounts {
    fn add(&mut self, c: &Call) {
        self.llm_calls += 1;
        self.input_tokens += c.input_tokens;
        self.output_tokens += c.output_tokens;
        self.cost_usd += c.cost_usd;
    }
}

/// One bucket's start: local time with its offset, and Unix seconds.
#[derive(Debug, Clone, Serialize)]
pub struct Bucket {
    pub start: String,
    pub start_epoch: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Point {
    pub start: String,
    #[serde(flatten)]
    pub amounts: Amounts,
}

/// One group's series (one point per bucket, zeros included) and totals.
#[derive(Debug, Clone, Serialize)]
pub struct Group {
    /// The user id, key id or model; `null`: unknown user or model, or no
    /// key (a login's turns).
    pub key: Option<String>,
    /// What a person reads: username, key label and prefix, model name.
    pub label: String,
    pub totals: Amounts,
    pub series: Vec<Point>,
}

/// `GET /api/usage`.
#[derive(Debug, Clone, Serialize)]
pub struct UsageReport {
    pub since: String,
    pub until: String,
    pub tz: String,
    pub by: By,
    /// `day` or `hour`.
    pub bucket: &'static str,
    /// The range in UTC, RFC 3339.
    pub from: String,
    pub to: String,
    pub buckets: Vec<Bucket>,
    /// Highest spend first, then by label.
    pub groups: Vec<Group>,
    pub totals: Amounts,
}

/// One `llm_call` event as usage counts it.
struct Call {
    ts: Timestamp,
    session_id: String,
    user_id: Option<String>,
    key_id: Option<String>,
    model: Option<String>,
    input_tokens: i64,
    output_tokens: i64,
    cost_usd: f64,
}

/// RFC 3339 UTC with microseconds: how events.db stores `ts`, so string
/// comparison in SQL is time order.
fn db_ts(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// The key id in an actor `http:NAME/key_…` (usernames have no `/`).
fn key_of_actor(actor: &str) -> Option<String> {
    let rest = actor.strip_prefix("http:")?;
    let (_, id) = rest.rsplit_once('/')?;
    id.starts_with("key_").then(|| id.to_string())
}

fn calls(app: &App, from: Timestamp, to: Timestamp) -> Result<Vec<Call>> {
    let path = app.home.events_db();
    let conn = match crate::store::open_own_readonly(&path, "events.db") {
        Ok(c) => c,
        // No events.db before the first event: no usage, not an error.
        Err(e) if e.kind == Kind::NotFound => return Ok(vec![]),
        Err(e) => return Err(e),
    };
    let err = |e| Error::sqlite(&path, "reading llm_call events", e);
    let mut st = conn
        .prepare(
            r"SELECT ts, session_id, user_id, actor, data FROM events
              WHERE type = 'llm_call' AND ts >= ?1 AND ts < ?2 AND session_id LIKE 'op\_%' ESCAPE '\'
              ORDER BY seq",
        )
        .map_err(err)?;
    let mut rows = st.query([db_ts(from), db_ts(to)]).map_err(err)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(err)? {
        let ts: String = r.get(0).map_err(err)?;
        // A row whose time does not parse cannot be placed in a bucket;
        // `audit verify` is where a damaged log is reported.
        let Ok(ts) = ts.parse::<Timestamp>() else {
            continue;
        };
        let actor: String = r.get(3).map_err(err)?;
        let data: String = r.get(4).map_err(err)?;
        let v: serde_json::Value = serde_json::from_str(&data).unwrap_or(serde_json::Value::Null);
        let int = |k: &str| {
            v.get(k)
                .and_then(|x| x.as_i64().or_else(|| x.as_f64().map(|f| f as i64)))
                .unwrap_or(0)
        };
        out.push(Call {
            ts,
            session_id: r.get(1).map_err(err)?,
            user_id: r.get(2).map_err(err)?,
            key_id: key_of_actor(&actor),
            model: v.get("model").and_then(|m| m.as_str()).map(str::to_string),
            input_tokens: int("input_tokens"),
            output_tokens: int("output_tokens"),
            cost_usd: v
                .get("cost_usd")
                .and_then(serde_json::Value::as_f64)
                .unwrap_or(0.0),
        });
    }
    Ok(out)
}

/// User and model from the call's session where the event lacks them.
fn fill_from_sessions(app: &App, calls: &mut [Call]) -> Result<()> {
    if !calls
        .iter()
        .any(|c| c.user_id.is_none() || c.model.is_none())
    {
        return Ok(());
    }
    let db = match app.state_read() {
        Ok(db) => db,
        Err(e) if e.kind == Kind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let mut sessions: HashMap<String, Option<Session>> = HashMap::new();
    for c in calls
        .iter_mut()
        .filter(|c| c.user_id.is_none() || c.model.is_none())
    {
        if !sessions.contains_key(&c.session_id) {
            sessions.insert(c.session_id.clone(), db.get_session(&c.session_id)?);
        }
        if let Some(s) = &sessions[&c.session_id] {
            c.user_id = c.user_id.take().or_else(|| s.user_id.clone());
            c.model = c.model.take().or_else(|| s.model.clone());
        }
    }
    Ok(())
}

/// Labels of the groups: usernames, key labels, model names.
fn label(app: &App, by: By, key: Option<&str>, names: &HashMap<String, String>) -> Result<String> {
    Ok(match (by, key) {
        (By::User, Some(id)) => names.get(id).cloned().unwrap_or_else(|| "(unknown)".into()),
        (By::User | By::Model, None) => "(unknown)".into(),
        (By::Model, Some(m)) => m.to_string(),
        (By::Key, None) => "(login, no key)".into(),
        (By::Key, Some(id)) => {
            let k = match app.users_ro() {
                Ok(u) => u.key_get(id)?,
                Err(e) if e.kind == Kind::NotFound => None,
                Err(e) => return Err(e),
            };
            match k {
                Some(k) if !k.label.is_empty() => {
                    format!("{} ({}, {})", k.label, k.prefix, k.username)
                }
                Some(k) => format!("{} ({})", k.prefix, k.username),
                None => format!("{id} (deleted)"),
            }
        }
    })
}

/// The report (see the module docs for what counts).
pub fn usage(app: &App, q: &UsageQuery) -> Result<UsageReport> {
    let (starts, end, bucket) = bucket_starts(q)?;
    let from = starts[0];
    let mut calls = calls(app, from, end)?;
    fill_from_sessions(app, &mut calls)?;
    if let Some(only) = &q.user_id {
        calls.retain(|c| c.user_id.as_deref() == Some(only.as_str()));
    }
    let names = crate::ops::sessions::usernames(app)?;

    let epochs: Vec<i64> = starts.iter().map(|t| t.as_second()).collect();
    let mut groups: BTreeMap<Option<String>, Vec<Amounts>> = BTreeMap::new();
    let mut totals = Amounts::default();
    for c in &calls {
        // The last bucket starting at or before the call.
        let i = epochs
            .partition_point(|&s| s <= c.ts.as_second())
            .saturating_sub(1);
        let key = match q.by {
            By::User => c.user_id.clone(),
            By::Key => c.key_id.clone(),
            By::Model => c.model.clone(),
        };
        groups
            .entry(key)
            .or_insert_with(|| vec![Amounts::default(); starts.len()])[i]
            .add(c);
        totals.add(c);
    }

    let local = |t: Timestamp| {
        let off = q.tz.to_offset(t);
        t.display_with_offset(off).to_string()
    };
    let buckets: Vec<Bucket> = starts
        .iter()
        .map(|&t| Bucket {
            start: local(t),
            start_epoch: t.as_second(),
        })
        .collect();
    let mut out = Vec::with_capacity(groups.len());
    for (key, points) in groups {
        let mut sum = Amounts::default();
        for p in &points {
            sum.llm_calls += p.llm_calls;
            sum.input_tokens += p.input_tokens;
            sum.output_tokens += p.output_tokens;
            sum.cost_usd += p.cost_usd;
        }
        out.push(Group {
            label: label(app, q.by, key.as_deref(), &names)?,
            key,
            totals: sum,
            series: buckets
                .iter()
                .zip(points)
                .map(|(b, amounts)| Point {
                    start: b.start.clone(),
                    amounts,
                })
                .collect(),
        });
    }
    out.sort_by(|a, b| {
        b.totals
            .cost_usd
            .total_cmp(&a.totals.cost_usd)
            .then_with(|| a.label.cmp(&b.label))
    });
    Ok(UsageReport {
        since: q.since.to_string(),
        until: q.until.to_string(),
        tz: q.tz_name.clone(),
        by: q.by,
        bucket,
        from: from.to_string(),
        to: end.to_string(),
        buckets,
        groups: out,
        totals,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(since: &str, until: &str, tz: &str) -> UsageQuery {
        parse_query(Some(since), Some(until), tz, "user", None).unwrap()
    }

    #[test]
    fn usage_days_follow_the_zone_across_dst() {
        // Europe/Berlin moves to summer time on 2026-03-29: a 23-hour day.
        let (s, end, b) = bucket_starts(&q("2026-03-28", "2026-03-31", "Europe/Berlin")).unwrap();
        assert_eq!(b, "day");
        let st: Vec<String> = s.iter().map(ToString::to_string).collect();
        assert_eq!(
            st,
            [
                "2026-03-27T23:00:00Z",
                "2026-03-28T23:00:00Z",
                "2026-03-29T22:00:00Z"
            ]
        );
        assert_eq!(end.to_string(), "2026-03-30T22:00:00Z");
        // The hourly cut of that day has 23 buckets; the autumn day 25.
        let (s, _, b) = bucket_starts(&q("2026-03-29", "2026-03-30", "Europe/Berlin")).unwrap();
        assert_eq!((b, s.len()), ("hour", 23));
        let (s, _, _) = bucket_starts(&q("2026-10-25", "2026-10-26", "Europe/Berlin")).unwrap();
        assert_eq!(s.len(), 25);
        let (s, _, _) = bucket_starts(&q("2026-10-25", "2026-10-27", "+05:30")).unwrap();
        assert_eq!(
            (s.len(), s[0].to_string().as_str()),
            (48, "2026-10-24T18:30:00Z")
        );
    }

    #[test]
    fn usage_refuses_bad_input_clearly() {
        let e = |since: &str, until: &str, tz: &str, by: &str| {
            parse_query(Some(since), Some(until), tz, by, None)
                .unwrap_err()
                .message
        };
        assert!(
            e("2026-03-01", "2026-03-02", "Mars/Olympus", "user").contains("not an IANA time zone")
        );
        assert!(e("2026-03-01", "2026-03-02", "../../etc/passwd", "user").contains("tz"));
        assert!(e("2026-03-01", "2026-03-02", "+15:00", "user").contains("offset"));
        assert!(e("2026-03-02", "2026-03-02", "UTC", "user").contains("must be before"));
        assert!(e("2025-01-01", "2026-03-02", "UTC", "user").contains("longer than 400 days"));
        assert!(e("2026-3-1", "2026-03-02", "UTC", "user").contains("YYYY-MM-DD"));
        assert!(e("2026-02-30", "2026-03-02", "UTC", "user").contains("YYYY-MM-DD"));
        assert!(e("2026-03-01", "2026-03-02", "UTC", "team").contains("user, key or model"));
        // 400 days exactly is allowed; the default range is 7 days to tomorrow.
        assert!(parse_query(Some("2025-01-01"), Some("2026-02-05"), "UTC", "key", None).is_ok());
        let d = parse_query(None, None, "Asia/Tokyo", "model", None).unwrap();
        assert_eq!(day_count(d.since, d.until), DEFAULT_DAYS);
    }

    #[test]
    fn usage_key_of_actor() {
        assert_eq!(
            key_of_actor("http:alice/key_0a1b2c").as_deref(),
            Some("key_0a1b2c")
        );
        assert_eq!(key_of_actor("http:alice"), None);
        assert_eq!(key_of_actor("cli:alice"), None);
    }
}
