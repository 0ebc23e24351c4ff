//! Helpers for the `serve` tests: a HERMES_HOME with a JWT secret and
//! config, the real `hermes-operator serve` binary on 127.0.0.1:0 (its
//! stderr — the access log — captured), and a small async HTTP client.
#![allow(dead_code)]

use crate::common::{op, TEST_PASSWORD};
use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const JWT_SECRET: &str = "serve-tests-jwt-secret-0123456789abcdef0123456789";
pub const HERMES_KEY: &str = "serve-tests-hermes-key-0123456789";

/// `profiles/operator/.env` (JWT secret) and `config.yaml` (`yaml`), and
/// Hermes' `.env` with an API key and its `config.yaml` with manual approvals. Without `hermes.api_url` in `yaml`, Hermes
/// is pointed at a closed port (so chat and models answer 502).
pub fn configure(home: &Path, yaml: &str) {
    let dir = home.join("profiles/operator");
    fs::create_dir_all(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
    let env = dir.join(".env");
    fs::write(&env, format!("OPERATOR_JWT_SECRET={JWT_SECRET}\n")).unwrap();
    fs::set_permissions(&env, fs::Permissions::from_mode(0o600)).unwrap();
    let mut yaml = yaml.to_string();
    if !yaml.contains("api_url") {
        yaml.push_str(&format!(
            "\nhermes:\n  api_url: http://127.0.0.1:{}\n",
            closed_port()
        ));
    }
    fs::write(dir.join("config.yaml"), yaml).unwrap();
    // Hermes as the operator requires it: approvals asked of a person
    // (terminal.approval_mode: manual), as a real install is configured.
    let hcfg = home.join("config.yaml");
    if !hcfg.exists() {
        fs::write(&hcfg, "approvals:\n  mode: manual\n").unwrap();
    }
    let henv = home.join(".env");
    if !henv.exists() {
        fs::write(&henv, format!("API_SERVER_KEY={HERMES_KEY}\n")).unwrap();
        fs::set_permissions(&henv, fs::Permissions::from_mode(0o600)).unwrap();
    }
}

/// A loopback port nothing listens on.
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A running `hermes-operator serve`; killed on drop.
pub struct Server {
    pub child: Child,
    pub base: String,
    pub log: Arc<Mutex<String>>,
    pub home: PathBuf,
}

impl Server {
    pub fn start(home: &Path) -> Server {
        Self::start_with(home, &[])
    }

    pub fn start_with(home: &Path, extra: &[&str]) -> Server {
        // An address in `extra` (a port chosen up front) replaces 127.0.0.1:0.
        let bind: &[&str] = if extra.contains(&"--bind") {
            &[]
        } else {
            &["--bind", "127.0.0.1:0"]
        };
        let mut child = op(home)
            .arg("serve")
            .args(bind)
            .args(extra)
            .env_remove("API_SERVER_KEY")
            .env_remove("OPERATOR_JWT_SECRET")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn hermes-operator serve");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let log2 = log.clone();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = line.strip_prefix("hermes-operator serve: listening on ") {
                    if let Some(t) = tx.take() {
                        let _ = t.send(addr.to_string());
                    }
                }
                let mut l = log2.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let base = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(a) => a,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                std::thread::sleep(Duration::from_millis(100));
                panic!("serve did not start:\n{}", log.lock().unwrap());
            }
        };
        Server {
            child,
            base,
            log,
            home: home.to_path_buf(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// The log once it contains `needle` (a reader thread drains the
    /// server's stderr, so a line can lag its request by a moment); the log
    /// as it is after 5 s otherwise.
    pub fn log_with(&self, needle: &str) -> String {
        for _ in 0..100 {
            let log = self.log();
            if log.contains(needle) {
                return log;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        self.log()
    }

    pub fn port(&self) -> u16 {
        self.base.rsplit(':').next().unwrap().parse().unwrap()
    }

    /// SIGTERM; the exit status within `timeout`, if it exited.
    pub fn terminate(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let t0 = Instant::now();
        while t0.elapsed() < timeout {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn client() -> reqwest::Client {
    hermes_operator::net::client_builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// A response, read whole.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Resp {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.body))
    }
    pub fn header(&self, k: &str) -> Option<String> {
        self.headers
            .get(k)
            .map(|v| v.to_str().unwrap_or("").to_string())
    }
}

pub async fn send(rb: reqwest::RequestBuilder) -> Resp {
    let r = rb.send().await.expect("request");
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let body = r.text().await.unwrap_or_default();
    Resp {
        status,
        headers,
        body,
    }
}

/// `POST /auth/login` with the test password; the token response.
pub async fn login(c: &reqwest::Client, s: &Server, user: &str) -> serde_json::Value {
    let r = send(
        c.post(s.url("/auth/login"))
            .json(&serde_json::json!({"username": user, "password": TEST_PASSWORD})),
    )
    .await;
    assert_eq!(r.status, 200, "login {user}: {}", r.body);
    r.json()
}

/// An access token for `user` (the test password), from synchronous code.
pub fn block_on_login(s: &Server, user: &str) -> String {
    crate::common::block_on(async { token(&client(), s, user).await })
}

pub async fn token(c: &reqwest::Client, s: &Server, user: &str) -> String {
    login(c, s, user).await["access_token"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Events of events.db (type, user_id, data) in order.
pub fn events(home: &Path) -> Vec<(String, Option<String>, serde_json::Value)> {
    let c = crate::common::open_ro(&home.join("plugins/operator/events.db"));
    let mut st = c
        .prepare("SELECT type, user_id, data FROM events ORDER BY seq")
        .unwrap();
    st.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, Option<String>>(1)?,
            serde_json::from_str(&r.get::<_, String>(2)?).unwrap(),
        ))
    })
    .unwrap()
    .map(|r| r.unwrap())
    .collect()
}

/// `user key create NAME ARGS… --json` → (id, key).
pub fn make_key(home: &Path, name: &str, args: &[&str]) -> (String, String) {
    let o = crate::common::op(home)
        .args(["--json", "user", "key", "create", name])
        .args(args)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let key = v["key"].as_str().unwrap().to_string();
    assert!(key.starts_with("hop_") && key.len() == 47, "{v}");
    (v["id"].as_str().unwrap().to_string(), key)
}
