//! Real system accounts for the tests of the agent/control-plane boundary
//! (docs/design.md §12). Making them needs root, as CI runs; as anyone else
//! these tests fail loudly, they never skip.
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// System accounts made for one test, removed (with their processes) on drop.
pub struct Accounts(Vec<String>);

impl Accounts {
    /// Accounts named `hopt-<letter><tag>`, one per letter, made now.
    pub fn make(letters: &[&str]) -> (Accounts, Vec<String>) {
        // SAFETY: geteuid cannot fail.
        assert_eq!(
            unsafe { libc::geteuid() },
            0,
            "this test creates system accounts and changes file owners: run the suite as root (CI does)"
        );
        // Tests of one binary run in parallel: the pid alone is not unique.
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tag = format!("{:05x}{n:02}", std::process::id() & 0xfffff);
        let names: Vec<String> = letters.iter().map(|l| format!("hopt-{l}{tag}")).collect();
        let mut made = Accounts(Vec::new());
        for n in &names {
            let o = run(Command::new("useradd").args([
                "--system",
                "--user-group",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                n,
            ]));
            assert!(
                o.status.success(),
                "useradd {n}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            made.0.push(n.clone());
        }
        (made, names)
    }

    /// Also remove this account (made by the code under test) at the end;
    /// it goes first, as it may be a member of the others' groups.
    pub fn adopt(&mut self, name: &str) {
        self.0.insert(0, name.to_string());
    }
}

impl Drop for Accounts {
    fn drop(&mut self) {
        for a in &self.0 {
            // A process left running by a failed assertion keeps userdel from working.
            let _ = run(Command::new("pkill").args(["-KILL", "-u", a]));
            std::thread::sleep(std::time::Duration::from_millis(100));
            let _ = run(Command::new("userdel").arg(a));
            let _ = run(Command::new("groupdel").arg(a));
        }
    }
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"))
}

/// (uid, primary gid) of an account.
pub fn ids(name: &str) -> (u32, u32) {
    let id = |flag: &str| -> u32 {
        let o = run(Command::new("id").args([flag, name]));
        String::from_utf8_lossy(&o.stdout)
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("id {flag} {name}: {}", String::from_utf8_lossy(&o.stderr)))
    };
    (id("-u"), id("-g"))
}

/// `runuser -u ACCOUNT -- ARGS`: a command as that account, with its groups.
pub fn as_account(account: &str, args: &[&str]) -> Command {
    let mut c = Command::new("runuser");
    c.args(["-u", account, "--"])
        .args(args)
        .env("NO_COLOR", "1");
    c
}

/// Lets every account enter each directory above `p` (o+x, nothing more),
/// so a program or venv under root's home can run as another account.
pub fn enterable(p: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    for a in p.ancestors().skip(1) {
        if let Ok(m) = std::fs::metadata(a) {
            let mode = m.permissions().mode();
            if mode & 0o001 == 0 {
                let _ = std::fs::set_permissions(a, std::fs::Permissions::from_mode(mode | 0o001));
            }
        }
    }
}

/// A child killed and reaped on drop (before the accounts are removed:
/// declare it after them).
pub struct Reaped(pub Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `bin serve --bind 127.0.0.1:0` as `account`; its base URL once it listens.
pub fn serve_as(account: &str, bin: &Path, home: &Path) -> (Reaped, String) {
    let mut child = as_account(
        account,
        &[
            bin.to_str().unwrap(),
            "--hermes-home",
            home.to_str().unwrap(),
            "serve",
            "--bind",
            "127.0.0.1:0",
        ],
    )
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = String::new();
    let base = loop {
        let mut line = String::new();
        assert!(
            err.read_line(&mut line).unwrap_or(0) > 0,
            "serve exited before listening: {seen}"
        );
        seen.push_str(&line);
        if let Some(u) = line
            .trim()
            .strip_prefix("hermes-operator serve: listening on ")
        {
            break u.to_string();
        }
        assert!(Instant::now() < deadline, "serve did not listen: {seen}");
    };
    // Keep draining its log so it never blocks on a full pipe.
    std::thread::spawn(move || for _ in err.lines() {});
    (Reaped(child), base)
}
