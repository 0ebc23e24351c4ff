//! stdout is data, stderr is messages. Tables for people, `--json` for
//! scripts; `NO_COLOR` (and a non-terminal stdout) turns styling off.

use comfy_table::{presets, ContentArrangement, Table};
use serde::Serialize;
use std::io::{IsTerminal, Write};

const PRESET: &str = presets::UTF8_FULL_CONDENSED;

#[derive(Debug, Clone, Copy)]
pub struct Output {
    pub json: bool,
    pub color: bool,
}

impl Output {
    pub fn new(json: bool) -> Self {
        Output {
            json,
            color: !no_color() && std::io::stderr().is_terminal(),
        }
    }

    /// One JSON document on stdout (pretty when stdout is a terminal).
    pub fn json<T: Serialize + ?Sized>(&self, v: &T) -> crate::Result<()> {
        // Serialized whole first: one write, not one per KiB of stdout's
        // line buffer (JSON has no newlines to flush on).
        let mut buf = if std::io::stdout().is_terminal() {
            serde_json::to_vec_pretty(v)?
        } else {
            serde_json::to_vec(v)?
        };
        buf.push(b'\n');
        std::io::stdout()
            .lock()
            .write_all(&buf)
            .map_err(write_err)?;
        Ok(())
    }

    /// One NDJSON line on stdout, flushed (for streams and `tail --follow`).
    pub fn json_line<T: Serialize + ?Sized>(&self, v: &T) -> crate::Result<()> {
        let mut out = std::io::stdout().lock();
        serde_json::to_writer(&mut out, v)?;
        writeln!(out).and_then(|_| out.flush()).map_err(write_err)?;
        Ok(())
    }

    /// Data text on stdout.
    pub fn line(&self, s: impl AsRef<str>) -> crate::Result<()> {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", s.as_ref()).map_err(write_err)?;
        Ok(())
    }

    pub fn table(&self, header: &[&str]) -> Table {
        let mut t = Table::new();
        t.load_preset(PRESET)
            .set_content_arrangement(ContentArrangement::Dynamic)
            .set_header(header.iter().copied());
        if !self.color {
            t.force_no_tty();
        }
        if !std::io::stdout().is_terminal() {
            // Keep rows on one line each for grep when piped.
            t.set_content_arrangement(ContentArrangement::Disabled);
        }
        t
    }

    pub fn print_table(&self, t: &Table) -> crate::Result<()> {
        if std::io::stdout().is_terminal() {
            let text = fit_to_terminal(t, terminal_width());
            return self.line(text.lines().map(styled_hits).collect::<Vec<_>>().join("\n"));
        }
        self.line(t.to_string())
    }

    /// A search snippet (hits between `>>>` and `<<<`, as SQLite's
    /// `snippet()` marks them) for a table cell: on a terminal that takes
    /// styling the markers become bold reverse video (by [`Self::print_table`]);
    /// otherwise, for pipes and `NO_COLOR`, they stay as they are.
    pub fn hits(&self, snippet: &str) -> String {
        if !self.style_stdout() {
            return snippet.to_string();
        }
        snippet.replace(">>>", HIT_ON).replace("<<<", HIT_OFF)
    }

    fn style_stdout(&self) -> bool {
        !no_color() && std::io::stdout().is_terminal()
    }

    /// Bytes on stdout exactly as given (generated scripts).
    pub fn raw(&self, bytes: &[u8]) -> crate::Result<()> {
        let mut out = std::io::stdout().lock();
        out.write_all(bytes)
            .and_then(|_| out.flush())
            .map_err(write_err)
    }

    /// A message for people, on stderr.
    pub fn info(&self, s: impl AsRef<str>) {
        eprintln!("{}", s.as_ref());
    }

    pub fn warn(&self, s: impl AsRef<str>) {
        if self.color {
            eprintln!("\x1b[33mwarning:\x1b[0m {}", s.as_ref());
        } else {
            eprintln!("warning: {}", s.as_ref());
        }
    }

    pub fn error(&self, e: &crate::Error) {
        if self.json {
            eprintln!("{}", e.to_json());
            return;
        }
        if self.color {
            eprintln!("\x1b[31merror:\x1b[0m {}", e.message);
        } else {
            eprintln!("error: {}", e.message);
        }
        for c in e.causes() {
            eprintln!("  caused by: {c}");
        }
        for h in &e.hints {
            eprintln!("  hint: {h}");
        }
    }
}

fn no_color() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

// Search hits travel through the table as invisible characters (zero
// width, so comfy-table measures the text as shown), and become ANSI
// styling only in the rendered lines. Both are format characters that
// `sanitize` escapes, so no text from a database can contain them raw.
const HIT_ON: &str = "\u{2060}";
const HIT_OFF: &str = "\u{2061}";

/// One rendered table line with its hit markers as bold reverse video. A
/// hit cut off by `…` is closed before the cell's padding, so the style
/// never bleeds into the border or the next line.
fn styled_hits(line: &str) -> String {
    if !line.contains(HIT_ON) && !line.contains(HIT_OFF) {
        return line.to_string();
    }
    let mut out = String::with_capacity(line.len() + 16);
    let mut open = false;
    for c in line.chars() {
        match c {
            '\u{2060}' => {
                out.push_str("\x1b[1;7m");
                open = true;
            }
            '\u{2061}' => {
                out.push_str("\x1b[0m");
                open = false;
            }
            '│' | '┆' if open => {
                // The hit ran into the padding: end it before the spaces.
                let trimmed = out.trim_end_matches(' ').len();
                let pad = out.len() - trimmed;
                out.truncate(trimmed);
                out.push_str("\x1b[0m");
                out.push_str(&" ".repeat(pad));
                out.push(c);
                open = false;
            }
            _ => out.push(c),
        }
    }
    if open {
        out.push_str("\x1b[0m");
    }
    out
}

/// A table for a terminal `width` columns wide: one line per row (a
/// cell's lines joined by `⏎`), cells that do not fit cut with `…`.
/// Columns of ids (`op_…`, `u_…`, `key_…`, or named like one) and numbers
/// (event seq, tokens, costs, times) keep their full width: a clipped id
/// cannot be pasted into the next command, and a clipped number reads as
/// another number. When those alone leave too little room (issue 22: at 80
/// columns `session list` wrapped its headers and cut its start times,
/// tokens and costs), times lose their seconds, then whole columns are
/// hidden in [`HIDE_ORDER`] — never cut to a meaningless sliver — and a
/// last line says which, so nothing is dropped without a word.
fn fit_to_terminal(t: &Table, width: u16) -> String {
    let header: Vec<String> = t
        .header()
        .map(|h| h.cell_iter().map(|c| c.content()).collect())
        .unwrap_or_default();
    let mut rows: Vec<Vec<String>> = t
        .row_iter()
        .map(|r| {
            r.cell_iter()
                .map(|c| c.content().replace('\n', "⏎ "))
                .collect()
        })
        .collect();
    let layout = Layout::choose(&header, &mut rows, usize::from(width));
    let mut text = layout.render(&header, &rows, width);
    if !layout.hidden.is_empty() {
        let note = format!(
            "(not shown at {width} columns: {}; --json has them)",
            layout.hidden.join(", ")
        );
        // Within the width too (it fits from 73 columns on).
        text.push('\n');
        text.push_str(&clip(&note, usize::from(width).saturating_sub(1)));
    }
    text
}

/// Which columns a terminal table shows, and which of them stay whole.
struct Layout {
    /// Indexes of the columns shown, in order.
    shown: Vec<usize>,
    /// Per column: ids and numbers, never cut.
    whole: Vec<bool>,
    /// Headers of the columns hidden.
    hidden: Vec<&'static str>,
}

/// A column's cells that say something (not empty, not `—`).
fn cells_of(rows: &[Vec<String>], i: usize) -> Vec<&str> {
    rows.iter()
        .filter_map(|r| r.get(i).map(String::as_str))
        .filter(|c| !c.is_empty() && *c != "—")
        .collect()
}

impl Layout {
    /// Shortens `rows`' times when the table does not fit otherwise.
    fn choose(header: &[String], rows: &mut [Vec<String>], width: usize) -> Layout {
        let n = rows
            .iter()
            .map(Vec::len)
            .chain([header.len()])
            .max()
            .unwrap_or(0);
        let all = |rows: &[Vec<String>], i: usize, f: fn(&str) -> bool| {
            let cells = cells_of(rows, i);
            !cells.is_empty() && cells.into_iter().all(f)
        };
        let whole = (0..n)
            .map(|i| {
                // By name too: Hermes' native session ids (`--all-sources`)
                // have no prefix of ours.
                header
                    .get(i)
                    .is_some_and(|h| ID_HEADERS.contains(&h.as_str()))
                    || all(rows, i, is_id_or_number)
            })
            .collect();
        let times: Vec<bool> = (0..n).map(|i| all(rows, i, is_timestamp)).collect();
        let mut l = Layout {
            shown: (0..n).collect(),
            whole,
            hidden: Vec::new(),
        };
        if l.need(header, rows) > width {
            for r in rows.iter_mut() {
                for (i, c) in r.iter_mut().enumerate() {
                    if times[i] && is_timestamp(c) {
                        c.truncate(16);
                    }
                }
            }
        }
        for name in HIDE_ORDER {
            if l.need(header, rows) <= width {
                break;
            }
            if let Some(i) = header.iter().position(|h| h == name) {
                l.shown.retain(|&c| c != i);
                l.hidden.push(name);
            }
        }
        l
    }

    /// The width the shown columns need: ids and numbers whole, text at
    /// most [`MIN_TEXT`] (the rest of it may be cut).
    fn need(&self, header: &[String], rows: &[Vec<String>]) -> usize {
        let content: usize = self
            .shown
            .iter()
            .map(|&i| {
                let widest = cells_of(rows, i)
                    .into_iter()
                    .chain(header.get(i).map(String::as_str))
                    .map(|c| c.chars().count())
                    .max()
                    .unwrap_or(1);
                if self.whole[i] {
                    widest
                } else {
                    widest.min(MIN_TEXT)
                }
            })
            .sum();
        // `│ ` before each column, ` ` after it, and the closing `│`.
        content + 3 * self.shown.len() + 1
    }

    fn render(&self, header: &[String], rows: &[Vec<String>], width: u16) -> String {
        use comfy_table::{ColumnConstraint, Row};
        let pick = |r: &[String]| -> Row {
            let mut row = Row::from(
                self.shown
                    .iter()
                    .map(|&i| r.get(i).cloned().unwrap_or_default())
                    .collect::<Vec<_>>(),
            );
            // Cut like any cell, never wrapped onto more lines.
            row.max_height(1);
            row
        };
        let mut f = Table::new();
        f.load_preset(PRESET)
            .set_content_arrangement(ContentArrangement::Dynamic)
            .set_width(width)
            .set_truncation_indicator("…")
            // No word wrapping: a cell is cut at the column's width, not at
            // the last space that fits (which could leave one word and `…`).
            .set_delimiter('\0');
        if !header.is_empty() {
            f.set_header(pick(header));
        }
        for row in rows {
            f.add_row(pick(row));
        }
        for (k, &i) in self.shown.iter().enumerate() {
            if self.whole[i] {
                if let Some(col) = f.column_mut(k) {
                    col.set_constraint(ColumnConstraint::ContentWidth);
                }
            }
        }
        f.to_string()
    }
}

/// The columns hidden, first to last, when a terminal is too narrow for
/// every id and number in full. `source` first: without `--all-sources` it
/// is `operator` on every row.
const HIDE_ORDER: [&str; 5] = ["source", "model", "ended", "title", "user"];

/// A text column narrower than this is hidden rather than shown (when it
/// is in [`HIDE_ORDER`]); its cells are cut to fit otherwise.
const MIN_TEXT: usize = 8;

/// `2026-09-21 03:16:45`, as the tables print times.
fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 19
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b' ',
            13 | 16 => *c == b':',
            _ => c.is_ascii_digit(),
        })
}

/// stdout's terminal width, else `$COLUMNS`, else 80.
fn terminal_width() -> u16 {
    dialoguer::console::Term::stdout()
        .size_checked()
        .map(|(_rows, cols)| cols)
        .or_else(|| std::env::var("COLUMNS").ok()?.parse().ok())
        .filter(|&w| w > 0)
        .unwrap_or(80)
}

/// Table headers of id columns (`session list`, `audit replay`, …).
const ID_HEADERS: [&str; 6] = ["id", "session", "user id", "seq", "#", "msg"];

/// `op_…`, `u_…`, `key_…` ids and numbers: integers (event seq, counts),
/// decimals (costs), token pairs (`6649/662`) and times
/// (`2026-09-21 03:16:45`).
fn is_id_or_number(s: &str) -> bool {
    let id = ["op_", "u_", "key_"]
        .iter()
        .any(|p| s.starts_with(p) && !s.contains(char::is_whitespace));
    let number = s.starts_with(|c: char| c.is_ascii_digit())
        && s.ends_with(|c: char| c.is_ascii_digit())
        && s.chars().all(|c| c.is_ascii_digit() || "./:- ".contains(c));
    id || number
}

fn write_err(e: std::io::Error) -> crate::Error {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        // Not worth a message; `cli::main` ends quietly (`Kind::ClosedPipe`).
        return crate::Error::new(
            crate::Kind::ClosedPipe,
            "the output was closed by its reader",
        )
        .with_source(e);
    }
    crate::Error::internal(format!("writing output: {e}")).with_source(e)
}

/// Shorten user-supplied text for messages and table cells, on a char boundary.
pub fn clip(s: &str, max_chars: usize) -> String {
    let mut it = s.chars();
    let head: String = it.by_ref().take(max_chars).collect();
    if it.next().is_some() {
        format!("{head}…")
    } else {
        head
    }
}

/// Make hostile text safe for a terminal: control characters (including
/// ESC, so no terminal escape injection) become visible escapes.
pub fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if (c.is_control() && c != '\n' && c != '\t') || is_format_char(c) {
                format!("\\u{{{:x}}}", c as u32)
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Invisible format characters that reorder or hide text on a terminal:
/// bidi embeddings, overrides and isolates (the "Trojan Source" set), zero
/// widths, the BOM and soft hyphen. Escaped like control characters.
pub fn is_format_char(c: char) -> bool {
    matches!(c,
        '\u{00ad}' | '\u{061c}' | '\u{180e}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}'
        | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206f}' | '\u{feff}' | '\u{fff9}'..='\u{fffb}')
}

/// `text` with every `http://` and `https://` URL replaced by `what`: for
/// error messages that leave the server (Hermes' internal address stays in
/// the server's log).
pub fn redact_urls(text: &str, what: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let next = |s: &str| {
        [s.find("http://"), s.find("https://")]
            .into_iter()
            .flatten()
            .min()
    };
    while let Some(i) = next(rest) {
        out.push_str(&rest[..i]);
        out.push_str(what);
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | ')' | '>' | ','))
            .unwrap_or(tail.len());
        let end = if tail[..end].ends_with(':') {
            end - 1
        } else {
            end
        };
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// Format a float unix timestamp (Hermes' REAL columns) as UTC RFC 3339.
pub fn ts(epoch: f64) -> String {
    let secs = epoch.floor() as i64;
    let nanos = ((epoch - epoch.floor()) * 1e9) as u32;
    chrono::DateTime::from_timestamp(secs, nanos)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| epoch.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn clip_and_sanitize() {
        assert_eq!(clip("abcdef", 3), "abc…");
        assert_eq!(clip("大别山", 5), "大别山");
        assert_eq!(sanitize("a\x1b[31mb"), "a\\u{1b}[31mb");
        // Trojan-source bidi override and a zero-width space are escaped too.
        assert_eq!(sanitize("ab\u{202e}cd\u{200b}"), "ab\\u{202e}cd\\u{200b}");
        assert_eq!(sanitize("日本語"), "日本語");
        assert_eq!(
            redact_urls(
                "Hermes is not reachable at http://10.0.0.5:8642: connection refused",
                "[Hermes]"
            ),
            "Hermes is not reachable at [Hermes]: connection refused"
        );
        assert_eq!(redact_urls("no url here", "x"), "no url here");
        assert_eq!(redact_urls("a https://h/x, b http://y", "U"), "a U, b U");
        assert_eq!(ts(0.0), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn terminal_tables_keep_ids_and_style_hits() {
        assert!(is_id_or_number("op_0123456789ab"));
        assert!(is_id_or_number("u_0123456789abcdef"));
        assert!(is_id_or_number("key_abc"));
        assert!(is_id_or_number("42"));
        assert!(!is_id_or_number("alice"));
        assert!(!is_id_or_number("op_ x"));

        let on = HIT_ON;
        let off = HIT_OFF;
        assert_eq!(
            styled_hits(&format!("│ a {on}hit{off} b │")),
            "│ a \x1b[1;7mhit\x1b[0m b │"
        );
        // Cut off by `…` before the hit ended: closed before the padding.
        assert_eq!(
            styled_hits(&format!("│ a {on}hi…   │ x │")),
            "│ a \x1b[1;7mhi…\x1b[0m   │ x │"
        );
        assert_eq!(styled_hits("│ plain │"), "│ plain │");
        // The markers are escaped by sanitize: text cannot smuggle them in.
        assert_eq!(sanitize(on), "\\u{2060}");
        assert_eq!(sanitize(off), "\\u{2061}");

        let mut t = Output {
            json: false,
            color: false,
        }
        .table(&["id", "text"]);
        t.add_row(vec!["op_0123456789ab", &"long words here ".repeat(20)]);
        t.add_row(vec!["op_ba9876543210", "short"]);
        t.add_row(vec!["20260918_155554_a1b2c3", "native"]);
        t.add_row(vec!["op_0a0b0c0d0e0f", "two\nlines"]);
        t.add_row(vec!["op_f0e0d0c0b0a0", &format!("ab {}", "x".repeat(100))]);
        let text = fit_to_terminal(&t, 40).to_string();
        for line in text.lines() {
            assert!(unicode_chars(line) <= 40, "{line:?} is wider than 40");
        }
        for id in [
            "op_0123456789ab",
            "op_ba9876543210",
            "20260918_155554_a1b2c3",
        ] {
            assert!(text.contains(id), "{id} cut: {text}");
        }
        assert!(text.contains('…'), "{text}");
        assert_eq!(text.lines().count(), 9, "one line per row: {text}");
        assert!(text.contains("two⏎ lines"), "{text}");
        // Cut at the width, not at the last space that fits.
        assert!(text.contains("ab xxxxxxx…"), "{text}");

        // The hit markers take no width: the layout is that of the plain text.
        let with_hits = |cell: &str| {
            let out = Output {
                json: false,
                color: false,
            };
            let mut t = out.table(&["session", "snippet"]);
            t.add_row(vec!["op_0123456789ab", cell]);
            fit_to_terminal(&t, 30).to_string()
        };
        let plain = with_hits("before the hit and after it, long");
        let marked = with_hits(&format!("before the {on}hit{off} and after it, long"));
        assert_eq!(marked.replace(['\u{2060}', '\u{2061}'], ""), plain);
    }

    /// Issue 22: `session list`'s columns at 80 and 120 columns. Headers
    /// stay on one line; ids, token counts and costs are whole; times lose
    /// only their seconds; columns that do not fit are hidden in
    /// `HIDE_ORDER` and named on a last line.
    /// Two rows of `session list` (without the constant `source`).
    const SESSION_ROWS: [[&str; 9]; 2] = [
        [
            "op_fd12aabfe228",
            "bob",
            "—",
            "deepseek/deepseek-chat",
            "2026-09-21 03:16:45",
            "6",
            "16649/1662",
            "10.0021",
            "timeout",
        ],
        [
            "op_216fdaeeb975",
            "alice",
            "東京の天気はどうですか operator 2",
            "anthropic/claude-sonnet-4",
            "2026-09-19 22:47:04",
            "2",
            "861/284",
            "0.0068",
            "user_exit",
        ],
    ];

    #[test]
    fn terminal_tables_at_80_and_120_columns_never_cut_numbers() {
        let out = Output {
            json: false,
            color: false,
        };
        let mut t = out.table(&[
            "id",
            "source",
            "user",
            "title",
            "model",
            "started (UTC)",
            "msgs",
            "tokens in/out",
            "cost $",
            "ended",
        ]);
        let rows = SESSION_ROWS;
        for r in &rows {
            let mut cells = vec![r[0], "operator"];
            cells.extend_from_slice(&r[1..]);
            t.add_row(cells);
        }
        let at = |w: u16| {
            let text = fit_to_terminal(&t, w);
            for line in text.lines() {
                assert!(
                    unicode_width(line) <= usize::from(w),
                    "{line:?} wider than {w}"
                );
            }
            // Top border, header, separator, rows, bottom: no wrapped line.
            let table_lines = text
                .lines()
                .filter(|l| l.starts_with(['┌', '│', '╞', '└']))
                .count();
            assert_eq!(table_lines, 4 + rows.len(), "{text}");
            for r in &rows {
                for kept in [r[0], &r[4][..16], r[5], r[6], r[7]] {
                    assert!(text.contains(kept), "{kept} cut at {w}: {text}");
                }
            }
            text
        };
        let narrow = at(80);
        let header_line = narrow.lines().nth(1).unwrap();
        assert!(
            !narrow.contains(":45 ") && !header_line.contains("source"),
            "{narrow}"
        );
        assert!(
            narrow.ends_with(
                "\n(not shown at 80 columns: source, model, ended, title; --json has them)"
            ),
            "{narrow}"
        );
        assert!(
            narrow.contains("tokens in/out") && narrow.contains("cost $"),
            "{narrow}"
        );
        let wide = at(120);
        assert!(
            wide.ends_with("\n(not shown at 120 columns: source; --json has them)"),
            "{wide}"
        );
        for h in ["user", "title", "model", "started (UTC)", "ended"] {
            assert!(wide.contains(h), "{h}: {wide}");
        }
        // Wide enough for everything: nothing hidden, seconds kept.
        let all = fit_to_terminal(&t, 250);
        assert!(
            all.contains("2026-09-21 03:16:45") && all.contains("operator"),
            "{all}"
        );
        assert!(!all.contains("not shown"), "{all}");
    }

    /// Display columns (CJK characters take two), as a terminal shows them.
    fn unicode_width(s: &str) -> usize {
        s.chars()
            .map(|c| {
                if ('\u{3000}'..='\u{9fff}').contains(&c) {
                    2
                } else {
                    1
                }
            })
            .sum()
    }

    fn unicode_chars(s: &str) -> usize {
        s.chars().count()
    }
}
