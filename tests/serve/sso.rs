//! Single sign-on against a real OpenID Connect provider on loopback
//! (`oidc-provider-mock` from PyPI with the controls of
//! tests/fixtures/oidc_provider.py), driven through headless Chromium: the
//! dashboard's "Log in with …", the provider's login form, the callback,
//! the one-time code. Role mapping and re-mapping, unmapped users and
//! foreign domains refused, every kind of bad ID token refused, a replayed
//! callback refused, provider key rotation, linking by an admin only,
//! password login off for a role, refresh re-checked with the provider,
//! `login --sso` from a terminal, and the provider down.
//! Screenshots go to `test-artifacts/sso/`.

use crate::common;
use crate::common::serve as serve_common;
use crate::dashboard::{chromium_path, js_str, Browser};

use common::oidc::{self, Provider};
use common::{add_user, op, TEST_PASSWORD};
use serde_json::{json, Value};
use serve_common::{client, configure, events, send, Server};
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

struct Sso {
    b: Browser,
    server: Server,
    provider: Provider,
    home: PathBuf,
    /// root's SSO refresh token, kept for the provider-down step.
    root_refresh: Option<String>,
    _dir: tempfile::TempDir,
}

/// A home with `auth.oidc` pointing at a fresh provider (+ `extra` under
/// `auth:`), the client secret in the operator's `.env`, and `serve` on a
/// port chosen first (the callback URL is registered at the provider).
fn setup(extra: &str) -> (tempfile::TempDir, PathBuf, Provider, Server) {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().to_path_buf();
    let port = common::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let redirect = format!("{base}/auth/oidc/callback");
    let provider = Provider::start(std::slice::from_ref(&redirect));
    configure(
        &home,
        &oidc::config_yaml(&provider.issuer, &redirect, extra),
    );
    let env = home.join("profiles/operator/.env");
    let mut text = fs::read_to_string(&env).unwrap();
    text.push_str(&format!(
        "OPERATOR_OIDC_CLIENT_SECRET={}\n",
        oidc::CLIENT_SECRET
    ));
    fs::write(&env, text).unwrap();
    add_user(&home, "root", "admin");
    add_user(&home, "lou", "user");
    let server = Server::start_with(&home, &["--bind", &format!("127.0.0.1:{port}")]);
    (dir, home, provider, server)
}

fn artifacts() -> PathBuf {
    let a = Path::new(env!("CARGO_MANIFEST_DIR")).join("test-artifacts/sso");
    fs::create_dir_all(&a).unwrap();
    a
}

impl Sso {
    /// Through the provider's form as `sub` with `claims`, from the
    /// server's start URL (`start`: the URL the browser opens).
    fn provider_login(&mut self, start: &str, sub: &str, claims: Value) {
        self.b.call("Page.navigate", json!({"url": start}));
        self.fill_provider_form(sub, claims);
    }

    fn fill_provider_form(&mut self, sub: &str, claims: Value) {
        self.b.wait(
            "the provider's login form",
            "!!document.querySelector('input[name=sub]') && !!document.querySelector('textarea[name=claims]')",
        );
        self.b.type_into("input[name=sub]", sub);
        self.b
            .type_into("textarea[name=claims]", &claims.to_string());
        self.b.click("button[type=submit]:not([name=action])");
    }

    /// The server's answer page after a refused login: its message.
    fn refusal(&mut self) -> String {
        let m = self.b.wait(
            "the server's refusal page",
            "location.pathname.endsWith('/auth/oidc/callback') && document.querySelector('#sso-message')?.textContent",
        );
        m.as_str().unwrap().to_string()
    }

    fn logged_in_as(&mut self, user: &str) {
        self.b.wait(
            &format!("the dashboard as {user}"),
            &format!(
                "document.querySelector('#whoami')?.textContent === {}",
                js_str(user)
            ),
        );
    }

    fn start_url(&self) -> String {
        self.server.url("/auth/oidc/start")
    }

    fn last_event(&self, kind: &str) -> Value {
        events(&self.home)
            .into_iter()
            .rev()
            .find(|e| e.0 == kind)
            .unwrap_or_else(|| panic!("no {kind} event"))
            .2
    }

    fn role_of(&self, user: &str) -> String {
        let o = op(&self.home)
            .args(["--json", "user", "show", user])
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "user show {user}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        v["role"].as_str().unwrap().to_string()
    }

    fn exists(&self, user: &str) -> bool {
        op(&self.home)
            .args(["user", "show", user])
            .output()
            .unwrap()
            .status
            .success()
    }
}

fn alice() -> Value {
    json!({"email": "alice@example.com", "preferred_username": "alice", "groups": ["engineers"]})
}

#[test]
fn sso_in_headless_chromium() {
    let t0 = Instant::now();
    let (dir, home, provider, server) = setup("  sso_only: [admin]\n");
    let mut b = Browser::launch(&chromium_path(), &artifacts());
    b.open(&format!("{}/", server.base));
    b.call("Network.enable", json!({}));
    let mut s = Sso {
        b,
        server,
        provider,
        home,
        root_refresh: None,
        _dir: dir,
    };
    step_first_login_creates_the_account(&mut s);
    step_role_follows_the_provider_and_revokes_keys(&mut s);
    step_unmapped_and_foreign_domain_refused(&mut s);
    step_bad_id_tokens_refused(&mut s);
    step_replayed_callback_refused(&mut s);
    step_provider_key_rotation_followed(&mut s);
    step_refresh_rechecks_the_provider(&mut s);
    step_admin_links_and_password_login_is_off_for_admins(&mut s);
    step_events_filter_by_provider_and_subject(&mut s);
    step_cli_login_sso(&mut s);
    step_provider_down(&mut s);
    eprintln!("sso test: {:.1?}", t0.elapsed());
}

/// The login page offers the provider; a first login makes the account
/// with the mapped role; `login` names provider and subject.
fn step_first_login_creates_the_account(s: &mut Sso) {
    let link = s.b.wait(
        "the single sign-on link",
        "document.querySelector('#sso-login')?.textContent",
    );
    assert_eq!(link, "Log in with TestID");
    s.b.screenshot("01-login-page");
    for (w, h, dark) in [(390, 844, false), (390, 844, true)] {
        s.b.set_view(w, h, dark);
        let problems = s.b.eval(crate::dashboard::LAYOUT_PROBLEMS);
        assert_eq!(problems, json!([]), "the login page at {w}px (dark {dark})");
    }
    s.b.set_view(1280, 900, false);
    s.b.click("#sso-login");
    s.fill_provider_form("alice-sub", alice());
    s.logged_in_as("alice");
    // The one-time code left the address bar.
    assert_eq!(s.b.eval("location.hash.includes('sso=')"), json!(false));
    s.b.screenshot("02-logged-in");
    assert_eq!(s.role_of("alice"), "user");
    let login = s.last_event("login");
    assert_eq!(login["via"], "sso");
    assert_eq!(login["provider"], s.provider.issuer.as_str());
    assert_eq!(login["subject"], "alice-sub");
    assert_eq!(login["username"], "alice");
    let created = s.last_event("user_created");
    assert_eq!(created["via"], "sso");
    assert_eq!(created["subject"], "alice-sub");
    // Chat works with the login (an API call as alice).
    assert_eq!(s.b.eval("(async () => (await fetch('api/me', {headers: {Authorization: 'Bearer ' + JSON.parse(sessionStorage.getItem('hermes-operator.auth')).access_token}})).status)()"), json!(200));
    s.b.log_out();
}

/// Bob's groups say admin, then auditor: the role follows at the next
/// login, and the change revokes his personal API keys as `user role` does.
fn step_role_follows_the_provider_and_revokes_keys(s: &mut Sso) {
    let bob = |groups: Value| json!({"email": "bob@example.com", "preferred_username": "bob", "groups": groups});
    let start = s.start_url();
    s.provider_login(&start, "bob-sub", bob(json!(["engineers", "ops-admins"])));
    s.logged_in_as("bob");
    assert_eq!(
        s.role_of("bob"),
        "admin",
        "the most privileged mapped group wins"
    );
    let (key_id, _) = serve_common::make_key(&s.home, "bob", &[]);
    s.b.log_out();
    s.provider_login(&start, "bob-sub", bob(json!(["auditors"])));
    s.logged_in_as("bob");
    assert_eq!(s.role_of("bob"), "auditor");
    let changed = s.last_event("user_changed");
    assert_eq!(
        (changed["change"].as_str(), changed["to"].as_str()),
        (Some("role"), Some("auditor"))
    );
    let o = op(&s.home)
        .args(["--json", "user", "key", "list", "bob"])
        .output()
        .unwrap();
    let keys: Value = serde_json::from_slice(&o.stdout).unwrap();
    let key = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == key_id.as_str())
        .expect("bob's key");
    assert!(
        key["revoked_at"].is_string(),
        "the role change left bob's key alive: {key}"
    );
    s.b.log_out();
}

fn step_unmapped_and_foreign_domain_refused(s: &mut Sso) {
    let start = s.start_url();
    s.provider_login(
        &start,
        "carol-sub",
        json!({"email": "carol@example.com", "preferred_username": "carol", "groups": ["nobody"]}),
    );
    assert!(s.refusal().contains("no role on this server"));
    s.b.screenshot("03-unmapped");
    s.b.set_view(390, 844, false);
    let problems = s.b.eval(crate::dashboard::LAYOUT_PROBLEMS);
    assert_eq!(problems, json!([]), "the refusal page on a phone");
    s.b.set_view(1280, 900, false);
    assert!(!s.exists("carol"), "an unmapped user got an account");
    let failed = s.last_event("login_failed");
    assert_eq!(
        (failed["reason"].as_str(), failed["subject"].as_str()),
        (Some("unmapped"), Some("carol-sub"))
    );
    s.provider_login(&start, "mallory-sub", json!({"email": "mallory@evil.org", "preferred_username": "mallory", "groups": ["ops-admins"]}));
    assert!(s.refusal().contains("email domain"));
    assert!(!s.exists("mallory"));
    assert_eq!(s.last_event("login_failed")["reason"], "domain_not_allowed");
}

/// The provider is made to send a bad ID token once per case; each is
/// refused with the reason the audit log names, and nobody is logged in.
fn step_bad_id_tokens_refused(s: &mut Sso) {
    let start = s.start_url();
    let cases = [
        (json!({"aud": "someone-else"}), "audience"),
        (
            json!({"aud": ["someone-else", oidc::CLIENT_ID]}),
            "audience",
        ),
        (json!({"iss": "https://impostor.example.com"}), "issuer"),
        (json!({"exp_offset": -3600}), "expired"),
        (json!({"tamper": true}), "signature"),
        (json!({"alg": "none"}), "malformed"),
        (json!({"alg": "HS256"}), "algorithm"),
        (json!({"sign_with_unlisted_key": true}), "unknown_key"),
        (json!({"nonce": "a-nonce-of-another-login"}), "nonce"),
    ];
    let logins_before = events(&s.home).iter().filter(|e| e.0 == "login").count();
    for (spec, reason) in cases {
        s.provider.next_id_token(spec.clone());
        s.provider_login(&start, "alice-sub", alice());
        let m = s.refusal();
        assert!(m.contains("did not verify"), "{spec}: {m}");
        let failed = s.last_event("login_failed");
        assert_eq!(failed["reason"], "invalid_token", "{spec}: {failed}");
        let detail = failed["detail"].as_str().unwrap();
        assert!(
            detail.contains(&format!("({reason})")),
            "{spec}: expected {reason}, got {detail}"
        );
    }
    s.b.screenshot("04-bad-token");
    let logins_after = events(&s.home).iter().filter(|e| e.0 == "login").count();
    assert_eq!(logins_before, logins_after, "a bad token logged someone in");
    assert_eq!(
        s.b.eval("sessionStorage.getItem('hermes-operator.auth')"),
        Value::Null
    );
}

/// The callback URL of a finished login, opened again: refused (its state
/// was used), and so is one without the browser's cookie.
fn step_replayed_callback_refused(s: &mut Sso) {
    s.b.drain();
    let start = s.start_url();
    s.provider_login(&start, "alice-sub", alice());
    s.logged_in_as("alice");
    s.b.drain();
    let callback =
        s.b.events
            .iter()
            .filter(|e| e["method"] == "Network.requestWillBeSent")
            .filter_map(|e| e["params"]["request"]["url"].as_str())
            .rfind(|u| u.contains("/auth/oidc/callback?"))
            .expect("the callback request")
            .to_string();
    s.b.log_out();
    s.b.call("Page.navigate", json!({"url": callback}));
    assert!(s.refusal().contains("already used"));
    assert_eq!(s.last_event("login_failed")["reason"], "unknown_state");
    // A fresh login's callback without the cookie of the browser that started it.
    let c = hermes_operator::net::client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = common::block_on(send(c.get(&start)));
    assert_eq!(r.status, 302);
    let state = url_param(&r.header("location").unwrap(), "state");
    let r = common::block_on(send(
        c.get(
            s.server
                .url(&format!("/auth/oidc/callback?code=x&state={state}")),
        ),
    ));
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("another browser"), "{}", r.body);
    s.b.open(&format!("{}/", s.server.base));
}

fn url_param(url: &str, k: &str) -> String {
    let u = url::Url::parse(url).unwrap();
    u.query_pairs()
        .find(|(n, _)| n == k)
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

fn step_provider_key_rotation_followed(s: &mut Sso) {
    s.provider.rotate_key();
    std::thread::sleep(Duration::from_millis(1100));
    let start = s.start_url();
    s.provider_login(&start, "alice-sub", alice());
    s.logged_in_as("alice");
}

/// A refresh asks the provider again: it works while the provider user
/// stands, and ends the login once they are disabled there.
fn step_refresh_rechecks_the_provider(s: &mut Sso) {
    let tokens =
        s.b.eval("JSON.parse(sessionStorage.getItem('hermes-operator.auth'))");
    let c = client();
    let refresh = |t: &str| {
        common::block_on(send(
            c.post(s.server.url("/auth/refresh"))
                .json(&json!({"refresh_token": t})),
        ))
    };
    let r = refresh(tokens["refresh_token"].as_str().unwrap());
    assert_eq!(r.status, 200, "{}", r.body);
    let next = r.json()["refresh_token"].as_str().unwrap().to_string();
    s.provider.disable_user("alice-sub");
    let r = refresh(&next);
    assert_eq!(r.status, 401, "{}", r.body);
    assert_eq!(r.json()["error"]["code"], "sso_revoked");
    let ev = s.last_event("token_revoked");
    assert_eq!(
        (ev["reason"].as_str(), ev["subject"].as_str()),
        (Some("sso_revoked"), Some("alice-sub"))
    );
    // The login's access tokens die with it.
    let me = common::block_on(send(
        c.get(s.server.url("/api/me"))
            .bearer_auth(tokens["access_token"].as_str().unwrap()),
    ));
    assert_eq!(me.status, 401, "{}", me.body);
    s.b.open(&format!("{}/", s.server.base));
}

/// `auth.sso_only: [admin]`: root's right password is refused; a provider
/// user named root is not given root's account; after an admin links it
/// on the host, it is. The CLI on the host needs no login at all.
fn step_admin_links_and_password_login_is_off_for_admins(s: &mut Sso) {
    let c = client();
    let r = common::block_on(send(
        c.post(s.server.url("/auth/login"))
            .json(&json!({"username": "root", "password": TEST_PASSWORD})),
    ));
    assert_eq!(r.status, 401, "{}", r.body);
    assert_eq!(r.json()["error"]["code"], "sso_required");
    assert_eq!(s.last_event("login_failed")["reason"], "sso_only");
    // A user with the password login still has it.
    let r = common::block_on(send(
        c.post(s.server.url("/auth/login"))
            .json(&json!({"username": "lou", "password": TEST_PASSWORD})),
    ));
    assert_eq!(r.status, 200, "{}", r.body);
    let start = s.start_url();
    let root = json!({"email": "root@example.com", "preferred_username": "root", "groups": ["ops-admins"]});
    s.provider_login(&start, "root-sub", root.clone());
    assert!(s.refusal().contains("must link it"));
    assert_eq!(s.last_event("login_failed")["reason"], "link_required");
    // Recovery and linking: the CLI on the host.
    let o = op(&s.home)
        .args(["user", "link", "root", "--subject", "root-sub"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    s.provider_login(&start, "root-sub", root);
    s.logged_in_as("root");
    assert_eq!(s.last_event("login")["subject"], "root-sub");
    let tokens =
        s.b.eval("JSON.parse(sessionStorage.getItem('hermes-operator.auth'))");
    assert_eq!(
        tokens["expires_in"],
        Value::Null,
        "the dashboard keeps only the tokens"
    );
    s.root_refresh = Some(tokens["refresh_token"].as_str().unwrap().to_string());
    let o = op(&s.home)
        .args(["--json", "user", "show", "root"])
        .output()
        .unwrap();
    let shown: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (
            shown["sso"]["subject"].as_str(),
            shown["sso"]["linked_by"].as_str()
        ),
        (Some("root-sub"), Some("admin"))
    );
}

/// The events browser filters by provider and subject (API and view).
fn step_events_filter_by_provider_and_subject(s: &mut Sso) {
    s.b.eval("location.hash = '#/events'");
    s.b.wait(
        "the events view",
        "document.querySelector('#view-events')?.dataset.loaded === 'yes'",
    );
    s.b.type_into("#events-subject", "root-sub");
    s.b.click("#events-filters button[type=submit]");
    let rows = s.b.wait(
        "filtered events",
        "(() => { const t = [...document.querySelectorAll('#events-list tbody tr')].map(r => r.textContent); \
         return t.length > 0 && t.every(x => x.includes('subject: root-sub')) && t; })()",
    );
    assert!(
        rows.as_array()
            .unwrap()
            .iter()
            .any(|r| r.as_str().unwrap().contains("login")),
        "{rows}"
    );
    s.b.screenshot("05-events-by-subject");
    let token =
        s.b.eval("JSON.parse(sessionStorage.getItem('hermes-operator.auth')).access_token");
    let c = client();
    let q = format!(
        "/api/audit/events?provider={}&subject=alice-sub&limit=500",
        url::form_urlencoded::byte_serialize(s.provider.issuer.as_bytes()).collect::<String>()
    );
    let r = common::block_on(send(
        c.get(s.server.url(&q)).bearer_auth(token.as_str().unwrap()),
    ));
    assert_eq!(r.status, 200, "{}", r.body);
    let page = r.json();
    let evs = page["events"].as_array().unwrap();
    assert!(evs.len() >= 3, "{page}");
    assert!(evs.iter().all(|e| e["data"]["subject"] == "alice-sub"));
    for kind in ["user_created", "login", "token_revoked"] {
        assert!(evs.iter().any(|e| e["type"] == kind), "no {kind} in {page}");
    }
    // Leave root's login alive (the last step refreshes it): forget it here only.
    s.b.eval("sessionStorage.clear()");
    s.b.open(&format!("{}/", s.server.base));
}

/// `login --sso` in a terminal: the browser logs in, the command prints
/// the same tokens as the dashboard's login.
fn step_cli_login_sso(s: &mut Sso) {
    let mut child = op(&s.home)
        .args([
            "login",
            "--sso",
            "--no-browser",
            "--timeout",
            "60",
            "--server",
            &s.server.base,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.trim_start().starts_with("http://") {
                let _ = tx.send(line.trim().to_string());
            }
        }
    });
    let url = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the login URL on stderr");
    let lou =
        json!({"email": "lou@example.com", "preferred_username": "lou", "groups": ["engineers"]});
    // lou is a local account: link it first (an admin's choice), then log in.
    let o = op(&s.home)
        .args(["user", "link", "lou", "--subject", "lou-sub"])
        .output()
        .unwrap();
    assert!(o.status.success());
    s.provider_login(&url, "lou-sub", lou);
    let m = s.b.wait(
        "the CLI's page",
        "document.querySelector('#cli-message')?.textContent",
    );
    assert!(m.as_str().unwrap().contains("You are logged in"), "{m}");
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "login --sso failed");
    let pair: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(pair["user"]["username"], "lou");
    let me = common::block_on(send(
        client()
            .get(s.server.url("/api/me"))
            .bearer_auth(pair["access_token"].as_str().unwrap()),
    ));
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(s.last_event("login")["subject"], "lou-sub");
    // The code went to the CLI only: redeeming needs its verifier.
    s.b.open(&format!("{}/", s.server.base));
}

/// The provider down: a clear page, and the password login still works
/// for local accounts.
fn step_provider_down(s: &mut Sso) {
    // root's SSO login (made in step 8), to refresh while the provider is down.
    let root_refresh = s.root_refresh.take().expect("root's refresh token");
    s.provider.stop();
    let start = s.start_url();
    // A fresh server: no discovery document cached.
    s.server.terminate(Duration::from_secs(10));
    let port = s.server.port();
    s.server = Server::start_with(&s.home, &["--bind", &format!("127.0.0.1:{port}")]);
    s.b.call("Page.navigate", json!({"url": start}));
    let m = s.b.wait(
        "the unavailable page",
        "document.querySelector('#sso-message')?.textContent",
    );
    assert!(m.as_str().unwrap().contains("cannot be reached"), "{m}");
    s.b.screenshot("06-provider-down");
    // A refresh cannot be re-checked: 503, and the login is not revoked for it.
    let revoked_before = events(&s.home)
        .iter()
        .filter(|e| e.0 == "token_revoked")
        .count();
    let r = common::block_on(send(
        client()
            .post(s.server.url("/auth/refresh"))
            .json(&json!({"refresh_token": root_refresh})),
    ));
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.json()["error"]["code"], "sso_unavailable");
    let revoked_after = events(&s.home)
        .iter()
        .filter(|e| e.0 == "token_revoked")
        .count();
    assert_eq!(revoked_before, revoked_after);
    s.b.open(&format!("{}/", s.server.base));
    s.b.log_in("lou", TEST_PASSWORD);
    s.logged_in_as("lou");
    // The admin (SSO-only, provider down) recovers on the host: the CLI
    // needs no login and mints a token.
    let o = op(&s.home)
        .args(["user", "token", "root", "--ttl", "10"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let token = String::from_utf8(o.stdout).unwrap();
    let me = common::block_on(send(
        client()
            .get(s.server.url("/api/me"))
            .bearer_auth(token.trim()),
    ));
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(me.json()["user"]["role"], "admin");
}

/// Without the client secret `serve` does not start; the message names it.
#[test]
fn serve_refuses_sso_without_the_client_secret() {
    let dir = tempfile::tempdir().unwrap();
    configure(
        dir.path(),
        &oidc::config_yaml(
            "https://id.example.com",
            "https://ops.example.com/auth/oidc/callback",
            "",
        ),
    );
    let o = op(dir.path())
        .args(["serve", "--bind", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(8),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("OPERATOR_OIDC_CLIENT_SECRET"), "{err}");
    // A provider on plain http away from loopback is a config error.
    configure(
        dir.path(),
        &oidc::config_yaml(
            "http://id.example.com",
            "https://ops.example.com/auth/oidc/callback",
            "",
        ),
    );
    let o = op(dir.path()).args(["user", "list"]).output().unwrap();
    assert_eq!(o.status.code(), Some(8));
    assert!(String::from_utf8_lossy(&o.stderr).contains("auth.oidc.issuer"));
}

/// The redirect to the provider carries the configured callback whatever
/// Host the request names; the cookie is HttpOnly, SameSite=Lax, scoped to
/// the callback's path; a one-time code needs that cookie; starts are
/// rate-limited per address; the CLI's parameters come together.
#[test]
fn start_and_exchange_hold_their_ground() {
    let (_dir, home, mut provider, server) = setup("");
    let c = hermes_operator::net::client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    common::block_on(async {
        let r = send(
            c.get(server.url("/auth/oidc/start"))
                .header("Host", "evil.example.com"),
        )
        .await;
        assert_eq!(r.status, 302, "{}", r.body);
        let loc = r.header("location").unwrap();
        assert!(loc.starts_with(&provider.issuer), "{loc}");
        assert_eq!(
            url_param(&loc, "redirect_uri"),
            server.url("/auth/oidc/callback")
        );
        assert_eq!(url_param(&loc, "code_challenge_method"), "S256");
        assert_eq!(url_param(&loc, "code_challenge").len(), 43);
        assert!(!url_param(&loc, "nonce").is_empty() && !url_param(&loc, "state").is_empty());
        let cookie = r.header("set-cookie").unwrap();
        for part in ["hop_sso=", "HttpOnly", "SameSite=Lax", "Path=/auth/oidc"] {
            assert!(cookie.contains(part), "{cookie}");
        }
        let r = send(
            c.post(server.url("/auth/oidc/exchange"))
                .json(&json!({"code": "sso1.nope"})),
        )
        .await;
        assert_eq!(r.status, 401);
        assert_eq!(r.json()["error"]["code"], "invalid_code");
        let r = send(
            c.post(server.url("/auth/oidc/exchange"))
                .header("Cookie", "hop_sso=abc")
                .json(&json!({"code": "sso1.nope"})),
        )
        .await;
        assert_eq!(r.status, 401);
        let r = send(c.get(server.url("/auth/oidc/start?cli_port=5000"))).await;
        assert_eq!(r.status, 400, "{}", r.body);
        let r = send(
            c.get(server.url("/auth/oidc/start?cli_port=5000&cli_state=x&cli_challenge=short")),
        )
        .await;
        assert_eq!(r.status, 400, "{}", r.body);
        let r = send(c.get(server.url("/auth/methods"))).await;
        assert_eq!(r.json()["sso"]["name"], "TestID");
        // Made-up callbacks: refused, audited, and capped per address (so
        // a flood cannot flood the log).
        let mut statuses = Vec::new();
        for i in 0..31 {
            let cb = server.url(&format!("/auth/oidc/callback?code=c&state=made-up-{i}"));
            statuses.push(send(c.get(cb)).await.status);
        }
        assert!(statuses[..30].iter().all(|s| *s == 400), "{statuses:?}");
        assert_eq!(statuses[30], 429);
        let refused = events(&home)
            .iter()
            .filter(|e| e.0 == "login_failed")
            .count();
        assert_eq!(refused, 30);
        // `doctor` sees the provider, then sees it gone.
        let sso_check = || {
            let o = op(&home).args(["--json", "doctor"]).output().unwrap();
            let v: Value = serde_json::from_slice(&o.stdout).unwrap();
            v["checks"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["name"] == "sso")
                .cloned()
                .expect("an sso check")
        };
        let ok = sso_check();
        assert_eq!(ok["status"], "pass", "{ok}");
        assert!(ok["detail"].as_str().unwrap().contains("TestID"), "{ok}");
        // 30 starts per address per 10 minutes (one was made above).
        let mut last = 0;
        for _ in 0..30 {
            last = send(c.get(server.url("/auth/oidc/start"))).await.status;
        }
        assert_eq!(last, 429);
        provider.stop();
        let gone = sso_check();
        assert_eq!(gone["status"], "fail", "{gone}");
        assert!(
            gone["detail"].as_str().unwrap().contains("unreachable"),
            "{gone}"
        );
    });
}
