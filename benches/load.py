#!/usr/bin/env python3
"""Load benchmark of `hermes-operator serve` (loopback only, bounded).

    python3 benches/load.py [--sessions 10000] [--duration 10] [--runs 3] [--connections 32]

What it does (documented in README, "Benchmarks"):
  1. builds the release binary;
  2. makes a HERMES_HOME whose state.db is written by the REAL Hermes 0.19.0
     (tests/fixtures/hermes_fixture.py `make`, through Hermes' own SessionDB)
     with --sessions operator sessions owned by four users.db accounts, plus
     2,000 native ones;
  3. starts `serve` on 127.0.0.1 (Hermes itself is not needed for reads);
  4. runs `wrk` (Debian: apt-get install wrk) with a Lua script that sends an
     auditor's Bearer token: `GET /api/sessions?limit=50` (the 50 newest of
     the 10,000 operator sessions), --runs times for --duration seconds;
  5. the same while a second process logs in 20 times per second (Argon2id
     verification + audit events);
  6. `GET /healthz` (unauthenticated, so it must be cheap: answered from a
     check made at most once a second);
  7. (unless --no-chat) reads while 4 chat turns run through `serve`
     against the REAL Hermes gateway and the fake model
     (tests/fixtures/fake_model.py), and a writer commits 50 Hermes
     messages per second to state.db through Hermes' own SessionDB: every
     commit invalidates the session-list cache, so this is the realistic
     read latency of a busy server (goal p99 < 20 ms);
  8. samples the server's resident memory (/proc/PID/status VmRSS) during
     the runs and reports its peak.

Reports requests/s, p50 and p99 latency (median over runs) and peak RSS,
as a Markdown table on stdout and bench-results/load.json. Goals (2 cores,
wrk on the same machine): >= 10,000 req/s with p99 < 20 ms; with 20
logins/s p99 of reads < 50 ms; /healthz >= 20,000 req/s; RSS < 64 MB. Every request goes to
127.0.0.1; every loop is bounded by count and time.
"""
import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from gateway_lab import gateway_env, hermes_config_yaml

ROOT = Path(__file__).resolve().parent.parent
VENV = Path(os.environ.get("HERMES_OPERATOR_TEST_VENV",
                           Path.home() / ".cache/hermes-operator-test/venv-0.19.0"))
FIXTURE = ROOT / "tests/fixtures/hermes_fixture.py"
BIN = ROOT / "target/release/hermes-operator"
PASSWORD = "load benchmark password"
SECRET = "load-bench-jwt-secret-0123456789abcdef0123456789abcdef"


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def ensure_venv():
    if not (VENV / "bin/hermes").exists():
        print(f"creating Hermes venv at {VENV}", file=sys.stderr)
        sh([sys.executable, "-m", "venv", str(VENV)])
        sh([str(VENV / "bin/pip"), "install", "-q", "hermes-agent[messaging]==0.19.0"])


def op(home, *args, stdin=None):
    r = subprocess.run([str(BIN), "--hermes-home", str(home), *args], input=stdin,
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"hermes-operator {' '.join(args)} failed: {r.stderr}")
    return r.stdout


def make_home(tmp, sessions):
    home = Path(tmp) / "hermes"
    prof = home / "profiles/operator"
    prof.mkdir(parents=True)
    os.chmod(prof, 0o700)
    (prof / ".env").write_text(f"OPERATOR_JWT_SECRET={SECRET}\n")
    os.chmod(prof / ".env", 0o600)
    (home / ".env").write_text("API_SERVER_KEY=load-bench-hermes-key-0123\n")
    os.chmod(home / ".env", 0o600)
    (prof / "config.yaml").write_text("hermes:\n  api_url: http://127.0.0.1:9\n")
    ids = []
    for name, role in [("audrey", "auditor"), ("alice", "user"), ("bob", "user"),
                       ("carol", "user"), ("root", "admin")]:
        out = op(home, "--json", "user", "add", name, "--role", role, "--password-stdin",
                 stdin=PASSWORD + "\n")
        if name != "audrey":
            ids.append(json.loads(out)["id"])
    t0 = time.time()
    sh([str(VENV / "bin/python"), str(FIXTURE), "make", "--db", str(home / "state.db"),
        "--operator", str(sessions), "--native", "2000", "--users", ",".join(ids[:4]),
        "--seed", "7", "--batch", "500"], stdout=subprocess.DEVNULL,
       env={**os.environ, "HERMES_DISABLE_LAZY_INSTALLS": "1"})
    print(f"state.db: {sessions} operator + 2000 native sessions by the real Hermes "
          f"({time.time() - t0:.0f}s)", file=sys.stderr)
    return home


GATEWAY_KEY = "load-bench-hermes-key-0123"


def start_gateway(tmp, home):
    """The fake model and a real Hermes gateway (API server) on this
    HERMES_HOME; returns (url, [processes])."""
    root = Path(tmp)
    model = subprocess.Popen([sys.executable, str(ROOT / "tests/fixtures/fake_model.py"), "--port", "0",
                              "--log", str(root / "model.jsonl")], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    mport = int(model.stdout.readline().split()[1])
    port = free_port()
    (home / "config.yaml").write_text(hermes_config_yaml(mport, port))
    env = gateway_env(root / "gateway", home, GATEWAY_KEY)
    gw = subprocess.Popen([str(VENV / "bin/hermes"), "gateway", "run", "--accept-hooks"], env=env,
                          cwd=env["HOME"], stdout=open(root / "gateway.log", "w"),
                          stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            req = urllib.request.Request(url + "/v1/models", headers={"Authorization": f"Bearer {GATEWAY_KEY}"})
            with urllib.request.urlopen(req, timeout=2):
                return url, [model, gw]
        except Exception:  # noqa: BLE001
            time.sleep(0.3)
    raise SystemExit(f"the Hermes gateway did not come up ({root / 'gateway.log'})")


WRITER = """
import sys, time
sys.path.insert(0, sys.argv[1])
import hermes_fixture as f
db = f.open_db(sys.argv[2], clock=False)
sid = "load-writer-session"
db.ensure_session(sid, "cli")
rate, until, n = float(sys.argv[3]), time.time() + float(sys.argv[4]), 0
t0 = time.time()
while time.time() < until:
    db.append_message(sid, "user" if n % 2 == 0 else "assistant", f"writer message {n}")
    n += 1
    time.sleep(max(0.0, t0 + n / rate - time.time()))
print(n)
"""


def chat_loop(base, token, stop, counts):
    """Chat turns back to back (a new session every 5 turns)."""
    sid = None
    i = 0
    while not stop.is_set():
        body = {"message": f"load turn {i}"}
        if sid and i % 5:
            body["session_id"] = sid
        try:
            r = post_json(base + "/api/chat", body, timeout=60, token=token)
            sid = r["outcome"]["session_id"]
            counts["ok"] += 1
        except Exception:  # noqa: BLE001
            counts["failed"] += 1
            sid = None
        i += 1


def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def post_json(url, body, timeout=10, token=None):
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = "Bearer " + token
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


class Rss:
    """Samples VmRSS of a pid every 100 ms; keeps the peak (kB)."""

    def __init__(self, pid):
        self.pid, self.peak, self.stop = pid, 0, threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while not self.stop.is_set():
            try:
                for line in open(f"/proc/{self.pid}/status"):
                    if line.startswith("VmRSS:"):
                        self.peak = max(self.peak, int(line.split()[1]))
            except OSError:
                return
            time.sleep(0.1)


def parse_ms(v, unit):
    return float(v) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(url, token, duration, connections, threads):
    script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
    script.write('wrk.headers["Authorization"] = "Bearer %s"\n' % token)
    script.close()
    out = subprocess.run(["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{duration}s",
                          "--timeout", "5s", "--latency", "-s", script.name, url],
                         capture_output=True, text=True, check=True).stdout
    os.unlink(script.name)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    lat = dict((p, parse_ms(v, u)) for p, v, u in
               re.findall(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    return {"rps": rps, "p50_ms": lat["50"], "p99_ms": lat["99"],
            "non_2xx": int(non2xx.group(1)) if non2xx else 0,
            "socket_errors": errors.group(0) if errors else None}


def logins(base, per_second, stop, counts):
    """per_second logins (each an Argon2id verification), until stop or 120 s."""
    t_end = time.time() + 120
    interval = 1.0 / per_second
    nxt = time.time()
    users = ["alice", "bob", "carol"]
    i = 0
    while not stop.is_set() and time.time() < t_end:
        try:
            post_json(f"{base}/auth/login", {"username": users[i % 3], "password": PASSWORD})
            counts["ok"] += 1
        except Exception as e:  # noqa: BLE001 - counted, reported
            counts["failed"] += 1
            counts["last_error"] = str(e)
        i += 1
        nxt += interval
        time.sleep(max(0.0, nxt - time.time()))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sessions", type=int, default=10000)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--keep", action="store_true", help="keep the temp HERMES_HOME")
    ap.add_argument("--bin", help="benchmark this hermes-operator binary (default: build --release)")
    ap.add_argument("--no-chat", action="store_true", help="skip the chat + writer scenario (no gateway)")
    a = ap.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk not found: apt-get install wrk")
    ensure_venv()
    global BIN
    if a.bin:
        BIN = Path(a.bin).resolve()
    else:
        sh(["cargo", "build", "--release", "--quiet"], cwd=ROOT)
    tmp = tempfile.mkdtemp(prefix="hermes-op-load-")
    try:
        home = make_home(tmp, a.sessions)
        procs = []
        if not a.no_chat:
            gw_url, procs = start_gateway(tmp, home)
            (home / "profiles/operator/config.yaml").write_text(f"hermes:\n  api_url: {gw_url}\n")
        port = free_port()
        log = open(Path(tmp) / "serve.log", "w")
        srv = subprocess.Popen([str(BIN), "--hermes-home", str(home), "serve", "--bind",
                                f"127.0.0.1:{port}"], stdout=subprocess.DEVNULL, stderr=log)
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                urllib.request.urlopen(base + "/healthz", timeout=1).read()
                break
            except Exception:  # noqa: BLE001
                time.sleep(0.1)
        tok = post_json(base + "/auth/login", {"username": "audrey", "password": PASSWORD})["access_token"]
        url = base + "/api/sessions?limit=50"
        with urllib.request.urlopen(urllib.request.Request(url, headers={"Authorization": "Bearer " + tok})) as r:
            assert len(json.loads(r.read())) == 50
        rss = Rss(srv.pid)
        wrk(url, tok, 2, a.connections, a.threads)  # warm-up
        reads, mixed, login_counts, health = [], [], [], []
        for _ in range(a.runs):
            reads.append(wrk(url, tok, a.duration, a.connections, a.threads))
            stop = threading.Event()
            counts = {"ok": 0, "failed": 0}
            # 4 clients x 5 logins/s, so one slow login does not lower the rate.
            ts = [threading.Thread(target=logins, args=(base, 5, stop, counts), daemon=True)
                  for _ in range(4)]
            for t in ts:
                t.start()
            time.sleep(0.5)
            t0 = time.time()
            mixed.append(wrk(url, tok, a.duration, a.connections, a.threads))
            elapsed = time.time() - t0
            stop.set()
            for t in ts:
                t.join()
            counts["per_s"] = round(counts["ok"] / max(elapsed + 0.5, 1e-9), 1)
            login_counts.append(counts)
            health.append(wrk(base + "/healthz", tok, a.duration, a.connections, a.threads))
        chat_runs = []
        if not a.no_chat:
            toks = [post_json(base + "/auth/login", {"username": n, "password": PASSWORD})["access_token"]
                    for n in ("alice", "bob", "carol", "root")]
            for _ in range(a.runs):
                stop = threading.Event()
                counts = [{"ok": 0, "failed": 0} for _ in toks]
                ts = [threading.Thread(target=chat_loop, args=(base, t, stop, c), daemon=True)
                      for t, c in zip(toks, counts)]
                writer = subprocess.Popen(
                    [str(VENV / "bin/python"), "-c", WRITER, str(FIXTURE.parent), str(home / "state.db"),
                     "50", str(a.duration + 1.5)], stdout=subprocess.PIPE, text=True,
                    env={**os.environ, "HERMES_DISABLE_LAZY_INSTALLS": "1", "HERMES_HOME": str(home)})
                for t in ts:
                    t.start()
                time.sleep(1.0)
                t0 = time.time()
                r = wrk(url, tok, a.duration, a.connections, a.threads)
                elapsed = time.time() - t0
                stop.set()
                for t in ts:
                    t.join(timeout=90)
                written = int((writer.communicate(timeout=60)[0] or "0").strip() or 0)
                r["turns_per_s"] = round(sum(c["ok"] for c in counts) / max(elapsed + 1.0, 1e-9), 2)
                r["turns_failed"] = sum(c["failed"] for c in counts)
                r["writes_per_s"] = round(written / (a.duration + 1.5), 1)
                chat_runs.append(r)
        rss.stop.set()
        srv.send_signal(signal.SIGTERM)
        srv.wait(timeout=30)
        med = lambda xs, k: statistics.median(x[k] for x in xs)  # noqa: E731
        res = {
            "sessions": a.sessions, "connections": a.connections, "wrk_threads": a.threads,
            "duration_s": a.duration, "runs": a.runs, "cores": os.cpu_count(),
            "reads": {"rps": med(reads, "rps"), "p50_ms": med(reads, "p50_ms"),
                      "p99_ms": med(reads, "p99_ms"), "all": reads},
            "reads_with_logins": {"rps": med(mixed, "rps"), "p50_ms": med(mixed, "p50_ms"),
                                  "p99_ms": med(mixed, "p99_ms"), "all": mixed,
                                  "logins": login_counts},
            "healthz": {"rps": med(health, "rps"), "p50_ms": med(health, "p50_ms"),
                        "p99_ms": med(health, "p99_ms"), "all": health},
            "reads_with_chats_and_writer": ({"rps": med(chat_runs, "rps"), "p50_ms": med(chat_runs, "p50_ms"),
                                             "p99_ms": med(chat_runs, "p99_ms"), "all": chat_runs}
                                            if chat_runs else None),
            "peak_rss_mb": round(rss.peak / 1024, 1),
        }
        out = ROOT / "bench-results"
        out.mkdir(exist_ok=True)
        (out / "load.json").write_text(json.dumps(res, indent=2) + "\n")
        print(f"\n`GET /api/sessions?limit=50`, {a.sessions} operator sessions, "
              f"wrk -t{a.threads} -c{a.connections}, {a.duration}s x {a.runs} runs (median), "
              f"{os.cpu_count()} cores shared by server and wrk\n")
        print("| scenario | req/s | p50 ms | p99 ms | goal |")
        print("|---|---:|---:|---:|---|")
        r, m = res["reads"], res["reads_with_logins"]
        print(f"| reads | {r['rps']:.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | >= 10000 req/s, p99 < 20 ms |")
        lps = statistics.median(c["per_s"] for c in login_counts)
        print(f"| reads + {lps:.0f} logins/s | {m['rps']:.0f} | {m['p50_ms']:.2f} | {m['p99_ms']:.2f} | p99 < 50 ms |")
        h = res["healthz"]
        print(f"| `GET /healthz` | {h['rps']:.0f} | {h['p50_ms']:.2f} | {h['p99_ms']:.2f} | >= 20000 req/s |")
        if chat_runs:
            cr = res["reads_with_chats_and_writer"]
            tps = statistics.median(x["turns_per_s"] for x in chat_runs)
            wps = statistics.median(x["writes_per_s"] for x in chat_runs)
            print(f"| reads + 4 chat turns ({tps:.1f} turns/s) + {wps:.0f} Hermes writes/s "
                  f"(cache invalidated by each) | {cr['rps']:.0f} | {cr['p50_ms']:.2f} | {cr['p99_ms']:.2f} "
                  f"| p99 < 20 ms |")
            failed = sum(x["turns_failed"] for x in chat_runs)
            if failed:
                print(f"WARNING: {failed} chat turns failed", file=sys.stderr)
        print(f"\npeak RSS of serve: {res['peak_rss_mb']} MB (goal < 64 MB)")
        bad = sum(x["non_2xx"] for x in reads + mixed + health + chat_runs)
        if bad:
            print(f"WARNING: {bad} non-2xx responses", file=sys.stderr)
    finally:
        for p in locals().get("procs", []):
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except OSError:
                pass
        if a.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
