//! A private PostgreSQL cluster for one test (issue 20): Debian's
//! PostgreSQL 15 binaries, `initdb` into a scratch directory, started on a
//! free loopback port with its socket in that directory, and removed on
//! drop. PostgreSQL refuses to run as root: under root (as CI runs) the
//! cluster runs as a system account made for it. Never the system's own
//! service. Without the binaries the test FAILS (`.ci/run` installs
//! Debian's `postgresql`).
use super::accounts::Accounts;
use super::free_port;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Output};

pub struct PgCluster {
    bin: PathBuf,
    data: PathBuf,
    log: PathBuf,
    pub port: u16,
    password: String,
    /// The account it runs as under root (removed after the cluster stops).
    account: Option<String>,
    _accounts: Option<Accounts>,
    _dir: tempfile::TempDir,
}

/// Where the server binaries are: PostgreSQL 15 as Debian installs it,
/// else any version Debian's layout has.
fn bin_dir() -> PathBuf {
    let preferred = PathBuf::from("/usr/lib/postgresql/15/bin");
    if preferred.join("initdb").exists() {
        return preferred;
    }
    let mut found: Vec<PathBuf> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|b| b.join("initdb").exists())
        .collect();
    found.sort();
    found.pop().unwrap_or_else(|| {
        panic!("PostgreSQL's server binaries are missing (/usr/lib/postgresql/*/bin/initdb): apt-get install postgresql (.ci/run does)")
    })
}

impl PgCluster {
    pub fn start() -> PgCluster {
        let mut c = Self::init();
        c.port = c.start_on_free_port();
        c
    }

    /// A cluster with TLS on (a certificate for 127.0.0.1 from a CA made
    /// here with `openssl`), where database `tls_only_db` refuses plain
    /// connections; the CA's PEM file.
    pub fn start_tls(tls_only_db: &str) -> (PgCluster, PathBuf) {
        let mut c = Self::init();
        let dir = c.data.parent().unwrap().to_path_buf();
        let ssl = |args: &[&str]| {
            let o = Command::new("openssl")
                .args(args)
                .current_dir(&dir)
                .output()
                .expect("openssl (apt-get install openssl)");
            assert!(
                o.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        };
        ssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=hermes-operator test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        ssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ]);
        fs::write(
            dir.join("ext"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        ssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "ext",
        ]);
        for f in ["server.crt", "server.key"] {
            fs::copy(dir.join(f), c.data.join(f)).unwrap();
        }
        fs::set_permissions(c.data.join("server.key"), fs::Permissions::from_mode(0o600)).unwrap();
        if let Some(a) = &c.account {
            let o = Command::new("chown")
                .arg(format!("{a}:"))
                .arg(c.data.join("server.crt"))
                .arg(c.data.join("server.key"))
                .output()
                .unwrap();
            assert!(o.status.success(), "{o:?}");
        }
        let conf = c.data.join("postgresql.conf");
        let mut text = fs::read_to_string(&conf).unwrap();
        text.push_str("\nssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n");
        fs::write(&conf, text).unwrap();
        let hba = c.data.join("pg_hba.conf");
        let text = fs::read_to_string(&hba).unwrap();
        fs::write(
            &hba,
            format!("hostnossl {tls_only_db} all 127.0.0.1/32 reject\n{text}"),
        )
        .unwrap();
        c.port = c.start_on_free_port();
        (c, dir.join("ca.pem"))
    }

    /// initdb into a scratch directory (not started).
    fn init() -> PgCluster {
        let bin = bin_dir();
        let dir = tempfile::tempdir().unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        // SAFETY: geteuid cannot fail.
        let root = unsafe { libc::geteuid() } == 0;
        let (accounts, account) = if root {
            let (a, names) = Accounts::make(&["pg"]);
            (Some(a), Some(names[0].clone()))
        } else {
            (None, None)
        };
        let data = dir.path().join("data");
        let log = dir.path().join("postgres.log");
        let pwfile = dir.path().join("pw");
        let password = format!("pw-{:x}", rand_u64());
        fs::write(&pwfile, &password).unwrap();
        if let Some(a) = &account {
            let o = Command::new("chown")
                .args(["-R", &format!("{a}:")])
                .arg(dir.path())
                .output()
                .unwrap();
            assert!(o.status.success(), "{o:?}");
        }
        let o = run_as(
            account.as_deref(),
            Command::new(bin.join("initdb"))
                .arg("-D")
                .arg(&data)
                .args([
                    "-U",
                    "postgres",
                    "--auth=scram-sha-256",
                    "-E",
                    "UTF8",
                    "--no-sync",
                ])
                .arg(format!("--pwfile={}", pwfile.display())),
        );
        assert!(
            o.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        PgCluster {
            bin,
            data,
            log,
            port: 0,
            password,
            account,
            _accounts: accounts,
            _dir: dir,
        }
    }

    fn start_on_free_port(&self) -> u16 {
        for _ in 0..5 {
            let port = free_port();
            if self.pg_ctl_start(port) {
                return port;
            }
        }
        panic!(
            "PostgreSQL did not start: {}",
            fs::read_to_string(&self.log).unwrap_or_default()
        );
    }

    fn pg_ctl_start(&self, port: u16) -> bool {
        let sock = self.data.parent().unwrap();
        run_as(
            self.account.as_deref(),
            Command::new(self.bin.join("pg_ctl"))
                .arg("-D")
                .arg(&self.data)
                .arg("-l")
                .arg(&self.log)
                .args(["-w", "-t", "60", "-o"])
                .arg(format!(
                    "-p {port} -k {} -c listen_addresses=127.0.0.1",
                    sock.display()
                ))
                .arg("start"),
        )
        .status
        .success()
    }

    /// `postgres://postgres:…@127.0.0.1:PORT/DB`.
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgres://postgres:{}@127.0.0.1:{}/{db}",
            self.password, self.port
        )
    }

    /// One of this cluster's URLs as the operator is configured: (the URL
    /// without the password, the password).
    pub fn apart(&self, url: &str) -> (String, String) {
        let bare = url.replace(&format!(":{}@", self.password), "@");
        (bare, self.password.clone())
    }

    /// A new, empty database; its URL.
    pub fn database(&self, name: &str) -> String {
        let mut c = postgres::Client::connect(&self.url("postgres"), postgres::NoTls).unwrap();
        c.batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .unwrap();
        self.url(name)
    }

    /// A superuser session on `db`, for what an attacker with the
    /// database's keys would do.
    pub fn superuser(&self, db: &str) -> postgres::Client {
        postgres::Client::connect(&self.url(db), postgres::NoTls).unwrap()
    }

    /// Stops the server at once (as a crash would), then starts it again
    /// on the same port.
    pub fn restart(&self) {
        self.stop("immediate");
        assert!(
            self.pg_ctl_start(self.port),
            "PostgreSQL did not come back: {}",
            fs::read_to_string(&self.log).unwrap_or_default()
        );
    }

    pub fn stop(&self, mode: &str) {
        let _ = run_as(
            self.account.as_deref(),
            Command::new(self.bin.join("pg_ctl"))
                .arg("-D")
                .arg(&self.data)
                .args(["-m", mode, "-w", "stop"]),
        );
    }

    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        self.stop("immediate");
    }
}

fn run_as(account: Option<&str>, cmd: &mut Command) -> Output {
    let out = match account {
        Some(a) => {
            let mut r = Command::new("runuser");
            r.args(["-u", a, "--"])
                .arg(cmd.get_program())
                .args(cmd.get_args());
            r.output()
        }
        None => cmd.output(),
    };
    out.unwrap_or_else(|e| panic!("{cmd:?}: {e}"))
}

fn rand_u64() -> u64 {
    let mut b = [0u8; 8];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b))
        .unwrap();
    u64::from_le_bytes(b)
}

/// Gives `home` the fleet's database password (profiles/operator/.env, as
/// an operator would: never in the URL).
pub fn store_password(home: &std::path::Path, password: &str) {
    let env = home.join("profiles/operator/.env");
    let mut text = fs::read_to_string(&env).unwrap();
    text.push_str(&format!("OPERATOR_STORE_PASSWORD={password}\n"));
    fs::write(&env, text).unwrap();
}
