"""Pagination of /query (body maxFiles + pageToken) and /changes (query string), replayed as the Spark
client sends it (PROTOCOL-NOTES §2.8 "Pagination", §6, §10.3): union of pages == unpaged result,
byte-identical protocol/metaData on every page, constant Delta-Table-Version, <= page size file
lines, endStreamAction last (nextPageToken on all but the last page), every token misuse -> 400,
and the replay counter (no log replay per page)."""
import math
import os
import time

import pytest

import expectations as E
import server as srv
from api import assert_error, ndjson
from conftest import MAIN_SHARE, table_id
from paging import (SPARK_DELTA_CAPS, SPARK_PARQUET_CAPS, Page, file_key, get_raw, changes_url, metric,
                    spark_headers, strip_urls, walk_changes, walk_query)

IPV = "INVALID_PARAMETER_VALUE"
DECODE = "Error decoding the page token"
TABLE_MISMATCH = "The table specified in the page token does not match the table being queried."
PARAM_MISMATCH = ("Query parameter mismatch detected for the next page query. The query parameter cannot change "
                  "when querying the next page results.")
EXPIRED = "The page token has expired. Please restart the query."

QUERY_CASES = [
    # (table, caps, base body)
    ("checkpoint-v1-single", SPARK_PARQUET_CAPS, {"predicateHints": []}),
    ("gen-partitioned", SPARK_PARQUET_CAPS, {"predicateHints": [], "version": 2}),
    ("dv-partitioned-checkpoint", SPARK_DELTA_CAPS, {"predicateHints": []}),
    ("gen-cdf-partitioned", SPARK_PARQUET_CAPS, {"predicateHints": [], "startingVersion": 1}),
    ("gen-cdf-unpartitioned", SPARK_DELTA_CAPS, {"predicateHints": [], "startingVersion": 0, "endingVersion": 4}),
]


def _unpaged(env, api, table, caps, body):
    share, schema, name = env.coords(table)
    p = Page(api.query(share, schema, name, body, headers=spark_headers(caps)))
    assert p.end is None, "an unpaged request without includeendstreamaction gets no endStreamAction"
    return p


def _check_walk(pages, unpaged, k, what):
    n = len(unpaged.files)
    assert n >= 2, f"{what}: needs at least 2 file lines to paginate, has {n}"
    for i, p in enumerate(pages):
        assert p.head_raw == pages[0].head_raw, f"{what}: page {i + 1} protocol/metaData differ from page 1 (bytes)"
        assert p.version == pages[0].version, f"{what}: Delta-Table-Version changed on page {i + 1}"
        assert p.caps == pages[0].caps, f"{what}: capabilities header changed on page {i + 1}"
        assert len(p.files) <= k, f"{what}: page {i + 1} has {len(p.files)} file lines > maxFiles {k}"
        assert p.end is not None, f"{what}: page {i + 1} lacks the endStreamAction"
        assert isinstance(p.end.get("minUrlExpirationTimestamp"), int), f"{what}: page {i + 1}: {p.end}"
        if i < len(pages) - 1:
            assert p.next_token, f"{what}: page {i + 1} has no nextPageToken"
            assert p.body, f"{what}: page {i + 1} is empty but not the last"
    assert "nextPageToken" not in pages[-1].end, "last page: endStreamAction without nextPageToken"
    assert len(pages) <= math.ceil(n / k) + 1, f"{what}: {len(pages)} pages for {n} files at {k} per page"
    assert pages[0].head_raw == unpaged.head_raw, f"{what}: paged head lines differ from the unpaged response"
    assert pages[0].version == unpaged.version
    paged_lines = [strip_urls(o) for p in pages for o in p.body]
    unpaged_lines = [strip_urls(o) for o in unpaged.body]
    assert paged_lines == unpaged_lines, f"{what}: concatenated pages != unpaged body (same lines, same order)"
    keys = [file_key(o) for p in pages for o in p.files]
    assert len(keys) == len(set(keys)), f"{what}: a file appears on two pages"


@pytest.mark.parametrize("table,caps,body", QUERY_CASES, ids=[c[0] + "-" + str(sorted(c[2])) for c in QUERY_CASES])
@pytest.mark.parametrize("k", [1, 2, 3, 1000])
def test_query_pages(env, api, table, caps, body, k):
    unpaged = _unpaged(env, api, table, caps, body)
    pages = walk_query(api, env.coords(table), dict(body, maxFiles=k), caps)
    _check_walk(pages, unpaged, k, f"{table} {body} maxFiles={k}")
    if k >= len(unpaged.files):
        assert len(pages) == 1


CHANGES_CASES = [
    ("gen-cdf-partitioned", SPARK_PARQUET_CAPS, "startingVersion=0"),
    ("gen-cdf-late", SPARK_PARQUET_CAPS, "startingVersion=2&includeHistoricalMetadata=true"),
    ("cdf-with-dvs", SPARK_DELTA_CAPS, "startingVersion=0&endingVersion=20"),
    ("cdf-partitioned", SPARK_PARQUET_CAPS, "startingVersion=1&endingVersion=3"),
]


@pytest.mark.parametrize("table,caps,query", CHANGES_CASES, ids=[c[0] for c in CHANGES_CASES])
@pytest.mark.parametrize("k", [1, 4])
def test_changes_pages(env, api, table, caps, query, k):
    unpaged = Page(get_raw(api, changes_url(api, env.coords(table), query), caps))
    pages = walk_changes(api, env.coords(table), query + f"&maxFiles={k}", caps)
    _check_walk(pages, unpaged, k, f"{table} changes {query} maxFiles={k}")
    assert pages[0].version == query.split("startingVersion=")[1].split("&")[0]


def test_paged_urls_are_readable(env, api):
    import requests

    pages = walk_query(api, env.coords("gen-partitioned"), {"predicateHints": [], "maxFiles": 2})
    for p in pages:
        for f in p.files:
            assert requests.get(f["file"]["url"], timeout=30).status_code == 200


# ------------------------------------------------------------------------------ token misuse


def _first_page(env, api, table, body, caps=SPARK_PARQUET_CAPS):
    share, schema, name = env.coords(table)
    p = Page(api.query(share, schema, name, body, headers=spark_headers(caps)))
    assert p.next_token, f"{table}: first page of {body} must have a nextPageToken"
    return p


def test_page_token_garbage(env, api):
    share, schema, name = env.coords("checkpoint-v1-single")
    r = api.query(share, schema, name, {"maxFiles": 1, "pageToken": "not a token!!"})
    assert_error(r, 400, IPV, DECODE, what="garbage page token")


def _tamper(tok):
    mid = len(tok) // 2
    c = tok[mid]
    repl = "A" if c != "A" else "B"
    return tok[:mid] + repl + tok[mid + 1:]


def test_page_token_tampered(env, api):
    body = {"predicateHints": [], "maxFiles": 1}
    p = _first_page(env, api, "checkpoint-v1-single", body)
    share, schema, name = env.coords("checkpoint-v1-single")
    for bad in (_tamper(p.next_token), p.next_token[:-4], p.next_token + "AAAA"):
        r = api.query(share, schema, name, dict(body, pageToken=bad))
        assert_error(r, 400, IPV, None, what=f"tampered page token {bad[:30]}...")


def test_page_token_other_table(env, api):
    body = {"predicateHints": [], "maxFiles": 1}
    p = _first_page(env, api, "checkpoint-v1-single", body)
    share, schema, name = env.coords("gen-checkpointed")
    r = api.query(share, schema, name, dict(body, pageToken=p.next_token))
    assert_error(r, 400, IPV, TABLE_MISMATCH, what="page token of another table")


@pytest.mark.parametrize("change", [{"limitHint": 3}, {"version": 12},
                                    {"jsonPredicateHints": '{"op":"isNull","children":[{"op":"column","name":"id","valueType":"long"}]}'},
                                    {"predicateHints": ["id > 3"]}])
def test_page_token_parameter_mismatch(env, api, change):
    body = {"predicateHints": [], "maxFiles": 1}
    p = _first_page(env, api, "checkpoint-v1-single", body)
    share, schema, name = env.coords("checkpoint-v1-single")
    r = api.query(share, schema, name, dict(body, pageToken=p.next_token, **change))
    assert_error(r, 400, IPV, PARAM_MISMATCH, what=f"next page with changed parameter {change}")


def test_page_token_starting_version_mismatch(env, api):
    body = {"predicateHints": [], "maxFiles": 1, "startingVersion": 0}
    p = _first_page(env, api, "gen-cdf-partitioned", body)
    share, schema, name = env.coords("gen-cdf-partitioned")
    r = api.query(share, schema, name, dict(body, pageToken=p.next_token, startingVersion=1))
    assert_error(r, 400, IPV, PARAM_MISMATCH, what="next page with another startingVersion")
    r = api.query(share, schema, name, dict(body, pageToken=p.next_token, endingVersion=3))
    assert_error(r, 400, IPV, PARAM_MISMATCH, what="next page adding endingVersion")


def test_changes_page_token_parameter_mismatch(env, api):
    coords = env.coords("gen-cdf-partitioned")
    first = Page(get_raw(api, changes_url(api, coords, "startingVersion=0&maxFiles=1")))
    assert first.next_token
    r = get_raw(api, changes_url(api, coords, "startingVersion=1&maxFiles=1&pageToken=" + first.next_token))
    assert_error(r, 400, IPV, PARAM_MISMATCH, what="CDF next page with another startingVersion")
    r = get_raw(api, changes_url(api, coords, "startingVersion=0&includeHistoricalMetadata=true&maxFiles=1&pageToken="
                                 + first.next_token))
    assert_error(r, 400, IPV, PARAM_MISMATCH, what="CDF next page adding includeHistoricalMetadata")


def test_changes_page_token_other_table_and_garbage(env, api):
    first = Page(get_raw(api, changes_url(api, env.coords("gen-cdf-partitioned"), "startingVersion=0&maxFiles=1")))
    r = get_raw(api, changes_url(api, env.coords("gen-cdf-unpartitioned"),
                                 "startingVersion=0&maxFiles=1&pageToken=" + first.next_token))
    assert_error(r, 400, IPV, TABLE_MISMATCH, what="CDF page token on another table")
    r = get_raw(api, changes_url(api, env.coords("gen-cdf-partitioned"), "startingVersion=0&maxFiles=1&pageToken=zzz"))
    assert_error(r, 400, IPV, DECODE, what="garbage CDF page token")


def test_query_page_token_on_changes(env, api):
    """A /query token is not a /changes token (and vice versa)."""
    body = {"predicateHints": [], "maxFiles": 1, "startingVersion": 0}
    q = _first_page(env, api, "gen-cdf-partitioned", body)
    r = get_raw(api, changes_url(api, env.coords("gen-cdf-partitioned"),
                                 "startingVersion=0&maxFiles=1&pageToken=" + q.next_token))
    assert_error(r, 400, IPV, None, what="/query page token used on /changes")
    c = Page(get_raw(api, changes_url(api, env.coords("gen-cdf-partitioned"), "startingVersion=0&maxFiles=1")))
    share, schema, name = env.coords("gen-cdf-partitioned")
    r = api.query(share, schema, name, dict(body, pageToken=c.next_token))
    assert_error(r, 400, IPV, None, what="/changes page token used on /query")


def test_page_token_of_another_recipient(env, api):
    body = {"predicateHints": [], "maxFiles": 1}
    p = _first_page(env, api, "checkpoint-v1-single", body)
    _, _, token = env.new_recipient([MAIN_SHARE], prefix="pager")
    other = env.api(token)
    share, schema, name = env.coords("checkpoint-v1-single")
    r = other.query(share, schema, name, dict(body, pageToken=p.next_token))
    _, msg = assert_error(r, 400, IPV, None, what="page token of another recipient")
    assert DECODE in msg or "does not match" in msg or "mismatch" in msg.lower(), msg


def test_page_token_with_include_refresh_token(env, api):
    body = {"predicateHints": [], "maxFiles": 1}
    p = _first_page(env, api, "checkpoint-v1-single", body)
    share, schema, name = env.coords("checkpoint-v1-single")
    r = api.query(share, schema, name, dict(body, pageToken=p.next_token, includeRefreshToken=True))
    assert_error(r, 400, IPV, "includeRefreshToken must be used in the first page request.")
    r = api.query(share, schema, name, dict(body, pageToken=p.next_token, refreshToken="abc"))
    assert_error(r, 400, IPV, "refreshToken must be used in the first page request.")


@pytest.mark.parametrize("value", ["x", 1.5])
def test_max_files_not_an_int(env, api, value):
    share, schema, name = env.coords("checkpoint-v1-single")
    r = api.query(share, schema, name, {"maxFiles": value})
    assert r.status_code == 400, f"maxFiles={value!r}: {r.status_code} {r.text[:300]}"


def test_changes_max_files_not_a_number(env, api):
    r = get_raw(api, changes_url(api, env.coords("gen-cdf-partitioned"), "startingVersion=0&maxFiles=lots"))
    assert r.status_code == 400, r.text[:300]


# ------------------------------------------------------------------------------ dedicated servers


def _shares(tables, names):
    return [{"name": "s", "schemas": [{"name": "d", "tables": [
        {"name": E.share_table_name(n), "location": tables[n]["path"], "id": table_id(n), "historyShared": True}
        for n in names]}]}]


@pytest.fixture(scope="module")
def small_pages(lakeshare_bin, tables, tmp_path_factory):
    """queryTablePageSizeLimit 2 and queryTablePageTokenTtlMs 300."""
    d = tmp_path_factory.mktemp("pages")
    cfg = srv.write_config(str(d / "cfg.yaml"), _shares(tables, ["checkpoint-v1-single", "gen-cdf-partitioned"]),
                           extra={"queryTablePageSizeLimit": 2, "queryTablePageTokenTtlMs": 300})
    s = srv.start_server(lakeshare_bin, cfg, str(d / "state.db"), ["--allow-anonymous"])
    yield s
    s.stop()


def _anon_api(server):
    from api import Api

    return Api(server.url, None)


def test_page_size_limit_caps_max_files(small_pages):
    api = _anon_api(small_pages)
    coords = ("s", "d", "checkpoint_v1_single")
    unpaged = Page(api.query(*coords, {"predicateHints": []}, headers=spark_headers()))
    pages = walk_query(api, coords, {"predicateHints": [], "maxFiles": 1000})
    _check_walk(pages, unpaged, 2, "queryTablePageSizeLimit=2, maxFiles=1000")
    assert len(pages) >= math.ceil(len(unpaged.files) / 2)


def test_changes_page_size_limit(small_pages):
    api = _anon_api(small_pages)
    coords = ("s", "d", "gen_cdf_partitioned")
    unpaged = Page(get_raw(api, changes_url(api, coords, "startingVersion=0")))
    pages = walk_changes(api, coords, "startingVersion=0&maxFiles=50")
    _check_walk(pages, unpaged, 2, "CDF with queryTablePageSizeLimit=2, maxFiles=50")


def test_page_token_expires(small_pages):
    api = _anon_api(small_pages)
    coords = ("s", "d", "checkpoint_v1_single")
    body = {"predicateHints": [], "maxFiles": 1}
    p = Page(api.query(*coords, body, headers=spark_headers()))
    assert p.next_token
    # the token works while fresh ...
    ok = api.query(*coords, dict(body, pageToken=p.next_token), headers=spark_headers())
    assert ok.status_code == 200, ok.text[:300]
    time.sleep(0.6)  # TTL is 300 ms
    r = api.query(*coords, dict(body, pageToken=p.next_token), headers=spark_headers())
    assert_error(r, 400, IPV, EXPIRED, what="expired page token")


def test_changes_page_token_expires(small_pages):
    api = _anon_api(small_pages)
    coords = ("s", "d", "gen_cdf_partitioned")
    p = Page(get_raw(api, changes_url(api, coords, "startingVersion=0&maxFiles=1")))
    time.sleep(0.6)
    r = get_raw(api, changes_url(api, coords, "startingVersion=0&maxFiles=1&pageToken=" + p.next_token))
    assert_error(r, 400, IPV, EXPIRED, what="expired CDF page token")


# ------------------------------------------------------------------------------ replay counter


@pytest.fixture()
def fresh_server(lakeshare_bin, tables, tmp_path):
    cfg = srv.write_config(str(tmp_path / "cfg.yaml"), _shares(tables, ["checkpoint-v1-single", "gen-cdf-partitioned"]))
    s = srv.start_server(lakeshare_bin, cfg, str(tmp_path / "state.db"), ["--allow-anonymous"])
    yield s
    s.stop()


def test_paging_replays_once_cold(fresh_server):
    api = _anon_api(fresh_server)
    before = metric(fresh_server, "lakeshare_log_replays_total")
    pages = walk_query(api, ("s", "d", "checkpoint_v1_single"), {"predicateHints": [], "maxFiles": 1})
    assert len(pages) >= 7
    after = metric(fresh_server, "lakeshare_log_replays_total")
    assert after - before <= 1, f"a maxFiles=1 walk over {len(pages)} pages replayed the log {after - before:g} times"


def test_paging_replays_zero_when_cached(env, api):
    share, schema, name = env.coords("checkpoint-v1-single")
    assert api.query(share, schema, name, {}).status_code == 200  # warm the cache
    before = metric(env.server, "lakeshare_log_replays_total")
    pages = walk_query(api, env.coords("checkpoint-v1-single"), {"predicateHints": [], "maxFiles": 1})
    after = metric(env.server, "lakeshare_log_replays_total")
    assert len(pages) >= 7
    assert after == before, f"paging a cached table version replayed the log {after - before:g} times"
