"""Add a commit to a (copied) test table without deltalake: a hand-written JSON commit that appends a
byte copy of an active data file under a new name (dataChange=true). Used by tests that need a new
table version while a server is running (refresh tokens, async queries)."""
import json
import os
import shutil
import uuid

import deltalog


def copy_table(src, dst):
    shutil.copytree(src, dst)  # copy2 keeps commit-file mtimes
    return dst


def append_copy_commit(table_path, mtime_ms=None):
    """Write version latest+1 adding a copy of one active file; returns (new_version, new_add)."""
    state = deltalog.replay(table_path)
    src = sorted(state.adds, key=lambda a: a["path"])[0]
    folder = os.path.dirname(src["path"])
    new_rel = (folder + "/" if folder else "") + "part-00000-%s-c000.snappy.parquet" % uuid.uuid4()
    from urllib.parse import unquote

    shutil.copyfile(os.path.join(table_path, unquote(src["path"])), os.path.join(table_path, unquote(new_rel)))
    v = state.version + 1
    log = os.path.join(table_path, "_delta_log")
    prev_mtime = os.stat(os.path.join(log, "%020d.json" % state.version)).st_mtime_ns // 1_000_000
    ts = mtime_ms or prev_mtime + 60_000
    add = {"path": new_rel, "partitionValues": src["partitionValues"], "size": src["size"],
           "modificationTime": ts, "dataChange": True}
    if src.get("stats"):
        add["stats"] = src["stats"]
    actions = [{"commitInfo": {"timestamp": ts, "operation": "WRITE", "operationParameters": {"mode": "Append"},
                               "engineInfo": "lakeshare-conformance mutate.py"}},
               {"add": add}]
    path = os.path.join(log, "%020d.json" % v)
    with open(path, "x") as fh:
        for a in actions:
            fh.write(json.dumps(a, separators=(",", ":")) + "\n")
    os.utime(path, ns=(ts * 1_000_000, ts * 1_000_000))
    return v, add
