"""Two `lakeshare serve` replicas on one PostgreSQL catalog.

Any replica serves any request of a recipient's session: a file URL signed by one downloads from
the other, page 2 of a query paged on one is served by the other, an async query submitted to
one is polled to completion on the other, and a revocation through the shared catalog is
refused by both on the next request.

Needs LAKESHARE_TEST_PG_URL (scripts/test.sh starts a private PostgreSQL cluster and sets it).
"""
import json
import os
import shutil
import subprocess
import time
import uuid

import pytest
import requests

import server as srv
from api import Api, file_lines, ndjson

TABLE = "gen-partitioned"


@pytest.fixture(scope="module")
def pg_database():
    admin = os.environ.get("LAKESHARE_TEST_PG_URL")
    assert admin, ("LAKESHARE_TEST_PG_URL is not set: run the suite through scripts/test.sh, which "
                   "starts a private PostgreSQL cluster (this test never skips)")
    psql = shutil.which("psql")
    assert psql, "psql (PostgreSQL client) is required to create the test database"
    name = "lakeshare_replicas_" + uuid.uuid4().hex[:12]
    subprocess.run([psql, admin, "-q", "-c", f"CREATE DATABASE {name}"], check=True,
                   stdout=subprocess.DEVNULL)
    yield admin.rsplit("/", 1)[0] + "/" + name


@pytest.fixture(scope="module")
def replicas(lakeshare_bin, tables, tmp_path_factory, pg_database):
    work = tmp_path_factory.mktemp("replicas")
    shares = [{"name": "s", "schemas": [{"name": "d", "tables": [
        {"name": "t", "location": tables[TABLE]["path"], "historyShared": True}]}]}]
    cfg = srv.write_config(str(work / "config.yaml"), shares)
    profile = str(work / "r.share")
    srv.lakeshare(lakeshare_bin, "recipient", "create", "replica-reader", "--share", "s",
                  "--config", cfg, "--state", pg_database, "--endpoint", "http://placeholder",
                  "--profile", profile)
    token = json.load(open(profile))["bearerToken"]
    env = dict(os.environ, LAKESHARE_TEST_ASYNC_QUERY_DELAY_MS="500")
    a = srv.start_server(lakeshare_bin, cfg, pg_database, env=env)
    b = srv.start_server(lakeshare_bin, cfg, pg_database, env=env)
    try:
        yield {"a": Api(a.url, token), "b": Api(b.url, token), "cfg": cfg, "state": pg_database,
               "bin": lakeshare_bin}
    finally:
        a.stop()
        b.stop()


def _end_action(lines):
    assert lines and "endStreamAction" in lines[-1], f"last line is not an endStreamAction: {lines[-1:]}"
    return lines[-1]["endStreamAction"]


def test_file_url_signed_by_one_replica_downloads_from_the_other(replicas):
    a, b = replicas["a"], replicas["b"]
    r = a.query("s", "d", "t", {})
    assert r.status_code == 200, r.text
    files = file_lines(ndjson(r))
    assert files, "the table has files"
    url = files[0]["url"]
    assert url.startswith(a.endpoint), url
    on_b = b.endpoint + url[len(a.endpoint):]
    got = requests.get(on_b, timeout=30)
    assert got.status_code == 200, f"replica B refused a URL signed by A: {got.status_code} {got.text[:200]}"
    assert len(got.content) == files[0]["size"]


def test_page_two_on_the_other_replica(replicas):
    a, b = replicas["a"], replicas["b"]
    first = ndjson(a.query("s", "d", "t", {"maxFiles": 1}))
    token = _end_action(first).get("nextPageToken")
    assert token, "a one-file page of a multi-file table has a next page"
    second = b.query("s", "d", "t", {"maxFiles": 1, "pageToken": token})
    assert second.status_code == 200, second.text
    lines = ndjson(second)
    assert lines[:2] == first[:2], "head lines are identical on every page, on every replica"
    assert file_lines(lines) and file_lines(lines)[0]["id"] != file_lines(first)[0]["id"]


def test_async_query_submitted_to_one_is_polled_on_the_other(replicas):
    a, b = replicas["a"], replicas["b"]
    key = "replicas-" + uuid.uuid4().hex
    caps = {"delta-sharing-capabilities": "responseformat=parquet;asyncquery=true"}
    sub = a.post(a.table_path("s", "d", "t", "/query"), {"idempotency_key": key}, headers=caps)
    assert sub.status_code == 200, sub.text
    qid = ndjson(sub)[0]["queryStatus"]["queryId"]
    again = b.post(b.table_path("s", "d", "t", "/query"), {"idempotency_key": key}, headers=caps)
    assert ndjson(again)[0]["queryStatus"]["queryId"] == qid, "the same key on another replica is deduplicated"
    deadline = time.monotonic() + 20
    while True:
        poll = b.post(b.table_path("s", "d", "t", f"/queries/{qid}"), {"queryId": qid})
        assert poll.status_code == 200, poll.text
        lines = ndjson(poll)
        if "queryStatus" not in lines[0]:
            break
        assert lines[0]["queryStatus"]["status"] == "pending", lines[0]
        assert time.monotonic() < deadline, "async query did not finish in 20 s"
        time.sleep(0.1)
    sync = file_lines(ndjson(a.query("s", "d", "t", {})))
    assert sorted(f["id"] for f in file_lines(lines)) == sorted(f["id"] for f in sync)


def test_revocation_is_seen_by_both_replicas(replicas):
    a, b = replicas["a"], replicas["b"]
    assert a.get("/shares").status_code == 200 and b.get("/shares").status_code == 200
    srv.lakeshare(replicas["bin"], "recipient", "revoke", "replica-reader", "--state", replicas["state"])
    for api in (a, b):
        r = api.get("/shares")
        assert r.status_code == 401, f"{api.endpoint}: {r.status_code} after revocation"
