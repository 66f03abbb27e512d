"""Helpers of the Spark conformance suite (fixtures are in conftest.py): the connector jar folder and
its checks, readers, comparison with Spark's own Delta reader, and the module servers."""
import contextlib
import glob
import hashlib
import os
import sys
import zipfile
from pathlib import Path

import pytest

SPARK_DIR = Path(__file__).resolve().parent
CT_DIR = SPARK_DIR.parent
REPO_ROOT = CT_DIR.parent
if str(CT_DIR) not in sys.path:
    sys.path.insert(0, str(CT_DIR))

import expectations as E  # noqa: E402
import frames  # noqa: E402
from governance import GovServer  # noqa: E402

POM = SPARK_DIR / "pom.xml"
CONNECTOR_JAR = "io.delta.delta-sharing-spark_2.13-4.4.0.jar"
SHARE = "spark"
FILTER_SHARE = "sales"

# golden / generated tables the Spark modules read (folder names of the parent `tables` fixture)
SHARED_TABLES = [
    "plain-unpartitioned", "checkpoint-v1-single", "dv-partitioned-checkpoint", "dv-column-mapping",
    "column-mapping-name", "cdf-partitioned", "cdf-with-dvs", "gen-partitioned", "gen-checkpointed",
    "gen-cdf-partitioned",
]


# ---------------------------------------------------------------------------------- the jars


def jar_folder():
    env = os.environ.get("LAKESHARE_SPARK_JARS")
    if env:
        return Path(env), "LAKESHARE_SPARK_JARS"
    digest = hashlib.sha256(POM.read_bytes()).hexdigest()
    return REPO_ROOT / "target" / "spark-jars" / digest, f"the default location for the sha256 of {POM.name}"


def suite_fail(msg):
    pytest.fail(msg + " The Spark conformance suite never skips.", pytrace=False)


def _classes(jar):
    with zipfile.ZipFile(jar) as z:
        return {n for n in z.namelist()
                if n.endswith(".class") and not n.startswith("META-INF/")
                and not n.endswith("module-info.class") and not n.endswith("package-info.class")}


def check_jars(folder, pyspark_jars):
    """The jar list for spark.jars; fails when the connector is missing, when the parquet-only 1.x
    connector is there, or when a class is both in a resolved jar and in pyspark/jars."""
    jars = sorted(glob.glob(str(folder / "*.jar")))
    where, how = folder, "run scripts/spark-deps.sh (it resolves conformance-tests/spark/pom.xml with Maven)"
    log = folder.parent / (folder.name + ".log")
    if log.exists():  # a failed resolution leaves its Maven log next to the folder
        errors = [ln for ln in log.read_text(errors="replace").splitlines() if ln.startswith("[ERROR]") and ln[7:].strip()]
        if errors:
            how += f"; its last run failed: {errors[0][8:]} (log: {log})"
    if not folder.is_dir() or not jars:
        suite_fail(f"no Spark connector jars in {where}: {how}.")
    if not (folder / ".complete").exists() and not os.environ.get("LAKESHARE_SPARK_JARS"):
        suite_fail(f"{where} is an unfinished resolution (no .complete marker): {how}.")
    names = [os.path.basename(j) for j in jars]
    if CONNECTOR_JAR not in names:
        suite_fail(f"{where} has no {CONNECTOR_JAR} (io.delta:delta-sharing-spark_2.13:4.4.0): {how}. Jars there: {names}")
    old = [n for n in names if "delta-sharing-spark_2.13-1." in n or "delta-sharing-spark_2.12-1." in n]
    if old:
        suite_fail(f"the parquet-only connector {old} is in {where}; it registers the same DataSource as 4.4.0.")
    base = {}
    for j in glob.glob(os.path.join(pyspark_jars, "*.jar")):
        for c in _classes(j):
            base.setdefault(c, os.path.basename(j))
    dups = []
    for j in jars:
        both = _classes(j) & base.keys()
        if both:
            sample = sorted(both)[:3]
            dups.append(f"{os.path.basename(j)}: {len(both)} classes also in pyspark "
                        f"({sorted({base[c] for c in both})[:3]}; e.g. {sample})")
    if dups:
        suite_fail("classes on the classpath twice (extend the exclusions in spark/pom.xml):\n  " + "\n  ".join(dups))
    return jars


@contextlib.contextmanager
def session_conf(spark, confs):
    """Set session confs for the block and restore the previous values (or unset) after it."""
    old = {k: spark.conf.get(k, None) for k in confs}
    for k, v in confs.items():
        spark.conf.set(k, str(v))
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                spark.conf.unset(k)
            else:
                spark.conf.set(k, v)


# ---------------------------------------------------------------------------------- reading and comparing


def sharing_reader(spark, fmt="auto", **options):
    """spark.read.format("deltaSharing") with responseFormat (fmt "parquet"/"delta"; "auto" = no option)."""
    r = spark.read.format("deltaSharing")
    if fmt != "auto":
        r = r.option("responseFormat", fmt)
    for k, v in options.items():
        r = r.option(k, str(v))
    return r


def delta_reader(spark, **options):
    r = spark.read.format("delta")
    for k, v in options.items():
        r = r.option(k, str(v))
    return r


def spark_type_class(dt):
    name = dt.typeName()
    return {"integer": "int", "long": "int", "short": "int", "byte": "int", "float": "float", "double": "float",
            "boolean": "bool", "string": "str", "binary": "bytes", "date": "date", "timestamp": "datetime",
            "timestamp_ntz": "datetime", "decimal": "decimal", "array": "list", "map": "map",
            "struct": "struct"}.get(name, name)


def snapshot(df, source):
    """Collect a DataFrame into a frames.Snapshot (canonical rows, coarse types)."""
    cols = df.columns
    rows = [r.asDict(recursive=True) for r in df.collect()]
    types = {f.name: spark_type_class(f.dataType) for f in df.schema.fields}
    return frames.Snapshot(cols, types, frames.canonical_rows_from_pylist(cols, rows), source)


def schema_of(df):
    return [(f.name, f.dataType.simpleString()) for f in df.schema.fields]


def assert_same_frame(actual, expected, what):
    """Same column names and Spark types (in order) and the same multiset of rows."""
    assert schema_of(actual) == schema_of(expected), (
        f"{what}: schema differs\n  connector: {schema_of(actual)}\n  oracle:    {schema_of(expected)}")
    frames.assert_same_table(snapshot(actual, "connector"), snapshot(expected, "spark delta"), what, check_types=False)


def ts_text(ms):
    """Epoch ms -> 'yyyy-MM-dd HH:mm:ss.SSS' (UTC, the session time zone), for timestampAsOf and CDF options."""
    import datetime as dt

    t = dt.datetime.fromtimestamp(ms / 1000, tz=dt.timezone.utc)
    return t.strftime("%Y-%m-%d %H:%M:%S.") + "%03d" % (ms % 1000)


def error_text(exc):
    """Full text of a (Py4J / captured) exception, Java cause chain included."""
    parts = [str(exc)]
    java = getattr(exc, "java_exception", None)
    while java is not None:
        parts.append(str(java.toString()))
        java = java.getCause()
    return "\n".join(parts)


# ---------------------------------------------------------------------------------- the server


class Share:
    """The module's server and recipients: `url(table, reader)` gives the connector's table path."""

    def __init__(self, gov, tables, paths, profiles):
        self.gov = gov
        self.tables = tables
        self.paths = paths  # shared table name -> local folder
        self.profiles = profiles  # reader -> profile file

    def url(self, name, reader="main", share=SHARE, schema="t"):
        return f"{self.profiles[reader]}#{share}.{schema}.{name}"

    def stderr(self):
        return self.gov.server.stderr_text()


def shared_name(folder):
    return E.share_table_name(folder)


def start_share(lakeshare_bin, tables, gov_sales, d, extra_tables=None):
    """Start a server for one module. `extra_tables` = {shared name: local path} (module-written tables)."""
    entries = [{"name": shared_name(n), "location": tables[n]["path"], "historyShared": True} for n in SHARED_TABLES]
    paths = {shared_name(n): tables[n]["path"] for n in SHARED_TABLES}
    for name, path in (extra_tables or {}).items():
        entries.append({"name": name, "location": path, "historyShared": True})
        paths[name] = path
    filtered = {"name": "by_country", "location": gov_sales["path"], "historyShared": True,
                "partitions": [{"values": [{"name": "country", "op": "EQUAL", "recipientPropertyKey": "country"}]}]}
    shares = [
        {"name": SHARE, "schemas": [{"name": "t", "tables": entries}]},
        {"name": FILTER_SHARE, "schemas": [{"name": "s", "tables": [filtered]}]},
    ]
    gov = GovServer(lakeshare_bin, d, shares)
    profiles = {}
    profiles["main"], _ = gov.create("main", [SHARE, FILTER_SHARE])
    profiles["us"], _ = gov.create("us", [FILTER_SHARE], properties={"country": "US"})
    profiles["expired"], _ = gov.create("expired", [SHARE], expires="2020-01-01T00:00:00Z")
    profiles["revoked"], _ = gov.create("revoked", [SHARE])
    gov.revoke("revoked")
    return Share(gov, tables, paths, profiles)
