"""POST /query with startingVersion (+ endingVersion): the "changes since" mode Spark streaming uses
(PROTOCOL-NOTES §2.8 mode 3, §4.3, §10.3): protocol/metaData of the snapshot at the starting version
(metaData carries `"version": startingVersion`), then the data-changing add/remove actions of each
commit in order, each with version and timestamp, metaData lines for metadata changes after start;
header = startingVersion; no cdf lines (cdc files are a /changes thing)."""
import json

import pytest
import requests

import cdf_support as S
import deltalog
from api import ndjson
from paging import SPARK_DELTA_CAPS, SPARK_PARQUET_CAPS, spark_headers


def _log_changes(path, lo, hi):
    """[(version, kind, path)] of dataChange add/remove actions in [lo, hi] in log order."""
    out = []
    for v in range(lo, hi + 1):
        for a in S.commit_actions(path, v):
            for k in ("add", "remove"):
                if k in a and a[k].get("dataChange", True):
                    out.append((v, k))
    return out


def _metadata_versions(path, lo, hi):
    return [v for v in range(lo + 1, hi + 1) if S.has_metadata(path, v)]


CASES = [("gen-cdf-partitioned", 1, None), ("gen-cdf-partitioned", 0, 3), ("gen-partitioned", 2, None),
         ("gen-cdf-late", 0, None), ("gen-checkpointed", 3, 6), ("cdf-merge-delete-partitioned", 1, 2),
         ("gen-cdf-unpartitioned", 5, 5)]


@pytest.mark.parametrize("table,start,end", CASES, ids=[f"{t}-{s}-{e}" for t, s, e in CASES])
def test_starting_version_parquet(env, api, tables, manifest, table, start, end):
    share, schema, name = env.coords(table)
    body = {"predicateHints": [], "startingVersion": start}
    if end is not None:
        body["endingVersion"] = end
    r = api.query(share, schema, name, body, headers=spark_headers(SPARK_PARQUET_CAPS))
    assert r.status_code == 200, f"{body}: {r.status_code} {r.text[:500]}"
    assert r.headers.get("Delta-Table-Version") == str(start), "header = startingVersion"
    objs = ndjson(r)
    kinds = [next(iter(o)) for o in objs]
    assert kinds[:2] == ["protocol", "metaData"]
    assert objs[1]["metaData"].get("version") == start, "head metaData carries version = startingVersion"
    snap = deltalog.replay(tables[table]["path"], start)
    assert json.loads(objs[1]["metaData"]["schemaString"]) == json.loads(snap.metadata["schemaString"]), (
        "metaData of the start snapshot")
    assert set(kinds[2:]) <= {"add", "remove", "metaData"}, sorted(set(kinds[2:]))
    hi = tables[table]["latest_version"] if end is None else end
    got = []
    for o in objs[2:]:
        (k, a), = o.items()
        if k == "metaData":
            continue
        assert {"url", "id", "partitionValues", "size", "version", "timestamp"} <= set(a), a
        assert a["timestamp"] == S.commit_time(tables, manifest, table, a["version"])
        got.append((a["version"], k))
    assert sorted(got) == sorted(_log_changes(tables[table]["path"], start, hi)), (
        "every dataChange add/remove of [start, end], nothing else (no cdc, no dataChange=false)")
    assert [v for v, _ in got] == sorted(v for v, _ in got), "commit order"
    metas = [o["metaData"]["version"] for o in objs[2:] if "metaData" in o]
    assert metas == _metadata_versions(tables[table]["path"], start, hi), "metaData lines for changes after start"


def test_starting_version_delta(env, api, tables, manifest):
    table = "gen-cdf-unpartitioned"
    share, schema, name = env.coords(table)
    r = api.query(share, schema, name, {"predicateHints": [], "startingVersion": 2, "endingVersion": 6},
                  headers=spark_headers(SPARK_DELTA_CAPS))
    assert r.status_code == 200, r.text[:500]
    assert r.headers.get("Delta-Table-Version") == "2"
    objs = ndjson(r)
    assert "deltaProtocol" in objs[0]["protocol"] and objs[1]["metaData"].get("version") == 2
    got = []
    for o in objs[2:]:
        assert "file" in o, o
        f = o["file"]
        (k, act), = f["deltaSingleAction"].items()
        assert k in ("add", "remove")
        assert f["timestamp"] == S.commit_time(tables, manifest, table, f["version"])
        assert act["path"].startswith("http")
        got.append((f["version"], k))
    assert sorted(got) == sorted(_log_changes(tables[table]["path"], 2, 6))


def test_starting_version_urls_readable(env, api):
    share, schema, name = env.coords("gen-cdf-partitioned")
    r = api.query(share, schema, name, {"startingVersion": 4})
    objs = ndjson(r)
    for o in objs[2:]:
        (k, a), = o.items()
        if k in ("add", "remove"):
            g = requests.get(a["url"], timeout=30)
            assert g.status_code == 200 and len(g.content) == a["size"]


def test_starting_version_on_latest_has_only_last_commit(env, api, tables):
    table = "gen-cdf-partitioned"
    latest = tables[table]["latest_version"]
    share, schema, name = env.coords(table)
    r = api.query(share, schema, name, {"startingVersion": latest})
    assert r.status_code == 200 and r.headers.get("Delta-Table-Version") == str(latest)
    assert {o[k]["version"] for o in ndjson(r)[2:] for k in o} == {latest}


def test_starting_version_no_cdf_needed(env, api, tables):
    """startingVersion queries do not need change data feed (gen-partitioned has none)."""
    share, schema, name = env.coords("gen-partitioned")
    r = api.query(share, schema, name, {"startingVersion": 0})
    assert r.status_code == 200, r.text[:300]
    assert sum(1 for o in ndjson(r) if "add" in o) == sum(1 for v, k in _log_changes(tables["gen-partitioned"]["path"], 0, 4) if k == "add")


def test_starting_version_body_round_trip_json(env, api):
    """The Spark body shape is accepted verbatim (unknown fields ignored)."""
    share, schema, name = env.coords("gen-cdf-partitioned")
    body = json.dumps({"predicateHints": [], "startingVersion": 1, "endingVersion": 2,
                       "queryDeltaLog": False})
    r = api.post(api.table_path(share, schema, name, "/query"), data=body,
                 headers=spark_headers(SPARK_PARQUET_CAPS))
    assert r.status_code == 200, r.text[:300]
    assert {o[k]["version"] for o in ndjson(r)[2:] for k in o} <= {1, 2}
