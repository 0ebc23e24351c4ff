//! Restarting the operator service and checking its health.

use super::*;

#[derive(Debug, Clone, Serialize)]
pub struct Restart {
    pub command: String,
    pub ran: bool,
    pub ok: bool,
    pub exit_code: Option<i32>,
    /// Why it did not run (no_restart, failed, incompatible, up_to_date).
    pub skipped: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Health {
    pub url: String,
    pub checked: bool,
    pub ok: bool,
    pub status: Option<u16>,
    pub detail: String,
    /// The answer came from hermes-operator's own `/healthz` (its JSON says
    /// `"service": "hermes-operator"`), whatever its status.
    #[serde(default)]
    pub operator: bool,
}

impl Restart {
    /// The restart command, not run, and why.
    pub fn skipped(command: &str, why: &str) -> Restart {
        Restart {
            command: command.to_string(),
            ran: false,
            ok: false,
            exit_code: None,
            skipped: Some(why.to_string()),
        }
    }
}

/// Run `update.restart_command` (through `/bin/sh -c`, output into `log`).
pub fn run_restart(home: &Home, restart_cmd: &str, log: &File) -> Restart {
    let _ = writeln!(&*log, "--- restart: {restart_cmd} ---");
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(restart_cmd)
        .env("HERMES_HOME", &home.root);
    let st = run_logged(cmd, log, RESTART_TIMEOUT).ok().flatten();
    Restart {
        command: restart_cmd.to_string(),
        ran: true,
        ok: st.is_some_and(|s| s.success()),
        exit_code: st.and_then(|s| s.code()),
        skipped: None,
    }
}

/// GET `url` until it answers 2xx or `deadline` passes.
pub fn health_check(url: &str, deadline: Duration) -> Health {
    let failed = |status: Option<u16>, detail: String, operator: bool| Health {
        url: url.into(),
        checked: true,
        ok: false,
        status,
        detail,
        operator,
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return failed(None, format!("cannot start the async runtime: {e}"), false),
    };
    rt.block_on(async {
        let client = match crate::net::client_builder()
            .timeout(Duration::from_secs(5))
            .build()
        {
            Ok(c) => c,
            Err(e) => return failed(None, e.to_string(), false),
        };
        let end = Instant::now() + deadline;
        let mut last;
        let mut status = None;
        let mut operator = false;
        loop {
            match client.get(url).send().await {
                Ok(r) => {
                    let code = r.status();
                    let body: serde_json::Value = r.json().await.unwrap_or_default();
                    operator = body["service"] == "hermes-operator";
                    let state = body["status"].as_str().unwrap_or("");
                    let reason = body["reason"].as_str().unwrap_or("");
                    if code.is_success() {
                        return Health {
                            url: url.into(),
                            checked: true,
                            ok: true,
                            status: Some(code.as_u16()),
                            detail: if state == "degraded" {
                                format!("answered: degraded ({reason})")
                            } else {
                                "answered".into()
                            },
                            operator,
                        };
                    }
                    status = Some(code.as_u16());
                    last = if reason.is_empty() {
                        format!("HTTP {code}")
                    } else {
                        format!("HTTP {code}: {reason}")
                    };
                }
                Err(e) => last = e.to_string(),
            }
            if Instant::now() >= end {
                return failed(status, last, operator);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    })
}
