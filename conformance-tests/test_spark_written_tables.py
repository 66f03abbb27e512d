"""Tables written the way Spark users write them, read through Lakeshare by the stock Python
connector (delta-sharing 1.4.2), compared with Spark's own `spark.read.format("delta")` read
(issue H, part 3).

The tables and the oracle come from conformance-tests/gen_spark_tables.py (pyspark 4.2.0 +
delta-spark 4.4.0), which scripts/spark-tables.sh runs only when the generator, its requirements or
its pom change, into a folder keyed by their sha256; scripts/test.sh exports it as
LAKESHARE_SPARK_TABLES. This module needs no JVM. Without that variable, or with an incomplete or
stale folder, every test here FAILS (errors) with the reason: nothing is skipped.

One server for the module shares every generated table (`historyShared: true`, `cdfEnabled: true`
for spark-cdf) from a copy whose commit-file mtimes are restored from the generator's manifest.

Checks per table (EXPECT below), both formats (`use_delta_format=False` / `True`):
* latest, every earlier version the oracle has (`version=`) and one `timestamp=` read (the exact
  commit time of that version), each equal to Spark's read of the same version;
* refusals where the parquet format cannot express the table (deletion vectors, column mapping,
  timestamp_ntz, type widening, variant): 400 UNSUPPORTED_OPERATION "Unsupported Delta Table
  Properties" naming the reader feature, at every version;
* `load_table_changes_as_pandas` for spark-cdf over the oracle's ranges (rows incl. `_change_type`,
  `_commit_version`, `_commit_timestamp`; the delta path to the second, PROTOCOL-NOTES §14);
* `get_table_version` = the latest version;
* raw HTTP for tables whose reader features the Python client does not list: served in delta format
  when the request lists them (the reader features Spark's connector sends).

Comparison: frames.assert_same_table on canonical rows (timestamps as UTC instants, decimals
normalised, floats to 7 digits). A VARIANT value is compared as the struct
{metadata: binary, value: binary} the client's kernel returns, byte for byte with the bytes Spark
read (the oracle also keeps Spark's JSON text of each value for the failure message).
"""
import datetime as dt
import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Optional, Tuple

import delta_sharing
import pytest
from requests.exceptions import HTTPError

import cdf_support as S
import frames
from api import Api, assert_error, file_lines, ndjson
from conftest import iso_ms
from governance import GovServer

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent
SHARE, SCHEMA = "spark", "w"
# the three files of the cache key, as scripts/spark-tables.sh names them (relative to the repo root)
KEY_FILES = ["conformance-tests/gen_spark_tables.py", "conformance-tests/spark-tables-requirements.txt",
             "conformance-tests/spark-tables-pom.xml"]
PROPS = "Unsupported Delta Table Properties"
# what Spark's connector (delta-sharing-spark 4.4) lists, PEERS.md "December 2026 refresh"
SPARK_READER_FEATURES = ("deletionVectors,columnMapping,timestampNtz,typeWidening-preview,typeWidening,"
                         "variantType-preview,variantType")


@dataclass(frozen=True)
class Refused:
    """400 UNSUPPORTED_OPERATION with PROPS and the (lower-case) reader feature in the message."""
    feature: str


OK = "ok"


@dataclass(frozen=True)
class T:
    parquet: object = OK
    delta: object = OK
    versions: Tuple[int, ...] = ()          # earlier versions read (the oracle has each)
    ts_version: Optional[int] = None         # read once with timestamp= its commit time
    cdf: Tuple[Tuple[int, Optional[int]], ...] = ()
    unlisted: Tuple[str, ...] = ()           # reader features the Python client does not list


EXPECT = {
    "spark-dv": T(parquet=Refused("deletionvectors"), versions=(1, 2, 3), ts_version=2),
    "spark-cm-name": T(parquet=Refused("columnmapping"), delta=OK, versions=(1, 3), ts_version=3),
    "spark-cm-id": T(parquet=Refused("columnmapping"), versions=(1, 3), ts_version=1),
    "spark-timestamp-ntz": T(parquet=Refused("timestampntz"), versions=(1,), ts_version=1),
    # The stock client does not list typeWidening / variantType in `readerfeatures`, but its kernel
    # (delta-kernel-rust-sharing-wrapper 0.3.3) reads both; a server that serves them (as the
    # reference server does: it checks only DV and column-mapping properties) lets it read them.
    "spark-type-widening": T(parquet=Refused("typewidening"), versions=(1, 5), ts_version=1,
                             unlisted=("typewidening",)),
    "spark-variant": T(parquet=Refused("varianttype"), versions=(1,), ts_version=1, unlisted=("varianttype",)),
    "spark-clustered": T(versions=(2, 3), ts_version=3),
    "spark-row-tracking": T(versions=(1, 2), ts_version=2),
    "spark-v2-checkpoint": T(versions=(2, 4), ts_version=4),
    "spark-cdf": T(versions=(1, 3), ts_version=3, cdf=((0, None), (2, 3), (4, 6))),
    "spark-optimize-vacuum": T(versions=(6,), ts_version=6),
    "spark-partition-escaping": T(versions=(0, 1), ts_version=0),
}
FORMATS = ("parquet", "delta")
USE_DELTA = {"parquet": False, "delta": True}


def shared_name(table):
    return table.replace("-", "_")


# ---------------------------------------------------------------------------------- the generated folder


def cache_key():
    """sha256 of the `sha256sum` lines of KEY_FILES (what scripts/spark-tables.sh computes)."""
    lines = "".join(f"{hashlib.sha256((REPO_ROOT / f).read_bytes()).hexdigest()}  {f}\n" for f in KEY_FILES)
    return hashlib.sha256(lines.encode()).hexdigest()


def _fail(msg):
    pytest.fail(msg + " Generate it with `LAKESHARE_SPARK_TABLES=$(./scripts/spark-tables.sh)` (Java 17, "
                "Maven, pip); the Spark-written tables tests never skip.", pytrace=False)


def _decode(v):
    if isinstance(v, dict):
        (tag, x), = v.items()
        if tag == "ts":
            return dt.datetime.strptime(x, "%Y-%m-%dT%H:%M:%S.%f")
        if tag == "date":
            return dt.date.fromisoformat(x)
        if tag == "dec":
            return Decimal(x)
        if tag == "bin":
            return bytes.fromhex(x)
        if tag == "f":
            return float(x)
        if tag == "variant":  # as the client's kernel returns it: struct<metadata: binary, value: binary>
            return {"metadata": bytes.fromhex(x["metadata"]), "value": bytes.fromhex(x["value"])}
        if tag == "list":
            return [_decode(y) for y in x]
        if tag == "struct":
            return {k: _decode(y) for k, y in x.items()}
        if tag == "map":
            return [(_decode(k), _decode(y)) for k, y in x]
        raise ValueError(f"unknown oracle tag {tag!r}")
    return v


SPARK_CLASS = {"integer": "int", "long": "int", "short": "int", "byte": "int", "float": "float",
               "double": "float", "boolean": "bool", "string": "str", "binary": "bytes", "date": "date",
               "timestamp": "datetime", "timestamp_ntz": "datetime", "decimal": "decimal", "array": "list",
               "map": "map", "struct": "struct", "variant": "struct"}


class Generated:
    def __init__(self, root, manifest, copy_root):
        self.root = root
        self.manifest = manifest
        self.copy_root = copy_root

    def info(self, table):
        return self.manifest["tables"][table]

    def path(self, table):
        return str(self.copy_root / table)

    def latest(self, table):
        return self.info(table)["latest_version"]

    def commit_ms(self, table, version):
        return self.info(table)["commit_times_ms"][str(version)]

    def _load(self, table, key):
        reads = self.info(table)["reads"]
        assert key in reads, f"the generator made no oracle read {key} of {table} (has {sorted(reads)})"
        with open(self.root / reads[key]["file"]) as fh:
            data = json.load(fh)
        cols = [f["name"] for f in data["schema"]]
        types = {f["name"]: SPARK_CLASS.get(f["typeName"], f["typeName"]) for f in data["schema"]}
        rows = [dict(zip(cols, (_decode(x) for x in r))) for r in data["rows"]]
        return cols, types, rows

    def snapshot(self, table, version):
        cols, types, rows = self._load(table, f"v{version}")
        return frames.Snapshot(cols, types, frames.canonical_rows_from_pylist(cols, rows), f"spark v{version}")

    def cdf(self, table, start, end, fmt):
        """Spark's readChangeFeed rows; `_commit_timestamp` as epoch ms (whole seconds for delta)."""
        cols, types, rows = self._load(table, f"cdf-{start}-{'' if end is None else end}")
        for r in rows:
            ms = int(r["_commit_timestamp"].replace(tzinfo=dt.timezone.utc).timestamp() * 1000)
            want = self.commit_ms(table, r["_commit_version"])
            assert ms == want, (f"generator inconsistency: Spark's _commit_timestamp {ms} for v{r['_commit_version']} "
                                f"!= stamped commit time {want}")
            r["_commit_timestamp"] = ms // 1000 * 1000 if fmt == "delta" else ms
        types["_commit_timestamp"] = "int"
        return frames.Snapshot(cols, types, frames.canonical_rows_from_pylist(cols, rows), "spark cdf")


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    env = os.environ.get("LAKESHARE_SPARK_TABLES")
    if not env:
        _fail("LAKESHARE_SPARK_TABLES is not set (the folder of the Spark-written tables and their oracle).")
    root = Path(env)
    if not (root / ".complete").is_file() or not (root / "manifest.json").is_file():
        _fail(f"{root} is not a complete generation (no .complete marker or manifest.json).")
    want = cache_key()
    got = (root / ".key").read_text().strip() if (root / ".key").is_file() else None
    if got != want:
        _fail(f"{root} was generated from other generator files (key {got}, the current files give {want}).")
    with open(root / "manifest.json") as fh:
        manifest = json.load(fh)
    missing = sorted(set(EXPECT) - set(manifest["tables"]))
    extra = sorted(set(manifest["tables"]) - set(EXPECT))
    assert not missing and not extra, f"EXPECT and the generated tables differ: missing {missing}, unexpected {extra}"
    # a copy, with the commit times the oracle was read at (cache restores may not keep mtimes)
    copy_root = tmp_path_factory.mktemp("spark-written") / "tables"
    shutil.copytree(root / "tables", copy_root)
    for table, info in manifest["tables"].items():
        for v, ms in info["commit_times_ms"].items():
            p = copy_root / table / "_delta_log" / ("%020d.json" % int(v))
            os.utime(p, ns=(ms * 1_000_000, ms * 1_000_000))
    return Generated(root, manifest, copy_root)


class Share:
    def __init__(self, gov, profile, token):
        self.gov = gov
        self.profile = profile
        self.api = Api(gov.endpoint, token)

    def url(self, table):
        return f"{self.profile}#{SHARE}.{SCHEMA}.{shared_name(table)}"

    def access_log(self, n=2):
        """The server's last access-log lines for refused requests (status 4xx/5xx)."""
        lines = [ln for ln in self.gov.server.stderr_text().splitlines()
                 if "lakeshare::access" in ln and (" status=4" in ln or " status=5" in ln)]
        return "\n".join(lines[-n:])


@pytest.fixture(scope="module")
def share(lakeshare_bin, generated, tmp_path_factory):
    entries = []
    for table in EXPECT:
        e = {"name": shared_name(table), "location": generated.path(table), "historyShared": True}
        if EXPECT[table].cdf:
            e["cdfEnabled"] = True
        entries.append(e)
    d = tmp_path_factory.mktemp("spark-written-server")
    gov = GovServer(lakeshare_bin, d, [{"name": SHARE, "schemas": [{"name": SCHEMA, "tables": entries}]}])
    try:
        profile, prof = gov.create("reader", [SHARE])
        yield Share(gov, profile, prof["bearerToken"])
    finally:
        gov.stop()


# ---------------------------------------------------------------------------------- snapshot reads


def _assert_refused(share, exc, exp, what):
    resp = exc.response
    assert resp is not None, f"{what}: the client raised HTTPError without a response: {exc}"
    _, msg = assert_error(resp, 400, "UNSUPPORTED_OPERATION", PROPS, what)
    assert exp.feature in msg.lower(), f"{what}: the refusal should name {exp.feature!r}: {msg!r}"


def _read_and_compare(share, generated, table, fmt, oracle_version, **kw):
    exp = getattr(EXPECT[table], fmt)
    what = f"{table} read as {fmt} at version {oracle_version}" + (f" ({kw})" if kw else "")
    if isinstance(exp, Refused):
        with pytest.raises(HTTPError) as excinfo:
            delta_sharing.load_as_pandas(share.url(table), use_delta_format=USE_DELTA[fmt], **kw)
        _assert_refused(share, excinfo.value, exp, what)
        return
    try:
        df = delta_sharing.load_as_pandas(share.url(table), use_delta_format=USE_DELTA[fmt], **kw)
    except HTTPError as exc:
        resp = exc.response
        body = resp.text[:800] if resp is not None else ""
        raise AssertionError(f"{what}: the server refused: HTTP {getattr(resp, 'status_code', '?')} {body}\n"
                             f"request: {resp.request.method} {resp.request.url}\n"
                             f"  capabilities: {resp.request.headers.get('delta-sharing-capabilities')}\n"
                             f"  body: {resp.request.body!r}\naccess log:\n{share.access_log()}") from None
    frames.assert_same_table(frames.Snapshot.from_pandas(df), generated.snapshot(table, oracle_version), what)


LATEST_CASES = [(t, f) for t in EXPECT for f in FORMATS]


@pytest.mark.parametrize("table,fmt", LATEST_CASES, ids=[f"{t}-{f}" for t, f in LATEST_CASES])
def test_latest(share, generated, table, fmt):
    _read_and_compare(share, generated, table, fmt, generated.latest(table))


VERSION_CASES = [(t, f, v) for t, e in EXPECT.items() for f in FORMATS for v in e.versions]


@pytest.mark.parametrize("table,fmt,version", VERSION_CASES, ids=[f"{t}-{f}-v{v}" for t, f, v in VERSION_CASES])
def test_at_version(share, generated, table, fmt, version):
    _read_and_compare(share, generated, table, fmt, version, version=version)


TS_CASES = [(t, f, e.ts_version) for t, e in EXPECT.items() for f in FORMATS if e.ts_version is not None]


@pytest.mark.parametrize("table,fmt,version", TS_CASES, ids=[f"{t}-{f}-ts{v}" for t, f, v in TS_CASES])
def test_at_timestamp(share, generated, table, fmt, version):
    """timestamp = the exact commit time of `version` -> that version (last commit <= ts)."""
    _read_and_compare(share, generated, table, fmt, version, timestamp=iso_ms(generated.commit_ms(table, version)))


@pytest.mark.parametrize("table", list(EXPECT))
def test_table_version(share, generated, table):
    assert delta_sharing.get_table_version(share.url(table)) == generated.latest(table)


# ---------------------------------------------------------------------------------- change data feed


CDF_CASES = [(t, f, s, e) for t, x in EXPECT.items() for f in FORMATS for s, e in x.cdf]


@pytest.mark.parametrize("table,fmt,start,end", CDF_CASES,
                         ids=[f"{t}-{f}-v{s}-{'latest' if e is None else e}" for t, f, s, e in CDF_CASES])
def test_changes(share, generated, table, fmt, start, end):
    kw = {"starting_version": start}
    if end is not None:
        kw["ending_version"] = end
    df = delta_sharing.load_table_changes_as_pandas(share.url(table), use_delta_format=USE_DELTA[fmt], **kw)
    got, want = S.align(S.client_snapshot(df), generated.cdf(table, start, end, fmt))
    frames.assert_same_table(got, want, f"{table} changes [{start}, {end}] as {fmt}")


# ---------------------------------------------------------------------------------- wire


def _table_features(generated, table):
    return {f.lower() for f in generated.info(table)["tableFeatures"]}


WIRE_CASES = [t for t, e in EXPECT.items() if e.unlisted]


@pytest.mark.parametrize("table", WIRE_CASES)
def test_listed_reader_features_are_served(share, generated, table):
    """With the reader features Spark's connector lists, the table is served in delta format: the
    table's own protocol and one file line per active file (Spark's DESCRIBE DETAIL numFiles)."""
    caps = f"responseformat=delta;readerfeatures={SPARK_READER_FEATURES}"
    r = share.api.query(SHARE, SCHEMA, shared_name(table), {}, caps=caps)
    assert r.status_code == 200, f"{table} with readerfeatures={SPARK_READER_FEATURES}: {r.status_code} {r.text[:500]}"
    objs = ndjson(r)
    proto = objs[0]["protocol"]["deltaProtocol"]
    info = generated.info(table)
    assert (proto["minReaderVersion"], proto["minWriterVersion"]) == (info["minReaderVersion"], info["minWriterVersion"])
    assert {f.lower() for f in proto.get("readerFeatures", [])} <= _table_features(generated, table)
    assert set(EXPECT[table].unlisted) <= {f.lower() for f in proto.get("readerFeatures", [])}
    assert len(file_lines(objs)) == info["numFiles"], f"{table}: file lines vs Spark's numFiles"
