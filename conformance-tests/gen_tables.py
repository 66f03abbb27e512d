"""Write the Delta tables the suite creates itself (run as a subprocess: `python gen_tables.py ROOT`).

Runs in its own interpreter because the `deltalake` package can abort the interpreter at exit
("terminate called without an active exception", see fixtures/golden/README.md); the script ends
with os._exit(0) after flushing.

Tables (all with per-file stats, which deltalake writes by default):

* gen-partitioned  -- partitioned by `region`; versions:
    v0 create (ids 1-6, regions eu/us/ap), v1 append (ids 7-9), v2 append (ids 10-12),
    v3 DELETE id = 3 (a file rewrite: remove + add), v4 append (ids 13-15, region "sa").
* gen-checkpointed -- unpartitioned; v0..v6 each append one file of 10 rows with disjoint id
    ranges (v -> ids v*10 .. v*10+9), checkpoint written at v4, then v5 OVERWRITE (ids 100-104),
    v6 append (ids 110-119).  Disjoint ranges let the server prune on stats.

The change-data-feed tables gen-cdf-partitioned, gen-cdf-unpartitioned and gen-cdf-late are
written by gen_cdf_tables.py (called from main() below; their commit times are documented there).

Commit-file mtimes are set to COMMIT_BASE_MS + version * COMMIT_STEP_MS (see COMMIT_TIMES below)
so timestamp tests are deterministic. The same values are exported as JSON on stdout.
"""
import datetime as dt
import json
import os
import sys

GEN_BASE_MS = 1735689600000  # 2025-01-01T00:00:00Z
GEN_STEP_MS = 3_600_000      # one hour per version


def commit_times(num_versions):
    return {v: GEN_BASE_MS + v * GEN_STEP_MS for v in range(num_versions)}


def _stamp(table_dir, num_versions):
    log = os.path.join(table_dir, "_delta_log")
    times = commit_times(num_versions)
    for v, ms in times.items():
        path = os.path.join(log, "%020d.json" % v)
        os.utime(path, ns=(ms * 1_000_000, ms * 1_000_000))
    return times


def _rows(ids, region_of):
    import pyarrow as pa

    base = dt.datetime(2024, 3, 1, 12, 0, 0, tzinfo=dt.timezone.utc)
    return pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "region": pa.array([region_of(i) for i in ids], pa.string()),
            "value": pa.array([i * 1.5 for i in ids], pa.float64()),
            "name": pa.array([None if i % 5 == 0 else f"name-{i}" for i in ids], pa.string()),
            "day": pa.array([dt.date(2024, 1, 1) + dt.timedelta(days=i) for i in ids], pa.date32()),
            "ts": pa.array([base + dt.timedelta(hours=i) for i in ids], pa.timestamp("us", tz="UTC")),
        }
    )


def make_partitioned(root):
    from deltalake import DeltaTable, write_deltalake

    path = os.path.join(root, "gen-partitioned")
    regions = {0: "eu", 1: "us", 2: "ap"}
    reg = lambda i: regions[i % 3]  # noqa: E731
    write_deltalake(path, _rows(list(range(1, 7)), reg), partition_by=["region"], mode="error")
    write_deltalake(path, _rows([7, 8, 9], reg), partition_by=["region"], mode="append")
    write_deltalake(path, _rows([10, 11, 12], reg), partition_by=["region"], mode="append")
    DeltaTable(path).delete("id = 3")
    write_deltalake(path, _rows([13, 14, 15], lambda i: "sa"), partition_by=["region"], mode="append")
    assert DeltaTable(path).version() == 4, DeltaTable(path).version()
    return path, 5


def make_checkpointed(root):
    from deltalake import DeltaTable, write_deltalake

    path = os.path.join(root, "gen-checkpointed")
    one = lambda i: "all"  # noqa: E731
    for v in range(5):
        write_deltalake(path, _rows(list(range(v * 10, v * 10 + 10)), one), mode="append")
    DeltaTable(path).create_checkpoint()
    write_deltalake(path, _rows(list(range(100, 105)), one), mode="overwrite")
    write_deltalake(path, _rows(list(range(110, 120)), one), mode="append")
    dtable = DeltaTable(path)
    assert dtable.version() == 6, dtable.version()
    assert os.path.exists(os.path.join(path, "_delta_log", "%020d.checkpoint.parquet" % 4))
    return path, 7


def main(root):
    os.makedirs(root, exist_ok=True)
    out = {}
    for maker in (make_partitioned, make_checkpointed):
        path, nversions = maker(root)
        times = _stamp(path, nversions)
        out[os.path.basename(path)] = {"path": path, "commit_mtimes_ms": times}
    # change-data-feed tables (gen_cdf_tables.py documents them)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import gen_cdf_tables

    for maker in gen_cdf_tables.MAKERS:
        path, nversions = maker(root)
        times = gen_cdf_tables.stamp(path, nversions)
        out[os.path.basename(path)] = {"path": path, "commit_mtimes_ms": times}
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    try:
        main(sys.argv[1])
    except BaseException as exc:  # report and exit non-zero without the deltalake atexit abort
        import traceback

        traceback.print_exc()
        sys.stderr.flush()
        os._exit(1)
    os._exit(0)
