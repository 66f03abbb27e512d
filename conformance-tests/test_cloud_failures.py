"""Cloud tables whose store fails: unreachable endpoint, refused credentials, missing bucket.

Everything here uses raw HTTP (api.py): the stock connector retries 5xx answers with back-off, which
would hide the status and take minutes. One module-scoped server (`storageSelfTest: false`) holds
healthy and broken tables side by side:

* gone        -- az://lake/gone/trips, storage endpoint = a closed 127.0.0.1 port
* badkey      -- az://lake/badkey/trips (the data exists in Azurite), storage with a wrong accessKey
* alive       -- az://lake/f/trips, correct Azurite settings
* s3ok        -- s3://lake/f/trips in s3s-fs
* s3nobucket  -- s3://nobucket/f/trips: the store answers NoSuchBucket
* s3absent    -- s3://lake/absent/trips: bucket exists, no table there
* azabsent    -- az://lake/absent/trips: container exists, no table there
* local       -- examples/tables/trips on local disk

Decisions (from observed behaviour, PROTOCOL-NOTES-style):
* a store that cannot be reached, refuses our credentials, or has no such bucket -> 503
  TEMPORARILY_UNAVAILABLE (a server-side storage problem; the recipient cannot fix it);
* a reachable bucket/container that simply holds no Delta log at the table's path -> 404
  RESOURCE_DOES_NOT_EXIST (the store answered that the table is not there).
"""
import os
import re
import time

import delta_sharing
import pytest

import cloud_azure_support as A
import cloud_support as cs
import frames
import server as srv
from api import DELTA_CAPS, error_of

SHARE, SCHEMA = "cloud", "s"
TRIPS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples", "tables", "trips")
TRIPS = os.path.normpath(TRIPS)
TRIPS_ROWS = 421
ANSWER_WITHIN = 30.0
UNAVAILABLE = ("gone", "badkey", "s3nobucket")
ABSENT = ("s3absent", "azabsent")
HEALTHY = ("alive", "s3ok", "local")


def _forbidden_texts():
    from urllib.parse import quote

    out = set()
    for k in (cs.AZURITE_KEY, A.WRONG_AZURE_KEY, cs.S3_SECRET_KEY):
        out |= {k, quote(k, safe="")}
    return out


def assert_no_secret(text, what):
    for s in _forbidden_texts():
        assert s not in text, f"{what}: a storage secret appears in the text"


@pytest.fixture(scope="module")
def uploads(azurite, s3store):
    return {
        "az": azurite.upload_dir(TRIPS, "f/trips"),
        "azbad": azurite.upload_dir(TRIPS, "badkey/trips"),
        "s3": s3store.upload_dir(TRIPS, "f/trips"),
    }


@pytest.fixture(scope="module")
def secrets_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("cloud-secrets")
    (d / "bad.key").write_text(A.WRONG_AZURE_KEY + "\n")
    (d / "good.key").write_text(cs.AZURITE_KEY + "\n")
    cs.Moto.write_secret(d / "s3.secret")
    return d


def closed_endpoint():
    return f"http://127.0.0.1:{cs.free_port()}/{cs.AZURITE_ACCOUNT}"


def bad_key_entry(azurite, secrets_dir):
    return A.azure_entry(azurite, location="az://lake/badkey/", key={"file": str(secrets_dir / "bad.key")})


def s3_entry(moto, secrets_dir, bucket="lake"):
    e = moto.storage_entry(secrets_dir / "s3.secret")
    e["location"] = f"s3://{bucket}/"
    return e


@pytest.fixture(scope="module")
def broken(lakeshare_bin, azurite, s3store, uploads, secrets_dir, tmp_path_factory):
    moto = s3store
    tables = [
        {"name": "gone", "location": "az://lake/gone/trips", "historyShared": True},
        {"name": "badkey", "location": uploads["azbad"], "historyShared": True},
        {"name": "alive", "location": uploads["az"]},
        {"name": "s3ok", "location": uploads["s3"]},
        {"name": "s3nobucket", "location": "s3://nobucket/f/trips", "historyShared": True},
        {"name": "s3absent", "location": "s3://lake/absent/trips"},
        {"name": "azabsent", "location": "az://lake/absent/trips"},
        {"name": "local", "location": TRIPS},
    ]
    storage = [
        A.azure_entry(azurite),
        A.azure_entry(azurite, location="az://lake/gone/", endpoint=closed_endpoint()),
        bad_key_entry(azurite, secrets_dir),
        s3_entry(moto, secrets_dir),
        s3_entry(moto, secrets_dir, bucket="nobucket"),
    ]
    d = A.Deployment(lakeshare_bin, tmp_path_factory.mktemp("broken-server"), A.one_share(tables, SHARE, SCHEMA),
                     extra={"storage": storage, "storageSelfTest": False}, env=A.server_env(LAKESHARE_LOG="debug"))
    try:
        profile, token = d.recipient("r")
        yield {"d": d, "api": d.api(token), "profile": profile}
    finally:
        d.stop()


def _call(api, table, kind):
    if kind == "metadata":
        return api.metadata(SHARE, SCHEMA, table)
    if kind == "query":
        return api.query(SHARE, SCHEMA, table, {})
    if kind == "query-delta":
        return api.query(SHARE, SCHEMA, table, {}, caps=DELTA_CAPS)
    if kind == "version":
        return api.version(SHARE, SCHEMA, table)
    if kind == "changes":
        return api.get(api.table_path(SHARE, SCHEMA, table, "/changes") + "?startingVersion=0")
    raise ValueError(kind)


KINDS = ["metadata", "query", "query-delta", "version", "changes"]


def _timed(api, table, kind):
    t0 = time.monotonic()
    r = _call(api, table, kind)
    return r, time.monotonic() - t0


def assert_protocol_error(r, table, what):
    st, code, msg = error_of(r)  # one JSON object: no NDJSON lines, hence no file line
    body = r.text
    assert '"file"' not in body and '"add"' not in body, f"{what}: file actions in an error body: {body[:500]}"
    assert not re.search(r"https?://", body), f"{what}: the error body names a URL: {body[:500]}"
    assert "127.0.0.1" not in body, f"{what}: the error body names the store endpoint: {body[:500]}"
    assert_no_secret(body + str(dict(r.headers)), what)
    assert table in msg, f"{what}: the message should name the table: {msg!r}"
    return st, code, msg


# ------------------------------------------------------------------- 5. unreachable store


@pytest.mark.parametrize("kind", KINDS)
def test_unreachable_store_is_503(broken, kind):
    r, took = _timed(broken["api"], "gone", kind)
    what = f"{kind} of a table whose store is unreachable"
    assert took <= ANSWER_WITHIN, f"{what}: answered after {took:.1f}s"
    assert r.status_code == 503, f"{what}: expected 503, got {r.status_code}: {r.text[:500]}"
    _, code, _ = assert_protocol_error(r, "gone", what)
    assert code == "TEMPORARILY_UNAVAILABLE", f"{what}: errorCode {code}"


def test_unreachable_store_leaves_server_serving(broken):
    api = broken["api"]
    for _ in range(3):  # repeated failures do not wedge anything
        assert _call(api, "gone", "query").status_code == 503
    r = api.get("/shares")
    assert r.status_code == 200, r.text[:300]
    r = api.get(f"/shares/{SHARE}/all-tables")
    assert r.status_code == 200 and "gone" in r.text, "the broken table is still listed"
    assert broken["d"].server.alive()


@pytest.mark.parametrize("table", HEALTHY)
def test_healthy_tables_read_next_to_broken_ones(broken, table):
    # hit the broken tables first, then read through the stock connector
    for t in UNAVAILABLE:
        assert _call(broken["api"], t, "query").status_code >= 500
    df = delta_sharing.load_as_pandas(f"{broken['profile']}#{SHARE}.{SCHEMA}.{table}")
    assert len(df) == TRIPS_ROWS, f"{table}: {len(df)} rows"


def test_healthy_cloud_tables_equal_local(broken):
    snaps = {t: frames.Snapshot.from_pandas(delta_sharing.load_as_pandas(f"{broken['profile']}#{SHARE}.{SCHEMA}.{t}"))
             for t in HEALTHY}
    for t in ("alive", "s3ok"):
        frames.assert_same_table(snaps[t], snaps["local"], f"{t} vs the local copy")


def test_unreachable_store_check_config(lakeshare_bin, azurite, uploads, tmp_path):
    cfg = srv.write_config(str(tmp_path / "c.yaml"),
                           A.one_share([{"name": "gone", "location": "az://lake/gone/trips"}], SHARE, SCHEMA),
                           extra={"storage": [A.azure_entry(azurite, location="az://lake/gone/",
                                                            endpoint=closed_endpoint())]})
    t0 = time.monotonic()
    p = A.cli(lakeshare_bin, "check-config", cfg, check=False, timeout=60)
    out = p.stdout + p.stderr
    assert p.returncode != 0, f"check-config passed with an unreachable store:\n{out}"
    assert time.monotonic() - t0 <= ANSWER_WITHIN
    assert f"{SHARE}.{SCHEMA}.gone" in out and "az://lake/gone/trips" in out, out
    assert_no_secret(out, "check-config output")


# ------------------------------------------------------------------- 6. wrong credentials


@pytest.mark.parametrize("kind", KINDS)
def test_wrong_key_is_5xx_without_urls(broken, kind):
    r, took = _timed(broken["api"], "badkey", kind)
    what = f"{kind} of a table whose store refuses the account key"
    assert took <= ANSWER_WITHIN, f"{what}: answered after {took:.1f}s"
    assert 500 <= r.status_code < 600, f"{what}: expected 5xx, got {r.status_code}: {r.text[:500]}"
    assert_protocol_error(r, "badkey", what)


def _bad_key_config(binary, workdir, azurite, secrets_dir, uploads, extra=None):
    os.makedirs(workdir, exist_ok=True)
    cfg = srv.write_config(os.path.join(workdir, "c.yaml"),
                           A.one_share([{"name": "t", "location": uploads["azbad"]}], SHARE, SCHEMA),
                           extra={"storage": [bad_key_entry(azurite, secrets_dir)], **(extra or {})})
    state = os.path.join(workdir, "state.db")
    A.cli(binary, "recipient", "create", "b", "--share", SHARE, "--config", cfg, "--state", state,
          "--endpoint", A.BOOTSTRAP_ENDPOINT, "--profile", os.path.join(workdir, "b.share"))
    return cfg, state


def _names_storage_prefix(text, prefix, table_location):
    """The storage prefix is named on its own, not only as the start of the table location."""
    rest = table_location[len(prefix):]
    return re.search(re.escape(prefix) + "(?!" + re.escape(rest) + ")", text) is not None


def test_wrong_key_check_config(lakeshare_bin, azurite, secrets_dir, uploads, tmp_path):
    cfg, _ = _bad_key_config(lakeshare_bin, str(tmp_path), azurite, secrets_dir, uploads)
    p = A.cli(lakeshare_bin, "check-config", cfg, check=False)
    out = p.stdout + p.stderr
    assert p.returncode != 0, f"check-config passed with a wrong account key:\n{out}"
    assert f"{SHARE}.{SCHEMA}.t" in out, f"check-config must name the table:\n{out}"
    assert "az://lake/badkey/trips" in out, f"check-config must name the table location:\n{out}"
    assert _names_storage_prefix(out, "az://lake/badkey/", "az://lake/badkey/trips"), (
        f"check-config must name the storage location 'az://lake/badkey/' whose settings failed:\n{out}")
    assert_no_secret(out, "check-config output")


def test_wrong_key_serve_self_test_refuses(lakeshare_bin, azurite, secrets_dir, uploads, tmp_path):
    cfg, state = _bad_key_config(lakeshare_bin, str(tmp_path), azurite, secrets_dir, uploads)
    r = srv.run_serve_expect_exit(lakeshare_bin, cfg, state)
    out = r.stdout + r.stderr
    assert r.returncode not in (None, 0), f"serve started although the store refuses the key:\n{out}"
    assert "refusing to start" in out, out
    assert f"{SHARE}.{SCHEMA}.t" in out, f"serve must name the table:\n{out}"
    assert _names_storage_prefix(out, "az://lake/badkey/", "az://lake/badkey/trips"), (
        f"serve must name the storage location:\n{out}")
    assert "403" in out, f"serve must say what failed (the store's 403):\n{out}"
    assert_no_secret(out, "serve output")


def test_wrong_key_serve_starts_without_self_test(lakeshare_bin, azurite, secrets_dir, uploads, tmp_path):
    cfg, state = _bad_key_config(lakeshare_bin, str(tmp_path), azurite, secrets_dir, uploads, extra={"storageSelfTest": False})
    s = srv.start_server(lakeshare_bin, cfg, state, env=A.server_env())
    try:
        assert s.alive()
    finally:
        s.stop()


def test_wrong_sas_token_check_config_hides_token(lakeshare_bin, azurite, uploads, tmp_path):
    """A storage `sasToken` whose signature Azurite rejects: check-config fails naming the table,
    and neither the token nor its signature appears in the output."""
    import datetime as dt
    from urllib.parse import parse_qsl, quote, urlencode

    from azure.storage.blob import ContainerSasPermissions, generate_container_sas

    token = generate_container_sas(cs.AZURITE_ACCOUNT, "lake", account_key=cs.AZURITE_KEY,
                                   permission=ContainerSasPermissions(read=True, list=True),
                                   expiry=dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1))
    pairs = parse_qsl(token)
    bad_sig = A.flip_char(dict(pairs)["sig"], 3)
    bad = urlencode([(k, bad_sig if k == "sig" else v) for k, v in pairs], quote_via=quote, safe="")
    (tmp_path / "sas").write_text(bad)
    entry = A.azure_entry(azurite, location="az://lake/badkey/")
    del entry["azure"]["accessKey"]
    entry["azure"]["sasToken"] = {"file": str(tmp_path / "sas")}
    cfg = srv.write_config(str(tmp_path / "c.yaml"),
                           A.one_share([{"name": "t", "location": uploads["azbad"]}], SHARE, SCHEMA),
                           extra={"storage": [entry]})
    p = A.cli(lakeshare_bin, "check-config", cfg, check=False)
    out = p.stdout + p.stderr
    assert p.returncode != 0, f"check-config passed with a rejected sasToken:\n{out}"
    assert f"{SHARE}.{SCHEMA}.t" in out, out
    for s in (bad, bad_sig, quote(bad_sig, safe="")):
        assert s not in out, "the sasToken (or its signature) appears in check-config output"


def test_no_secret_in_broken_server_log(broken):
    for t in UNAVAILABLE + ABSENT:
        _call(broken["api"], t, "query")
    log = broken["d"].stderr()
    assert "badkey" in log or "gone" in log, "expected the failures to be logged"
    assert_no_secret(log, "server stderr")


# ------------------------------------------------------------------- 7. S3: missing bucket / missing table


@pytest.mark.parametrize("kind", KINDS)
def test_s3_missing_bucket_is_503(broken, kind):
    """The store answers NoSuchBucket: a storage configuration problem, not a missing table -> 503."""
    r, took = _timed(broken["api"], "s3nobucket", kind)
    what = f"{kind} of a table in a bucket that does not exist"
    assert took <= ANSWER_WITHIN
    assert r.status_code == 503, f"{what}: expected 503, got {r.status_code}: {r.text[:500]}"
    _, code, _ = assert_protocol_error(r, "s3nobucket", what)
    assert code == "TEMPORARILY_UNAVAILABLE", code


@pytest.mark.parametrize("table", ABSENT)
@pytest.mark.parametrize("kind", ["metadata", "query", "version"])
def test_absent_table_in_existing_bucket_is_404(broken, table, kind):
    r = _call(broken["api"], table, kind)
    what = f"{kind} of {table} (bucket/container exists, no Delta log at the path)"
    assert r.status_code == 404, f"{what}: expected 404, got {r.status_code}: {r.text[:500]}"
    _, code, _ = assert_protocol_error(r, table, what)
    assert code == "RESOURCE_DOES_NOT_EXIST", code


def test_s3_missing_bucket_check_config(lakeshare_bin, s3store, secrets_dir, tmp_path):
    moto = s3store
    cfg = srv.write_config(str(tmp_path / "c.yaml"),
                           A.one_share([{"name": "nb", "location": "s3://nobucket/f/trips"}], SHARE, SCHEMA),
                           extra={"storage": [s3_entry(moto, secrets_dir, bucket="nobucket")]})
    p = A.cli(lakeshare_bin, "check-config", cfg, check=False)
    out = p.stdout + p.stderr
    assert p.returncode != 0, f"check-config passed with a missing bucket:\n{out}"
    assert f"{SHARE}.{SCHEMA}.nb" in out and "s3://nobucket/f/trips" in out, out
    assert_no_secret(out, "check-config output")
