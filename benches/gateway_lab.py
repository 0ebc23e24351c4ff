"""What the benchmarks that start a real Hermes gateway share: its
config.yaml (the fake model on loopback, the API server, manual approvals as
the operator requires) and its environment (a throwaway HOME, no lazy
installs)."""
import os
from pathlib import Path


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
