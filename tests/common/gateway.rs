//! A REAL Hermes Agent 0.19.0 gateway (API server platform) for integration
//! tests, driven by our fake OpenAI-compatible model
//! (`tests/fixtures/fake_model.py`) on loopback.
//!
//! ```ignore
//! let gw = Gateway::start(GatewayOpts { approval_timeout_secs: 3, ..Default::default() });
//! gw.insert_operator_session("op_0123456789ab", "u_test");
//! // POST {gw.url}/v1/runs with `Authorization: Bearer {gw.key}` ...
//! let seen = gw.model_requests();
//! ```
//!
//! Layout of one gateway (all under one temp dir, removed on drop unless
//! `HERMES_OPERATOR_KEEP_TEST_HOMES=1`):
//!
//! * `root/hermes/`  = `HERMES_HOME` (`config.yaml`, `.env`, `state.db`, `logs/`);
//! * `root/home/`    = `HOME` (and the XDG dirs) of the gateway, so nothing
//!   reads or writes the real `~/.hermes`, `~/.local/state/hermes` (token-scoped
//!   gateway locks live there by default) or `~/.hermes/active_profile`;
//! * `root/tmp/`     = `TMPDIR` (the terminal tool writes `hermes-snap-*.sh` and
//!   `hermes-cwd-*.txt` into `$TMPDIR`, else `/tmp`);
//! * `root/locks/`   = `HERMES_GATEWAY_LOCK_DIR`;
//! * `root/harness/` = our logs: `gateway.out` (stdout+stderr of
//!   `hermes gateway run`), `fake_model.err`, `model_requests.jsonl`;
//! * `root/scratch/danger-target` (mode 0600 at start): the file the fake
//!   model's `[danger]` command (`chmod 777 <it>`) targets;
//!   `root/scratch/file-target.txt` (`fake-model-file-ok`): what `[file]` reads.
//!
//! Facts (Hermes 0.19.0, measured on a 2-core box):
//! * `hermes gateway run` creates `state.db` (schema 22) itself at startup,
//!   before `/health` answers, so a test can insert rows right after `start`.
//! * /health answers ~1.0 s after spawn. SIGTERM shutdown takes ~2.3 s; we
//!   SIGKILL the process group (fast; test homes are thrown away).
//! * The only per-gateway lock/pid files are `gateway.pid`/`gateway.lock` in
//!   HERMES_HOME; token-scoped platform locks live in
//!   `$XDG_STATE_HOME/hermes/gateway-locks` (or `HERMES_GATEWAY_LOCK_DIR`) but
//!   the API server does not take one. Isolated anyway (see above).
//! * A busy API port makes the gateway exit with status 78 ("non-retryable
//!   startup conflict"); `start` then retries with another port.
//! * Without `security.tirith_enabled: false` the first terminal command
//!   starts a background download of the `tirith` scanner from the network
//!   (and writes `.tirith-install-failed` offline). We disable it.
//! * `agent.api_max_retries` (Hermes default 3, with ~2.6 s and ~5.7 s
//!   back-offs, i.e. ~9 s for a model 500) defaults to 1 here.
//! * 0.22 then retries a failing provider in up to 5 "auto-recovery cycles"
//!   of growing back-off (69 s by the third): `agent.auto_recovery_cycles: 0`
//!   turns that off (0.19 has no such key and ignores it).
#![allow(dead_code)]

use super::{fixture, free_port, Gen};
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Seed `state.db` through the fixture script (`hermes_fixture.py make`)
/// before the gateway starts: `native` Hermes sessions of mixed sources plus
/// `operator` rows spread over `users`.
#[derive(Clone, Debug)]
pub struct SeedState {
    pub native: usize,
    pub operator: usize,
    pub users: Vec<String>,
    pub seed: u64,
}

#[derive(Clone, Debug)]
pub struct GatewayOpts {
    /// `approvals.timeout` (seconds). Hermes' default is 60; any int >= 0 is
    /// honoured (3 s measured: the run gets a "timed out" denial after 3.0 s).
    pub approval_timeout_secs: u32,
    /// `approvals.mode`: manual (default) | smart | off.
    pub approvals_mode: String,
    /// `platform_toolsets.api_server` (default: terminal, file, todo).
    pub toolsets: Vec<String>,
    /// `agent.api_max_retries` (Hermes' default 3; here 1 so `[fail]` fails fast).
    pub api_max_retries: u32,
    /// Appended verbatim to config.yaml (top level). Must not repeat the keys
    /// the harness writes: model, platforms, platform_toolsets, approvals,
    /// security, agent.
    pub extra_yaml: String,
    /// Extra env vars for `hermes gateway run` (e.g. HERMES_ACCEPT_HOOKS=1).
    pub env: Vec<(String, String)>,
    /// Extra env vars for the fake model (e.g. FAKE_MODEL_SLOW_SECONDS=5).
    pub model_env: Vec<(String, String)>,
    /// Pre-populate state.db (through Hermes' own SessionDB) before start.
    pub seed_state: Option<SeedState>,
    /// API_SERVER_KEY; default a random 32-hex-char key (must be >= 16 chars).
    pub key: Option<String>,
    /// How long to wait for /health (default 60 s).
    pub startup_timeout: Duration,
    /// Run Hermes as this account (the test must be root): the gateway's
    /// whole temp dir becomes its, and the directories above the venv and
    /// our binary are made enterable (`accounts::enterable`).
    pub run_as: Option<String>,
}

impl Default for GatewayOpts {
    fn default() -> Self {
        GatewayOpts {
            approval_timeout_secs: 60,
            approvals_mode: "manual".into(),
            toolsets: vec!["terminal".into(), "file".into(), "todo".into()],
            api_max_retries: 1,
            extra_yaml: String::new(),
            env: Vec::new(),
            model_env: Vec::new(),
            seed_state: None,
            key: None,
            startup_timeout: Duration::from_secs(60),
            run_as: None,
        }
    }
}

pub struct Gateway {
    /// Which Hermes runs it.
    pub gen: Gen,
    /// HERMES_HOME of this gateway (`root/hermes`).
    pub home: PathBuf,
    /// `http://127.0.0.1:<port>` (no trailing slash).
    pub url: String,
    pub port: u16,
    /// API_SERVER_KEY (Bearer).
    pub key: String,
    /// One JSON line per request the fake model received.
    pub model_log: PathBuf,
    /// `http://127.0.0.1:<port>/v1` of the fake model.
    pub model_url: String,
    /// The `[danger]` command is `chmod 777 <danger_target>`; created 0600.
    pub danger_target: PathBuf,
    /// Our own logs (gateway.out, fake_model.err).
    pub logs_dir: PathBuf,
    /// Seconds from spawning `hermes gateway run` to a good /health
    /// (last attempt).
    pub startup_secs: f64,
    /// The fixture's report when `seed_state` was given.
    pub seeded: Option<serde_json::Value>,
    opts: GatewayOpts,
    root: Option<tempfile::TempDir>,
    gateway: Option<Child>,
    model: Option<Child>,
}

fn random_hex(n_bytes: usize) -> String {
    let mut buf = vec![0u8; n_bytes];
    if let Ok(mut f) = fs::File::open("/dev/urandom") {
        let _ = f.read_exact(&mut buf);
    }
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    buf.iter()
        .enumerate()
        .map(|(i, b)| format!("{:02x}", b ^ ((nanos >> ((i % 16) * 8)) as u8)))
        .collect()
}

fn kill_group(child: &mut Child, sig: libc::c_int) {
    let pid = child.id() as libc::pid_t;
    // The child is the leader of its own process group (process_group(0)).
    unsafe {
        libc::kill(-pid, sig);
    }
}

fn tail(path: &Path, lines: usize) -> String {
    let s = fs::read_to_string(path)
        .unwrap_or_else(|e| format!("<cannot read {}: {e}>", path.display()));
    let v: Vec<&str> = s.lines().collect();
    v[v.len().saturating_sub(lines)..].join("\n")
}

/// Tiny blocking HTTP/1.1 client (loopback, `Connection: close`).
/// Returns (status, body). `None` on connection failure.
pub fn http_request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
    timeout: Duration,
) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), timeout).ok()?;
    s.set_read_timeout(Some(timeout)).ok()?;
    s.set_write_timeout(Some(timeout)).ok()?;
    let mut req =
        format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    let body = body.unwrap_or(b"");
    if !body.is_empty() || method == "POST" {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).ok()?;
    s.write_all(body).ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status: u16 = text.split_whitespace().nth(1)?.parse().ok()?;
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase().starts_with("transfer-encoding:")
            && l.to_ascii_lowercase().contains("chunked")
    });
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    Some((status, body))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].strip_prefix("\r\n").unwrap_or(&rest[n..]);
    }
    out
}

impl Gateway {
    /// Starts the fake model and a real `hermes gateway run` (API server only)
    /// and waits until `/health` answers AND our key is accepted. Panics (with
    /// the gateway log tail) on failure.
    pub fn start(gen: Gen, opts: GatewayOpts) -> Gateway {
        gen.venv(); // creates/verifies the venv (panics loudly)
        let root = tempfile::Builder::new()
            .prefix("hermes-op-gw-")
            .tempdir()
            .expect("create gateway temp dir");
        let r = root.path().to_path_buf();
        let home = r.join("hermes");
        let logs_dir = r.join("harness");
        for d in ["hermes", "home", "tmp", "locks", "harness", "scratch"] {
            fs::create_dir_all(r.join(d)).unwrap();
        }
        let danger_target = r.join("scratch/danger-target");
        fs::write(&danger_target, b"danger target\n").unwrap();
        fs::set_permissions(&danger_target, fs::Permissions::from_mode(0o600)).unwrap();
        let file_target = r.join("scratch/file-target.txt");
        fs::write(&file_target, b"fake-model-file-ok\n").unwrap();
        let model_log = logs_dir.join("model_requests.jsonl");
        let key = opts
            .key
            .clone()
            .unwrap_or_else(|| format!("test-key-{}", random_hex(16)));

        // Pre-answer the update check, like `hermes_cmd` does.
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let _ = fs::write(
            home.join(".update_check"),
            format!(
                "{{\"ts\": {now}, \"behind\": 0, \"rev\": null, \"ver\": \"{}\"}}",
                gen.hermes_version()
            ),
        );

        let seeded = opts.seed_state.as_ref().map(|s| {
            fixture(
                gen,
                &[
                    "make",
                    "--db",
                    &home.join("state.db").to_string_lossy(),
                    "--native",
                    &s.native.to_string(),
                    "--operator",
                    &s.operator.to_string(),
                    "--users",
                    &s.users.join(","),
                    "--seed",
                    &s.seed.to_string(),
                ],
            )
        });

        // --- fake model -------------------------------------------------
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fake_model.py");
        let model_err = fs::File::create(logs_dir.join("fake_model.err")).unwrap();
        let mut mcmd = Command::new(gen.python());
        mcmd.arg(&script)
            .arg("--port")
            .arg("0")
            .arg("--log")
            .arg(&model_log)
            .env("PYTHONUNBUFFERED", "1")
            .env("FAKE_MODEL_DANGER_TARGET", &danger_target)
            .env("FAKE_MODEL_FILE_TARGET", &file_target)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(model_err))
            .process_group(0);
        for (k, v) in &opts.model_env {
            mcmd.env(k, v);
        }
        let mut model = mcmd.spawn().expect("spawn fake_model.py");
        let mut line = String::new();
        let mut out = BufReader::new(model.stdout.take().unwrap());
        let _ = out.read_line(&mut line);
        let model_port: u16 = match line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|p| p.parse().ok())
        {
            Some(p) => p,
            None => {
                kill_group(&mut model, libc::SIGKILL);
                let _ = model.wait();
                panic!(
                    "fake_model.py did not print `PORT <n>` (got {line:?}):\n{}",
                    tail(&logs_dir.join("fake_model.err"), 30)
                );
            }
        };
        let model_url = format!("http://127.0.0.1:{model_port}/v1");

        let mut gw = Gateway {
            gen,
            home,
            url: String::new(),
            port: 0,
            key,
            model_log,
            model_url,
            danger_target,
            logs_dir,
            startup_secs: 0.0,
            seeded,
            opts,
            root: Some(root),
            gateway: None,
            model: Some(model),
        };
        // A port picked by bind(0)+close can be taken by a parallel test
        // before Hermes binds it: Hermes then exits (78); retry.
        let mut last_err = String::new();
        for _attempt in 0..5 {
            let port = free_port();
            match gw.spawn_gateway(port) {
                Ok(()) => return gw,
                Err(e) if e.contains("already in use") => last_err = e,
                Err(e) => panic!("{e}"),
            }
        }
        panic!("gateway never got a free port: {last_err}");
    }

    fn write_config(&self, port: u16) {
        let o = &self.opts;
        let toolsets = o
            .toolsets
            .iter()
            .map(|t| format!("{t:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        let cfg = format!(
            "# written by tests/common/gateway.rs\n\
             model:\n  provider: custom\n  default: fake-model\n  base_url: {model_url}\n  \
             api_key: sk-fake-local-key-0123456789\n  context_length: 131072\n\
             platforms:\n  api_server:\n    enabled: true\n    extra:\n      host: 127.0.0.1\n      port: {port}\n\
             platform_toolsets:\n  api_server: [{toolsets}]\n\
             approvals:\n  mode: {mode}\n  timeout: {timeout}\n\
             security:\n  allow_lazy_installs: false\n  tirith_enabled: false\n\
             agent:\n  api_max_retries: {retries}\n  auto_recovery_cycles: 0\n\
             {extra}\n",
            model_url = self.model_url,
            mode = o.approvals_mode,
            timeout = o.approval_timeout_secs,
            retries = o.api_max_retries,
            extra = o.extra_yaml,
        );
        fs::write(self.home.join("config.yaml"), cfg).unwrap();
        let env_path = self.home.join(".env");
        fs::write(&env_path, format!("API_SERVER_KEY={}\n", self.key)).unwrap();
        fs::set_permissions(&env_path, fs::Permissions::from_mode(0o600)).unwrap();
    }

    fn spawn_gateway(&mut self, port: u16) -> Result<(), String> {
        self.write_config(port);
        let r = self.root_path().to_path_buf();
        let out_path = self.logs_dir.join("gateway.out");
        let out = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&out_path)
            .unwrap();
        let _ = writeln!(
            &out,
            "=== harness: starting gateway on 127.0.0.1:{port} ==="
        );
        let err = out.try_clone().unwrap();
        // Where this start's lines begin in the logs (both are appended to).
        let log_marks = [
            fs::metadata(&out_path).map(|m| m.len()).unwrap_or(0),
            fs::metadata(self.home.join("logs/agent.log"))
                .map(|m| m.len())
                .unwrap_or(0),
        ];
        let ids = self.opts.run_as.clone().map(|a| {
            super::accounts::enterable(&self.gen.venv().join("bin"));
            super::accounts::enterable(Path::new(env!("CARGO_BIN_EXE_hermes-operator")));
            let o = Command::new("chown")
                .args(["-R", &format!("{a}:")])
                .arg(self.root_path())
                .output()
                .unwrap();
            assert!(
                o.status.success(),
                "chown: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            super::accounts::ids(&a)
        });
        let mut cmd = Command::new(self.gen.hermes_bin());
        if let Some((uid, gid)) = ids {
            cmd.uid(uid).gid(gid);
        }
        cmd.args(["gateway", "run", "--accept-hooks"])
            .env_clear()
            .env(
                "PATH",
                std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into()),
            )
            .env("LANG", "C.UTF-8")
            .env("HOME", r.join("home"))
            .env("XDG_STATE_HOME", r.join("home/.local/state"))
            .env("XDG_CONFIG_HOME", r.join("home/.config"))
            .env("XDG_CACHE_HOME", r.join("home/.cache"))
            .env("XDG_DATA_HOME", r.join("home/.local/share"))
            .env("TMPDIR", r.join("tmp"))
            .env("HERMES_GATEWAY_LOCK_DIR", r.join("locks"))
            .env("HERMES_HOME", &self.home)
            .env("HERMES_DISABLE_LAZY_INSTALLS", "1")
            .env("API_SERVER_ENABLED", "true")
            .env("API_SERVER_KEY", &self.key)
            .env("API_SERVER_HOST", "127.0.0.1")
            .env("API_SERVER_PORT", port.to_string())
            .env("PYTHONUNBUFFERED", "1")
            .env("PYTHONIOENCODING", "utf-8")
            .env("NO_COLOR", "1")
            .current_dir(r.join("home"))
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .process_group(0);
        for (k, v) in &self.opts.env {
            cmd.env(k, v);
        }
        let t0 = Instant::now();
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("spawn hermes gateway run: {e}"))?;
        let deadline = t0 + self.opts.startup_timeout;
        let auth = format!("Bearer {}", self.key);
        loop {
            if let Ok(Some(st)) = child.try_wait() {
                let log = tail(&out_path, 40);
                return Err(format!(
                    "hermes gateway run exited early ({st}) before /health answered on port {port}:\n{log}"
                ));
            }
            let health = http_request(port, "GET", "/health", &[], None, Duration::from_secs(2));
            if matches!(health, Some((200, _))) {
                // Make sure it is OUR gateway (a parallel test's could hold the port).
                let models = http_request(
                    port,
                    "GET",
                    "/v1/models",
                    &[("Authorization", &auth)],
                    None,
                    Duration::from_secs(5),
                );
                if matches!(models, Some((200, _))) {
                    self.wait_for_warm_up(&out_path, log_marks, t0 + Duration::from_secs(45));
                    self.startup_secs = t0.elapsed().as_secs_f64();
                    self.port = port;
                    self.url = format!("http://127.0.0.1:{port}");
                    self.gateway = Some(child);
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                kill_group(&mut child, libc::SIGKILL);
                let _ = child.wait();
                panic!(
                    "hermes gateway did not answer GET /health on 127.0.0.1:{port} within {:?}.\n\
                     --- {} (tail) ---\n{}\n--- hermes logs/gateway.log (tail) ---\n{}",
                    self.opts.startup_timeout,
                    out_path.display(),
                    tail(&out_path, 40),
                    tail(&self.home.join("logs/gateway.log"), 20)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Hermes 0.22 imports its agent (`run_agent`) on a boot warm-up thread
    /// while the API server already answers; a run started meanwhile imports
    /// the same module from another thread and can fail with "cannot import
    /// name 'AIAgent' from 'run_agent'" (a partially initialised module).
    /// Tests start their first run after the warm-up says it is done, as a
    /// client that waits for a settled gateway would; the race itself is
    /// Hermes' (its gate holds messaging platforms, not the API server).
    fn wait_for_warm_up(&self, out_path: &Path, marks: [u64; 2], deadline: Instant) {
        if self.gen != Gen::H022 {
            return;
        }
        let agent_log = self.home.join("logs/agent.log");
        let done = || {
            [(out_path, marks[0]), (agent_log.as_path(), marks[1])]
                .iter()
                .any(|(p, from)| {
                    fs::read(p).is_ok_and(|b| {
                        let t =
                            String::from_utf8_lossy(b.get(*from as usize..).unwrap_or_default());
                        t.contains("Turn machinery warmed")
                            || t.contains("Turn-machinery warm-up failed")
                            || t.contains("Turn-machinery warm-up still running")
                    })
                })
        };
        while !done() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn root_path(&self) -> &Path {
        self.root.as_ref().unwrap().path()
    }

    pub fn state_db(&self) -> PathBuf {
        self.home.join("state.db")
    }

    /// "Hermes is down": SIGKILLs the gateway's process group and waits. The
    /// fake model keeps running; `url`/`port` stay (nothing listens there).
    pub fn stop_gateway(&mut self) {
        if let Some(mut c) = self.gateway.take() {
            kill_group(&mut c, libc::SIGKILL);
            let _ = c.wait();
        }
    }

    /// Graceful stop (SIGTERM, ~2.3 s; SIGKILL after 15 s).
    pub fn stop_gateway_graceful(&mut self) {
        if let Some(mut c) = self.gateway.take() {
            kill_group(&mut c, libc::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            kill_group(&mut c, libc::SIGKILL);
            let _ = c.wait();
        }
    }

    /// Starts the gateway again on the same port (after `stop_gateway`).
    pub fn restart_gateway(&mut self) {
        self.stop_gateway();
        let _ = fs::remove_file(self.home.join("gateway.pid"));
        let port = self.port;
        if let Err(e) = self.spawn_gateway(port) {
            panic!("restart_gateway: {e}");
        }
    }

    pub fn is_gateway_running(&mut self) -> bool {
        match self.gateway.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Every request body the fake model received, in order (each with the
    /// extra keys `_path`, `_ts`, `_decision`).
    pub fn model_requests(&self) -> Vec<serde_json::Value> {
        let Ok(s) = fs::read_to_string(&self.model_log) else {
            return Vec::new();
        };
        s.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| panic!("bad model log line {l:?}: {e}"))
            })
            .collect()
    }

    /// Permission bits of `danger_target` (0o600 until a `chmod 777` ran).
    pub fn danger_target_mode(&self) -> u32 {
        fs::metadata(&self.danger_target)
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    }

    /// Inserts an operator-owned session row (`source='operator'`) directly
    /// into state.db, as the operator does before its first run.
    pub fn insert_operator_session(&self, id: &str, user_id: &str) {
        let c = rusqlite::Connection::open(self.state_db()).expect("open state.db");
        c.busy_timeout(Duration::from_secs(10)).unwrap();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        c.execute(
            "INSERT INTO sessions (id, source, user_id, model, started_at, message_count, tool_call_count) \
             VALUES (?1, 'operator', ?2, 'fake-model', ?3, 0, 0)",
            rusqlite::params![id, user_id, now],
        )
        .unwrap_or_else(|e| panic!("insert operator session {id}: {e}"));
    }

    /// Blocking request to the API server with our Bearer key. (status, body)
    pub fn http(
        &self,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> (u16, String) {
        let auth = format!("Bearer {}", self.key);
        let data = body.map(|b| serde_json::to_vec(b).unwrap());
        let mut headers = vec![("Authorization", auth.as_str())];
        if data.is_some() {
            headers.push(("Content-Type", "application/json"));
        }
        http_request(
            self.port,
            method,
            path,
            &headers,
            data.as_deref(),
            Duration::from_secs(30),
        )
        .unwrap_or_else(|| panic!("{method} {path}: no HTTP answer from the gateway"))
    }

    /// Tails of our logs, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        format!(
            "--- gateway.out ---\n{}\n--- hermes logs/agent.log ---\n{}\n--- fake_model.err ---\n{}",
            tail(&self.logs_dir.join("gateway.out"), lines),
            tail(&self.home.join("logs/agent.log"), lines),
            tail(&self.logs_dir.join("fake_model.err"), lines / 2),
        )
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "\n===== gateway {} (HERMES_HOME {}) =====\n{}",
                self.url,
                self.home.display(),
                self.log_tail(30)
            );
        }
        self.stop_gateway();
        if let Some(mut m) = self.model.take() {
            kill_group(&mut m, libc::SIGKILL);
            let _ = m.wait();
        }
        let keep = std::env::var_os("HERMES_OPERATOR_KEEP_TEST_HOMES").is_some_and(|v| v == "1");
        if let Some(root) = self.root.take() {
            if keep {
                let p = root.keep();
                eprintln!("kept gateway test dir {}", p.display());
            }
        }
    }
}

/// The Hermes hook events `hook install` registers.
pub const MANAGED_HOOKS: [&str; 4] = [
    "pre_tool_call",
    "post_tool_call",
    "subagent_start",
    "subagent_stop",
];

/// Our hook entries for every managed event, as `hook install` writes them
/// but without `--hermes-home` (the gateway's environment names it), for
/// [`GatewayOpts::extra_yaml`].
pub fn hooks_yaml() -> String {
    let bin = fs::canonicalize(env!("CARGO_BIN_EXE_hermes-operator")).unwrap();
    let mut extra = String::from("hooks:\n");
    for ev in MANAGED_HOOKS {
        extra.push_str(&format!(
            "  {ev}:\n    - command: \"{} hook\"\n      timeout: 10\n",
            bin.display()
        ));
    }
    extra
}
