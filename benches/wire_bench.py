#!/usr/bin/env python3
"""What users feel on the wire, for one or more binaries side by side (issue F). Not run by CI.

    python3 benches/wire_bench.py --binary BEFORE --binary AFTER [--requests 200] [--admin-writes 200]

For each binary, a server on examples/tables/trips (SQLite state, audit on, admin API):

* `GET .../metadata` on ONE kept-alive connection (raw socket, HTTP/1.1), `--requests` times:
  median and p99 round trip. A response written in several pieces waits ~40 ms for the client's
  delayed ACK when the server does not set TCP_NODELAY.
* the same for `POST .../query` (a streamed, chunked body);
* admin writes under recipient load: 6 threads send `GET /shares` without pause (each request
  writes an audit event) while 4 threads create `--admin-writes` recipients through the admin
  API; counts of 200 and of anything else (before the fix: `503 database is locked`), and the
  admin write latency.
"""
import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def start(binary, d):
    cfg = os.path.join(d, "c.yaml")
    with open(cfg, "w") as f:
        f.write("version: 1\nhost: 127.0.0.1\nport: 0\nauditCheckpointEvery: 1000\n"
                "shares:\n- name: s\n  schemas:\n  - name: d\n    tables:\n"
                f"    - name: t\n      location: {REPO}/examples/tables/trips\n")
    state = os.path.join(d, "state.db")
    run = lambda *a: subprocess.run([binary, *a], check=True, capture_output=True, text=True)
    run("recipient", "create", "bench", "--share", "s", "--config", cfg, "--state", state,
        "--profile", os.path.join(d, "p.share"), "--endpoint", "http://127.0.0.1:9/delta-sharing")
    admin_token = run("admin-token", "create", "bench-admin", "--config", cfg, "--state", state).stdout.split()[-1]
    run("audit", "keygen", "--out", os.path.join(d, "k"))
    env = dict(os.environ, LAKESHARE_AUDIT_SIGNING_KEY=open(os.path.join(d, "k")).read().strip())
    p = subprocess.Popen([binary, "serve", "--config", cfg, "--state", state, "--admin-port", "0"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    url = re.search(r"listening on (\S+)", p.stdout.readline()).group(1)
    admin = re.search(r"listening on (\S+)", p.stdout.readline()).group(1)
    token = json.load(open(os.path.join(d, "p.share")))["bearerToken"]
    return p, url, admin, token, admin_token


def read_response(sock, buf):
    """Reads one HTTP/1.1 response (Content-Length or chunked) from `sock`; returns (status, rest)."""
    while b"\r\n\r\n" not in buf:
        buf += sock.recv(65536)
    head, buf = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:])}
    if "content-length" in headers:
        n = int(headers["content-length"])
        while len(buf) < n:
            buf += sock.recv(65536)
        return status, buf[n:]
    while True:  # chunked
        while b"\r\n" not in buf:
            buf += sock.recv(65536)
        size_line, buf = buf.split(b"\r\n", 1)
        size = int(size_line.split(b";")[0], 16)
        while len(buf) < size + 2:
            buf += sock.recv(65536)
        buf = buf[size + 2:]
        if size == 0:
            return status, buf


def keepalive(url, token, method, path, body, n):
    host, port = re.match(r"http://([^:/]+):(\d+)", url).groups()
    prefix = re.match(r"http://[^/]+(/.*)?", url).group(1) or ""
    s = socket.create_connection((host, int(port)))
    req = (f"{method} {prefix}{path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
           f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
    buf, times = b"", []
    for _ in range(n):
        t0 = time.perf_counter()
        s.sendall(req)
        status, buf = read_response(s, buf)
        times.append((time.perf_counter() - t0) * 1000)
        assert status == 200, status
    s.close()
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.99) - 1]


def admin_under_load(url, admin, token, admin_token, writes):
    stop = threading.Event()
    served = [0]

    def traffic():
        while not stop.is_set():
            try:
                urllib.request.urlopen(urllib.request.Request(url + "/shares",
                                                              headers={"Authorization": f"Bearer {token}"}),
                                       timeout=30).read()
                served[0] += 1
            except Exception:
                pass

    codes, lat, lock = {}, [], threading.Lock()
    todo = list(range(writes))

    def writer():
        while True:
            with lock:
                if not todo:
                    return
                i = todo.pop()
            req = urllib.request.Request(admin + "/api/2.1/unity-catalog/recipients", method="POST",
                                         data=json.dumps({"name": f"w{i}"}).encode(),
                                         headers={"Authorization": f"Bearer {admin_token}",
                                                  "Content-Type": "application/json"})
            t0 = time.perf_counter()
            try:
                code = urllib.request.urlopen(req, timeout=60).status
            except urllib.error.HTTPError as e:
                code = e.code
            with lock:
                codes[code] = codes.get(code, 0) + 1
                lat.append((time.perf_counter() - t0) * 1000)

    load = [threading.Thread(target=traffic) for _ in range(6)]
    for t in load:
        t.start()
    ws = [threading.Thread(target=writer) for _ in range(4)]
    t0 = time.perf_counter()
    for t in ws:
        t.start()
    for t in ws:
        t.join()
    took = time.perf_counter() - t0
    stop.set()
    for t in load:
        t.join()
    lat.sort()
    return codes, statistics.median(lat), lat[int(len(lat) * 0.99) - 1], served[0] / took


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", action="append", required=True)
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--admin-writes", type=int, default=200)
    a = ap.parse_args()
    rows = []
    for b in a.binary:
        with tempfile.TemporaryDirectory() as d:
            p, url, admin, token, admin_token = start(b, d)
            try:
                t = "/shares/s/schemas/d/tables/t"
                meta = keepalive(url, token, "GET", t + "/metadata", b"", a.requests)
                query = keepalive(url, token, "POST", t + "/query", b"{}", a.requests)
                codes, p50, p99, rps = admin_under_load(url, admin, token, admin_token, a.admin_writes)
            finally:
                p.terminate()
                p.wait()
        rows.append((b, meta, query, codes, p50, p99, rps))
    print("| binary | metadata p50 / p99 (kept alive) | query p50 / p99 (kept alive) | admin writes "
          "under load | admin write p50 / p99 | recipient req/s meanwhile |")
    print("|---|---:|---:|---|---:|---:|")
    for b, meta, query, codes, p50, p99, rps in rows:
        ok = codes.get(200, 0)
        other = ", ".join(f"{c}: {n}" for c, n in sorted(codes.items()) if c != 200) or "none failed"
        print(f"| {b} | {meta[0]:.2f} / {meta[1]:.2f} ms | {query[0]:.2f} / {query[1]:.2f} ms | "
              f"{ok} of {sum(codes.values())} ok ({other}) | {p50:.1f} / {p99:.1f} ms | {rps:.0f} |")


if __name__ == "__main__":
    sys.exit(main())
