"""S3 signing credentials from STS AssumeRole (`assumeRoleArn`): Lakeshare knows when they
expire, so no file's `expirationTimestamp` promises more than the signing credential's life, the
URLs carry the session token, and reads still work (moto as S3 and STS)."""
import json
import time
from urllib.parse import parse_qs, urlsplit

import delta_sharing
import pytest

import cloud_support as cs
import server as srv
from api import Api, file_lines, ndjson

ROLE = "arn:aws:iam::123456789012:role/lakeshare-signer"


@pytest.fixture(scope="module")
def role_server(lakeshare_bin, tables, moto, tmp_path_factory):
    d = tmp_path_factory.mktemp("assume-role")
    loc = moto.upload_dir(tables["gen-partitioned"]["path"], "assume-role/gen-partitioned")
    secret = moto.write_secret(d / "s3.secret")
    entry = moto.storage_entry(secret)
    entry["s3"].update({"assumeRoleArn": ROLE, "assumeRoleDurationSeconds": 900,
                        "stsEndpoint": moto.endpoint + "/"})
    shares = [{"name": "r", "schemas": [{"name": "s", "tables": [{"name": "t", "location": loc}]}]}]
    cfg = srv.write_config(str(d / "c.yaml"), shares, extra={"storage": [entry]})
    state = str(d / "state.db")
    profile = d / "p.share"
    srv.create_recipient(lakeshare_bin, state, "reader", ["r"], str(profile),
                         endpoint="http://127.0.0.1:9/delta-sharing", config=cfg)
    server = srv.start_server(lakeshare_bin, cfg, state, ["--port", "0"])
    p = json.loads(profile.read_text())
    p["endpoint"] = server.url
    profile.write_text(json.dumps(p))
    yield server, Api(server.url, p["bearerToken"]), profile
    server.stop()


def test_urls_are_signed_with_the_assumed_role_and_carry_its_session_token(role_server):
    server, api, _ = role_server
    r = api.query("r", "s", "t", {})
    assert r.status_code == 200, r.text[:400]
    files = file_lines(ndjson(r))
    assert files
    for f in files:
        q = parse_qs(urlsplit(f["url"]).query)
        key_id = q["X-Amz-Credential"][0].split("/")[0]
        assert key_id != cs.S3_ACCESS_KEY, "URLs must be signed with the role's credentials"
        assert q.get("X-Amz-Security-Token", [""])[0], "session credentials need their token"
    assert "warning" in server.stderr_text().lower() and "assumeRoleDurationSeconds" in server.stderr_text()


def test_no_expiry_beyond_the_signing_credential(role_server):
    _, api, _ = role_server
    t0 = time.time() * 1000
    files = file_lines(ndjson(api.query("r", "s", "t", {})))
    for f in files:
        left = f["expirationTimestamp"] - t0
        # a 900 s session renewed at half-life: between 450 and 900 s left, never the 3600 s of
        # preSignedUrlTimeoutSeconds
        assert 440_000 <= left <= 901_000, left


def test_reads_work_with_role_credentials(role_server, oracle):
    import frames

    _, _, profile = role_server
    df = delta_sharing.load_as_pandas(f"{profile}#r.s.t")
    frames.assert_same_table(frames.Snapshot.from_pandas(df), oracle.snapshot("gen-partitioned"),
                             "assumed-role read")
