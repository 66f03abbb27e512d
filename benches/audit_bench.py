#!/usr/bin/env python3
"""Cost of the audit log: the same request mix against two binaries (one built before the audit
log, one with it), or against one binary with `--label`. Not run by CI.

    python3 benches/audit_bench.py --binary target/debug/lakeshare [--binary OTHER] \
        [--requests 2000] [--threads 8]

For each binary: a server on examples/tables/trips (SQLite state, audit signing key), then
`--threads` clients send `--requests` requests in total (3/4 GET /shares, 1/4 POST query), and
the script prints throughput and latency percentiles."""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def start(binary, d):
    cfg = os.path.join(d, "c.yaml")
    with open(cfg, "w") as f:
        f.write("version: 1\nhost: 127.0.0.1\nport: 0\nauditCheckpointEvery: 1000\n"
                "shares:\n- name: s\n  schemas:\n  - name: d\n    tables:\n"
                f"    - name: t\n      location: {REPO}/examples/tables/trips\n")
    state = os.path.join(d, "state.db")
    subprocess.run([binary, "recipient", "create", "bench", "--share", "s", "--config", cfg, "--state", state,
                    "--profile", os.path.join(d, "p.share"), "--endpoint", "http://127.0.0.1:9/delta-sharing"],
                   check=True, capture_output=True)
    env = dict(os.environ)
    key = subprocess.run([binary, "audit", "keygen", "--out", os.path.join(d, "k")], capture_output=True, text=True)
    if key.returncode == 0:  # binaries with the audit log
        env["LAKESHARE_AUDIT_SIGNING_KEY"] = open(os.path.join(d, "k")).read().strip()
    p = subprocess.Popen([binary, "serve", "--config", cfg, "--state", state], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True, env=env)
    url = re.search(r"listening on (\S+)", p.stdout.readline()).group(1)
    token = json.load(open(os.path.join(d, "p.share")))["bearerToken"]
    return p, url, token


def worker(url, token, n, lat):
    for i in range(n):
        if i % 4 == 3:
            req = urllib.request.Request(url + "/shares/s/schemas/d/tables/t/query", data=b"{}", method="POST",
                                         headers={"Authorization": f"Bearer {token}",
                                                  "Content-Type": "application/json"})
        else:
            req = urllib.request.Request(url + "/shares", headers={"Authorization": f"Bearer {token}"})
        t0 = time.perf_counter()
        with urllib.request.urlopen(req) as r:
            r.read()
        lat.append(time.perf_counter() - t0)


def bench(binary, requests, threads):
    with tempfile.TemporaryDirectory() as d:
        p, url, token = start(binary, d)
        try:
            worker(url, token, 20, [])  # warm up
            lat = []
            ts = [threading.Thread(target=worker, args=(url, token, requests // threads, lat)) for _ in range(threads)]
            t0 = time.perf_counter()
            for t in ts:
                t.start()
            for t in ts:
                t.join()
            wall = time.perf_counter() - t0
        finally:
            p.terminate()
            p.wait()
    lat.sort()
    return {"binary": binary, "requests": len(lat), "req_per_s": round(len(lat) / wall, 1),
            "p50_ms": round(statistics.median(lat) * 1000, 2),
            "p99_ms": round(lat[int(len(lat) * 0.99) - 1] * 1000, 2)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", action="append", required=True)
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=8)
    a = ap.parse_args()
    for b in a.binary:
        print(json.dumps(bench(b, a.requests, a.threads)))


if __name__ == "__main__":
    sys.exit(main())
