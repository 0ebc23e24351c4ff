//! stdout is data, stderr is messages. Tables for people, `--json` for
//! scripts; `NO_COLOR` (and a non-terminal stdout) turns styling off.

use comfy_table::{presets, ContentArrangement, Table};
use serde::Serialize;
use std::io::{IsTerminal, Write};

#[derive(Debug, Clone, Copy)]
pub struct Output {
    pub json: bool,
    pub color: bool,
}

impl Output {
    pub fn new(json: bool) -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Output {
            json,
            color: !no_color && std::io::stderr().is_terminal(),
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
        t.load_preset(presets::UTF8_FULL_CONDENSED)
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
        self.line(t.to_string())
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
        if let Some(h) = &e.hint {
            eprintln!("  hint: {h}");
        }
    }
}

fn write_err(e: std::io::Error) -> crate::Error {
    // A closed pipe (`| head`) is not worth a scary message.
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    crate::Error::internal(format!("writing output: {e}"))
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
fn is_format_char(c: char) -> bool {
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
}
