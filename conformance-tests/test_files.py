"""Signed data-file URLs served by lakeshare itself (contract "HTTP facts", PROTOCOL-NOTES §13.14)."""
import os
import re
import time
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests

import server as srv
from api import DELTA_CAPS, Api, file_lines, ndjson

TABLE = "gen-partitioned"


def _files(api, coords, caps=None):
    r = api.query(*coords, {}, caps=caps)
    assert r.status_code == 200, r.text[:300]
    return file_lines(ndjson(r))


@pytest.fixture(scope="module")
def signed(env, api):
    files = _files(api, env.coords(TABLE))
    assert len(files) >= 2
    return files


def _set_param(url, key, value):
    new, n = re.subn(r"([?&]%s=)[^&]*" % re.escape(key), lambda m: m.group(1) + value, url)
    assert n == 1, f"URL has no single {key}= parameter: {url}"
    return new


def _param(url, key):
    m = re.search(r"[?&]%s=([^&]*)" % re.escape(key), url)
    assert m, f"URL has no {key}= parameter: {url}"
    return m.group(1)


def test_url_shape(signed):
    for f in signed:
        url = f["url"]
        for key in ("exp", "sig", "sp"):
            _param(url, key)  # sp= marks the URL as pre-signed for delta-kernel-rs (PROTOCOL-NOTES §14)
        assert "expirationTimestamp" in f
        assert abs(int(_param(url, "exp")) * 1000 - f["expirationTimestamp"]) <= 1000, (
            "expirationTimestamp must match the URL expiry")
        assert f["expirationTimestamp"] > time.time() * 1000 + 15 * 60 * 1000, "URL lifetime should exceed 15 min"


def test_get_full_file(signed):
    f = signed[0]
    r = requests.get(f["url"], timeout=30)
    assert r.status_code == 200, f"GET signed URL: {r.status_code} {r.text[:200]}"
    assert len(r.content) == f["size"], "body length must equal `size`"
    assert int(r.headers["Content-Length"]) == f["size"]
    assert r.content[:4] == b"PAR1" and r.content[-4:] == b"PAR1"


@pytest.mark.parametrize("rng,start,end", [("bytes=0-99", 0, 100), ("bytes=10-", 10, None), ("bytes=-8", -8, None)])
def test_range_requests(signed, rng, start, end):
    f = signed[0]
    full = requests.get(f["url"], timeout=30).content
    want = full[start:end] if end is not None else full[start:]
    r = requests.get(f["url"], headers={"Range": rng}, timeout=30)
    assert r.status_code == 206, f"Range {rng} must give 206, got {r.status_code}"
    assert int(r.headers["Content-Length"]) == len(want), f"Range {rng}: exact Content-Length"
    assert r.content == want, f"Range {rng}: wrong bytes"
    assert r.headers.get("Content-Range", "").startswith("bytes "), "206 needs Content-Range"


def test_head(signed):
    f = signed[0]
    r = requests.head(f["url"], timeout=30)
    assert r.status_code == 200, f"HEAD signed URL: {r.status_code}"
    assert int(r.headers["Content-Length"]) == f["size"]


def _tampered(url, signed):
    sig = _param(url, "sig")
    flipped = sig[:-1] + ("0" if sig[-1] != "0" else "1")
    other = signed[1]["url"]
    p, o = urlsplit(url), urlsplit(other)
    return {
        "sig": _set_param(url, "sig", flipped),
        "exp": _set_param(url, "exp", str(int(_param(url, "exp")) + 1)),
        "t": _set_param(url, "t", _param(url, "t") + "x"),
        "r": _set_param(url, "r", _param(url, "r") + "x"),
        "path": urlunsplit((p.scheme, p.netloc, o.path, p.query, "")),
        # only the last (file name) segment changed
        "name": urlunsplit((p.scheme, p.netloc, p.path.rsplit("/", 1)[0] + "/" + o.path.rsplit("/", 1)[1] + "x",
                            p.query, "")),
        "no-sig": re.sub(r"[?&]sig=[^&]*", "", url),
    }


@pytest.mark.parametrize("what", ["sig", "exp", "t", "r", "path", "name", "no-sig"])
def test_tampered_urls_403(signed, what):
    url = _tampered(signed[0]["url"], signed)[what]
    assert url != signed[0]["url"]
    for method in (requests.get, requests.head):
        r = method(url, timeout=30)
        assert r.status_code == 403, f"{method.__name__.upper()} with changed {what}: expected 403, got {r.status_code}"


def test_revoked_recipient_urls_403(env):
    name, _, token = env.new_recipient(["conformance"], prefix="filerev")
    api = Api(env.endpoint, token)
    url = _files(api, env.coords(TABLE))[0]["url"]
    assert requests.get(url, timeout=30).status_code == 200
    env.revoke(name)
    r = requests.get(url, timeout=30)
    assert r.status_code == 403, f"URL of a revoked recipient must be refused, got {r.status_code}"


def test_expired_url_403(lakeshare_bin, tables, tmp_path):
    """A server with a 2-second URL lifetime; after expiry the URL answers 403."""
    cfg = srv.write_config(str(tmp_path / "short.yaml"), [
        {"name": "s", "schemas": [{"name": "d", "tables": [{"name": "t", "location": tables[TABLE]["path"]}]}]}],
        extra={"authorization": {"bearerToken": "short-lived-token"}, "preSignedUrlTimeoutSeconds": 2})
    server = srv.start_server(lakeshare_bin, cfg, str(tmp_path / "state.db"))
    try:
        api = Api(server.url, "short-lived-token")
        f = _files(api, ("s", "d", "t"))[0]
        exp = int(_param(f["url"], "exp"))
        assert exp <= time.time() + 5, f"preSignedUrlTimeoutSeconds: 2 not honoured (exp {exp})"
        assert requests.head(f["url"], timeout=30).status_code == 200
        time.sleep(max(0.0, exp - time.time()) + 1.5)  # wait for the URL to expire (bounded: ~3.5 s)
        r = requests.get(f["url"], timeout=30)
        assert r.status_code == 403, f"expired URL must give 403, got {r.status_code}"
    finally:
        server.stop()


def test_deletion_vector_urls(env, api):
    files = _files(api, env.coords("dv-partitioned-checkpoint"), caps=DELTA_CAPS)
    dvs = [f["deltaSingleAction"]["add"]["deletionVector"] for f in files
           if f["deltaSingleAction"]["add"].get("deletionVector")]
    assert dvs, "dv-partitioned-checkpoint has active files with deletion vectors"
    for dv in dvs:
        assert dv["storageType"] == "p", f"persisted DVs must be rewritten to storageType 'p': {dv}"
        assert dv["pathOrInlineDv"].startswith("http"), "pathOrInlineDv must be a signed URL"
        r = requests.get(dv["pathOrInlineDv"], timeout=30)
        assert r.status_code == 200, f"DV URL: {r.status_code}"
        assert len(r.content) >= dv.get("offset", 0) + dv["sizeInBytes"], "DV file too short"
        assert "cardinality" in dv


def test_data_file_paths_with_escapes(env, api):
    """add.path with %25 / %20 / %3A: the URL must resolve to the right file (decoded once)."""
    for table in ("escaped-chars-partition", "partition-values-all-types", "cdf-merge-delete-partitioned"):
        for f in _files(api, env.coords(table)):
            r = requests.get(f["url"], timeout=30)
            assert r.status_code == 200 and len(r.content) == f["size"], f"{table}: {f['url']} -> {r.status_code}"


def test_no_files_outside_table(env, signed):
    """Dot segments in a signed URL's path never reach a file outside the table: the request is
    refused, or (if the server ignores the cosmetic name segment) answers with the signed file."""
    url = signed[0]["url"]
    legit = requests.get(url, timeout=30).content
    p = urlsplit(url)
    # percent-encoded dot segments survive client-side URL normalisation
    for tail in ("/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd", "/..%2f..%2f..%2f..%2fetc%2fpasswd"):
        evil = urlunsplit((p.scheme, p.netloc, os.path.dirname(p.path) + tail, p.query, ""))
        r = requests.get(evil, timeout=30)
        assert b"root:" not in r.content, f"path traversal {tail} served a file outside the table"
        assert r.status_code in (400, 403, 404) or (r.status_code == 200 and r.content == legit), (
            f"path traversal {tail}: {r.status_code}, {len(r.content)} bytes that are not the signed file")
