"""Helpers for the change-data-feed tests: the CDF oracle, commit times, client-frame normalisation,
raw /changes requests, and log inspection (which commits have cdc files, which are zero-row MERGEs).
"""
import json
import os

import frames
import cdf_expectations as C

CDF_COLS = ("_change_type", "_commit_version", "_commit_timestamp")


def commit_time(tables, manifest, table, version):
    """Commit time (ms) the server must report for `version` (PROTOCOL-NOTES §6)."""
    exp = C.CDF_TABLES.get(table)
    if exp is not None and exp.times == "ict":
        return int(manifest[table]["in_commit_timestamps"][str(version)])
    return int(tables[table]["commit_mtimes_ms"][version])


class CdfOracle:
    def __init__(self, results, manifest, tables):
        self.results = results
        self.manifest = manifest
        self.tables = tables

    def _base(self, table, start, end):
        exp = C.CDF_TABLES[table]
        latest = self.tables[table]["latest_version"]
        hi = latest if end is None else min(end, latest)
        if exp.oracle == "reference_cdf":
            ref = self.manifest[table]["reference_cdf"]
            assert ref["starting_version"] <= start, (table, ref["starting_version"], start)
            rows = [r for r in ref["rows"] if start <= r["_commit_version"] <= hi]
            cols = [c for c in ref["rows"][0].keys()]
            types = {}
            for c in cols:
                sample = next((r[c] for r in ref["rows"] if r[c] is not None), None)
                types[c] = {bool: "bool", int: "int", float: "float", str: "str"}.get(type(sample), "null")
            return cols, types, frames.canonical_rows_from_pylist(cols, rows)
        key = f"{table}@cdf:{start}:{end}"
        res = self.results.get(key)
        assert res is not None, f"no CDF oracle read planned for {key}"
        assert res["ok"], f"oracle (deltalake load_cdf) failed for {key}: {res['error']}"
        return res["columns"], res["types"], res["rows"]

    def expected(self, table, start, end, fmt):
        """Snapshot with data columns + _change_type, _commit_version, _commit_timestamp (int ms;
        whole seconds for the delta path)."""
        exp = C.CDF_TABLES[table]
        cols, types, rows = self._base(table, start, end)
        iv = cols.index("_commit_version")
        out = []
        for r in rows:
            v = r[iv]
            if v in exp.oracle_drops:
                continue
            ts = commit_time(self.tables, self.manifest, table, v)
            if fmt == "delta":
                ts = ts // 1000 * 1000
            out.append(tuple(r) + (ts,))
        cols = list(cols) + ["_commit_timestamp"]
        types = dict(types, _commit_timestamp="int")
        out.sort(key=frames._sort_key)
        return frames.Snapshot(cols, types, out, f"cdf-oracle:{exp.oracle}")


def oracle_jobs(tables):
    jobs = []
    for table, start, end in C.oracle_ranges():
        if C.CDF_TABLES[table].oracle != "load_cdf":
            continue
        jobs.append({"key": f"{table}@cdf:{start}:{end}", "kind": "cdf", "path": tables[table]["path"],
                     "starting_version": start, "ending_version": end})
    return jobs


def client_snapshot(df):
    """Client frame -> Snapshot, with _commit_timestamp as epoch ms (int) whatever its dtype."""
    import pandas as pd

    df = df.copy()
    col = df["_commit_timestamp"]
    if col.dtype.kind == "M" or (len(col) and isinstance(col.iloc[0], (pd.Timestamp,))):
        ts = pd.to_datetime(col, utc=True)
        df["_commit_timestamp"] = [int(t.value // 1_000_000) for t in ts]
    else:
        df["_commit_timestamp"] = [int(x) for x in col]
    return frames.Snapshot.from_pandas(df, "client")


def align(client, oracle):
    """Project both snapshots onto the same (sorted, case-insensitive) column order."""
    cl = {c.lower(): c for c in client.columns}
    ol = {c.lower(): c for c in oracle.columns}
    assert set(cl) == set(ol), f"CDF columns differ\n  client: {client.columns}\n  oracle: {oracle.columns}"
    order = sorted(cl)
    return client.project([cl[c] for c in order]), oracle.project([ol[c] for c in order])


# ---------------------------------------------------------------------------------- log inspection


def commit_actions(table_path, version):
    with open(os.path.join(table_path, "_delta_log", "%020d.json" % version)) as fh:
        return [json.loads(line) for line in fh if line.strip()]


def expected_change_kinds(table_path, version):
    """Per PROTOCOL-NOTES §6: {'cdf': n} when the commit has cdc files; {} for a zero-row MERGE;
    else {'add': n, 'remove': m} for dataChange=true actions."""
    acts = commit_actions(table_path, version)
    cdc = [a for a in acts if "cdc" in a]
    if cdc:
        return {"cdf": len(cdc)}
    info = next((a["commitInfo"] for a in acts if "commitInfo" in a), {})
    if info.get("operation") == "MERGE":
        m = info.get("operationMetrics") or {}
        keys = ("numTargetRowsInserted", "numTargetRowsUpdated", "numTargetRowsDeleted")
        if all(k in m for k in keys) and all(int(m[k]) == 0 for k in keys):
            return {}
    out = {}
    n_add = sum(1 for a in acts if "add" in a and a["add"].get("dataChange", True))
    n_rem = sum(1 for a in acts if "remove" in a and a["remove"].get("dataChange", True))
    if n_add:
        out["add"] = n_add
    if n_rem:
        out["remove"] = n_rem
    return out


def has_metadata(table_path, version):
    return any("metaData" in a for a in commit_actions(table_path, version))


def changes_path(api, share, schema, name, query=""):
    return api.table_path(share, schema, name, "/changes") + (("?" + query) if query else "")
