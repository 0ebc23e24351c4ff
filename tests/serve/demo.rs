//! `hermes-operator demo`: starts on a throwaway home, serves every view
//! populated (sessions of every kind, usage, a replayable session with tool
//! calls and an approval, a verifying log), says "demo" in `/api/me`, and
//! leaves nothing behind after SIGTERM.

use crate::common::serve as serve_common;

use serde_json::{json, Value};
use serve_common::{client, send};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

fn r_json(body: &str) -> Value {
    serde_json::from_str(body).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_serves_populated_views_and_cleans_up() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hermes-operator"))
        .args(["demo", "--bind", "127.0.0.1:0"])
        // Wherever HERMES_HOME points, the demo must not use it.
        .env("HERMES_HOME", "/nonexistent/hermes-home")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut banner = Vec::new();
    let base = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("demo did not start: {banner:?}"));
        if let Some(a) = line.strip_prefix("hermes-operator serve: listening on ") {
            break a.to_string();
        }
        banner.push(line);
    };
    let text = banner.join("\n");
    let grab = |after: &str, until: char| -> String {
        let i = text
            .find(after)
            .unwrap_or_else(|| panic!("no {after:?} in {text}"))
            + after.len();
        text[i..].split(until).next().unwrap().trim().to_string()
    };
    let home = std::path::PathBuf::from(grab("sample data in ", ' '));
    let password = grab("with the password ", '\n');
    let replay = grab("an approval: ", ' ');
    assert!(home.is_dir(), "{text}");
    assert!(!std::path::Path::new("/nonexistent/hermes-home").exists());
    let c = client();
    let login = |user: &str| {
        let c = c.clone();
        let (url, body) = (
            format!("{base}/auth/login"),
            json!({"username": user, "password": password}),
        );
        async move {
            let r = send(c.post(url).json(&body)).await;
            assert_eq!(r.status, 200, "{}", r.body);
            r.json()["access_token"].as_str().unwrap().to_string()
        }
    };
    let admin = login("ada").await;
    let auditor = login("otto").await;
    for u in ["uma", "ulf", "vic"] {
        login(u).await;
    }
    let get = |path: &str, tok: &str| send(c.get(format!("{base}{path}")).bearer_auth(tok));
    let me = get("/api/me", &admin).await.json();
    assert_eq!(me["demo"], true, "{me}");
    assert!(me["notice"].is_null(), "state.db exists: {me}");
    let sessions = get("/api/sessions?limit=200", &auditor).await.json();
    assert!(sessions.as_array().unwrap().len() >= 14, "{sessions}");
    let users = get("/api/users", &admin).await.json();
    assert_eq!(users.as_array().unwrap().len(), 5);
    let hits = get("/api/search?q=nginx", &auditor).await.json();
    assert!(!hits["hits"].as_array().unwrap().is_empty(), "{hits}");
    let r = get(&format!("/api/audit/replay/{replay}"), &auditor)
        .await
        .json();
    assert_eq!(r["integrity"], "ok", "{r}");
    let types: Vec<&str> = r["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    for t in [
        "session_start",
        "user_message",
        "approval_request",
        "approval",
        "tool_call",
        "tool_result",
        "assistant_message",
        "llm_call",
    ] {
        assert!(types.contains(&t), "{t} in {types:?}");
    }
    let v = get("/api/audit/verify", &auditor).await.json();
    assert_eq!(v["ok"], true, "{v}");
    // A week of usage: some day before today has tokens and cost.
    let mut busy_days = 0;
    for d in 1..=7 {
        let date = (chrono::Utc::now() - chrono::Duration::days(d))
            .format("%Y-%m-%d")
            .to_string();
        let day = get(
            &format!("/api/audit/daily-summary?date={date}&tz=UTC"),
            &auditor,
        )
        .await
        .json();
        if day["totals"]["input_tokens"].as_i64().unwrap_or(0) > 0 {
            busy_days += 1;
        }
    }
    assert!(busy_days >= 5, "{busy_days}");
    let _: Value = get("/healthz", &admin).await.json();

    // The event-log browser over the week: filters and pages.
    let ev = get("/api/audit/events?type=approval", &auditor)
        .await
        .json();
    assert!(ev["total"].as_i64().unwrap() >= 1, "{ev}");
    assert!(
        ev["events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["type"] == "approval"),
        "{ev}"
    );
    let ev = get("/api/audit/events?user=uma&limit=5", &auditor)
        .await
        .json();
    assert_eq!(ev["events"].as_array().unwrap().len(), 5, "{ev}");
    assert!(ev["total"].as_i64().unwrap() > 5);
    assert!(
        ev["events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| ev["usernames"][e["user_id"].as_str().unwrap()] == "uma"),
        "{ev}"
    );
    let page2 = get("/api/audit/events?user=uma&limit=5&offset=5", &auditor)
        .await
        .json();
    assert!(
        page2["events"][0]["seq"].as_i64() < ev["events"][4]["seq"].as_i64(),
        "newest first, paged"
    );
    let r = get("/api/audit/events?type=no_such_type", &auditor).await;
    assert_eq!(r.status, 400, "{}", r.body);
    // What a live view asks: only events after a seq, the filters still on;
    // total counts only those.
    let cut = ev["events"][2]["seq"].as_i64().unwrap();
    let newer = get(&format!("/api/audit/events?user=uma&after={cut}"), &auditor)
        .await
        .json();
    assert_eq!(newer["total"], 2, "{newer}");
    let seqs: Vec<i64> = newer["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(
        seqs,
        [
            ev["events"][0]["seq"].as_i64().unwrap(),
            ev["events"][1]["seq"].as_i64().unwrap()
        ],
        "{newer}"
    );
    let head = ev["events"][0]["seq"].as_i64().unwrap();
    let none = get(
        &format!("/api/audit/events?user=uma&after={head}"),
        &auditor,
    )
    .await
    .json();
    assert_eq!(none["total"], 0, "{none}");
    for bad in ["-1", "x", "1.5"] {
        let r = get(&format!("/api/audit/events?after={bad}"), &auditor).await;
        assert_eq!(r.status, 400, "after={bad}: {}", r.body);
        assert!(r.body.contains("after"), "after={bad}: {}", r.body);
    }
    // Export, rename and end, with their owners' rights.
    let owner = r_json(&get(&format!("/api/sessions/{replay}"), &admin).await.body)["username"]
        .as_str()
        .unwrap()
        .to_string();
    let owner_tok = login(&owner).await;
    let r = get(
        &format!("/api/sessions/{replay}/export?format=md"),
        &owner_tok,
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("text/markdown"));
    assert!(r
        .header("content-disposition")
        .unwrap()
        .contains(&format!("{replay}.md")));
    assert!(r.body.contains("rm -rf /tmp/build-cache"), "{}", r.body);
    let other = if owner == "uma" { "ulf" } else { "uma" };
    let other_tok = login(other).await;
    let patch = |tok: String, title: &str| {
        send(
            c.patch(format!("{base}/api/sessions/{replay}"))
                .bearer_auth(tok)
                .json(&json!({"title": title})),
        )
    };
    assert_eq!(patch(other_tok.clone(), "not mine").await.status, 404);
    let r = patch(owner_tok.clone(), "Build cache, cleared").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["to"], "Build cache, cleared");
    let r = send(
        c.post(format!("{base}/api/sessions/{replay}/end"))
            .bearer_auth(&admin)
            .json(&json!({"reason": "demo over"})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);

    // SIGTERM: it stops and removes its home.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let mut status = None;
    for _ in 0..100 {
        if let Some(s) = child.try_wait().unwrap() {
            status = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let status = status.expect("demo stopped within 10 s of SIGTERM");
    assert!(status.success(), "{status}");
    assert!(!home.exists(), "the demo home is gone: {}", home.display());
}

/// A `demo` process whose temp dir is `tmp` (so its home, and what the
/// reaper sees, are this test's alone), with its stderr lines.
struct Demo {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Demo {
    fn start(tmp: &std::path::Path, args: &[&str]) -> Demo {
        let mut child = Command::new(env!("CARGO_BIN_EXE_hermes-operator"))
            .arg("demo")
            .args(args)
            .env("TMPDIR", tmp)
            .env("HERMES_HOME", "/nonexistent/hermes-home")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = std::sync::mpsc::channel::<String>();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Demo {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Wait for a stderr line starting with `prefix`; the rest of it.
    fn wait_line(&mut self, prefix: &str) -> String {
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|_| panic!("no {prefix:?} line from demo: {:?}", self.seen));
            self.seen.push(line.clone());
            if let Some(rest) = line.strip_prefix(prefix) {
                return rest.to_string();
            }
        }
    }

    /// Started and serving: its home.
    fn serving(&mut self) -> std::path::PathBuf {
        let home = self.wait_line("hermes-operator demo: sample data in ");
        let home = std::path::PathBuf::from(home.split(' ').next().unwrap());
        self.wait_line("hermes-operator serve: listening on ");
        assert!(home.is_dir(), "{}", home.display());
        home
    }

    fn signal(&self, sig: libc::c_int) {
        // SAFETY: kill(2) on our own child's pid.
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, sig) }, 0);
    }

    /// Its exit status, within 20 s; the rest of its stderr read.
    fn exit(&mut self) -> std::process::ExitStatus {
        for _ in 0..200 {
            if let Some(s) = self.child.try_wait().unwrap() {
                while let Ok(l) = self.lines.recv_timeout(Duration::from_secs(2)) {
                    self.seen.push(l);
                }
                return s;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        panic!("demo did not exit within 20 s: {:?}", self.seen);
    }
}

fn entries(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn demo_leaves_nothing_behind_on_each_signal() {
    for (sig, name) in [
        (libc::SIGHUP, "SIGHUP"),
        (libc::SIGQUIT, "SIGQUIT"),
        (libc::SIGTERM, "SIGTERM"),
        (libc::SIGINT, "SIGINT"),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let mut d = Demo::start(tmp.path(), &["--bind", "127.0.0.1:0"]);
        let home = d.serving();
        d.signal(sig);
        let status = d.exit();
        assert!(status.success(), "{name}: {status}: {:?}", d.seen);
        assert!(!home.exists(), "{name}: {} is left", home.display());
        assert_eq!(entries(tmp.path()), Vec::<String>::new(), "{name}");
        // On loopback: no warning.
        assert!(
            !d.seen
                .iter()
                .any(|l| l.starts_with("warning: demo listens")),
            "{:?}",
            d.seen
        );
    }
}

#[test]
fn demo_stopped_while_preparing_leaves_nothing() {
    // The signal comes while the sample data is still being written, before
    // the server (and its own signal handling) exists.
    let tmp = tempfile::tempdir().unwrap();
    let mut d = Demo::start(tmp.path(), &["--bind", "127.0.0.1:0"]);
    let mut appeared = false;
    for _ in 0..2000 {
        if entries(tmp.path())
            .iter()
            .any(|n| n.starts_with("hermes-operator-demo-"))
        {
            appeared = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(
        appeared,
        "no demo home appeared in {}",
        tmp.path().display()
    );
    d.signal(libc::SIGTERM);
    let status = d.exit();
    assert!(status.success(), "{status}: {:?}", d.seen);
    assert_eq!(entries(tmp.path()), Vec::<String>::new(), "{:?}", d.seen);
}

#[test]
fn a_demo_killed_with_sigkill_is_removed_by_the_next_demo() {
    let tmp = tempfile::tempdir().unwrap();
    let mut killed = Demo::start(tmp.path(), &["--bind", "127.0.0.1:0"]);
    let old = killed.serving();
    killed.signal(libc::SIGKILL);
    killed.exit();
    // Nothing can run on SIGKILL: the home is still there...
    assert!(old.is_dir());
    // ...until the next demo starts.
    let mut next = Demo::start(tmp.path(), &["--bind", "127.0.0.1:0"]);
    let new = next.serving();
    assert!(!old.exists(), "{} survived the next demo", old.display());
    assert!(
        next.seen.iter().any(|l| l.contains(&format!(
            "removed {}, left by a demo that was killed",
            old.display()
        ))),
        "{:?}",
        next.seen
    );
    next.signal(libc::SIGTERM);
    assert!(next.exit().success());
    assert!(!new.exists());
    assert_eq!(entries(tmp.path()), Vec::<String>::new());
}

#[test]
fn demo_keep_survives_its_end_and_the_reaper() {
    let tmp = tempfile::tempdir().unwrap();
    let mut kept = Demo::start(tmp.path(), &["--bind", "127.0.0.1:0", "--keep"]);
    let home = kept.serving();
    kept.signal(libc::SIGTERM);
    assert!(kept.exit().success());
    assert!(home.join("plugins/operator/events.db").is_file());
    assert!(
        kept.seen
            .iter()
            .any(|l| l == &format!("hermes-operator demo: kept {}", home.display())),
        "{:?}",
        kept.seen
    );
    // Its process is gone, but it was kept on purpose: the reaper leaves it.
    let mut next = Demo::start(tmp.path(), &["--bind", "127.0.0.1:0"]);
    next.serving();
    next.signal(libc::SIGTERM);
    assert!(next.exit().success());
    assert!(home.join("plugins/operator/events.db").is_file());
    let name = home.file_name().unwrap().to_string_lossy().into_owned();
    assert_eq!(entries(tmp.path()), vec![name]);
}

#[test]
fn demo_warns_when_reachable_from_other_hosts() {
    let tmp = tempfile::tempdir().unwrap();
    let mut d = Demo::start(tmp.path(), &["--bind", "0.0.0.0:0"]);
    d.serving();
    let warning = d.wait_line("warning: demo listens on 0.0.0.0:");
    assert!(warning.contains("reachable from other hosts"), "{warning}");
    d.signal(libc::SIGTERM);
    assert!(d.exit().success());
    assert_eq!(entries(tmp.path()), Vec::<String>::new());
}
