"""Raw-HTTP checks of response shapes, headers and format negotiation (PROTOCOL-NOTES §1-4, §13)."""
import hashlib
import json
import re

import pytest

import deltalog
from api import AUTO_CAPS, DELTA_CAPS, assert_error, file_lines, ndjson

PLAIN = "gen-partitioned"
DV = "dv-partitioned-checkpoint"
HEX32 = re.compile(r"^[0-9a-f]{32}$")
HEX64 = re.compile(r"^[0-9a-f]{64}$")


def _caps(resp):
    return resp.headers.get("delta-sharing-capabilities", "")


def _fmt_of(resp):
    caps = _caps(resp).lower()
    m = re.search(r"responseformat=([a-z,]+)", caps)
    return m.group(1) if m else None


def _line_format(objs):
    p = objs[0]["protocol"]
    return "delta" if "deltaProtocol" in p else "parquet"


# ------------------------------------------------------------------------------ JSON endpoints


@pytest.mark.parametrize("path", ["/shares", "/shares/conformance", "/shares/conformance/schemas",
                                  "/shares/conformance/schemas/golden/tables", "/shares/conformance/all-tables"])
def test_json_bodies_are_one_line(api, path):
    r = api.get(path)
    assert r.status_code == 200, f"{path}: {r.status_code} {r.text[:300]}"
    ct = r.headers.get("Content-Type", "")
    assert ct.startswith("application/json"), f"{path}: Content-Type {ct!r}"
    body = r.text.rstrip("\n")
    assert "\n" not in body, f"{path}: JSON body must be a single line (Python client reads one line)"
    assert isinstance(json.loads(body), dict)


def test_error_bodies_are_json(api):
    r = api.get("/shares/no_such_share/schemas")
    assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST")
    assert r.headers.get("Content-Type", "").startswith("application/json")


# ------------------------------------------------------------------------------ NDJSON endpoints


def test_metadata_is_exactly_two_lines(env, api, tables):
    share, schema, name = env.coords(PLAIN)
    r = api.metadata(share, schema, name)
    assert r.status_code == 200, r.text[:500]
    assert r.headers.get("Content-Type", "").startswith("application/x-ndjson")
    objs = ndjson(r)
    assert [list(o) for o in objs] == [["protocol"], ["metaData"]], f"/metadata lines: {[list(o) for o in objs]}"
    assert r.headers.get("Delta-Table-Version") == str(tables[PLAIN]["latest_version"])
    assert _fmt_of(r) == "parquet"


def test_query_line_set_parquet(env, api, tables):
    share, schema, name = env.coords(PLAIN)
    log = deltalog.replay(tables[PLAIN]["path"])
    r = api.query(share, schema, name, {})
    assert r.status_code == 200, r.text[:500]
    assert r.headers.get("Content-Type", "").startswith("application/x-ndjson")
    assert r.headers.get("Delta-Table-Version") == str(log.version), "Delta-Table-Version on /query"
    assert _fmt_of(r) == "parquet", f"capabilities header: {_caps(r)!r}"
    assert "includeendstreamaction=true" not in _caps(r).lower()
    objs = ndjson(r)
    kinds = [list(o)[0] for o in objs]
    assert kinds[:2] == ["protocol", "metaData"], kinds
    assert set(kinds[2:]) <= {"file"}, f"only file lines after the first two (no endStreamAction): {kinds}"
    assert kinds.count("file") == len(log.adds)
    assert objs[0]["protocol"] == {"minReaderVersion": 1}
    md = objs[1]["metaData"]
    for key in ("id", "format", "schemaString", "partitionColumns"):
        assert key in md, f"parquet metaData lacks {key}: {md}"
    assert md["id"] == log.metadata["id"]
    assert md["format"].get("provider") == "parquet"
    assert isinstance(md["schemaString"], str)
    assert md["partitionColumns"] == ["region"]
    by_path_size = {a["size"] for a in log.adds}
    for f in file_lines(objs):
        for key in ("url", "id", "partitionValues", "size"):
            assert key in f, f"file line lacks {key}: {f}"
        assert f["size"] in by_path_size
        assert set(f["partitionValues"]) == {"region"}
        if "stats" in f:
            assert isinstance(f["stats"], str), "stats must be a JSON string, not an object"
            assert "numRecords" in json.loads(f["stats"])
        assert "version" not in f and "timestamp" not in f, "latest-snapshot files carry no version/timestamp"


def test_query_line_set_delta(env, api, tables):
    share, schema, name = env.coords(DV)
    log = deltalog.replay(tables[DV]["path"])
    r = api.query(share, schema, name, {}, caps=DELTA_CAPS)
    assert r.status_code == 200, r.text[:500]
    assert _fmt_of(r) == "delta"
    assert r.headers.get("Delta-Table-Version") == str(log.version)
    objs = ndjson(r)
    kinds = [list(o)[0] for o in objs]
    assert kinds[:2] == ["protocol", "metaData"] and set(kinds[2:]) <= {"file"}, kinds
    p = objs[0]["protocol"]["deltaProtocol"]
    assert p["minReaderVersion"] == 3 and p["readerFeatures"] == log.protocol["readerFeatures"]
    assert p["writerFeatures"] == log.protocol["writerFeatures"]
    dm = objs[1]["metaData"]["deltaMetadata"]
    assert dm["id"] == log.metadata["id"]
    assert json.loads(dm["schemaString"]) == log.schema
    assert dm["configuration"] == log.metadata["configuration"]
    files = file_lines(objs)
    assert len(files) == len(log.adds)
    for f in files:
        add = f["deltaSingleAction"]["add"]
        for key in ("path", "partitionValues", "size", "modificationTime", "dataChange"):
            assert key in add, f"delta add lacks {key}"
        assert add["path"].startswith("http"), "add.path must be the signed URL"
        assert "expirationTimestamp" in f


def test_version_endpoint_header(env, api, tables):
    share, schema, name = env.coords(PLAIN)
    r = api.version(share, schema, name)
    assert r.status_code == 200, r.text[:300]
    assert r.headers.get("Delta-Table-Version") == str(tables[PLAIN]["latest_version"])


def test_head_table_version_header(env, api, tables):
    share, schema, name = env.coords(PLAIN)
    r = api.head(api.table_path(share, schema, name))
    assert r.status_code == 200, f"HEAD table: {r.status_code}"
    assert r.headers.get("Delta-Table-Version") == str(tables[PLAIN]["latest_version"])


def test_time_travel_header_and_file_versions(env, api, tables):
    share, schema, name = env.coords(PLAIN)
    log = deltalog.replay(tables[PLAIN]["path"], version=2)
    r = api.query(share, schema, name, {"version": 2})
    assert r.status_code == 200, r.text[:300]
    assert r.headers.get("Delta-Table-Version") == "2"
    files = file_lines(ndjson(r))
    assert len(files) == len(log.adds)
    for f in files:
        assert isinstance(f.get("version"), int) and f["version"] <= 2, f"time-travel files carry version: {f}"
    r = api.metadata(share, schema, name, params={"version": 2})
    assert r.status_code == 200 and r.headers.get("Delta-Table-Version") == "2", r.text[:300]
    assert len(ndjson(r)) == 2


def test_metadata_at_version_shows_old_schema(env, api):
    share, schema, name = env.coords("schema-evolution")
    r = api.metadata(share, schema, name, params={"version": 0})
    assert r.status_code == 200, r.text[:300]
    md = ndjson(r)[1]["metaData"]
    assert [f["name"] for f in json.loads(md["schemaString"])["fields"]] == ["id"], "v0 schema has one column"
    r = api.metadata(share, schema, name)
    md = ndjson(r)[1]["metaData"]
    assert [f["name"] for f in json.loads(md["schemaString"])["fields"]] == ["id", "part"]


# ------------------------------------------------------------------------------ negotiation matrix

MATRIX = [
    # (table, request capabilities, expected format or (status, code, message))
    (PLAIN, None, "parquet"),
    (PLAIN, "responseformat=parquet", "parquet"),
    (PLAIN, "responseformat=delta", "delta"),
    (PLAIN, "responseformat=delta,parquet", "parquet"),
    (PLAIN, "responseformat=parquet,delta", "parquet"),
    (PLAIN, AUTO_CAPS, "parquet"),
    (PLAIN, "RESPONSEFORMAT=DELTA", "delta"),
    (DV, None, (400, "UNSUPPORTED_OPERATION", "Unsupported Delta Table Properties")),
    (DV, "responseformat=parquet", (400, "UNSUPPORTED_OPERATION", "Unsupported Delta Table Properties")),
    (DV, DELTA_CAPS, "delta"),
    (DV, AUTO_CAPS, "delta"),
    (DV, "responseformat=delta,parquet;readerfeatures=deletionvectors", "delta"),
    (DV, "responseformat=delta", (400, "UNSUPPORTED_OPERATION", None)),
    (DV, "responseformat=delta,parquet", (400, "UNSUPPORTED_OPERATION", None)),
    # Only deletion vectors and column mapping must be announced (as the reference server checks):
    # other reader features are named in the protocol line and the client's reader refuses what it
    # cannot read (the stock Python client reads type-widened and variant tables without listing them)
    ("timestamp-ntz", "responseformat=delta", "delta"),
    ("timestamp-ntz", "responseformat=delta;readerfeatures=timestampntz", "delta"),
    ("timestamp-ntz", None, (400, "UNSUPPORTED_OPERATION", None)),
    ("column-mapping-name", "responseformat=delta;readerfeatures=columnmapping", "delta"),
    ("column-mapping-name", "responseformat=delta;readerfeatures=deletionvectors", (400, "UNSUPPORTED_OPERATION", None)),
    ("column-mapping-name", None, (400, "UNSUPPORTED_OPERATION", "Unsupported Delta Table Properties")),
    ("dv-column-mapping", "responseformat=delta;readerfeatures=deletionvectors", (400, "UNSUPPORTED_OPERATION", None)),
    ("dv-column-mapping", "responseformat=delta;readerfeatures=DeletionVectors,ColumnMapping", "delta"),
    # v2Checkpoint is transparent: no reader feature needs to be listed for delta format
    ("checkpoint-v2-databricks", "responseformat=delta", "delta"),
    ("checkpoint-v2-databricks", None, "parquet"),
]


@pytest.mark.parametrize("endpoint", ["metadata", "query"])
@pytest.mark.parametrize("table,caps,want", MATRIX, ids=[f"{t}|{c}" for t, c, _ in MATRIX])
def test_format_negotiation(env, api, endpoint, table, caps, want):
    share, schema, name = env.coords(table)
    if endpoint == "metadata":
        r = api.metadata(share, schema, name, caps=caps)
    else:
        r = api.query(share, schema, name, {}, caps=caps)
    what = f"{endpoint} {table} with capabilities {caps!r}"
    if isinstance(want, tuple):
        assert_error(r, *want, what=what)
        return
    assert r.status_code == 200, f"{what}: {r.status_code} {r.text[:300]}"
    assert _fmt_of(r) == want, f"{what}: response capabilities header {_caps(r)!r}, want responseformat={want}"
    assert _line_format(ndjson(r)) == want, f"{what}: line shapes are not {want} format"
    if want == "delta" and table == DV:
        p = ndjson(r)[0]["protocol"]["deltaProtocol"]
        assert "deletionVectors" in p.get("readerFeatures", [])


# ------------------------------------------------------------------------------ file ids


def _query_ids(api, coords, caps=None, fileidhash=None):
    headers = {"fileidhash": fileidhash} if fileidhash is not None else None
    r = api.query(*coords, {}, caps=caps, headers=headers)
    return r


@pytest.mark.parametrize("value,scheme,echo", [("parquet", "md5", "parquet"), ("delta", "sha256", "delta"),
                                               ("DELTA", "sha256", "delta"), ("Parquet", "md5", "parquet")])
@pytest.mark.parametrize("caps", [None, DELTA_CAPS], ids=["parquet-response", "delta-response"])
def test_fileidhash_header(env, api, tables, value, scheme, echo, caps):
    coords = env.coords(PLAIN)
    log = deltalog.replay(tables[PLAIN]["path"])
    r = _query_ids(api, coords, caps, value)
    assert r.status_code == 200, r.text[:300]
    assert r.headers.get("fileidhash") == echo, f"fileidhash must be echoed lower-cased: {r.headers.get('fileidhash')!r}"
    want = {getattr(hashlib, scheme)(a["path"].encode()).hexdigest() for a in log.adds}
    got = {f["id"] for f in file_lines(ndjson(r))}
    assert got == want, f"file ids must be {scheme} of the log path ({value!r}); got {sorted(got)[:2]}"


def test_default_file_ids_follow_format(env, api, tables):
    coords = env.coords(PLAIN)
    log = deltalog.replay(tables[PLAIN]["path"])
    md5s = {hashlib.md5(a["path"].encode()).hexdigest() for a in log.adds}
    sha = {hashlib.sha256(a["path"].encode()).hexdigest() for a in log.adds}
    pq = {f["id"] for f in file_lines(ndjson(_query_ids(api, coords)))}
    dl = {f["id"] for f in file_lines(ndjson(_query_ids(api, coords, DELTA_CAPS)))}
    assert all(HEX32.match(i) for i in pq) and pq == md5s, "parquet ids = 32-hex MD5 of the log path"
    assert all(HEX64.match(i) for i in dl) and dl == sha, "delta ids = 64-hex SHA-256 of the log path"


@pytest.mark.parametrize("bad", ["sha1", "", "md5"])
def test_fileidhash_invalid(env, api, bad):
    r = _query_ids(api, env.coords(PLAIN), None, bad)
    assert_error(r, 400, None, "Unsupported fileidhash", what=f"fileidhash {bad!r}")


@pytest.mark.parametrize("caps", [None, DELTA_CAPS], ids=["parquet", "delta"])
def test_file_ids_stable(env, api, caps):
    table = PLAIN if caps is None else DV
    coords = env.coords(table)
    a = [f["id"] for f in file_lines(ndjson(api.query(*coords, {}, caps=caps)))]
    b = [f["id"] for f in file_lines(ndjson(api.query(*coords, {}, caps=caps)))]
    assert sorted(a) == sorted(b) and len(set(a)) == len(a), "file ids must be unique and stable across queries"


# ------------------------------------------------------------------------------ request validation


def test_malformed_json_body(env, api):
    share, schema, name = env.coords(PLAIN)
    r = api.post(api.table_path(share, schema, name, "/query"), data="{not json")
    assert_error(r, 400, "MALFORMED_REQUEST", what="malformed JSON body")


def test_wrong_field_type(env, api):
    share, schema, name = env.coords(PLAIN)
    r = api.post(api.table_path(share, schema, name, "/query"), data='{"version":"abc"}')
    assert r.status_code == 400, f"non-numeric version must be 400, got {r.status_code}"


def test_unknown_body_fields_ignored(env, api):
    share, schema, name = env.coords(PLAIN)
    r = api.query(share, schema, name, {"requested_columns": ["id"], "queryDeltaLog": False, "foo": 1})
    assert r.status_code == 200, f"unknown fields must be ignored: {r.text[:300]}"


def test_version_and_timestamp_together(env, api):
    share, schema, name = env.coords(PLAIN)
    r = api.query(share, schema, name, {"version": 1, "timestamp": "2025-01-01T00:00:00Z"})
    assert_error(r, 400, None, "Please only provide one of", what="version + timestamp on /query")
    r = api.metadata(share, schema, name, params={"version": 1, "timestamp": "2025-01-01T00:00:00Z"})
    assert_error(r, 400, None, "Please only provide one of", what="version + timestamp on /metadata")


def test_negative_version(env, api):
    share, schema, name = env.coords(PLAIN)
    assert_error(api.query(share, schema, name, {"version": -1}), 400, None, "cannot be negative")


def test_version_above_latest(env, api, tables):
    share, schema, name = env.coords(PLAIN)
    r = api.query(share, schema, name, {"version": tables[PLAIN]["latest_version"] + 5})
    assert r.status_code == 400, f"version above latest must be 400, got {r.status_code}: {r.text[:300]}"
    assert_error(r, 400)


# ------------------------------------------------------------------------------ limitHint

LIMIT_TABLES = [("gen-checkpointed", None), ("checkpoint-v1-single", None), ("gen-partitioned", None),
                ("dv-partitioned-checkpoint", DELTA_CAPS)]


def _live_rows(add):
    stats = json.loads(add["stats"])
    dv = add.get("deletionVector") or {}
    return stats["numRecords"] - dv.get("cardinality", 0)


@pytest.mark.parametrize("k", [0, 1, 7, 25, 10_000])
@pytest.mark.parametrize("table,caps", LIMIT_TABLES, ids=[t for t, _ in LIMIT_TABLES])
def test_limit_hint_stops_adding_files(env, api, tables, table, caps, k):
    """Server stops adding files once sum(numRecords - DV cardinality) >= limitHint (contract)."""
    log = deltalog.replay(tables[table]["path"])
    rows_of = {a["path"]: _live_rows(a) for a in log.adds}
    total = sum(rows_of.values())
    r = api.query(*env.coords(table), {"limitHint": k}, caps=caps)
    assert r.status_code == 200, r.text[:300]
    files = file_lines(ndjson(r))
    paths = []
    for f in files:
        if "deltaSingleAction" in f:
            add = f["deltaSingleAction"]["add"]
            match = [p for p in rows_of if add.get("size") is not None and p.split("/")[-1] in add["path"]]
        else:
            match = [p for p in rows_of if hashlib.md5(p.encode()).hexdigest() == f["id"]]
        assert len(match) == 1, f"cannot map returned file to the log: {f}"
        paths.append(match[0])
    got = [rows_of[p] for p in paths]
    if k == 0:
        assert not files, "limitHint 0 -> no files"
        return
    assert sum(got) >= min(k, total), f"limitHint {k}: returned files hold only {sum(got)} rows"
    # some order of the returned files reaches k only with its last file <=> sum - max < k
    assert sum(got) - max(got) < k, (
        f"limitHint {k}: server kept adding files after reaching the limit ({len(got)} files, rows {got})")


# ------------------------------------------------------------------------------ file line contents

# (table, capabilities, whether the table has a checkpoint: then stats may come from the checkpoint,
#  and only numRecords is compared)
CONTENT_TABLES = [
    ("plain-unpartitioned", None, False),
    ("partition-values-all-types", None, False),
    ("escaped-chars-partition", None, False),
    ("stats-optional", None, False),
    ("gen-partitioned", None, False),
    ("cdf-merge-delete-partitioned", None, False),
    ("checkpoint-v1-single", None, True),
    ("gen-checkpointed", None, True),
    ("timestamp-ntz", DELTA_CAPS, False),
    ("column-mapping-name", DELTA_CAPS, False),
    ("dv-partitioned-checkpoint", DELTA_CAPS, True),
    ("dv-column-mapping", DELTA_CAPS, True),
    ("checkpoint-v1-multipart", DELTA_CAPS, True),
    ("dv-inline-cdf", DELTA_CAPS, False),
]


@pytest.mark.parametrize("table,caps,checkpointed", CONTENT_TABLES, ids=[t for t, _, _ in CONTENT_TABLES])
def test_file_lines_match_log(env, api, tables, table, caps, checkpointed):
    """size, partitionValues (strings, JSON null, literal 'null'), stats (never invented) and DV
    descriptors of every file line equal the log's add action (matched by id = hash of add.path)."""
    log = deltalog.replay(tables[table]["path"])
    hasher = hashlib.sha256 if caps else hashlib.md5
    by_id = {hasher(a["path"].encode()).hexdigest(): a for a in log.adds}
    r = api.query(*env.coords(table), {}, caps=caps)
    assert r.status_code == 200, r.text[:300]
    files = file_lines(ndjson(r))
    assert sorted(f["id"] for f in files) == sorted(by_id), f"{table}: file ids must be hashes of the log paths"
    for f in files:
        add = by_id[f["id"]]
        got = f["deltaSingleAction"]["add"] if caps else f
        what = f"{table} file {add['path']}"
        assert got["size"] == add["size"], f"{what}: size"
        assert got["partitionValues"] == add["partitionValues"], (
            f"{what}: partitionValues {got['partitionValues']} != log {add['partitionValues']}")
        if not add.get("stats"):
            assert not got.get("stats"), f"{what}: the log has no stats; the server must not invent them"
        elif got.get("stats") is not None:
            assert isinstance(got["stats"], str), f"{what}: stats must be a JSON string"
            served, logged = json.loads(got["stats"]), json.loads(add["stats"])
            if checkpointed:
                assert served.get("numRecords") == logged.get("numRecords"), f"{what}: stats.numRecords"
            else:
                assert served == logged, f"{what}: stats must be passed through unchanged"
        if caps:
            assert got.get("dataChange") is True and isinstance(got.get("modificationTime"), int), what
            ldv, gdv = add.get("deletionVector"), got.get("deletionVector")
            assert bool(ldv) == bool(gdv), f"{what}: deletion vector presence"
            if ldv:
                for key in ("sizeInBytes", "cardinality"):
                    assert gdv[key] == ldv[key], f"{what}: deletionVector.{key}"
                if ldv["storageType"] == "i":
                    assert gdv == ldv, f"{what}: inline DVs pass through untouched"
