"""End-to-end reads with the stock Python connector (delta-sharing 1.4.2), compared with deltalake.

Driven entirely by expectations.TABLES: every table x format is exercised; see expectations.py for
what OK / Err / ClientLimit mean.
"""
import json

import delta_sharing
import pytest
from requests.exceptions import HTTPError

import deltalog
import expectations as E
import frames
from api import AUTO_CAPS, DELTA_CAPS, assert_error, file_lines, ndjson
from conftest import iso_ms

USE_DELTA = {"parquet": False, "delta": True, "auto": None}


def _load(env, table, fmt, **kw):
    return delta_sharing.load_as_pandas(env.url(table), use_delta_format=USE_DELTA[fmt], **kw)


def _assert_refused(excinfo, exp, what):
    resp = excinfo.value.response
    assert resp is not None, f"{what}: client raised HTTPError without a response: {excinfo.value}"
    assert_error(resp, exp.status, exp.code, exp.message, what)


def _check_edge_timestamps_limit(env, api, oracle, fmt):
    """ClientLimit for edge-timestamps: server answers correctly, client shows the overflow."""
    share, schema, name = env.coords("edge-timestamps")
    caps = DELTA_CAPS if fmt == "delta" else None
    resp = api.query(share, schema, name, {}, caps=caps)
    assert resp.status_code == 200, f"server must serve edge-timestamps ({fmt}): {resp.status_code} {resp.text[:500]}"
    assert len(file_lines(ndjson(resp))) == 2, "edge-timestamps has 2 active files"
    ref = oracle.snapshot("edge-timestamps")
    df = _load(env, "edge-timestamps", fmt)  # must not fail: the limit is silent wrap-around
    got = frames.Snapshot.from_pandas(df)
    frames.assert_same_table(got.project(["NORMAL_DATE", "SOME_VALUE"]), ref.project(["NORMAL_DATE", "SOME_VALUE"]),
                             f"edge-timestamps/{fmt} (columns not affected by the overflow)", check_types=False)
    big = sorted(r[0] for r in got.project(["BIG_DATE"]).rows)
    # Observed with delta-sharing 1.4.2 on both paths: INT96 9999-12-30/31 wrap to 1816-03-28/29
    # (the same wrap-around pyarrow shows when reading the files directly).
    assert len(big) == 2 and all(isinstance(v, str) and v.startswith("ts:1816-03-2") for v in big), (
        f"edge-timestamps/{fmt}: expected the documented client overflow (BIG_DATE wrapped to 1816-03-28/29), "
        f"got {big}. If the client now reads 9999-12-30/31 correctly, switch this entry to OK in expectations.py")


LIMIT_CHECKS = {"edge-timestamps": _check_edge_timestamps_limit}

LATEST_CASES = [(t, f) for t in E.TABLES for f in E.ALL_FORMATS]


@pytest.mark.parametrize("table,fmt", LATEST_CASES, ids=[f"{t}-{f}" for t, f in LATEST_CASES])
def test_read_latest(env, api, oracle, table, fmt):
    exp = E.TABLES[table].expect(fmt)
    what = f"{table} read as {fmt}"
    if isinstance(exp, E.Err):
        with pytest.raises(HTTPError) as excinfo:
            _load(env, table, fmt)
        _assert_refused(excinfo, exp, what)
    elif isinstance(exp, E.ClientLimit):
        LIMIT_CHECKS[table](env, api, oracle, fmt)
    else:
        df = _load(env, table, fmt)
        frames.assert_same_table(frames.Snapshot.from_pandas(df), oracle.snapshot(table), what)


def _ok_cases(attr):
    out = []
    for t, e in E.TABLES.items():
        for f in E.FORMATS:
            if e.expect(f) == E.OK:
                for v in getattr(e, attr):
                    out.append((t, f, v))
    return out


VERSION_CASES = _ok_cases("history_versions")
TIMESTAMP_CASES = _ok_cases("timestamp_versions")


@pytest.mark.parametrize("table,fmt,version", VERSION_CASES, ids=[f"{t}-{f}-v{v}" for t, f, v in VERSION_CASES])
def test_read_at_version(env, oracle, table, fmt, version):
    df = _load(env, table, fmt, version=version)
    frames.assert_same_table(frames.Snapshot.from_pandas(df), oracle.snapshot(table, version),
                             f"{table} as {fmt} at version {version}")


@pytest.mark.parametrize("table,fmt,version", TIMESTAMP_CASES, ids=[f"{t}-{f}-v{v}" for t, f, v in TIMESTAMP_CASES])
def test_read_at_timestamp(env, tables, oracle, table, fmt, version):
    """timestamp = the restored commit time of `version` exactly -> that version (last commit <= ts)."""
    ts = iso_ms(tables[table]["commit_mtimes_ms"][version])
    df = _load(env, table, fmt, timestamp=ts)
    frames.assert_same_table(frames.Snapshot.from_pandas(df), oracle.snapshot(table, version),
                             f"{table} as {fmt} at timestamp {ts} (commit time of version {version})")


LIMIT_CASES = [(t, f, k) for t, e in E.TABLES.items() for f in E.FORMATS if e.expect(f) == E.OK for k in (1, 3)]


@pytest.mark.parametrize("table,fmt,k", LIMIT_CASES, ids=[f"{t}-{f}-limit{k}" for t, f, k in LIMIT_CASES])
def test_limit(env, oracle, table, fmt, k):
    full = oracle.snapshot(table)
    df = _load(env, table, fmt, limit=k)
    want = min(k, len(full.rows))
    assert len(df) == want, f"{table}/{fmt} limit={k}: expected {want} rows, got {len(df)}"
    got = frames.Snapshot.from_pandas(df)
    allowed = set(full.rows)
    stray = [r for r in got.rows if r not in allowed]
    assert not stray, f"{table}/{fmt} limit={k}: rows not in the table: {stray[:3]}"


HINT_CASES = [(t, h) for t, e in E.TABLES.items() for h in e.hints]
# Client-side check only where a client path reads the table correctly (not edge-timestamps, whose
# hint is still checked on the wire by test_json_predicate_hint_server_prunes).
CLIENT_HINT_CASES = [(t, h, f) for t, h in HINT_CASES for f in E.FORMATS if E.TABLES[t].expect(f) == E.OK]


@pytest.mark.parametrize("table,hint,fmt", CLIENT_HINT_CASES,
                         ids=[f"{t}-{f}-{h.name}" for t, h, f in CLIENT_HINT_CASES])
def test_json_predicate_hint_client_superset(env, oracle, table, hint, fmt):
    """The client, given the hint, gets a superset of the matching rows (and only table rows)."""
    df = _load(env, table, fmt, jsonPredicateHints=json.dumps(hint.tree))
    got = frames.Snapshot.from_pandas(df)
    full = oracle.snapshot(table)
    want = full.filter(hint.predicate)
    frames.assert_same_table(got.filter(hint.predicate), want, f"{table}/{fmt} hint {hint.name} (matching rows)")
    allowed = set(full.rows)
    assert all(r in allowed for r in got.rows), f"{table}/{fmt} hint {hint.name}: rows not in the table"


def _caps_for(table):
    fmt = E.TABLES[table].ok_format
    if fmt == "delta" or (fmt is None and E.TABLES[table].parquet != E.OK and isinstance(E.TABLES[table].delta, E.Ok)):
        return DELTA_CAPS
    return None


@pytest.mark.parametrize("table,hint", HINT_CASES, ids=[f"{t}-{h.name}" for t, h in HINT_CASES])
def test_json_predicate_hint_server_prunes(env, api, tables, table, hint):
    share, schema, name = env.coords(table)
    caps = _caps_for(table)
    all_resp = api.query(share, schema, name, {}, caps=caps)
    assert all_resp.status_code == 200, all_resp.text[:500]
    n_all = len(file_lines(ndjson(all_resp)))
    assert n_all == len(deltalog.replay(tables[table]["path"]).adds), f"{table}: unfiltered file count"
    resp = api.query(share, schema, name, {"jsonPredicateHints": json.dumps(hint.tree)}, caps=caps)
    assert resp.status_code == 200, f"{table} hint {hint.name}: {resp.status_code} {resp.text[:500]}"
    n_hint = len(file_lines(ndjson(resp)))
    assert n_hint <= n_all, f"{table} hint {hint.name}: more files with a hint ({n_hint}) than without ({n_all})"
    if hint.prunes:
        assert n_hint < n_all, (
            f"{table} hint {hint.name}: server did not prune ({n_hint} of {n_all} files returned) although "
            "partition values / stats allow it")


@pytest.mark.parametrize("bad", ["bad-predicates", "", '{"op":"frobnicate","children":[]}',
                                 '{"op":"equal","children":[{"op":"column","name":"nope","valueType":"int"},'
                                 '{"op":"literal","value":"1","valueType":"int"}]}',
                                 '{"op":"equal","children":[{"op":"column","name":"id","valueType":"long"},'
                                 '{"op":"literal","value":"not-a-number","valueType":"long"}]}'])
def test_unusable_hints_keep_all_files(env, api, tables, bad):
    share, schema, name = env.coords("gen-partitioned")
    n_all = len(deltalog.replay(tables["gen-partitioned"]["path"]).adds)
    resp = api.query(share, schema, name, {"jsonPredicateHints": bad})
    assert resp.status_code == 200, f"unusable hint {bad!r} must be ignored, got {resp.status_code}: {resp.text[:300]}"
    assert len(file_lines(ndjson(resp))) == n_all, f"unusable hint {bad!r} must keep all {n_all} files"


# ------------------------------------------------------------------ SharingClient / metadata


def test_list_all_tables(env, client):
    got = sorted((t.share, t.schema, t.name) for t in client.list_all_tables())
    want = sorted((s["name"], sc["name"], t["name"]) for s in env.shares_cfg for sc in s["schemas"] for t in sc["tables"])
    assert got == want, f"list_all_tables mismatch\n  missing: {sorted(set(want) - set(got))}\n  extra: {sorted(set(got) - set(want))}"


def test_list_shares_schemas_tables(env, client):
    shares = sorted(s.name for s in client.list_shares())
    assert shares == sorted(s["name"] for s in env.shares_cfg)
    for s in client.list_shares():
        cfg = next(x for x in env.shares_cfg if x["name"] == s.name)
        schemas = client.list_schemas(s)
        assert [x.name for x in schemas] == [x["name"] for x in cfg["schemas"]]
        for sc in schemas:
            tcfg = next(x for x in cfg["schemas"] if x["name"] == sc.name)
            assert [t.name for t in client.list_tables(sc)] == [t["name"] for t in tcfg["tables"]]


ALL_TABLES = list(E.TABLES)


@pytest.mark.parametrize("table", ALL_TABLES)
def test_get_table_version(env, tables, table):
    assert delta_sharing.get_table_version(env.url(table)) == tables[table]["latest_version"]


def _strip_field_metadata(schema):
    return [(f["name"], json.dumps(f["type"], sort_keys=True), f.get("nullable")) for f in schema["fields"]]


def _auto_format(env, api, tables, table):
    """Format the server picks for `responseformat=delta,parquet;readerfeatures=...`, checked against
    the allowed set: tables that need reader features -> delta; reader-1 tables -> parquet; tables
    whose only reader features are transparent to sharing (v2Checkpoint) -> the server's choice
    (PROTOCOL-NOTES §3.2 "Several formats -> server's choice")."""
    log = deltalog.replay(tables[table]["path"])
    if isinstance(E.TABLES[table].parquet, E.Err):
        allowed = {"delta"}
    elif log.protocol["minReaderVersion"] == 1:
        allowed = {"parquet"}
    else:
        allowed = {"parquet", "delta"}
    r = api.metadata(*env.coords(table), caps=AUTO_CAPS)
    assert r.status_code == 200, f"{table}: /metadata with delta,parquet: {r.status_code} {r.text[:300]}"
    caps = r.headers.get("delta-sharing-capabilities", "").lower()
    fmt = "delta" if "responseformat=delta" in caps else "parquet"
    assert fmt in allowed, f"{table}: delta,parquet answered {fmt}, allowed {sorted(allowed)}"
    return fmt, log


@pytest.mark.parametrize("table", ALL_TABLES)
def test_get_table_metadata(env, api, tables, table):
    fmt, log = _auto_format(env, api, tables, table)
    md = delta_sharing.get_table_metadata(env.url(table))  # sends responseformat=delta,parquet
    assert md.id == log.metadata["id"], f"{table}: metaData.id must be the Delta metaData id"
    assert list(md.partition_columns) == log.metadata["partitionColumns"], f"{table}: partition columns"
    assert md.format.provider == "parquet"
    served = json.loads(md.schema_string)
    if fmt == "delta":  # schema and configuration passed unmodified
        assert served == log.schema, f"{table}: delta-format schemaString must equal the log's"
        assert md.configuration == log.metadata.get("configuration", {}), f"{table}: delta-format configuration"
    else:
        assert _strip_field_metadata(served) == _strip_field_metadata(log.schema), f"{table}: schema fields"


@pytest.mark.parametrize("table", ALL_TABLES)
def test_get_table_metadata_parquet_only(env, tables, table):
    """use_delta_format=False sends no capabilities header: parquet or the same refusal as /query."""
    exp = E.TABLES[table].parquet
    if isinstance(exp, E.Err):
        with pytest.raises(HTTPError) as excinfo:
            delta_sharing.get_table_metadata(env.url(table), use_delta_format=False)
        _assert_refused(excinfo, exp, f"{table} /metadata without capabilities")
    else:
        md = delta_sharing.get_table_metadata(env.url(table), use_delta_format=False)
        log = deltalog.replay(tables[table]["path"])
        assert md.id == log.metadata["id"]
        assert _strip_field_metadata(json.loads(md.schema_string)) == _strip_field_metadata(log.schema)


@pytest.mark.parametrize("table", ALL_TABLES)
def test_get_table_protocol(env, api, tables, table):
    fmt, log = _auto_format(env, api, tables, table)
    p = delta_sharing.get_table_protocol(env.url(table))
    lp = log.protocol
    if fmt == "parquet":
        assert p.min_reader_version == 1, f"{table}: parquet-format protocol is minReaderVersion 1"
    else:
        got = (p.min_reader_version, p.min_writer_version, p.reader_features, p.writer_features)
        want = (lp["minReaderVersion"], lp["minWriterVersion"], lp.get("readerFeatures"), lp.get("writerFeatures"))
        assert got == want, f"{table}: delta-format protocol must be the table's own (log order)"
