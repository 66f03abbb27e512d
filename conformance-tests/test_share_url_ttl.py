"""Per-share lifetime of pre-signed URLs (Lakeshare extension `preSignedUrlTimeoutSeconds` on a
share in the config, `url_ttl_seconds` on the admin API): URLs that cannot be recalled (object
store URLs) can be kept short for the shares that need it."""
import json
import time
from urllib.parse import parse_qs, urlsplit

import pytest

import cloud_support as cs
import server as srv
from api import Api, file_lines, ndjson



@pytest.fixture(scope="module")
def ttl_server(lakeshare_bin, tables, s3store, tmp_path_factory):
    moto = s3store  # reads go to the signature-verifying store
    d = tmp_path_factory.mktemp("share-ttl")
    local = tables["gen-partitioned"]["path"]
    s3 = moto.upload_dir(local, "share-ttl/gen-partitioned")
    secret = moto.write_secret(d / "s3.secret")
    shares = [
        {"name": "short", "preSignedUrlTimeoutSeconds": 900, "schemas": [{"name": "s", "tables": [
            {"name": "local", "location": local}, {"name": "cloud", "location": s3}]}]},
        {"name": "default", "schemas": [{"name": "s", "tables": [
            {"name": "local", "location": local}, {"name": "cloud", "location": s3}]}]},
    ]
    cfg = srv.write_config(str(d / "c.yaml"), shares, extra={"storage": [moto.storage_entry(secret)]})
    state = str(d / "state.db")
    srv.create_recipient(lakeshare_bin, state, "r", ["short", "default"], str(d / "r.share"),
                         endpoint="http://127.0.0.1:9/delta-sharing", config=cfg)
    server = srv.start_server(lakeshare_bin, cfg, state, ["--port", "0"])
    token = json.load(open(d / "r.share"))["bearerToken"]
    yield server, Api(server.url, token)
    server.stop()


def _lines(api, share, table):
    t0 = int(time.time() * 1000)
    r = api.query(share, "s", table, {})
    assert r.status_code == 200, r.text[:400]
    files = file_lines(ndjson(r))
    assert files, "no files"
    return t0, files


@pytest.mark.parametrize("share,ttl", [("short", 900), ("default", 3600)])
def test_local_urls_expire_after_the_share_lifetime(ttl_server, share, ttl):
    _, api = ttl_server
    t0, files = _lines(api, share, "local")
    for f in files:
        left = f["expirationTimestamp"] - t0
        assert ttl * 1000 - 5000 <= left <= ttl * 1000 + 5000, (share, left)


@pytest.mark.parametrize("share,ttl", [("short", 900), ("default", 3600)])
def test_object_store_urls_carry_the_share_lifetime(ttl_server, share, ttl):
    _, api = ttl_server
    t0, files = _lines(api, share, "cloud")
    for f in files:
        q = parse_qs(urlsplit(f["url"]).query)
        assert q["X-Amz-Expires"] == [str(ttl)], (share, f["url"])
        left = f["expirationTimestamp"] - t0
        assert ttl * 1000 - 5000 <= left <= ttl * 1000 + 1000, (share, left)


def test_invalid_share_lifetime_is_refused(lakeshare_bin, tmp_path):
    shares = [{"name": "bad", "preSignedUrlTimeoutSeconds": 0, "schemas": []}]
    cfg = srv.write_config(str(tmp_path / "c.yaml"), shares)
    r = srv.lakeshare(lakeshare_bin, "check-config", cfg, check=False)
    assert r.returncode != 0 and "preSignedUrlTimeoutSeconds must be between 1 and 604800 seconds" in (r.stderr + r.stdout)
