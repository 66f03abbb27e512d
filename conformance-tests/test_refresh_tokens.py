"""Refresh tokens (PROTOCOL-NOTES §2.8 "Refresh tokens", §10.3), replayed as the Spark client does:
the first latest-snapshot query asks `"includeRefreshToken":true`; later the same query is re-sent
with the token and must return the same files (same ids) at the pinned version with fresh URLs,
even after a new commit; every misuse is a documented 400."""
import time

import pytest
import requests

import mutate
import server as srv
from api import Api, assert_error
from conftest import table_id
from paging import SPARK_DELTA_CAPS, SPARK_PARQUET_CAPS, Page, file_key, spark_headers, walk_query

IPV = "INVALID_PARAMETER_VALUE"
BODY = {"predicateHints": [], "includeRefreshToken": True}


def _shares(entries):
    return [{"name": "s", "schemas": [{"name": "d", "tables": [
        {"name": n, "location": p, "id": table_id("rt-" + n), "historyShared": True} for n, p in entries]}]}]


def _start(lakeshare_bin, d, tables, extra=None):
    mut = mutate.copy_table(tables["gen-partitioned"]["path"], str(d / "mut"))
    dv = mutate.copy_table(tables["dv-partitioned-checkpoint"]["path"], str(d / "dvmut"))
    cfg = srv.write_config(str(d / "cfg.yaml"), _shares([("mut", mut), ("dvmut", dv),
                                                          ("other", tables["gen-checkpointed"]["path"])]), extra=extra)
    s = srv.start_server(lakeshare_bin, cfg, str(d / "state.db"), ["--allow-anonymous"])
    return s, {"mut": mut, "dvmut": dv}


@pytest.fixture(scope="module")
def rt_server(lakeshare_bin, tables, tmp_path_factory):
    s, paths = _start(lakeshare_bin, tmp_path_factory.mktemp("refresh"), tables)
    yield s, Api(s.url, None), paths
    s.stop()


@pytest.fixture(scope="module")
def short_ttl(lakeshare_bin, tables, tmp_path_factory):
    s, paths = _start(lakeshare_bin, tmp_path_factory.mktemp("refresh-ttl"), tables, extra={"refreshTokenTtlMs": 300})
    yield s, Api(s.url, None)
    s.stop()


def _q(api, table, body, caps=SPARK_PARQUET_CAPS):
    return api.query("s", "d", table, body, headers=spark_headers(caps))


def _token_page(api, table, caps=SPARK_PARQUET_CAPS):
    p = Page(_q(api, table, BODY, caps))
    assert p.end is not None, "includeRefreshToken:true -> last line must be an endStreamAction"
    assert p.end.get("refreshToken"), f"endStreamAction lacks refreshToken: {p.end}"
    assert isinstance(p.end.get("minUrlExpirationTimestamp"), int), p.end
    assert "nextPageToken" not in p.end
    return p


@pytest.mark.parametrize("table,caps", [("mut", SPARK_PARQUET_CAPS), ("dvmut", SPARK_DELTA_CAPS)])
def test_refresh_round_trip_across_new_commit(rt_server, table, caps):
    _, api, paths = rt_server
    first = _token_page(api, table, caps)
    pinned = first.version
    ids = sorted(file_key(o) for o in first.files)
    assert ids, "no files"
    # URLs' expiry folds into minUrlExpirationTimestamp
    exps = [(o["file"].get("expirationTimestamp")) for o in first.files]
    assert all(isinstance(e, int) for e in exps) and first.end["minUrlExpirationTimestamp"] <= min(exps)

    new_version, _ = mutate.append_copy_commit(paths[table])
    assert str(new_version) != pinned
    latest = Page(_q(api, table, BODY, caps))
    assert latest.version == str(new_version), "a plain latest query sees the new commit"
    assert len(latest.files) == len(first.files) + 1

    again = Page(_q(api, table, dict(BODY, refreshToken=first.end["refreshToken"]), caps))
    assert again.version == pinned, f"refresh must stay at the pinned version {pinned}, got {again.version}"
    assert sorted(file_key(o) for o in again.files) == ids, "refresh must return the same files (same ids)"
    assert again.head_raw == first.head_raw, "same protocol/metaData for the pinned version"
    assert again.end and again.end.get("refreshToken"), "a refreshed response carries a new refresh token"
    old_exp = {o["file"]["id"]: o["file"]["expirationTimestamp"] for o in first.files}
    for o in again.files:
        f = o["file"]
        url = f.get("url") or f["deltaSingleAction"]["add"]["path"]
        assert f["expirationTimestamp"] >= old_exp[f["id"]], "refreshed URLs must not expire earlier"
        assert requests.get(url, timeout=30).status_code == 200, "refreshed URL must be readable"
    # the new token works as well and still pins the same version
    third = Page(_q(api, table, dict(BODY, refreshToken=again.end["refreshToken"]), caps))
    assert third.version == pinned and sorted(file_key(o) for o in third.files) == ids


def test_refresh_token_garbage(rt_server):
    _, api, _ = rt_server
    r = _q(api, "mut", dict(BODY, refreshToken="not-a-token"))
    assert_error(r, 400, IPV, "Error decoding refresh token", what="garbage refresh token")


def test_refresh_token_tampered(rt_server):
    _, api, _ = rt_server
    tok = _token_page(api, "mut").end["refreshToken"]
    mid = len(tok) // 2
    bad = tok[:mid] + ("A" if tok[mid] != "A" else "B") + tok[mid + 1:]
    r = _q(api, "mut", dict(BODY, refreshToken=bad))
    assert_error(r, 400, IPV, None, what="tampered refresh token")


def test_refresh_token_other_table(rt_server):
    _, api, _ = rt_server
    tok = _token_page(api, "mut").end["refreshToken"]
    r = _q(api, "other", dict(BODY, refreshToken=tok))
    assert_error(r, 400, IPV, "The table specified in the refresh token does not match the table being queried.")


def test_refresh_token_expired(short_ttl):
    _, api = short_ttl
    tok = _token_page(api, "mut").end["refreshToken"]
    time.sleep(0.6)
    r = _q(api, "mut", dict(BODY, refreshToken=tok))
    assert_error(r, 400, IPV, "The refresh token has expired. Please restart the query.")


@pytest.mark.parametrize("extra,msg", [
    ({"version": 1}, "includeRefreshToken cannot be used when querying a specific version."),
    ({"timestamp": "2025-01-01T02:00:00Z"}, "includeRefreshToken cannot be used when querying a specific version."),
    ({"startingVersion": 0}, "includeRefreshToken cannot be used when querying a specific version."),
])
def test_include_refresh_token_with_specific_version(rt_server, extra, msg):
    _, api, _ = rt_server
    assert_error(_q(api, "mut", dict(BODY, **extra)), 400, IPV, msg)


@pytest.mark.parametrize("extra", [{"version": 1}, {"startingVersion": 0}])
def test_refresh_token_with_specific_version(rt_server, extra):
    _, api, _ = rt_server
    tok = _token_page(api, "mut").end["refreshToken"]
    body = dict(extra, predicateHints=[], refreshToken=tok)
    assert_error(_q(api, "mut", body), 400, IPV, "refreshToken cannot be used when querying a specific version.")


def test_refresh_tokens_with_page_token(rt_server):
    _, api, _ = rt_server
    first = Page(_q(api, "mut", {"predicateHints": [], "maxFiles": 1}))
    assert first.next_token
    r = _q(api, "mut", {"predicateHints": [], "maxFiles": 1, "pageToken": first.next_token, "includeRefreshToken": True})
    assert_error(r, 400, IPV, "includeRefreshToken must be used in the first page request.")
    tok = _token_page(api, "mut").end["refreshToken"]
    r = _q(api, "mut", {"predicateHints": [], "maxFiles": 1, "pageToken": first.next_token, "refreshToken": tok})
    assert_error(r, 400, IPV, "refreshToken must be used in the first page request.")


def test_refresh_with_pagination(rt_server):
    """Spark with pagination: first page has includeRefreshToken; the walk ends with a refresh token
    somewhere in the endStreamActions, and re-querying with it returns the same files."""
    _, api, _ = rt_server
    pages = walk_query(api, ("s", "d", "mut"), dict(BODY, maxFiles=2))
    tokens = [p.end.get("refreshToken") for p in pages if p.end and p.end.get("refreshToken")]
    assert tokens, "a paginated includeRefreshToken query must hand out a refresh token"
    ids = sorted(file_key(o) for p in pages for o in p.files)
    again = walk_query(api, ("s", "d", "mut"), dict(BODY, maxFiles=2, refreshToken=tokens[0]))
    assert sorted(file_key(o) for p in again for o in p.files) == ids
    assert {p.version for p in again} == {pages[0].version}


def test_no_refresh_token_without_request(rt_server):
    _, api, _ = rt_server
    p = Page(_q(api, "mut", {"predicateHints": []}))
    assert p.end is None, "no endStreamAction when nothing asked for one"
