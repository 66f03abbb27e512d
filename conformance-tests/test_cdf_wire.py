"""Raw-HTTP checks of GET /changes (PROTOCOL-NOTES §2.9, §4.1-4.3, §6): line shapes in both
formats, which actions a commit contributes, version/timestamp on every line, the version header,
includeHistoricalMetadata, boolean spellings, endingVersion clamping, fileidhash."""
import re

import pytest

import cdf_support as S
import deltalog
from api import DELTA_CAPS, ndjson

CDF_DELTA_CAPS = "responseformat=delta;readerfeatures=deletionvectors,columnmapping"
PART = "gen-cdf-partitioned"
UNPART = "gen-cdf-unpartitioned"
LATE = "gen-cdf-late"
HEX32 = re.compile(r"^[0-9a-f]{32}$")
HEX64 = re.compile(r"^[0-9a-f]{64}$")


def _changes(env, api, table, query, caps=None, headers=None):
    share, schema, name = env.coords(table)
    h = dict(headers or {})
    if caps:
        h["delta-sharing-capabilities"] = caps
    return api.get(S.changes_path(api, share, schema, name, query), headers=h)


def _kinds(objs):
    return [next(iter(o)) for o in objs]


def _per_version(objs, fmt):
    """{version: {'add': n, 'remove': n, 'cdf': n}} from the file lines of a /changes body."""
    out = {}
    for o in objs[2:]:
        k = next(iter(o))
        if fmt == "parquet":
            if k not in ("add", "remove", "cdf"):
                continue
            v = o[k]["version"]
        else:
            if k != "file":
                continue
            (k,) = o["file"]["deltaSingleAction"].keys()
            k = {"cdc": "cdf"}.get(k, k)
            v = o["file"]["version"]
        out.setdefault(v, {}).setdefault(k, 0)
        out[v][k] += 1
    return out


def _expected_per_version(path, lo, hi):
    out = {}
    for v in range(lo, hi + 1):
        k = S.expected_change_kinds(path, v)
        if k:
            out[v] = k
    return out


TABLE_RANGES = [(PART, 0, None), (PART, 2, 4), (UNPART, 0, None), (UNPART, 5, 5), (LATE, 2, None),
                ("cdf-partitioned", 0, None), ("cdf-non-partitioned", 1, 4), ("cdf-merge-delete-partitioned", 0, None),
                ("ict-cdf", 0, None)]


@pytest.mark.parametrize("table,start,end", TABLE_RANGES, ids=[f"{t}-{s}-{e}" for t, s, e in TABLE_RANGES])
def test_parquet_changes_shape(env, api, tables, manifest, table, start, end):
    q = f"startingVersion={start}" + (f"&endingVersion={end}" if end is not None else "")
    r = _changes(env, api, table, q)
    assert r.status_code == 200, f"{table} {q}: {r.status_code} {r.text[:500]}"
    assert r.headers.get("Content-Type", "").startswith("application/x-ndjson")
    assert r.headers.get("Delta-Table-Version") == str(start), "Delta-Table-Version = resolved starting version"
    caps = r.headers.get("delta-sharing-capabilities", "").lower()
    assert "responseformat=parquet" in caps, caps
    assert "includeendstreamaction=true" not in caps
    objs = ndjson(r)
    kinds = _kinds(objs)
    assert kinds[:2] == ["protocol", "metaData"], kinds[:3]
    assert objs[0]["protocol"] == {"minReaderVersion": 1}
    latest = tables[table]["latest_version"]
    assert objs[1]["metaData"].get("version") == latest, (
        "head metaData carries version = latest without includeHistoricalMetadata (PROTOCOL-NOTES §6)")
    assert set(kinds[2:]) <= {"add", "remove", "cdf"}, f"parquet CDF lines: {sorted(set(kinds[2:]))}"
    hi = latest if end is None else end
    versions = []
    for o in objs[2:]:
        (k, a), = o.items()
        for key in ("url", "id", "partitionValues", "size", "version", "timestamp"):
            assert key in a, f"{k} line lacks {key}: {a}"
        assert start <= a["version"] <= hi
        assert a["timestamp"] == S.commit_time(tables, manifest, table, a["version"]), (
            f"v{a['version']}: timestamp {a['timestamp']} != commit time "
            f"{S.commit_time(tables, manifest, table, a['version'])}")
        versions.append(a["version"])
    assert versions == sorted(versions), "file lines in commit order"
    assert _per_version(objs, "parquet") == _expected_per_version(tables[table]["path"], start, hi), (
        "per commit: only cdc files when it has any; else dataChange add/remove; zero-row MERGE -> nothing")


@pytest.mark.parametrize("table,start,end", [(PART, 0, None), (UNPART, 3, 6), ("cdf-with-dvs", 0, None),
                                             ("dv-inline-cdf", 0, None), ("cdf-column-mapping-name", 1, None)])
def test_delta_changes_shape(env, api, tables, manifest, table, start, end):
    q = f"startingVersion={start}" + (f"&endingVersion={end}" if end is not None else "")
    r = _changes(env, api, table, q, caps=CDF_DELTA_CAPS)
    assert r.status_code == 200, f"{table} {q}: {r.status_code} {r.text[:500]}"
    assert r.headers.get("Delta-Table-Version") == str(start)
    assert "responseformat=delta" in r.headers.get("delta-sharing-capabilities", "").lower()
    objs = ndjson(r)
    kinds = _kinds(objs)
    assert kinds[:2] == ["protocol", "metaData"]
    assert "deltaProtocol" in objs[0]["protocol"]
    assert "deltaMetadata" in objs[1]["metaData"] and "version" in objs[1]["metaData"], (
        "delta CDF head metaData needs deltaMetadata and version (Python delta CDF reader)")
    assert set(kinds[2:]) <= {"file", "metaData"}, sorted(set(kinds[2:]))
    hi = tables[table]["latest_version"] if end is None else end
    for o in objs[2:]:
        if "metaData" in o:
            assert "version" in o["metaData"]
            continue
        f = o["file"]
        assert {"id", "version", "timestamp", "expirationTimestamp", "deltaSingleAction"} <= set(f), f
        (k, act), = f["deltaSingleAction"].items()
        assert k in ("add", "remove", "cdc"), k
        assert act["path"].startswith("http"), "path replaced by a signed URL"
        assert f["timestamp"] == S.commit_time(tables, manifest, table, f["version"])
        assert start <= f["version"] <= hi
    assert _per_version(objs, "delta") == _expected_per_version(tables[table]["path"], start, hi)


def test_ending_version_beyond_latest_is_clamped(env, api, tables):
    latest = tables[PART]["latest_version"]
    a = _changes(env, api, PART, "startingVersion=1")
    b = _changes(env, api, PART, f"startingVersion=1&endingVersion={latest + 50}")
    assert a.status_code == 200 and b.status_code == 200, (a.status_code, b.text[:500])
    strip = lambda objs: [(k, o[k].get("id"), o[k].get("version")) for o in objs for k in o]  # noqa: E731
    assert strip(ndjson(a)) == strip(ndjson(b)), "endingVersion > latest is clamped to latest"


@pytest.mark.parametrize("spelling", ["True", "true", "TRUE"])
def test_include_historical_metadata_parquet(env, api, tables, spelling):
    """gen-cdf-late changes metadata at v5 (> start 2): a metaData line with version 5 among the files;
    head metaData is the one at the start version."""
    r = _changes(env, api, LATE, f"startingVersion=2&includeHistoricalMetadata={spelling}")
    assert r.status_code == 200, r.text[:500]
    objs = ndjson(r)
    assert objs[1]["metaData"]["version"] == 2, "head metaData at the start version with includeHistoricalMetadata"
    metas = [o["metaData"] for o in objs[2:] if "metaData" in o]
    assert [m["version"] for m in metas] == [5], f"historical metaData lines: {[m.get('version') for m in metas]}"
    # ordered between v4's and v6's file lines
    idx = next(i for i, o in enumerate(objs) if i >= 2 and "metaData" in o)
    before = [o[k]["version"] for o in objs[2:idx] for k in o]
    after = [o[k]["version"] for o in objs[idx + 1:] for k in o]
    assert all(v <= 5 for v in before) and all(v >= 5 for v in after), (before, after)


@pytest.mark.parametrize("spelling", ["False", "false"])
def test_no_historical_metadata_when_false(env, api, spelling):
    r = _changes(env, api, LATE, f"startingVersion=2&includeHistoricalMetadata={spelling}")
    assert r.status_code == 200, r.text[:500]
    objs = ndjson(r)
    assert not [o for o in objs[2:] if "metaData" in o], "no metaData lines without includeHistoricalMetadata"


def test_include_historical_metadata_delta(env, api):
    r = _changes(env, api, LATE, "startingVersion=2&includeHistoricalMetadata=true", caps=CDF_DELTA_CAPS)
    assert r.status_code == 200, r.text[:500]
    objs = ndjson(r)
    metas = [o["metaData"] for o in objs[2:] if "metaData" in o]
    assert [m["version"] for m in metas] == [5]
    assert metas[0]["deltaMetadata"]["configuration"].get("delta.logRetentionDuration") == "interval 60 days"
    assert metas[0]["deltaMetadata"]["configuration"].get("delta.enableChangeDataFeed") == "true"


def test_parquet_metadata_configuration_advertises_cdf(env, api):
    r = _changes(env, api, PART, "startingVersion=0")
    assert r.status_code == 200
    assert ndjson(r)[1]["metaData"]["configuration"] == {"enableChangeDataFeed": "true"}


def test_starting_timestamp_header_is_resolved_version(env, api, tables, manifest):
    from conftest import iso_ms

    ts = iso_ms(S.commit_time(tables, manifest, PART, 2) - 1)
    r = _changes(env, api, PART, f"startingTimestamp={ts}")
    assert r.status_code == 200, r.text[:500]
    assert r.headers.get("Delta-Table-Version") == "2", "first commit at or after the timestamp"
    assert min(o[k]["version"] for o in ndjson(r)[2:] for k in o) == 2


def test_no_change_rows_for_dataChange_false_commits(env, api, manifest):
    """cdf-with-dvs: OPTIMIZE commits (3, 6, 11, ...) have dataChange=false only -> nothing."""
    ops = manifest["cdf-with-dvs"]["operations"]
    optimize = [int(v) for v, op in ops.items() if op == "OPTIMIZE"]
    r = _changes(env, api, "cdf-with-dvs", "startingVersion=0", caps=CDF_DELTA_CAPS)
    assert r.status_code == 200, r.text[:500]
    seen = {o["file"]["version"] for o in ndjson(r)[2:] if "file" in o}
    assert not (seen & set(optimize)), f"OPTIMIZE versions with change lines: {sorted(seen & set(optimize))}"


def test_remove_only_commit_gives_remove_lines(env, api, tables):
    """cdf-merge-delete-partitioned v2 is a DELETE without cdc files: remove lines (client: delete rows)."""
    r = _changes(env, api, "cdf-merge-delete-partitioned", "startingVersion=2&endingVersion=2")
    assert r.status_code == 200, r.text[:500]
    kinds = _kinds(ndjson(r))[2:]
    assert kinds and set(kinds) == {"remove"}, kinds


def test_noop_merge_commit_emits_nothing(env, api):
    r = _changes(env, api, UNPART, "startingVersion=5&endingVersion=5")
    assert r.status_code == 200, r.text[:500]
    assert _kinds(ndjson(r)) == ["protocol", "metaData"], "zero-row MERGE commit must emit no file lines"


def test_cdc_file_urls_are_readable(env, api):
    import requests

    r = _changes(env, api, "cdf-merge-delete-partitioned", "startingVersion=1&endingVersion=1")
    cdfs = [o["cdf"] for o in ndjson(r)[2:] if "cdf" in o]
    assert cdfs, "v1 MERGE has cdc files"
    for c in cdfs:
        g = requests.get(c["url"], timeout=30)
        assert g.status_code == 200 and len(g.content) == c["size"], (g.status_code, len(g.content), c["size"])


@pytest.mark.parametrize("scheme,pattern", [("parquet", HEX32), ("delta", HEX64)])
def test_fileidhash_on_changes(env, api, scheme, pattern):
    r = _changes(env, api, PART, "startingVersion=0", headers={"fileidhash": scheme})
    assert r.status_code == 200, r.text[:500]
    assert r.headers.get("fileidhash") == scheme, f"fileidhash echo: {r.headers.get('fileidhash')!r}"
    ids = [o[k]["id"] for o in ndjson(r)[2:] for k in o]
    assert ids and all(pattern.match(i) for i in ids), ids[:3]


def test_fileidhash_invalid_on_changes(env, api):
    from api import assert_error

    r = _changes(env, api, PART, "startingVersion=0", headers={"fileidhash": "sha1"})
    assert_error(r, 400, None, "Unsupported fileidhash: 'sha1'", what="fileidhash sha1 on /changes")


def test_ids_stable_and_shared_by_add_and_remove(env, api, tables):
    """An add and a later remove of the same path share an id (ids hash the log path)."""
    r = _changes(env, api, PART, "startingVersion=0", headers={"fileidhash": "parquet"})
    objs = ndjson(r)
    adds = {o["add"]["id"] for o in objs[2:] if "add" in o}
    removes = {o["remove"]["id"] for o in objs[2:] if "remove" in o}
    assert removes & adds, "v5 removes (among others) the file added at v1 -> that remove shares the add's id"
    again = ndjson(_changes(env, api, PART, "startingVersion=0", headers={"fileidhash": "parquet"}))
    assert [o[k]["id"] for o in objs[2:] for k in o] == [o[k]["id"] for o in again[2:] for k in o]


def test_python_client_style_empty_params(env, api):
    """Python builds `.../changes?a=1&b=2`; `.../changes?` with nothing is a 400, not a crash."""
    from api import assert_error

    share, schema, name = env.coords(PART)
    r = api.get(api.table_path(share, schema, name, "/changes?"))
    assert_error(r, 400, None, "No startingVersion or startingTimestamp provided for CDF read.")
