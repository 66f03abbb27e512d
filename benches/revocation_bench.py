#!/usr/bin/env python3
"""Revocation latency across replicas (a benchmark, not a test; not run by CI).

Starts a private PostgreSQL cluster (scripts/postgres.sh), two `lakeshare serve` replicas on it
with the admin API on replica A, and N recipients. For each recipient: a reader polls replica B
with the recipient's token as fast as it can; the recipient is revoked through replica A's admin
API (DELETE /api/2.1/unity-catalog/recipients/NAME); the latency is the time from the moment the
DELETE returned until B first answers 401. Prints median, p99 and max.

Usage:  .venv/bin/python benches/revocation_bench.py [--recipients 50] [--bin target/release/lakeshare]
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import threading
import time

import requests

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def start(binary, cfg, state, extra=()):
    proc = subprocess.Popen([binary, "serve", "--config", cfg, "--state", state, *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    first = proc.stdout.readline()
    url = re.search(r"listening on (\S+)", first).group(1)
    admin = None
    if extra:
        admin = re.search(r"listening on (\S+)", proc.stdout.readline()).group(1)
    return proc, url, admin


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--recipients", type=int, default=50)
    ap.add_argument("--bin", default=os.path.join(ROOT, "target/release/lakeshare"))
    args = ap.parse_args()
    env_lines = subprocess.run([os.path.join(ROOT, "scripts/postgres.sh")], check=True,
                               capture_output=True, text=True).stdout
    env = dict(re.findall(r"export (\w+)=(\S+)", env_lines))
    work = tempfile.mkdtemp(prefix="lakeshare-revocation-")
    procs = []
    try:
        db = "revocation_bench"
        subprocess.run(["psql", env["LAKESHARE_TEST_PG_URL"], "-q", "-c", f"CREATE DATABASE {db}"],
                       check=True, stdout=subprocess.DEVNULL)
        state = env["LAKESHARE_TEST_PG_URL"].rsplit("/", 1)[0] + "/" + db
        table = os.path.join(ROOT, "conformance-tests/fixtures/golden/plain-unpartitioned")
        cfg = os.path.join(work, "config.yaml")
        with open(cfg, "w") as f:
            f.write("version: 1\nhost: 127.0.0.1\nport: 0\nshares:\n- name: s\n  schemas:\n"
                    f"  - name: d\n    tables:\n    - name: t\n      location: {table}\n")
        tokens = {}
        for i in range(args.recipients):
            prof = os.path.join(work, f"r{i}.share")
            subprocess.run([args.bin, "recipient", "create", f"r{i}", "--share", "s", "--config", cfg,
                            "--state", state, "--endpoint", "http://x", "--profile", prof],
                           check=True, stdout=subprocess.DEVNULL)
            tokens[f"r{i}"] = json.load(open(prof))["bearerToken"]
        out = subprocess.run([args.bin, "admin-token", "create", "bench", "--state", state],
                             check=True, capture_output=True, text=True).stdout
        admin_token = out.split()[-1]
        a, _, admin = start(args.bin, cfg, state, ["--admin-port", "0"])
        b, b_url, _ = start(args.bin, cfg, state)
        procs += [a, b]
        latencies = []
        session = requests.Session()
        admin_session = requests.Session()
        for name, token in tokens.items():
            stop = threading.Event()
            first_401 = []

            def reader():
                s = requests.Session()
                while not stop.is_set():
                    r = s.get(b_url + "/shares", headers={"Authorization": "Bearer " + token},
                              timeout=10)
                    if r.status_code == 401:
                        first_401.append(time.perf_counter())
                        return

            # steady load: make sure the token works on B first
            assert session.get(b_url + "/shares", headers={"Authorization": "Bearer " + token},
                               timeout=10).status_code == 200
            t = threading.Thread(target=reader)
            t.start()
            time.sleep(0.02)  # let the reader run before revoking (load, not readiness)
            r = admin_session.delete(f"{admin}/api/2.1/unity-catalog/recipients/{name}",
                                     headers={"Authorization": "Bearer " + admin_token}, timeout=10)
            revoked_at = time.perf_counter()
            assert r.status_code == 200, r.text
            t.join(timeout=10)
            stop.set()
            assert first_401, f"{name}: replica B never refused the revoked token"
            latencies.append(max(0.0, first_401[0] - revoked_at) * 1000)
        latencies.sort()
        p99 = latencies[min(len(latencies) - 1, int(round(0.99 * (len(latencies) - 1))))]
        print(f"revocations: {len(latencies)}")
        print(f"latency until the other replica refuses: median {statistics.median(latencies):.2f} ms, "
              f"p99 {p99:.2f} ms, max {latencies[-1]:.2f} ms")
    finally:
        for p in procs:
            p.terminate()
            p.wait(timeout=30)
        subprocess.run([os.path.join(ROOT, "scripts/postgres.sh"), "stop", env["LAKESHARE_TEST_PG_DIR"]],
                       check=False)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
