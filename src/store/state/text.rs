//! Titles and search input: pure functions that mirror Hermes' rules.

use super::*;

/// Hermes' `SessionDB.sanitize_title`: drop ASCII controls (keeping \t \n \r
/// for the whitespace step), zero-width and bidi controls, collapse
/// whitespace runs to one space, trim; empty → `None` (clears the title);
/// more than 100 characters → usage error.
pub fn sanitize_title(title: &str) -> Result<Option<String>> {
    let kept: String = title
        .chars()
        .filter(|&c| {
            let cp = c as u32;
            let ascii_ctl = matches!(cp, 0x00..=0x08 | 0x0b | 0x0c | 0x0e..=0x1f | 0x7f);
            let uni_ctl = matches!(cp,
                0x200b..=0x200f | 0x2028..=0x202e | 0x2060..=0x2069 | 0xfeff | 0xfffc | 0xfff9..=0xfffb);
            !ascii_ctl && !uni_ctl
        })
        .collect();
    let cleaned = kept.split_whitespace().collect::<Vec<_>>().join(" ");
    if cleaned.is_empty() {
        return Ok(None);
    }
    let n = cleaned.chars().count();
    if n > MAX_TITLE_CHARS {
        return Err(Error::usage(format!(
            "title too long ({n} characters, max {MAX_TITLE_CHARS})"
        )));
    }
    Ok(Some(cleaned))
}

/// Characters the unicode61 tokenizer handles badly (no spaces between
/// words): CJK ideographs, kana, hangul (Hermes' `_contains_cjk` ranges) plus
/// CJK compatibility/extension blocks and Thai, Lao, Khmer, Myanmar.
pub(super) fn needs_substring_search(c: char) -> bool {
    matches!(c as u32,
        0x4E00..=0x9FFF | 0x3400..=0x4DBF | 0x20000..=0x2EBEF | 0x3000..=0x303F
        | 0x3040..=0x309F | 0x30A0..=0x30FF | 0x31F0..=0x31FF | 0xAC00..=0xD7AF
        | 0x1100..=0x11FF | 0x3130..=0x318F | 0xF900..=0xFAFF | 0xFF65..=0xFF9F
        | 0x0E00..=0x0EFF | 0x1780..=0x17FF | 0x1000..=0x109F)
}

/// `"` + text with `"` doubled + `"`: an FTS5 string, never syntax.
pub(super) fn fts_string(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// Escape `\`, `%` and `_` for `LIKE ... ESCAPE '\'`.
pub fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Turn user search text into a safe plan. Over 512 bytes or blank → usage
/// error. Text with CJK (and similar scripts): the trigram table with the
/// whole query as one phrase when it has >= 3 characters, else LIKE. Other
/// text: each whitespace-separated term as a quoted FTS5 string, AND-ed
/// (terms without a letter or digit are dropped: unicode61 would index
/// nothing for them).
pub fn plan_search(query: &str, caps: &Caps) -> Result<SearchPlan> {
    if query.len() > MAX_SEARCH_QUERY_BYTES {
        return Err(Error::usage(format!(
            "search query too long ({} bytes, max {MAX_SEARCH_QUERY_BYTES})",
            query.len()
        ))
        .hint("search for a few distinctive words"));
    }
    let terms = query_terms(query);
    if terms.is_empty() {
        return Err(Error::usage("search query is empty"));
    }
    let whole = terms.join(" ");
    if whole.chars().any(needs_substring_search) {
        if whole.chars().count() >= 3 && caps.has_trigram {
            return Ok(SearchPlan::Trigram(fts_string(&whole)));
        }
        return Ok(SearchPlan::Like(vec![escape_like(&whole)]));
    }
    let words = plan_words(query);
    if words.is_empty() {
        return Ok(SearchPlan::Nothing);
    }
    if !caps.has_fts {
        return Ok(SearchPlan::Like(words));
    }
    Ok(SearchPlan::Fts(
        query_terms(query)
            .into_iter()
            .filter(|t| t.chars().any(char::is_alphanumeric))
            .map(fts_string)
            .collect::<Vec<_>>()
            .join(" AND "),
    ))
}

/// The query split into terms. Control characters (a NUL would cut
/// SQLite's view of the FTS5 expression short: a syntax error) separate
/// terms like whitespace.
pub(super) fn query_terms(query: &str) -> Vec<&str> {
    query
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|t| !t.is_empty())
        .collect()
}

/// The terms unicode61 indexes something for (a letter or digit), escaped
/// for `LIKE`.
pub(super) fn plan_words(query: &str) -> Vec<String> {
    query_terms(query)
        .into_iter()
        .filter(|t| t.chars().any(char::is_alphanumeric))
        .map(escape_like)
        .collect()
}

/// One `LIKE ?n ESCAPE '\'` condition per (escaped) term, AND-ed by the
/// caller, over the columns Hermes indexes.
pub(super) fn like_terms(terms: &[String], p: &mut Vec<rusqlite::types::Value>) -> Vec<String> {
    terms
        .iter()
        .map(|t| {
            p.push(rusqlite::types::Value::Text(format!("%{t}%")));
            let n = p.len();
            format!(
                r"(m.content LIKE ?{n} ESCAPE '\' OR m.tool_name LIKE ?{n} ESCAPE '\' OR m.tool_calls LIKE ?{n} ESCAPE '\')"
            )
        })
        .collect()
}

/// A snippet around the first term's first occurrence (for `LIKE` hits).
pub(super) fn like_snippet(terms: &[String], p: &mut Vec<rusqlite::types::Value>) -> String {
    p.push(rusqlite::types::Value::Text(unescape_like(&terms[0])));
    let n = p.len();
    format!("substr(m.content, max(1, instr(m.content, ?{n}) - 40), 120)")
}

/// N in `substr(COALESCE(content, ''), 1, N)`: the tool-row prefix 0.22's
/// `messages_fts_src` view (or its insert trigger) indexes.
pub(super) fn tool_prefix_of(sql: &str) -> Option<i64> {
    let at = sql.find("substr(")?;
    let args = &sql[at..];
    let close = args.find(')')?;
    // substr(COALESCE(new.content, ''), 1, 8192) -> the text after the
    // COALESCE's own ')'; take the last number before the closing paren.
    let rest = &args[close + 1..];
    let end = rest.find(')')?;
    rest[..end].rsplit(',').next()?.trim().parse::<i64>().ok()
}
