//! `serve` with `store.url` set ships this host's events to the fleet's
//! PostgreSQL as they are appended (issue 20): every event, in order, once,
//! also across PostgreSQL going away and coming back while events are
//! written; `serve` itself keeps answering meanwhile.

use crate::common::pg::PgCluster;
use crate::common::serve::{configure, Server};
use crate::common::{add_user, TestHome};
use hermes_operator::ops::audit::fleet::verify_fleet;
use hermes_operator::store::events::EventStore;
use hermes_operator::store::pg::{Pg, PgEventLog};
use std::time::{Duration, Instant};

/// Appends one event to this host's events.db directly.
fn append_local(home: &std::path::Path, note: &str) {
    use hermes_operator::store::events::{Actor, EventKind, NewEvent};
    EventStore::open(&home.join("plugins/operator/events.db"))
        .unwrap()
        .append(NewEvent::new(
            EventKind::UserMessage,
            &Actor::new("test:fleet".to_string()),
            serde_json::json!({ "content": note }),
        ))
        .unwrap();
}

fn local_head(home: &std::path::Path) -> (i64, [u8; 32]) {
    EventStore::open_readonly(&home.join("plugins/operator/events.db"))
        .unwrap()
        .head()
        .unwrap()
}

/// Polls until PostgreSQL has this host's chain up to events.db's head.
fn wait_shipped(db: &Pg, home: &std::path::Path, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let want = local_head(home);
        let heads = PgEventLog::heads(db).unwrap_or_default();
        if heads
            .iter()
            .any(|h| h.host == "web-9" && (h.seq, h.hash) == want)
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not shipped within 30 s (want seq {}, have {heads:?})",
            want.0
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn serve_ships_this_hosts_events_to_the_fleet_database() {
    let pg = PgCluster::start();
    let url = pg.database("ship");
    let (bare, pw) = pg.apart(&url);
    let home = TestHome::new();
    let h = home.path();
    configure(h, &format!("store:\n  url: {bare}\n  host: web-9\n"));
    crate::common::pg::store_password(h, &pw);
    add_user(h, "alice", "user");
    add_user(h, "bob", "user");
    let server = Server::start(h);
    let db = Pg::connect(&url).unwrap();
    wait_shipped(&db, h, "the events from before serve started");
    add_user(h, "carol", "user");
    wait_shipped(&db, h, "a new event");

    // PostgreSQL away while events are written: serve keeps answering (503
    // where the accounts are needed), says so once, and ships them all when
    // it is back.
    // (Accounts live in PostgreSQL too now, so `user add` would fail:
    // events are appended to events.db as any local writer does.)
    pg.stop("immediate");
    append_local(h, "written while PostgreSQL is away (1)");
    append_local(h, "written while PostgreSQL is away (2)");
    let warned = server.log_with("cannot ship events to the fleet's database");
    assert!(warned.contains("cannot ship events"), "{warned}");
    assert!(!warned.contains(&pw), "the password in the log");
    let health = crate::common::block_on(crate::common::serve::send(
        crate::common::serve::client().get(server.url("/healthz")),
    ));
    // The accounts live there too: serve says it is down, and why.
    assert_eq!(health.status, 503, "{}", health.body);
    assert_eq!(
        health.json()["databases"]["fleet"],
        "unavailable",
        "{}",
        health.body
    );
    assert!(
        health.body.contains("the fleet's database"),
        "{}",
        health.body
    );
    pg.restart();
    let db = Pg::connect(&url).unwrap();
    wait_shipped(&db, h, "the events written while PostgreSQL was away");
    assert!(server
        .log_with("shipping events to the fleet's database again")
        .contains("again"));

    // Every event once, in order: the chain there verifies and has events.db's count.
    let local = EventStore::open_readonly(&h.join("plugins/operator/events.db")).unwrap();
    let reports = verify_fleet(&std::sync::Arc::new(db), Some("web-9"), &[], &[]).unwrap();
    assert_eq!(reports.len(), 1);
    assert!(reports[0].report.ok, "{:?}", reports[0].report);
    assert_eq!(reports[0].report.events as i64, local.count().unwrap());
}

/// A home full of operator sessions (demo's sample data) that ships to
/// `url` as `host`.
fn fleet_home(bare: &str, pw: &str, host: &str) -> (TestHome, String) {
    use hermes_operator::app::App;
    use hermes_operator::home::Home;
    use hermes_operator::store::events::Actor;
    let home = TestHome::new();
    let h = home.path();
    configure(h, &format!("store:\n  url: {bare}\n  host: {host}\n"));
    crate::common::pg::store_password(h, pw);
    let app = App::load(Home::at(h), Actor::new("test:fleet"), |_| {}).unwrap();
    let demo = hermes_operator::ops::demo::populate(&app).unwrap();
    (home, demo.password)
}

/// `session list --all-hosts` on any host lists every host's operator
/// sessions (what each `serve` published), with the host, as each host's
/// own `session list` shows them.
#[test]
fn session_list_all_hosts_shows_every_hosts_sessions() {
    let pg = PgCluster::start();
    let url = pg.database("sessions");
    let (bare, pw) = pg.apart(&url);
    let ((a, password), (b, _)) = (
        fleet_home(&bare, &pw, "web-1"),
        fleet_home(&bare, &pw, "web-2"),
    );
    let list = |home: &TestHome, args: &[&str]| -> Vec<serde_json::Value> {
        let o = crate::common::op(home.path())
            .args(["--json", "session", "list", "--limit", "1000"])
            .args(args)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice::<serde_json::Value>(&o.stdout)
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    };
    let (own_a, own_b) = (list(&a, &[]), list(&b, &[]));
    assert!(!own_a.is_empty() && !own_b.is_empty());
    let sa = Server::start(a.path());
    let _sb = Server::start(b.path());
    let deadline = Instant::now() + Duration::from_secs(30);
    let all = loop {
        let all = list(&a, &["--all-hosts"]);
        if all.len() == own_a.len() + own_b.len() {
            break all;
        }
        assert!(
            Instant::now() < deadline,
            "published: {} of {}",
            all.len(),
            own_a.len() + own_b.len()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    for (host, own) in [("web-1", &own_a), ("web-2", &own_b)] {
        for s in own.iter() {
            let found = all
                .iter()
                .find(|r| r["host"] == host && r["id"] == s["id"])
                .unwrap_or_else(|| panic!("{host} {} missing", s["id"]));
            for k in [
                "username",
                "display_title",
                "message_count",
                "started_at",
                "ended_at",
            ] {
                assert_eq!(found[k], s[k], "{host} {} {k}", s["id"]);
            }
        }
    }
    // The same from the other host, and one user's across hosts.
    assert_eq!(list(&b, &["--all-hosts"]).len(), all.len());
    let user = own_a[0]["username"].as_str().unwrap().to_string();
    let mine = list(&b, &["--all-hosts", "--user", &user]);
    assert!(!mine.is_empty() && mine.iter().all(|r| r["username"] == user.as_str()));
    let hosts: std::collections::BTreeSet<_> =
        mine.iter().map(|r| r["host"].as_str().unwrap()).collect();
    assert_eq!(hosts.len(), 2, "demo's users have sessions on both hosts");

    fleet_reports_add_up(&a, &b, &url);

    // The dashboard: an admin ticks "All hosts" and sees both hosts'
    // sessions; only this host's open here. A user's list across hosts is
    // their own; naming another user is refused.
    dashboard_lists_every_host(&sa, &password, all.len());
    let c = crate::common::serve::client();
    crate::common::block_on(async {
        use crate::common::serve::send;
        let login = |user: &'static str| {
            let c = c.clone();
            let (url, password) = (sa.url("/auth/login"), password.clone());
            async move {
                let r = send(
                    c.post(url)
                        .json(&serde_json::json!({"username": user, "password": password})),
                )
                .await;
                assert_eq!(r.status, 200, "{}", r.body);
                r.json()["access_token"].as_str().unwrap().to_string()
            }
        };
        let uma = login("uma").await;
        let r = send(
            c.get(sa.url("/api/sessions?all_hosts=true&limit=500"))
                .bearer_auth(&uma),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.body);
        let rows = r.json();
        let rows = rows.as_array().unwrap();
        assert!(
            !rows.is_empty() && rows.iter().all(|s| s["username"] == "uma"),
            "{rows:?}"
        );
        let r = send(
            c.get(sa.url("/api/sessions?all_hosts=true&user=ada"))
                .bearer_auth(&uma),
        )
        .await;
        assert_eq!(r.status, 403, "{}", r.body);
    });
}

fn dashboard_lists_every_host(server: &Server, password: &str, total: usize) {
    use crate::dashboard::{chromium_path, Browser};
    let artifacts = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("test-artifacts/fleet");
    std::fs::create_dir_all(&artifacts).unwrap();
    let mut b = Browser::launch(&chromium_path(), &artifacts);
    b.open(&format!("{}/", server.base));
    b.log_in("ada", password);
    b.wait(
        "ada's dashboard",
        "document.querySelector('#whoami')?.textContent === 'ada'",
    );
    b.eval("location.hash = '#/sessions'");
    b.wait(
        "the session list",
        "document.querySelector('#view-sessions')?.dataset.loaded === 'yes' && !!document.querySelector('#session-all-hosts')",
    );
    b.click("#session-all-hosts");
    b.wait(
        "the box ticked",
        "document.querySelector('#session-all-hosts')?.checked",
    );
    // Page after page until every published session is there.
    let counted = b.wait_for(
        "both hosts' sessions",
        &format!(
            "(() => {{ const more = document.querySelector('#session-list button.more'); if (more) more.click(); \
             const rows = [...document.querySelectorAll('#session-list tbody tr')]; \
             return rows.length === {total} && rows.some(r => r.dataset.host === 'web-2') && rows.length; }})()"
        ),
        Duration::from_secs(30),
    );
    assert_eq!(counted.as_u64(), Some(total as u64));
    let split = b.eval(
        "(() => { const rows = [...document.querySelectorAll('#session-list tbody tr')]; \
         const linked = (r) => !!r.querySelector('td:nth-child(2) a'); \
         return { here: rows.filter(r => r.dataset.host === 'web-1').every(linked), \
                  there: rows.filter(r => r.dataset.host === 'web-2').some(linked), \
                  header: document.querySelector('#session-list th')?.textContent }; })()",
    );
    assert_eq!(split["here"], true, "{split}");
    assert_eq!(split["there"], false, "{split}");
    assert!(
        split["header"].as_str().unwrap().starts_with("Host"),
        "{split}"
    );
    b.screenshot("all-hosts");
    // What a person sees: on a phone and in dark mode too, no cut-off
    // column, no null/undefined/NaN text.
    for (w, h, dark) in [(390, 844, false), (1280, 900, true)] {
        b.set_view(w, h, dark);
        let problems = b.eval(crate::dashboard::LAYOUT_PROBLEMS);
        b.screenshot(&format!(
            "all-hosts-{w}-{}",
            if dark { "dark" } else { "light" }
        ));
        assert_eq!(
            problems,
            serde_json::json!([]),
            "all hosts at {w}px (dark {dark})"
        );
    }
    b.set_view(1280, 900, false);
    // An auditor replays another host's session from the fleet's log.
    b.click("#session-list tbody tr[data-host='web-2'] a.replay-link");
    let replay = b.wait(
        "the other host's replay",
        "document.querySelector('#replay-host')?.textContent.includes('web-2') \
         && document.querySelector('#replay-integrity')?.dataset.integrity === 'ok' \
         && document.querySelectorAll('#timeline li').length",
    );
    assert!(replay.as_u64().unwrap() > 0, "{replay}");
    b.screenshot("replay-other-host");
}

/// `audit daily --fleet` is every host's own `audit daily` added up (each
/// day of demo's week, in two time zones), `--host` one host's; `audit
/// user --fleet` has a user's sessions and events of both hosts.
fn fleet_reports_add_up(a: &TestHome, b: &TestHome, url: &str) {
    let json = |home: &TestHome, args: &[&str]| -> serde_json::Value {
        let o = crate::common::op(home.path())
            .arg("--json")
            .args(args)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        serde_json::from_slice(&o.stdout).unwrap()
    };
    // Every event shipped first (the llm_call events the report counts).
    let db = Pg::connect(url).unwrap();
    for (home, host) in [(a, "web-1"), (b, "web-2")] {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !PgEventLog::heads(&db)
            .unwrap_or_default()
            .iter()
            .any(|h| h.host == host && (h.seq, h.hash) == local_head(home.path()))
        {
            assert!(Instant::now() < deadline, "{host} never shipped whole");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let keys = [
        "sessions",
        "messages",
        "llm_calls",
        "input_tokens",
        "output_tokens",
    ];
    let mut nonzero = 0;
    for days_ago in 0..8 {
        let day = (chrono::Utc::now() - chrono::Duration::days(days_ago))
            .format("%Y-%m-%d")
            .to_string();
        for tz in ["UTC", "Asia/Kolkata"] {
            let args = ["audit", "daily", "--date", day.as_str(), "--tz", tz];
            let (ra, rb) = (json(a, &args), json(b, &args));
            let fleet = json(b, &[&args[..], &["--fleet"]].concat());
            let one = json(b, &[&args[..], &["--fleet", "--host", "web-1"]].concat());
            for k in keys {
                let sum = ra["totals"][k].as_i64().unwrap() + rb["totals"][k].as_i64().unwrap();
                assert_eq!(fleet["totals"][k].as_i64().unwrap(), sum, "{day} {tz} {k}");
                assert_eq!(one["totals"][k], ra["totals"][k], "{day} {tz} {k} web-1");
                nonzero += sum;
            }
            let cost = ra["totals"]["cost_usd"].as_f64().unwrap()
                + rb["totals"]["cost_usd"].as_f64().unwrap();
            assert!((fleet["totals"]["cost_usd"].as_f64().unwrap() - cost).abs() < 1e-9);
        }
    }
    assert!(nonzero > 0, "the demo's week reported nothing");
    let (ua, ub) = (
        json(a, &["audit", "user", "uma"]),
        json(b, &["audit", "user", "uma"]),
    );
    let fleet = json(a, &["audit", "user", "uma", "--fleet"]);
    assert_eq!(
        fleet["sessions"]["count"].as_i64().unwrap(),
        ua["sessions"]["count"].as_i64().unwrap() + ub["sessions"]["count"].as_i64().unwrap()
    );
    let hosts: std::collections::BTreeSet<&str> = fleet["recent_events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["host"].as_str().unwrap())
        .collect();
    assert_eq!(hosts.len(), 2, "{hosts:?}");
    let only = json(a, &["audit", "user", "uma", "--fleet", "--host", "web-2"]);
    assert_eq!(only["sessions"]["count"], ub["sessions"]["count"]);
}
