"""Object-store realism: behaviour the emulators do not enforce on their own, made enforceable.

1. Method-bound pre-signed URLs (S3). Real S3 binds a SigV4 pre-signed URL to its HTTP method:
   a HEAD on a URL signed for GET is refused. moto accepts any signature and any method, so the
   tests put a *verifying front* (`VerifyingS3Front`, a ThreadingHTTPServer on 127.0.0.1) in
   front of moto. It recomputes the SigV4 signature of every request with botocore -- query
   signatures (pre-signed URLs) with the request's real method, date and lifetime, header
   signatures (the server's own object_store reads) from the signed headers -- answers 403 with
   an S3-style XML error when it does not match (or the URL has expired), and proxies everything
   else to moto (Range passed, body streamed). `check-config` and `serve`'s storage self-test
   must pass through it, the stock connector must read the table through it, and a wrong secret
   must fail `check-config` naming the storage. Negative controls prove the front refuses a HEAD
   on a GET-signed URL and a tampered signature (the self-test's former HEAD would fail here).
   Modelling decisions: the canonical URI is the AWS URI-encoding of the decoded key (S3 and
   MinIO verify the key, not its spelling), because the connector's HTTP stack (aiohttp/yarl)
   re-spells `%3D` as `=` in paths and `%2F` as `/` in queries; and the parquet path (fsspec)
   probes every URL with HEAD before falling back to GET, so refused HEADs of the connector are
   expected (real S3 refuses them too) and only refused GETs count against the server.
2. Azure SAS over the decoded blob name. A deltalake-written table partitioned by a string column
   whose values need escaping in folder names ("north east", "50%off", "a=b", "é/ü", "x#y";
   deltalake escapes them like Spark: `region=50%25off`, ...) and the golden
   `escaped-chars-partition` are uploaded to Azurite (which verifies SAS signatures). Connector
   reads in both formats (latest, time travel, change data feed) equal the deltalake oracle;
   every URL of raw /query and /changes answers downloads with 200 and the local bytes, and its
   `sig` is the HMAC-SHA256 (Azurite account key) of the service-SAS string-to-sign whose
   canonicalized resource is `/blob/devstoreaccount1/lake/<decoded blob name>`. The change-feed
   oracle is derived from deltalake reads of every version (`derived_cdf`): deltalake's own
   `load_cdf` fails on this table (it does not decode the escaped cdc-file path).
3. Directory access under a history floor: a table shared with `startVersion: N` is advertised
   without `accessModes`/`location`, and `temporary-table-credentials` answers 403
   PERMISSION_DENIED "shared from version N on" (without asking STS); the same table without
   `startVersion` gets credentials.
4. `temporaryCredentialValiditySeconds` below the STS minimum (900) with S3 directory access:
   `check-config` and `serve` warn naming the setting and 900; 3600 (or no S3 directory access)
   gives no warning; STS is asked for 900 seconds.

The escaped table is written once per module by deltalake in a child interpreter (deltalake can
abort the interpreter at exit, see oracle.py). Emulators are the session fixtures `moto` and
`azurite`; every server here is started and stopped by this module's fixtures.
"""
import datetime as dt
import hashlib
import hmac
import http.client
import json
import shutil
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from unittest import mock
from urllib.parse import parse_qsl, quote, unquote, urlsplit, urlunsplit

import delta_sharing
import pytest
import requests

import cdf_support as S
import cloud_azure_support as A
import cloud_checks as C
import cloud_support as cs
import dir_access_support as D
import frames
import server as srv
from api import DELTA_CAPS, assert_error, ndjson

HERE = Path(__file__).resolve().parent
GOLDEN_ESCAPED = HERE / "fixtures" / "golden" / "escaped-chars-partition"
CDF_CAPS = "responseformat=delta;readerfeatures=deletionvectors,columnmapping"
USE_DELTA = {"parquet": False, "delta": True}

# partition values whose folder names need escaping (v0), then v1 appends, v2 deletes the `a=b`
# partition (remove actions only), v3 updates `x#y` (a cdc file under _change_data/region=x%23y)
ESCAPED_VALUES = ["north east", "50%off", "a=b", "é/ü", "x#y"]
ESC_LATEST = 3
ESC_TIME_TRAVEL = 1

WRITER = r"""
import json, os, sys
import pyarrow as pa
from deltalake import DeltaTable, write_deltalake

path, values = sys.argv[1], json.loads(sys.argv[2])

def rows(ids, regions):
    return pa.table({
        "id": pa.array(ids, pa.int64()),
        "region": pa.array(regions, pa.string()),
        "amount": pa.array([i * 2.5 for i in ids], pa.float64()),
        "note": pa.array([None if i % 4 == 0 else "note-%d" % i for i in ids], pa.string()),
    })

ids = list(range(1, 2 * len(values) + 1))
write_deltalake(path, rows(ids, [values[i % len(values)] for i in range(len(ids))]), partition_by=["region"],
                configuration={"delta.enableChangeDataFeed": "true"})
write_deltalake(path, rows([100, 101, 102], ["north east", "plain", "50%off"]), mode="append")
DeltaTable(path).delete("region = 'a=b'")
DeltaTable(path).update(predicate="region = 'x#y'", updates={"amount": "1000.0"})
print(json.dumps({"version": DeltaTable(path).version()}))
sys.stdout.flush()
os._exit(0)
"""


# ================================================================================================
# shared: the escaped table, the golden escaped table, their oracle reads


@pytest.fixture(scope="module")
def esc_tables(tmp_path_factory):
    """{"esc": local path of the deltalake-written table, "golden": copy of escaped-chars-partition}."""
    root = tmp_path_factory.mktemp("realism-tables")
    esc = root / "esc"
    p = subprocess.run([sys.executable, "-c", WRITER, str(esc), json.dumps(ESCAPED_VALUES)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, f"writing the escaped table failed:\n{p.stdout}\n{p.stderr}"
    assert json.loads(p.stdout.strip().splitlines()[-1])["version"] == ESC_LATEST
    folders = {d.name for d in esc.iterdir() if d.is_dir()}
    # deltalake escapes the folder names (so the object keys hold literal `%XX`)
    for want in ("region=north%20east", "region=50%25off", "region=a%3Db", "region=x%23y"):
        assert want in folders, f"expected an escaped partition folder {want!r}, got {sorted(folders)}"
    assert (esc / "_change_data").is_dir(), "the UPDATE should have written a cdc file"
    assert GOLDEN_ESCAPED.is_dir(), f"golden fixture missing: {GOLDEN_ESCAPED}"
    golden = root / "golden-esc"
    shutil.copytree(GOLDEN_ESCAPED, golden)
    return {"esc": str(esc), "golden": str(golden)}


# what each commit of the escaped table did (WRITER): the change kind of rows that appear / disappear
ESC_COMMITS = {0: ("insert", None), 1: ("insert", None), 2: (None, "delete"),
               3: ("update_postimage", "update_preimage")}


def derived_cdf(snaps):
    """The change feed [0, latest] of the escaped table, derived from deltalake reads of every version:
    rows that appear at v get ESC_COMMITS[v][0], rows that disappear get ESC_COMMITS[v][1].
    (deltalake's own load_cdf cannot be the oracle here: it does not decode the escaped path of the
    cdc file `_change_data/region=x%2523y/...` and fails with "not found".)"""
    from collections import Counter

    base = snaps["esc@0"]
    rows = []
    prev = Counter()
    for v in range(ESC_LATEST + 1):
        snap = snaps[f"esc@{v}"]
        assert snap.columns == base.columns
        cur = Counter(snap.rows)
        appeared, gone = list((cur - prev).elements()), list((prev - cur).elements())
        kind_in, kind_out = ESC_COMMITS[v]
        assert bool(appeared) == bool(kind_in) and bool(gone) == bool(kind_out), (
            f"version {v}: unexpected changes +{len(appeared)} -{len(gone)}")
        rows += [r + (kind_in, v) for r in appeared] + [r + (kind_out, v) for r in gone]
        prev = cur
    cols = base.columns + ["_change_type", "_commit_version"]
    types = {**base.types, "_change_type": "str", "_commit_version": "int"}
    return frames.Snapshot(cols, types, sorted(rows, key=repr), "deltalake (per-version reads)")


@pytest.fixture(scope="module")
def esc_oracle(esc_tables, tmp_path_factory):
    """deltalake reads: esc at every version (and latest), golden@latest; esc@cdf derived from them."""
    jobs = [{"key": "esc@None", "kind": "read", "path": esc_tables["esc"], "method": "to_pyarrow_table",
             "version": None},
            {"key": "golden@None", "kind": "read", "path": esc_tables["golden"], "method": "to_pyarrow_table",
             "version": None}]
    jobs += [{"key": f"esc@{v}", "kind": "read", "path": esc_tables["esc"], "method": "to_pyarrow_table",
              "version": v} for v in range(ESC_LATEST + 1)]
    snaps = A.snapshot_reads(jobs, tmp_path_factory.mktemp("realism-oracle"))
    regions = {r[snaps["esc@None"].columns.index("region")] for r in snaps["esc@None"].rows}
    assert {"north east", "50%off", "é/ü", "x#y", "plain"} <= regions and "a=b" not in regions, regions
    snaps["esc@cdf"] = derived_cdf(snaps)
    return snaps


def _without_commit_timestamp(snap):
    return snap.project([c for c in snap.columns if c.lower() != "_commit_timestamp"])


# ================================================================================================
# 1. a verifying S3 front (SigV4 checked for real) in front of moto


S3_ERROR_XML = ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message>'
                "<RequestId>0000000000000000</RequestId><HostId>lakeshare-test-front</HostId></Error>")
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
              "transfer-encoding", "upgrade", "host"}


def _amz_path(path):
    """The SigV4 canonical URI S3 computes for a request path: the decoded object key, URI-encoded
    the AWS way segment by segment (S3 does not normalise dot segments or double-encode). So two
    spellings of the same key (`region%3Dx` and `region=x`, as HTTP clients such as aiohttp/yarl
    re-spell them) have the same canonical URI, and a different key never has."""
    return C.uri_encode_path(unquote(path))


def _amz_query(pairs):
    """A query string from decoded pairs, encoded the AWS way (every byte but A-Za-z0-9-._~)."""
    return "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in pairs)


def sigv4_query_signature(method, url, access_key, secret_key, region):
    """The SigV4 query signature botocore computes for `METHOD url` at the URL's own X-Amz-Date and
    X-Amz-Expires (only `host` signed, as in every pre-signed URL the server issues)."""
    from botocore.auth import S3SigV4QueryAuth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    p = urlsplit(url)
    q = dict(parse_qsl(p.query, keep_blank_values=True))
    when = dt.datetime.strptime(q["X-Amz-Date"], "%Y%m%dT%H%M%SZ")
    others = [(k, v) for k, v in parse_qsl(p.query, keep_blank_values=True) if k not in C.AMZ_AUTH_PARAMS]
    req = AWSRequest(method=method, url=urlunsplit((p.scheme, p.netloc, _amz_path(p.path), _amz_query(others), "")))
    auth = S3SigV4QueryAuth(Credentials(access_key, secret_key), "s3", region, expires=int(q["X-Amz-Expires"]))
    with mock.patch("botocore.auth.get_current_datetime", return_value=when):
        auth.add_auth(req)
    return dict(parse_qsl(urlsplit(req.url).query))["X-Amz-Signature"]


def sigv4_header_signature(method, url, headers, signed_names, amz_date, secret_key, access_key, region):
    """The SigV4 Authorization-header signature of a request (botocore's canonical request with the
    canonical URI of `_amz_path`, the query re-encoded the AWS way, exactly the signed headers, and
    the x-amz-content-sha256 value as payload hash)."""
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    p = urlsplit(url)
    pairs = parse_qsl(p.query, keep_blank_values=True)
    req = AWSRequest(method=method, url=urlunsplit((p.scheme, p.netloc, _amz_path(p.path), _amz_query(pairs), "")),
                     headers={n: headers[n] for n in signed_names})
    req.context["timestamp"] = amz_date
    signer = S3SigV4Auth(Credentials(access_key, secret_key), "s3", region)
    got_names = signer.signed_headers(signer.headers_to_sign(req)).split(";")
    if got_names != sorted(signed_names):
        return None
    canonical = signer.canonical_request(req)
    return signer.signature(signer.string_to_sign(req, canonical), req)


class FrontEvent:
    def __init__(self, method, path, kind, verdict, reason, headers):
        self.method = method
        self.path = path
        self.kind = kind  # "query" (pre-signed URL), "header" (Authorization), "anonymous"
        self.verdict = verdict  # "ok" (proxied) or "refused" (403 sent)
        self.reason = reason
        self.headers = headers  # {lowercase name: value}

    def __repr__(self):
        why = f": {self.reason}" if self.reason else ""
        return f"<{self.kind} {self.method} {self.path[:160]} {self.verdict}{why}>"


class VerifyingS3Front:
    """An S3 endpoint on 127.0.0.1 (free port) that checks SigV4 like real S3 and proxies to moto."""

    def __init__(self, upstream, access_key, secret_key, region):
        self.upstream = urlsplit(upstream)
        self.access_key, self.secret_key, self.region = access_key, secret_key, region
        self.events = []
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _handle(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                url = f"http://{headers.get('host', '')}{self.path}"
                kind, reason = outer.verify(self.command, url, headers, body)
                ev = FrontEvent(self.command, self.path, kind, "refused" if reason else "ok", reason, headers)
                with outer._lock:
                    outer.events.append(ev)
                if reason:
                    code, message = reason.split(": ", 1)
                    self._send(403, [("Content-Type", "application/xml")],
                               S3_ERROR_XML.format(code=code, message=message).encode())
                    return
                outer.proxy(self, body)

            def _send(self, status, headers, data):
                self.send_response(status)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _handle

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    # -- verification ------------------------------------------------------------------------
    def verify(self, method, url, headers, body):
        """(kind, None) when the request is validly signed, else (kind, "Code: message")."""
        q = dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))
        if "X-Amz-Signature" in q:
            return "query", self._verify_query(method, url, q)
        auth = headers.get("authorization", "")
        if auth.startswith("AWS4-HMAC-SHA256 "):
            return "header", self._verify_header(method, url, headers, body, auth)
        return "anonymous", "AccessDenied: Access Denied (anonymous request to a private bucket)"

    def _check_scope(self, credential, date):
        parts = credential.split("/")
        if len(parts) != 5 or parts[0] != self.access_key:
            return f"InvalidAccessKeyId: The AWS Access Key Id you provided does not exist in our records ({parts[0]})"
        if parts[1:] != [date[:8], self.region, "s3", "aws4_request"]:
            return f"AuthorizationQueryParametersError: bad credential scope {'/'.join(parts[1:])}"
        return None

    def _verify_query(self, method, url, q):
        for k in ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders"):
            if k not in q:
                return f"AuthorizationQueryParametersError: {k} is missing"
        if q["X-Amz-Algorithm"] != "AWS4-HMAC-SHA256":
            return "AuthorizationQueryParametersError: unsupported algorithm"
        bad = self._check_scope(q["X-Amz-Credential"], q["X-Amz-Date"])
        if bad:
            return bad
        if q["X-Amz-SignedHeaders"] != "host":
            return f"AccessDenied: this front only verifies host-signed URLs, got {q['X-Amz-SignedHeaders']}"
        try:
            signed_at = dt.datetime.strptime(q["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.timezone.utc)
            lifetime = int(q["X-Amz-Expires"])
        except ValueError:
            return "AuthorizationQueryParametersError: bad X-Amz-Date or X-Amz-Expires"
        now = dt.datetime.now(dt.timezone.utc)
        if now > signed_at + dt.timedelta(seconds=lifetime):
            return "AccessDenied: Request has expired"
        want = sigv4_query_signature(method, url, self.access_key, self.secret_key, self.region)
        if not hmac.compare_digest(want, q["X-Amz-Signature"]):
            return ("SignatureDoesNotMatch: The request signature we calculated does not match the signature "
                    f"you provided ({method} request)")
        return None

    def _verify_header(self, method, url, headers, body, auth):
        fields = {}
        for part in auth[len("AWS4-HMAC-SHA256 "):].split(","):
            k, _, v = part.strip().partition("=")
            fields[k] = v
        if not {"Credential", "SignedHeaders", "Signature"} <= set(fields):
            return "AuthorizationHeaderMalformed: incomplete Authorization header"
        amz_date = headers.get("x-amz-date")
        if not amz_date:
            return "AccessDenied: x-amz-date is missing"
        bad = self._check_scope(fields["Credential"], amz_date)
        if bad:
            return bad
        signed = fields["SignedHeaders"].split(";")
        if "host" not in signed or any(n not in headers for n in signed):
            return "AccessDenied: a signed header was not sent (or host is not signed)"
        payload = headers.get("x-amz-content-sha256")
        if payload is None:
            return "InvalidRequest: Missing required header for this request: x-amz-content-sha256"
        if payload != "UNSIGNED-PAYLOAD" and payload != hashlib.sha256(body).hexdigest():
            return "XAmzContentSHA256Mismatch: the provided x-amz-content-sha256 does not match the body"
        want = sigv4_header_signature(method, url, headers, signed, amz_date, self.secret_key,
                                      self.access_key, self.region)
        if want is None or not hmac.compare_digest(want, fields["Signature"]):
            return ("SignatureDoesNotMatch: The request signature we calculated does not match the signature "
                    f"you provided ({method} request)")
        return None

    # -- proxy -------------------------------------------------------------------------------
    def proxy(self, handler, body):
        conn = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port, timeout=60)
        try:
            fwd = {k: v for k, v in handler.headers.items() if k.lower() not in HOP_BY_HOP}
            fwd["Host"] = self.upstream.netloc
            conn.request(handler.command, handler.path, body=body or None, headers=fwd)
            resp = conn.getresponse()
            # send_response adds its own Server and Date (aiohttp refuses duplicated ones)
            headers = [(k, v) for k, v in resp.getheaders() if k.lower() not in HOP_BY_HOP | {"server", "date"}]
            length = resp.getheader("Content-Length")
            handler.send_response(resp.status)
            if length is None and handler.command != "HEAD":
                data = resp.read()
                for k, v in headers:
                    handler.send_header(k, v)
                handler.send_header("Content-Length", str(len(data)))
                handler.end_headers()
                handler.wfile.write(data)
                return
            for k, v in headers:
                handler.send_header(k, v)
            if length is None:
                handler.send_header("Content-Length", "0")
            handler.end_headers()
            if handler.command == "HEAD":
                resp.read()
                return
            while True:  # stream the body
                chunk = resp.read(64 * 1024)
                if not chunk:
                    break
                handler.wfile.write(chunk)
        finally:
            conn.close()

    # -- records -----------------------------------------------------------------------------
    def mark(self):
        with self._lock:
            return len(self.events)

    def since(self, mark):
        with self._lock:
            return list(self.events[mark:])

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


S3_PREFIX = "realism"  # s3://lake/realism/...: the storage location behind the front
S3_STORAGE = f"s3://lake/{S3_PREFIX}/"
S3_TABLE = f"s3://lake/{S3_PREFIX}/esc"
S3_QUALIFIED = f"{C.SHARE}.{C.SCHEMA}.esc"


@pytest.fixture(scope="module")
def front(moto):
    f = VerifyingS3Front(moto.endpoint, cs.S3_ACCESS_KEY, cs.S3_SECRET_KEY, cs.S3_REGION)
    yield f
    f.stop()


@pytest.fixture(scope="module")
def s3_uploaded(moto, esc_tables):
    loc = moto.upload_dir(esc_tables["esc"], f"{S3_PREFIX}/esc")
    assert loc == S3_TABLE
    return loc


def _front_storage(moto, front, secret_file):
    entry = moto.storage_entry(secret_file)
    entry["location"] = S3_STORAGE
    entry["s3"]["endpoint"] = front.url
    return entry


@pytest.fixture(scope="module")
def s3front(lakeshare_bin, moto, front, s3_uploaded, tmp_path_factory):
    """`lakeshare serve` whose S3 storage endpoint is the verifying front (storage self-test on,
    the default). `start_events`: what the front saw while the server started."""
    work = tmp_path_factory.mktemp("realism-s3")
    secret = cs.Moto.write_secret(work / "s3-secret.txt")
    mark = front.mark()
    cloud = C.CloudServer(lakeshare_bin, work / "server", {"esc": S3_TABLE}, [_front_storage(moto, front, secret)])
    cloud.start_events = front.since(mark)
    cloud.workdir_path = work
    try:
        yield cloud
    finally:
        cloud.stop()


def _refused(events):
    return [e for e in events if e.verdict == "refused"]


def _one_signed_url(cloud):
    r = cloud.query("esc", {})
    assert r.status_code == 200, f"query esc: {r.status_code} {r.text[:500]}"
    urls = C.signed_urls(ndjson(r))
    assert urls, "no signed URLs"
    return urls


def _partition_url(cloud):
    """A signed URL of a file under an escaped partition folder (path holds `%3D` and `%25`)."""
    for url, _, _ in _one_signed_url(cloud):
        if "region%3D50%2525off/" in url:
            return url
    raise AssertionError("no signed URL under region=50%25off")


def test_front_refuses_head_on_get_url_and_tampered_signature(s3front, front, esc_tables):
    """Negative controls: the front is as strict as S3. A GET-signed URL works for GET (and a
    Range GET) but a HEAD with the very same URL is refused 403, as is a changed signature or a
    changed object key; the server's former self-test (HEAD) would therefore have failed here.
    Re-spelling the path (`%3D` sent as `=`, as aiohttp does) names the same key and is accepted."""
    url = _partition_url(s3front)
    local = C.local_file_for(url, f"/lake/{C.uri_encode_path(S3_PREFIX + '/esc')}/", esc_tables["esc"])
    want = Path(local).read_bytes()
    mark = front.mark()
    r = requests.get(url, timeout=30)
    assert r.status_code == 200 and r.content == want, f"GET of a GET-signed URL: {r.status_code} {r.text[:300]}"
    r = requests.get(url, headers={"Range": "bytes=0-0"}, timeout=30)
    assert r.status_code == 206 and r.content == want[:1], f"Range GET: {r.status_code} {r.content[:50]!r}"
    respelled = url.replace("region%3D", "region=", 1)
    assert respelled != url
    r = requests.get(respelled, timeout=30)
    assert r.status_code == 200 and r.content == want, f"GET with `=` for `%3D`: {r.status_code} {r.text[:300]}"
    head = requests.head(url, timeout=30)
    assert head.status_code == 403, f"HEAD on a URL pre-signed for GET must be refused (403), got {head.status_code}"
    sig = C.params(url)["X-Amz-Signature"]
    tampered = url.replace(f"X-Amz-Signature={sig}", "X-Amz-Signature=" + ("0" if sig[0] != "0" else "1") + sig[1:])
    assert tampered != url
    bad = requests.get(tampered, timeout=30)
    assert bad.status_code == 403, f"a tampered signature must be refused (403), got {bad.status_code}"
    assert "<Code>SignatureDoesNotMatch</Code>" in bad.text, bad.text[:300]
    other_key = requests.get(C.tamper_path(url), timeout=30)
    assert other_key.status_code == 403, f"the signature of one key must not open another: {other_key.status_code}"
    evs = [e for e in front.since(mark) if e.kind == "query"]
    assert [(e.method, e.verdict) for e in evs] == [
        ("GET", "ok"), ("GET", "ok"), ("GET", "ok"), ("HEAD", "refused"), ("GET", "refused"), ("GET", "refused")], evs


def test_front_verifies_header_signatures(front, moto):
    """Header-signed requests are verified too: a boto3 client with the right secret reads through
    the front, one with a wrong secret is refused (moto alone would accept both)."""
    import boto3
    from botocore.exceptions import ClientError

    def client(secret):
        return boto3.client("s3", endpoint_url=front.url, aws_access_key_id=cs.S3_ACCESS_KEY,
                            aws_secret_access_key=secret, region_name=cs.S3_REGION)

    key = f"{S3_PREFIX}/front-probe.txt"
    moto.client().put_object(Bucket=moto.bucket, Key=key, Body=b"probe")
    assert client(cs.S3_SECRET_KEY).get_object(Bucket=moto.bucket, Key=key)["Body"].read() == b"probe"
    listed = client(cs.S3_SECRET_KEY).list_objects_v2(Bucket=moto.bucket, Prefix=f"{S3_PREFIX}/front-")
    assert [o["Key"] for o in listed["Contents"]] == [key]
    with pytest.raises(ClientError) as err:
        client(cs.S3_SECRET_KEY + "x").get_object(Bucket=moto.bucket, Key=key)
    assert err.value.response["Error"]["Code"] == "SignatureDoesNotMatch", err.value.response
    moto.client().get_object(Bucket=moto.bucket, Key=key)  # moto itself does not care


def test_serve_self_test_passed_the_front(s3front):
    """`serve` ran its storage self-test at start: a pre-signed GET with Range: bytes=0-0 that
    the front verified, and no request of the server was refused."""
    evs = s3front.start_events
    assert not _refused(evs), f"the front refused requests of the starting server: {_refused(evs)}"
    presigned = [e for e in evs if e.kind == "query"]
    assert presigned, f"no pre-signed request during the self-test at start: {evs}"
    assert all(e.method == "GET" and e.headers.get("range") == "bytes=0-0" for e in presigned), presigned
    assert any(e.kind == "header" for e in evs), f"the log reads should be header-signed: {evs}"


def test_check_config_passes_through_verifying_front(lakeshare_bin, s3front, front):
    mark = front.mark()
    p = srv.lakeshare(lakeshare_bin, "check-config", s3front.config, check=False)
    out = p.stdout + p.stderr
    evs = front.since(mark)
    assert p.returncode == 0, (
        f"check-config must accept a good S3 credential behind a SigV4-verifying endpoint (exit {p.returncode}):\n"
        f"{out}\nfront saw: {evs}")
    assert not _refused(evs), f"the front refused: {_refused(evs)}"
    presigned = [e for e in evs if e.kind == "query"]
    assert presigned and all(e.method == "GET" for e in presigned), (
        f"check-config must fetch one pre-signed URL with GET (the method it was signed for): {evs}")
    assert S3_QUALIFIED in out, out


@pytest.mark.parametrize("fmt", ["parquet", "delta"])
@pytest.mark.parametrize("version", [None, ESC_TIME_TRAVEL], ids=["latest", f"v{ESC_TIME_TRAVEL}"])
def test_connector_reads_through_front(s3front, front, esc_oracle, fmt, version):
    mark = front.mark()
    kw = {} if version is None else {"version": version}
    df = delta_sharing.load_as_pandas(s3front.url("esc"), use_delta_format=USE_DELTA[fmt], **kw)
    frames.assert_same_table(frames.Snapshot.from_pandas(df), esc_oracle[f"esc@{version}"],
                             f"escaped table behind the verifying S3 front, {fmt}, {version or 'latest'}")
    evs = front.since(mark)
    # the parquet path (fsspec) probes each URL with HEAD first and falls back to GET when refused:
    # only refused GETs would be a problem of the server's URLs
    bad = [e for e in _refused(evs) if e.method != "HEAD"]
    assert not bad, f"the front refused: {bad}"
    assert any(e.kind == "query" and e.method == "GET" and e.verdict == "ok" for e in evs), (
        "the connector should have fetched signed URLs")


def test_check_config_wrong_secret_names_storage(lakeshare_bin, moto, front, s3front, tmp_path):
    secret = tmp_path / "wrong-secret.txt"
    secret.write_text(cs.S3_SECRET_KEY + "-wrong\n")
    shares = [{"name": C.SHARE, "schemas": [{"name": C.SCHEMA, "tables": [
        {"name": "esc", "location": S3_TABLE, "historyShared": True}]}]}]
    cfg = srv.write_config(str(tmp_path / "wrong.yaml"), shares,
                           extra={"storage": [_front_storage(moto, front, secret)]})
    mark = front.mark()
    p = srv.lakeshare(lakeshare_bin, "check-config", cfg, check=False, timeout=120)
    out = p.stdout + p.stderr
    assert p.returncode != 0, f"check-config accepted a wrong S3 secret:\n{out}"
    assert _refused(front.since(mark)), "the front should have refused the wrongly signed requests"
    assert f"storage '{S3_STORAGE}'" in out, f"check-config must name the storage location {S3_STORAGE!r}:\n{out}"
    assert S3_QUALIFIED in out, f"check-config must name the table:\n{out}"
    assert cs.S3_SECRET_KEY not in out, "a secret appears in check-config output"


# ================================================================================================
# 2. Azure SAS over decoded blob names (Azurite verifies SAS)


AZ_SHARE, AZ_SCHEMA = "cloud", "az"
AZ_PREFIX = "realism"
AZ_TABLES = {"esc": "esc", "golden": "golden-esc"}  # share table -> blob folder under realism/


@pytest.fixture(scope="module")
def az_realism(lakeshare_bin, azurite, esc_tables, tmp_path_factory):
    locs = {}
    for name, folder in AZ_TABLES.items():
        locs[name] = azurite.upload_dir(esc_tables[name], f"{AZ_PREFIX}/{folder}")
    d = A.Deployment(lakeshare_bin, tmp_path_factory.mktemp("realism-az"),
                     A.one_share([{"name": n, "location": loc, "historyShared": True} for n, loc in locs.items()],
                                 AZ_SHARE, AZ_SCHEMA),
                     extra={"storage": [A.azure_entry(azurite)]})
    try:
        profile, token = d.recipient("reader")
        yield {"d": d, "profile": profile, "api": d.api(token)}
    finally:
        d.stop()


def _az_url(az, table):
    return f"{az['profile']}#{AZ_SHARE}.{AZ_SCHEMA}.{table}"


AZ_READS = [("esc", "parquet", None), ("esc", "delta", None), ("esc", "parquet", ESC_TIME_TRAVEL),
            ("esc", "delta", ESC_TIME_TRAVEL), ("golden", "parquet", None), ("golden", "delta", None)]


@pytest.mark.parametrize("table,fmt,version", AZ_READS,
                         ids=[f"{t}-{f}-{'latest' if v is None else 'v%d' % v}" for t, f, v in AZ_READS])
def test_azure_escaped_partitions_connector(az_realism, esc_oracle, table, fmt, version):
    kw = {} if version is None else {"version": version}
    df = delta_sharing.load_as_pandas(_az_url(az_realism, table), use_delta_format=USE_DELTA[fmt], **kw)
    frames.assert_same_table(frames.Snapshot.from_pandas(df), esc_oracle[f"{table}@{version}"],
                             f"{table} (escaped partition folders) in Azurite, {fmt}, {version or 'latest'}")


@pytest.mark.parametrize("fmt", ["parquet", "delta"])
def test_azure_escaped_partitions_changes(az_realism, esc_oracle, fmt):
    df = delta_sharing.load_table_changes_as_pandas(_az_url(az_realism, "esc"), starting_version=0,
                                                    use_delta_format=USE_DELTA[fmt])
    got, want = S.align(_without_commit_timestamp(S.client_snapshot(df)), esc_oracle["esc@cdf"])
    assert want.rows
    frames.assert_same_table(got, want, f"escaped table changes [0, latest] in Azurite, {fmt}")


def blob_sas_string_to_sign(q, canonical_resource):
    """Service SAS string-to-sign (version 2020-12-06 and later) of a blob SAS with fields `q`."""
    return "\n".join([q["sp"], q.get("st", ""), q["se"], canonical_resource, q.get("si", ""), q.get("sip", ""),
                      q.get("spr", ""), q["sv"], q["sr"], q.get("sst", ""), q.get("ses", ""), q.get("rscc", ""),
                      q.get("rscd", ""), q.get("rsce", ""), q.get("rscl", ""), q.get("rsct", "")])


RAW_AZ = [("esc", "query", {}, None), ("esc", "query", {}, DELTA_CAPS), ("esc", "query", {"version": 1}, None),
          ("esc", "changes", "startingVersion=0", None), ("esc", "changes", "startingVersion=0", CDF_CAPS),
          ("golden", "query", {}, None), ("golden", "query", {}, DELTA_CAPS)]


@pytest.fixture(scope="module")
def az_raw_urls(az_realism):
    """[(label, table, url, what)] of every signed URL in the raw answers of RAW_AZ."""
    api = az_realism["api"]
    out = []
    for table, kind, arg, caps in RAW_AZ:
        if kind == "query":
            r = api.query(AZ_SHARE, AZ_SCHEMA, table, arg, caps=caps)
        else:
            h = {"delta-sharing-capabilities": caps} if caps else None
            r = api.get(api.table_path(AZ_SHARE, AZ_SCHEMA, table, "/changes") + "?" + arg, headers=h)
        label = f"{table} {kind} {arg} {'delta' if caps else 'parquet'}"
        assert r.status_code == 200, f"{label}: {r.status_code} {r.text[:500]}"
        urls = C.signed_urls(ndjson(r))
        assert urls, f"{label}: no signed URLs"
        out += [(label, table, u, w) for u, _, w in urls]
    return out


def test_azure_escaped_urls_download_exact_bytes(az_realism, esc_tables, az_raw_urls):
    failures, checked = [], set()
    for label, table, url, what in az_raw_urls:
        if url in checked:
            continue
        checked.add(url)
        prefix = f"/{cs.AZURITE_ACCOUNT}/{cs.Azurite.container}/{AZ_PREFIX}/{AZ_TABLES[table]}/"
        local = C.local_file_for(url, prefix, esc_tables[table])
        r = requests.get(url, timeout=30)
        if r.status_code != 200:
            failures.append(f"{label} {what}: GET -> {r.status_code} {r.text[:200]!r}\n    {url}")
        elif r.content != Path(local).read_bytes():
            failures.append(f"{label} {what}: bytes differ from {local}")
    assert not failures, f"{len(failures)} of {len(checked)} signed URLs failed:\n  " + "\n  ".join(failures)
    # the escaped names (literal `%XX` in blob names), the cdc file and a removed file were covered
    names = [unquote(urlsplit(u).path) for _, _, u, _ in az_raw_urls]
    for frag in ("region=50%25off/", "region=a%3Db/", "region=%C3%A9%2F%C3%BC/", "_change_data/region=x%23y/",
                 "region=north%20east/"):
        assert any(frag in n for n in names), f"no URL for a blob under {frag!r}: {sorted(set(names))}"
    assert any("%25" in n for n in names if "golden" in n), "golden: expected blob names with a literal '%25'"


def test_azure_sas_signed_over_decoded_blob_name(az_raw_urls):
    """sig = HMAC-SHA256(account key, string-to-sign with /blob/<account>/<container>/<decoded name>);
    for these names the URL-encoded spelling gives another signature, so the check decides."""
    wrong, decisive = [], 0
    for label, _, url, what in az_raw_urls:
        q = A.sas(url)
        assert (q.get("sr"), q.get("sp")) == ("b", "r"), f"{label} {what}: not a read-only blob SAS: {q}"
        raw_path = urlsplit(url).path
        decoded = "/blob" + unquote(raw_path)
        assert decoded.startswith(f"/blob/{cs.AZURITE_ACCOUNT}/{cs.Azurite.container}/{AZ_PREFIX}/"), decoded
        want = D.azure_sig(cs.AZURITE_KEY, blob_sas_string_to_sign(q, decoded))
        encoded_sig = D.azure_sig(cs.AZURITE_KEY, blob_sas_string_to_sign(q, "/blob" + raw_path))
        if "/blob" + raw_path != decoded:
            decisive += 1
            assert want != encoded_sig
        if q["sig"] != want:
            kind = "the URL-encoded name" if q["sig"] == encoded_sig else "neither spelling"
            wrong.append(f"{label} {what}: sig matches {kind}; decoded resource {decoded!r}")
    assert not wrong, f"{len(wrong)} SAS signatures not computed over the decoded blob name:\n  " + "\n  ".join(wrong)
    assert decisive >= 5, f"only {decisive} URLs have a percent-encoded path: the check would not decide"


# ================================================================================================
# 3 + 4. directory access under a history floor; the STS minimum warning


DIR_PREFIX = "realism-dir"
DIR_STORAGE = f"s3://lake/{DIR_PREFIX}/"
DIR_TABLE = f"s3://lake/{DIR_PREFIX}/esc"
FLOOR = 2
DIR_SHARE, DIR_SCHEMA = "dir", "s"
FED = ("ASIAREALISM000001", "realism-secret", "realism-session-token", "2031-02-03T04:05:06Z")


def _sts_answer(rec):
    form = rec.form()
    if form.get("Action") != "GetFederationToken":
        return 400, "text/xml", D.STS_ERROR_XML
    return 200, "text/xml", D.sts_credentials_xml("GetFederationToken", *FED)


@pytest.fixture(scope="module")
def fake_sts():
    r = D.Recorder(_sts_answer)
    yield r
    r.stop()


def _dir_entry(moto, secret, sts_url, directory=True):
    e = moto.storage_entry(secret)
    e["location"] = DIR_STORAGE
    if directory:
        e["s3"].update({"temporaryCredentials": True, "stsEndpoint": sts_url + "/"})
    return e


DIR_TABLES = [
    {"name": "floor", "location": DIR_TABLE, "historyShared": True, "startVersion": FLOOR},
    {"name": "full", "location": DIR_TABLE, "historyShared": True},
]


def _dir_shares():
    return [{"name": DIR_SHARE, "schemas": [{"name": DIR_SCHEMA, "tables": DIR_TABLES}]}]


@pytest.fixture(scope="module")
def dirsrv(lakeshare_bin, moto, esc_tables, fake_sts, tmp_path_factory):
    """Directory access on S3 (moto, fake STS) with temporaryCredentialValiditySeconds: 300."""
    assert moto.upload_dir(esc_tables["esc"], f"{DIR_PREFIX}/esc") == DIR_TABLE
    work = tmp_path_factory.mktemp("realism-dir")
    secret = cs.Moto.write_secret(work / "s3-secret.txt")
    extra = {"storage": [_dir_entry(moto, secret, fake_sts.url)], "temporaryCredentialValiditySeconds": 300}
    s = D.DirServer(lakeshare_bin, work / "server", _dir_shares(), extra, {"reader": [DIR_SHARE]})
    s.secret = secret
    yield s
    s.stop()


@pytest.mark.parametrize("path", [f"/shares/{DIR_SHARE}/all-tables",
                                  f"/shares/{DIR_SHARE}/schemas/{DIR_SCHEMA}/tables"])
def test_history_floor_table_not_advertised_with_dir(dirsrv, path):
    r = dirsrv.api("reader").get(path)
    assert r.status_code == 200, r.text[:500]
    items = {t["name"]: t for t in r.json()["items"]}
    assert set(items) == {"floor", "full"}, items
    assert "accessModes" not in items["floor"] and "location" not in items["floor"], (
        f"a table shared with startVersion {FLOOR} must not advertise directory access: {items['floor']}")
    assert items["full"].get("accessModes") == ["url", "dir"], items["full"]
    assert unquote(items["full"].get("location", "")).rstrip("/") == DIR_TABLE, items["full"]


@pytest.mark.parametrize("body", [None, {"location": DIR_TABLE}, {"location": DIR_TABLE + "/_delta_log/"}],
                         ids=["no-location", "root", "log-dir"])
def test_history_floor_table_credentials_refused(dirsrv, fake_sts, body):
    mark = fake_sts.mark()
    r = dirsrv.creds((DIR_SHARE, DIR_SCHEMA, "floor"), body=body, who="reader")
    _, msg = assert_error(r, 403, "PERMISSION_DENIED", f"shared from version {FLOOR} on",
                          what=f"temporary-table-credentials of a table with startVersion {FLOOR}")
    assert fake_sts.since(mark) == [], "no STS request may be made for a refused table"
    assert "awsTempCredentials" not in r.text and FED[1] not in r.text


def test_history_floor_table_still_readable_through_urls(dirsrv):
    """Control: the floored table itself works (query URLs), only directory access is refused."""
    r = dirsrv.api("reader").query(DIR_SHARE, DIR_SCHEMA, "floor", {})
    assert r.status_code == 200, f"{r.status_code} {r.text[:500]}"
    assert C.signed_urls(ndjson(r)), "no file URLs"


def test_same_table_without_floor_gets_credentials(dirsrv, fake_sts):
    mark = fake_sts.mark()
    r = dirsrv.creds((DIR_SHARE, DIR_SCHEMA, "full"), who="reader")
    assert r.status_code == 200, f"{r.status_code} {r.text[:500]}"
    c = r.json()["credentials"]
    assert c["awsTempCredentials"] == {"accessKeyId": FED[0], "secretAccessKey": FED[1], "sessionToken": FED[2]}, c
    assert unquote(c["location"]).rstrip("/") == DIR_TABLE, c
    reqs = fake_sts.since(mark)
    assert len(reqs) == 1, reqs
    # temporaryCredentialValiditySeconds 300 is below the STS minimum: 900 is what STS is asked for
    assert reqs[0].form()["DurationSeconds"] == "900", reqs[0].form()


def _has_sts_warning(text):
    return "temporaryCredentialValiditySeconds" in text and "900" in text


def test_serve_warns_validity_below_sts_minimum(dirsrv):
    out = "".join(dirsrv.server.stdout_lines) + dirsrv.server.stderr_text()
    assert _has_sts_warning(out), (
        "serve with temporaryCredentialValiditySeconds: 300 and S3 directory access must warn naming "
        f"temporaryCredentialValiditySeconds and 900; output:\n{out[-3000:]}")


@pytest.mark.parametrize("validity,directory,warned", [(300, True, True), (3600, True, False), (300, False, False)],
                         ids=["300-dir-warns", "3600-dir-silent", "300-no-dir-silent"])
def test_check_config_sts_minimum_warning(lakeshare_bin, moto, dirsrv, fake_sts, tmp_path, validity, directory,
                                          warned):
    extra = {"storage": [_dir_entry(moto, dirsrv.secret, fake_sts.url, directory)],
             "temporaryCredentialValiditySeconds": validity}
    cfg = srv.write_config(str(tmp_path / "c.yaml"), _dir_shares(), extra=extra)
    p = srv.lakeshare(lakeshare_bin, "check-config", cfg, check=False)
    out = p.stdout + p.stderr
    assert p.returncode == 0, f"check-config failed:\n{out}"
    if warned:
        assert _has_sts_warning(out), f"check-config must warn (temporaryCredentialValiditySeconds, 900):\n{out}"
    else:
        assert "temporaryCredentialValiditySeconds" not in out, f"unexpected warning:\n{out}"
