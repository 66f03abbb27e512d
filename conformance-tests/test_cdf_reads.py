"""`load_table_changes_as_pandas` (delta-sharing 1.4.2) for every CDF table x format x range, by
versions and by timestamps, compared with the CDF oracle (cdf_expectations.py, cdf_support.py).

Compared columns: every data column plus `_change_type`, `_commit_version` and `_commit_timestamp`
(epoch ms; the delta path truncates to whole seconds, PROTOCOL-NOTES §14).
"""
import json
import os

import delta_sharing
import pytest
from requests.exceptions import HTTPError

import cdf_expectations as C
import cdf_support as S
import expectations as E
import frames
from api import DELTA_CAPS, assert_error, ndjson
from conftest import iso_ms

USE_DELTA = {"parquet": False, "delta": True}


def _url(env, table):
    return env.url(table)


def _load(env, table, fmt, **kw):
    return delta_sharing.load_table_changes_as_pandas(_url(env, table), use_delta_format=USE_DELTA[fmt], **kw)


def _check_ict_limit(env, api, tables, manifest, table, start, end, kw):
    """ict-cdf in delta format: the server answers 200 with ICT timestamps; the client fails with
    the documented delta-kernel-rs message."""
    share, schema, name = env.coords(table)
    q = f"startingVersion={start}" + (f"&endingVersion={end}" if end is not None else "") + \
        "&includeHistoricalMetadata=True"
    r = api.get(S.changes_path(api, share, schema, name, q),
                headers={"delta-sharing-capabilities": "responseformat=delta;readerfeatures=deletionvectors,columnmapping"})
    assert r.status_code == 200, f"server must serve the delta-format CDF of {table}: {r.status_code} {r.text[:500]}"
    files = [o["file"] for o in ndjson(r) if "file" in o]
    assert files, "no file lines"
    for f in files:
        want = S.commit_time(tables, manifest, table, f["version"])
        assert f["timestamp"] == want, f"v{f['version']}: timestamp {f['timestamp']} != in-commit timestamp {want}"
    with pytest.raises(Exception) as excinfo:
        _load(env, table, "delta", **kw)
    assert C.ICT_LIMIT_MESSAGE in str(excinfo.value), (
        f"expected the documented client limit ({C.ICT_LIMIT_MESSAGE!r}), got {type(excinfo.value).__name__}: "
        f"{str(excinfo.value)[:500]}. If the client now reads ICT tables, switch the entry to OK.")


def _run(env, api, tables, manifest, cdf_oracle, table, fmt, start, end, kw, what):
    exp = C.CDF_TABLES[table].expect(fmt)
    if isinstance(exp, E.Err):
        with pytest.raises(HTTPError) as excinfo:
            _load(env, table, fmt, **kw)
        resp = excinfo.value.response
        assert resp is not None, f"{what}: HTTPError without response"
        assert_error(resp, exp.status, exp.code, exp.message, what)
        return
    if isinstance(exp, E.ClientLimit):
        _check_ict_limit(env, api, tables, manifest, table, start, end, kw)
        return
    df = _load(env, table, fmt, **kw)
    got = S.client_snapshot(df)
    want = cdf_oracle.expected(table, start, end, fmt)
    got, want = S.align(got, want)
    # an empty result has no values to type (pandas gives an empty frame float columns)
    frames.assert_same_table(got, want, what, check_types=bool(want.rows or got.rows))


VERSION_CASES = C.cdf_cases("version_ranges")


@pytest.mark.parametrize("table,fmt,start,end", VERSION_CASES,
                         ids=[f"{t}-{f}-v{s}-{'latest' if e is None else e}" for t, f, s, e in VERSION_CASES])
def test_changes_by_version(env, api, tables, manifest, cdf_oracle, table, fmt, start, end):
    kw = {"starting_version": start}
    if end is not None:
        kw["ending_version"] = end
    _run(env, api, tables, manifest, cdf_oracle, table, fmt, start, end, kw,
         f"{table} changes [{start}, {end}] as {fmt}")


TS_CASES = C.cdf_cases("timestamp_ranges")


@pytest.mark.parametrize("table,fmt,start,end", TS_CASES, ids=[f"{t}-{f}-ts{s}-{e}" for t, f, s, e in TS_CASES])
def test_changes_by_timestamp(env, api, tables, manifest, cdf_oracle, table, fmt, start, end):
    """startingTimestamp = exact commit time of `start` (first commit >= ts -> start);
    endingTimestamp = exact commit time of `end` (last commit <= ts -> end)."""
    kw = {"starting_timestamp": iso_ms(S.commit_time(tables, manifest, table, start)),
          "ending_timestamp": iso_ms(S.commit_time(tables, manifest, table, end))}
    _run(env, api, tables, manifest, cdf_oracle, table, fmt, start, end, kw,
         f"{table} changes by timestamps {kw} (versions [{start}, {end}]) as {fmt}")


@pytest.mark.parametrize("fmt", ["parquet", "delta"])
def test_changes_timestamp_between_commits(env, tables, manifest, cdf_oracle, fmt):
    """A start between two commits resolves to the later one, an end between commits to the earlier."""
    table = "gen-cdf-partitioned"
    t = lambda v: S.commit_time(tables, manifest, table, v)  # noqa: E731
    df = _load(env, table, fmt, starting_timestamp=iso_ms(t(1) + 1), ending_timestamp=iso_ms(t(4) - 1))
    got, want = S.align(S.client_snapshot(df), cdf_oracle.expected(table, 2, 3, fmt))
    frames.assert_same_table(got, want, f"{table} changes ({fmt}) between commits -> versions [2, 3]")


def test_noop_merge_has_no_rows(env, cdf_oracle):
    """gen-cdf-unpartitioned v5 (zero-row MERGE rewriting a file) yields no change rows."""
    df = _load(env, "gen-cdf-unpartitioned", "parquet", starting_version=5, ending_version=5)
    assert len(df) == 0, f"zero-row MERGE must produce no change rows, got {len(df)}:\n{df.head()}"
    assert {"_change_type", "_commit_version", "_commit_timestamp"} <= set(df.columns)


def test_parquet_commit_timestamps_keep_milliseconds(env, tables, manifest):
    """The parquet path returns the line `timestamp` verbatim: ms precision (mtimes are not whole seconds)."""
    table = "gen-cdf-partitioned"
    df = _load(env, table, "parquet", starting_version=0)
    got = {int(v): int(ts) for v, ts in zip(df["_commit_version"], df["_commit_timestamp"])}
    want = {v: S.commit_time(tables, manifest, table, v) for v in got}
    assert got == want
    assert any(ms % 1000 for ms in want.values()), "test table must have sub-second commit times"


# ------------------------------------------------------------------------------ the table itself


def test_every_cdf_table_has_an_expectation(manifest, tables):
    golden_cdf = {n for n, m in manifest.items() if m.get("cdf_enabled")}
    missing = sorted(golden_cdf - set(C.CDF_TABLES))
    assert not missing, f"golden CDF-enabled tables missing from cdf_expectations.CDF_TABLES: {missing}"
    gen_cdf = set()
    for n, e in E.TABLES.items():
        if e.source != "generated":
            continue
        log = os.path.join(tables[n]["path"], "_delta_log")
        for f in sorted(os.listdir(log)):
            if f.endswith(".json"):
                with open(os.path.join(log, f)) as fh:
                    for line in fh:
                        a = json.loads(line)
                        if "metaData" in a and a["metaData"].get("configuration", {}).get(
                                "delta.enableChangeDataFeed") == "true":
                            gen_cdf.add(n)
    missing = sorted(gen_cdf - set(C.CDF_TABLES))
    assert not missing, f"generated CDF tables missing from cdf_expectations.CDF_TABLES: {missing}"
    assert {"gen-cdf-partitioned", "gen-cdf-unpartitioned", "gen-cdf-late"} <= gen_cdf


def test_cdf_expectations_well_formed(manifest):
    for name, e in C.CDF_TABLES.items():
        assert name in E.TABLES, f"{name}: CDF entry for a table the suite does not serve"
        for fmt in ("parquet", "delta"):
            x = e.expect(fmt)
            assert isinstance(x, (E.Ok, E.Err, E.ClientLimit)), (name, fmt, x)
            if isinstance(x, E.ClientLimit):
                assert x.reason
        if e.oracle == "reference_cdf":
            assert "reference_cdf" in manifest[name], f"{name}: no reference_cdf in MANIFEST.json"
            assert all(s >= manifest[name]["reference_cdf"]["starting_version"] for s, _ in e.version_ranges)
        if e.oracle == "none":
            assert e.parquet != E.OK and e.delta != E.OK
        for s, _ in e.version_ranges + e.timestamp_ranges:
            assert s >= e.cdf_since, f"{name}: range starts before CDF was enabled"
        # a table with DVs or column mapping must refuse parquet
        m = manifest.get(name)
        if m:
            feats = set((m["protocol"].get("readerFeatures") or []))
            if m.get("column_mapping_mode") or "deletionVectors" in feats or \
                    m["configuration"].get("delta.enableDeletionVectors") == "true":
                assert e.parquet == E.UNSUPPORTED_PROPS, f"{name}: DV/column-mapping table must refuse parquet"
        if name in manifest and not manifest[name].get("cdf_enabled"):
            assert e.parquet == C.NOT_RECORDED and e.delta == C.NOT_RECORDED
