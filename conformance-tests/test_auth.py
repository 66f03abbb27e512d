"""Recipients, tokens and grants (contract: 401 missing/unknown/revoked/expired, 404 ungranted)."""
import json

import delta_sharing
import pytest
import requests

from api import Api, assert_error

PATHS = [
    ("GET", "/shares"),
    ("GET", "/shares/conformance/schemas"),
    ("GET", "/shares/conformance/all-tables"),
    ("GET", "/shares/conformance/schemas/generated/tables/gen_partitioned/version"),
    ("GET", "/shares/conformance/schemas/generated/tables/gen_partitioned/metadata"),
    ("POST", "/shares/conformance/schemas/generated/tables/gen_partitioned/query"),
]


def _call(api, method, path):
    return api.get(path) if method == "GET" else api.post(path, {})


@pytest.mark.parametrize("method,path", PATHS)
def test_missing_token_401(env, method, path):
    api = Api(env.endpoint, None)
    r = _call(api, method, path)
    assert_error(r, 401, what=f"{method} {path} without Authorization")


@pytest.mark.parametrize("token", ["wrong-token", "", "Bearer"])
def test_bad_token_401(env, token):
    r = Api(env.endpoint, token).get("/shares")
    assert r.status_code == 401, f"token {token!r}: expected 401, got {r.status_code}"


def test_non_bearer_scheme_401(env):
    r = requests.get(env.endpoint + "/shares", headers={"Authorization": f"Basic {env.token}"}, timeout=30)
    assert r.status_code == 401


def test_recipient_profile_shape(env):
    with open(env.profile) as fh:
        prof = json.load(fh)
    assert prof["shareCredentialsVersion"] == 1
    assert prof["endpoint"].rstrip("/") == env.endpoint
    assert isinstance(prof["bearerToken"], str) and len(prof["bearerToken"]) >= 16


def test_expired_token_401(env):
    _, profile, token = env.new_recipient(["conformance"], expires="2020-01-01T00:00:00Z", prefix="expired")
    with open(profile) as fh:
        prof = json.load(fh)
    assert "expirationTime" in prof and prof["expirationTime"].startswith("2020-01-01"), (
        f"profile of an expiring recipient must carry expirationTime: {prof}")
    r = Api(env.endpoint, token).get("/shares")
    _, msg = assert_error(r, 401, what="expired token")
    assert "expired" in msg.lower(), f"401 for an expired token must say 'expired': {msg!r}"


def test_future_expiry_works(env):
    _, _, token = env.new_recipient(["conformance"], expires="2099-01-01T00:00:00Z", prefix="future")
    assert Api(env.endpoint, token).get("/shares").status_code == 200


def test_revoked_token_401(env):
    name, profile, token = env.new_recipient(["conformance"], prefix="revoke")
    api = Api(env.endpoint, token)
    assert api.get("/shares").status_code == 200
    env.revoke(name)
    r = api.get("/shares")
    assert_error(r, 401, what="revoked recipient's next request")
    r = api.post("/shares/conformance/schemas/generated/tables/gen_partitioned/query", {})
    assert r.status_code == 401


@pytest.fixture(scope="module")
def gated_only(env):
    name, profile, token = env.new_recipient(["gated"], prefix="gatedonly")
    return Api(env.endpoint, token), profile


def test_ungranted_share_listing(gated_only):
    api, _ = gated_only
    r = api.get("/shares")
    assert [s["name"] for s in r.json().get("items", [])] == ["gated"], "only granted shares are listed"


@pytest.mark.parametrize("method,path", [
    ("GET", "/shares/conformance"),
    ("GET", "/shares/conformance/schemas"),
    ("GET", "/shares/conformance/all-tables"),
    ("GET", "/shares/conformance/schemas/golden/tables"),
    ("GET", "/shares/conformance/schemas/generated/tables/gen_partitioned/version"),
    ("GET", "/shares/conformance/schemas/generated/tables/gen_partitioned/metadata"),
    ("POST", "/shares/conformance/schemas/generated/tables/gen_partitioned/query"),
])
def test_ungranted_share_is_404_like_unknown(gated_only, method, path):
    api, _ = gated_only
    r = _call(api, method, path)
    code, _ = assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST", what=f"ungranted {method} {path}")
    unknown = _call(api, method, path.replace("/conformance", "/doesnotexist"))
    assert unknown.status_code == 404 and unknown.json()["errorCode"] == code, (
        "an ungranted share must look exactly like an unknown one")


def test_granted_share_readable(gated_only):
    api, profile = gated_only
    assert api.get("/shares/gated/schemas/gated/tables/no_history/version").status_code == 200
    tables = delta_sharing.SharingClient(profile).list_all_tables()
    assert {t.share for t in tables} == {"gated"}


def test_metrics_needs_no_token(env):
    r = requests.get(env.server.metrics_url, timeout=30)
    assert r.status_code == 200, f"/_lakeshare/metrics from loopback: {r.status_code}"
    assert "lakeshare_log_replays_total" in r.text


def test_recipient_list(env):
    """`recipient list [--json]` shows the recipients, never the full bearer tokens."""
    import server as srv

    plain = srv.lakeshare(env.binary, "recipient", "list", "--config", env.config, "--state", env.state)
    js = srv.lakeshare(env.binary, "recipient", "list", "--config", env.config, "--state", env.state, "--json")
    data = json.loads(js.stdout)
    text = json.dumps(data)
    for name in ("bootstrap", "conformance"):
        assert name in plain.stdout and name in text, f"recipient {name} missing from `recipient list`"
    assert env.token not in plain.stdout + plain.stderr + js.stdout + js.stderr, (
        "recipient list must not print bearer tokens")
