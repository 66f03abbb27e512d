"""Structured streaming with the real Delta Sharing Spark connector.

The module writes its own small tables with Spark's Delta writer (so it can add commits while its
lakeshare server runs) and streams them with `spark.readStream.format("deltaSharing")`,
`.trigger(availableNow=True)`, `startingVersion` and `maxFilesPerTrigger=1` into a parquet sink with
a checkpoint. After a first run, a new commit is written to the table and a second AvailableNow run
on the same checkpoint must pick up exactly the new rows. Expected rows come from Spark's own Delta
reader on the same folder: for appends, the rows at the latest version minus the rows before
`startingVersion`; for the change feed, the batch change-feed read from `startingVersion`.

Formats: appends in parquet and in delta response format; the change feed in parquet format only
(the connector refuses change-feed streaming in delta format: "Delta sharing cdc streaming is not
supported when responseforma=delta").
"""
import glob
import json
import os

import pytest

import frames
from .support import delta_reader, snapshot, start_share

START = 1  # streams start at version 1 (version 0 only creates the table)
SCHEMA = "id BIGINT, name STRING, grp INT"


def _rows(ids, tag="v"):
    return [(i, f"{tag}-{i}", i % 3) for i in ids]


def append(spark, path, ids, files=1, tag="v"):
    spark.createDataFrame(_rows(ids, tag), SCHEMA).repartition(files).write.format("delta").mode("append").save(path)


def create_table(spark, path, cdf=False):
    props = " TBLPROPERTIES (delta.enableChangeDataFeed = true)" if cdf else ""
    spark.sql(f"CREATE TABLE delta.`{path}` ({SCHEMA}) USING delta{props}")


def added_files(path, start):
    """Number of add actions with dataChange=true in the commits >= start (local log)."""
    n = 0
    for f in sorted(glob.glob(os.path.join(path, "_delta_log", "*.json"))):
        if int(os.path.basename(f).split(".")[0]) < start:
            continue
        with open(f) as fh:
            for line in fh:
                a = json.loads(line)
                if "add" in a and a["add"].get("dataChange", True):
                    n += 1
    return n


@pytest.fixture(scope="module")
def stream_tables(spark, tmp_path_factory):
    d = tmp_path_factory.mktemp("spark-stream-tables")
    paths = {}
    for name in ("stream_parquet", "stream_delta"):
        p = str(d / name)
        create_table(spark, p)
        append(spark, p, range(1, 7), files=2)
        append(spark, p, range(7, 11), files=2)
        paths[name] = p
    p = str(d / "stream_cdf")
    create_table(spark, p, cdf=True)
    append(spark, p, range(1, 7), files=2)
    spark.sql(f"UPDATE delta.`{p}` SET name = 'updated' WHERE id = 1")
    paths["stream_cdf"] = p
    return paths


@pytest.fixture(scope="module")
def share(lakeshare_bin, tables, gov_sales, stream_tables, tmp_path_factory):
    s = start_share(lakeshare_bin, tables, gov_sales, tmp_path_factory.mktemp("spark-streaming"),
                    extra_tables=stream_tables)
    yield s
    s.gov.stop()


def run_available_now(spark, url, sink, checkpoint, fmt="parquet", **options):
    """One AvailableNow run into a parquet sink; returns the run's progress list."""
    r = spark.readStream.format("deltaSharing")
    if fmt != "auto":
        r = r.option("responseFormat", fmt)
    for k, v in options.items():
        r = r.option(k, str(v))
    q = (r.load(url).writeStream.format("parquet").option("checkpointLocation", checkpoint)
         .trigger(availableNow=True).start(sink))
    try:
        finished = q.awaitTermination(100)
        if not finished:
            raise AssertionError(f"the AvailableNow run on {url} did not finish within 100 s")
        if q.exception() is not None:
            raise AssertionError(f"the stream failed: {q.exception()}")
        return list(q.recentProgress)
    finally:
        if q.isActive:
            q.stop()


def sink_snapshot(spark, sink):
    return snapshot(spark.read.parquet(sink), "parquet sink")


def data_batches(progress):
    return [p for p in progress if p.get("numInputRows", 0) > 0]


@pytest.mark.parametrize("fmt", ["parquet", "delta"])
def test_stream_available_now_then_new_commit(spark, share, tmp_path, fmt):
    name = f"stream_{fmt}"
    path = share.paths[name]
    url = share.url(name)
    sink, ck = str(tmp_path / "sink"), str(tmp_path / "checkpoint")
    files = added_files(path, START)

    progress = run_available_now(spark, url, sink, ck, fmt, startingVersion=START, maxFilesPerTrigger=1)
    batches = data_batches(progress)
    assert len(batches) == files, (
        f"maxFilesPerTrigger=1 over {files} added files must give {files} batches with data, got "
        f"{[(p['batchId'], p['numInputRows']) for p in batches]}")
    first_latest = max(int(os.path.basename(f).split(".")[0]) for f in glob.glob(os.path.join(path, "_delta_log", "*.json")))
    latest = delta_reader(spark).load(path)
    before = delta_reader(spark, versionAsOf=START - 1).load(path)
    frames.assert_same_table(sink_snapshot(spark, sink), snapshot(latest.exceptAll(before), "spark delta"),
                             f"{name}: first AvailableNow run from version {START}", check_types=False)

    append(spark, path, range(100, 103), files=1, tag="new")
    progress = run_available_now(spark, url, sink, ck, fmt, startingVersion=START, maxFilesPerTrigger=1)
    new_rows = sum(p["numInputRows"] for p in progress)
    assert new_rows == 3, f"the second run must read only the 3 new rows, read {new_rows}: {progress}"
    latest = delta_reader(spark).load(path)
    frames.assert_same_table(sink_snapshot(spark, sink), snapshot(latest.exceptAll(before), "spark delta"),
                             f"{name}: after the commit {first_latest + 1}, second AvailableNow run", check_types=False)


def test_change_feed_stream_then_new_commits(spark, share, tmp_path):
    name = "stream_cdf"
    path = share.paths[name]
    url = share.url(name)
    sink, ck = str(tmp_path / "sink"), str(tmp_path / "checkpoint")

    def expected():
        return snapshot(delta_reader(spark, readChangeFeed="true", startingVersion=START).load(path), "spark delta cdf")

    run_available_now(spark, url, sink, ck, "parquet", readChangeFeed="true", startingVersion=START,
                      maxFilesPerTrigger=1)
    first = expected()
    frames.assert_same_table(sink_snapshot(spark, sink), first, f"{name}: first change-feed run", check_types=False)

    append(spark, path, [50, 51], files=1, tag="new")
    spark.sql(f"DELETE FROM delta.`{path}` WHERE id = 2")
    progress = run_available_now(spark, url, sink, ck, "parquet", readChangeFeed="true", startingVersion=START,
                                 maxFilesPerTrigger=1)
    want = expected()
    new_rows = sum(p["numInputRows"] for p in progress)
    assert new_rows == len(want.rows) - len(first.rows), (
        f"the second run must read only the new change rows ({len(want.rows) - len(first.rows)}), read {new_rows}")
    frames.assert_same_table(sink_snapshot(spark, sink), want, f"{name}: second change-feed run", check_types=False)
