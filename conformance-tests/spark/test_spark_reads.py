"""Batch reads with the real Delta Sharing Spark connector (io.delta:delta-sharing-spark_2.13:4.4.0).

Every read goes through `spark.read.format("deltaSharing").load("<profile>#spark.t.<table>")` against
this module's own lakeshare server and is compared with Spark's own Delta reader on the same table
folder with the same options (conftest.py): snapshots in both response formats and with the
connector's own format resolution, deletion-vector and column-mapping tables in delta format,
versionAsOf/timestampAsOf, the change data feed by versions and by timestamps, the connector's
session confs (query pagination, async queries, endStreamAction), a recipient-specific partition
filter, expired and revoked profiles, and predicate/limit pushdown as recorded in the audit log.
"""
import json

import pytest

import audit_support as AS
from .support import (FILTER_SHARE, Share, assert_same_frame, delta_reader, error_text, session_conf, shared_name,
                      sharing_reader, snapshot, start_share, ts_text)


@pytest.fixture(scope="module")
def share(lakeshare_bin, tables, gov_sales, tmp_path_factory):
    s = start_share(lakeshare_bin, tables, gov_sales, tmp_path_factory.mktemp("spark-reads"))
    yield s
    s.gov.stop()


def read_both(spark, share: Share, folder, fmt, sharing_opts=None, delta_opts=None):
    name = shared_name(folder)
    got = sharing_reader(spark, fmt, **(sharing_opts or {})).load(share.url(name))
    want = delta_reader(spark, **(delta_opts if delta_opts is not None else sharing_opts or {})).load(share.paths[name])
    return got, want


# ---------------------------------------------------------------------------------- snapshots

SNAPSHOTS = [
    ("plain-unpartitioned", "auto"), ("plain-unpartitioned", "parquet"), ("plain-unpartitioned", "delta"),
    ("gen-partitioned", "parquet"), ("gen-partitioned", "delta"),
    ("checkpoint-v1-single", "parquet"), ("checkpoint-v1-single", "delta"),
    ("gen-checkpointed", "auto"),
    # deletion vectors and column mapping: delta format only (and the connector's own resolution)
    ("dv-partitioned-checkpoint", "delta"), ("dv-partitioned-checkpoint", "auto"),
    ("dv-column-mapping", "delta"),
    ("column-mapping-name", "delta"), ("column-mapping-name", "auto"),
]


@pytest.mark.parametrize("folder,fmt", SNAPSHOTS, ids=[f"{t}-{f}" for t, f in SNAPSHOTS])
def test_snapshot(spark, share, folder, fmt):
    got, want = read_both(spark, share, folder, fmt)
    assert_same_frame(got, want, f"{folder} latest ({fmt})")


@pytest.mark.parametrize("folder", ["dv-partitioned-checkpoint", "column-mapping-name"])
def test_advanced_table_refused_in_parquet(spark, share, folder):
    """responseFormat=parquet on a DV / column-mapping table: the server refuses (400
    UNSUPPORTED_OPERATION, PROTOCOL-NOTES §3.3) and the connector surfaces it."""
    with pytest.raises(Exception) as info:
        sharing_reader(spark, "parquet").load(share.url(shared_name(folder))).collect()
    text = error_text(info.value)
    assert "400" in text and "Unsupported Delta Table Properties" in text, text[:3000]


# ---------------------------------------------------------------------------------- time travel


def _tt_cases():
    out = []
    for fmt in ("parquet", "delta"):
        out += [("checkpoint-v1-single", fmt, {"versionAsOf": 0}), ("checkpoint-v1-single", fmt, {"versionAsOf": 12})]
        out += [("checkpoint-v1-single", fmt, {"timestampAsOf": 12}),  # exactly the commit time of v12
                ("checkpoint-v1-single", fmt, {"timestampAsOf": 5.5})]  # between v5 and v6 -> v5
        out += [("gen-partitioned", fmt, {"versionAsOf": 2})]
    out += [("dv-partitioned-checkpoint", "delta", {"versionAsOf": 0}),
            ("dv-partitioned-checkpoint", "delta", {"timestampAsOf": 14})]
    return out


TT = _tt_cases()


@pytest.mark.parametrize("folder,fmt,opt", TT, ids=[f"{t}-{f}-{json.dumps(o)}" for t, f, o in TT])
def test_time_travel(spark, share, tables, folder, fmt, opt):
    if "timestampAsOf" in opt:
        times = tables[folder]["commit_mtimes_ms"]
        v = opt["timestampAsOf"]
        ms = times[v] if isinstance(v, int) else (times[int(v)] + times[int(v) + 1]) // 2
        opt = {"timestampAsOf": ts_text(ms)}
    got, want = read_both(spark, share, folder, fmt, opt)
    assert_same_frame(got, want, f"{folder} {opt} ({fmt})")


def test_time_travel_version_is_pinned(spark, share):
    """versionAsOf 0 and latest differ on checkpoint-v1-single (10 vs 41 rows): the server did not
    ignore the version."""
    url = share.url(shared_name("checkpoint-v1-single"))
    assert sharing_reader(spark, "parquet", versionAsOf=0).load(url).count() == 10
    assert sharing_reader(spark, "delta", versionAsOf=0).load(url).count() == 10


# ---------------------------------------------------------------------------------- change data feed


def _cdf_cases():
    out = []
    for fmt in ("parquet", "delta"):
        out += [("gen-cdf-partitioned", fmt, {"startingVersion": 0}),
                ("gen-cdf-partitioned", fmt, {"startingVersion": 2, "endingVersion": 4}),
                ("gen-cdf-partitioned", fmt, {"startingVersion": 5, "endingVersion": 5}),
                ("gen-cdf-partitioned", fmt, {"startingTimestamp": 1, "endingTimestamp": 3}),
                ("cdf-partitioned", fmt, {"startingVersion": 0})]
    out += [("cdf-with-dvs", "delta", {"startingVersion": 9, "endingVersion": 12})]
    return out


CDF = _cdf_cases()


@pytest.mark.parametrize("folder,fmt,opt", CDF, ids=[f"{t}-{f}-{json.dumps(o)}" for t, f, o in CDF])
def test_change_data_feed(spark, share, tables, folder, fmt, opt):
    times = tables[folder]["commit_mtimes_ms"]
    opt = {k: ts_text(times[v]) if k.endswith("Timestamp") else v for k, v in opt.items()}
    opt["readChangeFeed"] = "true"
    got, want = read_both(spark, share, folder, fmt, opt)
    assert want.count() > 0, f"oracle read no change rows for {folder} {opt}"
    assert_same_frame(got, want, f"{folder} change feed {opt} ({fmt})")


# ---------------------------------------------------------------------------------- session confs

PAGINATION = {"spark.delta.sharing.queryPagination.enabled": "true", "spark.delta.sharing.maxFilesPerQueryRequest": "1"}
ASYNC = {"spark.delta.sharing.network.useAsyncQuery": "true",
         "spark.delta.sharing.network.asyncQueryRetryInterval": "200"}  # milliseconds (default 10 s)
END_STREAM = {"spark.delta.sharing.query.includeEndStreamAction": "true"}
CONFS = {"pagination": PAGINATION, "async": ASYNC, "endstream": END_STREAM}


def audit_events(share):
    return [json.loads(line) for line in AS.export(share.gov.binary, share.gov.state, "jsonl").splitlines() if line]


def _events_since(share, before, table):
    seen = {e["id"] for e in before}
    return [e for e in audit_events(share) if e["id"] not in seen and e.get("table") == table
            and e.get("kind") != "cli"]


@pytest.mark.parametrize("conf", list(CONFS))
@pytest.mark.parametrize("fmt", ["parquet", "delta"])
def test_session_confs_snapshot(spark, share, conf, fmt):
    name = shared_name("gen-partitioned")
    before = audit_events(share)
    with session_conf(spark, CONFS[conf]):
        got = snapshot(sharing_reader(spark, fmt).load(share.url(name)), "connector")
    want = snapshot(delta_reader(spark).load(share.paths[name]), "spark delta")
    import frames

    frames.assert_same_table(got, want, f"gen-partitioned latest ({fmt}, {conf})", check_types=False)
    events = _events_since(share, before, name)
    queries = [e for e in events if e["kind"] in ("query", "async_query")]
    assert queries, f"no /query event recorded for {name}: {events}"
    if conf == "pagination":
        pages = [e for e in queries if e.get("params", {}).get("maxFiles") == "1"]
        assert any(e["params"].get("pageToken") == "present" for e in pages), (
            f"the connector paged with maxFiles=1 and followed a nextPageToken: {[e.get('params') for e in queries]}")
    if conf == "async":
        assert any(e["kind"] == "async_query" for e in queries) or any(
            "queries" in e.get("route", "") for e in queries), (
            f"the connector polled POST .../queries/{{queryId}}: {[(e['route'], e.get('params')) for e in queries]}")


@pytest.mark.parametrize("conf", ["pagination", "endstream"])
@pytest.mark.parametrize("fmt", ["parquet", "delta"])
def test_session_confs_change_feed(spark, share, conf, fmt):
    folder = "gen-cdf-partitioned"
    name = shared_name(folder)
    before = audit_events(share)
    with session_conf(spark, CONFS[conf]):
        got = snapshot(sharing_reader(spark, fmt, readChangeFeed="true", startingVersion=0).load(share.url(name)),
                       "connector")
    want = snapshot(delta_reader(spark, readChangeFeed="true", startingVersion=0).load(share.paths[name]), "spark delta")
    import frames

    frames.assert_same_table(got, want, f"{folder} change feed ({fmt}, {conf})", check_types=False)
    if conf == "pagination":
        changes = [e for e in _events_since(share, before, name) if e["kind"] == "changes"]
        assert any(e.get("params", {}).get("pageToken") == "present" for e in changes), (
            f"the connector paged /changes: {[e.get('params') for e in changes]}")


def test_session_confs_time_travel_paginated(spark, share):
    folder = "checkpoint-v1-single"
    with session_conf(spark, PAGINATION):
        got, want = read_both(spark, share, folder, "parquet", {"versionAsOf": 12})
        assert_same_frame(got, want, f"{folder} versionAsOf 12 (parquet, paginated)")


# ---------------------------------------------------------------------------------- governance


@pytest.mark.parametrize("fmt", ["parquet", "delta"])
def test_partition_filter_recipient(spark, share, gov_sales, fmt):
    """Recipient `us` (property country=US) on a table shared with `country = <property country>`:
    only the US rows; recipient `main` (no such property) sees no row at all."""
    from pyspark.sql import functions as F

    url = share.url("by_country", reader="us", share=FILTER_SHARE, schema="s")
    got = sharing_reader(spark, fmt).load(url)
    want = delta_reader(spark).load(gov_sales["path"]).where(F.col("country") == "US")
    assert want.count() > 0
    assert_same_frame(got, want, f"by_country as us ({fmt})")
    none = sharing_reader(spark, fmt).load(share.url("by_country", reader="main", share=FILTER_SHARE, schema="s"))
    assert none.count() == 0


@pytest.mark.parametrize("reader", ["expired", "revoked"])
@pytest.mark.parametrize("fmt", ["parquet", "delta"])
def test_refused_profile(spark, share, reader, fmt):
    with pytest.raises(Exception) as info:
        sharing_reader(spark, fmt).load(share.url(shared_name("plain-unpartitioned"), reader=reader)).collect()
    text = error_text(info.value)
    assert "401" in text, f"{reader} profile: the error must name HTTP 401:\n{text[:3000]}"
    if reader == "expired":
        assert "expired" in text.lower(), text[:3000]


# ---------------------------------------------------------------------------------- pushdown


@pytest.mark.parametrize("fmt", ["parquet", "delta"])
def test_predicate_and_limit_pushdown(spark, share, fmt):
    """A partition filter and a limit reach the server as jsonPredicateHints and limitHint (audit
    params), and the filtered result equals the oracle's."""
    from pyspark.sql import functions as F

    name = shared_name("gen-partitioned")
    oracle = delta_reader(spark).load(share.paths[name])
    region = sorted(r[0] for r in oracle.select("region").distinct().collect() if r[0] is not None)[0]
    before = audit_events(share)
    got = sharing_reader(spark, fmt).load(share.url(name)).where(F.col("region") == region)
    assert_same_frame(got, oracle.where(F.col("region") == region), f"gen-partitioned region={region} ({fmt})")
    queries = [e for e in _events_since(share, before, name) if e["kind"] == "query"]
    assert any(e.get("params", {}).get("jsonPredicateHints") == "present" for e in queries), (
        f"no jsonPredicateHints reached the server: {[e.get('params') for e in queries]}")

    before = audit_events(share)
    rows = sharing_reader(spark, fmt).load(share.url(name)).limit(2).collect()
    assert len(rows) == 2
    queries = [e for e in _events_since(share, before, name) if e["kind"] == "query"]
    assert any(e.get("params", {}).get("limitHint") == "2" for e in queries), (
        f"no limitHint=2 reached the server: {[e.get('params') for e in queries]}")
