//! config.yaml: the textual edit that leaves everything else byte-for-byte.

use super::*;

struct Lines<'a> {
    /// Each line without its terminator.
    pub(super) text: Vec<&'a str>,
    pub(super) nl: &'static str,
    /// Whether the last line ended with a newline.
    pub(super) final_nl: bool,
}

impl<'a> Lines<'a> {
    pub(super) fn new(src: &'a str) -> Self {
        let crlf = src.contains("\r\n");
        let mut text: Vec<&str> = src
            .split('\n')
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
            .collect();
        let final_nl = src.ends_with('\n');
        if final_nl || src.is_empty() {
            text.pop();
        }
        Lines {
            text,
            nl: if crlf { "\r\n" } else { "\n" },
            final_nl,
        }
    }
    pub(super) fn len(&self) -> usize {
        self.text.len()
    }
    pub(super) fn content(&self, i: usize) -> bool {
        let t = self.text[i].trim_start();
        !t.is_empty() && !t.starts_with('#')
    }
    pub(super) fn indent(&self, i: usize) -> usize {
        self.text[i].len() - self.text[i].trim_start_matches(' ').len()
    }
    pub(super) fn has_tab_indent(&self, i: usize) -> bool {
        let t = self.text[i];
        t[..t.len() - t.trim_start().len()].contains('\t')
    }
}

/// `key: rest` of a plain block-mapping key line (after indentation).
fn key_of(line: &str) -> Option<(&str, &str)> {
    let s = line.trim_start();
    let colon = s.find(':')?;
    let key = &s[..colon];
    let rest = &s[colon + 1..];
    let ok_key = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    let ok_rest = rest.is_empty() || rest.starts_with(' ') || rest.starts_with('\t');
    (ok_key && ok_rest).then_some((key, rest))
}

/// Split ` value  # comment` into (value, Some("# comment")).
fn value_and_comment(rest: &str) -> (&str, Option<&str>) {
    let t = rest.trim();
    if t.starts_with('#') {
        return ("", Some(t));
    }
    match t.find(" #") {
        Some(i) => (t[..i].trim_end(), Some(t[i + 1..].trim())),
        None => (t, None),
    }
}

fn is_empty_inline(v: &str) -> bool {
    matches!(v, "" | "{}" | "[]" | "null" | "~" | "Null" | "NULL")
}

struct EventBlock {
    pub(super) name: String,
    pub(super) key_line: usize,
    /// Inline value on the key line (`[]`, `null`, ...), "" for a block value.
    pub(super) inline: String,
    pub(super) comment: Option<String>,
    pub(super) last_content: Option<usize>,
    pub(super) item_indent: Option<usize>,
    pub(super) items: Vec<usize>,
}

struct HooksBlock {
    pub(super) key_line: usize,
    pub(super) inline: String,
    pub(super) comment: Option<String>,
    pub(super) marker: bool,
    pub(super) last_content: Option<usize>,
    pub(super) event_indent: Option<usize>,
    pub(super) events: Vec<EventBlock>,
}

/// Find the top-level `hooks:` block and its structure, or say why it
/// cannot be edited safely.
#[expect(
    clippy::too_many_lines,
    reason = "a small YAML block scanner (a state machine over lines) that refuses layouts it cannot edit safely"
)]
fn scan_hooks(
    l: &Lines,
    parsed_has_hooks: bool,
) -> std::result::Result<Option<HooksBlock>, String> {
    let tops: Vec<usize> = (0..l.len())
        .filter(|&i| {
            l.content(i) && l.indent(i) == 0 && key_of(l.text[i]).is_some_and(|(k, _)| k == "hooks")
        })
        .collect();
    let key_line = match (tops.as_slice(), parsed_has_hooks) {
        ([], false) => return Ok(None),
        ([i], true) => *i,
        ([], true) => return Err("the `hooks` key is not written as a plain `hooks:` line".into()),
        _ => return Err("found more than one top-level `hooks:` line".into()),
    };
    let (inline, comment) =
        value_and_comment(key_of(l.text[key_line]).map(|(_, r)| r).unwrap_or(""));
    let mut end = key_line + 1;
    while end < l.len() && !(l.content(end) && l.indent(end) == 0) {
        end += 1;
    }
    let body: Vec<usize> = (key_line + 1..end).filter(|&i| l.content(i)).collect();
    if !is_empty_inline(inline) {
        return Err(format!("`hooks:` is written inline ({inline})"));
    }
    if !inline.is_empty() && !body.is_empty() {
        return Err("`hooks:` has both an inline value and an indented block".into());
    }
    let marker = key_line > 0 && l.text[key_line - 1].trim_end() == MARKER;
    let mut hb = HooksBlock {
        key_line,
        inline: inline.to_string(),
        comment: comment.map(str::to_string),
        marker,
        last_content: body.last().copied(),
        event_indent: body.first().map(|&i| l.indent(i)),
        events: Vec::new(),
    };
    let Some(k) = hb.event_indent else {
        return Ok(Some(hb));
    };
    for &i in &body {
        if l.has_tab_indent(i) {
            return Err(format!("line {} is indented with a tab", i + 1));
        }
    }
    let mut idx = 0;
    while idx < body.len() {
        let i = body[idx];
        let ind = l.indent(i);
        if ind != k {
            return Err(format!(
                "line {}: unexpected indentation inside `hooks:`",
                i + 1
            ));
        }
        let Some((name, rest)) = key_of(l.text[i]) else {
            return Err(format!(
                "line {}: expected `event_name:` inside `hooks:`",
                i + 1
            ));
        };
        let (inline, comment) = value_and_comment(rest);
        // The event's lines: until the next key at indent k (items may sit
        // at indent k too, PyYAML's style: `- command: ...`).
        let mut j = idx + 1;
        while j < body.len() {
            let li = body[j];
            let t = l.text[li].trim_start();
            if l.indent(li) < k || (l.indent(li) == k && !(t == "-" || t.starts_with("- "))) {
                break;
            }
            j += 1;
        }
        let lines: Vec<usize> = body[idx + 1..j].to_vec();
        let item_indent = lines.first().map(|&x| l.indent(x));
        let items: Vec<usize> = match item_indent {
            Some(s) => lines
                .iter()
                .copied()
                .filter(|&x| {
                    let t = l.text[x].trim_start();
                    l.indent(x) == s && (t == "-" || t.starts_with("- "))
                })
                .collect(),
            None => vec![],
        };
        hb.events.push(EventBlock {
            name: name.to_string(),
            key_line: i,
            inline: inline.to_string(),
            comment: comment.map(str::to_string),
            last_content: lines.last().copied(),
            item_indent,
            items,
        });
        idx = j;
    }
    Ok(Some(hb))
}

pub(super) fn entry_lines(indent: usize, event: &str, command: &str, timeout: u32) -> Vec<String> {
    let pad = " ".repeat(indent);
    let mut v = vec![
        format!(
            "{pad}- command: {}",
            serde_json::to_string(command).unwrap_or_default()
        ),
        format!("{pad}  timeout: {timeout}"),
    ];
    if fails_closed(event) {
        v.push(format!("{pad}  fail_closed: true"));
    }
    v
}

fn with_comment(s: String, comment: &Option<String>) -> String {
    match comment {
        Some(c) => format!("{s}  {c}"),
        None => s,
    }
}

/// Apply `plans` to the text. Err: the layout is not one we edit safely.
#[expect(
    clippy::too_many_lines,
    reason = "a line-oriented edit of Hermes' config.yaml that must keep every other byte; its cursor and indentation state are shared by the insert, replace and remove cases"
)]
pub(super) fn edit_text(
    src: &str,
    parsed: &Mapping,
    plans: &[EventPlan],
) -> std::result::Result<String, String> {
    let l = Lines::new(src);
    let n = l.len();
    let hooks = parsed.get("hooks");
    let hb = scan_hooks(&l, hooks.is_some())?;
    let mut drop = vec![false; n];
    let mut replace: BTreeMap<usize, String> = BTreeMap::new();
    let mut insert: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    let mut new_events: Vec<&EventPlan> = Vec::new();

    for p in plans {
        let block = hb
            .as_ref()
            .and_then(|h| h.events.iter().find(|e| e.name == p.event));
        let Some(e) = block else {
            if p.append.is_some() {
                new_events.push(p);
                continue;
            }
            return Err(format!("cannot find the `{}:` lines", p.event));
        };
        let list_len = parsed
            .get("hooks")
            .and_then(|h| h.get(p.event.as_str()))
            .and_then(Yaml::as_sequence)
            .map_or(0, |s| s.len());
        if !e.inline.is_empty() && !is_empty_inline(&e.inline) {
            return Err(format!("`{}:` is written inline", p.event));
        }
        if e.items.len() != list_len {
            return Err(format!(
                "`{}:` is not a plain list of `- command: ...` entries",
                p.event
            ));
        }
        if list_len > 0 && e.item_indent.is_none() {
            return Err(format!("`{}:` has an unexpected layout", p.event));
        }
        if p.drop_event {
            let last = e.last_content.unwrap_or(e.key_line);
            for d in drop.iter_mut().take(last + 1).skip(e.key_line) {
                *d = true;
            }
            continue;
        }
        for &ix in &p.drop_items {
            let start = e.items[ix];
            let stop = match e.items.get(ix + 1) {
                Some(&next) => next,
                None => e.last_content.map_or(start + 1, |x| x + 1),
            };
            for d in drop.iter_mut().take(stop).skip(start) {
                *d = true;
            }
        }
        if let Some((cmd, t)) = &p.append {
            let indent = e
                .item_indent
                .unwrap_or(hb.as_ref().and_then(|h| h.event_indent).unwrap_or(2) + 2);
            let at = e.last_content.unwrap_or(e.key_line) + 1;
            insert
                .entry(at)
                .or_default()
                .extend(entry_lines(indent, &p.event, cmd, *t));
            if !e.inline.is_empty() {
                let pad = " ".repeat(l.indent(e.key_line));
                replace.insert(
                    e.key_line,
                    with_comment(format!("{pad}{}:", e.name), &e.comment),
                );
            }
        }
    }

    // Events that are not in the file yet go at the end of the hooks block.
    let mut added_hooks_key = false;
    if !new_events.is_empty() {
        let (k, at) = match &hb {
            Some(h) => {
                if !h.inline.is_empty() {
                    replace.insert(h.key_line, with_comment("hooks:".into(), &h.comment));
                }
                (
                    h.event_indent.unwrap_or(2),
                    h.last_content.unwrap_or(h.key_line) + 1,
                )
            }
            None => {
                added_hooks_key = true;
                (2, n)
            }
        };
        let pad = " ".repeat(k);
        let mut lines = Vec::new();
        if added_hooks_key {
            lines.push(MARKER.to_string());
            lines.push("hooks:".to_string());
        }
        for p in &new_events {
            lines.push(format!("{pad}{}:", p.event));
            if let Some((cmd, t)) = &p.append {
                lines.extend(entry_lines(k + 2, &p.event, cmd, *t));
            }
        }
        insert.entry(at).or_default().extend(lines);
    }

    // Uninstall emptied the whole block: remove the key we added, or leave `hooks: {}`.
    if let Some(h) = &hb {
        let body_left = (h.key_line + 1..n)
            .take_while(|&i| !(l.content(i) && l.indent(i) == 0))
            .any(|i| l.content(i) && !drop[i]);
        let inserting_into_block = insert
            .keys()
            .any(|&at| at > h.key_line && at <= h.last_content.unwrap_or(h.key_line) + 1);
        if h.inline.is_empty() && h.last_content.is_some() && !body_left && !inserting_into_block {
            if h.marker {
                drop[h.key_line] = true;
                drop[h.key_line - 1] = true;
            } else {
                replace.insert(h.key_line, with_comment("hooks: {}".into(), &h.comment));
            }
        }
    }

    let mut out = String::with_capacity(src.len() + 512);
    let push = |out: &mut String, s: &str| {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push_str(l.nl);
        }
        out.push_str(s);
        out.push_str(l.nl);
    };
    let emit_inserts = |out: &mut String, at: usize| {
        for s in insert.get(&at).into_iter().flatten() {
            push(out, s);
        }
    };
    for (i, text) in l.text.iter().enumerate() {
        emit_inserts(&mut out, i);
        if !drop[i] {
            push(&mut out, replace.get(&i).map_or(text, String::as_str));
        }
    }
    emit_inserts(&mut out, n);
    // Keep a missing final newline missing when nothing was appended after it.
    if !l.final_nl && n > 0 && !insert.contains_key(&n) && !drop[n - 1] && out.ends_with(l.nl) {
        out.truncate(out.len() - l.nl.len());
    }
    Ok(out)
}

/// hooks values compare equal when absent, null and `{}` (Hermes: no hooks).
fn hooks_equiv(a: Option<&Yaml>, b: &Mapping) -> bool {
    match a {
        None | Some(Yaml::Null) => b.is_empty(),
        Some(Yaml::Mapping(m)) => m == b,
        Some(_) => false,
    }
}

/// Check the edited text: it parses, every key but `hooks` is unchanged, and
/// `hooks` is exactly what the plan says.
pub(super) fn verify_edit(
    path: &Path,
    before: &Mapping,
    after_text: &str,
    expected: &Mapping,
) -> std::result::Result<(), String> {
    let after = parse_root(path, after_text).map_err(|e| e.message)?;
    let strip = |m: &Mapping| {
        let mut m = m.clone();
        m.remove("hooks");
        m
    };
    if strip(before) != strip(&after) {
        return Err("the edit would change keys outside `hooks:`".into());
    }
    if !hooks_equiv(after.get("hooks"), expected) {
        return Err("the edited `hooks:` block does not read back as intended".into());
    }
    Ok(())
}
