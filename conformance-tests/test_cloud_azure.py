"""Tables in Azure Blob Storage (Azurite): stock-connector reads, SAS URLs verified by Azurite,
location spellings, and secrets hygiene.

Setup (module scope): four local test tables (conftest `tables`) are uploaded to Azurite under
`conf/<table>`; one server shares them (az:// locations, key from the environment), plus the
partitioned table again under the abfss://, wasbs:// and https:// spellings. Expected contents come
from deltalake reads of the local copies (oracle.py). Blob mtimes in Azurite are upload times, so
nothing here depends on the local tables' restored commit times.
"""
import datetime as dt
import os
import time
from pathlib import Path
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

import delta_sharing
import pytest
import requests

import cdf_support as S
import cloud_azure_support as A
import cloud_support as cs
import frames
import server as srv
from api import DELTA_CAPS, assert_error, file_lines, file_url_of, ndjson

SHARE, SCHEMA = "cloud", "az"
ACCOUNT_PATH = f"/{cs.AZURITE_ACCOUNT}/lake"
ABFSS_ROOT = f"abfss://lake@{cs.AZURITE_ACCOUNT}.dfs.core.windows.net"

# share table name -> (local test table, historyShared)
AZ_TABLES = {
    "parts": ("gen-partitioned", True),
    "ckpt": ("gen-checkpointed", False),
    "dv": ("dv-partitioned-checkpoint", True),
    "cdf": ("gen-cdf-partitioned", True),
}
PARTS_VERSIONS = [0, 2, 3]
DV_VERSIONS = [0]
CDF_RANGES = [(0, None), (2, 3)]
# the partitioned table under the other accepted spellings of the same blob prefix
SPELLINGS = {
    "parts_abfss": f"{ABFSS_ROOT}/conf/gen-partitioned",
    "parts_wasbs": f"wasbs://lake@{cs.AZURITE_ACCOUNT}.blob.core.windows.net/conf/gen-partitioned",
    "parts_https": f"https://{cs.AZURITE_ACCOUNT}.blob.core.windows.net/lake/conf/gen-partitioned",
}
TIMEOUT = 30


def prefix_of(table):
    return f"conf/{AZ_TABLES[table][0]}"


def blob_prefix(table):
    return f"{ACCOUNT_PATH}/{prefix_of(table)}"


# ------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def az_uploaded(azurite, tables):
    """Upload the four tables once; {share table name: az:// location}."""
    return {name: azurite.upload_dir(tables[local]["path"], prefix_of(name))
            for name, (local, _) in AZ_TABLES.items()}


@pytest.fixture(scope="module")
def az_oracle(tables, tmp_path_factory):
    jobs = []
    for v in [None] + PARTS_VERSIONS:
        jobs.append({"key": f"parts@{v}", "kind": "read", "path": tables["gen-partitioned"]["path"],
                     "method": "to_pyarrow_table", "version": v})
    for v in [None] + DV_VERSIONS:
        jobs.append({"key": f"dv@{v}", "kind": "read", "path": tables["dv-partitioned-checkpoint"]["path"],
                     "method": "query_builder", "version": v})
    for start, end in CDF_RANGES:
        jobs.append({"key": f"cdf@{start}:{end}", "kind": "cdf", "path": tables["gen-cdf-partitioned"]["path"],
                     "starting_version": start, "ending_version": end})
    return A.snapshot_reads(jobs, tmp_path_factory.mktemp("az-oracle"))


@pytest.fixture(scope="module")
def az(lakeshare_bin, azurite, az_uploaded, tmp_path_factory):
    """The Azure server: its deployment and two recipients (main, other)."""
    shares_tables = [{"name": n, "location": az_uploaded[n], "historyShared": AZ_TABLES[n][1]} for n in AZ_TABLES]
    shares_tables += [{"name": n, "location": loc} for n, loc in SPELLINGS.items()]
    storage = [A.azure_entry(azurite), A.azure_entry(azurite, location=f"{ABFSS_ROOT}/")]
    d = A.Deployment(lakeshare_bin, tmp_path_factory.mktemp("az-server"),
                     A.one_share(shares_tables, SHARE, SCHEMA), extra={"storage": storage},
                     env=A.server_env(LAKESHARE_LOG="debug"))  # verbose, so the log checks have text to search
    try:
        main = d.recipient("main")
        other = d.recipient("other")
        yield {"d": d, "main": main, "other": other, "api": d.api(main[1]), "other_api": d.api(other[1])}
    finally:
        d.stop()


def url_of(az, table, who="main"):
    return f"{az[who][0]}#{SHARE}.{SCHEMA}.{table}"


def query_files(api, table, caps=None, body=None):
    r = api.query(SHARE, SCHEMA, table, body or {}, caps=caps)
    assert r.status_code == 200, f"query {table}: {r.status_code} {r.text[:800]}"
    files = file_lines(ndjson(r))
    assert files, f"query {table}: no file lines"
    return files


@pytest.fixture(scope="module")
def parts_files(az):
    """File lines of a parquet-format query of `parts`, issued once, with the issue time."""
    issued = time.time()
    return issued, query_files(az["api"], "parts")


def get(url):
    return requests.get(url, timeout=TIMEOUT)


# ------------------------------------------------------------------- 1. stock connector reads


@pytest.mark.parametrize("fmt", ["parquet", "delta"])
def test_partitioned_latest(az, az_oracle, fmt):
    df = delta_sharing.load_as_pandas(url_of(az, "parts"), use_delta_format=(fmt == "delta"))
    frames.assert_same_table(frames.Snapshot.from_pandas(df), az_oracle["parts@None"],
                             f"gen-partitioned in Azurite, {fmt}")


@pytest.mark.parametrize("fmt", ["parquet", "delta"])
@pytest.mark.parametrize("version", PARTS_VERSIONS)
def test_partitioned_time_travel(az, az_oracle, fmt, version):
    df = delta_sharing.load_as_pandas(url_of(az, "parts"), version=version, use_delta_format=(fmt == "delta"))
    frames.assert_same_table(frames.Snapshot.from_pandas(df), az_oracle[f"parts@{version}"],
                             f"gen-partitioned in Azurite at version {version}, {fmt}")


@pytest.mark.parametrize("version", [None] + DV_VERSIONS)
def test_deletion_vectors_delta_format(az, az_oracle, version):
    """DV files are read by the client through their own signed URLs (delta format)."""
    kw = {} if version is None else {"version": version}
    df = delta_sharing.load_as_pandas(url_of(az, "dv"), use_delta_format=True, **kw)
    frames.assert_same_table(frames.Snapshot.from_pandas(df), az_oracle[f"dv@{version}"],
                             f"dv-partitioned-checkpoint in Azurite at {version or 'latest'}, delta")


def test_deletion_vectors_refused_in_parquet(az):
    r = az["api"].query(SHARE, SCHEMA, "dv", {})
    assert_error(r, 400, "UNSUPPORTED_OPERATION", None, "DV table in parquet format (Azure)")


def _cdf_without_ts(snapshot):
    return snapshot.project([c for c in snapshot.columns if c != "_commit_timestamp"])


@pytest.mark.parametrize("fmt", ["parquet", "delta"])
@pytest.mark.parametrize("start,end", CDF_RANGES, ids=[f"v{s}-{e}" for s, e in CDF_RANGES])
def test_table_changes(az, az_oracle, fmt, start, end):
    kw = {"starting_version": start}
    if end is not None:
        kw["ending_version"] = end
    df = delta_sharing.load_table_changes_as_pandas(url_of(az, "cdf"), use_delta_format=(fmt == "delta"), **kw)
    got, want = S.align(_cdf_without_ts(S.client_snapshot(df)), az_oracle[f"cdf@{start}:{end}"])
    frames.assert_same_table(got, want, f"gen-cdf-partitioned changes [{start}, {end}] in Azurite, {fmt}")


def test_change_commit_timestamps_are_store_mtimes(az, azurite):
    """_commit_timestamp of each version = Last-Modified of its commit blob in the store (±1 s:
    Azure reports whole seconds), i.e. the server takes commit times from the store, not locally."""
    df = delta_sharing.load_table_changes_as_pandas(url_of(az, "cdf"), starting_version=0, use_delta_format=False)
    snap = S.client_snapshot(df)
    iv, it = snap.columns.index("_commit_version"), snap.columns.index("_commit_timestamp")
    by_version = {}
    for r in snap.rows:
        by_version.setdefault(int(r[iv]), set()).add(int(r[it]))
    assert by_version, "no change rows"
    container = azurite.service().get_container_client("lake")
    for v, stamps in sorted(by_version.items()):
        assert len(stamps) == 1, f"version {v}: several _commit_timestamp values {stamps}"
        blob = f"{prefix_of('cdf')}/_delta_log/{v:020d}.json"
        lm = container.get_blob_client(blob).get_blob_properties().last_modified
        lm_ms = int(lm.timestamp() * 1000)
        ts = stamps.pop()
        assert abs(ts - lm_ms) < 1000 + 1, (
            f"version {v}: _commit_timestamp {ts} is not the store's Last-Modified of {blob} ({lm_ms}, {lm})")


# ------------------------------------------------------------------- 2. SAS URLs checked by Azurite


def test_every_url_downloads_exact_bytes(az, tables, parts_files):
    _, files = parts_files
    local_root = Path(tables["gen-partitioned"]["path"])
    for f in files:
        url = f["url"]
        rel = A.relative_to_table(url, blob_prefix("parts"))
        r = get(url)
        assert r.status_code == 200, f"signed URL of {rel} refused by Azurite: {r.status_code} {r.text[:300]}"
        want = (local_root / rel).read_bytes()
        assert r.content == want, f"{rel}: downloaded {len(r.content)} bytes differ from the local file ({len(want)})"
        assert f["size"] == len(want), f"{rel}: line size {f['size']} != file size {len(want)}"


def test_sas_is_read_only_blob_scoped_service_sas(parts_files):
    _, files = parts_files
    for f in files:
        q = A.sas(f["url"])
        for k in ("sv", "sp", "se", "sr", "sig"):
            assert k in q, f"SAS URL lacks {k}: {f['url']}"
        assert q["sp"] == "r", f"permissions must be read-only ('r'), got {q['sp']!r}"
        assert q["sr"] == "b", f"SAS must be scoped to the blob (sr=b), got {q['sr']!r}"
        assert "skoid" not in q and "sdd" not in q, f"unexpected SAS kind: {q}"


def _first_two(files):
    assert len(files) >= 2, "need two files in the table"
    return files[0]["url"], files[1]["url"]


def test_control_reencoded_url_still_works(parts_files):
    """The URL surgery below re-encodes the query: unchanged, it must still be accepted."""
    url, _ = _first_two(parts_files[1])
    r = get(A.rebuild(url))
    assert r.status_code == 200, f"re-encoded unchanged URL refused: {r.status_code} {r.text[:300]}"


@pytest.mark.parametrize("index", [0, 10, -2])
def test_changed_sig_refused(parts_files, index):
    url, _ = _first_two(parts_files[1])
    sig = A.sas(url)["sig"]
    bad = A.rebuild(url, sig=A.flip_char(sig, index % len(sig)))
    r = get(bad)
    assert r.status_code == 403, f"URL with a changed sig must be refused (403), got {r.status_code}"


def test_later_expiry_refused(parts_files):
    url, _ = _first_two(parts_files[1])
    se = dt.datetime.strptime(A.sas(url)["se"], "%Y-%m-%dT%H:%M:%SZ")
    later = (se + dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    r = get(A.rebuild(url, se=later))
    assert r.status_code == 403, f"se moved to {later} must invalidate the signature, got {r.status_code}"


ESCALATIONS = {
    "write-permission": {"sp": "rw"},
    "all-permissions": {"sp": "racwd"},
    "container-scope": {"sr": "c"},
}


@pytest.mark.parametrize("change", list(ESCALATIONS))
def test_widened_sas_fields_refused(parts_files, change):
    """Permissions and scope are covered by the signature: widening them invalidates the URL."""
    url, _ = _first_two(parts_files[1])
    r = get(A.rebuild(url, **ESCALATIONS[change]))
    assert r.status_code == 403, f"SAS with {ESCALATIONS[change]} must be refused (403), got {r.status_code}"


def test_sas_without_start_time_refused(parts_files):
    url, _ = _first_two(parts_files[1])
    assert "st" in A.sas(url)
    parts = urlsplit(url)
    stripped = [(k, v) for k, v in A.query_pairs(url) if k != "st"]
    r = get(urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(stripped, quote_via=quote, safe=""), "")))
    assert r.status_code == 403, f"dropping `st` must invalidate the signature, got {r.status_code}"


def test_sas_of_one_file_does_not_open_another_of_same_table(parts_files):
    url, other = _first_two(parts_files[1])
    assert A.blob_path(url) != A.blob_path(other)
    swapped = A.rebuild(url, path=A.blob_path(other))
    assert get(other).status_code == 200, "control: the other file's own URL must work"
    r = get(swapped)
    assert r.status_code == 403, (
        f"SAS of {A.blob_path(url)} used on {A.blob_path(other)} must be refused (403), got {r.status_code}")


def test_sas_does_not_open_a_file_of_another_table(az, parts_files):
    url, _ = _first_two(parts_files[1])
    foreign = query_files(az["api"], "ckpt")[0]["url"]
    assert get(foreign).status_code == 200, "control: the other table's own URL must work"
    r = get(A.rebuild(url, path=A.blob_path(foreign)))
    assert r.status_code == 403, f"SAS of a `parts` file used on a `ckpt` file must be refused, got {r.status_code}"


def _se_ms(url):
    se = dt.datetime.strptime(A.sas(url)["se"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)
    return int(se.timestamp() * 1000)


@pytest.mark.parametrize("fmt", ["parquet", "delta"])
def test_expiration_timestamp_is_sas_expiry(az, fmt):
    t0 = time.time()
    files = query_files(az["api"], "parts", caps=DELTA_CAPS if fmt == "delta" else None)
    for f in files:
        url = file_url_of(f)
        exp, se = f["expirationTimestamp"], _se_ms(url)
        assert abs(exp - se) <= 2000, f"expirationTimestamp {exp} != SAS se {se} (±2 s) for {url}"
        # default lifetime preSignedUrlTimeoutSeconds = 3600
        assert abs(se / 1000 - (t0 + 3600)) <= 10, f"SAS lifetime is not ~3600 s: se {se}, issued at {t0:.0f}"


@pytest.fixture(scope="module")
def short(lakeshare_bin, azurite, az_uploaded, tmp_path_factory):
    """A server whose URLs live 2 s."""
    d = A.Deployment(lakeshare_bin, tmp_path_factory.mktemp("az-short"),
                     A.one_share([{"name": "parts", "location": az_uploaded["parts"]}], SHARE, SCHEMA),
                     extra={"storage": [A.azure_entry(azurite)], "preSignedUrlTimeoutSeconds": 2})
    try:
        yield d, d.api(d.recipient("r")[1])
    finally:
        d.stop()


def test_expired_url_refused(short):
    d, api = short
    f = query_files(api, "parts")[0]
    url = f["url"]
    r = get(url)
    assert r.status_code == 200, f"URL must work right after issue: {r.status_code} {r.text[:300]}"
    se = _se_ms(url)
    assert abs(f["expirationTimestamp"] - se) <= 2000
    assert se / 1000 - time.time() <= 3.5, f"preSignedUrlTimeoutSeconds 2 not applied: se {A.sas(url)['se']}"
    deadline = time.monotonic() + 10
    last = r.status_code
    while time.monotonic() < deadline and last == 200:
        time.sleep(0.25)
        last = get(url).status_code
    assert last == 403, f"URL still accepted ({last}) 10 s after issue with a 2 s lifetime"
    assert time.time() * 1000 >= se - 1000, "URL refused well before its se"
    assert "preSignedUrlTimeoutSeconds" in d.stderr(), "a lifetime below 900 s must be warned about"


# ------------------------------------------------------------------- 3. location spellings


@pytest.mark.parametrize("table", list(SPELLINGS))
def test_spellings_read_the_same_table(az, az_oracle, table):
    df = delta_sharing.load_as_pandas(url_of(az, table), use_delta_format=False)
    frames.assert_same_table(frames.Snapshot.from_pandas(df), az_oracle["parts@None"], f"{table} ({SPELLINGS[table]})")


@pytest.mark.parametrize("table", list(SPELLINGS))
def test_spellings_sign_urls_of_the_same_blobs(az, table):
    """Every spelling resolves to the same blobs of the same Azurite container."""
    paths = sorted(A.blob_path(f["url"]) for f in query_files(az["api"], table))
    want = sorted(A.blob_path(f["url"]) for f in query_files(az["api"], "parts"))
    assert paths == want, f"{table}: signed blob paths differ from the az:// table"
    for f in query_files(az["api"], table)[:2]:
        assert get(f["url"]).status_code == 200


def _check_config(binary, workdir, table_location, storage_location, azurite):
    os.makedirs(workdir, exist_ok=True)
    cfg = srv.write_config(os.path.join(workdir, "c.yaml"),
                           A.one_share([{"name": "t", "location": table_location}], SHARE, SCHEMA),
                           extra={"storage": [A.azure_entry(azurite, location=storage_location)]})
    return cfg, A.cli(binary, "check-config", cfg, check=False)


COMBOS = [  # (table spelling, storage prefix spelling)
    ("abfss", "abfss"), ("abfss", "wasbs"), ("abfss", "https"), ("wasbs", "abfss"), ("https", "abfss"),
    ("abfs", "abfss"), ("az", "az"), ("abfss", "az"), ("az", "abfss"),
]
SPELL = {
    "abfss": lambda p: f"{ABFSS_ROOT}/{p}",
    "abfs": lambda p: f"abfs://lake@{cs.AZURITE_ACCOUNT}.dfs.core.windows.net/{p}",
    "wasbs": lambda p: f"wasbs://lake@{cs.AZURITE_ACCOUNT}.blob.core.windows.net/{p}",
    "https": lambda p: f"https://{cs.AZURITE_ACCOUNT}.blob.core.windows.net/lake/{p}",
    "az": lambda p: f"az://lake/{p}",
}


@pytest.mark.parametrize("tspell,pspell", COMBOS, ids=[f"table-{t}-prefix-{p}" for t, p in COMBOS])
def test_check_config_spelling_combinations(lakeshare_bin, azurite, az_uploaded, tmp_path, tspell, pspell):
    _, p = _check_config(lakeshare_bin, str(tmp_path), SPELL[tspell]("conf/gen-partitioned"), SPELL[pspell](""),
                         azurite)
    assert p.returncode == 0, f"check-config must open the table:\n{p.stdout}\n{p.stderr}"
    assert "ok" in p.stdout and f"{SHARE}.{SCHEMA}.t" in p.stdout, p.stdout


def test_az_prefix_does_not_cover_another_account(lakeshare_bin, azurite, az_uploaded, tmp_path):
    """The two Azure spellings cover each other only for the same account and container."""
    loc = f"abfss://lake@someotheraccount.dfs.core.windows.net/conf/gen-partitioned"
    _, p = _check_config(lakeshare_bin, str(tmp_path), loc, SPELL["az"](""), azurite)
    assert p.returncode != 0, f"an az:// prefix for {cs.AZURITE_ACCOUNT} must not cover {loc}"
    assert loc in p.stdout + p.stderr


def test_unsupported_scheme_refused_at_config_load(lakeshare_bin, tmp_path):
    loc = "hdfs://namenode:8020/warehouse/trips"
    cfg = srv.write_config(str(tmp_path / "c.yaml"), A.one_share([{"name": "t", "location": loc}], SHARE, SCHEMA))
    p = A.cli(lakeshare_bin, "check-config", cfg, check=False)
    assert p.returncode != 0, f"check-config accepted {loc}:\n{p.stdout}"
    assert loc in p.stdout + p.stderr, p.stdout + p.stderr
    r = srv.run_serve_expect_exit(lakeshare_bin, cfg, str(tmp_path / "state.db"))
    assert r.returncode not in (None, 0), f"serve started with a table at {loc}"
    assert loc in r.stdout + r.stderr, r.stdout + r.stderr


# ------------------------------------------------------------------- 4. secrets


def _key_forms():
    return {cs.AZURITE_KEY, quote(cs.AZURITE_KEY, safe=""), cs.AZURITE_KEY[:24]}


def test_account_key_never_in_responses(az):
    api, h = az["api"], {}
    responses = [
        api.get("/shares"), api.get(f"/shares/{SHARE}/schemas"), api.get(f"/shares/{SHARE}/all-tables"),
        api.metadata(SHARE, SCHEMA, "parts"), api.metadata(SHARE, SCHEMA, "dv", caps=DELTA_CAPS),
        api.version(SHARE, SCHEMA, "parts"),
        api.query(SHARE, SCHEMA, "parts", {}), api.query(SHARE, SCHEMA, "dv", {}, caps=DELTA_CAPS),
        api.query(SHARE, SCHEMA, "parts", {"version": 0}),
        api.get(api.table_path(SHARE, SCHEMA, "cdf", "/changes") + "?startingVersion=0"),
        # errors
        api.query(SHARE, SCHEMA, "dv", {}), api.query(SHARE, SCHEMA, "parts", {"version": 999}),
        api.query(SHARE, SCHEMA, "ckpt", {"version": 1}), api.metadata(SHARE, SCHEMA, "nope"),
    ]
    assert responses[0].status_code == 200
    for r in responses:
        text = r.text + " ".join(f"{k}: {v}" for k, v in r.headers.items())
        for form in _key_forms():
            assert form not in text, f"account key in the response of {r.request.method} {r.url}"
        h[r.url] = r.status_code
    assert any(s >= 400 for s in h.values()), "the error responses were expected to be errors"


def test_account_key_and_sigs_not_in_server_log(az):
    """After both recipients fetched URLs (and the connector tests ran), the server's debug log holds
    neither the account key nor any issued signature."""
    sigs = set()
    for who in ("api", "other_api"):
        for table, caps in (("parts", None), ("ckpt", None), ("dv", DELTA_CAPS)):
            for f in query_files(az[who], table, caps=caps):
                sigs.add(A.sas(file_url_of(f))["sig"])
    assert len(sigs) > 3
    log = az["d"].stderr()
    assert "conf/gen-partitioned" in log, "the debug log should mention the tables it reads"
    for form in _key_forms():
        assert form not in log, "account key in server stderr"
    leaked = [s for s in sigs if s in log or quote(s, safe="") in log]
    assert not leaked, f"{len(leaked)} SAS signatures appear in server stderr, e.g. {leaked[0]}"

