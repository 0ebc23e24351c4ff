//! A real OpenID Connect provider on loopback for the single sign-on
//! tests: `oidc-provider-mock` from PyPI (Flask + Authlib) with the test
//! controls of tests/fixtures/oidc_provider.py (key rotation, a bad next
//! ID token, disabling a user), in a venv made once from the pinned
//! tests/fixtures/oidc_requirements.txt under
//! `$HOME/.cache/hermes-operator-test/venv-oidc` (or
//! `$HERMES_OPERATOR_TEST_VENV_OIDC`). Never skipped: without Python or
//! PyPI the test fails loudly.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

pub const CLIENT_ID: &str = "hermes-operator-tests";
pub const CLIENT_SECRET: &str = "oidc-tests-client-secret-0123456789abcdef";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn loud(msg: impl AsRef<str>) -> ! {
    panic!(
        "\n\n==================== OIDC PROVIDER (SSO TESTS) ====================\n{}\n\
         Needs python3 with venv (Debian: apt-get install -y python3 python3-venv) and PyPI.\n\
         ===================================================================\n",
        msg.as_ref()
    )
}

/// The provider's venv, created on first use (a file lock keeps two test
/// processes from building it at once).
pub fn venv() -> PathBuf {
    static V: OnceLock<PathBuf> = OnceLock::new();
    V.get_or_init(|| {
        let dir = std::env::var_os("HERMES_OPERATOR_TEST_VENV_OIDC")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/tmp".into()))
                    .join(".cache/hermes-operator-test/venv-oidc")
            });
        let parent = dir.parent().unwrap().to_path_buf();
        std::fs::create_dir_all(&parent)
            .unwrap_or_else(|e| loud(format!("{}: {e}", parent.display())));
        let lock = std::fs::File::create(parent.join("venv-oidc.lock")).unwrap();
        use std::os::fd::AsRawFd;
        unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) };
        let reqs = fixtures().join("oidc_requirements.txt");
        let marker = dir.join(".requirements");
        let want = std::fs::read_to_string(&reqs).unwrap();
        if std::fs::read_to_string(&marker).ok().as_deref() != Some(want.as_str()) {
            let _ = std::fs::remove_dir_all(&dir);
            let st = Command::new("python3")
                .args(["-m", "venv"])
                .arg(&dir)
                .status()
                .unwrap_or_else(|e| loud(format!("cannot run python3: {e}")));
            if !st.success() {
                loud(format!("`python3 -m venv {}` failed ({st})", dir.display()));
            }
            let st = Command::new(dir.join("bin/pip"))
                .args(["install", "--quiet", "--disable-pip-version-check", "-r"])
                .arg(&reqs)
                .stdout(Stdio::null())
                .status()
                .unwrap_or_else(|e| loud(format!("cannot run pip: {e}")));
            if !st.success() {
                loud(format!("`pip install -r {}` failed ({st})", reqs.display()));
            }
            std::fs::write(&marker, want).unwrap();
        }
        unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_UN) };
        dir
    })
    .clone()
}

/// A running provider; stopped on drop.
pub struct Provider {
    child: Option<Child>,
    pub issuer: String,
    port: u16,
    redirect_uris: Vec<String>,
}

impl Provider {
    /// On a free loopback port, with our client registered for `redirect_uris`.
    pub fn start(redirect_uris: &[String]) -> Provider {
        Self::start_on(0, redirect_uris)
    }

    fn start_on(port: u16, redirect_uris: &[String]) -> Provider {
        let mut cmd = Command::new(venv().join("bin/python"));
        cmd.arg(fixtures().join("oidc_provider.py")).args([
            "--port",
            &port.to_string(),
            "--client-id",
            CLIENT_ID,
            "--client-secret",
            CLIENT_SECRET,
        ]);
        for r in redirect_uris {
            cmd.args(["--redirect-uri", r]);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| loud(format!("cannot start the provider: {e}")));
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("READY ") {
                    let _ = tx.send(url.to_string());
                }
            }
        });
        let issuer = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(u) => u,
            Err(_) => {
                let _ = child.kill();
                loud("the provider did not say READY within 60 s")
            }
        };
        let port = issuer.rsplit(':').next().unwrap().parse().unwrap();
        Provider {
            child: Some(child),
            issuer,
            port,
            redirect_uris: redirect_uris.to_vec(),
        }
    }

    /// Down (its port then refuses connections).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let _ = c.wait();
        }
    }

    /// Up again on the same port (a new process: new keys, no users).
    pub fn restart(&mut self) {
        self.stop();
        let p = Self::start_on(self.port, &self.redirect_uris);
        *self = p;
    }

    /// POST a JSON body to one of the provider's endpoints; the status.
    pub fn post(&self, path: &str, body: serde_json::Value) -> u16 {
        let url = format!("{}{path}", self.issuer);
        crate::common::block_on(async move {
            hermes_operator::net::client_builder()
                .build()
                .unwrap()
                .post(&url)
                .json(&body)
                .send()
                .await
                .unwrap_or_else(|e| panic!("POST {url}: {e}"))
                .status()
                .as_u16()
        })
    }

    /// Sign every later ID token with a new key (the JWKS lists only it).
    pub fn rotate_key(&self) {
        assert_eq!(
            self.post("/test/rotate-key", serde_json::json!({"keep_old": false})),
            200
        );
    }

    /// The next ID token only: `spec` as tests/fixtures/oidc_provider.py takes it.
    pub fn next_id_token(&self, spec: serde_json::Value) {
        assert_eq!(self.post("/test/next-id-token", spec), 204);
    }

    pub fn disable_user(&self, sub: &str) {
        assert_eq!(
            self.post(&format!("/test/users/{sub}/disable"), serde_json::json!({})),
            204
        );
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `auth.oidc` for a server whose callback is `redirect` and this provider.
pub fn config_yaml(issuer: &str, redirect: &str, extra: &str) -> String {
    format!(
        "auth:\n  oidc:\n    issuer: {issuer}\n    client_id: {CLIENT_ID}\n    redirect_url: {redirect}\n    name: TestID\n    auto_create: true\n    role_claim: groups\n    role_map:\n      engineers: user\n      ops-admins: admin\n      auditors: auditor\n    allowed_domains: [example.com]\n{extra}"
    )
}
