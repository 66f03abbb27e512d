"""Tables in Google Cloud Storage (fake-gcs-server): the stock Python connector end to end, and the
V4 signed URLs (GOOG4-RSA-SHA256) the server hands out, verified with the service account's public
key (fake-gcs-server only routes requests, it checks no signature).

One module-scoped server shares four tables uploaded to fake-gcs' bucket `lake` under `gcsmod/`:

* `partitioned`  gen-partitioned (partitioned, time travel)
* `dv`           dv-partitioned-checkpoint (deletion vectors; delta format only)
* `escaped`      escaped-chars-partition (`%25`, `+` and `=` in object names)
* `cdf`          gen-cdf-partitioned (change data feed with cdc files)

The service account key is given as `serviceAccountKeyFile` (cloud_support.FakeGcs). Commit times of
cloud tables are object upload times: nothing here depends on them.
"""
import os
import re
import time
from urllib.parse import quote, unquote, urlsplit

import delta_sharing
import pytest

import cdf_support as S
import cloud_checks as C
import frames
from api import DELTA_CAPS, ndjson

PREFIX = "gcsmod"
SHARED = {
    "partitioned": "gen-partitioned",
    "dv": "dv-partitioned-checkpoint",
    "escaped": "escaped-chars-partition",
    "cdf": "gen-cdf-partitioned",
}
CDF_CAPS = "responseformat=delta;readerfeatures=deletionvectors,columnmapping"
USE_DELTA = {"parquet": False, "delta": True}
DEFAULT_TTL = 3600


class GcsEnv:
    def __init__(self, gcs, cloud, tables):
        self.gcs = gcs
        self.cloud = cloud
        self.tables = tables
        self.endpoint = urlsplit(gcs.endpoint)

    def folder(self, name):
        return SHARED[name]

    def local(self, name):
        return self.tables[SHARED[name]]["path"]

    def key_prefix(self, name):
        return f"{PREFIX}/{SHARED[name]}"

    def path_prefix(self, name):
        return f"/{self.gcs.bucket}/{C.uri_encode_path(self.key_prefix(name))}/"


@pytest.fixture(scope="module")
def gcs(lakeshare_bin, fake_gcs, tables, tmp_path_factory):
    work = tmp_path_factory.mktemp("cloud-gcs")
    locations = {}
    for name, folder in SHARED.items():
        loc = fake_gcs.upload_dir(tables[folder]["path"], f"{PREFIX}/{folder}")
        assert loc == f"gs://{fake_gcs.bucket}/{PREFIX}/{folder}"
        locations[name] = loc
    cloud = C.CloudServer(lakeshare_bin, work / "server", locations, [fake_gcs.storage_entry()])
    try:
        yield GcsEnv(fake_gcs, cloud, tables)
    finally:
        cloud.stop()


# ------------------------------------------------------------------------------------------------
# 5. the stock Python connector end to end


SNAPSHOT_CASES = [
    ("partitioned", "parquet", None), ("partitioned", "delta", None),
    ("partitioned", "parquet", 0), ("partitioned", "delta", 3),
    ("dv", "delta", None), ("dv", "delta", 0),
    ("escaped", "parquet", None), ("escaped", "delta", None),
    ("cdf", "parquet", None),
]


@pytest.mark.parametrize("name,fmt,version", SNAPSHOT_CASES,
                         ids=[f"{n}-{f}-{'latest' if v is None else 'v%d' % v}" for n, f, v in SNAPSHOT_CASES])
def test_connector_snapshot(gcs, oracle, name, fmt, version):
    kw = {} if version is None else {"version": version}
    df = delta_sharing.load_as_pandas(gcs.cloud.url(name), use_delta_format=USE_DELTA[fmt], **kw)
    frames.assert_same_table(frames.Snapshot.from_pandas(df), oracle.snapshot(gcs.folder(name), version),
                             f"GCS table {name} ({gcs.folder(name)}) as {fmt} at {version or 'latest'}")


CHANGE_CASES = [("cdf", "parquet", 0, None), ("cdf", "delta", 0, None), ("cdf", "delta", 2, 3)]


def _without_commit_timestamp(snap):
    return snap.project([c for c in snap.columns if c.lower() != "_commit_timestamp"])


@pytest.mark.parametrize("name,fmt,start,end", CHANGE_CASES,
                         ids=[f"{n}-{f}-v{s}-{'latest' if e is None else e}" for n, f, s, e in CHANGE_CASES])
def test_connector_changes(gcs, cdf_oracle, name, fmt, start, end):
    kw = {"starting_version": start}
    if end is not None:
        kw["ending_version"] = end
    df = delta_sharing.load_table_changes_as_pandas(gcs.cloud.url(name), use_delta_format=USE_DELTA[fmt], **kw)
    got, want = S.align(S.client_snapshot(df), cdf_oracle.expected(gcs.folder(name), start, end, fmt))
    assert want.rows, "the oracle has change rows for this range"
    frames.assert_same_table(_without_commit_timestamp(got), _without_commit_timestamp(want),
                             f"GCS CDF {name} ({gcs.folder(name)}) [{start}, {end}] as {fmt}")


# ------------------------------------------------------------------------------------------------
# raw responses whose URLs are checked below


RAW = {
    "partitioned-parquet": ("partitioned", "query", ({}, None)),
    "partitioned-delta": ("partitioned", "query", ({}, DELTA_CAPS)),
    "partitioned-parquet-v2": ("partitioned", "query", ({"version": 2}, None)),
    "dv-delta": ("dv", "query", ({}, DELTA_CAPS)),
    "escaped-parquet": ("escaped", "query", ({}, None)),
    "escaped-delta": ("escaped", "query", ({}, DELTA_CAPS)),
    "cdf-changes-parquet": ("cdf", "changes", ("startingVersion=0", None)),
    "cdf-changes-delta": ("cdf", "changes", ("startingVersion=0", CDF_CAPS)),
}


class Raw:
    def __init__(self, label, name, objs, before, after):
        self.label = label
        self.name = name
        self.objs = objs
        self.before = before
        self.after = after
        self.urls = C.signed_urls(objs)


@pytest.fixture(scope="module")
def raw(gcs):
    out = {}
    for label, (name, kind, (arg, caps)) in RAW.items():
        before = time.time()
        r = gcs.cloud.query(name, arg, caps=caps) if kind == "query" else gcs.cloud.changes(name, arg, caps=caps)
        after = time.time()
        assert r.status_code == 200, f"{label}: {r.request.method} {r.url} -> {r.status_code} {r.text[:800]}"
        out[label] = Raw(label, name, ndjson(r), before, after)
    return out


def _rel(gcs, name, url):
    local = C.local_file_for(url, gcs.path_prefix(name), gcs.local(name))
    return os.path.relpath(local, gcs.local(name))


# ------------------------------------------------------------------------------------------------
# 6. V4 RSA signatures


GOOGLE_HOST = "storage.googleapis.com"


@pytest.mark.parametrize("label", list(RAW))
def test_v4_signature_every_url(gcs, raw, label):
    """Every URL verifies as a V4 signature of GET <its path> by the service account's key.

    The signed `host` header is storage.googleapis.com: that is what Google Cloud Storage checks.
    With `baseUrl` (an emulator here) the URL points elsewhere but object_store still signs for
    Google's host -- a documented limitation for GCS-compatible endpoints that verify signatures
    against their own host. The check cannot pass for a wrong path, query, date or key."""
    res = raw[label]
    assert res.urls, f"{label}: no signed URLs"
    key = gcs.gcs.private_key.public_key()
    bad = []
    for url, _, what in res.urls:
        q = C.params(url)
        assert q.get("X-Goog-Algorithm") == "GOOG4-RSA-SHA256", f"{label} {what}: algorithm in {url}"
        assert re.fullmatch(r"[0-9a-f]{512}", q.get("X-Goog-Signature", "")), (
            f"{label} {what}: X-Goog-Signature must be 256 bytes (RSA-2048) in lowercase hex: {url}")
        if not C.gcs_v4_verify(url, key, host=GOOGLE_HOST):
            bad.append((url, what))
    if bad:
        url, what = bad[0]
        raise AssertionError(
            f"{label}: {len(bad)} of {len(res.urls)} URLs do not verify with the service account's public key "
            f"for host {GOOGLE_HOST}.\n  first: {what}\n  URL: {url}\n"
            f"  canonical request (spec):\n{C.gcs_v4_canonical_request(url, host=GOOGLE_HOST)}\n")


def test_v4_kinds_covered(raw):
    assert any(w.startswith("deletion vector") for _, _, w in raw["dv-delta"].urls), "no DV URL checked"
    assert any(w.startswith("cdf ") for _, _, w in raw["cdf-changes-parquet"].urls), "no cdf line checked"
    assert any(w.startswith("cdc ") for _, _, w in raw["cdf-changes-delta"].urls), "no cdc action checked"


def _set(url, key, value):
    new, n = re.subn(r"([?&]%s=)[^&]*" % re.escape(key), lambda m: m.group(1) + value, url)
    assert n == 1, f"no single {key} in {url}"
    return new


def test_v4_checker_rejects_tampered_urls(gcs, raw):
    """Sanity of the checker itself: it accepts a served URL (for the host the server actually
    signed, see test_v4_signature_every_url for whether that is the right one) and rejects the same
    URL with one changed path byte, date, lifetime, credential or signature byte, another signed
    host, or another public key."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = gcs.gcs.private_key.public_key()
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    for label in ("escaped-parquet", "dv-delta", "cdf-changes-delta", "partitioned-parquet"):
        url = raw[label].urls[-1][0]
        q = C.params(url)
        hosts = [h for h in (None, GOOGLE_HOST) if C.gcs_v4_verify(url, key, host=h)]
        assert hosts, f"{label}: the checker accepts the served URL for no host at all: {url}"
        host = hosts[0]
        sig = q["X-Goog-Signature"]
        date = q["X-Goog-Date"]
        tampered = {
            "path byte": C.tamper_path(url),
            "date": _set(url, "X-Goog-Date", date[:-3] + "%02dZ" % ((int(date[-3:-1]) + 1) % 60)),
            "expires": _set(url, "X-Goog-Expires", str(int(q["X-Goog-Expires"]) + 1)),
            "credential": _set(url, "X-Goog-Credential", quote("x" + q["X-Goog-Credential"], safe="")),
            "signature": _set(url, "X-Goog-Signature", sig[:-1] + ("0" if sig[-1] != "0" else "1")),
        }
        for what, bad in tampered.items():
            assert bad != url, what
            assert not C.gcs_v4_verify(bad, key, host=host), f"{label}: URL with changed {what} must not verify: {bad}"
        assert not C.gcs_v4_verify(url, key, host="example.com"), f"{label}: must not verify for another host"
        assert not C.gcs_v4_verify(url, other_key, host=host), f"{label}: must not verify with another key"


@pytest.mark.parametrize("label", list(RAW))
def test_url_shape_and_scope(gcs, raw, label):
    """baseUrl host; path `/lake/<table prefix>/...` that, decoded once, names an object of the
    table; credential `<client_email>/<date>/auto/storage/goog4_request`; only `host` signed."""
    res = raw[label]
    for url, _, what in res.urls:
        p = urlsplit(url)
        q = C.params(url)
        assert (p.scheme, p.netloc) == (gcs.endpoint.scheme, gcs.endpoint.netloc), (
            f"{label} {what}: URL must go to the configured baseUrl {gcs.gcs.endpoint}: {url}")
        local = C.local_file_for(url, gcs.path_prefix(res.name), gcs.local(res.name))
        assert os.path.isfile(local), (
            f"{label} {what}: the URL path decodes to object {unquote(p.path)!r}, which is not an object of "
            f"the table (no local file {local}); URL {url}")
        date = q.get("X-Goog-Date", "")
        assert re.fullmatch(r"\d{8}T\d{6}Z", date), f"{label} {what}: X-Goog-Date {date!r}"
        cred = q.get("X-Goog-Credential", "")
        assert cred.startswith(gcs.gcs.client_email + "/"), (
            f"{label} {what}: X-Goog-Credential must start with the service account email: {cred!r}")
        assert cred == f"{gcs.gcs.client_email}/{date[:8]}/auto/storage/goog4_request", (
            f"{label} {what}: credential scope {cred!r}")
        assert q.get("X-Goog-SignedHeaders") == "host", f"{label} {what}: signed headers {q.get('X-Goog-SignedHeaders')!r}"


@pytest.mark.parametrize("label", [lb for lb, (_, kind, _) in RAW.items() if kind == "query"])
def test_urls_are_exactly_the_active_files(gcs, raw, label):
    res = raw[label]
    name, _, (body, caps) = RAW[label]
    got = sorted(_rel(gcs, name, u) for u, _, _ in res.urls)
    want = sorted(C.expected_snapshot_keys(gcs.local(name), body.get("version"), with_dvs=caps is not None))
    assert got == want, f"{label}: signed objects differ from the Delta log's active files\n got {got}\nwant {want}"


@pytest.mark.parametrize("label", list(RAW))
def test_expiration_timestamp_is_url_expiry(raw, label):
    res = raw[label]
    for url, exp, what in res.urls:
        q = C.params(url)
        assert q.get("X-Goog-Expires") == str(DEFAULT_TTL), (
            f"{label} {what}: default lifetime 3600 s, got X-Goog-Expires={q.get('X-Goog-Expires')}")
        signed_at = C.expiry_ms(q["X-Goog-Date"], 0) / 1000
        assert res.before - 2 <= signed_at <= res.after + 2, (
            f"{label} {what}: X-Goog-Date {q['X-Goog-Date']} is not the time of the request")
        assert isinstance(exp, int), f"{label} {what}: expirationTimestamp {exp!r}"
        real = C.expiry_ms(q["X-Goog-Date"], q["X-Goog-Expires"])
        assert abs(exp - real) <= 2000, (
            f"{label} {what}: expirationTimestamp {exp} != X-Goog-Date + X-Goog-Expires = {real}")


# ------------------------------------------------------------------------------------------------
# 7. downloads


@pytest.mark.parametrize("label", list(RAW))
def test_urls_download_exact_bytes(gcs, raw, label):
    res = raw[label]
    n = C.check_downloads(label, res.objs, res.urls, gcs.path_prefix(res.name), gcs.local(res.name))
    assert n == len({u for u, _, _ in res.urls}) > 0


def test_private_key_never_in_responses_or_stderr(gcs, raw):
    """The service account's private key (any line of its PEM body) is never sent or logged."""
    from cryptography.hazmat.primitives import serialization

    pem = gcs.gcs.private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption()).decode()
    lines = [ln for ln in pem.splitlines() if ln and not ln.startswith("-----")]
    assert len(lines) > 10
    assert gcs.cloud.api.get("/shares").status_code == 200
    for name in SHARED:
        gcs.cloud.api.metadata(*gcs.cloud.coords(name), caps=DELTA_CAPS)
    texts = [t for _, _, t in gcs.cloud.api.seen] + [gcs.cloud.stderr()]
    assert len(texts) >= len(RAW) + 2
    for t in texts:
        for ln in lines:
            assert ln not in t and ln.replace("/", "\\/") not in t, "a line of the private key leaked"
