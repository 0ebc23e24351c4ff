//! Search: Hermes' FTS indexes, LIKE for short CJK terms, and the bounded scan of rows the indexes leave out.

use super::*;

impl StateDb {
    /// Full-text search limited to `rows`; at most `limit` hits. FTS paths
    /// are ordered by relevance (FTS5 rank, then message id), the LIKE path
    /// newest first. Rewound rows are excluded like Hermes does
    /// (`active = 1 OR compacted = 1`). Rows of operator sessions that
    /// Hermes' index leaves out ([`FtsCoverage`]) are found by a bounded
    /// scan after the indexed hits.
    pub fn search(&self, query: &str, rows: &RowFilter, limit: i64) -> Result<SearchOutcome> {
        use rusqlite::types::Value;
        let plan = plan_search(query, &self.caps)?;
        let live = self.live_messages_sql();
        let mut p: Vec<Value> = Vec::new();
        let mut wh: Vec<String> = live.iter().cloned().collect();
        let (from, snippet, order, by) = match &plan {
            SearchPlan::Nothing => return Ok(SearchOutcome::default()),
            SearchPlan::Fts(expr) => {
                p.push(Value::Text(expr.clone()));
                wh.insert(0, format!("messages_fts MATCH ?{}", p.len()));
                (
                    "messages_fts JOIN messages m ON m.id = messages_fts.rowid",
                    "snippet(messages_fts, 0, '>>>', '<<<', '...', 32)".to_string(),
                    "messages_fts.rank, m.id",
                    MatchedBy::Fts,
                )
            }
            SearchPlan::Trigram(expr) => {
                p.push(Value::Text(expr.clone()));
                wh.insert(0, format!("messages_fts_trigram MATCH ?{}", p.len()));
                (
                    "messages_fts_trigram JOIN messages m ON m.id = messages_fts_trigram.rowid",
                    "snippet(messages_fts_trigram, 0, '>>>', '<<<', '...', 32)".to_string(),
                    "messages_fts_trigram.rank, m.id",
                    MatchedBy::Trigram,
                )
            }
            SearchPlan::Like(terms) => {
                wh.extend(like_terms(terms, &mut p));
                (
                    "messages m",
                    like_snippet(terms, &mut p),
                    "m.timestamp DESC, m.id DESC",
                    MatchedBy::Like,
                )
            }
        };
        if rows.operator_only {
            wh.push(OPERATOR_ROW_S.to_string());
        }
        if let Some(u) = &rows.user_id {
            p.push(Value::Text(u.clone()));
            wh.push(format!("s.user_id = ?{}", p.len()));
        }
        p.push(Value::Integer(limit));
        let sql = format!(
            "SELECT m.session_id, m.id, m.role, {snippet}, m.timestamp, s.source, s.user_id \
             FROM {from} JOIN sessions s ON s.id = m.session_id \
             WHERE {} ORDER BY {order} LIMIT ?{}",
            wh.join(" AND "),
            p.len()
        );
        let mut out = SearchOutcome {
            hits: self.hits(&sql, &p, by)?,
            ..Default::default()
        };
        let room = limit - out.hits.len() as i64;
        let uncovered = match &plan {
            SearchPlan::Fts(_) => self
                .coverage()?
                .fts_tool_prefix
                .map(|n| format!("m.role = 'tool' AND length(m.content) > {n}")),
            SearchPlan::Trigram(_) if self.coverage()?.trigram_skips_tools => {
                Some("m.role = 'tool'".to_string())
            }
            _ => None,
        };
        if let (Some(uncovered), true) = (uncovered, room > 0) {
            let terms = match &plan {
                SearchPlan::Fts(_) => plan_words(query),
                _ => vec![escape_like(&query_terms(query).join(" "))],
            };
            self.scan(&mut out, &uncovered, &terms, rows, room)?;
        }
        Ok(out)
    }

    /// `active = 1 OR compacted = 1` where the columns exist.
    pub(super) fn live_messages_sql(&self) -> Option<String> {
        match (self.caps.messages_active, self.caps.messages_compacted) {
            (true, true) => Some("(m.active = 1 OR m.compacted = 1)".into()),
            (true, false) => Some("m.active = 1".into()),
            _ => None,
        }
    }

    pub(super) fn hits(
        &self,
        sql: &str,
        p: &[rusqlite::types::Value],
        by: MatchedBy,
    ) -> Result<Vec<SearchHit>> {
        let mut st = self
            .conn
            .prepare(sql)
            .map_err(self.err("searching messages"))?;
        let hits = st
            .query_map(params_from_iter(p.iter()), |r| {
                let (timestamp, timestamp_epoch) = time_pair(opt_f64(r, 4)?);
                Ok(SearchHit {
                    session_id: text(r, 0)?,
                    message_id: int(r, 1)?,
                    role: opt_text(r, 2)?,
                    snippet: opt_text(r, 3)?,
                    timestamp,
                    timestamp_epoch,
                    source: opt_text(r, 5)?,
                    user_id: opt_text(r, 6)?,
                    matched_by: by,
                })
            })
            .and_then(|r| r.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(self.err("searching messages"))?;
        Ok(hits)
    }

    /// The fallback: operator-session rows matching `uncovered` (rows
    /// Hermes' index leaves out), newest [`SCAN_MAX_ROWS`] of them, each
    /// term a substring (`LIKE`). Appends at most `room` hits not already
    /// found.
    pub(super) fn scan(
        &self,
        out: &mut SearchOutcome,
        uncovered: &str,
        terms: &[String],
        rows: &RowFilter,
        room: i64,
    ) -> Result<()> {
        use rusqlite::types::Value;
        let mut p: Vec<Value> = Vec::new();
        let mut cand = vec![OPERATOR_ROW_S.to_string(), uncovered.to_string()];
        cand.extend(self.live_messages_sql());
        if let Some(u) = &rows.user_id {
            p.push(Value::Text(u.clone()));
            cand.push(format!("s.user_id = ?{}", p.len()));
        }
        p.push(Value::Integer(SCAN_MAX_ROWS));
        let cand_sql = format!(
            "SELECT m.id FROM sessions s JOIN messages m ON m.session_id = s.id \
             WHERE {} ORDER BY m.id DESC LIMIT ?{}",
            cand.join(" AND "),
            p.len()
        );
        let mut wh = like_terms(terms, &mut p);
        let snippet = like_snippet(terms, &mut p);
        let seen: Vec<String> = out.hits.iter().map(|h| h.message_id.to_string()).collect();
        if !seen.is_empty() {
            wh.push(format!("m.id NOT IN ({})", seen.join(",")));
        }
        p.push(Value::Integer(room));
        // One pass over the candidates: they are materialised once, counted
        // (for `scanned` / `scan_truncated`) and searched; the LEFT JOIN
        // keeps the count's row when nothing matches.
        let sql = format!(
            "WITH cand AS MATERIALIZED ({cand_sql}), \
                  n AS (SELECT count(*) AS c FROM cand), \
                  h AS (SELECT m.session_id, m.id, m.role, {snippet} AS snip, m.timestamp, \
                               s.source, s.user_id \
                        FROM cand JOIN messages m ON m.id = cand.id \
                        JOIN sessions s ON s.id = m.session_id \
                        WHERE {} ORDER BY m.timestamp DESC, m.id DESC LIMIT ?{}) \
             SELECT n.c, h.session_id, h.id, h.role, h.snip, h.timestamp, h.source, h.user_id \
             FROM n LEFT JOIN h ON 1 ORDER BY h.timestamp DESC, h.id DESC",
            wh.join(" AND "),
            p.len()
        );
        let mut st = self
            .conn
            .prepare(&sql)
            .map_err(self.err("scanning messages"))?;
        let mut scanned = 0i64;
        let rows = st
            .query_map(params_from_iter(p.iter()), |r| {
                let c: i64 = r.get(0)?;
                let Some(session_id) = opt_text(r, 1)? else {
                    return Ok((c, None));
                };
                let (timestamp, timestamp_epoch) = time_pair(opt_f64(r, 5)?);
                Ok((
                    c,
                    Some(SearchHit {
                        session_id,
                        message_id: int(r, 2)?,
                        role: opt_text(r, 3)?,
                        snippet: opt_text(r, 4)?,
                        timestamp,
                        timestamp_epoch,
                        source: opt_text(r, 6)?,
                        user_id: opt_text(r, 7)?,
                        matched_by: MatchedBy::Scan,
                    }),
                ))
            })
            .and_then(|r| r.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(self.err("scanning messages"))?;
        for (c, hit) in rows {
            scanned = c;
            out.hits.extend(hit);
        }
        out.scanned = Some(scanned);
        out.scan_truncated = scanned >= SCAN_MAX_ROWS;
        Ok(())
    }

    /// Read once per search from the DDL Hermes wrote (see [`FtsCoverage`]).
    pub fn coverage(&self) -> Result<FtsCoverage> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT name, sql FROM sqlite_master WHERE name IN \
                 ('messages_fts_src', 'messages_fts_insert', 'messages_fts_trigram_src', \
                  'messages_fts_trigram_insert')",
            )
            .map_err(self.err("reading state.db's FTS layout"))?;
        let ddl: Vec<(String, String)> = st
            .query_map([], |r| {
                Ok((text(r, 0)?, opt_text(r, 1)?.unwrap_or_default()))
            })
            .and_then(|r| r.collect())
            .map_err(self.err("reading state.db's FTS layout"))?;
        let get = |n: &str| ddl.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
        let fts_tool_prefix = get("messages_fts_src")
            .or(get("messages_fts_insert"))
            .and_then(tool_prefix_of);
        let trigram_skips_tools = get("messages_fts_trigram_src")
            .or(get("messages_fts_trigram_insert"))
            .is_some_and(|sql| sql.contains("<> 'tool'") || sql.contains("!= 'tool'"));
        Ok(FtsCoverage {
            fts_tool_prefix,
            trigram_skips_tools,
        })
    }
}

pub(super) fn unescape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut esc = false;
    for c in s.chars() {
        if !esc && c == '\\' {
            esc = true;
            continue;
        }
        esc = false;
        out.push(c);
    }
    out
}

impl StateDb {
    /// Sessions whose title contains every whitespace-separated term
    /// (`LIKE`: ASCII case-insensitive), newest first, at most `limit`.
    /// Titles are not in Hermes' message index; sessions are few enough
    /// (one row each) for a scan.
    pub fn search_titles(&self, query: &str, rows: &RowFilter, limit: i64) -> Result<Vec<Session>> {
        use rusqlite::types::Value;
        let terms: Vec<String> = query_terms(query).into_iter().map(escape_like).collect();
        if terms.is_empty() {
            return Ok(vec![]);
        }
        let mut p: Vec<Value> = Vec::new();
        let mut wh = vec!["s.title IS NOT NULL".to_string()];
        for t in terms {
            p.push(Value::Text(format!("%{t}%")));
            wh.push(format!(r"s.title LIKE ?{} ESCAPE '\'", p.len()));
        }
        if rows.operator_only {
            wh.push(OPERATOR_ROW_S.to_string());
        }
        if let Some(u) = &rows.user_id {
            p.push(Value::Text(u.clone()));
            wh.push(format!("s.user_id = ?{}", p.len()));
        }
        p.push(Value::Integer(limit));
        let sql = format!(
            "SELECT {} FROM sessions s WHERE {} ORDER BY s.started_at DESC, s.rowid LIMIT ?{}",
            self.session_cols,
            wh.join(" AND "),
            p.len()
        );
        let mut st = self
            .conn
            .prepare(&sql)
            .map_err(self.err("searching titles"))?;
        let found = st
            .query_map(params_from_iter(p.iter()), session_from_row)
            .and_then(|r| r.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(self.err("searching titles"))?;
        Ok(found)
    }
}
