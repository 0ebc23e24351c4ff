//! Hermes' `$HERMES_HOME/.env`, read the way Hermes reads it: with
//! python-dotenv 1.2.2 (the version Hermes 0.19 and 0.22 ship), whose parser
//! (`dotenv/parser.py`) this is a port of, followed by its `${VAR}` /
//! `${VAR:-default}` interpolation (`dotenv/variables.py`, `load_dotenv`'s
//! defaults: interpolate, override).
//!
//! Why a port and not a stricter parser: python-dotenv logs a warning for a
//! statement it cannot parse and goes on with the next line, so Hermes still
//! has every other variable of the file (its API_SERVER_KEY among them). A
//! parser that rejected the whole file made the operator think Hermes had no
//! key (503 `hermes_unconfigured`) while Hermes served with it. The lines
//! skipped are kept so `doctor` can name them.
//!
//! The operator's own `profiles/operator/.env` keeps the strict
//! [`crate::config::parse_env`]: it is our file, and a bad line there is an
//! error that names it rather than a secret silently missing.

use std::collections::BTreeMap;

/// A parsed dotenv file: the variables set, and the statements skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DotEnv {
    pub values: BTreeMap<String, String>,
    /// 1-based line numbers where a statement that could not be parsed
    /// starts. python-dotenv's own warning counts from the end of the
    /// previous statement (blank lines before a bad one are included); this
    /// is the line the bad text is on, which is what a person needs to fix.
    pub skipped_lines: Vec<usize>,
}

struct Reader<'a> {
    s: &'a str,
    pos: usize,
}

struct Bad;

fn is_hspace(c: char) -> bool {
    // `[^\S\r\n]`: whitespace other than a line break.
    c.is_whitespace() && c != '\r' && c != '\n'
}

impl<'a> Reader<'a> {
    fn rest(&self) -> &'a str {
        &self.s[self.pos..]
    }
    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }
    /// Consume chars while `f` holds; the text consumed.
    fn take_while(&mut self, f: impl Fn(char) -> bool) -> &'a str {
        let rest = self.rest();
        let n = rest.find(|c: char| !f(c)).unwrap_or(rest.len());
        self.pos += n;
        &rest[..n]
    }
    fn line_at(&self, pos: usize) -> usize {
        // python-dotenv counts `\r\n`, `\n` and `\r` as one break each.
        let before = &self.s[..pos];
        let crlf = before.matches("\r\n").count();
        1 + before.matches('\n').count() + before.matches('\r').count() - crlf
    }
}

/// Parse dotenv text as python-dotenv 1.2.2 does, then interpolate with the
/// process environment under the file's own values (`override=True`).
pub fn parse(text: &str) -> DotEnv {
    parse_with_env(text, &|name| std::env::var(name).ok())
}

/// [`parse`] with the environment given (tests).
pub fn parse_with_env(text: &str, env: &dyn Fn(&str) -> Option<String>) -> DotEnv {
    let mut r = Reader { s: text, pos: 0 };
    let mut out = DotEnv::default();
    // Keys without `=` have no value (None in python-dotenv): nothing is set,
    // but they still shadow nothing; a later interpolation sees "" for them.
    let mut resolved: BTreeMap<String, Option<String>> = BTreeMap::new();
    while r.pos < r.s.len() {
        r.take_while(char::is_whitespace);
        if r.pos >= r.s.len() {
            break;
        }
        let start = r.pos;
        match binding(&mut r) {
            Ok(Some((key, value))) => {
                let value = value.map(|v| interpolate(&v, &resolved, env));
                resolved.insert(key, value);
            }
            Ok(None) => {}
            Err(Bad) => {
                out.skipped_lines.push(r.line_at(start));
                // `[^\r\n]*(?:\r|\n|\r\n)?` from where parsing stopped.
                r.take_while(|c| c != '\r' && c != '\n');
                if r.rest().starts_with('\r') || r.rest().starts_with('\n') {
                    r.pos += 1;
                }
            }
        }
    }
    out.values = resolved
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect();
    out
}

/// One statement; `Ok(None)` for a comment line.
fn binding(r: &mut Reader) -> Result<Option<(String, Option<String>)>, Bad> {
    // `(?:export[^\S\r\n]+)?`
    if let Some(after) = r.rest().strip_prefix("export") {
        if after.starts_with(is_hspace) {
            r.pos += "export".len();
            r.take_while(is_hspace);
        }
    }
    let key = match r.peek() {
        Some('#') => None,
        Some('\'') => {
            // `'([^']+)'`
            r.pos += 1;
            let k = r.take_while(|c| c != '\'');
            if k.is_empty() || r.peek() != Some('\'') {
                return Err(Bad);
            }
            r.pos += 1;
            Some(k.to_string())
        }
        _ => {
            // `([^=\#\s]+)`
            let k = r.take_while(|c| c != '=' && c != '#' && !c.is_whitespace());
            if k.is_empty() {
                return Err(Bad);
            }
            Some(k.to_string())
        }
    };
    r.take_while(is_hspace);
    let value = if r.peek() == Some('=') {
        r.pos += 1;
        r.take_while(is_hspace);
        Some(value(r)?)
    } else {
        None
    };
    // `(?:[^\S\r\n]*#[^\r\n]*)?` then `[^\S\r\n]*(?:\r\n|\n|\r|$)`
    let save = r.pos;
    r.take_while(is_hspace);
    if r.peek() == Some('#') {
        r.take_while(|c| c != '\r' && c != '\n');
    } else {
        r.pos = save;
    }
    r.take_while(is_hspace);
    if r.rest().starts_with("\r\n") {
        r.pos += 2;
    } else if r.rest().starts_with('\r') || r.rest().starts_with('\n') {
        r.pos += 1;
    } else if !r.rest().is_empty() {
        return Err(Bad);
    }
    Ok(key.map(|k| (k, value)))
}

fn value(r: &mut Reader) -> Result<String, Bad> {
    match r.peek() {
        Some(q @ ('\'' | '"')) => {
            let body = quoted(r, q)?;
            Ok(if q == '"' {
                unescape(body, "\\'\"abfnrtv")
            } else {
                unescape(body, "\\'")
            })
        }
        None | Some('\r' | '\n') => Ok(String::new()),
        Some(_) => {
            // `([^\r\n]*)`, then `re.sub(r"\s+#.*", "", part).rstrip()`.
            let part = r.take_while(|c| c != '\r' && c != '\n');
            let mut cut = part.len();
            let mut ws_start: Option<usize> = None;
            for (i, c) in part.char_indices() {
                if c.is_whitespace() {
                    ws_start.get_or_insert(i);
                } else if c == '#' && ws_start.is_some() {
                    cut = ws_start.unwrap_or(i);
                    break;
                } else {
                    ws_start = None;
                }
            }
            Ok(part[..cut].trim_end().to_string())
        }
    }
}

/// `'((?:\\'|[^'])*)'` (or with `"`), as Python's backtracking regex matches
/// it: the value ends at the first quote not escaped by a backslash; with no
/// such quote before the end of the text, at the quote of the last `\'`
/// (the engine backs off that escape). The body may span lines.
fn quoted<'a>(r: &mut Reader<'a>, q: char) -> Result<&'a str, Bad> {
    let rest = &r.rest()[1..];
    let mut last_escape_quote: Option<usize> = None;
    let mut it = rest.char_indices().peekable();
    while let Some((i, c)) = it.next() {
        if c == '\\' && it.peek().map(|&(_, n)| n) == Some(q) {
            let (j, _) = it.next().unwrap_or((i + 1, q));
            last_escape_quote = Some(j);
        } else if c == q {
            r.pos += 1 + i + 1;
            return Ok(&rest[..i]);
        }
    }
    match last_escape_quote {
        Some(j) => {
            r.pos += 1 + j + 1;
            Ok(&rest[..j])
        }
        None => Err(Bad),
    }
}

/// `decode_escapes`: each `\x` with x in `set` becomes what Python's
/// `unicode-escape` makes of it; any other backslash stays.
fn unescape(s: &str, set: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        if c == '\\' {
            if let Some(&n) = it.peek().filter(|n| set.contains(**n)) {
                it.next();
                out.push(match n {
                    'a' => '\x07',
                    'b' => '\x08',
                    'f' => '\x0c',
                    'n' => '\n',
                    'r' => '\r',
                    't' => '\t',
                    'v' => '\x0b',
                    other => other,
                });
                continue;
            }
        }
        out.push(c);
    }
    out
}

/// `${NAME}` and `${NAME:-default}` (`\$\{([^\}:]*)(?::-([^\}]*))?\}`):
/// the file's earlier values first, then the environment, then the default.
fn interpolate(
    v: &str,
    file: &BTreeMap<String, Option<String>>,
    env: &dyn Fn(&str) -> Option<String>,
) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < v.len() {
        let rest = &v[i..];
        if let Some((name, default, len)) = variable(rest) {
            let value = match file.get(name) {
                Some(found) => found.clone().unwrap_or_default(),
                None => env(name).unwrap_or_else(|| default.unwrap_or("").to_string()),
            };
            out.push_str(&value);
            i += len;
        } else {
            let c = rest.chars().next().unwrap_or(' ');
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

fn variable(s: &str) -> Option<(&str, Option<&str>, usize)> {
    let body = s.strip_prefix("${")?;
    let name_len = body.find(['}', ':']).unwrap_or(body.len());
    let name = &body[..name_len];
    let after = &body[name_len..];
    if after.starts_with('}') {
        return Some((name, None, 2 + name_len + 1));
    }
    let d = after.strip_prefix(":-")?;
    let d_len = d.find('}')?;
    Some((name, Some(&d[..d_len]), 2 + name_len + 2 + d_len + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> DotEnv {
        parse_with_env(text, &|n| (n == "FROM_ENV").then(|| "env".to_string()))
    }

    #[test]
    fn one_bad_line_skips_only_that_line() {
        // The old parser refused the whole file here, so API_SERVER_KEY was
        // "not set" while Hermes itself served with it.
        let d =
            p("API_SERVER_ENABLED=true\nthis is not valid\nAPI_SERVER_KEY=k-0123456789abcdef\n");
        assert_eq!(d.values["API_SERVER_KEY"], "k-0123456789abcdef");
        assert_eq!(d.values["API_SERVER_ENABLED"], "true");
        assert_eq!(d.skipped_lines, vec![2]);
    }

    /// Expected values from python-dotenv 1.2.2 itself (the version in
    /// Hermes 0.19's and 0.22's venvs), produced by
    /// `python -c 'import io,dotenv,json,sys; print(json.dumps(dotenv.dotenv_values(stream=io.StringIO(sys.stdin.read()))))'`
    /// with FROM_ENV=env in the environment; its warnings named lines 3, 9
    /// and 13. G's unterminated quote runs on to I's first quote (a quoted
    /// value may span lines), so H is lost and line 11's rest is skipped
    /// with G's statement, exactly as Hermes would.
    #[test]
    fn tricky_lines_as_python_dotenv_1_2_2() {
        let text = concat!(
            "export A=1\n",                       // 1
            "B = spaced # comment\n",             // 2
            "= no key\n",                         // 3 bad
            "C=\"multi\nline\"\n",                // 4-5
            "D='it\\'s'\n",                       // 6
            "E=\"tab\\there\\\\ \\q\"\n",         // 7
            "'F K'=quoted key\n",                 // 8
            "G=\"unterminated\n",                 // 9 bad, through line 11
            "H=#notcomment\n",                    // 10
            "I=\"x\" junk\n",                     // 11
            "J=${FROM_ENV}-${A}-${NOPE:-dflt}\n", // 12
            "K L=1\n",                            // 13 bad
            "NOVALUE\n",                          // 14
            "M=\r\n",                             // 15
            "N=last",                             // 16
        );
        let d = p(text);
        let want: &[(&str, &str)] = &[
            ("A", "1"),
            ("B", "spaced"),
            ("C", "multi\nline"),
            ("D", "it's"),
            ("E", "tab\there\\ \\q"),
            ("F K", "quoted key"),
            ("J", "env-1-dflt"),
            ("M", ""),
            ("N", "last"),
        ];
        let got: Vec<(&str, &str)> = d
            .values
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(got, want);
        assert_eq!(d.skipped_lines, vec![3, 9, 13]);
        // A key without `=` is None in python-dotenv: nothing is set.
        assert!(!d.values.contains_key("NOVALUE"));
    }

    /// More of python-dotenv 1.2.2's answers (same command as above; K9
    /// and ZZ unset). Line 7's quote runs on to line 12's, so lines 7-12
    /// are one bad statement, as for Hermes.
    #[test]
    fn more_lines_as_python_dotenv_1_2_2() {
        let d = p(concat!(
            "H=#notcomment\n",
            "K1= # c\n",
            "K2=\"a\\\"b\" # c\n",
            "K3=a#b\n",
            "K4=a #b\r\n",
            "K5 = \"x\"\r\n",
            "export K6=\"q\\\\\" \n",
            "exporter=1\n",
            "K7='$'{K3}x'\n",
            "K8=${K3}${K9:-d:e}${ZZ\n",
            "  K10=indented\n",
            "K11=\"\\x41\\u0041\"\n",
        ));
        let want: &[(&str, &str)] = &[
            ("H", "#notcomment"),
            ("K1", "# c"),
            ("K2", "a\"b"),
            ("K3", "a#b"),
            ("K4", "a"),
            ("K5", "x"),
        ];
        let got: Vec<(&str, &str)> = d
            .values
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(got, want);
        assert_eq!(d.skipped_lines, vec![7]);

        let d = p(concat!(
            "exporter=1\n",
            "K7='${K3}x'\n",
            "K3=a#b\n",
            "K8=${K3}${K9:-d:e}${ZZ}${K3\n",
            "  K10=indented\n",
            "K11=\"\\x41\\u0041\\n\\'\"\n",
            "K12='a\\'b\\\\c\\n'\n",
            "'K13'\n",
            "K14\n",
        ));
        let want: &[(&str, &str)] = &[
            ("K10", "indented"),
            ("K11", "\\x41\\u0041\n'"),
            ("K12", "a'b\\c\\n"),
            ("K3", "a#b"),
            ("K7", "x"),
            ("K8", "a#bd:e${K3"),
            ("exporter", "1"),
        ];
        let got: Vec<(&str, &str)> = d
            .values
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(got, want);
        assert!(d.skipped_lines.is_empty(), "{:?}", d.skipped_lines);
    }
}
