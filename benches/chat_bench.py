#!/usr/bin/env python3
"""Chat-path benchmarks (issue: chat through the real Hermes agent).

    python3 benches/chat_bench.py [--runs 40]

1. Starts the REAL Hermes 0.19.0 gateway (API server only) against
   tests/fixtures/fake_model.py on 127.0.0.1, in a throwaway HERMES_HOME.
2. Runs examples/turn_overhead.rs: the same one-line turn alternately through
   the operator's `chat::run_turn` and straight to Hermes' /v1/runs, and
   prints both medians and the median of the paired differences — the
   operator's own overhead per turn (goal < 5 ms).
3. Runs benches/hook_bench.sh: `hermes-operator hook` per event, whole
   process (goal < 5 ms).
Everything is loopback-only and bounded; the gateway is stopped at the end.
"""
import argparse
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from gateway_lab import operator_home, start_gateway, stop_all

ROOT = Path(__file__).resolve().parent.parent
VENV = Path(os.environ.get("HERMES_OPERATOR_TEST_VENV",
                           Path.home() / ".cache/hermes-operator-test/venv-0.19.0"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=40)
    ap.add_argument("--hook-runs", type=int, default=200)
    args = ap.parse_args()
    if not (VENV / "bin/hermes").exists():
        raise SystemExit(f"no Hermes venv at {VENV}: run `cargo test` once (it creates it)")
    subprocess.run(["cargo", "build", "--release", "--bin", "hermes-operator", "--example", "turn_overhead"],
                   cwd=ROOT, check=True)
    root = Path(tempfile.mkdtemp(prefix="hermes-operator-chatbench-"))
    procs = []
    try:
        url, _key, home = start_gateway(root, VENV, procs)
        operator_home(home, url)
        out = subprocess.run([str(ROOT / "target/release/examples/turn_overhead"), str(home), "alice",
                              str(args.runs)], check=True, capture_output=True, text=True).stdout
        r = json.loads(out)
        print(f"| chat turn through the operator (library) | {r['operator_median_ms']:.1f} ms |")
        print(f"| same turn straight to Hermes /v1/runs | {r['direct_median_ms']:.1f} ms |")
        print(f"| operator overhead per turn (median of paired differences, {r['runs']} pairs) | "
              f"{r['overhead_median_ms']:.2f} ms |")
        print(f"| operator's own time per turn (measured inside run_turn: total minus waiting on Hermes) | "
              f"{r['own_time_median_ms']:.2f} ms |")
    finally:
        stop_all(procs)
        shutil.rmtree(root, ignore_errors=True)
    subprocess.run(["bash", str(ROOT / "benches/hook_bench.sh"), str(args.hook_runs)], cwd=ROOT, check=True,
                   env=dict(os.environ, SKIP_BUILD="1"))


if __name__ == "__main__":
    main()
