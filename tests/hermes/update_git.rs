//! `update` on a real git install of Hermes, as its official installer lays
//! it out (`tests/fixtures/git_install.py`): a shallow clone of `main` at
//! `$HERMES_HOME/hermes-agent` whose "GitHub" is a local bare repository
//! one commit ahead (0.18.2 → 0.19.0), `venv/` with an editable install,
//! and the installer's launcher script first on PATH. Offline: the
//! fixture's wheelhouse serves pip, proxies point at a closed port.
//!
//! No `update.hermes_command`: Hermes is found through the launcher.
//! `hermes update` stops Hermes gateways machine-wide, so no test in this
//! binary keeps a gateway up.

use crate::common;
use crate::common::show;

use common::{op, Gen};
use serde_json::Value;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const OLD: &str = "0.18.2";
const NEW: &str = "0.19.0";

fn fixture_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/git_install.py")
}

/// A git install of 0.18.2 in `root` (the fixture's JSON report).
fn git_install(root: &Path) -> Value {
    let t = Instant::now();
    let out = Command::new("python3")
        .arg(fixture_script())
        .args(["install", "--root"])
        .arg(root)
        .stdin(Stdio::null())
        .output()
        .expect("run tests/fixtures/git_install.py (needs python3)");
    assert!(
        out.status.success(),
        "git_install.py install failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("git install built in {:.1}s", t.elapsed().as_secs_f64());
    serde_json::from_slice(&out.stdout).expect("fixture JSON")
}

fn local_change(root: &Path, kind: &str) -> Value {
    let out = Command::new("python3")
        .arg(fixture_script())
        .args(["local-change", "--root"])
        .arg(root)
        .args(["--kind", kind])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

struct Setup {
    _root: tempfile::TempDir,
    root: PathBuf,
    home: PathBuf,
    checkout: PathBuf,
    fx: Value,
    xdg: PathBuf,
}

/// The git install, a state.db, the operator installed (admin alice) with
/// a restart command that must not run (`--no-restart` everywhere).
fn setup() -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("gi");
    let fx = git_install(&root);
    let home = PathBuf::from(fx["hermes_home"].as_str().expect("hermes_home"));
    let checkout = PathBuf::from(fx["checkout"].as_str().expect("checkout"));
    let made = common::fixture(
        Gen::H019,
        &[
            "make",
            "--db",
            &home.join("state.db").to_string_lossy(),
            "--native",
            "2",
            "--operator",
            "1",
            "--users",
            "alice",
        ],
    );
    assert!(made["sessions"].as_u64().unwrap() >= 3, "{made}");
    let xdg = tmp.path().join("xdg");
    common::install_operator(&home, &xdg);
    let cfg = home.join("profiles/operator/config.yaml");
    let text = fs::read_to_string(&cfg).unwrap().replace(
        "  restart_command: \"systemctl --user restart hermes-operator\"\n",
        "  restart_command: \"/bin/false\"\n",
    );
    assert!(
        !text.contains("\n  hermes_command:"),
        "found via the launcher only"
    );
    fs::write(&cfg, text).unwrap();
    Setup {
        root: root.clone(),
        _root: tmp,
        home,
        checkout,
        fx,
        xdg,
    }
}

/// `hermes-operator --json <args>` with the fixture's environment: the
/// launcher first on PATH, offline pip, closed proxies, HOME inside the
/// fixture (so no ~/.local/bin/hermes of this machine is found), stdin closed.
fn opcmd(s: &Setup, args: &[&str]) -> Command {
    let mut c = op(&s.home);
    c.arg("--json").args(args);
    if let Some(env) = s.fx["env"].as_object() {
        for (k, v) in env {
            c.env(k, v.as_str().unwrap());
        }
    }
    c.env("HOME", s.root.join("home"))
        .env("XDG_CONFIG_HOME", &s.xdg)
        .stdin(Stdio::null());
    c
}

fn run(s: &Setup, args: &[&str]) -> Output {
    opcmd(s, args).output().unwrap()
}

fn json_of(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}\n{}", show(o)))
}

fn head(checkout: &Path) -> String {
    let o = Command::new("git")
        .arg("-C")
        .arg(checkout)
        .args(["rev-parse", "HEAD"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn events(home: &Path, kind: &str) -> Vec<Value> {
    let c = common::open_ro(&home.join("plugins/operator/events.db"));
    let mut st = c
        .prepare("SELECT data FROM events WHERE type = ?1 ORDER BY seq")
        .unwrap();
    st.query_map([kind], |r| r.get::<_, String>(0))
        .unwrap()
        .map(|d| serde_json::from_str(&d.unwrap()).unwrap())
        .collect()
}

fn operator_files(home: &Path) -> Vec<(String, Vec<u8>)> {
    ["profiles/operator/config.yaml", "plugins/operator/users.db"]
        .iter()
        .map(|f| (f.to_string(), fs::read(home.join(f)).unwrap()))
        .collect()
}

fn audit_ok(s: &Setup) {
    let o = run(s, &["audit", "verify"]);
    assert!(o.status.success(), "audit verify: {}", show(&o));
}

fn usernames(s: &Setup) -> Vec<String> {
    let v = json_of(&run(s, &["user", "list"]));
    let list = v
        .as_array()
        .or_else(|| v["users"].as_array())
        .unwrap()
        .clone();
    list.iter()
        .map(|u| u["username"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn git_install_updates_keeps_local_changes_then_up_to_date() {
    let t0 = Instant::now();
    let s = setup();
    let c18 = s.fx["commits"][OLD].as_str().unwrap().to_string();
    let c19 = s.fx["commits"][NEW].as_str().unwrap().to_string();
    assert_eq!(head(&s.checkout), c18);
    let change = local_change(&s.root, "clean");

    // doctor finds Hermes through the launcher and names the version.
    let o = run(&s, &["doctor"]);
    let d = json_of(&o);
    let hi = d["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "hermes_install")
        .unwrap_or_else(|| panic!("{d:#}"))
        .clone();
    assert_eq!(hi["status"], "pass", "{hi:#}");
    let msg = hi["message"]
        .as_str()
        .unwrap_or_else(|| hi["detail"].as_str().unwrap());
    assert!(msg.contains(OLD), "{hi:#}");

    // --check: 1 commit behind, 0.19.0 at the remote head.
    let o = run(&s, &["update", "--check"]);
    let v = json_of(&o);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(v["installed"]["version"], OLD, "{v:#}");
    assert_eq!(v["installed"]["method"], "git", "{v:#}");
    assert_eq!(v["update_available"], true, "{v:#}");
    assert_eq!(v["commits_behind"], 1, "{v:#}");
    assert_eq!(v["latest"], NEW, "{v:#}");
    assert_eq!(v["remote"]["head"], c19.as_str(), "{v:#}");
    assert!(v["source"].as_str().unwrap().contains("git"), "{v:#}");
    assert_eq!(head(&s.checkout), c18, "--check leaves the checkout alone");

    // --dry-run: the git plan, nothing changed.
    let before_files = operator_files(&s.home);
    let o = run(&s, &["update", "--dry-run"]);
    let v = json_of(&o);
    assert!(o.status.success(), "{}", show(&o));
    assert_eq!(v["plan"]["install_kind"], "git", "{v:#}");
    assert_eq!(v["plan"]["commits_behind"], 1, "{v:#}");
    assert_eq!(v["plan"]["branch"], "main", "{v:#}");
    let dirty = v["plan"]["local_changes"].as_array().unwrap();
    assert_eq!(dirty.len(), 2, "{v:#}");
    assert_eq!(operator_files(&s.home), before_files);

    // The update, with a second run started while the first holds the lock.
    let log = s.home.join("profiles/operator/logs/update.log");
    let mut first = opcmd(&s, &["update", "--yes", "--no-restart"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let end = Instant::now() + Duration::from_secs(120);
    while !fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("update --yes ---")
    {
        assert!(
            Instant::now() < end,
            "first update never reached `hermes update`"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let busy = run(&s, &["update", "--yes", "--no-restart"]);
    assert_eq!(busy.status.code(), Some(6), "{}", show(&busy));
    // At once: refused while the first still holds the lock, not after
    // waiting for it (no clock involved).
    assert!(
        first.try_wait().unwrap().is_none(),
        "busy must fail while the first update still runs"
    );
    let out = first.wait_with_output().unwrap();
    let r = json_of(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{r:#}\n{}",
        fs::read_to_string(&log).unwrap()
    );
    assert_eq!(r["result"], "updated", "{r:#}");
    assert_eq!(r["install_kind"], "git");
    assert_eq!(r["version_before"]["version"], OLD);
    assert_eq!(r["version_after"]["version"], NEW);
    assert_eq!(r["version_before"]["revision"], c18.as_str());
    assert_eq!(r["version_after"]["revision"], c19.as_str());
    assert_eq!(r["local_changes"]["kept"], true, "{r:#}");
    assert_eq!(r["restart"]["ran"], false);
    assert_eq!(head(&s.checkout), c19, "HEAD is the v0.19.0 commit");
    // Both local changes remain.
    for f in change["edited"].as_array().unwrap() {
        let f = f.as_str().unwrap();
        let want = change["contents"][f].as_str().unwrap();
        assert_eq!(fs::read_to_string(s.checkout.join(f)).unwrap(), want, "{f}");
    }
    for f in change["untracked"].as_array().unwrap() {
        assert!(s.checkout.join(f.as_str().unwrap()).exists(), "{f}");
    }
    // The operator's data.
    assert_eq!(usernames(&s), ["alice"]);
    audit_ok(&s);
    assert_eq!(
        fs::read(s.home.join("profiles/operator/config.yaml")).unwrap(),
        before_files[0].1
    );
    let fin = events(&s.home, "update_finished");
    let ok: Vec<&Value> = fin.iter().filter(|f| f["result"] == "updated").collect();
    assert_eq!(ok.len(), 1, "{fin:#?}");
    assert_eq!(ok[0]["version_before"], OLD);
    assert_eq!(ok[0]["version_after"], NEW);
    assert_eq!(ok[0]["revision_before"], c18.as_str());
    assert_eq!(ok[0]["revision_after"], c19.as_str());
    assert_eq!(ok[0]["install_kind"], "git");
    assert_eq!(ok[0]["branch"], "main");
    assert_eq!(ok[0]["commits_behind"], 1);
    assert_eq!(ok[0]["local_changes_kept"], true);
    let busy_fin: Vec<&Value> = fin.iter().filter(|f| f["exit_code"] == 6).collect();
    assert_eq!(busy_fin.len(), 1, "the busy run is audited: {fin:#?}");

    // A second run: up to date.
    let o = run(&s, &["update", "--yes", "--no-restart"]);
    let r = json_of(&o);
    assert_eq!(o.status.code(), Some(0), "{r:#}");
    assert_eq!(r["result"], "up_to_date", "{r:#}");
    assert_eq!(r["availability"]["commits_behind"], 0, "{r:#}");
    assert_eq!(head(&s.checkout), c19);
    eprintln!("git update test: {:.1}s", t0.elapsed().as_secs_f64());
}

#[test]
fn git_install_conflicting_change_names_hermes_stash() {
    let s = setup();
    let change = local_change(&s.root, "conflict");
    let before_files = operator_files(&s.home);
    let o = run(&s, &["update", "--yes", "--no-restart"]);
    let r = json_of(&o);
    assert_ne!(o.status.code(), Some(0), "{r:#}");
    let lc = &r["local_changes"];
    assert_eq!(lc["kept"], false, "{r:#}");
    let stash = lc["stash"]
        .as_str()
        .unwrap_or_else(|| panic!("no stash named: {r:#}"));
    assert!(stash.starts_with("stash@{0}"), "{stash}");
    let reason = r["reason"].as_str().unwrap();
    assert!(reason.contains("stash"), "{reason}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("stash@{0}"),
        "the error names the stash: {err}"
    );
    // The stash really holds the change.
    let edited = change["edited"][0].as_str().unwrap();
    let sh = Command::new("git")
        .arg("-C")
        .arg(&s.checkout)
        .args(["stash", "show", "--name-only", "stash@{0}"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&sh.stdout).contains(edited),
        "{}",
        String::from_utf8_lossy(&sh.stdout)
    );
    assert_eq!(operator_files(&s.home)[0], before_files[0]);
    assert_eq!(usernames(&s), ["alice"]);
    audit_ok(&s);
    let fin = events(&s.home, "update_finished");
    assert_eq!(fin.len(), 1);
    assert_eq!(fin[0]["stash"], stash);
    assert_eq!(fin[0]["local_changes_kept"], false);
}

#[test]
fn git_install_remote_unreachable_or_hermes_missing_fails_audited() {
    let s = setup();
    let c18 = s.fx["commits"][OLD].as_str().unwrap().to_string();
    let remote = PathBuf::from(s.fx["remote"].as_str().unwrap());

    // A release channel asked of a Hermes that has none (0.22+ does): failed, audited.
    let cfg = s.home.join("profiles/operator/config.yaml");
    let text = fs::read_to_string(&cfg).unwrap();
    fs::write(
        &cfg,
        text.replace("update:\n", "update:\n  channel: stable\n"),
    )
    .unwrap();
    let o = run(&s, &["update", "--yes", "--no-restart"]);
    let r = json_of(&o);
    assert_eq!(o.status.code(), Some(11), "{r:#}");
    assert!(
        r["reason"].as_str().unwrap().contains("release channels"),
        "{r:#}"
    );
    assert!(r["backup"].is_null(), "stopped before anything: {r:#}");
    assert_eq!(head(&s.checkout), c18);
    fs::write(&cfg, text).unwrap();

    fs::rename(&remote, remote.with_extension("gone")).unwrap();

    let o = run(&s, &["update", "--check"]);
    assert_eq!(o.status.code(), Some(11), "{}", show(&o));
    let v = json_of(&o);
    assert!(v["update_available"].is_null(), "{v:#}");

    let o = run(&s, &["update", "--yes", "--no-restart"]);
    let r = json_of(&o);
    assert_eq!(o.status.code(), Some(11), "{r:#}");
    assert_eq!(r["result"], "failed");
    assert_eq!(r["restart"]["ran"], false);
    assert_eq!(head(&s.checkout), c18, "nothing changed in the checkout");
    let fin = events(&s.home, "update_finished");
    assert_eq!(fin.len(), 2);
    assert_eq!(fin[1]["result"], "failed");
    assert_eq!(fin[1]["exit_code"], 11);
    audit_ok(&s);

    // Hermes not found at all (no launcher on PATH, no checkout): the same.
    fs::rename(&s.checkout, s.checkout.with_extension("moved")).unwrap();
    let o = run(&s, &["update", "--yes", "--no-restart"]);
    assert_eq!(o.status.code(), Some(11), "{}", show(&o));
    let r = json_of(&o);
    assert_eq!(r["result"], "failed");
    assert!(r["backup"].is_null(), "{r:#}");
    let reason = r["reason"].as_str().unwrap();
    assert!(reason.to_lowercase().contains("hermes"), "{reason}");
    let started = events(&s.home, "update_started");
    let fin = events(&s.home, "update_finished");
    assert_eq!((started.len(), fin.len()), (3, 3));
    assert_eq!(fin[2]["result"], "failed");
    assert_eq!(fin[2]["reason"], reason);
    audit_ok(&s);
}
