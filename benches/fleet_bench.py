#!/usr/bin/env python3
"""The fleet's audit log on PostgreSQL, measured beside events.db (issue 20).

    python3 benches/fleet_bench.py [--events 200000] [--batch 100] [--writers 4] [--hosts 2] [--runs 3] [--load]

Starts a private PostgreSQL cluster (Debian's server binaries; initdb into a
scratch directory, a free loopback port; under root it runs as a throwaway
system account, as the tests do), then runs examples/fleet_bench.rs --runs
times on fresh databases: appends/s in durable batches (events.db: one
writer; PostgreSQL: --writers connections over --hosts chains at once) and
`audit verify` events/s on each. With --load, pgbench's TPC-B-like load runs
on the same server meanwhile. Prints medians; only ratios from one run on
one machine mean anything.
"""
import argparse
import json
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "target/release/examples/fleet_bench"


def bin_dir():
    for v in ["15", *sorted(os.listdir("/usr/lib/postgresql"), reverse=True)]:
        b = Path(f"/usr/lib/postgresql/{v}/bin")
        if (b / "initdb").exists():
            return b
    raise SystemExit("PostgreSQL's server binaries are missing: apt-get install postgresql")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """A private PostgreSQL cluster on a free loopback port (under root: as a
    throwaway system account, as the tests do); removed on exit."""

    def __init__(self, max_connections=50):
        self.bins = bin_dir()
        self.tmp = Path(tempfile.mkdtemp(prefix="fleet-bench-"))
        os.chmod(self.tmp, 0o755)
        self.account = None
        self.as_pg = []
        if os.geteuid() == 0:
            self.account = f"hopt-bench{os.getpid() % 100000}"
            subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                            self.account], check=True)
            subprocess.run(["chown", self.account, str(self.tmp)], check=True)
            self.as_pg = ["runuser", "-u", self.account, "--"]
        self.password = secrets.token_hex(12)
        (self.tmp / "pw").write_text(self.password)
        self.data = self.tmp / "data"
        self.port = free_port()
        self.max_connections = max_connections
        self.env = dict(os.environ, PGPASSWORD=self.password)
        self.base = f"postgres://postgres:{self.password}@127.0.0.1:{self.port}"

    def __enter__(self):
        subprocess.run(self.as_pg + [str(self.bins / "initdb"), "-D", str(self.data), "-U", "postgres",
                                     "--auth=scram-sha-256", f"--pwfile={self.tmp / 'pw'}", "--no-sync"],
                       check=True, stdout=subprocess.DEVNULL)
        subprocess.run(self.as_pg + [str(self.bins / "pg_ctl"), "-D", str(self.data), "-l", str(self.tmp / "log"),
                                     "-w", "-o", f"-p {self.port} -k {self.tmp} -c listen_addresses=127.0.0.1 "
                                     f"-c max_connections={self.max_connections}", "start"],
                       check=True, stdout=subprocess.DEVNULL)
        return self

    def createdb(self, name):
        subprocess.run([str(self.bins / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                        name], env=self.env, check=True)

    def pgbench_load(self):
        """pgbench's TPC-B-like load (2 clients) until terminated."""
        pgbench = [str(self.bins / "pgbench"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres"]
        subprocess.run(pgbench + ["-i", "-s", "5", "postgres"], env=self.env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return subprocess.Popen(pgbench + ["-c", "2", "-T", "3600", "postgres"], env=self.env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def __exit__(self, *exc):
        subprocess.run(self.as_pg + [str(self.bins / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if self.account:
            subprocess.run(["pkill", "-KILL", "-u", self.account])
            subprocess.run(["userdel", self.account])
        shutil.rmtree(self.tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--writers", type=int, default=4)
    ap.add_argument("--hosts", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--load", action="store_true", help="pgbench load on the same server meanwhile")
    args = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "--example", "fleet_bench"], cwd=ROOT, check=True)
    with Cluster() as pg:
        load = pg.pgbench_load() if args.load else None
        tmp, base = pg.tmp, pg.base
        results = []
        for i in range(args.runs):
            db = f"bench{i}"
            pg.createdb(db)
            out = subprocess.run([str(EXAMPLE), f"{base}/{db}", str(tmp / f"events{i}.db"), str(args.events),
                                  str(args.batch), str(args.writers), str(args.hosts)],
                                 check=True, capture_output=True, text=True).stdout
            results.append(json.loads(out))
        if load:
            load.terminate()
            load.wait()
        keys = ["sqlite_appends_per_s", "pg_appends_per_s", "sqlite_verify_events_per_s", "pg_verify_events_per_s"]
        med = {k: statistics.median(r[k] for r in results) for k in keys}
        print(f"{args.events} events, batches of {args.batch}; PostgreSQL: {args.writers} writers over "
              f"{args.hosts} hosts{'; pgbench load meanwhile' if args.load else ''}; medians of {args.runs} runs")
        print("| | events.db (one host) | PostgreSQL | ratio |")
        print("|---|---:|---:|---:|")
        print(f"| appends/s | {med['sqlite_appends_per_s']:.0f} | {med['pg_appends_per_s']:.0f} | "
              f"{med['pg_appends_per_s'] / med['sqlite_appends_per_s']:.2f} |")
        print(f"| verify events/s | {med['sqlite_verify_events_per_s']:.0f} | {med['pg_verify_events_per_s']:.0f} | "
              f"{med['pg_verify_events_per_s'] / med['sqlite_verify_events_per_s']:.2f} |")


if __name__ == "__main__":
    main()
