"""Server start rules, the reference-server YAML, check-config, and the replay counter."""
import json
import os
import re
import shutil

import delta_sharing
import requests

import frames
import server as srv
from api import Api, file_lines, ndjson

TABLE = "gen-partitioned"


def _one_table_shares(path):
    return [{"name": "s", "schemas": [{"name": "d", "tables": [{"name": "t", "location": path}]}]}]


def test_refuses_to_start_without_auth(lakeshare_bin, tables, tmp_path):
    cfg = srv.write_config(str(tmp_path / "noauth.yaml"), _one_table_shares(tables[TABLE]["path"]))
    res = srv.run_serve_expect_exit(lakeshare_bin, cfg, str(tmp_path / "empty-state.db"))
    assert res.returncode is not None, (
        "server started although there is no recipient and no bearerToken (it must refuse)\n" + res.stderr)
    assert res.returncode != 0, "refusal must exit non-zero"
    assert "refusing to start" in res.stderr, f"stderr must say 'refusing to start': {res.stderr!r}"


def test_allow_anonymous_refused_on_all_interfaces(lakeshare_bin, tables, tmp_path):
    cfg = srv.write_config(str(tmp_path / "anon.yaml"), _one_table_shares(tables[TABLE]["path"]))
    res = srv.run_serve_expect_exit(lakeshare_bin, cfg, str(tmp_path / "state.db"),
                                    ["--allow-anonymous", "--host", "0.0.0.0", "--port", "0"])
    assert res.returncode is not None, "--allow-anonymous on 0.0.0.0 must be refused, but the server started"
    assert res.returncode != 0 and "refusing to start" in res.stderr, res.stderr


def test_allow_anonymous_on_loopback(lakeshare_bin, tables, tmp_path):
    cfg = srv.write_config(str(tmp_path / "anon.yaml"), _one_table_shares(tables[TABLE]["path"]))
    s = srv.start_server(lakeshare_bin, cfg, str(tmp_path / "state.db"), ["--allow-anonymous"])
    try:
        r = Api(s.url, None).get("/shares")
        assert r.status_code == 200 and [x["name"] for x in r.json()["items"]] == ["s"]
    finally:
        s.stop()


REFERENCE_YAML = """\
# The format of this config file is the reference Delta Sharing server's (server/src/universal/conf).
version: 1
shares:
- name: "share1"
  schemas:
  - name: "default"
    tables:
    - name: "table1"
      location: "{abs_path}"
      id: "00000000-0000-0000-0000-000000000001"
    - name: "table_relative"
      location: "tables/gen-partitioned"
    - name: "table_url"
      location: "file://{abs_path}"
      historyShared: true
      startVersion: 0
- name: "share2"
  schemas:
  - name: "default"
    tables:
    - name: "table2"
      location: "{abs_path2}"
      cdfEnabled: true
authorization:
  bearerToken: "dapi5e3574ec767ca1548ae5bbed1a2dc04d"
host: "localhost"
port: 8080
endpoint: "/delta-sharing"
preSignedUrlTimeoutSeconds: 3600
deltaTableCacheSize: 10
stalenessAcceptable: false
evaluatePredicateHints: false
evaluateJsonPredicateHints: true
evaluateJsonPredicateHintsV2: true
requestTimeoutSeconds: 30
queryTablePageSizeLimit: 10000
someKeyNobodySupports: 42
"""


def test_reference_yaml_starts_and_serves(lakeshare_bin, tables, oracle, tmp_path):
    d = tmp_path / "refconf"
    (d / "tables").mkdir(parents=True)
    shutil.copytree(tables[TABLE]["path"], d / "tables" / "gen-partitioned")
    # copytree keeps mtimes (copy2), so commit times stay as generated
    cfg = d / "delta-sharing-server.yaml"
    cfg.write_text(REFERENCE_YAML.format(abs_path=tables[TABLE]["path"],
                                         abs_path2=tables["plain-unpartitioned"]["path"]))
    s = srv.start_server(lakeshare_bin, str(cfg), str(d / "state.db"), ["--port", "0"])
    try:
        err = s.stderr_text()
        assert "someKeyNobodySupports" in err, f"unsupported key must be named in a stderr warning:\n{err}"
        token = "dapi5e3574ec767ca1548ae5bbed1a2dc04d"
        assert Api(s.url, None).get("/shares").status_code == 401, "bearerToken must be required"
        api = Api(s.url, token)
        r = api.get("/shares")
        assert r.status_code == 200 and [x["name"] for x in r.json()["items"]] == ["share1", "share2"], r.text
        tl = api.get("/shares/share1/all-tables").json()["items"]
        assert [t["name"] for t in tl] == ["table1", "table_relative", "table_url"]
        assert tl[0].get("id") == "00000000-0000-0000-0000-000000000001"
        profile = tmp_path / "ref.share"
        profile.write_text(json.dumps({"shareCredentialsVersion": 1, "endpoint": s.url, "bearerToken": token}))
        want = oracle.snapshot(TABLE)
        for t in ("table1", "table_relative", "table_url"):
            df = delta_sharing.load_as_pandas(f"{profile}#share1.default.{t}", use_delta_format=False)
            frames.assert_same_table(frames.Snapshot.from_pandas(df), want, f"reference YAML table {t}")
        # historyShared defaults to false in the reference format
        r = api.query("share1", "default", "table1", {"version": 0})
        assert r.status_code == 400, "historyShared omitted -> no time travel"
        assert api.query("share1", "default", "table_url", {"version": 0}).status_code == 200
    finally:
        s.stop()


def test_check_config(lakeshare_bin, tables, tmp_path):
    good = srv.write_config(str(tmp_path / "good.yaml"), _one_table_shares(tables[TABLE]["path"]))
    res = srv.lakeshare(lakeshare_bin, "check-config", good, check=False)
    assert res.returncode == 0, f"check-config on a valid config failed:\n{res.stdout}\n{res.stderr}"
    bad_shares = _one_table_shares(tables[TABLE]["path"])
    bad_shares[0]["schemas"][0]["tables"].append({"name": "broken_table", "location": str(tmp_path / "nowhere")})
    bad = srv.write_config(str(tmp_path / "bad.yaml"), bad_shares)
    res = srv.lakeshare(lakeshare_bin, "check-config", bad, check=False)
    assert res.returncode != 0, "check-config must fail for a location that is not a Delta table"
    assert "broken_table" in res.stderr, f"stderr must name the bad table: {res.stderr!r}"


def _metric(url, name):
    text = requests.get(url, timeout=30).text
    m = re.search(r"^%s(?:\{[^}]*\})?\s+([0-9.eE+-]+)\s*$" % re.escape(name), text, re.M)
    assert m, f"metric {name} not found in:\n{text[:1000]}"
    return float(m.group(1))


def test_replay_counter_cached(env, api):
    share, schema, name = env.coords("checkpoint-v1-single")
    api.query(share, schema, name, {})  # warm: a first replay is allowed before the measurement
    before = _metric(env.server.metrics_url, "lakeshare_log_replays_total")
    for _ in range(2):
        r = api.query(share, schema, name, {})
        assert r.status_code == 200 and len(file_lines(ndjson(r))) == 7
    after = _metric(env.server.metrics_url, "lakeshare_log_replays_total")
    assert after - before <= 1, (
        f"two identical queries of an unchanged table replayed the log {after - before:g} times (at most 1 allowed)")


def test_profile_endpoint_printed_url(env):
    assert re.match(r"^http://127\.0\.0\.1:\d+/delta-sharing$", env.endpoint), env.endpoint
    assert os.path.exists(env.profile)


def test_self_signed_tls_serves_https(lakeshare_bin, tables, tmp_path):
    """The reference `ssl: {selfSigned: true}` block serves HTTPS (rustls) on the printed URL."""
    cfg = srv.write_config(str(tmp_path / "tls.yaml"), _one_table_shares(tables[TABLE]["path"]),
                           extra={"ssl": {"selfSigned": True}})
    s = srv.start_server(lakeshare_bin, cfg, str(tmp_path / "state.db"), ["--allow-anonymous"])
    try:
        assert s.url.startswith("https://"), f"printed URL must be https: {s.url}"
        r = requests.get(s.url + "/shares", verify=False, timeout=30)
        assert r.status_code == 200 and [x["name"] for x in r.json()["items"]] == ["s"]
        q = requests.post(s.url + "/shares/s/schemas/d/tables/t/query", data="{}", verify=False,
                          timeout=60)
        files = file_lines(ndjson(q))
        assert files, "query over TLS returned no files"
        assert all(f["url"].startswith("https://") for f in files), \
            "file URLs must use the scheme the client used"
        plain = s.url.replace("https://", "http://")
        try:
            requests.get(plain + "/shares", timeout=10)
            served_plain = True
        except requests.exceptions.ConnectionError:
            served_plain = False
        assert not served_plain, "a TLS listener must not answer plain HTTP"
    finally:
        s.stop()
