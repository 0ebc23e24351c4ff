//! A program on a real terminal: `script(1)` gives it a pty, the test
//! types into it and reads what the terminal shows, waiting for text to
//! appear instead of sleeping.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Pty {
    child: Child,
    stdin: Option<ChildStdin>,
    shown: Arc<Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Pty {
    /// `hermes-operator --hermes-home HOME ARGS…` on a 120×50 terminal.
    /// ARGS are shell words already quoted for `sh -c`.
    pub fn operator(home: &Path, args: &str) -> Pty {
        Pty::shell(
            &format!("exec \"$OP_BIN\" --hermes-home \"$OP_HOME\" {args}"),
            &[
                ("OP_BIN", Path::new(env!("CARGO_BIN_EXE_hermes-operator"))),
                ("OP_HOME", home),
            ],
        )
    }

    /// `sh -c COMMAND` on a 120×50 terminal, with `env` added.
    pub fn shell(command: &str, env: &[(&str, &Path)]) -> Pty {
        let mut cmd = Command::new("script");
        cmd.args([
            "-qec",
            &format!("stty cols 120 rows 50 && {command}"),
            "/dev/null",
        ]);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .env("NO_COLOR", "1")
            .env_remove("HERMES_HOME")
            .env_remove("API_SERVER_KEY")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("script(1) from util-linux");
        let stdin = child.stdin.take();
        let mut stdout = child.stdout.take().unwrap();
        let shown = Arc::new(Mutex::new(String::new()));
        let reader = {
            let shown = shown.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = stdout.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    shown
                        .lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            })
        };
        Pty {
            child,
            stdin,
            shown,
            reader: Some(reader),
        }
    }

    /// What the terminal has shown so far.
    pub fn shown(&self) -> String {
        self.shown.lock().unwrap().clone()
    }

    /// Waits until `text` has been shown `n` times.
    pub fn wait_for(&self, text: &str, n: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.shown().matches(text).count() < n {
            assert!(
                Instant::now() < deadline,
                "{text:?} not shown {n} times: {}",
                self.shown()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Types `bytes` (a line needs its "\n"; Ctrl-C is "\x03").
    pub fn send(&mut self, bytes: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(bytes.as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    /// Waits for the program to end by itself (stdin stays open until
    /// then), and returns its status and everything shown, with "\r\n" as
    /// "\n".
    pub fn finish(mut self, timeout: Duration) -> (ExitStatus, String) {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                break st;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("the program did not end: {}", self.shown());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        drop(self.stdin.take());
        if let Some(r) = self.reader.take() {
            r.join().unwrap();
        }
        (status, self.shown().replace("\r\n", "\n"))
    }
}
