//! Hermes' shell hooks (docs/design.md §6.6): tool policy and live tool events for
//! operator sessions, and the audited, reversible `hook install`.
//!
//! # The protocol side (`hermes-operator hook`)
//! Hermes 0.19.0 (`agent/shell_hooks.py`) runs one process per event with
//! `{hook_event_name, tool_name, tool_input, session_id, cwd, extra}` as JSON
//! on stdin and reads stdout after the process exits. A `pre_tool_call` is
//! blocked ONLY by `{"decision":"block","reason":...}` on stdout: the exit
//! code is merely logged, and there is no `fail_closed` key — a hook that
//! crashes, cannot be spawned or times out lets the tool run. So the handler
//! always exits 0, prints the block JSON itself whenever it cannot vouch for
//! a call of an operator session (config unreadable, payload unreadable), and
//! is installed with a generous timeout.
//!
//! Only operator sessions are touched: an id `op_` + 12 lowercase hex whose
//! state.db row (one primary-key lookup, read-only, on the session's first
//! event; then remembered in a marker file) does not say another source, or a
//! delegate subagent spawned by one (registered on `subagent_start`). Every
//! other id costs one failed `open` of a marker file and returns at once
//! without opening a database.
//!
//! # The install side
//! `hook install` edits the `hooks:` block of `$HERMES_HOME/config.yaml`
//! textually (comments and layout survive; only our entries are added,
//! replaced or removed), proves the result by parsing both versions and
//! comparing every other key, backs both files up first and adds the
//! matching entries to `shell-hooks-allowlist.json` in exactly Hermes' format
//! so the gateway registers them without a consent prompt. A missing
//! config.yaml (Hermes: all defaults) is created holding only our block
//! (0600); uninstall then leaves it empty, which Hermes also reads as defaults.
//!
//! Compression: Hermes 0.19 compacts a long conversation in place (same
//! session id) unless `compression.in_place` is false in its config.yaml;
//! then it continues under a new, Hermes-generated id (`parent_session_id` =
//! the `op_` id) that no hook event announces, so neither the policy nor the
//! operator's views follow it. `hook status` (and so `doctor`) reports that
//! setting as a problem.

use crate::config::{self, Config, StoreContent};
use crate::error::{Error, Result};
use crate::home::{self, Home};
use crate::store::events::{canonical_json, EventStore, NewEvent};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use serde_norway::{Mapping, Value as Yaml};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A Hermes shell-hook event the operator installs and handles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookEvent {
    /// Before a tool runs: the tool policy answers allow or block.
    PreToolCall,
    /// After a tool ran: its result is recorded.
    PostToolCall,
    /// A delegated subagent started: its session inherits the policy.
    SubagentStart,
    /// A delegated subagent stopped.
    SubagentStop,
}

impl HookEvent {
    /// The event name in Hermes' `hooks:` config, allowlist and payloads.
    pub const fn name(self) -> &'static str {
        match self {
            HookEvent::PreToolCall => "pre_tool_call",
            HookEvent::PostToolCall => "post_tool_call",
            HookEvent::SubagentStart => "subagent_start",
            HookEvent::SubagentStop => "subagent_stop",
        }
    }

    /// The timeout installed with it, in seconds. Hermes lets a tool run when
    /// a hook times out, so it is generous: the handler needs milliseconds,
    /// but an event-log append may wait for another writer.
    pub const fn timeout_secs(self) -> u32 {
        10
    }

    pub fn parse(name: &str) -> Option<HookEvent> {
        MANAGED_EVENTS.iter().copied().find(|e| e.name() == name)
    }
}

impl std::fmt::Display for HookEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The hook events we install (and handle), in config order.
pub const MANAGED_EVENTS: &[HookEvent] = &[
    HookEvent::PreToolCall,
    HookEvent::PostToolCall,
    HookEvent::SubagentStart,
    HookEvent::SubagentStop,
];

/// The actor recorded on events written by the hook handler.
pub const HOOK_ACTOR: &str = "hook";

/// Hermes' allowlist file (in HERMES_HOME).
pub const ALLOWLIST_FILE: &str = "shell-hooks-allowlist.json";

/// Comment line written above a `hooks:` key that `hook install` created.
pub const MARKER: &str =
    "# hermes-operator: tool policy and live audit events (hermes-operator hook install)";

pub use crate::process::{sh_quote, sh_split};

// The seams: what a tool call may do (policy), answering Hermes (handler),
// the `hook` command line, planning and editing Hermes' config.yaml, its
// allowlist, install/uninstall/status (apply), and the dry-run diff.
mod allowlist;
mod apply;
mod command;
mod config_edit;
mod config_plan;
mod diff;
mod handler;
pub mod paths;
mod policy;
pub mod socket;

pub use allowlist::python_json;
use allowlist::{allowlisted, edit_allowlist, parse_allowlist};
pub use apply::{
    apply, compression_in_place, plan_install, plan_uninstall, status, Applied, EventStatus, Plan,
    Status,
};
use command::is_executable;
pub use command::{command_program, hook_command, hook_command_for, is_managed_command};
use config_edit::{edit_text, entry_lines, verify_edit};
use config_plan::{
    desired_entry, expected_hooks, fails_closed, hooks_of, is_managed_entry, parse_root,
    plan_events, EventPlan, Mode,
};
pub use diff::unified_diff;
pub use handler::{
    allowed_toolsets, answer_event, content_sha256, handle_event, handle_event_in,
    is_operator_session_id, sessions_dir, set_turn_policy, Reply,
};
pub use policy::{block_reason, tool_allowed, toolsets_for_tool};

#[cfg(test)]
mod tests {
    use super::allowlist::py_iso;
    use super::*;

    const CMD: &str = "/opt/bin/hermes-operator --hermes-home /srv/hermes hook";

    fn edit(text: &str, mode: Mode, cmd: &str) -> std::result::Result<String, String> {
        let root = parse_root(Path::new("c.yaml"), text).map_err(|e| e.message)?;
        let hooks = hooks_of(Path::new("c.yaml"), &root).map_err(|e| e.message)?;
        let plans = plan_events(hooks, mode, cmd);
        let out = edit_text(text, &root, &plans)?;
        verify_edit(
            Path::new("c.yaml"),
            &root,
            &out,
            &expected_hooks(hooks, &plans),
        )?;
        Ok(out)
    }

    fn install(text: &str) -> std::result::Result<String, String> {
        edit(text, Mode::Install, CMD)
    }

    fn uninstall(text: &str) -> std::result::Result<String, String> {
        edit(text, Mode::Uninstall, "")
    }

    #[test]
    fn operator_ids() {
        assert!(is_operator_session_id("op_0123456789ab"));
        assert!(!is_operator_session_id("op_0123456789AB"));
        assert!(!is_operator_session_id("op_0123456789a"));
        assert!(!is_operator_session_id("api-0123456789abcdef"));
        assert!(!is_operator_session_id("20260101_101010_abcdef"));
    }

    #[test]
    fn policy_by_toolset() {
        let en = vec!["web".to_string(), "file".to_string()];
        assert!(tool_allowed("web_search", &en));
        assert!(tool_allowed("read_file", &en));
        assert!(!tool_allowed("terminal", &en));
        assert!(!tool_allowed("some_plugin_tool", &en));
        let en2 = vec!["some_plugin_tool".to_string(), "mcp-git-hub".to_string()];
        assert!(tool_allowed("some_plugin_tool", &en2));
        assert!(tool_allowed("mcp__git_hub__list_prs", &en2));
        assert!(!tool_allowed("mcp__other__x", &en2));
        let r = block_reason("terminal", &en);
        assert!(
            r.contains("`terminal`") && r.contains("toolset terminal") && r.contains("web, file"),
            "{r}"
        );
        assert_eq!(toolsets_for_tool("mcp__gh__x"), vec!["mcp-gh".to_string()]);
    }

    #[test]
    fn shell_words_round_trip() {
        for s in ["/a/b", "/with space/x", "it's", "", "a\"b"] {
            assert_eq!(
                sh_split(&sh_quote(s)).unwrap(),
                vec![s.to_string()],
                "{s:?}"
            );
        }
        let c = hook_command_for(Path::new("/x y/hermes-operator"), Path::new("/h"));
        assert!(is_managed_command(&c), "{c}");
        assert_eq!(
            command_program(&c).unwrap(),
            PathBuf::from("/x y/hermes-operator")
        );
        assert!(!is_managed_command("/usr/bin/other hook"));
        assert!(!is_managed_command("/usr/bin/hermes-operator status"));
    }

    #[test]
    fn python_json_matches_json_dumps() {
        let v =
            json!({"approvals": [{"event": "e", "command": "/x/é", "n": null, "t": 1}], "b": {}});
        assert_eq!(
            python_json(&v),
            "{\n  \"approvals\": [\n    {\n      \"command\": \"/x/\\u00e9\",\n      \"event\": \"e\",\n      \"n\": null,\n      \"t\": 1\n    }\n  ],\n  \"b\": {}\n}"
        );
    }

    /// `json.dumps(v, indent=2, sort_keys=True)` of the real Python, on
    /// generated values: nesting, empty containers, every kind of
    /// character (controls, quotes, non-ASCII, outside the BMP), integers.
    #[test]
    fn python_json_matches_real_python() {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            "\\PC{0,10}|[\x00-\x1f\"\\\\é\u{1F600}]{0,6}".prop_map(Value::from),
        ];
        let value = leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                prop::collection::btree_map("\\PC{0,6}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        });
        let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(4));
        runner
            .run(&prop::collection::vec(value, 60), |mut values| {
                // Every character below U+0100 and one outside the BMP, each run.
                let all: String = (0u32..0x100).filter_map(char::from_u32).collect();
                values.push(json!({ all.clone(): [all, "\u{1F600}\u{FFFF}"] }));
                let ours: Vec<String> = values.iter().map(python_json).collect();
                let py = crate::process::run_python(
                    "import json, sys\n\
                     vs = json.load(sys.stdin)\n\
                     json.dump([json.dumps(v, indent=2, sort_keys=True) for v in vs], sys.stdout)",
                    &Value::from(values),
                );
                prop_assert_eq!(py, serde_json::json!(ours));
                Ok(())
            })
            .unwrap();
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]
        /// The config edit round trip on generated config.yaml files (other
        /// sections, comments, blank lines, a `hooks:` section of the user's
        /// in either indentation style, a missing final newline): install
        /// keeps every other byte before it, is idempotent, and uninstall
        /// gives back exactly the file it started from.
        #[test]
        fn install_then_uninstall_gives_back_the_file(
            sections in proptest::collection::vec(
                proptest::prop_oneof![
                    "K: [a-z0-9]{1,8}\n",
                    "K:\n  [a-z]{1,8}: [a-z0-9 ]{0,8}[a-z0-9]\n",
                    "# [ -~]{0,20}\n",
                    proptest::strategy::Just("\n".to_string()),
                    "K:\n  - [a-z]{1,6}\n  - [0-9]{1,3}\n",
                ],
                0..6,
            ),
            hooks in proptest::option::of((
                proptest::sample::select(vec!["post_tool_call", "on_session_start", "pre_tool_call"]),
                "/usr/local/bin/[a-z]{1,8}",
                proptest::bool::ANY,
                0u8..3,
            )),
            trailing_newline in proptest::bool::ANY,
        ) {
            // Top-level keys are unique (YAML refuses duplicates): K → k0, k1, ….
            let sections: Vec<String> = sections
                .iter()
                .enumerate()
                .map(|(i, t)| t.strip_prefix('K').map_or_else(|| t.clone(), |r| format!("k{i}{r}")))
                .collect();
            let mut src: String = sections.concat();
            if let Some((event, cmd, pyyaml, at)) = hooks {
                let block = if pyyaml {
                    format!("hooks:\n  {event}:\n  - command: {cmd}\n    timeout: 3\n")
                } else {
                    format!("hooks:\n  # mine\n  {event}:\n    - command: {cmd}  # keep\n")
                };
                let at = (at as usize).min(sections.len());
                src = format!("{}{block}{}", sections[..at].concat(), sections[at..].concat());
            }
            if !trailing_newline && src.ends_with('\n') && !src.ends_with("\n\n") {
                src.pop();
            }
            let out = install(&src).map_err(proptest::test_runner::TestCaseError::fail)?;
            proptest::prop_assert!(out.contains(CMD), "{}", out);
            proptest::prop_assert_eq!(install(&out).unwrap(), out.clone(), "idempotent");
            let back = uninstall(&out).map_err(proptest::test_runner::TestCaseError::fail)?;
            // Exactly the file; a final newline it lacked may stay added
            // when the hook block went after its last line.
            proptest::prop_assert!(
                back == src || (!src.ends_with('\n') && back == format!("{src}\n")),
                "{:?} came back as {:?}; installed:\n{}", src, back, out
            );
        }
    }

    #[test]
    fn py_iso_format() {
        assert_eq!(py_iso(0, 0), "1970-01-01T00:00:00Z");
        assert_eq!(py_iso(0, 5), "1970-01-01T00:00:00.000005Z");
    }

    #[test]
    fn appends_block_when_absent_and_uninstall_restores() {
        let src = "# my config\nmodel:\n  default: x  # keep me\n\nterminal:\n  backend: local\n";
        let out = install(src).unwrap();
        assert!(out.starts_with(src), "{out}");
        assert!(out.contains(&format!(
            "{MARKER}\nhooks:\n  pre_tool_call:\n    - command: \"{CMD}\"\n      timeout: 10\n"
        )));
        assert_eq!(
            install(&out).unwrap(),
            out,
            "second install changes nothing"
        );
        assert_eq!(uninstall(&out).unwrap(), src);
    }

    #[test]
    fn empty_and_missing_final_newline() {
        let out = install("").unwrap();
        assert!(out.starts_with(MARKER));
        assert_eq!(uninstall(&out).unwrap(), "");
        let out = install("a: 1").unwrap();
        assert!(out.starts_with("a: 1\n"));
        assert_eq!(uninstall(&out).unwrap(), "a: 1\n");
    }

    #[test]
    fn merges_into_existing_hooks_keeping_user_entries() {
        let src = "hooks:\n  # audit everything\n  post_tool_call:\n    - command: /usr/local/bin/log-tool  # mine\n      timeout: 3\n  on_session_start:\n    - command: /bin/true\nother: 1\n";
        let out = install(src).unwrap();
        assert!(out.contains("    - command: /usr/local/bin/log-tool  # mine\n      timeout: 3\n    - command: \""), "{out}");
        assert!(
            out.contains("  on_session_start:\n    - command: /bin/true\n  pre_tool_call:\n"),
            "{out}"
        );
        assert!(out.ends_with("other: 1\n"));
        assert_eq!(install(&out).unwrap(), out);
        assert_eq!(uninstall(&out).unwrap(), src);
    }

    #[test]
    fn pyyaml_style_and_stale_entries_are_replaced() {
        let src = "hooks:\n  pre_tool_call:\n  - command: /old/hermes-operator --hermes-home /srv/hermes hook\n    timeout: 5\n  - command: /bin/mine\n";
        let out = install(src).unwrap();
        assert!(!out.contains("/old/hermes-operator"), "{out}");
        assert!(
            out.contains("  - command: /bin/mine\n  - command: \""),
            "{out}"
        );
        let un = uninstall(&out).unwrap();
        assert_eq!(un, "hooks:\n  pre_tool_call:\n  - command: /bin/mine\n");
    }

    #[test]
    fn inline_empty_hooks_become_block_and_come_back() {
        let src = "hooks: {}  # none yet\nx: 2\n";
        let out = install(src).unwrap();
        assert!(
            out.starts_with("hooks:  # none yet\n  pre_tool_call:\n"),
            "{out}"
        );
        assert_eq!(uninstall(&out).unwrap(), "hooks: {}  # none yet\nx: 2\n");
        let src = "hooks:\n  pre_tool_call: []\n";
        let out = install(src).unwrap();
        assert!(
            out.starts_with("hooks:\n  pre_tool_call:\n    - command:"),
            "{out}"
        );
    }

    #[test]
    fn refuses_layouts_it_cannot_edit() {
        let e = install("hooks: {pre_tool_call: [{command: /bin/x}]}\n").unwrap_err();
        assert!(e.contains("inline"), "{e}");
        let e = install("hooks:\n  pre_tool_call: [{command: /bin/x}]\n").unwrap_err();
        assert!(e.contains("inline"), "{e}");
        assert!(install("{a: 1}\n").is_err());
    }

    #[test]
    fn allowlist_edit() {
        let al = json!({"approvals": [
            {"event": "pre_tool_call", "command": "/bin/mine"},
            {"event": "pre_tool_call", "command": "/old/hermes-operator --hermes-home /h hook"}
        ]});
        let a = edit_allowlist(&al, Mode::Install, CMD);
        let list = a["approvals"].as_array().unwrap();
        assert_eq!(list.len(), 1 + MANAGED_EVENTS.len());
        assert!(allowlisted(&a, "post_tool_call", CMD));
        assert!(allowlisted(&a, "pre_tool_call", "/bin/mine"));
        let again = edit_allowlist(&a, Mode::Install, CMD);
        assert_eq!(again, a);
        let u = edit_allowlist(&a, Mode::Uninstall, "");
        assert_eq!(u["approvals"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn diff_shows_changes() {
        let d = unified_diff("f", "a\nb\nc\n", "a\nb\nx\nc\n");
        assert!(d.contains("+x"), "{d}");
        assert!(unified_diff("f", "a\n", "a\n").is_empty());
    }

    #[test]
    fn unparseable_payload_fails_closed_only_for_operator_pre_tool_call() {
        let home = Home::at("/nonexistent-hermes-home-for-test");
        let r = handle_event(
            &home,
            b"{\"hook_event_name\": \"pre_tool_call\", \"session_id\": \"op_0123456789ab\", oops",
        );
        assert!(r.blocks());
        let r = handle_event(
            &home,
            b"{\"hook_event_name\": \"pre_tool_call\", \"session_id\": \"api-1\", oops",
        );
        assert!(!r.blocks());
        assert!(!r.stderr.is_empty());
        let r = handle_event(
            &home,
            b"{\"hook_event_name\": \"on_session_start\", \"session_id\": \"op_0123456789ab\"}",
        );
        assert_eq!(r, Reply::default());
    }
}
