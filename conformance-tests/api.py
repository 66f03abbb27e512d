"""Thin raw-HTTP helper around `requests` for the wire tests."""
import json
from urllib.parse import quote

import requests

DELTA_CAPS = "responseformat=delta;readerfeatures=deletionvectors,columnmapping,timestampntz"
AUTO_CAPS = "responseformat=delta,parquet;readerfeatures=deletionvectors,columnmapping,timestampntz"
TIMEOUT = 60


class Api:
    def __init__(self, endpoint, token):
        self.endpoint = endpoint.rstrip("/")
        self.token = token
        self.session = requests.Session()

    def headers(self, extra=None, token=True):
        h = {}
        if token and self.token is not None:
            h["Authorization"] = f"Bearer {self.token}"
        if extra:
            h.update(extra)
        return h

    def url(self, path):
        return self.endpoint + path

    def get(self, path, params=None, headers=None, token=True, **kw):
        return self.session.get(self.url(path), params=params, headers=self.headers(headers, token),
                                timeout=TIMEOUT, **kw)

    def head(self, path, headers=None, token=True):
        return self.session.head(self.url(path), headers=self.headers(headers, token), timeout=TIMEOUT)

    def post(self, path, body=None, headers=None, token=True, data=None):
        h = self.headers({"Content-Type": "application/json", **(headers or {})}, token)
        if data is None:
            data = json.dumps({} if body is None else body)
        return self.session.post(self.url(path), data=data, headers=h, timeout=TIMEOUT)

    # -- table paths ------------------------------------------------------------------------
    @staticmethod
    def table_path(share, schema, table, suffix=""):
        return f"/shares/{quote(share, safe='')}/schemas/{quote(schema, safe='')}/tables/{quote(table, safe='')}{suffix}"

    def query(self, share, schema, table, body=None, caps=None, headers=None):
        h = dict(headers or {})
        if caps:
            h["delta-sharing-capabilities"] = caps
        return self.post(self.table_path(share, schema, table, "/query"), body or {}, headers=h)

    def metadata(self, share, schema, table, caps=None, params=None, headers=None):
        h = dict(headers or {})
        if caps:
            h["delta-sharing-capabilities"] = caps
        return self.get(self.table_path(share, schema, table, "/metadata"), params=params, headers=h)

    def version(self, share, schema, table, params=None):
        return self.get(self.table_path(share, schema, table, "/version"), params=params)


def ndjson(resp):
    """Parse an NDJSON body strictly: every line must be one JSON object, no blank lines."""
    text = resp.text
    assert text, f"empty NDJSON body (status {resp.status_code})"
    body = text[:-1] if text.endswith("\n") else text
    lines = body.split("\n")
    for i, line in enumerate(lines):
        assert line.strip() != "", f"blank line {i + 1} in NDJSON body:\n{text[:2000]}"
    objs = []
    for i, line in enumerate(lines):
        try:
            obj = json.loads(line)
        except ValueError as exc:
            raise AssertionError(f"NDJSON line {i + 1} is not JSON ({exc}): {line[:500]!r}")
        assert isinstance(obj, dict) and len(obj) == 1, (
            f"NDJSON line {i + 1} must be a wrapper object with exactly one key: {line[:500]}"
        )
        objs.append(obj)
    return objs


def file_lines(objs):
    return [o["file"] for o in objs if "file" in o]


def error_of(resp):
    """(status, errorCode, message) of an error response, asserting the JSON error shape."""
    try:
        body = resp.json()
    except ValueError:
        raise AssertionError(f"error body is not JSON (status {resp.status_code}): {resp.text[:500]!r}")
    assert isinstance(body, dict) and "errorCode" in body and "message" in body, (
        f"error body must be {{errorCode, message}}, got: {resp.text[:500]}"
    )
    return resp.status_code, body["errorCode"], body["message"]


def assert_error(resp, status, code=None, message=None, what=""):
    assert resp.status_code == status, (
        f"{what}: expected HTTP {status}{' ' + code if code else ''}"
        f"{' containing ' + repr(message) if message else ''}, got {resp.status_code}: {resp.text[:800]}"
    )
    st, ec, msg = error_of(resp)
    if code is not None:
        assert ec == code, f"{what}: expected errorCode {code}, got {ec} ({msg})"
    if message is not None:
        assert message in msg, f"{what}: expected message containing {message!r}, got {msg!r}"
    return ec, msg


def file_url_of(file_line):
    """Data-file URL of a `file` line in either format."""
    if "url" in file_line:
        return file_line["url"]
    return file_line["deltaSingleAction"]["add"]["path"]
