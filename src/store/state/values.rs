//! Tolerant readers of state.db values (NULLs, types Hermes may change).

use super::*;

pub(super) fn opt_f64(r: &Row, i: usize) -> rusqlite::Result<Option<f64>> {
    Ok(match r.get_ref(i)? {
        ValueRef::Null | ValueRef::Blob(_) => None,
        ValueRef::Integer(n) => Some(n as f64),
        ValueRef::Real(f) => Some(f),
        ValueRef::Text(t) => std::str::from_utf8(t)
            .ok()
            .and_then(|s| s.trim().parse().ok()),
    })
}

pub(super) fn opt_i64(r: &Row, i: usize) -> rusqlite::Result<Option<i64>> {
    Ok(match r.get_ref(i)? {
        ValueRef::Null | ValueRef::Blob(_) => None,
        ValueRef::Integer(n) => Some(n),
        ValueRef::Real(f) => Some(f as i64),
        ValueRef::Text(t) => std::str::from_utf8(t)
            .ok()
            .and_then(|s| s.trim().parse().ok()),
    })
}

pub(super) fn int(r: &Row, i: usize) -> rusqlite::Result<i64> {
    Ok(opt_i64(r, i)?.unwrap_or(0))
}

pub(super) fn opt_text(r: &Row, i: usize) -> rusqlite::Result<Option<String>> {
    Ok(match r.get_ref(i)? {
        ValueRef::Null => None,
        ValueRef::Integer(n) => Some(n.to_string()),
        ValueRef::Real(f) => Some(f.to_string()),
        ValueRef::Text(t) | ValueRef::Blob(t) => Some(String::from_utf8_lossy(t).into_owned()),
    })
}

pub(super) fn text(r: &Row, i: usize) -> rusqlite::Result<String> {
    Ok(opt_text(r, i)?.unwrap_or_default())
}

pub(super) fn time_pair(epoch: Option<f64>) -> (Option<String>, Option<f64>) {
    (epoch.map(crate::output::ts), epoch)
}

pub(super) fn session_from_row(r: &Row) -> rusqlite::Result<Session> {
    let (started_at, started_at_epoch) = time_pair(opt_f64(r, 5)?);
    let (ended_at, ended_at_epoch) = time_pair(opt_f64(r, 6)?);
    Ok(Session {
        id: text(r, 0)?,
        source: text(r, 1)?,
        user_id: opt_text(r, 2)?,
        model: opt_text(r, 3)?,
        title: opt_text(r, 4)?,
        started_at,
        started_at_epoch,
        ended_at,
        ended_at_epoch,
        end_reason: opt_text(r, 7)?,
        message_count: int(r, 8)?,
        tool_call_count: int(r, 9)?,
        input_tokens: int(r, 10)?,
        output_tokens: int(r, 11)?,
        cache_read_tokens: int(r, 12)?,
        cache_write_tokens: int(r, 13)?,
        reasoning_tokens: int(r, 14)?,
        billing_provider: opt_text(r, 15)?,
        estimated_cost_usd: opt_f64(r, 16)?,
        actual_cost_usd: opt_f64(r, 17)?,
        cost_status: opt_text(r, 18)?,
        api_call_count: int(r, 19)?,
        parent_session_id: opt_text(r, 20)?,
        archived: int(r, 21)? != 0,
        first_user_message: opt_text(r, 22)?,
    })
}

pub(super) fn message_from_row(r: &Row) -> rusqlite::Result<Message> {
    let tool_calls = match opt_text(r, 5)? {
        None => serde_json::Value::Null,
        Some(s) => serde_json::from_str(&s).unwrap_or(serde_json::Value::String(s)),
    };
    let (timestamp, timestamp_epoch) = time_pair(opt_f64(r, 7)?);
    Ok(Message {
        id: int(r, 0)?,
        session_id: text(r, 1)?,
        role: opt_text(r, 2)?,
        content: opt_text(r, 3)?,
        tool_call_id: opt_text(r, 4)?,
        tool_calls,
        tool_name: opt_text(r, 6)?,
        timestamp,
        timestamp_epoch,
        token_count: opt_i64(r, 8)?,
        finish_reason: opt_text(r, 9)?,
        reasoning: opt_text(r, 10)?,
        active: opt_i64(r, 11)?.unwrap_or(1) != 0,
    })
}

pub(super) fn now_epoch() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
