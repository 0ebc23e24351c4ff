//! config.yaml: what the `hooks:` block should hold (semantic plan).

use super::*;

fn yaml_str(s: &str) -> Yaml {
    Yaml::String(s.to_string())
}

/// Whether our entry under `event` carries `fail_closed: true`: only
/// `pre_tool_call` can block, so only there does a hook that cannot run
/// (program missing, crash, timeout, garbled output) block the tool on
/// Hermes 0.20+. Hermes 0.19 ignores the key (it reads command, matcher
/// and timeout only), so it is written on every Hermes and takes effect
/// the moment Hermes is upgraded.
pub(super) fn fails_closed(event: &str) -> bool {
    event == "pre_tool_call"
}

/// The entry we want under `event`.
pub(super) fn desired_entry(event: &str, command: &str, timeout: u32) -> Yaml {
    let mut m = Mapping::new();
    m.insert(yaml_str("command"), yaml_str(command));
    m.insert(yaml_str("timeout"), Yaml::Number(timeout.into()));
    if fails_closed(event) {
        m.insert(yaml_str("fail_closed"), Yaml::Bool(true));
    }
    Yaml::Mapping(m)
}

pub(super) fn is_managed_entry(v: &Yaml) -> bool {
    v.get("command")
        .and_then(Yaml::as_str)
        .is_some_and(is_managed_command)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    Install,
    Uninstall,
}

/// What happens to one event's list.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct EventPlan {
    pub(super) event: String,
    /// Indices (in the parsed list) of entries to remove.
    pub(super) drop_items: Vec<usize>,
    /// An entry to append at the end of the list.
    pub(super) append: Option<(String, u32)>,
    /// Remove the event key altogether (all its entries were ours).
    pub(super) drop_event: bool,
}

pub(super) fn parse_root(path: &Path, text: &str) -> Result<Mapping> {
    if text.trim().is_empty() {
        return Ok(Mapping::new());
    }
    let v: Yaml = serde_norway::from_str(text).map_err(|e| {
        Error::config(format!("{} is not valid YAML: {e}", path.display()))
            .hint("fix the file first (Hermes ignores a config.yaml it cannot parse)")
    })?;
    match v {
        Yaml::Null => Ok(Mapping::new()),
        Yaml::Mapping(m) => Ok(m),
        _ => Err(Error::config(format!(
            "{} does not hold a mapping at the top level",
            path.display()
        ))),
    }
}

/// Hermes reads `hooks:` as a mapping of event → list; null means none.
pub(super) fn hooks_of<'a>(path: &Path, root: &'a Mapping) -> Result<Option<&'a Mapping>> {
    match root.get("hooks") {
        None | Some(Yaml::Null) => Ok(None),
        Some(Yaml::Mapping(m)) => Ok(Some(m)),
        Some(_) => Err(Error::config(format!(
            "{}: `hooks:` is not a mapping of event names to lists",
            path.display()
        ))),
    }
}

pub(super) fn plan_events(hooks: Option<&Mapping>, mode: Mode, command: &str) -> Vec<EventPlan> {
    let mut plans = Vec::new();
    if let Some(h) = hooks {
        for (k, v) in h {
            let Some(event) = k.as_str() else { continue };
            let Some(list) = v.as_sequence() else {
                continue;
            };
            let managed: Vec<usize> = (0..list.len())
                .filter(|&i| is_managed_entry(&list[i]))
                .collect();
            let want = match mode {
                Mode::Install => HookEvent::parse(event).map(HookEvent::timeout_secs),
                Mode::Uninstall => None,
            };
            if let Some(t) = want {
                if managed.len() == 1 && list[managed[0]] == desired_entry(event, command, t) {
                    continue;
                }
                plans.push(EventPlan {
                    event: event.to_string(),
                    drop_items: managed,
                    append: Some((command.to_string(), t)),
                    drop_event: false,
                });
            } else if !managed.is_empty() {
                plans.push(EventPlan {
                    event: event.to_string(),
                    drop_event: managed.len() == list.len(),
                    drop_items: managed,
                    append: None,
                });
            }
        }
    }
    if mode == Mode::Install {
        for ev in MANAGED_EVENTS {
            let (event, t) = (ev.name(), ev.timeout_secs());
            let present = hooks.is_some_and(|h| h.get(event).is_some_and(|v| v.is_sequence()));
            if !present {
                plans.push(EventPlan {
                    event: event.to_string(),
                    drop_items: vec![],
                    append: Some((command.to_string(), t)),
                    drop_event: false,
                });
            }
        }
    }
    plans
}

/// The `hooks` value the plan should produce (None: no `hooks` key).
pub(super) fn expected_hooks(hooks: Option<&Mapping>, plans: &[EventPlan]) -> Mapping {
    let mut out = hooks.cloned().unwrap_or_default();
    for p in plans {
        let key = yaml_str(&p.event);
        if p.drop_event {
            out.remove(&key);
            continue;
        }
        let mut list: Vec<Yaml> = match out.get(&key) {
            Some(Yaml::Sequence(s)) => s.clone(),
            _ => Vec::new(),
        };
        let mut i = 0;
        list.retain(|_| {
            let keep = !p.drop_items.contains(&i);
            i += 1;
            keep
        });
        if let Some((cmd, t)) = &p.append {
            list.push(desired_entry(&p.event, cmd, *t));
        }
        out.insert(key, Yaml::Sequence(list));
    }
    out
}
