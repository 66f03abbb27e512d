"""Helpers for the object-store table tests (test_cloud_s3.py, test_cloud_gcs.py).

* `CloudServer`: a `lakeshare serve` whose one share ("cloud", schema "s") holds tables in an
  emulated store, plus a recipient profile pointing at it and a raw-HTTP `Api` that remembers every
  response body (for the "secret never leaves the server" checks).
* `signed_urls(objs)`: every pre-signed URL of a /query or /changes body, in either format, with
  the `expirationTimestamp` of its line.
* `sigv4_recompute(url, ...)`: the S3 SigV4 query signature recomputed with botocore's own signer
  for the same URL, date and lifetime (moto does not check signatures, so the tests do).
* `gcs_v4_string_to_sign(url)` / `gcs_v4_verify(url, public_key)`: Google's V4 signing
  (GOOG4-RSA-SHA256) rebuilt from the spec and checked with the service account's public key
  (fake-gcs-server does not check signatures either).
* `local_file_for(url, bucket_prefix, local_root)`: the local file a URL must serve (the URL path
  decoded once, relative to the table root).
"""
import datetime as dt
import hashlib
import json
import os
import uuid
from pathlib import Path
from unittest import mock
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

import requests

import deltalog
import server as srv
from api import Api

SHARE = "cloud"
SCHEMA = "s"

# The query parameters of a SigV4 pre-signed URL that the signer itself adds.
AMZ_AUTH_PARAMS = ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires",
                   "X-Amz-SignedHeaders", "X-Amz-Security-Token", "X-Amz-Signature")


class RecordingApi(Api):
    """`Api` that keeps the text of every response (status, URL, body)."""

    def __init__(self, endpoint, token):
        super().__init__(endpoint, token)
        self.seen = []

    def get(self, path, params=None, headers=None, token=True, **kw):
        r = super().get(path, params=params, headers=headers, token=token, **kw)
        self.seen.append((r.status_code, r.url, r.text))
        return r

    def post(self, path, body=None, headers=None, token=True, data=None):
        r = super().post(path, body, headers=headers, token=token, data=data)
        self.seen.append((r.status_code, r.url, r.text))
        return r


class CloudServer:
    """`lakeshare serve` with share `cloud`, schema `s`, tables {name: location} and `storage:`."""

    def __init__(self, binary, workdir, tables, storage, extra=None, env=None):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.tables = dict(tables)
        shares = [{"name": SHARE, "schemas": [{"name": SCHEMA, "tables": [
            {"name": n, "location": loc, "historyShared": True} for n, loc in self.tables.items()]}]}]
        cfg_extra = {"storage": list(storage)}
        cfg_extra.update(extra or {})
        self.config = srv.write_config(str(self.workdir / "lakeshare.yaml"), shares, extra=cfg_extra)
        self.state = str(self.workdir / "state.db")
        self.profile = str(self.workdir / "recipient.share")
        # the CLI reads the config too (and so resolves {env: NAME} values)
        with mock.patch.dict(os.environ, env or {}):
            prof = srv.create_recipient(binary, self.state, "cloudreader", [SHARE], self.profile,
                                        endpoint="http://127.0.0.1:9/delta-sharing", config=self.config)
        self.token = prof["bearerToken"]
        run_env = None
        if env:
            run_env = dict(os.environ)
            run_env.update(env)
        self.server = srv.start_server(binary, self.config, self.state, workdir=str(self.workdir), env=run_env)
        prof["endpoint"] = self.server.url
        with open(self.profile, "w") as fh:
            json.dump(prof, fh)
        self.api = RecordingApi(self.server.url, self.token)

    def url(self, table):
        """load_as_pandas URL of a shared table."""
        return f"{self.profile}#{SHARE}.{SCHEMA}.{table}"

    def coords(self, table):
        return SHARE, SCHEMA, table

    def query(self, table, body=None, caps=None):
        return self.api.query(SHARE, SCHEMA, table, body or {}, caps=caps)

    def changes(self, table, query, caps=None):
        h = {"delta-sharing-capabilities": caps} if caps else None
        return self.api.get(self.api.table_path(SHARE, SCHEMA, table, "/changes") + "?" + query, headers=h)

    def stderr(self):
        return self.server.stderr_text()

    def stop(self):
        self.server.stop()


# ------------------------------------------------------------------------------ URLs of a body


def signed_urls(objs):
    """[(url, expirationTimestamp, what)] for every URL in the NDJSON objects of a /query or
    /changes body: parquet `file.url` and `add`/`cdf`/`remove` `url`; delta-format
    `deltaSingleAction.{add,remove,cdc}.path` and persisted deletion vectors' `pathOrInlineDv`."""
    out = []
    for o in objs:
        (kind, line), = o.items()
        if kind in ("protocol", "metaData", "endStreamAction"):
            continue
        assert kind in ("file", "add", "cdf", "remove"), f"unexpected line kind {kind}: {o}"
        exp = line.get("expirationTimestamp")
        if "deltaSingleAction" in line:
            (akind, act), = line["deltaSingleAction"].items()
            out.append((act["path"], exp, f"{akind} {line.get('id')}"))
            dv = act.get("deletionVector")
            if dv and dv.get("storageType") == "p":
                out.append((dv["pathOrInlineDv"], exp, f"deletion vector of {akind} {line.get('id')}"))
            else:
                assert not dv or dv.get("storageType") == "i", (
                    f"a deletion vector of a shared file must be inline or pre-signed ('p'): {dv}")
        else:
            out.append((line["url"], exp, f"{kind} {line.get('id')}"))
    return out


def params(url):
    """Query parameters of a URL as a dict (values decoded); repeated keys are an error."""
    pairs = parse_qsl(urlsplit(url).query, keep_blank_values=True)
    d = dict(pairs)
    assert len(d) == len(pairs), f"repeated query parameter in {url}"
    return d


def uri_encode_path(key):
    """AWS/Google "URI-encode" of an object key: every byte except A-Za-z0-9-._~ as %XX, '/' kept."""
    return "/".join(quote(seg, safe="-_.~") for seg in key.split("/"))


def tamper_path(url):
    """The same URL with one byte of the path changed (last character of the file name)."""
    p = urlsplit(url)
    last = p.path[-1]
    path = p.path[:-1] + ("x" if last != "x" else "y")
    return urlunsplit((p.scheme, p.netloc, path, p.query, p.fragment))


def local_file_for(url, bucket_path_prefix, local_root):
    """Local file that `url` must serve: its path minus `/bucket/table-prefix/`, decoded once."""
    path = urlsplit(url).path
    assert path.startswith(bucket_path_prefix), (
        f"URL path {path!r} is not under the table root {bucket_path_prefix!r}: {url}")
    rel = unquote(path[len(bucket_path_prefix):])
    assert rel and not rel.startswith("/") and ".." not in rel.split("/"), f"odd relative key {rel!r} in {url}"
    return os.path.join(local_root, rel)


def expiry_ms(date_text, expires_seconds):
    """Expiry in epoch ms of a URL signed at `date_text` (YYYYMMDDTHHMMSSZ) for `expires_seconds`."""
    t = dt.datetime.strptime(date_text, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.timezone.utc)
    return int(t.timestamp() * 1000) + int(expires_seconds) * 1000


# ------------------------------------------------------------------------------ S3 SigV4


def sigv4_recompute(url, access_key, secret_key, region, service="s3"):
    """Recompute the SigV4 query signature of `url` (GET) with botocore's S3SigV4QueryAuth, at the
    URL's own X-Amz-Date and X-Amz-Expires. Returns (signature, botocore's signed URL)."""
    from botocore.auth import S3SigV4QueryAuth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    p = urlsplit(url)
    q = params(url)
    when = dt.datetime.strptime(q["X-Amz-Date"], "%Y%m%dT%H%M%SZ")
    # parameters that are not the signer's own stay in the request (and so in the canonical query)
    others = [(k, v) for k, v in parse_qsl(p.query, keep_blank_values=True) if k not in AMZ_AUTH_PARAMS]
    base = urlunsplit((p.scheme, p.netloc, p.path, urlencode(others, quote_via=quote, safe="-_.~"), ""))
    req = AWSRequest(method="GET", url=base)
    auth = S3SigV4QueryAuth(Credentials(access_key, secret_key), service, region,
                            expires=int(q["X-Amz-Expires"]))
    with mock.patch("botocore.auth.get_current_datetime", return_value=when):
        auth.add_auth(req)
    return params(req.url)["X-Amz-Signature"], req.url


# ------------------------------------------------------------------------------ GCS V4 (RSA)


def _enc(s):
    return quote(s, safe="-_.~")


def gcs_v4_canonical_request(url, method="GET", host=None):
    """Canonical request of Google's V4 signing process for a query-signed URL with
    X-Goog-SignedHeaders=host:

        METHOD \\n CANONICAL_URI \\n CANONICAL_QUERY \\n host:HOST\\n \\n host \\n UNSIGNED-PAYLOAD

    CANONICAL_URI is the URL's path as sent; CANONICAL_QUERY is every parameter but
    X-Goog-Signature, names and values URI-encoded, sorted by name; HOST is the Host header the
    request is sent with: the URL's host, with the port when it is not the scheme's default.
    `host` overrides HOST (diagnostics and the checker's own sanity test only)."""
    p = urlsplit(url)
    pairs = [(k, v) for k, v in parse_qsl(p.query, keep_blank_values=True) if k != "X-Goog-Signature"]
    canonical_query = "&".join(f"{k}={v}" for k, v in sorted((_enc(k), _enc(v)) for k, v in pairs))
    if host is None:
        host = p.hostname.lower()
        default = {"http": 80, "https": 443}[p.scheme]
        if p.port is not None and p.port != default:
            host = f"{host}:{p.port}"
    return "\n".join([method, p.path, canonical_query, f"host:{host}\n", "host", "UNSIGNED-PAYLOAD"])


def gcs_v4_string_to_sign(url, host=None):
    q = params(url)
    cred = q["X-Goog-Credential"]
    scope = cred.split("/", 1)[1]  # <email>/<date>/<location>/storage/goog4_request -> scope
    digest = hashlib.sha256(gcs_v4_canonical_request(url, host=host).encode()).hexdigest()
    return "\n".join(["GOOG4-RSA-SHA256", q["X-Goog-Date"], scope, digest])


def gcs_v4_verify(url, public_key, host=None):
    """True when X-Goog-Signature (hex) is a valid RSA PKCS#1 v1.5 / SHA-256 signature of the V4
    string-to-sign of `url` (signed host = the URL's own unless `host` is given), else False."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    q = params(url)
    try:
        sig = bytes.fromhex(q["X-Goog-Signature"])
    except ValueError:
        return False
    try:
        public_key.verify(sig, gcs_v4_string_to_sign(url, host=host).encode(), padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


# ------------------------------------------------------------------------------ expected objects


def _z85_decode(text):
    alphabet = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"
    out = bytearray()
    for i in range(0, len(text), 5):
        n = 0
        for ch in text[i:i + 5]:
            n = n * 85 + alphabet.index(ch)
        out += n.to_bytes(4, "big")
    return bytes(out)


def dv_relative_path(dv):
    """Relative file of a storageType 'u' deletion vector (Delta protocol: random prefix + z85 UUID)."""
    assert dv["storageType"] == "u", dv
    enc = dv["pathOrInlineDv"]
    prefix, u = enc[:-20], uuid.UUID(bytes=_z85_decode(enc[-20:]))
    name = f"deletion_vector_{u}.bin"
    return f"{prefix}/{name}" if prefix else name


def expected_snapshot_keys(local, version=None, with_dvs=False):
    """Relative object keys a snapshot query must sign: active data files (+ their DV files)."""
    keys = set()
    for a in deltalog.replay(local, version).adds:
        keys.add(unquote(a["path"]))
        dv = a.get("deletionVector")
        if with_dvs and dv and dv["storageType"] == "u":
            keys.add(dv_relative_path(dv))
    return keys


# ------------------------------------------------------------------------------ downloads


def sizes_by_url(objs):
    """{url: size} of the data/cdc/remove files of a body (deletion vectors have no `size`)."""
    out = {}
    for o in objs:
        (kind, line), = o.items()
        if kind in ("file", "add", "cdf", "remove") and "url" in line:
            out[line["url"]] = line.get("size")
        elif kind == "file" and "deltaSingleAction" in line:
            (_, act), = line["deltaSingleAction"].items()
            out[act["path"]] = act.get("size")
    return out


def check_downloads(label, objs, urls, path_prefix, local_root):
    """GET every URL: 200 and exactly the bytes of the local file it names (and `size` bytes)."""
    sizes = sizes_by_url(objs)
    seen = set()
    for url, _, what in urls:
        if url in seen:
            continue
        seen.add(url)
        local = local_file_for(url, path_prefix, local_root)
        r = requests.get(url, timeout=30)
        assert os.path.isfile(local), (
            f"{label} {what}: the URL path decodes to {unquote(urlsplit(url).path)!r}, not an object of the "
            f"table (no local file {local}); GET answered {r.status_code} {r.text[:200]!r}\n  URL: {url}")
        assert r.status_code == 200, f"{label} {what}: GET {url} -> {r.status_code} {r.text[:300]}"
        with open(local, "rb") as fh:
            want = fh.read()
        assert r.content == want, f"{label} {what}: {len(r.content)} bytes from {url}, local file has {len(want)}"
        if sizes.get(url) is not None:
            assert sizes[url] == len(want), f"{label} {what}: `size` {sizes[url]} != {len(want)} bytes"
    return len(seen)
