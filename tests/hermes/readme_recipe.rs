//! README's "Chat with a real Hermes in five minutes", run as written
//! (issue 22): two accounts, the gateway, `install --operator-user`, the
//! hook, a chat, and `doctor` with no failure. What the test supplies
//! instead of the README's text, each replaced where the README says it
//! once: the account names, directories and the binary's path (the
//! recipe's first line), the model endpoint (the fake model), the ports
//! (free ones), the venv (the harness's, made with the same `pip install`
//! line, checked below) and the `systemctl` line (no systemd here: the
//! unit `install` wrote is started by hand, its `ExecStart` as its `User`).
use crate::common::accounts::{enterable, Accounts, Reaped};
use crate::common::pty::Pty;
use crate::common::{self, free_port, Gen};
use serde_json::Value;
use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const FIRST_LINE: &str = "HERMES_USER=hermes OPERATOR_USER=hermes-operator HERMES_DIR=/srv/hermes OP=/usr/local/bin/hermes-operator\n";
const VENV_LINE: &str = "sudo -u $HERMES_USER python3 -m venv $HERMES_DIR/venv\n";
const SYSTEMCTL_LINE: &str = "systemctl daemon-reload && systemctl enable --now hermes-operator";
const PASSWORD: &str = "correct horse battery staple";

/// The recipe: the first ```sh block after its heading.
fn recipe() -> String {
    let readme =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let at = readme
        .find("### Chat with a real Hermes in five minutes")
        .expect("the recipe's heading");
    let start = at + readme[at..].find("```sh\n").unwrap() + "```sh\n".len();
    let end = start + readme[start..].find("\n```\n").unwrap();
    readme[start..end].to_string() + "\n"
}

/// `text` with `from` (found exactly `n` times) replaced by `to`.
fn replace(text: &str, from: &str, to: &str, n: usize) -> String {
    assert_eq!(
        text.matches(from).count(),
        n,
        "{from:?} in the recipe:\n{text}"
    );
    text.replace(from, to)
}

fn readme_recipe_ends_with_doctor_green(gen: Gen) {
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let (mut accounts, _) = Accounts::make(&[]);
    let tag = format!(
        "{:05x}{}",
        std::process::id() & 0xfffff,
        gen.hermes_version().replace('.', "")
    );
    let (hermes, operator) = (format!("hopt-rh{tag}"), format!("hopt-ro{tag}"));
    accounts.adopt(&hermes);
    accounts.adopt(&operator);
    let bin = Path::new(env!("CARGO_BIN_EXE_hermes-operator"));
    enterable(bin);
    enterable(&gen.venv().join("bin"));
    let units = dir.path().join("systemd");
    fs::create_dir(&units).unwrap();
    // Like /etc/systemd/system: every account may look.
    fs::set_permissions(&units, fs::Permissions::from_mode(0o755)).unwrap();
    let hermes_dir = dir.path().join("srv");

    // The fake model, on loopback.
    let mut model = Command::new(gen.python())
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fake_model.py"))
        .args(["--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(model.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let model_port: u16 = line.trim().strip_prefix("PORT ").unwrap().parse().unwrap();
    let _model = Reaped(model);

    let (api_port, serve_port) = (free_port(), free_port());
    let mut text = recipe();
    text = replace(
        &text,
        FIRST_LINE,
        &format!(
            "HERMES_USER={hermes} OPERATOR_USER={operator} HERMES_DIR={} OP={}\n",
            hermes_dir.display(),
            bin.display()
        ),
        1,
    );
    // The venv the harness made with this very requirement.
    let pip =
        "sudo -u $HERMES_USER $HERMES_DIR/venv/bin/pip install 'hermes-agent[messaging]==0.19.0'\n";
    assert_eq!(Gen::H019.pip_spec(), "hermes-agent[messaging]==0.19.0");
    text = replace(&text, pip, "", 1);
    text = replace(
        &text,
        VENV_LINE,
        &format!("ln -s {} $HERMES_DIR/venv\n", gen.venv().display()),
        1,
    );
    text = replace(
        &text,
        "https://openrouter.ai/api/v1",
        &format!("http://127.0.0.1:{model_port}/v1"),
        1,
    );
    text = replace(&text, "your-model-name", "fake-model", 1);
    text = replace(&text, "sk-or-...", "sk-fake", 1);
    text = replace(&text, "8642", &api_port.to_string(), 3);
    text = replace(
        &text,
        SYSTEMCTL_LINE,
        &format!(
            "u=$(sed -n 's/^User=//p' {unit}); x=$(sed -n 's/^ExecStart=//p' {unit}); \
             sudo -u \"$u\" sh -c \"exec $x --bind 127.0.0.1:{serve_port}\" >> $HERMES_DIR/serve.log 2>&1 & \
             until curl -fs http://127.0.0.1:{serve_port}/healthz >/dev/null; do sleep 1; done",
            unit = units.join("hermes-operator.service").display()
        ),
        1,
    );
    // While the recipe's servers still run (they end with its terminal):
    // doctor's report as JSON, as the operator's account, with the unit's
    // directory that `sudo` does not pass on.
    let report_file = dir.path().join("doctor.json");
    text.push_str(&format!(
        "runuser -u $OPERATOR_USER -- env HERMES_HOME=$HERMES_HOME HERMES_OPERATOR_SYSTEMD_DIR={} $OP --json doctor > {}\n",
        units.display(),
        report_file.display()
    ));
    let script = dir.path().join("recipe.sh");
    fs::write(&script, &text).unwrap();

    let mut pty = Pty::shell(
        "exec bash \"$RECIPE\"",
        &[("RECIPE", &script), ("HERMES_OPERATOR_SYSTEMD_DIR", &units)],
    );
    for who in ["admin", "alice"] {
        pty.wait_for(&format!("Password for {who}"), 1, Duration::from_secs(300));
        pty.send(&format!("{PASSWORD}\n"));
        pty.wait_for(
            "Repeat password",
            if who == "admin" { 1 } else { 2 },
            Duration::from_secs(30),
        );
        pty.send(&format!("{PASSWORD}\n"));
    }
    let (status, shown) = pty.finish(Duration::from_secs(300));
    let logs = || {
        ["gateway.log", "serve.log"]
            .map(|f| {
                format!(
                    "--- {f}\n{}",
                    fs::read_to_string(hermes_dir.join(f)).unwrap_or_default()
                )
            })
            .join("\n")
    };
    assert!(status.success(), "{shown}\n{}", logs());
    assert!(
        shown.contains("Hello from the fake model"),
        "{shown}\n{}",
        logs()
    );
    assert!(shown.contains(", 0 fail"), "{shown}\n{}", logs());

    // What doctor says, check by check.
    let report: Value = serde_json::from_str(&fs::read_to_string(&report_file).unwrap())
        .unwrap_or_else(|e| panic!("{e}: {shown}"));
    let not_passed: Vec<(String, String)> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] != "pass")
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    // 0.19 runs a tool when the hook cannot (no fail_closed): a warning the
    // README names; 0.20+ honours fail_closed.
    let expected: Vec<(String, String)> = match gen {
        Gen::H019 => vec![("hook".into(), "warn".into())],
        Gen::H022 => unreachable!("see readme_recipe_ends_with_doctor_green_hermes_0_19"),
    };
    assert_eq!(not_passed, expected, "{report:#}\n{shown}");
    for (name, says) in [
        ("agent_boundary", &hermes),
        ("hermes_install", &"gateway.pid".to_string()),
        ("hermes_api", &format!("127.0.0.1:{api_port}")),
    ] {
        let c = common::doctor_check(&report, name);
        assert!(c["detail"].as_str().unwrap().contains(says.as_str()), "{c}");
    }
    // install left the units' directory as it was (it is not the
    // operator's to make private).
    assert_eq!(
        fs::metadata(&units).unwrap().permissions().mode() & 0o777,
        0o755
    );
    // Hermes was restarted (the hook loaded) and kept its home open to the
    // operator's group.
    let mode = fs::metadata(hermes_dir.join(".hermes"))
        .unwrap()
        .permissions()
        .mode()
        & 0o7777;
    assert_eq!(mode, 0o2770, "{mode:o}");
}

/// The recipe installs 0.19.0, so it runs on 0.19. Not on 0.22: there
/// Hermes creates state.db 0600 and tightens it to 0600 whenever it opens
/// it for writing (hermes_state.py `_secure_state_db_files`), so a state.db
/// made after `install --operator-user` is out of the operator's reach
/// (README "Not done yet").
#[test]
fn readme_recipe_ends_with_doctor_green_hermes_0_19() {
    readme_recipe_ends_with_doctor_green(Gen::H019)
}
