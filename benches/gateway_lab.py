"""What the benchmarks that start a real Hermes gateway share: its
config.yaml (the fake model on loopback, the API server, manual approvals as
the operator requires) and its environment (a throwaway HOME, no lazy
installs)."""
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def hermes_config_yaml(model_port, api_port):
    return f"""model:
  provider: custom
  default: fake-model
  base_url: http://127.0.0.1:{model_port}/v1
  api_key: sk-fake-local-key-0123456789
  context_length: 131072
platforms:
  api_server:
    enabled: true
    extra: {{host: 127.0.0.1, port: {api_port}}}
platform_toolsets:
  api_server: [terminal, file, todo]
approvals: {{mode: manual}}
security: {{allow_lazy_installs: false, tirith_enabled: false}}
"""


def gateway_env(root, home, key):
    """`root` holds the gateway's HOME (`home/`), TMPDIR (`tmp/`) and lock dir (`locks/`)."""
    root = Path(root)
    for d in ("home", "tmp", "locks"):
        (root / d).mkdir(parents=True, exist_ok=True)
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "HOME": str(root / "home"),
            "TMPDIR": str(root / "tmp"), "HERMES_GATEWAY_LOCK_DIR": str(root / "locks"),
            "HERMES_HOME": str(home), "HERMES_DISABLE_LAZY_INSTALLS": "1", "API_SERVER_ENABLED": "true",
            "API_SERVER_KEY": key, "NO_COLOR": "1"}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_health(url, key, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            req = urllib.request.Request(url + "/v1/models", headers={"Authorization": f"Bearer {key}"})
            with urllib.request.urlopen(req, timeout=2) as r:
                if r.status == 200:
                    return
        except Exception:
            time.sleep(0.2)
    raise SystemExit(f"gateway did not come up at {url}")


def start_gateway(root, venv, procs):
    """The fake model and the real Hermes gateway (API server only) under
    `root`; their processes are appended to `procs` (stop them with
    `stop_all`). Returns (API server URL, its key, HERMES_HOME)."""
    root = Path(root)
    home = root / "hermes"
    for d in (home, root / "home", root / "tmp", root / "locks"):
        d.mkdir(parents=True, exist_ok=True)
    key = "bench-" + secrets.token_hex(16)
    model = subprocess.Popen([sys.executable, str(ROOT / "tests/fixtures/fake_model.py"), "--port", "0",
                              "--log", str(root / "model.jsonl")],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                             start_new_session=True)
    procs.append(model)
    mport = int(model.stdout.readline().split()[1])
    port = free_port()
    (home / "config.yaml").write_text(hermes_config_yaml(mport, port))
    (home / ".env").write_text(f"API_SERVER_KEY={key}\n")
    os.chmod(home / ".env", 0o600)
    env = {**gateway_env(root, home, key), "API_SERVER_HOST": "127.0.0.1", "API_SERVER_PORT": str(port)}
    gw = subprocess.Popen([str(Path(venv) / "bin/hermes"), "gateway", "run", "--accept-hooks"], env=env,
                          cwd=root / "home", stdout=open(root / "gateway.log", "w"),
                          stderr=subprocess.STDOUT, start_new_session=True)
    procs.append(gw)
    url = f"http://127.0.0.1:{port}"
    wait_health(url, key)
    return url, key, home


def stop_all(procs):
    for p in procs:
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)


def operator_home(home, url):
    """The operator's profile on a lab gateway's home (its API URL and its
    own JWT secret) and a user `alice`; returns the command prefix."""
    prof = Path(home) / "profiles/operator"
    prof.mkdir(parents=True, mode=0o700, exist_ok=True)
    (prof / "config.yaml").write_text(f"hermes:\n  api_url: {url}\n")
    (prof / ".env").write_text(f"OPERATOR_JWT_SECRET={secrets.token_hex(32)}\n")
    os.chmod(prof / ".env", 0o600)
    op = [str(ROOT / "target/release/hermes-operator"), "--hermes-home", str(home)]
    subprocess.run(op + ["user", "add", "alice", "--role", "user", "--password-stdin"],
                   input=b"bench password 1234\n", check=True, capture_output=True)
    return op
