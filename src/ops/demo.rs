//! `demo`: fill a throwaway home with realistic sample data, so every view
//! of the dashboard and every report has something to show without a
//! Hermes install: accounts of every role, a state.db in Hermes' own schema
//! (operator and native sessions, messages, tool calls), and a week of
//! audit events (turns, model calls with tokens and cost, tool calls, an
//! approval, logins) appended through the one append path, so the chain
//! verifies and every session replays.

use crate::app::App;
use crate::error::{Error, Result};
use crate::ops::credentials;
use crate::store::events::{EventKind, NewEvent};
use crate::store::users::Role;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// What the demo made, for the banner.
#[derive(Debug, Clone)]
pub struct Demo {
    /// Every account's password (one, printed once).
    pub password: String,
    pub users: Vec<(String, Role)>,
    pub operator_sessions: usize,
    pub native_sessions: usize,
    pub events: usize,
    /// A session with tool calls and an approval, to replay first.
    pub replay: String,
}

const MODEL: &str = "hermes-3-llama-3.1-70b";
const USERS: [(&str, Role); 5] = [
    ("ada", Role::Admin),
    ("otto", Role::Auditor),
    ("uma", Role::User),
    ("ulf", Role::User),
    ("vic", Role::Viewer),
];

/// One scripted conversation: the user's message, the tool calls the agent
/// made (tool, arguments, result), a dangerous command that needed approval,
/// and the reply.
struct Script {
    title: &'static str,
    ask: &'static str,
    tools: &'static [(&'static str, &'static str, &'static str)],
    approval: Option<&'static str>,
    reply: &'static str,
}

const SCRIPTS: [Script; 6] = [
    Script {
        title: "Disk usage on /var",
        ask: "How full is /var, and what is taking the space?",
        tools: &[(
            "terminal",
            r#"{"command": "df -h /var && du -sh /var/* 2>/dev/null | sort -h | tail -5"}"#,
            "Filesystem Size Used Avail Use% Mounted on\n/dev/sda2 80G 61G 19G 77% /\n1.2G /var/cache\n3.4G /var/lib\n9.8G /var/log",
        )],
        approval: None,
        reply: "/var is at 77% (61 of 80 GB). Most of it is /var/log (9.8 GB), then /var/lib (3.4 GB). Rotating the nginx logs would free about 7 GB.",
    },
    Script {
        title: "Yesterday's nginx errors",
        ask: "Summarize yesterday's nginx errors.",
        tools: &[(
            "read_file",
            r#"{"path": "/var/log/nginx/error.log.1"}"#,
            "2026/11/30 03:12:44 [error] upstream timed out (110) while reading response header, upstream: 127.0.0.1:8642\n2026/11/30 03:12:51 [error] upstream timed out (110) ...",
        )],
        approval: None,
        reply: "There were 14 errors, all upstream timeouts to the agent's API server between 03:12 and 03:20, during the nightly update. Nothing after 03:20.",
    },
    Script {
        title: "Clean the build cache",
        ask: "The build cache under /tmp/build-cache is stale; clear it.",
        tools: &[(
            "terminal",
            r#"{"command": "rm -rf /tmp/build-cache"}"#,
            "",
        )],
        approval: Some("rm -rf /tmp/build-cache"),
        reply: "Done: /tmp/build-cache is gone (2.1 GB freed). The command needed approval, which you gave once.",
    },
    Script {
        title: "What changed in /etc",
        ask: "What changed in /etc today?",
        tools: &[(
            "terminal",
            r#"{"command": "find /etc -newermt today -type f"}"#,
            "/etc/nginx/sites-available/hermes-operator\n/etc/cron.d/hermes-operator-update",
        )],
        approval: None,
        reply: "Two files changed today: the nginx site for the operator and its update cron entry — both from this morning's install.",
    },
    Script {
        title: "On-call reply",
        ask: "Draft a short reply to the on-call ticket about last night's timeouts.",
        tools: &[],
        approval: None,
        reply: "Hi all — the timeouts between 03:12 and 03:20 were the nightly Hermes update restarting the API server. Requests were retried and nothing was lost. We are moving the update window to 04:30. — ops",
    },
    Script {
        title: "Certificate expiry",
        ask: "When does the TLS certificate expire?",
        tools: &[(
            "terminal",
            r#"{"command": "openssl x509 -enddate -noout -in /etc/ssl/operator.pem"}"#,
            "notAfter=Feb 27 12:00:00 2027 GMT",
        )],
        approval: None,
        reply: "The certificate is valid until 27 February 2027; certbot renews it 30 days before.",
    },
];

/// Name prefix of a throwaway demo home in the temp dir; the reaper removes
/// only `<prefix><12 hex digits>`. Homes kept with `--keep` are named
/// `<prefix>keep-<hex>` so the reaper never takes them.
const HOME_PREFIX: &str = "hermes-operator-demo-";
/// Held (flock) by the demo process for as long as it lives: the kernel
/// drops the lock when the process dies, however it dies (SIGKILL too), so
/// the next `demo` can tell a dead demo's home from a running one's.
const LOCK_FILE: &str = ".demo.lock";

/// A demo home in the temp dir, with its liveness lock held.
#[derive(Debug)]
pub struct DemoHome {
    pub path: PathBuf,
    _lock: std::fs::File,
}

/// Make a new private (0700) demo home under `tmp` with its lock taken.
/// Built under a dot-name and renamed into place, so the reaper never sees
/// a home whose lock is not yet held.
pub fn create_home(tmp: &Path, keep: bool) -> Result<DemoHome> {
    use std::os::unix::fs::DirBuilderExt;
    let id = crate::crypto::random_hex(6);
    let name = if keep {
        format!("{HOME_PREFIX}keep-{id}")
    } else {
        format!("{HOME_PREFIX}{id}")
    };
    let staging = tmp.join(format!(".{name}.new"));
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&staging)
        .map_err(|e| Error::io(&staging, "creating the demo home", e))?;
    let lock_path = staging.join(LOCK_FILE);
    let lock = std::fs::File::create(&lock_path)
        .map_err(|e| Error::io(&lock_path, "creating the demo lock", e))?;
    if !try_lock(&lock) {
        return Err(Error::internal("cannot lock a demo home just made"));
    }
    let path = tmp.join(&name);
    std::fs::rename(&staging, &path).map_err(|e| Error::io(&path, "creating the demo home", e))?;
    Ok(DemoHome { path, _lock: lock })
}

fn try_lock(f: &std::fs::File) -> bool {
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a descriptor this File owns; no memory is involved.
    unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

/// Remove the demo homes under `tmp` whose process is gone (killed with
/// SIGKILL, or by a crash, before it could clean up): ours (same uid), not
/// kept, and with an unheld lock. Homes of older versions (no lock file)
/// are left alone: nothing tells whether they are still in use.
pub fn reap_stale(tmp: &Path) -> Vec<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let mut removed = Vec::new();
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return removed;
    };
    // SAFETY: geteuid cannot fail and touches no memory.
    let uid = unsafe { libc::geteuid() };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(id) = name.to_str().and_then(|n| n.strip_prefix(HOME_PREFIX)) else {
            continue;
        };
        if id.len() != 12 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            continue;
        }
        let path = e.path();
        // Not through a symlink, and only our own.
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() && m.uid() == uid => {}
            _ => continue,
        }
        let Ok(lock) = std::fs::File::open(path.join(LOCK_FILE)) else {
            continue;
        };
        // Held while removing, so two reapers never race on one home.
        if try_lock(&lock) && std::fs::remove_dir_all(&path).is_ok() {
            removed.push(path);
        }
    }
    removed
}

/// A small deterministic generator: the same demo every time.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n.max(1)
    }
}

fn rfc(epoch: f64) -> String {
    chrono::DateTime::from_timestamp_micros((epoch * 1e6) as i64)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// Fill `app.home` (empty but for the operator's profile) with the demo.
#[expect(
    clippy::too_many_lines,
    reason = "one pass that writes accounts, state.db rows and their events together, so the three always agree"
)]
pub fn populate(app: &App) -> Result<Demo> {
    let home = &app.home;
    let password = format!(
        "demo-{}-{}",
        crate::crypto::random_hex(3),
        crate::crypto::random_hex(3)
    );
    let now = chrono::Utc::now().timestamp() as f64;
    let week_ago = now - 7.0 * 86_400.0;
    // Accounts: one Argon2 hash for all (same password), created a week ago.
    let hash = credentials::hash_password(&password)?;
    let users = app.users()?;
    let mut ids = Vec::new();
    let mut evs: Vec<NewEvent> = Vec::new();
    for (i, (name, role)) in USERS.iter().enumerate() {
        // A host joining a fleet whose demo accounts exist uses them (the
        // first host's password stays theirs).
        if let Some(u) = users.find(name)? {
            ids.push(u.id);
            continue;
        }
        let u = users.insert(name, *role, &hash)?;
        evs.push(
            app.event(
                EventKind::UserCreated,
                json!({"username": name, "role": role}),
            )
            .user(&u.id)
            .at(rfc(week_ago - 3600.0 + i as f64 * 60.0)),
        );
        ids.push(u.id);
    }
    // Hermes' state.db, in Hermes' own schema.
    let path = home.state_db();
    let mut db = rusqlite::Connection::open(&path)
        .map_err(|e| Error::sqlite(&path, "creating the demo state.db", e))?;
    db.execute_batch("PRAGMA journal_mode=WAL;")
        .and_then(|_| db.execute_batch(crate::store::state::HERMES_SCHEMA))
        .map_err(|e| Error::sqlite(&path, "creating the demo state.db", e))?;
    let tx = db
        .transaction()
        .map_err(|e| Error::sqlite(&path, "filling the demo state.db", e))?;
    let sql = |e| Error::sqlite(&path, "filling the demo state.db", e);
    let mut rng = Lcg(0x005e_ed0f_de30);
    let mut replay = String::new();
    let chatters = [(2usize, "uma"), (3, "ulf"), (0, "ada")];
    let mut operator_sessions = 0;
    for day in 0..7 {
        for k in 0..2 {
            let (ui, uname) = chatters[(day + k) % chatters.len()];
            let n = day * 2 + k;
            let script = &SCRIPTS[n % SCRIPTS.len()];
            // Hermes keeps titles unique: the second run of a script is "… (2)".
            let title = match n / SCRIPTS.len() {
                0 => script.title.to_string(),
                r => format!("{} ({})", script.title, r + 1),
            };
            let sid = format!("op_{}", crate::crypto::random_hex(6));
            let t0 = week_ago + day as f64 * 86_400.0 + 9.0 * 3600.0 + rng.next(8 * 3600) as f64;
            let (tin, tout) = (1500 + rng.next(3000) as i64, 120 + rng.next(500) as i64);
            let cost = (tin as f64 * 3.0 + tout as f64 * 15.0) / 1e6;
            let ended = (day < 6).then_some(t0 + 600.0);
            tx.execute(
                "INSERT INTO sessions (id, source, user_id, model, title, started_at, ended_at, end_reason,
                   message_count, tool_call_count, input_tokens, output_tokens, api_call_count,
                   billing_provider, estimated_cost_usd, cost_status)
                 VALUES (?1, 'operator', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, 'openrouter', ?13, 'estimated')",
                rusqlite::params![
                    sid, ids[ui], MODEL, title, t0, ended, ended.map(|_| "ended by user"),
                    2 + 2 * script.tools.len() as i64, script.tools.len() as i64, tin, tout,
                    1 + script.tools.len() as i64, cost
                ],
            )
            .map_err(sql)?;
            let actor = format!("http:{uname}");
            let ev = |kind, data: Value, at: f64| {
                let mut e = app
                    .event(kind, data)
                    .session(&sid)
                    .user(&ids[ui])
                    .at(rfc(at));
                e.actor = actor.clone();
                e
            };
            evs.push(ev(
                EventKind::SessionStart,
                json!({"username": uname, "model": MODEL, "channel": "http"}),
                t0,
            ));
            let mut t = t0 + 1.0;
            let msg = |tx: &rusqlite::Transaction,
                       role: &str,
                       content: Option<&str>,
                       calls: Option<String>,
                       tool: Option<(&str, &str)>,
                       at: f64| {
                tx.execute(
                    "INSERT INTO messages (session_id, role, content, tool_calls, tool_call_id, tool_name, timestamp, finish_reason)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    rusqlite::params![sid, role, content, calls, tool.map(|t| t.0), tool.map(|t| t.1), at,
                                      (role == "assistant" && content.is_some()).then_some("stop")],
                )
                .map(|_| tx.last_insert_rowid())
            };
            msg(&tx, "user", Some(script.ask), None, None, t).map_err(sql)?;
            evs.push(ev(
                EventKind::UserMessage,
                json!({"content": script.ask, "model": MODEL, "channel": "http"}),
                t,
            ));
            for (n, (tool, args, result)) in script.tools.iter().enumerate() {
                let call_id = format!("call_{}_{n}", &sid[3..]);
                let args: Value = serde_json::from_str(args).unwrap_or(Value::Null);
                t += 2.0;
                if let Some(cmd) = script.approval {
                    evs.push(ev(EventKind::ApprovalRequest, json!({"command": cmd, "description": "recursive delete", "run_id": format!("run_{}", &sid[3..])}), t));
                    t += 9.0;
                    evs.push(ev(EventKind::Approval, json!({"command": cmd, "choice": "once", "decided_by": format!("{uname} (user)"), "applied": true}), t));
                    replay.clone_from(&sid);
                }
                let calls = json!([{"id": call_id, "type": "function", "function": {"name": tool, "arguments": args.to_string()}}]);
                let mid =
                    msg(&tx, "assistant", None, Some(calls.to_string()), None, t).map_err(sql)?;
                evs.push(ev(EventKind::ToolCall, json!({"tool": tool, "arguments": args, "tool_call_id": call_id, "message_id": mid, "source": "state.db"}), t));
                t += 1.5;
                msg(&tx, "tool", Some(result), None, Some((&call_id, tool)), t).map_err(sql)?;
                evs.push(ev(EventKind::ToolResult, json!({"tool": tool, "tool_call_id": call_id, "status": "ok", "result": result, "source": "state.db"}), t));
            }
            t += 3.0;
            let mid = msg(&tx, "assistant", Some(script.reply), None, None, t).map_err(sql)?;
            evs.push(ev(
                EventKind::AssistantMessage,
                json!({"content": script.reply, "message_id": mid, "finish_reason": "stop"}),
                t,
            ));
            evs.push(ev(EventKind::LlmCall, json!({"model": MODEL, "input_tokens": tin, "output_tokens": tout, "cost_usd": cost, "api_calls": 1 + script.tools.len(), "latency_ms": 1800 + rng.next(2500), "granularity": "run"}), t));
            if let Some(e) = ended {
                evs.push(ev(
                    EventKind::SessionEnd,
                    json!({"reason": "ended by user"}),
                    e,
                ));
            }
            operator_sessions += 1;
        }
        // A login a day, from the office.
        let (ui, uname) = chatters[day % chatters.len()];
        let mut login = app
            .event(
                EventKind::Login,
                json!({"username": uname, "client": "203.0.113.7"}),
            )
            .user(&ids[ui])
            .at(rfc(week_ago + day as f64 * 86_400.0 + 8.5 * 3600.0));
        login.actor = format!("http:{uname}");
        evs.push(login);
    }
    // Sessions Hermes' own front ends made: the operator lists them for
    // auditors, never continues them.
    let native = [
        ("cli", "Refactor the backup script"),
        ("telegram", "Weather in Lisbon"),
        ("cli", "Explain this stack trace"),
        ("discord", "Summarize the channel"),
    ];
    for (i, (source, title)) in native.iter().enumerate() {
        let sid = format!(
            "2026{:02}{:02}_0900{:02}_{}",
            11,
            24 + i,
            i,
            crate::crypto::random_hex(3)
        );
        let t0 = week_ago + i as f64 * 86_400.0 * 1.5 + 14.0 * 3600.0;
        tx.execute(
            "INSERT INTO sessions (id, source, model, title, started_at, message_count, input_tokens, output_tokens, estimated_cost_usd)
             VALUES (?1, ?2, ?3, ?4, ?5, 2, 900, 140, 0.0048)",
            rusqlite::params![sid, source, MODEL, title, t0],
        )
        .map_err(sql)?;
        tx.execute(
            "INSERT INTO messages (session_id, role, content, timestamp) VALUES (?1, 'user', ?2, ?3), (?1, 'assistant', ?4, ?5)",
            rusqlite::params![sid, title, t0 + 1.0, "Here is what I found.", t0 + 6.0],
        )
        .map_err(sql)?;
    }
    tx.commit().map_err(sql)?;
    drop(db);
    evs.sort_by(|a, b| a.at.cmp(&b.at));
    let events = app.events()?.append_batch(&evs)?.len();
    Ok(Demo {
        password,
        users: USERS.iter().map(|(n, r)| (n.to_string(), *r)).collect(),
        operator_sessions,
        native_sessions: native.len(),
        events,
        replay,
    })
}
