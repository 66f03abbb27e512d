"""Wire robustness (real-world defects F): prompt answers on kept-alive connections (TCP_NODELAY),
refusals before the first line of a stream (JSON errors instead of an empty reply), unsupported and
corrupt tables named in 400/500 answers, and error hygiene (every refusal is a JSON error body, one
Authorization header, URL lifetime cap, signed-URL parameters checked, admin errors in JSON).

One server for the module (`admin.AdminServer`: its own config and state DB, `--admin-port 0`,
plus a config bearer token for the recipient listener). Its tables live in a temp dir:

* `good`: a copy of the golden `plain-unpartitioned` (2 files);
* `outside_abs` / `outside_rel`: copies of the golden `cdf-non-partitioned` (CDF on, v0-v4) with a
  commit v5 that adds `file:///etc/hostname` / `../other/x.parquet` (outside the table root);
* `unknown_feature`: a hand-written log whose protocol is reader v3 / writer v7 with the reader
  feature `someUnknownFeature`;
* `corrupt_json`: a copy of `good` with a commit v2 that is not JSON;
* `bad_schema`: a hand-written log whose metaData has a schemaString that is not a schema.

The heavier checks (hints evaluation, nested YAML, connection limits) are in
test_wire_robustness_load.py.
"""
import json
import os
import statistics
import time

import pytest
import requests

import admin as A
import server as srv
import wire_support as W
from conftest import GOLDEN

SHARE, SCHEMA = "wire", "t"
DELTA_CAPS = "responseformat=delta;readerfeatures=deletionvectors,columnmapping,timestampntz"
BAD_VERSION = 5  # the commit of outside_* that adds a file outside the table root


@pytest.fixture(scope="module")
def wire(lakeshare_bin, tmp_path_factory):
    d = tmp_path_factory.mktemp("wire-robustness")
    tdir = d / "tables"
    tdir.mkdir()
    good = W.copy_table(GOLDEN / "plain-unpartitioned", tdir / "good")
    outside = {}
    for name, path in (("outside_abs", "file:///etc/hostname"), ("outside_rel", "../other/x.parquet")):
        t = W.copy_table(GOLDEN / "cdf-non-partitioned", tdir / name)
        assert W.append_add(t, path) == BAD_VERSION
        outside[name] = t
    unknown = str(tdir / "unknown_feature")
    W.write_commit(unknown, 0, [
        W.commit_info(),
        {"protocol": {"minReaderVersion": 3, "minWriterVersion": 7,
                      "readerFeatures": ["someUnknownFeature"], "writerFeatures": ["someUnknownFeature"]}},
        W.metadata_action([("id", "long")]),
        W.add_action("part-00000.parquet", stats={"numRecords": 1}),
    ])
    corrupt = W.copy_table(GOLDEN / "plain-unpartitioned", tdir / "corrupt_json")
    W.write_commit(corrupt, 2, text="this is not JSON {{{\n")
    bad_schema = str(tdir / "bad_schema")
    W.write_commit(bad_schema, 0, [
        W.commit_info(),
        {"protocol": {"minReaderVersion": 1, "minWriterVersion": 2}},
        W.metadata_action([], schema="this is not a schema"),
        W.add_action("part-00000.parquet"),
    ])
    tables = [W.table_entry("good", good)]
    tables += [W.table_entry(n, p) for n, p in outside.items()]
    tables += [W.table_entry("unknown_feature", unknown), W.table_entry("corrupt_json", corrupt),
               W.table_entry("bad_schema", bad_schema)]
    a = A.AdminServer(lakeshare_bin, d, W.one_schema_share(SHARE, SCHEMA, tables),
                      extra={"authorization": {"bearerToken": W.TOKEN}})
    a.tables_dir = str(tdir)
    a.table_paths = {"good": good, **outside, "unknown_feature": unknown, "corrupt_json": corrupt,
                     "bad_schema": bad_schema}
    yield a
    a.stop()


def _tpath(table, suffix=""):
    return f"/shares/{SHARE}/schemas/{SCHEMA}/tables/{table}{suffix}"


def _url(wire, table, suffix=""):
    return wire.endpoint + _tpath(table, suffix)


def _h(extra=None):
    h = {"Authorization": f"Bearer {W.TOKEN}"}
    h.update(extra or {})
    return h


def _post_query(wire, table, body=None, caps=None):
    h = _h({"Content-Type": "application/json"})
    if caps:
        h["delta-sharing-capabilities"] = caps
    return requests.post(_url(wire, table, "/query"), data=json.dumps(body or {}), headers=h, timeout=60)


def _json_error(resp, what):
    """The body is exactly one JSON error object (no NDJSON line before it); returns it."""
    ct = resp.headers.get("Content-Type", "")
    assert ct.startswith("application/json"), f"{what}: Content-Type {ct!r}, body {resp.text[:500]!r}"
    try:
        body = json.loads(resp.text)
    except ValueError:
        raise AssertionError(f"{what}: body is not one JSON object: {resp.text[:800]!r}")
    assert isinstance(body, dict) and isinstance(body.get("errorCode"), str) and \
        isinstance(body.get("message"), str) and body["message"], f"{what}: not an error body: {body}"
    return body


# ------------------------------------------------------------------------------ (3) TCP_NODELAY


ROUNDS = 30
MEDIAN_LIMIT_S = 0.020  # Nagle against the client's delayed ACK costs >= 40 ms per response


def _timed_rounds(conn, method, path, headers, body=b""):
    times = []
    for i in range(ROUNDS):
        t0 = time.perf_counter()
        r = conn.request(method, path, headers, body)
        times.append(time.perf_counter() - t0)
        assert r.status == 200, f"round {i}: {r!r}"
        assert r.header("connection") != "close", f"round {i}: server closed the kept-alive connection"
    return times, r


def test_metadata_round_trips_on_one_kept_alive_connection(wire):
    with W.RawHttp(wire.endpoint) as c:
        c.request("GET", _tpath("good", "/metadata"), W.bearer())  # warm the snapshot cache
        times, last = _timed_rounds(c, "GET", _tpath("good", "/metadata"), W.bearer())
    lines = last.text.rstrip("\n").split("\n")
    assert [next(iter(json.loads(x))) for x in lines] == ["protocol", "metaData"]
    med = statistics.median(times)
    assert med < MEDIAN_LIMIT_S, (
        f"median round trip of {ROUNDS} kept-alive GET /metadata is {med * 1000:.1f} ms (limit "
        f"{MEDIAN_LIMIT_S * 1000:.0f} ms; ~40 ms means Nagle vs delayed ACK). All (ms): "
        f"{[round(t * 1000, 1) for t in times]}")


def test_streamed_query_round_trips_on_one_kept_alive_connection(wire):
    h = W.bearer() + [("Content-Type", "application/json")]
    with W.RawHttp(wire.endpoint) as c:
        c.request("POST", _tpath("good", "/query"), h, b"{}")
        times, last = _timed_rounds(c, "POST", _tpath("good", "/query"), h, b"{}")
    assert "chunked" in (last.header("transfer-encoding") or ""), (
        f"/query is expected to stream (chunked), headers: {last.headers}")
    kinds = [next(iter(json.loads(x))) for x in last.text.rstrip("\n").split("\n")]
    assert kinds == ["protocol", "metaData", "file", "file"], kinds
    med = statistics.median(times)
    assert med < MEDIAN_LIMIT_S, (
        f"median round trip of {ROUNDS} kept-alive POST /query is {med * 1000:.1f} ms (limit "
        f"{MEDIAN_LIMIT_S * 1000:.0f} ms). All (ms): {[round(t * 1000, 1) for t in times]}")


# ------------------------------------------------------------------------------ (4) refusal before the first line


OUTSIDE = ["outside_abs", "outside_rel"]
QUERY_CASES = [
    # (id, body, capabilities)
    ("parquet", {}, None),
    ("delta", {}, DELTA_CAPS),
    ("parquet-endstream", {}, "responseformat=parquet;includeendstreamaction=true"),
    ("delta-endstream", {}, DELTA_CAPS + ";includeendstreamaction=true"),
    ("starting-version-parquet", {"startingVersion": BAD_VERSION}, None),
    ("starting-version-delta-endstream", {"startingVersion": BAD_VERSION},
     DELTA_CAPS + ";includeendstreamaction=true"),
    ("version-pinned-parquet", {"version": BAD_VERSION}, None),
]


def _assert_refused_before_stream(resp, what):
    assert 400 <= resp.status_code < 500, (
        f"{what}: a file outside the table root must be refused with a 4xx JSON error before any line, "
        f"got {resp.status_code}: {resp.text[:800]!r}")
    # _json_error parses the whole body as one object: an NDJSON line before the error fails it
    return _json_error(resp, what)


@pytest.mark.parametrize("table", OUTSIDE)
@pytest.mark.parametrize("cid,body,caps", QUERY_CASES, ids=[c[0] for c in QUERY_CASES])
def test_query_with_a_file_outside_the_root_is_a_json_error(wire, table, cid, body, caps):
    try:
        r = _post_query(wire, table, body, caps)
    except requests.exceptions.ConnectionError as exc:
        raise AssertionError(f"{table} {cid}: the connection was dropped instead of an error answer: {exc}")
    _assert_refused_before_stream(r, f"POST /query {table} {cid}")


CHANGES_CASES = [
    ("parquet", None),
    ("parquet-endstream", "responseformat=parquet;includeendstreamaction=true"),
    ("delta", DELTA_CAPS),
    ("delta-endstream", DELTA_CAPS + ";includeendstreamaction=true"),
]


@pytest.mark.parametrize("table", OUTSIDE)
@pytest.mark.parametrize("cid,caps", CHANGES_CASES, ids=[c[0] for c in CHANGES_CASES])
def test_changes_with_a_file_outside_the_root_is_a_json_error(wire, table, cid, caps):
    h = _h({"delta-sharing-capabilities": caps} if caps else None)
    for query in (f"startingVersion={BAD_VERSION}", f"startingVersion=3&endingVersion={BAD_VERSION}"):
        try:
            r = requests.get(_url(wire, table, "/changes") + "?" + query, headers=h, timeout=60)
        except requests.exceptions.ConnectionError as exc:
            raise AssertionError(f"{table} {cid} {query}: connection dropped instead of an error: {exc}")
        _assert_refused_before_stream(r, f"GET /changes?{query} {table} {cid}")


def test_changes_before_the_bad_commit_still_served(wire):
    """Control: the commits before the bad one are served (the refusal is about the bad file)."""
    r = requests.get(_url(wire, "outside_abs", "/changes") + "?startingVersion=0&endingVersion=4",
                     headers=_h(), timeout=60)
    assert r.status_code == 200, r.text[:500]
    assert len(r.text.rstrip("\n").split("\n")) > 2
    r = _post_query(wire, "outside_abs", {"version": BAD_VERSION - 1})
    assert r.status_code == 200 and '"file"' in r.text, r.text[:500]


@pytest.mark.parametrize("use_delta_format", [False, True], ids=["parquet", "delta"])
def test_stock_client_gets_an_http_error(wire, tmp_path, use_delta_format):
    import delta_sharing

    profile = W.write_profile(tmp_path / "p.share", wire.endpoint)
    t0 = time.monotonic()
    with pytest.raises(Exception) as info:
        delta_sharing.load_as_pandas(f"{profile}#{SHARE}.{SCHEMA}.outside_abs", use_delta_format=use_delta_format)
    exc = info.value
    assert isinstance(exc, requests.exceptions.HTTPError), (
        f"load_as_pandas must raise requests' HTTPError (a 4xx answer), got {type(exc).__module__}."
        f"{type(exc).__name__}: {str(exc)[:800]}")
    assert exc.response is not None and 400 <= exc.response.status_code < 500, str(exc)[:800]
    assert time.monotonic() - t0 < 30, "a 4xx is not retried: the client must fail at once"


# ------------------------------------------------------------------------------ (5) unsupported / corrupt tables


@pytest.mark.parametrize("fmt", ["parquet", "delta"])
@pytest.mark.parametrize("endpoint", ["metadata", "query"])
def test_unknown_reader_feature_is_unsupported_operation(wire, fmt, endpoint):
    caps = DELTA_CAPS if fmt == "delta" else None
    if endpoint == "metadata":
        h = _h({"delta-sharing-capabilities": caps} if caps else None)
        r = requests.get(_url(wire, "unknown_feature", "/metadata"), headers=h, timeout=60)
    else:
        r = _post_query(wire, "unknown_feature", {}, caps)
    what = f"/{endpoint} ({fmt}) of a table with reader feature someUnknownFeature"
    assert r.status_code == 400, f"{what}: expected 400 UNSUPPORTED_OPERATION, got {r.status_code}: {r.text[:800]}"
    body = _json_error(r, what)
    assert body["errorCode"] == "UNSUPPORTED_OPERATION", f"{what}: {body}"
    assert "unknown_feature" in body["message"], f"{what}: the message must name the table: {body['message']!r}"
    assert "someUnknownFeature" in body["message"], (
        f"{what}: the message must name the feature: {body['message']!r}")
    assert wire.tables_dir not in body["message"], f"{what}: filesystem path leaked: {body['message']!r}"


@pytest.mark.parametrize("table", ["corrupt_json", "bad_schema"])
@pytest.mark.parametrize("endpoint", ["metadata", "query"])
def test_corrupt_log_is_a_named_internal_error(wire, table, endpoint):
    if endpoint == "metadata":
        r = requests.get(_url(wire, table, "/metadata"), headers=_h(), timeout=60)
    else:
        r = _post_query(wire, table, {})
    what = f"/{endpoint} of {table}"
    assert r.status_code == 500, f"{what}: expected 500 INTERNAL_ERROR, got {r.status_code}: {r.text[:800]}"
    body = _json_error(r, what)
    msg = body["message"]
    assert body["errorCode"] == "INTERNAL_ERROR", f"{what}: {body}"
    assert msg.strip().lower() != "internal server error", f"{what}: bare message {msg!r}"
    assert table in msg, f"{what}: the message must name the table: {msg!r}"
    real = os.path.realpath(wire.table_paths[table])
    for leak in (wire.tables_dir, real, os.path.realpath(wire.tables_dir), "file://"):
        assert leak not in msg, f"{what}: the message leaks the table location ({leak!r}): {msg!r}"


def test_broken_tables_do_not_affect_the_others(wire):
    r = requests.get(_url(wire, "good", "/metadata"), headers=_h(), timeout=60)
    assert r.status_code == 200, r.text[:300]


# ------------------------------------------------------------------------------ (16) hygiene


def test_duplicated_query_parameter_is_a_json_400(wire):
    r = requests.get(wire.endpoint + "/shares?maxResults=1&maxResults=2", headers=_h(), timeout=30)
    assert r.status_code == 400, f"duplicated maxResults: {r.status_code} {r.text[:500]}"
    body = _json_error(r, "GET /shares?maxResults=1&maxResults=2")
    assert "maxResults" in body["message"], body


def test_duplicated_starting_timestamp_is_a_json_400(wire):
    url = _url(wire, "good", "/version") + \
        "?startingTimestamp=2020-01-01T00:00:00Z&startingTimestamp=2021-01-01T00:00:00Z"
    r = requests.get(url, headers=_h(), timeout=30)
    assert r.status_code == 400, f"duplicated startingTimestamp: {r.status_code} {r.text[:500]}"
    assert "startingTimestamp" in _json_error(r, "duplicated startingTimestamp")["message"]


def test_wrong_method_is_a_json_405_naming_the_allowed_methods(wire):
    r = requests.delete(wire.endpoint + "/shares", headers=_h(), timeout=30)
    assert r.status_code == 405, f"DELETE /shares: {r.status_code} {r.text[:500]}"
    body = _json_error(r, "DELETE /shares")
    assert "DELETE" in body["message"], body
    assert "GET" in body["message"], (
        f"the 405 body must name the allowed methods (Allow: {r.headers.get('Allow')!r}), got {body}")


def test_invalid_utf8_path_is_a_json_error(wire):
    r = requests.get(wire.endpoint + "/shares/%FF", headers=_h(), timeout=30)
    assert r.status_code == 400, f"/shares/%FF: {r.status_code} {r.text[:500]}"
    _json_error(r, "/shares/%FF")
    r = requests.get(wire.endpoint + "/shares/wire/schemas/%C3%28/tables", headers=_h(), timeout=30)
    assert 400 <= r.status_code < 500, r.text[:300]
    _json_error(r, "schema %C3%28")


@pytest.mark.parametrize("second", ["same", "other-valid-looking", "garbage"])
def test_two_authorization_headers_are_refused(wire, second):
    other = {"same": f"Bearer {W.TOKEN}", "other-valid-looking": f"Bearer {W.TOKEN}x",
             "garbage": "Basic Zm9vOmJhcg=="}[second]
    with W.RawHttp(wire.endpoint) as c:
        r = c.request("GET", "/shares", [("Authorization", f"Bearer {W.TOKEN}"), ("Authorization", other)])
        assert r.status == 401, f"two Authorization headers ({second}): {r!r}"
        assert (r.header("content-type") or "").startswith("application/json"), r
        body = r.json()
        assert body.get("errorCode") and body.get("message"), body
        # control on the same connection: one header is accepted
        ok = c.request("GET", "/shares", W.bearer())
        assert ok.status == 200, ok


def test_two_authorization_headers_via_http_client(wire):
    import http.client
    from urllib.parse import urlsplit

    p = urlsplit(wire.endpoint)
    conn = http.client.HTTPConnection(p.hostname, p.port, timeout=30)
    try:
        conn.putrequest("GET", p.path + "/shares")
        conn.putheader("Authorization", f"Bearer {W.TOKEN}")
        conn.putheader("Authorization", f"Bearer {W.TOKEN}")
        conn.endheaders()
        resp = conn.getresponse()
        data = resp.read()
        assert resp.status == 401, (resp.status, data[:300])
        assert resp.getheader("Content-Type", "").startswith("application/json")
        assert json.loads(data)["errorCode"]
    finally:
        conn.close()


def test_admin_url_ttl_over_seven_days_refused(wire):
    r = wire.raw("POST", "/api/2.1/unity-catalog/shares", body={"name": "ttl_huge", "url_ttl_seconds": 2**63 - 1})
    body = A.admin_error(r, 400, None, "url_ttl_seconds 2^63-1")
    assert "604800" in body["message"], f"the message must name the 604800-second maximum: {body}"
    r = wire.raw("POST", "/api/2.1/unity-catalog/shares", body={"name": "ttl_over", "url_ttl_seconds": 604801})
    assert "604800" in A.admin_error(r, 400, None, "url_ttl_seconds 604801")["message"]
    r = wire.raw("POST", "/api/2.1/unity-catalog/shares", body={"name": "ttl_max", "url_ttl_seconds": 604800})
    assert r.status_code == 200 and r.json().get("url_ttl_seconds") == 604800, r.text[:500]


@pytest.mark.parametrize("where", ["top-level", "share"])
def test_check_config_refuses_an_over_long_url_lifetime(lakeshare_bin, wire, tmp_path, where):
    shares = W.one_schema_share("s", "d", [W.table_entry("t", wire.table_paths["good"])])
    extra = {"authorization": {"bearerToken": W.TOKEN}}
    if where == "top-level":
        extra["preSignedUrlTimeoutSeconds"] = 999999999
    else:
        shares[0]["preSignedUrlTimeoutSeconds"] = 999999999
    cfg = srv.write_config(str(tmp_path / "c.yaml"), shares, extra=extra)
    res = srv.lakeshare(lakeshare_bin, "check-config", cfg, check=False)
    out = res.stdout + res.stderr
    assert res.returncode != 0, f"check-config accepted preSignedUrlTimeoutSeconds 999999999 ({where}):\n{out}"
    assert "preSignedUrlTimeoutSeconds" in out and "604800" in out, out


# -- signed local file URLs


@pytest.fixture(scope="module")
def file_url(wire):
    r = _post_query(wire, "good", {})
    assert r.status_code == 200, r.text[:300]
    lines = [json.loads(x) for x in r.text.rstrip("\n").split("\n")]
    files = [x["file"] for x in lines if "file" in x]
    assert files and "sp=r" in files[0]["url"], files
    return files[0]["url"], files[0]["size"]


def _variants(url):
    assert url.count("&sp=r") == 1 or url.count("?sp=r") == 1, url
    sig = url.split("sig=")[1].split("&")[0]
    return {
        "sp-changed": url.replace("sp=r", "sp=w"),
        "sp-rw": url.replace("sp=r", "sp=rw"),
        "sp-removed": url.replace("&sp=r", "").replace("?sp=r&", "?"),
        "unknown-param": url + "&foo=bar",
        "sig-repeated": url + "&sig=" + sig,
        "exp-repeated": url + "&exp=" + url.split("exp=")[1].split("&")[0],
    }


@pytest.mark.parametrize("what", ["sp-changed", "sp-rw", "sp-removed", "unknown-param", "sig-repeated",
                                  "exp-repeated"])
def test_altered_file_urls_are_a_json_403(file_url, what):
    url, _ = file_url
    bad = _variants(url)[what]
    assert bad != url
    r = requests.get(bad, timeout=30)
    assert r.status_code == 403, f"{what}: expected 403, got {r.status_code}: {r.text[:300]} ({bad})"
    body = _json_error(r, f"file URL {what}")
    assert body["errorCode"] == "PERMISSION_DENIED", body


def test_untouched_file_url_is_served(file_url):
    url, size = file_url
    r = requests.get(url, timeout=30)
    assert r.status_code == 200 and len(r.content) == size and r.content[:4] == b"PAR1", r.status_code


# -- admin listener


def test_admin_unknown_route_is_json(wire):
    r = wire.raw("GET", "/api/2.1/unity-catalog/no-such-thing")
    A.admin_error(r, 404, None, "unknown admin route")
    assert r.headers.get("Content-Type", "").startswith("application/json")


def test_admin_wrong_method_is_json_405(wire):
    r = wire.raw("DELETE", "/api/2.1/unity-catalog/shares")
    body = A.admin_error(r, 405, None, "DELETE on the share list")
    assert "GET" in body["message"] and "POST" in body["message"], (
        f"the admin 405 body must name the allowed methods (Allow: {r.headers.get('Allow')!r}): {body}")


def test_admin_non_json_body_is_a_json_400(wire):
    created = wire.raw("POST", "/api/2.1/unity-catalog/shares", body={"name": "patch_me"})
    assert created.status_code == 200, created.text[:300]
    r = requests.patch(wire.admin_url + "/api/2.1/unity-catalog/shares/patch_me", data="this is {not json",
                       headers={"Authorization": f"Bearer {wire.admin_token}", "Content-Type": "application/json"},
                       timeout=30)
    A.admin_error(r, 400, None, "PATCH with a non-JSON body")
    r = requests.post(wire.admin_url + "/api/2.1/unity-catalog/shares", data="[1,2",
                      headers={"Authorization": f"Bearer {wire.admin_token}", "Content-Type": "application/json"},
                      timeout=30)
    A.admin_error(r, 400, None, "POST with a truncated JSON body")


def test_admin_errors_never_carry_sqlite_text(wire):
    """The state store's own words (SQLite) never reach a client, in any admin error produced here."""
    first = wire.raw("POST", "/api/2.1/unity-catalog/shares", body={"name": "dup_me"})
    assert first.status_code == 200, first.text[:300]
    probes = [
        wire.raw("GET", "/api/2.1/unity-catalog/shares/" + "x" * 300),
        wire.raw("POST", "/api/2.1/unity-catalog/shares", body={"name": "dup_me"}),  # exists: 409
        wire.raw("GET", "/api/2.1/unity-catalog/recipients/no_such_recipient"),
    ]
    for r in probes:
        assert r.status_code >= 400, r.text[:300]
        A.admin_error(r, r.status_code, None, "probe")
        low = r.text.lower()
        assert "sqlite" not in low and "constraint failed" not in low and "database is locked" not in low, r.text


def test_admin_503_does_not_carry_sqlite_text(wire):
    """A write while another process holds the state DB's write lock waits out the server's busy
    timeout (10 s; the audit write after it waits too) and is answered 503. The body is JSON without
    SQLite's words, in the admin listener's error shape; the server recovers once the lock is gone.
    Last test of the module: while the lock is held the whole server waits on its store."""
    import sqlite3

    con = sqlite3.connect(wire.state, timeout=1, isolation_level=None)
    try:
        con.execute("BEGIN EXCLUSIVE")
        t0 = time.monotonic()
        r = wire.raw("POST", "/api/2.1/unity-catalog/shares", body={"name": "while_locked"})
        took = time.monotonic() - t0
    finally:
        con.execute("ROLLBACK")
        con.close()
    what = f"share creation while the state DB is locked ({took:.1f}s)"
    assert r.status_code == 503, f"{what}: expected 503, got {r.status_code}: {r.text[:500]}"
    try:
        body = r.json()
    except ValueError:
        raise AssertionError(f"{what}: the 503 body is not JSON: {r.text[:500]!r}")
    low = r.text.lower()
    for word in ("sqlite", "database is locked", "sqlx", "(code: 5)"):
        assert word not in low, f"{what}: the 503 body carries state-store text ({word!r}): {r.text}"
    ok, waited = A.wait_status(lambda: wire.raw("GET", "/api/2.1/unity-catalog/shares").status_code, 200, 15)
    assert ok, f"the admin API must answer again once the lock is gone (waited {waited:.1f}s)"
    # every other admin error is {"error_code", "message"} (Unity style, what the Databricks SDK parses)
    assert isinstance(body, dict) and "error_code" in body and "message" in body, (
        f"{what}: the admin listener's 503 must have the admin error shape {{error_code, message}}, got {r.text}")
