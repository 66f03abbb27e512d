"""Write Delta tables the way Spark users write them, and Spark's own reads of them (the oracle).

Run by scripts/spark-tables.sh in its own virtual environment (pyspark 4.2.0 + delta-spark 4.4.0,
conformance-tests/spark-tables-requirements.txt) with the delta-spark jars that Maven resolved from
conformance-tests/spark-tables-pom.xml:

    python gen_spark_tables.py OUT_DIR JAR_DIR

It writes, under OUT_DIR:

* tables/<name>/          -- the Delta tables (Spark SQL / DataFrame writes, Delta 4.4 defaults
                             unless a table sets a property)
* oracle/<name>/<key>.json -- Spark's own `spark.read.format("delta")` read of the table: the
                             latest version, one or more earlier versions (`versionAsOf`) and, for
                             change-data-feed tables, `readChangeFeed` ranges. Each file holds the
                             schema (name, Spark type) and every row, values tagged by type (below).
* manifest.json           -- per table: latest version, commit times (ms) per version, the
                             protocol/properties Spark reports (DESCRIBE DETAIL), partition and
                             clustering columns, the history operations, and the oracle reads.

Commit-file mtimes are set to fixed times (per table: base + v * 3 601 001 ms) BEFORE the oracle
reads, so Spark's time travel and CDF `_commit_timestamp` see the same times the tests restore on
their copies. No table enables in-commit timestamps (checked: the generator fails if one does).

JSON value tags (decoded by test_spark_written_tables.py): null, true/false, ints and finite floats
as JSON numbers; {"f": "nan"|"inf"|"-inf"}, {"dec": "12.30"}, {"ts": "2024-03-01T12:00:00.000001"}
(TIMESTAMP as UTC wall time, and TIMESTAMP_NTZ as is: the generator runs with TZ=UTC and a UTC
session time zone), {"date": "2024-03-01"}, {"bin": "<hex>"}, {"variant": {"json": text,
"value": hex, "metadata": hex}}, {"list": [...]}, {"struct": {...}}.

The JVM runs only here, and scripts/spark-tables.sh runs this only when the sha256 of this file,
the requirements and the pom changes: the pytest run needs no JVM.
"""
import datetime as dt
import glob
import json
import os
import shutil
import sys
import time
from decimal import Decimal

STEP_MS = 3_601_001  # one hour and 1001 ms between commits: not whole seconds on purpose
MAKERS = []


def table(name, base):
    """Register a table writer; `base` is the commit time (UTC text) of its version 0."""

    def deco(fn):
        MAKERS.append((name, base, fn))
        return fn

    return deco


# ---------------------------------------------------------------------------------- helpers


def sql(spark, text):
    return spark.sql(text)


def q(path):
    return "delta.`%s`" % path


def append(spark, path, rows, schema, parts=2, mode="append", **opts):
    df = spark.createDataFrame(rows, schema).repartition(parts)
    w = df.write.format("delta").mode(mode)
    for k, v in opts.items():
        w = w.option(k, v)
    w.save(path)


def commit(path, version):
    with open(os.path.join(path, "_delta_log", "%020d.json" % version)) as fh:
        return [json.loads(ln) for ln in fh if ln.strip()]


def versions_of(path):
    return sorted(int(os.path.basename(p)[:20]) for p in glob.glob(os.path.join(path, "_delta_log", "[0-9]" * 20 + ".json")))


def require(cond, msg):
    if not cond:
        raise AssertionError(msg)


def has_action(path, version, kind, pred=lambda a: True):
    return any(kind in a and pred(a[kind]) for a in commit(path, version))


BASE_TS = dt.datetime(2024, 3, 1, 12, 0, 0, tzinfo=dt.timezone.utc)
REGIONS = ["eu", "us", "ap"]


def people(ids, tag="v0"):
    """Rows of the common shape: id, region, name (null every 6th), value, amount, ts, day."""
    out = []
    for i in ids:
        out.append((i, REGIONS[i % 3], None if i % 6 == 0 else f"name-{i}-{tag}", i * 1.25,
                    Decimal(i * 101) / Decimal(100), BASE_TS + dt.timedelta(hours=i, microseconds=i),
                    dt.date(2024, 1, 1) + dt.timedelta(days=i)))
    return out


PEOPLE = ("id BIGINT, region STRING, name STRING, value DOUBLE, amount DECIMAL(10,2), "
          "ts TIMESTAMP, day DATE")


# ---------------------------------------------------------------------------------- the tables


@table("spark-dv", "2025-03-01T00:00:00Z")
def make_dv(spark, path):
    """Deletion vectors (delta.enableDeletionVectors) on a table partitioned by region:
    v0 CREATE, v1 INSERT ids 1-48 (3 files per partition at most), v2 DELETE id % 7 = 0 (DVs),
    v3 UPDATE id % 5 = 0 (DVs + new file), v4 MERGE ids 40-55 (delete even matched, update odd
    matched, insert the rest: DVs)."""
    sql(spark, f"CREATE TABLE {q(path)} ({PEOPLE}) USING delta PARTITIONED BY (region) "
               "TBLPROPERTIES ('delta.enableDeletionVectors' = 'true')")
    append(spark, path, people(range(1, 49)), PEOPLE, parts=3)
    sql(spark, f"DELETE FROM {q(path)} WHERE id % 7 = 0")
    sql(spark, f"UPDATE {q(path)} SET name = upper(name), value = value * 10 WHERE id % 5 = 0")
    spark.createDataFrame(people(range(40, 56), "merge"), PEOPLE).createOrReplaceTempView("dv_src")
    sql(spark, f"""MERGE INTO {q(path)} t USING dv_src s ON t.id = s.id
                  WHEN MATCHED AND s.id % 2 = 0 THEN DELETE
                  WHEN MATCHED THEN UPDATE SET t.name = s.name, t.amount = s.amount
                  WHEN NOT MATCHED THEN INSERT *""")
    for v in (2, 3, 4):
        require(has_action(path, v, "add", lambda a: a.get("deletionVector")),
                f"spark-dv: commit {v} wrote no deletion vector")
    return {"versions": [1, 2, 3]}


def _column_mapping(spark, path, mode, partitioned):
    part = "PARTITIONED BY (grp) " if partitioned else ""
    sql(spark, f"CREATE TABLE {q(path)} (id BIGINT, grp STRING, name STRING, value DOUBLE, `note text` STRING) "
               f"USING delta {part}TBLPROPERTIES ('delta.columnMapping.mode' = '{mode}')")
    schema = "id BIGINT, grp STRING, name STRING, value DOUBLE, `note text` STRING"
    rows = [(i, "g%d" % (i % 2), f"n{i}", i / 4, None if i % 4 == 0 else f"note {i}") for i in range(1, 21)]
    append(spark, path, rows, schema)                                               # v1
    sql(spark, f"ALTER TABLE {q(path)} RENAME COLUMN name TO full_name")            # v2
    schema = "id BIGINT, grp STRING, full_name STRING, value DOUBLE, `note text` STRING"
    rows = [(i, "g%d" % (i % 2), f"renamed {i}", i / 4, f"note {i}") for i in range(21, 31)]
    append(spark, path, rows, schema)                                               # v3
    sql(spark, f"ALTER TABLE {q(path)} DROP COLUMN value")                          # v4
    schema = "id BIGINT, grp STRING, full_name STRING, `note text` STRING"
    rows = [(i, "g%d" % (i % 2), f"dropped {i}", f"note {i}") for i in range(31, 41)]
    append(spark, path, rows, schema)                                               # v5
    md = [a["metaData"] for a in commit(path, 0) if "metaData" in a][0]
    require(md["configuration"].get("delta.columnMapping.mode") == mode, f"column mapping {mode} not set")
    return {"versions": [1, 3]}


@table("spark-cm-name", "2025-03-02T00:00:00Z")
def make_cm_name(spark, path):
    """Column mapping, name mode, partitioned by grp: v0 CREATE (a column named `note text`),
    v1 INSERT, v2 RENAME COLUMN name TO full_name, v3 INSERT, v4 DROP COLUMN value, v5 INSERT."""
    return _column_mapping(spark, path, "name", True)


@table("spark-cm-id", "2025-03-03T00:00:00Z")
def make_cm_id(spark, path):
    """Column mapping, id mode (unpartitioned); same history as spark-cm-name."""
    return _column_mapping(spark, path, "id", False)


@table("spark-timestamp-ntz", "2025-03-04T00:00:00Z")
def make_ntz(spark, path):
    """TIMESTAMP_NTZ beside TIMESTAMP and DATE (timestampNtz reader feature): v0 CREATE,
    v1 INSERT 12 rows (microseconds, pre-1970, nulls), v2 INSERT 6 rows."""
    schema = "id INT, ts TIMESTAMP, ts_ntz TIMESTAMP_NTZ, d DATE"
    sql(spark, f"CREATE TABLE {q(path)} ({schema}) USING delta")

    def rows(ids):
        out = []
        for i in ids:
            wall = dt.datetime(1965, 7, 1, 6, 30) + dt.timedelta(days=i * 997, seconds=i * 3671, microseconds=i * 7)
            out.append((i, None if i % 5 == 0 else BASE_TS + dt.timedelta(days=i, microseconds=i),
                        None if i % 7 == 0 else wall, dt.date(1969, 12, 31) + dt.timedelta(days=i * 400)))
        return out

    append(spark, path, rows(range(1, 13)), schema)
    append(spark, path, rows(range(13, 19)), schema)
    return {"versions": [1]}


@table("spark-type-widening", "2025-03-05T00:00:00Z")
def make_type_widening(spark, path):
    """Type widening (delta.enableTypeWidening): v0 CREATE (id INT, small SMALLINT, f FLOAT,
    amount DECIMAL(6,2), name STRING), v1 INSERT 10 rows, v2 ALTER id TYPE BIGINT, v3 ALTER small
    TYPE INT, v4 ALTER f TYPE DOUBLE, v5 ALTER amount TYPE DECIMAL(12,2), v6 INSERT 10 rows with
    values that need the wider types."""
    sql(spark, f"CREATE TABLE {q(path)} (id INT, small SMALLINT, f FLOAT, amount DECIMAL(6,2), name STRING) "
               "USING delta TBLPROPERTIES ('delta.enableTypeWidening' = 'true')")
    rows = [(i, i * 100, i + 0.5, Decimal(i * 1234) / Decimal(100), f"narrow {i}") for i in range(1, 11)]
    append(spark, path, rows, "id INT, small SMALLINT, f FLOAT, amount DECIMAL(6,2), name STRING")
    sql(spark, f"ALTER TABLE {q(path)} ALTER COLUMN id TYPE BIGINT")
    sql(spark, f"ALTER TABLE {q(path)} ALTER COLUMN small TYPE INT")
    sql(spark, f"ALTER TABLE {q(path)} ALTER COLUMN f TYPE DOUBLE")
    sql(spark, f"ALTER TABLE {q(path)} ALTER COLUMN amount TYPE DECIMAL(12,2)")
    rows = [(3_000_000_000 + i, 100_000 + i, 1e300 / i, Decimal(9_876_543_210 + i) / Decimal(100), f"wide {i}")
            for i in range(1, 11)]
    append(spark, path, rows, "id BIGINT, small INT, f DOUBLE, amount DECIMAL(12,2), name STRING")
    return {"versions": [1, 5]}


@table("spark-variant", "2025-03-06T00:00:00Z")
def make_variant(spark, path):
    """A VARIANT column (variantType reader feature): v0 CREATE, v1 INSERT 8 rows of parse_json
    (objects, arrays, numbers, strings, JSON null, SQL null), v2 INSERT 4 rows."""
    sql(spark, f"CREATE TABLE {q(path)} (id INT, v VARIANT) USING delta")
    docs = ['{"a": 1, "b": [1, 2, 3], "c": {"d": "x"}}', '[1, "two", 3.5, null]', '42', '"text"',
            'null', '{"nested": {"deep": {"deeper": true}}}', '12345678901234.5678', None,
            '{"k": "é ü"}', '[]', '{}', '-0.001']
    spark.createDataFrame([(i + 1, d) for i, d in enumerate(docs[:8])], "id INT, j STRING") \
        .selectExpr("id", "parse_json(j) AS v").repartition(2).write.format("delta").mode("append").save(path)
    spark.createDataFrame([(i + 9, d) for i, d in enumerate(docs[8:])], "id INT, j STRING") \
        .selectExpr("id", "parse_json(j) AS v").write.format("delta").mode("append").save(path)
    return {"versions": [1]}


@table("spark-clustered", "2025-03-07T00:00:00Z")
def make_clustered(spark, path):
    """Liquid clustering: v0 CREATE ... CLUSTER BY (region, id), v1 INSERT ids 1-20, v2 INSERT ids
    21-40, v3 OPTIMIZE (clusters the files: dataChange=false remove/add), v4 INSERT ids 41-45."""
    sql(spark, f"CREATE TABLE {q(path)} ({PEOPLE}) USING delta CLUSTER BY (region, id)")
    append(spark, path, people(range(1, 21)), PEOPLE)
    append(spark, path, people(range(21, 41)), PEOPLE)
    sql(spark, f"OPTIMIZE {q(path)}")
    append(spark, path, people(range(41, 46)), PEOPLE, parts=1)
    require(any(c.get("commitInfo", {}).get("operation") == "OPTIMIZE" for c in commit(path, 3)),
            "spark-clustered: v3 is not an OPTIMIZE")
    return {"versions": [2, 3]}


@table("spark-row-tracking", "2025-03-08T00:00:00Z")
def make_row_tracking(spark, path):
    """Row tracking (delta.enableRowTracking): v0 CREATE, v1 INSERT ids 1-30, v2 UPDATE id % 4 = 0,
    v3 INSERT ids 31-40, v4 DELETE id % 9 = 0."""
    sql(spark, f"CREATE TABLE {q(path)} ({PEOPLE}) USING delta TBLPROPERTIES ('delta.enableRowTracking' = 'true')")
    append(spark, path, people(range(1, 31)), PEOPLE)
    sql(spark, f"UPDATE {q(path)} SET value = -value WHERE id % 4 = 0")
    append(spark, path, people(range(31, 41)), PEOPLE)
    sql(spark, f"DELETE FROM {q(path)} WHERE id % 9 = 0")
    require(has_action(path, 1, "add", lambda a: "baseRowId" in a), "spark-row-tracking: no baseRowId in v1")
    return {"versions": [1, 2]}


@table("spark-v2-checkpoint", "2025-03-09T00:00:00Z")
def make_v2_checkpoint(spark, path):
    """V2 checkpoints (delta.checkpointPolicy = v2, delta.checkpointInterval = 4): v0 CREATE,
    v1-v4 INSERT (Spark writes a UUID-named v2 checkpoint at v4), v5 DELETE id % 3 = 0, v6 INSERT."""
    sql(spark, f"CREATE TABLE {q(path)} ({PEOPLE}) USING delta TBLPROPERTIES "
               "('delta.checkpointPolicy' = 'v2', 'delta.checkpointInterval' = '4')")
    for k in range(4):
        append(spark, path, people(range(k * 10 + 1, k * 10 + 11)), PEOPLE)
    sql(spark, f"DELETE FROM {q(path)} WHERE id % 3 = 0")
    append(spark, path, people(range(41, 51)), PEOPLE)
    cps = glob.glob(os.path.join(path, "_delta_log", "%020d.checkpoint.*" % 4))
    require(cps and all(len(os.path.basename(c).split(".")) == 4 for c in cps),
            f"spark-v2-checkpoint: no UUID-named v2 checkpoint at version 4: {os.listdir(os.path.join(path, '_delta_log'))}")
    return {"versions": [2, 4]}


@table("spark-cdf", "2025-03-10T00:00:00Z")
def make_cdf(spark, path):
    """Change data feed (delta.enableChangeDataFeed), partitioned by region: v0 CREATE, v1 INSERT
    ids 1-24, v2 UPDATE id % 4 = 0 (update_preimage/postimage), v3 DELETE id % 5 = 0, v4 MERGE ids
    20-30 (delete matched id % 3 = 0, update other matched, insert not matched), v5 INSERT ids
    31-34, v6 DELETE region = 'ap' (whole partition: remove actions only, no cdc files)."""
    sql(spark, f"CREATE TABLE {q(path)} ({PEOPLE}) USING delta PARTITIONED BY (region) "
               "TBLPROPERTIES ('delta.enableChangeDataFeed' = 'true')")
    append(spark, path, people(range(1, 25)), PEOPLE)
    sql(spark, f"UPDATE {q(path)} SET value = value + 1000, name = 'updated' WHERE id % 4 = 0")
    sql(spark, f"DELETE FROM {q(path)} WHERE id % 5 = 0")
    spark.createDataFrame(people(range(20, 31), "merge"), PEOPLE).createOrReplaceTempView("cdf_src")
    sql(spark, f"""MERGE INTO {q(path)} t USING cdf_src s ON t.id = s.id
                  WHEN MATCHED AND s.id % 3 = 0 THEN DELETE
                  WHEN MATCHED THEN UPDATE SET t.name = s.name, t.value = s.value
                  WHEN NOT MATCHED THEN INSERT *""")
    append(spark, path, people(range(31, 35)), PEOPLE, parts=1)
    sql(spark, f"DELETE FROM {q(path)} WHERE region = 'ap'")
    for v in (2, 3, 4):
        require(has_action(path, v, "cdc"), f"spark-cdf: commit {v} has no cdc file")
    require(not has_action(path, 6, "cdc") and has_action(path, 6, "remove"),
            "spark-cdf: v6 should be a metadata-only partition delete (remove actions, no cdc files)")
    return {"versions": [1, 3], "cdf": [(0, None), (2, 3), (4, 6)]}


@table("spark-optimize-vacuum", "2025-03-11T00:00:00Z")
def make_optimize_vacuum(spark, path):
    """Small files compacted and vacuumed: v0 CREATE, v1-v4 INSERT (2 files each), v5 DELETE id % 6 = 0
    (file rewrites), v6 OPTIMIZE (one file), then VACUUM RETAIN 0 HOURS with the retention check
    disabled (Delta logs VACUUM START / VACUUM END commits). Files of versions before v6 are gone,
    so only v6 and the latest version are read."""
    sql(spark, f"CREATE TABLE {q(path)} ({PEOPLE}) USING delta")
    for k in range(4):
        append(spark, path, people(range(k * 8 + 1, k * 8 + 9)), PEOPLE)
    sql(spark, f"DELETE FROM {q(path)} WHERE id % 6 = 0")
    sql(spark, f"OPTIMIZE {q(path)}")
    spark.conf.set("spark.databricks.delta.retentionDurationCheck.enabled", "false")
    try:
        sql(spark, f"VACUUM {q(path)} RETAIN 0 HOURS")
    finally:
        spark.conf.unset("spark.databricks.delta.retentionDurationCheck.enabled")
    parquet = [f for f in glob.glob(os.path.join(path, "*.parquet"))]
    live = [a["add"]["path"] for a in commit(path, 6) if "add" in a]
    require(len(parquet) == len(live) == 1, f"spark-optimize-vacuum: expected one live file after VACUUM, "
                                            f"found {parquet}, v6 adds {live}")
    return {"versions": [6]}


@table("spark-partition-escaping", "2025-03-12T00:00:00Z")
def make_partition_escaping(spark, path):
    """Partition values that need escaping in paths: 'a b', '50%', 'x=y', 'é', 'a/b', 'c:d', '#1'
    and NULL (partition column `part`, plus an int partition column `n`): v0 CREATE + INSERT,
    v1 INSERT, v2 DELETE part = '50%' (whole partition)."""
    schema = "id INT, part STRING, n INT, value STRING"
    values = ["a b", "50%", "x=y", "é", "a/b", "c:d", "#1", None]
    rows = [(i, values[i % len(values)], i % 2, f"row {i}") for i in range(1, 25)]
    spark.createDataFrame(rows, schema).repartition(2).write.format("delta").partitionBy("part", "n").save(path)
    rows = [(i, values[i % len(values)], 7, f"more {i}") for i in range(25, 33)]
    spark.createDataFrame(rows, schema).write.format("delta").mode("append").save(path)
    sql(spark, f"DELETE FROM {q(path)} WHERE part = '50%'")
    adds = [a["add"]["path"] for a in commit(path, 0) if "add" in a]
    require(any("%25" in p for p in adds), f"spark-partition-escaping: no escaped path in v0: {adds}")
    return {"versions": [0, 1]}


# ---------------------------------------------------------------------------------- oracle encoding


def encode(v):
    from pyspark.sql import Row
    from pyspark.sql.types import VariantVal

    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        if v != v:
            return {"f": "nan"}
        if v in (float("inf"), float("-inf")):
            return {"f": "inf" if v > 0 else "-inf"}
        return v
    if isinstance(v, Decimal):
        return {"dec": format(v, "f")}
    if isinstance(v, dt.datetime):
        require(v.tzinfo is None, f"unexpected aware datetime {v!r}")
        return {"ts": v.strftime("%Y-%m-%dT%H:%M:%S.%f")}
    if isinstance(v, dt.date):
        return {"date": v.isoformat()}
    if isinstance(v, (bytes, bytearray)):
        return {"bin": bytes(v).hex()}
    if isinstance(v, VariantVal):
        return {"variant": {"json": v.toJson(), "value": bytes(v.value).hex(), "metadata": bytes(v.metadata).hex()}}
    if isinstance(v, Row):
        return {"struct": {k: encode(x) for k, x in v.asDict(recursive=False).items()}}
    if isinstance(v, dict):
        return {"map": [[encode(k), encode(x)] for k, x in v.items()]}
    if isinstance(v, (list, tuple)):
        return {"list": [encode(x) for x in v]}
    raise TypeError(f"cannot encode {type(v).__name__}: {v!r}")


def dump_frame(df, out_path):
    schema = [{"name": f.name, "type": f.dataType.simpleString(), "typeName": f.dataType.typeName()}
              for f in df.schema.fields]
    rows = [[encode(x) for x in r] for r in df.collect()]
    with open(out_path, "w") as fh:
        json.dump({"schema": schema, "rows": rows}, fh, ensure_ascii=False)
    return len(rows)


# ---------------------------------------------------------------------------------- driver


def parse_ms(text):
    return int(dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc).timestamp() * 1000)


def stamp(path, base_ms):
    times = {}
    for v in versions_of(path):
        info = next((a["commitInfo"] for a in commit(path, v) if "commitInfo" in a), {})
        require("inCommitTimestamp" not in info, f"{path}: version {v} has an in-commit timestamp")
        ms = base_ms + v * STEP_MS
        os.utime(os.path.join(path, "_delta_log", "%020d.json" % v), ns=(ms * 1_000_000, ms * 1_000_000))
        times[v] = ms
    return times


def session(jar_dir, tmp):
    from pyspark.sql import SparkSession

    jars = sorted(glob.glob(os.path.join(jar_dir, "*.jar")))
    require(jars, f"no jars in {jar_dir}")
    opts = f"-Duser.timezone=UTC -Djava.io.tmpdir={tmp}"
    return (
        SparkSession.builder.master("local[2]")
        .appName("lakeshare-spark-tables")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "2")
        .config("spark.databricks.delta.snapshotPartitions", "2")
        .config("spark.sql.sources.parallelPartitionDiscovery.parallelism", "2")
        # commit times are stamped into 2025: allow time travel past deletedFileRetentionDuration
        .config("spark.databricks.delta.vacuum.enforceTimeTravelWithinDeletedFileRetentionDuration", "false")
        .config("spark.driver.memory", "1g")
        .config("spark.driver.extraJavaOptions", opts)
        .config("spark.local.dir", os.path.join(tmp, "local"))
        .config("spark.sql.warehouse.dir", os.path.join(tmp, "warehouse"))
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.jars", ",".join(jars))
        .config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
        .config("spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog")
        .getOrCreate()
    )


def detail(spark, path):
    d = spark.sql(f"DESCRIBE DETAIL {q(path)}").collect()[0].asDict(recursive=True)
    hist = spark.sql(f"DESCRIBE HISTORY {q(path)}").select("version", "operation").collect()
    return {
        "minReaderVersion": d.get("minReaderVersion"),
        "minWriterVersion": d.get("minWriterVersion"),
        "tableFeatures": sorted(d.get("tableFeatures") or []),
        "properties": d.get("properties") or {},
        "partitionColumns": d.get("partitionColumns") or [],
        "clusteringColumns": d.get("clusteringColumns") or [],
        "numFiles": d.get("numFiles"),
        "history": {int(r["version"]): r["operation"] for r in hist},
    }


def main(out, jar_dir):
    os.environ["TZ"] = "UTC"
    time.tzset()
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    tmp = os.path.join(out, ".spark-tmp")
    os.makedirs(tmp, exist_ok=True)
    spark = session(jar_dir, tmp)
    spark.sparkContext.setLogLevel("ERROR")
    jvm_delta_log = spark._jvm.org.apache.spark.sql.delta.DeltaLog
    manifest = {"generator": "gen_spark_tables.py", "spark": spark.version, "tables": {}}
    only = set(filter(None, os.environ.get("LAKESHARE_SPARK_TABLES_ONLY", "").split(",")))
    for name, base, maker in MAKERS:
        if only and name not in only:
            continue
        t0 = time.monotonic()
        path = os.path.join(out, "tables", name)
        plan = maker(spark, path)
        times = stamp(path, parse_ms(base))
        jvm_delta_log.clearCache()  # forget the commit-file listing taken before the new mtimes
        latest = max(times)
        odir = os.path.join(out, "oracle", name)
        os.makedirs(odir, exist_ok=True)
        reads = {}
        for v in sorted(set(plan["versions"]) | {latest}):
            key = f"v{v}"
            n = dump_frame(spark.read.format("delta").option("versionAsOf", v).load(path), os.path.join(odir, key + ".json"))
            reads[key] = {"kind": "snapshot", "version": v, "file": f"oracle/{name}/{key}.json", "rows": n}
        for start, end in plan.get("cdf", []):
            key = f"cdf-{start}-{'' if end is None else end}"
            r = spark.read.format("delta").option("readChangeFeed", "true").option("startingVersion", start)
            if end is not None:
                r = r.option("endingVersion", end)
            n = dump_frame(r.load(path), os.path.join(odir, key + ".json"))
            reads[key] = {"kind": "cdf", "start": start, "end": end, "file": f"oracle/{name}/{key}.json", "rows": n}
        info = detail(spark, path)
        manifest["tables"][name] = {
            "path": f"tables/{name}", "latest_version": latest,
            "commit_times_ms": {str(v): ms for v, ms in times.items()},
            "doc": " ".join((maker.__doc__ or "").split()), "reads": reads, **info,
        }
        print(f"gen_spark_tables: {name}: v{latest}, features {info['tableFeatures']}, "
              f"{len(reads)} oracle reads, {time.monotonic() - t0:.1f} s", file=sys.stderr, flush=True)
    spark.stop()
    shutil.rmtree(tmp, ignore_errors=True)
    with open(os.path.join(out, "manifest.json"), "w") as fh:
        json.dump(manifest, fh, indent=1, sort_keys=True, ensure_ascii=False)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: gen_spark_tables.py OUT_DIR JAR_DIR")
    main(sys.argv[1], sys.argv[2])
