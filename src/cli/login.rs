//! `hermes-operator login --sso --server URL`: a person's single sign-on
//! from their laptop against a remote `serve`, for their scripts. The
//! loopback redirect of RFC 8252: this command listens on 127.0.0.1, the
//! browser logs in at the provider and is sent back here with a one-time
//! code, which only this process can redeem (it alone knows the verifier
//! whose SHA-256 went along). The answer is the same token pair as the
//! dashboard's login: JSON on stdout, or in a 0600 file with `--output`.
//! Needs no HERMES_HOME.

use crate::error::{Error, Result};
use crate::output::Output;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Log in with the server's single sign-on (required: the only way this command logs in)
    #[arg(long)]
    pub sso: bool,
    /// The server's URL, e.g. https://ops.example.com/ (https, or http on loopback)
    #[arg(long, env = "HERMES_OPERATOR_URL", value_name = "URL")]
    pub server: String,
    /// Print the login URL only; do not try to open a browser
    #[arg(long)]
    pub no_browser: bool,
    /// Write the tokens (JSON) to this new file (mode 0600) instead of standard output
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Give up after this many seconds without a finished login
    #[arg(long, default_value_t = 300, value_name = "SECONDS")]
    pub timeout: u64,
}

pub fn run(out: &Output, a: Args) -> Result<()> {
    if !a.sso {
        return Err(Error::usage("`login` logs in with single sign-on only: pass --sso")
            .hint("on the server's host, `hermes-operator user token NAME` prints a token without logging in"));
    }
    if !crate::config::secure_or_loopback(&a.server) {
        return Err(Error::usage(format!(
            "--server: expected the server's https URL (http only on loopback), got {:?}",
            crate::output::clip(&a.server, 200)
        )));
    }
    let base = format!("{}/", a.server.trim_end_matches('/'));
    if let Some(p) = &a.output {
        if p.exists() {
            return Err(Error::conflict(format!(
                "{} exists; choose a new file",
                p.display()
            )));
        }
    }
    let listener = TcpListener::bind("127.0.0.1:0")
        .map_err(|e| Error::internal(format!("cannot listen on 127.0.0.1: {e}")))?;
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    let verifier = crate::crypto::random_hex(32);
    let state = crate::crypto::random_hex(16);
    let mut start = url::Url::parse(&base)
        .and_then(|u| u.join("auth/oidc/start"))
        .map_err(|e| Error::usage(format!("--server: {e}")))?;
    start
        .query_pairs_mut()
        .append_pair("cli_port", &port.to_string())
        .append_pair("cli_state", &state)
        .append_pair("cli_challenge", &crate::oidc::s256(&verifier));
    out.info(format!(
        "Open this URL in your browser to log in:\n\n  {start}\n"
    ));
    if !a.no_browser {
        // Best effort; the URL above is the way when there is no desktop.
        let _ = std::process::Command::new("xdg-open")
            .arg(start.as_str())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
    }
    let code = wait_for_code(&listener, &state, Duration::from_secs(a.timeout))?;
    let pair = redeem(&base, &code, &verifier)?;
    let text = serde_json::to_string_pretty(&pair).unwrap_or_default();
    let who = format!(
        "Logged in as {} ({})",
        pair["user"]["username"].as_str().unwrap_or("?"),
        pair["user"]["role"].as_str().unwrap_or("?")
    );
    match &a.output {
        Some(p) => {
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(p)
                .map_err(|e| Error::io(p, "writing the tokens", e))?;
            f.write_all(text.as_bytes())
                .and_then(|_| f.write_all(b"\n"))
                .map_err(|e| Error::io(p, "writing the tokens", e))?;
            out.info(format!("{who}; the tokens are in {}", p.display()));
            Ok(())
        }
        None => {
            out.info(who);
            out.line(text)
        }
    }
}

/// Wait for the browser to come back to `/callback` with our state; answer
/// it with a page; the one-time code (or the server's refusal as an error).
fn wait_for_code(listener: &TcpListener, state: &str, timeout: Duration) -> Result<String> {
    listener
        .set_nonblocking(true)
        .map_err(|e| Error::internal(format!("listener: {e}")))?;
    let deadline = Instant::now() + timeout;
    loop {
        if Instant::now() >= deadline {
            return Err(Error::new(
                crate::Kind::Unavailable,
                format!("no login finished within {} s", timeout.as_secs()),
            )
            .hint("run it again and open the URL it prints (--timeout to wait longer)"));
        }
        let (mut stream, _) = match listener.accept() {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
            Err(e) => return Err(Error::internal(format!("accepting the browser: {e}"))),
        };
        let Some(target) = request_target(&mut stream) else {
            continue;
        };
        let Ok(u) = url::Url::parse("http://127.0.0.1").and_then(|b| b.join(&target)) else {
            respond(&mut stream, "404 Not Found", "Not found.");
            continue;
        };
        if u.path() != "/callback" {
            respond(&mut stream, "404 Not Found", "Not found.");
            continue;
        }
        let get = |k: &str| {
            u.query_pairs()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.into_owned())
        };
        // Another tab's or process's callback: not ours, keep waiting.
        if !get("state").is_some_and(|s| crate::crypto::ct_eq(s.as_bytes(), state.as_bytes())) {
            respond(
                &mut stream,
                "400 Bad Request",
                "This is not the login this command is waiting for.",
            );
            continue;
        }
        if let Some(code) = get("code") {
            respond(
                &mut stream,
                "200 OK",
                "You are logged in. You can close this tab and go back to the terminal.",
            );
            return Ok(code);
        }
        let why = get("error").unwrap_or_default();
        let message = crate::ops::sso::Refusal::parse(&why)
            .map(|r| r.message())
            .unwrap_or("The server did not log you in.");
        respond(&mut stream, "403 Forbidden", message);
        return Err(Error::permission(message.to_string()));
    }
}

/// The request line's target of one HTTP request (`None`: not a request).
fn request_target(stream: &mut TcpStream) -> Option<String> {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 2048];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 16 * 1024 {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let text = String::from_utf8_lossy(&buf);
    let mut parts = text.lines().next()?.split_whitespace();
    (parts.next()? == "GET").then(|| parts.next().map(str::to_string))?
}

fn respond(stream: &mut TcpStream, status: &str, message: &str) {
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>hermes-operator</title></head>\
         <body><p id=\"cli-message\">{}</p></body></html>",
        message.replace('&', "&amp;").replace('<', "&lt;")
    );
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// The one-time code and our verifier → the token pair.
fn redeem(base: &str, code: &str, verifier: &str) -> Result<serde_json::Value> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::internal(format!("runtime: {e}")))?;
    rt.block_on(async {
        let http = crate::oidc::http_client()?;
        let url = format!("{base}auth/oidc/exchange");
        let r = http
            .post(&url)
            .json(&serde_json::json!({"code": code, "cli_verifier": verifier}))
            .send()
            .await
            .map_err(|e| Error::unavailable(format!("{url}: {e}")))?;
        let status = r.status();
        let body: serde_json::Value = r.json().await.unwrap_or(serde_json::Value::Null);
        if status.is_success() && body["access_token"].is_string() {
            return Ok(body);
        }
        let msg = body["error"]["message"]
            .as_str()
            .unwrap_or("no reason given");
        Err(Error::permission(format!(
            "the server refused the login ({status}): {}",
            crate::output::clip(&crate::output::sanitize(msg), 300)
        )))
    })
}
