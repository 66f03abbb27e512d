"""Fixtures of the Spark conformance suite: the real Delta Sharing Spark connector against lakeshare.

* `spark` (package scope: ONE SparkSession for the whole Spark suite, stopped after its last test so
  that its JVM does not idle through the rest of the conformance run): pyspark 4.2.0, master
  local[2], no UI, 2 shuffle partitions, private spark.local.dir and warehouse in a pytest temp dir,
  the Delta extension and catalog, and `spark.jars` = every jar of the folder that
  scripts/spark-deps.sh resolves from spark/pom.xml (io.delta:delta-sharing-spark_2.13:4.4.0 and its
  runtime dependencies, minus what pyspark ships): $LAKESHARE_SPARK_JARS, else
  target/spark-jars/<sha256 of spark/pom.xml>/. A missing Java, pyspark or jar folder FAILS every
  Spark test with the reason; nothing is skipped.
* `share` (module): a lakeshare server of its own (governance.GovServer: own config and SQLite
  state) sharing the golden and generated tables of the parent `tables` fixture, gov-sales with a
  partition filter, and tables the module writes itself with Spark's Delta writer; recipients
  `main` (everything), `us` (property country=US), `expired` (expired at creation) and `revoked`.
* Oracle: Spark's own Delta reader on the same table folder (`spark.read.format("delta").load`),
  with the same options (versionAsOf, timestampAsOf, readChangeFeed ranges). Both sides are
  collected by the same pyspark and compared as canonical rows (frames.py), schema by name and
  Spark type.
"""
import os
import shutil
import sys

import pytest

from .support import suite_fail, check_jars, jar_folder


@pytest.fixture(scope="package")
def spark(tmp_path_factory):
    java = shutil.which("java") or (os.environ.get("JAVA_HOME") and os.path.join(os.environ["JAVA_HOME"], "bin", "java"))
    if not java or not os.path.exists(java):
        suite_fail("java not found (PATH or JAVA_HOME): Spark 4.2 needs a JDK 17+.")
    try:
        import pyspark
        from pyspark.sql import SparkSession
    except ImportError as exc:
        suite_fail(f"pyspark is not importable ({exc}): install conformance-tests/requirements.txt (pyspark==4.2.0).")
    folder, origin = jar_folder()
    jars = check_jars(folder, os.path.join(os.path.dirname(pyspark.__file__), "jars"))
    tmp = tmp_path_factory.mktemp("spark")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    java_opts = f"-Duser.timezone=UTC -Djava.io.tmpdir={tmp}"
    builder = (
        SparkSession.builder.master("local[2]")
        .appName("lakeshare-spark-conformance")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "2")
        # Delta's log replay defaults to 50 shuffle partitions: tiny tables need 2 (Delta's own test setting)
        .config("spark.databricks.delta.snapshotPartitions", "2")
        .config("spark.sql.sources.parallelPartitionDiscovery.parallelism", "2")
        # the golden tables' commits are years old: allow time travel past deletedFileRetentionDuration
        # (Delta 4.x refuses it by default; applies to the oracle and the connector's delta path)
        .config("spark.databricks.delta.vacuum.enforceTimeTravelWithinDeletedFileRetentionDuration", "false")
        .config("spark.driver.memory", "2g")
        .config("spark.driver.extraJavaOptions", java_opts)
        .config("spark.local.dir", str(tmp / "local"))
        .config("spark.sql.warehouse.dir", str(tmp / "warehouse"))
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.jars", ",".join(jars))
        .config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
        .config("spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog")
        # the connector's own retries (1 s doubling) only slow a failing test down
        .config("spark.delta.sharing.network.numRetries", "1")
    )
    try:
        session = builder.getOrCreate()
    except Exception as exc:  # JVM start failures come here
        suite_fail(f"the SparkSession did not start with the jars of {folder} ({origin}): {exc}")
    session.sparkContext.setLogLevel("WARN")
    session._lakeshare_tmp = tmp
    yield session
    session.stop()
