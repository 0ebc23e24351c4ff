//! The dashboard in a real browser: headless Chromium (Debian's `chromium`
//! package; never downloaded here) against `hermes-operator serve`, the real
//! Hermes 0.19.0 gateway and the fake model (tests/common/gateway.rs).
//!
//! Chromium is driven with the Chrome DevTools Protocol over
//! `--remote-debugging-pipe` (CDP's JSON messages, NUL-separated, on file
//! descriptors 3 and 4): the same protocol as the WebSocket endpoint,
//! without a WebSocket client or a debugging port.
//!
//! A user logs in, chats (streamed text; hostile markup stays text), sends a
//! `[danger]` message, answers the approval prompt (the file mode on disk
//! changes), browses their sessions, survives an invalid access token
//! (one refresh), logs out; an auditor replays the session (approval events,
//! integrity "ok") and sees verify status and the usage chart; an admin
//! disables an account. Screenshots go to `test-artifacts/dashboard/`.
//! Without Chromium the test FAILS (install it: `apt-get install -y chromium`).
use crate::common;
use crate::common::serve as serve_common;

use common::gateway::{Gateway, GatewayOpts};
use common::{add_user, Gen, TEST_PASSWORD};
use serde_json::{json, Value};
use serve_common::{configure, Server};
use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// What the fake model answers to plain messages.
const FIXED_TEXT: &str = "Hello from the fake model. (fixed reply, no tools)";

pub(crate) fn chromium_path() -> PathBuf {
    let p = std::env::var_os("HERMES_OPERATOR_TEST_CHROMIUM")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    if !p.exists() {
        panic!(
            "\n\n==================== DASHBOARD BROWSER TEST ====================\n\
             {} is missing: this test needs headless Chromium and never skips.\n\
             Install Debian's package: apt-get install -y chromium (.ci/run does).\n\
             (Or point HERMES_OPERATOR_TEST_CHROMIUM at a chromium binary.)\n\
             ================================================================\n",
            p.display()
        );
    }
    p
}

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(rc, 0, "pipe2: {}", std::io::Error::last_os_error());
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

/// A headless Chromium and one page, spoken to over CDP.
pub(crate) struct Browser {
    child: Child,
    to_chrome: File,
    from_chrome: mpsc::Receiver<Value>,
    next_id: u64,
    /// The page's CDP session (after `open`).
    session: Option<String>,
    /// Every CDP event seen so far (console, exceptions, log entries...).
    pub(crate) events: Vec<Value>,
    artifacts: PathBuf,
    /// Width, height and whether the page is told the user prefers dark.
    view: (u32, u32, bool),
    _profile: tempfile::TempDir,
}

impl Browser {
    pub(crate) fn launch(chromium: &Path, artifacts: &Path) -> Browser {
        let profile = tempfile::Builder::new()
            .prefix("hermes-op-chromium-")
            .tempdir()
            .expect("chromium profile dir");
        let (to_r, to_w) = pipe(); // we write, Chromium reads fd 3
        let (from_r, from_w) = pipe(); // Chromium writes fd 4, we read
        let (a, b) = (to_r.as_raw_fd(), from_w.as_raw_fd());
        let log = File::create(artifacts.join("chromium.log")).unwrap();
        let mut cmd = Command::new(chromium);
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--disable-extensions",
            "--hide-scrollbars",
            "--mute-audio",
            "--remote-debugging-pipe",
            "--window-size=1280,900",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("about:blank")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .process_group(0);
        unsafe {
            cmd.pre_exec(move || {
                // Copies above 10 first, so dup2 never hits an fd that is
                // already 3 or 4; dup2'ed fds do not close on exec.
                let a2 = libc::fcntl(a, libc::F_DUPFD_CLOEXEC, 10);
                let b2 = libc::fcntl(b, libc::F_DUPFD_CLOEXEC, 10);
                if a2 < 0 || b2 < 0 || libc::dup2(a2, 3) < 0 || libc::dup2(b2, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromium.display()));
        drop(to_r);
        drop(from_w);
        let (tx, rx) = mpsc::channel();
        let mut reader = File::from(from_r);
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 64 * 1024];
            loop {
                let n = match reader.read(&mut chunk) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                buf.extend_from_slice(&chunk[..n]);
                while let Some(i) = buf.iter().position(|&c| c == 0) {
                    let msg: Vec<u8> = buf.drain(..=i).collect();
                    match serde_json::from_slice::<Value>(&msg[..i]) {
                        Ok(v) => {
                            if tx.send(v).is_err() {
                                return;
                            }
                        }
                        Err(e) => eprintln!("CDP: bad message ({e})"),
                    }
                }
            }
        });
        Browser {
            child,
            to_chrome: File::from(to_w),
            from_chrome: rx,
            next_id: 0,
            session: None,
            events: Vec::new(),
            view: (1280, 900, false),
            artifacts: artifacts.to_path_buf(),
            _profile: profile,
        }
    }

    /// One CDP command (on the page's session once there is one); its result.
    pub(crate) fn call(&mut self, method: &str, params: Value) -> Value {
        self.call_on(self.session.clone(), method, params)
    }

    pub(crate) fn call_on(
        &mut self,
        session: Option<String>,
        method: &str,
        params: Value,
    ) -> Value {
        match self.try_call_on(session, method, params) {
            Ok(v) => v,
            Err(e) => panic!("CDP {method} failed: {e}"),
        }
    }

    /// One CDP command; Chromium's error as `Err`.
    pub(crate) fn try_call_on(
        &mut self,
        session: Option<String>,
        method: &str,
        params: Value,
    ) -> Result<Value, Value> {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = Value::String(s);
        }
        let mut bytes = serde_json::to_vec(&msg).unwrap();
        bytes.push(0);
        self.to_chrome
            .write_all(&bytes)
            .unwrap_or_else(|e| panic!("CDP {method}: Chromium's pipe is closed ({e})"));
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.from_chrome.recv_timeout(left) {
                Ok(v) if v["id"].as_u64() == Some(id) => {
                    if let Some(e) = v.get("error") {
                        return Err(e.clone());
                    }
                    return Ok(v["result"].clone());
                }
                Ok(v) => self.events.push(v),
                Err(e) => panic!("CDP {method}: no answer from Chromium ({e})"),
            }
        }
    }

    /// A new page, attached, with the domains we listen to, at `url`.
    pub(crate) fn open(&mut self, url: &str) {
        let t = self.call_on(None, "Target.createTarget", json!({"url": "about:blank"}));
        let target = t["targetId"].as_str().unwrap().to_string();
        let a = self.call_on(
            None,
            "Target.attachToTarget",
            json!({"targetId": target, "flatten": true}),
        );
        self.session = Some(a["sessionId"].as_str().unwrap().to_string());
        for d in ["Page.enable", "Runtime.enable", "Log.enable"] {
            self.call(d, json!({}));
        }
        self.emulate();
        self.call("Page.navigate", json!({"url": url}));
    }

    /// The viewport and colour scheme of `view` on the open page.
    pub(crate) fn emulate(&mut self) {
        let (w, h, dark) = self.view;
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": w, "height": h, "deviceScaleFactor": 1, "mobile": w < 600}),
        );
        self.call(
            "Emulation.setEmulatedMedia",
            json!({"features": [{"name": "prefers-color-scheme", "value": if dark { "dark" } else { "light" }}]}),
        );
    }

    pub(crate) fn set_view(&mut self, w: u32, h: u32, dark: bool) {
        self.view = (w, h, dark);
        self.emulate();
    }

    /// The value of a JS expression (promises awaited); panics on exceptions.
    pub(crate) fn eval(&mut self, js: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": js, "awaitPromise": true, "returnByValue": true}),
        );
        if let Some(ex) = r.get("exceptionDetails") {
            panic!("JS failed: {js}\n{ex}");
        }
        r["result"]["value"].clone()
    }

    /// The same, but an exception (e.g. a page in the middle of loading) is
    /// `None`, and so is a page that navigated away while the expression ran
    /// (Chromium answers -32000 "Inspected target navigated or closed").
    pub(crate) fn try_eval(&mut self, js: &str) -> Option<Value> {
        let r = match self.try_call_on(
            self.session.clone(),
            "Runtime.evaluate",
            json!({"expression": js, "awaitPromise": true, "returnByValue": true}),
        ) {
            Ok(r) => r,
            Err(e) if e.to_string().contains("navigated or closed") => return None,
            Err(e) => panic!("CDP Runtime.evaluate failed: {e}"),
        };
        if r.get("exceptionDetails").is_some() {
            return None;
        }
        Some(r["result"]["value"].clone())
    }

    /// Polls `js` until it is truthy; its value. On timeout: a screenshot,
    /// the page's text and the console in the panic message.
    pub(crate) fn wait_for(&mut self, what: &str, js: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = self.try_eval(js) {
                let truthy = match &v {
                    Value::Null => false,
                    Value::Bool(b) => *b,
                    Value::Number(n) => n.as_f64() != Some(0.0),
                    Value::String(s) => !s.is_empty(),
                    _ => true,
                };
                if truthy {
                    return v;
                }
            }
            if Instant::now() > deadline {
                let shot = self.screenshot(&format!("FAILED-{}", what.replace(' ', "-")));
                let text = self.try_eval("document.body.innerText");
                panic!(
                    "timed out after {timeout:?} waiting for {what} ({js})\nscreenshot: {}\n\
                     --- page text ---\n{}\n--- console/errors ---\n{}",
                    shot.display(),
                    text.as_ref().and_then(Value::as_str).unwrap_or("?"),
                    self.console_lines().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub(crate) fn wait(&mut self, what: &str, js: &str) -> Value {
        self.wait_for(what, js, Duration::from_secs(20))
    }

    /// Types `text` into the (emptied) field, as keyboard input.
    pub(crate) fn type_into(&mut self, selector: &str, text: &str) {
        let sel = serde_json::to_string(selector).unwrap();
        self.wait(
            &format!("field {selector}"),
            &format!("!!document.querySelector({sel})"),
        );
        self.eval(&format!(
            "(() => {{ const e = document.querySelector({sel}); e.focus(); e.value = ''; return true; }})()"
        ));
        self.call("Input.insertText", json!({"text": text}));
    }

    /// A real mouse click in the middle of the element (once it exists, is
    /// enabled, and is what the page shows at that point: a view still
    /// loading above it can move it between measuring and clicking).
    pub(crate) fn click(&mut self, selector: &str) {
        let sel = serde_json::to_string(selector).unwrap();
        let p = self.wait(
            &format!("clickable {selector}"),
            &format!(
                "(() => {{ const e = document.querySelector({sel}); if (!e || e.disabled) return false; \
                 e.scrollIntoView({{block: 'center'}}); const r = e.getBoundingClientRect(); \
                 const x = r.left + r.width / 2, y = r.top + r.height / 2; \
                 const at = document.elementFromPoint(x, y); \
                 return !!at && (at === e || e.contains(at)) && {{x, y}}; }})()"
            ),
        );
        for kind in ["mouseMoved", "mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                json!({"type": kind, "x": p["x"], "y": p["y"], "button": "left", "clickCount": 1}),
            );
        }
    }

    /// A full-page PNG in the artifacts folder; its path.
    pub(crate) fn screenshot(&mut self, name: &str) -> PathBuf {
        let m = self.call("Page.getLayoutMetrics", json!({}));
        let w = m["cssContentSize"]["width"].as_f64().unwrap_or(1280.0);
        let h = m["cssContentSize"]["height"]
            .as_f64()
            .unwrap_or(900.0)
            .clamp(900.0, 6000.0);
        let r = self.call(
            "Page.captureScreenshot",
            json!({"format": "png", "captureBeyondViewport": true,
                   "clip": {"x": 0, "y": 0, "width": w, "height": h, "scale": 1}}),
        );
        use base64::Engine;
        let png = base64::engine::general_purpose::STANDARD
            .decode(r["data"].as_str().expect("screenshot data"))
            .expect("screenshot base64");
        let path = self.artifacts.join(format!("{name}.png"));
        fs::write(&path, png).unwrap();
        path
    }

    /// Drains pending CDP events into `events`.
    pub(crate) fn drain(&mut self) {
        while let Ok(v) = self.from_chrome.try_recv() {
            self.events.push(v);
        }
    }

    /// Console messages, log entries and uncaught exceptions, one per line.
    pub(crate) fn console_lines(&mut self) -> Vec<String> {
        self.drain();
        self.events
            .iter()
            .filter_map(|e| match e["method"].as_str()? {
                "Runtime.exceptionThrown" => Some(format!(
                    "EXCEPTION {}",
                    e["params"]["exceptionDetails"]["exception"]["description"]
                        .as_str()
                        .or(e["params"]["exceptionDetails"]["text"].as_str())
                        .unwrap_or("?")
                )),
                "Runtime.consoleAPICalled" => Some(format!(
                    "console.{} {}",
                    e["params"]["type"].as_str().unwrap_or("?"),
                    e["params"]["args"]
                ))
                .filter(|_| e["params"]["type"] != "debug"),
                "Log.entryAdded" => Some(format!(
                    "log.{} [{}] {} {}",
                    e["params"]["entry"]["level"].as_str().unwrap_or("?"),
                    e["params"]["entry"]["source"].as_str().unwrap_or("?"),
                    e["params"]["entry"]["text"].as_str().unwrap_or(""),
                    e["params"]["entry"]["url"].as_str().unwrap_or("")
                )),
                _ => None,
            })
            .collect()
    }

    pub(crate) fn log_in(&mut self, user: &str, password: &str) {
        self.wait("the login form", "!!document.querySelector('#login-form')");
        self.type_into("#username", user);
        self.type_into("#password", password);
        self.click("#login-submit");
    }

    pub(crate) fn log_out(&mut self) {
        self.click("#logout");
        self.wait(
            "the login form after logout",
            "!!document.querySelector('#login-form') && !sessionStorage.getItem('hermes-operator.auth')",
        );
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Chromium's helper processes share its process group.
        unsafe {
            libc::kill(-(self.child.id() as libc::pid_t), libc::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

pub(crate) fn js_str(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

/// What `dashboard_in_headless_chromium` carries from step to step.
///
/// Field order is drop order: the browser goes first, then the server,
/// then the gateway, as the locals of the one long function did.
struct Dashboard {
    b: Browser,
    server: Server,
    gw: Gateway,
    t0: Instant,
    artifacts: PathBuf,
    /// Alice's first chat session (the hostile message).
    sid: String,
    /// Alice's `[danger]` session, approved in the chat.
    dsid: String,
}

/// Root's password after the account step changes it.
const NEW_PASSWORD: &str = "root's brand new password";

#[test]
fn dashboard_in_headless_chromium() {
    let mut d = dashboard_start();
    // A user: a refused login, a chat, an approval, their sessions, a bad token.
    step_login_shows_server_error(&mut d);
    step_chat_streams_and_keeps_markup_text(&mut d);
    step_danger_approved_in_the_chat(&mut d);
    step_my_sessions_and_one_session(&mut d);
    step_invalid_token_refreshes_once(&mut d);
    // An auditor: replay, search, a user's report, the audit page.
    step_auditor_replays_the_session(&mut d);
    step_search_keeps_markup_text(&mut d);
    step_one_users_report(&mut d);
    step_audit_page_and_event_log(&mut d);
    // An admin: users, their own account, two-factor, a key, approvals.
    step_admin_disables_and_adds_accounts(&mut d);
    step_account_password_refused_then_changed(&mut d);
    step_account_two_factor(&mut d);
    step_account_api_key_shown_once(&mut d);
    step_key_approval_answered_in_the_dashboard(&mut d);
    step_live_events_follow_the_log(&mut d);
    step_every_view_usable_on_a_phone(&mut d);
    step_console_clean(d);
}

fn dashboard_start() -> Dashboard {
    let t0 = Instant::now();
    let chromium = chromium_path();
    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("test-artifacts/dashboard");
    fs::create_dir_all(&artifacts).unwrap();
    for e in fs::read_dir(&artifacts).unwrap().flatten() {
        if e.path().extension().is_some_and(|x| x == "png") {
            let _ = fs::remove_file(e.path());
        }
    }

    let gw = Gateway::start(
        Gen::H022,
        GatewayOpts {
            approval_timeout_secs: 60,
            ..Default::default()
        },
    );
    configure(&gw.home, &format!("hermes:\n  api_url: {}\n", gw.url));
    for (n, r) in [("alice", "user"), ("audrey", "auditor"), ("root", "admin")] {
        add_user(&gw.home, n, r);
    }
    let server = Server::start(&gw.home);
    let mut b = Browser::launch(&chromium, &artifacts);
    b.open(&format!("{}/", server.base));
    eprintln!("dashboard test: set up in {:.1?}", t0.elapsed());
    Dashboard {
        b,
        server,
        gw,
        t0,
        artifacts,
        sid: String::new(),
        dsid: String::new(),
    }
}

/// Login: a wrong password shows the server's error.
fn step_login_shows_server_error(d: &mut Dashboard) {
    let b = &mut d.b;
    b.log_in("alice", "not the password");
    let err = b.wait(
        "the login error",
        "document.querySelector('#login-message .error')?.textContent",
    );
    assert!(
        err.as_str()
            .unwrap()
            .starts_with("Invalid username or password"),
        "{err}"
    );
    b.screenshot("01-login-error");
    b.type_into("#password", TEST_PASSWORD);
    b.click("#login-submit");
    b.wait(
        "alice's chat page",
        "document.querySelector('#whoami')?.textContent === 'alice' && document.querySelector('.chat')?.dataset.ready === 'yes'",
    );
}

/// Chat: a new session, streamed text, hostile markup stays text.
fn step_chat_streams_and_keeps_markup_text(d: &mut Dashboard) {
    let b = &mut d.b;
    let hostile = "hello <img src=x onerror=\"window.__xss=1\"> <b>bold</b> & 'quotes'";
    // The assistant's text before every change: it grows delta by delta.
    b.eval(
        "window.__growth = []; new MutationObserver((rs) => { for (const r of rs) \
         if (r.type === 'characterData') window.__growth.push(r.oldValue.length); }) \
         .observe(document.querySelector('#transcript'), \
         {subtree: true, characterData: true, characterDataOldValue: true}); true",
    );
    b.type_into("#chat-input", hostile);
    b.click("#chat-send");
    b.wait_for(
        "the first turn to finish",
        "document.querySelector('.chat')?.dataset.turn === 'done'",
        Duration::from_secs(60),
    );
    let v = b.eval(
        "({text: document.querySelector('#transcript .msg.assistant .text')?.textContent, \
           deltas: Number(document.querySelector('#transcript .msg.assistant')?.dataset.deltas || 0), \
           growth: window.__growth, \
           sid: document.querySelector('.chat').dataset.sessionId, hash: location.hash, \
           injected: document.querySelectorAll('#transcript img, #transcript b').length, \
           xss: window.__xss || 0, \
           mine: document.querySelector('#transcript .msg.user .text')?.textContent, \
           status: document.querySelector('#chat-status').textContent})",
    );
    assert_eq!(v["text"].as_str().map(str::trim), Some(FIXED_TEXT), "{v}");
    let growth: Vec<u64> = v["growth"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_u64)
        .collect();
    assert!(
        v["deltas"].as_u64().unwrap() >= 2
            && growth.len() >= 2
            && growth.windows(2).all(|w| w[0] < w[1]),
        "the reply is shown delta by delta as it streams: {v}"
    );
    let sid = v["sid"].as_str().unwrap().to_string();
    assert!(sid.starts_with("op_") && sid.len() == 15, "{v}");
    assert_eq!(v["hash"], format!("#/chat/{sid}").as_str());
    assert_eq!(v["mine"], hostile, "the message is shown as typed");
    assert_eq!(v["injected"], 0, "markup in a message never becomes HTML");
    assert_eq!(v["xss"], 0);
    assert!(v["status"].as_str().unwrap().starts_with("Done"), "{v}");
    b.screenshot("02-chat-streamed");
    d.sid = sid;
}

/// `[danger]` in a new session: approval prompt, approve, it runs.
fn step_danger_approved_in_the_chat(d: &mut Dashboard) {
    let (b, gw) = (&mut d.b, &d.gw);
    fs::set_permissions(&gw.danger_target, fs::Permissions::from_mode(0o600)).unwrap();
    b.eval(
        "(() => { const p = document.querySelector('#chat-session'); p.value = ''; \
         p.dispatchEvent(new Event('change')); return true; })()",
    );
    b.wait(
        "an empty new-session chat",
        "location.hash === '#/chat' && document.querySelector('.chat')?.dataset.sessionId === '' \
         && document.querySelector('#transcript').children.length === 0 \
         && document.querySelector('.chat').dataset.ready === 'yes'",
    );
    b.type_into("#chat-input", "[danger] open it up");
    b.click("#chat-send");
    let cmd = b.wait_for(
        "the approval prompt",
        "document.querySelector('.event.approval[data-state=pending] .command')?.textContent",
        Duration::from_secs(60),
    );
    let target = gw.danger_target.display().to_string();
    assert!(
        cmd.as_str()
            .unwrap()
            .contains(&format!("chmod 777 {target}")),
        "{cmd}"
    );
    assert_eq!(
        gw.danger_target_mode(),
        0o600,
        "nothing ran before the answer"
    );
    let focused = b.eval("document.activeElement?.dataset.choice || ''");
    assert_eq!(focused, "once", "the prompt takes the keyboard focus");
    b.screenshot("03-approval-prompt");
    b.click(".event.approval button[data-choice=once]");
    b.wait_for(
        "the approved turn to finish",
        "document.querySelector('.chat').dataset.turn === 'done'",
        Duration::from_secs(60),
    );
    let v = b.eval(
        "({decision: document.querySelector('.event.approval .decision')?.textContent, \
           state: document.querySelector('.event.approval').dataset.state, \
           tools: [...document.querySelectorAll('#transcript .event.tool')].map(e => e.textContent), \
           sid: document.querySelector('.chat').dataset.sessionId})",
    );
    assert!(
        v["decision"]
            .as_str()
            .unwrap_or("")
            .starts_with("Approved once by alice"),
        "{v}"
    );
    assert_eq!(v["state"], "once");
    assert!(
        v["tools"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t.as_str().unwrap().contains("terminal")),
        "tool progress lines: {v}"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while gw.danger_target_mode() != 0o777 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(gw.danger_target_mode(), 0o777, "the approved command ran");
    let dsid = v["sid"].as_str().unwrap().to_string();
    assert!(dsid.starts_with("op_") && dsid != d.sid, "{v}");
    b.screenshot("04-approved-and-done");
    d.dsid = dsid;
}

/// My sessions, and one session's messages and tool calls.
fn step_my_sessions_and_one_session(d: &mut Dashboard) {
    let (b, sid, dsid) = (&mut d.b, &d.sid, &d.dsid);
    b.click("#nav-sessions");
    b.wait(
        "both sessions in the list",
        &format!(
            "!!document.querySelector('tr[data-session-id={}]') && !!document.querySelector('tr[data-session-id={}]')",
            js_str(sid),
            js_str(dsid)
        ),
    );
    let replay_links = b.eval("document.querySelectorAll('.replay-link').length");
    assert_eq!(replay_links, 0, "a user sees no audit links");
    // Sorted by messages, most first; the state filter and the totals.
    b.click("button[data-sort=messages]");
    let sorted = b.eval(
        "[...document.querySelectorAll('table.sessions tbody tr')].map((r) => Number(r.children[4].textContent.replace(/\\D/g, '')))",
    );
    let counts: Vec<u64> = sorted
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert!(counts.windows(2).all(|w| w[0] >= w[1]), "{counts:?}");
    assert!(b
        .eval("document.querySelector('#session-totals').textContent")
        .as_str()
        .unwrap()
        .starts_with("2 session(s) shown"),);
    b.eval("(() => { const s = document.querySelector('#session-state'); s.value = 'ended'; s.dispatchEvent(new Event('change')); return true; })()");
    b.wait(
        "no ended sessions",
        "document.querySelectorAll('table.sessions tbody tr').length === 0",
    );
    b.eval("(() => { const s = document.querySelector('#session-state'); s.value = ''; s.dispatchEvent(new Event('change')); return true; })()");
    b.screenshot("05-my-sessions");
    b.click(&format!("tr[data-session-id=\"{dsid}\"] td a"));
    let text = b.wait(
        "the session's messages with a tool call",
        "document.querySelector('#messages .tool-call') && document.querySelector('#messages .msg.tool') \
         && document.querySelector('#messages').textContent",
    );
    assert!(text.as_str().unwrap().contains("chmod 777"), "{text}");
    // Its owner renames it from the Actions card; exports are offered.
    b.type_into("#session-title", "Opened up the target");
    b.eval("document.querySelector('#rename-form').requestSubmit(); true");
    b.wait(
        "the new title",
        "document.querySelector('#session-actions-out .notice')?.textContent === 'Renamed.' \
         && document.querySelector('#view-session h1')?.textContent === 'Opened up the target'",
    );
    assert_eq!(
        b.eval("[...document.querySelectorAll('#session-actions button[data-format]')].map((b) => b.dataset.format)"),
        json!(["json", "md"])
    );
    assert_eq!(
        b.eval("!!document.querySelector('#end-session')"),
        json!(true)
    );
    b.screenshot("06-session-view");
}

/// An invalid access token: one refresh, and the page carries on.
fn step_invalid_token_refreshes_once(d: &mut Dashboard) {
    let b = &mut d.b;
    let before = b.eval(
        "(() => { const k = 'hermes-operator.auth'; const a = JSON.parse(sessionStorage.getItem(k)); \
         const old = a.refresh_token; a.access_token = 'not-a-valid-token'; \
         sessionStorage.setItem(k, JSON.stringify(a)); window.__old_page = true; \
         setTimeout(() => location.reload(), 0); return old; })()",
    );
    b.wait(
        "the reloaded session view",
        "!window.__old_page && document.querySelector('#whoami')?.textContent === 'alice' \
         && !!document.querySelector('#messages .tool-call')",
    );
    let after = b.eval("JSON.parse(sessionStorage.getItem('hermes-operator.auth')).refresh_token");
    assert_ne!(before, after, "the refresh token was rotated");
    b.log_out();
}

/// Auditor: all sessions, the replay timeline.
fn step_auditor_replays_the_session(d: &mut Dashboard) {
    let (b, dsid) = (&mut d.b, &d.dsid);
    b.log_in("audrey", TEST_PASSWORD);
    b.wait(
        "the auditor's session list",
        &format!(
            "document.querySelector('#whoami')?.textContent === 'audrey' && \
             !!document.querySelector('tr[data-session-id={}] a.replay-link')",
            js_str(dsid)
        ),
    );
    let nav = b.eval("[...document.querySelectorAll('#nav a')].map(a => a.textContent).join(',')");
    assert_eq!(
        nav, "All sessions,Audit,Events,Usage,Account",
        "no chat for auditors"
    );
    b.click(&format!("tr[data-session-id=\"{dsid}\"] a.replay-link"));
    let rep = b.wait(
        "the replay timeline",
        "document.querySelector('#timeline li') && ({overall: document.querySelector('#replay-integrity').dataset.integrity, \
         events: [...document.querySelectorAll('#timeline li')].map(li => [li.dataset.type, li.dataset.integrity, \
         li.querySelector('.summary').textContent])})",
    );
    assert_eq!(rep["overall"], "ok", "{rep}");
    let events = rep["events"].as_array().unwrap();
    assert!(
        events.iter().all(|e| e[1] == "ok"),
        "every event verifies: {rep}"
    );
    let approval = events
        .iter()
        .find(|e| e[0] == "approval")
        .unwrap_or_else(|| panic!("an approval event: {rep}"));
    assert!(
        approval[2].as_str().unwrap().contains("once by alice"),
        "{approval}"
    );
    assert!(events.iter().any(|e| e[0] == "approval_request"), "{rep}");
    b.screenshot("07-replay");
}

/// Search: alice's hostile message found, its markup still text.
fn step_search_keeps_markup_text(d: &mut Dashboard) {
    let (b, sid) = (&mut d.b, &d.sid);
    b.click("#nav-sessions");
    b.wait(
        "the session list loaded",
        "!!document.querySelector('#session-list table')",
    );
    b.type_into("#search-q", "onerror");
    b.click("#search-form button[type=submit]");
    let found = b.wait(
        "search hits",
        &format!(
            "document.querySelector('#search-hits li[data-session-id={}]') && \
             ({{hash: location.hash, marks: [...document.querySelectorAll('#search-hits mark')].map(m => m.textContent), \
               text: document.querySelector('#search-hits li[data-session-id={}] .snippet').textContent, \
               injected: document.querySelectorAll('#search-hits img').length, xss: window.__xss || 0}})",
            js_str(sid),
            js_str(sid)
        ),
    );
    assert_eq!(found["hash"], "#/search/onerror", "{found}");
    assert!(
        found["marks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m == "onerror"),
        "{found}"
    );
    assert!(found["text"].as_str().unwrap().contains("<img"), "{found}");
    assert_eq!(found["injected"], 0, "{found}");
    assert_eq!(found["xss"], 0, "{found}");
    b.screenshot("07b-search");
    b.click(&format!("#search-hits li[data-session-id=\"{sid}\"] a"));
    b.wait(
        "the hit's session",
        "!!document.querySelector('#messages .msg.user')",
    );
}

/// One user's report: alice's sessions and events.
fn step_one_users_report(d: &mut Dashboard) {
    let b = &mut d.b;
    b.click("#nav-audit");
    b.wait(
        "the audit page loaded",
        "!!document.querySelector('#verify-status') && !!document.querySelector('#usage-chart')",
    );
    b.type_into("#report-user", "alice");
    b.click("#user-report-form button[type=submit]");
    let rep = b.wait(
        "alice's report",
        "document.querySelector('#user-events li') && \
         ({name: document.querySelector('#report-username').textContent, \
           sessions: [...document.querySelectorAll('#user-sessions tr[data-session-id]')].map(r => r.dataset.sessionId), \
           types: [...document.querySelectorAll('#user-events li')].map(li => li.dataset.type)})",
    );
    assert_eq!(rep["name"], "alice", "{rep}");
    let rs: Vec<&str> = rep["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        rs.contains(&d.sid.as_str()) && rs.contains(&d.dsid.as_str()),
        "{rep}"
    );
    let types: Vec<&str> = rep["types"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        types.contains(&"approval") && types.contains(&"login"),
        "{rep}"
    );
    b.screenshot("07c-user-report");
}

/// Audit page: verify status and the daily usage chart; then the event log.
fn step_audit_page_and_event_log(d: &mut Dashboard) {
    let b = &mut d.b;
    b.click("#nav-audit");
    let a = b.wait(
        "verify status and the chart",
        "document.querySelector('#verify-status') && document.querySelectorAll('#usage-chart rect.bar').length === 7 \
         && ({ok: document.querySelector('#verify-status').dataset.ok, \
              today: Number(document.querySelectorAll('#usage-chart rect.bar')[6].getAttribute('height')), \
              users: [...document.querySelectorAll('#usage-users tbody th')].map(t => t.textContent)})",
    );
    assert_eq!(a["ok"], "true", "{a}");
    assert!(a["today"].as_f64().unwrap() > 0.0, "today's bar: {a}");
    assert!(
        a["users"].as_array().unwrap().iter().any(|u| u == "alice"),
        "{a}"
    );
    b.screenshot("08-audit");
    // The event-log browser: newest first, filtered by type, paged.
    b.click("#nav-events");
    b.wait(
        "the event log",
        "document.querySelectorAll('#events-list tr[data-seq]').length > 0",
    );
    b.eval(
        "document.querySelector('#events-type').value = 'user_message'; \
            document.querySelector('#events-filters').requestSubmit(); true",
    );
    let ev = b.wait(
        "only user messages",
        "(() => { const rows = [...document.querySelectorAll('#events-list tr[data-seq]')]; \
           return rows.length > 0 && rows.every((r) => r.dataset.type === 'user_message') \
             && {n: rows.length, seqs: rows.map((r) => Number(r.dataset.seq)), \
                 replay: !!document.querySelector('#events-list a[href^=\"#/replay/\"]')}; })()",
    );
    let seqs: Vec<u64> = ev["seqs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[0] > w[1]),
        "newest first: {seqs:?}"
    );
    assert_eq!(ev["replay"], true, "{ev}");
    b.screenshot("08b-events");
    b.log_out();
}

/// Admin: the user list, disabling an account, adding one.
fn step_admin_disables_and_adds_accounts(d: &mut Dashboard) {
    let b = &mut d.b;
    b.log_in("root", TEST_PASSWORD);
    b.wait(
        "the admin's header",
        "document.querySelector('#whoami')?.textContent === 'root'",
    );
    b.click("#nav-users");
    b.click("tr[data-username=audrey] button[data-action=disable]");
    b.wait(
        "audrey disabled",
        "document.querySelector('tr[data-username=audrey]')?.dataset.disabled === 'true'",
    );
    b.screenshot("09-users");
    // A new account from the form; the role select goes back to `user`.
    b.type_into("#new-username", "newbie");
    b.type_into("#new-password", "a long enough password");
    b.eval("document.querySelector('#new-role').value = 'viewer'; true");
    b.eval("document.querySelector('#new-user').requestSubmit(); true");
    b.wait(
        "newbie listed",
        "!!document.querySelector('tr[data-username=newbie]')",
    );
    assert_eq!(
        b.eval("document.querySelector('tr[data-username=newbie]').dataset.role"),
        json!("viewer")
    );
    assert_eq!(
        b.eval("document.querySelector('#new-role').value"),
        json!("user")
    );
    let o = common::op(&d.gw.home)
        .args(["--json", "user", "show", "audrey"])
        .output()
        .unwrap();
    let u: Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("user show: {e}: {}", String::from_utf8_lossy(&o.stderr)));
    assert_eq!(u["disabled"], true, "{u}");
}

/// Account: one's own password, refused then changed.
fn step_account_password_refused_then_changed(d: &mut Dashboard) {
    let b = &mut d.b;
    b.click("#nav-account");
    b.type_into("#current-password", "not the current password");
    b.type_into("#new-password-1", NEW_PASSWORD);
    b.type_into("#new-password-2", NEW_PASSWORD);
    b.click("#password-submit");
    b.wait(
        "the refusal",
        "document.querySelector('#password-out .error')?.textContent.toLowerCase().includes('current password is wrong')",
    );
    b.type_into("#current-password", TEST_PASSWORD);
    b.click("#password-submit");
    b.wait(
        "the change",
        "document.querySelector('#password-out .notice')?.textContent === 'Password changed.'",
    );
    b.screenshot("10-account");
    // Still logged in (the answer was a fresh login), across a reload.
    b.eval("window.__old_page = true; setTimeout(() => location.reload(), 0); true");
    b.wait(
        "the account view after a reload",
        "!window.__old_page && document.querySelector('#whoami')?.textContent === 'root' \
         && !!document.querySelector('#password-form')",
    );
    b.log_out();
    b.log_in("root", TEST_PASSWORD);
    b.wait(
        "the old password refused",
        "document.querySelector('#login-message .error')?.textContent.startsWith('Invalid username or password')",
    );
    b.log_in("root", NEW_PASSWORD);
    b.wait(
        "logged in with the new password",
        "document.querySelector('#whoami')?.textContent === 'root'",
    );
}

/// Account: two-factor login set up in the browser, then asked for.
fn step_account_two_factor(d: &mut Dashboard) {
    let b = &mut d.b;
    b.click("#nav-account");
    b.type_into("#totp-password", NEW_PASSWORD);
    b.click("#totp-begin");
    b.wait("the enrolment", "!!document.querySelector('#totp-secret')");
    let secret = b.eval("document.querySelector('#totp-secret').textContent");
    let secret = secret.as_str().unwrap().to_string();
    assert_eq!(
        b.eval("document.querySelectorAll('#totp-recovery li').length"),
        json!(10)
    );
    const AUTH: &str = "JSON.parse(sessionStorage.getItem('hermes-operator.auth')).access_token";
    let before = b.eval(AUTH);
    b.type_into("#totp-confirm-password", NEW_PASSWORD);
    b.type_into("#totp-code", &common::totp_code(&secret, -1));
    b.click("#totp-confirm");
    b.wait(
        "two-factor on",
        "document.querySelector('#totp-state')?.textContent.startsWith('On')",
    );
    // The confirmation ended the earlier login and answered a fresh one,
    // which this tab keeps.
    assert_ne!(b.eval(AUTH), before, "the tab kept the fresh login");
    b.screenshot("11-two-factor");
    b.log_out();
    b.log_in("root", NEW_PASSWORD);
    b.wait(
        "the code asked for",
        "document.querySelector('#totp') && !document.querySelector('#totp').hidden",
    );
    b.type_into("#totp", &common::totp_code(&secret, 0));
    b.click("#login-submit");
    b.wait(
        "logged in with a code",
        "document.querySelector('#whoami')?.textContent === 'root'",
    );
}

/// Account: a personal API key, shown once, then revoked.
fn step_account_api_key_shown_once(d: &mut Dashboard) {
    let b = &mut d.b;
    b.click("#nav-account");
    b.wait("the keys card", "!!document.querySelector('#keys-empty')");
    b.type_into("#key-label", "browser");
    b.eval("document.querySelector('#key-approvals').value = 'wait'; true");
    // The form offers the operator's toolsets and a requests-per-minute
    // limit (issue 22); at 390 px it stays inside the screen.
    let offered = b.eval(
        "[...document.querySelectorAll('#key-toolsets input[type=checkbox]')].map((c) => c.value)",
    );
    let offered: Vec<String> = serde_json::from_value(offered).unwrap();
    assert!(offered.len() >= 2, "{offered:?}");
    for dark in [false, true] {
        b.set_view(390, 844, dark);
        let fit = b.eval(
            "(() => { const f = document.querySelector('#key-form'); const r = f.getBoundingClientRect(); \
               const boxes = [...f.querySelectorAll('input, select, button, label')].map((e) => e.getBoundingClientRect()); \
               return {right: Math.max(r.right, ...boxes.map((x) => x.right)), width: document.documentElement.clientWidth, \
                 pageScroll: document.documentElement.scrollWidth > document.documentElement.clientWidth}; })()",
        );
        assert!(
            fit["right"].as_f64().unwrap() <= fit["width"].as_f64().unwrap() + 0.5,
            "{fit}"
        );
        assert_eq!(fit["pageScroll"], false, "{fit}");
        b.screenshot(&format!(
            "12-key-form-390-{}",
            if dark { "dark" } else { "light" }
        ));
    }
    b.set_view(1280, 900, false);
    b.click(&format!("#key-toolset-{}", offered[1]));
    b.type_into("#key-rpm", "30");
    b.click("#key-create");
    let shown = b.wait(
        "the new key",
        "document.querySelector('#key-value')?.textContent",
    );
    let shown = shown.as_str().unwrap().to_string();
    assert!(shown.starts_with("hop_") && shown.len() == 47, "{shown}");
    b.wait(
        "the key listed",
        "document.querySelectorAll('#keys-list tr[data-key-id]').length === 1",
    );
    let listed = b.eval("document.querySelector('#keys-list').textContent");
    assert!(
        !listed.as_str().unwrap().contains(&shown),
        "the key is shown once only"
    );
    let o = common::op(&d.gw.home)
        .args(["--json", "user", "key", "list", "root"])
        .output()
        .unwrap();
    let keys: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(keys[0]["label"], "browser", "{keys}");
    assert_eq!(keys[0]["approvals"], "wait", "{keys}");
    assert_eq!(keys[0]["rpm"], 30, "{keys}");
    assert_eq!(keys[0]["toolsets"], json!([offered[1]]), "{keys}");
    let row = b.eval("document.querySelector('#keys-list tr[data-key-id]').textContent");
    assert!(row.as_str().unwrap().contains(&offered[1]), "{row}");
    assert!(
        shown.starts_with(keys[0]["prefix"].as_str().unwrap()),
        "{keys}"
    );
    b.screenshot("12-api-key");
    b.eval("window.confirm = () => true; true");
    b.click("#keys-list tr[data-key-id] button.danger");
    b.wait(
        "the key revoked",
        "document.querySelector('#keys-list tr[data-key-id]')?.textContent.includes('revoked')",
    );
}

/// A `wait` key of alice's sends `[danger]` on its own thread; the call
/// blocks until someone answers the approval. Its (status, body).
fn spawn_waiting_key_call(d: &Dashboard) -> std::thread::JoinHandle<(u16, String)> {
    let o = common::op(&d.gw.home)
        .args([
            "--json",
            "user",
            "key",
            "create",
            "alice",
            "--approvals",
            "wait",
            "--label",
            "nightly <b>build</b>",
        ])
        .output()
        .unwrap();
    let wait_key = serde_json::from_slice::<Value>(&o.stdout).unwrap()["key"]
        .as_str()
        .unwrap()
        .to_string();
    fs::set_permissions(&d.gw.danger_target, fs::Permissions::from_mode(0o600)).unwrap();
    let url = format!("{}/v1/chat/completions", d.server.base);
    std::thread::spawn(move || {
        common::block_on(async move {
            let c = hermes_operator::net::client_builder().build().unwrap();
            let models: Value = c
                .get(url.replace("/chat/completions", "/models"))
                .bearer_auth(&wait_key)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let model = models["data"][0]["id"].as_str().unwrap().to_string();
            let r = c
                .post(url)
                .bearer_auth(wait_key)
                .json(&json!({"model": model, "messages": [{"role": "user", "content": "[danger] open it up"}]}))
                .timeout(Duration::from_secs(120))
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap_or_default())
        })
    })
}

/// Approvals: a key's waiting command answered without the chat open.
fn step_key_approval_answered_in_the_dashboard(d: &mut Dashboard) {
    let client_call = spawn_waiting_key_call(d);
    let b = &mut d.b;
    b.click("#nav-approvals");
    let cmd = b.wait_for(
        "the waiting approval",
        "document.querySelector('.card.approval .command')?.textContent",
        Duration::from_secs(60),
    );
    assert!(cmd.as_str().unwrap().contains("chmod 777"), "{cmd}");
    // The nav counts what waits for this user's answer (issue 22), at
    // both widths and in both colour schemes.
    for (w, h, dark) in [
        (1280, 900, false),
        (1280, 900, true),
        (390, 844, false),
        (390, 844, true),
    ] {
        b.set_view(w, h, dark);
        let badge = b.wait_for(
            "the nav's approval count",
            "(() => { const c = document.querySelector('#nav-approvals #approvals-count'); \
             return c && {count: c.firstChild.textContent, name: document.querySelector('#nav-approvals').textContent, \
               color: getComputedStyle(c).color, bg: getComputedStyle(c).backgroundColor}; })()",
            Duration::from_secs(30),
        );
        assert_eq!(badge["count"], "1", "{w}px: {badge}");
        assert_eq!(badge["name"], "Approvals 1 waiting", "{w}px: {badge}");
        assert_ne!(badge["color"], badge["bg"], "{w}px: {badge}");
        // The card says who asked, with which key (label as text, the
        // prefix on one line) and what the turn's message was (issue 22).
        let card = b.eval(
            "(() => { const c = document.querySelector('.card.approval'); \
               const p = c.querySelector('.asked-by code.prefix'); const r = p.getBoundingClientRect(); \
               const lh = parseFloat(getComputedStyle(p).lineHeight) || 20; \
               const cr = c.getBoundingClientRect(); \
               return {user: c.querySelector('.asked-user').textContent, \
                 label: c.querySelector('.key-label').textContent, bold: c.querySelectorAll('b').length, \
                 prefix: p.textContent, prefixLines: Math.round(r.height / lh), \
                 message: c.querySelector('.asked-message').textContent, \
                 inside: cr.right <= document.documentElement.clientWidth + 0.5, \
                 pageScroll: document.documentElement.scrollWidth > document.documentElement.clientWidth}; })()",
        );
        assert_eq!(card["user"], "alice", "{w}px: {card}");
        assert_eq!(card["label"], "nightly <b>build</b>", "{w}px: {card}");
        assert_eq!(card["bold"], 0, "{w}px: the label is text: {card}");
        let prefix = card["prefix"].as_str().unwrap();
        assert!(
            prefix.starts_with("hop_") && prefix.ends_with('…'),
            "{w}px: {card}"
        );
        assert_eq!(card["prefixLines"], 1, "{w}px: {card}");
        assert_eq!(card["message"], "[danger] open it up", "{w}px: {card}");
        assert_eq!(card["inside"], true, "{w}px: {card}");
        assert_eq!(card["pageScroll"], false, "{w}px: {card}");
        b.screenshot(&format!(
            "13-approvals-{w}-{}",
            if dark { "dark" } else { "light" }
        ));
    }
    b.set_view(1280, 900, false);
    b.click(".card.approval button[data-choice=once]");
    b.wait(
        "the list emptied",
        "!!document.querySelector('#approvals-empty')",
    );
    b.wait(
        "the nav's count gone",
        "document.querySelector('#nav-approvals')?.textContent === 'Approvals'",
    );
    let (status, body) = client_call.join().unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        d.gw.danger_target_mode() & 0o777,
        0o777,
        "approved in the dashboard, it ran"
    );
}

/// Events, live (issue 22): with "Live" on, an event written by another
/// process (the CLI) appears on top without a reload, marked new; a filter
/// keeps applying to what arrives. At both widths, light and dark.
fn step_live_events_follow_the_log(d: &mut Dashboard) {
    let b = &mut d.b;
    b.click("#nav-events");
    b.wait(
        "the event list",
        "!!document.querySelector('#events-list tbody tr')",
    );
    b.click("#events-live");
    b.wait(
        "the live status",
        "document.querySelector('#events-status').textContent.includes('Live')",
    );
    for (i, (w, h, dark)) in [
        (1280, 900, false),
        (1280, 900, true),
        (390, 844, false),
        (390, 844, true),
    ]
    .into_iter()
    .enumerate()
    {
        b.set_view(w, h, dark);
        let name = format!("live{i}");
        add_user(&d.gw.home, &name, "user");
        let top = b.wait_for(
            &format!("{name}'s user_created on top at {w}px"),
            &format!(
                "(() => {{ const r = document.querySelector('#events-list tbody tr'); \
                   return r && r.dataset.type === 'user_created' && r.textContent.includes({}) \
                   && {{fresh: r.classList.contains('fresh'), status: document.querySelector('#events-status').textContent}}; }})()",
                js_str(&format!("username: {name}"))
            ),
            Duration::from_secs(30),
        );
        assert_eq!(top["fresh"], true, "{top}");
        assert!(top["status"].as_str().unwrap().contains("1 new"), "{top}");
        let problems = b.eval(LAYOUT_PROBLEMS);
        assert_eq!(problems, json!([]), "live events at {w}px (dark {dark})");
        b.screenshot(&format!(
            "15-live-events-{w}-{}",
            if dark { "dark" } else { "light" }
        ));
    }
    // A filter applies to what arrives: with type=login, a new account's
    // user_created does not show; the next login does.
    b.set_view(1280, 900, false);
    b.eval(
        "document.querySelector('#events-type').value = 'login'; \
         document.querySelector('#events-filters').requestSubmit(); true",
    );
    b.wait(
        "only logins",
        "[...document.querySelectorAll('#events-list tbody tr')].every((r) => r.dataset.type === 'login')",
    );
    let before = b.eval("document.querySelector('#events-list tbody tr').dataset.seq");
    add_user(&d.gw.home, "filtered", "user");
    let server = &d.server;
    let login = common::block_on(async move {
        common::serve::login(
            &hermes_operator::net::client_builder().build().unwrap(),
            server,
            "filtered",
        )
        .await
    });
    assert!(login["access_token"].is_string(), "{login}");
    let top = b.wait_for(
        "the new login on top",
        "(() => { const r = document.querySelector('#events-list tbody tr'); \
           return r && r.textContent.includes('username: filtered') && r.dataset.type; })()",
        Duration::from_secs(30),
    );
    assert_eq!(top, "login");
    let types = b
        .eval("[...document.querySelectorAll('#events-list tbody tr')].map((r) => r.dataset.type)");
    assert!(
        types.as_array().unwrap().iter().all(|t| t == "login"),
        "{types} (first before: {before})"
    );
    // Off again: the pager is back.
    b.click("#events-live");
    b.wait(
        "live off",
        "!document.querySelector('#events-status').textContent.includes('Live')",
    );
}

/// What "usable at 390 px" means, checked on the page as it is: nothing
/// sideways off screen (a wide table's rows become cards, each cell named by
/// its column), every nav tab on screen, every label on its input's line or
/// just above it, a key prefix on one line. A list of what is wrong.
pub(crate) const LAYOUT_PROBLEMS: &str = "(() => {
  const W = document.documentElement.clientWidth;
  const bad = [];
  if (document.documentElement.scrollWidth > W) bad.push('the page scrolls sideways: ' + document.documentElement.scrollWidth);
  for (const a of document.querySelectorAll('#nav a')) {
    const r = a.getBoundingClientRect();
    if (r.left < 0 || r.right > W + 0.5) bad.push('nav tab off screen: ' + a.textContent);
  }
  const scrolls = (e) => { for (let p = e.parentElement; p && p.tagName !== 'MAIN'; p = p.parentElement) {
    if (['auto', 'scroll', 'hidden'].includes(getComputedStyle(p).overflowX)) return true; } return false; };
  for (const e of document.querySelectorAll('main *')) {
    const r = e.getBoundingClientRect();
    if ((r.width === 0 && r.height === 0) || scrolls(e) || e.closest('thead')) continue;
    if (r.right > W + 0.5) bad.push('off screen: ' + e.tagName + '.' + e.className + '#' + e.id + ' right ' + Math.round(r.right));
  }
  for (const box of document.querySelectorAll('main .table-box')) {
    if (W < 600 && box.scrollWidth > box.clientWidth + 1) bad.push('a table scrolls sideways: ' + box.scrollWidth);
  }
  for (const l of document.querySelectorAll('main label[for]')) {
    const c = document.getElementById(l.htmlFor);
    if (!c || !l.getClientRects().length || !c.getClientRects().length || l.classList.contains('visually-hidden')) continue;
    const a = l.getBoundingClientRect(), b = c.getBoundingClientRect();
    const sameLine = a.bottom > b.top && a.top < b.bottom;
    const above = a.bottom <= b.top + 1 && b.top - a.bottom < 16 && Math.abs(a.left - b.left) < 4;
    if (!sameLine && !above) bad.push('label apart from its input: ' + l.textContent);
  }
  for (const p of document.querySelectorAll('main code.prefix')) {
    const lh = parseFloat(getComputedStyle(p).lineHeight) || 20;
    if (p.getBoundingClientRect().height > lh * 1.5) bad.push('key prefix wraps: ' + p.textContent);
  }
  // What a person reads: no value rendered as a JS placeholder.
  for (const e of document.querySelectorAll('body *')) {
    if (e.children.length || !e.getClientRects().length) continue;
    const t = e.textContent.trim();
    if (/^(null|undefined|NaN)$/.test(t) || /\\b(undefined|NaN)\\b/.test(t)) bad.push('placeholder text shown: ' + e.tagName + ' ' + t.slice(0, 60));
  }
  if (W < 600) for (const c of document.querySelectorAll('main .table-box tbody td, main .table-box tbody th')) {
    if (c.dataset.label && c.getClientRects().length && getComputedStyle(c, '::before').content !== JSON.stringify(c.dataset.label))
      bad.push('a cell without its column name: ' + c.dataset.label);
  }
  return bad;
})()";

/// Every view an admin sees, with the data the steps before made, at 390 and
/// 1280 px in both colour schemes: usable, not just free of sideways
/// scrolling (issue 22), and axe finds nothing serious.
fn step_every_view_usable_on_a_phone(d: &mut Dashboard) {
    let sid = d.sid.clone();
    let axe = axe_core_js();
    d.b.eval(&format!("{axe}\n;true"));
    let views: [(&str, &str); 10] = [
        ("#/chat", "#chat-input"),
        ("#/usage", "#usage-total"),
        ("#/approvals", "#approvals-empty"),
        ("#/sessions", "main .table-box tbody tr"),
        ("#/audit", "#usage-table tbody tr"),
        ("#/events", "#events-list tbody tr"),
        ("#/users", "main .users tbody tr"),
        ("#/account", "#keys-list tbody tr"),
        ("#/user/alice", "main .table-box tbody tr"),
        ("", ".timeline .ev"),
    ];
    for (w, h, dark) in [
        (390, 844, false),
        (390, 844, true),
        (1280, 900, false),
        (1280, 900, true),
    ] {
        d.b.set_view(w, h, dark);
        for (hash, ready) in views {
            let hash = if hash.is_empty() {
                format!("#/replay/{sid}")
            } else {
                hash.to_string()
            };
            d.b.eval(&format!("location.hash = {}; true", js_str(&hash)));
            d.b.wait_for(
                &format!("{hash} at {w}px"),
                &format!("!!document.querySelector({})", js_str(ready)),
                Duration::from_secs(30),
            );
            let problems = d.b.eval(LAYOUT_PROBLEMS);
            let shot = format!(
                "14-layout-{}-{w}-{}",
                hash.trim_start_matches("#/").replace('/', "-"),
                if dark { "dark" } else { "light" }
            );
            d.b.screenshot(&shot);
            assert_eq!(
                problems,
                json!([]),
                "{hash} at {w}px (dark {dark}): see {shot}.png"
            );
            let found = d.b.eval(AXE_SERIOUS);
            assert_eq!(found, json!([]), "axe on {hash} at {w}px (dark {dark})");
        }
    }
    // On a phone, a session row is a card that names each value.
    d.b.set_view(390, 844, false);
    d.b.eval("location.hash = '#/events'; true");
    let cell = d.b.wait_for(
        "an event row as a card",
        "(() => { const c = document.querySelector('#events-list tbody td[data-label=\"Type\"]'); \
           return c && getComputedStyle(c, '::before').content; })()",
        Duration::from_secs(30),
    );
    assert_eq!(cell, "\"Type\"");
    d.b.set_view(1280, 900, false);
}

/// The page never broke the CSP nor threw; then the server stops first.
fn step_console_clean(mut d: Dashboard) {
    let console = d.b.console_lines();
    let bad: Vec<&String> = console
        .iter()
        .filter(|l| {
            l.starts_with("EXCEPTION")
                || l.contains("Content Security Policy")
                || l.contains("Refused to")
                || l.starts_with("console.error")
                // Failed loads other than the 401s and the 403 we provoked.
                || (l.contains("Failed to load resource")
                    && !l.contains("status of 401")
                    && !l.contains("status of 403"))
        })
        .collect();
    assert!(
        bad.is_empty(),
        "console errors:\n{bad:#?}\n(all: {console:#?})"
    );
    eprintln!(
        "dashboard test: done in {:.1?}; screenshots in {}",
        d.t0.elapsed(),
        d.artifacts.display()
    );
    let Dashboard { b, server, gw, .. } = d;
    drop(server);
    drop(b);
    drop(gw);
}

/// axe-core's serious and critical violations on the page (axe injected
/// before), each with the first nodes it names: `[]` when there are none.
const AXE_SERIOUS: &str = "axe.run(document, {resultTypes: ['violations']}).then((r) => r.violations \
    .filter((v) => v.impact === 'serious' || v.impact === 'critical') \
    .map((v) => ({id: v.id, impact: v.impact, help: v.help, \
       nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' ') + ': ' + (n.any[0]?.message || ''))})))";

/// axe-core, the accessibility checker, from npm (pinned), unpacked once
/// into the test cache (like the Hermes venvs): never fetched from a CDN,
/// injected into the page over CDP. Without npm the test FAILS.
fn axe_core_js() -> String {
    const VERSION: &str = "4.10.3";
    let cache = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
        .join(".cache/hermes-operator-test")
        .join(format!("axe-core-{VERSION}"));
    let js = cache.join("package/axe.min.js");
    if !js.exists() {
        let tmp = tempfile::tempdir().unwrap();
        let o = Command::new("npm")
            .args([
                "pack",
                &format!("axe-core@{VERSION}"),
                "--silent",
                "--pack-destination",
            ])
            .arg(tmp.path())
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| {
                panic!("npm is needed for the accessibility check (apt-get install -y npm): {e}")
            });
        assert!(
            o.status.success(),
            "`npm pack axe-core@{VERSION}` failed (needs the npm registry):\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
        let tgz = tmp.path().join(format!("axe-core-{VERSION}.tgz"));
        let unpacked = tmp.path().join("x");
        fs::create_dir_all(&unpacked).unwrap();
        let st = Command::new("tar")
            .arg("xzf")
            .arg(&tgz)
            .arg("-C")
            .arg(&unpacked)
            .status()
            .unwrap();
        assert!(st.success(), "cannot unpack {}", tgz.display());
        fs::create_dir_all(cache.parent().unwrap()).unwrap();
        // Another run may have won the race: either copy is the same.
        let _ = fs::rename(&unpacked, &cache);
    }
    fs::read_to_string(&js).unwrap_or_else(|e| panic!("{}: {e}", js.display()))
}

/// A fresh install (no Hermes, no state.db yet): every view of every role
/// at 1280×900 and 390×844, light and dark, loads without an error box,
/// shows the calm "no state.db yet" notice, never scrolls sideways, and
/// axe-core finds no serious or critical accessibility violation. A
/// screenshot of each goes to `test-artifacts/dashboard-fresh/`.
#[test]
fn fresh_install_every_view_every_role_both_widths_light_and_dark() {
    let chromium = chromium_path();
    let axe = axe_core_js();
    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("test-artifacts/dashboard-fresh");
    let _ = fs::remove_dir_all(&artifacts);
    fs::create_dir_all(&artifacts).unwrap();
    let home = common::TestHome::new();
    configure(home.path(), "");
    let roles = [
        ("root", "admin"),
        ("audrey", "auditor"),
        ("alice", "user"),
        ("vera", "viewer"),
    ];
    for (n, r) in roles {
        add_user(home.path(), n, r);
    }
    let server = Server::start(home.path());
    let mut b = Browser::launch(&chromium, &artifacts);
    b.open(&format!("{}/", server.base));
    let mut checked = 0;
    for (w, h, dark) in [
        (1280, 900, false),
        (1280, 900, true),
        (390, 844, false),
        (390, 844, true),
    ] {
        b.set_view(w, h, dark);
        let scheme = if dark { "dark" } else { "light" };
        for (user, role) in roles {
            b.log_in(user, TEST_PASSWORD);
            b.wait(
                "the header",
                &format!(
                    "document.querySelector('#whoami')?.textContent === {}",
                    js_str(user)
                ),
            );
            // Hash navigation keeps the page: inject axe once per login.
            b.eval(&format!("{axe}\n;true"));
            let views = b.eval(
                "[...document.querySelectorAll('#nav a')].map((a) => a.getAttribute('href'))",
            );
            let views: Vec<String> = views
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect();
            assert!(views.len() >= 2, "{role}: {views:?}");
            for v in &views {
                b.eval(&format!("location.hash = {}; true", js_str(v)));
                let name = v.trim_start_matches("#/");
                b.wait(
                    &format!("{role} {name} at {w}px {scheme}"),
                    &format!("document.querySelector('#view-{name}')?.dataset.loaded === 'yes'"),
                );
                let r = b.eval(
                    "({errors: [...document.querySelectorAll('.error')].map((e) => e.textContent), \
                       notice: document.querySelector('#state-notice')?.textContent || '', \
                       scroll: document.documentElement.scrollWidth, width: window.innerWidth, \
                       title: document.title})",
                );
                let what = format!("{role} {name} at {w}px {scheme}");
                assert_eq!(r["errors"], json!([]), "{what}: {r}");
                assert!(
                    r["notice"].as_str().unwrap().contains("has not written"),
                    "{what}: {r}"
                );
                assert!(
                    r["scroll"].as_u64().unwrap() <= r["width"].as_u64().unwrap(),
                    "{what} scrolls sideways: {r}"
                );
                assert!(
                    r["title"].as_str().unwrap().ends_with("· hermes-operator"),
                    "{what}: {r}"
                );
                let found = b.eval(AXE_SERIOUS);
                assert_eq!(found, json!([]), "axe on {what}");
                b.screenshot(&format!("{w}-{scheme}-{role}-{name}"));
                checked += 1;
            }
            b.log_out();
        }
    }
    // Assistant replies are Markdown, rendered inert: no element from the text.
    b.log_in("alice", TEST_PASSWORD);
    b.wait(
        "alice's header",
        "document.querySelector('#whoami')?.textContent === 'alice'",
    );
    let md = b.eval(
        "import('./markdown.js').then(({markdown}) => { const d = document.createElement('div'); \
           d.appendChild(markdown('# Title\\n**bold** and *it* <script>window.__x=1</script> \
             <img src=x onerror=\"window.__x=2\"> [ok](https://example.com/a) [bad](javascript:window.__x=3)\\n\\n\
             - one\\n- two\\n\\n```html\\n<b>code</b>\\n```')); \
           document.body.appendChild(d); \
           return new Promise((r) => setTimeout(() => r({ \
             injected: d.querySelectorAll('script, img, b, iframe').length, \
             strong: d.querySelectorAll('strong').length, em: d.querySelectorAll('em').length, \
             items: d.querySelectorAll('ul li').length, code: d.querySelector('pre code')?.textContent, \
             heading: d.querySelector('h3')?.textContent, \
             links: [...d.querySelectorAll('a')].map((a) => [a.getAttribute('href'), a.rel]), \
             text: d.textContent, x: window.__x || 0}), 200)); })",
    );
    assert_eq!(md["injected"], 0, "{md}");
    assert_eq!(
        (
            md["strong"].as_i64(),
            md["em"].as_i64(),
            md["items"].as_i64()
        ),
        (Some(1), Some(1), Some(2)),
        "{md}"
    );
    assert_eq!(md["code"], "<b>code</b>", "{md}");
    assert_eq!(md["heading"], "Title", "{md}");
    assert_eq!(
        md["links"],
        json!([["https://example.com/a", "noopener noreferrer"]]),
        "{md}"
    );
    assert!(
        md["text"]
            .as_str()
            .unwrap()
            .contains("<script>window.__x=1</script>"),
        "{md}"
    );
    assert_eq!(md["x"], 0, "{md}");
    b.log_out();
    // admin 8 views, auditor 5, user 5, viewer 3 (Usage for all); four ways each.
    assert_eq!(checked, 4 * 21, "{checked}");
}

/// Hermes' own schema (0.19), for a state.db written by the test itself.
const HERMES_0_19_SCHEMA: &str = include_str!("../../src/store/state/hermes_0_19_schema.sql");

/// The first message of the long untitled session.
const FIRST_MESSAGE: &str =
    "Why is the deploy of the blue service so slow today, and what changed since Monday?";

/// A state.db with two of `user_id`'s operator sessions, as Hermes 0.19
/// leaves API sessions: `long` untitled with `n` messages (the first a
/// user's), `titled` with a title and one message.
fn state_with_sessions(home: &Path, user_id: &str, long: &str, titled: &str, n: usize) {
    let c = rusqlite::Connection::open(home.join("state.db")).unwrap();
    c.execute_batch(HERMES_0_19_SCHEMA).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    for (id, title, at) in [
        (long, None, now - 60.0),
        (titled, Some("Quarterly budget review"), now - 3600.0),
    ] {
        c.execute(
            "INSERT INTO sessions (id, source, user_id, model, title, started_at, message_count) \
             VALUES (?1, 'operator', ?2, 'fake-model', ?3, ?4, ?5)",
            rusqlite::params![id, user_id, title, at, if title.is_some() { 1 } else { n }],
        )
        .unwrap();
    }
    for i in 0..n {
        let (role, text) = if i == 0 {
            ("user", FIRST_MESSAGE.to_string())
        } else if i % 2 == 0 {
            (
                "user",
                format!("Follow-up question number {i}: and then what?"),
            )
        } else {
            ("assistant", format!("Answer {i}: a paragraph long enough to take a few lines on a phone, \
                                   so that the conversation is taller than any screen it is shown on."))
        };
        c.execute(
            "INSERT INTO messages (session_id, role, content, timestamp) VALUES (?1, ?2, ?3, ?4)",
            rusqlite::params![long, role, text, now - 60.0 + i as f64],
        )
        .unwrap();
    }
    c.execute(
        "INSERT INTO messages (session_id, role, content, timestamp) VALUES (?1, 'user', 'numbers please', ?2)",
        rusqlite::params![titled, now - 3600.0],
    )
    .unwrap();
}

/// Issue 22, at 1280×900 and 390×844, light and dark, on a real install's
/// header (not a demo) with Hermes down (a closed port) and sessions as
/// Hermes 0.19 leaves them (untitled):
/// - the header has no demo marker and no stray "null"/"undefined"/"false";
/// - an untitled session is named by its first message (muted, marked as a
///   fallback) in the list and on its page; search finds titles;
/// - a chat turn with Hermes down shows the server's error (a new session:
///   the JSON error status; a continued one: the stream's `error` event)
///   and clears "Sending…";
/// - in a session longer than the screen, the newest item ends up above the
///   sticky message box.
///
/// axe-core finds no serious or critical violation on the views shown.
#[test]
fn issue_22_header_titles_chat_errors_and_following_both_widths_light_and_dark() {
    let chromium = chromium_path();
    let axe = axe_core_js();
    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("test-artifacts/dashboard-issue-22");
    let _ = fs::remove_dir_all(&artifacts);
    fs::create_dir_all(&artifacts).unwrap();
    let home = common::TestHome::new();
    configure(home.path(), "");
    let alice = add_user(home.path(), "alice", "user");
    let (long, titled) = ("op_0000000a11ce", "op_0000000b0b00");
    state_with_sessions(home.path(), &alice, long, titled, 40);
    // The CLI names it the same way (one implementation in ops::sessions).
    let listed = common::op_json(home.path(), &["session", "list"]);
    let row = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == long)
        .unwrap_or_else(|| panic!("{listed}"));
    assert_eq!(row["title"], Value::Null, "{row}");
    assert_eq!(row["display_title_fallback"], true, "{row}");
    assert!(
        row["display_title"]
            .as_str()
            .unwrap()
            .starts_with("Why is the deploy of the blue service"),
        "{row}"
    );
    // And `session search` finds the title as the dashboard's search does.
    let o = common::op(home.path())
        .args(["session", "search", "budget"])
        .output()
        .unwrap();
    let out = common::stdout(&o);
    assert!(o.status.success(), "{}", common::show(&o));
    assert!(
        out.contains(titled) && out.contains("Quarterly budget review"),
        "{out}"
    );
    let server = Server::start(home.path());
    let mut b = Browser::launch(&chromium, &artifacts);
    b.open(&format!("{}/", server.base));
    for (w, h, dark) in [
        (1280, 900, false),
        (1280, 900, true),
        (390, 844, false),
        (390, 844, true),
    ] {
        b.set_view(w, h, dark);
        let what = format!("{w}px {}", if dark { "dark" } else { "light" });
        b.log_in("alice", TEST_PASSWORD);
        b.wait(
            "alice's header",
            "document.querySelector('#whoami')?.textContent === 'alice' \
             && document.querySelector('.chat')?.dataset.ready === 'yes'",
        );
        b.eval(&format!("{axe}\n;true"));

        // --- 1. the header of a real install: no demo marker, no stray text
        let head = b.eval(
            "({text: document.querySelector('header.top').innerText, \
               demo: !!document.querySelector('#demo-badge'), \
               loose: [...document.querySelector('#who').childNodes].filter((n) => n.nodeType !== 1) \
                 .map((n) => n.textContent)})",
        );
        let text = head["text"].as_str().unwrap();
        for bad in ["null", "undefined", "false", "Demo"] {
            assert!(!text.contains(bad), "{what}: {bad:?} in the header: {head}");
        }
        assert_eq!(head["demo"], false, "{what}: {head}");
        assert_eq!(
            head["loose"],
            json!([]),
            "{what}: text outside elements: {head}"
        );

        // --- 2. untitled sessions named by their first message -------------
        b.eval("location.hash = '#/sessions'; true");
        let rows = b.wait(
            "both sessions listed",
            &format!(
                "document.querySelector('tr[data-session-id={long}]') && document.querySelector('tr[data-session-id={titled}]') \
                 && (() => {{ const t = (id) => document.querySelector(`tr[data-session-id=${{id}}] td a .title`); \
                   const f = t({long}), g = t({titled}); \
                   return {{fallback: f.textContent, fclass: f.className, fcolor: getComputedStyle(f).color, \
                            ftip: f.title, title: g.textContent, tclass: g.className, tcolor: getComputedStyle(g).color}}; }})()",
                long = js_str(long),
                titled = js_str(titled)
            ),
        );
        // The first 60 characters, clipped, in quotes.
        let clipped: String = FIRST_MESSAGE.chars().take(60).collect();
        assert_eq!(
            rows["fallback"].as_str().unwrap(),
            format!("“{clipped}…”"),
            "{what}: {rows}"
        );
        assert_eq!(rows["fclass"], "title fallback", "{what}: {rows}");
        assert!(
            rows["ftip"].as_str().unwrap().contains("first message"),
            "{rows}"
        );
        assert_eq!(rows["title"], "Quarterly budget review", "{what}: {rows}");
        assert_eq!(rows["tclass"], "title", "{what}: {rows}");
        assert_ne!(
            rows["fcolor"], rows["tcolor"],
            "{what}: the fallback is muted: {rows}"
        );
        let found = b.eval(
            "axe.run(document, {resultTypes: ['violations']}).then((r) => r.violations \
               .filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => v.id))",
        );
        assert_eq!(found, json!([]), "axe on the session list at {what}");
        b.screenshot(&format!(
            "{w}-{}-sessions",
            if dark { "dark" } else { "light" }
        ));
        b.eval(&format!("location.hash = '#/session/{long}'; true"));
        let h1 = b.wait(
            "the untitled session's page",
            "document.querySelector('#view-session')?.dataset.loaded === 'yes' \
             && document.querySelector('#view-session h1 .title.fallback')?.textContent",
        );
        assert!(
            h1.as_str().unwrap().starts_with("“Why is the deploy"),
            "{what}: {h1}"
        );
        // Search: a word of a title finds the session (it is in no message).
        b.eval("location.hash = '#/search/budget'; true");
        let hit = b.wait(
            "the title hit",
            "document.querySelector('#view-search')?.dataset.loaded === 'yes' \
             && [...document.querySelectorAll('#search-titles li')].map((li) => [li.dataset.sessionId, li.querySelector('a').textContent])",
        );
        assert_eq!(hit, json!([[titled, "Quarterly budget review"]]), "{what}");
        b.eval("location.hash = '#/search/deploy'; true");
        let hit = b.wait(
            "the message hit",
            &format!(
                "document.querySelector('#view-search')?.dataset.loaded === 'yes' \
                 && !!document.querySelector('#search-hits li[data-session-id={}]') \
                 && !document.querySelector('#search-titles')",
                js_str(long)
            ),
        );
        assert_eq!(hit, true);

        // --- 3. chat with Hermes down: the error shown, "Sending…" cleared --
        b.eval("location.hash = '#/chat'; true");
        b.wait(
            "a new-session chat",
            "location.hash === '#/chat' && document.querySelector('.chat')?.dataset.ready === 'yes' \
             && document.querySelector('.chat').dataset.sessionId === ''",
        );
        b.type_into("#chat-input", "hello?");
        b.click("#chat-send");
        let r = b.wait(
            "the new session's error",
            "document.querySelector('.chat').dataset.turn === 'error' && document.querySelector('.chat').dataset.busy === 'no' \
             && ({error: document.querySelector('#transcript .event.error').textContent, \
                  status: document.querySelector('#chat-status').textContent, \
                  send: document.querySelector('#chat-send').disabled})",
        );
        assert!(
            r["error"]
                .as_str()
                .unwrap()
                .starts_with("Hermes (the agent) is unavailable: Hermes is not reachable"),
            "{what}: {r}"
        );
        assert_eq!(r["status"], "The message was not sent.", "{what}: {r}");
        assert_eq!(r["send"], false, "{what}: {r}");

        // --- 3 and 4: a long session continued: the stream's error event,
        // and the newest item above the sticky message box ------------------
        b.eval(&format!("location.hash = '#/chat/{long}'; true"));
        b.wait(
            "the long session in the chat",
            &format!(
                "document.querySelector('.chat')?.dataset.ready === 'yes' \
                 && document.querySelector('.chat').dataset.sessionId === {} \
                 && document.querySelectorAll('#transcript .msg').length === 40",
                js_str(long)
            ),
        );
        let tall = b.eval(
            "document.querySelector('#transcript').getBoundingClientRect().height > 2 * window.innerHeight",
        );
        assert_eq!(tall, true, "{what}: the session is longer than the screen");
        // Read from the top first: sending brings the end back.
        b.eval("window.scrollTo(0, 0); true");
        b.type_into("#chat-input", "and now?");
        b.click("#chat-send");
        let r = b.wait(
            "the continued session's error",
            "document.querySelector('.chat').dataset.turn === 'error' && document.querySelector('.chat').dataset.busy === 'no' \
             && (() => { const last = document.querySelector('#transcript').lastElementChild; \
                 const mine = [...document.querySelectorAll('#transcript .msg.user')].pop(); \
                 const box = document.querySelector('#chat-form').getBoundingClientRect(); \
                 const a = last.getBoundingClientRect(), m = mine.getBoundingClientRect(); \
                 return {error: last.classList.contains('error') && last.textContent, \
                   status: document.querySelector('#chat-status').textContent, mine: mine.textContent, \
                   lastTop: a.top, lastBottom: a.bottom, mineTop: m.top, boxTop: box.top, height: window.innerHeight, \
                   errors: document.querySelectorAll('#transcript .event.error').length}; })()",
        );
        assert!(
            r["error"]
                .as_str()
                .unwrap_or("")
                .contains("Hermes is not reachable"),
            "{what}: the stream's error event is shown: {r}"
        );
        assert_eq!(
            r["errors"], 1,
            "{what}: one error, no 'stream ended' second one: {r}"
        );
        assert_eq!(r["status"], "The turn failed.", "{what}: {r}");
        let f = |k: &str| r[k].as_f64().unwrap();
        assert!(
            f("lastTop") >= 0.0
                && f("lastBottom") <= f("boxTop") + 1.0
                && f("boxTop") <= f("height"),
            "{what}: the newest item is in view above the message box: {r}"
        );
        assert!(
            f("mineTop") >= 0.0 && f("mineTop") < f("boxTop"),
            "{what}: the message just sent is in view too: {r}"
        );
        let found = b.eval(
            "axe.run(document, {resultTypes: ['violations']}).then((r) => r.violations \
               .filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => v.id))",
        );
        assert_eq!(found, json!([]), "axe on the chat at {what}");
        b.screenshot(&format!(
            "{w}-{}-chat-long-error",
            if dark { "dark" } else { "light" }
        ));
        follow_unless_scrolled_up(&mut b, long, &what);
        b.log_out();
    }
    // The page never threw nor broke the CSP; the one failed load is the
    // new session's 502 (Hermes down), the answer under test.
    let console = b.console_lines();
    let bad: Vec<&String> = console
        .iter()
        .filter(|l| {
            l.starts_with("EXCEPTION")
                || l.contains("Content Security Policy")
                || l.contains("Refused to")
                || l.starts_with("console.error")
                || (l.contains("Failed to load resource") && !l.contains("status of 502"))
        })
        .collect();
    assert!(bad.is_empty(), "console errors:\n{bad:#?}");
    drop(server);
}

/// What the dashboard's chat reads when Hermes is down (a closed port),
/// over plain HTTP: a new session's streamed turn fails before it starts,
/// so `POST /api/chat` with `Accept: text/event-stream` answers the JSON
/// route's very status and error body (not an empty 200); a continued
/// session's stream ends with an `error` event carrying that message.
#[test]
fn streamed_chat_with_hermes_down_says_why() {
    use serve_common::{client, send, token};
    let home = common::TestHome::new();
    configure(home.path(), "");
    let alice = add_user(home.path(), "alice", "user");
    let (long, titled) = ("op_0000000a11ce", "op_0000000b0b00");
    state_with_sessions(home.path(), &alice, long, titled, 4);
    let s = Server::start(home.path());
    common::block_on(async {
        let c = client();
        let tok = token(&c, &s, "alice").await;
        let chat = |body: Value, sse: bool| {
            let rb = c.post(s.url("/api/chat")).bearer_auth(&tok).json(&body);
            send(if sse {
                rb.header("accept", "text/event-stream")
            } else {
                rb
            })
        };
        let streamed = chat(json!({"message": "hello?"}), true).await;
        let plain = chat(json!({"message": "hello?"}), false).await;
        assert_eq!(streamed.status, 502, "{}", streamed.body);
        assert_eq!(plain.status, 502, "{}", plain.body);
        let e = streamed.json();
        assert_eq!(e, plain.json(), "the same error either way");
        assert_eq!(e["error"]["code"], "unavailable", "{e}");
        assert!(
            e["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("Hermes (the agent) is unavailable: Hermes is not reachable"),
            "{e}"
        );
        // A continued session: the stream has started (its session event),
        // and its last event is the error.
        let r = chat(json!({"message": "and now?", "session_id": long}), true).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let events: Vec<(&str, Value)> = r
            .body
            .split("\n\n")
            .filter_map(|frame| {
                let name = frame.lines().find_map(|l| l.strip_prefix("event: "))?;
                let data = frame.lines().find_map(|l| l.strip_prefix("data: "))?;
                Some((name, serde_json::from_str(data).unwrap()))
            })
            .collect();
        let names: Vec<&str> = events.iter().map(|(n, _)| *n).collect();
        assert_eq!(names.first(), Some(&"session"), "{}", r.body);
        assert_eq!(names.last(), Some(&"error"), "{}", r.body);
        assert_eq!(
            names
                .iter()
                .filter(|n| **n == "error" || **n == "done")
                .count(),
            1,
            "{}",
            r.body
        );
        // Worded as the JSON route words it: Hermes' address stays in the
        // server's log.
        let last = &events.last().unwrap().1;
        let plain = chat(json!({"message": "and now?", "session_id": long}), false).await;
        assert_eq!(plain.status, 502, "{}", plain.body);
        assert_eq!(last["code"], plain.json()["error"]["code"], "{last}");
        assert_eq!(last["message"], plain.json()["error"]["message"], "{last}");
        let m = last["message"].as_str().unwrap();
        assert!(
            m.starts_with("Hermes (the agent) is unavailable: Hermes is not reachable")
                && !m.contains("127.0.0.1"),
            "{last}"
        );
        assert!(
            s.log_with("the chat turn failed").contains("127.0.0.1"),
            "what the event hides is in the server's log"
        );
    });
}

/// The end of the message box's top edge, and whether the transcript's
/// newest item lies in view above it.
const NEWEST_IN_VIEW: &str = "(() => { const last = document.querySelector('#transcript').lastElementChild; \
     const a = last.getBoundingClientRect(), box = document.querySelector('#chat-form').getBoundingClientRect(); \
     return a.top >= 0 && a.bottom <= box.top + 1; })()";

/// Item 4's "unless the reader scrolled up", with a reply streamed by the
/// test: `fetch` of `api/chat` answers a stream the test writes SSE frames
/// into (Hermes is down here; the page's own parser reads them).
fn follow_unless_scrolled_up(b: &mut Browser, session: &str, what: &str) {
    b.eval(
        "(() => { window.__realFetch = window.__realFetch || window.fetch; \
           window.fetch = (url, init) => { \
             if (!String(url).endsWith('api/chat')) return window.__realFetch(url, init); \
             const body = new ReadableStream({ start(c) { \
               window.__sse = (name, data) => c.enqueue(new TextEncoder().encode( \
                 `event: ${name}\\ndata: ${JSON.stringify(data)}\\n\\n`)); \
               window.__end = () => c.close(); } }); \
             return Promise.resolve(new Response(body, {status: 200, headers: {'content-type': 'text/event-stream'}})); }; \
           window.__sse = null; return true; })()",
    );
    b.type_into("#chat-input", "tell me more");
    b.click("#chat-send");
    b.wait("the test's stream", "!!window.__sse");
    b.eval(&format!(
        "__sse('session', {{session_id: {}, new: false}}); __sse('run_started', {{run_id: 'run_test'}}); \
         __sse('delta', {{text: 'The first words of the reply.'}}); true",
        js_str(session)
    ));
    b.wait(
        "the reply's first words in view",
        &format!("document.querySelector('#transcript .msg.assistant.streaming')?.dataset.deltas === '1' && {NEWEST_IN_VIEW}"),
    );
    // The reader scrolls up to read: the growing reply does not pull them down.
    b.eval("window.scrollTo(0, 0); true");
    b.wait("scrolled to the top", "window.scrollY === 0");
    std::thread::sleep(Duration::from_millis(200)); // the scroll event is delivered
    b.eval("__sse('delta', {text: ' More words.'.repeat(40)}); __sse('tool_started', {tool: 'terminal', preview: 'ls'}); true");
    let r = b.wait(
        "the reply grown while scrolled up",
        "document.querySelector('#transcript .event.tool') && ({y: window.scrollY, newest: \
           (() => { const a = document.querySelector('#transcript').lastElementChild.getBoundingClientRect(); \
             return a.top >= 0 && a.bottom <= window.innerHeight; })()})",
    );
    assert_eq!(
        r,
        json!({"y": 0, "newest": false}),
        "{what}: stays where the reader is"
    );
    // Back at the end: following again.
    b.eval("window.scrollTo(0, document.documentElement.scrollHeight); true");
    std::thread::sleep(Duration::from_millis(200));
    b.eval("__sse('tool_completed', {tool: 'terminal', duration: 0.5}); true");
    b.wait(
        "the newest item in view again",
        &format!(
            "document.querySelectorAll('#transcript .event.tool').length === 2 && {NEWEST_IN_VIEW}"
        ),
    );
    b.eval("__sse('done', {session_id: 'x', output: ''}); __end(); window.fetch = window.__realFetch; true");
    b.wait(
        "the faked turn done",
        "document.querySelector('.chat').dataset.turn === 'done' && document.querySelector('.chat').dataset.busy === 'no'",
    );
}

/// The Usage view (issue 22) on the events of `usage::seed` (llm_calls
/// around Berlin's switch to summer time): an admin picks three Berlin days
/// and sees bob's and alice's spend and tokens stacked per local day, a
/// legend and the totals table, at 1280 and 390 px, light and dark; no
/// number is cut (table cells, chart labels), the page never scrolls
/// sideways, axe-core finds nothing; alice sees only her own usage.
#[test]
fn usage_view_charts_and_totals_both_widths_light_and_dark() {
    let chromium = chromium_path();
    let axe = axe_core_js();
    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("test-artifacts/dashboard-usage");
    let _ = fs::remove_dir_all(&artifacts);
    fs::create_dir_all(&artifacts).unwrap();
    let home = common::TestHome::new();
    crate::usage::seed(home.path());
    let server = Server::start(home.path());
    let mut b = Browser::launch(&chromium, &artifacts);
    b.open(&format!("{}/", server.base));
    // The range, zone and grouping as a person sets them, then "Show".
    let pick = |b: &mut Browser, by: &str| {
        b.eval(&format!(
            "(() => {{ const f = document.querySelector('#usage-form'); \
               f.querySelector('#usage-since').value = '2026-03-28'; \
               f.querySelector('#usage-until').value = '2026-03-30'; \
               f.querySelector('#usage-tz').value = 'Europe/Berlin'; \
               f.querySelector('input[name=by][value={by}]').checked = true; \
               f.requestSubmit(); return true; }})()"
        ));
        b.wait(
            &format!("the Berlin usage by {by}"),
            &format!(
                "document.querySelector('#usage-result')?.dataset.by === '{by}' && \
                 document.querySelector('#usage-table caption')?.textContent.includes('2026-03-28 to before 2026-03-31 (Europe/Berlin)')"
            ),
        );
    };
    // Every row of the totals table as [label, calls, in, out, spend].
    const ROWS: &str = "[...document.querySelectorAll('#usage-table tbody tr')].map((tr) => \
        [...tr.children].map((c) => c.textContent))";
    for (w, h, dark) in [
        (1280, 900, false),
        (1280, 900, true),
        (390, 844, false),
        (390, 844, true),
    ] {
        b.set_view(w, h, dark);
        let what = format!("usage at {w}px {}", if dark { "dark" } else { "light" });
        b.log_in("root", TEST_PASSWORD);
        b.wait(
            "root's header",
            "document.querySelector('#whoami')?.textContent === 'root'",
        );
        b.eval(&format!("{axe}\n;true"));
        b.click("#nav-usage");
        b.wait(
            &what,
            "document.querySelector('#view-usage')?.dataset.loaded === 'yes'",
        );
        assert_eq!(b.eval("document.title"), "Usage · hermes-operator");
        pick(&mut b, "user");
        assert_eq!(
            b.eval(ROWS),
            json!([
                ["bob", "1", "200", "20", "$0.25"],
                ["alice", "2", "150", "15", "$0.15"],
                ["Total", "3", "350", "35", "$0.40"]
            ]),
            "{what}"
        );
        // The charts: one stacked segment per group and day with usage, in
        // the Berlin day it belongs to; their names say the totals.
        let chart = b.eval(
            "['usage-cost', 'usage-tokens'].map((id) => { const svg = document.getElementById(id); \
               return {title: svg.querySelector('title').textContent, labelled: svg.getAttribute('aria-labelledby'), \
                 segs: [...svg.querySelectorAll('rect.seg')].map((r) => [r.dataset.group, r.dataset.start, \
                   r.querySelector('title').textContent, r.getBoundingClientRect().height > 0])}; })",
        );
        assert_eq!(
            chart[0]["segs"],
            json!([
                [
                    "alice",
                    "2026-03-29T00:00:00+01:00",
                    "2026-03-29T00:00:00+01:00 · alice: $0.15",
                    true
                ],
                [
                    "bob",
                    "2026-03-30T00:00:00+02:00",
                    "2026-03-30T00:00:00+02:00 · bob: $0.25",
                    true
                ]
            ]),
            "{what}: {chart}"
        );
        assert_eq!(
            chart[1]["segs"],
            json!([
                [
                    "alice",
                    "2026-03-29T00:00:00+01:00",
                    "2026-03-29T00:00:00+01:00 · alice: 165",
                    true
                ],
                [
                    "bob",
                    "2026-03-30T00:00:00+02:00",
                    "2026-03-30T00:00:00+02:00 · bob: 220",
                    true
                ]
            ]),
            "{what}: {chart}"
        );
        let t0 = chart[0]["title"].as_str().unwrap();
        assert!(
            t0.starts_with("Spend (USD) per day in Europe/Berlin") && t0.contains("$0.40 in total"),
            "{t0}"
        );
        assert!(
            chart[1]["title"].as_str().unwrap().contains("385 in total"),
            "{chart}"
        );
        assert_eq!(chart[0]["labelled"], "usage-cost-title");
        assert_eq!(
            b.eval(
                "[...document.querySelectorAll('#usage-legend li')].map((li) => li.textContent)"
            ),
            json!(["bob", "alice"]),
            "{what}"
        );
        // Nothing cut: no page-level sideways scroll, every table number
        // whole in its cell, every chart label inside its drawing.
        let fit = b.eval(
            "({scroll: document.documentElement.scrollWidth, width: window.innerWidth, \
               cut: [...document.querySelectorAll('#usage-table td, #usage-table th')] \
                 .filter((c) => c.scrollWidth > c.clientWidth + 1).map((c) => c.textContent), \
               outside: [...document.querySelectorAll('.usage-chart text')].filter((t) => { \
                 const vb = t.ownerSVGElement.viewBox.baseVal, r = t.getBBox(); \
                 return r.x < 0 || r.x + r.width > vb.width || r.y < 0 || r.y + r.height > vb.height; }) \
                 .map((t) => t.textContent), \
               labels: document.querySelectorAll('.usage-chart text').length})",
        );
        assert!(
            fit["scroll"].as_u64().unwrap() <= fit["width"].as_u64().unwrap(),
            "{what} scrolls sideways: {fit}"
        );
        assert_eq!(fit["cut"], json!([]), "{what}: {fit}");
        assert_eq!(fit["outside"], json!([]), "{what}: {fit}");
        assert!(
            fit["labels"].as_u64().unwrap() >= 2 * (5 + 3),
            "{what}: {fit}"
        );
        let found = b.eval(
            "axe.run(document, {resultTypes: ['violations']}).then((r) => r.violations \
               .map((v) => ({id: v.id, impact: v.impact, help: v.help, \
                  nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' ') + ': ' + (n.any[0]?.message || ''))})))",
        );
        assert_eq!(found, json!([]), "axe on {what}");
        b.screenshot(&format!(
            "{w}-{}-usage-by-user",
            if dark { "dark" } else { "light" }
        ));
        // By key: alice's key and the logins' calls.
        pick(&mut b, "key");
        let rows = b.eval(ROWS);
        let rows = rows.as_array().unwrap();
        assert_eq!(rows.len(), 3, "{what}: {rows:?}");
        assert_eq!(
            rows[0],
            json!(["(login, no key)", "2", "250", "25", "$0.30"]),
            "{what}"
        );
        assert!(
            rows[1][0].as_str().unwrap().starts_with("laptop (hop_"),
            "{what}: {rows:?}"
        );
        assert_eq!(
            rows[1].as_array().unwrap()[1..],
            json!(["1", "100", "10", "$0.10"]).as_array().unwrap()[..]
        );
        b.log_out();
    }
    // A user sees only her own usage (grouped by model at first).
    b.set_view(390, 844, false);
    b.log_in("alice", TEST_PASSWORD);
    b.wait(
        "alice's header",
        "document.querySelector('#whoami')?.textContent === 'alice'",
    );
    b.click("#nav-usage");
    b.wait(
        "alice's usage",
        "document.querySelector('#view-usage')?.dataset.loaded === 'yes'",
    );
    assert_eq!(
        b.eval("document.querySelector('#usage-by input:checked').value"),
        "model"
    );
    pick(&mut b, "model");
    assert_eq!(
        b.eval(ROWS),
        json!([
            ["gpt-a", "1", "100", "10", "$0.10"],
            ["gpt-b", "1", "50", "5", "$0.05"],
            ["Total", "2", "150", "15", "$0.15"]
        ])
    );
    pick(&mut b, "user");
    assert_eq!(
        b.eval(ROWS),
        json!([
            ["alice", "2", "150", "15", "$0.15"],
            ["Total", "2", "150", "15", "$0.15"]
        ])
    );
    b.screenshot("390-light-usage-alice");
    let console = b.console_lines();
    let bad: Vec<&String> = console
        .iter()
        .filter(|l| {
            l.starts_with("EXCEPTION") || l.starts_with("console.error") || l.contains("Refused to")
        })
        .collect();
    assert!(bad.is_empty(), "console errors:\n{bad:#?}");
}
