"""Helpers that replay the Spark client's paginated / token-carrying requests (PROTOCOL-NOTES §2.8,
§2.9, §3.4, §10.3) and split NDJSON pages into head lines, file lines and the end-stream action."""
import json
import re

import requests

from api import ndjson

SPARK_UA = "Delta-Sharing-Spark/1.3.0 Spark/3.5.1 Java/17.0.10 Linux/6.5 Delta-Sharing-Python/none"
SPARK_PARQUET_CAPS = "responseformat=parquet"
SPARK_DELTA_CAPS = "responseformat=delta;readerfeatures=deletionvectors,columnmapping,timestampntz"
FILE_KINDS = ("file", "add", "remove", "cdf")
MAX_PAGES = 500


def spark_headers(caps=SPARK_PARQUET_CAPS, extra=None):
    h = {"User-Agent": SPARK_UA, "delta-sharing-capabilities": caps}
    h.update(extra or {})
    return h


class Page:
    def __init__(self, resp):
        assert resp.status_code == 200, f"page request failed: {resp.status_code} {resp.text[:800]}"
        self.resp = resp
        self.raw_lines = resp.text.rstrip("\n").split("\n")
        self.objs = ndjson(resp)
        self.version = resp.headers.get("Delta-Table-Version")
        self.caps = resp.headers.get("delta-sharing-capabilities", "")
        ends = [i for i, o in enumerate(self.objs) if "endStreamAction" in o]
        assert len(ends) <= 1, f"more than one endStreamAction in a page: {ends}"
        if ends:
            assert ends[0] == len(self.objs) - 1, "endStreamAction must be the last line"
        self.end = self.objs[-1]["endStreamAction"] if ends else None
        body = self.objs[2:-1] if ends else self.objs[2:]
        self.body = body
        self.head_raw = self.raw_lines[:2]

    @property
    def files(self):
        return [o for o in self.body if next(iter(o)) in FILE_KINDS]

    @property
    def next_token(self):
        return (self.end or {}).get("nextPageToken")


def file_key(obj):
    """Identity of a file line, independent of URL signing: (kind, id, version, action kind)."""
    (k, a), = obj.items()
    if k == "file" and "deltaSingleAction" in a:
        (ak, _), = a["deltaSingleAction"].items()
        return (k, ak, a["id"], a.get("version"))
    return (k, a["id"], a.get("version"))


def strip_urls(obj):
    """A file/metaData line without URL / expiry fields (what must be equal across pages/requests)."""
    s = json.dumps(obj, sort_keys=True)
    d = json.loads(s)
    (k, a), = d.items()
    for key in ("url", "expirationTimestamp"):
        a.pop(key, None)
    if "deltaSingleAction" in a:
        (ak, act), = a["deltaSingleAction"].items()
        act.pop("path", None)
        dv = act.get("deletionVector")
        if dv and dv.get("storageType") == "p":
            dv.pop("pathOrInlineDv", None)
    return d


def walk_query(api, coords, body, caps=SPARK_PARQUET_CAPS, headers=None, first=None):
    """POST /query with `body` (must contain maxFiles), follow nextPageToken; returns [Page]."""
    share, schema, name = coords
    pages = [first or Page(api.query(share, schema, name, body, headers=spark_headers(caps, headers)))]
    while pages[-1].next_token:
        assert len(pages) < MAX_PAGES, "pagination does not terminate"
        nxt = dict(body)
        nxt.pop("includeRefreshToken", None)
        nxt.pop("refreshToken", None)
        nxt["pageToken"] = pages[-1].next_token
        pages.append(Page(api.query(share, schema, name, nxt, headers=spark_headers(caps, headers))))
    return pages


def changes_url(api, coords, query):
    share, schema, name = coords
    return api.url(api.table_path(share, schema, name, "/changes") + "?" + query)


def get_raw(api, url, caps=SPARK_PARQUET_CAPS, headers=None):
    """GET a URL exactly as given (the page token is appended unencoded, like Spark)."""
    h = api.headers(spark_headers(caps, headers))
    req = requests.Request("GET", url, headers=h).prepare()
    req.url = url  # no re-encoding
    return api.session.send(req, timeout=60)


def walk_changes(api, coords, query, caps=SPARK_PARQUET_CAPS, headers=None):
    """GET /changes?query (with maxFiles), following nextPageToken with `&pageToken=<token>` unencoded."""
    pages = [Page(get_raw(api, changes_url(api, coords, query), caps, headers))]
    while pages[-1].next_token:
        assert len(pages) < MAX_PAGES, "pagination does not terminate"
        tok = pages[-1].next_token
        assert re.match(r"^[A-Za-z0-9_\-=.~]+$", tok), f"CDF page token must be URL-safe (Spark does not encode it): {tok!r}"
        pages.append(Page(get_raw(api, changes_url(api, coords, query + "&pageToken=" + tok), caps, headers)))
    return pages


def metric(server, name):
    text = requests.get(server.metrics_url, timeout=30).text
    m = re.search(r"^%s(?:\{[^}]*\})?\s+([0-9.eE+-]+)\s*$" % re.escape(name), text, re.M)
    assert m, f"metric {name} not found in:\n{text[:1500]}"
    return float(m.group(1))
