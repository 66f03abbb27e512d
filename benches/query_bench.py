#!/usr/bin/env python3
"""Query benchmark for the snapshot read path (not a test; not run by CI).

Builds a synthetic Delta table with N add actions (the data files need not exist: a query only
lists and signs them), starts `lakeshare serve` on 127.0.0.1, and measures with raw HTTP:

  * cold query: first query of the table (one log replay),
  * warm query: the same query again (served from the per-version file-list cache),
  * after a new commit: a query after appending one commit (file list advanced incrementally),
  * the replay counters from /_lakeshare/metrics, and the server's peak RSS.

Usage:  .venv/bin/python benches/query_bench.py [--files 100000] [--bin target/release/lakeshare]
Only the standard library and `requests` are needed.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

import requests


def write_table(root, n_files, partitions=20):
    log = os.path.join(root, "_delta_log")
    os.makedirs(log)
    schema = {
        "type": "struct",
        "fields": [
            {"name": "id", "type": "long", "nullable": True, "metadata": {}},
            {"name": "part", "type": "integer", "nullable": True, "metadata": {}},
        ],
    }
    with open(os.path.join(log, "%020d.json" % 0), "w") as f:
        f.write(json.dumps({"protocol": {"minReaderVersion": 1, "minWriterVersion": 2}}) + "\n")
        f.write(json.dumps({"metaData": {
            "id": str(uuid.uuid4()), "format": {"provider": "parquet", "options": {}},
            "schemaString": json.dumps(schema), "partitionColumns": ["part"],
            "configuration": {}, "createdTime": 1700000000000}}) + "\n")
        for i in range(n_files):
            p = i % partitions
            stats = {"numRecords": 100, "minValues": {"id": i * 100},
                     "maxValues": {"id": i * 100 + 99}, "nullCount": {"id": 0}}
            f.write(json.dumps({"add": {
                "path": "part=%d/part-%08d.snappy.parquet" % (p, i),
                "partitionValues": {"part": str(p)}, "size": 1000 + i % 977,
                "modificationTime": 1700000000000, "dataChange": True,
                "stats": json.dumps(stats)}}) + "\n")


def append_commit(root, version, n_new):
    path = os.path.join(root, "_delta_log", "%020d.json" % version)
    with open(path, "w") as f:
        for i in range(n_new):
            f.write(json.dumps({"add": {
                "path": "part=0/new-%d-%08d.snappy.parquet" % (version, i),
                "partitionValues": {"part": "0"}, "size": 1234,
                "modificationTime": 1700000000000, "dataChange": True}}) + "\n")


def metrics(base):
    text = requests.get(base + "/_lakeshare/metrics", timeout=30).text
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(lakeshare_\w+) (\d+)$", text, re.M)}


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def timed_query(url, token, body=None):
    t0 = time.perf_counter()
    r = requests.post(url, data=json.dumps(body or {}), timeout=600,
                      headers={"Authorization": "Bearer " + token}, stream=True)
    lines = sum(1 for _ in r.iter_lines())
    r.raise_for_status()
    return time.perf_counter() - t0, lines


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=100_000)
    ap.add_argument("--bin", default=os.environ.get("LAKESHARE_BIN", "target/debug/lakeshare"))
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="lakeshare-bench-")
    try:
        table = os.path.join(work, "t")
        t0 = time.perf_counter()
        write_table(table, args.files)
        print("table with %d files written in %.1fs" % (args.files, time.perf_counter() - t0))
        cfg = os.path.join(work, "config.yaml")
        with open(cfg, "w") as f:
            f.write("version: 1\nhost: 127.0.0.1\nport: 0\nshares:\n- name: s\n  schemas:\n"
                    "  - name: d\n    tables:\n    - name: t\n      location: %s\n" % table)
        prof = os.path.join(work, "p.share")
        subprocess.run([args.bin, "recipient", "create", "bench", "--share", "s", "--config", cfg,
                        "--endpoint", "http://x", "--profile", prof], check=True,
                       stdout=subprocess.DEVNULL)
        token = token_ = json.load(open(prof))["bearerToken"]
        proc = subprocess.Popen([args.bin, "serve", "--config", cfg], stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True)
        try:
            line = proc.stdout.readline()
            endpoint = re.search(r"listening on (\S+)", line).group(1)
            base = endpoint.rsplit("/delta-sharing", 1)[0]
            url = endpoint + "/shares/s/schemas/d/tables/t/query"
            cold, n = timed_query(url, token)
            warm, _ = timed_query(url, token)
            warm2, _ = timed_query(url, token)
            hint = {"jsonPredicateHints": json.dumps(
                {"op": "equal", "children": [{"op": "column", "name": "part", "valueType": "int"},
                                             {"op": "literal", "value": "3", "valueType": "int"}]})}
            pruned, n_pruned = timed_query(url, token, hint)
            # Paging through the same version with maxFiles=10000 (issue B): the log must not
            # be replayed per page.
            before = metrics(base)
            t0 = time.perf_counter()
            page_tok, pages, paged_files = None, 0, 0
            while True:
                body = {"maxFiles": 10000}
                if page_tok:
                    body["pageToken"] = page_tok
                r = requests.post(url, data=json.dumps(body), timeout=600,
                                  headers={"Authorization": "Bearer " + token_}, stream=True)
                r.raise_for_status()
                page_tok = None
                for raw in r.iter_lines():
                    obj = json.loads(raw)
                    if "file" in obj:
                        paged_files += 1
                    elif "endStreamAction" in obj:
                        page_tok = obj["endStreamAction"].get("nextPageToken")
                pages += 1
                if not page_tok:
                    break
            paged = time.perf_counter() - t0
            after = metrics(base)
            replays_during_paging = (after.get("lakeshare_log_replays_total", 0)
                                     - before.get("lakeshare_log_replays_total", 0))
            append_commit(table, 1, 10)
            after_commit, n_after = timed_query(url, token)
            m = metrics(base)
            print("files listed: %d lines (%d with a partition hint, %d after a commit)"
                  % (n, n_pruned, n_after))
            print("cold query (log replay):        %.3fs" % cold)
            print("warm query (cached file list):  %.3fs, %.3fs" % (warm, warm2))
            print("partition-pruned warm query:    %.3fs" % pruned)
            print("query after a new commit:       %.3fs" % after_commit)
            print("paged, maxFiles=10000:          %.3fs for %d pages, %d files, %d log replays"
                  % (paged, pages, paged_files, replays_during_paging))
            print("metrics:", {k: v for k, v in m.items() if "replay" in k or "incremental" in k
                               or "hits" in k})
            print("server peak RSS: %.0f MiB" % (rss_kb(proc.pid) / 1024))
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
