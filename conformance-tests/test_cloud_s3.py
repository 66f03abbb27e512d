"""Tables in S3 (s3s-fs, which verifies SigV4 — signatures, HTTP method, key and expiry of
pre-signed URLs — as S3 does): the stock Python connector end to end, and the pre-signed URLs the
server hands out, also recomputed independently with botocore.

One module-scoped server shares five tables uploaded to the bucket `lake` under `s3mod/`:

* `partitioned`   gen-partitioned (partitioned by region, five versions: time travel)
* `dv`            dv-partitioned-checkpoint (deletion vectors; delta format only)
* `cdf`           gen-cdf-partitioned, declared as `s3a://...` (normalised to s3://)
* `escaped`       escaped-chars-partition (`%25`, `+` and `=` in object keys)
* `cdf_pct`       cdf-merge-delete-partitioned, `s3a://` too (literal `%` in data and cdc file names)

The S3 secret is given as `{file: PATH}`; a second server (preSignedUrlTimeoutSeconds: 900) takes
it from `{env: NAME}`. Commit times of cloud tables are object upload times, so nothing here
depends on them (CDF comparisons leave `_commit_timestamp` out).
"""
import os
import re
import time
from urllib.parse import urlsplit

import delta_sharing
import pytest
import requests

import cdf_support as S
import cloud_checks as C
import cloud_support as cs
import frames
from api import DELTA_CAPS, ndjson

PREFIX = "s3mod"
# share table name -> (test table folder, location scheme)
SHARED = {
    "partitioned": ("gen-partitioned", "s3"),
    "dv": ("dv-partitioned-checkpoint", "s3"),
    "cdf": ("gen-cdf-partitioned", "s3a"),
    "escaped": ("escaped-chars-partition", "s3"),
    "cdf_pct": ("cdf-merge-delete-partitioned", "s3a"),
}
CDF_CAPS = "responseformat=delta;readerfeatures=deletionvectors,columnmapping"
USE_DELTA = {"parquet": False, "delta": True}
DEFAULT_TTL = 3600


class S3Env:
    def __init__(self, moto, cloud, tables):
        self.moto = moto
        self.cloud = cloud
        self.tables = tables
        self.endpoint = urlsplit(moto.endpoint)

    def folder(self, name):
        return SHARED[name][0]

    def local(self, name):
        return self.tables[self.folder(name)]["path"]

    def key_prefix(self, name):
        return f"{PREFIX}/{self.folder(name)}"

    def path_prefix(self, name):
        """URL path of the table root (bucket + key prefix, URI-encoded) with a trailing slash."""
        return f"/{self.moto.bucket}/{C.uri_encode_path(self.key_prefix(name))}/"


@pytest.fixture(scope="module")
def s3(lakeshare_bin, s3store, tables, tmp_path_factory):
    moto = s3store  # the name the helpers below use for the S3 store
    work = tmp_path_factory.mktemp("cloud-s3")
    secret = cs.Moto.write_secret(work / "s3-secret.txt")
    locations = {}
    for name, (folder, scheme) in SHARED.items():
        loc = moto.upload_dir(tables[folder]["path"], f"{PREFIX}/{folder}")
        assert loc == f"s3://{moto.bucket}/{PREFIX}/{folder}"
        locations[name] = loc if scheme == "s3" else "s3a://" + loc[len("s3://"):]
    cloud = C.CloudServer(lakeshare_bin, work / "server", locations, [moto.storage_entry(secret)])
    try:
        yield S3Env(moto, cloud, tables)
    finally:
        cloud.stop()


# ------------------------------------------------------------------------------------------------
# 1. the stock Python connector end to end


SNAPSHOT_CASES = [
    ("partitioned", "parquet", None), ("partitioned", "delta", None),
    ("partitioned", "parquet", 0), ("partitioned", "delta", 3), ("partitioned", "parquet", 2),
    ("dv", "delta", None), ("dv", "delta", 0),
    ("escaped", "parquet", None), ("escaped", "delta", 0),
    ("cdf", "parquet", None), ("cdf", "delta", 2),
    ("cdf_pct", "parquet", None),
]


@pytest.mark.parametrize("name,fmt,version", SNAPSHOT_CASES,
                         ids=[f"{n}-{f}-{'latest' if v is None else 'v%d' % v}" for n, f, v in SNAPSHOT_CASES])
def test_connector_snapshot(s3, oracle, name, fmt, version):
    kw = {} if version is None else {"version": version}
    df = delta_sharing.load_as_pandas(s3.cloud.url(name), use_delta_format=USE_DELTA[fmt], **kw)
    frames.assert_same_table(frames.Snapshot.from_pandas(df), oracle.snapshot(s3.folder(name), version),
                             f"S3 table {name} ({s3.folder(name)}) as {fmt} at {version or 'latest'}")


CHANGE_CASES = [
    ("cdf", "parquet", 0, None), ("cdf", "delta", 0, None), ("cdf", "parquet", 2, 3), ("cdf", "delta", 2, 3),
    ("cdf_pct", "parquet", 0, None), ("cdf_pct", "delta", 0, None),
]


def _without_commit_timestamp(snap):
    return snap.project([c for c in snap.columns if c.lower() != "_commit_timestamp"])


@pytest.mark.parametrize("name,fmt,start,end", CHANGE_CASES,
                         ids=[f"{n}-{f}-v{s}-{'latest' if e is None else e}" for n, f, s, e in CHANGE_CASES])
def test_connector_changes(s3, cdf_oracle, name, fmt, start, end):
    kw = {"starting_version": start}
    if end is not None:
        kw["ending_version"] = end
    df = delta_sharing.load_table_changes_as_pandas(s3.cloud.url(name), use_delta_format=USE_DELTA[fmt], **kw)
    got, want = S.align(S.client_snapshot(df), cdf_oracle.expected(s3.folder(name), start, end, fmt))
    assert want.rows, "the oracle has change rows for this range"
    # commit times of cloud tables are object upload times: compared everywhere else, not here
    frames.assert_same_table(_without_commit_timestamp(got), _without_commit_timestamp(want),
                             f"S3 CDF {name} ({s3.folder(name)}) [{start}, {end}] as {fmt}")


# ------------------------------------------------------------------------------------------------
# raw responses whose URLs are checked below


# label -> (share table, kind, request args); kind "query" takes (body, caps), "changes" (query, caps)
RAW = {
    "partitioned-parquet": ("partitioned", "query", ({}, None)),
    "partitioned-delta": ("partitioned", "query", ({}, DELTA_CAPS)),
    "partitioned-parquet-v0": ("partitioned", "query", ({"version": 0}, None)),
    "dv-delta": ("dv", "query", ({}, DELTA_CAPS)),
    "dv-delta-v14": ("dv", "query", ({"version": 14}, DELTA_CAPS)),
    "escaped-parquet": ("escaped", "query", ({}, None)),
    "escaped-delta": ("escaped", "query", ({}, DELTA_CAPS)),
    "cdf-parquet": ("cdf", "query", ({}, None)),
    "cdf-changes-parquet": ("cdf", "changes", ("startingVersion=0", None)),
    "cdf-changes-delta": ("cdf", "changes", ("startingVersion=0", CDF_CAPS)),
    "cdf_pct-parquet": ("cdf_pct", "query", ({}, None)),
    "cdf_pct-changes-parquet": ("cdf_pct", "changes", ("startingVersion=0", None)),
    "cdf_pct-changes-delta": ("cdf_pct", "changes", ("startingVersion=0", CDF_CAPS)),
}


class Raw:
    def __init__(self, label, name, objs, before, after):
        self.label = label
        self.name = name
        self.objs = objs
        self.before = before  # epoch seconds around the request
        self.after = after
        self.urls = C.signed_urls(objs)


def _fetch(cloud, label):
    name, kind, (arg, caps) = RAW[label]
    before = time.time()
    r = cloud.query(name, arg, caps=caps) if kind == "query" else cloud.changes(name, arg, caps=caps)
    after = time.time()
    assert r.status_code == 200, f"{label}: {r.request.method} {r.url} -> {r.status_code} {r.text[:800]}"
    return Raw(label, name, ndjson(r), before, after)


@pytest.fixture(scope="module")
def raw(s3):
    return {label: _fetch(s3.cloud, label) for label in RAW}


def _rel(s3, name, url):
    local = C.local_file_for(url, s3.path_prefix(name), s3.local(name))
    return os.path.relpath(local, s3.local(name))


# ------------------------------------------------------------------------------------------------
# 2. SigV4, recomputed with botocore for every URL


@pytest.mark.parametrize("label", list(RAW))
def test_sigv4_every_url(s3, raw, label):
    res = raw[label]
    assert res.urls, f"{label}: no signed URLs in the response"
    for url, _, what in res.urls:
        q = C.params(url)
        assert q.get("X-Amz-Algorithm") == "AWS4-HMAC-SHA256", f"{label} {what}: not SigV4: {url}"
        want, botocore_url = C.sigv4_recompute(url, cs.S3_ACCESS_KEY, cs.S3_SECRET_KEY, cs.S3_REGION)
        got_params = {k: v for k, v in q.items() if k != "X-Amz-Signature"}
        boto_params = {k: v for k, v in C.params(botocore_url).items() if k != "X-Amz-Signature"}
        assert got_params == boto_params, (
            f"{label} {what}: signed parameters differ from a SigV4 query signature of the same request\n"
            f"  server:   {got_params}\n  botocore: {boto_params}")
        assert q["X-Amz-Signature"] == want, (
            f"{label} {what}: X-Amz-Signature is not the SigV4 signature of GET {url.split('?')[0]}\n"
            f"  URL:        {url}\n  recomputed: {want}")


def test_sigv4_kinds_covered(raw):
    """The responses above do contain deletion-vector and cdc-file URLs (so they were checked)."""
    dv = [w for u, _, w in raw["dv-delta"].urls if w.startswith("deletion vector")]
    assert dv, "dv-delta: no pre-signed deletion-vector URL"
    for label in ("cdf-changes-parquet", "cdf_pct-changes-parquet"):
        assert any(w.startswith("cdf ") for _, _, w in raw[label].urls), f"{label}: no cdf (cdc file) line"
    for label in ("cdf-changes-delta", "cdf_pct-changes-delta"):
        assert any(w.startswith("cdc ") for _, _, w in raw[label].urls), f"{label}: no cdc action"


def test_sigv4_checker_detects_changes(raw):
    """The checker is not vacuous: one changed byte of the path, another date, another secret,
    another region all give a different signature."""
    for label in ("escaped-parquet", "cdf_pct-changes-delta", "dv-delta"):
        url = raw[label].urls[0][0]
        sig = C.params(url)["X-Amz-Signature"]
        assert C.sigv4_recompute(url, cs.S3_ACCESS_KEY, cs.S3_SECRET_KEY, cs.S3_REGION)[0] == sig, label
        tampered = C.tamper_path(url)
        assert tampered != url
        assert C.sigv4_recompute(tampered, cs.S3_ACCESS_KEY, cs.S3_SECRET_KEY, cs.S3_REGION)[0] != sig, (
            f"{label}: a changed path byte must change the recomputed signature")
        other_date = re.sub(r"(X-Amz-Date=\d{8}T\d{4})(\d\d)",
                            lambda m: m.group(1) + "%02d" % ((int(m.group(2)) + 1) % 60), url)
        assert other_date != url
        assert C.sigv4_recompute(other_date, cs.S3_ACCESS_KEY, cs.S3_SECRET_KEY, cs.S3_REGION)[0] != sig
        assert C.sigv4_recompute(url, cs.S3_ACCESS_KEY, cs.S3_SECRET_KEY + "x", cs.S3_REGION)[0] != sig
        assert C.sigv4_recompute(url, cs.S3_ACCESS_KEY, cs.S3_SECRET_KEY, "eu-west-1")[0] != sig


@pytest.mark.parametrize("label", list(RAW))
def test_url_shape_and_scope(s3, raw, label):
    """Configured endpoint, path-style `/lake/<table prefix>/<key>` with URI-encoded segments,
    credential scope AKID/date/us-east-1/s3/aws4_request, only the host header signed, no token."""
    res = raw[label]
    for url, _, what in res.urls:
        p = urlsplit(url)
        q = C.params(url)
        assert (p.scheme, p.netloc) == (s3.endpoint.scheme, s3.endpoint.netloc), (
            f"{label} {what}: URL must go to the configured endpoint {s3.moto.endpoint}: {url}")
        rel = _rel(s3, res.name, url)
        key = f"{s3.key_prefix(res.name)}/{rel}"
        assert p.path == f"/{s3.moto.bucket}/{C.uri_encode_path(key)}", (
            f"{label} {what}: path must be /bucket/<URI-encoded key>, key {key!r}: got {p.path!r}")
        date = q.get("X-Amz-Date", "")
        assert re.fullmatch(r"\d{8}T\d{6}Z", date), f"{label} {what}: X-Amz-Date {date!r}"
        assert q.get("X-Amz-Credential") == f"{cs.S3_ACCESS_KEY}/{date[:8]}/{cs.S3_REGION}/s3/aws4_request", (
            f"{label} {what}: credential scope {q.get('X-Amz-Credential')!r}")
        assert q.get("X-Amz-SignedHeaders") == "host", f"{label} {what}: signed headers {q.get('X-Amz-SignedHeaders')!r}"
        assert "X-Amz-Security-Token" not in q, f"{label} {what}: no session token is configured"
        assert re.fullmatch(r"[0-9a-f]{64}", q.get("X-Amz-Signature", "")), f"{label} {what}: signature {url}"


@pytest.mark.parametrize("label", [lb for lb, (_, kind, _) in RAW.items() if kind == "query"])
def test_urls_are_exactly_the_active_files(s3, raw, label):
    """Snapshot queries sign exactly the active files of that version (and their DV files)."""
    res = raw[label]
    name, _, (body, caps) = RAW[label]
    got = sorted(_rel(s3, name, u) for u, _, _ in res.urls)
    want = sorted(C.expected_snapshot_keys(s3.local(name), body.get("version"), with_dvs=caps is not None))
    assert got == want, f"{label}: signed objects differ from the Delta log's active files\n got {got}\nwant {want}"


# ------------------------------------------------------------------------------------------------
# 3. expiry


@pytest.mark.parametrize("label", list(RAW))
def test_expiration_timestamp_is_url_expiry(raw, label):
    res = raw[label]
    for url, exp, what in res.urls:
        q = C.params(url)
        assert q.get("X-Amz-Expires") == str(DEFAULT_TTL), (
            f"{label} {what}: default lifetime is preSignedUrlTimeoutSeconds 3600, got {q.get('X-Amz-Expires')}")
        signed_at = C.expiry_ms(q["X-Amz-Date"], 0) / 1000
        assert res.before - 2 <= signed_at <= res.after + 2, (
            f"{label} {what}: X-Amz-Date {q['X-Amz-Date']} is not the time of the request "
            f"({res.before:.0f}..{res.after:.0f})")
        assert isinstance(exp, int), f"{label} {what}: expirationTimestamp missing or not an integer: {exp!r}"
        real = C.expiry_ms(q["X-Amz-Date"], q["X-Amz-Expires"])
        assert abs(exp - real) <= 2000, (
            f"{label} {what}: expirationTimestamp {exp} != X-Amz-Date + X-Amz-Expires = {real} "
            f"(off by {exp - real} ms)")


def test_presigned_url_timeout_900_and_env_secret(lakeshare_bin, s3, tmp_path):
    """preSignedUrlTimeoutSeconds: 900 -> X-Amz-Expires=900 and expirationTimestamp 900 s after
    X-Amz-Date; the secret comes from {env: NAME} here and signatures still verify. This server
    logs at debug level: the secret must not appear in its stderr either."""
    entry = s3.moto.storage_entry(tmp_path / "unused")
    entry["s3"]["secretAccessKey"] = {"env": "LAKESHARE_TEST_S3_SECRET"}
    cloud = C.CloudServer(lakeshare_bin, tmp_path / "srv900", {"partitioned": f"s3://lake/{PREFIX}/gen-partitioned"},
                          [entry], extra={"preSignedUrlTimeoutSeconds": 900},
                          env={"LAKESHARE_TEST_S3_SECRET": cs.S3_SECRET_KEY, "LAKESHARE_LOG": "debug"})
    try:
        for caps in (None, DELTA_CAPS):
            r = cloud.query("partitioned", {}, caps=caps)
            assert r.status_code == 200, f"{r.status_code} {r.text[:500]}"
            urls = C.signed_urls(ndjson(r))
            assert urls
            for url, exp, what in urls:
                q = C.params(url)
                assert q.get("X-Amz-Expires") == "900", f"{what}: X-Amz-Expires {q.get('X-Amz-Expires')} != 900"
                real = C.expiry_ms(q["X-Amz-Date"], 900)
                assert abs(exp - real) <= 2000, f"{what}: expirationTimestamp {exp} != {real}"
                assert C.sigv4_recompute(url, cs.S3_ACCESS_KEY, cs.S3_SECRET_KEY, cs.S3_REGION)[0] == q["X-Amz-Signature"]
            assert cs.S3_SECRET_KEY not in r.text
        got = requests.get(urls[0][0], timeout=30)
        assert got.status_code == 200, f"GET {urls[0][0]} -> {got.status_code}"
        df = delta_sharing.load_as_pandas(cloud.url("partitioned"))
        assert len(df) > 0
        assert cs.S3_SECRET_KEY not in cloud.stderr(), "the S3 secret appears in the server's debug log"
    finally:
        cloud.stop()


# ------------------------------------------------------------------------------------------------
# 4. the URLs download the right bytes


@pytest.mark.parametrize("label", list(RAW))
def test_urls_download_exact_bytes(s3, raw, label):
    res = raw[label]
    n = C.check_downloads(label, res.objs, res.urls, s3.path_prefix(res.name), s3.local(res.name))
    assert n == len({u for u, _, _ in res.urls}) > 0


# ------------------------------------------------------------------------------------------------
# the secret stays on the server (last in the module: the stderr then holds every request above)


def test_secret_never_in_responses_or_stderr(s3, raw):
    cloud = s3.cloud
    # a few more endpoints, so their bodies are recorded too
    assert cloud.api.get("/shares").status_code == 200
    for name in SHARED:
        # parquet-format metadata of the DV table is refused (400), like its parquet query
        assert cloud.api.metadata(*cloud.coords(name)).status_code == (400 if name == "dv" else 200)
        assert cloud.api.metadata(*cloud.coords(name), caps=DELTA_CAPS).status_code == 200
        assert cloud.api.version(*cloud.coords(name)).status_code == 200
    assert len(cloud.api.seen) >= len(RAW) + 1 + 3 * len(SHARED)
    for status, url, text in cloud.api.seen:
        assert cs.S3_SECRET_KEY not in text, f"the S3 secret appears in the response of {url} ({status})"
    err = cloud.stderr()
    assert cs.S3_SECRET_KEY not in err, "the S3 secret appears in the server's stderr"
    with open(cloud.profile) as fh:
        assert cs.S3_SECRET_KEY not in fh.read()
    assert cloud.server.alive(), f"server died:\n{err[-2000:]}"
