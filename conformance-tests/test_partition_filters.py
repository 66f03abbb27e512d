"""Partition filters declared per shared table (issue C1, Unity-style `partitions:` YAML extension).

Table: gov-sales (gen_gov_tables.py), partitioned by `country` (US/FR/DE and NULL) and `year`,
CDF enabled, 7 versions with known commit mtimes. It is shared several times with different filters;
recipients `us` (country=US), `fr` (country=FR), `noprop` (no property) and the config bearer token
(no properties at all) read it through every path: `load_as_pandas` (latest, version=, timestamp=;
parquet and delta), `load_table_changes_as_pandas`, raw paginated /query and /changes (maxFiles=1,
all pages), startingVersion queries, refresh tokens, async queries. Expected rows come from a direct
deltalake read filtered in Python by the same rule (`matches` below); expected files from the log.
"""
import json
import re
import time
import uuid
from collections import Counter

import delta_sharing
import pytest

import cdf_support
import deltalog
import frames
import server as srv
from api import DELTA_CAPS, ndjson
from conftest import iso_ms
from governance import GovServer, poll_until
from paging import SPARK_DELTA_CAPS, SPARK_PARQUET_CAPS, Page, spark_headers, walk_changes, walk_query

SHARE, SCHEMA = "sales", "s"
CFG_TOKEN = "config-token-0123456789abcdef"


def _f(name, op, key=None, value=None):
    d = {"name": name, "op": op}
    if key is not None:
        d["recipientPropertyKey"] = key
    if value is not None:
        d["value"] = value
    return d


# shared table name -> `partitions` entries (a list of conjunctions), None = no filter
FILTERS = {
    "by_country": [[_f("country", "EQUAL", key="country")]],
    "like_u": [[_f("country", "LIKE", value="U%")]],
    "like_underscore": [[_f("country", "LIKE", value="_R")]],
    "like_any": [[_f("country", "LIKE", value="%")]],
    "literal_fr": [[_f("COUNTRY", "EQUAL", value="FR")]],  # column names are case-insensitive
    "literal_year": [[_f("year", "EQUAL", value="2024")]],
    "conj": [[_f("country", "EQUAL", key="country"), _f("year", "EQUAL", value="2024")],
             [_f("country", "EQUAL", value="DE")]],
    "like_dot": [[_f("country", "LIKE", value="U.")]],  # '.' is literal in SQL LIKE: matches nothing
    "like_prop": [[_f("country", "LIKE", key="pattern")]],  # LIKE pattern from a recipient property
    "unfiltered": None,
}
READERS = {"us": {"country": "US", "pattern": "_E"}, "fr": {"country": "FR"}, "noprop": {}, "cfg": {}}
PROP_READERS = ["us", "fr", "noprop"]


def like(value, pattern):
    rx = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    return re.fullmatch(rx, value, re.S) is not None


def matches(table, props, pv):
    """The contract's rule: a file qualifies if ANY entry matches; an entry is a conjunction; a
    missing recipient property or a NULL partition value never matches."""
    entries = FILTERS[table]
    if entries is None:
        return True
    pv = {k.lower(): v for k, v in pv.items()}
    for entry in entries:
        ok = True
        for f in entry:
            v = pv.get(f["name"].lower())
            want = props.get(f["recipientPropertyKey"]) if "recipientPropertyKey" in f else f["value"]
            if want is None or v is None:
                ok = False
            elif f["op"] == "EQUAL":
                ok = v == want
            else:
                ok = like(v, want)
            if not ok:
                break
        if ok:
            return True
    return False


def row_pred(table, reader):
    props = READERS[reader]

    def pred(row):
        return matches(table, props, {"country": row["country"],
                                      "year": None if row["year"] is None else str(row["year"])})
    return pred


# ---------------------------------------------------------------------------------- server


@pytest.fixture(scope="module")
def pf(lakeshare_bin, gov_sales, tmp_path_factory):
    d = tmp_path_factory.mktemp("gov-partitions")
    tables = []
    for name, entries in FILTERS.items():
        t = {"name": name, "location": gov_sales["path"], "historyShared": True}
        if entries is not None:
            t["partitions"] = [{"values": e} for e in entries]
        tables.append(t)
    shares = [{"name": SHARE, "schemas": [{"name": SCHEMA, "tables": tables}]}]
    g = GovServer(lakeshare_bin, d, shares, extra={"authorization": {"bearerToken": CFG_TOKEN}}, bootstrap=False)
    g.tokens, g.profiles = {}, {}
    for reader, props in READERS.items():
        if reader == "cfg":
            path = g.profile_path("cfg")
            with open(path, "w") as fh:
                json.dump({"shareCredentialsVersion": 1, "endpoint": g.endpoint, "bearerToken": CFG_TOKEN}, fh)
            g.tokens[reader], g.profiles[reader] = CFG_TOKEN, path
        else:
            profile, prof = g.create(reader, [SHARE], properties=props)
            g.tokens[reader], g.profiles[reader] = prof["bearerToken"], profile
    yield g
    g.stop()


def _url(pf, reader, table):
    return f"{pf.profiles[reader]}#{SHARE}.{SCHEMA}.{table}"


def _fmt_kw(fmt):
    return {"parquet": {"use_delta_format": False}, "delta": {"use_delta_format": True}}[fmt]


def _expected_rows(gov_sales, table, reader, version=None):
    v = gov_sales["latest_version"] if version is None else version
    return gov_sales["snap"][v].filter(row_pred(table, reader))


def _check_frame(df, expected, what):
    client = frames.Snapshot.from_pandas(df)
    if not expected.rows:
        assert len(df) == 0, f"{what}: expected no rows, got {len(df)}"
        assert [c.lower() for c in df.columns] == [c.lower() for c in expected.columns], (
            f"{what}: columns {list(df.columns)}")
        return
    frames.assert_same_table(client, expected, what)


# ---------------------------------------------------------------------------------- snapshots


@pytest.mark.parametrize("fmt", ["parquet", "delta"])
@pytest.mark.parametrize("reader", list(READERS))
@pytest.mark.parametrize("table", list(FILTERS))
def test_load_latest(pf, gov_sales, table, reader, fmt):
    df = delta_sharing.load_as_pandas(_url(pf, reader, table), **_fmt_kw(fmt))
    _check_frame(df, _expected_rows(gov_sales, table, reader), f"{table} as {reader} ({fmt})")


@pytest.mark.parametrize("version", range(7))
@pytest.mark.parametrize("reader", PROP_READERS)
def test_load_version(pf, gov_sales, reader, version):
    df = delta_sharing.load_as_pandas(_url(pf, reader, "by_country"), version=version)
    _check_frame(df, _expected_rows(gov_sales, "by_country", reader, version), f"by_country@v{version} as {reader}")


@pytest.mark.parametrize("fmt", ["parquet", "delta"])
@pytest.mark.parametrize("version", [1, 3, 5])
@pytest.mark.parametrize("reader", PROP_READERS)
def test_load_timestamp(pf, gov_sales, reader, version, fmt):
    ts = iso_ms(gov_sales["commit_mtimes_ms"][version])
    df = delta_sharing.load_as_pandas(_url(pf, reader, "by_country"), timestamp=ts, **_fmt_kw(fmt))
    _check_frame(df, _expected_rows(gov_sales, "by_country", reader, version),
                 f"by_country@{ts} as {reader} ({fmt})")


@pytest.mark.parametrize("reader", ["us", "fr"])
@pytest.mark.parametrize("version", [2, 4, 6])
def test_load_version_conjunction(pf, gov_sales, reader, version):
    df = delta_sharing.load_as_pandas(_url(pf, reader, "conj"), version=version)
    _check_frame(df, _expected_rows(gov_sales, "conj", reader, version), f"conj@v{version} as {reader}")


# ---------------------------------------------------------------------------------- raw files


def _pv_key(a):
    pv = {k.lower(): v for k, v in a["partitionValues"].items()}
    return (pv.get("country"), pv.get("year"))


def _expected_files(gov_sales, table, reader, version=None):
    adds = deltalog.replay(gov_sales["path"], version).adds
    return Counter((_pv_key(a), a["size"]) for a in adds if matches(table, READERS[reader], a["partitionValues"]))


def _action(o):
    """(kind, action, line) of a file line in either format: parquet `file`/`add`/`remove`/`cdf`, or a
    delta `file` wrapping deltaSingleAction add/remove/cdc (reported as add/remove/cdf)."""
    (k, a), = o.items()
    if "deltaSingleAction" in a:
        (ak, act), = a["deltaSingleAction"].items()
        return {"cdc": "cdf"}.get(ak, ak), act, a
    return k, a, a


def _got_files(file_objs):
    out = Counter()
    for o in file_objs:
        k, act, _ = _action(o)
        assert k in ("file", "add"), o
        out[(_pv_key(act), act["size"])] += 1
    return out


@pytest.mark.parametrize("caps", [None, DELTA_CAPS], ids=["parquet", "delta"])
@pytest.mark.parametrize("reader", list(READERS))
@pytest.mark.parametrize("table", ["by_country", "conj", "like_any", "literal_fr", "like_prop", "unfiltered"])
def test_query_unpaged_files(pf, gov_sales, table, reader, caps):
    api = pf.api(pf.tokens[reader])
    r = api.query(SHARE, SCHEMA, table, {}, caps=caps)
    assert r.status_code == 200, f"{table} as {reader}: {r.status_code} {r.text[:300]}"
    objs = ndjson(r)
    assert [next(iter(o)) for o in objs[:2]] == ["protocol", "metaData"]
    assert all(next(iter(o)) == "file" for o in objs[2:]), [next(iter(o)) for o in objs]
    assert _got_files(objs[2:]) == _expected_files(gov_sales, table, reader), f"{table} as {reader}"
    assert r.headers.get("Delta-Table-Version") == str(gov_sales["latest_version"])


@pytest.mark.parametrize("reader", list(READERS))
@pytest.mark.parametrize("table", ["by_country", "conj", "like_u"])
@pytest.mark.parametrize("version", [None, 3])
def test_query_paginated_files(pf, gov_sales, table, reader, version):
    api = pf.api(pf.tokens[reader])
    body = {"predicateHints": [], "maxFiles": 1}
    if version is not None:
        body["version"] = version
    pages = walk_query(api, (SHARE, SCHEMA, table), body)
    files = []
    for p in pages:
        assert len(p.files) <= 1, "maxFiles=1"
        assert p.head_raw == pages[0].head_raw, "byte-identical head lines on every page"
        files += p.files
    assert pages[-1].next_token is None
    assert _got_files(files) == _expected_files(gov_sales, table, reader, version), (
        f"{table}@{version} as {reader}: union of {len(pages)} pages")


def _log_change_keys(gov_sales, table, reader, lo, hi, changes):
    """Expected (kind, version, partition key, size) of /changes (changes=True: cdc files when the
    commit has any, else dataChange add/remove) or of a startingVersion query (add/remove only)."""
    out = Counter()
    for v in range(lo, hi + 1):
        acts = cdf_support.commit_actions(gov_sales["path"], v)
        cdc = [a["cdc"] for a in acts if "cdc" in a]
        if changes and cdc:
            picked = [("cdf", a) for a in cdc]
        else:
            picked = [(k, a[k]) for a in acts for k in ("add", "remove") if k in a and a[k].get("dataChange", True)]
        for k, a in picked:
            if matches(table, READERS[reader], a.get("partitionValues") or {}):
                out[(k, v, _pv_key(a), a["size"])] += 1
    return out


def _change_keys(file_objs, gov_sales):
    out = Counter()
    for o in file_objs:
        k, act, line = _action(o)
        assert line["timestamp"] == gov_sales["commit_mtimes_ms"][line["version"]], line
        out[(k, line["version"], _pv_key(act), act["size"])] += 1
    return out


@pytest.mark.parametrize("caps", [SPARK_PARQUET_CAPS, SPARK_DELTA_CAPS], ids=["parquet", "delta"])
@pytest.mark.parametrize("reader", list(READERS))
@pytest.mark.parametrize("table", ["by_country", "conj", "like_any"])
@pytest.mark.parametrize("page", [None, 1])
def test_changes_files(pf, gov_sales, table, reader, page, caps):
    api = pf.api(pf.tokens[reader])
    latest = gov_sales["latest_version"]
    q = "startingVersion=0" + (f"&maxFiles={page}" if page else "")
    pages = walk_changes(api, (SHARE, SCHEMA, table), q, caps=caps)
    files = [f for p in pages for f in p.files]
    if page:
        assert all(len(p.files) <= page for p in pages)
    assert _change_keys(files, gov_sales) == _log_change_keys(gov_sales, table, reader, 0, latest, True), (
        f"/changes of {table} as {reader} (maxFiles={page})")


@pytest.mark.parametrize("caps", [SPARK_PARQUET_CAPS, SPARK_DELTA_CAPS], ids=["parquet", "delta"])
@pytest.mark.parametrize("reader", list(READERS))
@pytest.mark.parametrize("table", ["by_country", "conj"])
@pytest.mark.parametrize("page", [None, 1])
def test_starting_version_query(pf, gov_sales, table, reader, page, caps):
    api = pf.api(pf.tokens[reader])
    body = {"predicateHints": [], "startingVersion": 1}
    if page:
        body["maxFiles"] = page
        pages = walk_query(api, (SHARE, SCHEMA, table), body, caps=caps)
    else:
        pages = [Page(api.query(SHARE, SCHEMA, table, body, headers=spark_headers(caps)))]
    files = [f for p in pages for f in p.files]
    assert all(p.version == "1" for p in pages), "header = startingVersion"
    expected = _log_change_keys(gov_sales, table, reader, 1, gov_sales["latest_version"], False)
    assert _change_keys(files, gov_sales) == expected, f"startingVersion=1 of {table} as {reader} (maxFiles={page})"


# ---------------------------------------------------------------------------------- CDF via the connector


def _cdf_expected(gov_sales, table, reader, lo, hi, fmt):
    res = gov_sales["cdf"]
    cols = list(res["columns"])
    iv, ic, iy = cols.index("_commit_version"), cols.index("country"), cols.index("year")
    props = READERS[reader]
    out = []
    for r in res["rows"]:
        v = r[iv]
        if not lo <= v <= hi:
            continue
        pv = {"country": r[ic], "year": None if r[iy] is None else str(r[iy])}
        if not matches(table, props, pv):
            continue
        ts = gov_sales["commit_mtimes_ms"][v]
        if fmt == "delta":
            ts = ts // 1000 * 1000
        out.append(tuple(r) + (ts,))
    out.sort(key=frames._sort_key)
    return frames.Snapshot(cols + ["_commit_timestamp"], dict(res["types"], _commit_timestamp="int"), out, "load_cdf")


@pytest.mark.parametrize("fmt", ["parquet", "delta"])
@pytest.mark.parametrize("reader", list(READERS))
@pytest.mark.parametrize("table", ["by_country", "conj", "like_u", "unfiltered"])
def test_table_changes_by_version(pf, gov_sales, table, reader, fmt):
    latest = gov_sales["latest_version"]
    df = delta_sharing.load_table_changes_as_pandas(_url(pf, reader, table), starting_version=0,
                                                    ending_version=latest, **_fmt_kw(fmt))
    expected = _cdf_expected(gov_sales, table, reader, 0, latest, fmt)
    what = f"CDF of {table} as {reader} ({fmt})"
    if not expected.rows:
        assert len(df) == 0, f"{what}: expected no change rows, got {len(df)}"
        return
    client, oracle = cdf_support.align(cdf_support.client_snapshot(df), expected)
    frames.assert_same_table(client, oracle, what)


@pytest.mark.parametrize("reader", PROP_READERS)
def test_table_changes_by_timestamp(pf, gov_sales, reader):
    t = gov_sales["commit_mtimes_ms"]
    df = delta_sharing.load_table_changes_as_pandas(_url(pf, reader, "by_country"), starting_timestamp=iso_ms(t[1]),
                                                    ending_timestamp=iso_ms(t[5]), use_delta_format=False)
    expected = _cdf_expected(gov_sales, "by_country", reader, 1, 5, "parquet")
    what = f"CDF by timestamps as {reader}"
    if not expected.rows:
        assert len(df) == 0, f"{what}: expected no change rows, got {len(df)}"
        return
    client, oracle = cdf_support.align(cdf_support.client_snapshot(df), expected)
    frames.assert_same_table(client, oracle, what)


# ---------------------------------------------------------------------------------- other paths


@pytest.mark.parametrize("reader", PROP_READERS)
def test_zero_files_is_200_with_head_lines(pf, reader):
    """Fail closed without an error: metadata/version answer normally, /query has no file lines."""
    api = pf.api(pf.tokens[reader])
    assert api.metadata(SHARE, SCHEMA, "by_country").status_code == 200
    r = api.query(SHARE, SCHEMA, "by_country", {})
    assert r.status_code == 200, r.text[:300]
    kinds = [next(iter(o)) for o in ndjson(r)]
    want_files = 0 if reader == "noprop" else 1
    assert kinds[:2] == ["protocol", "metaData"]
    assert (len(kinds) > 2) == bool(want_files), f"{reader}: {kinds}"


@pytest.mark.parametrize("reader", ["us", "fr"])
def test_hints_only_narrow(pf, gov_sales, reader):
    """A client hint for another partition must not widen the filter: zero files, not FR's files."""
    api = pf.api(pf.tokens[reader])
    own = READERS[reader]["country"]
    other = "FR" if own == "US" else "US"

    def hint(value):
        return json.dumps({"op": "equal", "children": [{"op": "column", "name": "country", "valueType": "string"},
                                                       {"op": "literal", "value": value, "valueType": "string"}]})

    r = api.query(SHARE, SCHEMA, "by_country", {"jsonPredicateHints": hint(other)})
    assert r.status_code == 200
    assert [o for o in ndjson(r) if "file" in o] == [], f"{reader} hinting country={other} must get no files"
    r = api.query(SHARE, SCHEMA, "by_country", {"jsonPredicateHints": hint(own)})
    assert _got_files([o for o in ndjson(r) if "file" in o]) == _expected_files(gov_sales, "by_country", reader)


@pytest.mark.parametrize("reader", ["us", "noprop"])
def test_refresh_token_keeps_filter(pf, gov_sales, reader):
    api = pf.api(pf.tokens[reader])
    h = spark_headers(SPARK_PARQUET_CAPS)
    first = Page(api.query(SHARE, SCHEMA, "by_country", {"predicateHints": [], "includeRefreshToken": True}, headers=h))
    tok = (first.end or {}).get("refreshToken")
    assert tok, f"no refresh token: {first.end}"
    expected = _expected_files(gov_sales, "by_country", reader)
    assert _got_files(first.files) == expected
    again = Page(api.query(SHARE, SCHEMA, "by_country",
                           {"predicateHints": [], "includeRefreshToken": True, "refreshToken": tok}, headers=h))
    assert _got_files(again.files) == expected
    assert sorted(f["file"]["id"] for f in again.files) == sorted(f["file"]["id"] for f in first.files)


@pytest.mark.parametrize("reader", ["fr", "noprop"])
def test_async_query_keeps_filter(pf, gov_sales, reader):
    api = pf.api(pf.tokens[reader])
    h = spark_headers("responseformat=parquet;asyncquery=true")
    r = api.query(SHARE, SCHEMA, "by_country", {"predicateHints": [], "idempotency_key": str(uuid.uuid4())}, headers=h)
    assert r.status_code == 200, r.text[:300]
    qid = ndjson(r)[0]["queryStatus"]["queryId"]
    path = api.table_path(SHARE, SCHEMA, "by_country", f"/queries/{qid}")

    def poll():
        resp = api.post(path, {"queryId": qid}, headers=h)
        assert resp.status_code == 200, resp.text[:300]
        objs = ndjson(resp)
        return None if "queryStatus" in objs[0] else objs

    objs, _ = poll_until(poll, timeout=30)
    assert objs, "async query did not complete within 30 s"
    assert _got_files([o for o in objs if "file" in o]) == _expected_files(gov_sales, "by_country", reader)


def test_property_update_takes_effect(pf, gov_sales):
    name = pf.fresh_name("mover")
    _, prof = pf.create(name, [SHARE])
    api = pf.api(prof["bearerToken"])

    def files():
        r = api.query(SHARE, SCHEMA, "by_country", {})
        assert r.status_code == 200
        return _got_files([o for o in ndjson(r) if "file" in o])

    adds = deltalog.replay(gov_sales["path"]).adds
    want = lambda c: Counter((_pv_key(a), a["size"]) for a in adds if a["partitionValues"].get("country") == c)  # noqa
    assert files() == Counter()
    pf.update(name, "--property", "country=DE")
    assert files() == want("DE"), "--property takes effect on the next request"
    pf.update(name, "--property", "country=FR")
    assert files() == want("FR")
    pf.update(name, "--remove-property", "country")
    assert files() == Counter(), "--remove-property: fail closed again"


# ---------------------------------------------------------------------------------- config validation


def test_check_config_accepts_valid_filters(pf):
    proc = srv.lakeshare(pf.binary, "check-config", pf.config, check=False)
    assert proc.returncode == 0, f"valid partition filters must pass check-config:\n{proc.stdout}\n{proc.stderr}"


@pytest.mark.parametrize("column", ["amount", "nosuchcol"])
def test_non_partition_column_rejected(lakeshare_bin, gov_sales, tmp_path, column):
    shares = [{"name": SHARE, "schemas": [{"name": SCHEMA, "tables": [
        {"name": "good", "location": gov_sales["path"], "partitions": [{"values": [_f("country", "EQUAL", value="US")]}]},
        {"name": "badfilter", "location": gov_sales["path"],
         "partitions": [{"values": [_f("country", "EQUAL", value="US")]},
                        {"values": [_f(column, "EQUAL", value="1")]}]},
    ]}]}]
    cfg = srv.write_config(str(tmp_path / "bad.yaml"), shares, extra={"authorization": {"bearerToken": CFG_TOKEN}})
    proc = srv.lakeshare(lakeshare_bin, "check-config", cfg, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, f"check-config must reject a filter on non-partition column {column}:\n{out}"
    assert "badfilter" in out and column in out, f"the message must name the table and the column:\n{out}"
    res = srv.run_serve_expect_exit(lakeshare_bin, cfg, str(tmp_path / "state.db"))
    out = (res.stdout or "") + (res.stderr or "")
    assert res.returncode not in (None, 0), f"serve must refuse to start (got {res.returncode}):\n{out}"
    assert "badfilter" in out and column in out, f"serve's message must name the table and the column:\n{out}"


def test_property_change_mid_pagination(pf, gov_sales):
    """A page token issued while the recipient had country=US must not deliver US files after the
    property changed to FR: the next page is either refused (400) or filtered by the new value."""
    name = pf.fresh_name("pager")
    _, prof = pf.create(name, [SHARE], properties={"country": "US"})
    api = pf.api(prof["bearerToken"])
    h = spark_headers(SPARK_PARQUET_CAPS)
    first = Page(api.query(SHARE, SCHEMA, "by_country", {"predicateHints": [], "maxFiles": 1}, headers=h))
    assert first.next_token, "US has more than one file: a next page is expected"
    pf.update(name, "--property", "country=FR")
    r = api.query(SHARE, SCHEMA, "by_country", {"predicateHints": [], "maxFiles": 1, "pageToken": first.next_token},
                  headers=h)
    if r.status_code == 400:
        return
    assert r.status_code == 200, r.text[:300]
    for o in [o for o in ndjson(r) if "file" in o]:
        assert o["file"]["partitionValues"].get("country") == "FR", (
            f"page after the property change delivered a file of another partition: {o['file']['partitionValues']}")


def test_property_change_before_refresh(pf, gov_sales):
    """A refresh token from when the recipient had country=US, used after the property changed to
    FR: the refreshed query must not return US files (refused, or filtered by the current value)."""
    name = pf.fresh_name("refresher")
    _, prof = pf.create(name, [SHARE], properties={"country": "US"})
    api = pf.api(prof["bearerToken"])
    h = spark_headers(SPARK_PARQUET_CAPS)
    first = Page(api.query(SHARE, SCHEMA, "by_country", {"predicateHints": [], "includeRefreshToken": True}, headers=h))
    tok = (first.end or {}).get("refreshToken")
    assert tok and first.files
    pf.update(name, "--property", "country=FR")
    r = api.query(SHARE, SCHEMA, "by_country", {"predicateHints": [], "includeRefreshToken": True,
                                                 "refreshToken": tok}, headers=h)
    if r.status_code == 400:
        return
    assert r.status_code == 200, r.text[:300]
    for o in [o for o in ndjson(r) if "file" in o]:
        assert o["file"]["partitionValues"].get("country") == "FR", (
            f"refreshed query delivered a file of another partition: {o['file']['partitionValues']}")


def test_empty_property_never_matches_null(pf, gov_sales):
    """country='' (EQUAL) and pattern '%' (LIKE) from recipient properties: NULL partition values never
    match, whatever the value."""
    name = pf.fresh_name("blank")
    _, prof = pf.create(name, [SHARE], properties={"country": "", "pattern": "%"})
    api = pf.api(prof["bearerToken"])
    r = api.query(SHARE, SCHEMA, "by_country", {})
    assert r.status_code == 200
    assert [o for o in ndjson(r) if "file" in o] == [], "EQUAL '' must not match NULL (or anything)"
    r = api.query(SHARE, SCHEMA, "like_prop", {})
    assert r.status_code == 200
    adds = deltalog.replay(gov_sales["path"]).adds
    want = Counter((_pv_key(a), a["size"]) for a in adds if a["partitionValues"].get("country") is not None)
    assert _got_files([o for o in ndjson(r) if "file" in o]) == want, "LIKE '%' matches every non-NULL value"


def test_anonymous_access_has_no_properties(lakeshare_bin, gov_sales, tmp_path):
    """--allow-anonymous: no properties, so property filters give no files; literal filters still apply."""
    tables = []
    for name in ("by_country", "literal_fr", "unfiltered"):
        t = {"name": name, "location": gov_sales["path"]}
        if FILTERS[name] is not None:
            t["partitions"] = [{"values": e} for e in FILTERS[name]]
        tables.append(t)
    cfg = srv.write_config(str(tmp_path / "anon.yaml"), [{"name": SHARE, "schemas": [{"name": SCHEMA, "tables": tables}]}])
    s = srv.start_server(lakeshare_bin, cfg, str(tmp_path / "state.db"), ["--allow-anonymous"])
    try:
        from api import Api

        api = Api(s.url, None)
        for name in ("by_country", "literal_fr", "unfiltered"):
            r = api.query(SHARE, SCHEMA, name, {})
            assert r.status_code == 200, r.text[:300]
            got = _got_files([o for o in ndjson(r) if "file" in o])
            assert got == _expected_files(gov_sales, name, "cfg"), f"anonymous read of {name}"
    finally:
        s.stop()
