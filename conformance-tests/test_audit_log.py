"""The tamper-evident audit log (black box: HTTP, the state database, `lakeshare audit ...`).

Contract under test:

* every HTTP request to `lakeshare serve` (recipient routes, /files, public activation routes,
  unmatched paths, /_lakeshare/metrics, the admin API) gives exactly one event, committed before
  the response is sent; the response's `x-request-id` is the event's `request_id`;
* events are stored append-only in `audit_events`, one hash chain per serving process, hashed
  with SHA-256 over the NUL-terminated parts "lakeshare-audit-v1", writer, seq, prev_hash, body;
  `audit_checkpoints` hold Ed25519 signatures over chain heads (every `auditCheckpointEvery`
  events, every 30 s, at SIGTERM) -- the formulas are recomputed here independently;
* `lakeshare audit verify [--public-key]` catches plain edits with the chain alone, and edits
  made "the hard way" (triggers dropped, every later hash recomputed) only with the signed
  checkpoints; `lakeshare audit export` gives the events back as JSON lines or CSV;
* no secret (bearer token, admin token, page/refresh token, activation code, URL signature)
  is ever written to the state database or the server log;
* `auditFailClosed` (default true): an event that cannot be committed turns the answer into 503.

The audit store is made to fail with a BEFORE INSERT trigger added to the live SQLite database
(`chmod` cannot make SQLite fail for root, who ignores file permissions, and a competing write
lock only fails after the store's 10 s busy timeout).

The PostgreSQL tests need LAKESHARE_TEST_PG_URL (scripts/test.sh starts a private cluster) and
`psql`; they never skip.
"""
import base64
import csv
import datetime as dt
import io
import json
import os
import re
import signal
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Callable, Optional
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

import audit_support as AS
import server as srv
from api import file_lines, ndjson
from conftest import REPO_ROOT

HTTP_TIMEOUT = 30
T = "/shares/{share}/schemas/{schema}/tables/{table}"
ASYNC_CAPS = {"delta-sharing-capabilities": "responseformat=parquet;asyncquery=true"}

# The recipient routes, copied from `ROUTES` in src/server/router.rs (test_routes_copy_matches_router_rs
# fails when a route is added there, so that it gets audit cases here).
ROUTES = [
    ("GET", "/shares"),
    ("GET", "/shares/{share}"),
    ("GET", "/shares/{share}/schemas"),
    ("GET", "/shares/{share}/schemas/{schema}/tables"),
    ("GET", "/shares/{share}/all-tables"),
    ("HEAD", "/shares/{share}/schemas/{schema}/tables/{table}"),
    ("GET", "/shares/{share}/schemas/{schema}/tables/{table}/version"),
    ("GET", "/shares/{share}/schemas/{schema}/tables/{table}/metadata"),
    ("POST", "/shares/{share}/schemas/{schema}/tables/{table}/query"),
    ("GET", "/shares/{share}/schemas/{schema}/tables/{table}/changes"),
    ("POST", "/shares/{share}/schemas/{schema}/tables/{table}/queries/{queryId}"),
    ("POST", "/shares/{share}/schemas/{schema}/tables/{table}/temporary-table-credentials"),
    ("GET", "/files/{file}/{name}"),
    ("HEAD", "/files/{file}/{name}"),
]

# Outcomes every route must be exercised with. No 404 for /shares (no share in the path); a share
# can be unknown for /shares/{share} but no parameter makes it 400; no 200 for
# temporary-table-credentials (it needs a cloud credential service, see test_directory_access.py);
# file URLs carry no bearer token (a bad URL is 403).
REQUIRED = {
    ("GET", "/shares"): {200, 401, 400},
    ("GET", "/shares/{share}"): {200, 401, 404},
    ("GET", "/shares/{share}/schemas"): {200, 401, 404, 400},
    ("GET", "/shares/{share}/schemas/{schema}/tables"): {200, 401, 404, 400},
    ("GET", "/shares/{share}/all-tables"): {200, 401, 404, 400},
    ("HEAD", T): {200, 401, 404},
    ("GET", T + "/version"): {200, 401, 404, 400},
    ("GET", T + "/metadata"): {200, 401, 404, 400},
    ("POST", T + "/query"): {200, 401, 404, 400},
    ("GET", T + "/changes"): {200, 401, 404, 400},
    ("POST", T + "/queries/{queryId}"): {200, 401, 404, 400},
    ("POST", T + "/temporary-table-credentials"): {401, 404, 400},
    ("GET", "/files/{file}/{name}"): {200, 403},
    ("HEAD", "/files/{file}/{name}"): {200, 403},
}

# Field order of the canonical event body.
BODY_ORDER = ["id", "at_ms", "request_id", "kind", "method", "route", "principal", "token_prefix", "client_ip",
              "user_agent", "share", "schema", "table", "table_version", "params", "status", "error_code",
              "duration_ms", "files", "bytes", "incomplete"]


def now_ms():
    return int(time.time() * 1000)


def iso(ms):
    t = dt.datetime.fromtimestamp(ms / 1000, tz=dt.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (ms % 1000)


def parse_router_routes(text):
    m = re.search(r"pub const ROUTES: &\[\(&str, &str\)\] = &\[(.*?)\n\];", text, re.S)
    assert m, "`pub const ROUTES` not found in src/server/router.rs"
    return re.findall(r'\(\s*"([A-Z]+)",\s*"([^"]+)",?\s*\)', m.group(1))


def test_routes_copy_matches_router_rs():
    with open(REPO_ROOT / "src" / "server" / "router.rs") as fh:
        parsed = parse_router_routes(fh.read())
    assert parsed, "no routes parsed from src/server/router.rs"
    assert parsed == ROUTES, (
        "src/server/router.rs ROUTES changed: update ROUTES, REQUIRED and the audit cases in test_audit_log.py.\n"
        f"router.rs: {parsed}\ncopy here: {ROUTES}")


# ================================================================================ per-request events


class Ctx:
    """The module's server (`--admin-port 0`) and request helpers."""

    def __init__(self, s):
        self.s = s
        self.alice_prefix = s.token_prefix("alice")
        self.alice_id = s.recipient_id("alice")
        self.n = 0

    def fresh(self, prefix):
        self.n += 1
        return f"{prefix}{self.n}"

    def call(self, method, path, who="alice", where="endpoint", params=None, body=None, data=None, headers=None):
        base = {"endpoint": self.s.server.url, "origin": self.s.server.base, "admin": self.s.admin_url}[where]
        h = {"User-Agent": AS.UA}
        token = {"alice": self.s.tokens["alice"], "admin": self.s.admin_token, None: None}.get(who, who)
        if token:
            h["Authorization"] = f"Bearer {token}"
        if body is not None:
            data = json.dumps(body)
            h["Content-Type"] = "application/json"
        h.update(headers or {})
        return requests.request(method, base + path, params=params, data=data, headers=h, timeout=HTTP_TIMEOUT,
                                allow_redirects=False)

    def url(self, method, url):
        return requests.request(method, url, headers={"User-Agent": AS.UA}, timeout=HTTP_TIMEOUT)

    # -- things some requests need first (their own events happen before the measured request)
    def signed_url(self):
        r = self.call("POST", "/shares/s/schemas/d/tables/t/query", body={})
        assert r.status_code == 200, r.text[:300]
        return file_lines(ndjson(r))[0]["url"]

    def page_token(self):
        r = self.call("POST", "/shares/s/schemas/d/tables/t/query", body={"maxFiles": 1})
        assert r.status_code == 200, r.text[:300]
        tok = ndjson(r)[-1]["endStreamAction"].get("nextPageToken")
        assert tok, "a one-file page of a multi-file table has a next page"
        return tok

    def async_query(self):
        r = self.call("POST", "/shares/s/schemas/d/tables/t/query", body={"idempotency_key": uuid.uuid4().hex},
                      headers=ASYNC_CAPS)
        assert r.status_code == 200, r.text[:300]
        return ndjson(r)[0]["queryStatus"]["queryId"]

    def activation_code(self):
        r = self.call("POST", "/api/2.1/unity-catalog/recipients", who="admin", where="admin",
                      body={"name": self.fresh("act"), "authentication_type": "TOKEN"})
        assert r.status_code == 200, r.text[:300]
        return urlsplit(r.json()["tokens"][0]["activation_url"]).path.rstrip("/").rsplit("/", 1)[-1]

    def redeemed_code(self):
        code = self.activation_code()
        r = self.call("GET", f"/api/2.1/unity-catalog/public/data_sharing_activation/{code}", who=None, where="origin",
                      headers={"Accept": "application/json"})
        assert r.status_code == 200, r.text[:300]
        return code


def tampered(url):
    m = re.search(r"([?&]sig=)([0-9a-fA-F]+)", url)
    assert m, f"signed URL without sig=: {url}"
    sig = m.group(2)
    return url.replace(m.group(0), m.group(1) + sig[:-1] + ("0" if sig[-1] != "0" else "1"))


@dataclass
class Case:
    route: str  # expected route template, or "unmatched"
    method: str
    status: int
    code: Optional[str]  # expected error code (None for a success)
    send: Callable
    prepare: Optional[Callable] = None
    who: Optional[str] = "alice"  # expected principal: "alice", "file", "admin" or None
    at: Optional[tuple] = ("s", "d", "t")  # share/schema/table of the path (None: do not check)
    params: Optional[dict] = None  # the exact recorded params, when checked
    label: str = ""
    listener: str = "recipient"
    route_any: tuple = ()  # alternative acceptable route labels (documented below)
    kind_any: tuple = ()
    covers: Optional[tuple] = None  # (method, template) of ROUTES this case counts for

    @property
    def id(self):
        return f"{self.method} {self.route} {self.status}{' ' + self.label if self.label else ''}"


def R(method, path, **kw):
    return lambda c, _p: c.call(method, path, **kw)


def _cases():
    tp = "/shares/{}/schemas/{}/tables/{}"
    out = []

    def add(route, method, status, code, send, **kw):
        kw.setdefault("covers", (method, route) if (method, route) in REQUIRED else None)
        out.append(Case(route, method, status, code, send, **kw))

    U, NF, IPV, MAL = "UNAUTHENTICATED", "RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "MALFORMED_REQUEST"
    # ---- listings
    add("/shares", "GET", 200, None, R("GET", "/shares", params={"maxResults": 10}), at=(None, None, None),
        params={"maxResults": "10"})
    add("/shares", "GET", 401, U, R("GET", "/shares", who=None), who=None, at=(None, None, None))
    add("/shares", "GET", 400, IPV, R("GET", "/shares", params={"maxResults": -1}), at=(None, None, None),
        params={"maxResults": "-1"})
    add("/shares", "GET", 400, IPV, R("GET", "/shares", params={"pageToken": "not-a-page-token"}),
        at=(None, None, None), params={"pageToken": "present"}, label="pageToken")
    add("/shares/{share}", "GET", 200, None, R("GET", "/shares/s"), at=("s", None, None))
    add("/shares/{share}", "GET", 401, U, R("GET", "/shares/s", who=None), who=None, at=("s", None, None))
    add("/shares/{share}", "GET", 404, NF, R("GET", "/shares/other"), at=("other", None, None), label="ungranted")
    for route, path in [("/shares/{share}/schemas", "/shares/{}/schemas"),
                        ("/shares/{share}/schemas/{schema}/tables", "/shares/{}/schemas/d/tables"),
                        ("/shares/{share}/all-tables", "/shares/{}/all-tables")]:
        at = ("s", "d" if "{schema}" in route else None, None)
        add(route, "GET", 200, None, R("GET", path.format("s")), at=at)
        add(route, "GET", 401, U, R("GET", path.format("s"), who=None), who=None, at=at)
        add(route, "GET", 404, NF, R("GET", path.format("other")), at=("other",) + at[1:], label="ungranted")
        add(route, "GET", 400, IPV, R("GET", path.format("s"), params={"maxResults": "abc"}), at=at,
            params={"maxResults": "abc"})
    # ---- table routes
    add(T, "HEAD", 200, None, R("HEAD", tp.format("s", "d", "t")))
    add(T, "HEAD", 401, U, R("HEAD", tp.format("s", "d", "t"), who=None), who=None)
    add(T, "HEAD", 404, NF, R("HEAD", tp.format("other", "d", "t")), at=("other", "d", "t"), label="ungranted")
    v = T + "/version"
    add(v, "GET", 200, None, R("GET", tp.format("s", "d", "t") + "/version"))
    add(v, "GET", 200, None, R("GET", tp.format("s", "d", "t") + "/version",
                               params={"startingTimestamp": "2000-01-01T00:00:00Z"}),
        params={"startingTimestamp": "2000-01-01T00:00:00Z"}, label="startingTimestamp")
    add(v, "GET", 401, U, R("GET", tp.format("s", "d", "t") + "/version", who=None), who=None)
    add(v, "GET", 404, NF, R("GET", tp.format("other", "d", "t") + "/version"), at=("other", "d", "t"),
        label="ungranted")
    add(v, "GET", 400, IPV, R("GET", tp.format("s", "d", "t") + "/version", params={"startingTimestamp": "nope"}),
        params={"startingTimestamp": "nope"})
    m = T + "/metadata"
    add(m, "GET", 200, None, R("GET", tp.format("s", "d", "t") + "/metadata"))
    add(m, "GET", 401, U, R("GET", tp.format("s", "d", "t") + "/metadata", who=None), who=None)
    add(m, "GET", 404, NF, R("GET", tp.format("s", "d", "nosuchtable") + "/metadata"), at=("s", "d", "nosuchtable"),
        label="unknown table")
    add(m, "GET", 400, IPV, R("GET", tp.format("s", "d", "t") + "/metadata", params={"version": "abc"}),
        params={"version": "abc"})
    q = T + "/query"
    qp = tp.format("s", "d", "t") + "/query"
    add(q, "POST", 200, None, R("POST", qp, body={"maxFiles": 1, "jsonPredicateHints": "{\"op\":\"column\"}"}),
        params={"maxFiles": "1", "jsonPredicateHints": "present"})
    add(q, "POST", 200, None, lambda c, tok: c.call("POST", qp, body={"maxFiles": 1, "pageToken": tok}),
        prepare=lambda c: c.page_token(), params={"maxFiles": "1", "pageToken": "present"}, label="page 2")
    add(q, "POST", 401, U, R("POST", qp, who=None, body={}), who=None)
    add(q, "POST", 404, NF, R("POST", tp.format("other", "d", "t") + "/query", body={}), at=("other", "d", "t"),
        label="ungranted")
    add(q, "POST", 400, IPV, R("POST", qp, body={"version": -1}), params={"version": "-1"})
    add(q, "POST", 400, MAL, R("POST", qp, data="{not json", headers={"Content-Type": "application/json"}),
        label="malformed")
    ch = T + "/changes"
    add(ch, "GET", 200, None, R("GET", tp.format("s", "d", "c") + "/changes", params={"startingVersion": 0}),
        at=("s", "d", "c"), params={"startingVersion": "0"})
    add(ch, "GET", 401, U, R("GET", tp.format("s", "d", "c") + "/changes", who=None, params={"startingVersion": 0}),
        who=None, at=("s", "d", "c"))
    add(ch, "GET", 404, NF, R("GET", tp.format("other", "d", "t") + "/changes", params={"startingVersion": 0}),
        at=("other", "d", "t"), label="ungranted")
    add(ch, "GET", 400, IPV, R("GET", tp.format("s", "d", "c") + "/changes"), at=("s", "d", "c"))
    aq = T + "/queries/{queryId}"
    add(aq, "POST", 200, None,
        lambda c, qid: c.call("POST", tp.format("s", "d", "t") + f"/queries/{qid}", body={"queryId": qid}),
        prepare=lambda c: c.async_query(), params={"queryId": "present"}, label="poll")
    add(aq, "POST", 401, U, R("POST", tp.format("s", "d", "t") + "/queries/q1", who=None, body={}), who=None)
    add(aq, "POST", 404, NF, R("POST", tp.format("s", "d", "t") + "/queries/nosuchquery", body={}),
        label="unknown query")
    add(aq, "POST", 404, NF, R("POST", tp.format("other", "d", "t") + "/queries/q1", body={}),
        at=("other", "d", "t"), label="ungranted")
    add(aq, "POST", 400, MAL, R("POST", tp.format("s", "d", "t") + "/queries/q1", data="{bad",
                                headers={"Content-Type": "application/json"}))
    tc = T + "/temporary-table-credentials"
    add(tc, "POST", 400, IPV, R("POST", tp.format("s", "d", "t") + "/temporary-table-credentials", body={}),
        label="url-only table")
    add(tc, "POST", 401, U, R("POST", tp.format("s", "d", "t") + "/temporary-table-credentials", who=None, body={}),
        who=None)
    add(tc, "POST", 404, NF, R("POST", tp.format("other", "d", "t") + "/temporary-table-credentials", body={}),
        at=("other", "d", "t"), label="ungranted")
    # ---- file downloads (the signed URL is the credential; the event names the recipient id)
    for method in ("GET", "HEAD"):
        add("/files/{file}/{name}", method, 200, None, lambda c, url, m=method: c.url(m, url),
            prepare=lambda c: c.signed_url(), who="file", at=(None, None, None))
        add("/files/{file}/{name}", method, 403, "PERMISSION_DENIED",
            lambda c, url, m=method: c.url(m, tampered(url)), prepare=lambda c: c.signed_url(), who=None,
            at=(None, None, None), label="tampered sig")
    # ---- unmatched paths: every one is audited, labelled `unmatched`
    for path, where, label in [("/nope", "endpoint", "under prefix"), ("/nope", "origin", "at root"),
                               ("/shares/", "endpoint", "trailing slash"),
                               ("/delta-sharingshares", "origin", "prefix without separator"),
                               ("/files/x/y", "origin", "file path outside the prefix")]:
        add("unmatched", "GET", 404, NF, R("GET", path, where=where, who=None), who=None, at=(None, None, None),
            label=label)
    # a wrong method is answered with a JSON protocol error too (naming the allowed methods)
    add("unmatched", "DELETE", 405, "MALFORMED_REQUEST", R("DELETE", "/shares", who=None), who=None,
        at=(None, None, None), label="method not allowed")
    # probes and scrapes (/healthz, /readyz, /_lakeshare/metrics, admin /metrics) are not data access
    # and are not audited: see test_probes_and_scrapes_are_not_audited
    # ---- public activation routes (on the recipient listener, outside the prefix)
    info = "/api/2.1/unity-catalog/public/data_sharing_activation_info/{code}"
    redeem = "/api/2.1/unity-catalog/public/data_sharing_activation/{code}"
    add(info, "GET", 200, None, lambda c, code: c.call("GET", info.format(code=code), who=None, where="origin"),
        prepare=lambda c: c.activation_code(), who=None, at=(None, None, None))
    add(info, "GET", 404, NF, R("GET", info.format(code="unknowncode"), who=None, where="origin"), who=None,
        at=(None, None, None))
    JSON = {"Accept": "application/json"}
    add(redeem, "GET", 200, None, lambda c, code: c.call("GET", redeem.format(code=code), who=None, where="origin",
                                                         headers=JSON),
        prepare=lambda c: c.activation_code(), who=None, at=(None, None, None))
    add(redeem, "GET", 404, NF, lambda c, code: c.call("GET", redeem.format(code=code), who=None, where="origin",
                                                       headers=JSON),
        prepare=lambda c: c.redeemed_code(), who=None, at=(None, None, None), label="already redeemed")
    add(redeem, "GET", 200, None, lambda c, code: c.call("GET", redeem.format(code=code), who=None, where="origin",
                                                         headers={"Accept": "text/html"}),
        prepare=lambda c: c.activation_code(), who=None, at=(None, None, None), label="landing page")
    add(redeem, "HEAD", 200, None, lambda c, code: c.call("HEAD", redeem.format(code=code), who=None, where="origin"),
        prepare=lambda c: c.activation_code(), who=None, at=(None, None, None), label="never redeems")
    add(redeem, "POST", 200, None, lambda c, code: c.call("POST", redeem.format(code=code), who=None, where="origin"),
        prepare=lambda c: c.activation_code(), who=None, at=(None, None, None), label="download")
    # ---- admin API (its own listener)
    A = "/api/2.1/unity-catalog"
    add(A + "/shares", "GET", 200, None, R("GET", A + "/shares", who="admin", where="admin"), who="admin", at=None,
        listener="admin")
    add(A + "/shares", "GET", 401, U, R("GET", A + "/shares", who=None, where="admin"), who=None, at=None,
        listener="admin", label="no token")
    add(A + "/shares", "GET", 401, U, R("GET", A + "/shares", who="alice", where="admin"), who=None, at=None,
        listener="admin", label="recipient token")
    add(A + "/recipients", "POST", 200, None,
        lambda c, _p: c.call("POST", A + "/recipients", who="admin", where="admin",
                             body={"name": c.fresh("adm"), "authentication_type": "TOKEN"}),
        who="admin", at=None, listener="admin")
    add(A + "/recipients/{name}", "GET", 404, NF, R("GET", A + "/recipients/nobody", who="admin", where="admin"),
        who="admin", at=None, listener="admin")
    add("unmatched", "GET", 404, NF, R("GET", A + "/nope", who="admin", where="admin"), who=None, at=None,
        listener="admin", kind_any=("admin",), label="admin listener")
    return out


CASES = _cases()


def expected_kind(case):
    if case.listener == "admin" and case.route != "unmatched":
        return "admin"
    r = case.route
    if r == "unmatched":
        return "unmatched"
    if r.startswith("/files/"):
        return "file"
    if "data_sharing_activation" in r:
        return "activation"
    if r.endswith("/query"):
        return "query"
    if r.endswith("/changes"):
        return "changes"
    if "/queries/" in r:
        return "async_query"
    if r.endswith("/metadata"):
        return "metadata"
    if r.endswith("/version") or r == T:
        return "version"
    if r.endswith("/temporary-table-credentials"):
        return "temporary_credentials"
    return "list"


def test_every_route_has_audit_cases():
    assert set(REQUIRED) == set(ROUTES), "REQUIRED must name exactly the routes of ROUTES"
    missing = {}
    for route in ROUTES:
        have = {c.status for c in CASES if c.covers == route}
        need = REQUIRED[route] - have
        if need:
            missing[route] = sorted(need)
    assert not missing, f"routes without audit cases for these statuses: {missing}"


@pytest.fixture(scope="module")
def ctx(lakeshare_bin, tables, tmp_path_factory):
    s = AS.AuditServer(lakeshare_bin, tmp_path_factory.mktemp("audit-routes"), tables, admin=True)
    try:
        yield Ctx(s)
    finally:
        s.stop()


def _response_error_code(resp):
    if not resp.content:
        return None
    try:
        body = resp.json()
    except ValueError:
        return None
    if isinstance(body, dict):
        return body.get("errorCode", body.get("error_code"))
    return None


def _assert_body_order(ev, raw):
    keys = list(ev)
    unknown = [k for k in keys if k not in BODY_ORDER]
    assert not unknown, f"unexpected event fields {unknown}: {raw}"
    pos = [BODY_ORDER.index(k) for k in keys]
    assert pos == sorted(pos), f"event fields out of canonical order: {keys}"
    assert raw == json.dumps(ev, separators=(",", ":"), ensure_ascii=False), f"body is not compact JSON: {raw}"


def test_streamed_answers_record_files_and_bytes_vended(ctx):
    """A query's event is written when its body ends and counts the files (and their bytes) whose
    URLs the body handed out."""
    r = ctx.s.api("alice").query("s", "d", "t", {})
    assert r.status_code == 200
    lines = [json.loads(l) for l in r.text.splitlines() if l.strip()]
    files = [l["file"] for l in lines if "file" in l]
    rid = r.headers["x-request-id"]
    ev = next(json.loads(e["body"]) for e in ctx.s.events() if json.loads(e["body"])["request_id"] == rid)
    assert ev["files"] == len(files) > 0, ev
    assert ev["bytes"] == sum(int(f["size"]) for f in files), ev
    assert "incomplete" not in ev


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/_lakeshare/metrics"])
def test_probes_and_scrapes_are_not_audited(ctx, path):
    origin = ctx.s.server.base
    before = ctx.s.events()
    r = requests.get(origin + path, timeout=HTTP_TIMEOUT)
    assert r.status_code == 200, (path, r.status_code, r.text[:200])
    assert ctx.s.events() == before, f"{path} must not add audit events"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_request_gives_one_event(ctx, case):
    prep = case.prepare(ctx) if case.prepare else None
    before = ctx.s.events()
    t0 = now_ms()
    resp = case.send(ctx, prep)
    t1 = now_ms()
    after = ctx.s.events()  # read right after the response: the event was committed before it was sent
    assert resp.status_code == case.status, f"{case.id}: got {resp.status_code}: {resp.text[:300]}"
    rid = resp.headers.get("x-request-id")
    assert rid, f"{case.id}: the response has no x-request-id header"
    assert len(after) == len(before) + 1, (
        f"{case.id}: {len(after) - len(before)} audit events were added for one request (request id {rid})")
    seen = {(e["writer"], e["seq"]) for e in before}
    new = [e for e in after if (e["writer"], e["seq"]) not in seen]
    assert len(new) == 1, f"{case.id}: rows changed instead of one being appended"
    rec = new[0]
    assert [e for e in after if (e["writer"], e["seq"]) in seen] == before, "earlier records must not change"
    # the chain: one writer, next position, linked, hash by the documented formula
    assert {e["writer"] for e in after} == {rec["writer"]}, "one serving process is one chain"
    prev = max(before, key=lambda e: e["seq"]) if before else None
    assert rec["seq"] == (prev["seq"] + 1 if prev else 1)
    assert rec["prev_hash"] == (prev["hash"] if prev else AS.GENESIS)
    assert rec["hash"] == AS.link_hash(rec["writer"], rec["seq"], rec["prev_hash"], rec["body"]), (
        "hash != SHA-256 over the NUL-terminated parts lakeshare-audit-v1, writer, seq, prev_hash, body")
    raw = rec["body"]
    ev = json.loads(raw)
    _assert_body_order(ev, raw)
    # indexed columns are copies of the body
    assert rec["at"] == ev["at_ms"]
    assert rec["recipient"] == ev.get("principal")
    assert rec["share_name"] == ev.get("share") and rec["table_name"] == ev.get("table")
    # what happened
    assert ev["request_id"] == rid, f"x-request-id {rid} != event request_id {ev['request_id']}"
    assert uuid.UUID(ev["id"]) and ev["id"] != rid
    assert ev["method"] == case.method
    if case.route_any:
        assert ev["route"] in (case.route,) + case.route_any, f"{case.id}: route {ev['route']!r}"
    else:
        assert ev["route"] == case.route, f"{case.id}: route {ev['route']!r}, event {raw}"
        kinds = (expected_kind(case),) + case.kind_any
        assert ev["kind"] in kinds, f"{case.id}: kind {ev['kind']!r} (expected {kinds}), event {raw}"
    assert ev["status"] == resp.status_code
    body_code = _response_error_code(resp)
    if case.code is None:
        assert "error_code" not in ev, f"{case.id}: success with error_code: {raw}"
    else:
        assert ev.get("error_code") == case.code, f"{case.id}: error_code {ev.get('error_code')!r}, event {raw}"
    if body_code is not None:
        assert ev.get("error_code") == body_code, f"{case.id}: response errorCode {body_code} != event {raw}"
    # who
    if case.who == "alice":
        assert ev.get("principal") == "alice", raw
        assert ev.get("token_prefix") == ctx.alice_prefix, f"token_prefix must be the display prefix: {raw}"
    elif case.who == "admin":
        assert ev.get("principal") == "admin:boss", raw
    elif case.who == "file":
        r = parse_qs(urlsplit(prep).query)["r"][0]
        assert r == ctx.alice_id
        assert ev.get("principal") == f"recipient-id:{r}", raw
        assert "token_prefix" not in ev
    else:
        assert "principal" not in ev and "token_prefix" not in ev, f"{case.id}: unauthenticated, yet {raw}"
    assert ev.get("client_ip") == "127.0.0.1", raw
    assert ev.get("user_agent") == AS.UA, raw
    assert t0 - 2000 <= ev["at_ms"] <= t1 + 2000, f"at_ms {ev['at_ms']} outside [{t0}, {t1}]"
    assert isinstance(ev["duration_ms"], int) and 0 <= ev["duration_ms"] <= (t1 - t0) + 1000
    # which object
    if case.at is not None:
        got = (ev.get("share"), ev.get("schema"), ev.get("table"))
        assert got == tuple(case.at), f"{case.id}: share/schema/table {got} != {case.at}"
    version = resp.headers.get("Delta-Table-Version")
    if version is not None:
        assert ev.get("table_version") == int(version), f"table_version vs header {version}: {raw}"
    else:
        assert "table_version" not in ev, raw
    if case.params is not None:
        assert ev.get("params", {}) == case.params, f"{case.id}: params {ev.get('params')}"
    for secret in (ctx.s.tokens["alice"], ctx.s.admin_token):
        assert secret not in raw


@pytest.mark.parametrize("where", ["recipient", "admin"])
def test_oversized_body_gives_one_event(ctx, where):
    """A request refused for its size (3 MiB body) is still one audited request with an x-request-id."""
    before = ctx.s.count()
    if where == "recipient":
        r = ctx.call("POST", "/shares/s/schemas/d/tables/t/query", data="x" * (3 * 1024 * 1024),
                     headers={"Content-Type": "application/json"})
    else:
        r = ctx.call("POST", "/api/2.1/unity-catalog/recipients", who="admin", where="admin",
                     data="x" * (3 * 1024 * 1024), headers={"Content-Type": "application/json"})
    assert r.status_code in (400, 413), f"{r.status_code}: {r.text[:200]}"
    after = ctx.s.count()
    assert after == before + 1 and r.headers.get("x-request-id"), (
        f"{where}: a {r.status_code} for an oversized body added {after - before} audit events and "
        f"x-request-id={r.headers.get('x-request-id')!r} (body {r.text[:120]!r})")
    ev = json.loads(max(ctx.s.events(), key=lambda e: e["seq"])["body"])
    assert ev["request_id"] == r.headers["x-request-id"] and ev["status"] == r.status_code


# ================================================================================ no secrets


def _grep(paths, secrets):
    found = []
    for p in paths:
        try:
            with open(p, "rb") as fh:
                data = fh.read()
        except OSError:
            continue
        for label, value in secrets:
            for needle in {value, value[8:]} if len(value) >= 24 else {value}:
                if needle.encode() in data:
                    found.append(f"{label} ({needle[:12]}...) in {os.path.basename(p)}")
    return found


def test_no_secrets_in_state_db_or_server_log(lakeshare_bin, tables, tmp_path):
    s = AS.AuditServer(lakeshare_bin, tmp_path, tables, admin=True)
    secrets = []
    try:
        alice = s.api()
        secrets.append(("alice bearer token", s.tokens["alice"]))
        secrets.append(("admin token", s.admin_token))
        # listings with page tokens
        r = alice.get("/shares/s/schemas/d/tables", params={"maxResults": 1})
        tok = r.json().get("nextPageToken")
        assert tok, f"a 1-item page of 2 tables has a nextPageToken: {r.text}"
        secrets.append(("listing page token", tok))
        assert alice.get("/shares/s/schemas/d/tables", params={"maxResults": 1, "pageToken": tok}).status_code == 200
        # query pages
        body = {"maxFiles": 1}
        urls = []
        for _ in range(20):
            r = alice.query("s", "d", "t", body)
            assert r.status_code == 200, r.text[:300]
            lines = ndjson(r)
            urls += [f["url"] for f in file_lines(lines)]
            tok = lines[-1].get("endStreamAction", {}).get("nextPageToken")
            if not tok:
                break
            secrets.append(("query page token", tok))
            body = {"maxFiles": 1, "pageToken": tok}
        assert sum(1 for label, _ in secrets if label == "query page token") >= 2
        # refresh tokens
        r = alice.query("s", "d", "t", {"includeRefreshToken": True})
        rt = ndjson(r)[-1]["endStreamAction"]["refreshToken"]
        secrets.append(("refresh token", rt))
        r = alice.query("s", "d", "t", {"includeRefreshToken": True, "refreshToken": rt})
        assert r.status_code == 200, r.text[:300]
        rt2 = ndjson(r)[-1]["endStreamAction"].get("refreshToken")
        if rt2:
            secrets.append(("refresh token 2", rt2))
        # file downloads (and a tampered one)
        for u in urls[:3]:
            assert requests.get(u, timeout=HTTP_TIMEOUT).status_code == 200
            assert requests.head(u, timeout=HTTP_TIMEOUT).status_code == 200
            secrets.append(("URL signature", re.search(r"[?&]sig=([^&]+)", u).group(1)))
        assert requests.get(tampered(urls[0]), timeout=HTTP_TIMEOUT).status_code == 403
        # activation link redemption and the new recipient's token
        h = {"Authorization": f"Bearer {s.admin_token}"}
        r = requests.post(s.admin_url + "/api/2.1/unity-catalog/recipients", headers=h, timeout=HTTP_TIMEOUT,
                          json={"name": "carol", "authentication_type": "TOKEN"})
        assert r.status_code == 200, r.text[:300]
        link = r.json()["tokens"][0]["activation_url"]
        code = urlsplit(link).path.rsplit("/", 1)[-1]
        secrets.append(("activation code", code))
        info = link.replace("/data_sharing_activation/", "/data_sharing_activation_info/")
        assert requests.get(info, timeout=HTTP_TIMEOUT).status_code == 200
        r = requests.get(link, timeout=HTTP_TIMEOUT, headers={"Accept": "application/json"})
        assert r.status_code == 200, r.text[:300]
        carol = r.json()["bearerToken"]
        secrets.append(("activated bearer token", carol))
        assert requests.get(s.server.url + "/shares", headers={"Authorization": f"Bearer {carol}"},
                            timeout=HTTP_TIMEOUT).status_code == 200
        # a wrong token presented by someone (could be a real secret elsewhere)
        wrong = "lks_" + uuid.uuid4().hex + uuid.uuid4().hex[:11]
        secrets.append(("presented wrong token", wrong))
        assert requests.get(s.server.url + "/shares", headers={"Authorization": f"Bearer {wrong}"},
                            timeout=HTTP_TIMEOUT).status_code == 401
        assert s.count() >= 20, f"the busy run was audited ({s.count()} events)"
        live = [os.path.join(str(tmp_path), f) for f in os.listdir(tmp_path) if f.startswith("state.db")]
        assert live, "the SQLite state files exist"
        # positive control: the bytes read are where the events are (the display prefix is recorded)
        assert _grep(live, [("alice token display prefix", s.token_prefix("alice"))]), (
            "the token display prefix of the audited requests is not in the state files: nothing was grepped")
        found = _grep(live + [s.server.stderr_path], secrets)
        assert not found, f"secrets written while serving: {found}"
    finally:
        s.stop()
    files = [os.path.join(str(tmp_path), f) for f in os.listdir(tmp_path) if f.startswith("state.db")]
    out = os.path.join(str(tmp_path), "export.jsonl")
    with open(out, "w") as fh:
        fh.write(AS.export(lakeshare_bin, s.state, "jsonl"))
    found = _grep(files + [s.server.stderr_path, out], secrets)
    assert not found, f"secrets in the state database, the server log or the export: {found}"


def test_short_config_token_is_never_recorded_whole(lakeshare_bin, tables, tmp_path):
    """A reference-style `authorization.bearerToken` of 8 characters: the token's display prefix must
    not be the whole token."""
    token = "k9T2xQ7v"
    s = AS.AuditServer(lakeshare_bin, tmp_path, tables, recipients=(),
                       extra={"authorization": {"bearerToken": token}})
    try:
        r = requests.get(s.server.url + "/shares", headers={"Authorization": f"Bearer {token}"}, timeout=HTTP_TIMEOUT)
        assert r.status_code == 200, r.text[:300]
        ev = json.loads(s.events()[-1]["body"])
        assert ev["request_id"] == r.headers["x-request-id"]
        assert ev.get("token_prefix") != token, f"the whole config bearer token is in the audit event: {ev}"
        files = [os.path.join(str(tmp_path), f) for f in os.listdir(tmp_path) if f.startswith("state.db")]
        assert not _grep(files, [("config bearer token", token)]), "the config bearer token is in the state DB"
    finally:
        s.stop()


# ================================================================================ verify and attacks

SEALED_EVENTS = 22
CHECKPOINT_EVERY = 5
ATTACK_AT = 7  # between the checkpoints at 5 and 10


@pytest.fixture(scope="module")
def sealed(lakeshare_bin, tables, tmp_path_factory):
    """A log of exactly 22 events with auditCheckpointEvery 5, closed by SIGTERM."""
    d = tmp_path_factory.mktemp("audit-sealed")
    s = AS.AuditServer(lakeshare_bin, d, tables)
    try:
        alice, anon = s.api(), s.api(None)
        calls = [lambda: alice.get("/shares"), lambda: anon.get("/shares"), lambda: alice.get("/shares/other"),
                 lambda: alice.query("s", "d", "t", {}), lambda: alice.version("s", "d", "t"),
                 lambda: alice.metadata("s", "d", "c")]
        for i in range(SEALED_EVENTS):
            r = calls[i % len(calls)]()
            assert r.headers.get("x-request-id"), r.status_code
        assert s.count() == SEALED_EVENTS
    finally:
        s.stop()
    assert s.server.proc.returncode is not None
    return s


def test_keygen_writes_a_private_seed_and_prints_its_public_key(sealed):
    mode = os.stat(sealed.key_file).st_mode & 0o777
    assert mode == 0o600, f"the signing key file must be mode 0600, is {oct(mode)}"
    public = AS.public_from_seed(sealed.seed)
    assert base64.b64decode(sealed.public_key) == public, "printed public key != the seed's public key"


def test_sealed_log_format_and_checkpoints(sealed):
    """Recompute everything from the documented formulas: hashes, checkpoint signatures, key id;
    checkpoints every 5 events and one at SIGTERM covering the last record."""
    recs = sealed.events()
    assert len(recs) == SEALED_EVENTS and len({r["writer"] for r in recs}) == 1
    assert not AS.chain_problems(recs), AS.chain_problems(recs)
    assert recs[0]["prev_hash"] == AS.GENESIS
    cps = sealed.checkpoints()
    public = base64.b64decode(sealed.public_key)
    seqs = [c["seq"] for c in cps]
    assert {5, 10, 15, 20, SEALED_EVENTS} <= set(seqs) and max(seqs) == SEALED_EVENTS, (
        f"checkpoints every {CHECKPOINT_EVERY} events and at shutdown expected, got {seqs}")
    by_seq = {r["seq"]: r for r in recs}
    for c in cps:
        assert c["writer"] == recs[0]["writer"]
        assert c["hash"] == by_seq[c["seq"]]["hash"], f"checkpoint {c['seq']} names another hash"
        assert c["key_id"] == AS.key_id(public)
        assert AS.signature_ok(public, c), f"checkpoint {c['seq']}: Ed25519 signature does not verify"


def test_verify_untouched_log(lakeshare_bin, sealed, tmp_path):
    n_cp = len(sealed.checkpoints())
    key_file = str(tmp_path / "audit.pub")
    with open(key_file, "w") as fh:
        fh.write(sealed.public_key + "\n")
    for key in (sealed.public_key, key_file):
        p = AS.verify(lakeshare_bin, sealed.state, key)
        assert p.returncode == 0, f"untouched log must verify (--public-key {key}):\n{p.stdout}\n{p.stderr}"
        assert "audit log OK" in p.stdout
        cli_ev, cli_chains, cli_cps = AS.cli_audit(sealed.state)  # recipients created with the CLI
        assert AS.verify_summary(p) == {"records": SEALED_EVENTS + cli_ev, "chains": 1 + cli_chains,
                                        "checkpoints": n_cp + cli_cps, "uncovered": 0}
    p = AS.verify(lakeshare_bin, sealed.state)
    assert p.returncode == 0 and "audit log OK" in p.stdout, p.stdout + p.stderr
    assert AS.verify_summary(p)["checkpoints"] == 0


def test_verify_with_another_public_key_fails(lakeshare_bin, sealed, tmp_path):
    other, _ = AS.keygen(lakeshare_bin, str(tmp_path / "other.key"))
    p = AS.verify(lakeshare_bin, sealed.state, other)
    assert p.returncode == 1, p.stdout + p.stderr
    assert AS.bad_lines(p), f"BAD lines expected on stderr: {p.stderr}"


def test_sqlite_triggers_refuse_update_and_delete(sealed, tmp_path):
    db = AS.sqlite_copy(sealed.state, str(tmp_path / "copy.db"))
    con = sqlite3.connect(db, isolation_level=None)
    try:
        for sql in ["UPDATE audit_events SET body = 'x' WHERE seq = 3", "DELETE FROM audit_events WHERE seq = 3",
                    "DELETE FROM audit_events", "UPDATE audit_checkpoints SET hash = 'x'",
                    "DELETE FROM audit_checkpoints"]:
            with pytest.raises(sqlite3.DatabaseError) as ei:
                con.execute(sql)
            assert "append-only" in str(ei.value), f"{sql}: {ei.value}"
        assert con.execute(f"SELECT count(*) FROM audit_events WHERE {AS.SERVER_ONLY}").fetchone()[0] == SEALED_EVENTS
    finally:
        con.close()


def _attack_copy(sealed, tmp_path, name):
    db = AS.sqlite_copy(sealed.state, str(tmp_path / f"{name}.db"))
    con = sqlite3.connect(db, isolation_level=None)
    dropped = AS.drop_audit_triggers(con)
    assert len(dropped) >= 4, f"append-only triggers expected, found {dropped}"
    writer = con.execute(f"SELECT DISTINCT writer FROM audit_events WHERE {AS.SERVER_ONLY}").fetchone()[0]
    return db, con, writer


def test_plain_edit_is_caught_without_the_key(lakeshare_bin, sealed, tmp_path):
    db, con, writer = _attack_copy(sealed, tmp_path, "plain")
    body = con.execute("SELECT body FROM audit_events WHERE seq = ?", (ATTACK_AT,)).fetchone()[0]
    ev = json.loads(body)
    ev["status"] = 200 if ev["status"] != 200 else 204
    con.execute("UPDATE audit_events SET body = ? WHERE seq = ?", (json.dumps(ev, separators=(",", ":")), ATTACK_AT))
    con.close()
    for key in (None, sealed.public_key):
        p = AS.verify(lakeshare_bin, db, key)
        assert p.returncode == 1, f"an edit without rehashing must fail (key={key}):\n{p.stdout}{p.stderr}"
        bad = AS.bad_lines(p)
        assert bad and bad[0][0] == writer and bad[0][1] == ATTACK_AT, f"first bad position {ATTACK_AT}: {p.stderr}"


def _forge(body):
    ev = json.loads(body)
    ev["id"] = str(uuid.uuid4())
    ev["request_id"] = str(uuid.uuid4())
    ev["principal"] = "mallory"
    return json.dumps(ev, separators=(",", ":"))


def _edit(con, w):
    body = con.execute("SELECT body FROM audit_events WHERE writer = ? AND seq = ?", (w, ATTACK_AT)).fetchone()[0]
    ev = json.loads(body)
    ev["status"] = 200 if ev["status"] != 200 else 204
    ev.pop("error_code", None)
    con.execute("UPDATE audit_events SET body = ? WHERE writer = ? AND seq = ?",
                (json.dumps(ev, separators=(",", ":")), w, ATTACK_AT))
    AS.rehash_from(con, w, ATTACK_AT)


def _delete(con, w):
    con.execute("DELETE FROM audit_events WHERE writer = ? AND seq = ?", (w, ATTACK_AT))
    AS.shift_seqs(con, w, ATTACK_AT + 1, -1)
    AS.rehash_from(con, w, ATTACK_AT)


def _insert(con, w):
    AS.shift_seqs(con, w, ATTACK_AT + 1, +1)
    row = con.execute("SELECT at, recipient, share_name, table_name, body FROM audit_events "
                      "WHERE writer = ? AND seq = ?", (w, ATTACK_AT)).fetchone()
    con.execute("INSERT INTO audit_events (writer, seq, at, recipient, share_name, table_name, body, prev_hash, hash) "
                "VALUES (?, ?, ?, 'mallory', ?, ?, ?, '', '')",
                (w, ATTACK_AT + 1, row[0], row[2], row[3], _forge(row[4])))
    AS.rehash_from(con, w, ATTACK_AT + 1)


def _swap(con, w):
    a = con.execute("SELECT at, recipient, share_name, table_name, body FROM audit_events WHERE writer = ? AND seq = ?",
                    (w, ATTACK_AT)).fetchone()
    b = con.execute("SELECT at, recipient, share_name, table_name, body FROM audit_events WHERE writer = ? AND seq = ?",
                    (w, ATTACK_AT + 1)).fetchone()
    assert a[4] != b[4]
    for seq, row in ((ATTACK_AT, b), (ATTACK_AT + 1, a)):
        con.execute("UPDATE audit_events SET at = ?, recipient = ?, share_name = ?, table_name = ?, body = ? "
                    "WHERE writer = ? AND seq = ?", (*row, w, seq))
    AS.rehash_from(con, w, ATTACK_AT)


def _truncate(con, w):
    con.execute("DELETE FROM audit_events WHERE writer = ? AND seq >= ?", (w, ATTACK_AT + 1))


ATTACKS = {"edit": _edit, "delete": _delete, "insert": _insert, "swap": _swap, "truncate": _truncate}


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_hard_way_attack_is_caught_only_with_the_key(lakeshare_bin, sealed, tmp_path, attack):
    db, con, writer = _attack_copy(sealed, tmp_path, attack)
    ATTACKS[attack](con, writer)
    left = [r for r in AS.sqlite_events(db) if r["writer"] == writer]
    con.close()
    assert not AS.chain_problems(left), f"{attack} must leave a valid plain chain: {AS.chain_problems(left)}"
    assert [r["body"] for r in left] != [r["body"] for r in sealed.events()]
    plain = AS.verify(lakeshare_bin, db)
    assert plain.returncode == 0 and "audit log OK" in plain.stdout, (
        f"{attack} done the hard way passes the plain chain check (that is what the signed checkpoints are "
        f"for):\n{plain.stdout}{plain.stderr}")
    keyed = AS.verify(lakeshare_bin, db, sealed.public_key)
    assert keyed.returncode == 1, f"{attack} must be caught with --public-key:\n{keyed.stdout}{keyed.stderr}"
    bad = AS.bad_lines(keyed)
    assert bad, f"{attack}: no 'BAD chain <writer> at record <n>' line on stderr:\n{keyed.stderr}"
    first = min(b[1] for b in bad)
    assert all(b[0] == writer for b in bad)
    # the checkpoint at 5 is intact; the first one after the attack (10) is violated
    assert CHECKPOINT_EVERY < first <= 2 * CHECKPOINT_EVERY, (
        f"{attack}: first bad position {first} must be after the intact checkpoint at {CHECKPOINT_EVERY} and "
        f"not after the violated one at {2 * CHECKPOINT_EVERY}:\n{keyed.stderr}")


# ================================================================================ PostgreSQL


@pytest.fixture(scope="module")
def pg_replicas(lakeshare_bin, tables, tmp_path_factory):
    """Two replicas on one PostgreSQL database, requests alternating between them from three threads
    at once; both stopped with SIGTERM. Returns (state URL, {replica: [request ids]}, AuditServer)."""
    state = AS.pg_create_database("lakeshare_audit_")
    a = AS.AuditServer(lakeshare_bin, tmp_path_factory.mktemp("audit-pg"), tables, state=state)
    b = None
    got = {"a": [], "b": []}
    errors = []
    try:
        b = srv.start_server(lakeshare_bin, a.config, state, env=a.env)
        servers = {"a": a.server, "b": b}
        lock = threading.Lock()

        def worker(order):
            sess = requests.Session()
            h = {"Authorization": f"Bearer {a.tokens['alice']}"}
            try:
                for i in range(16):
                    name = order[i % 2]
                    url = servers[name].url
                    if i % 3 == 0:
                        r = sess.post(url + "/shares/s/schemas/d/tables/t/query", json={}, headers=h,
                                      timeout=HTTP_TIMEOUT)
                    else:
                        r = sess.get(url + "/shares/s/schemas/d/tables/t/version", headers=h, timeout=HTTP_TIMEOUT)
                    assert r.status_code == 200, r.text[:200]
                    with lock:
                        got[name].append(r.headers["x-request-id"])
            except Exception as exc:  # reported by the test
                errors.append(repr(exc))

        threads = [threading.Thread(target=worker, args=(o,)) for o in (("a", "b"), ("b", "a"), ("a", "b"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert not any(t.is_alive() for t in threads), "request threads did not finish in 60 s"
    finally:
        a.stop()
        if b is not None:
            b.stop()
    assert not errors, errors
    return state, got, a


def test_two_replicas_write_two_chains_on_postgresql(lakeshare_bin, pg_replicas):
    state, got, a = pg_replicas
    all_rows = AS.pg_json(state, "SELECT writer, seq, at, body, prev_hash, hash FROM audit_events "
                                 "ORDER BY writer, seq")
    # recipients created with the CLI are audited in chains of their own
    cli_writers = {r["writer"] for r in all_rows if json.loads(r["body"])["kind"] == "cli"}
    rows = [r for r in all_rows if r["writer"] not in cli_writers]
    writers = {}
    for r in rows:
        writers.setdefault(r["writer"], []).append(r)
    assert len(writers) == 2, f"two serving processes = two chains, got {list(writers)}"
    chain_of = {json.loads(r["body"])["request_id"]: r["writer"] for r in rows}
    for name in ("a", "b"):
        ws = {chain_of.get(rid) for rid in got[name]}
        assert None not in ws, f"replica {name}: requests without events"
        assert len(ws) == 1, f"replica {name}'s events are spread over chains {ws}"
    assert chain_of[got["a"][0]] != chain_of[got["b"][0]]
    for w, recs in writers.items():
        assert not AS.chain_problems(recs), f"chain {w}: {AS.chain_problems(recs)}"
    assert len(rows) == len(got["a"]) + len(got["b"]) == 48
    all_cps = AS.pg_json(state, "SELECT writer, seq, hash, at, key_id, signature FROM audit_checkpoints")
    cps = [c for c in all_cps if c["writer"] not in cli_writers]
    public = base64.b64decode(a.public_key)
    assert {c["writer"] for c in cps} == set(writers), "each chain is checkpointed (every 5 events, at SIGTERM)"
    assert all(AS.signature_ok(public, c) for c in cps)
    p = AS.verify(lakeshare_bin, state, a.public_key)
    assert p.returncode == 0 and "audit log OK" in p.stdout, p.stdout + p.stderr
    summary = AS.verify_summary(p)
    assert summary["chains"] == 2 + len(cli_writers) and summary["records"] == len(all_rows)
    assert summary["checkpoints"] == len(all_cps)
    assert summary["uncovered"] == 0, "SIGTERM checkpoints cover both chains to their end"


def test_postgresql_audit_tables_are_append_only(pg_replicas):
    state = pg_replicas[0]
    before = AS.psql(state, "SELECT count(*) FROM audit_events").stdout.strip()
    cps = AS.psql(state, "SELECT count(*) FROM audit_checkpoints").stdout.strip()
    cli = AS.psql(state, "SELECT count(*) FROM audit_events WHERE body LIKE '%\"kind\":\"cli\"%'").stdout.strip()
    assert int(before) == 48 + int(cli) and int(cps) > 0, (before, cli, cps)
    for sql in ["UPDATE audit_events SET body = 'x'", "DELETE FROM audit_events WHERE seq = 1",
                "TRUNCATE audit_events", "UPDATE audit_checkpoints SET hash = 'x'", "DELETE FROM audit_checkpoints",
                "TRUNCATE audit_checkpoints"]:
        p = AS.psql(state, sql)
        assert p.returncode != 0, f"`{sql}` succeeded on the audit tables"
        assert "append-only" in p.stderr, f"`{sql}`: {p.stderr}"
    assert AS.psql(state, "SELECT count(*) FROM audit_events").stdout.strip() == before
    assert AS.psql(state, "SELECT count(*) FROM audit_checkpoints").stdout.strip() == cps


# ================================================================================ crash


def test_events_survive_kill_9_mid_burst(lakeshare_bin, tables, tmp_path):
    """kill -9 during a burst, restart on the same state: every complete response has its event,
    and the log (two chains) verifies with the key given through LAKESHARE_AUDIT_SIGNING_KEY."""
    s = AS.AuditServer(lakeshare_bin, tmp_path, tables, key_in_env=True)
    done, errors = [], []
    stop = threading.Event()
    lock = threading.Lock()
    url, token = s.server.url, s.tokens["alice"]

    def burst(i):
        sess = requests.Session()
        h = {"Authorization": f"Bearer {token}"}
        n = 0
        while not stop.is_set():
            n += 1
            try:
                if n % 2:
                    r = sess.post(url + "/shares/s/schemas/d/tables/t/query", json={}, headers=h, timeout=10)
                    r.content  # the whole body
                else:
                    r = sess.get(url + "/shares/s/schemas/d/tables/t/version", headers=h, timeout=10)
            except requests.RequestException:
                time.sleep(0.01)  # the server was killed
                continue
            if r.status_code == 200 and r.headers.get("x-request-id"):
                with lock:
                    done.append(r.headers["x-request-id"])
            else:
                errors.append(f"{r.status_code} {r.text[:100]}")

    threads = [threading.Thread(target=burst, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    try:
        deadline = time.monotonic() + 30
        while len(done) < 40:
            assert time.monotonic() < deadline, f"only {len(done)} responses in 30 s"
            time.sleep(0.01)
        s.server.proc.send_signal(signal.SIGKILL)
        s.server.proc.wait(timeout=10)
        with lock:
            before_kill = list(done)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=20)
    assert not any(t.is_alive() for t in threads)
    assert not errors, errors[:5]
    s.start()
    try:
        api = s.api()
        after = []
        for _ in range(7):
            r = api.get("/shares")
            assert r.status_code == 200
            after.append(r.headers["x-request-id"])
    finally:
        s.stop()
    recs = s.events()
    ids = {json.loads(r["body"])["request_id"]: r["writer"] for r in recs}
    missing = [rid for rid in done + after if rid not in ids]
    assert not missing, f"{len(missing)} answered requests have no event (e.g. {missing[:3]})"
    assert len(before_kill) >= 40
    writers = {r["writer"] for r in recs}
    assert len(writers) == 2, f"one chain before the kill, one after the restart: {writers}"
    assert len({ids[r] for r in after}) == 1 and ids[after[0]] != ids[done[0]]
    public = base64.b64decode(s.public_key)
    cps = s.checkpoints()
    assert cps and all(c["key_id"] == AS.key_id(public) and AS.signature_ok(public, c) for c in cps), (
        "checkpoints are signed with the key from LAKESHARE_AUDIT_SIGNING_KEY")
    p = AS.verify(lakeshare_bin, s.state, s.public_key)
    assert p.returncode == 0 and "audit log OK" in p.stdout, p.stdout + p.stderr
    summary = AS.verify_summary(p)
    cli_ev, cli_chains, _ = AS.cli_audit(s.state)  # recipients created with the CLI
    assert summary["chains"] == 2 + cli_chains and summary["records"] == len(recs) + cli_ev


# ================================================================================ export


@pytest.fixture(scope="module")
def exported(lakeshare_bin, tables, tmp_path_factory):
    d = tmp_path_factory.mktemp("audit-export")
    s = AS.AuditServer(lakeshare_bin, d, tables, recipients=(("alice", ("s",)), ("bob", ("s", "other"))))
    try:
        alice, bob, anon = s.api("alice"), s.api("bob"), s.api(None)
        calls = [lambda: alice.get("/shares"), lambda: alice.query("s", "d", "t", {"maxFiles": 2}),
                 lambda: bob.query("other", "d", "t", {}), lambda: bob.version("s", "d", "t"),
                 lambda: alice.metadata("s", "d", "c"), lambda: anon.get("/shares"),
                 lambda: bob.metadata("other", "d", "t"), lambda: alice.version("other", "d", "t")]
        for i in range(24):
            calls[i % len(calls)]()
    finally:
        s.stop()
    events = sorted((json.loads(r["body"]) for r in s.events()), key=lambda e: e["at_ms"])
    assert len(events) == 24
    return s, events


def _jsonl(text):
    lines = text.splitlines()
    assert all(ln.strip() for ln in lines), "no blank lines in JSON lines output"
    return [json.loads(ln) for ln in lines]


def _csv(text):
    rows = list(csv.reader(io.StringIO(text)))
    header = ["id", "at", "request_id", "kind", "method", "route", "principal", "token_prefix", "client_ip", "share",
              "schema", "table", "table_version", "status", "error_code", "duration_ms", "params"]
    assert rows and rows[0] == header, f"CSV header: {rows[:1]}"
    return [dict(zip(header, r)) for r in rows[1:]]


def _csv_matches(row, ev):
    s = lambda k: "" if ev.get(k) is None else str(ev[k])  # noqa: E731
    for k in ("id", "request_id", "kind", "method", "route", "principal", "token_prefix", "client_ip", "share",
              "schema", "table", "table_version", "status", "error_code", "duration_ms"):
        assert row[k] == s(k), f"CSV column {k}: {row[k]!r} != {s(k)!r}"
    at = dt.datetime.fromisoformat(row["at"].replace("Z", "+00:00"))
    assert round(at.timestamp() * 1000) == ev["at_ms"], f"CSV at {row['at']} != {ev['at_ms']}"
    assert json.loads(row["params"] or "{}") == ev.get("params", {})


def test_export_everything_round_trips(lakeshare_bin, exported):
    s, events = exported
    got = [e for e in _jsonl(AS.export(lakeshare_bin, s.state, "jsonl")) if e["kind"] != "cli"]
    assert sorted(got, key=lambda e: e["id"]) == sorted(events, key=lambda e: e["id"])
    rows = [r for r in _csv(AS.export(lakeshare_bin, s.state, "csv")) if r["kind"] != "cli"]
    assert sorted(r["id"] for r in rows) == sorted(e["id"] for e in events)
    by_id = {e["id"]: e for e in events}
    for r in rows:
        _csv_matches(r, by_id[r["id"]])


def test_export_time_range(lakeshare_bin, exported):
    s, events = exported
    lo, hi = events[5]["at_ms"], events[17]["at_ms"]
    assert lo < hi
    want = sorted(e["id"] for e in events if lo <= e["at_ms"] < hi)  # --from inclusive, --to exclusive
    assert 0 < len(want) < len(events)
    for fmt in ("jsonl", "csv"):
        out = AS.export(lakeshare_bin, s.state, fmt, "--from", iso(lo), "--to", iso(hi))
        ids = [e["id"] for e in _jsonl(out)] if fmt == "jsonl" else [r["id"] for r in _csv(out)]
        assert sorted(ids) == want, f"{fmt}: {len(ids)} events in [{iso(lo)}, {iso(hi)}), want {len(want)}"
    # the same range with a +00:00 offset
    out = AS.export(lakeshare_bin, s.state, "jsonl", "--from", iso(lo).replace("Z", "+00:00"),
                    "--to", iso(hi).replace("Z", "+00:00"))
    assert sorted(e["id"] for e in _jsonl(out)) == want


@pytest.mark.parametrize("flt", [("--recipient", "alice"), ("--recipient", "bob"), ("--table", "s.d.t"),
                                 ("--table", "other.d.t"), ("--recipient", "bob", "--table", "other.d.t")],
                         ids=lambda f: " ".join(f))
def test_export_filters(lakeshare_bin, exported, flt):
    s, events = exported
    opts = dict(zip(flt[::2], flt[1::2]))

    def keep(e):
        if "--recipient" in opts and e.get("principal") != opts["--recipient"]:
            return False
        if "--table" in opts and f"{e.get('share')}.{e.get('schema')}.{e.get('table')}" != opts["--table"]:
            return False
        return True

    want = sorted(e["id"] for e in events if keep(e))
    assert want, f"the fixture has events for {flt}"
    for fmt in ("jsonl", "csv"):
        out = AS.export(lakeshare_bin, s.state, fmt, *flt)
        ids = [e["id"] for e in _jsonl(out)] if fmt == "jsonl" else [r["id"] for r in _csv(out)]
        assert sorted(ids) == want, f"{fmt} {flt}: got {len(ids)} events, want {len(want)}"


# ================================================================================ fail closed / open

BREAK = ("CREATE TRIGGER test_audit_store_broken BEFORE INSERT ON audit_events "
         "BEGIN SELECT RAISE(ABORT, 'audit store broken by the test'); END")
REPAIR = "DROP TRIGGER test_audit_store_broken"


def _sql(path, statement):
    con = sqlite3.connect(path, timeout=10, isolation_level=None)
    try:
        con.execute(statement)
    finally:
        con.close()


def test_fail_closed_by_default(lakeshare_bin, tables, tmp_path):
    s = AS.AuditServer(lakeshare_bin, tmp_path, tables)  # no auditFailClosed key: the default
    try:
        alice = s.api()
        assert alice.get("/shares").status_code == 200
        q = alice.query("s", "d", "t", {})
        file_url = file_lines(ndjson(q))[0]["url"]
        n = s.count()
        _sql(s.state, BREAK)
        refused = []
        try:
            for what, call in [("list", lambda: alice.get("/shares")),
                               ("query", lambda: alice.query("s", "d", "t", {})),
                               ("file", lambda: requests.get(file_url, timeout=HTTP_TIMEOUT)),
                               ("401", lambda: s.api(None).get("/shares"))]:
                r = call()
                assert r.status_code == 503, f"{what}: an unaudited request must get 503, got {r.status_code}"
                assert r.json().get("errorCode") == "TEMPORARILY_UNAVAILABLE", r.text[:300]
                assert b"PAR1" not in r.content and b"items" not in r.content and b"protocol" not in r.content
                assert r.headers.get("x-request-id")
                refused.append(r.headers["x-request-id"])
        finally:
            _sql(s.state, REPAIR)
        assert s.count() == n, "nothing was recorded while the store failed"
        r = alice.get("/shares")
        assert r.status_code == 200, "the server recovers once the store works again"
        recs = s.events()
        assert len(recs) == n + 1 and json.loads(recs[-1]["body"])["request_id"] == r.headers["x-request-id"]
        assert not set(refused) & {json.loads(x["body"])["request_id"] for x in recs}
        assert not AS.chain_problems(recs), "a failed commit leaves no gap in the chain"
    finally:
        s.stop()
    p = AS.verify(lakeshare_bin, s.state, s.public_key)
    assert p.returncode == 0 and "audit log OK" in p.stdout, p.stdout + p.stderr


def test_fail_open_serves_and_logs_the_error(lakeshare_bin, tables, tmp_path):
    s = AS.AuditServer(lakeshare_bin, tmp_path, tables, extra={"auditFailClosed": False})
    try:
        alice = s.api()
        n = s.count()
        _sql(s.state, BREAK)
        try:
            r = alice.get("/shares")
        finally:
            _sql(s.state, REPAIR)
        assert r.status_code == 200 and r.json()["items"], r.text[:300]
        rid = r.headers.get("x-request-id")
        assert rid and s.count() == n
        log = s.server.stderr_text()
        assert any(rid in line and "audit" in line for line in log.splitlines()), (
            f"the unaudited request {rid} must be named in the server log:\n{log[-2000:]}")
        assert alice.get("/shares").status_code == 200 and s.count() == n + 1
    finally:
        s.stop()
    p = AS.verify(lakeshare_bin, s.state, s.public_key)
    assert p.returncode == 0, p.stdout + p.stderr


def test_fail_closed_refusal_has_no_effect(lakeshare_bin, tables, tmp_path):
    """The 503 says "the request was not served": a refused admin change and a refused activation-link
    redemption must not have happened (otherwise an action took place without an audit event, and the
    one-time activation code is spent while its profile was never delivered)."""
    s = AS.AuditServer(lakeshare_bin, tmp_path, tables, admin=True)
    h = {"Authorization": f"Bearer {s.admin_token}"}
    rec = s.admin_url + "/api/2.1/unity-catalog/recipients"
    try:
        r = requests.post(rec, json={"name": "dave", "authentication_type": "TOKEN"}, headers=h, timeout=HTTP_TIMEOUT)
        assert r.status_code == 200, r.text[:300]
        link = r.json()["tokens"][0]["activation_url"]
        _sql(s.state, BREAK)
        try:
            create = requests.post(rec, json={"name": "erin", "authentication_type": "TOKEN"}, headers=h,
                                   timeout=HTTP_TIMEOUT)
            redeem = requests.get(link, timeout=HTTP_TIMEOUT, headers={"Accept": "application/json"})
        finally:
            _sql(s.state, REPAIR)
        # each API answers in its own error shape (the admin API's is Unity's `error_code`)
        for what, resp, field in (("admin create", create, "error_code"), ("activation", redeem, "errorCode")):
            assert resp.status_code == 503, f"{what}: {resp.status_code} {resp.text[:200]}"
            assert resp.json()[field] == "TEMPORARILY_UNAVAILABLE", resp.text
        problems = []
        got = requests.get(rec + "/erin", headers=h, timeout=HTTP_TIMEOUT)
        if got.status_code != 404:
            problems.append(f"recipient 'erin' exists after its creation was refused with 503 "
                            f"(GET -> {got.status_code}), and no audit event records its creation")
        again = requests.get(link, timeout=HTTP_TIMEOUT, headers={"Accept": "application/json"})
        if again.status_code != 200:
            problems.append(f"the activation link is spent after its redemption was refused with 503 "
                            f"(retry -> {again.status_code} {again.text[:120]}); the recipient never got its token")
        assert not problems, "; ".join(problems)
    finally:
        s.stop()
