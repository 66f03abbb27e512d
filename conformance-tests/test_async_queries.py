"""Async queries (PROTOCOL-NOTES §2.10, contract issue B item 6), replayed as the Spark client does:
submit `POST /query` with `asyncquery=true` and an idempotency key -> one `queryStatus` pending
line; poll `POST .../queries/{queryId}` until the normal result arrives.

A dedicated server runs with LAKESHARE_TEST_ASYNC_QUERY_DELAY_MS (each async execution is delayed,
so the first poll observes `pending`) and asyncQueryMaxConcurrentPerRecipient 2. Expiry uses a
second server with asyncQueryResultTtlSeconds 1. Polling loops have bounded deadlines.
"""
import os
import time
import uuid

import pytest

import server as srv
from api import Api, assert_error, ndjson
from conftest import table_id
from paging import SPARK_DELTA_CAPS, Page, file_key, metric, spark_headers, strip_urls

DELAY_MS = 1500
ASYNC_PARQUET = "responseformat=parquet;asyncquery=true"
ASYNC_DELTA = SPARK_DELTA_CAPS + ";asyncquery=true"
POLL_DEADLINE_S = 30


def _shares(tables):
    names = [("plain", "checkpoint-v1-single"), ("cdf", "gen-cdf-partitioned"), ("dv", "dv-partitioned-checkpoint")]
    return [{"name": "s", "schemas": [{"name": "d", "tables": [
        {"name": n, "location": tables[t]["path"], "id": table_id("async-" + n), "historyShared": True}
        for n, t in names]}]}]


class AsyncEnv:
    """A server plus a way to mint recipients: every test uses fresh recipients, so the per-recipient
    concurrency limit only bites where a test wants it to."""

    def __init__(self, binary, server, state, config, d):
        self.binary, self.server, self.state, self.config, self.d = binary, server, state, config, d
        self.n = 0

    def new_api(self):
        self.n += 1
        name = f"rcpt{self.n}"
        prof = srv.create_recipient(self.binary, self.state, name, ["s"], str(self.d / f"{name}.share"),
                                    endpoint=self.server.url, config=self.config)
        return Api(self.server.url, prof["bearerToken"])


def _start(lakeshare_bin, tables, d, extra):
    cfg = srv.write_config(str(d / "cfg.yaml"), _shares(tables), extra=extra)
    state = str(d / "state.db")
    srv.create_recipient(lakeshare_bin, state, "bootstrap", ["s"], str(d / "bootstrap.share"),
                         endpoint="http://127.0.0.1:9/delta-sharing", config=cfg)
    env = dict(os.environ, LAKESHARE_TEST_ASYNC_QUERY_DELAY_MS=str(DELAY_MS))
    s = srv.start_server(lakeshare_bin, cfg, state, env=env)
    return AsyncEnv(lakeshare_bin, s, state, cfg, d)


@pytest.fixture(scope="module")
def aenv(lakeshare_bin, tables, tmp_path_factory):
    e = _start(lakeshare_bin, tables, tmp_path_factory.mktemp("async"),
               {"asyncQueryMaxConcurrentPerRecipient": 2})
    yield e
    e.server.stop()


@pytest.fixture(scope="module")
def short_ttl(lakeshare_bin, tables, tmp_path_factory):
    e = _start(lakeshare_bin, tables, tmp_path_factory.mktemp("async-ttl"), {"asyncQueryResultTtlSeconds": 1})
    yield e
    e.server.stop()


def _key():
    return "k-" + uuid.uuid4().hex


def _submit(api, table, body, caps=ASYNC_PARQUET):
    return api.query("s", "d", table, body, headers=spark_headers(caps))


def _pending_id(resp, what="submit"):
    assert resp.status_code == 200, f"{what}: {resp.status_code} {resp.text[:500]}"
    objs = ndjson(resp)
    assert len(objs) == 1 and "queryStatus" in objs[0], f"{what}: expected one queryStatus line, got {resp.text[:500]}"
    st = objs[0]["queryStatus"]
    assert st.get("status") == "pending" and st.get("queryId"), f"{what}: {st}"
    assert resp.headers.get("Delta-Table-Version") is not None, f"{what}: Delta-Table-Version header required"
    return st["queryId"]


def _poll(api, table, qid, extra=None, caps=ASYNC_PARQUET):
    body = {"queryId": qid}
    body.update(extra or {})
    return api.post(api.table_path("s", "d", table, f"/queries/{qid}"), body, headers=spark_headers(caps))


def _is_pending(resp, qid):
    if resp.status_code != 200:
        return False
    objs = ndjson(resp)
    if len(objs) == 1 and "queryStatus" in objs[0]:
        st = objs[0]["queryStatus"]
        assert st.get("queryId") == qid, f"poll answered another query id: {st}"
        return st.get("status") == "pending"
    return False


def _poll_until_done(api, table, qid, extra=None, caps=ASYNC_PARQUET):
    """Poll (bounded) until the answer is not `pending`; returns (responses seen pending, final)."""
    deadline = time.monotonic() + POLL_DEADLINE_S
    pending = 0
    while True:
        r = _poll(api, table, qid, extra, caps)
        if not _is_pending(r, qid):
            return pending, r
        pending += 1
        assert time.monotonic() < deadline, f"async query {qid} still pending after {POLL_DEADLINE_S}s"
        time.sleep(0.1)


def test_submit_returns_pending(aenv):
    api = aenv.new_api()
    r = _submit(api, "plain", {"predicateHints": [], "idempotency_key": _key()})
    _pending_id(r)
    assert "asyncquery=true" in r.headers.get("delta-sharing-capabilities", "").lower(), (
        f"response capabilities must echo asyncquery=true: {r.headers.get('delta-sharing-capabilities')!r}")


def test_submit_camel_case_key(aenv):
    api = aenv.new_api()
    _pending_id(_submit(api, "plain", {"predicateHints": [], "idempotencyKey": _key()}), "idempotencyKey spelling")


def test_missing_key_is_400(aenv):
    r = _submit(aenv.new_api(), "plain", {"predicateHints": []})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE", "idempotency_key is required for async query.")


def test_duplicate_key_same_query_single_execution(aenv):
    api = aenv.new_api()
    key = _key()
    before = metric(aenv.server, "lakeshare_async_queries_started_total")
    a = _pending_id(_submit(api, "plain", {"predicateHints": [], "idempotency_key": key}))
    b = _submit(api, "plain", {"predicateHints": [], "idempotency_key": key})
    assert b.status_code == 200, b.text[:300]
    objs = ndjson(b)
    assert objs[0].get("queryStatus", {}).get("queryId") == a or "protocol" in objs[0], (
        f"a retried submission must name the same query (or, if done, serve its result): {b.text[:300]}")
    if "queryStatus" in objs[0]:
        assert objs[0]["queryStatus"]["queryId"] == a
    after = metric(aenv.server, "lakeshare_async_queries_started_total")
    assert after - before == 1, f"two submissions with one key started {after - before:g} executions"


def test_same_key_other_recipient_is_another_query(aenv):
    key = _key()
    a = _pending_id(_submit(aenv.new_api(), "plain", {"predicateHints": [], "idempotency_key": key}))
    b = _pending_id(_submit(aenv.new_api(), "plain", {"predicateHints": [], "idempotency_key": key}))
    assert a != b, "idempotency keys are per recipient"


@pytest.mark.parametrize("table,caps,body", [
    ("plain", ASYNC_PARQUET, {"predicateHints": []}),
    ("dv", ASYNC_DELTA, {"predicateHints": []}),
    ("cdf", ASYNC_PARQUET, {"predicateHints": [], "startingVersion": 1}),
    ("plain", ASYNC_PARQUET, {"predicateHints": [], "version": 10}),
])
def test_poll_to_completion_equals_sync(aenv, table, caps, body):
    api = aenv.new_api()
    qid = _pending_id(_submit(api, table, dict(body, idempotency_key=_key()), caps))
    first = _poll(api, table, qid, caps=caps)
    assert _is_pending(first, qid), (
        f"with a {DELAY_MS} ms execution delay the first poll must be pending: {first.status_code} {first.text[:300]}")
    _, final = _poll_until_done(api, table, qid, caps=caps)
    result = Page(final)
    sync = Page(api.query("s", "d", table, body, headers=spark_headers(caps.replace(";asyncquery=true", ""))))
    assert result.version == sync.version, "Delta-Table-Version of the async result"
    assert result.head_raw == sync.head_raw, "same protocol/metaData as the synchronous query"
    assert [strip_urls(o) for o in result.body] == [strip_urls(o) for o in sync.body], "same file lines"


def test_poll_paginated(aenv):
    api = aenv.new_api()
    table = "plain"
    qid = _pending_id(_submit(api, table, {"predicateHints": [], "idempotency_key": _key()}))
    _, final = _poll_until_done(api, table, qid, extra={"maxFiles": 2})
    pages = [Page(final)]
    while pages[-1].next_token:
        assert len(pages) < 100
        pages.append(Page(_poll(api, table, qid, extra={"maxFiles": 2, "pageToken": pages[-1].next_token})))
    sync = Page(api.query("s", "d", table, {"predicateHints": []}, headers=spark_headers()))
    assert len(pages) >= 4, f"7 files at maxFiles=2 -> at least 4 pages, got {len(pages)}"
    assert all(len(p.files) <= 2 for p in pages)
    assert all(p.head_raw == pages[0].head_raw and p.version == sync.version for p in pages)
    assert sorted(file_key(o) for p in pages for o in p.files) == sorted(file_key(o) for o in sync.files)
    assert "nextPageToken" not in pages[-1].end


def test_poll_snake_case_body(aenv):
    """Reference proto names (query_id) are accepted on the poll body as well."""
    api = aenv.new_api()
    qid = _pending_id(_submit(api, "plain", {"predicateHints": [], "idempotency_key": _key()}))
    r = api.post(api.table_path("s", "d", "plain", f"/queries/{qid}"), {"query_id": qid},
                 headers=spark_headers(ASYNC_PARQUET))
    assert r.status_code == 200, r.text[:300]


def test_unknown_query_id_404(aenv):
    api = aenv.new_api()
    r = _poll(api, "plain", "no-such-query-" + uuid.uuid4().hex)
    assert r.status_code == 404, f"unknown query id: {r.status_code} {r.text[:300]}"


def test_other_recipients_query_id_404(aenv):
    qid = _pending_id(_submit(aenv.new_api(), "plain", {"predicateHints": [], "idempotency_key": _key()}))
    r = _poll(aenv.new_api(), "plain", qid)
    assert r.status_code == 404, f"another recipient's query id must be 404: {r.status_code} {r.text[:300]}"


def test_query_id_on_other_table_404(aenv):
    api = aenv.new_api()
    qid = _pending_id(_submit(api, "plain", {"predicateHints": [], "idempotency_key": _key()}))
    r = _poll(api, "cdf", qid)
    assert r.status_code == 404, f"query id polled under another table: {r.status_code} {r.text[:300]}"


def test_concurrency_limit_429(aenv):
    api = aenv.new_api()
    ids = [_pending_id(_submit(api, "plain", {"predicateHints": [], "idempotency_key": _key()})) for _ in range(2)]
    r = _submit(api, "plain", {"predicateHints": [], "idempotency_key": _key()})
    assert r.status_code == 429, f"third concurrent async query (limit 2): {r.status_code} {r.text[:300]}"
    ra = r.headers.get("Retry-After")
    assert ra is not None and ra.strip().isdigit(), f"429 needs a Retry-After header (seconds), got {ra!r}"
    # once they are done, new submissions are accepted again
    for qid in ids:
        _poll_until_done(api, "plain", qid)
    _pending_id(_submit(api, "plain", {"predicateHints": [], "idempotency_key": _key()}), "after the others finished")


def test_failed_query_reported(aenv):
    """A query that cannot succeed: refused at submission (400) or reported as failed when polled."""
    api = aenv.new_api()
    r = _submit(api, "plain", {"predicateHints": [], "version": 999, "idempotency_key": _key()})
    if r.status_code == 400:
        assert_error(r, 400)
        return
    qid = _pending_id(r)
    _, final = _poll_until_done(api, "plain", qid)
    if final.status_code == 200:
        objs = ndjson(final)
        assert len(objs) == 1 and objs[0].get("queryStatus", {}).get("status") == "failed", final.text[:500]
        assert objs[0]["queryStatus"].get("errorMessage"), "failed status carries an errorMessage"
        assert objs[0]["queryStatus"]["queryId"] == qid
    else:
        assert final.status_code == 400, f"failed async query: {final.status_code} {final.text[:300]}"


def test_result_expires(short_ttl):
    api = short_ttl.new_api()
    qid = _pending_id(_submit(api, "plain", {"predicateHints": [], "idempotency_key": _key()}))
    _, final = _poll_until_done(api, "plain", qid)
    assert final.status_code == 200 and "protocol" in ndjson(final)[0]
    deadline = time.monotonic() + 5
    while True:
        r = _poll(api, "plain", qid)
        if r.status_code == 404:
            break
        assert r.status_code == 200, r.text[:300]
        assert time.monotonic() < deadline, "async result with asyncQueryResultTtlSeconds=1 still served after 5 s"
        time.sleep(0.2)


def test_sync_query_unaffected_without_capability(aenv):
    """Without asyncquery=true the same body (even with an idempotency key) is answered synchronously."""
    api = aenv.new_api()
    r = api.query("s", "d", "plain", {"predicateHints": [], "idempotency_key": _key()}, headers=spark_headers())
    p = Page(r)
    assert p.files and "queryStatus" not in r.text
