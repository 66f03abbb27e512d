"""Change-data-feed tables the suite writes itself with `deltalake` (imported by gen_tables.py, which
runs in its own interpreter).

All three have `delta.enableChangeDataFeed=true` (gen-cdf-late only from v2) and per-file stats.
deltalake writes `_change_data/` cdc files for UPDATE, DELETE (row rewrites) and MERGE; a DELETE of
whole files (partition predicate) writes only remove actions.

* gen-cdf-partitioned -- partitioned by `region` (eu/us/ap):
    v0 create ids 1-6, v1 append ids 7-9, v2 UPDATE amount+1 where id<=2 (cdc),
    v3 DELETE id=4 (cdc), v4 MERGE of ids 5 (update) and 10 (insert) (cdc),
    v5 DELETE region='ap' (whole files: remove actions only, no cdc).
* gen-cdf-unpartitioned -- no partitions:
    v0 create ids 1-5, v1 append ids 6-8, v2 UPDATE where id=1 (cdc), v3 DELETE id=2 (cdc),
    v4 MERGE: delete id 3 when matched, insert ids 20,21 (cdc),
    v5 a hand-written Spark-style MERGE commit with operationMetrics numTargetRows{Inserted,Updated,
       Deleted} = "0" that removes one data file and adds a byte-identical copy (dataChange=true,
       no cdc): PROTOCOL-NOTES §6 -> no change rows for v5,
    v6 append ids 30-31.
* gen-cdf-late -- no partitions, CDF enabled by SET TBLPROPERTIES at v2:
    v0 create ids 1-3 (no CDF), v1 append id 4, v2 SET TBLPROPERTIES delta.enableChangeDataFeed=true,
    v3 append id 5, v4 UPDATE where id=1 (cdc), v5 SET TBLPROPERTIES delta.logRetentionDuration (a
    metaData change after the CDF start: historical metadata), v6 append ids 6-7.
    Change queries that include v0 or v1 must be refused.

Commit-file mtimes: CDF_BASE_MS[table] + v * (1 h + 1.001 s): deliberately not whole seconds, so the
millisecond `_commit_timestamp` of the parquet path and the whole-second truncation of the delta
path (PROTOCOL-NOTES §14) are both visible.
"""
import json
import os
import shutil
import uuid

CDF_ON = {"delta.enableChangeDataFeed": "true"}
CDF_BASE_MS = {
    "gen-cdf-partitioned": 1738368000000,   # 2025-02-01T00:00:00Z
    "gen-cdf-unpartitioned": 1740787200000,  # 2025-03-01T00:00:00Z
    "gen-cdf-late": 1743465600000,          # 2025-04-01T00:00:00Z
}
CDF_STEP_MS = 3_601_001

# the hand-written zero-row MERGE commit of gen-cdf-unpartitioned
NOOP_MERGE_VERSION = 5


def cdf_commit_times(name, num_versions):
    base = CDF_BASE_MS[name]
    return {v: base + v * CDF_STEP_MS for v in range(num_versions)}


def _rows(ids, region_of=None, bump=0):
    import pyarrow as pa

    cols = {
        "id": pa.array(ids, pa.int64()),
        "amount": pa.array([i * 10 + bump for i in ids], pa.int64()),
        "label": pa.array([None if i % 4 == 0 else f"row-{i}" for i in ids], pa.string()),
    }
    if region_of is not None:
        cols["region"] = pa.array([region_of(i) for i in ids], pa.string())
    return pa.table(cols)


def make_cdf_partitioned(root):
    from deltalake import DeltaTable, write_deltalake

    path = os.path.join(root, "gen-cdf-partitioned")
    regions = {0: "eu", 1: "us", 2: "ap"}
    reg = lambda i: regions[i % 3]  # noqa: E731
    write_deltalake(path, _rows(list(range(1, 7)), reg), partition_by=["region"], mode="error",
                    configuration=CDF_ON)
    write_deltalake(path, _rows([7, 8, 9], reg), partition_by=["region"], mode="append")
    DeltaTable(path).update(updates={"amount": "amount + 1"}, predicate="id <= 2")
    DeltaTable(path).delete("id = 4")
    src = _rows([5, 10], reg, bump=100)
    (DeltaTable(path).merge(src, predicate="t.id = s.id", source_alias="s", target_alias="t")
     .when_matched_update(updates={"amount": "s.amount"}).when_not_matched_insert_all().execute())
    DeltaTable(path).delete("region = 'ap'")
    assert DeltaTable(path).version() == 5, DeltaTable(path).version()
    return path, 6


def _write_noop_merge(path, version):
    """Append a Spark-style MERGE commit that rewrites one file without changing any row."""
    log = os.path.join(path, "_delta_log")
    prev = os.path.join(log, "%020d.json" % (version - 1))
    # the active files: replay the JSON commits
    active = {}
    for v in range(version):
        with open(os.path.join(log, "%020d.json" % v)) as fh:
            for line in fh:
                a = json.loads(line)
                if "add" in a:
                    active[a["add"]["path"]] = a["add"]
                elif "remove" in a:
                    active.pop(a["remove"]["path"], None)
    assert os.path.exists(prev)
    victim_path = sorted(active)[0]
    victim = active[victim_path]
    new_name = "part-00000-%s-c000.snappy.parquet" % uuid.UUID(int=0x5EED)
    shutil.copyfile(os.path.join(path, victim_path), os.path.join(path, new_name))
    ts = 1740787200000 + version * CDF_STEP_MS
    commit = [
        {"commitInfo": {"timestamp": ts, "operation": "MERGE",
                        "operationParameters": {"predicate": "t.id = s.id", "matchedPredicates": "[]",
                                                "notMatchedPredicates": "[]"},
                        "readVersion": version - 1, "isBlindAppend": False,
                        "operationMetrics": {"numTargetRowsInserted": "0", "numTargetRowsUpdated": "0",
                                             "numTargetRowsDeleted": "0", "numTargetRowsCopied": "0",
                                             "numSourceRows": "0", "numOutputRows": "0",
                                             "numTargetFilesAdded": "1", "numTargetFilesRemoved": "1"},
                        "engineInfo": "Apache-Spark/3.5.0 Delta-Lake/3.1.0 (hand-written by gen_cdf_tables.py)"}},
        {"remove": {"path": victim_path, "deletionTimestamp": ts, "dataChange": True, "extendedFileMetadata": True,
                    "partitionValues": victim["partitionValues"], "size": victim["size"]}},
        {"add": {"path": new_name, "partitionValues": victim["partitionValues"], "size": victim["size"],
                 "modificationTime": ts, "dataChange": True, "stats": victim.get("stats")}},
    ]
    with open(os.path.join(log, "%020d.json" % version), "x") as fh:
        for a in commit:
            fh.write(json.dumps(a, separators=(",", ":")) + "\n")


def make_cdf_unpartitioned(root):
    from deltalake import DeltaTable, write_deltalake

    path = os.path.join(root, "gen-cdf-unpartitioned")
    write_deltalake(path, _rows([1, 2, 3, 4, 5]), mode="error", configuration=CDF_ON)
    write_deltalake(path, _rows([6, 7, 8]), mode="append")
    DeltaTable(path).update(updates={"amount": "amount + 5", "label": "'changed'"}, predicate="id = 1")
    DeltaTable(path).delete("id = 2")
    src = _rows([3, 20, 21], bump=7)
    (DeltaTable(path).merge(src, predicate="t.id = s.id", source_alias="s", target_alias="t")
     .when_matched_delete().when_not_matched_insert_all().execute())
    assert DeltaTable(path).version() == 4
    _write_noop_merge(path, NOOP_MERGE_VERSION)
    write_deltalake(path, _rows([30, 31]), mode="append")
    assert DeltaTable(path).version() == 6, DeltaTable(path).version()
    return path, 7


def make_cdf_late(root):
    from deltalake import DeltaTable, write_deltalake

    path = os.path.join(root, "gen-cdf-late")
    write_deltalake(path, _rows([1, 2, 3]), mode="error")
    write_deltalake(path, _rows([4]), mode="append")
    DeltaTable(path).alter.set_table_properties(CDF_ON)
    write_deltalake(path, _rows([5]), mode="append")
    DeltaTable(path).update(updates={"amount": "amount + 1"}, predicate="id = 1")
    DeltaTable(path).alter.set_table_properties({"delta.logRetentionDuration": "interval 60 days"})
    write_deltalake(path, _rows([6, 7]), mode="append")
    assert DeltaTable(path).version() == 6, DeltaTable(path).version()
    return path, 7


MAKERS = (make_cdf_partitioned, make_cdf_unpartitioned, make_cdf_late)


def stamp(path, num_versions):
    name = os.path.basename(path)
    times = cdf_commit_times(name, num_versions)
    for v, ms in times.items():
        os.utime(os.path.join(path, "_delta_log", "%020d.json" % v), ns=(ms * 1_000_000, ms * 1_000_000))
    return times
