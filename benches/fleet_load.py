#!/usr/bin/env python3
"""Reads and logins of `serve`: one host on SQLite beside two replicas on the
fleet's PostgreSQL (issue 20), loopback only, bounded.

    python3 benches/fleet_load.py [--sessions 10000] [--duration 8] [--runs 3] [--connections 32]

What it does (documented in README, "Benchmarks"):
  1. builds the release binary and makes load.py's HERMES_HOME: a state.db
     written by the REAL Hermes 0.19.0 with --sessions operator sessions,
     accounts in users.db;
  2. one `serve` on that home (SQLite): `GET /api/sessions?limit=50` with
     wrk (an auditor's token) and logins as fast as 4 clients can get them
     (each an Argon2id verification and audit events);
  3. a private PostgreSQL 15 (benches/fleet_bench.py's Cluster), `store
     migrate` of the same home (its events and accounts), and two `serve`
     replicas on it: the same reads, split over both by two wrk processes
     at once (their requests/s summed, the worse p99 reported), and the
     same logins alternating between them;
  4. the replicas again while pgbench's TPC-B-like load (2 clients) runs on
     the same PostgreSQL.

Reports medians over --runs as a Markdown table. Goals (issue 20): list >=
10,000 req/s across two replicas with p99 < 20 ms. Everything shares the
machine's cores (wrk, serve, PostgreSQL, pgbench): only ratios from one run
mean anything.
"""
import argparse
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import load  # noqa: E402
from fleet_bench import Cluster  # noqa: E402


def start_serve(home, log):
    port = load.free_port()
    srv = subprocess.Popen([str(load.BIN), "--hermes-home", str(home), "serve", "--bind", f"127.0.0.1:{port}"],
                           stdout=subprocess.DEVNULL, stderr=log)
    base = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(base + "/healthz", timeout=1).read()
            return srv, base
        except Exception:  # noqa: BLE001 - not up yet
            time.sleep(0.1)
    raise SystemExit(f"serve did not start; see {log.name}")


def reads(bases, token, duration, connections):
    """wrk on every base at once (connections split); summed rps, worst p99."""
    out = [None] * len(bases)

    def one(i, base):
        out[i] = load.wrk(base + "/api/sessions?limit=50", token, duration,
                          max(1, connections // len(bases)), 1)

    ts = [threading.Thread(target=one, args=(i, b)) for i, b in enumerate(bases)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return {"rps": sum(r["rps"] for r in out), "p50_ms": max(r["p50_ms"] for r in out),
            "p99_ms": max(r["p99_ms"] for r in out), "non_2xx": sum(r["non_2xx"] for r in out)}


def logins(bases, duration, clients=4):
    """Logins as fast as `clients` threads get them, alternating over bases
    and over LOGIN_USERS."""
    lat, failed = [], [0]
    stop = time.time() + duration

    def client(k):
        i = k
        while time.time() < stop:
            t0 = time.time()
            try:
                load.post_json(f"{bases[i % len(bases)]}/auth/login",
                               {"username": LOGIN_USERS[i % len(LOGIN_USERS)], "password": load.PASSWORD})
                lat.append((time.time() - t0) * 1e3)
            except Exception:  # noqa: BLE001 - counted
                failed[0] += 1
            i += 1

    ts = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    lat.sort()
    return {"per_s": len(lat) / duration, "p99_ms": lat[int(len(lat) * 0.99) - 1] if lat else 0.0,
            "failed": failed[0]}


# Logins are capped at 30 a minute per account (server/state.rs Action):
# enough accounts that the cap is never what is measured.
LOGIN_USERS = [f"login{i:03}" for i in range(256)]


def scenario(bases, token, a):
    load.wrk(bases[0] + "/api/sessions?limit=50", token, 2, a.connections, 1)  # warm-up
    r = [reads(bases, token, a.duration, a.connections) for _ in range(a.runs)]
    lg = [logins(bases, a.duration) for _ in range(a.runs)]
    return {"rps": statistics.median(x["rps"] for x in r), "p99_ms": statistics.median(x["p99_ms"] for x in r),
            "non_2xx": sum(x["non_2xx"] for x in r),
            "logins_per_s": statistics.median(x["per_s"] for x in lg),
            "login_p99_ms": statistics.median(x["p99_ms"] for x in lg),
            "login_failed": sum(x["failed"] for x in lg)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sessions", type=int, default=10000)
    ap.add_argument("--duration", type=int, default=8)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--connections", type=int, default=32)
    a = ap.parse_args()
    load.ensure_venv()
    load.sh(["cargo", "build", "--release", "--quiet"], cwd=load.ROOT)
    tmp = tempfile.mkdtemp(prefix="hermes-op-fleet-load-")
    home = load.make_home(tmp, a.sessions)
    for name in LOGIN_USERS:
        load.op(home, "user", "add", name, "--role", "user", "--password-stdin", stdin=load.PASSWORD + "\n")
    results = {}
    procs = []
    try:
        log = open(Path(tmp) / "serve-sqlite.log", "w")
        srv, base = start_serve(home, log)
        procs.append(srv)
        token = load.post_json(base + "/auth/login", {"username": "audrey", "password": load.PASSWORD})["access_token"]
        results["one host, SQLite"] = scenario([base], token, a)
        srv.terminate()
        srv.wait()
        with Cluster(max_connections=100) as pg:
            pg.createdb("fleet")
            prof = home / "profiles/operator"
            with open(prof / ".env", "a") as f:
                f.write(f"OPERATOR_STORE_PASSWORD={pg.password}\n")
            cfg = (prof / "config.yaml").read_text()
            (prof / "config.yaml").write_text(
                cfg + f"store:\n  url: postgres://postgres@127.0.0.1:{pg.port}/fleet\n  host: bench-1\n")
            load.op(home, "store", "migrate")
            bases = []
            for i in range(2):
                srv, b = start_serve(home, open(Path(tmp) / f"serve-pg{i}.log", "w"))
                procs.append(srv)
                bases.append(b)
            token = load.post_json(bases[0] + "/auth/login",
                                   {"username": "audrey", "password": load.PASSWORD})["access_token"]
            results["two replicas, PostgreSQL"] = scenario(bases, token, a)
            bench = pg.pgbench_load()
            try:
                time.sleep(1)
                results["two replicas, PostgreSQL, pgbench load"] = scenario(bases, token, a)
            finally:
                bench.terminate()
                bench.wait()
    finally:
        for p in procs:
            p.terminate()
            p.wait()
    print(f"{a.sessions} operator sessions; wrk {a.connections} connections, {a.duration} s; "
          f"logins: 4 clients; medians of {a.runs} runs")
    print("| | list req/s | list p99 ms | logins/s | login p99 ms |")
    print("|---|---:|---:|---:|---:|")
    for name, r in results.items():
        print(f"| {name} | {r['rps']:.0f} | {r['p99_ms']:.1f} | {r['logins_per_s']:.1f} | {r['login_p99_ms']:.0f} |")
    bad = {n: (r["non_2xx"], r["login_failed"]) for n, r in results.items() if r["non_2xx"] or r["login_failed"]}
    if bad:
        print(f"non-2xx reads / failed logins: {bad}")


if __name__ == "__main__":
    main()
