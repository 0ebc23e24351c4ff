//! `shell-hooks-allowlist.json`: Hermes' approvals of hook commands, in its own format.

use super::*;

/// `json.dumps(data, indent=2, sort_keys=True)` (ensure_ascii), byte for byte.
pub fn python_json(v: &Value) -> String {
    let mut out = String::new();
    py_write(v, 0, &mut out);
    out
}

fn py_write(v: &Value, ind: usize, out: &mut String) {
    match v {
        Value::Object(m) if m.is_empty() => out.push_str("{}"),
        Value::Array(a) if a.is_empty() => out.push_str("[]"),
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push_str("{\n");
            for (i, k) in keys.iter().enumerate() {
                out.push_str(&" ".repeat(ind + 2));
                py_str(k, out);
                out.push_str(": ");
                py_write(&m[k.as_str()], ind + 2, out);
                out.push_str(if i + 1 < keys.len() { ",\n" } else { "\n" });
            }
            out.push_str(&" ".repeat(ind));
            out.push('}');
        }
        Value::Array(a) => {
            out.push_str("[\n");
            for (i, x) in a.iter().enumerate() {
                out.push_str(&" ".repeat(ind + 2));
                py_write(x, ind + 2, out);
                out.push_str(if i + 1 < a.len() { ",\n" } else { "\n" });
            }
            out.push_str(&" ".repeat(ind));
            out.push(']');
        }
        Value::String(s) => py_str(s, out),
        other => out.push_str(&other.to_string()),
    }
}

fn py_str(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            c => {
                let mut buf = [0u16; 2];
                for u in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{u:04x}"));
                }
            }
        }
    }
    out.push('"');
}

/// Python's `datetime.isoformat().replace("+00:00", "Z")` for a UTC time.
pub(super) fn py_iso(secs: i64, micros: u32) -> String {
    let t = chrono::DateTime::from_timestamp(secs, micros * 1000).unwrap_or_default();
    let base = t.format("%Y-%m-%dT%H:%M:%S").to_string();
    if micros == 0 {
        format!("{base}Z")
    } else {
        format!("{base}.{micros:06}Z")
    }
}

/// Hermes' `script_mtime_iso(command)`: the mtime of the command's program.
fn script_mtime_iso(command: &str) -> Option<String> {
    let prog = command_program(command)?;
    let m = fs::metadata(&prog).ok()?;
    use std::os::unix::fs::MetadataExt;
    // Python: datetime.fromtimestamp(st_mtime float), rounded half-even to µs.
    let f = m.mtime() as f64 + m.mtime_nsec() as f64 * 1e-9;
    let mut secs = f.floor();
    let mut us = ((f - secs) * 1e6).round_ties_even();
    if us >= 1e6 {
        secs += 1.0;
        us -= 1e6;
    }
    Some(py_iso(secs as i64, us as u32))
}

fn now_py_iso() -> String {
    let now = chrono::Utc::now();
    py_iso(now.timestamp(), now.timestamp_subsec_micros())
}

pub(super) fn parse_allowlist(path: &Path, text: Option<&str>) -> Result<Value> {
    let Some(text) = text else {
        return Ok(json!({"approvals": []}));
    };
    let mut v: Value = serde_json::from_str(text).map_err(|e| {
        Error::config(format!("{} is not valid JSON: {e}", path.display())).hint(
            "fix or move the file aside (Hermes would treat it as empty and ask for consent again)",
        )
    })?;
    if !v.is_object() {
        return Err(Error::config(format!(
            "{} does not hold a JSON object",
            path.display()
        )));
    }
    if !v["approvals"].is_array() {
        v["approvals"] = json!([]);
    }
    Ok(v)
}

fn allowlist_managed(e: &Value) -> bool {
    e.get("command")
        .and_then(Value::as_str)
        .is_some_and(is_managed_command)
}

/// The allowlist after install (our command approved for every managed
/// event, other hermes-operator commands dropped) or uninstall (all ours dropped).
pub(super) fn edit_allowlist(v: &Value, mode: Mode, command: &str) -> Value {
    let mut out = v.clone();
    let old = v["approvals"].as_array().cloned().unwrap_or_default();
    let mut seen: Vec<String> = Vec::new();
    let mut kept: Vec<Value> = Vec::new();
    for e in old {
        if !allowlist_managed(&e) {
            kept.push(e);
            continue;
        }
        let ev = e
            .get("event")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let ours = mode == Mode::Install
            && e.get("command").and_then(Value::as_str) == Some(command)
            && HookEvent::parse(&ev).is_some()
            && !seen.contains(&ev);
        if ours {
            seen.push(ev);
            kept.push(e);
        }
    }
    if mode == Mode::Install {
        for ev in MANAGED_EVENTS.iter().map(|e| e.name()) {
            if !seen.iter().any(|s| s == ev) {
                kept.push(json!({
                    "event": ev,
                    "command": command,
                    "approved_at": now_py_iso(),
                    "script_mtime_at_approval": script_mtime_iso(command),
                }));
            }
        }
    }
    out["approvals"] = Value::Array(kept);
    out
}

pub(super) fn allowlisted(v: &Value, event: &str, command: &str) -> bool {
    v["approvals"].as_array().is_some_and(|a| {
        a.iter().any(|e| {
            e.get("event").and_then(Value::as_str) == Some(event)
                && e.get("command").and_then(Value::as_str) == Some(command)
        })
    })
}
