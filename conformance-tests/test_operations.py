"""Operating Lakeshare (issue G3, G7, G8): what a provider's operator sees and controls.

* every expiry is shown: the recipient's tokens, its grants, its pending activation links (CLI
  `show`/`list` and the admin API);
* a per-request access log at info level without secrets; no ANSI colours when stderr is not a
  terminal; `/healthz` carries `x-request-id`;
* `/metrics` for other hosts only through the explicit `metricsListener`, behind a token;
* admin tokens expire, are listed (never their secret) and revoked, through the CLI and the API,
  and every such change is in the admin change log.
"""
import json
import re
import time

import pytest
import requests

import admin as A
import server as srv

UC = "/api/2.1/unity-catalog"
EXT = "/api/2.1/lakeshare"
TABLE = "gen-partitioned"


def shares(path):
    return [{"name": "sales", "schemas": [{"name": "eu", "tables": [{"name": "orders", "location": path}]}]}]


METRICS_TOKEN = "metrics-scraper-token-0123456789"


@pytest.fixture(scope="module")
def ops(lakeshare_bin, tables, tmp_path_factory):
    d = tmp_path_factory.mktemp("ops")
    (d / "metrics.token").write_text(METRICS_TOKEN + "\n")
    a = A.AdminServer(lakeshare_bin, d, shares(tables[TABLE]["path"]),
                      extra={"metricsListener": {"host": "127.0.0.1", "port": 0,
                                                 "bearerToken": {"file": "metrics.token"}}})
    yield a
    a.stop()


def stderr_of(a):
    with open(a.server.stderr_path) as fh:
        return fh.read()


def test_every_expiry_is_shown(ops, tmp_path):
    ops.cli("recipient", "create", "exp", "--share", "sales", *ops.where, "--expires-in", "30d",
            "--endpoint", "http://127.0.0.1:9/delta-sharing", "--profile", str(tmp_path / "exp.share"))
    ops.cli("grant", "add", "exp", "sales", "--expires-in", "7d", *ops.where)
    ops.cli("recipient", "link", "exp", *ops.where, "--expires-in", "10d",
            "--endpoint", "http://127.0.0.1:9/delta-sharing")
    shown = json.loads(ops.cli("recipient", "show", "exp", "--json", *ops.where).stdout)
    assert shown["tokens"][0]["expiresAt"], shown
    assert shown["grants"][0]["share"] == "sales" and shown["grants"][0]["expiresAt"], shown
    (link,) = shown["pendingLinks"]
    assert link["linkExpiresAt"] and link["tokenExpiresAt"], link
    listed = ops.cli("recipient", "list", *ops.where).stdout
    row = next(ln for ln in listed.splitlines() if ln.startswith("exp "))
    assert "sales (until" in row and "expires 20" in row and "link (until" in row, row
    info = ops.raw("GET", f"{UC}/recipients/exp").json()
    assert info["grants"][0]["expiration_time"] > time.time() * 1000, info
    assert info["pending_activation_links"][0]["token_expiration_time"], info
    assert all(t.get("expiration_time") for t in info["tokens"]), info


def test_access_log_and_request_ids(ops):
    h = requests.get(ops.server.base + "/healthz", timeout=30)
    assert h.status_code == 200 and h.headers.get("x-request-id"), dict(h.headers)
    token = ops.cli("recipient", "create", "logged", "--share", "sales", *ops.where, "--endpoint",
                    "http://127.0.0.1:9/delta-sharing", "--profile", "/dev/null", check=False)
    del token
    r = ops.raw("GET", f"{UC}/shares")
    rid = r.headers["x-request-id"]
    deadline = time.monotonic() + 10
    while rid not in stderr_of(ops) and time.monotonic() < deadline:
        time.sleep(0.05)
    err = stderr_of(ops)
    line = next((ln for ln in err.splitlines() if rid in ln), None)
    assert line, "an access log line names the request id"
    assert "lakeshare::access" in line and "route=/api/2.1/unity-catalog/shares" in line and "status=200" in line
    assert re.search(r'principal="?admin:conformance-admin"?', line), line
    assert ops.admin_token not in err, "no token in the log"
    assert "\x1b[" not in err, "no ANSI colours when stderr is not a terminal"


def metrics_url(a):
    deadline = time.monotonic() + 10
    while True:
        found = re.search(r"metrics \(bearer token required\) on (\S+)", stderr_of(a))
        if found or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert found, stderr_of(a)[-2000:]
    return found.group(1)


def test_metrics_for_other_hosts_need_the_token(ops):
    url = metrics_url(ops)
    assert requests.get(url, timeout=30).status_code == 401
    assert requests.get(url, headers={"Authorization": "Bearer wrong-token-wrong-token"}, timeout=30).status_code == 401
    r = requests.get(url, headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=30)
    assert r.status_code == 200 and "lakeshare_" in r.text
    other = requests.get(url.replace("/metrics", "/shares"), headers={"Authorization": f"Bearer {METRICS_TOKEN}"},
                         timeout=30)
    assert other.status_code == 404, "the metrics listener serves nothing else"


def test_a_short_metrics_token_is_refused(lakeshare_bin, tmp_path):
    cfg = srv.write_config(str(tmp_path / "c.yaml"), [],
                           extra={"metricsListener": {"host": "127.0.0.1", "port": 0, "bearerToken": "short"}})
    p = srv.lakeshare(lakeshare_bin, "check-config", cfg, check=False)
    assert p.returncode != 0 and "metricsListener.bearerToken" in (p.stdout + p.stderr)


def test_admin_tokens_expire_are_listed_and_revoked(ops):
    out = ops.cli("admin-token", "create", "brief", "--expires-in", "2s", *ops.where)
    brief = A.parse_admin_token(out.stdout)
    assert ops.raw("GET", f"{UC}/shares", token=brief).status_code == 200
    deadline = time.monotonic() + 10
    while ops.raw("GET", f"{UC}/shares", token=brief).status_code != 401 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert ops.raw("GET", f"{UC}/shares", token=brief).status_code == 401, "an expired admin token is refused"
    listed = json.loads(ops.cli("admin-token", "list", "--json", *ops.where).stdout)
    by_name = {t["name"]: t for t in listed}
    assert by_name["brief"]["state"] == "expired" and by_name["conformance-admin"]["state"] == "active"
    assert brief not in json.dumps(listed) and ops.admin_token not in json.dumps(listed), "never a secret"
    # through the API: create (shown once), list, revoke by prefix
    r = ops.raw("POST", f"{EXT}/admin-tokens", body={"name": "robot", "lifetime_seconds": 3600})
    assert r.status_code == 200, r.text
    robot = r.json()["token"]
    prefix = r.json()["info"]["prefix"]
    assert robot.startswith(prefix.rstrip("…"))
    assert ops.raw("GET", f"{UC}/shares", token=robot).status_code == 200
    api_list = ops.raw("GET", f"{EXT}/admin-tokens").json()["admin_tokens"]
    assert any(t["name"] == "robot" and t["state"] == "active" for t in api_list)
    assert robot not in json.dumps(api_list)
    bad = ops.raw("POST", f"{EXT}/admin-tokens", body={"name": "x", "lifetime_seconds": 10**9})
    A.admin_error(bad, 400, "INVALID_PARAMETER_VALUE", "too long a lifetime")
    assert ops.raw("DELETE", f"{EXT}/admin-tokens/{prefix}").status_code == 200
    assert ops.raw("GET", f"{UC}/shares", token=robot).status_code == 401, "revoked at once"
    A.admin_error(ops.raw("DELETE", f"{EXT}/admin-tokens/{prefix}"), 404, "RESOURCE_DOES_NOT_EXIST", "twice")
    # through the CLI: revoke every token of an administrator
    two = A.parse_admin_token(ops.cli("admin-token", "create", "ops2", *ops.where).stdout)
    assert ops.raw("GET", f"{UC}/shares", token=two).status_code == 200
    ops.cli("admin-token", "revoke", "ops2", *ops.where)
    assert ops.raw("GET", f"{UC}/shares", token=two).status_code == 401
    log = ops.cli("admin-log", "--json", *ops.where).stdout
    actions = [json.loads(ln)["action"] for ln in log.splitlines() if ln.strip()]
    assert "admin_token.create" in actions and "admin_token.revoke" in actions
    assert robot not in log and two not in log
