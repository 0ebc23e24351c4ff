//! Reading sessions, messages, usage and counts.

use super::*;

impl StateDb {
    /// One session by id (any source).
    pub fn get_session(&self, id: &str) -> Result<Option<Session>> {
        self.conn
            .query_row(
                &format!(
                    "SELECT {} FROM sessions s WHERE s.id = ?1",
                    self.session_cols
                ),
                [id],
                session_from_row,
            )
            .optional()
            .map_err(self.err("reading session"))
    }

    /// The SQL of [`list_sessions`](Self::list_sessions) and its parameters.
    ///
    /// Plan: walk `idx_sessions_started` (started_at DESC) in order and stop
    /// after LIMIT matches. The unary `+` on `source`, `id` and `user_id`
    /// keeps SQLite from picking idx_sessions_source / _source_id /
    /// _gateway_peer, which would fetch every operator row and sort them
    /// all in a temp b-tree. Ties are broken by rowid, the index's own
    /// trailing key, so no sort step is needed at all.
    pub fn list_sql(&self, q: &ListQuery) -> (String, Vec<rusqlite::types::Value>) {
        use rusqlite::types::Value;
        let mut sql = format!("SELECT {} FROM sessions s WHERE 1", self.session_cols);
        let mut p: Vec<Value> = Vec::new();
        if q.rows.operator_only {
            sql.push_str(r" AND +s.source = 'operator' AND +s.id LIKE 'op\_%' ESCAPE '\'");
        }
        if let Some(u) = &q.rows.user_id {
            p.push(Value::Text(u.clone()));
            sql.push_str(&format!(" AND +s.user_id = ?{}", p.len()));
        }
        if let Some(t) = q.since {
            p.push(Value::Real(t));
            sql.push_str(&format!(" AND s.started_at >= ?{}", p.len()));
        }
        if let Some(t) = q.until {
            p.push(Value::Real(t));
            sql.push_str(&format!(" AND s.started_at < ?{}", p.len()));
        }
        p.push(Value::Integer(q.limit.unwrap_or(-1)));
        p.push(Value::Integer(q.offset.max(0)));
        sql.push_str(&format!(
            " ORDER BY s.started_at DESC, s.rowid LIMIT ?{} OFFSET ?{}",
            p.len() - 1,
            p.len()
        ));
        (sql, p)
    }

    /// Sessions, newest first (`started_at DESC`, then rowid).
    pub fn list_sessions(&self, q: &ListQuery) -> Result<Vec<Session>> {
        let (sql, p) = self.list_sql(q);
        let mut st = self
            .conn
            .prepare_cached(&sql)
            .map_err(self.err("listing sessions"))?;
        let rows = st
            .query_map(params_from_iter(p.iter()), session_from_row)
            .and_then(|r| r.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(self.err("listing sessions"))?;
        Ok(rows)
    }

    /// A session's messages in Hermes' replay order (`ORDER BY id`),
    /// including rewound ones (`active` says which).
    pub fn messages(&self, session_id: &str) -> Result<Vec<Message>> {
        let active = if self.caps.messages_active {
            "m.active"
        } else {
            "1"
        };
        let mut st = self
            .conn
            .prepare(&format!(
                "SELECT m.id, m.session_id, m.role, m.content, m.tool_call_id, m.tool_calls, m.tool_name, \
                 m.timestamp, m.token_count, m.finish_reason, m.reasoning, {active} \
                 FROM messages m WHERE m.session_id = ?1 ORDER BY m.id"
            ))
            .map_err(self.err("reading messages"))?;
        let rows = st
            .query_map([session_id], message_from_row)
            .and_then(|r| r.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(self.err("reading messages"))?;
        Ok(rows)
    }

    /// Per-model usage of one session (session_model_usage summed per
    /// model and billing provider, ordered by model then provider).
    pub fn model_usage(&self, session_id: &str) -> Result<Vec<ModelUsage>> {
        let mut st = self
            .conn
            .prepare(
                "SELECT model, billing_provider, SUM(api_call_count), SUM(input_tokens), SUM(output_tokens), \
                 SUM(cache_read_tokens), SUM(cache_write_tokens), SUM(reasoning_tokens), \
                 TOTAL(estimated_cost_usd), TOTAL(actual_cost_usd) \
                 FROM session_model_usage WHERE session_id = ?1 \
                 GROUP BY model, billing_provider ORDER BY model, billing_provider",
            )
            .map_err(self.err("reading model usage"))?;
        let rows = st
            .query_map([session_id], |r| {
                Ok(ModelUsage {
                    model: opt_text(r, 0)?,
                    billing_provider: opt_text(r, 1)?,
                    api_call_count: int(r, 2)?,
                    input_tokens: int(r, 3)?,
                    output_tokens: int(r, 4)?,
                    cache_read_tokens: int(r, 5)?,
                    cache_write_tokens: int(r, 6)?,
                    reasoning_tokens: int(r, 7)?,
                    estimated_cost_usd: opt_f64(r, 8)?.unwrap_or(0.0),
                    actual_cost_usd: opt_f64(r, 9)?.unwrap_or(0.0),
                })
            })
            .and_then(|r| r.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(self.err("reading model usage"))?;
        Ok(rows)
    }

    /// Operator sessions of one user: (count, input tokens, output tokens,
    /// cost = Σ COALESCE(actual_cost_usd, estimated_cost_usd, 0)).
    pub fn user_totals(&self, user_id: &str) -> Result<(i64, i64, i64, f64)> {
        self.conn
            .query_row(
                &format!(
                    "SELECT count(*), TOTAL(s.input_tokens), TOTAL(s.output_tokens), \
                     TOTAL(COALESCE(s.actual_cost_usd, s.estimated_cost_usd, 0)) \
                     FROM sessions s WHERE {OPERATOR_ROW_S} AND s.user_id = ?1"
                ),
                [user_id],
                |r| {
                    Ok((
                        int(r, 0)?,
                        opt_f64(r, 1)?.unwrap_or(0.0) as i64,
                        opt_f64(r, 2)?.unwrap_or(0.0) as i64,
                        opt_f64(r, 3)?.unwrap_or(0.0),
                    ))
                },
            )
            .map_err(self.err("summing user sessions"))
    }

    /// Messages with `from <= timestamp < to` in operator sessions, counted
    /// per (session user_id, session model).
    pub fn message_counts_between(&self, from: f64, to: f64) -> Result<Vec<MessageCount>> {
        let mut st = self
            .conn
            .prepare(&format!(
                "SELECT s.user_id, s.model, count(*) FROM sessions s \
                 JOIN messages m ON m.session_id = s.id AND m.timestamp >= ?1 AND m.timestamp < ?2 \
                 WHERE {OPERATOR_ROW_S} GROUP BY s.user_id, s.model"
            ))
            .map_err(self.err("counting messages"))?;
        let rows = st
            .query_map(rusqlite::params![from, to], |r| {
                Ok((opt_text(r, 0)?, opt_text(r, 1)?, int(r, 2)?))
            })
            .and_then(|r| r.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(self.err("counting messages"))?;
        Ok(rows)
    }

    /// When each message of a session was written (Unix seconds), in order.
    pub fn message_times(&self, session_id: &str) -> Result<Vec<f64>> {
        let mut st = self
            .conn
            .prepare_cached("SELECT timestamp FROM messages WHERE session_id = ?1 ORDER BY id")
            .map_err(self.err("reading message times"))?;
        let rows = st
            .query_map([session_id], |r| r.get::<_, f64>(0))
            .and_then(|r| r.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(self.err("reading message times"))?;
        Ok(rows)
    }

    /// The session's system prompt as Hermes stored it: inline
    /// (`sessions.system_prompt`, 0.19) or by hash (`system_prompts`, 0.22).
    pub fn system_prompt(&self, id: &str) -> Result<Option<String>> {
        let sql = match (
            self.caps.sessions_system_prompt,
            self.caps.system_prompts_table,
        ) {
            (true, true) => {
                "SELECT COALESCE(s.system_prompt, p.prompt) FROM sessions s \
                 LEFT JOIN system_prompts p ON p.hash = s.system_prompt_hash WHERE s.id = ?1"
            }
            (false, true) => {
                "SELECT p.prompt FROM sessions s \
                 LEFT JOIN system_prompts p ON p.hash = s.system_prompt_hash WHERE s.id = ?1"
            }
            (true, false) => "SELECT s.system_prompt FROM sessions s WHERE s.id = ?1",
            (false, false) => return Ok(None),
        };
        self.conn
            .query_row(sql, [id], |r| opt_text(r, 0))
            .optional()
            .map(Option::flatten)
            .map_err(self.err("reading the system prompt"))
    }

    // -- writes (operator rows only) -------------------------------------

    /// `EXPLAIN QUERY PLAN` details of a statement (for tests and `doctor`).
    pub fn query_plan(&self, sql: &str, p: &[&dyn ToSql]) -> Result<Vec<String>> {
        let mut st = self
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .map_err(self.err("explaining query"))?;
        let rows = st
            .query_map(p, |r| r.get::<_, String>(3))
            .and_then(|r| r.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(self.err("explaining query"))?;
        Ok(rows)
    }
}
