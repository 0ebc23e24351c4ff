"""The same questions hermes-operator answers, as plain SQL for the sqlite3
CLI (the "within 1.2x" comparisons in bench.py). Each mirrors the plan the
operator uses (see src/store/state.rs and src/ops/audit/reports.rs)."""
import sqlite3

COLS = ("id, source, user_id, model, title, started_at, ended_at, end_reason, message_count, "
        "tool_call_count, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, "
        "reasoning_tokens, billing_provider, estimated_cost_usd, actual_cost_usd, cost_status, "
        "api_call_count, parent_session_id, archived")
OP = r"+source = 'operator' AND +id LIKE 'op\_%' ESCAPE '\'"
OP_S = r"s.source = 'operator' AND s.id LIKE 'op\_%' ESCAPE '\'"


def queries(user_ids, made, state_db, events_db):
    # The busiest UTC day of operator sessions, so the report has work to do.
    con = sqlite3.connect(f"file:{state_db}?mode=ro", uri=True)
    day, = con.execute(
        "SELECT date(started_at, 'unixepoch') d FROM sessions WHERE source = 'operator' "
        "GROUP BY d ORDER BY count(*) DESC LIMIT 1").fetchone()
    f, t = con.execute("SELECT unixepoch(?), unixepoch(?, '+1 day')", (day, day)).fetchone()
    con.close()
    fts, tts = f"{day}T00:00:00.000000Z", None
    tts = sqlite3.connect(":memory:").execute(
        "SELECT strftime('%Y-%m-%dT00:00:00.000000Z', ?, '+1 day')", (day,)).fetchone()[0]
    daily = f"""
ATTACH 'file:{events_db}?mode=ro' AS ev;
SELECT user_id, model, count(*), sum(input_tokens), sum(output_tokens),
       sum(COALESCE(actual_cost_usd, estimated_cost_usd, 0))
  FROM sessions WHERE {OP} AND started_at >= {f} AND started_at < {t}
   AND id NOT IN (SELECT session_id FROM ev.events WHERE type = 'llm_call')
 GROUP BY user_id, model;
SELECT s.user_id, s.model, count(*) FROM sessions s
  JOIN messages m ON m.session_id = s.id AND m.timestamp >= {f} AND m.timestamp < {t}
 WHERE {OP_S} GROUP BY s.user_id, s.model;
SELECT user_id, json_extract(data, '$.model'), sum(json_extract(data, '$.input_tokens')),
       sum(json_extract(data, '$.output_tokens')), sum(json_extract(data, '$.cost_usd'))
  FROM ev.events WHERE type = 'llm_call' AND ts >= '{fts}' AND ts < '{tts}'
 GROUP BY 1, 2;"""
    active = "(m.active = 1 OR m.compacted = 1)"
    search = (f"SELECT m.session_id, m.id, m.role, snippet(messages_fts, 0, '>>>', '<<<', '...', 32), "
              f"m.timestamp, s.source, s.user_id FROM messages_fts JOIN messages m ON m.id = messages_fts.rowid "
              f"JOIN sessions s ON s.id = m.session_id WHERE messages_fts MATCH '\"kubernetes\" \"backup\"' "
              f"AND {active} AND {OP_S} ORDER BY messages_fts.rank, m.id LIMIT 20")
    search_cjk = (f"SELECT m.session_id, m.id, m.role, snippet(messages_fts_trigram, 0, '>>>', '<<<', '...', 32), "
                  f"m.timestamp, s.source, s.user_id FROM messages_fts_trigram JOIN messages m "
                  f"ON m.id = messages_fts_trigram.rowid JOIN sessions s ON s.id = m.session_id "
                  f"WHERE messages_fts_trigram MATCH '\"服务器迁移\"' AND {active} AND {OP_S} "
                  f"ORDER BY messages_fts_trigram.rank, m.id LIMIT 20")
    users_db = str(state_db).replace("state.db", "plugins/operator/users.db")
    list_named = (f"ATTACH 'file:{users_db}?mode=ro' AS u; "
                  f"SELECT s.*, u.users.username FROM (SELECT {COLS} FROM sessions WHERE {OP} "
                  f"ORDER BY started_at DESC, rowid LIMIT 50) s LEFT JOIN u.users ON u.users.id = s.user_id")
    return {
        "date": day,
        "list_named": list_named,
        "list": f"SELECT {COLS} FROM sessions WHERE {OP} ORDER BY started_at DESC, rowid LIMIT 50",
        "list_user": (f"SELECT {COLS} FROM sessions WHERE {OP} AND +user_id = '{user_ids[0]}' "
                      f"ORDER BY started_at DESC, rowid LIMIT 50"),
        # The operator takes a username: resolve it in users.db, name the rows.
        "list_user_named": (f"ATTACH 'file:{users_db}?mode=ro' AS u; "
                            f"SELECT s.*, u.users.username FROM (SELECT {COLS} FROM sessions WHERE {OP} "
                            f"AND +user_id = (SELECT id FROM u.users WHERE username = 'alice') "
                            f"ORDER BY started_at DESC, rowid LIMIT 50) s LEFT JOIN u.users ON u.users.id = s.user_id"),
        "daily": daily,
        "search_term": "kubernetes backup",
        "search": search,
        "search_cjk": "服务器迁移",
        "search_cjk_sql": search_cjk,
        # The scan fallback's question: tool rows of operator sessions whose
        # content holds the word, newest first (benches/bench.py TOOL_ONLY_WORD).
        "search_tool_only_sql": (f"SELECT m.session_id, m.id, m.role, substr(m.content, 1, 200), "
                                 f"m.timestamp, s.source, s.user_id FROM messages m "
                                 f"JOIN sessions s ON s.id = m.session_id WHERE {OP_S} "
                                 f"AND m.content LIKE '%数据库备份完成%' AND {active} "
                                 f"ORDER BY m.id DESC LIMIT 20"),
    }
