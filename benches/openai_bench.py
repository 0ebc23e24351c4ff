#!/usr/bin/env python3
"""The OpenAI-compatible endpoint's cost (issue: personal API keys).

    python3 benches/openai_bench.py [--runs 40]

1. Starts the REAL Hermes 0.19.0 gateway (API server only) against
   tests/fixtures/fake_model.py on 127.0.0.1, in a throwaway HERMES_HOME,
   and `hermes-operator serve` (release) in front of it with a user and a
   personal API key.
2. Sends the same non-streaming chat completion in turn to the operator's
   `POST /v1/chat/completions` (with a `deny` key: authentication, session
   row, events, one Hermes chat completion continuing the session,
   reconciliation), to Hermes' own `POST /v1/chat/completions` on the same
   gateway (with Hermes' key), and to Hermes' `/v1/runs` + event stream
   (what the operator drives for streaming calls and `wait` keys), and
   prints the medians and the medians of the paired differences: the
   overhead per call over Hermes' chat completions (goal < 5 ms). A fourth
   call per round is Hermes' own chat completion into a session row written
   beforehand the way the operator writes one (`source='operator'`,
   continued by `X-Hermes-Session-Id`): what attributing a call to a session
   costs Hermes itself. Last, the operator's calls less the time `serve`
   waited on Hermes (its `Server-Timing` header): what the operator adds
   around Hermes' answer, measured within each call, so Hermes' own
   variation from call to call is not in it. The order of the four calls is shuffled every round
   (seeded: the same order on every run), so that no call always follows
   the same other one, and each call starts after a pause of `--pause`
   seconds, so that what Hermes does after answering one call (it keeps
   working in the background) is not paid by the next. Differences are
   given with a 95% bootstrap interval of their median: Hermes' own time
   varies by several ms from call to call.
3. Runs examples/key_auth.rs: authenticating a key among 1,000 (goal < 50 µs).
Everything is loopback-only and bounded; the processes are stopped at the end.
"""
import argparse
import json
import os
import random
import secrets
import shutil
import sqlite3
import statistics
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from gateway_lab import free_port, operator_home, start_gateway, stop_all

ROOT = Path(__file__).resolve().parent.parent
VENV = Path(os.environ.get("HERMES_OPERATOR_TEST_VENV",
                           Path.home() / ".cache/hermes-operator-test/venv-0.19.0"))


def post(url, bearer, body, session=None):
    headers = {"Authorization": f"Bearer {bearer}", "Content-Type": "application/json"}
    if session:
        headers["X-Hermes-Session-Id"] = session
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST", headers=headers)
    t = time.perf_counter()
    with urllib.request.urlopen(req, timeout=120) as r:
        out = json.load(r)
        timing = r.headers.get("Server-Timing")
    ms = (time.perf_counter() - t) * 1e3
    if timing:
        out["_hermes_ms"] = float(timing.split("hermes;dur=")[1].split(";")[0])
    return ms, out


def run_direct(url, key, body):
    """What the operator does underneath: Hermes' `POST /v1/runs`, then its
    event stream until the run completes."""
    req = urllib.request.Request(url + "/v1/runs", method="POST",
                                 data=json.dumps({"input": body["messages"][-1]["content"],
                                                  "model": body["model"]}).encode(),
                                 headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    t = time.perf_counter()
    with urllib.request.urlopen(req, timeout=120) as r:
        run_id = json.load(r)["run_id"]
    req = urllib.request.Request(url + f"/v1/runs/{run_id}/events", headers={"Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(req, timeout=120) as r:
        for line in r:
            if b"run.completed" in line or b"run.failed" in line:
                break
    return (time.perf_counter() - t) * 1e3


def median_ci(xs, rounds=2000):
    """The median of `xs` and a 95% bootstrap interval for it (seeded)."""
    rng = random.Random(7)
    meds = sorted(statistics.median(rng.choices(xs, k=len(xs))) for _ in range(rounds))
    return statistics.median(xs), meds[int(0.025 * rounds)], meds[int(0.975 * rounds) - 1]


def fmt_ci(xs):
    m, lo, hi = median_ci(xs)
    return f"{m:.2f} ms (95% interval {lo:.2f} … {hi:.2f})"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=40)
    ap.add_argument("--pause", type=float, default=0.05)
    ap.add_argument("--raw", help="also write every round's times (ms) to this JSON file")
    ap.add_argument("--pairs-only", action="store_true",
                    help="only the operator's call and Hermes' own chat completion each round (twice the "
                         "rounds in the same time, for a narrower interval)")
    args = ap.parse_args()
    if not (VENV / "bin/hermes").exists():
        raise SystemExit(f"no Hermes venv at {VENV}: run `cargo test` once (it creates it)")
    subprocess.run(["cargo", "build", "--release", "--bin", "hermes-operator", "--example", "key_auth"],
                   cwd=ROOT, check=True)
    root = Path(tempfile.mkdtemp(prefix="hermes-operator-openaibench-"))
    procs = []
    try:
        url, hermes_key, home = start_gateway(root, VENV, procs)
        op = operator_home(home, url)
        made = json.loads(subprocess.run(op + ["--json", "user", "key", "create", "alice"], check=True,
                                         capture_output=True, text=True).stdout)
        port = free_port()
        serve = subprocess.Popen(op + ["serve", "--bind", f"127.0.0.1:{port}"], stdout=subprocess.DEVNULL,
                                 stderr=open(root / "serve.log", "w"), start_new_session=True)
        procs.append(serve)
        base = f"http://127.0.0.1:{port}"
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=2):
                    break
            except Exception:
                time.sleep(0.1)
        req = urllib.request.Request(base + "/v1/models", headers={"Authorization": f"Bearer {made['key']}"})
        with urllib.request.urlopen(req, timeout=10) as r:
            model = json.load(r)["data"][0]["id"]
        ops, direct, runs, diffs, attributed, attr_diffs, around = [], [], [], [], [], [], []
        db = sqlite3.connect(home / "state.db", timeout=10)
        order = random.Random(12)
        for i in range(args.runs + 2):
            body = {"model": model, "messages": [{"role": "user", "content": f"hello {i}"}]}
            sid = "op_" + secrets.token_hex(6)
            with db:
                db.execute("INSERT INTO sessions (id, source, user_id, started_at) VALUES (?, 'operator', 'u', ?)",
                           (sid, time.time()))
            calls = [
                ("a", lambda: post(base + "/v1/chat/completions", made["key"], body)),
                ("b", lambda: post(url + "/v1/chat/completions", hermes_key, body)),
                ("c", lambda: (run_direct(url, hermes_key, body), None)),
                ("d", lambda: post(url + "/v1/chat/completions", hermes_key, body, session=sid)),
            ]
            if args.pairs_only:
                calls = calls[:2]
            order.shuffle(calls)
            got = {}
            for name, f in calls:
                time.sleep(args.pause)
                got[name] = f()
            (a, ra), (b, rb) = got["a"], got["b"]
            (c, _), (d, _) = got.get("c", (None, None)), got.get("d", (None, None))
            assert ra["choices"][0]["message"]["content"] == rb["choices"][0]["message"]["content"], (ra, rb)
            if i >= 2:  # the first rounds warm every side up
                ops.append(a)
                direct.append(b)
                diffs.append(a - b)
                around.append(a - ra["_hermes_ms"])
                if not args.pairs_only:
                    runs.append(c)
                    attributed.append(d)
                    attr_diffs.append(d - b)
        if args.raw:
            Path(args.raw).write_text(json.dumps({"operator": ops, "direct": direct, "runs": runs,
                                                  "attributed": attributed,
                                                  "operator_less_hermes": around}))
        print(f"| chat completion through the operator (`/v1/chat/completions`, key) | "
              f"{statistics.median(ops):.1f} ms |")
        print(f"| same completion straight to Hermes' `/v1/chat/completions` | {statistics.median(direct):.1f} ms |")
        if not args.pairs_only:
            print(f"| same input straight to Hermes' `/v1/runs` + its event stream (what the operator drives) | "
                  f"{statistics.median(runs):.1f} ms |")
            print(f"| same completion to Hermes' `/v1/chat/completions` into an operator-written session row "
                  f"(`X-Hermes-Session-Id`) | {statistics.median(attributed):.1f} ms |")
            print(f"| Hermes' own cost of continuing a session by header (median of paired differences) | "
                  f"{fmt_ci(attr_diffs)} |")
            print(f"| Hermes' `/v1/runs` over its chat completions (median of paired differences) | "
                  f"{fmt_ci([c - b for b, c in zip(direct, runs)])} |")
        print(f"| operator overhead per call over Hermes' chat completions (median of {len(diffs)} paired "
              f"differences) | {fmt_ci(diffs)} |")
        print(f"| the same calls through the operator less the time `serve` waited on Hermes (its `Server-Timing`): "
              f"everything the operator adds around Hermes' answer, as the client sees it (median of {len(around)}) | "
              f"{fmt_ci(around)} |")
    finally:
        stop_all(procs)
        shutil.rmtree(root, ignore_errors=True)
    r = json.loads(subprocess.run([str(ROOT / "target/release/examples/key_auth")], check=True,
                                  capture_output=True, text=True).stdout)
    print(f"| key authentication (`ops::keys::authenticate`, 1,000 keys stored; median of {r['batches']} "
          f"batches) | {r['key_auth_median_us']:.1f} µs |")


if __name__ == "__main__":
    main()
